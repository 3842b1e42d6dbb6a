"""The evaluation report as one self-contained HTML page.

Everything is inline: the style sheet, and the plots as ``data:`` PNG images
(:mod:`recommender.training.report_plots`). The page loads nothing from anywhere, so it can be
mailed, archived or opened offline. Every value from the data is escaped.
"""

from __future__ import annotations

import datetime as dt
from html import escape

from recommender.training.report import BAND_ORDER, METRICS, band_comparison, format_gap

__all__ = ["render"]

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.model td { font-weight: bold; background: #fdecea; }
.note { background: #f4f6f8; border-left: 4px solid #888; padding: 0.6em 1em; }
img { max-width: 100%; }
"""


def _num(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if value != value:  # NaN
        return "–"
    return f"{value:.{digits}f}"


def _table(head: list[str], rows: list[list], highlight: int | None = None) -> str:
    out = ["<table><tr>" + "".join(f"<th>{escape(str(h))}</th>" for h in head) + "</tr>"]
    for k, row in enumerate(rows):
        cls = ' class="model"' if k == highlight else ""
        out.append(f"<tr{cls}>" + "".join(
            f"<td>{escape(c) if isinstance(c, str) else _num(c)}</td>" for c in row) + "</tr>")
    return "\n".join(out) + "</table>"


def _img(plots: dict, name: str, alt: str) -> str:
    return f'<p><img alt="{escape(alt)}" src="{plots[name]}"></p>' if name in plots else ""


def _order(models: dict) -> list[str]:
    return sorted(models, key=lambda m: -(models[m]["ndcg@10"]
                                          if models[m]["ndcg@10"] == models[m]["ndcg@10"]
                                          else -1.0))


def _label(name: str, model: str) -> str:
    return f"{name} (artifact {model})" if name == "hybrid" else name


def render(doc: dict, plots: dict[str, str]) -> str:
    """The HTML page of an evaluation report (``doc`` as :func:`evaluate_artifact` made it)."""
    art = doc["artifact"]
    models = doc["models"]
    names = _order(models)
    mark = names.index("hybrid") if "hybrid" in names else None
    label = {n: _label(n, art["version"]) for n in names}
    split, cand = doc["split"], doc["candidates"]["test"]
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>Evaluation of {escape(art['version'])}</title><style>{STYLE}</style></head>",
        f"<body><h1>Evaluation of model {escape(art['version'])}</h1>",
        f"<p>Dataset <b>{escape(str(doc['dataset']))}</b>, protocol <b>{escape(doc['protocol'])}"
        f"</b>, seed {doc['seed']}: {_num(split['test_users'])} test users, "
        f"{_num(split['validation_users'])} validation users, {_num(split['items'])} items, "
        f"{_num(split['train_interactions'])} training interactions. Candidates: "
        f"{escape(cand['rule'])} ({_num(cand['items'])} items; {_num(cand['positives_outside'])}"
        f" of {_num(cand['positives'])} test positives outside them). Artifact created "
        f"{escape(str(art.get('created')))}; report made "
        f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} in "
        f"{doc['seconds']:.1f} s.</p>",
        f"<p class=\"note\"><b>How the model was evaluated:</b> {escape(doc['evaluated_as'])}</p>",
        "<h2>Accuracy against the baselines</h2>",
        _table(["model", *METRICS, "users", "fit s"],
               [[label[n], *(models[n][m] for m in METRICS), models[n]["users"],
                 models[n]["fit_s"]] for n in names], mark),
        _img(plots, "accuracy", "nDCG@10 and recall@10 per model"),
        _guard(models.get("hybrid", {})),
        "<h2>By age band</h2>", _bands(models, names, label, mark), _band_gaps(models),
        _img(plots, "bands", "nDCG@10 per age band"),
        "<h2>Coverage by category</h2>", _categories(doc["coverage_by_category"], names, label),
        _img(plots, "categories", "share of list positions per category"),
        "<h2>Novelty and popularity bias</h2>", _novelty(doc["novelty"], names, label, mark),
        _img(plots, "novelty", "popularity of listed courses per model"),
        "<h2>Calibration of the predicted probabilities</h2>", _calibration(doc["calibration"]),
        _img(plots, "calibration", "reliability curve"),
        "<h2>Score distributions</h2>", _scores(doc["scores"], names, label),
        _img(plots, "scores", "score histograms per model"),
        "<h2>Parameters</h2>",
        _table(["parameter", "value"], [[k, str(v)] for k, v in art["params"].items()]
               or [["(defaults)", ""]]),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _guard(row: dict) -> str:
    guard = row.get("guard")
    if not guard:
        return ""
    return (f"<p>The model's guard served <b>{escape(str(guard.get('served_by')))}</b> "
            f"(held-out validation users: {_num(guard.get('users'))}); validation split: "
            f"{escape(str(row.get('validation', {}).get('protocol')))}.</p>")


def _bands(models: dict, names: list[str], label: dict, mark: int | None) -> str:
    bands = [b for b in BAND_ORDER if any(b in models[n].get("by_band", {}) for n in names)]
    if not bands:
        return "<p>No age band is known for the test users.</p>"
    head = ["model", *(f"{b} nDCG@10" for b in bands)]
    rows = [[label[n], *(models[n].get("by_band", {}).get(b, {}).get("ndcg@10")
                         for b in bands)] for n in names]
    users = ["users", *(max((models[n].get("by_band", {}).get(b, {}).get("users", 0)
                             for n in names), default=0) for b in bands)]
    return _table(head, [*rows, users], mark)


def _band_gaps(models: dict) -> str:
    """Per band, the model against that band's best baseline, user by user."""
    rows = [[r["band"], r["users"], r["hybrid"], r["best"], r["baseline"], format_gap(r["gap"])]
            for r in band_comparison(models) if r["best"] is not None]
    if not rows:
        return ""
    return ("<p>Against the best baseline of each band: the difference is the model's nDCG@10 "
            "minus the baseline's over the same users, ± its standard error. A difference "
            "within about two standard errors is within the noise of that many users.</p>"
            + _table(["band", "users", "model nDCG@10", "best baseline", "its nDCG@10",
                      "difference ± SE"], rows))


def _categories(coverage: dict, names: list[str], label: dict) -> str:
    cats = list(coverage["candidates"])
    head = ["model", *(f"{c}: share / coverage" for c in cats)]
    rows = [["candidates (share / items)",
             *(f"{coverage['candidates'][c]['share']:.3f} / {coverage['candidates'][c]['items']}"
               for c in cats)]]
    for n in names:
        row = coverage["models"][n]
        rows.append([label[n], *(f"{row[c]['share_of_slots']:.3f} / {row[c]['coverage']:.3f}"
                                 for c in cats)])
    return ("<p>Share: the category's share of the list positions (for the candidates, of the "
            "candidates). Coverage: its distinct courses in any list over its candidates.</p>"
            + _table(head, rows))


def _novelty(nov: dict, names: list[str], label: dict, mark: int | None) -> str:
    keys = ("mean_popularity", "mean_percentile", "long_tail_share", "novelty_bits",
            "popularity_ratio")
    rows = [[label[n], *(nov["models"][n][k] for k in keys)] for n in names]
    actual = nov["actual"]
    return (f"<p>Popularity: the share of training residents who had a course, averaged over "
            f"list positions. The long tail is every course outside the "
            f"{_num(nov['head_items'])} most popular. What the test users took up had mean "
            f"popularity {_num(actual['mean_popularity'])} (percentile "
            f"{_num(actual['mean_percentile'], 1)}); the ratio divides a model's by that.</p>"
            + _table(["model", *keys], rows, mark))


def _calibration(cal: dict) -> str:
    if not cal["available"]:
        return f"<p>Not measured: {escape(cal['reason'])}.</p>"
    rows = [[f"{b['low']:.2e} – {b['high']:.2e}", b["pairs"], b["mean_predicted"], b["observed"]]
            for b in cal["bins"]]
    return (f"<p>{_num(cal['pairs'])} (resident, course) pairs of {_num(cal['users'])} "
            f"residents and {_num(cal['courses'])} courses over the {cal['horizon_days']:.0f} "
            f"days after the cut: predicted {cal['predicted_total']:.1f} take-ups, observed "
            f"{cal['observed_total']:.0f}; Brier score {cal['brier']:.5f}, expected calibration "
            f"error {cal['ece']:.5f}.</p>"
            + _table(["predicted range", "pairs", "mean predicted", "observed rate"], rows))


def _scores(scores: dict, names: list[str], label: dict) -> str:
    rows = []
    for n in names:
        for kind in ("hits", "misses"):
            q = scores[n][kind]["quantiles"]
            rows.append([f"{label[n]}: {kind}", scores[n][kind]["positions"],
                         *(q.get(k) for k in ("0.1", "0.5", "0.9"))])
    return _table(["model: positions", "count", "p10", "median", "p90"], rows)

"""The report of an online A/B test: did residents enrol more after the lists of variant B?

An impression *converts* when, within ``days`` of being served, the resident it was for (for a
household list: any stored member of the household) enrols in one of its listed courses
(an ``enroll`` event in the participations). Profile lists (nobody registered) are counted but
cannot convert, so they are left out of the rates.

Per variant the report gives impressions, conversions, the conversion rate and its 95 % Wilson
score interval; the difference B - A with Newcombe's interval (method 10: from the two Wilson
intervals); a sample-ratio-mismatch check, a chi-square test (1 degree of freedom) of the units
(residents and households) assigned to each variant against the configured share; and the same
rates per age band (the band of the resident when the list was served). The intervals treat
impressions as independent: a resident who is served many lists makes them narrower than they
should be, which the per-unit counts let a reader judge.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

if TYPE_CHECKING:
    from recommender.data.store import Store

Z95 = 1.959963984540054
# Below this p-value the split of units is taken to differ from the configured share.
SRM_ALPHA = 0.001
VARIANTS = ("A", "B")


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion; (0, 1) when there are no trials."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (
        1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(k_a: int, n_a: int, k_b: int, n_b: int, z: float = Z95
             ) -> tuple[float, float, float]:
    """The difference of proportions ``p_b - p_a`` and Newcombe's interval around it."""
    p_a, p_b = (k_a / n_a if n_a else 0.0), (k_b / n_b if n_b else 0.0)
    lo_a, hi_a = wilson(k_a, n_a, z)
    lo_b, hi_b = wilson(k_b, n_b, z)
    diff = p_b - p_a
    return (diff, diff - math.sqrt((p_b - lo_b) ** 2 + (hi_a - p_a) ** 2),
            diff + math.sqrt((hi_b - p_b) ** 2 + (p_a - lo_a) ** 2))


def sample_ratio(units_a: int, units_b: int, share_b: float) -> dict:
    """Chi-square test of ``units_b`` of ``units_a + units_b`` against the expected share."""
    total = units_a + units_b
    if total == 0:
        return {"units": {"A": 0, "B": 0}, "expected_share_b": share_b, "chi2": 0.0,
                "p_value": 1.0, "mismatch": False}
    expected = np.array([total * (1 - share_b), total * share_b])
    chi2 = float((((np.array([units_a, units_b]) - expected) ** 2) / expected).sum())
    p_value = float(stats.chi2.sf(chi2, df=1))
    return {"units": {"A": units_a, "B": units_b}, "expected_share_b": share_b,
            "observed_share_b": units_b / total, "chi2": chi2, "p_value": p_value,
            "mismatch": p_value < SRM_ALPHA}


def conversions(impressions: pd.DataFrame, enrolments: pd.DataFrame,
                members: dict[str, list[str]], days: float) -> pd.Series:
    """Per impression (by its index), whether a listed course was enrolled in within ``days``
    by the resident it was for or, for a household list, by a member."""
    if impressions.empty:
        return pd.Series(False, index=impressions.index, dtype=bool)
    who = [[r] if kind == "resident" else list(members.get(h, [])) if kind == "household"
           else [] for kind, r, h in zip(impressions["kind"], impressions["resident_id"],
                                         impressions["household_id"])]
    pairs = pd.DataFrame({"impression": impressions.index, "resident_id": who,
                          "course_id": impressions["courses"].str.split("|"),
                          "served_at": impressions["served_at"]})
    pairs = pairs.explode("resident_id").explode("course_id").dropna()
    hits = pairs.merge(enrolments, on=["resident_id", "course_id"])
    window = pd.Timedelta(days=days)
    hits = hits[(hits["occurred_at"] >= hits["served_at"])
                & (hits["occurred_at"] <= hits["served_at"] + window)]
    return pd.Series(impressions.index.isin(hits["impression"].unique()),
                     index=impressions.index)


def _rates(frame: pd.DataFrame) -> dict:
    """Impressions, conversions, rate and Wilson interval per variant of ``frame``."""
    out = {}
    for variant in VARIANTS:
        rows = frame[frame["variant"] == variant]
        n, k = len(rows), int(rows["converted"].sum())
        low, high = wilson(k, n)
        out[variant] = {"impressions": n, "conversions": k, "rate": k / n if n else None,
                        "ci95": [low, high]}
    return out


def _difference(rates: dict) -> dict:
    a, b = rates["A"], rates["B"]
    diff, low, high = newcombe(a["conversions"], a["impressions"], b["conversions"],
                               b["impressions"])
    return {"b_minus_a": diff, "ci95": [low, high]}


def experiment_report(store: Store, experiment_id: int | None = None, days: float = 7.0,
                      now: dt.datetime | None = None) -> dict:
    """The report of one experiment (default: the newest) as a JSON-ready dict.

    ``now`` (naive, district time, default the newest impression) tells which impressions are
    younger than ``days``: their window is still open and they can still convert.

    Raises
    ------
    LookupError
        ``experiment_id: ...`` when there is no such experiment (or none at all).
    ValueError
        ``days: ...`` when ``days`` is not positive.
    """
    if not days > 0:
        raise ValueError(f"days: {days!r} is not positive")
    experiment = store.experiment(experiment_id)
    if experiment is None:
        raise LookupError("experiment_id: " + (f"no experiment {experiment_id}"
                                               if experiment_id is not None else
                                               "no experiment was ever started"))
    seen = store.impressions(experiment["experiment_id"])
    profiles = int((seen["kind"] == "profile").sum())
    imps = seen[(seen["kind"] != "profile") & seen["variant"].isin(VARIANTS)].copy()
    members = store.household_members(imps.loc[imps["kind"] == "household", "household_id"])
    residents = set(imps["resident_id"].dropna()) | {r for m in members.values() for r in m}
    since = imps["served_at"].min() if len(imps) else dt.datetime(1970, 1, 1)
    enrolments = store.enrolments_since(since.to_pydatetime() if len(imps) else since,
                                        sorted(residents))
    imps["converted"] = conversions(imps, enrolments, members, days)
    imps["unit"] = imps["kind"] + ":" + imps["resident_id"].fillna(imps["household_id"])
    units = imps.groupby("variant")["unit"].nunique()
    rates = _rates(imps)
    newest = now or (seen["served_at"].max() if len(seen) else None)
    open_windows = int((imps["served_at"] > newest - pd.Timedelta(days=days)).sum()) if (
        newest is not None and len(imps)) else 0
    bands = []
    for band, rows in imps.groupby(imps["band"].fillna("unknown"), sort=True):
        band_rates = _rates(rows)
        bands.append({"band": band, "variants": band_rates, "difference":
                      _difference(band_rates)})
    return {
        "experiment": {k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                       for k, v in experiment.items()},
        "days": days, "interval": "Wilson score 95 % per variant; Newcombe (method 10) for "
        "the difference", "variants": rates, "difference": _difference(rates),
        "sample_ratio": sample_ratio(int(units.get("A", 0)), int(units.get("B", 0)),
                                     float(experiment["share"])),
        "by_band": bands, "profile_impressions": profiles,
        "impressions_with_open_window": open_windows,
    }


def format_report(report: dict) -> str:
    """The report as the lines ``recommender models ab report`` prints."""
    exp = report["experiment"]
    lines = [f"experiment {exp['experiment_id']}: A={exp['version_a']} B={exp['version_b']} "
             f"share of B {exp['share']:.3f}, started {exp['started_at'][:16]}"
             + (f", stopped {exp['stopped_at'][:16]}" if exp["stopped_at"] else " (running)"),
             f"conversion: an enrolment in a listed course within {report['days']:g} days; "
             f"intervals: {report['interval']}", "",
             f"{'band':<12} {'variant':<7} {'impressions':>11} {'conversions':>11} "
             f"{'rate':>7}  95% CI"]

    def rows(band: str, variants: dict, diff: dict) -> None:
        for variant in VARIANTS:
            v = variants[variant]
            rate = "-" if v["rate"] is None else f"{v['rate']:.4f}"
            lines.append(f"{band:<12} {variant:<7} {v['impressions']:>11} "
                         f"{v['conversions']:>11} {rate:>7}  [{v['ci95'][0]:.4f}, "
                         f"{v['ci95'][1]:.4f}]")
        lines.append(f"{band:<12} {'B - A':<7} {'':>11} {'':>11} {diff['b_minus_a']:>+7.4f}"
                     f"  [{diff['ci95'][0]:+.4f}, {diff['ci95'][1]:+.4f}]")

    rows("all", report["variants"], report["difference"])
    for band in report["by_band"]:
        rows(band["band"], band["variants"], band["difference"])
    srm = report["sample_ratio"]
    verdict = "MISMATCH: do not trust the rates" if srm["mismatch"] else "no mismatch"
    lines += ["", f"sample ratio: {srm['units']['A']} units on A, {srm['units']['B']} on B "
              f"(expected share of B {srm['expected_share_b']:.3f}); chi2 {srm['chi2']:.2f}, "
              f"p {srm['p_value']:.4g}: {verdict} (alpha {SRM_ALPHA})",
              f"profile lists (no resident, not in the rates): {report['profile_impressions']};"
              f" impressions still inside their {report['days']:g}-day window: "
              f"{report['impressions_with_open_window']}"]
    return "\n".join(lines)


__all__ = ["SRM_ALPHA", "conversions", "experiment_report", "format_report", "newcombe",
           "sample_ratio", "wilson"]

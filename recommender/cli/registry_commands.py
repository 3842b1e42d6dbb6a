"""The registry commands: ``recommender models list | show | diff | promote | rollback | history``.

Thin shells over :mod:`recommender.training.registry` (versions, manifests, moves of
``current``) and :mod:`recommender.serving.overlap` (the two versions' lists compared). An
unknown version, or nothing to roll back to, is one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from recommender.cli.common import ArtifactsOption, fail, models_app, settings_from

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ByOption = Annotated[str | None, typer.Option(
    "--by", help="Who moves current, for the history (default: the OS user).")]


def _artifacts(artifacts: Path | None) -> Path:
    return settings_from(artifacts_dir=artifacts).artifacts_dir


def _fmt(value, width: int = 9) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        return f"{value:.4f}".rjust(width)
    return str(value).rjust(width)


def _delta(a, b) -> str:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return f"{b - a:+.4f}" if isinstance(a, float) or isinstance(b, float) else f"{b - a:+d}"
    return ""


@models_app.command("list")
def list_(artifacts: ArtifactsOption = None, as_json: JsonOption = False) -> None:
    """Every version, oldest first: '*' marks current; date, data and key validation metrics."""
    from recommender.training.registry import list_versions

    versions = list_versions(_artifacts(artifacts))
    if as_json:
        typer.echo(json.dumps(versions, indent=2, ensure_ascii=False, default=str))
        return
    if not versions:
        typer.echo(f"no versions in {_artifacts(artifacts)} (run `recommender train`)")
        return
    typer.echo(f"  {'version':<22} {'created':<25} {'data':<34} {'seed':>4} {'users':>6} "
               f"{'ndcg@10':>8} {'recall@10':>9} {'coverage':>8}  served by")
    for v in versions:
        mark = "*" if v["current"] else " "
        if v["error"]:
            typer.echo(f"{mark} {v['version']:<22} unreadable: {v['error']}")
            continue
        d, m = v["data"], v["metrics"]
        data = (f"{d.get('name', '?')} {d.get('interactions', '?')} ev "
                f"{str(d.get('sha256', ''))[:8]}")
        hybrid = m.get("hybrid", {})
        typer.echo(f"{mark} {v['version']:<22} {str(v['created']):<25} {data:<34} "
                   f"{_fmt(v['seed'], 4)} {_fmt(m.get('users'), 6)} "
                   f"{_fmt(hybrid.get('ndcg@10'), 8)} {_fmt(hybrid.get('recall@10'), 9)} "
                   f"{_fmt(hybrid.get('coverage'), 8)}  {m.get('served_by', '-')}")


@models_app.command()
def show(
    version: Annotated[str, typer.Argument(help="A version name, or 'current'.")] = "current",
    artifacts: ArtifactsOption = None,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Also check every file's checksum.")] = False,
) -> None:
    """One version's manifest (data, code and library versions, seed, parameters, metrics)."""
    from recommender.training.artifacts import ArtifactError
    from recommender.training.registry import current_version, load_manifest

    folder = _artifacts(artifacts)
    try:
        manifest = load_manifest(folder, version, check=verify)
        current = current_version(folder)
    except ArtifactError as exc:
        fail(str(exc))
    manifest = {"current": manifest.get("version") == current, **manifest}
    typer.echo(json.dumps(manifest, indent=2, ensure_ascii=False, default=str))


@models_app.command()
def diff(
    first: Annotated[str, typer.Argument(help="Version A (or 'current').")],
    second: Annotated[str, typer.Argument(help="Version B (or 'current').")],
    artifacts: ArtifactsOption = None,
    sample: Annotated[int, typer.Option(
        min=1, help="Residents whose top-10 lists are compared.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the residents' sample.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Two versions side by side: validation metrics overall and per band, data, code,
    parameters that differ, and how much their top-10 lists overlap on a sample of residents."""
    from recommender.training.artifacts import ArtifactError
    from recommender.training.registry import compare_manifests, load_manifest

    folder = _artifacts(artifacts)
    try:
        table = compare_manifests(load_manifest(folder, first), load_manifest(folder, second))
        from recommender.serving.overlap import load_pair, top_k_overlap

        overlap = top_k_overlap(*load_pair(folder, first, second), sample=sample, seed=seed)
    except ArtifactError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps({**table, "overlap": overlap}, indent=2, ensure_ascii=False,
                              default=str))
        return
    typer.echo("\n".join(format_diff(table, overlap)))


def format_diff(table: dict, overlap: dict) -> list[str]:
    """The lines ``models diff`` prints."""
    a, b = table["versions"]
    lines = [f"{'':<22} {a:>22} {b:>22} {'B - A':>9}"]

    def row(name, pair):
        lines.append(f"{name:<22} {_fmt(pair[0], 22)} {_fmt(pair[1], 22)} "
                     f"{_delta(*pair):>9}")

    lines.append("validation (held-out residents), served model")
    row("  served by", table["served_by"])
    for name, pair in table["overall"].items():
        row(f"  {name}", pair)
    lines.append("popularity by band on the same residents")
    for name, pair in table["baseline"].items():
        row(f"  {name}", pair)
    for band, figures in table["by_band"].items():
        lines.append(f"band {band}")
        for name in ("users", "ndcg@10", "recall@10", "precision@10"):
            row(f"  {name}", figures[name])
    lines.append("data, code, seed")
    for name, pair in table["data"].items():
        row(f"  {name}", pair if name != "sha256" else tuple(str(p)[:16] for p in pair))
    row("  code", tuple(str(p)[:12] for p in table["code"]))
    row("  seed", table["seed"])
    lines.append("parameters that differ" if table["params"] else "parameters: the same")
    for name, pair in table["params"].items():
        row(f"  {name}", pair)
    n = overlap["residents"]
    if not n:
        lines.append("top-10 overlap: the two versions know no resident in common")
        return lines
    lines.append(f"top-{overlap['k']} lists on {n} residents both versions know: "
                 f"{overlap['mean']:.1%} of courses in common on average, "
                 f"{overlap['identical']:.1%} identical, {overlap['same_first']:.1%} same first")
    for band, figures in overlap["by_band"].items():
        lines.append(f"  {band:<20} {figures['mean']:6.1%} in common ({figures['residents']} "
                     "residents)")
    return lines


@models_app.command()
def promote(
    version: Annotated[str, typer.Argument(help="The version to make current.")],
    artifacts: ArtifactsOption = None,
    by: ByOption = None,
) -> None:
    """Make VERSION current (checksums verified first); a running service serves it after
    `POST /v1/admin/reload`."""
    from recommender.training.artifacts import ArtifactError
    from recommender.training.registry import promote as promote_version

    try:
        entry = promote_version(_artifacts(artifacts), version, by=by)
    except ArtifactError as exc:
        fail(str(exc))
    typer.echo(f"current: {entry['from'] or '(none)'} -> {entry['to']} (by {entry['by']})")


@models_app.command()
def rollback(artifacts: ArtifactsOption = None, by: ByOption = None) -> None:
    """Make the previous current version current again (undoes the latest move not already
    undone; see `models history`)."""
    from recommender.training.artifacts import ArtifactError
    from recommender.training.registry import rollback as rollback_current

    try:
        entry = rollback_current(_artifacts(artifacts), by=by)
    except ArtifactError as exc:
        fail(str(exc))
    typer.echo(f"current: {entry['from']} -> {entry['to']} (rolled back by {entry['by']})")


@models_app.command("history")
def history_(artifacts: ArtifactsOption = None, as_json: JsonOption = False) -> None:
    """Every move of current, oldest first: when, who, how, from, to."""
    from recommender.training.artifacts import ArtifactError
    from recommender.training.registry import history

    try:
        entries = history(_artifacts(artifacts))
    except ArtifactError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    for e in entries:
        typer.echo(f"{e.get('at')}  {e.get('by')!s:<16} {e.get('action')!s:<9} "
                   f"{e.get('from') or '(none)'} -> {e.get('to')}")

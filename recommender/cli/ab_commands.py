"""Online A/B tests between two model versions: ``recommender models ab start|stop|status|report``.

The experiment lives in the store, so a running service (every worker) follows ``start`` and
``stop`` within about a second, without a reload; see :mod:`recommender.serving.experiments`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from recommender.cli.common import ArtifactsOption, DbOption, ab_app, fail, settings_from


def _store(db: str | None):
    from recommender.data.store import StoreError, open_store

    try:
        return open_store(settings_from(database_url=db).database_url)
    except (StoreError, ValueError) as exc:
        fail(f"--db: {exc}", 2)


def _who() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def _line(row: dict) -> str:
    state = (f"stopped {row['stopped_at']:%Y-%m-%d %H:%M} by {row['stopped_by']}"
             if row["stopped_at"] else "running")
    return (f"experiment {row['experiment_id']}: A={row['version_a']} B={row['version_b']} "
            f"share of B {row['share']:.3f}, started {row['started_at']:%Y-%m-%d %H:%M} by "
            f"{row['started_by']}; {state}" + (f" ({row['note']})" if row["note"] else ""))


@ab_app.command("start")
def start(
    version_a: Annotated[str, typer.Argument(help="The control's version (served to the rest).")],
    version_b: Annotated[str, typer.Argument(help="The challenger's version.")],
    share: Annotated[float, typer.Option(help="Share of residents served B, in (0, 1).")] = 0.2,
    note: Annotated[str | None, typer.Option(help="Why (kept with the experiment).")] = None,
    db: DbOption = None,
    artifacts: ArtifactsOption = None,
) -> None:
    """Serve VERSION_B to a stable, hash-assigned share of residents and VERSION_A to the rest.

    Exit code 2, with one line saying why: a version has no artifact, the share is outside
    (0, 1), or another experiment runs.
    """
    from recommender.data.store import ExperimentConflict
    from recommender.serving.errors import NotFound
    from recommender.serving.experiments import resolve_version

    artifacts_dir = settings_from(artifacts_dir=artifacts).artifacts_dir
    names = {}  # ``current`` is kept as the version it names now (as the API does)
    for field, version in (("version_a", version_a), ("version_b", version_b)):
        try:
            names[field] = resolve_version(artifacts_dir, version).name
        except NotFound as exc:
            fail(f"{field}: {exc.reason}")
    version_a, version_b = names["version_a"], names["version_b"]
    store = _store(db)
    try:
        row = store.start_experiment(version_a=version_a, version_b=version_b, share=share,
                                     started_by=_who(), note=note)
    except (ValueError, ExperimentConflict) as exc:
        fail(str(exc).replace("share:", "--share:", 1))
    finally:
        store.dispose()
    typer.echo(_line(row))


@ab_app.command("stop")
def stop(db: DbOption = None) -> None:
    """End the running experiment: everyone gets the current model again (exit 2: none runs)."""
    store = _store(db)
    try:
        row = store.stop_experiment(by=_who())
    finally:
        store.dispose()
    if row is None:
        fail("experiment: no experiment is running")
    typer.echo(_line(row))


@ab_app.command("status")
def status(db: DbOption = None) -> None:
    """The running experiment, else the newest one (and that none runs)."""
    store = _store(db)
    try:
        running, latest = store.running_experiment(), store.experiment()
    finally:
        store.dispose()
    if running is None:
        typer.echo("no experiment is running" + (f"; the last one was {_line(latest)}"
                                                 if latest else ""))
        return
    typer.echo(_line(running))


@ab_app.command("report")
def report(
    days: Annotated[float, typer.Option(help="Conversion window: an enrolment in a listed "
                                        "course within this many days of the list.")] = 7.0,
    experiment: Annotated[int | None, typer.Option(help="Experiment id (default: newest).")
                          ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Per variant: impressions, conversion rate with its Wilson interval, B - A with
    Newcombe's interval, the sample-ratio-mismatch check and the per-band breakdown."""
    from recommender.evaluation.abtest import experiment_report, format_report

    store = _store(db)
    try:
        result = experiment_report(store, experiment, days)
    except (LookupError, ValueError) as exc:
        fail(str(exc).replace("days:", "--days:", 1).replace("experiment_id:", "--experiment:"))
    finally:
        store.dispose()
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False) if as_json
               else format_report(result))

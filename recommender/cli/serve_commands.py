"""Commands that serve: serve, and demo (generate, import, train, serve in one go)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recommender.cli.common import (
    ArtifactsOption,
    DbOption,
    app,
    fail,
    open_store_or_fail,
    say_where,
    settings_from,
)
from recommender.cli.model_commands import train
from recommender.cli.workers import serve_in_workers

if TYPE_CHECKING:
    from recommender.settings import Settings


# uvicorn kills a worker that does not answer its supervisor's ping in time (5 s by default);
# loading a district-scale model keeps the interpreter busy for longer on a loaded machine, and
# the killed worker's replacement then loads the model again, over and over.
WORKER_HEALTHCHECK_S = 120


@app.command()
def serve(
    artifacts: ArtifactsOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    db: DbOption = None,
    insecure_dev: Annotated[
        bool, typer.Option("--insecure-dev", help="Allow starting without API keys (local only).")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    workers: Annotated[int | None, typer.Option(
        min=1, show_default="the machine's cores",
        help="uvicorn worker processes (each loads the model; they follow each other's events "
        "through the store within a second); with more than one, /metrics aggregates them "
        "through PROMETHEUS_MULTIPROC_DIR (a fresh folder unless it is set).")] = None,
    timezone: Annotated[str | None, typer.Option(
        "--timezone", help="District time zone (default: RECOMMENDER_TIMEZONE or "
        "Asia/Shanghai).")] = None,
) -> None:
    """Serve the recommendation API (OpenAPI docs at /docs).

    Keys come from RECOMMENDER_API_KEYS (`platform:KEY,coordinator:KEY,admin:KEY`); without them
    the service refuses to start unless --insecure-dev is given.
    """
    settings = settings_from(artifacts_dir=artifacts, database_url=db, timezone=timezone)
    if not settings.key_roles():
        if not insecure_dev:
            fail("RECOMMENDER_API_KEYS is not set (role:key pairs, e.g. "
                  "platform:KEY,admin:KEY); use --insecure-dev only for local development")
        settings = settings.model_copy(update={"insecure_dev": True})
        typer.secho("warning: --insecure-dev: every request is allowed without a key",
                    fg=typer.colors.YELLOW, err=True)
    say_where(settings)
    open_store_or_fail(settings).dispose()  # an unreachable database: one line, no workers
    if not (settings.artifacts_dir / "current").exists():
        typer.secho(f"warning: no model at {settings.artifacts_dir.resolve() / 'current'}: the "
                    "server answers 503 until `recommender train` and POST /v1/admin/reload",
                    fg=typer.colors.YELLOW, err=True)
    _run_server(settings, host, port, workers=workers or machine_cores(), log_level=log_level)


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@contextmanager
def _metrics_folder(settings: Settings, workers: int) -> Iterator[Settings]:
    """``settings`` with an empty multiprocess metrics folder when the server needs one.

    Several workers each count their own requests; prometheus_client aggregates them through
    files in ``PROMETHEUS_MULTIPROC_DIR``. A configured folder is emptied first (files of an
    earlier run would be counted again); without one, a fresh folder is made for this run and
    removed after it.
    """
    folder = settings.prometheus_multiproc_dir
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        yield settings
    elif workers > 1:
        fresh = Path(tempfile.mkdtemp(prefix="recommender-metrics-"))
        try:
            yield settings.model_copy(update={"prometheus_multiproc_dir": fresh})
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
    else:
        yield settings


def _run_server(settings: Settings, host: str, port: int, workers: int = 1,
                log_level: str = "info") -> None:
    with _metrics_folder(settings, workers) as settings:
        # The workers build their app (and Settings) from the variables this process exports.
        settings.export()
        typer.echo(f"serving {settings.artifacts_dir}/current on http://{host}:{port} "
                   f"({workers} worker{'s' if workers > 1 else ''})", err=True)
        # By import string: `recommender` never imports `api` (imports flow api -> recommender).
        status = serve_in_workers("api.main:create_app", host, port, workers,
                                  log=lambda line: typer.echo(line, err=True), factory=True,
                                  log_level=log_level,
                                  timeout_worker_healthcheck=WORKER_HEALTHCHECK_S)
    if status:
        raise typer.Exit(status)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo district.")] = Path(
        "var/demo"),
    residents: Annotated[int, typer.Option(min=10)] = 2000,
    courses: Annotated[int, typer.Option(min=8)] = 120,
    seed: Annotated[int, typer.Option()] = 0,
    db: DbOption = None,
    artifacts: ArtifactsOption = None,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve at the end.")] = True,
) -> None:
    """The whole demo: generate a district, import it, train, and serve it with fresh API keys
    (or the ones in RECOMMENDER_API_KEYS)."""
    from recommender.data.ingest import import_folder
    from recommender.demo.generator import generate_district

    # Everything that can be wrong with the settings is found before minutes of work.
    settings = _demo_settings(settings_from(artifacts_dir=artifacts, database_url=db))
    say_where(settings)
    store = open_store_or_fail(settings)
    steps = 4 if serve_api else 3
    typer.secho(f"1/{steps} generating a demo district in {out}", bold=True)
    try:
        summary = generate_district(out, residents=residents, courses=courses, seed=seed,
                                    progress=True)
        typer.echo(f"    {summary['rows']}")
        typer.secho(f"2/{steps} importing into {store!r}", bold=True)
        report = import_folder(out, store, report_path=out / "import_report.json", progress=True,
                               timezone=settings.timezone)
    finally:
        store.dispose()
    typer.echo(report.summary_text())
    if report.exit_code != 0:
        fail("the generated district did not import cleanly; see the report above", 1)
    typer.secho(f"3/{steps} training from the store into {settings.artifacts_dir}", bold=True)
    train(out=settings.artifacts_dir, data=None, db=settings.database_url, seed=seed)
    if not serve_api:
        typer.secho(f"done: district in {out}, model in {settings.artifacts_dir}/current "
                    "(not served: --no-serve)", bold=True)
        return
    typer.secho("4/4 serving. API keys for this demo (role:key): "
                + settings.api_keys.get_secret_value(), bold=True)
    _print_requests(out, settings, f"http://{host}:{port}")
    _run_server(settings, host, port)


def _demo_settings(settings: Settings) -> Settings:
    """``settings`` with the demo's keys: fresh ones for every role when RECOMMENDER_API_KEYS
    is empty; configured keys are kept, and must include a platform key (the printed requests
    use it)."""
    import secrets

    from pydantic import SecretStr

    from recommender.settings import ROLES

    roles = set(settings.key_roles().values())
    if not roles:
        keys = ",".join(f"{role}:{secrets.token_urlsafe(16)}" for role in ROLES)
        return settings.model_copy(update={"api_keys": SecretStr(keys)})
    if "platform" not in roles:
        fail("RECOMMENDER_API_KEYS has no platform key, which the demo's requests need: add "
             "platform:KEY, or unset it for fresh keys of every role")
    return settings


def _print_requests(district: Path, settings: Settings, base: str) -> None:
    """A few ready-to-run requests against the demo server, with its platform key."""
    from recommender.data.datasets import load_district

    platform_key = next(k for k, role in settings.key_roles().items() if role == "platform")
    bundle = load_district(district, timezone=settings.timezone)
    resident = str(bundle.interactions["user_id"].iloc[-1])
    course = str(bundle.items["item_id"].iloc[0])
    community = str(bundle.users["community_id"].iloc[0])
    profile = f'{{"birth_year": 1956, "community_id": "{community}", "interests": ["handicraft"]}}'
    hdr = f"-H 'X-API-Key: {platform_key}'"
    _print_sample_list(settings, resident)
    typer.echo(f"""Try:
  curl {hdr} '{base}/v1/residents/{resident}/recommendations?k=5'
  curl {hdr} '{base}/v1/residents/{resident}/recommendations?k=5&lang=en'   (reasons in English)
  curl {hdr} '{base}/v1/residents/NEW-RESIDENT/recommendations?k=5'
  curl {hdr} -X POST {base}/v1/recommendations -H 'Content-Type: application/json' \\
       -d '{profile}'
  curl {hdr} '{base}/v1/courses/{course}/similar?k=5'
  curl '{base}/healthz'     (OpenAPI docs: {base}/docs)""")


def _print_sample_list(settings: Settings, resident: str, k: int = 3) -> None:
    """The resident's first ``k`` courses with their reasons, in Chinese as residents read
    them: what the server will answer, computed here by the same service."""
    from recommender.data.store import open_store
    from recommender.serving import ModelHolder, RecommendationService

    store = open_store(settings.database_url)
    try:
        holder = ModelHolder(settings.artifacts_dir, store)
        holder.reload()
        service = RecommendationService(store, holder, timezone=settings.timezone)
        answer = service.for_resident(resident, k=k)
    finally:
        store.dispose()
    typer.echo(f"Resident {resident}'s list (k={k}; reasons in Chinese, lang=en for English):")
    for item in answer["items"]:
        reasons = "；".join(reason["text"] for reason in item["reasons"]) or "—"
        typer.echo(f"  {item['rank']}. {item['title']} [{item['course_id']}]: {reasons}")
    if not answer["items"]:
        typer.echo("  (no course is open to them today)")

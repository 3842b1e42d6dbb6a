"""The ``recommender`` command line: generate, import, datasets, train, benchmark, serve, demo.

Each command is a thin shell over a function in the package, so everything it does can also be
called from Python and from the notebooks. Heavy modules are imported inside the commands to keep
``recommender --help`` instant. Defaults the flags leave open (database URL, artifacts folder,
time zone, API keys) come from :class:`recommender.settings.Settings`, the same object the API
reads.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # pydantic is imported by the commands that need it, not by --help
    from recommender.settings import Settings

app = typer.Typer(
    help="Course recommendation engine for lifelong community learning.",
    no_args_is_help=True,
    add_completion=False,
)
datasets_app = typer.Typer(help="Convert real datasets into the generic benchmark format.")
app.add_typer(datasets_app, name="datasets")

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: RECOMMENDER_DATABASE_URL or var/ SQLite)."),
]
ArtifactsOption = Annotated[
    Path | None,
    typer.Option("--artifacts", help="Artifacts folder (default: RECOMMENDER_ARTIFACTS_DIR or "
                 "artifacts/)."),
]


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _settings(**flags) -> Settings:
    """The settings, with every flag that was given (not None) over its ``RECOMMENDER_*``
    variable; an invalid value stops the command with the reason."""
    from pydantic import ValidationError

    from recommender.settings import Settings

    try:
        return Settings(**{name: value for name, value in flags.items() if value is not None})
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
                            for e in exc.errors(include_url=False, include_input=False))
        _fail(reasons, 2)


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the district files to.")],
    residents: Annotated[int, typer.Option(min=10, help="Number of residents.")] = 2000,
    courses: Annotated[int, typer.Option(min=8, help="Number of courses.")] = 120,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data.")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Last day of data (YYYY-MM-DD; default today).")
    ] = None,
) -> None:
    """Generate a realistic demo district (communities, residents, courses, participations)."""
    from recommender.demo.generator import generate_district

    if fmt not in ("csv", "parquet"):
        _fail(f"--format must be csv or parquet, got {fmt!r}")
    try:
        as_of_date = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError:
        _fail(f"--as-of must be a date YYYY-MM-DD, got {as_of!r}")
    summary = generate_district(
        out, residents=residents, courses=courses, seed=seed, fmt=fmt, as_of=as_of_date,
        progress=True,
    )
    typer.echo(json.dumps(summary, indent=2, ensure_ascii=False, default=str))


@app.command("import")
def import_(
    folder: Annotated[Path, typer.Argument(help="Folder with the district CSV/Parquet files.")],
    db: DbOption = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the JSON import report here.")
    ] = None,
) -> None:
    """Validate and load a district folder into the store.

    Exit code 0: every row accepted; 3: some rows rejected (valid rows are stored);
    2: the input is unusable (missing file or required column).
    """
    from recommender.data.ingest import UnusableInput, import_folder
    from recommender.data.store import open_store

    settings = _settings(database_url=db)
    store = open_store(settings.database_url)
    try:
        result = import_folder(folder, store, report_path=report, progress=True,
                               timezone=settings.timezone)
    except UnusableInput as exc:
        _fail(str(exc), 2)
    finally:
        store.dispose()
    typer.echo(result.summary_text())
    raise typer.Exit(result.exit_code)


@datasets_app.command("oulad")
def datasets_oulad(
    src: Annotated[Path, typer.Argument(help="The OULAD folder (e.g. ../shared/datasets/oulad).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the generic benchmark files.")],
) -> None:
    """Convert OULAD (CC BY 4.0) into the generic benchmark format."""
    from recommender.data.datasets import DatasetError
    from recommender.data.oulad import convert_oulad

    try:
        summary = convert_oulad(src, out)
    except (DatasetError, FileNotFoundError) as exc:
        _fail(str(exc), 2)
    typer.echo(json.dumps(summary, indent=2, ensure_ascii=False, default=str))


def _load_bundle(data: Path | None, db: str | None):
    """A DataBundle from a folder (district or generic) or from the store."""
    from recommender.data.datasets import DatasetError, bundle_from_tables, load_dataset

    try:
        if data is not None:
            return load_dataset(data, timezone=_settings().timezone)
        from recommender.data.store import open_store

        store = open_store(_settings(database_url=db).database_url)
        try:
            tables = store.read_all()
        finally:
            store.dispose()
        if tables["participations"].empty:
            _fail(f"the store {store!r} holds no participations: run `recommender import` first")
        return bundle_from_tables(tables, name="store")
    except (DatasetError, FileNotFoundError) as exc:
        _fail(str(exc), 2)


@app.command()
def train(
    out: Annotated[Path | None, typer.Option(
        "--out", help="Artifacts folder (default: RECOMMENDER_ARTIFACTS_DIR or artifacts/).")
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="District or generic benchmark folder.")
    ] = None,
    db: DbOption = None,
    seed: Annotated[int, typer.Option(help="Random seed: same data and seed, same scores.")] = 0,
) -> None:
    """Train the hybrid and write a new artifact version; point ARTIFACTS_DIR/current at it.

    Reads --data if given, else the store (--db / RECOMMENDER_DATABASE_URL). Exit code 2, with
    one line saying why: the data cannot be loaded or has nothing to learn the re-ranker from.
    """
    import time

    from recommender.data.datasets import summarize
    from recommender.evaluation.protocols import SplitError
    from recommender.training.recipe import train_artifact

    out = _settings(artifacts_dir=out).artifacts_dir
    bundle = _load_bundle(data, db)
    info = summarize(bundle)
    typer.echo(f"training on {info['name']}: {info['users']} users, {info['items']} items, "
               f"{info['interactions']} interactions")
    started = time.perf_counter()
    try:
        path = train_artifact(bundle, out, seed=seed)
    except SplitError as exc:  # the data has nothing the re-ranker could learn from
        _fail(str(exc), 2)
    typer.echo(f"artifact {path.name} written to {path} in {time.perf_counter() - started:.1f}s;"
               f" {out / 'current'} -> {path.name}")


@app.command()
def benchmark(
    dataset: Annotated[Path, typer.Option("--dataset", help="Generic or district folder.")],
    protocol: Annotated[
        str, typer.Option(help="temporal, cold-user, cold-item or random.")
    ] = "temporal",
    seed: Annotated[int, typer.Option(help="Seed of the random splits.")] = 0,
    budget: Annotated[float, typer.Option(help="Tuning time budget per model, seconds.")] = 120.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
    repeats: Annotated[int, typer.Option(
        min=1, help="Runs of a random protocol (random, cold-item) with seeds seed, seed+1, ...; "
        "the figures are then mean ± std.")] = 1,
) -> None:
    """The hybrid against the baselines (popularity, recent popularity, popularity and category
    popularity by band, ALS, BPR, item-kNN, EASE) on one protocol.

    Exit code 2, with one line saying why: the dataset cannot be loaded or the protocol cannot
    split it (e.g. a time-based protocol on data with a single timestamp).
    """
    from recommender.evaluation.protocols import PROTOCOLS, SplitError
    from recommender.training.benchmark import check_repeats, format_table, run_benchmark

    if protocol.replace("_", "-") not in PROTOCOLS:
        _fail(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    try:
        check_repeats(protocol, repeats)
    except ValueError as exc:
        _fail(f"--repeats: {exc}")
    bundle = _load_bundle(dataset, None)
    try:
        result = run_benchmark(bundle, protocol.replace("_", "-"), seed=seed, budget_s=budget,
                               log=lambda m: typer.echo(m, err=True), repeats=repeats)
    except SplitError as exc:  # the protocol cannot split this data
        _fail(str(exc), 2)
    typer.echo(format_table(result))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=float),
                            "utf-8")
        typer.echo(f"results written to {json_out}")


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
    workers: Annotated[int, typer.Option(
        min=1, help="uvicorn worker processes; with more than one, /metrics aggregates them "
        "through PROMETHEUS_MULTIPROC_DIR (a fresh folder unless it is set).")] = 1,
    timezone: Annotated[str | None, typer.Option(
        "--timezone", help="District time zone (default: RECOMMENDER_TIMEZONE or "
        "Asia/Shanghai).")] = None,
) -> None:
    """Serve the recommendation API (OpenAPI docs at /docs).

    Keys come from RECOMMENDER_API_KEYS (`platform:KEY,coordinator:KEY,admin:KEY`); without them
    the service refuses to start unless --insecure-dev is given.
    """
    settings = _settings(artifacts_dir=artifacts, database_url=db, timezone=timezone)
    if not settings.key_roles():
        if not insecure_dev:
            _fail("RECOMMENDER_API_KEYS is not set (role:key pairs, e.g. "
                  "platform:KEY,admin:KEY); use --insecure-dev only for local development")
        settings = settings.model_copy(update={"insecure_dev": True})
        typer.secho("warning: --insecure-dev: every request is allowed without a key",
                    fg=typer.colors.YELLOW, err=True)
    _run_server(settings, host, port, workers=workers, log_level=log_level)


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
    import uvicorn

    with _metrics_folder(settings, workers) as settings:
        # The workers build their app (and Settings) from the variables this process exports.
        settings.export()
        typer.echo(f"serving {settings.artifacts_dir}/current on http://{host}:{port} "
                   f"({workers} worker{'s' if workers > 1 else ''})", err=True)
        # By import string: `recommender` never imports `api` (imports flow api -> recommender).
        uvicorn.run("api.main:create_app", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level)


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
    import secrets

    from recommender.data.ingest import import_folder
    from recommender.data.store import open_store
    from recommender.demo.generator import generate_district
    from recommender.settings import ROLES

    settings = _settings(artifacts_dir=artifacts, database_url=db)
    typer.secho(f"1/4 generating a demo district in {out}", bold=True)
    summary = generate_district(out, residents=residents, courses=courses, seed=seed,
                                progress=True)
    typer.echo(f"    {summary['rows']}")
    store = open_store(settings.database_url)
    typer.secho(f"2/4 importing into {store!r}", bold=True)
    try:
        report = import_folder(out, store, report_path=out / "import_report.json", progress=True,
                               timezone=settings.timezone)
    finally:
        store.dispose()
    typer.echo(report.summary_text())
    if report.exit_code != 0:
        _fail("the generated district did not import cleanly; see the report above", 1)
    typer.secho(f"3/4 training from the store into {settings.artifacts_dir}", bold=True)
    train(out=settings.artifacts_dir, data=None, db=settings.database_url, seed=seed)
    if "platform" not in settings.key_roles().values():
        keys = ",".join(f"{role}:{secrets.token_urlsafe(16)}" for role in ROLES)
        settings = _settings(artifacts_dir=settings.artifacts_dir,
                             database_url=settings.database_url, api_keys=keys)
    typer.secho("4/4 serving. API keys for this demo (role:key): "
                + settings.api_keys.get_secret_value(), bold=True)
    _print_requests(out, settings, f"http://{host}:{port}")
    if serve_api:
        _run_server(settings, host, port)


def _print_requests(district: Path, settings: Settings, base: str) -> None:
    """A few ready-to-run requests against the demo server, with its platform key."""
    from recommender.data.datasets import load_district

    platform_key = next(k for k, role in settings.key_roles().items() if role == "platform")
    bundle = load_district(district, timezone=settings.timezone)
    resident = str(bundle.interactions["user_id"].iloc[-1])
    course = str(bundle.items["item_id"].iloc[0])
    hdr = f"-H 'X-API-Key: {platform_key}'"
    typer.echo(f"""Try:
  curl {hdr} '{base}/v1/residents/{resident}/recommendations?k=5'
  curl {hdr} '{base}/v1/residents/NEW-RESIDENT/recommendations?k=5'
  curl {hdr} -X POST {base}/v1/recommendations -H 'Content-Type: application/json' \\
       -d '{{"birth_year": 1955, "community_id": "C01", "interests": ["interest"]}}'
  curl {hdr} '{base}/v1/courses/{course}/similar?k=5'
  curl '{base}/healthz'     (OpenAPI docs: {base}/docs)""")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

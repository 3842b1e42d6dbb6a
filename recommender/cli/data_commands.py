"""Commands that make and load data: generate, import, datasets."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from recommender.cli.common import (
    DbOption,
    app,
    datasets_app,
    fail,
    open_store_or_fail,
    say_where,
    settings_from,
)


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
        fail(f"--format must be csv or parquet, got {fmt!r}")
    try:
        as_of_date = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError:
        fail(f"--as-of must be a date YYYY-MM-DD, got {as_of!r}")
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

    settings = settings_from(database_url=db)
    say_where(settings, artifacts=False)
    store = open_store_or_fail(settings)
    try:
        result = import_folder(folder, store, report_path=report, progress=True,
                               timezone=settings.timezone)
    except UnusableInput as exc:
        fail(str(exc), 2)
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
        fail(str(exc), 2)
    typer.echo(json.dumps(summary, indent=2, ensure_ascii=False, default=str))

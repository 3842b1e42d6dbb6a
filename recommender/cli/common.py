"""What every command shares: the Typer app, the common options, one-line failures, settings.

Each command is a thin shell over a function in the package, so everything it does can also be
called from Python and from the notebooks. Heavy modules are imported inside the commands to keep
``recommender --help`` instant. Defaults the flags leave open (database URL, artifacts folder,
time zone, API keys) come from :class:`recommender.settings.Settings`, the same object the API
reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

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
models_app = typer.Typer(
    help="The model registry (list, show, diff, promote, roll back) and A/B tests.",
    no_args_is_help=True)
app.add_typer(models_app, name="models")
ab_app = typer.Typer(help="Online A/B tests between two model versions.", no_args_is_help=True)
models_app.add_typer(ab_app, name="ab")

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: RECOMMENDER_DATABASE_URL or var/ SQLite)."),
]
ArtifactsOption = Annotated[
    Path | None,
    typer.Option("--artifacts", help="Artifacts folder (default: RECOMMENDER_ARTIFACTS_DIR or "
                 "artifacts/)."),
]



def fail(message: str, code: int = 2) -> NoReturn:
    """Stop the command with one red line on stderr and exit ``code``."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


# The flag that sets a Settings field, where a command has one (named in its errors).
_FLAGS = {"database_url": "--db", "artifacts_dir": "--artifacts", "timezone": "--timezone"}


def settings_from(**flags) -> Settings:
    """The settings, with every flag that was given (not None) over its ``RECOMMENDER_*``
    variable; an invalid value stops the command with one line naming the flag or the variable
    and the reason (never a key)."""
    from recommender.settings import SettingsError, load_settings, variable_of

    try:
        return load_settings(**flags)
    except SettingsError as exc:
        given = [name for name, value in flags.items()
                 if value is not None and variable_of(name) == exc.variable]
        where = _FLAGS.get(given[0], given[0]) if given else exc.variable
        fail(f"{where}: {exc.reason}", 2)


def open_store_or_fail(settings: Settings):
    """The store of ``settings``, its schema up to date; an unreachable database stops the
    command with one line (the URL without its password, and the driver's reason)."""
    from recommender.data.store import StoreError, open_store, unavailable_line

    try:
        return open_store(settings.database)
    except StoreError as exc:
        fail(unavailable_line(settings.database, exc), 2)


def say_where(settings: Settings, artifacts: bool = True) -> None:
    """Print which database (and artifacts folder) the command uses: the defaults depend on
    the working directory, so a command always says them."""
    typer.secho(settings.whereabouts(artifacts), err=True, fg=typer.colors.CYAN)



def load_bundle(data: Path | None, db: str | None):
    """A DataBundle from a folder (district or generic) or from the store."""
    from recommender.data.datasets import DatasetError, bundle_from_tables, load_dataset

    try:
        if data is not None:
            return load_dataset(data, timezone=settings_from().timezone)
        settings = settings_from(database_url=db)
        say_where(settings, artifacts=False)
        store = open_store_or_fail(settings)
        try:
            tables = store.read_all()
        finally:
            store.dispose()
        if tables["participations"].empty:
            fail(f"the store {store!r} holds no participations: run `recommender import` first")
        return bundle_from_tables(tables, name="store")
    except (DatasetError, FileNotFoundError) as exc:
        fail(str(exc), 2)

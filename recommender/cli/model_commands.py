"""Commands that fit and measure models: train, benchmark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from recommender.cli.common import DbOption, app, fail, load_bundle, settings_from


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
    promote: Annotated[bool, typer.Option(
        "--promote/--no-promote", help="Make the new version current (recorded in the "
        "registry's history); with --no-promote, compare it first (`models diff`).")] = True,
    params: Annotated[Path | None, typer.Option(
        "--params", help="The hybrid's parameters: a JSON file as `recommender tune` writes "
        "({\"params\": {...}}); unset parameters keep their defaults.")] = None,
) -> None:
    """Train the hybrid and write a new artifact version; point ARTIFACTS_DIR/current at it.

    Reads --data if given, else the store (--db / RECOMMENDER_DATABASE_URL). Exit code 2, with
    one line saying why: the data cannot be loaded or has nothing to learn the re-ranker from,
    or the --params file has an unknown parameter or a bad value.
    """
    import time
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        # Without a parameters file, the tables are read and validated (Arrow, mostly outside
        # the GIL) while the training modules import (scikit-learn and the models, ~1.5 s);
        # a parameters file is checked first, so a bad one is refused before any data is read.
        loading = pool.submit(load_bundle, data, db) if params is None else None
        from recommender.evaluation.protocols import SplitError
        from recommender.training.params import ParamsError, read_params
        from recommender.training.recipe import train_artifact

        try:
            hybrid_params = read_params(params) if params is not None else None
        except ParamsError as exc:
            fail(f"--params {exc}", 2)
        out = settings_from(artifacts_dir=out).artifacts_dir
        bundle = load_bundle(data, db) if loading is None else loading.result()
    # the table sizes only: summarize()'s distinct counts over every event cost a few tenths
    typer.echo(f"training on {bundle.name}: {len(bundle.users)} users, {len(bundle.items)} "
               f"items, {len(bundle.interactions)} interactions")
    started = time.perf_counter()
    try:
        path = train_artifact(bundle, out, seed=seed, promote=promote, params=hybrid_params,
                              params_file=params)
    except SplitError as exc:  # the data has nothing the re-ranker could learn from
        fail(str(exc), 2)
    where = (f"{out / 'current'} -> {path.name}" if promote
             else f"current unchanged (`recommender models promote {path.name}`)")
    typer.echo(f"artifact {path.name} written to {path} in {time.perf_counter() - started:.1f}s;"
               f" {where}")


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
    settings: Annotated[int | None, typer.Option(
        min=1, help="Tune each baseline over the first N settings of its grid instead of "
        "--budget: figures that do not depend on how busy the machine is.")] = None,
) -> None:
    """The hybrid against the baselines (popularity, recent popularity, popularity and category
    popularity by band, ALS, BPR, item-kNN, EASE) on one protocol.

    Exit code 2, with one line saying why: the dataset cannot be loaded or the protocol cannot
    split it (e.g. a time-based protocol on data with a single timestamp).
    """
    from recommender.evaluation.protocols import PROTOCOLS, SplitError
    from recommender.training.benchmark import check_repeats, format_table, run_benchmark

    if protocol.replace("_", "-") not in PROTOCOLS:
        fail(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    try:
        check_repeats(protocol, repeats)
    except ValueError as exc:
        fail(f"--repeats: {exc}")
    bundle = load_bundle(dataset, None)
    try:
        result = run_benchmark(bundle, protocol.replace("_", "-"), seed=seed, budget_s=budget,
                               log=lambda m: typer.echo(m, err=True), repeats=repeats,
                               settings=settings)
    except SplitError as exc:  # the protocol cannot split this data
        fail(str(exc), 2)
    typer.echo(format_table(result))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=float),
                            "utf-8")
        typer.echo(f"results written to {json_out}")

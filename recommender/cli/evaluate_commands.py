"""Commands that judge and tune a model: evaluate (a report with plots) and tune."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recommender.cli.common import ArtifactsOption, DbOption, app, fail, load_bundle, settings_from

DataOption = Annotated[
    Path | None, typer.Option("--data", help="District or generic benchmark folder (default: "
                              "the store).")
]


def _progress(message: str) -> None:
    typer.echo(message, err=True)


@app.command()
def evaluate(
    out: Annotated[Path, typer.Option("--out", help="Folder for report.html and metrics.json.")],
    version: Annotated[str, typer.Argument(
        help="Artifact version (a folder of the artifacts folder); default: current.")
    ] = "current",
    data: DataOption = None,
    db: DbOption = None,
    protocol: Annotated[
        str, typer.Option(help="temporal, cold-user, cold-item or random.")
    ] = "temporal",
    budget: Annotated[float, typer.Option(
        min=0.0, help="Tuning seconds per baseline (as in `benchmark`).")] = 30.0,
    artifacts: ArtifactsOption = None,
) -> None:
    """An evaluation report of a saved model against the baselines: report.html (plots inline,
    no external assets) and metrics.json.

    The artifact's recipe is refitted with its parameters and seed on the protocol's training
    part (its own files learned from the test period) and scored with the baselines on the
    same split: overall and per age band, coverage by category, novelty and popularity bias,
    calibration of its probabilities, score distributions. Exit code 2, with one line saying
    why: unknown or damaged artifact, unloadable data, or a protocol that cannot split it.
    """
    from recommender.evaluation.protocols import PROTOCOLS, SplitError
    from recommender.training.artifacts import ArtifactError, resolve
    from recommender.training.evaluation_report import evaluate_artifact, write_report
    from recommender.training.params import ParamsError
    from recommender.training.report import format_table

    name = protocol.replace("_", "-")
    if name not in PROTOCOLS:
        fail(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    artifacts_dir = settings_from(artifacts_dir=artifacts).artifacts_dir
    try:
        folder = resolve(artifacts_dir, version)
    except ArtifactError as exc:
        fail(str(exc), 2)
    bundle = load_bundle(data, db)
    try:
        report = evaluate_artifact(bundle, folder, name, budget_s=budget, log=_progress)
    except (ArtifactError, ParamsError, SplitError) as exc:
        fail(str(exc), 2)
    metrics_path, html_path = write_report(report, out)
    typer.echo(format_table(report.metrics))
    typer.echo(f"report written to {html_path} and {metrics_path} in "
               f"{report.metrics['seconds']:.1f}s")


@app.command()
def tune(
    out: Annotated[Path, typer.Option(
        "--out", help="Parameters file to write (JSON); `train --params FILE` reads it. Every "
        "trial goes to FILE's name with .trials.csv.")],
    budget: Annotated[float, typer.Option(
        "--budget", help="Minutes of search: no trial starts after them.")],
    data: DataOption = None,
    db: DbOption = None,
    trials: Annotated[int | None, typer.Option(
        "--trials", min=1, help="At most this many trials (the first is the defaults).")] = None,
    seed: Annotated[int, typer.Option(
        help="Seed of the validation cut, the models and the sampler; train with the same.")
    ] = 0,
) -> None:
    """Search the hybrid's hyper-parameters (optuna, seeded TPE) on the validation cut that
    `train` uses, scoring each trial by the nDCG@10 of what it would serve on held-out
    validation users; write the best to --out.

    Exit code 2, with one line saying why: unloadable data, a budget that is not positive, or
    data with too few validation users to hold any out.
    """
    from recommender.evaluation.protocols import SplitError
    from recommender.training.tuning import TuningError, trials_path, tune_hybrid

    if not 0 < budget < float("inf"):
        fail(f"--budget must be a positive number of minutes, got {budget}")
    bundle = load_bundle(data, db)
    try:
        result = tune_hybrid(bundle, out, budget, trials=trials, seed=seed, log=_progress)
    except (SplitError, TuningError) as exc:
        fail(str(exc), 2)
    typer.echo(f"best validation nDCG@10 {result['value']:.4f} (trial {result['best_trial']}"
               f" of {result['trials']}; the defaults scored {result['defaults_value']:.4f}) in "
               f"{result['seconds']:.1f}s")
    typer.echo(f"parameters written to {out}, every trial to {trials_path(out)}; train with "
               f"`recommender train --params {out} --seed {seed}`")

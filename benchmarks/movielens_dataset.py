"""MovieLens-100k or ml-latest-small, real public datasets, in the generic format, locally.

Nothing is downloaded here and nothing of the dataset is kept in this repository (GroupLens'
terms allow research use but not redistribution). The RecBole package on PyPI ships the dataset
in its "atomic files" form (``recbole/dataset_example/ml-100k/``), so a wheel fetched with the
ordinary package client is a local copy to read::

    .venv/bin/pip download recbole==1.2.1 --no-deps -d var/wheels
    .venv/bin/python benchmarks/movielens_dataset.py var/wheels/recbole-1.2.1-py3-none-any.whl \\
        var/quality/ml100k

``SOURCE`` may also be a folder holding ``ml-100k.inter``, ``ml-100k.user`` and
``ml-100k.item``. Every rating becomes an interaction (the rating itself is left out: the engine
ranks what people take up, not how they liked it) at its Unix timestamp; users keep their age,
gender and occupation; a movie's first genre is its category and all its genres its tags.
``--ratings-as-weights`` keeps the rating (1-5) as the ``weight`` column: real weights, for
the models that read them (models/weighting.py).

The LensKit source archive on PyPI ships ml-latest-small (``data/ml-latest-small/``: 671
users, 9,125 movies, 100,004 ratings from 1995 to 2016, no demographics), a second real dataset
of another shape: five times the catalogue, users with no age (no ``users.csv`` is written),
ratings in half stars. ``SOURCE`` is then that archive (``lenskit-*.tar.gz``) or a folder
holding its ``ratings.csv`` and ``movies.csv``::

    # lenskit-2026.4.0.tar.gz, "Download files" on https://pypi.org/project/lenskit/2026.4.0/
    # (pip will not fetch it alone: it would build the package, which needs Rust)
    .venv/bin/python benchmarks/movielens_dataset.py var/wheels/lenskit-2026.4.0.tar.gz \
        var/quality/mllatest

F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and Context.
ACM Transactions on Interactive Intelligent Systems 5, 4, Article 19.
"""

from __future__ import annotations

import argparse
import io
import tarfile
import zipfile
from pathlib import Path

import pandas as pd

MEMBER = "recbole/dataset_example/ml-100k/ml-100k.{}"
LATEST_SMALL = "data/ml-latest-small/{}.csv"


def _atomic(source: Path, kind: str) -> pd.DataFrame:
    """One RecBole atomic file (tab-separated, ``name:type`` headers) as a frame."""
    if source.is_dir():
        text = (source / f"ml-100k.{kind}").read_text("utf-8")
    else:
        with zipfile.ZipFile(source) as wheel:
            text = wheel.read(MEMBER.format(kind)).decode("utf-8")
    frame = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    return frame


def _read_ml100k(source: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """MovieLens-100k's ratings, users and movies; a movie's genres ``|``-joined."""
    inter = _atomic(source, "inter")
    users = _atomic(source, "user")[["user_id", "age", "gender", "occupation"]]
    items = _atomic(source, "item").rename(columns={"movie_title": "title"})
    items["genres"] = items["class"].str.split(" ").str.join("|")
    return inter, users, items


def _is_latest_small(source: Path) -> bool:
    if source.is_dir():
        return (source / "ratings.csv").exists()
    return source.name.endswith((".tar.gz", ".tgz"))


def _read_latest_small(source: Path) -> tuple[pd.DataFrame, None, pd.DataFrame]:
    """ml-latest-small's ratings and movies, from its folder or from inside the LensKit source
    archive (opened once); it has no users file."""
    names = ("ratings", "movies")
    if source.is_dir():
        texts = {name: (source / f"{name}.csv").read_text("utf-8") for name in names}
    else:
        with tarfile.open(source) as archive:
            members = {m.name: m for m in archive.getmembers()}
            texts = {}
            for name in names:
                wanted = LATEST_SMALL.format(name)
                member = next((m for n, m in members.items() if n.endswith("/" + wanted)), None)
                if member is None:
                    raise SystemExit(f"{source}: no {wanted} inside (is it LensKit's source "
                                     "archive?)")
                texts[name] = archive.extractfile(member).read().decode("utf-8")
    frames = {name: pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
              for name, text in texts.items()}
    inter = frames["ratings"].rename(columns={"userId": "user_id", "movieId": "item_id"})
    items = frames["movies"].rename(columns={"movieId": "item_id"})
    # "(no genres listed)" is the dataset's way of saying it has none: no category then.
    items["genres"] = items["genres"].where(items["genres"] != "(no genres listed)", "")
    return inter, None, items


def convert(source: Path, out: Path, ratings_as_weights: bool = False) -> dict:
    """Write ``interactions.csv``, ``items.csv`` and (where ages are known) ``users.csv``."""
    read = _read_latest_small if _is_latest_small(source) else _read_ml100k
    inter, users, items = read(source)
    out.mkdir(parents=True, exist_ok=True)
    inter = inter.rename(columns={"rating": "weight"})
    columns = ["user_id", "item_id", "timestamp"] + (["weight"] if ratings_as_weights else [])
    inter[columns].to_csv(out / "interactions.csv", index=False)
    if users is not None:
        users.to_csv(out / "users.csv", index=False)
    items["category"] = items["genres"].str.split("|").str[0]
    items["tags"] = items["genres"]
    items[["item_id", "title", "category", "tags"]].to_csv(out / "items.csv", index=False)
    n_users = len(users) if users is not None else inter["user_id"].nunique()
    return {"interactions": len(inter), "users": n_users, "items": len(items)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path,
                        help="the RecBole wheel, the LensKit source archive, or a folder of "
                             "either's files")
    parser.add_argument("out", type=Path)
    parser.add_argument("--ratings-as-weights", action="store_true",
                        help="keep each rating (1-5; 0.5-5 in ml-latest-small) as the "
                             "interaction's weight")
    args = parser.parse_args(argv)
    counts = convert(args.source, args.out, args.ratings_as_weights)
    print(f"{args.out}: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))


if __name__ == "__main__":
    main()

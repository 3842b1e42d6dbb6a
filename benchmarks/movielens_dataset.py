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


def _is_latest_small(source: Path) -> bool:
    if source.is_dir():
        return (source / "ratings.csv").exists()
    return source.name.endswith((".tar.gz", ".tgz"))


def _latest_small_csv(source: Path, name: str) -> pd.DataFrame:
    """One CSV of ml-latest-small, from its folder or from inside the LensKit source archive."""
    if source.is_dir():
        return pd.read_csv(source / f"{name}.csv", dtype=str, keep_default_na=False)
    with tarfile.open(source) as archive:
        wanted = LATEST_SMALL.format(name)
        member = next((m for m in archive.getmembers() if m.name.endswith("/" + wanted)), None)
        if member is None:
            raise SystemExit(f"{source}: no {wanted} inside (is it LensKit's source archive?)")
        text = archive.extractfile(member).read().decode("utf-8")
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def _convert_latest_small(source: Path, out: Path, ratings_as_weights: bool) -> dict:
    ratings = _latest_small_csv(source, "ratings").rename(
        columns={"userId": "user_id", "movieId": "item_id", "rating": "weight"})
    columns = ["user_id", "item_id", "timestamp"] + (["weight"] if ratings_as_weights else [])
    ratings[columns].to_csv(out / "interactions.csv", index=False)
    items = _latest_small_csv(source, "movies").rename(columns={"movieId": "item_id"})
    # "(no genres listed)" is the dataset's way of saying it has none: no category then.
    genres = items["genres"].where(items["genres"] != "(no genres listed)", "")
    items["category"] = genres.str.split("|").str[0]
    items["tags"] = genres
    items[["item_id", "title", "category", "tags"]].to_csv(out / "items.csv", index=False)
    return {"interactions": len(ratings), "users": ratings["user_id"].nunique(),
            "items": len(items)}


def convert(source: Path, out: Path, ratings_as_weights: bool = False) -> dict:
    """Write ``interactions.csv``, ``items.csv`` and (where ages are known) ``users.csv``."""
    out.mkdir(parents=True, exist_ok=True)
    if _is_latest_small(source):
        return _convert_latest_small(source, out, ratings_as_weights)
    inter = _atomic(source, "inter").rename(columns={"rating": "weight"})
    columns = ["user_id", "item_id", "timestamp"] + (["weight"] if ratings_as_weights else [])
    inter[columns].to_csv(out / "interactions.csv", index=False)
    users = _atomic(source, "user")
    users[["user_id", "age", "gender", "occupation"]].to_csv(out / "users.csv", index=False)
    items = _atomic(source, "item").rename(columns={"movie_title": "title"})
    genres = items["class"].str.split(" ")
    items["category"] = genres.str[0]
    items["tags"] = genres.str.join("|")
    items[["item_id", "title", "category", "tags"]].to_csv(out / "items.csv", index=False)
    return {"interactions": len(inter), "users": len(users), "items": len(items)}


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

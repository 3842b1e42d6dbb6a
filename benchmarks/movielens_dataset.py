"""MovieLens-100k, a real public dataset, in the generic benchmark format, from a local copy.

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

F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and Context.
ACM Transactions on Interactive Intelligent Systems 5, 4, Article 19.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import pandas as pd

MEMBER = "recbole/dataset_example/ml-100k/ml-100k.{}"


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


def convert(source: Path, out: Path, ratings_as_weights: bool = False) -> dict:
    """Write ``interactions.csv``, ``users.csv`` and ``items.csv`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
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
    parser.add_argument("source", type=Path, help="the RecBole wheel, or a folder of its files")
    parser.add_argument("out", type=Path)
    parser.add_argument("--ratings-as-weights", action="store_true",
                        help="keep each rating (1-5) as the interaction's weight")
    args = parser.parse_args(argv)
    counts = convert(args.source, args.out, args.ratings_as_weights)
    print(f"{args.out}: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))


if __name__ == "__main__":
    main()

"""The MovieLens converter reads RecBole's atomic files of MovieLens-100k (a folder or the
wheel) and LensKit's copy of ml-latest-small (a folder or the source archive) into the generic
benchmark format, which the engine's own loader then reads without loss."""

from __future__ import annotations

import importlib.util
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from recommender.data.generic import load_benchmark

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("movielens_dataset",
                                              ROOT / "benchmarks" / "movielens_dataset.py")
movielens = importlib.util.module_from_spec(spec)
spec.loader.exec_module(movielens)

FILES = {
    "inter": "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
             "1\t10\t4\t881250949\n2\t10\t2\t891717742\n2\t11\t5\t878887116\n",
    "user": "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
            "1\t24\tM\ttechnician\t85711\n2\t67\tF\tother\t94043\n",
    "item": "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
            "10\tToy Story\t1995\tAnimation Children's Comedy\n11\tHeat\t1995\tAction\n",
}


def _write_folder(path: Path, files: dict[str, str], name: str) -> Path:
    path.mkdir()
    for kind, text in files.items():
        (path / name.format(kind)).write_text(text, "utf-8")
    return path


def _folder(path: Path) -> Path:
    return _write_folder(path, FILES, "ml-100k.{}")


def _wheel(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        for kind, text in FILES.items():
            wheel.writestr(movielens.MEMBER.format(kind), text)
    return path


@pytest.mark.parametrize("make", [_folder, _wheel])
def test_atomic_files_become_the_generic_format(tmp_path, make):
    source = make(tmp_path / "source")
    counts = movielens.convert(source, tmp_path / "out")
    assert counts == {"interactions": 3, "users": 2, "items": 2}
    bundle = load_benchmark(tmp_path / "out")
    inter = bundle.interactions
    assert inter["user_id"].astype(str).tolist() == ["1", "2", "2"]
    assert inter["timestamp"].is_monotonic_increasing is False  # file order is kept
    assert bundle.users.set_index("user_id").loc["2", "age_band"] == "elderly"
    items = bundle.items.set_index("item_id")
    assert items.loc["10", "category"] == "Animation"
    assert items.loc["10", "tags"] == "Animation|Children's|Comedy"
    assert items.loc["11", "title"] == "Heat"
    assert (inter["weight"] == 1.0).all()  # the rating is left out by default


def test_ratings_can_be_kept_as_weights(tmp_path):
    source = _folder(tmp_path / "source")
    movielens.convert(source, tmp_path / "out", ratings_as_weights=True)
    inter = load_benchmark(tmp_path / "out").interactions
    assert inter["weight"].tolist() == [4.0, 2.0, 5.0]


LATEST_SMALL = {
    "ratings": "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n"
               "7,31,4.5,1011208436\n",
    "movies": "movieId,title,genres\n31,Dangerous Minds (1995),Drama\n"
              "1029,Dumbo (1941),Animation|Children|Drama|Musical\n"
              "5000,A Film Nobody Tagged (2001),(no genres listed)\n",
}


def _latest_small_folder(path: Path) -> Path:
    return _write_folder(path, LATEST_SMALL, "{}.csv")


def _lenskit_archive(path: Path) -> Path:
    """A source archive laid out as LensKit's on PyPI: the data under ``lenskit-X/data/``."""
    with tarfile.open(path, "w:gz") as archive:
        for name, text in LATEST_SMALL.items():
            data = text.encode("utf-8")
            member = tarfile.TarInfo("lenskit-2026.4.0/" + movielens.LATEST_SMALL.format(name))
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return path


@pytest.mark.parametrize("make", [_latest_small_folder,
                                  lambda p: _lenskit_archive(p.with_suffix(".tar.gz"))])
def test_ml_latest_small_becomes_the_generic_format_without_users(tmp_path, make):
    source = make(tmp_path / "source")
    out = tmp_path / "out"
    counts = movielens.convert(source, out)
    assert counts == {"interactions": 3, "users": 2, "items": 3}
    assert not (out / "users.csv").exists()  # no ages: every user's band is unknown
    bundle = load_benchmark(out)
    inter = bundle.interactions
    assert inter["item_id"].astype(str).tolist() == ["31", "1029", "31"]
    assert (inter["weight"] == 1.0).all()
    items = bundle.items.set_index("item_id")
    assert items.loc["1029", "category"] == "Animation"
    assert items.loc["1029", "tags"] == "Animation|Children|Drama|Musical"
    # "(no genres listed)" is no genre at all, not a genre of that name
    assert items[["category", "tags"]].loc["5000"].isna().all()


def test_ml_latest_small_half_star_ratings_can_be_weights(tmp_path):
    movielens.convert(_latest_small_folder(tmp_path / "source"), tmp_path / "out",
                      ratings_as_weights=True)
    inter = load_benchmark(tmp_path / "out").interactions
    assert inter["weight"].tolist() == [2.5, 3.0, 4.5]


def test_an_archive_without_the_dataset_is_named(tmp_path):
    empty = tmp_path / "other-1.0.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(SystemExit, match="no data/ml-latest-small/ratings.csv inside"):
        movielens.convert(empty, tmp_path / "out")

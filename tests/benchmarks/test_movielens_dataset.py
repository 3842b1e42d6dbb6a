"""The MovieLens-100k converter reads RecBole's atomic files (a folder or the wheel) into the
generic benchmark format, which the engine's own loader then reads without loss."""

from __future__ import annotations

import importlib.util
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


def _folder(path: Path) -> Path:
    path.mkdir()
    for kind, text in FILES.items():
        (path / f"ml-100k.{kind}").write_text(text, "utf-8")
    return path


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

import numpy as np
import pandas as pd
import pytest

from features.courses import CourseFeatures

from .conftest import CUTOFF


def test_district_values_are_exact(district):
    t = CourseFeatures(cutoff=CUTOFF)
    f = t.fit_transform(district)
    assert f.index.name == "item_index" and f["item_id"].tolist() == ["k1", "k2", "k3"]
    assert f["category"].tolist() == ["interest", "skills", "handicraft"]
    assert f["fee_tier"].tolist() == ["inclusive", "upgraded", "inclusive"]
    assert f["street"].tolist() == ["s1", "s2", "s1"]
    # k3 has no weekday column value: the weekday of its start date (Monday 2024-07-01).
    assert f["weekday"].tolist() == [0, 2, 0]
    assert f["slot"].tolist() == ["morning", "evening", "unknown"]
    assert f["start_hour"].tolist() == [9.0, 19.5, -1.0]
    # k1: u1 enrolled; k2: u2 enrolled then cancelled, u4 enrolled.
    assert f["n_enrolled"].tolist() == [1, 1, 0]
    assert f["fill_rate"].tolist() == [0.1, 0.25, 0.0]
    assert f["tb_elderly"].tolist() == [1, 1, 0]
    assert f["tb_working_age"].tolist() == [0, 1, 0]
    assert t.tags_ == sorted(["digital", "phone", "书法", "传统"])
    assert f["tag_书法"].tolist() == [1, 0, 0]
    assert f["n_events"].tolist() == [8, 4, 0]
    assert f["n_users"].tolist() == [1, 2, 0]
    assert f["pop_elderly"].tolist() == [1, 0, 0]
    assert f["pop_school_age"].tolist() == [0, 1, 0]
    assert f["pop_working_age"].tolist() == [0, 1, 0]
    assert f["popc_c1"].tolist() == [1, 1, 0]
    assert f["popc_c2"].tolist() == [0, 1, 0]
    assert not f.isna().any().any()


def test_max_tags_keeps_the_most_frequent(district):
    items = district.items.copy()
    items["tags"] = ["a|b", "a|c", "a|b"]
    t = CourseFeatures(cutoff=CUTOFF, max_tags=2).fit(district.__class__(
        district.interactions, district.users, items))
    assert t.tags_ == ["a", "b"]


def test_content_rows_are_unit_length_and_course_without_text_is_valid(district):
    t = CourseFeatures(cutoff=CUTOFF).fit(district)
    c = t.content_matrix(district)
    assert c.shape == (3, len(t.content_feature_names_)) and c.dtype == np.float32
    np.testing.assert_allclose(np.sqrt(c.multiply(c).sum(axis=1)).A1, 1.0, rtol=1e-6)
    text_cols = [j for j, n in enumerate(t.content_feature_names_) if n.startswith("text_")]
    assert c[2][:, text_cols].nnz == 0  # k3 has no title, description or tags
    assert c[2, t.content_feature_names_.index("category_handicraft")] > 0


def test_chinese_text_matches_by_character_ngrams(district):
    t = CourseFeatures(cutoff=CUTOFF).fit(district)
    assert "text_书法" in t.content_feature_names_
    known = t.content_matrix(district)
    new = pd.DataFrame({"item_id": ["n1", "n2"], "title": ["书法提高班", "Computer skills"],
                        "description": [None, "smartphone basics"]})
    fresh = t.content_matrix(new)
    assert fresh.shape == (2, known.shape[1])
    sims = (fresh @ known.T).toarray()
    assert sims[0, 0] > 0 and sims[0, 1] == 0
    assert sims[1, 1] > sims[1, 0]


def test_items_with_nothing_known_get_zero_rows(generic):
    t = CourseFeatures().fit(generic)
    assert t.vectorizer_ is None
    c = t.content_matrix(generic)
    assert c.shape[0] == 3 and c.nnz == 0
    f = t.transform(generic)
    assert f["category"].tolist() == ["unknown"] * 3
    assert f["n_users"].tolist() == [2, 1, 1] and f["pop_unknown"].tolist() == [2, 1, 1]
    assert {"items.title", "items.description", "items.tags"} <= set(t.skipped_)


@pytest.mark.parametrize("param,value", [("ngram_range", (3, 1)), ("max_tags", -1),
                                         ("block_weights", {"colour": 1.0})])
def test_bad_parameters_are_named(district, param, value):
    with pytest.raises(ValueError, match=param):
        CourseFeatures(**{param: value}).fit(district)

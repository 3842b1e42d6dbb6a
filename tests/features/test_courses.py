import numpy as np
import pandas as pd
import pytest

from features.courses import CourseFeatures
from features.frames import DataBundle


def test_vocabularies_come_from_the_items_table(district):
    t = CourseFeatures().fit(district)
    assert t.categories_ == ["handicraft", "interest", "skills"]
    assert t.fee_tiers_ == ["inclusive", "upgraded"]
    assert t.tags_ == sorted(["digital", "phone", "书法", "传统"])
    c = t.content_matrix(district).toarray()
    names = t.content_feature_names_
    assert c[0, names.index("tag_书法")] > 0 and c[1, names.index("tag_书法")] == 0
    # k2 targets working_age and elderly, k1 elderly only, k3 preschool only.
    assert c[1, names.index("tb_working_age")] > 0 and c[0, names.index("tb_working_age")] == 0
    assert c[2, names.index("tb_preschool")] > 0


def test_max_tags_keeps_the_most_frequent(district):
    items = district.items.copy()
    items["tags"] = ["a|b", "a|c", "a|b"]
    t = CourseFeatures(max_tags=2).fit(district.__class__(
        district.interactions, district.users, items))
    assert t.tags_ == ["a", "b"]


def test_content_rows_are_unit_length_and_course_without_text_is_valid(district):
    t = CourseFeatures().fit(district)
    c = t.content_matrix(district)
    assert c.shape == (3, len(t.content_feature_names_)) and c.dtype == np.float32
    np.testing.assert_allclose(np.sqrt(c.multiply(c).sum(axis=1)).A1, 1.0, rtol=1e-6)
    text_cols = [j for j, n in enumerate(t.content_feature_names_) if n.startswith("text_")]
    assert c[2][:, text_cols].nnz == 0  # k3 has no title, description or tags
    assert c[2, t.content_feature_names_.index("category_handicraft")] > 0


def test_chinese_text_matches_by_character_ngrams(district):
    new = pd.DataFrame({"item_id": ["n1", "n2"], "title": ["书法提高班", "Computer skills"],
                        "description": [None, "smartphone basics"]})
    bundle = DataBundle(district.interactions, district.users,
                        pd.concat([district.items, new], ignore_index=True))
    t = CourseFeatures().fit(bundle)
    assert "text_书法" in t.content_feature_names_
    c = t.content_matrix(bundle)
    assert c.shape == (5, len(t.content_feature_names_))
    sims = (c[3:] @ c[:3].T).toarray()  # n1, n2 against k1 (书法入门), k2 (Digital skills)
    assert sims[0, 0] > 0 and sims[0, 1] == 0
    assert sims[1, 1] > sims[1, 0]


def test_items_with_nothing_known_get_zero_rows(generic):
    t = CourseFeatures().fit(generic)
    assert t.vectorizer_ is None
    c = t.content_matrix(generic)
    assert c.shape[0] == 3 and c.nnz == 0
    assert t.categories_ == [] and t.tags_ == []


@pytest.mark.parametrize("param,value", [("ngram_range", (3, 1)), ("max_tags", -1),
                                         ("block_weights", {"colour": 1.0})])
def test_bad_parameters_are_named(district, param, value):
    with pytest.raises(ValueError, match=param):
        CourseFeatures(**{param: value}).fit(district)

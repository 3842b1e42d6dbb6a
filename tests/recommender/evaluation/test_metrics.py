"""Metrics at k against values computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.evaluation.metrics import (
    catalogue_coverage,
    evaluate,
    hit_matrix,
    map_at_k,
    ndcg_at_k,
    paired_band_gaps,
    precision_at_k,
    recall_at_k,
    relevance_matrix,
)

L2_3 = math.log2(3)  # discount of rank 2 is 1/log2(3) = 0.6309...


def _row(*items, width=10):
    """One recommendation row of ``width`` columns, padded with -1."""
    return list(items) + [-1] * (width - len(items))


def _all(rec, rel, k=10):
    rec = np.asarray(rec)
    return (
        precision_at_k(rec, rel, k),
        recall_at_k(rec, rel, k),
        ndcg_at_k(rec, rel, k),
        map_at_k(rec, rel, k),
    )


def test_single_hit_at_rank_1_versus_rank_10():
    # One relevant item (7) among ten recommendations.
    rank1 = [7, 0, 1, 2, 3, 4, 5, 6, 8, 9]
    rank10 = [0, 1, 2, 3, 4, 5, 6, 8, 9, 7]
    p, r, n, m = _all([rank1, rank10], [{7}, {7}])
    # precision = 1 hit / 10 in both rows
    np.testing.assert_allclose(p, [0.1, 0.1])
    # recall = 1 / |{7}| = 1 in both rows
    np.testing.assert_allclose(r, [1.0, 1.0])
    # nDCG: rank 1 -> (1/log2(2)) / (1/log2(2)) = 1; rank 10 -> (1/log2(11)) / 1 = 0.289065
    np.testing.assert_allclose(n, [1.0, 1 / math.log2(11)])
    assert n[1] == pytest.approx(0.2890648, abs=1e-7)
    # AP: rank 1 -> (1/1) / min(1, 10) = 1; rank 10 -> (1/10) / 1 = 0.1
    np.testing.assert_allclose(m, [1.0, 0.1])


def test_fewer_relevant_than_k():
    # relevant {1, 2, 3}; hits at ranks 1 (item 1) and 3 (item 3); item 2 not recommended.
    rec = [[1, 9, 3, 10, 11, 12, 13, 14, 15, 16]]
    p, r, n, m = _all(rec, [{1, 2, 3}])
    # precision = 2 / 10 = 0.2
    assert p[0] == pytest.approx(0.2)
    # recall = 2 / 3
    assert r[0] == pytest.approx(2 / 3)
    # DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5
    # IDCG over min(3, 10) = 3 ranks = 1 + 1/log2(3) + 1/log2(4) = 1 + 0.630930 + 0.5 = 2.130930
    # nDCG = 1.5 / 2.130930 = 0.703918
    assert n[0] == pytest.approx(1.5 / (1 + 1 / L2_3 + 0.5))
    assert n[0] == pytest.approx(0.703918, abs=1e-6)
    # AP = (precision@1 + precision@3) / min(3, 10) = (1/1 + 2/3) / 3 = 0.555556
    assert m[0] == pytest.approx((1 + 2 / 3) / 3)


def test_more_relevant_than_k_uses_k_in_ideal_and_map():
    # k = 3, relevant {0..4} (5 items), hits at ranks 2 and 3.
    rec = [[9, 0, 1]]
    p, r, n, m = _all(rec, [set(range(5))], k=3)
    # precision = 2/3; recall = 2/5
    assert p[0] == pytest.approx(2 / 3)
    assert r[0] == pytest.approx(2 / 5)
    # DCG = 1/log2(3) + 1/log2(4) = 0.630930 + 0.5 = 1.130930
    # IDCG over min(5, 3) = 3 ranks = 2.130930  ->  nDCG = 0.530721
    assert n[0] == pytest.approx((1 / L2_3 + 0.5) / (1 + 1 / L2_3 + 0.5))
    assert n[0] == pytest.approx(0.530721, abs=1e-6)
    # AP = (precision@2 + precision@3) / min(5, 3) = (1/2 + 2/3) / 3 = 0.388889
    assert m[0] == pytest.approx((0.5 + 2 / 3) / 3)


def test_no_hit_is_zero_everywhere():
    p, r, n, m = _all([list(range(10))], [{42, 43}])
    assert (p[0], r[0], n[0], m[0]) == (0.0, 0.0, 0.0, 0.0)


def test_padding_keeps_k_in_the_precision_denominator():
    # Only 2 items recommended (rest -1); relevant {5}, hit at rank 1.
    padded = [_row(5, 6)]
    p, r, n, m = _all(padded, [{5}])
    # precision = 1 / 10 (not 1 / 2), recall = 1/1, nDCG = 1, AP = (1/1) / 1
    np.testing.assert_allclose([p[0], r[0], n[0], m[0]], [0.1, 1.0, 1.0, 1.0])
    # A narrower array is padding too: the same numbers from a 2-column array.
    narrow = _all([[5, 6]], [{5}])
    np.testing.assert_allclose([x[0] for x in narrow], [0.1, 1.0, 1.0, 1.0])


def test_padding_is_never_a_hit_and_wider_arrays_are_truncated():
    # -1 must not match anything; the 11th column (item 3, relevant) is beyond k = 10.
    rec = [[-1] * 10 + [3]]
    p, r, n, m = _all(rec, [{3}])
    assert (p[0], r[0], n[0], m[0]) == (0.0, 0.0, 0.0, 0.0)


def test_repeated_item_counts_once():
    # [7, 7] with relevant {7}, k = 2: one hit at rank 1 only.
    hits, n_rel = hit_matrix([[7, 7]], [{7}], k=2)
    assert hits.tolist() == [[True, False]]
    assert n_rel.tolist() == [1]
    # precision = 1/2; AP = 1/1 (not (1 + 2/2) / 1 = 2)
    assert precision_at_k([[7, 7]], [{7}], k=2)[0] == pytest.approx(0.5)
    assert map_at_k([[7, 7]], [{7}], k=2)[0] == pytest.approx(1.0)


def test_two_hits_exact_values():
    # relevant {4, 8}; hits at ranks 2 and 4, k = 5.
    rec = [[1, 4, 2, 8, 3]]
    p, r, n, m = _all(rec, [{4, 8}], k=5)
    # precision = 2/5; recall = 2/2
    assert p[0] == pytest.approx(0.4)
    assert r[0] == pytest.approx(1.0)
    # DCG = 1/log2(3) + 1/log2(5) = 0.630930 + 0.430677 = 1.061607
    # IDCG = 1 + 1/log2(3) = 1.630930  ->  nDCG = 0.650921
    assert n[0] == pytest.approx(0.650921, abs=1e-6)
    # AP = (1/2 + 2/4) / min(2, 5) = 1.0 / 2 = 0.5
    assert m[0] == pytest.approx(0.5)


def test_user_without_relevant_items():
    p, r, n, m = _all([[1, 2]], [set()], k=2)
    assert p[0] == 0.0
    assert np.isnan(r[0]) and np.isnan(n[0]) and np.isnan(m[0])


def test_sparse_relevance_equals_sets():
    rec = np.array([[0, 1, 2], [3, 2, 1], [4, -1, -1]])
    sets = [{1, 5}, {2, 3}, set()]
    mat = sp.csr_matrix(([1, 1, 1, 1], ([0, 0, 1, 1], [1, 5, 2, 3])), shape=(3, 6))
    for fn in (precision_at_k, recall_at_k, ndcg_at_k, map_at_k):
        np.testing.assert_array_equal(fn(rec, sets, 3), fn(rec, mat, 3))


def test_evaluate_means_coverage_and_bands():
    rec = np.array([
        _row(7),          # elderly: hit at rank 1 of {7}: P .1, R 1, nDCG 1, AP 1
        _row(0, 7),       # elderly: hit at rank 2 of {7}: P .1, R 1, nDCG 1/log2(3), AP .5
        _row(1, 2),       # preschool: no hit of {9}: all 0
        _row(3),          # no band: relevant {3, 4}: P .1, R .5, nDCG 1/(1+1/log2 3), AP .5
        _row(5),          # school_age but no relevant items: left out of every mean
    ])
    rel = [{7}, {7}, {9}, {3, 4}, set()]
    bands = ["elderly", "elderly", "preschool", None, "school_age"]
    out = evaluate(rec, rel, n_items=20, user_bands=bands)
    assert out["users"] == 4
    assert out["precision@10"] == pytest.approx((0.1 + 0.1 + 0 + 0.1) / 4)
    assert out["recall@10"] == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    nd3 = 1 / (1 + 1 / L2_3)  # 0.613147
    assert out["ndcg@10"] == pytest.approx((1 + 1 / L2_3 + 0 + nd3) / 4)
    assert out["map@10"] == pytest.approx((1 + 0.5 + 0 + 0.5) / 4)
    # distinct items of the 4 evaluated rows: {7, 0, 1, 2, 3} -> 5 / 20 (item 5 not counted)
    assert out["coverage"] == pytest.approx(0.25)
    assert list(out["by_band"]) == ["preschool", "elderly", "unknown"]
    eld = out["by_band"]["elderly"]
    assert eld["users"] == 2
    assert eld["ndcg@10"] == pytest.approx((1 + 1 / L2_3) / 2)
    assert eld["map@10"] == pytest.approx(0.75)
    assert eld["coverage"] == pytest.approx(2 / 20)  # {7, 0}
    assert out["by_band"]["preschool"]["ndcg@10"] == 0.0
    assert out["by_band"]["unknown"]["recall@10"] == pytest.approx(0.5)


def test_paired_band_gaps_compare_user_by_user():
    ours = [_row(7), _row(7), _row(3), _row(5), _row(1)]
    theirs = [_row(0, 7), _row(0), _row(3), _row(5), _row(2)]
    rel = [{7}, {7}, {3}, set(), {1}]
    bands = ["elderly", "elderly", None, "elderly", "working_age"]
    gaps = paired_band_gaps(ours, {"als": theirs}, rel, bands)["als"]
    # elderly: 1 - 1/log2(3) and 1 - 0; the user with nothing relevant is left out
    diffs = [1 - 1 / L2_3, 1.0]
    assert gaps["elderly"]["users"] == 2
    assert gaps["elderly"]["difference"] == pytest.approx(np.mean(diffs))
    assert gaps["elderly"]["se"] == pytest.approx(np.std(diffs, ddof=1) / math.sqrt(2))
    assert gaps["unknown"] == {"difference": 0.0, "se": pytest.approx(np.nan, nan_ok=True),
                               "users": 1}
    assert gaps["working_age"]["difference"] == pytest.approx(1.0)
    assert list(gaps) == ["working_age", "elderly", "unknown"]
    # the band means' difference is the mean of the per-user differences
    a = evaluate(ours, rel, 20, user_bands=bands)["by_band"]["elderly"]["ndcg@10"]
    b = evaluate(theirs, rel, 20, user_bands=bands)["by_band"]["elderly"]["ndcg@10"]
    assert gaps["elderly"]["difference"] == pytest.approx(a - b)


def test_evaluate_k_names_the_keys_and_without_bands():
    out = evaluate([[1, 2, 3]], [{3}], n_items=4, k=3)
    assert set(out) == {"ndcg@3", "precision@3", "recall@3", "map@3", "coverage", "users",
                        "by_band"}
    assert out["by_band"] == {}
    # hit at rank 3: AP = (1/3)/1
    assert out["map@3"] == pytest.approx(1 / 3)


def test_evaluate_with_no_evaluated_users_gives_nan():
    out = evaluate([[1, 2]], [set()], n_items=3, k=2)
    assert out["users"] == 0
    assert np.isnan(out["ndcg@2"])


def test_coverage_counts_distinct_items_in_top_k():
    rec = [[0, 1, 2], [1, 2, 9]]
    # top-2: {0, 1, 2} of 10 items; the third column is beyond k
    assert catalogue_coverage(rec, 10, k=2) == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"recommended": [1, 2], "relevant": [{1}], "n_items": 3}, "2-D"),
        ({"recommended": [[1.5, 2.0]], "relevant": [{1}], "n_items": 3}, "integer"),
        ({"recommended": [[1, -2]], "relevant": [{1}], "n_items": 3}, "-2"),
        ({"recommended": [[1, 5]], "relevant": [{1}], "n_items": 3}, "n_items is 3"),
        ({"recommended": [[1, 2]], "relevant": [{1}, {2}], "n_items": 3}, "one set"),
        ({"recommended": [[1, 2]], "relevant": [{1}], "n_items": 0}, "n_items"),
        ({"recommended": [[1, 2]], "relevant": [{1}], "n_items": 3, "k": 0}, "k must"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate(**kwargs)


def test_relevance_matrix_maps_ids_and_refuses_unknown_items():
    pairs = pd.DataFrame({"user_id": ["u2", "u1", "u1", "u9"], "item_id": ["b", "a", "a", "c"]})
    mat = relevance_matrix(pairs, ["u1", "u2"], ["a", "b", "c"])
    # u9 is not evaluated (ignored); the duplicate (u1, a) is one relevant item
    assert mat.toarray().tolist() == [[1, 0, 0], [0, 1, 0]]
    with pytest.raises(ValueError, match="not in item_ids"):
        relevance_matrix(pairs, ["u1", "u2"], ["a", "c"])


def _reference(row, rel, k):
    """Straightforward per-row implementation of the documented definitions."""
    seen, hits = set(), []
    for item in list(row)[:k]:
        hits.append(item >= 0 and item in rel and item not in seen)
        seen.add(item)
    hits += [False] * (k - len(hits))
    n_hit = sum(hits)
    dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(hits) if h)
    idcg = sum(1 / math.log2(r + 2) for r in range(min(len(rel), k)))
    ap, running = 0.0, 0
    for r, h in enumerate(hits):
        if h:
            running += 1
            ap += running / (r + 1)
    return n_hit / k, n_hit / len(rel), dcg / idcg, ap / min(len(rel), k)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(-1, 12), min_size=0, max_size=8),
            st.sets(st.integers(0, 12), min_size=1, max_size=6),
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(1, 8),
)
def test_matches_reference_implementation(rows, k):
    width = max(len(r) for r, _ in rows)
    rec = np.array([r + [-1] * (width - len(r)) for r, _ in rows], dtype=np.int64)
    rec = rec.reshape(len(rows), width)
    rel = [s for _, s in rows]
    got = np.column_stack(_all(rec, rel, k))
    want = np.array([_reference(r, s, k) for r, s in zip(rec.tolist(), rel)])
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert np.all((got >= 0) & (got <= 1 + 1e-12))

"""The A/B assignment: stable per resident, the configured share within tolerance, independent
between experiments; and versions resolved as artifact folders."""

from __future__ import annotations

import json
import math

import pytest

from recommender.serving.errors import NotFound
from recommender.serving.experiments import assign, resolve_version
from recommender.training.artifacts import FORMAT_VERSION

RESIDENTS = [f"R{n:06d}" for n in range(20_000)]


def test_a_resident_keeps_their_variant():
    first = [assign(7, r, 0.2) for r in RESIDENTS[:2000]]
    assert [assign(7, r, 0.2) for r in RESIDENTS[:2000]] == first
    assert set(first) == {"A", "B"}


@pytest.mark.parametrize("share", [0.05, 0.2, 0.5, 0.9])
def test_the_share_of_b_is_the_configured_share(share):
    observed = sum(assign(3, r, share) == "B" for r in RESIDENTS) / len(RESIDENTS)
    # four standard errors of a binomial share: fails by chance about once in 16,000 runs
    assert abs(observed - share) < 4 * math.sqrt(share * (1 - share) / len(RESIDENTS))


def test_a_larger_share_only_moves_residents_from_a_to_b():
    small = {r for r in RESIDENTS if assign(4, r, 0.1) == "B"}
    large = {r for r in RESIDENTS if assign(4, r, 0.3) == "B"}
    assert small < large


def test_experiments_assign_independently():
    one = [assign(1, r, 0.5) == "B" for r in RESIDENTS]
    two = [assign(2, r, 0.5) == "B" for r in RESIDENTS]
    both = sum(a and b for a, b in zip(one, two)) / len(RESIDENTS)
    assert abs(both - 0.25) < 4 * math.sqrt(0.25 * 0.75 / len(RESIDENTS))


def test_a_version_is_a_complete_artifact_of_the_registry(tmp_path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "manifest.json").write_text(
        json.dumps({"version": "v1", "format": FORMAT_VERSION}))
    (tmp_path / "half").mkdir()
    assert resolve_version(tmp_path, "v1") == (tmp_path / "v1").resolve()
    with pytest.raises(NotFound, match=r"unknown version 'half'.*\(known: v1\)"):
        resolve_version(tmp_path, "half")
    with pytest.raises(NotFound, match="unknown version 'v9'"):
        resolve_version(tmp_path, "v9")
    with pytest.raises(NotFound, match="unknown version '..'"):
        resolve_version(tmp_path / "v1", "..")

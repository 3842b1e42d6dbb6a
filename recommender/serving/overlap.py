"""How much two model versions agree: their top-k lists for the same residents, side by side.

``recommender models diff`` loads both versions through :class:`Engine` (checksums verified) and
ranks a seeded sample of the residents both know, the way the engine ranks a known resident
(the model's own list over the whole catalogue: no seats, dates or eligibility, which depend on
the store and would be the same for both).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recommender.domain import BAND_NAMES
from recommender.serving.engine import Engine


def load_pair(artifacts_dir: Path, a: str, b: str) -> tuple[Engine, Engine]:
    """Both versions loaded and verified (``current`` allowed for either)."""
    return Engine.load(Path(artifacts_dir), a), Engine.load(Path(artifacts_dir), b)


def top_k_overlap(engine_a: Engine, engine_b: Engine, sample: int = 200, seed: int = 0,
                  k: int = 10) -> dict:
    """Overlap of the two engines' top-``k`` lists on a sample of residents both know.

    Returns ``{"residents", "k", "mean", "identical", "same_first", "by_band"}``: the mean share
    of the ``k`` courses the two lists have in common, the share of residents whose lists are
    identical (same courses, same order), the share whose first course is the same, and the
    mean overlap per age band (as version A knows it). ``residents`` is 0, and the figures
    None, when the two versions know no resident in common.
    """
    if sample < 1 or k < 1:
        raise ValueError(f"sample and k must be at least 1, got sample={sample}, k={k}")
    common = sorted(set(engine_a.mapping.user_ids_.tolist())
                    & set(engine_b.mapping.user_ids_.tolist()))
    rng = np.random.default_rng(seed)
    chosen = [common[i] for i in sorted(rng.choice(len(common), size=min(sample, len(common)),
                                                   replace=False))] if common else []
    shares, identical, same_first, bands = [], 0, 0, {}
    for user in chosen:
        ctx_a, ctx_b = engine_a.context_for(user), engine_b.context_for(user)
        first = [r.item_id for r in engine_a.recommend(ctx_a, n=k, explain=False)]
        second = [r.item_id for r in engine_b.recommend(ctx_b, n=k, explain=False)]
        share = len(set(first) & set(second)) / k
        shares.append(share)
        identical += first == second
        same_first += bool(first) and bool(second) and first[0] == second[0]
        bands.setdefault(ctx_a.age_band or "unknown", []).append(share)
    n = len(chosen)
    return {"residents": n, "k": k,
            "mean": float(np.mean(shares)) if n else None,
            "identical": identical / n if n else None,
            "same_first": same_first / n if n else None,
            "by_band": {band: {"residents": len(bands[band]), "mean": float(np.mean(bands[band]))}
                        for band in sorted(bands, key=_band_order)}}


def _band_order(band: str) -> tuple[int, str]:
    return (BAND_NAMES.index(band) if band in BAND_NAMES else len(BAND_NAMES), band)


__all__ = ["load_pair", "top_k_overlap"]

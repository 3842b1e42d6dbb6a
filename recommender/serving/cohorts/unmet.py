"""Unmet demand: what a cohort is drawn to that no open course near it covers.

A cohort is *drawn to* a category or a tag through two signals: its residents' history (how
many distinct residents took a course of it, in the model's training history) and the model's
affinity (the cohort's expected demand for open courses of it anywhere in the district). A
category or tag is *covered* when an open, running course of it fits the cohort's band
(any band for ``band="all"``) and is held *near* the community: in the community itself or in
another community on the same street (the district's communities table gives each one
street). For a district-wide cohort (``community_id="all"``) any open course in the district
covers. What is drawn to and not covered is listed, most drawn first, as input for planning
new courses.
"""

from __future__ import annotations

import numpy as np

from recommender.serving.cohorts.demand import ALL
from recommender.serving.cohorts.figures import MIN_RESIDENTS, figure
from recommender.serving.holder import BAND_BIT, Snapshot

TOP = 10  # entries listed


def _tags(value) -> list[str]:
    return [t.strip() for t in str(value or "").split("|") if t and t.strip()]


def _near(snap: Snapshot, streets: dict[str, str], community_id: str) -> np.ndarray:
    """Courses held in or near ``community_id`` (same street); everything for "all"."""
    venue = [r["venue"] for r in snap.catalogue.records]
    if community_id == ALL:
        return np.ones(len(venue), dtype=bool)
    street = streets.get(community_id)
    return np.array([v["community_id"] == community_id
                     or (street is not None and streets.get(v["community_id"]) == street)
                     for v in venue], dtype=bool)


def unmet_demand(snap: Snapshot, streets: dict[str, str], community_id: str, band: str,
                 members: np.ndarray, cohort_demand: np.ndarray, offered: np.ndarray) -> list:
    """Categories and tags the cohort is drawn to that no open course near it covers.

    Returns a list of ``{"kind": "category" | "tag", "name", "residents_drawn",
    "expected_demand_elsewhere"}``, most drawn first (residents, then the model's demand);
    ``residents_drawn`` is suppressed below ten residents.
    """
    cat = snap.catalogue
    records = cat.records
    fits = (np.ones(len(records), bool) if band == ALL
            else (cat.band_bits & BAND_BIT[band]) != 0)
    covering = offered & fits & _near(snap, streets, community_id)
    history = snap.engine.history_rows(members)
    history.data = np.ones_like(history.data)
    labels = {"category": [[r["category"]] if r["category"] else [] for r in records],
              "tag": [_tags(t) for t in _item_tags(snap)]}
    out = []
    for kind, per_item in labels.items():
        names = sorted({n for names in per_item for n in names})
        for name in names:
            has = np.array([name in item for item in per_item], dtype=bool)
            if (has & covering).any():
                continue
            drawn = int((history[:, has].sum(axis=1) > 0).sum()) if has.any() else 0
            elsewhere = float(cohort_demand[has & offered].sum())
            if drawn == 0 and elsewhere < 0.5:  # neither signal: not drawn to it
                continue
            out.append({"kind": kind, "name": name, "_drawn": drawn,
                        "residents_drawn": figure(drawn, drawn),
                        "expected_demand_elsewhere": round(elsewhere, 3)})
    out.sort(key=lambda e: (-(e["_drawn"] if e["_drawn"] >= MIN_RESIDENTS else 0),
                            -e["expected_demand_elsewhere"], e["kind"], e["name"]))
    return [{k: v for k, v in e.items() if k != "_drawn"} for e in out[:TOP]]


def _item_tags(snap: Snapshot) -> list:
    items = snap.engine.items
    return items["tags"].tolist() if "tags" in items else [None] * len(items)


__all__ = ["unmet_demand"]

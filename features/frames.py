"""The in-memory form every feature, model and evaluation step reads: a :class:`DataBundle`.

A district (store or folder) and a generic benchmark dataset are both turned into this one form
by ``recommender.data.datasets``, so the pipeline has exactly one input shape. Only the key columns
are required; every other column is used when present and reported as skipped when absent.

``interactions``
    ``user_id`` (str), ``item_id`` (str), ``timestamp`` (datetime64), ``event`` (str: one of the
    district events, or ``"interact"`` for datasets without event types), ``weight`` (float,
    1.0 unless the source gives one), ``value`` (float rating or NaN).
``users``
    ``user_id`` plus any of ``birth_year``, ``age_band``, ``gender``, ``community_id``,
    ``street``, ``household_id``, ``registered_at``, ``interests`` (``|``-separated).
``items``
    ``item_id`` plus any of ``title``, ``description``, ``category``, ``tags`` (``|``-separated),
    ``target_bands`` (``|``-separated), ``community_id``, ``street``, ``fee_tier``,
    ``capacity``, ``status``, ``start_date``, ``end_date``, ``weekday``, ``start_time``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "event", "weight", "value")
# The event a generic dataset's rows get when the dataset has no event column.
GENERIC_EVENT = "interact"
# Events that say "this resident wanted this course": relevance in evaluation.
POSITIVE_EVENTS = ("enroll", "attend", "complete", GENERIC_EVENT)


@dataclass
class DataBundle:
    """Interactions plus whatever is known about users and items.

    ``name`` identifies the source (for reports); ``kind`` is ``"district"`` or ``"generic"``.
    """

    interactions: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    name: str = "dataset"
    kind: str = "generic"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in ("user_id", "item_id", "timestamp") if c not in self.interactions]
        if missing:
            raise ValueError(f"interactions frame lacks column(s) {missing}")
        if "user_id" not in self.users:
            raise ValueError("users frame lacks column 'user_id'")
        if "item_id" not in self.items:
            raise ValueError("items frame lacks column 'item_id'")

    def with_interactions(self, interactions: pd.DataFrame) -> DataBundle:
        """A copy of this bundle with other interactions (for splits); users/items are shared."""
        return DataBundle(interactions, self.users, self.items, self.name, self.kind, self.meta)


def positive_mask(interactions: pd.DataFrame) -> pd.Series:
    """Rows that count as relevant: enrolment-like events, or a rating of 3 or more."""
    event = interactions["event"]
    mask = event.isin(POSITIVE_EVENTS)
    if "value" in interactions:
        mask |= (event == "rate") & (interactions["value"] >= 3)
    return mask


def with_categorical_ids(bundle: DataBundle) -> DataBundle:
    """The bundle with its interaction ids as pandas categoricals (same values).

    Training looks the 10M-row id columns up several times (event encoding at two cuts, the
    splits, item activity, the data hash); on categoricals each lookup touches only the
    distinct ids, which cut a district-scale retrain by ~30 s.
    """
    inter = bundle.interactions
    if all(isinstance(inter[c].dtype, pd.CategoricalDtype) for c in ("user_id", "item_id")):
        return bundle
    inter = inter.assign(user_id=inter["user_id"].astype("category"),
                         item_id=inter["item_id"].astype("category"))
    return bundle.with_interactions(inter)

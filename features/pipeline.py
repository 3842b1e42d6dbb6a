"""All features from one DataBundle at one cut-off: the single entry point for models."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import pandas as pd
import scipy.sparse as sp

from features.bands import AgeBands
from features.courses import CourseFeatures
from features.event_log import EncodedEvents, encode_events, resolve_cutoff
from features.frames import DataBundle
from features.ids import IdMapping
from features.interactions import InteractionMatrix
from features.residents import ResidentFeatures

__all__ = ["FeaturePipeline", "FeatureSet"]

log = logging.getLogger(__name__)

_INTERACTION_OPTIONAL = ("event", "weight", "value")


@dataclass
class FeatureSet:
    """Everything :class:`FeaturePipeline` builds, indexed by ``id_mapping``.

    ``interactions`` (users x items confidence, float32 CSR), ``seen`` (binary positives),
    ``users`` / ``user_matrix`` (:class:`ResidentFeatures` frame and its numeric form),
    ``items`` / ``content`` (:class:`CourseFeatures` frame and content matrix).
    """

    id_mapping: IdMapping
    cutoff: pd.Timestamp
    interactions: sp.csr_matrix
    seen: sp.csr_matrix
    users: pd.DataFrame
    user_matrix: sp.csr_matrix
    items: pd.DataFrame
    content: sp.csr_matrix
    skipped: list[str] = field(default_factory=list)


class FeaturePipeline:
    """Fit the id mapping and every feature transformer at one cut-off, sharing one event log.

    Parameters
    ----------
    cutoff : timestamp-like, optional
        None: the latest interaction timestamp of the bundle given to ``fit``.
    event_weights : dict, optional
        Passed to :class:`InteractionMatrix`.
    half_life_days : float, optional
        Decay of the interaction matrix (None: no decay).
    activity_half_life_days : float or None, default 90
        Decay of the residents' per-category activity.
    age_bands : AgeBands, optional
    id_mapping : IdMapping, optional
        Use this mapping (e.g. one fitted on a full dataset so that items first seen after the
        cut stay candidates). None: fit one on the bundle with ids seen up to the cut-off.
    course_params, resident_params, interaction_params : dict, optional
        Extra keyword arguments for the three transformers.

    Attributes
    ----------
    cutoff_ : pd.Timestamp
    id_mapping_ : IdMapping
        Shared by the three transformers: ``id_mapping_.add_users`` extends all of them.
    interactions_ : InteractionMatrix
    residents_ : ResidentFeatures
    courses_ : CourseFeatures
    skipped_ : list of str
        Optional columns the bundle lacked, e.g. ``["users.birth_year", "items.description"]``.
    timings_ : dict of str to float
        Seconds per step of the last ``fit`` / ``transform`` / ``fit_transform``.
    """

    def __init__(
        self,
        cutoff=None,
        event_weights: dict[str, float] | None = None,
        half_life_days: float | None = None,
        activity_half_life_days: float | None = 90.0,
        age_bands: AgeBands | None = None,
        id_mapping: IdMapping | None = None,
        course_params: dict | None = None,
        resident_params: dict | None = None,
        interaction_params: dict | None = None,
    ):
        self.cutoff = cutoff
        self.event_weights = event_weights
        self.half_life_days = half_life_days
        self.activity_half_life_days = activity_half_life_days
        self.age_bands = age_bands
        self.id_mapping = id_mapping
        self.course_params = course_params
        self.resident_params = resident_params
        self.interaction_params = interaction_params

    def _timed(self, step: str, fn, *args):
        start = time.perf_counter()
        result = fn(*args)
        self.timings_[step] = self.timings_.get(step, 0.0) + time.perf_counter() - start
        return result

    def fit(self, bundle: DataBundle) -> FeaturePipeline:
        """Fit the mapping and all transformers; returns self."""
        self._fit(bundle)
        return self

    def _fit(self, bundle: DataBundle) -> EncodedEvents:
        self.timings_ = {}
        self.cutoff_ = resolve_cutoff(bundle.interactions, self.cutoff)
        if self.id_mapping is not None:
            self.id_mapping_ = self.id_mapping
        else:
            self.id_mapping_ = self._timed(
                "ids", lambda: IdMapping().fit(bundle, until=self.cutoff_)
            )
        events = self._encode(bundle)
        common = {"cutoff": self.cutoff_, "id_mapping": self.id_mapping_}
        self.interactions_ = InteractionMatrix(
            event_weights=self.event_weights, half_life_days=self.half_life_days,
            **common, **(self.interaction_params or {}),
        )
        self.residents_ = ResidentFeatures(
            age_bands=self.age_bands, half_life_days=self.activity_half_life_days,
            **common, **(self.resident_params or {}),
        )
        self.courses_ = CourseFeatures(
            age_bands=self.age_bands, **common, **(self.course_params or {}),
        )
        for name, t in (("fit_interactions", self.interactions_),
                        ("fit_residents", self.residents_), ("fit_courses", self.courses_)):
            self._timed(name, t.fit, bundle, events)
        skipped = [f"interactions.{c}" for c in _INTERACTION_OPTIONAL
                   if c not in bundle.interactions]
        skipped += self.residents_.skipped_ + self.courses_.skipped_
        self.skipped_ = sorted(dict.fromkeys(skipped))
        log.info("features for %r at %s: %d users x %d items; skipped: %s",
                 bundle.name, self.cutoff_, self.id_mapping_.n_users, self.id_mapping_.n_items,
                 ", ".join(self.skipped_) or "nothing")
        return events

    def _encode(self, bundle: DataBundle) -> EncodedEvents:
        events = self._timed("encode_events", encode_events, bundle.interactions,
                             self.id_mapping_, self.cutoff_)
        if events.n_dropped_unknown:
            log.info("%d interactions at or before the cut-off have ids unknown to the mapping",
                     events.n_dropped_unknown)
        return events

    def transform(self, bundle: DataBundle) -> FeatureSet:
        """Build every feature of ``bundle`` at the fitted cut-off."""
        self.timings_ = {}
        return self._transform(bundle, self._encode(bundle))

    def fit_transform(self, bundle: DataBundle) -> FeatureSet:
        """``fit(bundle).transform(bundle)``, encoding the event log once."""
        events = self._fit(bundle)
        return self._transform(bundle, events)

    def _transform(self, bundle: DataBundle, events: EncodedEvents) -> FeatureSet:
        inter = self._timed("interaction_matrix", self.interactions_.transform, bundle, events)
        seen = self._timed("seen_matrix", self.interactions_.seen, bundle, events)
        users = self._timed("resident_features", self.residents_.transform, bundle, events)
        user_matrix = self._timed("resident_matrix", self.residents_.to_matrix, users)
        items = self._timed("course_features", self.courses_.transform, bundle, events)
        content = self._timed("content_matrix", self.courses_.content_matrix, bundle)
        return FeatureSet(self.id_mapping_, self.cutoff_, inter, seen, users, user_matrix,
                          items, content, list(self.skipped_))

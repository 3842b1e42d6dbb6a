"""Why a course is on a resident's list: the reasons the engine gives, from the model's signals.

A reason is said only where a signal speaks for the course (see :meth:`Explainer.explain`).
Every list says about thirty reasons, and most are the same few for a resident (their band,
their community, a component's own reason), so each reason is made once and shared: per
resident context (band, community, history) the components' reasons, per category the
category reasons, per course the "because you took" reason. A shared :class:`Reason` keeps
its wording too (:func:`~recommender.serving.wording.worded`), so a list's reasons cost a few
list look-ups per course.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from features.codes import Vocabulary, band_codes
from features.ids import IdMapping
from models.hybrid import SIGNALS, HybridRanker
from recommender.serving.wording import Reason

# The profile signal becomes a reason when it makes the category 1.5 times likelier.
PROFILE_REASON_LIFT = float(np.log(1.5))
# A component gives a reason for an item it ranks among its best REASON_TOP for the resident.
REASON_TOP = 20
# Components whose reason is given only when no other reason is, best-ranking first: they
# add little next to the others (the popularity of a category, of a course across the
# district, co-occurrence and content, which ``similar_to_taken`` already says, and the
# factor autoencoder, which vouches for most of a list).
_OTHER_REASONS = ("cat_band", "pop", "pop_recent", "ease", "knn", "content", "factor_ae")
_COLUMN = {name: SIGNALS.index(name) for name in
           ("interest", "eligible", "same_community", "profile_category", "item_log_count")}
# How many (band, community, history) contexts of reasons an explainer keeps.
_CONTEXTS_KEPT = 4096
_NEW_COURSE = Reason("new_course")


class Resident(Protocol):
    """What the reasons read of a resident's context (the engine's ``UserContext``)."""

    age_band: str | None
    community_id: str | None


@dataclass
class _ContextReasons:
    """The reasons that depend only on a resident's band, community and having a history."""

    band: str | None  # None when the model knows no band for the resident
    said: dict[str, Reason]  # each component's reason (``cat_band``'s without its category)
    made_for_band: Reason | None
    in_community: Reason
    category_in_band: dict[str, Reason] = field(default_factory=dict)  # by category


class Explainer:
    """The reasons of an engine's courses for a resident, made once and shared."""

    def __init__(self, model: HybridRanker, mapping: IdMapping, vocab: Vocabulary,
                 titles: Sequence[str], categories: Sequence[str | None],
                 community_names: dict[str, str]) -> None:
        self.model = model
        self.mapping = mapping
        self.vocab = vocab
        self.community_names = community_names
        self._titles = titles  # by item index
        self._categories = categories  # by item index, None where a course has none
        self._contexts: dict[tuple, _ContextReasons] = {}
        self._taken: dict[int, Reason] = {}  # "because you took" by anchor course
        self._by_category: dict[tuple[str, str], Reason] = {}  # (code, category)

    def explain(self, history: np.ndarray, items: np.ndarray, signals: np.ndarray,
                ctx: Resident) -> list[list[Reason]]:
        """Reasons (codes and parameters; :mod:`~recommender.serving.wording` words them),
        drawn only from signals that exist for each item.

        A component gives a reason only if the model has it (ALS is off by default), scores
        the item above zero, and ranks it among its best ``REASON_TOP`` for this resident and
        among the candidates it proposed (see
        :meth:`~models.hybrid.HybridRanker.component_ranks`). Band and community reasons need
        a band and a community the model knows, history reasons a history. An item no signal
        speaks for gets no reason rather than an invented one.
        """
        ranks = self.model.component_ranks(signals)
        anchors = self.model.anchors(items, history).tolist()
        words = self._context_reasons(ctx, has_history=len(history) > 0)
        said, top = words.said, min(REASON_TOP, self.model.n_candidates)
        # Python lists per component and signal: numpy scalars cost more than the rest
        vouch = {name: ((r < top) & (name in said)).tolist() for name, r in ranks.items()}
        interest, eligible, community = ((signals[:, _COLUMN[name]] > 0).tolist()
                                         for name in ("interest", "eligible", "same_community"))
        favourite = (signals[:, _COLUMN["profile_category"]] >= PROFILE_REASON_LIFT).tolist()
        untaken = (signals[:, _COLUMN["item_log_count"]] == 0).tolist()  # nobody took it
        similar = [a or b for a, b in zip(vouch["knn"], vouch["content"])]
        popular = [said["pop_local"] if local else said["pop_band"] if in_band else None
                   for local, in_band in zip(vouch["pop_local"], vouch["pop_band"])]
        out = []
        for k, (item, anchor) in enumerate(zip(items.tolist(), anchors)):
            cat = self._categories[item]
            reasons: list[Reason] = []
            if interest[k] and cat:
                reasons.append(self._of_category("interest_match", cat))
            if anchor >= 0 and similar[k]:
                reasons.append(self._because_you_took(anchor))
            if popular[k] is not None:
                reasons.append(popular[k])
            if eligible[k] and words.made_for_band is not None:
                reasons.append(words.made_for_band)
            if community[k]:
                reasons.append(words.in_community)
            if cat and favourite[k]:
                reasons.append(self._of_category("profile_favourite", cat))
            if vouch["als"][k]:
                reasons.append(said["als"])
            if untaken[k]:
                reasons.append(_NEW_COURSE)
            if not reasons:
                reasons = self._fallback(words, ranks, vouch, k, cat)
            out.append(reasons)
        return out

    def _fallback(self, words: _ContextReasons, ranks: dict, vouch: dict, k: int,
                  cat: str | None) -> list[Reason]:
        """The reason of the other component that ranks the item best, if one vouches."""
        rest = [(float(ranks[name][k]), name) for name in _OTHER_REASONS
                if vouch[name][k] and (cat or name != "cat_band")]
        if not rest:
            return []
        name = min(rest)[1]
        if name != "cat_band":
            return [words.said[name]]
        reason = words.category_in_band.get(cat)
        if reason is None:
            general = words.said["cat_band"]
            reason = words.category_in_band[cat] = Reason(
                general.code, {"category": cat, **general.params})
        return [reason]

    def _of_category(self, code: str, category: str) -> Reason:
        reason = self._by_category.get((code, category))
        if reason is None:
            reason = self._by_category[code, category] = Reason(code, {"category": category})
        return reason

    def _because_you_took(self, anchor: int) -> Reason:
        reason = self._taken.get(anchor)
        if reason is None:
            reason = self._taken[anchor] = Reason("similar_to_taken", {
                "course_id": str(self.mapping.item_ids([anchor])[0]),
                "title": str(self._titles[anchor])})
        return reason

    def _context_reasons(self, ctx: Resident, has_history: bool) -> _ContextReasons:
        key = (ctx.age_band, ctx.community_id, has_history)
        known = self._contexts.get(key)
        if known is not None:
            return known
        if len(self._contexts) >= _CONTEXTS_KEPT:  # ids from the platform's profiles are unbounded
            self._contexts.clear()
        band = ctx.age_band if band_codes([ctx.age_band])[0] >= 0 else None
        community = self._community(ctx.community_id)
        said = {"pop": Reason("popular_in_district"), "pop_recent": Reason("popular_lately")}
        if band:
            said["pop_band"] = Reason("popular_in_band", {"band": band})
            said["cat_band"] = Reason("category_popular_in_band", {"band": band})
            if self.vocab.community_codes([ctx.community_id])[0] >= 0:
                said["pop_local"] = Reason("popular_in_community", {"band": band, **community})
        if has_history:
            said["ease"] = said["knn"] = Reason("taken_together")
            said["content"] = Reason("like_your_courses")
            said["als"] = said["factor_ae"] = Reason("residents_like_you")
        words = _ContextReasons(band, said,
                                Reason("made_for_band", {"band": band}) if band else None,
                                Reason("in_your_community", community))
        self._contexts[key] = words
        return words

    def _community(self, community_id: str) -> dict[str, str | None]:
        """A community's id and name, the parameters of the reasons that name it."""
        return {"community_id": str(community_id),
                "community_name": self.community_names.get(community_id)}

"""Reasons in the residents' language: the one place a reason's text is made.

The engine and the service say *why* a course is listed as a :class:`Reason`: a stable code and
its parameters (ids and codes, plus the names shown to residents: a course title, a community
name). This module words a reason in a requested language, Simplified Chinese unless English is
asked for, taking band and category names from :data:`recommender.domain.BAND_WORDS` and
:data:`~recommender.domain.CATEGORY_WORDS`. A platform that words reasons itself reads the code
and the parameters; the codes and parameters are part of the API contract (README, "Reasons").

Which language an answer is in: the ``lang`` query parameter when given (an unsupported value is
an error naming the field), else the best language of the ``Accept-Language`` header the service
writes (tags it does not write are passed over, as HTTP negotiation does), else Chinese.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from recommender.domain import BAND_WORDS, CATEGORY_WORDS, LANGUAGES, AgeBands
from recommender.serving.errors import InvalidInput

DEFAULT_LANGUAGE = "zh"


@dataclass(frozen=True)
class Reason:
    """Why a course is listed: a code of :data:`REASONS` and its parameters.

    The engine shares one reason among the courses and lists it speaks for, and each keeps
    its wording once made (:func:`worded`); so a reason is never changed after it is made.
    """

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def _worded(self) -> dict[str, dict]:
        """This reason as :func:`worded` gives it, by language (filled as asked)."""
        return {}


@dataclass(frozen=True)
class ReasonText:
    """A code's parameters (in this order) and its text in each language.

    In the texts, ``{band}`` and ``{category}`` are the names of the ``band`` and ``category``
    codes, ``{community}`` the community's name (its id when it has none), ``{bands}`` the names
    of the ``bands`` codes joined; other fields are the parameters themselves.
    """

    params: tuple[str, ...]
    zh: str
    en: str


REASONS: dict[str, ReasonText] = {
    "interest_match": ReasonText(
        ("category",), "符合您关注的{category}类课程",
        "matches your interest in {category} courses"),
    "similar_to_taken": ReasonText(
        ("course_id", "title"), "因为您上过《{title}》", "because you took {title}"),
    "popular_in_community": ReasonText(
        ("band", "community_id", "community_name"), "深受{community}{band}欢迎",
        "popular with {band} in {community}"),
    "popular_in_band": ReasonText(("band",), "深受{band}欢迎", "popular with {band}"),
    "category_popular_in_band": ReasonText(
        ("category", "band"), "{category}类课程深受{band}欢迎",
        "{category} courses are popular with {band}"),
    "popular_in_district": ReasonText((), "全区热门课程", "popular across the district"),
    "popular_lately": ReasonText((), "近期报名的居民多", "many residents joined it lately"),
    "made_for_band": ReasonText(("band",), "专为{band}开设", "made for {band}"),
    "in_your_community": ReasonText(
        ("community_id", "community_name"), "就在您所在的{community}",
        "held in your community, {community}"),
    "profile_favourite": ReasonText(
        ("category",), "与您情况相似的居民偏爱{category}类课程",
        "{category} courses are a favourite of residents with a profile like yours"),
    "residents_like_you": ReasonText(
        (), "与您经历相似的居民报了这门课", "residents with a history like yours joined it"),
    "taken_together": ReasonText(
        (), "常与您上过的课程一起报名", "often taken with courses you took"),
    "like_your_courses": ReasonText((), "与您上过的课程相近", "like courses you took"),
    "new_course": ReasonText((), "新开课程", "a new course"),
    "pinned_by_community": ReasonText((), "社区推荐", "recommended by your community"),
    "household_members": ReasonText(
        ("count", "bands"), "适合家中{count}位成员一起参加（{bands}）",
        "for {count} members of the household ({bands})"),
    "family_course": ReasonText(
        (), "亲子课程：家长陪孩子一起上", "a family course: the adult attends with the child"),
    "similar_to_course": ReasonText(("course_id", "title"), "与《{title}》相似", "like {title}"),
}
REASON_CODES: tuple[str, ...] = tuple(REASONS)
# How a list of names is joined in a sentence.
_JOIN = {"zh": "、", "en": ", "}
# The tables above by language first: wording a list's reasons costs a few dict lookups each.
_TEMPLATES = {lang: {code: getattr(spec, lang) for code, spec in REASONS.items()}
              for lang in LANGUAGES}
_BANDS = {lang: {band: names[lang] for band, names in BAND_WORDS.items()} for lang in LANGUAGES}
_CATEGORIES = {lang: {category: names[lang] for category, names in CATEGORY_WORDS.items()}
               for lang in LANGUAGES}


def band_name(band: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """A band as residents say it in ``lang`` (the code itself for a band the table lacks)."""
    return _BANDS[lang].get(band, band)


def category_name(category: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """A category as residents say it in ``lang`` (the value itself for one the table lacks,
    e.g. a benchmark dataset's own categories)."""
    return _CATEGORIES[lang].get(category, category)


def band_label(band: str, lang: str = DEFAULT_LANGUAGE, bands: AgeBands | None = None) -> str:
    """A band's name with its ages, e.g. ``老年人 (60岁及以上)``, for pages that list bands."""
    ranges = (bands or AgeBands()).band_ranges()
    if band not in ranges:
        return band
    low, high = ranges[band]
    if high is not None:
        ages = f"{low}–{high}岁" if lang == "zh" else f"aged {low}–{high}"
    else:
        ages = f"{low}岁及以上" if lang == "zh" else f"aged {low}+"
    return f"{band_name(band, lang)} ({ages})"


def text(reason: Reason, lang: str = DEFAULT_LANGUAGE) -> str:
    """The reason in words, in ``lang``."""
    # A list repeats a few reasons (its band, its community) and every list says ~30: the
    # words of each are kept once made, when its parameters can be a key.
    try:
        return _worded_once(reason.code, tuple(reason.params.items()), lang)
    except TypeError:  # a parameter that cannot be a key (a list)
        return _text(reason.code, reason.params, lang)


@functools.lru_cache(maxsize=4096)
def _worded_once(code: str, params: tuple, lang: str) -> str:
    return _text(code, dict(params), lang)


def _text(code: str, p: Mapping[str, Any], lang: str) -> str:
    template = _TEMPLATES[lang][code]
    if not p:
        return template
    fields = dict(p)
    if "band" in p:
        fields["band"] = _BANDS[lang].get(p["band"], p["band"])
    if "category" in p:
        fields["category"] = _CATEGORIES[lang].get(p["category"], p["category"])
    if "community_id" in p:
        fields["community"] = p.get("community_name") or p["community_id"]
    if "bands" in p:
        fields["bands"] = _JOIN[lang].join(_BANDS[lang].get(b, b) for b in p["bands"])
    return template.format_map(fields)


def worded(reasons: Iterable[Reason], lang: str = DEFAULT_LANGUAGE) -> list[dict]:
    """Reasons as the API gives them: ``{"code", "params", "text"}`` each, text in ``lang``.

    A reason's dict is made once per language and shared by every answer that gives it (a
    list says ~30 reasons, most of them the same few): read it, never change it.
    """
    out = []
    for reason in reasons:
        said = reason._worded.get(lang)
        if said is None:
            said = reason._worded[lang] = {"code": reason.code, "params": dict(reason.params),
                                           "text": text(reason, lang)}
        out.append(said)
    return out


def requested_language(lang: str | None = None, accept_language: str | None = None) -> str:
    """The language of an answer: ``lang`` when given, else the ``Accept-Language`` header's
    best language the service writes, else :data:`DEFAULT_LANGUAGE`.

    Raises
    ------
    InvalidInput
        On a ``lang`` the service does not write (field ``lang``).
    """
    if lang is not None:
        if lang not in LANGUAGES:
            raise InvalidInput("lang", f"unsupported language {lang!r}; use one of "
                               + ", ".join(LANGUAGES))
        return lang
    return negotiate(accept_language)


def negotiate(accept_language: str | None) -> str:
    """The best language of an ``Accept-Language`` header the service writes.

    Tags are matched by their primary subtag (``zh-CN``, ``zh-Hant`` and ``zh`` all get the
    Simplified Chinese texts, ``en-GB`` the English ones); the highest ``q`` wins, the first
    listed on a tie; ``*`` stands for the default; ``q=0``, malformed weights and languages the
    service does not write are passed over. No usable tag gives :data:`DEFAULT_LANGUAGE`.
    """
    best: tuple[float, str] | None = None
    for part in (accept_language or "").split(","):
        tag, *options = part.split(";")
        primary = tag.strip().lower().split("-")[0]
        language = DEFAULT_LANGUAGE if primary == "*" else primary
        if language not in LANGUAGES:
            continue
        weight = 1.0
        for option in options:
            key, _, value = option.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = -1.0
        if not 0.0 < weight <= 1.0:  # also NaN
            continue
        if best is None or weight > best[0]:  # on a tie the first listed stays
            best = (weight, language)
    return best[1] if best else DEFAULT_LANGUAGE


__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "REASONS", "REASON_CODES", "Reason", "ReasonText",
           "band_label", "band_name", "category_name", "negotiate", "requested_language",
           "text", "worded"]

"""Reasons in words: every code in both languages, names as residents say them, and which
language an answer is in."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from recommender.domain import BAND_NAMES, BAND_WORDS, CATEGORIES, CATEGORY_WORDS, LANGUAGES
from recommender.serving.errors import InvalidInput
from recommender.serving.wording import (
    DEFAULT_LANGUAGE,
    REASONS,
    Reason,
    band_label,
    band_name,
    category_name,
    negotiate,
    requested_language,
    text,
    worded,
)

# The contract: a platform words reasons from these codes and parameters. Renaming a code or a
# parameter breaks it, so a change here must be deliberate (and documented in the README).
CONTRACT = {
    "interest_match": ("category",),
    "similar_to_taken": ("course_id", "title"),
    "popular_in_community": ("band", "community_id", "community_name"),
    "popular_in_band": ("band",),
    "category_popular_in_band": ("category", "band"),
    "popular_in_district": (),
    "popular_lately": (),
    "made_for_band": ("band",),
    "in_your_community": ("community_id", "community_name"),
    "profile_favourite": ("category",),
    "residents_like_you": (),
    "taken_together": (),
    "like_your_courses": (),
    "new_course": (),
    "pinned_by_community": (),
    "household_members": ("count", "bands"),
    "family_course": (),
    "similar_to_course": ("course_id", "title"),
}
SAMPLE = {"category": "intangible_heritage", "course_id": "K0007", "title": "剪纸入门班",
          "band": "elderly", "community_id": "C03", "community_name": "文康社区", "count": 3,
          "bands": ["preschool", "working_age"]}


def _sample(code: str) -> Reason:
    return Reason(code, {p: SAMPLE[p] for p in REASONS[code].params})


def test_codes_and_params_are_the_documented_contract():
    assert {code: spec.params for code, spec in REASONS.items()} == CONTRACT
    readme = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")
    for code, params in CONTRACT.items():
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{code}`")), "")
        assert row, f"README has no row for {code}"
        cells = [cell.strip() for cell in row.split("|")]
        assert cells[3] == (", ".join(f"`{p}`" for p in params) or "—"), (code, cells[3])
        assert cells[4:6] == [REASONS[code].zh, REASONS[code].en], (code, cells)


@pytest.mark.parametrize("code", sorted(REASONS))
def test_every_code_has_a_text_in_every_language_using_only_its_params(code):
    spec = REASONS[code]
    shown = {"band": "band", "category": "category", "community": "community_id",
             "bands": "bands"}
    for lang in LANGUAGES:
        template = getattr(spec, lang)
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        assert {shown.get(f, f) for f in fields} <= set(spec.params), (code, lang, fields)
        words = text(_sample(code), lang)
        assert words.strip() and "{" not in words
    # The Chinese text never shows a code where a name belongs.
    zh = text(_sample(code), "zh")
    assert not re.search(r"elderly|working_age|preschool|intangible_heritage", zh), zh


def test_chinese_is_the_default_and_english_on_request():
    reason = Reason("made_for_band", {"band": "preschool"})
    assert DEFAULT_LANGUAGE == "zh" == LANGUAGES[0]
    assert text(reason) == "专为学龄前儿童开设"
    assert text(reason, "en") == "made for preschool children"
    assert worded([reason], "en") == [{"code": "made_for_band", "params": {"band": "preschool"},
                                       "text": "made for preschool children"}]



def test_a_shared_reason_is_worded_in_each_language_it_is_asked_in():
    # the engine shares one reason among lists, and a reason keeps its wording once made
    reason = Reason("popular_in_band", {"band": "elderly"})
    chinese = worded([reason, reason])
    assert chinese[0] is chinese[1]  # made once
    assert chinese[0]["text"] == text(reason, "zh")
    english = worded([reason], "en")
    assert english[0]["text"] == text(reason, "en") != chinese[0]["text"]
    assert worded([reason])[0]["text"] == text(reason, "zh")
    # another reason with other parameters is worded for itself
    assert worded([Reason("popular_in_band", {"band": "preschool"})])[0]["text"] != \
        chinese[0]["text"]

def test_reasons_read_naturally():
    assert text(_sample("similar_to_taken")) == "因为您上过《剪纸入门班》"
    assert text(_sample("similar_to_taken"), "en") == "because you took 剪纸入门班"
    assert text(_sample("popular_in_community")) == "深受文康社区老年人欢迎"
    assert text(_sample("category_popular_in_band")) == "非遗类课程深受老年人欢迎"
    assert text(_sample("interest_match")) == "符合您关注的非遗类课程"
    assert text(_sample("household_members")) == "适合家中3位成员一起参加（学龄前儿童、中青年居民）"
    assert (text(_sample("household_members"), "en")
            == "for 3 members of the household (preschool children, working-age residents)")
    # A community without a name is named by its id.
    assert text(Reason("in_your_community", {"community_id": "C09", "community_name": None}),
                "en") == "held in your community, C09"


def test_bands_and_categories_as_residents_say_them():
    assert [band_name(b) for b in BAND_NAMES] == ["学龄前儿童", "中小学生", "中青年居民", "老年人"]
    assert [category_name(c) for c in CATEGORIES] == ["手工", "非遗", "技能", "兴趣"]
    for table, codes in ((BAND_WORDS, BAND_NAMES), (CATEGORY_WORDS, CATEGORIES)):
        assert set(table) == set(codes)
        assert all(set(names) == set(LANGUAGES) and all(names.values())
                   for names in table.values())
    # A category the table lacks (a benchmark dataset's own) is shown as it is.
    assert category_name("crafts", "zh") == "crafts"
    assert band_label("elderly") == "老年人 (60岁及以上)"
    assert band_label("preschool") == "学龄前儿童 (0–5岁)"
    assert band_label("school_age", "en") == "school-age children (aged 6–17)"


@pytest.mark.parametrize("header, expected", [
    (None, "zh"),
    ("", "zh"),
    ("en", "en"),
    ("en-GB,en;q=0.9", "en"),
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
    ("zh-TW", "zh"),
    ("fr-FR,fr;q=0.9,en;q=0.5", "en"),
    ("fr, de", "zh"),
    ("en;q=0.3, zh;q=0.7", "zh"),
    ("zh;q=0.5, en;q=0.5", "zh"),
    ("en;q=0, zh;q=0.1", "zh"),
    ("zh;q=0, en;q=0.1", "en"),
    ("*", "zh"),
    ("en;q=abc, zh;q=nan", "zh"),
    (";;,,=,q=1", "zh"),
    ("EN-us", "en"),
])
def test_accept_language_is_negotiated(header, expected):
    assert negotiate(header) == expected
    assert requested_language(None, header) == expected


def test_lang_wins_and_an_unknown_lang_is_an_error_naming_it():
    assert requested_language("en", "zh-CN") == "en"
    assert requested_language("zh", "en") == "zh"
    for bad in ("fr", "zh-CN", "EN", ""):
        with pytest.raises(InvalidInput) as err:
            requested_language(bad, "en")
        assert err.value.field == "lang" and "zh, en" in err.value.reason


def test_names_from_the_data_are_shown_as_they_are():
    # A title with braces is text, never a template.
    odd = Reason("similar_to_taken", {"course_id": "K1", "title": "{band} 课 {0}"})
    assert text(odd) == "因为您上过《{band} 课 {0}》"
    assert text(odd, "en") == "because you took {band} 课 {0}"

"""Reasons over HTTP: codes and parameters that do not depend on the language, texts in
Simplified Chinese by default and in English through ``lang`` or ``Accept-Language``, on the
resident, profile, household and similar-course routes."""

from __future__ import annotations

import re

import pytest

from recommender.serving import REASON_CODES
from tests.api.conftest import PLATFORM, today
from tests.api.rules import band_of

# As residents say them, written out here rather than read from the code under test.
ZH_BANDS = {"preschool": "学龄前儿童", "school_age": "中小学生", "working_age": "中青年居民",
            "elderly": "老年人"}
EN_BANDS = {"preschool": "preschool children", "school_age": "school-age children",
            "working_age": "working-age residents", "elderly": "elderly residents"}
ZH_CATEGORIES = {"handicraft": "手工", "intangible_heritage": "非遗", "skills": "技能",
                 "interest": "兴趣"}
CJK = re.compile(r"[\u4e00-\u9fff]")
EN = {**PLATFORM, "Accept-Language": "en-GB,en;q=0.9"}


@pytest.fixture(scope="module")
def residents(tables) -> dict[str, str]:
    """A resident of each band."""
    res = tables["residents"].copy()
    res["band"] = [band_of(y, today()) for y in res["birth_year"]]
    return {band: res[res["band"] == band]["resident_id"].iloc[5] for band in ZH_BANDS}


@pytest.fixture(scope="module")
def household(client, service) -> tuple[str, dict]:
    """A household with a shared list of a few courses, one with a carer if any."""
    lists = []
    for household_id in list(service.holder.snapshot().households)[:60]:
        body = client.get(f"/v1/households/{household_id}/recommendations",
                          headers=PLATFORM).json()
        if len(body.get("items", [])) >= 2:
            lists.append((household_id, body))
    assert lists, "some household needs a shared list"
    return next(((h, b) for h, b in lists
                 if any(w["role"] == "carer" for i in b["items"] for w in i["for_members"])),
                lists[0])


def _reasons(body: dict) -> list[list[dict]]:
    return [item["reasons"] for item in body["items"]]


def _list(response) -> dict:
    """The answer without its ``request_id`` (each served list has its own)."""
    return {k: v for k, v in response.json().items() if k != "request_id"}


def _shape(body: dict) -> list[list[tuple]]:
    """The language-free part of the reasons: codes and parameters."""
    return [[(r["code"], r["params"]) for r in reasons] for reasons in _reasons(body)]


def _names(params: dict) -> str:
    """The data's own names a text may carry whatever its language (titles, communities)."""
    return "|".join(re.escape(str(params[k])) for k in ("title", "community_name")
                    if params.get(k))


def _check_chinese(reason: dict) -> None:
    text, params = reason["text"], reason["params"]
    assert reason["code"] in REASON_CODES and set(reason) == {"code", "params", "text"}
    assert CJK.search(text), reason
    for band in [params.get("band"), *params.get("bands", [])]:
        if band:
            assert ZH_BANDS[band] in text and band not in text, reason
    if params.get("category") in ZH_CATEGORIES:
        assert f"{ZH_CATEGORIES[params['category']]}类" in text, reason


def _check_english(reason: dict) -> None:
    text, params = reason["text"], reason["params"]
    names = _names(params)
    assert not CJK.search(re.sub(names, "", text) if names else text), reason
    for band in [params.get("band"), *params.get("bands", [])]:
        if band:
            assert EN_BANDS[band] in text, reason


def test_reasons_are_chinese_by_default_with_codes_and_params(client, residents):
    seen_codes = set()
    for band, resident in residents.items():
        r = client.get(f"/v1/residents/{resident}/recommendations", headers=PLATFORM)
        assert r.status_code == 200, r.text
        assert r.headers["content-language"] == "zh-Hans"
        assert "Accept-Language" in r.headers["vary"]
        for reasons in _reasons(r.json()):
            assert reasons
            for reason in reasons:
                _check_chinese(reason)
                seen_codes.add(reason["code"])
                if reason["code"] == "made_for_band":
                    assert reason == {"code": "made_for_band", "params": {"band": band},
                                      "text": f"专为{ZH_BANDS[band]}开设"}
    assert len(seen_codes) >= 3, seen_codes


def test_english_through_the_header_and_through_lang(client, residents):
    for resident in residents.values():
        url = f"/v1/residents/{resident}/recommendations"
        zh = client.get(url, headers=PLATFORM)
        by_header = client.get(url, headers=EN)
        by_param = client.get(url, params={"lang": "en"}, headers=PLATFORM)
        for r in (by_header, by_param):
            assert r.status_code == 200 and r.headers["content-language"] == "en"
        assert _list(by_header) == _list(by_param)
        # The same reasons, only worded otherwise.
        assert _shape(by_param.json()) == _shape(zh.json())
        for reasons in _reasons(by_param.json()):
            for reason in reasons:
                _check_english(reason)


def test_lang_wins_over_the_header_and_other_languages_fall_back(client, residents):
    url = f"/v1/residents/{residents['elderly']}/recommendations"
    zh = _list(client.get(url, headers=PLATFORM))
    r = client.get(url, params={"lang": "zh"}, headers=EN)
    assert r.headers["content-language"] == "zh-Hans" and _list(r) == zh
    # A header naming only languages the service does not write gets Chinese, not an error.
    r = client.get(url, headers={**PLATFORM, "Accept-Language": "fr-FR,de;q=0.8"})
    assert r.status_code == 200 and _list(r) == zh
    # A lang it does not write is an error that names the parameter.
    for bad in ("fr", "zh-CN", "EN"):
        r = client.get(url, params={"lang": bad}, headers=PLATFORM)
        assert r.status_code == 422, r.text
        assert [d["field"] for d in r.json()["detail"]] == ["query.lang"]
    # explain=false: no reasons in any language.
    r = client.get(url, params={"lang": "en", "explain": "false"}, headers=PLATFORM)
    assert all(i["reasons"] == [] for i in r.json()["items"])


def test_profile_reasons_follow_the_language(client):
    body = {"age_band": "elderly", "community_id": "C01", "k": 5, "interests": ["interest"]}
    zh = client.post("/v1/recommendations", json=body, headers=PLATFORM)
    en = client.post("/v1/recommendations", json=body, params={"lang": "en"}, headers=PLATFORM)
    assert zh.status_code == en.status_code == 200, (zh.text, en.text)
    assert zh.headers["content-language"] == "zh-Hans" and en.headers["content-language"] == "en"
    assert _shape(zh.json()) == _shape(en.json())
    matched = [r for reasons in _reasons(zh.json()) for r in reasons
               if r["code"] == "interest_match"]
    assert matched and all(r["text"] == "符合您关注的兴趣类课程" for r in matched)
    for reasons in _reasons(en.json()):
        for reason in reasons:
            _check_english(reason)
    r = client.post("/v1/recommendations", json=body, params={"lang": "de"}, headers=PLATFORM)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "query.lang"


def test_household_reasons_name_the_members_bands_in_each_language(client, household):
    household_id, zh = household
    url = f"/v1/households/{household_id}/recommendations"
    en = client.get(url, headers={**PLATFORM, "Accept-Language": "en"})
    assert en.headers["content-language"] == "en"
    assert _shape(en.json()) == _shape(zh)
    order = list(ZH_BANDS)
    for item, en_item in zip(zh["items"], en.json()["items"]):
        who = item["for_members"]
        bands = sorted({w["age_band"] for w in who}, key=order.index)
        members = next(r for r in item["reasons"] if r["code"] == "household_members")
        assert members["params"] == {"count": len(who), "bands": bands}
        assert members["text"] == (f"适合家中{len(who)}位成员一起参加（"
                                   + "、".join(ZH_BANDS[b] for b in bands) + "）")
        en_members = next(r for r in en_item["reasons"] if r["code"] == "household_members")
        assert en_members["text"] == (f"for {len(who)} members of the household ("
                                      + ", ".join(EN_BANDS[b] for b in bands) + ")")
        carer = any(w["role"] == "carer" for w in who)
        assert carer == any(r["code"] == "family_course" for r in item["reasons"])
    r = client.get(url, params={"lang": "xx"}, headers=PLATFORM)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "query.lang"


def test_similar_courses_say_which_course_they_are_like(client, store):
    courses = store.read("courses").set_index("course_id")
    course = courses.index[5]
    title = courses.loc[course, "title"]
    url = f"/v1/courses/{course}/similar"
    zh = client.get(url, params={"k": 5}, headers=PLATFORM)
    en = client.get(url, params={"k": 5, "lang": "en"}, headers=PLATFORM)
    assert zh.headers["content-language"] == "zh-Hans" and en.headers["content-language"] == "en"
    params = {"course_id": course, "title": title}
    assert zh.json()["items"] and en.json()["items"]
    for item in zh.json()["items"]:
        assert item["reasons"] == [{"code": "similar_to_course", "params": params,
                                    "text": f"与《{title}》相似"}]
    for item in en.json()["items"]:
        assert item["reasons"] == [{"code": "similar_to_course", "params": params,
                                    "text": f"like {title}"}]


def test_the_demo_prints_a_list_with_chinese_reasons(db_url, artifacts, residents, capsys):
    from recommender.cli.serve_commands import _print_sample_list
    from recommender.settings import Settings

    _print_sample_list(Settings(database_url=db_url, artifacts_dir=artifacts),
                       residents["elderly"], k=3)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"Resident {residents['elderly']}'s list (k=3; reasons in Chinese, "
                        "lang=en for English):")
    assert len(lines) == 4 and [line[:5] for line in lines[1:]] == ["  1. ", "  2. ", "  3. "]
    for line in lines[1:]:
        reasons = line.split("]: ", 1)[1]
        assert CJK.search(reasons) and not re.search(r"made for|popular|because", reasons)

"""A list is never shorter than ``k`` while allowed courses remain: the per-category cap of
the default list reorders courses, it never removes them (checked against the rules computed
from the store, tests/api/rules.py)."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.api.conftest import PLATFORM, today
from tests.api.rules import allowed_for, band_of, taken_by


def _allowed(store, tables, resident_id, frames) -> set[str]:
    res = tables["residents"].set_index("resident_id")
    band = band_of(res.loc[resident_id, "birth_year"], today())
    household = res.loc[resident_id, "household_id"]
    mates = res[(res["household_id"] == household) & (res.index != resident_id)]
    children = [band_of(y, today()) for y in mates["birth_year"]] if isinstance(
        household, str) else []
    return allowed_for(store, today(), band=band, child_bands=children,
                       taken=taken_by(frames[1], resident_id), frames=frames)


@pytest.mark.parametrize("k", [6, 10, 20])
def test_lists_have_min_k_allowed_courses_and_the_cap_where_others_exist(client, store,
                                                                          tables, k):
    frames = (store.read("courses"), store.read("participations"))
    category_of = frames[0].set_index("course_id")["category"]
    cap = max(1, k // 2)
    residents = tables["residents"]["resident_id"].iloc[::20].tolist()  # 40 residents
    short_before_fix = capped = 0
    for resident_id in residents:
        r = client.get(f"/v1/residents/{resident_id}/recommendations", params={"k": k},
                       headers=PLATFORM)
        assert r.status_code == 200, r.text
        items = [i["course_id"] for i in r.json()["items"]]
        allowed = _allowed(store, tables, resident_id, frames)
        assert len(items) == len(set(items)) == min(k, len(allowed)), resident_id
        assert set(items) <= allowed
        per_category = Counter(category_of[c] for c in allowed)
        counts = Counter(category_of[c] for c in items)
        if sum(min(cap, n) for n in per_category.values()) >= k:
            # Enough courses of other categories: no category has more than half the list.
            assert max(counts.values()) <= cap, (resident_id, counts)
            capped += 1
        else:
            # Too few other courses: each category first gives up to its cap, then the
            # capped categories' further courses fill the list after them.
            short_before_fix += 1
            head = sum(min(cap, n) for n in per_category.values())
            assert Counter(category_of[c] for c in items[:head]) == {
                cat: min(cap, n) for cat, n in per_category.items()}, (resident_id, items)
            assert all(per_category[category_of[c]] > cap for c in items[head:])
    # The sample exercises the cap (short lists) and the fill (long ones).
    assert (capped if k <= 10 else short_before_fix) > 0

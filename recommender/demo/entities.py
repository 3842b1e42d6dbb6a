"""The demo district's calendar, communities, households of residents, course catalogue and the
hidden taste model the participation is drawn from.

One of the three parts of :func:`recommender.demo.generator.generate_district` (whose
docstring tells how the district is drawn); :mod:`recommender.demo.activity` turns these into
events.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from recommender.demo import catalogue as cat
from recommender.domain import BAND_NAMES, CATEGORIES

EPOCH = dt.date(1970, 1, 1)
DAY = 86_400
WEEK = 7 * DAY
PRE, SCH, WRK, OLD = range(4)  # band codes, in the order of BAND_NAMES
N_FACTORS = 8
VIEW_LEAD_DAYS = 21  # a course is on the platform three weeks before it starts
EFFECTS = cat.EFFECTS
HOUSEHOLD_TYPES = cat.HOUSEHOLD_TYPES


class Clock:
    """Day numbers (days since 1970-01-01) of the window, the holidays and the launch."""

    def __init__(self, as_of: dt.date, months: int):
        self.as_of = as_of
        self.months = months
        total = as_of.year * 12 + as_of.month - 1 - months
        start = dt.date(total // 12, total % 12 + 1, min(as_of.day, 28))
        self.window_start_date = start
        self.end = (as_of - EPOCH).days  # first day with no events
        self.start = (start - EPOCH).days
        self.launch = self.start - 540  # the platform went live 18 months before the window
        self.course_lo = self.start + VIEW_LEAD_DAYS
        self.course_hi = self.end + 90

    def holiday_windows(self) -> list[tuple[int, int]]:
        """Start-day ranges of winter and summer holiday courses inside the course range."""
        out = []
        for year in range(self.window_start_date.year, self.as_of.year + 2):
            for lo, hi in (
                (dt.date(year, 1, 15), dt.date(year, 2, 10)),
                (dt.date(year, 7, 1), dt.date(year, 8, 5)),
            ):
                a = max((lo - EPOCH).days, self.course_lo)
                b = min((hi - EPOCH).days, self.course_hi)
                if a <= b:
                    out.append((a, b))
        return out


def communities() -> dict:
    rows = cat.COMMUNITIES
    streets = sorted({r[3] for r in rows}, key=[r[3] for r in rows].index)
    return {
        "id": [r[0] for r in rows],
        "name": [r[1] for r in rows],
        "street_name": [r[3] for r in rows],
        "kind": [r[4] for r in rows],
        "street": np.array([streets.index(r[3]) for r in rows]),
        "leading": np.array([r[4] == "leading" for r in rows]),
        "weight": np.array([r[5] for r in rows]) / sum(r[5] for r in rows),
    }


def residents(rng: np.random.Generator, n: int, clock: Clock, comm: dict) -> dict:
    """Households of mixed generations, cut to exactly ``n`` residents."""
    counts = _household_counts(rng, int(n / 2.0) + 16)  # mean household size is ~2.5
    band, hh = _members(counts, n)
    n_hh = int(hh[-1]) + 1
    counts = counts[:n_hh]
    size = np.bincount(hh, minlength=n_hh)
    birth_year = clock.as_of.year - _ages(rng, band, hh, counts)
    community = rng.choice(len(comm["id"]), n_hh, p=comm["weight"])[hh]
    reg = _registration_days(rng, hh, birth_year, clock)
    female = rng.random(n) < np.where(band == OLD, 0.55, 0.49)
    gender = np.where(female, "F", "M").astype(object)
    gender[rng.random(n) < 0.01] = None
    solo = size[hh] == 1
    household = np.array([f"H{h + 1:0{id_width(n_hh, 5)}d}" for h in hh], dtype=object)
    household[solo & (rng.random(n) < 0.3)] = None  # single residents often never bind a household
    return {
        "band": band.astype(np.int8),
        "birth_year": birth_year,
        "gender": gender,
        "community": community,
        "household": household,
        "hh": hh,
        "reg": reg,
        "carer": _carers(band, hh, counts, size),
    }


def _household_counts(rng: np.random.Generator, n_hh: int) -> np.ndarray:
    """Members per band (columns in band-code order) of ``n_hh`` households of drawn types."""
    kind = rng.choice(len(HOUSEHOLD_TYPES), n_hh, p=[s for _, s in HOUSEHOLD_TYPES])
    u = rng.random((n_hh, 4))
    counts = np.zeros((n_hh, 4), dtype=np.int64)
    names = [k for k, _ in HOUSEHOLD_TYPES]

    def rows(name):
        return kind == names.index(name)

    counts[rows("elderly_single"), OLD] = 1
    counts[rows("elderly_couple"), OLD] = 2
    m = rows("old_and_small")
    counts[m, OLD] = 1 + (u[m, 0] < 0.5)
    counts[m, PRE] = 1
    counts[m, SCH] = u[m, 1] < 0.25
    m = rows("three_generation")
    counts[m, OLD] = 1 + (u[m, 0] < 0.6)
    counts[m, WRK] = 1 + (u[m, 1] < 0.85)
    counts[m, PRE] = u[m, 2] < 0.6
    counts[m, SCH] = (counts[m, PRE] == 0) | (u[m, 3] < 0.4)
    m = rows("parent_school_age")
    counts[m, WRK] = 1 + (u[m, 0] < 0.8)
    counts[m, SCH] = 1 + (u[m, 1] < 0.3)
    m = rows("parent_preschool")
    counts[m, WRK] = 1 + (u[m, 0] < 0.85)
    counts[m, PRE] = 1
    counts[m, SCH] = u[m, 1] < 0.3
    counts[rows("single_adult"), WRK] = 1
    counts[rows("adult_couple"), WRK] = 2
    return counts


def _members(counts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Band code and household of the first ``n`` members, household by household."""
    # Elders first so a household's carer is easy to find.
    order = [OLD, WRK, PRE, SCH]
    flat = counts[:, order]
    band = np.repeat(np.tile(np.array(order), len(counts)), flat.ravel())[:n]
    hh = np.repeat(np.arange(len(counts)), flat.sum(axis=1))[:n]
    return band, hh


def _ages(rng: np.random.Generator, band, hh, counts) -> np.ndarray:
    """Ages: kids uniform in their band; parents 23-36 years older than the eldest child;
    grandparents a generation above; elders without children live long on the coast."""
    n, n_hh = len(band), len(counts)
    has_kids = (counts[:, PRE] + counts[:, SCH]) > 0
    age = np.empty(n, dtype=np.int64)
    kid_age = np.where(band == PRE, rng.integers(1, 6, n), rng.integers(6, 18, n))
    eldest = np.zeros(n_hh, dtype=np.int64)
    kid = (band == PRE) | (band == SCH)
    np.maximum.at(eldest, hh[kid], kid_age[kid])
    parent = np.clip(eldest + rng.integers(23, 37, n_hh), 20, 59)
    grand = np.clip(np.maximum(60, parent + rng.integers(22, 33, n_hh)), 60, 95)
    lone_old = np.minimum(60 + rng.exponential(11.0, n).astype(np.int64), 98)
    adult = np.clip(rng.normal(38, 11, n).astype(np.int64), 18, 59)
    hk = has_kids[hh]
    age[kid] = kid_age[kid]
    w = band == WRK
    age[w] = np.where(
        hk[w], np.clip(parent[hh[w]] + rng.integers(-3, 4, w.sum()), 18, 59), adult[w]
    )
    o = band == OLD
    age[o] = np.where(
        hk[o], np.clip(grand[hh[o]] + rng.integers(-3, 4, o.sum()), 60, 98), lone_old[o]
    )
    return age


def _registration_days(rng: np.random.Generator, hh, birth_year, clock: Clock) -> np.ndarray:
    """Day each resident registered on the platform: after birth and before as_of."""
    n, n_hh = len(hh), int(hh[-1]) + 1
    # Most households joined before the window; a quarter join during it (new, cold users).
    early = rng.random(n_hh) < 0.75
    base = np.where(
        early,
        rng.integers(clock.launch, clock.start, n_hh),
        rng.integers(clock.start, clock.end, n_hh),
    )
    reg = base[hh] + rng.exponential(15.0, n).astype(np.int64)
    reg = np.where(reg > clock.end - 1, base[hh], reg)  # members join after the first one
    born = np.array([(dt.date(int(y), 1, 1) - EPOCH).days for y in range(1900, 2101)])
    born_day = born[np.clip(birth_year - 1900, 0, 200)] + rng.integers(0, 60, n)
    return np.minimum(np.maximum(reg, born_day), clock.end - 1)


def _carers(band, hh, counts, size) -> np.ndarray:
    """Carer of each preschooler (-1 for everyone else): the household's first elder, else its
    first working adult."""
    first = np.concatenate([[0], np.cumsum(size)[:-1]])
    carer_of_hh = np.where(
        counts[:, OLD] > 0, first, np.where(counts[:, WRK] > 0, first + counts[:, OLD], -1)
    )
    return np.where(band == PRE, carer_of_hh[hh], -1)


def courses(rng: np.random.Generator, k: int, clock: Clock, comm: dict) -> dict:
    """The catalogue: a kind of course, a variant (level, family, holiday), a venue, a schedule."""
    bases = cat.COURSE_BASES
    share = {"handicraft": 0.2, "intangible_heritage": 0.24, "skills": 0.26, "interest": 0.3}
    per_cat = {c: sum(b.category == c for b in bases) for c in CATEGORIES}
    p = np.array([share[b.category] / per_cat[b.category] for b in bases])
    base = rng.choice(len(bases), k, p=p / p.sum())
    venue_p = comm["weight"] * np.where(comm["leading"], 1.6, 1.0)
    venue = rng.choice(len(venue_p), k, p=venue_p / venue_p.sum())
    fee = rng.choice(3, k, p=[0.7, 0.2, 0.1])
    holidays = clock.holiday_windows()
    u = rng.random((k, 6))

    titles, tags, descs, targets, family, holiday = [], [], [], [], [], []
    start = np.empty(k, dtype=np.int64)
    n_sess = np.empty(k, dtype=np.int64)
    weekday = np.empty(k, dtype=np.int64)
    start_min = np.empty(k, dtype=np.int64)
    for i in range(k):
        b = bases[base[i]]
        bands, suffix, is_family, is_holiday = _variant(rng, b, u[i], holidays)
        start[i], weekday[i], start_min[i], n_sess[i], suffix = _schedule(
            rng, bands, suffix, is_holiday, holidays, clock
        )
        title, tag = _title_and_tags(
            b, suffix, int(start[i]), int(weekday[i]), is_family, is_holiday
        )
        titles.append(title)
        tags.append(tag)
        descs.append(_description(rng, b, u[i], int(n_sess[i]), bands, comm, venue[i]))
        targets.append(bands)
        family.append(is_family)
        holiday.append(is_holiday)

    order = np.argsort(start, kind="stable")  # course ids follow the order courses were listed
    mask = np.array([[name in t for name in BAND_NAMES] for t in targets])
    end = start + 7 * (n_sess - 1)
    return {
        "base": base[order],
        "category": np.array([CATEGORIES.index(bases[j].category) for j in base])[order],
        "title": [titles[j] for j in order],
        "tags": [tags[j] for j in order],
        "description": [descs[j] for j in order],
        "targets": ["|".join(targets[j]) for j in order],
        "target_mask": mask[order],
        "family": np.array(family)[order],
        "holiday": np.array(holiday)[order],
        "venue": venue[order],
        "fee": fee[order],
        "start": start[order],
        "end": end[order],
        "n_sess": n_sess[order],
        "weekday": weekday[order],
        "start_min": start_min[order],
    }


def _variant(rng: np.random.Generator, b: cat.CourseBase, u, holidays) -> tuple:
    """Target bands, level suffix, and whether a run is a family or a school-holiday course."""
    bands = b.bands[rng.choice(len(b.bands), p=b.band_weights)]
    suffix = cat.LEVEL_SUFFIXES[rng.integers(len(cat.LEVEL_SUFFIXES))]
    is_family = b.family and u[0] < 0.5
    is_holiday = "school_age" in bands and u[1] < 0.55 and bool(holidays)
    if is_family:
        suffix = cat.FAMILY_SUFFIXES[rng.integers(2)]
        bands = ("preschool", "elderly") if suffix == "祖孙共学班" else ("preschool", "working_age")
    return bands, suffix, is_family, is_holiday


def _schedule(rng: np.random.Generator, bands, suffix, is_holiday, holidays, clock) -> tuple:
    """First session day, weekday, start minute and number of weekly sessions; holiday courses
    get the holiday's suffix, returned last."""
    if is_holiday:
        lo, hi = holidays[rng.integers(len(holidays))]
        day = int(rng.integers(lo, hi + 1))
        # Holiday classes run on weekdays: children are free and grandparents bring them.
        wd, hhmm = int(rng.integers(0, 5)), ("09:00", "14:00")[rng.integers(2)]
        n_sess = rng.integers(4, 7)
        winter = date_of(day).month <= 3
        suffix = cat.HOLIDAY_SUFFIXES[0 if winter else 1]
    else:
        day = int(rng.integers(clock.course_lo, clock.course_hi + 1))
        days, times = cat.SCHEDULES[bands[0]]
        if suffix == "周末班":
            days = (5, 6)
        wd, hhmm = int(rng.choice(days)), times[rng.integers(len(times))]
        n_sess = rng.integers(6, 17)
    start = day + (wd - (day + 3) % 7) % 7  # 1970-01-01 was a Thursday (weekday 3)
    return start, wd, int(hhmm[:2]) * 60 + int(hhmm[3:]), n_sess, suffix


def _title_and_tags(b: cat.CourseBase, suffix, start, weekday, is_family, is_holiday):
    """The listing's title (kind, variant, term) and its ``|``-joined tags, as two strings."""
    d0 = date_of(start)
    term = f"{d0.year}年" + ("" if is_holiday else "冬冬春春春夏夏夏秋秋秋冬"[d0.month - 1] + "季")
    tag = list(b.tags)
    if is_holiday:
        tag.append("寒假" if suffix == cat.HOLIDAY_SUFFIXES[0] else "暑假")
    if is_family and "亲子" not in tag:
        tag.append("亲子")
    if weekday >= 5:
        tag.append("周末")
    return f"{b.title}{suffix}（{term}）", "|".join(tag)


def _description(rng: np.random.Generator, b: cat.CourseBase, u, n_sess, bands, comm, venue):
    """A short listing text, or None: many listings go up without a description."""
    if u[2] < 0.15:
        return None
    tmpl = cat.DESCRIPTION_TEMPLATES[rng.integers(len(cat.DESCRIPTION_TEMPLATES))]
    teachers = cat.TEACHERS[b.category]
    return tmpl.format(
        teacher=teachers[rng.integers(len(teachers))],
        n=n_sess,
        street=comm["street_name"][venue],
        community=comm["name"][venue],
        title=b.title,
        who="、".join(cat.BAND_WHO[x] for x in bands),
    )


def tastes(rng: np.random.Generator, res: dict, crs: dict) -> dict:
    """The hidden taste model: per-resident category affinity, factors, activity; course appeal."""
    n, k = len(res["band"]), len(crs["category"])
    band_logits = np.array([cat.BAND_CATEGORY_LOGITS[b] for b in BAND_NAMES], dtype=np.float32)
    affinity = band_logits[res["band"]] + rng.normal(
        0, EFFECTS["individual_category_sd"], (n, 4)
    ).astype(np.float32)
    activity = (
        rng.lognormal(-0.18, 0.6, n)
        * np.array([cat.BAND_ACTIVITY[b] for b in BAND_NAMES])[res["band"]]
    )
    return {
        "affinity": affinity,
        "favourite": np.argmax(affinity, axis=1).astype(np.int8),
        "user_factors": rng.normal(0, EFFECTS["factor_sd"], (n, N_FACTORS)).astype(np.float32),
        "course_factors": rng.normal(0, EFFECTS["factor_sd"], (k, N_FACTORS)).astype(np.float32),
        "popularity": rng.normal(0, EFFECTS["course_popularity_sd"], k).astype(np.float32),
        "activity": activity.astype(np.float32),
    }


def date_of(day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(day))


def id_width(count: int, minimum: int) -> int:
    return max(minimum, len(str(count)))

"""A realistic demo district: communities, residents, courses and a year of participation.

The district imitates a Zhoushan-like coastal district (``demo_catalogue``): an ageing population
in multi-generation households, a catalogue of courses in the four categories, and participation
events drawn from a hidden taste model that tests and notebooks can check a recommender against.

How the participation is drawn, in brief:

* every resident has a hidden affinity per category (the band's taste plus a strong personal
  deviation), latent factors matched against course factors, and an activity level;
* a course's appeal to a resident adds its popularity, its target bands, the distance to its venue
  (same community, same street), the school holidays for school-age children, and the fee tier;
* each resident looks at a number of courses drawn without replacement in proportion to that
  appeal (the Gumbel top-k trick, vectorised per chunk of residents);
* a preschooler's carer (a grandparent when there is one, else a parent) joins most of the
  child's family and handicraft courses, enrolling in the same days and coming to the same
  sessions;
* each (resident, course) pair becomes a funnel: views, maybe an enrolment (while seats last), a
  cancellation or weekly sessions attended or missed, a completion and a rating.

Everything is drawn from one seed and the reference date ``as_of``, so the same call writes
byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from recommender import demo_catalogue as cat
from recommender.domain import BAND_NAMES, CATEGORIES, CATEGORY_FOR_BAND, EVENTS, TABLES, AgeBands

__all__ = ["generate_district"]

_EPOCH = dt.date(1970, 1, 1)
_DAY = 86_400
_WEEK = 7 * _DAY
_PRE, _SCH, _WRK, _OLD = range(4)
_EV = {name: i for i, name in enumerate(EVENTS)}
# Tie-break order of events with the same timestamp inside one funnel.
_STAGE = {"view": 0, "enroll": 1, "cancel": 2, "attend": 3, "no_show": 3, "complete": 4, "rate": 5}

# Calibrated on the default funnel: events per (resident, course) pair, used to turn
# ``events_per_resident`` into the number of courses each resident looks at.
_EVENTS_PER_PAIR = 4.0
_N_FACTORS = 8
_VIEW_LEAD_DAYS = 21  # a course is on the platform three weeks before it starts
_ENROL_GRACE_DAYS = 14  # late enrolment is accepted in the first two weeks
_CHUNK = 2048  # residents per sampling chunk (fixed: chunking must not change the draws)
_WRITE_BATCH = 1_000_000

_EFFECTS = cat.EFFECTS
_HOUSEHOLD_TYPES = cat.HOUSEHOLD_TYPES


def generate_district(
    out_dir,
    residents: int = 2000,
    courses: int = 120,
    seed: int = 0,
    fmt: str = "csv",
    as_of: dt.date | None = None,
    months: int = 14,
    progress: bool = False,
    events_per_resident: float = 25.0,
) -> dict:
    """Write a demo district (four tables plus the hidden tastes) into ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write into (created if missing; existing files of the same name are replaced).
    residents, courses : int
        Number of residents and of courses (both at least 1).
    seed : int
        Seed of every random draw; the same seed and ``as_of`` give byte-identical files.
    fmt : {"csv", "parquet"}
        File format of the four tables (CSV is UTF-8 with a header row).
    as_of : datetime.date, optional
        Reference date (default: today). All events happen in the ``months`` before it; some
        courses run on past it, so a recommender has open courses to offer.
    months : int
        Length of the participation window in months (at least 2).
    progress : bool
        Show tqdm progress bars.
    events_per_resident : float
        Target mean number of participation events per resident (approximate: every resident
        looks at one course at least, so very small targets are exceeded).

    Returns
    -------
    dict
        ``rows`` (per table), ``seconds`` (total), ``stage_seconds``, ``out_dir`` and ``files``.

    Notes
    -----
    Besides ``communities``, ``residents``, ``courses`` and ``participations`` (columns exactly as
    ``recommender.domain.TABLES``), the folder gets ``hidden_tastes.json`` / ``hidden_tastes.npz``
    (the taste model the events were drawn from; arrays in file row order) and ``meta.json``.
    """
    t_start = time.perf_counter()
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
    for name, value, low in (
        ("residents", residents, 1),
        ("courses", courses, 1),
        ("months", months, 2),
    ):
        if int(value) != value or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not events_per_resident > 0:
        raise ValueError(f"events_per_resident must be > 0, got {events_per_resident!r}")
    as_of = dt.date.today() if as_of is None else as_of
    if not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime):
        raise ValueError(f"as_of must be a datetime.date, got {as_of!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    seeds = np.random.SeedSequence(int(seed)).spawn(6)
    clock = _Clock(as_of, int(months))
    stages: dict[str, float] = {}

    t0 = time.perf_counter()
    comm = _communities()
    res = _residents(np.random.default_rng(seeds[0]), int(residents), clock, comm)
    crs = _courses(np.random.default_rng(seeds[1]), int(courses), clock, comm)
    taste = _tastes(np.random.default_rng(seeds[2]), res, crs)
    stages["entities"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pairs = _sample_pairs(seeds[3], res, crs, comm, taste, clock, events_per_resident, progress)
    pairs = _add_carers(np.random.default_rng(seeds[4]), pairs, res, crs, clock)
    stages["sampling"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ev = _funnels(np.random.default_rng(seeds[5]), pairs, res, crs, clock, int(seed))
    stages["funnels"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    files = _write_all(out, fmt, comm, res, crs, ev, progress)
    rows = {
        "communities": len(comm["id"]),
        "residents": len(res["band"]),
        "courses": len(crs["category"]),
        "participations": len(ev["t"]),
    }
    files += _write_side_files(out, seed, clock, fmt, rows, events_per_resident, res, crs, taste)
    stages["writing"] = time.perf_counter() - t0
    return {
        "out_dir": str(out),
        "rows": rows,
        "seconds": time.perf_counter() - t_start,
        "stage_seconds": stages,
        "files": files,
    }


class _Clock:
    """Day numbers (days since 1970-01-01) of the window, the holidays and the launch."""

    def __init__(self, as_of: dt.date, months: int):
        self.as_of = as_of
        self.months = months
        total = as_of.year * 12 + as_of.month - 1 - months
        start = dt.date(total // 12, total % 12 + 1, min(as_of.day, 28))
        self.window_start_date = start
        self.end = (as_of - _EPOCH).days  # first day with no events
        self.start = (start - _EPOCH).days
        self.launch = self.start - 540  # the platform went live 18 months before the window
        self.course_lo = self.start + _VIEW_LEAD_DAYS
        self.course_hi = self.end + 90

    def holiday_windows(self) -> list[tuple[int, int]]:
        """Start-day ranges of winter and summer holiday courses inside the course range."""
        out = []
        for year in range(self.window_start_date.year, self.as_of.year + 2):
            for lo, hi in (
                (dt.date(year, 1, 15), dt.date(year, 2, 10)),
                (dt.date(year, 7, 1), dt.date(year, 8, 5)),
            ):
                a = max((lo - _EPOCH).days, self.course_lo)
                b = min((hi - _EPOCH).days, self.course_hi)
                if a <= b:
                    out.append((a, b))
        return out


def _communities() -> dict:
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


def _residents(rng: np.random.Generator, n: int, clock: _Clock, comm: dict) -> dict:
    """Households of mixed generations, cut to exactly ``n`` residents."""
    n_hh = int(n / 2.0) + 16  # mean household size is ~2.5
    kind = rng.choice(len(_HOUSEHOLD_TYPES), n_hh, p=[s for _, s in _HOUSEHOLD_TYPES])
    u = rng.random((n_hh, 4))
    counts = np.zeros((n_hh, 4), dtype=np.int64)  # members per band: pre, sch, wrk, old
    names = [k for k, _ in _HOUSEHOLD_TYPES]

    def rows(name):
        return kind == names.index(name)

    counts[rows("elderly_single"), _OLD] = 1
    counts[rows("elderly_couple"), _OLD] = 2
    m = rows("old_and_small")
    counts[m, _OLD] = 1 + (u[m, 0] < 0.5)
    counts[m, _PRE] = 1
    counts[m, _SCH] = u[m, 1] < 0.25
    m = rows("three_generation")
    counts[m, _OLD] = 1 + (u[m, 0] < 0.6)
    counts[m, _WRK] = 1 + (u[m, 1] < 0.85)
    counts[m, _PRE] = u[m, 2] < 0.6
    counts[m, _SCH] = (counts[m, _PRE] == 0) | (u[m, 3] < 0.4)
    m = rows("parent_school_age")
    counts[m, _WRK] = 1 + (u[m, 0] < 0.8)
    counts[m, _SCH] = 1 + (u[m, 1] < 0.3)
    m = rows("parent_preschool")
    counts[m, _WRK] = 1 + (u[m, 0] < 0.85)
    counts[m, _PRE] = 1
    counts[m, _SCH] = u[m, 1] < 0.3
    counts[rows("single_adult"), _WRK] = 1
    counts[rows("adult_couple"), _WRK] = 2

    # Members in household order, elders first so a household's carer is easy to find.
    order = [_OLD, _WRK, _PRE, _SCH]
    flat = counts[:, order]
    band = np.repeat(np.tile(np.array(order), n_hh), flat.ravel())[:n]
    hh = np.repeat(np.arange(n_hh), flat.sum(axis=1))[:n]
    n_hh = int(hh[-1]) + 1
    size = np.bincount(hh, minlength=n_hh)
    counts = counts[:n_hh]
    has_kids = (counts[:, _PRE] + counts[:, _SCH]) > 0

    # Ages: kids uniform in their band; parents 23-36 years older than the eldest child;
    # grandparents a generation above; elders without children live long on the coast.
    age = np.empty(n, dtype=np.int64)
    kid_age = np.where(band == _PRE, rng.integers(1, 6, n), rng.integers(6, 18, n))
    eldest = np.zeros(n_hh, dtype=np.int64)
    kid = (band == _PRE) | (band == _SCH)
    np.maximum.at(eldest, hh[kid], kid_age[kid])
    parent = np.clip(eldest + rng.integers(23, 37, n_hh), 20, 59)
    grand = np.clip(np.maximum(60, parent + rng.integers(22, 33, n_hh)), 60, 95)
    lone_old = np.minimum(60 + rng.exponential(11.0, n).astype(np.int64), 98)
    adult = np.clip(rng.normal(38, 11, n).astype(np.int64), 18, 59)
    hk = has_kids[hh]
    age[kid] = kid_age[kid]
    w = band == _WRK
    age[w] = np.where(
        hk[w], np.clip(parent[hh[w]] + rng.integers(-3, 4, w.sum()), 18, 59), adult[w]
    )
    o = band == _OLD
    age[o] = np.where(
        hk[o], np.clip(grand[hh[o]] + rng.integers(-3, 4, o.sum()), 60, 98), lone_old[o]
    )
    birth_year = clock.as_of.year - age

    community = rng.choice(len(comm["id"]), n_hh, p=comm["weight"])[hh]
    # Most households joined before the window; a quarter join during it (new, cold users).
    early = rng.random(n_hh) < 0.75
    base = np.where(
        early,
        rng.integers(clock.launch, clock.start, n_hh),
        rng.integers(clock.start, clock.end, n_hh),
    )
    reg = base[hh] + rng.exponential(15.0, n).astype(np.int64)
    reg = np.where(reg > clock.end - 1, base[hh], reg)  # members join after the first one
    born = np.array([(dt.date(int(y), 1, 1) - _EPOCH).days for y in range(1900, 2101)])
    born_day = born[np.clip(birth_year - 1900, 0, 200)] + rng.integers(0, 60, n)
    reg = np.minimum(np.maximum(reg, born_day), clock.end - 1)

    female = rng.random(n) < np.where(band == _OLD, 0.55, 0.49)
    gender = np.where(female, "F", "M").astype(object)
    gender[rng.random(n) < 0.01] = None
    # Carer of each preschooler: the household's first elder, else its first working adult.
    first = np.concatenate([[0], np.cumsum(size)[:-1]])
    carer_of_hh = np.where(
        counts[:, _OLD] > 0, first, np.where(counts[:, _WRK] > 0, first + counts[:, _OLD], -1)
    )
    carer = np.where(band == _PRE, carer_of_hh[hh], -1)
    solo = size[hh] == 1
    household = np.array([f"H{h + 1:0{_width(n_hh, 5)}d}" for h in hh], dtype=object)
    household[solo & (rng.random(n) < 0.3)] = None  # single residents often never bind a household
    return {
        "band": band.astype(np.int8),
        "birth_year": birth_year,
        "gender": gender,
        "community": community,
        "household": household,
        "hh": hh,
        "reg": reg,
        "carer": carer,
    }


def _courses(rng: np.random.Generator, k: int, clock: _Clock, comm: dict) -> dict:
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
        bands = b.bands[rng.choice(len(b.bands), p=b.band_weights)]
        suffix = cat.LEVEL_SUFFIXES[rng.integers(len(cat.LEVEL_SUFFIXES))]
        is_family = b.family and u[i, 0] < 0.5
        is_holiday = "school_age" in bands and u[i, 1] < 0.55 and bool(holidays)
        if is_family:
            suffix = cat.FAMILY_SUFFIXES[rng.integers(2)]
            bands = (
                ("preschool", "elderly") if suffix == "祖孙共学班" else ("preschool", "working_age")
            )
        if is_holiday:
            lo, hi = holidays[rng.integers(len(holidays))]
            day = int(rng.integers(lo, hi + 1))
            # Holiday classes run on weekdays: children are free and grandparents bring them.
            wd, hhmm = int(rng.integers(0, 5)), ("09:00", "14:00")[rng.integers(2)]
            n_sess[i] = rng.integers(4, 7)
            winter = _date(day).month <= 3
            suffix = cat.HOLIDAY_SUFFIXES[0 if winter else 1]
        else:
            day = int(rng.integers(clock.course_lo, clock.course_hi + 1))
            days, times = cat.SCHEDULES[bands[0]]
            if suffix == "周末班":
                days = (5, 6)
            wd, hhmm = int(rng.choice(days)), times[rng.integers(len(times))]
            n_sess[i] = rng.integers(6, 17)
        start[i] = day + (wd - (day + 3) % 7) % 7  # 1970-01-01 was a Thursday (weekday 3)
        weekday[i] = wd
        start_min[i] = int(hhmm[:2]) * 60 + int(hhmm[3:])
        d0 = _date(int(start[i]))
        term = f"{d0.year}年" + (
            "" if is_holiday else "冬冬春春春夏夏夏秋秋秋冬"[d0.month - 1] + "季"
        )
        title = f"{b.title}{suffix}（{term}）"
        tag = list(b.tags)
        if is_holiday:
            tag.append("寒假" if winter else "暑假")
        if is_family and "亲子" not in tag:
            tag.append("亲子")
        if wd >= 5:
            tag.append("周末")
        if u[i, 2] < 0.15:
            desc = None  # many listings go up without a description
        else:
            tmpl = cat.DESCRIPTION_TEMPLATES[rng.integers(len(cat.DESCRIPTION_TEMPLATES))]
            teachers = cat.TEACHERS[b.category]
            desc = tmpl.format(
                teacher=teachers[rng.integers(len(teachers))],
                n=int(n_sess[i]),
                street=comm["street_name"][venue[i]],
                community=comm["name"][venue[i]],
                title=b.title,
                who="、".join(cat.BAND_WHO[x] for x in bands),
            )
        titles.append(title)
        tags.append("|".join(tag))
        descs.append(desc)
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


def _tastes(rng: np.random.Generator, res: dict, crs: dict) -> dict:
    """The hidden taste model: per-resident category affinity, factors, activity; course appeal."""
    n, k = len(res["band"]), len(crs["category"])
    band_logits = np.array([cat.BAND_CATEGORY_LOGITS[b] for b in BAND_NAMES], dtype=np.float32)
    affinity = band_logits[res["band"]] + rng.normal(
        0, _EFFECTS["individual_category_sd"], (n, 4)
    ).astype(np.float32)
    activity = (
        rng.lognormal(-0.18, 0.6, n)
        * np.array([cat.BAND_ACTIVITY[b] for b in BAND_NAMES])[res["band"]]
    )
    return {
        "affinity": affinity,
        "favourite": np.argmax(affinity, axis=1).astype(np.int8),
        "user_factors": rng.normal(0, _EFFECTS["factor_sd"], (n, _N_FACTORS)).astype(np.float32),
        "course_factors": rng.normal(0, _EFFECTS["factor_sd"], (k, _N_FACTORS)).astype(np.float32),
        "popularity": rng.normal(0, _EFFECTS["course_popularity_sd"], k).astype(np.float32),
        "activity": activity.astype(np.float32),
    }


def _sample_pairs(seed_seq, res, crs, comm, taste, clock, events_per_resident, progress) -> dict:
    """Which courses each resident looks at, drawn in proportion to appeal, chunk by chunk.

    Drawing with replacement and keeping first occurrences is successive sampling without
    replacement (the same law as Gumbel top-k) but needs only one exp and one cumsum per
    (resident, course) cell. Courses are sorted by end date so that the courses a resident can
    still join (ending after registration) are a suffix of each row: no mask is needed.
    """
    n, k = len(res["band"]), len(crs["category"])
    e = _EFFECTS
    n_comm = len(comm["id"])
    perm = np.argsort(crs["end"], kind="stable")
    end = crs["end"][perm]
    venue = crs["venue"][perm]
    same = np.arange(n_comm)[:, None] == venue[None, :]
    street = comm["street"][:, None] == comm["street"][venue][None, :]
    comm_bonus = np.where(same, e["same_community"], np.where(street, e["same_street"], 0.0))
    band_bonus = e["target_band_match"] * crs["target_mask"][perm].T.astype(np.float64)
    band_bonus[_SCH] += e["school_holiday_for_school_age"] * crs["holiday"][perm]
    band_bonus[_OLD] += e["value_added_fee_for_elderly"] * (crs["fee"][perm] == 2)
    static = (
        taste["popularity"][perm]
        + e["inclusive_fee"] * (crs["fee"][perm] == 0)
        + e["leading_community_venue"] * comm["leading"][venue]
    )
    # One row of fixed appeal per (band, community); courses first shown on the platform after
    # as_of get zero weight for everyone.
    bonus = (band_bonus[:, None, :] + comm_bonus[None, :, :] + static).reshape(4 * n_comm, k)
    bonus[:, crs["start"][perm] - _VIEW_LEAD_DAYS > clock.end - 1] = -np.inf
    bonus = bonus.astype(np.float32)
    # Category affinity and latent factors in one product: [affinity | factors] @ [onehot | V].
    onehot = np.eye(4, dtype=np.float32)[crs["category"][perm]]
    right = np.hstack([onehot, taste["course_factors"][perm]]).T.copy()
    left = np.hstack([taste["affinity"], taste["user_factors"]])
    group = res["band"].astype(np.int64) * n_comm + res["community"]

    mean_pairs = events_per_resident / _EVENTS_PER_PAIR
    lam = np.maximum(mean_pairs - 1, 0.05) * taste["activity"] / taste["activity"].mean()
    n_chunks = -(-n // _CHUNK)
    chunk_seeds = seed_seq.spawn(n_chunks)
    out_r, out_c = [], []
    for ci in tqdm(range(n_chunks), desc="sampling courses", disable=not progress, unit="chunk"):
        rng = np.random.default_rng(chunk_seeds[ci])
        r = np.arange(ci * _CHUNK, min(n, (ci + 1) * _CHUNK))
        want = np.minimum(1 + rng.poisson(lam[r]), 80)
        w = left[r] @ right
        w += bonus[group[r]]
        np.minimum(w, 60.0, out=w)
        np.exp(w, out=w)
        np.cumsum(w, axis=1, out=w)
        first = np.searchsorted(end, res["reg"][r], side="left")
        lo = np.where(first > 0, w[np.arange(len(r)), np.maximum(first - 1, 0)], 0.0)
        span = w[:, -1] - lo
        draws = 2 * want + 3  # duplicates are dropped below
        row = np.repeat(np.arange(len(r)), draws)
        u = lo[row] + rng.random(len(row)) * span[row]
        col = np.empty(len(row), dtype=np.int64)
        bounds = np.concatenate([[0], np.cumsum(draws)])
        for i in range(len(r)):
            a, b = bounds[i], bounds[i + 1]
            col[a:b] = np.searchsorted(w[i], u[a:b], side="right")
        np.minimum(col, k - 1, out=col)
        ok = (span[row] > 0) & (col >= first[row]) & np.isfinite(bonus[group[r][row], col])
        row, col = row[ok], col[ok]
        _, pos = np.unique(row * k + col, return_index=True)
        pos.sort()
        row, col = row[pos], col[pos]
        rank = np.arange(len(row)) - np.searchsorted(row, row, side="left")
        keep = rank < want[row]
        out_r.append(r[row[keep]].astype(np.int32))
        out_c.append(perm[col[keep]].astype(np.int32))
    rr, cc = np.concatenate(out_r), np.concatenate(out_c)
    inv = np.empty(k, dtype=np.int64)
    inv[perm] = np.arange(k)
    score = np.einsum("ij,ij->i", left[rr], right.T[inv[cc]]) + bonus[group[rr], inv[cc]]
    return {"r": rr, "c": cc, "score": score.astype(np.float32)}


def _add_carers(rng, pairs, res, crs, clock) -> dict:
    """A preschooler's carer joins most of the child's family and handicraft courses."""
    r, c = pairs["r"], pairs["c"]
    carer = res["carer"][r]
    fam = crs["family"][c]
    p_join = np.where(fam, 0.9, np.where(crs["category"][c] == 0, 0.6, 0.0))
    join = (carer >= 0) & (rng.random(len(r)) < p_join)
    join &= res["reg"][np.maximum(carer, 0)] <= np.minimum(crs["end"][c], clock.end - 1)
    child_pair = np.flatnonzero(join)
    cr = carer[child_pair].astype(np.int32)
    cc = c[child_pair]
    n_new = len(child_pair)
    # Carer pairs first so that de-duplication keeps them over the carer's own draw.
    all_r = np.concatenate([cr, r])
    all_c = np.concatenate([cc, c])
    src = np.concatenate([n_new + child_pair, n_new + np.arange(len(r))])
    score = np.concatenate([pairs["score"][child_pair] + 1.0, pairs["score"]])
    k = len(crs["category"])
    _, first = np.unique(all_r.astype(np.int64) * k + all_c, return_index=True)
    first.sort()
    pos = np.full(len(all_r), -1, dtype=np.int64)
    pos[first] = np.arange(len(first))
    return {
        "r": all_r[first],
        "c": all_c[first],
        "score": score[first],
        "src": pos[src[first]],
        "carer": first < n_new,
    }


def _funnels(rng, pairs, res, crs, clock, seed) -> dict:
    """Turn each (resident, course) pair into time-ordered events."""
    r, c, src, is_carer = pairs["r"], pairs["c"], pairs["src"], pairs["carer"]
    n_pairs = len(r)
    end_s = clock.end * _DAY  # no event at or after as_of
    score = pairs["score"].astype(np.float64)
    z = (score - score.mean()) / (score.std() + 1e-9) if n_pairs else score
    start, last = crs["start"][c], np.minimum(crs["end"][c], clock.end - 1)
    lo = np.maximum.reduce([start - _VIEW_LEAD_DAYS, res["reg"][r], np.full(n_pairs, clock.start)])
    hi_enrol = np.minimum(start + _ENROL_GRACE_DAYS, clock.end - 1)
    can_enrol = lo <= hi_enrol
    hi_view = np.where(can_enrol, hi_enrol, last)
    day = lo + (rng.random(n_pairs) ** 1.3 * (hi_view - lo + 1)).astype(np.int64)
    t_view = day * _DAY + rng.integers(7 * 3600, 22 * 3600, n_pairs)
    enrolled = can_enrol & (rng.random(n_pairs) < _sigmoid(-1.0 + 1.2 * z))
    enrol_cap = hi_enrol * _DAY + 22 * 3600  # the platform is quiet at night
    t_enrol = np.minimum(t_view + rng.exponential(_DAY, n_pairs).astype(np.int64), enrol_cap)
    cancelled = rng.random(n_pairs) < 0.08
    n_extra = rng.geometric(0.55, n_pairs) - 1

    # A carer copies the child's decisions, a few hours apart, within the carer's own limits.
    cp = np.flatnonzero(is_carer)
    s = src[cp]
    t_view[cp] = np.maximum(t_view[s] - rng.integers(0, 2 * _DAY, len(cp)), lo[cp] * _DAY)
    t_view[cp] = np.minimum(t_view[cp], (hi_view[cp] + 1) * _DAY - 1)
    enrolled[cp] = enrolled[s] & can_enrol[cp]
    t_enrol[cp] = np.clip(
        t_enrol[s] + rng.integers(-3 * 3600, 3 * 3600, len(cp)), t_view[cp], enrol_cap[cp]
    )
    cancelled[cp] = cancelled[s]
    t_enrol = np.maximum(t_enrol, t_view)
    # Cancellations come before the first session, or within hours of a late enrolment.
    sess0 = start * _DAY + crs["start_min"][c] * 60
    wait = np.maximum(sess0 - t_enrol, 6 * 3600)
    cancel_t = t_enrol + 60 + (rng.random(n_pairs) * wait).astype(np.int64)
    cancel_t = np.minimum(cancel_t, np.minimum(end_s, (last + 1) * _DAY) - 60)
    cancelled &= cancel_t > t_enrol
    active = enrolled & ~cancelled

    # Seats: when more residents enrol than a course seats, the late ones stay viewers.
    demand = np.bincount(c[active], minlength=len(crs["start"]))
    capacity = np.maximum(10, 5 * np.round(demand * rng.uniform(0.5, 1.5, len(demand)) / 5))
    capacity = capacity.astype(np.int64)
    idx = np.flatnonzero(active)
    idx = idx[np.lexsort((idx, t_enrol[idx], c[idx]))]
    seat = np.arange(len(idx)) - np.searchsorted(c[idx], c[idx], side="left")
    over = idx[seat >= capacity[c[idx]]]
    enrolled[over] = active[over] = False
    taken = np.bincount(c[active], minlength=len(capacity))
    ended = crs["end"] < clock.end
    status = np.where(ended, 2, np.where(taken >= capacity, 1, 0))

    # Sessions from the first one after enrolment to the last one before as_of.
    k0 = np.where(t_enrol < sess0, 0, (t_enrol - sess0) // _WEEK + 1)
    k1 = np.minimum(crs["n_sess"][c], np.maximum(0, (end_s - 1 - sess0) // _WEEK + 1))
    n_sess = np.where(active, np.maximum(0, k1 - k0), 0)
    h_att = _hash_uniform(src, 0, seed, 11)
    p_att = 0.5 + 0.45 * np.sqrt(h_att)
    drops = _hash_uniform(src, 0, seed, 12) < 0.2
    drop_at = np.where(
        drops, k0 + (_hash_uniform(src, 0, seed, 13) * n_sess).astype(np.int64), 10**6
    )
    sp = np.repeat(np.arange(n_pairs), n_sess)
    sk = k0[sp] + np.arange(len(sp)) - np.repeat(np.cumsum(n_sess) - n_sess, n_sess)
    live = sk < drop_at[sp]
    sp, sk = sp[live], sk[live]
    came = _hash_uniform(src[sp], sk, seed, 14) < p_att[sp]
    t_sess = sess0[sp] + sk * _WEEK
    jitter = (_hash_uniform(sp, sk, seed, 15) * 20 * 60).astype(np.int64) - 14 * 60
    t_att = np.where(came, np.maximum(t_sess + jitter, t_enrol[sp] + 60), t_sess + 2 * 3600)
    n_came = np.bincount(sp[came], minlength=n_pairs)
    n_held = np.bincount(sp, minlength=n_pairs)

    # Completion: the course is over, the resident stayed and came to most sessions.
    finished = active & (k1 == crs["n_sess"][c]) & (drop_at >= k1) & (n_sess > 0)
    complete = finished & (n_came >= 0.6 * np.maximum(n_held, 1))
    t_complete = sess0 + (crs["n_sess"][c] - 1) * _WEEK + 150 * 60
    last_att = np.full(n_pairs, -1, dtype=np.int64)
    np.maximum.at(last_att, sp[came], t_att[came])
    rates = np.where(
        complete, rng.random(n_pairs) < 0.65, (n_came > 0) & (rng.random(n_pairs) < 0.08)
    )
    # One-click feedback the same evening: never after the course's last day nor as_of.
    rated_after = np.where(complete, t_complete, last_att) + 600
    day_end = (rated_after // _DAY + 1) * _DAY - 60
    t_rate = rated_after + (rng.random(n_pairs) * (day_end - rated_after)).astype(np.int64)
    rates &= (t_rate < end_s) & (t_rate > rated_after - 600)
    value = np.where(complete, 4.2, 3.0) + 0.6 * z + rng.normal(0, 0.7, n_pairs)
    value = np.clip(np.round(value), 1, 5)

    # Extra views between the first view and the enrolment (or the next ten days).
    view_end = np.where(enrolled, t_enrol, np.minimum(t_view + 10 * _DAY, (last + 1) * _DAY - 1))
    vp = np.repeat(np.arange(n_pairs), n_extra)
    t_extra = t_view[vp] + (rng.random(len(vp)) * (view_end[vp] - t_view[vp])).astype(np.int64)
    canc = enrolled & cancelled

    parts = [
        (np.arange(n_pairs), t_view, "view", None),
        (vp, t_extra, "view", None),
        (np.flatnonzero(enrolled), t_enrol[enrolled], "enroll", None),
        (np.flatnonzero(canc), cancel_t[canc], "cancel", None),
        (sp[came], t_att[came], "attend", None),
        (sp[~came], t_att[~came], "no_show", None),
        (np.flatnonzero(complete), t_complete[complete], "complete", None),
        (np.flatnonzero(rates), t_rate[rates], "rate", value[rates]),
    ]
    pair = np.concatenate([p for p, *_ in parts])
    t = np.concatenate([x for _, x, *_ in parts])
    etype = np.concatenate([np.full(len(p), _EV[e], np.int8) for p, _, e, _ in parts])
    stage = np.concatenate([np.full(len(p), _STAGE[e], np.int8) for p, _, e, _ in parts])
    val = np.concatenate([np.full(len(p), np.nan) if v is None else v for p, _, _, v in parts])
    order = np.lexsort((stage, pair, t))
    pair = pair[order]
    return {
        "r": r[pair],
        "c": c[pair],
        "event": etype[order],
        "value": val[order],
        "t": t[order],
        "capacity": capacity,
        "status": status,
    }


def _hash_uniform(a, b, seed: int, salt: int) -> np.ndarray:
    """A uniform in [0, 1) per (a, b): counter-based draws, so a carer can share a child's."""
    with np.errstate(over="ignore"):
        x = (
            np.asarray(a, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            + np.asarray(b, dtype=np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
            + np.uint64((seed * 1_000_003 + salt) % 2**64)
        )
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _date(day: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=int(day))


def _width(count: int, minimum: int) -> int:
    return max(minimum, len(str(count)))


def _ids(prefix: str, count: int, minimum: int) -> pa.Array:
    w = _width(count, minimum)
    return pa.array([f"{prefix}{i:0{w}d}" for i in range(1, count + 1)], pa.string())


def _write_all(out: Path, fmt: str, comm, res, crs, ev, progress) -> list[str]:
    n, k = len(res["band"]), len(crs["category"])
    comm_ids = pa.array(comm["id"], pa.string())
    res_ids, crs_ids = _ids("R", n, 6), _ids("K", k, 4)
    tables = {
        "communities": {
            "community_id": comm_ids,
            "name": pa.array(comm["name"], pa.string()),
            "street": pa.array(comm["street_name"], pa.string()),
            "kind": pa.array(comm["kind"], pa.string()),
        },
        "residents": {
            "resident_id": res_ids,
            "birth_year": pa.array(res["birth_year"], pa.int64()),
            "gender": pa.array(res["gender"], pa.string()),
            "community_id": comm_ids.take(pa.array(res["community"])),
            "household_id": pa.array(res["household"], pa.string()),
            "registered_at": pa.array(res["reg"].astype("datetime64[D]")),
        },
        "courses": {
            "course_id": crs_ids,
            "title": pa.array(crs["title"], pa.string()),
            "description": pa.array(crs["description"], pa.string()),
            "category": pa.array(np.array(CATEGORIES, dtype=object)[crs["category"]], pa.string()),
            "target_bands": pa.array(crs["targets"], pa.string()),
            "tags": pa.array(crs["tags"], pa.string()),
            "community_id": comm_ids.take(pa.array(crs["venue"])),
            "fee_tier": pa.array(
                np.array(["inclusive", "upgraded", "value_added"], dtype=object)[crs["fee"]],
                pa.string(),
            ),
            "capacity": pa.array(ev["capacity"], pa.int64()),
            "start_date": pa.array(crs["start"].astype("datetime64[D]")),
            "end_date": pa.array(crs["end"].astype("datetime64[D]")),
            "weekday": pa.array(crs["weekday"], pa.int64()),
            "start_time": pa.array([f"{m // 60:02d}:{m % 60:02d}" for m in crs["start_min"]]),
            "status": pa.array(
                np.array(["open", "full", "closed"], dtype=object)[ev["status"]], pa.string()
            ),
        },
    }
    files = []
    for name, cols in tables.items():
        table = pa.table({col: cols[col] for col in TABLES[name].column_names})
        files.append(_write_table(out, name, fmt, [table], table.schema))

    n_ev = len(ev["t"])
    w = _width(n_ev, 8)
    events = pa.array(list(EVENTS), pa.string())
    schema = pa.schema(
        [
            ("event_id", pa.string()),
            ("resident_id", pa.string()),
            ("course_id", pa.string()),
            ("event", pa.string()),
            ("value", pa.float64()),
            ("occurred_at", pa.timestamp("s")),
        ]
    )

    def batches():
        for a in tqdm(
            range(0, max(n_ev, 1), _WRITE_BATCH),
            desc="writing events",
            disable=not progress,
            unit="batch",
        ):
            b = min(n_ev, a + _WRITE_BATCH)
            seq = pa.array(np.arange(a + 1, b + 1)).cast(pa.string())
            yield pa.table(
                {
                    "event_id": pc.binary_join_element_wise("E", pc.utf8_lpad(seq, w, "0"), ""),
                    "resident_id": res_ids.take(pa.array(ev["r"][a:b])),
                    "course_id": crs_ids.take(pa.array(ev["c"][a:b])),
                    "event": events.take(pa.array(ev["event"][a:b])),
                    "value": pa.array(ev["value"][a:b], pa.float64(), from_pandas=True),
                    "occurred_at": pa.array(ev["t"][a:b].view("datetime64[s]")),
                },
                schema=schema,
            )

    files.append(_write_table(out, "participations", fmt, batches(), schema))
    return files


def _write_table(out: Path, name: str, fmt: str, tables, schema) -> str:
    path = out / f"{name}.{fmt}"
    if fmt == "csv":
        with pa_csv.CSVWriter(path, schema) as writer:
            for t in tables:
                writer.write_table(t)
    else:
        with pq.ParquetWriter(path, schema, compression="zstd") as writer:
            for t in tables:
                writer.write_table(t)
    return path.name


def _write_side_files(out, seed, clock, fmt, rows, events_per_resident, res, crs, taste):
    arrays = {
        "favourite_category": taste["favourite"],
        "resident_category_affinity": taste["affinity"],
        "resident_factors": taste["user_factors"],
        "resident_activity": taste["activity"],
        "course_factors": taste["course_factors"],
        "course_popularity": taste["popularity"],
    }
    _save_npz(out / "hidden_tastes.npz", arrays)
    hidden = {
        "description": "The taste model the demo participation was drawn from. Arrays are in "
        "hidden_tastes.npz, in the row order of residents / courses files.",
        "categories": list(CATEGORIES),
        "bands": list(BAND_NAMES),
        "band_category_logits": {
            b: dict(zip(CATEGORIES, cat.BAND_CATEGORY_LOGITS[b])) for b in BAND_NAMES
        },
        "band_default_category": dict(CATEGORY_FOR_BAND),
        "band_activity": dict(cat.BAND_ACTIVITY),
        "effects": dict(_EFFECTS),
        "arrays": dict(cat.HIDDEN_ARRAYS),
        "favourite_counts": {
            CATEGORIES[i]: int(x)
            for i, x in enumerate(np.bincount(taste["favourite"], minlength=4))
        },
    }
    meta = {
        "generator": "recommender.generate.generate_district",
        "seed": int(seed),
        "as_of": clock.as_of.isoformat(),
        "window_start": clock.window_start_date.isoformat(),
        "months": clock.months,
        "format": fmt,
        "sizes": {
            "residents": rows["residents"],
            "courses": rows["courses"],
            "events_per_resident": float(events_per_resident),
        },
        "rows": rows,
        "age_bands": AgeBands().band_ranges(),
    }
    for name, obj in (("hidden_tastes.json", hidden), ("meta.json", meta)):
        (out / name).write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", "utf-8")
    return ["hidden_tastes.npz", "hidden_tastes.json", "meta.json"]


def _save_npz(path: Path, arrays: dict) -> None:
    """Like ``np.savez_compressed`` but with fixed zip timestamps, so the bytes are reproducible."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())

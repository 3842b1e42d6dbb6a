"""The demo district's participation: which courses each resident looks at, the carers who come
with preschoolers, and each (resident, course) pair's funnel of events.

One of the three parts of :func:`recommender.demo.generator.generate_district` (whose
docstring tells how the district is drawn); it reads what :mod:`recommender.demo.entities` made.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from recommender.demo.entities import DAY, EFFECTS, OLD, SCH, VIEW_LEAD_DAYS, WEEK
from recommender.domain import EVENTS

EVENT_CODE = {name: i for i, name in enumerate(EVENTS)}
# Tie-break order of events with the same timestamp inside one funnel.
STAGE = {"view": 0, "enroll": 1, "cancel": 2, "attend": 3, "no_show": 3, "complete": 4, "rate": 5}
# Calibrated on the default funnel: events per (resident, course) pair, used to turn
# ``events_per_resident`` into the number of courses each resident looks at.
EVENTS_PER_PAIR = 4.0
ENROL_GRACE_DAYS = 14  # late enrolment is accepted in the first two weeks
CHUNK = 2048  # residents per sampling chunk (fixed: chunking must not change the draws)


def sample_pairs(seed_seq, res, crs, comm, taste, clock, events_per_resident, progress) -> dict:
    """Which courses each resident looks at, drawn in proportion to appeal, chunk by chunk.

    Drawing with replacement and keeping first occurrences is successive sampling without
    replacement (the same law as Gumbel top-k) but needs only one exp and one cumsum per
    (resident, course) cell. Courses are sorted by end date so that the courses a resident can
    still join (ending after registration) are a suffix of each row: no mask is needed.
    """
    n, k = len(res["band"]), len(crs["category"])
    ap = _appeal(res, crs, comm, taste, clock)
    mean_pairs = events_per_resident / EVENTS_PER_PAIR
    lam = np.maximum(mean_pairs - 1, 0.05) * taste["activity"] / taste["activity"].mean()
    n_chunks = -(-n // CHUNK)
    chunk_seeds = seed_seq.spawn(n_chunks)
    out_r, out_c = [], []
    for ci in tqdm(range(n_chunks), desc="sampling courses", disable=not progress, unit="chunk"):
        rng = np.random.default_rng(chunk_seeds[ci])
        r = np.arange(ci * CHUNK, min(n, (ci + 1) * CHUNK))
        row, col = _draw_chunk(rng, r, lam[r], res["reg"][r], ap)
        out_r.append(r[row].astype(np.int32))
        out_c.append(ap["perm"][col].astype(np.int32))
    rr, cc = np.concatenate(out_r), np.concatenate(out_c)
    inv = np.empty(k, dtype=np.int64)
    inv[ap["perm"]] = np.arange(k)
    left, right, bonus, group = ap["left"], ap["right"], ap["bonus"], ap["group"]
    score = np.einsum("ij,ij->i", left[rr], right.T[inv[cc]]) + bonus[group[rr], inv[cc]]
    return {"r": rr, "c": cc, "score": score.astype(np.float32)}


def _appeal(res, crs, comm, taste, clock) -> dict:
    """The pieces of every (resident, course) appeal, with courses sorted by end date (``perm``).

    A resident's appeal row is ``left[i] @ right`` plus the fixed row ``bonus[group[i]]`` of the
    resident's (band, community).
    """
    e = EFFECTS
    n_comm = len(comm["id"])
    perm = np.argsort(crs["end"], kind="stable")
    venue = crs["venue"][perm]
    same = np.arange(n_comm)[:, None] == venue[None, :]
    street = comm["street"][:, None] == comm["street"][venue][None, :]
    comm_bonus = np.where(same, e["same_community"], np.where(street, e["same_street"], 0.0))
    band_bonus = e["target_band_match"] * crs["target_mask"][perm].T.astype(np.float64)
    band_bonus[SCH] += e["school_holiday_for_school_age"] * crs["holiday"][perm]
    band_bonus[OLD] += e["value_added_fee_for_elderly"] * (crs["fee"][perm] == 2)
    static = (
        taste["popularity"][perm]
        + e["inclusive_fee"] * (crs["fee"][perm] == 0)
        + e["leading_community_venue"] * comm["leading"][venue]
    )
    # One row of fixed appeal per (band, community); courses first shown on the platform after
    # as_of get zero weight for everyone.
    k = len(perm)
    bonus = (band_bonus[:, None, :] + comm_bonus[None, :, :] + static).reshape(4 * n_comm, k)
    bonus[:, crs["start"][perm] - VIEW_LEAD_DAYS > clock.end - 1] = -np.inf
    # Category affinity and latent factors in one product: [affinity | factors] @ [onehot | V].
    onehot = np.eye(4, dtype=np.float32)[crs["category"][perm]]
    return {
        "perm": perm,
        "end": crs["end"][perm],
        "bonus": bonus.astype(np.float32),
        "right": np.hstack([onehot, taste["course_factors"][perm]]).T.copy(),
        "left": np.hstack([taste["affinity"], taste["user_factors"]]),
        "group": res["band"].astype(np.int64) * n_comm + res["community"],
    }


def _draw_chunk(rng, r, lam, reg, ap) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of residents ``r``: how many courses each looks at (Poisson around ``lam``) and
    which, as (row in the chunk, column in end-date order) pairs in draw order."""
    bonus, end = ap["bonus"], ap["end"]
    k = len(end)
    want = np.minimum(1 + rng.poisson(lam), 80)
    w = ap["left"][r] @ ap["right"]
    w += bonus[ap["group"][r]]
    np.minimum(w, 60.0, out=w)
    np.exp(w, out=w)
    np.cumsum(w, axis=1, out=w)
    first = np.searchsorted(end, reg, side="left")
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
    ok = (span[row] > 0) & (col >= first[row]) & np.isfinite(bonus[ap["group"][r][row], col])
    row, col = row[ok], col[ok]
    _, pos = np.unique(row * k + col, return_index=True)
    pos.sort()
    row, col = row[pos], col[pos]
    rank = np.arange(len(row)) - np.searchsorted(row, row, side="left")
    keep = rank < want[row]
    return row[keep], col[keep]


def add_carers(rng, pairs, res, crs, clock) -> dict:
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


def funnels(rng, pairs, res, crs, clock, seed) -> dict:
    """Turn each (resident, course) pair into time-ordered events.

    The steps below run in a fixed order and draw from ``rng`` in that order, so the same seed
    gives the same events: the first view and the decisions, carers following the child,
    cancellations, seats, weekly sessions, completion and rating, extra views.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the funnel draws.
    pairs : dict
        From :func:`add_carers`: ``r``, ``c``, ``score``, ``src`` (the pair whose draws a pair
        shares: its own, or the child's for a carer) and ``carer``.
    res, crs : dict
        Residents and courses from :mod:`recommender.demo.entities`.
    clock : recommender.demo.entities.Clock
        The window; no event happens on or after ``clock.end``.
    seed : int
        Seed of the counter-based draws a carer shares with the child (:func:`_hash_uniform`).

    Returns
    -------
    dict
        Events sorted by time (``r``, ``c``, ``event`` as an index into ``EVENTS``, ``value``,
        ``t`` in seconds since 1970) and per course ``capacity`` and ``status`` (0 open, 1 full,
        2 closed).
    """
    c = pairs["c"]
    f = _decide(rng, pairs, res, crs, clock)
    _carers_follow_child(rng, f, np.flatnonzero(pairs["carer"]), pairs["src"])
    _cancellations(rng, f, c, crs, clock)
    capacity, status = _fill_seats(rng, f, c, crs, clock)
    sessions = _sessions(f, pairs["src"], c, crs, clock, seed)
    outcome = _complete_and_rate(rng, f, sessions, c, crs, clock)
    extra = _extra_views(rng, f)
    events = _in_time_order(f, sessions, outcome, extra, pairs["r"], c)
    return {**events, "capacity": capacity, "status": status}


def _decide(rng, pairs, res, crs, clock) -> dict:
    """Each pair's first view and what follows it: enrol (likelier the better the match), cancel,
    how many extra views. Returns the per-pair state the later steps read and update."""
    r, c = pairs["r"], pairs["c"]
    n_pairs = len(r)
    score = pairs["score"].astype(np.float64)
    z = (score - score.mean()) / (score.std() + 1e-9) if n_pairs else score
    start, last = crs["start"][c], np.minimum(crs["end"][c], clock.end - 1)
    lo = np.maximum.reduce([start - VIEW_LEAD_DAYS, res["reg"][r], np.full(n_pairs, clock.start)])
    hi_enrol = np.minimum(start + ENROL_GRACE_DAYS, clock.end - 1)
    can_enrol = lo <= hi_enrol
    hi_view = np.where(can_enrol, hi_enrol, last)
    day = lo + (rng.random(n_pairs) ** 1.3 * (hi_view - lo + 1)).astype(np.int64)
    t_view = day * DAY + rng.integers(7 * 3600, 22 * 3600, n_pairs)
    enrolled = can_enrol & (rng.random(n_pairs) < _sigmoid(-1.0 + 1.2 * z))
    enrol_cap = hi_enrol * DAY + 22 * 3600  # the platform is quiet at night
    t_enrol = np.minimum(t_view + rng.exponential(DAY, n_pairs).astype(np.int64), enrol_cap)
    cancelled = rng.random(n_pairs) < 0.08
    n_extra = rng.geometric(0.55, n_pairs) - 1
    return {
        "z": z,
        "start": start,
        "last": last,
        "lo": lo,
        "can_enrol": can_enrol,
        "hi_view": hi_view,
        "t_view": t_view,
        "enrolled": enrolled,
        "enrol_cap": enrol_cap,
        "t_enrol": t_enrol,
        "cancelled": cancelled,
        "n_extra": n_extra,
    }


def _carers_follow_child(rng, f, cp, src) -> None:
    """A carer copies the child's decisions, a few hours apart, within the carer's own limits."""
    s = src[cp]
    t_view, t_enrol = f["t_view"], f["t_enrol"]
    t_view[cp] = np.maximum(t_view[s] - rng.integers(0, 2 * DAY, len(cp)), f["lo"][cp] * DAY)
    t_view[cp] = np.minimum(t_view[cp], (f["hi_view"][cp] + 1) * DAY - 1)
    f["enrolled"][cp] = f["enrolled"][s] & f["can_enrol"][cp]
    t_enrol[cp] = np.clip(
        t_enrol[s] + rng.integers(-3 * 3600, 3 * 3600, len(cp)), t_view[cp], f["enrol_cap"][cp]
    )
    f["cancelled"][cp] = f["cancelled"][s]


def _cancellations(rng, f, c, crs, clock) -> None:
    """Cancellations come before the first session, or within hours of a late enrolment."""
    # A carer's copied enrolment time may fall before the carer's own view.
    t_enrol = f["t_enrol"] = np.maximum(f["t_enrol"], f["t_view"])
    sess0 = f["start"] * DAY + crs["start_min"][c] * 60
    wait = np.maximum(sess0 - t_enrol, 6 * 3600)
    cancel_t = t_enrol + 60 + (rng.random(len(t_enrol)) * wait).astype(np.int64)
    cancel_t = np.minimum(cancel_t, np.minimum(clock.end * DAY, (f["last"] + 1) * DAY) - 60)
    f["cancelled"] &= cancel_t > t_enrol
    f["sess0"], f["cancel_t"] = sess0, cancel_t
    f["active"] = f["enrolled"] & ~f["cancelled"]


def _fill_seats(rng, f, c, crs, clock) -> tuple[np.ndarray, np.ndarray]:
    """When more residents enrol than a course seats, the late ones stay viewers.

    Returns each course's capacity and status (0 open, 1 full, 2 closed).
    """
    enrolled, active = f["enrolled"], f["active"]
    demand = np.bincount(c[active], minlength=len(crs["start"]))
    capacity = np.maximum(10, 5 * np.round(demand * rng.uniform(0.5, 1.5, len(demand)) / 5))
    capacity = capacity.astype(np.int64)
    idx = np.flatnonzero(active)
    idx = idx[np.lexsort((idx, f["t_enrol"][idx], c[idx]))]
    seat = np.arange(len(idx)) - np.searchsorted(c[idx], c[idx], side="left")
    over = idx[seat >= capacity[c[idx]]]
    enrolled[over] = active[over] = False
    taken = np.bincount(c[active], minlength=len(capacity))
    ended = crs["end"] < clock.end
    status = np.where(ended, 2, np.where(taken >= capacity, 1, 0))
    return capacity, status


def _sessions(f, src, c, crs, clock, seed) -> dict:
    """The sessions each enrolled resident was due at, from the first one after enrolment to the
    last one before as_of (or a drop-out), each attended or missed.

    Attendance and drop-outs are counter-based draws keyed by ``src``, so a carer attends the
    sessions the child attends.
    """
    n_pairs = len(src)
    end_s = clock.end * DAY  # no event at or after as_of
    sess0, t_enrol, active = f["sess0"], f["t_enrol"], f["active"]
    k0 = np.where(t_enrol < sess0, 0, (t_enrol - sess0) // WEEK + 1)
    k1 = np.minimum(crs["n_sess"][c], np.maximum(0, (end_s - 1 - sess0) // WEEK + 1))
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
    t_sess = sess0[sp] + sk * WEEK
    jitter = (_hash_uniform(sp, sk, seed, 15) * 20 * 60).astype(np.int64) - 14 * 60
    t_att = np.where(came, np.maximum(t_sess + jitter, t_enrol[sp] + 60), t_sess + 2 * 3600)
    last_att = np.full(n_pairs, -1, dtype=np.int64)
    np.maximum.at(last_att, sp[came], t_att[came])
    return {
        "pair": sp,
        "came": came,
        "t": t_att,
        "n_came": np.bincount(sp[came], minlength=n_pairs),
        "n_held": np.bincount(sp, minlength=n_pairs),
        "last_attended": last_att,
        # The course is over and the resident stayed to its end.
        "stayed": active & (k1 == crs["n_sess"][c]) & (drop_at >= k1) & (n_sess > 0),
    }


def _complete_and_rate(rng, f, sessions, c, crs, clock) -> dict:
    """Completion (the resident stayed and came to most sessions) and the ratings: one-click
    feedback the same evening, never after the course's last day nor as_of."""
    n_pairs = len(f["z"])
    n_came = sessions["n_came"]
    complete = sessions["stayed"] & (n_came >= 0.6 * np.maximum(sessions["n_held"], 1))
    t_complete = f["sess0"] + (crs["n_sess"][c] - 1) * WEEK + 150 * 60
    rates = np.where(
        complete, rng.random(n_pairs) < 0.65, (n_came > 0) & (rng.random(n_pairs) < 0.08)
    )
    rated_after = np.where(complete, t_complete, sessions["last_attended"]) + 600
    day_end = (rated_after // DAY + 1) * DAY - 60
    t_rate = rated_after + (rng.random(n_pairs) * (day_end - rated_after)).astype(np.int64)
    rates &= (t_rate < clock.end * DAY) & (t_rate > rated_after - 600)
    value = np.where(complete, 4.2, 3.0) + 0.6 * f["z"] + rng.normal(0, 0.7, n_pairs)
    return {
        "complete": complete,
        "t_complete": t_complete,
        "rates": rates,
        "t_rate": t_rate,
        "value": np.clip(np.round(value), 1, 5),
    }


def _extra_views(rng, f) -> tuple[np.ndarray, np.ndarray]:
    """Extra views between the first view and the enrolment (or the next ten days): their pairs
    and times."""
    t_view = f["t_view"]
    view_end = np.where(
        f["enrolled"], f["t_enrol"], np.minimum(t_view + 10 * DAY, (f["last"] + 1) * DAY - 1)
    )
    vp = np.repeat(np.arange(len(t_view)), f["n_extra"])
    t_extra = t_view[vp] + (rng.random(len(vp)) * (view_end[vp] - t_view[vp])).astype(np.int64)
    return vp, t_extra


def _in_time_order(f, sessions, outcome, extra, r, c) -> dict:
    """Every event of every pair in one table, sorted by time, then pair, then funnel stage."""
    enrolled, t_enrol = f["enrolled"], f["t_enrol"]
    canc = enrolled & f["cancelled"]
    sp, came, t_att = sessions["pair"], sessions["came"], sessions["t"]
    complete, rates = outcome["complete"], outcome["rates"]
    vp, t_extra = extra
    parts = [
        (np.arange(len(r)), f["t_view"], "view", None),
        (vp, t_extra, "view", None),
        (np.flatnonzero(enrolled), t_enrol[enrolled], "enroll", None),
        (np.flatnonzero(canc), f["cancel_t"][canc], "cancel", None),
        (sp[came], t_att[came], "attend", None),
        (sp[~came], t_att[~came], "no_show", None),
        (np.flatnonzero(complete), outcome["t_complete"][complete], "complete", None),
        (np.flatnonzero(rates), outcome["t_rate"][rates], "rate", outcome["value"][rates]),
    ]
    pair = np.concatenate([p for p, *_ in parts])
    t = np.concatenate([x for _, x, *_ in parts])
    etype = np.concatenate([np.full(len(p), EVENT_CODE[e], np.int8) for p, _, e, _ in parts])
    stage = np.concatenate([np.full(len(p), STAGE[e], np.int8) for p, _, e, _ in parts])
    val = np.concatenate([np.full(len(p), np.nan) if v is None else v for p, _, _, v in parts])
    order = np.lexsort((stage, pair, t))
    pair = pair[order]
    return {"r": r[pair], "c": c[pair], "event": etype[order], "value": val[order], "t": t[order]}


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

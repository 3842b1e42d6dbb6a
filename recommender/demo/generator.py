"""A realistic demo district: communities, residents, courses and a year of participation.

The district imitates a Zhoushan-like coastal district (``catalogue``): an ageing population
in multi-generation households, a catalogue of courses in the four categories, and participation
events drawn from a hidden taste model that tests and notebooks can check a recommender against.

How the participation is drawn:

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
byte-identical files. The entities live in :mod:`recommender.demo.entities`, the events in
:mod:`recommender.demo.activity`; this module runs them and writes the files.
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

from recommender.demo import activity, entities
from recommender.demo import catalogue as cat
from recommender.demo.entities import id_width
from recommender.domain import BAND_NAMES, CATEGORIES, CATEGORY_FOR_BAND, EVENTS, TABLES, AgeBands

__all__ = ["generate_district"]

_WRITE_BATCH = 1_000_000


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
    clock = entities.Clock(as_of, int(months))
    stages: dict[str, float] = {}

    t0 = time.perf_counter()
    comm = entities.communities()
    res = entities.residents(np.random.default_rng(seeds[0]), int(residents), clock, comm)
    crs = entities.courses(np.random.default_rng(seeds[1]), int(courses), clock, comm)
    taste = entities.tastes(np.random.default_rng(seeds[2]), res, crs)
    stages["entities"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pairs = activity.sample_pairs(
        seeds[3], res, crs, comm, taste, clock, events_per_resident, progress
    )
    pairs = activity.add_carers(np.random.default_rng(seeds[4]), pairs, res, crs, clock)
    stages["sampling"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ev = activity.funnels(np.random.default_rng(seeds[5]), pairs, res, crs, clock, int(seed))
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


def _ids(prefix: str, count: int, minimum: int) -> pa.Array:
    w = id_width(count, minimum)
    return pa.array([f"{prefix}{i:0{w}d}" for i in range(1, count + 1)], pa.string())


def _write_all(out: Path, fmt: str, comm, res, crs, ev, progress) -> list[str]:
    """Write the four district tables; returns their file names."""
    res_ids, crs_ids = _ids("R", len(res["band"]), 6), _ids("K", len(crs["category"]), 4)
    files = []
    for name, cols in _entity_columns(comm, res, crs, ev, res_ids, crs_ids).items():
        table = pa.table({col: cols[col] for col in TABLES[name].column_names})
        files.append(_write_table(out, name, fmt, [table], table.schema))
    batches = _event_batches(ev, res_ids, crs_ids, progress)
    files.append(_write_table(out, "participations", fmt, batches, _EVENT_SCHEMA))
    return files


def _entity_columns(comm, res, crs, ev, res_ids, crs_ids) -> dict[str, dict[str, pa.Array]]:
    """The communities, residents and courses tables as columns; a course's capacity and status
    come from the funnels (``ev``)."""
    comm_ids = pa.array(comm["id"], pa.string())
    return {
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


_EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("resident_id", pa.string()),
        ("course_id", pa.string()),
        ("event", pa.string()),
        ("value", pa.float64()),
        ("occurred_at", pa.timestamp("s")),
    ]
)


def _event_batches(ev, res_ids: pa.Array, crs_ids: pa.Array, progress):
    """The participations table in batches of ``_WRITE_BATCH`` rows, event ids in time order."""
    n_ev = len(ev["t"])
    w = id_width(n_ev, 8)
    event_names = pa.array(list(EVENTS), pa.string())
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
                "event": event_names.take(pa.array(ev["event"][a:b])),
                "value": pa.array(ev["value"][a:b], pa.float64(), from_pandas=True),
                "occurred_at": pa.array(ev["t"][a:b].view("datetime64[s]")),
            },
            schema=_EVENT_SCHEMA,
        )


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
        "effects": dict(entities.EFFECTS),
        "arrays": dict(cat.HIDDEN_ARRAYS),
        "favourite_counts": {
            CATEGORIES[i]: int(x)
            for i, x in enumerate(np.bincount(taste["favourite"], minlength=4))
        },
    }
    meta = {
        "generator": "recommender.demo.generator.generate_district",
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

"""The OULAD adapter: the Open University Learning Analytics Dataset in the generic format.

:func:`convert_oulad` writes a folder that :func:`recommender.data.datasets.load_benchmark`
reads; the reading helpers and :class:`~recommender.data.reading.DatasetError` are the loaders'
own, so a bad OULAD file is reported exactly like a bad benchmark file.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.data.reading import DatasetError, Source, locate, numbers, read_csv
from recommender.data.reading import require_columns as _require

__all__ = ["OULAD_AGE_BANDS", "convert_oulad"]


# OULAD's three age bands onto ours. Every OULAD student is an adult distance learner, so both
# 0-35 and 35-55 are working age; "55<=" is the nearest OULAD has to elderly (our edge is 60,
# so this band also holds 55-59 year-olds: the closest the source allows).
OULAD_AGE_BANDS = {"0-35": "working_age", "35-55": "working_age", "55<=": "elderly"}
# A presentation code is a year plus B (starts in February) or J (starts in October).
_OULAD_START_MONTH = {"B": 2, "J": 10}
_OULAD_ATTRIBUTION = (
    "ATTRIBUTION: Kuzilek J., Hlosta M., Zdrahal Z. (2017). Open University Learning Analytics "
    "dataset. Scientific Data 4:170171. doi:10.1038/sdata.2017.171. Licensed under CC BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/). Changed: converted to the generic benchmark "
    "format by recommender.data.oulad.convert_oulad, as described below."
)
_EVENT_ORDER = {"enroll": 0, "complete": 1, "cancel": 2}


def _presentation_start(code: str, file: Path) -> pd.Timestamp:
    year, letter = code[:4], code[4:]
    if not (year.isdigit() and letter in _OULAD_START_MONTH):
        raise DatasetError(
            file,
            f"unknown presentation code {code!r} (want e.g. 2013B, 2014J)",
            "code_presentation",
        )
    return pd.Timestamp(int(year), _OULAD_START_MONTH[letter], 1)


def _verify_checksums(src: Path, names: list[str]) -> None:
    sums = src / "SHA256SUMS"
    if not sums.exists():
        return
    expected = {}
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            expected[parts[1].lstrip("*")] = parts[0].lower()
    for fname in names:
        if fname in expected and (src / fname).exists():
            digest = hashlib.sha256((src / fname).read_bytes()).hexdigest()
            if digest != expected[fname]:
                raise DatasetError(src / fname, "SHA-256 differs from SHA256SUMS (changed file?)")


def convert_oulad(src, out) -> dict:
    """Convert the Open University Learning Analytics Dataset into the generic benchmark format.

    **Granularity: item = module presentation** (``AAA-2013J``), ``category`` = module code,
    ``tags`` = module | semester letter (``B``/``J``) | its assessment types | its VLE activity
    types. OULAD has only 7 modules, so module-level items would leave nothing to rank; a
    presentation is what a student actually enrols in, and presentations are ordered in time.
    A later presentation of a module is therefore a *new item* whose content (category and tags)
    links it to the earlier ones: the cold-item case the engine must handle.

    **Time**: a presentation starts on 1 February (``B``) or 1 October (``J``) of its year; OULAD
    days are relative to that start. Events per registration (one row of
    ``studentRegistration.csv`` joined to ``studentInfo.csv``):

    * ``enroll`` at start + ``date_registration`` days. The 45 or so registrations without a date
      are placed at the start (or at the unregistration day, if earlier) and counted in
      ``registration_date_imputed``;
    * ``complete`` at start + ``module_presentation_length`` days for ``Pass`` and
      ``Distinction``;
    * ``cancel`` at start + ``date_unregistration`` days wherever that date exists (withdrawals,
      plus a handful of ``Fail`` rows that also carry one). Withdrawals without a date get no
      ``cancel`` (their time is unknown) and are counted in ``withdrawn_without_date``.

    **Users** (``user_id`` = ``id_student``): ``age_band`` via :data:`OULAD_AGE_BANDS`
    (0-35 and 35-55 → working_age, 55<= → elderly) with the source band kept as
    ``age_band_source``; ``gender``, ``region``, ``highest_education``, ``imd_band`` (OULAD's
    ``10-20`` is written ``10-20%`` like its other bands). A student's attributes come from their
    latest presentation; a few students change age band between presentations
    (``users_age_band_changed``).

    Parameters
    ----------
    src : path-like
        The OULAD folder (``courses.csv``, ``studentInfo.csv``, ``studentRegistration.csv``;
        ``assessments.csv`` and ``vle.csv`` used when present). Files listed in ``SHA256SUMS``
        are checked against it.
    out : path-like
        Output folder (created): ``interactions.csv``, ``users.csv``, ``items.csv``, a generated
        ``README.md`` (with an ``ATTRIBUTION:`` line) and the source README as ``OULAD_README.md``.

    Returns
    -------
    dict
        Rows written (``interactions``, ``users``, ``items``), ``events`` by type and the
        counters named above.
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DatasetError(src, "OULAD folder not found")
    needed = ["courses.csv", "studentInfo.csv", "studentRegistration.csv"]
    _verify_checksums(src, needed + ["assessments.csv", "vle.csv"])
    keys = ("code_module", "code_presentation", "id_student")
    courses = read_csv(locate(src, "courses"), keys)
    info = read_csv(locate(src, "studentInfo"), keys + ("age_band", "imd_band"))
    reg = read_csv(locate(src, "studentRegistration"), keys)
    for frame, fname, cols in (
        (courses, "courses.csv", keys[:2] + ("module_presentation_length",)),
        (info, "studentInfo.csv", keys + ("age_band", "final_result")),
        (reg, "studentRegistration.csv", keys + ("date_registration", "date_unregistration")),
    ):
        _require(frame, cols, Source(str(src / fname)))

    items = _oulad_items(src, courses)
    users, changed = _oulad_users(src, info)
    interactions, counts = _oulad_interactions(src, reg, info, items)

    out.mkdir(parents=True, exist_ok=True)
    interactions.to_csv(out / "interactions.csv", index=False, encoding="utf-8")
    users.to_csv(out / "users.csv", index=False, encoding="utf-8")
    items.drop(columns=["start_ts"]).to_csv(out / "items.csv", index=False, encoding="utf-8")
    if (src / "README.md").exists():
        shutil.copyfile(src / "README.md", out / "OULAD_README.md")
    result = {
        "interactions": len(interactions),
        "users": len(users),
        "items": len(items),
        "events": {k: int(v) for k, v in interactions["event"].value_counts().items()},
        **counts,
        "users_age_band_changed": changed,
    }
    (out / "README.md").write_text(_oulad_readme(result), encoding="utf-8")
    return result


def _oulad_items(src: Path, courses: pd.DataFrame) -> pd.DataFrame:
    path = src / "courses.csv"
    length = numbers(courses, "module_presentation_length", Source(str(path)), "length")
    Source(str(path)).check("module_presentation_length", "missing length", length.isna())
    module, pres = courses["code_module"].astype(str), courses["code_presentation"].astype(str)
    items = pd.DataFrame({"item_id": module + "-" + pres, "module": module, "pres": pres})
    items["start_ts"] = [_presentation_start(p, path) for p in pres]
    items["length_days"] = length.astype("int64")
    Source(str(path)).check(
        "code_presentation", "duplicate module presentation", items["item_id"].duplicated()
    )

    def per_item(table: str, column: str) -> dict[str, pd.Series]:
        found = locate(src, table, required=False)
        if found is None:
            return {}
        frame = read_csv(found, ("code_module", "code_presentation", column))
        frame["item_id"] = frame["code_module"] + "-" + frame["code_presentation"]
        return {k: g[column].value_counts() for k, g in frame.groupby("item_id")}

    assessments = per_item("assessments", "assessment_type")
    activities = per_item("vle", "activity_type")
    titles, descriptions, tags = [], [], []
    for row in items.itertuples():
        start = row.start_ts
        a = assessments.get(row.item_id, pd.Series(dtype=int)).sort_index()
        v = activities.get(row.item_id, pd.Series(dtype=int)).sort_index()
        titles.append(f"Module {row.module}, {start:%B %Y} presentation")
        text = (
            f"Open University module {row.module}, presentation {row.pres}: starts "
            f"{start:%d %B %Y}, runs {row.length_days} days."
        )
        if len(a):
            text += " Assessments: " + ", ".join(f"{n} {t}" for t, n in a.items()) + "."
        if len(v):
            text += " Learning materials: " + ", ".join(f"{n} {t}" for t, n in v.items()) + "."
        descriptions.append(text)
        tags.append("|".join([row.module, row.pres[4:], *a.index, *v.index]))
    items["title"], items["description"], items["tags"] = titles, descriptions, tags
    items["category"] = items["module"]
    items["start_date"] = items["start_ts"].dt.strftime("%Y-%m-%d")
    end = items["start_ts"] + pd.to_timedelta(items["length_days"], unit="D")
    items["end_date"] = end.dt.strftime("%Y-%m-%d")
    items = items.sort_values(["start_ts", "item_id"], ignore_index=True)
    return items[
        [
            "item_id",
            "title",
            "description",
            "category",
            "tags",
            "start_date",
            "end_date",
            "length_days",
            "start_ts",
        ]
    ]


def _oulad_users(src: Path, info: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    source = Source(str(src / "studentInfo.csv"))
    unknown = ~info["age_band"].isin(list(OULAD_AGE_BANDS))
    if unknown.any():
        raise source.fail(
            "age_band", f"unknown OULAD age band {info['age_band'][unknown].iloc[0]!r}", unknown
        )
    info = info.copy()
    info["start_ts"] = [
        _presentation_start(p, src / "studentInfo.csv") for p in info["code_presentation"]
    ]
    changed = int((info.groupby("id_student")["age_band"].nunique() > 1).sum())
    latest = (
        info.sort_values(["start_ts", "code_module"], kind="stable")
        .drop_duplicates("id_student", keep="last")
        .sort_values("id_student", key=lambda s: pd.to_numeric(s, errors="coerce"))
    )
    users = pd.DataFrame(
        {
            "user_id": latest["id_student"].to_numpy(),
            "age_band": latest["age_band"].map(OULAD_AGE_BANDS).to_numpy(),
            "age_band_source": latest["age_band"].to_numpy(),
        }
    )
    for col in ("gender", "region", "highest_education", "imd_band"):
        if col in latest:
            users[col] = latest[col].to_numpy()
    if "imd_band" in users:
        users["imd_band"] = users["imd_band"].replace({"10-20": "10-20%"})
    return users, changed


def _oulad_interactions(src, reg, info, items) -> tuple[pd.DataFrame, dict]:
    keys = ["code_module", "code_presentation", "id_student"]
    rows = reg.merge(info[keys + ["final_result"]], on=keys, how="outer", indicator=True)
    rows["item_id"] = rows["code_module"] + "-" + rows["code_presentation"]
    starts = items.set_index("item_id")["start_ts"]
    lengths = items.set_index("item_id")["length_days"]
    missing = ~rows["item_id"].isin(starts.index)
    if missing.any():
        raise DatasetError(
            src / "studentRegistration.csv",
            f"module presentation {rows['item_id'][missing].iloc[0]} is not in courses.csv "
            f"({int(missing.sum())} registrations)",
            "code_presentation",
        )
    start = rows["item_id"].map(starts)
    unreg = pd.to_numeric(rows["date_unregistration"], errors="coerce")
    reg_day = pd.to_numeric(rows["date_registration"], errors="coerce")
    imputed = reg_day.isna()
    reg_day = reg_day.where(~imputed, np.fmin(0.0, unreg.fillna(0.0)))
    done = rows["final_result"].isin(["Pass", "Distinction"])
    has_unreg = unreg.notna()

    def events(mask, days, name) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "user_id": rows.loc[mask, "id_student"],
                "item_id": rows.loc[mask, "item_id"],
                "timestamp": start[mask] + pd.to_timedelta(days[mask], unit="D"),
                "event": name,
            }
        )

    all_rows = pd.Series(True, index=rows.index)
    frame = pd.concat(
        [
            events(all_rows, reg_day, "enroll"),
            events(done, rows["item_id"].map(lengths).astype("float64"), "complete"),
            events(has_unreg, unreg, "cancel"),
        ],
        ignore_index=True,
    )
    frame["_order"] = frame["event"].map(_EVENT_ORDER)
    frame["_uid"] = pd.to_numeric(frame["user_id"], errors="coerce")
    frame = frame.sort_values(
        ["timestamp", "_order", "item_id", "_uid", "user_id"], ignore_index=True
    ).drop(columns=["_order", "_uid"])
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%d")
    counts = {
        "registrations": len(rows),
        "registration_date_imputed": int(imputed.sum()),
        "registrations_without_student_info": int((rows["_merge"] == "left_only").sum()),
        "student_info_without_registration": int((rows["_merge"] == "right_only").sum()),
        "withdrawn_without_date": int(((rows["final_result"] == "Withdrawn") & ~has_unreg).sum()),
    }
    return frame, counts


def _oulad_readme(result: dict) -> str:
    mapping = "\n".join(f"| `{k}` | `{v}` |" for k, v in OULAD_AGE_BANDS.items())
    counts = "\n".join(f"- {k}: {v}" for k, v in result.items())
    return f"""# OULAD in the generic benchmark format

{_OULAD_ATTRIBUTION}

The source README is kept verbatim in `OULAD_README.md`.

## Conversion (`recommender.data.oulad.convert_oulad`)
- **item** = module presentation (`AAA-2013J`); `category` = module code; `tags` = module |
  semester (`B` February start, `J` October start) | assessment types | VLE activity types.
  A later presentation of a module is a new item linked to earlier ones by its content.
- **time** = presentation start (1 Feb for B, 1 Oct for J) + OULAD's day offsets.
- **events**: `enroll` at registration; `complete` at the presentation end for Pass and
  Distinction; `cancel` at the unregistration day (withdrawals without a date get none).
- **users**: attributes from each student's latest presentation.

| OULAD age_band (`age_band_source`) | our `age_band` |
| --- | --- |
{mapping}

All OULAD students are adults, so 0-35 and 35-55 are both working age; `55<=` is the closest
OULAD has to our elderly band (60+), so it also holds 55-59 year-olds.

## Counts
{counts}
"""

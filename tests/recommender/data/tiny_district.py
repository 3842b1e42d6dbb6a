"""A one-community, one-resident, one-course district as CSV text, for tests of single rows."""

from __future__ import annotations

from pathlib import Path

BASE = {
    "communities": "community_id,name,street,kind\nC1,文康社区,东港街道,leading\n",
    "residents": "resident_id,birth_year,gender,community_id,household_id,registered_at\n"
                 "R1,1950,F,C1,,2024-01-02\n",
    "courses": "course_id,title,description,category,target_bands,tags,community_id,fee_tier,"
               "capacity,start_date,end_date,weekday,start_time,status\n"
               "K1,剪纸入门,,intangible_heritage,elderly,,C1,inclusive,20,2025-01-01,2025-06-30,"
               ",,open\n",
}
PARTICIPATIONS = "event_id,resident_id,course_id,event,value,occurred_at\n"


def write_tiny_district(folder: Path, events: str = "", extra: dict[str, str] | None = None
                        ) -> Path:
    """Write the district into ``folder``: ``events`` are participation lines, ``extra`` adds
    lines (text) to the other tables by name."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in BASE.items():
        (folder / f"{name}.csv").write_text(text + (extra or {}).get(name, ""), encoding="utf-8")
    (folder / "participations.csv").write_text(PARTICIPATIONS + events, encoding="utf-8")
    return folder

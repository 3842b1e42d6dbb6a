"""The district data model: the four tables, their columns and vocabularies.

This module is the one description of the district tables. The store builds its SQL schema from
it, the validator (:mod:`recommender.data.validation`: the importer, the dataset loader and the
events endpoint) checks rows against it and the generator writes files that follow it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from features.bands import BAND_NAMES, AgeBands

__all__ = [
    "AgeBands",
    "BAND_NAMES",
    "CATEGORIES",
    "COMMUNITY_KINDS",
    "COURSE_STATUSES",
    "EVENTS",
    "FEE_TIERS",
    "Column",
    "TableSpec",
    "TABLES",
    "TABLE_ORDER",
    "DISTRICT_TIMEZONE",
    "MAX_ID_LENGTH",
    "LANGUAGES",
    "BAND_WORDS",
    "CATEGORY_WORDS",
    "EARLIEST_DATE",
]

# The district's clock: every timestamp is judged and stored (naive) in this zone. Settings may
# override it per deployment; this is the default every module falls back to.
DISTRICT_TIMEZONE = "Asia/Shanghai"
# Ids are stored as VARCHAR of this length; a longer id can never match a stored row.
MAX_ID_LENGTH = 64
# No date or time of the district tables lies before this day: the platform and its courses
# are recent, so an earlier one (1900-01-01, an epoch 0, a default of some exporter) is a
# placeholder or an error, never a fact.
EARLIEST_DATE = "2000-01-01"

CATEGORIES = ("handicraft", "intangible_heritage", "skills", "interest")
COMMUNITY_KINDS = ("leading", "inclusive", "other")
FEE_TIERS = ("inclusive", "upgraded", "value_added")
COURSE_STATUSES = ("open", "full", "closed")
EVENTS = ("view", "enroll", "attend", "complete", "rate", "cancel", "no_show")

# The band each category is first meant for; used for defaults and reports.
CATEGORY_FOR_BAND = {
    "preschool": "handicraft",
    "school_age": "intangible_heritage",
    "working_age": "skills",
    "elderly": "interest",
}


@dataclass(frozen=True)
class Column:
    """One column of a district table.

    ``kind`` is one of ``id`` (short text key), ``text``, ``int``, ``float``, ``date``,
    ``datetime``, ``enum`` (one of ``choices``) or ``bands`` (``|``-separated band names).
    ``references`` names the table whose key this column must match.
    """

    name: str
    kind: str
    required: bool = True
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    references: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """A district table: its file stem, key column and columns."""

    name: str
    key: str
    columns: tuple[Column, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")


TABLES: dict[str, TableSpec] = {
    "communities": TableSpec(
        "communities",
        "community_id",
        (
            Column("community_id", "id"),
            Column("name", "text"),
            Column("street", "text"),
            Column("kind", "enum", choices=COMMUNITY_KINDS),
        ),
    ),
    "residents": TableSpec(
        "residents",
        "resident_id",
        (
            Column("resident_id", "id"),
            Column("birth_year", "int", min=1900, max=2100),
            Column("gender", "enum", required=False, choices=("F", "M", "X")),
            Column("community_id", "id", references="communities"),
            Column("household_id", "id", required=False),
            Column("registered_at", "date"),
        ),
    ),
    "courses": TableSpec(
        "courses",
        "course_id",
        (
            Column("course_id", "id"),
            Column("title", "text"),
            Column("description", "text", required=False),
            Column("category", "enum", choices=CATEGORIES),
            Column("target_bands", "bands"),
            Column("tags", "text", required=False),
            Column("community_id", "id", references="communities"),
            Column("fee_tier", "enum", choices=FEE_TIERS),
            Column("capacity", "int", min=0),
            Column("start_date", "date"),
            Column("end_date", "date"),
            Column("weekday", "int", required=False, min=0, max=6),
            Column("start_time", "text", required=False),
            Column("status", "enum", choices=COURSE_STATUSES),
        ),
    ),
    "participations": TableSpec(
        "participations",
        "event_id",
        (
            Column("event_id", "id"),
            Column("resident_id", "id", references="residents"),
            Column("course_id", "id", references="courses"),
            Column("event", "enum", choices=EVENTS),
            Column("value", "float", required=False, min=1, max=5),
            Column("occurred_at", "datetime"),
        ),
    ),
}

# Load order: every table comes after the tables its foreign keys point at.
TABLE_ORDER: tuple[str, ...] = ("communities", "residents", "courses", "participations")

# The languages residents and coordinators are written to: Simplified Chinese first (the
# default), English on request.
LANGUAGES: tuple[str, ...] = ("zh", "en")
# Bands and categories as residents say them, per language: the one table every text the
# service writes takes its names from (reasons, the coordinators' page). The codes above stay
# the values of the data and of the API.
BAND_WORDS: dict[str, dict[str, str]] = {
    "preschool": {"zh": "学龄前儿童", "en": "preschool children"},
    "school_age": {"zh": "中小学生", "en": "school-age children"},
    "working_age": {"zh": "中青年居民", "en": "working-age residents"},
    "elderly": {"zh": "老年人", "en": "elderly residents"},
}
CATEGORY_WORDS: dict[str, dict[str, str]] = {
    "handicraft": {"zh": "手工", "en": "handicraft"},
    "intangible_heritage": {"zh": "非遗", "en": "intangible heritage"},
    "skills": {"zh": "技能", "en": "skills"},
    "interest": {"zh": "兴趣", "en": "hobby"},
}

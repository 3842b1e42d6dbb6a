"""Request and response models: what the OpenAPI schema at ``/docs`` promises."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from recommender.serving import BAND_NAMES, CATEGORIES

Band = Literal[BAND_NAMES]  # type: ignore[valid-type]
Category = Literal[CATEGORIES]  # type: ignore[valid-type]
# Ids as the district exports them (pseudonymous, short): letters, digits and _ . : -
ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
Id = Annotated[str, Field(pattern=ID_PATTERN, examples=["R000001"])]


class FieldError(BaseModel):
    field: str = Field(description="Where the problem is, e.g. `query.k`, `body.events.3.value`.")
    reason: str


class ErrorResponse(BaseModel):
    """Every 4xx (and 503) answer."""

    error: str = Field(description="A short code: invalid_request, unauthorized, forbidden, ...")
    detail: list[FieldError]


class Venue(BaseModel):
    community_id: str | None
    community_name: str | None
    street: str | None


class Schedule(BaseModel):
    start_date: str | None
    end_date: str | None
    weekday: int | None = Field(description="Monday = 0")
    start_time: str | None


class CourseRecord(BaseModel):
    """What every list shows about a course: its record, its rank and the seats left."""

    rank: int
    course_id: str
    title: str
    category: str | None
    target_bands: list[str]
    fee_tier: str | None
    venue: Venue
    schedule: Schedule
    seats_left: int


class CourseOut(CourseRecord):
    score: float
    reasons: list[str]


class RecommendedCourse(CourseOut):
    cold_start: bool = Field(description="Ranked without this resident's own history.")




class Profile(BaseModel):
    """A resident the platform has not registered yet."""

    model_config = ConfigDict(extra="forbid")

    birth_year: int | None = Field(None, ge=1900, le=2100)
    age_band: Band | None = None
    community_id: Id | None = None
    interests: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20,
        description="Category names and/or course tags the resident declared.")
    k: int = Field(10, ge=1, le=100)
    category: Category | None = None
    explain: bool = True


class ProfileRecommendations(BaseModel):
    cold_start: bool
    age_band: str | None
    model_version: str
    k: int
    category: str | None
    items: list[RecommendedCourse]


class ResidentRecommendations(ProfileRecommendations):
    resident_id: str
    known: bool = Field(description="The model saw this resident in training.")


class MemberOut(BaseModel):
    resident_id: str
    age_band: str | None


class MemberRole(MemberOut):
    role: Literal["participant", "carer"]


class HouseholdCourse(CourseOut):
    for_members: list[MemberRole] = Field(description="Who the course is for, and as what.")


class HouseholdRecommendations(BaseModel):
    household_id: str
    model_version: str
    members: list[MemberOut]
    items: list[HouseholdCourse]


class SimilarCourses(BaseModel):
    course_id: str
    model_version: str
    items: list[RecommendedCourse]


class EventIn(BaseModel):
    """One participation event. Each event is judged on its own by the importer's validator, so
    a field here takes any JSON value: one of the wrong type (``true`` or ``"5"`` for `value`,
    a number for `occurred_at`), a `value` on anything but a `rate`, a time before 2000-01-01
    or a key that is no field rejects that event only, with its index, field and reason in the
    answer; the other events of the batch are still stored."""

    model_config = ConfigDict(extra="allow")

    event_id: Any = Field(None, examples=["E-app-000001"],
                          description="A string id (at most 64 characters); re-sent ids are "
                                      "duplicates.")
    resident_id: Any = Field(None, examples=["R000001"],
                             description="A stored resident (`PUT /v1/residents/{id}` "
                                         "registers a new one).")
    course_id: Any = Field(None, examples=["K0001"], description="A stored course.")
    event: Any = Field(None, examples=["enroll"],
                       description="view, enroll, attend, complete, rate, cancel, no_show")
    value: Any = Field(None, examples=[None],
                       description="A JSON number 1..5, required for `rate`, absent otherwise.")
    occurred_at: Any = Field(None, examples=["2026-11-28T10:00:00+08:00"],
                             description="An ISO 8601 string; without an offset: district time. "
                                         "Not before 2000-01-01, not more than a day after the "
                                         "district's current time.")


class EventBatch(BaseModel):
    events: list[EventIn] = Field(min_length=1, max_length=1000)


class Rejection(BaseModel):
    index: int
    event_id: str | None
    field: str
    reason: str


class EventReport(BaseModel):
    received: int
    accepted: int
    duplicates: int
    rejected: int
    rejections: list[Rejection]


class ModelInfo(BaseModel):
    version: str
    trained_at: str | None
    loaded_at: str
    courses: int
    residents: int
    metrics: dict


class ReloadResult(BaseModel):
    previous_version: str | None
    version: str


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    model_version: str | None
    checks: dict[str, str]


# -- coordinators' decisions ------------------------------------------------------------------


class DecisionIn(BaseModel):
    """A coordinator's decision about a course for the cohort in the path."""

    model_config = ConfigDict(extra="forbid")

    course_id: Id
    action: Literal["approve", "reject", "pin"] = Field(
        description="reject: no longer recommended to the cohort; pin: first in its residents' "
                    "lists when the rules allow it (never past band, seats, dates or what they "
                    "took); approve: recorded only, no effect on ranking.")
    note: str | None = Field(None, max_length=2000, description="Why.")


class Decision(BaseModel):
    decision_id: int
    community_id: str = Field(description="A community id, or `all`.")
    band: str = Field(description="An age band, or `all`.")
    course_id: str
    action: str
    note: str | None
    decided_by: str = Field(description="Role and key fingerprint (never the key).")
    decided_at: str = Field(description="UTC, ISO 8601.")
    undone_at: str | None
    undone_by: str | None


class CohortDecisions(BaseModel):
    community_id: str
    band: str
    decisions: list[Decision]


# ----------------------------------------------------------------------------- coordinators


class Suppressed(BaseModel):
    """In place of a figure computed over fewer than 10 residents."""

    suppressed: Literal[True] = True


Count = int | Suppressed
Share = float | Suppressed


class CohortOut(BaseModel):
    community_id: str = Field(description="A community id, or `all` (the district).")
    community_name: str | None
    band: str = Field(description="An age band, or `all` (every band).")
    residents: Count
    active_residents: Count = Field(description="Residents with any participation the model "
                                                "was trained on.")
    share_active: Share


class Cohorts(BaseModel):
    model_version: str
    cohorts: list[CohortOut]


class CohortCourse(CourseRecord):
    capacity: int
    expected_demand: float = Field(description="Expected enrolments from this cohort within "
                                               "the horizon (calibrated probabilities summed).")
    expected_demand_district: float = Field(description="The same over every resident.")
    fill_forecast: float | None = Field(description="(capacity - seats_left + district "
                                                    "demand) / capacity")
    oversubscribed: bool = Field(description="District demand exceeds the seats left.")
    under_filled: bool = Field(description="Forecast fill below 0.3.")
    decision: dict | str | None = Field(None, description="A coordinator's decision, if any.")


class UnmetDemand(BaseModel):
    kind: Literal["category", "tag"]
    name: str
    residents_drawn: Count
    expected_demand_elsewhere: float


class CohortSuggestions(BaseModel):
    community_id: str
    band: str
    horizon_days: int
    model_version: str
    as_of: str
    residents: Count
    suppressed: bool = Field(description="The cohort has fewer than 10 residents: no list.")
    items: list[CohortCourse]
    unmet_demand: list[UnmetDemand]


class CohortAnalytics(BaseModel):
    model_config = ConfigDict(extra="allow")

    community_id: str
    band: str
    model_version: str
    as_of: str
    residents: Count
    monthly: list[dict]
    by_category: list[dict]
    rates: dict
    share_active: Share
    multigenerational_households: dict
    fill_rates: list[dict]


# -- residents the platform registers --------------------------------------------------------


class ResidentIn(BaseModel):
    """A resident's profile, checked by the importer's validator as a `residents` row."""

    model_config = ConfigDict(extra="forbid")

    birth_year: Any = Field(None, json_schema_extra={"type": "integer"}, examples=[1958],
                            description="Required: an integer 1900..2100, not after this year.")
    community_id: Any = Field(None, json_schema_extra={"type": "string"}, examples=["C01"],
                              description="Required: a stored community.")
    gender: Any = Field(None, json_schema_extra={"type": ["string", "null"]}, examples=["F"],
                        description="F, M or X; optional.")
    household_id: Any = Field(None, json_schema_extra={"type": ["string", "null"]},
                              examples=["H000123"], description="Optional.")


class ResidentOut(BaseModel):
    resident_id: str
    birth_year: int
    gender: str | None
    community_id: str
    household_id: str | None
    registered_at: str = Field(description="The district's date of the first registration.")

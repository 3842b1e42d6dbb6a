"""Request and response models: what the OpenAPI schema at ``/docs`` promises."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from recommender.serving import BAND_NAMES, CATEGORIES, REASON_CODES

Band = Literal[BAND_NAMES]  # type: ignore[valid-type]
Category = Literal[CATEGORIES]  # type: ignore[valid-type]
# Ids as the district exports them (pseudonymous, short): letters, digits and _ . : -
ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
# The largest number id the store keeps (decisions, experiments: INTEGER columns). A larger one
# in a path or query is refused (422): PostgreSQL would refuse the comparison, not find nothing.
MAX_NUMBER_ID = 2**31 - 1
# Examples are ids every generated district has (``recommender generate``, ``make demo``), so
# "Try it out" at /docs succeeds against the demo: a resident, a household, a course, a
# community, an age band and the first decision.
PATH_EXAMPLES = {"resident_id": "R000001", "household_id": "H00001", "course_id": "K0001",
                 "community_id": "C01", "band": "elderly", "decision_id": 1}


class FieldError(BaseModel):
    field: str = Field(description="Where the problem is, e.g. `query.k`, `body.events.3.value`.")
    reason: str


class ErrorResponse(BaseModel):
    """Every 4xx (and 503) answer."""

    error: str = Field(description="A short code: invalid_request, unauthorized, forbidden, ...")
    detail: list[FieldError]


# What each error status means, for every route that can answer it (error_responses).
_ERROR_MEANINGS = {
    400: "The body cannot be decoded (not UTF-8), or its Content-Length is not a byte count; "
         "JSON that does not parse is a 422.",
    401: "No `X-API-Key`, or a key that is not configured (checked before the body is read).",
    403: "The key's role may not call this route, or the community is outside the key's scope.",
    404: "An id in the path (or the body's course) is unknown.",
    409: "The served model cannot answer: an artifact refused on reload, or a model trained "
         "without calibrated probabilities.",
    413: "The body is over RECOMMENDER_MAX_BODY_BYTES (refused before it is read).",
    422: "A parameter or a body field is invalid; each one is named in `detail`.",
    503: "No model is loaded yet, or the database does not answer; nothing was stored.",
}


def error_responses(*statuses: int, meanings: dict[int, str] | None = None) -> dict[int, dict]:
    """The ``responses=`` of a route: the error statuses it can really answer, each with the
    error body and what it means (``meanings``: what a status means on this route, where that
    is not the common meaning)."""
    said = {**_ERROR_MEANINGS, **(meanings or {})}
    return {status: {"model": ErrorResponse, "description": said[status]} for status in statuses}


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


class Reason(BaseModel):
    """Why a course is listed: a stable code, its parameters, and a text in the answer's
    language (README, "Reasons", lists every code)."""

    code: Literal[REASON_CODES] = Field(  # type: ignore[valid-type]
        examples=["similar_to_taken"])
    params: dict[str, str | int | list[str] | None] = Field(
        description="Ids and codes (course_id, community_id, band, category, bands) and the "
                    "names shown (title, community_name), by code.",
        examples=[{"course_id": "K0007", "title": "剪纸入门班"}])
    text: str = Field(examples=["因为您上过《剪纸入门班》"])


class CourseOut(CourseRecord):
    score: float
    reasons: list[Reason]


class RecommendedCourse(CourseOut):
    cold_start: bool = Field(description="Ranked without this resident's own history.")




class Profile(BaseModel):
    """A resident the platform has not registered yet."""

    model_config = ConfigDict(extra="forbid")

    birth_year: int | None = Field(None, ge=1900, le=2100, examples=[1956])
    age_band: Band | None = None
    community_id: Annotated[str, Field(pattern=ID_PATTERN,
                                       examples=[PATH_EXAMPLES["community_id"]])] | None = None
    interests: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20, examples=[["handicraft", "剪纸"]],
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
    request_id: str | None = Field(None, description="Names this list in the impression log.")


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
    request_id: str | None = Field(None, description="Names this list in the impression log.")


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


class RegistryMove(BaseModel):
    """One move of the artifacts folder's ``current`` recorded by the model registry."""

    at: str
    by: str
    action: str = Field(description="train, promote or rollback")
    from_version: str | None
    to_version: str


class ReloadResult(BaseModel):
    previous_version: str | None = Field(description="The version served before the reload.")
    version: str = Field(description="The version served now.")
    changed: bool = Field(description="Whether the reload changed the version served.")
    moved: RegistryMove | None = Field(
        description="The registry's latest move of current, when it moved current to the "
        "version now served (who promoted, trained or rolled back to it, and from which "
        "version); null when current was set outside the registry.")


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

    course_id: Annotated[str, Field(pattern=ID_PATTERN, examples=[PATH_EXAMPLES["course_id"]])]
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


# -- online A/B tests between model versions --------------------------------------------------


class ExperimentIn(BaseModel):
    """Serve ``version_b`` to a hash-assigned ``share`` of residents, ``version_a`` to the rest."""

    model_config = ConfigDict(extra="forbid")

    # Versions are named by the UTC time they were trained at: the examples show the form
    # (`recommender models list` and `GET /v1/model` give the real names).
    version_a: Annotated[str, Field(pattern=ID_PATTERN, examples=["v20261101T020000"],
                                    description="The control's version (usually the served one).")]
    version_b: Annotated[str, Field(pattern=ID_PATTERN, examples=["v20261115T020000"],
                                    description="The challenger's version.")]
    share: float = Field(gt=0, lt=1, examples=[0.2],
                         description="Share of residents served version B.")
    note: str | None = Field(None, max_length=2000, examples=["retrained on November's events"],
                             description="Why.")


class Experiment(BaseModel):
    experiment_id: int
    version_a: str
    version_b: str
    share: float
    note: str | None
    started_by: str = Field(description="Role and key fingerprint (never the key).")
    started_at: str = Field(description="UTC, ISO 8601.")
    stopped_at: str | None
    stopped_by: str | None


class ExperimentStatus(BaseModel):
    running: Experiment | None
    live: bool = Field(description="This worker serves the running experiment's two models.")
    error: str | None = Field(description="Why a version could not be loaded, if one could not.")
    latest: Experiment | None = Field(description="The running experiment, else the newest.")


class ExperimentReport(BaseModel):
    """Per variant: impressions, conversions, rate with its Wilson interval; the difference with
    Newcombe's; the sample-ratio check; the same per age band."""

    model_config = ConfigDict(extra="allow")

    experiment: Experiment
    days: float
    interval: str
    variants: dict[str, dict]
    difference: dict
    sample_ratio: dict
    by_band: list[dict]
    profile_impressions: int
    impressions_with_open_window: int


# -- residents the platform registers --------------------------------------------------------


class ResidentIn(BaseModel):
    """A resident's profile: the `residents` row, checked by the importer's validator, and the
    declared band and interests, checked against the district's vocabularies."""

    model_config = ConfigDict(extra="forbid")

    birth_year: Any = Field(None, json_schema_extra={"type": ["integer", "null"]},
                            examples=[1958],
                            description="An integer 1900..2100, not after this year; this or "
                                        "age_band is required.")
    age_band: Any = Field(None, json_schema_extra={"type": ["string", "null"],
                                                   "enum": [*BAND_NAMES, None]},
                          examples=["elderly"],
                          description="The band, when the birth year is not known (a stand-in "
                                      "year inside the band is stored); with a birth year it "
                                      "must be that year's band.")
    community_id: Any = Field(None, json_schema_extra={"type": "string"}, examples=["C01"],
                              description="Required: a stored community.")
    gender: Any = Field(None, json_schema_extra={"type": ["string", "null"]}, examples=["F"],
                        description="F, M or X; optional.")
    household_id: Any = Field(None, json_schema_extra={"type": ["string", "null"]},
                              examples=["H000123"], description="Optional.")
    interests: Any = Field(None, json_schema_extra={
        "type": ["array", "null"], "items": {"type": "string", "enum": list(CATEGORIES)}},
        examples=[["handicraft"]],
        description="Categories the resident declared, each at most once; optional. They lift "
                    "courses of those categories in the resident's lists.")


class ResidentOut(BaseModel):
    resident_id: str
    birth_year: int = Field(description="For a resident registered by band alone, a stand-in "
                                        "year inside the band.")
    birth_year_estimated: bool = Field(description="The platform sent a band, not a birth year.")
    age_band: str = Field(description="The resident's band today.")
    interests: list[str]
    gender: str | None
    community_id: str
    household_id: str | None
    registered_at: str = Field(description="The district's date of the first registration.")

"""Service settings: one pydantic-settings object read from ``RECOMMENDER_*`` variables.

:class:`Settings` is the only place the code base reads the process environment: the command
line and the API both build one, and hand its values to the store, the model holder and the
service. :meth:`Settings.export` writes them back for the processes ``recommender serve``
starts (uvicorn workers build their own :class:`Settings` from the same variables).
:func:`load_settings` is how a command or a server start builds one: an invalid value becomes
a :class:`SettingsError` of one line that names the variable and never shows a key.
"""

from __future__ import annotations

import hashlib
import os
import re
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recommender.domain import DISTRICT_TIMEZONE

ROLES = ("platform", "coordinator", "admin")
# Only a coordinator key may be limited to communities (``coordinator@C01+C02:KEY``).
SCOPED_ROLES = ("coordinator",)
# A community id in a key's scope: the API's id characters, less ``:`` (it ends the role part)
# and ``+`` (it separates the communities).
_SCOPE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
# The variable prometheus_client itself reads (in every worker, when it is first imported).
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# The store when RECOMMENDER_DATABASE_URL is unset: an SQLite file under ./var (relative to the
# working directory, so every start says which file it uses: Settings.whereabouts).
DEFAULT_DATABASE_URL = "sqlite:///var/recommender.db"
# The URL schemes the store speaks: SQLite, and PostgreSQL through psycopg 3 (its COPY loads
# the tables; a bare postgresql:// URL is given that driver).
DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")
# Names of the variables that are not RECOMMENDER_ + the field's name.
_VARIABLES = {"prometheus_multiproc_dir": MULTIPROC_VARIABLE}


class Settings(BaseSettings):
    """Everything the service reads from the environment.

    Attributes
    ----------
    database_url : str or None
        ``RECOMMENDER_DATABASE_URL``; None means the store's default SQLite file
        (``var/recommender.db``). PostgreSQL: ``postgresql+psycopg://...``.
    artifacts_dir : Path
        ``RECOMMENDER_ARTIFACTS_DIR`` (default ``artifacts``); the API serves its ``current``.
    api_keys : SecretStr
        ``RECOMMENDER_API_KEYS``: ``role:key`` pairs separated by commas, e.g.
        ``platform:abc,coordinator:def,admin:ghi``; a secret, so it never shows in reprs or logs.
        A coordinator key may be limited to some communities, ``+``-separated after ``@``:
        ``coordinator@C01+C02:def`` may decide only for C01 and C02 (and not district-wide);
        a plain ``coordinator:def`` covers every community.
    insecure_dev : bool
        ``RECOMMENDER_INSECURE_DEV``: allow requests without a key when no key is configured;
        only ``recommender serve --insecure-dev`` sets it.
    timezone : str
        ``RECOMMENDER_TIMEZONE``: the district's IANA time zone (default
        :data:`recommender.domain.DISTRICT_TIMEZONE`); time-zone-aware event times are
        converted to it.
    max_body_bytes : int
        ``RECOMMENDER_MAX_BODY_BYTES``: the largest request body the API accepts (default
        1 MiB, room for a full batch of 1,000 events); a larger one gets 413 before it is
        read (see :mod:`api.limits`).
    prometheus_multiproc_dir : Path or None
        ``PROMETHEUS_MULTIPROC_DIR`` (no prefix: prometheus_client reads the same variable).
        When set, every worker writes its metrics to files in this folder and ``/metrics``
        aggregates them, so a scrape counts the requests of all workers; it must be empty when
        the server starts. ``recommender serve --workers N`` (N > 1) sets up a fresh one.
    """

    # hide_input_in_errors: a ValidationError would otherwise print RECOMMENDER_API_KEYS whole
    # (every key) after the one-line reason, e.g. when a uvicorn worker builds its settings.
    model_config = SettingsConfigDict(env_prefix="RECOMMENDER_", extra="ignore",
                                      hide_input_in_errors=True)

    database_url: str | None = None
    artifacts_dir: Path = Path("artifacts")
    api_keys: SecretStr = SecretStr("")
    insecure_dev: bool = False
    timezone: str = DISTRICT_TIMEZONE
    max_body_bytes: int = Field(1_048_576, ge=1)
    prometheus_multiproc_dir: Path | None = Field(
        None, validation_alias=AliasChoices("prometheus_multiproc_dir", MULTIPROC_VARIABLE))

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: SecretStr) -> SecretStr:
        parse_api_keys(value.get_secret_value())  # raises naming the bad pair (not the key)
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"RECOMMENDER_TIMEZONE: {value!r} is not an IANA time zone "
                             "(e.g. Asia/Shanghai)") from exc
        return value

    @field_validator("database_url", "prometheus_multiproc_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is not None:
            check_database_url(value)
        return value

    @property
    def database(self) -> str:
        """The database URL in use (the configured one, else :data:`DEFAULT_DATABASE_URL`)."""
        return self.database_url or DEFAULT_DATABASE_URL

    def whereabouts(self, artifacts: bool = True) -> str:
        """One line naming the database (and, with ``artifacts``, the artifacts folder) these
        settings use, as absolute places, and which of them are defaults (relative to the
        working directory).

        Every start prints it, so a server started from another folder than the import says
        so at once. A password in the database URL shows as ``***``.
        """
        url = sa.engine.make_url(self.database)
        shown = url.render_as_string(hide_password=True)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            shown = f"sqlite:///{Path(url.database).resolve()}"
        line = f"database {shown}{' (default)' if self.database_url is None else ''}"
        if artifacts:
            default = "artifacts_dir" not in self.model_fields_set
            line += f"; artifacts {self.artifacts_dir.resolve()}{' (default)' if default else ''}"
        return line

    def key_roles(self) -> dict[str, str]:
        """``{key: role}`` for every configured key."""
        return parse_api_keys(self.api_keys.get_secret_value())

    def key_grants(self) -> dict[str, KeyGrant]:
        """``{key: KeyGrant}`` (role and communities) for every configured key."""
        return parse_api_grants(self.api_keys.get_secret_value())

    def variables(self) -> dict[str, str | None]:
        """These settings as environment variables (None: the variable is unset)."""
        def text(value) -> str | None:
            return None if value is None else str(value)

        return {
            "RECOMMENDER_DATABASE_URL": text(self.database_url),
            "RECOMMENDER_ARTIFACTS_DIR": str(self.artifacts_dir),
            "RECOMMENDER_API_KEYS": self.api_keys.get_secret_value(),
            "RECOMMENDER_INSECURE_DEV": "true" if self.insecure_dev else "false",
            "RECOMMENDER_TIMEZONE": self.timezone,
            "RECOMMENDER_MAX_BODY_BYTES": str(self.max_body_bytes),
            MULTIPROC_VARIABLE: text(self.prometheus_multiproc_dir),
        }

    def export(self) -> None:
        """Write :meth:`variables` into this process's environment.

        Processes started afterwards (uvicorn's workers, which build the app from
        ``api.main:create_app`` by import string) then read these settings, and
        prometheus_client in each of them finds the multiprocess folder.
        """
        for name, value in self.variables().items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class SettingsError(ValueError):
    """An invalid setting, as one line: the variable, then the reason (never a key)."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable, self.reason = variable, reason


def variable_of(field: str) -> str:
    """The environment variable a :class:`Settings` field is read from."""
    return _VARIABLES.get(field, f"RECOMMENDER_{field.upper()}")


def load_settings(**values) -> Settings:
    """:class:`Settings` from the environment, with ``values`` (those not None) over it.

    Raises
    ------
    SettingsError
        The first invalid setting, in one line that names its variable and the reason; the
        value itself is never shown (it may be a key).
    """
    try:
        return Settings(**{name: value for name, value in values.items() if value is not None})
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        field = str(error["loc"][0]) if error["loc"] else "settings"
        variable = variable_of(field)
        reason = str(error["msg"]).removeprefix("Value error, ").splitlines()[0]
        # A validator's own message may already start with the variable's name.
        raise SettingsError(variable, reason.removeprefix(variable).lstrip(": ")) from None


def check_database_url(url: str) -> str:
    """``url`` if the store can use it (SQLite, or PostgreSQL through psycopg).

    Raises
    ------
    ValueError
        One line: the URL cannot be parsed, or names another database or driver.
    """
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise ValueError("not a database URL (expected sqlite:///path/file.db or "
                         "postgresql+psycopg://user@host:5432/db)") from None
    if parsed.drivername not in DATABASE_SCHEMES:
        raise ValueError(f"{parsed.drivername!r} is not supported (use sqlite:///path/file.db "
                         "or postgresql+psycopg://user@host:5432/db)")
    return url


@dataclass(frozen=True)
class KeyGrant:
    """What one configured key may do: its role, and the communities it is limited to.

    ``communities`` is None for a key that covers every community (every key but a scoped
    coordinator key). ``fingerprint`` names the key in records (who decided) without being it.
    """

    role: str
    communities: frozenset[str] | None = None
    fingerprint: str = ""


def key_fingerprint(key: str) -> str:
    """A short, non-secret name of a key: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def parse_api_keys(text: str) -> dict[str, str]:
    """Parse ``role:key,role@C01+C02:key`` into ``{key: role}`` (see :func:`parse_api_grants`)."""
    return {key: grant.role for key, grant in parse_api_grants(text).items()}


def parse_api_grants(text: str) -> dict[str, KeyGrant]:
    """Parse ``role:key,coordinator@C01+C02:key`` into ``{key: KeyGrant}``.

    ``@`` after a coordinator role limits the key to the ``+``-separated community ids.

    Raises
    ------
    ValueError
        One line naming the position and the problem (an unknown role, an empty key, a key used
        twice, a scope on another role, a bad community id), never the key itself.
    """
    keys: dict[str, KeyGrant] = {}
    for n, pair in enumerate((p.strip() for p in text.split(",")), 1):
        if not pair:
            continue
        role, sep, key = pair.partition(":")
        role, key = role.strip(), key.strip()
        if not sep or not key:
            raise ValueError(f"RECOMMENDER_API_KEYS pair {n}: expected role:key")
        role, at, scope = role.partition("@")
        if role not in ROLES:
            raise ValueError(f"RECOMMENDER_API_KEYS pair {n}: unknown role {role!r} "
                             f"(one of {', '.join(ROLES)})")
        communities = _scope(n, role, scope) if at else None
        if key in keys:
            raise ValueError(f"RECOMMENDER_API_KEYS pair {n}: key already used for another role")
        keys[key] = KeyGrant(role, communities, key_fingerprint(key))
    return keys


def _scope(n: int, role: str, scope: str) -> frozenset[str]:
    """The communities after ``@`` in pair ``n`` (its role part only: the key never shows)."""
    if role not in SCOPED_ROLES:
        raise ValueError(f"RECOMMENDER_API_KEYS pair {n}: role {role!r} takes no community "
                         f"scope (only {', '.join(SCOPED_ROLES)})")
    ids = [c.strip() for c in scope.split("+")]
    bad = [c for c in ids if not _SCOPE_ID.match(c) or c == "all"]
    if bad:
        raise ValueError(f"RECOMMENDER_API_KEYS pair {n}: bad community id {bad[0]!r} in the "
                         f"scope (expected {role}@C01+C02:key)")
    return frozenset(ids)


def sleeping_openmp_threads() -> None:
    """Let idle OpenMP threads (the re-ranker's trees, implicit) sleep instead of spinning,
    unless the environment already chose a policy.

    On a machine shared with other work a spinning thread waits for a descheduled sibling, and
    a tree fit took five times longer than on one thread (docs/decisions.md). Call it before an
    OpenMP runtime loads: the command line does, before its commands' lazy imports.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

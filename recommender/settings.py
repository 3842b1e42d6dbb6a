"""Service settings: one pydantic-settings object read from ``RECOMMENDER_*`` variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROLES = ("platform", "coordinator", "admin")


class Settings(BaseSettings):
    """Everything the service reads from the environment.

    ``RECOMMENDER_API_KEYS`` is ``role:key`` pairs separated by commas, e.g.
    ``platform:abc,coordinator:def,admin:ghi``; it is a secret, so it never shows in reprs/logs.
    """

    model_config = SettingsConfigDict(env_prefix="RECOMMENDER_", extra="ignore")

    database_url: str | None = None
    artifacts_dir: Path = Path("artifacts")
    api_keys: SecretStr = SecretStr("")
    insecure_dev: bool = False  # only `recommender serve --insecure-dev` sets it
    timezone: str = "Asia/Shanghai"

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: SecretStr) -> SecretStr:
        parse_api_keys(value.get_secret_value())  # raises naming the bad pair (not the key)
        return value

    def key_roles(self) -> dict[str, str]:
        """``{key: role}`` for every configured key."""
        return parse_api_keys(self.api_keys.get_secret_value())


def parse_api_keys(text: str) -> dict[str, str]:
    """Parse ``role:key,role:key`` into ``{key: role}``.

    Raises
    ------
    ValueError
        Naming the position and the problem (an unknown role, an empty key, a key used twice),
        never the key itself.
    """
    keys: dict[str, str] = {}
    for n, pair in enumerate((p.strip() for p in text.split(",")), 1):
        if not pair:
            continue
        role, sep, key = pair.partition(":")
        role, key = role.strip(), key.strip()
        if not sep or not key:
            raise ValueError(f"RECOMMENDER_API_KEYS pair {n}: expected role:key")
        if role not in ROLES:
            raise ValueError(f"RECOMMENDER_API_KEYS pair {n}: unknown role {role!r} "
                             f"(one of {', '.join(ROLES)})")
        if key in keys:
            raise ValueError(f"RECOMMENDER_API_KEYS pair {n}: key already used for another role")
        keys[key] = role
    return keys

"""Typed, frozen settings (prefix STRONGROOM_), built once at start-up and passed down."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from strongroom.core.limits import GROUP_COMMIT_WAIT_US_DEFAULT, GROUP_COMMIT_WAIT_US_MAX

DEFAULT_DATABASE_URL = "sqlite:///./strongroom.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STRONGROOM_", frozen=True, extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # SQLite page cache per connection, in MiB.
    sqlite_cache_mib: int = Field(default=256, ge=2, le=16_384)
    group_commit_wait_us: int = Field(
        default=GROUP_COMMIT_WAIT_US_DEFAULT, ge=0, le=GROUP_COMMIT_WAIT_US_MAX
    )

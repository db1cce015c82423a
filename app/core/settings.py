"""One typed settings class; every option is an environment variable with the CC_ prefix."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class TierCutoffs(BaseModel):
    """Percentile of customer value at which each tier starts (the customer pyramid).

    The defaults follow the 20/80 rule: the top 20% by value are platinum or gold.
    """

    platinum: float = Field(default=0.95, gt=0, lt=1)
    gold: float = Field(default=0.80, gt=0, lt=1)
    iron: float = Field(default=0.30, gt=0, lt=1)

    @model_validator(mode="after")
    def _descending(self) -> TierCutoffs:
        if not self.platinum > self.gold > self.iron:
            raise ValueError("tier cut-offs must satisfy platinum > gold > iron")
        return self


DEVELOPMENT_SECRET = "development-only-secret-change-me"  # noqa: S105


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CC_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Server processes on this machine; each is a full replica (its own matcher, hub and pools)
    # sharing the port, as routing is safe across replicas (docs/deployment.md).
    workers: int = Field(default=1, ge=1, le=64)
    # DATABASE_URL is read without the prefix too, as every PaaS sets it that way.
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    data_dir: Path = PROJECT_ROOT / ".data"
    # The ORM's pool serves the admin API; the hot paths have their own (db_hot_pool_size).
    db_pool_size: int = Field(default=5, ge=1)
    db_max_overflow: int = Field(default=5, ge=0)
    # A ping before every checkout costs a round trip per transaction (about 1 ms, measured in
    # docs/benchmarks.md). Without it a connection the database dropped fails one transaction,
    # and SQLAlchemy then throws the whole stale pool away; turn it on for flaky networks.
    db_pre_ping: bool = False
    # The plain asyncpg pool of the hot paths (intake, matcher, offer decisions, screen pops).
    # Sized for the intake's concurrent requests plus the desks' decisions; the matcher has a
    # connection of its own besides, so a busy pool never delays routing.
    db_hot_pool_size: int = Field(default=32, ge=2)

    secret_key: str = DEVELOPMENT_SECRET
    token_ttl_minutes: int = Field(default=12 * 60, ge=1)
    # A socket ticket (POST /v1/desk/tickets) opens one socket within this many seconds.
    socket_ticket_seconds: float = Field(default=30.0, gt=0, le=300)
    password_hashing: Literal["standard", "fast"] = "standard"  # noqa: S105

    load_demo: bool = True
    # Routing: how often agents' sockets beat, how long a silent one keeps its place, how often
    # the matcher looks again without being woken (offer timeouts, aging, relaxation).
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    silence_seconds: float = Field(default=15.0, gt=0)
    matcher_tick_seconds: float = Field(default=0.25, gt=0)
    # A replica's lease (app/core/lease.py): when it lapses, the desks on that replica leave
    # routing. Short, so that a crashed replica's agents are offered nothing for long.
    lease_seconds: float = Field(default=2.5, ge=0.5, le=2.5)
    default_phone_region: str = "CN"
    tier_cutoffs: TierCutoffs = TierCutoffs()
    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.startswith(("postgres://", "postgresql://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("DATABASE_URL must be a postgresql:// or postgresql+asyncpg:// URL")
        return value

    @field_validator("default_phone_region")
    @classmethod
    def _region_upper(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _secret_outside_development(self) -> Settings:
        if self.environment == "production" and self.secret_key == DEVELOPMENT_SECRET:
            raise ValueError("CC_SECRET_KEY must be set in production")
        if self.environment == "production" and self.password_hashing != "standard":  # noqa: S105
            raise ValueError("CC_PASSWORD_HASHING=fast is for tests; production hashes standard")
        return self

    @property
    def embedded_pgdata(self) -> Path:
        return self.data_dir / "postgres"


@lru_cache
def get_settings() -> Settings:
    return Settings()

"""One typed settings class; every option is an environment variable with the CC_ prefix."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.core.zones import known_zone

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


# A bearer token that a scraper sends on every scrape: long enough not to be guessed.
METRICS_TOKEN_MIN_LENGTH = 16


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
    # argon2 takes 64 MiB and a core for ~0.1-0.3 s a hash: at most this many at once per
    # process (in threads, off the event loop); more wait their turn, holding no connection.
    password_hash_concurrency: int = Field(default=2, ge=1, le=64)
    # Failed logins counted in PostgreSQL (every replica sees them) over a sliding window: a
    # username or a client address with this many failures in the window is refused (429,
    # Retry-After), the right password too, until the oldest of them leaves the window.
    login_failures_per_user: int = Field(default=10, ge=1)
    login_failures_per_address: int = Field(default=50, ge=1)
    login_failure_window_seconds: float = Field(default=900.0, gt=0)

    # Prometheus reads /metrics with this as its bearer token (docs/deployment.md, "Metrics");
    # unset, /metrics answers 401 to everyone. Long enough not to be guessed.
    metrics_token: SecretStr | None = None
    # The demo (and its passwords, printed) goes into an empty database at `serve`: by default
    # outside production only; in production only when this says true.
    load_demo: bool | None = None
    # Routing: how often agents' sockets beat, how long a silent one keeps its place, how often
    # the matcher looks again without being woken (offer timeouts, aging, relaxation).
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    silence_seconds: float = Field(default=15.0, gt=0)
    matcher_tick_seconds: float = Field(default=0.25, gt=0)
    # A replica's lease (app/core/lease.py): when it lapses, the desks on that replica leave
    # routing. Short, so that a crashed replica's agents are offered nothing for long.
    lease_seconds: float = Field(default=2.5, ge=0.5, le=2.5)
    # The outbox (app/core/outbox.py, courier.py): what the center sends out is tried at most
    # this many times, the first retry after about outbox_backoff_seconds, doubling up to
    # outbox_max_backoff_seconds (each with jitter; a Retry-After answer is followed instead);
    # then it is dead until an admin sends it again (POST /v1/outbox/{id}/retry).
    outbox_max_attempts: int = Field(default=8, ge=1, le=100)
    outbox_backoff_seconds: float = Field(default=2.0, gt=0, le=3600)
    outbox_max_backoff_seconds: float = Field(default=600.0, gt=0, le=86400)
    # One attempt's limit: an answer not in by then counts as a failure worth retrying.
    outbox_send_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # How often each replica looks for messages nobody woke it for (another replica's, retries).
    outbox_sweep_seconds: float = Field(default=2.0, gt=0, le=3600)
    # Sends under way at once on each replica.
    outbox_concurrency: int = Field(default=8, ge=1, le=256)
    default_phone_region: str = "CN"
    # The center's time zone: the day of a queue without business hours (whose zone is its
    # hours'), for its "today" figures (docs/metrics.md).
    time_zone: str = "UTC"
    tier_cutoffs: TierCutoffs = TierCutoffs()
    log_level: str = "INFO"
    log_json: bool = False

    # Telephony (docs/telephony.md). The URL the gateways reach us at, as they write it: a
    # proxy in front changes the scheme, host and port the app sees, and Twilio signs the URL
    # it requested, so the signature is checked over this (unset: the URL the app saw).
    public_base_url: str | None = None
    # Twilio's auth token signs its webhooks and, with the account SID, authenticates our calls
    # to its REST API (the outbox's `twilio` sender, basic auth; without both, no such sender).
    # Unset: every Twilio webhook is refused (403).
    twilio_auth_token: SecretStr | None = None
    # AC followed by 32 hex digits at Twilio; carriers that copy its API name accounts otherwise.
    twilio_account_sid: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # Where the Calls REST API is: Twilio's, a carrier's copy of it (with its path prefix), or
    # a stand-in in the tests (Twilio is unreachable there).
    twilio_api_url: str = "https://api.twilio.com"

    # Mail out (docs/channels.md, "Email out: the relay"): the relay that takes our replies,
    # the outbox's `smtp` sender; unset, there is no such sender and mail waits `dead`, saying
    # so. 587 is the submission port, where a relay expects STARTTLS and AUTH.
    smtp_relay_host: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.:_-]{1,253}$")
    smtp_relay_port: int = Field(default=587, ge=1, le=65535)
    # Both or neither; AUTH only over STARTTLS (the password never goes in the clear).
    smtp_relay_username: str | None = Field(default=None, max_length=255)
    smtp_relay_password: SecretStr | None = None
    # Off only for a relay on this host or network that offers no TLS (a local Postfix).
    smtp_relay_starttls: bool = True
    # Each step of the conversation (connect, each command); CC_OUTBOX_SEND_TIMEOUT_SECONDS
    # bounds the whole attempt.
    smtp_relay_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # Email in (docs/channels.md). The SMTP listener's port: unset, 2525 in development (the
    # demo's), and no listener in production or the tests unless set (port 25 needs root: a
    # relay or a port forward brings a domain's MX to it). Every server process binds it with
    # SO_REUSEPORT. Its address: unset, CC_HOST's.
    smtp_port: int | None = Field(default=None, ge=0, le=65535)  # 0: any free port (tests)
    smtp_host: str | None = None
    # A message larger than this is refused (552 at SMTP, 413 at the inbound webhook).
    email_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        url = value
        if url.startswith(("postgres://", "postgresql://")):
            url = "postgresql+asyncpg://" + url.split("://", 1)[1]
        if not url.startswith("postgresql+asyncpg://"):
            raise ValueError(
                f"{masked_url(value)} is not a postgresql:// URL: write it as {URL_FORM}"
            )
        try:
            make_url(url)
        except (ArgumentError, ValueError) as error:  # their messages may quote the password
            raise ValueError(
                f"{masked_url(value)} cannot be read ({_reason(error, value)}): write it as"
                f" {URL_FORM}"
            ) from None
        return url

    @field_validator("twilio_account_sid", mode="before")
    @classmethod
    def _sid_or_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, value: str | None) -> str | None:
        return None if value is None or value == "" else _base_url(value)

    @field_validator("twilio_api_url")
    @classmethod
    def _twilio_api_url(cls, value: str) -> str:
        return _base_url(value)

    @field_validator("smtp_relay_host", "smtp_relay_username", mode="before")
    @classmethod
    def _relay_or_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("twilio_auth_token", "smtp_relay_password")
    @classmethod
    def _token_or_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _metrics_token_or_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)

    @field_validator("default_phone_region")
    @classmethod
    def _region_upper(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _secret_outside_development(self) -> Settings:
        if self.environment == "production" and self.secret_key == DEVELOPMENT_SECRET:
            raise ValueError(
                "CC_SECRET_KEY must be set in production: a long random value, the same on every"
                " replica and kept stable (python3 -c 'import secrets;"
                " print(secrets.token_urlsafe(32))')"
            )
        if self.environment == "production" and self.password_hashing != "standard":  # noqa: S105
            raise ValueError("CC_PASSWORD_HASHING=fast is for tests; production hashes standard")
        return self

    @model_validator(mode="after")
    def _relay_credentials_in_pairs(self) -> Settings:
        if (self.smtp_relay_username is None) != (self.smtp_relay_password is None):
            raise ValueError(
                "CC_SMTP_RELAY_USERNAME and CC_SMTP_RELAY_PASSWORD go together: set both, or"
                " neither for a relay that needs no AUTH"
            )
        if self.smtp_relay_password is not None and not self.smtp_relay_starttls:
            raise ValueError(
                "CC_SMTP_RELAY_PASSWORD with CC_SMTP_RELAY_STARTTLS=false would send the password"
                " in the clear: turn STARTTLS on, or use a relay that needs no AUTH"
            )
        return self

    @model_validator(mode="after")
    def _metrics_token_long_enough(self) -> Settings:
        # Checked here rather than with the field's min_length, whose error quotes the value.
        token = self.metrics_token
        if token is not None and len(token.get_secret_value()) < METRICS_TOKEN_MIN_LENGTH:
            raise ValueError(
                f"CC_METRICS_TOKEN must be at least {METRICS_TOKEN_MIN_LENGTH} characters long"
                " (python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return self

    @model_validator(mode="after")
    def _backoff_grows(self) -> Settings:
        if self.outbox_max_backoff_seconds < self.outbox_backoff_seconds:
            raise ValueError(
                "CC_OUTBOX_MAX_BACKOFF_SECONDS must be at least CC_OUTBOX_BACKOFF_SECONDS"
            )
        return self

    @property
    def embedded_pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def demo_at_first_start(self) -> bool:
        """Whether `serve` loads the demo into an empty database: never in production unless
        CC_LOAD_DEMO=true asks for it (its passwords go to the log)."""
        if self.load_demo is None:
            return self.environment != "production"
        return self.load_demo

    @property
    def smtp_listener_port(self) -> int | None:
        """The port mail comes in on, or None for no listener: CC_SMTP_PORT, else 2525 in
        development only (production says where it wants one; the tests start their own)."""
        if self.smtp_port is not None:
            return self.smtp_port
        return 2525 if self.environment == "development" else None


URL_FORM = "postgresql://user:password@host:5432/database"
BASE_URL = re.compile(r"https?://[^/?#\s]+(/[^?#\s]*)?")


def _base_url(value: str) -> str:
    """An http(s) URL that paths are appended to: no query or fragment, no trailing slash."""
    if not BASE_URL.fullmatch(value):
        raise ValueError(
            "must be an http:// or https:// URL with no query or fragment, like"
            " https://cc.example.com"
        )
    return value.rstrip("/")


# Read without the CC_ prefix (validation_alias); those not named here carry it.
_VARIABLES = {"database_url": "DATABASE_URL"}
# Never echoed in an error, whatever is wrong with them.
_SECRET_FIELDS = {
    "database_url",
    "secret_key",
    "twilio_auth_token",
    "smtp_relay_password",
    "metrics_token",
}


def masked_url(url: str) -> str:
    """The URL with its password, if any, as ***: for errors and logs."""
    # Up to the last @: a password may hold one (unescaped); masking too much is harmless.
    return re.sub(r"(://[^/@:]*:).*@", r"\1***@", url)


def _reason(error: Exception, url: str) -> str:
    password = re.search(r"://[^/@:]*:(.*)@", url)
    reason = str(error)
    return reason.replace(password.group(1), "***") if password and password.group(1) else reason


def explain(error: ValidationError) -> str:
    """A settings error in one line that names each variable, what is wrong with it and how to
    fix it; a secret's value is never repeated."""
    problems = []
    for problem in error.errors(include_url=False):
        message = str(problem["msg"]).removeprefix("Value error, ")
        field = str(problem["loc"][0]).lower() if problem["loc"] else ""  # or its alias
        variable = _VARIABLES.get(field, f"CC_{field.upper()}")
        if not field:  # the model's own checks name their variables themselves
            problems.append(message)
        elif field in _SECRET_FIELDS:
            problems.append(f"{variable}: {message}")
        else:
            given, wanted = problem.get("input"), f"{message[0].lower()}{message[1:]}"
            problems.append(
                f"{variable}={given!r} is not valid: {wanted}; fix it in the environment or in .env"
            )
    return "; ".join(problems)


@lru_cache
def get_settings() -> Settings:
    return Settings()

"""One place for configuration, read from the environment (and `.env` when present)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration. Every field maps to an upper-case environment variable."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL. Unset: an embedded PostgreSQL (pgserver) under the home folder.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking/registry URI. Unset: the `mlflow` database on the same PostgreSQL.",
    )
    campaignopt_home: Path = Field(
        default=Path.home() / ".campaignopt",
        description="Home folder: embedded database, inbox, exports, data docs, MLflow artifacts.",
    )
    campaignopt_env: str = Field(default="dev", description="Environment name (dev, staging, prod).")
    decide_wait_seconds: float = Field(
        default=1800.0,
        ge=0.0,
        description="How long deciding day D waits for earlier days of its cap window to be final.",
    )
    decide_buckets: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Customer-hash buckets each campaign's list is decided in (parallel decide tasks).",
    )
    quarantine_max_share: float = Field(
        default=0.01, ge=0.0, le=1.0, description="Ingestion fails when more rows than this are bad."
    )
    volume_min_share: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="A day's interactions (or a campaign's send list) fail validation below this share "
        "of the median of the recent earlier batches (expectations/suites.py: volume checks).",
    )
    volume_min_history: int = Field(
        default=3, ge=1, description="The volume check applies once this many earlier batches had rows."
    )
    volume_lookback_days: int = Field(
        default=14, ge=1, description="Earlier batches count for the volume check within this many days."
    )
    fairness_max_variance: float = Field(
        default=0.10,
        gt=0.0,
        le=1.0,
        description="An offer whose recipients differ from the eligible audience by more than this "
        "total variation distance (lower 95% bound) in a protected attribute is alerted "
        "(pipelines/fairness.py).",
    )
    fairness_min_share_ratio: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="A group whose share among an offer's recipients is significantly below this "
        "fraction of its eligible share is alerted.",
    )
    fairness_min_recipients: int = Field(
        default=100, ge=1, description="Offers with fewer recipients on a day are reported, never alerted."
    )
    fairness_proxy_features: str = Field(
        default="",
        description="Categorical CUSTOMER_EXTRA_FEATURES the fair-lending monitor also groups by, as "
        "proxies of a protected attribute (e.g. region), comma-separated.",
    )
    customer_extra_features: str = Field(
        default="",
        description="The bank's own customer features beyond the fixed snapshot columns, as "
        "name:numeric or name:categorical, comma-separated (e.g. region:categorical,credit_score:numeric): "
        "required columns of the customers file, stored in raw.customers.extra_features, features of "
        "the model (pipelines/extra_features.py).",
    )
    anomaly_lookback_days: int = Field(
        default=14,
        ge=1,
        description="A source-day's feedback is compared with this many earlier days "
        "(pipelines/anomalies.py).",
    )
    anomaly_z_threshold: float = Field(
        default=4.0,
        gt=0.0,
        description="A source-day's event count this many standard deviations from its expected count "
        "is held out of learning and alerted.",
    )
    anomaly_min_history: int = Field(
        default=7,
        ge=1,
        description="The feedback anomaly check applies once this many earlier days had sends.",
    )
    realtime_refresh_seconds: float = Field(
        default=2.0,
        gt=0.0,
        description="How often each API worker folds matured real-time feedback into its snapshot.",
    )
    realtime_model_check_seconds: float = Field(
        default=10.0,
        gt=0.0,
        description="How often each API worker asks the registry which version is the champion "
        "(a newly promoted one is served without a restart).",
    )
    realtime_clock_offset_seconds: float = Field(
        default=0.0,
        description="Tests only: shifts the service's clock (its `now`) by this many seconds, so a test "
        "can put a decision day's end, and its maturity, within reach. Leave 0 in production.",
    )
    realtime_log_decisions: bool = Field(
        default=True,
        description="Benchmark only: false makes /optimize skip inserting its decision (everything else "
        "the same), to measure what logging costs; /readyz then says degraded. Leave true.",
    )
    realtime_circuit_open_seconds: float = Field(
        default=5.0,
        gt=0.0,
        description="After a database connection failure, requests skip the database for at least this "
        "long (deciding from the local eligibility cache, spooling locally) until a probe succeeds.",
    )
    realtime_eligibility_cache_seconds: float = Field(
        default=900.0,
        ge=0.0,
        description="How long a worker may decide offline from a customer's last-read eligibility "
        "(consent, suppression, caps) while the database is down.",
    )
    realtime_eligibility_cache_size: int = Field(
        default=20_000,
        ge=0,
        description="Customers whose eligibility each worker keeps for offline decisions.",
    )
    realtime_db_pool_size: int = Field(
        default=10,
        ge=1,
        description="Database connections each API worker keeps open (and as many more under a burst): "
        "workers x 2 x this must fit the server's max_connections beside everything else it serves.",
    )

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Redis for the feedback stream consumer (`campaignopt stream consume`).",
    )
    stream_claim_idle_seconds: float = Field(
        default=60.0,
        gt=0.0,
        description="A stream message delivered to a consumer and unacknowledged this long is claimed by "
        "another consumer of the group (the first one is taken for dead).",
    )
    stream_db_wait_seconds: float = Field(
        default=60.0,
        ge=0.0,
        description="How long the stream consumer retries a batch while the database is unreachable "
        "before it stops (exit 3), leaving the batch pending for a restart or another consumer.",
    )

    @field_validator("customer_extra_features")
    @classmethod
    def _extra_features_parse(cls, value: str) -> str:
        from pipelines.extra_features import parse_extra_features

        parse_extra_features(value)  # a bad item fails at start-up, naming itself
        return value

    @model_validator(mode="after")
    def _proxies_are_categorical_extras(self) -> Settings:
        from pipelines.extra_features import parse_extra_features

        kinds = {f.name: f.kind for f in parse_extra_features(self.customer_extra_features)}
        for name in (n.strip() for n in self.fairness_proxy_features.split(",") if n.strip()):
            if kinds.get(name) != "categorical":
                raise ValueError(
                    f"FAIRNESS_PROXY_FEATURES item {name!r}: not a categorical CUSTOMER_EXTRA_FEATURES column"
                )
        return self

    @property
    def home(self) -> Path:
        return self.campaignopt_home.expanduser().resolve()

    @property
    def inbox_dir(self) -> Path:
        return self.home / "inbox"

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"

    @property
    def pgdata_dir(self) -> Path:
        return self.home / "pgdata"

    @property
    def spool_dir(self) -> Path:
        """Decisions and feedback answered while the database was down, until replayed."""
        return self.home / "spool"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests clear the cache with ``get_settings.cache_clear()``."""
    return Settings()

"""The one settings class for tend: every knob is an environment variable prefixed ``TEND_``."""

from __future__ import annotations

import os
import secrets
import stat
import time
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name
SQLITE_FILE = "tend.db"


def default_data_dir() -> Path:
    """Return the default data directory, honouring ``XDG_DATA_HOME``.

    Returns:
        ``$XDG_DATA_HOME/tend`` when set, else ``~/.local/share/tend``.
    """
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "tend"


class Settings(BaseSettings):
    """Configuration of a tend server and its CLI.

    Values come from ``TEND_*`` environment variables or an optional ``.env`` file in the working
    directory. Secrets are ``SecretStr`` so they never show up in ``repr``, logs or responses.
    """

    model_config = SettingsConfigDict(
        env_prefix="TEND_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: SecretStr | None = None
    database_schema: str | None = Field(
        default=None,
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema to keep tend's tables in (default: the search_path)",
    )
    secret_key: SecretStr | None = None

    db_pool_size: int = Field(default=10, ge=1, le=500)
    db_max_overflow: int = Field(default=20, ge=0, le=1000)
    db_pool_timeout: float = Field(default=30.0, gt=0)
    db_pool_recycle: int = Field(default=1800, ge=-1)
    db_pool_pre_ping: bool = True
    db_echo: bool = False
    migrate_on_start: bool = True

    password_hash_time_cost: int = Field(default=3, ge=1, le=20)
    password_hash_memory_kib: int = Field(default=65536, ge=1024, le=4 * 1024 * 1024)
    access_token_ttl: int = Field(default=900, ge=30, le=86400, description="JWT lifetime, s")
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="reuse a resolved API token this long (other replicas see revocations then)",
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    login_max_failures_per_user: int = Field(default=5, ge=1)
    login_max_failures_per_client: int = Field(default=20, ge=1)
    login_window: int = Field(default=300, ge=1, description="failed-login window, s")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"
    access_log: bool = True

    policy_file: Path | None = Field(
        default=None, description="policy rules (YAML); default DATA_DIR/policy.yaml if present"
    )
    four_eyes_tags: list[str] = Field(
        default_factory=lambda: ["prod"],
        description="changes on hosts with these tags need an approver other than the requester",
    )
    approval_ttl: int = Field(default=3600, ge=60, le=7 * 86400, description="seconds")
    run_timeout_max: float = Field(default=3600.0, gt=0)
    output_cap_bytes: int = Field(default=1024 * 1024, ge=1024)
    fanout_concurrency: int = Field(default=50, ge=1, le=2000)
    local_cpu_seconds: int | None = Field(default=600, ge=1)
    local_address_space_bytes: int | None = Field(default=8 * 1024**3, ge=64 * 1024**2)
    local_file_size_bytes: int | None = Field(default=4 * 1024**3, ge=1024)
    local_open_files: int | None = Field(default=4096, ge=16)
    ssh_key_file: Path | None = Field(default=None, description="default private key path")
    ssh_known_hosts_file: Path | None = Field(
        default=None, description="known_hosts to consult; default ~/.ssh/known_hosts if present"
    )
    ssh_connect_timeout: float = Field(default=10.0, gt=0, le=300)
    ssh_max_connections: int = Field(default=500, ge=1)
    ssh_max_channels_per_host: int = Field(default=8, ge=1, le=64)
    ssh_idle_timeout: float = Field(default=300.0, gt=0)
    ssh_keepalive_interval: float = Field(default=15.0, gt=0)
    ssh_remote_timeout: bool = Field(
        default=True, description="also enforce timeouts on the remote host with coreutils timeout"
    )

    jobs: Literal["inprocess", "celery"] = "inprocess"
    broker_url: SecretStr | None = Field(default=None, description="redis://... or amqp://...")
    redis_url: SecretStr | None = Field(
        default=None, description="Redis for live job events across processes"
    )
    celery_visibility_timeout: int = Field(
        default=3600, ge=5, description="Redis broker: seconds before an unacked job is redelivered"
    )
    job_modules: list[str] = Field(
        default_factory=list,
        description="extra modules to import at start; they register job kinds",
    )
    queue_routes: dict[str, str] = Field(
        default_factory=dict,
        description='host tag -> job queue, e.g. {"site-eu": "eu"}: jobs for those hosts go there',
    )
    run_part_hosts: int = Field(
        default=50, ge=1, description="with Celery, runs over more hosts split into parts this big"
    )
    jobs_concurrency: int = Field(default=8, ge=1, le=1000)
    job_heartbeat: float = Field(default=5.0, gt=0, le=300)
    scheduler: bool = Field(default=True, description="run periodic work in this process")
    job_retention_days: float = Field(
        default=30.0, gt=0, description="finished jobs (and their events) are deleted after this"
    )
    periodic_job_retention_days: float = Field(
        default=1.0, gt=0, description="finished periodic jobs of tend itself go after this"
    )

    alert_eval_interval: float = Field(
        default=15.0, ge=5, le=3600, description="seconds between evaluations of alert rules"
    )
    alert_webhooks: list[str | dict[str, str]] = Field(
        default_factory=list,
        description="webhooks notified of every alert: URLs (JSON payload) or objects like "
        '{"url": "https://...", "format": "slack"}',
    )
    alert_notify_attempts: int = Field(default=5, ge=1, le=20, description="per notification")
    alert_notify_backoff: float = Field(
        default=2.0, ge=0, le=60, description="seconds before the first retry; doubles each time"
    )
    alert_notify_timeout: float = Field(default=10.0, gt=0, le=120, description="per request, s")
    metrics_public: bool = Field(default=False, description="serve /metrics without a bearer token")

    diagnostics_cert_dirs: list[str] = Field(
        default_factory=lambda: [
            "/etc/letsencrypt/live",
            "/etc/ssl",
            "/etc/nginx",
            "/etc/apache2",
            "/etc/haproxy",
            "/etc/pki/tls/certs",
        ],
        description="where the certificates analyzer looks for TLS certificates (4 levels deep)",
    )
    diagnostics_cert_days: int = Field(
        default=14, ge=1, le=365, description="warn about certificates expiring within this"
    )
    diagnostics_sample_seconds: int = Field(
        default=2, ge=1, le=30, description="interval over which CPU, I/O and swap are sampled"
    )
    diagnostics_probe_timeout: float = Field(
        default=20.0, gt=0, le=600, description="timeout of each command a diagnosis runs, s"
    )
    diagnostics_log_hours: int = Field(
        default=24, ge=1, le=24 * 90, description="how far back diagnostics read logs, hours"
    )

    monitor: bool = Field(
        default=True, description="collect every host's metrics (where the scheduler runs)"
    )
    monitor_interval: float = Field(default=10.0, ge=1, le=3600, description="seconds")
    monitor_live_interval: float = Field(
        default=1.0, ge=0.05, le=60, description="seconds between collections of a watched host"
    )
    monitor_concurrency: int = Field(default=50, ge=1, le=2000, description="hosts at once")
    monitor_timeout: float = Field(default=8.0, gt=0, le=300, description="per collection, s")
    monitor_backoff_max: float = Field(
        default=300.0, ge=1, description="longest wait between tries of a failing host, s"
    )
    monitor_unreachable_after: int = Field(
        default=2, ge=1, le=100, description="failures in a row before an up host is unreachable"
    )
    monitor_raw_retention: int = Field(default=86400, ge=3600, description="raw samples, s")
    monitor_minute_retention: int = Field(default=7 * 86400, ge=3600, description="1-min, s")
    monitor_hour_retention: int = Field(default=90 * 86400, ge=86400, description="1-hour, s")
    monitor_series_max_points: int = Field(default=2500, ge=10, le=100_000)
    monitor_latest_ttl: int = Field(
        default=600, ge=10, description="Redis: seconds a host's latest snapshot is kept"
    )
    monitor_live_max_seconds: int = Field(
        default=3600, ge=1, description="longest live view stream, s"
    )

    # assistant / LLM
    llm_model: str | None = Field(
        default=None,
        description="provider:model, e.g. openai:gpt-4.1, anthropic:claude-sonnet-4-5, "
        "ollama:llama3.1 (any other provider name needs llm_base_url)",
    )
    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible server (Chat Completions), or an API proxy"
    )
    llm_api_key: SecretStr | None = None
    llm_fallback_model: str | None = Field(
        default=None, description="provider:model tried when the main model fails"
    )
    llm_fallback_base_url: str | None = Field(
        default=None, description="default: llm_base_url when both use the same provider"
    )
    llm_fallback_api_key: SecretStr | None = Field(
        default=None, description="default: llm_api_key when both use the same provider"
    )
    llm_timeout: float = Field(
        default=120.0, gt=0, le=3600, description="per request (per chunk when streaming), s"
    )
    llm_max_retries: int = Field(default=3, ge=0, le=10, description="on 429, 5xx, lost links")
    llm_retry_backoff: float = Field(
        default=1.0, ge=0, le=60, description="seconds before the first retry; doubles each time"
    )
    llm_retry_max_delay: float = Field(
        default=30.0, ge=0, le=600, description="longest wait between retries (and Retry-After), s"
    )
    llm_context_tokens: int | None = Field(
        default=None, ge=1024, description="the model's context window, if not the known size"
    )
    llm_max_output_tokens: int = Field(
        default=8192, ge=256, le=200_000, description="longest answer per model request, tokens"
    )
    assistant_max_steps: int = Field(
        default=30, ge=1, le=500, description="model requests in one investigation run"
    )
    assistant_max_tool_calls: int = Field(
        default=100, ge=1, le=5000, description="tool calls in one investigation run"
    )
    assistant_run_tokens: int | None = Field(
        default=400_000, ge=1000, description="tokens (input + output) one run may use"
    )
    assistant_repeat_calls: int = Field(
        default=3, ge=1, le=50, description="identical tool calls in one run before the loop guard"
    )
    assistant_tool_retries: int = Field(
        default=2, ge=0, le=10, description="times the model may fix malformed tool arguments"
    )
    assistant_daily_tokens: int | None = Field(
        default=None, ge=1000, description="tokens one user may use per UTC day; unset: no limit"
    )
    assistant_daily_cost: float | None = Field(
        default=None, gt=0, description="US dollars one user may spend per UTC day (priced models)"
    )
    assistant_output_ttl: int = Field(
        default=7 * 86400, ge=60, description="seconds a cut tool output can still be paged"
    )
    assistant_tool_output_share: float = Field(
        default=0.2, gt=0, le=0.5, description="share of the context one tool output may take"
    )
    assistant_anonymise: bool = Field(
        default=False, description="show the model pseudonyms instead of host names and addresses"
    )

    url: str = "http://127.0.0.1:8000"
    token: SecretStr | None = None

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand_data_dir(cls, value: Path) -> Path:
        return value.expanduser()

    @cached_property
    def effective_database_url(self) -> str:
        """Return the database URL: ``TEND_DATABASE_URL``, else SQLite in the data dir."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{self.data_dir / SQLITE_FILE}"

    def effective_policy_file(self) -> Path | None:
        """Return the policy rules file to load, if any."""
        if self.policy_file is not None:
            return self.policy_file.expanduser()
        default = self.data_dir / "policy.yaml"
        return default if default.exists() else None

    @property
    def is_sqlite(self) -> bool:
        """Whether the configured database is SQLite."""
        return self.effective_database_url.startswith("sqlite")

    def ensure_data_dir(self) -> Path:
        """Create the data directory (mode 0700) if it does not exist.

        Returns:
            The data directory.
        """
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.data_dir

    def signing_key(self) -> str:
        """Return the key that signs access tokens, generating it on first use.

        ``TEND_SECRET_KEY`` wins; otherwise the key lives in ``DATA_DIR/secret_key`` with mode 0600,
        created atomically on first start so two processes never write different keys.

        Returns:
            The secret key as text.
        """
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.ensure_data_dir() / SECRET_KEY_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                path.chmod(0o600)
            return _read_key(path)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(48))
        return _read_key(path)


def _read_key(path: Path) -> str:
    # Another process may have created the file an instant ago and not yet written it.
    for _ in range(50):
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
        time.sleep(0.02)
    msg = f"secret key file {path} is empty; delete it to generate a new key"
    raise RuntimeError(msg)

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

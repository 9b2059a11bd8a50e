"""Settings: the TEND_ prefix, the data dir, the generated secret key, secrets kept out of sight."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tend.settings import Settings, default_data_dir


def test_env_prefix_and_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEND_DB_POOL_SIZE", "7")
    monkeypatch.setenv("TEND_DATA_DIR", str(tmp_path / "d"))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.db_pool_size == 7
    assert settings.data_dir == tmp_path / "d"
    assert settings.is_sqlite
    assert settings.max_body_bytes == 1024 * 1024


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / ".local" / "share" / "tend"


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEND_DATA_DIR")
    (tmp_path / ".env").write_text("TEND_LOG_LEVEL=DEBUG\nTEND_DATA_DIR=/srv/tend\n")
    settings = Settings()
    assert settings.log_level == "DEBUG"
    assert settings.data_dir == Path("/srv/tend")


def test_secret_key_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    key = settings.signing_key()
    path = tmp_path / "data" / "secret_key"
    assert len(key) >= 48
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert Settings(_env_file=None, data_dir=tmp_path / "data").signing_key() == key  # type: ignore[call-arg]


def test_loose_key_permissions_are_tightened(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    key = settings.signing_key()
    os.chmod(tmp_path / "secret_key", 0o644)
    assert settings.signing_key() == key
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def test_env_secret_key_wins_and_secrets_are_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEND_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("TEND_DATABASE_URL", "postgresql+asyncpg://tend:hunter2@db/tend")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.signing_key() == "k" * 40
    assert "hunter2" not in repr(settings)
    assert "k" * 40 not in repr(settings)
    assert not settings.is_sqlite


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEND_DB_POOL_SIZE", "0")
    with pytest.raises(ValueError, match="db_pool_size"):
        Settings(_env_file=None)  # type: ignore[call-arg]

"""Helpers for diagnostics tests: recorded outputs as observations, a running server, real sshd."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tend.auth.models import Role
from tend.diagnostics.analyzers import ANALYZERS
from tend.diagnostics.config import DiagnosticsConfig
from tend.diagnostics.findings import Finding, Observations, Probe, ProbeOutput
from tend.execution.policy import Risk, evaluate
from tend.execution.service import Caller
from tend.settings import Settings
from tests.conftest import Harness, make_settings, start_harness
from tests.execution.conftest import sshd_available, sshd_factory

__all__ = ["sshd_available", "sshd_factory"]

FIXTURES = Path(__file__).parent.parent / "fixtures" / "diagnostics"
NOW = datetime(2026, 11, 26, 10, 5, tzinfo=UTC)


def recorded(name: str) -> str:
    """The text of a recorded output in tests/fixtures/diagnostics."""
    return (FIXTURES / name).read_text()


def output(probe_id: str, stdout: str = "", **fields: Any) -> ProbeOutput:
    """A probe output as a host would have returned it."""
    fields.setdefault("status", "ok")
    fields.setdefault("exit_code", 0 if fields["status"] == "ok" else None)
    return ProbeOutput(Probe(probe_id, ("recorded",)), stdout=stdout, **fields)


def observe(
    outputs: dict[str, str | ProbeOutput],
    *,
    now: datetime = NOW,
    config: DiagnosticsConfig | None = None,
    baseline: Any = None,
    local: bool = False,
) -> Observations:
    """Observations built from recorded outputs (text is an ``ok`` output)."""
    built = {
        key: value if isinstance(value, ProbeOutput) else output(key, value)
        for key, value in outputs.items()
    }

    def readable(argv: Any) -> bool:
        return evaluate(list(argv), role="viewer").risk is Risk.READ

    return Observations(
        host="recorded",
        outputs=built,
        now=now,
        config=config or DiagnosticsConfig(),
        local=local,
        readable=readable,
        baseline=baseline,
    )


def analyze(analyzer: str, obs: Observations) -> list[Finding]:
    """Run one registered analyzer on observations."""
    return ANALYZERS[analyzer].analyze(obs)


def text_of(found: list[Finding]) -> str:
    """Every title and evidence line, for assertions on what a user reads."""
    return "\n".join(line for f in found for line in [f.title, *f.evidence])


@pytest.fixture
def settings(tmp_path: Path, database_target: dict[str, Any]) -> Settings:
    """Settings of the backend under test with a one-second CPU sample (``harness`` uses them)."""
    return make_settings(
        tmp_path,
        **database_target,
        diagnostics_sample_seconds=1,
        diagnostics_cert_dirs=[str(tmp_path / "no-certs")],
    )


@pytest.fixture
def fast_settings(tmp_path: Path) -> Settings:
    """SQLite settings with a one-second CPU sample, for tests that are not about the database."""
    return make_settings(
        tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'tend.db'}",
        diagnostics_sample_seconds=1,
        diagnostics_cert_dirs=[str(tmp_path / "no-certs")],
    )


@pytest.fixture
async def local(fast_settings: Settings) -> AsyncIterator[Harness]:
    """A started server on SQLite; its inventory has the ``local`` host."""
    async with start_harness(fast_settings) as harness:
        yield harness


async def admin_caller(harness: Harness) -> Caller:
    """A caller with the admin role, as the API would build it."""
    user = await harness.user(Role.ADMIN)
    return Caller(user_id=user.id, username=user.username, role=Role.ADMIN)


def write_certificate(path: Path, name: str, not_after: datetime, *, ca: bool = False) -> None:
    """Append a self-signed certificate for ``name`` to ``path``; its key goes to privkey.pem."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now - timedelta(days=1), not_after - timedelta(days=1)))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    (path.parent / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

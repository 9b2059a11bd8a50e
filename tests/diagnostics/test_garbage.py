"""Analyzers never raise on output they do not understand: they report less, not crash."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tend.diagnostics.analyzers import ANALYZERS
from tend.diagnostics.config import DiagnosticsConfig
from tend.diagnostics.findings import Finding, Severity
from tests.diagnostics.conftest import observe, output, recorded

# Lines that look almost right: the right words, wrong shapes.
NEAR_MISSES = [
    "==> /proc/meminfo <==",
    "==> /proc/loadavg <==",
    "MemTotal: lots kB",
    "MemAvailable:",
    "cpu0 1 2",
    "tcp LISTEN 0 128 0.0.0.0:http 0.0.0.0:*",
    "tcp LISTEN 0 128 :::",
    "Filesystem 1024-blocks Used Available Capacity Mounted on",
    "/dev/sda1 x y z 101% /",
    "/dev/sda1 10 20 30 -% /",
    "r b si so id wa",
    "1 2 3",
    "Failed password for root from",
    "message repeated many times: [ Failed password for root from 1.2.3.4 port x ssh2]",
    "Out of memory: Killed process abc (x)",
    "2026-13-45T99:99:99+0000 host kernel: Out of memory: Killed process 1 (x)",
    "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----",
    "Leap status     :",
    "NTPSynchronized=",
    "Id=",
    "a.service loaded",
    "\x00\x01\x02",
    "",
]

lines = st.one_of(st.sampled_from(NEAR_MISSES), st.text(max_size=60))
texts = st.lists(lines, max_size=25).map("\n".join)


def _probe_ids(analyzer: str) -> list[str]:
    ids = [p.id for p in ANALYZERS[analyzer].probes(DiagnosticsConfig())]
    return [*ids, "clock", "dmesg", "du:/", "du_inodes:/", "unit_show", "cert_contents"]


@pytest.mark.parametrize("analyzer", list(ANALYZERS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_garbage_output_gives_findings_not_exceptions(analyzer: str, data: st.DataObject) -> None:
    outputs = {probe_id: data.draw(texts) for probe_id in _probe_ids(analyzer)}
    found = ANALYZERS[analyzer].analyze(
        observe(outputs, baseline=data.draw(st.none() | st.just({"ports": 3})))
    )
    assert all(isinstance(f, Finding) and f.analyzer == analyzer for f in found)


@pytest.mark.parametrize("analyzer", list(ANALYZERS))
def test_no_output_at_all_is_reported_as_unknown(analyzer: str) -> None:
    missing = {
        probe_id: output(probe_id, status="missing", exit_code=127, stderr="env: not found")
        for probe_id in _probe_ids(analyzer)
    }
    found = ANALYZERS[analyzer].analyze(observe(missing))
    # Nothing was observed, so nothing can be called a problem.
    assert all(f.severity in (Severity.OK, Severity.INFO) for f in found)


def test_a_truncated_recording_still_parses_what_is_there() -> None:
    text = recorded("journal_kernel_oom.txt")
    cut = text[: text.index("Memory cgroup out of memory")]
    found = ANALYZERS["memory"].analyze(observe({"kernel_log": cut}))
    [oom] = [f for f in found if "killed" in f.title]
    assert "java" in oom.title
    assert "python3" not in oom.title

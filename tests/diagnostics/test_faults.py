"""Analyzers against real faults created on this machine, diagnosed through the execution path."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tend.diagnostics.analyzers import ANALYZERS
from tend.diagnostics.findings import AnalyzerSpec, Finding, Probe, Severity
from tend.diagnostics.runner import diagnose
from tend.execution.policy import Risk
from tests.conftest import Harness, make_settings, start_harness
from tests.diagnostics.conftest import admin_caller, text_of, write_certificate


def _of(report_findings: list[Finding], analyzer: str) -> list[Finding]:
    return [f for f in report_findings if f.analyzer == analyzer]


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """Mount a small tmpfs (needs root and mount permission; skips otherwise)."""
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tend-test", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.strip()}); the disk analyzer is covered "
            "on a prepared mount table in test_recorded.py"
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _spawn(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )


def _stop(*procs: subprocess.Popen[str]) -> None:
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)


async def test_filesystem_filled_past_95_percent(local: Harness, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "size=4m,nr_inodes=64") as mount:
        (mount / "data").mkdir()
        (mount / "data" / "blob").write_bytes(os.urandom(3_950_000))
        (mount / "many").mkdir()
        for index in range(58):
            (mount / "many" / f"f{index}").touch()
        report = await diagnose(
            local.context.execution, "local", await admin_caller(local), ["disk"]
        )
    found = [f for f in _of(report.findings, "disk") if str(mount) in f.title]
    space = next(f for f in found if f.title.endswith("% full"))
    inodes = next(f for f in found if "inodes" in f.title)
    assert space.severity is Severity.CRITICAL
    assert int(space.title.split(" is ")[1].split(" %")[0]) >= 95
    assert space.evidence[0].startswith("df: tend-test 4096 ")
    listing = space.evidence[
        space.evidence.index(f"largest directories under {mount} by space:") + 1
    ]
    assert listing.split()[-1] == f"{mount}/data"
    assert inodes.severity is Severity.CRITICAL
    assert f"largest directories under {mount} by inodes:" in inodes.evidence
    assert any(line.split()[-1] == f"{mount}/many" for line in inodes.evidence)
    assert report.status is Severity.CRITICAL
    du = next(p for p in report.probes if p.id == f"du:{mount}")
    assert du.argv[-1] == str(mount)
    assert du.status == "ok"


async def test_cpu_hogs_show_up_as_the_top_processes(local: Harness) -> None:
    cpus = os.cpu_count() or 1
    hogs = [_spawn("while True:\n    pass") for _ in range(min(cpus, 8))]
    try:
        await asyncio.sleep(1.0)
        report = await diagnose(
            local.context.execution, "local", await admin_caller(local), ["load"]
        )
    finally:
        _stop(*hogs)
    [load] = _of(report.findings, "load")
    evidence = "\n".join(load.evidence)
    assert any(f"pid {hog.pid} python" in evidence for hog in hogs)
    assert "vmstat over 1 s" in evidence
    if len(hogs) == cpus:  # every CPU is spinning: the sample sees it
        assert load.severity.rank >= Severity.WARNING.rank
        assert "CPU-bound work" in (load.likely_cause or "") or "I/O" in (load.likely_cause or "")
        assert any(
            step.argv[0] == "renice" and step.risk is Risk.CHANGE for step in load.next_steps
        )


async def test_memory_hog_bounded_by_rlimit_is_the_largest_process(local: Harness) -> None:
    size, limit = 384 << 20, 900 << 20
    hog = _spawn(
        "import resource, time\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
        f"data = b'x' * {size}\n"
        "try:\n"
        f"    more = bytearray({limit})\n"
        "    print('unbounded', flush=True)\n"
        "except MemoryError:\n"
        "    print('bounded', flush=True)\n"
        "time.sleep(60)\n"
    )
    try:
        assert hog.stdout is not None
        assert hog.stdout.readline().strip() == "bounded"
        report = await diagnose(
            local.context.execution, "local", await admin_caller(local), ["memory"]
        )
    finally:
        _stop(hog)
    lines = [line for f in _of(report.findings, "memory") for line in f.evidence]
    top = lines.index("largest processes by resident memory:")
    mine = next(line for line in lines[top:] if f"pid {hog.pid} " in line)
    rss = mine.split(" % CPU, ")[1].split(" RSS")[0]
    assert rss.endswith("MiB")
    assert float(rss.split()[0]) >= 384


async def test_zombies_and_the_parent_that_does_not_reap_them(local: Harness) -> None:
    parent = _spawn(
        "import os, time\n"
        "for _ in range(6):\n"
        "    if os.fork() == 0:\n"
        "        os._exit(0)\n"
        "time.sleep(0.3)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "ready"
        report = await diagnose(
            local.context.execution, "local", await admin_caller(local), ["zombies"]
        )
    finally:
        _stop(parent)
    [zombies] = _of(report.findings, "zombies")
    assert zombies.severity.rank >= Severity.WARNING.rank
    line = next(e for e in zombies.evidence if e.startswith(f"parent pid {parent.pid} "))
    assert "has 6 zombie(s)" in line
    risks = {step.argv[0]: step.risk for step in zombies.next_steps}
    assert risks["ps"] is Risk.READ
    assert risks["kill"] is Risk.CHANGE


async def test_a_port_opened_between_two_checks_is_new(local: Harness) -> None:
    execution, caller = local.context.execution, await admin_caller(local)
    first = await diagnose(execution, "local", caller, ["listening_ports"])
    assert "baseline" in first.findings[0].title
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        second = await diagnose(execution, "local", caller, ["listening_ports"])
    [found] = second.findings
    assert "new listening port" in found.title
    line = next(e for e in found.evidence if f"tcp 127.0.0.1:{port}" in e)
    if os.geteuid() == 0:  # ss names other users' processes only for root
        assert f"pid {os.getpid()}" in line
    third = await diagnose(execution, "local", caller, ["listening_ports"])
    assert f"closed since then: tcp 127.0.0.1:{port}" in text_of(third.findings)


async def test_expiring_and_expired_certificates(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    now = datetime.now(UTC)
    write_certificate(
        certs / "live" / "shop" / "fullchain.pem",
        "shop.example.test",
        now + timedelta(days=5, hours=1),
    )
    write_certificate(
        certs / "live" / "shop" / "fullchain.pem", "Test CA", now + timedelta(days=2), ca=True
    )
    write_certificate(
        certs / "old" / "old.crt", "old.example.test", now - timedelta(days=2, hours=1)
    )
    write_certificate(certs / "fine" / "fine.crt", "fine.example.test", now + timedelta(days=90))
    write_certificate(certs / "misc" / "server.pem", "odd.example.test", now + timedelta(days=1))
    settings = make_settings(
        tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'tend.db'}",
        diagnostics_cert_dirs=[str(certs)],
    )
    async with start_harness(settings) as harness:
        report = await diagnose(
            harness.context.execution, "local", await admin_caller(harness), ["certificates"]
        )
        records = await harness.context.execution.audit.query(host="local", limit=1000)
    found = report.findings
    expired, expiring, skipped = found
    assert expired.severity is Severity.CRITICAL
    assert expired.title.startswith("certificate for old.example.test expired 2 day(s) ago")
    assert f"file: {certs}/old/old.crt" in expired.evidence
    assert expiring.severity is Severity.WARNING
    assert expiring.title.startswith("certificate for shop.example.test expires in 5 day(s)")
    assert "names: shop.example.test" in expiring.evidence[1]
    assert expiring.next_steps[0].argv[:2] == ["openssl", "x509"]
    # server.pem may hold a key as far as the policy can tell from its name: never read.
    assert skipped.severity is Severity.INFO
    assert skipped.evidence == [f"{certs}/misc/server.pem"]
    read = [r.argv for r in records if r.event == "run_intent"]
    assert any(f"{certs}/old/old.crt" in argv for argv in read)
    assert not any(any("privkey" in a or "server.pem" in a for a in argv) for argv in read)
    assert "fine.example.test" not in text_of(found)


async def test_one_failing_analyzer_does_not_stop_the_others(
    local: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(_: object) -> list[Finding]:
        raise RuntimeError("parser bug")

    def cannot_plan(_: object) -> list[Probe]:
        raise KeyError("no such setting")

    broken = AnalyzerSpec(
        id="broken", description="always fails", probes=cannot_plan, analyze=explode
    )
    monkeypatch.setitem(ANALYZERS, "broken", broken)
    report = await diagnose(
        local.context.execution, "local", await admin_caller(local), ["broken", "zombies"]
    )
    [failure] = _of(report.findings, "broken")
    assert failure.severity is Severity.INFO
    assert failure.title == "analyzer broken failed: RuntimeError"
    assert failure.evidence == ["parser bug"]
    assert _of(report.findings, "zombies")


async def test_a_probe_the_policy_forbids_is_not_run(tmp_path: Path) -> None:
    rules = tmp_path / "policy.yaml"
    rules.write_text('rules:\n  - id: no-sockets\n    deny: [[ss, "..."]]\n')
    settings = make_settings(
        tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'tend.db'}",
        policy_file=rules,
    )
    async with start_harness(settings) as harness:
        report = await diagnose(
            harness.context.execution, "local", await admin_caller(harness), ["listening_ports"]
        )
        records = await harness.context.execution.audit.query(host="local", limit=100)
    [found] = report.findings
    assert found.severity is Severity.INFO
    assert "was not run: the policy says forbidden" in found.evidence[0]
    [probe] = [p for p in report.probes if p.id == "listening"]
    assert probe.status == "refused"
    assert not any("ss" in r.argv for r in records)

"""The local collector on this machine: every applicable metric, values psutil agrees with, and
real load the test creates (a CPU hog, zombie processes)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tend.execution.targets import HostSnapshot
from tend.monitoring.collectors.local import LocalCollector
from tend.monitoring.collectors.reading import keep_disk
from tend.monitoring.registry import METRICS, Snapshot

LOCAL = HostSnapshot(
    name="local",
    address="127.0.0.1",
    port=22,
    user=None,
    transport="local",
    tags=(),
    key_file=None,
    proxy_jump=None,
    trust_on_first_use=False,
    host_key=None,
)


def systemd_runs() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def labels_of(snapshot: Snapshot, metric: str, label: str) -> set[str]:
    return {dict(s.labels)[label] for s in snapshot.samples if s.metric == metric}


@pytest.fixture
def hog() -> Iterator[subprocess.Popen[bytes]]:
    """A process that burns one core until stopped."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def reboot_flag_present() -> bool:
    return Path("/var/run/reboot-required").exists()


def state_of(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


@pytest.fixture
def zombies() -> Iterator[list[int]]:
    """Three children that exited and are not reaped yet (zombies), reaped afterwards."""
    children = [subprocess.Popen(["true"]) for _ in range(3)]
    try:
        deadline = time.monotonic() + 10
        while any(state_of(c.pid) != "Z" for c in children):
            assert time.monotonic() < deadline, "children did not exit"
            time.sleep(0.02)
        yield [c.pid for c in children]
    finally:
        for child in children:
            child.wait(timeout=10)


async def test_every_applicable_metric_on_the_first_collection() -> None:
    snapshot = await LocalCollector().collect(LOCAL)

    assert snapshot.error is None
    assert snapshot.host == "local"
    expected = set(METRICS)
    if not systemd_runs():
        expected.discard("systemd_failed_units")
    if not [d for d in psutil.disk_io_counters(perdisk=True) if keep_disk(d)]:
        expected -= {"disk_read_bytes_per_second", "disk_write_bytes_per_second"}
    assert {s.metric for s in snapshot.samples} == expected
    for sample in snapshot.samples:
        assert sample.value >= 0, sample
        if METRICS[sample.metric].unit == "percent":
            assert sample.value <= 100, sample
    assert snapshot.value("host_up") == 1


async def test_values_agree_with_psutil_and_the_kernel() -> None:
    snapshot = await LocalCollector().collect(LOCAL)

    assert snapshot.value("memory_total_bytes") == psutil.virtual_memory().total
    assert snapshot.value("swap_total_bytes") == psutil.swap_memory().total
    assert snapshot.value("cpu_count") == psutil.cpu_count()
    cores = labels_of(snapshot, "cpu_core_usage_percent", "cpu")
    assert cores == {str(i) for i in range(len(psutil.cpu_times(percpu=True)))}
    uptime = time.time() - psutil.boot_time()
    assert abs((snapshot.value("uptime_seconds") or 0) - uptime) < 60
    load1, _, _ = os.getloadavg()
    assert abs((snapshot.value("load1") or 0) - load1) < 5
    root = os.statvfs("/")
    assert snapshot.value("filesystem_size_bytes", mount="/") == root.f_blocks * root.f_frsize
    assert "/proc" not in labels_of(snapshot, "filesystem_size_bytes", "mount")
    assert labels_of(snapshot, "network_receive_bytes_per_second", "interface") >= {"lo"}
    assert abs((snapshot.value("processes_total") or 0) - len(psutil.pids())) < 50
    assert snapshot.value("reboot_required") == float(reboot_flag_present())
    if not systemd_runs():
        assert "failed_units" not in snapshot.info


async def test_a_cpu_hog_shows_in_cpu_usage_and_tops_the_process_list(
    hog: subprocess.Popen[bytes],
) -> None:
    collector = LocalCollector()
    await collector.collect(LOCAL)
    await asyncio.sleep(1.0)
    snapshot = await collector.collect(LOCAL)

    # One busy core out of N is at least ~100/N % of the whole machine (other work only adds).
    assert (snapshot.value("cpu_usage_percent") or 0) >= 80 / psutil.cpu_count()
    assert max(s.value for s in snapshot.samples if s.metric == "cpu_core_usage_percent") >= 40
    top = {entry["pid"]: entry for entry in snapshot.info["top_cpu"]}
    assert hog.pid in top
    assert top[hog.pid]["cpu_percent"] >= 20  # a whole core when alone; less on a busy machine
    assert top[hog.pid]["user"] == psutil.Process(hog.pid).username()
    assert top[hog.pid]["memory_bytes"] > 0


async def test_zombie_processes_are_counted(zombies: list[int]) -> None:
    snapshot = await LocalCollector().collect(LOCAL)
    assert (snapshot.value("processes_zombie") or 0) >= len(zombies)
    shown = {e["pid"] for e in snapshot.info["top_cpu"] + snapshot.info["top_memory"]}
    assert not shown & set(zombies)


async def test_top_memory_is_ordered_and_complete() -> None:
    snapshot = await LocalCollector().collect(LOCAL)
    top = snapshot.info["top_memory"]
    assert 0 < len(top) <= 5
    for entry in top:
        assert set(entry) == {"pid", "name", "user", "cpu_percent", "memory_bytes"}
        assert entry["user"] != "?" or not psutil.pid_exists(entry["pid"])
    sizes = [entry["memory_bytes"] for entry in top]
    assert sizes == sorted(sizes, reverse=True)
    largest = max(p.info["memory_info"].rss for p in psutil.process_iter(["memory_info"]))
    assert sizes[0] >= largest * 0.8


async def test_the_event_loop_keeps_running_during_a_collection() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    try:
        # The first collection waits a short baseline between two readings, in a thread.
        await LocalCollector().collect(LOCAL)
    finally:
        task.cancel()
    assert ticks >= 5

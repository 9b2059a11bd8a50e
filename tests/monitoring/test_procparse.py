"""The remote probe's parsers against output recorded on a real machine, and against garbage.

The fixtures in tests/fixtures/proc were recorded by ``record.py`` there: the probe run twice,
one second apart, on a 2-CPU VM with a tmpfs and a loop-mounted ext4 (its mount point holds a
space) added for the recording; ``facts.json`` is what psutil saw at the same time.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tend.monitoring.collectors.compute import build_snapshot
from tend.monitoring.collectors.probe import END, MARKER, SECTIONS
from tend.monitoring.collectors.procparse import (
    parse_df,
    parse_keyed,
    parse_probe,
    parse_reboot,
    parse_stat,
    parse_systemd,
    split_sections,
)
from tend.monitoring.registry import METRICS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "proc"
FIRST = (FIXTURES / "probe-1.txt").read_text()
SECOND = (FIXTURES / "probe-2.txt").read_text()
FACTS: dict[str, Any] = json.loads((FIXTURES / "facts.json").read_text())
AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
OPTIONAL = {"conf", "users"}  # defaults apply when these are missing or odd


def replace_section(text: str, name: str, body: str) -> str:
    """The probe output with one section's body replaced."""
    pattern = re.compile(
        rf"(^{re.escape(MARKER + name)}\n)(.*?)(?=^{re.escape(MARKER)})", re.M | re.S
    )
    replaced, count = pattern.subn(lambda m: m.group(1) + body, text)
    assert count == 1, name
    return replaced


def test_the_recorded_output_parses_whole_and_agrees_with_psutil() -> None:
    reading = parse_probe(FIRST, clock=100.0)

    assert reading.errors == {}
    assert reading.cpu_count == FACTS["cpu_count"] == len(reading.cores)
    assert sorted(reading.cores) == [str(i) for i in range(FACTS["cpu_count"])]
    assert reading.memory_total == FACTS["memory_total"]
    assert reading.swap_total == FACTS["swap_total"]
    assert reading.boot_id == FACTS["boot_id"]
    assert sorted(reading.interfaces) == FACTS["interfaces"]
    assert sorted(reading.disks) == FACTS["disks"]
    filesystems = {fs.mount: fs for fs in reading.filesystems}
    assert sorted(filesystems) == sorted(FACTS["filesystems"])
    assert "/tmp/tend-rec/data dir" in filesystems  # \040 in /proc/mounts, a space in df
    for mount, fact in FACTS["filesystems"].items():
        assert filesystems[mount].size_bytes == fact["size_bytes"]
        assert filesystems[mount].inodes_total == fact["inodes_total"]
        assert abs(filesystems[mount].avail_bytes - fact["avail_bytes"]) <= 64 * 1024**2
    assert filesystems["/tmp/tend-rec/scratch"].fstype == "tmpfs"
    assert filesystems["/tmp/tend-rec/scratch"].used_bytes >= 38 * 1024**2  # the 40 MB file
    assert reading.load is not None
    assert reading.uptime is not None
    assert reading.uptime > 0
    assert reading.failed_units is None  # the recording machine does not run systemd
    assert reading.reboot_required is False
    processes = {p.pid: p for p in reading.processes or []}
    assert processes[1].ppid == 0
    assert processes[1].user == "root"
    assert any(p.rss_bytes > 0 for p in processes.values())
    assert all(p.cpu_seconds >= 0 and p.started >= 0 for p in processes.values())


def test_two_recorded_rounds_give_every_rate_and_sane_percentages() -> None:
    before, after = parse_probe(FIRST, clock=100.0), parse_probe(SECOND, clock=101.0)
    snapshot = build_snapshot("h", AT, after, before)

    assert snapshot.error is None
    metrics = {s.metric for s in snapshot.samples}
    expected = set(METRICS) - {"systemd_failed_units", "host_up"}
    assert metrics == expected
    for sample in snapshot.samples:
        assert sample.value >= 0, sample
        if METRICS[sample.metric].unit == "percent":
            assert sample.value <= 100, sample
    rates = {s.labels for s in snapshot.samples if s.metric == "network_receive_bytes_per_second"}
    assert {dict(labels)["interface"] for labels in rates} == set(FACTS["interfaces"])
    cores = {s.labels for s in snapshot.samples if s.metric == "cpu_core_usage_percent"}
    assert len(cores) == FACTS["cpu_count"]
    assert snapshot.value("processes_total") == len(after.processes or [])
    for key in ("top_cpu", "top_memory"):
        top = snapshot.info[key]
        assert 0 < len(top) <= 5
        assert set(top[0]) == {"pid", "name", "user", "cpu_percent", "memory_bytes"}
    memory = [entry["memory_bytes"] for entry in snapshot.info["top_memory"]]
    assert memory == sorted(memory, reverse=True)
    assert memory[0] == max(p.rss_bytes for p in after.processes or [])


def test_the_first_round_has_values_but_no_rates() -> None:
    snapshot = build_snapshot("h", AT, parse_probe(FIRST, clock=1.0), None)
    metrics = {s.metric for s in snapshot.samples}
    assert "memory_total_bytes" in metrics
    assert "filesystem_used_percent" in metrics
    assert not {m for m in metrics if m.endswith("_per_second") or m.startswith("cpu_usage")}


def test_a_counter_that_went_backwards_gives_no_rate_for_that_round() -> None:
    lo = re.search(r"^ *lo:.*$", SECOND, re.M)
    assert lo is not None
    reset = SECOND.replace(lo.group(0), "    lo: " + " ".join(["0"] * 16))
    snapshot = build_snapshot("h", AT, parse_probe(reset, 2.0), parse_probe(FIRST, 1.0))
    interfaces = {
        dict(s.labels)["interface"]
        for s in snapshot.samples
        if s.metric == "network_receive_bytes_per_second"
    }
    assert "lo" not in interfaces
    assert interfaces == set(FACTS["interfaces"]) - {"lo"}


def test_a_reboot_between_rounds_drops_every_rate() -> None:
    rebooted = SECOND.replace(FACTS["boot_id"], "00000000-1111-2222-3333-444444444444")
    snapshot = build_snapshot("h", AT, parse_probe(rebooted, 2.0), parse_probe(FIRST, 1.0))
    assert not [s for s in snapshot.samples if s.metric.endswith("_per_second")]
    assert snapshot.value("cpu_usage_percent") is None
    assert snapshot.value("memory_total_bytes") == FACTS["memory_total"]


@pytest.mark.parametrize("section", [name for name, _ in SECTIONS if name not in OPTIONAL])
def test_garbage_in_one_section_is_an_error_for_that_section_only(section: str) -> None:
    broken = replace_section(FIRST, section, "garbage \x00 ### -1 nan\nmore: junk here\n")
    reading = parse_probe(broken, clock=1.0)
    assert set(reading.errors) == {section}
    snapshot = build_snapshot("h", AT, reading, None)
    assert snapshot.error is not None
    assert snapshot.error.startswith(f"{section}: ")
    if section != "meminfo":
        assert snapshot.value("memory_total_bytes") == FACTS["memory_total"]


def test_numbers_the_kernel_never_prints_are_refused() -> None:
    for body in ("nan 0.1 0.2 1/100 5", "-1 0.1 0.2 1/100 5", "1e3 0.1 0.2 1/100 5", "0.1 0.2"):
        reading = parse_probe(replace_section(FIRST, "loadavg", body + "\n"), 1.0)
        assert "loadavg" in reading.errors, body
        assert reading.load is None


def test_output_cut_anywhere_never_raises_and_says_so() -> None:
    for cut in range(0, len(FIRST) - 20, 311):
        reading = parse_probe(FIRST[:cut], clock=1.0)
        assert "output" in reading.errors
        build_snapshot("h", AT, reading, parse_probe(FIRST, 0.5))


def test_df_that_printed_nothing_is_reported() -> None:
    reading = parse_probe(replace_section(FIRST, "df", ""), 1.0)
    assert set(reading.errors) == {"df"}
    assert "no df header" in reading.errors["df"]


def test_a_missing_section_is_reported() -> None:
    without = replace_section(FIRST, "df", "").replace(f"{MARKER}df\n", "")
    reading = parse_probe(without, 1.0)
    assert reading.errors == {"df": "missing from the output"}
    assert reading.filesystems == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_any_text_at_all_never_raises(text: str) -> None:
    reading = parse_probe(text, clock=1.0)
    assert reading.errors
    build_snapshot("h", AT, reading, None)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([name for name, _ in SECTIONS]),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=400),
)
def test_any_text_in_any_section_never_raises(section: str, body: str) -> None:
    body = "\n".join(line for line in body.splitlines() if not line.startswith(MARKER))
    reading = parse_probe(replace_section(FIRST, section, body + "\n"), clock=1.0)
    build_snapshot("h", AT, reading, parse_probe(FIRST, 0.5))


def test_split_sections_knows_whether_the_output_is_whole() -> None:
    sections, whole = split_sections(FIRST)
    assert whole
    assert set(sections) == {name for name, _ in SECTIONS}
    assert not split_sections(FIRST.replace(f"{MARKER}{END}", ""))[1]


def test_failed_units_with_and_without_bullets() -> None:
    text = (
        "systemd\n"
        "\u25cf nginx.service   loaded failed failed A high performance web server\n"
        "backup.timer loaded failed failed Nightly backup\n"
    )
    assert parse_systemd(text) == ["nginx.service", "backup.timer"]
    assert parse_systemd("systemd\n") == []
    assert parse_systemd("") is None


def test_reboot_required_with_its_packages() -> None:
    assert parse_reboot("required\nlinux-image-6.1.0-27-amd64\nlibc6\nlibc6\n") == (
        True,
        ["libc6", "linux-image-6.1.0-27-amd64"],
    )
    assert parse_reboot("") == (False, [])


def test_an_old_kernel_without_memavailable_or_steal() -> None:
    meminfo = parse_keyed("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n")
    assert meminfo["MemTotal"] == 1024000
    old = replace_section(FIRST, "meminfo", "MemTotal: 1000 kB\nMemFree: 100 kB\nCached: 250 kB\n")
    reading = parse_probe(old, 1.0)
    assert reading.memory_available == 350 * 1024
    total, cores = parse_stat("cpu 10 0 5 100\ncpu0 10 0 5 100\n")
    assert total.steal == 0
    assert total.total == 115
    assert list(cores) == ["0"]


def test_df_without_inode_counts() -> None:
    rows = parse_df("Filesystem Inodes IUsed IFree IUse% Mounted on\nbtrfs - - - - /data\n")
    assert rows == {"/data": (0, 0, 0)}

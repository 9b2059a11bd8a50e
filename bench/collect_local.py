#!/usr/bin/env python3
"""Benchmark: CPU seconds to collect the local host every 1 s — tend vs Glances vs node_exporter.

Per round, three collectors run side by side on this machine for ``--seconds`` (60) after a
``--warmup`` (10 s, excluded: interpreter start, imports, first readings):

- **tend**: ``LocalCollector().collect(host)`` every ``--interval`` (1 s) in a process of its
  own (this script with ``--tend-worker``), nothing else in that process;
- **Glances**: ``glances --quiet -t 1 --disable-check-update`` (standalone, no display, no
  export: it updates every enabled plugin each refresh, which is all it does);
- **node_exporter**: ``prometheus-node-exporter --web.listen-address 127.0.0.1:PORT`` (default
  collectors) scraped every ``--interval`` by a small client (this script with
  ``--scrape-worker``, urllib, body read and counted, not parsed).

CPU = user + system time from ``/proc/PID/stat`` of the process and its live descendants, plus
the time of children it has reaped, read at the start and at the end of the window. The ratio
of the targets uses node_exporter's own CPU; the scraper's CPU is shown on its own row (a real
Prometheus would also spend CPU to scrape, and parse). Each round checks every collector did its
work (tend: ~one collection per interval without errors; node_exporter: every scrape 200;
Glances: still running). It prints medians over rounds with min-max, the ratios
tend/Glances (target <= 1) and tend/node_exporter (target <= 2), writes JSON, stops everything
it started and exits by itself.

Usage::

    .venv/bin/python bench/collect_local.py [--seconds 60] [--rounds 3] [--interval 1]
        [--warmup 10] [--sequential] [--json-out bench/results/collect_local.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tend.execution.targets import HostSnapshot
from tend.monitoring.collectors.local import LocalCollector

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON_OUT = BENCH_DIR / "results" / "collect_local.json"
GLANCES = Path(sys.executable).parent / "glances"
NODE_EXPORTER = Path("/usr/bin/prometheus-node-exporter")
TICKS = os.sysconf("SC_CLK_TCK")
STOP_GRACE = 10.0
READY_LIMIT = 30.0
SYSTEMS = ("tend", "glances", "node_exporter", "scraper")
LABELS = {
    "tend": "tend LocalCollector",
    "glances": "glances -q -t 1",
    "node_exporter": "node_exporter",
    "scraper": "(node_exporter scraper)",
}


class BenchError(Exception):
    """A collector did not do its work (no trustworthy sample)."""


# --------------------------------------------------------------------------- workers


def write_report(path: Path, counts: dict[str, Any]) -> None:
    path.write_text(json.dumps(counts))


def tend_worker(interval: float, report: Path) -> None:
    """Collect the local host every ``interval`` until SIGTERM; write counts to ``report``."""
    host = HostSnapshot("local", "127.0.0.1", 22, None, "local", (), None, None, False, None)

    async def loop() -> None:
        collector = LocalCollector()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        counts: dict[str, Any] = {"collections": 0, "errors": 0, "samples": 0, "last_error": None}
        next_at = time.monotonic()
        while not stop.is_set():
            snapshot = await collector.collect(host)
            counts["collections"] += 1
            counts["samples"] = len(snapshot.samples)
            if snapshot.error:
                counts["errors"] += 1
                counts["last_error"] = snapshot.error
            write_report(report, counts)
            next_at += interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))

    asyncio.run(loop())


def scrape_worker(url: str, interval: float, report: Path) -> None:
    """GET ``url`` every ``interval`` until SIGTERM; write counts to ``report``."""
    stop = False

    def on_term(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    counts: dict[str, Any] = {"scrapes": 0, "failures": 0, "bytes": 0}
    next_at = time.monotonic()
    while not stop:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                counts["bytes"] = len(response.read())
                counts["scrapes"] += 1
        except OSError:
            counts["failures"] += 1
        write_report(report, counts)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


# --------------------------------------------------------------------------- CPU accounting


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, its live descendants and the children it reaped."""
    total = 0.0
    for index, each in enumerate([pid, *descendants(pid)]):
        fields = _stat_fields(each)
        if fields is None:
            continue
        # utime stime cutime cstime are fields 14-17 (11-14 after the state)
        total += sum(int(v) for v in fields[11:13])
        if index == 0:
            total += sum(int(v) for v in fields[13:15])
    return total / TICKS


# --------------------------------------------------------------------------- subjects


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Subject:
    """One collector process (and what checks it did its work)."""

    name: str
    argv: list[str]
    workdir: Path
    report: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.workdir / f"{self.name}.log"

    def start(self) -> None:
        env = dict(os.environ, HOME=str(self.workdir))  # no user config for glances
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.workdir,
                env=env,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu(self) -> float:
        assert self.proc is not None
        if not self.alive():
            raise BenchError(f"{self.name} exited early: {self.log.read_text()[-2000:]}")
        return cpu_seconds(self.proc.pid)

    def counts(self) -> dict[str, Any]:
        if self.report is None or not self.report.exists():
            return {}
        with contextlib.suppress(ValueError):
            return dict(json.loads(self.report.read_text()))
        return {}

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_GRACE)


def subjects(args: argparse.Namespace, workdir: Path) -> dict[str, Subject]:
    me = [sys.executable, str(Path(__file__).resolve())]
    interval = str(args.interval)
    port = free_port()
    textfiles = workdir / "textfile"
    textfiles.mkdir(exist_ok=True)
    return {
        "tend": Subject(
            "tend",
            [*me, "--tend-worker", "--interval", interval, "--report", str(workdir / "tend.json")],
            workdir,
            report=workdir / "tend.json",
        ),
        "glances": Subject(
            "glances",
            [str(GLANCES), "--quiet", "-t", interval, "--disable-check-update"],
            workdir,
        ),
        "node_exporter": Subject(
            "node_exporter",
            [
                str(NODE_EXPORTER),
                f"--web.listen-address=127.0.0.1:{port}",
                f"--collector.textfile.directory={textfiles}",
            ],
            workdir,
        ),
        "scraper": Subject(
            "scraper",
            [
                *me,
                "--scrape-worker",
                f"http://127.0.0.1:{port}/metrics",
                "--interval",
                interval,
                "--report",
                str(workdir / "scraper.json"),
            ],
            workdir,
            report=workdir / "scraper.json",
        ),
    }


def wait_listening(port_url: str) -> None:
    deadline = time.monotonic() + READY_LIMIT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(port_url, timeout=2):
            return
        time.sleep(0.1)
    raise BenchError(f"node_exporter did not answer on {port_url} within {READY_LIMIT} s")


def measure(group: list[Subject], args: argparse.Namespace) -> dict[str, float]:
    """Start the group, skip the warm-up, measure the window, stop; CPU seconds per subject."""
    try:
        for subject in group:
            if subject.name == "scraper":
                wait_listening(subject.argv[subject.argv.index("--scrape-worker") + 1])
            subject.start()
        time.sleep(args.warmup)
        before = {s.name: s.cpu() for s in group}
        counts_before = {s.name: s.counts() for s in group}
        time.sleep(args.seconds)
        after = {s.name: s.cpu() for s in group}
        counts_after = {s.name: s.counts() for s in group}
    finally:
        for subject in group:
            subject.stop()
    check(counts_before, counts_after, args)
    return {name: after[name] - before[name] for name in after}


def check(before: dict[str, Any], after: dict[str, Any], args: argparse.Namespace) -> None:
    expected = args.seconds / args.interval
    if "tend" in after:
        done = after["tend"].get("collections", 0) - before["tend"].get("collections", 0)
        if done < 0.9 * expected or after["tend"].get("errors"):
            raise BenchError(f"tend collected {done} times (want ~{expected:.0f}): {after['tend']}")
    if "scraper" in after:
        done = after["scraper"].get("scrapes", 0) - before["scraper"].get("scrapes", 0)
        if done < 0.9 * expected or after["scraper"].get("failures"):
            raise BenchError(f"{done} scrapes (want ~{expected:.0f}): {after['scraper']}")


# --------------------------------------------------------------------------- report


def version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def node_exporter_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            [str(NODE_EXPORTER), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return (out.stdout or out.stderr).splitlines()[0]
    return "unknown"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def summary(values: list[float]) -> dict[str, float | int]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def print_report(result: dict[str, Any]) -> None:
    cfg, stats = result["config"], result["summary"]
    print()
    print(
        f"benchmark : CPU seconds to collect the local host every {cfg['interval']:g} s "
        f"for {cfg['seconds']:g} s ({cfg['mode']}, after {cfg['warmup']:g} s warm-up)"
    )
    print(f"rounds    : {cfg['rounds']}; medians (min-max) over rounds")
    print(f"machine   : {result['machine']}")
    print(f"versions  : {result['versions']}")
    print(f"date      : {result['date']}")
    print()
    collections = cfg["seconds"] / cfg["interval"]
    print("system                  | CPU s median (min-max)   | per collection | rounds")
    print("------------------------+--------------------------+----------------+-------")
    for name in SYSTEMS:
        s = stats[name]
        span = f"{s['median']:.3f} ({s['min']:.3f}-{s['max']:.3f})"
        per = f"{1000 * s['median'] / collections:.2f} ms"
        print(f"{LABELS[name]:<23} | {span:<24} | {per:<14} | {s['n']}")
    print()
    print("ratio of medians        | value | target | met")
    print("------------------------+-------+--------+----")
    for row in result["ratios"]:
        mark = "yes" if row["met"] else "NO"
        print(f"{row['ratio']:<23} | {row['value']:.2f}x | <= {row['target']:g}x  | {mark}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    samples: dict[str, list[float]] = {name: [] for name in SYSTEMS}
    with tempfile.TemporaryDirectory(prefix="tend-bench-collect-") as tmp:
        for number in range(1, args.rounds + 1):
            workdir = Path(tmp) / f"round{number}"
            workdir.mkdir()
            every = subjects(args, workdir)
            groups = (
                [[every["tend"]], [every["glances"]], [every["node_exporter"], every["scraper"]]]
                if args.sequential
                else [list(every.values())]
            )
            print(f"round {number}/{args.rounds}", flush=True)
            for group in groups:
                for name, value in measure(group, args).items():
                    samples[name].append(value)
                    print(f"  {LABELS[name]:<23} {value:7.3f} s CPU", flush=True)
    stats = {name: summary(values) for name, values in samples.items()}
    tend = stats["tend"]["median"]
    ratios = [
        ("tend / glances", tend / stats["glances"]["median"], 1.0),
        ("tend / node_exporter", tend / stats["node_exporter"]["median"], 2.0),
    ]
    return {
        "config": {
            "seconds": args.seconds,
            "interval": args.interval,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "mode": "one after another" if args.sequential else "side by side",
        },
        "machine": (
            f"{os.cpu_count()} CPUs, {cpu_model()}, {platform.system()} {platform.release()}, "
            f"load {[round(x, 2) for x in os.getloadavg()]} and "
            f"{sum(e.isdigit() for e in os.listdir('/proc'))} processes at the end"
        ),
        "versions": (
            f"tend {version_of('tend')} (psutil {version_of('psutil')}), glances "
            f"{version_of('glances')}, {node_exporter_version()}, python "
            f"{platform.python_version()}"
        ),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "samples": samples,
        "summary": stats,
        "ratios": [
            {"ratio": name, "value": value, "target": target, "met": value <= target}
            for name, value, target in ratios
        ],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window per round")
    parser.add_argument("--interval", type=float, default=1.0, help="collection interval, s")
    parser.add_argument("--warmup", type=float, default=10.0, help="excluded start, s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sequential", action="store_true", help="one collector at a time")
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON_OUT)
    parser.add_argument("--tend-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scrape-worker", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (1 <= args.seconds <= 3600 and 0.1 <= args.interval <= 60 and 1 <= args.rounds <= 20):
        parser.error("--seconds must be 1-3600, --interval 0.1-60, --rounds 1-20")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.tend_worker:
        tend_worker(args.interval, args.report)
        return 0
    if args.scrape_worker:
        scrape_worker(args.scrape_worker, args.interval, args.report)
        return 0
    missing = [str(p) for p in (GLANCES, NODE_EXPORTER) if not p.is_file()]
    if missing:
        print(f"collect_local: missing {', '.join(missing)}; install with:", file=sys.stderr)
        print(f"  {sys.executable} -m pip install glances", file=sys.stderr)
        print("  sudo apt-get install -y prometheus-node-exporter", file=sys.stderr)
        return 2
    if shutil.which("systemctl") and Path("/run/systemd/system").is_dir():
        print("collect_local: note: systemd runs here; tend spawns systemctl every 15 s")
    started = time.monotonic()
    try:
        result = run(args)
    except BenchError as exc:
        print(f"collect_local: FAILED: {exc}", file=sys.stderr)
        return 1
    result["elapsed_seconds"] = round(time.monotonic() - started, 1)
    print_report(result)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nJSON: {args.json_out}  (took {result['elapsed_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

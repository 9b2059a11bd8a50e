#!/usr/bin/env python3
"""Benchmark: ``uptime`` on N SSH hosts in one run — tend fan-out vs Ansible vs parallel-ssh.

It starts N real OpenSSH servers on loopback (``bench/sshd_fleet.py``: 127.0.1.X:2222) and times
one run of ``uptime`` on all of them with:

- **tend cold**: ``POST /api/v1/runs {"argv": ["uptime"], "targets": ["tag:bench"]}`` through an
  in-process httpx ``ASGITransport`` client into ``tend.app.create_app`` (auth, policy, audit
  intents and results, fan-out, pooled asyncssh), on a freshly started app whose SSH pool is
  empty, so every host needs a new TCP connection and SSH handshake;
- **tend warm**: the same request repeated right after, on the same open pool;
- **Ansible**: ``ansible all -i INVENTORY -m command -a uptime -f N`` (pipelining on,
  ControlMaster off), wall clock of the whole command;
- **parallel-ssh**: ``ParallelSSHClient(...).run_command('uptime')`` + ``join()`` + reading every
  output, new client (and new worker process) each round, timed inside the worker.

Rounds are interleaved (tend cold, tend warm x W, Ansible, parallel-ssh, then again) after one
discarded warm-up round. It prints medians with min-max and the ratios the targets are about,
writes JSON, stops every process it started and exits by itself.

Usage::

    .venv/bin/python bench/fanout.py [--hosts 50] [--rounds 5] [--warm-runs 3] [--warmup 1]
        [--json-out bench/results/fanout.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from sshd_fleet import INSTALL_HINT, SSHD, Fleet, FleetError, sshd_available, sshd_fleet
from tend.app import create_app
from tend.auth.models import Role
from tend.auth.service import get_user
from tend.auth.tokens import create_token
from tend.settings import Settings

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON_OUT = BENCH_DIR / "results" / "fanout.json"
VENV_BIN = Path(sys.executable).parent
ANSIBLE = VENV_BIN / "ansible"
PEER_INSTALL = f"{sys.executable} -m pip install ansible-core parallel-ssh"

TAG = "bench"
RUN_TIMEOUT = 30  # per-host timeout in the run request, s
TEND_REQUEST_TIMEOUT = 120.0
ANSIBLE_TIMEOUT = 300.0
PSSH_TIMEOUT = 120.0
SYSTEMS = ("tend_cold", "tend_warm", "ansible", "pssh")
LABELS = {
    "tend_cold": "tend cold",
    "tend_warm": "tend warm",
    "ansible": "ansible",
    "pssh": "parallel-ssh",
}
ANSIBLE_OK = re.compile(r"^\S+ \| (CHANGED|SUCCESS) \| rc=0 >>", re.MULTILINE)


class BenchError(Exception):
    """A system did not produce a trustworthy sample (wrong output, failure, timeout)."""


# --------------------------------------------------------------------------- machine and versions


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def openssh_version() -> str:
    for argv in ([str(SSHD), "-V"], ["ssh", "-V"]):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
            text = (out.stderr or out.stdout).strip()
            if text.startswith("OpenSSH"):
                return text.splitlines()[0]
    return "unknown"


def versions() -> dict[str, str]:
    return {
        "tend": version_of("tend"),
        "asyncssh": version_of("asyncssh"),
        "ansible-core": version_of("ansible-core"),
        "parallel-ssh": version_of("parallel-ssh"),
        "ssh2-python": version_of("ssh2-python"),
        "openssh": openssh_version(),
        "python": platform.python_version(),
    }


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "kernel": f"{platform.system()} {platform.release()}",
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def missing_peers() -> list[str]:
    missing = []
    if not ANSIBLE.is_file():
        missing.append(f"ansible ({ANSIBLE})")
    if importlib.util.find_spec("pssh") is None:
        missing.append("parallel-ssh (module pssh)")
    return missing


# --------------------------------------------------------------------------- tend, in process


@dataclass
class TendBench:
    """tend's real execution path in this process: app, lifespan, ASGI client, SSH pool."""

    fleet: Fleet
    workdir: Path
    token: str = ""
    settings: Settings | None = None

    def __post_init__(self) -> None:
        self.settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=self.workdir / "tend-data",
            database_url=None,
            ssh_key_file=self.fleet.client_key,
            fanout_concurrency=len(self.fleet.servers),
            access_log=False,
            log_level="WARNING",
            password_hash_memory_kib=1024,
            password_hash_time_cost=1,
        )

    def _client(self, app: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://tend.bench",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=TEND_REQUEST_TIMEOUT,
        )

    async def setup(self) -> None:
        """First start (admin created, its password swallowed), an API token, the hosts."""
        app = create_app(self.settings)
        first_start = io.StringIO()
        with contextlib.redirect_stderr(first_start):
            lifespan = app.router.lifespan_context(app)
            await lifespan.__aenter__()
        try:
            if "password: " not in first_start.getvalue():
                raise BenchError("the first start did not create the admin user")
            async with app.state.context.database.session() as session:
                admin = await get_user(session, "admin")
                _, self.token = await create_token(
                    session, admin, name="bench", expires_in_days=1, role=None, ceiling=Role.ADMIN
                )
            async with self._client(app) as client:
                for server in self.fleet.servers:
                    response = await client.post(
                        "/api/v1/hosts",
                        json={
                            "name": server.name,
                            "address": server.address,
                            "port": server.port,
                            "user": "root",
                            "tags": [TAG],
                            "key_file": str(self.fleet.client_key),
                            "host_key": server.host_key,
                        },
                    )
                    if response.status_code != 201:
                        raise BenchError(f"creating host {server.name}: {response.text}")
        finally:
            await lifespan.__aexit__(None, None, None)

    async def _run(self, client: httpx.AsyncClient) -> float:
        body = {"argv": ["uptime"], "targets": [f"tag:{TAG}"], "timeout": RUN_TIMEOUT}
        start = time.perf_counter()
        response = await client.post("/api/v1/runs", json=body)
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise BenchError(f"tend run: HTTP {response.status_code}: {response.text[:500]}")
        results = response.json()["results"]
        bad = [r for r in results if r["status"] != "ok" or "load average" not in r["stdout"]]
        if len(results) != len(self.fleet.servers) or bad:
            detail = bad[0] if bad else f"{len(results)} results"
            raise BenchError(f"tend run: not all hosts ok: {detail}")
        return elapsed

    async def cycle(self, warm_runs: int) -> tuple[float, list[float]]:
        """A new app (empty SSH pool): one cold run, then ``warm_runs`` runs on the open pool."""
        hosts = len(self.fleet.servers)
        app = create_app(self.settings)
        async with app.router.lifespan_context(app), self._client(app) as client:
            # Untimed: opens the database connection and walks the auth path once.
            response = await client.get("/api/v1/hosts")
            if response.status_code != 200:
                raise BenchError(f"tend warm-up request: HTTP {response.status_code}")
            pool = app.state.context.execution.transports.pool
            if pool.stats().connects != 0:
                raise BenchError("the SSH pool of a new app is not empty")
            cold = await self._run(client)
            stats = pool.stats()
            if stats.connects != hosts or stats.open_connections != hosts:
                raise BenchError(f"cold run: expected {hosts} new connections, pool has {stats}")
            warm = [await self._run(client) for _ in range(warm_runs)]
            stats = pool.stats()
            if stats.connects != hosts or stats.reconnects != 0:
                raise BenchError(f"warm runs opened new connections: {stats}")
        return cold, warm


# --------------------------------------------------------------------------- Ansible


@dataclass
class AnsibleBench:
    """``ansible all -m command -a uptime -f N`` as a subprocess, timed wall clock."""

    fleet: Fleet
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        home = self.workdir / "ansible"
        for sub in ("local-tmp", "home"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        config = home / "ansible.cfg"
        config.write_text("[defaults]\n")
        # Replaces ansible's default "-C -o ControlMaster=auto -o ControlPersist=60s": every run
        # opens new connections. (No "ControlPersist=no": ansible treats any mention of
        # ControlPersist as persistence on and adds a ControlPath.)
        ssh_args = (
            "-o ControlMaster=no "
            f"-o UserKnownHostsFile={self.fleet.known_hosts} -o StrictHostKeyChecking=yes"
        )
        self.env = {
            **os.environ,
            "LC_ALL": "C.UTF-8",
            "ANSIBLE_CONFIG": str(config),
            "ANSIBLE_HOME": str(home / "home"),
            "ANSIBLE_LOCAL_TEMP": str(home / "local-tmp"),
            "ANSIBLE_REMOTE_TEMP": str(home / "remote-tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(home / "cp"),
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_SSH_ARGS": ssh_args,
            "ANSIBLE_PRIVATE_KEY_FILE": str(self.fleet.client_key),
            "ANSIBLE_REMOTE_USER": "root",
            "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
            "ANSIBLE_GATHERING": "explicit",
            "ANSIBLE_TIMEOUT": "30",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        }

    def argv(self) -> list[str]:
        hosts = str(len(self.fleet.servers))
        inventory = str(self.fleet.ansible_inventory)
        return [str(ANSIBLE), "all", "-i", inventory, "-m", "command", "-a", "uptime", "-f", hosts]

    def run(self) -> float:
        start = time.perf_counter()
        out, err, code = run_bounded(self.argv(), self.env, ANSIBLE_TIMEOUT)
        elapsed = time.perf_counter() - start
        ok = len(ANSIBLE_OK.findall(out))
        if code != 0 or ok != len(self.fleet.servers):
            tail = (out + err).strip()[-800:]
            raise BenchError(f"ansible: exit {code}, {ok} hosts ok: {tail}")
        return elapsed


# --------------------------------------------------------------------------- parallel-ssh


def pssh_worker(hosts_file: Path, key: Path) -> None:
    """In a child process (gevent stays out of the asyncio one): time one run, print JSON."""
    from pssh.clients import ParallelSSHClient  # noqa: PLC0415 - gevent only in the worker
    from pssh.config import HostConfig  # noqa: PLC0415

    endpoints = [line.split() for line in hosts_file.read_text().splitlines() if line.strip()]
    hosts = [address for address, _ in endpoints]
    config = [HostConfig(port=int(port)) for _, port in endpoints]
    start = time.perf_counter()
    client = ParallelSSHClient(
        hosts,
        user="root",
        pkey=str(key),
        host_config=config,
        pool_size=len(hosts),
        num_retries=1,
        timeout=RUN_TIMEOUT,
        allow_agent=False,
        identity_auth=False,
    )
    output = client.run_command("uptime", stop_on_errors=False)
    client.join(output)
    ok = 0
    errors: list[str] = []
    for host_output in output:
        stdout = "\n".join(host_output.stdout or [])
        if (
            host_output.exception is None
            and host_output.exit_code == 0
            and "load average" in stdout
        ):
            ok += 1
        else:
            errors.append(f"{host_output.host}: {host_output.exception!r} {host_output.exit_code}")
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed, "ok": ok, "errors": errors[:5]}))


@dataclass
class PsshBench:
    """parallel-ssh in a fresh worker process per round; the time is measured in the worker."""

    fleet: Fleet
    wall: list[float] = field(default_factory=list)

    def run(self) -> float:
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--pssh-worker",
            str(self.fleet.pssh_hosts),
            "--pssh-key",
            str(self.fleet.client_key),
        ]
        start = time.perf_counter()
        out, err, code = run_bounded(argv, dict(os.environ), PSSH_TIMEOUT)
        self.wall.append(time.perf_counter() - start)
        try:
            report = json.loads(out.strip().splitlines()[-1])
        except (IndexError, ValueError) as exc:
            raise BenchError(f"parallel-ssh worker: exit {code}: {(out + err)[-800:]}") from exc
        if code != 0 or report["ok"] != len(self.fleet.servers):
            raise BenchError(f"parallel-ssh: {report['ok']} hosts ok: {report['errors']}")
        return float(report["seconds"])


# --------------------------------------------------------------------------- helpers


def run_bounded(argv: list[str], env: dict[str, str], timeout: float) -> tuple[str, str, int]:
    """Run a command in its own process group; kill the group if it outlives ``timeout``."""
    with subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
            raise BenchError(f"{Path(argv[0]).name} did not finish within {timeout:.0f} s") from exc
        return out, err, proc.returncode


def summary(values: list[float]) -> dict[str, float | int]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def ratio_rows(stats: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    cold = stats["tend_cold"]["median"]
    rows = [
        ("ansible / tend cold", stats["ansible"]["median"] / cold, 10.0, "cold >= 10x faster"),
        ("parallel-ssh / tend cold", stats["pssh"]["median"] / cold, 1.0, "cold no slower"),
        ("tend cold / tend warm", cold / stats["tend_warm"]["median"], 3.0, "warm >= 3x faster"),
    ]
    return [
        {"ratio": name, "value": value, "target": target, "goal": goal, "met": value >= target}
        for name, value, target, goal in rows
    ]


def print_report(result: dict[str, Any]) -> None:
    cfg, mach, ver = result["config"], result["machine"], result["versions"]
    stats = result["summary"]
    fleet = cfg["endpoints"]
    print()
    print(f"benchmark : `uptime` on {cfg['hosts']} SSH hosts in one run ({fleet})")
    print(
        f"rounds    : {cfg['rounds']} interleaved after {cfg['warmup']} discarded warm-up; "
        f"{cfg['warm_runs']} warm tend runs after each cold one; medians (min-max)"
    )
    print(
        f"machine   : {mach['cpus']} CPUs, {mach['cpu_model']}, {mach['kernel']}, "
        f"load {mach['loadavg_at_start']} at start (everything shares it)"
    )
    print(
        f"versions  : tend {ver['tend']} (asyncssh {ver['asyncssh']}), ansible-core "
        f"{ver['ansible-core']}, parallel-ssh {ver['parallel-ssh']} (ssh2-python "
        f"{ver['ssh2-python']}), {ver['openssh']}, python {ver['python']}"
    )
    print(f"date      : {result['date']}")
    for note in result["notes"]:
        print(f"  - {note}")
    print()
    print("system       | median   | min-max         | samples")
    print("-------------+----------+-----------------+--------")
    for system in SYSTEMS:
        s = stats[system]
        span = f"{s['min']:.3f}-{s['max']:.3f} s"
        print(f"{LABELS[system]:<12} | {s['median']:6.3f} s | {span:<15} | {s['n']}")
    print()
    print("ratio of medians         | value  | target | met")
    print("-------------------------+--------+--------+----")
    for row in result["ratios"]:
        mark = "✔" if row["met"] else "✘"
        target = f">= {row['target']:g}x"
        print(f"{row['ratio']:<24} | {row['value']:5.2f}x | {target:<6} | {mark}")


# --------------------------------------------------------------------------- main


def timed(label: str, action: Callable[[], float]) -> float:
    value = action()
    print(f"    {label:<12} {value:7.3f} s", flush=True)
    return value


async def bench(args: argparse.Namespace, fleet: Fleet, workdir: Path) -> dict[str, Any]:
    machine_info = machine()  # load average before our own load
    tend = TendBench(fleet, workdir)
    ansible = AnsibleBench(fleet, workdir)
    pssh = PsshBench(fleet)
    await tend.setup()
    samples: dict[str, list[float]] = {system: [] for system in SYSTEMS}
    total = args.warmup + args.rounds
    for index in range(total):
        warmup = index < args.warmup
        label = (
            "warm-up (discarded)" if warmup else f"round {index - args.warmup + 1}/{args.rounds}"
        )
        print(f"  {label}", flush=True)
        cold, warm = await tend.cycle(args.warm_runs)
        print(f"    {'tend cold':<12} {cold:7.3f} s", flush=True)
        print(f"    {'tend warm':<12} " + " ".join(f"{w:.3f}" for w in warm) + " s", flush=True)
        ansible_s = timed("ansible", ansible.run)
        pssh_s = timed("parallel-ssh", pssh.run)
        if warmup:
            continue
        samples["tend_cold"].append(cold)
        samples["tend_warm"].extend(warm)
        samples["ansible"].append(ansible_s)
        samples["pssh"].append(pssh_s)
    stats = {system: summary(values) for system, values in samples.items()}
    addresses = [s.address for s in fleet.servers]
    port = fleet.servers[0].port
    endpoints = (
        f"sshd on {addresses[0]}-{addresses[-1].rsplit('.', 1)[1]}:{port}"
        if fleet.loopback_aliases
        else f"sshd on 127.0.0.1, ports {fleet.servers[0].port}-{fleet.servers[-1].port}"
    )
    return {
        "benchmark": "fanout",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "config": {
            "hosts": len(fleet.servers),
            "rounds": args.rounds,
            "warmup": args.warmup,
            "warm_runs": args.warm_runs,
            "endpoints": endpoints,
            "ansible_argv": " ".join(ansible.argv()),
            "ansible_env": {k: v for k, v in ansible.env.items() if k.startswith("ANSIBLE_")},
        },
        "machine": machine_info,
        "versions": versions(),
        "notes": [
            "tend: POST /api/v1/runs via in-process httpx ASGITransport (auth, policy, audit, "
            "fan-out, asyncssh); cold = new app per round, pool empty, all N connections new "
            "(checked with pool stats); warm = same app and pool right after",
            "ansible: whole CLI wall clock, -m command, pipelining on, ControlMaster=no, "
            "known_hosts checked",
            "sshd sessions get HOME set to an empty dir (sshd SetEnv) so bash does not source "
            "this machine's /root/.bashrc (pyenv init: ~100-250 ms per command) for any tool",
            "parallel-ssh: native client (ssh2-python), new client in a new worker process per "
            "round, timed inside the worker (client creation to outputs read; no interpreter "
            "start); it does no host key verification",
        ],
        "samples": samples,
        "pssh_worker_wall": pssh.wall,
        "summary": stats,
        "ratios": ratio_rows(stats),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hosts", type=int, default=50, help="sshd servers (1-250)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per system")
    parser.add_argument("--warm-runs", type=int, default=3, help="warm tend runs per cold run")
    parser.add_argument("--warmup", type=int, default=1, help="discarded rounds first")
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON_OUT)
    parser.add_argument("--pssh-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--pssh-key", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 50 or not 1 <= args.warm_runs <= 20 or not 0 <= args.warmup <= 5:
        parser.error("--rounds must be 1-50, --warm-runs 1-20, --warmup 0-5")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.pssh_worker is not None:
        pssh_worker(args.pssh_worker, args.pssh_key)
        return 0
    if not sshd_available():
        print(f"fanout: {SSHD} is missing; install it: {INSTALL_HINT}", file=sys.stderr)
        return 2
    missing = missing_peers()
    if missing:
        print(f"fanout: missing {', '.join(missing)}; install with:", file=sys.stderr)
        print(f"  {PEER_INSTALL}", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="tend-bench-fanout-") as tmp,
            sshd_fleet(args.hosts) as fleet,
        ):
            print(f"fanout: {args.hosts} sshd servers up in {fleet.directory}", flush=True)
            result = asyncio.run(bench(args, fleet, Path(tmp)))
    except (BenchError, FleetError) as exc:
        print(f"fanout: FAILED: {exc}", file=sys.stderr)
        return 1
    result["elapsed_seconds"] = round(time.monotonic() - started, 1)
    print_report(result)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nJSON: {args.json_out}  (took {result['elapsed_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Analyzers on recorded output of real systems (tests/fixtures/diagnostics)."""

from __future__ import annotations

from datetime import timedelta

from tend.diagnostics.analyzers.disk import parse_df, parse_mounts
from tend.diagnostics.analyzers.memory import parse_oom_kills
from tend.diagnostics.analyzers.ssh_bruteforce import parse_auth_log
from tend.diagnostics.analyzers.updates import newest_kernel
from tend.diagnostics.findings import Severity
from tests.diagnostics.conftest import NOW, analyze, observe, output, recorded, text_of


def test_oom_kills_in_the_journal_are_found_with_their_lines() -> None:
    kills = parse_oom_kills(recorded("journal_kernel_oom.txt"))
    assert [(k.pid, k.name, k.rss_kib, k.cgroup) for k in kills] == [
        (23790, "java", 7800448, False),
        (4121, "python3", 520112, True),
    ]
    # 09:40 is within the hour before NOW (10:05): a recent kill is critical.
    found = analyze("memory", observe({"kernel_log": recorded("journal_kernel_oom.txt")}))
    oom = [f for f in found if "killed" in f.title]
    assert len(oom) == 1
    assert oom[0].severity is Severity.CRITICAL
    assert "java" in oom[0].title
    assert "python3" in oom[0].title
    assert any("Killed process 23790 (java)" in line for line in oom[0].evidence)
    assert any("Memory cgroup out of memory" in line for line in oom[0].evidence)
    later = analyze(
        "memory",
        observe({"kernel_log": recorded("journal_kernel_oom.txt")}, now=NOW + timedelta(hours=3)),
    )
    assert [f.severity for f in later if "killed" in f.title] == [Severity.WARNING]
    # A day later both kills are outside the 24 h window.
    old = analyze(
        "memory",
        observe({"kernel_log": recorded("journal_kernel_oom.txt")}, now=NOW + timedelta(days=1)),
    )
    assert not [f for f in old if "killed" in f.title]


def test_oom_kills_from_dmesg_when_the_journal_has_none() -> None:
    found = analyze(
        "memory",
        observe(
            {
                "kernel_log": "",
                "dmesg": recorded("dmesg_oom.txt"),
                "procfs": recorded("procfs_thrashing.txt"),
            }
        ),
    )
    oom = next(f for f in found if "killed" in f.title)
    assert "postgres" in oom.title
    assert "(dmesg)" in oom.evidence[0]
    # The same host is out of memory right now: 98304 of 4015852 kB available.
    pressure = next(f for f in found if "available" in f.title)
    assert pressure.severity is Severity.CRITICAL
    assert "2.4 %" in pressure.title
    assert any("PSI full avg60): 52.37" in line for line in pressure.evidence)


def test_memory_without_a_kernel_log_says_so() -> None:
    denied = output(
        "kernel_log",
        status="failed",
        exit_code=1,
        stderr="No journal files were opened due to insufficient permissions.",
    )
    dmesg = output(
        "dmesg",
        status="failed",
        exit_code=1,
        stderr="dmesg: read kernel buffer failed: Operation not permitted",
    )
    found = analyze("memory", observe({"kernel_log": denied, "dmesg": dmesg}))
    info = [f for f in found if f.severity is Severity.INFO]
    assert any("kernel log is not readable" in f.title for f in info)
    assert "Operation not permitted" in text_of(info)


def test_failed_units_with_their_result_and_last_log_lines() -> None:
    found = analyze(
        "failed_units",
        observe(
            {
                "failed_units": recorded("systemctl_failed.txt"),
                "unit_show": recorded("systemctl_show_failed.txt"),
                "unit_log:nginx.service": recorded("journal_unit_nginx.txt"),
                "unit_log:backup-db.service": recorded("journal_unit_backup-db.txt"),
            }
        ),
    )
    assert [f.title for f in found] == [
        "unit backup-db.service failed (exit-code)",
        "unit nginx.service failed (exit-code)",
    ]
    assert all(f.severity is Severity.WARNING for f in found)
    backup, nginx = found
    assert backup.likely_cause == "the main process exited with an error (status 2)"
    assert any('role "backup" does not exist' in line for line in backup.evidence)
    assert any("Address already in use" in line for line in nginx.evidence)
    assert any("restarts 5" in line for line in nginx.evidence)
    steps = [s.argv for s in nginx.next_steps]
    assert ["systemctl", "restart", "nginx.service"] in steps


def test_failed_units_follow_up_asks_for_each_units_log() -> None:
    obs = observe({"failed_units": recorded("systemctl_failed.txt")})
    from tend.diagnostics.analyzers import ANALYZERS

    probes = ANALYZERS["failed_units"].follow_up(obs)
    ids = [p.id for p in probes]
    assert ids == ["unit_show", "unit_log:backup-db.service", "unit_log:nginx.service"]
    assert all(p.argv[:2] == ("env", "LC_ALL=C") for p in probes)


def test_without_systemd_failed_units_is_an_info_finding() -> None:
    no_systemd = output(
        "failed_units",
        status="failed",
        exit_code=1,
        stderr="System has not been booted with systemd as init system (PID 1). Can't operate.\n"
        "Failed to connect to bus: Host is down\n",
    )
    [found] = analyze("failed_units", observe({"failed_units": no_systemd}))
    assert found.severity is Severity.INFO
    assert "systemd is not running" in found.title


def test_ssh_brute_force_in_auth_log_counts_per_source() -> None:
    sources = parse_auth_log(recorded("auth_log_bruteforce.log"))
    assert sources["203.0.113.45"].failures == 26  # 8 invalid users + 3 x 6 root guesses
    assert sources["198.51.100.7"].failures == 12  # 4 key-only probes + 8 guesses
    assert sources["192.0.2.10"].failures == 6
    assert sources["192.0.2.10"].accepted
    assert "root" in sources["203.0.113.45"].users
    assert sources["10.0.4.17"].failures == 1
    text = "==> /var/log/auth.log <==\n" + recorded("auth_log_bruteforce.log")
    [found] = analyze("ssh_bruteforce", observe({"auth_journal": "", "auth_files": text}))
    # A login succeeded from an address right after it failed six times.
    assert found.severity is Severity.CRITICAL
    assert "192.0.2.10" in found.title
    evidence = "\n".join(found.evidence)
    assert "203.0.113.45: 26 failures" in evidence
    assert "198.51.100.7: 12 failures" in evidence
    assert "10.0.4.17" not in evidence
    block = next(s for s in found.next_steps if s.argv[0] == "iptables")
    assert "203.0.113.45" in block.argv


def test_ssh_brute_force_in_the_journal() -> None:
    [found] = analyze("ssh_bruteforce", observe({"auth_journal": recorded("journal_sshd.txt")}))
    assert found.severity is Severity.WARNING
    assert "198.51.100.23: 14 failures" in "\n".join(found.evidence)
    assert "the journal" in found.evidence[0]


def test_clock_not_synchronised() -> None:
    [found] = analyze(
        "clock",
        observe(
            {
                "timedatectl": recorded("timedatectl_show_unsynced.txt"),
                "chrony": recorded("chronyc_tracking_unsynced.txt"),
            }
        ),
    )
    assert found.severity is Severity.WARNING
    assert "not synchronised" in found.title
    assert found.likely_cause == "no NTP client is enabled"
    assert "NTPSynchronized=no" in found.evidence[0]
    set_ntp = next(s for s in found.next_steps if s.argv[:2] == ["timedatectl", "set-ntp"])
    assert set_ntp.argv == ["timedatectl", "set-ntp", "true"]
    [status] = analyze(
        "clock", observe({"timedatectl": recorded("timedatectl_status_unsynced.txt")})
    )
    assert status.severity is Severity.WARNING
    assert "cannot reach its servers" in (status.likely_cause or "")


def test_clock_far_off_is_critical() -> None:
    [found] = analyze("clock", observe({"chrony": recorded("chronyc_tracking_offset.txt")}))
    assert found.severity is Severity.CRITICAL
    assert "off by 94.2 s" in found.title


def test_clock_offset_against_tend_from_the_date_probe() -> None:
    sent = NOW.timestamp()
    clock = output(
        "clock", f"{sent + 30.5:.9f}\n", started_at=sent, finished_at=sent + 0.2, duration=0.01
    )
    [found] = analyze("clock", observe({"clock": clock}))
    assert found.severity is Severity.WARNING
    assert "+30.300 s" in found.evidence[0]  # 30.5 - 0.1 (mid-flight) - 0.1 (uncertainty)
    [same] = analyze("clock", observe({"clock": clock}, local=True))
    assert same.severity is Severity.INFO


def test_swap_thrashing_and_load_from_one_sample() -> None:
    obs = observe(
        {
            "procfs": recorded("procfs_thrashing.txt"),
            "vmstat": recorded("vmstat_thrashing.txt"),
            "ps": recorded("ps_thrashing.txt"),
        }
    )
    [swap] = analyze("swap", obs)
    assert swap.severity is Severity.CRITICAL
    assert swap.title == "swap thrashing: 6420 KiB/s in and 7032 KiB/s out"
    assert any("pswpin 21804112" in line for line in swap.evidence)
    [load] = analyze("load", obs)
    assert load.severity is Severity.CRITICAL  # load 9.84 on 2 CPUs and 68 % iowait
    assert load.title.startswith("load 9.84 on 2 CPU(s)")
    assert "iowait 68 %" in load.title
    assert "disk or network I/O" in (load.likely_cause or "")
    assert any("pid 23790 java" in line for line in load.evidence)
    assert "4 process(es) in uninterruptible sleep (D):" in load.evidence
    assert load.next_steps[0].argv == ["iostat", "-x", "1", "3"]
    calm = observe({"procfs": recorded("procfs_thrashing.txt"), "vmstat": "r b si so id\n"})
    assert analyze("swap", calm)[0].severity is Severity.INFO  # no sample: cannot tell


def test_disk_pressure_from_a_prepared_mount_table() -> None:
    rows = parse_df(recorded("df_full.txt"))
    assert rows[-1].mount == "/mnt/nas backup"
    mounts = parse_mounts(recorded("procfs_mounts_full.txt").split("<==\n", 1)[1])
    assert mounts["/snap/core20/2379"] == ("squashfs", True)
    assert mounts["/mnt/nas backup"] == ("cifs", False)
    obs = observe(
        {
            "df": recorded("df_full.txt"),
            "df_inodes": recorded("df_inodes_full.txt"),
            "procfs": recorded("procfs_mounts_full.txt"),
            "du:/": recorded("du_root.txt"),
            "du_inodes:/": recorded("du_inodes_root.txt"),
        }
    )
    from tend.diagnostics.analyzers import ANALYZERS

    follow = [p.id for p in ANALYZERS["disk"].follow_up(obs)]
    assert follow == ["du:/", "du:/var/lib/postgresql", "du_inodes:/"]
    found = analyze("disk", obs)
    titles = [f.title for f in found]
    # The snap squashfs is 100 % full by design and read-only: never reported.
    assert titles == [
        "/ is 100 % full",
        "/var/lib/postgresql is 96 % full",
        "/ has used 99 % of its inodes",
    ]
    assert all(f.severity is Severity.CRITICAL for f in found)
    root = found[0]
    assert root.evidence[0] == "df: /dev/vda1 20463184 19512040 0 100% /"
    assert "largest directories under / by space:" in root.evidence
    assert root.evidence[3].split() == ["14.2", "GiB", "/var"]
    assert root.likely_cause == "most of the space is under /var"
    assert root.next_steps[0].argv == ["du", "-x", "-h", "-d", "2", "--", "/var"]
    inodes = found[2]
    assert "1297402 of 1310720 inodes used" in inodes.evidence[1]
    assert inodes.evidence[3].split() == ["1221204", "inodes", "/var"]


def test_pending_updates_with_security_ones_and_reboot() -> None:
    found = analyze(
        "updates",
        observe(
            {
                "apt": "\nWARNING: apt does not have a stable CLI interface.\n\n"
                + recorded("apt_upgradable.txt"),
                "reboot_files": recorded("reboot_required.txt"),
            }
        ),
    )
    updates, reboot = found
    assert updates.severity is Severity.WARNING
    assert updates.title == "4 package update(s) pending, 2 of them security updates"
    assert updates.evidence[0] == "apt: libssl3 3.0.15-1~deb12u1 (stable-security)"
    assert reboot.title == "a reboot is required"
    assert "requested by: libc6, linux-image-6.1.0-28-amd64" in reboot.evidence


def test_dnf_updates_and_a_newer_kernel_mean_a_reboot() -> None:
    assert newest_kernel(recorded("boot_listing_rhel.txt")) == "5.14.0-503.15.1.el9_5.x86_64"
    found = analyze(
        "updates",
        observe(
            {
                "apt": output("apt", status="missing", exit_code=127),
                "dnf": output(
                    "dnf", recorded("dnf_check_update.txt"), status="failed", exit_code=100
                ),
                "reboot_files": output("reboot_files", status="failed", exit_code=1),
                "kernel": "5.14.0-427.42.1.el9_4.x86_64\n",
                "boot": recorded("boot_listing_rhel.txt"),
            }
        ),
    )
    updates, reboot = found
    assert updates.severity is Severity.INFO
    assert updates.title == "4 package update(s) pending"
    assert "dnf: openssl 1:3.2.2-6.el9_5 (baseos)" in updates.evidence
    assert reboot.evidence == [
        "running kernel 5.14.0-427.42.1.el9_4.x86_64, newest installed 5.14.0-503.15.1.el9_5.x86_64"
    ]


def test_new_listening_ports_against_the_previous_check() -> None:
    obs = observe({"listening": recorded("ss_before.txt")})
    [first] = analyze("listening_ports", obs)
    assert first.severity is Severity.OK
    assert "6 listening socket(s) recorded" in first.title
    assert "tcp 0.0.0.0:443 (nginx pid 1410, nginx pid 1409)" in first.evidence
    later = observe({"listening": recorded("ss_after.txt")}, baseline=obs.new_baseline)
    [found] = analyze("listening_ports", later)
    assert found.severity is Severity.WARNING  # redis on every address
    assert "2 new listening port(s)" in found.title
    assert "  tcp 0.0.0.0:6379 (redis-server pid 20188)" in found.evidence
    assert "  tcp 127.0.0.1:8125 (statsd pid 20201)" in found.evidence
    assert "closed since then: tcp 0.0.0.0:443" in found.evidence
    assert ["ps", "-o", "pid,ppid,user,etime,args", "-p", "20188"] in [
        s.argv for s in found.next_steps
    ]

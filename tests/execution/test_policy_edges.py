"""Edge cases of the command policy outside shell strings.

Wrapper option parsing (``sudo``, ``env``, ``timeout``, ``nice`` ...), raw devices (whole disks
versus partitions), the knowledge about networking, system, text and tool commands, the
``Risk`` ordering helpers, argv validation and the engine's fail-closed path, all through the
public API of :mod:`tend.execution.policy`.
"""

from __future__ import annotations

import operator
import re
import shlex

import pytest

from tend.execution import policy
from tend.execution.policy import (
    InvalidArgvError,
    PolicyRulesError,
    Risk,
    evaluate,
    max_risk,
    parse_rules,
    pattern_matches,
    validate_argv,
)

R, C, F = Risk.READ, Risk.CHANGE, Risk.FORBIDDEN


def case(
    argv: list[str],
    risk: Risk,
    *,
    command: str | None = None,
    wrappers: list[str] | None = None,
    reason: str | None = None,
) -> object:
    """A parametrize entry whose id is the risk and the shell-quoted argv."""
    return pytest.param(
        argv, risk, command, wrappers, reason, id=f"{risk.value}: {shlex.join(argv)}"[:120]
    )


RM_ROOT = ["rm", "-rf", "/"]
WIPES_ROOT = "would wipe the root filesystem"

SUDO = [
    case(["sudo", "--user=root", *RM_ROOT], F, command="rm", wrappers=["sudo"]),
    case(["sudo", "--user", "root", *RM_ROOT], F, command="rm", wrappers=["sudo"]),
    case(["sudo", "-u", "root", *RM_ROOT], F, command="rm", reason=WIPES_ROOT),
    case(["sudo", "-uroot", *RM_ROOT], F, command="rm"),
    case(["sudo", "-iu", "root", *RM_ROOT], F, command="rm"),
    case(["sudo", "--", *RM_ROOT], F, command="rm", wrappers=["sudo"]),
    case(["sudo", "-D", "/", "rm", "-rf", "*"], F, reason="everything in /"),
    case(["sudo", "--chdir=/etc", "rm", "-rf", "."], F, reason="/etc"),
    case(["sudo", "LANG=C", "ls"], R, command="ls", wrappers=["sudo"]),
    case(["sudo", "FOO=1", "ls"], C, command="sudo", reason="setting FOO"),
    case(["sudo", "-iu", "root"], C, command="sudo", reason="interactive shell"),
    case(["sudo", "-s"], C, reason="interactive shell"),
    case(["sudo"], R, command="sudo", wrappers=[], reason="runs nothing"),
    case(["sudo", "-u"], R, reason="runs nothing"),
    case(["sudo", "-l"], R, reason="only lists"),
    case(["sudo", "-l", "rm"], R, reason="only lists"),
    case(["sudo", "-e", "/etc/hosts"], C, reason="edits files"),
    case(["sudo", "--edit", "/etc/hosts"], C, reason="edits files"),
    case(["sudoedit", "/etc/hosts"], C, command="sudoedit"),
    case(["sudo", "-X", "ls"], C, reason="option -X is not understood"),
    case(["sudo", "--frob", "ls"], C, reason="option --frob is not understood"),
    case(["doas", "-u", "root", *RM_ROOT], F, command="rm", wrappers=["doas"]),
    case(["doas", "-C", "/etc/doas.conf"], R, command="doas"),
    case(["doas", "-s"], C, reason="interactive shell"),
    case(["pkexec"], C, reason="interactive shell"),
    case(["pkexec", "--user", "root", *RM_ROOT], F, wrappers=["pkexec"]),
    case(["pkexec", "--frob"], C, reason="not understood"),
]

ENV = [
    case(["env", "-u", "HOME", *RM_ROOT], F, command="rm", wrappers=["env"]),
    case(["env", "-uHOME", "ls"], R, command="ls", wrappers=["env"]),
    case(["env", "--unset=HOME", "ls"], R, command="ls"),
    case(["env", "-S", "rm -rf /"], F, command="rm", wrappers=["env"]),
    case(["env", "--split-string=rm -rf /"], F, command="rm"),
    case(["env", "-S", "ls $HOME"], C, reason="expands variables"),
    case(["env", "-S", "ls 'unterminated"], C, reason="cannot be parsed"),
    case(["env", "-P", "/tmp", "ls"], C, reason="another PATH"),
    case(["env", "-C", "/", "rm", "-rf", "*"], F, reason="everything in /"),
    case(["env", "--chdir=/etc", "rm", "-rf", "."], F, reason="/etc"),
    case(["env", "-", "ls"], R, command="ls", wrappers=["env"]),
    case(["env", "-"], C, reason="prints the environment"),
    case(["env", "-i"], C, reason="prints the environment"),
    case(["env", "--version"], R, command="env"),
    case(["env", "--frob", "ls"], C, reason="option --frob is not understood"),
    case(["env", "PAGER=cat", "ls"], R, command="ls"),
    case(["env", "GIT_PAGER=", "ls"], R, command="ls"),
    case(["env", "PAGER=less", "ls"], C, reason="setting PAGER"),
    case(["env", "LD_PRELOAD=/x.so", "ls"], C, reason="setting LD_PRELOAD"),
    case(["env", "-i", "PATH=/tmp", "ls"], C, reason="setting PATH"),
]

SIMPLE_WRAPPERS = [
    case(["timeout", "-s", "KILL", "5", *RM_ROOT], F, command="rm", wrappers=["timeout"]),
    case(["timeout", "--kill-after=5", "10", *RM_ROOT], F, command="rm"),
    case(["timeout", "-k5", "10", "ls"], R, command="ls", wrappers=["timeout"]),
    case(["timeout", "5"], R, reason="runs nothing"),
    case(["timeout", "--help"], R, command="timeout"),
    case(["timeout", "-x", "5", "ls"], C, reason="option -x is not understood"),
    case(["timeout", "--frob", "5", "ls"], C, reason="option --frob is not understood"),
    case(["nice", "-n10", *RM_ROOT], F, command="rm", wrappers=["nice"]),
    case(["nice", "-n", "10", *RM_ROOT], F, command="rm"),
    case(["nice", "--adjustment=5", *RM_ROOT], F, command="rm"),
    case(["nice", "--adjustment", "5", "ls"], R, command="ls"),
    case(["nice", "-5", "ls"], R, command="ls", wrappers=["nice"]),
    case(["nice", "--", *RM_ROOT], F, command="rm"),
    case(["nice"], R, reason="only prints the niceness"),
    case(["nice", "-n", "5"], R, reason="only prints the niceness"),
    case(["ionice", "-c3", "-n7", *RM_ROOT], F, command="rm", wrappers=["ionice"]),
    case(["ionice", "-c", "3", "ls"], R, command="ls"),
    case(["ionice", "-p", "123"], R, reason="only shows I/O priorities"),
    case(["ionice", "-c", "3", "-p", "123"], C, reason="running processes"),
    case(["ionice", "-x", "ls"], C, reason="option -x is not understood"),
    case(["ionice", "-c3"], R, reason="only shows the I/O priority"),
    case(["stdbuf", "-oL", *RM_ROOT], F, command="rm", wrappers=["stdbuf"]),
    case(["stdbuf", "--output=L", "ls"], R, command="ls"),
    case(["stdbuf"], R, reason="runs nothing"),
    case(["stdbuf", "-x", "ls"], C, reason="not understood"),
    case(["taskset", "-c", "0-3", *RM_ROOT], F, command="rm", wrappers=["taskset"]),
    case(["taskset", "-p", "123"], R, reason="only shows the scheduling"),
    case(["taskset", "-p", "0x1", "123"], C, reason="changes the scheduling"),
    case(["taskset", "-c", "0-3"], R, reason="only shows scheduling information"),
    case(["chrt", "-r", "10", *RM_ROOT], F, command="rm", wrappers=["chrt"]),
    case(["chrt", "-m"], R, command="chrt"),
    case(["chrt", "-p", "10", "123"], C, reason="running process"),
    case(["xargs", "-I{}", "rm", "-rf", "{}"], C, command="rm", wrappers=["xargs"]),
    case(["xargs", "-0", "rm", "-rf"], C, command="rm"),
    case(["xargs"], C, command="echo", reason="read from its input"),
    case(["xargs", "-a", "/etc/shadow", "echo"], C, command="echo"),
    case(["xargs", "sh", "-c", "rm -rf /"], F, command="rm", wrappers=["xargs", "sh"]),
    case(["busybox", *RM_ROOT], F, command="rm", wrappers=["busybox"]),
    case(["busybox", "ls"], R, command="ls", wrappers=["busybox"]),
    case(["busybox"], R, reason="only lists applets"),
    case(["busybox", "--list"], R, reason="only lists applets"),
    case(["busybox", "--install", "-s"], C, reason="creates links"),
    case(["nohup", *RM_ROOT], F, wrappers=["nohup"]),
    case(["nohup"], R, command="nohup"),
    case(["setsid", "-f", *RM_ROOT], F, wrappers=["setsid"]),
    case(["time", "-p", *RM_ROOT], F, command="rm", wrappers=["time"]),
    case(["time", "-f", "%e", "ls"], R, command="ls"),
    case(["command", "-v", "rm"], R, command="command"),
    case(["command", "-V", "rm"], R, command="command"),
    case(["command", "-p", *RM_ROOT], F, wrappers=["command"]),
    case(["exec", "-a", "x", *RM_ROOT], F, wrappers=["exec"]),
    case(["exec"], R, reason="only sets redirections"),
    case(["systemd-inhibit", *RM_ROOT], F, wrappers=["systemd-inhibit"]),
    case(["sudo", "env", "FOO=1", "nice", "-n5", "timeout", "5", *RM_ROOT], F, command="rm"),
    case(["sudo", "nice", "ionice", "-c3", "ls"], R, wrappers=["sudo", "nice", "ionice"]),
    case(["sudo"] * 9 + ["ls"], F, reason="nested more than 8"),
]

REMOTE_WRAPPERS = [
    case(["flock", "/tmp/l", "-c", "rm -rf /"], F, command="rm", wrappers=["flock"]),
    case(["flock", "-c", "rm -rf /", "/tmp/l"], F, command="rm", wrappers=["flock"]),
    case(["flock", "/tmp/l", "--command", "rm -rf /"], F, command="rm"),
    case(["flock", "/tmp/l", *RM_ROOT], F, command="rm", wrappers=["flock"]),
    case(["flock", "-x", "9"], R, reason="only takes a lock"),
    case(["watch", "-n", "1", *RM_ROOT], F, command="rm", wrappers=["watch"]),
    case(["watch", "-n1", "ls"], R, command="ls"),
    case(["watch", "-x", *RM_ROOT], F, command="rm"),
    case(["watch", "ls", "&&", *RM_ROOT], F, command="rm"),
    case(["watch", "--differences=cumulative", "ls"], R, command="ls"),
    case(["watch", "--frob", "ls"], C, reason="option --frob is not understood"),
    case(["watch"], R, reason="runs nothing"),
    case(["su", "-c", "rm -rf /"], F, command="rm", wrappers=["su"]),
    case(["su", "-", "root", "-c", "rm -rf /"], F, command="rm"),
    case(["su", "-s", "/bin/bash", "-c", "rm -rf /"], F, command="rm"),
    case(["su", "--session-command=rm -rf /"], F, command="rm"),
    case(["su", "-s", "/usr/bin/python3", "-c", "x"], C, reason="unusual shell"),
    case(["su", "-"], C, reason="interactive shell"),
    case(["runuser", "-u", "x", "--", *RM_ROOT], F, command="rm", wrappers=["runuser"]),
    case(["runuser", "-u", "x", *RM_ROOT], F, command="rm"),
    case(["runuser", "-u", "x"], C, reason="interactive shell"),
    case(["runuser", "-l", "x", "-c", "ls"], R, command="ls", wrappers=["runuser"]),
    case(["ssh", "host", *RM_ROOT], F, command="rm", wrappers=["ssh"]),
    case(["ssh", "-p", "22", "host", "ls"], C, command="ls", reason="on another host"),
    case(["ssh", "host"], C, reason="interactive"),
    case(["chroot", "/mnt", *RM_ROOT], F, command="rm", wrappers=["chroot"]),
    case(["chroot", "--userspec=1:1", "/mnt", "ls"], C, command="ls", reason="another root"),
    case(["chroot", "/mnt"], C, reason="interactive"),
    case(["nsenter", "-t", "1", "-m", "ls"], C, command="ls", wrappers=["nsenter"]),
    case(["unshare", "-m", "ls"], C, reason="new namespaces"),
    case(["systemd-run"], C, reason="malformed"),
    case(["strace", "-p", "1"], C, reason="attaches to a running process"),
    case(["ltrace", "ls"], C, reason="read its memory"),
]

# Raw devices: whole disks and memory are forbidden targets, partitions only a change for the
# formatting tools, but any raw block device is forbidden for dd and redirections.
DEVICES = [
    case(["dd", "if=/dev/zero", "of=/dev/nvme0n1"], F, command="dd", reason="raw device"),
    case(["dd", "if=/dev/zero", "of=/dev/nvme0n1p1"], F, reason="/dev/nvme0n1p1"),
    case(["dd", "if=/dev/zero", "of=/dev/mmcblk0"], F),
    case(["dd", "if=/dev/zero", "of=/dev/mmcblk0p2"], F),
    case(["dd", "if=/dev/zero", "of=/dev/mmcblk0boot0"], F),
    case(["dd", "if=/dev/zero", "of=/dev/mapper/vg-lv"], F),
    case(["dd", "if=/dev/zero", "of=/dev/disk/by-id/ata-SAMSUNG_123"], F),
    case(["dd", "if=/dev/zero", "of=/dev/disk/by-uuid/abcd"], F),
    case(["dd", "if=/dev/zero", "of=/dev/vg0/root"], F),
    case(["dd", "if=/dev/zero", "of=/dev/loop0"], F),
    case(["dd", "if=/dev/zero", "of=/dev/md/root"], F),
    case(["dd", "if=/dev/zero", "of=/dev/dm-0"], F),
    case(["dd", "if=/dev/zero", "of=/dev/xvda1"], F),
    case(["dd", "if=/dev/zero", "of=/dev/mem"], F, reason="/dev/mem"),
    case(["dd", "if=/dev/zero", "of=/dev/port"], F),
    case(["dd", "if=/dev/zero", "of=/tmp/../dev/sda"], F),
    case(["dd", "if=/dev/zero", "of=/dev//sda"], F),
    case(["dd", "if=/dev/zero", "of=/dev/null"], C, reason="can overwrite files"),
    case(["dd", "if=/dev/zero", "of=/dev/shm/x"], C),
    case(["dd", "if=/dev/zero", "of=/dev/input/event0"], C),
    case(["dd", "if=/dev/zero", "of=sda"], C),
    case(["sh", "-c", "dd if=/dev/zero of=/dev/sd*"], F, command="dd", reason="/dev/sd*"),
    case(["sh", "-c", "dd if=/dev/zero of=/dev/*p1"], F, command="dd"),
    case(["sh", "-c", "dd if=/dev/zero of=/dev/$DISK"], F, command="dd"),
    case(["sh", "-c", "dd if=/dev/zero of=/tmp/*"], C, command="dd"),
    case(["sh", "-c", "dd if=/dev/zero of=/dev/tty*"], C, command="dd"),
    case(["mkfs.ext4", "/dev/sda"], F, reason="whole disk"),
    case(["mkfs.ext4", "/dev/sda1"], C, command="mkfs.ext4"),
    case(["mkfs.ext4", "/dev/mapper/vg-lv"], F, reason="whole disk"),
    case(["mkfs.ext4", "/dev/disk/by-id/ata-X"], F, reason="whole disk"),
    case(["mkfs.ext4", "/dev/disk/by-id/ata-X-part1"], C),
    case(["mkfs.xfs", "/dev/disk/by-path/pci-0000-part2"], C),
    case(["mkfs.ext4", "/dev/vg0/lv0"], F),
    case(["wipefs", "-a", "/dev/nvme0n1"], F),
    case(["wipefs", "/dev/nvme0n1"], R, reason="only lists signatures"),
    case(["sgdisk", "-p", "/dev/sda"], R),
    case(["sgdisk", "-n", "1:0:0", "/dev/sda"], C, reason="changes the partition table"),
    case(["sgdisk", "-Z", "/dev/sda"], F),
    case(["sgdisk", "--zap-all", "/dev/sda1"], C),
    case(["cryptsetup", "status", "x"], R),
    case(["cryptsetup", "open", "/dev/sda1", "x"], C, reason="changes encrypted volumes"),
    case(["cryptsetup", "luksFormat", "/dev/sda"], F),
    case(["cryptsetup", "luksFormat", "/dev/sda1"], C),
    case(["parted", "-l"], R),
    case(["parted", "/dev/sda", "unit", "s", "print"], R),
    case(["parted", "/dev/sda", "mklabel", "gpt"], F, reason="/dev/sda"),
    case(["parted", "-s", "/dev/nvme0n1", "mktable", "msdos"], F),
    case(["parted", "/dev/sda1", "mklabel", "gpt"], C, reason="changes partition tables"),
    case(["parted", "/dev/sda", "rm", "1"], C),
    case(["cat", "/dev/mem"], C, reason="raw device"),
    case(["cat", "/dev/input/event0"], C, reason="raw device"),
    case(["cat", "/dev/sda"], C, reason="raw device"),
    case(["lsblk", "/dev/sda"], R),
    case(["blkid", "/dev/sda1"], R),
]

NETWORK = [
    case(["ip", "-b", "cmds.txt"], C, reason="-batch"),
    case(["ip", "-force", "-batch", "x"], C, reason="-batch"),
    case(["ip"], R, reason="only prints help"),
    case(["ip", "frobnicate"], C, reason="not a known ip object"),
    case(["ip", "xfrm", "state"], C, reason="IPsec"),
    case(["ip", "netns", "exec", "ns1"], C, reason="malformed"),
    case(["ip", "netns", "exec", "ns1", *RM_ROOT], F, command="rm", wrappers=["ip"]),
    case(["ip", "netns", "exec", "ns1", "ip", "a"], R, wrappers=["ip"]),
    case(["ip", "link", "zzz"], C, reason="not a known read-only verb"),
    case(["ip", "link", "s"], C, reason="changes network configuration"),
    case(["ip", "monitor"], R),
    case(["ip", "netns", "identify"], R),
    case(["ip", "netns", "add", "x"], C),
    case(["ss", "-K", "dst", "1.2.3.4"], C, reason="closes sockets"),
    case(["ss", "--kill"], C, reason="closes sockets"),
    case(["netstat", "-tlnp"], R, command="netstat"),
    case(["arp", "-n"], R, reason="arp table"),
    case(["arp", "-d", "1.2.3.4"], C, reason="changes the arp table"),
    case(["route", "-n"], R),
    case(["route", "add", "default", "gw", "1.1.1.1"], C, reason="route table"),
    case(["nmcli"], R),
    case(["nmcli", "-s", "connection", "show"], C, reason="passwords"),
    case(["nmcli", "--show-secrets", "c", "show", "x"], C, reason="passwords"),
    case(["nmcli", "monitor"], R),
    case(["nmcli", "device"], R),
    case(["nmcli", "d", "s"], R, reason="only shows network state"),
    case(["nmcli", "general", "status"], R),
    case(["nmcli", "general", "hostname", "x"], C),
    case(["nmcli", "connection", "up", "x"], C),
    case(["nmcli", "radio", "wifi", "off"], C),
    case(["curl", "-X", "GET", "http://x"], R),
    case(["curl", "-X", "POST", "http://x"], C, reason="POST"),
    case(["curl", "-o", "/dev/null", "http://x"], R),
    case(["curl", "-o", "/tmp/x", "http://x"], C, reason="/tmp/x"),
    case(["curl", "file:///etc/shadow"], C, reason="password hashes"),
]

SYSTEM = [
    case(["date", "-s", "2020-01-01"], C, reason="system clock"),
    case(["date", "010100002020"], C, reason="time operand"),
    case(["date", "+%s"], R),
    case(["iptables", "--list"], R),
    case(["iptables", "--list=INPUT"], R),
    case(["iptables", "-L", "--flush"], C),
    case(["ip6tables", "-nL"], R, command="ip6tables"),
    case(["nft", "-f", "/etc/nft.conf"], C, reason="-f/-i"),
    case(["nft", "-i"], C),
    case(["nft", "-v"], R, reason="version"),
    case(["nft", "list ruleset; flush ruleset"], C),
    case(["service", "nginx", "status"], R),
    case(["service", "--status-all"], R),
    case(["service", "nginx", "restart"], C),
    case(["rc-status"], R),
    case(["rc-service", "nginx", "status"], R, command="rc-service"),
    case(["firewall-cmd", "--list-all"], R),
    case(["firewall-cmd", "--zone=public", "--list-ports"], R),
    case(["firewall-cmd", "--add-port=80/tcp"], C),
    case(["firewall-cmd"], C),
    case(["ufw", "status", "verbose"], R),
    case(["ufw", "--dry-run", "app", "info", "OpenSSH"], R),
    case(["ufw", "allow", "22"], C),
    case(["ufw"], C),
    case(["resolvectl"], R),
    case(["resolvectl", "-i", "eth0", "query", "x"], R),
    case(["resolvectl", "log-level"], R),
    case(["resolvectl", "log-level", "debug"], C),
    case(["resolvectl", "dns", "eth0"], R, reason="link setting"),
    case(["resolvectl", "dns", "eth0", "1.1.1.1"], C),
    case(["resolvectl", "flush-caches"], C),
    case(["hostnamectl"], R),
    case(["hostnamectl", "hostname"], R),
    case(["hostnamectl", "hostname", "new"], C),
    case(["hostnamectl", "set-hostname", "x"], C),
    case(["kill", "-s", "0", "1"], R),
    case(["kill", "--list=9"], R),
    case(["kill", "-9", "1"], C),
    case(["crontab", "-l", "-u", "root"], R),
    case(["crontab", "file"], C),
    case(["sysctl", "x=1"], C),
    case(["sysctl", "--system"], C),
    case(["getent", "-s", "files", "gshadow"], C, reason="password hashes"),
    case(["ps", "auxe"], C, reason="environment"),
    case(["ps", "-ef"], R),
    case(["nginx", "-t"], R),
    case(["nginx", "-s", "reload"], C),
    case(["apachectl", "configtest"], R),
    case(["haproxy", "-c", "-f", "x"], R),
]

TEXT = [
    case(["rg", "--pre", "sh", "x", "."], C, reason="--pre"),
    case(["rg", "--pre=cat", "x"], C, reason="--pre"),
    case(["ag", "-g", "x", "/srv/app"], C, reason="recursively"),
    case(["ack", "-g", "x", "/var/log"], R),
    case(["grep", "-d", "recurse", "x", "/home"], C, reason="recursively"),
    case(["grep", "-r", "x", ".."], C),
    case(["grep", "-r", "x", "/var/log"], R),
    case(["grep", "-f", "/etc/shadow", "x"], C, reason="password hashes"),
    case(["sed", "-n", "\\,foo,p", "f"], R),
    case(["sed", "-n", "\\", "f"], C, reason="sed script"),
    case(["sed", "-n", "\\,foo", "f"], C),
    case(["sed", "-n", "/foo", "f"], C),
    case(["sed", "-n", "/foo/Ip", "f"], R),
    case(["sed", "a\\ hello", "f"], R),
    case(["sed", "1i text", "f"], R),
    case(["sed", "s/a/b/g;p", "f"], R),
    case(["sed", "s/a/b/w /tmp/out", "f"], C),
    case(["sed", "s/a/b/e", "f"], C),
    case(["sed", "s/a/b", "f"], C),
    case(["sed", "s", "f"], C),
    case(["sed", "y/abc/xyz/", "f"], R),
    case(["sed", "y/abc/xyz/g", "f"], C),
    case(["sed", "y/ab/x", "f"], C),
    case(["sed", ":a;N;ba", "f"], R),
    case(["sed", "/x/{p;d}", "f"], R),
    case(["sed", "1~2p;0,/x/d", "f"], R),
    case(["sed", "r /etc/hostname", "f"], C),
    case(["sed", "e id", "f"], C),
    case(["sed", "-f", "script.sed", "f"], C, reason="script file"),
    case(["sed", "--file=script.sed", "f"], C, reason="script file"),
    case(["sed", "--in-place=.bak", "s/a/b/", "f"], C, reason="in place"),
    case(["sed", "--sandbox", "s/a/b/w x", "f"], R),
    case(["sed", "-e", "p", "-e", "w /tmp/x", "f"], C),
    case(["sort", "-o", "out", "f"], C, reason="-o writes a file"),
    case(["shuf", "-o", "x"], C),
    case(["uniq", "a", "b"], C, reason="writes its output to b"),
    case(["xxd", "a", "b"], C),
    case(["uniq", "a"], R),
    case(["yq", "-i", ".a=1", "f.yaml"], C, reason="in place"),
    case(["yq", "-o", "json", ".a", "f.yaml"], R),
]

TOOLS = [
    case(["git"], R),
    case(["git", "--output=x", "log"], C, reason="--output"),
    case(["git", "diff", "--ext-diff"], C),
    case(["git", "stash", "list"], R),
    case(["git", "stash", "drop"], C),
    case(["git", "submodule"], R),
    case(["git", "submodule", "update"], C),
    case(["git", "branch", "-a"], R, reason="only lists"),
    case(["git", "branch", "-l", "x*"], R),
    case(["git", "branch", "newbranch"], C),
    case(["git", "tag", "-l"], R),
    case(["git", "tag", "v1"], C),
    case(["git", "config", "--get", "user.name"], R),
    case(["git", "config", "--list"], R),
    case(["git", "config", "--global", "user.name", "x"], C),
    case(["git", "remote", "-v"], R),
    case(["git", "remote", "show", "origin"], R),
    case(["git", "remote", "add", "x", "y"], C),
    case(["kubectl"], R, reason="only prints help"),
    case(["kubectl", "get", "pods,secrets"], C, reason="secrets"),
    case(["kubectl", "describe", "Secret.v1"], C, reason="secrets"),
    case(["kubectl", "config", "view", "--raw"], C, reason="credentials"),
    case(["kubectl", "config", "view"], R),
    case(["kubectl", "config", "use-context", "x"], C),
    case(["kubectl", "auth", "can-i", "get", "pods"], R),
    case(["kubectl", "rollout", "status", "deploy/x"], R),
    case(["kubectl", "rollout", "restart", "deploy/x"], C),
    case(["ssh-keygen", "-l", "-f", "id.pub"], R),
    case(["ssh-keygen", "-F", "host"], R),
    case(["ssh-keygen", "-F", "host", "-R", "host"], C),
    case(["openssl", "x509", "-in", "c.crt", "-out", "x"], C, reason="-out"),
    case(["openssl"], C),
    case(["docker"], R, reason="only prints help"),
    case(["docker", "-H", "tcp://x", "ps"], R),
    case(["docker", "compose", "up"], C),
    case(["podman", "container", "ls"], R, command="podman"),
]

FILES_AND_PACKAGES = [
    case(["find", "-L", "/var", "-name", "x"], R),
    case(["find", "-O2", "/var", "-name", "x"], R),
    case(["find", "-D", "stat", "/var", "-name", "x"], R),
    case(["find", "/", "-files0-from", "list"], C, reason="-files0-from"),
    case(["find", "/tmp", "-exec", ";"], C, reason="malformed"),
    case(["find", "/", "-delete"], F, reason=WIPES_ROOT),
    case(["find", "/", "-name", "*.tmp", "-delete"], C),
    case(["find", "/", "-exec", "rm", "-rf", "{}", "+"], F, command="rm", wrappers=["find"]),
    case(["find", "/tmp", "-fprintf", "/tmp/out", "%p"], C, reason="-fprintf"),
    case(["chmod", "-R", "777", "/"], F),
    case(["chown", "-R", "x", "/etc"], F),
    case(["chmod", "-R", "755", "/etc/nginx"], C),
    case(["gzip", "-o", "x", "f"], C, reason="-o writes a file"),
    case(["zstd", "--output=x", "f"], C),
    case(["gzip", "-c", "f"], R),
    case(["unzip", "-l", "a.zip"], R),
    case(["unzip", "a.zip"], C),
    case(["tar", "tf", "a.tar"], R),
    case(["tar", "-I", "sh", "-xf", "a"], C, reason="-I"),
    case(["apt"], R),
    case(["apt", "-c", "/tmp/apt.conf", "list"], C, reason="hooks"),
    case(["rpm", "--eval", "%(rm -rf /)"], C, reason="--eval"),
    case(["rpm", "-E", "%{_libdir}"], C),
    case(["pacman", "-F", "x"], R),
    case(["pacman", "-Fy", "x"], C),
    case(["dnf"], R, reason="only prints help"),
    case(["snap"], R, reason="only prints help"),
    case(["fuser", "/srv"], R),
    case(["fuser", "-k", "/srv"], C),
    case(["chmod", "-R", "755", "/usr/bin"], C, reason="changes file ownership"),
    case(["chown", "-R", "x", "/usr"], F, reason="/usr"),
    case(["cat", ""], R),
]

SECRETS = [
    case(["cat", "-/etc/shadow"], C, reason="password hashes"),
    case(["cat", "--x=/root/.ssh/id_rsa"], C, reason="SSH private key"),
    case(["cat", "/home/u/.ssh/id_ed25519"], C, reason="SSH private key"),
    case(["cat", "/home/u/.ssh/id_ed25519.pub"], R),
    case(["cat", "/home/u/.ssh/known_hosts"], R),
    case(["cat", "/srv/id_rsa"], C, reason="SSH private key"),
    case(["cat", "/srv/server.key"], C, reason="a private key"),
    case(["cat", "/srv/server.pem"], C, reason="a private key"),
    case(["cat", "/srv/cert.pem"], R),
    case(["cat", "/etc/ssl/certs/ca.pem"], R),
    case(["cat", "/srv/app/prod.env"], C, reason="environment file"),
    case(["cat", "/srv/app/.env.local"], C, reason="environment file"),
    case(["cat", "/srv/credentials.json"], C, reason="credentials file"),
    case(["cat", "/home/u/.gnupg/x"], C, reason="credentials file"),
    case(["cat", "/home/u/.docker/config.json"], C, reason="credentials file"),
]


# Options of read-listed commands that run a program: at least change, and the program is
# judged (so a forbidden one makes the whole command forbidden).
GIT_OPTIONS = [
    case(["git", "grep", "-O", "rm -rf /", "x"], C, reason="pager"),
    case(["git", "grep", "--open=rm -rf /", "x"], F, command="rm", wrappers=["git"]),
    case(["git", "grep", "-iOrm -rf /", "x"], F, command="rm"),
    case(["git", "grep", "-eO", "x"], R, reason="only reads"),
    case(["git", "ls-remote", "-u", "rm -rf /", "/srv/repo"], F, command="rm"),
    case(["git", "ls-remote", "--upl", "rm -rf /", "/srv/repo"], F, command="rm"),
    case(["git", "ls-remote", "--upload-pack=git-upload-pack", "/srv/repo"], C),
    case(["git", "ls-remote", "origin"], R),
    case(["git", "push", "--receive-pack=rm -rf /", "origin"], F),
    case(["git", "archive", "--remote=x", "--exec=rm -rf /", "HEAD"], F),
    case(["git", "fetch-pack", "--upload-pack", "rm -rf /", "x"], F),
    case(["git", "rebase", "-x", "rm -rf /", "main"], F),
    case(["git", "-c", "core.pager=rm -rf /", "log"], F, command="rm"),
    case(["git", "-c", "core.sshCommand=rm -rf /", "ls-remote", "h:r"], F),
    case(["git", "-c", "alias.x=!rm -rf /", "x"], F),
    case(["git", "-c", "diff.external=rm -rf /", "diff"], F),
    case(["git", "-c", "pager.log=rm -rf /", "log"], F),
    case(["git", "-c", "user.name=x", "log"], C, reason="git -c"),
    case(["git", "--config-env=core.pager=CMD", "log"], C, reason="git -c"),
    case(["git", "clone", "-c", "core.sshCommand=rm -rf /", "h:r"], F),
    case(["git", "log", "--ext"], C),
    case(["git", "log", "--textconv"], C),
    case(["git", "log", "--output-indicator-new=x"], R),
    case(["git", "help", "log"], C, reason="man"),
    case(["git", "log", "--help"], C, reason="man"),
    case(["git", "help", "-a"], R),
    case(["git", "grep", "--no-index", "x", "/etc"], C, reason="secrets"),
    case(["git", "diff", "--no-index", "/etc/ssh", "/tmp/x"], C, reason="secrets"),
    case(["env", "GIT_PAGER=rm -rf /", "git", "log"], F, command="rm"),
    case(["env", "PAGER=less", "git", "log"], C, reason="setting PAGER"),
    case(["sudo", "GIT_SSH_COMMAND=rm -rf /", "git", "fetch"], F),
    case(["env", "GIT_EXTERNAL_DIFF=rm -rf /", "git", "diff"], F),
    case(["sudo", "SYSTEMD_PAGER=rm -rf /", "systemctl", "status"], F),
    case(["env", "GIT_PAGER=cat", "git", "log"], R),
]

# GNU getopt_long parsing of wrappers: abbreviations, signed values, optional values.
GETOPT = [
    case(["time", "-f", "%e", "-o", "/tmp/t", *RM_ROOT], F, command="rm", wrappers=["time"]),
    case(["time", "-o", "/tmp/t", "ls"], C, reason="writes its timings to /tmp/t"),
    case(["time", "-ao", "/dev/stderr", "ls"], R, command="ls"),
    case(["time", "--format=%e", "--", "ls"], R, command="ls"),
    case(["time", "--verb", "ls"], R, command="ls"),
    case(["time", "-x", "ls"], C, reason="not understood"),
    case(["time"], R, reason="runs nothing"),
    case(["nice", "--adj=5", *RM_ROOT], F, command="rm", wrappers=["nice"]),
    case(["nice", "--adjustment", "5", *RM_ROOT], F, command="rm"),
    case(["nice", "-+5", *RM_ROOT], F, command="rm"),
    case(["nice", "--5", *RM_ROOT], F, command="rm"),
    case(["nice", "-n", "-5", "-n", "+3", *RM_ROOT], F, command="rm"),
    case(["nice", "--he"], R, command="nice"),
    case(["nice", "-x", "ls"], C, reason="not understood"),
    case(["timeout", "--sig=KILL", "5", *RM_ROOT], F, command="rm", wrappers=["timeout"]),
    case(["timeout", "--s", "KILL", "5", *RM_ROOT], F, command="rm"),
    case(["timeout", "--kill", "1", "5", *RM_ROOT], F, command="rm"),
    case(["timeout", "--pres", "5", *RM_ROOT], F, command="rm"),
    case(["timeout", "--fore", "5", *RM_ROOT], F, command="rm"),
    case(["timeout", "--verb", "5", *RM_ROOT], F, command="rm"),
    case(["timeout", "--ver", "5", "ls"], C, reason="not understood"),
    case(["env", "--ignore-e", *RM_ROOT], F, command="rm", wrappers=["env"]),
    case(["env", "--ignore", "ls"], C, reason="not understood"),
    case(["env", "--uns=HOME", *RM_ROOT], F, command="rm"),
    case(["env", "--default-signal", *RM_ROOT], F, command="rm"),
    case(["stdbuf", "--out=L", *RM_ROOT], F, command="rm", wrappers=["stdbuf"]),
    case(["setsid", "--fo", *RM_ROOT], F, command="rm"),
    case(["ionice", "--class", "3", *RM_ROOT], F, command="rm"),
    case(["ionice", "--cl", "3", "ls"], C, reason="not understood"),
    case(["taskset", "--cpu", "0", *RM_ROOT], F, command="rm"),
    case(["chrt", "--sched-r", "100", "0", *RM_ROOT], F, command="rm"),
    case(["flock", "--wa", "5", "/tmp/l", *RM_ROOT], F, command="rm", wrappers=["flock"]),
    case(["xargs", "-eI", *RM_ROOT], F, command="rm", wrappers=["xargs"]),
    case(["xargs", "--null", *RM_ROOT], F, command="rm"),
    case(["xargs", "--max-args", "1", *RM_ROOT], F, command="rm"),
    case(["xargs", "--frob", "ls"], C, reason="not understood"),
    case(["sudo", "--us", "root", *RM_ROOT], F, command="rm", wrappers=["sudo"]),
    case(["sudo", "--preserve-env=PATH", *RM_ROOT], F, command="rm"),
    case(["sudo", "-E", "-h", *RM_ROOT], F, command="rm"),
    case(["sudo", "--preserve", "ls"], C, reason="not understood"),
    case(["sudo", "-R", "/mnt", "ls"], C, reason="another root"),
    case(["su", "root", "--", "-c", "rm -rf /"], F, command="rm", wrappers=["su", "sh"]),
    case(["su", "--comm", "rm -rf /"], F, command="rm", wrappers=["su"]),
    case(["watch", "-d", "ls"], R, command="ls"),
    case(["watch", "--diff", *RM_ROOT], F, command="rm"),
]

# ssh options that run commands on THIS host.
SSH_LOCAL = [
    case(["ssh", "-o", "ProxyCommand=rm -rf /", "host", "ls"], F, command="rm"),
    case(["ssh", "-oProxyCommand=rm -rf /", "host", "ls"], F, command="rm"),
    case(["ssh", "-o", "proxycommand rm -rf /", "host"], F, command="rm"),
    case(["ssh", "-vo", "PROXYCOMMAND = rm -rf /", "host"], F, command="rm"),
    case(["ssh", "host", "-o", "ProxyCommand=rm -rf /", "ls"], F, command="rm"),
    case(["ssh", "host", "--", "-o", "ProxyCommand=rm -rf /"], C, reason="-o is not a known"),
    case(["ssh", "-o", "ProxyCommand=none", "host", "ls"], C, reason="on another host"),
    case(["ssh", "-o", "ProxyCommand=nc %h %p", "host", "ls"], C, reason="ProxyCommand"),
    case(["ssh", "-o", "LocalCommand=rm -rf %d", "host", "ls"], F, command="rm"),
    case(["ssh", "-o", "KnownHostsCommand=rm -rf /", "host"], F, command="rm"),
    case(["ssh", "-o", "RemoteCommand=rm -rf /", "host"], F, command="rm"),
    case(["ssh", "-F", "/tmp/cfg", "host", "ls"], C, reason="ssh -F reads /tmp/cfg"),
    case(["ssh", "-o", "Include=/tmp/x", "host", "ls"], C, reason="Include"),
    case(["ssh", "-o", "PKCS11Provider=/tmp/x.so", "host", "ls"], C, reason="loads a library"),
    case(["ssh", "-E", "/tmp/log", "host", "ls"], C, reason="appends its log"),
    case(["ssh", "--frob", "host"], C, reason="not understood"),
    case(["scp", "-o", "ProxyCommand=rm -rf /", "a", "h:b"], F, command="rm"),
    case(["sftp", "-oProxyCommand=rm -rf /", "h"], F, command="rm"),
    case(["rsync", "-e", "ssh -o ProxyCommand='rm -rf /'", "a", "h:b"], F, command="rm"),
    case(["rsync", "--rsync-path=rm -rf /", "a", "h:b"], F, command="rm"),
]

# Writing to terminals and file descriptors (redirections, tee, curl -o ...).
SINKS = [
    case(["sh", "-c", "echo x > /dev/pts/0"], C, reason="/dev/pts/0"),
    case(["sh", "-c", "echo x > /dev/tty1"], C),
    case(["sh", "-c", "echo x > /dev/console"], C),
    case(["sh", "-c", "cat < /etc/hosts > /dev/stdin"], C, reason="/dev/stdin"),
    case(["sh", "-c", "echo x > /dev/fd/0"], C),
    case(["sh", "-c", "echo x > /dev/fd/3"], C),
    case(["sh", "-c", "echo x > /proc/self/fd/5"], C),
    case(["sh", "-c", "echo x > /dev/null"], R),
    case(["sh", "-c", "echo x > /dev/stdout 2> /dev/stderr"], R),
    case(["sh", "-c", "echo x >> /dev/fd/1"], R),
    case(["sh", "-c", "echo x > /dev/tty"], R),
    case(["tee", "/dev/pts/1"], C, reason="/dev/pts/1"),
    case(["tee", "/dev/stderr"], R),
    case(["curl", "-o", "/dev/pts/0", "http://x"], C),
    case(["time", "-o", "/dev/pts/0", "ls"], C),
]


@pytest.mark.parametrize(
    ("argv", "risk", "command", "wrappers", "reason"),
    [
        *SUDO,
        *GIT_OPTIONS,
        *GETOPT,
        *SSH_LOCAL,
        *SINKS,
        *ENV,
        *SIMPLE_WRAPPERS,
        *REMOTE_WRAPPERS,
        *DEVICES,
        *NETWORK,
        *SYSTEM,
        *TEXT,
        *TOOLS,
        *FILES_AND_PACKAGES,
        *SECRETS,
    ],
)
def test_edge_verdict(
    argv: list[str],
    risk: Risk,
    command: str | None,
    wrappers: list[str] | None,
    reason: str | None,
) -> None:
    decision = evaluate(argv)
    assert decision.risk is risk, decision.reason
    if command is not None:
        assert decision.command == command
    if wrappers is not None:
        assert decision.wrappers == wrappers
    if reason is not None:
        assert reason in decision.reason


# Former bypasses outside shell strings (checked against real git / GNU coreutils with
# harmless commands): each id says what the policy used to answer.
BYPASSES = [
    pytest.param(
        ["git", "grep", "--open-files-in-pager=rm -rf / #", "x"],
        F,
        id="was read: git grep -O runs any shell command as the pager",
    ),
    pytest.param(["git", "grep", "-Orm -rf / #", "x"], F, id="was read: git grep -OCMD glued"),
    pytest.param(
        ["git", "ls-remote", "--upload-pack=rm -rf / #", "/srv/repo"],
        F,
        id="was read: git ls-remote --upload-pack runs a local command",
    ),
    pytest.param(["nice", "-n+5", *RM_ROOT], F, id="was change: nice -n+5 hides the command"),
]


@pytest.mark.parametrize(("argv", "risk"), BYPASSES)
def test_known_bypass(argv: list[str], risk: Risk) -> None:
    assert evaluate(argv).risk is risk


# Risk ordering helpers.


def test_risk_order_follows_rank_not_alphabet() -> None:
    assert Risk.READ < Risk.CHANGE < Risk.FORBIDDEN
    assert Risk.FORBIDDEN > Risk.CHANGE > Risk.READ
    assert Risk.READ <= Risk.READ <= Risk.CHANGE
    assert Risk.FORBIDDEN >= Risk.FORBIDDEN >= Risk.CHANGE
    assert not Risk.CHANGE <= Risk.READ
    assert not Risk.READ >= Risk.CHANGE
    assert sorted([Risk.FORBIDDEN, Risk.READ, Risk.CHANGE]) == [R, C, F]
    assert max(Risk.CHANGE, Risk.READ) is Risk.CHANGE
    assert [risk.rank for risk in (R, C, F)] == [0, 1, 2]


@pytest.mark.parametrize("method", ["__lt__", "__le__", "__gt__", "__ge__"])
@pytest.mark.parametrize("other", [1, None, 2.5, object()], ids=["int", "None", "float", "object"])
def test_risk_comparison_with_non_risk_is_not_implemented(method: str, other: object) -> None:
    assert getattr(Risk.CHANGE, method)(other) is NotImplemented


@pytest.mark.parametrize("other", [1, None, object()], ids=["int", "None", "object"])
def test_risk_ordering_against_non_risk_raises(other: object) -> None:
    for compare in (operator.lt, operator.le, operator.gt, operator.ge):
        with pytest.raises(TypeError):
            compare(Risk.READ, other)


def test_risk_equality_with_plain_strings_and_others() -> None:
    assert Risk.READ == "read"
    assert Risk.FORBIDDEN != "change"
    assert Risk.READ != 0
    assert Risk.CHANGE != None  # noqa: E711 - equality with None must not raise
    assert Risk.CHANGE.at_least(Risk.READ) is Risk.CHANGE
    assert Risk.READ.at_least(Risk.FORBIDDEN) is Risk.FORBIDDEN
    assert max_risk() is Risk.READ
    assert max_risk(Risk.CHANGE, Risk.READ, Risk.FORBIDDEN, Risk.CHANGE) is Risk.FORBIDDEN


# Argv validation, rules helpers and the engine's fail-closed path.


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["ls", 3], "argv[1] is int", id="non-string"),
        pytest.param(["ls", b"x"], "argv[1] is bytes", id="bytes-item"),
        pytest.param(["ls", "\ud800"], "lone surrogate", id="lone-surrogate"),
        pytest.param(["rm", "-rf", "/\r"], "carriage return", id="carriage-return"),
        pytest.param(("",), "argv[0] is empty", id="empty-program"),
    ],
)
def test_invalid_argv_is_rejected(argv: list[object], message: str) -> None:
    with pytest.raises(InvalidArgvError, match=re.escape(message)):
        validate_argv(argv)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgvError):
        evaluate(argv)  # type: ignore[arg-type]


def test_rule_pattern_with_empty_token_is_rejected() -> None:
    text = "rules:\n  - allow:\n      - [systemctl, '', nginx]\n"
    with pytest.raises(PolicyRulesError, match="empty token"):
        parse_rules(text, "edges.yaml")


def test_pattern_never_matches_empty_argv() -> None:
    assert not pattern_matches(["ls", "..."], [])
    assert pattern_matches(["ls", "..."], ["/bin/ls"])


def test_engine_failure_is_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*_args: object) -> list[object]:
        raise RuntimeError("judge crashed")

    monkeypatch.setattr(policy.engine, "judge_argv", explode)
    decision = evaluate(["/usr/bin/ls", "-l"])
    assert decision.risk is Risk.FORBIDDEN
    assert "failed to analyse" in decision.reason
    assert decision.command == "ls"
    assert decision.wrappers == []
    assert decision.rule is None

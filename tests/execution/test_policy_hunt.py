"""Options of read-listed commands that run programs, write files or print secrets.

Each row is ``(id, argv, risk, reason)``: the id says what the option does, the risk is the
verdict the policy must give (the row's command used to be judged lower), ``reason`` is a
substring of the decision's reason when given. Rows marked "stays read" pin the harmless forms
next to the dangerous ones so the fix cannot over-reach.
"""

from __future__ import annotations

import pytest

from tend.execution.policy import Risk, evaluate

R, C, F = Risk.READ, Risk.CHANGE, Risk.FORBIDDEN
RM = "rm -rf /"


def hunt(ident: str, argv: list[str], risk: Risk, reason: str | None = None) -> object:
    """A parametrize entry with a readable id."""
    return pytest.param(argv, risk, reason, id=f"{risk.value}: {ident}")


TEXT = [
    hunt("sort -n -o FILE (-n is a flag)", ["sort", "-n", "-o", "/etc/passwd", "x"], C, "-o"),
    hunt("sort -no FILE clustered", ["sort", "-no/etc/passwd", "x"], C, "-o"),
    hunt("sort --out FILE abbreviated", ["sort", "--out", "/etc/passwd", "x"], C, "-o"),
    hunt("sort --compress-program runs it", ["sort", "--compress-program=gzip", "x"], C),
    hunt("sort --compress-prog abbreviated", ["sort", "--compress-prog", "gzip", "x"], C),
    hunt("sort -n stays read", ["sort", "-n", "-k2", "-t:", "x"], R),
    hunt("shuf -n 3 stays read", ["shuf", "-n", "3", "x"], R),
    hunt("sdiff --diff-program runs it", ["sdiff", "--diff-program=sh", "a", "b"], C),
    hunt("diff3 --diff-program runs it", ["diff3", "--diff-program=sh", "a", "b", "c"], C),
    hunt("uniq -c IN OUT writes OUT", ["uniq", "-c", "x", "/etc/passwd"], C, "/etc/passwd"),
    hunt("uniq -c IN stays read", ["uniq", "-c", "x"], R),
    hunt("xxd -u IN OUT writes OUT", ["xxd", "-u", "x", "/etc/passwd"], C, "/etc/passwd"),
    hunt("xxd -r IN stays read (stdout)", ["xxd", "-r", "-p", "x"], R),
    hunt("tree -o FILE writes the listing", ["tree", "-o", "/etc/x", "/"], C, "tree -o"),
    hunt("tree -L stays read", ["tree", "-L", "2", "/srv"], R),
    hunt("sed --expr abbreviated w FILE", ["sed", "--expr=p", "--expr", "w /tmp/x", "x"], C),
    hunt("sed s///w FILE", ["sed", "s/a/b/w /etc/x", "x"], C),
    hunt("sed e command", ["sed", "1e rm -rf /", "x"], C),
    hunt("sed -s -i", ["sed", "-s", "-i", "s/a/b/", "x"], C, "in place"),
    hunt("diff -r of /etc/ssh prints host keys", ["diff", "-r", "/etc/ssh", "/tmp/x"], C),
    hunt("diff -e -r (-e is a flag)", ["diff", "-e", "-r", "/etc/ssh", "/tmp/x"], C),
    hunt("diff -N of /etc prints /etc/shadow", ["diff", "-N", "/etc", "/tmp/x"], C),
    hunt("diff -u stays read", ["diff", "-u", "/srv/a", "/srv/b"], R),
    hunt("file -C compiles magic (writes)", ["file", "-C", "-m", "x"], C),
    hunt("jq env prints the environment", ["jq", "-n", "env"], C, "environment"),
    hunt("jq $ENV prints a variable", ["jq", "-n", "$ENV.TOKEN"], C),
    hunt("jq filter stays read", ["jq", "-r", ".a", "/srv/x.json"], R),
    hunt("yq strenv", ["yq", "-n", "strenv(TOKEN)"], C),
    hunt("awk system()", ["awk", 'BEGIN{system("rm -rf /")}'], C),
    hunt("less is a pager", ["less", "/var/log/syslog"], C),
    hunt("man -P runs a pager", ["man", "-P", RM, "ls"], C),
    hunt("vim -c runs commands", ["vim", "-c", "!rm -rf /", "x"], C),
]

FILES = [
    hunt("find -fprint FILE", ["find", "/", "-fprint", "/etc/x"], C, "writes"),
    hunt("find -fprint0 FILE", ["find", ".", "-fprint0", "/tmp/x"], C),
    hunt("find -fprintf FILE FMT", ["find", ".", "-fprintf", "/tmp/x", "%p"], C),
    hunt("find -fls FILE", ["find", ".", "-fls", "/tmp/x"], C),
    hunt("find -fprint to a raw disk", ["find", "/", "-fprint", "/dev/sda"], F),
    hunt("find -execdir judged", ["find", ".", "-execdir", "rm", "-rf", "/", ";"], F),
    hunt("tar --to-command runs it", ["tar", f"--to-command={RM}", "-tf", "x.tar"], F),
    hunt("tar -I runs it", ["tar", "-tf", "x.tar", "-I", RM], F),
    hunt("tar --use-compress-prog", ["tar", "-tf", "x.tar", f"--use-compress-prog={RM}"], F),
    hunt("tar --checkpoint-action=exec", ["tar", "-tf", "x", f"--checkpoint-action=exec={RM}"], F),
    hunt(
        "tar --checkpoint-action exec (separate)",
        ["tar", "-tf", "x", "--checkpoint-action", "exec=id"],
        C,
    ),
    hunt(
        "tar --checkpoint-action=dot stays read", ["tar", "-tf", "x", "--checkpoint-action=dot"], R
    ),
    hunt("tar --info-script runs it", ["tar", "-tf", "x.tar", "--info-script=x"], C),
    hunt("tar -F runs a script", ["tar", "-tf", "x.tar", "-F", "x"], C),
    hunt("tar --index-file writes", ["tar", "-tf", "x.tar", "--index-file=/etc/x"], C, "writes"),
    hunt("tar --volno-file writes", ["tar", "-tf", "-", "--volno-file=/etc/x"], C),
    hunt("tar -f HOST:FILE uses rsh/ssh", ["tar", "-tf", "host:x.tar"], C, "another host"),
    hunt("tar --force-local stays read", ["tar", "-tf", "host:x.tar", "--force-local"], R),
    hunt("tar tzvf stays read", ["tar", "tzvf", "x.tgz"], R),
    hunt("rsync -e runs it", ["rsync", "-e", RM, "a", "h:b"], F),
    hunt("rsync --rsync-path", ["rsync", f"--rsync-path={RM}", "a", "h:b"], F),
    hunt("scp -o ProxyCommand", ["scp", "-o", f"ProxyCommand={RM}", "a", "h:b"], F),
    hunt("sftp -o ProxyCommand", ["sftp", f"-oProxyCommand={RM}", "h"], F),
    hunt("split writes files", ["split", "x"], C),
    hunt("csplit writes files", ["csplit", "x", "1"], C),
    hunt("wget writes files", ["wget", "-O-", "http://x"], C),
]

NETWORK = [
    hunt("curl --out abbreviated", ["curl", "--out", "/tmp/x", "http://x"], C, "/tmp/x"),
    hunt("curl --conf abbreviated", ["curl", "--conf", "/tmp/cfg", "http://x"], C),
    hunt("curl -K config file", ["curl", "-K", "/tmp/cfg", "http://x"], C),
    hunt("curl -D FILE", ["curl", "-D", "/tmp/h", "http://x"], C),
    hunt("curl --trace FILE", ["curl", "--trace", "/tmp/t", "http://x"], C),
    hunt("curl --libcurl FILE", ["curl", "--libcurl", "/tmp/x", "http://x"], C),
    hunt("curl -w %output{FILE}", ["curl", "-w", "%output{/tmp/x}", "http://x"], C),
    hunt("curl --output-dir + relative -o", ["curl", "--output-dir", "/tmp", "-o", "x", "u"], C),
    hunt("curl -Q sends FTP commands", ["curl", "ftp://x/a", "-Q", "DELE a"], C),
    hunt("curl --engine loads a library", ["curl", "--engine", "x", "http://x"], C),
    hunt("curl FILE: scheme case", ["curl", "FILE:///etc/shadow"], C, "password hashes"),
    hunt("curl file URL %-encoded", ["curl", "file:///etc/%73hadow"], C, "password hashes"),
    hunt("curl file URL {glob}", ["curl", "file:///etc/sh{a,b}dow"], C),
    hunt("curl file URL [range]", ["curl", "file:///etc/shado[v-x]"], C),
    hunt("curl -g turns globbing off", ["curl", "-g", "file:///etc/shado[v-x]"], R),
    hunt("curl GET stays read", ["curl", "-sSL", "-H", "Accept: x", "http://x"], R),
    hunt("curl -o /dev/null stays read", ["curl", "-o", "/dev/null", "http://x"], R),
    hunt("ip netns exec judged", ["ip", "netns", "exec", "ns", "rm", "-rf", "/"], F),
    hunt("ip -all netns exec", ["ip", "-all", "netns", "exec", "rm", "-rf", "/"], F),
    hunt("ip netns e (abbreviated exec)", ["ip", "netns", "e", "ns", "rm", "-rf", "/"], F),
    hunt("ip vrf exec judged", ["ip", "vrf", "exec", "red", "rm", "-rf", "/"], F),
    hunt("ip -batch FILE", ["ip", "-batch", "/tmp/x"], C),
    hunt("ip -b FILE", ["ip", "-b", "/tmp/x"], C),
    hunt("ss -K kills sockets", ["ss", "-K", "dst", "1.1.1.1"], C),
    hunt("ss -D FILE dumps to a file", ["ss", "-D", "/tmp/x"], C, "file"),
    hunt("ss -tlnp stays read", ["ss", "-tlnp"], R),
    hunt("ping -f floods", ["ping", "-f", "1.1.1.1"], C, "floods"),
    hunt("ping -c stays read", ["ping", "-c", "3", "1.1.1.1"], R),
    hunt("openssl -engine loads code", ["openssl", "x509", "-in", "x", "-engine", "e"], C),
    hunt("openssl -provider loads code", ["openssl", "x509", "-provider", "p", "-in", "x"], C),
    hunt("openssl -config loads engines", ["openssl", "req", "-in", "x", "-config", "c"], C),
    hunt("openssl --out (double dash)", ["openssl", "x509", "--out", "/tmp/x"], C),
    hunt("openssl ocsp -respout", ["openssl", "ocsp", "-respout", "/tmp/x"], C),
    hunt("openssl ocsp -port is a server", ["openssl", "ocsp", "-port", "8080"], C),
    hunt("openssl x509 -text stays read", ["openssl", "x509", "-in", "cert.pem", "-text"], R),
    hunt("tcpdump -w FILE", ["tcpdump", "-w", "/tmp/x"], C),
    hunt("tcpdump -z runs a program", ["tcpdump", "-z", "gzip", "-w", "x"], C),
]

SYSTEM = [
    hunt("systemctl --marked is a flag", ["systemctl", "--marked", "reload-or-restart"], C),
    hunt("SYSTEMD_PAGER runs a command", ["env", f"SYSTEMD_PAGER={RM}", "systemctl"], F),
    hunt("dmesg -n sets the console level", ["dmesg", "-n", "1"], C),
    hunt("dmesg --console-l abbreviated", ["dmesg", "--console-l", "1"], C),
    hunt("date -s sets the clock", ["date", "-s", "now"], C),
    hunt("date --se abbreviated", ["date", "--se", "now"], C),
    hunt("hostname -F sets the name", ["hostname", "-F", "/etc/x"], C),
    hunt("hostname -b sets the name", ["hostname", "-b", "x"], C),
    hunt("journalctl --vacuum-s", ["journalctl", "--vacuum-s=1M"], C),
    hunt("journalctl --rotate", ["journalctl", "--rotate"], C),
    hunt("journalctl --flush", ["journalctl", "--flush"], C),
    hunt("lastlog -C clears records", ["lastlog", "-C", "-u", "x"], C),
    hunt("lastlog -u stays read", ["lastlog", "-u", "root"], R),
    hunt("lshw -dump FILE", ["lshw", "-dump", "/tmp/x"], C),
    hunt("dmidecode --dump-bin FILE", ["dmidecode", "--dump-bin", "/tmp/x"], C),
    hunt("sensors -s sets limits", ["sensors", "-s"], C),
    hunt("systemd-analyze set-log-level", ["systemd-analyze", "set-log-level", "debug"], C),
    hunt("systemd-analyze log-level X", ["systemd-analyze", "log-level", "debug"], C),
    hunt("systemd-analyze blame stays read", ["systemd-analyze", "blame"], R),
    hunt("named-checkzone -o FILE", ["named-checkzone", "-o", "/etc/x", "z", "f"], C),
    hunt("named-checkconf -p prints keys", ["named-checkconf", "-p"], C),
    hunt("named-checkconf -px stays read", ["named-checkconf", "-px"], R),
    hunt("nginx -t -g load_module", ["nginx", "-t", "-g", "load_module /tmp/x.so;"], C),
    hunt("apachectl -t -C LoadModule", ["apachectl", "-t", "-C", "LoadModule x /x.so"], C),
    hunt("iptables-save -f FILE", ["iptables-save", "-f", "/etc/x"], C),
    hunt("tune2fs -l -O also changes", ["tune2fs", "-l", "-O", "^has_journal", "/dev/sda1"], C),
    hunt("mdadm -D ... --stop", ["mdadm", "-D", "/dev/md0", "--stop", "/dev/md0"], C),
    hunt("mdadm -Ds stays read", ["mdadm", "-Ds"], R),
    hunt("passwd -S -d also changes", ["passwd", "-S", "-d", "bob"], C),
    hunt("pvscan --cache -aay activates", ["pvscan", "--cache", "-aay"], C),
    hunt("vgscan --mknodes", ["vgscan", "--mknodes"], C),
    hunt("ssh-keygen -l -D loads a library", ["ssh-keygen", "-l", "-D", "/tmp/x.so"], C),
    hunt("strace -o |CMD", ["strace", "-o", f"|{RM}", "ls"], F),
    hunt("strace -p attaches", ["strace", "-p", "1"], C),
    hunt("crontab without args reads stdin", ["crontab"], C),
    hunt("at schedules", ["at", "now"], C),
    hunt("batch schedules", ["batch"], C),
    hunt("gdb is unknown", ["gdb", "-p", "1"], C),
    hunt("perf is unknown", ["perf", "record", "ls"], C),
    hunt("psql -c is unknown", ["psql", "-c", "drop table x"], C),
    hunt("mysql -e is unknown", ["mysql", "-e", "drop table x"], C),
    hunt("top -b stays read", ["top", "-b", "-n", "1"], R),
    hunt("lsof stays read", ["lsof", "-p", "1"], R),
]

TOOLS = [
    hunt("rpm --dbpath %(cmd)", ["rpm", "-q", "--dbpath", "%(rm -rf /)", "bash"], C),
    hunt("rpm -qa --qf stays read", ["rpm", "-qa", "--qf", "%{NAME}\\n"], R),
    hunt("dnf --setopt pluginpath", ["dnf", "list", "--setopt=pluginpath=/tmp"], C),
    hunt("dnf -c config", ["dnf", "-c", "/tmp/x", "list"], C),
    hunt("pip --python runs it", ["pip", "--python", "/tmp/evil", "list"], C),
    hunt("pip --log writes", ["pip", "--log", "/etc/x", "list"], C),
    hunt("npm help runs man", ["npm", "help", "install"], C),
    hunt("npm --browser", ["npm", "ls", "--browser", "x"], C),
    hunt("docker exec", ["docker", "exec", "c", "rm", "-rf", "/"], C),
    hunt("docker run", ["docker", "run", "x"], C),
    hunt("docker cp", ["docker", "cp", "a", "c:/b"], C),
    hunt("kubectl exec", ["kubectl", "exec", "p", "--", "rm", "-rf", "/"], C),
    hunt("kubectl cp", ["kubectl", "cp", "a", "p:/b"], C),
    hunt("kubectl apply", ["kubectl", "apply", "-f", "x"], C),
    hunt("kubectl delete", ["kubectl", "delete", "pod", "x"], C),
    hunt("kubectl get --raw= secrets", ["kubectl", "get", "--raw=/api/v1/secrets"], C),
    hunt("kubectl --raw %-encoded", ["kubectl", "get", "--raw", "/api/v1/%73ecrets"], C),
    hunt(
        "kubectl dump --output-directory",
        ["kubectl", "cluster-info", "dump", "--output-directory=/tmp/x"],
        C,
    ),
    hunt("kubectl get pods stays read", ["kubectl", "get", "pods", "-o", "wide"], R),
]


@pytest.mark.parametrize(("argv", "risk", "reason"), [*TEXT, *FILES, *NETWORK, *SYSTEM, *TOOLS])
def test_hunted_option(argv: list[str], risk: Risk, reason: str | None) -> None:
    decision = evaluate(argv)
    assert decision.risk is risk, decision.reason
    if reason is not None:
        assert reason in decision.reason

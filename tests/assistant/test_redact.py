"""Redaction: no secret reaches a provider, ordinary ops text passes untouched, pseudonyms map back."""  # noqa: E501

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tend.assistant.redact import Redactor, redact_secrets

# --- secrets, one of each kind, as they appear in real files and outputs ---

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi6x5y1mC8Zb5ZkQKqvjG0BZ3rP\n"
    "c0d3Zk9mXk1ZVjh6Y2xHRk1xQmZxV0FvZ1ZyR3F6dGxNTm1xT2p0c2h6b0Rk+/==\n"
    "-----END RSA PRIVATE KEY-----"
)
PEM_BODY = PEM.splitlines()[1:3]

EXAMPLES: list[tuple[str, str, str]] = [
    # (text, the secret that must disappear, the kind named in its place)
    (f"key file:\n{PEM}\ndone", PEM_BODY[0], "private_key"),
    (
        "DATABASE_URL=postgresql+asyncpg://app:Sup3r-s3cret@db.internal:5432/app",
        "Sup3r-s3cret",
        "connection_string",
    ),
    ("redis://:r3dis-pass@cache:6379/0", "r3dis-pass", "connection_string"),
    ("mongodb://root:m0ngo-pw@mongo-1:27017/admin", "m0ngo-pw", "connection_string"),
    ("amqp://guest:rabbit-pw-9@mq:5672/", "rabbit-pw-9", "connection_string"),
    ("mysql://backup:my-sql-pw@10.0.0.8/shop", "my-sql-pw", "connection_string"),
    ("git clone https://deploy:gh-pw-1234@git.example.com/x.git", "gh-pw-1234", "url_password"),
    (
        "curl -H 'Authorization: Bearer abcdef1234567890xyz' https://api",
        "abcdef1234567890xyz",
        "authorization",
    ),
    ("proxy_set_header Authorization Basic dXNlcjpwYXNz;", "dXNlcjpwYXNz", "authorization"),
    ("token was Bearer zyxwvu9876543210 in the log", "zyxwvu9876543210", "bearer_token"),
    (
        "cookie eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",  # noqa: E501
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "jwt",
    ),
    ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
    ("ASIAY34FZKBOKMUTVV7A is a session key", "ASIAY34FZKBOKMUTVV7A", "aws_access_key"),
    (
        "AKIAIOSFODNN7EXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY,us-east-1",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_key",
    ),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "secret",
    ),
    (
        "GH=ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        "github_token",
    ),
    (
        "slack xoxb-123456789012-abcdefghijklmn ok",
        "xoxb-123456789012-abcdefghijklmn",
        "slack_token",
    ),
    (
        "OPENAI sk-proj-Abcdefghijklmnopqrstuvwx12 set",
        "sk-proj-Abcdefghijklmnopqrstuvwx12",
        "api_key",
    ),
    ('{"user": "app", "password": "hunter2-xyz"}', "hunter2-xyz", "password"),
    ('{"token":"t0k3n-v4lue"}', "t0k3n-v4lue", "token"),
    ('db:\n  host: db1\n  password: "yaml-pw-1"\n', "yaml-pw-1", "password"),
    ("smtp:\n  passwd: plain words pw\n", "plain words pw", "password"),
    ("export DB_PASSWORD='s3 cr3t w1th spaces'", "s3 cr3t w1th spaces", "password"),
    ("SECRET_KEY=django-insecure-abc123", "django-insecure-abc123", "secret"),
    ("mysqld --api-key k3y-value-77 --user=mysql", "k3y-value-77", "api_key"),
    ("<password>xml-pw-42</password>", "xml-pw-42", "password"),
    ("Server=db;User Id=sa;Password=Mssql-pw-1;", "Mssql-pw-1", "password"),
    ("https://api.example.com/v1?token=q-token-123&page=2", "q-token-123", "token"),
]


@pytest.mark.parametrize(("text", "secret", "kind"), EXAMPLES, ids=[e[2] for e in EXAMPLES])
def test_each_kind_of_secret_is_replaced_by_a_named_marker(
    text: str, secret: str, kind: str
) -> None:
    out = redact_secrets(text)
    assert secret not in out
    assert f"[REDACTED:{kind}]" in out


def test_what_surrounds_a_secret_is_kept() -> None:
    out = redact_secrets("connect postgresql://app:pw-123456@db1:5432/app failed: timeout")
    assert (
        out == "connect postgresql://app:[REDACTED:connection_string]@db1:5432/app failed: timeout"
    )
    yaml = "db:\n  user: app\n  password: hunter2\n  port: 5432\n"
    assert (
        redact_secrets(yaml) == "db:\n  user: app\n  password: [REDACTED:password]\n  port: 5432\n"
    )


def test_a_key_cut_by_a_head_and_tail_split_is_still_removed() -> None:
    begin, body1, body2, end = PEM.splitlines()
    head_cut = f"log start\n{begin}\n{body1}\n"
    tail_cut = f"{body2}\n{end}\nlog end"
    assert body1 not in redact_secrets(head_cut)
    assert redact_secrets(head_cut).startswith("log start\n[REDACTED:private_key]")
    assert body2 not in redact_secrets(tail_cut)
    assert redact_secrets(tail_cut).endswith("[REDACTED:private_key]\nlog end")


def test_a_key_inside_json_escaped_text_is_removed() -> None:
    value = json.dumps({"tls_key": PEM})
    out = redact_secrets(value)
    assert PEM_BODY[0] not in out
    assert PEM_BODY[1] not in out


# --- ordinary ops text passes untouched ---

OPS_TEXT = [
    "Filesystem     1K-blocks     Used Available Use% Mounted on\n"
    "/dev/sda1       41152832  9923124  29116500  26% /\n"
    "tmpfs            4045060        0   4045060   0% /dev/shm",
    "USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n"
    "root         1  0.0  0.1 167744 11520 ?        Ss   Nov25   0:03 /sbin/init\n"
    "postgres  8123  2.1  3.4 421884 280432 ?       Ss   10:01   1:12 postgres: 14/main: checkpointer\n"  # noqa: E501
    "www-data  9001 12.0  1.0 123456 80000 ?        S    10:02   0:40 nginx: worker process",
    "Nov 26 10:00:01 web-3 sshd[1234]: Failed password for invalid user admin from 192.168.1.20 port 52022 ssh2",  # noqa: E501
    "Nov 26 10:00:02 web-3 sshd[1234]: Accepted publickey for deploy from 10.0.0.5 port 40022 ssh2",
    "Nov 26 10:00:03 web-3 passwd[2001]: pam_unix(passwd:chauthtok): password changed for bob",
    "Nov 26 10:00:04 web-3 kernel: [12345.678] Out of memory: Killed process 4242 (java) total-vm:8123456kB",  # noqa: E501
    '10.1.2.3 - - [26/Nov/2026:10:00:05 +0000] "GET /api/v1/items?id=42 HTTP/1.1" 200 512 "-" "curl/8.4"',  # noqa: E501
    "● nginx.service - A high performance web server\n"
    "     Loaded: loaded (/lib/systemd/system/nginx.service; enabled)\n"
    "     Active: active (running) since Wed 2026-11-25 08:00:00 UTC; 1 day ago",
    "               total        used        free      shared  buff/cache   available\n"
    "Mem:            7.6Gi       3.1Gi       1.2Gi       150Mi       3.3Gi       4.1Gi",
    'tcp   LISTEN 0  511  0.0.0.0:80  0.0.0.0:*  users:(("nginx",pid=9001,fd=6))',
    "passwd:         files systemd\ngroup:          files systemd\nhosts:          files dns",
    "root:x:0:0:root:/root:/bin/bash\nsshd:x:110:65534::/run/sshd:/usr/sbin/nologin",
    "PWD=/home/alice\nHOME=/home/alice\nPOSTGRES_PASSWORD_FILE=/run/secrets/pg\nmax_tokens=4096",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b\nAuthor: Alice <alice@example.com>",
]


@pytest.mark.parametrize("text", OPS_TEXT)
def test_ordinary_ops_text_is_unchanged(text: str) -> None:
    assert redact_secrets(text) == text
    assert Redactor().redact(text) == text


_VOCABULARY = (
    "GET POST error warning info started stopped nginx postgres kernel disk cpu memory load "
    "failed ok timeout connection refused reset accepted user deploy root /var/log/syslog "
    "/etc/nginx/nginx.conf 200 404 500 0.012s 12ms 3.4% 10.0.0.5 192.168.1.20 web-3 db1 "
    "Nov 26 10:00:01 pid=1234 port 5432 [info] (sshd) - : , ="
)
_WORDS = st.sampled_from(_VOCABULARY.split())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_WORDS, max_size=12).map(" ".join), max_size=8).map("\n".join))
def test_log_like_text_without_secrets_is_unchanged(text: str) -> None:
    assert redact_secrets(text) == text


# --- a secret embedded anywhere in random text never survives ---

_SECRET = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.~+!%^*-]{11,39}", fullmatch=True)
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_SEP = st.sampled_from([" ", "\n", "\t", ", ", "; ", "(", ") ", " | ", "\r\n"])

Template = Callable[[str], str]
_TEMPLATES: list[Template] = [
    lambda s: f"password={s}",
    lambda s: f'{{"api_key": "{s}"}}',
    lambda s: f'"client_secret":"{s}"',
    lambda s: f"secret: {s}",
    lambda s: f"export DB_PASSWORD='{s}'",
    lambda s: f"postgresql://app:{s}@db.internal:5432/app",
    lambda s: f"redis://:{s}@cache:6379",
    lambda s: f"https://user:{s}@example.com/path",
    lambda s: f"Authorization: Bearer {s}",
    lambda s: f"--token {s}",
    lambda s: f"<passphrase>{s}</passphrase>",
    lambda s: f"Password = {s}",
]


@st.composite
def _typed_secret(draw: st.DrawFn) -> tuple[str, str]:
    """A vendor-format secret and the text it appears in."""
    kind = draw(st.sampled_from(["aws", "aws_pair", "github", "jwt", "slack", "openai", "pem"]))
    alnum_upper = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=16, max_size=16)
    if kind == "aws":
        key = draw(st.sampled_from(["AKIA", "ASIA"])) + draw(alnum_upper)
        return key, key
    if kind == "aws_pair":
        secret = draw(st.text(_B64, min_size=40, max_size=40))
        assume(any(c.islower() for c in secret) and any(c.isupper() for c in secret))
        return secret, "AKIA" + draw(alnum_upper) + "," + secret
    if kind == "github":
        token = "ghp_" + draw(st.text(_B64[:62], min_size=36, max_size=36))
        return token, token
    if kind == "jwt":
        header = base64.urlsafe_b64encode(b'{"alg":"HS256"}').decode().rstrip("=")
        payload = base64.urlsafe_b64encode(json.dumps({"sub": draw(st.text(max_size=20))}).encode())
        signature = draw(st.text(_URLSAFE, min_size=20, max_size=43))
        token = f"{header}.{payload.decode().rstrip('=')}.{signature}"
        return signature, token
    if kind == "slack":
        token = "xoxb-" + draw(st.text("0123456789", min_size=10, max_size=12)) + "-"
        token += draw(st.text(_B64[:62], min_size=16, max_size=24))
        return token, token
    if kind == "openai":
        token = "sk-proj-" + draw(st.text(_URLSAFE, min_size=24, max_size=48))
        return token, token
    lines = draw(st.lists(st.text(_B64, min_size=40, max_size=64), min_size=1, max_size=4))
    block = "\n".join(
        ["-----BEGIN OPENSSH PRIVATE KEY-----", *lines, "-----END OPENSSH PRIVATE KEY-----"]
    )
    return max(lines, key=len), block


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.text(max_size=60),
    suffix=st.text(max_size=60),
    sep=_SEP,
    sep2=_SEP,
    template=st.sampled_from(_TEMPLATES),
    secret=_SECRET,
)
def test_an_assigned_secret_never_survives(
    prefix: str, suffix: str, sep: str, sep2: str, template: Template, secret: str
) -> None:
    assume(secret not in prefix + "\x00" + suffix)
    text = prefix + sep + template(secret) + sep2 + suffix
    assert secret not in redact_secrets(text)
    assert secret not in Redactor(anonymise=True).redact(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.text(max_size=60), suffix=st.text(max_size=60), sep=_SEP, found=_typed_secret())
def test_a_vendor_token_never_survives(
    prefix: str, suffix: str, sep: str, found: tuple[str, str]
) -> None:
    secret, snippet = found
    assume(secret not in prefix + "\x00" + suffix)
    text = prefix + sep + snippet + "\n" + suffix
    assert secret not in redact_secrets(text)


# --- structured values ---


class _Config(BaseModel):
    host: str
    db_password: str
    options: dict[str, object]


def test_values_are_redacted_by_key_and_by_content() -> None:
    value = {
        "host": "db1",
        "password": "hunter2-xyz",
        "retries": 3,
        "nested": [{"api_key": 12345678}, "postgresql://u:pw-in-list@h/db"],
        "empty_password": "",
    }
    out = Redactor().redact_value(value)
    assert out["host"] == "db1"
    assert out["retries"] == 3
    assert out["password"] == "[REDACTED:password]"
    assert out["nested"][0]["api_key"] == "[REDACTED:api_key]"
    assert "pw-in-list" not in out["nested"][1]
    assert out["empty_password"] == ""
    model = _Config(host="db1", db_password="s3cret-pw", options={"auth_token": "t-123456"})
    dumped = json.dumps(Redactor().redact_value(model))
    assert "s3cret-pw" not in dumped
    assert "t-123456" not in dumped
    assert '"db1"' in dumped


def test_an_unchanged_value_is_returned_as_is() -> None:
    value = {"host": "db1", "items": [1, 2, "three"]}
    assert Redactor().redact_value(value) is value


# --- anonymisation ---


def test_hosts_and_addresses_get_consistent_pseudonyms_and_come_back() -> None:
    redactor = Redactor(anonymise=True, known_hosts=["web-3", "db1"])
    first = redactor.redact("web-3 (10.0.0.5) cannot reach db1.example.com at 192.168.1.20")
    assert "web-3" not in first
    assert "10.0.0.5" not in first
    assert "db1.example.com" not in first
    assert first.startswith("host-1 (10.255.0.1)")
    second = redactor.redact("ssh web-3 said 10.0.0.5 is down; db1 fine; fe80::1ff:fe23:4567:890a")
    assert second.startswith("ssh host-1 said 10.255.0.1 is down")
    assert "fe80::1ff:fe23:4567:890a" not in second
    answer = "host-1 at 10.255.0.1 is the culprit, not host-2"
    assert redactor.restore(answer) == "web-3 at 10.0.0.5 is the culprit, not db1.example.com"
    assert (
        redactor.restore(first) == "web-3 (10.0.0.5) cannot reach db1.example.com at 192.168.1.20"
    )


def test_pseudonyms_are_not_anonymised_again_and_local_addresses_are_kept() -> None:
    redactor = Redactor(anonymise=True, known_hosts=["web-3"])
    once = redactor.redact(
        "web-3 10.0.0.5 127.0.0.1 ::1 0.0.0.0 255.255.255.0 localhost at 10:23:45"
    )
    assert redactor.redact(once) == once
    assert "127.0.0.1 ::1 0.0.0.0 255.255.255.0 localhost at 10:23:45" in once
    assert redactor.redact("nginx.service /etc/nginx/nginx.conf main.py v1.2.3") == (
        "nginx.service /etc/nginx/nginx.conf main.py v1.2.3"
    )


def test_a_resumed_conversation_keeps_its_pseudonyms() -> None:
    first = Redactor(anonymise=True, known_hosts=["web-3"])
    sent = first.redact("web-3 and 10.0.0.5")
    resumed = Redactor(anonymise=True, known_hosts=["web-3"], mapping=first.mapping)
    assert resumed.redact("web-3 and 10.0.0.5") == sent
    assert resumed.redact("new host 10.0.0.9") == "new host 10.255.0.2"
    assert resumed.restore(sent) == "web-3 and 10.0.0.5"


def test_tool_arguments_with_pseudonyms_are_restored() -> None:
    redactor = Redactor(anonymise=True, known_hosts=["web-3"])
    redactor.redact("web-3 at 10.0.0.5")
    args = {"host": "host-1", "argv": ["ping", "-c1", "10.255.0.1"], "count": 1}
    assert redactor.restore_value(args) == {
        "host": "web-3",
        "argv": ["ping", "-c1", "10.0.0.5"],
        "count": 1,
    }


def test_without_anonymisation_hosts_and_addresses_pass() -> None:
    text = "web-3 (10.0.0.5) cannot reach db1.example.com"
    assert Redactor(known_hosts=["web-3"]).redact(text) == text


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["web-3", "db1", "cache.example.com", "api.internal", "WEB-3"]),
            st.ip_addresses(v=4).map(str),
            st.sampled_from(["disk", "full", "on", "port", "22", "ok", ":", "->", "/var/log"]),
        ),
        max_size=20,
    ).map(" ".join)
)
def test_restore_undoes_anonymisation(text: str) -> None:
    redactor = Redactor(anonymise=True, known_hosts=["web-3", "db1"])
    sent = redactor.redact(text)
    for name in ("web-3", "db1", "cache.example.com", "api.internal"):
        assert name not in sent.lower()
    assert redactor.restore(sent).lower() == text.lower()

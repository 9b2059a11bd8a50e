"""The secret rules: what counts as a secret in text, and the marker that replaces it.

Private keys (whole PEM blocks, and the parts a head/tail cut leaves), passwords in URLs and
connection strings, ``Authorization`` headers and bearer tokens, JWTs, AWS access and secret
keys, GitHub / GitLab / Slack / OpenAI-style and other vendor tokens, and the values of
``password=``, ``"token": "…"``, ``secret: …``, ``--api-key …`` and similar assignments in
configs, env listings, JSON, YAML, XML and command lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable


def redacted(kind: str) -> str:
    """The marker that replaces a secret of ``kind``."""
    return f"[REDACTED:{kind}]"


_KEY_BODY = r"[A-Za-z0-9+/=]"
_PEM_SEP = r"(?:\s|\\[nr])*"
# A whole block; an unterminated one (cut by a head/tail split) runs to the last key-like line.
_PEM_BLOCK = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    rf"(?:{_PEM_SEP}(?:{_KEY_BODY}+|[A-Za-z-]+:[^\n\\]*))*"
    rf"(?:{_PEM_SEP}-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----)?"
)
# The end of a block whose beginning was cut off.
_PEM_TAIL = re.compile(
    rf"(?:{_KEY_BODY}{{8,}}{_PEM_SEP})+-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
)
_DB_SCHEMES = re.compile(
    r"postgres(?:ql)?|mysql|mariadb|rediss?|mongodb|amqps?|mssql|sqlserver|oracle|cockroachdb"
    r"|clickhouse"
)
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s:/?#@'\"<>]*):"
    r"(?P<pw>[^\s/?#'\"<>]+)@"
)
_AUTH_SCHEME = r"(?:bearer|basic|token|digest|negotiate|apikey|aws4-hmac-sha256)\s+"
_AUTH_HEADER = re.compile(
    rf"(?i)(?P<head>authorization[\"']?(?:\s*[:=]\s*[\"']?(?:{_AUTH_SCHEME})?|\s+{_AUTH_SCHEME}))"
    r"(?P<value>[^\s\"',;]+)"
)
_BEARER = re.compile(r"(?i)(?P<head>bearer\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})")
_TOKENS: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = (
    ("jwt", ("eyJ",), re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")),
    (
        "github_token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}"),
    ),
    ("gitlab_token", ("glpat-",), re.compile(r"glpat-[A-Za-z0-9_-]{20,}")),
    ("slack_token", ("xox",), re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}")),
    (
        "slack_webhook",
        ("hooks.slack.com",),
        re.compile(r"hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}"),
    ),
    (
        "api_key",
        ("sk-", "_live_", "AIza", "npm_"),
        re.compile(
            r"sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}"
            r"|[srp]k_live_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{35}|npm_[A-Za-z0-9]{36}"
        ),
    ),
    ("aws_access_key", ("AKIA", "ASIA"), re.compile(r"(?:AKIA|ASIA)[A-Z0-9]{16}")),
)
_GLUED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_CONTEXT = re.compile(r"(?i)aws|secret|AKIA|ASIA|\[REDACTED:aws_access_key\]")

# Assignments: the keyword is found first (cheap on large texts), the key around it after.
_KEYWORD_WORDS = (
    r"passw(?:or)?d|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|private[_-]?key|auth[_-]?key|credentials?"
)
_KEYWORD = re.compile("(?i)" + _KEYWORD_WORDS)
_KEYWORD_LOWER = re.compile(_KEYWORD_WORDS)  # on lower-cased text: much faster than (?i)
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_ASSIGN = re.compile(
    r"(?P<rest>[A-Za-z0-9_.-]*)(?P<q>[\"']?)"
    r"(?P<sep>[ \t]*=[ \t]*|[ \t]*:[ \t]+|(?<=[\"']):[ \t]*)"
)
_FLAG_SEP = re.compile(r"(?P<rest>[A-Za-z0-9_.-]*)(?P<sep>[ \t]+)(?=[^\s-])")
_XML_VALUE = re.compile(r"(?P<rest>[A-Za-z0-9_.:-]*)>(?P<value>[^<\n]{1,4096})</")
_XML_TEXT = re.compile(r"[^<\n]+")
_QUOTED = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'")
_EQ_VALUE = re.compile(r"[^\s&;\"'<>]+")
_JSON_VALUE = re.compile(r"[^\s,}\]]+")
_LINE_VALUE = re.compile(r"[^\n]*[^\s]")
_FLAG_VALUE = re.compile(r"\S+")
# Keys that name something about a secret rather than the secret itself.
_NOT_SECRET_KEY = re.compile(
    r"(?i)(?:tokens|[_.-](?:file|path|dir|len|length|policy|expiry|expires|ttl|age|type|count"
    r"|limit|timeout|url|uri|endpoint|name|id|set|required))$"
)
_PLACEHOLDER = re.compile(
    r"(?i)^(?:|\*+|x{3,}|null|none|nil|true|false|yes|no|on|off|required|optional|changeme"
    r"|<[^>]*>|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\{\{.*\}\}|%\(.*\)s|\[REDACTED:[a-z_]+\].*)$"
)
_NSS_SOURCES = re.compile(
    r"^(?:(?:files|compat|systemd|sss|ldap|nis|nisplus|db|dns|winbind|cache|myhostname"
    r"|mymachines|resolve|\[[!A-Za-z=]+\])\s*)+$"
)


def _secret_kind(keyword: str) -> str:
    word = keyword.lower()
    if word.startswith("pass"):
        return "password"
    for kind in ("secret", "token", "credential"):
        if word.startswith(kind):
            return kind
    return "api_key" if "api" in word else "access_key" if "access" in word else "private_key"


def is_placeholder(value: str) -> bool:
    """Whether a value is a placeholder (``***``, ``${VAR}``, ``null``...) rather than a secret."""
    return bool(_PLACEHOLDER.match(value.strip().strip("\"'")))


def _token_replacer(kind: str, text: str) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        # "sk-..." glued to a word ("task-...", "desk-...") is a name, not a key.
        glued = match.group().startswith("sk-") and match.start() > 0
        if glued and text[match.start() - 1] in _GLUED:
            return match.group()
        return redacted(kind)

    return replace


def _redact_assignments(text: str, lowered: str) -> str:
    """Replace the values of ``password=...``, ``"token": "..."``, ``--secret ...`` and the like.

    Args:
        text: The text.
        lowered: ``text`` lower-cased with every index unchanged (keywords are searched there).
    """
    out: list[str] = []
    done = 0
    pos = 0
    while match := _KEYWORD_LOWER.search(lowered, pos):
        pos = match.end()
        start = match.start()
        while start > done and text[start - 1] in _KEY_CHARS:
            start -= 1
        quoted_key = start > 0 and text[start - 1] in "\"'"
        flag = text.startswith("--", start)
        xml = start > 0 and text[start - 1] == "<"
        key, value_at, finder = "", -1, _LINE_VALUE
        if xml and (x := _XML_VALUE.match(text, match.end())):
            key = text[start : x.start("rest")] + x["rest"]
            value_at, finder = x.start("value"), _XML_TEXT
        elif a := _ASSIGN.match(text, match.end()):
            key = text[start : a.start("rest")] + a["rest"]
            value_at = a.end()
            if "=" in a["sep"]:
                finder = _EQ_VALUE
            elif quoted_key or a["q"]:
                finder = _JSON_VALUE
        elif flag and (f := _FLAG_SEP.match(text, match.end())):
            key = text[start : f.start("rest")] + f["rest"]
            value_at, finder = f.end(), _FLAG_VALUE
        if value_at < done or _NOT_SECRET_KEY.search(key.lstrip("-")):
            continue  # no value, a value already replaced, or a key that is not a secret
        value = _QUOTED.match(text, value_at) or finder.match(text, value_at)
        if value is None or is_placeholder(value.group()):
            continue
        if key.lower() == "passwd" and _NSS_SOURCES.match(value.group()):
            continue
        quote = value.group()[0] if value.group()[0] in "\"'" else ""
        out.append(text[done:value_at])
        out.append(quote + redacted(_secret_kind(match.group())) + quote)
        done = value.end()
        pos = value_at  # a value may itself hold "secret: ..." whose value runs further
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def _redact_aws_secrets(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group()
        if not (re.search(r"[a-z]", token) and re.search(r"[A-Z]", token)):
            return token  # hex digests and the like are not secret keys
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        line = text[line_start : line_end if line_end >= 0 else len(text)]
        return redacted("aws_secret_key") if _AWS_CONTEXT.search(line) else token

    return _AWS_SECRET.sub(replace, text)


def _url_credentials(match: re.Match[str]) -> str:
    scheme = match["scheme"][:-3].lower()
    base = scheme.split("+")[0].rsplit(":", 1)[-1]
    kind = "connection_string" if _DB_SCHEMES.fullmatch(base) else "url_password"
    return f"{match['scheme']}{match['user']}:{redacted(kind)}@"


_PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_WINDOW_REACH = 64 * 1024


def _lower(text: str) -> str:
    """Lower-case ASCII letters only, so every index still points at the same character."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def _redact_pem(text: str) -> str:
    if "PRIVATE KEY" not in text:
        return text
    text = _PEM_BLOCK.sub(redacted("private_key"), text)
    if "-----END " not in text:
        return text
    out: list[str] = []
    done = 0
    for end in _PEM_END.finditer(text):
        if end.start() < done:
            continue
        start = max(done, end.start() - _WINDOW_REACH)
        tail = _PEM_TAIL.search(text, start, end.end())
        if tail is not None:
            out.append(text[done : tail.start()])
            out.append(redacted("private_key"))
            done = tail.end()
    out.append(text[done:])
    return "".join(out)


def redact_secrets(text: str) -> str:
    """Replace every secret found in ``text`` by ``[REDACTED:<kind>]``.

    Each rule runs only when a cheap substring test says it could match, so ordinary text costs
    a few scans.

    Args:
        text: Any text: logs, configs, env listings, JSON, YAML, command lines.

    Returns:
        The text with secrets replaced; the same object when nothing was found.
    """
    if not text:
        return text
    result = _redact_pem(text)
    lowered = _lower(result)
    if "://" in result:
        result = _URL_CREDENTIALS.sub(_url_credentials, result)
    if "authorization" in lowered:
        result = _AUTH_HEADER.sub(
            lambda m: (
                m["head"]
                + (m["value"] if m["value"].startswith("[REDACTED") else redacted("authorization"))
            ),
            result,
        )
    if "bearer" in lowered:
        result = _BEARER.sub(lambda m: m["head"] + redacted("bearer_token"), result)
    for kind, guards, pattern in _TOKENS:
        if any(guard in result for guard in guards):
            result = pattern.sub(_token_replacer(kind, result), result)
    if len(result) != len(lowered) or result != text:
        lowered = _lower(result)
    if _KEYWORD_LOWER.search(lowered):
        result = _redact_assignments(result, lowered)
    if any(word in lowered for word in ("aws", "secret", "akia", "asia")):
        result = _redact_aws_secrets(result)
    return text if result == text else result


def secret_key_kind(key: str) -> str | None:
    """The secret kind a mapping key names (``"db_password"`` → ``"password"``), or ``None``."""
    match = _KEYWORD.search(key)
    if match is None or _NOT_SECRET_KEY.search(key):
        return None
    return _secret_kind(match.group())

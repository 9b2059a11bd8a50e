"""Remove secrets from text before it reaches a model provider; optionally anonymise hosts.

Secrets (private keys, passwords in URLs and configs, bearer tokens, JWTs, cloud and vendor keys,
connection strings) are replaced by ``[REDACTED:<kind>]``. With anonymisation on, host names and
IP addresses become consistent pseudonyms (``host-1``, ``10.255.0.1``) for the life of one
``Redactor`` — one conversation — and ``restore`` maps them back in what the model answers.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic_core import to_jsonable_python

from tend.assistant.secret_rules import (
    is_placeholder,
    redact_secrets,
    redacted,
    secret_key_kind,
)
from tend.assistant.tokens import SCAN_LIMIT

__all__ = ["Redactor", "redact_secrets", "redacted"]


_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
)
_IPV6 = re.compile(
    r"(?<![:\w])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
    r"|(?:[0-9A-Fa-f]{1,4}:){1,6}(?::[0-9A-Fa-f]{1,4}){1,6}"
    r"|(?:[0-9A-Fa-f]{1,4}:){1,7}:)(?![:\w])"
)
# A run of name characters: a host name, an address, or an ordinary word (most runs).
_RUN = re.compile(r"[\w.-]+")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TLD = re.compile(
    r"com|net|org|io|dev|app|cloud|local|lan|internal|intranet|corp|home|arpa|localdomain|priv"
    r"|private|site|online|tech|info|biz|us|uk|de|fr|nl|eu|ca|au|jp|ch|se|fi|dk|pl|es|be|at|ie"
    r"|nz|br|ru|cn"
)


def _is_fqdn(name: str) -> bool:
    """Whether a lower-cased dotted name looks like a host name (``db1.example.com``)."""
    labels = name.split(".")
    return (
        len(labels) >= 2
        and _TLD.fullmatch(labels[-1]) is not None
        and not name.endswith("localhost")
        and all(_LABEL.fullmatch(label) for label in labels)
    )


_PSEUDONYM = re.compile(r"host-\d+|10\.255\.\d{1,3}\.\d{1,3}|fd00:255::[0-9a-f]{1,4}")


class Redactor:
    """Redacts secrets (and optionally anonymises hosts) in everything sent to a provider.

    One instance serves one conversation: its pseudonyms stay the same across requests, and
    ``restore`` maps them back. ``mapping`` exports them so a resumed conversation can reuse them.
    """

    def __init__(
        self,
        *,
        anonymise: bool = False,
        known_hosts: Iterable[str] = (),
        mapping: Mapping[str, str] | None = None,
        cache_entries: int = 4096,
    ) -> None:
        """Create a redactor.

        Args:
            anonymise: Also replace host names and IP addresses with pseudonyms.
            known_hosts: Names (and addresses) of inventory hosts, anonymised wherever they occur;
                fully qualified names and IP addresses are found without being listed.
            mapping: Pseudonyms from an earlier ``mapping`` export (original → pseudonym).
            cache_entries: Texts whose redaction is remembered (a history is re-sent every step).
        """
        self.anonymise = anonymise
        self._forward: dict[str, str] = {}
        self._reverse: dict[str, str] = {}
        self._counters = {"host": 0, "ipv4": 0, "ipv6": 0}
        hosts = {h for h in known_hosts if h and h.lower() != "localhost"}
        self._known_lower = {h.lower() for h in hosts}
        for original, pseudonym in (mapping or {}).items():
            self._forward[original.lower()] = pseudonym
            self._reverse[pseudonym] = original
        self._cache: dict[str, str] = {}
        self._cache_entries = cache_entries

    @property
    def mapping(self) -> dict[str, str]:
        """The pseudonyms given so far, original → pseudonym."""
        return {original: pseudonym for pseudonym, original in self._reverse.items()}

    def redact(self, text: str) -> str:
        """Redact secrets, then (when enabled) anonymise hosts and addresses.

        Args:
            text: Any text.

        Returns:
            The text safe to send to a provider.
        """
        if not text:
            return text
        cacheable = len(text) <= SCAN_LIMIT
        if cacheable and (found := self._cache.get(text)) is not None:
            return found
        result = redact_secrets(text)
        if self.anonymise:
            result = self._anonymise(result)
        if cacheable:
            if len(self._cache) >= self._cache_entries:
                self._cache.clear()
            self._cache[text] = result
        return result

    def redact_value(self, value: Any) -> Any:
        """Redact a JSON-like value: strings inside it, and the values of secret-named keys.

        Args:
            value: A string, number, mapping, sequence, or a pydantic model / dataclass.

        Returns:
            The redacted value (plain JSON types for models); ``value`` itself when unchanged.
        """
        if isinstance(value, str):
            return self.redact(value)
        if value is None or isinstance(value, bool | int | float | bytes):
            return value
        if isinstance(value, dict):
            changed = False
            out: dict[Any, Any] = {}
            for key, item in value.items():
                new_key = self.redact(key) if isinstance(key, str) else key
                kind = secret_key_kind(key) if isinstance(key, str) else None
                if kind and isinstance(item, str | int | float) and not isinstance(item, bool):
                    new_item: Any = item if is_placeholder(str(item)) else redacted(kind)
                else:
                    new_item = self.redact_value(item)
                changed |= new_key is not key or new_item is not item
                out[new_key] = new_item
            return out if changed else value
        if isinstance(value, list | tuple):
            items = [self.redact_value(item) for item in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return items
        try:
            plain = to_jsonable_python(value)
        except Exception:  # not JSON-able (files, images): nothing textual to redact
            return value
        new = self.redact_value(plain)
        return value if new is plain else new

    def restore(self, text: str) -> str:
        """Put the original host names and addresses back in place of their pseudonyms."""
        if not self._reverse or not text:
            return text
        return _PSEUDONYM.sub(lambda m: self._reverse.get(m.group(), m.group()), text)

    def restore_value(self, value: Any) -> Any:
        """``restore`` every string of a JSON-like value (tool arguments the model wrote)."""
        if isinstance(value, str):
            return self.restore(value)
        if isinstance(value, dict):
            return {self.restore_value(k): self.restore_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.restore_value(item) for item in value]
        return value

    # --- anonymisation ---

    def _pseudonym(self, original: str, kind: str) -> str:
        key = original.lower()
        found = self._forward.get(key)
        if found is not None:
            return found
        while True:
            self._counters[kind] += 1
            n = self._counters[kind]
            if kind == "host":
                candidate = f"host-{n}"
            elif kind == "ipv4":
                candidate = f"10.255.{(n - 1) // 254}.{(n - 1) % 254 + 1}"
            else:
                candidate = f"fd00:255::{n:x}"
            if candidate not in self._reverse and candidate not in self._known_lower:
                break
        self._forward[key] = candidate
        self._reverse[candidate] = original
        return candidate

    def _anonymise(self, text: str) -> str:
        def run(match: re.Match[str]) -> str:
            found = match.group()
            core = found.strip(".-")
            if not core or core in self._reverse:
                return found
            lead = found.index(core)
            lower = core.lower()
            if lower in self._known_lower:
                pseudonym = self._pseudonym(core, "host")
            elif "." not in core:
                return found
            elif _IPV4.fullmatch(core):
                if _keep_ipv4(core):
                    return found
                pseudonym = self._pseudonym(core, "ipv4")
            elif _is_fqdn(lower):
                pseudonym = self._pseudonym(core, "host")
            else:
                return found
            return found[:lead] + pseudonym + found[lead + len(core) :]

        def ipv6(match: re.Match[str]) -> str:
            found = match.group()
            if found in self._reverse or _keep_ipv6(found):
                return found
            return self._pseudonym(found, "ipv6")

        text = _RUN.sub(run, text)
        return _IPV6.sub(ipv6, text) if "::" in text or text.count(":") >= 7 else text


def _keep_ipv4(address: str) -> bool:
    """Addresses that identify nothing: loopback, unspecified, netmasks, broadcast."""
    return address.startswith(("127.", "0.", "255."))


def _keep_ipv6(address: str) -> bool:
    try:
        parsed = ipaddress.IPv6Address(address)
    except ValueError:
        return True  # not an address after all (e.g. a C++ scope "a::b")
    return parsed.is_loopback or parsed.is_unspecified

"""Rule evaluation without I/O: which series break a rule now, and how an alert's state moves.

A condition is ``True`` (the rule holds), ``False`` (it does not), or ``None`` (no data: the
host's collection failed or has not happened yet). No data keeps an alert where it is, so a
restart or an unreachable host neither resolves nor re-fires anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from tend.monitoring.alerts.rules import RuleSpec, labels_match
from tend.monitoring.registry import Labels, Sample, Snapshot

Condition = bool | None


def fingerprint(rule_id: int, host: str, labels: Labels) -> str:
    """Name one (rule, host, label set) stably: the SHA-256 of its JSON form."""
    raw = json.dumps([rule_id, host, [list(pair) for pair in labels]], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Observation:
    """One series a rule watches, as the latest snapshot shows it."""

    rule: RuleSpec
    host: str
    labels: Labels
    value: float
    threshold: float
    holds: bool

    @property
    def fingerprint(self) -> str:
        """The (rule, host, label set) this observation belongs to."""
        return fingerprint(self.rule.id, self.host, self.labels)


class FleetView:
    """The latest snapshots and the inventory's tags, indexed once per evaluation."""

    def __init__(
        self, snapshots: Iterable[Snapshot], inventory: Mapping[str, Iterable[str]]
    ) -> None:
        """Index the snapshots by host and metric.

        Args:
            snapshots: The newest snapshot of each host.
            inventory: Host name -> tags, for every host in the inventory.
        """
        self.inventory = {name: tuple(tags) for name, tags in inventory.items()}
        self.snapshots = {s.host: s for s in snapshots}
        self._by_metric: dict[str, dict[str, list[Sample]]] = {}
        for host, snapshot in self.snapshots.items():
            index: dict[str, list[Sample]] = {}
            for sample in snapshot.samples:
                index.setdefault(sample.metric, []).append(sample)
            self._by_metric[host] = index

    def samples(self, host: str, metric: str) -> list[Sample]:
        """Return a host's samples of one metric (empty when none were collected)."""
        return self._by_metric.get(host, {}).get(metric, [])

    def watched_hosts(self, rule: RuleSpec) -> list[str]:
        """Return the inventory hosts with a snapshot that ``rule`` selects."""
        return [
            host
            for host in self.snapshots
            if host in self.inventory and rule.selects(host, self.inventory[host])
        ]


def observe(rules: Iterable[RuleSpec], fleet: FleetView) -> dict[str, Observation]:
    """Evaluate every rule on every series it watches.

    Args:
        rules: The enabled rules.
        fleet: The indexed snapshots and inventory.

    Returns:
        Observations by fingerprint, whether the rule holds on them or not.
    """
    found: dict[str, Observation] = {}
    for rule in rules:
        for host in fleet.watched_hosts(rule):
            threshold = rule.threshold_on(fleet.snapshots[host])
            if threshold is None:
                continue
            for sample in fleet.samples(host, rule.metric):
                if rule.match_labels and not labels_match(rule.match_labels, dict(sample.labels)):
                    continue
                seen = Observation(
                    rule=rule,
                    host=host,
                    labels=sample.labels,
                    value=sample.value,
                    threshold=threshold,
                    holds=rule.holds(sample.value, threshold),
                )
                found[seen.fingerprint] = seen
    return found


def condition_without_series(
    rule: RuleSpec | None, host: str | None, fleet: FleetView
) -> Condition:
    """Decide an active alert whose series the latest snapshot did not show.

    Args:
        rule: The alert's rule, or ``None`` when it was deleted or disabled.
        host: The alert's host.
        fleet: The indexed snapshots and inventory.

    Returns:
        ``False`` (resolve) when the rule, the host or the rule's interest in it is gone, or
        the host was collected fine without the series; ``None`` (keep) without data.
    """
    if rule is None or host is None or host not in fleet.inventory:
        return False
    if not rule.selects(host, fleet.inventory[host]):
        return False
    snapshot = fleet.snapshots.get(host)
    if snapshot is None:
        return None
    collected = bool(fleet.samples(host, rule.metric))
    if not collected and (snapshot.error is not None or snapshot.value("host_up") == 0):
        return None
    if rule.threshold_on(snapshot) is None:
        return None
    return False


def next_state(
    current: str | None,
    condition: Condition,
    *,
    since: datetime | None,
    now: datetime,
    for_seconds: float,
) -> str | None:
    """Move an alert one evaluation forward.

    Args:
        current: ``pending``, ``firing`` or ``None`` (no active alert).
        condition: Whether the rule holds (``None``: no data).
        since: When the alert became pending.
        now: The evaluation time.
        for_seconds: How long the rule must hold before the alert fires.

    Returns:
        ``pending``, ``firing``, ``resolved``, or ``None`` when there is (or remains) no alert
        (a pending alert whose condition cleared never fired and leaves no trace).
    """
    if condition is None:
        return current
    if not condition:
        return "resolved" if current == "firing" else None
    if current == "firing":
        return "firing"
    started = since if current == "pending" and since is not None else now
    return "firing" if (now - started).total_seconds() >= for_seconds else "pending"

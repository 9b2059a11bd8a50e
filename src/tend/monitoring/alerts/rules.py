"""What a rule means: which hosts and series it watches, its threshold, and when it holds."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from tend.errors import ValidationFailed
from tend.monitoring.alerts.models import AlertRule
from tend.monitoring.registry import METRICS, Snapshot

COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule detached from the database session, as the evaluation reads it."""

    id: int
    name: str
    description: str | None
    metric: str
    match_labels: Mapping[str, str]
    comparison: str
    threshold: float | None
    threshold_per_cpu: float | None
    for_seconds: float
    severity: str
    hosts: tuple[str, ...]
    tags: tuple[str, ...]
    labels: Mapping[str, str]
    notify: tuple[Mapping[str, str], ...]

    @classmethod
    def of(cls, rule: AlertRule) -> RuleSpec:
        """Detach a rule row."""
        return cls(
            id=rule.id,
            name=rule.name,
            description=rule.description,
            metric=rule.metric,
            match_labels=dict(rule.match_labels),
            comparison=rule.comparison,
            threshold=rule.threshold,
            threshold_per_cpu=rule.threshold_per_cpu,
            for_seconds=rule.for_seconds,
            severity=rule.severity,
            hosts=tuple(rule.hosts),
            tags=tuple(rule.tags),
            labels=dict(rule.labels),
            notify=tuple(dict(t) for t in rule.notify),
        )

    def selects(self, host: str, tags: Iterable[str]) -> bool:
        """Whether the rule watches ``host``.

        A rule without host patterns and tags watches every host; otherwise a host is watched
        when its name matches one of the patterns (globs) or it carries one of the tags.
        """
        if not self.hosts and not self.tags:
            return True
        if any(fnmatchcase(host, pattern) for pattern in self.hosts):
            return True
        return bool(set(self.tags).intersection(tags))

    def threshold_on(self, snapshot: Snapshot) -> float | None:
        """Return the threshold for one host, or ``None`` when it cannot be known.

        ``threshold_per_cpu`` is multiplied by the host's ``cpu_count``; a host that did not
        report it has no threshold (and the rule has no data there).
        """
        if self.threshold is not None:
            return self.threshold
        cpus = snapshot.value("cpu_count")
        if self.threshold_per_cpu is None or cpus is None:
            return None
        return self.threshold_per_cpu * cpus

    def holds(self, value: float, threshold: float) -> bool:
        """Whether ``value`` compared with ``threshold`` raises the alert."""
        return COMPARE[self.comparison](value, threshold)

    def describe(self) -> str:
        """Return the condition in words, e.g. ``load15 > 2 x cpu_count``."""
        if self.threshold is not None:
            return f"{self.metric} {self.comparison} {self.threshold:g}"
        return f"{self.metric} {self.comparison} {self.threshold_per_cpu:g} x cpu_count"


def labels_match(patterns: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether every pattern (a glob) matches the label of the same name.

    A pattern naming a label the series does not carry never matches.
    """
    return all(
        name in labels and fnmatchcase(labels[name], pattern) for name, pattern in patterns.items()
    )


def check_rule(metric: str, match_labels: Mapping[str, str]) -> None:
    """Check a rule's metric and label matchers against the metric registry.

    Raises:
        ValidationFailed: For an unknown metric (the message lists the valid ones) or a label
            matcher the metric does not carry.
    """
    spec = METRICS.get(metric)
    if spec is None:
        valid = ", ".join(sorted(METRICS))
        raise ValidationFailed(f"unknown metric {metric!r}; valid metrics: {valid}")
    unknown = sorted(set(match_labels) - set(spec.labels))
    if unknown:
        carried = ", ".join(spec.labels) or "none"
        raise ValidationFailed(
            f"metric {metric} has no label(s) {', '.join(unknown)}; its labels: {carried}"
        )


def check_threshold(threshold: float | None, per_cpu: float | None) -> None:
    """Check that exactly one finite threshold is given.

    Raises:
        ValidationFailed: When none, both, or a non-finite value is given.
    """
    given = [v for v in (threshold, per_cpu) if v is not None]
    if len(given) != 1:
        raise ValidationFailed("give exactly one of threshold and threshold_per_cpu")
    if not math.isfinite(given[0]):
        raise ValidationFailed("the threshold must be a finite number")

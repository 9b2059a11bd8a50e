"""Rule evaluation without a database: state moves, thresholds, host and label selection."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tend.errors import ValidationFailed
from tend.monitoring.alerts.engine import (
    FleetView,
    condition_without_series,
    fingerprint,
    next_state,
    observe,
)
from tend.monitoring.alerts.rules import RuleSpec, check_rule, check_threshold
from tend.monitoring.registry import METRICS, Sample
from tests.monitoring.alert_support import T0, fs, snapshot


def rule(**fields: Any) -> RuleSpec:
    values: dict[str, Any] = {
        "id": 1,
        "name": "r",
        "description": None,
        "metric": "filesystem_used_percent",
        "match_labels": {},
        "comparison": ">",
        "threshold": 90.0,
        "threshold_per_cpu": None,
        "for_seconds": 60.0,
        "severity": "warning",
        "hosts": (),
        "tags": (),
        "labels": {},
        "notify": (),
    }
    values.update(fields)
    return RuleSpec(**values)


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def test_pending_fires_only_after_the_for_duration() -> None:
    assert next_state(None, True, since=None, now=at(0), for_seconds=60) == "pending"
    assert next_state("pending", True, since=at(0), now=at(59), for_seconds=60) == "pending"
    assert next_state("pending", True, since=at(0), now=at(60), for_seconds=60) == "firing"
    assert next_state("firing", True, since=at(0), now=at(600), for_seconds=60) == "firing"
    assert next_state("firing", False, since=at(0), now=at(601), for_seconds=60) == "resolved"
    # No "for": the first breach fires at once.
    assert next_state(None, True, since=None, now=at(0), for_seconds=0) == "firing"


def test_a_pending_alert_that_clears_leaves_nothing_and_no_data_changes_nothing() -> None:
    assert next_state("pending", False, since=at(0), now=at(30), for_seconds=60) is None
    assert next_state(None, False, since=None, now=at(0), for_seconds=60) is None
    for state in ("pending", "firing"):
        assert next_state(state, None, since=at(0), now=at(3600), for_seconds=60) == state
    assert next_state(None, None, since=None, now=at(0), for_seconds=0) is None


@pytest.mark.parametrize(
    ("comparison", "value", "holds"),
    [
        (">", 90.0, False),
        (">", 90.1, True),
        (">=", 90.0, True),
        ("<", 89.9, True),
        ("<=", 90.0, True),
        ("<=", 90.1, False),
        ("==", 90.0, True),
        ("!=", 90.0, False),
        ("!=", 0.0, True),
    ],
)
def test_comparisons(comparison: str, value: float, holds: bool) -> None:
    assert rule(comparison=comparison).holds(value, 90.0) is holds


def test_threshold_per_cpu_uses_each_hosts_cpu_count() -> None:
    load = rule(metric="load15", threshold=None, threshold_per_cpu=2.0)
    big = snapshot("big", T0, Sample.of("cpu_count", 8), Sample.of("load15", 10))
    small = snapshot("small", T0, Sample.of("cpu_count", 2), Sample.of("load15", 10))
    unknown = snapshot("unknown", T0, Sample.of("load15", 50))
    fleet = FleetView([big, small, unknown], {"big": [], "small": [], "unknown": []})
    seen = {o.host: o for o in observe([load], fleet).values()}
    assert (seen["big"].threshold, seen["big"].holds) == (16.0, False)
    assert (seen["small"].threshold, seen["small"].holds) == (4.0, True)
    assert "unknown" not in seen  # no cpu_count: no threshold, no data
    assert load.describe() == "load15 > 2 x cpu_count"


def test_hosts_are_selected_by_glob_or_tag_and_series_by_label_glob() -> None:
    web = snapshot("web-1", T0, fs("/", 95), fs("/var/lib", 97), fs("/boot", 99))
    db = snapshot("db-1", T0, fs("/", 95))
    other = snapshot("cache-1", T0, fs("/", 95))
    ghost = snapshot("ghost", T0, fs("/", 95))  # not in the inventory any more
    inventory = {"web-1": ["web"], "db-1": ["db", "prod"], "cache-1": []}
    fleet = FleetView([web, db, other, ghost], inventory)
    selected = rule(hosts=("web-*",), tags=("prod",), match_labels={"mount": "/var*"})
    found = observe([selected], fleet)
    assert {(o.host, o.labels) for o in found.values()} == {("web-1", (("mount", "/var/lib"),))}
    everywhere = observe([rule()], fleet)
    assert {o.host for o in everywhere.values()} == {"web-1", "db-1", "cache-1"}
    assert len(everywhere) == 5
    # One fingerprint per (rule, host, label set).
    assert fingerprint(1, "web-1", (("mount", "/"),)) != fingerprint(2, "web-1", (("mount", "/"),))
    assert fingerprint(1, "web-1", (("mount", "/"),)) == fingerprint(1, "web-1", (("mount", "/"),))


def test_an_alert_without_its_series_resolves_only_when_the_host_was_collected() -> None:
    fs_rule = rule()
    fine = snapshot("web-1", T0, fs("/data", 10))
    down = snapshot("db-1", T0, error="connection refused")
    partial = snapshot("cache-1", T0, Sample.of("load1", 1.0), error="df failed")
    inventory = {"web-1": [], "db-1": [], "cache-1": [], "new-1": []}
    fleet = FleetView([fine, down, partial], inventory)
    assert condition_without_series(fs_rule, "web-1", fleet) is False  # mount / went away
    assert condition_without_series(fs_rule, "db-1", fleet) is None  # unreachable: keep
    assert condition_without_series(fs_rule, "cache-1", fleet) is None  # df failed: keep
    assert condition_without_series(fs_rule, "new-1", fleet) is None  # not collected yet
    assert condition_without_series(fs_rule, "removed", fleet) is False  # left the inventory
    assert condition_without_series(None, "web-1", fleet) is False  # rule deleted or disabled
    narrowed = rule(hosts=("db-*",))
    assert condition_without_series(narrowed, "web-1", fleet) is False


def test_rules_are_checked_against_the_registry() -> None:
    with pytest.raises(ValidationFailed) as unknown:
        check_rule("disk_full", {})
    assert "load15" in str(unknown.value.detail)
    assert "filesystem_used_percent" in str(unknown.value.detail)
    with pytest.raises(ValidationFailed, match="no label"):
        check_rule("load15", {"mount": "/"})
    check_rule("filesystem_used_percent", {"mount": "/"})
    assert set(METRICS) >= {"host_up", "cpu_count"}
    for bad in ((None, None), (1.0, 2.0), (float("nan"), None), (None, float("inf"))):
        with pytest.raises(ValidationFailed):
            check_threshold(*bad)
    check_threshold(None, 2.0)

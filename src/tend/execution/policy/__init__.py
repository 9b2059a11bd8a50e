"""The command policy: decides from a parsed argv whether a command is read, change or forbidden.

Public API::

    decision = evaluate(["sudo", "systemctl", "restart", "nginx"], host_tags={"web"})
    decision.risk        # Risk.CHANGE
    decision.command     # "systemctl"
    decision.wrappers    # ["sudo"]

Rules are loaded with :func:`load_rules` from a YAML file (see ``example-rules.yaml``).
"""

from tend.execution.policy.argv import MAX_ARGV_BYTES, validate_argv
from tend.execution.policy.engine import evaluate
from tend.execution.policy.model import InvalidArgvError, PolicyDecision, Risk, max_risk
from tend.execution.policy.registry import is_known_command
from tend.execution.policy.rules import (
    PolicyRule,
    PolicyRules,
    PolicyRulesError,
    RuleMatch,
    load_rules,
    parse_rules,
    pattern_matches,
)

__all__ = [
    "MAX_ARGV_BYTES",
    "InvalidArgvError",
    "PolicyDecision",
    "PolicyRule",
    "PolicyRules",
    "PolicyRulesError",
    "Risk",
    "RuleMatch",
    "evaluate",
    "is_known_command",
    "load_rules",
    "max_risk",
    "parse_rules",
    "pattern_matches",
    "validate_argv",
]

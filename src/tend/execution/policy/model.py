"""Core types of the command policy: risk levels, decisions and argv errors."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Risk(StrEnum):
    """How much a command may affect a host, ordered ``READ < CHANGE < FORBIDDEN``.

    ``read`` runs at once, ``change`` needs a human's approval and ``forbidden`` is refused.
    Comparisons between two ``Risk`` values follow that order (not the alphabetical order of
    the strings), so ``max()`` over risks gives the most dangerous one.
    """

    READ = "read"
    CHANGE = "change"
    FORBIDDEN = "forbidden"

    @property
    def rank(self) -> int:
        """Position in the order ``read`` (0) < ``change`` (1) < ``forbidden`` (2)."""
        return _RANK[self]

    def at_least(self, floor: Risk) -> Risk:
        """Return this risk raised to ``floor`` when it is lower.

        Args:
            floor: The lowest risk acceptable.

        Returns:
            The higher of ``self`` and ``floor``.
        """
        return floor if floor.rank > self.rank else self

    def __lt__(self, other: object) -> bool:
        """Order by rank."""
        if isinstance(other, Risk):
            return self.rank < other.rank
        return NotImplemented

    def __le__(self, other: object) -> bool:
        """Order by rank."""
        if isinstance(other, Risk):
            return self.rank <= other.rank
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        """Order by rank."""
        if isinstance(other, Risk):
            return self.rank > other.rank
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        """Order by rank."""
        if isinstance(other, Risk):
            return self.rank >= other.rank
        return NotImplemented


_RANK = {Risk.READ: 0, Risk.CHANGE: 1, Risk.FORBIDDEN: 2}


def max_risk(*risks: Risk) -> Risk:
    """Return the most dangerous of ``risks`` (``read`` when none are given).

    Args:
        *risks: Risks to combine.

    Returns:
        The highest risk in the order ``read < change < forbidden``.
    """
    best = Risk.READ
    for risk in risks:
        best = best.at_least(risk)
    return best


class PolicyDecision(BaseModel):
    """The verdict of the policy on one argv.

    Attributes:
        risk: ``read`` (runs at once), ``change`` (needs approval) or ``forbidden`` (refused).
        reason: One human sentence explaining the verdict.
        command: The command that decided the verdict: the basename of the innermost argv[0]
            once wrappers such as ``sudo`` or ``sh -c`` are unwrapped.
        wrappers: Wrappers and interpreters unwrapped on the way to ``command``, outermost first.
        rule: Label of the configured rule that changed the built-in verdict, if any.
    """

    model_config = ConfigDict(frozen=True)

    risk: Risk
    reason: str = Field(min_length=1)
    command: str
    wrappers: list[str] = Field(default_factory=list)
    rule: str | None = None


class InvalidArgvError(ValueError):
    """The argv cannot be judged: it is empty, malformed or holds forbidden characters."""

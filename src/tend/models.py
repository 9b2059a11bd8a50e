"""Import every table so ``Base.metadata`` knows the whole schema (Alembic, tests)."""

from tend.assistant.context_models import AssistantOutput, AssistantOutputChunk, AssistantUsageDay
from tend.assistant.conversation_models import (
    AlertInvestigation,
    Conversation,
    ConversationApproval,
    ConversationEvent,
    ConversationMessage,
    ConversationTurn,
)
from tend.auth.models import ApiToken, User
from tend.db import Base
from tend.diagnostics.models import DiagnosticsBaseline
from tend.execution.models import Approval, AuditHead, AuditRecord
from tend.hosts.models import Host, HostTag
from tend.jobs.models import Job, JobEvent, Lease
from tend.monitoring.alerts.models import (
    Alert,
    AlertDeliveryAttempt,
    AlertNotification,
    AlertRule,
    AlertSilence,
)
from tend.monitoring.models import (
    HostStatus,
    MetricRollupHour,
    MetricRollupMinute,
    MetricSample,
    RollupProgress,
)

__all__ = [
    "Alert",
    "AlertDeliveryAttempt",
    "AlertInvestigation",
    "AlertNotification",
    "AlertRule",
    "AlertSilence",
    "ApiToken",
    "Approval",
    "AssistantOutput",
    "AssistantOutputChunk",
    "AssistantUsageDay",
    "AuditHead",
    "AuditRecord",
    "Base",
    "Conversation",
    "ConversationApproval",
    "ConversationEvent",
    "ConversationMessage",
    "ConversationTurn",
    "DiagnosticsBaseline",
    "Host",
    "HostStatus",
    "HostTag",
    "Job",
    "JobEvent",
    "Lease",
    "MetricRollupHour",
    "MetricRollupMinute",
    "MetricSample",
    "RollupProgress",
    "User",
]

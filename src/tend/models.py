"""Import every table so ``Base.metadata`` knows the whole schema (Alembic, tests)."""

from tend.auth.models import ApiToken, User
from tend.db import Base
from tend.execution.models import Approval, AuditHead, AuditRecord
from tend.hosts.models import Host, HostTag
from tend.jobs.models import Job, JobEvent, Lease

__all__ = [
    "ApiToken",
    "Approval",
    "AuditHead",
    "AuditRecord",
    "Base",
    "Host",
    "HostTag",
    "Job",
    "JobEvent",
    "Lease",
    "User",
]

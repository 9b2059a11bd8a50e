"""Import every table so ``Base.metadata`` knows the whole schema (Alembic, tests)."""

from tend.auth.models import ApiToken, User
from tend.db import Base
from tend.execution.models import Approval, AuditHead, AuditRecord
from tend.hosts.models import Host, HostTag

__all__ = [
    "ApiToken",
    "Approval",
    "AuditHead",
    "AuditRecord",
    "Base",
    "Host",
    "HostTag",
    "User",
]

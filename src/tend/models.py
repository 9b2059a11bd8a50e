"""Import every table so ``Base.metadata`` knows the whole schema (Alembic, tests)."""

from tend.auth.models import ApiToken, User
from tend.db import Base
from tend.hosts.models import Host, HostTag

__all__ = ["ApiToken", "Base", "Host", "HostTag", "User"]

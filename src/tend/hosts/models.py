"""Database tables of the hosts inventory."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tend.db import Base, TimestampMixin


class Host(TimestampMixin, Base):
    """A server tend manages: the machine it runs on (``local``) or one reached over SSH."""

    __tablename__ = "hosts"
    __table_args__ = (
        CheckConstraint("transport IN ('local', 'ssh')", name="transport"),
        CheckConstraint("port BETWEEN 1 AND 65535", name="port"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    address: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(default=22)
    user: Mapped[str | None] = mapped_column(String(32))
    transport: Mapped[str] = mapped_column(String(8), default="ssh")
    # A path on the tend server, never the key itself; None means the SSH agent / default keys.
    key_file: Mapped[str | None] = mapped_column(String(1024))
    # OpenSSH ProxyJump syntax: "[user@]host[:port]" hops, comma-separated; a hop may name a host.
    proxy_jump: Mapped[str | None] = mapped_column(String(1024))
    trust_on_first_use: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The host's public key ("ssh-ed25519 AAAA..."), pinned at add time or by trust-on-first-use.
    host_key: Mapped[str | None] = mapped_column(String(16384))

    tag_rows: Mapped[list[HostTag]] = relationship(
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
        order_by="HostTag.tag",
    )

    @property
    def tags(self) -> list[str]:
        """The host's labels, sorted."""
        return [row.tag for row in self.tag_rows]


class HostTag(Base):
    """One label on one host; a table of its own so hosts are found by tag through an index."""

    __tablename__ = "host_tags"

    host_id: Mapped[int] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(63), primary_key=True, index=True)

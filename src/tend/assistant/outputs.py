"""Tool outputs that fit the context: head + tail + a note, the whole kept under a handle.

``fit_output`` cuts a text to a token allowance, keeping its beginning and (a larger share of)
its end, cut at line boundaries, with a note saying how much was removed and how to page it.
``OutputStore`` keeps the whole text, compressed in chunks, so ``page`` reads a slice without
loading the rest; only the user who produced an output can page it, and outputs expire.
"""

from __future__ import annotations

import re
import secrets
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, delete, select

from tend.assistant.context_models import AssistantOutput, AssistantOutputChunk
from tend.assistant.tokens import estimate_tokens, utf8_size
from tend.db import Database, utcnow
from tend.errors import NotFound

if TYPE_CHECKING:
    from tend.settings import Settings

NOTE_TOKENS = 64
"""Tokens set aside for the note that replaces the removed middle."""
HEAD_SHARE = 0.4
"""Share of the kept text taken from the start; the end (a log's newest lines) gets the rest."""


@dataclass(frozen=True, slots=True)
class FittedOutput:
    """A text cut to fit a token allowance.

    Attributes:
        text: What to send: the whole text, or head + note + tail.
        handle: The handle the whole text is kept under, or ``None`` when nothing was kept.
        total_bytes: Size of the whole text (UTF-8).
        kept_head: Bytes kept from the beginning; also the offset where the removed part starts.
        kept_tail: Bytes kept from the end.
        removed_bytes: Bytes left out (0 when the text fitted).
        removed_lines: Lines left out.
    """

    text: str
    handle: str | None
    total_bytes: int
    kept_head: int
    kept_tail: int
    removed_bytes: int
    removed_lines: int = 0

    @property
    def truncated(self) -> bool:
        """Whether anything was left out."""
        return self.removed_bytes > 0


def human_bytes(size: int) -> str:
    """``48.9 MB``-style size (decimal units)."""
    value = float(size)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def removal_note(removed_bytes: int, removed_lines: int, handle: str | None, offset: int) -> str:
    """The line that stands for the removed middle of an output."""
    what = f"{human_bytes(removed_bytes)} / {removed_lines:,} lines removed"
    if handle is None:
        return f"[… {what}; the full output was not kept]"
    return f'[… {what}; page with read_output(handle="{handle}", offset={offset})]'


def _prefix_chars(text: str, tokens: int) -> int:
    """How many leading characters of ``text`` fit in ``tokens`` (to a line end when near)."""
    chars = min(len(text), tokens * 4)
    while chars > 0 and estimate_tokens(text[:chars]) > tokens:
        chars = int(chars * tokens / estimate_tokens(text[:chars]) * 0.95)
    newline = text.rfind("\n", chars // 2, chars)
    return newline + 1 if newline >= 0 else chars


def _suffix_chars(text: str, tokens: int) -> int:
    """How many trailing characters of ``text`` fit in ``tokens`` (from a line start when near)."""
    chars = min(len(text), tokens * 4)
    while chars > 0 and estimate_tokens(text[len(text) - chars :]) > tokens:
        chars = int(chars * tokens / estimate_tokens(text[len(text) - chars :]) * 0.95)
    start = len(text) - chars
    newline = text.find("\n", start, start + chars // 2)
    return len(text) - (newline + 1) if newline >= 0 and start > 0 else chars


def fit_output(text: str, max_tokens: int, *, handle: str | None = None) -> FittedOutput:
    """Cut ``text`` to at most ``max_tokens`` (estimated): head + note + tail.

    Works in bounded memory: only the kept head and tail are copied, never the whole text.

    Args:
        text: The output.
        max_tokens: The allowance (at least ``NOTE_TOKENS`` + 32 is useful).
        handle: The handle the whole text is kept under, named in the note.

    Returns:
        The fitted output; ``text`` itself (and no handle) when it already fits.
    """
    total = utf8_size(text)
    if estimate_tokens(text) <= max_tokens:
        return FittedOutput(text, None, total, total, 0, 0, 0)
    room = max(32, max_tokens - NOTE_TOKENS)
    head_chars = _prefix_chars(text, int(room * HEAD_SHARE))
    tail_chars = _suffix_chars(text, room - int(room * HEAD_SHARE))
    tail_start = max(head_chars, len(text) - tail_chars)
    head, tail = text[:head_chars], text[tail_start:]
    kept_head, kept_tail = utf8_size(head), utf8_size(tail)
    removed_bytes = total - kept_head - kept_tail
    removed_lines = text.count("\n", head_chars, tail_start)
    note = removal_note(removed_bytes, removed_lines, handle, kept_head)
    joined = head + ("" if head.endswith("\n") or not head else "\n") + note + "\n" + tail
    return FittedOutput(joined, handle, total, kept_head, kept_tail, removed_bytes, removed_lines)


@dataclass(frozen=True, slots=True)
class OutputOwner:
    """Who may page an output: the user whose run produced it, in which conversation."""

    user_id: int
    conversation_id: str | None = None


class OutputPage(BaseModel):
    """A slice of a kept output, as the ``read_output`` tool returns it."""

    handle: str
    offset: int = Field(description="byte offset of the first byte of text (a line start)")
    next_offset: int | None = Field(description="offset of the next page; null at the end")
    total_bytes: int
    text: str


_PEM_BEGIN = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(rb"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_LOOKBACK = 16 * 1024
_PURGE_EVERY = timedelta(hours=1)


def _inside_private_key(before: bytes) -> bool:
    """Whether text following ``before`` continues a private key block."""
    begins = [m.end() for m in _PEM_BEGIN.finditer(before)]
    ends = [m.end() for m in _PEM_END.finditer(before)]
    return bool(begins) and (not ends or begins[-1] > ends[-1])


class OutputStore:
    """Whole tool outputs kept in the database, compressed in chunks, paged by handle."""

    def __init__(
        self,
        database: Database,
        *,
        ttl: timedelta = timedelta(days=7),
        chunk_bytes: int = 256 * 1024,
        max_bytes: int = 256 * 1024 * 1024,
        max_page_bytes: int = 64 * 1024,
    ) -> None:
        """Bind the store to a database.

        Args:
            database: The database holding the ``assistant_outputs`` tables.
            ttl: How long an output can be paged.
            chunk_bytes: Uncompressed size of a stored chunk (a page reads one or two).
            max_bytes: Bytes of one output kept at most (the rest is dropped).
            max_page_bytes: Largest page ``page`` returns.
        """
        self.database = database
        self.ttl = ttl
        self.chunk_bytes = chunk_bytes
        self.max_bytes = max_bytes
        self.max_page_bytes = max_page_bytes
        self._purged_at: datetime | None = None

    @classmethod
    def from_settings(cls, database: Database, settings: Settings) -> OutputStore:
        """A store keeping outputs for ``assistant_output_ttl`` seconds."""
        return cls(database, ttl=timedelta(seconds=settings.assistant_output_ttl))

    async def put(self, text: str, owner: OutputOwner, *, label: str | None = None) -> str:
        """Keep ``text`` and return its new handle.

        The text is encoded and compressed a chunk at a time, so memory stays bounded. Once an
        hour a put also deletes expired outputs.

        Args:
            text: The whole output.
            owner: Who may page it.
            label: What produced it (a tool name), for people reading the table.

        Returns:
            The handle.
        """
        handle = secrets.token_hex(8)
        now = utcnow()
        if self._purged_at is None or now - self._purged_at > _PURGE_EVERY:
            self._purged_at = now
            await purge_expired(self.database, now=now)  # expired outputs go without a scheduler
        step = self.chunk_bytes if text.isascii() else max(1, self.chunk_bytes // 4)
        async with self.database.session() as session:
            row = AssistantOutput(
                handle=handle,
                user_id=owner.user_id,
                conversation_id=owner.conversation_id,
                label=(label or "")[:128] or None,
                total_bytes=0,
                total_lines=text.count("\n"),
                created_at=now,
                expires_at=now + self.ttl,
            )
            session.add(row)
            await session.flush()
            stored = 0
            for seq, at in enumerate(range(0, len(text), step)):
                raw = text[at : at + step].encode("utf-8")
                if stored + len(raw) > self.max_bytes:
                    break
                session.add(
                    AssistantOutputChunk(
                        handle=handle,
                        seq=seq,
                        start=stored,
                        size=len(raw),
                        data=zlib.compress(raw, 6),
                    )
                )
                stored += len(raw)
                if seq % 16 == 15:
                    await session.flush()  # bounded memory: send chunks as we go
            row.total_bytes = stored
        return handle

    async def fit(
        self, text: str, max_tokens: int, owner: OutputOwner, *, label: str | None = None
    ) -> FittedOutput:
        """``fit_output`` that keeps the whole text (under a handle) only when it had to cut.

        Args:
            text: The output.
            max_tokens: The allowance.
            owner: Who may page the kept text.
            label: What produced it.

        Returns:
            The fitted output; its note names the handle.
        """
        if estimate_tokens(text) <= max_tokens:
            return fit_output(text, max_tokens)
        handle = await self.put(text, owner, label=label)
        return fit_output(text, max_tokens, handle=handle)

    async def page(
        self,
        handle: str,
        *,
        user_id: int,
        offset: int = 0,
        limit: int | None = None,
        conversation_id: str | None = None,
        now: datetime | None = None,
    ) -> OutputPage:
        """Read a slice of a kept output, starting at the line that holds ``offset``.

        Pages start at a line start and end at a line end when the lines are not too long, so a
        secret is never split between two pages; a page that starts inside a private key block
        has the rest of the key replaced by ``[REDACTED:private_key]``.

        Args:
            handle: The handle from a note.
            user_id: The caller; only the owner can read.
            offset: Byte offset to start at.
            limit: Bytes to read at most (capped by ``max_page_bytes``).
            conversation_id: When given, the output must belong to this conversation too.
            now: The current time (tests).

        Returns:
            The page.

        Raises:
            NotFound: No such output for this user (or conversation), or it expired.
        """
        limit = max(1, min(limit or self.max_page_bytes, self.max_page_bytes))
        async with self.database.session() as session:
            row = await session.get(AssistantOutput, handle)
            if (
                row is None
                or row.user_id != user_id
                or (conversation_id is not None and row.conversation_id != conversation_id)
                or row.expires_at <= (now or utcnow())
            ):
                raise NotFound(f"no kept output with handle {handle!r} (it may have expired)")
            total = row.total_bytes
            offset = max(0, min(offset, total))
            low = max(0, offset - _LOOKBACK)
            high = min(total, offset + limit)
            chunks = (
                await session.execute(
                    select(AssistantOutputChunk.start, AssistantOutputChunk.data)
                    .where(
                        AssistantOutputChunk.handle == handle,
                        AssistantOutputChunk.start < max(high, low + 1),
                        AssistantOutputChunk.start + AssistantOutputChunk.size > low,
                    )
                    .order_by(AssistantOutputChunk.seq)
                )
            ).all()
        if not chunks:
            return OutputPage(
                handle=handle, offset=total, next_offset=None, total_bytes=total, text=""
            )
        base = chunks[0].start
        data = b"".join(zlib.decompress(chunk.data) for chunk in chunks)
        return _slice_page(handle, data, base, offset, limit, total)


def _slice_page(  # noqa: PLR0917 - one private call site
    handle: str, data: bytes, base: int, offset: int, limit: int, total: int
) -> OutputPage:
    """Cut one page out of ``data`` (which starts at byte ``base`` of the output)."""
    start = offset - base
    newline = data.rfind(b"\n", max(0, start - 4096), start)
    if newline >= 0:
        start = newline + 1  # back to the start of the line that holds offset
    elif base == 0 and start <= 4096:
        start = 0
    while start < len(data) and data[start] & 0xC0 == 0x80:
        start += 1  # not inside a multi-byte character
    end = min(len(data), start + limit)
    if base + end < total:
        newline = data.rfind(b"\n", start + limit // 2, end)
        if newline >= 0:
            end = newline + 1
        while start < end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
    body = data[start:end]
    if _inside_private_key(data[max(0, start - _LOOKBACK) : start]):
        closing = _PEM_END.search(body)
        body = b"[REDACTED:private_key]" + (body[closing.end() :] if closing else b"")
    next_offset = base + end if base + end < total else None
    return OutputPage(
        handle=handle,
        offset=base + start,
        next_offset=next_offset,
        total_bytes=total,
        text=body.decode("utf-8", errors="replace"),
    )


async def _delete_outputs(database: Database, condition: ColumnElement[bool]) -> int:
    async with database.session() as session:
        query = select(AssistantOutput.handle).where(condition)
        handles = list((await session.execute(query)).scalars())
        if handles:
            chunks = delete(AssistantOutputChunk).where(AssistantOutputChunk.handle.in_(handles))
            await session.execute(chunks)
            await session.execute(
                delete(AssistantOutput).where(AssistantOutput.handle.in_(handles))
            )
        return len(handles)


async def purge_expired(database: Database, *, now: datetime | None = None) -> int:
    """Delete kept outputs past their expiry; returns how many.

    Args:
        database: The database.
        now: The current time (tests).
    """
    return await _delete_outputs(database, AssistantOutput.expires_at <= (now or utcnow()))


async def forget_conversation(database: Database, conversation_id: str) -> int:
    """Delete the outputs kept for a conversation (when it is deleted); returns how many.

    Args:
        database: The database.
        conversation_id: The conversation.
    """
    return await _delete_outputs(database, AssistantOutput.conversation_id == conversation_id)

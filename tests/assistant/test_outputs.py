"""Tool outputs cut to head + tail + note, kept whole under a handle, paged by their owner only."""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tend.assistant.context_models import AssistantOutput, AssistantOutputChunk
from tend.assistant.outputs import (
    OutputOwner,
    OutputStore,
    fit_output,
    forget_conversation,
    human_bytes,
    purge_expired,
)
from tend.assistant.tokens import estimate_tokens
from tend.auth.models import User
from tend.db import Database, utcnow
from tend.errors import NotFound
from tend.migrate import upgrade_database
from tend.settings import Settings

NOTE = re.compile(
    r"\[… (?P<size>[\d.]+ [kMG]?B) / (?P<lines>[\d,]+) lines removed; "
    r'page with read_output\(handle="(?P<handle>\w+)", offset=(?P<offset>\d+)\)\]'
)


def log_lines(count: int, *, start: int = 0) -> str:
    return "".join(
        f"2026-11-26T10:{i // 60 % 60:02d}:{i % 60:02d}Z web-3 app[42]: "
        f"request {i} took {i % 97} ms\n"
        for i in range(start, start + count)
    )


# --- fit_output (no database) ---


def test_a_text_that_fits_is_returned_as_is() -> None:
    text = log_lines(10)
    fitted = fit_output(text, 1000)
    assert fitted.text is text
    assert fitted.handle is None
    assert not fitted.truncated
    assert fitted.total_bytes == fitted.kept_head == len(text)


def test_a_long_text_keeps_whole_lines_of_its_head_and_tail() -> None:
    text = log_lines(5000)
    fitted = fit_output(text, 800, handle="abc123")
    assert estimate_tokens(fitted.text) <= 800
    head, tail = fitted.text.split("\n[…", 1)
    assert text.startswith(head + "\n")
    tail = tail.split("]\n", 1)[1]
    assert text.endswith(tail)
    assert tail.startswith("2026-")
    assert head.startswith("2026-")
    assert "request 4999 took" in tail  # the newest lines are kept
    assert fitted.kept_tail > fitted.kept_head  # the end gets the larger share
    note = NOTE.search(fitted.text)
    assert note is not None
    assert note["handle"] == "abc123"
    assert int(note["offset"]) == fitted.kept_head
    removed = text[len(head) + 1 : len(text) - len(tail)]
    assert fitted.removed_bytes == len(removed.encode())
    assert int(note["lines"].replace(",", "")) == removed.count("\n") == fitted.removed_lines
    assert fitted.kept_head + fitted.kept_tail + fitted.removed_bytes == fitted.total_bytes


def test_sizes_are_bytes_of_utf8() -> None:
    text = "ünïcödé ✓ line\n" * 3000
    fitted = fit_output(text, 300)
    assert fitted.total_bytes == len(text.encode())
    assert fitted.truncated
    assert fitted.kept_head + fitted.kept_tail + fitted.removed_bytes == fitted.total_bytes


def test_one_enormous_line_is_still_cut() -> None:
    text = "x" * 2_000_000
    fitted = fit_output(text, 500)
    assert estimate_tokens(fitted.text) <= 500
    assert "the full output was not kept" in fitted.text
    assert "2.0 MB" in fitted.text


def test_human_sizes() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(48_900_000) == "48.9 MB"
    assert human_bytes(2_500_000_000) == "2.5 GB"


def test_a_50_mb_output_is_fitted_in_bounded_memory() -> None:
    text = log_lines(820_000)
    assert len(text) > 50_000_000
    tracemalloc.start()
    try:
        fitted = fit_output(text, 2000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert estimate_tokens(fitted.text) <= 2000
    assert peak < 2_000_000, f"fitting copied the text: peak {peak:,} bytes"
    assert human_bytes(fitted.removed_bytes) in fitted.text


# --- OutputStore (both database backends) ---


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database.from_settings(settings)
    await upgrade_database(db)
    yield db
    await db.dispose()


@pytest.fixture
async def users(database: Database) -> tuple[int, int]:
    async with database.session() as session:
        alice = User(username="alice", password_hash="-", role="operator")
        bob = User(username="bob", password_hash="-", role="viewer")
        session.add_all([alice, bob])
        await session.flush()
        return alice.id, bob.id


async def read_all(
    store: OutputStore, handle: str, user: int, offset: int = 0, **kw: object
) -> str:
    parts = []
    next_offset: int | None = offset
    while next_offset is not None:
        page = await store.page(handle, user_id=user, offset=next_offset, **kw)  # type: ignore[arg-type]
        assert page.offset == next_offset  # pages follow each other without gaps
        parts.append(page.text)
        next_offset = page.next_offset
    return "".join(parts)


async def test_a_kept_output_pages_back_exactly(database: Database, users: tuple[int, int]) -> None:
    alice, _ = users
    store = OutputStore(database, chunk_bytes=64 * 1024, max_page_bytes=50_000)
    text = log_lines(20_000) + "ünïcödé ✓ " * 5000 + "\nlast line without newline"
    handle = await store.put(text, OutputOwner(alice, "conv-1"), label="read_logs")
    assert await read_all(store, handle, alice) == text
    first = await store.page(handle, user_id=alice)
    assert first.total_bytes == len(text.encode())
    assert first.text.endswith("\n")
    assert len(first.text.encode()) <= 50_000


async def test_a_page_starts_at_the_line_holding_the_offset(
    database: Database, users: tuple[int, int]
) -> None:
    alice, _ = users
    store = OutputStore(database)
    text = log_lines(1000)
    handle = await store.put(text, OutputOwner(alice))
    inside = text.index("request 500 took") + 3
    page = await store.page(handle, user_id=alice, offset=inside, limit=200)
    assert page.text.startswith("2026-")
    assert "request 500 took" in page.text
    assert page.offset == text.index("request 500") - len("2026-11-26T10:08:20Z web-3 app[42]: ")
    end = await store.page(handle, user_id=alice, offset=10**9)
    assert end.text == ""
    assert end.next_offset is None


async def test_only_the_owner_in_its_conversation_can_page(
    database: Database, users: tuple[int, int]
) -> None:
    alice, bob = users
    store = OutputStore(database)
    handle = await store.put("secret-ish output\n", OutputOwner(alice, "conv-1"))
    with pytest.raises(NotFound):
        await store.page(handle, user_id=bob)
    with pytest.raises(NotFound):
        await store.page(handle, user_id=alice, conversation_id="conv-2")
    with pytest.raises(NotFound):
        await store.page("0123456789abcdef", user_id=alice)
    page = await store.page(handle, user_id=alice, conversation_id="conv-1")
    assert page.text == "secret-ish output\n"


async def test_outputs_expire_and_are_purged(database: Database, users: tuple[int, int]) -> None:
    alice, _ = users
    store = OutputStore(database, ttl=timedelta(hours=1), chunk_bytes=1024)
    old = await store.put(log_lines(100), OutputOwner(alice))
    later = utcnow() + timedelta(hours=2)
    with pytest.raises(NotFound):
        await store.page(old, user_id=alice, now=later)
    assert await purge_expired(database, now=later) == 1
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(AssistantOutput)) == 0
        assert await session.scalar(select(func.count()).select_from(AssistantOutputChunk)) == 0


async def test_fit_keeps_the_whole_only_when_it_cuts(
    database: Database, users: tuple[int, int]
) -> None:
    alice, _ = users
    store = OutputStore(database)
    small = await store.fit("short\n", 500, OutputOwner(alice))
    assert small.handle is None
    assert small.text == "short\n"
    text = log_lines(3000)
    fitted = await store.fit(text, 500, OutputOwner(alice, "c"), label="read_logs")
    note = NOTE.search(fitted.text)
    assert note is not None
    assert note["handle"] == fitted.handle
    middle = await read_all(store, note["handle"], alice, int(note["offset"]))
    head, tail = fitted.text.split("\n[…")[0] + "\n", fitted.text.rsplit("]\n", 1)[1]
    assert head + middle == text  # from the note's offset on, the rest of the output
    assert middle.endswith(tail)


async def test_a_page_inside_a_private_key_does_not_show_it(
    database: Database, users: tuple[int, int]
) -> None:
    alice, _ = users
    body = ["MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi6x5y1mC8Zb5ZkQKqvjG0BZ3rP"] * 40
    key = (
        "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(body) + "\n-----END RSA PRIVATE KEY-----\n"
    )
    text = log_lines(50) + key + log_lines(50, start=50)
    store = OutputStore(database)
    handle = await store.put(text, OutputOwner(alice))
    offset = len((log_lines(50) + "-----BEGIN RSA PRIVATE KEY-----\n" + body[0] + "\n").encode())
    page = await store.page(handle, user_id=alice, offset=offset, limit=4096)
    assert page.text.startswith("[REDACTED:private_key]")
    assert "MIIE" not in page.text
    assert "request 50 took" in page.text


async def test_a_deleted_conversation_forgets_its_outputs(
    database: Database, users: tuple[int, int], settings: Settings
) -> None:
    alice, _ = users
    store = OutputStore.from_settings(database, settings)
    assert store.ttl == timedelta(days=7)
    gone = await store.put(log_lines(10), OutputOwner(alice, "conv-1"))
    kept = await store.put(log_lines(10), OutputOwner(alice, "conv-2"))
    assert await forget_conversation(database, "conv-1") == 1
    with pytest.raises(NotFound):
        await store.page(gone, user_id=alice)
    assert (await store.page(kept, user_id=alice)).text == log_lines(10)


async def test_putting_an_output_sweeps_expired_ones(
    database: Database, users: tuple[int, int]
) -> None:
    alice, _ = users
    store = OutputStore(database, ttl=timedelta(seconds=-1))  # born expired
    await store.put("old\n", OutputOwner(alice))
    fresh = OutputStore(database)
    await fresh.put("new\n", OutputOwner(alice))
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(AssistantOutput)) == 1

"""The scan counter: once a window per client and code, batched writes, exact totals
across processes, nothing about the client stored."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from traceledger.ledger import Ledger
from traceledger.lookup.scans import RepeatFilter, ScanCounter, ScanFlusher

CODE = "01/09421234123456/21/CAN1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- who counts -------------------------------------------------------------------------------


def test_a_client_counts_once_a_minute_per_code() -> None:
    clock = Clock()
    repeats = RepeatFilter(60.0, clock)
    assert repeats.first_in_window("198.51.100.7", CODE)
    clock.now += 59.9
    assert not repeats.first_in_window("198.51.100.7", CODE)  # a reload, a proof check
    assert repeats.first_in_window("198.51.100.8", CODE)  # another shopper
    assert repeats.first_in_window("198.51.100.7", CODE + "X")  # another code
    clock.now += 0.1
    assert repeats.first_in_window("198.51.100.7", CODE)  # a minute after it counted


@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 1), st.floats(0, 90, allow_nan=False)),
        max_size=60,
    )
)
def test_the_filter_counts_exactly_when_the_pair_has_not_counted_for_a_window(
    visits: list[tuple[int, int, float]],
) -> None:
    """Whatever the timing, across the secret's rotations: a (client, code) pair counts
    if and only if it has not counted in the last window."""
    clock = Clock()
    repeats = RepeatFilter(60.0, clock)
    last_counted: dict[tuple[int, int], float] = {}
    for client, code, wait in visits:
        clock.now += wait
        expected = clock.now - last_counted.get((client, code), -1e9) >= 60.0
        assert repeats.first_in_window(f"203.0.113.{client}", f"code{code}") == expected
        if expected:
            last_counted[(client, code)] = clock.now


def test_forgetting_under_a_flood_keeps_memory_bounded() -> None:
    clock = Clock()
    repeats = RepeatFilter(60.0, clock, max_entries=100)
    for n in range(1000):
        assert repeats.first_in_window(f"10.0.{n // 256}.{n % 256}", CODE)
    assert len(repeats) <= 100


# --- counting into PostgreSQL -------------------------------------------------------------------


@pytest.fixture
def pool(ledger: Ledger) -> asyncpg.Pool:
    return ledger.pool


async def stored(pool: asyncpg.Pool, key: str) -> int | None:
    async with pool.acquire() as conn:
        count: int | None = await conn.fetchval("SELECT count FROM scan_counts WHERE key = $1", key)
    return count


async def test_counts_are_written_in_one_batch_and_read_back_with_what_is_pending(
    pool: asyncpg.Pool,
) -> None:
    counter = ScanCounter(pool)
    assert await counter.tally(CODE) is None  # never looked up
    for n in range(5):
        counter.record(CODE, f"192.0.2.{n}")
    counter.record(CODE, "192.0.2.0")  # the same client again: not counted
    pending = await counter.tally(CODE)
    assert pending is not None
    assert pending.count == 5
    assert await stored(pool, CODE) is None  # nothing written on the lookup's path
    assert await counter.flush() == 1
    assert await stored(pool, CODE) == 5
    after = await counter.tally(CODE)
    assert after is not None
    assert (after.count, after.first) == (5, pending.first)
    assert await counter.flush() == 0  # nothing pending: no statement


async def test_counters_of_several_processes_add_up(pool: asyncpg.Pool) -> None:
    counters = [ScanCounter(pool, cache_seconds=0) for _ in range(3)]
    for n, counter in enumerate(counters):
        for m in range(4):
            counter.record(CODE, f"198.51.{n}.{m}")
    await asyncio.gather(*(c.flush() for c in counters))
    assert await stored(pool, CODE) == 12
    again = await counters[0].tally(CODE)
    assert again is not None
    assert again.count == 12


async def test_the_flusher_writes_in_the_background_and_on_exit(pool: asyncpg.Pool) -> None:
    counter = ScanCounter(pool)
    async with ScanFlusher(counter, interval=0.02):
        counter.record(CODE, "192.0.2.1")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while await stored(pool, CODE) != 1:
            assert loop.time() < deadline, "the flusher did not write the count"
            await asyncio.sleep(0.02)
        counter.record(CODE, "192.0.2.2")
    assert await stored(pool, CODE) == 2  # the last batch, written on the way out


async def test_a_failed_write_keeps_the_counts_for_the_next_round(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE scan_counts RENAME TO scan_counts_away")
    counter = ScanCounter(pool)
    counter.record(CODE, "192.0.2.1")
    with pytest.raises(asyncpg.UndefinedTableError):
        await counter.flush()
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE scan_counts_away RENAME TO scan_counts")
    assert await counter.flush() == 1
    assert await stored(pool, CODE) == 1


async def test_only_counts_and_times_are_stored(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'scan_counts' ORDER BY ordinal_position"
        )
    assert [c["column_name"] for c in columns] == ["key", "count", "first_at", "last_at"]

"""Record times: when the log recorded an entry, as its leaf commits to it.

The sequencer never lets record times go backwards along the chain, so they are sorted
by index, and "recorded at or after T" is "index at or after some i": a binary search
over leaves finds that i without any index on record times (EPCIS GE_recordTime and
LT_recordTime, a subscription's initialRecordTime).
"""

from __future__ import annotations

from datetime import datetime

from traceledger.store.conn import Conn
from traceledger.tlog.leaf import Leaf


def to_microseconds(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


async def first_index_recorded_at(conn: Conn, moment: datetime) -> int:
    """The index of the first entry recorded at or after `moment` (the log's size if none)."""
    wanted = to_microseconds(moment)
    low, high = 0, int(await conn.fetchval("SELECT size FROM log_head"))
    while low < high:
        middle = (low + high) // 2
        leaf = await conn.fetchval("SELECT leaf FROM entries WHERE idx = $1", middle)
        if Leaf.decode(bytes(leaf), index=middle).record_time_us < wanted:
            low = middle + 1
        else:
            high = middle
    return low

"""Answers to recent lookups, kept while they are still what a fresh lookup would say.

Assembling a history costs a walk over the index, a few dozen inclusion proofs and a
JSON rendering; a popular product's QR code asks the same question again and again. An
answer stays right for as long as no new event names a key its walk visited: events are
only ever appended, and the walk reads nothing but events naming those keys. So a
cached answer records the keys it walked and how far the index reached before the walk
began; when the log has grown since, one indexed query tells whether any new event
names one of those keys. If none does, the answer (with its proofs against the older
checkpoint, which remain valid forever) is served again.

Answers also expire after a time-to-live, because parts of them depend on the clock
(an expiry date passing) and on mutable master data (an enterprise's name).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_BODIES = 4  # spellings of one item's Digital Link rendered per answer


@dataclass(slots=True)
class CachedAnswer:
    """One assembled history: as data (`decoded`), as JSON (`bodies`), or both.

    An answer assembled in this process starts as data; one read from the prebuilt
    answers table (traceledger/prebuilt.py) starts as the JSON body for its own path and
    is parsed only if a page must be rendered from it. Readers must not mutate it.
    """

    slot: tuple[str, bool]  # (canonical item key, inspector view)
    keys: list[str]  # every index key the walk visited
    indexed_below: int  # every event below this index was indexed before the walk
    current_at: int  # the largest tree size the answer is known to be current for
    pending: int  # its events not yet covered by its checkpoint
    event_count: int
    born: float
    decoded: dict[str, Any] | None = None
    bodies: dict[str | None, bytes] = field(default_factory=dict)
    counted: int = 0  # bytes the cache counts for it

    @property
    def own_path(self) -> str:
        """The path of the item's own Digital Link, as a prebuilt body names it."""
        return "/" + self.slot[0]

    @property
    def answer(self) -> dict[str, Any]:
        if self.decoded is None:
            self.decoded = json.loads(self.bodies[self.own_path])
        return self.decoded

    def with_input(self, path: str | None) -> dict[str, Any]:
        """The answer with `identifier.input` set to the path the caller asked with."""
        answer = self.answer
        return {**answer, "identifier": {**answer["identifier"], "input": path}}

    def json_body(self, path: str | None) -> tuple[bytes, bool]:
        """The answer as JSON bytes for one spelling of the Digital Link; True when the
        body was rendered now and kept (so the cache holds that many more bytes)."""
        body = self.bodies.get(path)
        if body is not None:
            return body, False
        body = json.dumps(self.with_input(path), separators=(",", ":")).encode()
        if len(self.bodies) >= MAX_BODIES:
            return body, False
        self.bodies[path] = body
        return body, True


def estimated_weight(entry: CachedAnswer) -> int:
    """Bytes an answer holds in memory, roughly: about 2 KB per event as data (counted
    whether or not it was parsed yet), plus its JSON bodies."""
    return 2_000 * (1 + entry.event_count) + sum(len(b) for b in entry.bodies.values())


class HistoryCache:
    """A bounded LRU of answers by (item key, inspector view), with a time-to-live."""

    def __init__(
        self, max_bytes: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[tuple[str, bool], CachedAnswer] = OrderedDict()
        self._total = 0  # bytes held, by estimated_weight plus rendered bodies

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0 and self.ttl > 0

    def now(self) -> float:
        return self._clock()

    def get(self, key: tuple[str, bool]) -> CachedAnswer | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if self._clock() - found.born > self.ttl:
            self.discard(key)
            return None
        self._entries.move_to_end(key)
        return found

    def put(self, entry: CachedAnswer) -> None:
        if not self.enabled:
            return
        self.discard(entry.slot)
        self._entries[entry.slot] = entry
        entry.counted = estimated_weight(entry)
        self._total += entry.counted
        self._trim()

    def body(self, entry: CachedAnswer, path: str | None) -> bytes:
        """The entry's JSON body for `path`, counting a newly kept body against the bound."""
        body, kept = entry.json_body(path)
        if kept and self._entries.get(entry.slot) is entry:
            entry.counted += len(body)
            self._total += len(body)
            self._trim()
        return body

    def discard(self, key: tuple[str, bool]) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._total -= old.counted

    def _trim(self) -> None:
        """Evict the least recently used answers until the total fits."""
        while self._total > self.max_bytes and self._entries:
            _, evicted = self._entries.popitem(last=False)
            self._total -= evicted.counted

    def __len__(self) -> int:
        return len(self._entries)

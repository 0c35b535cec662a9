"""The lookup answer cache: bounded by bytes, by age, and by spellings per answer."""

from __future__ import annotations

import json
from typing import Any

from traceledger.lookup.cache import MAX_BODIES, CachedAnswer, HistoryCache, estimated_weight


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def answer(key: str, events: int = 1) -> CachedAnswer:
    body: dict[str, Any] = {"identifier": {"key": key}, "events": [{}] * events, "pending": 0}
    return CachedAnswer((key, False), [key], 0, 1, 0, events, 0.0, body)


def test_answers_are_evicted_least_recently_used_first_to_stay_within_the_byte_bound() -> None:
    one = estimated_weight(answer("a"))
    cache = HistoryCache(max_bytes=3 * one, ttl=60, clock=Clock())
    for key in "abc":
        cache.put(answer(key))
    assert cache.get(("a", False)) is not None  # a is now the most recently used
    cache.put(answer("d"))
    assert cache.get(("b", False)) is None
    assert {k for k in "acd" if cache.get((k, False))} == {"a", "c", "d"}
    assert len(cache) == 3


def test_an_answer_expires_after_its_time_to_live() -> None:
    clock = Clock()
    cache = HistoryCache(max_bytes=10**6, ttl=60, clock=clock)
    entry = answer("a")
    entry.born = clock()
    cache.put(entry)
    clock.now = 59.0
    assert cache.get(("a", False)) is entry
    clock.now = 61.0
    assert cache.get(("a", False)) is None
    assert len(cache) == 0


def test_rendered_bodies_count_against_the_bound_and_carry_the_callers_path() -> None:
    entry = answer("a", events=0)
    cache = HistoryCache(max_bytes=estimated_weight(entry) + 50, ttl=60, clock=Clock())
    cache.put(entry)
    body = cache.body(entry, "/01/x")
    assert json.loads(body)["identifier"] == {"key": "a", "input": "/01/x"}
    assert "input" not in entry.answer["identifier"]  # the shared answer is untouched
    cache.body(entry, "/01/a-much-longer-spelling-of-the-same-item-that-tips-the-bound")
    assert len(cache) == 0  # the bodies pushed it over the bound


def test_only_a_few_spellings_per_answer_are_kept() -> None:
    entry = answer("a")
    for n in range(MAX_BODIES + 3):
        entry.json_body(f"/p{n}")
    assert len(entry.bodies) == MAX_BODIES


def test_a_zero_bound_turns_the_cache_off() -> None:
    cache = HistoryCache(max_bytes=0, ttl=60, clock=Clock())
    cache.put(answer("a"))
    assert not cache.enabled
    assert cache.get(("a", False)) is None


def test_a_stored_body_is_parsed_only_when_its_data_is_needed() -> None:
    entry = CachedAnswer(("01/x", False), ["01/x"], 0, 1, 0, 2, 0.0)
    entry.bodies["/01/x"] = b'{"identifier":{"key":"01/x","input":"/01/x"},"events":[]}'
    cache = HistoryCache(max_bytes=10**6, ttl=60, clock=Clock())
    cache.put(entry)
    assert cache.body(entry, "/01/x") is entry.bodies["/01/x"]
    assert entry.decoded is None  # served as stored, never parsed
    assert entry.with_input("/01/y")["identifier"] == {"key": "01/x", "input": "/01/y"}
    assert entry.decoded is not None
    # Counted as if parsed from the start, so parsing later never breaks the bound.
    assert entry.counted == estimated_weight(entry) == 2_000 * 3 + len(entry.bodies["/01/x"])

"""Salted field digests (traceledger/tlog/disclosure.py): what capture stores is what the
audit recomputes, for every JSON object, and no salt or value can change unnoticed."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from traceledger.tlog.disclosure import (
    SALT_SIZE,
    commitment,
    fields_of,
    salt_event,
    stored_commitment,
)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)  # past 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_events = st.dictionaries(st.text(min_size=1, max_size=12), _values, min_size=1, max_size=8)


@given(_events)
def test_the_stored_event_is_the_event_and_commits_as_the_audit_recomputes(
    event: dict[str, Any],
) -> None:
    stored, salts, committed = salt_event(event)
    assert json.loads(stored) == event
    assert len(salts) == SALT_SIZE * len(event)
    assert stored_commitment(stored, salts, {}) == committed


@given(_events, st.data())
def test_a_changed_salt_or_value_changes_the_commitment(
    event: dict[str, Any], data: st.DataObject
) -> None:
    stored, salts, committed = salt_event(event)
    at = data.draw(st.integers(0, len(salts) - 1))
    flipped = salts[:at] + bytes([salts[at] ^ 1]) + salts[at + 1 :]
    assert stored_commitment(stored, flipped, {}) != committed
    name = data.draw(st.sampled_from(sorted(event)))
    changed = {**event, name: [event[name]]}
    assert commitment(f.digest for f in fields_of(changed, salts, {})) != committed


@given(_events, st.data())
def test_a_redacted_field_keeps_its_digest_and_the_commitment(
    event: dict[str, Any], data: st.DataObject
) -> None:
    stored, salts, committed = salt_event(event)
    fields = fields_of(json.loads(stored), salts, {})
    gone = data.draw(st.sampled_from(fields))
    at = sorted(event).index(gone.name)
    kept = {k: v for k, v in event.items() if k != gone.name}
    kept_salts = salts[: at * SALT_SIZE] + salts[(at + 1) * SALT_SIZE :]
    assert (
        stored_commitment(json.dumps(kept).encode(), kept_salts, {gone.name: gone.digest})
        == committed
    )


def test_salts_are_fresh_for_every_event() -> None:
    event = {"bizStep": "shipping", "price": 12}
    first, second = salt_event(event), salt_event(event)
    assert first[1] != second[1]
    assert first[2] != second[2]

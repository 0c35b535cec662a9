"""What an identifier is in an event: the goods, a place, or a party.

Item histories follow the goods only. A location or party field names where something
happened or who took part, never whose goods they were: an event naming a competitor's
lot as its `bizLocation` says nothing about that lot.
"""

from __future__ import annotations

from collections.abc import Iterable

# The goods an event is about (event_keys roles).
WHAT = frozenset(
    {
        "epc",
        "class",
        "parent",
        "child",
        "childClass",
        "input",
        "inputClass",
        "output",
        "outputClass",
    }
)
WHERE = frozenset({"readPoint", "bizLocation"})
WHO = frozenset({"source", "destination"})
# Roles in which an event brings goods into being.
CREATED_BY_OBJECT_ADD = frozenset({"epc", "class"})
CREATED_BY_TRANSFORMATION = frozenset({"output", "outputClass"})


def goods(keys: Iterable[tuple[str, str]]) -> list[str]:
    """The keys an event names as goods, in order, each once."""
    return list(dict.fromkeys(k for k, role in keys if role in WHAT))

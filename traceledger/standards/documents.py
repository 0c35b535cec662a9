"""The EPCIS documents capture takes: an EPCISDocument, or an EPCISQueryDocument (what
another repository answers, and what the REST binding says capture accepts), plus the
cosmetic deviations real senders make that change no meaning.

Both kinds come out as one EPCISDocument-shaped object for the schema and the checks,
with the pointer to where the events really are, so every violation still points into
what was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from traceledger.errors import InvalidEventsError
from traceledger.standards.schemas import EVENT_LIST_POINTER, Violation

QUERY_EVENT_LIST_POINTER: Final = "/epcisBody/queryResults/resultsBody/eventList"
# What "schemaVersion" may say for EPCIS 2.0: "2.0", and the "2" (or the JSON number)
# some converters write.
_VERSION_2: Final = ("2.0", "2", 2, 2.0)


@dataclass(frozen=True, slots=True)
class EventDocument:
    """A submitted document in EPCISDocument shape, and where its events were."""

    document: Any  # what the schema checks (not a Mapping when the body was not an object)
    events_pointer: str = EVENT_LIST_POINTER

    def events(self) -> list[Mapping[str, Any]]:
        events: list[Mapping[str, Any]] = self.document["epcisBody"]["eventList"]
        return events

    def pointer(self, pointer: str) -> str:
        """A pointer into the normalised document, as a pointer into what was sent."""
        if self.events_pointer != EVENT_LIST_POINTER and pointer.startswith(EVENT_LIST_POINTER):
            return self.events_pointer + pointer[len(EVENT_LIST_POINTER) :]
        return pointer

    def violations(self, items: list[Violation]) -> list[dict[str, object]]:
        return [
            {"event": v.event, "pointer": self.pointer(v.pointer), "reason": v.reason}
            for v in items
        ]


def event_document(document: object) -> EventDocument:
    """The document in EPCISDocument shape, forgiving what changes no meaning:

    * a JSON-LD blank-node document ``id`` (``"_:document1"``) names nothing and is dropped;
    * ``schemaVersion`` ``"2"`` (or the number 2) means ``"2.0"``;
    * an ``EPCISQueryDocument`` contributes ``queryResults.resultsBody.eventList``.
    """
    if not isinstance(document, Mapping):
        return EventDocument(document)
    shaped = dict(document)
    if isinstance(shaped.get("id"), str) and shaped["id"].startswith("_:"):
        del shaped["id"]
    version = shaped.get("schemaVersion")
    if version in _VERSION_2 and type(version) is not bool:
        shaped["schemaVersion"] = "2.0"
    if shaped.get("type") != "EPCISQueryDocument":
        return EventDocument(shaped)
    events = _query_events(shaped.get("epcisBody"))
    shaped["type"] = "EPCISDocument"
    shaped["epcisBody"] = {"eventList": events}
    return EventDocument(shaped, QUERY_EVENT_LIST_POINTER)


def _query_events(body: object) -> object:
    """The event list of an EPCISQueryDocument's body; a precise 422 if it has none."""
    results = body.get("queryResults") if isinstance(body, Mapping) else None
    found = results.get("resultsBody") if isinstance(results, Mapping) else None
    events = found.get("eventList") if isinstance(found, Mapping) else None
    if events is None:
        raise InvalidEventsError(
            "an EPCISQueryDocument carries its events in epcisBody.queryResults.resultsBody",
            [
                {
                    "event": None,
                    "pointer": QUERY_EVENT_LIST_POINTER,
                    "reason": "required: the query results' event list",
                }
            ],
        )
    return events

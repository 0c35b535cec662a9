"""The parties entitlement is decided for: registered enterprises, as the registry knows them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from traceledger.errors import IdentifierError
from traceledger.standards.gs1 import parse_index_key


@dataclass(frozen=True, slots=True)
class Party:
    """An enterprise: its own GS1 company prefixes, the prefixes other owners delegated to
    it (a contract manufacturer labelling for a brand), and whether it is an authority."""

    id: int
    name: str = ""
    is_authority: bool = False
    prefixes: tuple[str, ...] = ()
    delegated: tuple[str, ...] = ()

    def owns(self, key: str) -> bool:
        """Whether `key` (an index key or identifier) lies under this party's own prefixes."""
        return _under(key, self.prefixes)

    def may_create(self, key: str) -> bool:
        """Whether this party may say what `key` is and where it comes from."""
        return _under(key, self.prefixes + self.delegated)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "authority": self.is_authority,
            "prefixes": list(self.prefixes),
            "delegatedPrefixes": list(self.delegated),
        }

    @classmethod
    def from_json(cls, data: Any) -> Party:
        """A party as an answer lists it; raises ValueError when malformed."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), int):
            raise ValueError("a party is an object with an integer id")  # noqa: TRY004 - reported as bad input
        return cls(
            data["id"],
            str(data.get("name") or ""),
            data.get("authority") is True,
            _strings(data.get("prefixes")),
            _strings(data.get("delegatedPrefixes")),
        )


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("prefixes are a list of strings")
    return tuple(value)


def _under(key: str, prefixes: tuple[str, ...]) -> bool:
    parsed = parse_index_key(key)
    if parsed is None:
        return False
    try:
        return any(parsed.owned_by(p) for p in prefixes)
    except IdentifierError:
        return False

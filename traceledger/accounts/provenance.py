"""How a sender proved who it is, in the words every answer uses for an event."""

from __future__ import annotations

from typing import Final

SIGNED: Final = "signed by the enterprise"
TOKEN: Final = "submitted with an access token"  # noqa: S105 - a phrase, not a secret
# events.submitted_with -> what answers say: a DSSE envelope and an RFC 9421 request are
# both signed with the enterprise's own key; a token only says who held it.
PROVENANCE: Final = {"dsse": SIGNED, "http-signature": SIGNED, "token": TOKEN}


def provenance(submitted_with: str | None) -> str:
    return PROVENANCE.get(submitted_with or "dsse", SIGNED)

"""Names for the identifiers an answer mentions, from master data and the registry.

`master_data` (traceledger/ingest/masterdata.py) holds the names entitled senders and
the registry stated, each with the log entry that said it, so a page's name can be
checked against the log like its events. A party nobody named is called by the
registered name of the enterprise holding its company prefix. Names change rarely and
an answer is served often: they are kept for a few seconds per key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import asyncpg

from traceledger.standards.gs1 import parse_index_key

__all__ = ["NameBook", "party_names", "read_names"]

MAX_KEYS = 2000  # keys named in one answer
REGISTRY = "registry"
SENDER = "\x00sender:"  # cache slots of enterprises' own party names (never an index key)

Names = dict[str, dict[str, Any]]


async def read_names(conn: Any, keys: list[str], origin: str = "") -> Names:
    """The current names (every attribute, every language) of `keys` that have any."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (m.key, m.attribute, m.lang)"
        " m.key, m.attribute, m.lang, m.value, m.version, m.idx, e.name AS by"
        " FROM master_data m LEFT JOIN enterprises e ON e.id = m.signer"
        " WHERE m.key = ANY($1::text[])"
        " ORDER BY m.key, m.attribute, m.lang, m.version DESC",
        keys,
    )
    found: Names = {}
    for r in rows:
        entry = found.setdefault(r["key"], {})
        entry.setdefault(r["attribute"], {})[r["lang"]] = r["value"]
        if r["attribute"] != "name":
            continue
        stated = entry.get("statedIn")
        if stated is None or r["idx"] > stated["index"]:
            # Where the newest name was said: fetch /v1/entries/{index} to check it.
            entry["statedIn"] = {"log": origin, "index": r["idx"], "version": r["version"]}
            entry["by"] = r["by"] or REGISTRY
    return await _with_enterprises(conn, keys, found)


async def party_names(conn: Any, senders: list[str], origin: str = "") -> Names:
    """The party (417/<GLN>) each enterprise named `senders` gave itself in master data,
    marked with the registered name ("enterprise"), so a page can call a sender by it."""
    rows = await conn.fetch(
        "SELECT DISTINCT m.key, e.name FROM master_data m JOIN enterprises e ON e.id = m.signer"
        " WHERE e.name = ANY($1::text[]) AND m.key LIKE '417/%' AND m.attribute = 'name'",
        senders,
    )
    found = await read_names(conn, [r["key"] for r in rows], origin)
    for r in rows:
        found.setdefault(r["key"], {})["enterprise"] = r["name"]
    return found


async def _with_enterprises(conn: Any, keys: list[str], found: Names) -> Names:
    """Each party key's enterprise (by company prefix), which also names the parties
    nobody named in master data."""
    parties = [k for k in keys if k.startswith("417/")]
    if not parties:
        return found
    owners = await conn.fetch(
        "SELECT e.name, p.prefix FROM enterprise_prefixes p JOIN enterprises e"
        " ON e.id = p.enterprise_id ORDER BY length(p.prefix) DESC"
    )
    for key in parties:
        parsed = parse_index_key(key)
        owner = next((o["name"] for o in owners if parsed and parsed.owned_by(o["prefix"])), None)
        if owner is None:
            continue
        entry = found.setdefault(key, {"name": {"": owner}, "by": REGISTRY})
        entry["enterprise"] = owner
    return found


class NameBook:
    """Names by key, read at most once per `ttl` seconds per key."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        origin: str = "",
        ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._origin = origin
        self._ttl = ttl
        self._clock = clock
        self._kept: dict[str, tuple[float, dict[str, Any] | None]] = {}

    async def names(self, keys: Iterable[str], senders: Iterable[str] = ()) -> Names:
        """Names of `keys`, and the parties of the enterprises registered as `senders`."""
        wanted = list(dict.fromkeys(keys))[:MAX_KEYS]
        parties = [SENDER + s for s in dict.fromkeys(senders)][:MAX_KEYS]
        now = self._clock()
        stale = [
            k for k in wanted + parties if (kept := self._kept.get(k)) is None or kept[0] <= now
        ]
        if stale:
            await self._read(stale, now)
        found = {k: v for k in wanted if (v := self._kept[k][1]) is not None}
        for sender in parties:
            found.update(self._kept[sender][1] or {})
        return found

    async def _read(self, stale: list[str], now: float) -> None:
        keys = [k for k in stale if not k.startswith(SENDER)]
        senders = [k.removeprefix(SENDER) for k in stale if k.startswith(SENDER)]
        async with self._pool.acquire() as conn:
            fresh = await read_names(conn, keys, self._origin) if keys else {}
            parties = await party_names(conn, senders, self._origin) if senders else {}
        if len(self._kept) > 100_000:
            self._kept.clear()  # a crude bound: names are cheap to read again
        for key in keys:
            self._kept[key] = (now + self._ttl, fresh.get(key))
        for sender in senders:
            own = {k: v for k, v in parties.items() if v.get("enterprise") == sender}
            self._kept[SENDER + sender] = (now + self._ttl, own)

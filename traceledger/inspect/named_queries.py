"""Named EPCIS queries (POST /queries): stored definitions, owned by who made them.

A query made with an enterprise token belongs to that enterprise (any of its tokens may
read, subscribe to or delete it) and sees what the enterprise may see; one made by an
inspector or regulator belongs to that token and sees everything. Other owners' queries
do not exist for a caller (404), whatever their names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from traceledger.errors import (
    LimitReachedError,
    NotFoundError,
    QueryExistsError,
    QueryParameterError,
)
from traceledger.inspect.query import EventQuery, parse_definition
from traceledger.store.conn import Conn

MAX_QUERIES = 100  # per owner
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,99}")


@dataclass(frozen=True, slots=True)
class Owner:
    """Who owns (and sees through) a query: an enterprise, or an official's token."""

    token_id: int
    enterprise_id: int | None  # None: an inspector's or regulator's token

    def where(self, first: int) -> tuple[str, list[object]]:
        """SQL condition on named_queries for "owned by", with parameters from $first."""
        if self.enterprise_id is not None:
            return f"enterprise_id = ${first}", [self.enterprise_id]
        return f"enterprise_id IS NULL AND created_by = ${first}", [self.token_id]


@dataclass(frozen=True, slots=True)
class NamedQuery:
    id: int
    name: str
    definition: dict[str, Any]
    enterprise_id: int | None
    created_at: datetime

    @property
    def query(self) -> EventQuery:
        return parse_definition(self.definition)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "query": self.definition}


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise QueryParameterError(
            "name",
            "a query name is 1 to 100 letters, digits and . _ ~ - (it becomes a URL path "
            "segment), starting with a letter or digit",
        )
    return name


def _from_row(row: Any) -> NamedQuery:
    definition = row["definition"]
    if isinstance(definition, str):
        definition = json.loads(definition)
    return NamedQuery(row["id"], row["name"], definition, row["enterprise_id"], row["created_at"])


_COLUMNS = "id, name, definition::text AS definition, enterprise_id, created_at"


async def create_query(conn: Conn, owner: Owner, name: object, definition: object) -> NamedQuery:
    """Store a query after checking its definition (400 naming the bad parameter)."""
    name = check_name(name)
    parse_definition(definition)
    where, args = owner.where(1)
    async with conn.transaction():
        count = await conn.fetchval(
            f"SELECT count(*) FROM named_queries WHERE {where}",  # noqa: S608 - fixed SQL
            *args,
        )
        if count >= MAX_QUERIES:
            raise LimitReachedError(f"you already keep {MAX_QUERIES} named queries; delete one")
        try:
            row = await conn.fetchrow(
                "INSERT INTO named_queries (name, enterprise_id, created_by, definition)"  # noqa: S608
                f" VALUES ($1, $2, $3, $4::jsonb) RETURNING {_COLUMNS}",
                name,
                owner.enterprise_id,
                owner.token_id,
                json.dumps(definition, ensure_ascii=False),
            )
        except asyncpg.UniqueViolationError as exc:
            raise QueryExistsError(f"a query named {name!r} already exists") from exc
    return _from_row(row)


async def find_query(conn: Conn, owner: Owner, name: str) -> NamedQuery:
    where, args = owner.where(2)
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM named_queries WHERE name = $1 AND {where}",  # noqa: S608
        name,
        *args,
    )
    if row is None:
        raise NotFoundError(f"no query named {name[:100]!r}")
    return _from_row(row)


async def list_queries(
    conn: Conn, owner: Owner, after: str | None, limit: int
) -> tuple[list[NamedQuery], bool]:
    """The owner's queries by name, after `after`; and whether more follow."""
    where, args = owner.where(3)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM named_queries"  # noqa: S608 - fixed SQL
        f" WHERE name > $1 AND {where} ORDER BY name LIMIT $2",
        after or "",
        limit + 1,
        *args,
    )
    return [_from_row(r) for r in rows[:limit]], len(rows) > limit


async def delete_query(conn: Conn, owner: Owner, name: str) -> None:
    """Remove a query and every subscription to it."""
    where, args = owner.where(2)
    done = await conn.fetchval(
        f"DELETE FROM named_queries WHERE name = $1 AND {where} RETURNING id",  # noqa: S608
        name,
        *args,
    )
    if done is None:
        raise NotFoundError(f"no query named {name[:100]!r}")

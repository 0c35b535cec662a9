"""The catalog tables, derived from catalog entries of the log in log order."""

from __future__ import annotations

from traceledger.ingest.catalogs.document import catalog_in_payload, log
from traceledger.store.conn import Conn


async def index_entry(conn: Conn, idx: int, payload: bytes | None, signer: int | None) -> None:
    """Derive catalog_versions and catalog_entries from one log entry, if it is a catalog.

    Indexing runs in log order, so the rule "a version must exceed the latest one" gives
    the same tables on every rebuild.
    """
    if payload is None:
        return
    doc = catalog_in_payload(payload, idx)
    if doc is None:
        return
    row = await conn.fetchrow(
        "SELECT max(version) AS latest, bool_or(idx = $2) AS seen"
        " FROM catalog_versions WHERE catalog = $1",
        doc.catalog,
        idx,
    )
    if row is not None and row["seen"]:
        return
    if row is not None and row["latest"] is not None and doc.version <= row["latest"]:
        log.warning(
            "entry %d: %s version %d is not newer than %d; not indexed",
            idx,
            doc.catalog,
            doc.version,
            row["latest"],
        )
        return
    await conn.execute(
        "INSERT INTO catalog_versions"
        " (catalog, version, idx, effective_from, ports, base_rate, description, signer)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        doc.catalog,
        doc.version,
        idx,
        doc.effective_from,
        list(doc.ports),
        doc.base_rate,
        doc.description,
        signer,
    )
    if doc.entries:
        await conn.copy_records_to_table(
            "catalog_entries",
            records=[
                (
                    doc.catalog,
                    doc.version,
                    e.position,
                    e.gtin,
                    e.company_prefix,
                    e.country,
                    e.product_class,
                    e.reason,
                    e.rate,
                )
                for e in doc.entries
            ],
            columns=[
                "catalog",
                "version",
                "position",
                "gtin",
                "company_prefix",
                "country",
                "product_class",
                "reason",
                "inspection_rate",
            ],
        )

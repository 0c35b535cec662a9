"""Every PostgreSQL advisory lock the ledger takes, in one place, so no two collide."""

from __future__ import annotations

import enum


class Lock(enum.IntEnum):
    """Advisory lock ids: "tracel" in ASCII, then a number per purpose."""

    MIGRATIONS = 0x7472_6163_656C_0001  # schema migrations at start
    INTEGRATOR = 0x7472_6163_656C_0002  # one integrator signs checkpoints
    INDEXER = 0x7472_6163_656C_0003  # one indexer writes the event-key index
    CATALOG_PUBLISH = 0x7472_6163_656C_0006  # catalog versions are numbered one at a time
    COSIGNER = 0x7472_6163_656C_0007  # one process asks witnesses to cosign
    PREBUILDER = 0x7472_6163_656C_0008  # one process builds lookup answers ahead
    NOTIFIER = 0x7472_6163_656C_0009  # one process delivers subscriptions and recall notices

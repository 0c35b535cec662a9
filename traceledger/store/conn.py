"""The connection type every query function takes."""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# A connection of our own or one borrowed from a pool: queries take either.
Conn = asyncpg.Connection | PoolConnectionProxy

"""A process that appends to the log as fast as it can and prints every acknowledgement.

The crash test runs it, kills it with SIGKILL mid-stream, and checks that every line it
printed (an acknowledged entry) survived. Settings come from the environment.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys

from traceledger.ledger import Ledger
from traceledger.log.sequencer import Entry
from traceledger.settings import Settings


async def main(tag: str) -> None:
    settings = Settings.from_env(checkpoint_interval=0.02)
    async with Ledger.open(settings) as ledger:

        async def worker(w: int) -> None:
            n = 0
            while True:
                batch = []
                for k in range(1 + (w + n) % 5):
                    payload = f"{tag}/{w}/{n}/{k}".encode()
                    batch.append(Entry(hashlib.sha256(payload).digest(), payload))
                appended = await ledger.sequencer.append(batch)
                lines = "".join(
                    f"ack {e.identity.hex()} {a.index}\n"
                    for e, a in zip(batch, appended, strict=True)
                )
                sys.stdout.write(lines)
                sys.stdout.flush()
                n += 1

        await asyncio.gather(*(worker(w) for w in range(8)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))

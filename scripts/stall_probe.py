#!/usr/bin/env python3
"""Ask a service's /healthz every 10 ms until stdin closes; print the slowest answer in
ms (and "ready" after the first).

Run in its own process by the benchmarks, so the slowest answer is the service's: the
benchmark's own client work (its garbage collections, its event loop busy posting
documents) cannot delay the probe. Blocking HTTP on one keep-alive connection, with the
collector off, since this process allocates next to nothing.
"""

from __future__ import annotations

import gc
import http.client
import sys
import threading
import time
from urllib.parse import urlsplit


def probe(base: str, stop: threading.Event) -> float:
    where = urlsplit(base)
    conn = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=60)
    slowest = 0.0
    while not stop.is_set():
        t0 = time.perf_counter()
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        if not slowest:
            print("ready", flush=True)  # the benchmark starts once the probe is up
        slowest = max(slowest, time.perf_counter() - t0)
        time.sleep(0.01)
    return slowest


def main() -> None:
    gc.disable()
    stop = threading.Event()
    result: list[float] = []
    worker = threading.Thread(target=lambda: result.append(probe(sys.argv[1], stop)))
    worker.start()
    sys.stdin.read()  # until the benchmark closes our stdin
    stop.set()
    worker.join()
    print(f"{result[0] * 1e3:.1f}")


if __name__ == "__main__":
    main()

"""Operating the service: Prometheus metrics, request ids, JSON logs, health and readiness.

Every application gets its own metrics registry (no process-global state), so several
apps in one process (tests, embedding) never share or clash over counters. The core
(`traceledger`) imports no metrics library: the sequencer and the leader task expose
plain counters and timestamps, read here at scrape time by a custom collector.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TextIO

import asyncpg
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from gateway.keys import LEDGER, SETTINGS
from gateway.problems import NOT_READY, ProblemError
from traceledger.ledger import Ledger
from traceledger.store.leader import WorkerStatus

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID = web.RequestKey("request_id", str)
# Printable ASCII (space allowed inside), at most 128 characters; anything else is replaced.
_VALID_REQUEST_ID = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?")

access_log = logging.getLogger("traceledger.access")

# How long a scrape or a readiness probe waits for the database.
DB_PROBE_TIMEOUT = 2.0
# Seconds the read database's replay trails the primary: 0 on a primary, or on a replica
# that has replayed everything it received (an idle primary sends nothing new).
_REPLICA_LAG = (
    "SELECT CASE WHEN NOT pg_is_in_recovery()"
    " OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    " ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)"
    " END::float8"
)
# Batch sizes are tallied by powers of two up to 2**20 (over the 1,000,000 entry cap).
_BATCH_BUCKETS = 21


def request_id_from(value: str | None) -> str:
    """The caller's request id when it is acceptable, otherwise a fresh one."""
    if value is not None and _VALID_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def route_template(request: web.Request) -> str:
    """The route's template (`/v1/entries/{index}`), never the raw path: bounded labels."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@dataclass(frozen=True, slots=True)
class _DbSnapshot:
    head_size: int
    checkpoint_size: int | None
    checkpoint_age: float | None
    prebuild_lag: int


class LedgerCollector(Collector):
    """Ledger state at scrape time: sequencer counters, lags, checkpoint age, pool usage."""

    def __init__(self, ledger: Callable[[], Ledger | None]) -> None:
        self._ledger = ledger
        self._snapshot: _DbSnapshot | None = None
        self._replica_lag: float | None = None

    async def refresh(self) -> None:
        """Query what only the database knows; called by the handler before rendering."""
        ledger = self._ledger()
        self._snapshot = None
        self._replica_lag = None
        if ledger is None:
            return
        if ledger.read_pool is not ledger.pool:
            try:
                async with asyncio.timeout(DB_PROBE_TIMEOUT), ledger.read_pool.acquire() as conn:
                    self._replica_lag = await conn.fetchval(_REPLICA_LAG)
            except Exception as exc:  # the scrape still answers, without the lag
                logging.getLogger(__name__).warning("metrics: read database failed: %s", exc)
        try:
            async with asyncio.timeout(DB_PROBE_TIMEOUT), ledger.pool.acquire() as conn:
                row = await conn.fetchrow(
                    "SELECT h.size AS head, c.size AS checkpoint,"
                    " extract(epoch FROM clock_timestamp() - c.signed_at)::float8 AS age,"
                    " (SELECT i.next_idx - p.next_idx FROM index_state i, prebuild_state p)"
                    "  AS prebuild_lag"
                    " FROM log_head h LEFT JOIN LATERAL"
                    " (SELECT size, signed_at FROM checkpoints ORDER BY size DESC LIMIT 1) c"
                    " ON true"
                )
        except Exception as exc:  # the scrape still answers, with db_up 0
            logging.getLogger(__name__).warning("metrics: database query failed: %s", exc)
            return
        if row is not None:
            self._snapshot = _DbSnapshot(
                row["head"], row["checkpoint"], row["age"], row["prebuild_lag"]
            )

    def collect(self) -> Iterable[Metric]:
        ledger = self._ledger()
        snap = self._snapshot
        yield GaugeMetricFamily(
            "traceledger_metrics_db_up",
            "1 if the last scrape could query the database",
            value=1 if snap is not None else 0,
        )
        if ledger is None:
            return
        if self._replica_lag is not None:
            yield GaugeMetricFamily(
                "traceledger_replica_lag_seconds",
                "Seconds the read database (READ_DATABASE_URL) replays behind the primary",
                value=self._replica_lag,
            )
        seq = ledger.sequencer
        yield CounterMetricFamily(
            "traceledger_events_appended",
            "New entries committed to the log (duplicates excluded)",
            value=seq.entries_appended,
        )
        buckets: list[tuple[str, float]] = []
        cumulative = 0
        for k in range(_BATCH_BUCKETS):
            cumulative += seq.batch_size_log2.get(k, 0)
            buckets.append((str(float(2**k)), cumulative))
        buckets.append(("+Inf", seq.batches_committed))
        yield HistogramMetricFamily(
            "traceledger_sequencer_batch_size",
            "Entries per group-commit transaction",
            buckets=buckets,
            sum_value=seq.batch_entries_total,
        )
        yield GaugeMetricFamily(
            "traceledger_sequencing_lag_entries",
            "Entries waiting for the sequencer (not yet committed)",
            value=seq.pending_entries,
        )
        pool = ledger.pool
        yield GaugeMetricFamily(
            "traceledger_db_pool_size", "Open database connections", value=pool.get_size()
        )
        yield GaugeMetricFamily(
            "traceledger_db_pool_idle", "Idle database connections", value=pool.get_idle_size()
        )
        yield GaugeMetricFamily(
            "traceledger_db_pool_max", "Most database connections", value=pool.get_max_size()
        )
        if ledger.integrator is not None:
            task = ledger.integrator.task
            yield GaugeMetricFamily(
                "traceledger_integrator_leading",
                "1 if this process runs the integrator",
                value=1 if task.leading else 0,
            )
            if task.last_success is not None:
                yield GaugeMetricFamily(
                    "traceledger_integrator_last_success_age_seconds",
                    "Seconds since this process last completed an integration round",
                    value=time.monotonic() - task.last_success,
                )
        yield from worker_metrics([t.status() for t in ledger.workers().values() if t is not None])
        if snap is None:
            return
        yield GaugeMetricFamily(
            "traceledger_log_size_entries", "Entries in the log (head)", value=snap.head_size
        )
        if snap.checkpoint_size is not None:
            yield GaugeMetricFamily(
                "traceledger_checkpoint_size_entries",
                "Tree size of the latest signed checkpoint",
                value=snap.checkpoint_size,
            )
        yield GaugeMetricFamily(
            "traceledger_integration_lag_entries",
            "Committed entries not yet covered by a signed checkpoint",
            value=snap.head_size - (snap.checkpoint_size or 0),
        )
        yield GaugeMetricFamily(
            "traceledger_prebuild_lag_entries",
            "Indexed entries whose events' lookup answers are not yet prebuilt",
            value=snap.prebuild_lag,
        )
        if snap.checkpoint_age is not None:
            yield GaugeMetricFamily(
                "traceledger_checkpoint_age_seconds",
                "Seconds since the latest checkpoint was signed",
                value=max(snap.checkpoint_age, 0.0),
            )


def worker_metrics(workers: list[WorkerStatus]) -> Iterable[Metric]:
    """Per background worker (label `worker`): leadership, rounds, failures, progress."""
    labels = ["worker"]
    leading = GaugeMetricFamily(
        "traceledger_worker_leading", "1 if this process leads the worker", labels=labels
    )
    rounds = CounterMetricFamily(
        "traceledger_worker_rounds", "Rounds that succeeded in this process", labels=labels
    )
    failures = CounterMetricFamily(
        "traceledger_worker_failures", "Rounds that failed in this process", labels=labels
    )
    failing = GaugeMetricFamily(
        "traceledger_worker_consecutive_failures",
        "Rounds in a row that failed (0 once a round succeeds)",
        labels=labels,
    )
    stuck = GaugeMetricFamily(
        "traceledger_worker_stuck_entry",
        "The entry a worker keeps failing at (present only while it does)",
        labels=labels,
    )
    age = GaugeMetricFamily(
        "traceledger_worker_last_success_age_seconds",
        "Seconds since the worker's last successful round in this process",
        labels=labels,
    )
    for w in workers:
        leading.add_metric([w.name], 1 if w.leading else 0)
        rounds.add_metric([w.name], w.rounds)
        failures.add_metric([w.name], w.failures)
        failing.add_metric([w.name], w.consecutive_failures)
        if w.stuck_at is not None:
            stuck.add_metric([w.name], w.stuck_at)
        if w.last_success_age is not None:
            age.add_metric([w.name], w.last_success_age)
    return (leading, rounds, failures, failing, stuck, age)


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    ledger: LedgerCollector

    @classmethod
    def create(cls, ledger: Callable[[], Ledger | None]) -> Metrics:
        registry = CollectorRegistry(auto_describe=True)
        labels = ("method", "route", "status")
        requests = Counter(
            "traceledger_http_requests",
            "HTTP requests served",
            labels,
            registry=registry,
        )
        latency = Histogram(
            "traceledger_http_request_duration_seconds",
            "Time to produce the response",
            labels,
            registry=registry,
        )
        collector = LedgerCollector(ledger)
        registry.register(collector)
        return cls(registry, requests, latency, collector)


METRICS = web.AppKey("metrics", Metrics)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def observability_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: request id, metrics and the access log for every request, errors included.

    problem_middleware (inside) turns every error into a response, so the status seen
    here is the one the client gets; redirects still arrive as exceptions.
    """
    request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
    request[REQUEST_ID] = request_id
    route = route_template(request)
    started = time.perf_counter()
    status = 500
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away first
            raise
        else:
            status = response.status
            return response
        finally:
            elapsed = time.perf_counter() - started
            metrics = request.app[METRICS]
            metrics.requests.labels(request.method, route, str(status)).inc()
            metrics.latency.labels(request.method, route, str(status)).observe(elapsed)
            access_log.info(
                "request",
                extra={
                    "method": request.method,
                    "route": route,
                    "path": request.path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "request_id": request_id,
                },
            )


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    # A signal rather than the middleware, so streamed and exception responses get it too.
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id


async def metrics_handler(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    await metrics.ledger.refresh()
    return web.Response(
        body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _not_ready(detail: str, **extra: object) -> ProblemError:
    return ProblemError(NOT_READY, detail, {"Retry-After": "5"}, **extra)


def worker_json(status: WorkerStatus | None) -> dict[str, object]:
    """One worker in /readyz: off (not run by this process), leading, standby or stopped."""
    if status is None:
        status = WorkerStatus.off()
        state = "off"
    elif not status.running:
        state = "stopped"
    else:
        state = "leading" if status.leading else "standby"
    age = status.last_success_age
    return {
        "state": state,
        "leading": state == "leading",
        "lastSuccessAgeSeconds": None if age is None else round(age, 3),
        "lastError": status.last_error,
        "rounds": status.rounds,
        "failures": status.failures,
        "consecutiveFailures": status.consecutive_failures,
        "stuckAtEntry": status.stuck_at,
    }


async def _probe(pool: asyncpg.Pool, what: str, query: str = "SELECT 1", **extra: object) -> object:
    try:
        async with asyncio.timeout(DB_PROBE_TIMEOUT), pool.acquire() as conn:
            return await conn.fetchval(query)
    except TimeoutError:
        raise _not_ready(
            f"the {what} did not answer within {DB_PROBE_TIMEOUT:g}s", **extra
        ) from None
    except Exception as exc:  # any failure to reach the database means not ready
        raise _not_ready(
            f"the {what} is unreachable: {exc or type(exc).__name__}", **extra
        ) from exc


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database this role depends on answers and is not stalled.

    The lookup role needs only its read database (which may be a replica: lookups keep
    working, against the checkpoint it has, while the primary is away) and is not ready
    when that replica replays more than max_replica_lag seconds behind. The other roles
    need the primary, and every worker this process leads must be neither failing nor
    stalled (no progress for max(10 x its interval, 10 s)). The body, or the problem's
    `workers` member, reports each worker either way.
    """
    ledger = request.app.get(LEDGER)
    if ledger is None:
        raise _not_ready("the ledger is not open")
    settings = request.app[SETTINGS]
    tasks = ledger.workers()
    statuses = {name: t.status() if t else None for name, t in tasks.items()}
    workers = {name: worker_json(s) for name, s in statuses.items()}
    body: dict[str, object] = {"status": "ready", "role": settings.role, "workers": workers}
    if settings.role != "lookup":
        await _probe(ledger.pool, "database", workers=workers)
    if settings.role == "lookup" or ledger.read_pool is not ledger.pool:
        lag = await _probe(ledger.read_pool, "read database", _REPLICA_LAG, workers=workers)
        assert isinstance(lag, float)
        body["replicaLagSeconds"] = lag
        if lag > settings.max_replica_lag:
            raise _not_ready(
                f"the read database replays {lag:.0f}s behind the primary "
                f"(limit {settings.max_replica_lag:g}s)",
                workers=workers,
            )
    if ledger.integrator is not None and ledger.integrator.fork_refusal is not None:
        # Not a stall that passes by itself: the database's tree contradicts the published
        # checkpoint and needs the operator; the detail says how to recover.
        raise ProblemError(
            NOT_READY,
            str(ledger.integrator.fork_refusal),
            {"Retry-After": "60"},
            workers=workers,
        )
    problems = [p for s in statuses.values() if s is not None and (p := s.problem())]
    if problems:
        raise _not_ready("; ".join(problems), workers=workers)
    return web.json_response(body)


def setup_observability(app: web.Application) -> None:
    """Give the app its own registry and the /metrics, /healthz and /readyz routes."""
    app[METRICS] = Metrics.create(lambda: app.get(LEDGER))
    app.on_response_prepare.append(_add_request_id)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)


_HANDLER_NAME = "traceledger-json"


def configure_logging(
    level: int = logging.INFO, stream: TextIO | None = None, *, console: bool = False
) -> None:
    """One format for everything, structlog's own loggers and stdlib logging (asyncpg,
    aiohttp, ours), with the request id bound by the middleware: JSON lines for machines
    (services, pipes), or with `console` structlog's console renderer, for a person at a
    terminal. Call once, at start-up."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # Records from stdlib loggers: their `extra` fields become JSON members.
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_renderer(console, stream or sys.stderr),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def _renderer(console: bool, stream: TextIO) -> list[structlog.types.Processor]:
    if console:
        # It renders tracebacks itself; colours only where they show as colours.
        return [structlog.dev.ConsoleRenderer(colors=stream.isatty())]
    return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]


def unconfigure_logging() -> None:
    """Undo configure_logging (for tests)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    structlog.reset_defaults()

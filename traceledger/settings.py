"""One frozen settings object, built once from the environment and command line.

Every tunable has explicit bounds so a typo fails at start-up instead of at 3 a.m.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from traceledger.errors import ConfigError
from traceledger.tlog.witness_policy import WitnessEndpoint, WitnessPolicy, parse_witnesses

DEFAULT_ORIGIN = "traceledger.localhost/log"
# What one process serves: ingest (capture, admin, the log; runs the sequencer, integrator
# and indexer), lookup (read-only queries, possibly from a replica; runs no workers) or all.
ROLES = ("all", "ingest", "lookup")


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("traceledger", appauthor=False))


def _bounded(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=default_home)
    # None selects the embedded PostgreSQL under `home`.
    database_url: str | None = None
    # Where read-only queries go (a streaming replica); None reads from `database_url`.
    read_database_url: str | None = None
    role: str = "all"
    # A lookup process is not ready while its read database replays this far behind.
    max_replica_lag: float = 60.0
    origin: str = DEFAULT_ORIGIN
    # None keeps the log key at `home/log-key.pem`, created on first start.
    log_key_path: Path | None = None
    checkpoint_interval: float = 1.0
    # Entries one group-commit transaction may carry; bounds memory and lock time.
    max_batch_entries: int = 10_000
    # Entries waiting for the sequencer before appenders are told to back off (503).
    max_pending_entries: int = 100_000
    # Leaves folded into tiles per integration transaction.
    integrate_chunk: int = 65_536
    pool_min: int = 2
    # Worker processes that parse, check and hash captured documents (traceledger/cpu.py):
    # None gives one per core; 0 does that work on the event loop (tools, debugging).
    cpu_workers: int | None = None
    # Connections requests and the workers' rounds share. Each background worker this
    # process leads (integrator, indexer, prebuilder, cosigner, notifier) holds one more for
    # its lock, on top: a small pool_max cannot starve the workers of connections.
    pool_max: int = 20
    # Capture: largest request body accepted (refused from Content-Length, unread).
    max_body_bytes: int = 16 * 1024 * 1024
    # Bodies being received at once may buffer at most this many bytes together, and each
    # must arrive within `body_deadline` seconds: slow or abandoned uploads (whose
    # signature cannot be checked before the whole body is in) cannot pile up in memory.
    max_buffered_body_bytes: int = 64 * 1024 * 1024
    body_deadline: float = 60.0
    # Capture: how far in the future an eventTime may lie (clock skew between systems).
    max_future_skew: float = 300.0
    # Admin API bearer token; None keeps it in `home/operator-token`, created on first start.
    operator_token: str | None = None
    # Public base URL QR codes and links point at (e.g. https://trace.example.org);
    # None uses the host each request came in on.
    public_url: str | None = None
    # Lookup answers kept while still current (traceledger/history_cache.py): the memory
    # bound (0 turns the cache off) and how long an answer may be reused at most.
    lookup_cache_bytes: int = 64 * 1024 * 1024
    lookup_cache_seconds: float = 60.0
    # Answers built ahead of the first scan (traceledger/prebuilt.py): the ingest role
    # builds them, every role reads them. Off: every lookup assembles (or hits the cache).
    prebuild_answers: bool = True
    # New events get version-2 leaves (salted field digests, traceledger/tlog/disclosure.py),
    # so public answers can withhold confidential fields and still prove the rest. Off:
    # version-1 leaves (the payload's hash), whose confidential events are withheld whole.
    selective_disclosure: bool = True
    # Witnesses asked to cosign each checkpoint, and how many must (k of n; None: all).
    # With witnesses, /checkpoint and proofs are against the newest checkpoint k cosigned.
    witnesses: tuple[WitnessEndpoint, ...] = ()
    witness_quorum: int | None = None
    # Earlier, frozen logs (DSNs, newest first) that lookups read beside the current one
    # (traceledger/shards.py); each keeps its own origin and key in its own database.
    past_shards: tuple[str, ...] = ()
    # Count look-ups of serialized items (traceledger/lookup/scans.py), and how many make
    # the count a warning on the page (a copied code is scanned by every buyer of a fake).
    count_scans: bool = True
    scan_warning_count: int = 10
    # Reverse proxies (IP addresses) whose X-Forwarded-For names the client: the scan
    # counter counts each client once a minute per code, so it must see real clients.
    trusted_proxies: tuple[str, ...] = ()
    # Webhooks (subscriptions and recall notices, traceledger/inspect/notifier.py): how often
    # the notifier looks for new work, how long one POST may take, how many run at once,
    # the retry backoff (doubling from `webhook_retry_base` up to `webhook_retry_max`) and
    # after how many failed attempts in a row an endpoint is suspended (about an hour of
    # trying with the defaults).
    notify_interval: float = 0.2
    webhook_timeout: float = 10.0
    webhook_concurrency: int = 32
    webhook_retry_base: float = 1.0
    webhook_retry_max: float = 600.0
    webhook_max_attempts: int = 15
    # Events in one subscription delivery (the binding asks for "manageable batches").
    webhook_batch_events: int = 100

    def __post_init__(self) -> None:
        WitnessPolicy.of(self.witnesses, self.witness_quorum)  # raises if inconsistent
        _bounded("checkpoint_interval", self.checkpoint_interval, 0.01, 3600)
        _bounded("max_batch_entries", self.max_batch_entries, 1, 1_000_000)
        _bounded("max_pending_entries", self.max_pending_entries, 1, 10_000_000)
        _bounded("integrate_chunk", self.integrate_chunk, 256, 10_000_000)
        if self.cpu_workers is not None:
            _bounded("cpu_workers", self.cpu_workers, 0, 256)
        _bounded("pool_min", self.pool_min, 1, 100)
        _bounded("pool_max", self.pool_max, self.pool_min, 1000)
        _bounded("max_body_bytes", self.max_body_bytes, 1024, 1024**3)
        _bounded("max_future_skew", self.max_future_skew, 0, 7 * 86400)
        _bounded("max_buffered_body_bytes", self.max_buffered_body_bytes, 1024, 64 * 1024**3)
        _bounded("body_deadline", self.body_deadline, 0.01, 3600)
        _bounded("lookup_cache_bytes", self.lookup_cache_bytes, 0, 64 * 1024**3)
        _bounded("lookup_cache_seconds", self.lookup_cache_seconds, 0, 86400)
        _bounded("max_replica_lag", self.max_replica_lag, 0, 7 * 86400)
        _bounded("scan_warning_count", self.scan_warning_count, 2, 1_000_000)
        _bounded("notify_interval", self.notify_interval, 0.01, 60)
        _bounded("webhook_timeout", self.webhook_timeout, 0.1, 300)
        _bounded("webhook_concurrency", self.webhook_concurrency, 1, 1000)
        _bounded("webhook_retry_base", self.webhook_retry_base, 0.001, 3600)
        _bounded("webhook_retry_max", self.webhook_retry_max, self.webhook_retry_base, 86400)
        _bounded("webhook_max_attempts", self.webhook_max_attempts, 1, 1000)
        _bounded("webhook_batch_events", self.webhook_batch_events, 1, 10_000)
        if self.role not in ROLES:
            raise ConfigError(f"role {self.role!r} must be one of {', '.join(ROLES)}")
        if self.read_database_url and not self.database_url:
            raise ConfigError(
                "READ_DATABASE_URL needs DATABASE_URL too: writes (the audit trail of "
                "inspectors' queries) go to the primary"
            )
        if self.database_url is not None and self.database_url in self.past_shards:
            raise ConfigError(
                "TRACELEDGER_PAST_SHARDS lists DATABASE_URL itself: a past shard is an "
                "earlier, frozen log in another database"
            )
        if len(set(self.past_shards)) != len(self.past_shards):
            raise ConfigError("TRACELEDGER_PAST_SHARDS lists a database twice")
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise ConfigError(f"public_url {self.public_url!r} must start with http:// or https://")
        if self.operator_token is not None and len(self.operator_token) < 16:
            raise ConfigError("the operator token must be at least 16 characters")
        if self.max_pending_entries < self.max_batch_entries:
            raise ConfigError("max_pending_entries must be at least max_batch_entries")
        if not self.origin or any(c.isspace() for c in self.origin) or "+" in self.origin:
            raise ConfigError(
                f"origin {self.origin!r} must be non-empty, without spaces or '+' "
                "(it names the log in signed notes, e.g. 'ledger.example.org/log')"
            )

    @property
    def witness_policy(self) -> WitnessPolicy | None:
        return WitnessPolicy.of(self.witnesses, self.witness_quorum)

    @property
    def log_key_file(self) -> Path:
        return self.log_key_path or self.home / "log-key.pem"

    @property
    def operator_token_file(self) -> Path:
        return self.home / "operator-token"

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def published_checkpoint_file(self) -> Path:
        """The last checkpoint the log published, kept outside the database so a restore
        of an old backup cannot make the log sign a fork (see traceledger/published.py)."""
        return self.home / "published-checkpoint"

    @property
    def forks_dir(self) -> Path:
        """Where `traceledger accept-fork` archives superseded published checkpoints."""
        return self.home / "forks"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read TRACELEDGER_* variables (and DATABASE_URL); explicit overrides win."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if "TRACELEDGER_HOME" in env:
            values["home"] = Path(env["TRACELEDGER_HOME"])
        if env.get("DATABASE_URL"):
            values["database_url"] = env["DATABASE_URL"]
        if env.get("READ_DATABASE_URL"):
            values["read_database_url"] = env["READ_DATABASE_URL"]
        if env.get("TRACELEDGER_ROLE"):
            values["role"] = env["TRACELEDGER_ROLE"]
        if "TRACELEDGER_ORIGIN" in env:
            values["origin"] = env["TRACELEDGER_ORIGIN"]
        if "TRACELEDGER_LOG_KEY" in env:
            values["log_key_path"] = Path(env["TRACELEDGER_LOG_KEY"])
        if env.get("TRACELEDGER_PUBLIC_URL"):
            values["public_url"] = env["TRACELEDGER_PUBLIC_URL"].rstrip("/")
        if env.get("TRACELEDGER_WITNESSES"):
            values["witnesses"] = parse_witnesses(env["TRACELEDGER_WITNESSES"])
        if env.get("TRACELEDGER_WITNESS_QUORUM"):
            try:
                values["witness_quorum"] = int(env["TRACELEDGER_WITNESS_QUORUM"])
            except ValueError as exc:
                raise ConfigError("TRACELEDGER_WITNESS_QUORUM must be a whole number") from exc
        if env.get("TRACELEDGER_PAST_SHARDS"):
            values["past_shards"] = tuple(
                d.strip() for d in env["TRACELEDGER_PAST_SHARDS"].split(",") if d.strip()
            )
        for name, var in (
            ("prebuild_answers", "TRACELEDGER_PREBUILD_ANSWERS"),
            ("count_scans", "TRACELEDGER_COUNT_SCANS"),
            ("selective_disclosure", "TRACELEDGER_SELECTIVE_DISCLOSURE"),
        ):
            if var in env:
                flag = env[var].strip().lower()
                if flag not in ("0", "1", "true", "false", "yes", "no"):
                    raise ConfigError(f"{var} must be 1 or 0")
                values[name] = flag in ("1", "true", "yes")
        if env.get("TRACELEDGER_TRUSTED_PROXIES"):
            values["trusted_proxies"] = tuple(
                p.strip() for p in env["TRACELEDGER_TRUSTED_PROXIES"].split(",") if p.strip()
            )
        if "TRACELEDGER_OPERATOR_TOKEN" in env:
            values["operator_token"] = env["TRACELEDGER_OPERATOR_TOKEN"]
        if env.get("TRACELEDGER_CPU_WORKERS"):
            try:
                values["cpu_workers"] = int(env["TRACELEDGER_CPU_WORKERS"])
            except ValueError as exc:
                raise ConfigError("TRACELEDGER_CPU_WORKERS must be a whole number") from exc
        for name, var in (
            ("checkpoint_interval", "TRACELEDGER_CHECKPOINT_INTERVAL"),
            ("max_body_bytes", "TRACELEDGER_MAX_BODY_BYTES"),
            ("max_future_skew", "TRACELEDGER_MAX_FUTURE_SKEW"),
            ("max_buffered_body_bytes", "TRACELEDGER_MAX_BUFFERED_BODY_BYTES"),
            ("body_deadline", "TRACELEDGER_BODY_DEADLINE"),
            ("lookup_cache_bytes", "TRACELEDGER_LOOKUP_CACHE_BYTES"),
            ("lookup_cache_seconds", "TRACELEDGER_LOOKUP_CACHE_SECONDS"),
            ("max_replica_lag", "TRACELEDGER_MAX_REPLICA_LAG"),
            ("scan_warning_count", "TRACELEDGER_SCAN_WARNING_COUNT"),
            ("notify_interval", "TRACELEDGER_NOTIFY_INTERVAL"),
            ("webhook_timeout", "TRACELEDGER_WEBHOOK_TIMEOUT"),
            ("webhook_concurrency", "TRACELEDGER_WEBHOOK_CONCURRENCY"),
            ("webhook_retry_base", "TRACELEDGER_WEBHOOK_RETRY_BASE"),
            ("webhook_retry_max", "TRACELEDGER_WEBHOOK_RETRY_MAX"),
            ("webhook_max_attempts", "TRACELEDGER_WEBHOOK_MAX_ATTEMPTS"),
            ("webhook_batch_events", "TRACELEDGER_WEBHOOK_BATCH_EVENTS"),
        ):
            if var in env:
                try:
                    values[name] = type(getattr(cls, name))(env[var])
                except ValueError as exc:
                    raise ConfigError(f"{var} must be a number") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

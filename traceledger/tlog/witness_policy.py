"""Which witnesses the log asks for cosignatures, and how many must vouch (k of n).

Configured as `TRACELEDGER_WITNESSES="URL=VKEY,URL=VKEY"` (each witness's submission
prefix and its cosignature verifier key) and `TRACELEDGER_WITNESS_QUORUM=k`; k defaults
to every witness. A URL may not contain "=" or ",".
"""

from __future__ import annotations

from dataclasses import dataclass

from traceledger.errors import ConfigError, NoteError
from traceledger.tlog.cosignature import CosignatureVerifier

__all__ = ["WitnessEndpoint", "WitnessPolicy", "parse_witnesses"]


@dataclass(frozen=True)
class WitnessEndpoint:
    """One witness: where to POST add-checkpoint, and the key its cosignatures verify with."""

    url: str
    verifier: CosignatureVerifier

    @property
    def key(self) -> str:
        """The verifier key string: how stored cosignatures name their witness."""
        return self.verifier.encode()

    @property
    def name(self) -> str:
        return self.verifier.name

    @classmethod
    def parse(cls, spec: str) -> WitnessEndpoint:
        """Read "URL=VKEY", e.g. "https://w.example.org=w.example.org+1a2b3c4d+BAbc..."."""
        url, eq, vkey = spec.strip().partition("=")
        if not eq or not url.startswith(("http://", "https://")):
            raise ConfigError(f"witness {spec!r}: want URL=VERIFIER_KEY with an http(s) URL")
        try:
            verifier = CosignatureVerifier.parse(vkey)
        except NoteError as exc:
            raise ConfigError(f"witness {url}: {exc}") from exc
        return cls(url.rstrip("/"), verifier)


def parse_witnesses(value: str) -> tuple[WitnessEndpoint, ...]:
    """Read a comma-separated list of URL=VKEY witnesses (empty parts are skipped)."""
    return tuple(WitnessEndpoint.parse(part) for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class WitnessPolicy:
    """k of n: a checkpoint is served once `quorum` of `witnesses` have cosigned it."""

    witnesses: tuple[WitnessEndpoint, ...]
    quorum: int

    def __post_init__(self) -> None:
        if not self.witnesses:
            raise ConfigError("a witness policy needs at least one witness")
        if not 1 <= self.quorum <= len(self.witnesses):
            raise ConfigError(
                f"witness quorum must be between 1 and {len(self.witnesses)} "
                f"(the number of witnesses), got {self.quorum}"
            )
        names = [w.name for w in self.witnesses]
        if len(set(names)) != len(names):
            raise ConfigError(f"two witnesses share a name: {sorted(names)}")

    @property
    def keys(self) -> list[str]:
        return [w.key for w in self.witnesses]

    @classmethod
    def of(cls, witnesses: tuple[WitnessEndpoint, ...], quorum: int | None) -> WitnessPolicy | None:
        """The policy for these settings: None without witnesses; k defaults to all."""
        if not witnesses:
            if quorum is not None:
                raise ConfigError("a witness quorum is set but no witnesses are configured")
            return None
        return cls(witnesses, len(witnesses) if quorum is None else quorum)

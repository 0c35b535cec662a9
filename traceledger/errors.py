"""Every error the core raises; the HTTP layer maps each class to one problem+json type."""

from collections.abc import Mapping
from typing import Any


class TraceledgerError(Exception):
    """Base class: anything the core reports deliberately."""


class ConfigError(TraceledgerError):
    """Settings, keys or the home folder are unusable; the message says how to fix it."""


class StoreError(TraceledgerError):
    """The database is unreachable, too old, or not the log we expect."""


class MalformedError(TraceledgerError):
    """A request body cannot be parsed at all (not JSON, not MessagePack, not an envelope)."""

    def __init__(self, message: str, position: str | None = None) -> None:
        super().__init__(message)
        self.position = position


class UnsupportedMediaError(TraceledgerError):
    """A content type or payload type we do not accept."""


class SignatureError(TraceledgerError):
    """The envelope is not signed by a registered, active key, or a signature is wrong."""


class UnverifiedSignatureError(SignatureError):
    """One signature of an envelope does not verify against an active key of a registered
    enterprise (unknown key id, revoked key, or a wrong signature); `key_id` names it and
    `position` points at it in the envelope."""

    def __init__(self, key_id: str, position: str, why: str) -> None:
        super().__init__(
            f"signature with key id {key_id} does not verify against an active key: {why}"
        )
        self.key_id = key_id
        self.position = position


class ForbiddenError(TraceledgerError):
    """The signer may not record these events (identifiers under another company's prefix)."""

    def __init__(self, message: str, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class InvalidEventsError(TraceledgerError):
    """Events fail the schema or the semantic rules; `errors` lists every one."""

    def __init__(self, message: str, errors: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.errors = errors


class AmbiguousEventIDError(InvalidEventsError):
    """An error declaration names its target by an eventID that names several different
    events this signer may correct; `errors` name the candidates' indexes."""


class RateLimitedError(TraceledgerError):
    """An enterprise exceeded its own configured event rate."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidCatalogError(TraceledgerError):
    """The catalog document is not valid; `errors` lists every problem with its pointer."""

    def __init__(self, message: str, errors: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.errors = errors


class StaleCatalogError(TraceledgerError):
    """The version is not greater than the latest recorded version of that catalog."""

    def __init__(self, message: str, current: int) -> None:
        super().__init__(message)
        self.current = current


class QueryParameterError(TraceledgerError):
    """A query parameter is unknown or its value is invalid (EPCIS QueryParameterException)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class CaptureRejectedError(TraceledgerError):
    """A ledger refused a pushed document (seen by the capture client); `problem` is its
    RFC 9457 body."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {problem.get('detail', problem)}")
        self.status = status
        self.problem = problem


class RegistryError(TraceledgerError):
    """An enterprise or key operation is invalid (unknown id, duplicate key, bad PEM...)."""


class UnknownEnterpriseError(RegistryError):
    """No enterprise is registered with this id."""

    def __init__(self, enterprise_id: int) -> None:
        super().__init__(f"no enterprise with id {enterprise_id}")
        self.enterprise_id = enterprise_id


class DelegationError(RegistryError):
    """A delegation is not possible (to itself, or a prefix the owner does not hold);
    `parameter` names the field at fault."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class IdentifierError(TraceledgerError):
    """A GS1 identifier (EPC URN, Digital Link, GTIN...) is malformed or fails its check digit."""


class ProofError(TraceledgerError):
    """A Merkle proof is malformed or does not verify."""


class RangeError(TraceledgerError):
    """A requested index, tree size or tile lies outside what the log holds."""


class NotFoundError(TraceledgerError):
    """The entry, tile or proof asked for does not exist (yet)."""


class NoteError(TraceledgerError):
    """A signed note or checkpoint is malformed or its signature does not verify."""


class InconsistentLogError(TraceledgerError):
    """The log would sign, or has stored, a tree head that contradicts an earlier one."""


class ForkRefusedError(InconsistentLogError):
    """The database's tree contradicts the checkpoint the log last published (kept outside
    the database), e.g. after restoring an old backup: the log signs and appends nothing
    until it is recovered. The message names the sizes and the ways to recover."""

    def __init__(self, message: str, *, published_size: int, tree_size: int) -> None:
        super().__init__(message)
        self.published_size = published_size
        self.tree_size = tree_size


class LogBehindPublishedError(ForkRefusedError):
    """The database holds fewer entries than the published checkpoint covers."""


class DivergedFromPublishedError(ForkRefusedError):
    """The database's tree is not an extension of the published checkpoint's tree."""


class BackupError(TraceledgerError):
    """A backup or restore cannot be made (tool missing, target not empty, bad archive)."""


class RedactionError(TraceledgerError):
    """A field cannot be redacted (no such entry or field, a version-1 leaf, a field that
    names the event)."""


class IntegrityError(TraceledgerError):
    """Stored data does not match what the log committed to (found by verify)."""

    def __init__(self, index: int | None, reason: str) -> None:
        where = f"index {index}" if index is not None else "log"
        super().__init__(f"{where}: {reason}")
        self.index = index
        self.reason = reason

    def __reduce__(self) -> tuple[type["IntegrityError"], tuple[int | None, str]]:
        # Raised in worker processes too (traceledger verify): it must unpickle.
        return type(self), (self.index, self.reason)


class BusyError(TraceledgerError):
    """The sequencer has more work queued than it may hold; retry after a short wait."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WitnessError(TraceledgerError):
    """A witness refuses to cosign a checkpoint (c2sp.org/tlog-witness); `status` is the
    HTTP status the protocol prescribes for the refusal."""

    status = 400


class WitnessUnreachableError(TraceledgerError):
    """The log could not reach a witness (connection refused, timeout); retried later."""


class WitnessMalformedError(WitnessError):
    """The add-checkpoint request is malformed, or its old size exceeds the checkpoint's."""

    status = 400


class WitnessForbiddenError(WitnessError):
    """No signature on the checkpoint verifies against a key the witness trusts for it."""

    status = 403


class WitnessUnknownLogError(WitnessError):
    """The witness is not configured for the checkpoint's origin."""

    status = 404


class WitnessConflictError(WitnessError):
    """The old size is not the size the witness last cosigned, or a same-size checkpoint
    has another root (a fork); `size` is what the witness last cosigned."""

    status = 409

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class WitnessBadProofError(WitnessError):
    """The consistency proof does not prove the checkpoint extends the witnessed one."""

    status = 422


class QueryExistsError(TraceledgerError):
    """A named query with this name already exists for this owner (EPCIS
    ResourceAlreadyExistsException)."""


class SubscriptionError(TraceledgerError):
    """A subscription request is invalid: no stream and no schedule, both, a bad schedule
    or destination (EPCIS SubscriptionControlsException); `parameter` names the field."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class LimitReachedError(TraceledgerError):
    """An owner already keeps as many named queries, or a query as many subscriptions, as
    one may."""


class WebhookUnreachableError(TraceledgerError):
    """A webhook could not be reached (refused, timed out, TLS failure); retried later."""

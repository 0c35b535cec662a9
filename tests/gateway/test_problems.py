"""Every core error maps, in one place, to a problem type; only the operator's own
problems (configuration, a broken store or log) are answered 500."""

from __future__ import annotations

import inspect

from gateway import problems
from traceledger import errors

CORE_ERRORS = {
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.TraceledgerError) and cls.__module__ == errors.__name__
}
# What only the operator can fix; a caller's mistake or a passing outage is never here.
OPERATOR_PROBLEMS = {
    errors.TraceledgerError,
    errors.ConfigError,
    errors.ProofError,
    errors.InconsistentLogError,
    errors.BackupError,
    errors.IntegrityError,
}


def test_every_core_error_class_has_its_own_entry_in_the_mapping() -> None:
    assert CORE_ERRORS - set(problems.PROBLEM_OF) == set()


def test_only_the_operators_problems_answer_500() -> None:
    internal = {c for c, kind in problems.PROBLEM_OF.items() if kind.status >= 500}
    retriable = {c for c, kind in problems.PROBLEM_OF.items() if kind.status == 503}
    assert internal - retriable - {errors.CaptureRejectedError} == OPERATOR_PROBLEMS


def test_every_problem_type_of_the_mapping_has_a_description_page() -> None:
    for kind in problems.PROBLEM_OF.values():
        assert problems.ALL_TYPES[kind.slug] is kind


def test_extension_members_travel_with_the_problem() -> None:
    busy = problems.problem_for(errors.BusyError("full", retry_after=2.2))
    assert (busy.kind, busy.headers) == (problems.BUSY, {"Retry-After": "3"})
    bad = problems.problem_for(errors.QueryParameterError("perPage", "perPage is 0"))
    assert (bad.kind.status, bad.extra) == (400, {"parameter": "perPage"})
    stale = problems.problem_for(errors.StaleCatalogError("old", current=4))
    assert (stale.kind, stale.extra) == (problems.STALE_CATALOG, {"currentVersion": 4})

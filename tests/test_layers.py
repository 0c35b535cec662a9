"""The architecture holds: imports run one way down the layers, and no module cycles.

Read from the source (AST), so a wrong-way import fails here even if nothing runs it.
docs/architecture.md draws the same layers.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

CORE = "traceledger"
# Each package of ours and what of ours it may import (itself always). Pure code at the
# bottom imports only other pure code; services import pure code and the store; the
# composition root (ledger) and the demo may import any service; gateway imports the core.
PURE = {"tlog", "standards", "trust", "errors"}
MAY_IMPORT: dict[str, set[str]] = {
    "errors": set(),
    "tlog": {"errors"},
    "standards": {"errors"},
    "trust": {"errors", "standards"},
    "settings": {"errors", "tlog"},
    "store": {"errors"},
    "cpu": set(),
    "log": PURE | {"store", "settings"},
    "accounts": PURE | {"store"},
    "ingest": PURE | {"store", "settings", "log", "accounts", "cpu"},
    "lookup": PURE | {"store", "settings", "log", "accounts", "cpu"},
    "inspect": PURE | {"store", "settings", "log", "accounts", "ingest", "lookup", "cpu"},
    "audit": PURE | {"store", "settings", "log", "cpu"},
    "ops": PURE | {"store", "settings", "log", "accounts"},
    "demo": PURE | {"store", "settings", "log", "accounts", "ingest"},
    "ledger": PURE | {"store", "settings", "log", "accounts", "ingest", "lookup", "inspect", "cpu"},
}
# Third-party packages pure code may use; everything else it needs is the standard library.
# lxml parses bytes in memory (network and external entities switched off: standards/epcis_xml).
# orjson reads JSON fast, the standard library deciding wherever the two could differ
# (standards/jsontext); jsonschema_rs vouches for valid events before jsonschema is asked.
PURE_THIRD_PARTY = {
    "cryptography",
    "msgpack",
    "jsonschema",
    "jsonschema_rs",
    "referencing",
    "qrcode",
    "lxml",
    "orjson",
}
# The write side's workers: readers take what they need from traceledger.log.checkpoints.
WRITERS = {"traceledger.log.integrator", "traceledger.log.sequencer", "traceledger.ingest.indexer"}
READ_SIDE = {"lookup", "inspect", "audit"}


def modules(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield ".".join(p for p in parts if p != "__init__"), path


def imports(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (function-level imports count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def layer(module: str) -> str:
    """The layer of a core module: its subpackage, or the top module's own name."""
    return module.split(".")[1]


CORE_MODULES = dict(modules(CORE))


def ours(found: set[str]) -> set[str]:
    """The imported names that are core modules (dropping `from x import name` names)."""
    return {m for m in found if m in CORE_MODULES and m != CORE}


@pytest.mark.parametrize("module", sorted(CORE_MODULES))
def test_the_core_imports_only_its_lower_layers(module: str) -> None:
    if module == CORE:
        return
    mine = layer(module)
    assert mine in MAY_IMPORT, f"{module}: add its layer to MAY_IMPORT and the docs"
    allowed = MAY_IMPORT[mine] | {mine}
    wrong = sorted(m for m in ours(imports(CORE_MODULES[module])) if layer(m) not in allowed)
    assert not wrong, f"{module} ({mine}) may not import {wrong}"


@pytest.mark.parametrize("module", sorted(CORE_MODULES))
def test_the_core_speaks_no_http_and_never_imports_the_gateway(module: str) -> None:
    found = imports(CORE_MODULES[module])
    bad = sorted(m for m in found if m.split(".")[0] in {"aiohttp", "gateway"})
    assert not bad, f"{module} imports {bad}: pass a transport in instead"


@pytest.mark.parametrize(
    "module", sorted(m for m in CORE_MODULES if m != CORE and layer(m) in PURE)
)
def test_pure_code_uses_only_the_standard_library_and_a_few_pure_libraries(module: str) -> None:
    roots = {m.split(".")[0] for m in imports(CORE_MODULES[module])}
    foreign = roots - set(sys.stdlib_module_names) - PURE_THIRD_PARTY - {CORE, "__future__"}
    assert not foreign, f"{module} is pure code but imports {sorted(foreign)}"


@pytest.mark.parametrize(
    "module", sorted(m for m in CORE_MODULES if m != CORE and layer(m) in READ_SIDE)
)
def test_the_read_side_never_imports_the_write_side_workers(module: str) -> None:
    bad = sorted(ours(imports(CORE_MODULES[module])) & WRITERS)
    assert not bad, f"{module} imports {bad}"


def test_there_are_no_import_cycles() -> None:
    graph = {m: ours(imports(p)) - {m} for m, p in [*CORE_MODULES.items(), *modules("gateway")]}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])


def test_every_background_worker_is_started_by_the_ledger_not_the_http_layer() -> None:
    for module, path in modules("gateway"):
        text = path.read_text(encoding="utf-8")
        workers = (
            "Integrator(",
            "Indexer(",
            "Prebuilder(",
            "Cosigner(",
            "answer_builder(",
            "Notifier(",
        )
        for worker in workers:
            assert worker not in text, f"{module} starts {worker[:-1]}; Ledger.open does that"

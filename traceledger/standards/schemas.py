"""JSON Schema validation of what enterprises send, with errors that name the exact spot.

The schemas live in `schemas/` at the repository root (draft 2020-12, `$id` under
https://traceledger.dev/schemas/). A `SchemaSet` loads them all once into a
`referencing` registry (never the network), builds one validator per schema and one per
EPCIS event type, and reports every violation as (event index, RFC 6901 pointer into the
whole document, short reason) so a refused batch can say which event is wrong and where.

Events are validated one by one against their own type's schema rather than through the
document schema's `if`/`then` dispatch: that is faster, and an unknown `type` becomes a
single precise violation instead of a cascade.

jsonschema builds a validator object for every subschema it descends into, which costs
about 0.2 ms per event. So each event schema is also compiled (`_compile`) into a plain
predicate that answers one question, "certainly valid?", in a few microseconds; only
events it cannot vouch for go through jsonschema, which stays the single authority on
what is wrong and where. The predicate fails closed: a keyword or value it does not
handle makes it answer "not sure", never "valid".
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urljoin

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SCHEMA_BASE: Final = "https://traceledger.dev/schemas/"
ENVELOPE_ID: Final = SCHEMA_BASE + "envelope.schema.json"
DOCUMENT_ID: Final = SCHEMA_BASE + "epcis-document.schema.json"
EVENT_TYPES: Final = (
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
)
EVENT_LIST_POINTER: Final = "/epcisBody/eventList"
_MAX_SHOWN = 60  # characters of an offending value quoted in a reason


@dataclass(frozen=True, slots=True)
class Violation:
    """One reason a submission is refused."""

    event: int | None  # index in epcisBody.eventList; None for document-level problems
    pointer: str  # RFC 6901 pointer into the whole document
    reason: str  # short, for humans

    def to_json(self) -> dict[str, object]:
        return {"event": self.event, "pointer": self.pointer, "reason": self.reason}


def default_root() -> Path:
    """The `schemas/` folder beside the `traceledger` package."""
    return Path(__file__).resolve().parents[2] / "schemas"


class SchemaSet:
    """Every schema and a ready validator for each; create one per application."""

    def __init__(self, root: Path | None = None) -> None:
        folder = root if root is not None else default_root()
        self.schemas: dict[str, dict[str, Any]] = {}
        for path in sorted(folder.glob("*.schema.json")):
            schema = json.loads(path.read_text(encoding="utf-8"))
            Draft202012Validator.check_schema(schema)
            self.schemas[schema["$id"]] = schema
        for needed in (ENVELOPE_ID, DOCUMENT_ID):
            if needed not in self.schemas:
                raise FileNotFoundError(f"no schema with $id {needed} in {folder}")
        self.registry: Registry[Any] = Registry().with_resources(
            (uri, DRAFT202012.create_resource(schema)) for uri, schema in self.schemas.items()
        )
        self._by_id = {uri: self._validator(schema) for uri, schema in self.schemas.items()}
        document = self.schemas[DOCUMENT_ID]
        # Local $refs are inlined into the per-type validators: resolving a $ref costs more
        # than the check it leads to, and an event schema touches dozens of them.
        self._shell = self._validator(_inline(document["$defs"]["documentShell"], document))
        inlined = {name: _inline(document["$defs"][name], document) for name in EVENT_TYPES}
        self._events = {name: self._validator(schema) for name, schema in inlined.items()}
        self._certainly_valid = {name: _compile(schema) for name, schema in inlined.items()}
        event_list = document["$defs"]["documentShell"]["properties"]["epcisBody"]
        self.max_events: int = event_list["properties"]["eventList"]["maxItems"]

    def _validator(self, schema: Mapping[str, Any]) -> Validator:
        validator: Validator = _Validator(schema, registry=self.registry)
        return validator

    def validator(self, name: str) -> Validator:
        """The validator of one schema, by `$id` or by file name (`proof.schema.json`)."""
        found = self._by_id.get(name) or self._by_id.get(urljoin(SCHEMA_BASE, name))
        if found is None:
            raise KeyError(f"no schema named {name!r}")
        return found

    def errors(self, name: str, instance: object, limit: int = 100) -> list[Violation]:
        """Violations of any one schema (API responses in tests, for instance)."""
        return _collect(self.validator(name), instance, None, "", limit)

    def envelope_errors(self, envelope: object) -> list[Violation]:
        """Violations of the DSSE envelope schema (JSON form: payload and sig in base64)."""
        return _collect(self._by_id[ENVELOPE_ID], envelope, None, "", 100)

    def document_errors(self, document: object, limit: int = 100) -> list[Violation]:
        """At most `limit` violations of an EPCIS 2.0 document, document-level ones first."""
        found = _collect(self._shell, document, None, "", limit)
        if not isinstance(document, dict):
            return found
        body = document.get("epcisBody")
        events = body.get("eventList") if isinstance(body, dict) else None
        if not isinstance(events, list) or len(events) > self.max_events:
            return found  # the shell has said what is wrong with the list itself
        for index, event in enumerate(events):
            if len(found) >= limit:
                break
            base = f"{EVENT_LIST_POINTER}/{index}"
            if not isinstance(event, dict):
                found.append(Violation(index, base, f"must be an object, not {_kind(event)}"))
                continue
            kind = event.get("type")
            if not isinstance(kind, str) or kind not in self._events:
                found.append(_unknown_type(index, base, event))
            elif not self._certainly_valid[kind](event):
                validator = self._events[kind]
                found.extend(_collect(validator, event, index, base, limit - len(found)))
        return found


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    r"""Compile a JSON Schema (ECMA-262) pattern for Python's `re`.

    The one difference that matters for our patterns: in Python `$` also matches before a
    final newline, so "urn:epc:id:sgtin:1.2.3\n" would pass `^...$`. ECMA's `$` is
    Python's `\Z`; every `$` outside a character class is translated.
    """
    out: list[str] = []
    position, in_class = 0, False
    while position < len(pattern):
        char = pattern[position]
        if char == "\\":
            out.append(pattern[position : position + 2])
            position += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
        position += 1
    return re.compile("".join(out))


def _extra_properties(instance: Mapping[Any, Any], schema: Mapping[str, Any]) -> Iterator[Any]:
    """Keys that neither `properties` nor `patternProperties` of `schema` cover."""
    named = schema.get("properties", {})
    searches = [_regex(p).search for p in schema.get("patternProperties", {})]
    for key in instance:
        if key in named:
            continue
        if isinstance(key, str) and any(search(key) for search in searches):
            continue
        yield key


# The three keywords that run regular expressions, redone with ECMA-262 `$` semantics
# (and tolerant of the bytes keys MessagePack allows: they match no pattern).
def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if isinstance(instance, str) and not _regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not isinstance(instance, dict):
        return
    for pattern, subschema in patterns.items():
        search = _regex(pattern).search
        for key, value in instance.items():
            if isinstance(key, str) and search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, allowed: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not isinstance(instance, dict):
        return
    extras = list(_extra_properties(instance, schema))
    if isinstance(allowed, dict):
        for extra in extras:
            yield from validator.descend(instance[extra], allowed, path=extra)
    elif allowed is False and extras:
        yield ValidationError(f"unexpected properties: {', '.join(map(repr, extras))}")


# Draft 2020-12 with ECMA-262 regular expressions. extend() is untyped in types-jsonschema.
_Validator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)


def _unknown_type(index: int, base: str, event: dict[str, Any]) -> Violation:
    expected = ", ".join(EVENT_TYPES)
    if "type" not in event:
        return Violation(index, base + "/type", f"is required: one of {expected}")
    return Violation(
        index, base + "/type", f"unknown event type {_show(event['type'])}; expected {expected}"
    )


def _inline(node: Any, root: Mapping[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """A copy of `node` with local `#/...` refs replaced by their targets in `root`.

    Other refs are made absolute against the root's `$id`, so the registry still resolves
    them from a validator whose schema has no base URI of its own. Cycles keep their $ref.
    """
    if isinstance(node, list):
        return [_inline(item, root, seen) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _inline(value, root, seen) for key, value in node.items() if key != "$ref"}
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return out
    if not ref.startswith("#") or ref in seen:
        out["$ref"] = urljoin(root["$id"], ref)
        return out
    target = _inline(_resolve_pointer(root, ref[1:]), root, (*seen, ref))
    if not out:
        return target
    out.setdefault("allOf", []).insert(0, target)
    return out


Check = Callable[[Any], bool]
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description", "examples", "default"}
)
_STRING = frozenset({"pattern", "minLength", "maxLength"})
_NUMBER = frozenset({"minimum", "maximum"})
_ARRAY = frozenset({"items", "minItems", "maxItems", "uniqueItems"})
_OBJECT = frozenset(
    {
        "properties",
        "patternProperties",
        "additionalProperties",
        "required",
        "dependentRequired",
        "propertyNames",
        "minProperties",
        "maxProperties",
    }
)
_TYPE_TESTS: Final[Mapping[str, Check]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_UNBOUNDED = 2**63


def _always(_: object) -> bool:
    return True


def _never(_: object) -> bool:
    return False


def _compile(schema: Any) -> Check:
    """A predicate that is True only for instances `schema` certainly accepts.

    It covers the keywords our event schemas use, with jsonschema's semantics for them;
    anything else (an unknown keyword, a $ref, `not`, a non-string enum) compiles to
    "not sure". False therefore means "ask jsonschema", never "invalid" on its own.
    """
    if schema is True:
        return _always
    if not isinstance(schema, dict):
        return _never
    keywords = set(schema) - _ANNOTATIONS - {"then", "else"}
    checks: list[Check] = []
    for group, build, name in (
        (_STRING, _string_check, "string"),
        (_NUMBER, _number_check, "number"),
        (_ARRAY, _array_check, "array"),
        (_OBJECT, _object_check, "object"),
    ):
        if keywords & group:
            # A group check that also enforces `type` saves a call per value.
            strict = schema.get("type") == name
            checks.append(build(schema, strict))
            keywords -= group | ({"type"} if strict else set())
    for keyword in sorted(keywords):
        check = _keyword_check(keyword, schema[keyword], schema)
        if check is None:
            return _never
        checks.append(check)
    return _all_of(checks)


def _all_of(checks: list[Check]) -> Check:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    frozen = tuple(checks)

    def all_of(v: Any) -> bool:
        for check in frozen:  # noqa: SIM110 - a plain loop: no generator on the hot path
            if not check(v):
                return False
        return True

    return all_of


def _keyword_check(keyword: str, value: Any, schema: Mapping[str, Any]) -> Check | None:
    if keyword == "type":
        names = [value] if isinstance(value, str) else list(value)
        if len(names) == 1:
            return _TYPE_TESTS[names[0]]
        tests = tuple(_TYPE_TESTS[name] for name in names)
        return lambda v: any(test(v) for test in tests)
    if keyword in {"enum", "const"}:
        allowed = frozenset(value if keyword == "enum" else [value])
        if not all(isinstance(item, str) for item in allowed):
            return None
        return lambda v: isinstance(v, str) and v in allowed
    if keyword in {"allOf", "anyOf", "oneOf"}:
        subs = tuple(_compile(sub) for sub in value)
        if keyword == "allOf":
            return _all_of(list(subs))
        if keyword == "anyOf":
            return _any_of(subs)
        return lambda v: sum(check(v) for check in subs) == 1
    if keyword == "if":
        return _if_then_else(value, schema)
    # `not` would need "certainly invalid"; $ref, format and the rest are not ours to judge.
    return None


def _any_of(subs: tuple[Check, ...]) -> Check:
    def any_of(v: Any) -> bool:
        for check in subs:  # noqa: SIM110 - a plain loop: no generator on the hot path
            if check(v):
                return True
        return False

    return any_of


def _string_check(schema: Mapping[str, Any], strict: bool) -> Check:
    search = _regex(schema["pattern"]).search if "pattern" in schema else None
    low, high = schema.get("minLength", 0), schema.get("maxLength", _UNBOUNDED)

    def string(v: Any) -> bool:
        if not isinstance(v, str):
            return not strict
        return low <= len(v) <= high and (search is None or search(v) is not None)

    return string


def _number_check(schema: Mapping[str, Any], strict: bool) -> Check:
    low, high = schema.get("minimum"), schema.get("maximum")
    is_number = _TYPE_TESTS["number"]

    def number(v: Any) -> bool:
        if not is_number(v):
            return not strict
        return (low is None or v >= low) and (high is None or v <= high)

    return number


def _array_check(schema: Mapping[str, Any], strict: bool) -> Check:
    each = _compile(schema.get("items", True))
    low, high = schema.get("minItems", 0), schema.get("maxItems", _UNBOUNDED)
    unique = schema.get("uniqueItems", False)

    def array(v: Any) -> bool:
        if not isinstance(v, list):
            return not strict
        if not low <= len(v) <= high:
            return False
        if unique:
            # Strings only: jsonschema's equality of other values has corner cases (1 == 1.0).
            for item in v:
                if not isinstance(item, str):
                    return False
            if len(set(v)) != len(v):
                return False
        for item in v:  # noqa: SIM110 - a plain loop: no generator on the hot path
            if not each(item):
                return False
        return True

    return array


def _object_check(schema: Mapping[str, Any], strict: bool) -> Check:
    known = {name: _compile(sub) for name, sub in schema.get("properties", {}).items()}
    patterns = tuple(
        (_regex(p).search, _compile(sub)) for p, sub in schema.get("patternProperties", {}).items()
    )
    # patternProperties apply to named properties too; for those the match is static.
    also = {
        name: tuple(sub for search, sub in patterns if search(name) and sub is not _always)
        for name in known
    }
    also = {name: subs for name, subs in also.items() if subs}
    extra = _compile(schema.get("additionalProperties", True))
    names = _compile(schema.get("propertyNames", True))
    required = tuple(schema.get("required", ()))
    dependent = tuple((k, tuple(v)) for k, v in schema.get("dependentRequired", {}).items())
    low, high = schema.get("minProperties", 0), schema.get("maxProperties", _UNBOUNDED)

    def obj(v: Any) -> bool:
        if not isinstance(v, dict):
            return not strict
        if not low <= len(v) <= high:
            return False
        for name in required:
            if name not in v:
                return False
        for present, needs in dependent:
            if present in v:
                for name in needs:
                    if name not in v:
                        return False
        for key, item in v.items():
            if names is not _always and not names(key):
                return False
            check = known.get(key)
            if check is not None:
                if not check(item):
                    return False
                for sub in also.get(key, ()):
                    if not sub(item):
                        return False
                continue
            if not isinstance(key, str):
                return False  # MessagePack allows bytes keys; let jsonschema's path report it
            matched = False
            for search, sub in patterns:
                if search(key) is not None:
                    matched = True
                    if not sub(item):
                        return False
            if not matched and not extra(item):
                return False
        return True

    return obj


def _if_then_else(condition: Any, schema: Mapping[str, Any]) -> Check | None:
    # Which branch applies depends on whether `if` matches, so `if` must be decided
    # exactly: only conditions built from keywords whose compiled form is exact qualify.
    if not _is_exact(condition):
        return None
    test = _compile(condition)
    then, otherwise = _compile(schema.get("then", True)), _compile(schema.get("else", True))
    return lambda v: then(v) if test(v) else otherwise(v)


def _is_exact(schema: Any) -> bool:
    """Whether `_compile(schema)` is False exactly when the schema rejects (never "not sure")."""
    if schema is True:
        return True
    if not isinstance(schema, dict):
        return False
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS or keyword in {"type", "required"}:
            continue
        if keyword in {"enum", "const"}:
            values = value if keyword == "enum" else [value]
            if not all(isinstance(v, str) for v in values):
                return False
        elif keyword == "properties":
            if not all(_is_exact(sub) for sub in value.values()):
                return False
        else:
            return False
    return True


def _resolve_pointer(document: Any, pointer: str) -> Any:
    node = document
    for token in pointer.split("/")[1:]:
        key = token.replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def _escape(token: object) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _pointer(base: str, path: Iterable[object]) -> str:
    return base + "".join("/" + _escape(part) for part in path)


def _collect(
    validator: Validator, instance: Any, event: int | None, base: str, limit: int
) -> list[Violation]:
    """Violations of `validator` by `instance` (event `event`, at `base` in the document)."""
    found: list[Violation] = []
    if limit <= 0:
        return found
    for error in validator.iter_errors(instance):
        for where, reason in _explain(error):
            found.append(Violation(event, _pointer(base, [*error.absolute_path, *where]), reason))
            if len(found) >= limit:
                return found
    return found


_TYPE_NAMES: Final[Mapping[str, str]] = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "null": "null",
}


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _show(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr) if _is_json(value) else repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _is_json(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _must_be(description: str) -> str:
    """Descriptions of values are noun phrases ("an RFC 3339 date-time"); of rules, sentences."""
    first = description.split(" ", 1)[0]
    return f"must be {description}" if first in {"a", "an", "one", "the"} else description


def _explain(error: ValidationError) -> Iterator[tuple[list[object], str]]:
    """(extra path below error.absolute_path, reason) for each problem in one error."""
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    description = schema.get("description")
    keyword = error.validator
    expected: Any = error.validator_value
    value: Any = error.instance
    if list(error.relative_schema_path)[-2:-1] == ["propertyNames"]:
        shown = f"field name {_show(value)}"
        yield [value], f"{shown} {_must_be(description)}" if description else error.message
    elif keyword == "required":
        missing = next(
            (p for p in expected if p not in value and error.message.startswith(repr(p))), "?"
        )
        # A description on a bare `then: {required: [...]}` says when; elsewhere it says what.
        when = description if description and "properties" not in schema else None
        yield [missing], f"is required {when}" if when else "is required"
    elif keyword == "dependentRequired":
        for present, needs in expected.items():
            for name in needs:
                if present in value and error.message.startswith(repr(name)):
                    yield [name], f"is required when {present} is present"
                    return
    elif keyword == "additionalProperties" and expected is False:
        prefixed = "patternProperties" in schema
        for name in _extra_properties(value, schema):
            hint = f"; extension fields need a namespace prefix, e.g. example:{name}"
            yield [name], "unknown field" + (hint if prefixed and isinstance(name, str) else "")
    elif keyword == "type":
        types = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in types)
        yield [], f"must be {wanted}, not {_kind(value)}"
    elif keyword == "uniqueItems":
        seen: dict[str, int] = {}
        for position, item in enumerate(value):
            key = json.dumps(item, sort_keys=True, default=repr)
            if key in seen:
                yield [position], f"duplicates item {seen[key]}"
                return
            seen[key] = position
        yield [], "items must be unique"
    elif keyword == "minItems":
        yield [], "must not be empty" if expected == 1 else f"needs at least {expected} items"
    elif keyword == "maxItems":
        yield [], f"has {len(value)} items; at most {expected} are allowed"
    elif keyword == "minLength":
        yield [], "must not be empty" if expected == 1 else f"needs at least {expected} characters"
    elif keyword == "maxLength":
        yield [], f"is longer than {expected} characters"
    elif keyword in {"minimum", "maximum"}:
        word = "at least" if keyword == "minimum" else "at most"
        yield [], f"must be {word} {expected}, got {_show(value)}"
    elif keyword == "const":
        why = f" ({description})" if description else ""
        yield [], f"must be {_show(expected)}{why}, got {_show(value)}"
    elif description and keyword in {"pattern", "enum", "anyOf", "oneOf", "format"}:
        got = "" if isinstance(value, dict | list) else f", got {_show(value)}"
        yield [], _must_be(description) + got
    elif keyword == "enum":
        yield [], f"must be one of {', '.join(map(_show, expected))}, got {_show(value)}"
    elif description:
        yield [], _must_be(description)
    else:
        message = error.message
        yield [], message if len(message) <= 200 else message[:199] + "…"

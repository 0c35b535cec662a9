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
about 0.2 ms per event. So each event is first asked of jsonschema-rs (a maintained,
conformant draft 2020-12 validator in Rust, about 1 microsecond an event here, several
times faster than the predicate we used to compile ourselves): only events it does not
pass go through jsonschema, which stays the single authority on what is wrong and where.
The fast check fails closed: a value it cannot take (bytes from MessagePack, an integer
beyond 64 bits) counts as "not sure", never as "valid". Its regular expressions run on
Rust's linear-time engine, where `$` is the end of the text as in ECMA-262.
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

import jsonschema_rs
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
        self._certainly_valid = {name: _fast_check(schema) for name, schema in inlined.items()}
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


def _fast_check(schema: dict[str, Any]) -> Callable[[Any], bool]:
    """True only for instances `schema` accepts, by jsonschema-rs; False: ask jsonschema.

    The event schemas are inlined and hold no reference to resolve. Offline and without
    format assertions, as jsonschema runs them.
    """
    translated = _with_python_classes(schema)
    if translated is None:
        return _not_sure
    validator = jsonschema_rs.Draft202012Validator(
        translated,
        validate_formats=False,
        pattern_options=jsonschema_rs.RegexOptions(),
        offline=True,
    )

    def certainly_valid(instance: Any) -> bool:
        try:
            return validator.is_valid(instance)
        except (ValueError, TypeError, OverflowError):
            return False  # not JSON data as it knows it: jsonschema decides

    return certainly_valid


def _not_sure(_: object) -> bool:
    return False


# What Python's \s matches and ECMA-262's (jsonschema-rs's) does not. (ECMA's also takes
# U+FEFF, which only makes the fast check stricter.)
_PYTHON_ONLY_SPACE = r"\x1c-\x1f\x85"


def _with_python_classes(node: Any) -> Any:
    r"""A copy of a schema whose patterns match for jsonschema-rs at most what they match
    for jsonschema here: \s and \S outside character classes get Python's whitespace.
    None when a pattern uses a class this does not translate (\d, \w, \b, or \s inside
    [...]), so the fast check never says "valid" where jsonschema would not."""
    if isinstance(node, list):
        items = [_with_python_classes(item) for item in node]
        return None if any(item is None for item in items) else items
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        translated: Any
        if key == "pattern" and isinstance(value, str):
            translated = _python_pattern(value)
        elif key == "patternProperties" and isinstance(value, dict):
            keys = {k: _python_pattern(k) for k in value}
            subs = {k: _with_python_classes(v) for k, v in value.items()}
            if any(v is None for v in (*keys.values(), *subs.values())):
                return None
            translated = {keys[k]: subs[k] for k in value}
        else:
            translated = _with_python_classes(value)
        if translated is None and value is not None:
            return None
        out[key] = translated
    return out


def _python_pattern(pattern: str) -> str | None:
    out: list[str] = []
    position, in_class = 0, False
    while position < len(pattern):
        char = pattern[position]
        if char == "\\":
            escape = pattern[position : position + 2]
            if escape in ("\\s", "\\S") and not in_class:
                negated = "^" if escape == "\\S" else ""
                escape = f"[{negated}\\s{_PYTHON_ONLY_SPACE}]"
            elif escape[1:] in ("s", "S", "d", "D", "w", "W", "b", "B"):
                return None
            out.append(escape)
            position += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        out.append(char)
        position += 1
    return "".join(out)


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

"""The page's gettext catalogs: one folder per language under ``locale/``.

A translator edits ``locale/<lang>/LC_MESSAGES/messages.po``; installing the package
compiles it to ``messages.mo`` (the build step in ``setup.py``), and a new folder is a new
language, offered by the language switch and by ``Accept-Language`` without touching
Python. ``python -m gateway.pages update`` brings every catalog up to date with the
templates and code (see __main__.py). English is the source language: its catalog may
leave a message untranslated and the English source text (the msgid) is shown.

When a compiled catalog is missing or older than its ``.po`` (a checkout whose catalogs
were edited since the last install), the ``.po`` is compiled in memory instead, so the
page never shows stale wording.
"""

from __future__ import annotations

import functools
import gettext
import io
import subprocess
import sys
from pathlib import Path
from typing import Final

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

__all__ = [
    "LOCALE_DIR",
    "SOURCE_LANGUAGE",
    "compile_catalogs",
    "languages",
    "translations",
]

LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"
DOMAIN: Final = "messages"
SOURCE_LANGUAGE: Final = "en"  # the msgids are English
# Shown first in the language switch: the platform's own language.
FIRST_LANGUAGE: Final = "zh"


def _po(lang: str, root: Path) -> Path:
    return root / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def _mo(lang: str, root: Path) -> Path:
    return root / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"


@functools.cache
def languages(root: Path | None = None) -> tuple[str, ...]:
    """Every language with a catalog, the platform's own first, then alphabetically."""
    root = root or LOCALE_DIR
    found = sorted(
        d.name for d in root.iterdir() if _po(d.name, root).exists() or _mo(d.name, root).exists()
    )
    return tuple(sorted(found, key=lambda lang: (lang != FIRST_LANGUAGE, lang)))


def _compiled(po: Path) -> bytes:
    with po.open("rb") as source:
        catalog = read_po(source)
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


@functools.cache
def translations(lang: str, root: Path | None = None) -> gettext.GNUTranslations:
    """The compiled catalog of `lang` (a language `languages()` lists)."""
    po, mo = _po(lang, root or LOCALE_DIR), _mo(lang, root or LOCALE_DIR)
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        data = mo.read_bytes()
    else:
        data = _compiled(po)
    return gettext.GNUTranslations(io.BytesIO(data))


def compile_catalogs(source: Path | None = None, target: Path | None = None) -> list[Path]:
    """Compile every ``.po`` under `source` to its ``.mo`` under `target` (default: beside
    it); the build step and ``python -m gateway.pages compile`` run this."""
    source = source or LOCALE_DIR
    written = []
    for po in sorted(source.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo = (target or source) / po.relative_to(source).with_suffix(".mo")
        mo.parent.mkdir(parents=True, exist_ok=True)
        mo.write_bytes(_compiled(po))
        written.append(mo)
    return written


# Where `extract` looks for messages: this checkout (babel.cfg says which files).
CHECKOUT: Final = Path(__file__).resolve().parents[2]
EXTRACT: Final = (
    "extract", "-F", "babel.cfg", "-k", "N_:1c,2", "-c", "Translators:", "--no-wrap",
    "--add-location=file",
    "--sort-by-file", "--project", "traceledger", "--copyright-holder", "traceledger authors",
)  # fmt: skip


def pybabel(*args: str | Path) -> None:
    """Run a ``pybabel`` command in the checkout (babel.cfg's paths are relative to it)."""
    command = [sys.executable, "-m", "babel.messages.frontend", "-q", *map(str, args)]
    subprocess.run(command, cwd=CHECKOUT, check=True)  # noqa: S603 - our own arguments


def extract(pot: Path) -> None:
    """Every message of the templates and the page code, as a catalog template."""
    pybabel(*EXTRACT, "-o", pot, ".")


def update() -> None:
    """Refresh every catalog from the templates and code: new messages appear
    untranslated, messages no longer used are dropped."""
    pot = LOCALE_DIR / f"{DOMAIN}.pot"
    extract(pot)
    pybabel("update", "-i", pot, "-d", LOCALE_DIR, "--no-wrap", "--ignore-obsolete")

"""Build step: compile the page's gettext catalogs (gateway/pages/locale/*/*.po -> .mo).

Everything else about the package is in pyproject.toml. A regular build writes the .mo
files beside the other package data in the build tree; an editable install
(``pip install -e .``) writes them into the source tree, which is what it serves.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
LOCALE = Path("gateway", "pages", "locale")


def _compile_catalogs(source: Path, target: Path) -> list[Path]:
    # Loaded by path: importing the gateway package would need its runtime dependencies.
    spec = importlib.util.spec_from_file_location(
        "_catalogs", ROOT / "gateway" / "pages" / "catalogs.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written: list[Path] = module.compile_catalogs(source, target)
    return written


class BuildWithCatalogs(build_py):
    def run(self) -> None:
        super().run()
        editable = getattr(self, "editable_mode", False)
        target = ROOT / LOCALE if editable else Path(self.build_lib) / LOCALE
        for path in _compile_catalogs(ROOT / LOCALE, target):
            self.announce(f"compiled {path}", level=2)


setup(cmdclass={"build_py": BuildWithCatalogs})

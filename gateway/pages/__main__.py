"""``python -m gateway.pages update|compile``, for whoever changes the page's wording.

update: extract every message of the templates and the page code (babel.cfg) into
locale/messages.pot and merge it into each language's .po (new messages untranslated,
unused ones dropped). compile: the .po files to .mo, as installing the package does.
"""

from __future__ import annotations

import sys

from gateway.pages.catalogs import compile_catalogs, update


def main(argv: list[str]) -> None:
    if argv == ["update"]:
        update()
    elif argv == ["compile"]:
        for path in compile_catalogs():
            print(path)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

"""The consumer's one-stop trace page (一站式追溯查询) and the pages around it.

A shopper's phone camera opens the page from the QR code on a package, so it must load
fast on a poor connection and read completely at once: one column, system fonts, no web
fonts, nothing from another host. Templates (``templates/``, Jinja2 with autoescaping)
hold the markup and the English source wording, gettext catalogs (``locale/``) every
language's, ``static/`` the style and the script that checks the page's proofs in the
browser. Python only reads the untrusted history (`view`) and formats values (`words`).
"""

from gateway.pages.language import pick_language
from gateway.pages.render import (
    CONTENT_SECURITY_POLICY,
    CSS,
    SCRIPT_PATH,
    SCRIPT_SOURCE,
    environment,
    history_context,
    problem_context,
    render_history,
    render_problem_page,
)
from gateway.pages.view import ProofPins

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "CSS",
    "SCRIPT_PATH",
    "SCRIPT_SOURCE",
    "ProofPins",
    "environment",
    "history_context",
    "pick_language",
    "problem_context",
    "render_history",
    "render_problem_page",
]

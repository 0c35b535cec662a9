"""QR codes that carry a GS1 Digital Link, for labels, web pages and terminals.

Every code is made the same way: error correction level M (GS1 Digital Link's usual choice:
it survives about 15% damage, a scuffed label, while keeping the code small) and a quiet zone
of 4 modules, the minimum ISO/IEC 18004 asks for so phone cameras find the code.

The encoded text is always the canonical Digital Link under our public base URL, so an EPC
URN, a GTIN-13 link on another host and a GTIN-14 link on ours give the same code, and
scanning it opens our resolver. No HTTP here; the gateway serves these bytes.
"""

from __future__ import annotations

import io
from functools import lru_cache

import qrcode
import qrcode.constants
import qrcode.exceptions
from qrcode.image.pure import PyPNGImage
from qrcode.image.svg import SvgPathFillImage

from traceledger.errors import ConfigError, IdentifierError
from traceledger.standards.gs1 import GS1Key, parse_digital_link, parse_epc_urn

__all__ = [
    "BORDER",
    "ERROR_CORRECTION",
    "digital_link_for",
    "key_for",
    "matrix",
    "png",
    "svg",
    "terminal",
]

ERROR_CORRECTION: int = qrcode.constants.ERROR_CORRECT_M
BORDER = 4
# A bare Digital Link path ("01/0950.../10/LOT1") is parsed as if it were on GS1's resolver.
_PATH_HOST = "https://id.gs1.org/"
# Largest PNG module size accepted: a version-40 code at 50 px a module is already 9,250 px.
MAX_BOX_SIZE = 50


def key_for(identifier: str) -> GS1Key:
    """The GS1 key an EPC URN, a Digital Link (any host) or a bare Digital Link path names."""
    text = identifier.strip()
    lead = text[:8].lower()
    if lead.startswith("urn:"):
        return parse_epc_urn(text)
    if lead.startswith(("http://", "https://")):
        return parse_digital_link(text)
    path = text.lstrip("/")
    uri = _PATH_HOST + path
    try:
        return parse_digital_link(uri)
    except IdentifierError as exc:
        # Say what the caller gave, not the host we parsed it under.
        message, prefix = str(exc), f"Digital Link {uri!r}: "
        if message.startswith(prefix):
            message = message[len(prefix) :]
        raise IdentifierError(f"Digital Link path {path[:120]!r}: {message}") from exc


def digital_link_for(identifier: str, public_base: str) -> str:
    """The canonical Digital Link of `identifier` on `public_base` (e.g. http://127.0.0.1:8080).

    Raises IdentifierError for an identifier that names no valid GS1 key (bad check digit,
    unknown AI, ...) and ConfigError for a base that is not an http(s) URL.
    """
    base = public_base.rstrip("/")
    if not base.lower().startswith(("http://", "https://")) or base.count("/") < 2:
        raise ConfigError(f"public base URL {public_base!r} must start with http:// or https://")
    return base + "/" + key_for(identifier).canonical()


def _code(data: str) -> qrcode.QRCode:
    """The QR symbol for `data`, smallest version that fits, level M, 4-module quiet zone."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION, border=BORDER)
    code.add_data(data)
    try:
        code.make(fit=True)
    except qrcode.exceptions.DataOverflowError as exc:
        raise ValueError(f"{len(data.encode())} bytes do not fit in one QR code") from exc
    return code


def matrix(data: str) -> list[list[bool]]:
    """The modules of the code for `data`, quiet zone included; True is dark."""
    return [[bool(m) for m in row] for row in _code(data).get_matrix()]


@lru_cache(maxsize=1024)
def png(data: str, *, box_size: int = 8) -> bytes:
    """A 1-bit greyscale PNG, `box_size` pixels a module (pure-Python pypng, no Pillow).

    Cached: the gateway serves the same few codes again and again.
    """
    if not 1 <= box_size <= MAX_BOX_SIZE:
        raise ValueError(f"box_size must be between 1 and {MAX_BOX_SIZE}, got {box_size}")
    code = _code(data)
    code.box_size = box_size
    out = io.BytesIO()
    code.make_image(image_factory=PyPNGImage).save(out)
    return out.getvalue()


@lru_cache(maxsize=1024)
def svg(data: str) -> bytes:
    """A standalone SVG: one path on a white background, 1 mm a module, with a viewBox.

    The white background keeps the code scannable on dark pages and in dark mode.
    """
    out = io.BytesIO()
    _code(data).make_image(image_factory=SvgPathFillImage).save(out)
    return out.getvalue()


# Two module rows per text line: (upper ink, lower ink) -> character.
_HALF_BLOCKS = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def terminal(data: str, *, light_background: bool = False) -> str:
    """The code drawn with Unicode half blocks, two module rows a line, for printing.

    Terminals draw text in a light colour on a dark background by default, so the characters
    paint the light modules and the dark ones are left as background; pass
    `light_background=True` for dark text on a light background.
    """
    rows = matrix(data)
    if len(rows) % 2:
        # The half line under the last row is left as plain background.
        rows.append([not light_background] * len(rows[0]))
    lines = []
    for upper, lower in zip(rows[::2], rows[1::2], strict=True):
        lines.append(
            "".join(
                _HALF_BLOCKS[(u == light_background, w == light_background)]
                for u, w in zip(upper, lower, strict=True)
            )
        )
    return "\n".join(lines) + "\n"

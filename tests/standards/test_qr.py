"""QR codes of Digital Links, read back by a real decoder (zbar) rather than trusted.

`python3 scripts/dev.py test` installs zbarimg (zbar-tools) and rsvg-convert (librsvg2-bin)
when it can; without them the decoding tests skip and say why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import png  # type: ignore[import-untyped]  # pypng ships no type information
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from gateway.app import create_app
from gateway.keys import LEDGER
from gateway.routes import qr as qr_routes
from tests.conftest import wait_for_checkpoint
from tests.epcis_samples import PRODUCER_GCP, document, object_event
from tests.ingest.test_capture import post, register
from traceledger.errors import ConfigError, IdentifierError
from traceledger.settings import Settings
from traceledger.standards import qr

Client = TestClient[web.Request, web.Application]

ZBARIMG = shutil.which("zbarimg")
RSVG_CONVERT = shutil.which("rsvg-convert")
needs_zbar = pytest.mark.skipif(
    ZBARIMG is None,
    reason="zbarimg is not installed (Debian package zbar-tools; scripts/dev.py test installs it)",
)
needs_rsvg = pytest.mark.skipif(
    RSVG_CONVERT is None,
    reason="rsvg-convert is not installed (Debian package librsvg2-bin; "
    "scripts/dev.py test installs it)",
)

BASE = "https://trace.example.org"
# One trade item of GTIN 09506000134352 (GS1's example GTIN-13 9506000134352), lot LOT1.
LOT_LINK = f"{BASE}/01/09506000134352/10/LOT1"
SAME_LOT = [
    "urn:epc:class:lgtin:9506000.013435.LOT1",
    "https://shop.example.com/products/01/9506000134352/10/LOT1?utm_source=label",
    "HTTP://ID.GS1.ORG/01/09506000134352/10/LOT1",
    "01/9506000134352/10/LOT1",
    "/01/09506000134352/10/LOT1",
]
SAME_ITEM = [
    ("urn:epc:id:sgtin:0614141.107346.2017", "01/10614141073464/21/2017"),
    ("urn:epc:id:sscc:0614141.1234567890", "00/106141412345678908"),
    ("urn:epc:id:sgln:0614141.12345.0", "414/0614141123452"),
    ("urn:epc:id:sgln:0614141.12345.DOCK%2F7", "414/0614141123452/254/DOCK%2F7"),
]
FORMAT_MASK = 0b101010000010010  # XORed over the 15 format bits (ISO/IEC 18004, 7.9)
EC_LEVELS = {0b01: "L", 0b00: "M", 0b11: "Q", 0b10: "H"}


def decode(image: bytes, tmp_path: Path) -> str:
    """What zbar reads in a PNG: exactly one symbol's text."""
    assert ZBARIMG is not None
    path = tmp_path / "code.png"
    path.write_bytes(image)
    done = subprocess.run(
        [ZBARIMG, "--raw", "-q", str(path)], capture_output=True, check=False, timeout=60
    )
    assert done.returncode == 0, f"zbarimg read no code: {done.stderr.decode()}"
    (text,) = done.stdout.decode().splitlines()
    return text


def rasterize(svg: bytes) -> bytes:
    assert RSVG_CONVERT is not None
    done = subprocess.run(
        [RSVG_CONVERT, "--background-color", "white", "--width", "600", "--format", "png"],
        input=svg,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def png_modules(image: bytes, box_size: int) -> list[list[bool]]:
    """The module grid a PNG shows (True is dark), sampled at the centre of each module."""
    width, height, rows, _ = png.Reader(bytes=image).read()
    pixels = [list(row) for row in rows]
    assert width == height
    assert width % box_size == 0
    centre = box_size // 2
    return [
        [pixels[y + centre][x + centre] == 0 for x in range(0, width, box_size)]
        for y in range(0, height, box_size)
    ]


def symbol_of(grid: list[list[bool]], border: int) -> list[list[bool]]:
    """The symbol inside a quiet zone of `border` modules, checking that zone is all light."""
    n = len(grid)
    for y, row in enumerate(grid):
        for x, dark in enumerate(row):
            inside = border <= x < n - border and border <= y < n - border
            assert inside or not dark, f"dark module ({x}, {y}) in the quiet zone"
    return [row[border : n - border] for row in grid[border : n - border]]


def error_correction_level(symbol: list[list[bool]]) -> str:
    """The level in the symbol's format information, read from both of its copies."""
    n = len(symbol)
    version, rest = divmod(n - 17, 4)
    assert rest == 0, f"{n} modules is no QR symbol size"
    assert 1 <= version <= 40, f"{n} modules is no QR symbol size"
    first = second = 0
    for i in range(15):
        # Around the top-left finder: up column 8, then along row 8 (ISO/IEC 18004, fig. 25).
        y, x = (i, 8) if i < 6 else (i + 1, 8) if i < 8 else (8, 7) if i == 8 else (8, 14 - i)
        first |= symbol[y][x] << i
        # Split copy: row 8 under the top-right finder, column 8 beside the bottom-left one.
        y, x = (8, n - 1 - i) if i < 8 else (n - 15 + i, 8)
        second |= symbol[y][x] << i
    assert first == second, "the two copies of the format information differ"
    return EC_LEVELS[(first ^ FORMAT_MASK) >> 13]


# ---------------------------------------------------------------------------------------------
# The link a code carries


@pytest.mark.parametrize("identifier", SAME_LOT)
def test_urns_and_digital_links_on_any_host_give_one_canonical_link(identifier: str) -> None:
    assert qr.digital_link_for(identifier, BASE) == LOT_LINK
    assert qr.digital_link_for(identifier, BASE + "/") == LOT_LINK


@pytest.mark.parametrize(("urn", "path"), SAME_ITEM)
def test_serials_containers_and_locations_keep_their_keys(urn: str, path: str) -> None:
    assert qr.digital_link_for(urn, BASE) == f"{BASE}/{path}"
    assert qr.digital_link_for(f"https://elsewhere.example/{path}", BASE) == f"{BASE}/{path}"
    assert qr.digital_link_for(path, BASE) == f"{BASE}/{path}"


@pytest.mark.parametrize(
    "identifier",
    [
        "01/09506000134353/10/LOT1",  # wrong check digit
        "https://id.example/01/09506000134353",  # wrong check digit, another host
        "urn:epc:id:sscc:0614141.12345",  # too few digits
        "urn:epc:id:nosuch:0614141.1.2",
        "01/09506000134352/99/X",  # AI 99 is no key qualifier
        "not an identifier",
        "",
    ],
)
def test_malformed_identifiers_are_identifier_errors(identifier: str) -> None:
    with pytest.raises(IdentifierError):
        qr.digital_link_for(identifier, BASE)


def test_a_bare_path_error_names_the_path_not_a_made_up_host() -> None:
    with pytest.raises(IdentifierError, match="path '01/09506000134353'") as caught:
        qr.digital_link_for("01/09506000134353", BASE)
    assert "id.gs1.org" not in str(caught.value)


@pytest.mark.parametrize("base", ["trace.example.org", "ftp://trace.example.org", "https://"])
def test_a_public_base_must_be_an_http_url(base: str) -> None:
    with pytest.raises(ConfigError):
        qr.digital_link_for("01/09506000134352", base)


# ---------------------------------------------------------------------------------------------
# The images


@needs_zbar
@pytest.mark.parametrize("identifier", [SAME_LOT[0], SAME_LOT[1], *(u for u, _ in SAME_ITEM)])
def test_png_decodes_to_the_canonical_link(identifier: str, tmp_path: Path) -> None:
    link = qr.digital_link_for(identifier, BASE)
    assert decode(qr.png(link), tmp_path) == link


@needs_zbar
def test_an_urn_and_its_digital_link_on_another_host_make_identical_codes(
    tmp_path: Path,
) -> None:
    from_urn = qr.png(qr.digital_link_for(SAME_LOT[0], BASE))
    from_link = qr.png(qr.digital_link_for(SAME_LOT[1], BASE))
    assert from_urn == from_link
    assert decode(from_link, tmp_path) == LOT_LINK


@pytest.mark.parametrize("box_size", [1, 3, 8])
def test_png_is_level_m_with_a_four_module_quiet_zone(box_size: int) -> None:
    image = qr.png(LOT_LINK, box_size=box_size)
    grid = png_modules(image, box_size)
    assert grid == qr.matrix(LOT_LINK)
    symbol = symbol_of(grid, border=4)
    assert error_correction_level(symbol) == "M"
    assert len(grid) == len(symbol) + 2 * 4


def test_png_module_size_is_bounded() -> None:
    for box_size in (0, qr.MAX_BOX_SIZE + 1):
        with pytest.raises(ValueError, match="box_size"):
            qr.png(LOT_LINK, box_size=box_size)


def test_svg_is_a_standalone_square_drawing_on_white_with_the_same_modules() -> None:
    root = ET.fromstring(qr.svg(LOT_LINK))
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    modules = len(qr.matrix(LOT_LINK))
    # One millimetre a module, quiet zone included.
    assert root.get("viewBox") == f"0 0 {modules} {modules}"
    assert root.get("width") == root.get("height") == f"{modules}mm"
    background, path = list(root)
    assert background.tag == f"{ns}rect"
    assert background.get("fill") == "white"
    assert path.tag == f"{ns}path"
    assert path.get("fill") == "#000000"
    # Every square the path draws is a dark module of the code, and every dark module is drawn.
    squares = {
        tuple(int(v) for v in part.split("H")[0].split(","))
        for part in (path.get("d") or "").split("M")
        if part
    }
    grid = qr.matrix(LOT_LINK)
    assert squares == {(x, y) for y, row in enumerate(grid) for x, dark in enumerate(row) if dark}


@needs_zbar
@needs_rsvg
def test_svg_rendered_by_librsvg_decodes_to_the_link(tmp_path: Path) -> None:
    assert decode(rasterize(qr.svg(LOT_LINK)), tmp_path) == LOT_LINK


@pytest.mark.parametrize("light_background", [False, True])
def test_terminal_drawing_shows_every_module(light_background: bool) -> None:
    grid = qr.matrix(LOT_LINK)
    text = qr.terminal(LOT_LINK, light_background=light_background)
    halves = {" ": (False, False), "▀": (True, False), "▄": (False, True), "█": (True, True)}
    inked: list[list[bool]] = []
    for line in text.splitlines():
        inked.append([halves[c][0] for c in line])
        inked.append([halves[c][1] for c in line])
    # Ink is the light modules on a dark terminal, the dark modules on a light one.
    shown = [[ink != light_background for ink in row] for row in inked[: len(grid)]]
    assert shown == [[not dark for dark in row] for row in grid]
    assert text.endswith("\n")


# ---------------------------------------------------------------------------------------------
# Over HTTP


@pytest.fixture
async def qr_client(settings: Settings) -> AsyncIterator[Client]:
    async with _client(settings) as client:
        yield client


def _client(settings: Settings) -> Client:
    """The full app, as the `client` fixture builds it, with the QR routes in it."""
    app = create_app(settings)
    if not any(r.canonical.startswith("/qr/") for r in app.router.resources()):
        app.add_routes(qr_routes.routes)  # until gateway/app.py registers them itself
    return TestClient(TestServer(app))


def link_on(client: Client, path: str) -> str:
    return str(client.make_url("/")).rstrip("/") + path


@needs_zbar
async def test_http_png_encodes_the_canonical_link_on_the_requests_own_host(
    qr_client: Client, tmp_path: Path
) -> None:
    response = await qr_client.get("/qr/01/9506000134352/10/LOT1/21/ABC.png")
    assert response.status == 200, await response.text()
    assert response.content_type == "image/png"
    assert response.headers["Cache-Control"] == "public, max-age=86400"
    link = link_on(qr_client, "/01/09506000134352/10/LOT1/21/ABC")
    image = await response.read()
    assert decode(image, tmp_path) == link
    symbol = symbol_of(png_modules(image, 8), border=4)
    assert error_correction_level(symbol) == "M"


@needs_zbar
@pytest.mark.parametrize(
    "path",
    ["00/106141412345678908", "414/0614141123452", "01/09506000134352/10/A%2FB%25"],
)
async def test_http_png_serves_containers_locations_and_encoded_values(
    qr_client: Client, tmp_path: Path, path: str
) -> None:
    response = await qr_client.get(URL(f"/qr/{path}.png", encoded=True))
    assert response.status == 200, await response.text()
    assert decode(await response.read(), tmp_path) == link_on(qr_client, "/" + path)


@needs_zbar
@needs_rsvg
async def test_http_svg_decodes_to_the_same_link(qr_client: Client, tmp_path: Path) -> None:
    response = await qr_client.get("/qr/01/09506000134352/10/LOT1.svg")
    assert response.status == 200, await response.text()
    assert response.content_type == "image/svg+xml"
    assert response.headers["Cache-Control"] == "public, max-age=86400"
    svg = await response.read()
    assert svg == qr.svg(link_on(qr_client, "/01/09506000134352/10/LOT1"))
    assert decode(rasterize(svg), tmp_path) == link_on(qr_client, "/01/09506000134352/10/LOT1")


@needs_zbar
async def test_http_codes_use_the_configured_public_url(settings: Settings, tmp_path: Path) -> None:
    configured = dataclasses.replace(settings, public_url=BASE)
    async with _client(configured) as client:
        response = await client.get("/qr/01/9506000134352/10/LOT1.png")
        assert response.status == 200, await response.text()
        assert decode(await response.read(), tmp_path) == LOT_LINK


@pytest.mark.parametrize(
    "path",
    [
        "/qr/01/09506000134353/10/LOT1.png",  # wrong check digit
        "/qr/01/09506000134353/10/LOT1.svg",
        "/qr/00/106141412345678909.png",
        "/qr/01/abc.png",
        "/qr/hello.svg",
    ],
)
async def test_http_bad_digital_links_are_400_problems(qr_client: Client, path: str) -> None:
    response = await qr_client.get(path)
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    problem: dict[str, Any] = await response.json(content_type=None)
    assert problem["type"] == "/problems/invalid-identifier"
    assert problem["status"] == 400


async def resolved(client: Client, link: URL, within: float = 30.0) -> dict[str, Any]:
    """The JSON history at `link`, waiting while the item is not indexed yet (404)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        response = await client.get(link, headers={"Accept": "application/json"})
        if response.status != 404 or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


@needs_zbar
async def test_a_scanned_code_resolves_to_the_items_history(
    qr_client: Client, tmp_path: Path
) -> None:
    producer = await register(qr_client, "Shanghai Dairy", [PRODUCER_GCP])
    status, receipt = await post(qr_client, document(object_event("QR7")), producer)
    assert status == 201, receipt
    (entry,) = receipt["entries"]
    await wait_for_checkpoint(qr_client.app[LEDGER], entry["index"] + 1)

    response = await qr_client.get("/qr/01/10614141073464/21/QR7.png")
    assert response.status == 200
    scanned = URL(decode(await response.read(), tmp_path))
    # What a phone does next: open the link it read (once the indexer has caught up).
    history = await resolved(qr_client, URL(scanned.raw_path, encoded=True))
    assert history["identifier"]["key"] == "01/10614141073464/21/QR7"
    assert [e["bizStep"] for e in history["events"]] == ["commissioning"]

"""The HTML reports open in a real headless Chromium (Debian's `chromium` package; `make test`
installs it): charts and tables render, the console stays silent (the page's CSP would log any
attempt to fetch a script, font or image), and the screenshot is not blank."""

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import dagster as dg
import pytest

from tests.test_reports import FX, ORDERS, STATEMENTS, add_refund

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (1280, 2000)
GREEN, RED, BLUE = bytes.fromhex("2e7d32"), bytes.fromhex("c62828"), bytes.fromhex("1565c0")
BAR_PIXELS = 18 * 60  # one chart bar: 18 px high, at least 60 px long (a legend square is 14 x 14)


def chromium() -> str:
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    pytest.fail("Chromium is not installed: `apt-get update && apt-get install -y chromium` (make test does it)")


def start_chromium(page: Path, profile: Path, *mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", *mode, page.as_uri()],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """8-bit RGB/RGBA PNG -> (width, height, bytes per pixel, pixels), with the standard library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
        elif kind == b"IDAT":
            chunks.append(body)
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(chunks))
    pixels, prev = bytearray(), bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 255
        elif kind == 2:  # Up
            row = bytearray((a + b) & 255 for a, b in zip(row, prev))
        elif kind == 3:  # Average
            for i in range(stride):
                row[i] = (row[i] + (((row[i - bpp] if i >= bpp else 0) + prev[i]) >> 1)) & 255
        elif kind == 4:  # Paeth
            for i in range(stride):
                a, b, c = (row[i - bpp] if i >= bpp else 0), prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        pixels += row
        prev = row
    return width, height, bpp, bytes(pixels)


def colour_counts(png: Path, *colours: bytes) -> tuple[int, dict[bytes, int]]:
    """(pixels that are not near-white, {colour: exact pixels of it})."""
    width, height, bpp, pixels = decode_png(png.read_bytes())
    assert (width, height) == WINDOW
    inked, counts = 0, dict.fromkeys(colours, 0)
    for i in range(0, len(pixels), bpp):
        rgb = pixels[i:i + 3]
        if rgb[0] < 230 or rgb[1] < 230 or rgb[2] < 230:
            inked += 1
            if rgb in counts:
                counts[rgb] += 1
    return inked, counts


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """One store, one day through the real job; then each report page in Chromium twice at once:
    a screenshot, and the DOM after rendering."""
    from tests.conftest import Home

    root = tmp_path_factory.mktemp("browser")
    home = Home(root / "home")
    home.path.mkdir()
    home.config()
    home.orders(ORDERS)
    home.statements(STATEMENTS)
    home.drop("fx/sbs.csv", FX)
    add_refund(home)
    instance = dg.DagsterInstance.ephemeral()
    home.run("2026-07-14", "2026-07-14", stores=["shop"], instance=instance)
    runs = {}
    for asset in EXPECTED:
        # one store, one day: each materialization names its single report's files
        (record,) = instance.fetch_materializations(dg.AssetKey(asset), limit=10).records
        materialization = record.asset_materialization
        html = materialization.metadata["html"]
        assert isinstance(html, dg.PathMetadataValue)
        assert materialization.metadata["xlsx"].path == html.path.replace(".html", ".xlsx")
        page, screenshot = Path(html.path), root / f"{asset}.png"
        runs[asset] = (
            screenshot,
            start_chromium(page, root / f"{asset}-shot", f"--screenshot={screenshot}", f"--window-size={WINDOW[0]},{WINDOW[1]}"),
            start_chromium(page, root / f"{asset}-dom", "--dump-dom"),
        )
    finished = {}
    for asset, (screenshot, shooting, dumping) in runs.items():
        dom, dom_log = dumping.communicate(timeout=120)
        _, shot_log = shooting.communicate(timeout=120)
        finished[asset] = (screenshot, dom, shot_log + dom_log, (shooting.returncode, dumping.returncode))
    return finished


# asset -> (tables the page must show, (colour, bars of it the charts must draw at least))
EXPECTED = {
    "daily_store_report": (("net", "totals", "discrepancies", "payments", "refunds", "legend"), ((GREEN, 1), (RED, 4))),
    "all_stores_report": (("stores", "legend"), ((GREEN, 1), (RED, 1))),
    "month_close_report": (("month_figures", "bridge", "aging", "open_items", "legend"), ((BLUE, 2), (RED, 3))),
}


@pytest.mark.parametrize("asset", sorted(EXPECTED))
def test_the_html_report_renders_in_headless_chromium(rendered, asset):
    screenshot, dom, log, returncodes = rendered[asset]
    assert returncodes == (0, 0), log[-3000:]

    console = [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert console == [], "the page logged to the console:\n" + "\n".join(console)

    tables, bars = EXPECTED[asset]
    assert dom.count("<svg") >= 1 and "<rect" in dom
    for key in tables:
        assert f'<table data-table="{key}"' in dom, key

    assert screenshot.exists(), log[-3000:]
    inked, counts = colour_counts(screenshot, *(colour for colour, _ in bars))
    assert inked > WINDOW[0] * WINDOW[1] // 50, f"the page looks blank: {inked} inked pixels"
    for colour, minimum in bars:
        assert counts[colour] >= minimum * BAR_PIXELS, f"chart colour #{colour.hex()}: {counts[colour]} pixels"

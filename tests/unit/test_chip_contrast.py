"""The finding chips' text is readable on every chip colour: WCAG contrast of at least 4.5:1, computed from
the colours the page itself uses (findings.js's table and its fallback hue rule, app.css's chip text)."""

import colorsys
import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "cxrneo" / "web"
AA = 4.5


def _channel(v: float) -> float:
    return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4


def _luminance(rgb: tuple[float, float, float]) -> float:
    r, g, b = (_channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _hex(text: str) -> tuple[float, float, float]:
    text = text.lstrip("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    return int(text[0:2], 16) / 255, int(text[2:4], 16) / 255, int(text[4:6], 16) / 255


def _chip_text() -> tuple[float, float, float]:
    css = (WEB / "app.css").read_text()
    rule = re.search(r"^\.chip \{([^}]*)\}", css, re.M)
    assert rule, "app.css has no .chip rule"
    colour = re.search(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{3,6})", rule.group(1))
    assert colour, ".chip sets no text colour"
    return _hex(colour.group(1))


def _table() -> dict[str, str]:
    js = (WEB / "findings.js").read_text()
    body = re.search(r"FINDING_COLOURS = \{(.*?)\};", js, re.S)
    assert body, "findings.js has no colour table"
    return dict(re.findall(r'"?([\w ]+?)"?: "(#[0-9a-fA-F]{6})"', body.group(1)))


def test_the_contrast_sums_match_wcag() -> None:
    assert contrast((1, 1, 1), (0, 0, 0)) == pytest.approx(21)
    assert contrast((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)) == pytest.approx(1)
    assert contrast(_hex("#767676"), (1, 1, 1)) >= AA > contrast(_hex("#777"), (1, 1, 1))  # WCAG's known edge


def test_every_named_finding_colour_passes() -> None:
    text = _chip_text()
    table = _table()
    assert len(table) >= 14  # the NIH findings at least
    low = {name: round(contrast(_hex(c), text), 2) for name, c in table.items() if contrast(_hex(c), text) < AA}
    assert low == {}


def test_every_hue_of_the_fallback_colour_passes() -> None:
    js = (WEB / "findings.js").read_text()
    rule = re.search(r"hsl\(\$\{h\} (\d+)% (\d+)%\)", js)
    assert rule, "findings.js has no fallback hue rule"
    saturation, lightness = int(rule.group(1)) / 100, int(rule.group(2)) / 100
    text = _chip_text()
    worst = min(contrast(colorsys.hls_to_rgb(h / 360, lightness, saturation), text) for h in range(360))
    assert worst >= AA

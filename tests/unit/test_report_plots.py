"""Plot titles are HTML captions of the plot's width (they wrap in a browser, never clip in the SVG)."""

import re

from cxrneo.evaluation.report import plot_figure, svg_curves


def test_plot_title_is_a_wrapping_caption_not_svg_text() -> None:
    curves = {"community": [1.0, 0.8, 0.6], "knn": [0.9, 0.7, 0.5]}
    subtitle = "'No Finding' as one more label, all queries"
    page = plot_figure(curves, "precision@K — nih-u", subtitle, width=460)
    caption = re.search(r"<figcaption>(.*?)</figcaption>", page)
    assert caption and "precision@K — nih-u" in caption.group(1) and "&#x27;No Finding&#x27;" in caption.group(1)
    assert 'style="width:460px"' in page  # the caption wraps inside the plot's width
    svg = page[page.index("<svg"):]
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert not any("No Finding" in t or "precision@K" in t for t in texts)  # no long title drawn in the SVG
    assert 'aria-label="precision@K — nih-u — &#x27;No Finding&#x27;' in svg  # still named for screen readers
    assert svg_curves(curves, "t").count("<polyline") == 2

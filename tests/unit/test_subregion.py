"""A region's code: which cells a box covers, how much each weighs, and the request's region field."""

import numpy as np
import pytest

from cxrneo.errors import InputError
from cxrneo.service.request import ImageQuery, QueryOptions, QueryRequest, from_form, parse, to_form
from cxrneo.subregion import cell_weights, check_box, from_pixels, parse_box, region_code


def _cells(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((16, 7, 7))


def test_the_whole_image_gives_every_cell_full_weight_and_the_image_code() -> None:
    cells = _cells()
    np.testing.assert_allclose(cell_weights((0, 0, 1, 1), 7, 7), np.ones((7, 7)))
    np.testing.assert_allclose(region_code(cells, (0, 0, 1, 1)), cells.mean(axis=(1, 2)), rtol=1e-6)


def test_a_box_on_cell_edges_covers_exactly_those_cells() -> None:
    w = cell_weights((1 / 7, 2 / 7, 3 / 7, 5 / 7), 7, 7)
    covered = np.argwhere(w > 0.5)
    assert sorted(map(tuple, covered.tolist())) == [(r, c) for r in (2, 3, 4) for c in (1, 2)]
    assert np.count_nonzero(w > 1e-9) == 6  # edges shared with neighbours add nothing
    cells = _cells(1)
    np.testing.assert_allclose(region_code(cells, (1 / 7, 2 / 7, 3 / 7, 5 / 7)),
                               cells[:, 2:5, 1:3].mean(axis=(1, 2)), rtol=1e-5)


def test_a_cell_weighs_the_share_of_it_the_box_covers() -> None:
    w = cell_weights((0.5 / 7, 0.0, 2 / 7, 1 / 7), 7, 7)  # half of cell (0, 0), all of (0, 1)
    np.testing.assert_allclose(w[0, :3], [0.5, 1.0, 0.0], atol=1e-12)
    assert w[1:].sum() == 0
    cells = _cells(2)
    want = (0.5 * cells[:, 0, 0] + cells[:, 0, 1]) / 1.5
    np.testing.assert_allclose(region_code(cells, (0.5 / 7, 0.0, 2 / 7, 1 / 7)), want, rtol=1e-5)


def test_a_box_inside_one_cell_is_that_cell() -> None:
    cells = _cells(3)
    np.testing.assert_allclose(region_code(cells, (0.31, 0.62, 0.33, 0.64)), cells[:, 4, 2], rtol=1e-5)


@pytest.mark.parametrize("box", [(0.5, 0.1, 0.5, 0.6), (0.6, 0.1, 0.5, 0.6), (0.1, 0.2, 0.3, 1.2),
                                 (-0.1, 0.2, 0.3, 0.4), (0.1, 0.2, 0.3), (0.1, float("nan"), 0.3, 0.4),
                                 (0.1, 0.2, 0.1 + 1e-300, 0.4)])
def test_bad_boxes_are_refused(box: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="region"):
        check_box(box)


def test_the_cli_form_and_nih_pixel_boxes() -> None:
    assert parse_box(" 0.1, 0.2,0.5 ,0.6") == (0.1, 0.2, 0.5, 0.6)
    with pytest.raises(ValueError, match="x0,y0,x1,y1"):
        parse_box("0.1;0.2;0.5;0.6")
    assert from_pixels(256, 512, 512, 256, 1024, 1024) == (0.25, 0.5, 0.75, 0.75)
    assert from_pixels(900, 0, 300, 100, 1024, 1024)[2] == 1.0  # clipped to the image


def test_the_request_validates_a_region_in_one_line() -> None:
    req = parse(QueryRequest, {"id": "a.png", "region": [0.1, 0.2, 0.5, 0.6]})
    assert req.region == [0.1, 0.2, 0.5, 0.6]
    for bad, said in [({"id": "a.png", "region": [0.5, 0.2, 0.1, 0.6]}, "0 <= x0 < x1 <= 1"),
                      ({"id": "a.png", "region": [0.1, 0.2, 0.5]}, "at least 4"),
                      ({"code": [1.0, 2.0], "region": [0.1, 0.2, 0.5, 0.6]}, "one image"),
                      ({"ids": ["a.png", "b.png"], "region": [0.1, 0.2, 0.5, 0.6]}, "one image")]:
        with pytest.raises(InputError, match="region") as e:
            parse(QueryRequest, bad)
        assert said in str(e.value) and "\n" not in str(e.value)


def test_an_upload_carries_its_region_as_a_form_field() -> None:
    options = parse(QueryOptions, {"k": 3, "region": [0.25, 0.25, 0.75, 1.0]})
    fields = to_form(options)
    assert from_form(fields).region == [0.25, 0.25, 0.75, 1.0]
    assert parse(ImageQuery, {**fields, "region": options.region, "file": b""}).region == options.region
    with pytest.raises(InputError, match="region"):
        from_form({"region": "[0.2, 0.2, 0.2, 0.4]"})

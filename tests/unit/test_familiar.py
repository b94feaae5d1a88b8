"""Is a query like the archive: the code statistic, the pixel rules, duplicates, and where each hit stands."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrneo.embed import radiograph
from cxrneo.embed.images import read_grey
from cxrneo.errors import InputError
from cxrneo.graph import normalise, similarity_edges
from cxrneo.retrieval import MemoryGraph, Method, Retriever
from cxrneo.retrieval.familiar import MIN_CODES, Familiarity
from cxrneo.retrieval.question import Question

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "nih-sample" / "images"
D = 64


def _archive(n: int, seed: int = 3) -> np.ndarray:
    """Unit codes with most of their spread in 8 directions around a common mean (as codes are)."""
    shape = np.random.default_rng(1)  # one archive's structure; `seed` draws its codes
    mean = np.abs(shape.standard_normal(D)) + 1.0
    basis = np.linalg.qr(shape.standard_normal((D, 8)))[0].T
    rng = np.random.default_rng(seed)
    return normalise(mean + rng.standard_normal((n, 8)) @ basis * 0.8 + 0.02 * rng.standard_normal((n, D)))


def test_fresh_codes_of_the_archive_pass_and_codes_unlike_it_are_flagged() -> None:
    codes = _archive(600)
    fam = Familiarity.fit(codes, len(codes))
    assert fam is not None and fam.held_out == 300
    fresh = _archive(400, seed=4)  # the same kind of codes, never seen by the fit
    flagged = sum(fam.doubt(c) is not None for c in fresh)
    assert flagged <= 0.05 * len(fresh)  # the threshold is the held-out 99th percentile
    rng = np.random.default_rng(5)
    strange = normalise(np.abs(rng.standard_normal((50, D))))  # positive, but no structure of the archive's
    assert all(fam.doubt(c) is not None for c in strange)
    reason = fam.doubt(strange[0])
    assert reason is not None and "unlike the archive" in reason and "\n" not in reason


def test_a_small_archive_has_no_statistic_and_a_wrong_width_is_one_line() -> None:
    assert Familiarity.fit(_archive(MIN_CODES - 1), MIN_CODES - 1) is None
    fam = Familiarity.fit(_archive(200), 200)
    assert fam is not None
    with pytest.raises(InputError, match="a code of 3 values"):
        fam.residual(np.ones(3))


def _png(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path)
    return path


def test_too_small_images_are_refused_from_the_header(tmp_path: Path) -> None:
    tiny = _png(tmp_path / "tiny.png", np.full((8, 8), 128, np.uint8))
    with pytest.raises(InputError, match=r"tiny.png is 8x8 pixels: too small to be a radiograph"):
        radiograph.check_size(tiny, "tiny.png")
    radiograph.check_size(_png(tmp_path / "ok.png", np.zeros((64, 300), np.uint8)), "ok.png")


def test_blank_noise_and_colour_pictures_are_doubted_and_real_films_are_not(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:300, 0:400]
    colour = np.stack([xx * 255 // 400, yy * 255 // 300, np.full_like(xx, 90)], axis=2).astype(np.uint8)
    cases = {
        "uniform": _png(tmp_path / "grey.png", np.full((256, 256), 128, np.uint8)),
        "noise": _png(tmp_path / "noise.png", rng.integers(0, 256, (256, 256), dtype=np.uint8)),
        "colour": _png(tmp_path / "colour.png", colour),
    }
    for word, path in cases.items():
        said = radiograph.doubt(path, read_grey(path, 224))
        assert said is not None and word in said, (word, said)
    films = sorted(SAMPLE.glob("*.png"))[:40]
    assert len(films) == 40
    assert [f.name for f in films if radiograph.doubt(f, read_grey(f, 224)) is not None] == []


@pytest.fixture(scope="module")
def world() -> tuple[Retriever, np.ndarray, list[str]]:
    codes = _archive(300)
    ids = [f"img{i:03d}" for i in range(len(codes))]
    edges = similarity_edges(codes, 0.9)
    which = np.arange(len(codes)) % 5
    return Retriever(MemoryGraph.build(ids, edges, which), codes, ids, 0.9), codes, ids


@pytest.mark.parametrize("method", list(Method))
def test_each_hit_says_what_share_of_the_archive_is_less_alike(world: tuple, method: Method) -> None:  # type: ignore[type-arg]
    r, codes, ids = world
    q = codes[7] + 0.05
    unit = q / np.linalg.norm(q)
    hits = r.query(q, Question(10, method, exclude=frozenset({ids[7]})))
    exact = np.delete(codes.astype(np.float64) @ unit, 7)
    for h in hits:
        assert h.closer_than is not None
        # exact values: between the rows surely below (by 1e-9) and those not surely above, the hit itself aside
        low = float((exact < h.cosine - 1e-9).mean())
        high = float((exact < h.cosine + 1e-9).mean()) - 1 / exact.size
        assert low - 1e-12 <= h.closer_than <= high + 1e-12, (h, low, high)
    if method is Method.KNN:  # nothing in the archive is closer than the first hit
        assert hits[0].closer_than == pytest.approx(1 - 1 / exact.size)


def test_a_code_of_the_archive_is_its_duplicate_and_a_near_one_is_not(world: tuple) -> None:  # type: ignore[type-arg]
    r, codes, ids = world
    assert r.duplicate_of(codes[11] * 3.0) == ids[11]
    other = codes[11] + 0.05 * (codes[12] - codes[11])
    assert r.duplicate_of(other) is None
    assert r.doubt(codes[11]) is None


def test_counts_at_least_each_cut_equal_the_rows_at_least_it_under_a_loose_first_pass() -> None:
    from cxrneo.retrieval.cosines import Cosines

    codes = _archive(500, seed=9).astype(np.float32)
    q = codes[3].astype(np.float64)
    exact = codes.astype(np.float64) @ q
    noise = np.random.default_rng(2).uniform(-1, 1, exact.size) * (0.002 + 0.01 * np.abs(exact))
    cos = Cosines(codes, q, (exact + 0.5 * noise).astype(np.float32), base=0.002, rel=0.01)
    cuts = np.sort(exact)[::-37][:12]
    assert cos.count_at_least(cuts).tolist() == [cos.at_least(float(t)).size for t in cuts]
    assert cos.count_at_least(np.array([])).size == 0


def test_counts_at_least_hold_for_tied_unsorted_and_far_apart_cuts() -> None:
    from cxrneo.retrieval.cosines import Cosines, exact_dot

    codes = _archive(800, seed=4).astype(np.float32)
    q = codes[7].astype(np.float64)
    exact = exact_dot(codes, np.arange(len(codes)), q)  # the values Cosines decides on, bit for bit
    rng = np.random.default_rng(5)
    for base, rel in ((1e-6, 0.0), (0.003, 0.0), (0.001, 0.02)):  # each bound covers its noise and float32 rounding
        noise = 0.9 * rng.uniform(-1, 1, exact.size) * (base + rel * np.abs(exact))
        cos = Cosines(codes, q, (exact + noise).astype(np.float32), base=base, rel=rel)
        picked = rng.choice(exact, 9, replace=False)
        cuts = np.concatenate([picked, picked[:3], [exact.min() - 1, exact.max() + 1, 0.0]])  # ties, none, all
        rng.shuffle(cuts)
        want = [int((exact >= t).sum()) for t in cuts]
        assert cos.count_at_least(cuts).tolist() == want == [cos.at_least(float(t)).size for t in cuts]


def test_counts_at_least_round_their_cuts_to_the_first_pass_precision_on_the_safe_side() -> None:
    from cxrneo.retrieval.cosines import Cosines

    base = 2.0**-10  # the exact cosine is 0.5 and the first pass says 0.5 + base (float32): a valid bound
    cos = Cosines(np.array([[0.5]], np.float32), np.array([1.0]), np.array([0.5 + base], np.float32), base=base)
    t = 0.5 + 1e-9  # above the exact value; the row's lower bound lies under it, by less than a float32 step
    assert cos.count_at_least(np.array([t, 0.5])).tolist() == [0, 1] == [cos.at_least(t).size, cos.at_least(0.5).size]

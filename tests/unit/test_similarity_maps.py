"""Similarity maps: the exact sum identity, the sanity checks of Adebayo et al. (NeurIPS 2018), and
`cxrneo explain` on two bundled images."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cxrneo.errors import InputError
from cxrneo.similarity import similarity_maps

ROOT = Path(__file__).resolve().parents[2]
IMAGES = sorted((ROOT / "examples" / "nih-sample" / "images").glob("*.png"))
CHECKPOINT = ROOT / "examples" / "checkpoint" / "best.pt"


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.integers(1, 9), cols=st.integers(1, 9), other=st.integers(1, 9))
def test_each_map_sums_to_the_cosine_of_the_pooled_codes(seed: int, rows: int, cols: int, other: int) -> None:
    rng = np.random.default_rng(seed)
    a = np.maximum(rng.standard_normal((16, rows, cols)), 0) + 1e-3  # after a ReLU: non-negative
    b = np.maximum(rng.standard_normal((16, other, cols)), 0) + 1e-3
    m = similarity_maps(a, b)
    ca, cb = a.mean(axis=(1, 2)), b.mean(axis=(1, 2))
    cosine = ca @ cb / (np.linalg.norm(ca) * np.linalg.norm(cb))
    assert m.cosine == pytest.approx(cosine, abs=1e-12)
    assert m.query.sum() == pytest.approx(cosine, abs=1e-12) and m.hit.sum() == pytest.approx(cosine, abs=1e-12)
    assert m.query.shape == (rows, cols) and m.hit.shape == (other, cols)
    assert (m.query >= 0).all() and (m.hit >= 0).all()


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), grid=st.integers(2, 7),
       box=st.tuples(st.floats(0, 0.45), st.floats(0, 0.45), st.floats(0.55, 1), st.floats(0.55, 1)))
def test_a_region_s_maps_sum_to_the_cosine_of_its_code_and_are_zero_outside_it(
        seed: int, grid: int, box: tuple[float, float, float, float]) -> None:
    from cxrneo.subregion import cell_weights, region_code

    rng = np.random.default_rng(seed)
    a = np.maximum(rng.standard_normal((16, grid, grid)), 0) + 1e-3
    b = np.maximum(rng.standard_normal((16, grid, grid)), 0) + 1e-3
    w = cell_weights(box, grid, grid)
    m = similarity_maps(a, b, w)
    r, cb = region_code(a, box).astype(np.float64), b.mean(axis=(1, 2))
    cosine = r @ cb / (np.linalg.norm(r) * np.linalg.norm(cb))  # the region query's own cosine (float32 code)
    assert m.cosine == pytest.approx(cosine, abs=1e-6)
    assert m.query.sum() == pytest.approx(m.cosine, abs=1e-12) and m.hit.sum() == pytest.approx(m.cosine, abs=1e-12)
    assert (m.query[w == 0] == 0).all() and (m.query[w > 0] > 0).all()  # nothing outside the box counts


def test_a_box_over_the_whole_image_gives_the_whole_image_s_maps() -> None:
    rng = np.random.default_rng(3)
    a, b = (np.maximum(rng.standard_normal((8, 7, 7)), 0) for _ in range(2))
    plain, whole = similarity_maps(a, b), similarity_maps(a, b, np.ones((7, 7)))
    assert np.allclose(plain.query, whole.query, atol=1e-12) and np.allclose(plain.hit, whole.hit, atol=1e-12)
    for bad in (np.ones((6, 7)), np.zeros((7, 7)), -np.ones((7, 7))):
        with pytest.raises(InputError, match="region weights"):
            similarity_maps(a, b, bad)


def test_an_image_against_itself_is_non_negative_and_sums_to_one() -> None:
    f = np.maximum(np.random.default_rng(1).standard_normal((32, 7, 7)), 0)
    m = similarity_maps(f, f)
    assert (m.query >= 0).all() and m.query.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.array_equal(m.query, m.hit)
    with pytest.raises(InputError, match="all-zero code"):
        similarity_maps(np.zeros((4, 2, 2)), f[:4])


@pytest.mark.slow
def test_the_trained_model_s_maps_are_its_own_and_sum_to_its_codes_cosine() -> None:
    """One forward pass gives codes and maps; the maps of the shipped checkpoint are not those of a
    randomly initialised DenseNet-121 (Adebayo et al.'s model randomisation check): their mean rank
    correlation over 16 real image pairs' maps is below 0.4 (measured 0.16 when written)."""
    import torch
    from scipy.stats import spearmanr

    from cxrneo.embed.encoder import Encoder
    from cxrneo.embed.model import CxrNet

    enc = Encoder(CHECKPOINT, "cpu")
    images = IMAGES[:16]
    trained = enc.cells(images)
    codes = np.stack([enc.code(p) for p in images[:2]])
    assert np.allclose(trained[:2].mean(axis=(2, 3)), codes, rtol=1e-4, atol=1e-5)  # the same codes
    pair = enc.explain(images[0], images[1])
    cosine = codes[0] @ codes[1] / (np.linalg.norm(codes[0]) * np.linalg.norm(codes[1]))
    assert pair.query.sum() == pytest.approx(cosine, abs=1e-5) and pair.hit.sum() == pytest.approx(cosine, abs=1e-5)
    self_map = enc.explain(images[2], images[2])
    assert (self_map.query >= 0).all() and self_map.query.sum() == pytest.approx(1.0, abs=1e-5)

    torch.manual_seed(0)
    enc.model = CxrNet(len(enc.labels)).eval()  # same architecture, random weights
    random = enc.cells(images)
    rhos = []
    for i in range(0, len(images), 2):
        a, b = similarity_maps(trained[i], trained[i + 1]), similarity_maps(random[i], random[i + 1])
        rhos += [spearmanr(a.query.ravel(), b.query.ravel()).statistic, spearmanr(a.hit.ravel(), b.hit.ravel()).statistic]
    assert float(np.mean(rhos)) < 0.4, rhos


def test_cxrneo_explain_writes_the_overlay_for_two_bundled_images(tmp_path: Path) -> None:
    from cxrneo.cli.main import app

    out = tmp_path / "pair.png"
    done = CliRunner().invoke(app, ["explain", str(IMAGES[0]), str(IMAGES[1]), "--checkpoint", str(CHECKPOINT),
                                    "--out", str(out), "--device", "cpu", "--size", "224"])
    assert done.exit_code == 0, done.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "each map sums to it" in done.output
    from PIL import Image

    with Image.open(out) as img:
        assert img.width == 2 * 224 + 3 * 16 and img.mode == "RGB"
    bad = CliRunner().invoke(app, ["explain", str(IMAGES[0]), str(tmp_path / "none.png"), "--checkpoint",
                                   str(tmp_path / "none.pt"), "--out", str(out)])
    assert bad.exit_code == 1 and bad.output.startswith("error:") and len(bad.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_evaluation_gallery_draws_each_hit_with_its_map(tmp_path: Path) -> None:
    from cxrneo.archive.codes import load
    from cxrneo.cli.jobs import map_drawer
    from cxrneo.cli.main import app
    from cxrneo.evaluation import report
    from cxrneo.evaluation.evaluate import EvalOptions, evaluate, louvain_in_memory

    sample = ROOT / "examples" / "nih-sample"
    done = CliRunner().invoke(app, ["embed", str(CHECKPOINT), "--labels", str(sample / "Data_Entry_2017.csv"),
                                    "--images", str(sample / "images"), "--out", str(tmp_path / "codes.npz"),
                                    "--workers", "0", "--max-images", "60", "--device", "cpu"])
    assert done.exit_code == 0, done.output
    opts = EvalOptions(n_queries=12, k=5, k_max=10, n_boot=100, n_examples=2, mean_degree=6)
    result = evaluate(load(tmp_path / "codes.npz"), opts, lambda c, e, t: louvain_in_memory(c, e, t, 0))
    plain = report.to_html(result, sample / "images")
    drawn = report.write(result, tmp_path / "report", sample / "images", map_drawer(CHECKPOINT))["html"].read_text()
    assert "drawn with its similarity map" in drawn and "similarity map" not in plain
    hits = sum(len(h) for ex in result.examples for h in ex.results.values())
    assert hits > 0 and drawn.count("data:image/png;base64,") == plain.count("data:image/png;base64,")
    assert drawn != plain  # the hits' pictures are the overlays

"""Shards: specs, row ranges that tile the job, edges files and their merge (no row lost or doubled)."""

from pathlib import Path

import numpy as np
import pytest

from cxrneo.archive import edgefile
from cxrneo.archive.edgefile import EdgePart
from cxrneo.archive.shards import check_partition, even_rows, parse_rows, parse_shard, triangle_rows
from cxrneo.errors import ConfigError, InputError
from cxrneo.graph import Edges, normalise, similarity_edges, threshold_for_degree


@pytest.mark.parametrize("text", ["2/2", "-1/3", "a/3", "1", "0/0", "1/2/3"])
def test_bad_shard_spec_is_one_line(text: str) -> None:
    with pytest.raises(ConfigError, match="--shard must be i/n"):
        parse_shard(text)


def test_rows_spec() -> None:
    assert parse_rows("10:20", 100) == (10, 20)
    assert parse_rows(":20", 100) == (0, 20) and parse_rows("90:", 100) == (90, 100)
    for bad in ("20:10", "0:101", "5", "x:y", "7:7"):
        with pytest.raises(ConfigError, match="--rows must be a:b"):
            parse_rows(bad, 100)


@pytest.mark.parametrize(("total", "n", "align"), [(25, 3, 8), (10, 4, 1), (3, 5, 1), (112_120, 7, 2048), (0, 2, 1)])
def test_even_rows_tile_the_table_on_aligned_cuts(total: int, n: int, align: int) -> None:
    ranges = [even_rows(total, i, n, align) for i in range(n)]
    assert check_partition(ranges, total, "t") == list(range(n))
    assert all(a % align == 0 for a, _ in ranges)
    sizes = [b - a for a, b in ranges]
    assert max(sizes) - min(sizes) <= align


@pytest.mark.parametrize(("total", "n"), [(112_120, 8), (1000, 3), (5, 4), (1, 2)])
def test_triangle_rows_tile_the_rows_and_balance_pairs(total: int, n: int) -> None:
    ranges = [triangle_rows(total, i, n) for i in range(n)]
    check_partition(ranges, total, "t")
    pairs = [sum(total - 1 - r for r in range(a, b)) for a, b in ranges]
    everything = total * (total - 1) // 2
    assert sum(pairs) == everything
    if total > 100:
        assert max(pairs) - min(pairs) < 0.01 * everything


def test_partition_names_the_missing_and_the_doubled_rows() -> None:
    with pytest.raises(InputError, match="rows 10:20 are in no part"):
        check_partition([(0, 10), (20, 30)], 30, "p")
    with pytest.raises(InputError, match="rows 5:10 are in two parts"):
        check_partition([(0, 10), (5, 30)], 30, "p")
    with pytest.raises(InputError, match="rows 20:30 are in no part"):
        check_partition([(0, 20)], 30, "p")


def _unit(n: int = 600) -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((5, 64))
    return normalise(centres[rng.integers(0, 5, n)] + rng.standard_normal((n, 64)))


def _parts(unit: np.ndarray, t: float, n: int) -> list[EdgePart]:
    out = []
    for i in range(n):
        rows = triangle_rows(len(unit), i, n)
        out.append(EdgePart(similarity_edges(unit, t, rows=rows), t, rows, len(unit), "digest"))
    return out


def test_edge_parts_merge_into_the_unsharded_edges(tmp_path: Path) -> None:
    unit = _unit()
    t = threshold_for_degree(unit, 15)
    parts = _parts(unit, t, 4)
    for k, p in enumerate(parts):
        edgefile.save(tmp_path / f"e{k}.npz", p)
    loaded = [edgefile.load(tmp_path / f"e{k}.npz") for k in (2, 0, 3, 1)]  # any order
    whole = edgefile.merge(loaded, ["e2", "e0", "e3", "e1"])
    want = similarity_edges(unit, t)
    assert whole.whole and whole.rows == (0, 600) and len(want) > 1000
    for f in ("src", "dst", "cosine"):
        assert np.array_equal(getattr(whole.edges, f), getattr(want, f))
    assert np.array_equal(edgefile.edges_for(whole, 600, "digest", "w").src, want.src)
    with pytest.raises(InputError, match="other codes"):
        edgefile.edges_for(whole, 600, "another", "w")
    with pytest.raises(InputError, match="merge"):
        edgefile.edges_for(parts[0], 600, "digest", "e0")


def test_merge_refuses_missing_doubled_and_foreign_parts() -> None:
    unit = _unit()
    t = threshold_for_degree(unit, 15)
    parts = _parts(unit, t, 3)
    with pytest.raises(InputError, match="in no part"):
        edgefile.merge(parts[:2], ["a", "b"])
    with pytest.raises(InputError, match="in two parts"):
        edgefile.merge([*parts, parts[1]], ["a", "b", "c", "d"])
    other_t = EdgePart(parts[2].edges, t + 0.01, parts[2].rows, 600, "digest")
    with pytest.raises(InputError, match="threshold"):
        edgefile.merge([parts[0], parts[1], other_t], ["a", "b", "c"])
    other_codes = EdgePart(parts[2].edges, t, parts[2].rows, 600, "elsewhere")
    with pytest.raises(InputError, match="other codes"):
        edgefile.merge([parts[0], parts[1], other_codes], ["a", "b", "c"])


def test_damaged_or_forged_edges_files_are_refused(tmp_path: Path) -> None:
    unit = _unit(200)
    t = threshold_for_degree(unit, 10)
    e = similarity_edges(unit, t, rows=(0, 100))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable edges file"):
        edgefile.load(tmp_path / "junk.npz")
    with pytest.raises(InputError, match="no such edges file"):
        edgefile.load(tmp_path / "missing.npz")
    forged = {
        "outside": EdgePart(e, t, (50, 100), 200, "d"),
        "doubled": EdgePart(Edges(np.r_[e.src, e.src[:1]], np.r_[e.dst, e.dst[:1]], np.r_[e.cosine, e.cosine[:1]]),
                            t, (0, 100), 200, "d"),
        "below": EdgePart(e, t + 0.2, (0, 100), 200, "d"),
    }
    messages = {"outside": "outside the part's rows", "doubled": "doubled", "below": "below the threshold"}
    for name, part in forged.items():
        edgefile.save(tmp_path / f"{name}.npz", part)
        with pytest.raises(InputError, match=messages[name]):
            edgefile.load(tmp_path / f"{name}.npz")

"""The codes file: round trip and refusal of input later steps cannot use."""

from pathlib import Path

import numpy as np
import pytest

from cxrneo import codes as cf
from cxrneo.errors import InputError
from cxrneo.records import ImageRecord


def _codes(n: int = 4, width: int = cf.CODE_WIDTH) -> tuple[np.ndarray, tuple[ImageRecord, ...]]:
    rng = np.random.default_rng(0)
    arr = rng.normal(size=(n, width)).astype(np.float32)
    recs = tuple(ImageRecord(id=f"img{i}", labels=("Effusion",) if i % 2 else (), patient_id=f"p{i}") for i in range(n))
    return arr, recs


def test_round_trip_keeps_codes_and_records(tmp_path: Path) -> None:
    arr, recs = _codes()
    path = tmp_path / "codes.npz"
    cf.save(path, cf.Codes(arr, recs, checkpoint_sha256="abc", label_set="nih", labels=("Effusion",)))
    back = cf.load(path)
    np.testing.assert_array_equal(back.codes, arr)
    assert back.images == recs
    assert back.checkpoint_sha256 == "abc" and back.label_set == "nih"
    assert back.subset([1, 3]).ids == ["img1", "img3"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a, r: (a[:, :512], r), "N x 1024"),
        (lambda a, r: (np.where(np.arange(len(a))[:, None] == 1, np.nan, a), r), "NaN"),
        (lambda a, r: (a * (np.arange(len(a))[:, None] != 2), r), "all zero"),
        (lambda a, r: (a, r[:-1] + (r[0],)), "duplicate image id"),
        (lambda a, r: (a[:-1], r), "3 code rows but 4"),
    ],
)
def test_bad_codes_are_refused_with_one_line(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    arr, recs = mutate(*_codes())
    with pytest.raises(InputError, match=message) as err:
        cf.Codes(arr, recs)
    assert "\n" not in str(err.value)


def test_a_file_that_is_not_a_codes_file_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(InputError, match="junk.npz"):
        cf.load(junk)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(InputError, match="not a cxrneo codes file"):
        cf.load(other)
    with pytest.raises(InputError, match="no such codes file"):
        cf.load(tmp_path / "missing.npz")

"""The codes file: round trip and refusal of input later steps cannot use."""

from pathlib import Path

import numpy as np
import pytest

from cxrneo.archive import codes as cf
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


def _saved(tmp_path: Path, n: int = 4) -> Path:
    arr, recs = _codes(n)
    path = tmp_path / "good.npz"
    cf.save(path, cf.Codes(arr, recs))
    return path


def _npz_with_meta(tmp_path: Path, meta: object) -> Path:
    import json

    arr, recs = _codes(2)
    path = tmp_path / "meta.npz"
    np.savez(path, codes=arr, ids=np.array([r.id for r in recs]), meta=np.array(json.dumps(meta)))
    return path


@pytest.mark.parametrize("damage", ["empty", "random", "truncated", "crc", "npy", "meta-list",
                                    "meta-images-dict", "zero-rows"])
def test_every_malformed_codes_file_is_one_input_error(tmp_path: Path, damage: str) -> None:
    good = _saved(tmp_path, n=64)
    data = good.read_bytes()
    path = tmp_path / "bad.npz"
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "random":
        path.write_bytes(np.random.default_rng(1).bytes(4096))
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "crc":
        start = data.index(b"codes.npy") + 400  # inside the stored codes array
        path.write_bytes(data[:start] + bytes([data[start] ^ 0xFF]) + data[start + 1 :])
    elif damage == "npy":
        np.save(tmp_path / "x.npy", np.ones((2, 1024), np.float32))
        (tmp_path / "x.npy").rename(path)
    elif damage == "meta-list":
        path = _npz_with_meta(tmp_path, [1, 2])
    elif damage == "meta-images-dict":
        path = _npz_with_meta(tmp_path, {"version": 1, "images": {"id": "img0"}})
    else:
        cf.save(path, cf.Codes(np.zeros((0, 1024), np.float32), ()))
    with pytest.raises(InputError) as err:
        cf.load(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path))


@pytest.mark.parametrize("damage", ["empty", "truncated", "zero-rows"])
def test_cli_refuses_a_malformed_codes_file_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    from typer.testing import CliRunner

    from cxrneo.cli.main import app

    path = tmp_path / "bad.npz"
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        data = _saved(tmp_path, n=64).read_bytes()
        path.write_bytes(data[: len(data) // 3])
    else:
        cf.save(path, cf.Codes(np.zeros((0, 1024), np.float32), ()))
    monkeypatch.setenv("CXRNEO_NEO4J_URI", "bolt://127.0.0.1:1")  # refused before any connection
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", "whatever-pass")
    result = CliRunner().invoke(app, ["ingest", str(path), "--threshold", "0.5"])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith(f"error: {path}")

"""`cxrneo train` and `cxrneo embed` end to end on the example images; skipping and resuming."""

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrneo import labels as lsets
from cxrneo.archive import codes
from cxrneo.cli.main import app
from cxrneo.embed import checkpoint, extract
from cxrneo.errors import InputError
from cxrneo.tables.table import read_table

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "nih-sample"
FIRST = 24  # the first rows of the bundled sample keep these CPU tests short


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 24 example images plus one truncated and one empty file listed in the labels."""
    root = tmp_path_factory.mktemp("nih")
    rows = (EXAMPLES / "Data_Entry_2017.csv").read_text().splitlines()[: FIRST + 1]
    (root / "images").mkdir()
    for row in rows[1:]:
        name = row.split(",")[0]
        shutil.copyfile(EXAMPLES / "images" / name, root / "images" / name)
    first = rows[1].split(",")[0]
    (root / "images" / first).write_bytes((root / "images" / first).read_bytes()[:300])
    (root / "images" / "99999999_000.png").write_bytes(b"")
    rows.append("99999999_000.png,Mass,0,99999999,40,F,PA,1,1,0.1,0.1")
    (root / "Data_Entry_2017.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def trained(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt")
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--format",
            "nih",
            "--labels",
            str(data / "Data_Entry_2017.csv"),
            "--images",
            str(data / "images"),
            "--size",
            "32",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--out",
            str(out),
            "--workers",
            "0",
            "--device",
            "cpu",
            "--val-fraction",
            "0.3",
        ],
    )
    assert result.exit_code == 0, result.output
    return out


def test_cli_train_then_embed_skips_unreadable(trained: Path, data: Path, tmp_path: Path) -> None:
    skipped = (trained / "skipped.csv").read_text()
    assert "99999999_000.png" in skipped and "empty image file" in skipped
    out = tmp_path / "codes.npz"
    result = CliRunner().invoke(
        app,
        [
            "embed",
            str(trained),
            "--labels",
            str(data / "Data_Entry_2017.csv"),
            "--images",
            str(data / "images"),
            "--out",
            str(out),
            "--workers",
            "0",
            "--batch-size",
            "8",
        ],
    )
    assert result.exit_code == 0, result.output
    got = codes.load(out)
    assert got.codes.shape == (23, 1024) and got.codes.dtype == np.float32
    assert got.checkpoint_sha256 == checkpoint.sha256(trained / checkpoint.BEST)
    assert got.label_set == "nih" and len(got.labels) == 13
    assert {r.split for r in got.images} == {"train", "val"}
    assert got.images[0].sex in ("M", "F") and got.images[0].view in ("PA", "AP")
    report = (tmp_path / "codes.skipped.csv").read_text()
    assert "99999999_000.png" in report and got.images[0].id != "00000075_000.png"
    assert "00000075_000.png,/" in report and "unreadable image" in report  # the truncated one
    assert not extract.work_dir(out).exists()
    one = extract.code_of_image(trained, Path(got.images[3].path), device="cpu")
    assert np.allclose(one, got.codes[3], atol=1e-5)


def test_interrupted_embed_resumes_from_shards(
    trained: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = read_table("nih", data / "Data_Entry_2017.csv", data / "images", lsets.get("nih"))
    out = tmp_path / "codes.npz"
    real = extract._codes_of
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(extract, "_codes_of", flaky)
    with pytest.raises(KeyboardInterrupt):
        extract.embed(trained, table, out, batch_size=4, workers=0, device="cpu", shard_size=8)
    assert len(list(extract.work_dir(out).glob("shard-*.npz"))) == 2 and not out.exists()
    calls.clear()
    result = extract.embed(trained, table, out, batch_size=4, workers=0, device="cpu", shard_size=8)
    assert len(calls) == 2  # 25 rows in shards of 8: only the last two were computed again
    assert result.written == 23 and result.skipped == 2
    assert codes.load(out).codes.shape == (23, 1024)


def test_wrong_label_set_is_refused(trained: Path, data: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "embed",
            str(trained),
            "--labels",
            str(data / "Data_Entry_2017.csv"),
            "--label-set",
            "nih-u",
            "--images",
            str(data / "images"),
            "--out",
            str(tmp_path / "c.npz"),
            "--workers",
            "0",
        ],
    )
    assert result.exit_code == 1 and "trained on label set 'nih'" in result.output


def test_best_checkpoint_is_for_inference_only(trained: Path) -> None:
    """best.pt holds weights and metadata; the optimizer state lives only in last.pt (for --resume)."""
    best = checkpoint.load(trained / checkpoint.BEST)
    last = checkpoint.load(trained / checkpoint.LAST)
    resume_only = {"optimizer", "scheduler", "scaler", "flips", "torch_rng"}
    assert not resume_only & set(best) and resume_only <= set(last)
    assert (trained / checkpoint.BEST).stat().st_size < 0.5 * (trained / checkpoint.LAST).stat().st_size
    assert checkpoint.model_from(best) is not None


def _same_codes(a: codes.Codes, b: codes.Codes) -> None:
    assert np.array_equal(a.codes, b.codes)  # bit for bit: the same batches on the same device
    assert a.images == b.images and a.ids == b.ids
    assert (a.checkpoint_sha256, a.label_set, a.labels, a.extra) == (b.checkpoint_sha256, b.label_set, b.labels, b.extra)


def test_sharded_embed_merges_into_the_unsharded_codes(trained: Path, data: Path, tmp_path: Path) -> None:
    """Three shards of 25 rows (two unreadable images, in the first and last shard) merge into
    exactly the unsharded codes file and its skipped list; a missing or doubled part is refused."""
    from cxrneo.cli import jobs

    table = read_table("nih", data / "Data_Entry_2017.csv", data / "images", lsets.get("nih"))
    whole = tmp_path / "whole.npz"
    extract.embed(trained, table, whole, batch_size=4, workers=0, device="cpu", shard_size=8)
    parts = [tmp_path / f"part{i}.npz" for i in range(3)]
    for i, p in enumerate(parts):
        r = extract.embed(trained, table, p, batch_size=4, workers=0, device="cpu", shard_size=8, shard=(i, 3))
        assert r.written == len(codes.load(p, part_ok=True))
    with pytest.raises(InputError, match="part 0/3 of a sharded"):
        codes.load(parts[0])  # ingest, evaluate and edges refuse a part
    merged = tmp_path / "merged.npz"
    report = jobs.merge_files([parts[2], parts[0], parts[1]], merged)
    assert (report.kind, report.parts, report.rows, report.written) == ("codes", 3, 25, 23)
    _same_codes(codes.load(merged), codes.load(whole))
    assert report.skipped_report is not None
    assert report.skipped_report.read_text() == (tmp_path / "whole.skipped.csv").read_text()
    with pytest.raises(InputError, match=r"shards \[0, 2\] given"):
        jobs.merge_files([parts[0], parts[2]], tmp_path / "bad.npz")
    with pytest.raises(InputError, match=r"shards \[0, 1, 1, 2\] given"):
        jobs.merge_files([parts[0], parts[1], parts[1], parts[2]], tmp_path / "bad.npz")
    with pytest.raises(InputError, match="not a part"):
        jobs.merge_files([parts[0], whole], tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()


def test_cli_embed_shards_and_merge(trained: Path, data: Path, tmp_path: Path) -> None:
    """Through the CLI with the default block size: shard 0 of 2 is empty (25 rows fit one block)."""
    common = ["--labels", str(data / "Data_Entry_2017.csv"), "--images", str(data / "images"),
              "--workers", "0", "--batch-size", "8", "--device", "cpu"]
    run = CliRunner().invoke
    assert run(app, ["embed", str(trained), *common, "--out", str(tmp_path / "whole.npz")]).exit_code == 0
    for i in (0, 1):
        r = run(app, ["embed", str(trained), *common, "--shard", f"{i}/2", "--out", str(tmp_path / f"p{i}.npz")])
        assert r.exit_code == 0 and "combine all parts with `cxrneo merge`" in r.output, r.output
    r = run(app, ["merge", str(tmp_path / "p0.npz"), str(tmp_path / "p1.npz"), "--out", str(tmp_path / "m.npz")])
    assert r.exit_code == 0 and "2 parts of 25 rows merged: 23 codes" in r.output, r.output
    _same_codes(codes.load(tmp_path / "m.npz"), codes.load(tmp_path / "whole.npz"))
    bad = run(app, ["embed", str(trained), *common, "--shard", "2/2", "--out", str(tmp_path / "x.npz")])
    assert bad.exit_code == 1 and "--shard must be i/n" in bad.output
    one = run(app, ["merge", str(tmp_path / "p1.npz"), "--out", str(tmp_path / "x.npz")])
    assert one.exit_code == 1 and "shards [1] given" in one.output

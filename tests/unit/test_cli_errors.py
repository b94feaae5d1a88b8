"""CLI error paths without a database: one `error:` line and exit 1, 130 on Ctrl-C, the traceback
with CXRNEO_DEBUG=1, and nothing written."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxrneo.cli.main import app
from cxrneo.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "nih-sample"
TABLE = SAMPLE / "Data_Entry_2017.csv"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CXRNEO_NEO4J_URI", "bolt://127.0.0.1:1")  # nothing here may connect
    monkeypatch.setenv("CXRNEO_NEO4J_PASSWORD", "not-used-here")
    monkeypatch.setenv("CXRNEO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CXRNEO_DEBUG", raising=False)


def _one_error_line(result, starts: str) -> str:  # type: ignore[no-untyped-def]
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert starts in lines[0]
    return lines[0]


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n", "0"], "--n must be positive, got 0"),
        (["--noise", "-1"], "noise must be >= 0, got -1"),
        (["--labels-missing"], "no such label table"),
        (["--bad-table"], "Patient Gender"),
    ],
)
def test_synth_refuses_bad_arguments_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out" / "codes.npz"
    table = TABLE
    if args == ["--labels-missing"]:
        table, args = tmp_path / "nope.csv", []
    elif args == ["--bad-table"]:
        table = tmp_path / "t.csv"
        table.write_text("Image Index,Finding Labels,Patient ID,Patient Age,View Position\na.png,Mass,1,50,PA\n")
        args = []
    result = CliRunner().invoke(app, ["synth", "--labels", str(table), "--out", str(out), *args])
    _one_error_line(result, message)
    assert _files(tmp_path / "out") == []


def _narrow_codes(path: Path, width: int) -> Path:
    """A codes file whose rows are `width` wide (not 1024)."""
    import json

    import numpy as np

    meta = {"version": 1, "checkpoint_sha256": "", "label_set": "nih", "labels": [],
            "images": [{"id": f"i{k}"} for k in range(20)], "extra": {}}
    np.savez(path, codes=np.ones((20, width), np.float32), ids=np.array([f"i{k}" for k in range(20)]),
             meta=np.array(json.dumps(meta)))
    return path


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "no such codes file"),
        ("narrow", "codes must be N x 1024, got shape (20, 512)"),
        ("noise", "--noise does not apply with --like"),
        ("share", "--patient-share must be in [0, 1), got 1.5"),
    ],
)
def test_synth_like_refuses_bad_arguments_in_one_line(tmp_path: Path, case: str, message: str) -> None:
    out = tmp_path / "out" / "codes.npz"
    like = _narrow_codes(tmp_path / "narrow.npz", 512 if case == "narrow" else 1024)
    if case == "missing":
        like = tmp_path / "nope.npz"
    extra = {"noise": ["--noise", "2"], "share": ["--patient-share", "1.5"]}.get(case, [])
    result = CliRunner().invoke(app, ["synth", "--labels", str(TABLE), "--out", str(out), "--like", str(like), *extra])
    _one_error_line(result, message)
    assert _files(tmp_path / "out") == []


def test_synth_like_writes_codes_like_a_codes_file(tmp_path: Path) -> None:
    """--like a codes file of the sample's ids without findings: the findings come from the table."""
    import numpy as np

    from cxrneo.archive.codes import Codes, load, save
    from cxrneo.archive.synthetic import read_nih_table

    rows = read_nih_table(TABLE)[:200]
    rng = np.random.default_rng(0)
    source = Codes(codes=(rng.standard_normal((200, 1024)) + 5.0).astype(np.float32),
                   images=tuple(r.model_copy(update={"labels": ()}) for r in rows))
    save(tmp_path / "like.npz", source)
    out = tmp_path / "out" / "codes.npz"
    result = CliRunner().invoke(app, ["synth", "--labels", str(TABLE), "--out", str(out), "--n", "50",
                                      "--like", str(tmp_path / "like.npz")])
    assert result.exit_code == 0 and "50 synthetic codes written" in result.output, result.output
    made = load(out)
    assert made.ids == [r.id for r in rows[:50]] and made.images == tuple(rows[:50])
    assert "finding:Infiltration" in made.extra["synthetic"]["shifts"]


def test_synth_writes_codes_when_the_arguments_are_good(tmp_path: Path) -> None:
    """The same call with good arguments does write: the refusals above are not a broken command."""
    out = tmp_path / "out" / "codes.npz"
    result = CliRunner().invoke(app, ["synth", "--labels", str(TABLE), "--out", str(out), "--n", "5"])
    assert result.exit_code == 0 and "5 synthetic codes written" in result.output
    assert _files(tmp_path / "out") == [out]


def test_ctrl_c_exits_130_with_nothing_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cxrneo.archive.synthetic

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cxrneo.archive.synthetic, "synthesise", interrupted)  # Ctrl-C while codes are made
    out = tmp_path / "out" / "codes.npz"
    result = CliRunner().invoke(app, ["synth", "--labels", str(TABLE), "--out", str(out)])
    assert result.exit_code == 130
    assert [ln for ln in result.output.splitlines() if ln.strip()] == ["interrupted"]
    assert _files(tmp_path / "out") == []


def test_debug_raises_the_error_instead_of_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["synth", "--labels", str(TABLE), "--out", str(tmp_path / "c.npz"), "--n", "0"]
    monkeypatch.setenv("CXRNEO_DEBUG", "1")
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, ConfigError) and "error:" not in result.output
    assert not (tmp_path / "c.npz").exists()


def test_debug_prints_the_traceback_on_stderr(tmp_path: Path) -> None:
    """In a real process: one line without CXRNEO_DEBUG, a traceback naming the error with it."""
    cmd = [sys.executable, "-c", "from cxrneo.cli.main import app; app()", "synth", "--labels", str(TABLE),
           "--out", str(tmp_path / "c.npz"), "--n", "0"]
    env = {k: v for k, v in os.environ.items() if k != "CXRNEO_DEBUG"}
    plain = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 1 and plain.stdout == ""
    assert plain.stderr.strip().splitlines() == ["error: --n must be positive, got 0"]
    debug = subprocess.run(cmd, env={**env, "CXRNEO_DEBUG": "1"}, capture_output=True, text=True, timeout=120)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert "cxrneo.errors.ConfigError: --n must be positive, got 0" in debug.stderr
    assert not (tmp_path / "c.npz").exists()


def test_train_resume_with_no_run_to_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--labels", str(TABLE), "--images", str(SAMPLE / "images"),
                                      "--out", str(out), "--resume", "--device", "cpu", "--epochs", "1"])
    _one_error_line(result, f"{out / 'last.pt'}: nothing to resume")
    assert _files(out) == []


def test_train_resume_of_a_run_with_other_settings_is_refused(tmp_path: Path) -> None:
    from cxrneo.embed import checkpoint
    from cxrneo.embed.train import make_config

    out = tmp_path / "run"
    out.mkdir()
    other = make_config(format="nih", labels=TABLE, images=SAMPLE / "images", label_set="nih", size=64, out=out)
    checkpoint.save(out / "last.pt", {"config": other.model_dump(mode="json"), "epoch": 0})
    before = (out / "last.pt").read_bytes()
    result = CliRunner().invoke(app, ["train", "--labels", str(TABLE), "--images", str(SAMPLE / "images"),
                                      "--out", str(out), "--resume", "--device", "cpu", "--size", "224"])
    _one_error_line(result, "--resume: size differs from the interrupted run (64)")
    assert _files(out) == [out / "last.pt"] and (out / "last.pt").read_bytes() == before


def test_db_dump_and_load_refuse_bad_files_in_one_line(tmp_path: Path) -> None:
    existing = tmp_path / "old.dump"
    existing.write_bytes(b"x")
    for args, words in ((["db", "load", str(tmp_path / "missing.dump")], "no such dump file"),
                        (["db", "load", str(existing)], "old.dump.json: missing"),
                        (["db", "dump", str(existing)], "never overwritten")):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1 and result.output.startswith("error: ") and words in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1

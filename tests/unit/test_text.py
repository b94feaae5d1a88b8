"""`cxrneo --version`, counted nouns, and command output that stays whole when piped."""

import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxrneo import __version__
from cxrneo.cli.main import app
from cxrneo.cli.text import console, plural

REPO = Path(__file__).resolve().parents[2]


def test_version_matches_the_package_metadata() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"cxrneo {__version__}"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["version"] == __version__


def test_plurals() -> None:
    assert [plural(n, "epoch") for n in (0, 1, 2)] == ["0 epochs", "1 epoch", "2 epochs"]
    assert plural(1, "unreadable image") == "1 unreadable image"
    assert plural(12_000, "query", "queries") == "12,000 queries"


def test_piped_output_keeps_sentences_whole(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    sentence = "a sentence that is much longer than eighty columns " * 4 + "/a/long/path/to/codes.skipped.csv"
    console().print(sentence)
    assert capsys.readouterr().out == sentence + "\n"
    monkeypatch.setenv("COLUMNS", "40")  # an explicit width is honoured
    console().print(sentence)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 1 and all(len(line) <= 40 for line in lines)
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)

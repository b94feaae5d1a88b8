"""Label-set vectors for scoring: merged -U sets, No Finding column, which sets fit the data."""

import doctest
import subprocess
import sys

import pytest

from cxrneo import labels
from cxrneo.errors import ConfigError


def test_doctests() -> None:
    result = doctest.testmod(labels)
    assert result.attempted > 0 and result.failed == 0  # the examples exist and hold


def test_scoring_and_tables_load_without_the_ml_package() -> None:
    pure = ["cxrneo.labels", "cxrneo.evaluation.metrics", "cxrneo.evaluation.evaluate", "cxrneo.evaluation.report",
            "cxrneo.archive.synthetic", "cxrneo.tables.table"]
    probe = f"import sys\nfor m in {pure!r}: __import__(m)\n" + \
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith('cxrneo.embed')))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_set_sizes_follow_table_3() -> None:
    sizes = {name: len(labels.get(name).labels) for name in labels.LABEL_SETS}
    assert sizes == {"nih": 13, "nih-u": 9, "chexpert": 9, "chexpert-u": 5}
    assert "Hernia" not in labels.get("nih").labels


def test_merged_labels_are_unions() -> None:
    ls = labels.get("chexpert-u")
    m = labels.matrix([["Cardiomegaly"], ["Enlarged Cardiomediastinum", "Edema"], ["Support Devices"]], ls)
    cols = dict(zip(ls.labels, m.T, strict=True))
    assert cols["Enlarged Heart"].tolist() == [True, True, False]
    assert cols["Opacities"].tolist() == [False, True, False]
    assert m.sum() == 3


def test_spelling_insensitive_and_no_finding_column() -> None:
    ls = labels.get("nih")
    m = labels.matrix([["pleural thickening"], []], ls, no_finding=True)
    names = labels.column_names(ls, no_finding=True)
    assert names[-1] == "No Finding" and m.shape == (2, 14)
    assert m[0, names.index("Pleural_Thickening")] and not m[0, -1]
    assert m[1].tolist() == [False] * 13 + [True]


def test_scorable_and_unknown() -> None:
    assert labels.scorable("chexpert", []) == ["chexpert", "chexpert-u"]
    assert labels.scorable("", [["Hernia"]]) == ["nih", "nih-u"]
    assert labels.scorable("", [[]]) == []
    with pytest.raises(ConfigError):
        labels.get("mimic")

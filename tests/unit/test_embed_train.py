"""Training on phantoms learns; checkpoints carry config, split and metrics; runs resume."""

from pathlib import Path
from typing import Any

import pytest

from cxrneo.embed import checkpoint, phantom, splits
from cxrneo.embed.train import make_config, train
from cxrneo.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return phantom.write_dataset(tmp_path_factory.mktemp("phantoms"), n=160, size=64, seed=0)


def _config(csv: Path, out: Path, epochs: int, **extra: Any) -> Any:
    values = dict(
        format="csv",
        labels=csv,
        images=csv.parent,
        label_set="nih",
        size=64,
        epochs=epochs,
        batch_size=16,
        lr=3e-3,
        out=out,
        arch="tiny",
        workers=0,
        val_fraction=0.3,
        seed=0,
    )
    return make_config(**{**values, **extra})


def test_small_model_learns_phantoms(phantoms: Path, tmp_path: Path) -> None:
    result = train(_config(phantoms, tmp_path, epochs=8))
    assert result["mean_auc"] > 0.9, result
    # four findings are drawn, the other nine labels have no positive: undefined, not zero
    defined = [v for v in result["auc"].values() if v == v]
    assert len(defined) == 4
    doc = checkpoint.load(tmp_path)
    assert doc["label_set"] == "nih" and len(doc["labels"]) == 13
    assert doc["config"]["size"] == 64 and doc["config"]["arch"] == "tiny"
    assert doc["metrics"]["mean_auc"] == result["mean_auc"]
    saved = splits.load(tmp_path / checkpoint.SPLIT)
    assert sorted(doc["split"]["val"]) == sorted(i for i, s in saved.items() if s == "val")
    assert "| mean |" in (tmp_path / "auc.md").read_text()


def test_interrupted_run_resumes(phantoms: Path, tmp_path: Path) -> None:
    first = train(_config(phantoms, tmp_path, epochs=1))
    assert len(first["history"]) == 1
    resumed = train(_config(phantoms, tmp_path, epochs=2), resume=True)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert checkpoint.load(tmp_path / checkpoint.LAST)["epoch"] == 1
    with pytest.raises(ConfigError, match="size differs"):
        train(make_config(**{**_config(phantoms, tmp_path, 3).model_dump(), "size": 32}), resume=True)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(_config(phantoms, tmp_path / "empty", epochs=1), resume=True)


def test_bad_option_is_one_config_error(phantoms: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--size"):
        _config(phantoms, tmp_path, epochs=1, size=4)

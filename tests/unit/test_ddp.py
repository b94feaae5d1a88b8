"""`cxrneo train` under torchrun: two CPU processes on gloo train one model (DDP) and rank 0 writes it."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cxrneo.embed import checkpoint, distributed, phantom
from cxrneo.embed.distributed import World
from cxrneo.errors import ConfigError


@pytest.mark.parametrize(("n", "size"), [(160, 2), (161, 2), (100, 3), (7, 4)])
def test_epoch_rows_deal_one_shuffle_evenly_and_disjointly(n: int, size: int) -> None:
    shares = [distributed.epoch_rows(n, 5, World(r, size, r)) for r in range(size)]
    assert len({len(s) for s in shares}) == 1  # same number of batches on every rank
    every = np.concatenate(shares)
    assert len(set(every.tolist())) == len(every) == n - n % size
    assert not np.array_equal(distributed.epoch_rows(n, 6, World(0, size, 0)), shares[0])  # a new shuffle per epoch


def test_world_comes_from_torchrun_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert distributed.from_env() == World(0, 1, 0)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.from_env() == World(3, 4, 1)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="bad torchrun environment"):
        distributed.from_env()


@pytest.mark.slow
def test_cli_train_under_torchrun_on_two_gloo_processes(tmp_path: Path) -> None:
    csv = phantom.write_dataset(tmp_path / "phantoms", n=160, size=64, seed=0)
    out = tmp_path / "ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "cxrneo", "train", "--format", "csv", "--labels", str(csv), "--images", str(csv.parent),
           "--size", "64", "--epochs", "6", "--batch-size", "8", "--lr", "3e-3", "--arch", "tiny",
           "--workers", "0", "--val-fraction", "0.3", "--device", "cpu", "--out", str(out),
           "--schedule", "plateau", "--no-augment"]  # the paper's recipe: the phantoms' AUC bound was set on it
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "2 processes (cpu, DDP)" in r.stdout  # printed once, by rank 0
    assert r.stdout.count("epoch 6: train loss") == 1
    best = checkpoint.load(out / checkpoint.BEST)
    history = best["metrics"]["history"]
    assert [h["processes"] for h in history] == [2] * len(history) and len(history) >= 1
    # the weights stayed equal on both ranks every epoch (checked by the run), and the model learned
    assert best["metrics"]["mean_auc"] > 0.85
    assert checkpoint.load(out / checkpoint.LAST)["epoch"] == 5

"""CUDA paths: codes on the GPU equal the CPU's within tolerance, and training steps run on CUDA.

Run on a machine with a CUDA device: `pytest -m gpu`. Elsewhere every test here is skipped
with the reason "no CUDA device".
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from cxrneo import labels as lsets
from cxrneo.embed import checkpoint, phantom, runtime
from cxrneo.embed.encoder import Encoder
from cxrneo.embed.model import CxrNet
from cxrneo.embed.train import make_config, train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]
REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "nih-sample" / "images"


@pytest.fixture
def exact_fp32():  # noqa: ANN201 - TF32 off, so CUDA fp32 can be compared tightly with the CPU
    conv, mm = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, mm


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_model_code_on_cuda_equals_cpu(exact_fp32: None) -> None:
    torch.manual_seed(0)
    net = CxrNet(13).eval()
    x = torch.randn(4, 3, 224, 224)
    with torch.inference_mode():
        cpu = net.code(x).numpy()
        gpu = net.cuda().code(x.cuda()).cpu().numpy()
        dev = torch.device("cuda")
        with runtime.autocast(dev):  # the mixed precision that `embed` and training use on CUDA
            mixed = net.code(x.cuda()).float().cpu().numpy()
    assert cpu.shape == gpu.shape == (4, 1024)
    assert np.allclose(gpu, cpu, rtol=1e-3, atol=1e-4), np.abs(gpu - cpu).max()
    assert _cosines(mixed, cpu).min() > 0.999


def test_encoder_on_cuda_gives_the_cpu_codes_of_real_images(tmp_path: Path) -> None:
    """The image-query path end to end (file -> grey -> device -> autocast -> code) on both devices."""
    torch.manual_seed(0)
    lset = lsets.get("nih")
    path = tmp_path / "best.pt"
    checkpoint.save(path, {"arch": "densenet121", "config": {"size": 224}, "label_set": lset.name,
                           "labels": list(lset.labels), "split": {"train": [], "val": []}, "metrics": {},
                           "model": CxrNet(len(lset.labels)).state_dict()})
    files = sorted(SAMPLE.glob("*.png"))[:4]
    assert len(files) == 4  # the bundled NIH sample
    cpu, gpu = Encoder(path, "cpu"), Encoder(path, "cuda")
    assert gpu.device.type == "cuda" and next(gpu.model.parameters()).is_cuda
    a = np.stack([cpu.code(f) for f in files])
    b = np.stack([gpu.code(f) for f in files])
    assert _cosines(a, b).min() > 0.999
    assert np.allclose(np.linalg.norm(b, axis=1), np.linalg.norm(a, axis=1), rtol=1e-2)


def test_training_runs_on_cuda_and_keeps_a_checkpoint(tmp_path: Path) -> None:
    data = phantom.write_dataset(tmp_path / "phantoms", n=96, size=64, seed=0)
    cfg = make_config(format="csv", labels=data, images=data.parent, label_set="nih", size=64, epochs=2,
                      batch_size=16, lr=3e-3, out=tmp_path / "run", arch="tiny", workers=0,
                      val_fraction=0.3, seed=0, device="cuda")
    result = train(cfg)
    losses = [h["train_loss"] for h in result["history"]]
    assert len(losses) == 2 and all(np.isfinite(v) and v > 0 for v in losses)
    doc = checkpoint.load(tmp_path / "run")
    assert doc["config"]["device"] == "cuda"
    weights = doc["model"]
    fresh = CxrNet(13, arch="tiny").state_dict()
    assert any(not torch.equal(weights[k], fresh[k]) for k in fresh if fresh[k].is_floating_point())


"""DenseNet-121: the code is the head's 1024-d input; local weights load, a foreign head is skipped."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from cxrneo.embed.model import CxrNet, load_weights
from cxrneo.embed.train import loss_weights, weighted_bce
from cxrneo.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def net() -> CxrNet:
    torch.manual_seed(0)
    return CxrNet(13).eval()


def test_code_is_the_head_input_and_1024_wide(net: CxrNet) -> None:
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        code = net.code(x)
        logits = net(x)
        assert code.shape == (2, 1024) and net.code_width == 1024
        assert torch.allclose(net.classifier(code), logits)
        # exactly torchvision's DenseNet-121 pooling path: features -> ReLU -> global average pool
        ref = torchvision.models.densenet121(weights=None, num_classes=13).eval()
        ref.load_state_dict(net.state_dict())
        assert torch.allclose(ref(x), logits, atol=1e-5)
        feats = net.features(x)
        assert torch.allclose(code, torch.relu(feats).mean(dim=(2, 3)), atol=1e-6)


def test_imagenet_style_weights_load_and_foreign_head_is_skipped(net: CxrNet, tmp_path: Path) -> None:
    src = torchvision.models.densenet121(weights=None)  # 1000-class head, like ImageNet weights
    old_style = {}
    for k, v in src.state_dict().items():  # the old torchvision file names: norm.1, conv.2, ...
        k = k.replace("norm1", "norm.1").replace("conv2", "conv.2")
        old_style["module." + k] = v
    path = tmp_path / "imagenet.pth"
    torch.save(old_style, path)
    model = CxrNet(5)
    head = model.classifier.weight.clone()
    message = load_weights(model, path)
    assert "classifier kept fresh" in message
    assert torch.equal(model.features.conv0.weight, src.features.conv0.weight)
    assert torch.equal(
        model.features.denseblock3.denselayer7.norm1.running_var,
        src.features.denseblock3.denselayer7.norm1.running_var,
    )
    assert torch.equal(model.classifier.weight, head)
    torch.save({"features.conv0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(InputError, match="feature weights missing"):
        load_weights(model, tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(InputError, match="junk.pth"):
        load_weights(model, tmp_path / "junk.pth")


def test_eq1_weights_and_masked_loss() -> None:
    targets = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    known = torch.tensor([[True, True], [True, False], [True, True], [True, True]])
    w_pos, w_neg = loss_weights(targets.numpy(), known.numpy())
    assert np.allclose(w_pos, [0.75, 2 / 3]) and np.allclose(w_neg, [0.25, 1 / 3])
    logits = torch.tensor([[2.0, -1.0], [0.5, 9.0], [-1.0, 0.3], [0.0, 0.0]])
    got = weighted_bce(logits, targets, known.float(), torch.tensor(w_pos), torch.tensor(w_neg))
    p = torch.sigmoid(logits)
    want = -(torch.tensor(w_pos) * targets * p.log() + torch.tensor(w_neg) * (1 - targets) * (1 - p).log())
    assert torch.isclose(got, (want * known).sum(dim=1).mean())

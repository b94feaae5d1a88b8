"""Chest X-ray augmentation: small, per-image, seeded, never upside down."""

import torch

from cxrneo.embed.augment import augment


def _batch() -> torch.Tensor:
    x = torch.zeros(6, 1, 64, 64)
    x[:, :, 8:20, 20:44] = 1.0  # a bright block near the top: the apex side
    return x.half()


def test_augment_keeps_shape_and_range_and_changes_each_image_its_own_way() -> None:
    x = _batch()
    y = augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    diffs = [(y[i] - x[i].float()).abs().mean().item() for i in range(6)]
    assert all(d > 0 for d in diffs) and len({round(d, 6) for d in diffs}) == 6
    assert torch.equal(y, augment(x, torch.Generator().manual_seed(0)))  # the generator decides everything


def test_augment_is_small_and_keeps_the_top_at_the_top() -> None:
    x = _batch()
    for seed in range(20):
        y = augment(x, torch.Generator().manual_seed(seed))
        signal = (y - y.amin(dim=(2, 3), keepdim=True))[:, 0].sum(dim=2)  # the block's brightness per row
        centre = (signal * torch.arange(64.0)).sum(dim=1) / signal.sum(dim=1)
        assert bool((centre - 13.5).abs().max() < 8)  # the block stays near rows 8-20: no flip, no large turn
        assert float((y - x.float()).abs().mean()) < 0.2

"""Training-time augmentation for chest X-rays: small geometric and exposure changes, nothing anatomical.

Every image of a batch gets its own rotation (within ±7°), scale (0.9-1.1) and shift (within 6% of
the side), then its own contrast (0.85-1.15 around its mean) and brightness (±0.08). No vertical
flips and no large crops: a chest radiograph has one way up and the whole thorax matters.
"""

import math

import torch
import torch.nn.functional as F  # noqa: N812 - torch's own convention

ROTATION_DEG, SCALE, SHIFT, CONTRAST, BRIGHTNESS = 7.0, 0.1, 0.06, 0.15, 0.08


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """N x 1 x H x W grey in [0, 1] -> the same shape, float32, each image changed by its own draw."""
    n = x.shape[0]
    x = x.float()

    def uniform(half_width: float, centre: float = 0.0) -> torch.Tensor:
        return centre + half_width * (2 * torch.rand(n, generator=gen) - 1)

    angle = uniform(math.radians(ROTATION_DEG))
    scale = uniform(SCALE, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, uniform(SHIFT)], 1), torch.stack([sin, cos, uniform(SHIFT)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * uniform(CONTRAST, 1.0).view(-1, 1, 1, 1) + mean + uniform(BRIGHTNESS).view(-1, 1, 1, 1)
    return x.clamp_(0.0, 1.0)

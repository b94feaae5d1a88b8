"""Similarity maps: where two X-rays are alike, as per-cell contributions that sum exactly to their
cosine; pure (numpy).

A code is the global average pool of the last feature map after its ReLU: c = (1/n) sum_i f_i over
the n cells of the grid (7 x 7 at 224 px, 1024 channels). So

    cos(a, b) = c_a . c_b / (|c_a| |c_b|) = sum_i  f_i^a . c_b / (n_a |c_a| |c_b|)

and the map of image a, M_a(i) = f_i^a . c_b / (n_a |c_a| |c_b|), sums over its cells to the
cosine exactly; likewise M_b(j) = f_j^b . c_a / (n_b |c_a| |c_b|) for image b (Stylianou, Souvenir
and Pless, "Visualizing deep similarity networks", WACV 2019). Every f_i is non-negative (it follows
a ReLU) and so is every code, so no cell ever counts against the similarity; an image against
itself gives M(i) = f_i . c / (n |c|^2) >= 0, summing to 1.
"""

from dataclasses import dataclass

import numpy as np

from cxrneo.errors import InputError


@dataclass(frozen=True)
class SimilarityMaps:
    """The cosine of two codes and each image's map (grid rows x columns), each summing to it."""

    cosine: float
    query: np.ndarray
    hit: np.ndarray


def similarity_maps(cells_a: np.ndarray, cells_b: np.ndarray) -> SimilarityMaps:
    """The maps of two feature maps (channels x rows x columns each, after the ReLU)."""
    fa, fb = np.asarray(cells_a, np.float64), np.asarray(cells_b, np.float64)
    if fa.ndim != 3 or fb.ndim != 3 or fa.shape[0] != fb.shape[0]:
        raise InputError(f"feature maps of shapes {fa.shape} and {fb.shape} cannot be compared")
    ca, cb = fa.mean(axis=(1, 2)), fb.mean(axis=(1, 2))
    norm = float(np.linalg.norm(ca) * np.linalg.norm(cb))
    if norm == 0.0:
        raise InputError("an image has an all-zero code: no similarity to explain")
    na, nb = fa.shape[1] * fa.shape[2], fb.shape[1] * fb.shape[2]
    return SimilarityMaps(
        cosine=float(ca @ cb / norm),
        query=np.einsum("chw,c->hw", fa, cb) / (na * norm),
        hit=np.einsum("chw,c->hw", fb, ca) / (nb * norm),
    )

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

A region of image a (cxrneo.subregion) has the code r = sum_i w_i f_i^a / W, W = sum_i w_i, with w_i
the share of cell i the box covers; the same identity holds with M_a(i) = w_i f_i^a . c_b /
(W |r| |c_b|), zero outside the box, and M_b(j) = f_j^b . r / (n_b |r| |c_b|).
"""

from dataclasses import dataclass

import numpy as np

from cxrneo.errors import InputError
from cxrneo.subregion import pooled


@dataclass(frozen=True)
class SimilarityMaps:
    """The cosine of two codes and each image's map (grid rows x columns), each summing to it."""

    cosine: float
    query: np.ndarray
    hit: np.ndarray


def similarity_maps(cells_a: np.ndarray, cells_b: np.ndarray, weights_a: np.ndarray | None = None) -> SimilarityMaps:
    """The maps of two feature maps (channels x rows x columns each, after the ReLU); with `weights_a`
    (rows x columns of a, each 0 to 1: cxrneo.subregion.cell_weights), of a's region against b."""
    fa, fb = np.asarray(cells_a, np.float64), np.asarray(cells_b, np.float64)
    if fa.ndim != 3 or fb.ndim != 3 or fa.shape[0] != fb.shape[0]:
        raise InputError(f"feature maps of shapes {fa.shape} and {fb.shape} cannot be compared")
    if weights_a is None:  # the whole image: the same arithmetic on both sides (an image against itself is symmetric)
        wa, total = np.ones(fa.shape[1:]), float(fa.shape[1] * fa.shape[2])
        ca = fa.mean(axis=(1, 2))
    else:
        wa = np.asarray(weights_a, np.float64)
        if wa.shape != fa.shape[1:] or not (wa >= 0).all() or wa.sum() <= 0:
            raise InputError(f"region weights of shape {wa.shape} do not fit a grid of {fa.shape[1:]}")
        total = float(wa.sum())
        ca = pooled(fa, wa)
    cb = fb.mean(axis=(1, 2))
    norm = float(np.linalg.norm(ca) * np.linalg.norm(cb))
    if norm == 0.0:
        raise InputError("an image has an all-zero code: no similarity to explain")
    nb = fb.shape[1] * fb.shape[2]
    return SimilarityMaps(
        cosine=float(ca @ cb / norm),
        query=wa * np.einsum("chw,c->hw", fa, cb) / (total * norm),
        hit=np.einsum("chw,c->hw", fb, ca) / (nb * norm),
    )

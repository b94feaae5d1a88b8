"""The registry: each retrieval method and the object that runs it (see `scene.Strategy`); pure."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cxrneo.retrieval.cosines import Cosines
from cxrneo.retrieval.method import Method
from cxrneo.retrieval.region import Mode, grow
from cxrneo.retrieval.scene import Growth, Scene, Strategy

if TYPE_CHECKING:
    from cxrneo.retrieval.diffusion import DiffusionParams


def ranked(rows: np.ndarray, fallback: bool) -> Growth:
    """Rows in the given order as a Growth without gains."""
    out = Growth()
    for row in rows.tolist():
        out.add(row, None, fallback=fallback)
    return out


class Knn:
    """Exact cosine kNN, the baseline."""

    def run(self, scene: Scene, cos: Cosines, blocked: np.ndarray, k: int, strict: bool) -> Growth:
        return ranked(cos.top(k, scene.ids.__getitem__, blocked), fallback=False)


@dataclass(frozen=True)
class Region:
    """Algorithm 2 (mode "community") or its hybrid (step 2a's communities, members by cosine)."""

    mode: Mode

    def run(self, scene: Scene, cos: Cosines, blocked: np.ndarray, k: int, strict: bool) -> Growth:
        nq = cos.at_least(scene.threshold)
        if nq.size == 0:  # d_q = 0: no community to join, plain cosine ranking
            return ranked(cos.top(k, scene.ids.__getitem__, blocked), fallback=True)
        excluded = np.zeros(len(scene.ids), bool)
        excluded[blocked] = True
        growth = grow(scene.graph, cos, nq, excluded, k, strict=strict, mode=self.mode)
        if not strict and len(growth.rows) < k:  # no unused community touches R any more
            taken = np.concatenate([blocked, np.array(growth.rows, np.int64)])
            for row in cos.top(k - len(growth.rows), scene.ids.__getitem__, taken).tolist():
                growth.add(row, None, fallback=True)
        return growth


@dataclass(frozen=True)
class Diffusion:
    """Personalized PageRank from N(q) (retrieval/diffusion.py; its defaults unless `params`)."""

    params: "DiffusionParams | None" = None

    def run(self, scene: Scene, cos: Cosines, blocked: np.ndarray, k: int, strict: bool) -> Growth:
        from cxrneo.retrieval.diffusion import DEFAULT, diffuse  # scipy only when asked for

        return diffuse(scene, cos, blocked, k, strict, self.params or DEFAULT)


STRATEGIES: dict[Method, Strategy] = {
    Method.COMMUNITY: Region("community"),
    Method.HYBRID: Region("hybrid"),
    Method.KNN: Knn(),
    Method.DIFFUSION: Diffusion(),
}

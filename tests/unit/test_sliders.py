"""Finding sliders with the shipped checkpoint on real sample images: a positive Effusion step raises
the share of Effusion among the hits, over many queries, by more than its bootstrap interval's width."""

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cxrneo.errors import InputError
from cxrneo.service.request import MAX_STEP, QueryOptions, concepts_of, parse, steer

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "nih-sample"
CHECKPOINT = ROOT / "examples" / "checkpoint" / "best.pt"
N = 240  # real images embedded (about half a minute on two CPU cores)


def test_steer_moves_along_the_unit_direction_and_refuses_unknown_findings() -> None:
    q = np.array([3.0, 0.0, 0.0], np.float32)
    got = steer(q, {"A": np.array([0.0, 2.0, 0.0])}, {"A": 0.5})
    assert np.allclose(got, [1.0, 0.5, 0.0])
    with pytest.raises(InputError, match="unknown finding 'B' for a slider"):
        steer(q, {"A": np.ones(3)}, {"B": 0.1})
    with pytest.raises(InputError, match="a slider moves by"):
        parse(QueryOptions, {"concepts": {"A": MAX_STEP + 0.5}})
    assert concepts_of(["Effusion=0.5", "Pleural_Thickening=-1"]) == {"Effusion": 0.5, "Pleural_Thickening": -1.0}
    with pytest.raises(InputError, match="--concept takes NAME=STEP"):
        concepts_of(["Effusion"])


@pytest.mark.slow
def test_a_positive_effusion_step_raises_effusion_among_the_hits(tmp_path: Path) -> None:
    from cxrneo.archive.codes import load
    from cxrneo.cli.main import app
    from cxrneo.embed.encoder import Encoder
    from cxrneo.graph import normalise

    out = CliRunner().invoke(app, ["embed", str(CHECKPOINT), "--labels", str(SAMPLE / "Data_Entry_2017.csv"),
                                   "--images", str(SAMPLE / "images"), "--out", str(tmp_path / "codes.npz"),
                                   "--workers", "0", "--max-images", str(N), "--device", "cpu"])
    assert out.exit_code == 0, out.output
    codes = load(tmp_path / "codes.npz")
    unit = normalise(codes.codes)
    effusion = np.array(["Effusion" in r.labels for r in codes.images])
    directions = Encoder(CHECKPOINT, "cpu").directions()

    def share(step: float) -> np.ndarray:
        shares = np.empty(len(unit))
        for i in range(len(unit)):
            q = steer(unit[i], directions, {"Effusion": step}) if step else unit[i]
            sims = unit @ (q / np.linalg.norm(q))
            sims[i] = -np.inf  # the query itself is never a hit
            shares[i] = effusion[np.argsort(-sims, kind="stable")[:10]].mean()
        return shares

    gain = share(0.5) - share(0.0)  # paired, per query
    rng = np.random.default_rng(0)
    boot = np.array([gain[rng.integers(0, len(gain), len(gain))].mean() for _ in range(2000)])
    low, high = np.quantile(boot, [0.025, 0.975])
    assert low > 0, f"Effusion share gain {gain.mean():+.3f}, 95% interval [{low:+.3f}, {high:+.3f}]"

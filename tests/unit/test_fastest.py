"""The first pass chosen by measurement: forcing works, the chosen kernel keeps its bound, a kernel whose
bound fails is never chosen however fast, and what is measured is reported (not which kernel is fastest:
that depends on the machine)."""

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from cxrneo.errors import ConfigError
from cxrneo.graph import normalise
from cxrneo.retrieval.fastest import Directions, Loaded, choose
from cxrneo.retrieval.principal import Principal
from cxrneo.retrieval.scan import Fp32Kernel, Pass, holds
from cxrneo.service import cpu
from cxrneo.settings import Settings
from cxrneo.whiten import Spectrum

WIDTH = 128


def _codes(n: int = 1500, decay: float = 8.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rotation = np.linalg.qr(np.random.default_rng(1).standard_normal((WIDTH, WIDTH)))[0]
    mean = np.random.default_rng(2).standard_normal(WIDTH)
    return normalise(2.0 * mean + (rng.standard_normal((n, WIDTH)) * np.exp(-np.arange(WIDTH) / decay)) @ rotation.T)


def _loaded(codes: np.ndarray, whitened: np.ndarray | None = None) -> Loaded:
    return Loaded(codes, codes, 0.95, Directions(lambda: Principal.fit(codes, len(codes)), whitened))


class Liar(Fp32Kernel):
    """Fast and wrong: every value off by 0.01 while claiming float32's bound."""

    name = "liar"

    def __call__(self, queries: np.ndarray) -> Pass:
        p = super().__call__(queries)
        return Pass(p.approx + 0.01, p.base, p.rel)


def test_forcing_picks_the_family_asked_for() -> None:
    codes = _codes()
    assert choose(_loaded(codes), "float32").kernel.name == "float32"
    forced = choose(_loaded(codes), "lowrank")
    assert forced.kernel.name.startswith("lowrank-") and {t.name for t in forced.trials} <= {f"lowrank-{d}" for d in (16, 32)}
    assert holds(forced.kernel, codes) and forced.rechecks is not None and forced.rechecks >= 10
    white = Spectrum.of(codes).whitening(12, 0.1)
    wcodes = white.apply(codes)
    assert choose(_loaded(wcodes, np.ascontiguousarray(white.basis.T)), "lowrank").kernel.name == "lowrank-12"
    with pytest.raises(ConfigError, match="first pass must be one of"):
        choose(_loaded(codes), "fast")


def test_auto_takes_a_kernel_whose_bound_holds_and_never_a_liar() -> None:
    codes = _codes()
    chosen = choose(_loaded(codes), "auto", {"liar": lambda: Liar(codes)}, least_rows=0)
    names = [t.name for t in chosen.trials]
    assert names[0] == "float32" and "liar" in names and any(n.startswith("lowrank-") for n in names)
    assert chosen.kernel.name != "liar" and not next(t for t in chosen.trials if t.name == "liar").holds
    assert holds(chosen.kernel, codes)
    timed = [t for t in chosen.trials if t.holds and np.isfinite(t.seconds)]
    assert chosen.kernel.name == min(timed, key=lambda t: t.seconds).name  # the fastest of those that held
    assert chosen.kernel.name in chosen.summary() and "liar: bound failed" in chosen.summary()


def test_a_kernel_that_fails_its_bound_leaves_float32() -> None:
    codes = _codes(600)
    chosen = choose(_loaded(codes), "bfloat16", {"bfloat16": lambda: Liar(codes)})
    assert chosen.kernel.name == "float32" and [t.holds for t in chosen.trials] == [False]


def test_small_archives_and_isotropic_codes_are_not_measured_for_nothing() -> None:
    codes = _codes(300)
    assert choose(_loaded(codes), "auto").trials == ()  # below LEAST_ROWS: float32 unmeasured
    flat = normalise(np.random.default_rng(3).standard_normal((1500, WIDTH)))  # no direction stands out
    assert _loaded(flat).directions.ranks(WIDTH) is None
    assert [t.name for t in choose(_loaded(flat), "auto", least_rows=0).trials] == ["float32"]
    assert choose(_loaded(flat), "lowrank").kernel.name == "float32"


def test_settings_accept_lowrank_and_refuse_others() -> None:
    assert Settings(scan="lowrank").scan == "lowrank"
    with pytest.raises(ValidationError):
        Settings(scan="fast")


def test_the_cpu_model_is_read_from_cpuinfo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\n"
                    "model name\t: other\n")
    monkeypatch.setattr(cpu, "CPUINFO", info)
    cpu._fields.cache_clear()
    try:
        assert cpu.model() == "Test CPU 9000" and not cpu.may_do_bfloat16()
        info.write_text("model name\t: X\nflags\t: avx512f avx512_bf16\n")
        cpu._fields.cache_clear()
        assert cpu.may_do_bfloat16()
        monkeypatch.setattr(cpu, "CPUINFO", tmp_path / "missing")
        cpu._fields.cache_clear()
        assert cpu.model() == "unknown" and cpu.may_do_bfloat16()  # unknown: the probe decides
    finally:
        cpu._fields.cache_clear()

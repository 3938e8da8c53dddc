"""DeepMAD's entropy: the published test vectors and the documented extension to attention."""

from __future__ import annotations

import math

import pytest

from archsearch.errors import UserError
from archsearch.evaluators import EVALUATORS, Entropy, deepmad_entropy, evaluator_for
from archsearch.spec import Architecture
from tests.conftest import FIXTURES

# ../shared/reference/deepmad/README.md (values computed from the published formula)
VECTORS = {
    "deepmad_r50": (
        [21.26, 111.98, 1323.61, 4178.82, 5410.45],
        48919.3,
        [0.0370, 0.0522, 0.1445, 0.2483, 0.2998],
    ),
    "deepmad_29m": (
        [184.24, 517.96, 990.14, 1399.81, 2005.47],
        19135.9,
        [0.1269, 0.2418, 0.3613, 0.4479, 0.4965],
    ),
}


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_reproduces_deepmad_test_vectors(name: str) -> None:
    stages, score, rhos = VECTORS[name]
    stats = deepmad_entropy(Architecture.load(FIXTURES / f"{name}.yaml"))
    assert [round(h, 2) for h in stats.stage_entropy] == stages
    assert round(stats.score, 1) == score
    assert [round(r, 4) for r in stats.stage_rho] == rhos
    assert round(stats.rho, 4) == rhos[-1]


def test_evaluator_interface() -> None:
    ev = EVALUATORS.create("entropy")
    assert ev.cheap and {m.name: m.direction for m in ev.metrics} == {
        "entropy": "max",
        "rho": "min",
    }
    arch = Architecture.load(FIXTURES / "deepmad_r50.yaml")
    (out,) = ev.evaluate([arch])
    assert out["entropy"] == pytest.approx(48919.3, abs=0.05)
    assert evaluator_for("rho") == "entropy" and evaluator_for("macs") is None


def test_alpha_option() -> None:
    arch = Architecture.load(FIXTURES / "deepmad_r50.yaml")
    stats = deepmad_entropy(arch)
    ones = Entropy(alpha=[1, 1, 1, 1, 1]).evaluate([arch])[0]["entropy"]
    assert ones == pytest.approx(sum(stats.stage_entropy))
    with pytest.raises(UserError, match="alpha has 3 weights but the network has 5 stages"):
        Entropy(alpha=[1, 1, 1]).evaluate([arch])


def one_block(block: dict, width: int = 64, size: int = 28) -> Architecture:
    return Architecture.from_dict(
        {
            "input_shape": [3, size * 4, size * 4],
            "stem": {"type": "patchify", "out_channels": width},
            "stages": [{"blocks": [block]}],
            "head": {"type": "head"},
        }
    )


def test_attention_counts_keys_as_fan_in() -> None:
    # Documented design choice: MHSA = q/k/v proj (C) + attention (fan-in N keys) + proj (C)
    # + MLP (C, hidden); the patchify stem is one layer of fan-in 3 * 4^2.
    c, n = 64, 28 * 28
    arch = one_block({"type": "mhsa", "out_channels": c, "params": {"heads": 2, "hidden": 128}})
    stats = deepmad_entropy(arch)
    fans = [3 * 16, c, n, c, c, 128]
    e = sum(0.5 * math.log(f) for f in fans)
    assert len(stats.stage_entropy) == 1
    assert stats.score == pytest.approx(8 * (math.log(c) + math.log(n)) * e)
    rho = len(fans) / math.exp(sum(math.log(f) for f in fans) / len(fans))
    assert stats.rho == pytest.approx(rho)


def test_spatial_reduction_lowers_the_attention_fan_in() -> None:
    block = {"type": "sr_mhsa", "out_channels": 64, "params": {"heads": 2}}
    plain = deepmad_entropy(one_block(block)).score
    reduced = deepmad_entropy(one_block({**block, "params": {"heads": 2, "sr": 4}})).score
    assert reduced < plain


def test_pooling_counts_as_a_depthwise_layer() -> None:
    pool = deepmad_entropy(one_block({"type": "pool", "out_channels": 64}))
    dw = deepmad_entropy(
        one_block({"type": "convnext", "out_channels": 64, "params": {"kernel": 3}})
    )
    assert pool.score == pytest.approx(dw.score)  # both: k^2=9, C, 4C


def test_stage_boundaries_follow_resolution_changes(hybrid) -> None:  # type: ignore[no-untyped-def]
    arch = hybrid.sample(seed=0)
    assert len(deepmad_entropy(arch).stage_entropy) == 4  # hybrid: 56, 28, 14, 7

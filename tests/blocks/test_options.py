"""Options added to existing families after specs were stored: canonical form and digests,
and the one-line refusals of combinations that cannot be built."""

from __future__ import annotations

import pytest

from archsearch.blocks import Param
from archsearch.errors import SpecError
from archsearch.spec import Architecture, Block

BASE = {
    "input_shape": [3, 32, 32],
    "num_classes": 10,
    "stem": {"type": "conv_bn_act", "out_channels": 16, "params": {"stride": 2}},
    "stages": [
        {
            "blocks": [
                {"type": "mbconv", "out_channels": 16, "params": {"hidden": 32, "se": 8}},
                {"type": "bottleneck", "out_channels": 32, "params": {"hidden": 8}},
            ]
        }
    ],
    "head": {"type": "head", "params": {"norm": "none"}},
}


def _with(block: int, **params: object) -> dict:
    spec = {**BASE, "stages": [{"blocks": [dict(b) for b in BASE["stages"][0]["blocks"]]}]}
    b = spec["stages"][0]["blocks"][block]
    b["params"] = {**b["params"], **params}
    return spec


def test_options_at_their_default_leave_the_digest_unchanged() -> None:
    plain = Architecture.from_dict(BASE)
    explicit = Architecture.from_dict(_with(0, expand_conv=True, se_act="same", se_gate="sigmoid"))
    assert explicit.digest == plain.digest
    assert Architecture.from_dict(_with(1, groups=1, se=0)).digest == plain.digest
    for block in (0, 1):
        default = Architecture.from_dict(_with(block, norm="bn", conv_bias=False))
        assert default.digest == plain.digest
    for key in ("expand_conv", "se_act", "se_gate", "groups", '"se":0', "post_hidden"):
        assert key not in plain.to_json()
    for block in plain.to_dict()["stages"][0]["blocks"]:
        assert "norm" not in block["params"] and "conv_bias" not in block["params"]
    # The resolved params still hold every option.
    assert plain.stages[0].blocks[0].params["se_gate"] == "sigmoid"
    assert plain.stages[0].blocks[1].params["groups"] == 1


def test_options_away_from_their_default_are_written_and_round_trip() -> None:
    arch = Architecture.from_dict(_with(0, se_gate="hsigmoid", se_act="relu"))
    assert '"se_gate":"hsigmoid"' in arch.to_json()
    assert arch.digest != Architecture.from_dict(BASE).digest
    assert Architecture.from_json(arch.to_json()).digest == arch.digest
    assert Architecture.from_yaml(arch.to_yaml()).digest == arch.digest


def test_impossible_combinations_are_one_line_errors() -> None:
    with pytest.raises(SpecError, match="groups=3 must divide hidden=8"):
        Architecture.from_dict(_with(1, groups=3))
    with pytest.raises(SpecError, match="expand_conv=false needs hidden=32 to equal in_chan"):
        Architecture.from_dict(_with(0, expand_conv=False))
    with pytest.raises(SpecError, match="se_gate.*choose one of: sigmoid, hsigmoid"):
        Block("mbconv", 16, {"hidden": 16, "se_gate": "tanh"})
    with pytest.raises(SpecError, match="'norm'='in' is not allowed; choose one of: bn, ln, gn"):
        Block("bottleneck", 16, {"hidden": 16, "norm": "in"})


def test_norm_and_bias_options_count_exactly() -> None:
    from archsearch.cost import count
    from archsearch.cost.reference import measure_arch

    plain = count(Architecture.from_dict(BASE)).params
    for block in (0, 1):
        for norm in ("ln", "gn", "none"):
            for bias in (False, True):
                arch = Architecture.from_dict(_with(block, norm=norm, conv_bias=bias))
                assert count(arch) == measure_arch(arch), (block, norm, bias)
                if norm != "none" and not bias:
                    assert count(arch).params == plain  # LN and GN have BN's 2C parameters


def test_elided_defaults_must_be_constants() -> None:
    with pytest.raises(TypeError, match="constant default"):
        Param("x", int, lambda out, p: out, elide_default=True)


def test_growing_buffers_are_bounded_before_building() -> None:
    # One 512x512 window holds 262,144 tokens: its bias index alone has 6.9e10 elements.
    from archsearch.build import build

    arch = Architecture.from_dict(
        {
            "input_shape": [3, 2048, 2048],
            "num_classes": 10,
            "stem": {"type": "patchify", "out_channels": 8, "params": {"patch": 4}},
            "stages": [
                {
                    "blocks": [
                        {"type": "swin", "out_channels": 8, "params": {"heads": 1, "window": 512}}
                    ]
                }
            ],
            "head": {"type": "head", "params": {"norm": "none"}},
        }
    )
    with pytest.raises(SpecError, match="buffer elements .* at most 2e\\+09 in all"):
        build(arch)

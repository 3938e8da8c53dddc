"""Zero-cost proxies: finite, deterministic, the expected order on pairs whose answer is known."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from archsearch.errors import UserError
from archsearch.evaluators import EVALUATORS
from archsearch.evaluators.proxies import PROXIES, parse_shape
from archsearch.spec import Architecture

NAMES = [p.name for p in PROXIES]


def convnet(
    width: int, depth: int = 2, *, block: str = "mbconv", classes: int = 10
) -> Architecture:
    """A small conv net at 3x16x16: conv stem, ``depth`` blocks of ``width`` channels, head."""
    params: dict[str, Any] = {"hidden": 2 * width} if block == "mbconv" else {"kernel": 3}
    return Architecture.from_dict(
        {
            "input_shape": [3, 16, 16],
            "num_classes": classes,
            "stem": {"type": "conv_bn_act", "out_channels": width, "params": {"stride": 2}},
            "stages": [
                {
                    "blocks": [
                        {"type": block, "out_channels": width, "params": params, "repeat": depth}
                    ]
                }
            ],
            "head": {"type": "head", "out_channels": classes},
        }
    )


def hybrid_net() -> Architecture:
    """Attention, pooling and ConvNeXt blocks: every proxy must handle LayerNorm/GELU nets."""
    return Architecture.from_dict(
        {
            "input_shape": [3, 16, 16],
            "num_classes": 5,
            "stem": {"type": "patchify", "out_channels": 16, "params": {"patch": 2}},
            "stages": [
                {
                    "blocks": [
                        {"type": "convnext", "out_channels": 16},
                        {"type": "pool", "out_channels": 16},
                    ]
                },
                {
                    "downsample": {"type": "conv_down", "out_channels": 32},
                    "blocks": [
                        {"type": "mhsa", "out_channels": 32, "params": {"heads": 2}},
                        {
                            "type": "tinyvit",
                            "out_channels": 32,
                            "params": {"heads": 2, "window": 2},
                        },
                    ],
                },
            ],
            "head": {"type": "head", "out_channels": 5},
        }
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("arch", [convnet(8), hybrid_net()], ids=["conv", "hybrid"])
def test_finite_and_deterministic(name: str, arch: Architecture) -> None:
    ev = EVALUATORS.create(name, batch=8, seed=3)
    first = ev.evaluate([arch])[0][name]
    assert math.isfinite(first)
    assert ev.evaluate([arch])[0][name] == first
    other = EVALUATORS.create(name, batch=8, seed=4).evaluate([arch])[0][name]
    if name != "synflow":  # synflow is data-free; its seed only sets the initialisation
        assert other != first


def test_proxies_do_not_disturb_the_global_random_state() -> None:
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    EVALUATORS.create("naswot", batch=4).evaluate([convnet(8)])
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", ["synflow", "naswot", "snip", "zen"])
def test_wider_beats_strictly_narrower(name: str) -> None:
    """Doubling every width adds units and weights: each of these proxies must grow."""
    ev = EVALUATORS.create(name, batch=8)
    narrow, wide = ev.evaluate([convnet(8), convnet(16)])
    assert wide[name] > narrow[name]


def test_zen_grows_with_depth_and_ignores_residual_links() -> None:
    ev = EVALUATORS.create("zen", batch=8)
    shallow, deep = ev.evaluate(
        [convnet(8, 1, block="conv_bn_act"), convnet(8, 4, block="conv_bn_act")]
    )
    assert deep["zen"] > shallow["zen"]


def test_no_residual_removes_the_shortcut() -> None:
    from archsearch.blocks.layers import ConvNeXtBlock, no_residual

    torch.manual_seed(0)
    block = ConvNeXtBlock(8, 3, 16, layer_scale=False)
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        full = block(x)
        with no_residual():
            branch = block(x)
        assert not torch.allclose(full, branch)
        torch.testing.assert_close(full - x, branch)
        torch.testing.assert_close(block(x), full)  # the flag is restored on exit


def test_proxy_input_resolution_and_batch() -> None:
    arch = convnet(8)
    small = EVALUATORS.create("naswot", input="3x8x8", batch=4).evaluate([arch])[0]["naswot"]
    native = EVALUATORS.create("naswot", batch=4).evaluate([arch])[0]["naswot"]
    assert math.isfinite(small) and small != native
    assert EVALUATORS.create("zen", input=[3, 8, 8]).config()["input"] == "3x8x8"


def test_parse_shape() -> None:
    assert parse_shape("3x64x64") == (3, 64, 64)
    assert parse_shape("64") == (3, 64, 64)
    assert parse_shape([1, 28, 28]) == (1, 28, 28)
    for bad in ("3x64", "axb", "0x4x4", ""):
        with pytest.raises(UserError, match="--proxy-input: .* write CxHxW"):
            parse_shape(bad)


def test_bad_options_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--proxy-batch"):
        EVALUATORS.create("snip", batch=1)
    f = tmp_path / "d.npz"
    np.savez(f, x=np.zeros((4, 8, 8), np.uint8), y=np.array([0, 1, 0, 1]))
    with pytest.raises(UserError, match="conflicts with --data"):
        EVALUATORS.create("snip", input="3x8x8", data=f"npz:{f}")
    with pytest.raises(UserError, match="does not accept option 'resolution'"):
        EVALUATORS.create("snip", resolution=32)


def test_real_data_batch_builds_at_the_datasets_shape(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    f = tmp_path / "d.npz"
    np.savez(f, x=rng.integers(0, 255, (20, 12, 12)).astype(np.uint8), y=np.arange(20) % 4)
    ev = EVALUATORS.create("grad_norm", data=f"npz:{f}", batch=8)
    model, x, y = ev.prepare(convnet(8))  # type: ignore[attr-defined]
    assert x.shape == (8, 1, 12, 12) and int(y.max()) < 4
    assert model(x).shape == (8, 4)  # 1 channel in, the dataset's 4 classes out
    assert abs(float(x.mean())) < 0.5  # standardised
    assert math.isfinite(ev.evaluate([convnet(8)])[0]["grad_norm"])


def test_nan_is_returned_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """A constant network input gradient has no correlation: jacob_cov says NaN, no error."""
    ev = EVALUATORS.create("jacob_cov", batch=4)
    monkeypatch.setattr(np, "corrcoef", lambda j: np.full((4, 4), np.nan))
    assert math.isnan(ev.evaluate([convnet(8)])[0]["jacob_cov"])


def test_a_network_invalid_at_the_proxy_input_fails_with_the_reason() -> None:
    with pytest.raises(UserError, match="stem .* input 1x1 is too small"):
        EVALUATORS.create("zen", input="3x1x1").evaluate([hybrid_net()])

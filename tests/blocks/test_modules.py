"""Layers written with other operators than torch's obvious ones (to export to ONNX opset 17,
or to count exactly) compute what the obvious ones compute."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.parametrize(
    ("kernel", "stride", "size"),
    [(3, 2, (28, 28)), (3, 2, (27, 25)), (5, 1, (7, 9)), (3, 3, (10, 11)), (1, 2, (5, 4))],
)
def test_outlooker_fold_equals_torch_fold(kernel: int, stride: int, size: tuple[int, int]) -> None:
    # VOLO's fold is written without col2im (ONNX opset 17 lacks it): it must equal F.fold.
    from archsearch.blocks.layers.volo import fold

    h, w = -(-size[0] // stride), -(-size[1] // stride)
    y = torch.randn(2, 6, kernel * kernel, h, w)
    want = torch.nn.functional.fold(
        y.reshape(2, 6 * kernel * kernel, h * w), size, kernel, padding=kernel // 2, stride=stride
    )
    assert torch.equal(fold(y, size, kernel, stride), want)

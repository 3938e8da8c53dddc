"""The network :func:`archsearch.build` composes: stem, stages, head."""

from __future__ import annotations

from torch import Tensor, nn


class Network(nn.Module):
    """The module ``archsearch.build`` returns: stem, stages (downsample + blocks), head."""

    def __init__(self, stem: nn.Module, stages: list[nn.Sequential], head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.head = head

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))

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


class StageOutputs(nn.Module):
    """A built network as a backbone: ``forward`` returns every stage's output (a tuple), as
    timm's ``features_only`` models do; the head is kept but not run."""

    def __init__(self, network: Network) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        x = self.network.stem(x)
        out = []
        for stage in self.network.stages:
            x = stage(x)
            out.append(x)
        return tuple(out)

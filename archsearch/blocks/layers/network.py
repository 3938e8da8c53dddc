"""The network :func:`archsearch.build` composes: stem, stages, head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class Network(nn.Module):
    """The module ``archsearch.build`` returns: stem, stages (downsample + blocks), head."""

    def __init__(self, stem: nn.Module, stages: Sequence[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.head = head

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def layer_modules(self) -> list[nn.Module]:
        """The module of every layer of the spec, in ``Architecture.layers`` order."""
        blocks = [m for stage in self.stages for m in stage.children()]
        return [self.stem, *blocks, self.head]

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


class Stream(nn.Sequential):
    """A plain stage of a multi-stream network: its one stream in, its one stream out."""

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        x = xs[0]
        for module in self:
            x = module(x)
        return [x]


class Branches(nn.Module):
    """A branched stage: ``branches[b]`` runs on stream ``b`` (every branch on the one input
    stream where the stage opens the streams), then ``fuse[b]`` updates stream ``b`` reading
    stream ``(b + 1) % n``, then ``merge`` (mean, sum, concat or none) joins the streams."""

    def __init__(
        self, branches: Sequence[nn.Module], fuse: Sequence[nn.Module], merge: str = "none"
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.fuse = nn.ModuleList(fuse)
        self.merge = merge

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        n = len(self.branches)
        outs: list[Tensor] = []
        for b, branch in enumerate(self.branches):
            outs.append(branch(xs[b] if len(xs) > 1 else xs[0]))
        if len(self.fuse) > 0:
            fused: list[Tensor] = []
            for b, block in enumerate(self.fuse):
                fused.append(block(outs[b], outs[(b + 1) % n]))
            outs = fused
        if self.merge == "mean":
            return [torch.stack(outs).mean(0)]
        if self.merge == "sum":
            return [torch.stack(outs).sum(0)]
        if self.merge == "concat":
            return [torch.cat(outs, dim=1)]
        return outs


class MeanHeads(nn.ModuleList):
    """One head per stream, each with its own weights; the logits are averaged (CrossViT)."""

    def forward(self, xs: list[Tensor]) -> Tensor:
        logits: list[Tensor] = []
        for b, head in enumerate(self):
            logits.append(head(xs[b]))
        return torch.stack(logits).mean(0)


class MultiStreamNetwork(Network):
    """What :func:`archsearch.build` returns for a network with branched stages: ``stages``
    hold :class:`Stream` and :class:`Branches` modules, which pass a list of streams, and
    ``head`` is a :class:`MeanHeads`."""

    def forward_features(self, x: Tensor) -> list[Tensor]:  # type: ignore[override]
        xs = [self.stem(x)]
        for stage in self.stages:
            xs = stage(xs)
        return xs

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))

    def layer_modules(self) -> list[nn.Module]:
        out = [self.stem]
        for stage in self.stages:
            if isinstance(stage, Branches):
                out += [m for branch in stage.branches for m in branch.children()]
                out += list(stage.fuse)
            else:
                out += list(stage.children())
        return out + list(self.head.children())

"""The modules of :mod:`archsearch.blocks.heads`."""

from __future__ import annotations

from torch import Tensor, nn

from archsearch.blocks.layers.common import ConvNormAct, make_act, make_norm2d


class Head(nn.Module):
    """[1x1 conv, BN, act], [norm], pool (average or class token), [norm], [linear, act],
    linear(s)."""

    def __init__(
        self,
        c_in: int,
        num_classes: int,
        *,
        hidden: int,
        act: str,
        prenorm: str,
        pool: str,
        norm: str,
        distill: bool,
        post_hidden: int = 0,
        aux: bool = False,
    ) -> None:
        super().__init__()
        self.conv: nn.Module = ConvNormAct(c_in, hidden, 1, act=act) if hidden else nn.Identity()
        width = hidden or c_in
        self.prenorm = make_norm2d(prenorm, width)
        self.pool = pool
        norms: dict[str, nn.Module] = {
            "ln": nn.LayerNorm(width, eps=1e-6),
            "bn": nn.BatchNorm1d(width),
            "none": nn.Identity(),
        }
        self.norm = norms[norm]
        self.post: nn.Module = nn.Identity()
        if post_hidden:  # a 1x1 conv on the pooled 1x1 map is a linear layer
            self.post = nn.Sequential(nn.Linear(width, post_hidden), make_act(act))
            width = post_hidden
        self.fc = nn.Linear(width, num_classes)
        self.fc_dist = nn.Linear(width, num_classes) if distill else None
        self.aux_head = nn.Linear(hidden or c_in, num_classes) if aux else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.prenorm(self.conv(x))
        aux = None
        if self.aux_head is not None:  # every token but the class token, best per class
            aux = self.aux_head(x[:, :, 1:, 0].transpose(1, 2)).amax(1) * 0.5
        x = x[:, :, 0, 0] if self.pool == "cls" else x.mean((2, 3))
        x = self.post(self.norm(x))
        y = self.fc(x) if self.fc_dist is None else (self.fc(x) + self.fc_dist(x)) / 2
        return y if aux is None else y + aux

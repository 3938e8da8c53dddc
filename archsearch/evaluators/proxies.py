"""Zero-cost proxies: training-free scores of an untrained network, each as its paper defines it.

Every proxy builds the network (``archsearch.build``) with a seeded initialisation, feeds it one
batch and reduces what it sees to one number, larger = better:

* ``naswot``: Mellor et al., "Neural Architecture Search without Training", ICML 2021. The
  binary code of a image is the sign pattern (input > 0) of every activation unit; with ``N``
  images, ``K[i, j]`` is the number of units where images ``i`` and ``j`` agree (``N_A`` minus
  the Hamming distance) and the score is ``log |det K|``. The paper hooks ReLUs; here every
  activation module (ReLU, GELU, SiLU, hard-swish, ...) contributes its input's sign, the
  natural reading for GELU/SiLU networks, whose "on" region is also ``x > 0``.
* ``synflow``: Tanaka et al., "Pruning neural networks without any data by iteratively
  conserving synaptic flow", NeurIPS 2020, as a NAS proxy in Abdelfattah et al., "Zero-Cost
  Proxies for Lightweight NAS", ICLR 2021: every weight replaced by its absolute value, an
  all-ones input of batch 1 in float64, ``R = sum(f(1))``, score ``sum |theta * dR/dtheta|``
  over conv and linear weights. Batch norm runs in eval mode (fresh running statistics, so an
  identity up to its epsilon), the nearest a built network gets to the paper's "no BN".
* ``grad_norm``: Abdelfattah et al. 2021: the sum over conv and linear layers of the L2 norm of
  the weight gradient of the cross-entropy loss on one batch.
* ``snip``: Lee et al., "SNIP: Single-shot Network Pruning based on Connection Sensitivity",
  ICLR 2019, summed over weights as in Abdelfattah et al.: ``sum |theta * dL/dtheta|``.
* ``jacob_cov``: Mellor et al., "Neural Architecture Search without Training" (arXiv v1, 2020):
  the Jacobians ``dsum(f(x_i))/dx_i`` of a batch, their correlation matrix's eigenvalues
  ``v``, score ``-sum(log(v + k) + 1 / (v + k))`` with ``k = 1e-5``.
* ``zen``: Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition",
  ICCV 2021: residual links removed (:func:`archsearch.blocks.layers.no_residual`), conv and
  linear weights drawn from N(0, 1) (biases 0, norm affine 1/0, layer scales 1), inputs
  ``x ~ N(0, 1)`` and ``x' = x + 0.01 eps``; ``Delta`` is the batch mean of
  ``sum |f(x) - f(x')|`` over the pre-pooling feature map (the official code's L1 form) and the
  score is ``log(Delta) + sum_i log(sigma_i)``, ``sigma_i`` the square root of the mean over
  channels of batch norm ``i``'s batch variance (the paper's definition). Networks normalised by
  LayerNorm/GroupNorm have no ``sigma`` terms: those norms discard the scale Zen-NAS measures.

Inputs: by default a batch of 16 ``N(0, 1)`` images at ``input`` (default: the architecture's
own input shape, scaled down to at most 64 pixels per side: 224x224 becomes 64x64) with
uniformly random labels; with ``data``, a seeded batch of real training
images (normalised) and their labels, and the network is built at the dataset's shape and
number of classes. Everything is seeded: the same seed gives the same score on the same
machine. A proxy that produces NaN or infinity returns it (the driver stores it as such; a
search goes on); a network that cannot be built at the requested input fails its trial with the
reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from archsearch.errors import UserError
from archsearch.evaluators.base import Evaluator, Metric
from archsearch.spec import Architecture

if TYPE_CHECKING:
    import torch
    from torch import nn

DEFAULT_BATCH = 16
MAX_SIDE = 64
"""Without ``input``, the proxy pass runs at the architecture's input shape, scaled down so
that neither side exceeds this many pixels (224x224 -> 64x64): full resolution costs about 18x
more on a CPU (1.9 s instead of 0.11 s per ~1-GFLOP candidate at batch 32 and 16)."""


def default_shape(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """``shape`` scaled down to at most :data:`MAX_SIDE` pixels per side, aspect kept."""
    c, h, w = shape
    if max(h, w) <= MAX_SIDE:
        return shape
    f = MAX_SIDE / max(h, w)
    return c, max(1, round(h * f)), max(1, round(w * f))


def parse_shape(text: str | Sequence[int], *, what: str = "--proxy-input") -> tuple[int, int, int]:
    """``"3x64x64"`` (or ``"64"`` for 3x64x64, or a sequence) -> ``(3, 64, 64)``."""
    if not isinstance(text, str):
        values = [int(v) for v in text]
    else:
        try:
            values = [int(v) for v in text.lower().replace("*", "x").split("x")]
        except ValueError:
            values = []
    if len(values) == 1:
        values = [3, values[0], values[0]]
    if len(values) != 3 or min(values) < 1:
        raise UserError(
            f"{what}: {text!r} is not an input shape; write CxHxW, e.g. 3x64x64 (or 64)"
        )
    return values[0], values[1], values[2]


class Proxy(Evaluator):
    """Base of the zero-cost proxies: options, the seeded network and the input batch.

    Args:
        input: ``CxHxW`` of the proxy pass (default: the architecture's own input shape,
            scaled down to at most :data:`MAX_SIDE` pixels per side).
        batch: Images per proxy pass.
        data: A dataset (``idx:DIR``, ``npz:FILE``, ``folder:DIR``) to draw the batch from;
            the network is then built at its shape and number of classes.
        seed: Seeds the initialisation, the batch and the labels.
    """

    cheap = True
    doc: ClassVar[str] = ""
    """What the proxy measures; subclasses' one metric is named after them, larger = better."""

    def __init__(
        self,
        *,
        input: str | Sequence[int] | None = None,
        batch: int = DEFAULT_BATCH,
        data: str | None = None,
        seed: int = 0,
    ) -> None:
        self.input = parse_shape(input) if input is not None else None
        if self.input is not None and data is not None:
            raise UserError(
                f"--proxy-input: {input!r} conflicts with --data {data}: with data the proxies "
                "run at the dataset's shape; drop one of them"
            )
        if not isinstance(batch, int) or batch < 2:
            raise UserError(f"--proxy-batch: {batch!r} must be an integer of at least 2")
        self.batch = batch
        self.data = data
        self.seed = int(seed)
        self._data_batch: tuple[torch.Tensor, torch.Tensor] | None = None
        if data is not None:
            from archsearch.data import absolute_ref, load_dataset

            load_dataset(data)  # fail now, with the reason, rather than once per trial
            self.data = absolute_ref(data)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            cls.metrics = (Metric(cls.name, "max", cls.doc),)

    def config(self) -> dict[str, object]:
        return {
            "input": "x".join(map(str, self.input)) if self.input else None,
            "batch": self.batch,
            "data": self.data,
            "seed": self.seed,
        }

    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        import torch

        out = []
        with torch.random.fork_rng():
            for arch in archs:
                model, x, y = self.prepare(arch)
                out.append({self.name: float(self.score(model, x, y))})
        return out

    def prepare(self, arch: Architecture) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
        """The seeded network and the batch (images, labels) this proxy scores it on."""
        import torch

        from archsearch.build import build, check_memory

        if self.data is not None:
            from archsearch.data import load_dataset

            ds = load_dataset(self.data)
            arch = arch.with_input(ds.shape, ds.num_classes)
            if self._data_batch is None:  # the same seeded batch for every architecture
                self._data_batch = _data_batch(ds, self.batch, self.seed)
            x, y = self._data_batch
        else:
            shape = self.input or default_shape(arch.input_shape)
            arch = arch.with_input(shape)
            g = torch.Generator().manual_seed(self.seed)
            x = torch.randn((self.batch, *shape), generator=g)
            y = torch.randint(0, arch.num_classes, (self.batch,), generator=g)
        check_memory(arch, batch=len(x))
        torch.manual_seed(self.seed)
        model = build(arch)
        return model, x, y

    def score(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        """The proxy's value for ``model`` on the batch ``(x, y)``; called by :meth:`evaluate`."""
        raise NotImplementedError


def _data_batch(ds: Any, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np
    import torch

    from archsearch.evaluators.training import normalise

    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(ds.y), size=min(n, len(ds.y)), replace=False))
    x = normalise(torch.from_numpy(np.ascontiguousarray(ds.x[idx])), ds)
    return x, torch.from_numpy(ds.y[idx])


def _weights(model: nn.Module) -> list[torch.Tensor]:
    """Weights of the conv and linear layers: the ones the proxies' papers sum over."""
    from torch import nn

    return [
        m.weight
        for m in model.modules()
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) and m.weight is not None
    ]


def _activation_types() -> tuple[type[Any], ...]:
    from torch import nn

    from archsearch.blocks.layers import QuickGELU, StarReLU

    return (
        nn.ReLU,
        nn.ReLU6,
        nn.GELU,
        nn.SiLU,
        nn.Hardswish,
        nn.LeakyReLU,
        nn.ELU,
        nn.Mish,
        QuickGELU,
        StarReLU,
    )


class NASWOT(Proxy):
    """NASWOT: log-determinant of the activation codes' Hamming kernel (Mellor et al. 2021)."""

    name = "naswot"
    doc = "NASWOT log|K_H| of activation sign codes (Mellor et al. 2021)"

    def score(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        import torch

        n = x.shape[0]
        kernel = torch.zeros(n, n, dtype=torch.float64)

        def hook(_m: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
            codes = inputs[0].detach().reshape(n, -1) > 0
            units = codes.shape[1]
            # Agreements = both on + both off = 2 c.c' + units - |c| - |c'|: one matmul, exact
            # in float32 while a layer has fewer than 2^24 units.
            c = codes.to(torch.float32 if units < 2**24 else torch.float64)
            on = c.sum(1, dtype=torch.float64)
            both = (c @ c.T).to(torch.float64)
            kernel.add_(2 * both + units - on[:, None] - on[None, :])

        acts = _activation_types()
        handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, acts)]
        if not handles:
            return math.nan  # no activation units, no codes
        model.train()
        with torch.no_grad():
            model(x)
        for h in handles:
            h.remove()
        _, logdet = torch.linalg.slogdet(kernel)
        return float(logdet)


class SynFlow(Proxy):
    """SynFlow: data-free synaptic flow of the linearised network (Tanaka et al. 2020)."""

    name = "synflow"
    doc = "SynFlow sum |theta * dR/dtheta|, |theta| weights, all-ones input (Tanaka et al. 2020)"

    def score(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        import torch

        model = model.double().eval()
        with torch.no_grad():
            for t in model.state_dict().values():
                if t.is_floating_point():
                    t.abs_()
        ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64)
        model.zero_grad()
        torch.sum(model(ones)).backward()
        total = 0.0
        for w in _weights(model):
            if w.grad is not None:
                total += float((w.detach() * w.grad).abs().sum())
        return total


class _GradientProxy(Proxy):
    """Shared by grad_norm and snip: one cross-entropy backward pass in train mode."""

    def score(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        import torch.nn.functional as F

        model.train()
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
        total = 0.0
        for w in _weights(model):
            if w.grad is not None:
                total += self.reduce(w.detach(), w.grad)
        return total

    def reduce(self, w: torch.Tensor, g: torch.Tensor) -> float:
        """One layer's term from its weight ``w`` and loss gradient ``g``."""
        raise NotImplementedError


class GradNorm(_GradientProxy):
    """grad_norm: summed L2 norms of the loss gradients of conv/linear weights."""

    name = "grad_norm"
    doc = "sum of ||dL/dW||_2 over conv/linear layers, one batch (Abdelfattah et al. 2021)"

    def reduce(self, w: torch.Tensor, g: torch.Tensor) -> float:
        return float(g.norm())


class SNIP(_GradientProxy):
    """SNIP: connection sensitivity ``sum |theta * dL/dtheta|`` (Lee et al. 2019)."""

    name = "snip"
    doc = "SNIP saliency sum |theta * dL/dtheta| (Lee et al. 2019)"

    def reduce(self, w: torch.Tensor, g: torch.Tensor) -> float:
        return float((w * g).abs().sum())


class JacobCov(Proxy):
    """jacob_cov: how uncorrelated the input Jacobians of a batch are (Mellor et al. 2020)."""

    name = "jacob_cov"
    doc = "-sum(log(v+k) + 1/(v+k)), v eigenvalues of the Jacobian correlations (Mellor 2020)"

    def score(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        import numpy as np
        import torch

        model.train()
        x = x.clone().requires_grad_(True)
        out = model(x)
        out.backward(torch.ones_like(out))
        assert x.grad is not None
        jac = x.grad.detach().reshape(x.shape[0], -1).to(torch.float64).numpy()
        with np.errstate(all="ignore"):
            corr = np.corrcoef(jac)
        if not np.all(np.isfinite(corr)):
            return math.nan  # a constant Jacobian row has no correlation
        v = np.linalg.eigvalsh(corr)
        k = 1e-5
        return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


class Zen(Proxy):
    """Zen-NAS score: expressivity of the residual-free, Gaussian-initialised network."""

    name = "zen"
    doc = "Zen-NAS log(Delta) + sum log(sigma_BN), residual links removed (Lin et al. 2021)"

    #: The perturbation scale alpha of the paper.
    mixup: ClassVar[float] = 0.01

    def score(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        import torch
        from torch import nn

        from archsearch.blocks.layers import LayerScale, no_residual

        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                    nn.init.normal_(m.weight)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
                    if m.weight is not None:
                        nn.init.ones_(m.weight)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, LayerScale):
                    for p in m.parameters():
                        nn.init.ones_(p)
        g = torch.Generator().manual_seed(self.seed + 1)
        x = torch.randn(x.shape, generator=g)
        x2 = x + self.mixup * torch.randn(x.shape, generator=g)
        sigmas: list[float] = []
        recording = [True]

        def hook(_m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            if recording[0]:
                t = inputs[0]
                dims = [d for d in range(t.dim()) if d != 1]
                sigmas.append(float(t.var(dim=dims, unbiased=False).mean().sqrt()))

        handles = [
            m.register_forward_pre_hook(hook)
            for m in model.modules()
            if isinstance(m, nn.BatchNorm2d)
        ]
        model.train()
        # a network of several streams: its features are every stream's map, and Delta the
        # L1 distance of their concatenation (the sum over streams)
        features: Callable[[torch.Tensor], torch.Tensor | list[torch.Tensor]] = getattr(
            model, "forward_features", model
        )
        with torch.no_grad(), no_residual():
            f1 = features(x)
            recording[0] = False
            f2 = features(x2)
        for h in handles:
            h.remove()
        one, two = (f1, f2) if isinstance(f1, list) else ([f1], [f2])
        delta = sum(
            float((a - b).abs().flatten(1).sum(1).mean()) for a, b in zip(one, two, strict=True)
        )
        return _log(delta) + sum(_log(s) for s in sigmas)


def _log(v: float) -> float:
    """``log(v)``, with ``log(0) = -inf`` and NaN for a negative or NaN ``v`` (no exception)."""
    if v > 0:
        return math.log(v)
    return -math.inf if v == 0 else math.nan


PROXIES: tuple[type[Proxy], ...] = (NASWOT, SynFlow, GradNorm, SNIP, JacobCov, Zen)

"""The ``train`` evaluator: short, seeded training on real data and held-out top-1 accuracy.

The network is built at the dataset's resolution and number of classes
(:meth:`~archsearch.spec.Architecture.with_input`) and trained with a default recipe that
suits small images from scratch: AdamW (lr 2e-3, weight decay 0.05, no decay on norms and
biases), a linear warm-up over the first 5% of steps then a cosine schedule to zero,
cross-entropy with label smoothing 0.1, and random-crop (padding H/8) plus horizontal-flip
augmentation. Training stops after ``epochs``, or earlier at ``steps`` optimiser steps or
``time_limit`` seconds, whichever comes first. Batch-norm statistics are then re-estimated on
``bn_batches`` (20) training batches, since after a short training the running averages still
remember the first steps. Top-1 accuracy (%) and the loss (without smoothing) are measured on
a held-out split: by default a seeded 10% of the training images
(the test split stays unseen by the search); ``holdout="test"`` uses the dataset's test split.

Everything is seeded (initialisation, shuffling, augmentation): the same seed gives the same
accuracy on the same machine and thread count. A ``time_limit`` makes results depend on the
machine's speed; prefer ``epochs``/``steps`` for reproducible comparisons.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from archsearch.errors import UserError, check_ranges
from archsearch.evaluators.base import Evaluator, Metric
from archsearch.spec import Architecture

if TYPE_CHECKING:
    from collections.abc import Sequence

    import torch
    from torch import nn

    from archsearch.data import Dataset

AUGMENTS = ("crop+flip", "crop", "flip", "none")
HOLDOUTS = ("val", "test")
PRECISIONS = ("fp32", "bf16", "fp16")
"""``bf16``/``fp16``: mixed precision (autocast; fp16 with a gradient scaler, CUDA only)."""
RESIDENT_BYTES = 4 * 1024**3
"""A training set up to this size (as float32) is copied to the accelerator once."""


def resolve_device(name: str | None, *, flag: str = "train device") -> torch.device:
    """The device to train on: ``auto`` (or None) is CUDA when torch sees a GPU, else the CPU;
    ``cpu``, ``cuda`` or ``cuda:N`` as given. ``flag`` names the option in errors.

    Raises:
        UserError: CUDA asked for where torch sees none, or another name.
    """
    import torch

    wanted = ("auto" if name is None else name).strip().lower()  # "" is no device
    shown = repr(name if name is None or len(name) <= 40 else name[:37] + "...")
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted == "cpu":
        return torch.device("cpu")
    if wanted == "cuda" or (wanted.startswith("cuda:") and wanted[5:].isdigit()):
        if not torch.cuda.is_available():
            raise UserError(
                f"{flag} {name}: torch sees no CUDA GPU here (torch.cuda.is_available() is "
                "False); use cpu, or auto to take a GPU only where there is one"
            )
        index = int(wanted[5:]) if ":" in wanted else 0
        if index >= torch.cuda.device_count():
            raise UserError(
                f"{flag} {name}: torch sees {torch.cuda.device_count()} GPU(s), numbered from 0"
            )
        return torch.device("cuda", index)
    raise UserError(f"{flag} {shown}: use auto, cpu, cuda or cuda:N")


def describe_device(device: torch.device) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H200)``: what a run states and stores."""
    import torch

    if device.type == "cuda":
        index = device.index if device.index is not None else 0
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


def autocast(device: torch.device, precision: str) -> Any:
    """The autocast context of ``precision`` on ``device`` (a no-op for fp32).

    Raises:
        UserError: fp16 on the CPU (bf16 is the CPU's mixed precision).
    """
    import contextlib

    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise UserError("precision fp16: needs a CUDA device; on the CPU use precision=bf16")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def normalise(x: torch.Tensor, ds: Dataset) -> torch.Tensor:
    """``uint8`` or float images -> float32 standardised per channel with the dataset's stats."""
    mean, std = channel_stats(ds)
    x = x.float()
    if ds.x.dtype.kind == "u":
        x = x / 255.0
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


_STATS: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}


def channel_stats(ds: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of the training images (scaled to [0, 1])."""
    import numpy as np
    import torch

    if ds.name not in _STATS:
        sample = ds.x[:: max(1, len(ds.x) // 10_000)].astype(np.float64)
        if ds.x.dtype.kind == "u":
            sample /= 255.0
        mean = sample.mean(axis=(0, 2, 3))
        std = np.maximum(sample.std(axis=(0, 2, 3)), 1e-6)
        _STATS[ds.name] = (torch.tensor(mean).float(), torch.tensor(std).float())
    return _STATS[ds.name]


@dataclass(frozen=True)
class Recipe:
    """How a candidate is trained; the defaults are the module docstring's recipe."""

    epochs: float = 1.0
    steps: int | None = None
    time_limit: float | None = None
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: float = 0.05
    label_smoothing: float = 0.1
    augment: str = "crop+flip"
    holdout: str = "val"
    val_fraction: float = 0.1
    train_size: int | None = None
    eval_size: int | None = None
    bn_batches: int = 20
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    channels_last: bool = False

    def __post_init__(self) -> None:
        checks: list[tuple[str, object, bool, str]] = [
            ("--epochs", self.epochs, self.epochs > 0, "a positive number, e.g. 1 or 0.5"),
            ("steps", self.steps, self.steps is None or self.steps >= 1, "at least 1"),
            (
                "time_limit",
                self.time_limit,
                self.time_limit is None or self.time_limit > 0,
                "a positive number of seconds",
            ),
            ("batch_size", self.batch_size, self.batch_size >= 2, "at least 2"),
            ("lr", self.lr, self.lr > 0, "positive"),
            ("weight_decay", self.weight_decay, self.weight_decay >= 0, "0 or more"),
            ("warmup", self.warmup, 0 <= self.warmup < 1, "a fraction of the steps in [0, 1)"),
            ("label_smoothing", self.label_smoothing, 0 <= self.label_smoothing < 1, "in [0, 1)"),
            ("augment", self.augment, self.augment in AUGMENTS, f"one of {', '.join(AUGMENTS)}"),
            ("holdout", self.holdout, self.holdout in HOLDOUTS, "val or test"),
            ("val_fraction", self.val_fraction, 0 < self.val_fraction < 1, "in (0, 1)"),
            (
                "train_size",
                self.train_size,
                self.train_size is None or self.train_size >= 2,
                "at least 2",
            ),
            ("eval_size", self.eval_size, self.eval_size is None or self.eval_size >= 1, ">= 1"),
            ("bn_batches", self.bn_batches, self.bn_batches >= 0, "0 or more"),
            (
                "precision",
                self.precision,
                self.precision in PRECISIONS,
                f"one of {', '.join(PRECISIONS)}",
            ),
            (
                "channels_last",
                self.channels_last,
                isinstance(self.channels_last, bool),
                "true or false",
            ),
        ]
        check_ranges(checks)


@dataclass(frozen=True)
class TrainResult:
    """What one training run measured."""

    accuracy: float
    """Top-1 accuracy (%) on the held-out split."""
    loss: float
    """Mean cross-entropy (no smoothing) on the held-out split."""
    train_loss: float
    """Mean training loss over the last epoch's steps (with smoothing)."""
    epochs: float
    steps: int
    seconds: float


StepCallback = Callable[[int, int], None]
"""``(steps done, total steps)``, called after every optimiser step."""
EpochCallback = Callable[[int, dict[str, float]], None]
"""``(epochs done, {"accuracy": %, "loss": ...})`` on the held-out split, after every epoch but
the last."""


def train(
    model: nn.Module,
    ds: Dataset,
    recipe: Recipe,
    *,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Trains ``model`` (built for ``ds``'s shape and classes) with ``recipe``; see the module.

    ``on_epoch`` measures the held-out split after each epoch but the last (in eval mode with
    the running batch-norm statistics, drawing no random numbers, so the final result is the
    same with or without it)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    start = time.monotonic()
    train_idx, held_idx = ds.split(
        holdout=recipe.holdout, val_fraction=recipe.val_fraction, seed=recipe.seed
    )
    rng = np.random.default_rng(recipe.seed)
    if recipe.train_size is not None and recipe.train_size < len(train_idx):
        train_idx = np.sort(rng.choice(train_idx, recipe.train_size, replace=False))
    if recipe.holdout == "test":
        assert ds.x_test is not None and ds.y_test is not None  # Dataset.split checked
        x_eval, y_eval = ds.x_test, ds.y_test
    else:
        x_eval, y_eval = ds.x[held_idx], ds.y[held_idx]
    if recipe.eval_size is not None and recipe.eval_size < len(y_eval):
        keep = np.sort(rng.choice(len(y_eval), recipe.eval_size, replace=False))
        x_eval, y_eval = x_eval[keep], y_eval[keep]

    device = resolve_device(recipe.device)
    amp = autocast(device, recipe.precision)  # checked before any work
    fmt = torch.channels_last if recipe.channels_last else torch.contiguous_format
    model.to(device)
    if recipe.channels_last:
        model.to(memory_format=fmt)  # type: ignore[call-overload]
    x_train = normalise(torch.from_numpy(np.ascontiguousarray(ds.x[train_idx])), ds)
    y_train = torch.from_numpy(ds.y[train_idx])
    if device.type != "cpu" and x_train.numel() * 4 <= RESIDENT_BYTES:
        x_train, y_train = x_train.to(device), y_train.to(device)  # resident: no copy per step
    n = len(y_train)
    bs = min(recipe.batch_size, n)
    per_epoch = max(1, n // bs)  # the last partial batch is dropped: BN needs > 1 image
    total = max(1, math.ceil(recipe.epochs * per_epoch))
    if recipe.steps is not None:
        total = min(total, recipe.steps)

    opt, sched = optimizer(
        model.parameters(),
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        warmup=recipe.warmup,
        total=total,
    )
    g = torch.Generator().manual_seed(recipe.seed)  # on the CPU: the same draws everywhere
    scaler = torch.amp.GradScaler(device.type, enabled=recipe.precision == "fp16")
    pad = max(1, ds.shape[1] // 8)
    model.train()
    step = 0
    losses: list[float] = []
    while step < total:
        order = torch.randperm(n, generator=g)
        losses = []
        for i in range(per_epoch):
            if step >= total or (
                recipe.time_limit is not None and time.monotonic() - start >= recipe.time_limit
            ):
                total = step
                break
            idx = order[i * bs : (i + 1) * bs].to(x_train.device)
            xb = augment(x_train[idx], recipe.augment, pad, g)
            xb = xb.to(device, memory_format=fmt, non_blocking=True)
            with amp:
                logits = model(xb)
            loss = F.cross_entropy(
                logits.float(), y_train[idx].to(device), label_smoothing=recipe.label_smoothing
            )
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            losses.append(float(loss.detach()))
            step += 1
            if on_step is not None:
                on_step(step, total)
        if on_epoch is not None and step < total and step % per_epoch == 0:
            accuracy, eval_loss = evaluate_accuracy(
                model, x_eval, y_eval, ds, device=device, precision=recipe.precision
            )
            model.train()
            on_epoch(step // per_epoch, {"accuracy": accuracy, "loss": eval_loss})
    recalibrate_bn(model, x_train, recipe.bn_batches, bs, g)
    accuracy, eval_loss = evaluate_accuracy(
        model, x_eval, y_eval, ds, device=device, precision=recipe.precision
    )
    return TrainResult(
        accuracy=accuracy,
        loss=eval_loss,
        train_loss=float(np.mean(losses)) if losses else math.nan,
        epochs=step / per_epoch,
        steps=step,
        seconds=time.monotonic() - start,
    )


def optimizer(
    params: Iterable[torch.Tensor], *, lr: float, weight_decay: float, warmup: float, total: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The recipe's AdamW (no weight decay on norms and biases: tensors of one dimension) and
    its schedule: linear warm-up over ``warmup`` of ``total`` steps, then cosine to zero."""
    import torch

    decay: list[torch.Tensor] = []
    no_decay: list[torch.Tensor] = []
    for p in params:
        if p.requires_grad:
            (decay if p.dim() > 1 else no_decay).append(p)
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
    )
    warm = int(warmup * total)

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total - warm)
        return 0.5 * (1 + math.cos(math.pi * progress))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_at)


def recalibrate_bn(
    model: nn.Module, x: torch.Tensor, batches: int, batch_size: int, g: torch.Generator
) -> None:
    """Re-estimates batch-norm running statistics on ``batches`` training batches.

    After a short training the running averages (momentum 0.1) still remember the first steps'
    statistics, and evaluation in eval mode suffers; recomputing them as plain averages over
    a few batches of the final weights is the standard remedy. No weights change.
    """
    import torch
    from torch import nn

    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or batches == 0:
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    order = torch.randperm(len(x), generator=g).to(x.device)
    device = next(model.parameters()).device
    with torch.no_grad():
        for i in range(min(batches, max(1, len(x) // batch_size))):
            model(x[order[i * batch_size : (i + 1) * batch_size]].to(device))
    for m, momentum in zip(bns, momenta, strict=True):
        m.momentum = momentum


def augment(x: torch.Tensor, kind: str, pad: int, g: torch.Generator) -> torch.Tensor:
    """Random crop after zero padding by ``pad`` and/or horizontal flip, per image, seeded."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    on = x.device  # the draws come from the CPU generator ``g``: the same on every device
    if "crop" in kind:
        padded = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=g).to(on)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=g).to(on)
        rows = (dy.view(n, 1) + torch.arange(h, device=on).view(1, h)).view(n, 1, h, 1)
        cols = (dx.view(n, 1) + torch.arange(w, device=on).view(1, w)).view(n, 1, 1, w)
        batch = torch.arange(n, device=on).view(n, 1, 1, 1)
        chans = torch.arange(x.shape[1], device=on).view(1, -1, 1, 1)
        x = padded[batch, chans, rows, cols]
    if "flip" in kind:
        flip = (torch.rand(n, generator=g) < 0.5).to(on)
        x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    return x


def evaluate_accuracy(
    model: nn.Module,
    x: Any,
    y: Any,
    ds: Dataset,
    *,
    batch: int = 500,
    device: torch.device | None = None,
    precision: str = "fp32",
) -> tuple[float, float]:
    """Top-1 accuracy (%) and mean cross-entropy of ``model`` on raw images ``x``, labels ``y``
    (on ``device``, the CPU by default, in ``precision``)."""
    model.eval()
    if device is None or (device.type == "cpu" and precision == "fp32"):
        return accuracy_of(model, x, y, ds, batch=batch)
    amp = autocast(device, precision)

    def forward(xb: torch.Tensor) -> torch.Tensor:
        with amp:
            return model(xb.to(device, non_blocking=True)).float().cpu()

    return accuracy_of(forward, x, y, ds, batch=batch)


def accuracy_of(
    forward: Callable[[torch.Tensor], torch.Tensor], x: Any, y: Any, ds: Dataset, *, batch: int
) -> tuple[float, float]:
    """Top-1 accuracy (%) and mean cross-entropy of the logits ``forward`` gives for raw
    images ``x`` (normalised here, ``batch`` at a time, without autograd), labels ``y``."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    correct = 0
    loss_sum = 0.0
    with torch.inference_mode():
        for i in range(0, len(y), batch):
            xb = normalise(torch.from_numpy(np.array(x[i : i + batch])), ds)  # writable copy
            yb = torch.from_numpy(np.asarray(y[i : i + batch]))
            logits = forward(xb)
            loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(1) == yb).sum())
    return 100.0 * correct / len(y), loss_sum / len(y)


class Train(Evaluator):
    """Trains each candidate briefly on a dataset and scores held-out top-1 accuracy.

    Args:
        data: The dataset: ``idx:DIR``, ``npz:FILE`` or ``folder:DIR`` (see
            :mod:`archsearch.data`).
        epochs, steps, time_limit, batch_size, lr, weight_decay, warmup, label_smoothing,
        augment, holdout, val_fraction, train_size, eval_size, seed: The :class:`Recipe`.
        threads: torch's intra-op threads during training (default: torch's choice).
        device: ``auto`` (CUDA where torch sees a GPU, else the CPU), ``cpu``, ``cuda`` or
            ``cuda:N``; the run states the device it resolved to. precision: ``fp32``,
            ``bf16`` (autocast) or ``fp16`` (autocast and a gradient scaler; CUDA only).
            channels_last: train with channels-last tensors (faster convolutions on GPUs).

    Determinism: on the CPU the same seed gives the same accuracy bit for bit (same machine
    and thread count). On a GPU the random draws are the same (they come from a CPU
    generator), but cuDNN and atomic reductions make results reproducible only to within
    noise unless ``torch.use_deterministic_algorithms(True)`` is set by the caller.
    """

    name = "train"
    cheap = False
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("accuracy", "max", "top-1 accuracy (%) on the held-out split after training"),
        Metric("loss", "min", "held-out cross-entropy after training"),
        Metric("train_loss", "min", "mean training loss of the last epoch"),
        Metric("epochs", "max", "epochs trained (fractional when stopped by steps or time)"),
        Metric("train_seconds", "min", "wall time of training and evaluation (s)"),
    )

    def __init__(self, *, data: str | None = None, threads: int | None = None, **recipe: Any):
        if not data:
            raise UserError(
                "--data: the train score needs a dataset, e.g. --data idx:path/to/fashion-mnist "
                "(also npz:FILE or folder:DIR)"
            )
        from archsearch.data import absolute_ref, load_dataset

        unknown = sorted(set(recipe) - set(Recipe.__dataclass_fields__))
        if unknown:
            raise UserError(
                f"evaluator 'train' does not accept option {unknown[0]!r}; accepted: "
                f"{', '.join(sorted(self.option_names()))}"
            )
        self.recipe = Recipe(**recipe)
        self.device = resolve_device(self.recipe.device)  # a missing GPU is said before a run
        autocast(self.device, self.recipe.precision)
        self.data = absolute_ref(data)
        self.threads = threads
        self.dataset = load_dataset(data)
        r = self.recipe  # the split is checked now, not once per candidate
        self.dataset.split(holdout=r.holdout, val_fraction=r.val_fraction, seed=r.seed)

    @classmethod
    def option_names(cls) -> frozenset[str]:
        return frozenset({"data", "threads", *Recipe.__dataclass_fields__})

    def device_used(self) -> str | None:
        return describe_device(self.device)

    def notes(self) -> list[str]:
        r = self.recipe
        layout = ", channels-last" if r.channels_last else ""
        return [f"train: on {describe_device(self.device)}, {r.precision}{layout}"]

    def _reporter(self, label: str) -> StepCallback | None:
        report = self.on_step
        if report is None:
            return None
        return lambda done, total: report(label, done, total)

    def config(self) -> dict[str, object]:
        out: dict[str, object] = {"data": self.data, "threads": self.threads}
        out.update({k: getattr(self.recipe, k) for k in Recipe.__dataclass_fields__})
        return out

    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        import torch

        from archsearch.build import build, check_memory

        ds = self.dataset
        out = []
        for arch in archs:
            net_arch = arch.with_input(ds.shape, ds.num_classes)
            check_memory(net_arch, batch=self.recipe.batch_size)
            threads = torch.get_num_threads()
            with torch.random.fork_rng():
                torch.manual_seed(self.recipe.seed)
                model = build(net_arch)
                if self.threads:
                    torch.set_num_threads(self.threads)
                try:
                    r = train(
                        model,
                        ds,
                        self.recipe,
                        on_step=self._reporter(arch.digest[:12]),
                        on_epoch=self.on_report,
                    )
                finally:
                    torch.set_num_threads(threads)
            out.append(
                {
                    "accuracy": r.accuracy,
                    "loss": r.loss,
                    "train_loss": r.train_loss,
                    "epochs": r.epochs,
                    "train_seconds": r.seconds,
                }
            )
        return out

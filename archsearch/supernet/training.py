"""Supernet training with multi-architecture sampling, checkpoints and resume.

ViT-ResNAS (Liao et al., 2021) trains its supernet with *multi-architectural sampling*: each
batch is split into ``K`` sub-batches and each sub-batch runs through a different sampled
sub-network, all in one forward-backward pass, so one optimiser step updates the weights of
``K`` members. With the optional *sandwich rule* (Yu et al., BigNAS, ECCV 2020) the first two
sub-batches always go to the largest and the smallest member, the others to random ones.

The recipe is the ``train`` evaluator's (AdamW, warm-up then cosine, label smoothing,
crop+flip), on the same seeded training/held-out split, so that the ``supernet`` evaluator
scores members on images the supernet never trained on. After every epoch the checkpoint
(bank, optimiser, schedule, random states, curve) is written to disk atomically and the
database row (:meth:`archsearch.db.Store.update_supernet`) gets the curve; a training resumes
from its last complete epoch and ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from archsearch import weights
from archsearch.errors import UserError, check_ranges
from archsearch.evaluators.training import (
    AUGMENTS,
    PRECISIONS,
    RESIDENT_BYTES,
    accuracy_of,
    augment,
    autocast,
    describe_device,
    normalise,
    optimizer,
    resolve_device,
)
from archsearch.spaces import Space, load_space
from archsearch.supernet.alphas import Alphas, entropy, temperature
from archsearch.supernet.model import FORMAT, Supernet, SupernetError, space_fingerprint

if TYPE_CHECKING:
    from archsearch.data import Dataset
    from archsearch.spec import Architecture


@dataclass(frozen=True)
class SupernetConfig:
    """How a supernet is trained (stored in the checkpoint and the database).

    Attributes:
        space: The space (built-in name or YAML path).
        data: The dataset reference (``idx:DIR``, ``npz:FILE``, ``folder:DIR``).
        epochs: Passes over the training split.
        subnets_per_step: ``K``: sub-batches per batch, each through its own sampled member.
        sandwich: Largest and smallest member take the first two sub-batches of every step.
        batch_size: Images per step (split among the ``K`` members).
        lr, weight_decay, warmup, label_smoothing, augment: The recipe.
        val_fraction: The held-out share of the training images (never trained on).
        train_size: Train on a seeded subset of this many images.
        seed: Seed of the weights, the sampled members, the order and the augmentation.
        distill: In-place distillation (Yu et al., BigNAS, 2020): the largest member learns
            from the labels, every other member of the step half from the labels and half
            from the largest's predictions on its own sub-batch (soft cross-entropy; the
            teacher's forward pass has no gradient). Pure distillation, as in BigNAS, collapsed
            on ``vit-resnas-small`` with K = 4 (8% held-out accuracy for the largest and the
            smallest member after one epoch of Fashion-MNIST). Needs ``sandwich``.
        alphas: Learn architecture parameters per block position with Gumbel-softmax
            (:mod:`archsearch.supernet.alphas`), Adam at ``alpha_lr``, the temperature
            falling from ``tau_start`` to ``tau_end``; stored with the checkpoint.
    """

    space: str
    data: str
    epochs: int = 5
    subnets_per_step: int = 4
    sandwich: bool = False
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: float = 0.05
    label_smoothing: float = 0.1
    augment: str = "crop+flip"
    val_fraction: float = 0.1
    train_size: int | None = None
    seed: int = 0
    alphas: bool = False
    distill: bool = False
    alpha_lr: float = 3e-3
    tau_start: float = 5.0
    tau_end: float = 0.5

    def __post_init__(self) -> None:
        k = self.subnets_per_step
        checks: list[tuple[str, object, bool, str]] = [
            ("--epochs", self.epochs, self.epochs >= 1, "a positive whole number, e.g. 5"),
            ("--subnets-per-step", k, k >= 1, "at least 1, e.g. 4"),
            (
                "--subnets-per-step",
                k,
                not self.sandwich or k >= 2,
                "at least 2 with --sandwich (largest and smallest member)",
            ),
            (
                "--batch-size",
                self.batch_size,
                self.batch_size >= 2 * k,
                f"at least 2 x K = {2 * k}",
            ),
            (
                "--distill",
                self.distill,
                not self.distill or self.sandwich,
                "only with --sandwich (the largest member is the teacher)",
            ),
            ("--lr", self.lr, self.lr > 0, "positive"),
            ("weight_decay", self.weight_decay, self.weight_decay >= 0, "0 or more"),
            ("warmup", self.warmup, 0 <= self.warmup < 1, "in [0, 1)"),
            ("label_smoothing", self.label_smoothing, 0 <= self.label_smoothing < 1, "in [0, 1)"),
            ("augment", self.augment, self.augment in AUGMENTS, f"one of {', '.join(AUGMENTS)}"),
            ("val_fraction", self.val_fraction, 0 < self.val_fraction < 1, "in (0, 1)"),
            ("alpha_lr", self.alpha_lr, self.alpha_lr > 0, "positive"),
            ("tau_start", self.tau_start, self.tau_start > 0, "positive"),
            (
                "tau_end",
                self.tau_end,
                0 < self.tau_end <= self.tau_start,
                "positive and at most tau_start",
            ),
            (
                "--train-size",
                self.train_size,
                self.train_size is None or self.train_size >= self.batch_size,
                f"at least the batch size ({self.batch_size})",
            ),
        ]
        check_ranges(checks)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SupernetConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Checkpoint:
    """A loaded checkpoint: the supernet and what training needs to go on."""

    supernet: Supernet
    config: SupernetConfig
    epoch: int
    curve: list[dict[str, Any]]
    state: dict[str, Any]
    path: Path
    alphas: dict[str, torch.Tensor] | None = None
    """The architecture parameters (logits per block position's type label), when trained
    with ``alphas``."""


def check_space(state: dict[str, Any], space: Space, path: Path, flag: str = "") -> None:
    """Refuses a checkpoint (its ``state``) trained for another space or another version of
    the space's YAML than ``space``; ``flag`` names the option that gave it."""
    if space.name != state["space"] or space_fingerprint(space) != state["space_digest"]:
        raise SupernetError(
            f"{flag + ': ' if flag else ''}checkpoint {str(path)!r} was trained for space "
            f"{state['space']!r} (YAML {state['space_digest']}), not {space.name!r} "
            f"(YAML {space_fingerprint(space)}); use a checkpoint of this space or "
            f"--space {state['space']}"
        )


CHECKPOINT_KIND = "archsearch-supernet"
_RETRAIN = (
    "convert it with `archsearch supernet migrate PATH` (reads tensors only) or retrain it "
    "with `archsearch supernet train`"
)


def load_checkpoint(path: str | Path, *, space: Space | None = None) -> Checkpoint:
    """Loads a supernet checkpoint written by :func:`train_supernet`.

    Checkpoints are safetensors files (:mod:`archsearch.weights`): nothing in them is
    unpickled. A checkpoint of an older archsearch (a ``torch.save`` pickle) is refused with
    the command that converts it.

    Raises:
        SupernetError: the file is missing, a pickle, not a checkpoint, its format version is
            not this archsearch's, or it was trained for another space (or another version of
            the space's YAML) than ``space``.
    """
    p = Path(path)
    try:
        tensors, meta = weights.load(
            p, kind=CHECKPOINT_KIND, what="supernet checkpoint", fix=_RETRAIN
        )
    except weights.WeightsError as e:
        missing = "does not exist" in str(e)
        hint = "; train one with `archsearch supernet train` or give its path or id"
        hint = hint if missing else ""
        raise SupernetError(f"{e}{hint}") from None
    if meta.get("format") != FORMAT:
        raise SupernetError(
            f"checkpoint {str(p)!r} has format version {meta.get('format')}, this archsearch "
            f"reads version {FORMAT}; retrain it with `archsearch supernet train`"
        )
    try:
        state = _unflatten(tensors, meta)
        config = SupernetConfig.from_dict(state["config"])
        c, h, w = (int(v) for v in state["input_shape"])
        num_classes = int(state["num_classes"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise SupernetError(
            f"checkpoint {str(p)!r} is incomplete or malformed ({type(e).__name__}: {e}); "
            "retrain it"
        ) from None
    loaded = load_space(config.space) if space is None else space
    check_space(state, loaded, p)
    net = Supernet(loaded, input_shape=(c, h, w), num_classes=num_classes, init=False)
    if net.keys != state["keys"]:
        raise SupernetError(
            f"checkpoint {str(p)!r} does not match the supernet of space {loaded.name!r} "
            "(its weight layout differs); retrain it"
        )
    try:
        net.load_state_dict(state["model"])
    except RuntimeError as e:
        raise SupernetError(
            f"checkpoint {str(p)!r} does not fit the supernet of space {loaded.name!r}: "
            f"{str(e).splitlines()[0][:200]}; retrain it"
        ) from None
    alphas = state.get("alphas") or None
    return Checkpoint(net, config, int(state["epoch"]), list(state["curve"]), state, p, alphas)


def _flatten(payload: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A checkpoint's state -> (tensors, JSON metadata) for :func:`archsearch.weights.save`.

    Tensors are named ``model/<key>``, ``optimizer/<param>/<key>`` and ``generator``; the
    optimiser's per-parameter scalars and everything else go to the metadata.
    """
    tensors: dict[str, torch.Tensor] = {f"model/{k}": v for k, v in payload["model"].items()}
    opt = payload["optimizer"]
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in opt["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{pid}/{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    tensors["generator"] = payload["generator"]
    for label, t in (payload.get("alphas") or {}).items():
        tensors[f"alphas/{label}"] = t
    for pid, entry in (payload.get("alpha_optimizer") or {"state": {}})["state"].items():
        for key, value in entry.items():
            tensors[f"alpha_optimizer/{pid}/{key}"] = value
    skip = ("model", "optimizer", "generator", "alphas", "alpha_optimizer")
    meta = {k: v for k, v in payload.items() if k not in skip}
    if payload.get("alpha_optimizer") is not None:
        meta["alpha_param_groups"] = payload["alpha_optimizer"]["param_groups"]
    meta["optimizer"] = {"param_groups": opt["param_groups"], "scalars": scalars}
    return tensors, meta


def _unflatten(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`_flatten`."""
    model: dict[str, torch.Tensor] = {}
    opt_state: dict[int, dict[str, Any]] = {}
    alphas: dict[str, torch.Tensor] = {}
    alpha_state: dict[int, dict[str, Any]] = {}
    for name, t in tensors.items():
        if name.startswith("model/"):
            model[name[len("model/") :]] = t
        elif name.startswith("alphas/"):
            alphas[name[len("alphas/") :]] = t
        elif name.startswith("alpha_optimizer/"):
            _, pid, key = name.split("/", 2)
            alpha_state.setdefault(int(pid), {})[key] = t
        elif name.startswith("optimizer/"):
            _, pid, key = name.split("/", 2)
            opt_state.setdefault(int(pid), {})[key] = t
    for pid, entry in meta["optimizer"]["scalars"].items():
        opt_state.setdefault(int(pid), {}).update(entry)
    state = dict(meta)
    state["model"] = model
    state["optimizer"] = {
        "state": dict(sorted(opt_state.items())),
        "param_groups": meta["optimizer"]["param_groups"],
    }
    state["generator"] = tensors["generator"]
    state["alphas"] = alphas
    if "alpha_param_groups" in meta:
        state["alpha_optimizer"] = {
            "state": dict(sorted(alpha_state.items())),
            "param_groups": meta["alpha_param_groups"],
        }
    return state


def _save(path: Path, payload: dict[str, Any]) -> None:
    """Writes atomically: a crash mid-write leaves the previous checkpoint intact."""
    tensors, meta = _flatten(payload)
    weights.save(path, tensors, meta)


def migrate_checkpoint(old: str | Path, new: str | Path) -> Checkpoint:
    """Converts a checkpoint of an older archsearch (a ``torch.save`` pickle of format 1) to
    the safetensors format, reading it with ``torch.load(weights_only=True)``: tensors and
    plain containers only, so a crafted file is refused instead of run.

    Raises:
        SupernetError: the old file cannot be read safely or is not a format-1 checkpoint.
    """
    try:
        state = weights.read_legacy(old)
    except weights.WeightsError as e:
        raise SupernetError(f"supernet migrate: {e}") from None
    if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
        raise SupernetError(f"supernet migrate: {str(old)!r} is not an archsearch checkpoint")
    if state.get("format") != 1:
        raise SupernetError(
            f"supernet migrate: {str(old)!r} has format {state.get('format')!r}; only format 1 "
            "(pickle) checkpoints are converted"
        )
    payload = {**state, "format": FORMAT}
    try:
        _save(Path(new), payload)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise SupernetError(
            f"supernet migrate: {str(old)!r} is incomplete ({type(e).__name__}: {e})"
        ) from None
    return load_checkpoint(new)


def training_device(device: str | None, precision: str) -> torch.device:
    """The device a supernet trains on (``--device``), checked with ``--precision``.

    Raises:
        UserError: an unknown precision or device, CUDA where torch sees none, fp16 on the CPU.
    """
    if precision not in PRECISIONS:
        raise UserError(f"--precision: {precision[:40]!r} is not one of {', '.join(PRECISIONS)}")
    dev = resolve_device(device, flag="--device")
    autocast(dev, precision)
    return dev


StepCallback = Callable[[int, int], None]
EpochCallback = Callable[[int, dict[str, Any]], None]


def train_supernet(
    config: SupernetConfig,
    path: str | Path,
    *,
    resume: Checkpoint | None = None,
    threads: int | None = None,
    device: str | None = None,
    precision: str = "fp32",
    eval_size: int = 500,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> Checkpoint:
    """Trains (or, with ``resume``, continues) a supernet; see the module docstring.

    Args:
        config: The training configuration.
        path: Where the checkpoint goes (rewritten after every epoch).
        resume: A loaded checkpoint of the same configuration to continue.
        threads: torch's intra-op threads while training.
        device: ``auto``/None (CUDA where torch sees a GPU, else the CPU), ``cpu``, ``cuda``
            or ``cuda:N``; each curve row names the device its epoch ran on, and a training
            may resume on another device (the checkpoint is stored on the CPU).
        precision: ``fp32``, ``bf16`` (autocast) or ``fp16`` (autocast and a gradient
            scaler; CUDA only).
        eval_size: Held-out images on which the curve's accuracies are measured.
        on_step: ``(steps done, total steps)`` after every optimiser step (progress bars).
        on_epoch: ``(epoch, curve row)`` after every epoch, once the checkpoint is written
            (the CLI stores the curve in the database).
    """
    import numpy as np
    import torch.nn.functional as F

    from archsearch.data import load_dataset

    start = time.monotonic()
    dev = training_device(device, precision)  # refused before any work
    amp = autocast(dev, precision)
    ds = load_dataset(config.data)
    space = load_space(config.space)
    train_idx, held_idx = ds.split(
        holdout="val", val_fraction=config.val_fraction, seed=config.seed
    )
    rng_np = np.random.default_rng(config.seed)
    if config.train_size is not None and config.train_size < len(train_idx):
        train_idx = np.sort(rng_np.choice(train_idx, config.train_size, replace=False))
    held = held_idx[:eval_size]
    x_train = normalise(torch.from_numpy(np.ascontiguousarray(ds.x[train_idx])), ds)
    y_train = torch.from_numpy(ds.y[train_idx])
    n, bs, k = len(y_train), config.batch_size, config.subnets_per_step
    if n < bs:
        raise UserError(
            f"--batch-size: {bs} is larger than the {n} training images of {config.data}"
        )
    per_epoch = n // bs
    total = per_epoch * config.epochs

    if resume is None:
        net = Supernet(space, input_shape=ds.shape, num_classes=ds.num_classes, seed=config.seed)
    else:
        net = resume.supernet
    net.to(dev)  # before the optimiser: its state follows the parameters
    if dev.type != "cpu" and x_train.numel() * 4 <= RESIDENT_BYTES:
        x_train, y_train = x_train.to(dev), y_train.to(dev)  # resident: no copy per step
    scaler = torch.amp.GradScaler(dev.type, enabled=precision == "fp16")
    opt, sched = optimizer(
        net.parameters(),
        lr=config.lr,
        weight_decay=config.weight_decay,
        warmup=config.warmup,
        total=total,
    )
    g = torch.Generator().manual_seed(config.seed)
    rng = random.Random(config.seed)
    epoch, curve = 0, []
    payload: dict[str, Any] = {}
    if resume is not None:
        payload = resume.state
        opt.load_state_dict(resume.state["optimizer"])
        sched.load_state_dict(resume.state["scheduler"])
        g.set_state(resume.state["generator"])
        version, internal, gauss = resume.state["rng"]
        rng.setstate((version, tuple(internal), gauss))
        epoch, curve = resume.epoch, list(resume.curve)
    alphas = Alphas.for_space(space) if config.alphas else None
    alpha_opt = (
        torch.optim.Adam(alphas.parameters(), lr=config.alpha_lr, betas=(0.5, 0.999))
        if alphas is not None and alphas.logits
        else None
    )
    if resume is not None and alphas is not None and resume.alphas is not None:
        alphas.load(resume.alphas)
        if alpha_opt is not None and "alpha_optimizer" in resume.state:
            alpha_opt.load_state_dict(resume.state["alpha_optimizer"])
    smallest, largest = net.member_extremes()
    pad = max(1, ds.shape[1] // 8)
    threads_before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        while epoch < config.epochs:
            t0 = time.monotonic()
            net.train()
            order = torch.randperm(n, generator=g)
            losses = []
            for i in range(per_epoch):
                idx = order[i * bs : (i + 1) * bs].to(x_train.device)
                xb = augment(x_train[idx], config.augment, pad, g).to(dev, non_blocking=True)
                yb = y_train[idx].to(dev, non_blocking=True)
                step = epoch * per_epoch + i
                members = _members(space, rng, g, k, alphas, step, total, config)
                if config.sandwich:
                    members[0], members[1] = (largest, {}), (smallest, {})
                loss = xb.new_zeros((), dtype=torch.float32)
                chunks = list(zip(members, xb.chunk(k), yb.chunk(k), strict=True))
                for j, ((arch, gates), xs, ys) in enumerate(chunks):
                    with amp:
                        logits = net(xs, arch, gates).float()
                    part = F.cross_entropy(logits, ys, label_smoothing=config.label_smoothing)
                    if config.distill and j > 0:  # half the loss from the largest's predictions
                        with torch.no_grad(), amp:
                            teacher = net(xs, largest).float().softmax(-1)
                        soft = -(teacher * logits.log_softmax(-1)).sum(-1).mean()
                        part = (part + soft) / 2
                    loss = loss + part * (len(ys) / len(yb))
                opt.zero_grad(set_to_none=True)
                if alpha_opt is not None:
                    alpha_opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
                scaler.step(opt)
                if alpha_opt is not None:
                    scaler.step(alpha_opt)
                scaler.update()
                sched.step()
                losses.append(float(loss.detach()))
                if on_step is not None:
                    on_step(epoch * per_epoch + i + 1, total)
            epoch += 1
            row = {
                "epoch": float(epoch),
                "train_loss": float(np.mean(losses)),
                "seconds": time.monotonic() - t0,
                "images_per_second": per_epoch * bs / max(1e-9, time.monotonic() - t0),
                "device": describe_device(dev),
                "precision": precision,
            }
            bn_images = x_train[order[: min(n, 256)].to(x_train.device)]
            for label, arch in (("largest", largest), ("smallest", smallest)):
                acc, _ = member_accuracy(
                    net, arch, ds, ds.x[held], ds.y[held], bn_images=bn_images, precision=precision
                )
                row[f"accuracy_{label}"] = acc
            curve.append(row)
            version, internal, gauss = rng.getstate()
            payload = {
                "kind": CHECKPOINT_KIND,
                "format": FORMAT,
                "space": space.name,
                "space_digest": space_fingerprint(space),
                "input_shape": list(net.input_shape),
                "num_classes": net.num_classes,
                "keys": net.keys,
                "config": config.to_dict(),
                "epoch": epoch,
                "curve": curve,
                "model": net.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "generator": g.get_state(),
                "rng": [version, list(internal), gauss],
                "seconds": time.monotonic() - start,
            }
            if alphas is not None:
                payload["alphas"] = alphas.state()
                row["alpha_entropy"] = entropy(alphas.probabilities())
            if alpha_opt is not None:
                payload["alpha_optimizer"] = alpha_opt.state_dict()
            _save(Path(path), payload)
            if on_epoch is not None:
                on_epoch(epoch, row)
    finally:
        torch.set_num_threads(threads_before)
    return Checkpoint(
        net, config, epoch, curve, payload, Path(path), alphas.state() if alphas else None
    )


def _members(
    space: Space,
    rng: random.Random,
    g: torch.Generator,
    k: int,
    alphas: Alphas | None,
    step: int,
    total: int,
    config: SupernetConfig,
) -> list[tuple[Architecture, dict[str, torch.Tensor]]]:
    """The ``k`` members of a step and their gates: uniform samples, or with ``alphas`` the
    Gumbel-softmax draws (a uniform sample where no draw makes a member)."""
    out: list[tuple[Architecture, dict[str, torch.Tensor]]] = []
    tau = temperature(step, total, config.tau_start, config.tau_end)
    for _ in range(k):
        drawn = alphas.sample(rng, g, tau) if alphas is not None and alphas.logits else None
        out.append(drawn if drawn is not None else (space.sample(rng), {}))
    return out


def member_accuracy(
    net: Supernet,
    arch: Architecture,
    ds: Dataset,
    x: Any,
    y: Any,
    *,
    bn_images: torch.Tensor | None = None,
    batch: int = 500,
    precision: str = "fp32",
) -> tuple[float, float]:
    """Held-out top-1 (%) and mean loss of member ``arch`` with inherited weights.

    Runs the member straight on the bank (no copy), on the device the supernet is on, in
    ``precision`` (autocast for bf16/fp16). When the member has BatchNorm and
    ``bn_images`` (normalised training images) are given, its statistics are first re-estimated
    on them in one pass (fresh buffers: the bank's are not touched), since the bank's running
    averages mix every member trained.
    """
    from torch import nn

    m = net.member(arch)
    state = {k: v.detach() for k, v in net.tensors(arch).items()}
    dev = net.device
    amp = autocast(dev, precision)
    was = net.training
    try:
        if m.has_bn and bn_images is not None:
            bns = [
                (name, mod)
                for name, mod in m.module.named_modules()
                if isinstance(mod, nn.modules.batchnorm._BatchNorm)
            ]
            momenta = [mod.momentum for _, mod in bns]
            for name, mod in bns:
                prefix = f"{name}." if name else ""
                state[prefix + "running_mean"] = torch.zeros(mod.num_features, device=dev)
                state[prefix + "running_var"] = torch.ones(mod.num_features, device=dev)
                state[prefix + "num_batches_tracked"] = torch.zeros(
                    (), dtype=torch.long, device=dev
                )
                mod.momentum = None  # a plain average over the pass below
            try:
                m.module.train()
                with torch.no_grad(), amp:
                    torch.func.functional_call(m.module, state, (bn_images.to(dev),), strict=True)
            finally:
                for (_, mod), momentum in zip(bns, momenta, strict=True):
                    mod.momentum = momentum
        module = m.module.eval()

        def forward(xb: torch.Tensor) -> torch.Tensor:
            with amp:
                out = torch.func.functional_call(module, state, (xb.to(dev),), strict=True)
            return out.float().cpu()  # type: ignore[no-any-return]

        return accuracy_of(
            forward,
            x,
            y,
            ds,
            batch=batch,
        )
    finally:
        net.train(was)


def importance(checkpoint: str) -> dict[str, dict[str, float]]:
    """``softmax(alpha)`` per block position of a checkpoint trained with ``alphas`` (what
    slimming's ``importance`` option takes).

    Raises:
        UserError: the checkpoint has no architecture parameters.
    """
    ck = load_checkpoint(checkpoint)
    if not ck.alphas:
        raise UserError(
            f"importance {checkpoint}: the supernet was trained without --alphas; retrain it "
            "with `archsearch supernet train --alphas ...`"
        )
    return {
        label: dict(
            zip(
                ck.supernet.space.labels()[label],
                torch.softmax(t.float(), 0).tolist(),
                strict=True,
            )
        )
        for label, t in ck.alphas.items()
    }

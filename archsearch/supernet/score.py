"""The ``supernet`` evaluator: held-out accuracy of members with weights inherited from a
trained supernet (ViT-ResNAS, Liao et al., 2021), no training per candidate.

It lives with the supernet it reads (a layer above the evaluators) and joins the evaluator
registry as a plugin would, through the entry point ``archsearch.evaluators: supernet`` in
``pyproject.toml``.

Each member runs straight on the supernet's shared weights (:mod:`archsearch.supernet.model`)
at the dataset's shape; members with BatchNorm get their statistics re-estimated first on
``bn_images`` training images (one pass, fresh buffers), since the supernet's running averages
mix every member it trained. Scores are measured on the first ``eval_size`` images of the
held-out split the supernet was trained *without* (its data, ``val_fraction`` and seed), in
batches of ``batch``. With the defaults a ``vit-resnas-small`` member takes a fraction of a
second on a 2-core CPU (see the README's figures).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from archsearch.errors import UserError, check_ranges
from archsearch.evaluators.base import Evaluator, Metric
from archsearch.evaluators.training import PRECISIONS
from archsearch.spec import Architecture

if TYPE_CHECKING:
    from archsearch.spaces import Space


class SupernetScore(Evaluator):
    """Scores members with inherited weights.

    Args:
        supernet: The checkpoint file (``archsearch supernet train`` writes it; the CLI also
            takes a supernet id of the database and resolves it to the file).
        data: The dataset, if it moved since training (default: the one trained on).
        eval_size: Held-out images per member (the first ones of the held-out split).
        bn_images: Training images for re-estimating BatchNorm statistics (0: keep the
            supernet's).
        batch: Images per forward pass.
        threads: torch's intra-op threads (default: torch's choice).
        device: ``auto`` (CUDA where torch sees a GPU, else the CPU), ``cpu``, ``cuda`` or
            ``cuda:N``; stored with every trial it scores.
        precision: ``fp32``, or ``bf16``/``fp16`` autocast (fp16 on CUDA only).
    """

    name = "supernet"
    cheap = True
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric(
            "supernet_accuracy",
            "max",
            "top-1 accuracy (%) on the held-out split with weights inherited from a supernet",
        ),
        Metric("supernet_loss", "min", "held-out cross-entropy with inherited weights"),
    )

    def __init__(
        self,
        *,
        supernet: str | None = None,
        data: str | None = None,
        eval_size: int = 500,
        bn_images: int = 256,
        batch: int = 500,
        threads: int | None = None,
        device: str = "auto",
        precision: str = "fp32",
    ) -> None:
        if not supernet:
            raise UserError(
                "--supernet: the supernet score needs a trained supernet: a checkpoint file or "
                "its id in the database (archsearch supernet train ... prints both)"
            )
        check_ranges(
            [
                ("eval_size", eval_size, eval_size >= 1, ">= 1"),
                ("bn_images", bn_images, bn_images >= 0, ">= 0"),
                ("batch", batch, batch >= 1, ">= 1"),
                ("precision", precision, precision in PRECISIONS, " or ".join(PRECISIONS)),
            ]
        )
        import numpy as np
        import torch

        from archsearch.data import absolute_ref, load_dataset
        from archsearch.evaluators.training import autocast, normalise, resolve_device
        from archsearch.supernet import load_checkpoint

        self.device_name, self.precision = device, precision
        self.device = resolve_device(device, flag="supernet score device")
        autocast(self.device, precision)  # fp16 on the CPU: one line before the run

        self.path = str(Path(supernet).resolve())
        self.checkpoint = load_checkpoint(self.path)
        cfg = self.checkpoint.config
        self.data = absolute_ref(data) if data else cfg.data
        self.dataset = load_dataset(self.data)
        net = self.checkpoint.supernet.to(self.device)
        if self.dataset.shape != net.input_shape or self.dataset.num_classes != net.num_classes:
            raise UserError(
                f"--data: {self.data} has images {list(self.dataset.shape)} and "
                f"{self.dataset.num_classes} classes; the supernet was trained on "
                f"{list(net.input_shape)} and {net.num_classes}"
            )
        train_idx, held_idx = self.dataset.split(
            holdout="val", val_fraction=cfg.val_fraction, seed=cfg.seed
        )
        self.held = held_idx[:eval_size]
        self.eval_size, self.batch, self.threads = eval_size, batch, threads
        self.bn_count = bn_images
        picked = train_idx[:bn_images]
        self.bn = (
            normalise(
                torch.from_numpy(np.ascontiguousarray(self.dataset.x[picked])), self.dataset
            ).to(self.device)
            if bn_images
            else None
        )

    @classmethod
    def option_names(cls) -> frozenset[str]:
        return frozenset(
            {
                "supernet",
                "data",
                "eval_size",
                "bn_images",
                "batch",
                "threads",
                "device",
                "precision",
            }
        )

    def device_used(self) -> str | None:
        from archsearch.evaluators.training import describe_device

        return describe_device(self.device)

    def notes(self) -> list[str]:
        return [f"supernet: on {self.device_used()}, {self.precision}"]

    def check_space(self, space: Space) -> None:
        """Refuses a space other than the one the checkpoint was trained for (or another
        version of its YAML)."""
        from archsearch.supernet.training import check_space

        check_space(self.checkpoint.state, space, self.checkpoint.path, flag="--supernet")

    def config(self) -> dict[str, object]:
        return {
            "supernet": self.path,
            "data": self.data,
            "eval_size": self.eval_size,
            "bn_images": self.bn_count,
            "batch": self.batch,
            "threads": self.threads,
            "device": self.device_name,
            "precision": self.precision,
        }

    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        import torch

        from archsearch.supernet import member_accuracy

        net = self.checkpoint.supernet
        ds = self.dataset
        out: list[dict[str, Any]] = []
        threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            for arch in archs:
                net.check_member(arch)  # a non-member is refused with contains's reason
                acc, loss = member_accuracy(
                    net,
                    arch,
                    ds,
                    ds.x[self.held],
                    ds.y[self.held],
                    bn_images=self.bn,
                    batch=self.batch,
                    precision=self.precision,
                )
                out.append({"supernet_accuracy": acc, "supernet_loss": loss})
        finally:
            torch.set_num_threads(threads)
        return out

"""Training on each device torch sees, side by side: the CPU, and CUDA where there is a GPU.

For every device (``cpu``, then ``cuda`` when ``torch.cuda.is_available()``) and precision
(fp32 everywhere; bf16 and fp16 on CUDA), this trains:

* the ``train`` score's member: ``hybrid-small``'s seeded sample (seed 0) on a seeded
  ``--train-size`` subset of Fashion-MNIST for ``--epochs``, then its held-out top-1 on the
  score's 10% validation split: accuracy, and images per second (training images x epochs /
  the score's wall time, evaluation included);
* the ``vit-resnas-small`` supernet (K = 4 sub-networks per step, sandwich rule) for
  ``--supernet-epochs`` on the same subset: images per second and the largest member's held-out
  accuracy.

The CUDA rows answer "does a candidate trained on the GPU reach the CPU's accuracy, and how
much faster is it"; random draws (crops, flips, order) come from a CPU generator, so both
devices see the same batches. With ``--latency`` on a GPU it also runs the CUDA latency
device's look-up-table check (``archsearch latency profile`` and ``latency check --device
cuda`` on the tiny test space). Rows go to ``--out`` (JSON). About a minute on a 2-core CPU.

Usage:
    python benchmarks/accelerators.py --data ../shared/data/fashion-mnist [--train-size 5000]
        [--epochs 1] [--supernet-epochs 1] [--latency] [--out accelerators.json]

FLOP convention: 1 FLOP = 1 multiply-accumulate.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import archsearch
from archsearch.evaluators import EVALUATORS
from archsearch.evaluators.training import describe_device
from archsearch.supernet import SupernetConfig, train_supernet


def settings() -> list[tuple[str, str]]:
    """(device, precision) pairs to measure here."""
    out = [("cpu", "fp32")]
    if torch.cuda.is_available():
        out += [("cuda", "fp32"), ("cuda", "bf16"), ("cuda", "fp16")]
    return out


def train_row(ref: str, device: str, precision: str, train_size: int, epochs: int) -> dict:
    arch = archsearch.load_space("hybrid-small").sample(seed=0)
    ev = EVALUATORS.create(
        "train",
        data=ref,
        device=device,
        precision=precision,
        epochs=epochs,
        train_size=train_size,
        channels_last=device == "cuda",
    )
    (r,) = ev.evaluate([arch])
    return {
        "what": "train score",
        "device": ev.device_used(),
        "precision": precision,
        "accuracy": round(r["accuracy"], 2),
        "images_per_second": round(train_size * r["epochs"] / r["train_seconds"], 1),
        "seconds": round(r["train_seconds"], 1),
        "macs": archsearch.count(arch).macs,
    }


def supernet_row(ref: str, device: str, precision: str, train_size: int, epochs: int) -> dict:
    config = SupernetConfig(
        space="vit-resnas-small",
        data=ref,
        epochs=epochs,
        subnets_per_step=4,
        sandwich=True,
        train_size=train_size,
    )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        ck = train_supernet(
            config, Path(tmp) / "s.safetensors", device=device, precision=precision
        )
        seconds = time.monotonic() - start
    last = ck.curve[-1]
    return {
        "what": "supernet training",
        "device": last["device"],
        "precision": precision,
        "accuracy": round(last["accuracy_largest"], 2),
        "images_per_second": round(last["images_per_second"], 1),
        "seconds": round(seconds, 1),
    }


def latency_rows() -> list[dict[str, Any]]:
    """The CUDA latency device's table checked against whole networks (GPU only)."""
    space = str(Path(__file__).resolve().parents[1] / "tests/fixtures/tiny_space.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/lat.db"
        base = [sys.executable, "-m", "archsearch"]
        subprocess.run(
            [*base, "latency", "profile", "--space", space, "--device", "cuda", "--db", db],
            check=True,
            capture_output=True,
        )
        check = [*base, "latency", "check", "--space", space, "--device", "cuda", "--n", "20"]
        out = subprocess.run(
            [*check, "--db", db, "-f", "json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return [{"what": "latency check cuda", **json.loads(out)}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="Fashion-MNIST's IDX folder")
    ap.add_argument("--train-size", type=int, default=5_000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--supernet-epochs", type=int, default=1)
    ap.add_argument("--latency", action="store_true", help="also check the CUDA latency LUT")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    ref = f"idx:{Path(args.data).resolve()}"
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads; GPU: "
        + (describe_device(torch.device("cuda")) if torch.cuda.is_available() else "none")
    )
    rows: list[dict[str, Any]] = []
    for device, precision in settings():
        for make in (train_row, supernet_row):
            epochs = args.epochs if make is train_row else args.supernet_epochs
            row = make(ref, device, precision, args.train_size, epochs)
            rows.append(row)
            print(
                f"{row['what']:>17} | {row['device']:<28} | {precision} | "
                f"{row['accuracy']:6.2f}% | {row['images_per_second']:8.1f} images/s | "
                f"{row['seconds']:6.1f} s"
            )
    cpu = {r["what"]: r for r in rows if r["device"] == "cpu"}
    for r in rows:
        if r["device"] != "cpu":
            base = cpu[r["what"]]
            print(
                f"{r['what']} {r['device']} {r['precision']}: "
                f"{r['images_per_second'] / base['images_per_second']:.1f}x the CPU's images/s, "
                f"accuracy {r['accuracy'] - base['accuracy']:+.2f} points"
            )
    if args.latency and torch.cuda.is_available():
        rows += latency_rows()
        print(json.dumps(rows[-1], indent=1))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

"""Does the supernet rank members like stand-alone training does? Measured here.

Trains the ``vit-resnas-small`` supernet on Fashion-MNIST (1x28x28, 10 classes) with
multi-architecture sampling (``K`` sub-networks per step; the sandwich rule unless
``--no-sandwich``) for ``--epochs`` over a seeded ``--train-size`` subset of the training
split; samples ``--members`` members (seeded; with ``--spread``, spread evenly by rank over
the MACs of 2000 samples instead); scores each with inherited weights on the held-out split
(10% of the training images, never trained on), then trains each member alone from scratch
with the same budget (the ``train`` evaluator's recipe, the same images, epochs and batch
size) and scores it on the same held-out images. Prints Kendall's tau and Spearman's rho
between the two accuracies, and the training throughput (images and sub-networks per second)
with K = 1 and K = 4 sub-networks per step, measured side by side on the same batches. With
``--repeats 2`` each member is also trained alone a second time from another initialisation
(same images, order and augmentation) and the two stand-alone rankings are compared: the noise
of stand-alone training bounds the agreement any cheap score can show. Rows go to ``--out``
(JSON).

With ``--ground-truth FILE`` the stand-alone results of an earlier run (``--out``) are reused,
so supernet variants (``--distill``, ``--supernet-epochs``, ``--subnets-per-step``) are compared
against one ground truth; the Kendall tau after every epoch but the last is printed too.
``--jobs N`` runs N stand-alone trainings at a time in separate processes (the threads shared).

Usage:
    python benchmarks/supernet_ranking.py --data ../shared/data/fashion-mnist [--epochs 6]
        [--train-size 10000 (0: the whole split)] [--members 12] [--subnets-per-step 4]
        [--no-sandwich] [--distill] [--supernet-epochs N] [--spread] [--repeats 1] [--jobs 1]
        [--ground-truth FILE] [--ground-truth-only] [--throughput-steps 15 (0: skip)]
        [--threads N] [--out supernet_ranking.json]

FLOP convention: 1 FLOP = 1 multiply-accumulate; MACs are at the space's 3x32x32.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import platform
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

import archsearch
from archsearch.data import load_dataset
from archsearch.evaluators.training import Recipe, augment, normalise, train
from archsearch.supernet import (
    Supernet,
    SupernetConfig,
    load_checkpoint,
    member_accuracy,
    train_supernet,
)

SPACE = "vit-resnas-small"


def throughput(ref: str, k: int, steps: int, batch: int, seed: int) -> float:
    """Images per second of supernet training steps with ``k`` sub-networks per step."""
    import torch.nn.functional as F

    ds = load_dataset(ref)
    space = archsearch.load_space(SPACE)
    net = Supernet(space, input_shape=ds.shape, num_classes=ds.num_classes, seed=seed)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    x = normalise(torch.from_numpy(np.ascontiguousarray(ds.x[: batch * (steps + 2)])), ds)
    y = torch.from_numpy(ds.y[: batch * (steps + 2)])
    elapsed = 0.0
    for s in range(steps + 2):  # two warm-up steps are not timed
        t0 = time.perf_counter()
        xb = augment(x[s * batch : (s + 1) * batch], "crop+flip", 3, g)
        yb = y[s * batch : (s + 1) * batch]
        loss = xb.new_zeros(())
        for xs, ys in zip(xb.chunk(k), yb.chunk(k), strict=True):
            loss = loss + F.cross_entropy(net(xs, space.sample(rng)), ys) * (len(ys) / batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s >= 2:
            elapsed += time.perf_counter() - t0
    return steps * batch / elapsed


@functools.cache
def choose_members(seed: int, count: int, spread: bool) -> list[Any]:
    """The members compared (seeded): random ones, or with ``spread`` evenly spaced by rank
    over the MACs of 2000 samples, from the cheapest to the dearest (computed once per
    process: every stand-alone training of a worker asks for them)."""
    space = archsearch.load_space(SPACE)
    rng = random.Random(seed + 1)
    if spread:
        pool = sorted(
            (space.sample(rng) for _ in range(2000)), key=lambda a: archsearch.count(a).macs
        )
        return [pool[round(i)] for i in np.linspace(0, len(pool) - 1, count)]
    return [space.sample(rng) for _ in range(count)]


_DATA: dict[str, Any] = {}


def standalone(job: dict[str, Any]) -> tuple[float, float]:
    """One stand-alone training (a worker's task): member ``index`` of
    :func:`choose_members`, initialised from seed ``seed + repeat``, trained with the
    ``train`` evaluator's recipe; returns (held-out accuracy %, seconds)."""
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    if job["data"] not in _DATA:
        _DATA[job["data"]] = load_dataset(job["data"])
    ds = _DATA[job["data"]]
    arch = choose_members(job["seed"], job["members"], job["spread"])[job["index"]]
    recipe = Recipe(
        epochs=job["epochs"],
        batch_size=job["batch_size"],
        train_size=job["train_size"],
        seed=job["seed"],
    )
    with torch.random.fork_rng():
        torch.manual_seed(job["seed"] + job["repeat"])  # initialisation; the recipe's seed is kept
        model = archsearch.build(arch.with_input(ds.shape, ds.num_classes))
        result = train(model, ds, recipe)
    return result.accuracy, result.seconds


def ground_truth(args: argparse.Namespace, ref: str, train_size: int | None) -> list[list[Any]]:
    """Stand-alone (accuracy, seconds) per member and repeat, ``--jobs`` trainings at a time
    (each on ``torch.get_num_threads() // jobs`` threads)."""
    jobs = [
        {
            "data": ref,
            "seed": args.seed,
            "members": args.members,
            "spread": args.spread,
            "index": i,
            "repeat": r,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "train_size": train_size,
            "threads": max(1, torch.get_num_threads() // args.jobs) if args.jobs > 1 else 0,
        }
        for i in range(args.members)
        for r in range(args.repeats)
    ]
    if args.jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            results = list(pool.map(standalone, jobs))
    else:
        results = []
        for job in jobs:
            results.append(standalone(job))
            acc, sec = results[-1]
            print(
                f"stand-alone member {job['index'] + 1}/{args.members} repeat {job['repeat']}: "
                f"{acc:.2f}% ({sec:.1f} s)",
                flush=True,
            )
    return [results[i * args.repeats : (i + 1) * args.repeats] for i in range(args.members)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/fashion-mnist")
    )
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--train-size", type=int, default=10000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--members", type=int, default=12)
    ap.add_argument("--subnets-per-step", type=int, default=4)
    ap.add_argument("--no-sandwich", dest="sandwich", action="store_false")
    ap.add_argument("--distill", action="store_true", help="in-place distillation (BigNAS)")
    ap.add_argument(
        "--supernet-epochs",
        type=int,
        default=0,
        help="the supernet's epochs (default: --epochs, the stand-alone trainings' budget)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch's threads for the supernet")
    ap.add_argument(
        "--spread",
        action="store_true",
        help="members at evenly spaced MAC quantiles of 2000 samples (default: random members)",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="stand-alone trainings per member from initialisation seeds seed, seed+1, ...; "
        "the first is the one compared with the supernet",
    )
    ap.add_argument(
        "--ground-truth-only",
        action="store_true",
        help="only the stand-alone trainings (with --repeats 2: the ceiling any score can "
        "reach); no throughput, no supernet",
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="stand-alone trainings run at a time, in separate processes sharing the threads",
    )
    ap.add_argument(
        "--ground-truth",
        type=Path,
        default=None,
        help="reuse the stand-alone results of an earlier --out (same --seed, --members, "
        "--spread, --epochs, --train-size; checked) instead of training the members again",
    )
    ap.add_argument(
        "--throughput-steps", type=int, default=15, help="0: do not measure the throughput"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error(f"--repeats: {args.repeats} is out of range; give 1 or more")
    if args.supernet_epochs < 0:
        ap.error(
            f"--supernet-epochs: {args.supernet_epochs} is negative; give 1 or more (0: --epochs)"
        )
    if args.threads is not None and not 1 <= args.threads <= 1024:
        ap.error(f"--threads: {args.threads} is out of range; give 1 to 1024")
    if not 1 <= args.jobs <= 64:
        ap.error(f"--jobs: {args.jobs} is out of range; give 1 to 64 (trainings at a time)")
    ref = args.data if ":" in args.data.split("/")[0] else f"idx:{args.data}"
    train_size = args.train_size or None  # 0: the whole training split
    torch.set_num_threads(torch.get_num_threads())
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; space {SPACE}; 1 FLOP = 1 MAC"
    )
    start = time.monotonic()

    rates: dict[int, float] = {}
    for k in (
        () if args.ground_truth_only or args.throughput_steps < 1 else (1, 4)
    ):  # side by side, same batches and seed
        rates[k] = throughput(ref, k, args.throughput_steps, args.batch_size, args.seed)
        print(
            f"throughput K={k}: {rates[k]:.1f} images/s, "
            f"{rates[k] / args.batch_size * k:.2f} sub-networks trained/s"
        )
    if rates:
        print(
            f"throughput ratio K=4 / K=1: images/s {rates[4] / rates[1]:.2f}, "
            f"sub-networks/s {4 * rates[4] / rates[1]:.2f}"
        )

    config = SupernetConfig(
        space=SPACE,
        data=ref,
        epochs=args.supernet_epochs or args.epochs,
        subnets_per_step=args.subnets_per_step,
        sandwich=args.sandwich,
        distill=args.distill,
        batch_size=args.batch_size,
        train_size=train_size,
        seed=args.seed,
    )
    ds = load_dataset(ref)
    train_idx, held_idx = ds.split(holdout="val", val_fraction=config.val_fraction, seed=args.seed)
    bn = normalise(torch.from_numpy(np.ascontiguousarray(ds.x[train_idx[:256]])), ds)
    members = choose_members(args.seed, args.members, args.spread)
    truth: list[list[Any]] | None = None
    if args.ground_truth is not None:
        try:
            earlier = json.loads(args.ground_truth.read_text())
            digests = [r["digest"] for r in earlier["rows"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            ap.error(
                f"--ground-truth: {str(args.ground_truth)[:200]!r} is not an --out file of this "
                f"script ({type(e).__name__}); give the JSON a --ground-truth-only run wrote"
            )
        if digests != [a.digest for a in members]:
            ap.error(
                f"--ground-truth: {args.ground_truth} holds other members; give the --seed, "
                "--members and --spread it was measured with"
            )
        for key in ("epochs", "train_size", "batch_size"):
            if earlier["args"][key] != str(getattr(args, key)):
                ap.error(
                    f"--ground-truth: {args.ground_truth} was trained with "
                    f"--{key.replace('_', '-')} {earlier['args'][key]}, not {getattr(args, key)}"
                )
        truth = [
            [(r["standalone"], r["standalone_seconds"])]
            + [(x, math.nan) for x in r["standalone_repeats"]]
            for r in earlier["rows"]
        ]
        args.repeats = len(truth[0])

    def inherited_all(net: Supernet) -> list[float]:
        return [
            member_accuracy(net, arch, ds, ds.x[held_idx], ds.y[held_idx], bn_images=bn)[0]
            for arch in members
        ]

    taus: list[float] = []

    def on_epoch(epoch: int, row: dict[str, Any], path: Path) -> None:
        print(f"supernet epoch {epoch}: {json.dumps(row)}", flush=True)
        if truth is not None and epoch < config.epochs:  # the ranking so far, from its checkpoint
            net = load_checkpoint(path).supernet
            tau_e = stats.kendalltau(inherited_all(net), [t[0][0] for t in truth]).statistic
            taus.append(float(tau_e))
            print(f"supernet epoch {epoch}: Kendall tau {tau_e:.3f}", flush=True)

    t0 = time.monotonic()
    ck = None
    if not args.ground_truth_only:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "supernet.safetensors"
            ck = train_supernet(
                config,
                path,
                threads=args.threads,
                on_epoch=lambda e, row: on_epoch(e, row, path),
            )
    supernet_seconds = time.monotonic() - t0
    print(f"supernet training: {supernet_seconds:.1f} s")
    if truth is None:
        t1 = time.monotonic()
        truth = ground_truth(args, ref, train_size)
        print(f"stand-alone trainings: {time.monotonic() - t1:.0f} s with --jobs {args.jobs}")
    rows: list[dict[str, Any]] = []
    for i, arch in enumerate(members):
        t1 = time.monotonic()
        inherited = math.nan
        if ck is not None:
            inherited, _ = member_accuracy(
                ck.supernet, arch, ds, ds.x[held_idx], ds.y[held_idx], bn_images=bn
            )
        t_inh = time.monotonic() - t1
        results = truth[i]
        row = {
            "digest": arch.digest,
            "macs": archsearch.count(arch).macs,
            "inherited": inherited,
            "standalone": results[0][0],
            "standalone_repeats": [x[0] for x in results[1:]],
            "inherited_seconds": t_inh,
            "standalone_seconds": results[0][1],
        }
        rows.append(row)
        again = "".join(f", again {x[0]:.2f}%" for x in results[1:])
        print(
            f"member {i + 1}/{len(members)} {arch.digest[:12]} {row['macs'] / 1e6:.1f} MFLOPs: "
            f"inherited {inherited:.2f}% ({t_inh:.2f} s), stand-alone {results[0][0]:.2f}% "
            f"({results[0][1]:.1f} s){again}",
            flush=True,
        )
    a = np.array([r["inherited"] for r in rows])
    b = np.array([r["standalone"] for r in rows])
    tau = rho = math.nan
    print(f"members: {len(rows)}; stand-alone {b.min():.2f}-{b.max():.2f}%")
    if ck is not None:
        tau = stats.kendalltau(a, b).statistic
        rho = stats.spearmanr(a, b).statistic
        print(f"inherited {a.min():.2f}-{a.max():.2f}%")
        print(f"Kendall tau: {tau:.3f}   Spearman rho: {rho:.3f}")
    noise: dict[str, float] = {}
    if args.repeats > 1:  # stand-alone training against itself: the ceiling of any proxy
        c = np.array([r["standalone_repeats"][0] for r in rows])
        noise = {
            "kendall": stats.kendalltau(b, c).statistic,
            "spearman": stats.spearmanr(b, c).statistic,
            "mean_abs_difference": float(np.mean(np.abs(b - c))),
            "inherited_vs_second_kendall": stats.kendalltau(a, c).statistic,
            "inherited_vs_mean_kendall": stats.kendalltau(a, (b + c) / 2).statistic,
        }
        print(
            f"stand-alone vs stand-alone from another initialisation: Kendall tau "
            f"{noise['kendall']:.3f}, Spearman rho {noise['spearman']:.3f}, mean |difference| "
            f"{noise['mean_abs_difference']:.2f} points; inherited vs the second: Kendall tau "
            f"{noise['inherited_vs_second_kendall']:.3f}, vs the mean of both: "
            f"{noise['inherited_vs_mean_kendall']:.3f}"
        )
        if ck is not None:
            print(f"inherited tau / stand-alone ceiling: {tau / noise['kendall']:.2f}")
    print(
        f"supernet: {config.epochs} epochs, K={args.subnets_per_step}, "
        f"sandwich={args.sandwich}, distill={args.distill}, {supernet_seconds:.1f} s; "
        "mean stand-alone training "
        f"{np.mean([r['standalone_seconds'] for r in rows]):.1f} s; mean inherited scoring "
        f"{np.mean([r['inherited_seconds'] for r in rows]):.2f} s"
    )
    print(f"wall: {time.monotonic() - start:.0f} s")
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "throughput": rates,
                    "curve": ck.curve if ck is not None else [],
                    "rows": rows,
                    "kendall": tau,
                    "kendall_per_epoch": taus,
                    "spearman": rho,
                    "standalone_noise": noise,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()

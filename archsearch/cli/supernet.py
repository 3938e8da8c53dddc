"""``archsearch supernet train|extract|list``: weight-sharing supernets (ViT-ResNAS)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from archsearch.cli.common import (
    DbOption,
    Format,
    FormatOption,
    emit,
    err_console,
    handle_errors,
    interrupt_code,
    progress_bar,
    resolve_arch,
    stop_bar,
)
from archsearch.errors import StoreError, UserError

app = typer.Typer(
    help="Weight-sharing supernets: train one (ViT-ResNAS multi-architecture sampling), list "
    "them, extract a trained member. Search on one with `archsearch run --strategy supernet "
    "--supernet <checkpoint or id>`.",
    no_args_is_help=True,
)


def resolve_checkpoint(ref: str, db: str | None, *, flag: str = "--supernet") -> str:
    """A supernet reference (a checkpoint path, or an id of the database) -> the path; an
    unknown id is an error naming ``flag``, the option the user wrote it in."""
    if ref.isdigit() and not Path(ref).exists():
        from archsearch.db import Store

        try:
            return str(Store(db).get_supernet(int(ref))["checkpoint"])
        except StoreError as e:
            raise UserError(f"{flag}={ref}: {e}") from None
    return ref


@app.command()
@handle_errors
def train(
    space: Annotated[
        str | None, typer.Option(help="A built-in space (e.g. vit-resnas-small) or a YAML file.")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="The dataset: idx:DIR (Fashion-MNIST's IDX files), npz:FILE, folder:DIR."
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Passes over the training split. (default: 5)")
    ] = None,
    subnets_per_step: Annotated[
        int | None,
        typer.Option(
            help="K: each batch is split into K sub-batches, each through its own sampled "
            "member. (default: 4)"
        ),
    ] = None,
    sandwich: Annotated[
        bool | None,
        typer.Option(
            "--sandwich/--no-sandwich",
            help="Largest and smallest member take the first two sub-batches of every step.",
        ),
    ] = None,
    distill: Annotated[
        bool | None,
        typer.Option(
            "--distill/--no-distill",
            help="In-place distillation (BigNAS): members other than the largest learn half "
            "from the labels, half from the largest's predictions. Needs --sandwich.",
        ),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per step. (default: 128)")] = None,
    lr: Annotated[float | None, typer.Option(help="AdamW learning rate. (default: 0.002)")] = None,
    train_size: Annotated[
        int | None, typer.Option(help="Train on a seeded subset of this many images.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed. (default: 0)")] = None,
    alphas: Annotated[
        bool | None,
        typer.Option(
            "--alphas/--no-alphas",
            help="Learn architecture parameters per block position (Gumbel-softmax, "
            "temperature 5 -> 0.5), stored with the checkpoint; slimming ranks positions by "
            "them (-O importance=<checkpoint>).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="The checkpoint file. [default: supernets/<space>-<id>.safetensors]"),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(help="Continue a training: its checkpoint file or its supernet id."),
    ] = None,
    threads: Annotated[int | None, typer.Option(help="torch's intra-op threads.")] = None,
    device: Annotated[
        str,
        typer.Option(
            help="auto (CUDA where torch sees a GPU, else the CPU), cpu, cuda or cuda:N; may "
            "differ on --resume."
        ),
    ] = "auto",
    precision: Annotated[
        str,
        typer.Option(help="fp32, bf16 (autocast) or fp16 (autocast + gradient scaler, CUDA)."),
    ] = "fp32",
    db: DbOption = None,
) -> None:
    """Train a weight-sharing supernet; checkpointed after every epoch and resumable.

    The checkpoint (weights, optimiser, random states) goes to disk; the database keeps its
    path, the configuration and the training curve (`archsearch supernet list`).
    """
    from archsearch.db import Store
    from archsearch.evaluators.training import describe_device
    from archsearch.supernet import (
        SupernetConfig,
        load_checkpoint,
        space_fingerprint,
        train_supernet,
    )
    from archsearch.supernet.training import training_device

    dev = training_device(device, precision)  # before anything is stored
    store = Store(db)
    given = {
        "space": space,
        "data": data,
        "epochs": epochs,
        "subnets_per_step": subnets_per_step,
        "sandwich": sandwich,
        "distill": distill,
        "batch_size": batch_size,
        "lr": lr,
        "train_size": train_size,
        "seed": seed,
        "alphas": alphas,
    }
    if resume is not None:
        changed = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None]
        if changed or out is not None:
            raise UserError(
                f"--resume continues a training with its stored settings; drop "
                f"{', '.join(changed + (['--out'] if out is not None else []))}"
            )
        path = resolve_checkpoint(resume, db, flag="--resume")
        ck = load_checkpoint(path)
        config = ck.config
        rows = [r for r in store.list_supernets() if r["checkpoint"] == str(Path(path).resolve())]
        supernet_id = rows[-1]["id"] if rows else None
        if ck.epoch >= config.epochs:
            raise UserError(
                f"--resume: {path} already has all {config.epochs} epochs; nothing to do"
            )
    else:
        if space is None or data is None:
            raise UserError(
                "--space and --data are required, e.g. --space vit-resnas-small "
                "--data idx:path/to/fashion-mnist"
            )
        from archsearch.data import absolute_ref
        from archsearch.spaces import load_space

        loaded = load_space(space)
        config = SupernetConfig(
            space=str(Path(space).resolve()) if Path(space).is_file() else space,
            data=absolute_ref(data),
            **{k: v for k, v in given.items() if v is not None and k not in ("space", "data")},  # type: ignore[arg-type]
        )
        ck = None
        supernet_id = store.create_supernet(
            space=loaded.name,
            space_digest=space_fingerprint(loaded),
            checkpoint="",
            config=config.to_dict(),
        )
        path = str(
            (out or Path("supernets") / f"{loaded.name}-{supernet_id}.safetensors").resolve()
        )
        store.update_supernet(supernet_id, checkpoint=path)
    if supernet_id is None:
        from archsearch.spaces import load_space

        loaded = load_space(config.space)
        supernet_id = store.create_supernet(
            space=loaded.name,
            space_digest=space_fingerprint(loaded),
            checkpoint=str(Path(path).resolve()),
            config=config.to_dict(),
        )
    err_console.print(
        f"supernet {supernet_id}: checkpoint {path}; on {describe_device(dev)}, {precision}"
    )
    bar = progress_bar(f"[bold]supernet {supernet_id}", suffix="{task.fields[info]}")
    task = bar.add_task("train", total=None, info="")

    def on_step(done: int, total: int) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=done, total=total)

    def on_epoch(epoch: int, row: dict[str, Any]) -> None:
        curve.append(row)
        store.update_supernet(supernet_id, curve=curve)
        bar.update(
            task,
            info=f"epoch {epoch}: loss {row['train_loss']:.3f}, largest "
            f"{row['accuracy_largest']:.1f}%, smallest {row['accuracy_smallest']:.1f}%",
        )

    curve: list[dict[str, Any]] = list(ck.curve) if ck is not None else []
    store.update_supernet(supernet_id, status="training")
    try:
        result = train_supernet(
            config,
            path,
            resume=ck,
            threads=threads,
            device=device,
            precision=precision,
            on_step=on_step,
            on_epoch=on_epoch,
        )
    except KeyboardInterrupt as stop:
        stop_bar(bar)
        store.update_supernet(supernet_id, status="interrupted")
        err_console.print(
            f"interrupted: resume with archsearch supernet train --resume {supernet_id}"
        )
        raise typer.Exit(interrupt_code(stop)) from None
    except UserError as e:
        stop_bar(bar)
        store.update_supernet(supernet_id, status="failed", error=str(e))
        raise
    except Exception as e:
        stop_bar(bar)
        store.update_supernet(supernet_id, status="failed", error=f"{type(e).__name__}: {e}")
        raise
    stop_bar(bar)
    store.update_supernet(supernet_id, status="finished", curve=result.curve)
    last = result.curve[-1]
    typer.echo(
        f"supernet {supernet_id}: {result.epoch} epochs, checkpoint {path}; held-out accuracy "
        f"largest member {last['accuracy_largest']:.2f}%, smallest "
        f"{last['accuracy_smallest']:.2f}% (inherited weights)"
    )


@app.command()
@handle_errors
def extract(
    supernet: Annotated[str, typer.Argument(help="The checkpoint file or its supernet id.")],
    architecture: Annotated[
        str,
        typer.Argument(help="A member: a digest (6+ characters), a spec file or zoo:NAME."),
    ],
    out: Annotated[Path, typer.Option(help="Where to save the weights (safetensors).")] = Path(
        "subnet.safetensors"
    ),
    db: DbOption = None,
) -> None:
    """Save a member with its inherited weights: a safetensors file of its state dict, with
    its spec in the metadata.

    Load it with archsearch.load_weights(path), which builds the spec and loads the weights;
    nothing in the file is unpickled.
    """
    from archsearch.supernet import load_checkpoint
    from archsearch.weights import save_module

    ck = load_checkpoint(resolve_checkpoint(supernet, db))
    arch = resolve_arch(architecture, db)
    member = ck.supernet.check_member(arch)
    module = ck.supernet.extract(arch).eval()
    save_module(out, module, member, supernet=str(ck.path), epoch=ck.epoch)
    n = sum(p.numel() for p in module.parameters())
    typer.echo(
        f"{arch.digest[:12]}: {n:,} parameters, input {list(ck.supernet.input_shape)}, "
        f"{ck.supernet.num_classes} classes -> {out} (load with archsearch.load_weights)"
    )


@app.command()
@handle_errors
def migrate(
    checkpoint: Annotated[
        Path, typer.Argument(help="A checkpoint of archsearch 0.1 (a torch.save .pt file).")
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="The new checkpoint. [default: the same name, .safetensors]"),
    ] = None,
    db: DbOption = None,
) -> None:
    """Convert an old pickle checkpoint to the safetensors format.

    The old file is read with torch.load(weights_only=True): tensors and plain containers
    only, so a crafted file is refused instead of run. Supernets stored in the database with
    the old path are pointed at the new file.
    """
    from archsearch.db import Store
    from archsearch.supernet.training import migrate_checkpoint

    target = out or checkpoint.with_suffix(".safetensors")
    if target.resolve() == checkpoint.resolve():
        raise UserError(f"--out: {str(target)!r} is the old file; give another path")
    ck = migrate_checkpoint(checkpoint, target)
    store = Store(db)
    old = str(checkpoint.resolve())
    moved = [r["id"] for r in store.list_supernets() if r["checkpoint"] == old]
    for sid in moved:
        store.update_supernet(sid, checkpoint=str(target.resolve()))
    typer.echo(
        f"{checkpoint} -> {target}: space {ck.supernet.space.name}, {ck.epoch} epoch(s)"
        + (f"; supernet(s) {', '.join(map(str, moved))} now use it" if moved else "")
    )


@app.command("list")
@handle_errors
def list_(db: DbOption = None, fmt: FormatOption = Format.table) -> None:
    """The supernets stored in the database, with their last curve values."""
    from archsearch.db import Store

    rows = []
    for r in Store(db).list_supernets():
        last = r["curve"][-1] if r["curve"] else {}
        cfg = r["config"]
        rows.append(
            {
                "id": r["id"],
                "space": r["space"],
                "status": r["status"],
                "epochs": f"{r['epochs_done']}/{cfg.get('epochs')}",
                "K": cfg.get("subnets_per_step"),
                "sandwich": cfg.get("sandwich"),
                "distill": cfg.get("distill", False),
                "largest %": last.get("accuracy_largest"),
                "smallest %": last.get("accuracy_smallest"),
                "device": last.get("device", "-"),
                "checkpoint": r["checkpoint"],
            }
        )
    emit(rows, list(rows[0]) if rows else ["id"], fmt, title="supernets")

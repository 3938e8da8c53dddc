"""Supernet training: multi-architecture steps, checkpoints, deterministic resume, evaluator,
strategy and refusals of checkpoints from another space or version."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import archsearch
from archsearch import weights
from archsearch.cost.units import Budget
from archsearch.evaluators import EVALUATORS
from archsearch.search import parse_objectives
from archsearch.solvers import Problem, Result, create_strategy
from archsearch.spaces import load_space
from archsearch.supernet import (
    SupernetConfig,
    SupernetError,
    load_checkpoint,
    train_supernet,
)
from archsearch.supernet.training import CHECKPOINT_KIND, migrate_checkpoint
from tests.conftest import FIXTURES
from tests.evaluators.test_training import easy_task
from tests.hostile import hostile_pickle

TINY = str(FIXTURES / "tiny_resnas.yaml")


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def easy(tmp_path_factory: pytest.TempPathFactory) -> str:
    return easy_task(tmp_path_factory.mktemp("data") / "easy.npz", 400)


def config(easy: str, **kw: object) -> SupernetConfig:
    base: dict[str, object] = {
        "space": TINY,
        "data": easy,
        "epochs": 3,
        "subnets_per_step": 2,
        "sandwich": True,
        "batch_size": 32,
        "augment": "none",
    }
    return SupernetConfig(**{**base, **kw})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def trained(easy: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ck") / "tiny.safetensors"
    train_supernet(config(easy), path)
    return path


def test_training_learns_and_resume_ends_with_identical_weights(
    easy: str, trained: Path, tmp_path: Path
) -> None:
    done = load_checkpoint(trained)
    assert done.epoch == 3 and len(done.curve) == 3
    assert done.curve[-1]["accuracy_largest"] >= 90 and done.curve[-1]["accuracy_smallest"] >= 90

    def crash(epoch: int, row: dict[str, float]) -> None:
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        train_supernet(config(easy), tmp_path / "b.safetensors", on_epoch=crash)
    partial = load_checkpoint(tmp_path / "b.safetensors")
    assert partial.epoch == 1
    resumed = train_supernet(config(easy), tmp_path / "b.safetensors", resume=partial)
    a, b = done.supernet.state_dict(), resumed.supernet.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_loss"] for r in resumed.curve] == [r["train_loss"] for r in done.curve]


@pytest.mark.slow
def test_k_subnets_share_one_step_and_seeds_matter(easy: str, tmp_path: Path) -> None:
    one = train_supernet(
        config(easy, epochs=1, subnets_per_step=1, sandwich=False), tmp_path / "1"
    )
    four = train_supernet(
        config(easy, epochs=1, subnets_per_step=4, sandwich=False), tmp_path / "4"
    )
    other = train_supernet(
        config(easy, epochs=1, subnets_per_step=4, sandwich=False, seed=1), tmp_path / "5"
    )
    a, b, c = (x.supernet.state_dict() for x in (one, four, other))
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(b[k], c[k]) for k in b)


def test_in_place_distillation_learns_and_changes_the_training(
    easy: str, trained: Path, tmp_path: Path
) -> None:
    ck = train_supernet(config(easy, distill=True), tmp_path / "d.safetensors")
    assert ck.curve[-1]["accuracy_largest"] >= 90 and ck.curve[-1]["accuracy_smallest"] >= 90
    plain = load_checkpoint(trained).supernet.state_dict()
    distilled = ck.supernet.state_dict()
    assert any(not torch.equal(plain[k], distilled[k]) for k in plain)
    assert load_checkpoint(tmp_path / "d.safetensors").config.distill is True


def test_checkpoints_of_another_space_or_version_are_refused(
    trained: Path, tmp_path: Path
) -> None:
    with pytest.raises(
        SupernetError, match="trained for space 'tiny-resnas'.*not 'vit-resnas-small'"
    ):
        load_checkpoint(trained, space=load_space("vit-resnas-small"))
    tensors, meta = weights.load(trained, kind=CHECKPOINT_KIND)
    weights.save(tmp_path / "v99.safetensors", tensors, {**meta, "format": 99})
    with pytest.raises(SupernetError, match="format version 99.*reads version 2"):
        load_checkpoint(tmp_path / "v99.safetensors")
    (tmp_path / "junk.safetensors").write_text("not a checkpoint")
    with pytest.raises(SupernetError, match="not a readable safetensors file"):
        load_checkpoint(tmp_path / "junk.safetensors")
    weights.save(tmp_path / "w.safetensors", tensors, {**meta, "kind": "archsearch-weights"})
    with pytest.raises(SupernetError, match="holds 'archsearch-weights', not 'archsearch-sup"):
        load_checkpoint(tmp_path / "w.safetensors")
    with pytest.raises(SupernetError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_checkpoints_are_safetensors_and_old_pickles_migrate_without_unpickling_code(
    trained: Path, tmp_path: Path
) -> None:
    assert trained.read_bytes()[8:9] == b"{"  # a safetensors header, not a pickle
    done = load_checkpoint(trained)
    # A checkpoint as archsearch 0.1 wrote it: one torch.save pickle of the whole state.
    old = tmp_path / "old.pt"
    torch.save({**done.state, "format": 1}, old)
    with pytest.raises(SupernetError, match="is a pickle file.*supernet migrate"):
        load_checkpoint(old)
    migrated = migrate_checkpoint(old, tmp_path / "new.safetensors")
    a, b = done.supernet.state_dict(), migrated.supernet.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert migrated.epoch == done.epoch and migrated.curve == done.curve


def test_hostile_pickles_never_run(trained: Path, tmp_path: Path) -> None:
    bad, marker = hostile_pickle(tmp_path)
    with pytest.raises(SupernetError, match="pickle file"):
        load_checkpoint(bad)
    with pytest.raises(SupernetError, match="cannot be read safely"):
        migrate_checkpoint(bad, tmp_path / "out.safetensors")
    assert not marker.exists()
    assert not (tmp_path / "out.safetensors").exists()


def test_bad_training_options_name_the_flag(easy: str) -> None:
    with pytest.raises(
        archsearch.errors.UserError, match="--subnets-per-step: 1 .*with --sandwich"
    ):
        config(easy, subnets_per_step=1)
    with pytest.raises(archsearch.errors.UserError, match="--epochs: 0"):
        config(easy, epochs=0)
    with pytest.raises(archsearch.errors.UserError, match="--distill: True .*--sandwich"):
        config(easy, distill=True, sandwich=False)


def test_evaluator_scores_members_deterministically(trained: Path) -> None:
    ev = EVALUATORS.create("supernet", supernet=str(trained), eval_size=40)
    space = load_space(TINY)
    archs = [space.sample(seed=s) for s in range(5)]
    first, again = ev.evaluate(archs), ev.evaluate(archs)
    assert first == again
    assert all(0 <= r["supernet_accuracy"] <= 100 for r in first)
    assert sum(r["supernet_accuracy"] for r in first) / 5 >= 80  # the easy task, learnt
    with pytest.raises(archsearch.errors.NotInSpaceError, match="not a member"):
        ev.evaluate([load_space("vit-resnas-small").sample(seed=0)])
    with pytest.raises(archsearch.errors.UserError, match="--supernet: the supernet score needs"):
        EVALUATORS.create("supernet")


def test_batchnorm_members_are_recalibrated_without_touching_the_bank(
    easy: str, tmp_path: Path
) -> None:
    from archsearch.data import load_dataset
    from archsearch.supernet import member_accuracy

    cfg = SupernetConfig(
        space=str(FIXTURES / "tiny_space.yaml"),
        data=easy,
        epochs=1,
        subnets_per_step=2,
        batch_size=32,
        augment="none",
    )
    ck = train_supernet(cfg, tmp_path / "h.pt")
    before = {k: v.clone() for k, v in ck.supernet.state_dict().items()}
    ds = load_dataset(easy)
    x = torch.randn(32, *ds.shape)
    arch = next(
        a
        for a in (ck.supernet.space.sample(seed=s) for s in range(50))
        if ck.supernet.member(a).has_bn
    )
    acc, loss = member_accuracy(ck.supernet, arch, ds, ds.x[:50], ds.y[:50], bn_images=x)
    assert 0 <= acc <= 100 and loss > 0
    after = ck.supernet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def _drive(seed: int, budget: int, **opts: object) -> tuple[list[str], list[int]]:
    space = load_space("vit-resnas-small")
    strategy = create_strategy(
        "supernet",
        seed=seed,
        population=12,
        parents=4,
        mutations=5,
        crossovers=5,
        generations=3,
        **opts,
    )
    b = Budget(macs=budget)
    strategy.setup(
        Problem(space, parse_objectives("params:max"), lambda a: b.admits(archsearch.count(a)), b)
    )
    asked: list[str] = []
    macs: list[int] = []
    while batch := strategy.ask(7):
        asked += [a.digest for a in batch]
        macs += [archsearch.count(a).macs for a in batch]
        strategy.tell([Result(a, {"params": float(archsearch.count(a).params)}) for a in batch])
    return asked, macs


def test_strategy_keeps_the_budget_window_and_its_generations() -> None:
    c = 30_000_000
    asked, macs = _drive(0, c)
    assert len(asked) == 12 + 2 * 10 == len(set(asked))  # 3 generations, no duplicate
    assert all(0.975 * c <= m <= c for m in macs)
    assert _drive(0, c)[0] == asked and _drive(1, c)[0] != asked


def test_strategy_state_round_trips() -> None:
    space = load_space("vit-resnas-small")
    b = Budget(macs=30_000_000)

    def problem() -> Problem:
        return Problem(
            space, parse_objectives("params:max"), lambda a: b.admits(archsearch.count(a)), b
        )

    opts = {"seed": 2, "population": 8, "parents": 3, "mutations": 3, "crossovers": 3}
    s1 = create_strategy("supernet", **opts)
    s1.setup(problem())
    for _ in range(2):
        batch = s1.ask(8)
        s1.tell([Result(a, {"params": float(archsearch.count(a).params)}) for a in batch])
    s2 = create_strategy("supernet", **opts)
    s2.setup(problem())
    s2.load_state_dict(s1.state_dict())  # type: ignore[arg-type]
    assert [a.digest for a in s1.ask(6)] == [a.digest for a in s2.ask(6)]


METAPATH = str(FIXTURES / "tiny_metapath.yaml")


def test_architecture_parameters_learn_and_resume_exactly(easy: str, tmp_path: Path) -> None:
    from archsearch.supernet.alphas import Alphas, temperature

    cfg = config(easy, space=METAPATH, alphas=True, alpha_lr=0.05, epochs=2, sandwich=False)
    done = train_supernet(cfg, tmp_path / "a.safetensors")
    assert done.alphas is not None
    assert set(done.alphas) == {"s1.b0.type", "s1.b1.type", "s2.b0.type", "s2.b1.type"}
    assert all(t.abs().sum() > 0 for t in done.alphas.values())  # they moved from zero
    loaded = load_checkpoint(tmp_path / "a.safetensors")
    assert loaded.alphas is not None
    assert all(torch.equal(loaded.alphas[k], done.alphas[k]) for k in done.alphas)
    assert "alpha_entropy" in loaded.curve[-1]

    def crash(epoch: int, row: dict[str, float]) -> None:
        raise Stop

    with pytest.raises(Stop):
        train_supernet(cfg, tmp_path / "b.safetensors", on_epoch=crash)
    partial = load_checkpoint(tmp_path / "b.safetensors")
    resumed = train_supernet(cfg, tmp_path / "b.safetensors", resume=partial)
    assert resumed.alphas is not None
    assert all(torch.equal(resumed.alphas[k], done.alphas[k]) for k in done.alphas)
    a, b = done.supernet.state_dict(), resumed.supernet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)

    # the straight-through gates are exactly 1 forward, and carry gradient to the logits
    alphas = Alphas.for_space(load_space(METAPATH))
    import random

    arch, gates = alphas.sample(random.Random(0), torch.Generator().manual_seed(0), tau=1.0)  # type: ignore[misc]
    net = done.supernet.eval()
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(net(x, arch, gates), net(x, arch))
    net(x, arch, gates).sum().backward()
    assert any(t.grad is not None and t.grad.abs().sum() > 0 for t in alphas.parameters())
    assert temperature(0, 100, 5.0, 0.5) == 5.0
    assert abs(temperature(100, 100, 5.0, 0.5) - 0.5) < 1e-12
    assert abs(temperature(50, 100, 5.0, 0.5) - 5.0 * 0.1**0.5) < 1e-12


def test_architecture_parameter_options_are_checked(easy: str) -> None:
    from archsearch.errors import UserError

    with pytest.raises(UserError, match="tau_end"):
        config(easy, alphas=True, tau_start=1.0, tau_end=2.0)
    with pytest.raises(UserError, match="alpha_lr"):
        config(easy, alphas=True, alpha_lr=0.0)


NO_CUDA = not torch.cuda.is_available()


def test_training_and_scoring_state_their_device_and_take_mixed_precision(
    easy: str, trained: Path, tmp_path: Path
) -> None:
    from archsearch.evaluators.training import describe_device, resolve_device

    here = describe_device(resolve_device("auto"))
    done = load_checkpoint(trained)
    assert {r["device"] for r in done.curve} == {here} and done.curve[0]["precision"] == "fp32"
    bf16 = train_supernet(config(easy, epochs=1), tmp_path / "b.safetensors", precision="bf16")
    assert bf16.curve[-1]["precision"] == "bf16" and bf16.curve[-1]["accuracy_largest"] >= 50
    with pytest.raises(archsearch.errors.UserError, match="--precision: 'fp8' is not one of"):
        train_supernet(config(easy), tmp_path / "c.safetensors", precision="fp8")
    ev = EVALUATORS.create("supernet", supernet=str(trained), eval_size=40, device="cpu")
    assert ev.device_used() == "cpu" and ev.notes() == ["supernet: on cpu, fp32"]
    assert ev.config()["device"] == "cpu"
    cheap = EVALUATORS.create(
        "supernet", supernet=str(trained), eval_size=40, device="cpu", precision="bf16"
    )
    arch = load_space(TINY).sample(seed=0)
    full, mixed = ev.evaluate([arch])[0], cheap.evaluate([arch])[0]
    assert abs(full["supernet_accuracy"] - mixed["supernet_accuracy"]) <= 10
    with pytest.raises(archsearch.errors.UserError, match="precision fp16: needs a CUDA"):
        EVALUATORS.create("supernet", supernet=str(trained), device="cpu", precision="fp16")
    if NO_CUDA:
        with pytest.raises(archsearch.errors.UserError, match="--device cuda: torch sees no CUDA"):
            train_supernet(config(easy), tmp_path / "d.safetensors", device="cuda")
        with pytest.raises(
            archsearch.errors.UserError, match="supernet score device cuda:1: torch sees no"
        ):
            EVALUATORS.create("supernet", supernet=str(trained), device="cuda:1")

"""Slimming (EfficientFormer, V1 and V2) and contraction (TinyViT): the walk's conformance
on the built-in spaces, the moves, the criteria, and the runs through the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archsearch.cli import app
from archsearch.cost import Budget, count
from archsearch.db import Store
from archsearch.errors import UserError
from archsearch.search import parse_objectives
from archsearch.solvers import Problem, Result, create_strategy
from archsearch.solvers.shrinking import Moves
from archsearch.spaces import Space, load_space
from archsearch.testing import strategies as conformance
from archsearch.zoo import get as zoo_get

WALKERS = [
    ("slimming", {}),
    ("slimming", {"variant": "v2"}),
    ("slimming", {"lazy": 3}),
    ("contraction", {}),
    ("contraction", {"lazy": 3}),
]


@pytest.mark.parametrize("space_name", ["hybrid", "efficientformer"])
@pytest.mark.parametrize(("name", "options"), WALKERS)
def test_walk_conformance(name: str, options: dict[str, str], space_name: str) -> None:
    space = load_space(space_name)
    for objectives in conformance.OBJECTIVES:
        conformance.check_walk(name, space, objectives, **options)
    conformance.check_walk_ends(name, space)
    conformance.check_walk_starts_from_init(name, space, space.sample(seed=4))


def test_check_strategy_runs_the_walk_checks(hybrid: Space) -> None:
    conformance.check_strategy("contraction", hybrid)


def test_largest_member_is_the_most_expensive_of_many(hybrid: Space) -> None:
    big = count(hybrid.largest())
    assert hybrid.contains(hybrid.largest())
    for seed in range(200):
        assert count(hybrid.sample(seed=seed)).macs <= big.macs


def test_efficientformer_l1_is_a_member_up_to_identity_positions() -> None:
    space = load_space("efficientformer")
    moves = Moves(space)
    a = moves.assignment(space.largest())
    a.update({"s1.width": 48, "s2.width": 96, "s3.width": 224, "s4.width": 448})
    a["head.head.distill"] = True
    for stage, depth, positions in (("s1", 3, 4), ("s2", 2, 4), ("s3", 6, 8), ("s4", 4, 6)):
        for j in range(positions):
            a[f"{stage}.b{j}.type"] = "pool" if j < depth else "identity"
    a["s4.b3.type"] = "effformer_attn"
    member = space.decode(a)
    assert count(member) == count(zoo_get("efficientformer_l1"))


def test_drop_moves_later_blocks_up_where_there_is_no_identity(hybrid: Space) -> None:
    moves = Moves(hybrid)
    arch = hybrid.largest()
    a = moves.assignment(arch)
    drops = [m for m in moves.drop(a) if m.where == "s1.b0"]
    assert len(drops) == 1
    after = drops[0].arch
    assert after.stages[0].depth == arch.stages[0].depth - 1
    # the old second block is now the first (its params as they were, the stride rule aside)
    assert after.stages[0].blocks[1:] == arch.stages[0].blocks[2:]


def test_v1_turns_the_first_attention_block_into_a_conv_block() -> None:
    space = load_space("efficientformer")
    moves = Moves(space)
    a = moves.assignment(space.largest())
    [move] = moves.to_conv(a)
    assert move.where == "s3.b0" and move.arch.stages[2].blocks[0].type == "pool"
    identities = [m for m in moves.drop(a) if m.arch.stages[2].blocks[0].type == "identity"]
    assert len(identities) == 1


def _told(strategy, archs, values):  # type: ignore[no-untyped-def]
    return [
        Result(a, {**{k: float(v) for k, v in count(a).as_dict().items()}, "naswot": s})
        for a, s in zip(archs, values, strict=True)
    ]


@pytest.mark.parametrize(("criterion", "expect"), [("per_cost", 1), ("score", 0)])
def test_criteria_pick_the_least_loss_per_cost_or_the_best_score(
    hybrid: Space, criterion: str, expect: int
) -> None:
    """Two moves: A loses 1 point for a little cost, B 2 points for much more cost. Loss per
    MAC saved prefers B; the best score prefers A."""
    s = create_strategy("slimming", criterion=criterion)
    s.setup(Problem(hybrid, parse_objectives("naswot:max"), lambda a: False, budget=Budget(1)))
    [start] = s.ask(1)
    s.tell(_told(s, [start], [100.0]))
    step = s.ask(10_000)
    costs = [count(a).macs for a in step]
    start_cost = count(start).macs
    small = min(range(len(step)), key=lambda i: start_cost - costs[i])  # saves the least
    large = max(range(len(step)), key=lambda i: start_cost - costs[i])  # saves the most
    values = [-math.inf] * len(step)
    values[small], values[large] = 99.0, 98.0
    s.tell(_told(s, step, values))
    s.ask(1)
    chosen = s.path[-1]  # type: ignore[attr-defined]
    assert chosen.digest == step[large if expect else small].digest


@pytest.mark.parametrize("name", ["slimming", "contraction"])
def test_lazy_walks_evaluate_fewer_networks(hybrid: Space, name: str) -> None:
    full, _ = conformance.walk(name, hybrid, "entropy:max")
    lazy, strategy = conformance.walk(name, hybrid, "entropy:max", lazy=4)
    assert len(lazy) < len(full) / 2
    assert conformance.within_budget(strategy.path[-1])  # type: ignore[attr-defined]


def test_options_are_checked() -> None:
    with pytest.raises(UserError, match="option variant: 'v3' must be one of v1, v2"):
        create_strategy("slimming", variant="v3")
    with pytest.raises(UserError, match="option criterion: 'best' must be per_cost or score"):
        create_strategy("contraction", criterion="best")
    with pytest.raises(UserError, match="option lazy: -1 must be between 0 and 10000"):
        create_strategy("slimming", lazy=-1)
    with pytest.raises(UserError, match="option width_step: 0 must be between 1 and 100"):
        create_strategy("contraction", width_step=0)
    s = create_strategy("slimming")
    with pytest.raises(UserError, match="latency/budget is required by strategy slimming"):
        s.setup(Problem(load_space("hybrid"), parse_objectives("naswot:max")))


def _run(url: str, *args: str) -> str:
    r = CliRunner().invoke(app, ["run", "--db", url, "-f", "json", *args])
    assert r.exit_code == 0, r.output
    return r.stdout


@pytest.mark.parametrize("strategy", ["slimming", "slimming:v2", "contraction"])
def test_run_walks_down_to_the_budget_and_shows_only_what_meets_it(
    tmp_path: Path, strategy: str
) -> None:
    import json

    url = f"sqlite:///{tmp_path / 'a.db'}"
    out = json.loads(
        _run(
            url,
            "--space",
            "hybrid",
            "--strategy",
            strategy,
            "--budget",
            "600MFLOP",
            "--score",
            "entropy",
            "--trials",
            "5000",
        )
    )
    assert out["reason"] == "strategy exhausted"
    assert out["front"] and all(r["macs"] <= 600e6 for r in out["front"])
    store = Store(url)
    results = store.results(out["run"])
    assert any(r["macs"] > 600e6 for r in results)  # the way down is stored too
    r = CliRunner().invoke(
        app, ["pareto", "--run", str(out["run"]), "--db", url, "--walk", "-f", "json"]
    )
    assert r.exit_code == 0 and any(x["macs"] > 600e6 for x in json.loads(r.stdout)), r.output


def test_a_resumed_walk_ends_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    import json

    args = [
        "--space",
        "hybrid",
        "--strategy",
        "slimming",
        "--budget",
        "600MFLOP",
        "--score",
        "entropy",
        "--batch-size",
        "7",
    ]
    whole = json.loads(_run(f"sqlite:///{tmp_path / 'a.db'}", *args, "--trials", "5000"))
    url = f"sqlite:///{tmp_path / 'b.db'}"
    first = json.loads(_run(url, *args, "--trials", "40"))
    resumed = json.loads(_run(url, "--resume", str(first["run"]), "--trials", "5000"))
    assert [r["digest"] for r in resumed["front"]] == [r["digest"] for r in whole["front"]]
    assert resumed["trials"] == whole["trials"]


def test_run_without_a_target_is_one_line(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app,
        [
            "run",
            "--space",
            "hybrid",
            "--strategy",
            "slimming",
            "--db",
            f"sqlite:///{tmp_path / 'a.db'}",
        ],
    )
    assert r.exit_code == 2
    assert "--latency/--budget is required by strategy slimming" in r.stderr, r.output
    assert len(r.stderr.strip().splitlines()) == 1


def test_importance_limits_a_v1_step_to_the_papers_three_actions() -> None:
    space = load_space("efficientformer")
    labels = [k for k, v in space.labels().items() if k.endswith(".type") and len(v) > 1]
    importance = {k: {"pool": 0.5, "effformer_attn": 0.5, "identity": 0.0} for k in labels}
    for k in importance:
        if k.startswith("s2."):
            importance[k] = {"pool": 0.5, "identity": 0.5}
    importance["s2.b3.type"] = {"pool": 0.1, "identity": 0.9}  # the least important position
    s = create_strategy("slimming", importance=importance)
    s.setup(Problem(space, parse_objectives("naswot:max"), lambda a: False, budget=Budget(1)))
    [start] = s.ask(1)
    s.tell(_told(s, [start], [100.0]))
    step = s.ask(100)
    assert len(step) == 3
    moves = Moves(space)
    a = moves.assignment(start)
    kinds = {m.action: m for m in moves.drop(a) + moves.to_conv(a) + moves.width(a)}
    assert kinds  # sanity
    drop = [x for x in step if x.stages[1].blocks[3].type == "identity"]
    assert len(drop) == 1  # s2's last position, the least important, went to identity
    assert create_strategy("slimming", **s.config()).config() == s.config()


def test_supernet_alphas_drive_slimming_from_the_cli(tmp_path: Path) -> None:
    import json

    from tests.conftest import FIXTURES
    from tests.evaluators.test_training import easy_task

    space = str(FIXTURES / "tiny_metapath.yaml")
    data = easy_task(tmp_path / "easy.npz", 200)
    url = f"sqlite:///{tmp_path / 'a.db'}"
    ck = tmp_path / "sn.safetensors"
    r = CliRunner().invoke(
        app,
        ["supernet", "train", "--space", space, "--data", data, "--epochs", "1",
         "--batch-size", "32", "--alphas", "--out", str(ck), "--db", url],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    big = count(load_space(space).largest()).macs
    out = json.loads(
        _run(url, "--space", space, "--strategy", "slimming", "-O", f"importance={ck}",
             "--score", "entropy", "--budget", f"{big // 3}FLOP", "--trials", "500")
    )  # fmt: skip
    assert out["front"] and all(row["macs"] <= big // 3 for row in out["front"])
    stored = Store(url).get_run(out["run"]).config.strategy_config["importance"]
    assert set(stored) == {"s1.b0.type", "s1.b1.type", "s2.b0.type", "s2.b1.type"}
    r = CliRunner().invoke(
        app,
        ["run", "--space", space, "--strategy", "slimming", "-O", "importance=1",
         "--budget", "1", "--db", f"sqlite:///{tmp_path / 'b.db'}"],
    )  # fmt: skip
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.output

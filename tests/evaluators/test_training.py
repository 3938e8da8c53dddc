"""The train evaluator: well above chance on an easy generated task in seconds, seeded, bounded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import archsearch
from archsearch.errors import UserError
from archsearch.evaluators import EVALUATORS
from archsearch.evaluators.training import Recipe, augment
from tests.evaluators.test_proxies import convnet


def easy_task(path: Path, n: int = 300, *, test: bool = True) -> str:
    """Two classes of 1x8x8 noisy images: the bright half is the top (0) or the bottom (1)."""
    rng = np.random.default_rng(0)

    def make(k: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 2, k)
        x = rng.integers(0, 90, (k, 8, 8))
        for i, label in enumerate(y):
            rows = slice(4, 8) if label else slice(0, 4)
            x[i, rows] += 140
        return x.astype(np.uint8), y

    x, y = make(n)
    arrays = {"x": x, "y": y}
    if test:
        arrays["x_test"], arrays["y_test"] = make(100)
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return f"npz:{path}"


@pytest.fixture
def easy(tmp_path: Path) -> str:
    return easy_task(tmp_path / "easy.npz")


def test_reaches_well_above_chance_within_seconds(easy: str) -> None:
    ev = EVALUATORS.create("train", data=easy, epochs=4, batch_size=32, augment="none")
    out = ev.evaluate([convnet(8)])[0]
    assert out["accuracy"] >= 90.0  # chance is 50%
    assert out["epochs"] == pytest.approx(4.0)
    assert 0 < out["train_seconds"] < 60
    assert out["loss"] < 0.5 and np.isfinite(out["train_loss"])


def test_same_seed_same_accuracy_and_other_seed_differs(easy: str) -> None:
    def run(seed: int) -> dict[str, float]:
        ev = EVALUATORS.create("train", data=easy, epochs=1, batch_size=32, seed=seed)
        return ev.evaluate([convnet(8)])[0]

    a, b, c = run(0), run(0), run(1)
    assert (a["accuracy"], a["loss"], a["train_loss"]) == (
        b["accuracy"],
        b["loss"],
        b["train_loss"],
    )
    assert (a["loss"], a["train_loss"]) != (c["loss"], c["train_loss"])


def test_steps_and_time_limit_bound_training(easy: str) -> None:
    ev = EVALUATORS.create("train", data=easy, epochs=10, steps=3, batch_size=32)
    seen: list[tuple[str, int, int]] = []
    ev.on_step = lambda label, done, total: seen.append((label, done, total))
    arch = convnet(8)
    out = ev.evaluate([arch])[0]
    assert [s[1:] for s in seen] == [(1, 3), (2, 3), (3, 3)]
    assert seen[0][0] == arch.digest[:12]
    assert out["epochs"] == pytest.approx(3 / (270 // 32))  # 10% held out: 270 train images
    quick = EVALUATORS.create("train", data=easy, epochs=1000, time_limit=0.5, batch_size=32)
    assert quick.evaluate([arch])[0]["epochs"] < 1000


def test_holdout_test_split_and_sizes(easy: str, tmp_path: Path) -> None:
    ev = EVALUATORS.create(
        "train", data=easy, holdout="test", epochs=1, train_size=64, eval_size=50, batch_size=32
    )
    out = ev.evaluate([convnet(8)])[0]
    assert out["epochs"] == pytest.approx(1.0)
    assert out["accuracy"] * 50 / 100 == pytest.approx(round(out["accuracy"] * 50 / 100))
    no_test = easy_task(tmp_path / "no_test.npz", test=False)
    with pytest.raises(UserError, match="holdout: .* has no test split"):
        EVALUATORS.create("train", data=no_test, holdout="test")


def test_the_network_is_built_for_the_dataset() -> None:
    """A 3x16x16, 10-class member trains on 1x8x8 two-class data: stem and head follow."""
    arch = convnet(8, classes=10)
    adapted = arch.with_input((1, 8, 8), 2)
    assert adapted.num_classes == 2 and adapted.input_shape == (1, 8, 8)
    assert adapted.digest != arch.digest
    assert archsearch.build(adapted)(torch.zeros(2, 1, 8, 8)).shape == (2, 2)
    assert arch.with_input() is arch


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "--data: the train score needs a dataset"),
        ({"data": "EASY", "epochs": 0}, "--epochs: 0 is out of range"),
        ({"data": "EASY", "augment": "mixup"}, "augment: 'mixup' is out of range"),
        ({"data": "EASY", "holdout": "train"}, "holdout: 'train'"),
        ({"data": "EASY", "lr": -1}, "lr: -1"),
        ({"data": "EASY", "momentum": 0.9}, "does not accept option 'momentum'"),
    ],
)
def test_bad_options(easy: str, options: dict[str, object], message: str) -> None:
    options = {k: easy if v == "EASY" else v for k, v in options.items()}
    with pytest.raises(UserError, match=message):
        EVALUATORS.create("train", **options)


def test_recipe_defaults_are_the_documented_ones() -> None:
    r = Recipe()
    assert (r.lr, r.weight_decay, r.label_smoothing, r.augment) == (2e-3, 0.05, 0.1, "crop+flip")


def test_augment_is_seeded_and_keeps_shapes() -> None:
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    a = augment(x, "crop+flip", 1, torch.Generator().manual_seed(0))
    b = augment(x, "crop+flip", 1, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    assert torch.equal(augment(x, "none", 1, torch.Generator()), x)
    flipped = augment(x, "flip", 1, torch.Generator().manual_seed(0))
    for i in range(2):  # each image is itself or its mirror
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))


def test_bn_statistics_are_recalibrated_after_training() -> None:
    from torch import nn

    from archsearch.evaluators.training import recalibrate_bn

    model = nn.Sequential(nn.BatchNorm2d(1))
    x = 5 + torch.randn(64, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    recalibrate_bn(model, x, 2, 32, torch.Generator().manual_seed(0))
    bn = model[0]
    assert bn.momentum == 0.1  # restored
    torch.testing.assert_close(bn.running_mean, x.mean().view(1), rtol=0, atol=1e-4)
    recalibrate_bn(model, x + 10, 0, 32, torch.Generator())  # 0 batches: left alone
    torch.testing.assert_close(bn.running_mean, x.mean().view(1), rtol=0, atol=1e-4)


NO_CUDA = not torch.cuda.is_available()


def test_devices_resolve_and_a_missing_gpu_is_one_line() -> None:
    from archsearch.evaluators.training import resolve_device

    assert resolve_device("auto").type == ("cpu" if NO_CUDA else "cuda")
    assert resolve_device(None) == resolve_device("auto")
    assert resolve_device("CPU").type == "cpu"
    with pytest.raises(UserError, match="device 'gpu': use auto, cpu, cuda or cuda:N"):
        resolve_device("gpu")
    with pytest.raises(UserError, match="device '': use auto"):
        resolve_device("")  # not taken as auto
    if NO_CUDA:
        with pytest.raises(UserError, match="device cuda: torch sees no CUDA GPU.*use cpu, or"):
            resolve_device("cuda")
    with pytest.raises(UserError, match="cuda:99"):
        resolve_device("cuda:99")


def test_device_cpu_is_the_default_here_bit_for_bit_and_mixed_precision_trains(
    easy: str,
) -> None:
    def run(**options: object) -> dict[str, float]:
        ev = EVALUATORS.create("train", data=easy, epochs=2, batch_size=32, **options)
        return ev.evaluate([convnet(8)])[0]

    base = run()
    if NO_CUDA:  # auto is the CPU here: the very same numbers
        cpu = run(device="cpu")
        assert (cpu["accuracy"], cpu["loss"]) == (base["accuracy"], base["loss"])
    bf16 = run(device="cpu", precision="bf16")
    assert bf16["accuracy"] >= 80.0 and np.isfinite(bf16["loss"])
    last = run(device="cpu", channels_last=True)
    assert abs(last["accuracy"] - base["accuracy"]) <= 5.0
    with pytest.raises(UserError, match="precision fp16: needs a CUDA device"):
        EVALUATORS.create("train", data=easy, device="cpu", precision="fp16")
    with pytest.raises(UserError, match="precision"):
        EVALUATORS.create("train", data=easy, precision="fp8")
    ev = EVALUATORS.create("train", data=easy, device="cpu", precision="bf16")
    assert ev.notes() == ["train: on cpu, bf16"]


@pytest.mark.skipif(not NO_CUDA, reason="a CUDA GPU is visible: the refusal cannot happen")
def test_cli_refuses_cuda_without_a_gpu_in_one_line(easy: str, tmp_path: Path) -> None:
    from tests.cli.test_cli import invoke
    from tests.cli.test_hardening import one_line

    code, _, err = invoke(
        "run", "--space", "hybrid-small", "--score", "train", "--data", easy,
        "-S", "device=cuda", "--trials", "1", db=f"sqlite:///{tmp_path / 'a.db'}",
    )  # fmt: skip
    assert one_line(code, err) and "device cuda: torch sees no CUDA GPU" in err, err


def test_channels_last_takes_a_boolean_only(easy: str) -> None:
    with pytest.raises(UserError, match="channels_last: 'maybe' is out of range; it must be true"):
        EVALUATORS.create("train", data=easy, channels_last="maybe")


def test_a_run_whose_every_trial_fails_reports_an_empty_front(easy: str, tmp_path: Path) -> None:
    from tests.cli.test_cli import invoke

    # 8x8 images are too small for hybrid-small's four downsamplings: every trial fails
    code, out, err = invoke(
        "run", "--space", "hybrid-small", "--score", "train", "--data", easy, "--trials", "2",
        db=f"sqlite:///{tmp_path / 'a.db'}",
    )  # fmt: skip
    assert code == 0, err
    assert "2 trials stored" in out and "error" not in err

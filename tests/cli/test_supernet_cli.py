"""`archsearch supernet train|list|extract` and `run --strategy supernet`, end to end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import archsearch
from archsearch.db import Store
from archsearch.spaces import load_space
from tests.cli.test_cli import invoke
from tests.conftest import FIXTURES
from tests.evaluators.test_training import easy_task
from tests.hostile import hostile_pickle, hostile_raw_pickle

TINY = str(FIXTURES / "tiny_resnas.yaml")


@pytest.fixture
def trained(tmp_path: Path, sqlite_url: str) -> tuple[str, str, str]:
    data = easy_task(tmp_path / "easy.npz", 300)
    out = tmp_path / "sn.safetensors"
    code, stdout, err = invoke(
        "supernet",
        "train",
        "--space",
        TINY,
        "--data",
        data,
        "--epochs",
        "2",
        "--subnets-per-step",
        "2",
        "--sandwich",
        "--batch-size",
        "32",
        "--out",
        str(out),
        db=sqlite_url,
    )
    assert code == 0, err
    assert re.search(r"supernet 1: 2 epochs, checkpoint .*sn\.safetensors", stdout)
    return sqlite_url, str(out), data


NO_CUDA = not torch.cuda.is_available()


def test_train_stores_pointer_config_and_curve(trained: tuple[str, str, str]) -> None:
    url, path, data = trained
    (row,) = Store(url).list_supernets()
    assert row["checkpoint"] == path and row["status"] == "finished"
    assert row["curve"][0]["device"] == ("cpu" if NO_CUDA else row["curve"][0]["device"])
    assert row["config"]["subnets_per_step"] == 2 and row["config"]["sandwich"] is True
    assert len(row["curve"]) == 2 and "accuracy_largest" in row["curve"][0]
    code, out, _ = invoke("supernet", "list", "-f", "json", db=url)
    assert code == 0 and '"status": "finished"' in out
    code, _, err = invoke("supernet", "train", "--resume", "1", db=url)
    assert code == 2 and "already has all 2 epochs" in err
    code, _, err = invoke("supernet", "train", "--resume", "1", "--epochs", "3", db=url)
    assert code == 2 and "drop --epochs" in err
    assert row["config"]["distill"] is False and '"distill": false' in out
    code, _, err = invoke(
        "supernet", "train", "--space", TINY, "--data", data, "--distill", "--no-sandwich", db=url
    )
    assert code == 2 and "--distill: True" in err and "--sandwich" in err
    assert len(err.strip().splitlines()) == 1 and len(Store(url).list_supernets()) == 1


def test_search_on_the_supernet_end_to_end(trained: tuple[str, str, str], tmp_path: Path) -> None:
    url, path, _ = trained
    code, out, err = invoke(
        "run",
        "--space",
        TINY,
        "--strategy",
        "supernet",
        "--supernet",
        "1",
        "--budget",
        "40KFLOP",
        "--trials",
        "20",
        "-O",
        "population=8",
        "-O",
        "parents=3",
        "-O",
        "mutations=4",
        "-O",
        "crossovers=4",
        "--batch-size",
        "8",
        db=url,
    )
    assert code == 0, err
    store = Store(url)
    (run,) = store.list_runs()
    trials = store.trials(run.id)
    assert len(trials) == 20
    assert all(0 <= t.values["supernet_accuracy"] <= 100 for t in trials)
    assert all(39_000 <= t.cost.macs <= 40_000 for t in trials)
    from archsearch.evaluators.training import describe_device, resolve_device

    here = describe_device(resolve_device("auto"))  # the supernet score's default device
    assert {t.device for t in trials} == {here} and store.run_devices(run.id) == {here: 20}
    best = max(trials, key=lambda t: t.values["supernet_accuracy"])
    code, stdout, err = invoke(
        "supernet",
        "extract",
        path,
        best.digest[:12],
        "--out",
        str(tmp_path / "m.safetensors"),
        db=url,
    )
    assert code == 0, err
    module = archsearch.load_weights(tmp_path / "m.safetensors")
    arch = archsearch.Architecture.from_json(store.architecture(best.digest).spec)
    assert sum(p.numel() for p in module.parameters()) == archsearch.count(arch).params
    x = torch.randn(2, 1, 8, 8)
    assert module(x).shape == (2, 2)
    # the same computation as the supernet's member
    from archsearch.supernet import load_checkpoint

    net = load_checkpoint(path).supernet.eval()
    assert torch.allclose(module(x), net(x, arch), atol=1e-5)


def test_bad_input_is_one_line_with_exit_2(trained: tuple[str, str, str], tmp_path: Path) -> None:
    url, path, _ = trained
    code, _, err = invoke(
        "run",
        "--space",
        "vit-resnas-small",
        "--strategy",
        "supernet",
        "--supernet",
        path,
        db=url,
    )
    assert code == 2 and "trained for space 'tiny-resnas'" in err and len(err.splitlines()) == 1
    code, _, err = invoke("run", "--space", TINY, "--strategy", "supernet", db=url)
    assert code == 2 and "--supernet" in err
    code, _, err = invoke("run", "--space", TINY, "--supernet", "7", db=url)
    assert code == 2 and err.startswith("error: --supernet=7: no supernet with id 7")
    # an unknown id names the option it was written in
    code, _, err = invoke(
        "run", "--space", TINY, "--strategy", "slimming", "-O", "importance=7", db=url
    )
    assert code == 2 and err.startswith("error: -O importance=7: no supernet with id 7")
    code, _, err = invoke("supernet", "train", "--resume", "7", db=url)
    assert code == 2 and err.startswith("error: --resume=7: no supernet with id 7")
    spec = tmp_path / "other.json"
    spec.write_text(load_space("vit-resnas-small").sample(seed=0).to_json())
    code, _, err = invoke("supernet", "extract", path, str(spec), db=url)
    assert code == 2 and "not a member of space 'tiny-resnas'" in err
    code, _, err = invoke("supernet", "train", "--space", TINY, db=url)
    assert code == 2 and "--space and --data are required" in err
    before = Store(url).list_supernets()
    for args, message in [
        (["--precision", "fp8"], "--precision: 'fp8' is not one of fp32, bf16, fp16"),
        (["--device", "tpu"], "--device 'tpu': use auto, cpu, cuda or cuda:N"),
        (["--device", "cpu", "--precision", "fp16"], "precision fp16: needs a CUDA device"),
    ] + ([(["--device", "cuda"], "--device cuda: torch sees no CUDA GPU")] if NO_CUDA else []):
        code, _, err = invoke("supernet", "train", "--resume", "1", *args, db=url)
        assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert Store(url).list_supernets() == before  # refused before anything was stored


def test_hostile_checkpoints_are_refused_without_running_code(
    trained: tuple[str, str, str], tmp_path: Path
) -> None:
    url, path, _ = trained
    bad, marker = hostile_pickle(tmp_path)
    raw, raw_marker = hostile_raw_pickle(tmp_path)
    for ck in (bad, raw):
        code, _, err = invoke("run", "--space", TINY, "--supernet", str(ck), db=url)
        assert code == 2 and "pickle file" in err and len(err.splitlines()) == 1, err
        code, _, err = invoke("supernet", "train", "--resume", str(ck), db=url)
        assert code == 2 and "pickle file" in err and len(err.splitlines()) == 1, err
        code, _, err = invoke("supernet", "extract", str(ck), "zoo:deit_ti", db=url)
        assert code == 2 and "pickle file" in err, err
        code, _, err = invoke("supernet", "migrate", str(ck), db=url)
        assert code == 2 and "cannot be read safely" in err and len(err.splitlines()) == 1, err
    assert not marker.exists() and not raw_marker.exists()


def test_migrate_converts_an_old_checkpoint_and_repoints_the_database(
    trained: tuple[str, str, str], tmp_path: Path
) -> None:
    url, path, _ = trained
    from archsearch.supernet import load_checkpoint

    done = load_checkpoint(path)
    old = tmp_path / "old.pt"
    torch.save({**done.state, "format": 1}, old)
    store = Store(url)
    store.update_supernet(1, checkpoint=str(old.resolve()))
    code, _, err = invoke("run", "--space", TINY, "--supernet", "1", db=url)
    assert code == 2 and "archsearch supernet migrate" in err
    code, out, err = invoke("supernet", "migrate", str(old), db=url)
    assert code == 0, err
    assert "supernet(s) 1 now use it" in out
    new = old.with_suffix(".safetensors")
    assert store.get_supernet(1)["checkpoint"] == str(new.resolve())
    again = load_checkpoint(new).supernet.state_dict()
    assert all(torch.equal(again[k], v) for k, v in done.supernet.state_dict().items())

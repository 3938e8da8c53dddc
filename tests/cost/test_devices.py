"""Devices: identities, options, availability, and that each one really times a module."""

from __future__ import annotations

import os

import pytest
import torch

from archsearch.cost.devices import DEVICES, available_devices, create_device
from archsearch.errors import UnknownNameError, UserError
from archsearch.spaces import Space


def test_registry_and_availability() -> None:
    assert {"cpu", "cuda", "onnxruntime"} <= set(DEVICES.names())  # plugins may add more
    assert "cpu" in available_devices()
    if not torch.cuda.is_available():
        assert "cuda" not in available_devices()
        with pytest.raises(
            UserError, match="--device cuda is not available here: no CUDA GPU.*available: cpu"
        ):
            create_device("cuda")
    with pytest.raises(UnknownNameError, match="unknown device 'tpu'; choose one of: cpu"):
        create_device("tpu")


def test_cpu_identity_and_key() -> None:
    d = create_device("cpu", threads=1)
    ident = d.identity()
    for field in (
        "cpu",
        "cores",
        "machine",
        "torch",
        "threads",
        "batch",
        "dtype",
        "channels_last",
    ):
        assert field in ident
    assert ident["threads"] == 1 and ident["cores"] == os.cpu_count()
    assert d.key == create_device("cpu", threads=1).key
    assert d.key != create_device("cpu", threads=2).key
    assert d.key != create_device("cpu", threads=1, batch=2).key
    assert create_device("cpu").identity()["threads"] == os.cpu_count()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dtype": "int8"}, "dtype 'int8' is not supported; choose one of: float32, bfloat16"),
        ({"batch": 0}, "batch=0 must be at least 1"),
        ({"thread": 2}, "does not accept option 'thread'"),
    ],
)
def test_bad_options(options: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        create_device("cpu", **options)


def tiny() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU())


@pytest.mark.parametrize(
    "options", [{}, {"channels_last": True}, {"dtype": "bfloat16", "batch": 2}]
)
def test_cpu_times_a_module_under_its_thread_count(options: dict) -> None:
    d = create_device("cpu", threads=1, **options)
    before = torch.get_num_threads()
    with d.session():
        assert torch.get_num_threads() == 1
        run = d.runner(tiny(), (3, 16, 16))
        assert d.time_once(run) > 0
    assert torch.get_num_threads() == before


def test_runner_input_layouts_and_network_layouts(hybrid: Space) -> None:
    from archsearch.build import build

    d = create_device("cpu", threads=1)
    identity = torch.nn.Identity()
    assert d.layout_of(d.runner(identity, (3, 8, 8))()) == "nchw"
    assert d.layout_of(d.runner(identity, (3, 8, 8), "nhwc")()) == "nhwc"
    assert create_device("cpu", channels_last=True).input_layout == "nhwc"
    assert d.identity()["protocol"] == 2
    # patchify's LayerNorm hands on a channels-last map; a conv stem does not.
    stems = {}
    for seed in range(40):
        arch = hybrid.sample(seed=seed)
        stems.setdefault(arch.layers[0].block.type, arch)
    for stem, handed_on in (("patchify", "nhwc"), ("conv_stem", "nchw")):
        arch = stems[stem]
        layouts = d.layer_layouts(build(arch), arch.input_shape)
        assert len(layouts) == len(arch.layers) and layouts[:2] == ["nchw", handed_on]


def test_onnxruntime_times_an_exported_module() -> None:
    reason = DEVICES.get("onnxruntime").unavailable()
    if reason:
        pytest.skip(reason)
    d = create_device("onnxruntime", threads=1)
    assert "onnxruntime" in d.identity()
    run = d.runner(tiny(), (3, 16, 16))
    assert d.time_once(run) > 0
    assert d.layouts == ("nchw",) and d.layout_of(run()) == "nchw"


def test_cuda_times_with_events() -> None:
    reason = DEVICES.get("cuda").unavailable()
    if reason:
        pytest.skip(reason)
    d = create_device("cuda")
    assert d.identity()["gpu"]
    run = d.runner(tiny(), (3, 16, 16))
    assert d.time_once(run) > 0


def test_devices_conform() -> None:
    from archsearch.testing.devices import check_device

    check_device("cpu", threads=1, batch=2)
    if "onnxruntime" in available_devices():
        check_device("onnxruntime", batch=2)

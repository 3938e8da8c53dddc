"""Devices that measure latency, each with an identity that says what a number was measured on.

* ``cpu``: torch eager on the CPU; options ``threads`` (default: all cores), ``batch``,
  ``dtype`` (float32, bfloat16) and ``channels_last``.
* ``cuda``: torch eager on the first GPU, timed with CUDA events after a synchronisation;
  options ``batch``, ``dtype`` (float32, float16, bfloat16), ``channels_last``.
* ``onnxruntime``: the module exported with torch's ONNX exporter and run by an ONNX Runtime
  ``InferenceSession`` on the CPU (``pip install archsearch[onnx]``); options ``threads``,
  ``batch``.

A device's :meth:`~Device.identity` records the hardware (CPU model and core count, GPU name),
the runtime versions and every option; its :attr:`~Device.key` hashes that identity, and the
store keeps latency numbers per key, so numbers measured under different conditions never mix.
Torch devices time a block at each input memory layout (NCHW, channels-last) and report the
layout of its output; an exported ONNX graph takes NCHW whatever the tensor's strides.
Plugins add devices through the entry-point group ``archsearch.devices``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from archsearch.errors import UnknownNameError, UserError
from archsearch.registry import Registry, check_kwargs

if TYPE_CHECKING:
    from torch import nn

    from archsearch.blocks.layers import Network

Runner = Callable[[], Any]
"""Runs one forward pass and returns its output; built by :meth:`Device.runner`."""

#: Part of every identity: bumped when a change of the measurement protocol changes what a
#: stored number means, so that tables measured before are not reused (2: input layouts).
PROTOCOL = 2


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class Device(ABC):
    """A place to time modules. Options are keyword-only; unknown ones are refused.

    Args:
        batch: Images per forward pass.
        dtype: Floating-point type of weights and inputs.
        channels_last: NHWC memory layout for 4-D tensors.
    """

    name: ClassVar[str]
    dtypes: ClassVar[tuple[str, ...]] = ("float32",)

    def __init__(self, *, batch: int = 1, dtype: str = "float32", channels_last: bool = False):
        if batch < 1:
            raise UserError(f"device {self.name}: batch={batch} must be at least 1")
        if dtype not in self.dtypes:
            raise UserError(
                f"device {self.name}: dtype {dtype!r} is not supported; choose one of: "
                f"{', '.join(self.dtypes)}"
            )
        self.batch, self.dtype, self.channels_last = batch, dtype, channels_last

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this device cannot measure on this machine, or None when it can."""
        return None

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """Hardware, runtime versions and options: what makes two measurements comparable."""

    @cached_property
    def key(self) -> str:
        """A short hash of :meth:`identity`; the store keys every latency number by it."""
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def options(self) -> dict[str, Any]:
        return {"batch": self.batch, "dtype": self.dtype, "channels_last": self.channels_last}

    @contextmanager
    def session(self) -> Iterator[None]:
        """Holds the device's settings (e.g. the thread count) while measuring."""
        yield

    #: The input layouts whose speed differs on this device (see :data:`LAYOUTS`).
    layouts: ClassVar[tuple[str, ...]] = ("nchw", "nhwc")

    @property
    def input_layout(self) -> str:
        """The layout of a network's input: channels-last with that option, else NCHW."""
        return "nhwc" if self.channels_last else "nchw"

    @abstractmethod
    def runner(
        self, module: nn.Module, input_shape: tuple[int, ...], layout: str | None = None
    ) -> Runner:
        """Prepares ``module`` for an input of ``input_shape`` (no batch) in ``layout``
        (default: :attr:`input_layout`); returns one pass."""

    def layout_of(self, output: Any) -> str:
        """The layout of a runner's output."""
        from archsearch.cost.latency import tensor_layout

        return tensor_layout(output)

    def layer_layouts(self, network: Network, input_shape: tuple[int, ...]) -> list[str]:
        """The input layout of every layer of a built network (stem, stage blocks, head), from
        one forward pass on this device."""
        seen: list[str] = []
        layers: list[nn.Module] = network.layer_modules()
        hooks = [
            m.register_forward_pre_hook(lambda _, args: seen.append(self.layout_of(args[0])))
            for m in layers
        ]
        try:
            self.runner(network, input_shape)()
        finally:
            for h in hooks:
                h.remove()
        return seen

    def time_once(self, run: Runner) -> float:
        """Milliseconds one call of ``run`` takes, finished work included."""
        start = time.perf_counter_ns()
        run()
        return (time.perf_counter_ns() - start) / 1e6

    def _prepare_torch(
        self, module: nn.Module, input_shape: tuple[int, ...], device: str, layout: str | None
    ) -> tuple[nn.Module, Any]:
        import torch

        dtype = getattr(torch, self.dtype)
        module = module.eval().to(device=device, dtype=dtype)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        x = torch.randn((self.batch, *input_shape), dtype=dtype, device=device)
        if (layout or self.input_layout) == "nhwc" and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return module, x


class CPU(Device):
    """Torch eager on the CPU, with a fixed number of threads."""

    name = "cpu"
    dtypes = ("float32", "bfloat16")

    def __init__(
        self,
        *,
        threads: int | None = None,
        batch: int = 1,
        dtype: str = "float32",
        channels_last: bool = False,
    ) -> None:
        super().__init__(batch=batch, dtype=dtype, channels_last=channels_last)
        self.threads = threads or os.cpu_count() or 1
        if self.threads < 1:
            raise UserError(f"device cpu: threads={threads} must be at least 1")

    def options(self) -> dict[str, Any]:
        return {"threads": self.threads, **super().options()}

    def identity(self) -> dict[str, Any]:
        import torch

        return {
            "device": self.name,
            "protocol": PROTOCOL,
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "machine": platform.machine(),
            "torch": torch.__version__,
            **self.options(),
        }

    @contextmanager
    def session(self) -> Iterator[None]:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def runner(
        self, module: nn.Module, input_shape: tuple[int, ...], layout: str | None = None
    ) -> Runner:
        import torch

        module, x = self._prepare_torch(module, input_shape, "cpu", layout)

        def run() -> Any:
            with torch.inference_mode():
                return module(x)

        return run


class CUDA(Device):
    """Torch eager on the first CUDA GPU, timed with CUDA events."""

    name = "cuda"
    dtypes = ("float32", "float16", "bfloat16")

    @classmethod
    def unavailable(cls) -> str | None:
        import torch

        if not torch.cuda.is_available():
            return "no CUDA GPU is visible to torch (torch.cuda.is_available() is False)"
        return None

    def identity(self) -> dict[str, Any]:
        import torch

        props = torch.cuda.get_device_properties(0)
        return {
            "device": self.name,
            "protocol": PROTOCOL,
            "gpu": props.name,
            "capability": f"{props.major}.{props.minor}",
            "cuda": torch.version.cuda,
            "torch": torch.__version__,
            **self.options(),
        }

    def runner(
        self, module: nn.Module, input_shape: tuple[int, ...], layout: str | None = None
    ) -> Runner:
        import torch

        module, x = self._prepare_torch(module, input_shape, "cuda", layout)

        def run() -> Any:
            with torch.inference_mode():
                return module(x)

        return run

    def time_once(self, run: Runner) -> float:
        import torch

        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        run()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))


class ONNXRuntime(Device):
    """The module exported to ONNX and timed in an ONNX Runtime session on the CPU."""

    name = "onnxruntime"

    dtypes = ("float32",)

    def __init__(
        self, *, threads: int | None = None, batch: int = 1, dtype: str = "float32"
    ) -> None:
        # dtype is part of the identity (float32 only), so options() recreates the device
        super().__init__(batch=batch, dtype=dtype)
        self.threads = threads or os.cpu_count() or 1

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError:
            return "onnxruntime or onnx is not installed (pip install 'archsearch[onnx]')"
        return None

    def options(self) -> dict[str, Any]:
        return {"threads": self.threads, "batch": self.batch, "dtype": self.dtype}

    def identity(self) -> dict[str, Any]:
        import onnxruntime
        import torch

        return {
            "device": self.name,
            "protocol": PROTOCOL,
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "onnxruntime": onnxruntime.__version__,
            "torch": torch.__version__,
            **self.options(),
        }

    #: An exported graph takes NCHW input whatever the torch tensor's strides were.
    layouts = ("nchw",)

    def layout_of(self, output: Any) -> str:
        return "nchw"

    def layer_layouts(self, network: Network, input_shape: tuple[int, ...]) -> list[str]:
        return ["nchw"] * len(network.layer_modules())

    def runner(
        self, module: nn.Module, input_shape: tuple[int, ...], layout: str | None = None
    ) -> Runner:
        import onnxruntime as ort
        import torch

        module, x = self._prepare_torch(module, input_shape, "cpu", "nchw")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "block.onnx"
            with warnings.catch_warnings():
                # The TorchScript exporter is deprecated but exports a block in a tenth of the
                # time of the torch.export one, which matters when profiling thousands.
                warnings.simplefilter("ignore")
                torch.onnx.export(module, (x,), str(path), dynamo=False, opset_version=17)
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x.numpy()}

        def run() -> Any:
            return session.run(None, feed)

        return run


DEVICES: Registry[type[Device]] = Registry("device", entry_point_group="archsearch.devices")
for _d in (CPU, CUDA, ONNXRuntime):  # devices live in this one module: listed here
    DEVICES.register(_d.name, _d)


def available_devices() -> list[str]:
    return [n for n in DEVICES.names() if DEVICES.get(n).unavailable() is None]


def create_device(name: str, /, **options: Any) -> Device:
    """The device ``name`` with ``options``.

    Raises:
        UnknownNameError: no such device (the message lists them).
        UserError: the device is not available here (the message says why and lists the
            available ones), or an option is unknown.
    """
    try:
        cls = DEVICES.get(name)
    except UnknownNameError:
        raise UnknownNameError("device", name, DEVICES.names()) from None
    reason = cls.unavailable()
    if reason:
        raise UserError(
            f"--device {name} is not available here: {reason}; available: "
            f"{', '.join(available_devices())}"
        )
    check_kwargs(f"device {name!r}", cls, options)
    device: Device = cls(**options)
    return device

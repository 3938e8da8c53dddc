"""Test evaluators for the crash and worker-fault tests, importable by subprocesses and (by
value) by Ray workers."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from archsearch.evaluators import EVALUATORS, Evaluator, Metric
from archsearch.spec import Architecture


class Logged(Evaluator):
    """An expensive-looking score that appends each digest it finished to ``$LOGGED_EVAL`` and
    sleeps ``$LOGGED_SLEEP`` seconds per candidate (so that a kill lands mid-run)."""

    name = "logged"
    cheap = False
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("logged", "max"),)

    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        out = []
        for arch in archs:
            time.sleep(float(os.environ.get("LOGGED_SLEEP", "0")))
            value = float(int(arch.digest[:6], 16) % 1000)
            with open(os.environ["LOGGED_EVAL"], "a") as f:
                f.write(arch.digest + "\n")
            out.append({"logged": value})
        return out


class Killer(Evaluator):
    """Kills its own worker process (SIGKILL) the first time it sees a candidate whose digest
    starts with one of ``prefixes`` (``always``: every time), leaving a marker in ``marks``."""

    name = "killer"
    cheap = True
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("killer", "max"),)

    def __init__(self, *, marks: str, prefixes: str = "0123456789abcdef", always: bool = False):
        self.marks = marks
        self.prefixes = prefixes
        self.always = always

    def config(self) -> dict[str, object]:
        return {"marks": self.marks, "prefixes": self.prefixes, "always": self.always}

    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        for arch in archs:
            mark = Path(self.marks) / arch.digest
            if arch.digest[0] in self.prefixes and (self.always or not mark.exists()):
                mark.touch()
                os.kill(os.getpid(), signal.SIGKILL)
        return [{"killer": float(int(a.digest[:6], 16) % 1000)} for a in archs]


class SlowCheap(Logged):
    """:class:`Logged` as a cheap score (stored in batches, not one trial at a time)."""

    name = "slowcheap"
    cheap = True
    metrics: ClassVar[tuple[Metric, ...]] = (Metric("slowcheap", "max"),)

    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        return [{"slowcheap": v["logged"]} for v in super().evaluate(archs)]


def register() -> None:
    for name, cls in (("logged", Logged), ("killer", Killer), ("slowcheap", SlowCheap)):
        if name not in EVALUATORS._items:
            EVALUATORS.register(name, cls)  # type: ignore[arg-type]


register()

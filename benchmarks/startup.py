"""Start-up time: `archsearch --help`, `archsearch count` and `import archsearch` against a
bare interpreter, measured side by side in one run (the median of ``--repeats`` runs each,
interleaved so that a drift of the machine spreads over all of them).

Target: `--help` and `count` within 0.5 s of `python -c pass` on an idle machine. The heavy
dependencies (SQLAlchemy and Alembic, torch, Ray, cvxpy, Optuna) are imported by the commands
that use them, not at start-up; `python -X importtime -c "import archsearch.cli"` shows what
remains.

    python benchmarks/startup.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests" / "fixtures" / "deepmad_r50.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    exe = shutil.which("archsearch", path=str(Path(sys.executable).parent)) or "archsearch"
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import archsearch": [sys.executable, "-c", "import archsearch"],
        "archsearch --help": [exe, "--help"],
        "archsearch count <spec>": [exe, "count", str(SPEC)],
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(args.repeats):
        for name, argv in commands.items():
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<26} {'median s':>9} {'min s':>7} {'over python -c pass':>20}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<26} {med:9.3f} {min(values):7.3f} {med - base:19.3f}s")
    worst = max(
        statistics.median(times[k]) for k in ("archsearch --help", "archsearch count <spec>")
    )
    verdict = "met" if worst - base <= 0.5 else "NOT met"
    print(f"target (--help and count within 0.5 s of python -c pass): {verdict}")


if __name__ == "__main__":
    main()

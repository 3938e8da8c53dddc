"""Fuzzing every parser a user reaches, through the real command line.

Each test draws hostile inputs with hypothesis (mutated space and spec files, budgets and
units, ``--where`` expressions, objectives, sweep files, CSV tables, ``-O``/``-S``/``-D``
options, numeric flags), runs the command in a forked child with a memory and time limit
(:mod:`tests.fuzz.forkserver`) and checks the property of :func:`tests.fuzz.conftest.check`:
exit 0 or 2, one line on failure, never a traceback or a hang, and no stored row changed.

The default run draws a few examples per parser (seconds each); a long run:
``pytest tests/fuzz --hypothesis-profile fuzz`` (300 per parser; see the README).
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES
from tests.fuzz.conftest import CliServer, check, fuzz_examples, snapshot

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

FUZZ = settings(
    max_examples=fuzz_examples(10),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

# -- values a hostile user writes ----------------------------------------------------------

HUGE_INTS = st.sampled_from(
    [0, -1, 1, 2**31, 2**63, 10**12, 10**30, 50_000_000, 99_999_999_999_999_999_999]
)
FLOATS = st.sampled_from([0.0, -1.5, 1e308, 1e-308, float("nan"), float("inf"), 0.5, 1e11])
STRINGS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "x" * 5000, "é😀", "a\tb", "../../etc/passwd", "zoo:nope"]),
)
SCALARS = st.one_of(HUGE_INTS, FLOATS, STRINGS, st.booleans(), st.none(), st.integers(-5, 300))
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
        st.builds(
            lambda lo, hi, step: {"min": lo, "max": hi, "step": step},
            HUGE_INTS,
            HUGE_INTS,
            HUGE_INTS,
        ),
    ),
    max_leaves=8,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with 1-3 random values replaced, keys removed or added."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(VALUES)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(VALUES)
    return doc


@st.composite
def as_file_text(draw: st.DrawFn, doc: dict[str, Any]) -> bytes:
    """A document as YAML or JSON text, sometimes damaged at the byte level (invalid UTF-8,
    a NUL, a key written twice, an alias bomb, deep nesting, truncation)."""
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    damage = draw(
        st.sampled_from(["none", "none", "bytes", "nul", "dup", "bomb", "deep", "cut", "tag"])
    )
    if damage == "none":
        return text.encode()
    if damage == "bytes":
        raw = bytearray(text.encode())
        raw[draw(st.integers(0, len(raw) - 1))] = 0xFF
        return bytes(raw)
    if damage == "nul":
        return (text + "\0\n").encode()
    if damage == "dup":
        first = text.splitlines()[0]
        return (text + first + "\n").encode()
    if damage == "bomb":
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for i in range(1, 9):
            lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
        return (text + "\n".join(lines) + "\n").encode()
    if damage == "deep":
        return (text + "deep: " + "[" * 5000 + "]" * 5000 + "\n").encode()
    if damage == "tag":
        return (text + 'evil: !!python/object/apply:os.system ["echo pwned"]\n').encode()
    return text.encode()[: draw(st.integers(0, len(text)))]


@contextmanager
def workdir(seeded: Path) -> Iterator[tuple[Path, str, dict[str, set[tuple[object, ...]]]]]:
    """A fresh folder with a copy of the seeded database: (folder, URL, snapshot)."""
    with tempfile.TemporaryDirectory(prefix="archsearch-fuzz-") as tmp:
        folder = Path(tmp)
        db = folder / "fuzz.db"
        shutil.copy(seeded, db)
        yield folder, f"sqlite:///{db}", snapshot(db)


TINY = str(FIXTURES / "tiny_space.yaml")
SPACE = yaml.safe_load((FIXTURES / "tiny_space.yaml").read_text())
SPEC = yaml.safe_load((FIXTURES / "deepmad_r50.yaml").read_text())


# -- the fuzz tests --------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_space_files(cli: CliServer, seeded: Path, data: st.DataObject) -> None:
    raw = data.draw(as_file_text(data.draw(mutated(SPACE))))
    with workdir(seeded) as (folder, url, before):
        (folder / "space.yaml").write_bytes(raw)
        out = cli("spaces", "show", "space.yaml", cwd=folder)
        check(out, None, folder / "fuzz.db")
        out = cli(
            "run", "--space", "space.yaml", "--score", "params", "--trials", "3", "--db", url,
            cwd=folder,
        )  # fmt: skip
        check(out, before, folder / "fuzz.db")


@FUZZ
@given(data=st.data())
def test_spec_files(cli: CliServer, seeded: Path, data: st.DataObject) -> None:
    raw = data.draw(as_file_text(data.draw(mutated(SPEC))))
    suffix = data.draw(st.sampled_from([".yaml", ".json"]))
    with workdir(seeded) as (folder, url, before):
        (folder / f"spec{suffix}").write_bytes(raw)
        check(cli("count", f"spec{suffix}", "-f", "json", cwd=folder), None, folder / "fuzz.db")
        out = cli("evaluate", f"spec{suffix}", "--score", "entropy", "--db", url, cwd=folder)
        check(out, before, folder / "fuzz.db")


BUDGET_TEXT = st.one_of(
    st.text(alphabet="0123456789.eE+-kKmMgGtTpPfFlLoOsSaAcC ,", max_size=24),
    st.text(max_size=12),
    st.builds(
        lambda n, u: f"{n}{u}",
        st.integers(-10, 10**40),
        st.sampled_from(["GFLOP", "MFLOP", "M", "k", "GMAC", "TFLOPs", "e999FLOP", "e-999M", ""]),
    ),
)


@FUZZ
@given(budget=BUDGET_TEXT)
def test_budgets_and_units(cli: CliServer, seeded: Path, budget: str) -> None:
    with workdir(seeded) as (folder, url, before):
        out = cli(
            "run", "--space", "hybrid", "--score", "params", "--trials", "2", "--budget", budget,
            "--db", url, cwd=folder,
        )  # fmt: skip
        check(out, before, folder / "fuzz.db")


METRICS = st.sampled_from(
    ["macs", "params", "entropy", "rho", "naswot", "latency@cpu", "nope", "x" * 300, "a.b"]
)
NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["1e999", "-1e999", "5M", "1.5G", "1e400k", "0x10", "nan", "1_000"]),
)


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 3 or draw(st.booleans()):
        op = draw(st.sampled_from(["<", "<=", ">", ">=", "=", "==", "!=", "<>", "in"]))
        return f"{draw(METRICS)} {op} {draw(NUMBERS)}"
    kind = draw(st.sampled_from(["and", "or", "not", "paren", "junk", "many"]))
    if kind == "not":
        return f"not {draw(expressions(depth + 1))}"
    if kind == "paren":
        return f"({draw(expressions(depth + 1))})"
    if kind == "junk":
        return draw(st.text(max_size=30))
    if kind == "many":
        n = draw(st.sampled_from([50, 300, 3000]))
        return " and ".join(["params < 5M"] * n)
    return f"{draw(expressions(depth + 1))} {kind} {draw(expressions(depth + 1))}"


@FUZZ
@given(
    where=expressions(),
    objectives=st.one_of(
        st.lists(
            st.builds(
                lambda m, d: f"{m}:{d}", METRICS, st.sampled_from(["min", "max", "MAX", "", "up"])
            ),
            max_size=4,
        ).map(",".join),
        st.text(max_size=20),
    ),
)
def test_where_and_objectives(cli: CliServer, seeded: Path, where: str, objectives: str) -> None:
    with workdir(seeded) as (folder, url, before):
        out = cli("pareto", "--run", "1", "--where", where, "-f", "json", "--db", url, cwd=folder)
        check(out, before, folder / "fuzz.db")
        out = cli("pareto", "--run", "1", "--objectives", objectives, "--db", url, cwd=folder)
        check(out, before, folder / "fuzz.db")
        out = cli(
            "run", "--space", TINY, "--score", "entropy", "--trials", "2", "--constraint",
            where, "--db", url, cwd=folder,
        )  # fmt: skip
        check(out, before, folder / "fuzz.db")


SWEEP = {
    "name": "fuzz",
    "base": {"space": "nb201", "score": "entropy", "trials": 10},
    "grid": {"seed": [0, 1], "budget": ["50MFLOP", "100MFLOP"]},
    "runs": [{"strategy": "random"}, {"strategy": "evolution"}],
}


@st.composite
def sweep_docs(draw: st.DrawFn) -> dict[str, Any]:
    doc = draw(mutated(SWEEP))
    if draw(st.booleans()) and isinstance(doc.get("grid"), dict):
        size = draw(st.sampled_from([10, 200, 5000]))
        doc["grid"][draw(st.sampled_from(["seed", "trials", "batch_size"]))] = list(range(size))
    return doc


@FUZZ
@given(data=st.data())
def test_sweep_files(cli: CliServer, seeded: Path, data: st.DataObject) -> None:
    raw = data.draw(as_file_text(data.draw(sweep_docs())))
    with workdir(seeded) as (folder, url, before):
        (folder / "sweep.yaml").write_bytes(raw)
        out = cli("sweep", "sweep.yaml", "--check", "--db", url, cwd=folder, timeout=120)
        check(out, before, folder / "fuzz.db")


CELLS = st.sampled_from(
    [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "garbage",
        "",
    ]
)


@st.composite
def tables(draw: st.DrawFn) -> bytes:
    key = draw(st.sampled_from(["arch_str", "digest", "id", ""]))
    columns = draw(
        st.lists(
            st.one_of(
                st.sampled_from(["acc", "lat_ms", "x" * 80, "", "macs", "é"]), st.text(max_size=12)
            ),
            min_size=0,
            max_size=4,
        )
    )
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        cells = [draw(st.one_of(CELLS, st.text(max_size=10), st.sampled_from(["abcdef", "0"])))]
        cells += [
            draw(st.one_of(NUMBERS, st.sampled_from(["", "inf", "-inf", "1e309"])))
            for _ in columns
        ]
        if draw(st.integers(0, 5)) == 0:
            cells.append("extra")
        rows.append(",".join(cells))
    text = "\n".join([",".join([key, *columns]), *rows]) + "\n"
    raw = text.encode()
    if draw(st.integers(0, 5)) == 0:
        raw += b"\xff\xfe"
    return raw


@FUZZ
@given(raw=tables(), score=st.sampled_from(["table", "table:acc", "table:nope", "entropy"]))
def test_table_files(cli: CliServer, seeded: Path, raw: bytes, score: str) -> None:
    with workdir(seeded) as (folder, url, before):
        (folder / "t.csv").write_bytes(raw)
        out = cli(
            "run", "--space", "nb201", "--table", "t.csv", "--score", score, "--trials", "3",
            "--db", url, cwd=folder,
        )  # fmt: skip
        check(out, before, folder / "fuzz.db")


OPTION_VALUES = st.one_of(
    NUMBERS,
    st.sampled_from(
        ["abc", "[1, 2]", "{a: 1}", "null", "true", "-1", "0", ".nan", ".inf", "1e400",
         '!!python/object/apply:os.system ["echo pwned"]', "", "'x'", "99999999999999999999"]
    ),
)  # fmt: skip


@FUZZ
@given(
    strategy_option=st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(
            ["population", "sample_size", "mutation_prob", "max_tries", "seed", "nope", ""]
        ),
        OPTION_VALUES,
    ),
    score_option=st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(["seed", "batch", "input", "nope", "columns"]),
        OPTION_VALUES,
    ),
    device_option=st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(["threads", "batch", "dtype", "channels_last", "nope"]),
        OPTION_VALUES,
    ),
)
def test_strategy_score_and_device_options(
    cli: CliServer, seeded: Path, strategy_option: str, score_option: str, device_option: str
) -> None:
    tiny = TINY
    with workdir(seeded) as (folder, url, before):
        out = cli(
            "run", "--space", tiny, "--score", "entropy", "--trials", "3", "-O", strategy_option,
            "--db", url, cwd=folder,
        )  # fmt: skip
        check(out, before, folder / "fuzz.db")
        out = cli(
            "run", "--space", tiny, "--score", "naswot", "--proxy-batch", "2", "--trials", "2",
            "-S", score_option, "--db", url, cwd=folder,
        )  # fmt: skip
        check(out, before, folder / "fuzz.db")
        out = cli(
            "latency", "measure", "zoo:deit_ti", "--repeats", "1", "-D", device_option, "--db",
            url, cwd=folder,
        )  # fmt: skip
        check(out, before, folder / "fuzz.db")


FLAG_VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "0", "-0", "", "abc", "1.5", "0x10"]),
)


@FUZZ
@given(
    flag=st.sampled_from(["--trials", "--seed", "--batch-size", "--time-limit", "--top", "--rho"]),
    value=FLAG_VALUES,
    listing=st.sampled_from(
        [["pareto", "--run"], ["pareto", "--run", "1", "--limit"], ["show"], ["runs", "delete"],
         ["supernet", "extract"], ["run", "--resume"]]
    ),
)  # fmt: skip
def test_numeric_flags(
    cli: CliServer, seeded: Path, flag: str, value: str, listing: list[str]
) -> None:
    # A valid --trials 95449 is real work, not a hang: the time limit bounds it.
    limit = [] if flag == "--time-limit" else ["--time-limit", "5"]
    with workdir(seeded) as (folder, url, before):
        out = cli(
            "run", "--space", "hybrid", "--score", "entropy", "--trials", "2", *limit, flag,
            value, "--db", url, cwd=folder, timeout=90,
        )  # fmt: skip
        check(out, before, folder / "fuzz.db")
        out = cli(*listing, value, "--db", url, cwd=folder)
        check(out, before, folder / "fuzz.db")

"""The README is the user's manual: its Quick start commands and Python example must work."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archsearch.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section_blocks(title: str) -> list[str]:
    section = README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(?:\w+)?\n(.*?)```", section, flags=re.S)


@pytest.mark.slow
def test_quick_start_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # commands name files of the repository (tests/fixtures/...) and write files (export)
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARCHSEARCH_DB", f"sqlite:///{tmp_path / 'readme.db'}")
    commands = [line for line in section_blocks("Quick start")[0].splitlines() if line.strip()]
    assert commands[0].startswith("archsearch run --space hybrid --budget 1GFLOP")
    runner = CliRunner()
    for line in commands:
        argv = shlex.split(line, comments=True)
        assert argv[0] == "archsearch", line
        result = runner.invoke(app, argv[1:])
        assert result.exit_code == 0, f"{line}\n{result.stderr}"


def test_python_example(capsys: pytest.CaptureFixture[str]) -> None:
    import archsearch

    code = section_blocks("Quick start")[1]
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    arch, cost, model = namespace["arch"], namespace["cost"], namespace["model"]
    assert isinstance(arch, archsearch.Architecture)
    assert namespace["space"].contains(arch)  # type: ignore[attr-defined]
    assert cost == archsearch.count(arch)
    assert sum(p.numel() for p in model.parameters()) == cost.params  # type: ignore[attr-defined]
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == "28589128"  # the comment in the README says what it prints


def test_layout_draws_the_enforced_layers() -> None:
    """The README's layer picture is the one tests/test_layers.py enforces."""
    from tests.test_layers import LAYERS

    drawn: dict[str, int] = {}
    for line in section_blocks("Layout")[0].splitlines():
        level, *names = line.split("  ")
        if not level.strip().isdigit():
            continue
        for name in " ".join(names).split():
            if name.endswith(("/", ".py")):
                drawn[name.removesuffix("/").removesuffix(".py")] = int(level)
    assert drawn == {k: v for k, v in LAYERS.items() if k != "__main__"}


def test_layout_names_every_module() -> None:
    """Every module and package of archsearch/ is in the README's folder list."""
    listing = section_blocks("Layout")[1]
    package = ROOT / "archsearch"
    for path in sorted(package.iterdir()):
        if path.name == "__pycache__" or path.suffix == ".typed":
            continue
        if path.is_dir() or path.suffix == ".py":
            name = path.name + ("/" if path.is_dir() else "")
            assert re.search(rf"^  {re.escape(name)}", listing, re.M), name

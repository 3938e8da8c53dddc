"""The one map from library parameter names to the CLI's flags."""

from __future__ import annotations

import pytest

from archsearch.cli.common import as_flags


@pytest.mark.parametrize(
    ("library", "cli"),
    [
        ("trials: 0 is out of range", "--trials: 0 is out of range"),
        ("time_limit: -1 must be positive", "--time-limit: -1 must be positive"),
        ("space is required", "--space is required"),
        ("init zoo:convnext_t skipped: too big", "--init zoo:convnext_t skipped: too big"),
        ("score_option lr: not a number", "-S lr: not a number"),
        ("address 127.0.0.1:1: cannot reach", "--address 127.0.0.1:1: cannot reach"),
        ("db sqlite:////tmp/a.db: a SQLite file", "--db sqlite:////tmp/a.db: a SQLite file"),
        ("max_concurrent: 0 must be at least 1", "--max-concurrent: 0 must be at least 1"),
        (
            "cpus_per_trial/gpus_per_trial 0.0/0.0: CPUs must be positive",
            "--cpus-per-trial/--gpus-per-trial 0.0/0.0: CPUs must be positive",
        ),
        ("budget/constraint: nothing fits", "--budget/--constraint: nothing fits"),
        # not a parameter: left as it is
        ("note: something else", "note: something else"),
        ("cannot open x.yaml: no such file", "cannot open x.yaml: no such file"),
    ],
)
def test_library_messages_name_flags_in_the_cli(library: str, cli: str) -> None:
    assert as_flags(library) == cli

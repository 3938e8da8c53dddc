"""The space conformance suite (:mod:`archsearch.testing.spaces`) over every built-in space."""

from __future__ import annotations

import pytest

from archsearch.spaces import list_spaces, load_space
from archsearch.testing.spaces import check_space

# DeepMAD's spaces range widths over hundreds of values: their block options run to millions
# (latency tables are not profiled for them), so the enumeration is left out there.
WIDE = {"convnet", "mbconv"}


@pytest.mark.parametrize("name", list_spaces())
def test_builtin_space_conforms(name: str) -> None:
    check_space(load_space(name), seeds=range(10), block_options=name not in WIDE)

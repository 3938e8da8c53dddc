"""Latency devices: the identity is plain data naming the device and the protocol, and the
key is a function of it: the same options give the same key, other options another key, and
``options()`` recreates the device.

A plugin's test::

    from archsearch.testing.devices import check_device
    def test_my_device(): check_device("my_device", batch=2)
"""

from __future__ import annotations

import json
from typing import Any

from archsearch.cost.devices import create_device


def check_device(name: str, **other_options: Any) -> None:
    """Every check of this module on device ``name`` (available on this machine);
    ``other_options`` must differ from the defaults."""
    device = create_device(name)
    identity = device.identity()
    json.dumps(identity)  # plain data
    assert identity.get("device") == name and "protocol" in identity
    assert create_device(name).key == device.key
    assert create_device(name, **device.options()).key == device.key
    if other_options:
        assert create_device(name, **other_options).key != device.key

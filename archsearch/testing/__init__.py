"""Conformance suites for archsearch's extensions, shipped so that a plugin author runs on
their block family, strategy, score, space or device the checks archsearch runs on its own:

* :mod:`~archsearch.testing.blocks`: analytic cost equals the built module, documented,
  width-keeping declared;
* :mod:`~archsearch.testing.strategies`: deterministic under a seed, never an infeasible or
  duplicate candidate, survives NaN/inf scores and failures, stops short when exhausted,
  asks its initial candidates first;
* :mod:`~archsearch.testing.spaces`: every sample, mutation and crossover is a member and
  round-trips through JSON with the same digest; encode/decode invert each other;
* :mod:`~archsearch.testing.evaluators`: one result per architecture with the declared
  metrics, deterministic, its configuration recreates it;
* :mod:`~archsearch.testing.devices`: the identity is plain data and keys the device's
  options.

They need pytest and hypothesis (``pip install 'archsearch[dev]'``). Each suite is a set of
functions that raise ``AssertionError``; call them from tests, e.g.::

    from archsearch.testing.strategies import check_strategy
    def test_my_strategy(): check_strategy("my_strategy", load_space("hybrid"))
"""

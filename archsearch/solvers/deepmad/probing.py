"""Probing the block families' own cost and fan-in rules into posynomial costs and
monomial fan-ins per site (see :mod:`archsearch.solvers.deepmad`)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from archsearch.blocks import get_block
from archsearch.errors import SpecError, UserError
from archsearch.solvers.deepmad.encoding import Design, Encoding, Site

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class SiteModel:
    """Costs as posynomials and entropy terms as monomials over the site's slots."""

    site: Site
    slots: tuple[int, ...]
    costs: dict[str, tuple[np.ndarray, np.ndarray]]  # metric -> (coefs (K,), exps (K, n))
    fan_log: np.ndarray  # (F,) log-constants of the fan-ins
    fan_exp: np.ndarray  # (F, n) exponents
    chan_log: float  # log-constant of the feature channels
    chan_exp: np.ndarray  # (n,)
    feature_hw: int
    reduces: bool
    fit_error: float  # worst relative cost error over the probe points


def _monomials(n: int) -> list[tuple[int, ...]]:
    out = [tuple([0] * n)]
    for i in range(n):
        e = [0] * n
        e[i] = 1
        out.append(tuple(e))
    for i in range(n):
        for j in range(i, n):
            e = [0] * n
            e[i] += 1
            e[j] += 1
            out.append(tuple(e))
    return out


def probe(enc: Encoding, site: Site, design: Design) -> SiteModel:
    """Fits the site's costs (degree-2 posynomials) and fan-ins (monomials) by probing."""
    from scipy.optimize import nnls

    t, _ = design.options[site.key]
    family = get_block(t)
    slots = tuple(
        dict.fromkeys(
            [s for s in (site.c_in, site.out) if s >= 0]
            + list(enc.layer_keys[site.key].params[t].values())
        )
    )
    base = enc.mid_values(design)
    grids = []
    for s in slots:
        g = enc.slots[s].grid
        picks = sorted({g[round(q * (len(g) - 1))] for q in (0.0, 0.2, 0.45, 0.7, 1.0)})
        grids.append(picks)
    rows, ys, logs, fans, chans = [], [], [], [], []
    c_fixed = -1 - site.c_in if site.c_in < 0 else None
    distinct = site.c_in >= 0 and site.out >= 0 and site.c_in != site.out
    for combo in itertools.product(*grids):
        if distinct and combo[0] == combo[1]:
            continue  # equal widths drop projections: the general case is the model
        values = list(base)
        for s, v in zip(slots, combo, strict=True):
            values[s] = v
        try:
            block = enc.block(site, design, values)
            c_in = c_fixed if c_fixed is not None else values[site.c_in]
            shape = (c_in, *site.in_hw)
            if family.check(shape, block.out_channels, block.params):
                continue
            cost = family.cost(shape, block.out_channels, block.params)
            f = family.fan_ins(shape, block.out_channels, block.params)
            feat = family.feature_shape(shape, block.out_channels, block.params)
        except (SpecError, ValueError, ZeroDivisionError):
            continue
        x = np.array(combo, dtype=float)
        rows.append(x)
        ys.append((cost.params, cost.macs, cost.activations))
        logs.append(np.log(x))
        fans.append(np.log(np.array(f, dtype=float)))
        chans.append(math.log(feat[0]))
        hw = feat[1] * feat[2]
        out_hw = family.out_shape(shape, block.out_channels, block.params)
    if not rows:
        raise UserError(
            f"deepmad: no probe of {site.key} ({t}) builds; check the space's choices for it"
        )
    monos = _monomials(len(slots))
    X = np.array(rows)
    A = np.array([[float(np.prod(x ** np.array(m))) for m in monos] for x in X])
    Y = np.array(ys, dtype=float)
    costs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    worst = 0.0
    for k, metric in enumerate(("params", "macs", "activations")):
        y = Y[:, k]
        scale = 1.0 / np.maximum(y, 1.0)
        coef, _ = nnls(A * scale[:, None], y * scale)
        keep = coef > 1e-9 * max(coef.max(), 1.0)
        fit = A @ coef
        worst = max(worst, float(np.max(np.abs(fit - y) / np.maximum(y, 1.0))))
        costs[metric] = (coef[keep], np.array(monos, dtype=float)[keep])
    L = np.hstack([np.ones((len(logs), 1)), np.array(logs)])
    F = np.array(fans)
    sol, *_ = np.linalg.lstsq(L, F, rcond=None)
    fan_log, fan_exp = sol[0], sol[1:].T
    csol, *_ = np.linalg.lstsq(L, np.array(chans), rcond=None)
    reduces = site.role in ("downsample", "block") and out_hw[1] * out_hw[2] < math.prod(
        site.in_hw
    )
    return SiteModel(
        site,
        slots,
        costs,
        np.atleast_1d(fan_log),
        np.atleast_2d(fan_exp) if fan_exp.size else np.zeros((0, len(slots))),
        float(csol[0]),
        csol[1:],
        hw,
        reduces,
        worst,
    )

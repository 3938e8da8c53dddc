"""DeepMAD as mathematical programming: design a network by solving for it with cvxpy.

Shen et al., "DeepMAD: Mathematical Architecture Design for Deep Convolutional Neural
Network", CVPR 2023. The paper maximises the network's multi-scale entropy (see
:mod:`archsearch.evaluators.entropy`) under FLOPs, parameter and effectiveness (rho) budgets
and says that off-the-shelf solvers handle it; its released code searches with an evolutionary
algorithm instead. This strategy solves the program.

**The program.** A *design* fixes, per slot of the space (stem, each stage's downsample and
blocks, head), one discrete option (block type and its listed parameter choices, e.g. the
kernel), each stage's depth ``d_s`` and the continuous widths: stage widths, and every integer
parameter given as a range (bottleneck/expanded widths, the head's width). The variables are
``z = log(width)`` and ``d``. Maximise

    sum_e alpha_e * (log C_e + log HW_e) * E_e  -  w * exp(std(d over the penalised stages))

subject to MACs <= B, params <= P (activations too, when bounded), rho_e <= rho0 for every
entropy stage ``e``, non-decreasing stage widths, the space's depth limits. Per layer, each
cost is a polynomial of degree <= 2 in its widths with non-negative coefficients (a
posynomial) and each entropy term is ``0.5 * log`` of a monomial; both are *derived by probing
the block families' own cost and fan-in rules* (``BlockFamily.cost`` / ``fan_ins``), never
written a second time. In ``z``:

* a cost bound ``sum_k c_k(d) exp(a_k . z) <= B`` is ``log_sum_exp(log c_k + a_k . z) <= log B``:
  convex (geometric programming);
* ``E_e`` is affine in ``z`` and ``rho_e <= rho0`` is ``2 E_e >= L_e log(L_e / rho0)`` with
  ``L_e`` layers: linear for fixed depths;
* the objective is a sum of products ``u_e * v_e`` of affine functions, written
  ``((u + v)^2 - (u - v)^2) / 4``: a difference of convex functions, maximised by the
  convex-concave procedure (Yuille & Rangarajan 2003; Lipp & Boyd 2016), i.e. a sequence of
  concave quadratic programs that each linearise ``(u + v)^2`` at the previous point (a
  minorant, so the objective never decreases);
* widths and depths then move together by trust-region sequential convex programming in
  ``z`` and ``t = log(d - 1)``: costs stay exact and convex (``(d - 1) exp(a . z) =
  exp(t + a . z)``), entropy and rho are linearised in a box, and a step is kept only when an
  exact merit (objective less a price on rho violation) improves. (Alternating a widths step
  with a depths step, each convex, stalls where the budget binds: neither can trade width for
  depth alone.)

The strategy solves the widths at the start's depths, runs the joint step, rounds the depths,
solves the widths again, rounds to the space's legal values and repairs exactly: every candidate is
decoded by the space and checked with the exact cost model and entropy (``count``,
``deepmad_entropy``), so rounding never breaks a constraint. A discrete local search on the
exact model (one grid step of a width, one block of depth, or a pair of opposite steps) polishes
the result; single option changes (a kernel, a block type) that look promising after a quick
exact repair are solved again as programs.
Several starting points (drawn from the seed) are solved and the best designs are proposed.

All solves use Clarabel (an interior-point conic solver shipped with cvxpy) with exponential
cones; loops run for fixed numbers of iterations, so the result is deterministic under a seed.
A latency bound (``latency@device <= t``) is met by shrinking an internal MACs bound until the
exact check (the device's look-up table) passes.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from archsearch.blocks import get_block
from archsearch.cost import count, format_si
from archsearch.errors import ArchsearchError, BudgetError, NotInSpaceError, SpecError, UserError
from archsearch.evaluators.entropy import deepmad_entropy, stage_alphas
from archsearch.solvers.base import Problem, Result, Strategy
from archsearch.spaces.space import Space, _block, _resolve, _with
from archsearch.spec import Architecture

if TYPE_CHECKING:
    import cvxpy as cp

MODELLED = ("macs", "params", "activations", "rho")
"""Metrics whose bounds the program models; other bounds are checked on the exact design."""

Depths = Sequence[float] | np.ndarray
SOLVER = "CLARABEL"
MERIT = 1e3
"""Price of one unit of rho-constraint violation (entropy units) in the joint step's merit."""


class SolverFailure(ArchsearchError):
    """The conic solver failed (numerical trouble, not infeasibility); names solver and status."""


# -- the design: discrete options, depths, continuous widths -----------------------------------


@dataclass(frozen=True)
class Slot:
    """A continuous variable: a width, or an integer parameter given as a range."""

    name: str
    grid: tuple[int, ...]  # legal values, ascending
    labels: tuple[str, ...]  # the space labels it sets (one per block slot when not shared)

    @property
    def lo(self) -> float:
        return math.log(self.grid[0])

    @property
    def hi(self) -> float:
        return math.log(self.grid[-1])

    def nearest(self, value: float) -> int:
        """The index of the legal value nearest to ``value`` in log scale."""
        logs = np.log(np.array(self.grid, dtype=float))
        return int(np.argmin(np.abs(logs - math.log(max(value, 1e-9)))))


Option = tuple[str, tuple[tuple[str, Any], ...]]
"""A slot's discrete choice: block type and its discrete parameter values."""


@dataclass(frozen=True)
class LayerKey:
    """One place of the space that takes an option: stem, ``s<i>.down``, stage blocks, head."""

    key: str
    prefixes: tuple[str, ...]  # label prefixes (a stage's block slots share one option)
    stage: int | None  # stage index, None for stem and head
    options: tuple[Option, ...]
    params: dict[str, dict[str, int]]  # per type: continuous parameter -> slot index


@dataclass
class Design:
    """A point of the discrete-continuous program; ``values`` hold grid indices."""

    options: dict[str, Option]
    depths: list[int]
    values: list[int]

    def copy(self) -> Design:
        return Design(dict(self.options), list(self.depths), list(self.values))

    def key(self) -> tuple[Any, ...]:
        return (tuple(sorted(self.options.items())), tuple(self.depths), tuple(self.values))


@dataclass(frozen=True)
class Site:
    """One layer of the network as the program sees it (a first block, a repeated block...).

    ``c_in`` and ``out`` are a slot index or a constant channel count (``-1 - channels``).
    """

    key: str  # the LayerKey it takes its option from
    role: str
    stage: int | None
    repeat: bool  # True: the stage's blocks after the first (multiplicity depth - 1)
    c_in: int
    out: int
    fixed: tuple[tuple[str, Any], ...]
    in_hw: tuple[int, int]


def _const(channels: int) -> int:
    return -1 - channels


class Encoding:
    """The space seen as slots, layer keys and sites; decodes designs into architectures."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.slots: list[Slot] = []
        self.layer_keys: dict[str, LayerKey] = {}
        if space.stem.widths:
            self.stem_slot = self._slot("stem.width", space.stem.widths, ("stem.width",))
        else:
            self.stem_slot = -1
        self.width_slots: list[int] = []
        for so in space.stages:
            idx = self._slot(f"{so.name}.width", so.widths, (f"{so.name}.width",))
            self.width_slots.append(idx)
        if self.stem_slot < 0:
            self.stem_slot = self.width_slots[0]
        self._layer("stem", ("stem",), None, space.stem.types)
        for i, so in enumerate(space.stages):
            if so.downsample is not None:
                self._layer(f"{so.name}.down", (f"{so.name}.down",), i, so.downsample.types)
            prefixes = (
                (so.name,)
                if so.shared
                else tuple(f"{so.name}.b{j}" for j in range(max(so.depths)))
            )
            self._layer(so.name, prefixes, i, so.blocks.types)
        self._layer("head", ("head",), None, space.head.types)
        self.depth_choices = [tuple(so.depths) for so in space.stages]

    def _slot(self, name: str, values: Sequence[int], labels: tuple[str, ...]) -> int:
        self.slots.append(Slot(name, tuple(sorted(values)), labels))
        return len(self.slots) - 1

    def _layer(
        self,
        key: str,
        prefixes: tuple[str, ...],
        stage: int | None,
        types: Mapping[str, Mapping[str, tuple[Any, ...]]],
    ) -> None:
        options: list[Option] = []
        params: dict[str, dict[str, int]] = {}
        for t, choices in types.items():
            discrete = {}
            params[t] = {}
            for n, values in choices.items():
                if _is_range(values):
                    labels = tuple(f"{p}.{t}.{n}" for p in prefixes)
                    params[t][n] = self._slot(f"{key}.{t}.{n}", values, labels)
                else:
                    discrete[n] = values
            names = sorted(discrete)
            for combo in itertools.product(*(discrete[n] for n in names)):
                options.append((t, tuple(zip(names, combo, strict=True))))
        self.layer_keys[key] = LayerKey(key, prefixes, stage, tuple(options), params)

    # -- designs <-> architectures ---------------------------------------------------

    def assignment(self, design: Design) -> dict[str, Any]:
        a: dict[str, Any] = {}
        for slot, v in zip(self.slots, design.values, strict=True):
            for label in slot.labels:
                a[label] = slot.grid[v]
        for so, d in zip(self.space.stages, design.depths, strict=True):
            a[f"{so.name}.depth"] = d
        for key, lk in self.layer_keys.items():
            t, chosen = design.options[key]
            for prefix in lk.prefixes:
                a[f"{prefix}.type"] = t
                for n, v in chosen:
                    a[f"{prefix}.{t}.{n}"] = v
                for n, s in lk.params[t].items():
                    a[f"{prefix}.{t}.{n}"] = self.slots[s].grid[design.values[s]]
        return a

    def decode(self, design: Design) -> Architecture | None:
        try:
            return self.space.decode(self.assignment(design))
        except (NotInSpaceError, SpecError):
            return None

    def from_arch(self, arch: Architecture) -> Design:
        """The design of a member whose stages repeat one option (raises NotInSpaceError)."""
        a = self.space.encode(arch)
        options = {}
        for key, lk in self.layer_keys.items():
            prefix = lk.prefixes[0]
            t = a[f"{prefix}.type"]
            chosen = tuple(
                (n, a[f"{prefix}.{t}.{n}"])
                for n in sorted(self.space_types(key)[t])
                if n not in lk.params[t]
            )
            options[key] = (t, chosen)
        values = []
        for slot in self.slots:
            label = next((lb for lb in slot.labels if lb in a), None)
            v = a[label] if label is not None else slot.grid[0]
            values.append(slot.grid.index(v))
        depths = [a[f"{so.name}.depth"] for so in self.space.stages]
        design = Design(options, depths, values)
        if self.decode(design) != arch:
            raise NotInSpaceError("the architecture's stages do not repeat one option each")
        return design

    def space_types(self, key: str) -> Mapping[str, Mapping[str, tuple[Any, ...]]]:
        lk = self.layer_keys[key]
        if key == "stem":
            return self.space.stem.types
        if key == "head":
            return self.space.head.types
        so = self.space.stages[lk.stage or 0]
        if key.endswith(".down") and so.downsample is not None:
            return so.downsample.types
        return so.blocks.types

    # -- sites -----------------------------------------------------------------------

    def sites(self, design: Design) -> list[Site]:
        """The network's layers for this design's options (spatial sizes by propagation)."""
        sp = self.space
        c0, h, w = sp.input_shape
        out: list[Site] = []

        def place(
            key: str,
            role: str,
            stage: int | None,
            rep: bool,
            c_in: int,
            o: int,
            fixed: tuple[tuple[str, Any], ...] = (),
        ) -> None:
            nonlocal h, w
            site = Site(key, role, stage, rep, c_in, o, fixed, (h, w))
            block = self.block(site, design, self.mid_values(design))
            _, h, w = block.family.out_shape(
                (self.channels(c_in, design), h, w), block.out_channels, block.params
            )
            out.append(site)

        place("stem", "stem", None, False, _const(c0), self.stem_slot)
        prev = self.stem_slot
        for i, so in enumerate(sp.stages):
            ws = self.width_slots[i]
            if so.downsample is not None:
                place(f"{so.name}.down", "downsample", i, False, prev, ws)
                prev = ws
            place(so.name, "block", i, False, prev, ws, so.first)
            place(so.name, "block", i, True, ws, ws)
            prev = ws
        place("head", "head", None, False, prev, _const(sp.num_classes))
        return out

    def log_values(self, design: Design) -> np.ndarray:
        """The design's widths as the program's variables (natural logs)."""
        return np.log([float(v) for v in self.mid_values(design)])

    def mid_values(self, design: Design) -> list[int]:
        return [s.grid[v] for s, v in zip(self.slots, design.values, strict=True)]

    def channels(self, ref: int, design: Design) -> int:
        return -1 - ref if ref < 0 else self.slots[ref].grid[design.values[ref]]

    def block(self, site: Site, design: Design, values: Sequence[int]) -> Any:
        """The spec Block of ``site`` with slot values ``values`` (actual widths)."""
        t, chosen = design.options[site.key]
        c_in = -1 - site.c_in if site.c_in < 0 else values[site.c_in]
        o = -1 - site.out if site.out < 0 else values[site.out]
        params = dict(chosen)
        for n, s in self.layer_keys[site.key].params[t].items():
            params[n] = values[s]
        return _block(t, o, _with(_resolve(t, params, c_in, o), site.fixed))


def _nearest(choices: Sequence[int], x: float) -> int:
    return min(choices, key=lambda v: abs(v - x))


def _is_range(values: tuple[Any, ...]) -> bool:
    return len(values) > 8 and all(isinstance(v, int) and not isinstance(v, bool) for v in values)


# -- probing: posynomial costs and monomial fan-ins per site ----------------------------------


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


# -- the program ------------------------------------------------------------------------------


@dataclass
class Bounds:
    """Upper bounds the program models, from the run's budget and constraints."""

    values: dict[str, float] = field(default_factory=dict)

    def get(self, name: str) -> float | None:
        return self.values.get(name)


@dataclass
class Model:
    """The program for one choice of options: entropy stages, costs, per-site models."""

    enc: Encoding
    design: Design
    sites: list[SiteModel]
    stage_of: list[int]  # entropy stage of each site
    ends: list[int]  # index of the last site of each entropy stage
    alphas: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.enc.slots)

    def mult(self, sm: SiteModel, depths: Depths) -> float:
        if sm.site.repeat:
            return float(depths[sm.site.stage or 0]) - 1.0
        return 1.0

    def _embed(self, sm: SiteModel, exps: np.ndarray) -> np.ndarray:
        out = np.zeros((exps.shape[0], self.n))
        for j, s in enumerate(sm.slots):
            out[:, s] += exps[:, j]
        return out

    def entropy_affine(self, depths: Depths) -> tuple[np.ndarray, np.ndarray]:
        """``E_e = g[e] + G[e] @ z`` and ``L_e`` per entropy stage, for fixed depths."""
        E = len(self.ends)
        g, G, L = np.zeros(E), np.zeros((E, self.n)), np.zeros(E)
        for i, sm in enumerate(self.sites):
            m = self.mult(sm, depths)
            if m == 0:
                continue
            e0 = self.stage_of[i]
            cg = 0.5 * m * float(np.sum(sm.fan_log))
            cG = 0.5 * m * self._embed(sm, sm.fan_exp).sum(axis=0)
            g[e0:] += cg
            G[e0:] += cG
            L[e0:] += m * len(sm.fan_log)
        return np.concatenate([g[:, None], G], axis=1), L

    def channel_affine(self) -> np.ndarray:
        """``log C_e + log HW_e = c[e, 0] + c[e, 1:] @ z``."""
        out = np.zeros((len(self.ends), self.n + 1))
        for e, i in enumerate(self.ends):
            sm = self.sites[i]
            out[e, 0] = sm.chan_log + math.log(sm.feature_hw)
            out[e, 1:] = self._embed(sm, sm.chan_exp[None, :])[0]
        return out

    def cost_terms(self, metric: str, depths: Depths) -> tuple[np.ndarray, np.ndarray]:
        """``metric = sum_k exp(logc[k] + A[k] @ z)`` for fixed depths."""
        logc, rows = [], []
        for sm in self.sites:
            m = self.mult(sm, depths)
            coef, exps = sm.costs[metric]
            if m <= 0 or coef.size == 0:
                continue
            logc.append(np.log(coef * m))
            rows.append(self._embed(sm, exps))
        return np.concatenate(logc), np.vstack(rows)

    def site_costs(self, metric: str, z: np.ndarray) -> list[float]:
        out = []
        for sm in self.sites:
            coef, exps = sm.costs[metric]
            A = self._embed(sm, exps)
            out.append(float(np.sum(coef * np.exp(A @ z))) if coef.size else 0.0)
        return out


def build_model(enc: Encoding, design: Design, alpha: Sequence[float] | None) -> Model:
    sites = [probe(enc, s, design) for s in enc.sites(design)]
    stage_of, ends = [], []
    e = 0
    layers = 0
    for i, sm in enumerate(sites):
        if sm.reduces and layers and not sm.site.repeat:
            ends.append(i - 1)
            e += 1
        stage_of.append(e)
        layers += len(sm.fan_log)
    ends.append(len(sites) - 1)
    # An entropy stage that ends on a repeated block may have none (depth 1): the first block
    # before it has the same width and map, so the channel model is the same.
    return Model(enc, design, sites, stage_of, ends, stage_alphas(len(ends), alpha))


@dataclass
class StepResult:
    z: np.ndarray
    depths: np.ndarray
    value: float
    duals: dict[str, float]


class Program:
    """The two convex steps of one :class:`Model` under :class:`Bounds`."""

    def __init__(
        self,
        model: Model,
        bounds: Bounds,
        *,
        penalty: float,
        penalty_stages: int,
    ) -> None:
        self.m = model
        self.bounds = bounds
        self.penalty = penalty
        S = len(model.enc.space.stages)
        k = S if penalty_stages <= 0 else min(penalty_stages, S)
        self.pen_idx = list(range(S - k, S))
        constraints = model.enc.space.constraints
        self.non_decreasing = any(c.name == "non_decreasing_width" for c in constraints)
        self.chan = model.channel_affine()

    def _check(self, prob: cp.Problem, what: str) -> bool:
        """True when solved; False when infeasible; raises SolverFailure otherwise."""
        import warnings

        import cvxpy as cp

        try:
            with warnings.catch_warnings():
                # "Solution may be inaccurate": such solutions are checked exactly later.
                warnings.simplefilter("ignore", UserWarning)
                prob.solve(solver=SOLVER)
        except cp.error.SolverError as e:
            raise SolverFailure(f"deepmad: solver {SOLVER} failed on the {what} step: {e}") from e
        if prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return True
        if prob.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            return False
        raise SolverFailure(
            f"deepmad: solver {SOLVER} returned status {prob.status!r} on the {what} step"
        )

    def penalty_value(self, depths: Depths) -> float:
        if not self.penalty or len(self.pen_idx) < 2:
            return 0.0
        d = np.array([depths[i] for i in self.pen_idx], dtype=float)
        return self.penalty * math.exp(float(np.std(d)))

    def objective(self, z: np.ndarray, depths: Depths) -> float:
        Ea, _ = self.m.entropy_affine(depths)
        E = Ea[:, 0] + Ea[:, 1:] @ z
        u = self.chan[:, 0] + self.chan[:, 1:] @ z
        return float(np.dot(self.m.alphas, u * E)) - self.penalty_value(depths)

    def width_step(
        self, depths: Depths, z0: np.ndarray, *, iters: int = 30, tol: float = 1e-7
    ) -> StepResult | None:
        """Maximises over log-widths for fixed depths by the convex-concave procedure."""
        import cvxpy as cp

        m = self.m
        n = m.n
        z = cp.Variable(n)
        lo = np.array([s.lo for s in m.enc.slots])
        hi = np.array([s.hi for s in m.enc.slots])
        Ea, L = m.entropy_affine(depths)
        E = Ea[:, 0] + Ea[:, 1:] @ z
        u = self.chan[:, 0] + self.chan[:, 1:] @ z
        grad = cp.Parameter(len(L))
        alphas = np.array(m.alphas)
        # Scaled to O(1): Clarabel is more reliable on well-scaled objectives.
        scale = 1.0 / max(1.0, abs(self.objective(np.clip(z0, lo, hi), depths)))
        obj = cp.sum(cp.multiply(alphas * scale, cp.multiply(grad, u + E) - cp.square(u - E) / 4))
        cons: list[Any] = [z >= lo, z <= hi]
        named: dict[str, Any] = {}
        for metric in ("macs", "params", "activations"):
            b = self.bounds.get(metric)
            if b is None:
                continue
            logc, A = m.cost_terms(metric, depths)
            named[metric] = cp.log_sum_exp(logc + A @ z) <= math.log(b)
            cons.append(named[metric])
        rho = self.bounds.get("rho")
        if rho is not None:
            named["rho"] = L * np.log(L / rho) <= 2 * E
            cons.append(named["rho"])
        if self.non_decreasing:
            ws = m.enc.width_slots
            cons += [z[ws[i]] >= z[ws[i - 1]] for i in range(1, len(ws))]
        prob = cp.Problem(cp.Maximize(obj), cons)
        zk = np.clip(z0, lo, hi)
        best = -math.inf
        for _ in range(iters):
            Ek = Ea[:, 0] + Ea[:, 1:] @ zk
            uk = self.chan[:, 0] + self.chan[:, 1:] @ zk
            grad.value = (uk + Ek) / 2
            try:
                solved = self._check(prob, "width")
            except SolverFailure:
                if best == -math.inf:
                    raise
                break  # numerical trouble after progress: keep the last solved point
            if not solved:
                return None
            zk = np.asarray(z.value, dtype=float)
            value = self.objective(zk, depths)
            if value - best <= tol * max(1.0, abs(value)):
                best = max(best, value)
                break
            best = value
        duals = {}
        for metric, c in named.items():
            if c.dual_value is None:
                continue
            d = float(np.sum(c.dual_value)) / scale
            # d(score)/d(log bound): a cost bound is written in logs; rho's right-hand side
            # moves by -sum(lambda_e * L_e) per unit of log rho0.
            duals[metric] = d if metric != "rho" else float(np.dot(c.dual_value, L)) / scale
        return StepResult(zk, np.array(depths, dtype=float), best, duals)

    def _pieces(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``E(z, d) = E1 + D @ (d - 1)`` and ``L(d) = L1 + dL @ (d - 1)`` at widths ``z``."""
        m = self.m
        S = len(m.enc.space.stages)
        E1a, L1 = m.entropy_affine(np.ones(S))
        E1 = E1a[:, 0] + E1a[:, 1:] @ z
        D = np.zeros((len(L1), S))
        dL = np.zeros((len(L1), S))
        for s in range(S):
            two = np.ones(S)
            two[s] = 2.0
            E2a, L2 = m.entropy_affine(two)
            D[:, s] = E2a[:, 0] + E2a[:, 1:] @ z - E1
            dL[:, s] = L2 - L1
        return E1, D, L1, dL

    def _jacobian_z(self, d: np.ndarray) -> np.ndarray:
        """d(E_e)/dz (rows e) at depths ``d``; d(E_e)/d(d_s) is ``D`` of :meth:`_pieces`."""
        m = self.m
        S = len(d)
        E1a, _ = m.entropy_affine(np.ones(S))
        Jz = E1a[:, 1:].copy()
        for s in range(S):
            two = np.ones(S)
            two[s] = 2.0
            E2a, _ = m.entropy_affine(two)
            Jz += (d[s] - 1.0) * (E2a[:, 1:] - E1a[:, 1:])
        return Jz

    def _penalty_grad(self, d: np.ndarray) -> np.ndarray:
        g = np.zeros(len(d))
        if not self.penalty or len(self.pen_idx) < 2:
            return g
        dp = d[self.pen_idx]
        sd = float(np.std(dp))
        if sd < 1e-9:
            return g
        g[self.pen_idx] = self.penalty_value(d) * (dp - dp.mean()) / (len(dp) * sd)
        return g

    def joint_step(self, z0: np.ndarray, d0: Depths, *, iters: int = 60) -> StepResult | None:
        """Trust-region sequential convex programming over widths and depths together.

        Variables ``z`` and ``t = log(d - 1)`` (repeats); costs stay exact and convex in them
        (``(d - 1) * exp(a . z) = exp(t + a . z)``), the entropy objective and the rho
        constraints are linearised within a box trust region, and a step is kept only when
        the exact objective improves with every rho constraint met.
        """
        import cvxpy as cp

        m = self.m
        n, S = m.n, len(m.enc.space.stages)
        lo = np.array([s.lo for s in m.enc.slots])
        hi = np.array([s.hi for s in m.enc.slots])
        dmin = np.array([min(c) for c in m.enc.depth_choices], dtype=float)
        dmax = np.array([max(c) for c in m.enc.depth_choices], dtype=float)
        tlo = np.log(np.maximum(dmin - 1.0, 0.05))
        thi = np.log(np.maximum(dmax - 1.0, 0.05))
        Z, T = cp.Variable(n), cp.Variable(S)
        zk, tk = cp.Parameter(n), cp.Parameter(S)
        gz, gt = cp.Parameter(n), cp.Parameter(S)
        radius = cp.Parameter(nonneg=True)
        alphas = np.array(m.alphas)
        rho = self.bounds.get("rho")
        n_e = len(m.ends)
        cons: list[Any] = [
            lo <= Z,
            hi >= Z,
            tlo <= T,
            thi >= T,
            cp.abs(Z - zk) <= radius,
            cp.abs(T - tk) <= 2 * radius,
        ]
        rz = rt = r0 = None
        if rho is not None:
            rz, rt, r0 = cp.Parameter((n_e, n)), cp.Parameter((n_e, S)), cp.Parameter(n_e)
            # Elastic: a slack, priced high, keeps the step solvable from a point that breaks
            # the linearised rho bound; the acceptance test below uses the exact one.
            elastic = cp.Variable(n_e, nonneg=True)
            cons.append(r0 + rz @ (Z - zk) + rt @ (T - tk) + elastic >= 0)
        for metric in ("macs", "params", "activations"):
            b = self.bounds.get(metric)
            if b is None:
                continue
            parts = []
            for sm in m.sites:
                coef, exps = sm.costs[metric]
                if coef.size == 0:
                    continue
                A = m._embed(sm, exps)
                expr = np.log(coef) + A @ Z
                if sm.site.repeat:
                    expr = expr + T[sm.site.stage or 0]
                parts.append(expr)
            cons.append(cp.log_sum_exp(cp.hstack(parts)) <= math.log(b))
        if self.non_decreasing:
            ws = m.enc.width_slots
            cons += [Z[ws[i]] >= Z[ws[i - 1]] for i in range(1, len(ws))]
        objective = gz @ Z + gt @ T
        if rho is not None:
            objective = objective - 1e3 * cp.sum(elastic)
        prob = cp.Problem(cp.Maximize(objective), cons)

        def rho_slack(z: np.ndarray, d: np.ndarray) -> np.ndarray:
            E1, D, L1, dL = self._pieces(z)
            E, L = E1 + D @ (d - 1), L1 + dL @ (d - 1)
            return 2 * E - L * np.log(L / rho) if rho is not None else np.zeros(0)

        z = np.clip(z0, lo, hi)
        d = np.clip(np.array(d0, dtype=float), np.maximum(dmin, 1.05), dmax)

        def violation(z: np.ndarray, d: np.ndarray) -> float:
            slack = rho_slack(z, d)
            return float(max(0.0, -slack.min())) if slack.size else 0.0

        value, viol = self.objective(z, d), violation(z, d)
        r = 0.5
        for _ in range(iters):
            if r < 0.01:  # 1% of a width: below the grid's resolution
                break
            t = np.log(d - 1.0)
            u = self.chan[:, 0] + self.chan[:, 1:] @ z
            E1, D, L1, dL = self._pieces(z)
            E = E1 + D @ (d - 1)
            Jz, Jd = self._jacobian_z(d), D
            grad_z = self.chan[:, 1:].T @ (alphas * E) + Jz.T @ (alphas * u)
            grad_d = Jd.T @ (alphas * u) - self._penalty_grad(d)
            zk.value, tk.value = z, t
            scale = max(float(np.max(np.abs(grad_z))), float(np.max(np.abs(grad_d))), 1e-12)
            gz.value, gt.value = grad_z / scale, grad_d * (d - 1.0) / scale
            radius.value = r
            if rho is not None and rz is not None and rt is not None and r0 is not None:
                L = L1 + dL @ (d - 1)
                r0.value = 2 * E - L * np.log(L / rho)
                rz.value = 2 * Jz
                rt.value = (2 * Jd - dL * (np.log(L / rho) + 1.0)[:, None]) * (d - 1.0)
            try:
                solved = self._check(prob, "joint")
            except SolverFailure:
                solved = False  # numerical trouble in a linearised step: a smaller region
            if not solved:
                r /= 2
                continue
            zn = np.asarray(Z.value, dtype=float)
            dn = 1.0 + np.exp(np.asarray(T.value, dtype=float))
            vn, viol_n = self.objective(zn, dn), violation(zn, dn)
            # An exact merit: the objective less a high price on the rho violation.
            gain = (vn - MERIT * viol_n) - (value - MERIT * viol)
            if gain > 1e-9 * abs(value):
                z, d, value, viol = zn, dn, vn, viol_n
                r = min(1.0, r * 1.5)
                if gain < 1e-5 * abs(value):
                    break
            else:
                r /= 2
        # A small rho violation left here is removed by the width step that follows, which
        # keeps rho exactly (linear for fixed depths).
        return StepResult(z, d, value, {})


# -- the strategy -----------------------------------------------------------------------------


@dataclass
class Binding:
    """A bound of the program at the final design: its value, slack and sensitivity."""

    metric: str
    value: float
    bound: float
    binding: bool
    """The design itself reaches the bound (within 2%): no room left for a larger network."""
    sensitivity: float | None  # d(score)/d(log bound) of the continuous program, if modelled
    program_binding: bool = False
    """The bound is active in the continuous program at the design (its dual is positive),
    although the integer design may keep some slack."""


@dataclass
class Solution:
    """What :class:`DeepMAD` found: the designs proposed and how the best one binds."""

    archs: list[Architecture]
    scores: list[float]
    bindings: list[Binding]
    solve_seconds: float
    programs_solved: int
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "digest": self.archs[0].digest if self.archs else None,
            "score": self.scores[0] if self.scores else None,
            "solve_seconds": self.solve_seconds,
            "programs_solved": self.programs_solved,
            "constraints": [b.__dict__ for b in self.bindings],
            "notes": self.notes,
        }


class DeepMAD(Strategy):
    """Solves DeepMAD's program with cvxpy (see the module docstring) and proposes the result.

    Args:
        starts: Starting points solved (the first is the space's smallest widths); the best
            designs, distinct, are proposed best first.
        rounds: Trust-region iterations of the joint width/depth step per start.
        penalty: Weight ``w`` of DeepMAD's depth penalty ``w * exp(std(depths))``; 0 disables.
        penalty_stages: Number of last stages the penalty looks at; 0 for all (the official
            code uses the last three for the ResNet space, all five for MBConv).
        alpha: Entropy stage weights (default 1, ..., 1, 8).
        polish: Exact evaluations allowed to the discrete local search per design.
        option_rounds: Rounds in which promising option changes are solved again.
        seed, max_tries, init: See :class:`~archsearch.solvers.base.Strategy`.
    """

    name = "deepmad"
    samples = False
    objective = "entropy:max"

    def __init__(
        self,
        *,
        starts: int = 4,
        rounds: int = 60,
        penalty: float = 10.0,
        penalty_stages: int = 0,
        alpha: Sequence[float] | None = None,
        polish: int = 1500,
        option_rounds: int = 1,
        seed: int = 0,
        max_tries: int = 2000,
        init: Sequence[Architecture | str] = (),
    ) -> None:
        super().__init__(seed=seed, max_tries=max_tries, init=init)
        for what, v, low in (("starts", starts, 1), ("rounds", rounds, 1), ("polish", polish, 0)):
            if v < low:
                raise UserError(f"--option {what}={v}: must be at least {low}")
        if penalty < 0:
            raise UserError(f"--option penalty={penalty}: must be >= 0 (0 disables it)")
        self.starts = starts
        self.rounds = rounds
        self.penalty = penalty
        self.penalty_stages = penalty_stages
        self.alpha = tuple(alpha) if alpha is not None else None
        self.polish_budget = polish
        self.option_rounds = option_rounds
        self.solution: Solution | None = None
        self._pending: list[Architecture] | None = None
        self._cache: dict[tuple[Any, ...], tuple[Architecture | None, dict[str, float]]] = {}
        self._programs = 0

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "starts": self.starts,
            "rounds": self.rounds,
            "penalty": self.penalty,
            "penalty_stages": self.penalty_stages,
            "alpha": list(self.alpha) if self.alpha else None,
            "polish": self.polish_budget,
            "option_rounds": self.option_rounds,
        }

    def setup(self, problem: Problem) -> None:
        super().setup(problem)
        names = [o.name for o in problem.objectives]
        if names != ["entropy"] or problem.objectives[0].direction != "max":
            raise UserError(
                f"--objectives: the deepmad strategy maximises DeepMAD's entropy; got "
                f"{', '.join(map(str, problem.objectives))}; use --objectives entropy:max"
            )

    # -- ask/tell --------------------------------------------------------------------

    def propose(self, n: int) -> list[Architecture]:
        if self._pending is None:
            self.solution = self.solve()
            self._pending = [a for a in self.solution.archs if a.digest not in self._seen]
        out: list[Architecture] = []
        while self._pending and len(out) < n:
            arch = self._pending.pop(0)
            self._seen.add(arch.digest)
            out.append(arch)
        return out

    def tell(self, results: Sequence[Result]) -> None:
        """The program is solved once; scores told back are the entropy it already knows."""

    # -- exact evaluation ------------------------------------------------------------

    def _bounds(self) -> tuple[Bounds, dict[str, float]]:
        p = self.problem
        values: dict[str, float] = {}
        if p.budget.macs is not None:
            values["macs"] = float(p.budget.macs)
        if p.budget.params is not None:
            values["params"] = float(p.budget.params)
        other: dict[str, float] = {}
        for c in p.constraints:
            ub = c.upper_bounds()
            if ub is None:
                continue
            for k, v in ub.items():
                target = values if k in MODELLED else other
                target[k] = min(v, target.get(k, math.inf))
        return Bounds(values), other

    def _exact(
        self, enc: Encoding, design: Design
    ) -> tuple[Architecture | None, dict[str, float]]:
        key = design.key()
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        arch = enc.decode(design)
        metrics: dict[str, float] = {}
        if arch is not None:
            cost = count(arch)
            stats = deepmad_entropy(arch, self.alpha)
            metrics = {
                "macs": float(cost.macs),
                "params": float(cost.params),
                "activations": float(cost.activations),
                "rho": stats.rho,
                "entropy": stats.score,
            }
        self._cache[key] = (arch, metrics)
        return arch, metrics

    def _violation(self, metrics: Mapping[str, float], bounds: Bounds) -> float:
        return sum(
            max(0.0, metrics[k] / b - 1.0) for k, b in bounds.values.items() if k in metrics
        )

    def _score(self, prog: Program, design: Design, metrics: Mapping[str, float]) -> float:
        return metrics["entropy"] - prog.penalty_value(design.depths)

    # -- the solve -------------------------------------------------------------------

    def solve(self) -> Solution:
        """Solves the program from every start; deterministic under the seed."""
        start_time = time.perf_counter()
        space = self.space
        enc = Encoding(space)
        bounds, other = self._bounds()
        notes: list[str] = []
        for k in other:
            if not k.startswith("latency@"):
                notes.append(f"constraint on {k} is not modelled; the exact check enforces it")
        rng = random.Random(self.seed)
        designs = self._starts(enc, rng)
        results: list[tuple[float, Design, Architecture, Program]] = []
        first_failure: str | None = None
        failures: list[str] = []
        work = Bounds(dict(bounds.values))
        for _ in range(6):
            results = []
            for design in designs:
                try:
                    out = self._solve_from(enc, design, work)
                except SolverFailure as e:
                    failures.append(str(e))
                    continue
                if isinstance(out, str):
                    first_failure = first_failure or out
                    continue
                results.append(out)
            latency = {k: v for k, v in other.items() if k.startswith("latency@")}
            if not latency or not results:
                break
            results.sort(key=lambda r: -r[0])
            if self.problem.feasible(results[0][2]):
                break
            # Latency is not modelled: tighten an internal MACs bound and solve again.
            macs = self._exact(enc, results[0][1])[1]["macs"]
            work.values["macs"] = 0.85 * min(macs, work.values.get("macs", math.inf))
            notes.append(
                f"latency bound not met at {format_si(int(macs))}FLOPs; solving again with "
                f"MACs <= {format_si(int(work.values['macs']))}FLOP"
            )
        if not results and failures and first_failure is None:
            raise SolverFailure(f"{failures[0]} (from every one of {self.starts} starts)")
        if not results:
            raise self._infeasible(enc, bounds, first_failure)
        results.sort(key=lambda r: -r[0])
        archs, scores, seen = [], [], set()
        for score, _design, arch, _prog in results:
            if arch.digest in seen or not self.problem.feasible(arch):
                continue
            seen.add(arch.digest)
            archs.append(arch)
            scores.append(score)
        if not archs:
            raise BudgetError(
                "budget/constraint: the designed networks meet the modelled bounds but not "
                f"{', '.join(sorted(other))}; relax it"
            )
        best_design, best_prog = results[0][1], results[0][3]
        bindings = self._bindings(enc, best_design, best_prog, bounds, work)
        return Solution(
            archs,
            scores,
            bindings,
            time.perf_counter() - start_time,
            self._programs,
            notes,
        )

    def _starts(self, enc: Encoding, rng: random.Random) -> list[Design]:
        """The first start: every first option at the smallest widths; the others random."""
        out = []
        for i in range(self.starts):
            options = {
                k: (lk.options[0] if i == 0 else rng.choice(lk.options))
                for k, lk in enc.layer_keys.items()
            }
            values = [0 if i == 0 else rng.randrange(len(s.grid)) for s in enc.slots]
            depths = [min(c) for c in enc.depth_choices]
            out.append(Design(options, depths, values))
        return out

    def _program(self, model: Model, bounds: Bounds) -> Program:
        return Program(model, bounds, penalty=self.penalty, penalty_stages=self.penalty_stages)

    def _continuous(
        self, prog: Program, z: np.ndarray, depths: Depths
    ) -> tuple[np.ndarray, list[int]] | None:
        """Widths at the start's depths, then widths and depths jointly, then integer depths."""
        ws = prog.width_step(depths, z)
        self._programs += 1
        if ws is None:
            return None
        js = prog.joint_step(ws.z, depths, iters=self.rounds)
        self._programs += 1
        z, d = (js.z, js.depths) if js is not None else (ws.z, np.array(depths, dtype=float))
        choices = prog.m.enc.depth_choices
        di = [_nearest(c, float(x)) for c, x in zip(choices, d, strict=True)]
        ws = prog.width_step(di, z)
        self._programs += 1
        if ws is None:  # rounding up broke a bound: round down instead
            di = [
                max([v for v in c if v <= x + 1e-9] or [min(c)])
                for c, x in zip(choices, d, strict=True)
            ]
            ws = prog.width_step(di, z)
            self._programs += 1
            if ws is None:
                return None
        return ws.z, di

    def _solve_from(
        self, enc: Encoding, design: Design, bounds: Bounds
    ) -> tuple[float, Design, Architecture, Program] | str:
        prog = self._program(build_model(enc, design, self.alpha), bounds)
        cont = self._continuous(prog, enc.log_values(design), design.depths)
        if cont is None:
            return "the program is infeasible at the smallest depths"
        best = self._round(enc, prog, design, cont[0], cont[1], bounds)
        if best is None:
            return "rounding found no design within the bounds"
        score, best = self._polish(enc, prog, best, bounds)
        for _ in range(self.option_rounds):
            improved = False
            for alt in self._promising(enc, prog, best, bounds):
                alt_prog = self._program(build_model(enc, alt, self.alpha), bounds)
                try:
                    c = self._continuous(alt_prog, enc.log_values(alt), alt.depths)
                except SolverFailure:
                    continue  # an alternative the solver cannot handle is not taken
                if c is None:
                    continue
                cand = self._round(enc, alt_prog, alt, c[0], c[1], bounds)
                if cand is None:
                    continue
                s2, cand = self._polish(enc, alt_prog, cand, bounds)
                if s2 > score + 1e-9:
                    score, best, prog, improved = s2, cand, alt_prog, True
            if not improved:
                break
        arch = self._exact(enc, best)[0]
        assert arch is not None
        return score, best, arch, prog

    def _round(
        self,
        enc: Encoding,
        prog: Program,
        design: Design,
        z: np.ndarray,
        depths: list[int],
        bounds: Bounds,
    ) -> Design | None:
        """Nearest legal values, then exact repair: cheapest-loss steps down until feasible."""
        d = Design(
            dict(design.options),
            list(depths),
            [s.nearest(math.exp(v)) for s, v in zip(enc.slots, z, strict=True)],
        )
        for _ in range(2000):
            arch, metrics = self._exact(enc, d)
            if arch is not None and self._violation(metrics, bounds) == 0:
                return d
            best: tuple[float, Design] | None = None
            for cand in self._moves(enc, d, down_only=True):
                a2, m2 = self._exact(enc, cand)
                if a2 is None:
                    continue
                viol = self._violation(m2, bounds)
                key = viol * 1e6 - self._score(prog, cand, m2)
                if best is None or key < best[0]:
                    best = (key, cand)
            if best is None:
                return None
            d = best[1]
        return None

    def _moves(self, enc: Encoding, d: Design, *, down_only: bool = False) -> list[Design]:
        out = []
        for i, s in enumerate(enc.slots):
            for step in (-1,) if down_only else (-1, 1):
                v = d.values[i] + step
                if 0 <= v < len(s.grid):
                    c = d.copy()
                    c.values[i] = v
                    out.append(c)
        for i, choices in enumerate(enc.depth_choices):
            k = choices.index(d.depths[i]) if d.depths[i] in choices else 0
            for step in (-1,) if down_only else (-1, 1):
                if 0 <= k + step < len(choices):
                    c = d.copy()
                    c.depths[i] = choices[k + step]
                    out.append(c)
        return out

    def _polish(
        self, enc: Encoding, prog: Program, d: Design, bounds: Bounds
    ) -> tuple[float, Design]:
        """Best-improvement local search on the exact model (feasible moves only)."""
        score = self._score(prog, d, self._exact(enc, d)[1])
        evals = 0
        while evals < self.polish_budget:
            best: tuple[float, Design] | None = None

            def consider(cand: Design, base: float = score) -> None:
                nonlocal best, evals
                evals += 1
                arch, metrics = self._exact(enc, cand)
                if arch is None or self._violation(metrics, bounds):
                    return
                s2 = self._score(prog, cand, metrics)
                if s2 > base + 1e-9 and (best is None or s2 > best[0]):
                    best = (s2, cand)

            moves = self._moves(enc, d)
            for cand in moves:
                consider(cand)
            if best is None:
                # Pairs: one step up and one down, to move along a binding budget.
                ups = [
                    m
                    for m in moves
                    if self._exact(enc, m)[0] is not None
                    and (m.values > d.values or m.depths > d.depths)
                ]
                for up in ups:
                    for down in self._moves(enc, up, down_only=True):
                        if down.key() != d.key():
                            consider(down)
                    if evals >= self.polish_budget:
                        break
            if best is None:
                break
            score, d = best
        return score, d

    def _promising(
        self, enc: Encoding, prog: Program, d: Design, bounds: Bounds, top: int = 3
    ) -> list[Design]:
        """Single option changes, ranked by their exact score after a quick repair."""
        ranked: list[tuple[float, int, Design]] = []
        for key, lk in enc.layer_keys.items():
            for opt in lk.options:
                if opt == d.options[key]:
                    continue
                cand = d.copy()
                cand.options[key] = opt
                arch, metrics = self._exact(enc, cand)
                if arch is None:
                    continue
                fixed = cand
                for _ in range(20):
                    if not self._violation(metrics, bounds):
                        break
                    scored = []
                    for mv in self._moves(enc, fixed, down_only=True):
                        a2, m2 = self._exact(enc, mv)
                        if a2 is not None:
                            scored.append((self._violation(m2, bounds), -m2["entropy"], mv))
                    if not scored:
                        break
                    scored.sort(key=lambda r: (r[0], r[1]))
                    fixed = scored[0][2]
                    metrics = self._exact(enc, fixed)[1]
                if self._violation(metrics, bounds):
                    continue
                ranked.append((-self._score(prog, fixed, metrics), len(ranked), cand))
        ranked.sort(key=lambda r: (r[0], r[1]))
        return [c for _, _, c in ranked[:top]]

    # -- reporting -------------------------------------------------------------------

    def _bindings(
        self, enc: Encoding, design: Design, prog: Program, bounds: Bounds, work: Bounds
    ) -> list[Binding]:
        _, metrics = self._exact(enc, design)
        step = self._program(prog.m, work).width_step(design.depths, enc.log_values(design))
        self._programs += 1
        duals = step.duals if step is not None else {}
        out = []
        for k, b in bounds.values.items():
            v = metrics[k]
            sens = duals.get(k)
            active = sens is not None and sens > 1e-6
            out.append(Binding(k, v, b, v >= 0.98 * b, sens, active))
        return out

    def _infeasible(self, enc: Encoding, bounds: Bounds, reason: str | None) -> BudgetError:
        """Names the bound that no member can meet, with the least value the space allows."""
        import cvxpy as cp

        design = self._starts(enc, random.Random(0))[0]
        model = build_model(enc, design, self.alpha)
        depths = [min(c) for c in enc.depth_choices]
        z = cp.Variable(model.n)
        lo = np.array([s.lo for s in enc.slots])
        hi = np.array([s.hi for s in enc.slots])
        parts = []
        for metric in ("macs", "params", "activations"):
            b = bounds.get(metric)
            if b is None:
                continue
            logc, A = model.cost_terms(metric, depths)
            prob = cp.Problem(cp.Minimize(cp.log_sum_exp(logc + A @ z)), [z >= lo, z <= hi])
            prob.solve(solver=SOLVER)
            least = math.exp(float(prob.value))
            if least > b:
                unit = "FLOPs" if metric == "macs" else f" {metric}"
                parts.append(
                    f"{metric} <= {format_si(int(b))}: the smallest member of space "
                    f"{self.space.name!r} needs about {format_si(int(least))}{unit}"
                )
        if not parts:
            parts.append(
                f"no design meets {', '.join(f'{k} <= {v:.4g}' for k, v in bounds.values.items())}"
                f" together ({reason})"
            )
        return BudgetError(f"budget/constraint: infeasible: {'; '.join(parts)}; relax it")

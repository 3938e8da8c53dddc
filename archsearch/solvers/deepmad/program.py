"""The convex program: geometric-programming costs, the entropy objective by the
convex-concave procedure, and the joint width-depth step (see
:mod:`archsearch.solvers.deepmad`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.evaluators.entropy import stage_alphas
from archsearch.solvers.deepmad.encoding import Depths, Design, Encoding
from archsearch.solvers.deepmad.probing import SiteModel, probe

if TYPE_CHECKING:
    import cvxpy as cp


SOLVER = "CLARABEL"
MERIT = 1e3
"""Price of one unit of rho-constraint violation (entropy units) in the joint step's merit."""


class SolverFailure(ArchsearchError):
    """The conic solver failed (numerical trouble, not infeasibility); names solver and status."""


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

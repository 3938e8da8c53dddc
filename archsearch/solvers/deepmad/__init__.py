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

from archsearch.solvers.deepmad.encoding import Design, Encoding, LayerKey, Site, Slot
from archsearch.solvers.deepmad.probing import SiteModel, probe
from archsearch.solvers.deepmad.program import Bounds, Model, Program, SolverFailure, build_model
from archsearch.solvers.deepmad.strategy import Binding, DeepMAD, Solution

__all__ = [
    "Binding",
    "Bounds",
    "DeepMAD",
    "Design",
    "Encoding",
    "LayerKey",
    "Model",
    "Program",
    "Site",
    "SiteModel",
    "Slot",
    "Solution",
    "SolverFailure",
    "build_model",
    "probe",
]

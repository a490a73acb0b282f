"""What happened in a gradient-descent run: converged, oscillated, diverged, or still descending.

Letters: S steps, so a path holds S + 1 iterates w_0 .. w_S (each of shape (2,)), with
losses L_0 .. L_S and steps d_k = w_{k+1} - w_k. The rules are checked in this order and
the first that applies is the verdict:

1. **diverged**: some iterate or loss is not finite (inf/nan: the run blew up), or the
   run ended higher than it started, L_S > L_0.
2. **converged**: the run came to rest at a stationary point: the gradient at the last
   iterate is small, ||grad L(w_S)|| <= GRAD_TOL, and so is the last step,
   ||d_{S-1}|| <= STEP_TOL. (On a non-convex surface that point may be a local minimum;
   ``Verdict.at_global_min`` says whether it is within GLOBAL_TOL of the global one.)
3. **oscillated**: in the second half of the run (steps k >= S // 2) the path keeps
   turning back, d_k . d_{k+1} < 0 for at least half of the consecutive step pairs, or
   the loss keeps going up, L_{k+1} > L_k on at least a quarter of the steps.
4. **slow**: none of the above: the run has not come to rest yet but is not bouncing
   either; typically the loss is still going down steadily with a learning rate too
   small for the number of steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

__all__ = [
    "GRAD_TOL",
    "STEP_TOL",
    "GLOBAL_TOL",
    "REVERSAL_FRACTION",
    "RISE_FRACTION",
    "Verdict",
    "classify_run",
]

GRAD_TOL = 1e-2
STEP_TOL = 1e-3
GLOBAL_TOL = 1e-2
REVERSAL_FRACTION = 0.5
RISE_FRACTION = 0.25


class Verdict(NamedTuple):
    kind: str  # "converged" | "oscillated" | "diverged" | "slow"
    final_loss: float  # L_S (inf or nan after a blow-up)
    at_global_min: bool  # w_S within GLOBAL_TOL of the surface's global minimum
    message: str  # one line for people, to follow the kind: f"{kind}: {message}"


def _second_half_fractions(path: np.ndarray, losses: np.ndarray) -> tuple[float, float]:
    """(fraction of reversing step pairs, fraction of rising steps) over steps k >= S // 2."""
    s = len(path) - 1
    first = s // 2
    steps = np.diff(path[first:], axis=0)  # d_first .. d_{S-1}
    if len(steps) >= 2:
        dots = np.einsum("ij,ij->i", steps[:-1], steps[1:])
        reversals = float(np.mean(dots < 0))
    else:
        reversals = 0.0
    tail = losses[first:]
    # A rise smaller than rounding noise near the minimum is not a rise.
    rises = np.diff(tail) > 1e-12 * (1.0 + np.abs(tail[:-1]))
    return reversals, (float(np.mean(rises)) if len(rises) else 0.0)


def classify_run(
    path: np.ndarray,
    losses: np.ndarray,
    grad_fn: Callable[[np.ndarray], np.ndarray],
    *,
    global_min: tuple[float, float] | np.ndarray,
) -> Verdict:
    """path (S + 1, 2) iterates, losses (S + 1,) -> Verdict (rules in the module docstring)."""
    path = np.asarray(path, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    if path.ndim != 2 or path.shape[1] != 2 or len(path) < 2:
        raise ValueError(
            f"classify_run: argument 'path' must have shape (S + 1, 2) with S >= 1, got {path.shape}"
        )
    if losses.shape != (len(path),):
        raise ValueError(
            f"classify_run: argument 'losses' must have shape ({len(path)},), got {losses.shape}"
        )
    s = len(path) - 1
    final = float(losses[-1])
    if not (np.isfinite(path).all() and np.isfinite(losses).all()) or final > losses[0]:
        bad = np.flatnonzero(~np.isfinite(losses) | ~np.isfinite(path).all(axis=1))
        where = (
            f"overflowed at step {bad[0]}"
            if len(bad)
            else f"the loss grew from {losses[0]:.3g} to {final:.3g}"
        )
        return Verdict("diverged", final, False, where)
    at_global = bool(np.linalg.norm(path[-1] - np.asarray(global_min)) <= GLOBAL_TOL)
    with np.errstate(all="ignore"):
        grad_norm = float(np.linalg.norm(grad_fn(path[-1])))
    last_step = float(np.linalg.norm(path[-1] - path[-2]))
    if grad_norm <= GRAD_TOL and last_step <= STEP_TOL:
        where = "the global minimum" if at_global else "a stationary point that is not the global minimum"
        return Verdict(
            "converged", final, at_global, f"came to rest at {where}: loss {final:.3g} after {s} steps"
        )
    reversals, rises = _second_half_fractions(path, losses)
    if reversals >= REVERSAL_FRACTION or rises >= RISE_FRACTION:
        return Verdict(
            "oscillated",
            final,
            at_global,
            f"the path turned back on {reversals:.0%} and the loss rose on {rises:.0%} "
            f"of the last {s - s // 2} steps (loss {final:.3g})",
        )
    return Verdict(
        "slow",
        final,
        at_global,
        f"neither at rest nor oscillating after {s} steps (loss {final:.3g}): "
        "typically a learning rate too small for this many steps",
    )

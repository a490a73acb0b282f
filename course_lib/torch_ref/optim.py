"""Optimizer update rules as pure step functions, plus a gradient-descent driver and mini-batches, in torch.

The same API as ``course_lib.np_ref.optim`` (read its docstring for the conventions):
``<rule>_step(param, grad, *, lr, <hyperparameters>, state=None) -> (new_param, new_state)``,
``state=None`` on the first step, torch.optim's names, defaults and update forms, and no
tensor is modified in place. The updates are written out in tensor arithmetic on whatever
device ``param`` lives on; torch.optim stays an independent oracle in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch

# The argument checks are duck-typed (shapes, dtypes, Python numbers): one copy serves both paths.
from course_lib.validation import (
    check_optimizer_state,
    check_step_args,
    require_bool,
    require_float,
    require_in_range,
    require_nonnegative_int,
    require_positive_int,
    require_shape,
    resolve_optimizer,
)

__all__ = [
    "MomentumState",
    "AdagradState",
    "RMSpropState",
    "AdadeltaState",
    "AdamState",
    "sgd_step",
    "momentum_step",
    "adagrad_step",
    "rmsprop_step",
    "adadelta_step",
    "adam_step",
    "OPTIMIZERS",
    "gradient_descent",
    "iterate_minibatches",
]


class MomentumState(NamedTuple):
    velocity: torch.Tensor  # like param: torch's momentum_buffer


class AdagradState(NamedTuple):
    sum_sq: torch.Tensor  # like param: running sum of squared gradients
    step: int  # steps taken so far (drives lr_decay)


class RMSpropState(NamedTuple):
    square_avg: torch.Tensor  # like param: moving average of g^2
    grad_avg: torch.Tensor  # like param: moving average of g (read only when centered=True)
    momentum_buffer: torch.Tensor  # like param (read only when momentum > 0)


class AdadeltaState(NamedTuple):
    square_avg: torch.Tensor  # like param: moving average of g^2
    acc_delta: torch.Tensor  # like param: moving average of squared updates


class AdamState(NamedTuple):
    m: torch.Tensor  # like param: first moment (moving average of g)
    v: torch.Tensor  # like param: second moment (moving average of g^2)
    t: int  # steps taken so far, for the bias correction


def sgd_step(
    param: torch.Tensor, grad: torch.Tensor, *, lr: float, weight_decay: float = 0.0, state: None = None
) -> tuple[torch.Tensor, None]:
    """Plain SGD: param - lr * (grad + weight_decay * param).

    param (any shape), grad (same shape) -> (new_param (same shape), None). ``state`` is
    accepted for a uniform signature; SGD keeps none.
    """
    fn = "sgd_step"
    check_step_args(fn, param, grad, lr, weight_decay)
    if state is not None:
        raise ValueError(
            f"{fn}: argument 'state' must be None (SGD keeps no state), got {type(state).__name__}"
        )
    if weight_decay != 0:
        grad = grad + weight_decay * param
    return param - lr * grad, None


def momentum_step(
    param: torch.Tensor,
    grad: torch.Tensor,
    *,
    lr: float,
    momentum: float = 0.9,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    state: MomentumState | None = None,
) -> tuple[torch.Tensor, MomentumState]:
    """SGD with (heavy-ball or Nesterov) momentum, torch.optim.SGD's form.

    buf <- momentum * buf + (1 - dampening) * g   (first step: buf = g)
    param <- param - lr * buf                     (nesterov: - lr * (g + momentum * buf))

    param (any shape), grad (same shape) -> (new_param, MomentumState(velocity=buf)).
    """
    fn = "momentum_step"
    check_step_args(fn, param, grad, lr, weight_decay)
    require_in_range(fn, "momentum", momentum, 0.0)
    require_in_range(fn, "dampening", dampening, 0.0, 1.0)
    require_bool(fn, "nesterov", nesterov)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(
            f"{fn}: nesterov=True needs momentum > 0 and dampening = 0, got "
            f"momentum={momentum!r}, dampening={dampening!r}"
        )
    if weight_decay != 0:
        grad = grad + weight_decay * param
    if state is None:
        buf = grad.clone()  # torch starts the buffer at g, not at 0: no damping of the first step
    else:
        check_optimizer_state(fn, state, MomentumState, param)
        buf = momentum * state.velocity + (1.0 - dampening) * grad
    direction = grad + momentum * buf if nesterov else buf
    return param - lr * direction, MomentumState(buf)


def adagrad_step(
    param: torch.Tensor,
    grad: torch.Tensor,
    *,
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    state: AdagradState | None = None,
) -> tuple[torch.Tensor, AdagradState]:
    """Adagrad: sum_sq <- sum_sq + g^2;  param <- param - lr_t * g / (sqrt(sum_sq) + eps).

    lr_t = lr / (1 + (t - 1) * lr_decay) at step t = 1, 2, ...
    param (any shape), grad (same shape) -> (new_param, AdagradState(sum_sq, step)).
    """
    fn = "adagrad_step"
    check_step_args(fn, param, grad, lr, weight_decay)
    require_in_range(fn, "lr_decay", lr_decay, 0.0)
    require_in_range(fn, "initial_accumulator_value", initial_accumulator_value, 0.0)
    require_in_range(fn, "eps", eps, 0.0)
    if state is None:
        state = AdagradState(torch.full_like(param, initial_accumulator_value), 0)
    else:
        check_optimizer_state(fn, state, AdagradState, param)
    step = state.step + 1
    if weight_decay != 0:
        grad = grad + weight_decay * param
    sum_sq = state.sum_sq + grad * grad
    clr = lr / (1 + (step - 1) * lr_decay)
    return param - clr * grad / (torch.sqrt(sum_sq) + eps), AdagradState(sum_sq, step)


def rmsprop_step(
    param: torch.Tensor,
    grad: torch.Tensor,
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    state: RMSpropState | None = None,
) -> tuple[torch.Tensor, RMSpropState]:
    """RMSprop: square_avg <- alpha * square_avg + (1 - alpha) * g^2; param <- param - lr * g / avg.

    avg = sqrt(square_avg) + eps (centered: sqrt(square_avg - grad_avg^2) + eps with
    grad_avg <- alpha * grad_avg + (1 - alpha) * g); with momentum > 0,
    buf <- momentum * buf + g / avg and param <- param - lr * buf.
    param (any shape), grad (same shape) -> (new_param, RMSpropState).
    """
    fn = "rmsprop_step"
    check_step_args(fn, param, grad, lr, weight_decay)
    require_in_range(fn, "alpha", alpha, 0.0, 1.0)
    require_in_range(fn, "eps", eps, 0.0)
    require_in_range(fn, "momentum", momentum, 0.0)
    require_bool(fn, "centered", centered)
    if state is None:
        zeros = torch.zeros_like(param)
        state = RMSpropState(zeros, zeros, zeros)  # never written in place, so sharing is safe
    else:
        check_optimizer_state(fn, state, RMSpropState, param)
    if weight_decay != 0:
        grad = grad + weight_decay * param
    square_avg = alpha * state.square_avg + (1 - alpha) * grad * grad
    grad_avg = state.grad_avg
    if centered:
        grad_avg = alpha * grad_avg + (1 - alpha) * grad
        avg = torch.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = torch.sqrt(square_avg) + eps
    buf = state.momentum_buffer
    if momentum > 0:
        buf = momentum * buf + grad / avg
        new_param = param - lr * buf
    else:
        new_param = param - lr * grad / avg
    return new_param, RMSpropState(square_avg, grad_avg, buf)


def adadelta_step(
    param: torch.Tensor,
    grad: torch.Tensor,
    *,
    lr: float = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    state: AdadeltaState | None = None,
) -> tuple[torch.Tensor, AdadeltaState]:
    """Adadelta: delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g; param <- param - lr * delta.

    square_avg <- rho * square_avg + (1 - rho) * g^2 (before delta),
    acc_delta <- rho * acc_delta + (1 - rho) * delta^2 (after).
    param (any shape), grad (same shape) -> (new_param, AdadeltaState).
    """
    fn = "adadelta_step"
    check_step_args(fn, param, grad, lr, weight_decay)
    require_in_range(fn, "rho", rho, 0.0, 1.0)
    require_in_range(fn, "eps", eps, 0.0)
    if state is None:
        zeros = torch.zeros_like(param)
        state = AdadeltaState(zeros, zeros)
    else:
        check_optimizer_state(fn, state, AdadeltaState, param)
    if weight_decay != 0:
        grad = grad + weight_decay * param
    square_avg = rho * state.square_avg + (1 - rho) * grad * grad
    delta = torch.sqrt(state.acc_delta + eps) / torch.sqrt(square_avg + eps) * grad
    acc_delta = rho * state.acc_delta + (1 - rho) * delta * delta
    return param - lr * delta, AdadeltaState(square_avg, acc_delta)


def adam_step(
    param: torch.Tensor,
    grad: torch.Tensor,
    *,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    state: AdamState | None = None,
) -> tuple[torch.Tensor, AdamState]:
    """Adam: param <- param - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps).

    m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2;  t <- t + 1.
    param (any shape), grad (same shape) -> (new_param, AdamState(m, v, t)).
    """
    fn = "adam_step"
    check_step_args(fn, param, grad, lr, weight_decay)
    require_in_range(fn, "beta1", beta1, 0.0, 1.0, hi_open=True)
    require_in_range(fn, "beta2", beta2, 0.0, 1.0, hi_open=True)
    require_in_range(fn, "eps", eps, 0.0)
    if state is None:
        zeros = torch.zeros_like(param)
        state = AdamState(zeros, zeros, 0)
    else:
        check_optimizer_state(fn, state, AdamState, param)
    t = state.t + 1
    if weight_decay != 0:
        grad = grad + weight_decay * param
    m = beta1 * state.m + (1 - beta1) * grad
    v = beta2 * state.v + (1 - beta2) * grad * grad
    # m and v start at 0, so early averages are biased towards 0 by the factor 1 - beta^t.
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return param - lr * m_hat / (torch.sqrt(v_hat) + eps), AdamState(m, v, t)


OPTIMIZERS: dict[str, Callable[..., tuple[Any, Any]]] = {
    "sgd": sgd_step,
    "momentum": momentum_step,
    "adagrad": adagrad_step,
    "rmsprop": rmsprop_step,
    "adadelta": adadelta_step,
    "adam": adam_step,
}


def gradient_descent(
    grad_fn: Callable[[torch.Tensor], torch.Tensor],
    w0: torch.Tensor | float,
    *,
    lr: float,
    steps: int,
    optimizer: str = "sgd",
    **hyper: Any,
) -> torch.Tensor:
    """Run ``steps`` updates of ``optimizer`` from ``w0`` and return every iterate.

    grad_fn: w (shape of w0) -> dL/dw (same shape). w0: tensor of any shape (a Python
    number becomes a 0-d tensor of torch's default dtype). ``hyper`` goes to the step
    function. Returns path (steps + 1, *w0.shape) on w0's device, path[0] = w0.

    Divergence is a result, not an error: once an iterate is no longer finite the run
    stops; that iterate (inf or nan) is kept and every later row is nan.
    """
    fn = "gradient_descent"
    step_fn = resolve_optimizer(fn, optimizer, hyper, OPTIMIZERS)
    require_nonnegative_int(fn, "steps", steps)
    if not callable(grad_fn):
        raise ValueError(
            f"{fn}: argument 'grad_fn' must be a function w -> dL/dw, got {type(grad_fn).__name__}"
        )
    w = w0 if isinstance(w0, torch.Tensor) else torch.as_tensor(w0, dtype=torch.get_default_dtype())
    require_float(fn, "w0", w)
    path = torch.full((steps + 1, *w.shape), float("nan"), dtype=w.dtype, device=w.device)
    path[0] = w
    state = None
    for k in range(1, steps + 1):
        g = torch.as_tensor(grad_fn(w), dtype=w.dtype, device=w.device)
        require_shape(fn, "grad_fn(w)", g, tuple(w.shape))
        w, state = step_fn(w, g, lr=lr, state=state, **hyper)
        path[k] = w
        if not bool(torch.isfinite(w).all()):
            break
    return path


def iterate_minibatches(
    x: torch.Tensor, y: torch.Tensor, *, batch_size: int, rng: torch.Generator | None, shuffle: bool = True
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of mini-batches: yields (xb (B, ...), yb (B, ...)) with B <= batch_size.

    x (N, ...), y (N, ...) on the same device. Every sample appears exactly once; the
    last batch holds the remaining N mod batch_size samples when that is not 0. With
    shuffle=True the order is ``torch.randperm(N, generator=rng)``, drawn when this
    function is called (``rng`` may be None only with shuffle=False). Arguments are
    checked right away, not at the first ``next()``.
    """
    fn = "iterate_minibatches"
    require_positive_int(fn, "batch_size", batch_size)
    require_bool(fn, "shuffle", shuffle)
    for name, arr in (("x", x), ("y", y)):
        if not hasattr(arr, "shape") or len(arr.shape) == 0:
            raise ValueError(
                f"{fn}: argument {name!r} must be an array with a sample axis (N, ...), got {arr!r}"
            )
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{fn}: arguments 'x' and 'y' must have the same number of samples (axis 0), "
            f"got shapes {tuple(x.shape)} and {tuple(y.shape)}"
        )
    n = x.shape[0]
    if shuffle:
        if not isinstance(rng, torch.Generator):
            raise ValueError(
                f"{fn}: argument 'rng' must be a torch.Generator when shuffle=True, got {type(rng).__name__}"
            )
        # randperm must run on the generator's device; the indices then follow the data.
        order = torch.randperm(n, generator=rng, device=rng.device).to(x.device)
    else:
        order = torch.arange(n, device=x.device)
    return _batches(x, y, order, batch_size)


def _batches(
    x: torch.Tensor, y: torch.Tensor, order: torch.Tensor, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        yield x[idx], y[idx.to(y.device)]

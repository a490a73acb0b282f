"""Checks for notebook 07_rnn: the RNN cell, the unrolled forward pass, backpropagation through
time, gradient clipping and the LSTM cell.

Every answer is compared with ``course_lib.np_ref.recurrent`` on small deterministic inputs.
Seed 0 holds the visible cases (gradients above and below the clipping threshold among
them); seeds >= 1 add hidden ones (T = 1, longer sequences, a single example).

Letters: N batch, T time steps, D input features, H hidden units. Row-vector layout as in
torch: ``h_t = tanh(x_t @ wx + h_{t-1} @ wh + b)`` with wx (D, H), wh (H, H), b (H,).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from course_lib._api import NP_FAST
from course_lib.checks._core import Case, Exercise, register, run_check, seeded_rng
from course_lib.checks._mistakes import Mistake, diagnosing_judge, matches
from course_lib.np_ref import recurrent
from course_lib.testing import assert_close

__all__ = ["check_rnn_cell", "check_rnn_unroll", "check_rnn_bptt", "check_clip_grad_norm", "check_lstm_cell"]

NOTEBOOK = "07_rnn"


def _refs(*names: str) -> tuple[str, ...]:
    """Every implementation of ``names``: both back-ends, and np_ref's speed-tuned module
    where it has one (``course_lib.np_ref.<name>`` resolves there)."""
    return tuple(
        f"course_lib.{lib}.{module}.{name}"
        for name in names
        for lib, module in (
            ("np_ref", "recurrent"),
            ("torch_ref", "recurrent"),
            ("np_ref", NP_FAST.get(name)),
        )
        if module is not None
    )


def _rnn_params(
    rng: np.random.Generator, d: int, h: int, gates: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Weights of scale ~1/sqrt(fan-in) keep tanh away from saturation, so every mistake shows.
    wx = rng.normal(size=(d, gates * h)) / np.sqrt(d)
    wh = rng.normal(size=(h, gates * h)) / np.sqrt(h)
    b = rng.normal(size=gates * h) * 0.5
    return wx, wh, b


# --- rnn_cell ----------------------------------------------------------------------------


def _cell_reference(x, h_prev, wx, wh, b):
    return recurrent.rnn_step_forward(x, h_prev, wx, wh, b)[0]


def _cell_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 701)
    shapes = [(3, 4, 5)] if seed == 0 else [(2, 3, 3), (1, 5, 4), (4, 2, 6)]
    cases = []
    for n, d, h in shapes:
        wx, wh, b = _rnn_params(rng, d, h)
        cases.append(
            Case((rng.normal(size=(n, d)), rng.normal(size=(n, h)), wx, wh, b), label=f"N={n}, D={d}, H={h}")
        )
    return cases


RNN_CELL = register(
    Exercise(
        notebook=NOTEBOOK,
        name="rnn_cell",
        kind="function",
        cases=_cell_cases,
        judge=diagnosing_judge(
            _cell_reference,
            name="rnn_cell(x, h_prev, wx, wh, b)",
            mistakes=[
                Mistake(
                    lambda x, h, wx, wh, b: x @ wx + h @ wh + b,
                    "the tanh is missing: h_t = tanh(x_t @ wx + h_prev @ wh + b).",
                ),
                Mistake(
                    lambda x, h, wx, wh, b: np.tanh(x @ wx + h @ wh.T + b),
                    "wh is transposed. In the row-vector layout h_prev (N, H) multiplies wh from the left: h_prev @ wh.",
                ),
                Mistake(lambda x, h, wx, wh, b: np.tanh(x @ wx + h @ wh), "the bias b is missing."),
                Mistake(
                    lambda x, h, wx, wh, b: 1.0 / (1.0 + np.exp(-(x @ wx + h @ wh + b))),
                    "that is a sigmoid; the RNN cell squashes with tanh.",
                ),
            ],
            hint="h_t = tanh(x_t @ wx + h_prev @ wh + b), shape (N, H).",
        ),
        references=_refs("rnn_step_forward", "rnn_forward"),
    )
)
check_rnn_cell = partial(run_check, RNN_CELL)


# --- rnn_unroll ----------------------------------------------------------------------------


def _unroll_reference(x, h0, wx, wh, b):
    return recurrent.rnn_forward(x, h0, wx, wh, b)[0]


def _unroll_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 702)
    shapes = [(2, 5, 3, 4)] if seed == 0 else [(3, 1, 2, 3), (1, 8, 2, 5), (2, 4, 4, 2)]
    cases = []
    for n, t, d, h in shapes:
        wx, wh, b = _rnn_params(rng, d, h)
        cases.append(
            Case(
                (rng.normal(size=(n, t, d)), rng.normal(size=(n, h)), wx, wh, b),
                label=f"N={n}, T={t}, D={d}, H={h}",
            )
        )
    return cases


def _unroll_from_h0(x, h0, wx, wh, b):
    return np.stack([np.tanh(x[:, t] @ wx + h0 @ wh + b) for t in range(x.shape[1])], axis=1)


RNN_UNROLL = register(
    Exercise(
        notebook=NOTEBOOK,
        name="rnn_unroll",
        kind="function",
        cases=_unroll_cases,
        judge=diagnosing_judge(
            _unroll_reference,
            name="rnn_unroll(x, h0, wx, wh, b)",
            mistakes=[
                Mistake(
                    _unroll_from_h0,
                    "every step starts from h0. Carry the state: the h computed at step t is h_prev at step t + 1.",
                ),
                Mistake(
                    lambda x, h0, wx, wh, b: np.concatenate(
                        [h0[:, None], _unroll_reference(x, h0, wx, wh, b)[:, :-1]], axis=1
                    ),
                    "the states are shifted by one: h[:, t] is the state AFTER reading x[:, t], and h0 is not part of the output.",
                ),
            ],
            hint="loop over t: h = tanh(x[:, t] @ wx + h @ wh + b), starting from h = h0, "
            "and stack every h along axis 1 -> (N, T, H).",
        ),
        references=_refs("rnn_forward", "rnn_step_forward"),
    )
)
check_rnn_unroll = partial(run_check, RNN_UNROLL)


# --- rnn_bptt ----------------------------------------------------------------------------------


def _bptt_reference(dh, x, h0, wx, wh, b):
    _, cache = recurrent.rnn_forward(x, h0, wx, wh, b)
    return recurrent.rnn_backward(dh, cache)


def _bptt_steps(dh, x, h0, wx, wh, b, *, carry: bool, with_db: bool = True):
    """BPTT written with the reference step functions; ``carry=False`` is the classic mistake."""
    caches, h = [], h0
    for t in range(x.shape[1]):
        h, cache = recurrent.rnn_step_forward(x[:, t], h, wx, wh, b)
        caches.append(cache)
    dx = np.zeros_like(x)
    dwx, dwh, db = np.zeros_like(wx), np.zeros_like(wh), np.zeros_like(b)
    dh_next = np.zeros_like(h0)
    for t in reversed(range(x.shape[1])):
        upstream = dh[:, t] + dh_next if carry else dh[:, t]
        dx[:, t], dh_prev, dwx_t, dwh_t, db_t = recurrent.rnn_step_backward(upstream, caches[t])
        dwx, dwh, db = dwx + dwx_t, dwh + dwh_t, db + db_t
        dh_next = dh_prev
    return dx, dh_next, dwx, dwh, (db if with_db else np.zeros_like(b))


def _bptt_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 703)
    shapes = [(2, 4, 3, 4)] if seed == 0 else [(3, 1, 2, 3), (1, 7, 2, 4), (2, 5, 3, 2)]
    cases = []
    for n, t, d, h in shapes:
        wx, wh, b = _rnn_params(rng, d, h)
        cases.append(
            Case(
                (rng.normal(size=(n, t, h)), rng.normal(size=(n, t, d)), rng.normal(size=(n, h)), wx, wh, b),
                label=f"N={n}, T={t}, D={d}, H={h}",
            )
        )
    return cases


RNN_BPTT = register(
    Exercise(
        notebook=NOTEBOOK,
        name="rnn_bptt",
        kind="function",
        cases=_bptt_cases,
        judge=diagnosing_judge(
            _bptt_reference,
            name="rnn_bptt(dh, x, h0, wx, wh, b)",
            outputs=("dx", "dh0", "dwx", "dwh", "db"),
            mistakes=[
                Mistake(
                    partial(_bptt_steps, carry=False),
                    "dh is not carried across time steps. The state h_t feeds the loss directly (dh[:, t]) AND "
                    "the next step, so the gradient entering step t is dh[:, t] + dh_prev returned by step t + 1.",
                ),
                Mistake(
                    partial(_bptt_steps, carry=True, with_db=False),
                    "the bias gradient is missing: db = sum over time and batch of the gradient through tanh.",
                ),
            ],
            hint="walk t = T-1, ..., 0: da = (dh[:, t] + dh_next) * (1 - h_t**2); dx[:, t] = da @ wx.T; "
            "dwx += x_t.T @ da; dwh += h_{t-1}.T @ da; db += da.sum(0); dh_next = da @ wh.T. dh0 is the last dh_next.",
        ),
        references=_refs("rnn_backward", "rnn_step_backward"),
    )
)
check_rnn_bptt = partial(run_check, RNN_BPTT)


# --- clip_grad_norm --------------------------------------------------------------------------------


def _clip_reference(grads, *, max_norm):
    return recurrent.clip_grad_norm(grads, max_norm=max_norm)


def _clip_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 704)

    def grads(scale: float) -> list[np.ndarray]:
        return [scale * rng.normal(size=s) for s in ((3, 4), (4,), (2, 2))]

    if seed == 0:
        return [
            Case((grads(5.0),), {"max_norm": 1.0}, label="total norm well above max_norm"),
            Case((grads(0.05),), {"max_norm": 1.0}, label="total norm below max_norm: nothing changes"),
        ]
    return [
        Case((grads(0.02),), {"max_norm": 0.5}, label="total norm below max_norm: nothing changes"),
        Case((grads(3.0),), {"max_norm": 2.5}, label="max_norm=2.5"),
        Case(([rng.normal(size=(5,)) * 10.0],), {"max_norm": 0.5}, label="a single gradient array"),
    ]


def _clip_judge(case: Case | None, output: object) -> None:
    assert case is not None
    grads = case.args[0]
    max_norm = case.kwargs["max_norm"]
    expected, expected_total = _clip_reference([g.copy() for g in grads], max_norm=max_norm)
    where = f"clip_grad_norm [{case.label}]"
    if not (isinstance(output, (list, tuple)) and len(output) == 2 and isinstance(output[0], (list, tuple))):
        raise AssertionError(
            f"{where}: expected a tuple (clipped, total_norm) with `clipped` a list of {len(grads)} arrays, "
            f"got {type(output).__name__}"
            + (f" of length {len(output)}" if isinstance(output, (list, tuple)) else "")
        )
    clipped, total = output
    if len(clipped) != len(grads):
        raise AssertionError(
            f"{where}: expected {len(grads)} clipped arrays (one per gradient), got {len(clipped)}."
        )
    assert_close(
        total,
        expected_total,
        name=f"{where}: total_norm",
        hint="total_norm is the norm BEFORE clipping, over all entries of all arrays together: "
        "sqrt(sum of g**2 over every array).",
    )
    per_tensor = [g * min(1.0, max_norm / (float(np.linalg.norm(g)) + 1e-6)) for g in grads]
    elementwise = [np.clip(g, -max_norm, max_norm) for g in grads]
    always = [g * (max_norm / expected_total) for g in grads]
    for i, (got, want) in enumerate(zip(clipped, expected, strict=False)):
        if matches(got, want):
            continue
        hint = (
            "scale every gradient by the same factor min(1, max_norm / total_norm), "
            "where total_norm = sqrt(sum of all squared entries of all gradients)."
        )
        if matches(got, per_tensor[i]):
            hint = (
                "each array was clipped by its own norm. Clip by the GLOBAL norm over all arrays, so the "
                "direction of the full gradient is kept."
            )
        elif matches(got, elementwise[i]):
            hint = "that clips each entry to [-max_norm, max_norm] (clipping by value); clip by the norm instead."
        elif matches(got, always[i]):
            hint = (
                "gradients whose total norm is already below max_norm must stay unchanged: use min(1, ...)."
            )
        try:
            assert_close(
                got,
                want,
                name=f"{where}: clipped[{i}] (total norm {expected_total:.4g}, max_norm {max_norm:g})",
            )
        except AssertionError as err:
            raise AssertionError(f"{err}\nHint: {hint}") from None


def _global_norm(grads) -> float:
    return float(np.sqrt(sum(float(np.sum(g * g)) for g in grads)))


_clip_judge.reference = _clip_reference  # type: ignore[attr-defined]

CLIP_GRAD_NORM = register(
    Exercise(
        notebook=NOTEBOOK,
        name="clip_grad_norm",
        kind="function",
        cases=_clip_cases,
        judge=_clip_judge,
        mistakes=(
            Mistake(
                lambda grads, *, max_norm: (
                    [g * min(1.0, max_norm / (float(np.linalg.norm(g)) + 1e-6)) for g in grads],
                    _global_norm(grads),
                ),
                "each array clipped by its own norm.",
            ),
            Mistake(
                lambda grads, *, max_norm: (
                    [np.clip(g, -max_norm, max_norm) for g in grads],
                    _global_norm(grads),
                ),
                "clipping by value, not by norm.",
            ),
            Mistake(
                lambda grads, *, max_norm: (
                    [g * (max_norm / _global_norm(grads)) for g in grads],
                    _global_norm(grads),
                ),
                "small gradients must stay unchanged: use min(1, ...).",
            ),
            Mistake(
                lambda grads, *, max_norm: (
                    _clip_reference(grads, max_norm=max_norm)[0],
                    _global_norm(_clip_reference(grads, max_norm=max_norm)[0]),
                ),
                "total_norm is the norm before clipping.",
            ),
        ),
        references=_refs("clip_grad_norm"),
    )
)
check_clip_grad_norm = partial(run_check, CLIP_GRAD_NORM)


# --- lstm_cell ------------------------------------------------------------------------------------------


def _lstm_reference(x, h_prev, c_prev, wx, wh, b):
    h, c, _ = recurrent.lstm_step_forward(x, h_prev, c_prev, wx, wh, b)
    return h, c


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _lstm_variant(x, h_prev, c_prev, wx, wh, b, *, order="ifgo", tanh_c=True, use_input_gate=True):
    a = x @ wx + h_prev @ wh + b
    gates = dict(zip(order, np.split(a, 4, axis=1), strict=True))
    i, f, o, g = _sigmoid(gates["i"]), _sigmoid(gates["f"]), _sigmoid(gates["o"]), np.tanh(gates["g"])
    c = f * c_prev + (i * g if use_input_gate else g)
    h = o * (np.tanh(c) if tanh_c else c)
    return h, c


def _lstm_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 705)
    shapes = [(3, 4, 3)] if seed == 0 else [(2, 2, 5), (1, 3, 2), (4, 5, 4)]
    cases = []
    for n, d, h in shapes:
        wx, wh, b = _rnn_params(rng, d, h, gates=4)
        cases.append(
            Case(
                (rng.normal(size=(n, d)), rng.normal(size=(n, h)), rng.normal(size=(n, h)), wx, wh, b),
                label=f"N={n}, D={d}, H={h}",
            )
        )
    return cases


LSTM_CELL = register(
    Exercise(
        notebook=NOTEBOOK,
        name="lstm_cell",
        kind="function",
        cases=_lstm_cases,
        judge=diagnosing_judge(
            _lstm_reference,
            name="lstm_cell(x, h_prev, c_prev, wx, wh, b)",
            outputs=("h", "c"),
            mistakes=[
                Mistake(
                    partial(_lstm_variant, order="ifog"),
                    "the gates are read in the wrong order. The packed columns are [i | f | g | o] (torch's order): "
                    "the third block is the candidate g, the fourth the output gate o.",
                ),
                Mistake(
                    partial(_lstm_variant, order="fiog"),
                    "the gates are read in the wrong order: the packed columns are [i | f | g | o].",
                ),
                Mistake(
                    partial(_lstm_variant, tanh_c=False),
                    "h = o * c is missing the tanh: h_t = o_t * tanh(c_t).",
                ),
                Mistake(
                    partial(_lstm_variant, use_input_gate=False),
                    "the input gate is missing: c_t = f_t * c_prev + i_t * g_t.",
                ),
            ],
            hint="a = x @ wx + h_prev @ wh + b; split a into 4 blocks of H columns [i | f | g | o]; "
            "i, f, o = sigmoid(...), g = tanh(...); c = f * c_prev + i * g; h = o * tanh(c).",
        ),
        references=_refs("lstm_step_forward", "lstm_forward"),
    )
)
check_lstm_cell = partial(run_check, LSTM_CELL)

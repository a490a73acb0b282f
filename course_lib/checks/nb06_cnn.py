"""Checks for notebook 06_cnn: convolution, output size, pooling and the convolution's backward pass.

Every answer is compared with ``course_lib.np_ref.conv`` on small deterministic inputs.
Seed 0 holds the visible cases (including the lecture's worked examples); seeds >= 1
add hidden cases: non-square kernels, stride 2 with padding, sizes that do not divide.

Letters: N batch, C input channels, F filters, H/W height/width, KH/KW kernel size.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from course_lib._api import NP_FAST
from course_lib.checks._core import Case, Exercise, register, run_check, seeded_rng
from course_lib.checks._mistakes import Mistake, diagnosing_judge
from course_lib.np_ref import conv

__all__ = [
    "LECTURE_X",
    "LECTURE_K",
    "check_corr2d",
    "check_conv_output_size",
    "check_conv2d",
    "check_max_pool2d",
    "check_conv2d_grads",
]

NOTEBOOK = "06_cnn"

# The lecture's two-channel example: (1*1 + 2*2 + 4*3 + 5*4) + (0*0 + 1*1 + 3*2 + 4*3) = 56.
LECTURE_X = np.array(
    [[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]
)  # (C=2, H=3, W=3)
LECTURE_K = np.array([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])  # (C=2, KH=2, KW=2)


def _refs(name: str) -> tuple[str, ...]:
    """Every implementation of ``name``: both back-ends, and np_ref's speed-tuned module
    where it has one (``course_lib.np_ref.<name>`` resolves there)."""
    fast = NP_FAST.get(name)
    return (
        f"course_lib.np_ref.conv.{name}",
        f"course_lib.torch_ref.conv.{name}",
        *((f"course_lib.np_ref.{fast}.{name}",) if fast else ()),
    )


# --- corr2d: one channel, one kernel, no padding ---------------------------------------


def _corr2d_reference(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    out, _ = conv.conv2d_forward(x[None, None], k[None, None], np.zeros(1))
    return out[0, 0]


def _corr2d_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 601)
    if seed == 0:
        return [
            Case((LECTURE_X[0].copy(), LECTURE_K[0].copy()), label="lecture example, channel 0"),
            Case((rng.normal(size=(5, 6)), rng.normal(size=(3, 3))), label="x (5, 6), k (3, 3)"),
        ]
    return [
        Case((rng.normal(size=(6, 5)), rng.normal(size=(2, 3))), label="x (6, 5), non-square k (2, 3)"),
        Case((rng.normal(size=(4, 4)), rng.normal(size=(4, 4))), label="kernel as large as the image"),
        Case((rng.normal(size=(3, 5)), rng.normal(size=(1, 1))), label="1x1 kernel"),
    ]


CORR2D = register(
    Exercise(
        notebook=NOTEBOOK,
        name="corr2d",
        kind="function",
        cases=_corr2d_cases,
        judge=diagnosing_judge(
            _corr2d_reference,
            name="corr2d(x, k)",
            mistakes=[
                Mistake(
                    lambda x, k: _corr2d_reference(x, k[::-1, ::-1].copy()),
                    "the kernel is flipped. A CNN layer slides the kernel as it is "
                    "(cross-correlation): out[i, j] = sum(x[i:i+KH, j:j+KW] * k).",
                ),
                Mistake(
                    lambda x, k: _corr2d_reference(x, k.T.copy()),
                    "the kernel is transposed: k[a, b] multiplies x[i + a, j + b], with a along the rows.",
                ),
            ],
            hint="out has shape (H - KH + 1, W - KW + 1) and out[i, j] = sum(x[i:i+KH, j:j+KW] * k).",
        ),
        references=_refs("conv2d_forward") + _refs("conv2d_forward_naive"),
    )
)
check_corr2d = partial(run_check, CORR2D)


# --- conv_output_size -----------------------------------------------------------------


def _size_cases(seed: int) -> list[Case]:
    visible = [  # (size, kernel, stride, pad)
        (8, 3, 1, 0),
        (28, 5, 1, 2),
        (14, 4, 2, 1),
        (7, 2, 2, 0),
    ]
    hidden = [
        (32, 3, 1, 1),
        (5, 5, 1, 0),
        (9, 3, 2, 0),
        (10, 3, 3, 1),
        (6, 1, 1, 0),
        (224, 7, 2, 3),
        (8, 4, 4, 0),
    ]
    rows = visible if seed == 0 else hidden
    return [
        Case((n, k), {"stride": s, "pad": p}, label=f"size={n}, kernel={k}, stride={s}, pad={p}")
        for n, k, s, p in rows
    ]


def _size_judge(case: Case | None, output: object) -> None:
    assert case is not None
    expected = conv.conv_output_size(*case.args, **case.kwargs)
    where = f"conv_output_size [{case.label}]"
    if isinstance(output, (bool, np.bool_)) or not isinstance(output, (int, np.integer)):
        hint = (
            "a size is a whole number: use floor division `//`, not `/`."
            if isinstance(output, (float, np.floating))
            else "return a Python int."
        )
        raise AssertionError(
            f"{where}: expected an int, got {output!r} ({type(output).__name__}).\nHint: {hint}"
        )
    if int(output) == expected:
        return
    size, kernel = case.args
    stride, pad = case.kwargs["stride"], case.kwargs["pad"]
    known = {
        (size + 2 * pad - kernel)
        // stride: "you forgot the + 1: a kernel that fits exactly once gives one output.",
        (size + pad - kernel) // stride + 1: "padding adds `pad` pixels on BOTH sides: use size + 2 * pad.",
        size
        + 2 * pad
        - kernel
        + 1: "the stride divides the number of extra positions: (size + 2*pad - kernel) // stride + 1.",
        (size + 2 * pad - kernel + 1)
        // stride: "divide first, then add one: (size + 2*pad - kernel) // stride + 1.",
    }
    hint = known.get(int(output), "out = (size + 2 * pad - kernel) // stride + 1.")
    raise AssertionError(f"{where}: expected {expected}, got {int(output)}.\nHint: {hint}")


_size_judge.reference = conv.conv_output_size  # type: ignore[attr-defined]

CONV_OUTPUT_SIZE = register(
    Exercise(
        notebook=NOTEBOOK,
        name="conv_output_size",
        kind="function",
        cases=_size_cases,
        judge=_size_judge,
        mistakes=(
            Mistake(lambda n, k, *, stride, pad: (n + 2 * pad - k) // stride, "the + 1 is missing."),
            Mistake(lambda n, k, *, stride, pad: (n + pad - k) // stride + 1, "padding goes on both sides."),
            Mistake(lambda n, k, *, stride, pad: n + 2 * pad - k + 1, "the stride is ignored."),
            Mistake(
                lambda n, k, *, stride, pad: (n + 2 * pad - k + 1) // stride, "divide first, then add one."
            ),
            Mistake(
                lambda n, k, *, stride, pad: (n + 2 * pad - k) / stride + 1,
                "a size is an int: use //, not /.",
            ),
        ),
        references=_refs("conv_output_size"),
    )
)
check_conv_output_size = partial(run_check, CONV_OUTPUT_SIZE)


# --- conv2d: batched, multi-channel, stride and padding --------------------------------


def _conv2d_reference(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, *, stride: int = 1, pad: int = 0
) -> np.ndarray:
    return conv.conv2d_forward(x, w, b, stride=stride, pad=pad)[0]


def _conv2d_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 603)

    def random_case(n: int, c: int, h: int, w: int, f: int, kh: int, kw: int, stride: int, pad: int) -> Case:
        return Case(
            (rng.normal(size=(n, c, h, w)), rng.normal(size=(f, c, kh, kw)), rng.normal(size=f)),
            {"stride": stride, "pad": pad},
            label=f"x ({n}, {c}, {h}, {w}), w ({f}, {c}, {kh}, {kw}), stride={stride}, pad={pad}",
        )

    if seed == 0:
        return [
            Case(
                (LECTURE_X[None].copy(), LECTURE_K[None].copy(), np.zeros(1)),
                {"stride": 1, "pad": 0},
                label="lecture example: out[0, 0, 0, 0] = 56",
            ),
            random_case(2, 3, 5, 6, 4, 3, 3, 1, 1),
        ]
    return [
        random_case(2, 2, 7, 7, 3, 3, 3, 2, 1),
        random_case(1, 3, 6, 5, 2, 2, 3, 1, 0),
        random_case(3, 1, 8, 8, 2, 3, 3, 2, 0),
    ]


def _conv2d_first_channel_only(x, w, b, *, stride=1, pad=0):
    return _conv2d_reference(x[:, :1].copy(), w[:, :1].copy(), b, stride=stride, pad=pad)


CONV2D = register(
    Exercise(
        notebook=NOTEBOOK,
        name="conv2d",
        kind="function",
        cases=_conv2d_cases,
        judge=diagnosing_judge(
            _conv2d_reference,
            name="conv2d(x, w, b, stride, pad)",
            mistakes=[
                Mistake(
                    lambda x, w, b, **kw: _conv2d_reference(x, w, np.zeros_like(b), **kw),
                    "the bias is missing: add b[f] to every position of output channel f.",
                ),
                Mistake(
                    _conv2d_first_channel_only,
                    "only one input channel is used: sum the per-channel correlations over all C channels.",
                ),
                Mistake(
                    lambda x, w, b, **kw: _conv2d_reference(x, w[:, :, ::-1, ::-1].copy(), b, **kw),
                    "the kernel is flipped; a CNN layer uses cross-correlation.",
                ),
            ],
            hint="pad x with zeros on both sides of H and W, then out[n, f, i, j] = "
            "sum(xp[n, :, i*s:i*s+KH, j*s:j*s+KW] * w[f]) + b[f].",
        ),
        references=_refs("conv2d_forward") + _refs("conv2d_forward_naive"),
    )
)
check_conv2d = partial(run_check, CONV2D)


# --- max_pool2d --------------------------------------------------------------------------


def _max_pool_reference(x: np.ndarray, *, kernel: int = 2, stride: int = 2) -> np.ndarray:
    return conv.max_pool2d_forward(x, kernel=kernel, stride=stride)[0]


def _max_pool_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 604)
    rows = (
        [((2, 3, 4, 6), 2, 2)]
        if seed == 0
        else [((1, 2, 5, 5), 2, 2), ((2, 1, 5, 6), 3, 1), ((1, 2, 6, 6), 3, 3)]
    )
    cases = [
        Case(
            (rng.normal(size=shape),), {"kernel": k, "stride": s}, label=f"x {shape}, kernel={k}, stride={s}"
        )
        for shape, k, s in rows
    ]
    # Negative values everywhere catch an answer that pools with a zero-initialised maximum.
    cases.append(
        Case(
            (-np.abs(rng.normal(size=(1, 1, 4, 4))) - 0.5,),
            {"kernel": 2, "stride": 2},
            label="all values negative",
        )
    )
    return cases


MAX_POOL2D = register(
    Exercise(
        notebook=NOTEBOOK,
        name="max_pool2d",
        kind="function",
        cases=_max_pool_cases,
        judge=diagnosing_judge(
            _max_pool_reference,
            name="max_pool2d(x, kernel, stride)",
            mistakes=[
                Mistake(
                    lambda x, **kw: conv.avg_pool2d_forward(x, **kw)[0],
                    "this is average pooling: take the max of each window.",
                ),
                Mistake(
                    lambda x, **kw: np.maximum(_max_pool_reference(x, **kw), 0.0),
                    "the running maximum starts at 0; start it at -inf (or take np.max of the window).",
                ),
            ],
            hint="out[n, c, i, j] = max(x[n, c, i*s:i*s+k, j*s:j*s+k]); "
            "the output has (H - k) // s + 1 rows and (W - k) // s + 1 columns.",
        ),
        references=_refs("max_pool2d_forward"),
    )
)
check_max_pool2d = partial(run_check, MAX_POOL2D)


# --- conv2d_grads: the backward pass --------------------------------------------------------


def _grads_reference(dout, x, w, *, stride=1, pad=0):
    b = np.zeros(w.shape[0], dtype=x.dtype)
    _, cache = conv.conv2d_forward(x, w, b, stride=stride, pad=pad)
    return conv.conv2d_backward(dout, cache)


def _grads_cases(seed: int) -> list[Case]:
    rng = seeded_rng(seed, 605)
    rows = (
        [(2, 3, 5, 5, 4, 3, 3, 1, 1)]
        if seed == 0
        else [(2, 2, 6, 6, 3, 3, 3, 2, 1), (1, 3, 5, 4, 2, 2, 3, 1, 0), (2, 1, 7, 7, 2, 3, 3, 2, 0)]
    )
    cases = []
    for n, c, h, wd, f, kh, kw, s, p in rows:
        oh = conv.conv_output_size(h, kh, stride=s, pad=p)
        ow = conv.conv_output_size(wd, kw, stride=s, pad=p)
        cases.append(
            Case(
                (
                    rng.normal(size=(n, f, oh, ow)),
                    rng.normal(size=(n, c, h, wd)),
                    rng.normal(size=(f, c, kh, kw)),
                ),
                {"stride": s, "pad": p},
                label=f"x ({n}, {c}, {h}, {wd}), w ({f}, {c}, {kh}, {kw}), stride={s}, pad={p}",
            )
        )
    return cases


def _with_db(fn):
    def wrong(dout, x, w, **kw):
        dx, dw, _ = _grads_reference(dout, x, w, **kw)
        return dx, dw, fn(dout)

    return wrong


CONV2D_GRADS = register(
    Exercise(
        notebook=NOTEBOOK,
        name="conv2d_grads",
        kind="function",
        cases=_grads_cases,
        judge=diagnosing_judge(
            _grads_reference,
            name="conv2d_grads(dout, x, w, stride, pad)",
            outputs=("dx", "dw", "db"),
            mistakes=[
                Mistake(
                    _with_db(lambda d: np.zeros(d.shape[1])),
                    "the bias gradient is missing: db[f] = dout[:, f].sum() (the bias touches every output).",
                ),
                Mistake(
                    _with_db(lambda d: d.mean(axis=(0, 2, 3))),
                    "db is a mean; the bias is added at every position of every example, so SUM the gradients.",
                ),
                Mistake(
                    _with_db(lambda d: d.sum(axis=(2, 3))[0]),
                    "db must also sum over the batch axis: db = dout.sum(axis=(0, 2, 3)).",
                ),
                Mistake(
                    lambda dout, x, w, **kw: (
                        _grads_reference(dout, x, w, **kw)[0],
                        _grads_reference(dout, x, w, **kw)[1] / x.shape[0],
                        _grads_reference(dout, x, w, **kw)[2],
                    ),
                    "dw is averaged over the batch; dout already carries any 1/N, so sum over examples.",
                ),
            ],
            hint="for every output position, dout[n, f, i, j] flows back to the input window it read "
            "(dx += dout * w[f]) and to the weights (dw[f] += dout * window). Crop the padding from dx.",
        ),
        references=_refs("conv2d_backward"),
    )
)
check_conv2d_grads = partial(run_check, CONV2D_GRADS)

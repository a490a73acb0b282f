"""What a re-verification view withholds beyond the named references, and the secret
seed that makes the hidden cases worthless to a student who reads them.

The audit table below is hand-made (read against course_lib/np_ref, torch_ref,
gradcheck.py and metrics.py): for every exercise, the course_lib functions that compute
its answer, possibly with other arguments or one cheap step away. It is data, not
derived from ``Exercise.references``, so a reference dropped from a checks module fails.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.pipeline import submission_seed
from autograder.scoring import _without_values
from autograder.views import build_view, withhold_plan, withheld_for
from course_lib.checks import exercises, get


def _both(module: str, *names: str) -> set[str]:
    return {f"course_lib.{lib}.{module}.{n}" for n in names for lib in ("np_ref", "torch_ref")}


# exercise -> what the student must not reach: withheld, or (private helpers) guarded.
AUDIT: dict[str, set[str]] = {
    "multi_output_forward": _both("dense", "dense_forward") | _both("mlp", "mlp_forward"),
    "neuron_forward": _both("perceptron", "neuron_forward") | _both("dense", "dense_forward")
    | {"course_lib.np_ref.perceptron._pre_activation", "course_lib.torch_ref.perceptron._pre_activation"},
    "perceptron_predict": _both("perceptron", "perceptron_predict") | _both("dense", "dense_forward")
    | {"course_lib.np_ref.perceptron._pre_activation"},
    "perceptron_train": _both("perceptron", "perceptron_train"),
    "xor_params": set(),  # a value: the weights of a hand-built network
    "adagrad_step": _both("optim", "adagrad_step"),
    "adam_step": _both("optim", "adam_step"),
    "momentum_step": _both("optim", "momentum_step"),
    "rmsprop_step": _both("optim", "rmsprop_step"),
    "mse_loss": _both("losses", "mse_loss"),
    # with logits = log(p / (1 - p)) the loss is the same and dlogits is dprobs * p(1-p)
    "binary_cross_entropy": _both("losses", "binary_cross_entropy", "binary_cross_entropy_with_logits"),
    "softmax_cross_entropy": _both("losses", "softmax_cross_entropy"),
    "chain_rule_grads": {"course_lib.checks.nb03_backprop._chain_rule_reference"},
    "dense_forward": _both("dense", "dense_forward") | _both("mlp", "mlp_forward"),  # a one-layer MLP
    "dense_backward": _both("dense", "dense_backward") | _both("mlp", "mlp_backward"),
    "numerical_gradient": {"course_lib.gradcheck.numerical_gradient", "course_lib.gradcheck.numerical_vjp"},
    "two_layer_grads": _both("mlp", "mlp_backward"),
    "collapse_linear": {"course_lib.checks.nb04_activations._collapse_reference"},
    "one_hot": {"course_lib.checks.nb04_activations._one_hot_reference"},
    "sigmoid_grad": _both("activations", "sigmoid_grad"),
    "swish_grad": _both("activations", "swish_grad"),
    "relu_grad": _both("activations", "relu_grad", "leaky_relu_grad"),  # leaky_relu_grad(alpha=0)
    "leaky_relu": _both("activations", "leaky_relu", "leaky_relu_grad"),  # z * leaky_relu_grad(z)
    "softmax": _both("activations", "softmax", "log_softmax"),  # exp(log_softmax(z))
    "l2_penalty": _both("regularization", "l2_penalty"),
    "dropout": _both("regularization", "dropout_forward"),
    "batchnorm": _both("regularization", "batchnorm_forward"),
    "early_stopping": _both("regularization", "EarlyStopping"),
    # tp, fp, fn are entries of the confusion matrix
    "precision_recall_f1": {"course_lib.metrics.precision_recall_f1", "course_lib.metrics.confusion_matrix",
                            "course_lib.metrics._safe_div"},
    "conv2d": _both("conv", "conv2d_forward", "conv2d_forward_naive", "_im2col"),
    "corr2d": _both("conv", "conv2d_forward", "conv2d_forward_naive", "_im2col"),
    "conv2d_grads": _both("conv", "conv2d_backward", "_input_grad"),
    "conv_output_size": _both("conv", "conv_output_size") | {"course_lib.np_ref.conv._output_size"},
    "max_pool2d": _both("conv", "max_pool2d_forward", "_windows"),
    "clip_grad_norm": _both("recurrent", "clip_grad_norm"),
    "rnn_cell": _both("recurrent", "rnn_step_forward", "rnn_forward"),
    "rnn_unroll": _both("recurrent", "rnn_step_forward", "rnn_forward"),
    "rnn_bptt": _both("recurrent", "rnn_step_backward", "rnn_backward") | {"course_lib.np_ref.fast_recurrent._sum_columns"},
    "lstm_cell": _both("recurrent", "lstm_step_forward", "lstm_forward") | {"course_lib.np_ref.recurrent._sigmoid"},
}


def _unreachable(exercise) -> set[str]:
    """Dotted names the view of ``exercise`` withholds or guards (checks modules: all stubbed)."""
    by_module: dict[str, dict[str, str]] = {}
    for ref in withheld_for(exercise):
        by_module.setdefault(ref.module, {})[ref.name] = ref.defined
    out: set[str] = set()
    for module, names in by_module.items():
        if module.startswith("course_lib.checks"):
            out |= set(names.values())
            continue
        plan = withhold_plan(inspect.getsource(importlib.import_module(module)), names, module)
        out |= set(plan.withheld.values()) | set(plan.guarded.values())
    return out


def test_the_audit_covers_every_exercise() -> None:
    course = {p.stem for p in (Path(__file__).resolve().parents[2] / "solutions").glob("*.ipynb")}
    # (the tiny test course may have registered exercises of its own in this process)
    assert sorted(AUDIT) == sorted(e.name for e in exercises() if e.notebook in course) and len(AUDIT) == 39


def _defined(dotted: str) -> str:
    """Where ``dotted`` is defined (torch_ref re-exports some NumPy functions: one object)."""
    module, _, name = dotted.rpartition(".")
    obj = getattr(importlib.import_module(module), name)
    return f"{obj.__module__}.{obj.__name__}" if hasattr(obj, "__module__") and hasattr(obj, "__name__") else dotted


@pytest.mark.parametrize("name", sorted(AUDIT))
def test_every_function_that_computes_the_answer_is_out_of_reach(name: str) -> None:
    exercise = next(e for e in exercises() if e.name == name)
    missing = {d for d in AUDIT[name] if _defined(d) not in _unreachable(exercise)}
    assert not missing, f"{name}: still callable in its view: {sorted(missing)}"


def test_an_exercise_does_not_withhold_what_an_honest_answer_calls() -> None:
    # conv2d_grads may call conv2d_forward; rnn_bptt may call rnn_forward (views are per exercise).
    assert "course_lib.np_ref.conv.conv2d_forward" not in _unreachable(get("06_cnn", "conv2d_grads"))
    assert "course_lib.np_ref.recurrent.rnn_forward" not in _unreachable(get("07_rnn", "rnn_bptt"))
    assert "course_lib.np_ref.activations.softmax" not in _unreachable(get("04_activations", "relu_grad"))


_SYNTHETIC = '''
TABLE = {"twice": None}
def _only_ref(x):
    return x + 1
def _shared(x):
    return x * 2
def _deep(x):
    return _only_ref(x)
def ref(x):
    return _deep(x) + _shared(x) + public_helper(x)
def public_helper(x):
    return x
def wrapper(x):
    return ref(x) - 1
def outer(x):
    return wrapper(x)
def other(x):
    return _shared(x) + public_helper(x)
def _unrelated(x):
    return x
_START = _unrelated(0)
'''


def test_withhold_plan_on_a_synthetic_module() -> None:
    plan = withhold_plan(_SYNTHETIC, {"ref": "m.ref"}, "m")
    # the reference, its wrappers (transitively), and helpers only it needs
    assert plan.withheld == {n: f"m.{n}" for n in ("ref", "wrapper", "outer", "_deep", "_only_ref")}
    # _shared is also needed by the public `other`: kept, callable from course_lib only;
    # public_helper is public and needed by `other`: left as it is
    assert plan.guarded == {"_shared": "m._shared"}


def test_withhold_plan_on_np_ref_conv() -> None:
    from course_lib.np_ref import conv

    source = inspect.getsource(conv)
    grads = withhold_plan(source, {"conv2d_backward": "c.conv2d_backward"}, "c")
    # _input_grad serves only conv2d_backward; _im2col also serves conv2d_forward
    assert set(grads.withheld) == {"conv2d_backward", "_input_grad"}
    assert "_im2col" not in grads.withheld and "conv2d_forward" not in grads.withheld
    pool = withhold_plan(source, {"max_pool2d_forward": "c.max_pool2d_forward"}, "c")
    # avg_pool2d_forward needs _windows too: guarded, not withheld
    assert set(pool.withheld) == {"max_pool2d_forward"} and "_windows" in pool.guarded


def _run_in_view(view: Path, code: str) -> str:
    prelude = f"import sys; sys.path[:0] = [{str(view)!r}]\n"
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_a_guarded_helper_runs_for_course_lib_and_raises_for_student_code(tmp_path: Path) -> None:
    view = build_view(tmp_path, get("06_cnn", "max_pool2d"))
    out = _run_in_view(view.root, """
        import numpy as np
        from course_lib._withheld import ReferenceWithheld
        from course_lib.np_ref import conv
        assert conv.__file__.startswith(sys.path[0]), conv.__file__
        x = np.arange(16.0).reshape(1, 1, 4, 4)
        out, _ = conv.avg_pool2d_forward(x, kernel=2, stride=2)  # honest use of the public sibling
        print(out.ravel().tolist())
        for call in (lambda: conv._windows("max_pool2d", x, 2, 2), lambda: conv.max_pool2d_forward(x, kernel=2, stride=2)):
            try:
                call()
            except ReferenceWithheld as exc:
                print("withheld", str(exc).split()[0])
        __name__ = "course_lib.np_ref.conv"  # a student pretending to be the module
        try:
            conv._windows("max_pool2d", x, 2, 2)
        except ReferenceWithheld:
            print("still withheld")
    """)
    # averages of the four 2x2 windows of 0..15, by hand
    assert out.splitlines() == [
        "[2.5, 4.5, 10.5, 12.5]",
        "withheld course_lib.np_ref.conv._windows",
        "withheld course_lib.np_ref.conv.max_pool2d_forward",
        "still withheld",
    ]


def test_the_secret_seed_is_per_submission_and_stable() -> None:
    nb = b'{"cells": []}'
    seed = submission_seed(12345, "00_tiny", "ana", nb)
    # the spec's formula, computed here independently
    mac = hmac.new(b"12345", b"00_tiny\0ana\0" + hashlib.sha256(nb).hexdigest().encode(), hashlib.sha256).digest()
    assert seed == 1000 + int.from_bytes(mac[:8], "big") % 2**31
    assert submission_seed(12345, "00_tiny", "ana", nb) == seed  # re-graded: the same cases
    others = {
        submission_seed(12345, "00_tiny", "ana", nb + b" "),  # resubmitted
        submission_seed(12345, "00_tiny", "ben", nb),
        submission_seed(12345, "01_perceptron", "ana", nb),
        submission_seed(54321, "00_tiny", "ana", nb),  # another run folder
    }
    assert seed not in others and len(others) == 4
    assert all(1000 <= s < 1000 + 2**31 for s in others | {seed})


def test_cell_issue_messages_shown_to_the_student_lose_their_numbers() -> None:
    shown = _without_values("RuntimeError: LEAK 0.123 -1.500 2.000 3e-4 1234 in cell 5 after 30 s")
    assert shown == "RuntimeError: LEAK … … … … … in cell 5 after 30 s"


def test_the_grading_context_seeds_each_submission_from_its_file(tmp_path: Path) -> None:
    from autograder.intake import Job
    from autograder.pipeline import GradingContext

    ctx = GradingContext(
        course=None, sources={}, releases={}, scratch_root=tmp_path, hide=[], limits=None,  # type: ignore[arg-type]
        protections=None, secret_seed=777,  # type: ignore[arg-type]
    )  # fmt: skip
    path = tmp_path / "a.ipynb"
    path.write_bytes(b'{"v": 1}')
    job = Job("ana", "00_tiny", path)
    first = ctx.seed_for(job)
    assert first == submission_seed(777, "00_tiny", "ana", b'{"v": 1}')
    path.write_bytes(b'{"v": 2}')  # resubmitted: new hidden cases
    assert ctx.seed_for(job) == submission_seed(777, "00_tiny", "ana", b'{"v": 2}') != first
    link = tmp_path / "link.ipynb"
    link.symlink_to(path)  # never followed: the seed comes from the refusal, not the target's bytes
    assert ctx.seed_for(Job("ana", "00_tiny", link)) != ctx.seed_for(job)

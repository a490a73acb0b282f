"""The convention predicates themselves, on small hand-written cells (each can fail)."""

from __future__ import annotations

from tests.notebooks.conventions import SHAPE, generators_made, generators_used, global_random_calls, visible_test_source


def test_a_generator_made_in_one_cell_and_used_in_another_is_seen() -> None:
    assert generators_made("%matplotlib inline\nrng = np.random.default_rng(0)") == {"rng"}
    assert generators_used("x = rng.normal(size=3)", {"rng"}) == {"rng"}
    assert generators_used("rng = np.random.default_rng(1)\nx = rng.normal()", {"rng"}) == set()
    assert generators_used("def f(rng):\n    return rng.normal()", {"rng"}) == set()


def test_global_random_state_is_seen() -> None:
    assert global_random_calls("np.random.seed(0)\nx = np.random.normal(size=3)") == ["np.random.seed", "np.random.normal"]
    assert global_random_calls("g = np.random.default_rng(0)") == []


def test_shapes_in_docstrings() -> None:
    assert SHAPE.search("x (N, D) -> (N,)")
    assert SHAPE.search("w (F, C, KH, KW)")
    assert SHAPE.search("b (4H,)")
    assert not SHAPE.search("returns the loss (a float)")


def test_the_visible_test_is_an_import_and_a_call() -> None:
    assert visible_test_source("nb04_activations", "relu_grad") == (
        "from course_lib.checks.nb04_activations import check_relu_grad\n\ncheck_relu_grad(relu_grad)"
    )

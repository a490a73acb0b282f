"""The learning-rate explorer, driven headless: controls in, figure data out.

Oracles are independent of np_ref: the closed form of gradient descent on a quadratic
(w_k = (1 - lr * lambda)^k w_0 along each eigenvector) and torch.optim on the same
surfaces written with torch autograd.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from course_lib.widgets import learning_rate_explorer
from course_lib.widgets.explorer import OPTIMIZER_CHOICES
from course_lib.widgets.surfaces import SURFACES
from tests.lib.support import F64_ATOL, F64_RTOL

BOWL_START = np.array(SURFACES["bowl"].start)


def plotted_path(ex) -> np.ndarray:
    return ex.path_line.get_xydata()


def plotted_losses(ex) -> np.ndarray:
    return np.asarray(ex.loss_line.get_ydata())


@pytest.fixture(scope="module")
def explorer():
    return learning_rate_explorer(surface="bowl", optimizer="sgd", lr=0.3, steps=40, static=True)


def test_small_lr_converges_large_lr_diverges_on_the_bowl(explorer):
    # Eigenvalues 1 and 2: SGD contracts for lr < 1 and blows up for lr > 1.
    ex = explorer.set(surface="bowl", optimizer="sgd", lr=0.3, steps=40)
    assert ex.verdict.kind == "converged"
    path = plotted_path(ex)
    k = np.arange(41)[:, None]
    expected = BOWL_START * np.stack([(1 - 0.3) ** k[:, 0], (1 - 2 * 0.3) ** k[:, 0]], axis=1)
    np.testing.assert_allclose(path, expected, rtol=F64_RTOL, atol=F64_ATOL)
    assert plotted_losses(ex)[-1] < 1e-6 * plotted_losses(ex)[0]

    ex.set(lr=1.5)
    assert ex.verdict.kind == "diverged"
    losses = plotted_losses(ex)
    assert losses[-1] > 1e6 * losses[0]
    assert np.abs(plotted_path(ex)).max() > 2.0  # the path leaves the view


def test_lr_at_the_stability_edge_oscillates(explorer):
    # lr = 1: along w2 the factor is 1 - 2 * 1 = -1, a bounce that neither grows nor decays.
    ex = explorer.set(surface="bowl", optimizer="sgd", lr=1.0, steps=40)
    assert ex.verdict.kind == "oscillated"
    w2 = plotted_path(ex)[:, 1]
    np.testing.assert_allclose(w2, BOWL_START[1] * (-1.0) ** np.arange(41), rtol=F64_RTOL)


def test_tiny_lr_is_slow(explorer):
    ex = explorer.set(surface="ravine", optimizer="sgd", lr=1e-3, steps=50)
    assert ex.verdict.kind == "slow"


def test_ravine_threshold_is_two_over_the_largest_eigenvalue(explorer):
    # Ravine eigenvalues 1 and 20: stable below lr = 0.1.
    assert explorer.set(surface="ravine", optimizer="sgd", lr=0.12, steps=50).verdict.kind == "diverged"
    assert explorer.set(lr=0.08, steps=300).verdict.kind == "converged"


def _ravine_matrix() -> np.ndarray:
    t = np.deg2rad(30.0)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return rot @ np.diag([1.0, 20.0]) @ rot.T


def _torch_path(surface: str, make_opt, steps: int) -> np.ndarray:
    torch = pytest.importorskip("torch")
    a = torch.tensor(_ravine_matrix() if surface == "ravine" else np.diag([1.0, 2.0]))
    w = torch.tensor(SURFACES[surface].start, dtype=torch.float64, requires_grad=True)
    opt = make_opt(torch, [w])
    rows = [w.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * w @ a @ w).backward()
        opt.step()
        rows.append(w.detach().clone())
    return torch.stack(rows).numpy()


@pytest.mark.parametrize(
    ("optimizer", "make_opt"),
    [
        ("momentum", lambda torch, p: torch.optim.SGD(p, lr=0.02, momentum=0.8)),
        ("nesterov", lambda torch, p: torch.optim.SGD(p, lr=0.02, momentum=0.8, nesterov=True)),
        ("adam", lambda torch, p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.999))),
        ("rmsprop", lambda torch, p: torch.optim.RMSprop(p, lr=0.02)),
    ],
)
def test_plotted_path_matches_torch_optim(explorer, optimizer, make_opt):
    ex = explorer.set(surface="ravine", optimizer=optimizer, lr=0.02, momentum=0.8, steps=30)
    np.testing.assert_allclose(plotted_path(ex), _torch_path("ravine", make_opt, 30), rtol=1e-7, atol=1e-10)


def test_changing_the_optimizer_changes_the_path(explorer):
    paths = {}
    for _, key in OPTIMIZER_CHOICES:
        paths[key] = plotted_path(explorer.set(surface="ravine", optimizer=key, lr=0.05, momentum=0.9, steps=30))
    keys = list(paths)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert not np.allclose(paths[a], paths[b]), f"{a} and {b} drew the same path"


def test_momentum_slider_enabled_only_where_it_acts(explorer):
    explorer.set(optimizer="sgd")
    assert explorer.momentum_slider.disabled
    for key in ("momentum", "nesterov", "adam"):
        explorer.set(optimizer=key)
        assert not explorer.momentum_slider.disabled
    before = plotted_path(explorer.set(optimizer="momentum", momentum=0.5))
    after = plotted_path(explorer.set(momentum=0.9))
    assert not np.allclose(before, after)


def test_steps_control_sets_the_path_length(explorer):
    for steps in (1, 7, 120):
        ex = explorer.set(surface="bowl", optimizer="sgd", lr=0.1, steps=steps)
        assert plotted_path(ex).shape == (steps + 1, 2)
        assert plotted_losses(ex).shape == (steps + 1,)


def test_surface_choice_redraws_the_contours_and_restarts(explorer):
    for key, surface in SURFACES.items():
        ex = explorer.set(surface=key, optimizer="sgd", lr=0.01, steps=5)
        np.testing.assert_allclose(plotted_path(ex)[0], surface.start)
        assert ex.surface_ax.get_title() == surface.title
        assert ex.surface_ax.collections, "no contour lines drawn"


def test_wells_small_lr_stops_in_a_local_minimum_and_nesterov_finds_the_global_one(explorer):
    local = explorer.set(surface="wells", optimizer="sgd", lr=0.05, steps=100).verdict
    assert local.kind == "converged" and not local.at_global_min
    best = explorer.set(optimizer="nesterov", momentum=0.9, lr=0.05, steps=100).verdict
    assert best.kind == "converged" and best.at_global_min


def test_image_widget_gets_a_new_png_per_change(explorer):
    explorer.set(surface="bowl", optimizer="sgd", lr=0.1, steps=30)
    first = explorer.image.value
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    explorer.lr_slider.value = 2.0  # as a user would: through the control, not set()
    assert explorer.verdict.kind == "diverged"
    assert explorer.image.value != first
    assert "diverged" in explorer.verdict_label.value


def test_every_control_combination_is_quiet():
    ex = learning_rate_explorer(static=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for key in SURFACES:
            for _, optimizer in OPTIMIZER_CHOICES:
                # The largest lr overflows fastest (inf/nan losses, 100-decade log axes); the
                # smallest leaves the tiniest steps (log of ~0 losses).
                for lr in ((1e-4, 10.0) if key == "wells" else (10.0,)):
                    ex.set(surface=key, optimizer=optimizer, lr=lr, momentum=0.0, steps=500)
                    assert ex.verdict.kind in ("converged", "oscillated", "diverged", "slow")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"lr": 0.0}, "'lr'"), ({"lr": 50.0}, "'lr'"), ({"optimizer": "lbfgs"}, "'optimizer'"),
     ({"surface": "saddle"}, "'surface'"), ({"steps": 0}, "'steps'"), ({"momentum": 1.0}, "'momentum'"),
     ({"start": (1.0, 2.0, 3.0)}, "'start'")],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        learning_rate_explorer(**kwargs)


def test_start_point_overrides_the_surfaces():
    ex = learning_rate_explorer(surface="bowl", optimizer="sgd", lr=0.5, steps=3, start=(1.0, -1.0), static=True)
    # Closed form: w1 *= (1 - 0.5), w2 *= (1 - 2 * 0.5) = 0 after the first step.
    np.testing.assert_allclose(plotted_path(ex), [[1.0, -1.0], [0.5, 0.0], [0.25, 0.0], [0.125, 0.0]],
                               rtol=F64_RTOL, atol=F64_ATOL)


def test_set_rejects_unknown_controls(explorer):
    with pytest.raises(ValueError, match="'beta'"):
        explorer.set(beta=0.5)

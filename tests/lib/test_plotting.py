"""course_lib.plotting: each figure holds the data it was given (checked on the artists, Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402

from course_lib import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _contour_sets(ax):
    return [c for c in ax.collections if isinstance(c, ContourSet)]


def _points():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    return x, (x[:, 0] > 0).astype(np.int64)


@pytest.mark.parametrize(
    "predict",
    [
        lambda g: (g[:, 0] > 0).astype(np.int64),  # labels
        lambda g: 1 / (1 + np.exp(-5 * g[:, :1])),  # sigmoid probability (M, 1)
        lambda g: np.stack([-g[:, 0], g[:, 0]], axis=1),  # class scores (M, K)
    ],
    ids=["labels", "probability", "scores"],
)
def test_decision_boundary_regions_follow_predict_fn(predict):
    x, y = _points()
    fig, ax = plt.subplots()
    out = plotting.plot_decision_boundary(predict, x, y, ax=ax, resolution=50)
    assert out is ax
    (filled,) = _contour_sets(ax)
    # One band per class, bounded half-way between the integer labels.
    np.testing.assert_allclose(filled.levels, [-0.5, 0.5, 1.5])
    scatter = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(scatter) == 1
    np.testing.assert_array_equal(scatter[0].get_offsets(), x)
    np.testing.assert_array_equal(scatter[0].get_array(), y)
    # The class-0 band lies left of x1 = 0 and the class-1 band right of it.
    for level_index, side in ((0, -1), (1, 1)):
        verts = np.concatenate([p.vertices for p in filled.get_paths()[level_index:level_index + 1]])
        assert (side * verts[:, 0] >= -0.1).all()


def test_decision_boundary_covers_the_data_with_margin():
    x, y = _points()
    ax = plotting.plot_decision_boundary(lambda g: np.zeros(len(g), dtype=np.int64), x, y,
                                         resolution=10, margin=1.0)
    assert ax.get_xlim() == pytest.approx((x[:, 0].min() - 1, x[:, 0].max() + 1))
    assert ax.get_ylim() == pytest.approx((x[:, 1].min() - 1, x[:, 1].max() + 1))


def test_decision_boundary_passes_grid_points_as_float64_pairs():
    seen = []

    def predict(g):
        seen.append(g)
        return np.zeros(len(g), dtype=np.int64)

    x, y = _points()
    plotting.plot_decision_boundary(predict, x, y, resolution=7)
    assert seen[0].shape == (49, 2) and seen[0].dtype == np.float64


def test_decision_boundary_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    x, y = _points()
    ax = plotting.plot_decision_boundary(
        lambda g: torch.as_tensor(g[:, 1] > 0).long(), torch.as_tensor(x), torch.as_tensor(y), resolution=20
    )
    assert len(_contour_sets(ax)) == 1


@pytest.mark.parametrize(
    "predict, y, argument",
    [
        (lambda g: np.zeros(len(g), dtype=np.int64), np.where(_points()[1] == 1, 1, -1), "y"),
        (lambda g: -np.ones(len(g), dtype=np.int64), _points()[1], "predict_fn"),
        (lambda g: np.zeros((len(g), 2, 2)), _points()[1], "predict_fn"),
    ],
)
def test_decision_boundary_rejects_labels_that_are_not_class_ids(predict, y, argument):
    with pytest.raises(ValueError, match=f"'{argument}'"):
        plotting.plot_decision_boundary(predict, _points()[0], y, resolution=5)


def test_loss_curves_from_lists_and_from_a_history():
    ax = plotting.plot_loss_curves([3.0, 2.0, 1.5], [3.5, 2.5, 2.4])
    train, val = ax.get_lines()
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(train.get_ydata(), [3.0, 2.0, 1.5])
    np.testing.assert_array_equal(val.get_ydata(), [3.5, 2.5, 2.4])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "validation"]

    _, ax2 = plt.subplots()
    out = plotting.plot_loss_curves({"train_loss": [1.0, 0.5], "val_loss": []}, ax=ax2, logy=True)
    assert out is ax2 and len(ax2.get_lines()) == 1 and ax2.get_yscale() == "log"

    class History:
        train_loss = [0.9, 0.4]
        val_loss = [1.0, 0.7]

    ax3 = plotting.plot_loss_curves(History())
    np.testing.assert_array_equal(ax3.get_lines()[1].get_ydata(), [1.0, 0.7])


def test_loss_curves_reject_a_mapping_without_losses():
    with pytest.raises(ValueError, match="'history'"):
        plotting.plot_loss_curves({"acc": [0.5]})


def test_filters_one_axes_per_filter_scaled_to_unit_range():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(6, 1, 3, 3))
    fig = plotting.plot_filters(w, ncols=4)
    assert len(fig.axes) == 6
    for f, ax in enumerate(fig.axes):
        (img,) = ax.get_images()
        shown = np.asarray(img.get_array())
        expected = (w[f, 0] - w[f, 0].min()) / (w[f, 0].max() - w[f, 0].min())
        np.testing.assert_allclose(shown, expected)
        assert ax.get_title() == str(f)


def test_filters_rgb_and_single_channel_and_constant():
    w = np.zeros((2, 3, 5, 5))
    w[0, 0] = 1.0  # pure red pattern over a black filter
    fig = plotting.plot_filters(w)
    shown = np.asarray(fig.axes[0].get_images()[0].get_array())
    assert shown.shape == (5, 5, 3)
    np.testing.assert_array_equal(shown[..., 0], 1.0)
    np.testing.assert_array_equal(shown[..., 1:], 0.0)
    # The all-zero filter is constant: shown mid-grey rather than divided by zero.
    np.testing.assert_array_equal(np.asarray(fig.axes[1].get_images()[0].get_array()), 0.5)
    fig2 = plotting.plot_filters(w, channel=1)
    assert np.asarray(fig2.axes[0].get_images()[0].get_array()).shape == (5, 5)


def test_filters_reject_wrong_rank():
    with pytest.raises(ValueError, match="'w'"):
        plotting.plot_filters(np.zeros((3, 3, 3)))


def test_images_grid_with_titles():
    x = np.random.default_rng(2).random((5, 1, 8, 8))
    fig = plotting.plot_images(x, labels=np.array([3, 1, 4, 1, 5]), ncols=3)
    assert len(fig.axes) == 5
    assert [a.get_title() for a in fig.axes] == ["3", "1", "4", "1", "5"]
    np.testing.assert_array_equal(np.asarray(fig.axes[2].get_images()[0].get_array()), x[2, 0])


def _bowl(p):
    return p[0] ** 2 + 4 * p[1] ** 2


def test_loss_surface_contours_and_path():
    path = np.array([[1.5, 1.0], [0.9, 0.2], [0.4, -0.1], [0.1, 0.0]])
    ax = plotting.plot_loss_surface(_bowl, xlim=(-2, 2), ylim=(-1.5, 1.5), path=path,
                                    levels=[0.5, 1.0, 2.0, 4.0], resolution=40)
    (cs,) = _contour_sets(ax)
    np.testing.assert_allclose(cs.levels, [0.5, 1.0, 2.0, 4.0])
    # The level-1 contour of x^2 + 4y^2 is an ellipse with semi-axes 1 and 1/2.
    verts = np.concatenate([p.vertices for p in cs.get_paths()[1:2]])
    np.testing.assert_allclose(verts[:, 0] ** 2 + 4 * verts[:, 1] ** 2, 1.0, atol=0.05)
    line, start, end = ax.get_lines()
    np.testing.assert_array_equal(np.c_[line.get_xdata(), line.get_ydata()], path)
    assert (start.get_xdata()[0], start.get_ydata()[0]) == (1.5, 1.0)
    assert (end.get_xdata()[0], end.get_ydata()[0]) == (0.1, 0.0)
    assert ax.get_xlim() == (-2, 2) and ax.get_ylim() == (-1.5, 1.5)


def test_loss_surface_vectorized_matches_pointwise_and_quantile_levels():
    ax1 = plotting.plot_loss_surface(_bowl, resolution=30, levels=8)
    ax2 = plotting.plot_loss_surface(lambda a, b: a**2 + 4 * b**2, resolution=30, levels=8, vectorized=True)
    (c1,), (c2,) = _contour_sets(ax1), _contour_sets(ax2)
    np.testing.assert_allclose(c1.levels, c2.levels)
    assert len(c1.levels) == 8 and np.all(np.diff(c1.levels) > 0)
    assert c1.levels[0] > 0 and c1.levels[-1] < 20  # inside the range of the bowl on [-2, 2]^2


@pytest.mark.parametrize(
    "kwargs, argument",
    [({"xlim": (1, -1)}, "xlim"), ({"path": np.zeros((3, 3))}, "path"), ({"resolution": 1}, "resolution")],
)
def test_loss_surface_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"'{argument}'"):
        plotting.plot_loss_surface(_bowl, **kwargs)


def test_plotting_writes_nothing_to_stderr(capfd):
    x, y = _points()
    plotting.plot_decision_boundary(lambda g: np.zeros(len(g), dtype=np.int64), x, y, resolution=10)
    plotting.plot_loss_surface(_bowl, resolution=10, levels=3, path=[[0, 0], [1, 1]])
    plt.gcf().canvas.draw()
    assert capfd.readouterr().err == ""

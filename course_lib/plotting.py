"""Figures the notebooks draw again and again: decision regions, loss curves, conv filters,
loss surfaces with an optimiser's path, and grids of images.

Every function draws into the ``ax``/``fig`` you pass, or into a new pyplot figure
when you pass none (so that Jupyter shows it under the cell), and returns what it
drew on. Nothing calls ``plt.show()``; scripts and tests run headless with the Agg
backend (``MPLBACKEND=Agg``). Arrays may be NumPy arrays or torch tensors (on any
device); torch is never imported here.

Letters: N points, K classes, F filters, C channels, KH/KW kernel height/width,
S steps of an optimisation path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from course_lib.testing import to_numpy

__all__ = [
    "plot_decision_boundary",
    "plot_loss_curves",
    "plot_filters",
    "plot_loss_surface",
    "plot_images",
]

# tab10's first colours; the light versions fill the decision regions so the points stay visible.
_CLASS_COLORS = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


def _new_axes(ax: Axes | None, figsize: tuple[float, float] = (5.0, 4.0)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # only when we create the figure: keeps pyplot state out of `ax=` calls

    _, new = plt.subplots(figsize=figsize)
    return new


def _predicted_labels(out: np.ndarray, m: int, threshold: float) -> np.ndarray:
    """Class labels (M,) from what a predict_fn returned: labels, probabilities or scores."""
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.shape == (m,):
        if np.issubdtype(out.dtype, np.integer) or out.dtype == bool:
            return out.astype(np.int64)
        return (out > threshold).astype(np.int64)
    if out.ndim == 2 and out.shape[0] == m:
        return out.argmax(axis=1)
    raise ValueError(
        "plot_decision_boundary: argument 'predict_fn' must return labels (M,), one score per "
        f"point (M,) or (M, 1), or class scores (M, K) for M={m} grid points, got shape {out.shape}"
    )


def plot_decision_boundary(
    predict_fn: Callable[[np.ndarray], Any],
    x: Any,
    y: Any,
    *,
    ax: Axes | None = None,
    resolution: int = 200,
    margin: float = 0.5,
    threshold: float = 0.5,
) -> Axes:
    """Colour the plane by the class ``predict_fn`` assigns, and scatter the data on top.

    ``predict_fn`` receives grid points g (M, 2) float64 and returns either integer
    labels (M,), class scores or probabilities (M, K) (the argmax is taken), or one
    float per point (M,)/(M, 1), read as "class 1 when above ``threshold``" (0.5 for a
    sigmoid output; pass ``threshold=0.0`` for a raw score). It may return a tensor.

    x (N, 2) points, y (N,) integer labels. The grid has ``resolution`` points per
    axis and extends ``margin`` beyond the data. Returns the Axes.
    """
    fn = "plot_decision_boundary"
    x, y = to_numpy(x), to_numpy(y)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"{fn}: argument 'x' must have shape (N, 2), got {x.shape}")
    if y.shape != (len(x),):
        raise ValueError(f"{fn}: argument 'y' must have shape (N={len(x)},), got {y.shape}")
    if len(y) and (not np.array_equal(y, np.round(y)) or y.min() < 0):
        raise ValueError(f"{fn}: argument 'y' must hold class ids 0, 1, ..., got values {np.unique(y)[:5]}")
    y = y.astype(np.int64)
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"{fn}: argument 'resolution' must be an integer >= 2, got {resolution!r}")
    ax = _new_axes(ax)
    lo, hi = x.min(axis=0) - margin, x.max(axis=0) + margin
    g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = np.stack([g1.ravel(), g2.ravel()], axis=1)
    labels = _predicted_labels(to_numpy(predict_fn(grid)), len(grid), threshold).reshape(g1.shape)
    if labels.min() < 0:
        raise ValueError(f"{fn}: argument 'predict_fn' must predict class ids 0, 1, ..., got {labels.min()}")
    k = int(max(labels.max(), y.max() if len(y) else 0)) + 1
    colors = [_CLASS_COLORS[i % len(_CLASS_COLORS)] for i in range(k)]
    # Levels between consecutive integers give one filled band per class.
    ax.contourf(g1, g2, labels, levels=np.arange(k + 1) - 0.5, colors=colors, alpha=0.25)
    ax.scatter(
        x[:, 0],
        x[:, 1],
        c=y,
        cmap=ListedColormap(colors),
        vmin=-0.5,
        vmax=k - 0.5,
        s=18,
        edgecolors="k",
        linewidths=0.4,
    )
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    return ax


def _losses_from(history: Any) -> tuple[Sequence[float] | None, Sequence[float] | None]:
    keys = (("train_loss", "val_loss"), ("train", "val"), ("loss", "val_loss"))
    if isinstance(history, Mapping):
        for train_key, val_key in keys:
            if train_key in history:
                return history[train_key], history.get(val_key)
        raise ValueError(
            "plot_loss_curves: argument 'history' must have a 'train_loss' key (and optionally "
            f"'val_loss'), got keys {sorted(history)}"
        )
    if hasattr(history, "train_loss"):  # course_lib.torch_ref.models.History and friends
        return history.train_loss, getattr(history, "val_loss", None)
    return history, None


def plot_loss_curves(
    history: Any,
    val: Sequence[float] | None = None,
    *,
    ax: Axes | None = None,
    logy: bool = False,
) -> Axes:
    """Training (and validation) loss per epoch.

    ``history`` is a mapping or object with ``train_loss`` and optionally ``val_loss``
    (e.g. what ``course_lib.torch_ref.models.train`` returns, or a dict with those
    keys), or simply the list of training losses, with ``val`` the list of validation
    losses. Epochs are numbered from 1. Returns the Axes, whose lines are labelled
    "train" and "validation".
    """
    train, val_from_history = _losses_from(history)
    val = val if val is not None else val_from_history
    ax = _new_axes(ax)
    for values, label in ((train, "train"), (val, "validation")):
        if values is None or len(values) == 0:
            continue
        v = np.asarray([float(to_numpy(item)) for item in values])
        ax.plot(np.arange(1, len(v) + 1), v, marker="o" if len(v) <= 30 else None, ms=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if logy:
        ax.set_yscale("log")
    ax.legend()
    return ax


def _grid_figure(count: int, ncols: int, fig: Figure | None, cell: float) -> tuple[Figure, list[Axes]]:
    ncols = max(1, min(ncols, count))
    nrows = math.ceil(count / ncols)
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(cell * ncols, cell * nrows))
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(count)]
    for a in axes:
        a.set_xticks([])
        a.set_yticks([])
    return fig, axes


def plot_filters(
    w: Any,
    *,
    fig: Figure | None = None,
    ncols: int = 8,
    channel: int | None = None,
) -> Figure:
    """One small image per convolution filter.

    w (F, C, KH, KW). With C == 3 each filter is shown in colour (channels as RGB);
    otherwise in grey, showing ``channel`` (default: the mean over channels, which for
    C == 1 is the filter itself). Each filter is min-max scaled to [0, 1] on its own,
    so the picture shows its pattern, not its size. Returns the Figure, with one Axes
    per filter in order, titled by its index.
    """
    fn = "plot_filters"
    w = to_numpy(w).astype(np.float64)
    if w.ndim != 4:
        raise ValueError(f"{fn}: argument 'w' must be 4-D (F, C, KH, KW), got shape {w.shape}")
    n_filters, n_channels = w.shape[:2]
    if channel is not None and not 0 <= channel < n_channels:
        raise ValueError(f"{fn}: argument 'channel' must be in [0, {n_channels}), got {channel!r}")
    fig, axes = _grid_figure(n_filters, ncols, fig, cell=1.0)
    for f, a in enumerate(axes):
        if channel is None and n_channels == 3:
            img = w[f].transpose(1, 2, 0)
        else:
            img = w[f, channel] if channel is not None else w[f].mean(axis=0)
        span = img.max() - img.min()
        # A constant filter would divide by zero; show it mid-grey instead.
        img = (img - img.min()) / span if span > 0 else np.full_like(img, 0.5)
        a.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        a.set_title(str(f), fontsize=7)
    return fig


def plot_images(
    x: Any,
    labels: Sequence[Any] | None = None,
    *,
    fig: Figure | None = None,
    ncols: int = 10,
) -> Figure:
    """A grid of grey images, e.g. digits: x (N, 1, H, W) or (N, H, W), values shown as they are.

    ``labels`` (N,) become the titles (true labels, predictions, or strings such as
    "7 (pred 1)"). Returns the Figure, one Axes per image.
    """
    fn = "plot_images"
    x = to_numpy(x)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"{fn}: argument 'x' must have shape (N, 1, H, W) or (N, H, W), got {x.shape}")
    if labels is not None and len(labels) != len(x):
        raise ValueError(f"{fn}: argument 'labels' must have length N={len(x)}, got {len(labels)}")
    fig, axes = _grid_figure(len(x), ncols, fig, cell=0.9)
    for i, a in enumerate(axes):
        a.imshow(x[i], cmap="gray_r", interpolation="nearest")
        if labels is not None:
            label = labels[i]
            a.set_title(str(label.item() if hasattr(label, "item") else label), fontsize=8)
    return fig


def plot_loss_surface(
    loss_fn: Callable[..., Any],
    *,
    xlim: tuple[float, float] = (-2.0, 2.0),
    ylim: tuple[float, float] = (-2.0, 2.0),
    path: Any = None,
    ax: Axes | None = None,
    resolution: int = 100,
    levels: int | Sequence[float] = 20,
    vectorized: bool = False,
) -> Axes:
    """Contours of a loss over two parameters, with an optional optimisation path.

    ``loss_fn(p)`` takes one point p (2,) and returns a scalar; with ``vectorized=True``
    it is called once as ``loss_fn(w1, w2)`` on (R, R) coordinate grids and returns the
    (R, R) losses (much faster). ``levels`` is a list of contour heights, or a number
    of levels placed at quantiles of the loss over the grid, so that surfaces spanning
    several orders of magnitude still show contours near their minimum.

    ``path`` (S, 2), e.g. the parameters after every optimiser step, is drawn as a line
    with markers, a circle at its start and a star at its end. Returns the Axes.
    """
    fn = "plot_loss_surface"
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"{fn}: argument 'resolution' must be an integer >= 2, got {resolution!r}")
    for name, lim in (("xlim", xlim), ("ylim", ylim)):
        if len(lim) != 2 or not lim[0] < lim[1]:
            raise ValueError(f"{fn}: argument {name!r} must be (low, high) with low < high, got {lim!r}")
    w1, w2 = np.meshgrid(np.linspace(*xlim, resolution), np.linspace(*ylim, resolution))
    if vectorized:
        z = to_numpy(loss_fn(w1, w2)).astype(np.float64)
        if z.shape != w1.shape:
            raise ValueError(
                f"{fn}: argument 'loss_fn' with vectorized=True must return shape {w1.shape}, got {z.shape}"
            )
    else:
        pts = np.stack([w1.ravel(), w2.ravel()], axis=1)
        z = np.array([float(to_numpy(loss_fn(p))) for p in pts]).reshape(w1.shape)
    if isinstance(levels, int):
        finite = z[np.isfinite(z)]
        heights = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, levels + 2)[1:-1]))
    else:
        heights = np.asarray(levels, dtype=np.float64)
    ax = _new_axes(ax, figsize=(5.0, 4.5))
    ax.contour(w1, w2, z, levels=heights, cmap="viridis", linewidths=0.8)
    if path is not None:
        p = to_numpy(path).astype(np.float64)
        if p.ndim != 2 or p.shape[1] != 2:
            raise ValueError(f"{fn}: argument 'path' must have shape (S, 2), got {p.shape}")
        ax.plot(p[:, 0], p[:, 1], "-o", color="tab:red", ms=3, lw=1.2, label="path")
        ax.plot(p[0, 0], p[0, 1], "o", color="k", ms=7, label="start")
        ax.plot(p[-1, 0], p[-1, 1], "*", color="k", ms=11, label="end")
        ax.legend(loc="best", fontsize=8)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")
    return ax

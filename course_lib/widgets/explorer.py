"""The learning-rate explorer: gradient descent on a 2-D loss surface, driven by sliders.

A log-scale learning-rate slider (1e-4 .. 10), an optimizer menu, momentum and
step-count sliders and a choice of surface (``surfaces.SURFACES``). Every change re-runs
``course_lib.np_ref.optim.gradient_descent`` from the surface's start point (S steps
give a path of S + 1 iterates (S + 1, 2)), redraws the path on the contour plot and
the loss per step, and states the verdict of ``verdict.classify_run``.

The momentum slider drives whichever optimizer has a momentum: SGD with (heavy-ball or
Nesterov) momentum, and Adam, whose first-moment decay beta1 plays the same role.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.ticker import LogLocator, NullLocator

from course_lib.np_ref.optim import gradient_descent
from course_lib.plotting import plot_loss_surface
from course_lib.widgets._render import Blitter, display_static, new_figure
from course_lib.widgets._static import resolve_static
from course_lib.widgets.surfaces import SURFACES, Surface
from course_lib.widgets.verdict import Verdict, classify_run

__all__ = [
    "OPTIMIZER_CHOICES",
    "LR_RANGE",
    "MAX_STEPS",
    "run_optimizer",
    "LearningRateExplorer",
    "learning_rate_explorer",
]

OPTIMIZER_CHOICES: tuple[tuple[str, str], ...] = (
    ("SGD", "sgd"),
    ("SGD + momentum", "momentum"),
    ("Nesterov momentum", "nesterov"),
    ("Adagrad", "adagrad"),
    ("RMSProp", "rmsprop"),
    ("Adadelta", "adadelta"),
    ("Adam", "adam"),
)
_USES_MOMENTUM = {"momentum", "nesterov", "adam"}
LR_RANGE = (1e-4, 10.0)
MAX_STEPS = 500
# Iterates further out than this many view widths are drawn at that distance: the
# direction of a blow-up stays visible and matplotlib never sees 1e300.
_CLIP_SPANS = 10.0
# Losses are 0 at the global minimum and astronomically large in a blow-up; the log-scale
# plot shows them clipped to this range.
_LOSS_SHOWN = (1e-16, 1e60)


def run_optimizer(
    surface: Surface,
    *,
    optimizer: str,
    lr: float,
    momentum: float,
    steps: int,
    start: tuple[float, float] | None = None,
) -> np.ndarray:
    """S = ``steps`` updates from ``start`` (default: the surface's) -> path (S + 1, 2)."""
    hyper: dict[str, Any] = {}
    name = optimizer
    if optimizer == "momentum":
        hyper = {"momentum": momentum}
    elif optimizer == "nesterov":
        # torch (and np_ref) refuse nesterov=True with momentum 0, where it is plain SGD anyway.
        name, hyper = "momentum", {"momentum": momentum, "nesterov": momentum > 0}
    elif optimizer == "adam":
        hyper = {"beta1": momentum}
    w0 = np.asarray(surface.start if start is None else start, dtype=np.float64)
    return gradient_descent(surface.grad, w0, lr=lr, steps=steps, optimizer=name, **hyper)


def _check_choice(name: str, value: Any, choices: Any) -> None:
    if value not in choices:
        raise ValueError(
            f"learning_rate_explorer: argument {name!r} must be one of "
            f"{', '.join(map(repr, choices))}, got {value!r}"
        )


def _check_range(name: str, value: Any, lo: float, hi: float) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not lo <= float(value) <= hi:
        raise ValueError(
            f"learning_rate_explorer: argument {name!r} must be a number in [{lo:g}, {hi:g}], got {value!r}"
        )


class LearningRateExplorer:
    """The explorer's controls, figure and latest run; ``widget`` is what the notebook shows.

    Drive it from code with ``set(lr=..., optimizer=..., momentum=..., steps=..., surface=...)``;
    read ``path`` (S + 1, 2), ``losses`` (S + 1,), ``verdict`` and ``figure``.
    """

    def __init__(
        self,
        *,
        surface: str = "ravine",
        optimizer: str = "sgd",
        lr: float = 0.05,
        momentum: float = 0.9,
        steps: int = 50,
        start: tuple[float, float] | None = None,
        static: bool | None = None,
    ) -> None:
        _check_choice("surface", surface, SURFACES)
        _check_choice("optimizer", optimizer, [key for _, key in OPTIMIZER_CHOICES])
        _check_range("lr", lr, *LR_RANGE)
        _check_range("momentum", momentum, 0.0, 0.99)
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= MAX_STEPS:
            raise ValueError(
                f"learning_rate_explorer: argument 'steps' must be an integer in [1, {MAX_STEPS}], got {steps!r}"
            )
        if start is not None and np.shape(start) != (2,):
            raise ValueError(
                f"learning_rate_explorer: argument 'start' must be a point (w1, w2), got {start!r}"
            )
        self.static = static
        self.start = start
        self._batching = False

        style = {"description_width": "initial"}
        self.lr_slider = widgets.FloatLogSlider(
            value=lr,
            base=10,
            min=np.log10(LR_RANGE[0]),
            max=np.log10(LR_RANGE[1]),
            step=0.05,
            description="learning rate",
            readout_format=".2g",
            style=style,
        )
        self.lr_slider.add_class("course-lr-slider")
        self.optimizer_menu = widgets.Dropdown(
            options=OPTIMIZER_CHOICES, value=optimizer, description="optimizer"
        )
        self.momentum_slider = widgets.FloatSlider(
            value=momentum, min=0.0, max=0.99, step=0.01, description="momentum", style=style
        )
        self.steps_slider = widgets.IntSlider(value=steps, min=1, max=MAX_STEPS, description="steps")
        self.surface_menu = widgets.Dropdown(
            options=[(s.title, key) for key, s in SURFACES.items()], value=surface, description="surface"
        )
        self.image = widgets.Image(format="png")
        self.image.add_class("course-explorer-plot")
        self.verdict_label = widgets.HTML()
        self.verdict_label.add_class("course-explorer-verdict")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.surface_menu, self.optimizer_menu]),
                widgets.HBox([self.lr_slider, self.momentum_slider, self.steps_slider]),
                self.image,
                self.verdict_label,
            ]
        )

        self.figure = new_figure((9.0, 3.8), left=0.07, right=0.98, bottom=0.13, top=0.91, wspace=0.28)
        self.surface_ax, self.loss_ax = self.figure.subplots(1, 2, width_ratios=[1.1, 1.0])
        self._drawn_surface: str | None = None
        self._surface_artists: dict[str, list[Any]] = {}
        self._blitter = Blitter(self.figure)
        self._build_axes()
        self.path: np.ndarray = np.empty((0, 2))
        self.losses: np.ndarray = np.empty(0)
        self.verdict: Verdict | None = None

        for control in (
            self.lr_slider,
            self.optimizer_menu,
            self.momentum_slider,
            self.steps_slider,
            self.surface_menu,
        ):
            control.observe(self._on_change, names="value")
        self.update()

    # --- programmatic API ------------------------------------------------------------------

    def set(self, **values: Any) -> LearningRateExplorer:
        """Move several controls at once (one redraw): lr, optimizer, momentum, steps, surface."""
        controls = {
            "lr": self.lr_slider,
            "optimizer": self.optimizer_menu,
            "momentum": self.momentum_slider,
            "steps": self.steps_slider,
            "surface": self.surface_menu,
        }
        for name in values:
            if name not in controls:
                raise ValueError(
                    f"LearningRateExplorer.set: no control {name!r} (have {', '.join(controls)})"
                )
        self._batching = True
        try:
            for name, value in values.items():
                controls[name].value = value
        finally:
            self._batching = False
        self.update()
        return self

    @property
    def surface(self) -> Surface:
        return SURFACES[self.surface_menu.value]

    def png(self) -> bytes:
        """The current figure as PNG bytes (what the widget shows).

        The contour panel is kept as pixels between calls; only the path and the whole
        loss panel (whose limits change with every run) are drawn again.
        """
        # The legend is redrawn too, so that it stays on top of the path.
        dynamic = [self.path_line, self.start_marker, self.end_marker, self.surface_ax.get_legend()]
        return self._blitter.png(dynamic, [self.loss_ax], key=self._drawn_surface)

    def update(self) -> None:
        """Re-run gradient descent with the current controls and redraw."""
        surface = self.surface
        self.momentum_slider.disabled = self.optimizer_menu.value not in _USES_MOMENTUM
        self.path = run_optimizer(
            surface,
            optimizer=self.optimizer_menu.value,
            lr=float(self.lr_slider.value),
            momentum=float(self.momentum_slider.value),
            steps=int(self.steps_slider.value),
            start=self.start,
        )
        with np.errstate(all="ignore"):  # a diverging path makes inf/nan losses on purpose
            self.losses = surface.loss(self.path[:, 0], self.path[:, 1])
        self.verdict = classify_run(self.path, self.losses, surface.grad, global_min=surface.global_min)
        self._draw(surface)
        self.verdict_label.value = f"<b>{self.verdict.kind}</b> &mdash; {self.verdict.message}"
        self.image.value = self.png()

    # --- drawing ---------------------------------------------------------------------------

    def _on_change(self, change: dict[str, Any]) -> None:
        if not self._batching:
            self.update()

    def _build_axes(self) -> None:
        """The artists every surface shares: path, markers, legend, and the loss panel."""
        ax = self.surface_ax
        (self.path_line,) = ax.plot([], [], "-o", color="tab:red", ms=3, lw=1.2, zorder=4, label="path")
        (self.start_marker,) = ax.plot([], [], "o", color="k", ms=7, zorder=5, label="start")
        (self.end_marker,) = ax.plot([], [], "*", color="k", ms=12, zorder=5, label="end")
        lax = self.loss_ax
        (self.loss_line,) = lax.plot([], [], "-", color="tab:red", lw=1.5)
        self.overflow_note = lax.text(
            0.98, 0.03, "", transform=lax.transAxes, ha="right", va="bottom", fontsize=8, color="tab:red"
        )
        lax.set_yscale("log")
        # Few, fixed ticks: a blow-up spans 100 decades and tick labels dominate the draw time.
        lax.yaxis.set_major_locator(LogLocator(numticks=6))
        lax.yaxis.set_minor_locator(NullLocator())
        lax.set_xlabel("step")
        lax.set_ylabel("loss (0 at the global minimum)")
        lax.grid(True, which="major", alpha=0.3)

    def _show_surface(self, surface: Surface) -> None:
        """Contours of ``surface``, made on first use and kept (hidden) while another one is shown."""
        ax = self.surface_ax
        if surface.key not in self._surface_artists:
            before = set(ax.get_children())
            plot_loss_surface(
                surface.loss,
                ax=ax,
                xlim=surface.xlim,
                ylim=surface.ylim,
                vectorized=True,
                resolution=80,
                levels=14,
            )
            ax.plot(*surface.global_min, "P", color="tab:green", ms=9, zorder=3, label="global min")
            self._surface_artists[surface.key] = [a for a in ax.get_children() if a not in before]
            if ax.get_legend() is None:
                ax.legend(loc="upper left", fontsize=7, framealpha=0.8)
        for key, artists in self._surface_artists.items():
            for artist in artists:
                artist.set_visible(key == surface.key)
        ax.set_xlim(*surface.xlim)
        ax.set_ylim(*surface.ylim)
        ax.set_title(surface.title, fontsize=10)
        self._drawn_surface = surface.key

    def _draw(self, surface: Surface) -> None:
        if self._drawn_surface != surface.key:
            self._show_surface(surface)
        finite = np.isfinite(self.path).all(axis=1)
        shown = self.path[finite]
        spans = np.array([surface.xlim[1] - surface.xlim[0], surface.ylim[1] - surface.ylim[0]])
        lo = np.array([surface.xlim[0], surface.ylim[0]]) - _CLIP_SPANS * spans
        hi = np.array([surface.xlim[1], surface.ylim[1]]) + _CLIP_SPANS * spans
        shown = np.clip(shown, lo, hi)
        self.path_line.set_data(shown[:, 0], shown[:, 1])
        self.start_marker.set_data(shown[:1, 0], shown[:1, 1])
        self.end_marker.set_data(shown[-1:, 0], shown[-1:, 1])

        steps = np.arange(len(self.losses))
        ok = np.isfinite(self.losses)
        y = np.clip(self.losses[ok], *_LOSS_SHOWN)
        self.loss_line.set_data(steps[ok], y)
        off_chart = not ok.all() or self.losses[ok].max() > _LOSS_SHOWN[1]
        self.overflow_note.set_text(
            f"losses above {_LOSS_SHOWN[1]:.0e} drawn at {_LOSS_SHOWN[1]:.0e}" if off_chart else ""
        )
        lax = self.loss_ax
        lax.set_xlim(0, max(len(self.losses) - 1, 1))
        lax.set_ylim(y.min() / 3.0, y.max() * 3.0)
        names = {key: label for label, key in OPTIMIZER_CHOICES}
        momentum = (
            f", momentum {self.momentum_slider.value:.2f}"
            if self.optimizer_menu.value in _USES_MOMENTUM
            else ""
        )
        lax.set_title(
            f"{names[self.optimizer_menu.value]}, lr {self.lr_slider.value:.3g}{momentum}: "
            f"{self._verdict().kind}",
            fontsize=10,
        )

    def _verdict(self) -> Verdict:
        """The verdict of the run on show (``__init__`` runs one before anything is drawn)."""
        if self.verdict is None:
            raise RuntimeError("Explorer: no run yet (the constructor runs one)")
        return self.verdict

    # --- display ---------------------------------------------------------------------------

    def _ipython_display_(self) -> None:
        if resolve_static(self.static):
            display_static(self.figure, f"**{self._verdict().kind}**: {self._verdict().message}")
        else:
            from IPython.display import display

            display(self.widget)


def learning_rate_explorer(
    *,
    surface: str = "ravine",
    optimizer: str = "sgd",
    lr: float = 0.05,
    momentum: float = 0.9,
    steps: int = 50,
    start: tuple[float, float] | None = None,
    static: bool | None = None,
) -> LearningRateExplorer:
    """Build the explorer. Show it by making it the last expression of a cell (or ``display(...)``).

    surface: "bowl", "ravine" or "wells"; optimizer: "sgd", "momentum", "nesterov",
    "adagrad", "rmsprop", "adadelta" or "adam"; lr in [1e-4, 10]; momentum in [0, 0.99]
    (momentum/Nesterov's momentum, Adam's beta1); steps in [1, 500]; start (2,) overrides
    the surface's start point. ``static``: True shows a PNG, False the live widget, None
    (default) decides by whether a widget front end is present (see ``_static``).
    """
    return LearningRateExplorer(
        surface=surface,
        optimizer=optimizer,
        lr=lr,
        momentum=momentum,
        steps=steps,
        start=start,
        static=static,
    )

"""The neural-network playground: train a small MLP on 2-D toy data and watch it learn.

Controls: data set (blobs, XOR, circles, spirals), hidden layers and units per layer,
activation, learning rate, L2 strength and dropout probability; buttons Train/Pause,
Step (one epoch) and Reset. The left panel colours the plane by the predicted class
probabilities (the decision boundary is where the colours meet) over the training
points (filled) and validation points (hollow); the right panel shows the training and
validation cross-entropy per epoch. All computing is ``course_lib.np_ref`` (see
``trainer``).

Changing the data set or the architecture starts a fresh model; learning rate, L2 and
dropout apply from the next mini-batch on, as when you change them mid-training in
TensorFlow Playground.

Letters: N points, K classes, G x G the grid the decision regions are drawn on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NamedTuple

import ipywidgets as widgets
import numpy as np
from matplotlib.collections import PathCollection
from matplotlib.image import AxesImage

from course_lib import data
from course_lib.np_ref.activations import softmax
from course_lib.widgets._render import Blitter, display_static, new_figure
from course_lib.widgets._static import resolve_static
from course_lib.widgets.trainer import Params, data_loss, forward, init_params, train_epoch

__all__ = ["DATASETS", "ACTIVATION_CHOICES", "L2_CHOICES", "Playground", "playground"]

# name -> seed -> (x (N, 2), y (N,)); 300 points each, split 2:1 into train and validation.
DATASETS: dict[str, Callable[[int], tuple[np.ndarray, np.ndarray]]] = {
    "xor": lambda seed: data.make_xor(300, noise=0.3, seed=seed),
    "blobs": lambda seed: data.make_blobs(300, centers=3, std=1.0, seed=seed),
    "circles": lambda seed: data.make_circles(300, factor=0.5, noise=0.1, seed=seed),
    "spirals": lambda seed: data.make_spirals(100, classes=3, noise=0.2, seed=seed),
}
_N_TRAIN = 200
ACTIVATION_CHOICES = ("tanh", "relu", "leaky_relu", "sigmoid", "swish", "linear")
L2_CHOICES = (0.0, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1)
_CLASS_RGB = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40]]) / 255.0  # tab10
_GRID = 60  # G: the decision regions are a G x G image; forward on 3,600 points costs ~1 ms
_TINT = 0.45  # how strongly a region takes its class colour (1 = solid)


class _DataView(NamedTuple):
    grid: np.ndarray  # (G*G, 2) points where the model is evaluated for the region image
    image: AxesImage
    points: list[PathCollection]  # training points, validation points
    limits: tuple[tuple[float, float], tuple[float, float]]  # (xlim, ylim)


class Playground:
    """Controls, model state and figure; ``widget`` is what the notebook shows.

    Drive it from code: ``step(epochs)`` trains and redraws, ``reset()`` starts over,
    ``set(...)`` moves controls; read ``train_loss`` / ``val_loss`` (one entry per epoch,
    entry 0 before training), ``params``, ``figure``.
    """

    def __init__(
        self,
        *,
        dataset: str = "xor",
        hidden_layers: int = 2,
        units: int = 8,
        activation: str = "tanh",
        lr: float = 0.1,
        l2: float = 0.0,
        p_drop: float = 0.0,
        batch_size: int = 16,
        seed: int = 0,
        epochs_per_frame: int = 5,
        max_epochs: int = 2000,
        static_epochs: int = 200,
        static: bool | None = None,
    ) -> None:
        fn = "playground"
        if dataset not in DATASETS:
            raise ValueError(
                f"{fn}: argument 'dataset' must be one of {', '.join(map(repr, DATASETS))}, got {dataset!r}"
            )
        if activation not in ACTIVATION_CHOICES:
            raise ValueError(
                f"{fn}: argument 'activation' must be one of {ACTIVATION_CHOICES}, got {activation!r}"
            )
        if l2 not in L2_CHOICES:
            raise ValueError(f"{fn}: argument 'l2' must be one of {L2_CHOICES}, got {l2!r}")
        for name, value, lo, hi in (
            ("hidden_layers", hidden_layers, 0, 4),
            ("units", units, 1, 16),
            ("batch_size", batch_size, 1, 10_000),
            ("epochs_per_frame", epochs_per_frame, 1, 1000),
            ("max_epochs", max_epochs, 1, 10**6),
            ("static_epochs", static_epochs, 0, 10**5),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
                raise ValueError(f"{fn}: argument {name!r} must be an integer in [{lo}, {hi}], got {value!r}")
        if not (isinstance(lr, (int, float)) and 1e-3 <= lr <= 1.0):
            raise ValueError(f"{fn}: argument 'lr' must be a number in [0.001, 1], got {lr!r}")
        if not (isinstance(p_drop, (int, float)) and 0.0 <= p_drop <= 0.7):
            raise ValueError(f"{fn}: argument 'p_drop' must be a number in [0, 0.7], got {p_drop!r}")
        self.seed = seed
        self.batch_size = batch_size
        self.epochs_per_frame = epochs_per_frame
        self.max_epochs = max_epochs
        self.static_epochs = static_epochs
        self.static = static
        self._batching = False
        self._task: asyncio.Task[None] | None = None
        self._drawn_dataset: str | None = None
        self._views: dict[str, _DataView] = {}
        self._stop_requested = False

        style = {"description_width": "initial"}
        self.dataset_menu = widgets.Dropdown(options=list(DATASETS), value=dataset, description="data")
        self.layers_slider = widgets.IntSlider(
            value=hidden_layers, min=0, max=4, description="hidden layers", style=style
        )
        self.units_slider = widgets.IntSlider(value=units, min=1, max=16, description="units", style=style)
        self.activation_menu = widgets.Dropdown(
            options=ACTIVATION_CHOICES, value=activation, description="activation", style=style
        )
        self.lr_slider = widgets.FloatLogSlider(
            value=lr,
            base=10,
            min=-3,
            max=0,
            step=0.1,
            readout_format=".2g",
            description="learning rate",
            style=style,
        )
        self.l2_slider = widgets.SelectionSlider(options=L2_CHOICES, value=l2, description="L2", style=style)
        self.dropout_slider = widgets.FloatSlider(
            value=p_drop, min=0.0, max=0.7, step=0.05, description="dropout", style=style
        )
        self.train_button = widgets.Button(description="Train", icon="play", button_style="success")
        self.step_button = widgets.Button(description="Step", icon="step-forward")
        self.reset_button = widgets.Button(description="Reset", icon="undo")
        self.status = widgets.HTML()
        # CSS classes name the parts for the browser test (and for anyone styling the notebook).
        for control, name in (
            (self.train_button, "train"),
            (self.step_button, "step"),
            (self.reset_button, "reset"),
            (self.status, "status"),
        ):
            control.add_class(f"course-playground-{name}")
        self.image = widgets.Image(format="png")
        self.image.add_class("course-playground-plot")
        self.widget = widgets.VBox(
            [
                widgets.HBox(
                    [self.dataset_menu, self.activation_menu, self.layers_slider, self.units_slider]
                ),
                widgets.HBox([self.lr_slider, self.l2_slider, self.dropout_slider]),
                widgets.HBox([self.train_button, self.step_button, self.reset_button, self.status]),
                self.image,
            ]
        )

        self.figure = new_figure((9.0, 3.8), left=0.07, right=0.98, bottom=0.13, top=0.91, wspace=0.22)
        self.region_ax, self.loss_ax = self.figure.subplots(1, 2, width_ratios=[1.0, 1.1])
        self._blitter = Blitter(self.figure, keep=8)
        self._build_loss_axes()
        self.train_button.on_click(self._on_train_clicked)
        self.step_button.on_click(lambda _: self.step(1))
        self.reset_button.on_click(self._on_reset_clicked)
        for control in (self.dataset_menu, self.layers_slider, self.units_slider, self.activation_menu):
            control.observe(self._on_architecture_change, names="value")
        self.reset()

    # --- programmatic API ------------------------------------------------------------------

    @property
    def hidden(self) -> list[int]:
        return [int(self.units_slider.value)] * int(self.layers_slider.value)

    @property
    def epoch(self) -> int:
        return len(self.train_loss) - 1

    def set(self, **values: Any) -> Playground:
        """Move controls (dataset, hidden_layers, units, activation, lr, l2, p_drop); resets at most once."""
        controls = {
            "dataset": self.dataset_menu,
            "hidden_layers": self.layers_slider,
            "units": self.units_slider,
            "activation": self.activation_menu,
            "lr": self.lr_slider,
            "l2": self.l2_slider,
            "p_drop": self.dropout_slider,
        }
        for name in values:
            if name not in controls:
                raise ValueError(f"Playground.set: no control {name!r} (have {', '.join(controls)})")
        architecture = {"dataset", "hidden_layers", "units", "activation"}
        self._batching = True
        try:
            for name, value in values.items():
                controls[name].value = value
        finally:
            self._batching = False
        if architecture & set(values):
            self.reset()
        return self

    def reset(self) -> None:
        """New data split and freshly initialised weights for the current controls; epoch 0."""
        x, y = DATASETS[self.dataset_menu.value](self.seed)
        self.x_train, self.y_train = x[:_N_TRAIN], y[:_N_TRAIN]
        self.x_val, self.y_val = x[_N_TRAIN:], y[_N_TRAIN:]
        self.n_classes = int(y.max()) + 1
        self.rng = np.random.default_rng(self.seed)
        self.params: Params = init_params(
            self.hidden, self.n_classes, activation=self.activation_menu.value, rng=self.rng
        )
        self.train_loss: list[float] = []
        self.val_loss: list[float] = []
        self._record_losses()
        if self._drawn_dataset != self.dataset_menu.value:
            self._show_data()
        self.redraw()

    def step(self, epochs: int = 1) -> None:
        """Train ``epochs`` epochs of mini-batch SGD with the current controls, then redraw once."""
        activation = self.activation_menu.value
        for _ in range(epochs):
            self.params = train_epoch(
                self.params,
                self.x_train,
                self.y_train,
                activation=activation,
                lr=float(self.lr_slider.value),
                l2=float(self.l2_slider.value),
                p_drop=float(self.dropout_slider.value),
                batch_size=self.batch_size,
                rng=self.rng,
            )
            self._record_losses()
        self.redraw()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """x (N, 2) -> class probabilities (N, K) of the current model (no dropout)."""
        scores, _ = forward(
            self.params, x, activation=self.activation_menu.value, p_drop=0.0, train=False, rng=None
        )
        return softmax(scores, axis=1)

    def png(self) -> bytes:
        """The current figure as PNG bytes (what the widget shows).

        Axes, ticks and labels are kept as pixels while the loss panel's limits stay the
        same; the decision regions, the points on top of them and the curves are redrawn.
        """
        # Same order as a full draw: spines go over the image and the curves, as they do there.
        dynamic = [
            self.region_image,
            *self._points,
            *self.region_ax.spines.values(),
            self.region_ax.get_legend(),
            self.region_ax.title,
            self.train_line,
            self.val_line,
            *self.loss_ax.spines.values(),
            self.loss_ax.title,
        ]
        key = (self._drawn_dataset, self.loss_ax.get_xlim(), self.loss_ax.get_ylim())
        return self._blitter.png(dynamic, key=key)

    # --- training loop for the Train button --------------------------------------------------

    def _on_train_clicked(self, _: Any) -> None:
        if self._task is not None:
            self._stop_requested = True
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not inside an event loop (plain Python): one synchronous burst
            self.step(self.epochs_per_frame)
            return
        self._stop_requested = False
        self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        self.train_button.description, self.train_button.icon = "Pause", "pause"
        self.train_button.button_style = "warning"
        try:
            while not self._stop_requested and self.epoch < self.max_epochs:
                self.step(self.epochs_per_frame)
                # Hand the event loop back, so the kernel can deliver Pause clicks and slider moves.
                await asyncio.sleep(0.01)
        finally:
            self._task = None
            self.train_button.description, self.train_button.icon = "Train", "play"
            self.train_button.button_style = "success"

    def _on_reset_clicked(self, _: Any) -> None:
        self._stop_requested = True  # Reset also stops a running Train loop (no-op otherwise)
        self.reset()

    def _on_architecture_change(self, change: dict[str, Any]) -> None:
        if not self._batching:
            self.reset()

    # --- drawing ---------------------------------------------------------------------------

    def _record_losses(self) -> None:
        activation = self.activation_menu.value
        self.train_loss.append(data_loss(self.params, self.x_train, self.y_train, activation=activation))
        self.val_loss.append(data_loss(self.params, self.x_val, self.y_val, activation=activation))

    def _build_loss_axes(self) -> None:
        lax = self.loss_ax
        (self.train_line,) = lax.plot([], [], color="tab:blue", label="train")
        (self.val_line,) = lax.plot([], [], color="tab:orange", label="validation")
        lax.set_xlabel("epoch")
        lax.set_ylabel("cross-entropy")
        lax.grid(True, alpha=0.3)
        lax.legend(loc="upper right", fontsize=8)
        self.region_ax.set_xlabel("$x_1$")
        self.region_ax.set_ylabel("$x_2$")

    def _show_data(self) -> None:
        """Points and region image of the current data set: made on first use, then kept (hidden) for later."""
        ax = self.region_ax
        key = self.dataset_menu.value
        if key not in self._views:
            x = np.concatenate([self.x_train, self.x_val])
            lo, hi = x.min(axis=0) - 0.3, x.max(axis=0) + 0.3
            g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], _GRID), np.linspace(lo[1], hi[1], _GRID))
            image = ax.imshow(
                np.ones((_GRID, _GRID, 3)),
                origin="lower",
                extent=(lo[0], hi[0], lo[1], hi[1]),
                aspect="auto",
                interpolation="bilinear",
            )
            colors = _CLASS_RGB[: self.n_classes]
            points = [
                ax.scatter(
                    *self.x_train.T,
                    c=colors[self.y_train],
                    s=14,
                    edgecolors="k",
                    linewidths=0.4,
                    label="train",
                ),
                ax.scatter(
                    *self.x_val.T,
                    facecolors="none",
                    edgecolors=colors[self.y_val],
                    s=16,
                    linewidths=1.0,
                    label="validation",
                ),
            ]
            if ax.get_legend() is None:
                ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
            self._views[key] = _DataView(
                np.stack([g1.ravel(), g2.ravel()], axis=1), image, points, ((lo[0], hi[0]), (lo[1], hi[1]))
            )
        for other, view in self._views.items():
            for artist in (view.image, *view.points):
                artist.set_visible(other == key)
        view = self._views[key]
        self._grid, self.region_image, self._points = view.grid, view.image, view.points
        ax.set_xlim(*view.limits[0])
        ax.set_ylim(*view.limits[1])
        self._drawn_dataset = key

    def redraw(self) -> None:
        probs = self.predict_proba(self._grid)  # (G*G, K)
        rgb = probs @ _CLASS_RGB[: self.n_classes]
        self.region_image.set_data((1.0 - _TINT) + _TINT * rgb.reshape(_GRID, _GRID, 3))
        epochs = np.arange(len(self.train_loss))
        self.train_line.set_data(epochs, self.train_loss)
        self.val_line.set_data(epochs, self.val_loss)
        # Limits grow in coarse steps, so the axes (and the blitter's background) stay put
        # for many frames: epochs in blocks of 50, losses in steps of 0.5.
        top = max(max(self.train_loss), max(self.val_loss))
        top = np.ceil(1.05 * top / 0.5) * 0.5 if np.isfinite(top) and top > 0 else 1.0
        self.loss_ax.set_xlim(0, 50 * max(1, int(np.ceil(self.epoch / 50))))
        self.loss_ax.set_ylim(0.0, top)
        layers = " x ".join(map(str, self.hidden)) or "no"
        self.region_ax.set_title(
            f"{self.dataset_menu.value}: {layers} hidden, {self.activation_menu.value}, epoch {self.epoch}",
            fontsize=10,
        )
        self.loss_ax.set_title(
            f"train {self.train_loss[-1]:.3f}, validation {self.val_loss[-1]:.3f}", fontsize=10
        )
        self.status.value = f"epoch <b>{self.epoch}</b>"
        self.image.value = self.png()

    # --- display ---------------------------------------------------------------------------

    def _ipython_display_(self) -> None:
        if resolve_static(self.static):
            if self.epoch == 0 and self.static_epochs > 0:
                self.step(self.static_epochs)  # a static picture of an untrained model teaches nothing
            display_static(
                self.figure,
                f"after {self.epoch} epochs: train loss {self.train_loss[-1]:.3f}, "
                f"validation loss {self.val_loss[-1]:.3f}",
            )
        else:
            from IPython.display import display

            display(self.widget)


def playground(
    *,
    dataset: str = "xor",
    hidden_layers: int = 2,
    units: int = 8,
    activation: str = "tanh",
    lr: float = 0.1,
    l2: float = 0.0,
    p_drop: float = 0.0,
    seed: int = 0,
    static: bool | None = None,
) -> Playground:
    """Build the playground. Show it by making it the last expression of a cell (or ``display(...)``).

    dataset: "xor", "blobs", "circles" or "spirals"; hidden_layers 0-4 of ``units`` 1-16
    each; activation: "tanh", "relu", "leaky_relu", "sigmoid", "swish" or "linear";
    lr in [0.001, 1]; l2 one of L2_CHOICES; p_drop in [0, 0.7]. ``static``: True shows a
    PNG (after 200 epochs of training), False the live widget, None (default) decides by
    whether a widget front end is present. For more knobs build ``Playground(...)``.
    """
    return Playground(
        dataset=dataset,
        hidden_layers=hidden_layers,
        units=units,
        activation=activation,
        lr=lr,
        l2=l2,
        p_drop=p_drop,
        seed=seed,
        static=static,
    )

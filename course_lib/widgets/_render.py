"""Shared plumbing: an off-screen matplotlib figure rendered to PNG for an ipywidgets.Image.

We never use pyplot here: a pyplot figure would be auto-displayed by the inline
backend at the end of the cell (a second, stale copy of the plot) and would live in
pyplot's global figure list. A bare ``Figure`` on an Agg canvas is ours alone; each
redraw re-renders it into PNG bytes, which ``ipywidgets.Image`` ships to the browser.

Speed matters (one interaction should redraw in well under 200 ms): the layout is fixed
(constrained layout re-measures every tick label on every draw), ``Blitter`` keeps the
pixels of everything that did not change (contours, axes, tick labels) and redraws only
the artists that did, and the PNG is written with light compression, which is several
times faster than ``savefig``'s default and only a little larger.
"""

from __future__ import annotations

import io
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

__all__ = ["new_figure", "figure_png", "Blitter", "display_static"]


def new_figure(figsize: tuple[float, float], *, dpi: float = 80.0, **margins: float) -> Figure:
    """A figure on its own Agg canvas; ``margins`` go to ``subplots_adjust`` (left=..., wspace=...)."""
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(**margins)
    return fig


def _encode(fig: Figure) -> bytes:
    canvas = fig.canvas
    assert isinstance(canvas, FigureCanvasAgg)  # figures here are made on an Agg canvas
    rgba = np.asarray(canvas.buffer_rgba())
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="png", compress_level=1)
    return buf.getvalue()


def figure_png(fig: Figure) -> bytes:
    """Draw the whole figure and return it as PNG bytes."""
    fig.canvas.draw()
    return _encode(fig)


class Blitter:
    """Render a figure whose changes are confined to a few artists (and whole axes).

    ``png(dynamic, full_axes, key)`` draws the figure once with ``dynamic`` artists and
    ``full_axes`` hidden and keeps those pixels (the background) under ``key``; every
    call restores the background of its key and draws only the hidden parts on top, in
    the order given. Use a key that changes whenever anything in the background does
    (axis limits, a new data set); the last ``keep`` backgrounds are kept, so going back
    to an earlier key is cheap. Equivalent to ``figure_png``.
    """

    def __init__(self, fig: Figure, *, keep: int = 4) -> None:
        self.fig = fig
        self.keep = keep
        self._backgrounds: dict[Hashable, Any] = {}  # key -> saved pixels, oldest first

    def png(self, dynamic: Sequence[Artist], full_axes: Sequence[Axes] = (), key: Hashable = None) -> bytes:
        canvas = self.fig.canvas
        assert isinstance(canvas, FigureCanvasAgg)  # figures here are made on an Agg canvas
        hidden = [*full_axes, *dynamic]
        if key not in self._backgrounds:
            # Texts (titles) are blanked rather than hidden: the axes place a hidden title
            # somewhere else, and later draws would reuse that wrong position.
            saved: list[Any] = [a.get_text() if isinstance(a, Text) else a.get_visible() for a in hidden]
            for a in hidden:
                a.set_text("") if isinstance(a, Text) else a.set_visible(False)
            canvas.draw()
            self._backgrounds[key] = canvas.copy_from_bbox(self.fig.bbox)
            while len(self._backgrounds) > self.keep:
                del self._backgrounds[next(iter(self._backgrounds))]
            for a, value in zip(hidden, saved, strict=True):
                a.set_text(value) if isinstance(a, Text) else a.set_visible(value)
        canvas.restore_region(self._backgrounds[key])
        renderer = canvas.get_renderer()
        for a in hidden:
            if a.get_visible():
                a.draw(renderer)
        return _encode(self.fig)


def display_static(fig: Figure, caption: str) -> None:
    """Show the figure as a plain PNG plus a line of text: what nbconvert/HTML exports keep."""
    from IPython.display import Image as PNG
    from IPython.display import Markdown, display

    display(PNG(data=figure_png(fig), format="png"))
    if caption:
        display(Markdown(caption))

"""Shared plumbing: an off-screen matplotlib figure rendered to PNG for an ipywidgets.Image.

We never use pyplot here: a pyplot figure would be auto-displayed by the inline
backend at the end of the cell (a second, stale copy of the plot) and would live in
pyplot's global figure list. A bare ``Figure`` on an Agg canvas is ours alone; each
redraw re-renders it into PNG bytes, which ``ipywidgets.Image`` ships to the browser.

Speed matters (one interaction should redraw in well under 200 ms): the layout is fixed
(constrained layout re-measures every tick label on every draw) and the PNG is written
with light compression, which is several times faster than ``savefig``'s default and
only a little larger.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

__all__ = ["new_figure", "figure_png", "display_static"]


def new_figure(figsize: tuple[float, float], *, dpi: float = 80.0, **margins: float) -> Figure:
    """A figure on its own Agg canvas; ``margins`` go to ``subplots_adjust`` (left=..., wspace=...)."""
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(**margins)
    return fig


def figure_png(fig: Figure) -> bytes:
    canvas = fig.canvas
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="png", compress_level=1)
    return buf.getvalue()


def display_static(fig: Figure, caption: str) -> None:
    """Show the figure as a plain PNG plus a line of text: what nbconvert/HTML exports keep."""
    from IPython.display import Image as PNG, Markdown, display

    display(PNG(data=figure_png(fig), format="png"))
    if caption:
        display(Markdown(caption))

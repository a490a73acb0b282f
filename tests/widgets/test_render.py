"""The blitted PNG the widgets send shows the same picture as a full redraw of the figure."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from course_lib.widgets import learning_rate_explorer, playground
from course_lib.widgets._render import figure_png

MAX_DIFFERENT_PIXELS = 0.001  # a handful of anti-aliased edge pixels may differ


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def assert_same_picture(blitted: bytes, full: bytes) -> None:
    a, b = pixels(blitted), pixels(full)
    assert a.shape == b.shape
    different = float(np.mean((a != b).any(axis=-1)))
    assert different <= MAX_DIFFERENT_PIXELS, f"{different:.2%} of the pixels differ from a full redraw"


@pytest.mark.parametrize("changes", [{"lr": 0.3}, {"lr": 5.0}, {"surface": "wells", "lr": 0.01},
                                     {"optimizer": "adam", "lr": 0.5}, {"surface": "bowl", "steps": 3}])
def test_explorer_blit_matches_full_draw(changes):
    ex = learning_rate_explorer(static=True)
    ex.set(lr=0.02)  # a first picture, so the next one reuses the background
    ex.set(**changes)
    assert_same_picture(ex.png(), figure_png(ex.figure))


def test_playground_blit_matches_full_draw_across_limit_changes():
    pg = playground(dataset="spirals", static=True)
    for epochs in (1, 30, 40):  # 71 epochs: the epoch axis grows from 50 to 100 on the way
        pg.step(epochs)
        assert_same_picture(pg.png(), figure_png(pg.figure))


def test_playground_blit_matches_full_draw_when_switching_data_sets():
    pg = playground(dataset="xor", static=True)
    for dataset in ("circles", "spirals", "xor"):  # back to a data set whose artists are kept hidden
        pg.set(dataset=dataset)
        pg.step(2)
        assert_same_picture(pg.png(), figure_png(pg.figure))
        assert sum(artist.get_visible() for artist in pg.region_ax.collections) == 2  # only this set's points

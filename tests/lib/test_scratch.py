"""The reusable work arrays of np_ref (course_lib/np_ref/_scratch.py), and that the layers
using them never hand a caller memory that a later call overwrites."""

from __future__ import annotations

import threading

import numpy as np

from course_lib.np_ref import _scratch
from course_lib.np_ref import fast_conv as np_conv
from course_lib.np_ref._scratch import scratch


def test_same_tag_shape_and_dtype_give_the_same_buffer():
    a = scratch("test.a", (3, 4), np.float32)
    assert scratch("test.a", (3, 4), np.float32) is a
    assert a.shape == (3, 4) and a.dtype == np.float32 and a.flags.c_contiguous


def test_a_different_tag_shape_or_dtype_gives_separate_memory():
    a = scratch("test.b", (3, 4), np.float32)
    others = [
        scratch("test.c", (3, 4), np.float32),
        scratch("test.b", (4, 3), np.float32),
        scratch("test.b", (3, 4), np.float64),
    ]
    for other in others:
        assert not np.shares_memory(a, other)


def test_least_recently_used_buffers_are_dropped_beyond_the_budget(monkeypatch):
    monkeypatch.setattr(_scratch, "MAX_BYTES", 3 * 800)
    monkeypatch.setattr(_scratch._local, "pool", None)  # an empty pool for this test
    first = scratch("test.lru1", (100,), np.float64)  # 800 bytes each
    scratch("test.lru2", (100,), np.float64)
    scratch("test.lru3", (100,), np.float64)
    scratch("test.lru1", (100,), np.float64)  # touch 1: now 2 is the oldest
    scratch("test.lru4", (100,), np.float64)  # over budget: 2 goes
    pool = _scratch._pool()
    assert sum(buf.nbytes for buf in pool.values()) <= 3 * 800
    tags = [key[0] for key in pool]
    assert "test.lru2" not in tags and "test.lru1" in tags and "test.lru4" in tags
    assert scratch("test.lru1", (100,), np.float64) is first


def test_each_thread_has_its_own_buffers():
    mine = scratch("test.thread", (8,), np.float64)
    theirs = []
    worker = threading.Thread(target=lambda: theirs.append(scratch("test.thread", (8,), np.float64)))
    worker.start()
    worker.join()
    assert not np.shares_memory(mine, theirs[0])


def test_conv_results_survive_later_calls():
    """conv2d keeps its temporaries in scratch buffers: a second forward/backward with other
    numbers must leave the first call's outputs, gradients and cache untouched."""
    rng = np.random.default_rng(0)

    def layer_call(seed):
        r = np.random.default_rng(seed)
        x, w, b = r.standard_normal((2, 3, 7, 6)), r.standard_normal((4, 3, 3, 3)), r.standard_normal(4)
        out, cache = np_conv.conv2d_forward(x, w, b, stride=1, pad=1)
        grads = np_conv.conv2d_backward(r.standard_normal(out.shape), cache)
        return out, cache, grads

    out, cache, grads = layer_call(1)
    saved = [out.copy(), cache.cols.copy(), *(g.copy() for g in grads)]
    layer_call(2)
    np_conv.conv2d_backward(rng.standard_normal(out.shape), cache)  # the same cache, used again
    for before, now in zip(saved, [out, cache.cols, *grads]):
        np.testing.assert_array_equal(now, before)

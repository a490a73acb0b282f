"""course_lib.data: determinism, shapes and dtypes, and that each set has the property it is used to teach."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import data

TOY_SETS = {
    "make_blobs": lambda **kw: data.make_blobs(120, centers=3, **kw),
    "make_xor": lambda **kw: data.make_xor(120, **kw),
    "make_circles": lambda **kw: data.make_circles(120, **kw),
    "make_spirals": lambda **kw: data.make_spirals(40, classes=3, **kw),
    "pass_the_class": lambda **kw: data.pass_the_class(n=120, **kw),
    "sine_waves": lambda **kw: data.sine_waves(30, steps=12, **kw),
}


def least_squares_accuracy(features: np.ndarray, y: np.ndarray) -> float:
    """Training accuracy of a linear classifier fitted by least squares to targets -1/+1."""
    a = np.c_[features, np.ones(len(features))]
    w = np.linalg.lstsq(a, 2.0 * y - 1.0, rcond=None)[0]
    return float(((a @ w > 0) == (y == 1)).mean())


@pytest.mark.parametrize("name", TOY_SETS)
def test_same_seed_same_data_other_seed_other_data(name):
    make = TOY_SETS[name]
    a, b, c = make(seed=3), make(seed=3), make(seed=4)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("name", TOY_SETS)
def test_rng_argument_is_the_same_as_seed(name):
    make = TOY_SETS[name]
    for u, v in zip(make(seed=7), make(rng=np.random.default_rng(7))):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("name", [n for n in TOY_SETS if n != "sine_waves"])
def test_toy_sets_are_float64_features_and_int64_labels(name):
    x, y = TOY_SETS[name](seed=0)
    assert x.dtype == np.float64 and y.dtype == np.int64
    assert x.shape == (120, 2) and y.shape == (120,)
    assert np.isfinite(x).all()


@pytest.mark.parametrize(
    "make, k",
    [
        (lambda: data.make_blobs(101, centers=4), 4),
        (lambda: data.make_xor(102), 2),
        (lambda: data.make_circles(101), 2),
        (lambda: data.make_spirals(33, classes=5), 5),
    ],
)
def test_classes_are_balanced(make, k):
    _, y = make()
    counts = np.bincount(y, minlength=k)
    assert len(counts) == k and counts.max() - counts.min() <= 1, counts


seeds = st.integers(0, 2**32 - 1)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 60), k=st.integers(1, 7), seed=seeds)
def test_blobs_have_n_rows_and_balanced_classes_for_any_n_and_k(n, k, seed):
    x, y = data.make_blobs(n, centers=k, seed=seed)
    assert x.shape == (n, 2) and y.shape == (n,)
    counts = np.bincount(y, minlength=k)
    assert counts.sum() == n and counts.max() - counts.min() <= 1 and y.max() < k


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 60), seed=seeds)
def test_binary_toy_sets_are_balanced_for_any_n(n, seed):
    for make in (data.make_xor, data.make_circles):
        _, y = make(n, seed=seed)
        assert abs(int(y.sum()) - (n - int(y.sum()))) <= 1


@settings(max_examples=15, deadline=None)
@given(val=st.floats(0.0, 0.4), test=st.floats(0.0, 0.4), seed=seeds)
def test_digit_splits_are_exactly_stratified_for_any_fractions(val, test, seed):
    d = data.load_digits(seed=seed, val_fraction=val, test_fraction=test)
    per_class = np.array([178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    np.testing.assert_array_equal(np.bincount(d.y_test, minlength=10), np.round(test * per_class))
    np.testing.assert_array_equal(np.bincount(d.y_val, minlength=10), np.round(val * per_class))
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 1797


@settings(max_examples=25, deadline=None)
@given(text=st.text(min_size=1, max_size=40))
def test_encode_then_decode_returns_any_text(text):
    stoi, itos = data.char_vocab(text)
    ids = data.encode(text, stoi)
    assert data.decode(ids, itos) == text
    assert ids.min() >= 0 and ids.max() < len(itos) == len(set(text))


def test_rows_are_shuffled_so_slices_mix_classes():
    _, y = data.make_blobs(200, centers=2)
    assert 0 < y[:20].mean() < 1


def test_blobs_accept_explicit_centres_and_are_linearly_separable_when_far_apart():
    x, y = data.make_blobs(200, centers=[[-4.0, 0.0, 0.0], [4.0, 0.0, 0.0]], std=1.0)
    assert x.shape == (200, 3)
    # Hand-computed centres: the class means must sit near them.
    np.testing.assert_allclose(x[y == 0].mean(0), [-4, 0, 0], atol=0.4)
    assert least_squares_accuracy(x, y) > 0.99


def test_xor_defeats_a_linear_classifier_but_not_the_product_feature():
    x, y = data.make_xor(400, noise=0.2)
    assert least_squares_accuracy(x, y) < 0.65
    # The label is the sign of -x1*x2 on the cluster centres: one extra feature solves it.
    assert least_squares_accuracy(np.c_[x, x[:, 0] * x[:, 1]], y) > 0.95


def test_circles_need_the_radius_feature():
    x, y = data.make_circles(400, factor=0.5, noise=0.05)
    assert least_squares_accuracy(x, y) < 0.7
    assert least_squares_accuracy(np.c_[x, (x**2).sum(1)], y) > 0.97
    r = np.linalg.norm(x, axis=1)
    np.testing.assert_allclose(np.median(r[y == 0]), 1.0, atol=0.05)
    np.testing.assert_allclose(np.median(r[y == 1]), 0.5, atol=0.05)


def test_spirals_stay_in_the_unit_disc_and_fill_it():
    x, y = data.make_spirals(100, classes=3, noise=0.3)
    r = np.linalg.norm(x, axis=1)
    assert r.max() <= 1.0 + 1e-12 and r.min() == 0.0
    assert least_squares_accuracy(x, (y == 0).astype(np.int64)) < 0.8


def test_pass_the_class_is_plausible_and_mostly_linearly_separable():
    x, y = data.pass_the_class(n=400, seed=1)
    lectures, hours = x[:, 0], x[:, 1]
    assert np.array_equal(lectures, np.round(lectures)) and 0 <= lectures.min() and lectures.max() <= 20
    assert np.array_equal(hours * 2, np.round(hours * 2)) and 1 <= hours.min() and hours.max() <= 40
    assert 0.3 < y.mean() < 0.7
    acc = least_squares_accuracy(x, y)
    assert 0.85 < acc < 1.0, acc  # mostly separable, with some noisy students
    # More effort helps: passing students attend more and work more on average.
    assert lectures[y == 1].mean() > lectures[y == 0].mean()
    assert hours[y == 1].mean() > hours[y == 0].mean()


def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    path = importlib.resources.files("course_lib").joinpath("datasets/digits.npz")
    with path.open("rb") as fh, np.load(fh) as f:
        return f["images"], f["labels"]


def test_shipped_digits_file_is_the_uci_set():
    images, labels = _raw_digits()
    assert images.shape == (1797, 8, 8) and labels.shape == (1797,)
    assert images.min() == 0 and images.max() == 16
    # Per-class counts of the UCI optdigits test set, as documented by UCI and sklearn.
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    # First image of the UCI file (a zero), copied by hand from the source CSV.
    assert images[0, 0].tolist() == [0, 0, 5, 13, 9, 1, 0, 0] and labels[0] == 0


def test_load_digits_split_shapes_dtypes_and_ranges():
    d = data.load_digits(seed=0, val_fraction=0.1, test_fraction=0.2)
    sizes = [len(d.y_train), len(d.y_val), len(d.y_test)]
    assert sum(sizes) == 1797
    assert abs(sizes[1] - 180) <= 10 and abs(sizes[2] - 360) <= 10
    for x, y in [(d.x_train, d.y_train), (d.x_val, d.y_val), (d.x_test, d.y_test)]:
        assert x.dtype == np.float64 and y.dtype == np.int64
        assert x.shape == (len(y), 1, 8, 8)
        assert x.min() >= 0.0 and x.max() <= 1.0
    # Stratified: every split holds every digit in about the same proportion.
    for y in (d.y_val, d.y_test):
        frac = np.bincount(y, minlength=10) / len(y)
        np.testing.assert_allclose(frac, 0.1, atol=0.01)


def test_load_digits_splits_partition_the_data_exactly():
    d = data.load_digits(seed=5)
    images, labels = _raw_digits()
    rows = np.concatenate([d.x_train, d.x_val, d.x_test]).reshape(-1, 64) * 16
    ys = np.concatenate([d.y_train, d.y_val, d.y_test])
    got = np.c_[rows, ys]
    want = np.c_[images.reshape(-1, 64), labels].astype(np.float64)
    # The same multiset of (image, label) rows: nothing lost, nothing duplicated.
    np.testing.assert_array_equal(got[np.lexsort(got.T)], want[np.lexsort(want.T)])


def test_load_digits_is_deterministic_and_seed_dependent():
    a, b, c = data.load_digits(seed=1), data.load_digits(seed=1), data.load_digits(seed=2)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.y_test, c.y_test)
    flat = data.load_digits(seed=1, flatten=True)
    np.testing.assert_array_equal(flat.x_train, a.x_train.reshape(-1, 64))


def test_digits_look_like_digits():
    d = data.load_digits(seed=0, flatten=True)
    centroids = np.stack([d.x_train[d.y_train == k].mean(0) for k in range(10)])
    # Class means differ clearly from each other...
    gaps = np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)[~np.eye(10, dtype=bool)]
    assert gaps.min() > 0.5
    # ...and a nearest-centroid classifier already reads most test digits.
    dist = ((d.x_test[:, None, :] - centroids[None]) ** 2).sum(-1)
    accuracy = (dist.argmin(1) == d.y_test).mean()
    assert accuracy > 0.8, accuracy
    # A zero has an empty middle and ink around it.
    zero = centroids[0].reshape(8, 8)
    assert zero[3:5, 3:5].mean() < 0.25 < zero[3:5, 1].mean()


def test_sine_waves_targets_are_the_next_inputs():
    x, y = data.sine_waves(20, steps=30, noise=0.1)
    assert x.shape == y.shape == (20, 30, 1) and x.dtype == y.dtype == np.float64
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:])


def test_noise_free_sine_waves_are_sines_with_a_period_in_range():
    x, y = data.sine_waves(16, steps=40, period=(12.0, 30.0), noise=0.0)
    s = np.concatenate([x[:, :, 0], y[:, -1:, 0]], axis=1)
    assert np.abs(s).max() <= 1.0
    # A sampled sine obeys s[t+1] + s[t-1] = 2 cos(w) s[t] with w = 2 pi / P (trig identity).
    for row in s:
        mid = row[1:-1]
        c = float(mid @ (row[2:] + row[:-2]) / (2 * mid @ mid))
        np.testing.assert_allclose(row[2:] + row[:-2], 2 * c * mid, atol=1e-9)
        period = 2 * np.pi / np.arccos(c)
        assert 12.0 - 1e-6 <= period <= 30.0 + 1e-6


def test_text_and_character_vocabulary_round_trip():
    text = data.load_text()
    assert len(text) > 5000 and text.isascii()
    stoi, itos = data.char_vocab(text)
    assert itos == sorted(set(text)) and all(stoi[ch] == i for i, ch in enumerate(itos))
    ids = data.encode(text, stoi)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert data.decode(ids, itos) == text
    assert data.decode([stoi["a"], stoi["b"]], itos) == "ab"


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: data.make_blobs(0), "n"),
        (lambda: data.make_blobs(10, std=-1.0), "std"),
        (lambda: data.make_blobs(10, centers=[1.0, 2.0]), "centers"),
        (lambda: data.make_xor(10, seed=1.5), "seed"),
        (lambda: data.make_circles(10, factor=1.5), "factor"),
        (lambda: data.make_spirals(10, classes=0), "classes"),
        (lambda: data.pass_the_class(n=10, rng=np.random.RandomState(0)), "rng"),
        (lambda: data.load_digits(val_fraction=1.2), "val_fraction"),
        (lambda: data.load_digits(val_fraction=0.5, test_fraction=0.5), "test_fraction"),
        (lambda: data.sine_waves(4, period=(5.0, 2.0)), "period"),
        (lambda: data.load_text("moby"), "name"),
        (lambda: data.encode("a\u00e9", {"a": 0}), "text"),
        (lambda: data.decode([0, 3], ["a", "b"]), "ids"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(call, argument):
    with pytest.raises(ValueError, match=f"'{argument}'"):
        call()

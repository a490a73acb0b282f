"""Small, offline, deterministic data sets for the course.

Every generator takes a keyword-only ``seed`` (default 0) or, instead, an explicit
``rng: np.random.Generator``; the same seed always gives the same arrays. Features
are float64, class labels int64, and rows come in random order so that any slice
of them is a fair mini-batch.

Letters: N examples, D features (2 for the toy sets), K classes, T time steps,
H/W image height/width.

Toy classification sets (x (N, 2), y (N,)):

- ``make_blobs``    Gaussian clusters, one per class: linearly separable for wide spacing.
- ``make_xor``      four clusters at (+-1, +-1), class = "x1 > 0 xor x2 > 0": the classic
  problem no single linear boundary solves.
- ``make_circles``  a ring around a disc: separable only with a non-linear feature.
- ``make_spirals``  K interleaved spiral arms (the CS231n toy problem).
- ``pass_the_class`` the lecture's "Will I pass this class?" example.

Real data and sequences:

- ``load_digits``   1,797 real 8x8 handwritten digits (UCI, CC BY 4.0) with a seeded,
  stratified train/val/test split, images (N, 1, 8, 8) in [0, 1].
- ``sine_waves``    noisy sine windows for next-value prediction, (N, T, 1) -> (N, T, 1).
- ``load_text``     a short original English text for character-level models, with
  ``char_vocab``, ``encode`` and ``decode``.

Nothing here imports torch: convert with ``torch.as_tensor`` when you need tensors.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from course_lib.validation import require_positive_int

__all__ = [
    "make_blobs",
    "make_xor",
    "make_circles",
    "make_spirals",
    "pass_the_class",
    "Digits",
    "load_digits",
    "sine_waves",
    "load_text",
    "char_vocab",
    "encode",
    "decode",
]

_DATASETS = "datasets"


def _generator(fn: str, seed: int | None, rng: np.random.Generator | None) -> np.random.Generator:
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise ValueError(
                f"{fn}: argument 'rng' must be a numpy.random.Generator "
                f"(np.random.default_rng(seed)), got {type(rng).__name__}"
            )
        return rng
    if seed is None or isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"{fn}: argument 'seed' must be an integer, got {seed!r}")
    return np.random.default_rng(seed)


def _require_nonnegative(fn: str, name: str, value: float) -> None:
    if not isinstance(value, (int, float, np.integer, np.floating)) or not value >= 0:
        raise ValueError(f"{fn}: argument {name!r} must be a number >= 0, got {value!r}")


def _split_evenly(n: int, k: int) -> np.ndarray:
    """Class sizes for n examples over k classes, differing by at most one."""
    return np.full(k, n // k) + (np.arange(k) < n % k)


def _shuffled(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(len(y))
    return np.ascontiguousarray(x[order], dtype=np.float64), y[order].astype(np.int64)


def make_blobs(
    n: int = 200,
    *,
    centers: int | Sequence[Sequence[float]] | np.ndarray = 2,
    std: float = 1.0,
    seed: int = 0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian clusters, one per class.

    ``centers`` is either a number of classes K, placed evenly on a circle of radius 3
    around the origin (so K=2 gives centres (3, 0) and (-3, 0)), or an explicit (K, D)
    array of centres. Each class gets n // K points (the first n % K classes one more).

    Returns x (N, D) float64 and y (N,) int64 in [0, K).
    """
    fn = "make_blobs"
    require_positive_int(fn, "n", n)
    _require_nonnegative(fn, "std", std)
    if isinstance(centers, (int, np.integer)) and not isinstance(centers, bool):
        require_positive_int(fn, "centers", centers)
        angles = 2 * np.pi * np.arange(centers) / centers
        mu = 3.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    else:
        mu = np.asarray(centers, dtype=np.float64)
        if mu.ndim != 2 or len(mu) == 0:
            raise ValueError(
                f"{fn}: argument 'centers' must be an int or a (K, D) array of centres, got shape {mu.shape}"
            )
    g = _generator(fn, seed, rng)
    sizes = _split_evenly(n, len(mu))
    y = np.repeat(np.arange(len(mu)), sizes)
    x = mu[y] + std * g.standard_normal((n, mu.shape[1]))
    return _shuffled(x, y, g)


def make_xor(
    n: int = 200,
    *,
    noise: float = 0.3,
    seed: int = 0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Four Gaussian clusters at (+-1, +-1) with standard deviation ``noise``.

    A cluster's label is 1 when exactly one of its centre's coordinates is positive
    (x1 > 0 xor x2 > 0), else 0; points keep their cluster's label even when noise
    carries them across an axis. Opposite corners share a class, so no line gets much
    more than three quarters right (the best ones cut off a single corner).

    Returns x (N, 2) float64 and y (N,) int64 in {0, 1}, classes balanced to within one
    point.
    """
    fn = "make_xor"
    require_positive_int(fn, "n", n)
    _require_nonnegative(fn, "noise", noise)
    g = _generator(fn, seed, rng)
    # Classes alternate around the square so that the n % 4 spare points split evenly.
    corners = np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    cluster = np.repeat(np.arange(4), _split_evenly(n, 4))
    y = (cluster % 2).astype(np.int64)
    x = corners[cluster] + noise * g.standard_normal((n, 2))
    return _shuffled(x, y, g)


def make_circles(
    n: int = 200,
    *,
    factor: float = 0.5,
    noise: float = 0.1,
    seed: int = 0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A ring of radius 1 (class 0) around a ring of radius ``factor`` (class 1).

    Angles are uniform; Gaussian noise of standard deviation ``noise`` is added to both
    coordinates. The classes are separable by the feature x1**2 + x2**2, not by a line.

    Returns x (N, 2) float64 and y (N,) int64 in {0, 1}.
    """
    fn = "make_circles"
    require_positive_int(fn, "n", n)
    _require_nonnegative(fn, "noise", noise)
    if not isinstance(factor, (int, float, np.floating)) or not 0.0 < factor < 1.0:
        raise ValueError(f"{fn}: argument 'factor' must be in (0, 1), got {factor!r}")
    g = _generator(fn, seed, rng)
    y = np.repeat(np.arange(2), _split_evenly(n, 2))
    radius = np.where(y == 0, 1.0, float(factor))
    angle = g.uniform(0.0, 2 * np.pi, size=n)
    x = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    x = x + noise * g.standard_normal((n, 2))
    return _shuffled(x, y, g)


def make_spirals(
    n_per_class: int = 100,
    *,
    classes: int = 3,
    noise: float = 0.2,
    seed: int = 0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``classes`` spiral arms winding out of the origin, ``n_per_class`` points each.

    Point i of arm k sits at radius r = i / (n_per_class - 1) and angle
    4k + 4r + noise * e (e standard normal), the arms sharing the plane like the
    blades of a fan; N = n_per_class * classes.

    Returns x (N, 2) float64 inside the unit disc (before noise) and y (N,) int64 in [0, K).
    """
    fn = "make_spirals"
    require_positive_int(fn, "n_per_class", n_per_class)
    require_positive_int(fn, "classes", classes)
    _require_nonnegative(fn, "noise", noise)
    g = _generator(fn, seed, rng)
    r = np.tile(np.linspace(0.0, 1.0, n_per_class), classes)
    y = np.repeat(np.arange(classes), n_per_class)
    theta = 4.0 * y + 4.0 * r + noise * g.standard_normal(len(y))
    x = r[:, None] * np.stack([np.sin(theta), np.cos(theta)], axis=1)
    return _shuffled(x, y, g)


# The "pass the class" model. Students differ in diligence d ~ Beta(4, 2); attendance
# and project hours both grow with it, so the two features are correlated as in a real
# class. The pass/fail rule is a noisy linear score, which makes the set *mostly* but
# not perfectly linearly separable: a logistic neuron is the right model and still
# gets a few students wrong.
_LECTURES = 20
_PASS_WEIGHTS = (0.35, 0.5)  # per lecture attended, per project hour
_PASS_BIAS = -8.5
_PASS_LABEL_NOISE = 0.5  # scale of the logistic noise added to the score


def pass_the_class(
    *,
    n: int = 200,
    seed: int = 0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The lecture's example: will a student pass the class (1) or fail it (0)?

    Features per student (synthetic but plausible):

    - x1 = number of lectures attended, an integer in [0, 20]: Binomial(20, d) where the
      student's diligence d ~ Beta(4, 2) (mean about 13 lectures);
    - x2 = hours spent on the final project, rounded to 0.5 h: Gamma(shape=2, scale=5 d)
      + 1, capped at 40 (mean about 8 h).

    The student passes when 0.35 x1 + 0.5 x2 - 8.5 + e > 0, with e ~ Logistic(0, 0.5):
    a straight-line boundary plus a little luck, so a linear classifier gets most but
    not all students right. (Four lectures and five hours, the lecture's example
    student, scores -4.6: a clear fail.)

    Returns x (N, 2) float64 with columns (lectures, hours) and y (N,) int64 in {0, 1}.
    """
    fn = "pass_the_class"
    require_positive_int(fn, "n", n)
    g = _generator(fn, seed, rng)
    diligence = g.beta(4.0, 2.0, size=n)
    lectures = g.binomial(_LECTURES, diligence).astype(np.float64)
    hours = np.minimum(g.gamma(2.0, 5.0 * diligence) + 1.0, 40.0)
    hours = np.round(hours * 2.0) / 2.0
    score = _PASS_WEIGHTS[0] * lectures + _PASS_WEIGHTS[1] * hours + _PASS_BIAS
    score = score + g.logistic(0.0, _PASS_LABEL_NOISE, size=n)
    x = np.stack([lectures, hours], axis=1)
    return x, (score > 0).astype(np.int64)


class Digits(NamedTuple):
    """A train/val/test split of the digits: images (N, 1, 8, 8) float64 in [0, 1], labels (N,) int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    path = importlib.resources.files("course_lib").joinpath(f"{_DATASETS}/digits.npz")
    with path.open("rb") as fh, np.load(fh) as archive:
        images, labels = archive["images"], archive["labels"]
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_digits(
    *,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    flatten: bool = False,
    rng: np.random.Generator | None = None,
) -> Digits:
    """The UCI optical handwritten digits: 1,797 images of 8x8 pixels, 10 classes.

    Pixel values (0..16 in the source: each pixel counts the ink in a 4x4 block of a
    32x32 scan) are divided by 16 into [0, 1]. The split is stratified: within every
    class, ``round(test_fraction * count)`` images go to test and
    ``round(val_fraction * count)`` to validation, chosen by the seeded generator, so
    each split has every digit in the same proportion. Rows of each split are shuffled.

    Returns a ``Digits`` tuple; images are (N, 1, 8, 8), or (N, 64) with ``flatten=True``.
    Source and licence (CC BY 4.0): course_lib/datasets/README.md.
    """
    fn = "load_digits"
    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not isinstance(frac, (int, float, np.floating)) or not 0.0 <= frac < 1.0:
            raise ValueError(f"{fn}: argument {name!r} must be in [0, 1), got {frac!r}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"{fn}: arguments 'val_fraction' + 'test_fraction' must be < 1 to leave training "
            f"data, got {val_fraction} + {test_fraction}"
        )
    g = _generator(fn, seed, rng)
    images, labels = _digits_raw()
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for k in range(10):
        idx = g.permutation(np.flatnonzero(labels == k))
        n_test = round(test_fraction * len(idx))
        n_val = round(val_fraction * len(idx))
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    shape = (-1, 64) if flatten else (-1, 1, 8, 8)
    out: list[np.ndarray] = []
    for name in ("train", "val", "test"):
        idx = g.permutation(np.concatenate(parts[name]))
        out.append(images[idx].reshape(shape).astype(np.float64) / 16.0)
        out.append(labels[idx].astype(np.int64))
    return Digits(*out)


def sine_waves(
    n: int = 256,
    *,
    steps: int = 40,
    period: tuple[float, float] = (12.0, 30.0),
    noise: float = 0.05,
    seed: int = 0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Windows of noisy sine waves for next-value prediction.

    Each of the N series is s_t = sin(2 pi t / P + phi) + noise * e_t for t = 0..T, with
    its own period P ~ Uniform(period) (in time steps), phase phi ~ Uniform[0, 2 pi)
    and standard-normal e_t. The input is the series and the target the same series
    one step ahead: y[:, t] = x[:, t + 1] for t < T - 1, so a model reading x[:, :t+1]
    must predict y[:, t].

    Returns x (N, T, 1) and y (N, T, 1), float64, with T = ``steps``.
    """
    fn = "sine_waves"
    require_positive_int(fn, "n", n)
    require_positive_int(fn, "steps", steps)
    _require_nonnegative(fn, "noise", noise)
    lo, hi = (float(p) for p in period)
    if not 0.0 < lo <= hi:
        raise ValueError(f"{fn}: argument 'period' must be (low, high) with 0 < low <= high, got {period!r}")
    g = _generator(fn, seed, rng)
    p = g.uniform(lo, hi, size=(n, 1))
    phi = g.uniform(0.0, 2 * np.pi, size=(n, 1))
    t = np.arange(steps + 1)[None, :]
    series = np.sin(2 * np.pi * t / p + phi) + noise * g.standard_normal((n, steps + 1))
    return series[:, :-1, None].copy(), series[:, 1:, None].copy()


def load_text(name: str = "lighthouse") -> str:
    """A short original English text (about 8,800 characters) for character-level models.

    ``"lighthouse"`` is the only text shipped: written for this course and released
    with it under the MIT licence (course_lib/datasets/README.md). Newlines are kept.
    """
    fn = "load_text"
    available = ("lighthouse",)
    if name not in available:
        raise ValueError(f"{fn}: argument 'name' must be one of {available}, got {name!r}")
    path = importlib.resources.files("course_lib").joinpath(f"{_DATASETS}/{name}.txt")
    return path.read_text(encoding="utf-8")


def char_vocab(text: str) -> tuple[dict[str, int], list[str]]:
    """The sorted set of characters in ``text``: ``stoi`` maps a character to its id, ``itos`` back."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"char_vocab: argument 'text' must be a non-empty str, got {text!r:.40}")
    itos = sorted(set(text))
    return {ch: i for i, ch in enumerate(itos)}, itos


def encode(text: str, stoi: dict[str, int]) -> np.ndarray:
    """Character ids of ``text``: (len(text),) int64."""
    try:
        return np.array([stoi[ch] for ch in text], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(
            f"encode: argument 'text' contains {exc.args[0]!r}, which is not in the vocabulary 'stoi'"
        ) from None


def decode(ids: Sequence[int] | np.ndarray, itos: Sequence[str]) -> str:
    """The text spelled by character ids (any integer sequence, array or 1-D tensor)."""
    flat = np.asarray(ids.tolist() if hasattr(ids, "tolist") else ids).reshape(-1)
    if flat.size and (not np.issubdtype(flat.dtype, np.integer) or flat.min() < 0 or flat.max() >= len(itos)):
        raise ValueError(
            f"decode: argument 'ids' must hold integers in [0, {len(itos)}), "
            f"got dtype {flat.dtype} with values {flat.min()}..{flat.max()}"
        )
    return "".join(itos[int(i)] for i in flat)

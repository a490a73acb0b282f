"""Re-verification on its own: trusted inputs, traps on the reference, judged outside."""

from __future__ import annotations

from pathlib import Path

import pytest

import tiny_checks
import tiny_refs
from autograder.execute import prepare_scratch
from autograder.sandbox import Limits, detect_protections
from autograder.verify import VerifyItem, run_verification

pytestmark = pytest.mark.slow
SETUP = "import numpy as np\nfrom tiny_checks import check_square, check_softsign, check_answer_lr"
SECRET = 987654


def _verify(tmp_path: Path, answer: str, exercise=tiny_checks.SQUARE, seeds=(0, 1, SECRET)):
    protections = detect_protections()
    scratch = tmp_path / "scratch"
    prepare_scratch(scratch, support=[Path(tiny_refs.__file__), Path(tiny_checks.__file__)], protections=protections)
    item = VerifyItem(exercise=exercise, answer=answer, seeds=tuple(seeds))
    limits = Limits(verify_timeout=5.0)
    return run_verification([item], setup=SETUP, scratch=scratch, hide=[], limits=limits, protections=protections)[
        exercise.name
    ]


def test_honest_answer_passes_every_seed(tmp_path: Path) -> None:
    verdict = _verify(tmp_path, "def square(x):\n    return x ** 2\n")
    assert verdict.seeds == {0: True, 1: True, SECRET: True} and not verdict.trapped


def test_reference_called_through_a_reload_is_trapped(tmp_path: Path) -> None:
    answer = (
        "import importlib, tiny_refs\n"
        "fresh = importlib.reload(tiny_refs)\n"
        "def square(x):\n    return fresh.reference_square(x)\n"
    )
    verdict = _verify(tmp_path, answer)
    # Recorded on the first call; any trapped call zeroes the exercise (pipeline._reconcile).
    assert verdict.trapped == ("tiny_refs.reference_square",)
    assert verdict.seeds[0] is False


def test_answers_memorised_for_the_notebook_seeds_fail_the_secret_seed(tmp_path: Path) -> None:
    # The answer looks the notebook's cases up (they are public) instead of computing.
    answer = (
        "import numpy as np\n_SEEN = {}\n"
        "from tiny_checks import SQUARE\n"
        "for _seed in (0, 1):\n"
        "    for _case in SQUARE.cases(_seed):\n"
        "        _SEEN[_case.args[0].tobytes()] = _case.args[0] * _case.args[0]\n"
        "def square(x):\n    return _SEEN.get(x.tobytes(), np.zeros_like(x))\n"
    )
    verdict = _verify(tmp_path, answer)
    assert verdict.seeds[0] and verdict.seeds[1] and not verdict.seeds[SECRET]


def test_answer_that_never_returns_times_out(tmp_path: Path) -> None:
    verdict = _verify(tmp_path, "def square(x):\n    while True:\n        pass\n")
    assert "timed out" in verdict.error and not any(verdict.seeds.values())


def test_always_equal_object_cannot_cross(tmp_path: Path) -> None:
    answer = "class E(float):\n    def __eq__(self, o): return True\ndef square(x):\n    return E(0.0)\n"
    verdict = _verify(tmp_path, answer)
    assert not any(verdict.seeds.values())
    assert "not numbers/arrays" in verdict.message

"""Checks for the graded exercises, one module per notebook (``nb01_perceptron`` ...).

A notebook's test cell calls one check per exercise, e.g.::

    from course_lib.checks.nb01_perceptron import check_neuron_forward
    check_neuron_forward(neuron_forward)

Each check compares the answer with course_lib's reference on deterministic,
non-trivial inputs and raises ``AssertionError`` with a message that teaches.
The registry (``_core``) lets the autograder re-verify the same exercises.
"""

from course_lib.checks._core import Case, Exercise, exercises, get, reference_judge, register, run_check

__all__ = ["Case", "Exercise", "exercises", "get", "reference_judge", "register", "run_check"]

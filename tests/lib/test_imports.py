"""Import hygiene: the NumPy path, data and plotting never load torch (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _fresh_python(code: str) -> dict:
    """Run ``code`` in a new interpreter; it must print one JSON line. Nothing may reach stderr."""
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "default"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_course_lib_and_np_ref_do_not_import_torch():
    result = _fresh_python(
        """
        import importlib, importlib.util, json, sys
        import course_lib, course_lib.np_ref
        from course_lib._api import API
        after_import = "torch" in sys.modules
        loaded = []
        # Every np_ref topic module that exists so far, and each of its API names it defines.
        for module in API:
            if importlib.util.find_spec(f"course_lib.np_ref.{module}") is None:
                continue
            mod = importlib.import_module(f"course_lib.np_ref.{module}")
            loaded += [name for name in API[module] if hasattr(mod, name)]
        print(json.dumps({"after_import": after_import, "after_access": "torch" in sys.modules,
                          "loaded": loaded}))
        """
    )
    assert result["after_import"] is False
    assert result["after_access"] is False, "a course_lib.np_ref module imported torch"
    # The check must have exercised real modules, not an empty loop.
    assert "relu" in result["loaded"] and "dense_forward" in result["loaded"]


def test_lazy_attribute_access_on_np_ref_does_not_import_torch():
    result = _fresh_python(
        """
        import json, sys
        import course_lib
        fns = [course_lib.np_ref.relu, course_lib.np_ref.sigmoid, course_lib.np_ref.dense_forward]
        print(json.dumps({"torch": "torch" in sys.modules, "n": len(fns)}))
        """
    )
    assert result == {"torch": False, "n": 3}


@pytest.mark.parametrize(
    "module",
    ["course_lib.data", "course_lib.plotting", "course_lib.device", "course_lib.validation",
     "course_lib.testing", "course_lib.gradcheck", "course_lib.torch_ref"],
)
def test_helper_modules_do_not_import_torch(module):
    result = _fresh_python(
        f"""
        import json, sys
        import {module}
        print(json.dumps({{"torch": "torch" in sys.modules}}))
        """
    )
    assert result == {"torch": False}, f"importing {module} loaded torch"


def test_data_and_plotting_work_without_torch():
    result = _fresh_python(
        """
        import json, sys
        import numpy as np
        from course_lib import data, plotting
        x, y = data.make_blobs(20)
        digits = data.load_digits()
        ax = plotting.plot_decision_boundary(lambda g: (g[:, 0] > 0).astype(np.int64), x, y, resolution=10)
        ax.figure.canvas.draw()
        print(json.dumps({"torch": "torch" in sys.modules, "n": len(digits.y_train)}))
        """
    )
    assert result["torch"] is False and result["n"] > 1000


def test_the_detector_sees_torch_when_it_is_imported():
    # Control: the check above would notice torch if a module did import it.
    assert _fresh_python(
        """
        import json, sys
        import course_lib.torch_ref.models
        print(json.dumps({"torch": "torch" in sys.modules}))
        """
    ) == {"torch": True}

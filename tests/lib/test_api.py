"""Every name of the API table exists in both back-ends with identical parameters.

All modules of ``course_lib._api.API`` are checked; a module missing from a back-end
fails here (it is not skipped), so a half-finished API cannot pass unnoticed.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from course_lib._api import API, NP_FAST

BACKENDS = ("course_lib.np_ref", "course_lib.torch_ref")


def _parameters(obj: object) -> list[tuple[str, str]]:
    """(name, kind) of each parameter: positional vs keyword-only matters to callers."""
    return [(p.name, p.kind.name) for p in inspect.signature(obj).parameters.values()]


@pytest.mark.parametrize("module", sorted(API))
def test_module_defines_every_name_with_one_signature(module):
    mods = {backend: importlib.import_module(f"{backend}.{module}") for backend in BACKENDS}
    for name in API[module]:
        for backend, mod in mods.items():
            assert hasattr(mod, name), f"{backend}.{module} does not define {name}"
            assert name in getattr(mod, "__all__", ()), f"{backend}.{module}.__all__ lacks {name!r}"
            assert callable(getattr(mod, name)), f"{backend}.{module}.{name} is not callable"
        np_params, torch_params = (_parameters(getattr(mods[b], name)) for b in BACKENDS)
        assert np_params == torch_params, (
            f"{module}.{name}: parameters differ between back-ends\n"
            f"  np_ref:    {np_params}\n  torch_ref: {torch_params}"
        )


@pytest.mark.parametrize("module", sorted(API))
@pytest.mark.parametrize("backend", BACKENDS)
def test_lazy_package_exports(backend, module):
    """``from course_lib.np_ref import relu`` resolves to the topic module's function, or for
    np_ref's speed-tuned names (``_api.NP_FAST``) to the function of the fast module."""
    package = importlib.import_module(backend)
    for name in API[module]:
        home = NP_FAST.get(name, module) if backend == "course_lib.np_ref" else module
        topic = importlib.import_module(f"{backend}.{home}")
        assert getattr(package, name) is getattr(topic, name), f"{backend}.{name} is not {home}.{name}"


def test_the_fast_modules_serve_only_np_ref_and_only_names_of_the_api() -> None:
    # Written out by hand: the six names the benchmarks time, from the two fast modules.
    assert NP_FAST == {
        "conv2d_forward": "fast_conv", "conv2d_backward": "fast_conv",
        "rnn_forward": "fast_recurrent", "rnn_backward": "fast_recurrent",
        "lstm_forward": "fast_recurrent", "lstm_backward": "fast_recurrent",
    }
    import course_lib.torch_ref as torch_ref
    from course_lib.torch_ref import conv as torch_conv

    assert torch_ref.conv2d_forward is torch_conv.conv2d_forward


def test_importing_np_ref_does_not_import_torch():
    # A fresh interpreter: this test process has torch loaded already.
    import subprocess
    import sys

    code = (
        "import sys, course_lib, course_lib.np_ref as R, course_lib.metrics\n"
        "from course_lib._api import API\n"
        "import importlib\n"
        "for m in API:\n"
        "    try: importlib.import_module('course_lib.np_ref.' + m)\n"
        "    except ImportError: pass\n"
        "print('torch' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "False", "importing course_lib.np_ref (or metrics) imported torch"

"""Static fallback: how the widgets decide there is no front end, and what they show then."""

from __future__ import annotations

import os
from pathlib import Path

import ipywidgets
import IPython
import nbformat
import pytest

from course_lib.widgets import learning_rate_explorer, playground
from course_lib.widgets._static import ENV_VAR, has_widget_frontend, resolve_static

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class FakeKernel:
    def __init__(self, metadata: dict) -> None:
        self._parent = {"header": {}, "metadata": metadata, "content": {}}

    def get_parent(self, channel: str = "shell") -> dict:
        return self._parent


class FakeShell:
    def __init__(self, kernel: FakeKernel | None) -> None:
        self.kernel = kernel


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setattr(ipywidgets.Widget, "_control_comm", None)
    return monkeypatch


def test_no_kernel_means_static(clean_env):
    clean_env.setattr(IPython, "get_ipython", lambda: None)
    assert not has_widget_frontend()
    clean_env.setattr(IPython, "get_ipython", lambda: FakeShell(None))  # terminal IPython: no kernel
    assert not has_widget_frontend()


def test_kernel_without_evidence_of_a_front_end_is_static(clean_env):
    # What nbclient / nbconvert --execute look like: execute requests with empty metadata.
    clean_env.setattr(IPython, "get_ipython", lambda: FakeShell(FakeKernel({})))
    assert not has_widget_frontend()


def test_jupyterlab_cell_id_means_interactive(clean_env):
    clean_env.setattr(IPython, "get_ipython", lambda: FakeShell(FakeKernel({"cellId": "abc", "deletedCells": []})))
    assert has_widget_frontend()


def test_server_session_or_control_comm_means_interactive(clean_env):
    clean_env.setattr(IPython, "get_ipython", lambda: FakeShell(FakeKernel({})))
    clean_env.setenv("JPY_SESSION_NAME", "/tmp/nb.ipynb")
    assert has_widget_frontend()
    clean_env.delenv("JPY_SESSION_NAME")
    clean_env.setattr(ipywidgets.Widget, "_control_comm", object())
    assert has_widget_frontend()


def test_environment_variable_overrides_detection(clean_env):
    clean_env.setattr(IPython, "get_ipython", lambda: FakeShell(FakeKernel({"cellId": "abc"})))
    clean_env.setenv(ENV_VAR, "static")
    assert not has_widget_frontend()
    clean_env.setattr(IPython, "get_ipython", lambda: None)
    clean_env.setenv(ENV_VAR, "interactive")
    assert has_widget_frontend()


def test_explicit_argument_wins(clean_env):
    clean_env.setenv(ENV_VAR, "interactive")
    assert resolve_static(True) is True
    clean_env.setenv(ENV_VAR, "static")
    assert resolve_static(False) is False
    with pytest.raises(ValueError, match="'static'"):
        resolve_static("yes")


def test_static_display_is_a_png_and_a_caption(clean_env, monkeypatch):
    shown: list = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    learning_rate_explorer(lr=5.0, static=True)._ipython_display_()
    assert [type(o).__name__ for o in shown] == ["Image", "Markdown"]
    assert shown[0].data[:4] == b"\x89PNG" and "diverged" in shown[1].data
    shown.clear()
    pg = playground(static=True)
    pg._ipython_display_()
    assert pg.epoch == 200  # the static picture shows a trained model
    assert [type(o).__name__ for o in shown] == ["Image", "Markdown"]


@pytest.mark.slow
def test_nbclient_execution_shows_static_figures_and_writes_no_stderr(tmp_path: Path, clean_env):
    """nbclient is the "no front end" case: PNGs, no widget views, nothing on stderr."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from course_lib.widgets import learning_rate_explorer, playground"),
        nbformat.v4.new_code_cell("learning_rate_explorer(lr=5.0)"),
        nbformat.v4.new_code_cell("playground(dataset='circles')"),
    ]
    env = {k: v for k, v in os.environ.items() if k not in (ENV_VAR, "JPY_SESSION_NAME")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)  # env reaches the kernel: no COURSE_WIDGETS / JPY_SESSION_NAME from outside
    for cell in nb.cells[1:]:
        kinds = [out.output_type for out in cell.outputs]
        assert "error" not in kinds, cell.outputs
        assert not [out for out in cell.outputs if out.output_type == "stream" and out.name == "stderr"], cell.outputs
        mimes = [m for out in cell.outputs for m in out.get("data", {})]
        assert "image/png" in mimes and WIDGET_MIME not in mimes, mimes
    assert "diverged" in nb.cells[1].outputs[1].data["text/markdown"]

"""course_lib.device.get_device: the default choice and the COURSE_DEVICE override."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from course_lib.device import get_device  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


@pytest.fixture(autouse=True)
def no_override(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)


@pytest.mark.skipif(HAS_CUDA or HAS_MPS, reason="an accelerator is present")
def test_cpu_when_there_is_no_accelerator():
    device = get_device()
    assert device == torch.device("cpu")
    assert torch.zeros(1, device=device).device.type == "cpu"


@pytest.mark.parametrize("value", ["cpu", " cpu "])
def test_course_device_cpu_forces_the_cpu(monkeypatch, value):
    monkeypatch.setenv("COURSE_DEVICE", value)
    assert get_device() == torch.device("cpu")


@pytest.mark.skipif(HAS_CUDA, reason="CUDA is available here")
@pytest.mark.parametrize("value", ["cuda", "cuda:0"])
def test_course_device_cuda_without_cuda_is_a_value_error(monkeypatch, value):
    monkeypatch.setenv("COURSE_DEVICE", value)
    with pytest.raises(ValueError, match="COURSE_DEVICE.*cuda"):
        get_device()


def test_course_device_that_is_not_a_device_is_a_value_error(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "gpu please")
    with pytest.raises(ValueError, match="COURSE_DEVICE='gpu please'"):
        get_device()


@pytest.mark.parametrize("value", ["", "  "])
def test_blank_course_device_means_no_override(monkeypatch, value):
    expected = get_device()  # the fixture removed COURSE_DEVICE
    monkeypatch.setenv("COURSE_DEVICE", value)
    assert get_device() == expected


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")
def test_cuda_is_preferred_and_can_be_requested(monkeypatch):  # pragma: no cover - needs a GPU
    assert get_device().type == "cuda"
    monkeypatch.setenv("COURSE_DEVICE", "cuda:0")
    device = get_device()
    assert device == torch.device("cuda:0")
    assert torch.ones(2, device=device).sum().item() == 2.0

import pytest

from tests.lib.support import backend_params, make_backend


@pytest.fixture(params=backend_params())
def backend(request):
    """Each course_lib test that takes `backend` runs on NumPy, torch CPU and (if present) CUDA."""
    return make_backend(request.param)

"""The pickle-free wire format: plain data crosses, anything with behaviour does not."""

from __future__ import annotations

import numpy as np
import pytest

from autograder.wire import WireError, dumps, loads


def test_round_trip_keeps_arrays_scalars_containers_and_generators() -> None:
    rng = np.random.default_rng(7)
    value = (np.arange(6.0).reshape(2, 3), {"lr": 0.1, "steps": [1, 2, None]}, np.float32(2.5), rng)
    back = loads(dumps(value))
    np.testing.assert_array_equal(back[0], value[0])
    assert back[1] == {"lr": 0.1, "steps": [1, 2, None]}
    assert float(back[2]) == 2.5
    assert back[3].normal() == np.random.default_rng(7).normal()


class _AlwaysEqual:
    def __eq__(self, other: object) -> bool:
        return True


class _SneakyInt(int):
    def __eq__(self, other: object) -> bool:
        return True


class _SneakyArray(np.ndarray):
    def __eq__(self, other: object) -> bool:  # type: ignore[override]
        return True


@pytest.mark.parametrize(
    "value",
    [_AlwaysEqual(), _SneakyInt(3), np.array([_AlwaysEqual()], dtype=object), [1, _AlwaysEqual()], lambda: 1],
    ids=["always-equal", "int-subclass", "object-array", "nested", "function"],
)
def test_values_with_behaviour_are_refused(value: object) -> None:
    with pytest.raises(WireError):
        dumps(value)


def test_ndarray_subclass_arrives_as_a_plain_array() -> None:
    arr = np.arange(3.0).view(_SneakyArray)
    back = loads(dumps(arr))
    assert type(back) is np.ndarray
    assert not np.array_equal(back, np.zeros(3))


def test_truncated_message_is_an_error() -> None:
    data = dumps(np.arange(100.0))
    with pytest.raises(WireError):
        loads(data[:-10])

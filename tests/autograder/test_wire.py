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


# ---------------------------------------------------------------- hardening (security item 10)

import json
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _message(tree: object, blobs: tuple[bytes, ...] = ()) -> bytes:
    """A message built by hand, the way hostile code in the sandbox could write one."""
    header = json.dumps({"tree": tree, "sizes": [len(b) for b in blobs]}).encode()
    return struct.pack(">Q", len(header)) + header + b"".join(blobs)


@pytest.mark.parametrize("name", ["default_rng", "seed", "RandomState", "__class__", "bit_generator", "SeedSequence"])
def test_generator_node_names_only_the_five_bit_generators(name: str) -> None:
    state = json.dumps(np.random.PCG64(1).state)
    with pytest.raises(WireError, match="unknown bit generator"):
        loads(_message({"t": "np_gen", "bit": name, "state": state}))


@pytest.mark.parametrize("bit", ["PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937"])
def test_each_allowed_bit_generator_round_trips(bit: str) -> None:
    rng = np.random.Generator(getattr(np.random, bit)(11))
    expected = np.random.Generator(getattr(np.random, bit)(11)).normal(size=3)
    np.testing.assert_array_equal(loads(dumps(rng)).normal(size=3), expected)


@pytest.mark.parametrize(
    "tree",
    [
        {"t": "np_gen", "bit": "PCG64", "state": "{}"},
        {"t": "np_gen", "bit": "PCG64", "state": json.dumps(np.random.MT19937(1).state, default=lambda a: a.tolist())},
        {"t": "np_gen", "bit": "PCG64"},
        {"t": "nd", "i": 3},
        {"t": "nd", "i": "0"},
        {"t": "dict", "k": ["a"], "v": []},
        {"t": "dict", "k": [1], "v": [{"t": "py", "v": 1}]},
        {"t": "tuple", "v": 5},
        {"t": "py", "v": {"a": 1}},
        {"t": "torch", "dtype": "load", "i": 0},
        {"t": "func", "path": "os:system"},
        {"t": "func", "path": "course_lib.np_ref.activations:__class__"},
        {"t": "nope"},
        [],
        "x",
        None,
    ],
    ids=lambda t: json.dumps(t)[:40],
)
def test_malformed_trees_raise_wire_error_only(tree: object) -> None:
    with pytest.raises(WireError):
        loads(_message(tree))


def test_object_arrays_and_bad_headers_raise_wire_error() -> None:
    with pytest.raises(WireError):  # header claims more bytes than there are
        loads(struct.pack(">Q", 10**12) + b"{}")
    with pytest.raises(WireError):
        loads(_message({"t": "nd", "i": 0}, (b"\x93NUMPY garbage",)))
    with pytest.raises(WireError):
        loads(struct.pack(">Q", 2) + b"[]")
    with pytest.raises(WireError):  # nested far deeper than any answer value
        loads(_message(json.loads('{"t": "list", "v": [' * 200 + "]}" * 200)))


_VALID = [
    dumps(np.arange(6.0).reshape(2, 3)),
    dumps({"lr": 0.1, "steps": [1, 2, None], "x": (np.float32(2.5), np.ones(2, dtype=bool))}),
    dumps(np.random.default_rng(5)),
    dumps([np.random.Generator(np.random.MT19937(3)), "text", -7]),
]


def _decodes_or_wire_error(data: bytes) -> None:
    try:
        loads(data)
    except WireError:
        pass  # the only exception allowed


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    _decodes_or_wire_error(data)
    _decodes_or_wire_error(struct.pack(">Q", len(data)) + data)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_VALID),
    st.lists(st.tuples(st.integers(min_value=0, max_value=4000), st.integers(min_value=0, max_value=255)), max_size=8),
    st.integers(min_value=0, max_value=4000),
)
def test_fuzz_mutated_valid_messages(message: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(message)
    for position, byte in flips:
        data[position % len(data)] = byte
    _decodes_or_wire_error(bytes(data))
    _decodes_or_wire_error(bytes(data[: len(data) - cut % len(data)]))


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.one_of(
            st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5),
            st.fixed_dictionaries({"t": st.sampled_from(["py", "nd", "np_gen", "torch", "func", "named", "dict", "list"])}),
        ),
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["t", "v", "k", "i", "bit", "state", "dtype", "cls", "path"]), inner, max_size=4)),
        max_leaves=20,
    )
)  # fmt: skip
def test_fuzz_json_trees(tree: object) -> None:
    _decodes_or_wire_error(_message(tree, (dumps(np.zeros(2))[8:],)))

"""Values across the sandbox boundary without pickle.

A value is sent as a JSON tree plus raw ``.npy`` blobs (``allow_pickle=False`` on
both sides), so an object from student code that "compares equal to anything", a
subclass with an overridden ``__eq__`` or anything with code attached cannot cross:
only plain numbers, strings, arrays of numbers and containers of those do.

Layout of ``dumps``: 8-byte big-endian header length, the JSON header, the blobs.
"""

from __future__ import annotations

import importlib
import io
import json
import re
import struct
import sys
from typing import Any

import numpy as np

__all__ = ["WireError", "dumps", "loads"]

_SCALARS = (bool, int, float, str, type(None))


class WireError(ValueError):
    """The value cannot be sent (an unsupported or suspicious type)."""


def _array(value: np.ndarray) -> np.ndarray:
    arr = np.array(value, copy=True).view(np.ndarray)  # drops any ndarray subclass
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise WireError(f"array of dtype {arr.dtype} (numbers expected)")
    return arr


def _encode(value: Any, blobs: list[bytes], depth: int = 0) -> Any:
    if depth > 20:
        raise WireError("value nested too deeply")
    kind = type(value)
    if kind in _SCALARS:
        return {"t": "py", "v": value}
    if isinstance(value, tuple) and hasattr(kind, "_fields"):  # NamedTuple (e.g. a layer cache)
        return {
            "t": "named",
            "cls": f"{kind.__module__}:{kind.__qualname__}",
            "v": [_encode(v, blobs, depth + 1) for v in value],
        }
    if kind in (tuple, list):
        return {"t": kind.__name__, "v": [_encode(v, blobs, depth + 1) for v in value]}
    if kind is dict:
        if not all(type(k) is str for k in value):
            raise WireError("dict keys must be strings")
        return {"t": "dict", "k": list(value), "v": [_encode(v, blobs, depth + 1) for v in value.values()]}
    if isinstance(value, np.ndarray) or (isinstance(value, np.generic) and kind.__module__ == "numpy"):
        return {"t": "nd", "i": _blob(_array(np.asarray(value)), blobs)}
    if kind is np.random.Generator:
        state = value.bit_generator.state
        name = type(value.bit_generator).__name__
        if name not in _BIT_GENERATORS:
            raise WireError(f"cannot send a generator driven by {name}")
        return {"t": "np_gen", "bit": name, "state": json.dumps(state, default=_plain)}
    torch = sys.modules.get("torch")
    if torch is not None:
        if kind in (torch.Tensor, torch.nn.Parameter):
            tensor = value.detach().cpu()
            dtype = str(tensor.dtype).removeprefix("torch.")
            if dtype == "bfloat16":
                tensor = tensor.float()
            return {"t": "torch", "dtype": dtype, "i": _blob(_array(tensor.numpy()), blobs)}
        if kind is torch.Generator:
            return {"t": "torch_gen", "i": _blob(value.get_state().numpy().copy(), blobs)}
    if (
        callable(value)
        and _trusted_callable(getattr(value, "__module__", "") or "", getattr(value, "__qualname__", ""))
        is value
    ):
        # a course_lib function passed as an argument (e.g. an activation): sent by name
        return {"t": "func", "path": f"{value.__module__}:{value.__qualname__}"}
    raise WireError(f"cannot send a value of type {kind.__module__}.{kind.__qualname__}")


def _plain(value: Any) -> Any:
    # MT19937 keeps its key as an array; JSON gets it as a list (its setter takes either).
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} in a generator state")


def _blob(arr: np.ndarray, blobs: list[bytes]) -> int:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    blobs.append(buf.getvalue())
    return len(blobs) - 1


def dumps(value: Any) -> bytes:
    blobs: list[bytes] = []
    tree = _encode(value, blobs)
    header = json.dumps({"tree": tree, "sizes": [len(b) for b in blobs]}).encode()
    return struct.pack(">Q", len(header)) + header + b"".join(blobs)


def loads(data: bytes, *, torch_tensors: bool = False) -> Any:
    """Decode ``dumps`` output. Tensors come back as NumPy arrays unless
    ``torch_tensors`` (the sandbox side, where answers expect tensors).

    ``data`` may come from student code: only the closed set of node types below is
    decoded, and any malformed input raises ``WireError`` (nothing else)."""
    try:
        return _loads(bytes(data), torch_tensors)
    except WireError:
        raise
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        OverflowError,
        RecursionError,
        struct.error,
        EOFError,
    ) as exc:
        raise WireError(f"malformed message ({type(exc).__name__})") from None


def _loads(data: bytes, torch_tensors: bool) -> Any:
    if len(data) < 8:
        raise WireError("truncated message")
    (n,) = struct.unpack(">Q", data[:8])
    if n > len(data) - 8:
        raise WireError("truncated header")
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError as exc:
        raise WireError(f"bad header: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("sizes"), list) or "tree" not in header:
        raise WireError("bad header: expected {tree, sizes}")
    arrays, offset = [], 8 + n
    for size in header["sizes"]:
        if type(size) is not int or size < 0:
            raise WireError("bad blob size")
        chunk = data[offset : offset + size]
        if len(chunk) != size:
            raise WireError("truncated message")
        try:
            arr = np.lib.format.read_array(io.BytesIO(chunk), allow_pickle=False)
        except Exception as exc:  # numpy parses the .npy header with tokenize/ast: any error
            raise WireError(f"bad array blob ({type(exc).__name__})") from None
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise WireError(f"array of dtype {arr.dtype} (numbers expected)")
        arrays.append(arr)
        offset += size
    return _decode(header["tree"], arrays, torch_tensors, 0)


# Named tuples are rebuilt only from course_lib's own classes; any other class (say, one
# defined in an answer cell) arrives as a plain tuple, so no student code runs here.


# A student-written message may name a module or class: only these forms are looked up.
_MODULE = re.compile(r"course_lib(\.[A-Za-z_][A-Za-z0-9_]*)+")
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")
_TORCH_DTYPES = frozenset({
    "float16", "float32", "float64", "complex64", "complex128",
    "int8", "int16", "int32", "int64", "uint8", "bool",
})  # fmt: skip
_MAX_DEPTH = 64


def _trusted_callable(module_name: str, qualname: str) -> Any:
    if not _MODULE.fullmatch(module_name) or not qualname.isidentifier() or qualname.startswith("_"):
        return None
    module = sys.modules.get(module_name)
    if module is None:
        try:
            module = importlib.import_module(module_name)
        except Exception:
            return None
    value = getattr(module, qualname, None)
    # Only what the module itself defines (what ``dumps`` sends), never what it imported.
    return value if getattr(value, "__module__", None) == module_name else None


def _trusted_class(path: str) -> type | None:
    cls = _trusted_callable(*path.partition(":")[::2])
    return cls if isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields") else None


def _field(node: dict, key: str, kind: type | tuple[type, ...]) -> Any:
    value = node.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise WireError(f"bad field {key!r} in a {node.get('t')!r} node")
    return value


def _array_at(node: dict, arrays: list[np.ndarray]) -> np.ndarray:
    index = _field(node, "i", int)
    if not 0 <= index < len(arrays):
        raise WireError("blob index out of range")
    return arrays[index]


def _decode(node: Any, arrays: list[np.ndarray], torch_tensors: bool, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise WireError("value nested too deeply")
    if not isinstance(node, dict):
        raise WireError("bad node")
    t = node.get("t")
    items = lambda: [_decode(v, arrays, torch_tensors, depth + 1) for v in _field(node, "v", list)]  # noqa: E731
    if t == "py":
        value = node.get("v")
        if type(value) not in _SCALARS:
            raise WireError("bad scalar")
        return value
    if t in ("tuple", "list"):
        return tuple(items()) if t == "tuple" else items()
    if t == "named":
        values = items()
        cls: Any = _trusted_class(_field(node, "cls", str))  # a NamedTuple class: it has _fields
        return cls(*values) if cls is not None and len(values) == len(cls._fields) else tuple(values)
    if t == "func":
        func = _trusted_callable(*_field(node, "path", str).partition(":")[::2])
        if func is None or not callable(func):
            raise WireError(f"unknown function {node['path'][:100]!r}")
        return func
    if t == "dict":
        keys, values = _field(node, "k", list), items()
        if len(keys) != len(values) or not all(type(k) is str for k in keys):
            raise WireError("bad dict node")
        return dict(zip(keys, values, strict=True))
    if t == "nd":
        return _array_at(node, arrays)
    if t == "np_gen":
        name = _field(node, "bit", str)
        if name not in _BIT_GENERATORS:  # never a student-chosen attribute of np.random
            raise WireError(f"unknown bit generator {name[:40]!r}")
        bit = getattr(np.random, name)()
        state = json.loads(_field(node, "state", str))
        if not isinstance(state, dict) or state.get("bit_generator") != name:
            raise WireError("bad generator state")
        bit.state = state
        return np.random.Generator(bit)
    if t == "torch":
        arr = _array_at(node, arrays)
        dtype = _field(node, "dtype", str)
        if dtype not in _TORCH_DTYPES:
            raise WireError(f"unknown tensor dtype {dtype[:40]!r}")
        if not torch_tensors:
            return arr
        import torch

        return torch.from_numpy(arr.copy()).to(getattr(torch, dtype))
    if t == "torch_gen":
        arr = _array_at(node, arrays)
        if arr.dtype != np.uint8 or arr.ndim != 1:
            raise WireError("bad torch generator state")
        import torch

        gen = torch.Generator()
        try:
            gen.set_state(torch.from_numpy(arr.copy()))
        except RuntimeError as exc:
            raise WireError(f"bad torch generator state ({exc})") from None
        return gen
    raise WireError(f"unknown node type {str(t)[:40]!r}")

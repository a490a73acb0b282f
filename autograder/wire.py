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
        return {"t": "named", "cls": f"{kind.__module__}:{kind.__qualname__}", "v": [_encode(v, blobs, depth + 1) for v in value]}
    if kind in (tuple, list):
        return {"t": kind.__name__, "v": [_encode(v, blobs, depth + 1) for v in value]}
    if kind is dict:
        if not all(type(k) is str for k in value):
            raise WireError("dict keys must be strings")
        return {"t": "dict", "k": list(value), "v": [_encode(v, blobs, depth + 1) for v in value.values()]}
    if isinstance(value, np.ndarray) or isinstance(value, np.generic) and kind.__module__ == "numpy":
        return {"t": "nd", "i": _blob(_array(np.asarray(value)), blobs)}
    if kind is np.random.Generator:
        state = value.bit_generator.state
        return {"t": "np_gen", "bit": type(value.bit_generator).__name__, "state": json.dumps(state)}
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
    if callable(value) and _trusted_callable(getattr(value, "__module__", "") or "", getattr(value, "__qualname__", "")) is value:
        # a course_lib function passed as an argument (e.g. an activation): sent by name
        return {"t": "func", "path": f"{value.__module__}:{value.__qualname__}"}
    raise WireError(f"cannot send a value of type {kind.__module__}.{kind.__qualname__}")


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
    ``torch_tensors`` (the sandbox side, where answers expect tensors)."""
    if len(data) < 8:
        raise WireError("truncated message")
    (n,) = struct.unpack(">Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError as exc:
        raise WireError(f"bad header: {exc}") from None
    arrays, offset = [], 8 + n
    for size in header["sizes"]:
        chunk = data[offset : offset + size]
        if len(chunk) != size:
            raise WireError("truncated message")
        arrays.append(np.lib.format.read_array(io.BytesIO(chunk), allow_pickle=False))
        offset += size
    return _decode(header["tree"], arrays, torch_tensors)


# Named tuples are rebuilt only from course_lib's own classes; any other class (say, one
# defined in an answer cell) arrives as a plain tuple, so no student code runs here.
TRUSTED_PREFIXES = ("course_lib.",)


def _trusted_callable(module_name: str, qualname: str) -> Any:
    if not module_name.startswith(TRUSTED_PREFIXES) or "." in qualname:
        return None
    module = sys.modules.get(module_name)
    if module is None:
        try:
            module = importlib.import_module(module_name)
        except Exception:
            return None
    return getattr(module, qualname, None)


def _trusted_class(path: str) -> type | None:
    cls = _trusted_callable(*path.partition(":")[::2])
    return cls if isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields") else None


def _decode(node: Any, arrays: list[np.ndarray], torch_tensors: bool) -> Any:
    t = node["t"]
    if t == "py":
        value = node["v"]
        if type(value) not in _SCALARS:
            raise WireError("bad scalar")
        return value
    if t in ("tuple", "list"):
        items = [_decode(v, arrays, torch_tensors) for v in node["v"]]
        return tuple(items) if t == "tuple" else items
    if t == "named":
        items = [_decode(v, arrays, torch_tensors) for v in node["v"]]
        cls = _trusted_class(str(node["cls"]))
        return cls(*items) if cls is not None and len(items) == len(cls._fields) else tuple(items)
    if t == "func":
        func = _trusted_callable(*str(node["path"]).partition(":")[::2])
        if func is None:
            raise WireError(f"unknown function {node['path']}")
        return func
    if t == "dict":
        return {str(k): _decode(v, arrays, torch_tensors) for k, v in zip(node["k"], node["v"], strict=True)}
    if t == "nd":
        return arrays[node["i"]]
    if t == "np_gen":
        bit = getattr(np.random, node["bit"])()
        bit.state = json.loads(node["state"])
        return np.random.Generator(bit)
    if t == "torch":
        arr = arrays[node["i"]]
        if not torch_tensors:
            return arr
        import torch

        return torch.from_numpy(arr.copy()).to(getattr(torch, node["dtype"]))
    if t == "torch_gen":
        import torch

        gen = torch.Generator()
        gen.set_state(torch.from_numpy(arrays[node["i"]].copy()))
        return gen
    raise WireError(f"unknown node type {t!r}")

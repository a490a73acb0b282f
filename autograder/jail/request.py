"""What the trusted side tells a sandbox helper: one typed request, one encoding.

The grader builds one ``JailRequest`` per sandbox; ``autograder.template.launch`` starts
it (warm: the object is sent to the template as ``encode()`` text and handed to the
helper's ``main`` decoded; cold: ``sandbox.sandbox_argv`` puts the same text on the
command line of ``python -m <helper>``, whose ``__main__`` decodes it). ``decode``
is the only reader: whatever arrives from the other side of a pipe or a command line
is checked field by field, and a bad one is named.

This is the only module of ``autograder.jail`` the trusted side imports. It holds
nothing but the contract both sides share: the helpers' module names (``Helper``),
the request, the warm fork's context (``WarmFork``), the descriptor the re-verification
child writes its progress lines to (``EVIDENCE_FD``) and the time one exercise gets
(``exercise_seconds``).
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder.limits import Limits, Protections

__all__ = [
    "EVIDENCE_FD",
    "Helper",
    "JailRequest",
    "JailRequestError",
    "WarmFork",
    "exercise_seconds",
    "request_from_argv",
]

EVIDENCE_FD = 1000  # in a re-verification child: progress lines, and the view's "W name" lines


class Helper(enum.Enum):
    """The sandbox helpers: the only mains a sandbox runs (as pid 1 of its namespaces)."""

    EXECUTE = "autograder.jail.execute"  # runs the notebook's kernel cell by cell
    VERIFY = "autograder.jail.verify"  # re-verifies each exercise in a fresh child

    @property
    def module(self) -> str:
        """The module ``python -m`` runs (and the warm template imports)."""
        return self.value


class JailRequestError(ValueError):
    """A request that is not well formed; the message names the bad field."""


@dataclass(frozen=True)
class JailRequest:
    """One sandbox: which helper, the job's scratch folder (as the host sees it), the host
    paths covered inside the jail (``hide``), its limits and the protections in force."""

    helper: Helper
    scratch: Path
    limits: Limits
    protections: Protections
    hide: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.helper, Helper):
            known = ", ".join(h.module for h in Helper)
            raise JailRequestError(f"helper: {self.helper!r} is not a sandbox helper ({known})")
        if not isinstance(self.scratch, Path):
            raise JailRequestError(f"scratch: must be a Path, got {type(self.scratch).__name__}")
        if not isinstance(self.limits, Limits):
            raise JailRequestError(f"limits: must be a limits.Limits, got {type(self.limits).__name__}")
        if not isinstance(self.protections, Protections):
            raise JailRequestError(
                f"protections: must be a limits.Protections, got {type(self.protections).__name__}"
            )
        hide = tuple(self.hide)
        if not all(isinstance(p, Path) for p in hide):
            raise JailRequestError("hide: every entry must be a Path")
        object.__setattr__(self, "hide", hide)

    def encode(self) -> str:
        """The request as one JSON text (``decode`` reads it back)."""
        return json.dumps(
            {
                "helper": self.helper.value,
                "scratch": str(self.scratch),
                "hide": [str(p) for p in self.hide],
                "limits": dataclasses.asdict(self.limits),
                "protections": dataclasses.asdict(self.protections),
            },
            sort_keys=True,
        )

    @classmethod
    def decode(cls, text: str | bytes) -> JailRequest:
        """The request ``encode`` wrote; raises ``JailRequestError`` naming the first bad field."""
        try:
            data = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise JailRequestError(f"not a JSON request: {exc}") from None
        if not isinstance(data, dict):
            raise JailRequestError(f"not a JSON object but {type(data).__name__}")
        expected = {"helper", "scratch", "hide", "limits", "protections"}
        _same_keys("request", data, expected)
        helpers = {h.value: h for h in Helper}
        if data["helper"] not in helpers:
            raise JailRequestError(
                f"helper: {str(data['helper'])[:80]!r} is not a sandbox helper ({', '.join(helpers)})"
            )
        if not isinstance(data["scratch"], str) or not data["scratch"]:
            raise JailRequestError("scratch: must be a non-empty path string")
        hide = data["hide"]
        if not isinstance(hide, list) or not all(isinstance(p, str) and p for p in hide):
            raise JailRequestError("hide: must be a list of non-empty path strings")
        return cls(
            helper=helpers[data["helper"]],
            scratch=Path(data["scratch"]),
            hide=tuple(Path(p) for p in hide),
            limits=Limits(**_fields("limits", Limits, data["limits"])),
            protections=Protections(**_fields("protections", Protections, data["protections"])),
        )


def request_from_argv(argv: list[str]) -> JailRequest:
    """A cold helper's command line, ``python -m <helper> <request>``: its one argument decoded."""
    if len(argv) != 1:
        raise JailRequestError(
            f"a sandbox helper takes one argument, the encoded request ({len(argv)} given)"
        )
    return JailRequest.decode(argv[0])


# limits.py uses ``from __future__ import annotations``: field types are their source text.
_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _same_keys(where: str, data: dict[str, Any], expected: set[str]) -> None:
    missing, extra = sorted(expected - data.keys()), sorted(set(data) - expected)
    if missing:
        raise JailRequestError(f"{where}: missing field {missing[0]!r}")
    if extra:
        raise JailRequestError(f"{where}: unknown field {str(extra[0])[:80]!r}")


def _fields(where: str, kind: type, data: object) -> dict[str, Any]:
    """``data`` checked against the dataclass ``kind``: every field present, of its type."""
    if not isinstance(data, dict):
        raise JailRequestError(f"{where}: must be an object, got {type(data).__name__}")
    fields = {f.name: str(f.type) for f in dataclasses.fields(kind)}
    _same_keys(where, data, set(fields))
    for name, type_name in fields.items():
        value, allowed = data[name], _TYPES.get(type_name)
        if allowed is None:  # a field type this decoder was not taught: the grader's own bug
            raise TypeError(f"{where}.{name}: no decoder for the field type {type_name!r}")
        # bool is an int to isinstance; a flag is never a size and a size never a flag.
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise JailRequestError(f"{where}.{name}: must be {type_name}, got {value!r:.80}")
    return dict(data)


@dataclass(frozen=True)
class WarmFork:
    """What a helper forked from the warm template (``autograder.template``) needs of the
    template: nothing of it is on the command line, it is in the fork's memory already.
    ``site_paths``: the interpreter's own ``sys.path`` (stdlib, site-packages, hooks),
    without the script folder and PYTHONPATH; ``import_env``: variables the template's
    imports set for themselves (debugpy's), which a kernel importing them would set too."""

    site_paths: tuple[str, ...]
    import_env: tuple[tuple[str, str], ...] = ()


def exercise_seconds(limits: Limits) -> float:
    """Wall time of one exercise's re-verification: at least what the notebook gave a
    cell, so a value answer from a run the notebook allowed can be replayed."""
    return max(limits.verify_timeout, limits.cell_timeout)

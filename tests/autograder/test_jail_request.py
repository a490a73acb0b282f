"""The jail's one argument object (``autograder.jail.request``): its encoding read back
whole, and every malformed field refused with its name — on the command line of a cold
helper, of the warden, and on the template's socket."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.jail.request import (
    Helper,
    JailRequest,
    JailRequestError,
    request_from_argv,
)
from autograder.limits import Limits, Protections

FULL = Protections(True, True, True, ipc_namespace=True, own_uid=True, cgroup="v2", scratch_tmpfs=True, fresh_keyrings=True)
BARE = Protections(namespaces=False, unprivileged_user=False, rlimits=True)


def _request(**changes: object) -> JailRequest:
    fields: dict = dict(
        helper=Helper.VERIFY,
        scratch=Path("/srv/job/7"),
        limits=Limits(cell_timeout=12.5, tree_processes=9),
        protections=FULL,
        hide=(Path("/srv/course/solutions"), Path("/srv/gradebook.db")),
    )
    fields.update(changes)
    return JailRequest(**fields)


def _encoded(**changes: object) -> str:
    """A valid encoded request with some fields replaced (``None`` removes one)."""
    data = json.loads(_request().encode())
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        target = data
        for key in path:
            target = target[key]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return json.dumps(data)


@pytest.mark.parametrize("helper", list(Helper))
@pytest.mark.parametrize("protections", [FULL, BARE])
def test_a_request_reads_back_as_the_same_request(helper: Helper, protections: Protections) -> None:
    request = _request(helper=helper, protections=protections)
    assert JailRequest.decode(request.encode()) == request
    assert request_from_argv([request.encode()]) == request


def test_the_encoding_carries_each_field_as_written() -> None:
    data = json.loads(_request().encode())
    assert data["helper"] == "autograder.jail.verify"
    assert data["scratch"] == "/srv/job/7"
    assert data["hide"] == ["/srv/course/solutions", "/srv/gradebook.db"]
    assert data["limits"]["cell_timeout"] == 12.5 and data["limits"]["tree_processes"] == 9
    assert data["limits"]["memory_bytes"] == 3 * 1024**3  # a default, written out too
    assert data["protections"]["cgroup"] == "v2" and data["protections"]["own_uid"] is True


def test_hide_is_kept_as_a_tuple_of_paths() -> None:
    request = _request(hide=[Path("/a"), Path("/b")])
    assert request.hide == (Path("/a"), Path("/b"))


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("not json", "not a JSON request"),
        ("[1, 2]", "not a JSON object"),
        (_encoded(scratch=None), "missing field 'scratch'"),
        (_encoded(extra="x"), "unknown field 'extra'"),
        (_encoded(helper="os"), "helper: 'os' is not a sandbox helper"),
        (_encoded(helper="autograder.execute"), "not a sandbox helper"),  # the old, trusted module
        (_encoded(scratch=""), "scratch: must be a non-empty path string"),
        (_encoded(scratch=3), "scratch: must be a non-empty path string"),
        (_encoded(hide="/srv/course"), "hide: must be a list"),
        (_encoded(hide=["/a", 5]), "hide: must be a list"),
        (_encoded(limits=[]), "limits: must be an object"),
        (_encoded(limits__cell_timeout="60"), "limits.cell_timeout: must be float"),
        (_encoded(limits__memory_bytes=1.5), "limits.memory_bytes: must be int"),
        (_encoded(limits__memory_bytes=True), "limits.memory_bytes: must be int"),
        (_encoded(limits__processes=None), "limits: missing field 'processes'"),
        (_encoded(limits__swap=1), "limits: unknown field 'swap'"),
        (_encoded(protections__namespaces=1), "protections.namespaces: must be bool"),
        (_encoded(protections__cgroup=False), "protections.cgroup: must be str"),
    ],
)
def test_a_malformed_request_is_refused_naming_the_field(text: str, named: str) -> None:
    with pytest.raises(JailRequestError) as caught:
        JailRequest.decode(text)
    assert named in str(caught.value)


def test_a_whole_number_is_a_float_field_as_json_writes_it() -> None:
    assert JailRequest.decode(_encoded(limits__cell_timeout=60)).limits.cell_timeout == 60


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"helper": "autograder.jail.execute"}, "helper: 'autograder.jail.execute' is not a sandbox helper"),
        ({"scratch": "/srv/job"}, "scratch: must be a Path"),
        ({"limits": {"cell_timeout": 1.0}}, "limits: must be a limits.Limits"),
        ({"protections": None}, "protections: must be a limits.Protections"),
        ({"hide": ["/srv/course"]}, "hide: every entry must be a Path"),
    ],
)
def test_the_constructor_refuses_fields_of_the_wrong_type(changes: dict, named: str) -> None:
    with pytest.raises(JailRequestError) as caught:
        _request(**changes)
    assert named in str(caught.value)


@pytest.mark.parametrize("argv", [[], ["{}", "--extra"]])
def test_a_helper_takes_exactly_one_argument(argv: list[str]) -> None:
    with pytest.raises(JailRequestError, match=f"one argument, the encoded request \\({len(argv)} given\\)"):
        request_from_argv(argv)


@pytest.mark.parametrize("helper", list(Helper))
def test_every_helper_is_a_module_with_a_main(helper: Helper) -> None:
    assert callable(importlib.import_module(helper.module).main)


@pytest.mark.parametrize("helper", list(Helper))
def test_a_cold_helper_refuses_a_bad_request_before_doing_anything(helper: Helper, tmp_path: Path) -> None:
    bad = _encoded(limits__cell_timeout="soon", scratch=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", helper.module, bad], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "limits.cell_timeout: must be float" in proc.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was written into the scratch


def test_the_warden_refuses_a_bad_request() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "autograder.warden", _encoded(protections__own_uid="yes"), "--", "true"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "protections.own_uid: must be bool" in proc.stderr


def test_the_template_reads_an_order_only_through_the_request_decoder() -> None:
    from autograder.template import _Order

    good = _request()
    order = _Order.read(json.dumps({"request": good.encode(), "env": {"PATH": "/usr/bin"}}).encode())
    assert order.request == good and order.env == {"PATH": "/usr/bin"}
    assert _Order.read(json.dumps({"request": good.encode(), "env": None}).encode()).env is None
    with pytest.raises(ValueError, match="helper: 'os' is not a sandbox helper"):
        _Order.read(json.dumps({"request": _encoded(helper="os"), "env": None}).encode())
    with pytest.raises(ValueError, match="expected the fields request and env"):
        _Order.read(json.dumps({"module": "autograder.jail.execute", "args": []}).encode())
    with pytest.raises(ValueError, match="env: must be null or an object of strings"):
        _Order.read(json.dumps({"request": good.encode(), "env": {"PATH": 1}}).encode())


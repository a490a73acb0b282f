"""Kernel keyrings of a sandbox uid: what student code can leave behind in the kernel.

The kernel keeps a *user* keyring (and a user-session keyring, and on some kernels a
persistent keyring) per uid for as long as the machine runs, so keys added by one
submission would be readable by the next one leased the same uid. A process also
inherits its parent's session keyring, which for a root helper may be shared with
the host. So: student code joins a fresh anonymous session keyring and starts with
its uid's keyrings cleared (``fresh_session``), and the warden clears them again after
the sandbox is gone (``clear_for_uid``), leaving nothing in the host's kernel.

Only the ``add_key``/``keyctl`` system calls are used (no ``keyutils`` package).
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["KeyringError", "add_key", "clear_for_uid", "fresh_session", "keyring_keys", "supported"]

# System call numbers differ by architecture (no glibc wrapper for either call).
_SYSCALLS = {"x86_64": (248, 250), "aarch64": (217, 219)}  # (add_key, keyctl)

KEY_SPEC_SESSION_KEYRING = -3
KEY_SPEC_USER_KEYRING = -4
KEY_SPEC_USER_SESSION_KEYRING = -5
_KEYCTL_GET_KEYRING_ID = 0
_KEYCTL_JOIN_SESSION_KEYRING = 1
_KEYCTL_CLEAR = 7
_KEYCTL_READ = 11
_KEYCTL_INVALIDATE = 21
_KEYCTL_GET_PERSISTENT = 22


class KeyringError(OSError):
    """A keyctl/add_key call failed."""


def supported() -> bool:
    """Whether this machine has the keyring system calls and lets this process use
    them (a container's seccomp filter may refuse them)."""
    if platform.machine() not in _SYSCALLS or os.uname().sysname != "Linux":
        return False
    try:
        _keyctl(_KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0)
    except KeyringError:
        return False
    return True


def _call(number_index: int, *args: object) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    number = _SYSCALLS[platform.machine()][number_index]
    result = libc.syscall(ctypes.c_long(number), *args)
    if result < 0:
        err = ctypes.get_errno()
        raise KeyringError(err, os.strerror(err))
    return int(result)


def _keyctl(op: int, *args: int) -> int:
    return _call(1, ctypes.c_long(op), *(ctypes.c_long(a) for a in args))


def add_key(description: str, payload: bytes, keyring: int = KEY_SPEC_USER_KEYRING) -> int:
    """Add a ``user`` key to ``keyring`` (default: the caller's user keyring); its serial."""
    return _call(
        0, b"user", description.encode(), payload, ctypes.c_size_t(len(payload)), ctypes.c_long(keyring)
    )


def keyring_keys(keyring: int = KEY_SPEC_USER_KEYRING) -> list[int]:
    """Serials of the keys linked in ``keyring`` (one of the caller's special keyrings)."""
    buffer = ctypes.create_string_buffer(4096)
    size = _call(1, ctypes.c_long(_KEYCTL_READ), ctypes.c_long(keyring), buffer, ctypes.c_size_t(len(buffer)))
    raw = buffer.raw[: min(size, len(buffer))]
    return [int.from_bytes(raw[i : i + 4], "little", signed=True) for i in range(0, len(raw), 4)]


def _clear_own() -> None:
    """Clear the calling uid's user, user-session and persistent keyrings."""
    for keyring in (KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING):
        _keyctl(_KEYCTL_CLEAR, keyring)
    try:  # persistent keyrings exist only with CONFIG_PERSISTENT_KEYRINGS
        persistent = _keyctl(_KEYCTL_GET_PERSISTENT, -1, KEY_SPEC_SESSION_KEYRING)
    except KeyringError:
        return
    _keyctl(_KEYCTL_CLEAR, persistent)
    # Getting it created it if it was not there; invalidated, it does not linger for days.
    _keyctl(_KEYCTL_INVALIDATE, persistent)


def fresh_session() -> None:
    """As the sandbox uid (after the privilege drop): a new, empty anonymous session
    keyring instead of the one inherited from root, and the uid's own keyrings emptied.
    Raises KeyringError where the calls are refused."""
    _call(1, ctypes.c_long(_KEYCTL_JOIN_SESSION_KEYRING), None)
    _clear_own()


def clear_for_uid(uid: int) -> bool:
    """As root: empty ``uid``'s user, user-session and persistent keyrings (in a forked
    child that becomes ``uid``, since a keyring belongs to its uid). True on success."""
    if not supported():
        return False
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            _call(1, ctypes.c_long(_KEYCTL_JOIN_SESSION_KEYRING), None)  # never touch root's session
            _clear_own()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0

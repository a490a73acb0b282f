"""Removing whatever a student can leave in a scratch directory, without fail.

``shutil.rmtree`` recurses (a 3,000-deep tree raises RecursionError), follows full
paths (past PATH_MAX they cannot even be named) and stops at a read-only directory.
``remove_tree`` walks with directory file descriptors and an explicit stack instead.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["remove_tree"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything under it: deep trees, read-only directories,
    files with odd modes, fifos, sockets, names with newlines; symlinks are removed,
    never followed. Never raises; what cannot be removed (a mount point, say) is left."""
    try:
        _remove(Path(path))
    except Exception:
        pass


def _remove(path: Path) -> None:
    try:
        info = os.lstat(path)
    except OSError:
        return
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(path)
        return
    _chmod_dir(str(path), None)
    fd = os.open(path, _DIR_FLAGS)
    # One open fd at a time: the way back up is "..", the names on the way down are
    # kept in ``trail``; ``skip[i]`` holds what could not be removed at depth i.
    trail: list[str] = []
    skip: list[set[str]] = [set()]
    try:
        while True:
            child = _first_child(fd, skip[-1])
            if child is not None:
                name, is_dir = child
                if not is_dir:
                    try:
                        os.unlink(name, dir_fd=fd)
                    except OSError:
                        skip[-1].add(name)
                    continue
                try:
                    _chmod_dir(name, fd)
                    sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    skip[-1].add(name)
                    continue
                os.close(fd)
                fd = sub
                trail.append(name)
                skip.append(set())
                continue
            if not trail:
                break
            name = trail.pop()
            skip.pop()
            parent = os.open("..", _DIR_FLAGS & ~os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = parent
            try:
                os.rmdir(name, dir_fd=fd)
            except OSError:
                skip[-1].add(name)
    finally:
        os.close(fd)
    try:
        os.rmdir(path)
    except OSError:
        pass


def _first_child(fd: int, skip: set[str]) -> tuple[str, bool] | None:
    """One entry of the directory ``fd`` not in ``skip``: (name, is a real directory)."""
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.name not in skip:
                try:
                    return entry.name, entry.is_dir(follow_symlinks=False)
                except OSError:
                    return entry.name, False
    return None


def _chmod_dir(name: str, dir_fd: int | None) -> None:
    """Make a directory listable and writable (a student may have left it 000); root
    needs none of this, an unprivileged grader does."""
    try:
        os.chmod(name, 0o700, dir_fd=dir_fd)
    except OSError:
        pass

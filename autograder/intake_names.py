"""Who a submitted folder or file belongs to, as the LMS named it, and the student's safe key.

Canvas, Moodle, Blackboard and Gradescope name their downloads each their own way;
``identify`` reads the student from such a name, ``safe_key`` makes the key a student is
graded under (ASCII, the LMS id kept, a stable hash of a name that is not ASCII), and
``assign_keys`` keeps keys that would collide apart. Part of the intake (``autograder.intake``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["Identity", "assign_keys", "identify", "lms_file_name", "readable_name", "safe_key"]


_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.@-]+")
_MAX_KEY = 64


# ---------------------------------------------------------------------------------------
# Who a folder or file belongs to, as the LMS named it.

_MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assign(?:submission|feedback)_[a-z]+_?(?P<rest>.*)$")
_CANVAS = re.compile(r"^(?P<name>[^_]+?)(?:_LATE)?_(?P<id>\d+)_(?P<sub>\d+)_(?P<rest>.+)$")
# The first "_<user>_attempt_<date>" names the student (the assignment name is
# Blackboard's); what follows is the student's own file name and may contain anything.
_BLACKBOARD = re.compile(
    r"^(?P<assign>.+?)_(?P<name>[^_]+)_attempt_(?P<date>\d{4}(?:-\d{2}){5})(?:_(?P<rest>.+))?$"
)
_GRADESCOPE = re.compile(r"^submission_(?P<id>\d+)$")


@dataclass(frozen=True)
class Identity:
    """One student as the LMS gave them: ``origin`` tells students apart, ``display`` is shown."""

    display: str  # the name exactly as given, non-ASCII kept
    lms_id: str = ""  # the LMS's id or username, "" when the name carries none
    lms: Literal["moodle", "canvas", "blackboard", "gradescope", ""] = ""

    @property
    def origin(self) -> str:
        return f"{self.lms}:{self.lms_id}" if self.lms_id else f"name:{self.display}"


def readable_name(name: str) -> str:
    """A file name as text: bytes that were not UTF-8 (os.listdir keeps them as lone
    surrogates, e.g. "Jos\\udce9" from a cp1252 zip) decoded as cp1252, the LMSs' usual
    legacy encoding, so that a name can be stored, written to a CSV and shown."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        raw = name.encode("utf-8", "surrogateescape")
        return raw.decode("cp1252", errors="replace")


def identify(name: str, *, folder: bool) -> tuple[Identity, str] | None:
    """(student, the file's own name) for an entry of the submissions root; None if no student.

    A folder is always a student; a flat file needs an LMS prefix, or the legacy
    ``<student>_<anything>.ipynb`` form.
    """
    name = readable_name(name)
    if m := _MOODLE.match(name):
        return Identity(m["name"], m["id"], "moodle"), m["rest"]
    if folder:
        if m := _GRADESCOPE.match(name):
            return Identity(name, name, "gradescope"), ""
        return Identity(name), ""
    if m := _CANVAS.match(name):
        return Identity(m["name"], m["id"], "canvas"), m["rest"]
    if m := _BLACKBOARD.match(name):
        return Identity(m["name"], m["name"], "blackboard"), m["rest"] or ""
    if name.endswith(".ipynb") and "_" in name and not name.startswith("_"):
        return Identity(name.split("_", 1)[0]), name
    return None


def lms_file_name(name: str) -> str:
    """The name the student gave a file, without an LMS's flat-download prefix."""
    found = identify(name, folder=False)
    return found[1] if found is not None and found[1] else name


def _slug(text: str) -> str:
    # Accents are dropped by decomposition only; other scripts leave nothing, and the hash
    # added by ``safe_key`` keeps such students apart.
    ascii_only = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _KEY_CHARS.sub("_", ascii_only).strip("._-")[:_MAX_KEY].strip("._-")


def _short_hash(text: str) -> str:
    # NFC first: one name in composed or decomposed form (macOS zips) hashes alike
    return hashlib.sha256(unicodedata.normalize("NFC", text).encode("utf-8", "surrogateescape")).hexdigest()[
        :8
    ]


def safe_key(identity: Identity) -> str:
    """An ASCII file-name-safe key: the name itself when already safe, else slug + id or hash."""
    slug = _slug(identity.display)
    if identity.lms_id:
        lms_id = _slug(identity.lms_id) or _short_hash(identity.lms_id)
        return lms_id if slug == lms_id else f"{slug or 'student'}_{lms_id}"
    if slug == identity.display:
        return slug
    return f"{slug or 'student'}-{_short_hash(identity.display)}"


def assign_keys(identities: Iterable[Identity]) -> dict[Identity, str]:
    """Distinct identities -> distinct keys (case-insensitively, for case-folding file systems)."""
    keys = {ident: safe_key(ident) for ident in identities}
    for _ in range(2):
        groups: dict[str, list[Identity]] = {}
        for ident, key in keys.items():
            groups.setdefault(key.casefold(), []).append(ident)
        clashes = [group for group in groups.values() if len(group) > 1]
        if not clashes:
            return keys
        for group in clashes:
            for ident in group:
                keys[ident] = f"{keys[ident]}-{_short_hash(ident.origin)}"
    # Only a hash collision or a deliberately crafted name gets here: number them in a stable order.
    taken: set[str] = set()
    for ident in sorted(keys, key=lambda i: i.origin):
        key, n = keys[ident], 1
        while key.casefold() in taken:
            n += 1
            key = f"{keys[ident]}-{n}"
        keys[ident] = key
        taken.add(key.casefold())
    return keys

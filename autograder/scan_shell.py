"""Shell command lines, as the tampering scan reads them: the path operands and which way each
is touched (``READ``, ``WRITE`` or ``BOTH``), never a package name or a pattern.

``!cp a b`` reads ``a`` and writes ``b``; ``pip install --target DIR`` writes ``DIR``;
the pattern of ``grep PATTERN FILE`` is no path. Separators (``|``, ``&&``, ``;``), redirections
and command prefixes (``sudo``, ``env``...) are followed; unbalanced quotes fall back to
words as the eye sees them.
"""

from __future__ import annotations

import shlex

from autograder.scan_rules import BOTH, READ, WRITE

__all__ = ["shell_paths", "shell_words"]


_SEPARATORS = frozenset({"|", "||", "&", "&&", ";", ";;", "(", ")", "|&"})
_REDIRECT_OUT = frozenset({">", ">>", ">|", "&>", "&>>", "<>"})
_PREFIXES = frozenset({"sudo", "env", "command", "exec", "nohup", "time", "nice", "xargs"})
_WRITES_ALL = frozenset(
    [
        "rm",
        "rmdir",
        "mkdir",
        "touch",
        "tee",
        "mv",
        "ln",
        "chmod",
        "chown",
        "chgrp",
        "truncate",
        "shred",
        "unlink",
        "save",
    ]
)
_COPIES = frozenset({"cp", "rsync", "scp", "install"})  # last operand written, the others read
_PACKAGERS = frozenset({"pip", "pip3", "conda", "mamba", "micromamba", "uv"})
_INSTALL_TARGETS = frozenset({"--target", "-t", "--prefix", "--root", "--src", "-p"})
_PATTERN_FIRST = frozenset({"grep", "egrep", "fgrep", "rg", "ag", "awk", "sed"})


def shell_words(line: str) -> list[str]:
    """``line`` split as a POSIX shell would, operators (``|``, ``;``, ``>``...) as words of their own."""
    try:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        return list(lexer)
    except ValueError:  # unbalanced quotes: words as the eye sees them
        return line.split()


def shell_paths(command: str) -> list[tuple[str, str]]:
    """The path operands of a shell command line and which way each is touched.

    A name is a path only as an operand: redirection targets, the operands of file
    commands (``cp``, ``mv``, ``rm``, ``tee``, ``sed -i``...), an install target
    (``pip install --target``), or any word with a ``/``. Package names after ``pip`` or
    ``conda`` and patterns after ``grep`` are not paths.
    """
    found: list[tuple[str, str]] = []
    for line in command.splitlines():
        segment: list[str] = []
        for word in [*shell_words(line), ";"]:
            if word not in _SEPARATORS:
                segment.append(word)
                continue
            found.extend(_segment_paths(segment))
            segment = []
    return found


def _segment_paths(words: list[str]) -> list[tuple[str, str]]:
    """The path operands of one simple command (no pipes or separators)."""
    found: list[tuple[str, str]] = []
    operands: list[str] = []
    redirect: str | None = None  # the way the next word is touched, after > or <
    for index, word in enumerate(words):
        if redirect is not None:
            found.append((word, redirect))
            redirect = None
        elif word in _REDIRECT_OUT or word == "<":
            redirect = READ if word == "<" else WRITE
        elif not (word.isdigit() and words[index + 1 : index + 2] and words[index + 1] in _REDIRECT_OUT):
            operands.append(word)  # (a digit before > is the descriptor of "2> file")
    first = next(
        (i for i, w in enumerate(operands) if not (w in _PREFIXES or ("=" in w and not w.startswith("-")))),
        None,
    )
    if first is None:  # only VAR=value, sudo, env ...
        return found
    operands = operands[first:]
    name, rest = operands[0].rsplit("/", 1)[-1], operands[1:]
    if name.startswith("python") and rest[:2] == ["-m", "pip"]:
        name, rest = "pip", rest[2:]
    if name in _PACKAGERS:
        for option, value in zip(rest, [*rest[1:], ""], strict=True):
            if option.split("=")[0] in _INSTALL_TARGETS:
                found.append((option.split("=", 1)[1] if "=" in option else value, WRITE))
            elif "/" in option:
                found.append((option, READ))  # -r requirements/dev.txt, ./wheel.whl
        return found
    files = [w.split("=", 1)[-1] for w in rest if not w.startswith("-") or "=" in w]
    if name == "dd":
        found.extend(
            (w[3:], WRITE if w.startswith("of=") else READ) for w in rest if w.startswith(("if=", "of="))
        )
    elif name in _WRITES_ALL or (name in ("sed", "perl") and any(w.startswith("-i") for w in rest)):
        found.extend((w, BOTH) for w in files)
    elif name in _COPIES and files:
        found.extend([*((w, READ) for w in files[:-1]), (files[-1], WRITE)])
    else:
        if name in _PATTERN_FIRST and files and not any(w in ("-e", "-f") for w in rest):
            files = files[1:]  # the pattern or script, not a file
        found.extend((w, READ) for w in [operands[0], *files] if "/" in w or w.startswith("~"))
    return found

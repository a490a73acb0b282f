"""The tampering scan's rules (``autograder.scan``): what a piece of evidence is, the modules,
hooks and calls an honest notebook never reaches for, and which paths are protected.

Tables only, and ``protected_path``, which says why touching one path is evidence; the AST
walker that applies them is ``autograder.scan``, the shell command reader ``autograder.scan_shell``.
"""

from __future__ import annotations

import itertools
import posixpath
import re
from enum import Enum

__all__ = [
    "ALLOWED",
    "BOTH",
    "COMMAND_RUNNERS",
    "EXPANDED",
    "FILE_FUNCS",
    "FILE_MODULES",
    "FORBIDDEN_IMPORTS",
    "GC_WALK",
    "HIDERS",
    "IMPORT_STATE",
    "INNARDS",
    "Kind",
    "MAX_MAGIC_DEPTH",
    "MUTATORS",
    "NOT_CODE",
    "OPTIONS_WITH_VALUE",
    "PASS_THROUGH",
    "PATH_BUILDERS",
    "PATH_METHODS",
    "PATH_METHODS_BUILDING",
    "PROTECTED",
    "PYTHON_MAGICS",
    "PYTHON_PROCESS",
    "READ",
    "RESULT",
    "SHELL",
    "SHELL_HOOKS",
    "SHELL_RUNNERS",
    "SOURCE_OF",
    "STR_METHODS",
    "TRACE",
    "WRITE",
    "WRITE_MAGICS",
    "protected_path",
]


class Kind(str, Enum):
    """What a piece of static evidence is (``Evidence.kind`` holds the value)."""

    PATCHED_MODULE = "patched module"
    TRACE_HOOK = "trace hook"
    IMPORT_HOOK = "import hook"
    IPYTHON_HOOK = "ipython hook"
    WRITES_PROTECTED = "writes protected path"
    READS_PROTECTED = "reads protected path"
    NETWORK = "network access"
    INTROSPECTION = "introspection of the grader"
    HIDDEN_CODE = "runs hidden code"
    SHADOWING_FILE = "shadowing module file"

    def __str__(self) -> str:
        return self.value


# Modules whose attributes a student never has reason to set.
PROTECTED = frozenset(
    [
        "numpy",
        "torch",
        "course_lib",
        "builtins",
        "math",
        "sys",
        "IPython",
        "importlib",
        "gc",
        "os",
        "inspect",
        "types",
        "traceback",
        "unittest",
        "nbgrader",
        "autograder",
        "site",
        "threading",
        "io",
        "pathlib",
        "json",
        "pickle",
        "random",
        "scipy",
        "operator",
        "functools",
        "copy",
        "ipykernel",
        "jupyter_client",
        "nbclient",
        "socket",
        "ctypes",
    ]
)
# Honest writes under protected modules: output capture, environment, determinism switches.
ALLOWED = ("torch.backends.", "sys.stdout", "sys.stderr", "sys.argv", "sys.path", "os.environ")
SHELL = "IPython.shell"  # the origin given to get_ipython() and the names bound to it
SHELL_HOOKS = frozenset(
    [
        "ast_transformers",
        "input_transformers_cleanup",
        "input_transformers_post",
        "input_transformer_manager",
        "set_custom_exc",
        "custom_exceptions",
        "events",
        "register_magic_function",
        "register_magics",
        "magics_manager",
        "showtraceback",
        "_showtraceback",
        "run_cell",
        "run_ast_nodes",
        "run_code",
        "displayhook",
        "display_pub",
        "prefilter_manager",
        "user_ns_hidden",
    ]
)
TRACE = frozenset(
    [
        "sys.settrace",
        "sys.setprofile",
        "sys.addaudithook",
        "threading.settrace",
        "threading.setprofile",
        "threading.settrace_all_threads",
        "threading.setprofile_all_threads",
    ]
)
IMPORT_STATE = ("sys.modules", "sys.meta_path", "sys.path_hooks", "sys.path_importer_cache")
GC_WALK = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents"})
SOURCE_OF = frozenset(
    {"getsource", "getsourcelines", "getfile", "getsourcefile", "getclosurevars", "getmembers"}
)
INNARDS = frozenset(
    {"__code__", "__globals__", "__closure__", "__wrapped__", "__defaults__", "__kwdefaults__"}
)
PASS_THROUGH = frozenset({"list", "tuple", "sorted", "reversed", "iter", "set"})
MUTATORS = frozenset(
    [
        "update",
        "setdefault",
        "pop",
        "popitem",
        "clear",
        "__setitem__",
        "__delitem__",
        "append",
        "insert",
        "extend",
        "remove",
    ]
)
FORBIDDEN_IMPORTS = {"socket": Kind.NETWORK, "_socket": Kind.NETWORK, "ctypes": Kind.INTROSPECTION}

# File and shell operations: which way they touch a path.
READ, WRITE, BOTH = "read", "write", "both"
PATH_METHODS = {
    "read_text": READ, "read_bytes": READ, "iterdir": READ, "glob": READ, "rglob": READ,
    "write_text": WRITE, "write_bytes": WRITE, "touch": WRITE, "mkdir": WRITE, "unlink": WRITE,
    "rename": WRITE, "replace": WRITE, "symlink_to": WRITE, "hardlink_to": WRITE, "chmod": WRITE,
    "rmdir": WRITE,
}  # fmt: skip
PATH_BUILDERS = frozenset(
    [
        "Path",
        "PurePath",
        "PosixPath",
        "str",
        "join",
        "expanduser",
        "expandvars",
        "abspath",
        "realpath",
        "normpath",
        "dirname",
        "fspath",
        "glob",
        "iglob",
    ]
)
PATH_METHODS_BUILDING = frozenset(
    ["joinpath", "with_name", "with_suffix", "resolve", "expanduser", "absolute", "format"]
)
STR_METHODS = frozenset({"replace", "rename", "glob"})  # also str/DataFrame methods: only on a known path
FILE_FUNCS = {
    "os.listdir": READ, "os.scandir": READ, "os.walk": READ, "glob.glob": READ, "glob.iglob": READ,
    "numpy.load": READ, "numpy.loadtxt": READ, "numpy.genfromtxt": READ, "numpy.fromfile": READ,
    "torch.load": READ, "nbformat.read": READ, "json.load": READ, "runpy.run_path": READ,
    "os.remove": WRITE, "os.unlink": WRITE, "os.rename": WRITE, "os.replace": WRITE,
    "os.symlink": WRITE, "os.link": WRITE, "os.makedirs": WRITE, "os.mkdir": WRITE, "os.chmod": WRITE,
    "numpy.save": WRITE, "numpy.savez": WRITE, "numpy.savetxt": WRITE, "torch.save": WRITE,
    "os.open": BOTH, "io.open": BOTH,
}  # fmt: skip
FILE_MODULES = ("shutil.",)  # every function: both ways
COMMAND_RUNNERS = (
    "subprocess.",
    "pty.",
    "os.system",
    "os.popen",
    "os.spawn",
    "os.exec",
)  # take a command line
SHELL_RUNNERS = frozenset({"system", "getoutput", "run_line_magic", "run_cell_magic", "magic"})
# Magics whose text is Python the kernel runs (scanned as code), or a Python child process.
PYTHON_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})
PYTHON_PROCESS = frozenset({"python", "python2", "python3", "pypy", "pypy3"})
WRITE_MAGICS = frozenset({"writefile", "file"})
NOT_CODE = frozenset({"html", "javascript", "js", "latex", "markdown", "svg"})
OPTIONS_WITH_VALUE = frozenset({"-n", "-r", "-p", "-s", "-l", "-T", "-D"})  # %timeit, %prun
EXPANDED = re.compile(r"\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)")
MAX_MAGIC_DEPTH = 8  # %%time inside %%capture inside ...: no honest cell nests deeper
RESULT = "()"  # in an origin: what a course_lib call returned -- data, not a module
HIDERS = frozenset(
    [
        "read",
        "read_text",
        "read_bytes",
        "readline",
        "readlines",
        "decode",
        "b64decode",
        "b32decode",
        "b16decode",
        "b85decode",
        "a85decode",
        "decompress",
        "fromhex",
        "unhexlify",
        "loads",
        "urlopen",
        "getoutput",
        "check_output",
    ]
)

# Names that are evidence only where the path leaves the student's folder (absolute, ``~``,
# ``$VAR`` or ``..``): a student's own ``figures/source`` or ``data/solutions`` is hers.
_COURSE_WRITE = frozenset(
    [
        "course_lib",
        "autograder",
        "solutions",
        "source",
        "autograded",
        "submitted",
        ".git",
        "feedback",
        "release",
    ]
)
_COURSE_READ = frozenset(["solutions", "source", "autograded", "submitted", ".git"])
# Written inside the student's folder these shadow the course's packages for later imports.
_SHADOWED_HERE = frozenset({"course_lib", "autograder", "course_lib.py", "autograder.py"})
_INSTALL_DIRS = frozenset({"site-packages", "dist-packages"})
# /proc entries about a process (environ, cmdline, mem, maps, fd, root, cwd...); /proc/cpuinfo,
# /proc/meminfo and a process's own memory counters (/proc/self/status) are not.
_PROC_PROCESS = re.compile(r"^/proc/(\d+|self|thread-self|[^/]*[{}$*?\[][^/]*)(?:/+([^/]*))?(?=/|$)")
_PROC_HONEST = frozenset({"status", "statm", "stat", "io", "limits", "oom_score"})


def _leaves_folder(parts: list[str], text: str) -> bool:
    """Whether a path reaches outside the student's folder: absolute, home, a variable, or ``..``."""
    return text.startswith(("/", "~", "$")) or ".." in parts


def protected_path(text: str, way: str) -> str | None:
    """Why touching the one path ``text`` this way is evidence, or None."""
    text = text.strip().replace("\\", "/")
    if not text:
        return None
    # "../../../proc/self" climbs to the root from anywhere deep enough: read it from there too
    climbed = "/" + text.lstrip("./") if text.startswith("../") else text
    for candidate in {text, climbed}:
        normal = posixpath.normpath(candidate) if candidate.startswith("/") else candidate
        if (proc := _PROC_PROCESS.match(normal)) and proc[2] not in _PROC_HONEST:
            return "/proc/"
    # lexically resolved: "figures/source/x.png/.." (a .parent) is still inside the folder
    parts = [p for p in posixpath.normpath(text).split("/") if p not in ("", ".")]
    names = [p.lower() for p in parts]
    leaves = _leaves_folder(parts, text)
    if leaves and any("gradebook" in n for n in names):
        return "gradebook"
    if way in (WRITE, BOTH):
        if found := _INSTALL_DIRS.intersection(parts):
            return sorted(found)[0]
        if names and names[-1].endswith(".pth"):
            return ".pth"
        if any(n.startswith(("sitecustomize", "usercustomize")) for n in names):
            return "sitecustomize"
        if ".ipython" in parts or any(
            a.startswith("profile_") and b == "startup" for a, b in itertools.pairwise(parts)
        ):
            return ".ipython"
        if leaves and (found := _COURSE_WRITE.intersection(parts)):
            return sorted(found)[0]
        if parts and parts[0] in _SHADOWED_HERE:
            return parts[0]
    if way in (READ, BOTH) and leaves and (found := _COURSE_READ.intersection(parts)):
        return sorted(found)[0]
    return None

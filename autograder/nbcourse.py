"""Grading inside an instructor's own nbgrader course: ``grade --course COURSE_DIR``.

An nbgrader course directory holds ``nbgrader_config.py``, ``source/<assignment>/*.ipynb``
(the instructor's notebooks), ``release/`` (made by ``nbgrader generate_assignment``),
``submitted/<student>/<assignment>/`` (made by ``nbgrader collect``, with the
submission's ``timestamp.txt``) and the gradebook its config names. Grading here reads
``submitted/`` through the intake's protections and writes what ``nbgrader autograde``
writes: ``autograded/<student>/<assignment>/<notebook>.ipynb`` with ``timestamp.txt``
beside it, and the gradebook rows (student, submission with its timestamp, notebooks,
grades), so that stock ``nbgrader generate_feedback``, ``release_feedback``, ``export``
and formgrader work on the course unchanged. Manual scores stay (``SaveAutoGrades``
writes only ``auto_score``).

The run folder (ledger, scratch, the run's secret) defaults to ``COURSE_DIR/.autograder``
(mode 0700); the sandbox hides the whole course directory and the exchange from student
code, as it hides the run folder of ``grade FOLDER``.

An assignment may hold several notebooks: each submitted notebook is graded against the
source notebook of the same stem, and the exercise registry is looked up by that stem.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from traitlets.config import Config

from autograder.course import CourseDir, generate_assignments, read_notebook
from autograder.gradebook import GradebookLock, Ledger, merge_result
from autograder.grading_run import (
    GradeOptions,
    GradeRun,
    StatusReport,
    grade_resumable,
    hidden_paths,
    import_support,
    ready_to_grade,
    scratch_root,
    secret_seed,
    selected,
    write_protections,
)
from autograder.intake import (
    MAX_NOTEBOOK_BYTES,
    Handed,
    Identity,
    Job,
    SubmissionError,
    alongside,
    item_key,
    read_capped,
    safe_key,
    walk,
)
from autograder.limits import Protections
from autograder.pipeline import GradingContext, SubmissionResult
from autograder.results import Status
from autograder.sandbox import detect_protections, remove_tree

if TYPE_CHECKING:
    from autograder.cluster import DaskEngine

__all__ = [
    "NOT_AN_ASSIGNMENT",
    "NbgraderCourse",
    "column_keys",
    "assignment_files",
    "course_jobs",
    "ensure_released",
    "grade_course",
    "is_student_id",
    "course_status_in",
    "load_course",
    "read_timestamp",
    "source_manifest",
]

log = logging.getLogger(__name__)

RUN_SUBDIR = ".autograder"
_STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_TIMESTAMP_FILE_BYTES = 1024**2  # the whole file, whitespace included (stock strips any amount)
_TIMESTAMP_CHARS = 1024  # the time itself, once stripped
_SHOWN_NAMES = 10  # of a student's entries that are not assignments, in the one row that lists them
_SHOWN_NAME_CHARS = 64
# The key of that row: no folder under source/ can have it (hidden names are skipped, as
# nbgrader's own listing does), so no export ever takes it for an assignment column.
NOT_AN_ASSIGNMENT = ".not-an-assignment"
_NBGRADER_IGNORED = frozenset({".ipynb_checkpoints", "__pycache__", "feedback"})  # CourseDirectory.ignore


@dataclass(frozen=True)
class NbgraderCourse:
    """An instructor's nbgrader course, as its ``nbgrader_config.py`` describes it."""

    root: Path
    db_url: str
    course_id: str  # nbgrader's (may be ""): the gradebook's course and the exchange's folder
    exchange_root: Path
    run_dir: Path  # ledger, scratch, secret: outside the student-visible tree
    config: Config = field(
        default_factory=Config, compare=False, repr=False
    )  # the course's, for nbgrader's plugins

    @property
    def dir(self) -> CourseDir:
        return CourseDir(root=self.root, db_url=self.db_url)

    @property
    def submitted(self) -> Path:
        return self.root / "submitted"


def load_course(
    course_dir: Path, *, db_url: str | None = None, run_dir: Path | None = None
) -> NbgraderCourse:
    """Read ``COURSE_DIR/nbgrader_config.py`` with traitlets as nbgrader does (it is the
    instructor's own file): ``CourseDirectory.root`` (default: the course folder),
    ``CourseDirectory.db_url`` (default: ``sqlite:///ROOT/gradebook.db``; ``db_url`` here
    overrides it), ``CourseDirectory.course_id`` and ``Exchange.root``."""
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default.exchange import Exchange
    from traitlets.config.loader import PyFileConfigLoader

    course_dir = Path(course_dir).resolve()
    config_file = course_dir / "nbgrader_config.py"
    if not course_dir.is_dir():
        raise FileNotFoundError(f"grade --course: no folder {course_dir}")
    if not config_file.is_file():
        raise ValueError(f"grade --course: {course_dir} is not an nbgrader course (no nbgrader_config.py)")
    config = PyFileConfigLoader(config_file.name, path=str(course_dir)).load_config()
    # nbgrader's root defaults to the working directory: the instructor runs it in the course folder.
    root = Path(config.CourseDirectory.root) if "root" in config.CourseDirectory else course_dir
    config.CourseDirectory.root = str(course_dir / root)  # a relative root is relative to the course
    if db_url:
        config.CourseDirectory.db_url = db_url
    coursedir = CourseDirectory(config=config)
    exchange = Path(
        config.Exchange.root if "root" in config.Exchange else Exchange.class_traits()["root"].default_value
    )
    root = Path(coursedir.root)
    if not (root / "source").is_dir():
        raise ValueError(f"grade --course: no source/ folder in {root} (the instructor's assignments)")
    run = Path(run_dir).resolve() if run_dir is not None else root / RUN_SUBDIR
    return NbgraderCourse(root, coursedir.db_url, coursedir.course_id, exchange.resolve(), run, config)


def _visible_entries(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.iterdir()) if not p.name.startswith(".")] if folder.is_dir() else []


def source_manifest(course: NbgraderCourse) -> dict[str, tuple[str, ...]]:
    """{assignment: its notebooks' stems}: the folders under ``source/`` and their notebooks."""
    out: dict[str, tuple[str, ...]] = {}
    for folder in _visible_entries(course.root / "source"):
        if folder.is_dir() and not folder.is_symlink():
            stems = tuple(p.stem for p in _visible_entries(folder) if p.suffix == ".ipynb" and p.is_file())
            if stems:
                out[folder.name] = stems
    if not out:
        raise ValueError(f"grade --course: no assignment with notebooks under {course.root / 'source'}")
    return out


def _in_gradebook(course: NbgraderCourse, assignment: str, notebooks: tuple[str, ...]) -> bool:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url, course.course_id) as gb:
        try:
            for nb in notebooks:
                gb.find_notebook(nb, assignment)
        except MissingEntry:
            return False
    return True


def ensure_released(course: NbgraderCourse, manifest: dict[str, tuple[str, ...]]) -> list[str]:
    """Run ``nbgrader generate_assignment`` (with the course's own config) for every
    assignment whose release is missing, older than its source, or absent from the
    gradebook — what the instructor would run before grading. Returns those assignments."""
    stale = []
    for assignment, notebooks in manifest.items():
        for nb in notebooks:
            source, release = course.dir.source(assignment, nb), course.dir.release(assignment, nb)
            if not release.exists() or release.stat().st_mtime < source.stat().st_mtime:
                stale.append(assignment)
                break
        else:
            if not _in_gradebook(course, assignment, notebooks):
                stale.append(assignment)
    if stale:
        generate_assignments(course.dir, stale)
    return stale


def is_student_id(name: str) -> bool:
    """A folder name nbgrader can use as a student id and we as a path component: ASCII
    letters, digits, ``_ . @ -``, not starting with a dot or a dash (no ``+`` or ``*``,
    which nbgrader's exchange reserves)."""
    return _STUDENT_ID.fullmatch(name) is not None


def read_timestamp(folder: Path) -> tuple[datetime | None, str]:
    """The submission time in ``folder/timestamp.txt`` as nbgrader parses it (surrounding
    whitespace stripped first, as ``CourseDirectory.get_existing_timestamp`` does), or None
    and why not. ``(None, "")``: no file, or an empty one (nbgrader: no timestamp either).
    ``(None, why)``: the file is there but is no timestamp — the submission must not be
    graded (see ``_assignment_jobs``): nbgrader refuses the garbage and the folder too
    ("Invalid timestamp string"); a link or a hard link, which nbgrader would follow, is
    never followed here, so it is refused rather than read as on time."""
    from nbgrader.utils import parse_utc

    path = folder / "timestamp.txt"
    if not os.path.lexists(path):
        return None, ""
    try:
        # Bounded read, then strip, then the cap on the time itself: padding costs nothing.
        text = read_capped(path, _TIMESTAMP_FILE_BYTES).decode("utf-8", errors="replace").strip()
    except SubmissionError as exc:
        return None, f"timestamp.txt: {exc}"
    if not text:
        return None, ""
    if len(text) > _TIMESTAMP_CHARS:
        return None, f"timestamp.txt: not a time nbgrader can read (over {_TIMESTAMP_CHARS} characters)"
    try:
        return parse_utc(text), ""
    except (ValueError, OverflowError):
        return None, "timestamp.txt: not a time nbgrader can read"


def _refused(student: str, assignment: str, why: str, notebook: str = "") -> Job:
    return Job(
        student,
        assignment,
        None,
        Status.UNREADABLE,
        [why],
        notebook_name=notebook if notebook != assignment else "",
    )


def _refused_all(student: str, manifest: dict[str, tuple[str, ...]], why: str) -> list[Job]:
    """One refused row per notebook of the course."""
    return [_refused(student, a, why, nb) for a, notebooks in manifest.items() for nb in notebooks]


def course_jobs(
    course: NbgraderCourse, manifest: dict[str, tuple[str, ...]]
) -> tuple[list[Job], dict[tuple[str, str], datetime]]:
    """One job per (student, assignment, notebook) under ``submitted/``, and the timestamps
    by (student, ``Job.key``). Whatever cannot be graded (a link, a folder name that is not
    a student id, an assignment not in ``source/``, a missing notebook) is a row with its
    status and reason; nothing stops the batch and nothing is followed."""
    jobs: list[Job] = []
    stamps: dict[tuple[str, str], datetime] = {}
    provided = {a: assignment_files(course, a) for a in manifest}
    for entry in _visible_entries(course.submitted):
        shown = f"submitted/{entry.name}"
        if not is_student_id(entry.name):
            key = safe_key(Identity(entry.name))
            why = f"{shown}: not a valid nbgrader student id (letters, digits, _ . @ -): not graded"
            jobs.extend(_refused_all(key, manifest, why))
            continue
        if entry.is_symlink() or not entry.is_dir():
            why = f"{shown}: not a folder ({'symbolic link' if entry.is_symlink() else 'a file'}): not read"
            jobs.extend(_refused_all(entry.name, manifest, why))
            continue
        theirs: list[Job] = []
        try:
            unknown = []
            for folder in _visible_entries(entry):
                if folder.name in manifest:
                    theirs.extend(
                        _assignment_jobs(entry.name, folder, manifest, stamps, provided[folder.name])
                    )
                else:
                    unknown.append(folder.name)
            if unknown:  # one row however many: a student's junk never widens the class's exports
                theirs.append(_refused(entry.name, NOT_AN_ASSIGNMENT, _not_assignments(shown, unknown)))
            jobs.extend(theirs)
        except (OSError, RecursionError, ValueError) as exc:  # one student's tree costs that student only
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            log.warning("grade --course: %s cannot be read: %r", shown, exc)
            jobs.extend(_refused_all(entry.name, manifest, f"{shown}: cannot read ({why})"))
    return jobs, stamps


def _not_assignments(shown: str, names: list[str]) -> str:
    """The reason of a student's one row for the entries of ``submitted/<student>/`` that
    are no assignment of ``source/``: how many, and the first few names (each cut short)."""
    listed = [
        repr(n if len(n) <= _SHOWN_NAME_CHARS else n[:_SHOWN_NAME_CHARS] + "...")
        for n in names[:_SHOWN_NAMES]
    ]
    more = f" and {len(names) - _SHOWN_NAMES} more" if len(names) > _SHOWN_NAMES else ""
    what = "an entry" if len(names) == 1 else f"{len(names)} entries"
    return f"{shown}: {what} with no assignment of that name in source/ (nbgrader skips them): {', '.join(listed)}{more}: not graded"


def column_keys(records: Iterable[SubmissionResult]) -> list[str]:
    """The keys that are columns of the class's exports (grades.csv, the report, the LMS
    files): every ``SubmissionResult.key`` but the row of entries that are not assignments."""
    return sorted({r.key for r in records if r.assignment != NOT_AN_ASSIGNMENT})


def _ignored(rel: PurePosixPath) -> bool:
    """What nbgrader's ``CourseDirectory.ignore`` leaves out of an assignment's files."""
    return any(part in _NBGRADER_IGNORED or part.endswith(".pyc") for part in rel.parts)


def _not_overwritten(course: NbgraderCourse, assignment: str) -> frozenset[str]:
    """``Autograde.exclude_overwriting[assignment]`` of the course's config: paths relative to
    ``source/<assignment>/`` whose student copy is kept (nbgrader's own option)."""
    table = (
        course.config.Autograde.exclude_overwriting
        if "exclude_overwriting" in course.config.Autograde
        else {}
    )
    if not isinstance(table, dict):
        raise ValueError(
            f"grade --course: Autograde.exclude_overwriting must be a dict, not {type(table).__name__}"
        )
    names = table.get(assignment, [])
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise ValueError(
            f"grade --course: Autograde.exclude_overwriting[{assignment!r}] must be a list of file names"
        )
    return frozenset(PurePosixPath(os.path.normpath(n)).as_posix() for n in names)


def assignment_files(course: NbgraderCourse, assignment: str) -> tuple[tuple[Path, PurePosixPath], ...]:
    """The instructor's files of ``assignment`` that ``nbgrader autograde`` copies over the
    student's: every regular file under ``source/<assignment>/`` but notebooks, what
    nbgrader ignores and ``Autograde.exclude_overwriting``; each with its path relative to
    the assignment folder (where the notebooks are). Links and special files are skipped,
    never followed; the walk is bounded as a student's is (``intake.walk``)."""
    folder = course.root / "source" / assignment
    handed = Handed(folder=folder)
    walk(folder, f"source/{assignment}", handed, zips=False)
    for where, why in handed.problems:
        log.warning("grade --course: %s not put beside the notebooks: %s", where, why)
    keep = _not_overwritten(course, assignment)
    out = []
    for path in handed.beside:
        rel = PurePosixPath(path.relative_to(folder).as_posix())
        if not _ignored(rel) and rel.as_posix() not in keep:
            out.append((path, rel))
    return tuple(out)


def _assignment_jobs(
    student: str,
    folder: Path,
    manifest: dict[str, tuple[str, ...]],
    stamps: dict[tuple[str, str], datetime],
    provided: tuple[tuple[Path, PurePosixPath], ...] = (),
) -> list[Job]:
    shown = f"submitted/{student}/{folder.name}"
    assignment = folder.name
    notebooks = manifest[assignment]
    if folder.is_symlink() or not folder.is_dir():
        why = f"{shown}: not a folder ({'symbolic link' if folder.is_symlink() else 'a file'}): not read"
        return [_refused(student, assignment, why, nb) for nb in notebooks]
    handed = Handed(folder=folder)
    walk(folder, shown, handed, zips=False)
    timestamp, stamp_note = read_timestamp(folder)
    if stamp_note:  # there but no time: graded, it would count as on time; nbgrader refuses it
        why = f"{shown}/{stamp_note}: not graded (replace it by the time of the submission, or delete it)"
        return [_refused(student, assignment, why, nb) for nb in notebooks]
    problems = dict(handed.problems)
    known = {folder / f"{nb}.ipynb" for nb in notebooks}
    notes = [
        f"{p.relative_to(folder)}: not a notebook of {assignment} (nbgrader skips it)"
        for p in handed.notebooks
        if p not in known
    ]
    notes += [f"{where}: {why}" for where, why in handed.problems if not where.endswith(".ipynb")]
    jobs = []
    for nb in notebooks:
        name = nb if nb != assignment else ""
        path, where = folder / f"{nb}.ipynb", f"{shown}/{nb}.ipynb"
        if path in handed.notebooks:
            job = Job(student, assignment, path, notes=list(notes), beside=tuple(handed.beside), folder=folder,
                      alongside=alongside(path, handed), notebook_name=name, provided=provided)  # fmt: skip
        elif where in problems:
            job = Job(
                student,
                assignment,
                None,
                Status.UNREADABLE,
                [f"{where}: {problems[where]}", *notes],
                notebook_name=name,
            )
        else:
            job = Job(
                student,
                assignment,
                None,
                Status.MISSING,
                [f"no notebook {nb}.ipynb in {shown}", *notes],
                notebook_name=name,
            )
        if timestamp is not None:
            stamps[(student, job.key)] = timestamp
        jobs.append(job)
    return jobs


def grade_course(
    *,
    course_dir: Path,
    run_dir: Path | None = None,
    options: GradeOptions,
    progress: Callable[[SubmissionResult], None] | None = None,
    on_start: Callable[[int, Protections], None] | None = None,
    engine: DaskEngine | None = None,
) -> GradeRun:
    """Grade ``COURSE_DIR/submitted/`` into the course's own gradebook and ``autograded/``
    (called through ``api.grade_course``)."""
    start = time.monotonic()
    course = load_course(course_dir, db_url=options.db_url, run_dir=run_dir)
    protections = detect_protections()
    import_support(options.support)
    course.run_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(course.run_dir, 0o700)
    manifest = source_manifest(course)
    ensure_released(course, manifest)
    keys = {item_key(a, nb if nb != a else ""): (a, nb) for a, nbs in manifest.items() for nb in nbs}
    sources = {k: read_notebook(course.dir.source(a, nb)) for k, (a, nb) in keys.items()}
    releases = {k: read_notebook(course.dir.release(a, nb)) for k, (a, nb) in keys.items()}
    jobs, stamps = course_jobs(course, manifest)
    jobs = selected(jobs, options)
    ready_to_grade(jobs, protections, sandboxes_here=engine is None)
    hosts = engine.hosts() if engine is not None else ()
    write_protections(course.run_dir, protections, hosts)
    scratch = scratch_root(course.run_dir)
    hide = hidden_paths(course.run_dir, course.root / "source", course.submitted, course.db_url)
    hide += [
        p for p in (course.root, course.exchange_root) if p.is_dir() and p != Path("/") and p not in hide
    ]
    ctx = GradingContext(
        course=course.dir, sources=sources, releases=releases, scratch_root=scratch, hide=hide,
        limits=options.limits, protections=protections, secret_seed=secret_seed(course.run_dir),
        support=list(options.support), drop_demo=options.drop_demo, verify=options.verify,
    )  # fmt: skip

    def merge(result: SubmissionResult) -> None:
        stamp = stamps.get((result.student, result.key))
        merge_result(
            result, course=course.dir, run_dir=course.run_dir, course_id=course.course_id, timestamp=stamp
        )
        if result.notebook is not None and result.score is not None:
            _assign_late_penalty(course, result)
            _copy_assignment_files(course, result)

    try:
        results, resumed = grade_resumable(jobs, ctx, run_dir=course.run_dir, options=options, merge=merge,
                                           progress=progress, on_start=on_start, engine=engine)  # fmt: skip
    finally:
        remove_tree(scratch)
    if engine is not None:  # now with what each host graded
        hosts = engine.hosts()
        write_protections(course.run_dir, protections, hosts)
    return GradeRun(tuple(results), protections, course.run_dir, resumed, time.monotonic() - start, hosts)


def _assign_late_penalty(course: NbgraderCourse, result: SubmissionResult) -> None:
    """nbgrader's ``AssignLatePenalties`` with the course's config (its
    ``LateSubmissionPlugin``), as ``nbgrader autograde`` runs it after saving the grades."""
    from nbgrader.preprocessors import AssignLatePenalties

    resources = {"nbgrader": {"notebook": result.notebook_id, "assignment": result.assignment,
                              "student": result.student, "db_url": course.db_url}}  # fmt: skip
    with GradebookLock(course.run_dir):
        AssignLatePenalties(config=course.config).preprocess(result.notebook, resources)


def _copy_assignment_files(course: NbgraderCourse, result: SubmissionResult) -> None:
    """The assignment's other files beside the autograded notebook, as ``nbgrader autograde``
    copies them: every regular file the student's folder holds (``timestamp.txt``, which
    ``generate_feedback`` reads, and ``submission_secret.txt``, which ``release_feedback``
    needs), links and special files never followed, then the instructor's own files from
    ``source/<assignment>/`` over them (but ``Autograde.exclude_overwriting``'s)."""
    folder = course.submitted / result.student / result.assignment
    dest = course.dir.autograded(result.student, result.assignment, result.notebook_name).parent
    handed = Handed(folder=folder)
    walk(folder, str(folder), handed, zips=False)
    copies = [(path, dest / path.relative_to(folder)) for path in handed.beside]
    copies += [(path, dest.joinpath(*rel.parts)) for path, rel in assignment_files(course, result.assignment)]
    for src, target in copies:
        if src.suffix == ".ipynb" or _ignored(PurePosixPath(target.relative_to(dest).as_posix())):
            continue
        try:
            data = read_capped(src, MAX_NOTEBOOK_BYTES)
        except SubmissionError as exc:
            log.warning("grade --course: %s not copied to autograded/: %s", src, exc)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        target.write_bytes(data)


def course_status_in(*, course_dir: Path, run_dir: Path | None = None) -> StatusReport:
    """What is graded (the ledger) and what in ``submitted/`` is not yet, by (student, ``Job.key``).
    Reads only: no release is generated, nothing is written."""
    course = load_course(course_dir, run_dir=run_dir)
    results = tuple(Ledger(course.run_dir).all())
    jobs, _ = course_jobs(course, source_manifest(course))
    seen = {(r.student, r.key) for r in results}
    return StatusReport(results, tuple((j.student, j.key) for j in jobs if (j.student, j.key) not in seen))

# nbgrader configuration of the course, used for every command of the autograder.
# The autograder copies this file into each course directory it creates
# (a temporary one for `release`, the run folder for `grade`), so instructors
# change nbgrader's behaviour here, in the repository, not in ~/.jupyter.
c = get_config()  # type: ignore[name-defined]  # noqa: F821  (injected by traitlets)

c.CourseDirectory.course_id = "dl-course"
# The gradebook: nbgrader's embedded SQLite by default. Any SQLAlchemy URL nbgrader
# accepts works, e.g. "postgresql://grader@db.example.org/dl_course"; the autograder's
# --db option (or the AUTOGRADER_DB_URL environment variable) overrides it.
# c.CourseDirectory.db_url = "sqlite:///gradebook.db"

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"
# Student notebooks are committed without outputs.
c.ClearOutput.enabled = True

# Student-facing limits applied by stock `nbgrader autograde` too.
c.Execute.timeout = 60
c.Execute.allow_errors = True
c.LimitOutput.max_lines = 1000

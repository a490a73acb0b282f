"""A lock held in the gradebook's database, for graders on several machines sharing it.

``GradebookLock`` (an flock on a file in the run folder) orders the graders of one
machine. Two machines grading into one PostgreSQL gradebook each have their own run
folder, so nothing local orders them; nbgrader's gradebook API is check-then-insert
(``update_or_create_student``, the table creation in ``Gradebook.__init__``), and two
writers interleaved fail with a duplicate key. While it writes the gradebook, a grader
therefore also holds a PostgreSQL session advisory lock, which every grader of the same
database waits for. SQLite needs none (a SQLite gradebook is a local file: the flock
covers it; see ``autograder.mounts`` for why it must be local).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ADVISORY_KEY", "database_lock", "is_postgres"]

# One fixed key for "the autograder writes this gradebook": a 64-bit signed number
# derived from a name, so it cannot collide with small keys another tool might pick.
ADVISORY_KEY = int.from_bytes(
    hashlib.sha256(b"dl-course autograder gradebook").digest()[:8], "big", signed=True
)


def is_postgres(db_url: str) -> bool:
    from sqlalchemy.engine import make_url

    return make_url(db_url).get_backend_name() == "postgresql"


@contextmanager
def database_lock(db_url: str) -> Iterator[None]:
    """Hold the database-wide writer lock of ``db_url`` (PostgreSQL); a no-op for others.

    The lock is a session lock on a connection of its own: it is released when the block
    ends, or by the server when this process dies, so a killed grader never leaves it held."""
    if not is_postgres(db_url):
        yield
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_KEY})
            conn.commit()  # end the implicit transaction: the lock is the session's, not its
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
                conn.commit()
    finally:
        engine.dispose()

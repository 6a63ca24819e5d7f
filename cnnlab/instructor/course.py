"""Where the course keeps its files: nbgrader's configuration, resolved to absolute paths.

The repository root is the nbgrader course directory (``nbgrader_config.py`` lives there).
Submissions, autograded copies, feedback and the gradebook live under ``grading/`` (git-ignored);
cnnlab's own bookkeeping (what collect could not place, grading times, flags) under
``grading/cnnlab/<assignment>/``.

The gradebook is any database SQLAlchemy reaches that nbgrader's ``CourseDirectory.db_url``
accepts: an sqlite file (the default, ``grading/gradebook.db``) or a server such as PostgreSQL
(``postgresql+psycopg://user:password@host/db``), which several graders and the formgrader can
write at once. A URL is only ever shown with its password masked (``masked_url``).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL, make_url

CONFIG_NAME = "nbgrader_config.py"
DEFAULT_IMPORTABLE = ("numpy", "cnnlab.grading")


def ensure_tools_on_path() -> None:
    """nbgrader runs ``alembic`` (gradebook migrations) as a subprocess: make the tools installed
    next to this Python findable even when the virtual environment is not activated."""
    import sys

    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + path


def find_course_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: the working directory) that holds
    ``nbgrader_config.py``."""
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        if (d / CONFIG_NAME).is_file():
            return d
    raise ValueError(
        f"no {CONFIG_NAME} in {here} or any directory above it: run cnnlab inside the course "
        "repository or pass --course DIR"
    )


def masked_url(db_url: str | URL) -> str:
    """``db_url`` with its password replaced by ``***`` (what every message shows)."""
    try:
        return make_url(db_url).render_as_string(hide_password=True)
    except Exception:  # unparseable: show the scheme only, the rest may hold a password
        return str(db_url).split(":", 1)[0] + "://***"


def sqlalchemy_errors() -> tuple[type[BaseException], ...]:
    """What SQLAlchemy raises for a database that cannot be reached or a URL it cannot use."""
    from sqlalchemy import exc

    return (exc.OperationalError, exc.InterfaceError, exc.ArgumentError, exc.NoSuchModuleError,
            exc.ProgrammingError, ImportError)


def _reason(e: BaseException, db_url: str) -> str:
    """The driver's first line of ``e`` with the URL's password (if any) blotted out."""
    orig = getattr(e, "orig", None) or e
    text = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    try:
        password = make_url(db_url).password
    except Exception:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return f"{type(orig).__name__}: {text}"


def resolve_db_url(db_url: str, root: Path) -> str:
    """nbgrader's ``db_url`` made independent of the working directory (a relative sqlite path
    is relative to the course ``root``), checked by SQLAlchemy's own URL parser and dialect table.

    >>> resolve_db_url("sqlite:///grading/gradebook.db", Path("/course"))
    'sqlite:////course/grading/gradebook.db'
    """
    try:
        url = make_url(db_url)
        url.get_dialect()  # the dialect (and driver name) must be one SQLAlchemy knows
    except Exception as e:
        raise ValueError(
            f"db_url {masked_url(db_url)}: not a database URL SQLAlchemy can use "
            f"({_reason(e, db_url)}); examples: sqlite:///grading/gradebook.db, "
            "postgresql+psycopg://user:password@host:5432/gradebook") from None
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = Path(url.database)
        if not path.is_absolute():
            url = url.set(database=str(root / path))
    return url.render_as_string(hide_password=False)


def _load_file_config(root: Path):
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    path = root / CONFIG_NAME
    if not path.is_file():
        return Config()
    return PyFileConfigLoader(CONFIG_NAME, path=str(root)).load_config()


@dataclass
class Course:
    """The course's directories, all absolute.

    Args:
        root: the course directory (holds ``nbgrader_config.py``).
        grading: the private grading area (default ``root/grading``) used when the config file does
            not place submitted/autograded/feedback/gradebook itself.
    """

    root: Path
    source: Path
    release: Path
    submitted: Path
    autograded: Path
    feedback: Path
    db_url: str = field(repr=False)  # may hold a password: shown only as ``db_shown``
    grading: Path
    course_id: str = "default_course"
    execute_timeout: int = 60
    sandbox_importable: dict = field(default_factory=dict)  # assignment -> packages, "*": default

    @classmethod
    def load(cls, root: str | os.PathLike | None = None) -> Course:
        ensure_tools_on_path()
        root = Path(root).resolve() if root else find_course_root()
        full = _load_file_config(root)
        cfg = full.get("CourseDirectory", {})
        grading = root / "grading"

        def place(key: str, default: Path) -> Path:
            value = cfg.get(key)
            if not value:
                return default
            p = Path(value)
            return p if p.is_absolute() else root / p

        db_url = resolve_db_url(cfg.get("db_url") or f"sqlite:///{grading / 'gradebook.db'}",
                                root)
        return cls(
            root=root,
            source=place("source_directory", root / "source"),
            release=place("release_directory", root / "release"),
            submitted=place("submitted_directory", grading / "submitted"),
            autograded=place("autograded_directory", grading / "autograded"),
            feedback=place("feedback_directory", grading / "feedback"),
            db_url=db_url,
            grading=grading,
            course_id=cfg.get("course_id") or "default_course",
            execute_timeout=int(full.get("Execute", {}).get("timeout") or 60),
            sandbox_importable=dict(full.get("Sandbox", {}).get("importable") or {}),
        )

    @property
    def db_path(self) -> Path | None:
        """The gradebook's file when it is an sqlite file, else None (a database server)."""
        url = make_url(self.db_url)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        return Path(url.database)

    @property
    def has_gradebook(self) -> bool:
        """Whether there is a gradebook to read: a database server always (its tables are made on
        first use), an sqlite file once ``cnnlab release`` has created it."""
        return self.db_path is None or self.db_path.exists()

    @property
    def db_shown(self) -> str:
        """The gradebook's URL as messages show it: the password masked."""
        return masked_url(self.db_url)

    def check_database(self) -> None:
        """Connect once to a database server (an sqlite file is created on first use), so that a
        wrong host, password or driver is one clear error before any work starts."""
        if self.db_path is not None:
            return
        from sqlalchemy import create_engine

        engine = None
        try:
            engine = create_engine(self.db_url)
            with engine.connect():
                pass
        except sqlalchemy_errors() as e:
            raise ValueError(f"cannot reach the gradebook {self.db_shown}: "
                             f"{_reason(e, self.db_url)}") from None
        finally:
            if engine is not None:
                engine.dispose()

    @contextlib.contextmanager
    def gradebook(self):
        """nbgrader's ``Gradebook`` on this course's database, closed afterwards.

        A database that cannot be reached is a ValueError naming the URL with its password masked
        (and the driver's reason), never a traceback that prints the password."""
        from nbgrader.api import Gradebook

        try:
            gb = Gradebook(self.db_url, self.course_id)
        except sqlalchemy_errors() as e:
            raise ValueError(f"cannot open the gradebook {self.db_shown}: "
                             f"{_reason(e, self.db_url)}") from None
        try:
            yield gb
        finally:
            gb.close()

    def assignments(self) -> list[str]:
        """Assignment ids: the folders of the source directory that hold a notebook."""
        if not self.source.is_dir():
            return []
        return sorted(
            d.name for d in self.source.iterdir() if d.is_dir() and any(d.glob("*.ipynb"))
        )

    def check_assignment(self, assignment: str) -> None:
        known = self.assignments()
        if assignment not in known:
            raise ValueError(
                f"unknown assignment {assignment!r}: the source directory {self.source} holds "
                f"{known or 'no assignments'} (an assignment is a folder with a notebook)"
            )

    def notebooks(self, assignment: str) -> list[str]:
        """Notebook names (without .ipynb) of an assignment, from its source folder."""
        return sorted(p.stem for p in (self.source / assignment).glob("*.ipynb"))

    def importable(self, assignment: str) -> tuple[str, ...]:
        """What a student's code may import while ``assignment`` is graded (``c.Sandbox.importable``
        of nbgrader_config.py; the standard library is always there)."""
        table = self.sandbox_importable
        return tuple(table.get(assignment) or table.get("*") or DEFAULT_IMPORTABLE)

    def state_dir(self, assignment: str) -> Path:
        d = self.grading / "cnnlab" / assignment
        d.mkdir(parents=True, exist_ok=True)
        return d

    def nbgrader_config(self):
        """The course's traitlets config with every path made absolute (so nbgrader does not
        depend on the working directory)."""
        from traitlets.config import Config

        c = _load_file_config(self.root)
        c.merge(Config())
        cd = c.CourseDirectory
        cd.root = str(self.root)
        cd.source_directory = str(self.source)
        cd.release_directory = str(self.release)
        cd.submitted_directory = str(self.submitted)
        cd.autograded_directory = str(self.autograded)
        cd.feedback_directory = str(self.feedback)
        cd.db_url = self.db_url
        # nbgrader's default course id is "" (no row in its course table): a database that
        # enforces foreign keys, such as PostgreSQL, refuses the assignment rows that name it
        cd.course_id = self.course_id
        return c

    def ensure_grading_dir(self) -> None:
        """Create ``grading/`` readable by its owner only: grading kernels run as another user
        (when cnnlab runs as root) and must not read the gradebook or other submissions."""
        for d in (self.grading, *([self.db_path.parent] if self.db_path else [])):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.grading, 0o700)


def read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def write_json(path: Path, data) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)

"""Where the course keeps its files: nbgrader's configuration, resolved to absolute paths.

The repository root is the nbgrader course directory (``nbgrader_config.py`` lives there).
Submissions, autograded copies, feedback and the gradebook live under ``grading/`` (git-ignored);
cnnlab's own bookkeeping (what collect could not place, grading times, flags) under
``grading/cnnlab/<assignment>/``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

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
    db_path: Path
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

        db_url = cfg.get("db_url")
        if db_url:
            if not db_url.startswith("sqlite:///"):
                raise ValueError(f"db_url {db_url!r}: cnnlab supports sqlite gradebooks only")
            db_path = Path(db_url[len("sqlite:///"):])
            db_path = db_path if db_path.is_absolute() else root / db_path
        else:
            db_path = grading / "gradebook.db"
        return cls(
            root=root,
            source=place("source_directory", root / "source"),
            release=place("release_directory", root / "release"),
            submitted=place("submitted_directory", grading / "submitted"),
            autograded=place("autograded_directory", grading / "autograded"),
            feedback=place("feedback_directory", grading / "feedback"),
            db_path=db_path,
            grading=grading,
            course_id=cfg.get("course_id") or "default_course",
            execute_timeout=int(full.get("Execute", {}).get("timeout") or 60),
            sandbox_importable=dict(full.get("Sandbox", {}).get("importable") or {}),
        )

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"

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
        return c

    def ensure_grading_dir(self) -> None:
        """Create ``grading/`` readable by its owner only: grading kernels run as another user
        (when cnnlab runs as root) and must not read the gradebook or other submissions."""
        for d in (self.grading, self.db_path.parent):
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

"""What every LMS layout shares: the files of a download (zip or folder, with caps) and the
typed record a layout makes of one file (``Attribution``: whose it is, which attempt, when).

Caps (the same for a zip and a folder): ``MAX_FILE_BYTES`` per file, ``MAX_TOTAL_BYTES`` for the
whole download, ``MAX_ENTRIES`` files, ``MAX_DEPTH`` folder levels. A file over a cap is reported
with its reason and the rest of the class is read.
"""

from __future__ import annotations

import os
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

MAX_FILE_BYTES = 50 * 2**20
MAX_TOTAL_BYTES = 4 * 2**30
MAX_ENTRIES = 20_000
MAX_DEPTH = 6


@dataclass(frozen=True)
class Entry:
    """One file of a download. ``load()`` returns its bytes (and raises on a broken zip entry,
    a file over the size cap, ...); ``problem`` is set instead when the file is over a cap."""

    name: str                      # posix path inside the zip or folder
    size: int                      # bytes (as declared by the zip)
    load: Callable[[], bytes]
    problem: str | None = None


@dataclass(frozen=True)
class Attribution:
    """Whose file an entry is, as one LMS layout reads its name.

    ``key`` is the LMS's own identifier of the student (Canvas user id, Moodle participant
    number, Blackboard user name, the plain folder's name); ``slug`` a student id made from the
    name the LMS shows; ``attempt`` sorts the attempts of one student (larger is later).
    """

    lms: str
    key: str
    slug: str
    display_name: str
    file_stem: str | None          # None: "the assignment's notebook" (plain <student>.ipynb)
    attempt: tuple = (0,)
    attempt_label: str = ""
    submitted_at: datetime | None = None   # timezone-aware
    late: bool = False
    receipt: bool = False          # a Blackboard .txt receipt, not a submitted file
    whole_stem: str | None = None  # Canvas: the stem with its -N suffix (a notebook may end so)


STUDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def slugify(name: str) -> str:
    """A student id from a shown name: accents folded, lower case, letters and digits only
    (``"José Müller"`` -> ``"josemuller"``)."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def fold(name: str) -> str:
    """A name compared loosely: accents folded, case and spacing ignored."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(folded.lower().replace(",", " ").split())


def _zip_name(info: zipfile.ZipInfo) -> str:
    """The entry's name; a zip written without the UTF-8 flag (bit 11) is read as cp437 by
    Python, so an accented UTF-8 name is repaired."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return name


def _read_capped(read: Callable[[int], bytes], what: str) -> bytes:
    data = read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise OSError(f"{what} is over the {MAX_FILE_BYTES} byte limit per file")
    return data


def entries(source: Path) -> Iterator[Entry]:
    """Every file of a zip or a folder, capped (see the module docstring)."""
    source = Path(source)
    if source.is_file() and zipfile.is_zipfile(source):
        yield from _zip_entries(source)
    elif source.is_dir():
        yield from _folder_entries(source)
    else:
        raise ValueError(f"{source} is neither a zip file nor a folder of submissions")


def _capped(name: str, size: int, count: int, total: int) -> str | None:
    depth = len(PurePosixPath(name).parts) - 1
    if count > MAX_ENTRIES:
        return f"the download holds more than {MAX_ENTRIES} files (the limit): not read"
    if depth > MAX_DEPTH:
        return f"nested {depth} folders deep (the limit is {MAX_DEPTH})"
    if size > MAX_FILE_BYTES:
        return f"{size} bytes, over the {MAX_FILE_BYTES} byte limit per file"
    if total > MAX_TOTAL_BYTES:
        return f"the download is over {MAX_TOTAL_BYTES} bytes in total (the limit): not read"
    return None


def _zip_entries(source: Path) -> Iterator[Entry]:
    with zipfile.ZipFile(source) as z:
        infos = [i for i in z.infolist() if not i.is_dir()]
    total = 0
    for count, info in enumerate(infos, 1):
        total += info.file_size
        name = _zip_name(info)

        def load(i=info):
            with zipfile.ZipFile(source) as z, z.open(i) as f:
                return _read_capped(f.read, i.filename)

        yield Entry(name, info.file_size, load, _capped(name, info.file_size, count, total))


def _folder_entries(source: Path) -> Iterator[Entry]:
    total, count = 0, 0
    for dirpath, dirnames, filenames in os.walk(source):  # links to folders are not followed
        dirnames.sort()
        here = Path(dirpath)
        for fn in sorted(filenames) + sorted(d for d in dirnames if (here / d).is_symlink()):
            p = here / fn
            rel = p.relative_to(source).as_posix()
            count += 1
            if p.is_symlink():
                yield Entry(rel, 0, bytes, "a symbolic link, not a file (links are not followed)")
                continue
            size = p.stat().st_size
            total += size

            def load(p=p):
                with open(p, "rb") as f:
                    return _read_capped(f.read, p.name)

            yield Entry(rel, size, load, _capped(rel, size, count, total))


def is_junk(name: str) -> bool:
    """macOS resource forks, dot files, notebook checkpoints: never a submission."""
    parts = PurePosixPath(name).parts
    return any(p.startswith(".") or p == "__MACOSX" or p == ".ipynb_checkpoints" for p in parts)

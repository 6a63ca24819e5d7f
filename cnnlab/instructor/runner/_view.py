"""The sandbox's view of site-packages: only the packages an assignment allows, and what they need.

``site_view(("numpy",))`` answers which files of the grader's own environment appear inside the
sandbox, and where: the allowed distributions and the closure of their requirements (extras
left out), found from their installed metadata (``RECORD``), plus the runner's own package. Every
other package of the environment (torch, scipy, the rest of ``cnnlab``) is simply not there, so no
``sys.path`` trick or file-path import can reach it. A name may also be a dotted module of a
local package (``"cnnlab.data"``): that one module is shown, inside an otherwise empty package.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import importlib.util
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

RUNNER_DIR = Path(__file__).resolve().parent
RUNNER_PACKAGE = "cnnlab.instructor.runner"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class SiteView:
    """What to show under the sandbox's site-packages.

    Attributes:
        binds: (host path, path relative to site-packages), each shown read-only.
        stubs: relative paths of empty ``__init__.py`` files for the packages around a shown
            module (``cnnlab/__init__.py`` around the runner), so the rest stays absent.
        distributions: the distribution names shown, for reports.
    """

    binds: tuple[tuple[str, str], ...]
    stubs: tuple[str, ...]
    distributions: tuple[str, ...]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def _installed() -> dict[str, md.Distribution]:
    """Every distribution of the environment, by normalised name (first one on sys.path wins)."""
    found: dict[str, md.Distribution] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(_norm(name), dist)
    return found


def _distribution_of(top: str) -> md.Distribution:
    """The distribution providing the top-level import name ``top``."""
    dist = _installed().get(_norm(top))
    if dist is not None and top in _top_names(dist):
        return dist
    for dist in _installed().values():  # import name differs from the distribution's name
        if top in _top_names(dist):
            return dist
    raise ValueError(
        f"the sandbox policy allows importing {top!r}, but no installed distribution provides a "
        f"top-level {top!r}: install it in the course environment or fix the assignment's policy"
    )


def _record(dist: md.Distribution) -> list[str]:
    """The paths a distribution installed (its RECORD; faster than ``dist.files`` for torch's
    fifteen thousand), relative to site-packages."""
    text = dist.read_text("RECORD")
    if text is None:
        return [str(f) for f in dist.files or ()]
    return [row.split(",", 1)[0].strip('"') for row in text.splitlines() if row]


def _top_names(dist: md.Distribution) -> set[str]:
    names = {rel.split("/", 1)[0] for rel in _record(dist)}
    names |= {n.strip() for n in (dist.read_text("top_level.txt") or "").split()}
    return {n.removesuffix(".py") for n in names if n and not n.startswith("..")} | names


def _requirements(dist: md.Distribution) -> list[str]:
    """Names of what ``dist`` needs, extras and other platforms' markers left out."""
    from packaging.requirements import Requirement

    names = []
    for line in dist.requires or ():
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            names.append(_norm(req.name))
    return names


def _closure(roots: list[md.Distribution]) -> list[md.Distribution]:
    seen: dict[str, md.Distribution] = {}
    todo = list(roots)
    while todo:
        dist = todo.pop()
        key = _norm(dist.metadata["Name"])
        if key in seen:
            continue
        seen[key] = dist
        todo += [_installed()[n] for n in _requirements(dist) if n in _installed()]
    return sorted(seen.values(), key=lambda d: _norm(d.metadata["Name"]))


def _whole(host: Path) -> bool:
    """Whether a top-level entry of site-packages belongs to one distribution only: a module
    file, a regular package, a metadata or bundled-library folder. ``__pycache__`` and namespace
    packages (no ``__init__.py``) are shared, so they are shown file by file."""
    if not host.is_dir():
        return True
    return host.name.endswith((".dist-info", ".libs")) or (host / "__init__.py").exists()


def _dist_binds(dists: list[md.Distribution]) -> list[tuple[str, str]]:
    """(host path, path relative to site-packages) for every file of ``dists``, whole folders
    where ``_whole`` allows."""
    binds: dict[str, str] = {}
    for dist in dists:
        by_top: dict[str, list[str]] = {}
        for rel in _record(dist):
            top = rel.split("/", 1)[0]
            if top != "..":  # not scripts in bin/
                by_top.setdefault(top, []).append(rel)
        for top, paths in by_top.items():
            host = Path(dist.locate_file(top))
            for rel in [top] if _whole(host) else paths:
                host = Path(dist.locate_file(rel))
                if host.exists():
                    binds[rel] = str(host)
    return [(host, rel) for rel, host in sorted(binds.items())]


def _module_binds(dotted: str) -> tuple[list[tuple[str, str]], list[str]]:
    """One module of a local package (``cnnlab.data``): its file or folder, and stub packages."""
    spec = importlib.util.find_spec(dotted)
    if spec is None or spec.origin is None:
        raise ValueError(f"the sandbox policy allows {dotted!r}, which cannot be found")
    parts = dotted.split(".")
    origin = Path(spec.origin)
    if spec.submodule_search_locations:  # a package: show its whole folder
        host, rel = origin.parent, "/".join(parts)
    else:
        host, rel = origin, "/".join(parts) + origin.suffix
    stubs = ["/".join(parts[:i]) + "/__init__.py" for i in range(1, len(parts))]
    return [(str(host), rel)], stubs


@functools.cache
def site_view(importable: tuple[str, ...]) -> SiteView:
    """The view for a policy's ``importable`` names (cached: computed once per worker)."""
    for name in importable:
        if not _NAME.match(name):
            raise ValueError(f"{name!r} is not a module name (letters, digits, _ and dots)")
    tops = [n for n in importable if "." not in n]
    dists = _closure([_distribution_of(n) for n in tops])
    binds = _dist_binds(dists)
    stubs: set[str] = set()
    for dotted in [n for n in importable if "." in n] + [RUNNER_PACKAGE]:
        if dotted.split(".")[0] in tops:
            continue  # already shown whole
        more, more_stubs = _module_binds(dotted)
        binds += more
        stubs |= set(more_stubs)
    shown = {rel for _, rel in binds}
    stubs = {s for s in stubs if s.removesuffix("/__init__.py") not in shown}
    return SiteView(
        binds=tuple(binds),
        stubs=tuple(sorted(stubs)),
        distributions=tuple(d.metadata["Name"] for d in dists),
    )


def site_packages() -> str:
    """The site-packages path of the interpreter's environment (``purelib``)."""
    return sysconfig.get_paths()["purelib"]

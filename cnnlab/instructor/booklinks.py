"""Where the course book is published, and the links from the exercises to it.

One setting says where the book lives: ``html: baseurl:`` in ``_config.yml`` (Sphinx's
``html_baseurl``, the address of the published book). A course JupyterHub, if any, is
``sphinx: config: course_jupyterhub_url:`` in the same file; the book's exercise links use both
(``book/_ext/course_links.py``).

Authors link an exercise to its chapter by the chapter's source, as seen from the notebook::

    [The convolution layer](../../book/02-convolution-layer.md#a-filter-is-a-small-volume)

and ``nbgrader generate_assignment`` (the :class:`BookLinks` preprocessor, registered in
``nbgrader_config.py``) writes the student copy with a link to the rendered page instead:
``<baseurl>/book/02-convolution-layer.html#a-filter-is-a-small-volume`` when the book is
published, else the page of the locally built book, ``../../_build/html/book/...html#...``
(``make book`` builds it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Unicode

#: a Markdown link target to a chapter source: ../../book/<page>.md, optionally #anchor
CHAPTER_LINK = re.compile(r"\]\(\.\./\.\./book/([A-Za-z0-9_.-]+)\.md(#[A-Za-z0-9_-]+)?\)")
LOCAL_BOOK = "../../_build/html"  # the built book, seen from exercises/<id>/<id>.ipynb


@dataclass(frozen=True)
class BookSettings:
    """The course's book settings from ``_config.yml``; empty strings where not set."""

    url: str = ""  # the published book, e.g. https://example.org/cnn-course
    hub_url: str = ""  # the course's JupyterHub, e.g. https://hub.example.org

    @classmethod
    def load(cls, root: str | Path) -> BookSettings:
        """Read ``<root>/_config.yml``; a missing file gives empty settings."""
        import yaml

        path = Path(root) / "_config.yml"
        if not path.is_file():
            return cls()
        data = yaml.safe_load(path.read_text()) or {}
        url = str((data.get("html") or {}).get("baseurl") or "").rstrip("/")
        sphinx = (data.get("sphinx") or {}).get("config") or {}
        hub = str(sphinx.get("course_jupyterhub_url") or "").rstrip("/")
        return cls(url=url, hub_url=hub)

    def page(self, page: str, anchor: str = "") -> str:
        """The link to book page ``page`` (e.g. ``02-convolution-layer``), section ``anchor``."""
        base = self.url or LOCAL_BOOK
        return f"{base}/book/{page}.html" + (f"#{anchor.lstrip('#')}" if anchor else "")


def rewrite_links(markdown: str, settings: BookSettings) -> str:
    """``markdown`` with every chapter-source link turned into a link to the rendered page."""

    def repl(m: re.Match) -> str:
        return f"]({settings.page(m.group(1), m.group(2) or '')})"

    return CHAPTER_LINK.sub(repl, markdown)


class BookLinks(Preprocessor):
    """nbgrader preprocessor: chapter-source links in Markdown cells -> the rendered book."""

    enabled = Bool(True, help="rewrite the links (nbconvert preprocessors are off by default)").tag(
        config=True
    )

    config_file = Unicode("", help="the course's _config.yml (default: none, local links)").tag(
        config=True
    )

    def preprocess(self, nb, resources):
        path = Path(self.config_file) if self.config_file else None
        settings = BookSettings.load(path.parent) if path and path.is_file() else BookSettings()
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = rewrite_links(cell.source, settings)
        return nb, resources

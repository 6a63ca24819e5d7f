"""Links between the exercises and the book go to rendered pages and sections that exist.

- Student notebooks (exercises/) link to the rendered book, never to a chapter's MyST source:
  the published book (`html: baseurl:` in _config.yml) or, while that is empty, the locally
  built one. Every linked page is a chapter of the book, and every #anchor is the id Sphinx gives
  one of its headings (docutils' make_id of the title). This needs no build.
- With the book built (`make book`), the same pages and anchors exist in _build/html, and every
  chapter's {exercise} link is a download of the student notebook that the build copied. Pages
  whose build is older than their source are skipped (a stale build says nothing).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
from docutils.nodes import make_id

from cnnlab.instructor.booklinks import LOCAL_BOOK, BookSettings, rewrite_links

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
ASSIGNMENTS = sorted(
    p.name for p in (ROOT / "solutions").iterdir() if (p / f"{p.name}.ipynb").is_file()
)
SETTINGS = BookSettings.load(ROOT)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def book_links(assignment: str) -> list[tuple[str, str]]:
    """(page, anchor) of every link from the student notebook to the book."""
    nb = nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    base = SETTINGS.url or LOCAL_BOOK
    found = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        assert not re.search(r"\]\([^)]*book/[^)]*\.md", cell.source), (
            f"{assignment}: a link to a chapter's MyST source is left: {cell.source[:200]}"
        )
        for target in LINK.findall(cell.source):
            if target.startswith(base + "/book/"):
                parts = urlsplit(target[len(base) + 1 :])
                found.append((parts.path, parts.fragment))
    return found


def heading_ids(page: str) -> set[str]:
    text = (ROOT / page).with_suffix(".md").read_text()
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # no comments in code cells
    return {make_id(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.M)}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercise_links_name_chapters_and_sections_that_exist(assignment):
    links = book_links(assignment)
    assert links, f"{assignment} links to no page of the book"
    pages = {p for p, _ in links}
    assert any(a for _, a in links), f"{assignment}: no link to a section"
    for page in pages:
        assert (ROOT / page).with_suffix(".md").is_file(), f"{assignment}: no chapter {page}"
    for page, anchor in links:
        if anchor:
            assert anchor in heading_ids(page), f"{assignment}: {page} has no section #{anchor}"


def test_links_follow_the_one_setting():
    md = "[Pooling](../../book/06-pooling.md#average-pooling) and [x](https://example.org/a.md)"
    published = BookSettings(url="https://books.example.org/cnn")
    assert rewrite_links(md, published) == (
        "[Pooling](https://books.example.org/cnn/book/06-pooling.html#average-pooling) and "
        "[x](https://example.org/a.md)"
    )
    assert rewrite_links(md, BookSettings()).startswith(
        "[Pooling](../../_build/html/book/06-pooling.html#average-pooling)"
    )


def built(page: Path, source: Path) -> bool:
    return page.is_file() and page.stat().st_mtime >= source.stat().st_mtime


@pytest.mark.skipif(not (HTML / "index.html").is_file(), reason="the book is not built (make book)")
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercise_links_resolve_in_the_built_book(assignment):
    checked = 0
    for page, anchor in book_links(assignment):
        html, source = HTML / page, (ROOT / page).with_suffix(".md")
        if not built(html, source):
            continue
        text = html.read_text()
        assert not anchor or f'id="{anchor}"' in text, f"{html} has no id {anchor!r}"
        checked += 1
    if not checked:
        pytest.skip("the built pages are older than their sources")


@pytest.mark.skipif(not (HTML / "index.html").is_file(), reason="the book is not built (make book)")
def test_book_offers_each_exercise_as_a_download():
    offered = set()
    for page in sorted((ROOT / "book").glob("0*.md")):
        html = HTML / "book" / f"{page.stem}.html"
        if not built(html, page):
            continue
        for href in re.findall(r'href="([^"]*_downloads/[^"]+\.ipynb)"', html.read_text()):
            target = (html.parent / href).resolve()
            assert target.is_file(), f"{html}: {href} was not copied"
            assert (
                target.read_bytes()
                == (ROOT / "exercises" / target.stem / f"{target.stem}.ipynb").read_bytes()
            ), f"{href} is not the current student notebook"
            offered.add(target.stem)
    if not offered:
        pytest.skip("no chapter built since its source changed")
    assert offered <= set(ASSIGNMENTS)


def test_the_exercise_role_offers_the_download_and_the_hub(tmp_path):
    """A one-page Sphinx project with the course's extension and a hub URL set."""
    import shutil

    from sphinx.application import Sphinx

    src, out = tmp_path / "src", tmp_path / "out"
    (src / "exercises" / "05_pooling").mkdir(parents=True)
    shutil.copy(
        ROOT / "exercises" / "05_pooling" / "05_pooling.ipynb", src / "exercises" / "05_pooling"
    )
    (src / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'book' / '_ext')!r})\n"
        "extensions = ['course_links']\n"
        "course_jupyterhub_url = 'https://hub.example.org'\n"
    )
    (src / "index.rst").write_text("Pooling\n=======\n\nExercise :exercise:`05_pooling`.\n")
    app = Sphinx(
        str(src),
        str(src),
        str(out),
        str(tmp_path / "doctrees"),
        "html",
        status=None,
        warningiserror=True,
    )
    app.build()
    html = (out / "index.html").read_text()
    href = re.search(r'href="(_downloads/[^"]+/05_pooling\.ipynb)"', html).group(1)
    assert (out / href).read_bytes() == (
        ROOT / "exercises" / "05_pooling" / "05_pooling.ipynb"
    ).read_bytes()
    assert (
        'href="https://hub.example.org/hub/user-redirect/lab/tree/05_pooling/05_pooling.ipynb"'
        in html
    )
    assert "open in JupyterHub" in html

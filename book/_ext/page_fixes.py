"""Sphinx extension of the course book: fixes to the pages the toolchain writes.

Accessibility: sphinxcontrib-bibtex marks each entry of the references list
``role="doc-biblioentry"`` inside a ``role="list"``; ARIA 1.2 deprecates that role and a list may
only hold ``listitem``s, so the entries become list items (axe-core's ``aria-required-children``).

The themes' templates give a few controls an ``aria-label`` that does not contain their visible text
(axe-core's ``label-content-name-mismatch``): the search field ("Search" for "Search Ctrl+K"), the
colour-mode button (its icons' titles "Light", "Dark" read as text), and the "Show code cell source"
toggles ("Toggle hidden content"). After the build the pages are rewritten so that those controls
are named by their text (the colour-mode button keeps its label and its icons lose the titles).

sphinx-thebe 0.3.1 (loaded by Jupyter Book 1.0.4 even with thebe off) registers its inline
``const THEBE_JS_URL = ...`` script again on every rebuild, so a page can carry it twice and the
browser throws "Identifier 'THEBE_JS_URL' has already been declared". Each page keeps one copy of
every script here.
"""

from __future__ import annotations

import re
from pathlib import Path

# (pattern, replacement) applied to every written HTML page; each is idempotent.
_NAME_FIXES = (
    (re.compile(r'<summary aria-label="Toggle hidden content">'), "<summary>"),
    (
        re.compile(r'(<button class="btn search-button-field[^"]*"[^>]*?) aria-label="Search"'),
        r"\1",
    ),
    (re.compile(r'(<i class="theme-switch [^"]*" data-mode="\w+")\s+title="[^"]*"'), r"\1"),
)


def _script_key(script) -> tuple:
    """Same file, or same inline body (registered once with filename None, once with '')."""
    attributes = getattr(script, "attributes", {}) or {}
    filename = getattr(script, "filename", script) or ""
    return (str(filename), tuple(sorted(attributes.items())))


def dedupe_scripts(app, pagename, templatename, context, doctree):
    """Drop repeated entries of the page's ``script_files`` (same file or same inline body)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def fix_reference_list_roles(app, pagename, templatename, context, doctree):
    """Entries of the bibliography list get the ``listitem`` role their ``role="list"`` requires."""
    body = context.get("body")
    if body and 'role="doc-biblioentry"' in body:
        context["body"] = body.replace('role="doc-biblioentry"', 'role="listitem"')


def fix_accessible_names(app, exception):
    """Rewrite the written pages: every control's accessible name contains its visible text."""
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        fixed = html
        for pattern, replacement in _NAME_FIXES:
            fixed = pattern.sub(replacement, fixed)
        if fixed != html:
            page.write_text(fixed, encoding="utf-8")


def refresh_static_files(app, exception):
    """Copy the book's own static files (CSS, JS) again when they changed: Sphinx does not
    overwrite a static file an earlier build copied, so an incremental build would keep the old."""
    if exception is not None or app.builder.format != "html":
        return
    for folder in app.config.html_static_path:
        source_dir = Path(app.confdir) / folder
        for source in source_dir.glob("*.*"):
            target = Path(app.outdir) / "_static" / source.name
            if source.suffix in (".css", ".js") and target.exists():
                if target.read_bytes() != source.read_bytes():
                    target.write_bytes(source.read_bytes())


def setup(app):
    app.connect("build-finished", refresh_static_files)
    app.connect("build-finished", fix_accessible_names)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    app.connect("html-page-context", fix_reference_list_roles, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

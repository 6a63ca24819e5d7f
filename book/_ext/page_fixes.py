"""Sphinx extension of the course book: fixes to the pages the toolchain writes.

Accessibility: sphinxcontrib-bibtex marks each entry of the references list ``role="doc-biblioentry"``
inside a ``role="list"``; ARIA 1.2 deprecates that role and a list may only hold ``listitem``s, so the
entries become list items (axe-core's ``aria-required-children``).

sphinx-thebe 0.3.1 (loaded by Jupyter Book 1.0.4 even with thebe off) registers its inline
``const THEBE_JS_URL = ...`` script again on every rebuild, so a page can carry it twice and the
browser throws "Identifier 'THEBE_JS_URL' has already been declared". Each page keeps one copy of
every script here.
"""

from __future__ import annotations


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


def setup(app):
    app.connect("html-page-context", dedupe_scripts, priority=900)
    app.connect("html-page-context", fix_reference_list_roles, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

"""The built book in a real browser: every TOC page opened in Debian's Chromium through Playwright.

Needs the book built first (`make book`; `make test` does it). Serves `_build/html` on a localhost
port and fails on a console error, an uncaught page error, a failed request, an HTTP error, or any
request to another host (the book must work offline). Checks that formulas were typeset by the local
MathJax, images loaded, the filter animation's player works, and the "next" links walk through every
chapter. A full-page screenshot of every page goes to `_build/screenshots/` for review.
"""

import functools
import http.server
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def _toc_pages():
    """The TOC's documents in reading order, as paths of their HTML pages."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    files += [c["file"] for c in toc.get("chapters", [])]
    return [f"{f}.html" for f in files]


PAGES = _toc_pages()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="module")
def server():
    if not (HTML / PAGES[0]).is_file():
        pytest.fail(
            f"the book is not built: {HTML / PAGES[0]} is missing. Run `make book` first "
            "(`make test` builds it before running the tests)."
        )
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (Debian's chromium package)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module", autouse=True)
def screenshots_dir():
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    return SHOTS


class PageProblems:
    """Everything that went wrong while one page loaded."""

    def __init__(self, page):
        self.console, self.errors, self.failed, self.remote, self.http = [], [], [], [], []
        page.on("console", lambda m: self.console.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        page.on("response", self._response)

        def route(route):
            url = route.request.url
            host = urlparse(url).hostname
            if urlparse(url).scheme in ("http", "https") and host not in LOCAL_HOSTS:
                self.remote.append(url)
                route.abort()  # never reach the network, but remember that the page asked
            else:
                route.continue_()

        page.route("**/*", route)

    def _response(self, response):
        if response.status >= 400:
            self.http.append(f"{response.status} {response.url}")

    def report(self):
        out = []
        for name in ("console", "errors", "failed", "http", "remote"):
            out += [f"{name}: {item}" for item in getattr(self, name)]
        return out


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = PageProblems(page)
    page.goto(url, wait_until="load")
    return page, problems


def _wait_for_mathjax(page):
    """Resolve once MathJax (if the page loads it) has typeset everything."""
    page.wait_for_function(
        "() => !document.querySelector('script[src*=mathjax]')"
        " || (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise)"
    )
    page.evaluate(
        "() => window.MathJax && window.MathJax.startup"
        " ? window.MathJax.startup.promise.then(() => true) : true"
    )


def _load_all_images(page):
    page.evaluate("() => document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
    page.wait_for_function(
        "() => Array.from(document.images).every(i => i.complete)", timeout=20_000
    )


REMOTE_ASSET = re.compile(
    r"""<(?:script|img|iframe|source|video|audio)\b[^>]*\bsrc=["'](?:https?:)?//"""
    r"""|<link\b(?=[^>]*\brel=["'](?:stylesheet|preload|modulepreload|icon)["'])[^>]*\bhref=["'](?:https?:)?//"""
    r"""|@import\s+(?:url\()?["']?(?:https?:)?//""",
    re.I,
)


def test_no_page_links_a_remote_asset(server):
    """Every built HTML file (TOC or not): no script, style, image or font from another host."""
    offenders = {}
    for page in sorted(HTML.rglob("*.html")):
        hits = REMOTE_ASSET.findall(page.read_text(encoding="utf-8", errors="replace"))
        if hits:
            offenders[str(page.relative_to(HTML))] = hits[:3]
    assert not offenders, f"pages that would load remote assets: {offenders}"


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_offline_and_renders(server, browser, path):
    page, problems = _open(browser, f"{server}/{path}")
    try:
        _wait_for_mathjax(page)
        _load_all_images(page)

        math = page.evaluate(
            """() => {
                const nodes = Array.from(document.querySelectorAll('span.math, div.math'));
                return {total: nodes.length,
                        untypeset: nodes.filter(n => !n.querySelector('mjx-container'))
                                        .map(n => n.textContent.slice(0, 80))};
            }"""
        )
        assert not math["untypeset"], f"{path}: formulas left untypeset: {math['untypeset']}"
        if math["total"]:
            assert page.locator("mjx-container svg").count() >= math["total"], path
        prose = page.evaluate(
            """() => Array.from(document.querySelectorAll('article p, article li, article td,'
                                                          + ' article figcaption'))
                         .filter(e => !e.closest('pre, code, .highlight'))
                         .map(e => e.innerText).join('\\n')"""
        )
        raw = re.findall(r"\$\$|\\\(|\\\[|\{glue[:\w]*\}|\{cite\}|\{exercise\}|\{doc\}", prose)
        assert not raw, f"{path}: unrendered markup left in the text: {sorted(set(raw))}"
        assert "<Figure size" not in page.content(), f"{path}: a figure glued as text, not image"

        broken = page.evaluate(
            "() => Array.from(document.images).filter(i => !(i.naturalWidth > 0))"
            ".map(i => i.getAttribute('src').slice(0, 80))"
        )
        assert not broken, f"{path}: images that did not load: {broken}"

        page.screenshot(path=str(SHOTS / (Path(path).stem + ".png")), full_page=True)
        assert not problems.report(), f"{path}: " + "; ".join(problems.report())
    finally:
        page.close()


def test_the_filter_animation_plays(server, browser):
    """The matplotlib JS player of chapter 2 steps and plays in the static page."""
    page, problems = _open(browser, f"{server}/book/02-convolution-layer.html")
    try:
        anim = page.locator("div.animation")
        assert anim.count() >= 1, "no animation player (div.animation) on the convolution page"
        slider = anim.first.locator("input.anim-slider")
        img = anim.first.locator("img")
        frames = int(slider.get_attribute("max")) + 1
        assert frames > 2, f"the animation has only {frames} frame(s)"
        first_src = img.get_attribute("src")
        assert first_src and first_src.startswith("data:image/"), "no first frame shown"
        assert img.evaluate("i => i.naturalWidth") > 0

        anim.first.locator("button[title='Next frame']").click()
        assert slider.input_value() == "1", "'Next frame' did not advance the animation"
        assert img.get_attribute("src") != first_src, "the frame image did not change"

        anim.first.locator("button[title='Play']").click()
        page.wait_for_function(
            "s => parseInt(s.value) >= 3", arg=slider.element_handle(), timeout=10_000
        )
        anim.first.locator("button[title='Pause']").click()
        icons = anim.first.locator("button svg, button i")
        assert icons.count() >= 9, "the player's buttons have no icons"
        assert not problems.report(), "; ".join(problems.report())
    finally:
        page.close()


def test_navigation_reaches_every_chapter(server, browser):
    """From the home page, the sidebar links every TOC page and 'next' walks them in order."""
    page, problems = _open(browser, f"{server}/index.html")
    try:
        page.wait_for_url(re.compile(re.escape(PAGES[0]) + "$"))  # index.html redirects to the root
        sidebar = {
            urlparse(page.evaluate("a => a.href", a)).path.lstrip("/")
            for a in page.locator("nav.bd-docs-nav a.reference.internal").element_handles()
        }
        missing = [p for p in PAGES[1:] if p not in sidebar]
        assert not missing, f"the sidebar does not link {missing}"

        visited = [urlparse(page.url).path.lstrip("/")]
        for _ in range(len(PAGES) + 2):
            nxt = page.locator("a.right-next")
            if nxt.count() == 0:
                break
            nxt.first.click()
            page.wait_for_load_state("load")
            visited.append(urlparse(page.url).path.lstrip("/"))
        assert visited == PAGES, f"'next' links walk {visited}, the TOC is {PAGES}"
        assert not problems.report(), "; ".join(problems.report())
    finally:
        page.close()


# --- Layout at a phone's and a laptop's width, and accessibility ---------------------------------
WIDTHS = (390, 1280)
AXE = ROOT / "tools" / "axe" / "node_modules" / "axe-core" / "axe.min.js"

# Elements that stick out of the viewport, unless an ancestor is a scroll container (overflow-x auto
# or scroll): wide tables and display formulas may scroll inside their box, the page itself may not.
OVERFLOW_JS = """() => {
    const width = document.documentElement.clientWidth;
    const scrolls = el => {
        for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
            const o = getComputedStyle(a).overflowX;
            if (o === 'auto' || o === 'scroll') return true;
        }
        return false;
    };
    const out = [];
    for (const el of document.querySelectorAll('main article *')) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) continue;
        if ((r.right > width + 1 || r.left < -1) && !scrolls(el)) {
            const cls = typeof el.className === 'string' ? el.className.split(' ')[0] : '';
            out.push(`${el.tagName.toLowerCase()}.${cls} right=${Math.round(r.right)}`);
        }
    }
    return {page: document.documentElement.scrollWidth, width: width, offenders: out.slice(0, 5)};
}"""


def _open_at(browser, url, width):
    page = browser.new_page(viewport={"width": width, "height": 900})
    problems = PageProblems(page)
    page.goto(url, wait_until="load")
    _wait_for_mathjax(page)
    _load_all_images(page)
    return page, problems


IMAGES_JS = """() => Array.from(document.querySelectorAll('main article img')).map(i => {
    const r = i.getBoundingClientRect();
    return [i.getAttribute('src').slice(0, 60), Math.round(r.width), Math.round(r.height)]; })"""
BOLD_JS = """() => Array.from(document.querySelectorAll('article span.pasted-text'))
    .filter(e => getComputedStyle(e).fontWeight !== getComputedStyle(e.parentElement).fontWeight)
    .map(e => e.textContent)"""
AXE_JS = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
    .filter(v => v.impact === 'critical' || v.impact === 'serious')
    .map(v => `${v.impact} ${v.id}: ${v.nodes.length} x ${v.nodes[0].target.join(' ')}`)"""


@pytest.fixture(scope="module")
def page_report(server, browser):
    """Open each (page, width) once and measure everything the layout and axe tests assert on."""
    reports = {}

    def report(path, width):
        if (path, width) not in reports:
            page, problems = _open_at(browser, f"{server}/{path}", width)
            try:
                (SHOTS / str(width)).mkdir(exist_ok=True)
                shot = SHOTS / str(width) / (Path(path).stem + ".png")
                page.screenshot(path=str(shot), full_page=True)
                data = {
                    "layout": page.evaluate(OVERFLOW_JS),
                    "images": page.evaluate(IMAGES_JS),
                    "bold": page.evaluate(BOLD_JS),
                    "problems": problems.report(),
                    "axe": None,
                }
                if width == 1280 and AXE.is_file():
                    page.add_script_tag(path=str(AXE))
                    data["axe"] = page.evaluate(AXE_JS)
            finally:
                page.close()
            reports[path, width] = data
        return reports[path, width]

    return report


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("path", PAGES)
def test_page_fits_the_width_and_shows_its_images(page_report, path, width):
    """At 390 px (a phone) and 1280 px nothing scrolls the page sideways (wide formulas, tables and
    figures scroll in their own box), every image in the text is rendered at a usable size, and
    glued numbers read as part of their sentence (not bold)."""
    r = page_report(path, width)
    where = f"{path} at {width} px"
    layout = r["layout"]
    assert layout["page"] <= layout["width"] + 1, f"{where} scrolls sideways: {layout}"
    assert not layout["offenders"], f"{where}: content cut off: {layout['offenders']}"
    small = [s for s in r["images"] if s[1] < 100 or s[2] < 40]
    assert not small, f"{where}: images rendered too small (src, w, h): {small}"
    assert not r["bold"], f"{where}: glued values set apart from their sentence: {r['bold'][:5]}"
    assert not r["problems"], f"{where}: " + "; ".join(r["problems"])


@pytest.mark.parametrize("width", WIDTHS)
def test_the_animation_and_its_controls_are_fully_visible(server, browser, width):
    """The convolution animation's frame, slider and every button lie inside the viewport."""
    page, _ = _open_at(browser, f"{server}/book/02-convolution-layer.html", width)
    try:
        anim = page.locator("div.animation").first
        anim.scroll_into_view_if_needed()
        boxes = anim.evaluate(
            """a => Array.from(a.querySelectorAll('img, input.anim-slider, .anim-buttons button'))
                    .map(e => { const r = e.getBoundingClientRect();
                                return [e.tagName, r.left, r.right, r.width, r.height]; })"""
        )
        assert len(boxes) >= 11, f"expected the frame, the slider and 9 buttons, got {boxes}"
        outside = [b for b in boxes if b[1] < -0.5 or b[2] > width + 0.5 or b[3] < 10 or b[4] < 10]
        assert not outside, f"at {width} px these controls are cut off or tiny: {outside}"
        img_width = boxes[0][3]
        assert img_width >= min(340, width - 50), f"the frame is only {img_width:.0f} px wide"
    finally:
        page.close()


@pytest.mark.parametrize("path", PAGES)
def test_axe_finds_no_serious_accessibility_violation(page_report, path):
    """axe-core (npm, pinned in tools/install-axe.sh; `make axe`) on every page: no violation of
    impact 'critical' or 'serious' (alt text, labels, ARIA structure, names, colour contrast)."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `make axe` (`make test` does it)")
    violations = page_report(path, 1280)["axe"]
    assert not violations, f"{path}: " + "; ".join(violations)


def test_chapters_carry_their_numbers(server, browser):
    """_toc.yml numbers the chapters: each chapter page's title starts with its place in the TOC,
    as {numref} references in the text assume."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    chapters = [c["file"] for c in toc["parts"][0]["chapters"]]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        for number, chapter in enumerate(chapters, start=1):
            page.goto(f"{server}/{chapter}.html", wait_until="load")
            title = page.locator("article h1").first.inner_text()
            assert title.startswith(f"{number}."), f"{chapter}: title {title!r}, expected {number}."
    finally:
        page.close()

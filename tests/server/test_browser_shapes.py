"""Browser tests of the annotate page's geometry: zoom (wheel and button) and pan (Space+drag)
before drawing a box must still store the box in the right image coordinates; a polygon and
a line drawn with clicks (finished by double click and by Enter) come back after a reload, in
the page and in the API, with the clicked vertices.

The expected coordinates come from an independent model of the editor's view: the photo is
fitted and centred in the canvas, a zoom keeps the image point under its centre (the cursor
for the wheel, the canvas centre for the button) in place, a pan moves the image with the
mouse. Screenshots go where those of ``test_browser.py`` go.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

import tests.server.test_browser as tb
from tests.server.helpers import SHAPES_TASK, served_copy
from tests.server.test_browser import api_get, log_in, open_task, shots, wait_saved

pytestmark = tb.pytestmark
# The browser, page and screenshot fixtures of test_browser.py; ``served`` below is this
# module's own server, over its own copy of the project, so every item of the task is free.
browser = tb.browser
page = tb.page
artifacts = tb.artifacts

WHEEL_STEP = 1.15  # editor.js: one wheel notch
BUTTON_STEP = 1.25  # annotate.js: the "+" button and key


@pytest.fixture(scope="module")
def served(template_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    folder = tmp_path_factory.mktemp("browser-shapes") / "proj"
    with served_copy(template_project, folder) as served:
        yield served


@dataclass
class View:
    """Screen (canvas px) <-> relative image coordinates, as the editor should map them."""

    width: int  # of the image, px
    height: int
    scale: float
    ox: float
    oy: float

    @classmethod
    def fitted(cls, width: int, height: int, cw: float, ch: float) -> View:
        scale = min(cw / width, ch / height)
        return cls(width, height, scale, (cw - width * scale) / 2, (ch - height * scale) / 2)

    def zoom(self, factor: float, cx: float, cy: float) -> None:
        self.ox = cx - (cx - self.ox) * factor
        self.oy = cy - (cy - self.oy) * factor
        self.scale *= factor

    def to_rel(self, sx: float, sy: float) -> tuple[float, float]:
        return (sx - self.ox) / self.scale / self.width, (sy - self.oy) / self.scale / self.height

    def to_screen(self, x: float, y: float) -> tuple[int, int]:
        """The whole canvas pixel nearest to a relative image point."""
        sx = self.ox + x * self.width * self.scale
        sy = self.oy + y * self.height * self.scale
        return round(sx), round(sy)

    def tolerance(self) -> float:
        """1.5 screen px, in relative units of the shorter image side (the looser of the two)."""
        return 1.5 / (self.scale * min(self.width, self.height))


class Canvas:
    """Mouse input at whole canvas pixels (so both sides agree on the exact point)."""

    def __init__(self, page: Page) -> None:
        box = page.locator("#canvas").bounding_box()
        assert box is not None
        self.page = page
        self.x, self.y, self.w, self.h = box["x"], box["y"], box["width"], box["height"]

    def at(self, sx: float, sy: float) -> tuple[float, float]:
        assert 0 <= sx < self.w and 0 <= sy < self.h, (sx, sy, self.w, self.h)
        return self.x + sx, self.y + sy

    def drag(self, a: tuple[float, float], b: tuple[float, float]) -> None:
        mouse = self.page.mouse
        mouse.move(*self.at(*a))
        mouse.down()
        mouse.move(*self.at((a[0] + b[0]) / 2, (a[1] + b[1]) / 2), steps=4)
        mouse.move(*self.at(*b), steps=4)
        mouse.up()


def view_of(page: Page, item: int) -> tuple[View, Canvas]:
    image = api_get(page, f"/api/items/{item}")["image"]
    canvas = Canvas(page)
    # the canvas has no CSS size: its drawing buffer is its size on screen
    size = page.evaluate(
        "() => [document.querySelector('#canvas').width, document.querySelector('#canvas').height]"
    )
    assert size == [round(canvas.w), round(canvas.h)]
    return View.fitted(image["width"], image["height"], *size), canvas


def close(got, want, tol: float) -> bool:
    return all(abs(g - w) <= tol for g, w in zip(got, want, strict=True))


def test_zoom_and_pan_then_draw_a_box(page: Page, served: tuple, artifacts: Path) -> None:
    server, _ = served
    log_in(page, server.url, "ann")
    item = open_task(page, server.url, SHAPES_TASK)
    view, canvas = view_of(page, item)
    fitted = view.scale

    # two wheel notches in, centred on the cursor
    cursor = view.to_screen(0.3, 0.35)
    page.mouse.move(*canvas.at(*cursor))
    for _ in range(2):
        page.mouse.wheel(0, -120)
        page.wait_for_timeout(50)
        view.zoom(WHEEL_STEP, *cursor)
    # the toolbar's zoom-in button, centred on the canvas
    page.click("button[title^='Zoom in']")
    view.zoom(BUTTON_STEP, canvas.w / 2, canvas.h / 2)
    # hold Space and drag: the image follows the mouse
    start = (round(canvas.w * 0.6), round(canvas.h * 0.6))
    shift = (-90, -60)
    page.keyboard.down("Space")
    canvas.drag(start, (start[0] + shift[0], start[1] + shift[1]))
    page.keyboard.up("Space")
    view.ox += shift[0]
    view.oy += shift[1]
    expect(page.locator("#shape-list li")).to_have_count(0)  # panning drew nothing

    # a box from image point (0.42, 0.38) to (0.55, 0.52) at the zoomed, panned view
    a = view.to_screen(0.42, 0.38)
    b = view.to_screen(0.55, 0.52)
    page.click("button[data-tool=box]")
    canvas.drag(a, b)
    wait_saved(page)
    expect(page.locator("#shape-list li")).to_have_count(1)
    shots(artifacts, page, "20-zoomed-panned-box")

    (x1, y1), (x2, y2) = view.to_rel(*a), view.to_rel(*b)
    want = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
    shapes = api_get(page, f"/api/items/{item}")["draft"]["shapes"]
    assert [s["kind"] for s in shapes] == ["bbox"]
    box = shapes[0]["box"]
    assert close(box, want, view.tolerance()), (box, want)
    # and the box is the one asked for: the zoom made a screen pixel small in the image
    assert close(box, [0.485, 0.45, 0.13, 0.14], 2 * view.tolerance()), box
    assert view.scale > 1.6 * fitted

    # "fit" (key 0) shows the whole photo again, and the box stays where it was drawn
    page.keyboard.press("0")
    shots(artifacts, page, "21-fitted-again")
    assert api_get(page, f"/api/items/{item}")["draft"]["shapes"][0]["box"] == box


def test_polygon_and_line_survive_a_reload(page: Page, served: tuple, artifacts: Path) -> None:
    server, _ = served
    log_in(page, server.url, "ann2")
    item = open_task(page, server.url, SHAPES_TASK)
    view, canvas = view_of(page, item)
    tol = view.tolerance()

    # a polygon: three clicks, the fourth corner by double click, which closes it
    poly = [view.to_screen(x, y) for x, y in [(0.2, 0.2), (0.45, 0.22), (0.48, 0.5), (0.18, 0.45)]]
    page.click("button[data-tool=polygon]")
    for p in poly[:-1]:
        page.mouse.click(*canvas.at(*p))
    page.mouse.dblclick(*canvas.at(*poly[-1]))
    wait_saved(page)
    expect(page.locator("#shape-list li")).to_have_count(1)
    # a line: three clicks, ended by Enter (key L picks the tool)
    line = [view.to_screen(x, y) for x, y in [(0.6, 0.7), (0.75, 0.6), (0.9, 0.8)]]
    page.keyboard.press("l")
    for p in line:
        page.mouse.click(*canvas.at(*p))
    page.keyboard.press("Enter")
    wait_saved(page)
    expect(page.locator("#shape-list li")).to_have_count(2)
    shots(artifacts, page, "22-polygon-and-line")

    page.reload()
    assert open_task(page, server.url, SHAPES_TASK) == item
    rows = page.locator("#shape-list li")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("data-kind", "polygon")
    expect(rows.nth(1)).to_have_attribute("data-kind", "line")
    shots(artifacts, page, "23-polygon-and-line-reloaded")

    shapes = api_get(page, f"/api/items/{item}")["draft"]["shapes"]
    assert [s["kind"] for s in shapes] == ["polygon", "line"]
    ring = shapes[0]["polygon"]
    assert len(ring) == 1 and len(ring[0]) == 1, ring  # one polygon of one ring
    assert len(ring[0][0]) == len(poly), ring  # no vertex doubled by the double click
    for got, p in zip(ring[0][0], poly, strict=True):
        assert close(got, view.to_rel(*p), tol), (got, view.to_rel(*p))
    assert len(shapes[1]["line"]) == len(line), shapes[1]["line"]
    for got, p in zip(shapes[1]["line"], line, strict=True):
        assert close(got, view.to_rel(*p), tol), (got, view.to_rel(*p))

    # they are drawn where the API says: the select tool hits each one there
    page.keyboard.press("v")
    inside = view.to_screen(0.33, 0.35)
    page.mouse.click(*canvas.at(*inside))
    expect(page.locator("#shape-list li.selected")).to_have_attribute("data-kind", "polygon")
    middle = view.to_screen(0.675, 0.65)  # half way along the line's first segment
    page.mouse.click(*canvas.at(*middle))
    expect(page.locator("#shape-list li.selected")).to_have_attribute("data-kind", "line")
    shots(artifacts, page, "24-line-selected")

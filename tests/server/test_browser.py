"""Browser tests: Playwright drives Debian's Chromium against a real uvicorn server on
127.0.0.1. Log in, draw a box and a point on a real photo, reload and see them (and in the
API), survive a network outage, use label shortcuts and undo/redo, finish a task, start a
pipeline and see it move on when its annotation task is finished.

Screenshots go to ``$ANNOLOOP_TEST_ARTIFACTS/browser`` (or a temporary folder, printed).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.server.helpers import CATS_TASK, SHAPES_TASK, USERS, served_copy

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (apt-get install -y chromium)",
)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = os.environ.get("ANNOLOOP_TEST_ARTIFACTS")
    folder = Path(root) / "browser" if root else tmp_path_factory.mktemp("browser-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"browser screenshots in {folder}")
    return folder


@pytest.fixture(scope="module")
def served(template_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """The server over a fresh copy of the test project, shared by this module's tests."""
    folder = tmp_path_factory.mktemp("browser") / "proj"
    with served_copy(template_project, folder, pipe_poll_seconds=0.2) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser: Browser, served: tuple) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.set_default_timeout(15000)
    yield p
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def log_in(page: Page, url: str, name: str) -> None:
    page.goto(url)
    page.fill("#login-name", name)
    page.fill("#login-password", USERS[name][1])
    page.click("#login-submit")
    expect(page.locator("#whoami")).to_contain_text(name)


def open_task(page: Page, url: str, task_id: int) -> int:
    """Open the annotate page of a task; returns the id of the item it shows."""
    page.goto(f"{url}#/annotate/{task_id}")
    item = page.locator("#item-id")
    expect(item).to_be_visible()
    # The page's CSP forbids eval, so no wait_for_function with a string: poll from Python.
    wait_until(page, "() => document.querySelector('#canvas').width > 0")
    page.wait_for_timeout(300)  # the photo is decoded and fitted
    return int(item.get_attribute("data-item"))


def wait_until(page: Page, js: str, timeout: float = 15.0) -> None:
    """Poll the JavaScript function ``js`` until it returns true."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(js):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {js}")
        page.wait_for_timeout(50)


def canvas_at(page: Page, fx: float, fy: float) -> tuple[float, float]:
    """Page coordinates of a point at fractions (fx, fy) of the canvas."""
    box = page.locator("#canvas").bounding_box()
    assert box is not None
    return box["x"] + fx * box["width"], box["y"] + fy * box["height"]


def draw_box(page: Page, a: tuple[float, float], b: tuple[float, float]) -> None:
    page.click("button[data-tool=box]")
    page.mouse.move(*canvas_at(page, *a))
    page.mouse.down()
    page.mouse.move(*canvas_at(page, (a[0] + b[0]) / 2, (a[1] + b[1]) / 2), steps=4)
    page.mouse.move(*canvas_at(page, *b), steps=4)
    page.mouse.up()


def put_point(page: Page, at: tuple[float, float]) -> None:
    page.click("button[data-tool=point]")
    page.mouse.click(*canvas_at(page, *at))


def wait_saved(page: Page) -> None:
    expect(page.locator("#save-status")).to_have_attribute("data-state", "saved")


def api_get(page: Page, path: str) -> dict:
    """A GET with the browser's own session cookie: what the server really stored."""
    r = page.request.get(path if path.startswith("http") else page.url.split("#")[0] + path[1:])
    assert r.ok, (path, r.status, r.text())
    return r.json()


def shots(artifacts: Path, page: Page, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def test_login_draw_reload_and_api(page: Page, served: tuple, artifacts: Path) -> None:
    server, _ = served
    page.goto(server.url)
    expect(page.locator("#login-name")).to_be_visible()
    shots(artifacts, page, "01-login")
    # a wrong password is refused in the page
    page.fill("#login-name", "ann")
    page.fill("#login-password", "not-the-password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).not_to_be_empty()
    log_in(page, server.url, "ann")
    expect(page.locator("a[href='#/annotate/1']")).to_be_visible()
    shots(artifacts, page, "02-tasks")

    item = open_task(page, server.url, SHAPES_TASK)
    draw_box(page, (0.3, 0.3), (0.6, 0.7))
    wait_saved(page)
    put_point(page, (0.8, 0.2))
    wait_saved(page)
    expect(page.locator("#shape-list li")).to_have_count(2)
    shots(artifacts, page, "03-box-and-point")

    page.reload()
    assert open_task(page, server.url, SHAPES_TASK) == item  # the locked item comes back
    expect(page.locator("#shape-list li")).to_have_count(2)
    shots(artifacts, page, "04-after-reload")

    # the server holds them, not just the browser
    draft = api_get(page, f"/api/items/{item}")["draft"]
    kinds = sorted(s["kind"] for s in draft["shapes"])
    assert kinds == ["bbox", "point"]
    box = next(s for s in draft["shapes"] if s["kind"] == "bbox")["box"]
    cx, cy, w, h = box
    assert 0 < w < 1 and 0 < h < 1 and 0 < cx < 1 and 0 < cy < 1


def test_nothing_lost_on_network_error(page: Page, served: tuple, artifacts: Path) -> None:
    server, _ = served
    log_in(page, server.url, "ann2")
    item = open_task(page, server.url, SHAPES_TASK)
    page.route("**/api/items/*/draft", lambda route: route.abort("internetdisconnected"))
    draw_box(page, (0.1, 0.1), (0.3, 0.4))
    expect(page.locator("#save-status")).to_have_attribute("data-state", "offline")
    shots(artifacts, page, "05-offline")
    # reload while offline: the localStorage copy brings the box back
    page.reload()
    open_task(page, server.url, SHAPES_TASK)
    expect(page.locator("#shape-list li")).to_have_count(1)
    page.unroute("**/api/items/*/draft")
    put_point(page, (0.5, 0.5))  # the next change flushes everything
    wait_saved(page)
    shapes = api_get(page, f"/api/items/{item}")["draft"]["shapes"]
    assert sorted(s["kind"] for s in shapes) == ["bbox", "point"]


def test_shortcuts_undo_redo_and_image_labels(page: Page, served: tuple) -> None:
    server, _ = served
    log_in(page, server.url, "designer")
    item = open_task(page, server.url, SHAPES_TASK)
    labels = {x["name"]: x["id"] for x in api_get(page, "/api/labels")}
    page.keyboard.press("2")  # second label: "cup"
    put_point(page, (0.4, 0.6))
    wait_saved(page)
    page.keyboard.press("Control+z")
    expect(page.locator("#shape-list li")).to_have_count(0)
    wait_saved(page)
    assert api_get(page, f"/api/items/{item}")["draft"]["shapes"] == []
    page.keyboard.press("Control+y")
    expect(page.locator("#shape-list li")).to_have_count(1)
    wait_saved(page)
    page.locator("#image-labels input").first.check()
    wait_saved(page)
    shapes = api_get(page, f"/api/items/{item}")["draft"]["shapes"]
    point = next(s for s in shapes if s["kind"] == "point")
    assert point["label"] == labels["cup"]
    assert any(s["kind"] == "label" for s in shapes)


def test_finish_a_task(page: Page, served: tuple, artifacts: Path) -> None:
    """Submit every item of the point task in the browser until the task says it is done."""
    server, project = served
    log_in(page, server.url, "admin")
    before = api_get(page, f"/api/tasks/{CATS_TASK}")
    seen: list[int] = []
    for _ in range(10):
        page.goto(f"{server.url}#/annotate/{CATS_TASK}")
        done = page.locator("#task-finished")
        item = page.locator("#item-id")
        expect(done.or_(item)).to_be_visible()
        if done.is_visible():
            break
        seen.append(open_task(page, server.url, CATS_TASK))
        put_point(page, (0.5, 0.5))
        wait_saved(page)
        page.click("#submit-btn")
        expect(page.locator("#item-id[data-item]").or_(done)).to_be_visible()
        expect(page.locator(f"#item-id[data-item='{seen[-1]}']")).to_have_count(0)
    expect(page.locator("#task-finished")).to_be_visible()
    shots(artifacts, page, "06-task-finished")
    assert len(seen) == len(set(seen)) and seen
    after = api_get(page, f"/api/tasks/{CATS_TASK}")
    assert before != after
    ann = project.annotation_arrays()
    assert len(ann) >= len(seen)
    page.goto(f"{server.url}#/stats")
    # the plot is a PNG the server draws with matplotlib; wait until it has been decoded
    wait_until(page, "() => [...document.images].some((i) => i.complete && i.naturalWidth > 100)")
    shots(artifacts, page, "07-stats")


def test_start_a_pipeline_finish_its_task_and_see_it_move_on(
    page: Page, served: tuple, artifacts: Path
) -> None:
    server, _ = served
    log_in(page, server.url, "designer")
    page.click("a[href='#/pipes']")
    page.select_option("#pipe-template", "request_all")
    page.fill("#pipe-name", "browser round")
    page.click("#pipe-start")
    expect(page.locator("#pipe-graph")).to_be_visible()
    annotate = page.locator("#pipe-graph g[data-element=annotate]")
    expect(annotate).to_have_attribute("data-state", "in_progress")
    expect(page.locator("#pipe-graph g[data-element=request]")).to_have_attribute(
        "data-state", "finished"
    )
    expect(page.locator("#pipe-log")).to_contain_text("requested annotations for 4 images")
    shots(artifacts, page, "08-pipe-waits-for-humans")
    pipe_url = page.url
    # the element table links to the pipe's annotation task
    page.click("#pipe-elements tr[data-element=annotate] a")
    expect(page.locator("#item-id")).to_be_visible()
    task_id = int(page.url.rsplit("/", 1)[1])
    for _ in range(4):
        item = open_task(page, server.url, task_id)
        draw_box(page, (0.2, 0.2), (0.5, 0.5))
        wait_saved(page)
        page.click("#submit-btn")
        expect(page.locator(f"#item-id[data-item='{item}']")).to_have_count(0)
    expect(page.locator("#task-finished")).to_be_visible()
    page.goto(pipe_url)
    expect(page.locator("#pipe-state")).to_have_attribute("data-state", "finished")
    for name in ("images", "request", "annotate", "export"):
        node = page.locator(f"#pipe-graph g[data-element={name}]")
        expect(node).to_have_attribute("data-state", "finished")
    expect(page.locator("#pipe-log")).to_contain_text("pipe finished")
    shots(artifacts, page, "09-pipe-finished")


def test_designer_pages_render(page: Page, served: tuple, artifacts: Path) -> None:
    """Models, jobs, images, statistics and users pages load without a script error."""
    server, _ = served
    log_in(page, server.url, "admin")
    page.goto(f"{server.url}#/models")
    expect(page.locator("#models-table tr[data-model=image-classifier]")).to_be_visible()
    expect(page.locator("#model-states")).to_contain_text("No trained states yet")
    shots(artifacts, page, "10-models")
    page.goto(f"{server.url}#/jobs")
    expect(page.locator("#jobs-table")).to_be_visible()
    shots(artifacts, page, "11-jobs")
    page.goto(f"{server.url}#/images")
    expect(page.locator("h2")).to_contain_text("Images")
    page.goto(f"{server.url}#/users")
    expect(page.locator("main")).to_contain_text("designer")


def test_proposals_are_shown_accepted_and_rejected(
    page: Page, served: tuple, artifacts: Path
) -> None:
    """A current model's boxes appear with their confidence; accepting one makes it a shape
    (keeping its confidence and source), rejecting one hides it; both survive a reload."""
    from annoloop.geometry import Annotations

    server, project = served
    state = project.add_model_state("det", "models/det-1.bin", label_map=["cat", "cup"])
    project.set_current_state(state)
    images = project.images()["id"].to_numpy()
    n = len(images)
    boxes = [[0.3, 0.3, 0.2, 0.2], [0.7, 0.7, 0.1, 0.1]] * n
    pred = Annotations.from_boxes(images.repeat(2), boxes, [1, 2] * n, [0.9, 0.4] * n)
    project.add_predictions(pred, state)
    log_in(page, server.url, "admin")
    item = open_task(page, server.url, SHAPES_TASK)
    rows = page.locator("#proposal-list li")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("90%")
    expect(rows.nth(1)).to_contain_text("40%")
    shots(artifacts, page, "12-proposals")
    rows.nth(0).locator("button.accept").click()
    expect(page.locator("#shape-list li")).to_have_count(1)
    page.locator("#proposal-list li button.reject").first.click()
    expect(rows).to_have_count(0)
    wait_saved(page)
    draft = api_get(page, f"/api/items/{item}")["draft"]
    assert len(draft["shapes"]) == 1 and len(draft["rejected"]) == 1
    shape = draft["shapes"][0]
    assert shape["proposal"].startswith("p") and shape["confidence"] == pytest.approx(0.9)
    page.reload()
    open_task(page, server.url, SHAPES_TASK)
    expect(page.locator("#shape-list li")).to_have_count(1)
    expect(page.locator("#proposal-list li")).to_have_count(0)

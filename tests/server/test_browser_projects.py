"""Browser tests of one server with several projects: log in, switch to a second project in
the header, draw a box there on a real photo, reload (the choice is remembered) and find the
box in that project's store and not in the home project's; the statistics, pipeline, models
and review pages work in the chosen project. Screenshots go where those of
``test_browser.py`` go.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

import tests.server.test_browser as tb
from annoloop.server import projects as registry
from annoloop.store import Project
from tests.server.helpers import PROJECTS, served_copy
from tests.server.test_browser import (
    api_get,
    draw_box,
    log_in,
    open_task,
    shots,
    wait_saved,
    wait_until,
)

pytestmark = tb.pytestmark
browser = tb.browser
page = tb.page
artifacts = tb.artifacts
HOME = "server-test"
BOXES_TASK = 1  # the bbox task of each registered project (helpers.add_projects)


@pytest.fixture(scope="module")
def served(template_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    folder = tmp_path_factory.mktemp("browser-projects") / "proj"
    with served_copy(template_project, folder, pipe_poll_seconds=0.2) as served:
        yield served


def _open(home: Project, name: str) -> Project:
    return Project.open(registry.resolve_location(home, registry.get_project(home, name)))


def switch_to(page: Page, name: str, task: str) -> None:
    """Choose project ``name`` in the header; returns once its task list (with ``task``) shows."""
    switch = page.locator("#project-switch")
    expect(switch).to_be_visible()
    switch.select_option(name)
    expect(page.locator(f"#project-switch[data-current='{name}']")).to_have_count(1)
    expect(page.locator("#task-table")).to_contain_text(task)
    expect(switch).to_have_value(name)


def test_switch_project_draw_a_box_reload_and_find_it_there(
    page: Page, served: tuple, artifacts: Path
) -> None:
    server, home = served
    log_in(page, server.url, "ann")  # annotator of home and alpha, no member of beta
    switch = page.locator("#project-switch")
    expect(switch.locator("option")).to_have_count(2)
    assert switch.locator("option").all_inner_texts() == [
        f"{HOME} (annotator)",
        "alpha (annotator)",
    ]
    expect(page.locator("#task-table")).to_contain_text("shapes")  # the home project's tasks
    shots(artifacts, page, "20-projects-home")

    switch_to(page, "alpha", "boxes")
    expect(page.locator("#task-table")).not_to_contain_text("shapes")
    shots(artifacts, page, "21-projects-alpha-tasks")

    item = open_task(page, server.url, BOXES_TASK)
    image = page.locator("#canvas")
    expect(image).to_be_visible()
    draw_box(page, (0.25, 0.3), (0.7, 0.8))
    wait_saved(page)
    expect(page.locator("#shape-list li")).to_have_count(1)
    shots(artifacts, page, "22-projects-alpha-box")

    page.reload()
    expect(page.locator("#project-switch")).to_have_value("alpha")  # remembered
    assert open_task(page, server.url, BOXES_TASK) == item
    expect(page.locator("#shape-list li")).to_have_count(1)
    shots(artifacts, page, "23-projects-alpha-after-reload")

    # the server holds the draft in alpha; the photo came from alpha's media
    payload = api_get(page, f"/api/projects/alpha/items/{item}")
    assert [s["kind"] for s in payload["draft"]["shapes"]] == ["bbox"]
    assert payload["image"]["url"].startswith("/api/projects/alpha/images/")
    assert payload["image"]["name"] in PROJECTS["alpha"]["photos"]

    page.click("#submit-btn")
    expect(page.locator(f"#item-id[data-item='{item}']")).to_have_count(0)
    with _open(home, "alpha") as alpha:
        frame = alpha.annotations()
        assert frame["author"].tolist() == ["ann"] and frame["kind"].tolist() == ["bbox"]
        cx, cy, w, h = (float(frame[c].iloc[0]) for c in ("x", "y", "w", "h"))
        assert 0.3 < cx < 0.65 and 0.35 < cy < 0.75 and 0.2 < w < 0.6 and 0.2 < h < 0.6
    assert len(home.annotations()) == 0  # nothing went into the home project
    with _open(home, "beta") as beta:
        assert len(beta.annotations()) == 0

    # back to the home project: its own tasks again, and the choice sticks too
    switch_to(page, HOME, "shapes")
    page.reload()
    expect(page.locator("#project-switch")).to_have_value(HOME)


def test_statistics_pipeline_models_and_review_pages_in_a_project(
    page: Page, served: tuple, artifacts: Path
) -> None:
    server, home = served
    log_in(page, server.url, "admin")
    switch_to(page, "beta", "boxes")
    page.goto(f"{server.url}#/stats")
    row = page.locator("#stats-table tr", has_text="images")
    expect(row).to_contain_text(str(len(PROJECTS["beta"]["photos"])))
    wait_until(page, "() => [...document.images].some((i) => i.complete && i.naturalWidth > 100)")
    plot = page.locator("#stats-plot").get_attribute("src")
    assert plot.startswith("/api/projects/beta/stats/plot.png")
    shots(artifacts, page, "24-projects-beta-stats")

    page.click("a[href='#/pipes']")
    page.select_option("#pipe-template", "request_all")
    page.fill("#pipe-name", "beta round")
    page.click("#pipe-start")
    expect(page.locator("#pipe-graph")).to_be_visible()
    shots(artifacts, page, "25-projects-beta-pipe")
    assert [p["name"] for p in api_get(page, "/api/projects/beta/pipes")] == ["beta round"]
    assert api_get(page, "/api/pipes") == []

    page.goto(f"{server.url}#/models")
    expect(page.locator("main h2").first).to_be_visible()
    shots(artifacts, page, "26-projects-beta-models")

    # a finished item of beta's task shows on beta's review page
    with _open(home, "beta") as beta:
        item = beta.next_item(BOXES_TASK, "admin", lock_seconds=600)
        beta.submit(item.id, "admin", None, state="junk")
    page.goto(f"{server.url}#/review/{BOXES_TASK}")
    thumbs = page.locator(".review-row img")
    expect(thumbs.first).to_be_visible()
    src = thumbs.first.get_attribute("src")
    assert src.startswith("/api/projects/beta/images/")
    shots(artifacts, page, "27-projects-beta-review")

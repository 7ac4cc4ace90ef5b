"""Pipelines through the API: start a ready-made template, watch the server's driver run its
script, annotate its task, and see the pipe move on to its export and finish; control
(pause, resume, stop) and hostile input."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from annoloop.server.settings import ServerSettings
from tests.server.helpers import shape_box


@pytest.fixture()
def settings() -> ServerSettings:
    # a quick driver: the tests wait on it
    return ServerSettings(token_cache_seconds=0, pipe_poll_seconds=0.1)


def wait_for(client, headers, pipe_id: int, ok: Callable[[dict], bool], timeout=30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/api/pipes/{pipe_id}", headers=headers).json()
        if ok(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"pipe never got there: {status}")
        time.sleep(0.1)


def element(status: dict, name: str) -> dict:
    return next(e for e in status["elements"] if e["element"] == name)


def test_templates_are_listed(client, login) -> None:
    names = [
        t["name"] for t in client.get("/api/pipelines/templates", headers=login("designer")).json()
    ]
    assert "request_all" in names and "point_loop" in names


def test_a_pipe_runs_waits_for_humans_and_moves_on(client, login, project) -> None:
    d = login("designer")
    r = client.post("/api/pipes", json={"template": "request_all", "name": "round 1"}, headers=d)
    assert r.status_code == 201, r.text
    pipe = r.json()
    assert pipe["edges"] == [["images", "request"], ["request", "annotate"], ["annotate", "export"]]
    assert [p["name"] for p in client.get("/api/pipes", headers=d).json()] == ["round 1"]
    # the driver runs the script: the pipe's task gets one item per image
    status = wait_for(
        client, d, pipe["id"], lambda s: element(s, "annotate")["state"] == "in_progress"
    )
    task = element(status, "annotate")
    assert element(status, "request")["state"] == "finished"
    assert task["items"]["open"] == 4 and task["task"] == "round 1/Annotate"
    assert status["state"] == "running"
    # an annotator finishes the task through the API
    ann = login("ann")
    done = 0
    while (r := client.post(f"/api/tasks/{task['task_id']}/next", headers=ann)).status_code == 200:
        item = r.json()["item"]["id"]
        body = {"shapes": [shape_box(label=1)]}
        assert client.post(f"/api/items/{item}/submit", json=body, headers=ann).status_code == 200
        done += 1
    assert done == 4
    # ... and the pipe moves on: the export runs and the pipe finishes
    status = wait_for(client, d, pipe["id"], lambda s: s["state"] == "finished")
    assert [e["state"] for e in status["elements"]] == ["finished"] * 4
    logs = client.get(f"/api/pipes/{pipe['id']}/logs", headers=d).json()
    assert logs[-1]["message"] == "pipe finished"
    assert any("exported 4 annotations" in r["message"] for r in logs)
    newer = client.get(f"/api/pipes/{pipe['id']}/logs?after={logs[-2]['id']}", headers=d).json()
    assert [r["id"] for r in newer] == [logs[-1]["id"]]
    only = client.get(f"/api/pipes/{pipe['id']}/logs?element=export", headers=d).json()
    assert only and {r["element"] for r in only} == {"export"}
    exported = list(Path(project.runs.path).rglob("annotations.json"))
    assert exported and exported[0].stat().st_size > 0
    # a finished pipe cannot be paused, resumed or stopped
    for action in ("pause", "resume", "stop"):
        assert client.post(f"/api/pipes/{pipe['id']}/{action}", headers=d).status_code == 409


def test_pause_stop_and_resume(client, login) -> None:
    d = login("designer")
    pipe = client.post("/api/pipes", json={"template": "request_all"}, headers=d).json()
    status = wait_for(
        client, d, pipe["id"], lambda s: element(s, "annotate")["state"] == "in_progress"
    )
    r = client.post(f"/api/pipes/{pipe['id']}/pause", headers=d)
    assert r.status_code == 200 and r.json()["state"] == "paused"
    assert element(r.json(), "export")["state"] == "paused"
    r = client.post(f"/api/pipes/{pipe['id']}/stop", headers=d)
    assert r.json()["state"] == "stopped"
    r = client.post(f"/api/pipes/{pipe['id']}/resume", headers=d)
    assert r.json()["state"] == "running"
    assert element(r.json(), "export")["state"] == "pending"
    assert status["name"].startswith("request_all")


@pytest.mark.parametrize(
    "body,where",
    [
        ({"template": "no_such_template"}, "template"),
        ({"template": "/etc/passwd"}, "template"),  # never a path on the server
        ({"template": "../../annoloop.db"}, "template"),
        ({"template": ""}, "body.template"),
        ({"template": "request_all", "name": "../x"}, "body.name"),
        ({"template": "request_all", "name": "x" * 500}, "body.name"),
        ({"template": "request_all", "overrides": {"a": "x" * 70000}}, "body.overrides"),
        ({"template": "request_all", "overrides": {"nope.field": 1}}, None),
        ({"template": ["request_all"]}, "body.template"),
        ({}, "body.template"),
    ],
)
def test_bad_starts_are_422(client, login, body, where) -> None:
    r = client.post("/api/pipes", json=body, headers=login("designer"))
    assert r.status_code == 422, r.text
    if where is not None:
        assert r.json()["where"] == where
    assert client.get("/api/pipes", headers=login("designer")).json() == []


def test_unknown_pipes_are_404(client, login) -> None:
    d = login("designer")
    for path in ("/api/pipes/99", "/api/pipes/99/logs"):
        assert client.get(path, headers=d).status_code == 404
    for action in ("pause", "resume", "stop"):
        assert client.post(f"/api/pipes/99/{action}", headers=d).status_code == 404
    assert client.get("/api/pipes/0", headers=d).status_code == 422
    assert client.get("/api/pipes/1/logs?after=-1", headers=d).status_code == 422
    assert client.get("/api/pipes/1/logs?limit=100000", headers=d).status_code == 422


def test_the_driver_can_be_turned_off(project) -> None:
    from fastapi.testclient import TestClient

    from annoloop.server import create_app

    app = create_app(project, settings=ServerSettings(drive_pipes=False))
    with TestClient(app):
        assert app.state.ctx.pipes is None

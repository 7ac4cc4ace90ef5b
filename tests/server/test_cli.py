"""The server's CLI: ``annoloop users add/list/set/token/remove``, ``annoloop projects
list/create/members/grant/revoke``, ``annoloop serve`` (a real process on 127.0.0.1, stopped by
the test), and the demo's serve step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from annoloop.cli.main import app
from annoloop.server.run import free_port
from annoloop.store import Project

runner = CliRunner()


def run(*args: str, code: int = 0, env: dict | None = None) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    return result.output


@pytest.fixture()
def folder(template_project: Path, tmp_path: Path) -> Path:
    out = tmp_path / "proj"
    shutil.copytree(template_project, out)
    return out


def test_users_add_list_set_token_remove(folder: Path) -> None:
    p = str(folder)
    out = json.loads(
        run("users", "add", "maria", "--role", "designer", "--password", "pw-maria-1", "-p", p,
            "--json")
    )  # fmt: skip
    assert out["role"] == "designer"
    run("users", "add", "maria", "--password", "pw-maria-1", "-p", p, code=6)  # taken
    run("users", "add", "bad name", "--password", "pw-long-enough", "-p", p, code=3)
    run("users", "add", "ok", "--password", "short", "-p", p, code=3)
    run("users", "add", "ok", "--role", "king", "--password", "pw-long-enough", "-p", p, code=3)
    # the password can come from a prompt (hidden, confirmed)
    result = runner.invoke(app, ["users", "add", "lee", "-p", p], input="pw-lee-123\npw-lee-123\n")
    assert result.exit_code == 0, result.output
    users = {u["name"]: u["role"] for u in json.loads(run("users", "list", "-p", p, "--json"))}
    assert users["maria"] == "designer" and users["lee"] == "annotator"
    assert json.loads(run("users", "set", "lee", "--role", "admin", "-p", p, "--json"))["role"] == (
        "admin"
    )
    run("users", "set", "lee", "-p", p, code=2)  # nothing to change
    token = run("users", "token", "maria", "-p", p).strip()
    assert token.startswith("alk_")
    run("users", "token", "nobody", "-p", p, code=4)
    run("users", "remove", "maria", "-p", p)
    run("users", "remove", "maria", "-p", p, code=4)
    # the token died with its user; the server agrees (checked through the app)
    from fastapi.testclient import TestClient

    from annoloop.server import create_app

    with TestClient(create_app(folder)) as c:
        assert c.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_a_cli_token_works_on_the_server(folder: Path) -> None:
    from fastapi.testclient import TestClient

    from annoloop.server import create_app

    env = {"ANNOLOOP_SECRET_KEY": "s3cret"}
    token = run("users", "token", "ann", "-p", str(folder), env=env).strip()
    with TestClient(create_app(folder, secret_key="s3cret")) as c:
        me = c.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["name"] == "ann"
    with TestClient(create_app(folder, secret_key="other")) as c:  # another key: unknown
        assert c.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_projects_create_list_members_grant_revoke(folder: Path, tmp_path: Path) -> None:
    p = str(folder)
    rows = json.loads(run("projects", "list", "-p", p, "--json"))
    assert [(r["name"], r["home"]) for r in rows] == [
        ("server-test", True), ("alpha", False), ("beta", False)
    ]  # fmt: skip
    assert rows[1]["location"] == "projects/alpha" and rows[1]["members"] == 3
    out = json.loads(run("projects", "create", "gamma", "--admin", "designer", "-p", p, "--json"))
    assert out["name"] == "gamma" and out["location"] == "projects/gamma"
    assert (folder / "projects" / "gamma" / "annoloop.db").is_file()
    assert json.loads(run("projects", "members", "gamma", "-p", p, "--json")) == [
        {"name": "designer", "role": "admin"}
    ]
    run("projects", "grant", "gamma", "ann", "--role", "designer", "-p", p)
    run("projects", "grant", "gamma", "ann", "--role", "annotator", "-p", p)  # changed
    members = {
        m["name"]: m["role"]
        for m in json.loads(run("projects", "members", "gamma", "-p", p, "--json"))
    }
    assert members == {"designer": "admin", "ann": "annotator"}
    assert "no longer a member" in run("projects", "revoke", "gamma", "ann", "-p", p)
    # a project that lives elsewhere: an existing one is registered as it is
    elsewhere = tmp_path / "elsewhere"
    Project.init(elsewhere, name="outside").close()
    run("projects", "create", "outside", "--location", str(elsewhere), "-p", p)
    listed = {r["name"]: r for r in json.loads(run("projects", "list", "-p", p, "--json"))}
    assert listed["outside"]["location"] == str(elsewhere.resolve())
    # errors: exit codes of the README
    run("projects", "create", "../up", "-p", p, code=3)
    run("projects", "create", "a/b", "-p", p, code=3)
    run("projects", "create", "x" * 65, "-p", p, code=3)
    run("projects", "create", "GAMMA", "-p", p, code=6)  # taken, ignoring case
    run("projects", "create", "server-test", "-p", p, code=6)  # the home project's name
    run("projects", "create", "delta", "--admin", "nobody", "-p", p, code=4)
    assert not (folder / "projects" / "delta").exists()
    run("projects", "grant", "gamma", "ann", "--role", "king", "-p", p, code=3)
    run("projects", "grant", "gamma", "nobody", "-p", p, code=4)
    run("projects", "grant", "nope", "ann", "-p", p, code=4)
    run("projects", "revoke", "gamma", "ann", "-p", p, code=4)  # not a member any more
    run("projects", "revoke", "server-test", "ann", "-p", p, code=6)  # everyone is a home member
    # the server sees the CLI's registry
    from fastapi.testclient import TestClient

    from annoloop.server import create_app

    with TestClient(create_app(folder)) as c:
        r = c.post("/api/login", json={"name": "designer", "password": "designer-password"})
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        names = {x["name"]: x["role"] for x in c.get("/api/projects", headers=headers).json()}
        assert names["gamma"] == "admin" and "outside" not in names
        assert c.get("/api/projects/gamma/tasks", headers=headers).json() == []


def test_serve_runs_until_stopped(folder: Path) -> None:
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "annoloop.cli.main", "serve", str(folder), "--port", str(port),
         "--log-level", "warning"],
        cwd=root, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = proc.stdout.read() if proc.stdout else "no output"
                    raise AssertionError(output) from None
                time.sleep(0.2)
        assert page.status_code == 200 and "annoloop" in page.text
        r = httpx.post(f"http://127.0.0.1:{port}/api/login",
                       json={"name": "ann", "password": "ann-password"})  # fmt: skip
        assert r.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/api/tasks").status_code == 401
    finally:
        proc.terminate()
        proc.wait(20)
    out = proc.stdout.read() if proc.stdout else ""
    assert f"http://127.0.0.1:{port}/" in out
    # the projects it serves, with their API
    assert "server-test (home): API " in out
    assert f"alpha: API http://127.0.0.1:{port}/api/projects/alpha/" in out


def test_serve_refuses_a_missing_project(tmp_path: Path) -> None:
    run("serve", str(tmp_path / "nothing"), code=4)


def test_demo_serve_step_checks_and_prints_a_login(folder: Path) -> None:
    from annoloop.demo import serve as demo_serve

    info = demo_serve.check(folder)
    assert info.checked and info.url.startswith("http://127.0.0.1:")
    # remote detection ran through the API: every image is stamped now, by the REST route
    assert "remote detection through the REST API" in info.summary()
    from annoloop.detect import STAMP_KEY
    from annoloop.store import Project

    with Project.open(folder) as p:
        metas = p.images()["meta"].tolist()
    assert metas and all(isinstance(m, dict) and STAMP_KEY in m for m in metas)
    assert info.user == demo_serve.DEMO_USER and info.open_items >= 1
    assert "annoloop serve" in info.command
    # the demo user can log in afterwards with what was printed
    from fastapi.testclient import TestClient

    from annoloop.server import create_app

    with TestClient(create_app(folder)) as c:
        r = c.post("/api/login", json={"name": info.user, "password": info.password})
        assert r.status_code == 200 and r.json()["user"]["role"] == "admin"
    again = demo_serve.check(folder)  # a second time keeps the user and the task
    assert again.checked and "0 images processed" in again.remote  # all stamped: skipped

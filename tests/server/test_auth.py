"""Accounts, passwords, sessions, API keys and the login guard, through the real app."""

from __future__ import annotations

import time

import pytest

from annoloop.errors import AccessDenied, AlreadyExists, InvalidInput, NotFound
from annoloop.server import auth
from annoloop.server.deps import COOKIE_NAME
from annoloop.server.settings import ServerSettings
from tests.server.helpers import USERS


def test_password_hash_is_salted_and_verifies() -> None:
    a, b = auth.hash_password("correct horse"), auth.hash_password("correct horse")
    assert a != b and a.startswith("scrypt$")
    assert auth.verify_password("correct horse", a)
    assert not auth.verify_password("correct horsf", a)
    assert not auth.verify_password("x", None)
    assert not auth.verify_password("x", "scrypt$broken")
    assert not auth.verify_password("x", "md5$1$2$3$4$5")


def test_login_returns_a_session_and_sets_an_httponly_cookie(client) -> None:
    r = client.post("/api/login", json={"name": "ann", "password": "ann-password"})
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == {"id": 3, "name": "ann", "role": "annotator"}
    assert body["token"].startswith(auth.SESSION_PREFIX)
    cookie = r.headers["set-cookie"]
    assert f"{COOKIE_NAME}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    # the cookie alone authenticates the browser
    assert client.get("/api/me").json()["name"] == "ann"


@pytest.mark.parametrize(
    "name,password",
    [("ann", "wrong-password"), ("nobody", "whatever-pass"), ("ann'; DROP TABLE user;--", "x")],
)
def test_login_refuses_wrong_credentials_with_one_message(client, name, password) -> None:
    r = client.post("/api/login", json={"name": name, "password": password})
    assert r.status_code == 401
    assert r.json()["detail"] == "wrong user name or password"


@pytest.mark.parametrize(
    "body",
    [{}, {"name": "ann"}, {"name": "", "password": "x"}, {"name": "a" * 65, "password": "x"},
     {"name": 5, "password": "x"}, {"name": "ann", "password": "p" * 5000}, []],
)  # fmt: skip
def test_login_refuses_malformed_bodies(client, body) -> None:
    assert client.post("/api/login", json=body).status_code == 422


def test_login_guard_blocks_a_name_after_repeated_failures(project) -> None:
    from fastapi.testclient import TestClient

    from annoloop.server import create_app

    app = create_app(project, settings=ServerSettings(login_attempts=3, login_window_seconds=60))
    with TestClient(app) as c:
        for _ in range(3):
            assert (
                c.post("/api/login", json={"name": "ann", "password": "bad-pass"}).status_code
                == 401
            )
        # even the right password is refused for a while; other names are not affected
        right = {"name": "ann", "password": "ann-password"}
        assert c.post("/api/login", json=right).status_code == 429
        other = {"name": "ann2", "password": "ann2-password"}
        assert c.post("/api/login", json=other).status_code == 200


def test_bearer_tokens_and_bad_tokens(client, login) -> None:
    headers = login("designer")
    assert client.get("/api/me", headers=headers).json()["role"] == "designer"
    for bad in ("Bearer ", "Bearer als_nope", "Basic abc", "Bearer " + "x" * 5000, "als_x"):
        r = client.get("/api/me", headers={"Authorization": bad})
        assert r.status_code == 401, bad
        assert r.headers.get("www-authenticate") == "Bearer"


def test_logout_revokes_the_token(client, login) -> None:
    headers = login("ann")
    assert client.post("/api/logout", headers=headers).status_code == 200
    assert client.get("/api/me", headers=headers).status_code == 401


def test_sessions_expire_but_api_keys_do_not(project) -> None:
    from fastapi.testclient import TestClient

    from annoloop.server import create_app

    # long enough for login + key on a loaded machine, short enough to wait out
    settings = ServerSettings(session_seconds=2.0, token_cache_seconds=0)
    with TestClient(create_app(project, settings=settings)) as c:
        session = c.post("/api/login", json={"name": "ann", "password": "ann-password"})
        c.cookies.clear()
        s_headers = {"Authorization": f"Bearer {session.json()['token']}"}
        key = c.post("/api/tokens", headers=s_headers).json()["token"]
        assert key.startswith(auth.API_KEY_PREFIX)
        time.sleep(2.2)
        assert c.get("/api/me", headers=s_headers).status_code == 401
        assert c.get("/api/me", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_tokens_are_stored_hashed_and_keyed_by_the_secret(project) -> None:
    import sqlalchemy as sa

    from annoloop.store.schema import api_token

    plain = auth.TokenStore(project)
    keyed = auth.TokenStore(project, secret_key="s3cret")
    user = auth.get_user(project, "ann")
    token = keyed.issue(user)
    with project.engine.connect() as conn:
        stored = conn.execute(sa.select(api_token.c.token_hash)).scalars().all()
    assert token not in stored and keyed.digest(token) in stored
    assert keyed.user_for(token) == user
    assert plain.user_for(token) is None  # without the key the stored hash does not match


def test_token_cache_serves_repeated_lookups_and_is_cleared(project) -> None:
    store = auth.TokenStore(project, cache_seconds=60)
    user = auth.get_user(project, "ann")
    token = store.issue(user)
    assert store.user_for(token) == user
    auth.remove_user(project, "ann")
    assert store.user_for(token) == user  # cached
    store.clear_cache()
    assert store.user_for(token) is None


def test_change_own_password_ends_every_token(client, login) -> None:
    headers = login("ann")
    r = client.put(
        "/api/me/password", json={"old": "wrong", "new": "new-password"}, headers=headers
    )
    assert r.status_code == 403
    r = client.put(
        "/api/me/password", json={"old": "ann-password", "new": "short"}, headers=headers
    )
    assert r.status_code == 422 and r.json()["where"] == "password"
    body = {"old": "ann-password", "new": "new-password"}
    assert client.put("/api/me/password", json=body, headers=headers).status_code == 200
    assert client.get("/api/me", headers=headers).status_code == 401
    assert client.post("/api/login", json={"name": "ann", "password": "new-password"}).is_success


def test_admin_manages_users(client, login) -> None:
    admin = login("admin")
    names = [u["name"] for u in client.get("/api/users", headers=admin).json()]
    assert names == list(USERS)
    body = {"name": "eve", "password": "eve-password", "role": "designer"}
    assert client.post("/api/users", json=body, headers=admin).status_code == 201
    assert client.post("/api/users", json=body, headers=admin).status_code == 409
    r = client.patch("/api/users/eve", json={"role": "annotator"}, headers=admin)
    assert r.json()["role"] == "annotator"
    assert client.patch("/api/users/eve", json={"role": "king"}, headers=admin).status_code == 422
    assert (
        client.patch("/api/users/nobody", json={"role": "admin"}, headers=admin).status_code == 404
    )
    assert client.delete("/api/users/eve", headers=admin).status_code == 200
    assert client.delete("/api/users/eve", headers=admin).status_code == 404


def test_the_last_admin_cannot_leave(client, login) -> None:
    admin = login("admin")
    assert client.delete("/api/users/admin", headers=admin).status_code == 403
    r = client.patch("/api/users/admin", json={"role": "designer"}, headers=admin)
    assert r.status_code == 403 and "last admin" in r.json()["detail"]


def test_removing_a_user_ends_their_sessions(client, login) -> None:
    ann = login("ann")
    assert client.delete("/api/users/ann", headers=login("admin")).status_code == 200
    assert client.get("/api/me", headers=ann).status_code == 401


@pytest.mark.parametrize("name", ["", " ann", "a/b", "../x", "x" * 65, "名前", "a\x00b", "-lead"])
def test_add_user_refuses_bad_names(project, name) -> None:
    with pytest.raises(InvalidInput, match="user name"):
        auth.add_user(project, name, "long-enough-pass")


def test_add_user_service(project) -> None:
    uid = auth.add_user(project, "carol", "carol-password", "designer")
    assert auth.get_user(project, "carol") == auth.User(uid, "carol", "designer")
    with pytest.raises(AlreadyExists):
        auth.add_user(project, "carol", "carol-password")
    with pytest.raises(InvalidInput, match="role"):
        auth.add_user(project, "dave", "dave-password", "root")
    with pytest.raises(InvalidInput, match="password"):
        auth.add_user(project, "dave", "short")
    with pytest.raises(NotFound):
        auth.get_user(project, "dave")
    with pytest.raises(AccessDenied):
        auth.authenticate(project, "carol", "wrong-password")
    assert auth.authenticate(project, "carol", "carol-password").role == "designer"

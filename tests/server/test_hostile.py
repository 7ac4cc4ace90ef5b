"""Hostile and huge input: oversized bodies, malformed JSON, NaN, deep nesting, floods of
shapes, fuzzed shapes. The server answers 4xx, never 500, and writes nothing."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annoloop.server.settings import ServerSettings
from tests.server.helpers import SHAPES_TASK, shape_box


@pytest.fixture()
def item(client, login) -> int:
    return client.post(f"/api/tasks/{SHAPES_TASK}/next", headers=login("ann")).json()["item"]["id"]


def _put_raw(client, headers, item, raw: bytes, content_type="application/json"):
    return client.put(
        f"/api/items/{item}/draft",
        content=raw,
        headers={**headers, "Content-Type": content_type},
    )


def test_a_body_over_the_json_limit_is_413_before_parsing(project) -> None:
    from fastapi.testclient import TestClient

    from annoloop.server import create_app

    with TestClient(create_app(project, settings=ServerSettings(max_json_bytes=10_000))) as c:
        token = c.post("/api/login", json={"name": "ann", "password": "ann-password"}).json()
        c.cookies.clear()
        headers = {"Authorization": f"Bearer {token['token']}"}
        item = c.post(f"/api/tasks/{SHAPES_TASK}/next", headers=headers).json()["item"]["id"]
        body = json.dumps({"shapes": [shape_box()] * 500, "revision": 1}).encode()
        assert _put_raw(c, headers, item, body).status_code == 413

        def chunks():  # no Content-Length: counted while read
            for _ in range(50):
                yield b" " * 1000

        r = c.put(
            f"/api/items/{item}/draft",
            content=chunks(),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert r.status_code == 413
        bad_length = {**headers, "Content-Length": "abc", "Content-Type": "application/json"}
        assert (
            c.put(f"/api/items/{item}/draft", content=b"{}", headers=bad_length).status_code == 400
        )


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"not json",
        b"\xff\xfe\x00",
        b'{"shapes": [], "revision": NaN}',
        b'{"shapes": [{"kind": "point", "label": 1, "point": [NaN, 0.5]}], "revision": 1}',
        b'{"shapes": [{"kind": "point", "label": 1, "point": [Infinity, 0.5]}], "revision": 1}',
        b'{"shapes": [], "revision": 1e400}',
        b'{"shapes": [], "revision": 99999999999999999999999999}',
        b'{"shapes": {"kind": "point"}, "revision": 1}',
        b'{"shapes": [null], "revision": 1}',
        b'{"shapes": [], "revision": "1; DROP TABLE annotation"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"shapes": [{"kind": "bbox", "label": 1, "box": [[[[[[1]]]]], 1, 1, 1]}], "revision": 1}',
    ],
)
def test_malformed_json_is_4xx(client, login, project, item, raw) -> None:
    r = _put_raw(client, login("ann"), item, raw)
    assert 400 <= r.status_code < 500, (raw[:40], r.status_code, r.text[:200])
    assert len(r.content) < 20_000  # errors do not echo the input back
    assert client.get(f"/api/items/{item}", headers=login("ann")).json()["draft"] is None


def test_form_data_where_json_is_expected(client, login, item) -> None:
    r = _put_raw(
        client, login("ann"), item, b"shapes=1&revision=2", "application/x-www-form-urlencoded"
    )
    assert r.status_code == 422


def test_too_many_shapes_is_422(client, login, item) -> None:
    from annoloop.server.shapes import MAX_SHAPES

    body = {"shapes": [{"kind": "label", "label": 1}] * (MAX_SHAPES + 1), "revision": 1}
    r = client.put(f"/api/items/{item}/draft", json=body, headers=login("ann"))
    assert r.status_code == 422 and r.json()["where"] == "body.shapes"


def test_a_large_valid_draft_is_accepted(client, login, item) -> None:
    ann = login("ann")
    ring = [[0.5 + 0.4 * x, 0.5 + 0.4 * y] for x, y in _circle(20000)]
    shapes = [{"kind": "polygon", "label": 1, "polygon": [[ring]]}] + [shape_box()] * 2000
    r = client.put(f"/api/items/{item}/draft", json={"shapes": shapes, "revision": 1}, headers=ann)
    assert r.status_code == 200, r.text[:300]
    back = client.get(f"/api/items/{item}", headers=ann).json()["draft"]["shapes"]
    assert len(back) == 2001 and len(back[0]["polygon"][0][0]) == 20000


def _circle(n: int):
    import math

    return [(math.cos(2 * math.pi * k / n), math.sin(2 * math.pi * k / n)) for k in range(n)]


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "x" * 10000, "\u202e\u0000", "<script>alert(1)</script>", "' OR 1=1 --"],
)
def test_hostile_names_in_login_and_paths(client, login, name) -> None:
    r = client.post("/api/login", json={"name": name, "password": "whatever-password"})
    assert r.status_code in (401, 422)
    from urllib.parse import quote

    admin = login("admin")
    assert client.delete(f"/api/users/{quote(name, safe='')}", headers=admin).status_code in (
        404,
        422,
    )


def test_script_in_a_label_name_is_stored_as_text(client, login) -> None:
    designer = login("designer")
    name = "<img src=x onerror=alert(1)>"
    r = client.post("/api/labels", json={"name": name}, headers=designer)
    assert r.status_code == 201 and r.json()["name"] == name
    assert r.headers["content-type"] == "application/json"


_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)  # fmt: skip
_json = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)
_shape = st.fixed_dictionaries(
    {"kind": st.sampled_from(["bbox", "point", "line", "polygon", "label", "mask", "x"])},
    optional={
        "label": st.one_of(st.integers(-3, 5), _json),
        "box": st.one_of(st.lists(st.floats(-2, 2), min_size=3, max_size=5), _json),
        "point": st.one_of(st.lists(st.floats(-2, 2), min_size=1, max_size=3), _json),
        "line": st.lists(st.lists(st.floats(-1, 2), min_size=2, max_size=2), max_size=4),
        "polygon": _json,
        "mask": _json,
        "confidence": _json,
    },
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shapes=st.lists(_shape, max_size=4))
def test_fuzzed_shapes_never_crash_the_server(client, login, item, shapes) -> None:
    r = client.put(
        f"/api/items/{item}/draft", json={"shapes": shapes, "revision": 1}, headers=login("ann")
    )
    assert r.status_code in (200, 422), (shapes, r.status_code, r.text[:300])

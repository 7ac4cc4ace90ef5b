"""Stored annotations (list, add, edit, delete), COCO exports through the API, jobs and
statistics."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.server.helpers import PHOTOS, SHAPES_TASK, shape_box, shape_point


def _annotate(client, headers, shapes) -> dict:
    item = client.post(f"/api/tasks/{SHAPES_TASK}/next", headers=headers).json()["item"]
    r = client.post(f"/api/items/{item['id']}/submit", json={"shapes": shapes}, headers=headers)
    assert r.status_code == 200, r.text
    return item


def test_list_filter_and_page_annotations(client, login) -> None:
    ann, designer = login("ann"), login("designer")
    item = _annotate(client, ann, [shape_box(1), shape_point(2), shape_point(1)])
    page = client.get("/api/annotations", headers=designer).json()
    assert page["total"] == 3
    row = page["items"][0]
    assert row["image_id"] == item["image_id"] and row["work_item_id"] == item["id"]
    assert row["author"] == "ann" and row["source"] == "human" and row["task_id"] == SHAPES_TASK
    by_label = client.get("/api/annotations?label=1", headers=designer).json()
    assert by_label["total"] == 2
    by_kind = client.get("/api/annotations?kind=point&label=1", headers=designer).json()
    assert [r["kind"] for r in by_kind["items"]] == ["point"]
    paged = client.get("/api/annotations?limit=1&offset=2", headers=designer).json()
    assert len(paged["items"]) == 1 and paged["items"][0]["id"] == page["items"][2]["id"]
    assert client.get("/api/annotations?kind=circle", headers=designer).status_code == 422
    assert client.get("/api/annotations?task=99", headers=designer).status_code == 404
    assert client.get("/api/annotations?image=0", headers=designer).status_code == 422


def test_add_edit_delete_annotations(client, login, project) -> None:
    designer = login("designer")
    body = {"image_id": 2, "shapes": [shape_box(1), {"kind": "label", "label": 3}]}
    r = client.post("/api/annotations", json=body, headers=designer)
    assert r.status_code == 201
    first, second = r.json()["ids"]
    edit = {"shape": shape_box(2, (0.4, 0.4, 0.3, 0.3))}
    r = client.put(f"/api/annotations/{first}", json=edit, headers=designer)
    assert r.status_code == 200 and r.json()["replaced"] == first
    stored = project.annotations(image=2)
    assert sorted(stored["id"]) == sorted([second, r.json()["id"]])
    edited = stored[stored["id"] == r.json()["id"]].iloc[0]
    assert edited["label"] == "cup" and edited["author"] == "designer"
    assert np.allclose(edited[["x", "y", "w", "h"]].astype(float), [0.4, 0.4, 0.3, 0.3])
    bad = {"shape": shape_box(1, (0.9, 0.9, 0.5, 0.5))}
    r = client.put(f"/api/annotations/{second}", json=bad, headers=designer)
    assert r.status_code == 422 and r.json()["where"] == "shapes[0]"
    assert client.put("/api/annotations/999", json=edit, headers=designer).status_code == 404
    assert client.delete(f"/api/annotations/{second}", headers=designer).status_code == 200
    assert client.delete(f"/api/annotations/{second}", headers=designer).status_code == 404
    assert len(project.annotations(image=2)) == 1


@pytest.mark.parametrize(
    "body,status",
    [({"image_id": 99, "shapes": [shape_box()]}, 404),
     ({"image_id": 1, "task_id": 99, "shapes": [shape_box()]}, 404),
     ({"image_id": 1, "shapes": []}, 422),
     ({"image_id": 1, "shapes": [shape_box(label=99)]}, 422)],
)  # fmt: skip
def test_bad_adds(client, login, project, body, status) -> None:
    assert (
        client.post("/api/annotations", json=body, headers=login("designer")).status_code == status
    )
    assert len(project.annotations()) == 0


def test_coco_export_through_the_api(client, login, project) -> None:
    ann, designer = login("ann"), login("designer")
    item = _annotate(client, ann, [shape_box(1, (0.5, 0.5, 0.2, 0.4))])
    r = client.post("/api/exports", json={"format": "coco", "task": SHAPES_TASK}, headers=designer)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["annotations"] == 1 and out["images"] == len(PHOTOS)
    z = client.get(out["download"], headers=designer)
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
        coco = json.loads(zf.read("annotations.json"))
    (a,) = coco["annotations"]
    image = next(i for i in coco["images"] if i["id"] == a["image_id"])
    w, h = image["width"], image["height"]
    assert image["file_name"] == project.images([item["image_id"]])["location"].iloc[0]
    assert a["bbox"] == pytest.approx([0.4 * w, 0.3 * h, 0.2 * w, 0.4 * h])
    assert {c["name"] for c in coco["categories"]} >= {"cat"}
    jobs = client.get("/api/exports", headers=designer).json()
    assert jobs[0]["id"] == out["job_id"] and jobs[0]["state"] == "finished"
    assert jobs[0]["fraction"] == 1.0


def test_folder_formats_export_and_download(client, login) -> None:
    _annotate(client, login("ann"), [shape_box(1)])
    designer = login("designer")
    r = client.post("/api/exports", json={"format": "yolo"}, headers=designer)
    assert r.status_code == 201, r.text
    z = client.get(r.json()["download"], headers=designer)
    with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
        names = zf.namelist()
    assert any(n.endswith(".txt") for n in names)


def test_export_refusals(client, login) -> None:
    designer = login("designer")
    assert client.post("/api/exports", json={"format": "nope"}, headers=designer).status_code == 404
    assert client.post("/api/exports", json={"format": "../x"}, headers=designer).status_code == 422
    r = client.post("/api/exports", json={"format": "coco", "task": 99}, headers=designer)
    assert r.status_code == 404
    assert client.get("/api/exports/99/download", headers=designer).status_code == 404
    formats = client.get("/api/formats", headers=designer).json()
    assert "coco" in formats and "yolo" in formats


def test_jobs_list_progress_and_log(client, login, project) -> None:
    designer = login("designer")
    job = project.add_job("train", "detector v1", {"epochs": 3})
    project.update_job(job, state="running", progress_done=1, progress_total=4, message="epoch 1")
    project.append_job_log(job, "epoch 1 loss 0.9\n")
    project.append_job_log(job, "epoch 2 loss 0.7\n")
    jobs = client.get("/api/jobs", headers=designer).json()
    assert jobs[0]["id"] == job and jobs[0]["fraction"] == 0.25 and jobs[0]["state"] == "running"
    assert client.get("/api/jobs?state=finished", headers=designer).json() == []
    assert client.get("/api/jobs?state=bogus", headers=designer).status_code == 422
    one = client.get(f"/api/jobs/{job}", headers=designer).json()
    assert one["log"] == "epoch 1 loss 0.9\nepoch 2 loss 0.7\n" and one["log_end"] == 34
    tail = client.get(f"/api/jobs/{job}?log_offset=17", headers=designer).json()
    assert tail["log"] == "epoch 2 loss 0.7\n"
    assert client.get("/api/jobs/999", headers=designer).status_code == 404


def test_stats_and_plot(client, login) -> None:
    ann = login("ann")
    _annotate(client, ann, [shape_box(1), shape_point(2)])
    stats = client.get("/api/stats", headers=ann).json()
    assert stats["images"] == len(PHOTOS) and stats["annotations"] == 2
    assert stats["per_label"] == {"cat": 1, "cup": 1}
    assert stats["work_items"]["shapes"] == {"done": 1, "open": len(PHOTOS) - 1}
    png = client.get("/api/stats/plot.png", headers=ann)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size[0] > 400
    # unchanged statistics reuse the drawing; a change redraws it
    assert client.get("/api/stats/plot.png", headers=ann).content == png.content
    _annotate(client, ann, [shape_box(3)])
    assert client.get("/api/stats/plot.png", headers=ann).content != png.content

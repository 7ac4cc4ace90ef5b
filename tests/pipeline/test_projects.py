"""Pipeline projects: import from a folder or a zip, checked; hostile zips are refused."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from annoloop.errors import AlreadyExists, InvalidInput, NotFound
from annoloop.pipeline import service
from annoloop.pipeline.engine import run_pipe
from annoloop.pipeline.projects import MAX_FILES, unpack_zip
from tests.pipeline.helpers import write_pipeline

FILES = {
    "pipeline.yaml": "name: survey_kit\n",
    "request.yaml": """
        description: request every image
        elements:
          - {id: images, type: datasource}
          - {id: request, type: script, script: scripts/request.py, inputs: [images]}
          - {id: boxes, type: annotask, name: Boxes, inputs: [request]}
          - {id: legend, type: visual, file: static/legend.html}
    """,
    "scripts/request.py": """
        from annoloop.pipeline import Script

        class Request(Script):
            def main(self):
                for ds in self.inp.datasources:
                    self.outp.request_annos(ds.image_ids())
    """,
    "static/legend.html": "<p>boxes</p>\n",
    "data/notes.json": '{"just": "data"}\n',
}


def _zip(folder: Path, target: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(folder).as_posix())
    return target


def test_import_a_folder_and_start_a_pipe_from_it(project, executor, tmp_path):
    folder = write_pipeline(tmp_path / "kit", FILES)
    imported = service.import_pipeline(project, folder)
    assert imported.name == "survey_kit"
    assert list(imported.templates) == ["request"]
    assert str(imported.location).endswith("runs/pipelines/survey_kit")
    assert "survey_kit/request" in service.list_templates(project)
    status = service.start_pipe(project, "survey_kit/request", "from-kit", executor)
    assert status.element("boxes").items["open"] == len(project.images())
    shown = service.results(project, "from-kit", "legend")
    assert len(shown) == 1 and shown[0]["location"].endswith("static/legend.html")
    with pytest.raises(AlreadyExists):
        service.import_pipeline(project, folder)
    again = service.import_pipeline(project, folder, replace=True)
    assert again.name == "survey_kit"


def test_import_a_zip_with_or_without_a_top_folder(project, tmp_path):
    folder = write_pipeline(
        tmp_path / "kit", {k: v for k, v in FILES.items() if k != "pipeline.yaml"}
    )
    flat = _zip(folder, tmp_path / "flat_kit.zip")
    nested = _zip(folder, tmp_path / "nested.zip", prefix="inner_kit/")
    assert service.import_pipeline(project, flat).name == "flat_kit"
    assert service.import_pipeline(project, nested).name == "inner_kit"
    assert service.import_pipeline(project, flat, name="third").name == "third"


def test_errors_name_the_file_element_and_field(project, tmp_path):
    bad = dict(FILES)
    bad["request.yaml"] = FILES["request.yaml"].replace("scripts/request.py", "scripts/gone.py")
    with pytest.raises(InvalidInput, match=r"request.yaml: element 'request' field script"):
        service.import_pipeline(project, write_pipeline(tmp_path / "a", bad))
    bad["request.yaml"] = (
        FILES["request.yaml"]
        .replace("kinds", "kinds")
        .replace("name: Boxes", "name: Boxes, kinds: [blob]")
    )
    with pytest.raises(InvalidInput, match=r"request.yaml: element 'boxes' field kinds"):
        service.import_pipeline(project, write_pipeline(tmp_path / "b", bad))
    broken = dict(FILES)
    broken["scripts/request.py"] = "class Broken(Script):\n    def main(self)\n"
    with pytest.raises(InvalidInput, match=r"request.py line 2"):
        service.import_pipeline(project, write_pipeline(tmp_path / "c", broken))
    with pytest.raises(InvalidInput, match="holds no template"):
        service.import_pipeline(project, write_pipeline(tmp_path / "d", {"x.py": "x = 1\n"}))
    with pytest.raises(NotFound):
        service.import_pipeline(project, tmp_path / "missing")
    assert not project.runs.join("pipelines").exists() or not any(
        project.runs.join("pipelines").list(recursive=True)
    )


def _raw_zip(path: Path, members: list[tuple[str, bytes]], *, link: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
        if link is not None:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize(
    ("members", "link", "match"),
    [
        ([("../evil.py", b"x")], None, "outside the archive"),
        ([("/abs/evil.py", b"x")], None, "absolute path"),
        ([("C:/evil.py", b"x")], None, "absolute path"),
        ([("a\\..\\evil.py", b"x")], None, "backslash"),
        ([("ok.yaml", b"x")], "link.py", "symbolic link"),
        ([("bomb.bin", b"\0" * (8 << 20))], None, "zip bomb"),
    ],
)
def test_hostile_zips_are_refused(tmp_path, members, link, match):
    path = _raw_zip(tmp_path / "evil.zip", members, link=link)
    with pytest.raises(InvalidInput, match=match):
        unpack_zip(path, tmp_path / "out")
    assert not (tmp_path / "evil.py").exists()


def test_not_a_zip_and_too_many_members(tmp_path):
    (tmp_path / "fake.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(InvalidInput, match="not a readable zip"):
        unpack_zip(tmp_path / "fake.zip", tmp_path / "out")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(MAX_FILES + 1):
            zf.writestr(f"f{i}.txt", b"")
    (tmp_path / "many.zip").write_bytes(buf.getvalue())
    with pytest.raises(InvalidInput, match="members"):
        unpack_zip(tmp_path / "many.zip", tmp_path / "out")


def test_a_lying_zip_header_is_caught(tmp_path):
    path = _raw_zip(tmp_path / "lie.zip", [("a.txt", b"y" * 5000)])
    data = bytearray(path.read_bytes())
    # shrink the declared size in the central directory: the real data is larger
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidInput):
        unpack_zip(path, tmp_path / "out")


def test_a_pipe_from_an_imported_zip_runs(project, executor, tmp_path):
    folder = write_pipeline(tmp_path / "kit", FILES)
    service.import_pipeline(project, _zip(folder, tmp_path / "kit.zip"))
    status = service.start_pipe(project, "survey_kit/request", "z")
    status = run_pipe(project, "z", executor)
    assert status.element("request").state == "finished"

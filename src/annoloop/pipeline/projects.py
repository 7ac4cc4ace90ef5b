"""Pipeline projects: a folder (or a zip) of templates, scripts and static files.

Every ``*.yaml`` / ``*.yml`` / ``*.json`` file whose top level has ``elements`` is a template;
the scripts it names (``script: request.py``) and its static files live beside it. An optional
``pipeline.yaml`` with ``name:`` names the project (default: the folder or zip name).

:func:`import_pipeline_files` checks every template (graph, scripts present and parsable) and
copies the project into the store's storage (``runs/pipelines/<name>``). Zips are read
defensively: no absolute paths, no ``..``, no links, at most :data:`MAX_FILES` files and
:data:`MAX_BYTES` bytes unpacked, no member that expands more than :data:`MAX_RATIO` times.

The ready-made templates ship in ``annoloop/pipeline/templates/<name>/pipe.yaml``.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from annoloop.errors import AlreadyExists, InvalidInput, NotFound
from annoloop.pipeline.template import (
    MAX_TEMPLATE_BYTES,
    Template,
    parse_template,
    read_template_text,
)

MAX_FILES = 5_000
MAX_BYTES = 512 << 20  # 512 MiB unpacked
MAX_RATIO = 200  # a member that unpacks to more than this times its packed size is a bomb
TEMPLATE_SUFFIXES = (".yaml", ".yml", ".json")
MANIFEST = "pipeline.yaml"
BUILTIN_TEMPLATES = ("request_all", "propose_review", "two_stage", "point_loop", "export_only")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class PipelineProject:
    """A checked pipeline project: its name, where its files are, its templates."""

    name: str
    location: Any  # Location of the folder
    templates: dict[str, Template] = field(default_factory=dict)  # template name -> template
    files: dict[str, str] = field(default_factory=dict)  # template name -> file name


def builtin_folder() -> Path:
    """The folder of the ready-made templates inside the installed package."""
    return Path(__file__).resolve().parent / "templates"


def builtin_template(name: str) -> tuple[Template, str]:
    """A ready-made template and the location of its files."""
    folder = builtin_folder() / name
    if name not in BUILTIN_TEMPLATES or not (folder / "pipe.yaml").is_file():
        raise NotFound(f"no ready-made template {name!r} (known: {', '.join(BUILTIN_TEMPLATES)})")
    from annoloop.pipeline.template import load_template
    from annoloop.storage import Location

    return load_template(folder / "pipe.yaml"), str(Location.parse(folder))


def is_lost_template(data: Any) -> bool:
    """Whether parsed data is LOST's JSON pipeline format (elements with ``peN``)."""
    elements = data.get("elements") if isinstance(data, dict) else None
    return bool(elements) and isinstance(elements[0], dict) and "peN" in elements[0]


def template_from_data(data: dict[str, Any], where: str) -> Template:
    """A template from parsed YAML/JSON: annoloop's format, or LOST's (converted by
    :func:`annoloop.compat.lost.lost_template`). The name defaults to the file's stem."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(where).stem).strip("_.-") or "template"
    if is_lost_template(data):
        from annoloop.compat.lost import lost_template

        return lost_template(data, name=stem, where=where)
    data = dict(data)
    data.setdefault("name", stem)
    return parse_template(data, where)


def check_name(name: str, where: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"a pipeline name is 1-64 letters, digits, '_', '.', '-' (starting with a letter or "
            f"digit), got {name!r}",
            where,
        )
    return name


# -- reading a folder ---------------------------------------------------------------------------


def _relative_files(root: Any) -> list[str]:
    files = []
    for loc in root.list(recursive=True):
        rel = loc.relative_to(root)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.split("/")):
            continue
        files.append(rel)
    if len(files) > MAX_FILES:
        raise InvalidInput(f"holds {len(files)} files, at most {MAX_FILES}", str(root))
    return sorted(files)


def read_pipeline(folder: Any, name: str | None = None) -> PipelineProject:
    """Check a pipeline project folder: every template and the scripts and files it names."""
    from annoloop.pipeline.runner import script_location, script_source
    from annoloop.pipeline.script import script_info
    from annoloop.storage import Location

    root = Location.parse(folder)
    if not root.is_dir():
        raise NotFound(f"no pipeline project folder at {root}")
    files = _relative_files(root)
    manifest: dict[str, Any] = {}
    if MANIFEST in files:
        data = read_template_text(root.join(MANIFEST).read_text(), MANIFEST)
        if isinstance(data, dict) and "elements" not in data:
            manifest = data
    project_name = check_name(name or manifest.get("name") or root.name, f"{root} name")
    out = PipelineProject(name=project_name, location=root)
    for rel in files:
        if not rel.endswith(TEMPLATE_SUFFIXES) or (rel == MANIFEST and manifest):
            continue
        loc = root.join(rel)
        if loc.size() > MAX_TEMPLATE_BYTES:
            continue  # a data file, not a template
        try:
            text = loc.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            continue
        data = read_template_text(text, rel)
        if not isinstance(data, dict) or "elements" not in data:
            continue
        template = template_from_data(data, rel)
        if template.name in out.templates:
            raise InvalidInput(
                f"template name {template.name!r} is also used by {out.files[template.name]}", rel
            )
        for el in template.elements:
            where = f"{rel}: element {el.id!r}"
            if el.type == "script":
                script_loc = script_location(el.script, str(root))
                if script_loc is not None and not script_loc.exists():
                    raise InvalidInput(
                        f"script file {el.script!r} is not in the project", f"{where} field script"
                    )
                source, filename = script_source(el.script, str(root))
                from annoloop.pipeline.runner import split_ref

                script_info(source, filename, split_ref(el.script)[1])
            if el.type == "visual" and el.file is not None and not root.join(el.file).exists():
                raise InvalidInput(f"file {el.file!r} is not in the project", f"{where} field file")
            static = el.type == "datasource" and (el.location or "").startswith("static:")
            if static and not root.join(el.location[len("static:") :]).exists():
                raise InvalidInput(
                    f"{el.location!r} is not in the project", f"{where} field location"
                )
        out.templates[template.name] = template
        out.files[template.name] = rel
    if not out.templates:
        raise InvalidInput("holds no template (a YAML or JSON file with elements)", str(root))
    return out


# -- zips ---------------------------------------------------------------------------------------


def _safe_member(name: str, where: str) -> str | None:
    """The cleaned relative path of a zip member, None for a folder; InvalidInput if hostile."""
    if "\\" in name or "\x00" in name:
        raise InvalidInput(f"member {name!r} has a backslash or NUL in its name", where)
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise InvalidInput(f"member {name!r} has an absolute path", where)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidInput(f"member {name!r} points outside the archive (..)", where)
    if name.endswith("/"):
        return None
    return "/".join(parts) if parts else None


def unpack_zip(path: str | os.PathLike[str], target: Path) -> Path:
    """Unpack a pipeline zip into ``target`` (made) defensively; returns the project folder
    (the zip's single top folder, if it has one)."""
    where = os.fspath(path)
    try:
        archive = zipfile.ZipFile(where)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(f"not a readable zip file: {exc}", where) from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_FILES:
            raise InvalidInput(f"holds {len(members)} members, at most {MAX_FILES}", where)
        total = 0
        plan: list[tuple[zipfile.ZipInfo, str]] = []
        for info in members:
            rel = _safe_member(info.filename, where)
            mode = (info.external_attr >> 16) & 0xFFFF
            if stat.S_ISLNK(mode):
                raise InvalidInput(f"member {info.filename!r} is a symbolic link", where)
            if rel is None or info.is_dir():
                continue
            if info.file_size > MAX_BYTES:
                raise InvalidInput(f"member {info.filename!r} is too large", where)
            if info.compress_size and info.file_size / max(info.compress_size, 1) > MAX_RATIO:
                raise InvalidInput(
                    f"member {info.filename!r} expands "
                    f"{info.file_size // max(info.compress_size, 1)} times: refusing a zip bomb",
                    where,
                )
            total += info.file_size
            if total > MAX_BYTES:
                raise InvalidInput(f"unpacks to more than {MAX_BYTES} bytes", where)
            plan.append((info, rel))
        target.mkdir(parents=True, exist_ok=True)
        written = 0
        for info, rel in plan:
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as src, open(dest, "wb") as out:
                    remaining = info.file_size
                    while chunk := src.read(1 << 20):
                        remaining -= len(chunk)
                        written += len(chunk)
                        # the header may lie about the size: count what really comes out
                        if remaining < 0 or written > MAX_BYTES:
                            raise InvalidInput(
                                f"member {info.filename!r} is larger than declared", where
                            )
                        out.write(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                raise InvalidInput(f"member {info.filename!r} is damaged: {exc}", where) from None
    tops = {rel.split("/", 1)[0] for _, rel in plan}
    if len(tops) == 1 and all("/" in rel for _, rel in plan):
        return target / tops.pop()
    return target


# -- importing ----------------------------------------------------------------------------------


def _copy_tree(src: Any, dst: Any) -> None:
    for rel in _relative_files(src):
        dst.join(rel).write_bytes(src.join(rel).read_bytes())


def import_pipeline_files(
    project: Any, source: str | os.PathLike[str], *, name: str | None = None, replace: bool = False
) -> PipelineProject:
    """Check a pipeline project (folder or zip) and copy it to ``runs/pipelines/<name>``."""
    import tempfile

    src = Path(os.fspath(source)).expanduser()
    if not src.exists():
        raise NotFound(f"no pipeline project at {src}")
    with tempfile.TemporaryDirectory(prefix="annoloop-pipeline-") as tmp:
        if src.is_file():
            folder = unpack_zip(src, Path(tmp) / "unpacked")
            default = src.stem if folder == Path(tmp) / "unpacked" else folder.name
            checked = read_pipeline(folder, name or _manifest_name(folder) or default)
        else:
            checked = read_pipeline(src, name)
        dest = project.runs.join("pipelines", checked.name)
        if dest.exists():
            if not replace:
                raise AlreadyExists(
                    f"a pipeline project named {checked.name!r} is imported; replace it or "
                    "choose another name"
                )
            dest.delete(recursive=True)
        _copy_tree(checked.location, dest)
    return read_pipeline(dest, checked.name)


def _manifest_name(folder: Path) -> str | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    data = read_template_text(path.read_text(encoding="utf-8"), MANIFEST)
    return data.get("name") if isinstance(data, dict) and "elements" not in data else None


def imported_pipelines(project: Any) -> list[str]:
    """Names of the pipeline projects imported into the project."""
    root = project.runs.join("pipelines")
    if not root.exists():
        return []
    names = {loc.relative_to(root).split("/", 1)[0] for loc in root.list(recursive=True)}
    return sorted(n for n in names if _NAME.match(n))


def find_template(project: Any, ref: Any) -> tuple[Template, str | None]:
    """A template and the location of its files, from: a Template, a template file path,
    ``PIPELINE/TEMPLATE`` of an imported pipeline project, or a ready-made template name."""
    from annoloop.pipeline.template import load_template
    from annoloop.storage import Location

    if isinstance(ref, Template):
        return ref, None
    text = os.fspath(ref)
    path = Path(text).expanduser()
    if path.suffix in TEMPLATE_SUFFIXES and path.is_file():
        folder = str(Location.parse(path.resolve().parent))
        if path.stat().st_size > MAX_TEMPLATE_BYTES:
            raise InvalidInput(f"is larger than {MAX_TEMPLATE_BYTES} bytes", str(path))
        data = read_template_text(path.read_text(encoding="utf-8"), path.name)
        if isinstance(data, dict) and "elements" in data:
            return template_from_data(data, path.name), folder
        return load_template(path), folder
    if "/" in text and not path.exists():
        pipeline, _, template = text.partition("/")
        root = project.runs.join("pipelines", check_name(pipeline, "template"))
        if not root.exists():
            raise NotFound(f"no imported pipeline project {pipeline!r} (import it first)")
        checked = read_pipeline(root, pipeline)
        if template not in checked.templates:
            raise NotFound(
                f"pipeline project {pipeline!r} has no template {template!r} (templates: "
                f"{', '.join(checked.templates)})"
            )
        return checked.templates[template], str(root)
    if text in BUILTIN_TEMPLATES:
        return builtin_template(text)
    raise NotFound(
        f"no template {text!r}: give a template file, PIPELINE/TEMPLATE of an imported pipeline "
        f"project, or a ready-made template ({', '.join(BUILTIN_TEMPLATES)})"
    )

"""Pipeline templates: YAML or JSON files of elements, validated with pydantic.

A template is a list of elements wired into a graph by their ``inputs``::

    name: request-all
    elements:
      - {id: images, type: datasource, images: all}
      - {id: request, type: script, script: request_all.py, inputs: [images]}
      - {id: boxes, type: annotask, name: Boxes, kinds: [bbox], labels: [cat], inputs: [request]}
      - {id: out, type: export, format: coco, destination: boxes.json, inputs: [boxes]}

Element types: ``datasource`` (a storage location or a set of project images), ``script`` (a
Python file or dotted path, with arguments), ``annotask`` (the human step), ``export`` (a
format and a destination), ``visual`` (a file or a plot a script produced) and ``loop`` (jump
back to an element, at most ``max_iterations`` runs of its body). The inputs must form a graph
without cycles: a loop's ``jump`` is the only way back. Every error names the file, the element
id and the field (``pipe.yaml: element 'boxes' field kinds[0]: unknown shape kind 'boks'``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from annoloop.errors import InvalidInput
from annoloop.geometry.kinds import Kind

# Element ids become parts of job names, log records and paths: keep them tame.
ELEMENT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ElementId = Annotated[str, StringConstraints(pattern=ELEMENT_ID)]
ENV_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$"
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME)]
Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]

MAX_TEMPLATE_BYTES = 1 << 20  # 1 MiB: templates are small; a larger file is a mistake or worse
MAX_ELEMENTS = 500
ELEMENT_TYPES = ("datasource", "script", "annotask", "export", "visual", "loop")


class _Element(BaseModel):
    """Fields every element has: its id, its inputs and a description."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: ElementId
    inputs: list[ElementId] = Field(default_factory=list)
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""

    @field_validator("inputs")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        seen = set()
        for name in value:
            if name in seen:
                raise ValueError(f"input {name!r} is listed twice")
            seen.add(name)
        return value


class Datasource(_Element):
    """Where the images come from: a storage location, or project images.

    ``location`` is a URL or absolute path, a path relative to the project's media root, or
    ``static:PATH`` inside the pipeline project. ``images`` is ``"all"`` or a list of image
    ids. Without either, the datasource stands for every image of the project.
    """

    type: Literal["datasource"] = "datasource"
    location: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None
    images: Literal["all"] | list[Annotated[int, Field(ge=1)]] | None = None
    recursive: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> Datasource:
        if self.location is not None and self.images is not None:
            raise ValueError("give either location or images, not both")
        return self


class Script(_Element):
    """A Python script: ``file.py`` (in the pipeline project), ``file.py:ClassName``,
    ``package.module`` or ``package.module:ClassName``. ``arguments`` override the script's
    ``ARGUMENTS`` defaults (plain values, or LOST's ``{value: ..., help: ...}``); ``envs``
    overrides its ``ENVS``; ``retries`` re-runs it after a lost worker."""

    type: Literal["script"] = "script"
    script: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    arguments: dict[Annotated[str, StringConstraints(min_length=1, max_length=200)], Any] = Field(
        default_factory=dict
    )
    envs: list[EnvName] | None = None
    lock_all: bool | None = None
    gpu: bool | None = None
    retries: Annotated[int, Field(ge=0, le=10)] = 1


class Annotask(_Element):
    """The human step: a task with instructions, allowed shape kinds and labels."""

    type: Literal["annotask"] = "annotask"
    name: Text200
    instructions: Annotated[str, StringConstraints(max_length=100_000)] = ""
    kinds: list[str] = Field(default_factory=lambda: ["bbox"], min_length=1)
    labels: list[Text200] | None = None
    show_proposals: bool = True

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        out = []
        for i, kind in enumerate(value):
            try:
                out.append(Kind.parse(kind).label)
            except InvalidInput as exc:
                raise ValueError(f"kinds[{i}]: {exc}") from None
        return out


class Export(_Element):
    """Write annotations in a format (``format`` + ``destination``), or, without ``format``,
    collect the files the scripts before it exported. The annotations are those of the
    annotation tasks upstream (all project annotations when there are none), optionally only
    the given ``tasks`` and ``source``. A relative destination lies in the element's folder
    of the pipe's run folder."""

    type: Literal["export"] = "export"
    format: Annotated[str, StringConstraints(min_length=1, max_length=50)] | None = None
    destination: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None
    tasks: list[Text200] | None = None
    source: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _destination(self) -> Export:
        if self.format is not None and self.destination is None:
            raise ValueError("an export with a format needs a destination")
        return self


class Visual(_Element):
    """Something to look at: a static ``file`` of the pipeline project, or the images and HTML
    that the scripts before it add with ``add_visual_output``."""

    type: Literal["visual"] = "visual"
    file: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None


class Loop(_Element):
    """Jump back to ``jump`` until the body ran ``max_iterations`` times or a script in it
    called ``break_loop()``."""

    type: Literal["loop"] = "loop"
    jump: ElementId
    max_iterations: Annotated[int, Field(ge=1, le=100_000)]


Element = Datasource | Script | Annotask | Export | Visual | Loop
_MODELS: dict[str, type[_Element]] = {
    "datasource": Datasource,
    "script": Script,
    "annotask": Annotask,
    "export": Export,
    "visual": Visual,
    "loop": Loop,
}


class Template(BaseModel):
    """A validated pipeline template. Build it with :func:`parse_template` or
    :func:`load_template` so that the graph is checked too."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(pattern=ELEMENT_ID)]
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    author: Annotated[str, StringConstraints(max_length=200)] | None = None
    version: Annotated[int, Field(ge=1)] = 1
    elements: list[Element]

    def element(self, element_id: str) -> Element:
        """The element called ``element_id``; InvalidInput naming the known ones otherwise."""
        for el in self.elements:
            if el.id == element_id:
                return el
        known = ", ".join(e.id for e in self.elements)
        raise InvalidInput(
            f"no element {element_id!r} (elements: {known})", f"template {self.name!r}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data that :func:`parse_template` reads back."""
        return self.model_dump(mode="json", exclude_defaults=False)


# -- reading ------------------------------------------------------------------------------------


def _error_location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validation_message(exc: ValidationError) -> tuple[str, str]:
    """(field, message) of the first error of a pydantic ValidationError."""
    err = exc.errors(include_url=False)[0]
    field = _error_location(tuple(err.get("loc", ())))
    msg = str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        msg = "unknown field"
    elif err.get("type") == "missing":
        msg = "is required"
    return field, msg


def _parse_element(raw: Any, index: int, where: str) -> _Element:
    if not isinstance(raw, dict):
        raise InvalidInput(
            f"must be a mapping, got {type(raw).__name__}", f"{where}: elements[{index}]"
        )
    ident = raw.get("id")
    label = f"element {ident!r}" if isinstance(ident, str) and ident else f"elements[{index}]"
    kind = raw.get("type")
    if kind is None:
        raise InvalidInput(
            f"field type is required (one of: {', '.join(ELEMENT_TYPES)})", f"{where}: {label}"
        )
    if kind not in _MODELS:
        raise InvalidInput(
            f"unknown element type {kind!r} (known: {', '.join(ELEMENT_TYPES)})",
            f"{where}: {label} field type",
        )
    try:
        return _MODELS[kind].model_validate(raw)
    except ValidationError as exc:
        field, msg = _validation_message(exc)
        place = f"{where}: {label}" + (f" field {field}" if field else "")
        raise InvalidInput(msg, place) from None


def parse_template(data: Any, where: str = "template") -> Template:
    """A :class:`Template` from parsed YAML/JSON data, with its graph checked.

    ``where`` names the source in error messages (a file name).
    """
    if not isinstance(data, dict):
        raise InvalidInput(f"a template must be a mapping, got {type(data).__name__}", where)
    unknown = sorted(set(data) - {"name", "description", "author", "version", "elements"})
    if unknown:
        raise InvalidInput(f"unknown field(s) {unknown}", where)
    raw_elements = data.get("elements")
    if not isinstance(raw_elements, list) or not raw_elements:
        raise InvalidInput("field elements must be a non-empty list", where)
    if len(raw_elements) > MAX_ELEMENTS:
        raise InvalidInput(f"has {len(raw_elements)} elements, at most {MAX_ELEMENTS}", where)
    elements = [_parse_element(raw, i, where) for i, raw in enumerate(raw_elements)]
    head = {k: v for k, v in data.items() if k != "elements"}
    head.setdefault("name", Path(where).stem if where != "template" else "template")
    try:
        template = Template.model_validate({**head, "elements": []})
    except ValidationError as exc:
        field, msg = _validation_message(exc)
        raise InvalidInput(msg, f"{where}: field {field}") from None
    template = template.model_copy(update={"elements": elements})
    from annoloop.pipeline.graph import check_graph

    check_graph(template, where)
    return template


class _NoAliasLoader:  # built lazily: yaml is imported only when a YAML template is read
    cls: Any = None


def _yaml_loader() -> Any:
    if _NoAliasLoader.cls is None:
        import yaml

        class Loader(yaml.SafeLoader):
            """SafeLoader that refuses aliases: a template never needs them, and nested
            aliases are how a small YAML file expands into gigabytes (billion laughs)."""

            def compose_node(self, parent: Any, index: Any) -> Any:
                if self.check_event(yaml.events.AliasEvent):
                    event = self.peek_event()
                    raise InvalidInput(
                        "YAML aliases (*name) are not allowed in templates",
                        f"line {event.start_mark.line + 1}",
                    )
                return super().compose_node(parent, index)

        _NoAliasLoader.cls = Loader
    return _NoAliasLoader.cls


def read_template_text(text: str, where: str = "template") -> Any:
    """Parse the YAML or JSON text of a template (no graph checks); errors name the line."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TEMPLATE_BYTES:
        raise InvalidInput(f"is larger than {MAX_TEMPLATE_BYTES} bytes", where)
    stripped = text.lstrip()
    try:
        if stripped.startswith(("{", "[")):
            return json.loads(text)
        import yaml

        return yaml.load(text, Loader=_yaml_loader())
    except InvalidInput as exc:
        raise InvalidInput(exc.reason, f"{where}: {exc.where}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not valid JSON: {exc.msg}", f"{where}: line {exc.lineno}") from None
    except RecursionError:
        raise InvalidInput("is nested too deeply", where) from None
    except Exception as exc:  # yaml.YAMLError and friends: report the position
        mark = getattr(exc, "problem_mark", None)
        line = f": line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInput(f"not valid YAML: {problem}", f"{where}{line}") from None


def load_template(source: str | os.PathLike[str] | Any) -> Template:
    """Read and check a template from a file path, a Location, or YAML/JSON text."""
    from annoloop.storage import Location

    if isinstance(source, str) and ("\n" in source or source.lstrip().startswith("{")):
        return parse_template(read_template_text(source), "template")
    loc = source if isinstance(source, Location) else Location.parse(source)
    where = loc.name or str(loc)
    if not loc.exists():
        raise InvalidInput("no such template file", str(loc))
    if loc.size() > MAX_TEMPLATE_BYTES:
        raise InvalidInput(f"is larger than {MAX_TEMPLATE_BYTES} bytes", where)
    try:
        text = loc.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"is not UTF-8 text (byte {exc.start})", where) from None
    return parse_template(read_template_text(text, where), where)


def apply_overrides(template: Template, overrides: dict[str, Any] | None) -> Template:
    """A copy of ``template`` with ``{"element.field": value}`` set, checked again.

    ``{"request.arguments.priority": 2}`` sets one script argument; ``{"boxes.labels":
    ["cat"]}`` replaces a field.
    """
    if not overrides:
        return template
    data = template.to_dict()
    by_id = {el["id"]: el for el in data["elements"]}
    for key, value in overrides.items():
        parts = str(key).split(".")
        if len(parts) < 2 or parts[0] not in by_id:
            known = ", ".join(by_id)
            raise InvalidInput(
                f"override {key!r} must be ELEMENT.FIELD with a known element ({known})",
                "overrides",
            )
        target = by_id[parts[0]]
        for part in parts[1:-1]:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                target[part] = nxt
            target = nxt
        target[parts[-1]] = value
    return parse_template(data, f"template {template.name!r} with overrides")

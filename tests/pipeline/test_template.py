"""Templates: YAML and JSON, pydantic validation, graph checks; every error names the element
and the field; hostile input (aliases, huge, deep, wrong types) is refused cleanly."""

from __future__ import annotations

import json

import pytest

from annoloop.errors import InvalidInput
from annoloop.pipeline.graph import PipeGraph
from annoloop.pipeline.projects import BUILTIN_TEMPLATES, builtin_template
from annoloop.pipeline.template import (
    MAX_TEMPLATE_BYTES,
    apply_overrides,
    load_template,
    parse_template,
    read_template_text,
)

GOOD = """
name: demo
description: a demo
elements:
  - {id: images, type: datasource, location: field/2024}
  - {id: request, type: script, script: request.py, inputs: [images],
     arguments: {priority: 2, mode: {value: fast, help: how}}}
  - {id: boxes, type: annotask, name: Boxes, kinds: [box, Point], labels: [cat, dog],
     inputs: [request]}
  - {id: train, type: script, script: "pkg.train:Train", inputs: [boxes]}
  - {id: plot, type: visual, inputs: [train]}
  - {id: loop, type: loop, jump: request, max_iterations: 3, inputs: [train]}
  - {id: out, type: export, format: coco, destination: "out-{iteration}.json", inputs: [loop]}
"""


def _elements(*items: dict) -> dict:
    return {"name": "t", "elements": list(items)}


DS = {"id": "ds", "type": "datasource"}
SCRIPT = {"id": "s", "type": "script", "script": "s.py", "inputs": ["ds"]}
TASK = {"id": "t", "type": "annotask", "name": "T", "inputs": ["s"]}


def test_yaml_and_json_give_the_same_template():
    from_yaml = load_template(GOOD)
    from_json = load_template(json.dumps(from_yaml.to_dict()))
    assert from_json == from_yaml
    boxes = from_yaml.element("boxes")
    assert boxes.kinds == ["bbox", "point"]  # aliases and case normalised
    assert from_yaml.element("request").arguments["mode"] == {"value": "fast", "help": "how"}
    assert from_yaml.element("loop").max_iterations == 3


def test_the_graph_knows_order_loop_bodies_and_pass_through():
    g = PipeGraph(load_template(GOOD))
    assert g.order.index("images") < g.order.index("request") < g.order.index("out")
    assert g.bodies["loop"] == {"request", "boxes", "train", "plot"}
    assert g.enclosing_loop("train") == "loop"
    assert g.enclosing_loop("out") is None
    assert g.sources("out") == ["train"]  # the loop passes its input through
    assert g.consumers("train") == ["plot", "out"]
    assert g.upstream_annotasks("out") == ["boxes"]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (
            _elements(DS, {**SCRIPT, "inputs": ["nope"]}),
            r"element 's' field inputs\[0\]: unknown element 'nope'",
        ),
        (_elements(DS, {**SCRIPT, "id": "ds"}), r"elements\[1\] field id: id 'ds' is used"),
        (_elements(DS, {**SCRIPT, "retries": 99}), r"element 's' field retries"),
        (_elements(DS, {**SCRIPT, "colour": 1}), r"element 's' field colour: unknown field"),
        (_elements(DS, {**SCRIPT, "script": ""}), r"element 's' field script"),
        (
            _elements(DS, SCRIPT, {**TASK, "kinds": ["boks"]}),
            r"element 't' field kinds: .*unknown shape kind 'boks'",
        ),
        (_elements(DS, SCRIPT, {**TASK, "name": None}), r"element 't' field name"),
        (
            _elements(DS, {"id": "x", "type": "magic"}),
            r"element 'x' field type: unknown element type 'magic'",
        ),
        (_elements(DS, {"id": "x"}), r"element 'x': field type is required"),
        (_elements(DS, {"id": "bad id!", "type": "datasource"}), r"field id"),
        (_elements({**DS, "inputs": ["ds"]}), r"element 'ds' field inputs\[0\]: an element cannot"),
        (
            _elements(
                DS, {**SCRIPT, "id": "a", "inputs": ["b"]}, {**SCRIPT, "id": "b", "inputs": ["a"]}
            ),
            r"inputs form a cycle (a -> b -> a|b -> a -> b)",
        ),
        (
            _elements(
                DS,
                SCRIPT,
                {"id": "l", "type": "loop", "jump": "zz", "max_iterations": 2, "inputs": ["s"]},
            ),
            r"element 'l' field jump: unknown element",
        ),
        (
            _elements(
                DS,
                SCRIPT,
                {**SCRIPT, "id": "other"},
                {"id": "l", "type": "loop", "jump": "other", "max_iterations": 2, "inputs": ["s"]},
            ),
            r"element 'l' field jump: the jump target 'other' must",
        ),
        (
            _elements(
                DS,
                SCRIPT,
                {"id": "l", "type": "loop", "jump": "s", "max_iterations": 0, "inputs": ["s"]},
            ),
            r"element 'l' field max_iterations",
        ),
        (
            _elements(DS, {**TASK, "inputs": ["ds"]}),
            r"element 't' field inputs\[0\]: an annotask is fed by scripts",
        ),
        (
            _elements(DS, {"id": "e", "type": "export", "format": "coco"}),
            r"element 'e': an export with a format needs a destination",
        ),
        (
            _elements(DS, {"id": "v", "type": "visual", "inputs": ["ds"]}),
            r"element 'v' field inputs",
        ),
        (_elements({**DS, "location": "x", "images": "all"}), r"element 'ds': give either"),
        ({"name": "t"}, r"field elements must be a non-empty list"),
        ({"name": "t", "elements": [], "extra": 1}, r"unknown field"),
        ([1, 2], r"a template must be a mapping"),
        ({"name": "bad name!", "elements": [DS]}, r"field name"),
    ],
)
def test_errors_name_the_element_and_the_field(data, match):
    with pytest.raises(InvalidInput, match=match):
        parse_template(data, "pipe.yaml")


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nelements:\n  - {id: a, type: script, inputs: []}\n")
    with pytest.raises(InvalidInput, match=r"mine.yaml: element 'a' field script: is required"):
        load_template(path)


def test_overlapping_loops_are_refused():
    data = _elements(
        DS,
        SCRIPT,
        {**SCRIPT, "id": "s2", "inputs": ["s"]},
        {**SCRIPT, "id": "s3", "inputs": ["s2"]},
        {"id": "l1", "type": "loop", "jump": "s", "max_iterations": 2, "inputs": ["s2"]},
        {"id": "l2", "type": "loop", "jump": "s2", "max_iterations": 2, "inputs": ["s3"]},
    )
    with pytest.raises(InvalidInput, match="overlap"):
        parse_template(data)


def test_nested_loops_are_accepted():
    data = _elements(
        DS,
        SCRIPT,
        {**SCRIPT, "id": "s2", "inputs": ["s"]},
        {"id": "inner", "type": "loop", "jump": "s2", "max_iterations": 2, "inputs": ["s2"]},
        {**SCRIPT, "id": "s3", "inputs": ["inner"]},
        {"id": "outer", "type": "loop", "jump": "s", "max_iterations": 2, "inputs": ["s3"]},
    )
    g = PipeGraph(parse_template(data))
    assert g.bodies["inner"] == {"s2"}
    assert g.bodies["outer"] == {"s", "s2", "inner", "s3"}
    assert g.enclosing_loop("s2") == "inner"


def test_hostile_text_is_refused():
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\nelements: []\n"
    with pytest.raises(InvalidInput, match="aliases"):
        read_template_text(bomb, "bomb.yaml")
    with pytest.raises(InvalidInput, match="larger than"):
        read_template_text("#" * (MAX_TEMPLATE_BYTES + 1), "huge.yaml")
    with pytest.raises(InvalidInput, match=r"broken.yaml: line \d+: not valid YAML"):
        read_template_text("name: x\nelements: [\n  {id: \n", "broken.yaml")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        read_template_text('{"name": ', "broken.json")
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(InvalidInput):
        read_template_text(deep, "deep.json")
    with pytest.raises(InvalidInput, match="elements must be a non-empty list"):
        parse_template(read_template_text("name: x\nelements: {}\n"), "x.yaml")
    with pytest.raises(InvalidInput, match=r"elements\[0\]: must be a mapping"):
        parse_template({"name": "x", "elements": ["datasource"]}, "x.yaml")
    # a python object tag is not executed
    with pytest.raises(InvalidInput, match="not valid YAML"):
        read_template_text("!!python/object/apply:os.system ['echo hi']", "evil.yaml")


def test_too_many_elements_are_refused():
    many = [DS] + [{**SCRIPT, "id": f"s{i}"} for i in range(600)]
    with pytest.raises(InvalidInput, match="at most 500"):
        parse_template(_elements(*many))


def test_overrides_set_fields_and_are_checked_again():
    tmpl = load_template(GOOD)
    out = apply_overrides(tmpl, {"boxes.labels": ["bird"], "request.arguments.priority": 5})
    assert out.element("boxes").labels == ["bird"]
    assert out.element("request").arguments["priority"] == 5
    with pytest.raises(InvalidInput, match="element 'boxes' field kinds"):
        apply_overrides(tmpl, {"boxes.kinds": ["nope"]})
    with pytest.raises(InvalidInput, match=r"ELEMENT\.FIELD"):
        apply_overrides(tmpl, {"ghost.kinds": ["bbox"]})


@pytest.mark.parametrize("name", BUILTIN_TEMPLATES)
def test_every_ready_made_template_is_valid(name):
    template, files = builtin_template(name)
    assert template.name == name and template.description
    assert files.startswith("file://")

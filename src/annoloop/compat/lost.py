"""Run LOST pipeline scripts and templates in annoloop.

A LOST script runs with one line changed::

    from lost.pyapi import script              # before
    from annoloop.compat.lost import script    # after

    class LostScript(script.Script):
        def main(self):
            for ds in self.inp.datasources:
                for img_path in ds.get_fs().ls(ds.path):
                    self.outp.request_annos(img_path, annos=[[0.5, 0.5, 0.2, 0.2]],
                                            anno_types=["bbox"], anno_labels=[["cat"]])

    if __name__ == "__main__":      # never true inside a pipe: the pipe runs main()
        my_script = LostScript()

What carries over: ``self.inp`` (``datasources`` with ``path`` and ``get_fs()``,
``img_annos``, ``twod_annos``, ``bbox_annos``, ``to_df()``, ``to_vec()``, ``anno_tasks``),
``self.outp`` (``request_annos`` with ``annos`` / ``anno_types`` / ``anno_labels`` /
``img_labels`` / ``frame_n`` / ``video_path`` / ``img_meta``, ``request_bba``,
``add_visual_output``, ``add_data_export``), ``get_arg`` with LOST's string conversions
(``"true"`` -> True, ``"[1, 2]"`` -> [1, 2], ``"-"`` -> None), module-level ``ENVS`` and
``ARGUMENTS``, ``get_path(name, context="instance"|"pipe"|"static")``, ``get_fs()``,
``get_filesystem()``, ``logger``, ``iteration``, ``break_loop()``, ``loop_is_broken()``,
``reject_execution()``, ``update_progress(percent)``.

Differences: an annotation holds one label (the first of a LOST label list is kept, with a
warning); ``sim_class`` values and ``fs`` arguments are accepted and ignored; label trees are
the project's labels (``get_label_tree`` returns them as a DataFrame).

:func:`lost_template` converts LOST's JSON pipeline definition (``peN``, ``peOut``,
``datasource``, ``script``, ``annoTask``, ``loop``, ``dataExport``, ``visualOutput``) into an
annoloop :class:`~annoloop.pipeline.template.Template`.
"""

from __future__ import annotations

import ast
import types
from pathlib import PurePosixPath
from typing import Any

from annoloop.errors import InvalidInput
from annoloop.pipeline.script import _MISSING
from annoloop.pipeline.script import Script as _Script


def lost_value(value: Any) -> Any:
    """LOST's conversion of an argument value: ``t/true/yes`` -> True, ``f/false/no`` ->
    False, ``-`` / ``""`` / ``[]`` -> None, else a Python literal if it parses, else the
    string."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.lower() in ("t", "true", "yes"):
        return True
    if text.lower() in ("f", "false", "no"):
        return False
    if text in ("-", "", "[]"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return value


class Script(_Script):
    """A LOST script (``lost.pyapi.script.Script``) running in an annoloop pipe."""

    def get_arg(self, arg_name: str, default: Any = _MISSING) -> Any:
        """The argument's value with LOST's conversions (see :func:`lost_value`)."""
        return lost_value(super().get_arg(arg_name, default))

    def get_label_tree(self, name: str | None = None) -> Any:
        """The project's labels (annoloop has one label tree per project)."""
        return self.project.labels()

    def get_alien_element(self, pe_id: int) -> Any:
        raise InvalidInput(
            "annoloop scripts see their own pipe only (get_alien_element is not supported)",
            f"element {self.element_id!r}",
        )


# ``from annoloop.compat.lost import script`` then ``script.Script``, as with lost.pyapi.
script = types.ModuleType("annoloop.compat.lost.script", "LOST's script module: Script.")
script.Script = Script  # type: ignore[attr-defined]
script.lost_value = lost_value  # type: ignore[attr-defined]


# -- templates ----------------------------------------------------------------------------------

_SIA_TOOLS = ("point", "line", "polygon", "bbox")


def _element_id(raw: dict[str, Any], ids: dict[int, str]) -> str:
    return ids[int(raw["peN"])]


def _name_of(raw: dict[str, Any]) -> str:
    if "script" in raw:
        stem = PurePosixPath(str(raw["script"].get("path", "script"))).stem
        return stem or "script"
    for key, base in (("annoTask", "annotask"), ("datasource", "datasource"), ("loop", "loop"),
                      ("dataExport", "export"), ("visualOutput", "visual")):  # fmt: skip
        if key in raw:
            return base
    return "element"


def lost_template(
    data: dict[str, Any],
    *,
    name: str | None = None,
    datasources: dict[int, str] | None = None,
    where: str = "LOST template",
) -> Any:
    """An annoloop Template from LOST's JSON pipeline definition.

    ``datasources`` maps a datasource's ``peN`` to a location (LOST asks for it when a pipe
    starts); a datasource without one stands for every project image. A LOST loop's
    ``max_iteration`` counts jumps back, so it becomes ``max_iterations = max_iteration + 1``
    runs of the body. An annoTask's kinds come from ``configuration.tools`` (SIA) or are
    image labels (MIA).
    """
    from annoloop.pipeline.template import parse_template

    if not isinstance(data, dict) or not isinstance(data.get("elements"), list):
        raise InvalidInput("a LOST template is a mapping with an elements list", where)
    raws = data["elements"]
    ids: dict[int, str] = {}
    used: set[str] = set()
    for i, raw in enumerate(raws):
        if not isinstance(raw, dict) or not isinstance(raw.get("peN"), int):
            raise InvalidInput("every element needs an integer peN", f"{where}: elements[{i}]")
        base = _name_of(raw)
        ident = base if base not in used else f"{base}_{raw['peN']}"
        used.add(ident)
        ids[int(raw["peN"])] = ident
    inputs: dict[str, list[str]] = {v: [] for v in ids.values()}
    for i, raw in enumerate(raws):
        for out in raw.get("peOut") or []:
            if out not in ids:
                raise InvalidInput(f"peOut names unknown peN {out}", f"{where}: elements[{i}]")
            inputs[ids[out]].append(_element_id(raw, ids))
    elements = []
    for i, raw in enumerate(raws):
        ident = _element_id(raw, ids)
        el: dict[str, Any] = {"id": ident, "inputs": inputs[ident]}
        if "datasource" in raw:
            el["type"] = "datasource"
            location = (datasources or {}).get(int(raw["peN"]))
            if location is not None:
                el["location"] = location
            el["inputs"] = []
        elif "script" in raw:
            spec = raw["script"]
            el["type"] = "script"
            el["script"] = str(spec.get("path", ""))
            el["description"] = str(spec.get("description", ""))
            args = spec.get("arguments") or {}
            if args:
                el["arguments"] = args
        elif "annoTask" in raw:
            spec = raw["annoTask"]
            el["type"] = "annotask"
            el["name"] = str(spec.get("name", ident))
            el["instructions"] = str(spec.get("instructions", ""))
            kind = str(spec.get("type", "sia")).lower()
            tools = ((spec.get("configuration") or {}).get("tools")) or {}
            if kind == "mia":
                el["kinds"] = ["label"]
            else:
                chosen = [t for t in _SIA_TOOLS if tools.get(t, not tools)]
                el["kinds"] = chosen or ["bbox"]
        elif "loop" in raw:
            spec = raw["loop"]
            el["type"] = "loop"
            jump = spec.get("peJumpId")
            if jump not in ids:
                raise InvalidInput(
                    f"peJumpId {jump!r} is not a known peN", f"{where}: elements[{i}]"
                )
            el["jump"] = ids[jump]
            el["max_iterations"] = int(spec.get("max_iteration") or 0) + 1
        elif "dataExport" in raw:
            el["type"] = "export"
        elif "visualOutput" in raw:
            el["type"] = "visual"
        else:
            raise InvalidInput(
                "unknown element (datasource, script, annoTask, loop, dataExport, visualOutput)",
                f"{where}: elements[{i}]",
            )
        elements.append(el)
    out = {
        "name": name or str(data.get("name") or data.get("description") or "lost_pipe"),
        "description": str(data.get("description", "")),
        "elements": elements,
    }
    out["name"] = "".join(c if c.isalnum() or c in "_.-" else "_" for c in out["name"])[:64]
    return parse_template(out, where)

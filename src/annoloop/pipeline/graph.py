"""The element graph of a template: checks, order, loop bodies, pass-through of loops.

Edges go from an input to the element that lists it. Without loops the graph must be acyclic;
a loop's ``jump`` is the one way back. The *body* of a loop is its jump target and everything
reachable from the target without passing through the loop itself: those elements run again
on every iteration. A loop passes its inputs' data through, so an element after a loop sees
the loop's inputs as its own (:meth:`PipeGraph.sources`).
"""

from __future__ import annotations

from collections import deque
from functools import cached_property
from typing import Any

from annoloop.errors import InvalidInput


class PipeGraph:
    """Adjacency, order and loop structure of a (checked) template."""

    def __init__(self, template: Any) -> None:
        self.template = template
        self.elements = {el.id: el for el in template.elements}
        self.ids = [el.id for el in template.elements]
        self.inputs: dict[str, list[str]] = {el.id: list(el.inputs) for el in template.elements}
        self.outputs: dict[str, list[str]] = {i: [] for i in self.ids}
        for el in template.elements:
            for src in el.inputs:
                if src in self.outputs:
                    self.outputs[src].append(el.id)

    def type_of(self, element_id: str) -> str:
        return str(self.elements[element_id].type)

    @cached_property
    def order(self) -> list[str]:
        """Element ids in topological order of the inputs (template order among equals)."""
        indegree = {i: len(self.inputs[i]) for i in self.ids}
        queue = deque(i for i in self.ids if indegree[i] == 0)
        out = []
        while queue:
            node = queue.popleft()
            out.append(node)
            for nxt in self.outputs[node]:
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    queue.append(nxt)
        return out

    def descendants(self, start: str, *, stop: str | None = None) -> set[str]:
        """Elements reachable from ``start`` through outputs (not through ``stop``)."""
        seen: set[str] = set()
        queue = deque(self.outputs[start])
        while queue:
            node = queue.popleft()
            if node in seen or node == stop:
                continue
            seen.add(node)
            queue.extend(self.outputs[node])
        return seen

    def ancestors(self, start: str) -> set[str]:
        """Elements ``start`` depends on, directly or not."""
        seen: set[str] = set()
        queue = deque(self.inputs[start])
        while queue:
            node = queue.popleft()
            if node in seen:
                continue
            seen.add(node)
            queue.extend(self.inputs[node])
        return seen

    @cached_property
    def loops(self) -> list[str]:
        return [i for i in self.ids if self.type_of(i) == "loop"]

    def body(self, loop_id: str) -> set[str]:
        """The elements a loop runs again: its target and what follows it, up to the loop."""
        target = self.elements[loop_id].jump
        return {target} | self.descendants(target, stop=loop_id)

    @cached_property
    def bodies(self) -> dict[str, set[str]]:
        return {loop: self.body(loop) for loop in self.loops}

    def enclosing_loop(self, element_id: str) -> str | None:
        """The innermost loop whose body holds ``element_id`` (``break_loop`` breaks it)."""
        found = [loop for loop, body in self.bodies.items() if element_id in body]
        if not found:
            return None
        return min(found, key=lambda loop: len(self.bodies[loop]))

    def sources(self, element_id: str) -> list[str]:
        """The inputs of an element with loops replaced by their own inputs (recursively)."""
        out: list[str] = []
        for src in self.inputs[element_id]:
            if self.type_of(src) == "loop":
                out.extend(s for s in self.sources(src) if s not in out)
            elif src not in out:
                out.append(src)
        return out

    def consumers(self, element_id: str) -> list[str]:
        """The elements fed by an element, looking through loops (recursively)."""
        out: list[str] = []
        for dst in self.outputs[element_id]:
            if self.type_of(dst) == "loop":
                out.extend(d for d in self.consumers(dst) if d not in out)
            elif dst not in out:
                out.append(dst)
        return out

    def upstream_annotasks(self, element_id: str) -> list[str]:
        """Every annotation task the element depends on, in template order."""
        before = self.ancestors(element_id)
        return [i for i in self.ids if i in before and self.type_of(i) == "annotask"]


def _find_cycle(graph: PipeGraph, left: set[str]) -> list[str]:
    """One cycle among the elements ``left`` over after a topological sort."""
    start = next(i for i in graph.ids if i in left)
    path: list[str] = []
    seen: dict[str, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(i for i in graph.inputs[node] if i in left)
    cycle = path[seen[node] :]
    cycle.reverse()  # report it in data-flow order: input -> element
    return [*cycle, cycle[0]]


def check_graph(template: Any, where: str = "template") -> PipeGraph:
    """Check ids, inputs, cycles, loops and which element may feed which; return the graph."""
    seen: dict[str, int] = {}
    for i, el in enumerate(template.elements):
        if el.id in seen:
            raise InvalidInput(
                f"id {el.id!r} is used by elements[{seen[el.id]}] too",
                f"{where}: elements[{i}] field id",
            )
        seen[el.id] = i
    for el in template.elements:
        for j, src in enumerate(el.inputs):
            if src == el.id:
                raise InvalidInput(
                    "an element cannot be its own input", _at(where, el, f"inputs[{j}]")
                )
            if src not in seen:
                raise InvalidInput(
                    f"unknown element {src!r} (elements: {', '.join(seen)})",
                    _at(where, el, f"inputs[{j}]"),
                )
    graph = PipeGraph(template)
    left = set(graph.ids) - set(graph.order)
    if left:
        cycle = " -> ".join(_find_cycle(graph, left))
        raise InvalidInput(
            f"the inputs form a cycle {cycle}; repeat steps with a loop element's jump instead",
            f"{where}: element {_find_cycle(graph, left)[0]!r} field inputs",
        )
    for el in template.elements:
        _check_element(graph, el, where)
    _check_nesting(graph, where)
    return graph


def _at(where: str, el: Any, field: str) -> str:
    return f"{where}: element {el.id!r} field {field}"


def _check_element(graph: PipeGraph, el: Any, where: str) -> None:
    kinds = [graph.type_of(i) for i in el.inputs]
    if el.type == "datasource" and el.inputs:
        raise InvalidInput("a datasource takes no inputs", _at(where, el, "inputs"))
    if el.type == "annotask":
        for j, (src, kind) in enumerate(zip(el.inputs, kinds, strict=True)):
            if kind not in ("script", "loop"):
                raise InvalidInput(
                    f"an annotask is fed by scripts that request annotations, not by the {kind} "
                    f"{src!r}",
                    _at(where, el, f"inputs[{j}]"),
                )
        if not el.inputs:
            raise InvalidInput(
                "an annotask needs a script input that requests annotations",
                _at(where, el, "inputs"),
            )
    if el.type == "visual" and el.file is None and not any(k in ("script", "loop") for k in kinds):
        raise InvalidInput(
            "a visual element shows a file or what a script before it produced: give file "
            "or a script input",
            _at(where, el, "inputs"),
        )
    if (
        el.type == "export"
        and el.format is None
        and not any(k in ("script", "loop") for k in kinds)
    ):
        raise InvalidInput(
            "an export without a format collects files that scripts export: give format and "
            "destination, or a script input",
            _at(where, el, "format"),
        )
    if el.type == "loop":
        if not el.inputs:
            raise InvalidInput(
                "a loop needs an input (the end of its body)", _at(where, el, "inputs")
            )
        if el.jump not in graph.elements:
            raise InvalidInput(
                f"unknown element {el.jump!r} (elements: {', '.join(graph.ids)})",
                _at(where, el, "jump"),
            )
        if el.jump == el.id:
            raise InvalidInput("a loop cannot jump to itself", _at(where, el, "jump"))
        if el.id not in graph.descendants(el.jump):
            raise InvalidInput(
                f"the jump target {el.jump!r} must come before the loop (the loop is not "
                f"reachable from it through inputs)",
                _at(where, el, "jump"),
            )
        if graph.type_of(el.jump) == "datasource":
            raise InvalidInput(
                "a loop cannot jump to a datasource; jump to the script after it",
                _at(where, el, "jump"),
            )


def _check_nesting(graph: PipeGraph, where: str) -> None:
    """Two loop bodies are disjoint or one holds the other loop and its whole body."""
    loops = graph.loops
    for a_i, a in enumerate(loops):
        for b in loops[a_i + 1 :]:
            body_a, body_b = graph.bodies[a], graph.bodies[b]
            common = body_a & body_b
            if not common:
                continue
            inner_ok = (b in body_a and body_b <= body_a) or (a in body_b and body_a <= body_b)
            if not inner_ok:
                el = graph.elements[b]
                raise InvalidInput(
                    f"loops {a!r} and {b!r} overlap on {sorted(common)} without one lying inside "
                    "the other",
                    _at(where, el, "jump"),
                )

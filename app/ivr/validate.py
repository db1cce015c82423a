"""Whether a flow's nodes fit together, with each problem naming its node. Pure.

A flow that passes can run every call to an end:

- `start`, `give_up` and every target name a node (`give_up` one that ends at once);
- every node is reachable from `start`;
- from every node an ending (enqueue, callback, voicemail, transfer, hang-up) can be reached,
  so no loop is without an exit (a menu that retries and then falls to an ending is fine);
- no loop is made only of nodes that wait for nothing (say, language, branches, and a
  callback, which a caller with no number we can see passes through): the facts a branch
  reads do not change during a call, so a call that went round it once would go round for
  ever;
- every variable a branch reads is collected by some node.

A call that waits in loops that have exits (a menu whose option leads back to itself) is
still bounded by the flow's `max_inputs`: app/ivr/engine.py.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.ivr.flow import (
    ENDINGS,
    GIVE_UP_TO,
    WAITING,
    CallbackNode,
    CollectNode,
    Flow,
    InputBranch,
    Node,
    targets,
)

Graph = Mapping[str, Iterable[str]]


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong (`problem`) and where (`field`: `start`, `nodes.<id>`, `nodes.<id>.next`)."""

    field: str
    problem: str

    def as_field(self) -> dict[str, str]:
        """As app/core/errors.py's `fields` entries (a 422)."""
        return {"field": self.field, "problem": self.problem}


def problems(flow: Flow) -> list[Problem]:
    """Every problem of `flow`, nodes in the document's order; an empty list: it is valid."""
    found = _missing_targets(flow) + _bad_give_up(flow)
    if flow.start not in flow.nodes:
        return [Problem("start", f"names no node {flow.start!r}"), *found]
    graph = {node_id: _known(flow, targets(node).values()) for node_id, node in flow.nodes.items()}
    found += _unreachable(flow, graph)
    found += _never_ending(flow, graph)
    found += _loops_waiting_for_nothing(flow, graph)
    found += _variables_never_collected(flow)
    return sorted(found, key=lambda p: _order(flow, p))


def _known(flow: Flow, names: Iterable[str]) -> list[str]:
    return [name for name in names if name in flow.nodes]


def _order(flow: Flow, problem: Problem) -> int:
    """Problems of the flow's own fields first, then by the node's place in the document."""
    places = {f"nodes.{node_id}": index + 1 for index, node_id in enumerate(flow.nodes)}
    head = ".".join(problem.field.split(".")[:2])
    return places.get(head, 0)


def _missing_targets(flow: Flow) -> list[Problem]:
    return [
        Problem(f"nodes.{node_id}.{field}", f"names no node {target!r}")
        for node_id, node in flow.nodes.items()
        for field, target in targets(node).items()
        if target not in flow.nodes
    ]


def _bad_give_up(flow: Flow) -> list[Problem]:
    if flow.give_up is None:
        return []
    node = flow.nodes.get(flow.give_up)
    if node is None:
        return [Problem("give_up", f"names no node {flow.give_up!r}")]
    if not isinstance(node, GIVE_UP_TO):
        return [
            Problem(
                "give_up",
                f"{flow.give_up!r} is a {node.type} node; give up to an enqueue, transfer or "
                "hangup node, which ends the call at once",
            )
        ]
    return []


def reachable(graph: Graph, roots: Iterable[str]) -> set[str]:
    """Every node a walk from `roots` can visit (roots included)."""
    seen = set(roots)
    todo = deque(seen)
    while todo:
        for target in graph[todo.popleft()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _unreachable(flow: Flow, graph: Graph) -> list[Problem]:
    roots = [flow.start] + ([flow.give_up] if flow.give_up in flow.nodes else [])
    seen = reachable(graph, roots)
    return [
        Problem(f"nodes.{node_id}", f"is unreachable: no way from {flow.start!r} leads to it")
        for node_id in flow.nodes
        if node_id not in seen
    ]


def _never_ending(flow: Flow, graph: Graph) -> list[Problem]:
    """Nodes from which no ending can be reached: in a loop with no exit, or leading only
    into one."""
    backwards: dict[str, list[str]] = {node_id: [] for node_id in graph}
    for source, onward in graph.items():
        for target in onward:
            backwards[target].append(source)
    endings = [node_id for node_id, node in flow.nodes.items() if isinstance(node, ENDINGS)]
    can_end = reachable(backwards, endings)
    stuck = {node_id: graph[node_id] for node_id in graph if node_id not in can_end}
    found: list[Problem] = []
    for node_id in stuck:
        loop = cycle_through(stuck, node_id)
        beyond = "" if loop is None else f" or from the loop it is in ({' → '.join(loop)})"
        found.append(
            Problem(
                f"nodes.{node_id}",
                "can never end: no enqueue, callback, voicemail, transfer or hangup node can "
                f"be reached from it{beyond}",
            )
        )
    return found


def cycle_through(graph: Graph, node_id: str) -> list[str] | None:
    """The shortest way from `node_id` back to itself, both ends written (a → b → a), or None."""
    came_from: dict[str, str] = {}
    todo = deque([node_id])
    while todo:
        current = todo.popleft()
        for target in graph[current]:
            if target == node_id:
                way = [current]
                while way[-1] != node_id:
                    way.append(came_from[way[-1]])
                return [*reversed(way), node_id]
            if target in graph and target not in came_from:
                came_from[target] = current
                todo.append(target)
    return None


def _loops_waiting_for_nothing(flow: Flow, graph: Graph) -> list[Problem]:
    passing = {
        node_id: [t for t in found if not _waits(flow.nodes[t])]
        for node_id, found in graph.items()
        if not _waits(flow.nodes[node_id])
    }
    found = []
    for node_id in passing:
        loop = cycle_through(passing, node_id)
        if loop is not None:
            found.append(
                Problem(
                    f"nodes.{node_id}",
                    f"is in a loop that waits for no input ({' → '.join(loop)}): a call that "
                    "goes round it once goes round for ever; put a menu or an ending in it",
                )
            )
    return found


def _waits(node: Node) -> bool:
    """Whether a call stops at `node` every time. A callback node passes a caller whose number
    we cannot see straight on to `on_decline`, so it does not count."""
    return isinstance(node, WAITING + GIVE_UP_TO) and not isinstance(node, CallbackNode)


def _variables_never_collected(flow: Flow) -> list[Problem]:
    collected = {node.variable for node in flow.nodes.values() if isinstance(node, CollectNode)}
    return [
        Problem(
            f"nodes.{node_id}.variable",
            f"no collect node fills {node.variable!r}: this branch would always take its default",
        )
        for node_id, node in flow.nodes.items()
        if isinstance(node, InputBranch) and node.variable not in collected
    ]

"""The layout shows the architecture: no module of training/ or experiments/ imports one that imports it back."""

from __future__ import annotations

from import_graph import imports, modules


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports), or None."""
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = "open"
        for child in sorted(graph[name]):
            if state.get(child) == "open":
                return [*path[path.index(child) :], child] if child in path else [name, child]
            if child not in state and (found := visit(child, [*path, child])):
                return found
        state[name] = "done"
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name, [name])):
            return found
    return None


def test_training_and_the_lab_have_no_import_cycle() -> None:
    every = modules("training", "experiments")
    graph = {name: imports(path, every) - {name} for name, path in every.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None

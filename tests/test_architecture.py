"""The package reads as the pipeline: no import cycles between modules, and no module imports one in a layer above.

The import graph is built by grimp from the source (module-level, function-level and ``TYPE_CHECKING`` imports all
count). Registries bind names to implementations with "module:attr" strings (``rmbench.catalog``, the engine and
executor registries), which is how a lower layer reaches a plugin without importing it.
"""

from __future__ import annotations

import itertools

import grimp
import pytest

PACKAGE = "rmbench"

#: Top to bottom. A module belongs to the first layer naming it or a package above it (``rmbench`` itself: only the
#: package's ``__init__``); it may import its own layer and any layer below, never one above.
LAYERS: list[tuple[str, list[str]]] = [
    ("cli", ["rmbench.__main__", "rmbench.cli"]),
    ("runner", ["rmbench.runner"]),
    ("report", ["rmbench.report"]),
    ("analysis", ["rmbench.analysis"]),
    ("results", ["rmbench.results"]),
    ("protocols", ["rmbench.protocols", "rmbench.external"]),
    ("scoring", ["rmbench.scoring", "rmbench.executors", "rmbench.batching"]),
    ("engines", ["rmbench.engines", "rmbench.judges", "rmbench.devtools"]),
    ("requests", ["rmbench.requests", "rmbench.cache", "rmbench.modelspec"]),
    (
        "data",
        [
            "rmbench.suite",
            "rmbench.suite_schema",
            "rmbench.catalog",
            "rmbench.data",
            "rmbench.items",
            "rmbench.transforms",
            "rmbench.transforms_bon",
            "rmbench.transforms_steps",
            "rmbench.generators",
            "rmbench.perturbations",
        ],
    ),
    ("metrics", ["rmbench.metrics"]),
    ("core", ["rmbench", "rmbench.errors", "rmbench.registry", "rmbench.atomic", "rmbench.environment", "rmbench.settings"]),
]


def layer_of(module: str, layers: list[tuple[str, list[str]]] = LAYERS) -> int | None:
    """Index of ``module``'s layer (0 = top), None when no layer names it."""
    for index, (_, members) in enumerate(layers):
        for member in members:
            if module == member or (member != PACKAGE and module.startswith(member + ".")):
                return index
    return None


def _where(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    lines = sorted({d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)})
    return f"{importer} -> {imported} (line {', '.join(map(str, lines))})" if lines else f"{importer} -> {imported}"


def upward_imports(graph: grimp.ImportGraph, layers: list[tuple[str, list[str]]] = LAYERS) -> list[str]:
    """Every direct import from a lower layer into a higher one, as 'importer -> imported (line n)': with none of
    these, no chain of imports can go upward either."""
    found = []
    for importer in sorted(graph.modules):
        below = layer_of(importer, layers)
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            above = layer_of(imported, layers)
            if below is not None and above is not None and above < below:
                found.append(f"[{layers[below][0]} imports {layers[above][0]}] {_where(graph, importer, imported)}")
    return found


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """One cycle per strongly connected group of modules (Tarjan), each as the modules along it, first repeated."""
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(edges[node]):
                work.append((node, i + 1))
                nxt = edges[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return [_cycle_through(graph, group) for group in groups]


def _cycle_through(graph: grimp.ImportGraph, group: list[str]) -> list[str]:
    """The shortest cycle through the group's first module (breadth-first inside the group)."""
    start, members = group[0], set(group)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph.find_modules_directly_imported_by(node) & members):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return group


def _describe_cycle(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    return " ; ".join(_where(graph, a, b) for a, b in itertools.pairwise(cycle))


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, cache_dir=None)


def test_every_module_has_a_layer(graph: grimp.ImportGraph) -> None:
    missing = sorted(m for m in graph.modules if layer_of(m) is None)
    assert not missing, f"modules in no layer of LAYERS (add them where the pipeline puts them): {missing}"


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(_describe_cycle(graph, c) for c in cycles)


def test_no_layer_imports_one_above_it(graph: grimp.ImportGraph) -> None:
    upward = upward_imports(graph)
    assert not upward, "imports against the layer order (top to bottom: " + " > ".join(
        name for name, _ in LAYERS
    ) + "):\n" + "\n".join(upward)


def test_the_checks_name_a_planted_cycle_and_upward_import() -> None:
    """The checks catch what they claim to: a planted cycle and an upward import are named, chain and layers."""
    planted = grimp.ImportGraph()
    for module in ["rmbench", "rmbench.errors", "rmbench.metrics.stats", "rmbench.runner.loop", "rmbench.items"]:
        planted.add_module(module)
    planted.add_import(importer="rmbench.metrics.stats", imported="rmbench.runner.loop", line_number=7, line_contents="")
    planted.add_import(importer="rmbench.runner.loop", imported="rmbench.items", line_number=3, line_contents="")
    planted.add_import(importer="rmbench.items", imported="rmbench.metrics.stats", line_number=5, line_contents="")
    planted.add_import(importer="rmbench.errors", imported="rmbench", line_number=1, line_contents="")

    cycles = import_cycles(planted)
    assert cycles == [["rmbench.items", "rmbench.metrics.stats", "rmbench.runner.loop", "rmbench.items"]]
    assert "rmbench.metrics.stats -> rmbench.runner.loop (line 7)" in _describe_cycle(planted, cycles[0])
    assert upward_imports(planted) == ["[metrics imports runner] rmbench.metrics.stats -> rmbench.runner.loop (line 7)"]
    assert layer_of("rmbench.errors") == layer_of("rmbench") and layer_of("rmbench.nowhere") is None

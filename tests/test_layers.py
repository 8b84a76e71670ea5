"""The package reads like the data flows: each wing imports only from its own wing or the ones before it, no
module imports itself back through a cycle, and nothing but the package face, config and errors lives at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "zspace"

# The wings in flow order; "base" holds config, errors and io, which every wing may use.
LAYERS = [
    "base",
    "data",
    "models",
    "runs",
    "train",
    "latents",
    "analyses",
    "figures",
    "sections",
    "report",
    "studies",
    "explore",
    "cli",
    "face",
]
WING_OF = {"config": "base", "errors": "base", "io": "base", "__init__": "face", "__main__": "face"}
TOP_LEVEL_MODULES = {"__init__.py", "__main__.py", "config.py", "errors.py"}


def _module(path: Path) -> str:
    parts = ["zspace", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in sorted(SRC.rglob("*.py"))}


def _wing(module: str) -> str | None:
    """The wing of a zspace module name, or None for a name that is no module (``zspace.__version__``)."""
    if module == "zspace":
        return "face"
    top = module.split(".")[1]
    if top == "__version__":
        return None
    return WING_OF.get(top, top)


def _imports(path: Path) -> set[str]:
    """The zspace modules ``path`` imports, anywhere in it (function-local imports included), as the most specific
    module that exists: ``from zspace.io import atomic`` is ``zspace.io.atomic``, ``from zspace import x`` the face
    unless ``x`` is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "zspace":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if sub in MODULES:
                    found.add(sub)
                elif node.module == "zspace" and alias.name == "__version__":
                    continue
                else:
                    found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "zspace"}
    return found


GRAPH = {m: _imports(p) - {m} for m, p in MODULES.items()}


def test_every_wing_is_in_the_layer_order():
    wings = {_wing(m) for m in MODULES}
    assert wings <= set(LAYERS), sorted(wings - set(LAYERS))


def test_only_the_face_config_and_errors_live_at_the_top():
    loose = sorted(p.name for p in SRC.glob("*.py") if p.name not in TOP_LEVEL_MODULES)
    assert not loose, f"modules outside a wing: {loose}"


def test_no_upward_import():
    upward = []
    for module, deps in GRAPH.items():
        own = LAYERS.index(_wing(module))
        for dep in deps:
            wing = _wing(dep)
            if wing is not None and LAYERS.index(wing) > own:
                upward.append(f"{module} ({_wing(module)}) imports {dep} ({wing})")
    assert not upward, "\n".join(sorted(upward))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    assert _cycles(GRAPH) == []


def test_the_checks_catch_what_they_guard():
    """The cycle finder sees a cycle, and an import from a lower wing to a higher one is upward."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert LAYERS.index(_wing("zspace.models.base")) < LAYERS.index(_wing("zspace.latents.generate"))
    assert _wing("zspace.io.atomic") == "base"
    assert _wing("zspace.__version__") is None


@pytest.mark.parametrize("name", ["zspace.train.loop", "zspace.latents.embedding", "zspace.cli.main"])
def test_the_graph_sees_function_local_imports(name):
    assert GRAPH[name], f"{name} imports nothing?"

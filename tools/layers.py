"""The layers of smtp_tutor, read from its imports: a diagram for docs, a check for tests.

    python tools/layers.py            # the layer diagram (text), then any problem
    python tools/layers.py --mermaid  # the same as a Mermaid graph, for docs/architecture.md
    python tools/layers.py --check    # exit 1 on an import circle or an upward import
    python tools/layers.py --doc      # write the diagram into docs/architecture.md

Every `import smtp_tutor…` in every module counts, at module level or inside a function
(a lazy import is still a dependency), except those under `if TYPE_CHECKING:`, which
never run. A module's layer is given by its package (`LAYERS` below, lowest first): a
module may import its own layer and the ones below, never above, and no set of modules
may import each other in a circle.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "smtp_tutor"

#: Lowest first. A module belongs to the first entry whose prefix it starts with.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("support", ("smtp_tutor.paths", "smtp_tutor.data", "smtp_tutor.__init__")),
    ("core", ("smtp_tutor.core",)),
    ("client", ("smtp_tutor.client", "smtp_tutor.lexer")),
    (
        "services",
        ("smtp_tutor.replay", "smtp_tutor.diagram", "smtp_tutor.sandbox", "smtp_tutor.web"),
    ),
    ("console", ("smtp_tutor.console",)),
    ("cli", ("smtp_tutor.cli", "smtp_tutor.__main__")),
)


@dataclass
class Graph:
    modules: set[str] = field(default_factory=set)
    edges: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1 and parts[:-1] != ("smtp_tutor",):
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> int:
    for index, (_name, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return -1


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, here: str, is_package: bool) -> Iterable[tuple[list[str], str]]:
    """Per import statement: the names it may load as modules, and its fallback target."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield [alias.name], alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = here.split(".") if is_package else here.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            # `from pkg import mod` depends on pkg.mod, not on pkg's __init__ (which every
            # submodule's import runs anyway); `from mod import name` depends on mod.
            yield [f"{base}.{alias.name}" for alias in node.names], base
        stack.extend(ast.iter_child_nodes(node))


def build(root: Path = ROOT) -> Graph:
    graph = Graph()
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    names = {module_name(p, root) for p in files}
    graph.modules = names
    for path in files:
        here = module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for candidates, fallback in _imports(tree, here, path.name == "__init__.py"):
            targets = [c for c in candidates if c in names] or [fallback]
            for target in targets:
                if not target.startswith("smtp_tutor"):
                    continue
                while target not in names and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in names and target != here and target != "smtp_tutor":
                    graph.edges[here].add(target)
    return graph


def circles(graph: Graph) -> list[list[str]]:
    """Strongly connected sets of two or more modules (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph.modules):
        if v not in index:
            visit(v)
    return sorted(found)


def upward(graph: Graph) -> list[tuple[str, str]]:
    """Imports from a lower layer to a higher one (or from a module of no layer)."""
    bad = []
    for source, targets in sorted(graph.edges.items()):
        for target in sorted(targets):
            if layer_of(source) < layer_of(target) or layer_of(source) < 0:
                bad.append((source, target))
    return bad


def problems(graph: Graph) -> list[str]:
    out = [f"import circle: {' -> '.join(group)}" for group in circles(graph)]
    out += [f"upward import: {s} imports {t}" for s, t in upward(graph)]
    unlayered = sorted(m for m in graph.modules if layer_of(m) < 0)
    out += [f"module in no layer: {m}" for m in unlayered]
    return out


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def text_diagram(graph: Graph) -> str:
    lines = []
    for index in reversed(range(len(LAYERS))):
        name, _ = LAYERS[index]
        members = sorted({_package(m) for m in graph.modules if layer_of(m) == index})
        below = sorted(
            {LAYERS[layer_of(t)][0] for m in graph.modules if layer_of(m) == index
             for t in graph.edges.get(m, ()) if layer_of(t) < index}
        )  # fmt: skip
        lines.append(f"{name:>9}  {', '.join(m.removeprefix('smtp_tutor.') for m in members)}")
        if below:
            lines.append(f"{'':>9}    ↓ uses {', '.join(below)}")
    return "\n".join(lines)


def mermaid(graph: Graph) -> str:
    packages: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph.edges.items():
        for target in targets:
            a, b = _package(source), _package(target)
            if a != b:
                packages[a].add(b)
    out = ["graph TD"]
    for source in sorted(packages):
        for target in sorted(packages[source]):
            out.append(f"    {_id(source)}[{source}] --> {_id(target)}[{target}]")
    return "\n".join(out)


def _id(name: str) -> str:
    return name.replace(".", "_")


DOC = ROOT.parent / "docs" / "architecture.md"
_MARK = "<!-- layers: generated by `python tools/layers.py`; run it again after a move -->"


def with_diagram(doc: str, diagram: str) -> str:
    """`doc` with the fenced block after the marker replaced by `diagram`."""
    head, _, rest = doc.partition(_MARK)
    if not rest:
        raise ValueError(f"{DOC.name} has no layers marker")
    _, fence, after = rest.partition("```text\n")
    _, end, tail = after.partition("\n```")
    if not fence or not end:
        raise ValueError(f"{DOC.name}: no ```text block after the layers marker")
    return f"{head}{_MARK}{rest[: rest.index('```text')]}```text\n{diagram}\n```{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mermaid", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--doc", action="store_true")
    args = parser.parse_args(argv)
    graph = build()
    found = problems(graph)
    if args.doc:
        DOC.write_text(with_diagram(DOC.read_text(encoding="utf-8"), text_diagram(graph)))
    elif not args.check:
        print(mermaid(graph) if args.mermaid else text_diagram(graph))
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())

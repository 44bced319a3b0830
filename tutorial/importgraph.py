"""The import graph of a stage's application modules, read from its commit with ast.

Modules are the Python files of the application: the top-level ones and those of the
flack package, without the tests and the migrations. An edge A -> B means A imports B;
an import inside a function or method is "deferred": it runs later, so it cannot take
part in a circular import at load time.
"""
import ast
import dataclasses

SKIPPED_TOP = ("tests/", "migrations/", "docs/", "tutorial/", "bench/", "deploy/")


def module_name(path):
    """Return the dotted module name of a .py path, or None if it is not importable."""
    parts = path[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


def is_app_module(path):
    """Tell whether a path is one of the application's Python modules."""
    name = path.rsplit("/", 1)[-1]
    return (path.endswith(".py") and not path.startswith(SKIPPED_TOP)
            and not name.startswith("test") and name != "conftest.py"
            and module_name(path) is not None)


def imports(tree):
    """Yield (node, deferred) for every import statement, deferred when inside a def or class."""
    def walk(node, deferred):
        """Visit the children of node, noting whether we are inside a function or class."""
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, deferred
            functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            inner = deferred or isinstance(child, functions)
            yield from walk(child, inner)
    yield from walk(tree, False)


@dataclasses.dataclass
class ImportGraph:
    """Modules (name -> path) and edges ((importer, imported) -> deferred)."""

    paths: dict
    edges: dict

    @property
    def modules(self):
        """The module names."""
        return list(self.paths)

    @classmethod
    def at(cls, rev, git):
        """Read the graph of the commit rev with the given git function."""
        listed = git("ls-tree", "-r", "--name-only", rev).splitlines()
        files = [path for path in listed if is_app_module(path)]
        paths = {module_name(path): path for path in files}
        graph = cls(paths, {})
        for name, path in paths.items():
            try:
                tree = ast.parse(git("show", f"{rev}:{path}"))
            except SyntaxError:
                continue
            for node, deferred in imports(tree):
                for target in graph.targets(name, node):
                    if target != name:
                        key = (name, target)
                        graph.edges[key] = graph.edges.get(key, True) and deferred
        return graph

    def package_of(self, name):
        """Return the package a module's relative imports start from."""
        is_package = self.paths[name].endswith("__init__.py")
        return name if is_package else name.rpartition(".")[0]

    def known(self, dotted):
        """Return the longest prefix of a dotted name that is one of our modules, or None."""
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in self.paths:
                return candidate
        return None

    def targets(self, name, node):
        """Return our modules that an import statement in module name imports."""
        if isinstance(node, ast.Import):
            found = [self.known(alias.name) for alias in node.names]
            return [target for target in found if target]
        base = node.module or ""
        if node.level:
            package = self.package_of(name).split(".") if self.package_of(name) else []
            package = package[:len(package) - (node.level - 1)]
            base = ".".join(package + ([node.module] if node.module else []))
        found = []
        for alias in node.names:
            submodule = f"{base}.{alias.name}" if base else alias.name
            target = submodule if submodule in self.paths else self.known(base) if base else None
            if target:
                found.append(target)
        return found

    def shape(self):
        """Return what the picture shows, to tell whether two stages need different pictures."""
        return set(self.paths.items()), set(self.edges.items())

    def cycles(self):
        """Return the import cycles at load time: strongly connected groups of two or more."""
        loaded = {edge for edge, deferred in self.edges.items() if not deferred}
        return [group for group in strongly_connected(self.modules, loaded) if len(group) > 1]

    def cycle_edges(self):
        """Return the load-time edges that lie on a cycle."""
        inside = {}
        for i, group in enumerate(self.cycles()):
            inside.update({module: i for module in group})
        return {(a, b) for (a, b), deferred in self.edges.items()
                if not deferred and a in inside and inside[a] == inside.get(b)}


def strongly_connected(nodes, edges):
    """Return the strongly connected components of a graph (Tarjan), each as a list."""
    following = {node: sorted(b for a, b in edges if a == node) for node in nodes}
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        """Number node, visit what it reaches, and close its component if it is a root."""
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in following[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            groups.append(sorted(group))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return groups

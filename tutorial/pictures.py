"""Pictures drawn from a stage's code when the site is built, so that they cannot drift.

- the import graph of the application's modules, read with ast from each stage's commit,
  with import cycles in red and imports inside functions dashed; drawn at each stage
  whose graph differs from the stage before;
- the request path from the browser to the database, read from the Procfile,
  gunicorn.conf.py, deploy/nginx.conf and config.py; drawn when a stage changes them;
- the chain of database migrations, read from migrations/versions; drawn when a stage
  changes it.

Graphviz's dot lays the pictures out (Debian: apt-get install graphviz); the SVG goes
inline into the page.
"""
import ast
import html
import re
import shutil
import subprocess

import importgraph

FONT = "Helvetica,Arial,sans-serif"
NEW_FILL = "#d5f5dc"
CYCLE_COLOUR = "#cf222e"
REQUEST_PATH_FILES = ("Procfile", "gunicorn.conf.py", "deploy/nginx.conf", "flack/wsgi.py")
MIGRATIONS = "migrations/versions/"


class PictureError(Exception):
    """A picture could not be drawn, for instance because dot is missing."""


def quote(text):
    """Return text as a quoted dot string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped + '"'


def svg(dot_source):
    """Lay a graph out with dot and return the SVG element, without the XML prologue or ids."""
    if shutil.which("dot") is None:
        raise PictureError("the pictures need Graphviz's dot: apt-get install graphviz")
    result = subprocess.run(["dot", "-Tsvg"], input=dot_source, capture_output=True, text=True)
    if result.returncode != 0:
        raise PictureError(f"dot failed: {result.stderr.strip()}")
    out = result.stdout[result.stdout.index("<svg"):]
    out = re.sub(r"<!--.*?-->", "", out, flags=re.S)
    out = re.sub(r' id="[^"]*"', "", out)  # several pictures on one page must not share ids
    return "\n".join(line for line in out.splitlines() if line.strip())


def figure(dot_source, caption):
    """Return a figure holding the laid-out graph and its caption (caption is HTML)."""
    return (f'<figure class="flack-picture">{svg(dot_source)}'
            f"<figcaption>{caption}</figcaption></figure>")


def graph_header(name, direction="LR"):
    """Return the first lines of a dot graph with Flack's look."""
    return [f"digraph {name} {{", f"rankdir={direction}; bgcolor=white; pad=0.2;",
            f'node [fontname="{FONT}", fontsize=11, shape=box, style="rounded,filled", '
            'fillcolor="#f6f8fa", color="#57606a"];',
            f'edge [fontname="{FONT}", fontsize=9, color="#57606a"];']


# --- the import graph --------------------------------------------------------------

def import_graph_dot(graph, new_modules):
    """Return dot source for an import graph, packages as clusters, cycles in red."""
    lines = graph_header("imports")
    cycle_edges = graph.cycle_edges()
    by_folder = {}
    for module in sorted(graph.modules):
        folder = graph.paths[module].rpartition("/")[0]
        by_folder.setdefault(folder, []).append(module)
    for i, (folder, modules) in enumerate(sorted(by_folder.items())):
        if folder:
            lines.append(f"subgraph cluster_{i} {{ label={quote(folder + '/')}; "
                         f'fontname="{FONT}"; fontsize=10; color="#d0d7de"; style=rounded;')
        for module in modules:
            label = graph.paths[module].rpartition("/")[2]
            fill = f', fillcolor="{NEW_FILL}"' if module in new_modules else ""
            lines.append(f"{quote(module)} [label={quote(label)}{fill}];")
        if folder:
            lines.append("}")
    for (source, target), deferred in sorted(graph.edges.items()):
        style = []
        if (source, target) in cycle_edges:
            style += [f'color="{CYCLE_COLOUR}"', "penwidth=2.2"]
        if deferred:
            style.append("style=dashed")
        lines.append(f"{quote(source)} -> {quote(target)} [{', '.join(style)}];")
    lines.append("}")
    return "\n".join(lines)


def import_caption(graph, before):
    """Return the caption of an import graph: what the arrows mean, and the cycles."""
    text = ("Who imports whom among the application's modules at this commit, read "
            "from the code with <code>ast</code>. An arrow points from the importing module "
            "to the imported one; a dashed arrow is an import inside a function.")
    if before is not None:
        text += " Green modules are new in this stage."
    cycles = graph.cycles()
    if cycles:
        names = "; ".join(" → ".join(graph.paths[m] for m in cycle + cycle[:1]) for cycle in cycles)
        text += (' <strong class="flack-cycle">Red: a circular import</strong> '
                 f"({html.escape(names)}), "
                 "loaded at import time.")
    else:
        text += " There is no circular import: every module loads without waiting for another."
    return text


# --- the request path ----------------------------------------------------------------

def nginx_facts(conf):
    """Return the ports nginx listens on, its upstream servers and its static location."""
    ports = sorted(set(re.findall(r"^\s*listen\s+(?:\[::\]:)?(\d+)([^;]*);", conf, re.M)))
    upstream = re.findall(r"upstream\s+\w+\s*\{[^}]*?server\s+([^;\s]+)", conf, re.S)
    static = re.search(r"location\s+(/static/)\s*\{[^}]*?alias\s+([^;]+);", conf, re.S)
    return ports, upstream, static.groups() if static else None


def gunicorn_settings(source):
    """Return the simple top-level settings of gunicorn.conf.py (name -> value as text)."""
    settings = {}
    for node in ast.parse(source).body:
        simple = isinstance(node, ast.Assign) and len(node.targets) == 1
        if simple and isinstance(node.targets[0], ast.Name):
            settings[node.targets[0].id] = ast.unparse(node.value)
    return settings


def procfile(source):
    """Return the Procfile's processes: name -> command."""
    processes = {}
    for line in source.splitlines():
        name, sep, command = line.partition(":")
        if sep and not line.startswith("#"):
            processes[name.strip()] = command.strip()
    return processes


def database_default(config_source):
    """Return the default database URI of config.py: its string parts, joined by …"""
    for node in ast.walk(ast.parse(config_source)):
        names = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        if isinstance(node, ast.Assign) and "SQLALCHEMY_DATABASE_URI" in names:
            parts = [n.value for n in ast.walk(node.value)
                     if isinstance(n, ast.Constant) and isinstance(n.value, str)]
            return "…".join(parts)
    return "?"


def request_path_dot(show):
    """Return dot source for the path of a request, from the files of the stage."""
    ports, upstream, static = nginx_facts(show("deploy/nginx.conf"))
    settings = gunicorn_settings(show("gunicorn.conf.py"))
    web = procfile(show("Procfile")).get("web", "")
    app = next((word for word in web.split() if ":" in word), "the app")
    listen = ", ".join(port + (" (TLS)" if "ssl" in rest else "") for port, rest in ports)
    worker = settings.get("worker_class", "sync").strip("'\"")
    workers = settings.get("workers", "1")
    labels = {
        "nginx": f"nginx (deploy/nginx.conf)\nlistens on {listen}",
        "gunicorn": f"gunicorn (Procfile web:)\n{workers} {worker} worker(s)",
        "app": f"Flask app {app}\nflack/wsgi.py → create_app()",
        "db": f"database: DATABASE_URL\ndefault {database_default(show('config.py'))}",
    }
    lines = graph_header("request", "TB")
    lines += [
        'browser [label="browser", shape=ellipse];',
        f"nginx [label={quote(labels['nginx'])}];",
        f"gunicorn [label={quote(labels['gunicorn'])}];",
        f"app [label={quote(labels['app'])}];",
        f"db [label={quote(labels['db'])}, shape=cylinder];",
        'browser -> nginx [label="HTTPS"];',
        f"nginx -> gunicorn [label={quote('HTTP to ' + ', '.join(upstream))}];",
        'gunicorn -> app [label="WSGI"];',
        'app -> db [label="SQLAlchemy"];',
    ]
    if static:
        lines += [f"static [label={quote('static files ' + static[1].strip())}, shape=folder];",
                  f"nginx -> static [label={quote(static[0])}, style=dashed];"]
    lines.append("}")
    return "\n".join(lines)


# --- the migrations ---------------------------------------------------------------------

def migration_facts(source):
    """Return (revision, down_revision, message) of a migration script."""
    tree = ast.parse(source)
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    message = (ast.get_docstring(tree) or "").splitlines()[0:1]
    return values.get("revision"), values.get("down_revision"), message[0] if message else ""


def migrations_dot(scripts):
    """Return dot source for the chain of migrations, oldest at the top."""
    lines = graph_header("migrations", "TB")
    lines.append('base [label="empty database", shape=cylinder];')
    for revision, down, message in scripts:
        label = f"{revision}\n{message}"
        lines.append(f"{quote(revision)} [label={quote(label)}];")
        downs = down if isinstance(down, (tuple, list)) else [down]
        for parent in downs:
            lines.append(f"{quote(parent or 'base')} -> {quote(revision)} [label=\"upgrade\"];")
    lines.append("}")
    return "\n".join(lines)


# --- which pictures a stage gets ----------------------------------------------------------

def changed_paths(stage, git):
    """Return the paths the stage changes."""
    out = git("diff", "--name-only", "--no-renames", "-z", stage.base, stage.sha)
    return [path for path in out.split("\0") if path]


def for_stage(stage, all_stages, git):
    """Return the stage's pictures as HTML figures (a list, possibly empty)."""
    def show_at(rev):
        """Return a function that reads files at rev."""
        return lambda path: git("show", f"{rev}:{path}")

    figures = []
    index = [s.version for s in all_stages].index(stage.version)
    before = all_stages[index - 1] if index else None
    graph = importgraph.ImportGraph.at(stage.sha, git)
    previous = importgraph.ImportGraph.at(before.sha, git) if before else None
    if len(graph.modules) > 1 and (previous is None or graph.shape() != previous.shape()):
        new = set(graph.modules) - set(previous.modules) if previous else set()
        figures.append(figure(import_graph_dot(graph, new), import_caption(graph, previous)))
    changed = changed_paths(stage, git)
    files = set(git("ls-tree", "-r", "--name-only", stage.sha).splitlines())
    serving = REQUEST_PATH_FILES
    if all(path in files for path in serving) and any(path in changed for path in serving):
        figures.append(figure(request_path_dot(show_at(stage.sha)),
                              "The path of a request in production, read from "
                              + ", ".join(f"<code>{p}</code>" for p in REQUEST_PATH_FILES)
                              + " and <code>config.py</code> at this commit."))
    if any(path.startswith(MIGRATIONS) for path in changed):
        scripts = [migration_facts(git("show", f"{stage.sha}:{path}"))
                   for path in sorted(files)
                   if path.startswith(MIGRATIONS) and path.endswith(".py")]
        figures.append(figure(migrations_dot([s for s in scripts if s[0]]),
                              "The chain of migrations in <code>migrations/versions/</code> at "
                              "this commit: <code>python manage.py db upgrade</code> runs them "
                              "from the top."))
    return figures

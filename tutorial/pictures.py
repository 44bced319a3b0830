"""Pictures drawn from a stage's code when the site is built, so that they cannot drift.

- the import graph of the application's modules, read with ast from each stage's commit,
  with import cycles in red and imports inside functions dashed; drawn at each stage
  whose graph differs from the stage before;
- the request path from the browser to the database, Redis and the Celery processes,
  read from the files that serving.py reads (the Procfile, gunicorn.conf.py, flack/wsgi.py,
  deploy/'s nginx files, the Makefile's serve target and config.py); drawn at each stage
  where what they say changes;
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
import textwrap

import importgraph
import serving

FONT = "Helvetica,Arial,sans-serif"
NEW_FILL = "#d5f5dc"
CYCLE_COLOUR = "#cf222e"
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

WEBSOCKET_COLOUR = "#0969da"
# What Redis is for, by the config.py setting that makes it so; another shows its own name.
REDIS_ROLES = {"CELERY_BROKER_URL": "Celery broker", "REDIS_PREFIX": "shared keys",
               "SOCKETIO_MESSAGE_QUEUE": "Socket.IO message queue",
               "RATELIMIT_ENABLED": "rate limits"}
NOTE_WIDTH = 56  # characters in a line of the make serve note


def node(name, label, **attrs):
    """Return the dot line of a node."""
    return f"{name} [label={quote(label)}{''.join(f', {k}={v}' for k, v in attrs.items())}];"


def edge(source, target, label="", **attrs):
    """Return the dot line of an edge."""
    attrs = {"label": quote(label), **attrs} if label else attrs
    return f"{source} -> {target} [{', '.join(f'{k}={v}' for k, v in attrs.items())}];"


def port_text(listen):
    """Return how a port of nginx reads: 443 (TLS, http2), or 80 (301 to https)."""
    port, flags, redirect, _ = listen
    flags = ["TLS" if flag == "ssl" else flag for flag in flags]
    if redirect:
        flags.append(f"{redirect[0]} to {redirect[-1].partition(':')[0]}")
    return port + (f" ({', '.join(flags)})" if flags else "")


def nginx_label(found):
    """Return the nginx box's text: its files, ports, balancing and top-level settings."""
    runs = [f", Procfile {name}:" for name, command in found["processes"].items()
            if command.split()[:1] == ["nginx"]]
    lines = ["nginx (deploy/nginx.conf" + "".join(runs) + ")",
             "listens on " + ", ".join(port_text(item) for item in found["listens"])]
    for name, (servers, balance) in found["upstreams"].items():
        if len(servers) > 1 or balance != "round robin":
            lines.append(f"upstream {name}: {balance} over {len(servers)} servers")
    lines += [f"{directive} (nginx-main.conf)" for directive in found["nginx_main"]]
    return "\n".join(lines)


def web_servers(found):
    """Return the addresses nginx passes requests to: its upstream's servers."""
    targets = [target for _, kind, target in found["locations"] if kind != "static"]
    servers = []
    for target in dict.fromkeys(targets):
        servers += found["upstreams"].get(target, ([target], None))[0]
    return servers


def web_label(found, name, server):
    """Return a web process's text: gunicorn, its address, its workers."""
    settings = found["gunicorn"]
    worker = serving.literal(settings.get("worker_class", "'sync'"))
    workers = serving.literal(settings.get("workers", "1"))
    text = f"gunicorn (Procfile {name}:)\n{server}\n{workers} {worker} worker{'s' * (workers != 1)}"
    if "worker_connections" in settings:
        text += f",\n{settings['worker_connections']} connections"
    return text + (f", {settings['threads']} threads" if "threads" in settings else "")


def app_label(found, command, processes):
    """Return the app's text: what gunicorn loads, and what flack/wsgi.py runs at the start."""
    app = next((word for word in command.split() if ":" in word), "the app")
    each = " (in each process)" if processes > 1 else ""
    calls = found["startup"]
    return (f"Flask app {app}{each}\nflack/wsgi.py runs " + ",\n".join(calls)) if calls \
        else f"Flask app {app}{each}"


def front_lines(found):
    """Return the dot lines from the browser to the app: nginx, static files, web processes."""
    listens = found["listens"]
    websocket = [path for path, kind, _ in found["locations"] if kind == "websocket"]
    ws_style = {"color": f'"{WEBSOCKET_COLOUR}"', "fontcolor": f'"{WEBSOCKET_COLOUR}"'}
    lines = ['browser [label="browser", shape=ellipse];', node("nginx", nginx_label(found)),
             edge("browser", "nginx", "HTTPS" if any("ssl" in item[1] for item in listens)
                 else "HTTP")]
    lines += [edge("browser", "nginx", f"WebSocket\n{path}", **ws_style) for path in websocket]
    for path, kind, folder in found["locations"]:
        if kind == "static":
            lines += [node("static", f"static files\n{folder}", shape="folder"),
                      edge("nginx", "static", path, style="dashed")]
    name, command = next(((n, c) for n, c in found["processes"].items()
                          if c.split()[:1] == ["gunicorn"]), ("web", ""))
    servers = web_servers(found)
    for i, server in enumerate(servers):
        lines += [node(f"web{i}", web_label(found, name, server)),
                  edge("nginx", f"web{i}", "HTTP /"), edge(f"web{i}", "app", "WSGI")]
        lines += [edge("nginx", f"web{i}", path, **ws_style) for path in websocket]
    return lines + [node("app", app_label(found, command, len(servers)))]


def redis_roles(redis):
    """Return what Redis is for, one line a setting: Celery broker (CELERY_BROKER_URL)."""
    return "\n".join(f"{REDIS_ROLES.get(name, name)} ({name})"
                     for name in redis if name != "REDIS_URL")


def back_lines(found):
    """Return the dot lines behind the app: database, Redis, Celery and the other processes."""
    variable, default = found["database"]
    redis = found["redis"]
    lines = [node("db", f"database: {variable}\ndefault {default}", shape="cylinder"),
             edge("app", "db", "SQLAlchemy")]
    if redis:
        lines += [node("redis", "Redis" + "\nREDIS_URL" * ("REDIS_URL" in redis),
                       shape="cylinder"),
                  edge("app", "redis", redis_roles(redis), dir="both"),
                  "{rank=same; db; redis;}"]
    for name, command in found["processes"].items():
        role = serving.celery_role(command)
        if role:
            lines += celery_lines(name, command, role, redis)
        elif command.split()[:1] not in (["gunicorn"], ["nginx"]):
            lines += [node(name, f"{name} (Procfile)\n{command}"),
                      edge(name, "db", style="dashed")]
    return lines


def celery_lines(name, command, role, redis):
    """Return the dot lines of a Celery process: its box, its broker and its database."""
    broker = "redis" if any("BROKER" in setting for setting in redis) else "broker"
    label = f"Celery {role} (Procfile {name}:)\n-A {serving.celery_app(command)}"
    lines = [node(name, label)] + ([] if broker == "redis" else [node("broker", "broker")])
    if role == "worker":
        what = "tasks" + ("\nSocket.IO messages" if "SOCKETIO_MESSAGE_QUEUE" in redis else "")
        return lines + [edge(broker, name, what, dir="both"), edge(name, "db", "SQLAlchemy")]
    return lines + [edge(name, broker, "scheduled tasks" if role == "beat" else role)]


def local_nginx_lines(found, command):
    """Return where the nginx that a command writes with deploy/local_nginx.py listens."""
    if "deploy/local_nginx.py" not in command.split():
        return []
    lines = []
    for listen in found["local_listens"]:
        address = listen[3]
        for name, value in serving.options(command).items():
            address = address.replace(f"<{name}>", value)  # the template's {port}: --port
        lines.append(f"    nginx listens on {port_text((address,) + listen[1:])}")
    return lines


def serve_note(found):
    """Return the dot lines of a note on `make serve`: its commands and its variables."""
    exports, recipe = found["serve"]
    if not recipe:
        return []
    lines = ["make serve (Makefile), on one machine:"]
    for command in recipe:
        lines += textwrap.wrap(command, NOTE_WIDTH, subsequent_indent="    ",
                               break_on_hyphens=False)
        lines += local_nginx_lines(found, command)
    lines += [f"{name}={value}" for name, value in exports.items()]
    label = quote("\n".join(lines)).replace("\\n", "\\l")[:-1] + '\\l"'
    return [f"serve [label={label}, shape=note, fontsize=9];", edge("db", "serve", style="invis")]


def request_path_dot(read):
    """Return dot source for the path of a request, from the files of the stage."""
    found = serving.facts(read)
    lines = graph_header("request", "TB")
    lines += front_lines(found) + back_lines(found) + serve_note(found)
    lines.append("}")
    return "\n".join(lines)


def request_path_caption(read):
    """Return the request path's caption: the files it was read from, and what blue means."""
    files = ", ".join(f"<code>{path}</code>" for path in serving.FILES if read(path))
    text = f"The path of a request in production, read from {files} at this commit."
    if any(kind == "websocket" for _, kind, _ in serving.facts(read)["locations"]):
        text += ' <strong class="flack-websocket">Blue: WebSocket connections</strong>.'
    return text


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


def stage_reader(rev, files, git):
    """Return a function that reads a file at rev, '' for a file that is not there."""
    return lambda path: git("show", f"{rev}:{path}") if path in files else ""


def request_path_read(stage, git):
    """Return a reader of the stage's files, or None if it is not served as in production yet."""
    files = set(git("ls-tree", "-r", "--name-only", stage.sha).splitlines())
    return stage_reader(stage.sha, files, git) if set(serving.NEEDED) <= files else None


def request_path_counts(stage, git):
    """Return what counts for the request path at a stage (serving.counted), or None."""
    read = request_path_read(stage, git) if stage else None
    return serving.counted(read) if read else None


def for_stage(stage, all_stages, git):
    """Return the stage's pictures as HTML figures (a list, possibly empty)."""
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
    read = request_path_read(stage, git)
    if read and serving.counted(read) != request_path_counts(before, git):
        figures.append(figure(request_path_dot(read), request_path_caption(read)))
    if any(path.startswith(MIGRATIONS) for path in changed):
        scripts = [migration_facts(git("show", f"{stage.sha}:{path}"))
                   for path in sorted(files)
                   if path.startswith(MIGRATIONS) and path.endswith(".py")]
        figures.append(figure(migrations_dot([s for s in scripts if s[0]]),
                              "The chain of migrations in <code>migrations/versions/</code> at "
                              "this commit: <code>python manage.py db upgrade</code> runs them "
                              "from the top."))
    return figures

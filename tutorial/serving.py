"""What a stage's files say about how it is served in production: the request-path picture's facts.

Each reader takes the text of one file, as git shows it at the stage's commit, and returns
what the picture draws from it: the Procfile's processes, gunicorn's settings, what
flack/wsgi.py runs in each web process, nginx's ports, upstream servers and locations
(deploy/nginx.conf, deploy/nginx-main.conf, and the template of deploy/local_nginx.py),
the Makefile's serve target, and the database and Redis settings of config.py.

`counted()` returns the same facts as text, file by file, without comments or layout: the
picture is redrawn at a stage where that text changes, and the site's tests check that two
stages whose text differs get different pictures. Only the standard library.
"""
import ast
import io
import re
import tokenize

# The files that say how a stage is served; a missing one reads as empty.
FILES = ("Procfile", "gunicorn.conf.py", "flack/wsgi.py", "deploy/nginx.conf",
         "deploy/nginx-main.conf", "deploy/local_nginx.py", "Makefile", "config.py")
# Before all of these exist, a stage is not served as in production, and has no picture.
NEEDED = ("Procfile", "gunicorn.conf.py", "deploy/nginx.conf", "flack/wsgi.py")
# gunicorn's settings that shape the path: its workers (nginx's upstream says where it listens).
GUNICORN_SETTINGS = ("workers", "worker_class", "worker_connections", "threads")
# nginx's ways of choosing an upstream server other than its default, round robin.
BALANCING = ("ip_hash", "least_conn", "hash", "random")
# nginx directives that decide where a request goes.
ROUTING = ("listen", "server", "location", "alias", "root", "proxy_pass", "return") + BALANCING
NGINX_TOKEN = re.compile(r'"[^"]*"|[{};]|[^\s{};"]+')


def without_comments(text):
    """Return the lines of text without #-comments, blank lines or repeated spaces."""
    lines = (re.sub(r"(^|\s)#.*", "", line) for line in text.splitlines())
    return [" ".join(line.split()) for line in lines if line.strip()]


# --- Procfile ------------------------------------------------------------------------

def procfile(source):
    """Return the Procfile's processes: name -> command."""
    processes = {}
    for line in without_comments(source):
        name, sep, command = line.partition(":")
        if sep:
            processes[name.strip()] = command.strip()
    return processes


def celery_role(command):
    """Return what a Celery command runs (worker, beat, ...), or None for another program."""
    words = command.split()
    if not words or words[0] != "celery":
        return None
    options_with_values = {"-A", "--app", "-b", "--broker", "--workdir"}
    rest = iter(words[1:])
    for word in rest:
        if word in options_with_values:
            next(rest, None)
        elif not word.startswith("-"):
            return word
    return None


def celery_app(command):
    """Return the module a Celery command loads its app from (-A), or None."""
    match = re.search(r"(?:-A|--app)[ =](\S+)", command)
    return match[1] if match else None


# --- gunicorn.conf.py and flack/wsgi.py ----------------------------------------------

def gunicorn_settings(source):
    """Return the simple top-level settings of gunicorn.conf.py (name -> value as text)."""
    settings = {}
    for node in ast.parse(source).body:
        simple = isinstance(node, ast.Assign) and len(node.targets) == 1
        if simple and isinstance(node.targets[0], ast.Name):
            settings[node.targets[0].id] = ast.unparse(node.value)
    return settings


def literal(text, default="?"):
    """Return the value of a Python literal given as text, or default."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return default


def startup_calls(source):
    """Return the calls that a module makes when it is imported, such as create_app()."""
    calls = []
    for node in ast.parse(source).body:
        value = getattr(node, "value", None)
        if isinstance(value, ast.Call):
            calls.append(ast.unparse(value.func) + "()")
    return calls


# --- nginx ------------------------------------------------------------------------------

def nginx_tree(conf):
    """Parse nginx configuration into directives (words, children); a block has children."""
    root, stack, words = [], [], []
    for token in NGINX_TOKEN.findall("\n".join(without_comments(conf))):
        if token in (";", "{"):
            directive = (words, [])
            (stack[-1][1] if stack else root).append(directive)
            if token == "{":
                stack.append(directive)
            words = []
        elif token == "}":
            if words:  # a last directive without its semicolon, as a template's {servers}
                stack[-1][1].append((words, []))
                words = []
            stack.pop()
        else:
            words.append(token)
    return root


def blocks(tree, name):
    """Return the directives of a name anywhere in the tree, blocks inside blocks too."""
    found = []
    for words, children in tree:
        if words and words[0] == name:
            found.append((words, children))
        found += blocks(children, name)
    return found


def arguments(children, name):
    """Return the arguments of each directive of a name directly inside a block."""
    return [words[1:] for words, _ in children if words and words[0] == name]


def listens(tree):
    """Return nginx's ports, by port: (port, its flags such as ssl, its return, first address)."""
    ports = {}
    for _, children in blocks(tree, "server"):
        redirect = next((args for args in arguments(children, "return")), None)
        for args in arguments(children, "listen"):
            port = args[0].rpartition(":")[2]
            ports.setdefault(port, (port, tuple(args[1:]), redirect, args[0]))
    return sorted(ports.values(), key=lambda item: int(item[0]) if item[0].isdigit() else 0)


def upstreams(tree):
    """Return nginx's upstreams: name -> (servers, how it balances them)."""
    found = {}
    for words, children in blocks(tree, "upstream"):
        servers = [args[0] for args in arguments(children, "server")]
        balance = next((w[0] for w, _ in children if w and w[0] in BALANCING), "round robin")
        found[words[1]] = (servers, balance)
    return found


def locations(tree):
    """Return nginx's locations: (path, 'static' or 'websocket' or 'http', folder or upstream)."""
    found = []
    for words, children in blocks(tree, "location"):
        path = words[-1]
        folder = arguments(children, "alias") or arguments(children, "root")
        upgrade = [a for a in arguments(children, "proxy_set_header") if a[0] == "Upgrade"]
        target = arguments(children, "proxy_pass")
        if folder:
            found.append((path, "static", folder[0][0]))
        elif target:
            kind = "websocket" if upgrade else "http"
            found.append((path, kind, target[0][0].partition("://")[2] or target[0][0]))
    return found


def top_directives(tree):
    """Return the simple directives at the top of an nginx file, as text."""
    return [" ".join(words) for words, children in tree if words and not children]


def routing(tree, outer=""):
    """Return the directives that decide where a request goes, as lines of text."""
    lines = []
    for words, children in tree:
        if words and words[0] in ROUTING or words[:2] == ["proxy_set_header", "Upgrade"]:
            lines.append(outer + " ".join(words))
        lines += routing(children, outer + " ".join(words) + " > ")
    return lines


def local_template(source):
    """Return the nginx configuration that deploy/local_nginx.py writes, {name} left as <name>."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and "upstream" in node.value:
            text = re.sub(r"(?<!\{)\{(\w+)\}(?!\})", r"<\1>", node.value)
            return text.replace("{{", "{").replace("}}", "}")
    return ""


# --- Makefile ------------------------------------------------------------------------------

def make_variables(makefile):
    """Return the Makefile's variables and their values (NAME ?= value, :=, =)."""
    return dict(re.findall(r"^(\w+)\s*[?:]?=\s*(.*)$", makefile, re.M))


def expand(text, variables):
    """Return text with $(NAME) replaced by the variable's value, and $(abspath x) by x."""
    for _ in range(5):  # variables name variables, a few levels deep
        text = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m[1], m[0]), text)
    return re.sub(r"\$\(abspath ([^)]*)\)", r"\1", text)


def serve_target(makefile):
    """Return `make serve`'s exported variables (but PATH) and recipe lines, expanded."""
    variables = make_variables(makefile)
    exports = re.findall(r"^[\w ]*\bserve: export (\w+)\s*[?:]?=\s*(.*)$", makefile, re.M)
    exports = {name: expand(value, variables) for name, value in exports if name != "PATH"}
    variables.update(exports)
    match = re.search(r"^serve:(?! export).*\n((?:\t.*\n?)*)", makefile, re.M)
    recipe = (match[1] if match else "").replace("\\\n", " ")
    commands = [" ".join(expand(line, variables).split()) for line in recipe.splitlines()]
    return exports, [program_words(command) for command in commands if command]


def program_words(command):
    """Return a command with the folder of its program left out: .venv/bin/honcho -> honcho."""
    program, _, rest = command.partition(" ")
    return (program.rpartition("/")[2] + " " + rest).strip()


def options(command):
    """Return a command's --name value options: name (dashes as underscores) -> value."""
    return {name.replace("-", "_"): value
            for name, value in re.findall(r"--([\w-]+)[ =]([^\s-]\S*)", command)}


# --- config.py -----------------------------------------------------------------------------

def comment_lines(source):
    """Return the comments of Python source by line number."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {token.start[0]: token.string for token in tokens if token.type == tokenize.COMMENT}


def comments_about(node, comments, lines):
    """Return the comments on a statement's line and in the block of comments just above it."""
    found, line = [comments.get(node.lineno, "")], node.lineno - 1
    while line in comments and lines[line - 1].lstrip().startswith("#"):
        found.append(comments[line])
        line -= 1
    return " ".join(found)


def production_classes(tree):
    """Return config.py's production settings class and the classes it inherits from."""
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    name, chain = environments(tree).get("production", "ProductionConfig"), []
    while name in classes and name not in [c.name for c in chain]:
        chain.append(classes[name])
        bases = [base.id for base in classes[name].bases if isinstance(base, ast.Name)]
        name = bases[0] if bases else None
    return list(reversed(chain))


def environments(tree):
    """Return config.py's ENVIRONMENTS: environment name -> class name."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "ENVIRONMENTS":
            return {ast.literal_eval(k): ast.unparse(v)
                    for k, v in zip(node.value.keys, node.value.values, strict=True)}
    return {}


def production_settings(source):
    """Return the production settings of config.py: name -> (value as text, its comments)."""
    tree, comments, lines = ast.parse(source), comment_lines(source), source.splitlines()
    settings = {}
    for config_class in production_classes(tree):
        for node in config_class.body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) \
                    and node.targets[0].id.isupper():
                settings[node.targets[0].id] = (ast.unparse(node.value),
                                                comments_about(node, comments, lines))
    return settings


def environment_names(source):
    """Return config.py's ENVIRONMENT_NAMES: setting -> the variable that sets it."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "ENVIRONMENT_NAMES":
            return ast.literal_eval(node.value)
    return {}


def string_parts(value_text):
    """Return the strings of a Python expression, joined by … (a path joined in code)."""
    parts = [node.value for node in ast.walk(ast.parse(value_text, mode="eval"))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    return "…".join(parts) or value_text


def redis_settings(settings):
    """Return the settings whose name or comments speak of Redis: name -> value as text."""
    return {name: value for name, (value, comment) in settings.items()
            if "redis" in (name + comment).lower()}


# --- all of it -------------------------------------------------------------------------

def facts(read):
    """Return what the picture draws, from read(path), which gives '' for a missing file."""
    settings = production_settings(read("config.py")) if read("config.py") else {}
    database = settings.get("SQLALCHEMY_DATABASE_URI", ("?", ""))[0]
    nginx_conf = nginx_tree(read("deploy/nginx.conf"))
    return {
        "processes": procfile(read("Procfile")),
        "gunicorn": {name: value for name, value in gunicorn_settings(read("gunicorn.conf.py"))
                     .items() if name in GUNICORN_SETTINGS},
        "startup": startup_calls(read("flack/wsgi.py")),
        "listens": listens(nginx_conf),
        "upstreams": upstreams(nginx_conf),
        "locations": locations(nginx_conf),
        "nginx_main": top_directives(nginx_tree(read("deploy/nginx-main.conf"))),
        "local_listens": listens(nginx_tree(local_template(read("deploy/local_nginx.py")))),
        "serve": serve_target(read("Makefile")),
        "database": (environment_names(read("config.py")).get("SQLALCHEMY_DATABASE_URI",
                                                              "SQLALCHEMY_DATABASE_URI"),
                     string_parts(database)),
        "redis": redis_settings(settings),
    }


def counted(read):
    """Return, file by file, the text of what the picture draws from it: comments do not count."""
    found = facts(read)
    exports, recipe = found["serve"]
    return {
        "Procfile": [f"{name}: {command}" for name, command in found["processes"].items()],
        "gunicorn.conf.py": [f"{name} = {value}" for name, value in found["gunicorn"].items()],
        "flack/wsgi.py": found["startup"],
        "deploy/nginx.conf": routing(nginx_tree(read("deploy/nginx.conf"))),
        "deploy/nginx-main.conf": found["nginx_main"],
        "deploy/local_nginx.py": [" ".join(("listen", item[3]) + item[1])
                                  for item in found["local_listens"]],
        "Makefile": [f"export {name}={value}" for name, value in exports.items()] + recipe,
        "config.py": [f"{name} = {value}" for name, value in
                      [("database", found["database"])] + sorted(found["redis"].items())],
    }

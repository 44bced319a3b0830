"""Syntax colouring for the stage diffs, with the standard library only.

highlight_lines(path, text) returns one HTML line per line of text, with spans whose
classes are the short token names Pygments uses (k, s, c1, ...), so that the mkdocs
theme colours them as it colours its own code blocks. Python is read with tokenize;
other files get a light touch: comments, strings and, for JavaScript, keywords.
"""
import builtins
import html
import io
import keyword
import re
import tokenize

BRACKETS = set("()[]{},:;.")
JS_KEYWORDS = {
    "async", "await", "break", "case", "catch", "class", "const", "continue", "default",
    "delete", "do", "else", "export", "extends", "finally", "for", "function", "if",
    "import", "in", "instanceof", "let", "new", "of", "return", "static", "switch",
    "this", "throw", "try", "typeof", "var", "void", "while", "yield", "from",
}
JS_CONSTANTS = {"true", "false", "null", "undefined"}
STRING = r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
# For each kind of file: (regex, group name -> class); the first alternative that matches wins.
LINE_RULES = {
    "js": re.compile(rf"(?P<c1>//.*$|/\*.*?\*/)|(?P<s>{STRING}|`[^`]*`)"
                     r"|(?P<word>\b[A-Za-z_$][\w$]*\b)"
                     r"|(?P<m>\b\d+(?:\.\d+)?\b)"),
    "css": re.compile(rf"(?P<c1>/\*.*?\*/)|(?P<s>{STRING})|(?P<nt>^\s*[^{{}};:]+(?=\s*\{{))"
                      r"|(?P<nb>[\w-]+(?=\s*:))|(?P<m>#[0-9a-fA-F]{3,8}\b|\b\d+(?:\.\d+)?\w*)"),
    "html": re.compile(rf"(?P<c>&lt;!--.*?--&gt;)|(?P<s>{STRING})"
                       r"|(?P<nt>&lt;/?[\w-]+|/?&gt;)|(?P<cp>\{\{.*?\}\}|\{%.*?%\})"
                       r"|(?P<na>\b[\w-]+(?==))"),
    "hash": re.compile(rf"(?P<c1>(?:^|\s)#.*$)|(?P<s>{STRING})|(?P<nv>^\s*[\w.-]+(?=\s*[=:]))"
                       r"|(?P<k>^\s*\[[^\]]*\])"),
}
SUFFIX_RULES = {".js": "js", ".mjs": "js", ".css": "css", ".html": "html", ".svg": "html",
                ".xml": "html", ".toml": "hash", ".ini": "hash", ".cfg": "hash", ".conf": "hash",
                ".txt": "hash", ".yml": "hash", ".yaml": "hash", ".example": "hash",
                ".mako": "hash", ".sh": "hash"}
NAME_RULES = {"Makefile": "hash", "Procfile": "hash", ".gitignore": "hash", ".env.example": "hash"}


def highlight_lines(path, text):
    """Return the lines of text as HTML, coloured as the kind of file the path names."""
    if path.endswith(".py"):
        lines = python_lines(text)
        if lines is not None:
            return lines
    name = path.rsplit("/", 1)[-1]
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    rule = NAME_RULES.get(name) or SUFFIX_RULES.get(suffix)
    if rule is None:
        return [html.escape(line, quote=False) for line in text.splitlines()]
    return [colour_line(html.escape(line, quote=False), rule) for line in text.splitlines()]


def colour_line(escaped, rule):
    """Wrap the comments, strings and words of one escaped line in spans."""
    def replace(match):
        cls = match.lastgroup
        value = match.group()
        if cls == "word":
            cls = "k" if value in JS_KEYWORDS else "kc" if value in JS_CONSTANTS else None
            if cls is None:
                return value
        return f'<span class="{cls}">{value}</span>'
    return LINE_RULES[rule].sub(replace, escaped)


def python_class(token, previous):
    """Return the Pygments class of a Python token, or None to leave it plain."""
    kind, value = token.type, token.string
    name = tokenize.tok_name.get(kind, "")
    if kind == tokenize.COMMENT:
        return "c1"
    if kind == tokenize.STRING or name.startswith("FSTRING"):
        return "s"
    if kind == tokenize.NUMBER:
        return "m"
    if kind == tokenize.OP:
        return "p" if value in BRACKETS else "o"
    if kind != tokenize.NAME:
        return None
    if previous is not None and previous.string == "@" and previous.type == tokenize.OP:
        return "nd"
    if previous is not None and previous.string in ("def", "class"):
        return "nf" if previous.string == "def" else "nc"
    if value in ("True", "False", "None"):
        return "kc"
    if keyword.iskeyword(value):
        return "kn" if value in ("import", "from", "as") else "k"
    if value in ("self", "cls"):
        return "bp"
    if hasattr(builtins, value):
        return "nb"
    return None


def python_lines(text):
    """Colour Python source with tokenize; return None if it does not tokenize."""
    lines = text.splitlines()
    spans = [[] for _ in lines]  # per line: (start column, end column, class)
    previous = None
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            cls = python_class(token, previous)
            if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                previous = token
            if cls is None:
                continue
            (row, col), (end_row, end_col) = token.start, token.end
            for line_no in range(row, end_row + 1):
                if line_no - 1 >= len(lines):
                    break
                start = col if line_no == row else 0
                end = end_col if line_no == end_row else len(lines[line_no - 1])
                spans[line_no - 1].append((start, end, cls))
    except (tokenize.TokenError, SyntaxError):
        return None
    return [render_spans(line, line_spans) for line, line_spans in zip(lines, spans, strict=True)]


def render_spans(line, line_spans):
    """Return the line as HTML with the given (start, end, class) ranges wrapped in spans."""
    out = []
    at = 0
    for start, end, cls in sorted(line_spans):
        if start < at:  # overlapping ranges cannot come from tokenize; skip to be safe
            continue
        out.append(html.escape(line[at:start], quote=False))
        out.append(f'<span class="{cls}">{html.escape(line[start:end], quote=False)}</span>')
        at = end
    out.append(html.escape(line[at:], quote=False))
    return "".join(out)

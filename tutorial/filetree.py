"""Before-and-after file trees of a stage's application paths, as HTML.

Files the stage adds, changes, renames or deletes are marked; folders in which
nothing changed shrink to one line with their number of files.
"""
import html


def nest(paths):
    """Turn "a/b/c" paths into nested dicts: folders map names to dicts, files to None."""
    root = {}
    for path in paths:
        node = root
        *folders, name = path.split("/")
        for folder in folders:
            node = node.setdefault(folder, {})
        node[name] = None
    return root


def count_files(node):
    """Return how many files a nested folder holds."""
    return sum(1 if child is None else count_files(child) for child in node.values())


def touched(node, prefix, marks):
    """Tell whether any file under a folder has a mark."""
    return any(f"{prefix}{name}" in marks if child is None
               else touched(child, f"{prefix}{name}/", marks)
               for name, child in node.items())


def render(node, prefix, marks, indent=""):
    """Return the lines of a tree: files with their marks, unchanged folders folded."""
    lines = []
    names = sorted(node, key=lambda name: (node[name] is None, name))  # folders first
    for i, name in enumerate(names):
        last = i == len(names) - 1
        branch, below = ("└── ", "    ") if last else ("├── ", "│   ")
        child = node[name]
        if child is None:
            mark = marks.get(f"{prefix}{name}")
            label = html.escape(name)
            if mark:
                label = f'<span class="ft-{mark}">{label}</span>'
            lines.append(f"{indent}{branch}{label}")
        elif touched(child, f"{prefix}{name}/", marks):
            lines.append(f"{indent}{branch}{html.escape(name)}/")
            lines.extend(render(child, f"{prefix}{name}/", marks, indent + below))
        else:
            n = count_files(child)
            lines.append(f'{indent}{branch}{html.escape(name)}/ <span class="ft-folded">'
                         f"({n} file{'s' if n != 1 else ''})</span>")
    return lines


def marks_for(changes):
    """Return the marks of the before tree and of the after tree, from the stage's changes."""
    before, after = {}, {}
    for change in changes:
        if change.old_path != change.path:
            before[change.old_path] = "gone"
            after[change.path] = "new"
        else:
            before[change.path] = "changed"
            after[change.path] = "changed"
    return before, after


def trees_html(before_paths, after_paths, changes, before_title, after_title):
    """Return the two trees side by side; deleted and added files count as gone and new."""
    before_marks, after_marks = marks_for(changes)
    for path in set(before_paths) - set(after_paths):
        before_marks[path] = "gone"
    for path in set(after_paths) - set(before_paths):
        after_marks[path] = "new"
    columns = []
    for title, paths, marks in ((before_title, before_paths, before_marks),
                                (after_title, after_paths, after_marks)):
        body = "\n".join(["."] + render(nest(paths), "", marks)) if paths else "(nothing yet)"
        columns.append(f'<div class="ft-tree"><p class="ft-title">{html.escape(title)}</p>'
                       f"<pre>{body}</pre></div>")
    legend = ('<p class="ft-legend"><span class="ft-new">new or renamed here</span> '
              '<span class="ft-changed">changed</span> '
              '<span class="ft-gone">deleted or renamed away</span> '
              '<span class="ft-folded">(n files): a folder in which nothing changed</span></p>')
    return '<div class="flack-trees">' + "".join(columns) + "</div>" + legend

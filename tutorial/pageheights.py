"""Measure how tall each stage's page is, and how far down its change starts.

    python tutorial/pageheights.py [--site DIR] [--json FILE] [--width PX] [--sections]
        [vX.Y ...]

For each built page site/stages/vX.Y.html (after `make docs`), loaded from its file://
URL in a viewport 1280 px wide, it measures:

- height: document.documentElement.scrollHeight as the page loads, with each
  <details> as the page opens it (the diff's files are open, for instance);
- closed: the same with every <details> on the page closed;
- open: the same with every <details> open, so a fold that hides nothing is seen;
- the y of the "The change" heading (id "the-change"), in px and as a % of the
  height, as loaded and with every <details> closed;
- with --sections, the height of each of the article's h2 sections, every <details>
  closed: where a page's length comes from.

It prints a table on stderr and the numbers as JSON on stdout (--json FILE writes them to
FILE as well). Only the standard library and Playwright are used: run it with the
screenshots' venv (`make .venv-shots/.installed`, then .venv-shots/bin/python), which
drives Debian's /usr/bin/chromium (apt-get install chromium); it downloads no browser.
"""
import argparse
import json
import pathlib
import re
import sys

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CHANGE_IDS = ["the-change"]  # the id the heading gets from its text
ROOT = pathlib.Path(__file__).resolve().parent.parent

MEASURE_JS = """
(changeIds) => {
    const el = document.documentElement;
    const heading = changeIds.map((id) => document.getElementById(id)).find((e) => e)
        || [...document.querySelectorAll("h2")].find(
            (h) => h.textContent.trim().replace(/\\W+$/, "") === "The change");
    const y = heading ? Math.round(heading.getBoundingClientRect().top + window.scrollY) : null;
    return {height: el.scrollHeight, change_y: y, change_id: heading ? heading.id : null};
}
"""
SECTIONS_JS = """
() => {
    const hs = [...document.querySelectorAll("article h2")];
    const ys = hs.map((h) => Math.round(h.getBoundingClientRect().top + window.scrollY));
    ys.push(document.documentElement.scrollHeight);
    return hs.map((h, i) => [h.id, ys[i + 1] - ys[i]]);
}
"""
SET_DETAILS_JS = """
(open) => { for (const d of document.querySelectorAll("details")) d.open = open;
            return document.querySelectorAll("details").length; }
"""


def version_key(name):
    return tuple(int(n) for n in re.findall(r"\d+", name))


def percent(y, height):
    return None if y is None or not height else round(100 * y / height, 1)


def measure(page, path, sections=False):
    page.goto(path.as_uri(), wait_until="load")
    page.evaluate("document.fonts ? document.fonts.ready : null")
    loaded = page.evaluate(MEASURE_JS, CHANGE_IDS)
    details = page.evaluate(SET_DETAILS_JS, False)
    closed = page.evaluate(MEASURE_JS, CHANGE_IDS)
    heights = dict(page.evaluate(SECTIONS_JS)) if sections else None
    page.evaluate(SET_DETAILS_JS, True)
    opened = page.evaluate(MEASURE_JS, CHANGE_IDS)
    row = {
        "page": path.stem,
        "details": details,
        "height": loaded["height"],
        "change_y": loaded["change_y"],
        "change_pct": percent(loaded["change_y"], loaded["height"]),
        "closed_height": closed["height"],
        "closed_change_y": closed["change_y"],
        "closed_change_pct": percent(closed["change_y"], closed["height"]),
        "open_height": opened["height"],
        "change_id": loaded["change_id"],
    }
    if heights is not None:
        row["sections"] = heights
    return row


def table(rows):
    head = ("page", "height", "change y", "%", "closed height", "change y", "%",
            "all open", "details")
    lines = [head]
    for r in rows:
        lines.append((r["page"], r["height"], r["change_y"], r["change_pct"],
                      r["closed_height"], r["closed_change_y"], r["closed_change_pct"],
                      r["open_height"], r["details"]))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        out.append("  ".join(cells))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", help="vX.Y: these pages only")
    parser.add_argument("--site", type=pathlib.Path, default=ROOT / "site")
    parser.add_argument("--json", type=pathlib.Path, help="also write the JSON here")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--sections", action="store_true",
                        help="also measure each h2 section, every <details> closed")
    args = parser.parse_args()

    folder = args.site / "stages"
    if args.stages:
        paths = [folder / f"{s}.html" for s in args.stages]
    else:
        paths = sorted(folder.glob("v*.html"), key=lambda p: version_key(p.stem))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing or not paths:
        sys.exit(f"pageheights: no page {', '.join(missing) or 'in ' + str(folder)}:"
                 " run `make docs` first")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("pageheights: needs playwright: run it with .venv-shots/bin/python"
                 " (make .venv-shots/.installed)")
    if not pathlib.Path(CHROMIUM).exists():
        sys.exit(f"pageheights: {CHROMIUM} is missing: apt-get install chromium")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": args.width, "height": 1000})
            rows = [measure(page, path, args.sections) for path in paths]
        finally:
            browser.close()

    print(table(rows), file=sys.stderr)
    for row in rows if args.sections else []:
        print(f"\n{row['page']}, section heights (px, every <details> closed):", file=sys.stderr)
        for name, height in row["sections"].items():
            print(f"  {height:6d}  {name}", file=sys.stderr)
    text = json.dumps(rows, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""Charts as SVG, drawn by matplotlib (from the bench venv) with its bundled DejaVu Sans.

The text is written as paths (matplotlib's svg.fonttype "path"), so the SVG
needs no font on the reader's machine and nothing is downloaded.
"""
import textwrap
from dataclasses import dataclass, field

COLOURS = ["#3f51b5", "#ff9800", "#009688", "#9c27b0", "#795548"]


@dataclass
class Series:
    """One set of bars: a value per label, with an optional low-high range for each."""

    name: str
    values: list
    lows: list = field(default_factory=list)
    highs: list = field(default_factory=list)


@dataclass
class Panel:
    """One chart of bars side by side with the others, with its own y axis."""

    title: str
    ylabel: str
    series: list
    notes: list = field(default_factory=list)  # a text above each group, such as a ratio


def bar_chart(path, title, labels, panels, note="", panel_width=4.2):
    """Draw panels of grouped bars, one group per label, and save them as SVG at path."""
    import matplotlib
    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "path", "svg.hashsalt": "flack-bench",
                         "font.family": "DejaVu Sans", "font.size": 10})
    figure, axes = plt.subplots(1, len(panels), figsize=(panel_width * len(panels), 3.8),
                                squeeze=False)
    for axis, panel in zip(axes[0], panels, strict=True):
        draw_panel(axis, panel, labels)
    figure.suptitle(title, fontsize=12)
    if note:
        figure.text(0.5, 0.01, note, ha="center", fontsize=8, color="#555555")
    figure.tight_layout(rect=(0, 0.05 if note else 0, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(figure)


def draw_panel(axis, panel, labels):
    """Draw one panel's grouped bars, with their ranges as error bars and values on top."""
    width = 0.8 / len(panel.series)
    for index, series in enumerate(panel.series):
        positions = [x - 0.4 + width * (index + 0.5) for x in range(len(labels))]
        errors = None
        if series.lows and series.highs:
            errors = [[v - low for v, low in zip(series.values, series.lows, strict=True)],
                      [high - v for v, high in zip(series.values, series.highs, strict=True)]]
        bars = axis.bar(positions, series.values, width, yerr=errors, capsize=3,
                        label=series.name, color=COLOURS[index % len(COLOURS)])
        axis.bar_label(bars, labels=[short_number(v) for v in series.values], padding=2,
                       fontsize=8 if len(panel.series) < 4 else 6.5)
    for position, note in enumerate(panel.notes):
        top = max(max(s.highs[position] if s.highs else 0, s.values[position])
                  for s in panel.series)
        axis.annotate(note, (position, top), xytext=(0, 14), textcoords="offset points",
                      ha="center", fontsize=9, fontweight="bold")
    axis.set_title(panel.title, fontsize=10)
    axis.set_ylabel(panel.ylabel)
    axis.set_xticks(range(len(labels)), [textwrap.fill(label, 12) for label in labels])
    axis.margins(y=0.3 if panel.notes else 0.15)
    axis.spines[["top", "right"]].set_visible(False)
    if len(panel.series) > 1:
        axis.legend(frameon=False, fontsize=8)


def short_number(value):
    """Format a bar's value: whole above 100, three significant digits below."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"

"""The report pictures: trend lines, bars and pies as inline SVG, drawn by matplotlib.

Why matplotlib's SVG backend: it is the most widely kept plotting library in Python, it draws on
the server (the page needs no JavaScript library and no CDN, so it works on a closed call-centre
network and prints as it shows), and its SVG keeps text as text (`svg.fonttype: none`), so the
Chinese labels stay sharp, searchable and copyable.  Labels name the WenQuanYi Zen Hei font
(`scripts/system-packages` installs fonts-wqy-zenhei) before the browser's own CJK fonts.

Each series carries an id (`gid`) such as `series-offered-general`, so a page, a test or a
style sheet can find it.  matplotlib is not thread-safe: one chart is drawn at a time.
"""
from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

matplotlib.rcParams.update({
    "svg.fonttype": "none",          # text stays <text>, drawn by the browser's fonts
    "font.family": "sans-serif",
    "font.sans-serif": ["WenQuanYi Zen Hei", "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC",
                        "DejaVu Sans"],
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 9,
})
# WenQuanYi Zen Hei has only a medium weight; matplotlib would warn on every chart that it uses it.
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
_drawing = threading.Lock()
COLOURS = ["#1f6feb", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#c62828", "#5d4037", "#546e7a"]


@dataclass(frozen=True)
class Series:
    """One line or set of bars: its id (for `gid`), its label, and a value per x (None: no value)."""
    key: str
    label: str
    values: list[float | None]


def svg(figure: Figure) -> str:
    """The figure as an <svg> element to put inside a page (no XML prolog, no fixed size)."""
    out = io.StringIO()
    figure.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg"):]


def trend(xs: list[str], upper: list[Series], lower: list[Series], upper_title: str, lower_title: str,
          upper_target: float | None = None, percent: bool = True) -> str:
    """Two panels over the same intervals: e.g. service level per queue above, offered calls below."""
    with _drawing:
        figure = Figure(figsize=(9, 4.6))
        top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
        positions = list(range(len(xs)))
        for axes, group, title in ((top, upper, upper_title), (bottom, lower, lower_title)):
            for n, series in enumerate(group):
                points = [(x, v) for x, v in zip(positions, series.values) if v is not None]
                line, = axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3,
                                  color=COLOURS[n % len(COLOURS)], label=series.label)
                line.set_gid(f"series-{series.key}")
            axes.set_title(title, loc="left")
            axes.grid(axis="y", color="#e4e7eb")
            if group:
                axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        if upper_target is not None:
            top.axhline(upper_target, color="#c62828", linestyle="--", linewidth=1).set_gid("target")
        if percent:
            top.set_ylim(0, 105)
            top.yaxis.set_major_formatter(PercentFormatter())
        else:
            top.set_ylim(bottom=0)
            top.yaxis.get_major_locator().set_params(integer=True)
        bottom.set_ylim(bottom=0)
        bottom.yaxis.get_major_locator().set_params(integer=True)
        _label_x(bottom, xs)
        return svg(figure)


def bars(categories: list[tuple[str, str]], groups: list[Series], title: str) -> str:
    """Grouped bars: for each (key, label) category (a queue) one bar per series (answered,
    abandoned); each bar's id is `series-<series>-<category>`."""
    with _drawing:
        figure = Figure(figsize=(6, 3.2))
        axes = figure.subplots()
        width = 0.8 / max(1, len(groups))
        for n, series in enumerate(groups):
            xs = [i + (n - (len(groups) - 1) / 2) * width for i in range(len(categories))]
            drawn = axes.bar(xs, [v or 0 for v in series.values], width, label=series.label,
                             color=COLOURS[n % len(COLOURS)])
            for (key, _label), bar in zip(categories, drawn.patches):
                bar.set_gid(f"series-{series.key}-{key}")
            axes.bar_label(drawn, fmt="%d", fontsize=8)
        axes.set_xticks(range(len(categories)), [label for _key, label in categories])
        axes.yaxis.get_major_locator().set_params(integer=True)
        axes.set_title(title, loc="left")
        axes.legend(frameon=False)
        return svg(figure)


def pie(slices: list[tuple[str, str, float]], title: str) -> str:
    """A pie of (key, label, amount); empty slices are left out."""
    shown = [s for s in slices if s[2] > 0]
    with _drawing:
        figure = Figure(figsize=(4.6, 3.2))
        axes = figure.subplots()
        wedges, _texts, _numbers = axes.pie([s[2] for s in shown], labels=[s[1] for s in shown],
                                            autopct="%1.1f%%", startangle=90, counterclock=False,
                                            colors=COLOURS[:len(shown)], textprops={"fontsize": 8})
        for wedge, (key, _label, _amount) in zip(wedges, shown):
            wedge.set_gid(f"slice-{key}")
        axes.set_title(title, loc="left")
        axes.axis("equal")
        return svg(figure)


def _label_x(axes, xs: list[str]) -> None:
    """Interval labels, thinned to about a dozen so they stay readable."""
    step = max(1, len(xs) // 12)
    axes.set_xticks(range(0, len(xs), step), xs[::step], rotation=30, ha="right")


def heatmap(rows: list[tuple[str, str]], columns: list[tuple[str, str]], values: list[list[float | None]],
            title: str, low: float = 0.0, high: float = 100.0) -> str:
    """A grid of (key, label) rows by (key, label) columns, each cell coloured by its value from
    red (`low`) to green (`high`) and labelled with it; an empty cell (None) stays blank.  Each cell's
    id is `cell-<row>-<column>`: e.g. the score share of a criterion (row) per agent (column)."""
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.patches import Rectangle

    scale = LinearSegmentedColormap.from_list("score", ["#c62828", "#f9a825", "#2e7d32"])
    with _drawing:
        figure = Figure(figsize=(1.6 + 1.1 * max(1, len(columns)), 0.8 + 0.28 * max(1, len(rows))))
        axes = figure.subplots()
        for r, ((row_key, _label), cells) in enumerate(zip(rows, values)):
            for c, ((column_key, _name), value) in enumerate(zip(columns, cells)):
                if value is None:
                    continue
                share = min(1.0, max(0.0, (value - low) / (high - low) if high > low else 0.0))
                cell = axes.add_patch(Rectangle((c, r), 1, 1, color=scale(share), alpha=0.85, linewidth=0))
                cell.set_gid(f"cell-{row_key}-{column_key}")
                axes.text(c + 0.5, r + 0.5, f"{value:.0f}", ha="center", va="center", fontsize=8, color="#fff")
        axes.set_xlim(0, max(1, len(columns)))
        axes.set_ylim(max(1, len(rows)), 0)
        axes.set_xticks([c + 0.5 for c in range(len(columns))], [name for _key, name in columns])
        axes.set_yticks([r + 0.5 for r in range(len(rows))], [label for _key, label in rows])
        axes.xaxis.tick_top()
        axes.tick_params(length=0)
        for side in axes.spines.values():
            side.set_visible(False)
        axes.set_title(title, loc="left", pad=18)
        return svg(figure)

"""Render the benchmark's figures: text tables, targets, reStructuredText, JSON and a plot.

``bench/run.py`` measures and hands its figures here. The figures it wrote
with ``--json`` can be rendered again without measuring::

    python bench/report.py bench.json --rst figures.rst --plot docs/_static
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPOSITORY not in sys.path:
    sys.path.insert(0, REPOSITORY)

from bench.operations import OPERATIONS, OPERATIONS_BY_SLUG  # noqa: E402
from bench.settings import DATABASES  # noqa: E402


def note(message: str) -> None:
    """Print a progress line to stderr."""
    print(message, file=sys.stderr, flush=True)


SYSTEM_TITLES = {
    "minimal": "minimal",
    "floor": "floor",
    "keyval": "KeyVal",
    "keyval_portable": "KeyVal portable",
    "keyval_mysql_class": "KeyVal MySQL class",
    "orm": "ORM",
    "database_cache": "DatabaseCache",
    "diskcache": "diskcache",
    "redis": "redis-py",
}

#: Systems that are KeyVal with another operations class than the database's own.
VARIANT_SLUGS = frozenset({"keyval_portable", "keyval_mysql_class"})


#: What the cells of a table say.
TABLE_LEGEND = (
    "median µs per operation; the floor's ratio to the minimal statement, "
    "every other system's ratio to the floor (KeyVal with another operations "
    "class: its ratio to KeyVal)"
)


def cell_text(system: str, figures: dict[str, float]) -> str:
    """Return a table cell: the median, and its ratio to the floor below it."""
    if system == "minimal":
        return f"{figures['median_us']:.1f}"
    ratio = figures.get("ratio_to_minimal" if system == "floor" else "ratio_to_floor", math.nan)
    if ratio != ratio:  # NaN: no minimal statement for this operation
        return f"{figures['median_us']:.1f}"
    return f"{figures['median_us']:.1f} ({ratio:.2f}x)"


def format_table(title: str, summary: dict[str, dict[str, dict[str, float]]]) -> str:
    """Return the table of one database: median µs per operation (ratio to the floor)."""
    systems = [slug for slug in SYSTEM_TITLES if any(slug in row for row in summary.values())]
    header = ["operation"] + [SYSTEM_TITLES[slug] for slug in systems]
    rows = [header]
    for operation in OPERATIONS:
        row = [operation.label]
        for slug in systems:
            figures = summary.get(operation.slug, {}).get(slug)
            if figures is None:
                row.append("-")
            elif slug in VARIANT_SLUGS:
                # Another operations class: its ratio to the database's own class.
                own = summary.get(operation.slug, {}).get("keyval")
                ratio = figures["median_us"] / own["median_us"] if own else float("nan")
                row.append(f"{figures['median_us']:.1f} ({ratio:.2f}x KeyVal)")
            else:
                row.append(cell_text(slug, figures))
        rows.append(row)
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = [title, TABLE_LEGEND]
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def check_targets(
    results: dict[str, dict[str, Any]], growth: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Return the targets, each with the measured figure and whether it was met.

    The project's goals for each operation against its floor and against
    ``DatabaseCache`` and Redis, listed in ``bench/README.rst``.
    """
    targets: list[dict[str, Any]] = []

    def add(
        database: str, what: str, measured: float, limit: float, passed: bool, text: str
    ) -> None:
        targets.append(
            {
                "database": database,
                "target": what,
                "measured": measured,
                "limit": limit,
                "passed": bool(passed),
                "text": text,
            }
        )

    for alias, result in results.items():
        summary = result["summary"]
        title = DATABASES[alias].name

        def median(slug: str, system: str, summary: Any = summary) -> float | None:
            figures = summary.get(slug, {}).get(system)
            return None if figures is None else figures["median_us"]

        for slugs, limit in (
            (("get_hit", "get_miss", "exists_hit", "exists_miss"), 1.25),
            (("set_new", "set_overwrite", "add", "delete", "pop", "incr"), 1.5),
        ):
            for slug in slugs:
                ratio = summary[slug]["keyval"]["ratio_to_floor"]
                label = OPERATIONS_BY_SLUG[slug].label
                add(
                    alias,
                    f"{slug} <= {limit}x floor",
                    ratio,
                    limit,
                    ratio <= limit,
                    f"{label} on {title}: {ratio:.2f}x the floor (target <= {limit}x)",
                )
        for slugs, limit in (
            (("get_hit", "get_miss"), 1.05),
            (("set_new", "set_overwrite", "add", "delete"), 1.25),
        ):
            for slug in slugs:
                ratio = summary[slug].get("keyval", {}).get("ratio_to_minimal", float("nan"))
                if ratio != ratio:  # measured before the minimal statement existed
                    continue
                label = OPERATIONS_BY_SLUG[slug].label
                add(
                    alias,
                    f"{slug} <= {limit}x minimal",
                    ratio,
                    limit,
                    ratio <= limit,
                    f"{label} on {title}: {ratio:.2f}x the minimal statement (target <= {limit}x)",
                )
        if DATABASES[alias].vendor in ("postgresql", "mysql"):
            for slug in ("set_new", "set_overwrite"):
                cache, keyval = median(slug, "database_cache"), median(slug, "keyval")
                if cache and keyval:
                    speedup = cache / keyval
                    add(
                        alias,
                        f"{slug} >= 2x faster than DatabaseCache",
                        speedup,
                        2.0,
                        speedup >= 2,
                        f"{OPERATIONS_BY_SLUG[slug].label} on {title}: {speedup:.2f}x faster than "
                        f"DatabaseCache.set (target >= 2x)",
                    )
        for slug in ("get_hit", "get_miss"):
            cache, keyval = median(slug, "database_cache"), median(slug, "keyval")
            if cache and keyval:
                add(
                    alias,
                    f"{slug} faster than DatabaseCache",
                    cache / keyval,
                    1.0,
                    keyval < cache,
                    f"{OPERATIONS_BY_SLUG[slug].label} on {title}: {keyval:.1f} µs against "
                    f"DatabaseCache.get {cache:.1f} µs ({cache / keyval:.2f}x faster; target > 1x)",
                )
        for many, single in (("get_many", "get_hit"), ("set_many", "set_overwrite")):
            many_us, single_us = median(many, "keyval"), median(single, "keyval")
            if many_us and single_us:
                share = many_us / 100 / single_us
                add(
                    alias,
                    f"{many} per key <= 0.1x {single}",
                    share,
                    0.1,
                    share <= 0.1,
                    f"{many} of 100 keys on {title}: {many_us / 100:.2f} µs a key, {share:.3f}x "
                    f"{OPERATIONS_BY_SLUG[single].label} (target <= 0.1x)",
                )
        if alias == "sqlite-wal":
            redis_us, keyval = median("get_hit", "redis"), median("get_hit", "keyval")
            if redis_us and keyval:
                add(
                    alias,
                    "get faster than redis-py GET",
                    redis_us / keyval,
                    1.0,
                    keyval < redis_us,
                    f"get (hit) on {title}: {keyval:.1f} µs against redis-py GET {redis_us:.1f} µs "
                    "(target: faster)",
                )
    for alias, figures in growth.items():
        from bench.growth import growth_targets

        targets.extend(growth_targets(alias, figures))
    return targets


def list_table(rows: list[list[str]], widths: str = "auto") -> list[str]:
    """Return the lines of a reStructuredText list-table of ``rows`` (the first is the header)."""
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in rows:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}" for cell in row[1:])
    return lines + [""]


def format_rst(figures: dict[str, Any]) -> str:
    """Return the results as reStructuredText, for the documentation's Performance page."""
    machine = figures["machine"]
    lscpu = [
        line
        for line in machine["lscpu"].splitlines()
        if not line.startswith(("Flags", "Vulnerability", "NUMA", "On-line", "BogoMIPS"))
    ]
    title = "The machine"
    lines: list[str] = [title, "~" * len(title), "", "``lscpu``::", ""]
    lines += [f"    {line}" for line in lscpu] + ["", "``uname -a``::", ""]
    lines += [f"    {machine['uname']}", ""]
    lines += [
        f"* Python {machine['python']}, Django {machine['django']}, "
        + ", ".join(f"{name} {version}" for name, version in machine["packages"].items()),
        *(f"* ``{alias}``: {server}" for alias, server in machine["databases"].items()),
    ]
    if "redis_server" in machine:
        lines.append(f"* {machine['redis_server']}")
    lines += [
        f"* Load average (1, 5, 15 minutes) at the start: {machine['load_average']}; "
        f"at the end: {machine.get('load_average_at_end', '?')}",
        f"* Timing a call that does nothing: {figures['settings']['timer_overhead_us']:.2f} µs "
        "(included in every figure)",
        "",
    ]
    for result in figures["results"].values():
        summary = result["summary"]
        title = result["title"]
        lines += [title, "~" * len(title), "", f"{result['server']}.", ""]
        systems = [slug for slug in SYSTEM_TITLES if any(slug in row for row in summary.values())]
        rows = [["operation"] + [SYSTEM_TITLES[slug] for slug in systems]]
        for operation in OPERATIONS:
            row = [operation.label]
            for slug in systems:
                cell = summary.get(operation.slug, {}).get(slug)
                if cell is None:
                    row.append("n/a")
                else:
                    row.append(cell_text(slug, cell))
            rows.append(row)
        lines += list_table(rows)
    if figures["growth"]:
        title = "Growth"
        lines += [title, "~" * len(title), ""]
        rows = [
            [
                "database",
                "get at 1,000 pairs (µs)",
                "get at size (µs)",
                "keys(): time, peak memory",
                "flush(): time, statements",
                "cull(): time, statements",
            ]
        ]
        for growth in figures["growth"].values():
            small, large = growth["get_small"]["keyval"], growth["get_large"]["keyval"]
            small_floor = growth["get_small"]["floor"]["median_us"]
            flush, cull = growth["flush"], growth["cull"]
            rows.append(
                [
                    f"{growth['name']}, {growth['size']:,} pairs",
                    f"{small['median_us']:.1f} (floor {small_floor:.1f})",
                    f"{large['median_us']:.1f} ({large['median_us'] / small['median_us']:.2f}x; "
                    f"floor {growth['get_large']['floor']['median_us']:.1f})",
                    f"{growth['keys_seconds']:.1f} s, +{growth['keys_peak_mb']:.1f} MB",
                    f"{flush['seconds']:.2f} s, {flush['statements']}, +{flush['peak_mb']:.2f} MB",
                    f"{cull['seconds']:.2f} s, {cull['statements']:,}, +{cull['peak_mb']:.2f} MB",
                ]
            )
        lines += list_table(rows)
    if figures.get("targets"):
        title = "Targets"
        lines += [title, "~" * len(title), ""]
        for target in figures["targets"]:
            lines.append(f"* **{'PASS' if target['passed'] else 'FAIL'}** {target['text']}")
        lines.append("")
    return "\n".join(lines)


#: Colour of each system's bars, the same in every chart.
COLOURS = {
    "minimal": "#718096",
    "keyval": "#2b6cb0",
    "orm": "#9f7aea",
    "database_cache": "#dd6b20",
    "diskcache": "#38a169",
    "redis": "#c53030",
}
#: The chart's size in inches and its resolution: 7.36 in at 100 dpi is the
#: width of the documentation's column, so labels are read at their size.
CHART_WIDTH = 7.36
CHART_DPI = 150


def plot_path(directory: str, alias: str) -> str:
    """Return where the chart of database ``alias`` goes in ``directory``."""
    return os.path.join(directory, f"bench-{alias}.png")


def draw_plot(result: dict[str, Any], path: str) -> None:
    """Draw one database's chart: each system's time per operation over the floor's.

    Horizontal bars, one group per operation, on a logarithmic scale with
    the floor at 1x; the legend sits below the chart, outside the bars.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    summary = result["summary"]
    systems = [slug for slug in COLOURS if any(slug in summary[op.slug] for op in OPERATIONS)]
    height = 0.8 / len(systems)
    figure, axis = plt.subplots(
        figsize=(CHART_WIDTH, 0.42 * len(OPERATIONS) + 1.6), layout="constrained"
    )
    for index, slug in enumerate(systems):
        positions, ratios = [], []
        for position, operation in enumerate(OPERATIONS):
            figures = summary[operation.slug].get(slug)
            # NaN: no minimal statement for this operation.
            if figures and figures["ratio_to_floor"] == figures["ratio_to_floor"]:
                positions.append(position + (index - (len(systems) - 1) / 2) * height)
                ratios.append(figures["ratio_to_floor"])
        axis.barh(positions, ratios, height, label=SYSTEM_TITLES[slug], color=COLOURS[slug])
    axis.axvline(1.0, color="black", linewidth=0.8)
    axis.set_xscale("log")
    axis.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}x"))
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.set_xlabel("median time per call / the SQL statement's (floor = 1x)")
    axis.set_yticks(range(len(OPERATIONS)))
    axis.set_yticklabels([operation.label for operation in OPERATIONS])
    axis.invert_yaxis()  # the first operation at the top, as in the tables
    axis.grid(axis="x", which="major", alpha=0.3)
    figure.suptitle(result["title"], x=0.01, ha="left", fontweight="bold")
    figure.legend(loc="outside lower center", ncol=len(systems), frameon=False)
    figure.savefig(path, dpi=CHART_DPI)
    plt.close(figure)


def draw_plots(results: dict[str, dict[str, Any]], directory: str) -> list[str]:
    """Draw a chart per database into ``directory``; return their paths."""
    os.makedirs(directory, exist_ok=True)
    paths = []
    for alias, result in results.items():
        path = plot_path(directory, alias)
        draw_plot(result, path)
        paths.append(path)
    return paths


def print_targets(targets: list[dict[str, Any]], quick: bool = False) -> None:
    """Print each target with PASS or FAIL."""
    if not targets:
        return
    print()
    print("Targets" + (" (quick mode: too few samples to mean anything)" if quick else ""))
    for target in targets:
        print(f"{'PASS' if target['passed'] else 'FAIL'}  {target['text']}")


def write_reports(
    figures: dict[str, Any],
    json_path: str | None = None,
    rst_path: str | None = None,
    plot_directory: str | None = None,
) -> None:
    """Write the figures as JSON, reStructuredText and charts, to the paths given."""
    if json_path:
        with open(json_path, "w", encoding="utf-8") as file:
            json.dump(figures, file, indent=2, ensure_ascii=False)
        note(f"wrote {json_path}")
    if rst_path:
        with open(rst_path, "w", encoding="utf-8") as file:
            file.write(format_rst(figures))
        note(f"wrote {rst_path}")
    if plot_directory and figures["results"]:
        try:
            for path in draw_plots(figures["results"], plot_directory):
                note(f"wrote {path}")
        except ImportError:
            note("note: no plot: matplotlib is not installed (pip install -e '.[bench]')")


def main(argv: list[str] | None = None) -> int:
    """Render the figures of a ``bench/run.py --json`` file again."""
    parser = argparse.ArgumentParser(
        prog="python bench/report.py",
        description="Render the figures bench/run.py wrote with --json, without measuring.",
    )
    parser.add_argument("figures", metavar="FILE", help="the JSON file bench/run.py wrote")
    parser.add_argument("--rst", metavar="FILE", help="write the tables as reStructuredText")
    parser.add_argument(
        "--plot",
        metavar="DIRECTORY",
        help="draw a chart per database of the ratios to the floor (bench-ALIAS.png)",
    )
    options = parser.parse_args(argv)
    with open(options.figures, encoding="utf-8") as file:
        figures = json.load(file)
    for result in figures["results"].values():
        print()
        print(format_table(f"{result['title']}: {result['server']}", result["summary"]))
    print_targets(figures.get("targets", []), quick=figures["settings"].get("quick", False))
    write_reports(figures, rst_path=options.rst, plot_directory=options.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())

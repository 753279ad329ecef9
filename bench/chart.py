"""``python -m bench.chart RESULTS.json [OUT.png]``: the chart of ``docs/benchmarks.md``.

Reads the document ``python -m bench`` printed and draws, platform against
the native baselines: throughput at each concurrency, latency percentiles at
each concurrency, and the per-call latency of one hop against raw NATS.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # after use(): the backend is chosen before pyplot loads
from matplotlib import ticker

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.png"
SYSTEMS = {"native": "native (httpx)", "native_aiohttp": "native (aiohttp)", "platform": "platform"}
COLOURS = {"native": "#9e9e9e", "native_aiohttp": "#616161", "platform": "#e65100"}


def _label(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _bars(axis: Any, groups: list[str], series: dict[str, list[float]], unit: str) -> None:
    width = 0.8 / len(series)
    for index, (name, values) in enumerate(series.items()):
        offsets = [g + (index - (len(series) - 1) / 2) * width for g in range(len(groups))]
        bars = axis.bar(
            offsets, values, width, label=SYSTEMS.get(name, name), color=COLOURS.get(name)
        )
        axis.bar_label(bars, fmt=_label, fontsize=7, padding=1)
    axis.set_xticks(range(len(groups)), groups)
    axis.set_ylabel(unit)
    axis.legend(fontsize=8)


def _log_scale(axis: Any) -> None:
    axis.set_yscale("log")
    axis.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.yaxis.set_minor_formatter(ticker.NullFormatter())


def draw(results: dict[str, Any], out: Path) -> None:
    e2e = results["e2e"]
    levels = sorted(
        (key for key in e2e if key.startswith("c") and key[1:].isdigit()), key=lambda k: int(k[1:])
    )
    systems = [name for name in SYSTEMS if name in e2e[levels[0]]]
    figure, axes = plt.subplots(1, 2 + len(levels) - 1 + ("hop" in results), figsize=(16, 4.5))
    throughput = axes[0]
    _bars(
        throughput,
        [f"{level[1:]} connection{'s' if level != 'c1' else ''}" for level in levels],
        {name: [e2e[level][name]["rps"] for level in levels] for name in systems},
        "requests per second",
    )
    throughput.set_title("hello-world: throughput")
    for axis, level in zip(axes[1:], levels, strict=False):
        _bars(
            axis,
            ["p50", "p90", "p99"],
            {
                name: [e2e[level][name][f"{q}_ms"] for q in ("p50", "p90", "p99")]
                for name in systems
            },
            "milliseconds",
        )
        _log_scale(axis)  # the httpx baseline's tail is far above the others
        axis.set_title(
            f"hello-world: latency at {level[1:]} connection{'s' if level != 'c1' else ''}"
        )
    if "hop" in results:
        hop = results["hop"]
        names = [n for n in ("raw_nats", "raw_nats_relayed", "platform") if n in hop]
        labels = {
            "raw_nats": "raw NATS",
            "raw_nats_relayed": "raw NATS, relayed",
            "platform": "platform",
        }
        axis = axes[-1]
        width = 0.8 / len(names)
        for index, name in enumerate(names):
            offsets = [g + (index - (len(names) - 1) / 2) * width for g in range(3)]
            colour = COLOURS["platform"] if name == "platform" else ("#bdbdbd", "#757575")[index]
            bars = axis.bar(
                offsets,
                [hop[name][f"{q}_ms"] for q in ("p50", "p90", "p99")],
                width,
                label=labels[name],
                color=colour,
            )
            axis.bar_label(bars, fmt=_label, fontsize=7, padding=1)
        axis.set_xticks(range(3), ["p50", "p90", "p99"])
        axis.set_ylabel("milliseconds per call")
        _log_scale(axis)
        axis.set_title("one hop (component to component)")
        axis.legend(fontsize=8)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)


def main() -> None:
    source = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_OUT
    draw(json.loads(source.read_text()), out)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()

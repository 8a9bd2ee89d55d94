"""Reports: JSON, a Markdown table beside the published baselines, and a bar chart PNG."""

from __future__ import annotations

import json
from pathlib import Path

BASELINES = Path(__file__).parent / "data" / "baselines.json"


def load_baselines() -> list[dict]:
    return json.loads(BASELINES.read_text(encoding="utf-8"))["models"]


def _fmt(metric: dict | None) -> str:
    if not metric:
        return "n/a"
    return f"{metric['mean']:.3f} ± {metric['std']:.3f}"


def markdown(report: dict) -> str:
    """A table per run (one row per task) and the published baselines for the same tasks."""
    lines = [
        f"# CTI-Bench: {report['model']}",
        "",
        f"Protocol: **{report['protocol']}** ({report['protocol_description']}).  ",
        f"Temperature {report['temperature']}, {report['trials']} trial(s), seeds {report['seeds']}"
        + (f", first {report['limit']} items per task" if report.get("limit") else "")
        + (", grounded on MITRE knowledge" if report.get("grounded") else ", closed book")
        + ".",
        "",
        "| task | n | primary | strict | lenient | unparseable (mean) | extra |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, res in report["tasks"].items():
        m = res.get("metrics", {})
        primary = res["primary"]
        extra = []
        if "hierarchy_accuracy" in m:
            extra.append(f"hierarchy {_fmt(m['hierarchy_accuracy'])}")
        if "unknown_cwe_count" in m:
            extra.append(f"unknown CWE ids {m['unknown_cwe_count']['mean']:.1f}")
        if name == "cti-ate":
            extra.append(f"P {_fmt(m.get('precision'))}, R {_fmt(m.get('recall'))}")
        if name == "cti-taa":
            extra.append(f"correct+plausible {_fmt(m.get('plausible'))}")
        direction = "" if res["higher_is_better"] else " (lower is better)"
        lines.append(
            f"| {name} | {res.get('n', 0)} | {primary}{direction} | {_fmt(m.get(primary))} | "
            f"{_fmt(m.get('lenient_' + primary))} | {res.get('unparseable_mean', 0):.1f} | {'; '.join(extra)} |"
        )
    tasks = [t for t in report["tasks"] if t in ("cti-mcq", "cti-rcm")]
    if tasks:
        lines += ["", "Published baselines (accuracy; protocols differ, see sources):", "",
                  "| model | " + " | ".join(tasks) + " | protocol | source |",
                  "| --- | " + " | ".join("---" for _ in tasks) + " | --- | --- |"]
        for b in load_baselines():
            cells = " | ".join(f"{b[t]:.3f}" if t in b else "n/a" for t in tasks)
            lines.append(f"| {b['model']} | {cells} | {b['protocol']} | {b['source']} |")
    unparseable = {
        name: sorted({i for t in res.get("per_trial", []) for i in t["unparseable"]})
        for name, res in report["tasks"].items()
    }
    listed = {k: v for k, v in unparseable.items() if v}
    if listed:
        lines += ["", "Unparseable items (row index, any trial):", ""]
        lines += [f"- {k}: {', '.join(map(str, v[:50]))}{' ...' if len(v) > 50 else ''}" for k, v in listed.items()]
    return "\n".join(lines) + "\n"


def bar_chart(report: dict, path: Path) -> None:
    """Accuracy-like tasks (MCQ, RCM) beside the published baselines; error bars are trial std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t, r in report["tasks"].items() if r["higher_is_better"] and r.get("metrics")]
    if not tasks:
        return
    models = [(report["model"], {t: report["tasks"][t]["metrics"][report["tasks"][t]["primary"]] for t in tasks})]
    for b in load_baselines():
        models.append((b["model"], {t: {"mean": b[t], "std": 0.0} for t in tasks if t in b}))
    fig, ax = plt.subplots(figsize=(max(7, 2.2 * len(tasks)), 4.5))
    width = 0.8 / len(models)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labelled: set[int] = set()
    for j, t in enumerate(tasks):  # bars of each task packed side by side, centred on its tick
        present = [(i, scores[t]) for i, (_, scores) in enumerate(models) if t in scores]
        left = j - width * (len(present) - 1) / 2
        for slot, (i, score) in enumerate(present):
            ax.bar(left + slot * width, score["mean"], width, yerr=score["std"], color=colors[i % len(colors)],
                   alpha=1.0 if i == 0 else 0.6, label=None if i in labelled else models[i][0])
            labelled.add(i)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score (strict)")
    ax.set_title(f"CTI-Bench, protocol {report['protocol']}")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(report: dict, run_dir: Path) -> dict[str, Path]:
    """report.json, report.md and report.png in the run directory."""
    paths = {"json": run_dir / "report.json", "md": run_dir / "report.md", "png": run_dir / "report.png"}
    paths["json"].write_text(json.dumps(report, indent=2), encoding="utf-8")
    paths["md"].write_text(markdown(report), encoding="utf-8")
    bar_chart(report, paths["png"])
    return paths

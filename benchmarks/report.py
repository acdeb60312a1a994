"""Assemble the benchmarks' JSON into docs/RESULTS.md, with PNG plots and the machine they ran on.

    .venv/bin/python benchmarks/report.py [--results docs/results] [--out docs/RESULTS.md]

It reads whatever the benchmark scripts wrote (course_runtime, transfer_gains,
fit_overhead, feature_cache, grading_throughput, gpu); a missing one is listed
with the command that produces it. Nothing is measured here.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import ROOT, RESULTS_DIR  # noqa: E402

sys.path.insert(0, str(ROOT))

COMMANDS = {
    "course_runtime": "benchmarks/course_runtime.py --repeats 3",
    "transfer_gains": "benchmarks/transfer_gains.py --seeds 3",
    "fit_overhead": "benchmarks/fit_overhead.py",
    "feature_cache": "benchmarks/feature_cache.py",
    "grading_throughput": "benchmarks/grading_throughput.py",
    "gpu": "benchmarks/gpu.py",
}


def load(results: pathlib.Path) -> dict[str, dict]:
    out = {}
    for name in COMMANDS:
        path = results / f"{name}.json"
        if path.exists():
            try:
                out[name] = json.loads(path.read_text())
            except ValueError as exc:
                raise SystemExit(f"{path} is not valid JSON ({exc}); rerun `{COMMANDS[name]}`") from None
    return out


def _mmm(s: dict, fmt: str = "{:.1f}") -> str:
    """'median (min–max)' of a summary dict."""
    if s["n"] == 1:
        return fmt.format(s["median"])
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def _pm(mean, std, n) -> str:
    if mean is None:
        return "—"
    return f"{mean:.3f}" if n <= 1 or not std else f"{mean:.3f} ± {std:.3f}"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _when(d: dict) -> str:
    notes = "".join(f" Note: {n}" for n in d.get("notes", []))
    return notes.strip() + ("\n\n" if notes else "") + _measured(d)


def _measured(d: dict) -> str:
    return (f"Measured {d.get('started_utc', '?')} ({d.get('profile', '?')} profile), "
            f"{d.get('elapsed_s', 0):.0f} s. Load before: `{_load(d.get('uptime_before'))}`; "
            f"after: `{_load(d.get('uptime_after'))}`.")


def _load(uptime: str | None) -> str:
    if not uptime:
        return "?"
    return "load average" + uptime.split("load average", 1)[1] if "load average" in uptime else uptime


def _plot_runtime(d: dict, png: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = d["rows"]
    names = [r["notebook"].split(".")[0] for r in rows]
    med = [r["wall_s"]["median"] for r in rows]
    lo = [r["wall_s"]["median"] - r["wall_s"]["min"] for r in rows]
    hi = [r["wall_s"]["max"] - r["wall_s"]["median"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.2))
    y = range(len(rows))
    ax.barh(y, med, xerr=[lo, hi], color="#4c72b0", capsize=3, label="wall time (median; min–max)")
    budgets = [r["budget_s"] for r in rows]
    if any(budgets):
        ax.scatter([b or 0 for b in budgets], y, marker="|", s=300, color="#c44e52", label="budget", zorder=3)
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title(f"Solution notebooks, {d['profile']} profile, {d['machine']['cpus']} CPU cores")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _plot_gains(d: dict, png: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in d["rows"] if "oracle" not in r["method"]]
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.4))
    y = list(range(len(rows)))
    ax.barh([i + 0.2 for i in y], [r["baseline_mean"] for r in rows], height=0.4, color="#bbbbbb",
            xerr=[r["baseline_std"] or 0 for r in rows], capsize=2, label="no-transfer baseline")
    ax.barh([i - 0.2 for i in y], [r["method_mean"] for r in rows], height=0.4, color="#4c72b0",
            xerr=[r["method_std"] for r in rows], capsize=2, label="transfer method")
    labels = [f"{r['method'][:36]}  vs  {r['baseline'][:26]}\n{r['setting'][:64]}" for r in rows]
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"test accuracy (mean ± std over {max(r['seeds'] for r in rows)} seeds)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Transfer method vs its no-transfer baseline, same data and budget")
    fig.tight_layout()
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)


def course_runtime_section(d: dict, results: pathlib.Path, rel: str) -> list[str]:
    rows = []
    for r in d["rows"]:
        rows.append([r["notebook"].split(".")[0], _mmm(r["wall_s"]), r["budget_s"] or "—",
                     f"{r['of_budget']:.0%}" if r.get("of_budget") else "—", f"{r['import_share']:.0%}",
                     f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") else "?", f"{r['ratio_to_baseline']:.1f}",
                     _mmm(r["cpu_s"]) if r.get("cpu_s") else "—"])
    rounds = d.get("rounds_completed", 1)
    over = [f"{r['notebook'].split('.')[0]} ({r['of_budget']:.0%})" for r in d["rows"] if (r.get("of_budget") or 0) > 1]
    total, budget = d.get("total_s", 0.0), d.get("total_budget_s", 0)
    lo, hi = d["settings"].get("tutorial_cpu_minutes", (15, 25))
    _plot_runtime(d, results / "course_runtime.png")
    out = ["## Course runtime", "",
           f"Every solution notebook executed top to bottom in a fresh kernel, {rounds} round(s) "
           f"(requested {d['settings'].get('repeats_requested')}; the rounds go round-robin over the notebooks). "
           "Wall time is the median with min and max. *Imports* is the share of the first code cell "
           "(imports, setup); *peak MB* is the kernel's peak resident memory; */baseline* divides the median by a "
           "fixed workload timed in each round (MobileNetV2 inference, 512 images at 64 px), "
           f"median {_mmm(d['baseline_s'], '{:.2f}')} s in this run; the baseline slows down with the load as the "
           "notebooks do, so */baseline* is the figure to compare across machines and loads. *CPU s* is the "
           "kernel's own user + system time: other jobs stretch it less than the wall time (they still add "
           "to it: shared caches, threads spinning while they wait), so a loaded run's CPU s is an upper "
           "estimate of a quiet run's work (its wall time near CPU s / 2 on 2 cores for parallel work, near "
           "CPU s for single-threaded work).", "",
           _table(["notebook", "wall s, median (min–max)", "budget s", "of budget", "imports", "peak MB", "/baseline",
                   "CPU s"], rows), "",
           f"Total: **{total:.0f} s** for the {len(rows)} notebooks against budgets summing to {budget} s. "
           f"For reference, PyTorch's own transfer-learning tutorial states {lo}–{hi} min on CPU for its one "
           f"example (fine-tuning ResNet-18 on ants vs bees); the whole course ran in "
           f"{total / 60:.1f} min here. Over budget in this run: {', '.join(over) if over else 'none'}.", "",
           f"![course runtime]({rel}/course_runtime.png)", ""]
    if d.get("appended_utc"):
        out += [f"Rounds started at {d.get('started_utc')} and, appended with `--append`, at "
                f"{', '.join(d['appended_utc'])}; the notebooks are the working tree's at each time.", ""]
    out += [_when(d)]
    if rounds < 3:
        out += ["", f"**Fewer repeats than planned:** only {rounds} round(s) of the 3 the benchmark is meant to run "
                "fitted in the time the shared machine allowed (heavy jobs take turns on one lock), so each "
                "median above is of " + ("a single run and shows no spread." if rounds == 1 else f"{rounds} runs.")]
    return out


def transfer_section(d: dict, results: pathlib.Path, rel: str) -> list[str]:
    rows = []
    for r in d["rows"]:
        rows.append([r["experiment"], r["setting"], r["method"], _pm(r["method_mean"], r["method_std"], r["seeds"]),
                     r["baseline"], _pm(r["baseline_mean"], r["baseline_std"], len(r["baseline_acc"])),
                     f"{r['gain_mean']:+.3f}" + (f" ± {r['gain_std']:.3f}" if r["seeds"] > 1 else ""),
                     _wins(r)])
    _plot_gains(d, results / "transfer_gains.png")
    seeds = d["settings"].get("seeds", [])
    out = ["## Transfer gains", "",
           f"Each transfer method against its no-transfer baseline on the same data, labels and training budget, "
           f"seeds {seeds} (mean ± sample std over seeds). *Gain* is the paired difference, same seed; "
           "*>0* counts the seeds where the method won. Sizes are the notebooks' quick profile; "
           "the code is `benchmarks/experiments/<topic>.py`, one module per lesson "
           "(it calls the notebooks' library functions).", "",
           *headline(d), "",
           _table(["experiment", "setting", "method", "accuracy", "baseline", "baseline accuracy", "gain", ">0"], rows),
           "", f"![transfer gains]({rel}/transfer_gains.png)", ""]
    teacher = [r for r in d["rows"] if r.get("teacher_acc") is not None]
    if teacher:
        out += [f"The distillation teacher (frozen MobileNetV2 + linear head) scores {teacher[0]['teacher_acc']:.3f} "
                "on the same test images.", ""]
    stamps = sorted({r.get("measured_utc") for r in d["rows"] if r.get("measured_utc")})
    if len(stamps) > 1:
        out += ["Rows were measured at different times (an experiment was rerun alone): " +
                "; ".join(f"{r['key']} {r.get('measured_utc')}" for r in
                          {r["key"]: r for r in d["rows"]}.values()) + ".", ""]
    pub = d.get("published") or {}
    if pub:
        prow = []
        for key, p in pub.items():
            ours = [r for r in d["rows"] if r["key"] == key and "oracle" not in r["method"]]
            ours_txt = "; ".join(f"{r['method']}: {r['method_mean']:.3f} vs {r['baseline_mean']:.3f}"
                                 for r in ours[:2]) or "not run"
            theirs = (f"{p['method_name']}: {p['method']:.4g}" +
                      (f" vs {p['baseline']:.4g}" if p.get("baseline") is not None else ""))
            prow.append([p["source"], theirs, ours_txt, p["differs"]])
        out += ["### Published numbers beside ours", "",
                "Quoted for context, not reproduced; the settings differ as noted, so compare directions, "
                "not sizes. (The SetFit figure is the one the project's issue cites.)", "",
                _table(["source", "published", "ours (mean over seeds)", "how the settings differ"], prow), ""]
    out.append(_when(d))
    return out


def _wins(r: dict) -> str:
    """The >0 cell: seeds won of seeds run; a single run has no spread and wins nothing over seeds."""
    return "1 run, no spread" if r["seeds"] == 1 else f"{r['gain_positive']}/{r['seeds']}"


def headline(d: dict) -> list[str]:
    """One line per experiment, computed from its rows: how often and by how much the transfer method won.

    Only comparisons repeated over seeds are counted as paired runs; a comparison measured once is named
    as one run with no spread, whatever its sign.
    """
    out = []
    by_key: dict[str, list[dict]] = {}
    for r in d["rows"]:
        if "oracle" not in r["method"]:
            by_key.setdefault(r["experiment"], []).append(r)
    for exp, rows in by_key.items():
        parts = []
        paired = [r for r in rows if r["seeds"] > 1]
        if paired:
            won = sum(r["gain_positive"] for r in paired)
            total = sum(r["seeds"] for r in paired)
            gains = [r["gain_mean"] for r in paired]
            span = f"{min(gains):+.3f}" if len(gains) == 1 else f"{min(gains):+.3f} to {max(gains):+.3f}"
            verdict = ("the transfer method won every paired run" if won == total else
                       "no gain: the transfer method never won a paired run" if won == 0 else
                       f"mixed: the transfer method won {won} of {total} paired runs")
            parts.append(f"{verdict} ({len(paired)} comparison(s); mean gain {span})")
        parts += [f"{r['method']} vs {r['baseline']}: 1 run, no spread (gain {r['gain_mean']:+.3f})"
                  for r in rows if r["seeds"] == 1]
        out.append(f"- **{exp}**: " + "; ".join(parts) + ".")
    return out


def fit_section(d: dict) -> list[str]:
    r = d["rows"][0]
    s = d["settings"]
    return ["## Training-loop overhead: `tlcourse.fit` vs a plain loop", "",
            f"{s['model']}, {s['train']} Fashion-MNIST images, {s['epochs']} epochs, batch {s['batch_size']}, "
            f"{s['optimizer']}, on {s['device']}; {s['pairs']} pairs alternated in one process after a warm-up "
            f"({s.get('progress_bar', '')}).", "",
            _table(["", "median (min–max)"],
                   [["fit, s", _mmm(r["fit_s"], "{:.2f}")], ["plain loop, s", _mmm(r["loop_s"], "{:.2f}")],
                    ["**ratio fit / loop**, per pair", f"**{_mmm(r['ratio'], '{:.3f}')}**"],
                    ["fastest fit / fastest loop", f"{r['ratio_of_minimums']:.3f}" if "ratio_of_minimums" in r else "—"]]),
            "", "Under a shared CPU a single pair can be swamped by another job (see min and max); the fastest run "
            "of each side is the least disturbed, so the ratio of the two minimums is shown beside the median.", "",
            f"Goal ≤ {r['goal_ratio']}: **{'met' if r['meets_goal'] else 'not met'}** (median of per-pair ratios). "
            f"Same final weights: **{'yes' if r['same_weights'] else 'no'}** "
            f"(max absolute difference {r['max_weight_difference']:.1e}).", "", _when(d)]


def cache_section(d: dict) -> list[str]:
    r, s = d["rows"][0], d["settings"]
    return ["## Feature cache: cached features vs re-running the frozen backbone", "",
            f"A linear head trained {s['epochs']} epochs on {s['images']} Fashion-MNIST images through a frozen "
            f"{s['backbone']} at {s['image_size']} px (batch {s['batch_size']}, CPU), {s['repeats']} repeats "
            "alternated. *Cached* includes its one backbone pass.", "",
            _table(["", "median (min–max)"],
                   [["cached (one extraction + head epochs), s", _mmm(r["cached_s"], "{:.2f}")],
                    ["of which the extraction, s", _mmm(r["extraction_s"], "{:.2f}")],
                    ["backbone re-run every epoch, s", _mmm(r["recomputed_s"], "{:.2f}")],
                    ["**ratio re-run / cached**", f"**{_mmm(r['ratio'], '{:.1f}')}×**"],
                    ["fastest re-run / fastest cached",
                     f"{r['ratio_of_minimums']:.1f}×" if "ratio_of_minimums" in r else "—"],
                    ["disk-cache hit (a second notebook run), s", f"{r['disk_cache_hit_s']:.2f}"]]), "",
            f"Both heads end with the same weights: {'yes' if r['same_head'] else 'no'} "
            f"(max difference {r['max_head_weight_difference']:.1e}).", "", _when(d)]


def grading_section(d: dict) -> list[str]:
    course = "the test fixture course" if "fixtures" in d.get("root", "") else "the course"
    return ["## Grading throughput", "",
            f"{d['k']} submissions of `{d['assignment']}` ({course}; half solutions, half untouched releases), "
            "graded both ways in one run.", "",
            _table(["method", "wall s", "s / submission"],
                   [["nbgrader autograde, one call per student (baseline)", f"{d['nbgrader_cli_s']:.1f}",
                     f"{d['nbgrader_s_per_submission']:.2f}"],
                    [f"`tlcourse grade`, {d['workers']} workers (sandbox, guard)", f"{d['tlcourse_s']:.1f}",
                     f"{d['tlcourse_s_per_submission']:.2f}"]]), "",
            f"**Ratio nbgrader / tlcourse: {d['ratio_nbgrader_over_tlcourse']:.2f}x.** Same scores both ways: "
            f"{d['same_scores']}. tlcourse's overhead per submission (process-seconds minus nbgrader's seconds): "
            f"{d['tlcourse_overhead_s_per_submission']:+.2f} s.", "", _when(d)]


def gpu_section(d: dict) -> list[str]:
    if d.get("status") != "measured":
        return ["## GPU", "", f"Not measured: {d.get('reason', 'skipped')} "
                "The script (`benchmarks/gpu.py`) fits in 10 minutes: AMP vs fp32 fit throughput on MobileNetV2 "
                "and notebook 01 in the full profile.", "", f"Checked {d.get('started_utc', '?')}."]
    out = ["## GPU", "", f"On {d['machine'].get('cuda')}.", ""]
    for r in d["rows"]:
        if r.get("part") == "amp":
            out += [_table(["", "median (min–max)"],
                           [["AMP images/s", _mmm(r["amp_images_per_s"], "{:.0f}")],
                            ["fp32 images/s", _mmm(r["fp32_images_per_s"], "{:.0f}")],
                            ["**ratio AMP / fp32**", f"**{_mmm(r['ratio_amp_over_fp32'], '{:.2f}')}**"]]),
                    "", f"{r['what']}, batch {r['batch_size']}, autocast dtype {r['amp_dtype']}.", ""]
        elif r.get("part") == "notebook":
            detail = r["detail"]
            wall = (f"{detail['wall_s']['median']:.0f} s" if isinstance(detail, dict) else f"failed: {detail[:300]}")
            out += [f"{r['notebook']} in the full profile: {wall}.", ""]
    out.append(_when(d))
    return out


def machine_section(data: dict[str, dict]) -> list[str]:
    m = next(iter(data.values()))["machine"]
    return ["## Machine", "",
            _table(["", ""], [["CPU", m["cpu_model"]], ["cores", m["cpus"]], ["torch threads", m["torch_threads"]],
                              ["memory", f"{m['memory_gb']} GB"], ["GPU", m.get("cuda") or "none"],
                              ["Python / torch", f"{m['python']} / {m['torch']}"], ["OS", m["platform"]]]), "",
            "**Shared CPU.** These numbers were measured while other jobs (other developers' test runs and "
            "notebook executions) shared the two cores, so absolute seconds are inflated by an amount that "
            "varied during the run. Each section records the load average before and after it. Prefer the "
            "ratios, which were measured side by side in one process, and the */baseline* column.", ""]


def build(results: pathlib.Path, out: pathlib.Path) -> str:
    data = load(results)
    if not data:
        raise SystemExit(f"no benchmark results in {results}; run e.g. `{COMMANDS['fit_overhead']}` first")
    rel = os.path.relpath(results, out.parent)
    lines = ["# Results", "",
             "Generated by `make results` (benchmarks/report.py) from the JSON in "
             f"`{os.path.relpath(results, ROOT)}/`; do not edit by hand. `make benchmarks` reruns every "
             "benchmark first (about an hour on two cores). Each figure is a ratio measured side by side in one "
             "run, or a median with min and max, or a mean ± std over seeds.", ""]
    lines += machine_section(data)
    sections = [("transfer_gains", lambda d: transfer_section(d, results, rel)),
                ("course_runtime", lambda d: course_runtime_section(d, results, rel)),
                ("fit_overhead", fit_section), ("feature_cache", cache_section),
                ("grading_throughput", grading_section),
                ("gpu", gpu_section)]
    missing = []
    for name, fn in sections:
        if name in data:
            lines += fn(data[name]) + [""]
        else:
            missing.append(name)
    if missing:
        lines += ["## Not measured yet", ""] + [f"- {n}: run `.venv/bin/python {COMMANDS[n]}`" for n in missing] + [""]
    text = "\n".join(lines).rstrip() + "\n"
    from tlcourse._io import atomic_open
    with atomic_open(out, "w") as fh:
        fh.write(text)
    return text


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=pathlib.Path, default=RESULTS_DIR)
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "docs" / "RESULTS.md")
    args = ap.parse_args(argv)
    text = build(args.results, args.out)
    print(f"wrote {args.out} ({len(text.splitlines())} lines)")
    return text


if __name__ == "__main__":
    main()

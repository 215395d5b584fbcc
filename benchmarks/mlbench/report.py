"""What a run prints and writes: the row table, the summary (fused against each contender),
the targets, and the files -- CSV, JSON, txt (the printed report) and one PNG chart per loss."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from .runner import CSV_COLUMNS


def fmt(value, spec=".3g", empty="-"):
    if value == "" or value is None:
        return empty
    if isinstance(value, float) and not math.isfinite(value):
        return empty
    return format(value, spec)


def fmt_share(value):
    return "-" if value is None else f"{value:.0%}"


def fmt_percent(fraction):
    if fraction == "" or fraction is None:
        return "-"
    value = 100 * fraction
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def align(lines: list[tuple], left: int) -> list[str]:
    """Columns padded to their widest cell: the first ``left`` left-aligned, the rest right."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for i, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) if j < left else cell.rjust(w)
                             for j, (cell, w) in enumerate(zip(line, widths))).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def _launches(row):
    """The profiler's kernel launches on CUDA; elsewhere the ops dispatched (each at least one launch there)."""
    for key in ("cuda_launches", "launches"):
        if row.get(key, "") != "":
            return int(row[key])
    return ""


def format_table(rows: list[dict]) -> str:
    lines = [("loss", "contender", "mode", "size", "dtype", "median ms", "p20 ms", "p80 ms", "reps",
              "peak MB", "peak/grad", "GB/s", "% copy", "launches", "host us", "kernel ms")]
    for r in rows:
        lines.append((r["loss"], r["contender"], r["mode"], r["size"], r["dtype"], fmt(r["median_ms"]),
                      fmt(r["p20_ms"]), fmt(r["p80_ms"]), str(r["reps"]),
                      fmt(r["peak_extra_mb"], ".1f"), fmt(r["peak_over_grad"], ".2f"),
                      fmt(r["bandwidth_gbs"], ".3g"), fmt_percent(r["copy_fraction"]),
                      fmt(_launches(r), "d"), fmt(r.get("host_us", ""), ".1f"),
                      fmt(r.get("kernel_ms", ""))))
    return "\n".join(align(lines, 5))


def summarize(loss, rows: list[dict]) -> list[dict]:
    """Per case of ``loss``: the fused row of its summary mode and its speed-up over every
    other contender (their median time / fused's), its % of copy bandwidth and peak/grad."""
    mode = loss.summary_mode
    by_key = {(r["size"], r["dtype"], r["contender"]): r for r in rows
              if r["loss"] == loss.name and r["mode"] == mode}
    entries = []
    for (size, dtype, contender), f in by_key.items():
        if contender != loss.fused:
            continue
        entry = {"loss": loss.name, "mode": mode, "size": size, "dtype": dtype,
                 "pixels": f["batch"] * f["height"] * f["width"], "fused_ms": f["median_ms"],
                 "copy_fraction": f["copy_fraction"], "peak_over_grad": f["peak_over_grad"] or None}
        for other in loss.contenders:
            if other != loss.fused:
                o = by_key.get((size, dtype, other))
                entry[f"vs_{other}"] = o["median_ms"] / f["median_ms"] if o else None
        entries.append(entry)
    return entries


def format_summary(loss, entries: list[dict]) -> str:
    others = [c for c in loss.contenders if c != loss.fused and any(e[f"vs_{c}"] for e in entries)]
    what = "forward + backward" if loss.summary_mode == "full" else loss.summary_mode
    lines = [("size", "dtype", f"{loss.fused} ms", *(f"vs {c}" for c in others), "% copy bw", "peak/grad")]
    for e in entries:
        lines.append((e["size"], e["dtype"], fmt(e["fused_ms"]),
                      *("-" if e[f"vs_{c}"] is None else f"{e[f'vs_{c}']:.2f}x" for c in others),
                      fmt_percent(e["copy_fraction"]) + "%", fmt(e["peak_over_grad"], ".2f")))
    head = (f"{loss.name}: {loss.title}; {loss.fused} against each contender, {what} "
            f"(vs X = X's median time / {loss.fused}'s: above 1x, {loss.fused} is faster)")
    return "\n".join([head] + ["  " + line for line in align(lines, 2)])


def target(name, entries, key, threshold, higher_is_better=True) -> dict:
    """The worst value of ``key`` over ``entries`` against ``threshold`` (n/a without rows)."""
    values = [e[key] for e in entries if e.get(key) is not None]
    if not values:
        return {"target": name, "value": None, "threshold": threshold, "status": "n/a"}
    worst = min(values) if higher_is_better else max(values)
    ok = worst >= threshold if higher_is_better else worst <= threshold
    return {"target": name, "value": worst, "threshold": threshold, "status": "PASS" if ok else "FAIL"}


def format_targets(targets: list[dict]) -> str:
    lines = ["targets (worst case over the matching rows; reported, not enforced):"]
    for t in targets:
        value = "-" if t["value"] is None else f"{t['value']:.3g}"
        lines.append(f"  [{t['status']:>4}] {t['target']}  (measured {value}, threshold {t['threshold']:g})")
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict]):
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def write_json(path: Path, meta: dict, rows, summary, targets):
    with open(path, "w") as fh:
        json.dump({"meta": meta, "rows": rows, "summary": summary, "targets": targets}, fh, indent=1)


def write_chart(path: Path, loss, rows: list[dict], env) -> bool:
    """``loss``'s summary mode: median time and GB/s per size per contender, one row of plots
    per dtype row, the copy bandwidth as a black bar. False without matplotlib or rows."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    mode = loss.summary_mode
    mine = [r for r in rows if r["loss"] == loss.name]
    timed = [r for r in mine if r["mode"] == mode]
    dtypes = list(dict.fromkeys(r["dtype"] for r in timed))
    if not dtypes:
        return False
    contenders = [c for c in loss.contenders if any(r["contender"] == c for r in timed)]
    what = "forward + backward" if mode == "full" else mode
    fig, axes = plt.subplots(len(dtypes), 2, figsize=(12, 4 * len(dtypes)), squeeze=False)
    width = 0.8 / max(1, len(contenders))
    for i, dtype in enumerate(dtypes):
        sizes = list(dict.fromkeys(r["size"] for r in timed if r["dtype"] == dtype))
        copy = {r["size"]: r["bandwidth_gbs"] for r in mine if r["mode"] == "copy" and r["dtype"] == dtype}
        for j, (key, ylabel, log) in enumerate((("median_ms", "median time, ms (log)", True),
                                                ("bandwidth_gbs", "achieved GB/s", False))):
            ax = axes[i][j]
            for k, contender in enumerate(contenders):
                by_size = {r["size"]: r for r in timed if r["dtype"] == dtype and r["contender"] == contender}
                xs = [s + (k - (len(contenders) - 1) / 2) * width for s in range(len(sizes))]
                ys = [by_size[s][key] if s in by_size else float("nan") for s in sizes]
                ax.bar(xs, ys, width, label=contender)
            if key == "bandwidth_gbs" and copy:
                ax.plot(range(len(sizes)), [copy.get(s, float("nan")) for s in sizes], "k_",
                        markersize=30, mew=2, label="copy")
            if log:
                ax.set_yscale("log")
            ax.set_xticks(range(len(sizes)), sizes)
            ax.set_ylabel(ylabel)
            ax.set_title(f"{dtype}, {what}")
            ax.legend(fontsize=8)
    fig.suptitle(f"mattingloss {loss.title}\n{env.device_name} ({env.device_type}, "
                 f"{env.threads} threads), torch {env.torch_version}, {env.date[:10]}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True

"""Turns the per-model JSON files of scripts/gpu/tune_compare.sh into the
Markdown tables of docs/gpu-results.md and the machine-readable copy.

usage: tune_report.py COMPARE_DIR [JSON_OUT]
"""
import json
import math
import os
import sys


def fastest(results):
    # Round 1's dispatch candidates ("main_dispatch_3-07", "...-base") time one
    # executable alone; only whole-program candidates are comparable.
    ok = [m for m in results.get("measurements", []) if m["status"] == "ok" and "_dispatch_" not in m["id"]]
    return min(ok, key=lambda m: m["latency_ms"]) if ok else None


def find(results, ident):
    return next((m for m in results.get("measurements", []) if m["id"] == ident), None)


def max_error(report):
    outs = report.get("outputs") or []
    return max((o.get("max_abs_error", 0.0) for o in outs), default=None)


def top_dispatch(profile):
    rows = profile.get("dispatches") or []
    if not rows:
        return ""
    d = rows[0]
    tf = f", {d['tflops']:.1f} TFLOP/s" if d.get("tflops") else ""
    return f"{d['name']} {100 * d['share']:.0f}% ({d['per_call_us']:.0f} µs{tf})"


def geomean(values):
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def main():
    folder = sys.argv[1]
    machine = {}
    rows, ratios, f16_ratios = [], [], []
    device = ""
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json"):
            continue
        doc = json.load(open(os.path.join(folder, name)))
        model = name[:-5]
        jax, results = doc["jax"], doc["results"]
        device = jax.get("device", device)
        untuned = find(results, "reference")
        tuned = fastest(results)
        f16 = fastest(doc.get("f16_results") or {})
        entry = {
            "xla_highest_ms": jax.get("xla_highest_ms"),
            "xla_default_ms": jax.get("xla_default_ms"),
            "xla_p50_highest_ms": jax.get("xla_p50_ms_highest"),
            "xla_p50_default_ms": jax.get("xla_p50_ms_default"),
            "kiln_untuned_ms": untuned and untuned["latency_ms"],
            "kiln_untuned_p50_ms": untuned and untuned.get("p50_ms"),
            "kiln_tuned_ms": tuned and tuned["latency_ms"],
            "kiln_tuned_p50_ms": tuned and tuned.get("p50_ms"),
            "kiln_tuned_candidate": tuned and tuned["id"],
            "kiln_tuned_precision_ms": f16 and f16["latency_ms"],
            "kiln_tuned_precision_candidate": f16 and f16["id"],
            "max_abs_error": max_error(doc.get("tuned_validate", {})),
            "max_abs_error_untuned": max_error(doc.get("untuned_validate", {})),
            "max_abs_error_precision": max_error(doc.get("f16_validate", {})),
            "untuned_top_dispatch": top_dispatch(doc.get("untuned_profile", {})),
            "tuned_top_dispatch": top_dispatch(doc.get("tuned_profile", {})),
        }
        machine[model] = entry
        ratio = entry["kiln_tuned_ms"] / entry["xla_highest_ms"] if entry["kiln_tuned_ms"] and entry["xla_highest_ms"] else None
        before = entry["kiln_untuned_ms"] / entry["xla_highest_ms"] if entry["kiln_untuned_ms"] and entry["xla_highest_ms"] else None
        f16_ratio = (entry["kiln_tuned_precision_ms"] / entry["xla_default_ms"]
                     if entry["kiln_tuned_precision_ms"] and entry["xla_default_ms"] else None)
        ratios.append((before, ratio))
        f16_ratios.append(f16_ratio)

        def ms(v):
            return f"{v:.4f}" if v else "-"

        def x(v):
            return f"{v:.2f}×" if v else "-"

        def err(v):
            return f"{v:.3g}" if v is not None else "-"

        rows.append(f"| {model} | {ms(entry['xla_highest_ms'])} | {ms(entry['xla_default_ms'])} | "
                    f"{ms(entry['kiln_untuned_ms'])} | {ms(entry['kiln_tuned_ms'])} | {x(before)} | **{x(ratio)}** | "
                    f"{ms(entry['kiln_tuned_precision_ms'])} | {x(f16_ratio)} | {err(entry['max_abs_error'])} | "
                    f"{err(entry['max_abs_error_precision'])} |")
    print(f"device: {device}\n")
    print("| model | XLA full f32 ms | XLA default ms | kiln untuned ms | kiln tuned ms | untuned / XLA f32 | "
          "tuned / XLA f32 | kiln tuned f16-inputs ms | f16-inputs / XLA default | max abs error (tuned) | "
          "max abs error (f16-inputs) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    print(f"\ngeomean untuned / XLA full f32: {geomean([b for b, _ in ratios]):.2f}×; "
          f"tuned / XLA full f32: {geomean([a for _, a in ratios]):.2f}×")
    print("\nper-call p50 (ms), the second figure:\n")
    print("| model | XLA full f32 | XLA default | kiln untuned | kiln tuned |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for model, e in machine.items():
        vals = [e["xla_p50_highest_ms"], e["xla_p50_default_ms"], e["kiln_untuned_p50_ms"], e["kiln_tuned_p50_ms"]]
        print(f"| {model} | " + " | ".join(f"{v:.4f}" if v else "-" for v in vals) + " |")
    print("\nwhere the time goes (largest dispatch, from kiln profile):\n")
    print("| model | untuned | tuned (winner) |")
    print("| --- | --- | --- |")
    for model, e in machine.items():
        print(f"| {model} | {e['untuned_top_dispatch']} | {e['tuned_top_dispatch']} ({e['kiln_tuned_candidate']}) |")
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as f:
            json.dump({"device": device, "models": machine}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()

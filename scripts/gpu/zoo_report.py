"""The model zoo's results: one program's record, or the whole zoo's JSON and
Markdown table (scripts/gpu/zoo_measure.sh calls both).

usage: zoo_report.py --one DIR COMPILE_JSON NAME     writes DIR/result.json
       zoo_report.py OUT_DIR RESULTS_JSON [NAME ...]  writes RESULTS_JSON, prints the table

DIR holds what zoo_measure.sh left for one program: jax.json (or jax.error),
validate.json, amortized.json, bench.json. The zoo's JSON is
{"device": ..., "models": {NAME: {"xla_ms", "kiln_untuned_ms", "kiln_tuned_ms",
"max_abs_error", "tune_seconds", ...}}}; tuned fields stay null until the
program is tuned, and a RESULTS_JSON that exists keeps its tuned fields.
"""
import json
import math
import os
import sys

TUNED = ("kiln_tuned_ms", "kiln_tuned_p50_ms", "tune_seconds")


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def first_line(path):
    try:
        with open(path) as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return None
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [None])[0]


def one(d, compile_json, name):
    jax = load(os.path.join(d, "jax.json")) or {}
    validation = load(os.path.join(d, "validate.json")) or {}
    amortized = load(os.path.join(d, "amortized.json")) or {}
    bench = load(os.path.join(d, "bench.json")) or {}
    rows = (load(compile_json) or {}).get("rows", [])
    compiled = next((r for r in rows if r["program"] == name), None)
    outputs = validation.get("outputs") or []
    error = None
    if compiled and not compiled["compiled"]:
        error = "compile: " + compiled["error"]
    elif not jax:
        error = "jax: " + (first_line(os.path.join(d, "jax.error")) or "no reference")
    elif not validation:
        error = "validate: " + (first_line(os.path.join(d, "validate.txt")) or "no report")
    elif not amortized:
        error = "bench --amortized: " + (first_line(os.path.join(d, "amortized.err")) or "no output")
    record = {
        "xla_ms": jax.get("xla_ms"),
        "xla_p50_ms": jax.get("xla_p50_ms"),
        "kiln_untuned_ms": amortized.get("amortized_ms"),
        "kiln_untuned_p50_ms": (bench.get("stats") or {}).get("p50_ms"),
        "kiln_tuned_ms": None,
        "kiln_tuned_p50_ms": None,
        "max_abs_error": max((o["max_abs_error"] for o in outputs), default=None),
        "max_rel_error": max((o["max_rel_error"] for o in outputs), default=None),
        "validated": validation.get("passed") if validation else None,
        "tune_seconds": None,
        "compile_seconds": compiled and compiled["seconds"],
        "device": jax.get("device"),
        "error": error,
    }
    with open(os.path.join(d, "result.json"), "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


def fmt(v, spec=".4f"):
    return "-" if v is None else format(v, spec)


def table(models):
    lines = ["| program | XLA ms | kiln untuned ms | untuned / XLA | kiln tuned ms | tuned / XLA | "
             "per-call p50 XLA / kiln ms | max abs error | validate | note |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    ratios = []
    for name, m in models.items():
        ratio = m["kiln_untuned_ms"] / m["xla_ms"] if m.get("kiln_untuned_ms") and m.get("xla_ms") else None
        tuned = m["kiln_tuned_ms"] / m["xla_ms"] if m.get("kiln_tuned_ms") and m.get("xla_ms") else None
        if ratio:
            ratios.append(ratio)
        verdict = {True: "pass", False: "**MISMATCH**", None: "-"}[m.get("validated")]
        note = (m.get("error") or "").replace("|", "\\|")[:160]
        lines.append(f"| {name} | {fmt(m.get('xla_ms'))} | {fmt(m.get('kiln_untuned_ms'))} | "
                     f"{fmt(ratio, '.2f')}{'×' if ratio else ''} | {fmt(m.get('kiln_tuned_ms'))} | "
                     f"{fmt(tuned, '.2f')}{'×' if tuned else ''} | "
                     f"{fmt(m.get('xla_p50_ms'), '.3f')} / {fmt(m.get('kiln_untuned_p50_ms'), '.3f')} | "
                     f"{fmt(m.get('max_abs_error'), '.3g')} | {verdict} | {note} |")
    if ratios:
        geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        lines.append(f"\ngeomean untuned / XLA over {len(ratios)} programs: {geomean:.2f}×")
    return "\n".join(lines)


def report(out_dir, results_json, names):
    names = names or sorted(n for n in os.listdir(out_dir) if os.path.isfile(os.path.join(out_dir, n, "result.json")))
    previous = (load(results_json) or {}).get("models", {})
    models, device = {}, None
    for name in names:
        record = load(os.path.join(out_dir, name, "result.json"))
        if record is None:
            continue
        for key in TUNED:
            if previous.get(name, {}).get(key) is not None:
                record[key] = previous[name][key]
        device = device or record.get("device")
        models[name] = record
    os.makedirs(os.path.dirname(os.path.abspath(results_json)), exist_ok=True)
    with open(results_json + ".tmp", "w") as f:
        json.dump({"device": device, "models": models}, f, indent=1)
        f.write("\n")
    os.replace(results_json + ".tmp", results_json)
    missing = [n for n in names if n not in models]
    print(f"device: {device}\n")
    print(table(models))
    if missing:
        print(f"\nnot measured yet: {' '.join(missing)}")


def main():
    args = sys.argv[1:]
    if len(args) == 4 and args[0] == "--one":
        one(*args[1:])
    elif len(args) >= 2 and args[0] != "--one":
        report(args[0], args[1], args[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

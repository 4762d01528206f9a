"""Prints the Markdown table of a bench_vs_jax.sh results folder."""
import json
import os
import sys


def main():
    results = sys.argv[1]
    rows = []
    for name in sorted(os.listdir(results)):
        d = os.path.join(results, name)
        try:
            jax = json.load(open(os.path.join(d, "jax.json")))
            bench = json.load(open(os.path.join(d, "bench.json")))
            validation = json.load(open(os.path.join(d, "validate.json")))
        except (OSError, ValueError) as e:
            rows.append(f"| {name} | failed: {e} | | | | | |")
            continue
        iree = bench["stats"]["p50_ms"]
        xla = jax["xla_p50_ms_default"]
        err = max(o["max_abs_error"] for o in validation["outputs"])
        rel = max(o["max_rel_error"] for o in validation["outputs"])
        verdict = "pass" if validation["passed"] else "MISMATCH"
        spread = " (wide spread)" if bench.get("spread_warning") else ""
        rows.append(f"| {name} | {iree:.4f}{spread} | {xla:.4f} | {jax['xla_p50_ms_highest']:.4f} | "
                    f"{iree / xla:.2f} | {err:.3g} (rel {rel:.2g}) | {verdict} |")
    device = ""
    for name in sorted(os.listdir(results)):
        try:
            device = json.load(open(os.path.join(results, name, "jax.json")))["device"]
            break
        except (OSError, ValueError):
            pass
    print(f"device: {device}\n")
    print("| model | kiln/IREE p50 ms | XLA p50 ms (default precision) | XLA p50 ms (highest) | IREE / XLA | max abs error vs JAX | validate |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

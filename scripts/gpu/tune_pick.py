"""Prints what a measured tuning bundle chose, for shell scripts.

usage: tune_pick.py BUNDLE_DIR (reference|winner)
Prints the module path, then the candidate's runtime flags, one per line.
(`kiln tune apply` makes the same choice; this reads the same two files on a
host that keeps no tuning database.)
"""
import json
import os
import sys


def main():
    bundle_dir, which = sys.argv[1], sys.argv[2]
    bundle = json.load(open(os.path.join(bundle_dir, "bundle.json")))
    results = json.load(open(os.path.join(bundle_dir, "results.json")))
    # Dispatch candidates (round 1) time one executable alone, not the program.
    programs = {c["id"] for c in bundle["candidates"] if not c.get("executable")}
    ok = [m for m in results["measurements"] if m["status"] == "ok" and m["id"] in programs]
    if which == "reference":
        chosen = "reference"
    else:
        chosen = min(ok, key=lambda m: m["latency_ms"])["id"]
    candidate = next(c for c in bundle["candidates"] if c["id"] == chosen)
    print(os.path.join(bundle_dir, candidate["module"]))
    for flag in candidate["runtime"]["flags"]:
        print(flag)


if __name__ == "__main__":
    main()

"""Compiles every exported zoo program for a list of targets, one compile at a
time, and prints a Markdown table: program, target, compiled, the first error
line, compile seconds. The table is rewritten after every compile (--table),
so a long run can be read while it goes.

usage: compile_table.py PROGRAMS_DIR [--kiln build/kiln] [--target T ...]
                        [--table FILE] [--modules DIR] [--invocation sync|async]
                        [--timeout S] [--json FILE] [NAME ...]

The serialized export (NAME.jaxexp) is compiled for targets of a JAX platform
(cpu, cuda:*, rocm:*), the StableHLO text (NAME.mlir) for the others (vulkan).
Compiles bypass kiln's cache, so the seconds are the compiler's. --json writes
the rows as {"rows": [{"program", "target", "compiled", "error", "seconds"}]}.
Exits 1 when a compile failed.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

DEFAULT_TARGETS = ["cpu", "cuda:h100"]


def source_for(programs, name, target):
    platform = target.split(":")[0]
    return os.path.join(programs, name + (".jaxexp" if platform in ("cpu", "cuda", "rocm") else ".mlir"))


def first_error(text):
    """The compiler's first diagnostic (file:line:col: error: ...) with the
    dispatch it names and how many dispatches fail, else kiln's own error line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if ": error: " in line and not line.startswith("kiln:")]
    if errors:
        where, _, what = lines[errors[0]].partition(": error: ")
        dispatches = []
        for i in errors:
            found = next((m.split('sym_name = "')[1].split('"')[0] for m in lines[i:i + 20] if 'sym_name = "' in m), None)
            if found and found not in dispatches and lines[i].partition(": error: ")[2] == what:
                dispatches.append(found)
        note = ""
        if dispatches:
            more = f"; {len(dispatches)} dispatches fail so" if len(dispatches) > 1 else ""
            note = f" ({dispatches[0]}{more})"
        return f"{os.path.basename(where)}: {what}{note}"[:300]
    crash = next((line for line in lines if line.startswith("LLVM ERROR:") or "Assertion" in line), None)
    if crash:
        where = next((line.split("on function '")[1].rstrip("'") for line in lines if "on function '@" in line), None)
        return (crash + (f" (in {where})" if where else ""))[:300]
    for line in lines:
        if "error" in line.lower():
            return line[:300]
    return lines[0][:300] if lines else "(no output)"


def compile_log(out_dir, name):
    """kiln's full log of the failed compile just made (NAME.TARGET.log)."""
    logs = glob.glob(os.path.join(out_dir, glob.escape(name) + ".*.log"))
    if not logs:
        return ""
    with open(max(logs, key=os.path.getmtime), errors="replace") as f:
        return f.read()


def compile_one(kiln, src, target, out_dir, invocation, timeout):
    argv = [kiln, "compile", src, "--target", target, "-o", out_dir, "--no-cache", "--invocation", invocation,
            "--timeout", str(timeout)]
    start = time.monotonic()
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30)
        ok = r.returncode == 0
        err = "" if ok else first_error((r.stderr or r.stdout) + "\n" + compile_log(out_dir, os.path.basename(src).rsplit(".", 1)[0]))
    except subprocess.TimeoutExpired:
        ok, err = False, f"kiln compile ran past {timeout + 30} s and was killed"
    return ok, err, time.monotonic() - start


def table(rows):
    out = ["| program | target | compiled | first error line | compile s |", "| --- | --- | --- | --- | ---: |"]
    for name, target, ok, err, seconds in rows:
        err = err.replace("|", "\\|")
        out.append(f"| {name} | {target} | {'yes' if ok else '**no**'} | {err} | {seconds:.1f} |")
    done = len(rows)
    good = sum(1 for r in rows if r[2])
    out.append(f"\n{good} of {done} compiled.")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("programs")
    parser.add_argument("names", nargs="*")
    parser.add_argument("--kiln", default="build/kiln")
    parser.add_argument("--target", action="append", dest="targets")
    parser.add_argument("--table", help="Markdown file rewritten after each compile")
    parser.add_argument("--header", default="", help="text put above the table in --table")
    parser.add_argument("--modules", help="where the modules go (default: a scratch folder, removed)")
    parser.add_argument("--invocation", default="async", choices=("sync", "async"))
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--json", help="write the rows as JSON here")
    opts = parser.parse_intermixed_args()
    names = opts.names or sorted(f[:-7] for f in os.listdir(opts.programs) if f.endswith(".jaxexp"))
    if not names:
        sys.exit(f"compile_table.py: no NAME.jaxexp in {opts.programs}: export the zoo first (bench/zoo/export.py)")
    import tempfile

    scratch = None
    out_dir = opts.modules
    if not out_dir:
        scratch = tempfile.TemporaryDirectory()
        out_dir = scratch.name
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for name in names:
        for target in opts.targets or DEFAULT_TARGETS:
            ok, err, seconds = compile_one(opts.kiln, source_for(opts.programs, name, target), target, out_dir,
                                           opts.invocation, opts.timeout)
            rows.append((name, target, ok, err, seconds))
            print(f"{name} {target}: {'ok' if ok else 'FAILED: ' + err} ({seconds:.1f} s)", file=sys.stderr)
            if opts.table:
                with open(opts.table + ".tmp", "w") as f:
                    f.write(opts.header + table(rows))
                os.replace(opts.table + ".tmp", opts.table)
    print(table(rows))
    if opts.json:
        keys = ("program", "target", "compiled", "error", "seconds")
        with open(opts.json, "w") as f:
            json.dump({"rows": [dict(zip(keys, r)) for r in rows]}, f, indent=1)
            f.write("\n")
    return 0 if all(r[2] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

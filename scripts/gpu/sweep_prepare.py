"""Compiler host: builds measurement bundles for a sweep of compiler options and
executable-configuration variants on top of the tuned H100 modules.

usage: sweep_prepare.py CARRY_DIR [ROUND_DIR [MODELS]]
environment: KILN_SWEEP_REFINE=1 for the second sweep (split-K 4, 8 and 16 with
  more tiles for the MLP; padding combined with reordering and with the
  horizontally fused projections for attention)

For each bench model it writes CARRY_DIR/sweep/<model>/ in the tuner's bundle
format (bundle.json, modules/), so that `kiln tune measure` on the GPU host
checks every candidate against the untuned reference module and times it the
same way as the tuner does. The first two candidates are the untuned module
and the tuned winner of ROUND_DIR (default: CARRY_DIR/tune2-async), with the
winner's runtime options; the others are the winner's configurations (or the
compiler's own) with one change each:

- pad: shared-memory padding on promoted SIMT contractions
  (`no_reduce_shared_memory_bank_conflicts = false`, which the compiler leaves
  `true` on that path);
- splitK<s>: `--iree-dispatch-creation-split-matmul-reduction=s`, untuned and
  with the split contractions retiled;
- hfuse: `--iree-dispatch-creation-enable-fuse-horizontal-contractions` (one
  dispatch for attention's three projections), untuned and with the tuned
  batch-matmul configurations carried over;
- reorder: `--iree-codegen-reorder-workgroups-strategy=transpose`;
- im2col: `--iree-global-opt-use-im2col-for-convs`.
"""
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
REFINE = False
BASE = ["--iree-hal-target-device=cuda", "--iree-cuda-target=sm_80", "--iree-execution-model=async-external"]


def iree_compile():
    found = glob.glob(os.path.join(ROOT, ".venv/lib/python3*/site-packages/iree/compiler/_mlir_libs/iree-compile"))
    if not found:
        sys.exit("iree-compile not found; run scripts/setup.sh")
    return found[0]


def winner_of(bundle_dir):
    bundle = json.load(open(os.path.join(bundle_dir, "bundle.json")))
    results = json.load(open(os.path.join(bundle_dir, "results.json")))
    ok = [m for m in results["measurements"] if m["status"] == "ok"]
    best = min(ok, key=lambda m: m["latency_ms"])
    return bundle, next(c for c in bundle["candidates"] if c["id"] == best["id"]), best


def pad(text):
    return text.replace("no_reduce_shared_memory_bank_conflicts = true", "no_reduce_shared_memory_bank_conflicts = false")


def retile(text, workgroup, thread, reduction, size):
    """Sets the root lowering_config (one per executable here) and the workgroup size."""
    config = (f"lowering_config = #iree_gpu.lowering_config<{{reduction = {reduction}, thread = {thread}, "
              f"workgroup = {workgroup}, promote_operands = [0, 1]}}>")
    text, n = re.subn(r"lowering_config = #iree_gpu\.lowering_config<\{[^}]*\}>", config, text)
    assert n == 1, n
    text, n = re.subn(r"workgroup_size = \[[0-9, ]*\]", f"workgroup_size = {size}", text)
    assert n == 1, n
    return text


def dump_configs(model, flags, work):
    d = tempfile.mkdtemp(dir=work)
    subprocess.run([iree_compile(), model, *BASE, *flags, f"--iree-hal-dump-executable-configurations-to={d}",
                    "-o", os.path.join(d, "x.vmfb")], check=True, capture_output=True)
    out = {}
    for f in sorted(glob.glob(os.path.join(d, "configured_*.mlir"))):
        exe = re.search(r"(main_dispatch_[0-9]+)\.mlir$", f).group(1)
        out[exe] = open(f).read()
    return out


def main():
    global REFINE
    REFINE = os.environ.get("KILN_SWEEP_REFINE") == "1"
    carry = os.path.abspath(sys.argv[1])
    rounds = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else os.path.join(carry, "tune2-async")
    work = tempfile.mkdtemp()
    models = sys.argv[3].split(",") if len(sys.argv) > 3 else ["attention", "conv", "gemm_bf16", "gemm_f32",
                                                               "layernorm_gelu", "mlp"]
    for name in models:
        src = os.path.join(rounds, name)
        model = os.path.join(carry, "bench-models", name + ".mlir")
        bundle, win, best = winner_of(src)
        runtime = win["runtime"]
        win_configs = {exe: open(os.path.join(src, rel)).read() for exe, rel in win["configs"].items()}
        out = os.path.join(carry, "sweep", name)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(os.path.join(out, "modules"))
        slug = bundle["target"]["slug"]
        ref = next(c for c in bundle["candidates"] if c["id"] == "reference")
        meta = os.path.join(src, ref["module"])[: -len(".vmfb")] + ".json"
        cands = []

        def copy(cid, module, rt, summary):
            dst = f"modules/{cid}.{slug}.vmfb"
            shutil.copy(os.path.join(src, module), os.path.join(out, dst))
            shutil.copy(meta, os.path.join(out, dst[: -len(".vmfb")] + ".json"))
            cands.append({"id": cid, "level": "reference" if cid == "reference" else "combined", "summary": summary,
                          "module": dst, "compile_flags": [], "configs": {}, "dispatches": {}, "runtime": rt})

        copy("reference", ref["module"], {"name": "defaults", "flags": []}, "the compiler's own choices")
        copy("winner", win["module"], runtime, "tuned winner " + best["id"])
        seen = {}

        def build(cid, flags, configs, summary):
            dst = f"modules/{cid}.{slug}.vmfb"
            cmd = [iree_compile(), model, *BASE, *flags]
            cdir = os.path.join(work, cid + "-" + name)
            if configs:
                os.makedirs(cdir)
                for exe, text in configs.items():
                    open(os.path.join(cdir, exe + ".mlir"), "w").write(text)
                cmd.append("--iree-hal-substitute-executable-configurations-from=" + cdir)
            r = subprocess.run(cmd + ["-o", os.path.join(out, dst)], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{name} {cid}: compile failed: {r.stderr.strip().splitlines()[0] if r.stderr.strip() else ''}")
                return
            digest = hashlib.sha256(open(os.path.join(out, dst), "rb").read()).hexdigest()
            if digest in seen:
                print(f"{name} {cid}: same module as {seen[digest]}")
                os.remove(os.path.join(out, dst))
                return
            seen[digest] = cid
            shutil.copy(meta, os.path.join(out, dst[: -len(".vmfb")] + ".json"))
            cands.append({"id": cid, "level": "combined", "summary": summary, "module": dst, "compile_flags": flags,
                          "configs": {}, "dispatches": {}, "runtime": runtime})
            print(f"{name} {cid}: ok")

        # The winner rebuilt here: its digest marks candidates that change nothing.
        build("winner-rebuilt", win["compile_flags"], win_configs, "the winner, rebuilt")
        if any("no_reduce_shared_memory_bank_conflicts = true" in t for t in win_configs.values()):
            build("pad", win["compile_flags"], {e: pad(t) for e, t in win_configs.items()}, "winner + shared-memory padding")
        if name in ("attention", "conv", "gemm_f32", "mlp") and not (REFINE and name == "mlp"):
            flag = "--iree-codegen-reorder-workgroups-strategy=transpose"
            build("reorder", win["compile_flags"] + [flag], win_configs, "winner + " + flag)
        if name == "conv":
            build("im2col", ["--iree-global-opt-use-im2col-for-convs"], {}, "im2col, untuned")
        if name == "attention":
            flag = "--iree-dispatch-creation-enable-fuse-horizontal-contractions"
            build("hfuse", [flag], {}, "horizontal fusion, untuned")
            hf = dump_configs(model, [flag], work)
            # hfuse renumbers: 3 -> 1 (QK^T), 5 -> 3 (PV); dispatch 0 fuses the projections.
            moved = {}
            for old, new in (("main_dispatch_3", "main_dispatch_1"), ("main_dispatch_5", "main_dispatch_3")):
                if old in win_configs:
                    moved[new] = win_configs[old].replace(old, new)
            build("hfuse-tuned", [flag], moved, "horizontal fusion + tuned batch matmuls")
            build("hfuse-tuned-pad", [flag], {e: pad(t) for e, t in moved.items()}, "hfuse-tuned + padding")
            if REFINE:
                build("pad-reorder", win["compile_flags"] + ["--iree-codegen-reorder-workgroups-strategy=transpose"],
                      {e: pad(t) for e, t in win_configs.items()}, "winner + padding + reorder")
            proj = hf["main_dispatch_0"]
            for k, (wg, th, size) in enumerate([("[64, 128, 1]", "[4, 8, 0]", "[16, 16, 1]"),
                                                ("[32, 128, 1]", "[4, 4, 0]", "[32, 8, 1]"),
                                                ("[128, 64, 1]", "[8, 4, 0]", "[16, 16, 1]")]):
                p = re.sub(r"lowering_config = #iree_gpu\.lowering_config<\{[^}]*\}>",
                           f"lowering_config = #iree_gpu.lowering_config<{{reduction = [0, 0, 32], thread = {th}, "
                           f"workgroup = {wg}}}>", proj)
                p = re.sub(r"workgroup_size = \[[0-9, ]*\]", f"workgroup_size = {size}", p)
                build(f"hfuse-tuned-proj{k}", [flag], dict(moved, main_dispatch_0=p),
                      f"hfuse-tuned + projections workgroup={wg} thread={th}")
                build(f"hfuse-tuned-proj{k}-pad", [flag], {e: pad(t) for e, t in dict(moved, main_dispatch_0=p).items()},
                      f"hfuse-tuned-pad + projections workgroup={wg} thread={th}")
        if name == "mlp":
            d0 = {"A": ("[1, 128, 64, 1]", "[1, 8, 4, 0]", "[16, 16, 1]"), "B": ("[1, 64, 64, 1]", "[1, 4, 4, 0]", "[16, 16, 1]")}
            d2 = {"A": ("[1, 64, 32, 1]", "[1, 4, 4, 0]", "[8, 16, 1]"), "B": ("[1, 64, 64, 1]", "[1, 4, 4, 0]", "[16, 16, 1]")}
            d0["C"] = ("[1, 64, 128, 1]", "[1, 4, 8, 0]", "[16, 16, 1]")
            d2["C"] = ("[1, 32, 64, 1]", "[1, 4, 4, 0]", "[16, 8, 1]")
            splits = (4, 8, 16) if REFINE else (2, 4, 8)
            pairs = (("A", "A"), ("A", "C"), ("C", "A"), ("C", "C"), ("B", "C")) if REFINE else (("A", "A"), ("A", "B"), ("B", "A"))
            for s in splits:
                flag = f"--iree-dispatch-creation-split-matmul-reduction={s}"
                if not REFINE:
                    build(f"splitK{s}", [flag], {}, f"split-K {s}, untuned")
                cfg = dump_configs(model, [flag], work)
                for a, b in pairs:
                    c = dict(cfg)
                    c["main_dispatch_0"] = retile(cfg["main_dispatch_0"], *d0[a][:2], "[0, 0, 0, 32]", d0[a][2])
                    c["main_dispatch_2"] = retile(cfg["main_dispatch_2"], *d2[b][:2], "[0, 0, 0, 32]", d2[b][2])
                    build(f"splitK{s}-{a}{b}", [flag], c, f"split-K {s}, matmuls retiled {a}/{b}")
                    build(f"splitK{s}-{a}{b}-pad", [flag], {e: pad(t) for e, t in c.items()},
                          f"split-K {s}, matmuls retiled {a}/{b}, padding")
        doc = dict(bundle)
        doc["round"] = 1
        doc["candidates"] = cands
        doc["dropped"] = []
        json.dump(doc, open(os.path.join(out, "bundle.json"), "w"), indent=2)
        print(f"{name}: {len(cands)} candidates")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Checks and times kiln's GEMM kernels (PTX) on a CUDA GPU, next to cuBLAS and XLA.

Each kernel is loaded from its PTX (the driver compiles it for the GPU, as
when IREE loads a module), given its shape and operands through `kiln_args`
exactly as kiln instantiates it for a dispatch, and launched the way the
compiler's configuration would launch it (grid, block, dynamic shared
memory). Results are compared with a float32 product of the same 16-bit
inputs (TF32 off) on fresh random inputs, the output poisoned with NaN
first; times are CUDA-event medians over many back-to-back launches.

    python3 gemm_bench.py KERNELS.json [--out results.json] [--sizes 4096,4096,4096 ...]

KERNELS.json lists {"name", "ptx", "threads", "smem", "config": [tile_m,
tile_n], "input": "bf16"|"f16", "output": "f32"|"same", "bindings": 2|3}.
Needs CuPy and PyTorch (JAX optional).
"""
import argparse
import json
import os
import statistics
import sys
import time
import warnings

import cupy as cp
import numpy as np
import torch


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("kernels")
    p.add_argument("--out")
    p.add_argument("--sizes", nargs="*", default=["4096,4096,4096", "2048,8192,1024", "1024,512,4096"])
    p.add_argument("--time-size", default="4096,4096,4096")
    p.add_argument("--launches", type=int, default=20, help="launches per timed batch")
    p.add_argument("--batches", type=int, default=15)
    return p.parse_args()


def median_ms(launch, launches, batches):
    for _ in range(3):
        launch()
    torch.cuda.synchronize()
    times = []
    for _ in range(batches):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(launches):
            launch()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / launches)
    return statistics.median(times), min(times), max(times)


class Kernel:
    def __init__(self, spec):
        self.spec = spec
        self.module = cp.RawModule(path=spec["ptx"])
        self.function = self.module.get_function(spec.get("entry", "kiln_gemm"))
        self.function.max_dynamic_shared_size_bytes = spec["smem"]
        self.args = self.module.get_global("kiln_args")

    def prepare(self, m, n, k, a, b, c):
        """Places A, B and C as the dispatch would and returns the launch."""
        s = self.spec
        if s["bindings"] == 3:
            buffers = [a, b, c]
            places = [0, 0, 1, 0, 2, 0]
        else:  # A and B in one buffer (as after the f16-inputs conversion), C in the other
            ab = torch.empty(a.numel() + b.numel(), dtype=a.dtype, device="cuda")
            ab[: a.numel()].copy_(a.view(-1))
            ab[a.numel():].copy_(b.view(-1))
            buffers = [ab, c]
            places = [0, 0, 0, a.numel() * a.element_size(), 1, 0]
            self._keep = ab
        host = np.array([m, n, k] + places, dtype=np.uint64)
        self.args.copy_from_host(host.ctypes.data, host.nbytes)
        grid = (n // s["config"][1], m // s["config"][0], 1)
        ptrs = tuple(np.uint64(t.data_ptr()) for t in buffers)
        stream = torch.cuda.current_stream().cuda_stream

        def launch():
            with cp.cuda.ExternalStream(stream):
                self.function(grid, (s["threads"], 1, 1), ptrs, shared_mem=s["smem"])
        return launch


def torch_type(name):
    return {"bf16": torch.bfloat16, "f16": torch.float16}[name]


def check(kernel, m, n, k, gen):
    s = kernel.spec
    dt = torch_type(s["input"])
    a = torch.randn(m, k, generator=gen, device="cuda").to(dt)
    b = torch.randn(k, n, generator=gen, device="cuda").to(dt)
    out_dt = torch.float32 if s["output"] == "f32" else dt
    c = torch.full((m, n), float("nan"), dtype=out_dt, device="cuda")
    launch = kernel.prepare(m, n, k, a, b, c)
    launch()
    # A kernel that deadlocks would hold the GPU until the process dies: give up after 5 s.
    deadline = time.monotonic() + 5
    while not torch.cuda.current_stream().query():
        if time.monotonic() > deadline:
            print(f"{s['name']}: no result after 5 s at {m}x{n}x{k}: stopping", flush=True)
            os._exit(3)
        time.sleep(0.001)
    torch.cuda.synchronize()
    ref = a.float() @ b.float()
    got = c.float()
    finite = bool(torch.isfinite(got).all())
    err = float((got - ref).norm() / ref.norm()) if finite else float("nan")
    # A rounded result: it should be the reference rounded, up to f32 summation order.
    tol = 1e-5 if s["output"] == "f32" else 5e-3
    return {"finite": finite, "rel_err": err, "ok": finite and err < tol}, (a, b, c, launch)


def main():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    o = parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    props = torch.cuda.get_device_properties(0)
    sms = cp.RawKernel(r'''extern "C" __global__ void f(unsigned* o) {
        unsigned v; asm("mov.u32 %0, %%nsmid;" : "=r"(v)); o[0] = v; }''', "f")
    nsmid = cp.zeros(1, dtype=cp.uint32)
    sms((1,), (1,), (nsmid,))
    info = {"device": props.name, "multiprocessors": props.multi_processor_count, "nsmid": int(nsmid[0])}
    print(json.dumps(info), flush=True)
    results = {"info": info, "kernels": {}, "reference": {}}
    gen = torch.Generator(device="cuda")
    gen.manual_seed(7)
    tm, tn, tk = (int(x) for x in o.time_size.split(","))
    flops = 2.0 * tm * tn * tk
    for dt_name in ("bf16", "f16"):
        dt = torch_type(dt_name)
        a = torch.randn(tm, tk, generator=gen, device="cuda").to(dt)
        b = torch.randn(tk, tn, generator=gen, device="cuda").to(dt)
        ms = median_ms(lambda: torch.matmul(a, b), o.launches, o.batches)
        results["reference"][f"torch_{dt_name}"] = {"ms": ms, "tflops": flops / ms[0] / 1e9}
    try:
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        import jax
        import jax.numpy as jnp
        ka, kb = jax.random.split(jax.random.PRNGKey(0))
        ja = jax.random.normal(ka, (tm, tk), jnp.float32).astype(jnp.bfloat16)
        jb = jax.random.normal(kb, (tk, tn), jnp.float32).astype(jnp.bfloat16)
        f = jax.jit(lambda x, y: jnp.matmul(x, y, preferred_element_type=jnp.float32).astype(jnp.bfloat16))
        f(ja, jb).block_until_ready()
        times = []
        for _ in range(o.batches):
            t0 = time.perf_counter()
            for _ in range(o.launches):
                out = f(ja, jb)
            out.block_until_ready()
            times.append((time.perf_counter() - t0) * 1e3 / o.launches)
        ms = statistics.median(times)
        results["reference"]["jax_bf16"] = {"ms": [ms, min(times), max(times)], "tflops": flops / ms / 1e9}
    except Exception as e:
        results["reference"]["jax_bf16"] = {"error": repr(e)}
    print(json.dumps(results["reference"]), flush=True)
    specs = json.load(open(o.kernels))
    for spec in specs:
        r = results["kernels"][spec["name"]] = {"checks": {}}
        kernel = None
        try:
            kernel = Kernel(spec)
            for size in o.sizes:
                m, n, k = (int(x) for x in size.split(","))
                gen.manual_seed(hash((spec["name"], size)) & 0xFFFF)
                r["checks"][size], _ = check(kernel, m, n, k, gen)
            gen.manual_seed(7)
            res, (a, b, c, launch) = check(kernel, tm, tn, tk, gen)
            r["timed_check"] = res
            ms = median_ms(launch, o.launches, o.batches)
            r["ms"] = ms
            r["tflops"] = flops / ms[0] / 1e9
        except Exception as e:  # report and go on with the next variant
            r["error"] = repr(e)
        print(spec["name"], json.dumps(r), flush=True)
        del kernel
    if o.out:
        json.dump(results, open(o.out, "w"), indent=1)
    print(f"\n{info['device']}, {tm}x{tn}x{tk}: name, ms (median), TFLOP/s, checks")
    for name, r in results["kernels"].items():
        if "error" in r:
            print(f"{name:28s} ERROR {r['error'][:200]}")
            continue
        checks = " ".join(f"{'ok' if c['ok'] else 'FAIL'}:{c['rel_err']:.1e}" for c in list(r["checks"].values()) + [r["timed_check"]])
        print(f"{name:28s} {r['ms'][0]:.4f} {r['tflops']:6.1f}  {checks}")
    for name, r in results["reference"].items():
        if "error" in r:
            print(f"{name:28s} ERROR {r['error'][:200]}")
        else:
            print(f"{name:28s} {r['ms'][0]:.4f} {r['tflops']:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

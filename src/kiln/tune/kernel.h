// kiln's own kernels as tuning candidates. A CUDA matmul dispatch that kiln
// recognizes (C = A x B, row-major, 16-bit inputs, f32 accumulation, an f32
// or rounded 16-bit result, static shape) can run kiln's tensor-core kernel
// (src/kiln/kernels/gemm_mma.cu: ldmatrix, a cp.async pipeline, mma.sync)
// in place of the compiler's. The compiler still builds the dispatch, its
// launch and its bindings; the kernel object replaces only the code, through
// --iree-hal-substitute-executable-objects-from. The tuner measures it and
// validates its outputs like any other candidate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/tune/executable.h"
#include "kiln/util/error.h"

namespace kiln::tune {

struct KernelChoice {
  std::string id;                       // "kernel", "kernel-wide": part of the candidate's id
  std::string summary;                  // "kiln kernel: bf16 -> bf16, 128x128x32 tiles, 3 stages"
  std::string ptx;                      // the kernel, named and parameterized for this dispatch
  std::vector<int64_t> workgroup_size;  // the launch the kernel needs
  // The configuration the dispatch is compiled with so that its launch fits
  // the kernel (block size, dynamic shared memory); empty: any
  // configuration with `workgroup_size` will do.
  Fields root;
};

// Whether this build of kiln carries its kernels (it needs nvcc to build
// them), and its Hopper kernel (an nvcc that builds for sm_90a: CUDA 12.0 on).
bool kernels_available();
bool hopper_kernels_available();

// kiln's kernels for one dispatch compiled for the GPU architecture `arch`
// (kiln's resolved target: "sm_90" for cuda:h100), or why there is none (an
// error whose message says what does not match). Up to four:
//   kernel:      128 x 128 x 32 tiles, 128 threads, 3 stages in static shared
//                memory: any launch of 128 threads;
//   kernel-k64:  128 x 128 x 64 tiles, 128 threads, 2 stages in the launch's
//                dynamic shared memory;
//   kernel-wide: 128 x 256 x 64 tiles, 256 threads, likewise;
//   kernel-wgmma: Hopper only (arch sm_90 or sm_90a): 128 x 256 x 64 tiles,
//                256 threads, wgmma.mma_async from 3 stages in the
//                launch's dynamic shared memory; it needs an MMA
//                dispatch with M divisible by 128, N by 512 and K by 128. Its
//                PTX targets sm_90a, so a module holding it loads on Hopper
//                GPUs only.
// The compiler sizes a launch's shared memory from its own tiles, so the two
// dynamic variants come with a configuration kiln writes (an M x N x 128
// tile asks for about (M + N) x 256 bytes); they need an MMA dispatch whose
// K divides by 128 (and N by 256 for the wide one).
Result<std::vector<KernelChoice>> kernels_for(const Executable& exe, const std::string& arch);

}  // namespace kiln::tune

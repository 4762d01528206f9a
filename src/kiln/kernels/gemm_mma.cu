// kiln's tensor-core matrix multiply for CUDA tuning candidates.
//
// C[M][N] = A[M][K] * B[K][N], all row-major, 16-bit inputs (bf16 or f16),
// f32 accumulation, f32 or 16-bit output (rounded to nearest even, like the
// compiler's arith.truncf). It replaces the kernel of one matmul dispatch
// through the compiler's executable substitution, so its ABI is the one the
// compiler gives that dispatch: one pointer per binding and no push
// constants. Which binding (and byte offset in it) holds A, B and C, and the
// shape, are not in the ABI: they live in `kiln_args`, whose initializer kiln
// rewrites in the PTX text for each dispatch (src/kiln/tune/kernel.cpp).
// The launch (grid, block, dynamic shared memory) stays the compiler's, so
// the kernel walks the output tiles with a grid-stride loop and uses only
// static shared memory; kiln checks the block size matches and that the
// tiles divide the shape.
//
// Structure: a CTA tile of BM x BN x BK in a multi-stage cp.async pipeline,
// XOR-swizzled shared memory read with ldmatrix, mma.sync m16n8k16, tiles
// ordered in groups of 8 rows for L2 reuse.
//
// Regenerate the PTX with scripts/gen-kernels.sh (a ctest checks it is
// current where nvcc is installed).
#include <cstdint>

// M, N, K, then binding index and byte offset of A, B and C.
extern "C" __device__ unsigned long long kiln_args[9] = {128, 128, 32, 0, 0, 1, 0, 2, 0};

// KILN_GEMM_STAGED 0 writes the result straight from the registers (kept to
// measure the difference).
#ifndef KILN_GEMM_STAGED
#define KILN_GEMM_STAGED 1
#endif

namespace {

constexpr bool kStaged = KILN_GEMM_STAGED;  // the result goes out through shared memory

constexpr int kGroupM = 8;   // tile rows per raster group

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(dst)), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

template <bool kBf16>
__device__ __forceinline__ void mma(float* c, const uint32_t* a, const uint32_t* b) {
  if constexpr (kBf16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
}

// Two f32 values as a pair of 16-bit floats, rounded to nearest even.
template <bool kBf16>
__device__ __forceinline__ uint32_t pack(float lo, float hi) {
  uint32_t r;
  if constexpr (kBf16) {
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  } else {
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  }
  return r;
}

// A stage of A is BM rows of BK / 8 16-byte chunks. With 4 chunks a row
// (BK 32), chunk c of row r sits at c ^ ((r >> 1) & 3); with 8 (BK 64), at
// c ^ (r & 7): either way the 8 rows one ldmatrix reads hit 8 bank groups.
template <int BK>
__device__ __forceinline__ int a_offset(int row, int chunk) {
  if constexpr (BK == 32) {
    return row * BK + ((chunk ^ ((row >> 1) & 3)) << 3);
  } else {
    static_assert(BK == 64, "BK is 32 or 64");
    return row * BK + ((chunk ^ (row & 7)) << 3);
  }
}
// A stage of B is 32 rows of BN/8 chunks; chunk c of row k sits at c ^ (k & 7).
template <int BN>
__device__ __forceinline__ int b_offset(int k, int chunk) { return k * BN + ((chunk ^ (k & 7)) << 3); }

// kOut: 0 f32, 1 the 16-bit input type. kStages stages of shared memory:
// static when kDynamic is false, else from the launch's dynamic shared
// memory (`smem`, which must hold them).
template <int BM, int BN, int BK, int WM, int WN, int kStages, bool kDynamic, bool kBf16, int kOut>
__device__ __forceinline__ void gemm(char* b0, char* b1, char* b2, uint16_t* smem) {
  auto at = [&](int i) { return (kiln_args[i] == 0 ? b0 : kiln_args[i] == 1 ? b1 : b2) + kiln_args[i + 1]; };
  const uint16_t* __restrict__ A = reinterpret_cast<const uint16_t*>(at(3));
  const uint16_t* __restrict__ B = reinterpret_cast<const uint16_t*>(at(5));
  void* __restrict__ C = at(7);
  constexpr int kWarpsN = BN / WN;
  constexpr int kThreads = (BM / WM) * kWarpsN * 32;
  constexpr int kMt = WM / 16, kNt = WN / 8;
  constexpr int kStage = (BM + BN) * BK;  // elements
  __shared__ __align__(128) uint16_t fixed[kDynamic ? 1 : kStages * kStage];
  uint16_t* const stages = kDynamic ? smem : fixed;
  auto sA = [&](int stage) { return stages + stage * kStage; };
  auto sB = [&](int stage) { return stages + stage * kStage + BM * BK; };

  const int M = static_cast<int>(kiln_args[0]), N = static_cast<int>(kiln_args[1]),
            K = static_cast<int>(kiln_args[2]);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / kWarpsN, wn = warp % kWarpsN;
  const int tiles_m = M / BM, tiles_n = N / BN, k_tiles = K / BK;
  const int blocks = gridDim.x * gridDim.y * gridDim.z;
  const int block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);

  for (int tile = block; tile < tiles_m * tiles_n; tile += blocks) {
    const int group = kGroupM * tiles_n, first_m = (tile / group) * kGroupM;
    const int group_rows = min(tiles_m - first_m, kGroupM);
    const int tm = first_m + (tile % group) % group_rows, tn = (tile % group) / group_rows;
    const uint16_t* a_tile = A + static_cast<int64_t>(tm) * BM * K;
    const uint16_t* b_tile = B + tn * BN;

    auto load = [&](int stage, int kt) {
      for (int i = tid; i < BM * BK / 8; i += kThreads) {
        int row = i / (BK / 8), chunk = i % (BK / 8);
        cp_async16(sA(stage) + a_offset<BK>(row, chunk), a_tile + static_cast<int64_t>(row) * K + kt * BK + chunk * 8);
      }
      for (int i = tid; i < BK * BN / 8; i += kThreads) {
        int k = i / (BN / 8), chunk = i % (BN / 8);
        cp_async16(sB(stage) + b_offset<BN>(k, chunk), b_tile + static_cast<int64_t>(kt * BK + k) * N + chunk * 8);
      }
    };

    float acc[kMt][kNt][4];
#pragma unroll
    for (int i = 0; i < kMt; ++i)
#pragma unroll
      for (int j = 0; j < kNt; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
      if (s < k_tiles) load(s, s);
      cp_async_commit();
    }
    for (int kt = 0; kt < k_tiles; ++kt) {
      cp_async_wait<kStages - 2>();
      __syncthreads();
      const int next = kt + kStages - 1;
      if (next < k_tiles) load(next % kStages, next);
      cp_async_commit();
      const uint16_t* a_s = sA(kt % kStages);
      const uint16_t* b_s = sB(kt % kStages);
#pragma unroll
      for (int kk = 0; kk < BK / 16; ++kk) {
        uint32_t a[kMt][4], b[kNt][2];
#pragma unroll
        for (int i = 0; i < kMt; ++i) {
          int row = wm * WM + i * 16 + (lane & 15);
          ldmatrix_x4(a[i], a_s + a_offset<BK>(row, kk * 2 + (lane >> 4)));
        }
#pragma unroll
        for (int j = 0; j < kNt / 2; ++j) {
          int k = kk * 16 + (lane & 15);
          int chunk = (wn * WN + j * 16) / 8 + (lane >> 4);
          uint32_t r[4];
          ldmatrix_x4_trans(r, b_s + b_offset<BN>(k, chunk));
          b[2 * j][0] = r[0];
          b[2 * j][1] = r[1];
          b[2 * j + 1][0] = r[2];
          b[2 * j + 1][1] = r[3];
        }
#pragma unroll
        for (int i = 0; i < kMt; ++i)
#pragma unroll
          for (int j = 0; j < kNt; ++j) mma<kBf16>(acc[i][j], a[i], b[j]);
      }
    }
    cp_async_wait<0>();
    __syncthreads();  // the stages are free: the epilogue may use them

    // The result tile goes through shared memory (rows padded by 16 bytes,
    // so a warp's stores hit distinct banks) and out in coalesced 16-byte
    // stores, where the stages have room for it; else straight from the
    // registers, two values a store.
    constexpr int kOutBytes = kOut == 0 ? 4 : 2;
    constexpr int kPitch = BN + 16 / kOutBytes;  // elements of a staged row
    if constexpr (kStaged && BM * kPitch * kOutBytes <= kStages * kStage * 2) {
      char* staged = reinterpret_cast<char*>(stages);
#pragma unroll
      for (int i = 0; i < kMt; ++i) {
#pragma unroll
        for (int j = 0; j < kNt; ++j) {
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            const int r = wm * WM + i * 16 + (lane >> 2) + half * 8, c = wn * WN + j * 8 + (lane & 3) * 2;
            const float lo = acc[i][j][2 * half], hi = acc[i][j][2 * half + 1];
            char* at = staged + (r * kPitch + c) * kOutBytes;
            if constexpr (kOut == 0) {
              *reinterpret_cast<float2*>(at) = make_float2(lo, hi);
            } else {
              *reinterpret_cast<uint32_t*>(at) = pack<kBf16>(lo, hi);
            }
          }
        }
      }
      __syncthreads();
      constexpr int kChunksPerRow = BN * kOutBytes / 16;
      for (int q = tid; q < BM * kChunksPerRow; q += kThreads) {
        const int r = q / kChunksPerRow, chunk = q % kChunksPerRow;
        const int4 v = *reinterpret_cast<const int4*>(staged + r * kPitch * kOutBytes + chunk * 16);
        char* out = static_cast<char*>(C) + (static_cast<int64_t>(tm * BM + r) * N + tn * BN) * kOutBytes + chunk * 16;
        *reinterpret_cast<int4*>(out) = v;
      }
      __syncthreads();  // the next tile's first loads overwrite the stages
    } else {
#pragma unroll
      for (int i = 0; i < kMt; ++i) {
#pragma unroll
        for (int j = 0; j < kNt; ++j) {
          const int row = tm * BM + wm * WM + i * 16 + (lane >> 2);
          const int col = tn * BN + wn * WN + j * 8 + (lane & 3) * 2;
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            const int64_t at = static_cast<int64_t>(row + half * 8) * N + col;
            const float lo = acc[i][j][2 * half], hi = acc[i][j][2 * half + 1];
            if constexpr (kOut == 0) {
              *reinterpret_cast<float2*>(static_cast<float*>(C) + at) = make_float2(lo, hi);
            } else {
              *reinterpret_cast<uint32_t*>(static_cast<uint16_t*>(C) + at) = pack<kBf16>(lo, hi);
            }
          }
        }
      }
    }
  }
}

// The kernel in the launch's dynamic shared memory, with as many stages (3
// or 2) as it holds.
template <int BM, int BN, int BK, bool kBf16, int kOut>
__device__ __forceinline__ void gemm_dynamic(char* b0, char* b1, char* b2) {
  extern __shared__ __align__(128) uint16_t dynamic_smem[];
  constexpr unsigned kStageBytes = (BM + BN) * BK * 2;
  unsigned bytes;
  asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(bytes));
  if (bytes >= 3 * kStageBytes) {
    gemm<BM, BN, BK, 64, 64, 3, true, kBf16, kOut>(b0, b1, b2, dynamic_smem);
  } else if (bytes >= 2 * kStageBytes) {
    gemm<BM, BN, BK, 64, 64, 2, true, kBf16, kOut>(b0, b1, b2, dynamic_smem);
  } else {
    __trap();  // a launch without the shared memory kiln asked for
  }
}

}  // namespace

// One entry point per variant, chosen at build time: KILN_GEMM_IN (1 bf16,
// 0 f16), KILN_GEMM_OUT (0 f32, 1 the input type), KILN_GEMM_BINDINGS (2 or
// 3) and KILN_GEMM_SHAPE, the block and its tiles (warps of 64 x 64):
//   0: 128 threads, 128 x 128 x 32 tiles, 3 stages in 48 KiB of static
//      shared memory: runs in any launch of 128 threads;
//   1: 128 threads, 128 x 128 x 64 tiles, stages of 32 KiB in the launch's
//      dynamic shared memory (2 in the 66 KiB kiln's configuration gives);
//   2: 256 threads, 128 x 256 x 64 tiles, stages of 48 KiB in the launch's
//      dynamic shared memory (2 in the 98 KiB kiln's configuration gives).
// On an H100 (4096^3 bf16, per call, result staged through shared memory):
// 0.508, 0.455 and 0.472 ms; written straight from the registers 0.519, 0.482
// and 0.481 ms; 4 stages of 128 x 128 x 64 (one block a multiprocessor) 0.610.
// kiln renames the entry to the dispatch's export name.
#ifndef KILN_GEMM_IN
#define KILN_GEMM_IN 1
#define KILN_GEMM_OUT 1
#define KILN_GEMM_BINDINGS 3
#define KILN_GEMM_SHAPE 0
#endif

constexpr bool kInBf16 = KILN_GEMM_IN == 1;
constexpr int kThreadsPerBlock = KILN_GEMM_SHAPE == 2 ? 256 : 128;

extern "C" __global__ void __launch_bounds__(kThreadsPerBlock)
#if KILN_GEMM_BINDINGS == 2
kiln_gemm(char* b0, char* b1) {
  char* const b2 = nullptr;
#else
kiln_gemm(char* b0, char* b1, char* b2) {
#endif
#if KILN_GEMM_SHAPE == 0
  gemm<128, 128, 32, 64, 64, 3, false, kInBf16, KILN_GEMM_OUT>(b0, b1, b2, nullptr);
#elif KILN_GEMM_SHAPE == 1
  gemm_dynamic<128, 128, 64, kInBf16, KILN_GEMM_OUT>(b0, b1, b2);
#else
  gemm_dynamic<128, 256, 64, kInBf16, KILN_GEMM_OUT>(b0, b1, b2);
#endif
}

// kiln's Hopper (sm_90a) tensor-core matrix multiply for CUDA tuning candidates.
//
// C[M][N] = A[M][K] * B[K][N], all row-major, 16-bit inputs (bf16 or f16),
// f32 accumulation, f32 or 16-bit output (rounded to nearest even). The ABI
// is gemm_mma.cu's: one pointer per binding, no push constants, the shape and
// the place of each operand in `kiln_args`, whose initializer kiln rewrites
// for each dispatch; the launch (grid, block, dynamic shared memory) is the
// compiler's, for a configuration kiln writes (src/kiln/tune/kernel.cpp).
//
// Structure: a 128 x 256 output tile per block of 256 threads (two
// warpgroups), K in steps of 64.
//   - Each warpgroup owns 64 rows of the tile: wgmma.mma_async m64n256k16
//     from shared-memory matrix descriptors, 128 f32 accumulators a thread.
//   - Shared memory: stages of A (128 x 64, K-major) and B (64 x 256,
//     N-major, so transposed for wgmma), each in the 128-byte swizzled layout;
//     as many 48 KiB stages (2 to 4; 3 in the launch kiln configures) as the
//     launch's dynamic shared memory holds, each with a `full` and an `empty`
//     mbarrier.
//   - Every thread copies its share of a stage with 16-byte cp.async, run
//     num_stages - 1 K steps ahead; the copies make the stage's `full`
//     barrier complete when they land (cp.async.mbarrier.arrive.noinc), and
//     a stage is refilled once both warpgroups have marked it `empty`, which
//     each does when the wgmma reading it have retired (wgmma.wait_group 1).
//     The compiler's launch of such a block is 256 threads: a warpgroup that
//     only copies (as with the bulk copy engine) would need a third one, and
//     a 384-thread launch is not one the compiler makes for a matmul.
//   - The blocks walk the output tiles in groups of 8 tile rows (L2 reuse);
//     with KILN_WGMMA_PERSISTENT only as many blocks as the GPU has
//     multiprocessors work and the rest exit, so that a block's next tile
//     loads while its last one is written out.
#include <cstdint>

// M, N, K, then binding index and byte offset of A, B and C.
extern "C" __device__ unsigned long long kiln_args[9] = {128, 256, 64, 0, 0, 1, 0, 2, 0};

#ifndef KILN_WGMMA_PERSISTENT
#define KILN_WGMMA_PERSISTENT 1
#endif
// KILN_WGMMA_STATIC_STAGE 1: one more stage in static shared memory, next
// to the launch's dynamic shared memory (which the compiler's configuration
// caps at 163 KiB). Built and assembled, not yet run on a GPU: off.
#ifndef KILN_WGMMA_STATIC_STAGE
#define KILN_WGMMA_STATIC_STAGE 0
#endif
// KILN_WGMMA_CLUSTER 2: blocks work in pairs (a cluster of 2) on tiles
// (2i, n) and (2i + 1, n); each copies half of the B tile they share from
// global memory and forwards it to the other's shared memory with the bulk
// copy engine, so a pair reads B from L2 once. Built and assembled, not yet
// run on a GPU: off.
#ifndef KILN_WGMMA_CLUSTER
#define KILN_WGMMA_CLUSTER 0
#endif
constexpr int kCluster = KILN_WGMMA_CLUSTER > 1 ? 2 : 1;
#ifndef KILN_WGMMA_PROXY_FENCE
#define KILN_WGMMA_PROXY_FENCE 1
#endif
// B's matrix descriptor: byte offsets between its 64-column blocks and
// between its groups of 8 K-rows.
#ifndef KILN_WGMMA_B_LEADING
#define KILN_WGMMA_B_LEADING 8192
#define KILN_WGMMA_B_STRIDE 1024
#endif

namespace {

constexpr int BM = 128, BN = 256, BK = 64;
#ifndef KILN_WGMMA_GROUP_M
#define KILN_WGMMA_GROUP_M 8
#endif
constexpr int kGroupM = KILN_WGMMA_GROUP_M;  // tile rows per raster group
constexpr unsigned kStageA = BM * BK * 2;               // 16 KiB
constexpr unsigned kStageBytes = kStageA + BK * BN * 2;  // 48 KiB
constexpr unsigned kMaxStages = 5;
constexpr int kThreads = 256;

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void mbar_init(uint32_t bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, unsigned parity) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
      "@!p bra WAIT_%=;\n"
      "}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

// KILN_WGMMA_L2_PREFETCH: 0, or 128 / 256 for cp.async's L2 prefetch hint.
#ifndef KILN_WGMMA_L2_PREFETCH
#define KILN_WGMMA_L2_PREFETCH 0
#endif
__device__ __forceinline__ void mbar_expect(uint32_t bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
// The same shared-memory place in the cluster's block `rank`.
__device__ __forceinline__ uint32_t peer_addr(uint32_t addr, unsigned rank) {
  uint32_t r;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(r) : "r"(addr), "r"(rank));
  return r;
}
__device__ __forceinline__ void mbar_arrive_peer(uint32_t cluster_bar) {
  asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];\n" ::"r"(cluster_bar) : "memory");
}
// `bytes` from this block's shared memory to the same place in block
// `rank`'s, completing there on its barrier `bar`.
__device__ __forceinline__ void bulk_to_peer(uint32_t src, unsigned bytes, uint32_t bar, unsigned rank) {
  asm volatile(
      "cp.async.bulk.shared::cluster.shared::cta.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
          peer_addr(src, rank)),
      "r"(src), "r"(bytes), "r"(peer_addr(bar, rank))
      : "memory");
}
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src) {
#if KILN_WGMMA_L2_PREFETCH == 128
  asm volatile("cp.async.cg.shared.global.L2::128B [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
#elif KILN_WGMMA_L2_PREFETCH == 256
  asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
#else
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
#endif
}
// The barrier gets one arrival once all of this thread's cp.async so far have landed.
__device__ __forceinline__ void cp_async_arrive(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}

// A shared-memory matrix descriptor for the 128-byte swizzle: start address,
// leading and stride byte offsets (all in 16-byte units), layout type 1.
__device__ __forceinline__ uint64_t descriptor(uint32_t addr, uint32_t leading, uint32_t stride) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | static_cast<uint64_t>(leading >> 4) << 16 |
         static_cast<uint64_t>(stride >> 4) << 32 | 1ull << 62;
}

#define KILN_F4(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3])
#define KILN_F16(i) KILN_F4(i), KILN_F4(i + 4), KILN_F4(i + 8), KILN_F4(i + 12)
#define KILN_D128                                                                                       \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, " \
  "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, "  \
  "%42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, "  \
  "%62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, "  \
  "%82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, "      \
  "%101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, "      \
  "%117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}"

// d (64 x 256 of the warpgroup, 128 a thread) += A (K-major) * B (N-major, so
// transposed for wgmma); `accumulate` 0 overwrites d.
template <bool kBf16>
__device__ __forceinline__ void wgmma_m64n256k16(float* d, uint64_t a, uint64_t b, int accumulate) {
  if constexpr (kBf16) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 " KILN_D128 ", %128, %129, p, 1, 1, 0, 1;\n}\n"
        : KILN_F16(0), KILN_F16(16), KILN_F16(32), KILN_F16(48), KILN_F16(64), KILN_F16(80), KILN_F16(96),
          KILN_F16(112)
        : "l"(a), "l"(b), "r"(accumulate));
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 " KILN_D128 ", %128, %129, p, 1, 1, 0, 1;\n}\n"
        : KILN_F16(0), KILN_F16(16), KILN_F16(32), KILN_F16(48), KILN_F16(64), KILN_F16(80), KILN_F16(96),
          KILN_F16(112)
        : "l"(a), "l"(b), "r"(accumulate));
  }
}

// Keeps the compiler from moving accesses to the accumulators across the
// asynchronous wgmma that own them.
__device__ __forceinline__ void fence_acc(float* d) {
#pragma unroll
  for (int i = 0; i < 128; ++i) asm volatile("" : "+f"(d[i])::"memory");
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

// The stages: the first `dynamic` in the launch's dynamic shared memory,
// one more (when `fixed` is set) in static shared memory; then the barriers,
// `full` and `empty` for each stage.
struct Ring {
  uint32_t base, fixed, full, empty, half;  // half: this block's part of B landed (cluster of 2)
  unsigned dynamic, count;
  __device__ __forceinline__ uint32_t stage(unsigned s) const { return s < dynamic ? base + s * kStageBytes : fixed; }
};

// The tiles one block computes: first, first + step, ... below count, each
// K / 64 steps deep; `at` gives a tile's place, grouped by kGroupM tile rows.
struct Tiles {
  int tiles_m, tiles_n, k_tiles, first, step;
  __device__ __forceinline__ void at(int tile, int& tm, int& tn) const {
    const int group = kGroupM * tiles_n, first_m = (tile / group) * kGroupM;
    const int group_rows = min(tiles_m - first_m, kGroupM);
    tm = first_m + (tile % group) % group_rows;
    tn = (tile % group) / group_rows;
  }
};

// Where this thread copies from and to: each stage's A is 128 rows of 8
// 16-byte chunks (K-major), its B 64 K-rows of 32 chunks in 4 blocks of 64
// columns (N-major), and chunk c of a 128-byte row r lands at c ^ (r % 8).
// Thread p copies A chunk p % 8 of rows p / 8 + 32 j (j < 4) and B chunk
// p % 32 of rows p / 32 + 8 j (j < 8): the same swizzled column each time.
// In a cluster of 2, block `rank` copies only B's column blocks 2 rank and
// 2 rank + 1 (16 KiB), chunk p % 16 of rows p / 16 + 16 j (j < 4).
struct Loader {
  const char *A, *B;
  int N, K;
  uint32_t a_dst, b_dst;
  int a_row, a_chunk, b_row, b_col;
  static constexpr int kBCols = 32 / kCluster;  // B chunks a row this block copies
  __device__ __forceinline__ void init(int p, unsigned rank) {
    a_chunk = p % 8;
    a_row = p / 8;
    a_dst = a_row * 128 + ((a_chunk ^ (a_row % 8)) << 4);
    b_col = p % kBCols + rank * kBCols;
    b_row = p / kBCols;
    b_dst = (b_col / 8) * (BK * 128) + b_row * 128 + (((b_col % 8) ^ (b_row % 8)) << 4);
  }
  // K step kt of tile (tm, tn) into the stage at `stage`: A, then B.
  __device__ __forceinline__ void load_a(uint32_t stage, int tm, int kt) const {
    const char* a = A + (static_cast<int64_t>(tm * BM + a_row) * K + kt * BK + a_chunk * 8) * 2;
#pragma unroll
    for (int j = 0; j < 4; ++j) cp_async16(stage + a_dst + j * 32 * 128, a + static_cast<int64_t>(j) * 32 * K * 2);
  }
  __device__ __forceinline__ void load_b(uint32_t stage, int tn, int kt) const {
    constexpr int kRows = 256 / kBCols;  // rows a pass of the block's threads covers
    const char* b = B + (static_cast<int64_t>(kt * BK + b_row) * N + tn * BN + b_col * 8) * 2;
#pragma unroll
    for (int j = 0; j < BK / kRows; ++j) {
      cp_async16(stage + kStageA + b_dst + j * kRows * 128, b + static_cast<int64_t>(j) * kRows * N * 2);
    }
  }
};

template <bool kBf16, int kOut>
__device__ __forceinline__ void store_tile(const float* d, char* C, int N, int row0, int col0, int t) {
  const int row = row0 + (t / 32) * 16 + (t % 32) / 4, col = col0 + (t % 4) * 2;
#pragma unroll
  for (int i = 0; i < 32; ++i) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t at = static_cast<int64_t>(row + half * 8) * N + col + i * 8;
      const float lo = d[4 * i + 2 * half], hi = d[4 * i + 2 * half + 1];
      if constexpr (kOut == 0) {
        *reinterpret_cast<float2*>(C + at * 4) = make_float2(lo, hi);
      } else {
        *reinterpret_cast<uint32_t*>(C + at * 2) = pack<kBf16>(lo, hi);
      }
    }
  }
}

// The block's whole sequence of K steps, over all its tiles, runs through
// one ring of stages; the copies run num_stages - 1 steps ahead of the
// wgmma, across tile boundaries, so the next tile's first stages load while
// a tile is written out. Step j uses stage j % num_stages, whose barriers
// are in phase j / num_stages. In a cluster of 2, a stage is full once this
// block's copies and the other block's half of B have landed, and empty once
// the warps of both blocks have released it; thread 0 forwards this block's
// half of B for step j + num_stages - 2 while step j's wgmma run.
template <bool kBf16, int kOut>
__device__ __forceinline__ void run(const Tiles& t, Loader& ld, char* C, const Ring& ring, unsigned rank) {
  const unsigned num_stages = ring.count;
  const uint32_t full = ring.full, empty = ring.empty;
  const int wg = threadIdx.x / 128, thread = threadIdx.x % 128;
  const int count = t.tiles_m * t.tiles_n;
  if (t.first >= count) return;
  auto place = [&](int tile, int& tm, int& tn) {
    t.at(tile, tm, tn);
    tm = tm * kCluster + rank;
  };
  // The copy cursor: step `next` is K step load_kt of tile load_tile.
  unsigned next = 0, forwarded = 0;
  int load_tile = t.first, load_kt = 0;
  auto issue = [&]() {
    const unsigned s = next % num_stages;
    mbar_wait(empty + 8 * s, ((next / num_stages) & 1) ^ 1);
    int tm, tn;
    place(load_tile, tm, tn);
    ld.load_b(ring.stage(s), tn, load_kt);
    if constexpr (kCluster == 2) {
      cp_async_arrive(ring.half + 8 * s);
      if (threadIdx.x == 0) mbar_expect(full + 8 * s, BK * BN);  // the other block's half of B
    }
    ld.load_a(ring.stage(s), tm, load_kt);
    cp_async_arrive(full + 8 * s);
    ++next;
    if (++load_kt == t.k_tiles) {
      load_kt = 0;
      load_tile += t.step;
    }
  };
  auto forward = [&](unsigned upto) {
    for (; forwarded < next && forwarded <= upto; ++forwarded) {
      const unsigned s = forwarded % num_stages;
      mbar_wait(ring.half + 8 * s, (forwarded / num_stages) & 1);
      asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
      bulk_to_peer(ring.stage(s) + kStageA + rank * (BK * BN), BK * BN, full + 8 * s, rank ^ 1);
    }
  };
  auto release = [&](unsigned s) {
    if constexpr (kCluster == 2) {
      __syncwarp();
      if (threadIdx.x % 32 == 0) {
        mbar_arrive(empty + 8 * s);
        mbar_arrive_peer(peer_addr(empty + 8 * s, rank ^ 1));
      }
    } else {
      mbar_arrive(empty + 8 * s);
    }
  };
  for (unsigned i = 0; i + 1 < num_stages && load_tile < count; ++i) issue();

  float d[128];
  unsigned step = 0;
  for (int tile = t.first; tile < count; tile += t.step) {
    for (int kt = 0; kt < t.k_tiles; ++kt, ++step) {
      const unsigned s = step % num_stages;
      if (kCluster == 2 && threadIdx.x == 0) forward(step);
      mbar_wait(full + 8 * s, (step / num_stages) & 1);
#if KILN_WGMMA_PROXY_FENCE
      asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
      const uint32_t sa = ring.stage(s) + wg * 64 * 128, sb = ring.stage(s) + kStageA;
      fence_acc(d);
      asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
      for (int kk = 0; kk < BK / 16; ++kk) {
        // A: 16 K-columns are 32 bytes of each swizzled row, 8-row groups
        // 1 KiB apart. B: 16 K-rows are 2 KiB, 8-row groups 1 KiB apart,
        // 64-column blocks 8 KiB apart.
        wgmma_m64n256k16<kBf16>(d, descriptor(sa + kk * 32, 16, 1024),
                                descriptor(sb + kk * 2048, KILN_WGMMA_B_LEADING, KILN_WGMMA_B_STRIDE), kt > 0 || kk > 0);
      }
      asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
      if (kCluster == 2 && threadIdx.x == 0) forward(step + num_stages - 2);
      asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
      fence_acc(d);
      if (kt > 0) release((step - 1) % num_stages);
      if (load_tile < count) issue();
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    fence_acc(d);
    release((step - 1) % num_stages);
    int tm, tn;
    place(tile, tm, tn);
#ifdef KILN_WGMMA_NO_STORE  // measures the main loop alone: a store that never happens
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < 128; ++i) sum += d[i];
    if (sum == -1.2345e30f) *reinterpret_cast<float*>(C) = sum;
#else
    store_tile<kBf16, kOut>(d, C, ld.N, tm * BM + wg * 64, tn * BN, thread);
#endif
  }
  asm volatile("cp.async.wait_all;\n" ::: "memory");
}

template <bool kBf16, int kOut>
__device__ __forceinline__ void gemm(char* b0, char* b1, char* b2) {
  extern __shared__ __align__(1024) char smem[];
  auto at = [&](int i) { return (kiln_args[i] == 0 ? b0 : kiln_args[i] == 1 ? b1 : b2) + kiln_args[i + 1]; };
  unsigned rank = 0;  // in the cluster
  if constexpr (kCluster == 2) asm("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
  Loader ld;
  ld.A = at(3);
  ld.B = at(5);
  ld.N = static_cast<int>(kiln_args[1]);
  ld.K = static_cast<int>(kiln_args[2]);
  ld.init(threadIdx.x, rank);
  unsigned bytes;
  asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(bytes));
  Ring ring{};
  ring.base = smem_addr(smem);
  ring.dynamic = min(bytes / (kStageBytes + 24), kMaxStages - KILN_WGMMA_STATIC_STAGE);
  ring.count = ring.dynamic;
#if KILN_WGMMA_STATIC_STAGE
  __shared__ __align__(1024) char fixed[kStageBytes];
  ring.fixed = smem_addr(fixed);
  ring.count += 1;
#endif
  // a launch without the shared memory kiln asked for
  if (ring.count < 2 || ring.base % 1024 != 0 || ring.fixed % 1024 != 0) __trap();
  ring.full = ring.base + ring.dynamic * kStageBytes;
  ring.empty = ring.full + 8 * ring.count;
  ring.half = ring.empty + 8 * ring.count;
  if (ring.half + 8 * ring.count > ring.base + bytes) __trap();

  // The tiles, in units of kCluster tile rows: a block's tile row is
  // kCluster * row + rank.
  Tiles t{static_cast<int>(kiln_args[0]) / BM / kCluster, ld.N / BN, ld.K / BK, 0, 0};
  int blocks = gridDim.x * gridDim.y * gridDim.z;
  t.first = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  if constexpr (kCluster == 2) {
    unsigned x, y, z, nx, ny, nz;
    asm("mov.u32 %0, %%clusterid.x;\nmov.u32 %1, %%clusterid.y;\nmov.u32 %2, %%clusterid.z;" : "=r"(x), "=r"(y), "=r"(z));
    asm("mov.u32 %0, %%nclusterid.x;\nmov.u32 %1, %%nclusterid.y;\nmov.u32 %2, %%nclusterid.z;" : "=r"(nx), "=r"(ny), "=r"(nz));
    blocks = nx * ny * nz;
    t.first = x + nx * (y + ny * z);
  }
  t.step = blocks;
#if KILN_WGMMA_PERSISTENT
  unsigned sms;
  asm("mov.u32 %0, %%nsmid;" : "=r"(sms));
  t.step = min(blocks, static_cast<int>(sms) / kCluster);
  if (t.first >= t.step) return;  // the whole cluster returns
#endif
  if (threadIdx.x == 0) {
    for (unsigned s = 0; s < ring.count; ++s) {
      mbar_init(ring.full + 8 * s, kThreads + (kCluster == 2));  // + the arrival that expects the other half of B
      mbar_init(ring.empty + 8 * s, kCluster == 2 ? 2 * kThreads / 32 : kThreads);  // warps of both blocks, or threads
      mbar_init(ring.half + 8 * s, kThreads);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  if constexpr (kCluster == 2) {
    cluster_sync();  // the other block's barriers exist before anything arrives on them
    run<kBf16, kOut>(t, ld, at(7), ring, rank);
    cluster_sync();  // and this block's stay until the other block is done with them
  } else {
    __syncthreads();
    run<kBf16, kOut>(t, ld, at(7), ring, rank);
  }
}

}  // namespace

// One entry point per variant, chosen at build time: KILN_GEMM_IN (1 bf16,
// 0 f16), KILN_GEMM_OUT (0 f32, 1 the input type), KILN_GEMM_BINDINGS (2 or
// 3). kiln renames the entry to the dispatch's export name.
#ifndef KILN_GEMM_IN
#define KILN_GEMM_IN 1
#define KILN_GEMM_OUT 1
#define KILN_GEMM_BINDINGS 3
#endif

extern "C" __global__ void __launch_bounds__(kThreads, 1)
#if KILN_WGMMA_CLUSTER > 1
__cluster_dims__(1, 2, 1)  // pairs along the compiler's grid rows (M / 64 of them: even)
#endif
#if KILN_GEMM_BINDINGS == 2
kiln_gemm(char* b0, char* b1) {
  char* const b2 = nullptr;
#else
kiln_gemm(char* b0, char* b1, char* b2) {
#endif
  gemm<KILN_GEMM_IN == 1, KILN_GEMM_OUT>(b0, b1, b2);
}

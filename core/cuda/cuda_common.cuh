// cuda_common.cuh: what the CUDA twins of the op set share.
//
// Status checks turn cudaError_t and cublasStatus_t into SRL_ECUDA with file:line. Ops that
// return void (most of the table) cannot report a failure themselves: they record the first one,
// and sync() or the next reduction reports it. Everything runs on the legacy default stream, so
// ops queue behind each other, downloads wait for them, and cuBLAS shares the order.
//
// Also here: launch geometry for grid-stride loops, warp and row reductions (one warp or one
// block per row), the column reduction behind bias / layernorm / shared log-std gradients, and
// the full reduction behind sum / sumsq / mse / the PPO loss. The last two use one persistent
// device scratch (grown only when a call needs more) held under a lock from first kernel to
// last, so concurrent host threads cannot interleave their partial sums.
#ifndef SRL_CUDA_COMMON_CUH
#define SRL_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/ops.h"

#define SRL_CUDA_THREADS 256                    // threads per block everywhere
#define SRL_CUDA_WARPS (SRL_CUDA_THREADS / 32)  // warps per block
#define SRL_CUDA_REDUCE_BLOCKS 1024             // most partial sums of a full reduction
#define SRL_CUDA_SLOT_BYTES 256                 // scratch head: the device result slot

//---- status -----------------------------------------------------------------------------------

// 0 when e is cudaSuccess; else SRL_ECUDA with "file:line: expr: cudaErrorName (description)"
// in srl_errmsg(). A non-sticky error is cleared so later launch checks do not report it again.
int srl__cuda_status(cudaError_t e, const char *expr, const char *file, int line);
int srl__cublas_status(cublasStatus_t s, const char *expr, const char *file, int line);

#define SRL_CUDA_CHECK(expr) srl__cuda_status((expr), #expr, __FILE__, __LINE__)
#define SRL_CUBLAS_CHECK(expr) srl__cublas_status((expr), #expr, __FILE__, __LINE__)

// keep the first failure (code < 0, srl_errmsg() set) of an op that returns void; sync() and the
// reductions hand it back. srl__cuda_take_pending returns it once (0 when none), message restored.
void srl__cuda_record(int code);
int srl__cuda_take_pending(void);

// record a failed runtime call of a void op
#define SRL_CUDA_RECORD(expr)                 \
  do {                                        \
    int srl__rc_ = SRL_CUDA_CHECK(expr);      \
    if (srl__rc_) srl__cuda_record(srl__rc_); \
  } while (0)

// after a kernel launch: a bad configuration (or an earlier asynchronous fault) is recorded
static inline int srl__cuda_launched(const char *kernel, const char *file, int line) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return 0;
  int rc = srl__cuda_status(e, kernel, file, line);
  srl__cuda_record(rc);
  return rc;
}
#define SRL_CUDA_LAUNCHED(kernel) srl__cuda_launched("launch of " kernel, __FILE__, __LINE__)

//---- the device ---------------------------------------------------------------------------------

extern int srl__cuda_sm_count;  // multiprocessors of the device, set once at initialisation
cublasHandle_t srl__cuda_cublas(void);

// blocks for a grid-stride loop over n > 0 items: enough for a few waves, no more
static inline unsigned srl__cuda_grid(size_t n) {
  size_t blocks = (n + SRL_CUDA_THREADS - 1) / SRL_CUDA_THREADS;
  size_t cap = (size_t)srl__cuda_sm_count * 16;
  return (unsigned)(blocks < cap ? blocks : cap);
}

// threads per row of a row kernel: one warp for short rows, the whole block for long ones
static inline int srl__cuda_row_threads(int cols) {
  return cols <= 256 ? 32 : SRL_CUDA_THREADS;
}

// blocks for a row kernel with tpr threads per row
static inline unsigned srl__cuda_row_grid(int rows, int tpr) {
  int per_block = SRL_CUDA_THREADS / tpr;
  size_t blocks = ((size_t)rows + per_block - 1) / per_block;
  size_t cap = (size_t)srl__cuda_sm_count * 32;
  return (unsigned)(blocks < cap ? blocks : cap);
}

//---- scratch ------------------------------------------------------------------------------------

// lock the shared device scratch and make it at least `bytes` long; on failure (a negative code,
// message set) the lock is not held. Release after the last kernel that uses it is queued.
int srl__cuda_scratch_acquire(void **scratch, size_t bytes);
void srl__cuda_scratch_release(void);

// pinned host float that a reduction's result is copied into (use under the scratch lock)
float *srl__cuda_host_slot(void);

// the families fill their entries of the table
void srl__cuda_fill_linalg(srl_ops *t);
void srl__cuda_fill_act(srl_ops *t);
void srl__cuda_fill_norm(srl_ops *t);
void srl__cuda_fill_elementwise(srl_ops *t);
void srl__cuda_fill_reduce(srl_ops *t);
void srl__cuda_fill_optim(srl_ops *t);
void srl__cuda_fill_policy(srl_ops *t);

//---- warp and row reductions -------------------------------------------------------------------

// butterfly sums: every lane ends with the bitwise same value (each step adds a commuted pair)
static __device__ __forceinline__ float srl__warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

static __device__ __forceinline__ double srl__warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

static __device__ __forceinline__ float srl__warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// sum over the TPR threads of a row (32: the warp; SRL_CUDA_THREADS: the block, through sh of
// SRL_CUDA_WARPS floats). Every thread of the row gets the same value. With TPR = block, every
// thread of the block must call it (the row loop is uniform over the block).
template <int TPR>
static __device__ __forceinline__ float srl__row_sum(float v, float *sh) {
  v = srl__warp_sum(v);
  if (TPR <= 32) return v;
  __syncthreads();  // readers of the previous reduction are done with sh
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
  __syncthreads();
  float s = 0.0f;
  for (int w = 0; w < TPR / 32; w++) s += sh[w];
  return s;
}

template <int TPR>
static __device__ __forceinline__ float srl__row_max(float v, float *sh) {
  v = srl__warp_max(v);
  if (TPR <= 32) return v;
  __syncthreads();
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
  __syncthreads();
  float m = sh[0];
  for (int w = 1; w < TPR / 32; w++) m = fmaxf(m, sh[w]);
  return m;
}

//---- column reduction: out0[c] += Σ_r f(r, c).x, out1[c] += Σ_r f(r, c).y ----------------------
//
// Rows are cut into chunks; a block of 32 columns × 8 row lanes sums one chunk (coalesced reads
// along a row), writing one partial per (chunk, column) to the scratch; a second kernel adds the
// chunks in order, in double. The chunking depends on the shape alone, so results are the same on
// every run and every GPU.

#define SRL_COL_TILE 32
#define SRL_COL_LANES 8
#define SRL_COL_MAX_CHUNKS 1024

template <class F>
static __global__ void srl__col_partials_kernel(float2 *partial, int rows, int cols,
                                                int rows_per_chunk, F f) {
  __shared__ float2 sh[SRL_COL_LANES][SRL_COL_TILE];
  int c = blockIdx.x * SRL_COL_TILE + threadIdx.x;
  int r0 = blockIdx.y * rows_per_chunk;
  int r1 = min(rows, r0 + rows_per_chunk);
  float2 acc = make_float2(0.0f, 0.0f);
  if (c < cols) {
    for (int r = r0 + threadIdx.y; r < r1; r += SRL_COL_LANES) {
      float2 v = f(r, c);
      acc.x += v.x;
      acc.y += v.y;
    }
  }
  sh[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float2 s = sh[0][threadIdx.x];
    for (int l = 1; l < SRL_COL_LANES; l++) {
      s.x += sh[l][threadIdx.x].x;
      s.y += sh[l][threadIdx.x].y;
    }
    partial[(size_t)blockIdx.y * cols + c] = s;
  }
}

// (a template only so that files which do not use it get no unused-kernel warning)
template <int UNUSED>
static __global__ void srl__col_finish_kernel(float *out0, float *out1, const float2 *partial,
                                              int chunks, int cols) {
  for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += gridDim.x * blockDim.x) {
    double s0 = 0.0, s1 = 0.0;
    for (int k = 0; k < chunks; k++) {
      float2 v = partial[(size_t)k * cols + c];
      s0 += v.x;
      s1 += v.y;
    }
    if (out0) out0[c] += (float)s0;
    if (out1) out1[c] += (float)s1;
  }
}

template <class F>
static void srl__cuda_col_reduce(float *out0, float *out1, int rows, int cols, F f) {
  if (rows <= 0 || cols <= 0 || (!out0 && !out1)) return;
  int chunks = (rows + 63) / 64;
  if (chunks > SRL_COL_MAX_CHUNKS) chunks = SRL_COL_MAX_CHUNKS;
  int rows_per_chunk = (rows + chunks - 1) / chunks;
  chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
  void *scratch = NULL;
  int rc = srl__cuda_scratch_acquire(&scratch, (size_t)chunks * cols * sizeof(float2));
  if (rc < 0) {
    srl__cuda_record(rc);
    return;
  }
  float2 *partial = (float2 *)scratch;
  dim3 grid((unsigned)((cols + SRL_COL_TILE - 1) / SRL_COL_TILE), (unsigned)chunks);
  dim3 block(SRL_COL_TILE, SRL_COL_LANES);
  srl__col_partials_kernel<F><<<grid, block>>>(partial, rows, cols, rows_per_chunk, f);
  if (SRL_CUDA_LAUNCHED("srl__col_partials_kernel") == 0) {
    unsigned fblocks = (unsigned)((cols + SRL_CUDA_THREADS - 1) / SRL_CUDA_THREADS);
    srl__col_finish_kernel<0><<<fblocks, SRL_CUDA_THREADS>>>(out0, out1, partial, chunks, cols);
    SRL_CUDA_LAUNCHED("srl__col_finish_kernel");
  }
  srl__cuda_scratch_release();
}

//---- full reduction: scale·Σ_i f(i) back on the host --------------------------------------------
//
// Each block sums its grid-stride share in double into one partial; a one-block kernel adds the
// partials in order and writes the float result to the scratch head, which is copied to a pinned
// host slot. The block count depends on n alone (deterministic); the call waits for the result.

static inline int srl__cuda_reduce_blocks(size_t n) {
  size_t blocks = (n + SRL_CUDA_THREADS * 8 - 1) / (SRL_CUDA_THREADS * 8);
  if (blocks < 1) blocks = 1;
  return (int)(blocks < SRL_CUDA_REDUCE_BLOCKS ? blocks : SRL_CUDA_REDUCE_BLOCKS);
}

template <class F>
static __global__ void srl__reduce_partials_kernel(double *partial, size_t n, F f) {
  __shared__ double sh[SRL_CUDA_WARPS];
  double acc = 0.0;
  size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) acc += f(i);
  acc = srl__warp_sum(acc);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double s = 0.0;
    for (int w = 0; w < SRL_CUDA_WARPS; w++) s += sh[w];
    partial[blockIdx.x] = s;
  }
}

// add `blocks` partials, scale, bring the float to the host (waits); NAN on failure (recorded)
float srl__cuda_reduce_finish(const double *partial, int blocks, double scale, float *slot);

template <class F>
static float srl__cuda_reduce(size_t n, double scale, F f) {
  int blocks = srl__cuda_reduce_blocks(n);
  void *scratch = NULL;
  int rc = srl__cuda_scratch_acquire(&scratch, SRL_CUDA_SLOT_BYTES + blocks * sizeof(double));
  if (rc < 0) {
    srl__cuda_record(rc);
    return NAN;
  }
  double *partial = (double *)((char *)scratch + SRL_CUDA_SLOT_BYTES);
  float result = NAN;
  srl__reduce_partials_kernel<F><<<blocks, SRL_CUDA_THREADS>>>(partial, n, f);
  if (SRL_CUDA_LAUNCHED("srl__reduce_partials_kernel") == 0)
    result = srl__cuda_reduce_finish(partial, blocks, scale, (float *)scratch);
  srl__cuda_scratch_release();
  return result;
}

#endif  // SRL_CUDA_COMMON_CUH

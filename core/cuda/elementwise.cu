// elementwise.cu: CUDA twins of dropout and the elementwise ops (fill, mul, add, axpby, scale),
// each a grid-stride loop.
//
// Dropout masks come from the stateless srl_hash_uniform(seed, i) of core/rng.h, the very function
// the CPU twin calls, and the keep scale 1/(1 − p) is computed on the host (fast math would
// approximate the division on the device), so masks and outputs are bitwise those of the CPU.
#include <string.h>

#include "core/cuda/cuda_common.cuh"
#include "core/rng.h"

#define GRID_STRIDE(i, n)                                                 \
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (size_t)gridDim.x * blockDim.x)


//---- dropout ----------------------------------------------------------------------------------

static __global__ void dropout_kernel(float *out, float *mask, const float *in, size_t n, float p,
                                      float keep_scale, uint64_t seed) {
  GRID_STRIDE(i, n) {
    float m = (p <= 0.0f || srl_hash_uniform(seed, i) >= p) ? keep_scale : 0.0f;
    mask[i] = m;
    out[i] = in[i] * m;
  }
}


static void cuda_dropout_forward(float *out, float *mask, const float *in, size_t n, float p,
                                 uint64_t seed) {
  if (n == 0) return;
  float keep_scale = p > 0 ? 1.0f / (1.0f - p) : 1.0f;
  dropout_kernel<<<srl__cuda_grid(n), SRL_CUDA_THREADS>>>(out, mask, in, n, p, keep_scale, seed);
  SRL_CUDA_LAUNCHED("dropout_kernel");
}


//---- elementwise ------------------------------------------------------------------------------

static __global__ void fill_kernel(float *x, float value, size_t n) {
  GRID_STRIDE(i, n) x[i] = value;
}

static __global__ void mul_kernel(float *out, const float *a, const float *b, size_t n) {
  GRID_STRIDE(i, n) out[i] = a[i] * b[i];
}

static __global__ void add_kernel(float *out, const float *a, const float *b, size_t n) {
  GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}

// y = a·x + b·y; b = 0 never reads y, so NaNs there are overwritten
static __global__ void axpby_kernel(float *y, float a, const float *x, float b, size_t n) {
  if (b == 0.0f) {
    GRID_STRIDE(i, n) y[i] = a * x[i];
  } else {
    GRID_STRIDE(i, n) y[i] = a * x[i] + b * y[i];
  }
}

static __global__ void scale_kernel(float *x, float a, size_t n) {
  GRID_STRIDE(i, n) x[i] *= a;
}


static void cuda_fill(float *x, float value, size_t n) {
  if (n == 0) return;
  uint32_t bits;
  memcpy(&bits, &value, sizeof bits);
  if (bits == 0) {  // +0.0: a memset
    SRL_CUDA_RECORD(cudaMemsetAsync(x, 0, n * sizeof *x, (cudaStream_t)0));
    return;
  }
  fill_kernel<<<srl__cuda_grid(n), SRL_CUDA_THREADS>>>(x, value, n);
  SRL_CUDA_LAUNCHED("fill_kernel");
}


static void cuda_mul(float *out, const float *a, const float *b, size_t n) {
  if (n == 0) return;
  mul_kernel<<<srl__cuda_grid(n), SRL_CUDA_THREADS>>>(out, a, b, n);
  SRL_CUDA_LAUNCHED("mul_kernel");
}


static void cuda_add(float *out, const float *a, const float *b, size_t n) {
  if (n == 0) return;
  add_kernel<<<srl__cuda_grid(n), SRL_CUDA_THREADS>>>(out, a, b, n);
  SRL_CUDA_LAUNCHED("add_kernel");
}


static void cuda_axpby(float *y, float a, const float *x, float b, size_t n) {
  if (n == 0) return;
  axpby_kernel<<<srl__cuda_grid(n), SRL_CUDA_THREADS>>>(y, a, x, b, n);
  SRL_CUDA_LAUNCHED("axpby_kernel");
}


static void cuda_scale(float *x, float a, size_t n) {
  if (n == 0) return;
  scale_kernel<<<srl__cuda_grid(n), SRL_CUDA_THREADS>>>(x, a, n);
  SRL_CUDA_LAUNCHED("scale_kernel");
}


void srl__cuda_fill_elementwise(srl_ops *t) {
  t->dropout_forward = cuda_dropout_forward;
  t->fill = cuda_fill;
  t->mul = cuda_mul;
  t->add = cuda_add;
  t->axpby = cuda_axpby;
  t->scale = cuda_scale;
}

// optim.cu: CUDA twin of the Adam / AdamW step (PyTorch's formulation), one fused elementwise
// kernel over parameters, gradients and both moments.
//
// The step's scalars (bias corrections, decoupled decay) are computed on the host in double
// exactly as the CPU twin does, so both devices apply the same per-element formula.
#include <math.h>

#include "core/cuda/cuda_common.cuh"

struct adam_scalars {
  float b1, b2, eps;
  float step_size;     // lr / (1 − b1ᵗ)
  float inv_sqrt_bc2;  // 1 / √(1 − b2ᵗ)
  float decay;         // 1 − lr·wd for AdamW, else 1
  float l2;            // wd for Adam (added to the gradient), else 0
};


// m = b1·m + (1−b1)·g;  v = b2·v + (1−b2)·g²;  p = decay·p − step_size·m / (√v/√bc2 + eps)
static __global__ void adam_kernel(float *param, const float *grad, float *m, float *v, size_t n,
                                   adam_scalars s) {
  size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    float p0 = param[i];
    float g = grad[i] + s.l2 * p0;
    float mi = s.b1 * m[i] + (1.0f - s.b1) * g;
    float vi = s.b2 * v[i] + (1.0f - s.b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = p0 * s.decay - s.step_size * mi / (sqrtf(vi) * s.inv_sqrt_bc2 + s.eps);
  }
}


static void cuda_adam_update(float *param, const float *grad, float *m, float *v, size_t n,
                             const srl_adam_step *st) {
  if (n == 0) return;
  adam_scalars s;
  s.b1 = st->beta1;
  s.b2 = st->beta2;
  s.eps = st->eps;
  s.step_size = (float)(st->lr / (1.0 - pow(st->beta1, st->step)));
  s.inv_sqrt_bc2 = (float)(1.0 / sqrt(1.0 - pow(st->beta2, st->step)));
  s.decay = st->decoupled ? 1.0f - st->lr * st->weight_decay : 1.0f;
  s.l2 = st->decoupled ? 0.0f : st->weight_decay;
  adam_kernel<<<srl__cuda_grid(n), SRL_CUDA_THREADS>>>(param, grad, m, v, n, s);
  SRL_CUDA_LAUNCHED("adam_kernel");
}


void srl__cuda_fill_optim(srl_ops *t) {
  t->adam_update = cuda_adam_update;
}

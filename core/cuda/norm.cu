// norm.cu: CUDA twins of the normalisation ops: layernorm and softmax, forward and backward.
//
// Row kernels give each row one warp (rows of up to 256 columns) or one block (longer rows);
// the row statistics are warp-shuffle / shared-memory sums. The layernorm parameter gradients
// are column sums over rows (the column reduction of cuda_common.cuh), added (+=) into dw, db.
#include "core/cuda/cuda_common.cuh"

#define LN_EPS 1e-5f

// rows handled by one block, and the loop over them; with TPR = block the loop is block-uniform
#define ROW_LOOP(r, TPR)                                                                \
  for (int r = blockIdx.x * (SRL_CUDA_THREADS / (TPR)) + threadIdx.x / (TPR); r < rows; \
       r += gridDim.x * (SRL_CUDA_THREADS / (TPR)))


//---- layernorm --------------------------------------------------------------------------------

// out = (in − mean)·rstd·w + b with the biased variance, as PyTorch; out may alias in
template <int TPR>
static __global__ void layernorm_forward_kernel(float *out, float *mean, float *rstd,
                                                const float *in, const float *w, const float *b,
                                                int rows, int cols, float inv_cols) {
  __shared__ float sh[SRL_CUDA_WARPS];
  int t = threadIdx.x % TPR;
  ROW_LOOP(r, TPR) {
    const float *x = in + (size_t)r * cols;
    float *o = out + (size_t)r * cols;
    float s = 0.0f;
    for (int j = t; j < cols; j += TPR) s += x[j];
    float mu = srl__row_sum<TPR>(s, sh) * inv_cols;
    float ss = 0.0f;
    for (int j = t; j < cols; j += TPR) {
      float d = x[j] - mu;
      ss += d * d;
    }
    float rs = rsqrtf(srl__row_sum<TPR>(ss, sh) * inv_cols + LN_EPS);
    for (int j = t; j < cols; j += TPR) o[j] = (x[j] - mu) * rs * w[j] + b[j];
    if (t == 0) {
      mean[r] = mu;
      rstd[r] = rs;
    }
  }
}


// din = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = dout·w; din may alias dout
template <int TPR>
static __global__ void layernorm_backward_kernel(float *din, const float *dout, const float *in,
                                                 const float *w, const float *mean,
                                                 const float *rstd, int rows, int cols,
                                                 float inv_cols) {
  __shared__ float sh[SRL_CUDA_WARPS];
  int t = threadIdx.x % TPR;
  ROW_LOOP(r, TPR) {
    const float *x = in + (size_t)r * cols, *d = dout + (size_t)r * cols;
    float *dx = din + (size_t)r * cols;
    float mu = mean[r], rs = rstd[r];
    float s1 = 0.0f, s2 = 0.0f;
    for (int j = t; j < cols; j += TPR) {
      float dxhat = d[j] * w[j];
      s1 += dxhat;
      s2 += dxhat * (x[j] - mu) * rs;
    }
    float m1 = srl__row_sum<TPR>(s1, sh) * inv_cols;
    float m2 = srl__row_sum<TPR>(s2, sh) * inv_cols;
    for (int j = t; j < cols; j += TPR) {
      float xhat = (x[j] - mu) * rs;
      dx[j] = rs * (d[j] * w[j] - m1 - xhat * m2);
    }
  }
}


// one element's terms of (dw, db): (dout·x̂, dout)
struct layernorm_grad_terms {
  const float *dout, *in, *mean, *rstd;
  int cols;
  __device__ float2 operator()(int r, int c) const {
    size_t i = (size_t)r * cols + c;
    float d = dout[i];
    return make_float2(d * (in[i] - mean[r]) * rstd[r], d);
  }
};


static void cuda_layernorm_forward(float *out, float *mean, float *rstd, const float *in,
                                   const float *w, const float *b, int rows, int cols) {
  if (rows <= 0 || cols <= 0) return;
  int tpr = srl__cuda_row_threads(cols);
  unsigned grid = srl__cuda_row_grid(rows, tpr);
  float inv_cols = 1.0f / (float)cols;
  if (tpr == 32)
    layernorm_forward_kernel<32>
        <<<grid, SRL_CUDA_THREADS>>>(out, mean, rstd, in, w, b, rows, cols, inv_cols);
  else
    layernorm_forward_kernel<SRL_CUDA_THREADS>
        <<<grid, SRL_CUDA_THREADS>>>(out, mean, rstd, in, w, b, rows, cols, inv_cols);
  SRL_CUDA_LAUNCHED("layernorm_forward_kernel");
}


static void cuda_layernorm_backward(float *din, float *dw, float *db, const float *dout,
                                    const float *in, const float *w, const float *mean,
                                    const float *rstd, int rows, int cols) {
  if (rows <= 0 || cols <= 0) return;
  // parameter gradients first: they read dout, which din may overwrite
  srl__cuda_col_reduce(dw, db, rows, cols, layernorm_grad_terms{dout, in, mean, rstd, cols});
  int tpr = srl__cuda_row_threads(cols);
  unsigned grid = srl__cuda_row_grid(rows, tpr);
  float inv_cols = 1.0f / (float)cols;
  if (tpr == 32)
    layernorm_backward_kernel<32>
        <<<grid, SRL_CUDA_THREADS>>>(din, dout, in, w, mean, rstd, rows, cols, inv_cols);
  else
    layernorm_backward_kernel<SRL_CUDA_THREADS>
        <<<grid, SRL_CUDA_THREADS>>>(din, dout, in, w, mean, rstd, rows, cols, inv_cols);
  SRL_CUDA_LAUNCHED("layernorm_backward_kernel");
}


//---- softmax ----------------------------------------------------------------------------------

// out = exp(in − max) / Σ exp(in − max), per row; out may alias in
template <int TPR>
static __global__ void softmax_forward_kernel(float *out, const float *in, int rows, int cols) {
  __shared__ float sh[SRL_CUDA_WARPS];
  int t = threadIdx.x % TPR;
  ROW_LOOP(r, TPR) {
    const float *x = in + (size_t)r * cols;
    float *o = out + (size_t)r * cols;
    float mx = -INFINITY;
    for (int j = t; j < cols; j += TPR) mx = fmaxf(mx, x[j]);
    mx = srl__row_max<TPR>(mx, sh);
    float s = 0.0f;
    for (int j = t; j < cols; j += TPR) {
      float e = expf(x[j] - mx);
      o[j] = e;
      s += e;
    }
    float inv = 1.0f / srl__row_sum<TPR>(s, sh);
    for (int j = t; j < cols; j += TPR) o[j] *= inv;
  }
}


// din = out ⊙ (dout − Σ_j dout_j·out_j); din may alias dout (the sum is complete before writes)
template <int TPR>
static __global__ void softmax_backward_kernel(float *din, const float *dout, const float *out,
                                               int rows, int cols) {
  __shared__ float sh[SRL_CUDA_WARPS];
  int t = threadIdx.x % TPR;
  ROW_LOOP(r, TPR) {
    const float *d = dout + (size_t)r * cols, *y = out + (size_t)r * cols;
    float *dx = din + (size_t)r * cols;
    float dot = 0.0f;
    for (int j = t; j < cols; j += TPR) dot += d[j] * y[j];
    dot = srl__row_sum<TPR>(dot, sh);
    for (int j = t; j < cols; j += TPR) dx[j] = y[j] * (d[j] - dot);
  }
}


static void cuda_softmax_forward(float *out, const float *in, int rows, int cols) {
  if (rows <= 0 || cols <= 0) return;
  int tpr = srl__cuda_row_threads(cols);
  unsigned grid = srl__cuda_row_grid(rows, tpr);
  if (tpr == 32)
    softmax_forward_kernel<32><<<grid, SRL_CUDA_THREADS>>>(out, in, rows, cols);
  else
    softmax_forward_kernel<SRL_CUDA_THREADS><<<grid, SRL_CUDA_THREADS>>>(out, in, rows, cols);
  SRL_CUDA_LAUNCHED("softmax_forward_kernel");
}


static void cuda_softmax_backward(float *din, const float *dout, const float *out, int rows,
                                  int cols) {
  if (rows <= 0 || cols <= 0) return;
  int tpr = srl__cuda_row_threads(cols);
  unsigned grid = srl__cuda_row_grid(rows, tpr);
  if (tpr == 32)
    softmax_backward_kernel<32><<<grid, SRL_CUDA_THREADS>>>(din, dout, out, rows, cols);
  else
    softmax_backward_kernel<SRL_CUDA_THREADS>
        <<<grid, SRL_CUDA_THREADS>>>(din, dout, out, rows, cols);
  SRL_CUDA_LAUNCHED("softmax_backward_kernel");
}


void srl__cuda_fill_norm(srl_ops *t) {
  t->layernorm_forward = cuda_layernorm_forward;
  t->layernorm_backward = cuda_layernorm_backward;
  t->softmax_forward = cuda_softmax_forward;
  t->softmax_backward = cuda_softmax_backward;
}

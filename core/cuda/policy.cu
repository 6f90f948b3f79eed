// policy.cu: CUDA twins of the policy-gradient ops: the diagonal-gaussian log-probability with its
// gradients, and PPO's clipped surrogate loss with its gradient.
//
// The log-probability is a row sum (one warp or block per row). Its log-std gradient is added
// (+=) elementwise when log-std is per row, and as a column sum over rows when it is shared by
// every row (OmniSafe's state-independent std). The PPO loss is a full reduction that writes
// the per-sample gradient on the way and returns the loss on the host.
#include "core/cuda/cuda_common.cuh"

#define HALF_LOG_2PI 0.91893853320467274178f


//---- diagonal gaussian ------------------------------------------------------------------------

// logp(r) = Σ_j −½z² − log σ_j − ½log 2π, z = (x − μ)/σ
template <int TPR>
static __global__ void gauss_logprob_kernel(float *logp, const float *x, const float *mean,
                                            const float *log_std, int rows, int cols,
                                            int log_std_per_row) {
  __shared__ float sh[SRL_CUDA_WARPS];
  int t = threadIdx.x % TPR;
  for (int r = blockIdx.x * (SRL_CUDA_THREADS / TPR) + threadIdx.x / TPR; r < rows;
       r += gridDim.x * (SRL_CUDA_THREADS / TPR)) {
    const float *xr = x + (size_t)r * cols, *mr = mean + (size_t)r * cols;
    const float *ls = log_std + (log_std_per_row ? (size_t)r * cols : 0);
    float s = 0.0f;
    for (int j = t; j < cols; j += TPR) {
      float z = (xr[j] - mr[j]) * expf(-ls[j]);
      s += -0.5f * z * z - ls[j] - HALF_LOG_2PI;
    }
    s = srl__row_sum<TPR>(s, sh);
    if (t == 0) logp[r] = s;
  }
}


// dmean = dlogp·(x − μ)/σ²; per-row dlog_std += dlogp·((x − μ)²/σ² − 1)
static __global__ void gauss_backward_kernel(float *dmean, float *dlog_std_per_row,
                                             const float *dlogp, const float *x, const float *mean,
                                             const float *log_std, int log_std_per_row, size_t n,
                                             int cols) {
  size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    size_t r = i / (size_t)cols;
    float ls = log_std[log_std_per_row ? i : i - r * cols];
    float inv_var = expf(-2.0f * ls);
    float diff = x[i] - mean[i];
    float g = dlogp[r];
    if (dmean) dmean[i] = g * diff * inv_var;
    if (dlog_std_per_row) dlog_std_per_row[i] += g * (diff * diff * inv_var - 1.0f);
  }
}


// one element's term of the shared log-std gradient
struct shared_log_std_term {
  const float *dlogp, *x, *mean, *log_std;
  int cols;
  __device__ float2 operator()(int r, int c) const {
    size_t i = (size_t)r * cols + c;
    float inv_var = expf(-2.0f * log_std[c]);
    float diff = x[i] - mean[i];
    return make_float2(dlogp[r] * (diff * diff * inv_var - 1.0f), 0.0f);
  }
};


static void cuda_gauss_logprob(float *logp, const float *x, const float *mean, const float *log_std,
                               int rows, int cols, int log_std_per_row) {
  if (rows <= 0) return;
  if (cols < 0) cols = 0;
  int tpr = srl__cuda_row_threads(cols);
  unsigned grid = srl__cuda_row_grid(rows, tpr);
  if (tpr == 32)
    gauss_logprob_kernel<32>
        <<<grid, SRL_CUDA_THREADS>>>(logp, x, mean, log_std, rows, cols, log_std_per_row);
  else
    gauss_logprob_kernel<SRL_CUDA_THREADS>
        <<<grid, SRL_CUDA_THREADS>>>(logp, x, mean, log_std, rows, cols, log_std_per_row);
  SRL_CUDA_LAUNCHED("gauss_logprob_kernel");
}


static void cuda_gauss_logprob_backward(float *dmean, float *dlog_std, const float *dlogp,
                                        const float *x, const float *mean, const float *log_std,
                                        int rows, int cols, int log_std_per_row) {
  if (rows <= 0 || cols <= 0) return;
  if (dlog_std && !log_std_per_row)
    srl__cuda_col_reduce(dlog_std, (float *)NULL, rows, cols,
                         shared_log_std_term{dlogp, x, mean, log_std, cols});
  float *dls_row = log_std_per_row ? dlog_std : NULL;
  if (!dmean && !dls_row) return;
  size_t n = (size_t)rows * cols;
  gauss_backward_kernel<<<srl__cuda_grid(n), SRL_CUDA_THREADS>>>(dmean, dls_row, dlogp, x, mean,
                                                                 log_std, log_std_per_row, n, cols);
  SRL_CUDA_LAUNCHED("gauss_backward_kernel");
}


//---- ppo --------------------------------------------------------------------------------------

// min(ρA, clip(ρ)A) with ρ = exp(logp − logp_old); the gradient flows through the unclipped term
// when it is the minimum: dlogp = −ρA/n, else 0
struct ppo_clip_term {
  float *dlogp;
  const float *logp, *logp_old, *adv;
  float lo, hi, inv_n;
  __device__ double operator()(size_t i) const {
    float ratio = expf(logp[i] - logp_old[i]);
    float clipped = fminf(fmaxf(ratio, lo), hi);
    float surr1 = ratio * adv[i], surr2 = clipped * adv[i];
    if (dlogp) dlogp[i] = surr1 <= surr2 ? -surr1 * inv_n : 0.0f;
    return surr1 <= surr2 ? surr1 : surr2;
  }
};


static float cuda_ppo_clip_loss(float *dlogp, const float *logp, const float *logp_old,
                                const float *adv, int n, float clip) {
  if (n <= 0) return 0.0f;
  ppo_clip_term f = {dlogp, logp, logp_old, adv, 1.0f - clip, 1.0f + clip, 1.0f / (float)n};
  return srl__cuda_reduce((size_t)n, -1.0 / (double)n, f);
}


void srl__cuda_fill_policy(srl_ops *t) {
  t->gauss_logprob = cuda_gauss_logprob;
  t->gauss_logprob_backward = cuda_gauss_logprob_backward;
  t->ppo_clip_loss = cuda_ppo_clip_loss;
}

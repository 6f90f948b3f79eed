// reduce.cu: CUDA twins of the reductions (sum, sumsq, mse), whose results come back to the host,
// and the final pass every full reduction shares.
//
// A reduction is two kernels (per-block partials in double, then one block adding them in a fixed
// order) and a 4-byte copy into a pinned host slot; the call waits for that copy, nothing else.
#include "core/cuda/cuda_common.cuh"


//---- the final pass ---------------------------------------------------------------------------

static __global__ void reduce_finish_kernel(float *slot, const double *partial, int blocks,
                                            double scale) {
  __shared__ double sh[SRL_CUDA_WARPS];
  double acc = 0.0;
  for (int i = threadIdx.x; i < blocks; i += blockDim.x) acc += partial[i];
  acc = srl__warp_sum(acc);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double s = 0.0;
    for (int w = 0; w < SRL_CUDA_WARPS; w++) s += sh[w];
    *slot = (float)(s * scale);
  }
}


float srl__cuda_reduce_finish(const double *partial, int blocks, double scale, float *slot) {
  reduce_finish_kernel<<<1, SRL_CUDA_THREADS>>>(slot, partial, blocks, scale);
  if (SRL_CUDA_LAUNCHED("reduce_finish_kernel")) return NAN;
  float *host = srl__cuda_host_slot();
  int rc = SRL_CUDA_CHECK(
      cudaMemcpyAsync(host, slot, sizeof *host, cudaMemcpyDeviceToHost, (cudaStream_t)0));
  if (!rc) rc = SRL_CUDA_CHECK(cudaStreamSynchronize((cudaStream_t)0));
  if (rc) {
    srl__cuda_record(rc);
    return NAN;
  }
  return *host;
}


//---- the reductions ---------------------------------------------------------------------------

struct sum_term {
  const float *x;
  __device__ double operator()(size_t i) const { return x[i]; }
};

struct sumsq_term {
  const float *x;
  __device__ double operator()(size_t i) const {
    double v = x[i];
    return v * v;
  }
};

// (pred − target)², writing dpred = g·(pred − target) on the way when asked
struct mse_term {
  float *dpred;
  const float *pred, *target;
  float g;
  __device__ double operator()(size_t i) const {
    float d = pred[i] - target[i];
    if (dpred) dpred[i] = g * d;
    return (double)d * d;
  }
};


static float cuda_sum(const float *x, size_t n) {
  if (n == 0) return 0.0f;
  return srl__cuda_reduce(n, 1.0, sum_term{x});
}


static float cuda_sumsq(const float *x, size_t n) {
  if (n == 0) return 0.0f;
  return srl__cuda_reduce(n, 1.0, sumsq_term{x});
}


// loss = mean((pred − target)²); dpred = scale·2(pred − target)/n
static float cuda_mse(float *dpred, const float *pred, const float *target, size_t n, float scale) {
  if (n == 0) return 0.0f;
  float g = scale * 2.0f / (float)n;
  return srl__cuda_reduce(n, 1.0 / (double)n, mse_term{dpred, pred, target, g});
}


void srl__cuda_fill_reduce(srl_ops *t) {
  t->sum = cuda_sum;
  t->sumsq = cuda_sumsq;
  t->mse = cuda_mse;
}

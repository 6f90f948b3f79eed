// act.cu: CUDA twins of the activations, forward and backward, one kernel per activation.
//
// The library's CUDA code is built with --use_fast_math, which turns tanhf into the hardware
// approximation (about 11 good bits), far from the CPU twin. tanh is therefore computed here
// from expm1f, which fast math leaves exact to a few ulp; erff and log1pf are also unaffected.
// expf becomes __expf, whose error (a few ulp over the ranges used) is within the twin tolerance.
#include "core/cuda/cuda_common.cuh"

#define INV_SQRT_2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f


//---- scalar functions -------------------------------------------------------------------------

// tanh(|x|) = −expm1(−2|x|) / (expm1(−2|x|) + 2): no cancellation near 0, exact 1 for large |x|
static __device__ __forceinline__ float tanh_exact(float x) {
  float e = expm1f(-2.0f * fabsf(x));
  return copysignf(-e / (e + 2.0f), x);
}

static __device__ __forceinline__ float sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

// PyTorch's softplus: linear above 20
static __device__ __forceinline__ float softplus(float x) {
  return x > 20.0f ? x : log1pf(expf(x));
}


template <int ACT>
static __device__ __forceinline__ float act_value(float x) {
  switch (ACT) {
    case SRL_ACT_IDENTITY:
      return x;
    case SRL_ACT_TANH:
      return tanh_exact(x);
    case SRL_ACT_RELU:
      return x > 0.0f ? x : 0.0f;
    case SRL_ACT_MISH:
      return x * tanh_exact(softplus(x));
    case SRL_ACT_GELU:
      return 0.5f * x * (1.0f + erff(x * INV_SQRT_2));
    case SRL_ACT_QUICK_GELU:
      return x * sigmoid(1.702f * x);
    case SRL_ACT_SIGMOID:
      return sigmoid(x);
    case SRL_ACT_SOFTPLUS:
      return softplus(x);
    default:
      return NAN;
  }
}


template <int ACT>
static __device__ __forceinline__ float act_slope(float x) {
  switch (ACT) {
    case SRL_ACT_IDENTITY:
      return 1.0f;
    case SRL_ACT_TANH: {
      float t = tanh_exact(x);
      return 1.0f - t * t;
    }
    case SRL_ACT_RELU:
      return x > 0.0f ? 1.0f : 0.0f;
    case SRL_ACT_MISH: {
      // t = tanh(softplus(x)) = a / (a + 2) with a = eˣ(eˣ + 2), and 1 − t = 2 / (a + 2) without
      // the cancellation of 1 − t² near t = 1 (as the CPU twin)
      float e = expf(fminf(x, 20.0f)), a = e * (e + 2.0f), inv = 1.0f / (a + 2.0f);
      float t = a * inv;
      return t + x * (2.0f * inv) * (1.0f + t) * sigmoid(x);
    }
    case SRL_ACT_GELU: {
      float cdf = 0.5f * (1.0f + erff(x * INV_SQRT_2));
      float pdf = expf(-0.5f * x * x) * INV_SQRT_2PI;
      return cdf + x * pdf;
    }
    case SRL_ACT_QUICK_GELU: {
      float s = sigmoid(1.702f * x);
      return s + 1.702f * x * s * (1.0f - s);
    }
    case SRL_ACT_SIGMOID: {
      float s = sigmoid(x);
      return s * (1.0f - s);
    }
    case SRL_ACT_SOFTPLUS:
      return x > 20.0f ? 1.0f : sigmoid(x);
    default:
      return NAN;
  }
}


//---- kernels ----------------------------------------------------------------------------------

template <int ACT>
static __global__ void act_forward_kernel(float *out, const float *in, size_t n) {
  size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = act_value<ACT>(in[i]);
}


// din may alias dout: each element is read before it is written, by the same thread
template <int ACT>
static __global__ void act_backward_kernel(float *din, const float *dout, const float *in,
                                           size_t n) {
  size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    din[i] = dout[i] * act_slope<ACT>(in[i]);
}


//---- launchers --------------------------------------------------------------------------------

template <int ACT>
static void launch_forward(float *out, const float *in, size_t n) {
  act_forward_kernel<ACT><<<srl__cuda_grid(n), SRL_CUDA_THREADS>>>(out, in, n);
  SRL_CUDA_LAUNCHED("act_forward_kernel");
}


template <int ACT>
static void launch_backward(float *din, const float *dout, const float *in, size_t n) {
  act_backward_kernel<ACT><<<srl__cuda_grid(n), SRL_CUDA_THREADS>>>(din, dout, in, n);
  SRL_CUDA_LAUNCHED("act_backward_kernel");
}


// an unknown activation writes NaN, as the CPU twin does
static __global__ void fill_nan_kernel(float *x, size_t n) {
  size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) x[i] = NAN;
}


static void launch_nan(float *x, size_t n) {
  fill_nan_kernel<<<srl__cuda_grid(n), SRL_CUDA_THREADS>>>(x, n);
  SRL_CUDA_LAUNCHED("fill_nan_kernel");
}


static void cuda_act_forward(float *out, const float *in, size_t n, srl_act act) {
  if (n == 0) return;
  switch (act) {
    case SRL_ACT_IDENTITY:
      if (out != in)
        SRL_CUDA_RECORD(
            cudaMemcpyAsync(out, in, n * sizeof *out, cudaMemcpyDeviceToDevice, (cudaStream_t)0));
      return;
    case SRL_ACT_TANH:
      launch_forward<SRL_ACT_TANH>(out, in, n);
      return;
    case SRL_ACT_RELU:
      launch_forward<SRL_ACT_RELU>(out, in, n);
      return;
    case SRL_ACT_MISH:
      launch_forward<SRL_ACT_MISH>(out, in, n);
      return;
    case SRL_ACT_GELU:
      launch_forward<SRL_ACT_GELU>(out, in, n);
      return;
    case SRL_ACT_QUICK_GELU:
      launch_forward<SRL_ACT_QUICK_GELU>(out, in, n);
      return;
    case SRL_ACT_SIGMOID:
      launch_forward<SRL_ACT_SIGMOID>(out, in, n);
      return;
    case SRL_ACT_SOFTPLUS:
      launch_forward<SRL_ACT_SOFTPLUS>(out, in, n);
      return;
    default:
      launch_nan(out, n);
      return;
  }
}


static void cuda_act_backward(float *din, const float *dout, const float *in, size_t n,
                              srl_act act) {
  if (n == 0) return;
  switch (act) {
    case SRL_ACT_IDENTITY:
      launch_backward<SRL_ACT_IDENTITY>(din, dout, in, n);
      return;
    case SRL_ACT_TANH:
      launch_backward<SRL_ACT_TANH>(din, dout, in, n);
      return;
    case SRL_ACT_RELU:
      launch_backward<SRL_ACT_RELU>(din, dout, in, n);
      return;
    case SRL_ACT_MISH:
      launch_backward<SRL_ACT_MISH>(din, dout, in, n);
      return;
    case SRL_ACT_GELU:
      launch_backward<SRL_ACT_GELU>(din, dout, in, n);
      return;
    case SRL_ACT_QUICK_GELU:
      launch_backward<SRL_ACT_QUICK_GELU>(din, dout, in, n);
      return;
    case SRL_ACT_SIGMOID:
      launch_backward<SRL_ACT_SIGMOID>(din, dout, in, n);
      return;
    case SRL_ACT_SOFTPLUS:
      launch_backward<SRL_ACT_SOFTPLUS>(din, dout, in, n);
      return;
    default:
      launch_nan(din, n);
      return;
  }
}


void srl__cuda_fill_act(srl_ops *t) {
  t->act_forward = cuda_act_forward;
  t->act_backward = cuda_act_backward;
}

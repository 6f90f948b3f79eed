// ops_cpu.c: the CPU twin of the op set, the reference every other device is tested against.
// Matrix products go to OpenBLAS's cblas_sgemm; everything else is a plain loop that the
// compiler vectorises. Reductions accumulate in double so the reference is the accurate side.
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/rng.h"

#define LN_EPS 1e-5f
#define HALF_LOG_2PI 0.91893853320467274178f


//---- memory -----------------------------------------------------------------------------------

static void *cpu_alloc(size_t bytes) {
  return srl_calloc(bytes);
}
static void cpu_free(void *p) {
  srl_free(p);
}
static int cpu_copy(void *dst, const void *src, size_t bytes) {
  if (bytes) memmove(dst, src, bytes);
  return SRL_OK;
}
static int cpu_sync(void) {
  return SRL_OK;
}


//---- linear algebra ---------------------------------------------------------------------------

static void cpu_matmul(float *c, const float *a, const float *b, int m, int n, int k, int trans_a,
                       int trans_b, float alpha, float beta) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {  // empty product: c = beta·c, with beta = 0 clearing NaNs
    for (size_t i = 0; i < (size_t)m * n; i++) c[i] = beta == 0.0f ? 0.0f : beta * c[i];
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, trans_a ? m : k, b,
              trans_b ? k : n, beta, c, n);
}


static void cpu_bias_add(float *out, const float *bias, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    float *o = out + (size_t)r * cols;
    for (int j = 0; j < cols; j++) o[j] += bias[j];
  }
}


static void cpu_bias_backward(float *dbias, const float *dout, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    const float *d = dout + (size_t)r * cols;
    for (int j = 0; j < cols; j++) dbias[j] += d[j];
  }
}


//---- activations ------------------------------------------------------------------------------

static inline float sigmoidf(float x) {
  if (x >= 0) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

// PyTorch's softplus: linear above 20, where log1p(exp(x)) rounds to x anyway
static inline float softplusf(float x) {
  return x > 20.0f ? x : log1pf(expf(x));
}


// tanh as a rational function on [-7.905, 7.905] (beyond it tanh rounds to ±1 in float), the
// approximation Eigen and XNNPACK use: within 4e-7 of tanh everywhere, and free of libm calls,
// so loops over it vectorise (scalar tanhf costs 12-20 ns an element and dominated small MLPs)
static inline float tanh_rational(float x) {
  const float a1 = 4.89352455891786e-03f, a3 = 6.37261928875436e-04f, a5 = 1.48572235717979e-05f,
              a7 = 5.12229709037114e-08f, a9 = -8.60467152213735e-11f, a11 = 2.00018790482477e-13f,
              a13 = -2.76076847742355e-16f;
  const float b0 = 4.89352518554385e-03f, b2 = 2.26843463243900e-03f, b4 = 1.18534705686654e-04f,
              b6 = 1.19825839466702e-06f;
  const float bound = 7.90531110763549805f;
  float c = x > bound ? bound : (x < -bound ? -bound : x);  // not fminf: a libm call, no vectors
  float c2 = c * c;
  float p = c * (a1 + c2 * (a3 + c2 * (a5 + c2 * (a7 + c2 * (a9 + c2 * (a11 + c2 * a13))))));
  float q = b0 + c2 * (b2 + c2 * (b4 + c2 * b6));
  return fabsf(x) < 4e-4f ? x : p / q;  // below 4e-4, tanh(x) = x to float precision
}


// eˣ for x ≤ 88 without libm, so loops over it vectorise: x = n·ln 2 + r with |r| ≤ ln 2 / 2
// (ln 2 in two parts, exact n·hi), Cephes's degree-7 polynomial for eʳ, and 2ⁿ built in the
// exponent bits. Within 2 ulp of expf; below −87.3 it returns 2⁻¹²⁶ (a normal float, not 0).
static inline float exp_poly(float x) {
  // clamps as blends: with `x < lo ? lo : x` the compiler splits the loop into a constant path
  // and a computed one, and the loop no longer vectorises
  x += (float)(x < -87.33654f) * (-87.33654f - x);
  x += (float)(x > 88.0f) * (88.0f - x);
  float t = x * 1.44269504088896341f;
  int32_t k = (int32_t)(t + (t < 0.0f ? -0.5f : 0.5f));  // nearest; floorf would be a libm call
  float n = (float)k;
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = (k + 127) * (1 << 23);
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}


// t = tanh(softplus(x)) with one exponential: with e = eˣ and a = e(e + 2), t = a / (a + 2), and
// 1 − t = 2 / (a + 2) without the cancellation of 1 − t near 1 (the slope needs 1 − t²); the
// sigmoid e / (1 + e) comes with it. From x = 20 on t and the sigmoid round to 1, so x is
// clamped there (e² would overflow past 44). Branch-free, so the mish loops vectorise: scalar
// tanhf(softplus) had made mish three quarters of a FISOR update, and scalar expf still a fifth.
static inline float mish_tanh_softplus(float x, float *one_minus, float *sigmoid) {
  float e = exp_poly(x + (float)(x > 20.0f) * (20.0f - x)), a = e * (e + 2.0f);
  float inv = 1.0f / (a + 2.0f);
  *one_minus = 2.0f * inv;
  *sigmoid = e / (1.0f + e);
  return a * inv;
}


static inline float act_value(float x, srl_act act) {
  switch (act) {
    case SRL_ACT_IDENTITY:
      return x;
    case SRL_ACT_TANH:
      return tanh_rational(x);
    case SRL_ACT_RELU:
      return x > 0 ? x : 0.0f;
    case SRL_ACT_MISH: {
      float omt, sig;
      return x * mish_tanh_softplus(x, &omt, &sig);
    }
    case SRL_ACT_GELU:
      return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
    case SRL_ACT_QUICK_GELU:
      return x * sigmoidf(1.702f * x);
    case SRL_ACT_SIGMOID:
      return sigmoidf(x);
    case SRL_ACT_SOFTPLUS:
      return softplusf(x);
    default:
      return NAN;
  }
}


static inline float act_slope(float x, srl_act act) {
  switch (act) {
    case SRL_ACT_IDENTITY:
      return 1.0f;
    case SRL_ACT_TANH: {
      float t = tanh_rational(x);
      return 1.0f - t * t;
    }
    case SRL_ACT_RELU:
      return x > 0 ? 1.0f : 0.0f;
    case SRL_ACT_MISH: {
      float omt, sig, t = mish_tanh_softplus(x, &omt, &sig);
      return t + x * omt * (1.0f + t) * sig;
    }
    case SRL_ACT_GELU: {
      float cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
      float pdf = expf(-0.5f * x * x) * 0.39894228040143267794f;
      return cdf + x * pdf;
    }
    case SRL_ACT_QUICK_GELU: {
      float s = sigmoidf(1.702f * x);
      return s + 1.702f * x * s * (1.0f - s);
    }
    case SRL_ACT_SIGMOID: {
      float s = sigmoidf(x);
      return s * (1.0f - s);
    }
    case SRL_ACT_SOFTPLUS:
      return x > 20.0f ? 1.0f : sigmoidf(x);
    default:
      return NAN;
  }
}


static void cpu_act_forward(float *out, const float *in, size_t n, srl_act act) {
  if (act == SRL_ACT_IDENTITY) {
    if (out != in) memmove(out, in, n * sizeof *out);
    return;
  }
  if (act == SRL_ACT_TANH) {  // the MLP default: a loop the compiler vectorises
#pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] = tanh_rational(in[i]);
    return;
  }
  if (act == SRL_ACT_MISH) {  // FISOR's actor
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
      float omt, sig;
      out[i] = in[i] * mish_tanh_softplus(in[i], &omt, &sig);
    }
    return;
  }
  for (size_t i = 0; i < n; i++) out[i] = act_value(in[i], act);
}


static void cpu_act_backward(float *din, const float *dout, const float *in, size_t n,
                             srl_act act) {
  if (act == SRL_ACT_TANH) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
      float t = tanh_rational(in[i]);
      din[i] = dout[i] * (1.0f - t * t);
    }
    return;
  }
  if (act == SRL_ACT_MISH) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
      float x = in[i], omt, sig, t = mish_tanh_softplus(x, &omt, &sig);
      din[i] = dout[i] * (t + x * omt * (1.0f + t) * sig);
    }
    return;
  }
  for (size_t i = 0; i < n; i++) din[i] = dout[i] * act_slope(in[i], act);
}


//---- normalisation ----------------------------------------------------------------------------

static void cpu_layernorm_forward(float *out, float *mean, float *rstd, const float *in,
                                  const float *w, const float *b, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    const float *x = in + (size_t)r * cols;
    float *o = out + (size_t)r * cols;
    double s = 0, ss = 0;
    for (int j = 0; j < cols; j++) s += x[j];
    float mu = (float)(s / cols);
    for (int j = 0; j < cols; j++) ss += (double)(x[j] - mu) * (x[j] - mu);
    float rs = 1.0f / sqrtf((float)(ss / cols) + LN_EPS);  // biased variance, as PyTorch
    for (int j = 0; j < cols; j++) o[j] = (x[j] - mu) * rs * w[j] + b[j];
    mean[r] = mu;
    rstd[r] = rs;
  }
}


static void cpu_layernorm_backward(float *din, float *dw, float *db, const float *dout,
                                   const float *in, const float *w, const float *mean,
                                   const float *rstd, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    const float *x = in + (size_t)r * cols, *d = dout + (size_t)r * cols;
    float *dx = din + (size_t)r * cols;
    float mu = mean[r], rs = rstd[r];
    // din = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = dout·w
    double sum_dxhat = 0, sum_dxhat_xhat = 0;
    for (int j = 0; j < cols; j++) {
      float xhat = (x[j] - mu) * rs, dxhat = d[j] * w[j];
      sum_dxhat += dxhat;
      sum_dxhat_xhat += (double)dxhat * xhat;
      dw[j] += d[j] * xhat;
      db[j] += d[j];
    }
    float m1 = (float)(sum_dxhat / cols), m2 = (float)(sum_dxhat_xhat / cols);
    for (int j = 0; j < cols; j++) {
      float xhat = (x[j] - mu) * rs;
      dx[j] = rs * (d[j] * w[j] - m1 - xhat * m2);
    }
  }
}


static void cpu_softmax_forward(float *out, const float *in, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    const float *x = in + (size_t)r * cols;
    float *o = out + (size_t)r * cols;
    float mx = -INFINITY;
    for (int j = 0; j < cols; j++) mx = x[j] > mx ? x[j] : mx;
    double s = 0;
    for (int j = 0; j < cols; j++) {
      o[j] = expf(x[j] - mx);
      s += o[j];
    }
    float inv = (float)(1.0 / s);
    for (int j = 0; j < cols; j++) o[j] *= inv;
  }
}


static void cpu_softmax_backward(float *din, const float *dout, const float *out, int rows,
                                 int cols) {
  for (int r = 0; r < rows; r++) {
    const float *d = dout + (size_t)r * cols, *y = out + (size_t)r * cols;
    float *dx = din + (size_t)r * cols;
    double dot = 0;
    for (int j = 0; j < cols; j++) dot += (double)d[j] * y[j];
    for (int j = 0; j < cols; j++) dx[j] = y[j] * (d[j] - (float)dot);
  }
}


//---- dropout ----------------------------------------------------------------------------------

static void cpu_dropout_forward(float *out, float *mask, const float *in, size_t n, float p,
                                uint64_t seed) {
  float keep_scale = p > 0 ? 1.0f / (1.0f - p) : 1.0f;
  for (size_t i = 0; i < n; i++) {
    float m = (p <= 0 || srl_hash_uniform(seed, i) >= p) ? keep_scale : 0.0f;
    mask[i] = m;
    out[i] = in[i] * m;
  }
}


//---- elementwise ------------------------------------------------------------------------------

static void cpu_fill(float *x, float value, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = value;
}

static void cpu_mul(float *out, const float *a, const float *b, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

static void cpu_add(float *out, const float *a, const float *b, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static void cpu_axpby(float *y, float a, const float *x, float b, size_t n) {
  if (b == 0.0f)  // y is overwritten, even where it held NaN
    for (size_t i = 0; i < n; i++) y[i] = a * x[i];
  else
    for (size_t i = 0; i < n; i++) y[i] = a * x[i] + b * y[i];
}

static void cpu_scale(float *x, float a, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] *= a;
}


//---- reductions -------------------------------------------------------------------------------

static float cpu_sum(const float *x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += x[i];
  return (float)s;
}


static float cpu_sumsq(const float *x, size_t n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return (float)s;
}


static float cpu_mse(float *dpred, const float *pred, const float *target, size_t n, float scale) {
  if (n == 0) return 0.0f;
  double s = 0;
  float g = scale * 2.0f / (float)n;
  for (size_t i = 0; i < n; i++) {
    float d = pred[i] - target[i];
    s += (double)d * d;
    if (dpred) dpred[i] = g * d;
  }
  return (float)(s / n);
}


//---- optimizer --------------------------------------------------------------------------------

static void cpu_adam_update(float *restrict param, const float *restrict grad, float *restrict m,
                            float *restrict v, size_t n, const srl_adam_step *s) {
  float b1 = s->beta1, b2 = s->beta2, wd = s->weight_decay, eps = s->eps;
  float step_size = (float)(s->lr / (1.0 - pow(s->beta1, s->step)));
  float inv_sqrt_bc2 = (float)(1.0 / sqrt(1.0 - pow(s->beta2, s->step)));
  float decay = s->decoupled ? 1.0f - s->lr * wd : 1.0f;
  float l2 = s->decoupled ? 0.0f : wd;
#pragma omp simd
  for (size_t i = 0; i < n; i++) {
    float p = param[i] * decay;
    float g = grad[i] + l2 * param[i];
    float mi = b1 * m[i] + (1.0f - b1) * g;
    float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = p - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
  }
}


//---- diagonal gaussian ------------------------------------------------------------------------

static void cpu_gauss_logprob(float *logp, const float *x, const float *mean, const float *log_std,
                              int rows, int cols, int log_std_per_row) {
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (size_t)r * cols, *mr = mean + (size_t)r * cols;
    const float *ls = log_std + (log_std_per_row ? (size_t)r * cols : 0);
    double s = 0;  // summed in double, as every reduction of the reference
    for (int j = 0; j < cols; j++) {
      float z = (xr[j] - mr[j]) * expf(-ls[j]);
      s += -0.5f * z * z - ls[j] - HALF_LOG_2PI;
    }
    logp[r] = (float)s;
  }
}


static void cpu_gauss_logprob_backward(float *dmean, float *dlog_std, const float *dlogp,
                                       const float *x, const float *mean, const float *log_std,
                                       int rows, int cols, int log_std_per_row) {
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (size_t)r * cols, *mr = mean + (size_t)r * cols;
    size_t ls_off = log_std_per_row ? (size_t)r * cols : 0;
    for (int j = 0; j < cols; j++) {
      float inv_var = expf(-2.0f * log_std[ls_off + j]);
      float diff = xr[j] - mr[j];
      if (dmean) dmean[(size_t)r * cols + j] = dlogp[r] * diff * inv_var;
      if (dlog_std) dlog_std[ls_off + j] += dlogp[r] * (diff * diff * inv_var - 1.0f);
    }
  }
}


//---- ppo --------------------------------------------------------------------------------------

static float cpu_ppo_clip_loss(float *dlogp, const float *logp, const float *logp_old,
                               const float *adv, int n, float clip) {
  double loss = 0;
  for (int i = 0; i < n; i++) {
    float ratio = expf(logp[i] - logp_old[i]);
    float clipped = fminf(fmaxf(ratio, 1.0f - clip), 1.0f + clip);
    float surr1 = ratio * adv[i], surr2 = clipped * adv[i];
    // the unclipped term carries the gradient when it is the minimum; the clipped one is flat
    loss += surr1 <= surr2 ? surr1 : surr2;
    dlogp[i] = surr1 <= surr2 ? -surr1 / (float)n : 0.0f;
  }
  return n ? (float)(-loss / n) : 0.0f;
}


//---- the table --------------------------------------------------------------------------------

static const srl_ops cpu_ops = {
    .device = SRL_DEVICE_CPU,
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .sync = cpu_sync,
    .matmul = cpu_matmul,
    .bias_add = cpu_bias_add,
    .bias_backward = cpu_bias_backward,
    .act_forward = cpu_act_forward,
    .act_backward = cpu_act_backward,
    .layernorm_forward = cpu_layernorm_forward,
    .layernorm_backward = cpu_layernorm_backward,
    .softmax_forward = cpu_softmax_forward,
    .softmax_backward = cpu_softmax_backward,
    .dropout_forward = cpu_dropout_forward,
    .fill = cpu_fill,
    .mul = cpu_mul,
    .add = cpu_add,
    .axpby = cpu_axpby,
    .scale = cpu_scale,
    .sum = cpu_sum,
    .sumsq = cpu_sumsq,
    .mse = cpu_mse,
    .adam_update = cpu_adam_update,
    .gauss_logprob = cpu_gauss_logprob,
    .gauss_logprob_backward = cpu_gauss_logprob_backward,
    .ppo_clip_loss = cpu_ppo_clip_loss,
};


const srl_ops *srl_ops_cpu(void) {
  return &cpu_ops;
}


void srl_ops_cpu_set_threads(int n) {
  openblas_set_num_threads(n > 0 ? n : 1);
}

// ops.h: the op set every network uses, with one signature for both devices.
//
// A network picks its device once, at creation, and then calls ops through a `const srl_ops*`
// table: srl_ops_cpu() (the reference; OpenBLAS sgemm for products, plain loops elsewhere) or
// srl_ops_cuda() (cuBLAS sgemm, own kernels elsewhere). Pointers passed to a table's ops live on
// that table's device. Both tables take the same arguments in the same order, so the CUDA twin
// is tested against the CPU one op by op.
//
// Conventions: all tensors are float32, row-major and contiguous. Matrix dimensions are int,
// flat lengths size_t. Outputs come first, then inputs, then weights, then sizes. Activation
// outputs and input gradients are written (=); parameter gradients accumulate (+=) so a caller
// can sum several backward passes before one optimizer step.
#ifndef SRL_OPS_H
#define SRL_OPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum srl_device { SRL_DEVICE_CPU = 0, SRL_DEVICE_CUDA = 1 } srl_device;

typedef enum srl_act {
  SRL_ACT_IDENTITY = 0,
  SRL_ACT_TANH,
  SRL_ACT_RELU,
  SRL_ACT_MISH,        // x·tanh(softplus(x))
  SRL_ACT_GELU,        // exact: x·Φ(x) = 0.5·x·(1 + erf(x/√2))
  SRL_ACT_QUICK_GELU,  // x·σ(1.702·x), as CLIP
  SRL_ACT_SIGMOID,
  SRL_ACT_SOFTPLUS,  // log(1 + eˣ), linear above x = 20 as PyTorch
  SRL_ACT_COUNT
} srl_act;

// Name of an activation ("tanh") and its inverse lookup (-1 when unknown).
const char *srl_act_name(srl_act act);
int srl_act_from_name(const char *name);

// One Adam / AdamW step's scalars (PyTorch's formulation):
//   m = b1·m + (1−b1)·g;  v = b2·v + (1−b2)·g²
//   m̂ = m/(1−b1ᵗ);  v̂ = v/(1−b2ᵗ);  p −= lr·m̂/(√v̂ + eps)
// Adam adds weight_decay·p to g first; AdamW (decoupled = 1) multiplies p by (1 − lr·wd) first.
typedef struct srl_adam_step {
  float lr, beta1, beta2, eps, weight_decay;
  int step;       // t ≥ 1, for the bias corrections
  int decoupled;  // 0: Adam (L2 in the gradient), 1: AdamW
} srl_adam_step;

typedef struct srl_ops {
  srl_device device;
  const char *name;  // "cpu" or "cuda"

  //---- memory (on this table's device) ----
  void *(*alloc)(size_t bytes);  // zeroed; NULL with srl_errmsg set on failure
  void (*free)(void *p);         // NULL is a no-op
  int (*upload)(void *dst, const void *host_src, size_t bytes);
  int (*download)(void *host_dst, const void *src, size_t bytes);
  int (*copy)(void *dst, const void *src, size_t bytes);
  int (*sync)(void);  // wait for queued work; reports asynchronous device errors

  //---- linear algebra ----
  // c(m×n) = alpha·op(a)·op(b) + beta·c, op(a) m×k, op(b) k×n; trans_a/b transpose the stored
  // matrix (a stored k×m when trans_a). beta = 0 overwrites c, even when it held NaN.
  void (*matmul)(float *c, const float *a, const float *b, int m, int n, int k, int trans_a,
                 int trans_b, float alpha, float beta);
  // out(rows×cols) += bias(cols) broadcast over rows
  void (*bias_add)(float *out, const float *bias, int rows, int cols);
  // dbias(cols) += Σ_rows dout(rows×cols)
  void (*bias_backward)(float *dbias, const float *dout, int rows, int cols);

  //---- activations (elementwise over n) ----
  void (*act_forward)(float *out, const float *in, size_t n, srl_act act);
  // din = dout · f'(in); din may alias dout
  void (*act_backward)(float *din, const float *dout, const float *in, size_t n, srl_act act);

  //---- normalisation ----
  // per row: out = (in − mean)·rstd·w + b, eps 1e-5 as PyTorch; mean, rstd (rows) are saved
  void (*layernorm_forward)(float *out, float *mean, float *rstd, const float *in, const float *w,
                            const float *b, int rows, int cols);
  // din (rows×cols) = ; dw, db (cols) +=
  void (*layernorm_backward)(float *din, float *dw, float *db, const float *dout, const float *in,
                             const float *w, const float *mean, const float *rstd, int rows,
                             int cols);
  // row-wise softmax, numerically stabilised by the row max
  void (*softmax_forward)(float *out, const float *in, int rows, int cols);
  // din = out ⊙ (dout − Σ_j dout_j·out_j), per row
  void (*softmax_backward)(float *din, const float *dout, const float *out, int rows, int cols);

  //---- dropout ----
  // mask[i] = (srl_hash_uniform(seed, i) ≥ p) / (1 − p); out = in ⊙ mask. p = 0 copies and
  // fills mask with 1. Backward is mul(din, dout, mask).
  void (*dropout_forward)(float *out, float *mask, const float *in, size_t n, float p,
                          uint64_t seed);

  //---- elementwise ----
  void (*fill)(float *x, float value, size_t n);
  void (*mul)(float *out, const float *a, const float *b, size_t n);    // out = a ⊙ b
  void (*add)(float *out, const float *a, const float *b, size_t n);    // out = a + b
  void (*axpby)(float *y, float a, const float *x, float b, size_t n);  // y = a·x + b·y
  void (*scale)(float *x, float a, size_t n);                           // x = a·x

  //---- reductions (the result comes back to the host) ----
  float (*sum)(const float *x, size_t n);
  float (*sumsq)(const float *x, size_t n);
  // loss = mean((pred − target)²); when dpred is non-NULL, dpred = scale·2(pred − target)/n
  float (*mse)(float *dpred, const float *pred, const float *target, size_t n, float scale);

  //---- optimizer ----
  void (*adam_update)(float *param, const float *grad, float *m, float *v, size_t n,
                      const srl_adam_step *s);

  //---- diagonal gaussian ----
  // logp(rows) = Σ_j −(x−μ)²/(2σ²) − log σ − ½log 2π, σ = exp(log_std); log_std is (rows×cols)
  // when log_std_per_row, else (cols) shared by every row (OmniSafe's state-independent std)
  void (*gauss_logprob)(float *logp, const float *x, const float *mean, const float *log_std,
                        int rows, int cols, int log_std_per_row);
  // dmean (rows×cols) = dlogp·(x−μ)/σ²;  dlog_std += dlogp·((x−μ)²/σ² − 1) (summed over rows
  // when shared). Either output may be NULL.
  void (*gauss_logprob_backward)(float *dmean, float *dlog_std, const float *dlogp, const float *x,
                                 const float *mean, const float *log_std, int rows, int cols,
                                 int log_std_per_row);

  //---- ppo ----
  // loss = −mean_i min(ρ_i·A_i, clip(ρ_i, 1−ε, 1+ε)·A_i), ρ = exp(logp − logp_old);
  // dlogp (n) = ∂loss/∂logp. Returns the loss.
  float (*ppo_clip_loss)(float *dlogp, const float *logp, const float *logp_old, const float *adv,
                         int n, float clip);
} srl_ops;

// The CPU table; always available.
const srl_ops *srl_ops_cpu(void);

// Threads OpenBLAS may use for the CPU table's matrix products (1 for small networks, where
// threading costs more than it saves).
void srl_ops_cpu_set_threads(int n);

// The CUDA table. Returns SRL_EUNSUPPORTED when built without CUDA and SRL_ENODEV when no GPU is
// usable at run time, each with a message; never crashes.
int srl_ops_cuda(const srl_ops **out);

// The table for a device by name ("cpu" | "cuda").
int srl_ops_get(const srl_ops **out, const char *device);

#ifdef __cplusplus
}
#endif
#endif  // SRL_OPS_H

// diffusion.h: FISOR's diffusion policy: the DDPM noise schedule, learnable Fourier time
// features, the ε-network and the DDPM sampler, on the op table.
//
// The ε-network predicts the noise ε̂(s, x_t, t) added to an action (jaxrl5's DDPM module):
//   time t (an integer step) → Fourier features [cos 2πtWᵀ, sin 2πtWᵀ] (W: time_dim/2 × 1, learned,
//   N(0, 0.2²) at start) → time MLP (Dense(128) → mish → Dense(128)) = cond →
//   concat[x_t, s, cond] → MLPResNet: Dense(hidden), blocks × [Dropout → LayerNorm →
//   Dense(res_hidden) → mish → Dense(hidden) + residual], mish → Dense(act_dim).
// Since t takes only T values, the time path runs on the T rows {0, ..., T−1} and reaches the
// batch through a one-hot product (the same numbers as running it per row); its gradient comes
// back through the transposed product. The Fourier weights are the time MLP's extra parameter
// "fourier.weight", so one optimizer and one polyak average cover the whole time path.
// Everything heavy runs through the op table (cpu or cuda); the Fourier features (T × time_dim
// numbers) are computed on the host. Nothing allocates after creation.
#ifndef SRL_DIFFUSION_H
#define SRL_DIFFUSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/nn.h"
#include "core/ops.h"
#include "core/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

//---- the noise schedule --------------------------------------------------------------------------

#define SRL_DDPM_MAX_T 1000

typedef enum srl_beta_kind {
  SRL_BETA_VP = 0,  // α_t = exp(−0.1/T − 0.5·9.9·(2t−1)/T²), t = 1..T (FISOR's "vp")
  SRL_BETA_LINEAR,  // β = linspace(1e-4, 2e-2, T)
  SRL_BETA_COSINE,  // Nichol & Dhariwal, s = 0.008, β clipped to [0, 0.999]
} srl_beta_kind;

// β, α = 1 − β and ᾱ = cumprod(α), indexed by the step t = 0..T−1 (jaxrl5's arrays).
typedef struct srl_ddpm_schedule {
  int T;
  double beta[SRL_DDPM_MAX_T];
  double alpha[SRL_DDPM_MAX_T];
  double alpha_hat[SRL_DDPM_MAX_T];
} srl_ddpm_schedule;

// Fill a schedule for T steps (1 ≤ T ≤ SRL_DDPM_MAX_T).
int srl_ddpm_schedule_init(srl_ddpm_schedule *s, int T, srl_beta_kind kind);
// "vp" | "linear" | "cosine" → kind; -1 when unknown.
int srl_beta_kind_from_name(const char *name);

// Forward noising x_t = √ᾱ_t·a + √(1−ᾱ_t)·ε for n rows of A columns, t (n) per row.
void srl_ddpm_noise(float *xt, const float *a, const float *eps, const int *t, int n, int A,
                    const srl_ddpm_schedule *s);

// One reverse step at t for n·A numbers (jaxrl5's ddpm_sampler):
//   x = (x − (1−α_t)/√(1−ᾱ_t)·ε̂)/√α_t + [t > 0]·√β_t·temperature·z, then clip to [−1, 1] when
// clip. z may be NULL when t = 0.
void srl_ddpm_step(float *x, const float *eps_hat, const float *z, size_t n,
                   const srl_ddpm_schedule *s, int t, float temperature, int clip);

//---- Fourier time features (host) ----------------------------------------------------------------

// feat (n × 2·half) = [cos f, sin f] with f_k = 2π·t_i·w_k.
void srl_fourier_forward(float *feat, const float *w, int half, const float *t, int n);
// dw (half) += Σ_i 2π·t_i·(−sin f_ik·dfeat_ik + cos f_ik·dfeat_i,half+k).
void srl_fourier_backward(float *dw, const float *dfeat, const float *w, int half, const float *t,
                          int n);

//---- the ε-network -------------------------------------------------------------------------------

#define SRL_DIFFUSION_MAX_COND 4

typedef struct srl_diffusion_config {
  int obs_dim, act_dim;
  int T;                                    // diffusion steps: the time inputs are 0..T−1
  int time_dim;                             // Fourier features, even (64)
  float fourier_std;                        // initial std of W (0.2)
  int n_cond;                               // time MLP layers (2)
  int cond_hidden[SRL_DIFFUSION_MAX_COND];  // their widths (128, 128); the last is cond's width
  int hidden;                               // MLPResNet width (256)
  int blocks;                               // residual blocks (3)
  int res_hidden;                           // inner width of a block (1024 = 4·hidden)
  float dropout;                            // block input dropout in training mode (0.1)
  int layernorm;                            // layernorm in each block (1)
  int max_batch;                            // most rows of one forward
} srl_diffusion_config;

// FISOR's network for these dimensions.
srl_diffusion_config srl_diffusion_config_default(int obs_dim, int act_dim, int max_batch);

typedef struct srl_diffusion {
  const srl_ops *ops;
  srl_diffusion_config cfg;
  int in_dim;     // act_dim + obs_dim + cond width: the MLPResNet's input
  srl_mlp *cond;  // the time MLP, with W (time_dim/2) as its extra tensor "fourier.weight"
  srl_mlp *eps;   // the MLPResNet
  int batch;      // rows of the last forward; 0 before the first

  // device scratch (B = max_batch, T steps, F = time_dim, C = cond width, D = in_dim)
  float *d_x;       // (B, D) concat[x_t, s, cond]: the MLPResNet's input
  float *d_dx;      // (B, D) its gradient
  float *d_onehot;  // (B, T) one-hot time of each row
  float *d_feat;    // (T, F) Fourier features of t = 0..T−1
  float *d_dfeat;   // (T, F) their gradient
  float *d_condp;   // (T, D) cond rows placed in the last C columns, zero elsewhere
  float *d_dcondp;  // (T, D) onehotᵀ·d_dx
  float *d_dcond;   // (T, C) the time MLP's output gradient
  float *d_g;       // (B, act_dim) ∂L/∂ε̂
  float *d_dw;      // (F/2) ∂L/∂W, added onto the time MLP's extra gradient
  // host scratch
  float *h_x;       // (B, D)
  float *h_onehot;  // (B, T)
  float *h_time;    // (T) 0, 1, ..., T−1
  float *h_feat;    // (T, F)
  float *h_dfeat;   // (T, F)
  float *h_w;       // (F/2) W as of the last forward
  float *h_dw;      // (F/2)
  float *h_xs;      // (B, act_dim) sampler state
  float *h_z;       // (B, act_dim) sampler noise
  float *h_eh;      // (B, act_dim) sampler ε̂
  int *h_t;         // (B) sampler times
  void *dev, *host;
} srl_diffusion;

// Create and initialise from rng as flax does: W ~ N(0, fourier_std²); the time MLP's and the
// MLPResNet's input and output kernels xavier_uniform, the block kernels lecun_normal (truncated
// normal), biases 0, layernorm scale 1 and shift 0.
int srl_diffusion_create(srl_diffusion **out, const srl_ops *ops, const srl_diffusion_config *cfg,
                         srl_rng *rng);
void srl_diffusion_destroy(srl_diffusion *d);

// ε̂ for n rows: x (n × act_dim) noisy actions, obs (n × obs_dim), t (n) integer times in
// [0, T). All host arrays; eps_hat (n × act_dim, host) receives the prediction when not NULL
// (it also stays on the device in d->eps->out until the next forward).
int srl_diffusion_forward(srl_diffusion *d, float *eps_hat, const float *x, const float *obs,
                          const int *t, int n);

// Backward through the last forward with deps (n × act_dim, host) = ∂L/∂ε̂: gradients of every
// parameter (MLPResNet, time MLP, Fourier W) accumulate (+=).
int srl_diffusion_backward(srl_diffusion *d, const float *deps);

void srl_diffusion_zero_grad(srl_diffusion *d);
// Training mode turns the MLPResNet's dropout on; the default is evaluation mode.
void srl_diffusion_set_training(srl_diffusion *d, int training);

// dst ← src, and dst ← tau·src + (1 − tau)·dst over every parameter (an EMA copy).
int srl_diffusion_copy_params(srl_diffusion *dst, const srl_diffusion *src);
int srl_diffusion_polyak(srl_diffusion *dst, const srl_diffusion *src, float tau);

// DDPM sampling for n rows of obs (host, n ≤ max_batch) into act (n × act_dim, host):
// x ~ N(0, I) from rng, then srl_ddpm_step for t = T−1..0 with ε̂ from this network (in its
// current mode), then repeat_last more steps at t = 0, then a final clip to [−1, 1] (always, as
// jaxrl5). z is drawn from rng only for steps with t > 0.
int srl_diffusion_sample(srl_diffusion *d, float *act, const float *obs, int n,
                         const srl_ddpm_schedule *s, srl_rng *rng, float temperature, int clip,
                         int repeat_last);

#ifdef __cplusplus
}
#endif
#endif  // SRL_DIFFUSION_H

// vae.h: the conditional VAE of BCQ-Lag and CPQ (OSRL's osrl/common/net.py VAE, after BCQ).
//
// Encoder [s, a] → hidden → hidden → [μ, log σ] (ReLU; OSRL's separate mean and log_std heads
// are one linear of width 2L here, the same function and initialisation), log σ clamped to
// [−4, 15]; decoder [s, z] → hidden → hidden → tanh → a. Training (one Adam step per call on
// both halves, lr as configured):
//   z = μ + σ·ε,  u = dec(s, z),
//   loss = mean_(rows, A) (u − a)² + β·KL,  KL = −½·mean_(rows, L) (1 + log σ² − μ² − σ²).
// Sampling decodes z ~ N(0, I) clipped to ±latent_clip (0.5). Inputs and outputs are host
// arrays; calls with more rows than max_batch run in chunks (encode, decode) so the networks are
// sized for one batch. Nothing allocates after creation.
//
// Checkpoint names (registered by the algorithm): <prefix>.encoder.*, <prefix>.decoder.* and
// their optimizers.
#ifndef SRL_OFFLINE_VAE_H
#define SRL_OFFLINE_VAE_H

#include <stddef.h>

#include "core/nn.h"
#include "core/ops.h"
#include "core/optim.h"
#include "core/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_VAE_LOG_STD_MIN (-4.0f)
#define SRL_VAE_LOG_STD_MAX 15.0f

typedef struct srl_vae_config {
  int obs_dim, act_dim;
  int hidden;         // 400 (OSRL's vae_hidden_sizes)
  int latent;         // 2·act_dim (0 chooses that)
  int max_batch;      // rows per network call; larger encode / decode calls run in chunks
  double beta;        // 0.5 KL weight
  double lr;          // 1e-3 Adam
  float latent_clip;  // 0.5 clip of the sampled latent
} srl_vae_config;

typedef struct srl_vae {
  const srl_ops *ops;
  srl_vae_config cfg;
  int O, A, L, rows;
  srl_mlp *enc;  // (O + A) → hidden → hidden → 2L
  srl_mlp *dec;  // (O + L) → hidden → hidden → A, tanh
  srl_optim *opt_enc, *opt_dec;
  // device scratch
  float *d_x;   // (rows, O + A) encoder input
  float *d_zx;  // (rows, O + L) decoder input
  float *d_g;   // (rows, max(2L, A)) output gradients
  float *d_dz;  // (rows, O + L) decoder input gradient
  // host scratch
  float *h_x, *h_zx, *h_enc;  // (rows, O + A), (rows, O + L), (rows, 2L)
  float *h_u, *h_eps, *h_g;   // (rows, A), (rows, L), (rows, max(2L, A))
  float *h_dz;                // (rows, O + L)
  void *dev, *host;
} srl_vae;

// The three terms of a loss evaluation.
typedef struct srl_vae_terms {
  double loss, recon, kl;
} srl_vae_terms;

// OSRL's defaults for the dims: hidden 400, latent 2·act_dim, β 0.5, lr 1e-3, clip 0.5.
srl_vae_config srl_vae_config_default(int obs_dim, int act_dim, int max_batch);

int srl_vae_create(srl_vae **out, const srl_ops *ops, const srl_vae_config *cfg, srl_rng *rng);
void srl_vae_destroy(srl_vae *v);

// The loss on n ≤ max_batch rows with the reparameterisation noise eps (n × L) given. grad = 1:
// the gradients of loss accumulate into enc and dec (call srl_vae_zero_grad first).
int srl_vae_loss(srl_vae *v, srl_vae_terms *t, const float *obs, const float *act, const float *eps,
                 int n, int grad);
void srl_vae_zero_grad(srl_vae *v);
// One training step: ε ~ N(0, I) from rng, loss and gradients, a finite check (SRL_ENONFINITE,
// nothing changed), one Adam step on each half.
int srl_vae_train(srl_vae *v, srl_vae_terms *t, const float *obs, const float *act, int n,
                  srl_rng *rng);

// Decode n rows (any n ≥ 1) of observations with the latents z (n × L), or, when z is NULL,
// latents drawn from rng (N(0, I), clipped to ±latent_clip, drawn chunk by chunk in row order).
int srl_vae_decode(srl_vae *v, float *act, const float *obs, const float *z, int n, srl_rng *rng);
// Encode n rows: the latent mean and σ = exp(clamp(log σ, −4, 15)) (n × L each).
int srl_vae_encode(srl_vae *v, float *mean, float *std, const float *obs, const float *act, int n);

// KL per row: −½·mean_l (1 + log σ² − μ² − σ²) (n rows of L).
void srl_vae_kl_rows(float *kl, const float *mean, const float *std, int n, int L);

#ifdef __cplusplus
}
#endif
#endif  // SRL_OFFLINE_VAE_H

// dist.h: the diagonal Gaussian policy head on host float arrays: sample, deterministic action,
// log-probability, entropy and KL divergence, for a batch of states.
//
// The standard deviation is either state-independent, one learned log_std per action dimension
// shared by every row (OmniSafe's `gaussian_learning` actor, log_std initialised to 0, std 1), or
// state-dependent, a (rows×cols) log_std produced by the network next to the mean (SAC-style
// heads). Sums over action dimensions and means over the batch accumulate in double.
//
// The device-side twins of log-prob and its gradient are ops->gauss_logprob(_backward) (ops.h);
// these host helpers are for acting, evaluation and statistics, and never allocate.
#ifndef SRL_DIST_H
#define SRL_DIST_H

#include "core/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_GAUSS_LOG_STD_INIT 0.0f  // OmniSafe's gaussian_learning starts at std = 1

// A batch of diagonal Gaussians; the arrays are borrowed, not owned.
typedef struct srl_gauss {
  const float *mean;     // (rows×cols) means
  const float *log_std;  // (rows×cols) when log_std_per_row, else (cols) shared by every row
  int rows;              // batch size, ≥ 0
  int cols;              // action dimensions, ≥ 1
  int log_std_per_row;   // 0: state-independent log_std, 1: state-dependent
} srl_gauss;

// Fill a descriptor; returns 0 or SRL_EINVAL (NULL arrays, rows < 0, cols < 1).
int srl_dist_init(srl_gauss *g, const float *mean, const float *log_std, int rows, int cols,
                  int log_std_per_row);

// action (rows×cols) = mean + exp(log_std)·ε, ε ~ N(0, 1) drawn row by row from rng.
int srl_dist_sample(float *action, const srl_gauss *g, srl_rng *rng);

// The deterministic action: action (rows×cols) = mean.
int srl_dist_mode(float *action, const srl_gauss *g);

// logp (rows) = Σ_j −(a−μ)²/(2σ²) − log σ − ½log 2π for action (rows×cols).
int srl_dist_logprob(float *logp, const float *action, const srl_gauss *g);

// entropy (rows) = Σ_j log σ + ½(1 + log 2π); entropy may be NULL. *mean_out (nullable) gets
// the batch mean.
int srl_dist_entropy(float *entropy, float *mean_out, const srl_gauss *g);

// KL(p‖q) summed over action dimensions: kl (rows, nullable) per state, *mean_out (nullable) the
// batch mean, the early-stopping statistic of PPO / TRPO with p the old policy, q the new one.
// Per dimension: log(σq/σp) + (σp² + (μp−μq)²)/(2σq²) − ½. p and q must have the same shape
// (their log_std layouts may differ).
int srl_dist_kl(float *kl, float *mean_out, const srl_gauss *p, const srl_gauss *q);

// Gradient of weight·mean_rows KL(p‖q) with respect to q's parameters, p held fixed:
//   dmean_q (rows×cols)  = w·(μq − μp)/σq² / rows
//   dlog_std_q          += w·(1 − (σp² + (μp−μq)²)/σq²) / rows (summed over rows when shared)
// Either output may be NULL. As every backward, parameter gradients accumulate.
int srl_dist_kl_backward(float *dmean_q, float *dlog_std_q, const srl_gauss *p, const srl_gauss *q,
                         float weight);

// Set a shared log_std (cols) to log(std), as OmniSafe's `actor.std = ...` when exploration
// noise is annealed; std must be positive.
int srl_dist_set_std(float *log_std, int cols, float std);

// Tanh squashing of a sampled pre-activation u (rows×cols), as SAC: action = tanh(u) and
// logp (rows, nullable) −= Σ_j log(1 − tanh²(u)), computed stably as
// 2(log 2 − u − softplus(−2u)). action may alias u.
int srl_dist_tanh_squash(float *action, float *logp, const float *u, int rows, int cols);

#ifdef __cplusplus
}
#endif
#endif  // SRL_DIST_H

// sac_lag.h: the SAC-Lag agent (OmniSafe's SACLag): a tanh-squashed Gaussian actor with a
// state-dependent log_std, twin reward Q critics, one cost Q critic, their target networks, the
// entropy temperature α (fixed or learned) and the Lagrangian actor loss.
//
// Networks (every one on the agent's op table, cpu or cuda):
//   actor      obs → [μ (A) | log_std (A)], log_std clamped to [-20, 2]; a = tanh(μ + σ·ε)
//   q1, q2     concat(obs, a) → Q_r, with targets q1_targ, q2_targ
//   qc         concat(obs, a) → Q_c, with target qc_targ
// One gradient step (srl_sac_update), in OmniSafe's order (DDPG._update, SAC, SACLag):
//   1. reward critics: a' ~ π(·|s'), y = r + γ(1−d)(min(Q1', Q2')(s', a') − α·log π(a'|s'));
//      loss = mse(Q1, y) + mse(Q2, y) [+ coef·Σθ²], one global norm clip over both twins, Adam
//   2. cost critic: a'' = tanh(μ(s')) (deterministic), y_c = c + γ(1−d)·Qc'(s', a''); mse, clip,
//      Adam
//   3. every policy_delay-th step: actor on a = tanh(μ + σε) (reparameterised),
//      loss = mean(α·log π(a|s) − min(Q1, Q2)(s, a) + λ·Qc(s, a)) / (1 + λ); clip, Adam; then,
//      with auto_alpha, log α steps on −log α·mean(log π(ã|s) + H̄) for a fresh sample ã; then the
//      targets move by Polyak averaging: θ' ← τθ + (1 − τ)θ'
// The Lagrange multiplier λ is not the agent's: the trainer owns it (Adam-on-λ on the mean
// episode cost, algos/lagrange.h) and passes its current value to each update.
//
// The per-sample head (sampling, squash, log-prob, min of the twins, Bellman targets and the
// chain rule from ∂L/∂a back to μ and log_std) is a few floats per row: it runs on the host over
// small transfers, the networks stay on their device. Nothing allocates after srl_sac_create.
#ifndef SRL_SAC_LAG_H
#define SRL_SAC_LAG_H

#include <stdint.h>

#include "core/nn.h"
#include "core/optim.h"
#include "core/rng.h"
#include "core/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_SAC_LOG_STD_MIN (-20.0f)  // OmniSafe's GaussianSACActor clamp
#define SRL_SAC_LOG_STD_MAX 2.0f

typedef struct srl_sac_config {
  int obs_dim, act_dim;
  int n_actor_hidden, actor_hidden[8];    // OmniSafe SACLag: [256, 256]
  int n_critic_hidden, critic_hidden[8];  // [256, 256]
  srl_act actor_act, critic_act;          // relu
  float actor_lr, critic_lr;              // 3e-4, 3e-4
  float gamma;                            // 0.99 (reward and cost)
  float polyak;                           // τ = 0.005
  float alpha;                            // 0.2: the fixed α, or the initial one when learned
  int auto_alpha;                         // 0; 1 learns log α
  float alpha_lr;                         // learning rate of log α (OmniSafe: the critic lr)
  float target_entropy;                   // H̄ for auto_alpha; OmniSafe: −act_dim
  float max_grad_norm;                    // 40; ≤ 0 disables clipping
  float critic_norm_coef;                 // 0 (use_critic_norm False); else loss += coef·Σθ²
  int policy_delay;                       // 2: actor, α and targets every 2nd step
  int use_cost;                           // 1: train the cost critic and use it in the actor
  int max_batch;                          // largest update batch and largest acting batch
} srl_sac_config;

// OmniSafe's SACLag defaults for the given dimensions and largest batch.
srl_sac_config srl_sac_config_default(int obs_dim, int act_dim, int max_batch);

typedef struct srl_sac {
  const srl_ops *ops;
  srl_sac_config cfg;
  srl_mlp *actor;         // obs → [μ | log_std] (2·act_dim)
  srl_mlp *q1, *q2, *qc;  // concat(obs, act) → 1
  srl_mlp *q1_targ, *q2_targ, *qc_targ;
  srl_optim *opt_actor, *opt_q1, *opt_q2, *opt_qc;
  float log_alpha;         // α = exp(log_alpha)
  float alpha_m, alpha_v;  // Adam moments of log α
  int64_t alpha_step;      // Adam steps of log α
  int64_t update_count;    // gradient steps taken (policy_delay counts these)
  srl_rng *rng;            // ε for sampled actions (acting and updates)

  // device scratch, one block (B = max_batch, O = obs_dim, A = act_dim, I = O + A)
  float *d_obs, *d_next_obs;  // (B, O) actor inputs
  float *d_x, *d_xn, *d_xp;   // (B, I) critic inputs: (s, a), (s', a'), (s, π(s))
  float *d_din;               // (B, I) a critic's input gradient
  float *d_y;                 // (B) Bellman targets
  float *d_dq;                // (B) ∂loss/∂Q
  float *d_dpi;               // (B, 2A) ∂loss/∂[μ | log_std]
  void *dev;

  // host scratch, one block
  float *h_x;                 // (B, I) critic input being assembled
  float *h_head;              // (B, 2A) actor output
  float *h_eps, *h_u, *h_a;   // (B, A) noise, pre-squash and squashed actions
  float *h_logp;              // (B)
  float *h_q1, *h_q2, *h_qc;  // (B)
  float *h_y, *h_yc;          // (B) reward and cost targets
  float *h_dq;                // (B)
  float *h_din;               // (B, I) a critic's input gradient
  float *h_da;                // (B, A) ∂loss/∂a summed over critics
  float *h_dpi;               // (B, 2A)
  void *host;
} srl_sac;

// A batch of transitions, host arrays (the replay buffer's sample).
typedef struct srl_sac_batch {
  const float *obs;       // (n, obs_dim)
  const float *act;       // (n, act_dim) in [-1, 1]
  const float *reward;    // (n)
  const float *cost;      // (n)
  const float *done;      // (n) 1 where the episode terminated (no bootstrap), else 0
  const float *next_obs;  // (n, obs_dim)
  int n;
} srl_sac_batch;

typedef struct srl_sac_stats {
  float loss_q;           // mse(Q1, y) + mse(Q2, y) (+ L2 term)
  float loss_qc;          // mse(Qc, y_c); 0 without use_cost
  float loss_pi;          // the actor loss; 0 when the actor did not step
  float q_mean, qc_mean;  // mean Q1(s, a) and Qc(s, a) on the batch
  float entropy;          // −mean log π(a|s) of the actor step's samples; 0 when it did not step
  float alpha;            // α after the step
  float alpha_loss;       // 0 unless auto_alpha and the actor stepped
  float grad_norm_q, grad_norm_qc, grad_norm_pi;  // before clipping
  int actor_stepped;  // 1 when this step updated the actor (and α and the targets)
} srl_sac_stats;

// Create the agent on ops: networks initialised from rng in the order actor, q1, q2, qc (weights
// kaiming_uniform as OmniSafe), targets copied from them, the agent's own sampling stream seeded
// from (seed, 0).
int srl_sac_create(srl_sac **out, const srl_ops *ops, const srl_sac_config *cfg, srl_rng *rng,
                   uint64_t seed);
void srl_sac_destroy(srl_sac *s);

// The current α = exp(log α).
float srl_sac_alpha(const srl_sac *s);

// Act on n ≤ max_batch observations (host, n×obs_dim): action (host, n×act_dim) in (-1, 1) is
// tanh(μ) when deterministic, else tanh(μ + σ·ε) with ε from the agent's stream. logp (n,
// nullable) gets log π(a|s) with the squash correction (of the sampled action; of tanh(μ) at
// u = μ when deterministic).
int srl_sac_act(srl_sac *s, float *action, float *logp, const float *obs, int n, int deterministic);

// One gradient step on a batch (see the top of this file) with the multiplier lambda ≥ 0.
// A non-finite loss or gradient norm stops the step before that network changes, with a message
// naming the quantity (SRL_ENONFINITE). stats may be NULL.
int srl_sac_update(srl_sac *s, const srl_sac_batch *b, float lambda, srl_sac_stats *stats);

//---- pieces of the update, exposed for tests ----------------------------------------------------

// Reward targets y (host, n) for a batch: y = r + γ(1−d)(min(Q1', Q2')(s', a') − α·logp') with
// a' = tanh(μ + σε') drawn from the agent's stream. a_next and logp_next (host, nullable) get the
// sampled next actions (n×act_dim) and their log-probabilities.
int srl_sac_reward_targets(srl_sac *s, float *y, float *a_next, float *logp_next,
                           const srl_sac_batch *b);
// Cost targets y_c (host, n): c + γ(1−d)·Qc'(s', tanh(μ(s'))).
int srl_sac_cost_targets(srl_sac *s, float *y, const srl_sac_batch *b);

// The actor loss at fixed noise eps (host, n×act_dim) on obs (host, n×obs_dim), with every
// parameter gradient of the actor (zeroed first) when grad is nonzero: the function the
// finite-difference test probes. Returns the loss through *loss.
int srl_sac_actor_loss(srl_sac *s, float *loss, const float *obs, const float *eps, int n,
                       float lambda, int grad);

//---- checkpoints --------------------------------------------------------------------------------

// Add every tensor of the agent to a checkpoint writer: actor.*, critic_r.0.*, critic_r.1.*,
// critic_c.*, target_critic_r.0.*, target_critic_r.1.*, target_critic_c.*, optim.<net>.m / .v
// (F32, the network's parameter block) and optim.<net>.step (I64) for net in actor,
// critic_r.0, critic_r.1, critic_c; sac.log_alpha, sac.alpha_adam (F32: m, v), sac.alpha_step
// and sac.update_count (I64) and sac.rng (U8, the sampling stream's state). The values are
// downloaded into one host block returned in *hold, which must stay alive until srl_st_write and is
// then released with srl_free.
int srl_sac_save(const srl_sac *s, srl_st_writer *w, void **hold);

// Restore from a checkpoint. actor_only loads just actor.* (enough to act, e.g. for evaluation);
// otherwise every tensor srl_sac_save writes must be present with its shape.
int srl_sac_load(srl_sac *s, const srl_st_file *f, int actor_only);

#ifdef __cplusplus
}
#endif
#endif  // SRL_SAC_LAG_H

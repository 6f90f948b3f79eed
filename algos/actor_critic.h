// actor_critic.h: OmniSafe's constrained actor-critic and its minibatch update steps.
//
// Three networks on one device: a Gaussian actor (MLP mean, state-independent log_std stored as
// the actor's extra parameters, OmniSafe's `gaussian_learning`), a reward critic V_r and a cost
// critic V_c, each with its own Adam. One minibatch of PPO(-Lag) is, in OmniSafe's order
// (PolicyGradient._update): reward critic step, cost critic step, actor step. Each step is
// zero_grad → forward → loss → backward → clip the global gradient norm → Adam; a non-finite
// loss or gradient norm stops the step before any parameter changes and names the quantity.
#ifndef SRL_ACTOR_CRITIC_H
#define SRL_ACTOR_CRITIC_H

#include "core/nn.h"
#include "core/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct srl_ac_config {
  int obs_dim, act_dim;
  int n_actor_hidden, actor_hidden[8];    // OmniSafe: [64, 64]
  int n_critic_hidden, critic_hidden[8];  // OmniSafe: [64, 64]
  srl_act actor_act, critic_act;          // tanh
  float log_std_init;                     // 0 (std 1)
  float actor_lr, critic_lr;              // 3e-4 each
  float max_grad_norm;                    // 40; ≤ 0 disables clipping
  float critic_norm_coef;                 // 0.001: critic loss += coef·Σθ²; 0 disables
  float clip;                             // 0.2, the PPO ratio clip
  float entropy_coef;                     // 0
  int max_batch;                          // largest minibatch (and evaluation batch)
} srl_ac_config;

// OmniSafe's PPOLag defaults for the given dimensions and largest batch.
srl_ac_config srl_ac_config_default(int obs_dim, int act_dim, int max_batch);

typedef struct srl_actor_critic {
  const srl_ops *ops;
  srl_ac_config cfg;
  srl_mlp *actor;     // obs → action mean; extra "log_std" (act_dim)
  srl_mlp *critic_r;  // obs → V_r
  srl_mlp *critic_c;  // obs → V_c
  srl_optim *opt_actor, *opt_r, *opt_c;
  // device scratch, sized for max_batch: one block
  float *dvalue;  // (B) ∂loss/∂V
  float *logp;    // (B) log π(a|s)
  float *dlogp;   // (B) ∂loss/∂logp
  float *dmean;   // (B, act_dim) ∂loss/∂μ
  float *ones;    // (act_dim) constant 1, for the entropy gradient
  void *scratch;
} srl_actor_critic;

// A minibatch, every array on the actor-critic's device.
typedef struct srl_ppo_batch {
  const float *obs;       // (n, obs_dim) normalised observations
  const float *act;       // (n, act_dim) actions taken
  const float *logp_old;  // (n) log-probabilities under the behaviour policy
  const float *adv;  // (n) the advantage the actor ascends ((A_r − λA_c)/(1 + λ) for PPO-Lag)
  const float *target_r;  // (n) reward-value targets
  const float *target_c;  // (n) cost-value targets
  int n;
} srl_ppo_batch;

typedef struct srl_ppo_stats {
  float loss_pi, loss_vr, loss_vc;  // losses before the step (critic losses include L2)
  float grad_norm_pi, grad_norm_vr, grad_norm_vc;  // before clipping
} srl_ppo_stats;

// Create the three networks and optimizers on ops, initialised from rng in the order actor,
// reward critic, cost critic.
int srl_ac_create(srl_actor_critic **out, const srl_ops *ops, const srl_ac_config *cfg,
                  srl_rng *rng);
void srl_ac_destroy(srl_actor_critic *ac);

// One critic step on (obs, target); `critic` is ac->critic_r or ac->critic_c with its optimizer.
int srl_ac_critic_step(srl_actor_critic *ac, srl_mlp *critic, srl_optim *opt, const float *obs,
                       const float *target, int n, float lr, float *loss, float *grad_norm);

// One actor step on the clipped surrogate at learning rate lr (OmniSafe decays it linearly).
int srl_ac_actor_step(srl_actor_critic *ac, const srl_ppo_batch *b, float lr, float *loss,
                      float *grad_norm);

// The whole minibatch update in OmniSafe's order; stats may be NULL.
int srl_ppo_update_minibatch(srl_actor_critic *ac, const srl_ppo_batch *b, float actor_lr,
                             srl_ppo_stats *stats);

#ifdef __cplusplus
}
#endif
#endif  // SRL_ACTOR_CRITIC_H

// ppo.h: one epoch's update of PPO, PPO-Lag and CPPO-PID, in OmniSafe's order
// (naive_lagrange/ppo_lag.py, pid_lagrange/cppo_pid.py, base/policy_gradient.py):
//   1. the multiplier first, from Jc, the mean cost of the last window_lens episodes: none (PPO),
//      Adam on λ (PPO-Lag) or the PID controller (CPPO-PID), algos/lagrange.h;
//   2. the surrogate advantage (adv_r − λ·adv_c)/(1 + λ) (PPO: adv_r);
//   3. old policy means over the whole epoch (the behaviour policy: the parameters are still the
//      ones that collected the data);
//   4. update_iters passes, each a fresh shuffle cut into minibatches of batch_size rows (the last
//      one shorter, as a DataLoader without drop_last), each minibatch a reward-critic, cost-critic
//      (when use_cost) and actor step (srl_ppo_update_minibatch) at the epoch's actor lr;
//   5. after each pass KL(old‖new) over the whole epoch (summed over action dims, mean over rows);
//      with kl_early_stop the passes stop once it exceeds target_kl.
// The actor's lr schedule (linear 1 → 0 over the epochs) is the trainer's; it arrives in the batch.
// Minibatches are gathered on the host and uploaded (a copy into the network's memory on the CPU).
// With threads = 2 on the CPU, a helper thread takes each minibatch's actor step while the caller
// takes the critic steps; the networks do not share memory, so results do not change.
#ifndef SRL_PPO_H
#define SRL_PPO_H

#include "algos/actor_critic.h"
#include "algos/onpolicy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct srl_ppo_config {
  int update_iters;   // 40 passes over the epoch
  int batch_size;     // 64 rows per minibatch
  float target_kl;    // 0.02
  int kl_early_stop;  // 1: stop the passes once KL > target_kl
  int use_cost;       // 1: the cost critic learns (PPO: 0, its values still drive nothing)
  int threads;        // 2: on the CPU the actor step of each minibatch runs on a second thread
                      // beside the critic steps (independent networks: the same numbers as 1)
} srl_ppo_config;

// OmniSafe's PPOLag defaults.
srl_ppo_config srl_ppo_config_default(void);

typedef struct srl_ppo srl_ppo;  // scratch for one run: minibatch, surrogate advantages, means

// Scratch for epochs of up to capacity rows on ac's device (host and device blocks, allocated
// once). ac->cfg.max_batch must be at least batch_size.
int srl_ppo_create(srl_ppo **out, srl_actor_critic *ac, const srl_ppo_config *cfg, int capacity);
void srl_ppo_destroy(srl_ppo *p);

// adv (n) = (adv_r − λ·adv_c)/(1 + λ); adv may alias adv_r.
void srl_ppo_surrogate_adv(float *adv, const float *adv_r, const float *adv_c, float lambda, int n);

// Means of the actor over n host observations (n×obs_dim) into mean (n×act_dim, host), in chunks
// of ac->cfg.max_batch rows.
int srl_ppo_actor_means(srl_ppo *p, srl_actor_critic *ac, float *mean, const float *obs, int n);

// KL(old‖new) of the current actor against old means (n×act_dim) and the old shared log_std
// (act_dim) over the n observations: Σ_j per row, mean over rows.
int srl_ppo_kl(srl_ppo *p, srl_actor_critic *ac, float *kl, const float *obs, const float *old_mean,
               const float *old_log_std, int n);

// One epoch's update (steps 1-5 above) from b (b->lagrange NULL for PPO). A non-finite loss,
// gradient norm, KL or λ returns SRL_ENONFINITE with a message naming it.
int srl_ppo_update(srl_ppo *p, srl_actor_critic *ac, const srl_onpolicy_batch *b,
                   srl_onpolicy_stats *out);

// The trainer's table entries.
extern const srl_onpolicy_algo srl_onpolicy_ppo;       // "PPO": no multiplier, use_cost false
extern const srl_onpolicy_algo srl_onpolicy_ppo_lag;   // "PPOLag": Adam on λ
extern const srl_onpolicy_algo srl_onpolicy_cppo_pid;  // "CPPOPID": PID Lagrangian

#ifdef __cplusplus
}
#endif
#endif  // SRL_PPO_H

// buffer.h: the on-policy rollout buffer (GAE for reward and cost) and the off-policy replay
// buffer.
//
// Rollout buffer (OmniSafe's VectorOnPolicyBuffer). One epoch is N envs × T steps
// (steps_per_epoch = N·T). Each vector step stores, per env, the normalised observation, the
// action, its log-probability, reward, cost and the critics' values V_r, V_c of that observation.
// Rows are env-major: env i's step t is row i·T + t, so every env's trajectory is contiguous
// (the order OmniSafe concatenates its per-env buffers in).
//
// A path (an episode piece inside the epoch) is closed three ways, each with its bootstrap value
// V_next for the step after the path's last one:
//   terminated → 0;
//   truncated  → V(final_obs), the critics on the finished episode's last observation;
//   epoch cut  → V(obs), the critics on the observation the next epoch would act on
//                (given to srl_rollout_finish).
// Termination wins over truncation. Closing a path computes, for reward and cost alike and with
// the same gamma (OmniSafe's on-policy buffer ignores cost_gamma):
//   δ_t = r_t + γ·V_{t+1} − V_t        (V_{T_path} = V_next)
//   adv_t = Σ_l (γλ)^l δ_{t+l}          (discount_cumsum; λ = lam for reward, lam_c for cost)
//   target_t = adv_t + V_t
// srl_rollout_finish closes the open paths and then, over the whole epoch (all N·T rows),
// standardises adv_r to (adv_r − mean)/(std + 1e-8) (std the population one, as OmniSafe's
// dist_statistics_scalar) and centres adv_c to adv_c − mean, each when its flag is set.
//
// Typical epoch:
//   srl_rollout_reset(rb);
//   for t in 0..T-1:
//     act from policy on normalised obs; V_r, V_c from critics;
//     srl_vec_env_step(...);
//     srl_rollout_store(rb, obs, act, logp, rewards, costs, v_r, v_c);
//     srl_rollout_end_paths(rb, terminated, truncated, V_r(final_obs), V_c(final_obs));
//   srl_rollout_finish(rb, V_r(obs_next), V_c(obs_next));
//   minibatches: srl_rollout_gather(rb, ..., idx, n) or upload rb->obs, rb->adv_r, ... directly.
//
// Replay buffer (OmniSafe's off-policy buffer): a circular store of transitions (obs, act,
// reward, cost, next_obs, done) where done is 1 only for termination (truncated transitions
// keep bootstrapping from next_obs = final_obs); batches are drawn uniformly with replacement.
//
// Both buffers allocate one block at init and never again.
#ifndef SRL_BUFFER_H
#define SRL_BUFFER_H

#include "core/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

//---- rollout buffer ---------------------------------------------------------------------------

typedef struct srl_rollout_config {
  int num_envs;           // N ≥ 1 (OmniSafe: vector_env_nums)
  int steps_per_env;      // T ≥ 1 (OmniSafe: steps_per_epoch / vector_env_nums)
  int obs_dim, act_dim;   // ≥ 1
  float gamma;            // 0.99, discount for reward and cost
  float lam;              // 0.95, GAE λ of the reward
  float lam_c;            // 0.95, GAE λ of the cost
  int standardize_adv_r;  // 1: adv_r ← (adv_r − mean)/(std + 1e-8)
  int standardize_adv_c;  // 1: adv_c ← adv_c − mean (centred only, as OmniSafe)
} srl_rollout_config;

// OmniSafe's PPOLag defaults for the given sizes.
srl_rollout_config srl_rollout_config_default(int num_envs, int steps_per_env, int obs_dim,
                                              int act_dim);

typedef struct srl_rollout {
  srl_rollout_config cfg;
  int capacity;  // N·T rows

  // stored per step; row i·T + t is env i's step t
  float *obs;     // (capacity, obs_dim) normalised observations
  float *act;     // (capacity, act_dim) actions taken
  float *logp;    // (capacity) log π(act|obs) under the behaviour policy
  float *reward;  // (capacity)
  float *cost;    // (capacity)
  float *v_r;     // (capacity) V_r(obs)
  float *v_c;     // (capacity) V_c(obs)
  // filled when paths close (final after srl_rollout_finish)
  float *adv_r;     // (capacity) reward advantages, standardised by finish when the flag is set
  float *adv_c;     // (capacity) cost advantages, centred by finish when the flag is set
  float *target_r;  // (capacity) reward-value targets adv_r + V_r (before standardisation)
  float *target_c;  // (capacity) cost-value targets adv_c + V_c (before centring)

  int *path_start;  // (N) first step t of each env's open path
  int t;            // vector steps stored this epoch, 0..T
  int finished;     // 1 after srl_rollout_finish, until srl_rollout_reset
  long long paths;  // paths closed this epoch (episode ends + epoch cuts), for diagnostics

  // epoch statistics computed by finish, before standardising (for logs)
  double adv_r_mean, adv_r_std, adv_c_mean;
} srl_rollout;

// Allocate every array in one block and reset. Returns 0, SRL_EINVAL (bad sizes or
// gamma/lam outside [0, 1]) or SRL_ENOMEM. srl_rollout_free releases; freeing twice is harmless.
int srl_rollout_init(srl_rollout *rb, const srl_rollout_config *cfg);
void srl_rollout_free(srl_rollout *rb);

// Start a new epoch: t = 0, every env's path starts at 0, not finished.
void srl_rollout_reset(srl_rollout *rb);

// Store one vector step: obs (N, obs_dim), act (N, act_dim), logp, reward, cost, v_r, v_c (N
// each). SRL_ERANGE when T steps are already stored, SRL_ESTATE after finish.
int srl_rollout_store(srl_rollout *rb, const float *obs, const float *act, const float *logp,
                      const float *reward, const float *cost, const float *v_r, const float *v_c);

// Close env's open path after the step just stored, where its episode ended: terminated ≠ 0
// bootstraps 0 (last_v_r, last_v_c ignored); otherwise (truncated) bootstraps last_v_r,
// last_v_c = V(final_obs). A path with no step (already closed at this step) is left alone.
int srl_rollout_end_path(srl_rollout *rb, int env, int terminated, float last_v_r, float last_v_c);

// The vector form, shaped like srl_vec_env's results: for each env i with terminated[i] or
// truncated[i] set, srl_rollout_end_path(rb, i, terminated[i], final_v_r[i], final_v_c[i]).
// final_v_r/final_v_c (N) are read only for truncated (and not terminated) envs and may be NULL
// when none is.
int srl_rollout_end_paths(srl_rollout *rb, const int *terminated, const int *truncated,
                          const float *final_v_r, const float *final_v_c);

// End the epoch: needs all T steps stored (SRL_ESTATE otherwise). Closes every open path with
// the epoch-cut bootstrap last_v_r[i], last_v_c[i] = V(obs_i) (N each), then standardises
// adv_r and centres adv_c over all rows as the flags say. A non-finite reward, cost, value or
// advantage is refused with SRL_ENONFINITE naming the quantity and the row.
int srl_rollout_finish(srl_rollout *rb, const float *last_v_r, const float *last_v_c);

// Copy rows idx[0..n) of a finished buffer into contiguous minibatch arrays: obs (n, obs_dim),
// act (n, act_dim), logp, adv_r, adv_c, target_r, target_c (n each). Any output may be NULL
// to skip it. SRL_ESTATE before finish, SRL_ERANGE for an index outside [0, capacity).
int srl_rollout_gather(const srl_rollout *rb, float *obs, float *act, float *logp, float *adv_r,
                       float *adv_c, float *target_r, float *target_c, const int *idx, int n);

//---- replay buffer ----------------------------------------------------------------------------

typedef struct srl_replay {
  int capacity;  // transitions held at most
  int obs_dim, act_dim;
  float *obs;        // (capacity, obs_dim)
  float *act;        // (capacity, act_dim)
  float *reward;     // (capacity)
  float *cost;       // (capacity)
  float *next_obs;   // (capacity, obs_dim) for a truncated step: the final observation
  float *done;       // (capacity) 1 for a terminated transition, else 0
  int size;          // transitions held now, ≤ capacity
  int head;          // row the next transition goes to
  long long stored;  // transitions stored since init or reset
} srl_replay;

// Allocate one block. Returns 0, SRL_EINVAL or SRL_ENOMEM. Freeing twice is harmless.
int srl_replay_init(srl_replay *rb, int capacity, int obs_dim, int act_dim);
void srl_replay_free(srl_replay *rb);

// Forget every transition (size 0, head 0).
void srl_replay_reset(srl_replay *rb);

// Store n transitions (one per env of a vector step): obs, next_obs (n, obs_dim), act
// (n, act_dim), reward, cost (n), terminated (n; nonzero → done 1). Once full, the oldest rows
// are overwritten (circular).
int srl_replay_store(srl_replay *rb, const float *obs, const float *act, const float *reward,
                     const float *cost, const float *next_obs, const int *terminated, int n);

// Draw batch row indices uniformly with replacement from [0, size) with rng (srl_rng_int, one
// draw per row, in order), write them to idx (may be NULL) and copy the rows into obs, act,
// reward, cost, next_obs, done (each may be NULL to skip). SRL_ESTATE when the buffer is empty.
int srl_replay_sample(const srl_replay *rb, srl_rng *rng, int *idx, float *obs, float *act,
                      float *reward, float *cost, float *next_obs, float *done, int batch);

#ifdef __cplusplus
}
#endif
#endif  // SRL_BUFFER_H

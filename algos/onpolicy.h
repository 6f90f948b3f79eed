// onpolicy.h: the on-policy trainer (OmniSafe's PolicyGradient.learn): config schema, rollouts on
// the vector env, the per-algorithm epoch update behind a small function table, the run
// directory, checkpoints, resume, NaN stop; and loading a trained policy to act or evaluate.
//
// One epoch, in OmniSafe's order:
//   1. reset the vector env (episode seeds derived from (seed, epoch), so an epoch is reproducible
//      from the checkpoint before it); normalise observations (update on every rollout step,
//      std floor 1e-2, clip ±5);
//   2. steps_per_epoch / vector_env_nums vector steps: actor mean and both critics on the
//      normalised observation, a Gaussian action sampled on the host, the env step (actions are
//      passed unclipped in [-1, 1] space; the env clips), paths closed on termination (bootstrap
//      0), truncation (V(final_obs)) and at the epoch cut (V(obs));
//   3. GAE, advantage standardisation (core/buffer.h);
//   4. the algorithm's epoch update through srl_onpolicy_algo.update: the multiplier first (from
//      Jc, the mean cost of the last window_lens episodes), then the actor and critics;
//   5. one progress.csv row, events, a checkpoint every save_model_freq epochs.
//
// Run directory <out>/<algo>-<env>-s<seed>-<YYYYmmdd-HHMMSS>/:
//   config.yaml        the resolved config, every default written out (loads back identically)
//   progress.csv       header, then one row per epoch: epoch (epochs done), total_steps, ep_ret,
//                      ep_cost, ep_len (means over the last window_lens finished episodes; nan
//                      before the first), lagrange (λ of the epoch's update), loss_pi, loss_vr,
//                      loss_vc (nan when the cost critic does not learn), kl, entropy, fps,
//                      wall_s, then update_iters (passes done), actor_lr, episodes (finished in
//                      the epoch), rollout_s, update_s
//   events.jsonl       one JSON object per line, each with "event" and "time": start, resume,
//                      epoch, checkpoint, interrupted, nan_stop (with "message"), error, finish
//   checkpoints/epoch-<N>.safetensors  the state after N epochs (algos/onpolicy_ckpt.c lists
//                      the tensors and metadata); final.safetensors after the last epoch
//   summary.json       status (finished | interrupted | nan_stop | error), final means, λ,
//                      steps, wall time, the checkpoint to use, a message
// Every file that is replaced (checkpoints, summary.json, config.yaml) is written to a temporary
// file and renamed, so a crash leaves the old or the new version.
//
// Determinism: same config, same seed, same torch_threads → the same numbers (train_cfgs.threads
// does not change them: the vector env and the update's helper thread are invariant to it), and
// a run resumed from its checkpoint at epoch N reproduces the uninterrupted run bitwise (the
// checkpoint holds the networks, the Adam moments, the normaliser, λ's state, the episode window,
// both random streams and the counters; the env state needs nothing, as every epoch starts from
// a reset).
#ifndef SRL_ONPOLICY_H
#define SRL_ONPOLICY_H

#include <stdint.h>

#include "algos/actor_critic.h"
#include "algos/lagrange.h"
#include "core/buffer.h"
#include "core/config.h"
#include "core/log.h"
#include "core/normalize.h"
#include "core/rng.h"
#include "envs/play.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_ONPOLICY_MAX_HIDDEN 8
#define SRL_ONPOLICY_CHUNK 1024  // rows per forward when a whole epoch goes through a network

//---- configuration (OmniSafe's key names and PPOLag defaults) ------------------------------------

typedef struct srl_onpolicy_net_cfg {
  int hidden_sizes[SRL_ONPOLICY_MAX_HIDDEN];  // [64, 64]
  int n_hidden_sizes;
  char activation[16];  // tanh (any srl_act name)
  double lr;            // 3e-4
} srl_onpolicy_net_cfg;

typedef struct srl_onpolicy_config {
  char algo[32];    // PPO | PPOLag | CPPOPID | TRPOLag | CPO (what srl_onpolicy_algo_find knows)
  char env_id[64];  // SafetyPointGoal1
  int seed;         // 0
  struct {
    char device[8];       // cpu | cuda
    int total_steps;      // 10000000; epochs = total_steps / steps_per_epoch
    int vector_env_nums;  // 1
    int threads;          // 1: vector-env worker threads (at most vector_env_nums)
    int torch_threads;    // 1: OpenBLAS threads of the CPU networks
  } train_cfgs;
  struct {
    int steps_per_epoch;                              // 20000 (a multiple of vector_env_nums)
    int update_iters;                                 // 40
    int batch_size;                                   // 64
    double target_kl;                                 // 0.02
    double entropy_coef;                              // 0
    int obs_normalize;                                // true
    int kl_early_stop;                                // true
    int use_max_grad_norm;                            // true
    double max_grad_norm;                             // 40
    int use_critic_norm;                              // true
    double critic_norm_coef;                          // 0.001
    double gamma, lam, lam_c;                         // 0.99, 0.95, 0.95
    double clip;                                      // 0.2
    int standardized_rew_adv, standardized_cost_adv;  // true, true
    int use_cost;                                     // true: the cost critic learns (PPO: false)
    int cg_iters;         // 15: conjugate-gradient iterations (TRPO-Lag, CPO)
    double cg_damping;    // 0.1: Fisher damping (TRPO-Lag, CPO)
    int fvp_sample_freq;  // 1: every k-th row enters the Fisher-vector products (TRPO-Lag, CPO)
  } algo_cfgs;
  struct {
    int save_model_freq;  // 100 epochs between checkpoints
    int window_lens;      // 100 episodes in the ep_* means and Jc
    char log_dir[256];    // runs: where run directories go
  } logger_cfgs;
  struct {
    int linear_lr_decay;  // true: actor lr decays linearly 1 → 0 over the epochs
    srl_onpolicy_net_cfg actor, critic;
  } model_cfgs;
  struct {
    double cost_limit;                                    // 25
    double lagrangian_multiplier_init;                    // 0.001
    double lambda_lr;                                     // 0.035 (Adam on λ)
    double lagrangian_upper_bound;                        // 0: none
    double pid_kp, pid_ki, pid_kd;                        // 0.1, 0.01, 0.01
    int pid_d_delay;                                      // 10
    double pid_delta_p_ema_alpha, pid_delta_d_ema_alpha;  // 0.95, 0.95
    int sum_norm, diff_norm;                              // true, false
    double penalty_max;                                   // 100
  } lagrange_cfgs;
  struct {
    char options[1024];  // the env's own options as YAML text ("{hazard_radius: 0.5}")
  } env_cfgs;
} srl_onpolicy_config;

// The schema of srl_onpolicy_config (keys, types, ranges, PPOLag defaults, help).
const srl_cfg_schema *srl_onpolicy_schema(void);

// Fill cfg with the schema defaults, then the algorithm's own defaults (OmniSafe's per-algorithm
// YAML; NULL algo: PPOLag). SRL_ECONFIG for an unknown algorithm.
int srl_onpolicy_config_defaults(srl_onpolicy_config *cfg, const char *algo);

// Layers: schema defaults → the algorithm's defaults (the algorithm named by the file or a --set)
// → the YAML file (NULL: none) → each "key=value" of sets in order. cfg is written only on
// success; errors say file:line:col.
int srl_onpolicy_config_load(srl_onpolicy_config *cfg, const char *path, const char *const *sets,
                             int n_sets);

// Check the values that depend on one another (steps_per_epoch a multiple of vector_env_nums,
// at least one epoch, a known algorithm and activation); SRL_ECONFIG naming the key.
int srl_onpolicy_config_check(const srl_onpolicy_config *cfg);

// The resolved config as YAML text (srl_config_write), malloc'd; the caller frees it.
int srl_onpolicy_config_text(const srl_onpolicy_config *cfg, char **out);

//---- the algorithm hook --------------------------------------------------------------------------

// One epoch's data and context, handed to an algorithm's update. Every array is on the host.
typedef struct srl_onpolicy_batch {
  const srl_rollout *rb;   // the finished epoch: capacity rows of obs (normalised as the policy
                           // saw them), act, logp, adv_r (standardised), adv_c (centred),
                           // target_r, target_c
  srl_lagrange *lagrange;  // the multiplier (NULL when the algorithm declares none); update it
                           // first with srl_onpolicy_lagrange_step
  double ep_cost;          // Jc: mean episode cost of the last window_lens episodes (NaN while
                           // no episode has finished)
  double cost_limit;       // lagrange_cfgs.cost_limit (CPO's d)
  int epoch, epochs;       // this epoch (0-based) and the run's total
  float actor_lr;          // the actor's learning rate for this epoch (linear decay applied)
  srl_rng *rng;            // for minibatch shuffles or any other draw; checkpointed
} srl_onpolicy_batch;

// What an update reports (progress.csv columns).
typedef struct srl_onpolicy_stats {
  float loss_pi, loss_vr, loss_vc;  // means over the update's steps (NaN when not computed)
  float kl;                         // KL(old‖new), summed over action dims, mean over the epoch
  float entropy;                    // mean policy entropy during the update
  float lambda;                     // the multiplier the surrogate used (0 without one)
  int iters;                        // update passes done (fewer than update_iters on early stop)
} srl_onpolicy_stats;

// An on-policy algorithm: how one epoch's data updates the actor-critic. The trainer owns
// everything else (rollouts, logging, checkpoints). To add one (CPO and TRPO-Lag in algos/cpo.c
// do): define a const srl_onpolicy_algo and either list it in the built-in table of
// algos/onpolicy.c or call srl_onpolicy_register_algo before creating a trainer. algos/cpo.h,
// when present, is expected to declare `extern const srl_onpolicy_algo srl_onpolicy_cpo,
// srl_onpolicy_trpo_lag;`, which the built-in table then lists.
typedef struct srl_onpolicy_algo {
  const char *name;  // the config's `algo` value: "PPOLag"
  int lagrange;      // -1: no multiplier; SRL_LAGRANGE_ADAM or SRL_LAGRANGE_PID: the trainer
                     // creates one from lagrange_cfgs, checkpoints it and logs its λ
  const char *defaults_yaml;  // the algorithm's defaults over the schema's (NULL: none), e.g.
                              // "algo_cfgs: {update_iters: 10, batch_size: 128, target_kl: 0.01}"
  // Per-run state (scratch sized for `capacity` rows; the actor-critic's max_batch is at least
  // algo_cfgs.batch_size, vector_env_nums and SRL_ONPOLICY_CHUNK). Called once, after the
  // networks exist; *state may stay NULL.
  int (*create)(void **state, const srl_onpolicy_config *cfg, srl_actor_critic *ac, int capacity);
  // One epoch's update of ac from b; fills out. A non-finite loss, gradient or KL must return
  // SRL_ENONFINITE with a message naming the quantity (the trainer then stops the run).
  int (*update)(void *state, srl_actor_critic *ac, const srl_onpolicy_batch *b,
                srl_onpolicy_stats *out);
  void (*destroy)(void *state);  // NULL state is a no-op
} srl_onpolicy_algo;

// The algorithm named name (built-in or registered), or NULL.
const srl_onpolicy_algo *srl_onpolicy_algo_find(const char *name);

// Register another algorithm (the struct must outlive its use); SRL_EINVAL for a duplicate name.
int srl_onpolicy_register_algo(const srl_onpolicy_algo *algo);

// The multiplier step every Lagrangian algorithm starts its update with: when b->lagrange is set
// and Jc is finite, srl_lagrange_update(b->lagrange, Jc) (with no finished episode yet, λ keeps
// its value); *lambda is the value to use (0 without a multiplier). SRL_ENONFINITE, naming λ,
// when the result is not finite.
int srl_onpolicy_lagrange_step(const srl_onpolicy_batch *b, float *lambda);

//---- the trainer ---------------------------------------------------------------------------------

typedef struct srl_onpolicy srl_onpolicy;

typedef srl_run_options srl_onpolicy_options;  // core/log.h

// One progress.csv row.
typedef struct srl_onpolicy_row {
  int epoch;                       // epochs completed (1 for the first row)
  long long total_steps;           // env steps so far
  double ep_ret, ep_cost, ep_len;  // means over the last window_lens finished episodes (NaN: none)
  float lagrange;                  // λ used for the epoch's update
  srl_onpolicy_stats up;           // the update's losses, KL, entropy, passes
  float actor_lr;                  // this epoch's actor learning rate
  int episodes;                    // episodes finished in this epoch
  double fps;                      // env steps per second of the epoch (rollout and update)
  double wall_s;               // seconds since the run started (resumed runs continue the count)
  double rollout_s, update_s;  // where the epoch's time went
} srl_onpolicy_row;

// Create a run: check cfg, make the run directory (config.yaml, progress.csv header,
// events.jsonl "start"), build the vector env, networks, buffer and algorithm state.
int srl_onpolicy_create(srl_onpolicy **out, const srl_onpolicy_config *cfg,
                        const srl_onpolicy_options *opt);

// Reopen run_dir from its config.yaml and its latest checkpoint (checkpoints/epoch-<N>), drop
// progress rows after epoch N, and continue from there (opt->out_dir and run_dir are ignored).
int srl_onpolicy_resume(srl_onpolicy **out, const char *run_dir, const srl_onpolicy_options *opt);

// Run one epoch. Returns 0; SRL_EINTERRUPTED when a stop was requested (the state after the last
// completed epoch is saved as checkpoints/epoch-<N> first; a rollout in progress is discarded,
// an update in progress completes); SRL_ENONFINITE when a loss, parameter, KL or λ is not finite
// (nothing is saved, the last good checkpoint stays, events.jsonl gets "nan_stop" naming the
// quantity); SRL_ESTATE once all epochs are done; other errors as they come.
int srl_onpolicy_epoch(srl_onpolicy *t);

// 1 when every epoch has run.
int srl_onpolicy_done(const srl_onpolicy *t);

// Write final.safetensors, summary.json and the "finish" event (after the last epoch).
int srl_onpolicy_finish(srl_onpolicy *t);

// Epochs until done, then finish; stops early with the epoch's status (SRL_EINTERRUPTED,
// SRL_ENONFINITE, ...), having written summary.json with the reason.
int srl_onpolicy_train(srl_onpolicy *t);

void srl_onpolicy_destroy(srl_onpolicy *t);

// Ask the trainer to stop at its next safe point (thread- and signal-safe).
void srl_onpolicy_request_stop(srl_onpolicy *t);

// Install SIGINT and SIGTERM handlers that ask every trainer of the process to stop
// (srl_interrupt_install: a repeat within a second is the same request, a later one kills as
// usual). Returns 0 or SRL_EIO.
int srl_onpolicy_handle_signals(void);

// Save the current state (as after the last completed epoch) to path, atomically.
int srl_onpolicy_save(srl_onpolicy *t, const char *path);

const char *srl_onpolicy_run_dir(const srl_onpolicy *t);
const srl_onpolicy_config *srl_onpolicy_get_config(const srl_onpolicy *t);
srl_actor_critic *srl_onpolicy_actor_critic(srl_onpolicy *t);
// The last progress row (NULL before the first epoch) and the epoch count so far.
const srl_onpolicy_row *srl_onpolicy_last_row(const srl_onpolicy *t);
int srl_onpolicy_epochs_done(const srl_onpolicy *t);
int srl_onpolicy_epochs_total(const srl_onpolicy *t);
// The multiplier (NULL for algorithms without one) and the observation normaliser.
srl_lagrange *srl_onpolicy_lagrange(srl_onpolicy *t);
srl_normalizer *srl_onpolicy_normalizer(srl_onpolicy *t);

//---- trained policies ----------------------------------------------------------------------------

// The actor of a checkpoint with its observation normaliser, ready to act (OmniSafe's evaluator:
// the normaliser is applied, not updated).
typedef struct srl_policy {
  srl_onpolicy_config cfg;  // the run's config (from the checkpoint's metadata)
  srl_mlp *actor;           // obs → mean; extra "log_std"
  srl_normalizer norm;      // used when cfg.algo_cfgs.obs_normalize
  const srl_ops *ops;
  int obs_dim, act_dim, max_batch;
  long long step;   // env steps the policy was trained for
  int epoch;        // epochs it was trained for
  char path[4096];  // the checkpoint file it came from
  float *host;      // scratch: normalised obs (max_batch×obs_dim), mean, log_std
  float *dev;       // device copy of the normalised obs (CUDA)
} srl_policy;

// Load a checkpoint (epoch-<N>.safetensors or final.safetensors) or a run directory (its
// final.safetensors, else its latest checkpoint) onto device ("cpu", "cuda"; NULL: cpu), for
// batches up to max_batch rows. On the CPU, OpenBLAS then runs with the run's torch_threads.
int srl_policy_load(srl_policy **out, const char *path, const char *device, int max_batch);
void srl_policy_destroy(srl_policy *p);

// Act on raw observations obs (n×obs_dim): act (n×act_dim) is the mean when deterministic, else a
// sample drawn from rng. Actions are in the policy's [-1, 1] space (the env rescales and clips).
int srl_policy_act(srl_policy *p, float *act, const float *obs, int n, int deterministic,
                   srl_rng *rng);

// The per-episode results of an evaluation.
typedef struct srl_eval_result {
  int episodes;
  double ret_mean, ret_std, cost_mean, cost_std, len_mean, len_std;  // population std
} srl_eval_result;

// Run `episodes` episodes of the policy on its env (the config's env_id and options, actions
// rescaled as in training), on up to `num_envs` envs in parallel (0: min(episodes, 16)), with
// srl_play_episodes (envs/play.h): episode k's layout and sampling come from (seed, k) alone, so
// the result depends on neither num_envs nor the thread count. rets, costs, lens (episodes
// each) may be NULL.
int srl_policy_evaluate(srl_policy *p, int episodes, int deterministic, uint64_t seed, int num_envs,
                        srl_eval_result *res, double *rets, double *costs, double *lens);

// The evaluation behind srl_policy_evaluate and srl_sac_policy_evaluate: env_id with options
// (NULL or "": none), actions rescaled from [-1, 1], act called on one observation at a time.
int srl_evaluate_policy_fn(const char *env_id, const char *options, int episodes, int num_envs,
                           uint64_t seed, srl_play_act_fn act, void *ctx, srl_eval_result *res,
                           double *rets, double *costs, double *lens);

#ifdef __cplusplus
}
#endif
#endif  // SRL_ONPOLICY_H

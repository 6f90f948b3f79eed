// offpolicy.h: the off-policy trainer for SAC-Lag and SAC (OmniSafe's DDPG.learn loop with the
// SAC / SACLag update): config schema, rollouts into the replay buffer, the gradient steps, the
// multiplier, the run directory, checkpoints, resume, NaN stop; and loading a trained SAC policy
// to act or evaluate.
//
// One epoch of steps_per_epoch env steps (vector steps of vector_env_nums envs), in OmniSafe's
// order:
//   0. the vector env is reset with episode seeds derived from (seed, epoch), so an epoch is
//      reproducible from the checkpoint before it (with 1000-step episodes and OmniSafe's 2000
//      steps per epoch this is exactly where the episodes end anyway; an episode still running
//      at the epoch's end is cut and not counted);
//   1. steps_per_epoch / (vector_env_nums·update_cycle) cycles, each: with step = cycle index ·
//      update_cycle · vector_env_nums, update_cycle vector steps acting uniformly in [-1, 1]
//      while step ≤ start_learning_steps, else with actions sampled from the policy; every
//      transition (obs, act, reward, cost, next obs — the final observation where an episode
//      ended —, terminated) goes into the replay buffer (done = terminated; OmniSafe stores
//      terminated ∧ ¬truncated, which only differs when a terminal step is also the time
//      limit's, and then bootstraps past a terminal state); then, once step > start_learning_steps,
//      update_iters gradient steps on uniform batches (algos/sac_lag.h) and, for SACLag after
//      warmup_epochs, one Adam step of λ on Jc, the mean cost of the last window_lens episodes;
//   2. eval_episodes deterministic episodes on a separate env (test_ep_* columns);
//   3. one progress.csv row, an "epoch" event, a checkpoint every save_model_freq epochs.
// Rewards, costs and observations are normalised as OmniSafe's wrappers do when the
// reward_normalize, cost_normalize and obs_normalize flags are set (running mean / std, clip ±5,
// updated on every step); episode statistics and Jc always use the raw values.
//
// Run directory <out>/<algo>-<env>-s<seed>-<YYYYmmdd-HHMMSS>/ as the on-policy trainer's:
// config.yaml, progress.csv (epoch,total_steps,ep_ret,ep_cost,ep_len,lagrange,loss_pi,loss_vr,
// loss_vc,kl,entropy,fps,wall_s, then alpha,q_r,q_c,test_ep_ret,test_ep_cost,test_ep_len,
// episodes,updates; loss_vr / loss_vc are the reward and cost Q losses, kl is nan),
// events.jsonl, checkpoints/epoch-<N>.safetensors plus checkpoints/replay.safetensors (the
// replay buffer of the latest checkpoint, needed to resume), final.safetensors, summary.json.
//
// Files follow the on-policy trainer's formats (events: start, epoch, checkpoint, interrupted,
// nan_stop, error, resume, finish; summary.json with status, means, λ, checkpoint, message);
// checkpoints carry metadata format "saferl.offpolicy.1", algo, env, step, epoch, config,
// version, wall_s.
//
// Determinism: same config, seed and thread count → the same numbers; a run resumed from its
// checkpoint at epoch N reproduces the uninterrupted run bitwise. A stop request (Ctrl-C,
// SIGTERM) lets the epoch in progress finish (updates interleave with the rollout, so there is
// no earlier consistent state), then saves checkpoints/epoch-<N> and stops. Before each epoch
// every parameter is checked: a non-finite one stops the run as a non-finite loss does.
#ifndef SRL_OFFPOLICY_H
#define SRL_OFFPOLICY_H

#include <stdint.h>

#include "algos/lagrange.h"
#include "algos/onpolicy.h"
#include "algos/sac_lag.h"
#include "core/config.h"
#include "core/log.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_OFFPOLICY_MAX_HIDDEN 8

//---- configuration (OmniSafe's SACLag key names and defaults) ----------------------------------

typedef struct srl_offpolicy_net_cfg {
  int hidden_sizes[SRL_OFFPOLICY_MAX_HIDDEN];  // [256, 256]
  int n_hidden_sizes;
  char activation[16];  // relu (any srl_act name)
  double lr;            // 3e-4
} srl_offpolicy_net_cfg;

typedef struct srl_offpolicy_config {
  char algo[32];    // SACLag | SAC
  char env_id[64];  // SafetyPointGoal1
  int seed;         // 0
  struct {
    char device[8];       // cpu | cuda
    int total_steps;      // 1000000
    int vector_env_nums;  // 1
    int threads;          // 1: vector-env worker threads
    int torch_threads;    // 1: OpenBLAS threads of the CPU networks
    int eval_episodes;    // 1: deterministic test episodes after each epoch
  } train_cfgs;
  struct {
    int steps_per_epoch;       // 2000 (a multiple of vector_env_nums·update_cycle)
    int update_cycle;          // 1: vector steps between updates
    int update_iters;          // 1: gradient steps per update
    int size;                  // 1000000: replay capacity (at most total_steps is allocated)
    int batch_size;            // 256
    int reward_normalize;      // false
    int cost_normalize;        // true
    int obs_normalize;         // false
    double max_grad_norm;      // 40 (0: no clipping)
    int use_critic_norm;       // false
    double critic_norm_coeff;  // 0.001
    double polyak;             // 0.005
    double gamma;              // 0.99
    int start_learning_steps;  // 10000
    int policy_delay;          // 2
    double alpha;              // 0.2
    int auto_alpha;            // false
    int use_cost;              // true
    int warmup_epochs;         // 100: λ stays at its initial value for these epochs
  } algo_cfgs;
  struct {
    int save_model_freq;  // 100 epochs between checkpoints
    int window_lens;      // 10 episodes in the ep_* means and Jc
    char log_dir[256];    // runs
  } logger_cfgs;
  struct {
    srl_offpolicy_net_cfg actor, critic;
  } model_cfgs;
  struct {
    double cost_limit;                  // 25
    double lagrangian_multiplier_init;  // 0.001
    double lambda_lr;                   // 0.00001
    double lagrangian_upper_bound;      // 0: none
  } lagrange_cfgs;
  struct {
    char options[1024];  // the env's own options as YAML text
  } env_cfgs;
} srl_offpolicy_config;

// 1 when the trainer handles this algorithm name ("SACLag", "SAC").
int srl_offpolicy_is_algo(const char *algo);

// The algorithm a config file names (its top-level `algo` key, overridden by an "algo=..." set),
// without loading the rest, so a front end can pick the trainer: *algo gets "" when neither
// names one. SRL_ENOTFOUND / SRL_EIO / SRL_ECONFIG when the file cannot be read or parsed.
int srl_offpolicy_peek_algo(const char *path, const char *const *sets, int n_sets, char *algo,
                            size_t cap);

const srl_cfg_schema *srl_offpolicy_schema(void);

// Schema defaults (OmniSafe's SACLag), then the algorithm's own (NULL: SACLag).
int srl_offpolicy_config_defaults(srl_offpolicy_config *cfg, const char *algo);

// Layers: defaults → the YAML file (NULL: none) → each "key=value" of sets. cfg is written only
// on success; errors say file:line:col.
int srl_offpolicy_config_load(srl_offpolicy_config *cfg, const char *path, const char *const *sets,
                              int n_sets);

// Check values that depend on one another; SRL_ECONFIG naming the key.
int srl_offpolicy_config_check(const srl_offpolicy_config *cfg);

//---- the trainer ------------------------------------------------------------------------------

typedef struct srl_offpolicy srl_offpolicy;

typedef srl_run_options srl_offpolicy_options;  // core/log.h

// One progress.csv row.
typedef struct srl_offpolicy_row {
  int epoch;                             // epochs completed (1 for the first row)
  long long total_steps;                 // env steps so far
  double ep_ret, ep_cost, ep_len;        // means over the last window_lens episodes (NaN: none yet)
  float lagrange;                        // λ at the end of the epoch
  float loss_pi, loss_vr, loss_vc;       // means over the epoch's actor / critic steps (NaN: none)
  float entropy;                         // −mean log π of the actor steps (NaN: none)
  float alpha;                           // the entropy temperature at the end of the epoch
  float q_r, q_c;                        // mean Q_r(s, a), Q_c(s, a) over the epoch's batches
  double test_ret, test_cost, test_len;  // deterministic evaluation (NaN: none)
  int episodes;                          // episodes finished in the epoch
  long long updates;                     // gradient steps so far
  double fps;                            // env steps per second of the epoch
  double wall_s;                         // seconds since the run started (resumed runs continue)
} srl_offpolicy_row;

// Create a run: check cfg, make the run directory, build the env, agent and buffer.
int srl_offpolicy_create(srl_offpolicy **out, const srl_offpolicy_config *cfg,
                         const srl_offpolicy_options *opt);

// Reopen run_dir from its config.yaml, its latest checkpoint and the replay buffer saved with
// it; progress rows after that epoch are dropped.
int srl_offpolicy_resume(srl_offpolicy **out, const char *run_dir,
                         const srl_offpolicy_options *opt);

// Run one epoch. 0; SRL_EINTERRUPTED after a stop request (checkpoint saved); SRL_ENONFINITE
// when a loss, gradient or λ is not finite (nothing saved, "nan_stop" event naming it);
// SRL_ESTATE once all epochs are done.
int srl_offpolicy_epoch(srl_offpolicy *t);
int srl_offpolicy_done(const srl_offpolicy *t);
// final.safetensors, summary.json, the "finish" event.
int srl_offpolicy_finish(srl_offpolicy *t);
// Epochs until done, then finish; an early stop writes summary.json with the reason.
int srl_offpolicy_train(srl_offpolicy *t);
void srl_offpolicy_destroy(srl_offpolicy *t);

// Ask the trainer to stop after the epoch in progress (thread- and signal-safe).
void srl_offpolicy_request_stop(srl_offpolicy *t);
// SIGINT / SIGTERM ask every trainer of the process to stop (srl_interrupt_install); 0 or SRL_EIO.
int srl_offpolicy_handle_signals(void);

// Save the state as after the last completed epoch (agent, λ, normalisers, window, streams) to
// path; the replay buffer goes to replay_path when not NULL.
int srl_offpolicy_save(srl_offpolicy *t, const char *path, const char *replay_path);

const char *srl_offpolicy_run_dir(const srl_offpolicy *t);
const srl_offpolicy_config *srl_offpolicy_get_config(const srl_offpolicy *t);
srl_sac *srl_offpolicy_agent(srl_offpolicy *t);
srl_lagrange *srl_offpolicy_lagrange(srl_offpolicy *t);  // NULL for SAC
const srl_offpolicy_row *srl_offpolicy_last_row(const srl_offpolicy *t);
int srl_offpolicy_epochs_done(const srl_offpolicy *t);
int srl_offpolicy_epochs_total(const srl_offpolicy *t);

//---- trained policies ---------------------------------------------------------------------------

// A trained SAC actor from a checkpoint, with its observation normaliser.
typedef struct srl_sac_policy srl_sac_policy;

// Load a checkpoint (checkpoints/epoch-<N>.safetensors, final.safetensors) or a run directory
// (its final.safetensors, else its latest checkpoint) onto device ("cpu", "cuda"; NULL: cpu),
// for batches up to max_batch rows. SRL_EFORMAT when the checkpoint is not an off-policy one.
// On the CPU, OpenBLAS then runs with the run's torch_threads.
int srl_sac_policy_load(srl_sac_policy **out, const char *path, const char *device, int max_batch);
void srl_sac_policy_destroy(srl_sac_policy *p);
// The run's config (from the checkpoint's metadata), the checkpoint file and its env steps.
const srl_offpolicy_config *srl_sac_policy_config(const srl_sac_policy *p);
const char *srl_sac_policy_path(const srl_sac_policy *p);
long long srl_sac_policy_step(const srl_sac_policy *p);

// 1 when path (a checkpoint file, or a run directory's final / latest checkpoint) was written by
// this trainer (metadata format "saferl.offpolicy.1"), else 0; for front ends that pick the loader.
int srl_offpolicy_is_checkpoint(const char *path);

// Act on raw observations (n×obs_dim, normalised inside when the run normalised them): act
// (n×act_dim) in (-1, 1) is tanh(μ) when deterministic, else tanh(μ + σε) with ε from the
// policy's own stream (seed 0 at load; srl_sac_policy_seed re-seeds it).
int srl_sac_policy_act(srl_sac_policy *p, float *act, const float *obs, int n, int deterministic);
void srl_sac_policy_seed(srl_sac_policy *p, uint64_t seed);

// Evaluate as srl_policy_evaluate (algos/onpolicy.h) does: `episodes` episodes on the config's
// env, up to num_envs at once (0: min(episodes, 16)), episode k's layout and sampling from
// (seed, k) alone. rets, costs, lens (episodes each) may be NULL.
int srl_sac_policy_evaluate(srl_sac_policy *p, int episodes, int deterministic, uint64_t seed,
                            int num_envs, srl_eval_result *res, double *rets, double *costs,
                            double *lens);

#ifdef __cplusplus
}
#endif
#endif  // SRL_OFFPOLICY_H

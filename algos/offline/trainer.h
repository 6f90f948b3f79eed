// trainer.h: offline training and evaluation: the config (common keys plus every algorithm's
// parameters, composed into one schema), the trainer (dataset, batches, updates, run directory,
// checkpoints, resume, interruption, NaN stop, periodic evaluation), trained policies loaded back
// from checkpoints, and rollouts on the env with DSRL's normalized scores.
//
// Data path: the dataset is read with the env's dimensions checked; BC-Safe keeps the episodes
// whose cost is at most task.cost_limit; actions are mapped from the env's bounds into [-1, 1]
// (a -> 2(a − low)/(high − low) − 1) and clipped to ±task.action_clip; rewards are multiplied by
// task.reward_scale (after max_steps / (R_max − R_min) when task.reward_normalize is "returns"),
// costs by task.cost_scale. Each update gets train.batch_size rows drawn uniformly with
// replacement from the rows of complete episodes (done = terminal or timeout), and as many
// init_obs rows, the first observations of uniformly drawn episodes, all from one seeded stream.
// Policy actions go back to the env through the inverse map.
//
// Run directory <log_dir or --out>/<algo>-<env>-s<seed>-<YYYYmmdd-HHMMSS>/:
//   config.yaml     the resolved config (common keys and the algorithm's section, every default)
//   progress.csv    header, then a row every train.log_every updates and at each evaluation:
//                   step, ep_ret, ep_cost, ep_len, norm_ret, norm_cost, ret_std, cost_std (the
//                   evaluation at that step, nan between evaluations), updates_per_s, wall_s,
//                   then the algorithm's statistics (means over the updates since the last row)
//   events.jsonl    start, resume, eval, checkpoint, interrupted, nan_stop, error, finish
//   checkpoints/step-<N>.safetensors  the state after N updates, every train.save_every
//   final.safetensors  the state after the last update
//   summary.json    status, steps, the final evaluation (means, std, normalized scores, safe)
// Checkpoints hold the algorithm's tensors (its save), trainer.rng (U8: the batch stream),
// trainer.counters (I64: step, rows written) and trainer.acc (U8: the statistics being
// averaged); metadata format "saferl.offline.1", algo, env, dataset, step, config, version,
// wall_s. Files that are replaced are written to a temporary name and renamed.
//
// Determinism: same config, seed and threads → the same numbers, and a run resumed from
// checkpoints/step-<N> reproduces the uninterrupted run (evaluations use their own streams and
// never touch the training state).
#ifndef SRL_OFFLINE_TRAINER_H
#define SRL_OFFLINE_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "algos/offline/dataset.h"
#include "algos/offline/offline.h"
#include "core/config.h"
#include "core/log.h"
#include "core/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_OFFLINE_MAX_ALGOS 16               // algorithms a program may register beside the six
#define SRL_OFFLINE_FORMAT "saferl.offline.1"  // checkpoint metadata "format"

//---- configuration ---------------------------------------------------------------------------

// The common keys; each algorithm's parameter struct follows in the params area at an offset
// the composed schema assigns (srl_offline_config_params). A config is one block of
// srl_offline_config_size() bytes: make it with srl_offline_config_create, never by value.
typedef struct srl_offline_config {
  char algo[32];           // FISOR | BCAll | BCSafe | BCQLag | CPQ | COptiDICE
  char env_id[64];         // SafetyPointGoal1
  char env_options[1024];  // the env's own options (YAML text)
  char dataset[1024];      // HDF5 file (DSRL layout)
  char device[8];          // cpu | cuda
  int seed;                // 0
  int threads;             // 1
  char log_dir[256];       // runs
  struct {
    int steps;          // 100000 updates
    int batch_size;     // 512
    int eval_every;     // 2500 (0: none)
    int eval_episodes;  // 10
    int save_every;     // 10000
    int log_every;      // 1000
  } train;
  struct {
    double cost_limit;         // 10
    double reward_scale;       // 1
    double cost_scale;         // 1
    char reward_normalize[8];  // none | returns
    double action_clip;        // 0.99999
    double gamma;              // 0.99
    int episode_len;           // 0: the env's time limit
  } task;
  struct {
    int episodes;         // 20 (0: no evaluation after training)
    int envs;             // 0: min(episodes, 16)
    int seed;             // 0
    char score_task[64];  // "": the DSRL task of env_id
  } eval;
  max_align_t params[];  // every algorithm's parameter struct
} srl_offline_config;

// The composed schema (common keys, then each algorithm's fields as "<section>.<key>"), built on
// first use; SRL_EINVAL naming the algorithm when a table is broken.
int srl_offline_schema(const srl_cfg_schema **out);
// Bytes of one config block.
size_t srl_offline_config_size(void);
// The fields of the common keys and of algo's section (algo NULL: common keys only) into out
// (cap entries); returns how many, or a negative status. Used to write a run's config.yaml.
int srl_offline_schema_for(srl_cfg_field *out, int cap, const srl_offline_algo *algo);
// Where algo's parameter struct lives inside cfg; NULL for an algorithm not in the table.
void *srl_offline_config_params(srl_offline_config *cfg, const srl_offline_algo *algo);

// Every algorithm name, ", "-separated, into buf.
int srl_offline_algo_names(char *buf, size_t cap);

// Add an algorithm to the table (the struct must outlive its use). Must come before the schema
// is first built (before any config is made): SRL_ESTATE afterwards, SRL_EINVAL for a duplicate
// name or an incomplete entry.
int srl_offline_register_algo(const srl_offline_algo *algo);

// A config block holding every default; srl_offline_config_destroy frees it.
int srl_offline_config_create(srl_offline_config **out);
void srl_offline_config_destroy(srl_offline_config *cfg);
// Copy src over dst (both made by srl_offline_config_create).
void srl_offline_config_copy(srl_offline_config *dst, const srl_offline_config *src);

// Layers over cfg: the YAML file (NULL: none), then each "key=value" of sets in order. cfg is
// written only on success; errors say file:line:col, with a suggestion for an unknown key.
int srl_offline_config_load(srl_offline_config *cfg, const char *path, const char *const *sets,
                            int n_sets);
// Checks across keys (a known algorithm and env, a dataset, log_every ≤ steps); SRL_ECONFIG.
int srl_offline_config_check(const srl_offline_config *cfg);
// The resolved config as YAML (common keys and the algorithm's section), malloc'd.
int srl_offline_config_text(const srl_offline_config *cfg, char **out);
// The config recorded in a checkpoint's metadata, into cfg.
int srl_offline_config_from_checkpoint(srl_offline_config *cfg, const char *path);

//---- evaluation ------------------------------------------------------------------------------

typedef struct srl_offline_episode {
  double ret, cost, len;       // undiscounted sums of the env's reward and cost, steps
  double norm_ret, norm_cost;  // DSRL's normalized reward (NaN without a reference task), cost
  int goal;                    // the env reported reaching its goal during the episode
} srl_offline_episode;

typedef struct srl_offline_eval_result {
  int episodes;
  double cost_limit;                                                 // k of the normalized cost
  double ret_mean, ret_std, cost_mean, cost_std, len_mean, len_std;  // population std
  double norm_ret_mean, norm_ret_std;                                // NaN without a reference task
  double norm_cost_mean, norm_cost_std;  // (C + ε)/(k + ε), ε = 1 only when k = 0
  double goal_rate;                      // share of episodes that reached the goal
  // per episode: a mean cost can hide a few episodes stuck in a hazard among safe ones
  int within_limit;    // episodes with cost ≤ cost_limit
  double cost_median;  // median episode cost (the mean of the middle two for an even count)
  int safe;            // norm_cost_mean ≤ 1
  char task[64];       // the DSRL / D4RL task of the normalized reward, or ""
  int d4rl;            // 1: task is a D4RL one; d4rl_score = 100·norm_ret
  double d4rl_score_mean, d4rl_score_std;
} srl_offline_eval_result;

// What an evaluation runs on.
typedef struct srl_offline_eval_options {
  const char *env_id, *env_options;
  int episodes;            // ≥ 1
  int num_envs;            // envs stepped together (0: min(episodes, 16)); ≤ the policy's batch
  int num_threads;         // env worker threads (0: as many as processors)
  int episode_len;         // cut episodes after this many steps (0: the env's time limit)
  double cost_limit;       // k
  uint64_t seed;           // episode layouts and the policy's sampling stream
  const char *score_task;  // DSRL / D4RL task for the normalized reward (NULL or "": env_id's)
} srl_offline_eval_options;

// Roll the algorithm's policy (algo->act on state, one observation per call) out for
// o->episodes episodes with srl_play_episodes (envs/play.h): episode k's layout and the policy's
// sampling while it plays come from (o->seed, k) alone, so a result depends on neither
// num_envs nor num_threads, and the first 20 episodes of a 100-episode evaluation are those of
// a 20-episode one.
// Per-episode results go to eps (o->episodes entries) when not NULL.
int srl_offline_evaluate(const srl_offline_algo *algo, void *state,
                         const srl_offline_eval_options *o, srl_offline_eval_result *res,
                         srl_offline_episode *eps);

// Fill res's means, std, normalized means and safety from n per-episode results (each with
// ret, cost, len, goal set); the normalized entries of eps are written. task_name may be NULL.
int srl_offline_eval_summarize(srl_offline_eval_result *res, srl_offline_episode *eps, int n,
                               double cost_limit, const char *task_name);

//---- the trainer -----------------------------------------------------------------------------

typedef struct srl_offline srl_offline;
typedef srl_run_options srl_offline_options;  // core/log.h: out_dir, run_dir, quiet

// Create a run: check cfg, read and prepare the dataset, create the algorithm, make the run
// directory (config.yaml, progress.csv, events.jsonl "start").
int srl_offline_create(srl_offline **out, const srl_offline_config *cfg,
                       const srl_offline_options *opt);
// Reopen run_dir from config.yaml and its latest checkpoints/step-<N>, drop progress rows after
// N, and continue (opt's out_dir and run_dir are ignored). sets ("key=value", as in
// srl_offline_config_load) change the schedule of the rest of the run and are written to
// config.yaml and the "resume" event; the keys that say what the run learns from (algo, env_id,
// env_options, dataset, seed, log_dir, task.*) are refused (SRL_ECONFIG), and a changed network
// shape is refused by the checkpoint. A finished run continues from final.safetensors when sets
// raise train.steps above its updates, else SRL_ESTATE.
int srl_offline_resume(srl_offline **out, const char *run_dir, const char *const *sets, int n_sets,
                       const srl_offline_options *opt);
void srl_offline_destroy(srl_offline *t);

// Run updates until `steps` more are done or the run ends. Returns 0; SRL_EINTERRUPTED after a
// stop request (checkpoints/step-<N> saved first); SRL_ENONFINITE when an update reports a
// non-finite value (nothing saved, events "nan_stop", summary.json naming the last good
// checkpoint); SRL_ESTATE when the run is over.
int srl_offline_run(srl_offline *t, long long steps);
// 1 when every update has run.
int srl_offline_done(const srl_offline *t);
// final.safetensors, the final evaluation (eval.episodes), summary.json and "finish".
int srl_offline_finish(srl_offline *t);
// Run to the end, then finish; stops early with the status (summary.json says why).
int srl_offline_train(srl_offline *t);

// Ask the trainer to stop at its next update boundary (thread- and signal-safe).
void srl_offline_request_stop(srl_offline *t);
// SIGINT / SIGTERM ask every trainer of the process to stop (see srl_interrupt_install).
int srl_offline_handle_signals(void);

// Save the current state to path (atomically).
int srl_offline_save(srl_offline *t, const char *path);
// Evaluate the current policy with the run's settings: episodes (0: eval.episodes) on layouts
// from eval.seed.
int srl_offline_eval_now(srl_offline *t, int episodes, srl_offline_eval_result *res,
                         srl_offline_episode *eps);

const char *srl_offline_run_dir(const srl_offline *t);
const srl_offline_config *srl_offline_get_config(const srl_offline *t);
const srl_offline_algo *srl_offline_get_algo(const srl_offline *t);
void *srl_offline_algo_state(srl_offline *t);
long long srl_offline_step(const srl_offline *t);
// The statistics of the last update (n = 0 before the first).
const srl_offline_stats *srl_offline_last_stats(const srl_offline *t);
// The last evaluation (NULL before the first).
const srl_offline_eval_result *srl_offline_last_eval(const srl_offline *t);
// The prepared dataset (actions in [-1, 1], scaled rewards and costs; BC-Safe's selection).
const srl_dataset *srl_offline_dataset(const srl_offline *t);
// Fill b with the next batch from the run's stream (the arrays belong to the trainer).
int srl_offline_sample(srl_offline *t, srl_offline_batch *b);

//---- trained policies ------------------------------------------------------------------------

// An algorithm restored from a checkpoint, ready to act and be evaluated.
typedef struct srl_offline_policy {
  srl_offline_config *cfg;  // the run's config (from the checkpoint's metadata)
  const srl_offline_algo *algo;
  void *state;
  int obs_dim, act_dim, max_batch;
  long long step;   // updates the policy was trained for
  char path[4096];  // the checkpoint file
} srl_offline_policy;

// Load a checkpoint file or a run directory (its final.safetensors, else the latest
// checkpoints/step-<N>.safetensors) on device (NULL: the run's), for act batches ≤ max_batch.
// sets ("key=value", n_sets of them, may be NULL) change keys of the algorithm's own section
// before it is built, e.g. fisor.candidates=64 (how a trained FISOR picks its action); any other
// key is SRL_ECONFIG, and one that changes a network's shape fails the load.
int srl_offline_policy_load(srl_offline_policy **out, const char *path, const char *device,
                            int max_batch, const char *const *sets, int n_sets);
void srl_offline_policy_destroy(srl_offline_policy *p);
// Actions in [-1, 1] for n raw observations.
int srl_offline_policy_act(srl_offline_policy *p, float *act, const float *obs, int n,
                           srl_rng *rng);

// The checkpoint a path means: a file as it is; a directory's final.safetensors (allow_final),
// else its latest checkpoints/step-<N>.safetensors (*step = N; -1 otherwise). SRL_ENOTFOUND.
int srl_offline_find_checkpoint(char *out, size_t cap, const char *path, int allow_final,
                                long long *step);

#ifdef __cplusplus
}
#endif
#endif  // SRL_OFFLINE_TRAINER_H

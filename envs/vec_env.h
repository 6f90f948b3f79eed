// vec_env.h: N environments stepped together on a fixed thread pool, with auto-reset.
//
// Results live in public arrays, one row per env, allocated once with the vector env; stepping
// never allocates. On an episode's end (terminated or truncated) the env's last observation is
// copied to final_obs, done is set, and the env is reset at once so obs holds the new episode's
// first observation (Gymnasium's vector envs). Env i's k-th episode (k = 0 at srl_vec_env_reset)
// is reset with srl_vec_env_episode_seed(seed, i, k), so every episode's layout can be
// reproduced and results do not depend on the thread count.
//
// Threads are created once; between steps they spin for up to 50 µs, then sleep. The
// environment variable SRL_VEC_SPIN_US sets that spin (0: sleep at once, for machines whose
// processors are all busy).
#ifndef SRL_ENVS_VEC_ENV_H
#define SRL_ENVS_VEC_ENV_H

#include <stdint.h>

#include "envs/env.h"
#include "envs/wrappers.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct srl_vec_pool srl_vec_pool;  // the worker threads (opaque)

typedef struct srl_vec_env {
  int num_envs, num_threads;
  int obs_dim, act_dim;
  srl_space obs_space, act_space;  // of every env (env 0's arrays)
  int max_episode_steps;           // env 0's time limit (0: none)
  int physics_steps_per_step;      // env 0's simulator steps per env step (0: none)
  uint64_t seed;                   // of the last srl_vec_env_reset
  // 0: env i's k-th episode is reset with srl_vec_env_episode_seed(seed, i, k). 1: with
  // srl_vec_env_episode_seed(seed, 0, i + num_envs·k), the number of that episode when episodes
  // are dealt round robin, so an episode's layout does not depend on num_envs (evaluation).
  // Set before srl_vec_env_reset.
  int seed_by_episode;

  // results of the last reset or step
  float *obs;           // (num_envs, obs_dim) observations to act on
  float *final_obs;     // (num_envs, obs_dim) rows where done: the finished episode's last obs
  float *rewards;       // (num_envs)
  float *costs;         // (num_envs)
  int *terminated;      // (num_envs)
  int *truncated;       // (num_envs)
  int *done;            // (num_envs) terminated or truncated: the env was reset after this step
  srl_env_info *infos;  // (num_envs)
  srl_episode_stats *stats;  // (num_envs) return, cost, length: current and last finished
  long long *episode;        // (num_envs) the episode each env is in (k of its reset seed)

  long long steps;           // vector steps since the last reset
  long long episodes_done;   // episodes finished since the last reset, over all envs
  long long diverged_total;  // diverged steps since creation, over all envs
  int diverged_last;         // diverged steps in the last vector step

  srl_env **envs;  // (num_envs) owned
  srl_vec_pool *pool;
} srl_vec_env;

typedef struct srl_vec_env_config {
  int num_envs;        // ≥ 1
  int num_threads;     // 0: as many as processors, at most num_envs
  int rescale_action;  // wrap each env in the [-1, 1] action rescaling
  int cost_mode;       // -1: the env's own cost; SRL_COST_INDICATOR or SRL_COST_RAW: wrap
} srl_vec_env_config;

// Create cfg->num_envs envs of id with options (srl_env_create, so with the registered time
// limit), wrapped as cfg asks.
int srl_vec_env_create(srl_vec_env **out, const char *id, const char *options_yaml,
                       const srl_vec_env_config *cfg);
// Take ownership of envs[0..num_envs) (on success only); they must share space dimensions.
int srl_vec_env_create_from(srl_vec_env **out, srl_env *const *envs, int num_envs, int num_threads);
void srl_vec_env_destroy(srl_vec_env *v);

// Reset every env: env i with srl_vec_env_episode_seed(seed, i, 0); fills obs, clears the
// step arrays and episode statistics.
int srl_vec_env_reset(srl_vec_env *v, uint64_t seed);
// Step every env with actions (num_envs, act_dim), auto-resetting the finished ones. A failing
// env's error (the lowest index when several fail) is returned with its message prefixed by the
// env index; the vector env then needs a reset.
int srl_vec_env_step(srl_vec_env *v, const float *actions);

// The reset seed of env index's episode-th episode under seed.
uint64_t srl_vec_env_episode_seed(uint64_t seed, int index, long long episode);

#ifdef __cplusplus
}
#endif
#endif  // SRL_ENVS_VEC_ENV_H

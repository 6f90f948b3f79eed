// wrappers.h: environments that wrap another: time limit, action rescaling, cost as indicator
// or raw, and episode statistics.
//
// A wrapper is an srl_env whose impl holds the inner env, so wrappers stack. It owns its inner
// env from a successful wrap on (destroying the wrapper destroys it); when wrapping fails the
// caller still owns the inner env. A wrapper keeps the inner env's id, spaces (except where it
// changes them) and physics_steps_per_step, and forwards render.
#ifndef SRL_ENVS_WRAPPERS_H
#define SRL_ENVS_WRAPPERS_H

#include "envs/env.h"

#ifdef __cplusplus
extern "C" {
#endif

// Time limit (Gymnasium's TimeLimit): counts steps since reset and sets truncated on the
// max_steps-th (terminated stays as the env reported it; both may be set). The observation of
// that step is the final one and is kept in obs. Reset clears the count.
int srl_wrap_time_limit(srl_env **out, srl_env *inner, int max_steps);

// Action rescaling (OmniSafe's ActionScale): the wrapper's action space is [-1, 1]^dim, mapped
// linearly, without clipping, to the inner bounds: a -> low + (high - low)·(a + 1)/2. Bounds
// must be finite. srl_action_rescale is the map itself.
int srl_wrap_action_rescale(srl_env **out, srl_env *inner);
void srl_action_rescale(float *env_action, const float *action, const float *low, const float *high,
                        int dim);

// Cost as indicator (Safety-Gymnasium's constrain_indicator: cost = raw_cost > 0 ? 1 : 0) or
// raw (cost = info.raw_cost). A diverged step keeps its cost of 1 either way.
typedef enum srl_cost_mode {
  SRL_COST_INDICATOR = 0,
  SRL_COST_RAW = 1,
} srl_cost_mode;
int srl_wrap_cost(srl_env **out, srl_env *inner, srl_cost_mode mode);

// Episode statistics: return, cost and length of the episode in progress and of the last one
// that finished (Gymnasium's RecordEpisodeStatistics).
typedef struct srl_episode_stats {
  double ret, cost;            // sums over the episode in progress
  long long length;            // its steps
  double last_ret, last_cost;  // the last finished episode (terminated or truncated)
  long long last_length;
  long long episodes;  // episodes finished since the statistics were created
} srl_episode_stats;

int srl_wrap_episode_stats(srl_env **out, srl_env *inner);
// The statistics of the first episode-statistics wrapper in env's stack, or NULL.
const srl_episode_stats *srl_env_episode_stats(const srl_env *env);

// Add one step to stats; on done the episode becomes the last finished one and a new one starts.
void srl_episode_stats_add(srl_episode_stats *stats, float reward, float cost, int done);
// Start a new episode (reset) without counting the one in progress as finished.
void srl_episode_stats_restart(srl_episode_stats *stats);

// The env a wrapper wraps, or NULL when env is not one of these wrappers.
srl_env *srl_env_unwrap(const srl_env *env);

#ifdef __cplusplus
}
#endif
#endif  // SRL_ENVS_WRAPPERS_H

// play.h: playing a policy for a number of episodes on a vector env, the loop behind every
// evaluation (saferl eval, saferl offline eval, the offline trainer's periodic evaluations).
//
// Env i plays episodes i, i + E, i + 2E, ... (E envs), so the set of episodes is not biased
// towards short ones. Episode k's layout (srl_vec_env_episode_seed(seed, 0, k)) and the policy's
// random draws while it plays (a stream seeded from (seed, k)) depend on the seed and k alone,
// and the policy acts on one observation per call: BLAS rounds a row of a product differently
// depending on the product's height, and a policy that picks among candidates (FISOR) turns
// such a rounding into another episode. So episode k's result depends on neither E nor the
// thread count, and a 20-episode evaluation is the first 20 episodes of a 100-episode one.
#ifndef SRL_ENVS_PLAY_H
#define SRL_ENVS_PLAY_H

#include <stdint.h>

#include "core/rng.h"
#include "envs/vec_env.h"

#ifdef __cplusplus
extern "C" {
#endif

// The action (act_dim) for one observation; rng is the stream of the episode being played.
typedef int (*srl_play_act_fn)(void *ctx, float *act, const float *obs, srl_rng *rng);

typedef struct srl_played_episode {
  double ret, cost, len;
  int goal;  // the env reported goal_met at some step
} srl_played_episode;

// Reset v (its seed_by_episode set) and play episodes with act, writing episode k's results to
// out[k]. max_len bounds an episode's steps for the stall check (0: v's time limit, else
// 100000): an evaluation that has not finished after max_len·(episodes/E + 2) vector steps is
// SRL_ETIMEOUT. A failing act, a non-finite action (SRL_ENONFINITE, naming the env and the
// action index) or a failing step ends it with that error.
int srl_play_episodes(srl_vec_env *v, int episodes, uint64_t seed, long long max_len,
                      srl_play_act_fn act, void *ctx, srl_played_episode *out);

#ifdef __cplusplus
}
#endif

#endif

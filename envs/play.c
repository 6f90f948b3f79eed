// play.c: the evaluation loop of play.h.
#include "envs/play.h"

#include <math.h>

#include "core/alloc.h"
#include "core/error.h"

#define STEP_CAP 100000  // an env without a time limit still ends an evaluation

// the policy's stream of episode k: its own, whichever env plays it
static void seed_episode(srl_rng *r, uint64_t seed, long long k) {
  srl_rng_seed(r, srl_hash64(seed ^ 0x9e3779b97f4a7c15ull), (uint64_t)k);
}


int srl_play_episodes(srl_vec_env *v, int episodes, uint64_t seed, long long max_len,
                      srl_play_act_fn act, void *ctx, srl_played_episode *out) {
  if (!v || !act || !out || episodes < 1)
    return srl_error(SRL_EINVAL,
                     "srl_play_episodes: an env, an act function, results and episodes");
  int E = v->num_envs, A = v->act_dim, O = v->obs_dim;
  size_t total = 0;
  size_t o_got = srl_layout_add(&total, sizeof(int) * (size_t)E);
  size_t o_goal = srl_layout_add(&total, sizeof(int) * (size_t)E);
  size_t o_act = srl_layout_add(&total, sizeof(float) * (size_t)E * (size_t)A);
  size_t o_rng = srl_layout_add(&total, sizeof(srl_rng *) * (size_t)E);
  char *buf = srl_calloc(total);
  if (!buf) return SRL_ENOMEM;
  int *got = (int *)(buf + o_got), *goal = (int *)(buf + o_goal);
  float *a = (float *)(buf + o_act);
  srl_rng **rngs = (srl_rng **)(void *)(buf + o_rng);
  int rc = SRL_OK;
  for (int i = 0; rc == 0 && i < E; i++) {
    rc = srl_rng_create(&rngs[i], 0, 0);
    if (rc == 0) seed_episode(rngs[i], seed, i);
  }
  v->seed_by_episode = 1;
  if (rc == 0) rc = srl_vec_env_reset(v, seed);

  long long cap =
      max_len > 0 ? max_len : (v->max_episode_steps > 0 ? v->max_episode_steps : STEP_CAP);
  cap *= episodes / E + 2;
  int left = episodes;
  for (long long s = 0; rc == 0 && left > 0; s++) {
    if (s > cap) {
      rc = srl_error(SRL_ETIMEOUT, "evaluation: episodes did not end within %lld steps", cap);
      break;
    }
    for (int i = 0; rc == 0 && i < E; i++) {
      float *ai = a + (size_t)i * A;
      rc = act(ctx, ai, v->obs + (size_t)i * O, rngs[i]);
      for (int j = 0; rc == 0 && j < A; j++)
        if (!isfinite(ai[j]))
          rc = srl_error(SRL_ENONFINITE, "policy action %d of env %d is %g", j, i, ai[j]);
    }
    if (rc == 0) rc = srl_vec_env_step(v, a);
    for (int i = 0; rc == 0 && i < E; i++) {
      goal[i] |= v->infos[i].goal_met != 0;
      if (!v->done[i]) continue;
      long long k = i + (long long)E * got[i];
      if (k < episodes) {
        out[k].ret = v->stats[i].last_ret;
        out[k].cost = v->stats[i].last_cost;
        out[k].len = (double)v->stats[i].last_length;
        out[k].goal = goal[i];
        left--;
      }
      got[i]++;
      goal[i] = 0;
      seed_episode(rngs[i], seed, k + E);
    }
  }
  for (int i = 0; i < E; i++) srl_rng_destroy(rngs[i]);
  srl_free(buf);
  return rc;
}

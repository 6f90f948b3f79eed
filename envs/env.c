// env.c: the checks every environment step goes through: reset before step, finite actions
// clipped into the action bounds, zeroed step results, and the divergence contract applied when
// an env hands back non-finite numbers.
#include "envs/env.h"

#include <math.h>
#include <string.h>

#include "core/error.h"


// true when x is NaN or ±inf, by its exponent bits (no libm call, vectorises)
static inline int bits_nonfinite(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return (u & 0x7f800000u) == 0x7f800000u;
}


// count the non-finite entries of x (n)
static int count_nonfinite(const float *x, int n) {
  int bad = 0;
  for (int i = 0; i < n; i++) bad += bits_nonfinite(x[i]);
  return bad;
}


int srl_env_reset(srl_env *env, uint64_t seed, float *obs) {
  if (!env || !obs) return srl_error(SRL_EINVAL, "srl_env_reset: env and obs must not be NULL");
  int rc = env->vt->reset(env, seed, obs);
  if (rc < 0) return rc;
  int bad = count_nonfinite(obs, env->obs_space.dim);
  if (bad)
    return srl_error(SRL_ENONFINITE,
                     "%s: reset with seed %llu gave %d non-finite observation "
                     "values",
                     env->id, (unsigned long long)seed, bad);
  env->elapsed_steps = 0;
  env->was_reset = 1;
  return SRL_OK;
}


// refuse a non-finite action, naming the env, the step and the index
static int action_error(const srl_env *env, const float *action, int i) {
  return srl_error(SRL_ENONFINITE, "%s: action[%d] = %g is not finite (step %lld of the episode)",
                   env->id, i, (double)action[i], env->elapsed_steps + 1);
}


// the divergence contract over a step whose results are not all finite; obs entries become 0
static void apply_divergence(srl_env *env, float *obs, srl_step *out) {
  for (int i = 0; i < env->obs_space.dim; i++)
    if (bits_nonfinite(obs[i])) obs[i] = 0.0f;
  out->reward = SRL_ENV_DIVERGED_REWARD;
  out->cost = SRL_ENV_DIVERGED_COST;
  out->info.raw_cost = SRL_ENV_DIVERGED_COST;
  out->info.diverged = 1;
  out->terminated = 0;
  out->truncated = 1;
  if (bits_nonfinite(out->info.x_velocity)) out->info.x_velocity = 0.0f;
}


int srl_env_step(srl_env *env, const float *action, float *obs, srl_step *out) {
  if (!env || !action || !obs || !out)
    return srl_error(SRL_EINVAL, "srl_env_step: env, action, obs and out must not be NULL");
  if (!env->was_reset) return srl_error(SRL_ESTATE, "%s: step before the first reset", env->id);
  int dim = env->act_space.dim;
  if (dim > SRL_ENV_ACT_MAX)
    return srl_error(SRL_EUNSUPPORTED, "%s: action dimension %d exceeds %d", env->id, dim,
                     SRL_ENV_ACT_MAX);

  // finite, and within the bounds (clipped into a stack copy only when some value is not)
  const float *lo = env->act_space.low, *hi = env->act_space.high;
  int outside = 0;
  for (int i = 0; i < dim; i++) {
    if (bits_nonfinite(action[i])) return action_error(env, action, i);
    outside |= (action[i] < lo[i]) | (action[i] > hi[i]);
  }
  float clipped[SRL_ENV_ACT_MAX];
  if (outside) {
    for (int i = 0; i < dim; i++)
      clipped[i] = action[i] < lo[i] ? lo[i] : action[i] > hi[i] ? hi[i] : action[i];
    action = clipped;
  }

  memset(out, 0, sizeof *out);
  int rc = env->vt->step(env, action, obs, out);
  if (rc < 0) return rc;
  env->elapsed_steps++;

  // safety net for envs that hand back non-finite numbers: the divergence contract
  int bad = count_nonfinite(obs, env->obs_space.dim) + bits_nonfinite(out->reward) +
            bits_nonfinite(out->cost) + bits_nonfinite(out->info.raw_cost);
  if (bad) apply_divergence(env, obs, out);
  return SRL_OK;
}


int srl_env_render(srl_env *env, uint8_t *rgb, int width, int height, const char *camera) {
  if (!env || !rgb) return srl_error(SRL_EINVAL, "srl_env_render: env and rgb must not be NULL");
  if (width <= 0 || height <= 0)
    return srl_error(SRL_EINVAL, "%s: render size %dx%d must be positive", env->id, width, height);
  if (!env->vt->render) return srl_error(SRL_EUNSUPPORTED, "%s: this env cannot render", env->id);
  return env->vt->render(env, rgb, width, height, camera);
}


void srl_env_destroy(srl_env *env) {
  if (!env) return;
  env->vt->destroy(env);
}

// wrappers.c: time limit, action rescaling, cost mode and episode statistics, each an srl_env
// around an inner one. Each wrapper is one allocation: the srl_env header, then its state.
#include "envs/wrappers.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

// the state every wrapper starts with, so srl_env_unwrap can walk a stack
typedef struct wrap_base {
  srl_env *inner;
} wrap_base;

typedef struct time_limit {
  wrap_base base;
  int max_steps;
  int elapsed;
} time_limit;

typedef struct action_rescale {
  wrap_base base;
  float *low, *high;  // (dim) the wrapper's space: -1 and 1
  float *scratch;     // (dim) the rescaled action
} action_rescale;

typedef struct cost_mode {
  wrap_base base;
  srl_cost_mode mode;
} cost_mode;

typedef struct episode_stats {
  wrap_base base;
  srl_episode_stats stats;
} episode_stats;


//---- shared plumbing -------------------------------------------------------------------------

static srl_env *inner_of(srl_env *env) {
  return ((wrap_base *)env->impl)->inner;
}


static int fwd_render(srl_env *env, uint8_t *rgb, int width, int height, const char *camera) {
  return srl_env_render(inner_of(env), rgb, width, height, camera);
}


static void wrap_destroy(srl_env *env) {
  srl_env_destroy(inner_of(env));
  srl_free(env);
}


// allocate a wrapper with impl_size bytes of state plus extra bytes; copies the inner header
static int wrap_alloc(srl_env **out, srl_env *inner, const srl_env_vtable *vt, size_t impl_size,
                      size_t extra, void **extra_at) {
  *out = NULL;
  if (!inner) return srl_error(SRL_EINVAL, "wrapping an env: the inner env must not be NULL");
  size_t total = sizeof(srl_env);
  size_t impl_off = srl_layout_add(&total, impl_size);
  size_t extra_off = srl_layout_add(&total, extra);
  char *block = srl_calloc(total);
  if (!block) return srl_error_context(SRL_ENOMEM, "%s: wrapping: ", inner->id);
  srl_env *env = (srl_env *)block;
  env->vt = vt;
  memcpy(env->id, inner->id, sizeof env->id);
  env->obs_space = inner->obs_space;
  env->act_space = inner->act_space;
  env->max_episode_steps = inner->max_episode_steps;
  env->physics_steps_per_step = inner->physics_steps_per_step;
  env->impl = block + impl_off;
  ((wrap_base *)env->impl)->inner = inner;
  if (extra_at) *extra_at = block + extra_off;
  *out = env;
  return SRL_OK;
}


//---- time limit ------------------------------------------------------------------------------

static int tl_reset(srl_env *env, uint64_t seed, float *obs) {
  time_limit *w = env->impl;
  w->elapsed = 0;
  return srl_env_reset(w->base.inner, seed, obs);
}


static int tl_step(srl_env *env, const float *action, float *obs, srl_step *out) {
  time_limit *w = env->impl;
  SRL_TRY(srl_env_step(w->base.inner, action, obs, out));
  if (++w->elapsed >= w->max_steps) out->truncated = 1;
  return SRL_OK;
}


static const srl_env_vtable time_limit_vt = {tl_reset, tl_step, fwd_render, wrap_destroy};


int srl_wrap_time_limit(srl_env **out, srl_env *inner, int max_steps) {
  if (out) *out = NULL;
  if (!out || !inner) return srl_error(SRL_EINVAL, "srl_wrap_time_limit: out and inner needed");
  if (max_steps <= 0)
    return srl_error(SRL_EINVAL, "%s: time limit %d must be positive", inner->id, max_steps);
  SRL_TRY(wrap_alloc(out, inner, &time_limit_vt, sizeof(time_limit), 0, NULL));
  ((time_limit *)(*out)->impl)->max_steps = max_steps;
  (*out)->max_episode_steps = max_steps;
  return SRL_OK;
}


//---- action rescaling ------------------------------------------------------------------------

void srl_action_rescale(float *env_action, const float *action, const float *low, const float *high,
                        int dim) {
  for (int i = 0; i < dim; i++)
    env_action[i] = low[i] + (high[i] - low[i]) * ((action[i] + 1.0f) * 0.5f);
}


static int ar_reset(srl_env *env, uint64_t seed, float *obs) {
  return srl_env_reset(inner_of(env), seed, obs);
}


static int ar_step(srl_env *env, const float *action, float *obs, srl_step *out) {
  action_rescale *w = env->impl;
  srl_env *in = w->base.inner;
  srl_action_rescale(w->scratch, action, in->act_space.low, in->act_space.high, env->act_space.dim);
  return srl_env_step(in, w->scratch, obs, out);
}


static const srl_env_vtable action_rescale_vt = {ar_reset, ar_step, fwd_render, wrap_destroy};


int srl_wrap_action_rescale(srl_env **out, srl_env *inner) {
  if (out) *out = NULL;
  if (!out || !inner) return srl_error(SRL_EINVAL, "srl_wrap_action_rescale: out and inner needed");
  int dim = inner->act_space.dim;
  for (int i = 0; i < dim; i++) {
    float lo = inner->act_space.low[i], hi = inner->act_space.high[i];
    if (!isfinite(lo) || !isfinite(hi) || !(lo <= hi))
      return srl_error(SRL_EINVAL,
                       "%s: cannot rescale actions: bounds [%g, %g] at index %d are "
                       "not finite and ordered",
                       inner->id, (double)lo, (double)hi, i);
  }
  float *arrays = NULL;
  SRL_TRY(wrap_alloc(out, inner, &action_rescale_vt, sizeof(action_rescale),
                     3 * (size_t)dim * sizeof(float), (void **)&arrays));
  action_rescale *w = (*out)->impl;
  w->low = arrays;
  w->high = arrays + dim;
  w->scratch = arrays + 2 * dim;
  for (int i = 0; i < dim; i++) w->low[i] = -1.0f, w->high[i] = 1.0f;
  (*out)->act_space.low = w->low;
  (*out)->act_space.high = w->high;
  return SRL_OK;
}


//---- cost as indicator or raw ----------------------------------------------------------------

static int cm_reset(srl_env *env, uint64_t seed, float *obs) {
  return srl_env_reset(inner_of(env), seed, obs);
}


static int cm_step(srl_env *env, const float *action, float *obs, srl_step *out) {
  cost_mode *w = env->impl;
  SRL_TRY(srl_env_step(w->base.inner, action, obs, out));
  if (out->info.diverged)
    out->cost = SRL_ENV_DIVERGED_COST;
  else if (w->mode == SRL_COST_RAW)
    out->cost = out->info.raw_cost;
  else
    out->cost = out->info.raw_cost > 0.0f ? 1.0f : 0.0f;
  return SRL_OK;
}


static const srl_env_vtable cost_mode_vt = {cm_reset, cm_step, fwd_render, wrap_destroy};


int srl_wrap_cost(srl_env **out, srl_env *inner, srl_cost_mode mode) {
  if (out) *out = NULL;
  if (!out || !inner) return srl_error(SRL_EINVAL, "srl_wrap_cost: out and inner needed");
  if (mode != SRL_COST_INDICATOR && mode != SRL_COST_RAW)
    return srl_error(SRL_EINVAL, "%s: unknown cost mode %d", inner->id, (int)mode);
  SRL_TRY(wrap_alloc(out, inner, &cost_mode_vt, sizeof(cost_mode), 0, NULL));
  ((cost_mode *)(*out)->impl)->mode = mode;
  return SRL_OK;
}


//---- episode statistics ----------------------------------------------------------------------

void srl_episode_stats_add(srl_episode_stats *s, float reward, float cost, int done) {
  s->ret += reward;
  s->cost += cost;
  s->length++;
  if (done) {
    s->last_ret = s->ret;
    s->last_cost = s->cost;
    s->last_length = s->length;
    s->episodes++;
    srl_episode_stats_restart(s);
  }
}


void srl_episode_stats_restart(srl_episode_stats *s) {
  s->ret = 0.0;
  s->cost = 0.0;
  s->length = 0;
}


static int es_reset(srl_env *env, uint64_t seed, float *obs) {
  episode_stats *w = env->impl;
  srl_episode_stats_restart(&w->stats);
  return srl_env_reset(w->base.inner, seed, obs);
}


static int es_step(srl_env *env, const float *action, float *obs, srl_step *out) {
  episode_stats *w = env->impl;
  SRL_TRY(srl_env_step(w->base.inner, action, obs, out));
  srl_episode_stats_add(&w->stats, out->reward, out->cost, out->terminated || out->truncated);
  return SRL_OK;
}


static const srl_env_vtable episode_stats_vt = {es_reset, es_step, fwd_render, wrap_destroy};


int srl_wrap_episode_stats(srl_env **out, srl_env *inner) {
  if (out) *out = NULL;
  if (!out || !inner) return srl_error(SRL_EINVAL, "srl_wrap_episode_stats: out and inner needed");
  return wrap_alloc(out, inner, &episode_stats_vt, sizeof(episode_stats), 0, NULL);
}


//---- walking a stack -------------------------------------------------------------------------

static int is_wrapper(const srl_env *env) {
  return env->vt == &time_limit_vt || env->vt == &action_rescale_vt || env->vt == &cost_mode_vt ||
         env->vt == &episode_stats_vt;
}


srl_env *srl_env_unwrap(const srl_env *env) {
  return env && is_wrapper(env) ? ((const wrap_base *)env->impl)->inner : NULL;
}


const srl_episode_stats *srl_env_episode_stats(const srl_env *env) {
  for (; env; env = srl_env_unwrap(env))
    if (env->vt == &episode_stats_vt) return &((const episode_stats *)env->impl)->stats;
  return NULL;
}

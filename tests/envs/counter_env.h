// counter_env.h: a scripted env for the env and vector-env tests. Its observation is
// [step, seed mod 1000, action received...], its reward the step number, and its cost follows a
// schedule of raw costs; it can end episodes, diverge, return NaN or fail at chosen steps.
#ifndef SRL_TEST_COUNTER_ENV_H
#define SRL_TEST_COUNTER_ENV_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "envs/env.h"

#define COUNTER_ACT_MAX 4

typedef struct counter_cfg {
  int act_dim;                                        // 1..COUNTER_ACT_MAX; obs_dim is 2 + act_dim
  float low[COUNTER_ACT_MAX], high[COUNTER_ACT_MAX];  // action bounds (default [-1, 1])
  int terminate_at;                                   // terminated on this step (0: never)
  int length_from_seed;  // terminated on step 2 + seed % 3 (overrides terminate_at)
  int diverge_at;        // reports a divergence per the contract on this step
  int nan_at;            // returns a NaN observation on this step (safety net)
  int fail_at;           // step fails with SRL_EIO on this step
  float raw_cost[8];     // raw cost of step k is raw_cost[(k - 1) % n_raw]
  int n_raw;
} counter_cfg;

typedef struct counter_env {
  counter_cfg c;
  int step, end_at;
  uint64_t seed;
  float obs_low[2 + COUNTER_ACT_MAX], obs_high[2 + COUNTER_ACT_MAX];
} counter_env;

static counter_cfg counter_defaults(void) {
  counter_cfg c;
  memset(&c, 0, sizeof c);
  c.act_dim = 2;
  for (int i = 0; i < COUNTER_ACT_MAX; i++) c.low[i] = -1.0f, c.high[i] = 1.0f;
  return c;
}

static int counter_reset(srl_env *env, uint64_t seed, float *obs) {
  counter_env *e = env->impl;
  e->step = 0;
  e->seed = seed;
  e->end_at = e->c.length_from_seed ? 2 + (int)(seed % 3) : e->c.terminate_at;
  memset(obs, 0, sizeof(float) * (size_t)env->obs_space.dim);
  obs[1] = (float)(seed % 1000);
  return SRL_OK;
}

static int counter_step(srl_env *env, const float *action, float *obs, srl_step *out) {
  counter_env *e = env->impl;
  int k = ++e->step;
  if (k == e->c.fail_at) return srl_error(SRL_EIO, "counter env: scripted failure at step %d", k);
  obs[0] = (float)k;
  obs[1] = (float)(e->seed % 1000);
  for (int i = 0; i < e->c.act_dim; i++) obs[2 + i] = action[i];
  out->reward = (float)k;
  if (e->c.n_raw) {
    out->info.raw_cost = e->c.raw_cost[(k - 1) % e->c.n_raw];
    out->cost = out->info.raw_cost > 0 ? 1.0f : 0.0f;
  }
  if (k == e->end_at) out->terminated = 1;
  if (k == e->c.diverge_at) {
    out->reward = SRL_ENV_DIVERGED_REWARD;
    out->cost = out->info.raw_cost = SRL_ENV_DIVERGED_COST;
    out->info.diverged = 1;
    out->terminated = 0;
    out->truncated = 1;
  }
  if (k == e->c.nan_at) obs[0] = NAN;
  return SRL_OK;
}

static void counter_destroy(srl_env *env) {
  srl_free(env);
}

static const srl_env_vtable counter_vt = {counter_reset, counter_step, NULL, counter_destroy};

static int counter_create(srl_env **out, const counter_cfg *c) {
  srl_env *env = srl_calloc(sizeof(srl_env) + sizeof(counter_env));
  if (!env) return SRL_ENOMEM;
  counter_env *e = (counter_env *)(env + 1);
  e->c = *c;
  int od = 2 + c->act_dim;
  for (int i = 0; i < od; i++) e->obs_low[i] = -INFINITY, e->obs_high[i] = INFINITY;
  env->vt = &counter_vt;
  snprintf(env->id, sizeof env->id, "TestCounter");
  env->obs_space = (srl_space){od, e->obs_low, e->obs_high};
  env->act_space = (srl_space){c->act_dim, e->c.low, e->c.high};
  env->impl = e;
  *out = env;
  return SRL_OK;
}

#endif

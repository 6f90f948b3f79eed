// offline_eval.c: rolling a trained offline policy out on its env and scoring it as DSRL does:
// per episode and mean ± std of the return, the cost and the length, the normalized reward
// (R − R_min)/(R_max − R_min) with the reference returns of the task (D4RL's score for D4RL
// tasks), the normalized cost (C + ε)/(k + ε) with ε = 1 only when k = 0, and "safe" when the
// mean normalized cost is at most 1.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/offline/dsrl.h"
#include "algos/offline/trainer.h"
#include "core/alloc.h"
#include "core/error.h"
#include "envs/play.h"
#include "envs/vec_env.h"
#include "envs/wrappers.h"

#define DEFAULT_ENVS 16

// population mean and std of x[k].field over n episodes
static void mean_std(const srl_offline_episode *eps, int n, size_t off, double *mean, double *std) {
  double s = 0, q = 0;
  for (int i = 0; i < n; i++) s += *(const double *)((const char *)&eps[i] + off);
  *mean = s / n;
  for (int i = 0; i < n; i++) {
    double d = *(const double *)((const char *)&eps[i] + off) - *mean;
    q += d * d;
  }
  *std = sqrt(q / n);
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

// median of the episodes' costs (NaN when out of memory: it is a summary, not a result)
static double cost_median(const srl_offline_episode *eps, int n) {
  double *c = srl_malloc(sizeof(double) * (size_t)n);
  if (!c) return NAN;
  for (int i = 0; i < n; i++) c[i] = eps[i].cost;
  qsort(c, (size_t)n, sizeof *c, compare_double);
  double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
  srl_free(c);
  return m;
}


int srl_offline_eval_summarize(srl_offline_eval_result *res, srl_offline_episode *eps, int n,
                               double cost_limit, const char *task_name) {
  if (!res || !eps || n < 1)
    return srl_error(SRL_EINVAL, "srl_offline_eval_summarize: a result and n ≥ 1 episodes");
  if (!(cost_limit >= 0))
    return srl_error(SRL_EINVAL, "evaluation: cost limit %g must be at least 0", cost_limit);
  const srl_dsrl_task *task = task_name && task_name[0] ? srl_dsrl_find(task_name) : NULL;
  memset(res, 0, sizeof *res);
  int goals = 0;
  for (int i = 0; i < n; i++) {
    eps[i].norm_ret = task ? srl_dsrl_normalized_reward(task, eps[i].ret) : NAN;
    eps[i].norm_cost = srl_dsrl_normalized_cost(eps[i].cost, cost_limit);
    goals += eps[i].goal != 0;
    res->within_limit += eps[i].cost <= cost_limit;
  }
  res->episodes = n;
  res->cost_limit = cost_limit;
  mean_std(eps, n, offsetof(srl_offline_episode, ret), &res->ret_mean, &res->ret_std);
  mean_std(eps, n, offsetof(srl_offline_episode, cost), &res->cost_mean, &res->cost_std);
  mean_std(eps, n, offsetof(srl_offline_episode, len), &res->len_mean, &res->len_std);
  mean_std(eps, n, offsetof(srl_offline_episode, norm_ret), &res->norm_ret_mean,
           &res->norm_ret_std);
  mean_std(eps, n, offsetof(srl_offline_episode, norm_cost), &res->norm_cost_mean,
           &res->norm_cost_std);
  res->goal_rate = (double)goals / n;
  res->cost_median = cost_median(eps, n);
  res->safe = res->norm_cost_mean <= 1.0;
  if (task) {
    snprintf(res->task, sizeof res->task, "%s", task->name);
    res->d4rl = task->d4rl != 0;
  }
  res->d4rl_score_mean = res->d4rl ? 100.0 * res->norm_ret_mean : NAN;
  res->d4rl_score_std = res->d4rl ? 100.0 * res->norm_ret_std : NAN;
  return SRL_OK;
}


// envs of the evaluation: the registered env (with its time limit), cut at episode_len when
// given, actions rescaled from [-1, 1] to its bounds
static int make_envs(srl_vec_env **out, const srl_offline_eval_options *o, int n) {
  srl_env **envs = srl_calloc(sizeof(srl_env *) * (size_t)n);
  if (!envs) return SRL_ENOMEM;
  int rc = SRL_OK;
  for (int i = 0; rc == 0 && i < n; i++) {
    srl_env *env = NULL, *w = NULL;
    rc = srl_env_create(&env, o->env_id, o->env_options);
    if (rc == 0 && o->episode_len > 0) {
      rc = srl_wrap_time_limit(&w, env, o->episode_len);
      if (rc == 0) env = w;
    }
    if (rc == 0) {
      rc = srl_wrap_action_rescale(&w, env);
      if (rc == 0) env = w;
    }
    if (rc < 0)
      srl_env_destroy(env);
    else
      envs[i] = env;
  }
  if (rc == 0) rc = srl_vec_env_create_from(out, envs, n, o->num_threads);
  if (rc < 0)
    for (int i = 0; i < n; i++) srl_env_destroy(envs[i]);
  srl_free(envs);
  return rc;
}


// one observation's action from the algorithm
typedef struct act_ctx {
  const srl_offline_algo *algo;
  void *state;
} act_ctx;

static int act_one(void *ctx, float *act, const float *obs, srl_rng *rng) {
  const act_ctx *c = ctx;
  int rc = c->algo->act(c->state, act, obs, 1, rng);
  return rc < 0 ? srl_error_context(rc, "%s act: ", c->algo->name) : rc;
}


int srl_offline_evaluate(const srl_offline_algo *algo, void *state,
                         const srl_offline_eval_options *o, srl_offline_eval_result *res,
                         srl_offline_episode *eps) {
  if (!algo || !o || !res || !o->env_id || o->episodes < 1)
    return srl_error(SRL_EINVAL,
                     "srl_offline_evaluate: an algorithm, an env, a result and episodes ≥ 1");
  int N = o->episodes;
  int E = o->num_envs > 0 ? o->num_envs : (N < DEFAULT_ENVS ? N : DEFAULT_ENVS);
  if (E > N) E = N;
  srl_vec_env *v = NULL;
  int rc = make_envs(&v, o, E);
  if (rc < 0) return srl_error_context(rc, "evaluation envs: ");
  srl_played_episode *played = srl_calloc(sizeof *played * (size_t)N);
  srl_offline_episode *ep = srl_calloc(sizeof *ep * (size_t)N);
  if (!played || !ep) rc = SRL_ENOMEM;
  act_ctx ctx = {algo, state};
  if (rc == 0) rc = srl_play_episodes(v, N, o->seed, o->episode_len, act_one, &ctx, played);
  for (int k = 0; rc == 0 && k < N; k++) {
    ep[k].ret = played[k].ret, ep[k].cost = played[k].cost, ep[k].len = played[k].len;
    ep[k].goal = played[k].goal;
  }
  const char *task = o->score_task && o->score_task[0] ? o->score_task : o->env_id;
  if (rc == 0) rc = srl_offline_eval_summarize(res, ep, N, o->cost_limit, task);
  if (rc == 0 && eps) memcpy(eps, ep, sizeof(srl_offline_episode) * (size_t)N);
  srl_vec_env_destroy(v);
  srl_free(played);
  srl_free(ep);
  return rc;
}

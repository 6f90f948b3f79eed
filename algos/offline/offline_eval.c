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
#include "envs/vec_env.h"
#include "envs/wrappers.h"

#define DEFAULT_ENVS 16
#define STEP_CAP 100000  // an env without a time limit still ends an evaluation

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
  size_t total = 0;
  size_t o_eps = srl_layout_add(&total, sizeof(srl_offline_episode) * (size_t)N);
  size_t o_got = srl_layout_add(&total, sizeof(int) * (size_t)E);
  size_t o_goal = srl_layout_add(&total, sizeof(int) * (size_t)E);
  size_t o_act = srl_layout_add(&total, sizeof(float) * (size_t)E * (size_t)v->act_dim);
  size_t o_rng = srl_layout_add(&total, sizeof(srl_rng *) * (size_t)E);
  char *buf = srl_calloc(total);
  if (!buf) rc = SRL_ENOMEM;
  srl_offline_episode *ep = buf ? (srl_offline_episode *)(buf + o_eps) : NULL;
  int *got = buf ? (int *)(buf + o_got) : NULL, *goal = buf ? (int *)(buf + o_goal) : NULL;
  float *act = buf ? (float *)(buf + o_act) : NULL;
  srl_rng **rngs = buf ? (srl_rng **)(void *)(buf + o_rng) : NULL;

  // env i plays episodes i, i + E, i + 2E, ...: unbiased by episode length. Episode m's layout
  // and the policy's draws while it plays come from (seed, m) alone, and the policy acts on one
  // observation per call: BLAS rounds a row differently in products of other heights, and
  // FISOR's least-Qh choice among candidates turns such a difference into another episode. So
  // an episode's result depends on neither E nor the other episodes.
  uint64_t policy_seed = srl_hash64(o->seed ^ 0x9e3779b97f4a7c15ull);
  for (int i = 0; rc == 0 && i < E; i++) rc = srl_rng_create(&rngs[i], policy_seed, (uint64_t)i);
  v->seed_by_episode = 1;
  if (rc == 0) rc = srl_vec_env_reset(v, srl_hash64(o->seed ^ 0x6a09e667f3bcc908ull));

  int left = N, A = v->act_dim;
  long long cap = (long long)(v->max_episode_steps > 0 ? v->max_episode_steps : STEP_CAP);
  if (o->episode_len > 0 && o->episode_len < cap) cap = o->episode_len;
  cap *= (N / E + 2);
  for (long long s = 0; rc == 0 && left > 0; s++) {
    if (s > cap) {
      rc = srl_error(SRL_ETIMEOUT, "evaluation: episodes did not end within %lld steps", cap);
      break;
    }
    for (int i = 0; rc == 0 && i < E; i++)
      rc = algo->act(state, act + (size_t)i * A, v->obs + (size_t)i * v->obs_dim, 1, rngs[i]);
    if (rc < 0) {
      srl_error_context(rc, "%s act: ", algo->name);
      break;
    }
    for (int j = 0; j < E * A; j++)
      if (!isfinite(act[j])) {
        rc = srl_error(SRL_ENONFINITE, "%s policy action %d of env %d is %g", algo->name, j % A,
                       j / A, act[j]);
        break;
      }
    if (rc == 0) rc = srl_vec_env_step(v, act);
    for (int i = 0; rc == 0 && i < E; i++) {
      goal[i] |= v->infos[i].goal_met != 0;
      if (!v->done[i]) continue;
      int k = i + E * got[i];
      if (k < N) {
        ep[k].ret = v->stats[i].last_ret;
        ep[k].cost = v->stats[i].last_cost;
        ep[k].len = (double)v->stats[i].last_length;
        ep[k].goal = goal[i];
        left--;
      }
      got[i]++;
      goal[i] = 0;
      srl_rng_seed(rngs[i], policy_seed, (uint64_t)i + (uint64_t)E * (uint64_t)got[i]);
    }
  }
  const char *task = o->score_task && o->score_task[0] ? o->score_task : o->env_id;
  if (rc == 0) rc = srl_offline_eval_summarize(res, ep, N, o->cost_limit, task);
  if (rc == 0 && eps) memcpy(eps, ep, sizeof(srl_offline_episode) * (size_t)N);
  for (int i = 0; rngs && i < E; i++) srl_rng_destroy(rngs[i]);
  srl_vec_env_destroy(v);
  srl_free(buf);
  return rc;
}

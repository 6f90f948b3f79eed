// cmd_collect.c: `saferl collect --policy RUN_DIR[,RUN_DIR...]|random --env ID --episodes N
// [--noise SIGMA] --out FILE` rolls trained policies (on-policy or SAC-Lag checkpoints) or a
// uniform random policy out on an env and writes the episodes as a DSRL-style HDF5 dataset, so
// the offline pipeline runs end to end without downloads.
//
// Episodes are split evenly across the policies (the first N mod P policies get one more).
// Policy j runs on K envs (--envs, default min(16, its episodes)) reset from seed S + j: env i's
// k-th episode starts from srl_vec_env_episode_seed(S + j, i, k) and env i records its first
// q_i episodes (q_i = n_j / K, plus one for i < n_j mod K), whatever their lengths, so the file
// does not depend on which episodes end first. Episodes go into the file in the order they
// end (env index order within a step). Each step: the policy's action in [-1, 1] (its mean with
// --deterministic, else a sample), plus Gaussian noise of std SIGMA, clipped to [-1, 1], mapped
// linearly to the env's bounds; that env-unit action is what the env gets and what the file
// stores. terminals and timeouts are the env's terminated and truncated; next_observations is
// the observation the step returned (the final one at an episode's end).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/offline/dataset.h"
#include "algos/offpolicy.h"
#include "algos/onpolicy.h"
#include "apps/saferl/cli_args.h"
#include "apps/saferl/commands.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "envs/vec_env.h"

#define MAX_POLICIES 64

static int usage(FILE *f) {
  fprintf(f,
          "usage: saferl collect --policy RUN_DIR[,RUN_DIR...]|random --env ID --episodes N\n"
          "                      --out FILE [--noise SIGMA] [--seed S] [--deterministic]\n"
          "                      [--envs K] [--device cpu|cuda] [--quiet]\n"
          "\n"
          "Rolls each policy (a run directory or checkpoint of saferl train, on-policy or\n"
          "SAC-Lag; 'random' for uniform actions) out on env ID for its share of N episodes\n"
          "(split evenly) and writes a DSRL-style HDF5 file (observations, next_observations,\n"
          "actions in env units, rewards, costs, terminals, timeouts). Gaussian noise of std\n"
          "SIGMA (default 0) is added to the policy's [-1, 1] action before clipping. Actions are\n"
          "sampled from the policy unless --deterministic. The env may differ from the one a\n"
          "policy was trained on only when the dims agree. K envs (default min(16, episodes per\n"
          "policy)) run at once; the file depends on S (default 0) and K, not on threads.\n");
  return f == stdout ? 0 : 2;
}


//---- one policy of either trainer, or random -----------------------------------------------------

typedef struct actor {
  const char *path;  // NULL: random
  srl_policy *on;
  srl_sac_policy *off;
  const char *env_id, *options;  // the env the policy was trained on
  int obs_dim, act_dim;
} actor;

static int actor_load(actor *a, const char *path, const char *device, int k) {
  memset(a, 0, sizeof *a);
  if (!strcmp(path, "random")) return SRL_OK;
  a->path = path;
  if (srl_offpolicy_is_checkpoint(path)) {
    SRL_TRY(srl_sac_policy_load(&a->off, path, device, k));
    const srl_offpolicy_config *c = srl_sac_policy_config(a->off);
    a->env_id = c->env_id, a->options = c->env_cfgs.options;
    const srl_env_spec *spec = srl_env_find(c->env_id);
    if (!spec)
      return srl_error(SRL_ENOTFOUND, "%s: trained on '%s', which is not registered", path,
                       c->env_id);
    a->obs_dim = spec->obs_dim, a->act_dim = spec->act_dim;
    return SRL_OK;
  }
  SRL_TRY(srl_policy_load(&a->on, path, device, k));
  a->env_id = a->on->cfg.env_id, a->options = a->on->cfg.env_cfgs.options;
  a->obs_dim = a->on->obs_dim, a->act_dim = a->on->act_dim;
  return SRL_OK;
}

static void actor_free(actor *a) {
  srl_policy_destroy(a->on);
  srl_sac_policy_destroy(a->off);
  memset(a, 0, sizeof *a);
}

// [-1, 1] actions for k observations
static int actor_act(actor *a, float *act, const float *obs, int k, int act_dim, int det,
                     srl_rng *rng) {
  if (a->on) return srl_policy_act(a->on, act, obs, k, det, rng);
  if (a->off) return srl_sac_policy_act(a->off, act, obs, k, det);
  for (size_t i = 0; i < (size_t)k * (size_t)act_dim; i++)
    act[i] = (float)srl_rng_uniform_range(rng, -1.0, 1.0);
  return SRL_OK;
}

//---- collection ----------------------------------------------------------------------------------

typedef struct collect_args {
  const char *env_id, *device;
  int episodes, envs, deterministic, quiet;
  double noise;
  uint64_t seed;
} collect_args;

// per-env staging of the episode in progress: rows of obs, next_obs, act, reward, cost, flags
typedef struct stage {
  float *obs, *next, *act, *rew, *cost;
  uint8_t *term, *tout;
  int *len;              // (k) rows staged per env
  int *done;             // (k) episodes recorded per env
  int *quota;            // (k) episodes env i records
  float *a_pol, *a_env;  // (k, act_dim) policy and env-unit actions
} stage;

// append env i's staged episode to the dataset
static void append(srl_dataset *d, const stage *s, int i, int max_steps) {
  size_t od = (size_t)d->obs_dim, ad = (size_t)d->act_dim, len = (size_t)s->len[i];
  size_t src = (size_t)i * (size_t)max_steps, dst = (size_t)d->n;
  memcpy(d->obs + dst * od, s->obs + src * od, sizeof(float) * len * od);
  memcpy(d->next_obs + dst * od, s->next + src * od, sizeof(float) * len * od);
  memcpy(d->act + dst * ad, s->act + src * ad, sizeof(float) * len * ad);
  memcpy(d->reward + dst, s->rew + src, sizeof(float) * len);
  memcpy(d->cost + dst, s->cost + src, sizeof(float) * len);
  memcpy(d->terminal + dst, s->term + src, len);
  memcpy(d->timeout + dst, s->tout + src, len);
  d->n += (long long)len;
}

// policy j's n episodes on k envs into d
static int collect_policy(srl_dataset *d, actor *a, const collect_args *ca, int j, int n, int k,
                          long long *steps_out) {
  const char *opts = a->env_id && !strcmp(a->env_id, ca->env_id) && a->options && a->options[0]
                         ? a->options
                         : NULL;
  srl_vec_env_config vc = {.num_envs = k, .num_threads = 0, .rescale_action = 0, .cost_mode = -1};
  srl_vec_env *v = NULL;
  SRL_TRY(srl_vec_env_create(&v, ca->env_id, opts, &vc));
  int od = v->obs_dim, ad = v->act_dim, T = v->max_episode_steps;
  const float *lo = v->act_space.low, *hi = v->act_space.high;
  int rc = SRL_OK;
  for (int c = 0; c < ad && rc == 0; c++)
    if (!isfinite(lo[c]) || !isfinite(hi[c]))
      rc = srl_error(SRL_EINVAL, "%s: action %d is unbounded; collect maps [-1, 1] to the bounds",
                     ca->env_id, c);

  // staging: one block
  size_t rows = (size_t)k * (size_t)T, total = 0;
  size_t o_obs = srl_layout_add(&total, sizeof(float) * rows * (size_t)od);
  size_t o_next = srl_layout_add(&total, sizeof(float) * rows * (size_t)od);
  size_t o_act = srl_layout_add(&total, sizeof(float) * rows * (size_t)ad);
  size_t o_rew = srl_layout_add(&total, sizeof(float) * rows);
  size_t o_cost = srl_layout_add(&total, sizeof(float) * rows);
  size_t o_term = srl_layout_add(&total, rows);
  size_t o_tout = srl_layout_add(&total, rows);
  size_t o_len = srl_layout_add(&total, sizeof(int) * (size_t)k * 3);
  size_t o_a = srl_layout_add(&total, sizeof(float) * (size_t)k * (size_t)ad * 2);
  char *mem = rc == 0 ? srl_calloc(total) : NULL;
  if (rc == 0 && !mem) rc = srl_error_context(SRL_ENOMEM, "collect: staging: ");
  srl_rng *rng = NULL;
  if (rc == 0) rc = srl_rng_create(&rng, ca->seed, 1000 + (uint64_t)j);
  if (rc < 0) {
    srl_free(mem);
    srl_vec_env_destroy(v);
    return rc;
  }
  stage s = {
      .obs = (float *)(void *)(mem + o_obs),
      .next = (float *)(void *)(mem + o_next),
      .act = (float *)(void *)(mem + o_act),
      .rew = (float *)(void *)(mem + o_rew),
      .cost = (float *)(void *)(mem + o_cost),
      .term = (uint8_t *)(mem + o_term),
      .tout = (uint8_t *)(mem + o_tout),
      .len = (int *)(void *)(mem + o_len),
      .a_pol = (float *)(void *)(mem + o_a),
  };
  s.done = s.len + k;
  s.quota = s.len + 2 * k;
  s.a_env = s.a_pol + (size_t)k * (size_t)ad;
  for (int i = 0; i < k; i++) s.quota[i] = n / k + (i < n % k);
  if (a->off) srl_sac_policy_seed(a->off, ca->seed + (uint64_t)j);

  // step until every env has recorded its quota
  int recorded = 0, next_report = 1;
  long long steps = 0;
  double t0 = srl_cli_now_s();
  rc = srl_vec_env_reset(v, ca->seed + (uint64_t)j);
  while (rc == 0 && recorded < n) {
    rc = actor_act(a, s.a_pol, v->obs, k, ad, ca->deterministic, rng);
    if (rc < 0) break;
    for (int i = 0; i < k; i++)
      for (int c = 0; c < ad; c++) {
        size_t q = (size_t)i * (size_t)ad + (size_t)c;
        double x = s.a_pol[q];
        if (ca->noise > 0) x += ca->noise * srl_rng_normal(rng);
        x = x < -1 ? -1 : x > 1 ? 1 : x;
        float e = (float)(lo[c] + (hi[c] - lo[c]) * (x + 1) * 0.5);
        s.a_env[q] = e < lo[c] ? lo[c] : e > hi[c] ? hi[c] : e;
      }
    for (int i = 0; i < k; i++)
      if (s.done[i] < s.quota[i]) {
        size_t r = (size_t)i * (size_t)T + (size_t)s.len[i];
        memcpy(s.obs + r * (size_t)od, v->obs + (size_t)i * (size_t)od, sizeof(float) * (size_t)od);
        memcpy(s.act + r * (size_t)ad, s.a_env + (size_t)i * (size_t)ad,
               sizeof(float) * (size_t)ad);
      }
    rc = srl_vec_env_step(v, s.a_env);
    if (rc < 0) break;
    steps++;
    for (int i = 0; i < k; i++) {
      if (s.done[i] >= s.quota[i]) continue;
      size_t r = (size_t)i * (size_t)T + (size_t)s.len[i];
      const float *next = (v->done[i] ? v->final_obs : v->obs) + (size_t)i * (size_t)od;
      memcpy(s.next + r * (size_t)od, next, sizeof(float) * (size_t)od);
      s.rew[r] = v->rewards[i];
      s.cost[r] = v->costs[i];
      s.term[r] = v->terminated[i] != 0;
      s.tout[r] = v->truncated[i] != 0;
      s.len[i]++;
      if (v->done[i]) {
        append(d, &s, i, T);
        s.len[i] = 0;
        s.done[i]++;
        recorded++;
      } else if (s.len[i] >= T) {
        rc = srl_error(SRL_ESTATE, "%s: an episode ran past the time limit of %d steps", ca->env_id,
                       T);
        break;
      }
    }
    if (!ca->quiet && recorded * 10 >= next_report * n && recorded < n) {
      fprintf(stderr, "collect: policy %d (%s): %d/%d episodes, %.0f env steps/s\n", j,
              a->path ? a->path : "random", recorded, n,
              (double)steps * k / (srl_cli_now_s() - t0));
      while (recorded * 10 >= next_report * n) next_report++;
    }
  }
  *steps_out = steps * k;
  srl_rng_destroy(rng);
  srl_free(mem);
  srl_vec_env_destroy(v);
  return rc;
}


// What the file's shape depends on: the env's dimensions and time limit, read from one instance
// so that a remote:ENDPOINT env reports its own; an env without a limit of its own takes its
// registered one.
typedef struct {
  int obs_dim, act_dim, max_episode_steps;
} env_shape;

static int probe_env(const char *id, env_shape *s) {
  srl_env *env = NULL;
  SRL_TRY(srl_env_create(&env, id, NULL));
  s->obs_dim = env->obs_space.dim;
  s->act_dim = env->act_space.dim;
  s->max_episode_steps = env->max_episode_steps;
  srl_env_destroy(env);
  const srl_env_spec *reg = srl_env_find(id);
  if (s->max_episode_steps < 1 && reg) s->max_episode_steps = reg->max_episode_steps;
  return SRL_OK;
}


int srl_cmd_collect(int argc, char **argv) {
  collect_args ca = {.device = "cpu"};
  const char *policy_arg = NULL, *out = NULL;
  long x;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout);
    if (!strcmp(a, "--deterministic")) {
      ca.deterministic = 1;
    } else if (!strcmp(a, "--quiet")) {
      ca.quiet = 1;
    } else if (!strcmp(a, "--policy") || !strcmp(a, "--env") || !strcmp(a, "--out") ||
               !strcmp(a, "--device")) {
      if (!v) return usage(stderr);
      if (!strcmp(a, "--policy"))
        policy_arg = v;
      else if (!strcmp(a, "--env"))
        ca.env_id = v;
      else if (!strcmp(a, "--out"))
        out = v;
      else
        ca.device = v;
      i++;
    } else if (!strcmp(a, "--episodes")) {
      if (srl_cli_long("saferl collect", a, v, 1, 100000000L, &x)) return 2;
      ca.episodes = (int)x;
      i++;
    } else if (!strcmp(a, "--envs")) {
      if (srl_cli_long("saferl collect", a, v, 1, 4096, &x)) return 2;
      ca.envs = (int)x;
      i++;
    } else if (!strcmp(a, "--seed")) {
      if (srl_cli_long("saferl collect", a, v, 0, 2147483647L, &x)) return 2;
      ca.seed = (uint64_t)x;
      i++;
    } else if (!strcmp(a, "--noise")) {
      char *end = NULL;
      ca.noise = v ? strtod(v, &end) : NAN;
      if (!v || end == v || *end || !(ca.noise >= 0 && ca.noise <= 100)) {
        fprintf(stderr, "saferl collect: --noise wants a number in [0, 100], got '%s'\n",
                v ? v : "");
        return 2;
      }
      i++;
    } else {
      fprintf(stderr, "saferl collect: unexpected argument '%s'\n", a);
      return usage(stderr);
    }
  }
  if (!policy_arg || !ca.env_id || !ca.episodes || !out) return usage(stderr);
  if (!srl_env_id_known(ca.env_id)) {
    fprintf(stderr, "saferl collect: unknown env '%s' (saferl envs lists them)\n", ca.env_id);
    return 2;
  }
  env_shape shape;
  if (probe_env(ca.env_id, &shape) < 0) {
    fprintf(stderr, "saferl collect: %s\n", srl_errmsg());
    return 1;
  }
  if (shape.max_episode_steps < 1) {
    fprintf(stderr, "saferl collect: %s has no time limit, so episodes might never end\n",
            ca.env_id);
    return 2;
  }

  // the policy list
  char *list = strdup(policy_arg);
  char *paths[MAX_POLICIES];
  int n_pol = 0;
  for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (n_pol == MAX_POLICIES) {
      fprintf(stderr, "saferl collect: at most %d policies\n", MAX_POLICIES);
      free(list);
      return 2;
    }
    paths[n_pol++] = t;
  }
  if (n_pol == 0) {
    free(list);
    return usage(stderr);
  }

  // every policy loads and fits the env before any rollout
  for (int j = 0; j < n_pol; j++) {
    actor a;
    int rc = actor_load(&a, paths[j], ca.device, 1);
    if (rc == 0 && a.path && (a.obs_dim != shape.obs_dim || a.act_dim != shape.act_dim))
      rc = srl_error(SRL_EINVAL, "%s was trained on %s (obs %d, act %d); %s has obs %d, act %d",
                     paths[j], a.env_id, a.obs_dim, a.act_dim, ca.env_id, shape.obs_dim,
                     shape.act_dim);
    actor_free(&a);
    if (rc < 0) {
      fprintf(stderr, "saferl collect: %s\n", srl_errmsg());
      free(list);
      return 1;
    }
  }

  // room for every episode at its longest; the file gets the rows used
  long long cap = (long long)ca.episodes * shape.max_episode_steps;
  srl_dataset *d = NULL;
  if (srl_dataset_create(&d, cap, shape.obs_dim, shape.act_dim) < 0) {
    fprintf(stderr, "saferl collect: %s\n", srl_errmsg());
    free(list);
    return 1;
  }
  d->n = 0;
  int rc = 0;
  long long steps_total = 0;
  double t0 = srl_cli_now_s();
  for (int j = 0; j < n_pol && rc == 0; j++) {
    int n = ca.episodes / n_pol + (j < ca.episodes % n_pol);
    if (n == 0) continue;
    int k = ca.envs ? ca.envs : 16;
    if (k > n) k = n;
    actor a;
    rc = actor_load(&a, paths[j], ca.device, k);
    long long before = d->n;
    long long steps = 0;
    if (rc == 0) rc = collect_policy(d, &a, &ca, j, n, k, &steps);
    steps_total += steps;
    if (rc == 0 && !ca.quiet)
      fprintf(stderr, "collect: policy %d (%s): %d episodes, %lld transitions\n", j,
              a.path ? a.path : "random", n, d->n - before);
    actor_free(&a);
  }
  double collect_s = srl_cli_now_s() - t0;
  if (rc == 0) rc = srl_dataset_index(d);
  if (rc == 0) rc = srl_dataset_write(d, out);
  if (rc < 0) {
    fprintf(stderr, "saferl collect: %s\n", srl_errmsg());
    srl_dataset_destroy(d);
    free(list);
    return 1;
  }
  srl_dataset_summary sum;
  srl_dataset_summarize(&sum, d, 0);
  printf("%s: %lld episodes, %lld transitions of %s from %d %s\n", out, sum.episodes,
         sum.transitions, ca.env_id, n_pol, n_pol == 1 ? "policy" : "policies");
  printf("  return %.4f .. %.4f (mean %.4f), cost %.4f .. %.4f (mean %.4f)\n", sum.ret_min,
         sum.ret_max, sum.ret_mean, sum.cost_min, sum.cost_max, sum.cost_mean);
  printf("  %lld env steps in %.2f s (%.0f steps/s), written in %.2f s\n", steps_total, collect_s,
         (double)steps_total / (collect_s > 0 ? collect_s : 1), srl_cli_now_s() - t0 - collect_s);
  srl_dataset_destroy(d);
  free(list);
  return 0;
}

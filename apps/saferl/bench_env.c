// bench_env.c: `saferl bench env ID`, environment steps per second through the vector env.
//
// Steps N envs on T threads with uniform random actions in [-1, 1] (rescaled to the env's
// bounds when they are finite), drawn ahead of time so the timing holds env work alone, auto-
// reset included. Reports env steps per second over all envs and the simulator steps per env
// step, so env steps/s × mj_steps_per_env_step compares with mujoco-testspeed on the same model.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/saferl/cli_args.h"
#include "apps/saferl/commands.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "envs/vec_env.h"

#define ACTION_BATCHES 64  // pre-drawn action batches, cycled

typedef struct bench_opts {
  const char *id, *options;
  long long steps;
  int threads, envs, json;
  uint64_t seed;
} bench_opts;


static int usage(FILE *f) {
  fprintf(
      f,
      "usage: saferl bench env ID [--steps 100000] [--threads 1] [--envs N] [--seed 0]\n"
      "                           [--options YAML] [--json]\n\n"
      "Env steps per second of ID through the vector env: --envs envs (default 16, at least\n"
      "--threads) on --threads threads, random actions, auto-reset; --steps counts env steps\n"
      "over all envs. --json prints {\"env_steps_per_s\": ..., \"mj_steps_per_env_step\": ...}\n"
      "with the run's settings.\n");
  return f == stdout ? 0 : 2;
}


// a positive integer argument, or -1
static long long parse_count(const char *s) {
  char *end;
  long long v = strtoll(s, &end, 10);
  return end != s && !*end && v > 0 ? v : -1;
}


static int parse(bench_opts *o, int argc, char **argv) {
  *o = (bench_opts){.steps = 100000, .threads = 1, .envs = 0, .options = ""};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--json")) {
      o->json = 1;
      continue;
    }
    if (a[0] != '-') {
      if (o->id) return -1;
      o->id = a;
      continue;
    }
    if (!v) return -1;
    i++;
    long long n = parse_count(v);
    if (!strcmp(a, "--options"))
      o->options = v;
    else if (!strcmp(a, "--seed"))
      o->seed = strtoull(v, NULL, 10);
    else if (n < 0)
      return -1;
    else if (!strcmp(a, "--steps"))
      o->steps = n;
    else if (!strcmp(a, "--threads") && n <= 1024)
      o->threads = (int)n;
    else if (!strcmp(a, "--envs") && n <= 1 << 16)
      o->envs = (int)n;
    else
      return -1;
  }
  if (!o->id) return -1;
  if (!o->envs) o->envs = o->threads > 16 ? o->threads : 16;
  return 0;
}


// whether every action bound is finite, so actions can be rescaled from [-1, 1]
static int bounded(const srl_env_spec *spec, const char *options) {
  srl_env *env = NULL;
  if (srl_env_create(&env, spec->id, options) < 0) return 0;
  int ok = 1;
  for (int i = 0; i < env->act_space.dim; i++)
    ok &= isfinite(env->act_space.low[i]) && isfinite(env->act_space.high[i]);
  srl_env_destroy(env);
  return ok;
}


int srl_bench_env(int argc, char **argv) {
  bench_opts o;
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(stdout);
  if (parse(&o, argc, argv)) return usage(stderr);
  const srl_env_spec *spec = srl_env_find(o.id);
  if (!spec) {
    srl_env *probe = NULL;
    srl_env_create(&probe, o.id, NULL);  // for the message with a suggestion
    fprintf(stderr, "saferl bench env: %s\n", srl_errmsg());
    return 1;
  }
  if (o.threads > o.envs) o.envs = o.threads;

  srl_vec_env_config cfg = {.num_envs = o.envs,
                            .num_threads = o.threads,
                            .rescale_action = bounded(spec, o.options),
                            .cost_mode = -1};
  srl_vec_env *v = NULL;
  int rc = srl_vec_env_create(&v, o.id, o.options, &cfg);
  if (rc < 0) {
    fprintf(stderr, "saferl bench env: %s\n", srl_errmsg());
    return 1;
  }
  size_t batch = (size_t)v->num_envs * (size_t)v->act_dim;
  float *actions = srl_malloc(sizeof(float) * batch * ACTION_BATCHES);
  if (!actions) {
    srl_vec_env_destroy(v);
    fprintf(stderr, "saferl bench env: %s\n", srl_errmsg());
    return 1;
  }
  for (size_t i = 0; i < batch * ACTION_BATCHES; i++)
    actions[i] = 2.0f * srl_hash_uniform(o.seed + 1, i) - 1.0f;

  // warm up, then time whole vector steps covering at least the requested env steps
  long long vsteps = (o.steps + v->num_envs - 1) / v->num_envs;
  long long warm = vsteps / 10 < 100 ? vsteps / 10 : 100;
  rc = srl_vec_env_reset(v, o.seed);
  for (long long k = 0; rc == 0 && k < warm; k++)
    rc = srl_vec_env_step(v, actions + batch * (size_t)(k % ACTION_BATCHES));
  long long diverged0 = v->diverged_total, episodes0 = v->episodes_done;
  double t0 = srl_cli_now_s();
  for (long long k = 0; rc == 0 && k < vsteps; k++)
    rc = srl_vec_env_step(v, actions + batch * (size_t)(k % ACTION_BATCHES));
  double secs = srl_cli_now_s() - t0;
  if (rc < 0) {
    fprintf(stderr, "saferl bench env: %s\n", srl_errmsg());
    srl_free(actions);
    srl_vec_env_destroy(v);
    return 1;
  }

  long long env_steps = vsteps * v->num_envs;
  double rate = secs > 0 ? (double)env_steps / secs : 0.0;
  long long episodes = v->episodes_done - episodes0, diverged = v->diverged_total - diverged0;
  if (o.json)
    printf(
        "{\"env\": \"%s\", \"threads\": %d, \"envs\": %d, \"steps\": %lld, \"seconds\": %.6f, "
        "\"env_steps_per_s\": %.1f, \"mj_steps_per_env_step\": %d, \"episodes\": %lld, "
        "\"diverged\": %lld}\n",
        spec->id, v->num_threads, v->num_envs, env_steps, secs, rate, v->physics_steps_per_step,
        episodes, diverged);
  else
    printf(
        "%s: %.0f env steps/s (%d envs on %d thread%s, %lld steps in %.3f s, %d simulator "
        "steps per env step, %lld episodes, %lld diverged)\n",
        spec->id, rate, v->num_envs, v->num_threads, v->num_threads == 1 ? "" : "s", env_steps,
        secs, v->physics_steps_per_step, episodes, diverged);
  srl_free(actions);
  srl_vec_env_destroy(v);
  return 0;
}

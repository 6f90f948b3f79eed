// bench_fisor.c: `saferl bench fisor`, FISOR update steps per second at the reference sizes.
//
// One update is FISOR's: actor weights from the critics on all batch rows (2048), two diffusion
// actor steps of 1024 rows (MLPResNet 256 wide, 3 blocks of 1024, dropout, layernorm) with the
// EMA, then the V, Q, Vh and Qh steps on 256 rows. The actor and critic halves are timed apart,
// and one act call (16 candidates, 5 DDPM steps, the feasibility critics) is timed too.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "algos/offline/fisor.h"
#include "apps/saferl/cli_args.h"
#include "apps/saferl/commands.h"
#include "core/alloc.h"
#include "core/error.h"

typedef struct bench_opts {
  int steps, obs, act, batch, threads, json;
  const char *device;
} bench_opts;


// the process's CPU time (all threads): on a shared machine, what the update itself costs
static double cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}


static int usage(void) {
  fprintf(stderr,
          "usage: saferl bench fisor [--steps 5] [--obs 60] [--act 2] [--batch 2048]\n"
          "                          [--threads 1] [--device cpu|cuda] [--json]\n");
  return 2;
}


static int parse(bench_opts *o, int argc, char **argv) {
  *o = (bench_opts){.steps = 5, .obs = 60, .act = 2, .batch = 2048, .threads = 1, .device = "cpu"};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--json")) {
      o->json = 1;
      continue;
    }
    if (!strcmp(a, "--help") || !v) return -1;
    i++;
    if (!strcmp(a, "--steps"))
      o->steps = atoi(v);
    else if (!strcmp(a, "--obs"))
      o->obs = atoi(v);
    else if (!strcmp(a, "--act"))
      o->act = atoi(v);
    else if (!strcmp(a, "--batch"))
      o->batch = atoi(v);
    else if (!strcmp(a, "--threads"))
      o->threads = atoi(v);
    else if (!strcmp(a, "--device"))
      o->device = v;
    else
      return -1;
  }
  return (o->steps > 0 && o->obs > 0 && o->act > 0 && o->act <= 64 && o->batch >= 256 &&
          o->batch % 2 == 0 && o->threads > 0)
             ? 0
             : -1;
}


// a random batch in one host block: obs, act, reward, cost, next_obs, done
static float *make_batch(srl_offline_batch *b, int n, int O, int A, srl_rng *rng) {
  size_t total = (size_t)n * (2 * O + A + 3);
  float *m = srl_malloc(total * sizeof(float));
  if (!m) return NULL;
  float *obs = m, *act = obs + (size_t)n * O, *rew = act + (size_t)n * A, *cost = rew + n;
  float *nobs = cost + n, *done = nobs + (size_t)n * O;
  srl_rng_fill_normal(rng, obs, (size_t)n * O, 0, 1);
  srl_rng_fill_uniform(rng, act, (size_t)n * A, -0.99f, 0.99f);
  srl_rng_fill_normal(rng, rew, (size_t)n, 0, 1);
  srl_rng_fill_normal(rng, nobs, (size_t)n * O, 0, 1);
  for (int i = 0; i < n; i++) {
    cost[i] = srl_rng_uniform(rng) < 0.2 ? 1.0f : 0.0f;
    done[i] = srl_rng_uniform(rng) < 0.01 ? 1.0f : 0.0f;
  }
  *b = (srl_offline_batch){.n = n,
                           .obs = obs,
                           .act = act,
                           .reward = rew,
                           .cost = cost,
                           .next_obs = nobs,
                           .done = done,
                           .init_obs = obs};
  return m;
}


int srl_bench_fisor(int argc, char **argv) {
  bench_opts o;
  if (parse(&o, argc, argv)) return usage();
  const srl_ops *ops;
  if (srl_ops_get(&ops, o.device) < 0) {
    fprintf(stderr, "saferl bench fisor: %s\n", srl_errmsg());
    return 1;
  }
  srl_ops_cpu_set_threads(o.threads);

  srl_fisor_params p;
  srl_offline_setup s = {.ops = ops,
                         .obs_dim = o.obs,
                         .act_dim = o.act,
                         .batch_size = o.batch,
                         .max_act_batch = 1,
                         .total_steps = 1000000,
                         .gamma = 0.99,
                         .cost_limit = 10,
                         .episode_len = 1000,
                         .seed = 0};
  srl_fisor *f = NULL;
  srl_rng *rng = NULL;
  srl_offline_batch b;
  float *mem = NULL;
  int rc = srl_fisor_params_default(&p);
  if (rc == 0) rc = srl_rng_create(&rng, 0, 0);
  if (rc == 0) rc = srl_fisor_create(&f, &s, &p);
  if (rc == 0 && !(mem = make_batch(&b, o.batch, o.obs, o.act, rng))) rc = SRL_ENOMEM;

  // one warm-up update, then each half timed on its own
  double t_actor = 0, t_critic = 0, t_act = 0, c_actor = 0, c_critic = 0;
  float action[64];
  float *obs1 = mem;
  if (rc == 0) rc = srl_fisor_update(f, &b, NULL);
  if (rc == 0) rc = srl_fisor_act(f, action, obs1, 1, rng);
  for (int i = 0; rc == 0 && i < o.steps; i++) {
    double t0 = srl_cli_now_s(), c0 = cpu_s();
    rc = srl_fisor_update_actor(f, &b, NULL);
    if (rc == 0) rc = ops->sync();
    double t1 = srl_cli_now_s(), c1 = cpu_s();
    if (rc == 0) rc = srl_fisor_update_critics(f, &b, NULL);
    if (rc == 0) rc = ops->sync();
    double t2 = srl_cli_now_s(), c2 = cpu_s();
    c_actor += c1 - c0, c_critic += c2 - c1;
    if (rc == 0) rc = srl_fisor_act(f, action, obs1 + (size_t)(i % o.batch) * o.obs, 1, rng);
    double t3 = srl_cli_now_s();
    t_actor += t1 - t0, t_critic += t2 - t1, t_act += t3 - t2;
  }
  if (rc < 0) fprintf(stderr, "saferl bench fisor: %s\n", srl_errmsg());
  srl_free(mem);
  srl_fisor_destroy(f);
  srl_rng_destroy(rng);
  if (rc < 0) return 1;

  double per = (t_actor + t_critic) / o.steps;
  if (o.json) {
    printf(
        "{\"updates_per_s\": %.4f, \"ms_per_update\": %.3f, \"ms_actor\": %.3f, "
        "\"ms_critics\": %.3f, \"cpu_ms_actor\": %.3f, \"cpu_ms_critics\": %.3f, "
        "\"ms_act\": %.3f, \"batch\": %d, \"actor_rows\": %d, \"critic_rows\": %d, "
        "\"obs\": %d, \"act\": %d, \"threads\": %d, \"device\": \"%s\", \"steps\": %d}\n",
        1.0 / per, per * 1e3, t_actor / o.steps * 1e3, t_critic / o.steps * 1e3,
        c_actor / o.steps * 1e3, c_critic / o.steps * 1e3, t_act / o.steps * 1e3, o.batch,
        o.batch / 2, p.critic_batch, o.obs, o.act, o.threads, o.device, o.steps);
  } else {
    printf(
        "FISOR update (batch %d: actor 2 x %d rows, critics %d rows), obs %d, act %d, %s, "
        "%d thread(s)\n",
        o.batch, o.batch / 2, p.critic_batch, o.obs, o.act, o.device, o.threads);
    printf("  %.3f updates/s, %.1f ms per update (mean of %d)\n", 1.0 / per, per * 1e3, o.steps);
    printf("  actor (weights, 2 diffusion steps, EMA) %.1f ms, critics (V, Q, Vh, Qh) %.1f ms\n",
           t_actor / o.steps * 1e3, t_critic / o.steps * 1e3);
    printf("  process CPU time: actor %.1f ms, critics %.1f ms per update\n",
           c_actor / o.steps * 1e3, c_critic / o.steps * 1e3);
    printf("  act: one observation, %d candidates, %d DDPM steps: %.2f ms\n", p.candidates, p.T,
           t_act / o.steps * 1e3);
  }
  return 0;
}

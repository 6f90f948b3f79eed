// bench_update.c: `saferl bench update`, OmniSafe's PPO-Lag minibatch update.
//
// Per minibatch (OmniSafe's PolicyGradient._update): reward critic, cost critic, then actor, each
// zero_grad → forward → loss → backward → clip_grad_norm(40) → Adam(3e-4); critic loss MSE plus
// 0.001·Σθ², actor loss the clipped surrogate on a Gaussian with state-independent log-std. It
// also times the same matrix products alone through the op table, so the report says how close
// the whole update comes to the sgemm rate of the machine.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/actor_critic.h"
#include "apps/saferl/cli_args.h"
#include "apps/saferl/commands.h"
#include "core/alloc.h"
#include "core/error.h"

typedef struct bench_opts {
  int batch, obs, act, iters, threads, json, n_hidden;
  int hidden[8];
  const char *device;
} bench_opts;


static int usage(void) {
  fprintf(stderr,
          "usage: saferl bench update [--batch 64] [--hidden 64,64] [--obs 60] [--act 2]\n"
          "                           [--iters N] [--threads 1] [--device cpu|cuda] [--json]\n");
  return 2;
}


static int parse_hidden(bench_opts *o, const char *s) {
  o->n_hidden = 0;
  for (const char *p = s; *p;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > 65536 || o->n_hidden == 8) return -1;
    o->hidden[o->n_hidden++] = (int)v;
    p = *end == ',' ? end + 1 : end;
    if (*end && *end != ',') return -1;
  }
  return o->n_hidden ? 0 : -1;
}


static int parse(bench_opts *o, int argc, char **argv) {
  *o = (bench_opts){.batch = 64,
                    .obs = 60,
                    .act = 2,
                    .iters = 0,
                    .threads = 1,
                    .n_hidden = 2,
                    .hidden = {64, 64},
                    .device = "cpu"};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--json")) {
      o->json = 1;
      continue;
    }
    if (!v) return -1;
    i++;
    if (!strcmp(a, "--batch"))
      o->batch = atoi(v);
    else if (!strcmp(a, "--obs"))
      o->obs = atoi(v);
    else if (!strcmp(a, "--act"))
      o->act = atoi(v);
    else if (!strcmp(a, "--iters"))
      o->iters = atoi(v);
    else if (!strcmp(a, "--threads"))
      o->threads = atoi(v);
    else if (!strcmp(a, "--device"))
      o->device = v;
    else if (!strcmp(a, "--hidden")) {
      if (parse_hidden(o, v)) return -1;
    } else
      return -1;
  }
  return (o->batch > 0 && o->obs > 0 && o->act > 0 && o->threads > 0 && o->iters >= 0) ? 0 : -1;
}


// multiply-adds of one forward pass of a plain MLP per row
static double mlp_macs(const bench_opts *o, int out) {
  double m = 0;
  int prev = o->obs;
  for (int i = 0; i < o->n_hidden; i++) {
    m += (double)prev * o->hidden[i];
    prev = o->hidden[i];
  }
  return m + (double)prev * out;
}


// time the forward and backward matrix products of the three networks alone
static double time_sgemm(const srl_ops *ops, const srl_actor_critic *ac, int batch, int iters) {
  const srl_mlp *nets[3] = {ac->actor, ac->critic_r, ac->critic_c};
  size_t big = (size_t)batch * 65536;
  float *x = ops->alloc(big * sizeof(float)), *y = ops->alloc(big * sizeof(float));
  if (!x || !y) {
    ops->free(x);
    ops->free(y);
    return NAN;
  }
  double t0 = 0;
  for (int rep = -1; rep < iters; rep++) {
    if (rep == 0) {
      ops->sync();
      t0 = srl_cli_now_s();
    }
    for (int k = 0; k < 3; k++) {
      const srl_mlp *net = nets[k];
      for (int l = 0; l < net->n_linear; l++) {
        const srl_linear *L = &net->lin[l];
        ops->matmul(y, x, L->w, batch, L->out, L->in, 0, 1, 1.0f, 0.0f);             // forward
        ops->matmul(L->dw, y, x, L->out, L->in, batch, 1, 0, 1.0f, 1.0f);            // dW
        if (l > 0) ops->matmul(x, y, L->w, batch, L->in, L->out, 0, 0, 1.0f, 0.0f);  // dX
      }
    }
  }
  ops->sync();
  double dt = (srl_cli_now_s() - t0) / iters;
  ops->free(x);
  ops->free(y);
  return dt;
}


int srl_bench_update(int argc, char **argv) {
  bench_opts o;
  if (parse(&o, argc, argv)) return usage();
  const srl_ops *ops;
  if (srl_ops_get(&ops, o.device) < 0) {
    fprintf(stderr, "saferl bench update: %s\n", srl_errmsg());
    return 1;
  }
  srl_ops_cpu_set_threads(o.threads);
  if (!o.iters) o.iters = (int)fmax(50, fmin(5000, 2e8 / (o.batch * mlp_macs(&o, o.act) * 9)));

  srl_rng *rng = NULL;
  srl_actor_critic *ac = NULL;
  srl_ac_config cfg = srl_ac_config_default(o.obs, o.act, o.batch);
  cfg.n_actor_hidden = cfg.n_critic_hidden = o.n_hidden;
  memcpy(cfg.actor_hidden, o.hidden, sizeof o.hidden);
  memcpy(cfg.critic_hidden, o.hidden, sizeof o.hidden);
  int rc = srl_rng_create(&rng, 0, 0);
  if (rc == 0) rc = srl_ac_create(&ac, ops, &cfg, rng);

  // a fixed random minibatch on the device
  size_t B = (size_t)o.batch, n_host = B * (o.obs + o.act + 4);
  float *host = srl_malloc(n_host * sizeof(float));
  float *dev = ops->alloc(n_host * sizeof(float));
  if (rc == 0 && (!host || !dev)) rc = SRL_ENOMEM;
  if (rc == 0) {
    srl_rng_fill_normal(rng, host, n_host, 0.0f, 1.0f);
    for (size_t i = 0; i < B; i++) host[B * (o.obs + o.act) + i] -= 3.0f;  // plausible logp_old
    rc = ops->upload(dev, host, n_host * sizeof(float));
  }
  srl_ppo_batch b = {.obs = dev,
                     .act = dev + B * o.obs,
                     .logp_old = dev + B * (o.obs + o.act),
                     .adv = dev + B * (o.obs + o.act + 1),
                     .target_r = dev + B * (o.obs + o.act + 2),
                     .target_c = dev + B * (o.obs + o.act + 3),
                     .n = o.batch};

  // warm up, then the median of five timed runs
  double runs[5];
  for (int i = 0; rc == 0 && i < o.iters / 5 + 10; i++)
    rc = srl_ppo_update_minibatch(ac, &b, cfg.actor_lr, NULL);
  for (int r = 0; rc == 0 && r < 5; r++) {
    if ((rc = ops->sync()) < 0) break;
    double t0 = srl_cli_now_s();
    for (int i = 0; rc == 0 && i < o.iters; i++)
      rc = srl_ppo_update_minibatch(ac, &b, cfg.actor_lr, NULL);
    if (rc == 0) rc = ops->sync();
    runs[r] = (srl_cli_now_s() - t0) / o.iters;
  }
  double sgemm_s = rc == 0 ? time_sgemm(ops, ac, o.batch, o.iters) : NAN;
  if (rc < 0) fprintf(stderr, "saferl bench update: %s\n", srl_errmsg());
  ops->free(dev);
  srl_free(host);
  srl_ac_destroy(ac);
  srl_rng_destroy(rng);
  if (rc < 0) return 1;

  for (int i = 0; i < 5; i++)  // insertion sort of five
    for (int j = i; j > 0 && runs[j] < runs[j - 1]; j--) {
      double t = runs[j];
      runs[j] = runs[j - 1];
      runs[j - 1] = t;
    }
  double sec = runs[2];
  // matrix-product flops: forward 2·B·macs per net, backward twice that
  double flops = 3.0 * 2.0 * o.batch * (mlp_macs(&o, o.act) + 2.0 * mlp_macs(&o, 1));
  double gflops = flops / sec * 1e-9;
  // the sgemm-only run skips the first layer's input gradient, as the update does
  double sgemm_flops = flops - 3 * 2.0 * o.batch * (double)o.obs * o.hidden[0];
  double sgemm_gflops = sgemm_flops / sgemm_s * 1e-9;
  if (o.json) {
    printf(
        "{\"us_per_minibatch\": %.2f, \"gflops\": %.3f, \"sgemm_gflops\": %.3f, "
        "\"batch\": %d, \"hidden\": [",
        sec * 1e6, gflops, sgemm_gflops, o.batch);
    for (int i = 0; i < o.n_hidden; i++) printf("%s%d", i ? ", " : "", o.hidden[i]);
    printf("], \"obs\": %d, \"act\": %d, \"threads\": %d, \"device\": \"%s\", \"iters\": %d}\n",
           o.obs, o.act, o.threads, o.device, o.iters);
  } else {
    printf("PPO-Lag minibatch update (actor %d-", o.obs);
    for (int i = 0; i < o.n_hidden; i++) printf("%d-", o.hidden[i]);
    printf("%d, critics ...-1), batch %d, %s, %d thread(s)\n", o.act, o.batch, o.device, o.threads);
    printf("  %.2f us per minibatch (median of 5 x %d), %.2f GFLOP/s\n", sec * 1e6, o.iters,
           gflops);
    printf("  the same matrix products alone: %.2f GFLOP/s (update reaches %.0f%% of it)\n",
           sgemm_gflops, 100.0 * gflops / sgemm_gflops);
  }
  return 0;
}

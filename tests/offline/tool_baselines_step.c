// tool_baselines_step.c: a few updates of one offline baseline with small networks, for the
// PyTorch cross-check (tests/offline/test_baselines_torch.py redoes them in torch, following
// OSRL's code, from the same start).
//
//   tool_baselines_step ALGO OUT_PREFIX      ALGO: BCAll | BCQLag | CPQ | COptiDICE
//
// Setup: obs 3, act 2, batch 16, gamma 0.9, cost limit 2, episode length 20, seed 5; every
// network 8-8 wide (VAE hidden 8), sample_action_num 3, tau 0.1, learning rates 1e-3 (CPQ's
// alpha_lr 1e-2). Batches come from a fixed generator (rewards, costs and dones mixed). Writes
//   OUT_PREFIX.init.safetensors   the algorithm's checkpoint before the updates
//   OUT_PREFIX.final.safetensors  its checkpoint after them, plus "batch.<k>.<field>" for each
//                                 update k, "noise.<k>.<name>": every random draw of update k,
//                                 drawn again from the algorithm's stream (seed, stream 2) in
//                                 its order, and "stat.<name>" [1]: the last update's statistics
// and prints the run's constants as JSON on stdout.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/offline/baselines.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/safetensors.h"

#define O 3
#define A 2
#define B 16
#define K 3  // updates
#define N 3  // sample_action_num
#define L (2 * A)
#define SEED 5

static int fail(const char *what) {
  fprintf(stderr, "tool_baselines_step: %s: %s\n", what, srl_errmsg());
  return 1;
}

// one update's batch, host arrays
typedef struct batch_buf {
  float obs[B * O], act[B * A], rew[B], cost[B], next[B * O], done[B], init[B * O];
} batch_buf;

static void make_batch(batch_buf *b, srl_rng *r) {
  for (int i = 0; i < B; i++) {
    for (int j = 0; j < O; j++) {
      b->obs[i * O + j] = (float)srl_rng_uniform_range(r, -1, 1);
      b->next[i * O + j] = (float)srl_rng_uniform_range(r, -1, 1);
      b->init[i * O + j] = (float)srl_rng_uniform_range(r, -1, 1);
    }
    for (int j = 0; j < A; j++) b->act[i * A + j] = (float)srl_rng_uniform_range(r, -0.9, 0.9);
    b->rew[i] = (float)srl_rng_uniform_range(r, -0.5, 1.0);
    b->cost[i] = srl_rng_uniform(r) < 0.3 ? 1.0f : 0.0f;
    b->done[i] = srl_rng_uniform(r) < 0.2 ? 1.0f : 0.0f;
  }
}

// the latents a decode of n rows draws: chunks of `rows`, N(0, 1) clipped to ±0.5
static void replay_decode(float *z, int n, int rows, srl_rng *r) {
  for (int r0 = 0; r0 < n; r0 += rows) {
    int m = n - r0 < rows ? n - r0 : rows;
    float *c = z + (size_t)r0 * L;
    srl_rng_fill_normal(r, c, (size_t)m * L, 0.0f, 1.0f);
    for (int k = 0; k < m * L; k++) c[k] = c[k] > 0.5f ? 0.5f : c[k] < -0.5f ? -0.5f : c[k];
  }
}

// every draw of one update, in the algorithm's order, as named arrays
#define MAX_NOISE 6
typedef struct noise {
  int n;
  const char *name[MAX_NOISE];
  float *x[MAX_NOISE];
  int64_t len[MAX_NOISE];
} noise;

static float *draw(noise *nz, const char *name, int64_t len) {
  int i = nz->n++;
  nz->name[i] = name;
  nz->len[i] = len;
  nz->x[i] = calloc((size_t)len, sizeof(float));
  return nz->x[i];
}

static void replay(const char *algo, noise *nz, srl_rng *r) {
  nz->n = 0;
  if (!strcmp(algo, "BCQLag")) {
    srl_rng_fill_normal(r, draw(nz, "vae_eps", B * L), B * L, 0, 1);
    replay_decode(draw(nz, "z_reward", B * N * L), B * N, B, r);
    replay_decode(draw(nz, "z_cost", B * N * L), B * N, B, r);
    replay_decode(draw(nz, "z_actor", B * L), B, B, r);
  } else if (!strcmp(algo, "CPQ")) {
    srl_rng_fill_normal(r, draw(nz, "vae_eps", B * L), B * L, 0, 1);
    srl_rng_fill_normal(r, draw(nz, "eps_next_reward", B * A), B * A, 0, 1);
    srl_rng_fill_normal(r, draw(nz, "eps_next_cost", B * A), B * A, 0, 1);
    srl_rng_fill_normal(r, draw(nz, "eps_ood", N * B * A), N * B * A, 0, 1);
    srl_rng_fill_normal(r, draw(nz, "eps_actor", B * A), B * A, 0, 1);
  } else if (!strcmp(algo, "COptiDICE")) {
    srl_rng_fill_normal(r, draw(nz, "noise_obs", B * O), B * O, 0, 1);
    srl_rng_fill_normal(r, draw(nz, "noise_act", B * A), B * A, 0, 1);
  }
}

// small parameters of the algorithm into buf
static int small_params(const char *algo, void *buf) {
  int h8[2] = {8, 8};
  if (!strcmp(algo, "BCAll")) {
    srl_bc_params *p = buf;
    SRL_TRY(srl_bc_params_default(p));
    memcpy(p->hidden, h8, sizeof h8);
  } else if (!strcmp(algo, "BCQLag")) {
    srl_bcq_lag_params *p = buf;
    SRL_TRY(srl_bcq_lag_params_default(p));
    memcpy(p->actor_hidden, h8, sizeof h8);
    memcpy(p->critic_hidden, h8, sizeof h8);
    p->vae_hidden = 8, p->sample_action_num = N, p->tau = 0.1;
  } else if (!strcmp(algo, "CPQ")) {
    srl_cpq_params *p = buf;
    SRL_TRY(srl_cpq_params_default(p));
    memcpy(p->actor_hidden, h8, sizeof h8);
    memcpy(p->critic_hidden, h8, sizeof h8);
    p->vae_hidden = 8, p->sample_action_num = N, p->tau = 0.1;
    p->actor_lr = p->critic_lr = p->vae_lr = 1e-3, p->alpha_lr = 1e-2;
  } else if (!strcmp(algo, "COptiDICE")) {
    srl_coptidice_params *p = buf;
    SRL_TRY(srl_coptidice_params_default(p));
    memcpy(p->actor_hidden, h8, sizeof h8);
    memcpy(p->critic_hidden, h8, sizeof h8);
    p->actor_lr = p->critic_lr = p->scalar_lr = 1e-3;
  } else {
    return srl_error(SRL_EINVAL, "unknown algorithm '%s'", algo);
  }
  return SRL_OK;
}

static int save(const srl_offline_algo *a, void *state, const char *path) {
  srl_st_writer *w = NULL;
  SRL_TRY(srl_st_writer_create(&w));
  int rc = a->save(state, w);
  if (rc == 0) rc = srl_st_write(w, path);
  srl_st_writer_destroy(w);
  return rc;
}


int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: tool_baselines_step ALGO OUT_PREFIX\n");
    return 2;
  }
  const char *name = argv[1];
  const srl_offline_algo *a = srl_offline_algo_find(name);
  if (!a) return fail("algorithm");
  union {
    srl_bc_params bc;
    srl_bcq_lag_params bcq;
    srl_cpq_params cpq;
    srl_coptidice_params cd;
  } params;
  if (small_params(name, &params) < 0) return fail("parameters");
  srl_offline_setup s = {.ops = srl_ops_cpu(),
                         .obs_dim = O,
                         .act_dim = A,
                         .batch_size = B,
                         .max_act_batch = 4,
                         .total_steps = K,
                         .gamma = 0.9,
                         .cost_limit = 2,
                         .episode_len = 20,
                         .seed = SEED};
  void *state = NULL;
  if (a->create(&state, &s, &params) < 0) return fail("create");
  char path[4096];
  snprintf(path, sizeof path, "%s.init.safetensors", argv[2]);
  if (save(a, state, path) < 0) return fail("writing the initial checkpoint");

  // batches, the replayed draws, the updates
  static batch_buf bb[K];
  static noise nz[K];
  srl_rng *data = NULL, *r = NULL;
  if (srl_rng_create(&data, 77, 0) < 0 || srl_rng_create(&r, SEED, 2) < 0) return fail("rng");
  srl_offline_stats st = {0};
  for (int k = 0; k < K; k++) {
    make_batch(&bb[k], data);
    replay(name, &nz[k], r);
    srl_offline_batch b = {B,          bb[k].obs,  bb[k].act,  bb[k].rew,
                           bb[k].cost, bb[k].next, bb[k].done, bb[k].init};
    if (a->update(state, &b, &st) < 0) return fail("update");
  }

  // the final checkpoint with the inputs beside it
  srl_st_writer *w = NULL;
  if (srl_st_writer_create(&w) < 0 || a->save(state, w) < 0) return fail("saving");
  static char names[K * 16][64];
  int nn = 0;
  static float stats[SRL_OFFLINE_STATS_MAX];
  for (int k = 0; k < K; k++) {
    struct {
      const char *f;
      const float *x;
      int64_t rows, cols;
    } fields[] = {{"obs", bb[k].obs, B, O},       {"act", bb[k].act, B, A},
                  {"reward", bb[k].rew, B, 1},    {"cost", bb[k].cost, B, 1},
                  {"next_obs", bb[k].next, B, O}, {"done", bb[k].done, B, 1},
                  {"init_obs", bb[k].init, B, O}};
    for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
      snprintf(names[nn], sizeof names[nn], "batch.%d.%s", k, fields[f].f);
      int64_t shape[2] = {fields[f].rows, fields[f].cols};
      if (srl_st_add(w, names[nn++], SRL_DTYPE_F32, 2, shape, fields[f].x) < 0)
        return fail("batch");
    }
    for (int i = 0; i < nz[k].n; i++) {
      snprintf(names[nn], sizeof names[nn], "noise.%d.%s", k, nz[k].name[i]);
      if (srl_st_add(w, names[nn++], SRL_DTYPE_F32, 1, &nz[k].len[i], nz[k].x[i]) < 0)
        return fail("noise");
    }
  }
  static char snames[SRL_OFFLINE_STATS_MAX][64];
  for (int i = 0; i < st.n; i++) {
    int64_t one = 1;
    stats[i] = (float)st.value[i];
    snprintf(snames[i], sizeof snames[i], "stat.%s", st.name[i]);
    if (srl_st_add(w, snames[i], SRL_DTYPE_F32, 1, &one, &stats[i]) < 0) return fail("stats");
  }
  snprintf(path, sizeof path, "%s.final.safetensors", argv[2]);
  if (srl_st_write(w, path) < 0) return fail("writing the final checkpoint");
  srl_st_writer_destroy(w);
  printf(
      "{\"obs_dim\": %d, \"act_dim\": %d, \"batch\": %d, \"updates\": %d, \"samples\": %d, "
      "\"gamma\": 0.9, \"cost_limit\": 2, \"episode_len\": 20, \"qc_thres\": %.17g}\n",
      O, A, B, K, N, srl_baselines_qc_threshold(2, 0.9, 20));
  for (int k = 0; k < K; k++)
    for (int i = 0; i < nz[k].n; i++) free(nz[k].x[i]);
  srl_rng_destroy(data);
  srl_rng_destroy(r);
  a->destroy(state);
  return 0;
}

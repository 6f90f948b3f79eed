// tool_fisor_step.c: one FISOR update on a batch read from a safetensors file, for the PyTorch
// cross-check (tests/offline/test_fisor_torch.py redoes the updates in torch from the same start).
//
//   tool_fisor_step IN.safetensors OUT_PREFIX
//
// IN holds "obs" (B × O), "act" (B × A), "reward", "cost", "done" (B) and "next_obs" (B × O),
// and metadata seed, updates, critic_batch, decay_steps, weight_decay_micro (the decay × 1e6).
// The agent uses FISOR's defaults
// with small networks (critics 32-32, actor 16 wide with 2 blocks of 32, time features 8 →
// 16-16) and no dropout, so torch can follow it exactly. The tool writes
//   OUT_PREFIX.init.safetensors   the agent's tensors before the updates (checkpoint names)
//   OUT_PREFIX.final.safetensors  after them, plus "noise.t.<k>" and "noise.eps.<k>": the times
//                                 and noise of actor step k (drawn again from the agent's noise
//                                 stream, seed stream 2, in its order), and "stat.<name>" [1] of
//                                 the last update
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/offline/fisor.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/safetensors.h"

static int fail(const char *what) {
  fprintf(stderr, "tool_fisor_step: %s: %s\n", what, srl_errmsg());
  return 1;
}


static int meta_int(const srl_st_file *f, const char *key, long long *out) {
  const char *s = srl_st_metadata(f, key);
  if (!s) return srl_error(SRL_EFORMAT, "metadata '%s' missing", key);
  *out = strtoll(s, NULL, 10);
  return SRL_OK;
}


int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: tool_fisor_step IN.safetensors OUT_PREFIX\n");
    return 2;
  }
  srl_st_file *in = NULL;
  if (srl_st_open(&in, argv[1]) < 0) return fail("reading the input");
  const srl_st_tensor *to = srl_st_find(in, "obs"), *ta = srl_st_find(in, "act");
  if (!to || !ta || to->ndim != 2 || ta->ndim != 2) return fail("obs and act (B × dim) needed");
  int B = (int)to->shape[0], O = (int)to->shape[1], A = (int)ta->shape[1];
  long long seed, cb, decay, wd_micro, updates;
  if (meta_int(in, "seed", &seed) < 0 || meta_int(in, "updates", &updates) < 0 ||
      meta_int(in, "critic_batch", &cb) < 0 || meta_int(in, "decay_steps", &decay) < 0 ||
      meta_int(in, "weight_decay_micro", &wd_micro) < 0)
    return fail("metadata");

  float *m = srl_calloc((size_t)B * (2 * O + A + 3) * sizeof(float));
  srl_offline_batch b = {.n = B, .obs = m};
  b.act = m + (size_t)B * O;
  b.reward = b.act + (size_t)B * A;
  b.cost = b.reward + B;
  b.done = b.cost + B;
  b.next_obs = b.done + B;
  if (srl_st_read_f32(in, "obs", (float *)b.obs, (size_t)B * O) < 0 ||
      srl_st_read_f32(in, "act", (float *)b.act, (size_t)B * A) < 0 ||
      srl_st_read_f32(in, "reward", (float *)b.reward, B) < 0 ||
      srl_st_read_f32(in, "cost", (float *)b.cost, B) < 0 ||
      srl_st_read_f32(in, "done", (float *)b.done, B) < 0 ||
      srl_st_read_f32(in, "next_obs", (float *)b.next_obs, (size_t)B * O) < 0)
    return fail("reading the batch");

  srl_fisor_params p;
  srl_fisor_params_default(&p);
  p.n_critic_hidden = 2, p.critic_hidden[0] = p.critic_hidden[1] = 32;
  p.actor_hidden = 16, p.actor_blocks = 2, p.actor_res_hidden = 32, p.actor_dropout = 0;
  p.time_dim = 8, p.cond_hidden[0] = p.cond_hidden[1] = 16;
  p.critic_batch = (int)cb, p.decay_steps = (int)decay;
  p.actor_weight_decay = (double)wd_micro * 1e-6;
  srl_offline_setup s = {.ops = srl_ops_cpu(),
                         .obs_dim = O,
                         .act_dim = A,
                         .batch_size = B,
                         .max_act_batch = 1,
                         .total_steps = 1,
                         .gamma = 0.99,
                         .cost_limit = 10,
                         .episode_len = 100,
                         .seed = (uint64_t)seed};
  srl_fisor *f = NULL;
  if (srl_fisor_create(&f, &s, &p) < 0) return fail("creating the agent");

  // the start
  char path[4096];
  srl_st_writer *w = NULL;
  snprintf(path, sizeof path, "%s.init.safetensors", argv[2]);
  if (srl_st_writer_create(&w) < 0 || srl_fisor_save(f, w) < 0 || srl_st_write(w, path) < 0)
    return fail("writing the start");
  srl_st_writer_destroy(w);

  // the actor's noise, drawn as the update draws it
  int splits = p.actor_splits * (int)updates, Ba = B / p.actor_splits;
  float *noise = srl_calloc((size_t)splits * Ba * (A + 1) * sizeof(float));
  srl_rng *r = NULL;
  if (srl_rng_create(&r, (uint64_t)seed, 2) < 0) return fail("rng");
  for (int k = 0; k < splits; k++) {
    float *t = noise + (size_t)k * Ba * (A + 1), *e = t + Ba;
    for (int i = 0; i < Ba; i++) t[i] = (float)srl_rng_int(r, (unsigned long)p.T);
    srl_rng_fill_normal(r, e, (size_t)Ba * A, 0.0f, 1.0f);
  }
  srl_rng_destroy(r);

  srl_offline_stats st;
  for (long long u = 0; u < updates; u++)
    if (srl_fisor_update(f, &b, &st) < 0) return fail("update");
  snprintf(path, sizeof path, "%s.final.safetensors", argv[2]);
  char name[64];
  float vals[SRL_OFFLINE_STATS_MAX];
  int rc = srl_st_writer_create(&w);
  if (rc == 0) rc = srl_fisor_save(f, w);
  for (int k = 0; k < splits && rc == 0; k++) {
    float *t = noise + (size_t)k * Ba * (A + 1), *e = t + Ba;
    snprintf(name, sizeof name, "noise.t.%d", k);
    rc = srl_st_add_f32(w, name, t, 1, Ba);
    snprintf(name, sizeof name, "noise.eps.%d", k);
    if (rc == 0) rc = srl_st_add_f32(w, name, e, 2, Ba, A);
  }
  for (int i = 0; i < st.n && rc == 0; i++) {
    vals[i] = (float)st.value[i];
    snprintf(name, sizeof name, "stat.%s", st.name[i]);
    rc = srl_st_add_f32(w, name, vals + i, 1, 1);
  }
  if (rc == 0) rc = srl_st_write(w, path);
  if (rc < 0) return fail("writing the result");
  srl_st_writer_destroy(w);
  srl_free(noise);
  srl_free(m);
  srl_fisor_destroy(f);
  srl_st_close(in);
  return 0;
}

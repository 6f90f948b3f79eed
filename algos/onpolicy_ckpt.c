// onpolicy_ckpt.c: the on-policy checkpoint (safetensors; docs/formats.md) written and restored
// by the trainer, and trained policies loaded from one to act and to be evaluated.
//
// Tensors: actor.<name>, critic_r.<name>, critic_c.<name> (F32, the networks' tensor names, so
// actor.log_std too); optim.<net>.m / .v (F32, the whole parameter block of the net, padding
// included) and optim.<net>.step (I64 [1]); obs_norm.mean, obs_norm.var (F32 [obs_dim]),
// obs_norm.count (F32 [1]); lagrange.lambda (F32 [1]) and lagrange.state (F32, algos/lagrange.h)
// when the algorithm has a multiplier; train.rng_sample, train.rng_update (U8, raw generator
// states); train.episodes (F32 [n, 3]: return, cost, length of the last n ≤ window_lens episodes,
// oldest first; absent when n = 0); train.counters (I64 [4]: epochs done, env steps, episodes,
// exact normaliser count). Metadata: format, algo, env, step, epoch, config (the resolved YAML),
// version, wall_s. Integers are stored little-endian, as the hosts this runs on are.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/onpolicy_internal.h"
#include "core/alloc.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/log.h"
#include "core/safetensors.h"

static const char *const net_names[3] = {"actor", "critic_r", "critic_c"};


//---- writing -------------------------------------------------------------------------------------

static srl_mlp *net_at(srl_onpolicy *t, int k) {
  return k == 0 ? t->ac->actor : k == 1 ? t->ac->critic_r : t->ac->critic_c;
}

static srl_optim *optim_at(srl_onpolicy *t, int k) {
  return k == 0 ? t->ac->opt_actor : k == 1 ? t->ac->opt_r : t->ac->opt_c;
}


int srl__onpolicy_ckpt_save(srl_onpolicy *t, const char *path) {
  // host copies of parameters and moments: three blocks per net
  size_t total = 0, off[3];
  for (int k = 0; k < 3; k++) {
    off[k] = total;
    total += 3 * net_at(t, k)->n_params;
  }
  float *host = srl_malloc(sizeof(float) * (total ? total : 1));
  srl_st_writer *w = NULL;
  int rc = host ? srl_st_writer_create(&w) : SRL_ENOMEM;
  int64_t steps[3], counters[4];
  float count_f = (float)t->norm.count, lambda = t->has_lagrange ? t->lagrange.lambda : 0.0f;
  float lstate[6 + SRL_PID_MAX_DELAY];
  char name[SRL_NN_NAME_MAX + 32];

  for (int k = 0; rc == 0 && k < 3; k++) {
    srl_mlp *net = net_at(t, k);
    size_t P = net->n_params;
    float *p = host + off[k], *m = p + P, *v = m + P;
    rc = t->ops->download(p, net->params, sizeof(float) * P);
    for (int i = 0; rc == 0 && i < net->n_tensors; i++) {
      const srl_nn_tensor *ts = &net->tensors[i];
      int64_t shape[2] = {ts->shape[0], ts->shape[1]};
      snprintf(name, sizeof name, "%s.%s", net_names[k], ts->name);
      rc = srl_st_add(w, name, SRL_DTYPE_F32, ts->ndim, shape, p + ts->offset);
    }
    if (rc == 0) rc = srl_optim_state_download(optim_at(t, k), m, v, &steps[k]);
    int64_t shape1[1] = {(int64_t)P}, one[1] = {1};
    snprintf(name, sizeof name, "optim.%s.m", net_names[k]);
    if (rc == 0) rc = srl_st_add(w, name, SRL_DTYPE_F32, 1, shape1, m);
    snprintf(name, sizeof name, "optim.%s.v", net_names[k]);
    if (rc == 0) rc = srl_st_add(w, name, SRL_DTYPE_F32, 1, shape1, v);
    snprintf(name, sizeof name, "optim.%s.step", net_names[k]);
    if (rc == 0) rc = srl_st_add(w, name, SRL_DTYPE_I64, 1, one, &steps[k]);
  }

  int64_t od[1] = {t->obs_dim}, one[1] = {1};
  if (rc == 0) rc = srl_st_add(w, "obs_norm.mean", SRL_DTYPE_F32, 1, od, t->norm.mean);
  if (rc == 0) rc = srl_st_add(w, "obs_norm.var", SRL_DTYPE_F32, 1, od, t->norm.var);
  if (rc == 0) rc = srl_st_add(w, "obs_norm.count", SRL_DTYPE_F32, 1, one, &count_f);
  if (rc == 0 && t->has_lagrange) {
    int64_t ln[1] = {srl_lagrange_state_size(&t->lagrange)};
    rc = srl_lagrange_state_save(&t->lagrange, lstate);
    if (rc == 0) rc = srl_st_add(w, "lagrange.state", SRL_DTYPE_F32, 1, ln, lstate);
    if (rc == 0) rc = srl_st_add(w, "lagrange.lambda", SRL_DTYPE_F32, 1, one, &lambda);
  }

  // random streams, the episode window (oldest first), counters
  unsigned char *rng_s = NULL, *rng_u = NULL;
  float *win = NULL;
  size_t rb = t->rng_bytes;
  if (rc == 0) {
    rng_s = srl_malloc(srl_align_up(2 * rb, 16) + sizeof(float) * 3 * (size_t)(t->win_n + 1));
    if (!rng_s) rc = SRL_ENOMEM;
  }
  if (rc == 0) {
    rng_u = rng_s + rb;
    win = (float *)(void *)(rng_s + srl_align_up(2 * rb, 16));
    srl_rng_state_save(t->rng_sample, rng_s);
    srl_rng_state_save(t->rng_update, rng_u);
    int64_t rs[1] = {(int64_t)rb};
    rc = srl_st_add(w, "train.rng_sample", SRL_DTYPE_U8, 1, rs, rng_s);
    if (rc == 0) rc = srl_st_add(w, "train.rng_update", SRL_DTYPE_U8, 1, rs, rng_u);
  }
  if (rc == 0 && t->win_n > 0) {
    for (int k = 0; k < t->win_n; k++)
      memcpy(win + 3 * k, t->win + 3 * ((t->win_head + k) % t->win_cap), 3 * sizeof(float));
    int64_t ws[2] = {t->win_n, 3};
    rc = srl_st_add(w, "train.episodes", SRL_DTYPE_F32, 2, ws, win);
  }
  counters[0] = t->epoch;
  counters[1] = t->total_steps;
  counters[2] = t->episodes_total;
  counters[3] = (int64_t)t->norm.count;
  int64_t cs[1] = {4};
  if (rc == 0) rc = srl_st_add(w, "train.counters", SRL_DTYPE_I64, 1, cs, counters);

  // metadata
  char buf[64];
  if (rc == 0) rc = srl_st_set_metadata(w, "format", SRL_ONPOLICY_FORMAT);
  if (rc == 0) rc = srl_st_set_metadata(w, "algo", t->cfg.algo);
  if (rc == 0) rc = srl_st_set_metadata(w, "env", t->cfg.env_id);
  snprintf(buf, sizeof buf, "%lld", t->total_steps);
  if (rc == 0) rc = srl_st_set_metadata(w, "step", buf);
  snprintf(buf, sizeof buf, "%d", t->epoch);
  if (rc == 0) rc = srl_st_set_metadata(w, "epoch", buf);
  if (rc == 0) rc = srl_st_set_metadata(w, "config", t->config_text);
  if (rc == 0) rc = srl_st_set_metadata(w, "version", SRL_VERSION);
  snprintf(buf, sizeof buf, "%.17g", t->wall_base + (srl__onpolicy_now() - t->t_start));
  if (rc == 0) rc = srl_st_set_metadata(w, "wall_s", buf);
  if (rc == 0) rc = srl_st_write(w, path);
  srl_st_writer_destroy(w);
  srl_free(rng_s);
  srl_free(host);
  if (rc < 0) return srl_error_context(rc, "saving checkpoint %s: ", path);
  return SRL_OK;
}


//---- reading -------------------------------------------------------------------------------------

// a tensor of a given dtype and element count, or SRL_EFORMAT naming it
static const srl_st_tensor *need(const srl_st_file *f, const char *name, srl_dtype dtype, size_t n,
                                 int *rc) {
  const srl_st_tensor *ts = srl_st_find(f, name);
  if (!ts) {
    *rc = srl_error(SRL_EFORMAT, "no tensor '%s'", name);
    return NULL;
  }
  if (ts->dtype != dtype || srl_st_numel(ts) != n) {
    *rc = srl_error(SRL_EFORMAT, "tensor '%s' is %s with %zu elements, expected %s with %zu", name,
                    srl_st_dtype_name(ts->dtype), srl_st_numel(ts), srl_st_dtype_name(dtype), n);
    return NULL;
  }
  return ts;
}


static int read_bytes(const srl_st_file *f, const char *name, srl_dtype dtype, void *dst,
                      size_t n) {
  int rc = SRL_OK;
  const srl_st_tensor *ts = need(f, name, dtype, n, &rc);
  if (ts) memcpy(dst, ts->data, ts->nbytes);
  return rc;
}


// a network's tensors from "<prefix>.<name>" into net (host staging of n_params floats)
static int load_net(const srl_st_file *f, const char *prefix, srl_mlp *net, float *staging) {
  char name[SRL_NN_NAME_MAX + 32];
  for (int i = 0; i < net->n_tensors; i++) {
    const srl_nn_tensor *ts = &net->tensors[i];
    snprintf(name, sizeof name, "%s.%s", prefix, ts->name);
    SRL_TRY(srl_st_read_f32(f, name, staging, ts->numel));
    SRL_TRY(srl_mlp_tensor_upload(net, ts->name, staging, ts->numel));
  }
  return SRL_OK;
}


static int check_meta(const srl_st_file *f, const char *key, const char *want) {
  const char *v = srl_st_metadata(f, key);
  if (!v || strcmp(v, want) != 0)
    return srl_error(SRL_EFORMAT, "metadata %s is '%s', the run's is '%s'", key, v ? v : "(none)",
                     want);
  return SRL_OK;
}


static int ckpt_load(srl_onpolicy *t, const srl_st_file *f) {
  SRL_TRY(check_meta(f, "format", SRL_ONPOLICY_FORMAT));
  SRL_TRY(check_meta(f, "algo", t->cfg.algo));
  SRL_TRY(check_meta(f, "env", t->cfg.env_id));
  char name[64];
  for (int k = 0; k < 3; k++) {
    srl_mlp *net = net_at(t, k);
    size_t P = net->n_params;
    float *m = srl_malloc(sizeof(float) * 2 * P);
    if (!m) return SRL_ENOMEM;
    float *v = m + P;
    int64_t step = 0;
    int rc = load_net(f, net_names[k], net, m);
    snprintf(name, sizeof name, "optim.%s.m", net_names[k]);
    if (rc == 0) rc = srl_st_read_f32(f, name, m, P);
    snprintf(name, sizeof name, "optim.%s.v", net_names[k]);
    if (rc == 0) rc = srl_st_read_f32(f, name, v, P);
    snprintf(name, sizeof name, "optim.%s.step", net_names[k]);
    if (rc == 0) rc = read_bytes(f, name, SRL_DTYPE_I64, &step, 1);
    if (rc == 0) rc = srl_optim_state_upload(optim_at(t, k), m, v, step);
    srl_free(m);
    SRL_TRY(rc);
  }

  int64_t counters[4];
  SRL_TRY(read_bytes(f, "train.counters", SRL_DTYPE_I64, counters, 4));
  if (counters[0] < 0 || counters[0] > t->epochs || counters[1] < 0 || counters[2] < 0 ||
      counters[3] < 0)
    return srl_error(SRL_EFORMAT,
                     "train.counters (%lld, %lld, %lld, %lld) do not fit a run of "
                     "%d epochs",
                     (long long)counters[0], (long long)counters[1], (long long)counters[2],
                     (long long)counters[3], t->epochs);
  size_t O = (size_t)t->obs_dim;
  float *mv = t->snap_mean, *vv = t->snap_var;  // free scratch between epochs
  SRL_TRY(srl_st_read_f32(f, "obs_norm.mean", mv, O));
  SRL_TRY(srl_st_read_f32(f, "obs_norm.var", vv, O));
  SRL_TRY(srl_normalizer_set(&t->norm, mv, vv, (double)counters[3]));

  if (t->has_lagrange) {
    int n = srl_lagrange_state_size(&t->lagrange);
    float state[6 + SRL_PID_MAX_DELAY];
    SRL_TRY(srl_st_read_f32(f, "lagrange.state", state, (size_t)n));
    SRL_TRY(srl_lagrange_state_load(&t->lagrange, state, n));
  }
  SRL_TRY(read_bytes(f, "train.rng_sample", SRL_DTYPE_U8, t->snap_rng, t->rng_bytes));
  SRL_TRY(srl_rng_state_load(t->rng_sample, t->snap_rng, t->rng_bytes));
  SRL_TRY(read_bytes(f, "train.rng_update", SRL_DTYPE_U8, t->snap_rng, t->rng_bytes));
  SRL_TRY(srl_rng_state_load(t->rng_update, t->snap_rng, t->rng_bytes));

  t->win_n = t->win_head = 0;
  const srl_st_tensor *ep = srl_st_find(f, "train.episodes");
  if (ep) {
    size_t n = srl_st_numel(ep) / 3;
    if (ep->ndim != 2 || ep->shape[1] != 3 || n > (size_t)t->win_cap)
      return srl_error(SRL_EFORMAT, "train.episodes must be [n, 3] with n ≤ %d", t->win_cap);
    SRL_TRY(srl_st_read_f32(f, "train.episodes", t->win, 3 * n));
    t->win_n = (int)n;
  }
  t->epoch = (int)counters[0];
  t->total_steps = counters[1];
  t->episodes_total = counters[2];
  const char *wall = srl_st_metadata(f, "wall_s");
  t->wall_base = wall ? atof(wall) : 0.0;
  return SRL_OK;
}


int srl__onpolicy_ckpt_load(srl_onpolicy *t, const char *path) {
  srl_st_file *f = NULL;
  SRL_TRY(srl_st_open(&f, path));
  int rc = ckpt_load(t, f);
  srl_st_close(f);
  if (rc < 0) return srl_error_context(rc, "checkpoint %s: ", path);
  return SRL_OK;
}


// the run config in a checkpoint's metadata
static int meta_config(srl_onpolicy_config *cfg, const srl_st_file *f, const char *path) {
  const char *text = srl_st_metadata(f, "config");
  if (!text) return srl_error(SRL_EFORMAT, "%s: no config in the metadata", path);
  const char *algo = srl_st_metadata(f, "algo");
  srl_onpolicy_config c;
  SRL_TRY(srl_onpolicy_config_defaults(&c, algo));
  SRL_TRY(srl_config_load_string(srl_onpolicy_schema(), &c, text, path));
  *cfg = c;
  return SRL_OK;
}


int srl__onpolicy_ckpt_config(srl_onpolicy_config *cfg, const char *path) {
  srl_st_file *f = NULL;
  SRL_TRY(srl_st_open(&f, path));
  int rc = meta_config(cfg, f, path);
  srl_st_close(f);
  return rc;
}


//---- trained policies ----------------------------------------------------------------------------

void srl_policy_destroy(srl_policy *p) {
  if (!p) return;
  srl_mlp_destroy(p->actor);
  srl_normalizer_free(&p->norm);
  if (p->dev) p->ops->free(p->dev);
  srl_free(p->host);
  srl_free(p);
}


static int policy_build(srl_policy *p, const srl_st_file *f, const char *path) {
  SRL_TRY(meta_config(&p->cfg, f, path));
  // the run's BLAS threads: with another count OpenBLAS may sum in another order, and an
  // evaluation would not repeat the trainer's
  if (p->ops->device == SRL_DEVICE_CPU) srl_ops_cpu_set_threads(p->cfg.train_cfgs.torch_threads);
  const srl_st_tensor *mean = srl_st_find(f, "obs_norm.mean");
  const srl_st_tensor *ls = srl_st_find(f, "actor.log_std");
  if (!mean || !ls) return srl_error(SRL_EFORMAT, "no obs_norm.mean or actor.log_std tensor");
  int O = p->obs_dim = (int)srl_st_numel(mean), A = p->act_dim = (int)srl_st_numel(ls);
  srl_ac_config acc;
  SRL_TRY(srl__onpolicy_ac_config(&acc, &p->cfg, O, A, p->max_batch));
  int sizes[SRL_MLP_MAX_SIZES], n = 0;
  sizes[n++] = O;
  for (int i = 0; i < acc.n_actor_hidden; i++) sizes[n++] = acc.actor_hidden[i];
  sizes[n++] = A;
  srl_mlp_config mc = srl_mlp_config_plain(n, sizes, acc.actor_act, SRL_ACT_IDENTITY);
  mc.extra = A;
  strcpy(mc.extra_name, "log_std");
  srl_rng *rng = NULL;
  SRL_TRY(srl_rng_create(&rng, 0, 0));
  int rc = srl_mlp_create(&p->actor, p->ops, &mc, p->max_batch, rng);
  srl_rng_destroy(rng);
  SRL_TRY(rc);

  size_t B = (size_t)p->max_batch;
  size_t staging = p->actor->n_params > B * (size_t)O ? p->actor->n_params : B * (size_t)O;
  p->host = srl_malloc(sizeof(float) * (staging + B * (size_t)A + (size_t)A));
  if (!p->host) return SRL_ENOMEM;
  SRL_TRY(load_net(f, "actor", p->actor, p->host));
  SRL_TRY(srl_normalizer_init(&p->norm, O));
  float *mv = srl_malloc(sizeof(float) * 2 * (size_t)O);
  if (!mv) return SRL_ENOMEM;
  // the exact count is in train.counters; a file without them has obs_norm.count (F32)
  int64_t counters[4] = {0, 0, 0, 0};
  float count_f = 0.0f;
  rc = srl_st_read_f32(f, "obs_norm.mean", mv, (size_t)O);
  if (rc == 0) rc = srl_st_read_f32(f, "obs_norm.var", mv + O, (size_t)O);
  if (rc == 0 && srl_st_find(f, "train.counters"))
    rc = read_bytes(f, "train.counters", SRL_DTYPE_I64, counters, 4);
  else if (rc == 0 && (rc = srl_st_read_f32(f, "obs_norm.count", &count_f, 1)) == 0)
    counters[3] = (int64_t)count_f;
  if (rc == 0) rc = srl_normalizer_set(&p->norm, mv, mv + O, (double)counters[3]);
  srl_free(mv);
  SRL_TRY(rc);
  const char *step = srl_st_metadata(f, "step"), *epoch = srl_st_metadata(f, "epoch");
  p->epoch = epoch ? atoi(epoch) : (int)counters[0];
  p->step = step ? atoll(step) : counters[1];
  if (p->ops->device != SRL_DEVICE_CPU) {
    p->dev = p->ops->alloc(sizeof(float) * B * (size_t)O);
    if (!p->dev) return SRL_ENOMEM;
  }
  return SRL_OK;
}


int srl_policy_load(srl_policy **out, const char *path, const char *device, int max_batch) {
  if (!out || !path) return srl_error(SRL_EINVAL, "srl_policy_load: out and path needed");
  *out = NULL;
  if (max_batch < 1) return srl_error(SRL_EINVAL, "srl_policy_load: max_batch %d", max_batch);
  char file[PATH_MAX];
  int epoch;
  SRL_TRY(srl_run_dir_find_checkpoint(file, sizeof file, path, 1, &epoch));
  srl_policy *p = srl_calloc(sizeof *p);
  if (!p) return SRL_ENOMEM;
  p->max_batch = max_batch;
  snprintf(p->path, sizeof p->path, "%s", file);
  int rc = srl_ops_get(&p->ops, device ? device : "cpu");
  srl_st_file *f = NULL;
  if (rc == 0) rc = srl_st_open(&f, file);
  if (rc == 0) rc = policy_build(p, f, file);
  srl_st_close(f);
  if (rc < 0) {
    srl_policy_destroy(p);
    return srl_error_context(rc, "loading the policy of %s: ", file);
  }
  *out = p;
  return SRL_OK;
}


int srl_policy_act(srl_policy *p, float *act, const float *obs, int n, int deterministic,
                   srl_rng *rng) {
  if (n < 1 || n > p->max_batch)
    return srl_error(SRL_EINVAL, "policy: %d rows (at most %d)", n, p->max_batch);
  if (!deterministic && !rng)
    return srl_error(SRL_EINVAL, "policy: sampling needs a random stream");
  int O = p->obs_dim, A = p->act_dim;
  size_t B = (size_t)p->max_batch;
  size_t staging = p->actor->n_params > B * (size_t)O ? p->actor->n_params : B * (size_t)O;
  float *x = p->host, *mean = p->host + staging, *log_std = mean + B * (size_t)A;
  if (p->cfg.algo_cfgs.obs_normalize)
    SRL_TRY(srl_normalizer_apply(&p->norm, x, obs, n));
  else
    memcpy(x, obs, sizeof(float) * (size_t)n * O);
  const float *in = x;
  if (p->dev) {
    SRL_TRY(p->ops->upload(p->dev, x, sizeof(float) * (size_t)n * O));
    in = p->dev;
  }
  SRL_TRY(srl_mlp_forward(p->actor, in, n));
  SRL_TRY(p->ops->download(mean, p->actor->out, sizeof(float) * (size_t)n * A));
  if (deterministic) {
    memcpy(act, mean, sizeof(float) * (size_t)n * A);
    return SRL_OK;
  }
  SRL_TRY(p->ops->download(log_std, p->actor->extra, sizeof(float) * (size_t)A));
  srl_gauss g;
  SRL_TRY(srl_dist_init(&g, mean, log_std, n, A, 0));
  return srl_dist_sample(act, &g, rng);
}


int srl_evaluate_policy_fn(const char *env_id, const char *options, int episodes, int num_envs,
                           uint64_t seed, srl_play_act_fn act, void *ctx, srl_eval_result *res,
                           double *rets, double *costs, double *lens) {
  if (!env_id || !act || !res || episodes < 1)
    return srl_error(SRL_EINVAL, "evaluate: an env, a policy, a result and episodes ≥ 1");
  int E = num_envs > 0 ? num_envs : (episodes < 16 ? episodes : 16);
  if (E > episodes) E = episodes;
  srl_vec_env_config vc = {.num_envs = E, .num_threads = 0, .rescale_action = 1, .cost_mode = -1};
  srl_vec_env *v = NULL;
  SRL_TRY(srl_vec_env_create(&v, env_id, options && options[0] ? options : NULL, &vc));
  srl_played_episode *ep = srl_calloc(sizeof *ep * (size_t)episodes);
  int rc = ep ? srl_play_episodes(v, episodes, seed, 0, act, ctx, ep) : SRL_ENOMEM;
  if (rc == 0) {
    double m[3] = {0, 0, 0}, q[3] = {0, 0, 0};
    for (int k = 0; k < episodes; k++) {
      double x[3] = {ep[k].ret, ep[k].cost, ep[k].len};
      for (int j = 0; j < 3; j++) m[j] += x[j] / episodes;
      if (rets) rets[k] = x[0];
      if (costs) costs[k] = x[1];
      if (lens) lens[k] = x[2];
    }
    for (int k = 0; k < episodes; k++) {
      double x[3] = {ep[k].ret, ep[k].cost, ep[k].len};
      for (int j = 0; j < 3; j++) q[j] += (x[j] - m[j]) * (x[j] - m[j]) / episodes;
    }
    res->episodes = episodes;
    res->ret_mean = m[0], res->cost_mean = m[1], res->len_mean = m[2];
    res->ret_std = sqrt(q[0]), res->cost_std = sqrt(q[1]), res->len_std = sqrt(q[2]);
  }
  srl_free(ep);
  srl_vec_env_destroy(v);
  return rc;
}


typedef struct policy_ctx {
  srl_policy *p;
  int deterministic;
} policy_ctx;

static int policy_act_one(void *ctx, float *act, const float *obs, srl_rng *rng) {
  policy_ctx *c = ctx;
  return srl_policy_act(c->p, act, obs, 1, c->deterministic, rng);
}


int srl_policy_evaluate(srl_policy *p, int episodes, int deterministic, uint64_t seed, int num_envs,
                        srl_eval_result *res, double *rets, double *costs, double *lens) {
  if (!p) return srl_error(SRL_EINVAL, "srl_policy_evaluate: no policy");
  policy_ctx c = {p, deterministic};
  return srl_evaluate_policy_fn(p->cfg.env_id, p->cfg.env_cfgs.options, episodes, num_envs, seed,
                                policy_act_one, &c, res, rets, costs, lens);
}

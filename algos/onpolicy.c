// onpolicy.c: the on-policy trainer: building a run (vector env, actor-critic, buffer, normaliser,
// multiplier), one epoch (rollout, the algorithm's update, logging, checkpoints), the run
// directory's files, the progress line, interruption, NaN stop and resume.
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "algos/onpolicy_internal.h"
#include "core/alloc.h"
#include "core/dist.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/log.h"

#define CSV_HEADER                                                                           \
  "epoch,total_steps,ep_ret,ep_cost,ep_len,lagrange,loss_pi,loss_vr,loss_vc,kl,entropy,fps," \
  "wall_s,update_iters,actor_lr,episodes,rollout_s,update_s\n"
#define DRAW_EVERY_S 0.2  // progress line refresh period on a terminal


double srl__onpolicy_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}


// begin an events.jsonl line (nothing when the events file is not open)
static FILE *event_begin(srl_onpolicy *t, const char *name) {
  if (!t->events || srl_log_event_begin(t->events, name) < 0) return NULL;
  return t->events;
}

static void event_end(srl_onpolicy *t) {
  if (t->events) srl_log_event_end(t->events);
}


//---- the episode window --------------------------------------------------------------------------

static void window_push(srl_onpolicy *t, float ret, float cost, float len) {
  int slot;
  if (t->win_n < t->win_cap)
    slot = (t->win_head + t->win_n++) % t->win_cap;
  else
    slot = t->win_head, t->win_head = (t->win_head + 1) % t->win_cap;
  t->win[3 * slot] = ret;
  t->win[3 * slot + 1] = cost;
  t->win[3 * slot + 2] = len;
}


// means of the window's columns, oldest first (NaN when empty)
static void window_means(const srl_onpolicy *t, double m[3]) {
  m[0] = m[1] = m[2] = 0.0;
  if (!t->win_n) {
    m[0] = m[1] = m[2] = NAN;
    return;
  }
  for (int k = 0; k < t->win_n; k++) {
    const float *r = t->win + 3 * ((t->win_head + k) % t->win_cap);
    for (int j = 0; j < 3; j++) m[j] += r[j];
  }
  for (int j = 0; j < 3; j++) m[j] /= t->win_n;
}


//---- building a run ------------------------------------------------------------------------------

int srl__onpolicy_ac_config(srl_ac_config *ac, const srl_onpolicy_config *cfg, int obs_dim,
                            int act_dim, int max_batch) {
  *ac = srl_ac_config_default(obs_dim, act_dim, max_batch);
  const srl_onpolicy_net_cfg *a = &cfg->model_cfgs.actor, *c = &cfg->model_cfgs.critic;
  if (a->n_hidden_sizes > 8 || c->n_hidden_sizes > 8)
    return srl_error(SRL_ECONFIG, "model_cfgs: at most 8 hidden layers");
  ac->n_actor_hidden = a->n_hidden_sizes;
  ac->n_critic_hidden = c->n_hidden_sizes;
  memcpy(ac->actor_hidden, a->hidden_sizes, sizeof(int) * (size_t)a->n_hidden_sizes);
  memcpy(ac->critic_hidden, c->hidden_sizes, sizeof(int) * (size_t)c->n_hidden_sizes);
  int aa = srl_act_from_name(a->activation), ca = srl_act_from_name(c->activation);
  if (aa < 0 || ca < 0) return srl_error(SRL_ECONFIG, "model_cfgs: unknown activation");
  ac->actor_act = (srl_act)aa;
  ac->critic_act = (srl_act)ca;
  ac->actor_lr = (float)a->lr;
  ac->critic_lr = (float)c->lr;
  ac->max_grad_norm = cfg->algo_cfgs.use_max_grad_norm ? (float)cfg->algo_cfgs.max_grad_norm : 0;
  ac->critic_norm_coef =
      cfg->algo_cfgs.use_critic_norm ? (float)cfg->algo_cfgs.critic_norm_coef : 0.0f;
  ac->clip = (float)cfg->algo_cfgs.clip;
  ac->entropy_coef = (float)cfg->algo_cfgs.entropy_coef;
  return SRL_OK;
}


static srl_lagrange_config lagrange_config(const srl_onpolicy_config *cfg, int kind) {
  srl_lagrange_config l = srl_lagrange_config_default((srl_lagrange_kind)kind);
  l.cost_limit = (float)cfg->lagrange_cfgs.cost_limit;
  l.init = (float)cfg->lagrange_cfgs.lagrangian_multiplier_init;
  l.lambda_lr = (float)cfg->lagrange_cfgs.lambda_lr;
  l.upper_bound = (float)cfg->lagrange_cfgs.lagrangian_upper_bound;
  l.kp = (float)cfg->lagrange_cfgs.pid_kp;
  l.ki = (float)cfg->lagrange_cfgs.pid_ki;
  l.kd = (float)cfg->lagrange_cfgs.pid_kd;
  l.d_delay = cfg->lagrange_cfgs.pid_d_delay;
  l.delta_p_ema_alpha = (float)cfg->lagrange_cfgs.pid_delta_p_ema_alpha;
  l.delta_d_ema_alpha = (float)cfg->lagrange_cfgs.pid_delta_d_ema_alpha;
  l.sum_norm = cfg->lagrange_cfgs.sum_norm;
  l.diff_norm = cfg->lagrange_cfgs.diff_norm;
  l.penalty_max = (float)cfg->lagrange_cfgs.penalty_max;
  return l;
}


// everything but the run directory's files
static int build(srl_onpolicy *t) {
  const srl_onpolicy_config *cfg = &t->cfg;
  SRL_TRY(srl_onpolicy_config_check(cfg));
  t->algo = srl_onpolicy_algo_find(cfg->algo);
  SRL_TRY(srl_ops_get(&t->ops, cfg->train_cfgs.device));
  if (t->ops->device == SRL_DEVICE_CPU) srl_ops_cpu_set_threads(cfg->train_cfgs.torch_threads);

  int N = cfg->train_cfgs.vector_env_nums;
  t->num_envs = N;
  t->steps_per_env = cfg->algo_cfgs.steps_per_epoch / N;
  t->epochs = cfg->train_cfgs.total_steps / cfg->algo_cfgs.steps_per_epoch;
  srl_vec_env_config vc = {
      .num_envs = N, .num_threads = cfg->train_cfgs.threads, .rescale_action = 1, .cost_mode = -1};
  SRL_TRY(srl_vec_env_create(&t->venv, cfg->env_id, cfg->env_cfgs.options, &vc));
  int O = t->obs_dim = t->venv->obs_dim, A = t->act_dim = t->venv->act_dim;

  uint64_t seed = (uint64_t)cfg->seed;
  SRL_TRY(srl_rng_create(&t->rng_init, seed, 0));
  SRL_TRY(srl_rng_create(&t->rng_sample, seed, 1));
  SRL_TRY(srl_rng_create(&t->rng_update, seed, 2));

  int max_batch = SRL_ONPOLICY_CHUNK;
  if (cfg->algo_cfgs.batch_size > max_batch) max_batch = cfg->algo_cfgs.batch_size;
  if (N > max_batch) max_batch = N;
  srl_ac_config acc;
  SRL_TRY(srl__onpolicy_ac_config(&acc, cfg, O, A, max_batch));
  SRL_TRY(srl_ac_create(&t->ac, t->ops, &acc, t->rng_init));

  srl_rollout_config rc = srl_rollout_config_default(N, t->steps_per_env, O, A);
  rc.gamma = (float)cfg->algo_cfgs.gamma;
  rc.lam = (float)cfg->algo_cfgs.lam;
  rc.lam_c = (float)cfg->algo_cfgs.lam_c;
  rc.standardize_adv_r = cfg->algo_cfgs.standardized_rew_adv;
  rc.standardize_adv_c = cfg->algo_cfgs.standardized_cost_adv;
  SRL_TRY(srl_rollout_init(&t->rb, &rc));
  SRL_TRY(srl_normalizer_init(&t->norm, O));
  if (t->algo->lagrange >= 0) {
    srl_lagrange_config lc = lagrange_config(cfg, t->algo->lagrange);
    SRL_TRY(srl_lagrange_init(&t->lagrange, &lc));
    t->has_lagrange = 1;
  }
  if (t->algo->create) SRL_TRY(t->algo->create(&t->algo_state, cfg, t->ac, t->rb.capacity));

  // host scratch in one block
  size_t n = (size_t)N, W = (size_t)cfg->logger_cfgs.window_lens;
  size_t max_p = t->ac->actor->n_params;
  if (t->ac->critic_r->n_params > max_p) max_p = t->ac->critic_r->n_params;
  t->rng_bytes = srl_rng_state_size(t->rng_sample);
  size_t total = 0, f = sizeof(float);
  size_t o_obs = srl_layout_add(&total, n * O * f), o_fin = srl_layout_add(&total, n * O * f);
  size_t o_act = srl_layout_add(&total, n * A * f), o_mean = srl_layout_add(&total, n * A * f);
  size_t o_logp = srl_layout_add(&total, n * f);
  size_t o_vr = srl_layout_add(&total, n * f), o_vc = srl_layout_add(&total, n * f);
  size_t o_fvr = srl_layout_add(&total, n * f), o_fvc = srl_layout_add(&total, n * f);
  size_t o_fvt = srl_layout_add(&total, 2 * n * f);
  size_t o_ls = srl_layout_add(&total, (size_t)A * f);
  size_t o_fe = srl_layout_add(&total, n * sizeof(int));
  size_t o_ph = srl_layout_add(&total, max_p * f);
  size_t o_sm = srl_layout_add(&total, (size_t)O * f), o_sv = srl_layout_add(&total, (size_t)O * f);
  size_t o_srng = srl_layout_add(&total, t->rng_bytes);
  size_t o_win = srl_layout_add(&total, 3 * W * f), o_swin = srl_layout_add(&total, 3 * W * f);
  char *h = srl_calloc(total);
  if (!h) return srl_error_context(SRL_ENOMEM, "trainer scratch: ");
  t->host_mem = h;
  t->obs_n = (float *)(h + o_obs);
  t->fin_n = (float *)(h + o_fin);
  t->act = (float *)(h + o_act);
  t->mean = (float *)(h + o_mean);
  t->logp = (float *)(h + o_logp);
  t->v_r = (float *)(h + o_vr);
  t->v_c = (float *)(h + o_vc);
  t->fv_r = (float *)(h + o_fvr);
  t->fv_c = (float *)(h + o_fvc);
  t->fv_tmp = (float *)(h + o_fvt);
  t->log_std = (float *)(h + o_ls);
  t->fin_env = (int *)(h + o_fe);
  t->param_host = (float *)(h + o_ph);
  t->snap_mean = (float *)(h + o_sm);
  t->snap_var = (float *)(h + o_sv);
  t->snap_rng = (unsigned char *)(h + o_srng);
  t->win = (float *)(h + o_win);
  t->snap_win = (float *)(h + o_swin);
  t->win_cap = (int)W;
  if (t->ops->device != SRL_DEVICE_CPU) {
    t->dev_obs = t->ops->alloc(n * O * f);
    if (!t->dev_obs) return srl_error_context(SRL_ENOMEM, "observations on %s: ", t->ops->name);
  }
  SRL_TRY(srl_onpolicy_config_text(cfg, &t->config_text));
  return SRL_OK;
}


static srl_onpolicy *trainer_alloc(const srl_onpolicy_options *opt) {
  srl_onpolicy *t = srl_calloc(sizeof *t);
  if (!t) return NULL;
  t->quiet = opt ? opt->quiet : 0;
  t->tty = !t->quiet && isatty(STDERR_FILENO);
  t->t_start = srl__onpolicy_now();
  return t;
}


void srl_onpolicy_destroy(srl_onpolicy *t) {
  if (!t) return;
  if (t->tty && t->last_draw > 0) fputc('\n', stderr);
  if (t->algo && t->algo->destroy) t->algo->destroy(t->algo_state);
  if (t->dev_obs) t->ops->free(t->dev_obs);
  srl_vec_env_destroy(t->venv);
  srl_ac_destroy(t->ac);
  srl_rollout_free(&t->rb);
  srl_normalizer_free(&t->norm);
  srl_rng_destroy(t->rng_init);
  srl_rng_destroy(t->rng_sample);
  srl_rng_destroy(t->rng_update);
  if (t->csv) fclose(t->csv);
  if (t->events) fclose(t->events);
  free(t->config_text);
  srl_free(t->host_mem);
  srl_free(t);
}


//---- the run directory ---------------------------------------------------------------------------

// a fresh run directory: <base>/<algo>-<env>-s<seed>-<time>[-k], or the one the options name
static int make_run_dir(srl_onpolicy *t, const srl_onpolicy_options *opt) {
  if (opt && opt->run_dir) {
    SRL_TRY(srl_run_dir_claim(opt->run_dir));
    if (snprintf(t->run_dir, sizeof t->run_dir, "%s", opt->run_dir) >= (int)sizeof t->run_dir)
      return srl_error(SRL_EINVAL, "path too long: %s", opt->run_dir);
    return SRL_OK;
  }
  const char *base = opt && opt->out_dir ? opt->out_dir : t->cfg.logger_cfgs.log_dir;
  return srl_run_dir_create(t->run_dir, sizeof t->run_dir, base, t->cfg.algo, t->cfg.env_id,
                            t->cfg.seed);
}


static int open_logs(srl_onpolicy *t, int fresh) {
  char path[PATH_MAX];
  SRL_TRY(srl_run_dir_join(path, sizeof path, t->run_dir, "progress.csv"));
  t->csv = fopen(path, fresh ? "w" : "a");
  if (!t->csv) return srl_error(SRL_EIO, "cannot open %s: %s", path, strerror(errno));
  if (fresh) {
    fputs(CSV_HEADER, t->csv);
    fflush(t->csv);
  }
  SRL_TRY(srl_run_dir_join(path, sizeof path, t->run_dir, "events.jsonl"));
  t->events = fopen(path, fresh ? "w" : "a");
  if (!t->events) return srl_error(SRL_EIO, "cannot open %s: %s", path, strerror(errno));
  return SRL_OK;
}


// the run's identity in events.jsonl and summary.json
static srl_log_run log_run(const srl_onpolicy *t) {
  return (srl_log_run){t->cfg.algo, t->cfg.env_id, t->ops->name,
                       t->cfg.seed, t->epochs,     t->cfg.algo_cfgs.steps_per_epoch};
}

static void event_run_fields(srl_onpolicy *t) {
  srl_log_run run = log_run(t);
  srl_log_event_run_fields(t->events, &run);
}


int srl_onpolicy_create(srl_onpolicy **out, const srl_onpolicy_config *cfg,
                        const srl_onpolicy_options *opt) {
  if (!out || !cfg) return srl_error(SRL_EINVAL, "srl_onpolicy_create: out and cfg needed");
  *out = NULL;
  srl_onpolicy *t = trainer_alloc(opt);
  if (!t) return SRL_ENOMEM;
  t->cfg = *cfg;
  int rc = build(t);
  if (rc == 0) rc = make_run_dir(t, opt);
  char path[PATH_MAX];
  if (rc == 0) rc = srl_run_dir_join(path, sizeof path, t->run_dir, "config.yaml");
  if (rc == 0) rc = srl_config_save(srl_onpolicy_schema(), &t->cfg, path);
  if (rc == 0) rc = open_logs(t, 1);
  if (rc < 0) {
    srl_onpolicy_destroy(t);
    return rc;
  }
  if (event_begin(t, "start")) {
    event_run_fields(t);
    fputs(", \"run_dir\": ", t->events);
    srl_log_json_string(t->events, t->run_dir);
    event_end(t);
  }
  *out = t;
  return SRL_OK;
}


//---- acting during the rollout -------------------------------------------------------------------

// OmniSafe's normalize(): update with the rows, then apply; a copy without obs_normalize
static int normalize_obs(srl_onpolicy *t, float *out, const float *x, int rows) {
  if (t->cfg.algo_cfgs.obs_normalize) return srl_normalizer_normalize(&t->norm, out, x, rows);
  if (out != x) memcpy(out, x, sizeof(float) * (size_t)rows * t->obs_dim);
  return SRL_OK;
}


// copy a network output of n floats to the host
static int net_out(srl_onpolicy *t, float *dst, const float *src, size_t n) {
  if (t->ops->device == SRL_DEVICE_CPU) {
    memcpy(dst, src, sizeof(float) * n);
    return SRL_OK;
  }
  return t->ops->download(dst, src, sizeof(float) * n);
}


// actor means (when mean is not NULL) and both critics on n host observation rows
static int policy_forward(srl_onpolicy *t, const float *obs, int n, float *mean, float *v_r,
                          float *v_c) {
  const float *in = obs;
  if (t->ops->device != SRL_DEVICE_CPU) {
    SRL_TRY(t->ops->upload(t->dev_obs, obs, sizeof(float) * (size_t)n * t->obs_dim));
    in = t->dev_obs;
  }
  srl_actor_critic *ac = t->ac;
  if (mean) {
    SRL_TRY(srl_mlp_forward(ac->actor, in, n));
    SRL_TRY(net_out(t, mean, ac->actor->out, (size_t)n * t->act_dim));
  }
  SRL_TRY(srl_mlp_forward(ac->critic_r, in, n));
  SRL_TRY(net_out(t, v_r, ac->critic_r->out, (size_t)n));
  SRL_TRY(srl_mlp_forward(ac->critic_c, in, n));
  return net_out(t, v_c, ac->critic_c->out, (size_t)n);
}


// the first non-finite entry of x (n), or -1
static long first_nonfinite(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return (long)i;
  return -1;
}


// every network parameter finite, or SRL_ENONFINITE naming the tensor
static int check_params(srl_onpolicy *t) {
  const srl_mlp *nets[3] = {t->ac->actor, t->ac->critic_r, t->ac->critic_c};
  static const char *names[3] = {"actor", "critic_r", "critic_c"};
  for (int k = 0; k < 3; k++)
    SRL_TRY(srl_log_scan_params(nets[k], names[k], t->ops, t->param_host));
  return SRL_OK;
}


//---- interruption and NaN stop -------------------------------------------------------------------

static int stop_requested(const srl_onpolicy *t) {
  return t->stop || srl_interrupt_signal();
}


int srl_onpolicy_handle_signals(void) {
  return srl_interrupt_install();
}


void srl_onpolicy_request_stop(srl_onpolicy *t) {
  if (t) t->stop = 1;
}


// the state a rollout changes, kept at its start so an interrupted rollout can be undone
static void snapshot(srl_onpolicy *t) {
  size_t O = (size_t)t->obs_dim;
  memcpy(t->snap_mean, t->norm.mean, sizeof(float) * O);
  memcpy(t->snap_var, t->norm.var, sizeof(float) * O);
  t->snap_count = t->norm.count;
  srl_rng_state_save(t->rng_sample, t->snap_rng);
  memcpy(t->snap_win, t->win, sizeof(float) * 3 * (size_t)t->win_cap);
  t->snap_win_n = t->win_n;
  t->snap_win_head = t->win_head;
  t->snap_steps = t->total_steps;
  t->snap_episodes = t->episodes_total;
}


static void restore_snapshot(srl_onpolicy *t) {
  size_t O = (size_t)t->obs_dim;
  memcpy(t->norm.mean, t->snap_mean, sizeof(float) * O);
  memcpy(t->norm.var, t->snap_var, sizeof(float) * O);
  t->norm.count = t->snap_count;
  srl_rng_state_load(t->rng_sample, t->snap_rng, t->rng_bytes);
  memcpy(t->win, t->snap_win, sizeof(float) * 3 * (size_t)t->win_cap);
  t->win_n = t->snap_win_n;
  t->win_head = t->snap_win_head;
  t->total_steps = t->snap_steps;
  t->episodes_total = t->snap_episodes;
}


static double wall_now(const srl_onpolicy *t) {
  return t->wall_base + (srl__onpolicy_now() - t->t_start);
}


static int write_summary(srl_onpolicy *t, const char *status, const char *message,
                         const char *checkpoint) {
  double m[3];
  window_means(t, m);
  double lambda = t->has_lagrange ? t->lagrange.lambda : 0.0;
  srl_log_summary s = {status,
                       message,
                       checkpoint,
                       t->run_dir,
                       log_run(t),
                       t->epoch,
                       t->total_steps,
                       t->episodes_total,
                       m[0],
                       m[1],
                       m[2],
                       lambda,
                       t->cfg.lagrange_cfgs.cost_limit,
                       wall_now(t)};
  return srl_log_summary_write(t->run_dir, &s);
}


// save checkpoints/epoch-<epoch>.safetensors and log it
static int save_epoch_checkpoint(srl_onpolicy *t) {
  char rel[64], path[PATH_MAX];
  snprintf(rel, sizeof rel, "checkpoints/epoch-%d.safetensors", t->epoch);
  SRL_TRY(srl_run_dir_join(path, sizeof path, t->run_dir, rel));
  SRL_TRY(srl__onpolicy_ckpt_save(t, path));
  snprintf(t->last_ckpt, sizeof t->last_ckpt, "%s", rel);
  if (t->events) srl_log_event_checkpoint(t->events, t->epoch, t->total_steps, rel);
  return SRL_OK;
}


static int interrupted(srl_onpolicy *t) {
  t->stopped = 1;
  int rc = save_epoch_checkpoint(t);
  if (rc < 0) return rc;
  if (t->events)
    srl_log_event_interrupted(t->events, t->epoch, srl_interrupt_signal(), t->last_ckpt);
  char msg[PATH_MAX + 128];
  snprintf(msg, sizeof msg, "interrupted after epoch %d of %d", t->epoch, t->epochs);
  write_summary(t, "interrupted", msg, t->last_ckpt);
  return srl_error(SRL_EINTERRUPTED,
                   "%s; the state is saved in %s/%s (continue with "
                   "'saferl train --resume %s')",
                   msg, t->run_dir, t->last_ckpt, t->run_dir);
}


static int nan_stop(srl_onpolicy *t) {
  t->stopped = 1;
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", srl_errmsg());
  if (t->events) srl_log_event_nan_stop(t->events, t->epoch + 1, msg, t->last_ckpt);
  write_summary(t, "nan_stop", msg, t->last_ckpt);
  return srl_error(SRL_ENONFINITE, "training stopped in epoch %d: %s; %s%s%s", t->epoch + 1, msg,
                   t->last_ckpt[0] ? "the last good checkpoint is " : "no checkpoint was saved",
                   t->last_ckpt[0] ? t->run_dir : "", t->last_ckpt[0] ? "/" : "");
}


//---- the progress line ---------------------------------------------------------------------------

// the live line on a terminal (final: an epoch just ended; elsewhere one line per epoch)
static void draw_progress(srl_onpolicy *t, long long steps_now, int final) {
  if (t->quiet || (!t->tty && !final)) return;
  double now = srl__onpolicy_now();
  if (t->tty && !final && now - t->last_draw < DRAW_EVERY_S) return;
  t->last_draw = now;
  long long run_steps = (long long)t->epochs * t->cfg.algo_cfgs.steps_per_epoch;
  double in_epoch = now - t->epoch_t0;
  double sps = t->has_last    ? t->last.fps
               : in_epoch > 0 ? (double)(steps_now - t->snap_steps) / in_epoch
                              : 0.0;
  char eta[32];
  srl_log_duration(eta, sizeof eta, sps > 0 ? (double)(run_steps - steps_now) / sps : NAN);
  double m[3];
  window_means(t, m);
  char ret[32] = "-", cost[32] = "-", line[320];
  if (t->win_n) {
    snprintf(ret, sizeof ret, "%.2f", m[0]);
    snprintf(cost, sizeof cost, "%.2f", m[1]);
  }
  snprintf(line, sizeof line,
           "%s %s s%d | epoch %d/%d | %lld/%lld steps | %.0f SPS | ETA %s | ret %s  cost %s"
           "  lambda %.4g",
           t->cfg.algo, t->cfg.env_id, t->cfg.seed, t->epoch + (final ? 0 : 1), t->epochs,
           steps_now, run_steps, sps, eta, ret, cost, t->has_lagrange ? t->lagrange.lambda : 0.0);
  srl_log_progress_emit(line, t->tty);
}


//---- one epoch -----------------------------------------------------------------------------------

// the reset seed of an epoch's vector env
static uint64_t epoch_seed(const srl_onpolicy *t, int epoch) {
  return srl_hash64(srl_hash64((uint64_t)t->cfg.seed ^ 0x243f6a8885a308d3ull) + (uint64_t)epoch);
}


// the finished envs of the last vector step: window, normaliser, bootstrap values, paths
static int end_paths(srl_onpolicy *t, int *episodes) {
  srl_vec_env *v = t->venv;
  int N = t->num_envs, O = t->obs_dim, nf = 0, need_values = 0;
  for (int i = 0; i < N; i++) {
    if (!v->done[i]) continue;
    memcpy(t->fin_n + (size_t)nf * O, v->final_obs + (size_t)i * O, sizeof(float) * O);
    t->fin_env[nf++] = i;
    need_values |= !v->terminated[i];
    const srl_episode_stats *s = &v->stats[i];
    window_push(t, (float)s->last_ret, (float)s->last_cost, (float)s->last_length);
    (*episodes)++;
    t->episodes_total++;
  }
  if (!nf) return SRL_OK;
  SRL_TRY(normalize_obs(t, t->fin_n, t->fin_n, nf));
  if (need_values) {
    SRL_TRY(policy_forward(t, t->fin_n, nf, NULL, t->fv_tmp, t->fv_tmp + N));
    for (int k = 0; k < nf; k++) {
      t->fv_r[t->fin_env[k]] = t->fv_tmp[k];
      t->fv_c[t->fin_env[k]] = t->fv_tmp[N + k];
    }
  }
  return srl_rollout_end_paths(&t->rb, v->terminated, v->truncated, t->fv_r, t->fv_c);
}


// collect one epoch into the rollout buffer; 1 when interrupted (state restored), 0 when done
static int rollout(srl_onpolicy *t, int *episodes) {
  srl_vec_env *v = t->venv;
  int N = t->num_envs, A = t->act_dim;
  SRL_TRY(srl_vec_env_reset(v, epoch_seed(t, t->epoch)));
  SRL_TRY(normalize_obs(t, t->obs_n, v->obs, N));
  SRL_TRY(net_out(t, t->log_std, t->ac->actor->extra, (size_t)A));
  srl_rollout_reset(&t->rb);
  srl_gauss g;
  SRL_TRY(srl_dist_init(&g, t->mean, t->log_std, N, A, 0));
  for (int s = 0; s < t->steps_per_env; s++) {
    if (stop_requested(t)) return 1;
    SRL_TRY(policy_forward(t, t->obs_n, N, t->mean, t->v_r, t->v_c));
    long j = first_nonfinite(t->mean, (size_t)N * A);
    if (j >= 0)
      return srl_error(SRL_ENONFINITE, "actor output (action mean) is %g at env %ld, step %d",
                       t->mean[j], j / A, s);
    if ((j = first_nonfinite(t->v_r, (size_t)N)) >= 0)
      return srl_error(SRL_ENONFINITE, "reward critic value is %g at env %ld, step %d", t->v_r[j],
                       j, s);
    if ((j = first_nonfinite(t->v_c, (size_t)N)) >= 0)
      return srl_error(SRL_ENONFINITE, "cost critic value is %g at env %ld, step %d", t->v_c[j], j,
                       s);
    SRL_TRY(srl_dist_sample(t->act, &g, t->rng_sample));
    SRL_TRY(srl_dist_logprob(t->logp, t->act, &g));
    SRL_TRY(srl_vec_env_step(v, t->act));
    SRL_TRY(
        srl_rollout_store(&t->rb, t->obs_n, t->act, t->logp, v->rewards, v->costs, t->v_r, t->v_c));
    SRL_TRY(end_paths(t, episodes));
    SRL_TRY(normalize_obs(t, t->obs_n, v->obs, N));
    t->total_steps += N;
    draw_progress(t, t->total_steps, 0);
  }
  // the epoch cut bootstraps from the observation the next step would act on
  SRL_TRY(policy_forward(t, t->obs_n, N, NULL, t->v_r, t->v_c));
  SRL_TRY(srl_rollout_finish(&t->rb, t->v_r, t->v_c));
  return 0;
}


static void write_row(srl_onpolicy *t, const srl_onpolicy_row *r) {
  FILE *f = t->csv;
  fprintf(f, "%d,%lld,", r->epoch, r->total_steps);
  double v[] = {r->ep_ret,     r->ep_cost,    r->ep_len, r->lagrange,  r->up.loss_pi,
                r->up.loss_vr, r->up.loss_vc, r->up.kl,  r->up.entropy};
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
    srl_log_csv_number(f, v[i]);
    fputc(',', f);
  }
  fprintf(f, "%.1f,%.3f,%d,", r->fps, r->wall_s, r->up.iters);
  srl_log_csv_number(f, r->actor_lr);
  fprintf(f, ",%d,%.3f,%.3f\n", r->episodes, r->rollout_s, r->update_s);
  fflush(f);
}


int srl_onpolicy_epoch(srl_onpolicy *t) {
  if (!t) return srl_error(SRL_EINVAL, "srl_onpolicy_epoch: t is NULL");
  if (t->stopped) return srl_error(SRL_ESTATE, "the run in %s has stopped", t->run_dir);
  if (t->epoch >= t->epochs)
    return srl_error(SRL_ESTATE, "the run in %s has done all %d epochs", t->run_dir, t->epochs);
  if (stop_requested(t)) return interrupted(t);
  int rc = check_params(t);
  if (rc == SRL_ENONFINITE) return nan_stop(t);
  SRL_TRY(rc);

  // rollout
  snapshot(t);
  double t0 = t->epoch_t0 = srl__onpolicy_now();
  int episodes = 0;
  rc = rollout(t, &episodes);
  if (rc == 1) {
    restore_snapshot(t);
    return interrupted(t);
  }
  if (rc == SRL_ENONFINITE) return nan_stop(t);
  if (rc < 0) return srl_error_context(rc, "epoch %d rollout: ", t->epoch + 1);
  double t1 = srl__onpolicy_now();

  // the algorithm's update
  double m[3];
  window_means(t, m);
  srl_lr_schedule lr = {SRL_LR_LINEAR, (float)t->cfg.model_cfgs.actor.lr, 0.0f, t->epochs, 0};
  float actor_lr = t->cfg.model_cfgs.linear_lr_decay ? srl_lr_at(&lr, t->epoch) : lr.base;
  srl_onpolicy_batch b = {.rb = &t->rb,
                          .lagrange = t->has_lagrange ? &t->lagrange : NULL,
                          .ep_cost = m[1],
                          .cost_limit = t->cfg.lagrange_cfgs.cost_limit,
                          .epoch = t->epoch,
                          .epochs = t->epochs,
                          .actor_lr = actor_lr,
                          .rng = t->rng_update};
  srl_onpolicy_stats st;
  memset(&st, 0, sizeof st);
  rc = t->algo->update(t->algo_state, t->ac, &b, &st);
  if (rc == 0) rc = check_params(t);
  if (rc == 0 && t->has_lagrange && !isfinite(t->lagrange.lambda))
    rc = srl_error(SRL_ENONFINITE, "Lagrange multiplier lambda is %g", t->lagrange.lambda);
  if (rc == SRL_ENONFINITE) return nan_stop(t);
  if (rc < 0) return srl_error_context(rc, "epoch %d update: ", t->epoch + 1);
  double t2 = srl__onpolicy_now();

  // the epoch's row
  t->epoch++;
  srl_onpolicy_row *r = &t->last;
  memset(r, 0, sizeof *r);
  r->epoch = t->epoch;
  r->total_steps = t->total_steps;
  r->ep_ret = m[0];
  r->ep_cost = m[1];
  r->ep_len = m[2];
  r->lagrange = st.lambda;
  r->up = st;
  r->actor_lr = actor_lr;
  r->episodes = episodes;
  r->rollout_s = t1 - t0;
  r->update_s = t2 - t1;
  r->fps = (double)t->rb.capacity / (t2 - t0);
  r->wall_s = wall_now(t);
  t->has_last = 1;
  write_row(t, r);
  if (t->events)
    srl_log_event_epoch(t->events, r->epoch, r->total_steps, r->ep_ret, r->ep_cost, r->lagrange,
                        r->fps);
  draw_progress(t, t->total_steps, 1);

  // checkpoints: every save_model_freq epochs (the last epoch's state goes to final.safetensors)
  if (t->epoch % t->cfg.logger_cfgs.save_model_freq == 0 && t->epoch < t->epochs)
    SRL_TRY(save_epoch_checkpoint(t));
  // a stop during the last epoch lets the run finish (final.safetensors is next)
  if (stop_requested(t) && t->epoch < t->epochs) return interrupted(t);
  return SRL_OK;
}


int srl_onpolicy_done(const srl_onpolicy *t) {
  return t->epoch >= t->epochs;
}


int srl_onpolicy_finish(srl_onpolicy *t) {
  if (t->epoch < t->epochs)
    return srl_error(SRL_ESTATE, "finish: %d of %d epochs done", t->epoch, t->epochs);
  char path[PATH_MAX];
  SRL_TRY(srl_run_dir_join(path, sizeof path, t->run_dir, "final.safetensors"));
  SRL_TRY(srl__onpolicy_ckpt_save(t, path));
  double m[3];
  window_means(t, m);
  if (t->events) srl_log_event_finish(t->events, t->epoch, t->total_steps, m[0], m[1], wall_now(t));
  if (t->tty && t->last_draw > 0) {
    fputc('\n', stderr);
    t->last_draw = 0;
  }
  return write_summary(t, "finished", "", "final.safetensors");
}


int srl_onpolicy_train(srl_onpolicy *t) {
  while (!srl_onpolicy_done(t)) {
    int rc = srl_onpolicy_epoch(t);
    if (rc < 0) {
      if (rc != SRL_EINTERRUPTED && rc != SRL_ENONFINITE) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", srl_errmsg());
        if (t->events) srl_log_event_error(t->events, msg);
        write_summary(t, "error", msg, t->last_ckpt);
        srl_error(rc, "%s", msg);
      }
      return rc;
    }
  }
  return srl_onpolicy_finish(t);
}


//---- resume --------------------------------------------------------------------------------------

int srl_onpolicy_resume(srl_onpolicy **out, const char *run_dir, const srl_onpolicy_options *opt) {
  if (!out || !run_dir) return srl_error(SRL_EINVAL, "srl_onpolicy_resume: out and run_dir");
  *out = NULL;
  char cfg_path[PATH_MAX], ckpt[PATH_MAX], ckdir[PATH_MAX];
  SRL_TRY(srl_run_dir_join(cfg_path, sizeof cfg_path, run_dir, "config.yaml"));
  SRL_TRY(srl_run_dir_join(ckdir, sizeof ckdir, run_dir, "checkpoints"));
  SRL_TRY(srl_run_dir_join(ckpt, sizeof ckpt, run_dir, "final.safetensors"));
  if (access(ckpt, F_OK) == 0)
    return srl_error(SRL_ESTATE,
                     "the run in %s has finished (final.safetensors exists); "
                     "nothing to resume",
                     run_dir);
  int epoch = 0;
  int rc = srl_run_dir_find_checkpoint(ckpt, sizeof ckpt, ckdir, 0, &epoch);
  if (rc < 0) return srl_error(rc, "no checkpoint to resume from in %s/checkpoints", run_dir);

  srl_onpolicy *t = trainer_alloc(opt);
  if (!t) return SRL_ENOMEM;
  snprintf(t->run_dir, sizeof t->run_dir, "%s", run_dir);
  rc = srl_onpolicy_config_load(&t->cfg, cfg_path, NULL, 0);
  if (rc == 0) rc = build(t);
  if (rc == 0) rc = srl__onpolicy_ckpt_load(t, ckpt);
  if (rc == 0) rc = srl_run_dir_truncate_progress(run_dir, t->epoch);
  if (rc == 0) rc = open_logs(t, 0);
  if (rc < 0) {
    srl_onpolicy_destroy(t);
    return srl_error_context(rc, "resuming %s: ", run_dir);
  }
  const char *rel = strstr(ckpt, "checkpoints/");
  snprintf(t->last_ckpt, sizeof t->last_ckpt, "%s", rel ? rel : ckpt);
  if (event_begin(t, "resume")) {
    event_run_fields(t);
    fprintf(t->events, ", \"epoch\": %d, \"total_steps\": %lld, \"checkpoint\": ", t->epoch,
            t->total_steps);
    srl_log_json_string(t->events, t->last_ckpt);
    event_end(t);
  }
  *out = t;
  return SRL_OK;
}


//---- accessors -----------------------------------------------------------------------------------

int srl_onpolicy_save(srl_onpolicy *t, const char *path) {
  return srl__onpolicy_ckpt_save(t, path);
}

const char *srl_onpolicy_run_dir(const srl_onpolicy *t) {
  return t->run_dir;
}
const srl_onpolicy_config *srl_onpolicy_get_config(const srl_onpolicy *t) {
  return &t->cfg;
}
srl_actor_critic *srl_onpolicy_actor_critic(srl_onpolicy *t) {
  return t->ac;
}
const srl_onpolicy_row *srl_onpolicy_last_row(const srl_onpolicy *t) {
  return t->has_last ? &t->last : NULL;
}
int srl_onpolicy_epochs_done(const srl_onpolicy *t) {
  return t->epoch;
}
int srl_onpolicy_epochs_total(const srl_onpolicy *t) {
  return t->epochs;
}
srl_lagrange *srl_onpolicy_lagrange(srl_onpolicy *t) {
  return t->has_lagrange ? &t->lagrange : NULL;
}
srl_normalizer *srl_onpolicy_normalizer(srl_onpolicy *t) {
  return &t->norm;
}

// trainer.c: the offline trainer: the config (layered loading, checks, the written text), the
// dataset prepared for the algorithms (checked dims, BC-Safe's selection, actions into [-1, 1],
// reward and cost scaling), batch sampling from a seeded stream, the update loop with periodic
// evaluation, the run directory's files, checkpoints, resume, interruption, NaN stop, and trained
// policies loaded back from checkpoints.
#include "algos/offline/trainer.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "algos/offline/dataset.h"
#include "algos/offline/dsrl.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/safetensors.h"
#include "envs/env.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define CSV_HEADER \
  "step,ep_ret,ep_cost,ep_len,norm_ret,norm_cost,ret_std,cost_std,updates_per_s,wall_s"
#define DRAW_EVERY_S 0.2  // progress line refresh period on a terminal
#define MAX_WRITE_FIELDS 512
#define EVAL_MAX_ENVS 16  // default envs of an evaluation


struct srl_offline {
  srl_offline_config *cfg;
  const srl_offline_algo *algo;
  void *state;
  const srl_ops *ops;
  srl_dataset *data;  // prepared: selection, actions in [-1, 1], scaled rewards and costs
  int obs_dim, act_dim;
  int episode_len;  // task.episode_len or the env's time limit
  int max_act;      // largest act batch (evaluation envs)
  double reward_mult, cost_mult;
  long long row_lo, row_hi;  // rows that batches are drawn from

  // the batch (host), one block
  srl_offline_batch batch;
  float *b_obs, *b_act, *b_rew, *b_cost, *b_next, *b_done, *b_init;
  void *host_mem;
  srl_rng *rng;  // batch sampling (stream 1)
  size_t rng_bytes;
  unsigned char *rng_buf;

  long long step, steps;  // updates done, in the run
  long long rows;         // progress rows written

  // the algorithm's statistics: the last update's, and sums since the last row
  srl_offline_stats last_st;
  int n_stats;
  const char *stat_names[SRL_OFFLINE_STATS_MAX];
  double acc[SRL_OFFLINE_STATS_MAX];
  long long acc_n;
  int header_written;

  srl_offline_eval_result eval;  // the last evaluation
  int has_eval, eval_pending;    // any yet; one since the last row
  int eval_final;                // the last one is the evaluation after training
  long long eval_step;

  // the run directory
  char run_dir[PATH_MAX];
  FILE *csv, *events;
  char *config_text;
  char last_ckpt[PATH_MAX];  // relative to run_dir; "" before the first
  double wall_base, t_start;
  double t_row;        // monotonic time of the last row (or of the start)
  long long step_row;  // step of the last row
  double ups_row;      // updates per second over the last row's span
  int quiet, tty;
  double last_draw;
  int stopped;
  volatile sig_atomic_t stop;
};


static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}


//---- the config ----------------------------------------------------------------------------------

int srl_offline_config_create(srl_offline_config **out) {
  if (!out) return srl_error(SRL_EINVAL, "srl_offline_config_create: out is NULL");
  *out = NULL;
  const srl_cfg_schema *s;
  SRL_TRY(srl_offline_schema(&s));
  srl_offline_config *c = srl_calloc(srl_offline_config_size());
  if (!c) return SRL_ENOMEM;
  int rc = srl_config_defaults(s, c);
  if (rc < 0) {
    srl_free(c);
    return rc;
  }
  *out = c;
  return SRL_OK;
}


void srl_offline_config_destroy(srl_offline_config *cfg) {
  srl_free(cfg);
}


void srl_offline_config_copy(srl_offline_config *dst, const srl_offline_config *src) {
  if (dst && src && dst != src) memcpy(dst, src, srl_offline_config_size());
}


int srl_offline_config_load(srl_offline_config *cfg, const char *path, const char *const *sets,
                            int n_sets) {
  if (!cfg || n_sets < 0 || (n_sets > 0 && !sets))
    return srl_error(SRL_EINVAL, "srl_offline_config_load: bad arguments");
  const srl_cfg_schema *s;
  SRL_TRY(srl_offline_schema(&s));
  // layers go into a copy, so cfg changes only when every layer loads
  srl_offline_config *c;
  SRL_TRY(srl_offline_config_create(&c));
  srl_offline_config_copy(c, cfg);
  int rc = path ? srl_config_load_file(s, c, path) : SRL_OK;
  for (int i = 0; rc == 0 && i < n_sets; i++) rc = srl_config_set(s, c, sets[i]);
  if (rc == 0) srl_offline_config_copy(cfg, c);
  srl_offline_config_destroy(c);
  return rc;
}


static int unknown_algo(const char *name) {
  char known[256];
  srl_offline_algo_names(known, sizeof known);
  return srl_error(SRL_ECONFIG, "unknown algo '%s' (known: %s)", name, known);
}


int srl_offline_config_check(const srl_offline_config *cfg) {
  if (!cfg) return srl_error(SRL_EINVAL, "srl_offline_config_check: cfg is NULL");
  if (!srl_offline_algo_find(cfg->algo)) return unknown_algo(cfg->algo);
  if (!srl_env_id_known(cfg->env_id))
    return srl_error(SRL_ECONFIG,
                     "env_id '%s' is neither a registered environment ('saferl envs' lists them) "
                     "nor remote:ENDPOINT",
                     cfg->env_id);
  if (!cfg->dataset[0])
    return srl_error(SRL_ECONFIG,
                     "dataset: no file given (an HDF5 file in DSRL's layout, e.g. made by "
                     "'saferl collect')");
  if (cfg->eval.score_task[0] && !srl_dsrl_find(cfg->eval.score_task))
    return srl_error(SRL_ECONFIG, "eval.score_task '%s' is not a DSRL or D4RL task",
                     cfg->eval.score_task);
  return SRL_OK;
}


// the fields config.yaml and checkpoints record: common keys and the run's algorithm
static int write_schema(srl_cfg_schema *out, srl_cfg_field *fields, const char *algo_name) {
  const srl_offline_algo *a = srl_offline_algo_find(algo_name);
  int n = srl_offline_schema_for(fields, MAX_WRITE_FIELDS, a);
  if (n < 0) return n;
  *out = (srl_cfg_schema){"offline training", fields, n};
  return SRL_OK;
}


int srl_offline_config_text(const srl_offline_config *cfg, char **out) {
  if (!cfg || !out) return srl_error(SRL_EINVAL, "srl_offline_config_text: bad arguments");
  *out = NULL;
  srl_cfg_field *fields = srl_malloc(sizeof(srl_cfg_field) * MAX_WRITE_FIELDS);
  if (!fields) return SRL_ENOMEM;
  srl_cfg_schema s;
  int rc = write_schema(&s, fields, cfg->algo);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = rc == 0 ? open_memstream(&buf, &len) : NULL;
  if (rc == 0 && !f) rc = srl_error(SRL_ENOMEM, "config text: cannot open a memory stream");
  if (f) {
    rc = srl_config_write(&s, cfg, f);
    if (fclose(f) != 0 && rc == 0) rc = srl_error(SRL_EIO, "config text: cannot close");
  }
  srl_free(fields);
  if (rc < 0) {
    free(buf);
    return rc;
  }
  *out = buf;
  return SRL_OK;
}


static int config_save(const srl_offline_config *cfg, const char *path) {
  srl_cfg_field *fields = srl_malloc(sizeof(srl_cfg_field) * MAX_WRITE_FIELDS);
  if (!fields) return SRL_ENOMEM;
  srl_cfg_schema s;
  int rc = write_schema(&s, fields, cfg->algo);
  if (rc == 0) rc = srl_config_save(&s, cfg, path);
  srl_free(fields);
  return rc;
}


// the config text of an open checkpoint over the defaults
static int meta_config(srl_offline_config *cfg, const srl_st_file *f, const char *path) {
  const char *format = srl_st_metadata(f, "format");
  if (!format || strcmp(format, SRL_OFFLINE_FORMAT) != 0)
    return srl_error(SRL_EFORMAT, "%s: not an offline checkpoint (metadata format '%s', not '%s')",
                     path, format ? format : "(none)", SRL_OFFLINE_FORMAT);
  const char *text = srl_st_metadata(f, "config");
  if (!text) return srl_error(SRL_EFORMAT, "%s: no config in the metadata", path);
  const srl_cfg_schema *s;
  SRL_TRY(srl_offline_schema(&s));
  srl_offline_config *c;
  SRL_TRY(srl_offline_config_create(&c));
  int rc = srl_config_load_string(s, c, text, path);
  if (rc == 0) srl_offline_config_copy(cfg, c);
  srl_offline_config_destroy(c);
  return rc;
}


int srl_offline_config_from_checkpoint(srl_offline_config *cfg, const char *path) {
  if (!cfg || !path) return srl_error(SRL_EINVAL, "srl_offline_config_from_checkpoint: arguments");
  srl_st_file *f = NULL;
  SRL_TRY(srl_st_open(&f, path));
  int rc = meta_config(cfg, f, path);
  srl_st_close(f);
  return rc;
}


//---- checkpoints in a run directory --------------------------------------------------------------

// N of "step-<N>.safetensors" (a name or a path), or -1
static long long checkpoint_step(const char *name) {
  const char *p = strrchr(name, '/');
  p = p ? p + 1 : name;
  if (strncmp(p, "step-", 5) != 0) return -1;
  char *end;
  long long n = strtoll(p + 5, &end, 10);
  if (end == p + 5 || n < 0 || strcmp(end, ".safetensors") != 0) return -1;
  return n;
}


// the highest step-<N>.safetensors in dir into best (its N in *step), or *step stays -1
static void latest_in(const char *dir, char *best, size_t cap, long long *step) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    long long n = checkpoint_step(e->d_name);
    if (n > *step && snprintf(best, cap, "%s/%s", dir, e->d_name) < (int)cap) *step = n;
  }
  closedir(d);
}


int srl_offline_find_checkpoint(char *out, size_t cap, const char *path, int allow_final,
                                long long *step) {
  if (!out || !path || !step) return srl_error(SRL_EINVAL, "srl_offline_find_checkpoint: args");
  *step = -1;
  struct stat st;
  if (stat(path, &st) != 0) return srl_error(SRL_ENOTFOUND, "%s: %s", path, strerror(errno));
  if (!S_ISDIR(st.st_mode)) {
    if (snprintf(out, cap, "%s", path) >= (int)cap)
      return srl_error(SRL_EINVAL, "path too long: %s", path);
    *step = checkpoint_step(path);
    return SRL_OK;
  }
  char probe[PATH_MAX];
  snprintf(probe, sizeof probe, "%s/final.safetensors", path);
  if (allow_final && stat(probe, &st) == 0) {
    if (snprintf(out, cap, "%s", probe) >= (int)cap)
      return srl_error(SRL_EINVAL, "path too long: %s", probe);
    return SRL_OK;
  }
  char best[PATH_MAX] = "";
  long long n = -1;
  snprintf(probe, sizeof probe, "%s/checkpoints", path);
  latest_in(probe, best, sizeof best, &n);
  if (n < 0) latest_in(path, best, sizeof best, &n);
  if (n < 0)
    return srl_error(SRL_ENOTFOUND, "%s holds no %scheckpoints/step-<N>.safetensors", path,
                     allow_final ? "final.safetensors and no " : "");
  if (snprintf(out, cap, "%s", best) >= (int)cap)
    return srl_error(SRL_EINVAL, "path too long: %s", best);
  *step = n;
  return SRL_OK;
}


//---- the dataset ---------------------------------------------------------------------------------

// what the trainer needs of the env: dims, action bounds, time limit
typedef struct env_probe {
  int obs_dim, act_dim, max_steps;
  float *low, *high;  // (act_dim) malloc'd
} env_probe;

static int probe_env(env_probe *p, const char *id, const char *options) {
  memset(p, 0, sizeof *p);
  srl_env *env = NULL;
  SRL_TRY(srl_env_create(&env, id, options));
  p->obs_dim = env->obs_space.dim;
  p->act_dim = env->act_space.dim;
  p->max_steps = env->max_episode_steps;
  if (p->max_steps <= 0) {
    const srl_env_spec *spec = srl_env_find(id);
    p->max_steps = spec ? spec->max_episode_steps : 0;
  }
  int rc = SRL_OK;
  p->low = srl_malloc(sizeof(float) * 2 * (size_t)p->act_dim);
  if (!p->low) rc = SRL_ENOMEM;
  for (int j = 0; rc == 0 && j < p->act_dim; j++) {
    float lo = env->act_space.low[j], hi = env->act_space.high[j];
    if (!isfinite(lo) || !isfinite(hi) || !(hi > lo))
      rc = srl_error(SRL_EINVAL, "env %s: action %d has bounds [%g, %g]; finite bounds are needed",
                     id, j, lo, hi);
    p->low[j] = lo;
    p->low[p->act_dim + j] = hi;
  }
  p->high = p->low ? p->low + p->act_dim : NULL;
  srl_env_destroy(env);
  if (rc < 0) {
    srl_free(p->low);
    p->low = p->high = NULL;
  }
  return rc;
}


// BC-Safe's selection: the episodes whose cost is at most the limit
static int select_safe(srl_offline *t) {
  srl_dataset *d = t->data;
  uint8_t *keep = srl_malloc((size_t)(d->n_episodes ? d->n_episodes : 1));
  if (!keep) return SRL_ENOMEM;
  long long kept = 0;
  for (long long i = 0; i < d->n_episodes; i++)
    kept += keep[i] = d->ep_cost[i] <= t->cfg->task.cost_limit;
  int rc = SRL_OK;
  if (!kept)
    rc = srl_error(SRL_ECONFIG,
                   "%s: %s trains on episodes with cost at most task.cost_limit = %g, and none of "
                   "the %lld episodes qualifies",
                   t->cfg->dataset, t->algo->name, t->cfg->task.cost_limit, d->n_episodes);
  srl_dataset *sel = NULL;
  if (rc == 0) rc = srl_dataset_select(&sel, d, keep);
  srl_free(keep);
  if (rc < 0) return rc;
  srl_dataset_destroy(d);
  t->data = sel;
  return SRL_OK;
}


// the factor of rewards: reward_scale, times max_steps / (R_max − R_min) for "returns"
static int reward_multiplier(srl_offline *t) {
  const srl_offline_config *c = t->cfg;
  t->reward_mult = c->task.reward_scale;
  t->cost_mult = c->task.cost_scale;
  if (strcmp(c->task.reward_normalize, "returns") != 0) return SRL_OK;
  const srl_dsrl_task *task = srl_dsrl_find(c->eval.score_task[0] ? c->eval.score_task : c->env_id);
  double span, steps;
  if (task) {
    span = task->r_max - task->r_min;
    steps = task->max_steps;
  } else {
    // no reference task: the dataset's own episode returns
    const srl_dataset *d = t->data;
    double lo = INFINITY, hi = -INFINITY;
    for (long long i = 0; i < d->n_episodes; i++) {
      if (d->ep_return[i] < lo) lo = d->ep_return[i];
      if (d->ep_return[i] > hi) hi = d->ep_return[i];
    }
    span = hi - lo;
    steps = t->episode_len;
  }
  if (!(span > 0) || !isfinite(span))
    return srl_error(SRL_ECONFIG,
                     "task.reward_normalize: returns: the return range R_max - R_min is %g; "
                     "it must be positive",
                     span);
  t->reward_mult *= steps / span;
  return SRL_OK;
}


// read the file with the env's dims, select, map actions, scale rewards and costs
static int prepare_data(srl_offline *t, const env_probe *env) {
  const srl_offline_config *c = t->cfg;
  srl_dataset_read_options ro = {
      .obs_dim = env->obs_dim, .act_dim = env->act_dim, .allow_no_costs = 1};
  int rc = srl_dataset_read(&t->data, c->dataset, &ro);
  if (rc < 0) return srl_error_context(rc, "dataset: ");
  if (t->data->n_episodes < 1)
    return srl_error(SRL_EFORMAT, "%s: no complete episode (no row has terminals or timeouts set)",
                     c->dataset);
  if (t->algo->safe_episodes_only) SRL_TRY(select_safe(t));
  SRL_TRY(reward_multiplier(t));

  srl_dataset *d = t->data;
  int A = d->act_dim;
  float clip = (float)c->task.action_clip;
  for (long long i = 0; i < d->n; i++) {
    float *a = d->act + (size_t)i * A;
    for (int j = 0; j < A; j++) {
      float x = 2.0f * (a[j] - env->low[j]) / (env->high[j] - env->low[j]) - 1.0f;
      a[j] = x > clip ? clip : x < -clip ? -clip : x;
    }
    d->reward[i] = (float)(d->reward[i] * t->reward_mult);
    d->cost[i] = (float)(d->cost[i] * t->cost_mult);
  }
  t->row_lo = d->ep_start[0];
  t->row_hi = d->ep_start[d->n_episodes];
  if (t->row_hi <= t->row_lo) return srl_error(SRL_EFORMAT, "%s: no rows to sample", c->dataset);
  return SRL_OK;
}


//---- sampling ------------------------------------------------------------------------------------

int srl_offline_sample(srl_offline *t, srl_offline_batch *b) {
  const srl_dataset *d = t->data;
  int B = t->cfg->train.batch_size, O = t->obs_dim, A = t->act_dim;
  unsigned long span = (unsigned long)(t->row_hi - t->row_lo);
  for (int i = 0; i < B; i++) {
    size_t r = (size_t)t->row_lo + srl_rng_int(t->rng, span);
    memcpy(t->b_obs + (size_t)i * O, d->obs + r * O, sizeof(float) * O);
    memcpy(t->b_next + (size_t)i * O, d->next_obs + r * O, sizeof(float) * O);
    memcpy(t->b_act + (size_t)i * A, d->act + r * A, sizeof(float) * A);
    t->b_rew[i] = d->reward[r];
    t->b_cost[i] = d->cost[r];
    t->b_done[i] = (d->terminal[r] || d->timeout[r]) ? 1.0f : 0.0f;
  }
  // init_obs: first observations of uniformly drawn episodes
  for (int i = 0; i < B; i++) {
    size_t e = srl_rng_int(t->rng, (unsigned long)d->n_episodes);
    memcpy(t->b_init + (size_t)i * O, d->obs + (size_t)d->ep_start[e] * O, sizeof(float) * O);
  }
  if (b) *b = t->batch;
  return SRL_OK;
}


//---- building a run ------------------------------------------------------------------------------

// envs of an evaluation of n episodes
static int eval_envs(const srl_offline_config *c, int n) {
  int e = c->eval.envs > 0 ? c->eval.envs : (n < EVAL_MAX_ENVS ? n : EVAL_MAX_ENVS);
  if (e > n) e = n;
  return e < 1 ? 1 : e;
}


static srl_offline_setup make_setup(const srl_offline_config *c, const srl_ops *ops, int obs_dim,
                                    int act_dim, int episode_len, int max_act) {
  return (srl_offline_setup){.ops = ops,
                             .obs_dim = obs_dim,
                             .act_dim = act_dim,
                             .batch_size = c->train.batch_size,
                             .max_act_batch = max_act,
                             .total_steps = c->train.steps,
                             .gamma = c->task.gamma,
                             .cost_limit = c->task.cost_limit,
                             .episode_len = episode_len,
                             .seed = (uint64_t)c->seed};
}


// everything but the run directory's files
static int build(srl_offline *t) {
  srl_offline_config *c = t->cfg;
  SRL_TRY(srl_offline_config_check(c));
  t->algo = srl_offline_algo_find(c->algo);
  SRL_TRY(srl_ops_get(&t->ops, c->device));
  if (t->ops->device == SRL_DEVICE_CPU) srl_ops_cpu_set_threads(c->threads);
  env_probe env;
  SRL_TRY(probe_env(&env, c->env_id, c->env_options));
  t->obs_dim = env.obs_dim;
  t->act_dim = env.act_dim;
  t->episode_len = c->task.episode_len > 0 ? c->task.episode_len : env.max_steps;
  int rc = prepare_data(t, &env);
  srl_free(env.low);
  SRL_TRY(rc);
  if (t->episode_len <= 0)
    return srl_error(SRL_ECONFIG, "env %s has no time limit: set task.episode_len", c->env_id);

  // the batch, in one block
  size_t B = (size_t)c->train.batch_size, O = (size_t)t->obs_dim, A = (size_t)t->act_dim;
  size_t f = sizeof(float), total = 0;
  SRL_TRY(srl_rng_create(&t->rng, (uint64_t)c->seed, 1));
  t->rng_bytes = srl_rng_state_size(t->rng);
  size_t o_obs = srl_layout_add(&total, B * O * f), o_next = srl_layout_add(&total, B * O * f);
  size_t o_init = srl_layout_add(&total, B * O * f), o_act = srl_layout_add(&total, B * A * f);
  size_t o_rew = srl_layout_add(&total, B * f), o_cost = srl_layout_add(&total, B * f);
  size_t o_done = srl_layout_add(&total, B * f), o_rng = srl_layout_add(&total, t->rng_bytes);
  char *h = srl_calloc(total);
  if (!h) return srl_error_context(SRL_ENOMEM, "batch of %zu rows: ", B);
  t->host_mem = h;
  t->b_obs = (float *)(h + o_obs);
  t->b_next = (float *)(h + o_next);
  t->b_init = (float *)(h + o_init);
  t->b_act = (float *)(h + o_act);
  t->b_rew = (float *)(h + o_rew);
  t->b_cost = (float *)(h + o_cost);
  t->b_done = (float *)(h + o_done);
  t->rng_buf = (unsigned char *)(h + o_rng);
  t->batch = (srl_offline_batch){(int)B,    t->b_obs,  t->b_act,  t->b_rew,
                                 t->b_cost, t->b_next, t->b_done, t->b_init};

  t->max_act = eval_envs(c, c->train.eval_episodes);
  if (c->eval.episodes > 0 && eval_envs(c, c->eval.episodes) > t->max_act)
    t->max_act = eval_envs(c, c->eval.episodes);
  srl_offline_setup su = make_setup(c, t->ops, t->obs_dim, t->act_dim, t->episode_len, t->max_act);
  rc = t->algo->create(&t->state, &su, srl_offline_config_params(c, t->algo));
  if (rc < 0) {
    t->state = NULL;
    return srl_error_context(rc, "%s: ", t->algo->name);
  }
  t->steps = c->train.steps;
  return srl_offline_config_text(c, &t->config_text);
}


static srl_offline *trainer_alloc(const srl_offline_config *cfg, const srl_offline_options *opt) {
  srl_offline *t = srl_calloc(sizeof *t);
  if (!t) return NULL;
  if (srl_offline_config_create(&t->cfg) < 0) {
    srl_free(t);
    return NULL;
  }
  if (cfg) srl_offline_config_copy(t->cfg, cfg);
  t->quiet = opt ? opt->quiet : 0;
  t->tty = !t->quiet && isatty(STDERR_FILENO);
  t->t_start = t->t_row = now_s();
  return t;
}


void srl_offline_destroy(srl_offline *t) {
  if (!t) return;
  if (t->tty && t->last_draw > 0) fputc('\n', stderr);
  if (t->algo && t->state) t->algo->destroy(t->state);
  srl_dataset_destroy(t->data);
  srl_rng_destroy(t->rng);
  if (t->csv) fclose(t->csv);
  if (t->events) fclose(t->events);
  free(t->config_text);
  srl_free(t->host_mem);
  srl_offline_config_destroy(t->cfg);
  srl_free(t);
}


//---- the run directory ---------------------------------------------------------------------------

static int open_logs(srl_offline *t, int fresh) {
  char path[PATH_MAX];
  SRL_TRY(srl_run_dir_join(path, sizeof path, t->run_dir, "progress.csv"));
  t->csv = fopen(path, fresh ? "w" : "a");
  if (!t->csv) return srl_error(SRL_EIO, "cannot open %s: %s", path, strerror(errno));
  // the header waits for the algorithm's statistic names (the first update names them)
  t->header_written = ftell(t->csv) > 0;
  SRL_TRY(srl_run_dir_join(path, sizeof path, t->run_dir, "events.jsonl"));
  t->events = fopen(path, fresh ? "w" : "a");
  if (!t->events) return srl_error(SRL_EIO, "cannot open %s: %s", path, strerror(errno));
  return SRL_OK;
}


static double wall_now(const srl_offline *t) {
  return t->wall_base + (now_s() - t->t_start);
}


// begin an events.jsonl line with the step (NULL when the events file is not open)
static FILE *event_begin(srl_offline *t, const char *name) {
  if (!t->events || srl_log_event_begin(t->events, name) < 0) return NULL;
  fprintf(t->events, ", \"step\": %lld", t->step);
  return t->events;
}

static void event_str(FILE *f, const char *key, const char *value) {
  fprintf(f, ", \"%s\": ", key);
  srl_log_json_string(f, value);
}

static void event_num(FILE *f, const char *key, double value) {
  fprintf(f, ", \"%s\": ", key);
  srl_log_json_number(f, value);
}


// the run's identity in "start" and "resume"
static void event_run_fields(srl_offline *t, FILE *f) {
  event_str(f, "algo", t->cfg->algo);
  event_str(f, "env", t->cfg->env_id);
  fprintf(f, ", \"seed\": %d, \"steps\": %lld", t->cfg->seed, t->steps);
  event_str(f, "device", t->ops->name);
  event_str(f, "dataset", t->cfg->dataset);
  fprintf(f, ", \"transitions\": %lld, \"episodes\": %lld", t->row_hi - t->row_lo,
          t->data->n_episodes);
}


static void event_eval(srl_offline *t, const srl_offline_eval_result *r, int final) {
  FILE *f = event_begin(t, "eval");
  if (!f) return;
  fprintf(f, ", \"final\": %s, \"episodes\": %d", final ? "true" : "false", r->episodes);
  event_num(f, "ep_ret", r->ret_mean);
  event_num(f, "ep_cost", r->cost_mean);
  event_num(f, "ep_len", r->len_mean);
  event_num(f, "norm_ret", r->norm_ret_mean);
  event_num(f, "norm_cost", r->norm_cost_mean);
  fprintf(f, ", \"safe\": %s", r->safe ? "true" : "false");
  srl_log_event_end(f);
}


// summary.json through a temporary file: status, steps, the last evaluation, the checkpoint
static int write_summary(srl_offline *t, const char *status, const char *message,
                         const char *checkpoint) {
  char path[PATH_MAX], tmp[PATH_MAX + 8];
  SRL_TRY(srl_run_dir_join(path, sizeof path, t->run_dir, "summary.json"));
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return srl_error(SRL_EIO, "cannot write %s: %s", tmp, strerror(errno));
  const srl_offline_eval_result *r = t->has_eval ? &t->eval : NULL;
  fputs("{\n  \"status\": ", f);
  srl_log_json_string(f, status);
  fputs(",\n  \"algo\": ", f);
  srl_log_json_string(f, t->cfg->algo);
  fputs(",\n  \"env\": ", f);
  srl_log_json_string(f, t->cfg->env_id);
  fputs(",\n  \"dataset\": ", f);
  srl_log_json_string(f, t->cfg->dataset);
  fprintf(f, ",\n  \"seed\": %d,\n  \"steps\": %lld,\n  \"steps_total\": %lld", t->cfg->seed,
          t->step, t->steps);
  const char *keys[] = {"ep_ret",    "ep_cost",    "ep_len", "norm_ret",
                        "norm_cost", "cost_limit", "wall_s"};
  double vals[] = {r ? r->ret_mean : NAN,
                   r ? r->cost_mean : NAN,
                   r ? r->len_mean : NAN,
                   r ? r->norm_ret_mean : NAN,
                   r ? r->norm_cost_mean : NAN,
                   t->cfg->task.cost_limit,
                   wall_now(t)};
  for (int k = 0; k < 7; k++) {
    fprintf(f, ",\n  \"%s\": ", keys[k]);
    srl_log_json_number(f, vals[k]);
  }
  fprintf(f, ",\n  \"safe\": %s", r ? (r->safe ? "true" : "false") : "null");
  if (r) {
    fprintf(f, ",\n  \"eval\": {\"step\": %lld, \"episodes\": %d, \"task\": ", t->eval_step,
            r->episodes);
    srl_log_json_string(f, r->task);
    const char *ek[] = {"ret_std",       "cost_std",   "len_std",    "norm_ret_std",
                        "norm_cost_std", "goal_rate",  "d4rl_score", "d4rl_score_std",
                        "within_limit",  "cost_median"};
    double ev[] = {r->ret_std,
                   r->cost_std,
                   r->len_std,
                   r->norm_ret_std,
                   r->norm_cost_std,
                   r->goal_rate,
                   r->d4rl ? r->d4rl_score_mean : NAN,
                   r->d4rl ? r->d4rl_score_std : NAN,
                   r->within_limit,
                   r->cost_median};
    for (size_t k = 0; k < sizeof ek / sizeof *ek; k++) {
      fprintf(f, ", \"%s\": ", ek[k]);
      srl_log_json_number(f, ev[k]);
    }
    fputs("}", f);
  } else {
    fputs(",\n  \"eval\": null", f);
  }
  fputs(",\n  \"checkpoint\": ", f);
  if (checkpoint && checkpoint[0])
    srl_log_json_string(f, checkpoint);
  else
    fputs("null", f);
  fputs(",\n  \"message\": ", f);
  srl_log_json_string(f, message ? message : "");
  fputs(",\n  \"run_dir\": ", f);
  srl_log_json_string(f, t->run_dir);
  fputs("\n}\n", f);
  int bad = ferror(f);
  if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
    unlink(tmp);
    return srl_error(SRL_EIO, "cannot write %s", path);
  }
  return SRL_OK;
}


//---- checkpoints ---------------------------------------------------------------------------------

// the trainer's counters and statistic sums, as stored
typedef struct ckpt_acc {
  double acc[SRL_OFFLINE_STATS_MAX];
  double acc_n, n_stats;
} ckpt_acc;

static int ckpt_save(srl_offline *t, const char *path) {
  srl_st_writer *w = NULL;
  SRL_TRY(srl_st_writer_create(&w));
  int rc = t->algo->save(t->state, w);
  if (rc < 0) rc = srl_error_context(rc, "%s save: ", t->algo->name);
  srl_rng_state_save(t->rng, t->rng_buf);
  int64_t rs[1] = {(int64_t)t->rng_bytes};
  if (rc == 0) rc = srl_st_add(w, "trainer.rng", SRL_DTYPE_U8, 1, rs, t->rng_buf);
  int64_t counters[2] = {t->step, t->rows}, cs[1] = {2};
  if (rc == 0) rc = srl_st_add(w, "trainer.counters", SRL_DTYPE_I64, 1, cs, counters);
  ckpt_acc acc;
  memset(&acc, 0, sizeof acc);
  memcpy(acc.acc, t->acc, sizeof acc.acc);
  acc.acc_n = (double)t->acc_n;
  acc.n_stats = t->n_stats;
  int64_t as[1] = {(int64_t)sizeof acc};
  if (rc == 0) rc = srl_st_add(w, "trainer.acc", SRL_DTYPE_U8, 1, as, &acc);
  char buf[64];
  if (rc == 0) rc = srl_st_set_metadata(w, "format", SRL_OFFLINE_FORMAT);
  if (rc == 0) rc = srl_st_set_metadata(w, "algo", t->cfg->algo);
  if (rc == 0) rc = srl_st_set_metadata(w, "env", t->cfg->env_id);
  if (rc == 0) rc = srl_st_set_metadata(w, "dataset", t->cfg->dataset);
  snprintf(buf, sizeof buf, "%lld", t->step);
  if (rc == 0) rc = srl_st_set_metadata(w, "step", buf);
  if (rc == 0) rc = srl_st_set_metadata(w, "config", t->config_text);
  if (rc == 0) rc = srl_st_set_metadata(w, "version", SRL_VERSION);
  snprintf(buf, sizeof buf, "%.17g", wall_now(t));
  if (rc == 0) rc = srl_st_set_metadata(w, "wall_s", buf);
  if (rc == 0) rc = srl_st_write(w, path);
  srl_st_writer_destroy(w);
  if (rc < 0) return srl_error_context(rc, "saving checkpoint %s: ", path);
  return SRL_OK;
}


int srl_offline_save(srl_offline *t, const char *path) {
  if (!t || !path) return srl_error(SRL_EINVAL, "srl_offline_save: t and path needed");
  return ckpt_save(t, path);
}


static int read_u8(const srl_st_file *f, const char *name, void *dst, size_t n) {
  const srl_st_tensor *ts = srl_st_find(f, name);
  if (!ts) return srl_error(SRL_EFORMAT, "no tensor '%s'", name);
  if (ts->dtype != SRL_DTYPE_U8 || ts->nbytes != n)
    return srl_error(SRL_EFORMAT, "tensor '%s' is %s of %zu bytes, expected U8 of %zu", name,
                     srl_st_dtype_name(ts->dtype), ts->nbytes, n);
  memcpy(dst, ts->data, n);
  return SRL_OK;
}


static int check_meta(const srl_st_file *f, const char *key, const char *want) {
  const char *v = srl_st_metadata(f, key);
  if (!v || strcmp(v, want) != 0)
    return srl_error(SRL_EFORMAT, "metadata %s is '%s', the run's is '%s'", key, v ? v : "(none)",
                     want);
  return SRL_OK;
}


static int ckpt_load(srl_offline *t, const srl_st_file *f) {
  SRL_TRY(check_meta(f, "format", SRL_OFFLINE_FORMAT));
  SRL_TRY(check_meta(f, "algo", t->cfg->algo));
  SRL_TRY(check_meta(f, "env", t->cfg->env_id));
  int rc = t->algo->load(t->state, f);
  if (rc < 0) return srl_error_context(rc, "%s load: ", t->algo->name);
  SRL_TRY(read_u8(f, "trainer.rng", t->rng_buf, t->rng_bytes));
  SRL_TRY(srl_rng_state_load(t->rng, t->rng_buf, t->rng_bytes));
  const srl_st_tensor *ts = srl_st_find(f, "trainer.counters");
  if (!ts || ts->dtype != SRL_DTYPE_I64 || srl_st_numel(ts) != 2)
    return srl_error(SRL_EFORMAT, "tensor 'trainer.counters' missing or not I64[2]");
  int64_t counters[2];
  memcpy(counters, ts->data, sizeof counters);
  if (counters[0] < 0 || counters[0] > t->steps || counters[1] < 0)
    return srl_error(SRL_EFORMAT, "trainer.counters (%lld, %lld) do not fit a run of %lld steps",
                     (long long)counters[0], (long long)counters[1], t->steps);
  ckpt_acc acc;
  SRL_TRY(read_u8(f, "trainer.acc", &acc, sizeof acc));
  if (!(acc.n_stats >= 0 && acc.n_stats <= SRL_OFFLINE_STATS_MAX && acc.acc_n >= 0))
    return srl_error(SRL_EFORMAT, "trainer.acc holds %g statistics", acc.n_stats);
  memcpy(t->acc, acc.acc, sizeof t->acc);
  t->acc_n = (long long)acc.acc_n;
  t->step = t->step_row = counters[0];
  t->rows = counters[1];
  const char *wall = srl_st_metadata(f, "wall_s");
  t->wall_base = wall ? atof(wall) : 0.0;
  return SRL_OK;
}


// save checkpoints/step-<step>.safetensors and log it
static int save_step_checkpoint(srl_offline *t) {
  char rel[64], path[PATH_MAX];
  snprintf(rel, sizeof rel, "checkpoints/step-%lld.safetensors", t->step);
  SRL_TRY(srl_run_dir_join(path, sizeof path, t->run_dir, rel));
  SRL_TRY(ckpt_save(t, path));
  snprintf(t->last_ckpt, sizeof t->last_ckpt, "%s", rel);
  FILE *f = event_begin(t, "checkpoint");
  if (f) {
    event_str(f, "path", rel);
    srl_log_event_end(f);
  }
  return SRL_OK;
}


//---- creating and resuming -----------------------------------------------------------------------

static int make_run_dir(srl_offline *t, const srl_offline_options *opt) {
  if (opt && opt->run_dir) {
    SRL_TRY(srl_run_dir_claim(opt->run_dir));
    if (snprintf(t->run_dir, sizeof t->run_dir, "%s", opt->run_dir) >= (int)sizeof t->run_dir)
      return srl_error(SRL_EINVAL, "path too long: %s", opt->run_dir);
    return SRL_OK;
  }
  const char *base = opt && opt->out_dir ? opt->out_dir : t->cfg->log_dir;
  return srl_run_dir_create(t->run_dir, sizeof t->run_dir, base, t->cfg->algo, t->cfg->env_id,
                            t->cfg->seed);
}


int srl_offline_create(srl_offline **out, const srl_offline_config *cfg,
                       const srl_offline_options *opt) {
  if (!out || !cfg) return srl_error(SRL_EINVAL, "srl_offline_create: out and cfg needed");
  *out = NULL;
  srl_offline *t = trainer_alloc(cfg, opt);
  if (!t) return SRL_ENOMEM;
  int rc = build(t);
  if (rc == 0) rc = make_run_dir(t, opt);
  char path[PATH_MAX];
  if (rc == 0) rc = srl_run_dir_join(path, sizeof path, t->run_dir, "config.yaml");
  if (rc == 0) rc = config_save(t->cfg, path);
  if (rc == 0) rc = open_logs(t, 1);
  if (rc < 0) {
    srl_offline_destroy(t);
    return rc;
  }
  FILE *f = event_begin(t, "start");
  if (f) {
    event_run_fields(t, f);
    event_str(f, "run_dir", t->run_dir);
    srl_log_event_end(f);
  }
  *out = t;
  return SRL_OK;
}


// What a run learns from: a resumed run keeps these keys ("task." covers the section).
static const char *const RESUME_FIXED[] = {"algo", "env_id",  "env_options", "dataset",
                                           "seed", "log_dir", "task."};

static int check_resume_sets(const char *const *sets, int n_sets) {
  for (int i = 0; i < n_sets; i++) {
    const char *eq = strchr(sets[i], '=');
    size_t n = eq ? (size_t)(eq - sets[i]) : strlen(sets[i]);
    for (size_t k = 0; k < sizeof RESUME_FIXED / sizeof *RESUME_FIXED; k++) {
      const char *f = RESUME_FIXED[k];
      size_t m = strlen(f);
      int section = f[m - 1] == '.';
      if (section ? n > m && !strncmp(sets[i], f, m) : n == m && !strncmp(sets[i], f, m))
        return srl_error(SRL_ECONFIG,
                         "--set %.*s: a resumed run keeps its %s; start a new run to change it",
                         (int)n, sets[i], section ? "task section" : f);
    }
  }
  return SRL_OK;
}


// A finished run continues from final.safetensors, which holds the whole training state: it
// becomes checkpoints/step-<N> and summary.json goes, so the directory reads as a run in progress
// (and a crash from here on resumes like any other).
static int reopen_finished(srl_offline *t, const char *final_path) {
  char ckdir[PATH_MAX], name[64], path[PATH_MAX];
  SRL_TRY(srl_run_dir_join(ckdir, sizeof ckdir, t->run_dir, "checkpoints"));
  SRL_TRY(srl_run_dir_mkdirs(ckdir));
  snprintf(name, sizeof name, "step-%lld.safetensors", t->step);
  SRL_TRY(srl_run_dir_join(path, sizeof path, ckdir, name));
  if (rename(final_path, path) != 0)
    return srl_error(SRL_EIO, "cannot move %s to %s: %s", final_path, path, strerror(errno));
  SRL_TRY(srl_run_dir_join(path, sizeof path, t->run_dir, "summary.json"));
  if (unlink(path) != 0 && errno != ENOENT)
    return srl_error(SRL_EIO, "cannot remove %s: %s", path, strerror(errno));
  snprintf(t->last_ckpt, sizeof t->last_ckpt, "checkpoints/%s", name);
  return SRL_OK;
}


int srl_offline_resume(srl_offline **out, const char *run_dir, const char *const *sets, int n_sets,
                       const srl_offline_options *opt) {
  if (!out || !run_dir || n_sets < 0 || (n_sets && !sets))
    return srl_error(SRL_EINVAL, "srl_offline_resume: bad arguments");
  *out = NULL;
  SRL_TRY(check_resume_sets(sets, n_sets));
  char cfg_path[PATH_MAX], ckpt[PATH_MAX], ckdir[PATH_MAX], final_path[PATH_MAX];
  SRL_TRY(srl_run_dir_join(cfg_path, sizeof cfg_path, run_dir, "config.yaml"));
  SRL_TRY(srl_run_dir_join(ckdir, sizeof ckdir, run_dir, "checkpoints"));
  SRL_TRY(srl_run_dir_join(final_path, sizeof final_path, run_dir, "final.safetensors"));
  int finished = access(final_path, F_OK) == 0;
  long long step = 0;
  if (finished) {
    snprintf(ckpt, sizeof ckpt, "%s", final_path);
  } else {
    int rc = srl_offline_find_checkpoint(ckpt, sizeof ckpt, ckdir, 0, &step);
    if (rc < 0) return srl_error(rc, "no checkpoint to resume from in %s/checkpoints", run_dir);
  }

  srl_offline *t = trainer_alloc(NULL, opt);
  if (!t) return SRL_ENOMEM;
  snprintf(t->run_dir, sizeof t->run_dir, "%s", run_dir);
  srl_st_file *f = NULL;
  int rc = srl_offline_config_load(t->cfg, cfg_path, sets, n_sets);
  if (rc == 0) rc = build(t);
  if (rc == 0) rc = srl_st_open(&f, ckpt);
  if (rc == 0) rc = ckpt_load(t, f);
  if (rc < 0 && f) srl_error_context(rc, "checkpoint %s: ", ckpt);
  srl_st_close(f);
  if (rc == 0 && finished && t->step >= t->steps)
    rc = srl_error(SRL_ESTATE,
                   "the run in %s has finished its %lld updates; --set train.steps=N with N > %lld "
                   "continues it",
                   run_dir, t->step, t->step);
  if (rc == 0 && t->step > INT_MAX) rc = srl_error(SRL_ERANGE, "step %lld too large", t->step);
  if (rc == 0 && finished) rc = reopen_finished(t, final_path);
  if (rc == 0 && n_sets) rc = config_save(t->cfg, cfg_path);
  if (rc == 0) rc = srl_run_dir_truncate_progress(run_dir, (int)t->step);
  if (rc == 0) rc = open_logs(t, 0);
  if (rc < 0) {
    srl_offline_destroy(t);
    return srl_error_context(rc, "resuming %s: ", run_dir);
  }
  if (!finished) {
    const char *rel = strstr(ckpt, "checkpoints/");
    snprintf(t->last_ckpt, sizeof t->last_ckpt, "%s", rel ? rel : ckpt);
  }
  FILE *ev = event_begin(t, "resume");
  if (ev) {
    event_run_fields(t, ev);
    event_str(ev, "checkpoint", t->last_ckpt);
    fputs(", \"sets\": [", ev);
    for (int i = 0; i < n_sets; i++) {
      if (i) fputs(", ", ev);
      srl_log_json_string(ev, sets[i]);
    }
    fputc(']', ev);
    srl_log_event_end(ev);
  }
  *out = t;
  return SRL_OK;
}


//---- statistics and progress rows ----------------------------------------------------------------

// add an update's statistics to the sums (names fixed by the first update; later ones by name)
static void accumulate(srl_offline *t, const srl_offline_stats *st) {
  t->last_st = *st;
  int n = st->n < 0 ? 0 : st->n > SRL_OFFLINE_STATS_MAX ? SRL_OFFLINE_STATS_MAX : st->n;
  if (!t->n_stats && n) {
    t->n_stats = n;
    for (int i = 0; i < n; i++) t->stat_names[i] = st->name[i] ? st->name[i] : "stat";
  }
  for (int i = 0; i < n; i++) {
    int k = i < t->n_stats && st->name[i] == t->stat_names[i] ? i : -1;
    for (int j = 0; k < 0 && j < t->n_stats; j++)
      if (st->name[i] && !strcmp(st->name[i], t->stat_names[j])) k = j;
    if (k >= 0) t->acc[k] += st->value[i];
  }
  t->acc_n++;
}


static void write_header(srl_offline *t) {
  fputs(CSV_HEADER, t->csv);
  for (int i = 0; i < t->n_stats; i++) fprintf(t->csv, ",%s", t->stat_names[i]);
  fputc('\n', t->csv);
  t->header_written = 1;
}


static void write_row(srl_offline *t) {
  FILE *f = t->csv;
  if (!f) return;
  if (!t->header_written) write_header(t);
  const srl_offline_eval_result *r = t->eval_pending ? &t->eval : NULL;
  double now = now_s(), dt = now - t->t_row;
  t->ups_row = dt > 0 ? (double)(t->step - t->step_row) / dt : NAN;
  double ev[8] = {r ? r->ret_mean : NAN,       r ? r->cost_mean : NAN,
                  r ? r->len_mean : NAN,       r ? r->norm_ret_mean : NAN,
                  r ? r->norm_cost_mean : NAN, r ? r->ret_std : NAN,
                  r ? r->cost_std : NAN,       t->ups_row};
  fprintf(f, "%lld", t->step);
  for (int k = 0; k < 8; k++) {
    fputc(',', f);
    srl_log_csv_number(f, ev[k]);
  }
  fprintf(f, ",%.3f", wall_now(t));
  for (int i = 0; i < t->n_stats; i++) {
    fputc(',', f);
    srl_log_csv_number(f, t->acc_n ? t->acc[i] / (double)t->acc_n : NAN);
  }
  fputc('\n', f);
  fflush(f);
  memset(t->acc, 0, sizeof t->acc);
  t->acc_n = 0;
  t->eval_pending = 0;
  t->rows++;
  t->t_row = now;
  t->step_row = t->step;
}


// the live line on a terminal; elsewhere one line per evaluation (final) only
static void draw_progress(srl_offline *t, int final) {
  if (t->quiet || (!t->tty && !final)) return;
  double now = now_s();
  if (t->tty && !final && now - t->last_draw < DRAW_EVERY_S) return;
  t->last_draw = now;
  double dt = now - t->t_row;
  double ups = dt > 0 && t->step > t->step_row ? (double)(t->step - t->step_row) / dt : t->ups_row;
  if (!isfinite(ups)) ups = 0.0;
  char eta[32], ev[160] = "";
  srl_log_duration(eta, sizeof eta, ups > 0 ? (double)(t->steps - t->step) / ups : NAN);
  if (t->has_eval)
    snprintf(ev, sizeof ev, " | %s@%lld ret %.2f cost %.2f (normalized %.3f / %.3f)",
             t->eval_final ? "final eval" : "eval", t->eval_step, t->eval.ret_mean,
             t->eval.cost_mean, t->eval.norm_ret_mean, t->eval.norm_cost_mean);
  char line[400];
  snprintf(line, sizeof line, "%s %s s%d | step %lld/%lld | %.0f updates/s | ETA %s%s",
           t->cfg->algo, t->cfg->env_id, t->cfg->seed, t->step, t->steps, ups, eta, ev);
  srl_log_progress_emit(line, t->tty);
}


//---- evaluation during training ------------------------------------------------------------------

int srl_offline_eval_now(srl_offline *t, int episodes, srl_offline_eval_result *res,
                         srl_offline_episode *eps) {
  if (!t || !res) return srl_error(SRL_EINVAL, "srl_offline_eval_now: t and res needed");
  const srl_offline_config *c = t->cfg;
  int n = episodes > 0 ? episodes : c->eval.episodes;
  if (n < 1) return srl_error(SRL_EINVAL, "evaluation: no episodes asked for");
  int e = eval_envs(c, n);
  if (e > t->max_act) e = t->max_act;
  srl_offline_eval_options o = {.env_id = c->env_id,
                                .env_options = c->env_options,
                                .episodes = n,
                                .num_envs = e,
                                .num_threads = c->threads,
                                .episode_len = c->task.episode_len,
                                .cost_limit = c->task.cost_limit,
                                .seed = (uint64_t)c->eval.seed,
                                .score_task = c->eval.score_task};
  return srl_offline_evaluate(t->algo, t->state, &o, res, eps);
}


static int evaluate(srl_offline *t, int episodes, int final) {
  double t0 = now_s();
  srl_offline_eval_result r;
  int rc = srl_offline_eval_now(t, episodes, &r, NULL);
  if (rc < 0) return srl_error_context(rc, "evaluation at step %lld: ", t->step);
  t->eval = r;
  t->has_eval = t->eval_pending = 1;
  t->eval_final = final;
  t->eval_step = t->step;
  t->t_row += now_s() - t0;  // updates per second leave the evaluation out
  event_eval(t, &r, final);
  return SRL_OK;
}


//---- interruption and NaN stop -------------------------------------------------------------------

int srl_offline_handle_signals(void) {
  return srl_interrupt_install();
}


void srl_offline_request_stop(srl_offline *t) {
  if (t) t->stop = 1;
}


static int stop_requested(const srl_offline *t) {
  return t->stop || srl_interrupt_signal();
}


static int interrupted(srl_offline *t) {
  t->stopped = 1;
  SRL_TRY(save_step_checkpoint(t));
  FILE *f = event_begin(t, "interrupted");
  if (f) {
    fprintf(f, ", \"signal\": %d", srl_interrupt_signal());
    event_str(f, "checkpoint", t->last_ckpt);
    srl_log_event_end(f);
  }
  char msg[256];
  snprintf(msg, sizeof msg, "interrupted after update %lld of %lld", t->step, t->steps);
  write_summary(t, "interrupted", msg, t->last_ckpt);
  return srl_error(SRL_EINTERRUPTED,
                   "%s; the state is saved in %s/%s (continue with 'saferl offline train "
                   "--resume %s')",
                   msg, t->run_dir, t->last_ckpt, t->run_dir);
}


static int nan_stop(srl_offline *t) {
  t->stopped = 1;
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", srl_errmsg());
  FILE *f = event_begin(t, "nan_stop");
  if (f) {
    event_str(f, "message", msg);
    if (t->last_ckpt[0])
      event_str(f, "checkpoint", t->last_ckpt);
    else
      fputs(", \"checkpoint\": null", f);
    srl_log_event_end(f);
  }
  write_summary(t, "nan_stop", msg, t->last_ckpt);
  if (!t->last_ckpt[0])
    return srl_error(SRL_ENONFINITE, "training stopped at update %lld: %s; no checkpoint was saved",
                     t->step + 1, msg);
  return srl_error(SRL_ENONFINITE,
                   "training stopped at update %lld: %s; the last good checkpoint is %s/%s",
                   t->step + 1, msg, t->run_dir, t->last_ckpt);
}


//---- the update loop -----------------------------------------------------------------------------

int srl_offline_run(srl_offline *t, long long steps) {
  if (!t) return srl_error(SRL_EINVAL, "srl_offline_run: t is NULL");
  if (t->stopped) return srl_error(SRL_ESTATE, "the run in %s has stopped", t->run_dir);
  if (t->step >= t->steps)
    return srl_error(SRL_ESTATE, "the run in %s has done all %lld updates", t->run_dir, t->steps);
  const srl_offline_config *c = t->cfg;
  long long end = steps < t->steps - t->step ? t->step + steps : t->steps;
  while (t->step < end) {
    if (stop_requested(t)) return interrupted(t);
    srl_offline_sample(t, NULL);
    srl_offline_stats st;
    memset(&st, 0, sizeof st);
    int rc = t->algo->update(t->state, &t->batch, &st);
    if (rc == SRL_ENONFINITE) return nan_stop(t);
    if (rc < 0) return srl_error_context(rc, "update %lld: ", t->step + 1);
    for (int i = 0; i < st.n && i < SRL_OFFLINE_STATS_MAX; i++)
      if (!isfinite(st.value[i])) {
        srl_error(SRL_ENONFINITE, "%s is %g", st.name[i] ? st.name[i] : "a statistic", st.value[i]);
        return nan_stop(t);
      }
    t->step++;
    accumulate(t, &st);

    int eval_now = c->train.eval_every > 0 && t->step % c->train.eval_every == 0;
    if (eval_now) {
      rc = evaluate(t, c->train.eval_episodes, 0);
      if (rc == SRL_ENONFINITE) return nan_stop(t);
      SRL_TRY(rc);
    }
    if (t->step % c->train.log_every == 0 || eval_now || t->step == t->steps) write_row(t);
    if (t->step % c->train.save_every == 0 && t->step < t->steps) SRL_TRY(save_step_checkpoint(t));
    draw_progress(t, eval_now);
  }
  return SRL_OK;
}


int srl_offline_done(const srl_offline *t) {
  return t->step >= t->steps;
}


int srl_offline_finish(srl_offline *t) {
  if (!t) return srl_error(SRL_EINVAL, "srl_offline_finish: t is NULL");
  if (t->step < t->steps)
    return srl_error(SRL_ESTATE, "finish: %lld of %lld updates done", t->step, t->steps);
  char path[PATH_MAX];
  SRL_TRY(srl_run_dir_join(path, sizeof path, t->run_dir, "final.safetensors"));
  SRL_TRY(ckpt_save(t, path));
  snprintf(t->last_ckpt, sizeof t->last_ckpt, "final.safetensors");
  if (t->cfg->eval.episodes > 0) {
    int rc = evaluate(t, t->cfg->eval.episodes, 1);
    if (rc == SRL_ENONFINITE) return nan_stop(t);
    SRL_TRY(rc);
    draw_progress(t, 1);
  }
  FILE *f = event_begin(t, "finish");
  if (f) {
    event_num(f, "wall_s", wall_now(t));
    event_num(f, "ep_ret", t->has_eval ? t->eval.ret_mean : NAN);
    event_num(f, "ep_cost", t->has_eval ? t->eval.cost_mean : NAN);
    event_num(f, "norm_ret", t->has_eval ? t->eval.norm_ret_mean : NAN);
    event_num(f, "norm_cost", t->has_eval ? t->eval.norm_cost_mean : NAN);
    event_str(f, "checkpoint", "final.safetensors");
    srl_log_event_end(f);
  }
  if (t->tty && t->last_draw > 0) {
    fputc('\n', stderr);
    t->last_draw = 0;
  }
  return write_summary(t, "finished", "", "final.safetensors");
}


int srl_offline_train(srl_offline *t) {
  if (!t) return srl_error(SRL_EINVAL, "srl_offline_train: t is NULL");
  int rc = srl_offline_done(t) ? SRL_OK : srl_offline_run(t, t->steps);
  if (rc == 0) rc = srl_offline_finish(t);
  if (rc < 0 && rc != SRL_EINTERRUPTED && rc != SRL_ENONFINITE) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", srl_errmsg());
    if (t->events) srl_log_event_error(t->events, msg);
    write_summary(t, "error", msg, t->last_ckpt);
    srl_error(rc, "%s", msg);
  }
  return rc;
}


//---- accessors -----------------------------------------------------------------------------------

const char *srl_offline_run_dir(const srl_offline *t) {
  return t->run_dir;
}
const srl_offline_config *srl_offline_get_config(const srl_offline *t) {
  return t->cfg;
}
const srl_offline_algo *srl_offline_get_algo(const srl_offline *t) {
  return t->algo;
}
void *srl_offline_algo_state(srl_offline *t) {
  return t->state;
}
long long srl_offline_step(const srl_offline *t) {
  return t->step;
}
const srl_offline_stats *srl_offline_last_stats(const srl_offline *t) {
  return &t->last_st;
}
const srl_offline_eval_result *srl_offline_last_eval(const srl_offline *t) {
  return t->has_eval ? &t->eval : NULL;
}
const srl_dataset *srl_offline_dataset(const srl_offline *t) {
  return t->data;
}


//---- trained policies ----------------------------------------------------------------------------

void srl_offline_policy_destroy(srl_offline_policy *p) {
  if (!p) return;
  if (p->algo && p->state) p->algo->destroy(p->state);
  srl_offline_config_destroy(p->cfg);
  srl_free(p);
}


// Only the algorithm's own section may change under a trained policy: the rest says what it
// learnt from, or has an option of its own in `saferl offline eval`.
static int check_policy_sets(const srl_offline_algo *algo, const char *const *sets, int n_sets) {
  size_t m = strlen(algo->section);
  for (int i = 0; i < n_sets; i++)
    if (strncmp(sets[i], algo->section, m) != 0 || sets[i][m] != '.') {
      const char *eq = strchr(sets[i], '=');
      return srl_error(SRL_ECONFIG, "--set %.*s: a trained %s policy takes only %s.* keys",
                       eq ? (int)(eq - sets[i]) : (int)strlen(sets[i]), sets[i], algo->name,
                       algo->section);
    }
  return SRL_OK;
}


static int policy_build(srl_offline_policy *p, const srl_st_file *f, const char *device,
                        const char *const *sets, int n_sets) {
  SRL_TRY(meta_config(p->cfg, f, p->path));
  srl_offline_config *c = p->cfg;
  if (device) {
    if (strlen(device) >= sizeof c->device)
      return srl_error(SRL_EINVAL, "unknown device '%s'", device);
    snprintf(c->device, sizeof c->device, "%s", device);
  }
  p->algo = srl_offline_algo_find(c->algo);
  if (!p->algo) return unknown_algo(c->algo);
  if (n_sets > 0) {
    SRL_TRY(check_policy_sets(p->algo, sets, n_sets));
    SRL_TRY(srl_offline_config_load(c, NULL, sets, n_sets));
  }
  const srl_ops *ops;
  SRL_TRY(srl_ops_get(&ops, c->device));
  // the run's thread count: with another, OpenBLAS sums in another order, and an evaluation
  // would not repeat the trainer's (FISOR's candidate choice turns ulps into other episodes)
  if (ops->device == SRL_DEVICE_CPU) srl_ops_cpu_set_threads(c->threads);
  env_probe env;
  SRL_TRY(probe_env(&env, c->env_id, c->env_options));
  srl_free(env.low);
  p->obs_dim = env.obs_dim;
  p->act_dim = env.act_dim;
  int len = c->task.episode_len > 0 ? c->task.episode_len : env.max_steps;
  srl_offline_setup su = make_setup(c, ops, p->obs_dim, p->act_dim, len, p->max_batch);
  int rc = p->algo->create(&p->state, &su, srl_offline_config_params(c, p->algo));
  if (rc < 0) {
    p->state = NULL;
    return srl_error_context(rc, "%s: ", p->algo->name);
  }
  rc = p->algo->load(p->state, f);
  if (rc < 0) return srl_error_context(rc, "%s load: ", p->algo->name);
  const char *step = srl_st_metadata(f, "step");
  p->step = step ? atoll(step) : -1;
  return SRL_OK;
}


int srl_offline_policy_load(srl_offline_policy **out, const char *path, const char *device,
                            int max_batch, const char *const *sets, int n_sets) {
  if (!out || !path) return srl_error(SRL_EINVAL, "srl_offline_policy_load: out and path needed");
  *out = NULL;
  if (max_batch < 1)
    return srl_error(SRL_EINVAL, "srl_offline_policy_load: max_batch %d", max_batch);
  char file[PATH_MAX];
  long long step;
  SRL_TRY(srl_offline_find_checkpoint(file, sizeof file, path, 1, &step));
  srl_offline_policy *p = srl_calloc(sizeof *p);
  if (!p) return SRL_ENOMEM;
  p->max_batch = max_batch;
  snprintf(p->path, sizeof p->path, "%s", file);
  int rc = srl_offline_config_create(&p->cfg);
  srl_st_file *f = NULL;
  if (rc == 0) rc = srl_st_open(&f, file);
  if (rc == 0) rc = policy_build(p, f, device, sets, n_sets);
  srl_st_close(f);
  if (rc < 0) {
    srl_offline_policy_destroy(p);
    return srl_error_context(rc, "loading the policy of %s: ", file);
  }
  *out = p;
  return SRL_OK;
}


int srl_offline_policy_act(srl_offline_policy *p, float *act, const float *obs, int n,
                           srl_rng *rng) {
  if (!p || !act || !obs) return srl_error(SRL_EINVAL, "srl_offline_policy_act: arguments");
  if (n < 1 || n > p->max_batch)
    return srl_error(SRL_EINVAL, "policy: %d rows (at most %d)", n, p->max_batch);
  return p->algo->act(p->state, act, obs, n, rng);
}

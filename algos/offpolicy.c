// offpolicy.c: the off-policy trainer (SAC-Lag, SAC): config, rollouts into the replay buffer,
// gradient steps, λ, run directory, checkpoints and resume, and loading trained SAC policies.
#include "algos/offpolicy.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include "core/alloc.h"
#include "core/buffer.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/normalize.h"
#include "core/safetensors.h"
#include "envs/vec_env.h"

#define PATH_CAP 1024
#define SRL_OFFPOLICY_FORMAT "saferl.offpolicy.1"  // checkpoint metadata "format"

//---- configuration ------------------------------------------------------------------------------

typedef srl_offpolicy_config cfg_t;

// clang-format off
static const srl_cfg_field cfg_fields[] = {
  SRL_CFG_CHOICE(cfg_t, algo, "algo", "SACLag", "SACLag|SAC", "off-policy algorithm"),
  SRL_CFG_STRING(cfg_t, env_id, "env_id", "SafetyPointGoal1", "environment id (saferl envs)"),
  SRL_CFG_INT(cfg_t, seed, "seed", "0", 0, INT_MAX, "random seed"),
  SRL_CFG_CHOICE(cfg_t, train_cfgs.device, "train_cfgs.device", "cpu", "cpu|cuda",
                 "where the networks run"),
  SRL_CFG_INT(cfg_t, train_cfgs.total_steps, "train_cfgs.total_steps", "1000000", 1, INT_MAX,
              "env steps to train for"),
  SRL_CFG_INT(cfg_t, train_cfgs.vector_env_nums, "train_cfgs.vector_env_nums", "1", 1, 4096,
              "environments stepped together"),
  SRL_CFG_INT(cfg_t, train_cfgs.threads, "train_cfgs.threads", "1", 1, 1024,
              "vector-env worker threads"),
  SRL_CFG_INT(cfg_t, train_cfgs.torch_threads, "train_cfgs.torch_threads", "1", 1, 1024,
              "BLAS threads of the CPU networks"),
  SRL_CFG_INT(cfg_t, train_cfgs.eval_episodes, "train_cfgs.eval_episodes", "1", 0, 1000,
              "deterministic test episodes after each epoch"),
  SRL_CFG_INT(cfg_t, algo_cfgs.steps_per_epoch, "algo_cfgs.steps_per_epoch", "2000", 1, INT_MAX,
              "env steps per epoch (one progress row)"),
  SRL_CFG_INT(cfg_t, algo_cfgs.update_cycle, "algo_cfgs.update_cycle", "1", 1, INT_MAX,
              "vector steps between updates"),
  SRL_CFG_INT(cfg_t, algo_cfgs.update_iters, "algo_cfgs.update_iters", "1", 1, 1 << 20,
              "gradient steps per update"),
  SRL_CFG_INT(cfg_t, algo_cfgs.size, "algo_cfgs.size", "1000000", 1, INT_MAX,
              "replay buffer capacity"),
  SRL_CFG_INT(cfg_t, algo_cfgs.batch_size, "algo_cfgs.batch_size", "256", 1, 1 << 20,
              "transitions per gradient step"),
  SRL_CFG_BOOL(cfg_t, algo_cfgs.reward_normalize, "algo_cfgs.reward_normalize", "false",
               "normalise rewards by running statistics"),
  SRL_CFG_BOOL(cfg_t, algo_cfgs.cost_normalize, "algo_cfgs.cost_normalize", "true",
               "normalise costs by running statistics"),
  SRL_CFG_BOOL(cfg_t, algo_cfgs.obs_normalize, "algo_cfgs.obs_normalize", "false",
               "normalise observations by running statistics"),
  SRL_CFG_FLOAT(cfg_t, algo_cfgs.max_grad_norm, "algo_cfgs.max_grad_norm", "40", 0, 1e30,
                "global gradient-norm clip of each network (0: none)"),
  SRL_CFG_BOOL(cfg_t, algo_cfgs.use_critic_norm, "algo_cfgs.use_critic_norm", "false",
               "add critic_norm_coeff·Σθ² to the critic losses"),
  SRL_CFG_FLOAT(cfg_t, algo_cfgs.critic_norm_coeff, "algo_cfgs.critic_norm_coeff", "0.001", 0,
                1e6, "critic L2 coefficient"),
  SRL_CFG_FLOAT(cfg_t, algo_cfgs.polyak, "algo_cfgs.polyak", "0.005", 0, 1,
                "target networks: θ' ← polyak·θ + (1 − polyak)·θ'"),
  SRL_CFG_FLOAT(cfg_t, algo_cfgs.gamma, "algo_cfgs.gamma", "0.99", 0, 1, "discount"),
  SRL_CFG_INT(cfg_t, algo_cfgs.start_learning_steps, "algo_cfgs.start_learning_steps", "10000", 0,
              INT_MAX, "uniform random actions and no updates until this step"),
  SRL_CFG_INT(cfg_t, algo_cfgs.policy_delay, "algo_cfgs.policy_delay", "2", 1, 1 << 20,
              "critic steps per actor step"),
  SRL_CFG_FLOAT(cfg_t, algo_cfgs.alpha, "algo_cfgs.alpha", "0.2", 1e-12, 1e6,
                "entropy temperature (initial value when auto_alpha)"),
  SRL_CFG_BOOL(cfg_t, algo_cfgs.auto_alpha, "algo_cfgs.auto_alpha", "false",
               "learn the temperature towards entropy −act_dim"),
  SRL_CFG_BOOL(cfg_t, algo_cfgs.use_cost, "algo_cfgs.use_cost", "true",
               "learn the cost critic and use it in the actor loss"),
  SRL_CFG_INT(cfg_t, algo_cfgs.warmup_epochs, "algo_cfgs.warmup_epochs", "100", -1, INT_MAX,
              "epochs before λ starts to move"),
  SRL_CFG_INT(cfg_t, logger_cfgs.save_model_freq, "logger_cfgs.save_model_freq", "100", 1,
              INT_MAX, "epochs between checkpoints"),
  SRL_CFG_INT(cfg_t, logger_cfgs.window_lens, "logger_cfgs.window_lens", "10", 1, 1 << 20,
              "episodes in the ep_* means and Jc"),
  SRL_CFG_STRING(cfg_t, logger_cfgs.log_dir, "logger_cfgs.log_dir", "runs",
                 "where run directories go"),
  SRL_CFG_INT_LIST(cfg_t, model_cfgs.actor.hidden_sizes, model_cfgs.actor.n_hidden_sizes,
                   "model_cfgs.actor.hidden_sizes", "[256, 256]", 1, 65536, "actor widths"),
  SRL_CFG_STRING(cfg_t, model_cfgs.actor.activation, "model_cfgs.actor.activation", "relu",
                 "actor hidden activation"),
  SRL_CFG_FLOAT(cfg_t, model_cfgs.actor.lr, "model_cfgs.actor.lr", "0.0003", 0, 10,
                "actor learning rate"),
  SRL_CFG_INT_LIST(cfg_t, model_cfgs.critic.hidden_sizes, model_cfgs.critic.n_hidden_sizes,
                   "model_cfgs.critic.hidden_sizes", "[256, 256]", 1, 65536, "critic widths"),
  SRL_CFG_STRING(cfg_t, model_cfgs.critic.activation, "model_cfgs.critic.activation", "relu",
                 "critic hidden activation"),
  SRL_CFG_FLOAT(cfg_t, model_cfgs.critic.lr, "model_cfgs.critic.lr", "0.0003", 0, 10,
                "critic (and temperature) learning rate"),
  SRL_CFG_FLOAT(cfg_t, lagrange_cfgs.cost_limit, "lagrange_cfgs.cost_limit", "25", -1e30, 1e30,
                "episode-cost limit"),
  SRL_CFG_FLOAT(cfg_t, lagrange_cfgs.lagrangian_multiplier_init,
                "lagrange_cfgs.lagrangian_multiplier_init", "0.001", 0, 1e30, "initial λ"),
  SRL_CFG_FLOAT(cfg_t, lagrange_cfgs.lambda_lr, "lagrange_cfgs.lambda_lr", "0.00001", 1e-30, 1e6,
                "Adam learning rate of λ"),
  SRL_CFG_FLOAT(cfg_t, lagrange_cfgs.lagrangian_upper_bound, "lagrange_cfgs.lagrangian_upper_bound",
                "0", 0, 1e30, "largest λ (0: none)"),
  SRL_CFG_STRING(cfg_t, env_cfgs.options, "env_cfgs.options", "",
                 "the environment's own options as YAML text"),
};
// clang-format on
static const srl_cfg_schema schema = SRL_CFG_SCHEMA("off-policy", cfg_fields);

const srl_cfg_schema *srl_offpolicy_schema(void) {
  return &schema;
}


int srl_offpolicy_is_algo(const char *algo) {
  return algo && (strcmp(algo, "SACLag") == 0 || strcmp(algo, "SAC") == 0);
}


// each algorithm's own defaults over the schema's (OmniSafe's SAC.yaml: no cost critic)
static const char *algo_defaults(const char *algo) {
  if (algo && strcmp(algo, "SAC") == 0) return "algo: SAC\nalgo_cfgs: {use_cost: false}\n";
  return NULL;
}


int srl_offpolicy_config_defaults(srl_offpolicy_config *cfg, const char *algo) {
  if (algo && !srl_offpolicy_is_algo(algo))
    return srl_error(SRL_ECONFIG, "unknown off-policy algorithm '%s' (SACLag, SAC)", algo);
  srl_offpolicy_config c;
  SRL_TRY(srl_config_defaults(&schema, &c));
  const char *d = algo_defaults(algo);
  if (d) SRL_TRY(srl_config_load_string(&schema, &c, d, "algorithm defaults"));
  *cfg = c;
  return SRL_OK;
}


// the value of a top-level `algo:` key in a YAML file ("" when absent)
static int yaml_top_algo(const char *path, char *algo, size_t cap) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return srl_error(errno == ENOENT ? SRL_ENOTFOUND : SRL_EIO, "%s: cannot open (%s)", path,
                     strerror(errno));
  yaml_parser_t p;
  yaml_event_t ev;
  if (!yaml_parser_initialize(&p)) {
    fclose(f);
    return SRL_ENOMEM;
  }
  yaml_parser_set_input_file(&p, f);
  int depth = 0, rc = SRL_OK, expect_value = 0, is_key = 1;
  algo[0] = 0;
  for (;;) {
    if (!yaml_parser_parse(&p, &ev)) {
      rc = srl_error(SRL_ECONFIG, "%s:%zu:%zu: %s", path, p.problem_mark.line + 1,
                     p.problem_mark.column + 1, p.problem ? p.problem : "YAML error");
      break;
    }
    yaml_event_type_t ty = ev.type;
    if (ty == YAML_STREAM_END_EVENT) {
      yaml_event_delete(&ev);
      break;
    }
    if (ty == YAML_MAPPING_START_EVENT || ty == YAML_SEQUENCE_START_EVENT) {
      if (depth == 1) is_key = 1, expect_value = 0;  // a nested value of a top-level key
      depth++;
    } else if (ty == YAML_MAPPING_END_EVENT || ty == YAML_SEQUENCE_END_EVENT) {
      depth--;
    } else if (ty == YAML_ALIAS_EVENT && depth == 1) {
      is_key = !is_key;  // an alias as a key or value: keep the key / value alternation
      expect_value = 0;
    } else if (ty == YAML_SCALAR_EVENT && depth == 1) {
      const char *v = (const char *)ev.data.scalar.value;
      if (is_key) {
        expect_value = strcmp(v, "algo") == 0;
        is_key = 0;
      } else {
        if (expect_value) snprintf(algo, cap, "%s", v);
        expect_value = 0;
        is_key = 1;
      }
    }
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&p);
  fclose(f);
  return rc;
}


int srl_offpolicy_peek_algo(const char *path, const char *const *sets, int n_sets, char *algo,
                            size_t cap) {
  if (!algo || cap == 0) return srl_error(SRL_EINVAL, "peek algo: no output buffer");
  algo[0] = 0;
  if (path) SRL_TRY(yaml_top_algo(path, algo, cap));
  for (int i = 0; i < n_sets; i++) {
    const char *s = sets[i];
    while (*s == ' ') s++;
    if (strncmp(s, "algo", 4) != 0) continue;
    const char *e = s + 4;
    while (*e == ' ') e++;
    if (*e != '=') continue;
    e++;
    while (*e == ' ') e++;
    snprintf(algo, cap, "%s", e);
    size_t n = strlen(algo);
    while (n && (algo[n - 1] == ' ' || algo[n - 1] == '"' || algo[n - 1] == '\'')) algo[--n] = 0;
    if (algo[0] == '"' || algo[0] == '\'') memmove(algo, algo + 1, strlen(algo));
  }
  return SRL_OK;
}


int srl_offpolicy_config_load(srl_offpolicy_config *cfg, const char *path, const char *const *sets,
                              int n_sets) {
  char algo[64];
  SRL_TRY(srl_offpolicy_peek_algo(path, sets, n_sets, algo, sizeof algo));
  srl_offpolicy_config c;
  SRL_TRY(srl_offpolicy_config_defaults(&c, srl_offpolicy_is_algo(algo) ? algo : NULL));
  if (path) SRL_TRY(srl_config_load_file(&schema, &c, path));
  for (int i = 0; i < n_sets; i++) SRL_TRY(srl_config_set(&schema, &c, sets[i]));
  *cfg = c;
  return SRL_OK;
}


int srl_offpolicy_config_check(const srl_offpolicy_config *c) {
  int n = c->train_cfgs.vector_env_nums, spe = c->algo_cfgs.steps_per_epoch;
  int cyc = c->algo_cfgs.update_cycle;
  if (spe % n != 0)
    return srl_error(SRL_ECONFIG,
                     "algo_cfgs.steps_per_epoch %d is not a multiple of "
                     "train_cfgs.vector_env_nums %d",
                     spe, n);
  if ((spe / n) % cyc != 0)
    return srl_error(SRL_ECONFIG,
                     "algo_cfgs.steps_per_epoch / vector_env_nums = %d is not a "
                     "multiple of algo_cfgs.update_cycle %d",
                     spe / n, cyc);
  if (c->train_cfgs.total_steps < spe)
    return srl_error(SRL_ECONFIG, "train_cfgs.total_steps %d is less than one epoch (%d steps)",
                     c->train_cfgs.total_steps, spe);
  if (srl_act_from_name(c->model_cfgs.actor.activation) < 0)
    return srl_error(SRL_ECONFIG, "model_cfgs.actor.activation: unknown activation '%s'",
                     c->model_cfgs.actor.activation);
  if (srl_act_from_name(c->model_cfgs.critic.activation) < 0)
    return srl_error(SRL_ECONFIG, "model_cfgs.critic.activation: unknown activation '%s'",
                     c->model_cfgs.critic.activation);
  if (!srl_env_id_known(c->env_id))
    return srl_error(SRL_ECONFIG, "env_id: unknown environment '%s' ('saferl envs' lists them)",
                     c->env_id);
  return SRL_OK;
}


static int config_text(const srl_offpolicy_config *cfg, char **out) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return srl_error(SRL_ENOMEM, "config text: open_memstream failed");
  int rc = srl_config_write(&schema, cfg, f);
  fclose(f);
  if (rc < 0) {
    free(buf);
    return rc;
  }
  *out = buf;
  return SRL_OK;
}


//---- the trainer's state ----------------------------------------------------------------------


struct srl_offpolicy {
  srl_offpolicy_config cfg;
  char run_dir[PATH_CAP];
  FILE *events;       // events.jsonl, open for appending
  char *config_text;  // malloc'd resolved YAML
  int quiet, tty;
  volatile sig_atomic_t stop;

  const srl_ops *ops;
  srl_vec_env *env, *eval_env;
  srl_sac *agent;
  srl_replay rb;
  srl_lagrange lg;
  int has_lagrange;
  srl_normalizer obs_norm, rew_norm, cost_norm;
  srl_rng *rng;  // random actions and replay draws

  int O, A, N;
  int epochs, epoch;  // total, completed
  int cycles;         // update cycles per epoch
  long long total_steps, updates;

  // the last window_lens finished episodes: (return, cost, length) rows, a ring
  double *win;
  int win_n, win_head;

  // host scratch, one block
  float *cur_obs, *next_obs, *store_next;                   // (N, O)
  float *act;                                               // (N, A)
  float *rew, *cost;                                        // (N)
  int *term;                                                // (N)
  float *b_obs, *b_act, *b_rew, *b_cost, *b_next, *b_done;  // (batch, ...)
  float *e_obs, *e_act;                                     // (1, O), (1, A) evaluation
  void *host;

  srl_offpolicy_row row;
  int has_row;
  int stopped;               // interrupted or NaN stop: no more epochs
  long long episodes_total;  // episodes finished over the run
  char last_ckpt[96];        // the latest checkpoint, relative to run_dir ("" before one)
  float *param_host;         // (largest n_params) host copy for the parameter scan (device)
  double last_draw;          // monotonic time of the last progress line
  long long steps_at_start;  // total_steps when this session began (for its steps/s)
  double wall_base;          // wall seconds of earlier sessions (resume)
  double t_start;            // monotonic start of this session
};


static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}


static double wall_s(const srl_offpolicy *t) {
  return t->wall_base + (now_s() - t->t_start);
}


static int stop_requested(const srl_offpolicy *t) {
  return t->stop || srl_interrupt_signal();
}


//---- run directory files ----------------------------------------------------------------------

// append one line to a file of the run directory
static int append_line(const srl_offpolicy *t, const char *name, const char *line) {
  char path[PATH_CAP];
  SRL_TRY(srl_run_dir_join(path, PATH_CAP, t->run_dir, name));
  FILE *f = fopen(path, "a");
  if (!f) return srl_error(SRL_EIO, "cannot open %s: %s", path, strerror(errno));
  int bad = fputs(line, f) < 0 || fputc('\n', f) == EOF;
  bad |= fclose(f) != 0;
  return bad ? srl_error(SRL_EIO, "cannot write %s", path) : SRL_OK;
}


// the run's identity in events.jsonl and summary.json
static srl_log_run log_run(const srl_offpolicy *t) {
  return (srl_log_run){t->cfg.algo, t->cfg.env_id, t->ops->name,
                       t->cfg.seed, t->epochs,     t->cfg.algo_cfgs.steps_per_epoch};
}


// open events.jsonl for appending; a start or resume event with the run's identity
static int open_events(srl_offpolicy *t, const char *name) {
  char path[PATH_CAP];
  SRL_TRY(srl_run_dir_join(path, PATH_CAP, t->run_dir, "events.jsonl"));
  t->events = fopen(path, "a");
  if (!t->events) return srl_error(SRL_EIO, "cannot open %s: %s", path, strerror(errno));
  SRL_TRY(srl_log_event_begin(t->events, name));
  srl_log_run run = log_run(t);
  return srl_log_event_run_fields(t->events, &run);
}


static const char *PROGRESS_HEADER =
    "epoch,total_steps,ep_ret,ep_cost,ep_len,lagrange,loss_pi,loss_vr,loss_vc,kl,entropy,fps,"
    "wall_s,alpha,q_r,q_c,test_ep_ret,test_ep_cost,test_ep_len,episodes,updates";


static int write_progress_row(const srl_offpolicy *t, const srl_offpolicy_row *r) {
  char path[PATH_CAP];
  SRL_TRY(srl_run_dir_join(path, PATH_CAP, t->run_dir, "progress.csv"));
  FILE *f = fopen(path, "a");
  if (!f) return srl_error(SRL_EIO, "cannot open %s: %s", path, strerror(errno));
  fprintf(f, "%d,%lld", r->epoch, r->total_steps);
  double a[] = {r->ep_ret,  r->ep_cost, r->ep_len, r->lagrange, r->loss_pi,
                r->loss_vr, r->loss_vc, NAN,       r->entropy};
  for (size_t i = 0; i < sizeof a / sizeof *a; i++) {
    fputc(',', f);
    srl_log_csv_number(f, a[i]);
  }
  fprintf(f, ",%.1f,%.3f", r->fps, r->wall_s);
  double b[] = {r->alpha, r->q_r, r->q_c, r->test_ret, r->test_cost, r->test_len};
  for (size_t i = 0; i < sizeof b / sizeof *b; i++) {
    fputc(',', f);
    srl_log_csv_number(f, b[i]);
  }
  fprintf(f, ",%d,%lld\n", r->episodes, r->updates);
  int bad = ferror(f);
  bad |= fclose(f) != 0;
  return bad ? srl_error(SRL_EIO, "cannot write %s", path) : SRL_OK;
}


// a fresh run directory <parent>/<algo>-<env>-s<seed>-<time>[-k], or the one the options name
static int make_run_dir(srl_offpolicy *t, const srl_offpolicy_options *opt) {
  if (opt && opt->run_dir) {
    if (snprintf(t->run_dir, sizeof t->run_dir, "%s", opt->run_dir) >= (int)sizeof t->run_dir)
      return srl_error(SRL_EINVAL, "path too long: %s", opt->run_dir);
    SRL_TRY(srl_run_dir_claim(t->run_dir));
  } else {
    const char *parent = opt && opt->out_dir ? opt->out_dir : t->cfg.logger_cfgs.log_dir;
    SRL_TRY(srl_run_dir_create(t->run_dir, sizeof t->run_dir, parent, t->cfg.algo, t->cfg.env_id,
                               t->cfg.seed));
  }
  char path[PATH_CAP];
  SRL_TRY(srl_run_dir_join(path, PATH_CAP, t->run_dir, "config.yaml"));
  SRL_TRY(srl_config_save(&schema, &t->cfg, path));
  SRL_TRY(append_line(t, "progress.csv", PROGRESS_HEADER));
  SRL_TRY(open_events(t, "start"));
  fputs(", \"run_dir\": ", t->events);
  srl_log_json_string(t->events, t->run_dir);
  return srl_log_event_end(t->events);
}


//---- creation -----------------------------------------------------------------------------------

static int net_cfg(int *n, int *hidden, srl_act *act, const srl_offpolicy_net_cfg *c) {
  *n = c->n_hidden_sizes;
  if (*n > 8) return srl_error(SRL_ECONFIG, "at most 8 hidden layers, got %d", *n);
  memcpy(hidden, c->hidden_sizes, sizeof(int) * (size_t)*n);
  int a = srl_act_from_name(c->activation);
  if (a < 0) return srl_error(SRL_ECONFIG, "unknown activation '%s'", c->activation);
  *act = (srl_act)a;
  return SRL_OK;
}


static int sac_config_from(srl_sac_config *sc, const srl_offpolicy_config *c, int obs_dim,
                           int act_dim, int max_batch) {
  *sc = srl_sac_config_default(obs_dim, act_dim, max_batch);
  SRL_TRY(net_cfg(&sc->n_actor_hidden, sc->actor_hidden, &sc->actor_act, &c->model_cfgs.actor));
  SRL_TRY(net_cfg(&sc->n_critic_hidden, sc->critic_hidden, &sc->critic_act, &c->model_cfgs.critic));
  sc->actor_lr = (float)c->model_cfgs.actor.lr;
  sc->critic_lr = (float)c->model_cfgs.critic.lr;
  sc->alpha_lr = sc->critic_lr;  // OmniSafe's alpha optimizer uses the critic lr
  sc->gamma = (float)c->algo_cfgs.gamma;
  sc->polyak = (float)c->algo_cfgs.polyak;
  sc->alpha = (float)c->algo_cfgs.alpha;
  sc->auto_alpha = c->algo_cfgs.auto_alpha;
  sc->max_grad_norm = (float)c->algo_cfgs.max_grad_norm;
  sc->critic_norm_coef = c->algo_cfgs.use_critic_norm ? (float)c->algo_cfgs.critic_norm_coeff : 0;
  sc->policy_delay = c->algo_cfgs.policy_delay;
  sc->use_cost = c->algo_cfgs.use_cost;
  return SRL_OK;
}


// the multiplier of SACLag (none for SAC)
static int lagrange_from(srl_offpolicy *t) {
  t->has_lagrange = strcmp(t->cfg.algo, "SACLag") == 0;
  if (!t->has_lagrange) return SRL_OK;
  srl_lagrange_config lc = srl_lagrange_config_default(SRL_LAGRANGE_ADAM);
  lc.cost_limit = (float)t->cfg.lagrange_cfgs.cost_limit;
  lc.init = (float)t->cfg.lagrange_cfgs.lagrangian_multiplier_init;
  lc.lambda_lr = (float)t->cfg.lagrange_cfgs.lambda_lr;
  lc.upper_bound = (float)t->cfg.lagrange_cfgs.lagrangian_upper_bound;
  return srl_lagrange_init(&t->lg, &lc);
}


static float lambda_now(const srl_offpolicy *t) {
  return t->has_lagrange ? t->lg.lambda : 0.0f;
}


// build everything but the run directory
static int build(srl_offpolicy *t) {
  const srl_offpolicy_config *c = &t->cfg;
  SRL_TRY(srl_offpolicy_config_check(c));
  SRL_TRY(srl_ops_get(&t->ops, c->train_cfgs.device));
  if (t->ops->device == SRL_DEVICE_CPU) srl_ops_cpu_set_threads(c->train_cfgs.torch_threads);
  t->N = c->train_cfgs.vector_env_nums;
  t->epochs = c->train_cfgs.total_steps / c->algo_cfgs.steps_per_epoch;
  t->cycles = c->algo_cfgs.steps_per_epoch / t->N / c->algo_cfgs.update_cycle;

  srl_vec_env_config vc = {
      .num_envs = t->N,
      .num_threads = c->train_cfgs.threads < t->N ? c->train_cfgs.threads : t->N,
      .rescale_action = 1,
      .cost_mode = -1};
  const char *opts = c->env_cfgs.options[0] ? c->env_cfgs.options : NULL;
  SRL_TRY(srl_vec_env_create(&t->env, c->env_id, opts, &vc));
  if (c->train_cfgs.eval_episodes > 0) {
    srl_vec_env_config ec = {.num_envs = 1, .num_threads = 1, .rescale_action = 1, .cost_mode = -1};
    SRL_TRY(srl_vec_env_create(&t->eval_env, c->env_id, opts, &ec));
  }
  t->O = t->env->obs_dim;
  t->A = t->env->act_dim;
  int O = t->O, A = t->A, N = t->N, Bt = c->algo_cfgs.batch_size;

  srl_sac_config sc;
  SRL_TRY(sac_config_from(&sc, c, O, A, Bt > N ? Bt : N));
  srl_rng *init;
  SRL_TRY(srl_rng_create(&init, (uint64_t)c->seed, 1));
  int rc = srl_sac_create(&t->agent, t->ops, &sc, init, (uint64_t)c->seed);
  srl_rng_destroy(init);
  SRL_TRY(rc);
  SRL_TRY(srl_rng_create(&t->rng, (uint64_t)c->seed, 2));
  int cap =
      c->algo_cfgs.size < c->train_cfgs.total_steps ? c->algo_cfgs.size : c->train_cfgs.total_steps;
  SRL_TRY(srl_replay_init(&t->rb, cap, O, A));
  SRL_TRY(lagrange_from(t));
  if (c->algo_cfgs.obs_normalize) SRL_TRY(srl_normalizer_init(&t->obs_norm, O));
  if (c->algo_cfgs.reward_normalize) SRL_TRY(srl_normalizer_init(&t->rew_norm, 1));
  if (c->algo_cfgs.cost_normalize) SRL_TRY(srl_normalizer_init(&t->cost_norm, 1));

  // host scratch
  size_t total = 0, f = sizeof(float), n = (size_t)N, b = (size_t)Bt;
  size_t o_cur = srl_layout_add(&total, n * O * f), o_next = srl_layout_add(&total, n * O * f);
  size_t o_sn = srl_layout_add(&total, n * O * f), o_act = srl_layout_add(&total, n * A * f);
  size_t o_rew = srl_layout_add(&total, n * f), o_cost = srl_layout_add(&total, n * f);
  size_t o_term = srl_layout_add(&total, n * sizeof(int));
  size_t o_bo = srl_layout_add(&total, b * O * f), o_ba = srl_layout_add(&total, b * A * f);
  size_t o_br = srl_layout_add(&total, b * f), o_bc = srl_layout_add(&total, b * f);
  size_t o_bn = srl_layout_add(&total, b * O * f), o_bd = srl_layout_add(&total, b * f);
  size_t o_eo = srl_layout_add(&total, (size_t)O * f), o_ea = srl_layout_add(&total, (size_t)A * f);
  size_t o_win = srl_layout_add(&total, (size_t)c->logger_cfgs.window_lens * 3 * sizeof(double));
  size_t np = t->agent->actor->n_params;
  if (t->agent->q1->n_params > np) np = t->agent->q1->n_params;
  size_t o_ph = srl_layout_add(&total, np * f);
  if (!(t->host = srl_calloc(total))) return SRL_ENOMEM;
  char *h = t->host;
  t->cur_obs = (float *)(h + o_cur), t->next_obs = (float *)(h + o_next);
  t->store_next = (float *)(h + o_sn), t->act = (float *)(h + o_act);
  t->rew = (float *)(h + o_rew), t->cost = (float *)(h + o_cost), t->term = (int *)(h + o_term);
  t->b_obs = (float *)(h + o_bo), t->b_act = (float *)(h + o_ba), t->b_rew = (float *)(h + o_br);
  t->b_cost = (float *)(h + o_bc), t->b_next = (float *)(h + o_bn), t->b_done = (float *)(h + o_bd);
  t->e_obs = (float *)(h + o_eo), t->e_act = (float *)(h + o_ea);
  t->win = (double *)(h + o_win);
  t->param_host = (float *)(h + o_ph);

  SRL_TRY(config_text(c, &t->config_text));
  t->tty = isatty(STDERR_FILENO);
  t->t_start = now_s();
  return SRL_OK;
}


int srl_offpolicy_create(srl_offpolicy **out, const srl_offpolicy_config *cfg,
                         const srl_offpolicy_options *opt) {
  *out = NULL;
  srl_offpolicy *t = srl_calloc(sizeof *t);
  if (!t) return SRL_ENOMEM;
  t->cfg = *cfg;
  t->quiet = opt ? opt->quiet : 0;
  int rc = build(t);
  if (rc == 0) rc = make_run_dir(t, opt);
  if (rc < 0) {
    srl_offpolicy_destroy(t);
    return rc;
  }
  *out = t;
  return SRL_OK;
}


void srl_offpolicy_destroy(srl_offpolicy *t) {
  if (!t) return;
  srl_vec_env_destroy(t->env);
  srl_vec_env_destroy(t->eval_env);
  srl_sac_destroy(t->agent);
  srl_replay_free(&t->rb);
  srl_normalizer_free(&t->obs_norm);
  srl_normalizer_free(&t->rew_norm);
  srl_normalizer_free(&t->cost_norm);
  srl_rng_destroy(t->rng);
  srl_free(t->host);
  if (t->events) fclose(t->events);
  free(t->config_text);
  srl_free(t);
}


//---- one epoch ----------------------------------------------------------------------------------

static void window_push(srl_offpolicy *t, double ret, double cost, double len) {
  int w = t->cfg.logger_cfgs.window_lens;
  double *row = t->win + 3 * (size_t)t->win_head;
  row[0] = ret, row[1] = cost, row[2] = len;
  t->win_head = (t->win_head + 1) % w;
  if (t->win_n < w) t->win_n++;
}


// mean of column k of the window (NaN when empty)
static double window_mean(const srl_offpolicy *t, int k) {
  if (t->win_n == 0) return NAN;
  double s = 0;
  for (int i = 0; i < t->win_n; i++) s += t->win[3 * (size_t)i + k];
  return s / t->win_n;
}


// the reset seed of epoch e's vector env
static uint64_t epoch_seed(const srl_offpolicy *t, int e, uint64_t salt) {
  return srl_hash64(((uint64_t)(unsigned)t->cfg.seed << 32) ^ srl_hash64((uint64_t)e ^ salt));
}


// rows of obs (n×O), normalised in place (update first when update)
static int norm_obs(srl_offpolicy *t, float *obs, int n, int update) {
  if (!t->cfg.algo_cfgs.obs_normalize) return SRL_OK;
  return update ? srl_normalizer_normalize(&t->obs_norm, obs, obs, n)
                : srl_normalizer_apply(&t->obs_norm, obs, obs, n);
}


// one vector step: act, step, store the transitions, count finished episodes
static int rollout_step(srl_offpolicy *t, int random_action, int *episodes) {
  srl_vec_env *v = t->env;
  int N = t->N, O = t->O, A = t->A;
  if (random_action)
    srl_rng_fill_uniform(t->rng, t->act, (size_t)N * A, -1.0f, 1.0f);
  else
    SRL_TRY(srl_sac_act(t->agent, t->act, NULL, t->cur_obs, N, 0));
  SRL_TRY(srl_vec_env_step(v, t->act));

  memcpy(t->rew, v->rewards, (size_t)N * sizeof(float));
  memcpy(t->cost, v->costs, (size_t)N * sizeof(float));
  if (t->cfg.algo_cfgs.reward_normalize)
    SRL_TRY(srl_normalizer_normalize(&t->rew_norm, t->rew, t->rew, N));
  if (t->cfg.algo_cfgs.cost_normalize)
    SRL_TRY(srl_normalizer_normalize(&t->cost_norm, t->cost, t->cost, N));

  // the next observations: the new episode's first where one ended, its final one stored
  memcpy(t->next_obs, v->obs, (size_t)N * O * sizeof(float));
  SRL_TRY(norm_obs(t, t->next_obs, N, 1));
  for (int i = 0; i < N; i++) {
    float *dst = t->store_next + (size_t)i * O;
    if (v->done[i]) {
      memcpy(dst, v->final_obs + (size_t)i * O, (size_t)O * sizeof(float));
      SRL_TRY(norm_obs(t, dst, 1, 0));
      const srl_episode_stats *st = &v->stats[i];
      window_push(t, st->last_ret, st->last_cost, (double)st->last_length);
      (*episodes)++;
    } else {
      memcpy(dst, t->next_obs + (size_t)i * O, (size_t)O * sizeof(float));
    }
    t->term[i] = v->terminated[i];
  }
  SRL_TRY(srl_replay_store(&t->rb, t->cur_obs, t->act, t->rew, t->cost, t->store_next, t->term, N));
  memcpy(t->cur_obs, t->next_obs, (size_t)N * O * sizeof(float));
  t->total_steps += N;
  return SRL_OK;
}


// running sums of the epoch's update statistics
typedef struct update_sums {
  double pi, vr, vc, ent, qr, qc;
  long long n_critic, n_actor;
} update_sums;


// update_iters gradient steps, then λ (SACLag, after the warmup epochs)
static int update(srl_offpolicy *t, update_sums *u) {
  int Bt = t->cfg.algo_cfgs.batch_size;
  srl_sac_batch b = {t->b_obs, t->b_act, t->b_rew, t->b_cost, t->b_done, t->b_next, Bt};
  for (int it = 0; it < t->cfg.algo_cfgs.update_iters; it++) {
    SRL_TRY(srl_replay_sample(&t->rb, t->rng, NULL, t->b_obs, t->b_act, t->b_rew, t->b_cost,
                              t->b_next, t->b_done, Bt));
    srl_sac_stats st;
    SRL_TRY(srl_sac_update(t->agent, &b, lambda_now(t), &st));
    t->updates++;
    u->vr += st.loss_q, u->vc += st.loss_qc, u->qr += st.q_mean, u->qc += st.qc_mean;
    u->n_critic++;
    if (st.actor_stepped) u->pi += st.loss_pi, u->ent += st.entropy, u->n_actor++;
  }
  if (t->has_lagrange && t->epoch > t->cfg.algo_cfgs.warmup_epochs && t->win_n > 0) {
    SRL_TRY(srl_lagrange_update(&t->lg, window_mean(t, 1)));
    if (!isfinite(t->lg.lambda))
      return srl_error(SRL_ENONFINITE, "lagrange multiplier is %g", t->lg.lambda);
  }
  return SRL_OK;
}


// eval_episodes deterministic episodes on the evaluation env; means into the row
static int evaluate_epoch(srl_offpolicy *t, srl_offpolicy_row *r) {
  r->test_ret = r->test_cost = r->test_len = NAN;
  int n = t->cfg.train_cfgs.eval_episodes;
  if (n <= 0 || !t->eval_env) return SRL_OK;
  srl_vec_env *v = t->eval_env;
  SRL_TRY(srl_vec_env_reset(v, epoch_seed(t, t->epoch, 0x5eedull)));
  double sr = 0, sc = 0, sl = 0;
  for (int done = 0; done < n;) {
    memcpy(t->e_obs, v->obs, (size_t)t->O * sizeof(float));
    SRL_TRY(norm_obs(t, t->e_obs, 1, 0));
    SRL_TRY(srl_sac_act(t->agent, t->e_act, NULL, t->e_obs, 1, 1));
    SRL_TRY(srl_vec_env_step(v, t->e_act));
    if (v->done[0]) {
      sr += v->stats[0].last_ret, sc += v->stats[0].last_cost;
      sl += (double)v->stats[0].last_length;
      done++;
    }
  }
  r->test_ret = sr / n, r->test_cost = sc / n, r->test_len = sl / n;
  return SRL_OK;
}


// the progress line: on a terminal redrawn in place (at most every 0.5 s, and after each
// epoch), otherwise one line every 10 epochs and after the last
static void draw_progress(srl_offpolicy *t, int epoch_end) {
  if (t->quiet) return;
  if (!t->tty && (!epoch_end || (t->epoch % 10 != 0 && t->epoch != t->epochs))) return;
  double now = now_s();
  if (t->tty && !epoch_end && now - t->last_draw < 0.5) return;
  t->last_draw = now;
  long long done = t->total_steps, total = t->cfg.train_cfgs.total_steps;
  double dt = now - t->t_start, sps = dt > 0 ? (double)(done - t->steps_at_start) / dt : 0;
  double eta = sps > 0 ? (double)(total - done) / sps : 0;
  int h = (int)(eta / 3600), m = (int)(eta / 60) % 60, sec = (int)eta % 60;
  char line[512];
  snprintf(line, sizeof line,
           "[%s %s] %lld/%lld steps (%.1f%%)  %.0f sps  ETA %d:%02d:%02d  ret %.4g  cost %.4g  "
           "λ %.4g",
           t->cfg.algo, t->cfg.env_id, done, total, 100.0 * (double)done / (double)total, sps, h, m,
           sec, window_mean(t, 0), window_mean(t, 1), lambda_now(t));
  srl_log_progress_emit(line, t->tty);
}


static int checkpoint_paths(const srl_offpolicy *t, int epoch, char *ckpt, char *replay) {
  char name[64];
  snprintf(name, sizeof name, "checkpoints/epoch-%d.safetensors", epoch);
  SRL_TRY(srl_run_dir_join(ckpt, PATH_CAP, t->run_dir, name));
  return srl_run_dir_join(replay, PATH_CAP, t->run_dir, "checkpoints/replay.safetensors");
}


// save checkpoints/epoch-<epoch>.safetensors (and the replay buffer beside it) and log it
static int save_checkpoint(srl_offpolicy *t) {
  char ckpt[PATH_CAP], replay[PATH_CAP];
  SRL_TRY(checkpoint_paths(t, t->epoch, ckpt, replay));
  SRL_TRY(srl_offpolicy_save(t, ckpt, replay));
  snprintf(t->last_ckpt, sizeof t->last_ckpt, "checkpoints/epoch-%d.safetensors", t->epoch);
  return srl_log_event_checkpoint(t->events, t->epoch, t->total_steps, t->last_ckpt);
}


// summary.json, in the on-policy trainer's layout
static int write_summary(srl_offpolicy *t, const char *status, const char *message) {
  srl_log_summary s = {.status = status,
                       .message = message,
                       .checkpoint = t->last_ckpt,
                       .run_dir = t->run_dir,
                       .run = log_run(t),
                       .epochs_done = t->epoch,
                       .total_steps = t->total_steps,
                       .episodes = t->episodes_total,
                       .ep_ret = window_mean(t, 0),
                       .ep_cost = window_mean(t, 1),
                       .ep_len = window_mean(t, 2),
                       .lagrange = lambda_now(t),
                       .cost_limit = t->cfg.lagrange_cfgs.cost_limit,
                       .wall_s = wall_s(t)};
  return srl_log_summary_write(t->run_dir, &s);
}


// a stop request honoured after a completed epoch: checkpoint, event, summary
static int interrupted(srl_offpolicy *t) {
  t->stopped = 1;
  SRL_TRY(save_checkpoint(t));
  char msg[256];
  srl_log_event_interrupted(t->events, t->epoch, srl_interrupt_signal(), t->last_ckpt);
  snprintf(msg, sizeof msg, "interrupted after epoch %d of %d", t->epoch, t->epochs);
  write_summary(t, "interrupted", msg);
  if (!t->quiet && t->tty && t->last_draw > 0) fputc('\n', stderr);
  return srl_error(SRL_EINTERRUPTED,
                   "%s; the state is saved in %s/%s (continue with 'saferl train --resume %s')",
                   msg, t->run_dir, t->last_ckpt, t->run_dir);
}


// a non-finite loss, gradient, parameter or λ: nothing saved, the last checkpoint stays
static int nan_stop(srl_offpolicy *t) {
  t->stopped = 1;
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", srl_errmsg());
  srl_log_event_nan_stop(t->events, t->epoch + 1, msg, t->last_ckpt);
  write_summary(t, "nan_stop", msg);
  if (!t->quiet && t->tty && t->last_draw > 0) fputc('\n', stderr);
  return srl_error(SRL_ENONFINITE, "training stopped in epoch %d: %s; %s%s%s", t->epoch + 1, msg,
                   t->last_ckpt[0] ? "the last good checkpoint is " : "no checkpoint was saved",
                   t->last_ckpt[0] ? t->run_dir : "", t->last_ckpt[0] ? "/" : "");
}


// every parameter of the trained networks finite, else SRL_ENONFINITE naming the first bad one
static int check_params(srl_offpolicy *t) {
  srl_sac *s = t->agent;
  const srl_mlp *nets[4] = {s->actor, s->q1, s->q2, s->qc};
  static const char *names[4] = {"actor", "critic_r.0", "critic_r.1", "critic_c"};
  for (int k = 0; k < 4; k++)
    SRL_TRY(srl_log_scan_params(nets[k], names[k], t->ops, t->param_host));
  return SRL_OK;
}


int srl_offpolicy_epoch(srl_offpolicy *t) {
  if (t->stopped) return srl_error(SRL_ESTATE, "the run in %s has stopped", t->run_dir);
  if (srl_offpolicy_done(t))
    return srl_error(SRL_ESTATE, "the run in %s has done all %d epochs", t->run_dir, t->epochs);
  if (stop_requested(t)) return interrupted(t);
  int rc = check_params(t);
  if (rc == SRL_ENONFINITE) return nan_stop(t);
  SRL_TRY(rc);

  const srl_offpolicy_config *c = &t->cfg;
  double t0 = now_s();
  int e = t->epoch, episodes = 0;
  update_sums u;
  memset(&u, 0, sizeof u);
  SRL_TRY(srl_vec_env_reset(t->env, epoch_seed(t, e, 0)));
  memcpy(t->cur_obs, t->env->obs, (size_t)t->N * t->O * sizeof(float));
  SRL_TRY(norm_obs(t, t->cur_obs, t->N, 1));
  long long start = c->algo_cfgs.start_learning_steps;
  for (int k = 0; k < t->cycles && rc == SRL_OK; k++) {
    long long step = ((long long)e * t->cycles + k) * c->algo_cfgs.update_cycle * t->N;
    for (int j = 0; j < c->algo_cfgs.update_cycle && rc == SRL_OK; j++)
      rc = rollout_step(t, step <= start, &episodes);
    if (rc == SRL_OK && step > start) rc = update(t, &u);
    draw_progress(t, 0);
  }
  if (rc == SRL_ENONFINITE) return nan_stop(t);
  SRL_TRY(rc);

  srl_offpolicy_row r;
  memset(&r, 0, sizeof r);
  SRL_TRY(evaluate_epoch(t, &r));
  t->epoch++;
  t->episodes_total += episodes;
  r.epoch = t->epoch;
  r.total_steps = t->total_steps;
  r.ep_ret = window_mean(t, 0), r.ep_cost = window_mean(t, 1), r.ep_len = window_mean(t, 2);
  r.lagrange = lambda_now(t);
  r.loss_vr = u.n_critic ? (float)(u.vr / u.n_critic) : NAN;
  r.loss_vc = u.n_critic && c->algo_cfgs.use_cost ? (float)(u.vc / u.n_critic) : NAN;
  r.q_r = u.n_critic ? (float)(u.qr / u.n_critic) : NAN;
  r.q_c = u.n_critic && c->algo_cfgs.use_cost ? (float)(u.qc / u.n_critic) : NAN;
  r.loss_pi = u.n_actor ? (float)(u.pi / u.n_actor) : NAN;
  r.entropy = u.n_actor ? (float)(u.ent / u.n_actor) : NAN;
  r.alpha = srl_sac_alpha(t->agent);
  r.episodes = episodes;
  r.updates = t->updates;
  double dt = now_s() - t0;
  r.fps = dt > 0 ? c->algo_cfgs.steps_per_epoch / dt : 0;
  r.wall_s = wall_s(t);
  t->row = r;
  t->has_row = 1;
  SRL_TRY(write_progress_row(t, &r));
  SRL_TRY(srl_log_event_epoch(t->events, r.epoch, r.total_steps, r.ep_ret, r.ep_cost, r.lagrange,
                              r.fps));
  draw_progress(t, 1);

  // checkpoints every save_model_freq epochs (the last epoch's state goes to final.safetensors)
  if (t->epoch % c->logger_cfgs.save_model_freq == 0 && t->epoch < t->epochs)
    SRL_TRY(save_checkpoint(t));
  if (stop_requested(t) && t->epoch < t->epochs) return interrupted(t);
  return SRL_OK;
}


int srl_offpolicy_done(const srl_offpolicy *t) {
  return t->epoch >= t->epochs;
}


int srl_offpolicy_finish(srl_offpolicy *t) {
  if (t->epoch < t->epochs)
    return srl_error(SRL_ESTATE, "finish: %d of %d epochs done", t->epoch, t->epochs);
  char path[PATH_CAP];
  SRL_TRY(srl_run_dir_join(path, PATH_CAP, t->run_dir, "final.safetensors"));
  SRL_TRY(srl_offpolicy_save(t, path, NULL));
  SRL_TRY(srl_log_event_finish(t->events, t->epoch, t->total_steps, window_mean(t, 0),
                               window_mean(t, 1), wall_s(t)));
  if (!t->quiet && t->tty && t->last_draw > 0) fputc('\n', stderr);
  snprintf(t->last_ckpt, sizeof t->last_ckpt, "final.safetensors");
  return write_summary(t, "finished", "");
}


int srl_offpolicy_train(srl_offpolicy *t) {
  while (!srl_offpolicy_done(t)) {
    int rc = srl_offpolicy_epoch(t);
    if (rc < 0) {
      if (rc != SRL_EINTERRUPTED && rc != SRL_ENONFINITE) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", srl_errmsg());
        srl_log_event_error(t->events, msg);
        write_summary(t, "error", msg);
        srl_error(rc, "%s", msg);
      }
      return rc;
    }
  }
  return srl_offpolicy_finish(t);
}


void srl_offpolicy_request_stop(srl_offpolicy *t) {
  t->stop = 1;
}


int srl_offpolicy_handle_signals(void) {
  return srl_interrupt_install();
}


const char *srl_offpolicy_run_dir(const srl_offpolicy *t) {
  return t->run_dir;
}
const srl_offpolicy_config *srl_offpolicy_get_config(const srl_offpolicy *t) {
  return &t->cfg;
}
srl_sac *srl_offpolicy_agent(srl_offpolicy *t) {
  return t->agent;
}
srl_lagrange *srl_offpolicy_lagrange(srl_offpolicy *t) {
  return t->has_lagrange ? &t->lg : NULL;
}
const srl_offpolicy_row *srl_offpolicy_last_row(const srl_offpolicy *t) {
  return t->has_row ? &t->row : NULL;
}
int srl_offpolicy_epochs_done(const srl_offpolicy *t) {
  return t->epoch;
}
int srl_offpolicy_epochs_total(const srl_offpolicy *t) {
  return t->epochs;
}


//---- checkpoints --------------------------------------------------------------------------------

// a normaliser's tensors <prefix>.mean, .var, .count into the writer (hold: 1 float for count)
static int add_norm(srl_st_writer *w, const char *prefix, const srl_normalizer *nm, float *count) {
  char name[64];
  *count = (float)nm->count;
  snprintf(name, sizeof name, "%s.mean", prefix);
  SRL_TRY(srl_st_add_f32(w, name, nm->mean, 1, nm->dim));
  snprintf(name, sizeof name, "%s.var", prefix);
  SRL_TRY(srl_st_add_f32(w, name, nm->var, 1, nm->dim));
  snprintf(name, sizeof name, "%s.count", prefix);
  return srl_st_add_f32(w, name, count, 1, 1);
}


static int load_norm(const srl_st_file *f, const char *prefix, srl_normalizer *nm) {
  char name[64];
  float *buf = srl_calloc(2 * (size_t)nm->dim * sizeof(float)), count = 0;
  if (!buf) return SRL_ENOMEM;
  snprintf(name, sizeof name, "%s.mean", prefix);
  int rc = srl_st_read_f32(f, name, buf, (size_t)nm->dim);
  snprintf(name, sizeof name, "%s.var", prefix);
  if (rc == 0) rc = srl_st_read_f32(f, name, buf + nm->dim, (size_t)nm->dim);
  snprintf(name, sizeof name, "%s.count", prefix);
  if (rc == 0) rc = srl_st_read_f32(f, name, &count, 1);
  if (rc == 0) rc = srl_normalizer_set(nm, buf, buf + nm->dim, count);
  srl_free(buf);
  return rc;
}


static int save_replay(const srl_offpolicy *t, const char *path) {
  const srl_replay *rb = &t->rb;
  int64_t n = rb->size, O = rb->obs_dim, A = rb->act_dim, two[2];
  int64_t counters[3] = {rb->head, rb->size, rb->stored};
  srl_st_writer *w;
  SRL_TRY(srl_st_writer_create(&w));
  int64_t s_obs[2] = {n, O}, s_act[2] = {n, A}, s_one[1] = {n}, s3[1] = {3};
  (void)two;
  int rc = srl_st_add(w, "replay.obs", SRL_DTYPE_F32, 2, s_obs, rb->obs);
  if (rc == 0) rc = srl_st_add(w, "replay.next_obs", SRL_DTYPE_F32, 2, s_obs, rb->next_obs);
  if (rc == 0) rc = srl_st_add(w, "replay.act", SRL_DTYPE_F32, 2, s_act, rb->act);
  if (rc == 0) rc = srl_st_add(w, "replay.reward", SRL_DTYPE_F32, 1, s_one, rb->reward);
  if (rc == 0) rc = srl_st_add(w, "replay.cost", SRL_DTYPE_F32, 1, s_one, rb->cost);
  if (rc == 0) rc = srl_st_add(w, "replay.done", SRL_DTYPE_F32, 1, s_one, rb->done);
  if (rc == 0) rc = srl_st_add(w, "replay.counters", SRL_DTYPE_I64, 1, s3, counters);
  char ep[32];
  snprintf(ep, sizeof ep, "%d", t->epoch);
  if (rc == 0) rc = srl_st_set_metadata(w, "epoch", ep);
  if (rc == 0) rc = srl_st_write(w, path);
  srl_st_writer_destroy(w);
  return rc;
}


static int load_replay(srl_offpolicy *t, const char *path, int epoch) {
  srl_st_file *f;
  SRL_TRY(srl_st_open(&f, path));
  srl_replay *rb = &t->rb;
  int rc = SRL_OK;
  const char *ep = srl_st_metadata(f, "epoch");
  const srl_st_tensor *ct = srl_st_find(f, "replay.counters");
  int64_t c[3] = {0, 0, 0};
  if (!ep || atoi(ep) != epoch)
    rc = srl_error(SRL_EFORMAT,
                   "%s holds the replay buffer of epoch %s, the checkpoint is of "
                   "epoch %d",
                   path, ep ? ep : "?", epoch);
  else if (!ct || ct->dtype != SRL_DTYPE_I64 || ct->nbytes != sizeof c)
    rc = srl_error(SRL_EFORMAT, "%s: no replay.counters", path);
  if (rc == 0) {
    memcpy(c, ct->data, sizeof c);
    if (c[1] < 0 || c[1] > rb->capacity || c[0] < 0 || c[0] >= rb->capacity || c[2] < c[1])
      rc = srl_error(SRL_EFORMAT,
                     "%s: replay counters (head %lld, size %lld) do not fit a "
                     "buffer of %d",
                     path, (long long)c[0], (long long)c[1], rb->capacity);
  }
  size_t n = rc == 0 ? (size_t)c[1] : 0, O = (size_t)rb->obs_dim, A = (size_t)rb->act_dim;
  if (rc == 0) rc = srl_st_read_f32(f, "replay.obs", rb->obs, n * O);
  if (rc == 0) rc = srl_st_read_f32(f, "replay.next_obs", rb->next_obs, n * O);
  if (rc == 0) rc = srl_st_read_f32(f, "replay.act", rb->act, n * A);
  if (rc == 0) rc = srl_st_read_f32(f, "replay.reward", rb->reward, n);
  if (rc == 0) rc = srl_st_read_f32(f, "replay.cost", rb->cost, n);
  if (rc == 0) rc = srl_st_read_f32(f, "replay.done", rb->done, n);
  if (rc == 0) rb->head = (int)c[0], rb->size = (int)c[1], rb->stored = c[2];
  srl_st_close(f);
  return rc;
}


int srl_offpolicy_save(srl_offpolicy *t, const char *path, const char *replay_path) {
  srl_st_writer *w;
  SRL_TRY(srl_st_writer_create(&w));
  void *hold = NULL;
  float lg_state[8 + SRL_PID_MAX_DELAY], counts[3];
  int64_t counters[6] = {t->epoch, t->total_steps, t->updates,
                         t->win_n, t->win_head,    t->episodes_total};
  int64_t one5[1] = {6}, win_shape[2] = {t->cfg.logger_cfgs.window_lens, 3};
  size_t rng_n = srl_rng_state_size(t->rng);
  unsigned char *rng_state = srl_malloc(rng_n);
  int rc = rng_state ? srl_sac_save(t->agent, w, &hold) : SRL_ENOMEM;
  if (rc == 0 && t->has_lagrange) {
    int n = srl_lagrange_state_size(&t->lg);
    rc = srl_lagrange_state_save(&t->lg, lg_state);
    if (rc == 0) rc = srl_st_add_f32(w, "lagrange.state", lg_state, 1, n);
  }
  if (rc == 0 && t->cfg.algo_cfgs.obs_normalize)
    rc = add_norm(w, "obs_norm", &t->obs_norm, &counts[0]);
  if (rc == 0 && t->cfg.algo_cfgs.reward_normalize)
    rc = add_norm(w, "reward_norm", &t->rew_norm, &counts[1]);
  if (rc == 0 && t->cfg.algo_cfgs.cost_normalize)
    rc = add_norm(w, "cost_norm", &t->cost_norm, &counts[2]);
  if (rc == 0) {
    int64_t nr = (int64_t)rng_n;
    srl_rng_state_save(t->rng, rng_state);
    rc = srl_st_add(w, "trainer.rng", SRL_DTYPE_U8, 1, &nr, rng_state);
  }
  if (rc == 0) rc = srl_st_add(w, "trainer.counters", SRL_DTYPE_I64, 1, one5, counters);
  // the episode window as doubles, bitwise (F32 would round the means of the resumed run)
  int64_t wbytes[1] = {win_shape[0] * win_shape[1] * 8};
  if (rc == 0) rc = srl_st_add(w, "trainer.window", SRL_DTYPE_U8, 1, wbytes, t->win);
  char buf[64];
  const char *env = t->cfg.env_id;
  if (rc == 0) rc = srl_st_set_metadata(w, "algo", t->cfg.algo);
  if (rc == 0) rc = srl_st_set_metadata(w, "env", env);
  if (rc == 0) rc = srl_st_set_metadata(w, "format", SRL_OFFPOLICY_FORMAT);
  snprintf(buf, sizeof buf, "%lld", t->total_steps);
  if (rc == 0) rc = srl_st_set_metadata(w, "step", buf);
  snprintf(buf, sizeof buf, "%d", t->epoch);
  if (rc == 0) rc = srl_st_set_metadata(w, "epoch", buf);
  snprintf(buf, sizeof buf, "%.17g", wall_s(t));
  if (rc == 0) rc = srl_st_set_metadata(w, "wall_s", buf);
  if (rc == 0) rc = srl_st_set_metadata(w, "config", t->config_text);
  if (rc == 0) rc = srl_st_set_metadata(w, "version", SRL_VERSION);
  if (rc == 0 && replay_path) rc = save_replay(t, replay_path);
  if (rc == 0) rc = srl_st_write(w, path);
  srl_st_writer_destroy(w);
  srl_free(hold);
  srl_free(rng_state);
  return rc;
}


// the trainer's own state from a checkpoint (the agent's is srl_sac_load's)
static int load_trainer_state(srl_offpolicy *t, const srl_st_file *f) {
  SRL_TRY(srl_sac_load(t->agent, f, 0));
  if (t->has_lagrange) {
    int n = srl_lagrange_state_size(&t->lg);
    float st[8 + SRL_PID_MAX_DELAY];
    SRL_TRY(srl_st_read_f32(f, "lagrange.state", st, (size_t)n));
    SRL_TRY(srl_lagrange_state_load(&t->lg, st, n));
  }
  if (t->cfg.algo_cfgs.obs_normalize) SRL_TRY(load_norm(f, "obs_norm", &t->obs_norm));
  if (t->cfg.algo_cfgs.reward_normalize) SRL_TRY(load_norm(f, "reward_norm", &t->rew_norm));
  if (t->cfg.algo_cfgs.cost_normalize) SRL_TRY(load_norm(f, "cost_norm", &t->cost_norm));
  const srl_st_tensor *r = srl_st_find(f, "trainer.rng");
  if (!r || r->dtype != SRL_DTYPE_U8) return srl_error(SRL_EFORMAT, "checkpoint: no trainer.rng");
  SRL_TRY(srl_rng_state_load(t->rng, r->data, r->nbytes));
  const srl_st_tensor *c = srl_st_find(f, "trainer.counters");
  int64_t v[6];
  if (!c || c->dtype != SRL_DTYPE_I64 || c->nbytes != sizeof v)
    return srl_error(SRL_EFORMAT, "checkpoint: no trainer.counters");
  memcpy(v, c->data, sizeof v);
  int wl = t->cfg.logger_cfgs.window_lens;
  const srl_st_tensor *w = srl_st_find(f, "trainer.window");
  if (!w || w->nbytes != (size_t)wl * 3 * sizeof(double) || v[3] < 0 || v[3] > wl || v[4] < 0 ||
      v[4] >= wl)
    return srl_error(SRL_EFORMAT, "checkpoint: trainer.window does not fit window_lens %d", wl);
  memcpy(t->win, w->data, w->nbytes);
  t->epoch = (int)v[0], t->total_steps = v[1], t->updates = v[2];
  t->win_n = (int)v[3], t->win_head = (int)v[4], t->episodes_total = v[5];
  t->steps_at_start = t->total_steps;
  const char *ws = srl_st_metadata(f, "wall_s");
  t->wall_base = ws ? atof(ws) : 0;
  t->t_start = now_s();
  return SRL_OK;
}


int srl_offpolicy_resume(srl_offpolicy **out, const char *run_dir,
                         const srl_offpolicy_options *opt) {
  *out = NULL;
  char path[PATH_CAP], ckpt[PATH_CAP], replay[PATH_CAP];
  srl_offpolicy_config cfg;
  SRL_TRY(srl_run_dir_join(path, PATH_CAP, run_dir, "config.yaml"));
  SRL_TRY(srl_offpolicy_config_load(&cfg, path, NULL, 0));
  int epoch = -1;
  SRL_TRY(srl_run_dir_join(ckpt, PATH_CAP, run_dir, "checkpoints"));
  if (srl_run_dir_find_checkpoint(ckpt, PATH_CAP, ckpt, 0, &epoch) < 0 || epoch < 0)
    return srl_error(SRL_ENOTFOUND, "%s: no checkpoint to resume from (checkpoints/epoch-N)",
                     run_dir);
  srl_offpolicy *t = srl_calloc(sizeof *t);
  if (!t) return SRL_ENOMEM;
  t->cfg = cfg;
  t->quiet = opt ? opt->quiet : 0;
  snprintf(t->run_dir, sizeof t->run_dir, "%s", run_dir);
  srl_st_file *f = NULL;
  int rc = build(t);
  if (rc == 0) rc = checkpoint_paths(t, epoch, ckpt, replay);
  if (rc == 0) rc = srl_st_open(&f, ckpt);
  if (rc == 0) rc = load_trainer_state(t, f);
  srl_st_close(f);
  if (rc == 0 && t->epoch != epoch)
    rc = srl_error(SRL_EFORMAT, "%s holds epoch %d", ckpt, t->epoch);
  if (rc == 0) rc = load_replay(t, replay, epoch);
  if (rc == 0) rc = srl_run_dir_truncate_progress(t->run_dir, epoch);
  if (rc == 0) {
    snprintf(t->last_ckpt, sizeof t->last_ckpt, "checkpoints/epoch-%d.safetensors", epoch);
    rc = open_events(t, "resume");
  }
  if (rc == 0) {
    fprintf(t->events, ", \"epoch\": %d, \"total_steps\": %lld, \"checkpoint\": ", t->epoch,
            t->total_steps);
    srl_log_json_string(t->events, t->last_ckpt);
    rc = srl_log_event_end(t->events);
  }
  if (rc < 0) {
    srl_error_context(rc, "resuming %s: ", run_dir);
    srl_offpolicy_destroy(t);
    return rc;
  }
  *out = t;
  return SRL_OK;
}


//---- trained policies ---------------------------------------------------------------------------

struct srl_sac_policy {
  srl_offpolicy_config cfg;
  char path[PATH_CAP];  // the checkpoint file
  long long step;       // env steps it was trained for
  srl_sac *agent;
  srl_normalizer norm;
  int obs_dim, act_dim, max_batch;
  float *obs;  // (max_batch, obs_dim) normalised copy
};


// a run directory's final.safetensors, else its latest checkpoint; a file as it is
static int resolve_checkpoint(const char *path, char *out) {
  int epoch;
  return srl_run_dir_find_checkpoint(out, PATH_CAP, path, 1, &epoch);
}


int srl_sac_policy_load(srl_sac_policy **out, const char *path, const char *device, int max_batch) {
  *out = NULL;
  if (max_batch < 1) return srl_error(SRL_EINVAL, "sac policy: max_batch %d", max_batch);
  char file[PATH_CAP];
  SRL_TRY(resolve_checkpoint(path, file));
  srl_st_file *f;
  SRL_TRY(srl_st_open(&f, file));
  srl_sac_policy *p = srl_calloc(sizeof *p);
  int rc = p ? SRL_OK : SRL_ENOMEM;
  const char *algo = srl_st_metadata(f, "algo"), *text = srl_st_metadata(f, "config");
  if (rc == 0 && (!srl_offpolicy_is_algo(algo) || !text))
    rc = srl_error(SRL_EFORMAT, "%s is not an off-policy (SAC) checkpoint (algo '%s')", file,
                   algo ? algo : "?");
  if (rc == 0) rc = srl_offpolicy_config_defaults(&p->cfg, algo);
  if (rc == 0) rc = srl_config_load_string(&schema, &p->cfg, text, file);
  // the dimensions from the actor's first and last layers
  const srl_st_tensor *w0 = srl_st_find(f, "actor.layers.0.weight");
  char last[64];
  snprintf(last, sizeof last, "actor.layers.%d.weight",
           p ? p->cfg.model_cfgs.actor.n_hidden_sizes : 0);
  const srl_st_tensor *wl = srl_st_find(f, last);
  if (rc == 0 && (!w0 || !wl || w0->ndim != 2 || wl->ndim != 2 || wl->shape[0] % 2))
    rc = srl_error(SRL_EFORMAT, "%s: actor layers missing or malformed", file);
  srl_sac_config sc;
  const srl_ops *ops = NULL;
  if (rc == 0) {
    p->obs_dim = (int)w0->shape[1], p->act_dim = (int)(wl->shape[0] / 2), p->max_batch = max_batch;
    rc = sac_config_from(&sc, &p->cfg, p->obs_dim, p->act_dim, max_batch);
  }
  if (rc == 0) rc = srl_ops_get(&ops, device ? device : "cpu");
  // the run's BLAS threads: with another count OpenBLAS may sum in another order, and an
  // evaluation would not repeat the trainer's
  if (rc == 0 && ops->device == SRL_DEVICE_CPU)
    srl_ops_cpu_set_threads(p->cfg.train_cfgs.torch_threads);
  srl_rng *init = NULL;
  if (rc == 0) rc = srl_rng_create(&init, 0, 1);
  if (rc == 0) rc = srl_sac_create(&p->agent, ops, &sc, init, 0);
  srl_rng_destroy(init);
  if (rc == 0) rc = srl_sac_load(p->agent, f, 1);
  if (rc == 0 && p->cfg.algo_cfgs.obs_normalize) {
    rc = srl_normalizer_init(&p->norm, p->obs_dim);
    if (rc == 0) rc = load_norm(f, "obs_norm", &p->norm);
  }
  if (rc == 0 && !(p->obs = srl_calloc((size_t)max_batch * p->obs_dim * sizeof(float))))
    rc = SRL_ENOMEM;
  if (rc == 0) {
    const char *step = srl_st_metadata(f, "step");
    p->step = step ? atoll(step) : 0;
    snprintf(p->path, sizeof p->path, "%s", file);
  }
  srl_st_close(f);
  if (rc < 0) {
    srl_sac_policy_destroy(p);
    return rc;
  }
  *out = p;
  return SRL_OK;
}


void srl_sac_policy_destroy(srl_sac_policy *p) {
  if (!p) return;
  srl_sac_destroy(p->agent);
  srl_normalizer_free(&p->norm);
  srl_free(p->obs);
  srl_free(p);
}


const srl_offpolicy_config *srl_sac_policy_config(const srl_sac_policy *p) {
  return &p->cfg;
}


const char *srl_sac_policy_path(const srl_sac_policy *p) {
  return p->path;
}


long long srl_sac_policy_step(const srl_sac_policy *p) {
  return p->step;
}


int srl_offpolicy_is_checkpoint(const char *path) {
  char file[PATH_CAP];
  if (!path || resolve_checkpoint(path, file) < 0) {
    srl_errclear();
    return 0;
  }
  srl_st_file *f;
  if (srl_st_open(&f, file) < 0) {
    srl_errclear();
    return 0;
  }
  const char *fmt = srl_st_metadata(f, "format");
  int yes = fmt && strcmp(fmt, SRL_OFFPOLICY_FORMAT) == 0;
  srl_st_close(f);
  return yes;
}


void srl_sac_policy_seed(srl_sac_policy *p, uint64_t seed) {
  srl_rng_seed(p->agent->rng, seed, 0);
}


int srl_sac_policy_act(srl_sac_policy *p, float *act, const float *obs, int n, int deterministic) {
  if (n < 1 || n > p->max_batch)
    return srl_error(SRL_EINVAL, "sac policy: %d rows (capacity %d)", n, p->max_batch);
  const float *x = obs;
  if (p->cfg.algo_cfgs.obs_normalize) {
    SRL_TRY(srl_normalizer_apply(&p->norm, p->obs, obs, n));
    x = p->obs;
  }
  return srl_sac_act(p->agent, act, NULL, x, n, deterministic);
}


typedef struct sac_ctx {
  srl_sac_policy *p;
  int deterministic;
} sac_ctx;

// the policy draws from its own stream: re-seeded from the episode's before each sampled action
static int sac_act_one(void *ctx, float *act, const float *obs, srl_rng *rng) {
  sac_ctx *c = ctx;
  if (!c->deterministic)
    srl_sac_policy_seed(c->p, (uint64_t)srl_rng_u32(rng) << 32 | srl_rng_u32(rng));
  return srl_sac_policy_act(c->p, act, obs, 1, c->deterministic);
}


int srl_sac_policy_evaluate(srl_sac_policy *p, int episodes, int deterministic, uint64_t seed,
                            int num_envs, srl_eval_result *res, double *rets, double *costs,
                            double *lens) {
  if (!p) return srl_error(SRL_EINVAL, "srl_sac_policy_evaluate: no policy");
  sac_ctx c = {p, deterministic};
  return srl_evaluate_policy_fn(p->cfg.env_id, p->cfg.env_cfgs.options, episodes, num_envs, seed,
                                sac_act_one, &c, res, rets, costs, lens);
}

// onpolicy_config.c: the on-policy config schema (OmniSafe's key names, PPOLag defaults), the
// layered loading with per-algorithm defaults, cross-field checks, and the algorithm table.
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/onpolicy.h"
#include "algos/ppo.h"
#include "core/error.h"
#include "envs/env.h"

#if defined(__has_include)
#if __has_include("algos/cpo.h")
#include "algos/cpo.h"
#define SRL__HAVE_CPO 1
#endif
#endif

#define T srl_onpolicy_config
#define ACTS "identity|tanh|relu|mish|gelu|quick_gelu|sigmoid|softplus"

// clang-format off
static const srl_cfg_field fields[] = {
  SRL_CFG_STRING(T, algo, "algo", "PPOLag",
                 "algorithm: PPO, PPOLag, CPPOPID, TRPOLag or CPO"),
  SRL_CFG_STRING(T, env_id, "env_id", "SafetyPointGoal1",
                 "environment id ('saferl envs' lists them)"),
  SRL_CFG_INT(T, seed, "seed", "0", 0, INT_MAX, "random seed of envs, networks and sampling"),

  SRL_CFG_CHOICE(T, train_cfgs.device, "train_cfgs.device", "cpu", "cpu|cuda",
                 "where the networks run"),
  SRL_CFG_INT(T, train_cfgs.total_steps, "train_cfgs.total_steps", "10000000", 1, INT_MAX,
              "environment steps in the whole run"),
  SRL_CFG_INT(T, train_cfgs.vector_env_nums, "train_cfgs.vector_env_nums", "1", 1, 65536,
              "environments stepped together"),
  SRL_CFG_INT(T, train_cfgs.threads, "train_cfgs.threads", "1", 1, 1024,
              "CPU threads: env workers (at most vector_env_nums) and, from 2, the PPO "
              "update's actor step beside its critic steps (results do not change)"),
  SRL_CFG_INT(T, train_cfgs.torch_threads, "train_cfgs.torch_threads", "1", 1, 1024,
              "threads of the CPU networks' matrix products (OpenBLAS)"),

  SRL_CFG_INT(T, algo_cfgs.steps_per_epoch, "algo_cfgs.steps_per_epoch", "20000", 1, INT_MAX,
              "environment steps collected per epoch (a multiple of vector_env_nums)"),
  SRL_CFG_INT(T, algo_cfgs.update_iters, "algo_cfgs.update_iters", "40", 1, 100000,
              "update passes over the epoch's data"),
  SRL_CFG_INT(T, algo_cfgs.batch_size, "algo_cfgs.batch_size", "64", 1, 1 << 20,
              "minibatch size"),
  SRL_CFG_FLOAT(T, algo_cfgs.target_kl, "algo_cfgs.target_kl", "0.02", 0, INFINITY,
                "KL(old||new) bound: early stop of the passes (PPO), trust region (TRPO, CPO)"),
  SRL_CFG_FLOAT(T, algo_cfgs.entropy_coef, "algo_cfgs.entropy_coef", "0.0", 0, INFINITY,
                "entropy bonus weight in the actor loss"),
  SRL_CFG_BOOL(T, algo_cfgs.obs_normalize, "algo_cfgs.obs_normalize", "True",
               "normalise observations with running statistics (std floor 1e-2, clip 5)"),
  SRL_CFG_BOOL(T, algo_cfgs.kl_early_stop, "algo_cfgs.kl_early_stop", "True",
               "stop the update passes once KL exceeds target_kl"),
  SRL_CFG_BOOL(T, algo_cfgs.use_max_grad_norm, "algo_cfgs.use_max_grad_norm", "True",
               "clip each network's gradient norm to max_grad_norm"),
  SRL_CFG_FLOAT(T, algo_cfgs.max_grad_norm, "algo_cfgs.max_grad_norm", "40.0", 0, INFINITY,
                "gradient norm bound"),
  SRL_CFG_BOOL(T, algo_cfgs.use_critic_norm, "algo_cfgs.use_critic_norm", "True",
               "add critic_norm_coef * sum of squared critic weights to the critic losses"),
  SRL_CFG_FLOAT(T, algo_cfgs.critic_norm_coef, "algo_cfgs.critic_norm_coef", "0.001", 0,
                INFINITY, "critic weight penalty"),
  SRL_CFG_FLOAT(T, algo_cfgs.gamma, "algo_cfgs.gamma", "0.99", 0, 1,
                "discount of rewards and costs"),
  SRL_CFG_FLOAT(T, algo_cfgs.lam, "algo_cfgs.lam", "0.95", 0, 1, "GAE lambda of the reward"),
  SRL_CFG_FLOAT(T, algo_cfgs.lam_c, "algo_cfgs.lam_c", "0.95", 0, 1, "GAE lambda of the cost"),
  SRL_CFG_FLOAT(T, algo_cfgs.clip, "algo_cfgs.clip", "0.2", 0, 10, "PPO ratio clip"),
  SRL_CFG_BOOL(T, algo_cfgs.standardized_rew_adv, "algo_cfgs.standardized_rew_adv", "True",
               "standardise reward advantages over the epoch"),
  SRL_CFG_BOOL(T, algo_cfgs.standardized_cost_adv, "algo_cfgs.standardized_cost_adv", "True",
               "centre cost advantages over the epoch"),
  SRL_CFG_BOOL(T, algo_cfgs.use_cost, "algo_cfgs.use_cost", "True",
               "train the cost critic"),
  SRL_CFG_INT(T, algo_cfgs.cg_iters, "algo_cfgs.cg_iters", "15", 1, 1000,
              "conjugate-gradient iterations (TRPO-Lag, CPO)"),
  SRL_CFG_FLOAT(T, algo_cfgs.cg_damping, "algo_cfgs.cg_damping", "0.1", 0, INFINITY,
                "damping added to the Fisher matrix (TRPO-Lag, CPO)"),
  SRL_CFG_INT(T, algo_cfgs.fvp_sample_freq, "algo_cfgs.fvp_sample_freq", "1", 1, 1 << 20,
              "every k-th row enters the Fisher-vector products (TRPO-Lag, CPO)"),

  SRL_CFG_INT(T, logger_cfgs.save_model_freq, "logger_cfgs.save_model_freq", "100", 1, INT_MAX,
              "epochs between checkpoints"),
  SRL_CFG_INT(T, logger_cfgs.window_lens, "logger_cfgs.window_lens", "100", 1, 1000000,
              "finished episodes averaged in ep_ret, ep_cost, ep_len and Jc"),
  SRL_CFG_STRING(T, logger_cfgs.log_dir, "logger_cfgs.log_dir", "runs",
                 "where run directories are made (--out overrides)"),

  SRL_CFG_BOOL(T, model_cfgs.linear_lr_decay, "model_cfgs.linear_lr_decay", "True",
               "decay the actor's learning rate linearly to 0 over the epochs"),
  SRL_CFG_INT_LIST(T, model_cfgs.actor.hidden_sizes, model_cfgs.actor.n_hidden_sizes,
                   "model_cfgs.actor.hidden_sizes", "[64, 64]", 1, 65536, "actor layer widths"),
  SRL_CFG_CHOICE(T, model_cfgs.actor.activation, "model_cfgs.actor.activation", "tanh", ACTS,
                 "actor hidden activation"),
  SRL_CFG_FLOAT(T, model_cfgs.actor.lr, "model_cfgs.actor.lr", "0.0003", 0, INFINITY,
                "actor learning rate (Adam)"),
  SRL_CFG_INT_LIST(T, model_cfgs.critic.hidden_sizes, model_cfgs.critic.n_hidden_sizes,
                   "model_cfgs.critic.hidden_sizes", "[64, 64]", 1, 65536,
                   "critic layer widths (reward and cost critics)"),
  SRL_CFG_CHOICE(T, model_cfgs.critic.activation, "model_cfgs.critic.activation", "tanh", ACTS,
                 "critic hidden activation"),
  SRL_CFG_FLOAT(T, model_cfgs.critic.lr, "model_cfgs.critic.lr", "0.0003", 0, INFINITY,
                "critic learning rate (Adam)"),

  SRL_CFG_FLOAT(T, lagrange_cfgs.cost_limit, "lagrange_cfgs.cost_limit", "25.0", -1e9, 1e9,
                "episode-cost limit d"),
  SRL_CFG_FLOAT(T, lagrange_cfgs.lagrangian_multiplier_init,
                "lagrange_cfgs.lagrangian_multiplier_init", "0.001", 0, 1e9,
                "initial lambda (PID: initial integral term)"),
  SRL_CFG_FLOAT(T, lagrange_cfgs.lambda_lr, "lagrange_cfgs.lambda_lr", "0.035", 0, 1e9,
                "Adam learning rate of lambda (PPOLag, TRPOLag)"),
  SRL_CFG_FLOAT(T, lagrange_cfgs.lagrangian_upper_bound, "lagrange_cfgs.lagrangian_upper_bound",
                "0.0", 0, 1e9, "upper bound of lambda (0: none)"),
  SRL_CFG_FLOAT(T, lagrange_cfgs.pid_kp, "lagrange_cfgs.pid_kp", "0.1", 0, 1e9,
                "PID proportional gain (CPPOPID)"),
  SRL_CFG_FLOAT(T, lagrange_cfgs.pid_ki, "lagrange_cfgs.pid_ki", "0.01", 0, 1e9,
                "PID integral gain (CPPOPID)"),
  SRL_CFG_FLOAT(T, lagrange_cfgs.pid_kd, "lagrange_cfgs.pid_kd", "0.01", 0, 1e9,
                "PID derivative gain (CPPOPID)"),
  SRL_CFG_INT(T, lagrange_cfgs.pid_d_delay, "lagrange_cfgs.pid_d_delay", "10", 1,
              SRL_PID_MAX_DELAY, "epochs between the costs the derivative compares (CPPOPID)"),
  SRL_CFG_FLOAT(T, lagrange_cfgs.pid_delta_p_ema_alpha, "lagrange_cfgs.pid_delta_p_ema_alpha",
                "0.95", 0, 1, "EMA weight of the proportional error (CPPOPID)"),
  SRL_CFG_FLOAT(T, lagrange_cfgs.pid_delta_d_ema_alpha, "lagrange_cfgs.pid_delta_d_ema_alpha",
                "0.95", 0, 1, "EMA weight of the cost in the derivative (CPPOPID)"),
  SRL_CFG_BOOL(T, lagrange_cfgs.sum_norm, "lagrange_cfgs.sum_norm", "True",
               "PID: lambda not capped at penalty_max (CPPOPID)"),
  SRL_CFG_BOOL(T, lagrange_cfgs.diff_norm, "lagrange_cfgs.diff_norm", "False",
               "PID: integral and lambda clamped to [0, 1] (CPPOPID)"),
  SRL_CFG_FLOAT(T, lagrange_cfgs.penalty_max, "lagrange_cfgs.penalty_max", "100.0", 0, 1e9,
                "PID: largest lambda when neither norm flag is set (CPPOPID)"),

  SRL_CFG_STRING(T, env_cfgs.options, "env_cfgs.options", "",
                 "the environment's own options as YAML text, e.g. '{num_steps: 500}'"),
};
// clang-format on
#undef T

static const srl_cfg_schema schema = SRL_CFG_SCHEMA("on-policy training", fields);

const srl_cfg_schema *srl_onpolicy_schema(void) {
  return &schema;
}


//---- the algorithm table -------------------------------------------------------------------------

static const srl_onpolicy_algo *const builtin[] = {
    &srl_onpolicy_ppo,      &srl_onpolicy_ppo_lag, &srl_onpolicy_cppo_pid,
#ifdef SRL__HAVE_CPO
    &srl_onpolicy_trpo_lag, &srl_onpolicy_cpo,
#endif
};
#define N_BUILTIN ((int)(sizeof builtin / sizeof *builtin))
#define MAX_REGISTERED 32

static const srl_onpolicy_algo *registered[MAX_REGISTERED];
static int n_registered;


const srl_onpolicy_algo *srl_onpolicy_algo_find(const char *name) {
  if (!name) return NULL;
  for (int i = 0; i < N_BUILTIN; i++)
    if (!strcmp(builtin[i]->name, name)) return builtin[i];
  for (int i = 0; i < n_registered; i++)
    if (!strcmp(registered[i]->name, name)) return registered[i];
  return NULL;
}


int srl_onpolicy_register_algo(const srl_onpolicy_algo *algo) {
  if (!algo || !algo->name || !algo->name[0] || !algo->update)
    return srl_error(SRL_EINVAL, "srl_onpolicy_register_algo: a name and an update are needed");
  if (strlen(algo->name) >= sizeof(((srl_onpolicy_config *)0)->algo))
    return srl_error(SRL_EINVAL, "on-policy algorithm name '%s' is too long", algo->name);
  if (srl_onpolicy_algo_find(algo->name))
    return srl_error(SRL_EINVAL, "on-policy algorithm '%s' is already known", algo->name);
  if (n_registered == MAX_REGISTERED)
    return srl_error(SRL_ERANGE, "at most %d on-policy algorithms can be registered",
                     MAX_REGISTERED);
  registered[n_registered++] = algo;
  return SRL_OK;
}


// "PPO, PPOLag, ..." into buf
static void known_algos(char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = 0;
  for (int i = 0; i < N_BUILTIN + n_registered; i++) {
    const char *name = i < N_BUILTIN ? builtin[i]->name : registered[i - N_BUILTIN]->name;
    int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", name);
    if (w < 0 || (size_t)w >= cap - used) break;
    used += (size_t)w;
  }
}


static int unknown_algo(const char *name) {
  char known[256];
  known_algos(known, sizeof known);
  return srl_error(SRL_ECONFIG, "unknown algo '%s' (known: %s)", name, known);
}


int srl_onpolicy_lagrange_step(const srl_onpolicy_batch *b, float *lambda) {
  *lambda = 0.0f;
  if (!b->lagrange) return SRL_OK;
  if (isfinite(b->ep_cost)) SRL_TRY(srl_lagrange_update(b->lagrange, b->ep_cost));
  *lambda = b->lagrange->lambda;
  if (!isfinite(*lambda))
    return srl_error(SRL_ENONFINITE,
                     "Lagrange multiplier lambda is %g after the update from "
                     "Jc = %g",
                     *lambda, b->ep_cost);
  return SRL_OK;
}


//---- loading -------------------------------------------------------------------------------------

int srl_onpolicy_config_defaults(srl_onpolicy_config *cfg, const char *algo) {
  if (!cfg) return srl_error(SRL_EINVAL, "srl_onpolicy_config_defaults: cfg is NULL");
  srl_onpolicy_config c;
  SRL_TRY(srl_config_defaults(&schema, &c));
  if (algo) {
    if (strlen(algo) >= sizeof c.algo) return unknown_algo(algo);
    memset(c.algo, 0, sizeof c.algo);
    strcpy(c.algo, algo);
  }
  const srl_onpolicy_algo *a = srl_onpolicy_algo_find(c.algo);
  if (!a) return unknown_algo(c.algo);
  if (a->defaults_yaml) {
    char source[64];
    snprintf(source, sizeof source, "%s defaults", a->name);
    SRL_TRY(srl_config_load_string(&schema, &c, a->defaults_yaml, source));
  }
  *cfg = c;
  return SRL_OK;
}


// file then sets over cfg
static int apply_layers(srl_onpolicy_config *cfg, const char *path, const char *const *sets,
                        int n_sets) {
  if (path) SRL_TRY(srl_config_load_file(&schema, cfg, path));
  for (int i = 0; i < n_sets; i++) SRL_TRY(srl_config_set(&schema, cfg, sets[i]));
  return SRL_OK;
}


int srl_onpolicy_config_load(srl_onpolicy_config *cfg, const char *path, const char *const *sets,
                             int n_sets) {
  if (!cfg || n_sets < 0 || (n_sets > 0 && !sets))
    return srl_error(SRL_EINVAL, "srl_onpolicy_config_load: bad arguments");
  // a first pass finds the algorithm the file and overrides name, whose defaults come first
  srl_onpolicy_config probe, c;
  SRL_TRY(srl_config_defaults(&schema, &probe));
  SRL_TRY(apply_layers(&probe, path, sets, n_sets));
  SRL_TRY(srl_onpolicy_config_defaults(&c, probe.algo));
  SRL_TRY(apply_layers(&c, path, sets, n_sets));
  *cfg = c;
  return SRL_OK;
}


int srl_onpolicy_config_check(const srl_onpolicy_config *cfg) {
  if (!srl_onpolicy_algo_find(cfg->algo)) return unknown_algo(cfg->algo);
  if (!srl_env_id_known(cfg->env_id))
    return srl_error(SRL_ECONFIG,
                     "env_id '%s' is not a registered environment ('saferl envs' "
                     "lists them)",
                     cfg->env_id);
  int n = cfg->train_cfgs.vector_env_nums, spe = cfg->algo_cfgs.steps_per_epoch;
  if (spe % n)
    return srl_error(SRL_ECONFIG,
                     "algo_cfgs.steps_per_epoch %d must be a multiple of "
                     "train_cfgs.vector_env_nums %d",
                     spe, n);
  if (cfg->train_cfgs.total_steps < spe)
    return srl_error(SRL_ECONFIG,
                     "train_cfgs.total_steps %d is less than one epoch "
                     "(algo_cfgs.steps_per_epoch %d)",
                     cfg->train_cfgs.total_steps, spe);
  if (cfg->model_cfgs.actor.n_hidden_sizes > SRL_ONPOLICY_MAX_HIDDEN ||
      cfg->model_cfgs.critic.n_hidden_sizes > SRL_ONPOLICY_MAX_HIDDEN)
    return srl_error(SRL_ECONFIG, "model_cfgs: at most %d hidden layers", SRL_ONPOLICY_MAX_HIDDEN);
  if (srl_act_from_name(cfg->model_cfgs.actor.activation) < 0 ||
      srl_act_from_name(cfg->model_cfgs.critic.activation) < 0)
    return srl_error(SRL_ECONFIG, "model_cfgs: unknown activation");
  return SRL_OK;
}


int srl_onpolicy_config_text(const srl_onpolicy_config *cfg, char **out) {
  *out = NULL;
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return srl_error(SRL_ENOMEM, "config text: cannot open a memory stream");
  int rc = srl_config_write(&schema, cfg, f);
  if (fclose(f) != 0 && rc == 0) rc = srl_error(SRL_EIO, "config text: cannot close the stream");
  if (rc < 0) {
    free(buf);
    return rc;
  }
  *out = buf;
  return SRL_OK;
}

// config_ppolag_schema.h: a config struct and schema shaped like OmniSafe's PPOLag defaults
// (seed, train_cfgs, algo_cfgs, logger_cfgs, model_cfgs.{actor,critic}, lagrange_cfgs), with
// every field type; shared by tests/core/test_config.c and tests/fuzz/fuzz_config.c.
#ifndef SRL_TEST_CONFIG_PPOLAG_SCHEMA_H
#define SRL_TEST_CONFIG_PPOLAG_SCHEMA_H

#include <limits.h>
#include <math.h>
#include <stddef.h>

#include "core/config.h"

typedef struct ppolag_net_cfg {
  int hidden_sizes[4];
  int n_hidden_sizes;
  char activation[16];
  double lr;
} ppolag_net_cfg;

typedef struct ppolag_cfg {
  int seed;
  char exp_name[32];
  struct {
    char device[8];
    int torch_threads, vector_env_nums, parallel, total_steps;
  } train;
  struct {
    int steps_per_epoch, update_iters, batch_size;
    double target_kl, entropy_coef;
    int reward_normalize, cost_normalize, obs_normalize, kl_early_stop, use_max_grad_norm;
    double max_grad_norm;
    int use_critic_norm;
    double critic_norm_coef, gamma, cost_gamma, lam, lam_c, clip;
    char adv_estimation_method[8];
    int standardized_rew_adv, standardized_cost_adv;
    double penalty_coef;
    int use_cost;
  } algo;
  struct {
    int use_tensorboard, save_model_freq, window_lens;
    char log_dir[64];
  } logger;
  struct {
    char weight_initialization_mode[24];
    char actor_type[24];
    int linear_lr_decay, exploration_noise_anneal;
    double std_range[2];
    int n_std_range;
    ppolag_net_cfg actor, critic;
  } model;
  struct {
    double cost_limit, lagrangian_multiplier_init, lambda_lr;
    char lambda_optimizer[8];
  } lagrange;
} ppolag_cfg;

#define T ppolag_cfg
static const srl_cfg_field ppolag_fields[] = {
    SRL_CFG_INT(T, seed, "seed", "0", 0, INT_MAX, "random seed of envs, networks and sampling"),
    SRL_CFG_STRING(T, exp_name, "exp_name", "ppo_lag", "name of the run directory"),
    SRL_CFG_CHOICE(T, train.device, "train_cfgs.device", "cpu", "cpu|cuda",
                   "where the networks run"),
    SRL_CFG_INT(T, train.torch_threads, "train_cfgs.torch_threads", "16", 1, 1024,
                "CPU threads for the networks"),
    SRL_CFG_INT(T, train.vector_env_nums, "train_cfgs.vector_env_nums", "1", 1, 1024,
                "environments stepped together"),
    SRL_CFG_INT(T, train.parallel, "train_cfgs.parallel", "1", 1, 256, "data-parallel workers"),
    SRL_CFG_INT(T, train.total_steps, "train_cfgs.total_steps", "10000000", 1, INT_MAX,
                "environment steps in the whole run"),
    SRL_CFG_INT(T, algo.steps_per_epoch, "algo_cfgs.steps_per_epoch", "20000", 1, INT_MAX,
                "steps collected per epoch"),
    SRL_CFG_INT(T, algo.update_iters, "algo_cfgs.update_iters", "40", 1, 1000,
                "passes over the epoch's data"),
    SRL_CFG_INT(T, algo.batch_size, "algo_cfgs.batch_size", "64", 1, 1 << 20, "minibatch size"),
    SRL_CFG_FLOAT(T, algo.target_kl, "algo_cfgs.target_kl", "0.02", 0, INFINITY,
                  "early-stop threshold on KL(old||new)"),
    SRL_CFG_FLOAT(T, algo.entropy_coef, "algo_cfgs.entropy_coef", "0.0", 0, 1,
                  "entropy bonus weight"),
    SRL_CFG_BOOL(T, algo.reward_normalize, "algo_cfgs.reward_normalize", "False",
                 "normalize rewards"),
    SRL_CFG_BOOL(T, algo.cost_normalize, "algo_cfgs.cost_normalize", "False", "normalize costs"),
    SRL_CFG_BOOL(T, algo.obs_normalize, "algo_cfgs.obs_normalize", "True",
                 "normalize observations with running statistics"),
    SRL_CFG_BOOL(T, algo.kl_early_stop, "algo_cfgs.kl_early_stop", "True",
                 "stop the update passes when KL exceeds target_kl"),
    SRL_CFG_BOOL(T, algo.use_max_grad_norm, "algo_cfgs.use_max_grad_norm", "True",
                 "clip gradient norms"),
    SRL_CFG_FLOAT(T, algo.max_grad_norm, "algo_cfgs.max_grad_norm", "40.0", 0, INFINITY,
                  "gradient norm bound"),
    SRL_CFG_BOOL(T, algo.use_critic_norm, "algo_cfgs.use_critic_norm", "True",
                 "L2 penalty on critic weights"),
    SRL_CFG_FLOAT(T, algo.critic_norm_coef, "algo_cfgs.critic_norm_coef", "0.001", 0, INFINITY,
                  "critic L2 penalty weight"),
    SRL_CFG_FLOAT(T, algo.gamma, "algo_cfgs.gamma", "0.99", 0, 1, "reward discount"),
    SRL_CFG_FLOAT(T, algo.cost_gamma, "algo_cfgs.cost_gamma", "0.99", 0, 1, "cost discount"),
    SRL_CFG_FLOAT(T, algo.lam, "algo_cfgs.lam", "0.95", 0, 1, "GAE lambda for rewards"),
    SRL_CFG_FLOAT(T, algo.lam_c, "algo_cfgs.lam_c", "0.95", 0, 1, "GAE lambda for costs"),
    SRL_CFG_FLOAT(T, algo.clip, "algo_cfgs.clip", "0.2", 0, 1, "PPO ratio clip"),
    SRL_CFG_CHOICE(T, algo.adv_estimation_method, "algo_cfgs.adv_estimation_method", "gae",
                   "gae|vtrace|plain", "advantage estimator"),
    SRL_CFG_BOOL(T, algo.standardized_rew_adv, "algo_cfgs.standardized_rew_adv", "True",
                 "standardize reward advantages"),
    SRL_CFG_BOOL(T, algo.standardized_cost_adv, "algo_cfgs.standardized_cost_adv", "True",
                 "centre cost advantages"),
    SRL_CFG_FLOAT(T, algo.penalty_coef, "algo_cfgs.penalty_coef", "0.0", 1, 0,
                  "fixed cost penalty"),
    SRL_CFG_BOOL(T, algo.use_cost, "algo_cfgs.use_cost", "True", "learn a cost critic"),
    SRL_CFG_BOOL(T, logger.use_tensorboard, "logger_cfgs.use_tensorboard", "True",
                 "write event files"),
    SRL_CFG_INT(T, logger.save_model_freq, "logger_cfgs.save_model_freq", "100", 1, INT_MAX,
                "epochs between checkpoints"),
    SRL_CFG_INT(T, logger.window_lens, "logger_cfgs.window_lens", "100", 1, 100000,
                "episodes averaged in EpCost"),
    SRL_CFG_STRING(T, logger.log_dir, "logger_cfgs.log_dir", "./runs", "where runs go"),
    SRL_CFG_CHOICE(T, model.weight_initialization_mode, "model_cfgs.weight_initialization_mode",
                   "kaiming_uniform", "kaiming_uniform|xavier_normal|orthogonal",
                   "initializer of the linear layers"),
    SRL_CFG_CHOICE(T, model.actor_type, "model_cfgs.actor_type", "gaussian_learning",
                   "gaussian_learning|gaussian_sac", "policy head"),
    SRL_CFG_BOOL(T, model.linear_lr_decay, "model_cfgs.linear_lr_decay", "True",
                 "decay the actor lr linearly to 0"),
    SRL_CFG_BOOL(T, model.exploration_noise_anneal, "model_cfgs.exploration_noise_anneal", "False",
                 "anneal the policy std"),
    SRL_CFG_FLOAT_LIST(T, model.std_range, model.n_std_range, "model_cfgs.std_range", "[0.5, 0.1]",
                       0, 10, "policy std at the start and the end of annealing"),
    SRL_CFG_INT_LIST(T, model.actor.hidden_sizes, model.actor.n_hidden_sizes,
                     "model_cfgs.actor.hidden_sizes", "[64, 64]", 1, 4096, "actor layer widths"),
    SRL_CFG_CHOICE(T, model.actor.activation, "model_cfgs.actor.activation", "tanh",
                   "tanh|relu|gelu|identity", "actor hidden activation"),
    SRL_CFG_FLOAT(T, model.actor.lr, "model_cfgs.actor.lr", "0.0003", 0, 1, "actor learning rate"),
    SRL_CFG_INT_LIST(T, model.critic.hidden_sizes, model.critic.n_hidden_sizes,
                     "model_cfgs.critic.hidden_sizes", "[64, 64]", 1, 4096, "critic layer widths"),
    SRL_CFG_CHOICE(T, model.critic.activation, "model_cfgs.critic.activation", "tanh",
                   "tanh|relu|gelu|identity", "critic hidden activation"),
    SRL_CFG_FLOAT(T, model.critic.lr, "model_cfgs.critic.lr", "0.0003", 0, 1,
                  "critic learning rate"),
    SRL_CFG_FLOAT(T, lagrange.cost_limit, "lagrange_cfgs.cost_limit", "25.0", 0, INFINITY,
                  "episode cost the policy must stay under"),
    SRL_CFG_FLOAT(T, lagrange.lagrangian_multiplier_init,
                  "lagrange_cfgs.lagrangian_multiplier_init", "0.001", 0, INFINITY,
                  "initial lambda"),
    SRL_CFG_FLOAT(T, lagrange.lambda_lr, "lagrange_cfgs.lambda_lr", "0.035", 0, 1,
                  "learning rate of lambda"),
    SRL_CFG_CHOICE(T, lagrange.lambda_optimizer, "lagrange_cfgs.lambda_optimizer", "\"Adam\"",
                   "Adam|SGD", "optimizer of lambda"),
};
#undef T

static const srl_cfg_schema ppolag_schema = SRL_CFG_SCHEMA("ppo_lag", ppolag_fields);

#endif  // SRL_TEST_CONFIG_PPOLAG_SCHEMA_H

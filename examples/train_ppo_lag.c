// train_ppo_lag.c: train a constrained policy with PPO-Lag through the library API.
//
//   example_train_ppo_lag [ENV_ID] [TOTAL_STEPS] [COST_LIMIT]
//
// Builds the config in code (OmniSafe's PPO-Lag defaults, then a few changes), creates the
// trainer, runs it epoch by epoch printing one line each, then writes final.safetensors and
// summary.json. Defaults: SimplePointGoal, 60000 steps, cost limit 2: a few seconds of CPU.
// The run directory lands in ./runs/; `saferl eval <run dir>` evaluates the result, and
// example_run_policy replays it.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/onpolicy.h"
#include "core/error.h"

int main(int argc, char **argv) {
  const char *env_id = argc > 1 ? argv[1] : "SimplePointGoal";
  int total_steps = argc > 2 ? atoi(argv[2]) : 60000;
  double cost_limit = argc > 3 ? atof(argv[3]) : 2.0;

  // init: OmniSafe's PPOLag defaults, then this experiment's changes
  srl_onpolicy_config cfg;
  if (srl_onpolicy_config_defaults(&cfg, "PPOLag") < 0) goto fail_cfg;
  snprintf(cfg.env_id, sizeof cfg.env_id, "%s", env_id);
  cfg.seed = 0;
  cfg.train_cfgs.total_steps = total_steps;
  cfg.lagrange_cfgs.cost_limit = cost_limit;
  if (!strcmp(env_id, "SimplePointGoal")) {
    // short episodes and a short run: smaller epochs, a faster multiplier
    cfg.algo_cfgs.steps_per_epoch = 2000;
    cfg.algo_cfgs.update_iters = 10;
    cfg.logger_cfgs.window_lens = 20;
    cfg.logger_cfgs.save_model_freq = 10;
    cfg.lagrange_cfgs.lambda_lr = 0.1;
  }
  // the same overrides a command line would give, as text
  const char *sets[] = {"logger_cfgs.log_dir=runs"};
  for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
    if (srl_config_set(srl_onpolicy_schema(), &cfg, sets[i]) < 0) goto fail_cfg;

  srl_onpolicy_options opt = {.out_dir = NULL, .quiet = 1};
  srl_onpolicy *trainer = NULL;
  if (srl_onpolicy_create(&trainer, &cfg, &opt) < 0) {
    fprintf(stderr, "cannot start training: %s\n", srl_errmsg());
    return 1;
  }
  printf("PPO-Lag on %s, %d epochs, cost limit %g -> %s\n", env_id,
         srl_onpolicy_epochs_total(trainer), cost_limit, srl_onpolicy_run_dir(trainer));
  srl_onpolicy_handle_signals();  // Ctrl-C saves a checkpoint and stops

  // loop: one epoch at a time (rollout, λ update, PPO passes, progress.csv row)
  int rc = 0;
  while (!srl_onpolicy_done(trainer)) {
    rc = srl_onpolicy_epoch(trainer);
    if (rc < 0) break;
    const srl_onpolicy_row *r = srl_onpolicy_last_row(trainer);
    printf(
        "epoch %3d  steps %8lld  return %7.3f  cost %7.3f  lambda %6.3f  kl %.4f  %6.0f steps/s\n",
        r->epoch, r->total_steps, r->ep_ret, r->ep_cost, r->lagrange, r->up.kl, r->fps);
  }
  if (rc == 0) rc = srl_onpolicy_finish(trainer);
  if (rc < 0)
    fprintf(stderr, "training stopped: %s\n", srl_errmsg());
  else
    printf("final policy: %s/final.safetensors\n", srl_onpolicy_run_dir(trainer));

  // free
  srl_onpolicy_destroy(trainer);
  return rc < 0 ? 1 : 0;

fail_cfg:
  fprintf(stderr, "bad config: %s\n", srl_errmsg());
  return 1;
}

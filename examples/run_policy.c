// run_policy.c: load a trained policy from a checkpoint and run it on its environment.
//
//   example_run_policy RUN_DIR|CHECKPOINT [EPISODES]
//
// The checkpoint knows its environment and options (the run's config is in its metadata) and
// its observation normaliser. This program creates that env, and for each episode resets it,
// feeds raw observations to srl_policy_act (normalised inside, the Gaussian mean as the
// action), rescales the action from [-1, 1] to the env's bounds as training did, and steps until
// the episode ends, printing return, cost and length.
#include <stdio.h>
#include <stdlib.h>

#include "algos/onpolicy.h"
#include "core/error.h"
#include "envs/env.h"
#include "envs/wrappers.h"

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s RUN_DIR|CHECKPOINT [EPISODES]\n", argv[0]);
    return 2;
  }
  int episodes = argc > 2 ? atoi(argv[2]) : 3;

  // the policy (one observation at a time) and its env, with [-1, 1] actions as in training
  srl_policy *policy = NULL;
  if (srl_policy_load(&policy, argv[1], "cpu", 1) < 0) {
    fprintf(stderr, "%s\n", srl_errmsg());
    return 1;
  }
  srl_env *env = NULL, *scaled = NULL;
  if (srl_env_create(&env, policy->cfg.env_id, policy->cfg.env_cfgs.options) < 0 ||
      srl_wrap_action_rescale(&scaled, env) < 0) {
    fprintf(stderr, "%s\n", srl_errmsg());
    srl_env_destroy(env);
    srl_policy_destroy(policy);
    return 1;
  }
  printf("%s: %s trained on %s for %lld steps\n", policy->path, policy->cfg.algo,
         policy->cfg.env_id, policy->step);

  float *obs = malloc(sizeof(float) * (size_t)scaled->obs_space.dim);
  float *act = malloc(sizeof(float) * (size_t)scaled->act_space.dim);
  int rc = obs && act ? 0 : SRL_ENOMEM;
  for (int ep = 0; rc == 0 && ep < episodes; ep++) {
    rc = srl_env_reset(scaled, 1000 + (uint64_t)ep, obs);
    double ret = 0, cost = 0;
    int len = 0;
    srl_step st = {0};
    while (rc == 0 && !st.terminated && !st.truncated) {
      rc = srl_policy_act(policy, act, obs, 1, 1, NULL);  // deterministic: the mean
      if (rc == 0) rc = srl_env_step(scaled, act, obs, &st);
      ret += st.reward;
      cost += st.cost;
      len++;
    }
    if (rc == 0)
      printf("episode %d: return %8.3f  cost %6.1f  length %4d%s\n", ep, ret, cost, len,
             st.terminated ? " (terminated)" : "");
  }
  if (rc < 0) fprintf(stderr, "%s\n", srl_errmsg());
  free(obs);
  free(act);
  srl_env_destroy(scaled);
  srl_policy_destroy(policy);
  return rc < 0 ? 1 : 0;
}

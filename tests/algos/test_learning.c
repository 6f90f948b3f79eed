// test_learning.c: PPO-Lag learns a constrained policy on the built-in SimplePointGoal in seconds,
// while unconstrained PPO with the same budget violates the limit.
//
// Both runs use the shipped configs (configs/ppo_lag/ and configs/ppo/SimplePointGoal.yaml: 30
// epochs of 2000 steps, one env, one thread). The constraint is on the expected episode cost of
// the policy, so the final policies are judged on 100 fresh sampled episodes each; the training
// curves must show the return rising and PPO-Lag paying less cost than PPO over the last third.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "algos/onpolicy.h"
#include "test.h"

#define MAX_EPOCHS 256

typedef struct curve {
  int n;
  double ret[MAX_EPOCHS], cost[MAX_EPOCHS];
  srl_eval_result eval;  // the final policy on 100 sampled episodes
  double limit, lambda, seconds;
} curve;


static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}


static double tail_mean(const double *x, int n) {
  double s = 0;
  int k = 0;
  for (int i = 2 * n / 3; i < n; i++, k++) s += x[i];
  return k ? s / k : NAN;
}


// train the shipped config of algo (seed 0, one thread) and evaluate its final policy
static int train(const char *algo_dir, curve *c) {
  const char *src = getenv("SRL_SOURCE_DIR");
  char cfg_path[600], dir[600];
  snprintf(cfg_path, sizeof cfg_path, "%s/configs/%s/SimplePointGoal.yaml", src, algo_dir);
  snprintf(dir, sizeof dir, "test_learning_runs/%s-%ld-%d", algo_dir, (long)time(NULL),
           (int)getpid());
  srl_onpolicy_config cfg;
  int rc = srl_onpolicy_config_load(&cfg, cfg_path, NULL, 0);
  CHECK_OK(rc);
  if (rc) return rc;
  CHECK_EQ_INT(cfg.train_cfgs.threads, 1);
  srl_onpolicy_options opt = {.run_dir = dir, .quiet = 1};
  srl_onpolicy *t = NULL;
  double t0 = now_s();
  CHECK_OK(rc = srl_onpolicy_create(&t, &cfg, &opt));
  if (rc) return rc;
  c->n = 0;
  while (!srl_onpolicy_done(t) && c->n < MAX_EPOCHS) {
    CHECK_OK(rc = srl_onpolicy_epoch(t));
    if (rc) break;
    const srl_onpolicy_row *r = srl_onpolicy_last_row(t);
    c->ret[c->n] = r->ep_ret;
    c->cost[c->n] = r->ep_cost;
    c->lambda = r->lagrange;
    c->n++;
  }
  if (rc == 0) CHECK_OK(rc = srl_onpolicy_finish(t));
  c->seconds = now_s() - t0;
  c->limit = cfg.lagrange_cfgs.cost_limit;
  srl_onpolicy_destroy(t);
  if (rc) return rc;

  srl_policy *p = NULL;
  CHECK_OK(rc = srl_policy_load(&p, dir, "cpu", 16));
  if (rc) return rc;
  CHECK_OK(rc = srl_policy_evaluate(p, 100, 0, 12345, 16, &c->eval, NULL, NULL, NULL));
  srl_policy_destroy(p);
  printf(
      "  %-7s %d epochs in %.1f s: ep_ret %.2f -> %.2f (last third %.2f), ep_cost last third "
      "%.2f, lambda %.3f; final policy: return %.2f, cost %.2f +- %.2f (limit %g)\n",
      algo_dir, c->n, c->seconds, c->ret[0], c->ret[c->n - 1], tail_mean(c->ret, c->n),
      tail_mean(c->cost, c->n), c->lambda, c->eval.ret_mean, c->eval.cost_mean, c->eval.cost_std,
      c->limit);
  return rc;
}


TEST(ppo_lag_keeps_the_limit_ppo_does_not) {
  if (!getenv("SRL_SOURCE_DIR")) SKIP("SRL_SOURCE_DIR is not set");
  static curve lag, ppo;
  if (train("ppo_lag", &lag) || train("ppo", &ppo)) return;
  CHECK(lag.limit == ppo.limit);

  // PPO-Lag: the return rises, the final policy's episode cost is under the limit
  CHECK(tail_mean(lag.ret, lag.n) > lag.ret[0] + 1.0);
  CHECK(lag.eval.ret_mean > 1.0);
  CHECK(lag.eval.cost_mean < lag.limit);
  CHECK(lag.lambda > 0.1);  // the multiplier did the work

  // PPO: it learns too, through the hazard, well over the limit
  CHECK(tail_mean(ppo.ret, ppo.n) > ppo.ret[0] + 1.0);
  CHECK(ppo.eval.cost_mean > 2.0 * ppo.limit);
  CHECK(tail_mean(ppo.cost, ppo.n) > ppo.limit);
  CHECK(tail_mean(lag.cost, lag.n) < tail_mean(ppo.cost, ppo.n) - 2.0);

  // well under a minute together
  CHECK(lag.seconds + ppo.seconds < 45.0);
}


int main(void) {
  if (system("mkdir -p test_learning_runs") != 0) fprintf(stderr, "cannot create a run folder\n");
  RUN(ppo_lag_keeps_the_limit_ppo_does_not);
  int rc = TEST_REPORT();
  if (rc == 0 && system("rm -rf test_learning_runs") != 0)  // kept when a check failed
    fprintf(stderr, "cannot remove test_learning_runs\n");
  return rc;
}

// test_offline_learning.c: offline learning where the unsafe region is known. On SimplePointGoal
// (a hazard disc sits on the straight path from the start to the goal) a dataset is generated
// by scripted drivers: half of the episodes take the direct path through the hazard, the other
// half detour around it on either side, all with action noise. FISOR and BC-All are trained on it
// through the offline trainer and evaluated on the env: BC-All averages the drivers, goes
// straight through the hazard and pays its cost; FISOR's policy keeps out of it and still reaches
// the goal.
//
// FISOR runs with small networks for a few thousand updates. Beside the sizes, three settings
// differ from the reference so that the feasibility values settle in that time: γ = 0.9 and
// polyak 0.02 (the HJ backup's fixed point −1 of the safe states is reached in tens of target
// generations instead of hundreds), and h = ±1 (cost_scale 1: the +25 targets of the hazard
// states would bleed into the safe region through critics this small). The env's goal is widened
// to 0.3 so that small policies reach it reliably.
//
// SRL_OFFLINE_LEARNING_STEPS overrides FISOR's update count (for experiments).
#define _GNU_SOURCE
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "algos/offline/dataset.h"
#include "algos/offline/trainer.h"
#include "core/rng.h"
#include "envs/env.h"
#include "envs/simple/simple.h"
#include "tests/test.h"

#define ENV "SimplePointGoal"
#define ENV_OPTIONS "{goal_radius: 0.3, goal_distance_min: 2.0}"
#define EPISODES 400  // in the dataset
#define EVAL_EPISODES 30
#define HAZARD_R 0.4  // SimplePointGoal's default hazard radius
#define NOISE 0.2     // action noise of the drivers

static char tmp_dir[256], data_path[512];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}


//---- the scripted policies
//-------------------------------------------------------------------------

// a scripted driver's episode
typedef struct driver {
  int detour;     // 0: straight at the goal; ±1: around the hazard on that side
  double margin;  // clearance beyond the hazard radius
  int passed;     // the detour's waypoint is behind
} driver;

// an action (in [-1, 1]) from obs = [p, v, goal − p, hazard − p], plus noise: towards the goal,
// or first towards a waypoint beside the hazard
static void drive(driver *d, const float *obs, srl_rng *rng, float *act) {
  double gx = obs[4], gy = obs[5], hx = obs[6], hy = obs[7];
  double tx = gx, ty = gy;
  if (d->detour && !d->passed) {
    // the waypoint beside the hazard, off the start-goal line (goal − hazard is parallel to it)
    double lx = gx - hx, ly = gy - hy, ln = hypot(lx, ly);
    double px = -ly / ln * d->detour, py = lx / ln * d->detour;
    double w = HAZARD_R + d->margin;
    tx = hx + px * w, ty = hy + py * w;
    // passed once the point is beyond the hazard along the line
    if (-(hx * lx + hy * ly) / ln > 0.05) d->passed = 1;
  }
  double n = hypot(tx, ty);
  double ax = n > 1e-6 ? tx / n : 0, ay = n > 1e-6 ? ty / n : 0;
  ax += NOISE * srl_rng_normal(rng);
  ay += NOISE * srl_rng_normal(rng);
  act[0] = (float)(ax > 1 ? 1 : ax < -1 ? -1 : ax);
  act[1] = (float)(ay > 1 ? 1 : ay < -1 ? -1 : ay);
}


// EPISODES episodes: half direct, half detours (as many on each side) with clearances 0.3-0.6
static int make_dataset(void) {
  long long cap = (long long)EPISODES * SRL_SIMPLE_POINT_GOAL_STEPS;
  srl_dataset *d = NULL;
  SRL_TRY(srl_dataset_create(&d, cap, SRL_SIMPLE_POINT_GOAL_OBS, SRL_SIMPLE_POINT_GOAL_ACT));
  srl_env *env = NULL;
  srl_rng *rng = NULL;
  int rc = srl_env_create(&env, ENV, ENV_OPTIONS);
  if (rc == 0) rc = srl_rng_create(&rng, 2024, 0);
  const int O = SRL_SIMPLE_POINT_GOAL_OBS, A = SRL_SIMPLE_POINT_GOAL_ACT;
  long long r = 0;
  for (int e = 0; rc == 0 && e < EPISODES; e++) {
    driver dv = {0, 0, 0};
    double u = srl_rng_uniform(rng);
    if (u >= 0.5) dv.detour = u < 0.75 ? 1 : -1;
    dv.margin = 0.3 + 0.3 * srl_rng_uniform(rng);
    float obs[SRL_SIMPLE_POINT_GOAL_OBS];
    rc = srl_env_reset(env, 1000 + (uint64_t)e, obs);
    for (int done = 0; rc == 0 && !done; r++) {
      float *a = d->act + r * A;
      drive(&dv, obs, rng, a);
      memcpy(d->obs + r * O, obs, sizeof obs);
      srl_step st;
      rc = srl_env_step(env, a, obs, &st);
      memcpy(d->next_obs + r * O, obs, sizeof obs);
      d->reward[r] = st.reward;
      d->cost[r] = st.cost;
      d->terminal[r] = (uint8_t)st.terminated;
      d->timeout[r] = (uint8_t)(!st.terminated && st.truncated);
      done = st.terminated || st.truncated;
    }
  }
  d->n = r;
  if (rc == 0) rc = srl_dataset_index(d);
  if (rc == 0) rc = srl_dataset_write(d, data_path);
  srl_rng_destroy(rng);
  srl_env_destroy(env);
  srl_dataset_destroy(d);
  return rc;
}


//---- training and evaluation
//-------------------------------------------------------------------------

// train one algorithm with the given overrides and evaluate it; 0 or a negative status
static int train_eval(const char *algo, const char *const *extra, int n_extra,
                      srl_offline_eval_result *res, double *seconds) {
  srl_offline_config *c = NULL;
  SRL_TRY(srl_offline_config_create(&c));
  char s0[64], s1[600], s2[300];
  snprintf(s0, sizeof s0, "algo=%s", algo);
  snprintf(s1, sizeof s1, "dataset=%s", data_path);
  snprintf(s2, sizeof s2, "log_dir=%s/runs", tmp_dir);
  const char *sets[32] = {s0,
                          "env_id=" ENV,
                          "env_options=\"" ENV_OPTIONS "\"",
                          s1,
                          s2,
                          "train.eval_every=0",
                          "train.log_every=500",
                          "train.save_every=1000000",
                          "train.batch_size=256",
                          "eval.episodes=0",
                          "eval.seed=77",
                          "task.cost_limit=0",
                          "task.reward_scale=10"};
  int n = 13;
  for (int i = 0; i < n_extra && n < 32; i++) sets[n++] = extra[i];
  int rc = srl_offline_config_load(c, NULL, sets, n);
  srl_offline *t = NULL;
  srl_offline_options opt = {.quiet = 1};
  double t0 = now_s();
  if (rc == 0) rc = srl_offline_create(&t, c, &opt);
  if (rc == 0) rc = srl_offline_train(t);
  *seconds = now_s() - t0;
  if (rc == 0) rc = srl_offline_eval_now(t, EVAL_EPISODES, res, NULL);
  srl_offline_destroy(t);
  srl_offline_config_destroy(c);
  return rc;
}


TEST(fisor_avoids_the_hazard_bc_all_does_not) {
  double t0 = now_s();
  CHECK_OK(make_dataset());
  srl_dataset *d = NULL;
  srl_dataset_read_options ro = {.obs_dim = SRL_SIMPLE_POINT_GOAL_OBS,
                                 .act_dim = SRL_SIMPLE_POINT_GOAL_ACT};
  CHECK_OK(srl_dataset_read(&d, data_path, &ro));
  if (!d) return;
  double cost_all = 0;
  long long unsafe = 0;
  for (long long e = 0; e < d->n_episodes; e++) {
    cost_all += d->ep_cost[e];
    unsafe += d->ep_cost[e] > 0;
  }
  printf("  dataset: %lld transitions, %lld episodes, %lld with cost, mean cost %.2f (%.1f s)\n",
         d->n, d->n_episodes, unsafe, cost_all / d->n_episodes, now_s() - t0);
  // both kinds of driving are there
  CHECK(unsafe > 3 * d->n_episodes / 10 && unsafe < 7 * d->n_episodes / 10);
  srl_dataset_destroy(d);

  // BC-All: OSRL's MLP behaviour cloning of every transition
  srl_offline_eval_result bc, fisor;
  double s_bc = 0, s_fisor = 0;
  const char *bc_sets[] = {"train.steps=2000", "bc.actor_hidden=[64, 64]"};
  CHECK_OK(train_eval("BCAll", bc_sets, 2, &bc, &s_bc));

  // FISOR with small networks
  char steps[64] = "train.steps=3000";
  const char *env_steps = getenv("SRL_OFFLINE_LEARNING_STEPS");
  if (env_steps) snprintf(steps, sizeof steps, "train.steps=%s", env_steps);
  const char *fisor_sets[] = {steps,
                              "fisor.gamma=0.9",
                              "fisor.tau=0.02",
                              "fisor.cost_scale=1",
                              "fisor.critic_hidden=[128, 128]",
                              "fisor.critic_lr=2e-3",
                              "fisor.value_lr=2e-3",
                              "fisor.actor_hidden=64",
                              "fisor.actor_blocks=2",
                              "fisor.actor_res_hidden=64",
                              "fisor.time_dim=16",
                              "fisor.cond_hidden=[32, 32]",
                              "fisor.actor_splits=1",
                              "fisor.critic_batch=256",
                              "fisor.actor_lr=1e-3",
                              "fisor.decay_steps=0",
                              "fisor.actor_ema=0.005"};
  CHECK_OK(train_eval("FISOR", fisor_sets, (int)(sizeof fisor_sets / sizeof *fisor_sets), &fisor,
                      &s_fisor));
  printf("  BC-All: return %.3f, cost %.2f ± %.2f, goal %.0f%% (%.1f s)\n", bc.ret_mean,
         bc.cost_mean, bc.cost_std, 100 * bc.goal_rate, s_bc);
  printf("  FISOR:  return %.3f, cost %.2f ± %.2f, goal %.0f%% (%.1f s)\n", fisor.ret_mean,
         fisor.cost_mean, fisor.cost_std, 100 * fisor.goal_rate, s_fisor);
  // BC-All drives through the hazard; FISOR's cost is well below it and it still reaches the goal
  CHECK(bc.cost_mean > 4.0);
  CHECK(fisor.cost_mean < 0.5 * bc.cost_mean);
  CHECK(fisor.goal_rate >= 0.7);
  CHECK(fisor.ret_mean > 0.8 * bc.ret_mean);
}


static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}


int main(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/srl_offline_learning_XXXXXX");
  if (!mkdtemp(tmp_dir)) return 1;
  snprintf(data_path, sizeof data_path, "%s/point_goal.hdf5", tmp_dir);
  RUN(fisor_avoids_the_hazard_bc_all_does_not);
  nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return TEST_REPORT();
}

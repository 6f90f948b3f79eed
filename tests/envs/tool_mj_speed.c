// tool_mj_speed.c: the cost of the env API over raw MuJoCo for the velocity tasks. For each task
// it times env steps through srl_env_step and runs mujoco-testspeed (Debian's libmujoco-samples)
// on the same MJCF for the same number of MuJoCo steps, then prints
//   env steps/s × MuJoCo steps per env step ÷ testspeed's steps/s   (the target is ≥ 0.95).
// Both drive the model the same way: from the reference state, controls at the middle of their
// range plus testspeed's small deterministic noise (Halton sequence, ±1% of the range), no
// resets. The two sides are timed in turn, `--reps` times each (so both see the machine in the
// same state), and the best run of each counts.
//
//   tool_mj_speed [--env ID] [--mj-steps N] [--reps R] [--json]
//
// The assets folder is found as the library finds it (SRL_SOURCE_DIR or SRL_ASSETS_DIR).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "envs/env.h"
#include "envs/mujoco/mj_env.h"
#include "envs/mujoco/velocity.h"

static const char *IDS[] = {"SafetyHalfCheetahVelocity", "SafetyHopperVelocity",
                            "SafetyWalker2dVelocity",    "SafetyAntVelocity",
                            "SafetySwimmerVelocity",     "SafetyHumanoidVelocity"};
static const char *ASSETS[] = {"half_cheetah.xml", "hopper.xml",  "walker2d.xml",
                               "ant.xml",          "swimmer.xml", "humanoid.xml"};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

// the radical inverse of i in base b (MuJoCo's mju_Halton)
static double halton(int i, int b) {
  double f = 1.0 / b, h = 0;
  while (i > 0) {
    h += f * (i % b);
    i /= b;
    f /= b;
  }
  return h;
}

// env steps per second of one run from the reference state with testspeed's control noise
static double env_rate(const char *id, long env_steps) {
  srl_env *env = NULL;
  if (srl_env_create(&env, id, "reset_noise_scale: 0") < 0) {
    fprintf(stderr, "tool_mj_speed: %s\n", srl_errmsg());
    return -1;
  }
  int nu = env->act_space.dim;
  float *obs = malloc(sizeof(float) * env->obs_space.dim);
  float *acts = malloc(sizeof(float) * nu * (size_t)env_steps);
  for (long i = 0; i < env_steps; i++)
    for (int j = 0; j < nu; j++) {
      double c = 0.5 * (env->act_space.high[j] + env->act_space.low[j]);
      double r = 0.5 * (env->act_space.high[j] - env->act_space.low[j]) * 0.01;
      acts[i * nu + j] = (float)(c + r * (2 * halton((int)i, j + 2) - 1));
    }
  double rate = -1;
  srl_env_reset(env, 0, obs);
  srl_step st;
  double t0 = now_s();
  long i = 0;
  for (; i < env_steps; i++)
    if (srl_env_step(env, acts + i * nu, obs, &st) < 0) break;
  if (i == env_steps)
    rate = env_steps / (now_s() - t0);
  else
    fprintf(stderr, "tool_mj_speed: %s\n", srl_errmsg());
  free(acts);
  free(obs);
  srl_env_destroy(env);
  return rate;
}

// mujoco-testspeed's single-thread steps per second in one run
static double testspeed_rate(const char *asset, long mj_steps) {
  char path[SRL_MJ_PATH_MAX + 64], cmd[2 * SRL_MJ_PATH_MAX];
  if (srl_mj_asset_path(path, sizeof path, asset) < 0) {
    fprintf(stderr, "tool_mj_speed: %s\n", srl_errmsg());
    return -1;
  }
  snprintf(cmd, sizeof cmd, "mujoco-testspeed '%s' %ld 1 0.01 2>&1", path, mj_steps);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  char line[512];
  double rate = -1;
  while (fgets(line, sizeof line, p))
    if (strstr(line, "Steps per second")) rate = atof(strchr(line, ':') + 1);
  pclose(p);
  if (rate < 0)
    fprintf(stderr,
            "tool_mj_speed: mujoco-testspeed gave no rate (is libmujoco-samples "
            "installed?)\n");
  return rate;
}

int main(int argc, char **argv) {
  const char *only = NULL;
  long mj_steps = 20000;
  int reps = 3, json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--env") && i + 1 < argc)
      only = argv[++i];
    else if (!strcmp(argv[i], "--mj-steps") && i + 1 < argc)
      mj_steps = atol(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
      reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else {
      fprintf(stderr, "usage: tool_mj_speed [--env ID] [--mj-steps N] [--reps R] [--json]\n");
      return 2;
    }
  }
  if (mj_steps < 100 || reps < 1) return 2;
  int worst_ok = 1, first = 1;
  if (json)
    printf("[");
  else
    printf("%-26s %6s %12s %14s %14s %7s\n", "task", "skip", "env steps/s", "mj steps/s (env)",
           "testspeed", "ratio");
  for (int k = 0; k < 6; k++) {
    if (only && strcmp(only, IDS[k])) continue;
    srl_env *env = NULL;
    if (srl_env_create(&env, IDS[k], NULL) < 0) {
      fprintf(stderr, "tool_mj_speed: %s\n", srl_errmsg());
      return 1;
    }
    int skip = srl_velocity_sim(env)->frame_skip;
    srl_env_destroy(env);
    double er = 0, tr = 0;
    for (int rep = 0; rep < reps; rep++) {
      double e = env_rate(IDS[k], mj_steps / skip), t = testspeed_rate(ASSETS[k], mj_steps);
      if (e < 0 || t < 0) return 1;
      if (e > er) er = e;
      if (t > tr) tr = t;
    }
    double ratio = er * skip / tr;
    worst_ok &= ratio >= 0.95;
    if (json)
      printf(
          "%s{\"env\": \"%s\", \"env_steps_per_s\": %.1f, \"mj_steps_per_env_step\": %d, "
          "\"testspeed_steps_per_s\": %.1f, \"ratio\": %.4f}",
          first ? "" : ", ", IDS[k], er, skip, tr, ratio);
    else
      printf("%-26s %6d %12.0f %14.0f %14.0f %7.3f\n", IDS[k], skip, er, er * skip, tr, ratio);
    first = 0;
    fflush(stdout);
  }
  if (json) printf("]\n");
  return worst_ok ? 0 : 3;
}

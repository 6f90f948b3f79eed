// tool_nav_bench.c: speed of a navigation task against bare MuJoCo on the same model: env steps
// per second (lidar, sensors, reward and cost included) times MuJoCo steps per env step, over
// the rate of plain mj_step calls with the same controls from the same reset.
// usage: tool_nav_bench [ID] [env steps] [rounds]; prints one JSON line.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/error.h"
#include "envs/env.h"
#include "envs/mujoco/nav.h"
#include "envs/wrappers.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);  // CPU time: steady on a busy machine
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  const char *id = argc > 1 ? argv[1] : "SafetyPointGoal1";
  int n = argc > 2 ? atoi(argv[2]) : 20000, rounds = argc > 3 ? atoi(argv[3]) : 3;
  if (n < 1 || rounds < 1) return fprintf(stderr, "usage: tool_nav_bench [ID] [steps] [rounds]\n"), 2;
  srl_env *env = NULL;
  // the bare env: no time limit, so both loops run the same uninterrupted episode
  if (srl_env_create(&env, id, "num_steps: 100000000") < 0)
    return fprintf(stderr, "tool_nav_bench: %s\n", srl_errmsg()), 1;
  float *act = malloc(sizeof(float) * 2 * (size_t)n), obs[256];
  unsigned s = 12345;
  for (int i = 0; i < 2 * n; i++) {  // a fixed pseudo-random control sequence in [-1, 1]
    s = s * 1103515245u + 12345u;
    act[i] = (float)((s >> 8) & 0xffff) / 32767.5f - 1.0f;
  }
  double best_env = 1e30, best_raw = 1e30;
  for (int r = 0; r < rounds; r++) {
    // env steps through srl_env_step; the registered time limit is looked through (its inner
    // env is stepped) so both loops run one uninterrupted episode from the same reset
    srl_env *inner = srl_env_unwrap(env) ? srl_env_unwrap(env) : env;
    srl_env_reset(inner, 7, obs);
    srl_step st;
    double t0 = now();
    for (int t = 0; t < n; t++) {
      srl_env_step(inner, act + 2 * t, obs, &st);
      if (st.terminated || st.truncated) srl_env_reset(inner, (uint64_t)t, obs);
    }
    double te = now() - t0, tr = 0;
    if (srl__nav_bench_raw(env, 7, act, n, &tr) < 0)
      return fprintf(stderr, "tool_nav_bench: %s\n", srl_errmsg()), 1;
    if (te < best_env) best_env = te;
    if (tr < best_raw) best_raw = tr;
  }
  int fs = env->physics_steps_per_step;
  double env_rate = n / best_env, raw_rate = (double)n * fs / best_raw;
  printf("{\"env\": \"%s\", \"env_steps_per_s\": %.1f, \"mj_steps_per_env_step\": %d, "
         "\"raw_mj_steps_per_s\": %.1f, \"ratio\": %.4f}\n",
         id, env_rate, fs, raw_rate, env_rate * fs / raw_rate);
  free(act);
  srl_env_destroy(env);
  return 0;
}

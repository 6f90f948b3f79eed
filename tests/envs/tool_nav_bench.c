// tool_nav_bench.c: speed of a navigation task against bare MuJoCo on the same model: env steps
// per second (lidar, sensors, reward and cost included) times MuJoCo steps per env step, over
// the rate of plain mj_step calls with the same controls from the same reset. Times are the
// thread's CPU time, alternating env and bare runs, medians over the rounds.
// usage: tool_nav_bench [ID] [env steps] [rounds] [options YAML]; prints one JSON line.
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

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  const char *id = argc > 1 ? argv[1] : "SafetyPointGoal1";
  int n = argc > 2 ? atoi(argv[2]) : 2000, rounds = argc > 3 ? atoi(argv[3]) : 15;
  if (n < 1 || rounds < 1)
    return fprintf(stderr, "usage: tool_nav_bench [ID] [steps] [rounds]\n"), 2;
  srl_env *env = NULL;
  // no episode end of the env's own, so both loops run the same uninterrupted episode
  char opts[512];
  snprintf(opts, sizeof opts, "{num_steps: 100000000%s%s}", argc > 4 ? ", " : "",
           argc > 4 ? argv[4] : "");
  if (srl_env_create(&env, id, opts) < 0)
    return fprintf(stderr, "tool_nav_bench: %s\n", srl_errmsg()), 1;
  float *act = malloc(sizeof(float) * 2 * (size_t)n), obs[256];
  unsigned s = 12345;
  for (int i = 0; i < 2 * n; i++) {  // a fixed pseudo-random control sequence in [-1, 1]
    s = s * 1103515245u + 12345u;
    act[i] = (float)((s >> 8) & 0xffff) / 32767.5f - 1.0f;
  }
  // rounds of an env run then a bare run over the same steps; the median of each, and the
  // median of the per-round ratios (robust to other load on the machine)
  enum { MAX_ROUNDS = 101 };
  if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
  double te[MAX_ROUNDS], tr[MAX_ROUNDS], ratio[MAX_ROUNDS];
  int fs = env->physics_steps_per_step;
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
    te[r] = now() - t0;
    if (srl__nav_bench_raw(env, 7, act, n, &tr[r]) < 0)
      return fprintf(stderr, "tool_nav_bench: %s\n", srl_errmsg()), 1;
    ratio[r] = tr[r] / te[r];
  }
  qsort(te, (size_t)rounds, sizeof *te, cmp_double);
  qsort(tr, (size_t)rounds, sizeof *tr, cmp_double);
  qsort(ratio, (size_t)rounds, sizeof *ratio, cmp_double);
  double env_rate = n / te[rounds / 2], raw_rate = (double)n * fs / tr[rounds / 2];
  printf(
      "{\"env\": \"%s\", \"env_steps_per_s\": %.1f, \"mj_steps_per_env_step\": %d, "
      "\"raw_mj_steps_per_s\": %.1f, \"ratio\": %.4f, \"rounds\": %d}\n",
      id, env_rate, fs, raw_rate, ratio[rounds / 2], rounds);
  free(act);
  srl_env_destroy(env);
  return 0;
}

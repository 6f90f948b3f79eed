// tool_remote_rollout.c: one episode of any env through srl_env_create, printed as JSON, so a
// Python test can replay it against the same server and compare (the CARLA adapter's test uses
// it with "remote:tcp://..." ids).
//
//   tool_remote_rollout ENV_ID SEED MAX_STEPS [OPTIONS_YAML]
//
// The actions are a fixed sequence, a_t = [0.3·sin(0.15·t), 0.8], stepped until terminated,
// truncated or MAX_STEPS. Output (one JSON object on stdout, floats with 9 significant digits so
// float32 values round-trip): {"env_id", "obs_dim", "act_dim", "max_episode_steps", "steps",
// "return", "cost", "terminated", "truncated", "obs0": [...], "obs_last": [...],
// "actions": [[...], ...]}. On an error: "error <TAB> SRL_E... <TAB> message" on stderr, exit 1.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "envs/env.h"

#define MAX_DIM 1024
#define MAX_STEPS 10000


static void print_floats(const char *key, const float *x, int n) {
  printf("\"%s\": [", key);
  for (int i = 0; i < n; i++) printf("%s%.9g", i ? ", " : "", (double)x[i]);
  printf("]");
}


static int fail(int rc) {
  fprintf(stderr, "error\t%s\t%s\n", srl_errname(rc), srl_errmsg());
  return 1;
}


int main(int argc, char **argv) {
  if (argc < 4 || argc > 5) {
    fprintf(stderr, "usage: %s ENV_ID SEED MAX_STEPS [OPTIONS_YAML]\n", argv[0]);
    return 2;
  }
  uint64_t seed = strtoull(argv[2], NULL, 10);
  int max_steps = atoi(argv[3]);
  if (max_steps < 1 || max_steps > MAX_STEPS) {
    fprintf(stderr, "MAX_STEPS must be 1..%d\n", MAX_STEPS);
    return 2;
  }

  srl_env *env = NULL;
  int rc = srl_env_create(&env, argv[1], argc == 5 ? argv[4] : NULL);
  if (rc < 0) return fail(rc);
  int od = env->obs_space.dim, ad = env->act_space.dim;
  if (od > MAX_DIM || ad > MAX_DIM) {
    srl_env_destroy(env);
    fprintf(stderr, "dimensions %d/%d exceed %d\n", od, ad, MAX_DIM);
    return 1;
  }

  static float obs0[MAX_DIM], obs[MAX_DIM], act[MAX_DIM];
  static float actions[MAX_STEPS][2];
  rc = srl_env_reset(env, seed, obs0);
  if (rc < 0) {
    srl_env_destroy(env);
    return fail(rc);
  }
  memcpy(obs, obs0, sizeof(float) * (size_t)od);

  // the fixed action sequence, stepped to the episode's end
  double ret = 0.0, cost = 0.0;
  int steps = 0;
  srl_step out = {0};
  for (int t = 0; t < max_steps; t++) {
    memset(act, 0, sizeof(float) * (size_t)ad);
    act[0] = 0.3f * sinf(0.15f * (float)t);
    if (ad > 1) act[1] = 0.8f;
    actions[t][0] = act[0];
    actions[t][1] = ad > 1 ? act[1] : 0.0f;
    rc = srl_env_step(env, act, obs, &out);
    if (rc < 0) {
      srl_env_destroy(env);
      return fail(rc);
    }
    steps++;
    ret += out.reward;
    cost += out.cost;
    if (out.terminated || out.truncated) break;
  }

  printf("{\"env_id\": \"%s\", \"obs_dim\": %d, \"act_dim\": %d, \"max_episode_steps\": %d, ",
         env->id, od, ad, env->max_episode_steps);
  printf(
      "\"steps\": %d, \"return\": %.17g, \"cost\": %.17g, \"terminated\": %d, "
      "\"truncated\": %d, ",
      steps, ret, cost, out.terminated, out.truncated);
  print_floats("obs0", obs0, od);
  printf(", ");
  print_floats("obs_last", obs, od);
  printf(", \"actions\": [");
  for (int t = 0; t < steps; t++)
    printf("%s[%.9g, %.9g]", t ? ", " : "", (double)actions[t][0], (double)actions[t][1]);
  printf("]}\n");
  srl_env_destroy(env);
  return 0;
}

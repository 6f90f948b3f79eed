// tool_nav_layout.c: the layouts a navigation task draws at reset, one JSON line per seed, for
// test_nav_layout.py to compare with Safety-Gymnasium's sampling redone in NumPy.
// usage: tool_nav_layout ID SEED...
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"
#include "envs/env.h"
#include "envs/mujoco/nav.h"

int main(int argc, char **argv) {
  if (argc < 3) return fprintf(stderr, "usage: tool_nav_layout ID SEED...\n"), 2;
  srl_env *env = NULL;
  if (srl_env_create(&env, argv[1], NULL) < 0)
    return fprintf(stderr, "tool_nav_layout: %s\n", srl_errmsg()), 1;
  float obs[256];
  for (int a = 2; a < argc; a++) {
    unsigned long long seed = strtoull(argv[a], NULL, 10);
    srl_nav_probe p;
    if (srl_env_reset(env, seed, obs) < 0 || srl__nav_probe(env, &p) < 0)
      return fprintf(stderr, "tool_nav_layout: %s\n", srl_errmsg()), 1;
    printf("{\"seed\": %llu, \"agent_yaw\": %.17g, \"goal_button\": %d, \"items\": {", seed,
           p.agent_yaw, p.goal_button);
    for (int i = 0; i < p.n_items; i++)
      printf("%s\"%s\": [%.17g, %.17g]", i ? ", " : "", p.item_name[i], p.item_xy[i][0],
             p.item_xy[i][1]);
    printf("}, \"goal\": [%.17g, %.17g]}\n", p.goal_xy[0], p.goal_xy[1]);
  }
  srl_env_destroy(env);
  return 0;
}

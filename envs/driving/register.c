// register.c: registration of the built-in driving tasks (driving.c) with the env registry:
// the same task on an empty road, in regular traffic and in dense traffic (VLM-RL's CARLA
// settings: 0, 20 and 40 vehicles).
#include "core/error.h"
#include "envs/builtin.h"
#include "envs/driving/driving.h"
#include "envs/env.h"

static int create0(srl_env **out, const char *options_yaml) {
  return srl__driving_create(out, "SafetyDriving0", 0, options_yaml);
}

static int create1(srl_env **out, const char *options_yaml) {
  return srl__driving_create(out, "SafetyDriving1", 20, options_yaml);
}

static int create2(srl_env **out, const char *options_yaml) {
  return srl__driving_create(out, "SafetyDriving2", 40, options_yaml);
}


int srl__register_driving_envs(void) {
  static const srl_env_spec specs[] = {
      {"SafetyDriving0", create0, SRL_DRIVING_OBS, SRL_DRIVING_ACT, SRL_DRIVING_STEPS,
       "2-D driving: follow the route on an empty curved multi-lane road; leaving the road "
       "costs 1"},
      {"SafetyDriving1", create1, SRL_DRIVING_OBS, SRL_DRIVING_ACT, SRL_DRIVING_STEPS,
       "2-D driving among 20 IDM vehicles; collisions and leaving the road cost 1"},
      {"SafetyDriving2", create2, SRL_DRIVING_OBS, SRL_DRIVING_ACT, SRL_DRIVING_STEPS,
       "2-D driving in dense traffic (40 IDM vehicles); collisions and leaving the road cost 1"},
  };
  for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) SRL_TRY(srl_env_register(&specs[i]));
  return SRL_OK;
}

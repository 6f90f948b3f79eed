// register.c: registration of the small pure-C tasks with the env registry.
#include "core/error.h"
#include "envs/builtin.h"
#include "envs/env.h"
#include "envs/simple/simple.h"


int srl__register_simple_envs(void) {
  static const srl_env_spec specs[] = {
      {"SimplePointGoal", srl__simple_point_goal_create, SRL_SIMPLE_POINT_GOAL_OBS,
       SRL_SIMPLE_POINT_GOAL_ACT, SRL_SIMPLE_POINT_GOAL_STEPS,
       "pure-C point mass: reach the goal, a hazard disc on the straight path costs 1 per step"},
  };
  for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) SRL_TRY(srl_env_register(&specs[i]));
  return SRL_OK;
}

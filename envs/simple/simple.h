// simple.h: the small pure-C tasks in envs/simple/, each created from YAML options.
#ifndef SRL_ENVS_SIMPLE_H
#define SRL_ENVS_SIMPLE_H

#include "envs/env.h"

// SimplePointGoal: a damped point mass that must reach a goal past a hazard disc (point_goal.c)
#define SRL_SIMPLE_POINT_GOAL_OBS 8
#define SRL_SIMPLE_POINT_GOAL_ACT 2
#define SRL_SIMPLE_POINT_GOAL_STEPS 150
int srl__simple_point_goal_create(srl_env **out, const char *options_yaml);

#endif

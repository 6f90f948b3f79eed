// velocity.h: access to the simulation inside a velocity task (SafetyHalfCheetahVelocity, ...),
// for tests and tools that place the robot in a constructed state before a step.
#ifndef SRL_MJ_VELOCITY_H
#define SRL_MJ_VELOCITY_H

#include "envs/env.h"
#include "envs/mujoco/mj_env.h"

#ifdef __cplusplus
extern "C" {
#endif

// The MuJoCo simulation of a velocity task, looking through wrappers; NULL when env is not one.
// Writing qpos/qvel between steps is allowed: the next step starts from that state (positions
// the reward measures from are read before the step, from the state as it is then).
srl_mj_sim *srl_velocity_sim(srl_env *env);

#ifdef __cplusplus
}
#endif
#endif  // SRL_MJ_VELOCITY_H

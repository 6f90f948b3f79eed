// builtin.h: registration of the environments that ship with saferl; the registry calls each
// once, on first use. Each family lives in its own files.
#ifndef SRL_ENVS_BUILTIN_H
#define SRL_ENVS_BUILTIN_H

int srl__register_simple_envs(void);      // envs/simple/: small pure-C tasks
int srl__register_velocity_envs(void);    // envs/mujoco/velocity*.c
int srl__register_navigation_envs(void);  // envs/mujoco/nav*.c
int srl__register_driving_envs(void);     // envs/driving/: the 2-D driving tasks

#endif

// point_goal.c: SimplePointGoal, a tiny constrained task in pure C for tests that need learning
// to happen in seconds.
//
// A point mass in the plane, pushed by a force in [-1, 1]² against linear damping, must reach a
// goal disc; a hazard disc sits on the straight segment from the start to the goal, so the
// direct path costs and a safe policy goes around it. Each reset draws a new layout from the
// seed: start in [-1, 1]², goal at a distance in [goal_distance_min, goal_distance_max] in a
// random direction, hazard centre at 40-60% of the way. Rules (Safety-Gymnasium's goal task):
//   velocity  v <- v + dt·(accel·a − damping·v), position p <- p + dt·v (clamped to ±4, the
//             clamped axis stops)
//   reward    previous goal distance − goal distance, + goal_bonus on reaching the goal
//             (distance ≤ goal_radius), which terminates the episode
//   cost      1 while inside the hazard (distance < hazard_radius); raw cost is the depth
//             hazard_radius − distance
//   obs (8)   position, velocity, goal − position, hazard − position
// The registered time limit is 150 steps.
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/error.h"
#include "core/rng.h"
#include "envs/simple/simple.h"

#define OBS SRL_SIMPLE_POINT_GOAL_OBS
#define ACT SRL_SIMPLE_POINT_GOAL_ACT
#define ARENA 4.0      // half-size of the square the point stays in
#define HAZARD_LO 0.4  // hazard centre between these fractions of the start-goal segment
#define HAZARD_HI 0.6

typedef struct pg_opts {
  double hazard_radius, goal_radius, goal_bonus;
  double goal_distance_min, goal_distance_max;
  double dt, accel, damping;
} pg_opts;

static const srl_cfg_field pg_fields[] = {
    SRL_CFG_FLOAT(pg_opts, hazard_radius, "hazard_radius", "0.4", 0.01, 2.0,
                  "radius of the hazard disc (cost 1 inside)"),
    SRL_CFG_FLOAT(pg_opts, goal_radius, "goal_radius", "0.15", 0.01, 1.0,
                  "the goal is reached within this distance"),
    SRL_CFG_FLOAT(pg_opts, goal_bonus, "goal_bonus", "1.0", 0.0, 100.0,
                  "reward added on reaching the goal"),
    SRL_CFG_FLOAT(pg_opts, goal_distance_min, "goal_distance_min", "1.5", 0.1, 3.0,
                  "shortest start-goal distance drawn at reset"),
    SRL_CFG_FLOAT(pg_opts, goal_distance_max, "goal_distance_max", "2.5", 0.1, 3.0,
                  "longest start-goal distance drawn at reset"),
    SRL_CFG_FLOAT(pg_opts, dt, "dt", "0.1", 0.001, 1.0, "seconds per step"),
    SRL_CFG_FLOAT(pg_opts, accel, "accel", "2.0", 0.01, 100.0,
                  "acceleration at full action (per axis)"),
    SRL_CFG_FLOAT(pg_opts, damping, "damping", "2.0", 0.0, 100.0,
                  "velocity damping rate (top speed = accel / damping)"),
};
static const srl_cfg_schema pg_schema = SRL_CFG_SCHEMA("SimplePointGoal options", pg_fields);

typedef struct point_goal {
  pg_opts o;
  double px, py, vx, vy;  // the point
  double gx, gy, hx, hy;  // goal and hazard centres
  double dist_goal;       // goal distance after the last step
  double vmax;            // bound of each velocity component
  float obs_low[OBS], obs_high[OBS], act_low[ACT], act_high[ACT];
} point_goal;


// the k-th uniform number in [0, 1) of a reset seed (53 bits)
static double seed_uniform(uint64_t seed, uint64_t k) {
  return (double)(srl_hash64(seed ^ srl_hash64(k + 0x7f4a7c15ull)) >> 11) * 0x1p-53;
}


static void write_obs(const point_goal *e, float *obs) {
  obs[0] = (float)e->px;
  obs[1] = (float)e->py;
  obs[2] = (float)e->vx;
  obs[3] = (float)e->vy;
  obs[4] = (float)(e->gx - e->px);
  obs[5] = (float)(e->gy - e->py);
  obs[6] = (float)(e->hx - e->px);
  obs[7] = (float)(e->hy - e->py);
}


static int pg_reset(srl_env *env, uint64_t seed, float *obs) {
  point_goal *e = env->impl;
  const pg_opts *o = &e->o;
  double sx = 2.0 * seed_uniform(seed, 0) - 1.0, sy = 2.0 * seed_uniform(seed, 1) - 1.0;
  double th = 2.0 * M_PI * seed_uniform(seed, 2);
  double d =
      o->goal_distance_min + (o->goal_distance_max - o->goal_distance_min) * seed_uniform(seed, 3);
  double f = HAZARD_LO + (HAZARD_HI - HAZARD_LO) * seed_uniform(seed, 4);
  double ux = cos(th), uy = sin(th);
  e->px = sx, e->py = sy, e->vx = 0.0, e->vy = 0.0;
  e->gx = sx + d * ux, e->gy = sy + d * uy;
  e->hx = sx + f * d * ux, e->hy = sy + f * d * uy;
  e->dist_goal = d;
  write_obs(e, obs);
  return SRL_OK;
}


// integrate one axis: damped velocity, then position kept inside the arena
static inline void axis_step(double *p, double *v, double a, const pg_opts *o) {
  *v += o->dt * (o->accel * a - o->damping * *v);
  *p += o->dt * *v;
  if (*p > ARENA) *p = ARENA, *v = 0.0;
  if (*p < -ARENA) *p = -ARENA, *v = 0.0;
}


static int pg_step(srl_env *env, const float *action, float *obs, srl_step *out) {
  point_goal *e = env->impl;
  const pg_opts *o = &e->o;
  axis_step(&e->px, &e->vx, action[0], o);
  axis_step(&e->py, &e->vy, action[1], o);

  // reward: progress towards the goal, plus the bonus on reaching it
  double dist = hypot(e->gx - e->px, e->gy - e->py);
  double reward = e->dist_goal - dist;
  e->dist_goal = dist;
  if (dist <= o->goal_radius) {
    reward += o->goal_bonus;
    out->info.goal_met = 1;
    out->terminated = 1;
  }

  // cost: inside the hazard disc
  double dh = hypot(e->hx - e->px, e->hy - e->py);
  if (dh < o->hazard_radius) {
    out->info.raw_cost = (float)(o->hazard_radius - dh);
    out->cost = 1.0f;
  }
  out->reward = (float)reward;
  write_obs(e, obs);
  return SRL_OK;
}


static void pg_destroy(srl_env *env) {
  srl_free(env);
}


static const srl_env_vtable pg_vt = {pg_reset, pg_step, NULL, pg_destroy};


int srl__simple_point_goal_create(srl_env **out, const char *options_yaml) {
  *out = NULL;
  pg_opts o;
  SRL_TRY(srl_config_defaults(&pg_schema, &o));
  if (options_yaml && options_yaml[0])
    SRL_TRY(srl_config_load_string(&pg_schema, &o, options_yaml, "SimplePointGoal options"));

  // the layout must keep the start and the goal outside the hazard
  if (o.goal_distance_min > o.goal_distance_max)
    return srl_error(SRL_ECONFIG,
                     "SimplePointGoal options: goal_distance_min %g exceeds "
                     "goal_distance_max %g",
                     o.goal_distance_min, o.goal_distance_max);
  if (o.hazard_radius + o.goal_radius >= HAZARD_LO * o.goal_distance_min)
    return srl_error(SRL_ECONFIG,
                     "SimplePointGoal options: hazard_radius + goal_radius (%g) "
                     "must be below %g × goal_distance_min (%g) so start and goal lie outside "
                     "the hazard",
                     o.hazard_radius + o.goal_radius, HAZARD_LO, HAZARD_LO * o.goal_distance_min);
  if (o.damping * o.dt > 1.0)
    return srl_error(SRL_ECONFIG,
                     "SimplePointGoal options: damping × dt (%g) must be at most 1 "
                     "for a stable integration",
                     o.damping * o.dt);

  size_t total = sizeof(srl_env);
  size_t off = srl_layout_add(&total, sizeof(point_goal));
  char *block = srl_calloc(total);
  if (!block) return SRL_ENOMEM;
  srl_env *env = (srl_env *)block;
  point_goal *e = (point_goal *)(block + off);
  e->o = o;

  // bounds: a velocity component stays within accel/damping (or what dt·accel adds per step
  // over a 150-step episode when undamped); vectors span the arena
  e->vmax = o.damping > 0 ? o.accel / o.damping : o.accel * o.dt * SRL_SIMPLE_POINT_GOAL_STEPS;
  for (int i = 0; i < 2; i++) {
    e->obs_low[i] = (float)-ARENA, e->obs_high[i] = (float)ARENA;
    e->obs_low[2 + i] = (float)-e->vmax, e->obs_high[2 + i] = (float)e->vmax;
    e->obs_low[4 + i] = e->obs_low[6 + i] = (float)(-2 * ARENA);
    e->obs_high[4 + i] = e->obs_high[6 + i] = (float)(2 * ARENA);
    e->act_low[i] = -1.0f, e->act_high[i] = 1.0f;
  }
  env->vt = &pg_vt;
  snprintf(env->id, sizeof env->id, "SimplePointGoal");
  env->obs_space = (srl_space){OBS, e->obs_low, e->obs_high};
  env->act_space = (srl_space){ACT, e->act_low, e->act_high};
  env->impl = e;
  *out = env;
  return SRL_OK;
}

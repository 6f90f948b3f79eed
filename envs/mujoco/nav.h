// nav.h: internals of the safe navigation tasks (envs/mujoco/nav*.c), shared with their tests.
//
// Three pure parts that do not need MuJoCo, each following Safety-Gymnasium's definitions:
//   - srl_nav_mt: the Mersenne Twister stream of NumPy's legacy RandomState (same seeding, same
//     53-bit doubles), so a seed draws the very layout Safety-Gymnasium draws for it;
//   - srl_nav_layout: rejection sampling of object positions with keep-out radii
//   (random_generator.py);
//   - srl__nav_lidar: the pseudo-lidar, 16 bins of closeness around the robot with aliasing
//     (base_task.py, _obs_lidar_pseudo).
// And test hooks into a created navigation env: read its layout, move the robot, evaluate cost.
#ifndef SRL_ENVS_NAV_H
#define SRL_ENVS_NAV_H

#include <stdint.h>

#include "envs/env.h"

#ifdef __cplusplus
extern "C" {
#endif

//---- NumPy-compatible random stream ----------------------------------------------------------

#define SRL_NAV_MT_N 624

typedef struct srl_nav_mt {
  uint32_t key[SRL_NAV_MT_N];
  int pos;
} srl_nav_mt;

// Seed as numpy.random.RandomState(seed) does for seed < 2^32 (init_genrand); larger seeds are
// fed as the two 32-bit words [low, high] through init_by_array.
void srl__nav_mt_seed(srl_nav_mt *mt, uint64_t seed);
uint32_t srl__nav_mt_u32(srl_nav_mt *mt);
// random_sample(): 53-bit double in [0, 1) from two 32-bit draws
double srl__nav_mt_double(srl_nav_mt *mt);
// uniform(lo, hi) = lo + (hi - lo)·random_sample()
double srl__nav_mt_uniform(srl_nav_mt *mt, double lo, double hi);
// randint(0, n) for 1 <= n <= 2^32 (masked rejection, as RandomState.choice(n) draws it)
uint32_t srl__nav_mt_below(srl_nav_mt *mt, uint32_t n);

//---- layouts ------------------------------------------------------------------------------------

#define SRL_NAV_MAX_ITEMS 32

// where one object may go: anywhere in the extents, or in its own rectangle (a fixed location
// is the rectangle of half-width keepout + 1e-9 around it); keepout is kept from other objects
typedef struct srl_nav_place {
  double keepout;
  int has_rect;
  double rect[4];  // xmin, ymin, xmax, ymax
} srl_nav_place;

typedef struct srl_nav_layout {
  int n;  // objects, the robot first
  srl_nav_place place[SRL_NAV_MAX_ITEMS];
  double extents[4];                // xmin, ymin, xmax, ymax
  double margin;                    // added to every pair of keep-outs
  double xy[SRL_NAV_MAX_ITEMS][2];  // the sampled positions
} srl_nav_layout;

// Draw every object in order, each up to 100 times until it keeps out of the ones placed before
// it; restart the whole layout when one fails, up to 10000 times. SRL_ESTATE when none fits.
int srl__nav_layout_sample(srl_nav_layout *l, srl_nav_mt *mt);
// Draw object i anew against all others (as a goal is resampled), up to 10000 times; returns 0
// or SRL_ESTATE (the position is unchanged then).
int srl__nav_layout_resample(srl_nav_layout *l, int i, srl_nav_mt *mt);
// 1 when xy keeps out of every placed object except `skip` (keepouts plus margin)
int srl__nav_layout_fits(const srl_nav_layout *l, int n_placed, int skip, const double xy[2],
                         double keepout);

//---- pseudo-lidar ------------------------------------------------------------------------------

// Fold the n objects at xy (n×2, stride `stride` doubles) into lidar bins (nbins, zeroed by the
// caller): each object's egocentric angle picks a bin, which reads max(0, max_dist − d)/max_dist
// of the closest object; with alias the neighbours get alias·s and (1 − alias)·s. The robot's
// frame is its position pos (3) and rotation matrix mat (3×3, row-major, MuJoCo's xmat).
void srl__nav_lidar(double *bins, int nbins, double max_dist, int alias, const double pos[3],
                    const double mat[9], const double *xy, int stride, int n);

//---- test hooks into a created env ---------------------------------------------------------------

#define SRL_NAV_MAX_GROUPS 6

typedef struct srl_nav_probe {
  int n_items;                           // layout objects, the robot first
  double item_xy[SRL_NAV_MAX_ITEMS][2];  // their positions now (MuJoCo's body positions)
  double item_keepout[SRL_NAV_MAX_ITEMS];
  char item_name[SRL_NAV_MAX_ITEMS][24];  // "agent", "goal", "hazard3", "vase0", ...
  double extents[4];
  double agent_pos[3];
  double agent_yaw;   // heading about z (radians)
  double goal_xy[2];  // the goal body (goal, button and push tasks)
  double goal_size;
  double hazard_size;  // 0 without hazards
  int n_hazards;
  int goal_button;                          // button tasks: the button to press
  double last_dist_goal;                    // the distance the next reward starts from
  int obs_sensor_dim;                       // sensor part of the observation; lidar groups follow
  int n_lidar;                              // lidar groups in observation order
  char lidar_name[SRL_NAV_MAX_GROUPS][16];  // "goal", "hazards", "vases", ...
  double lidar_max_dist;
} srl_nav_probe;

// Describe a navigation env (wrappers around it are looked through). SRL_EINVAL for other envs.
int srl__nav_probe(const srl_env *env, srl_nav_probe *out);
// Move the robot to (x, y) with heading yaw at rest, keeping the rest of the state.
int srl__nav_place_agent(srl_env *env, double x, double y, double yaw);
// The cost of the state now: raw (Safety-Gymnasium's cost_sum) and the indicator.
int srl__nav_eval_cost(srl_env *env, double *raw, double *indicator);
// The observation of the state now (after srl__nav_place_agent, say).
int srl__nav_observe(srl_env *env, float *obs);
// 0: run every physics step as a full mj_step (sim_conf.reuse_forward: never); 1: finish the
// first one from the last mj_forward (always).
int srl__nav_set_fast_physics(srl_env *env, int on);
// For the speed comparison: reset with seed, then time bare physics on the env's own model and
// state, sim_conf.frameskip_binom_n mj_step per action row (actions: n×2); the thread's CPU
// seconds taken (steadier than wall time on a busy machine).
int srl__nav_bench_raw(srl_env *env, uint64_t seed, const float *actions, int n, double *seconds);

#ifdef __cplusplus
}
#endif
#endif  // SRL_ENVS_NAV_H

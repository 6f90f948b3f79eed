// env.h: the environment API: Gymnasium's reset/step with Safety-Gymnasium's cost, spaces with
// bounds, optional rendering, and a registry of environments created by id plus YAML options.
//
// An environment is a small vtable plus a public header (srl_env) holding its spaces. Results
// come back in a caller-owned srl_step, so stepping never allocates. Truncation keeps the final
// observation in `obs` (the caller bootstraps from it) and never resets by itself; auto-reset is
// the vector env's job.
//
// Divergence contract: when a simulation goes unstable (a MuJoCo warning, a non-finite state),
// the env ends the episode on that step as truncated, with reward -10, cost 1, raw_cost 1 and
// info.diverged 1, and an observation of finite numbers; the vector env counts such steps. As a
// safety net srl_env_step applies the same contract when an env returns a non-finite reward,
// cost or observation (non-finite observation entries become 0).
#ifndef SRL_ENV_H
#define SRL_ENV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_ENV_ID_MAX 64
#define SRL_ENV_ACT_MAX 1024  // the largest action dimension srl_env_step accepts

// the divergence contract's reward and cost
#define SRL_ENV_DIVERGED_REWARD (-10.0f)
#define SRL_ENV_DIVERGED_COST 1.0f

// a box space: dim values in [low, high] (±INFINITY where unbounded)
typedef struct srl_space {
  int dim;
  const float *low;   // (dim)
  const float *high;  // (dim)
} srl_space;

// what a step reports beside the 5-tuple; fields an env does not use stay zero
typedef struct srl_env_info {
  float raw_cost;    // cost before the indicator (Safety-Gymnasium's cost_sum); an env that
                     // reports a nonzero cost sets it too (the cost wrapper reads it)
  int goal_met;      // the goal was reached this step
  int diverged;      // the simulation went unstable (MuJoCo warning or non-finite state)
  float x_velocity;  // velocity tasks: the speed the cost compares against its threshold
} srl_env_info;

typedef struct srl_step {
  float reward;
  float cost;
  int terminated;  // a terminal state: do not bootstrap
  int truncated;   // time limit or divergence: bootstrap from obs
  srl_env_info info;
} srl_step;

typedef struct srl_env srl_env;

typedef struct srl_env_vtable {
  // reset to an initial state drawn from seed; writes obs (obs_space.dim)
  int (*reset)(srl_env *env, uint64_t seed, float *obs);
  // advance one step with action (act_space.dim, finite and already clipped into act_space);
  // writes obs and out (srl_env_step zeroes out first)
  int (*step)(srl_env *env, const float *action, float *obs, srl_step *out);
  // optional (NULL): draw the scene into rgb (height×width×3, row 0 at the top)
  int (*render)(srl_env *env, uint8_t *rgb, int width, int height, const char *camera);
  void (*destroy)(srl_env *env);
} srl_env_vtable;

struct srl_env {
  const srl_env_vtable *vt;
  char id[SRL_ENV_ID_MAX];
  srl_space obs_space;
  srl_space act_space;
  int max_episode_steps;       // 0: no limit of its own (the time-limit wrapper sets one)
  void *impl;                  // the environment's own state
  int physics_steps_per_step;  // simulator steps per env step (MuJoCo's frame skip); 0: none

  // kept by srl_env_reset / srl_env_step; an env's own code leaves them alone
  long long elapsed_steps;  // steps since the last reset
  int was_reset;            // reset at least once (stepping before that is refused)
};

//---- using an environment -------------------------------------------------------------------

// Create an environment by id with options as YAML text (NULL or "" for defaults); unknown ids
// and bad options are errors that name the id and the option.
int srl_env_create(srl_env **out, const char *id, const char *options_yaml);
void srl_env_destroy(srl_env *env);
int srl_env_reset(srl_env *env, uint64_t seed, float *obs);
// Step with action (act_space.dim). A non-finite action is refused (SRL_ENONFINITE) with an
// error naming the env, the step and the action index; actions outside the bounds are clipped
// into them (as Safety-Gymnasium's apply_action and MuJoCo's ctrlrange do). Stepping before the
// first reset is SRL_ESTATE. Never allocates.
int srl_env_step(srl_env *env, const float *action, float *obs, srl_step *out);
// SRL_EUNSUPPORTED when the env cannot render.
int srl_env_render(srl_env *env, uint8_t *rgb, int width, int height, const char *camera);

//---- registry ---------------------------------------------------------------------------------

typedef int (*srl_env_create_fn)(srl_env **out, const char *options_yaml);

typedef struct srl_env_spec {
  const char *id;  // "SafetyPointGoal1"
  srl_env_create_fn create;
  int obs_dim, act_dim;     // for listings without creating the env
  int max_episode_steps;    // the registered time limit (1000 for Safety-Gymnasium's tasks)
  const char *description;  // one line
} srl_env_spec;

// Register an env (the spec is copied; its strings must outlive the registry). Built-in envs are
// registered on first use of the registry. Registering an existing id is SRL_EINVAL.
int srl_env_register(const srl_env_spec *spec);
int srl_env_count(void);
const srl_env_spec *srl_env_spec_at(int i);        // in registration order; NULL out of range
const srl_env_spec *srl_env_find(const char *id);  // NULL when unknown
// 1 when srl_env_create can take this id: a registered env or a `remote:ENDPOINT` (whose spaces
// are known only once connected); 0 otherwise.
int srl_env_id_known(const char *id);

#ifdef __cplusplus
}
#endif
#endif  // SRL_ENV_H

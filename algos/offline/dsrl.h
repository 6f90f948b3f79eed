// dsrl.h: DSRL's reference constants and normalised scores, D4RL's reference scores, the mapping
// of saferl env ids and DSRL / D4RL names to them, and DSRL's density filter over episodes.
//
// Sources: liuzuxin/DSRL dsrl/infos.py (DEFAULT_MAX_EPISODE_STEPS, MIN/MAX_EPISODE_REWARD,
// MAX_EPISODE_COST, the dataset file names for the trajectory counts) and dsrl/offline_env.py
// (get_normalized_score, grid_filter); Farama-Foundation/D4RL d4rl/infos.py (REF_MIN_SCORE,
// REF_MAX_SCORE of the -random-v0 sets, which the v1/v2 sets reuse).
#ifndef SRL_DSRL_H
#define SRL_DSRL_H

#include <stdint.h>

#include "algos/offline/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct srl_dsrl_task {
  const char *name;  // DSRL's task name ("PointGoal1", "easysparse") or D4RL's ("halfcheetah")
  int max_steps, obs_dim, act_dim;
  double r_min, r_max;  // MIN/MAX_EPISODE_REWARD (D4RL: REF_MIN_SCORE, REF_MAX_SCORE)
  double cost_max;      // MAX_EPISODE_COST (0 for D4RL)
  int n_traj;           // trajectories in DSRL's file (0 for D4RL)
  int d4rl;             // 1: a D4RL entry (no costs)
} srl_dsrl_task;

// Look up by saferl env id ("SafetyPointGoal1", "SafetyHalfCheetahVelocity"), DSRL id
// ("OfflinePointGoal1Gymnasium-v0", "OfflineCarRun-v0", "OfflineMetadrive-easysparse-v0"), DSRL
// file name ("SafetyPointGoal1Gymnasium-v0-100-2022.hdf5") or bare task name ("PointGoal1");
// D4RL names ("halfcheetah", "hopper-medium-v2") give the D4RL REF_MIN/REF_MAX with d4rl = 1.
// Case-insensitive. NULL when unknown.
const srl_dsrl_task *srl_dsrl_find(const char *name);

// The table: 38 DSRL tasks (Bullet-Safety-Gym, Safety-Gymnasium, MetaDrive), then 4 D4RL ones.
int srl_dsrl_task_count(void);
const srl_dsrl_task *srl_dsrl_task_at(int i);  // NULL out of range

// The saferl env id of a Safety-Gymnasium task ("SafetyPointGoal1" for PointGoal1), or NULL for
// Bullet-Safety-Gym, MetaDrive and D4RL tasks.
const char *srl_dsrl_saferl_env(const srl_dsrl_task *t);

// DSRL's get_normalized_score: (R − R_min)/(R_max − R_min) and (C + ε)/(k + ε), ε = 1 iff k = 0.
// For a D4RL entry the first is D4RL's normalized score (not ×100).
double srl_dsrl_normalized_reward(const srl_dsrl_task *t, double ret);
double srl_dsrl_normalized_cost(double cost, double cost_limit);

//---- density filter (DSRL's pre_process_data with density < 1, grid_filter)
//-----------------------

// A grid of cbins × rbins over (episode cost, episode return) spanning the data's ranges; an
// episode's bin is ⌊(x − min)/step⌋ per axis with Python's float floor division (so the maximum
// falls in an extra bin, index cbins or rbins, as in DSRL). Bins holding more than max_npb
// episodes keep max_npb drawn without replacement; bins holding at most min_npb are dropped;
// the rest are kept whole. Departures from DSRL: the draw is seeded (DSRL's random.sample is
// not), episodes keep their file order (DSRL groups them by bin), returns are summed in double
// (DSRL sums float32), and an axis whose range is zero puts every episode in its bin 0 (DSRL's
// division by a zero step makes every episode a bin of its own, so all are dropped).
typedef struct srl_dsrl_density {
  int cbins, rbins;      // 10, 50
  int max_npb, min_npb;  // 5, 2
  uint64_t seed;         // 0
} srl_dsrl_density;

#define SRL_DSRL_DENSITY_DEFAULTS \
  { 10, 50, 5, 2, 0 }

// keep[e] = 1 for the episodes that stay (n episodes with the given costs and returns); cfg NULL:
// the defaults. Returns the number kept (≥ 0) or a negative status.
long long srl_dsrl_density_mask(uint8_t *keep, const double *ep_cost, const double *ep_return,
                                long long n, const srl_dsrl_density *cfg);

// The filter on a dataset's finished episodes (an unfinished tail episode and rows after the
// last terminal/timeout are left out, as DSRL splits trajectories on the flags): a new dataset.
int srl_dataset_filter_density(srl_dataset **out, const srl_dataset *d,
                               const srl_dsrl_density *cfg);

// The finished episodes whose total cost is at most max_cost: DSRL's hosted files hold no episode
// above their cmax (the first number in the name, 100 in SafetyPointGoal1Gymnasium-v0-100-2022),
// so a collected file capped the same way has DSRL's cost range. A new dataset; none kept is
// SRL_EINVAL.
int srl_dataset_filter_max_cost(srl_dataset **out, const srl_dataset *d, double max_cost);

#ifdef __cplusplus
}
#endif
#endif  // SRL_DSRL_H

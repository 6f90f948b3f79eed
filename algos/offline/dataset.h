// dataset.h: offline datasets in DSRL's HDF5 schema (and D4RL's): read with every file checked
// before use, split into episodes, summarised, filtered, written back in DSRL's layout.
//
// A dataset is one allocation holding N transitions as float32 arrays. Reading is all-or-nothing:
// a missing key, a length mismatch, a non-finite value, a dimension that disagrees with the env,
// or a truncated or corrupt file is refused with SRL_EFORMAT (or SRL_EIO / SRL_ENOTFOUND) and a
// message naming the file, the key and the row; nothing is returned half-read.
#ifndef SRL_DATASET_H
#define SRL_DATASET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct srl_dataset {
  long long n;  // transitions
  int obs_dim, act_dim;
  float *obs;         // (n, obs_dim)
  float *next_obs;    // (n, obs_dim)
  float *act;         // (n, act_dim)
  float *reward;      // (n)
  float *cost;        // (n)
  uint8_t *terminal;  // (n) 1: a terminal state (do not bootstrap)
  uint8_t *timeout;   // (n) 1: the episode was cut by its time limit

  // episodes: rows [ep_start[i], ep_start[i + 1]), each ending at a terminal or a timeout; rows
  // after the last such flag form a final unfinished episode only when keep_tail was asked for
  long long n_episodes;
  long long *ep_start;  // (n_episodes + 1)
  double *ep_return;    // (n_episodes) undiscounted sums of reward
  double *ep_cost;      // (n_episodes) undiscounted sums of cost

  int has_costs;  // 0 for a D4RL file (costs read as zero)
  char source[4096];
  void *mem;  // the one block
} srl_dataset;

// What the reader expects of a file; zero fields mean "no requirement".
typedef struct srl_dataset_read_options {
  int obs_dim, act_dim;  // dims of the env the data is for (checked against the file)
  int allow_no_costs;    // accept a D4RL file without `costs` (zeros, with a warning on stderr)
  int keep_tail;         // keep rows after the last terminal/timeout as an unfinished episode
} srl_dataset_read_options;

// Read a DSRL or D4RL HDF5 file. Accepted: root datasets observations, actions, rewards, costs,
// terminals, timeouts, next_observations; flags as HDF5 enum over int8 (h5py's bool), int8,
// uint8 or float; rewards/costs as (N,) or (N,1); float64 converted. Without next_observations
// (D4RL), next_observations[i] = observations[i+1] and timeout rows are dropped (D4RL's
// qlearning_dataset). opt may be NULL.
int srl_dataset_read(srl_dataset **out, const char *path, const srl_dataset_read_options *opt);
void srl_dataset_destroy(srl_dataset *d);

// Make an empty dataset for n transitions (the writer side of collection); episodes are
// computed by srl_dataset_index once the arrays are filled.
int srl_dataset_create(srl_dataset **out, long long n, int obs_dim, int act_dim);
// Recompute episodes and their returns and costs from the flags.
int srl_dataset_index(srl_dataset *d);

// Write a DSRL-compatible file: the seven root datasets, float32 (flags as h5py's bool enum),
// shuffled and gzip-compressed, written to a temporary name and renamed. h5py and DSRL's loader
// read it back (docs/formats.md, "Offline datasets (HDF5)").
int srl_dataset_write(const srl_dataset *d, const char *path);

// A new dataset holding the chosen episodes (keep[i] != 0), in order.
int srl_dataset_select(srl_dataset **out, const srl_dataset *d, const uint8_t *keep);

//---- additions ----------------------------------------------------------------------------------

// srl_dataset_index with the reader's keep_tail choice: rows after the last terminal/timeout
// become a final unfinished episode when keep_tail is set, else they belong to no episode (they
// stay in the arrays as transitions). A collector may lower d->n below the size it created the
// dataset with before indexing and writing (capacity for episodes stays that of the creation).
int srl_dataset_index_tail(srl_dataset *d, int keep_tail);

// 1 when episode i ends at a terminal or a timeout (0 for an unfinished tail episode).
int srl_dataset_episode_finished(const srl_dataset *d, long long i);

// What `saferl dataset info` reports. Ranges and means are over episodes (NaN when there are
// none); std is the population std; safe episodes are those with cost ≤ cost_limit.
typedef struct srl_dataset_summary {
  long long transitions, episodes;
  long long tail_rows;            // rows after the last terminal/timeout (in no finished episode)
  long long terminals, timeouts;  // rows flagged
  double ret_min, ret_max, ret_mean, ret_std;
  double cost_min, cost_max, cost_mean, cost_std;
  double len_min, len_max, len_mean;
  double step_reward_min, step_reward_max, step_cost_min, step_cost_max;  // per transition
  double cost_limit;
  long long safe_episodes;
  double safe_share;  // safe_episodes / episodes (NaN without episodes)
} srl_dataset_summary;

int srl_dataset_summarize(srl_dataset_summary *s, const srl_dataset *d, double cost_limit);

#ifdef __cplusplus
}
#endif
#endif  // SRL_DATASET_H

// onpolicy_internal.h: the trainer's state, shared by algos/onpolicy.c (the epoch loop and the
// run directory) and algos/onpolicy_ckpt.c (checkpoints and trained policies). Not installed.
#ifndef SRL_ONPOLICY_INTERNAL_H
#define SRL_ONPOLICY_INTERNAL_H

#include <limits.h>
#include <signal.h>
#include <stdio.h>

#include "algos/onpolicy.h"
#include "envs/vec_env.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define SRL_ONPOLICY_FORMAT "saferl.onpolicy.1"  // checkpoint metadata "format"

struct srl_onpolicy {
  srl_onpolicy_config cfg;
  const srl_onpolicy_algo *algo;
  void *algo_state;
  const srl_ops *ops;
  srl_vec_env *venv;
  srl_actor_critic *ac;
  srl_rollout rb;
  srl_normalizer norm;
  srl_lagrange lagrange;
  int has_lagrange;
  srl_rng *rng_init;    // network initialisation (stream 0)
  srl_rng *rng_sample;  // action sampling (stream 1)
  srl_rng *rng_update;  // minibatch shuffles (stream 2)

  int num_envs, steps_per_env, obs_dim, act_dim;
  int epochs;  // in the whole run
  int epoch;   // completed
  long long total_steps;
  long long episodes_total;

  // the last window_lens finished episodes: (ret, cost, len) rows, a ring
  float *win;
  int win_cap, win_n, win_head;  // capacity, rows held, index of the oldest

  // host scratch for the rollout
  float *obs_n;        // (N, obs_dim) normalised observations the policy acts on
  float *fin_n;        // (N, obs_dim) normalised final observations of finished envs
  float *act;          // (N, act_dim)
  float *mean;         // (N, act_dim)
  float *logp;         // (N)
  float *v_r, *v_c;    // (N)
  float *fv_r, *fv_c;  // (N) values of final observations, by env
  float *fv_tmp;       // (2N) critic outputs of the packed final observations
  float *log_std;      // (act_dim)
  int *fin_env;        // (N) env of each packed final observation
  float *param_host;   // (largest n_params) parameter scan for non-finite values
  void *host_mem;
  float *dev_obs;  // (N, obs_dim) device copy of the observations (device tables only)

  // state at the start of the epoch in progress, restored when a rollout is interrupted
  float *snap_mean, *snap_var;
  double snap_count;
  unsigned char *snap_rng;
  size_t rng_bytes;
  float *snap_win;
  int snap_win_n, snap_win_head;
  long long snap_steps, snap_episodes;

  // the run directory
  char run_dir[PATH_MAX];
  FILE *csv, *events;
  char *config_text;         // resolved YAML (checkpoint metadata)
  char last_ckpt[PATH_MAX];  // relative to run_dir; "" before the first
  double wall_base;          // seconds run before this process (resumed runs)
  double t_start;            // monotonic clock at create
  srl_onpolicy_row last;
  int has_last;
  int quiet, tty;
  double last_draw;  // monotonic time of the last progress redraw
  double epoch_t0;   // monotonic time the epoch in progress started
  int stopped;       // nan stop or interruption: no more epochs
  volatile sig_atomic_t stop;
};

// seconds on the monotonic clock
double srl__onpolicy_now(void);

// Write the trainer's state to path (atomically) / restore it from a checkpoint file.
int srl__onpolicy_ckpt_save(srl_onpolicy *t, const char *path);
int srl__onpolicy_ckpt_load(srl_onpolicy *t, const char *path);

// The resolved config recorded in a checkpoint's metadata.
int srl__onpolicy_ckpt_config(srl_onpolicy_config *cfg, const char *path);

// The actor-critic config the trainer builds from a run config, for max_batch rows.
int srl__onpolicy_ac_config(srl_ac_config *ac, const srl_onpolicy_config *cfg, int obs_dim,
                            int act_dim, int max_batch);

#endif  // SRL_ONPOLICY_INTERNAL_H

// offline.h: the contract between the offline trainer and its algorithms (FISOR, BC-All,
// BC-Safe, BCQ-Lag, CPQ, COptiDICE).
//
// The trainer owns the dataset, the sampling, the run directory and evaluation; an algorithm owns
// its networks and optimizers and sees only minibatches. Each algorithm publishes its own
// parameter struct and a table of config fields relative to it (keys without a section, e.g.
// "expectile"); the trainer places the struct in its config under the algorithm's section
// ("fisor.expectile") so one YAML file configures a run.
#ifndef SRL_OFFLINE_H
#define SRL_OFFLINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/ops.h"
#include "core/rng.h"
#include "core/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

// A minibatch of n transitions in the algorithm's units (rewards and costs already scaled by
// the trainer, actions in [-1, 1]). Host memory; an algorithm on CUDA uploads what it needs.
typedef struct srl_offline_batch {
  int n;
  const float *obs;       // (n, obs_dim)
  const float *act;       // (n, act_dim)
  const float *reward;    // (n)
  const float *cost;      // (n)
  const float *next_obs;  // (n, obs_dim)
  const float *done;      // (n) 1 at a terminal or a timeout (FISOR's mask = 1 − done)
  const float *init_obs;  // (n, obs_dim) first observations of random episodes (COptiDICE)
} srl_offline_batch;

// What the trainer tells an algorithm at creation.
typedef struct srl_offline_setup {
  const srl_ops *ops;  // the device every network of the run uses
  int obs_dim, act_dim;
  int batch_size;         // rows of every batch passed to update
  int max_act_batch;      // most observations one act call gets
  long long total_steps;  // updates planned (for lr schedules)
  double gamma;
  double cost_limit;  // episode cost limit k
  int episode_len;    // the env's episode length (per-step thresholds)
  uint64_t seed;
} srl_offline_setup;

// Scalars an update reports; names and values are the algorithm's, written to progress.csv.
#define SRL_OFFLINE_STATS_MAX 16
typedef struct srl_offline_stats {
  int n;
  const char *name[SRL_OFFLINE_STATS_MAX];  // static strings ("loss_actor", "lambda")
  double value[SRL_OFFLINE_STATS_MAX];
} srl_offline_stats;

typedef struct srl_offline_algo {
  const char *name;             // "FISOR", as written in configs
  const char *section;          // "fisor": the config section of its parameters
  size_t params_size;           // sizeof its parameter struct
  const srl_cfg_field *fields;  // parameter fields, offsets into that struct
  int n_fields;
  int safe_episodes_only;  // 1: trained on episodes with cost ≤ cost_limit only (BC-Safe)

  // Create from params (a filled parameter struct); networks initialised from setup->seed.
  int (*create)(void **out, const srl_offline_setup *setup, const void *params);
  void (*destroy)(void *algo);
  // One gradient update on a batch of setup->batch_size rows. Never allocates. A non-finite
  // loss is SRL_ENONFINITE with a message naming it (checked before the optimizer step, so the
  // parameters stay finite); the trainer then stops and keeps its last good checkpoint.
  int (*update)(void *algo, const srl_offline_batch *b, srl_offline_stats *st);
  // Evaluation actions for n raw observations (n ≤ max_act_batch), in [-1, 1]; rng feeds any
  // sampling the policy does (FISOR's diffusion).
  int (*act)(void *algo, float *act, const float *obs, int n, srl_rng *rng);
  // Everything needed to resume and to act, as named F32 tensors ("actor.layers.0.weight",
  // "critic_r.0.layers.0.bias", "optim.actor.m", ...); load refuses a missing or misshapen one.
  int (*save)(void *algo, srl_st_writer *w);
  int (*load)(void *algo, const srl_st_file *f);
} srl_offline_algo;

// The registered algorithms (FISOR, BCAll, BCSafe, BCQLag, CPQ, COptiDICE); NULL when unknown.
const srl_offline_algo *srl_offline_algo_find(const char *name);
int srl_offline_algo_count(void);
const srl_offline_algo *srl_offline_algo_at(int i);

// Each algorithm's table entry, defined in its own file.
extern const srl_offline_algo srl_offline_fisor;
extern const srl_offline_algo srl_offline_bc_all;
extern const srl_offline_algo srl_offline_bc_safe;
extern const srl_offline_algo srl_offline_bcq_lag;
extern const srl_offline_algo srl_offline_cpq;
extern const srl_offline_algo srl_offline_coptidice;

#ifdef __cplusplus
}
#endif
#endif  // SRL_OFFLINE_H

// registry.c: the offline algorithm table (FISOR and the five baselines, plus algorithms a
// program registers) and the offline config schema composed from it at run time: the trainer's
// common keys followed by every algorithm's parameter fields under its section ("fisor.expectile"),
// each placed at its own offset inside the config's parameter area.
#include <pthread.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/offline/offline.h"
#include "algos/offline/trainer.h"
#include "core/alloc.h"
#include "core/error.h"

//---- the algorithm table -------------------------------------------------------------------------

// each entry is defined in its own file (fisor.c, bc.c, bcq_lag.c, cpq.c, coptidice.c)
static const srl_offline_algo *const builtin[] = {
    &srl_offline_fisor,   &srl_offline_bc_all, &srl_offline_bc_safe,
    &srl_offline_bcq_lag, &srl_offline_cpq,    &srl_offline_coptidice,
};
#define N_BUILTIN ((int)(sizeof builtin / sizeof *builtin))

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static const srl_offline_algo *registered[SRL_OFFLINE_MAX_ALGOS];
static int n_registered;
static int schema_built;  // set once the composed schema exists: no more registrations

// the i-th algorithm: the built-in entries, then the registered ones
static const srl_offline_algo *algo_at(int i) {
  if (i < N_BUILTIN) return builtin[i];
  i -= N_BUILTIN;
  return i < n_registered ? registered[i] : NULL;
}


int srl_offline_algo_count(void) {
  return N_BUILTIN + n_registered;
}


const srl_offline_algo *srl_offline_algo_at(int i) {
  if (i < 0) return NULL;
  return algo_at(i);
}


const srl_offline_algo *srl_offline_algo_find(const char *name) {
  if (!name) return NULL;
  for (int i = 0, n = srl_offline_algo_count(); i < n; i++) {
    const srl_offline_algo *a = algo_at(i);
    if (a && a->name && !strcmp(a->name, name)) return a;
  }
  return NULL;
}


int srl_offline_algo_names(char *buf, size_t cap) {
  if (!buf || !cap) return srl_error(SRL_EINVAL, "srl_offline_algo_names: no buffer");
  size_t used = 0;
  buf[0] = 0;
  for (int i = 0, n = srl_offline_algo_count(); i < n; i++) {
    int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", algo_at(i)->name);
    if (w < 0 || (size_t)w >= cap - used) return srl_error(SRL_ERANGE, "algorithm list too long");
    used += (size_t)w;
  }
  return SRL_OK;
}


// an entry's table fields must be usable before they enter the schema
static int check_entry(const srl_offline_algo *a) {
  if (!a || !a->name || !a->name[0] || !a->section || !a->section[0] || !a->create || !a->destroy ||
      !a->update || !a->act || !a->save || !a->load)
    return srl_error(SRL_EINVAL,
                     "offline algorithm '%s': name, section and every function are needed",
                     a && a->name ? a->name : "?");
  if (strlen(a->name) >= sizeof(((srl_offline_config *)0)->algo))
    return srl_error(SRL_EINVAL, "offline algorithm name '%s' is too long", a->name);
  if (a->n_fields < 0 || (a->n_fields > 0 && !a->fields))
    return srl_error(SRL_EINVAL, "offline algorithm '%s': %d fields but no table", a->name,
                     a->n_fields);
  return SRL_OK;
}


int srl_offline_register_algo(const srl_offline_algo *algo) {
  SRL_TRY(check_entry(algo));
  pthread_mutex_lock(&reg_mu);
  int rc = SRL_OK;
  if (schema_built)
    rc = srl_error(SRL_ESTATE,
                   "offline algorithm '%s' registered after the config schema was built "
                   "(register before any offline config is made)",
                   algo->name);
  else if (srl_offline_algo_find(algo->name))
    rc = srl_error(SRL_EINVAL, "offline algorithm '%s' is already known", algo->name);
  else if (n_registered == SRL_OFFLINE_MAX_ALGOS)
    rc = srl_error(SRL_ERANGE, "at most %d offline algorithms can be registered",
                   SRL_OFFLINE_MAX_ALGOS);
  else
    registered[n_registered++] = algo;
  pthread_mutex_unlock(&reg_mu);
  return rc;
}


//---- the composed schema -------------------------------------------------------------------------

#define T srl_offline_config
#define MAX_FIELDS 1024
#define KEY_POOL (MAX_FIELDS * 48)

// clang-format off
static const srl_cfg_field common_fields[] = {
  SRL_CFG_STRING(T, algo, "algo", "FISOR",
                 "algorithm: FISOR, BCAll, BCSafe, BCQLag, CPQ or COptiDICE"),
  SRL_CFG_STRING(T, env_id, "env_id", "SafetyPointGoal1",
                 "environment the data comes from and the policy is evaluated on"),
  SRL_CFG_STRING(T, env_options, "env_options", "",
                 "the environment's own options as YAML text, e.g. '{hazard_radius: 0.5}'"),
  SRL_CFG_STRING(T, dataset, "dataset", "",
                 "HDF5 file in DSRL's layout (saferl collect writes one; relative to the "
                 "working directory)"),
  SRL_CFG_CHOICE(T, device, "device", "cpu", "cpu|cuda", "where the networks run"),
  SRL_CFG_INT(T, seed, "seed", "0", 0, INT32_MAX,
              "random seed of the networks, the batch sampling and the policy's sampling"),
  SRL_CFG_INT(T, threads, "threads", "1", 1, 1024,
              "CPU threads: matrix products (OpenBLAS) and evaluation envs"),
  SRL_CFG_STRING(T, log_dir, "log_dir", "runs", "where run directories are made (--out overrides)"),

  SRL_CFG_INT(T, train.steps, "train.steps", "100000", 1, INT32_MAX, "gradient updates in the run"),
  SRL_CFG_INT(T, train.batch_size, "train.batch_size", "512", 1, 1 << 20,
              "transitions per update, drawn uniformly with replacement"),
  SRL_CFG_INT(T, train.eval_every, "train.eval_every", "2500", 0, INT32_MAX,
              "updates between evaluations on the env (0: none during training)"),
  SRL_CFG_INT(T, train.eval_episodes, "train.eval_episodes", "10", 1, 100000,
              "episodes of each evaluation during training"),
  SRL_CFG_INT(T, train.save_every, "train.save_every", "10000", 1, INT32_MAX,
              "updates between checkpoints (checkpoints/step-<N>.safetensors)"),
  SRL_CFG_INT(T, train.log_every, "train.log_every", "1000", 1, INT32_MAX,
              "updates between progress.csv rows (means of the algorithm's losses)"),

  SRL_CFG_FLOAT(T, task.cost_limit, "task.cost_limit", "10.0", 0, 1e9,
                "episode cost limit k: BC-Safe's selection, per-step thresholds, normalized cost"),
  SRL_CFG_FLOAT(T, task.reward_scale, "task.reward_scale", "1.0", 0, 1e9,
                "rewards are multiplied by this before the algorithm sees them"),
  SRL_CFG_FLOAT(T, task.cost_scale, "task.cost_scale", "1.0", 0, 1e9,
                "costs are multiplied by this before the algorithm sees them"),
  SRL_CFG_CHOICE(T, task.reward_normalize, "task.reward_normalize", "none", "none|returns",
                 "returns: rewards times max_steps / (R_max - R_min) first (FISOR; the DSRL "
                 "reference returns, else the dataset's episode returns)"),
  SRL_CFG_FLOAT(T, task.action_clip, "task.action_clip", "0.99999", 1e-6, 1,
                "dataset actions, mapped into [-1, 1] with the env's bounds, are clipped to "
                "this magnitude"),
  SRL_CFG_FLOAT(T, task.gamma, "task.gamma", "0.99", 0, 1,
                "discount the trainer tells the algorithm (per-step cost thresholds)"),
  SRL_CFG_INT(T, task.episode_len, "task.episode_len", "0", 0, INT32_MAX,
              "episode length for thresholds and evaluation rollouts (0: the env's time limit)"),

  SRL_CFG_INT(T, eval.episodes, "eval.episodes", "20", 0, 100000,
              "episodes of the evaluation after training (0: none)"),
  SRL_CFG_INT(T, eval.envs, "eval.envs", "0", 0, 4096,
              "envs stepped together in evaluations (0: min(episodes, 16))"),
  SRL_CFG_INT(T, eval.seed, "eval.seed", "0", 0, INT32_MAX,
              "seed of the evaluation episodes' layouts and the policy's sampling"),
  SRL_CFG_STRING(T, eval.score_task, "eval.score_task", "",
                 "DSRL or D4RL task whose reference returns normalize the reward "
                 "(\"\": the one of env_id)"),
};
// clang-format on
#undef T
#define N_COMMON ((int)(sizeof common_fields / sizeof *common_fields))

static pthread_once_t compose_once = PTHREAD_ONCE_INIT;
static srl_cfg_field fields[MAX_FIELDS];
static char key_pool[KEY_POOL];
static srl_cfg_schema schema;
static int compose_rc;  // the composition's status, kept for every later caller
static char compose_msg[512];
static size_t params_off[N_BUILTIN + SRL_OFFLINE_MAX_ALGOS];  // per algorithm: params offset
static size_t config_bytes;

// one algorithm's fields under its section at base bytes into the config
static int add_algo_fields(const srl_offline_algo *a, size_t base, int *nf, size_t *pool) {
  for (int j = 0; j < a->n_fields; j++) {
    if (*nf == MAX_FIELDS) return srl_error(SRL_ERANGE, "more than %d config fields", MAX_FIELDS);
    const srl_cfg_field *src = &a->fields[j];
    int w =
        snprintf(key_pool + *pool, KEY_POOL - *pool, "%s.%s", a->section, src->key ? src->key : "");
    if (w < 0 || (size_t)w >= KEY_POOL - *pool)
      return srl_error(SRL_ERANGE, "config keys exceed %d bytes", KEY_POOL);
    srl_cfg_field f = *src;
    f.key = key_pool + *pool;
    *pool += (size_t)w + 1;
    f.offset += base;
    if (f.type == SRL_CFG_INT_LIST || f.type == SRL_CFG_FLOAT_LIST) f.count_offset += base;
    fields[(*nf)++] = f;
  }
  return SRL_OK;
}


static void compose(void) {
  pthread_mutex_lock(&reg_mu);
  schema_built = 1;
  pthread_mutex_unlock(&reg_mu);
  int nf = 0, rc = SRL_OK;
  size_t pool = 0;
  memcpy(fields, common_fields, sizeof common_fields);
  nf = N_COMMON;
  size_t off = srl_align_up(offsetof(srl_offline_config, params), alignof(max_align_t));
  int n = srl_offline_algo_count();
  for (int i = 0; i < n && rc == 0; i++) {
    const srl_offline_algo *a = algo_at(i);
    rc = check_entry(a);
    if (rc < 0) break;
    // an algorithm sharing an earlier one's section and table shares its parameters
    int shared = -1;
    for (int k = 0; k < i; k++) {
      const srl_offline_algo *b = algo_at(k);
      if (strcmp(a->section, b->section) != 0) continue;
      if (a->fields != b->fields || a->n_fields != b->n_fields || a->params_size != b->params_size)
        rc = srl_error(SRL_EINVAL,
                       "offline algorithms '%s' and '%s' use section '%s' with different "
                       "parameters",
                       b->name, a->name, a->section);
      shared = k;
      break;
    }
    if (rc < 0) break;
    if (shared >= 0) {
      params_off[i] = params_off[shared];
      continue;
    }
    params_off[i] = off;
    rc = add_algo_fields(a, off, &nf, &pool);
    off = srl_align_up(off + a->params_size, alignof(max_align_t));
  }
  schema = (srl_cfg_schema){"offline training", fields, nf};
  config_bytes = off;
  if (rc == 0) rc = srl_config_check_schema(&schema);
  if (rc < 0) {
    compose_rc = rc;
    snprintf(compose_msg, sizeof compose_msg, "offline config schema: %s", srl_errmsg());
  }
}


int srl_offline_schema(const srl_cfg_schema **out) {
  pthread_once(&compose_once, compose);
  if (out) *out = compose_rc < 0 ? NULL : &schema;
  if (compose_rc < 0) return srl_error(compose_rc, "%s", compose_msg);
  return SRL_OK;
}


size_t srl_offline_config_size(void) {
  pthread_once(&compose_once, compose);
  return config_bytes;
}


// the index of a in the composed table, or -1
static int algo_index(const srl_offline_algo *a) {
  for (int i = 0, n = srl_offline_algo_count(); i < n; i++)
    if (algo_at(i) == a) return i;
  return -1;
}


void *srl_offline_config_params(srl_offline_config *cfg, const srl_offline_algo *algo) {
  pthread_once(&compose_once, compose);
  int i = algo_index(algo);
  if (!cfg || i < 0 || compose_rc < 0) return NULL;
  return (char *)cfg + params_off[i];
}


int srl_offline_schema_for(srl_cfg_field *out, int cap, const srl_offline_algo *algo) {
  const srl_cfg_schema *s;
  SRL_TRY(srl_offline_schema(&s));
  int n = 0;
  size_t sl = algo ? strlen(algo->section) : 0;
  for (int i = 0; i < s->n_fields; i++) {
    const srl_cfg_field *f = &s->fields[i];
    int common = i < N_COMMON;
    int mine = algo && !strncmp(f->key, algo->section, sl) && f->key[sl] == '.';
    if (!common && !mine) continue;
    if (n == cap) return srl_error(SRL_ERANGE, "srl_offline_schema_for: more than %d fields", cap);
    out[n++] = *f;
  }
  return n;
}

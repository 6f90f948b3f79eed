// test_offline_trainer.c: the offline trainer with a small linear algorithm of the test's own
// (registered beside the six): the composed config schema (sections, offsets, defaults, shared
// sections), config errors with file:line:col and suggestions, the written config, the prepared
// dataset (actions mapped with the env's bounds, scaling, BC-Safe's selection), batch sampling,
// the run directory's files, checkpoint round trips, resume reproducing an uninterrupted run,
// interruption by signal, the NaN stop, and the normalized scores of an evaluation.
#define _GNU_SOURCE
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "algos/offline/dataset.h"
#include "algos/offline/dsrl.h"
#include "algos/offline/trainer.h"
#include "core/alloc.h"
#include "core/safetensors.h"
#include "envs/env.h"
#include "tests/test.h"

static char tmp_dir[256];

//---- a test env with bounds other than [-1, 1]
//-----------------------------------------------------

// obs (3): the last action received in env units, steps / 10; reward 1 − |a0 − 2|/2, cost 1 when
// a1 > 1; terminated when a0 > 3.9; registered time limit 10
#define BOX_STEPS 10
typedef struct box_env {
  int t;
  float low[2], high[2], olow[3], ohigh[3];
} box_env;

static int box_reset(srl_env *env, uint64_t seed, float *obs) {
  box_env *e = env->impl;
  e->t = 0;
  obs[0] = 2.0f, obs[1] = 0.0f, obs[2] = 0.0f;
  (void)seed;
  return SRL_OK;
}

static int box_step(srl_env *env, const float *a, float *obs, srl_step *out) {
  box_env *e = env->impl;
  e->t++;
  obs[0] = a[0], obs[1] = a[1], obs[2] = (float)e->t / BOX_STEPS;
  out->reward = 1.0f - fabsf(a[0] - 2.0f) / 2.0f;
  if (a[1] > 1.0f) out->cost = out->info.raw_cost = 1.0f;
  out->terminated = a[0] > 3.9f;
  return SRL_OK;
}

static void box_destroy(srl_env *env) {
  srl_free(env);
}

static const srl_env_vtable box_vt = {box_reset, box_step, NULL, box_destroy};

static int box_create(srl_env **out, const char *options) {
  (void)options;
  char *block = srl_calloc(sizeof(srl_env) + sizeof(box_env) + 64);
  if (!block) return SRL_ENOMEM;
  srl_env *env = (srl_env *)block;
  box_env *e = (box_env *)(block + sizeof(srl_env) + 32);
  e->low[0] = 0.0f, e->high[0] = 4.0f, e->low[1] = -2.0f, e->high[1] = 2.0f;
  for (int i = 0; i < 3; i++) e->olow[i] = -10.0f, e->ohigh[i] = 10.0f;
  env->vt = &box_vt;
  snprintf(env->id, sizeof env->id, "OfflineTestBox");
  env->obs_space = (srl_space){3, e->olow, e->ohigh};
  env->act_space = (srl_space){2, e->low, e->high};
  env->impl = e;
  *out = env;
  return SRL_OK;
}


//---- a linear algorithm implementing the table
//------------------------------------------------------

// act = clip(W·obs + b, ±1), trained by SGD on the MSE to the batch actions
typedef struct lin_params {
  double lr;
  int nan_at;  // update that reports a non-finite loss (0: never)
  int hidden[4];
  int n_hidden;
  char mode[8];
} lin_params;

static const srl_cfg_field lin_fields[] = {
    SRL_CFG_FLOAT(lin_params, lr, "lr", "0.05", 0, 10, "SGD learning rate"),
    SRL_CFG_INT(lin_params, nan_at, "nan_at", "0", 0, 1 << 30, "update that fails (0: none)"),
    SRL_CFG_INT_LIST(lin_params, hidden, n_hidden, "net.hidden", "[8, 4]", 1, 64, "unused widths"),
    SRL_CFG_CHOICE(lin_params, mode, "mode", "sgd", "sgd|none", "none: no parameter change"),
};

typedef struct lin {
  lin_params p;
  int O, A, B;
  long long updates;
  int64_t steps_i64;
  float *w, *b;  // (A, O), (A)
  float *gw, *gb;
  double last_reward_mean, last_cost_mean, last_done_mean, last_init_mean;
} lin;

static int lin_create(void **out, const srl_offline_setup *s, const void *params) {
  lin *l =
      srl_calloc(sizeof *l + sizeof(float) * 2 * (size_t)(s->act_dim * s->obs_dim + s->act_dim));
  if (!l) return SRL_ENOMEM;
  l->p = *(const lin_params *)params;
  l->O = s->obs_dim, l->A = s->act_dim, l->B = s->batch_size;
  l->w = (float *)(l + 1);
  l->b = l->w + l->A * l->O;
  l->gw = l->b + l->A;
  l->gb = l->gw + l->A * l->O;
  srl_rng *rng = NULL;
  SRL_TRY(srl_rng_create(&rng, s->seed, 0));
  srl_rng_fill_normal(rng, l->w, (size_t)(l->A * l->O), 0.0f, 0.1f);
  srl_rng_destroy(rng);
  *out = l;
  return SRL_OK;
}

static void lin_destroy(void *p) {
  srl_free(p);
}

static int lin_update(void *p, const srl_offline_batch *bt, srl_offline_stats *st) {
  lin *l = p;
  int O = l->O, A = l->A;
  if (l->p.nan_at && l->updates + 1 == l->p.nan_at)
    return srl_error(SRL_ENONFINITE, "linear loss is nan at update %lld", l->updates + 1);
  memset(l->gw, 0, sizeof(float) * (size_t)(A * O + A));
  double loss = 0, rs = 0, cs = 0, ds = 0, is = 0;
  for (int i = 0; i < bt->n; i++) {
    const float *x = bt->obs + (size_t)i * O;
    for (int j = 0; j < A; j++) {
      double y = l->b[j];
      for (int k = 0; k < O; k++) y += l->w[j * O + k] * x[k];
      double e = y - bt->act[(size_t)i * A + j];
      loss += e * e;
      for (int k = 0; k < O; k++) l->gw[j * O + k] += (float)(2 * e * x[k] / bt->n);
      l->gb[j] += (float)(2 * e / bt->n);
    }
    rs += bt->reward[i], cs += bt->cost[i], ds += bt->done[i], is += bt->init_obs[(size_t)i * O];
  }
  if (!strcmp(l->p.mode, "sgd"))
    for (int j = 0; j < A * O + A; j++) l->w[j] -= (float)l->p.lr * l->gw[j];
  l->updates++;
  l->last_reward_mean = rs / bt->n, l->last_cost_mean = cs / bt->n;
  l->last_done_mean = ds / bt->n, l->last_init_mean = is / bt->n;
  st->n = 2;
  st->name[0] = "loss";
  st->value[0] = loss / bt->n;
  st->name[1] = "reward_mean";
  st->value[1] = rs / bt->n;
  return SRL_OK;
}

static int lin_act(void *p, float *act, const float *obs, int n, srl_rng *rng) {
  lin *l = p;
  (void)rng;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < l->A; j++) {
      float y = l->b[j];
      for (int k = 0; k < l->O; k++) y += l->w[j * l->O + k] * obs[(size_t)i * l->O + k];
      act[(size_t)i * l->A + j] = y > 1 ? 1 : y < -1 ? -1 : y;
    }
  return SRL_OK;
}

static int lin_save(void *p, srl_st_writer *w) {
  lin *l = p;
  l->steps_i64 = l->updates;
  int64_t one = 1;
  SRL_TRY(srl_st_add_f32(w, "lin.w", l->w, 2, l->A, l->O));
  SRL_TRY(srl_st_add_f32(w, "lin.b", l->b, 1, l->A));
  return srl_st_add(w, "lin.steps", SRL_DTYPE_I64, 1, &one, &l->steps_i64);
}

static int lin_load(void *p, const srl_st_file *f) {
  lin *l = p;
  SRL_TRY(srl_st_read_f32(f, "lin.w", l->w, (size_t)(l->A * l->O)));
  SRL_TRY(srl_st_read_f32(f, "lin.b", l->b, (size_t)l->A));
  const srl_st_tensor *t = srl_st_find(f, "lin.steps");
  if (!t || t->dtype != SRL_DTYPE_I64) return srl_error(SRL_EFORMAT, "no tensor 'lin.steps'");
  memcpy(&l->steps_i64, t->data, 8);
  l->updates = l->steps_i64;
  return SRL_OK;
}

static const srl_offline_algo lin_algo = {"LinBC",    "linbc", sizeof(lin_params), lin_fields,
                                          4,          0,       lin_create,         lin_destroy,
                                          lin_update, lin_act, lin_save,           lin_load};
static const srl_offline_algo lin_safe_algo = {
    "LinBCSafe", "linbc",     sizeof(lin_params), lin_fields, 4,        1,
    lin_create,  lin_destroy, lin_update,         lin_act,    lin_save, lin_load};


//---- helpers -------------------------------------------------------------------------------------

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
  if (s) s[n] = 0;
  fclose(f);
  return s;
}

static int exists(const char *dir, const char *name) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return access(p, F_OK) == 0;
}

static int count_lines(const char *s) {
  int n = 0;
  for (; s && *s; s++) n += *s == '\n';
  return n;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

// a dataset of the box env: 24 episodes of a noisy scripted policy in env units; every third
// episode pushes a1 above 1 (costs), a few end terminal (a0 > 3.9)
static char data_path[512];
static srl_dataset *raw_data;

static int make_dataset(void) {
  int E = 24, n = E * BOX_STEPS;
  srl_dataset *d = NULL;
  SRL_TRY(srl_dataset_create(&d, n, 3, 2));
  srl_rng *rng = NULL;
  SRL_TRY(srl_rng_create(&rng, 99, 0));
  long long r = 0;
  for (int e = 0; e < E; e++) {
    float obs[3] = {2.0f, 0.0f, 0.0f};
    for (int t = 1; t <= BOX_STEPS; t++, r++) {
      float a0 = (float)(2.0 + srl_rng_normal(rng) * 0.8), a1 = (float)(srl_rng_normal(rng) * 0.3);
      if (e % 3 == 0) a1 = 1.5f;
      if (e % 7 == 6 && t == 4) a0 = 3.95f;
      a0 = a0 < 0 ? 0 : a0 > 4 ? 4 : a0;
      memcpy(d->obs + r * 3, obs, sizeof obs);
      d->act[r * 2] = a0, d->act[r * 2 + 1] = a1;
      d->reward[r] = 1.0f - fabsf(a0 - 2.0f) / 2.0f;
      d->cost[r] = a1 > 1.0f ? 1.0f : 0.0f;
      obs[0] = a0, obs[1] = a1, obs[2] = (float)t / BOX_STEPS;
      memcpy(d->next_obs + r * 3, obs, sizeof obs);
      d->terminal[r] = a0 > 3.9f;
      d->timeout[r] = !d->terminal[r] && t == BOX_STEPS;
      if (d->terminal[r]) {
        r++;
        break;
      }
    }
  }
  d->n = r;
  srl_rng_destroy(rng);
  SRL_TRY(srl_dataset_index(d));
  SRL_TRY(srl_dataset_write(d, data_path));
  srl_dataset_destroy(d);
  srl_dataset_read_options ro = {.obs_dim = 3, .act_dim = 2};
  return srl_dataset_read(&raw_data, data_path, &ro);
}

// a config of the linear algorithm on the box data
static srl_offline_config *box_config(const char *algo, int steps) {
  srl_offline_config *c = NULL;
  if (srl_offline_config_create(&c) < 0) return NULL;
  char sets[6][600];
  snprintf(sets[0], sizeof sets[0], "algo=%s", algo);
  snprintf(sets[1], sizeof sets[1], "env_id=OfflineTestBox");
  snprintf(sets[2], sizeof sets[2], "dataset=%s", data_path);
  snprintf(sets[3], sizeof sets[3], "train.steps=%d", steps);
  snprintf(sets[4], sizeof sets[4], "train.batch_size=16");
  snprintf(sets[5], sizeof sets[5], "log_dir=%s/runs", tmp_dir);
  const char *s[6] = {sets[0], sets[1], sets[2], sets[3], sets[4], sets[5]};
  if (srl_offline_config_load(c, NULL, s, 6) < 0) {
    fprintf(stderr, "  box_config: %s\n", srl_errmsg());
    srl_offline_config_destroy(c);
    return NULL;
  }
  return c;
}

static int set(srl_offline_config *c, const char *kv) {
  return srl_offline_config_load(c, NULL, &kv, 1);
}


//---- the composed schema -------------------------------------------------------------------------

TEST(schema_composes_sections) {
  const srl_cfg_schema *s = NULL;
  CHECK_OK(srl_offline_schema(&s));
  if (!s) return;
  CHECK(srl_config_find(s, "train.steps") != NULL);
  CHECK(srl_config_find(s, "task.cost_limit") != NULL);
  CHECK(srl_config_find(s, "eval.episodes") != NULL);
  CHECK(srl_config_find(s, "linbc.lr") != NULL);
  CHECK(srl_config_find(s, "linbc.net.hidden") != NULL);
  CHECK(srl_config_find(s, "lr") == NULL);
  // every registered algorithm's fields appear under its section
  for (int i = 0; i < srl_offline_algo_count(); i++) {
    const srl_offline_algo *a = srl_offline_algo_at(i);
    for (int j = 0; j < a->n_fields; j++) {
      char key[300];
      snprintf(key, sizeof key, "%s.%s", a->section, a->fields[j].key);
      const srl_cfg_field *f = srl_config_find(s, key);
      CHECK(f != NULL);
      if (f) CHECK(f->type == a->fields[j].type && !strcmp(f->def, a->fields[j].def));
    }
  }
  CHECK(srl_offline_algo_find("LinBC") == &lin_algo);
  CHECK(srl_offline_algo_find("nope") == NULL);
  CHECK(srl_offline_algo_at(-1) == NULL && srl_offline_algo_at(srl_offline_algo_count()) == NULL);
  // too late to register now that the schema exists
  static const srl_offline_algo late = {"Late",     "late",  sizeof(lin_params), lin_fields,
                                        4,          0,       lin_create,         lin_destroy,
                                        lin_update, lin_act, lin_save,           lin_load};
  CHECK_ERR(srl_offline_register_algo(&late), SRL_ESTATE);
  CHECK_ERR(srl_offline_register_algo(&lin_algo), SRL_ESTATE);
}

TEST(params_land_in_the_algorithm_struct) {
  srl_offline_config *c = NULL;
  CHECK_OK(srl_offline_config_create(&c));
  if (!c) return;
  lin_params *p = srl_offline_config_params(c, &lin_algo);
  CHECK(p != NULL);
  if (!p) return;
  // defaults from the algorithm's table
  CHECK_CLOSE(p->lr, 0.05, 0, 0);
  CHECK_EQ_INT(p->n_hidden, 2);
  CHECK_EQ_INT(p->hidden[0], 8);
  CHECK_EQ_INT(p->hidden[1], 4);
  CHECK(!strcmp(p->mode, "sgd"));
  CHECK_OK(set(c, "linbc.lr=0.25"));
  CHECK_OK(set(c, "linbc.net.hidden=[3, 5, 7]"));
  CHECK_CLOSE(p->lr, 0.25, 0, 0);
  CHECK_EQ_INT(p->n_hidden, 3);
  CHECK_EQ_INT(p->hidden[2], 7);
  // BC-Safe's twin shares the section and so the struct
  CHECK(srl_offline_config_params(c, &lin_safe_algo) == (void *)p);
  // the parameters of different sections do not overlap
  for (int i = 0; i < srl_offline_algo_count(); i++) {
    const srl_offline_algo *a = srl_offline_algo_at(i);
    char *q = srl_offline_config_params(c, a);
    CHECK(q != NULL);
    CHECK(q >= (char *)c->params);
    CHECK(q + a->params_size <= (char *)c + srl_offline_config_size());
    if (a != &lin_algo && a != &lin_safe_algo)
      CHECK(q + a->params_size <= (char *)p || q >= (char *)p + sizeof *p);
  }
  CHECK(srl_offline_config_params(c, NULL) == NULL);
  srl_offline_config_destroy(c);
}


//---- config errors -------------------------------------------------------------------------------

TEST(config_errors_name_the_place) {
  srl_offline_config *c = NULL, *before = NULL;
  CHECK_OK(srl_offline_config_create(&c));
  CHECK_OK(srl_offline_config_create(&before));
  if (!c || !before) return;
  char path[600];
  snprintf(path, sizeof path, "%s/bad.yaml", tmp_dir);

  write_file(path, "algo: LinBC\ntrain:\n  stpes: 10\n");
  CHECK_ERR(srl_offline_config_load(c, path, NULL, 0), SRL_ECONFIG);
  CHECK_ERRMSG("bad.yaml:3:3");
  CHECK_ERRMSG("did you mean 'train.steps'");
  CHECK(!memcmp(c, before, srl_offline_config_size()));  // untouched on error

  write_file(path, "algo: LinBC\nlinbc:\n  lr: 0.1\n  lrr: 2\n");
  CHECK_ERR(srl_offline_config_load(c, path, NULL, 0), SRL_ECONFIG);
  CHECK_ERRMSG("bad.yaml:4:3");
  CHECK_ERRMSG("linbc.lr");

  write_file(path, "task:\n  cost_limit: -3\n");
  CHECK_ERR(srl_offline_config_load(c, path, NULL, 0), SRL_ECONFIG);
  CHECK_ERRMSG("bad.yaml:2:15");
  CHECK_ERRMSG("out of range");

  const char *bad_set = "train.batch_size=abc";
  CHECK_ERR(srl_offline_config_load(c, NULL, &bad_set, 1), SRL_ECONFIG);
  CHECK_ERRMSG("train.batch_size");
  CHECK(!memcmp(c, before, srl_offline_config_size()));

  // checks across keys
  CHECK_OK(set(c, "algo=Nope"));
  CHECK_ERR(srl_offline_config_check(c), SRL_ECONFIG);
  CHECK_ERRMSG("unknown algo 'Nope'");
  CHECK_ERRMSG("LinBC");
  CHECK_OK(set(c, "algo=LinBC"));
  CHECK_ERR(srl_offline_config_check(c), SRL_ECONFIG);
  CHECK_ERRMSG("dataset");
  CHECK_OK(set(c, "dataset=x.hdf5"));
  CHECK_OK(set(c, "env_id=NoSuchEnv"));
  CHECK_ERR(srl_offline_config_check(c), SRL_ECONFIG);
  CHECK_ERRMSG("NoSuchEnv");
  CHECK_OK(set(c, "env_id=SimplePointGoal"));
  CHECK_OK(srl_offline_config_check(c));
  CHECK_OK(set(c, "eval.score_task=NotATask"));
  CHECK_ERR(srl_offline_config_check(c), SRL_ECONFIG);
  CHECK_ERRMSG("NotATask");
  // a missing file
  CHECK_OK(set(c, "eval.score_task=\"\""));
  srl_offline_options opt = {.quiet = 1};
  CHECK(srl_offline_create(&(srl_offline *){NULL}, c, &opt) < 0);
  CHECK_ERRMSG("x.hdf5");
  srl_offline_config_destroy(c);
  srl_offline_config_destroy(before);
}

TEST(config_text_has_the_algorithm_section_and_loads_back) {
  srl_offline_config *c = NULL, *back = NULL;
  CHECK_OK(srl_offline_config_create(&c));
  CHECK_OK(srl_offline_config_create(&back));
  if (!c || !back) return;
  CHECK_OK(set(c, "algo=LinBC"));
  CHECK_OK(set(c, "linbc.lr=0.125"));
  CHECK_OK(set(c, "task.reward_scale=0.1"));
  char *text = NULL;
  CHECK_OK(srl_offline_config_text(c, &text));
  if (!text) return;
  CHECK(strstr(text, "linbc:") != NULL);
  CHECK(strstr(text, "lr: 0.125") != NULL);
  CHECK(strstr(text, "train:") && strstr(text, "task:") && strstr(text, "eval:"));
  if (srl_offline_algo_find("FISOR")) CHECK(strstr(text, "fisor:") == NULL);
  const srl_cfg_schema *s;
  CHECK_OK(srl_offline_schema(&s));
  CHECK_OK(srl_config_load_string(s, back, text, "text"));
  CHECK(!memcmp(c, back, srl_offline_config_size()));
  free(text);
  srl_offline_config_destroy(c);
  srl_offline_config_destroy(back);
}


//---- the prepared dataset and the batches
//------------------------------------------------------------

TEST(dataset_actions_mapped_and_scaled) {
  srl_offline_config *c = box_config("LinBC", 10);
  if (!c) return;
  CHECK_OK(set(c, "task.reward_scale=0.5"));
  CHECK_OK(set(c, "task.cost_scale=3"));
  CHECK_OK(set(c, "task.action_clip=0.9"));
  srl_offline_options opt = {.quiet = 1};
  srl_offline *t = NULL;
  CHECK_OK(srl_offline_create(&t, c, &opt));
  if (!t) return;
  const srl_dataset *d = srl_offline_dataset(t);
  CHECK_EQ_INT(d->n, raw_data->n);
  CHECK_EQ_INT(d->n_episodes, raw_data->n_episodes);
  int inside = 0;
  for (long long i = 0; i < d->n; i++) {
    // a0 in [0, 4] -> (a0 − 0)/4·2 − 1; a1 in [−2, 2] -> a1/2; then clipped to ±0.9
    double m0 = raw_data->act[2 * i] / 2.0 - 1.0, m1 = raw_data->act[2 * i + 1] / 2.0;
    m0 = m0 > 0.9 ? 0.9 : m0 < -0.9 ? -0.9 : m0;
    m1 = m1 > 0.9 ? 0.9 : m1 < -0.9 ? -0.9 : m1;
    CHECK_CLOSE(d->act[2 * i], m0, 1e-6, 0);
    CHECK_CLOSE(d->act[2 * i + 1], m1, 1e-6, 0);
    inside += fabs(m0) < 0.9;
    CHECK_CLOSE(d->reward[i], 0.5 * raw_data->reward[i], 1e-7, 1e-6);
    CHECK_CLOSE(d->cost[i], 3.0 * raw_data->cost[i], 0, 0);
  }
  CHECK(inside > d->n / 2);
  srl_offline_destroy(t);

  // "returns": rewards times episode_len / (max − min episode return) of the data itself
  CHECK_OK(set(c, "task.reward_scale=1"));
  CHECK_OK(set(c, "task.reward_normalize=returns"));
  CHECK_OK(srl_offline_create(&t, c, &opt));
  if (!t) return;
  double lo = INFINITY, hi = -INFINITY;
  for (long long e = 0; e < raw_data->n_episodes; e++) {
    lo = fmin(lo, raw_data->ep_return[e]);
    hi = fmax(hi, raw_data->ep_return[e]);
  }
  d = srl_offline_dataset(t);
  for (long long i = 0; i < d->n; i += 7)
    CHECK_CLOSE(d->reward[i], raw_data->reward[i] * BOX_STEPS / (hi - lo), 1e-6, 1e-5);
  srl_offline_destroy(t);
  srl_offline_config_destroy(c);
}

TEST(bc_safe_keeps_the_safe_episodes) {
  srl_offline_config *c = box_config("LinBCSafe", 10);
  if (!c) return;
  CHECK_OK(set(c, "task.cost_limit=0"));
  srl_offline_options opt = {.quiet = 1};
  srl_offline *t = NULL;
  CHECK_OK(srl_offline_create(&t, c, &opt));
  if (!t) return;
  const srl_dataset *d = srl_offline_dataset(t);
  long long safe = 0, rows = 0;
  for (long long e = 0; e < raw_data->n_episodes; e++)
    if (raw_data->ep_cost[e] <= 0)
      safe++, rows += raw_data->ep_start[e + 1] - raw_data->ep_start[e];
  CHECK(safe > 0 && safe < raw_data->n_episodes);
  CHECK_EQ_INT(d->n_episodes, safe);
  CHECK_EQ_INT(d->n, rows);
  for (long long e = 0; e < d->n_episodes; e++) CHECK(d->ep_cost[e] <= 0);
  srl_offline_destroy(t);
  srl_offline_config_destroy(c);
}

TEST(batches_come_from_the_data) {
  srl_offline_config *c = box_config("LinBC", 10);
  if (!c) return;
  srl_offline_options opt = {.quiet = 1};
  srl_offline *t = NULL, *u = NULL;
  CHECK_OK(srl_offline_create(&t, c, &opt));
  CHECK_OK(srl_offline_create(&u, c, &opt));
  if (!t || !u) return;
  const srl_dataset *d = srl_offline_dataset(t);
  srl_offline_batch b, b2;
  int dones = 0, matched = 0;
  for (int round = 0; round < 5; round++) {
    CHECK_OK(srl_offline_sample(t, &b));
    CHECK_EQ_INT(b.n, 16);
    for (int i = 0; i < b.n; i++) {
      // find the row: observations, actions, next observations and flags all belong to it
      long long row = -1;
      for (long long r = 0; r < d->n && row < 0; r++)
        if (!memcmp(d->obs + 3 * r, b.obs + 3 * i, 12) && !memcmp(d->act + 2 * r, b.act + 2 * i, 8))
          row = r;
      CHECK(row >= 0);
      if (row < 0) continue;
      matched++;
      CHECK(!memcmp(d->next_obs + 3 * row, b.next_obs + 3 * i, 12));
      CHECK(b.reward[i] == d->reward[row] && b.cost[i] == d->cost[row]);
      CHECK(b.done[i] == (float)(d->terminal[row] || d->timeout[row]));
      dones += b.done[i] != 0;
      // init_obs is the first observation of some episode
      int start = 0;
      for (long long e = 0; e < d->n_episodes; e++)
        start |= !memcmp(d->obs + 3 * d->ep_start[e], b.init_obs + 3 * i, 12);
      CHECK(start);
    }
    // the same seed draws the same batches
    CHECK_OK(srl_offline_sample(u, &b2));
    CHECK(!memcmp(b.obs, b2.obs, sizeof(float) * 3 * 16));
    CHECK(!memcmp(b.init_obs, b2.init_obs, sizeof(float) * 3 * 16));
  }
  CHECK_EQ_INT(matched, 80);
  CHECK(dones > 0);
  srl_offline_destroy(t);
  srl_offline_destroy(u);
  srl_offline_config_destroy(c);
}


//---- the run directory, checkpoints and resume
//---------------------------------------------------------

TEST(run_directory_files) {
  srl_offline_config *c = box_config("LinBC", 40);
  if (!c) return;
  CHECK_OK(set(c, "train.log_every=10"));
  CHECK_OK(set(c, "train.eval_every=20"));
  CHECK_OK(set(c, "train.eval_episodes=3"));
  CHECK_OK(set(c, "train.save_every=15"));
  CHECK_OK(set(c, "eval.episodes=4"));
  srl_offline_options opt = {.quiet = 1};
  srl_offline *t = NULL;
  CHECK_OK(srl_offline_create(&t, c, &opt));
  if (!t) return;
  const char *dir = srl_offline_run_dir(t);
  CHECK(strstr(dir, "/runs/LinBC-OfflineTestBox-s0-") != NULL);
  CHECK_OK(srl_offline_train(t));
  CHECK_EQ_INT(srl_offline_step(t), 40);
  CHECK(exists(dir, "config.yaml") && exists(dir, "final.safetensors"));
  CHECK(exists(dir, "checkpoints/step-15.safetensors"));
  CHECK(exists(dir, "checkpoints/step-30.safetensors"));
  CHECK(!exists(dir, "checkpoints/step-45.safetensors"));
  char path[1200];
  snprintf(path, sizeof path, "%s/progress.csv", dir);
  char *csv = slurp(path);
  const char *header =
      "step,ep_ret,ep_cost,ep_len,norm_ret,norm_cost,ret_std,cost_std,updates_per_s,wall_s,loss,"
      "reward_mean\n";
  CHECK(csv && !strncmp(csv, header, strlen(header)));
  CHECK_EQ_INT(count_lines(csv), 5);  // header, steps 10, 20, 30, 40
  CHECK(csv && strstr(csv, "\n10,nan,nan,nan,nan,nan,nan,nan,") != NULL);
  CHECK(csv && strstr(csv, "\n20,") && !strstr(csv, "\n20,nan"));  // evaluated at 20
  free(csv);
  snprintf(path, sizeof path, "%s/events.jsonl", dir);
  char *ev = slurp(path);
  CHECK(ev && strstr(ev, "\"event\": \"start\"") && strstr(ev, "\"event\": \"finish\""));
  CHECK(ev && strstr(ev, "\"event\": \"checkpoint\", \"time\""));
  CHECK(ev && strstr(ev, "\"path\": \"checkpoints/step-30.safetensors\""));
  CHECK(ev && strstr(ev, "\"final\": true, \"episodes\": 4"));
  CHECK(ev && strstr(ev, "\"final\": false, \"episodes\": 3"));
  free(ev);
  snprintf(path, sizeof path, "%s/summary.json", dir);
  char *sum = slurp(path);
  CHECK(sum && strstr(sum, "\"status\": \"finished\"") && strstr(sum, "\"steps\": 40"));
  CHECK(sum && strstr(sum, "\"checkpoint\": \"final.safetensors\""));
  CHECK(sum && strstr(sum, "\"norm_cost\": "));
  free(sum);
  // config.yaml loads back to the run's config
  snprintf(path, sizeof path, "%s/config.yaml", dir);
  srl_offline_config *back = NULL;
  CHECK_OK(srl_offline_config_create(&back));
  CHECK_OK(srl_offline_config_load(back, path, NULL, 0));
  CHECK(back && !memcmp(back, srl_offline_get_config(t), srl_offline_config_size()));
  srl_offline_config_destroy(back);
  // the final evaluation's numbers against the policy run by hand on the env
  const srl_offline_eval_result *r = srl_offline_last_eval(t);
  CHECK(r != NULL);
  if (r) {
    lin *l = srl_offline_algo_state(t);
    srl_env *env = NULL;
    CHECK_OK(srl_env_create(&env, "OfflineTestBox", NULL));
    float obs[3], a[2], ea[2];
    srl_step st;
    double ret = 0, cost = 0;
    int len = 0;
    CHECK_OK(srl_env_reset(env, 0, obs));
    do {
      lin_act(l, a, obs, 1, NULL);
      ea[0] = 2.0f * (a[0] + 1.0f), ea[1] = 2.0f * a[1];  // [-1, 1] back to the env's bounds
      CHECK_OK(srl_env_step(env, ea, obs, &st));
      ret += st.reward, cost += st.cost, len++;
    } while (!st.terminated && !st.truncated);
    srl_env_destroy(env);
    CHECK_CLOSE(r->ret_mean, ret, 1e-4, 1e-5);  // the box env ignores the seed: all episodes equal
    CHECK_CLOSE(r->cost_mean, cost, 0, 0);
    CHECK_CLOSE(r->len_mean, len, 0, 0);
    CHECK_EQ_INT(r->episodes, 4);
  }
  srl_offline_destroy(t);
  srl_offline_config_destroy(c);
}

// the tensors lin.w and lin.b of a checkpoint
static int read_lin(const char *path, float *wb) {
  srl_st_file *f = NULL;
  SRL_TRY(srl_st_open(&f, path));
  int rc = srl_st_read_f32(f, "lin.w", wb, 6);
  if (rc == 0) rc = srl_st_read_f32(f, "lin.b", wb + 6, 2);
  srl_st_close(f);
  return rc;
}

// 1 when two run directories' final.safetensors hold the same LinBC weights, bit for bit
static int same_final_weights(const char *dir_a, const char *dir_b) {
  float wa[8], wb[8];
  char pa[1200], pb[1200];
  snprintf(pa, sizeof pa, "%s/final.safetensors", dir_a);
  snprintf(pb, sizeof pb, "%s/final.safetensors", dir_b);
  if (read_lin(pa, wa) < 0 || read_lin(pb, wb) < 0) return -1;
  return !memcmp(wa, wb, sizeof wa);
}

TEST(checkpoint_round_trip_gives_the_same_actions) {
  srl_offline_config *c = box_config("LinBC", 25);
  if (!c) return;
  CHECK_OK(set(c, "eval.episodes=0"));
  srl_offline_options opt = {.quiet = 1};
  srl_offline *t = NULL;
  CHECK_OK(srl_offline_create(&t, c, &opt));
  if (!t) return;
  CHECK_OK(srl_offline_train(t));
  CHECK(srl_offline_last_eval(t) == NULL);
  srl_offline_policy *p = NULL;
  CHECK_OK(srl_offline_policy_load(&p, srl_offline_run_dir(t), NULL, 4, NULL, 0));
  if (p) {
    CHECK(strstr(p->path, "final.safetensors") != NULL);
    CHECK_EQ_INT(p->step, 25);
    CHECK(p->algo == &lin_algo);
    CHECK_EQ_INT(p->obs_dim, 3);
    float obs[12], a1[8], a2[8];
    for (int i = 0; i < 12; i++) obs[i] = 0.3f * (float)i - 1.0f;
    CHECK_OK(srl_offline_policy_act(p, a1, obs, 4, NULL));
    lin_act(srl_offline_algo_state(t), a2, obs, 4, NULL);
    CHECK(!memcmp(a1, a2, sizeof a1));
    CHECK_ERR(srl_offline_policy_act(p, a1, obs, 5, NULL), SRL_EINVAL);
    srl_offline_policy_destroy(p);
  }
  // keys of the algorithm's own section change for the loaded policy; other keys are refused
  const char *own[] = {"linbc.lr=0.5"}, *other[] = {"train.steps=5"}, *typo[] = {"linbc.lx=1"};
  CHECK_OK(srl_offline_policy_load(&p, srl_offline_run_dir(t), NULL, 1, own, 1));
  if (p) CHECK(((lin_params *)srl_offline_config_params(p->cfg, p->algo))->lr == 0.5f);
  srl_offline_policy_destroy(p);
  CHECK_ERR(srl_offline_policy_load(&p, srl_offline_run_dir(t), NULL, 1, other, 1), SRL_ECONFIG);
  CHECK_ERRMSG("a trained LinBC policy takes only linbc.* keys");
  CHECK_ERR(srl_offline_policy_load(&p, srl_offline_run_dir(t), NULL, 1, typo, 1), SRL_ECONFIG);
  CHECK(p == NULL);
  // a file that is not an offline checkpoint
  char path[1200];
  snprintf(path, sizeof path, "%s/config.yaml", srl_offline_run_dir(t));
  CHECK(srl_offline_policy_load(&p, path, NULL, 1, NULL, 0) < 0);
  snprintf(path, sizeof path, "%s/nothing", tmp_dir);
  CHECK_ERR(srl_offline_policy_load(&p, path, NULL, 1, NULL, 0), SRL_ENOTFOUND);
  srl_offline_destroy(t);
  srl_offline_config_destroy(c);
}

TEST(resume_reproduces_the_uninterrupted_run) {
  srl_offline_config *c = box_config("LinBC", 60);
  if (!c) return;
  CHECK_OK(set(c, "train.log_every=7"));
  CHECK_OK(set(c, "train.save_every=1000"));
  CHECK_OK(set(c, "eval.episodes=0"));
  srl_offline_options opt = {.quiet = 1};
  srl_offline *a = NULL, *b = NULL;
  CHECK_OK(srl_offline_create(&a, c, &opt));
  CHECK_OK(srl_offline_create(&b, c, &opt));
  if (!a || !b) return;
  CHECK_OK(srl_offline_train(a));

  // b stops at update 31 (a row is half averaged then), is saved and resumed
  CHECK_OK(srl_offline_run(b, 31));
  srl_offline_request_stop(b);
  CHECK_ERR(srl_offline_run(b, 100), SRL_EINTERRUPTED);
  CHECK_ERRMSG("--resume");
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", srl_offline_run_dir(b));
  CHECK(exists(dir, "checkpoints/step-31.safetensors"));
  char path[1200];
  snprintf(path, sizeof path, "%s/summary.json", dir);
  char *sum = slurp(path);
  CHECK(sum && strstr(sum, "\"status\": \"interrupted\"") && strstr(sum, "\"steps\": 31"));
  free(sum);
  CHECK_ERR(srl_offline_run(b, 1), SRL_ESTATE);
  srl_offline_destroy(b);
  b = NULL;
  CHECK_OK(srl_offline_resume(&b, dir, NULL, 0, &opt));
  if (!b) return;
  CHECK_EQ_INT(srl_offline_step(b), 31);
  CHECK_OK(srl_offline_train(b));

  CHECK(same_final_weights(srl_offline_run_dir(a), dir) == 1);
  // progress rows agree but for the timing columns
  char pa[1200], pb[1200];
  snprintf(pa, sizeof pa, "%s/progress.csv", srl_offline_run_dir(a));
  snprintf(pb, sizeof pb, "%s/progress.csv", dir);
  char *ca = slurp(pa), *cb = slurp(pb);
  CHECK(ca && cb && count_lines(ca) == count_lines(cb) && count_lines(ca) == 10);
  for (char *x = ca, *y = cb; x && y && *x && *y;) {
    char *ex = strchr(x, '\n'), *ey = strchr(y, '\n');
    if (!ex || !ey) break;
    *ex = *ey = 0;
    // drop columns 9 and 10 (updates_per_s, wall_s)
    char fx[512] = "", fy[512] = "";
    int col = 0;
    for (char *tok = strtok(x, ","); tok; tok = strtok(NULL, ","), col++)
      if (col != 8 && col != 9) strncat(fx, tok, sizeof fx - strlen(fx) - 2), strcat(fx, ",");
    col = 0;
    for (char *tok = strtok(y, ","); tok; tok = strtok(NULL, ","), col++)
      if (col != 8 && col != 9) strncat(fy, tok, sizeof fy - strlen(fy) - 2), strcat(fy, ",");
    CHECK(!strcmp(fx, fy));
    if (strcmp(fx, fy)) fprintf(stderr, "  %s\n  %s\n", fx, fy);
    x = ex + 1, y = ey + 1;
  }
  free(ca);
  free(cb);
  snprintf(path, sizeof path, "%s/events.jsonl", dir);
  char *ev = slurp(path);
  CHECK(ev && strstr(ev, "\"event\": \"interrupted\"") && strstr(ev, "\"event\": \"resume\""));
  free(ev);
  // a finished run does not resume
  CHECK_ERR(srl_offline_resume(&(srl_offline *){NULL}, dir, NULL, 0, &opt), SRL_ESTATE);
  CHECK_ERRMSG("train.steps");
  srl_offline_destroy(a);
  srl_offline_destroy(b);
  srl_offline_config_destroy(c);
}

TEST(resume_extends_a_finished_run) {
  srl_offline_config *c = box_config("LinBC", 60);
  if (!c) return;
  CHECK_OK(set(c, "train.log_every=10"));
  CHECK_OK(set(c, "train.save_every=1000"));
  CHECK_OK(set(c, "eval.episodes=0"));
  srl_offline_options opt = {.quiet = 1};
  srl_offline *a = NULL, *b = NULL;
  CHECK_OK(srl_offline_create(&a, c, &opt));
  CHECK_OK(set(c, "train.steps=30"));
  CHECK_OK(srl_offline_create(&b, c, &opt));
  if (!a || !b) return;
  CHECK_OK(srl_offline_train(a));
  CHECK_OK(srl_offline_train(b));
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", srl_offline_run_dir(b));
  srl_offline_destroy(b);
  b = NULL;

  // what the run learns from stays; the shape of its networks too
  const char *data[] = {"dataset=other.hdf5"}, *task[] = {"task.cost_limit=3"};
  CHECK_ERR(srl_offline_resume(&b, dir, data, 1, &opt), SRL_ECONFIG);
  CHECK_ERRMSG("dataset");
  CHECK_ERR(srl_offline_resume(&b, dir, task, 1, &opt), SRL_ECONFIG);
  CHECK_ERRMSG("task");
  CHECK(exists(dir, "final.safetensors") && exists(dir, "summary.json"));

  // 30 more updates continue from final.safetensors and equal the 60-update run
  const char *more[] = {"train.steps=60"};
  CHECK_OK(srl_offline_resume(&b, dir, more, 1, &opt));
  if (!b) return;
  CHECK_EQ_INT(srl_offline_step(b), 30);
  CHECK(!exists(dir, "final.safetensors") && !exists(dir, "summary.json"));
  CHECK(exists(dir, "checkpoints/step-30.safetensors"));
  CHECK_OK(srl_offline_train(b));
  CHECK(same_final_weights(srl_offline_run_dir(a), dir) == 1);
  char pb[1200];
  snprintf(pb, sizeof pb, "%s/config.yaml", dir);
  char *cfg = slurp(pb);
  CHECK(cfg && strstr(cfg, "steps: 60"));
  free(cfg);
  snprintf(pb, sizeof pb, "%s/events.jsonl", dir);
  char *ev = slurp(pb);
  CHECK(ev && strstr(ev, "\"sets\": [\"train.steps=60\"]"));
  free(ev);
  snprintf(pb, sizeof pb, "%s/progress.csv", dir);
  char *csv = slurp(pb);
  CHECK(csv && count_lines(csv) == 7);  // the header and a row every 10 updates
  free(csv);
  srl_offline_destroy(b);
  srl_offline_destroy(a);
  srl_offline_config_destroy(c);
}

TEST(signal_stops_with_a_checkpoint) {
  srl_offline_config *c = box_config("LinBC", 50);
  if (!c) return;
  srl_offline_options opt = {.quiet = 1};
  srl_offline *t = NULL;
  CHECK_OK(srl_offline_create(&t, c, &opt));
  if (!t) return;
  CHECK_OK(srl_offline_run(t, 12));
  CHECK_OK(srl_offline_handle_signals());
  raise(SIGINT);
  CHECK_ERR(srl_offline_train(t), SRL_EINTERRUPTED);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  CHECK_EQ_INT(srl_offline_step(t), 12);
  CHECK(exists(srl_offline_run_dir(t), "checkpoints/step-12.safetensors"));
  CHECK(!exists(srl_offline_run_dir(t), "final.safetensors"));
  srl_offline_destroy(t);
  CHECK_OK(srl_offline_handle_signals());  // clears the flag for the tests after this one
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  srl_offline_config_destroy(c);
}

TEST(nan_stop_keeps_the_last_good_checkpoint) {
  srl_offline_config *c = box_config("LinBC", 100);
  if (!c) return;
  CHECK_OK(set(c, "linbc.nan_at=25"));
  CHECK_OK(set(c, "train.save_every=10"));
  srl_offline_options opt = {.quiet = 1};
  srl_offline *t = NULL;
  CHECK_OK(srl_offline_create(&t, c, &opt));
  if (!t) return;
  CHECK_ERR(srl_offline_train(t), SRL_ENONFINITE);
  CHECK_ERRMSG("linear loss is nan at update 25");
  CHECK_ERRMSG("checkpoints/step-20.safetensors");
  CHECK_EQ_INT(srl_offline_step(t), 24);
  const char *dir = srl_offline_run_dir(t);
  CHECK(!exists(dir, "final.safetensors") && !exists(dir, "checkpoints/step-30.safetensors"));
  char path[1200];
  snprintf(path, sizeof path, "%s/summary.json", dir);
  char *sum = slurp(path);
  CHECK(sum && strstr(sum, "\"status\": \"nan_stop\""));
  CHECK(sum && strstr(sum, "\"checkpoint\": \"checkpoints/step-20.safetensors\""));
  CHECK(sum && strstr(sum, "linear loss is nan"));
  free(sum);
  snprintf(path, sizeof path, "%s/events.jsonl", dir);
  char *ev = slurp(path);
  CHECK(ev && strstr(ev, "\"event\": \"nan_stop\"") && strstr(ev, "linear loss is nan"));
  free(ev);
  CHECK_ERR(srl_offline_run(t, 1), SRL_ESTATE);
  // the last good checkpoint loads and acts
  srl_offline_policy *p = NULL;
  CHECK_OK(srl_offline_policy_load(&p, dir, NULL, 1, NULL, 0));
  if (p) CHECK_EQ_INT(p->step, 20);
  srl_offline_policy_destroy(p);
  srl_offline_destroy(t);
  srl_offline_config_destroy(c);
}


//---- normalized scores ---------------------------------------------------------------------------

TEST(normalized_scores_as_dsrl) {
  srl_offline_episode eps[3] = {{.ret = 10, .cost = 4}, {.ret = 20, .cost = 12}, {.ret = 0.5}};
  srl_offline_eval_result r;
  CHECK_OK(srl_offline_eval_summarize(&r, eps, 3, 10, "SafetyPointGoal1"));
  // PointGoal1's DSRL reference returns, written out here from dsrl/infos.py
  double lo = 0.01196012764197707, hi = 30.071114857340543;
  CHECK_CLOSE(eps[0].norm_ret, (10 - lo) / (hi - lo), 1e-12, 0);
  CHECK_CLOSE(eps[1].norm_ret, (20 - lo) / (hi - lo), 1e-12, 0);
  CHECK_CLOSE(eps[1].norm_cost, 1.2, 1e-12, 0);
  double m = ((10 - lo) + (20 - lo) + (0.5 - lo)) / (hi - lo) / 3;
  CHECK_CLOSE(r.norm_ret_mean, m, 1e-12, 0);
  CHECK_CLOSE(r.norm_cost_mean, (0.4 + 1.2 + 0.0) / 3, 1e-12, 0);
  double sd = sqrt((pow(0.4 - r.norm_cost_mean, 2) + pow(1.2 - r.norm_cost_mean, 2) +
                    pow(0.0 - r.norm_cost_mean, 2)) /
                   3);
  CHECK_CLOSE(r.norm_cost_std, sd, 1e-12, 0);
  CHECK_CLOSE(r.ret_mean, 30.5 / 3, 1e-12, 0);
  CHECK(r.safe);
  CHECK_EQ_INT(r.within_limit, 2);      // costs 4 and 0; 12 is above 10
  CHECK_CLOSE(r.cost_median, 4, 0, 0);  // of 0, 4, 12
  CHECK(!strcmp(r.task, "PointGoal1"));
  CHECK(!r.d4rl);
  // k = 0: (C + 1)/(0 + 1), and unsafe
  CHECK_OK(srl_offline_eval_summarize(&r, eps, 3, 0, "PointGoal1"));
  CHECK_CLOSE(eps[0].norm_cost, 5, 1e-12, 0);
  CHECK_CLOSE(eps[2].norm_cost, 1, 1e-12, 0);
  CHECK(!r.safe);
  CHECK_EQ_INT(r.within_limit, 1);  // only the episode without cost
  CHECK_OK(srl_offline_eval_summarize(&r, eps, 2, 10, NULL));
  CHECK_CLOSE(r.cost_median, 8, 0, 0);  // an even count: the mean of 4 and 12
  // D4RL: the score is 100 × (R − REF_MIN)/(REF_MAX − REF_MIN)
  CHECK_OK(srl_offline_eval_summarize(&r, eps, 3, 10, "halfcheetah"));
  CHECK(r.d4rl);
  CHECK_CLOSE(r.d4rl_score_mean, 100 * (30.5 / 3 - (-280.178953)) / (12135.0 - (-280.178953)), 1e-9,
              0);
  // no reference task: NaN normalized reward, normalized cost still there
  CHECK_OK(srl_offline_eval_summarize(&r, eps, 3, 10, "OfflineTestBox"));
  CHECK(isnan(r.norm_ret_mean) && isnan(eps[0].norm_ret));
  CHECK(!r.task[0]);
  CHECK_CLOSE(r.norm_cost_mean, (0.4 + 1.2) / 3, 1e-12, 0);
  CHECK_ERR(srl_offline_eval_summarize(&r, eps, 0, 10, NULL), SRL_EINVAL);
}


int main(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/srl_offline_trainer_XXXXXX");
  if (!mkdtemp(tmp_dir)) return 1;
  snprintf(data_path, sizeof data_path, "%s/box.hdf5", tmp_dir);
  srl_env_spec spec = {"OfflineTestBox", box_create, 3, 2, BOX_STEPS, "offline trainer test env"};
  if (srl_env_register(&spec) < 0 || srl_offline_register_algo(&lin_algo) < 0 ||
      srl_offline_register_algo(&lin_safe_algo) < 0 || make_dataset() < 0) {
    fprintf(stderr, "setup: %s\n", srl_errmsg());
    return 1;
  }
  RUN(schema_composes_sections);
  RUN(params_land_in_the_algorithm_struct);
  RUN(config_errors_name_the_place);
  RUN(config_text_has_the_algorithm_section_and_loads_back);
  RUN(dataset_actions_mapped_and_scaled);
  RUN(bc_safe_keeps_the_safe_episodes);
  RUN(batches_come_from_the_data);
  RUN(run_directory_files);
  RUN(checkpoint_round_trip_gives_the_same_actions);
  RUN(resume_reproduces_the_uninterrupted_run);
  RUN(resume_extends_a_finished_run);
  RUN(signal_stops_with_a_checkpoint);
  RUN(nan_stop_keeps_the_last_good_checkpoint);
  RUN(normalized_scores_as_dsrl);
  srl_dataset_destroy(raw_data);
  nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return TEST_REPORT();
}

// test_dataset.c: offline datasets and DSRL's constants. Episode indexing from the flags (tail
// kept or not), summaries and selection against sums computed here; the writer and reader round
// trip bit for bit, through the threaded chunk path and through H5Dread alike; D4RL files (no
// costs, no next_observations) made by deleting keys from a written file; refused files (missing
// key, dims, non-finite value, flags not 0/1, truncated, corrupt chunk, not HDF5, missing) leave
// nothing behind and name the key and row; DSRL's table, name lookup and normalisation; the
// density filter on hand-placed (cost, return) points, including the extra bin at the maximum.
#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "algos/offline/dataset.h"
#include "algos/offline/dsrl.h"
#include "core/rng.h"
#include "test.h"

extern long long srl__dataset_chunks_threaded;  // algos/offline/dataset.c

static char tmpdir[256];

static const char *tmp_path(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

// a dataset of n rows with episodes ending at the given rows (terminal when term[i], else
// timeout); values from seed
static srl_dataset *make(long long n, int od, int ad, const long long *ends, const int *term,
                         int n_ends, uint64_t seed) {
  srl_dataset *d = NULL;
  srl_rng *r = NULL;
  if (srl_dataset_create(&d, n, od, ad) < 0 || srl_rng_create(&r, seed, 0) < 0) return NULL;
  for (long long i = 0; i < n * od; i++) d->obs[i] = (float)srl_rng_normal(r);
  for (long long i = 0; i < n * od; i++) d->next_obs[i] = (float)srl_rng_normal(r);
  for (long long i = 0; i < n * ad; i++) d->act[i] = (float)srl_rng_uniform_range(r, -2, 2);
  for (long long i = 0; i < n; i++) {
    d->reward[i] = (float)srl_rng_normal(r);
    d->cost[i] = srl_rng_uniform(r) < 0.3 ? 1.0f : 0.0f;
  }
  for (int e = 0; e < n_ends; e++) (term[e] ? d->terminal : d->timeout)[ends[e]] = 1;
  srl_rng_destroy(r);
  srl_dataset_index(d);
  return d;
}

TEST(episodes_follow_the_flags) {
  long long ends[] = {2, 5, 6};
  int term[] = {0, 1, 0};
  srl_dataset *d = make(10, 3, 2, ends, term, 3, 1);
  CHECK(d != NULL);
  if (!d) return;
  // rows 7..9 follow the last flag: no episode unless the tail is kept
  CHECK_EQ_INT(d->n_episodes, 3);
  long long want[] = {0, 3, 6, 7};
  for (int e = 0; e <= 3; e++) CHECK_EQ_INT(d->ep_start[e], want[e]);
  for (int e = 0; e < 3; e++) {
    double r = 0, c = 0;
    for (long long i = want[e]; i < want[e + 1]; i++) r += d->reward[i], c += d->cost[i];
    CHECK(d->ep_return[e] == r);
    CHECK(d->ep_cost[e] == c);
    CHECK(srl_dataset_episode_finished(d, e));
  }
  CHECK_OK(srl_dataset_index_tail(d, 1));
  CHECK_EQ_INT(d->n_episodes, 4);
  CHECK_EQ_INT(d->ep_start[4], 10);
  CHECK(!srl_dataset_episode_finished(d, 3));

  // summary against sums made here
  srl_dataset_summary s;
  CHECK_OK(srl_dataset_summarize(&s, d, 1.0));
  CHECK_EQ_INT(s.transitions, 10);
  CHECK_EQ_INT(s.episodes, 4);
  CHECK_EQ_INT(s.tail_rows, 3);
  CHECK_EQ_INT(s.terminals, 1);
  CHECK_EQ_INT(s.timeouts, 2);
  double mn = 1e300, mx = -1e300, mean = 0;
  long long safe = 0;
  for (int e = 0; e < 4; e++) {
    mn = fmin(mn, d->ep_return[e]), mx = fmax(mx, d->ep_return[e]), mean += d->ep_return[e] / 4;
    safe += d->ep_cost[e] <= 1.0;
  }
  CHECK(s.ret_min == mn && s.ret_max == mx);
  CHECK_CLOSE(s.ret_mean, mean, 1e-12, 1e-12);
  CHECK_EQ_INT(s.safe_episodes, safe);
  CHECK_CLOSE(s.safe_share, safe / 4.0, 1e-15, 0);
  CHECK_CLOSE(s.len_mean, 2.5, 1e-15, 0);

  // lowering n below the creation size (a collector that stopped early)
  d->n = 6;
  CHECK_OK(srl_dataset_index(d));
  CHECK_EQ_INT(d->n_episodes, 2);
  d->n = 11;
  CHECK_ERR(srl_dataset_index(d), SRL_ERANGE);
  d->n = 10;
  srl_dataset_destroy(d);
}

TEST(select_copies_episodes_in_order) {
  long long ends[] = {1, 4, 5, 9};
  int term[] = {0, 0, 1, 0};
  srl_dataset *d = make(10, 4, 3, ends, term, 4, 2), *s = NULL;
  uint8_t keep[] = {1, 0, 0, 1};
  CHECK_OK(srl_dataset_select(&s, d, keep));
  if (!s) {
    srl_dataset_destroy(d);
    return;
  }
  CHECK_EQ_INT(s->n, 2 + 4);
  CHECK_EQ_INT(s->n_episodes, 2);
  CHECK(!memcmp(s->obs, d->obs, sizeof(float) * 2 * 4));
  CHECK(!memcmp(s->obs + 8, d->obs + 6 * 4, sizeof(float) * 4 * 4));
  CHECK(!memcmp(s->next_obs + 8, d->next_obs + 6 * 4, sizeof(float) * 4 * 4));
  CHECK(!memcmp(s->act + 6, d->act + 6 * 3, sizeof(float) * 4 * 3));
  CHECK(s->ep_return[1] == d->ep_return[3] && s->ep_cost[0] == d->ep_cost[0]);
  CHECK(s->timeout[5] == 1 && s->timeout[1] == 1 && s->terminal[5] == 0);
  srl_dataset_destroy(s);
  uint8_t none[] = {0, 0, 0, 0};
  s = (srl_dataset *)1;
  CHECK_ERR(srl_dataset_select(&s, d, none), SRL_EINVAL);
  CHECK(s == NULL);
  srl_dataset_destroy(d);
}

static int same_data(const srl_dataset *a, const srl_dataset *b) {
  size_t n = (size_t)a->n;
  return a->n == b->n && a->obs_dim == b->obs_dim && a->act_dim == b->act_dim &&
         !memcmp(a->obs, b->obs, sizeof(float) * n * a->obs_dim) &&
         !memcmp(a->next_obs, b->next_obs, sizeof(float) * n * a->obs_dim) &&
         !memcmp(a->act, b->act, sizeof(float) * n * a->act_dim) &&
         !memcmp(a->reward, b->reward, sizeof(float) * n) &&
         !memcmp(a->cost, b->cost, sizeof(float) * n) && !memcmp(a->terminal, b->terminal, n) &&
         !memcmp(a->timeout, b->timeout, n) && a->n_episodes == b->n_episodes &&
         !memcmp(a->ep_start, b->ep_start, sizeof(long long) * (size_t)(a->n_episodes + 1));
}

TEST(write_then_read_is_exact_on_both_paths) {
  // enough rows for many chunks of every key
  long long n = 20000, ends[40];
  int term[40];
  for (int e = 0; e < 40; e++) ends[e] = 499 + 500 * e, term[e] = e % 3 == 0;
  srl_dataset *d = make(n, 17, 6, ends, term, 40, 3), *r = NULL, *h = NULL;
  const char *p = tmp_path("rt.hdf5");
  CHECK_OK(srl_dataset_write(d, p));
  CHECK(access(tmp_path("rt.hdf5.tmp"), F_OK) != 0);
  srl_dataset_read_options o = {.obs_dim = 17, .act_dim = 6};
  long long c0 = srl__dataset_chunks_threaded;
  setenv("SRL_DATASET_THREADS", "3", 1);
  CHECK_OK(srl_dataset_read(&r, p, &o));
  long long c1 = srl__dataset_chunks_threaded;
  setenv("SRL_DATASET_THREADS", "0", 1);
  CHECK_OK(srl_dataset_read(&h, p, &o));
  unsetenv("SRL_DATASET_THREADS");
  // the first read inflated its float chunks on threads, the second left them to libhdf5
  CHECK(c1 - c0 >= 5);
  CHECK(srl__dataset_chunks_threaded == c1);
  CHECK(r && same_data(d, r));
  CHECK(h && same_data(d, h));
  if (r) {
    CHECK(r->has_costs);
    CHECK(strstr(r->source, "rt.hdf5") != NULL);
    CHECK_EQ_INT(r->n_episodes, 40);
  }
  srl_dataset_destroy(r);
  srl_dataset_destroy(h);

  // the stored layout: float32 shuffled+gzip, flags as an int8 enum FALSE/TRUE
  hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, "terminals", H5P_DEFAULT), t = H5Dget_type(ds);
  CHECK(H5Tget_class(t) == H5T_ENUM && H5Tget_size(t) == 1);
  char name[16] = "";
  int8_t one = 1;
  CHECK(H5Tenum_nameof(t, &one, name, sizeof name) >= 0 && !strcmp(name, "TRUE"));
  H5Tclose(t);
  H5Dclose(ds);
  ds = H5Dopen2(f, "observations", H5P_DEFAULT), t = H5Dget_type(ds);
  hid_t pl = H5Dget_create_plist(ds);
  CHECK(H5Tequal(t, H5T_IEEE_F32LE) > 0);
  CHECK(H5Pget_layout(pl) == H5D_CHUNKED && H5Pget_nfilters(pl) == 2);
  H5Pclose(pl);
  H5Tclose(t);
  H5Dclose(ds);
  H5Fclose(f);

  // the writer refuses what the reader would
  d->reward[123] = NAN;
  CHECK_ERR(srl_dataset_write(d, tmp_path("nan.hdf5")), SRL_ENONFINITE);
  CHECK_ERRMSG("'rewards' row 123");
  CHECK(access(tmp_path("nan.hdf5"), F_OK) != 0);
  srl_dataset_destroy(d);
}

// open a written file and run fn on it (delete keys, replace datasets)
static void h5_edit(const char *p, void (*fn)(hid_t)) {
  hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
  fn(f);
  H5Fclose(f);
}

static void drop_d4rl(hid_t f) {
  H5Ldelete(f, "costs", H5P_DEFAULT);
  H5Ldelete(f, "next_observations", H5P_DEFAULT);
}

TEST(d4rl_files_are_derived_as_qlearning_dataset) {
  // episodes: rows 0-3 (timeout at 3), 4-5 (terminal at 5), 6-9 (timeout at 9), 10-11 unfinished
  long long ends[] = {3, 5, 9};
  int term[] = {0, 1, 0};
  srl_dataset *d = make(12, 3, 2, ends, term, 3, 4), *r = NULL;
  const char *p = tmp_path("d4rl.hdf5");
  CHECK_OK(srl_dataset_write(d, p));
  h5_edit(p, drop_d4rl);
  CHECK_ERR(srl_dataset_read(&r, p, NULL), SRL_EFORMAT);
  CHECK_ERRMSG("'costs'");
  CHECK(r == NULL);
  srl_dataset_read_options o = {.allow_no_costs = 1};
  CHECK_OK(srl_dataset_read(&r, p, &o));
  if (!r) {
    srl_dataset_destroy(d);
    return;
  }
  // kept: i < n-1 and not a timeout row → 0,1,2, 4,5, 6,7,8, 10
  int kept[] = {0, 1, 2, 4, 5, 6, 7, 8, 10};
  CHECK_EQ_INT(r->n, 9);
  CHECK(!r->has_costs);
  for (int j = 0; j < 9 && j < r->n; j++) {
    int i = kept[j];
    CHECK(!memcmp(r->obs + j * 3, d->obs + i * 3, sizeof(float) * 3));
    CHECK(!memcmp(r->next_obs + j * 3, d->obs + (i + 1) * 3, sizeof(float) * 3));
    CHECK(!memcmp(r->act + j * 2, d->act + i * 2, sizeof(float) * 2));
    CHECK(r->reward[j] == d->reward[i] && r->cost[j] == 0.0f);
    CHECK_EQ_INT(r->terminal[j], d->terminal[i]);
  }
  // the rows before dropped timeouts (2 and 8) end their episodes
  uint8_t tout[] = {0, 0, 1, 0, 0, 0, 0, 1, 0};
  CHECK(!memcmp(r->timeout, tout, 9));
  CHECK_EQ_INT(r->n_episodes, 3);
  long long st[] = {0, 3, 5, 8};
  for (int e = 0; e <= 3 && e <= r->n_episodes; e++) CHECK_EQ_INT(r->ep_start[e], st[e]);
  srl_dataset_destroy(r);
  srl_dataset_destroy(d);
}

static void put_nan_obs(hid_t f) {
  H5Ldelete(f, "observations", H5P_DEFAULT);
  hsize_t dims[2] = {8, 3};
  float x[24];
  for (int i = 0; i < 24; i++) x[i] = (float)i;
  x[5 * 3 + 2] = NAN;
  hid_t sp = H5Screate_simple(2, dims, NULL);
  hid_t ds =
      H5Dcreate2(f, "observations", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
  H5Dclose(ds);
  H5Sclose(sp);
}

static void put_bad_flag(hid_t f) {
  H5Ldelete(f, "timeouts", H5P_DEFAULT);
  hsize_t dims[1] = {8};
  uint8_t x[8] = {0, 0, 1, 0, 0, 0, 2, 1};
  hid_t sp = H5Screate_simple(1, dims, NULL);
  hid_t ds = H5Dcreate2(f, "timeouts", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
  H5Dclose(ds);
  H5Sclose(sp);
}

static void short_costs(hid_t f) {
  H5Ldelete(f, "costs", H5P_DEFAULT);
  hsize_t dims[1] = {7};
  float x[7] = {0};
  hid_t sp = H5Screate_simple(1, dims, NULL);
  hid_t ds = H5Dcreate2(f, "costs", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
  H5Dclose(ds);
  H5Sclose(sp);
}

static void drop_actions(hid_t f) {
  H5Ldelete(f, "actions", H5P_DEFAULT);
}

// a refused read: the status, a message naming what, and no dataset left behind
static void refused(const char *p, const srl_dataset_read_options *o, int code, const char *what) {
  srl_dataset *r = (srl_dataset *)1;
  CHECK_ERR(srl_dataset_read(&r, p, o), code);
  CHECK_ERRMSG(what);
  CHECK(r == NULL);
}

TEST(bad_files_are_refused_naming_key_and_row) {
  long long ends[] = {3, 7};
  int term[] = {0, 0};
  srl_dataset *d = make(8, 3, 2, ends, term, 2, 5);
  struct {
    const char *name;
    void (*edit)(hid_t);
    const char *msg;
  } cases[] = {
      {"nan.hdf5", put_nan_obs, "'observations' row 5 column 2 is nan"},
      {"flag.hdf5", put_bad_flag, "'timeouts' row 6 holds 2"},
      {"len.hdf5", short_costs, "'costs' has 7 rows, 'observations' has 8"},
      {"noact.hdf5", drop_actions, "missing dataset 'actions'"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    const char *p = tmp_path(cases[c].name);
    CHECK_OK(srl_dataset_write(d, p));
    h5_edit(p, cases[c].edit);
    refused(p, NULL, SRL_EFORMAT, cases[c].msg);
  }

  // dims that disagree with the env
  const char *p = tmp_path("good.hdf5");
  CHECK_OK(srl_dataset_write(d, p));
  srl_dataset_read_options o = {.obs_dim = 4};
  refused(p, &o, SRL_EFORMAT, "'observations' has 3 columns, the env's observations have 4");
  o = (srl_dataset_read_options){.obs_dim = 3, .act_dim = 1};
  refused(p, &o, SRL_EFORMAT, "'actions' has 2 columns");

  // truncated at several points, a file that is not HDF5, a missing file
  struct stat st;
  stat(p, &st);
  FILE *src = fopen(p, "rb");
  char *buf = malloc((size_t)st.st_size);
  CHECK(fread(buf, 1, (size_t)st.st_size, src) == (size_t)st.st_size);
  fclose(src);
  double cuts[] = {0.1, 0.5, 0.9, 0.999};
  for (int c = 0; c < 4; c++) {
    const char *q = tmp_path("cut.hdf5");
    FILE *o2 = fopen(q, "wb");
    fwrite(buf, 1, (size_t)(cuts[c] * (double)st.st_size), o2);
    fclose(o2);
    refused(q, NULL, SRL_EFORMAT, "cut.hdf5");
  }
  const char *q = tmp_path("text.hdf5");
  FILE *o3 = fopen(q, "w");
  fputs("observations,actions\n1,2\n", o3);
  fclose(o3);
  refused(q, NULL, SRL_EFORMAT, "not an HDF5 file");
  refused(tmp_path("missing.hdf5"), NULL, SRL_ENOTFOUND, "missing.hdf5");
  free(buf);
  srl_dataset_destroy(d);
}

TEST(corrupt_chunk_is_refused_on_both_paths) {
  long long ends[] = {4999};
  int term[] = {0};
  srl_dataset *d = make(5000, 8, 2, ends, term, 1, 6);
  const char *p = tmp_path("corrupt.hdf5");
  CHECK_OK(srl_dataset_write(d, p));
  // flip bytes in the middle of the first observations chunk
  hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, "observations", H5P_DEFAULT);
  hsize_t off[2] = {0, 0}, size = 0;
  haddr_t addr = 0;
  unsigned mask = 0;
  CHECK(H5Dget_chunk_info_by_coord(ds, off, &mask, &addr, &size) >= 0);
  H5Dclose(ds);
  H5Fclose(f);
  FILE *fp = fopen(p, "r+b");
  fseek(fp, (long)(addr + size / 2), SEEK_SET);
  unsigned char junk[16];
  for (int i = 0; i < 16; i++) junk[i] = (unsigned char)(37 * i + 11);
  fwrite(junk, 1, sizeof junk, fp);
  fclose(fp);
  setenv("SRL_DATASET_THREADS", "2", 1);
  refused(p, NULL, SRL_EFORMAT, "'observations'");
  setenv("SRL_DATASET_THREADS", "0", 1);
  refused(p, NULL, SRL_EFORMAT, "'observations'");
  unsetenv("SRL_DATASET_THREADS");
  srl_dataset_destroy(d);
}

TEST(dsrl_table_lookup_and_scores) {
  CHECK_EQ_INT(srl_dsrl_task_count(), 42);
  int dsrl = 0;
  for (int i = 0; i < srl_dsrl_task_count(); i++) dsrl += !srl_dsrl_task_at(i)->d4rl;
  CHECK_EQ_INT(dsrl, 38);
  CHECK(srl_dsrl_task_at(42) == NULL && srl_dsrl_task_at(-1) == NULL);

  const srl_dsrl_task *t = srl_dsrl_find("SafetyPointGoal1");
  CHECK(t && !strcmp(t->name, "PointGoal1"));
  if (t) {
    CHECK(t->r_min == 0.01196012764197707 && t->r_max == 30.071114857340543);
    CHECK(t->max_steps == 1000 && t->obs_dim == 60 && t->act_dim == 2);
    CHECK(t->cost_max == 100.0 && t->n_traj == 2022 && !t->d4rl);
    CHECK(!strcmp(srl_dsrl_saferl_env(t), "SafetyPointGoal1"));
    CHECK_CLOSE(srl_dsrl_normalized_reward(t, 15.0),
                (15.0 - 0.01196012764197707) / (30.071114857340543 - 0.01196012764197707), 0,
                1e-15);
  }
  const char *same[] = {"OfflinePointGoal1Gymnasium-v0", "PointGoal1", "pointgoal1",
                        "/data/SafetyPointGoal1Gymnasium-v0-100-2022.hdf5"};
  for (int i = 0; i < 4; i++) CHECK(srl_dsrl_find(same[i]) == t);
  t = srl_dsrl_find("SafetyHalfCheetahVelocity");
  CHECK(t && !strcmp(t->name, "HalfCheetahVelocity") && t->r_max == 2806.93310546875);
  CHECK(srl_dsrl_find("OfflineHalfCheetahVelocityGymnasium-v1") == t);
  t = srl_dsrl_find("OfflineCarRun-v0");
  CHECK(t && !strcmp(t->name, "CarRun") && t->max_steps == 200 && t->r_min == 204.28726196289062);
  CHECK(t && srl_dsrl_saferl_env(t) == NULL);
  t = srl_dsrl_find("OfflineCarCircle-v0");
  CHECK(t && !strcmp(t->name, "CarCircle"));
  CHECK(srl_dsrl_find("SafetyCarCircle1") && srl_dsrl_find("SafetyCarCircle1") != t);
  t = srl_dsrl_find("OfflineMetadrive-hardmean-v0");
  CHECK(t && !strcmp(t->name, "hardmean") && t->cost_max == 84.33995056152344);
  CHECK(srl_dsrl_find("SafeMetaDrive-hardmean-v0-85-1000.hdf5") == t);
  t = srl_dsrl_find("hopper-medium-replay-v2");
  CHECK(t && t->d4rl && t->r_min == -20.272305 && t->r_max == 3234.3);
  CHECK(t && fabs(srl_dsrl_normalized_reward(t, 3234.3) - 1.0) < 1e-15);
  CHECK(srl_dsrl_find("halfcheetah") && srl_dsrl_find("halfcheetah")->r_min == -280.178953);
  CHECK(srl_dsrl_find("SimplePointGoal") == NULL && srl_dsrl_find("SafetyPointGoal0") == NULL);
  CHECK(srl_dsrl_find("SafetyHumanoidVelocity") == NULL && srl_dsrl_find(NULL) == NULL);

  // (C + ε)/(k + ε), ε = 1 only when k = 0
  CHECK(srl_dsrl_normalized_cost(5, 10) == 0.5);
  CHECK(srl_dsrl_normalized_cost(0, 0) == 1.0);
  CHECK(srl_dsrl_normalized_cost(3, 0) == 4.0);
  CHECK(srl_dsrl_normalized_cost(20, 20) == 1.0);
}

TEST(density_mask_bins_like_dsrl) {
  // costs 0..100 in steps of 10 with cbins 10: cost 100 sits alone in the extra bin 10 (DSRL's
  // floor division puts the maximum there); returns on an exact grid, rbins 1
  enum { N = 31 };
  double c[N], r[N];
  for (int i = 0; i < N; i++) c[i] = (i % 10) * 10.0, r[i] = 0.0;  // bins 0..9, 3 or 4 each
  c[30] = 100.0;                                                   // bin 10, alone
  r[0] = 1.0;  // the return axis from 0 to 1 in 1 bin: r = 1 falls in return bin 1
  srl_dsrl_density cfg = {10, 1, 3, 1, 7};
  uint8_t keep[N];
  long long kept = srl_dsrl_density_mask(keep, c, r, N, &cfg);
  // bins: (0,1) {0}: 1 → dropped; (0,0) {10, 20}: 2 kept; (k,0) k = 1..9: {k, k+10, k+20} → 3
  // kept; (10,0) {30}: dropped
  CHECK_EQ_INT(kept, 2 + 9 * 3);
  CHECK(!keep[0] && keep[10] && keep[20] && !keep[30]);
  for (int k = 1; k < 10; k++) CHECK(keep[k] && keep[k + 10] && keep[k + 20]);

  // downsampling: 4 per bin → 2 drawn, seeded
  double c2[40], r2[40];
  for (int i = 0; i < 40; i++) c2[i] = i % 10, r2[i] = 5.0;
  srl_dsrl_density d2 = {9, 3, 2, 0, 11};
  uint8_t k1[40], k2[40], k3[40];
  CHECK_EQ_INT(srl_dsrl_density_mask(k1, c2, r2, 40, &d2), 20);
  CHECK_EQ_INT(srl_dsrl_density_mask(k2, c2, r2, 40, &d2), 20);
  CHECK(!memcmp(k1, k2, 40));
  for (int b = 0; b < 10; b++) {
    int n = 0;
    for (int i = b; i < 40; i += 10) n += k1[i];
    CHECK_EQ_INT(n, 2);
  }
  int differs = 0;
  for (uint64_t s = 12; s < 20 && !differs; s++) {
    d2.seed = s;
    srl_dsrl_density_mask(k3, c2, r2, 40, &d2);
    differs = memcmp(k1, k3, 40) != 0;
  }
  CHECK(differs);

  // a zero range (all returns 5): every episode in return bin 0, not a bin of its own
  srl_dsrl_density d3 = {1, 50, 100, 2, 0};
  CHECK_EQ_INT(srl_dsrl_density_mask(k3, c2, r2, 40, &d3), 40);
  // defaults; bad settings
  CHECK(srl_dsrl_density_mask(k3, c2, r2, 40, NULL) >= 0);
  srl_dsrl_density bad = {0, 50, 5, 2, 0};
  CHECK_ERR((int)srl_dsrl_density_mask(k3, c2, r2, 40, &bad), SRL_EINVAL);
}

TEST(filter_density_on_a_dataset_leaves_the_tail_out) {
  // 30 episodes of 2 rows; costs make 3 cost bins of 10; an unfinished tail of 3 rows
  long long n = 63, ends[30];
  int term[30] = {0};
  for (int e = 0; e < 30; e++) ends[e] = 2 * e + 1;
  srl_dataset *d = make(n, 2, 1, ends, term, 30, 7), *f = NULL;
  for (long long i = 0; i < n; i++) d->reward[i] = 1.0f, d->cost[i] = (float)((i / 2) % 3);
  CHECK_OK(srl_dataset_index_tail(d, 1));
  CHECK_EQ_INT(d->n_episodes, 31);
  srl_dsrl_density cfg = {3, 1, 4, 2, 3};
  CHECK_OK(srl_dataset_filter_density(&f, d, &cfg));
  if (f) {
    CHECK_EQ_INT(f->n_episodes, 12);
    CHECK_EQ_INT(f->n, 24);
    for (long long e = 0; e < f->n_episodes; e++) CHECK(srl_dataset_episode_finished(f, e));
    // 4 from each cost bin
    int per[3] = {0};
    for (long long e = 0; e < f->n_episodes; e++) per[(int)(f->ep_cost[e] / 2.0)]++;
    CHECK(per[0] == 4 && per[1] == 4 && per[2] == 4);
  }
  srl_dataset_destroy(f);
  // keeping everything still leaves the unfinished tail out
  srl_dsrl_density all = {3, 1, 100, 0, 0};
  CHECK_OK(srl_dataset_filter_density(&f, d, &all));
  CHECK(f && f->n == 60 && f->n_episodes == 30);
  srl_dataset_destroy(f);
  srl_dsrl_density none = {3, 1, 100, 20, 0};  // every bin of 10 ≤ min_npb
  f = (srl_dataset *)1;
  CHECK_ERR(srl_dataset_filter_density(&f, d, &none), SRL_EINVAL);
  CHECK(f == NULL);
  srl_dataset_destroy(d);
}

TEST(filter_max_cost_keeps_episodes_at_or_under_the_cap) {
  // 10 finished episodes of 2 rows with costs 0, 1, ..., 9 and an unfinished tail of cost 0
  long long n = 21, ends[10];
  int term[10] = {0};
  for (int e = 0; e < 10; e++) ends[e] = 2 * e + 1;
  srl_dataset *d = make(n, 2, 1, ends, term, 10, 5), *f = NULL;
  for (long long i = 0; i < n; i++) d->cost[i] = i < 20 ? (float)(i / 2) * 0.5f : 0.0f;
  CHECK_OK(srl_dataset_index_tail(d, 1));
  CHECK_EQ_INT(d->n_episodes, 11);
  CHECK_OK(srl_dataset_filter_max_cost(&f, d, 4.0));
  CHECK(f && f->n_episodes == 5 && f->n == 10);
  for (long long e = 0; f && e < f->n_episodes; e++) {
    CHECK(f->ep_cost[e] == (double)e);
    CHECK(srl_dataset_episode_finished(f, e));
  }
  srl_dataset_destroy(f);
  f = (srl_dataset *)1;
  CHECK_ERR(srl_dataset_filter_max_cost(&f, d, -0.5), SRL_EINVAL);
  CHECK(f == NULL);
  d->cost[0] = 1.0f;  // the one zero-cost finished episode now costs 1
  CHECK_OK(srl_dataset_index_tail(d, 1));
  CHECK_ERR(srl_dataset_filter_max_cost(&f, d, 0.5), SRL_EINVAL);
  CHECK(f == NULL);
  srl_dataset_destroy(d);
}


int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/test_dataset_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  RUN(episodes_follow_the_flags);
  RUN(select_copies_episodes_in_order);
  RUN(write_then_read_is_exact_on_both_paths);
  RUN(d4rl_files_are_derived_as_qlearning_dataset);
  RUN(bad_files_are_refused_naming_key_and_row);
  RUN(corrupt_chunk_is_refused_on_both_paths);
  RUN(dsrl_table_lookup_and_scores);
  RUN(density_mask_bins_like_dsrl);
  RUN(filter_density_on_a_dataset_leaves_the_tail_out);
  RUN(filter_max_cost_keeps_episodes_at_or_under_the_cap);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  return TEST_REPORT();
}

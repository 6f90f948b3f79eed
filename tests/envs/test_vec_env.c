// test_vec_env.c: the vector env: auto-reset with final observations and per-episode seeds,
// equality with single envs stepped by hand, identical results for 1, 2 and 3 threads,
// divergence counting, error propagation, and no allocation while stepping.
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "envs/counter_env.h"
#include "envs/vec_env.h"
#include "test.h"

#define PG "SimplePointGoal"

// n counter envs from one config; takes ownership into a vector env of `threads` threads
static int counter_vec(srl_vec_env **out, const counter_cfg *cfgs, int n, int threads) {
  srl_env *envs[16];
  for (int i = 0; i < n; i++) SRL_TRY(counter_create(&envs[i], &cfgs[i]));
  int rc = srl_vec_env_create_from(out, envs, n, threads);
  if (rc < 0)
    for (int i = 0; i < n; i++) srl_env_destroy(envs[i]);
  return rc;
}

static void fill_actions(float *a, int n, uint64_t seed, long long step) {
  for (int i = 0; i < n; i++) a[i] = 2.0f * srl_hash_uniform(seed, (uint64_t)step * 4096 + i) - 1;
}


TEST(auto_reset_and_final_obs) {
  enum { N = 5 };
  counter_cfg c[N];
  for (int i = 0; i < N; i++) c[i] = counter_defaults(), c[i].length_from_seed = 1;
  srl_vec_env *v = NULL;
  CHECK_OK(counter_vec(&v, c, N, 2));
  if (!v) return;
  CHECK_EQ_INT(v->obs_dim, 4);
  CHECK_EQ_INT(v->act_dim, 2);
  float act[N * 2] = {0};
  CHECK_ERR(srl_vec_env_step(v, act), SRL_ESTATE);
  CHECK_OK(srl_vec_env_reset(v, 77));

  // what each env should be doing: episode k of env i lasts 2 + seed(77, i, k) % 3 steps
  long long ep[N] = {0};
  int t[N] = {0}, finished = 0;
  double ret[N] = {0};
  for (int i = 0; i < N; i++)
    CHECK(v->obs[i * 4 + 1] == (float)(srl_vec_env_episode_seed(77, i, 0) % 1000));
  for (int step = 1; step <= 30; step++) {
    for (int i = 0; i < N * 2; i++) act[i] = 0.01f * (float)(step + i);
    CHECK_OK(srl_vec_env_step(v, act));
    for (int i = 0; i < N; i++) {
      uint64_t s = srl_vec_env_episode_seed(77, i, ep[i]);
      int len = 2 + (int)(s % 3);
      t[i]++;
      ret[i] += t[i];
      int done = t[i] == len;
      CHECK_EQ_INT(v->done[i], done);
      CHECK_EQ_INT(v->terminated[i], done);
      CHECK_EQ_INT(v->truncated[i], 0);
      CHECK(v->rewards[i] == (float)t[i]);
      if (done) {
        // final obs: the last step of the finished episode; obs: the next episode's first
        CHECK(v->final_obs[i * 4 + 0] == (float)len);
        CHECK(v->final_obs[i * 4 + 1] == (float)(s % 1000));
        CHECK(v->final_obs[i * 4 + 2] == act[i * 2] && v->final_obs[i * 4 + 3] == act[i * 2 + 1]);
        ep[i]++;
        CHECK(v->obs[i * 4 + 0] == 0.0f);
        CHECK(v->obs[i * 4 + 1] == (float)(srl_vec_env_episode_seed(77, i, ep[i]) % 1000));
        CHECK_EQ_INT(v->stats[i].last_length, len);
        CHECK_CLOSE(v->stats[i].last_ret, ret[i], 0, 0);
        t[i] = 0;
        ret[i] = 0;
        finished++;
      } else {
        CHECK(v->obs[i * 4 + 0] == (float)t[i]);
        CHECK_EQ_INT(v->stats[i].length, t[i]);
      }
      CHECK_EQ_INT(v->episode[i], ep[i]);
      CHECK_EQ_INT(v->stats[i].episodes, ep[i]);
    }
  }
  CHECK_EQ_INT(v->episodes_done, finished);
  CHECK_EQ_INT(v->steps, 30);

  // a reset starts the episode counters over
  CHECK_OK(srl_vec_env_reset(v, 77));
  for (int i = 0; i < N; i++) {
    CHECK_EQ_INT(v->episode[i], 0);
    CHECK_EQ_INT(v->stats[i].episodes, 0);
    CHECK_EQ_INT(v->done[i], 0);
  }
  CHECK_EQ_INT(v->episodes_done, 0);

  // seeded by episode number: env i's k-th episode is episode i + N·k of one sequence
  v->seed_by_episode = 1;
  CHECK_OK(srl_vec_env_reset(v, 77));
  for (int i = 0; i < N; i++) {
    CHECK(v->obs[i * 4 + 1] == (float)(srl_vec_env_episode_seed(77, 0, i) % 1000));
    ep[i] = 0;
  }
  for (int step = 1; step <= 12; step++) {
    CHECK_OK(srl_vec_env_step(v, act));
    for (int i = 0; i < N; i++)
      if (v->done[i])
        CHECK(v->obs[i * 4 + 1] ==
              (float)(srl_vec_env_episode_seed(77, 0, i + N * ++ep[i]) % 1000));
  }
  for (int i = 0; i < N; i++) CHECK(ep[i] > 0 && v->episode[i] == ep[i]);
  srl_vec_env_destroy(v);
}

// the vector env equals single envs stepped by hand with the documented episode seeds
TEST(matches_single_envs) {
  enum { N = 3, STEPS = 400 };
  srl_vec_env_config cfg = {.num_envs = N, .num_threads = 2, .rescale_action = 0, .cost_mode = -1};
  srl_vec_env *v = NULL;
  CHECK_OK(srl_vec_env_create(&v, PG, NULL, &cfg));
  srl_env *e[N] = {0};
  for (int i = 0; i < N; i++) CHECK_OK(srl_env_create(&e[i], PG, NULL));
  if (!v || !e[N - 1]) return;
  CHECK_EQ_INT(v->max_episode_steps, 150);
  float obs[N][8], act[N * 2];
  long long ep[N] = {0};
  int mismatches = 0, dones = 0;
  CHECK_OK(srl_vec_env_reset(v, 9));
  for (int i = 0; i < N; i++)
    CHECK_OK(srl_env_reset(e[i], srl_vec_env_episode_seed(9, i, 0), obs[i]));
  for (long long k = 0; k < STEPS; k++) {
    fill_actions(act, N * 2, 5, k);
    CHECK_OK(srl_vec_env_step(v, act));
    for (int i = 0; i < N; i++) {
      srl_step st;
      CHECK_OK(srl_env_step(e[i], act + 2 * i, obs[i], &st));
      int done = st.terminated || st.truncated;
      mismatches += v->rewards[i] != st.reward || v->costs[i] != st.cost || v->done[i] != done ||
                    v->truncated[i] != st.truncated;
      if (done) {
        dones++;
        mismatches += memcmp(v->final_obs + 8 * i, obs[i], sizeof obs[i]) != 0;
        CHECK_OK(srl_env_reset(e[i], srl_vec_env_episode_seed(9, i, ++ep[i]), obs[i]));
      }
      mismatches += memcmp(v->obs + 8 * i, obs[i], sizeof obs[i]) != 0;
    }
  }
  CHECK_EQ_INT(mismatches, 0);
  CHECK(dones >= N * 2);  // random actions hit the 150-step limit at least
  for (int i = 0; i < N; i++) srl_env_destroy(e[i]);
  srl_vec_env_destroy(v);
}

// run SimplePointGoal envs with a thread count; keep everything the vector env reports
typedef struct run_record {
  float obs[7 * 8], final_obs[7 * 8], rewards[7], costs[7];
  int done[7], truncated[7];
  double last_ret[7];
} run_record;

static void run_threads(int threads, run_record *rec, int steps, int rescale, int cost_mode) {
  enum { N = 7 };
  srl_vec_env_config cfg = {
      .num_envs = N, .num_threads = threads, .rescale_action = rescale, .cost_mode = cost_mode};
  srl_vec_env *v = NULL;
  CHECK_OK(srl_vec_env_create(&v, PG, "hazard_radius: 0.45", &cfg));
  if (!v) return;
  CHECK_EQ_INT(v->num_threads, threads);
  float act[N * 2];
  CHECK_OK(srl_vec_env_reset(v, 2024));
  memset(rec, 0, sizeof *rec);
  for (int k = 0; k < steps; k++) {
    fill_actions(act, N * 2, 3, k);
    CHECK_OK(srl_vec_env_step(v, act));
    run_record *r = &rec[k];
    memcpy(r->obs, v->obs, sizeof r->obs);
    memcpy(r->final_obs, v->final_obs, sizeof r->final_obs);
    memcpy(r->rewards, v->rewards, sizeof r->rewards);
    memcpy(r->costs, v->costs, sizeof r->costs);
    memcpy(r->done, v->done, sizeof r->done);
    memcpy(r->truncated, v->truncated, sizeof r->truncated);
    for (int i = 0; i < N; i++) r->last_ret[i] = v->stats[i].last_ret;
  }
  srl_vec_env_destroy(v);
}

TEST(thread_counts_bitwise_identical) {
  enum { STEPS = 500 };
  static run_record r1[STEPS], r2[STEPS], r3[STEPS];
  for (int variant = 0; variant < 2; variant++) {
    int rescale = variant, cost_mode = variant ? SRL_COST_RAW : -1;
    run_threads(1, r1, STEPS, rescale, cost_mode);
    run_threads(2, r2, STEPS, rescale, cost_mode);
    run_threads(3, r3, STEPS, rescale, cost_mode);
    CHECK(!memcmp(r1, r2, sizeof r1));
    CHECK(!memcmp(r1, r3, sizeof r1));
    int dones = 0;
    double cost = 0;
    for (int k = 0; k < STEPS; k++)
      for (int i = 0; i < 7; i++) dones += r1[k].done[i], cost += r1[k].costs[i];
    CHECK(dones >= 7 * 3);
    CHECK(cost > 0);
  }
}

TEST(divergence_counted) {
  enum { N = 4 };
  counter_cfg c[N];
  for (int i = 0; i < N; i++) c[i] = counter_defaults();
  c[1].diverge_at = 3;  // reports the divergence itself, every episode
  c[3].nan_at = 2;      // returns NaN; the safety net applies the contract
  srl_vec_env *v = NULL;
  CHECK_OK(counter_vec(&v, c, N, 3));
  if (!v) return;
  float act[N * 2] = {0};
  CHECK_OK(srl_vec_env_reset(v, 1));
  long long total = 0;
  for (int k = 1; k <= 12; k++) {
    CHECK_OK(srl_vec_env_step(v, act));
    int d1 = k % 3 == 0, d3 = k % 2 == 0;  // episodes restart after each divergence
    CHECK_EQ_INT(v->diverged_last, d1 + d3);
    total += d1 + d3;
    CHECK_EQ_INT(v->infos[1].diverged, d1);
    CHECK_EQ_INT(v->truncated[1], d1);
    CHECK_EQ_INT(v->done[3], d3);
    if (d3) {
      CHECK(v->rewards[3] == -10.0f && v->costs[3] == 1.0f);
      CHECK(v->final_obs[3 * 4] == 0.0f);  // the NaN was replaced
    }
    CHECK_EQ_INT(v->done[0] + v->done[2], 0);
  }
  CHECK_EQ_INT(v->diverged_total, total);
  CHECK_EQ_INT(v->diverged_total, 4 + 6);
  srl_vec_env_destroy(v);
}

TEST(errors_propagate) {
  enum { N = 6 };
  counter_cfg c[N];
  for (int i = 0; i < N; i++) c[i] = counter_defaults();
  c[3].fail_at = 3;  // on the second thread's range: the lowest index is reported
  c[5].fail_at = 3;  // on the third
  srl_vec_env *v = NULL;
  CHECK_OK(counter_vec(&v, c, N, 3));
  if (!v) return;
  float act[N * 2] = {0};
  CHECK_OK(srl_vec_env_reset(v, 1));
  CHECK_OK(srl_vec_env_step(v, act));
  CHECK_OK(srl_vec_env_step(v, act));
  CHECK_ERR(srl_vec_env_step(v, act), SRL_EIO);
  CHECK_ERRMSG("env 3 of 6");
  CHECK_ERRMSG("scripted failure at step 3");
  CHECK_ERR(srl_vec_env_step(v, act), SRL_ESTATE);
  CHECK_ERRMSG("reset");

  // a non-finite action is the env's error too, with its index, step and the env's id
  CHECK_OK(srl_vec_env_reset(v, 2));
  act[2 * 2 + 1] = NAN;
  CHECK_ERR(srl_vec_env_step(v, act), SRL_ENONFINITE);
  CHECK_ERRMSG("env 2 of 6");
  CHECK_ERRMSG("TestCounter: action[1]");
  srl_vec_env_destroy(v);

  // creation errors name the env and the option
  srl_vec_env_config cfg = {.num_envs = 2, .num_threads = 1, .cost_mode = -1};
  CHECK(srl_vec_env_create(&v, PG, "goal_bonus: -1", &cfg) < 0);
  CHECK_ERRMSG("goal_bonus");
  CHECK(v == NULL);
  CHECK_ERR(srl_vec_env_create(&v, "NoSuchEnv", NULL, &cfg), SRL_ENOTFOUND);
  cfg.num_envs = 0;
  CHECK_ERR(srl_vec_env_create(&v, PG, NULL, &cfg), SRL_EINVAL);
}

// mismatched envs are refused and stay the caller's
TEST(mismatched_envs_refused) {
  counter_cfg a = counter_defaults(), b = counter_defaults();
  b.act_dim = 3;
  srl_env *envs[2];
  CHECK_OK(counter_create(&envs[0], &a));
  CHECK_OK(counter_create(&envs[1], &b));
  srl_vec_env *v = NULL;
  CHECK_ERR(srl_vec_env_create_from(&v, envs, 2, 1), SRL_EINVAL);
  CHECK_ERRMSG("env 1");
  srl_env_destroy(envs[0]);
  srl_env_destroy(envs[1]);
}

// stepping, auto-reset included, makes no allocation
static long allocs;
static void *counting_malloc(size_t bytes, size_t align) {
  allocs++;
  void *p = NULL;
  return posix_memalign(&p, align, bytes ? bytes : align) ? NULL : p;
}

TEST(no_allocation_per_step) {
  srl_vec_env_config cfg = {
      .num_envs = 4, .num_threads = 2, .rescale_action = 1, .cost_mode = SRL_COST_INDICATOR};
  srl_set_allocator(counting_malloc, free);
  srl_vec_env *v = NULL;
  CHECK_OK(srl_vec_env_create(&v, PG, NULL, &cfg));
  if (!v) {
    srl_set_allocator(NULL, NULL);
    return;
  }
  float act[8];
  CHECK_OK(srl_vec_env_reset(v, 3));
  long before = allocs;
  for (int k = 0; k < 400; k++) {
    fill_actions(act, 8, 1, k);
    CHECK_OK(srl_vec_env_step(v, act));
  }
  CHECK(v->episodes_done >= 4);
  CHECK_EQ_INT(allocs - before, 0);
  srl_vec_env_destroy(v);
  srl_set_allocator(NULL, NULL);
}

int main(void) {
  RUN(auto_reset_and_final_obs);
  RUN(matches_single_envs);
  RUN(thread_counts_bitwise_identical);
  RUN(divergence_counted);
  RUN(errors_propagate);
  RUN(mismatched_envs_refused);
  RUN(no_allocation_per_step);
  return TEST_REPORT();
}

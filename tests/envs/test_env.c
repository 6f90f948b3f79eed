// test_env.c: the env API: registry, option and action checks, wrappers, the divergence safety
// net, and the rules and determinism of the SimplePointGoal task.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "envs/counter_env.h"
#include "envs/env.h"
#include "envs/wrappers.h"
#include "test.h"

#define PG "SimplePointGoal"

static int make_counter_default(srl_env **out, const char *options_yaml) {
  counter_cfg c = counter_defaults();
  return counter_create(out, &c);
}


//---- registry --------------------------------------------------------------------------------

TEST(registry_lists_builtin_task) {
  const srl_env_spec *s = srl_env_find(PG);
  CHECK(s != NULL);
  if (!s) return;
  CHECK_EQ_INT(s->obs_dim, 8);
  CHECK_EQ_INT(s->act_dim, 2);
  CHECK_EQ_INT(s->max_episode_steps, 150);
  CHECK(s->description && s->description[0]);
  int n = srl_env_count(), seen = 0;
  for (int i = 0; i < n; i++) seen += srl_env_spec_at(i) == s;
  CHECK_EQ_INT(seen, 1);
  CHECK(srl_env_spec_at(n) == NULL);
  CHECK(srl_env_spec_at(-1) == NULL);
}

TEST(registry_unknown_id) {
  srl_env *env = (srl_env *)1;
  CHECK_ERR(srl_env_create(&env, "SimplePointGaol", NULL), SRL_ENOTFOUND);
  CHECK(env == NULL);
  CHECK_ERRMSG("unknown env id 'SimplePointGaol'");
  CHECK_ERRMSG("did you mean 'SimplePointGoal'");
  CHECK_ERR(srl_env_create(&env, "NoSuchThingAtAll", ""), SRL_ENOTFOUND);
  CHECK_ERRMSG("NoSuchThingAtAll");
}

TEST(registry_register_and_duplicates) {
  srl_env_spec spec = {"TestCounterReg", make_counter_default, 4, 2, 7, "scripted test env"};
  int before = srl_env_count();
  CHECK_OK(srl_env_register(&spec));
  CHECK_EQ_INT(srl_env_count(), before + 1);
  CHECK_ERR(srl_env_register(&spec), SRL_EINVAL);
  CHECK_ERRMSG("already registered");
  srl_env_spec dup = spec;
  dup.id = PG;
  CHECK_ERR(srl_env_register(&dup), SRL_EINVAL);
  CHECK_ERRMSG("'SimplePointGoal' is already registered");
  srl_env_spec bad = spec;
  bad.id = "TestNoCreate";
  bad.create = NULL;
  CHECK_ERR(srl_env_register(&bad), SRL_EINVAL);
  bad.create = make_counter_default;
  bad.obs_dim = 0;
  CHECK_ERR(srl_env_register(&bad), SRL_EINVAL);
  CHECK_EQ_INT(srl_env_count(), before + 1);

  // created through the registry: time limit applied, id kept
  srl_env *env = NULL;
  CHECK_OK(srl_env_create(&env, "TestCounterReg", NULL));
  if (!env) return;
  CHECK_EQ_INT(env->max_episode_steps, 7);
  CHECK(!strcmp(env->id, "TestCounter"));
  CHECK(srl_env_unwrap(env) != NULL);
  float obs[4], act[2] = {0, 0};
  srl_step st;
  CHECK_OK(srl_env_reset(env, 1, obs));
  for (int k = 1; k <= 7; k++) {
    CHECK_OK(srl_env_step(env, act, obs, &st));
    CHECK_EQ_INT(st.truncated, k == 7);
  }
  srl_env_destroy(env);
}

TEST(registry_spec_dims_must_match) {
  srl_env_spec spec = {"TestCounterWrongDims", make_counter_default, 5, 2, 0, "wrong dims"};
  CHECK_OK(srl_env_register(&spec));
  srl_env *env = NULL;
  CHECK_ERR(srl_env_create(&env, "TestCounterWrongDims", NULL), SRL_ESTATE);
  CHECK_ERRMSG("obs_dim 4");
  CHECK(env == NULL);
}


//---- options and actions ---------------------------------------------------------------------

TEST(bad_options_refused) {
  srl_env *env = NULL;
  CHECK_ERR(srl_env_create(&env, PG, "hazrd_radius: 0.3"), SRL_ECONFIG);
  CHECK_ERRMSG("hazrd_radius");
  CHECK_ERRMSG("SimplePointGoal");
  CHECK(env == NULL);
  CHECK(srl_env_create(&env, PG, "goal_bonus: abc") < 0);
  CHECK_ERRMSG("goal_bonus");
  CHECK(srl_env_create(&env, PG, "dt: -1") < 0);
  CHECK_ERRMSG("dt");
  CHECK_ERR(srl_env_create(&env, PG, "hazard_radius: 0.9"), SRL_ECONFIG);
  CHECK_ERRMSG("hazard_radius");
  CHECK_ERR(srl_env_create(&env, PG, "{goal_distance_min: 2.8, goal_distance_max: 2.0}"),
            SRL_ECONFIG);
  CHECK_ERRMSG("goal_distance_min");
  CHECK(env == NULL);

  // a good option takes effect: a larger goal bonus shows up in the reward
  CHECK_OK(srl_env_create(&env, PG, "goal_bonus: 5.0\nhazard_radius: 0.3\n"));
  srl_env_destroy(env);
}

TEST(nonfinite_action_refused) {
  srl_env *env = NULL;
  CHECK_OK(srl_env_create(&env, PG, NULL));
  if (!env) return;
  float obs[8], act[2] = {0.1f, 0.2f};
  srl_step st;
  CHECK_ERR(srl_env_step(env, act, obs, &st), SRL_ESTATE);
  CHECK_ERRMSG("before the first reset");
  CHECK_OK(srl_env_reset(env, 3, obs));
  for (int k = 0; k < 3; k++) CHECK_OK(srl_env_step(env, act, obs, &st));
  act[1] = NAN;
  CHECK_ERR(srl_env_step(env, act, obs, &st), SRL_ENONFINITE);
  CHECK_ERRMSG("SimplePointGoal");
  CHECK_ERRMSG("action[1]");
  CHECK_ERRMSG("step 4");
  act[1] = 0.0f;
  act[0] = -INFINITY;
  CHECK_ERR(srl_env_step(env, act, obs, &st), SRL_ENONFINITE);
  CHECK_ERRMSG("action[0]");
  srl_env_destroy(env);
}

TEST(actions_clipped_to_bounds) {
  srl_env *a = NULL, *b = NULL;
  CHECK_OK(srl_env_create(&a, PG, NULL));
  CHECK_OK(srl_env_create(&b, PG, NULL));
  if (!a || !b) return;
  float oa[8], ob[8], big[2] = {7.0f, -3.0f}, unit[2] = {1.0f, -1.0f};
  srl_step sa, sb;
  CHECK_OK(srl_env_reset(a, 11, oa));
  CHECK_OK(srl_env_reset(b, 11, ob));
  for (int k = 0; k < 5; k++) {
    CHECK_OK(srl_env_step(a, big, oa, &sa));
    CHECK_OK(srl_env_step(b, unit, ob, &sb));
  }
  CHECK(!memcmp(oa, ob, sizeof oa));
  CHECK(sa.reward == sb.reward);
  srl_env_destroy(a);
  srl_env_destroy(b);
}


//---- wrappers --------------------------------------------------------------------------------

TEST(time_limit_truncates_and_keeps_final_obs) {
  counter_cfg c = counter_defaults();
  srl_env *inner = NULL, *env = NULL;
  CHECK_OK(counter_create(&inner, &c));
  CHECK_ERR(srl_wrap_time_limit(&env, inner, 0), SRL_EINVAL);
  CHECK_OK(srl_wrap_time_limit(&env, inner, 5));
  if (!env) return;
  CHECK_EQ_INT(env->max_episode_steps, 5);
  float obs[4], act[2] = {0.5f, -0.5f};
  srl_step st;
  for (int round = 0; round < 2; round++) {
    CHECK_OK(srl_env_reset(env, 42, obs));
    for (int k = 1; k <= 5; k++) {
      CHECK_OK(srl_env_step(env, act, obs, &st));
      CHECK_EQ_INT(st.truncated, k == 5);
      CHECK_EQ_INT(st.terminated, 0);
      CHECK_EQ_INT((int)obs[0], k);  // the final observation is the step's own
    }
  }
  // an episode that terminates before the limit leaves truncated unset
  srl_env_destroy(env);
  c.terminate_at = 3;
  CHECK_OK(counter_create(&inner, &c));
  CHECK_OK(srl_wrap_time_limit(&env, inner, 3));
  CHECK_OK(srl_env_reset(env, 1, obs));
  for (int k = 1; k <= 3; k++) CHECK_OK(srl_env_step(env, act, obs, &st));
  CHECK_EQ_INT(st.terminated, 1);
  CHECK_EQ_INT(st.truncated, 1);  // Gymnasium's TimeLimit sets both at the limit
  srl_env_destroy(env);
}

TEST(action_rescale_maths) {
  counter_cfg c = counter_defaults();
  c.act_dim = 3;
  float lo[3] = {-2.0f, 0.0f, 10.0f}, hi[3] = {2.0f, 1.0f, 30.0f};
  memcpy(c.low, lo, sizeof lo);
  memcpy(c.high, hi, sizeof hi);
  srl_env *inner = NULL, *env = NULL;
  CHECK_OK(counter_create(&inner, &c));
  CHECK_OK(srl_wrap_action_rescale(&env, inner));
  if (!env) return;
  for (int i = 0; i < 3; i++) {
    CHECK(env->act_space.low[i] == -1.0f);
    CHECK(env->act_space.high[i] == 1.0f);
  }
  const float acts[3][3] = {{-1.0f, 0.0f, 0.5f}, {1.0f, -0.25f, -1.0f}, {0.3f, 0.9f, 0.0f}};
  float obs[5];
  srl_step st;
  CHECK_OK(srl_env_reset(env, 0, obs));
  for (int r = 0; r < 3; r++) {
    CHECK_OK(srl_env_step(env, acts[r], obs, &st));
    for (int i = 0; i < 3; i++) {
      double want = lo[i] + (hi[i] - lo[i]) * (acts[r][i] + 1.0) / 2.0;
      CHECK_CLOSE(obs[2 + i], want, 1e-6, 1e-6);
    }
  }
  // the map itself does not clip
  float a[3] = {2.0f, -3.0f, 0.0f}, out[3];
  srl_action_rescale(out, a, lo, hi, 3);
  CHECK_CLOSE(out[0], 4.0, 1e-6, 0);   // -2 + 4 * 1.5
  CHECK_CLOSE(out[1], -1.0, 1e-6, 0);  // 0 + 1 * -1
  CHECK_CLOSE(out[2], 20.0, 1e-6, 0);
  srl_env_destroy(env);

  // unbounded action spaces cannot be rescaled
  c.high[1] = INFINITY;
  CHECK_OK(counter_create(&inner, &c));
  CHECK_ERR(srl_wrap_action_rescale(&env, inner), SRL_EINVAL);
  CHECK_ERRMSG("index 1");
  srl_env_destroy(inner);
}

TEST(cost_indicator_vs_raw) {
  counter_cfg c = counter_defaults();
  const float raw[5] = {0.0f, 0.3f, 2.5f, 0.0f, 0.01f};
  memcpy(c.raw_cost, raw, sizeof raw);
  c.n_raw = 5;
  c.diverge_at = 6;
  srl_env *i1 = NULL, *i2 = NULL, *ind = NULL, *rawe = NULL;
  CHECK_OK(counter_create(&i1, &c));
  CHECK_OK(counter_create(&i2, &c));
  CHECK_OK(srl_wrap_cost(&ind, i1, SRL_COST_INDICATOR));
  CHECK_ERR(srl_wrap_cost(&rawe, i2, (srl_cost_mode)7), SRL_EINVAL);
  CHECK(rawe == NULL);
  CHECK_OK(srl_wrap_cost(&rawe, i2, SRL_COST_RAW));
  if (!ind || !rawe) return;
  float obs[4], act[2] = {0, 0};
  srl_step a, b;
  CHECK_OK(srl_env_reset(ind, 0, obs));
  CHECK_OK(srl_env_reset(rawe, 0, obs));
  for (int k = 1; k <= 6; k++) {
    CHECK_OK(srl_env_step(ind, act, obs, &a));
    CHECK_OK(srl_env_step(rawe, act, obs, &b));
    if (k <= 5) {
      CHECK(a.cost == (raw[k - 1] > 0 ? 1.0f : 0.0f));
      CHECK(b.cost == raw[k - 1]);
      CHECK(a.info.raw_cost == raw[k - 1]);
    } else {  // diverged: cost 1 in both modes
      CHECK(a.cost == 1.0f && b.cost == 1.0f);
      CHECK(a.info.diverged && b.info.diverged);
    }
  }
  srl_env_destroy(ind);
  srl_env_destroy(rawe);
}

TEST(episode_stats) {
  counter_cfg c = counter_defaults();
  const float raw[2] = {0.0f, 0.5f};  // cost 1 on even steps
  memcpy(c.raw_cost, raw, sizeof raw);
  c.n_raw = 2;
  srl_env *inner = NULL, *tl = NULL, *stats = NULL, *outer = NULL;
  CHECK_OK(counter_create(&inner, &c));
  CHECK_OK(srl_wrap_time_limit(&tl, inner, 4));
  CHECK_OK(srl_wrap_episode_stats(&stats, tl));
  CHECK_OK(srl_wrap_cost(&outer, stats, SRL_COST_INDICATOR));
  if (!outer) return;
  const srl_episode_stats *s = srl_env_episode_stats(outer);
  CHECK(s != NULL);
  CHECK(srl_env_episode_stats(inner) == NULL);
  CHECK(srl_env_unwrap(outer) == stats && srl_env_unwrap(stats) == tl);
  CHECK(srl_env_unwrap(inner) == NULL);
  if (!s) return;
  float obs[4], act[2] = {0, 0};
  srl_step st;
  CHECK_OK(srl_env_reset(outer, 0, obs));
  for (int k = 1; k <= 4; k++) CHECK_OK(srl_env_step(outer, act, obs, &st));
  CHECK_EQ_INT(st.truncated, 1);
  CHECK_CLOSE(s->last_ret, 1 + 2 + 3 + 4, 0, 0);
  CHECK_CLOSE(s->last_cost, 2, 0, 0);
  CHECK_EQ_INT(s->last_length, 4);
  CHECK_EQ_INT(s->episodes, 1);
  CHECK_EQ_INT(s->length, 0);

  // an episode in progress, then a reset that does not count it as finished
  CHECK_OK(srl_env_reset(outer, 1, obs));
  for (int k = 1; k <= 2; k++) CHECK_OK(srl_env_step(outer, act, obs, &st));
  CHECK_CLOSE(s->ret, 3, 0, 0);
  CHECK_CLOSE(s->cost, 1, 0, 0);
  CHECK_EQ_INT(s->length, 2);
  CHECK_OK(srl_env_reset(outer, 2, obs));
  CHECK_EQ_INT(s->length, 0);
  CHECK_EQ_INT(s->episodes, 1);
  CHECK_EQ_INT(s->last_length, 4);
  srl_env_destroy(outer);  // destroys the whole stack
}

TEST(divergence_safety_net) {
  counter_cfg c = counter_defaults();
  c.nan_at = 3;
  srl_env *env = NULL;
  CHECK_OK(counter_create(&env, &c));
  if (!env) return;
  float obs[4], act[2] = {0.25f, 0.5f};
  srl_step st;
  CHECK_OK(srl_env_reset(env, 0, obs));
  for (int k = 1; k <= 3; k++) {
    CHECK_OK(srl_env_step(env, act, obs, &st));
    CHECK_EQ_INT(st.info.diverged, k == 3);
    CHECK_EQ_INT(st.truncated, k == 3);
  }
  CHECK(st.reward == -10.0f && st.cost == 1.0f && st.info.raw_cost == 1.0f);
  CHECK(obs[0] == 0.0f);  // the NaN became 0
  CHECK(obs[2] == 0.25f && obs[3] == 0.5f);
  srl_env_destroy(env);
}


//---- SimplePointGoal rules -------------------------------------------------------------------

static double norm2(float x, float y) {
  return sqrt((double)x * x + (double)y * y);
}

static float clampf(double x) {
  return (float)(x > 1 ? 1 : x < -1 ? -1 : x);
}

TEST(point_goal_layout) {
  srl_env *env = NULL;
  CHECK_OK(srl_env_create(&env, PG, NULL));
  if (!env) return;
  float obs[8];
  for (uint64_t seed = 0; seed < 200; seed++) {
    CHECK_OK(srl_env_reset(env, seed, obs));
    CHECK(fabsf(obs[0]) <= 1.0f && fabsf(obs[1]) <= 1.0f);
    CHECK(obs[2] == 0.0f && obs[3] == 0.0f);
    double dg = norm2(obs[4], obs[5]), dh = norm2(obs[6], obs[7]);
    CHECK(dg >= 1.5 - 1e-5 && dg <= 2.5 + 1e-5);
    double frac = dh / dg;
    CHECK(frac >= 0.4 - 1e-5 && frac <= 0.6 + 1e-5);
    double cross = (double)obs[4] * obs[7] - (double)obs[5] * obs[6];  // hazard on the segment
    CHECK(fabs(cross) / dg < 1e-5);
    CHECK((double)obs[4] * obs[6] + (double)obs[5] * obs[7] > 0);
    CHECK(dh > 0.4 && dg - dh > 0.4 + 0.15);  // start and goal outside the hazard
    for (int i = 0; i < 8; i++)
      CHECK(obs[i] >= env->obs_space.low[i] && obs[i] <= env->obs_space.high[i]);
  }
  srl_env_destroy(env);
}

// drive at the hazard, then to the goal; check physics, reward, cost and bonus against obs
TEST(point_goal_rules) {
  srl_env *env = NULL;
  CHECK_OK(srl_env_create(&env, PG, "goal_bonus: 2.0"));
  if (!env) return;
  float obs[8], prev[8], act[2];
  srl_step st;
  CHECK_OK(srl_env_reset(env, 5, obs));
  int inside = 0, outside = 0, reached = 0;
  for (int k = 0; k < 150 && !reached; k++) {
    memcpy(prev, obs, sizeof obs);
    int to_goal = k >= 40;  // first sit in the hazard a while
    const float *target = to_goal ? prev + 4 : prev + 6;
    act[0] = clampf(4.0 * target[0] - 0.5 * prev[2]);
    act[1] = clampf(4.0 * target[1] - 0.5 * prev[3]);
    CHECK_OK(srl_env_step(env, act, obs, &st));

    // physics: v' = v + dt (accel a - damping v), p' = p + dt v'
    for (int i = 0; i < 2; i++) {
      double v = prev[2 + i] + 0.1 * (2.0 * act[i] - 2.0 * prev[2 + i]);
      CHECK_CLOSE(obs[2 + i], v, 1e-5, 0);
      CHECK_CLOSE(obs[i], prev[i] + 0.1 * v, 1e-5, 0);
    }
    // cost from the hazard distance; raw cost is the depth
    double dh = norm2(obs[6], obs[7]);
    if (dh < 0.4 - 1e-5) {
      CHECK(st.cost == 1.0f);
      CHECK_CLOSE(st.info.raw_cost, 0.4 - dh, 1e-5, 0);
      inside++;
    } else if (dh > 0.4 + 1e-5) {
      CHECK(st.cost == 0.0f && st.info.raw_cost == 0.0f);
      outside++;
    }
    // reward: progress, plus the bonus on reaching
    double dg0 = norm2(prev[4], prev[5]), dg = norm2(obs[4], obs[5]);
    reached = st.terminated;
    CHECK_EQ_INT(st.info.goal_met, st.terminated);
    CHECK_CLOSE(st.reward, dg0 - dg + (reached ? 2.0 : 0.0), 1e-5, 0);
    if (reached)
      CHECK(dg <= 0.15 + 1e-6);
    else
      CHECK(dg > 0.15 - 1e-6);
  }
  CHECK(inside > 10);
  CHECK(outside > 5);
  CHECK(reached);
  srl_env_destroy(env);
}

// the straight path costs; going around the hazard reaches the goal at no cost
TEST(point_goal_detour_is_safe) {
  srl_env *env = NULL;
  CHECK_OK(srl_env_create(&env, PG, NULL));
  if (!env) return;
  double cost_straight = 0, cost_detour = 0;
  int reached_straight = 0, reached_detour = 0;
  for (uint64_t seed = 100; seed < 120; seed++) {
    for (int detour = 0; detour < 2; detour++) {
      float obs[8], act[2];
      srl_step st;
      CHECK_OK(srl_env_reset(env, seed, obs));
      int phase = detour ? 0 : 1;
      for (int k = 0; k < 150; k++) {
        double tx = obs[4], ty = obs[5];
        if (phase == 0) {  // a waypoint beside the hazard, off the start-goal line
          double gx = obs[4], gy = obs[5], g = norm2(obs[4], obs[5]);
          tx = obs[6] - gy / g * 0.75, ty = obs[7] + gx / g * 0.75;
          if (norm2((float)tx, (float)ty) < 0.2) phase = 1;
        }
        act[0] = clampf(3.0 * tx - 1.0 * obs[2]);
        act[1] = clampf(3.0 * ty - 1.0 * obs[3]);
        CHECK_OK(srl_env_step(env, act, obs, &st));
        *(detour ? &cost_detour : &cost_straight) += st.cost;
        if (st.terminated) {
          *(detour ? &reached_detour : &reached_straight) += 1;
          break;
        }
        if (st.truncated) break;
      }
    }
  }
  CHECK_EQ_INT(reached_straight, 20);
  CHECK_EQ_INT(reached_detour, 20);
  CHECK(cost_straight >= 20 * 4);
  CHECK(cost_detour == 0);
  printf("  straight path: %.0f cost over 20 episodes; detour: %.0f\n", cost_straight, cost_detour);
  srl_env_destroy(env);
}

// same seed and actions: bitwise the same trajectory, across resets and across env instances
TEST(point_goal_determinism) {
  srl_env *a = NULL, *b = NULL;
  CHECK_OK(srl_env_create(&a, PG, NULL));
  CHECK_OK(srl_env_create(&b, PG, NULL));
  if (!a || !b) return;
  float oa[8], ob[8], first[8];
  srl_step sa, sb;
  int differ = 0;
  for (int round = 0; round < 2; round++) {
    CHECK_OK(srl_env_reset(a, 1234, oa));
    CHECK_OK(srl_env_reset(b, 1234, ob));
    if (round == 0) memcpy(first, oa, sizeof oa);
    CHECK(!memcmp(first, oa, sizeof oa));
    uint64_t h = 99;
    for (int k = 0; k < 150; k++) {
      float act[2] = {2.0f * srl_hash_uniform(h, 2 * k) - 1.0f,
                      2.0f * srl_hash_uniform(h, 2 * k + 1) - 1.0f};
      CHECK_OK(srl_env_step(a, act, oa, &sa));
      CHECK_OK(srl_env_step(b, act, ob, &sb));
      differ += memcmp(oa, ob, sizeof oa) != 0 || memcmp(&sa, &sb, sizeof sa) != 0;
      if (sa.terminated || sa.truncated) break;
    }
  }
  CHECK_EQ_INT(differ, 0);
  CHECK_OK(srl_env_reset(b, 1235, ob));
  CHECK(memcmp(first, ob, sizeof ob) != 0);
  srl_env_destroy(a);
  srl_env_destroy(b);
}

int main(void) {
  RUN(registry_lists_builtin_task);
  RUN(registry_unknown_id);
  RUN(registry_register_and_duplicates);
  RUN(registry_spec_dims_must_match);
  RUN(bad_options_refused);
  RUN(nonfinite_action_refused);
  RUN(actions_clipped_to_bounds);
  RUN(time_limit_truncates_and_keeps_final_obs);
  RUN(action_rescale_maths);
  RUN(cost_indicator_vs_raw);
  RUN(episode_stats);
  RUN(divergence_safety_net);
  RUN(point_goal_layout);
  RUN(point_goal_rules);
  RUN(point_goal_detour_is_safe);
  RUN(point_goal_determinism);
  return TEST_REPORT();
}

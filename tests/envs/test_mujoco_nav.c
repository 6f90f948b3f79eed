// test_mujoco_nav.c: the safe navigation tasks: observation layouts and dimensions, NumPy's random
// stream, hazard, vase, wall and button costs on constructed states, the goal bonus and goal
// resampling, keep-outs in sampled layouts, determinism, the pseudo-lidar against hand-computed
// bins, and refusal of bad options.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "envs/env.h"
#include "envs/mujoco/nav.h"
#include "envs/wrappers.h"
#include "test.h"

#define OBS_MAX 128

static srl_env *make(const char *id, const char *opts) {
  srl_env *env = NULL;
  int rc = srl_env_create(&env, id, opts);
  if (rc != 0) fprintf(stderr, "  create %s: %s\n", id, srl_errmsg());
  return env;
}

static double dist2d(const double *a, const double *b) {
  return hypot(a[0] - b[0], a[1] - b[1]);
}

// a fixed pseudo-random action sequence in [-1, 1]
static void action_at(int t, float a[2]) {
  uint32_t s = (uint32_t)t * 2654435761u + 12345u;
  s ^= s >> 13, s *= 0x5bd1e995u, s ^= s >> 15;
  a[0] = (float)(s & 0xffff) / 32767.5f - 1.0f;
  a[1] = (float)(s >> 16) / 32767.5f - 1.0f;
}

//---- NumPy's stream ----------------------------------------------------------------------------

// reference values printed by numpy 1.24's RandomState
TEST(test_numpy_stream) {
  srl_nav_mt mt;
  srl__nav_mt_seed(&mt, 0);
  CHECK(srl__nav_mt_double(&mt) == 0.5488135039273248);
  CHECK(srl__nav_mt_double(&mt) == 0.7151893663724195);
  CHECK(srl__nav_mt_uniform(&mt, -1.5, 1.5) == 0.3082901282149315);
  srl__nav_mt_seed(&mt, 4294967295u);
  CHECK(srl__nav_mt_double(&mt) == 0.0976320289940138);
  // RandomState(np.array([5, 1], dtype=uint32)), the seed 2^32 + 5 here
  srl__nav_mt_seed(&mt, (1ull << 32) + 5);
  CHECK(srl__nav_mt_double(&mt) == 0.15727238718789782);
  // RandomState(7).choice(4) eight times
  static const int choice[8] = {3, 0, 1, 2, 3, 3, 3, 3};
  srl__nav_mt_seed(&mt, 7);
  for (int i = 0; i < 8; i++) CHECK_EQ_INT(srl__nav_mt_below(&mt, 4), choice[i]);
}

//---- observation layouts -----------------------------------------------------------------------

TEST(test_dimensions_and_groups) {
  static const struct {
    const char *id;
    int obs, steps, sensors;
    const char *groups;
  } want[] = {
      {"SafetyPointGoal0", 28, 1000, 12, "goal"},
      {"SafetyPointGoal1", 60, 1000, 12, "goal hazards vases"},
      {"SafetyPointGoal2", 60, 1000, 12, "goal hazards vases"},
      {"SafetyCarGoal0", 40, 1000, 24, "goal"},
      {"SafetyCarGoal1", 72, 1000, 24, "goal hazards vases"},
      {"SafetyCarGoal2", 72, 1000, 24, "goal hazards vases"},
      {"SafetyPointButton1", 76, 1000, 12, "buttons goal hazards gremlins"},
      {"SafetyPointPush1", 76, 1000, 12, "goal hazards pillars push_box"},
      {"SafetyPointCircle1", 28, 500, 12, "circle"},
      {"SafetyCarCircle1", 40, 500, 24, "circle"},
  };
  for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
    const srl_env_spec *spec = srl_env_find(want[k].id);
    CHECK(spec != NULL);
    if (!spec) continue;
    CHECK_EQ_INT(spec->obs_dim, want[k].obs);
    CHECK_EQ_INT(spec->act_dim, 2);
    CHECK_EQ_INT(spec->max_episode_steps, want[k].steps);
    srl_env *env = make(want[k].id, NULL);
    CHECK(env != NULL);
    if (!env) continue;
    CHECK_EQ_INT(env->obs_space.dim, want[k].obs);
    CHECK_EQ_INT(env->physics_steps_per_step, 10);
    for (int i = 0; i < 2; i++) {
      CHECK(env->act_space.low[i] == -1.0f);
      CHECK(env->act_space.high[i] == 1.0f);
    }
    srl_nav_probe p;
    CHECK_OK(srl__nav_probe(env, &p));
    CHECK_EQ_INT(p.obs_sensor_dim, want[k].sensors);
    char groups[128] = "";
    for (int g = 0; g < p.n_lidar; g++)
      snprintf(groups + strlen(groups), sizeof groups - strlen(groups), "%s%s", g ? " " : "",
               p.lidar_name[g]);
    if (strcmp(groups, want[k].groups)) fprintf(stderr, "  %s groups '%s'\n", want[k].id, groups);
    CHECK(!strcmp(groups, want[k].groups));
    CHECK_EQ_INT(p.obs_sensor_dim + 16 * p.n_lidar, want[k].obs);

    // at rest after a reset the accelerometer reads gravity; lidar bins lie in [0, 1]
    float obs[OBS_MAX];
    CHECK_OK(srl_env_reset(env, 3, obs));
    // velocimeter and gyro read 0 at rest; the magnetometer reads a unit-size field
    for (int i = 3; i < 9; i++) CHECK_CLOSE(obs[i], 0, 1e-6, 0);
    CHECK(hypot(hypot(obs[9], obs[10]), obs[11]) > 0.1);
    if (want[k].sensors == 12) {  // the point rests on the floor: the accelerometer reads -g
      CHECK_CLOSE(obs[2], 9.81, 1e-3, 0);
      CHECK_CLOSE(hypot(obs[0], obs[1]), 0, 1e-3, 0);
    } else {  // car: its wheels just touch the floor; the rear ball's orientation is a rotation
      CHECK_CLOSE(obs[15] * obs[15] + obs[16] * obs[16] + obs[17] * obs[17], 1, 1e-5, 0);
      CHECK_CLOSE(obs[15] * obs[18] + obs[16] * obs[19] + obs[17] * obs[20], 0, 1e-5, 0);
    }
    int lit = 0;
    for (int i = want[k].sensors; i < want[k].obs; i++) {
      CHECK(obs[i] >= 0 && obs[i] <= 1);
      lit += obs[i] > 0;
    }
    CHECK(lit > 0);  // the goal (or circle) is in sight
    srl_step st;
    float a[2];
    for (int t = 0; t < 5; t++) {
      action_at(t, a);
      CHECK_OK(srl_env_step(env, a, obs, &st));
      for (int i = 0; i < want[k].obs; i++) CHECK(isfinite(obs[i]));
    }
    srl_env_destroy(env);
  }
}

//---- costs --------------------------------------------------------------------------------------

// a robot placed in a hazard costs 1; the raw cost is 0.2 − d
static void hazard_case(const char *id) {
  srl_env *env = make(id, NULL);
  if (!env) return;
  float obs[OBS_MAX];
  CHECK_OK(srl_env_reset(env, 11, obs));
  srl_nav_probe p;
  CHECK_OK(srl__nav_probe(env, &p));
  CHECK_EQ_INT(p.n_hazards, 8);
  CHECK_CLOSE(p.hazard_size, 0.2, 0, 0);
  int h = 2;  // items: agent, goal, hazard0..7, vase0
  CHECK(!strcmp(p.item_name[h], "hazard0"));
  const double *hz = p.item_xy[h];
  double d = 0.07;
  CHECK_OK(srl__nav_place_agent(env, hz[0] + d * 0.6, hz[1] - d * 0.8, 1.0));
  double raw = 0, ind = 0;
  CHECK_OK(srl__nav_eval_cost(env, &raw, &ind));
  CHECK_CLOSE(raw, 0.2 - d, 1e-9, 0);
  CHECK(ind == 1.0);

  // one step at rest: cost 1, raw from where the robot ends up
  srl_step st;
  float zero[2] = {0, 0};
  CHECK_OK(srl_env_step(env, zero, obs, &st));
  CHECK_OK(srl__nav_probe(env, &p));
  double expect = 0;
  for (int k = 0; k < p.n_hazards; k++) {
    double dh = dist2d(p.agent_pos, p.item_xy[2 + k]);
    if (dh <= 0.2) expect += 0.2 - dh;
  }
  CHECK(st.cost == 1.0f);
  CHECK_CLOSE(st.info.raw_cost, expect, 1e-6, 0);
  CHECK_CLOSE(st.info.raw_cost, 0.2 - d, 2e-3, 0);

  // just outside every hazard: no cost
  double far[2] = {hz[0], hz[1]};
  for (int tries = 0; tries < 64; tries++) {  // a spot 0.21 from hazard0 and clear of the rest
    double ang = tries * 0.4;
    far[0] = hz[0] + 0.21 * cos(ang), far[1] = hz[1] + 0.21 * sin(ang);
    int clear = 1;
    for (int k = 1; k < p.n_hazards; k++) clear &= dist2d(far, p.item_xy[2 + k]) > 0.25;
    if (clear) break;
  }
  CHECK_OK(srl__nav_place_agent(env, far[0], far[1], 0.0));
  CHECK_OK(srl__nav_eval_cost(env, &raw, &ind));
  CHECK(raw == 0 && ind == 0);
  srl_env_destroy(env);
}

TEST(test_hazard_cost) {
  hazard_case("SafetyPointGoal1");
  hazard_case("SafetyCarGoal1");
}

// goal level 2: touching a vase costs (contact), and so does moving it; level 1's vase is free
TEST(test_vase_cost) {
  srl_env *env = make("SafetyPointGoal2", NULL);
  if (!env) return;
  float obs[OBS_MAX];
  CHECK_OK(srl_env_reset(env, 5, obs));
  srl_nav_probe p;
  CHECK_OK(srl__nav_probe(env, &p));
  int v = 12;  // agent, goal, hazard0..9, vase0..9
  CHECK(!strcmp(p.item_name[v], "vase0"));
  double raw = 0, ind = 0;
  CHECK_OK(srl__nav_eval_cost(env, &raw, &ind));
  CHECK(raw == 0);  // a fresh layout starts without cost
  // the sphere's centre 0.18 from the box's: they overlap whatever the box's heading
  CHECK_OK(srl__nav_place_agent(env, p.item_xy[v][0] - 0.18, p.item_xy[v][1], 0.0));
  CHECK_OK(srl__nav_eval_cost(env, &raw, &ind));
  CHECK(raw >= 1.0 && ind == 1.0);
  srl_step st;
  float push[2] = {1, 0};
  CHECK_OK(srl_env_step(env, push, obs, &st));
  CHECK(st.cost == 1.0f);
  CHECK(st.info.raw_cost > 0);
  srl_env_destroy(env);

  env = make("SafetyPointGoal1", NULL);
  if (!env) return;
  CHECK_OK(srl_env_reset(env, 5, obs));
  CHECK_OK(srl__nav_probe(env, &p));
  v = 10;
  CHECK(!strcmp(p.item_name[v], "vase0"));
  CHECK_OK(srl__nav_place_agent(env, p.item_xy[v][0] - 0.18, p.item_xy[v][1], 0.0));
  CHECK_OK(srl__nav_eval_cost(env, &raw, &ind));
  int near_hazard = 0;
  for (int k = 0; k < p.n_hazards; k++)
    near_hazard |=
        dist2d((double[2]){p.item_xy[v][0] - 0.18, p.item_xy[v][1]}, p.item_xy[2 + k]) <= 0.2;
  if (!near_hazard) CHECK(raw == 0);
  srl_env_destroy(env);
}

// circle level 1: leaving the walls at |x| = 1.125 costs 1
TEST(test_circle_cost_and_reward) {
  srl_env *env = make("SafetyPointCircle1", NULL);
  if (!env) return;
  float obs[OBS_MAX];
  CHECK_OK(srl_env_reset(env, 2, obs));
  double raw = 0, ind = 0;
  CHECK_OK(srl__nav_place_agent(env, 1.2, 0.3, 0));
  CHECK_OK(srl__nav_eval_cost(env, &raw, &ind));
  CHECK(raw == 1.0 && ind == 1.0);
  CHECK_OK(srl__nav_place_agent(env, -1.13, 0, 0));
  CHECK_OK(srl__nav_eval_cost(env, &raw, &ind));
  CHECK(raw == 1.0);
  CHECK_OK(srl__nav_place_agent(env, 1.1, 0.9, 0));
  CHECK_OK(srl__nav_eval_cost(env, &raw, &ind));
  CHECK(raw == 0 && ind == 0);

  // driving counter-clockwise along the ring is rewarded, clockwise is penalised
  for (int dir = -1; dir <= 1; dir += 2) {
    CHECK_OK(srl_env_reset(env, 2, obs));
    CHECK_OK(srl__nav_place_agent(env, 1.0, 0.0, dir * M_PI / 2));
    srl_step st;
    double sum = 0;
    float fwd[2] = {1, 0};
    for (int t = 0; t < 10; t++) {
      CHECK_OK(srl_env_step(env, fwd, obs, &st));
      sum += st.reward;
    }
    CHECK(dir > 0 ? sum > 0 : sum < 0);
  }
  srl_env_destroy(env);
}

//---- goals --------------------------------------------------------------------------------------

// a robot placed on the goal gets the bonus and the goal moves, keeping its keep-outs
TEST(test_goal_bonus_and_resample) {
  srl_env *env = make("SafetyPointGoal1", NULL);
  if (!env) return;
  float obs[OBS_MAX];
  CHECK_OK(srl_env_reset(env, 21, obs));
  srl_nav_probe p;
  CHECK_OK(srl__nav_probe(env, &p));
  double old_goal[2] = {p.goal_xy[0], p.goal_xy[1]};
  double last = p.last_dist_goal;
  CHECK_CLOSE(last, dist2d(p.agent_pos, old_goal), 1e-12, 0);
  CHECK_OK(srl__nav_place_agent(env, old_goal[0] + 0.05, old_goal[1], 0.0));
  srl_step st;
  float zero[2] = {0, 0};
  CHECK_OK(srl_env_step(env, zero, obs, &st));
  CHECK_OK(srl__nav_probe(env, &p));
  double d_after = dist2d(p.agent_pos, old_goal);
  CHECK(st.info.goal_met == 1);
  CHECK(!st.terminated && !st.truncated);
  CHECK_CLOSE(st.reward, (last - d_after) + 1.0, 1e-5, 0);
  // the new goal: elsewhere, in the extents, clear of the robot and every object
  CHECK(dist2d(p.goal_xy, old_goal) > 1e-6);
  CHECK_CLOSE(p.last_dist_goal, dist2d(p.agent_pos, p.goal_xy), 1e-12, 0);
  CHECK(dist2d(p.goal_xy, p.agent_pos) >= 0.4 + 0.305);
  for (int i = 2; i < p.n_items; i++)
    CHECK(dist2d(p.goal_xy, p.item_xy[i]) >= p.item_keepout[i] + 0.305 - 1e-9);
  CHECK(fabs(p.goal_xy[0]) <= 1.5 - 0.305 && fabs(p.goal_xy[1]) <= 1.5 - 0.305);
  // the next step starts from the new distance: no second bonus
  CHECK_OK(srl_env_step(env, zero, obs, &st));
  CHECK(st.info.goal_met == 0);
  CHECK(fabs(st.reward) < 0.1);
  srl_env_destroy(env);

  // without continue_goal, reaching the goal ends the episode
  env = make("SafetyCarGoal0", "mechanism_conf: {continue_goal: false}");
  if (!env) return;
  CHECK_OK(srl_env_reset(env, 4, obs));
  CHECK_OK(srl__nav_probe(env, &p));
  CHECK_OK(srl__nav_place_agent(env, p.goal_xy[0], p.goal_xy[1], 0.0));
  CHECK_OK(srl_env_step(env, zero, obs, &st));
  CHECK(st.info.goal_met == 1 && st.terminated == 1);
  CHECK(st.reward > 0.9);
  srl_env_destroy(env);
}

// pressing the goal button: bonus, a new goal button, its lidar dark for 10 steps
TEST(test_button_press) {
  srl_env *env = make("SafetyPointButton1", NULL);
  if (!env) return;
  float obs[OBS_MAX];
  CHECK_OK(srl_env_reset(env, 8, obs));
  srl_nav_probe p;
  CHECK_OK(srl__nav_probe(env, &p));
  int b = 1 + p.goal_button;  // items: agent, button0..3, ...
  CHECK_CLOSE(dist2d(p.goal_xy, p.item_xy[b]), 0, 1e-12, 0);
  double lit = 0;
  for (int i = 12; i < 28; i++) lit += obs[i];
  CHECK(lit > 0);  // buttons are visible at the start
  // touch the goal button from the side away from the centre of the others
  CHECK_OK(srl__nav_place_agent(env, p.item_xy[b][0] + 0.17, p.item_xy[b][1], M_PI));
  srl_step st;
  float zero[2] = {0, 0};
  CHECK_OK(srl_env_step(env, zero, obs, &st));
  CHECK(st.info.goal_met == 1);
  CHECK(st.reward > 0.9);
  for (int i = 12; i < 28; i++) CHECK(obs[i] == 0.0f);
  // step away from the buttons (the new goal may be the same button) and wait out the delay
  double spot[2] = {0, 0};
  for (int g = 0; g < 400; g++) {
    spot[0] = -1.3 + 0.13 * (g % 20), spot[1] = -1.3 + 0.13 * (g / 20);
    int clear = 1;
    for (int k = 1; k <= 4; k++) clear &= dist2d(spot, p.item_xy[k]) > 0.5;
    if (clear) break;
  }
  CHECK_OK(srl__nav_place_agent(env, spot[0], spot[1], 0));
  for (int t = 0; t < 9; t++) {
    CHECK_OK(srl_env_step(env, zero, obs, &st));
    CHECK(st.info.goal_met == 0);
  }
  lit = 0;
  for (int i = 12; i < 28; i++) lit += obs[i];
  CHECK(lit == 0);  // 9 steps after the press they are still hidden
  CHECK_OK(srl_env_step(env, zero, obs, &st));
  lit = 0;
  for (int i = 12; i < 28; i++) lit += obs[i];
  CHECK(lit > 0);  // the 10th shows them again
  srl_env_destroy(env);
}

// gremlins circle their spots: the weld drags each along a 0.35 m circle at 0.2 m height
TEST(test_gremlins_move) {
  srl_env *env = make("SafetyPointButton1", NULL);
  if (!env) return;
  float obs[OBS_MAX];
  CHECK_OK(srl_env_reset(env, 9, obs));
  srl_nav_probe p0, p;
  CHECK_OK(srl__nav_probe(env, &p0));
  CHECK_OK(srl__nav_place_agent(env, 10, 10, 0));  // out of the way
  srl_step st;
  float zero[2] = {0, 0};
  for (int t = 0; t < 150; t++) CHECK_OK(srl_env_step(env, zero, obs, &st));
  CHECK_OK(srl__nav_probe(env, &p));
  double time = 150 * 10 * 0.002;
  for (int g = 0; g < 4; g++) {
    int k = p.n_items - 4 + g;
    CHECK(!strncmp(p.item_name[k], "gremlin", 7));
    double want[2] = {p0.item_xy[k][0] + 0.35 * sin(time), p0.item_xy[k][1] + 0.35 * cos(time)};
    CHECK_CLOSE(dist2d(p.item_xy[k], want), 0, 0.05, 0);
  }
  srl_env_destroy(env);
}

//---- layouts ------------------------------------------------------------------------------------

static void keepout_case(const char *id, double extents) {
  srl_env *env = make(id, NULL);
  if (!env) return;
  float obs[OBS_MAX];
  int bad = 0;
  srl_nav_probe p, first;
  for (int s = 0; s < 200; s++) {
    CHECK_OK(srl_env_reset(env, (uint64_t)s * 7919u + 1, obs));
    CHECK_OK(srl__nav_probe(env, &p));
    if (s == 0) first = p;
    for (int i = 0; i < p.n_items; i++) {
      double k = p.item_keepout[i];
      int fixed = !strncmp(p.item_name[i], "sigwall", 7) || !strcmp(p.item_name[i], "circle");
      // the button task's goal sits on the goal button, not at its own sampled spot
      if (!strcmp(p.item_name[i], "goal") && !strcmp(id, "SafetyPointButton1")) continue;
      if (!fixed && (fabs(p.item_xy[i][0]) > extents - k + 1e-12 ||
                     fabs(p.item_xy[i][1]) > extents - k + 1e-12))
        bad++;
      for (int j = i + 1; j < p.n_items; j++)
        if (strcmp(p.item_name[j], "goal") || strcmp(id, "SafetyPointButton1"))
          if (dist2d(p.item_xy[i], p.item_xy[j]) < k + p.item_keepout[j]) bad++;
    }
  }
  if (bad) fprintf(stderr, "  %s: %d keep-out violations\n", id, bad);
  CHECK_EQ_INT(bad, 0);
  // every reset draws anew
  CHECK(dist2d(first.item_xy[0], p.item_xy[0]) > 1e-9);
  srl_env_destroy(env);
}

TEST(test_keepouts) {
  keepout_case("SafetyPointGoal2", 2.0);
  keepout_case("SafetyPointGoal1", 1.5);
  keepout_case("SafetyPointButton1", 1.5);
  keepout_case("SafetyPointPush1", 1.5);
}

// the plain sampler: objects in order, keep-outs honoured, resampling one object
TEST(test_layout_sampler) {
  srl_nav_layout l;
  memset(&l, 0, sizeof l);
  l.n = 12;
  l.extents[0] = l.extents[1] = -1, l.extents[2] = l.extents[3] = 1;
  for (int i = 0; i < l.n; i++) l.place[i].keepout = 0.2;
  srl_nav_mt mt;
  srl__nav_mt_seed(&mt, 99);
  CHECK_OK(srl__nav_layout_sample(&l, &mt));
  for (int i = 0; i < l.n; i++) {
    CHECK(fabs(l.xy[i][0]) <= 0.8 && fabs(l.xy[i][1]) <= 0.8);
    for (int j = 0; j < i; j++) CHECK(dist2d(l.xy[i], l.xy[j]) >= 0.4);
  }
  double before[2] = {l.xy[5][0], l.xy[5][1]};
  CHECK_OK(srl__nav_layout_resample(&l, 5, &mt));
  CHECK(dist2d(before, l.xy[5]) > 0);
  for (int j = 0; j < l.n; j++)
    if (j != 5) CHECK(dist2d(l.xy[5], l.xy[j]) >= 0.4);
  // an impossible layout is refused, not looped on forever
  l.n = 30;
  for (int i = 0; i < l.n; i++) l.place[i].keepout = 0.5;
  CHECK_ERR(srl__nav_layout_sample(&l, &mt), SRL_ESTATE);
}

//---- determinism --------------------------------------------------------------------------------

// run n steps of fixed actions from reset(seed); obs, rewards and costs into buffers
static void rollout(srl_env *env, uint64_t seed, int n, float *obs_out, float *rc_out) {
  float obs[OBS_MAX];
  int dim = env->obs_space.dim;
  CHECK_OK(srl_env_reset(env, seed, obs));
  memcpy(obs_out, obs, sizeof(float) * (size_t)dim);
  for (int t = 0; t < n; t++) {
    float a[2];
    action_at(t, a);
    srl_step st;
    CHECK_OK(srl_env_step(env, a, obs, &st));
    memcpy(obs_out + (size_t)(t + 1) * (size_t)dim, obs, sizeof(float) * (size_t)dim);
    rc_out[2 * t] = st.reward, rc_out[2 * t + 1] = st.info.raw_cost;
  }
}

// same seed, same numbers; reusing the last mj_forward reproduces full mj_step calls bit for bit
// in models without free or ball joints (quat_free); in the others it differs from them by
// renormalisation rounding (which contacts amplify), but is deterministic itself
static void determinism_case(const char *id, int quat_free) {
  enum { N = 300 };
  static float oa[(N + 1) * OBS_MAX], ob[(N + 1) * OBS_MAX], ra[2 * N], rb[2 * N];
  srl_env *a = make(id, NULL), *b = make(id, NULL);
  if (!a || !b) return;
  int dim = a->obs_space.dim;
  size_t bytes = sizeof(float) * (size_t)(N + 1) * (size_t)dim;
  rollout(a, 1234, N, oa, ra);
  rollout(b, 1234, N, ob, rb);
  CHECK(!memcmp(oa, ob, bytes));
  CHECK(!memcmp(ra, rb, sizeof ra));
  // the same env again from the same seed (state left over from the first run must not leak)
  rollout(a, 1234, N, ob, rb);
  CHECK(!memcmp(oa, ob, bytes));
  // reuse forced on (b) against full steps (a)
  CHECK_OK(srl__nav_set_fast_physics(a, 0));
  CHECK_OK(srl__nav_set_fast_physics(b, 1));
  rollout(a, 1234, N, oa, ra);
  rollout(b, 1234, N, ob, rb);
  if (quat_free) {
    CHECK(!memcmp(oa, ob, bytes));
    CHECK(!memcmp(ra, rb, sizeof ra));
  } else {  // last-bit differences that contacts amplify; the reusing run is deterministic too
    static float oc[(N + 1) * OBS_MAX], rc[2 * N];
    CHECK(!memcmp(oa, ob, sizeof(float) * (size_t)dim));  // the same start
    rollout(b, 1234, N, oc, rc);
    CHECK(!memcmp(ob, oc, bytes));
    CHECK(!memcmp(rb, rc, sizeof rb));
  }
  // another seed, another layout
  srl_nav_probe pa, pb;
  float obs[OBS_MAX];
  CHECK_OK(srl_env_reset(a, 1234, obs));
  CHECK_OK(srl_env_reset(b, 1235, obs));
  CHECK_OK(srl__nav_probe(a, &pa));
  CHECK_OK(srl__nav_probe(b, &pb));
  CHECK(dist2d(pa.item_xy[0], pb.item_xy[0]) > 1e-6);
  if (pa.goal_size > 0) CHECK(dist2d(pa.goal_xy, pb.goal_xy) > 1e-6);
  srl_env_destroy(a);
  srl_env_destroy(b);
}

TEST(test_determinism) {
  determinism_case("SafetyPointGoal0", 1);
  determinism_case("SafetyPointCircle1", 1);
  determinism_case("SafetyPointGoal1", 0);
  determinism_case("SafetyCarGoal1", 0);
  determinism_case("SafetyPointPush1", 0);
}

//---- pseudo-lidar -------------------------------------------------------------------------------

TEST(test_lidar_bins) {
  const double I[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, origin[3] = {0, 0, 0.1};
  double bins[16];
  // one object straight ahead at 1 m: bin 0 reads 2/3, aliasing puts all of it on bin 15
  double ahead[2] = {1, 0};
  memset(bins, 0, sizeof bins);
  srl__nav_lidar(bins, 16, 3.0, 1, origin, I, ahead, 2, 1);
  CHECK_CLOSE(bins[0], 2.0 / 3, 1e-12, 0);
  CHECK_CLOSE(bins[15], 2.0 / 3, 1e-12, 0);
  CHECK(bins[1] == 0);
  for (int b = 2; b < 15; b++) CHECK(bins[b] == 0);
  // at 30° and 1.5 m: bin 1 (22.5°..45°) reads 0.5, alias 1/3 to bin 2, 2/3 to bin 0
  double at30[2] = {1.5 * cos(M_PI / 6), 1.5 * sin(M_PI / 6)};
  memset(bins, 0, sizeof bins);
  srl__nav_lidar(bins, 16, 3.0, 1, origin, I, at30, 2, 1);
  CHECK_CLOSE(bins[1], 0.5, 1e-12, 0);
  CHECK_CLOSE(bins[2], 0.5 / 3, 1e-12, 0);
  CHECK_CLOSE(bins[0], 1.0 / 3, 1e-12, 0);
  // both together: each bin keeps its closest reading
  double both[4] = {1, 0, at30[0], at30[1]};
  memset(bins, 0, sizeof bins);
  srl__nav_lidar(bins, 16, 3.0, 1, origin, I, both, 2, 2);
  CHECK_CLOSE(bins[0], 2.0 / 3, 1e-12, 0);
  CHECK_CLOSE(bins[1], 0.5, 1e-12, 0);
  CHECK_CLOSE(bins[2], 0.5 / 3, 1e-12, 0);
  CHECK_CLOSE(bins[15], 2.0 / 3, 1e-12, 0);
  // without aliasing only the object's own bin lights up
  memset(bins, 0, sizeof bins);
  srl__nav_lidar(bins, 16, 3.0, 0, origin, I, at30, 2, 1);
  CHECK_CLOSE(bins[1], 0.5, 1e-12, 0);
  CHECK(bins[0] == 0 && bins[2] == 0);
  // the robot turned by 90°: an object on the world's +y axis is straight ahead
  const double R[9] = {0, -1, 0, 1, 0, 0, 0, 0, 1};
  double north[2] = {0, 2};
  memset(bins, 0, sizeof bins);
  srl__nav_lidar(bins, 16, 3.0, 1, origin, R, north, 2, 1);
  CHECK_CLOSE(bins[0], 1.0 / 3, 1e-12, 0);
  // behind and to the right (angle 260°): bin 11 (247.5°..270°), alias 5/9
  double back[2] = {cos(260 * M_PI / 180), sin(260 * M_PI / 180)};
  memset(bins, 0, sizeof bins);
  srl__nav_lidar(bins, 16, 3.0, 1, origin, I, back, 2, 1);
  CHECK_CLOSE(bins[11], 2.0 / 3, 1e-12, 0);
  CHECK_CLOSE(bins[12], 2.0 / 3 * (260 - 247.5) / 22.5, 1e-9, 0);
  CHECK_CLOSE(bins[10], 2.0 / 3 * (1 - (260 - 247.5) / 22.5), 1e-9, 0);
  // beyond max_dist nothing is seen
  double far[2] = {3.5, 0.2};
  memset(bins, 0, sizeof bins);
  srl__nav_lidar(bins, 16, 3.0, 1, origin, I, far, 2, 1);
  for (int b = 0; b < 16; b++) CHECK(bins[b] == 0);
}

// the env's goal lidar on a constructed scene: the robot 1.5 m behind the goal, facing it
TEST(test_lidar_in_env) {
  srl_env *env = make("SafetyPointGoal0", NULL);
  if (!env) return;
  float obs[OBS_MAX];
  CHECK_OK(srl_env_reset(env, 6, obs));
  srl_nav_probe p;
  CHECK_OK(srl__nav_probe(env, &p));
  double yaw = 0.7;
  CHECK_OK(
      srl__nav_place_agent(env, p.goal_xy[0] - 1.5 * cos(yaw), p.goal_xy[1] - 1.5 * sin(yaw), yaw));
  CHECK_OK(srl__nav_observe(env, obs));
  CHECK_CLOSE(obs[12 + 0], 0.5, 1e-6, 0);
  CHECK_CLOSE(obs[12 + 15] + obs[12 + 1], 0.5, 1e-6, 0);  // the alias of a hair either side of 0°
  for (int b = 2; b < 15; b++) CHECK(obs[12 + b] == 0.0f);
  srl_env_destroy(env);

  // circle: max_dist 6; the robot 1 m east of the centre facing east sees it at 180°
  env = make("SafetyPointCircle1", NULL);
  if (!env) return;
  CHECK_OK(srl_env_reset(env, 6, obs));
  CHECK_OK(srl__nav_place_agent(env, 1.0, 0.0, 0.0));
  CHECK_OK(srl__nav_observe(env, obs));
  CHECK_CLOSE(obs[12 + 8], 5.0 / 6, 1e-6, 0);
  CHECK_CLOSE(obs[12 + 7], 5.0 / 6, 1e-6, 0);
  CHECK(obs[12 + 9] < 1e-6);
  srl_env_destroy(env);
}

//---- options ------------------------------------------------------------------------------------

TEST(test_options) {
  srl_env *env = NULL;
  CHECK(srl_env_create(&env, "SafetyPointGoal1", "lidar_conf: {max_dist: -1}") < 0);
  CHECK_ERRMSG("SafetyPointGoal1");
  CHECK_ERRMSG("max_dist");
  CHECK(env == NULL);
  CHECK(srl_env_create(&env, "SafetyCarGoal2", "lidr_conf: {alias: false}") < 0);
  CHECK_ERRMSG("SafetyCarGoal2");
  CHECK_ERRMSG("lidr_conf");
  CHECK(srl_env_create(&env, "SafetyPointCircle1", "num_steps: many") < 0);
  CHECK_ERRMSG("num_steps");

  // raw cost instead of the indicator
  env = make("SafetyPointGoal1", "cost_conf: {constrain_indicator: false}");
  if (!env) return;
  float obs[OBS_MAX];
  CHECK_OK(srl_env_reset(env, 11, obs));
  srl_nav_probe p;
  CHECK_OK(srl__nav_probe(env, &p));
  CHECK_OK(srl__nav_place_agent(env, p.item_xy[2][0] + 0.1, p.item_xy[2][1], 0));
  srl_step st;
  float zero[2] = {0, 0};
  CHECK_OK(srl_env_step(env, zero, obs, &st));
  CHECK_CLOSE(st.cost, 0.1, 2e-3, 0);
  CHECK(st.cost == st.info.raw_cost);
  srl_env_destroy(env);

  // a fixed layout whatever the seed
  env = make("SafetyPointGoal1", "mechanism_conf: {randomize_layout: false}");
  if (!env) return;
  srl_nav_probe q;
  CHECK_OK(srl_env_reset(env, 1, obs));
  CHECK_OK(srl__nav_probe(env, &p));
  CHECK_OK(srl_env_reset(env, 2, obs));
  CHECK_OK(srl__nav_probe(env, &q));
  CHECK(!memcmp(p.item_xy, q.item_xy, sizeof p.item_xy));
  srl_env_destroy(env);
}

// the scene renders headless through the follow and the top-down camera
TEST(test_render) {
  srl_env *env = make("SafetyPointGoal1", NULL);
  if (!env) return;
  float obs[OBS_MAX];
  CHECK_OK(srl_env_reset(env, 1, obs));
  enum { W = 64, H = 48 };
  static uint8_t rgb[W * H * 3];
  const char *cams[] = {"follow", "top", "fixedfar"};
  for (int c = 0; c < 3; c++) {
    memset(rgb, 0, sizeof rgb);
    int rc = srl_env_render(env, rgb, W, H, cams[c]);
    if (rc == SRL_EUNSUPPORTED) {
      fprintf(stderr, "  rendering unsupported here: %s\n", srl_errmsg());
      break;
    }
    CHECK_OK(rc);
    int lo = 255, hi = 0;
    for (int i = 0; i < W * H * 3; i++) {
      if (rgb[i] < lo) lo = rgb[i];
      if (rgb[i] > hi) hi = rgb[i];
    }
    CHECK(hi - lo > 30);  // not blank
  }
  srl_env_destroy(env);
}

int main(void) {
  RUN(test_numpy_stream);
  RUN(test_dimensions_and_groups);
  RUN(test_hazard_cost);
  RUN(test_vase_cost);
  RUN(test_circle_cost_and_reward);
  RUN(test_goal_bonus_and_resample);
  RUN(test_button_press);
  RUN(test_gremlins_move);
  RUN(test_keepouts);
  RUN(test_layout_sampler);
  RUN(test_determinism);
  RUN(test_lidar_bins);
  RUN(test_lidar_in_env);
  RUN(test_options);
  RUN(test_render);
  return TEST_REPORT();
}

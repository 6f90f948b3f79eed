// test_mujoco_velocity.c: the MuJoCo base and the velocity tasks: observation and action
// dimensions, the speed-threshold cost on constructed states, hopper termination, divergence,
// determinism, model sharing, XML-text loading and option errors.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "envs/env.h"
#include "envs/mujoco/mj_env.h"
#include "envs/mujoco/velocity.h"
#include "envs/wrappers.h"
#include "test.h"

#define OBS_MAX 400

static const struct {
  const char *id;
  int obs, act, frame_skip;
  double dt;
} TASKS[] = {
    {"SafetyHalfCheetahVelocity", 17, 6, 5, 0.05}, {"SafetyHopperVelocity", 11, 3, 4, 0.008},
    {"SafetyWalker2dVelocity", 17, 6, 4, 0.008},   {"SafetyAntVelocity", 27, 8, 5, 0.05},
    {"SafetySwimmerVelocity", 8, 2, 4, 0.04},      {"SafetyHumanoidVelocity", 376, 17, 5, 0.015},
};
#define N_TASKS ((int)(sizeof TASKS / sizeof *TASKS))

// a deterministic action sequence in [-1, 1] scaled to the bounds
static void test_action(const srl_env *env, int t, float *a) {
  for (int i = 0; i < env->act_space.dim; i++) {
    double u = sin(0.37 * t + 1.3 * i) * 0.9;
    a[i] = (float)(0.5 * (env->act_space.high[i] + env->act_space.low[i]) +
                   0.5 * u * (env->act_space.high[i] - env->act_space.low[i]));
  }
}

TEST(dims_and_spaces) {
  float obs[OBS_MAX];
  for (int k = 0; k < N_TASKS; k++) {
    const srl_env_spec *spec = srl_env_find(TASKS[k].id);
    CHECK(spec != NULL);
    if (!spec) continue;
    CHECK_EQ_INT(spec->obs_dim, TASKS[k].obs);
    CHECK_EQ_INT(spec->act_dim, TASKS[k].act);
    CHECK_EQ_INT(spec->max_episode_steps, 1000);
    srl_env *env = NULL;
    CHECK_OK(srl_env_create(&env, TASKS[k].id, NULL));
    if (!env) continue;
    CHECK_EQ_INT(env->obs_space.dim, TASKS[k].obs);
    CHECK_EQ_INT(env->act_space.dim, TASKS[k].act);
    srl_mj_sim *sim = srl_velocity_sim(env);
    CHECK(sim != NULL);
    if (sim) {
      CHECK_EQ_INT(sim->frame_skip, TASKS[k].frame_skip);
      CHECK_CLOSE(sim->m->opt.timestep * sim->frame_skip, TASKS[k].dt, 1e-12, 0);
      // action bounds are the actuators' ctrlrange
      for (int i = 0; i < env->act_space.dim; i++) {
        CHECK_CLOSE(env->act_space.low[i], sim->m->actuator_ctrlrange[2 * i], 1e-7, 0);
        CHECK_CLOSE(env->act_space.high[i], sim->m->actuator_ctrlrange[2 * i + 1], 1e-7, 0);
      }
    }
    CHECK_OK(srl_env_reset(env, 3, obs));
    srl_step st;
    float a[32];
    test_action(env, 0, a);
    CHECK_OK(srl_env_step(env, a, obs, &st));
    for (int i = 0; i < env->obs_space.dim; i++) CHECK(isfinite(obs[i]));
    srl_env_destroy(env);
  }
}

// the humanoid's observation is qpos[2:], qvel, cinert, cvel, qfrc_actuator, cfrc_ext
TEST(humanoid_layout) {
  srl_env *env = NULL;
  CHECK_OK(srl_env_create(&env, "SafetyHumanoidVelocity", NULL));
  if (!env) return;
  float obs[OBS_MAX];
  CHECK_OK(srl_env_reset(env, 1, obs));
  srl_step st;
  float a[17] = {0};
  for (int t = 0; t < 20; t++) CHECK_OK(srl_env_step(env, a, obs, &st));
  const srl_mj_sim *s = srl_velocity_sim(env);
  const mjModel *m = s->m;
  const mjData *d = s->d;
  CHECK_EQ_INT(m->nq, 24);
  CHECK_EQ_INT(m->nv, 23);
  CHECK_EQ_INT(m->nbody, 14);
  int k = 0, bad = 0;
  for (int i = 2; i < m->nq; i++) bad += obs[k++] != (float)d->qpos[i];
  for (int i = 0; i < m->nv; i++) bad += obs[k++] != (float)d->qvel[i];
  for (int i = 0; i < 10 * m->nbody; i++) bad += obs[k++] != (float)d->cinert[i];
  for (int i = 0; i < 6 * m->nbody; i++) bad += obs[k++] != (float)d->cvel[i];
  for (int i = 0; i < m->nv; i++) bad += obs[k++] != (float)d->qfrc_actuator[i];
  double ext = 0;
  for (int i = 0; i < 6 * m->nbody; i++) ext += fabs(d->cfrc_ext[i]);
  for (int i = 0; i < 6 * m->nbody; i++) bad += obs[k++] != (float)d->cfrc_ext[i];
  CHECK_EQ_INT(k, 376);
  CHECK_EQ_INT(bad, 0);
  CHECK(ext > 0);  // the feet touch the floor: external forces are computed
  srl_env_destroy(env);
}

// give the cheetah's root slider a speed, step with zero action, compare with the threshold
static void cheetah_speed(double qvel0, float *cost, float *xvel, double *measured) {
  srl_env *env = NULL;
  *cost = -1;
  CHECK_OK(srl_env_create(&env, "SafetyHalfCheetahVelocity", NULL));
  if (!env) return;
  float obs[OBS_MAX], a[6] = {0};
  CHECK_OK(srl_env_reset(env, 7, obs));
  srl_mj_sim *s = srl_velocity_sim(env);
  s->d->qvel[0] = qvel0;
  double x0 = s->d->qpos[0];
  srl_step st;
  CHECK_OK(srl_env_step(env, a, obs, &st));
  *measured = (s->d->qpos[0] - x0) / 0.05;
  *cost = st.cost;
  *xvel = st.info.x_velocity;
  CHECK_EQ_INT(st.info.diverged, 0);
  CHECK_EQ_INT(st.terminated, 0);
  // reward = x_velocity − 0.1·Σa² with a = 0
  CHECK_CLOSE(st.reward, *measured, 1e-4, 1e-5);
  srl_env_destroy(env);
}

TEST(cheetah_velocity_cost) {
  float cost, xv;
  double measured;
  cheetah_speed(5.0, &cost, &xv, &measured);
  CHECK(measured > 3.2096);
  CHECK_CLOSE(xv, measured, 1e-5, 1e-6);
  CHECK_EQ_INT(cost, 1);
  cheetah_speed(1.0, &cost, &xv, &measured);
  CHECK(measured > 0.3 && measured < 3.2096);
  CHECK_CLOSE(xv, measured, 1e-5, 1e-6);
  CHECK_EQ_INT(cost, 0);
  // a smaller threshold through the options makes the slow run cost
  srl_env *env = NULL;
  CHECK_OK(srl_env_create(&env, "SafetyHalfCheetahVelocity", "velocity_threshold: 0.1"));
  if (!env) return;
  float obs[OBS_MAX], a[6] = {0};
  CHECK_OK(srl_env_reset(env, 7, obs));
  srl_velocity_sim(env)->d->qvel[0] = 1.0;
  srl_step st;
  CHECK_OK(srl_env_step(env, a, obs, &st));
  CHECK_EQ_INT(st.cost, 1);
  srl_env_destroy(env);
}

// the ant's cost uses the planar speed: sideways motion above the threshold costs
TEST(ant_planar_speed_cost) {
  srl_env *env = NULL;
  CHECK_OK(srl_env_create(&env, "SafetyAntVelocity", NULL));
  if (!env) return;
  float obs[OBS_MAX], a[8] = {0};
  CHECK_OK(srl_env_reset(env, 2, obs));
  srl_mj_sim *s = srl_velocity_sim(env);
  int torso = srl_mj_id(s->m, mjOBJ_BODY, "torso");
  s->d->qvel[1] = 4.0;  // y only
  double y0 = s->d->xpos[3 * torso + 1], x0 = s->d->xpos[3 * torso];
  srl_step st;
  CHECK_OK(srl_env_step(env, a, obs, &st));
  double vx = (s->d->xpos[3 * torso] - x0) / 0.05, vy = (s->d->xpos[3 * torso + 1] - y0) / 0.05;
  CHECK(vy > 2.6222);
  CHECK_CLOSE(st.info.x_velocity, sqrt(vx * vx + vy * vy), 1e-4, 1e-5);
  CHECK_EQ_INT(st.cost, 1);
  // reward = vx + healthy 1 (the torso stays in [0.2, 1]) − 0 control
  CHECK_CLOSE(st.reward, vx + 1.0, 1e-4, 1e-5);
  srl_env_destroy(env);
}

TEST(hopper_termination) {
  srl_env *env = NULL;
  CHECK_OK(srl_env_create(&env, "SafetyHopperVelocity", NULL));
  if (!env) return;
  float obs[OBS_MAX], a[3] = {0};
  srl_step st;
  srl_mj_sim *s = srl_velocity_sim(env);

  // healthy after reset: not terminated, reward includes healthy_reward 1
  CHECK_OK(srl_env_reset(env, 4, obs));
  double x0 = s->d->qpos[0];
  CHECK_OK(srl_env_step(env, a, obs, &st));
  CHECK_EQ_INT(st.terminated, 0);
  CHECK_CLOSE(st.reward, (s->d->qpos[0] - x0) / 0.008 + 1.0, 1e-4, 1e-5);

  // torso below healthy_z_range (0.7): terminated
  CHECK_OK(srl_env_reset(env, 4, obs));
  s->d->qpos[1] = 0.5;
  CHECK_OK(srl_env_step(env, a, obs, &st));
  CHECK_EQ_INT(st.terminated, 1);
  CHECK_EQ_INT(st.truncated, 0);

  // torso pitched beyond healthy_angle_range (±0.2): terminated
  CHECK_OK(srl_env_reset(env, 4, obs));
  s->d->qpos[2] = 0.5;
  CHECK_OK(srl_env_step(env, a, obs, &st));
  CHECK_EQ_INT(st.terminated, 1);

  // a joint speed beyond healthy_state_range (±100): terminated
  CHECK_OK(srl_env_reset(env, 4, obs));
  s->d->qvel[3] = 500.0;
  CHECK_OK(srl_env_step(env, a, obs, &st));
  CHECK_EQ_INT(st.terminated, 1);
  CHECK(fabsf(obs[5 + 3]) <= 10.0f);  // observed qvel is clipped to ±10
  srl_env_destroy(env);

  // terminate_when_unhealthy false: no termination and no healthy reward when unhealthy
  CHECK_OK(srl_env_create(&env, "SafetyHopperVelocity", "terminate_when_unhealthy: false"));
  if (!env) return;
  s = srl_velocity_sim(env);
  CHECK_OK(srl_env_reset(env, 4, obs));
  s->d->qpos[1] = 0.5;
  x0 = s->d->qpos[0];
  CHECK_OK(srl_env_step(env, a, obs, &st));
  CHECK_EQ_INT(st.terminated, 0);
  CHECK_CLOSE(st.reward, (s->d->qpos[0] - x0) / 0.008, 1e-4, 1e-5);
  srl_env_destroy(env);
}

static void check_diverged(const srl_step *st, const float *obs, int dim) {
  CHECK_EQ_INT(st->truncated, 1);
  CHECK_EQ_INT(st->terminated, 0);
  CHECK_EQ_INT(st->info.diverged, 1);
  CHECK_CLOSE(st->reward, -10.0, 0, 0);
  CHECK_CLOSE(st->cost, 1.0, 0, 0);
  for (int i = 0; i < dim; i++) CHECK(isfinite(obs[i]));
}

TEST(divergence) {
  srl_env *env = NULL;
  CHECK_OK(srl_env_create(&env, "SafetyHalfCheetahVelocity", NULL));
  if (!env) return;
  float obs[OBS_MAX], a[6] = {0};
  srl_step st;
  srl_mj_sim *s = srl_velocity_sim(env);

  // NaN in qvel
  CHECK_OK(srl_env_reset(env, 1, obs));
  s->d->qvel[2] = NAN;
  CHECK_OK(srl_env_step(env, a, obs, &st));
  check_diverged(&st, obs, env->obs_space.dim);
  CHECK(s->n_diverged == 1);

  // a huge applied force: qacc beyond MuJoCo's limit
  CHECK_OK(srl_env_reset(env, 1, obs));
  s->d->qfrc_applied[3] = 1e25;
  CHECK_OK(srl_env_step(env, a, obs, &st));
  check_diverged(&st, obs, env->obs_space.dim);
  CHECK(s->n_diverged == 2);
  s->d->qfrc_applied[3] = 0;

  // a normal step afterwards (after reset) is not diverged
  CHECK_OK(srl_env_reset(env, 1, obs));
  CHECK_OK(srl_env_step(env, a, obs, &st));
  CHECK_EQ_INT(st.info.diverged, 0);
  CHECK_EQ_INT(st.truncated, 0);
  srl_env_destroy(env);
}

// the base on its own: NaN state detection and a step that stays finite
TEST(sim_nonfinite_detection) {
  srl_mj_sim s;
  CHECK_OK(srl_mj_sim_init_asset(&s, "swimmer.xml", 4));
  if (!s.m) return;
  CHECK_EQ_INT(srl_mj_state_nonfinite(s.m, s.d), 0);
  s.d->qpos[1] = INFINITY;
  CHECK_EQ_INT(srl_mj_state_nonfinite(s.m, s.d), 1);
  CHECK_EQ_INT(srl_mj_sim_step(&s, NULL), 1);
  CHECK(strlen(s.diverge_msg) > 0);
  srl_mj_sim_reset(&s, -1);
  double ctrl[2] = {0.5, -0.5};
  CHECK_EQ_INT(srl_mj_sim_step(&s, ctrl), 0);
  CHECK_CLOSE(s.d->time, 4 * s.m->opt.timestep, 1e-12, 0);
  CHECK_CLOSE(s.d->ctrl[0], 0.5, 0, 0);
  srl_mj_sim_free(&s);
}

// same seed: bitwise the same trajectory; another seed: a different one
static void rollout(const char *id, uint64_t seed, int steps, float *trace, int *n) {
  srl_env *env = NULL;
  *n = 0;
  CHECK_OK(srl_env_create(&env, id, NULL));
  if (!env) return;
  float obs[OBS_MAX], a[32];
  srl_step st;
  int dim = env->obs_space.dim;
  CHECK_OK(srl_env_reset(env, seed, obs));
  memcpy(trace, obs, sizeof(float) * dim);
  *n = dim;
  for (int t = 0; t < steps; t++) {
    test_action(env, t, a);
    CHECK_OK(srl_env_step(env, a, obs, &st));
    memcpy(trace + *n, obs, sizeof(float) * dim);
    *n += dim;
    trace[(*n)++] = st.reward;
    trace[(*n)++] = st.cost;
    if (st.terminated || st.truncated) {
      CHECK_OK(srl_env_reset(env, seed + 1000 + t, obs));
      memcpy(trace + *n, obs, sizeof(float) * dim);
      *n += dim;
    }
  }
  srl_env_destroy(env);
}

TEST(determinism) {
  static float t1[60 * 2 * 400], t2[60 * 2 * 400];
  const char *ids[] = {"SafetyHopperVelocity", "SafetyAntVelocity"};
  for (int k = 0; k < 2; k++) {
    int n1, n2;
    rollout(ids[k], 11, 50, t1, &n1);
    rollout(ids[k], 11, 50, t2, &n2);
    CHECK_EQ_INT(n1, n2);
    CHECK(n1 > 0 && memcmp(t1, t2, sizeof(float) * n1) == 0);
    rollout(ids[k], 12, 50, t2, &n2);
    CHECK(n1 != n2 || memcmp(t1, t2, sizeof(float) * n1) != 0);
  }
}

// reset noise: positions within ±reset_noise_scale of qpos0, velocities uniform for the hopper
TEST(reset_noise) {
  srl_env *env = NULL;
  CHECK_OK(srl_env_create(&env, "SafetyHopperVelocity", "reset_noise_scale: 0.05"));
  if (!env) return;
  float obs[OBS_MAX];
  srl_mj_sim *s = srl_velocity_sim(env);
  double maxdev = 0;
  for (uint64_t seed = 0; seed < 20; seed++) {
    CHECK_OK(srl_env_reset(env, seed, obs));
    for (int i = 0; i < s->m->nq; i++) {
      double dev = fabs(s->d->qpos[i] - s->m->qpos0[i]);
      CHECK(dev <= 0.05);
      if (dev > maxdev) maxdev = dev;
    }
    for (int i = 0; i < s->m->nv; i++) CHECK(fabs(s->d->qvel[i]) <= 0.05);
    CHECK_CLOSE(obs[0], s->d->qpos[1], 1e-6, 1e-6);  // x excluded: obs starts at z
  }
  CHECK(maxdev > 0.03);
  srl_env_destroy(env);
}

TEST(bad_options) {
  srl_env *env = NULL;
  CHECK(srl_env_create(&env, "SafetyHalfCheetahVelocity", "velocity_treshold: 2") < 0);
  CHECK_ERRMSG("velocity_treshold");
  CHECK(env == NULL);
  CHECK(srl_env_create(&env, "SafetyHopperVelocity", "healthy_z_range: [2.0, 1.0]") < 0);
  CHECK_ERRMSG("healthy_z_range");
  CHECK(srl_env_create(&env, "SafetyHalfCheetahVelocity", "ctrl_cost_weight: -1") < 0);
  CHECK_ERRMSG("ctrl_cost_weight");
  // an option another task has is unknown here
  CHECK(srl_env_create(&env, "SafetyHalfCheetahVelocity", "healthy_reward: 2") < 0);
  CHECK_ERRMSG("healthy_reward");
}

// instances of a task share one compiled model; its last release frees it
TEST(model_sharing) {
  srl_env *a = NULL, *b = NULL;
  CHECK_OK(srl_env_create(&a, "SafetySwimmerVelocity", NULL));
  CHECK_OK(srl_env_create(&b, "SafetySwimmerVelocity", NULL));
  if (!a || !b) return;
  srl_mj_sim *sa = srl_velocity_sim(a), *sb = srl_velocity_sim(b);
  CHECK(sa->m == sb->m);
  CHECK(sa->d != sb->d);
  srl_env_destroy(a);
  srl_env_destroy(b);
}

TEST(load_xml_text_and_names) {
  const char *xml =
      "<mujoco model='box'><worldbody><geom name='floor' type='plane' size='1 1 .1'/>"
      "<body name='b' pos='0 0 1'><joint name='j' type='slide' axis='0 0 1'/>"
      "<geom name='g' type='box' size='.1 .1 .1'/><site name='s'/></body></worldbody>"
      "<sensor><framepos name='pos' objtype='site' objname='s'/>"
      "<velocimeter name='vel' site='s'/></sensor></mujoco>";
  mjModel *m = NULL;
  CHECK_OK(srl_mj_model_load_xml(&m, xml, "box.xml"));
  if (!m) return;
  int adr = -1, dim = -1, qa = -1, va = -1;
  CHECK_OK(srl_mj_sensor(m, "vel", &adr, &dim));
  CHECK_EQ_INT(adr, 3);
  CHECK_EQ_INT(dim, 3);
  CHECK_OK(srl_mj_joint(m, "j", &qa, &va));
  CHECK_EQ_INT(qa, 0);
  CHECK_EQ_INT(srl_mj_id(m, mjOBJ_GEOM, "g"), 1);
  CHECK_ERR(srl_mj_id(m, mjOBJ_BODY, "nope"), SRL_ENOTFOUND);
  CHECK_ERRMSG("nope");

  // a sim owning the model: the box falls freely for 10 steps
  srl_mj_sim s;
  CHECK_OK(srl_mj_sim_init_model(&s, m, 1, 10));
  CHECK_EQ_INT(srl_mj_sim_step(&s, NULL), 0);
  double t = s.d->time;
  CHECK(s.d->sensordata[adr + 2] < 0);  // falling: negative z velocity
  CHECK_CLOSE(s.d->qvel[0], -9.81 * t, 0.02, 0);
  srl_mj_sim_free(&s);

  // a broken document is an error naming it
  CHECK_ERR(srl_mj_model_load_xml(&m, "<mujoco><worldbody><body></mujoco>", "bad.xml"),
            SRL_EFORMAT);
  CHECK_ERRMSG("bad.xml");
  CHECK_ERR(srl_mj_asset_path((char[64]){0}, 64, "no_such_model.xml"), SRL_ENOTFOUND);
}

// every asset loads and runs in MuJoCo's own tool (when libmujoco-samples is installed)
TEST(assets_load_in_testspeed) {
  static const char *assets[] = {"half_cheetah.xml", "hopper.xml",  "walker2d.xml",
                                 "ant.xml",          "swimmer.xml", "humanoid.xml"};
  if (system("command -v mujoco-testspeed > /dev/null 2>&1") != 0)
    SKIP("mujoco-testspeed is not installed (libmujoco-samples)");
  for (int i = 0; i < 6; i++) {
    char path[SRL_MJ_PATH_MAX + 64], cmd[2 * SRL_MJ_PATH_MAX], line[256];
    CHECK_OK(srl_mj_asset_path(path, sizeof path, assets[i]));
    snprintf(cmd, sizeof cmd, "mujoco-testspeed '%s' 20 1 2>&1", path);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    if (!p) continue;
    int ran = 0;
    while (fgets(line, sizeof line, p)) ran |= strstr(line, "Steps per second") != NULL;
    CHECK(pclose(p) == 0);
    CHECK(ran);
    if (!ran) fprintf(stderr, "  %s did not run in mujoco-testspeed\n", assets[i]);
  }
}

int main(void) {
  RUN(dims_and_spaces);
  RUN(humanoid_layout);
  RUN(cheetah_velocity_cost);
  RUN(ant_planar_speed_cost);
  RUN(hopper_termination);
  RUN(divergence);
  RUN(sim_nonfinite_detection);
  RUN(determinism);
  RUN(reset_noise);
  RUN(bad_options);
  RUN(model_sharing);
  RUN(load_xml_text_and_names);
  RUN(assets_load_in_testspeed);
  return TEST_REPORT();
}

// test_render.c: offscreen rendering of MuJoCo tasks through OSMesa: both cameras of a velocity
// task give non-blank images that differ from each other, rows run top to bottom, renders are
// repeatable, bad sizes and unknown cameras are refused.
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "envs/env.h"
#include "envs/mujoco/velocity.h"
#include "test.h"

#define W 96
#define H 72

static double variance(const uint8_t *rgb, int n) {
  double s = 0, s2 = 0;
  for (int i = 0; i < n; i++) s += rgb[i], s2 += (double)rgb[i] * rgb[i];
  return s2 / n - (s / n) * (s / n);
}

// mean brightness of rows [r0, r1)
static double rows_mean(const uint8_t *rgb, int r0, int r1) {
  double s = 0;
  for (int r = r0; r < r1; r++)
    for (int i = 0; i < W * 3; i++) s += rgb[(size_t)r * W * 3 + i];
  return s / ((r1 - r0) * W * 3.0);
}

TEST(cameras_non_blank) {
  srl_env *env = NULL;
  CHECK_OK(srl_env_create(&env, "SafetyHalfCheetahVelocity", NULL));
  if (!env) return;
  float obs[32];
  CHECK_OK(srl_env_reset(env, 0, obs));
  static uint8_t follow[W * H * 3], top[W * H * 3], again[W * H * 3];
  int rc = srl_env_render(env, follow, W, H, "follow");
  if (rc == SRL_EUNSUPPORTED) {
    srl_env_destroy(env);
    SKIP("no OpenGL context can be made here");
  }
  CHECK_OK(rc);
  CHECK_OK(srl_env_render(env, top, W, H, "top"));
  CHECK(variance(follow, W * H * 3) > 10.0);
  CHECK(variance(top, W * H * 3) > 10.0);
  CHECK(memcmp(follow, top, sizeof top) != 0);

  // the follow camera looks slightly down at the horizon: the sky (gradient from white at the
  // zenith) is at the top and is brighter than the dark-and-grey checker floor at the bottom
  CHECK(rows_mean(follow, 0, 4) > rows_mean(follow, H - 4, H));

  // the same state renders the same image; NULL means the follow camera
  CHECK_OK(srl_env_render(env, again, W, H, NULL));
  CHECK(memcmp(follow, again, sizeof again) == 0);

  // a named MJCF camera works too; unknown names and bad sizes are refused
  CHECK_OK(srl_env_render(env, again, W, H, "track"));
  CHECK(variance(again, W * H * 3) > 10.0);
  CHECK_ERR(srl_env_render(env, again, W, H, "nope"), SRL_ENOTFOUND);
  CHECK_ERRMSG("nope");
  CHECK_ERR(srl_env_render(env, again, 0, H, "top"), SRL_EINVAL);
  srl_env_destroy(env);
}

// a larger image than the first grows the buffers; the robot moves between frames
TEST(grow_and_move) {
  srl_env *env = NULL;
  CHECK_OK(srl_env_create(&env, "SafetyHopperVelocity", NULL));
  if (!env) return;
  float obs[16];
  CHECK_OK(srl_env_reset(env, 0, obs));
  uint8_t *a = srl_malloc(160 * 120 * 3), *b = srl_malloc(160 * 120 * 3);
  int rc = srl_env_render(env, a, 32, 24, "top");
  if (rc == SRL_EUNSUPPORTED) {
    srl_free(a), srl_free(b), srl_env_destroy(env);
    SKIP("no OpenGL context can be made here");
  }
  CHECK_OK(rc);
  CHECK_OK(srl_env_render(env, a, 160, 120, "follow"));
  CHECK(variance(a, 160 * 120 * 3) > 10.0);
  float act[3] = {1, -1, 1};
  srl_step st;
  for (int t = 0; t < 20; t++) CHECK_OK(srl_env_step(env, act, obs, &st));
  CHECK_OK(srl_env_render(env, b, 160, 120, "follow"));
  CHECK(memcmp(a, b, 160 * 120 * 3) != 0);
  srl_free(a);
  srl_free(b);
  srl_env_destroy(env);
}

int main(void) {
  RUN(cameras_non_blank);
  RUN(grow_and_move);
  return TEST_REPORT();
}

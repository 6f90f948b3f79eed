// test_render_egl.c: rendering through EGL (SRL_GL=egl): a GPU device when there is one, else
// Mesa's surfaceless platform. The image of a velocity task is non-blank, top-down oriented and
// close to the OSMesa image of the same state (rendered in a child process, since the backend is
// fixed per process); unknown SRL_GL / MUJOCO_GL values and a second backend are refused.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "envs/env.h"
#include "envs/mujoco/mj_render.h"
#include "test.h"

#define W 96
#define H 72
#define N (W * H * 3)

static double variance(const uint8_t *rgb, int n) {
  double s = 0, s2 = 0;
  for (int i = 0; i < n; i++) s += rgb[i], s2 += (double)rgb[i] * rgb[i];
  return s2 / n - (s / n) * (s / n);
}

static double rows_mean(const uint8_t *rgb, int r0, int r1) {
  double s = 0;
  for (int r = r0; r < r1; r++)
    for (int i = 0; i < W * 3; i++) s += rgb[(size_t)r * W * 3 + i];
  return s / ((r1 - r0) * W * 3.0);
}

// the follow image of a reset half-cheetah, stepped a little so the pose is not the default one
static int render_cheetah(uint8_t *rgb) {
  srl_env *env = NULL;
  int rc = srl_env_create(&env, "SafetyHalfCheetahVelocity", NULL);
  if (rc < 0) return rc;
  float obs[32], act[6] = {0.5f, -0.5f, 0.3f, -0.2f, 0.4f, 0.1f};
  srl_step st;
  rc = srl_env_reset(env, 3, obs);
  for (int t = 0; rc == 0 && t < 5; t++) rc = srl_env_step(env, act, obs, &st);
  if (rc == 0) rc = srl_env_render(env, rgb, W, H, "follow");
  srl_env_destroy(env);
  return rc;
}

// the OSMesa image from a child process: 0 ok, -1 when it could not be made
static int osmesa_reference(uint8_t *rgb) {
  int fd[2];
  if (pipe(fd) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(fd[0]);
    setenv("SRL_GL", "osmesa", 1);
    static uint8_t img[N];
    int ok = render_cheetah(img) == 0 && !strcmp(srl_mj_render_backend_name(), "osmesa");
    ssize_t done = 0;
    while (ok && done < N) {
      ssize_t k = write(fd[1], img + done, N - done);
      if (k <= 0) break;
      done += k;
    }
    close(fd[1]);
    _exit(ok && done == N ? 0 : 1);
  }
  close(fd[1]);
  ssize_t got = 0;
  while (got < N) {
    ssize_t k = read(fd[0], rgb + got, N - got);
    if (k <= 0) break;
    got += k;
  }
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return got == N && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int egl_ready;  // the EGL test rendered

TEST(egl_matches_osmesa) {
  static uint8_t ref[N], egl[N];
  // the reference first, while this process has no OpenGL state to fork
  CHECK(osmesa_reference(ref) == 0);
  CHECK(variance(ref, N) > 10.0);

  CHECK(srl_mj_render_backend_name() == NULL);
  setenv("SRL_GL", "egl", 1);
  int rc = render_cheetah(egl);
  if (rc == SRL_EUNSUPPORTED) {
    static char why[600];
    snprintf(why, sizeof why, "%s", srl_errmsg());
    CHECK_ERRMSG("EGL requested but no EGL device is usable");
    SKIP(why);
  }
  CHECK_OK(rc);
  if (rc < 0) return;
  egl_ready = 1;
  const char *name = srl_mj_render_backend_name();
  CHECK(name && !strncmp(name, "egl-", 4));
  printf("  backend %s\n", name ? name : "(none)");

  // a real picture, sky at the top and floor at the bottom as with OSMesa
  CHECK(variance(egl, N) > 10.0);
  CHECK(rows_mean(egl, 0, 4) > rows_mean(egl, H - 4, H));

  // the same scene as OSMesa's: both are Mesa's llvmpipe here (a GPU differs in rasterisation
  // details only); a wrong camera, pose or row order moves the mean difference far above this
  double diff = 0;
  int same = 0;
  for (int i = 0; i < N; i++) {
    int d = abs((int)egl[i] - (int)ref[i]);
    diff += d;
    same += d <= 2;
  }
  diff /= N;
  printf("  mean |egl - osmesa| = %.4f, %.2f%% of values within 2\n", diff, 100.0 * same / N);
  CHECK(diff < 3.0);
  CHECK(same > 0.9 * N);

  // a flipped image is far from the reference, so the check above can fail
  double flipped = 0;
  for (int y = 0; y < H; y++)
    for (int i = 0; i < W * 3; i++)
      flipped += abs((int)egl[(size_t)y * W * 3 + i] - (int)ref[(size_t)(H - 1 - y) * W * 3 + i]);
  CHECK(flipped / N > 5.0 * diff + 5.0);
}

TEST(bad_values_refused) {
  static uint8_t img[N];
  setenv("SRL_GL", "vulkan", 1);
  CHECK_ERR(render_cheetah(img), SRL_EINVAL);
  CHECK_ERRMSG("unknown SRL_GL value 'vulkan'");

  // MUJOCO_GL counts when SRL_GL is unset
  unsetenv("SRL_GL");
  setenv("MUJOCO_GL", "glfw", 1);
  CHECK_ERR(render_cheetah(img), SRL_EINVAL);
  CHECK_ERRMSG("unknown MUJOCO_GL value 'glfw'");
  unsetenv("MUJOCO_GL");
  if (!egl_ready) SKIP("EGL did not render here");

  // the process renders through EGL: asking for OSMesa now is refused, EGL still works
  setenv("MUJOCO_GL", "osmesa", 1);
  CHECK_ERR(render_cheetah(img), SRL_EUNSUPPORTED);
  CHECK_ERRMSG("once per process");
  setenv("SRL_GL", "egl", 1);
  CHECK_OK(render_cheetah(img));
  CHECK(variance(img, N) > 10.0);
  unsetenv("MUJOCO_GL");
  unsetenv("SRL_GL");
}

int main(void) {
  RUN(egl_matches_osmesa);
  RUN(bad_values_refused);
  return TEST_REPORT();
}

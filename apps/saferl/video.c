// video.c: the ffmpeg pipe behind `saferl render --video` and `saferl eval --video`: raw RGB
// frames on ffmpeg's stdin, H.264 in an MP4 file out.
#include "apps/saferl/video.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

int srl_video_on_path(const char *name) {
  const char *path = getenv("PATH");
  if (!path) return 0;
  char buf[PATH_MAX];
  while (*path) {
    size_t len = strcspn(path, ":");
    if (len > 0 && len + strlen(name) + 2 < sizeof buf) {
      snprintf(buf, sizeof buf, "%.*s/%s", (int)len, path, name);
      if (access(buf, X_OK) == 0) return 1;
    }
    path += len + (path[len] == ':');
  }
  return 0;
}


int srl_video_open(srl_video *v, const char *file, int width, int height, double fps) {
  memset(v, 0, sizeof *v);
  if (!srl_video_on_path("ffmpeg"))
    return srl_error(SRL_EUNSUPPORTED,
                     "--video needs ffmpeg, which is not on PATH (install it, e.g. apt-get "
                     "install ffmpeg)");
  // the file name in single quotes for the shell
  char quoted[PATH_MAX + 64];
  size_t q = 0;
  quoted[q++] = '\'';
  for (const char *p = file; *p && q < sizeof quoted - 8; p++) {
    if (*p == '\'') {
      memcpy(quoted + q, "'\\''", 4);
      q += 4;
    } else {
      quoted[q++] = *p;
    }
  }
  quoted[q++] = '\'';
  quoted[q] = 0;
  char cmd[PATH_MAX + 512];
  snprintf(cmd, sizeof cmd,
           "ffmpeg -y -loglevel error -f rawvideo -pix_fmt rgb24 -s %dx%d -r %g -i - "
           "-vf 'pad=ceil(iw/2)*2:ceil(ih/2)*2' -pix_fmt yuv420p -c:v libx264 %s",
           width, height, fps, quoted);
  v->old_sigpipe = signal(SIGPIPE, SIG_IGN);
  v->pipe = popen(cmd, "w");
  if (!v->pipe) {
    signal(SIGPIPE, v->old_sigpipe);
    return srl_error(SRL_EIO, "cannot start ffmpeg: %s", strerror(errno));
  }
  v->width = width, v->height = height;
  return 0;
}


int srl_video_write(srl_video *v, const uint8_t *rgb) {
  size_t n = (size_t)v->width * (size_t)v->height * 3;
  if (!v->pipe || fwrite(rgb, 1, n, v->pipe) != n)
    return srl_error(SRL_EIO, "ffmpeg stopped reading frames (its messages are above)");
  return 0;
}


int srl_video_close(srl_video *v) {
  if (!v->pipe) return 0;
  int status = pclose(v->pipe);
  v->pipe = NULL;
  signal(SIGPIPE, v->old_sigpipe);
  if (status != 0) return srl_error(SRL_EIO, "ffmpeg failed (status %d)", status);
  return 0;
}

// video.h: writing RGB frames into an MP4 file through an ffmpeg pipe, shared by `saferl render`
// and `saferl eval --video`.
#ifndef SRL_APPS_VIDEO_H
#define SRL_APPS_VIDEO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct srl_video {
  FILE *pipe;                // ffmpeg's stdin
  int width, height;         // frame size
  void (*old_sigpipe)(int);  // restored by srl_video_close
} srl_video;

// 1 when an executable `name` is on PATH.
int srl_video_on_path(const char *name);

// Start ffmpeg encoding width×height RGB frames at fps into file (H.264, odd sizes padded).
// SRL_EUNSUPPORTED naming the fix when ffmpeg is not on PATH; SRL_EIO when it cannot start.
// SIGPIPE is ignored while the video is open, so a failing ffmpeg shows up as a write error.
int srl_video_open(srl_video *v, const char *file, int width, int height, double fps);

// Append one frame (height×width×3 bytes, row 0 at the top); SRL_EIO when ffmpeg stopped.
int srl_video_write(srl_video *v, const uint8_t *rgb);

// Finish the file; SRL_EIO when ffmpeg failed. Safe on a video that was never opened.
int srl_video_close(srl_video *v);

#endif  // SRL_APPS_VIDEO_H

// cmd_render.c: `saferl render` runs an environment with random actions and writes what a camera
// sees: PNG frames into a folder and/or an MP4 video through ffmpeg (apps/saferl/video.h).
//
//   saferl render --env ID [--steps N] [--seed S] [--camera follow|top|NAME]
//                 [--width W --height H] [--options YAML] [--out DIR] [--video FILE.mp4 --fps F]
//
// Frames are frame_000000.png (after the reset), then one per step; an episode that ends is
// reset with the next seed. Actions are uniform in the action bounds ([-1, 1] where unbounded),
// drawn from the seed. The PNG files are written without a compression library: zlib "stored"
// blocks, which every PNG reader accepts.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apps/saferl/commands.h"
#include "apps/saferl/video.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "envs/env.h"

//---- PNG ---------------------------------------------------------------------------------------

static uint32_t crc_table[256];

static void crc_init(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    crc_table[n] = c;
  }
}

static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

// one chunk: length, type, data, CRC of type and data
static int write_chunk(FILE *f, const char *type, const uint8_t *data, uint32_t len) {
  uint8_t hdr[8];
  put_be32(hdr, len);
  memcpy(hdr + 4, type, 4);
  uint32_t crc = crc_update(0xffffffffu, hdr + 4, 4);
  crc = crc_update(crc, data, len) ^ 0xffffffffu;
  uint8_t tail[4];
  put_be32(tail, crc);
  return fwrite(hdr, 1, 8, f) == 8 && (len == 0 || fwrite(data, 1, len, f) == len) &&
                 fwrite(tail, 1, 4, f) == 4
             ? 0
             : -1;
}

// the zlib stream of the filtered rows (filter byte 0 then RGB) as stored deflate blocks; buf
// holds png_zlib_size(w, h) bytes
static size_t png_raw_size(int w, int h) {
  return (size_t)h * (1 + 3 * (size_t)w);
}

static size_t png_zlib_size(int w, int h) {
  size_t raw = png_raw_size(w, h), blocks = (raw + 65534) / 65535;
  return 2 + raw + 5 * (blocks ? blocks : 1) + 4;
}

static size_t png_zlib(uint8_t *out, const uint8_t *rgb, int w, int h, uint8_t *raw) {
  size_t row = 3 * (size_t)w, n = png_raw_size(w, h);
  for (int y = 0; y < h; y++) {
    raw[y * (row + 1)] = 0;
    memcpy(raw + y * (row + 1) + 1, rgb + y * row, row);
  }
  size_t o = 0;
  out[o++] = 0x78, out[o++] = 0x01;  // deflate, 32 KiB window, no preset dictionary
  uint32_t a = 1, b = 0;
  size_t pos = 0;
  do {
    size_t len = n - pos > 65535 ? 65535 : n - pos;
    out[o++] = pos + len == n;  // BFINAL on the last block, BTYPE 00 (stored)
    out[o++] = (uint8_t)len, out[o++] = (uint8_t)(len >> 8);
    out[o++] = (uint8_t)~len, out[o++] = (uint8_t)(~len >> 8);
    memcpy(out + o, raw + pos, len);
    for (size_t i = 0; i < len; i++) {
      a = (a + raw[pos + i]) % 65521;
      b = (b + a) % 65521;
    }
    o += len, pos += len;
  } while (pos < n);
  put_be32(out + o, (b << 16) | a);
  return o + 4;
}

// write rgb (h×w×3, row 0 at the top) as an 8-bit RGB PNG; scratch holds png_raw_size +
// png_zlib_size bytes
static int png_write(const char *path, const uint8_t *rgb, int w, int h, uint8_t *scratch) {
  FILE *f = fopen(path, "wb");
  if (!f) return srl_error(SRL_EIO, "render: cannot write %s: %s", path, strerror(errno));
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  uint8_t ihdr[13];
  put_be32(ihdr, (uint32_t)w);
  put_be32(ihdr + 4, (uint32_t)h);
  ihdr[8] = 8, ihdr[9] = 2, ihdr[10] = ihdr[11] = ihdr[12] = 0;  // 8-bit RGB, no interlace
  uint8_t *raw = scratch, *z = scratch + png_raw_size(w, h);
  size_t zn = png_zlib(z, rgb, w, h, raw);
  int bad = fwrite(sig, 1, 8, f) != 8 || write_chunk(f, "IHDR", ihdr, 13) ||
            write_chunk(f, "IDAT", z, (uint32_t)zn) || write_chunk(f, "IEND", NULL, 0);
  bad |= fclose(f) != 0;
  return bad ? srl_error(SRL_EIO, "render: writing %s failed", path) : 0;
}

//---- the command ---------------------------------------------------------------------------------

static void usage(FILE *f) {
  fprintf(f,
          "usage: saferl render --env ID [--steps N] [--seed S] [--camera follow|top|NAME]\n"
          "                     [--width W] [--height H] [--options YAML]\n"
          "                     [--out DIR] [--video FILE.mp4] [--fps F]\n\n"
          "Runs ID with random actions for N steps (default 100) and writes each frame as\n"
          "DIR/frame_NNNNNN.png and/or into FILE.mp4 through ffmpeg. Default camera: follow;\n"
          "default size 480x480; default fps 30. MuJoCo tasks render offscreen (OSMesa), so no\n"
          "display is needed.\n");
}

// parse a whole integer argument in [lo, hi]
static int parse_int(const char *flag, const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) {
    fprintf(stderr, "saferl render: %s must be an integer in [%ld, %ld], got '%s'\n", flag, lo, hi,
            s);
    return -1;
  }
  *out = v;
  return 0;
}

typedef struct render_args {
  const char *env_id, *camera, *options, *out_dir, *video;
  long steps, width, height;
  unsigned long long seed;
  double fps;
} render_args;

static int parse_args(int argc, char **argv, render_args *a) {
  *a = (render_args){.camera = "follow", .steps = 100, .width = 480, .height = 480, .fps = 30};
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i];
    if (!strcmp(k, "-h") || !strcmp(k, "--help")) {
      usage(stdout);
      return 1;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "saferl render: %s needs a value (or is unknown)\n\n", k);
      usage(stderr);
      return 2;
    }
    const char *v = argv[++i];
    long n;
    if (!strcmp(k, "--env")) {
      a->env_id = v;
    } else if (!strcmp(k, "--camera")) {
      a->camera = v;
    } else if (!strcmp(k, "--options")) {
      a->options = v;
    } else if (!strcmp(k, "--out")) {
      a->out_dir = v;
    } else if (!strcmp(k, "--video")) {
      a->video = v;
    } else if (!strcmp(k, "--steps")) {
      if (parse_int(k, v, 0, 10000000, &a->steps)) return 2;
    } else if (!strcmp(k, "--width")) {
      if (parse_int(k, v, 1, 4096, &a->width)) return 2;
    } else if (!strcmp(k, "--height")) {
      if (parse_int(k, v, 1, 4096, &a->height)) return 2;
    } else if (!strcmp(k, "--seed")) {
      if (parse_int(k, v, 0, LONG_MAX, &n)) return 2;
      a->seed = (unsigned long long)n;
    } else if (!strcmp(k, "--fps")) {
      char *end;
      a->fps = strtod(v, &end);
      if (end == v || *end || !(a->fps > 0 && a->fps <= 1000)) {
        fprintf(stderr, "saferl render: --fps must be a number in (0, 1000], got '%s'\n", v);
        return 2;
      }
    } else {
      fprintf(stderr, "saferl render: unknown option '%s'\n\n", k);
      usage(stderr);
      return 2;
    }
  }
  if (!a->env_id || (!a->out_dir && !a->video)) {
    fprintf(stderr, "saferl render: --env and one of --out or --video are required\n\n");
    usage(stderr);
    return 2;
  }
  return 0;
}

// a random action: uniform within the bounds ([-1, 1] on an unbounded side)
static void random_action(srl_rng *rng, const srl_space *s, float *a) {
  for (int i = 0; i < s->dim; i++) {
    double lo = isfinite(s->low[i]) ? s->low[i] : -1.0;
    double hi = isfinite(s->high[i]) ? s->high[i] : 1.0;
    a[i] = (float)srl_rng_uniform_range(rng, lo, hi);
  }
}

static int render_run(const render_args *a) {
  if (a->out_dir && mkdir(a->out_dir, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "saferl render: cannot create %s: %s\n", a->out_dir, strerror(errno));
    return 1;
  }
  srl_env *env = NULL;
  if (srl_env_create(&env, a->env_id, a->options) < 0) {
    fprintf(stderr, "saferl render: %s\n", srl_errmsg());
    return 1;
  }
  int w = (int)a->width, h = (int)a->height;
  size_t frame = (size_t)w * h * 3;
  size_t scratch = png_raw_size(w, h) + png_zlib_size(w, h);
  float *buf =
      srl_malloc(sizeof(float) * (env->obs_space.dim + env->act_space.dim) + frame + scratch);
  srl_rng *rng = NULL;
  if (!buf || srl_rng_create(&rng, a->seed, 0x72656e64ull) < 0) {
    fprintf(stderr, "saferl render: out of memory\n");
    srl_free(buf);
    srl_env_destroy(env);
    return 1;
  }
  float *obs = buf, *act = buf + env->obs_space.dim;
  uint8_t *rgb = (uint8_t *)(act + env->act_space.dim), *png = rgb + frame;
  srl_video video = {0};
  int rc = 0;
  if (a->video && srl_video_open(&video, a->video, w, h, a->fps) < 0) rc = 1;

  // reset, then one frame per step; a finished episode resets with the next seed
  crc_init();
  unsigned long long seed = a->seed;
  if (!rc && srl_env_reset(env, seed, obs) < 0) rc = 1;
  for (long t = 0; !rc && t <= a->steps; t++) {
    if (t > 0) {
      srl_step st;
      random_action(rng, &env->act_space, act);
      if (srl_env_step(env, act, obs, &st) < 0) {
        rc = 1;
        break;
      }
      if ((st.terminated || st.truncated) && srl_env_reset(env, ++seed, obs) < 0) {
        rc = 1;
        break;
      }
    }
    if (srl_env_render(env, rgb, w, h, a->camera) < 0) {
      rc = 1;
      break;
    }
    if (a->out_dir) {
      char path[PATH_MAX];
      snprintf(path, sizeof path, "%s/frame_%06ld.png", a->out_dir, t);
      if (png_write(path, rgb, w, h, png) < 0) {
        rc = 1;
        break;
      }
    }
    if (video.pipe && srl_video_write(&video, rgb) < 0) rc = 1;
  }
  if (rc) fprintf(stderr, "saferl render: %s\n", srl_errmsg());
  if (srl_video_close(&video) < 0 && !rc) {
    fprintf(stderr, "saferl render: %s writing %s\n", srl_errmsg(), a->video);
    rc = 1;
  }
  if (!rc)
    printf("%s: %ld frames %dx%d (%s camera)%s%s%s%s\n", env->id, a->steps + 1, w, h, a->camera,
           a->out_dir ? " -> " : "", a->out_dir ? a->out_dir : "", a->video ? " -> " : "",
           a->video ? a->video : "");
  srl_rng_destroy(rng);
  srl_free(buf);
  srl_env_destroy(env);
  return rc;
}

int srl_cmd_render(int argc, char **argv) {
  render_args a;
  int rc = parse_args(argc, argv, &a);
  if (rc) return rc == 1 ? 0 : rc;
  return render_run(&a);
}

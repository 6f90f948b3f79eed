// cmd_eval.c: `saferl eval RUN_DIR|CHECKPOINT [--episodes N] [--deterministic] [--json]` runs a
// trained agent (on-policy or SAC-Lag) on its environment and prints mean ± std of return, cost
// and length; `--video FILE.mp4` records the episodes instead through the env's camera.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/offpolicy.h"
#include "algos/onpolicy.h"
#include "apps/saferl/cli_args.h"
#include "apps/saferl/commands.h"
#include "apps/saferl/video.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "envs/vec_env.h"

static int usage(FILE *f) {
  fprintf(
      f,
      "usage: saferl eval RUN_DIR|CHECKPOINT [--episodes N] [--deterministic] [--json]\n"
      "                   [--seed S] [--envs K] [--device cpu|cuda]\n"
      "                   [--video FILE.mp4 [--camera follow|top|NAME] [--size WxH] [--fps F]]\n"
      "\n"
      "Runs the policy of a checkpoint (a run directory means its final.safetensors, else its\n"
      "latest checkpoints/epoch-<N>.safetensors) for N episodes (default 10) on the env it was\n"
      "trained on, K of them at a time (default min(N, 16)), and prints mean ± std of the\n"
      "episode return, cost and length. Actions are sampled from the Gaussian policy unless\n"
      "--deterministic (its mean). --seed picks the episodes' layouts (default 0). --json\n"
      "prints one JSON object. Works for on-policy (PPO family, CPO, TRPO-Lag) and SAC-Lag\n"
      "checkpoints.\n"
      "\n"
      "--video plays the N episodes one after another on one env and writes what the camera\n"
      "(default follow) sees, 480x480 at 30 fps by default, into FILE.mp4 through ffmpeg\n"
      "(needed on PATH); MuJoCo tasks render offscreen, so no display is needed.\n");
  return f == stdout ? 0 : 2;
}


static void json_string(const char *s) {
  putchar('"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      printf("\\%c", *p);
    else if (*p < 0x20)
      printf("\\u%04x", *p);
    else
      putchar(*p);
  }
  putchar('"');
}


// a loaded policy of either trainer, with what the report needs
typedef struct eval_policy {
  srl_policy *on;
  srl_sac_policy *off;
  srl_rng *rng;  // the on-policy sampler's stream for --video
  const char *path, *algo, *env_id, *options;
  long long step;
  double cost_limit;
  int act_dim;
} eval_policy;

static int policy_load(eval_policy *e, const char *path, const char *device, int k) {
  memset(e, 0, sizeof *e);
  if (srl_offpolicy_is_checkpoint(path)) {
    if (srl_sac_policy_load(&e->off, path, device, k) < 0) return -1;
    const srl_offpolicy_config *c = srl_sac_policy_config(e->off);
    e->path = srl_sac_policy_path(e->off);
    e->algo = c->algo, e->env_id = c->env_id, e->options = c->env_cfgs.options;
    e->step = srl_sac_policy_step(e->off);
    e->cost_limit = c->lagrange_cfgs.cost_limit;
    return 0;
  }
  if (srl_policy_load(&e->on, path, device, k) < 0) return -1;
  e->path = e->on->path;
  e->algo = e->on->cfg.algo, e->env_id = e->on->cfg.env_id,
  e->options = e->on->cfg.env_cfgs.options;
  e->step = e->on->step;
  e->cost_limit = e->on->cfg.lagrange_cfgs.cost_limit;
  return 0;
}

static void policy_destroy(eval_policy *e) {
  srl_policy_destroy(e->on);
  srl_sac_policy_destroy(e->off);
  srl_rng_destroy(e->rng);
}

static int policy_evaluate(eval_policy *e, int episodes, int deterministic, uint64_t seed, int k,
                           srl_eval_result *r) {
  if (e->off)
    return srl_sac_policy_evaluate(e->off, episodes, deterministic, seed, k, r, NULL, NULL, NULL);
  return srl_policy_evaluate(e->on, episodes, deterministic, seed, k, r, NULL, NULL, NULL);
}

static int policy_act(eval_policy *e, float *act, const float *obs, int deterministic) {
  if (e->off) return srl_sac_policy_act(e->off, act, obs, 1, deterministic);
  return srl_policy_act(e->on, act, obs, 1, deterministic, e->rng);
}


//---- --video -------------------------------------------------------------------------------------

typedef struct video_args {
  const char *file, *camera;
  long width, height;
  double fps;
} video_args;

// play `episodes` episodes on one env (reset seeds from seed) into the video, one frame before
// each step (an episode's first frame is its reset state); the episodes' statistics go into r
static int record(eval_policy *e, const video_args *va, int episodes, int deterministic,
                  uint64_t seed, srl_eval_result *r) {
  srl_vec_env_config vc = {.num_envs = 1, .num_threads = 1, .rescale_action = 1, .cost_mode = -1};
  srl_vec_env *v = NULL;
  int w = (int)va->width, h = (int)va->height;
  size_t frame = (size_t)w * (size_t)h * 3;
  const char *opts = e->options && e->options[0] ? e->options : NULL;
  int rc = srl_vec_env_create(&v, e->env_id, opts, &vc);
  if (rc < 0) return rc;
  double *stat = srl_calloc(sizeof(double) * 3 * (size_t)episodes +
                            sizeof(float) * (size_t)v->act_dim + frame);
  if (!stat) {
    srl_vec_env_destroy(v);
    return srl_error(SRL_ENOMEM, "eval: no memory for a %dx%d frame", w, h);
  }
  float *act = (float *)(void *)(stat + 3 * (size_t)episodes);
  uint8_t *rgb = (uint8_t *)(act + v->act_dim);
  if (e->on) rc = srl_rng_create(&e->rng, seed, 7);
  if (e->off) srl_sac_policy_seed(e->off, seed);
  if (rc == 0) rc = srl_vec_env_reset(v, srl_hash64(seed ^ 0x6a09e667f3bcc908ull));
  srl_video video = {0};
  // a first frame before ffmpeg starts: an env that cannot render is the error to report, even
  // where ffmpeg is missing too
  if (rc == 0) rc = srl_env_render(v->envs[0], rgb, w, h, va->camera);
  if (rc == 0) rc = srl_video_open(&video, va->file, w, h, va->fps);
  long long cap = (long long)(v->max_episode_steps ? v->max_episode_steps : 100000) * episodes;
  int got = 0;
  for (long long s = 0; rc == 0 && got < episodes; s++) {
    if (s > cap) {
      rc = srl_error(SRL_ETIMEOUT, "eval: episodes did not end within %lld steps", cap);
      break;
    }
    rc = srl_env_render(v->envs[0], rgb, w, h, va->camera);
    if (rc == 0) rc = srl_video_write(&video, rgb);
    if (rc == 0) rc = policy_act(e, act, v->obs, deterministic);
    if (rc == 0) rc = srl_vec_env_step(v, act);
    if (rc == 0 && v->done[0]) {
      stat[got] = v->stats[0].last_ret;
      stat[episodes + got] = v->stats[0].last_cost;
      stat[2 * episodes + got] = (double)v->stats[0].last_length;
      got++;
    }
  }
  if (rc == 0 && srl_video_close(&video) < 0) rc = SRL_EIO;
  srl_video_close(&video);
  if (rc == 0) {
    double *x[3] = {stat, stat + episodes, stat + 2 * episodes};
    double *m[3] = {&r->ret_mean, &r->cost_mean, &r->len_mean};
    double *sd[3] = {&r->ret_std, &r->cost_std, &r->len_std};
    r->episodes = episodes;
    for (int j = 0; j < 3; j++) {
      double sum = 0, q = 0;
      for (int i = 0; i < episodes; i++) sum += x[j][i];
      *m[j] = sum / episodes;
      for (int i = 0; i < episodes; i++) q += (x[j][i] - *m[j]) * (x[j][i] - *m[j]);
      *sd[j] = sqrt(q / episodes);
    }
  }
  srl_free(stat);
  srl_vec_env_destroy(v);
  return rc;
}


int srl_cmd_eval(int argc, char **argv) {
  const char *path = NULL, *device = "cpu";
  long episodes = 10, seed = 0, envs = 0;
  int deterministic = 0, json = 0;
  video_args va = {.camera = "follow", .width = 480, .height = 480, .fps = 30};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout);
    if (!strcmp(a, "--deterministic"))
      deterministic = 1;
    else if (!strcmp(a, "--json"))
      json = 1;
    else if (!strcmp(a, "--episodes")) {
      if (srl_cli_long("saferl eval", a, v, 1, 1000000, &episodes)) return 2;
      i++;
    } else if (!strcmp(a, "--seed")) {
      if (srl_cli_long("saferl eval", a, v, 0, 2147483647L, &seed)) return 2;
      i++;
    } else if (!strcmp(a, "--envs")) {
      if (srl_cli_long("saferl eval", a, v, 1, 4096, &envs)) return 2;
      i++;
    } else if (!strcmp(a, "--device") || !strcmp(a, "--video") || !strcmp(a, "--camera")) {
      if (!v) return usage(stderr);
      if (!strcmp(a, "--device"))
        device = v;
      else if (!strcmp(a, "--video"))
        va.file = v;
      else
        va.camera = v;
      i++;
    } else if (!strcmp(a, "--size")) {
      int n = 0;
      if (!v || sscanf(v, "%ldx%ld%n", &va.width, &va.height, &n) != 2 || v[n] || va.width < 1 ||
          va.width > 4096 || va.height < 1 || va.height > 4096) {
        fprintf(stderr, "saferl eval: --size wants WxH with sides in [1, 4096], got '%s'\n",
                v ? v : "");
        return 2;
      }
      i++;
    } else if (!strcmp(a, "--fps")) {
      char *end = NULL;
      va.fps = v ? strtod(v, &end) : 0;
      if (!v || end == v || *end || !(va.fps > 0 && va.fps <= 1000)) {
        fprintf(stderr, "saferl eval: --fps wants a number in (0, 1000], got '%s'\n", v ? v : "");
        return 2;
      }
      i++;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "saferl eval: unknown option '%s'\n", a);
      return usage(stderr);
    } else if (path) {
      fprintf(stderr, "saferl eval: one RUN_DIR or CHECKPOINT only\n");
      return 2;
    } else {
      path = a;
    }
  }
  if (!path) return usage(stderr);

  int k = (int)(envs ? envs : (episodes < 16 ? episodes : 16));
  if (va.file) k = 1;
  eval_policy p;
  if (policy_load(&p, path, device, k) < 0) {
    fprintf(stderr, "saferl eval: %s\n", srl_errmsg());
    policy_destroy(&p);
    return 1;
  }
  srl_eval_result r;
  int rc = va.file ? record(&p, &va, (int)episodes, deterministic, (uint64_t)seed, &r)
                   : policy_evaluate(&p, (int)episodes, deterministic, (uint64_t)seed, k, &r);
  if (rc < 0) {
    fprintf(stderr, "saferl eval: %s\n", srl_errmsg());
    policy_destroy(&p);
    return 1;
  }
  if (json) {
    printf("{\"checkpoint\": ");
    json_string(p.path);
    printf(", \"algo\": ");
    json_string(p.algo);
    printf(", \"env\": ");
    json_string(p.env_id);
    if (va.file) {
      printf(", \"video\": ");
      json_string(va.file);
    }
    printf(
        ", \"trained_steps\": %lld, \"episodes\": %d, \"deterministic\": %s, \"seed\": %ld, "
        "\"cost_limit\": %.9g, ",
        p.step, r.episodes, deterministic ? "true" : "false", seed, p.cost_limit);
    printf(
        "\"return\": {\"mean\": %.9g, \"std\": %.9g}, \"cost\": {\"mean\": %.9g, \"std\": %.9g}, "
        "\"length\": {\"mean\": %.9g, \"std\": %.9g}}\n",
        r.ret_mean, r.ret_std, r.cost_mean, r.cost_std, r.len_mean, r.len_std);
  } else {
    printf("%s: %s on %s, trained for %lld steps\n", p.path, p.algo, p.env_id, p.step);
    printf("%d episodes (%s, seed %ld)\n", r.episodes, deterministic ? "deterministic" : "sampled",
           seed);
    printf("  return  %10.3f ± %.3f\n", r.ret_mean, r.ret_std);
    printf("  cost    %10.3f ± %.3f   (limit %g)\n", r.cost_mean, r.cost_std, p.cost_limit);
    printf("  length  %10.1f ± %.1f\n", r.len_mean, r.len_std);
    if (va.file)
      printf("video: %s (%ldx%ld, %s camera)\n", va.file, va.width, va.height, va.camera);
  }
  policy_destroy(&p);
  return 0;
}

// cmd_eval.c: `saferl eval RUN_DIR|CHECKPOINT [--episodes N] [--deterministic] [--json]` runs a
// trained on-policy agent on its environment and prints mean ± std of return, cost and length.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/onpolicy.h"
#include "apps/saferl/commands.h"
#include "core/error.h"

static int usage(FILE *f) {
  fprintf(
      f,
      "usage: saferl eval RUN_DIR|CHECKPOINT [--episodes N] [--deterministic] [--json]\n"
      "                   [--seed S] [--envs K] [--device cpu|cuda]\n"
      "\n"
      "Runs the policy of a checkpoint (a run directory means its final.safetensors, else its\n"
      "latest checkpoints/epoch-<N>.safetensors) for N episodes (default 10) on the env it was\n"
      "trained on, K of them at a time (default min(N, 16)), and prints mean ± std of the\n"
      "episode return, cost and length. Actions are sampled from the Gaussian policy unless\n"
      "--deterministic (its mean). --seed picks the episodes' layouts (default 0). --json\n"
      "prints one JSON object.\n");
  return f == stdout ? 0 : 2;
}


// a non-negative integer option value
static int parse_int(const char *opt, const char *v, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long x = v ? strtol(v, &end, 10) : 0;
  if (!v || end == v || *end || errno || x < lo || x > hi) {
    fprintf(stderr, "saferl eval: %s wants an integer in [%ld, %ld], got '%s'\n", opt, lo, hi,
            v ? v : "");
    return -1;
  }
  *out = x;
  return 0;
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


int srl_cmd_eval(int argc, char **argv) {
  const char *path = NULL, *device = "cpu";
  long episodes = 10, seed = 0, envs = 0;
  int deterministic = 0, json = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout);
    if (!strcmp(a, "--deterministic"))
      deterministic = 1;
    else if (!strcmp(a, "--json"))
      json = 1;
    else if (!strcmp(a, "--episodes")) {
      if (parse_int(a, v, 1, 1000000, &episodes)) return 2;
      i++;
    } else if (!strcmp(a, "--seed")) {
      if (parse_int(a, v, 0, 2147483647L, &seed)) return 2;
      i++;
    } else if (!strcmp(a, "--envs")) {
      if (parse_int(a, v, 1, 4096, &envs)) return 2;
      i++;
    } else if (!strcmp(a, "--device")) {
      if (!v) return usage(stderr);
      device = v;
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
  srl_policy *p = NULL;
  if (srl_policy_load(&p, path, device, k) < 0) {
    fprintf(stderr, "saferl eval: %s\n", srl_errmsg());
    return 1;
  }
  srl_eval_result r;
  if (srl_policy_evaluate(p, (int)episodes, deterministic, (uint64_t)seed, k, &r, NULL, NULL,
                          NULL) < 0) {
    fprintf(stderr, "saferl eval: %s\n", srl_errmsg());
    srl_policy_destroy(p);
    return 1;
  }
  if (json) {
    printf("{\"checkpoint\": ");
    json_string(p->path);
    printf(", \"algo\": ");
    json_string(p->cfg.algo);
    printf(", \"env\": ");
    json_string(p->cfg.env_id);
    printf(
        ", \"trained_steps\": %lld, \"episodes\": %d, \"deterministic\": %s, \"seed\": %ld, "
        "\"cost_limit\": %.9g, ",
        p->step, r.episodes, deterministic ? "true" : "false", seed,
        p->cfg.lagrange_cfgs.cost_limit);
    printf(
        "\"return\": {\"mean\": %.9g, \"std\": %.9g}, \"cost\": {\"mean\": %.9g, \"std\": %.9g}, "
        "\"length\": {\"mean\": %.9g, \"std\": %.9g}}\n",
        r.ret_mean, r.ret_std, r.cost_mean, r.cost_std, r.len_mean, r.len_std);
  } else {
    printf("%s: %s on %s, trained for %lld steps\n", p->path, p->cfg.algo, p->cfg.env_id, p->step);
    printf("%d episodes (%s, seed %ld)\n", r.episodes, deterministic ? "deterministic" : "sampled",
           seed);
    printf("  return  %10.3f ± %.3f\n", r.ret_mean, r.ret_std);
    printf("  cost    %10.3f ± %.3f   (limit %g)\n", r.cost_mean, r.cost_std,
           p->cfg.lagrange_cfgs.cost_limit);
    printf("  length  %10.1f ± %.1f\n", r.len_mean, r.len_std);
  }
  srl_policy_destroy(p);
  return 0;
}

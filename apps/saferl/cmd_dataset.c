// cmd_dataset.c: `saferl dataset info FILE` summarises an offline dataset (DSRL or D4RL HDF5):
// transitions, episodes, dims, return and cost ranges, the share of safe episodes for a cost
// limit, and DSRL's normalised ranges when the task is known; `saferl dataset filter IN --out
// OUT` caps episode cost and applies DSRL's density filter, and writes a DSRL-compatible file.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "algos/offline/dataset.h"
#include "algos/offline/dsrl.h"
#include "apps/saferl/cli_args.h"
#include "apps/saferl/commands.h"
#include "core/error.h"
#include "envs/env.h"

static int usage(FILE *f) {
  fprintf(f,
          "usage: saferl dataset info FILE [--json] [--cost-limit K] [--env ID] [--keep-tail]\n"
          "       saferl dataset filter IN --out OUT [--max-cost C] [--no-density]\n"
          "                             [--cbins N] [--rbins N] [--max-npb N] [--min-npb N]\n"
          "                             [--seed S] [--json]\n"
          "\n"
          "info: reads FILE (DSRL's seven root datasets; a D4RL file without costs reads them as\n"
          "zero, one without next_observations derives them and drops timeout rows), checks\n"
          "every value and prints transitions, episodes (split at terminals and timeouts), the\n"
          "observation and action dims, the ranges of episode return, cost and length, and the\n"
          "share of safe episodes (cost <= K, default 10). --env checks the dims against a\n"
          "registered env. When the env or the file name names a DSRL task (or a D4RL one), the\n"
          "normalised return and cost ranges are printed too. --keep-tail counts rows after the\n"
          "last terminal/timeout as an unfinished episode.\n"
          "\n"
          "filter: DSRL's density filter (pre_process_data with density < 1): a grid of cbins x\n"
          "rbins (default 10 x 50) over episode (cost, return); bins with more than max-npb\n"
          "(default 5) episodes keep max-npb drawn with seed S (default 0), bins with at most\n"
          "min-npb (default 2) are dropped. --max-cost C first drops the episodes whose cost\n"
          "exceeds C (DSRL's files stop at the cmax in their names); --no-density skips the grid.\n"
          "Writes the kept episodes, in file order, to OUT.\n");
  return f == stdout ? 0 : 2;
}


// a JSON number, null when not finite
static void jnum(double x) {
  if (isfinite(x))
    printf("%.17g", x);
  else
    printf("null");
}

static void jstr(const char *s) {
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

static void jrange(const char *name, double lo, double hi, double mean, double std, int with_std) {
  printf("\"%s\": {\"min\": ", name);
  jnum(lo);
  printf(", \"max\": ");
  jnum(hi);
  printf(", \"mean\": ");
  jnum(mean);
  if (with_std) {
    printf(", \"std\": ");
    jnum(std);
  }
  printf("}");
}

//---- info ---------------------------------------------------------------------------------------

static int cmd_info(int argc, char **argv) {
  const char *path = NULL, *env_id = NULL;
  int json = 0, keep_tail = 0;
  double cost_limit = 10;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout);
    if (!strcmp(a, "--json")) {
      json = 1;
    } else if (!strcmp(a, "--keep-tail")) {
      keep_tail = 1;
    } else if (!strcmp(a, "--cost-limit")) {
      char *end = NULL;
      cost_limit = v ? strtod(v, &end) : NAN;
      if (!v || end == v || *end || !isfinite(cost_limit) || cost_limit < 0) {
        fprintf(stderr, "saferl dataset info: --cost-limit wants a number >= 0, got '%s'\n",
                v ? v : "");
        return 2;
      }
      i++;
    } else if (!strcmp(a, "--env")) {
      if (!v) return usage(stderr);
      env_id = v;
      i++;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "saferl dataset info: unknown option '%s'\n", a);
      return usage(stderr);
    } else if (path) {
      fprintf(stderr, "saferl dataset info: one FILE only\n");
      return 2;
    } else {
      path = a;
    }
  }
  if (!path) return usage(stderr);

  srl_dataset_read_options ro = {.allow_no_costs = 1, .keep_tail = keep_tail};
  if (env_id) {
    const srl_env_spec *spec = srl_env_find(env_id);
    if (!spec) {
      fprintf(stderr, "saferl dataset info: unknown env '%s' (saferl envs lists them)\n", env_id);
      return 2;
    }
    ro.obs_dim = spec->obs_dim;
    ro.act_dim = spec->act_dim;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  srl_dataset *d = NULL;
  if (srl_dataset_read(&d, path, &ro) < 0) {
    fprintf(stderr, "saferl dataset info: %s\n", srl_errmsg());
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double load_s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  srl_dataset_summary s;
  srl_dataset_summarize(&s, d, cost_limit);
  const srl_dsrl_task *task = env_id ? srl_dsrl_find(env_id) : NULL;
  if (!task) task = srl_dsrl_find(path);

  // normalised ranges (DSRL: reward and cost at the limit; D4RL: the score)
  double nr_lo = NAN, nr_hi = NAN, nr_mean = NAN, nc_lo = NAN, nc_hi = NAN, nc_mean = NAN;
  if (task && s.episodes > 0) {
    nr_lo = srl_dsrl_normalized_reward(task, s.ret_min);
    nr_hi = srl_dsrl_normalized_reward(task, s.ret_max);
    nr_mean = srl_dsrl_normalized_reward(task, s.ret_mean);
    nc_lo = srl_dsrl_normalized_cost(s.cost_min, cost_limit);
    nc_hi = srl_dsrl_normalized_cost(s.cost_max, cost_limit);
    nc_mean = srl_dsrl_normalized_cost(s.cost_mean, cost_limit);
  }

  if (json) {
    printf("{\"file\": ");
    jstr(path);
    printf(", \"transitions\": %lld, \"episodes\": %lld, \"obs_dim\": %d, \"act_dim\": %d, ",
           s.transitions, s.episodes, d->obs_dim, d->act_dim);
    printf("\"has_costs\": %s, \"terminals\": %lld, \"timeouts\": %lld, \"tail_rows\": %lld, ",
           d->has_costs ? "true" : "false", s.terminals, s.timeouts, s.tail_rows);
    jrange("return", s.ret_min, s.ret_max, s.ret_mean, s.ret_std, 1);
    printf(", ");
    jrange("cost", s.cost_min, s.cost_max, s.cost_mean, s.cost_std, 1);
    printf(", ");
    jrange("length", s.len_min, s.len_max, s.len_mean, 0, 0);
    printf(", \"step_reward\": {\"min\": ");
    jnum(s.step_reward_min);
    printf(", \"max\": ");
    jnum(s.step_reward_max);
    printf("}, \"step_cost\": {\"min\": ");
    jnum(s.step_cost_min);
    printf(", \"max\": ");
    jnum(s.step_cost_max);
    printf("}, \"cost_limit\": ");
    jnum(cost_limit);
    printf(", \"safe_episodes\": %lld, \"safe_share\": ", s.safe_episodes);
    jnum(s.safe_share);
    printf(", \"task\": ");
    if (task) {
      printf("{\"name\": ");
      jstr(task->name);
      printf(", \"d4rl\": %s, ", task->d4rl ? "true" : "false");
      jrange("normalized_return", nr_lo, nr_hi, nr_mean, 0, 0);
      if (!task->d4rl) {
        printf(", ");
        jrange("normalized_cost", nc_lo, nc_hi, nc_mean, 0, 0);
      }
      printf("}");
    } else {
      printf("null");
    }
    printf(", \"load_s\": %.6f}\n", load_s);
  } else {
    printf("%s\n", path);
    printf("  transitions   %lld (%lld terminals, %lld timeouts", s.transitions, s.terminals,
           s.timeouts);
    if (s.tail_rows) printf(", %lld rows after the last episode end", s.tail_rows);
    printf(")%s\n", d->has_costs ? "" : ", no costs (read as 0)");
    printf("  episodes      %lld", s.episodes);
    if (s.episodes) printf(" (length %g .. %g, mean %.1f)", s.len_min, s.len_max, s.len_mean);
    printf("\n  dims          obs %d, act %d\n", d->obs_dim, d->act_dim);
    if (s.episodes) {
      printf("  return        %.4f .. %.4f, mean %.4f ± %.4f\n", s.ret_min, s.ret_max, s.ret_mean,
             s.ret_std);
      printf("  cost          %.4f .. %.4f, mean %.4f ± %.4f\n", s.cost_min, s.cost_max,
             s.cost_mean, s.cost_std);
      printf("  safe          %lld of %lld episodes (%.1f%%) with cost <= %g\n", s.safe_episodes,
             s.episodes, 100.0 * s.safe_share, cost_limit);
    }
    if (task && s.episodes) {
      if (task->d4rl) {
        printf("  D4RL %-8s normalized score %.4f .. %.4f, mean %.4f\n", task->name, nr_lo, nr_hi,
               nr_mean);
      } else {
        printf(
            "  DSRL %s: normalized return %.4f .. %.4f (mean %.4f), normalized cost at "
            "k=%g %.4f .. %.4f (mean %.4f)\n",
            task->name, nr_lo, nr_hi, nr_mean, cost_limit, nc_lo, nc_hi, nc_mean);
      }
    }
    printf("  read in       %.3f s\n", load_s);
  }
  srl_dataset_destroy(d);
  return 0;
}

//---- filter -------------------------------------------------------------------------------------

static int cmd_filter(int argc, char **argv) {
  const char *in = NULL, *out = NULL;
  int json = 0, density = 1;
  double max_cost = -1.0;  // < 0: no cap
  srl_dsrl_density cfg = SRL_DSRL_DENSITY_DEFAULTS;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    long x;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout);
    if (!strcmp(a, "--json")) {
      json = 1;
    } else if (!strcmp(a, "--no-density")) {
      density = 0;
    } else if (!strcmp(a, "--max-cost")) {
      if (srl_cli_double("saferl dataset", a, v, 0.0, 1e300, &max_cost)) return 2;
      i++;
    } else if (!strcmp(a, "--out")) {
      if (!v) return usage(stderr);
      out = v;
      i++;
    } else if (!strcmp(a, "--cbins") || !strcmp(a, "--rbins")) {
      if (srl_cli_long("saferl dataset", a, v, 1, 10000, &x)) return 2;
      *(a[2] == 'c' ? &cfg.cbins : &cfg.rbins) = (int)x;
      i++;
    } else if (!strcmp(a, "--max-npb") || !strcmp(a, "--min-npb")) {
      if (srl_cli_long("saferl dataset", a, v, 0, 1000000000L, &x)) return 2;
      *(a[3] == 'a' ? &cfg.max_npb : &cfg.min_npb) = (int)x;
      i++;
    } else if (!strcmp(a, "--seed")) {
      if (srl_cli_long("saferl dataset", a, v, 0, 2147483647L, &x)) return 2;
      cfg.seed = (uint64_t)x;
      i++;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "saferl dataset filter: unknown option '%s'\n", a);
      return usage(stderr);
    } else if (in) {
      fprintf(stderr, "saferl dataset filter: one IN file only\n");
      return 2;
    } else {
      in = a;
    }
  }
  if (!in || !out) return usage(stderr);
  if (!density && max_cost < 0) {
    fprintf(stderr, "saferl dataset filter: --no-density without --max-cost keeps everything\n");
    return 2;
  }

  srl_dataset_read_options ro = {.allow_no_costs = 1};
  srl_dataset *d = NULL, *capped = NULL, *f = NULL;
  int rc = srl_dataset_read(&d, in, &ro);
  if (rc == 0 && max_cost >= 0) rc = srl_dataset_filter_max_cost(&capped, d, max_cost);
  if (rc == 0 && density) rc = srl_dataset_filter_density(&f, capped ? capped : d, &cfg);
  if (rc == 0 && !density) f = capped, capped = NULL;
  srl_dataset_destroy(capped);
  if (rc < 0 || srl_dataset_write(f, out) < 0) {
    fprintf(stderr, "saferl dataset filter: %s\n", srl_errmsg());
    srl_dataset_destroy(d);
    srl_dataset_destroy(f);
    return 1;
  }
  if (json) {
    printf("{\"in\": ");
    jstr(in);
    printf(", \"out\": ");
    jstr(out);
    printf(", \"max_cost\": ");
    jnum(max_cost >= 0 ? max_cost : NAN);
    printf(", \"density\": %s", density ? "true" : "false");
    printf(
        ", \"cbins\": %d, \"rbins\": %d, \"max_npb\": %d, \"min_npb\": %d, \"seed\": %llu, "
        "\"episodes_in\": %lld, \"transitions_in\": %lld, \"episodes_out\": %lld, "
        "\"transitions_out\": %lld}\n",
        cfg.cbins, cfg.rbins, cfg.max_npb, cfg.min_npb, (unsigned long long)cfg.seed, d->n_episodes,
        d->n, f->n_episodes, f->n);
  } else {
    printf("%s: %lld episodes, %lld transitions\n", in, d->n_episodes, d->n);
    printf("%s: %lld episodes, %lld transitions (", out, f->n_episodes, f->n);
    if (max_cost >= 0) printf("cost <= %g%s", max_cost, density ? ", " : "");
    if (density)
      printf("grid %d x %d, max %d, min %d per bin, seed %llu", cfg.cbins, cfg.rbins, cfg.max_npb,
             cfg.min_npb, (unsigned long long)cfg.seed);
    printf(")\n");
  }
  srl_dataset_destroy(d);
  srl_dataset_destroy(f);
  return 0;
}


int srl_cmd_dataset(int argc, char **argv) {
  if (argc < 2) return usage(stderr);
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) return usage(stdout);
  if (!strcmp(argv[1], "info")) return cmd_info(argc - 1, argv + 1);
  if (!strcmp(argv[1], "filter")) return cmd_filter(argc - 1, argv + 1);
  fprintf(stderr, "saferl dataset: unknown subcommand '%s' (info, filter)\n", argv[1]);
  return usage(stderr);
}

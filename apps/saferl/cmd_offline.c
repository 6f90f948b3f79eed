// cmd_offline.c: `saferl offline train CONFIG [--set k=v]... [--seed S] [--out DIR]`,
// `saferl offline train --resume RUN_DIR`, `saferl offline eval RUN_DIR|CHECKPOINT [--episodes N]
// [--cost-limit K] [--json] [--seed S] [--set SECTION.k=v]` (DSRL's normalized reward and cost,
// per episode and mean ± std, "safe" when the normalized cost is at most 1), and `saferl offline
// keys [ALGO]` (every config key with its default and help).
//
// A training run prints its run directory first and its final evaluation last; Ctrl-C (or
// SIGTERM) saves a checkpoint at the next update boundary and exits with status 130.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/offline/trainer.h"
#include "apps/saferl/cli_args.h"
#include "apps/saferl/commands.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/log.h"

#define MAX_SETS 256
#define DEFAULT_EPISODES 20

static int usage(FILE *f) {
  fprintf(f,
          "usage: saferl offline train CONFIG [--set key=value]... [--seed S] [--out DIR] "
          "[--quiet]\n"
          "       saferl offline train --resume RUN_DIR [--set key=value]... [--quiet]\n"
          "       saferl offline eval RUN_DIR|CHECKPOINT [--episodes N] [--cost-limit K] [--json]\n"
          "                           [--seed S] [--envs E] [--device cpu|cuda] [--task NAME]\n"
          "                           [--set ALGO_SECTION.key=value]...\n"
          "       saferl offline keys [ALGO]\n"
          "\n"
          "train learns a policy from a dataset (an HDF5 file in DSRL's layout, e.g. from\n"
          "'saferl collect') with FISOR, BCAll, BCSafe, BCQLag, CPQ or COptiDICE, as a YAML\n"
          "config says (configs/offline/<algo>/<env>.yaml; 'saferl offline keys ALGO' lists the\n"
          "keys). --set overrides a key (train.steps=20000, fisor.actor_lr=1e-4); --seed S is\n"
          "--set seed=S. The run goes to DIR/<algo>-<env>-s<seed>-<time>/ (DIR: --out, else\n"
          "log_dir): config.yaml, progress.csv, events.jsonl, checkpoints/, final.safetensors,\n"
          "summary.json. Ctrl-C saves a checkpoint; --resume continues from it. --set with\n"
          "--resume changes the rest of the run's schedule, and train.steps above a finished\n"
          "run's updates trains it further (train.steps=400000 fisor.decay_steps=600000); what\n"
          "the run learns from (algo, env_id, env_options, dataset, seed, task.*) stays.\n"
          "\n"
          "eval rolls the policy out for N episodes (default %d) on its env and reports per\n"
          "episode and mean ± std the return, the cost, DSRL's normalized reward\n"
          "(R - R_min)/(R_max - R_min) (D4RL's score for D4RL tasks) and normalized cost\n"
          "(C + e)/(K + e) (e = 1 only when K = 0; K defaults to the run's task.cost_limit),\n"
          "how many episodes end with cost <= K and the median episode cost, and 'safe' when\n"
          "the mean normalized cost is at most 1. --task names the DSRL or D4RL task of the\n"
          "reference returns (default: the env's). --seed picks the episodes' layouts and the\n"
          "policy's sampling (default: the run's eval.seed); episode k's result depends on the\n"
          "seed and k alone, not on --envs (E envs stepped together, default min(N, 16)), so\n"
          "the first 20 of 100 episodes are a 20-episode evaluation. --set changes a key of\n"
          "the algorithm's own section for this evaluation (fisor.candidates=64: how many\n"
          "actions FISOR draws before it keeps the one of least Qh).\n",
          DEFAULT_EPISODES);
  return f == stdout ? 0 : 2;
}


//---- train ---------------------------------------------------------------------------------------

static void print_eval_line(const srl_offline_eval_result *r) {
  printf("return %.3f ± %.3f, cost %.3f ± %.3f over %d episodes; normalized reward ", r->ret_mean,
         r->ret_std, r->cost_mean, r->cost_std, r->episodes);
  if (isnan(r->norm_ret_mean))
    printf("n/a");
  else
    printf("%.3f", r->norm_ret_mean);
  printf(", normalized cost %.3f (limit %g): %s\n", r->norm_cost_mean, r->cost_limit,
         r->safe ? "safe" : "unsafe");
}


static int cmd_train(int argc, char **argv) {
  const char *config = NULL, *out = NULL, *resume = NULL, *seed = NULL;
  const char *sets[MAX_SETS + 1];
  int n_sets = 0, quiet = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout);
    if (!strcmp(a, "--quiet")) {
      quiet = 1;
    } else if (!strcmp(a, "--set") || !strcmp(a, "--seed") || !strcmp(a, "--out") ||
               !strcmp(a, "--resume")) {
      if (!v) {
        fprintf(stderr, "saferl offline train: %s needs a value\n", a);
        return 2;
      }
      i++;
      if (!strcmp(a, "--set")) {
        if (n_sets == MAX_SETS) {
          fprintf(stderr, "saferl offline train: more than %d --set\n", MAX_SETS);
          return 2;
        }
        sets[n_sets++] = v;
      } else if (!strcmp(a, "--seed")) {
        seed = v;
      } else if (!strcmp(a, "--out")) {
        out = v;
      } else {
        resume = v;
      }
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "saferl offline train: unknown option '%s'\n", a);
      return usage(stderr);
    } else if (config) {
      fprintf(stderr, "saferl offline train: one CONFIG only ('%s' and '%s')\n", config, a);
      return 2;
    } else {
      config = a;
    }
  }
  if (resume && (config || seed || out)) {
    fprintf(stderr,
            "saferl offline train: --resume continues a run in its own directory; it takes no "
            "CONFIG, --seed or --out\n");
    return 2;
  }
  if (!resume && !config) {
    fprintf(stderr, "saferl offline train: a CONFIG file is needed\n");
    return usage(stderr);
  }
  char seed_set[64];
  if (seed) {
    snprintf(seed_set, sizeof seed_set, "seed=%s", seed);
    sets[n_sets++] = seed_set;
  }

  srl_offline_options opt = {.out_dir = out, .quiet = quiet};
  srl_offline *t = NULL;
  int rc;
  if (resume) {
    rc = srl_offline_resume(&t, resume, sets, n_sets, &opt);
  } else {
    srl_offline_config *cfg = NULL;
    rc = srl_offline_config_create(&cfg);
    if (rc == 0) rc = srl_offline_config_load(cfg, config, sets, n_sets);
    if (rc == 0) rc = srl_offline_create(&t, cfg, &opt);
    srl_offline_config_destroy(cfg);
  }
  if (rc < 0) {
    fprintf(stderr, "saferl offline train: %s\n", srl_errmsg());
    return 1;
  }
  const srl_offline_config *c = srl_offline_get_config(t);
  const srl_dataset *d = srl_offline_dataset(t);
  printf("%s %s on %s (seed %d, %lld of %d updates, %lld transitions in %lld episodes of %s): %s\n",
         resume ? "resuming" : "training", c->algo, c->env_id, c->seed, srl_offline_step(t),
         c->train.steps, d->n, d->n_episodes, c->dataset, srl_offline_run_dir(t));
  fflush(stdout);
  srl_offline_handle_signals();
  rc = srl_offline_train(t);
  if (rc < 0) fprintf(stderr, "saferl offline train: %s\n", srl_errmsg());
  int status = rc == SRL_EINTERRUPTED ? 130 : rc < 0 ? 1 : 0;
  if (!status) {
    const srl_offline_eval_result *r = srl_offline_last_eval(t);
    printf("%s on %s, seed %d: ", c->algo, c->env_id, c->seed);
    if (r)
      print_eval_line(r);
    else
      printf("%lld updates done (no evaluation: eval.episodes is 0)\n", srl_offline_step(t));
    printf("final policy: %s/final.safetensors\n", srl_offline_run_dir(t));
  }
  srl_offline_destroy(t);
  return status;
}


//---- eval ----------------------------------------------------------------------------------------

static void json_number(double x) {
  if (isfinite(x))
    printf("%.9g", x);
  else
    printf("null");
}


static void print_json(const srl_offline_policy *p, const srl_offline_eval_result *r,
                       const srl_offline_episode *eps, long seed, const char *const *sets,
                       int n_sets) {
  printf("{\"checkpoint\": ");
  srl_log_json_string(stdout, p->path);
  printf(", \"sets\": [");
  for (int i = 0; i < n_sets; i++) {
    if (i) printf(", ");
    srl_log_json_string(stdout, sets[i]);
  }
  printf("]");
  printf(", \"algo\": ");
  srl_log_json_string(stdout, p->cfg->algo);
  printf(", \"env\": ");
  srl_log_json_string(stdout, p->cfg->env_id);
  printf(", \"trained_steps\": %lld, \"episodes\": %d, \"seed\": %ld, \"cost_limit\": ", p->step,
         r->episodes, seed);
  json_number(r->cost_limit);
  printf(", \"task\": ");
  if (r->task[0])
    srl_log_json_string(stdout, r->task);
  else
    printf("null");
  const char *names[] = {"return", "cost", "length", "normalized_reward", "normalized_cost"};
  double m[] = {r->ret_mean, r->cost_mean, r->len_mean, r->norm_ret_mean, r->norm_cost_mean};
  double s[] = {r->ret_std, r->cost_std, r->len_std, r->norm_ret_std, r->norm_cost_std};
  for (int k = 0; k < 5; k++) {
    printf(", \"%s\": {\"mean\": ", names[k]);
    json_number(m[k]);
    printf(", \"std\": ");
    json_number(s[k]);
    printf("}");
  }
  if (r->d4rl) {
    printf(", \"d4rl_score\": {\"mean\": ");
    json_number(r->d4rl_score_mean);
    printf(", \"std\": ");
    json_number(r->d4rl_score_std);
    printf("}");
  }
  printf(", \"goal_rate\": ");
  json_number(r->goal_rate);
  printf(", \"within_limit\": %d, \"cost_median\": ", r->within_limit);
  json_number(r->cost_median);
  printf(", \"safe\": %s, \"per_episode\": [", r->safe ? "true" : "false");
  for (int i = 0; i < r->episodes; i++) {
    const srl_offline_episode *e = &eps[i];
    printf("%s{\"return\": ", i ? ", " : "");
    json_number(e->ret);
    printf(", \"cost\": ");
    json_number(e->cost);
    printf(", \"length\": ");
    json_number(e->len);
    printf(", \"normalized_reward\": ");
    json_number(e->norm_ret);
    printf(", \"normalized_cost\": ");
    json_number(e->norm_cost);
    printf(", \"goal\": %s}", e->goal ? "true" : "false");
  }
  printf("]}\n");
}


static void print_text(const srl_offline_policy *p, const srl_offline_eval_result *r,
                       const srl_offline_episode *eps, long seed, const char *const *sets,
                       int n_sets) {
  printf("%s: %s on %s, trained for %lld updates\n", p->path, p->cfg->algo, p->cfg->env_id,
         p->step);
  for (int i = 0; i < n_sets; i++) printf("  with %s\n", sets[i]);
  printf("%d episodes (seed %ld), cost limit %g", r->episodes, seed, r->cost_limit);
  if (r->task[0])
    printf(", reference returns of %s\n", r->task);
  else
    printf(", no reference returns for this env (normalized reward n/a)\n");
  printf("  %4s %12s %10s %8s %10s %10s\n", "ep", "return", "cost", "length", "norm_rew",
         "norm_cost");
  for (int i = 0; i < r->episodes; i++) {
    const srl_offline_episode *e = &eps[i];
    printf("  %4d %12.3f %10.3f %8.0f %10.4f %10.4f\n", i, e->ret, e->cost, e->len, e->norm_ret,
           e->norm_cost);
  }
  printf("  return             %10.3f ± %.3f\n", r->ret_mean, r->ret_std);
  printf("  cost               %10.3f ± %.3f\n", r->cost_mean, r->cost_std);
  printf("  length             %10.1f ± %.1f\n", r->len_mean, r->len_std);
  if (r->task[0]) printf("  normalized reward  %10.4f ± %.4f\n", r->norm_ret_mean, r->norm_ret_std);
  if (r->d4rl)
    printf("  D4RL score         %10.2f ± %.2f\n", r->d4rl_score_mean, r->d4rl_score_std);
  printf("  normalized cost    %10.4f ± %.4f\n", r->norm_cost_mean, r->norm_cost_std);
  printf("  goal reached       %10.0f%%\n", 100.0 * r->goal_rate);
  char label[32];
  snprintf(label, sizeof label, "cost <= %g", r->cost_limit);
  printf("  %-19s%10d of %d episodes (median cost %g)\n", label, r->within_limit, r->episodes,
         r->cost_median);
  printf("%s: mean normalized cost %.4f %s 1\n", r->safe ? "safe" : "unsafe", r->norm_cost_mean,
         r->safe ? "<=" : ">");
}


static int cmd_eval(int argc, char **argv) {
  const char *path = NULL, *device = NULL, *task = NULL, *sets[MAX_SETS];
  long episodes = DEFAULT_EPISODES, seed = -1, envs = 0;
  double cost_limit = NAN;
  int json = 0, n_sets = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout);
    if (!strcmp(a, "--json")) {
      json = 1;
    } else if (!strcmp(a, "--episodes")) {
      if (srl_cli_long("saferl offline", a, v, 1, 1000000, &episodes)) return 2;
      i++;
    } else if (!strcmp(a, "--seed")) {
      if (srl_cli_long("saferl offline", a, v, 0, 2147483647L, &seed)) return 2;
      i++;
    } else if (!strcmp(a, "--envs")) {
      if (srl_cli_long("saferl offline", a, v, 1, 4096, &envs)) return 2;
      i++;
    } else if (!strcmp(a, "--cost-limit")) {
      char *end = NULL;
      cost_limit = v ? strtod(v, &end) : NAN;
      if (!v || end == v || *end || !(cost_limit >= 0) || !isfinite(cost_limit)) {
        fprintf(stderr, "saferl offline eval: --cost-limit wants a number ≥ 0, got '%s'\n",
                v ? v : "");
        return 2;
      }
      i++;
    } else if (!strcmp(a, "--set")) {
      if (!v || !strchr(v, '=') || n_sets == MAX_SETS) {
        fprintf(stderr, "saferl offline eval: --set wants key=value (at most %d)\n", MAX_SETS);
        return 2;
      }
      sets[n_sets++] = v;
      i++;
    } else if (!strcmp(a, "--device") || !strcmp(a, "--task")) {
      if (!v) {
        fprintf(stderr, "saferl offline eval: %s needs a value\n", a);
        return 2;
      }
      if (!strcmp(a, "--device"))
        device = v;
      else
        task = v;
      i++;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "saferl offline eval: unknown option '%s'\n", a);
      return usage(stderr);
    } else if (path) {
      fprintf(stderr, "saferl offline eval: one RUN_DIR or CHECKPOINT only\n");
      return 2;
    } else {
      path = a;
    }
  }
  if (!path) {
    fprintf(stderr, "saferl offline eval: a RUN_DIR or CHECKPOINT is needed\n");
    return usage(stderr);
  }
  int k = (int)(envs ? envs : (episodes < 16 ? episodes : 16));
  if (k > episodes) k = (int)episodes;
  srl_offline_policy *p = NULL;
  if (srl_offline_policy_load(&p, path, device, k, sets, n_sets) < 0) {
    fprintf(stderr, "saferl offline eval: %s\n", srl_errmsg());
    return 1;
  }
  const srl_offline_config *c = p->cfg;
  if (seed < 0) seed = c->eval.seed;
  srl_offline_eval_options o = {.env_id = c->env_id,
                                .env_options = c->env_options,
                                .episodes = (int)episodes,
                                .num_envs = k,
                                .num_threads = c->threads,
                                .episode_len = c->task.episode_len,
                                .cost_limit = isnan(cost_limit) ? c->task.cost_limit : cost_limit,
                                .seed = (uint64_t)seed,
                                .score_task = task ? task : c->eval.score_task};
  srl_offline_episode *eps = srl_calloc(sizeof(srl_offline_episode) * (size_t)episodes);
  srl_offline_eval_result r;
  int rc = eps ? srl_offline_evaluate(p->algo, p->state, &o, &r, eps) : SRL_ENOMEM;
  if (rc < 0) {
    fprintf(stderr, "saferl offline eval: %s\n", srl_errmsg());
  } else if (json) {
    print_json(p, &r, eps, seed, sets, n_sets);
  } else {
    print_text(p, &r, eps, seed, sets, n_sets);
  }
  srl_free(eps);
  srl_offline_policy_destroy(p);
  return rc < 0 ? 1 : 0;
}


//---- keys ----------------------------------------------------------------------------------------

static int cmd_keys(int argc, char **argv) {
  if (argc > 2) return usage(stderr);
  const srl_offline_algo *a = NULL;
  if (argc == 2) {
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) return usage(stdout);
    a = srl_offline_algo_find(argv[1]);
    if (!a) {
      char known[256];
      srl_offline_algo_names(known, sizeof known);
      fprintf(stderr, "saferl offline keys: unknown algorithm '%s' (known: %s)\n", argv[1], known);
      return 2;
    }
  }
  srl_cfg_field *fields = srl_malloc(sizeof(srl_cfg_field) * 1024);
  int n = fields ? srl_offline_schema_for(fields, 1024, a) : SRL_ENOMEM;
  if (n < 0) {
    fprintf(stderr, "saferl offline keys: %s\n", srl_errmsg());
    srl_free(fields);
    return 1;
  }
  srl_cfg_schema s = {"offline training", fields, n};
  srl_config_print_help(&s, stdout);
  srl_free(fields);
  return 0;
}


int srl_cmd_offline(int argc, char **argv) {
  if (argc < 2) return usage(stderr);
  const char *sub = argv[1];
  if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) return usage(stdout);
  if (!strcmp(sub, "train")) return cmd_train(argc - 1, argv + 1);
  if (!strcmp(sub, "eval")) return cmd_eval(argc - 1, argv + 1);
  if (!strcmp(sub, "keys")) return cmd_keys(argc - 1, argv + 1);
  fprintf(stderr, "saferl offline: unknown subcommand '%s' (train, eval, keys)\n", sub);
  return usage(stderr);
}

// cmd_train.c: `saferl train CONFIG [--set k=v ...] [--seed S] [--out DIR]`, `saferl train
// --resume RUN_DIR`, and `--seeds 0,1,2` (one process per seed, run in parallel).
//
// A run prints its run directory first and its final return and cost last; on a terminal a live
// line shows steps, steps per second, ETA, return, cost and λ. Ctrl-C (or SIGTERM) saves a
// checkpoint at the next safe point and exits with status 130; `--resume` continues from it.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "algos/offpolicy.h"
#include "algos/onpolicy.h"
#include "apps/saferl/commands.h"
#include "core/error.h"

#define MAX_SETS 256
#define MAX_SEEDS 64

typedef struct train_args {
  const char *config, *out, *resume, *seed, *seeds;
  const char *sets[MAX_SETS];
  int n_sets, quiet;
} train_args;


static int usage(FILE *f) {
  fprintf(f,
          "usage: saferl train CONFIG [--set key=value]... [--seed S] [--out DIR] [--quiet]\n"
          "       saferl train CONFIG --seeds 0,1,2 [--set key=value]... [--out DIR]\n"
          "       saferl train --resume RUN_DIR [--quiet]\n"
          "\n"
          "Trains an on-policy agent (PPO, PPOLag, CPPOPID, TRPOLag, CPO) or an off-policy one\n"
          "(SACLag, SAC) from a YAML config\n"
          "(configs/<algo>/<env>.yaml; keys as OmniSafe's). --set overrides any key\n"
          "(algo_cfgs.steps_per_epoch=4000, model_cfgs.actor.hidden_sizes=[256,256]); --seed S\n"
          "is --set seed=S. The run goes to DIR/<algo>-<env>-s<seed>-<time>/ (DIR defaults to\n"
          "logger_cfgs.log_dir, 'runs'): config.yaml, progress.csv, events.jsonl,\n"
          "checkpoints/, final.safetensors, summary.json.\n"
          "\n"
          "--seeds runs one process per seed in parallel. Ctrl-C or SIGTERM saves a checkpoint\n"
          "and stops; --resume continues the run and reaches the same numbers as an\n"
          "uninterrupted run. --quiet drops the progress line.\n");
  return f == stdout ? 0 : 2;
}


static int parse(train_args *a, int argc, char **argv) {
  memset(a, 0, sizeof *a);
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(s, "--quiet")) {
      a->quiet = 1;
      continue;
    }
    if (!strcmp(s, "--set") || !strcmp(s, "--seed") || !strcmp(s, "--out") ||
        !strcmp(s, "--resume") || !strcmp(s, "--seeds")) {
      if (!v) {
        fprintf(stderr, "saferl train: %s needs a value\n", s);
        return -1;
      }
      i++;
      if (!strcmp(s, "--set")) {
        if (a->n_sets == MAX_SETS) {
          fprintf(stderr, "saferl train: more than %d --set\n", MAX_SETS);
          return -1;
        }
        a->sets[a->n_sets++] = v;
      } else if (!strcmp(s, "--seed"))
        a->seed = v;
      else if (!strcmp(s, "--out"))
        a->out = v;
      else if (!strcmp(s, "--resume"))
        a->resume = v;
      else
        a->seeds = v;
      continue;
    }
    if (s[0] == '-' && s[1]) {
      fprintf(stderr, "saferl train: unknown option '%s'\n", s);
      return -1;
    }
    if (a->config) {
      fprintf(stderr, "saferl train: one CONFIG only ('%s' and '%s')\n", a->config, s);
      return -1;
    }
    a->config = s;
  }
  if (a->resume && (a->config || a->n_sets || a->seed || a->seeds || a->out)) {
    fprintf(stderr,
            "saferl train: --resume continues a run as it was configured; it takes no "
            "CONFIG, --set, --seed, --seeds or --out\n");
    return -1;
  }
  if (!a->resume && !a->config) {
    fprintf(stderr, "saferl train: a CONFIG file is needed\n");
    return -1;
  }
  if (a->seed && a->seeds) {
    fprintf(stderr, "saferl train: --seed and --seeds exclude each other\n");
    return -1;
  }
  return 0;
}


// the closing lines of a run: final window means and where the policy is
static void print_summary(const char *algo, const char *env, int seed, const void *row, double ret,
                          double cost, double limit, double lambda, long long steps, double wall_s,
                          const char *run_dir) {
  printf("%s on %s, seed %d: ", algo, env, seed);
  if (row)
    printf("return %.3f, cost %.3f (limit %g), lambda %.4g after %lld steps in %.1f s\n", ret, cost,
           limit, lambda, steps, wall_s);
  else
    printf("no epoch was run in this session\n");
  printf("final policy: %s/final.safetensors\n", run_dir);
}

static void print_result(srl_onpolicy *t) {
  const srl_onpolicy_config *c = srl_onpolicy_get_config(t);
  const srl_onpolicy_row *r = srl_onpolicy_last_row(t);
  print_summary(c->algo, c->env_id, c->seed, r, r ? r->ep_ret : 0, r ? r->ep_cost : 0,
                c->lagrange_cfgs.cost_limit, r ? r->lagrange : 0, r ? r->total_steps : 0,
                r ? r->wall_s : 0, srl_onpolicy_run_dir(t));
}


// the exit status for a trainer's result: 130 after a stop request, 1 on an error (reported)
static int train_status(int rc) {
  if (rc < 0) fprintf(stderr, "saferl train: %s\n", srl_errmsg());
  return rc == SRL_EINTERRUPTED ? 130 : rc < 0 ? 1 : 0;
}


// the algorithm a run will use: the resumed run's config.yaml, else CONFIG with the --set list
// and the seed; "" when neither names one (the on-policy default)
static int peek_algo(const train_args *a, char *algo, size_t cap) {
  if (a->resume) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/config.yaml", a->resume) >= (int)sizeof path) {
      fprintf(stderr, "saferl train: run directory path too long\n");
      return -1;
    }
    if (srl_offpolicy_peek_algo(path, NULL, 0, algo, cap) < 0) {
      fprintf(stderr, "saferl train: %s\n", srl_errmsg());
      return -1;
    }
    return 0;
  }
  if (srl_offpolicy_peek_algo(a->config, a->sets, a->n_sets, algo, cap) < 0) {
    fprintf(stderr, "saferl train: %s\n", srl_errmsg());
    return -1;
  }
  return 0;
}


static void print_off_result(srl_offpolicy *t) {
  const srl_offpolicy_config *c = srl_offpolicy_get_config(t);
  const srl_offpolicy_row *r = srl_offpolicy_last_row(t);
  print_summary(c->algo, c->env_id, c->seed, r, r ? r->ep_ret : 0, r ? r->ep_cost : 0,
                c->lagrange_cfgs.cost_limit, r ? r->lagrange : 0, r ? r->total_steps : 0,
                r ? r->wall_s : 0, srl_offpolicy_run_dir(t));
}


// train one off-policy run (fresh or resumed) in this process
static int train_one_off(const train_args *a, const char *const *sets, int n_sets) {
  srl_offpolicy_options opt = {.out_dir = a->out, .quiet = a->quiet};
  srl_offpolicy *t = NULL;
  int rc;
  if (a->resume) {
    rc = srl_offpolicy_resume(&t, a->resume, &opt);
  } else {
    srl_offpolicy_config cfg;
    rc = srl_offpolicy_config_load(&cfg, a->config, sets, n_sets);
    if (rc >= 0) rc = srl_offpolicy_create(&t, &cfg, &opt);
  }
  if (rc < 0) {
    fprintf(stderr, "saferl train: %s\n", srl_errmsg());
    return 1;
  }
  const srl_offpolicy_config *cfg = srl_offpolicy_get_config(t);
  printf("%s %s on %s (seed %d, %d epochs of %d steps): %s\n", a->resume ? "resuming" : "training",
         cfg->algo, cfg->env_id, cfg->seed, srl_offpolicy_epochs_total(t),
         cfg->algo_cfgs.steps_per_epoch, srl_offpolicy_run_dir(t));
  fflush(stdout);
  srl_offpolicy_handle_signals();
  rc = srl_offpolicy_train(t);
  int status = train_status(rc);
  if (!status) print_off_result(t);
  srl_offpolicy_destroy(t);
  return status;
}


// train one run (fresh or resumed) in this process
static int train_one(const train_args *a) {
  const char *sets[MAX_SETS + 1];
  char seed_set[64];
  int n = a->n_sets;
  memcpy(sets, a->sets, sizeof(char *) * (size_t)n);
  if (a->seed) {
    snprintf(seed_set, sizeof seed_set, "seed=%s", a->seed);
    sets[n++] = seed_set;
  }
  char algo[64];
  if (a->resume) {
    if (peek_algo(a, algo, sizeof algo) < 0) return 1;
  } else if (srl_offpolicy_peek_algo(a->config, sets, n, algo, sizeof algo) < 0) {
    fprintf(stderr, "saferl train: %s\n", srl_errmsg());
    return 1;
  }
  if (srl_offpolicy_is_algo(algo)) return train_one_off(a, sets, n);

  srl_onpolicy_options opt = {.out_dir = a->out, .quiet = a->quiet};
  srl_onpolicy *t = NULL;
  int rc;
  if (a->resume) {
    rc = srl_onpolicy_resume(&t, a->resume, &opt);
  } else {
    srl_onpolicy_config cfg;
    rc = srl_onpolicy_config_load(&cfg, a->config, sets, n);
    if (rc < 0) {
      fprintf(stderr, "saferl train: %s\n", srl_errmsg());
      return 1;
    }
    rc = srl_onpolicy_create(&t, &cfg, &opt);
  }
  if (rc < 0) {
    fprintf(stderr, "saferl train: %s\n", srl_errmsg());
    return 1;
  }
  const srl_onpolicy_config *cfg = srl_onpolicy_get_config(t);
  printf("%s %s on %s (seed %d, %d epochs of %d steps): %s\n", a->resume ? "resuming" : "training",
         cfg->algo, cfg->env_id, cfg->seed, srl_onpolicy_epochs_total(t),
         cfg->algo_cfgs.steps_per_epoch, srl_onpolicy_run_dir(t));
  fflush(stdout);
  srl_onpolicy_handle_signals();
  rc = srl_onpolicy_train(t);
  int status = train_status(rc);
  if (!status) print_result(t);
  srl_onpolicy_destroy(t);
  return status;
}


//---- several seeds -------------------------------------------------------------------------------

static pid_t children[MAX_SEEDS];
static int n_children;

// forward a signal someone sent to this process alone (a terminal's Ctrl-C reaches the children
// directly, and a second one would kill them before they save)
static void forward(int sig, siginfo_t *info, void *ctx) {
  (void)ctx;
  if (info && (info->si_code == SI_USER || info->si_code == SI_QUEUE))
    for (int i = 0; i < n_children; i++) kill(children[i], sig);
}


static int train_seeds(const train_args *a, const char *self) {
  long seeds[MAX_SEEDS];
  int n = 0;
  for (const char *p = a->seeds; *p;) {
    char *end;
    errno = 0;
    long s = strtol(p, &end, 10);
    if (end == p || errno || s < 0 || s > 2147483647L || n == MAX_SEEDS || (*end && *end != ',')) {
      fprintf(stderr, "saferl train: --seeds wants a list like 0,1,2 (at most %d), got '%s'\n",
              MAX_SEEDS, a->seeds);
      return 2;
    }
    seeds[n++] = s;
    p = *end ? end + 1 : end;
  }
  if (!n) return usage(stderr);

  // check the config once here, so a typo fails once rather than in every child
  char algo[64];
  if (peek_algo(a, algo, sizeof algo) < 0) return 1;
  int bad;
  if (srl_offpolicy_is_algo(algo)) {
    srl_offpolicy_config cfg;
    bad = srl_offpolicy_config_load(&cfg, a->config, a->sets, a->n_sets) < 0 ||
          srl_offpolicy_config_check(&cfg) < 0;
  } else {
    srl_onpolicy_config cfg;
    bad = srl_onpolicy_config_load(&cfg, a->config, a->sets, a->n_sets) < 0 ||
          srl_onpolicy_config_check(&cfg) < 0;
  }
  if (bad) {
    fprintf(stderr, "saferl train: %s\n", srl_errmsg());
    return 1;
  }
  fflush(stdout);
  fflush(stderr);
  for (int k = 0; k < n; k++) {
    char seed[32];
    snprintf(seed, sizeof seed, "%ld", seeds[k]);
    const char *argv[2 * MAX_SETS + 16];
    int c = 0;
    argv[c++] = "saferl";
    argv[c++] = "train";
    argv[c++] = a->config;
    for (int i = 0; i < a->n_sets; i++) argv[c++] = "--set", argv[c++] = a->sets[i];
    argv[c++] = "--seed";
    argv[c++] = seed;
    if (a->out) argv[c++] = "--out", argv[c++] = a->out;
    argv[c++] = "--quiet";
    argv[c] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
      fprintf(stderr, "saferl train: fork: %s\n", strerror(errno));
      break;
    }
    if (pid == 0) {
      execv(self, (char *const *)argv);
      fprintf(stderr, "saferl train: cannot run %s: %s\n", self, strerror(errno));
      _exit(127);
    }
    children[n_children++] = pid;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = forward;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  int failed = 0, interrupted = 0;
  for (int k = 0; k < n_children; k++) {
    int st = 0;
    while (waitpid(children[k], &st, 0) < 0 && errno == EINTR) {
    }
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    if (code == 130)
      interrupted++;
    else if (code)
      failed++;
    if (code) fprintf(stderr, "saferl train: seed %ld exited with status %d\n", seeds[k], code);
  }
  printf("%d of %d seeds finished\n", n_children - failed - interrupted, n);
  return failed || n_children < n ? 1 : interrupted ? 130 : 0;
}


int srl_cmd_train(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(stdout);
  train_args a;
  if (parse(&a, argc, argv) < 0) return usage(stderr);
  if (a.seeds) {
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
      fprintf(stderr, "saferl train: cannot find this program (/proc/self/exe): %s\n",
              strerror(errno));
      return 1;
    }
    self[len] = 0;
    return train_seeds(&a, self);
  }
  return train_one(&a);
}

// cmd_serve_policy.c: `saferl serve policy RUN_DIR|CHECKPOINT --bind ENDPOINT --rate-hz F
// --deadline-us D ...` serves a trained policy to a hardware-in-the-loop client over the wire
// protocol (bridges/policy_server.h) until Ctrl-C, then prints the server's counters as JSON.
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/saferl/cli_args.h"
#include "apps/saferl/commands.h"
#include "bridges/policy_server.h"
#include "core/error.h"

#define MAX_FALLBACK 1024

static int usage(FILE *f) {
  fprintf(
      f,
      "usage: saferl serve policy RUN_DIR|CHECKPOINT --bind ENDPOINT --rate-hz F --deadline-us D\n"
      "                           [--max-age-us A] [--fallback zeros|hold|v1,v2,...]\n"
      "                           [--latch-after K] [--curve-secret CERT --allow FILE]\n"
      "                           [--device cpu|cuda] [--quiet]\n"
      "\n"
      "Answers ACT messages (an observation) with ACTION (the policy's deterministic action and\n"
      "a status) on a ROUTER socket bound to ENDPOINT (tcp://HOST:PORT, tcp://HOST:* for any\n"
      "free port, ipc://PATH). The checkpoint may come from either trainer (on-policy or\n"
      "SAC-Lag); a run directory means its final.safetensors, else its latest checkpoint.\n"
      "\n"
      "An observation that is stale (its seq not newer than the last one, or its t_ns, when\n"
      "set, more than A µs from this host's CLOCK_MONOTONIC), malformed (not obs_dim float32\n"
      "values) or non-finite, and a policy that computes longer than D µs, are answered with\n"
      "the fallback action (default zeros; hold: the last good action; or one value per action\n"
      "dimension) flagged FALLBACK and counted by reason. After K consecutive misses (default\n"
      "10, 0: never) the server latches a safe stop: every answer is the fallback, flagged\n"
      "LATCHED, until a RESET message clears it. F is the client's control rate: it sets\n"
      "HELLO's dt and counts requests that arrive more than 1.5 periods apart. STATS returns\n"
      "the counters and compute-time percentiles as JSON; they are also printed on exit.\n"
      "\n"
      "With --curve-secret (a certificate from 'saferl keygen') the socket is CURVE-encrypted\n"
      "and only clients whose public keys are listed in --allow FILE are admitted.\n");
  return f == stdout ? 0 : 2;
}


static srl_policy_server *g_server;  // for the signal handler

static void on_signal(int sig) {
  (void)sig;
  if (g_server) srl_policy_server_request_stop(g_server);
}


int srl_cmd_serve_policy(int argc, char **argv) {
  const char *path = NULL, *bind = NULL, *fallback = "zeros", *secret = NULL, *allow = NULL;
  const char *device = NULL;
  double rate = -1, deadline_us = -1, max_age_us = 0, latch = 10;
  int quiet = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout);
    if (!strcmp(a, "--quiet")) {
      quiet = 1;
      continue;
    }
    if (a[0] != '-') {
      if (path) {
        fprintf(stderr, "saferl serve policy: one policy only ('%s' and '%s')\n", path, a);
        return 2;
      }
      path = a;
      continue;
    }
    if (!v) {
      fprintf(stderr, "saferl serve policy: %s needs a value\n", a);
      return 2;
    }
    i++;
    if (!strcmp(a, "--bind"))
      bind = v;
    else if (!strcmp(a, "--rate-hz")) {
      if (srl_cli_double("saferl serve policy", a, v, 1e-3, 1e6, &rate) < 0) return 2;
    } else if (!strcmp(a, "--deadline-us")) {
      if (srl_cli_double("saferl serve policy", a, v, 0, 1e9, &deadline_us) < 0) return 2;
    } else if (!strcmp(a, "--max-age-us")) {
      if (srl_cli_double("saferl serve policy", a, v, 0, 1e12, &max_age_us) < 0) return 2;
    } else if (!strcmp(a, "--latch-after")) {
      if (srl_cli_double("saferl serve policy", a, v, 0, 1e9, &latch) < 0 || latch != floor(latch))
        return 2;
    } else if (!strcmp(a, "--fallback"))
      fallback = v;
    else if (!strcmp(a, "--curve-secret"))
      secret = v;
    else if (!strcmp(a, "--allow"))
      allow = v;
    else if (!strcmp(a, "--device"))
      device = v;
    else {
      fprintf(stderr, "saferl serve policy: unknown option '%s'\n\n", a);
      return usage(stderr);
    }
  }
  if (!path || !bind || rate < 0 || deadline_us < 0) {
    fprintf(stderr,
            "saferl serve policy: a policy, --bind, --rate-hz and --deadline-us are "
            "needed\n\n");
    return usage(stderr);
  }
  if (!secret != !allow) {
    fprintf(stderr, "saferl serve policy: --curve-secret and --allow go together\n");
    return 2;
  }

  static float vec[MAX_FALLBACK];
  srl_policy_server_config cfg = {.bind = bind,
                                  .device = device,
                                  .rate_hz = rate,
                                  .deadline_ns = (long long)llround(deadline_us * 1e3),
                                  .max_age_ns = (long long)llround(max_age_us * 1e3),
                                  .fallback_vec = vec,
                                  .latch_after = (int)latch,
                                  .curve_secret = secret,
                                  .allow_list = allow};
  if (srl_fallback_parse(fallback, &cfg.fallback, vec, MAX_FALLBACK, &cfg.fallback_n) < 0) {
    fprintf(stderr, "saferl serve policy: %s\n", srl_errmsg());
    return 2;
  }
  srl_policy_server *s = NULL;
  if (srl_policy_server_create(&s, path, &cfg) < 0) {
    fprintf(stderr, "saferl serve policy: %s\n", srl_errmsg());
    return 1;
  }
  g_server = s;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  if (!quiet) {
    printf("saferl serve policy: %s (%s, %d observations, %d actions) on %s\n", path,
           srl_policy_server_env_id(s), srl_policy_server_obs_dim(s), srl_policy_server_act_dim(s),
           srl_policy_server_endpoint(s));
    fflush(stdout);
  }
  int rc = srl_policy_server_run(s, NULL);
  if (rc < 0) fprintf(stderr, "saferl serve policy: %s\n", srl_errmsg());
  static char json[16384];
  srl_policy_server_stats_json(s, json, sizeof json);
  printf("%s\n", json);
  fflush(stdout);
  g_server = NULL;
  srl_policy_server_destroy(s);
  return rc < 0 ? 1 : 0;
}

// cmd_hil.c: `saferl hil run --plant ENDPOINT --policy ENDPOINT|RUN_DIR --rate-hz F --duration S`
// runs the fixed-rate hardware-in-the-loop cycle of bridges/hil.h and prints its timing report
// (a summary, or one JSON object with --json).
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/saferl/cli_args.h"
#include "apps/saferl/commands.h"
#include "bridges/hil.h"
#include "core/alloc.h"
#include "core/error.h"

static int usage(FILE *f) {
  fprintf(
      f,
      "usage: saferl hil run --plant ENDPOINT|ENV_ID --policy ENDPOINT|RUN_DIR|CHECKPOINT\n"
      "                      --rate-hz F --duration S [--json] [--deadline-us D]\n"
      "                      [--plant-options YAML] [--seed N] [--realtime [--priority P]]\n"
      "                      [--cpu N]\n"
      "                      [--max-age-us A] [--latch-after K] [--device cpu|cuda]\n"
      "                      [--curve-server CERT --curve-client CERT]\n"
      "\n"
      "Runs a fixed-rate control loop for S seconds: every 1/F seconds (absolute-time sleeps on\n"
      "CLOCK_MONOTONIC) the plant is stepped with the previous action (reset at the start and\n"
      "after each episode), its observation goes to the policy, and the action must come back\n"
      "within D µs (default: before the next tick) or the previous action is held.\n"
      "\n"
      "--plant: a served env's endpoint (tcp://HOST:PORT or ipc://PATH, e.g. 'saferl serve env')\n"
      "standing in for the hardware, or an env id run in-process; --plant-options passes YAML\n"
      "options to it (for a remote plant: timeout_ms, retries, ...). --policy: a policy\n"
      "server's endpoint ('saferl serve policy'; --curve-server / --curve-client give its\n"
      "public certificate and this client's secret one), or a run directory / checkpoint run\n"
      "in-process with the same fallback (hold), staleness (--max-age-us) and latch\n"
      "(--latch-after) rules. --realtime asks for SCHED_FIFO (priority P, default 80; the\n"
      "connections' ZeroMQ I/O threads P - 1) and mlockall, and reports when they are refused.\n"
      "--cpu N pins the loop and its I/O threads to CPU N (pin the servers there too, e.g.\n"
      "'taskset -c N chrt -f 70 saferl serve policy ...', to keep every hand-off on one CPU).\n"
      "\n"
      "The report: wake jitter, the cycle's compute time, the policy round trip, the plant's\n"
      "step time and the policy's own compute time (p50/p90/p99/max), deadline misses,\n"
      "overruns and skipped ticks with their likely cause, and fallbacks by reason.\n");
  return f == stdout ? 0 : 2;
}


static srl_hil *g_hil;  // for the signal handler

static void on_signal(int sig) {
  (void)sig;
  if (g_hil) srl_hil_request_stop(g_hil);
}


static void line(const char *name, const srl_lat_hist *h) {
  printf("  %-15s p50 %9.1f µs  p99 %9.1f µs  max %9.1f µs  (n %llu)\n", name,
         srl_lat_quantile(h, 0.5) / 1e3, srl_lat_quantile(h, 0.99) / 1e3,
         (h->count ? (double)h->max : 0.0) / 1e3, (unsigned long long)h->count);
}


static void summary(const srl_hil_report *r) {
  printf("hil: %lld cycles at %g Hz in %.3f s (plant %s, policy %s)\n", r->cycles, r->rate_hz,
         r->elapsed_s, r->plant_id, r->policy_id);
  line("wake jitter", &r->jitter);
  line("round trip", &r->rtt);
  line("cycle compute", &r->compute);
  line("plant step", &r->plant);
  line("policy compute", &r->policy_compute);
  printf(
      "  misses: %lld deadline, %lld overruns (%lld ticks skipped), %lld late replies, %lld "
      "policy errors; causes: wake %lld, policy %lld, plant %lld, transport %lld\n",
      r->deadline_misses, r->overruns, r->skipped, r->late_replies, r->policy_errors, r->miss_wake,
      r->miss_policy, r->miss_plant, r->miss_transport);
  const srl_hil_fallbacks *f = &r->fallbacks;
  printf(
      "  fallbacks: %lld (stale %lld, malformed %lld, non-finite %lld, deadline %lld, latched "
      "%lld)%s\n",
      f->total, f->stale, f->malformed, f->nonfinite, f->deadline, f->latched,
      r->latched ? "; the policy server is LATCHED (send RESET to clear)" : "");
  printf("  plant: %lld steps, %lld episodes, return %.3f, cost %.3f\n", r->steps, r->episodes,
         r->ret_sum, r->cost_sum);
  char cpu[16] = "any";
  if (r->pinned_cpu >= 0) snprintf(cpu, sizeof cpu, "%d", r->pinned_cpu);
  printf("  real time: SCHED_FIFO %s (%d I/O threads), mlockall %s, CPU %s%s%s\n",
         r->sched_fifo ? "yes" : "no", r->io_threads_fifo, r->mlocked ? "yes" : "no", cpu,
         r->rt_note[0] ? "; " : "", r->rt_note);
}


int srl_cmd_hil(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
    return usage(argc < 2 ? stderr : stdout);
  if (strcmp(argv[1], "run") != 0) {
    fprintf(stderr, "saferl hil: unknown sub-command '%s' (run)\n\n", argv[1]);
    return usage(stderr);
  }
  srl_hil_config cfg = {0};
  double rate = -1, duration = -1, deadline_us = 0, max_age_us = 0, latch = 0, seed = 0, prio = 0;
  double cpu = -1;
  int json = 0;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout);
    if (!strcmp(a, "--json")) {
      json = 1;
      continue;
    }
    if (!strcmp(a, "--realtime")) {
      cfg.realtime = 1;
      continue;
    }
    if (!v) {
      fprintf(stderr, "saferl hil run: %s needs a value\n", a);
      return 2;
    }
    i++;
    int bad = 0;
    if (!strcmp(a, "--plant"))
      cfg.plant = v;
    else if (!strcmp(a, "--policy"))
      cfg.policy = v;
    else if (!strcmp(a, "--plant-options"))
      cfg.plant_options = v;
    else if (!strcmp(a, "--device"))
      cfg.device = v;
    else if (!strcmp(a, "--curve-server"))
      cfg.server_cert = v;
    else if (!strcmp(a, "--curve-client"))
      cfg.client_cert = v;
    else if (!strcmp(a, "--rate-hz"))
      bad = srl_cli_double("saferl hil run", a, v, 1e-3, 1e6, &rate);
    else if (!strcmp(a, "--duration"))
      bad = srl_cli_double("saferl hil run", a, v, 1e-6, 1e7, &duration);
    else if (!strcmp(a, "--deadline-us"))
      bad = srl_cli_double("saferl hil run", a, v, 0, 1e9, &deadline_us);
    else if (!strcmp(a, "--max-age-us"))
      bad = srl_cli_double("saferl hil run", a, v, 0, 1e12, &max_age_us);
    else if (!strcmp(a, "--latch-after"))
      bad = srl_cli_double("saferl hil run", a, v, 0, 1e9, &latch);
    else if (!strcmp(a, "--seed"))
      bad = srl_cli_double("saferl hil run", a, v, 0, 9e15, &seed);
    else if (!strcmp(a, "--priority"))
      bad = srl_cli_double("saferl hil run", a, v, 1, 99, &prio);
    else if (!strcmp(a, "--cpu"))
      bad = srl_cli_double("saferl hil run", a, v, 0, 1023, &cpu);
    else {
      fprintf(stderr, "saferl hil run: unknown option '%s'\n\n", a);
      return usage(stderr);
    }
    if (bad) return 2;
  }
  if (!cfg.plant || !cfg.policy || rate < 0 || duration < 0) {
    fprintf(stderr, "saferl hil run: --plant, --policy, --rate-hz and --duration are needed\n\n");
    return usage(stderr);
  }
  if (!cfg.server_cert != !cfg.client_cert) {
    fprintf(stderr, "saferl hil run: --curve-server and --curve-client go together\n");
    return 2;
  }
  // an endpoint as the plant means the env served there
  char plant[1100];
  if (strstr(cfg.plant, "://") && strncmp(cfg.plant, "remote:", 7) != 0) {
    snprintf(plant, sizeof plant, "remote:%s", cfg.plant);
    cfg.plant = plant;
  }
  cfg.rate_hz = rate;
  cfg.duration_s = duration;
  cfg.deadline_ns = (long long)llround(deadline_us * 1e3);
  cfg.max_age_ns = (long long)llround(max_age_us * 1e3);
  cfg.latch_after = (int)latch;
  cfg.seed = (uint64_t)seed;
  cfg.rt_priority = (int)prio;
  cfg.pin = cpu >= 0;
  cfg.cpu = cpu >= 0 ? (int)cpu : 0;

  srl_hil *h = NULL;
  if (srl_hil_create(&h, &cfg) < 0) {
    fprintf(stderr, "saferl hil run: %s\n", srl_errmsg());
    return 1;
  }
  srl_hil_report *rep = srl_calloc(sizeof *rep);
  if (!rep) {
    srl_hil_destroy(h);
    fprintf(stderr, "saferl hil run: out of memory\n");
    return 1;
  }
  g_hil = h;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  int rc = srl_hil_run(h, rep);
  g_hil = NULL;
  if (rc < 0) fprintf(stderr, "saferl hil run: %s\n", srl_errmsg());
  if (json)
    srl_hil_report_json(rep, stdout, 1);
  else
    summary(rep);
  fflush(stdout);
  srl_free(rep);
  srl_hil_destroy(h);
  return rc < 0 ? 1 : 0;
}

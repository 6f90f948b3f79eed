// cmd_serve.c: `saferl serve <what>`: a table of servers speaking the wire protocol
// (docs/protocol.md); `env` serves any registered env (bridges/env_server.h) until SIGINT or
// SIGTERM.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/saferl/commands.h"
#include "bridges/env_server.h"
#include "core/error.h"

static int serve_env(int argc, char **argv);

static const srl_command servers[] = {
    {"env", "serve a registered env: remote:ENDPOINT clients reset and step it", serve_env},
    {"policy", "serve a trained policy for hardware in the loop (ACT -> ACTION)",
     srl_cmd_serve_policy},
};


int srl_cmd_serve(int argc, char **argv) {
  size_t n = sizeof servers / sizeof *servers;
  if (argc >= 2) {
    for (size_t i = 0; i < n; i++)
      if (!strcmp(argv[1], servers[i].name)) return servers[i].run(argc - 1, argv + 1);
  }
  int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
  FILE *f = help ? stdout : stderr;
  if (argc >= 2 && !help) fprintf(f, "saferl serve: unknown server '%s'\n", argv[1]);
  fprintf(f, "usage: saferl serve <what> [options]\n\n");
  for (size_t i = 0; i < n; i++) fprintf(f, "  %-8s %s\n", servers[i].name, servers[i].help);
  fprintf(f, "\n'saferl serve <what> --help' describes one.\n");
  return help ? 0 : 2;
}


//---- saferl serve env -------------------------------------------------------------------------

static volatile sig_atomic_t stop_flag;


static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}


static int env_usage(FILE *f) {
  fprintf(f,
          "usage: saferl serve env ID --bind ENDPOINT [--options YAML] [--idle-timeout S]\n"
          "                        [--max-sessions N] [--image WxH|none]\n"
          "                        [--curve-secret CERT --allow FILE]\n\n"
          "Serves the env ID (any id 'saferl envs' lists) over the wire protocol on a ZeroMQ\n"
          "ROUTER socket bound to ENDPOINT (tcp://*:5555, tcp://127.0.0.1:*, ipc:///tmp/env).\n"
          "Each client session (env id remote:ENDPOINT) gets its own env instance.\n\n"
          "  --options YAML      the env's options as YAML text\n"
          "  --idle-timeout S    end sessions idle for S seconds (default 60; 0 never)\n"
          "  --max-sessions N    concurrent sessions (default 64)\n"
          "  --image WxH|none    size of the images sent on request (default 224x224 when the\n"
          "                      env renders)\n"
          "  --curve-secret CERT encrypt with CURVE using this secret certificate (saferl keygen)\n"
          "  --allow FILE        admit only the client public keys listed in FILE\n\n"
          "Prints the bound endpoint, serves until SIGINT or SIGTERM, then prints its counters.\n"
          "docs/protocol.md describes the protocol.\n");
  return f == stdout ? 0 : 2;
}


// "224x224" or "none" into w, h (-1 for none)
static int parse_image(const char *s, int *w, int *h) {
  if (!strcmp(s, "none")) {
    *w = *h = -1;
    return 0;
  }
  char *end;
  long a = strtol(s, &end, 10);
  if (end == s || (*end != 'x' && *end != 'X')) return -1;
  long b = strtol(end + 1, &end, 10);
  if (*end || a < 1 || b < 1 || a > 8192 || b > 8192) return -1;
  *w = (int)a;
  *h = (int)b;
  return 0;
}


static int serve_env(int argc, char **argv) {
  srl_env_server_config cfg = {0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return env_usage(stdout);
    if (a[0] != '-') {
      if (cfg.env_id) return env_usage(stderr);
      cfg.env_id = a;
      continue;
    }
    if (!v) {
      fprintf(stderr, "saferl serve env: %s needs a value\n", a);
      return 2;
    }
    i++;
    char *end;
    if (!strcmp(a, "--bind")) {
      cfg.bind = v;
    } else if (!strcmp(a, "--options")) {
      cfg.options_yaml = v;
    } else if (!strcmp(a, "--curve-secret")) {
      cfg.curve_secret = v;
    } else if (!strcmp(a, "--allow")) {
      cfg.allow_list = v;
    } else if (!strcmp(a, "--idle-timeout")) {
      double t = strtod(v, &end);
      if (*end || end == v || !(t >= 0)) {
        fprintf(stderr, "saferl serve env: --idle-timeout '%s' is not a number of seconds\n", v);
        return 2;
      }
      cfg.idle_timeout_s = t == 0 ? -1.0 : t;
    } else if (!strcmp(a, "--max-sessions")) {
      long n = strtol(v, &end, 10);
      if (*end || end == v || n < 1 || n > 4096) {
        fprintf(stderr, "saferl serve env: --max-sessions '%s' must be in [1, 4096]\n", v);
        return 2;
      }
      cfg.max_sessions = (int)n;
    } else if (!strcmp(a, "--image")) {
      if (parse_image(v, &cfg.image_width, &cfg.image_height)) {
        fprintf(stderr, "saferl serve env: --image '%s' must be WxH (e.g. 224x224) or none\n", v);
        return 2;
      }
    } else {
      fprintf(stderr, "saferl serve env: unknown option '%s'\n", a);
      return env_usage(stderr);
    }
  }
  if (!cfg.env_id || !cfg.bind) {
    fprintf(stderr, "saferl serve env: an env id and --bind ENDPOINT are required\n");
    return env_usage(stderr);
  }
  if (cfg.allow_list && !cfg.curve_secret) {
    fprintf(stderr, "saferl serve env: --allow needs --curve-secret\n");
    return 2;
  }

  // stop cleanly on SIGINT and SIGTERM: the wait is interrupted and the loop sees the flag
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  srl_env_server *s = NULL;
  if (srl_env_server_create(&s, &cfg) < 0) {
    fprintf(stderr, "saferl serve env: %s\n", srl_errmsg());
    return 1;
  }
  printf("saferl serve env: %s on %s%s\n", cfg.env_id, srl_env_server_endpoint(s),
         cfg.curve_secret ? (cfg.allow_list ? " (CURVE, allow-list)" : " (CURVE)") : "");
  fflush(stdout);
  int rc = srl_env_server_run(s, &stop_flag);
  srl_env_server_stats st;
  srl_env_server_get_stats(s, &st);
  fprintf(stderr,
          "saferl serve env: stopped: %lld requests, %lld hellos, %lld resets, %lld steps, "
          "%lld replayed, %lld errors (%lld malformed), %lld sessions expired, step p50 %.1f "
          "us p99 %.1f us\n",
          st.requests, st.hellos, st.resets, st.steps, st.replayed, st.errors, st.malformed,
          st.expired, st.step_p50_us, st.step_p99_us);
  if (rc < 0) fprintf(stderr, "saferl serve env: %s\n", srl_errmsg());
  srl_env_server_destroy(s);
  return rc < 0 ? 1 : 0;
}

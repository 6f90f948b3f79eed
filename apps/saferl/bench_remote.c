// bench_remote.c: `saferl bench remote`: the round trip of a remote env step (client env →
// wire → env server → env → wire → client) on loopback, over ipc or tcp, against an env server
// in a thread of this process or in a forked child process.
//
// Each step is timed alone (CLOCK_MONOTONIC around srl_env_step); the report gives the round
// trip's p50, p99 and max and the steps per second of the whole loop, resets included. The env
// is small (SimplePointGoal: 8 observations, 2 actions) so the numbers measure the bridge.
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "apps/saferl/commands.h"
#include "bridges/env_server.h"
#include "bridges/remote_env.h"
#include "bridges/wire.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "envs/env.h"

#define ACTIONS 4096  // pre-drawn actions, cycled
#define MAX_STEPS 20000000LL

typedef struct bench_opts {
  const char *env_id, *transport, *server;
  long long steps;
  int json, floor;
} bench_opts;


static int usage(FILE *f) {
  fprintf(
      f,
      "usage: saferl bench remote [--endpoint ipc|tcp] [--steps 100000] [--server thread|fork]\n"
      "                           [--env SimplePointGoal] [--json] [--floor]\n\n"
      "Round trip of remote env steps on loopback: a client env (remote:ENDPOINT) steps an\n"
      "env server running in a thread of this process (--server thread, the default) or in a\n"
      "forked child process (--server fork). Reports the round trip p50, p99 and max of one\n"
      "step, and steps per second over the run (resets included). --floor also times bare\n"
      "ZeroMQ REQ/ROUTER exchanges of the same sizes against an echo thread on the same\n"
      "transport: the share of the round trip that is ZeroMQ's own.\n");
  return f == stdout ? 0 : 2;
}


static int parse(bench_opts *o, int argc, char **argv) {
  *o = (bench_opts){
      .env_id = "SimplePointGoal", .transport = "ipc", .server = "thread", .steps = 100000};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--json") || !strcmp(a, "--floor")) {
      *(!strcmp(a, "--json") ? &o->json : &o->floor) = 1;
      continue;
    }
    if (!v) return -1;
    i++;
    if (!strcmp(a, "--endpoint") && (!strcmp(v, "ipc") || !strcmp(v, "tcp"))) {
      o->transport = v;
    } else if (!strcmp(a, "--server") && (!strcmp(v, "thread") || !strcmp(v, "fork"))) {
      o->server = v;
    } else if (!strcmp(a, "--env")) {
      o->env_id = v;
    } else if (!strcmp(a, "--steps")) {
      char *end;
      o->steps = strtoll(v, &end, 10);
      if (*end || end == v || o->steps < 1 || o->steps > MAX_STEPS) return -1;
    } else {
      return -1;
    }
  }
  return 0;
}


static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}


// CPU time of this process (all its threads), s
static double cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}


//---- the server: a thread or a child process ----------------------------------------------------

static volatile sig_atomic_t server_stop;


static void on_term(int sig) {
  (void)sig;
  server_stop = 1;
}


static void *server_thread(void *arg) {
  srl_env_server_run(arg, &server_stop);
  return NULL;
}


// the child: serve until SIGTERM, after writing the bound endpoint (or "" on failure) to fd
static void server_child(const char *env_id, const char *bind, int fd) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  srl_env_server_config cfg = {.env_id = env_id, .bind = bind, .image_width = -1};
  srl_env_server *s = NULL;
  char ep[256] = "";
  if (srl_env_server_create(&s, &cfg) == 0)
    snprintf(ep, sizeof ep, "%s", srl_env_server_endpoint(s));
  else
    fprintf(stderr, "saferl bench remote: server: %s\n", srl_errmsg());
  if (write(fd, ep, sizeof ep) != (ssize_t)sizeof ep) server_stop = 1;
  close(fd);
  if (s) srl_env_server_run(s, &server_stop);
  srl_env_server_destroy(s);
  _exit(0);
}


//---- the transport's floor: bare ZeroMQ exchanges of a STEP's sizes ----------------------------

typedef struct echo_arg {
  void *sock;
  int obs_bytes;
  volatile sig_atomic_t stop;
} echo_arg;


// answer each request [id][""][header][action] with [id][""][header][obs][terms]
static void *echo_thread(void *arg) {
  echo_arg *e = arg;
  uint8_t id[256], hdr[64], in[4096], obs[4096] = {0}, terms[16] = {0};
  zmq_pollitem_t it = {.socket = e->sock, .events = ZMQ_POLLIN};
  while (!e->stop) {
    if (zmq_poll(&it, 1, 100) <= 0) continue;
    int n = zmq_recv(e->sock, id, sizeof id, 0);
    zmq_recv(e->sock, in, sizeof in, 0);
    zmq_recv(e->sock, hdr, sizeof hdr, 0);
    zmq_recv(e->sock, in, sizeof in, 0);
    zmq_send(e->sock, id, (size_t)n, ZMQ_SNDMORE);
    zmq_send(e->sock, "", 0, ZMQ_SNDMORE);
    zmq_send(e->sock, hdr, SRL_WIRE_HEADER_SIZE, ZMQ_SNDMORE);
    zmq_send(e->sock, obs, (size_t)e->obs_bytes, ZMQ_SNDMORE);
    zmq_send(e->sock, terms, sizeof terms, 0);
  }
  return NULL;
}


// p50 and steps/s of bare exchanges over the transport of bind
static int floor_run(const bench_opts *o, const char *bind, int obs_dim, int act_dim, double *lat,
                     double *p50, double *p99, double *rate, double *cpu_us) {
  void *ctx = zmq_ctx_new();
  echo_arg e = {.sock = zmq_socket(ctx, ZMQ_ROUTER), .obs_bytes = 4 * obs_dim};
  void *req = zmq_socket(ctx, ZMQ_REQ);
  srl_wire_socket_defaults(e.sock, 1000, -1);
  srl_wire_socket_defaults(req, 1000, 2000);
  char ep[256];
  size_t len = sizeof ep;
  pthread_t th;
  int rc = zmq_bind(e.sock, bind) || zmq_getsockopt(e.sock, ZMQ_LAST_ENDPOINT, ep, &len) ||
                   zmq_connect(req, ep)
               ? SRL_EIO
               : 0;
  if (rc == 0 && pthread_create(&th, NULL, echo_thread, &e)) rc = SRL_EIO;
  if (rc == 0) {
    uint8_t hdr[SRL_WIRE_HEADER_SIZE] = {0}, act[4096] = {0}, back[4096];
    long long n = o->steps;
    uint64_t t_start = srl_wire_now_ns();
    double c0 = cpu_s();
    for (long long k = 0; k < n + 1000 && rc == 0; k++) {
      uint64_t t0 = srl_wire_now_ns();
      zmq_send(req, hdr, sizeof hdr, ZMQ_SNDMORE);
      zmq_send(req, act, (size_t)(4 * act_dim), 0);
      for (int part = 0; part < 3 && rc == 0; part++)
        if (zmq_recv(req, back, sizeof back, 0) < 0) rc = SRL_ETIMEOUT;
      if (k == 999) t_start = srl_wire_now_ns(), c0 = cpu_s();  // after a warm-up
      if (k >= 1000) lat[k - 1000] = (double)(srl_wire_now_ns() - t0) * 1e-3;
    }
    *rate = (double)n / ((double)(srl_wire_now_ns() - t_start) * 1e-9);
    *cpu_us = (cpu_s() - c0) / (double)n * 1e6;
    e.stop = 1;
    pthread_join(th, NULL);
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    *p50 = lat[(size_t)((double)(n - 1) * 0.50)];
    *p99 = lat[(size_t)((double)(n - 1) * 0.99)];
  }
  zmq_close(req);
  zmq_close(e.sock);
  zmq_ctx_term(ctx);
  return rc;
}


//---- the client loop --------------------------------------------------------------------------

// step env for o->steps steps, timing each; lat gets the round trips in µs, cpu this process's
// CPU seconds over the timed loop
static int run_client(const bench_opts *o, srl_env *env, double *lat, double *secs, double *cpu) {
  int od = env->obs_space.dim, ad = env->act_space.dim;
  float *buf = srl_malloc(sizeof(float) * ((size_t)od + (size_t)ad * ACTIONS));
  if (!buf) return SRL_ENOMEM;
  float *obs = buf, *acts = buf + od;
  for (size_t i = 0; i < (size_t)ad * ACTIONS; i++) acts[i] = 2.0f * srl_hash_uniform(7, i) - 1.0f;

  uint64_t seed = 1;
  int rc = srl_env_reset(env, seed++, obs);
  srl_step st;
  // a short warm-up, then the timed run
  for (int k = 0; rc == 0 && k < 1000; k++) {
    rc = srl_env_step(env, acts + (size_t)ad * (size_t)(k % ACTIONS), obs, &st);
    if (rc == 0 && (st.terminated || st.truncated)) rc = srl_env_reset(env, seed++, obs);
  }
  uint64_t t_start = srl_wire_now_ns();
  double c0 = cpu_s();
  for (long long k = 0; rc == 0 && k < o->steps; k++) {
    uint64_t t0 = srl_wire_now_ns();
    rc = srl_env_step(env, acts + (size_t)ad * (size_t)(k % ACTIONS), obs, &st);
    lat[k] = (double)(srl_wire_now_ns() - t0) * 1e-3;
    if (rc == 0 && (st.terminated || st.truncated)) rc = srl_env_reset(env, seed++, obs);
  }
  *secs = (double)(srl_wire_now_ns() - t_start) * 1e-9;
  *cpu = cpu_s() - c0;
  srl_free(buf);
  return rc;
}


int srl_bench_remote(int argc, char **argv) {
  bench_opts o;
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(stdout);
  if (parse(&o, argc, argv)) return usage(stderr);

  // the endpoint: an ipc path in a fresh directory, or a free loopback port
  char dir[32], bind[256];
  snprintf(dir, sizeof dir, "/tmp/saferl-bench-XXXXXX");
  int ipc = !strcmp(o.transport, "ipc");
  if (ipc) {
    if (!mkdtemp(dir)) {
      perror("saferl bench remote: mkdtemp");
      return 1;
    }
    snprintf(bind, sizeof bind, "ipc://%s/env", dir);
  } else {
    snprintf(bind, sizeof bind, "tcp://127.0.0.1:*");
  }

  // the server
  char endpoint[256] = "";
  srl_env_server *server = NULL;
  pthread_t th;
  pid_t child = -1;
  int fail = 0;
  if (!strcmp(o.server, "fork")) {
    int fds[2];
    if (pipe(fds)) {
      perror("saferl bench remote: pipe");
      return 1;
    }
    child = fork();
    if (child == 0) {
      close(fds[0]);
      server_child(o.env_id, bind, fds[1]);
    }
    close(fds[1]);
    if (child < 0 || read(fds[0], endpoint, sizeof endpoint) != (ssize_t)sizeof endpoint)
      endpoint[0] = 0;
    close(fds[0]);
    endpoint[sizeof endpoint - 1] = 0;
    fail = !endpoint[0];
  } else {
    srl_env_server_config cfg = {.env_id = o.env_id, .bind = bind, .image_width = -1};
    if (srl_env_server_create(&server, &cfg) < 0 ||
        pthread_create(&th, NULL, server_thread, server)) {
      fprintf(stderr, "saferl bench remote: server: %s\n", srl_errmsg());
      srl_env_server_destroy(server);
      server = NULL;
      fail = 1;
    } else {
      snprintf(endpoint, sizeof endpoint, "%s", srl_env_server_endpoint(server));
    }
  }

  // the client
  double *lat = fail ? NULL : srl_malloc(sizeof(double) * (size_t)o.steps);
  srl_env *env = NULL;
  double secs = 0, cpu = 0;
  char id[300];
  snprintf(id, sizeof id, "remote:%s", endpoint);
  int rc = fail ? SRL_EIO : !lat ? SRL_ENOMEM : 0;
  if (rc == 0) rc = srl_env_create(&env, id, "heartbeat_ms: 0");
  if (rc == 0) rc = run_client(&o, env, lat, &secs, &cpu);
  int obs_dim = env ? env->obs_space.dim : 1, act_dim = env ? env->act_space.dim : 1;
  if (rc < 0 && !fail) fprintf(stderr, "saferl bench remote: %s\n", srl_errmsg());
  srl_env_destroy(env);

  // stop the server
  if (child > 0) {
    kill(child, SIGTERM);
    waitpid(child, NULL, 0);
  }
  srl_env_server_stats sst = {0};
  int threaded = server != NULL;
  if (server) {
    server_stop = 1;
    pthread_join(th, NULL);
    srl_env_server_get_stats(server, &sst);
    srl_env_server_destroy(server);
  }
  if (ipc) {
    char path[300];
    snprintf(path, sizeof path, "%s/env", dir);
    unlink(path);
    rmdir(dir);
  }
  if (rc < 0) {
    srl_free(lat);
    return 1;
  }

  qsort(lat, (size_t)o.steps, sizeof *lat, cmp_double);
  double p50 = lat[(size_t)((double)(o.steps - 1) * 0.50)];
  double p99 = lat[(size_t)((double)(o.steps - 1) * 0.99)];
  double mx = lat[o.steps - 1], rate = (double)o.steps / secs;
  double cpu_us = cpu / (double)o.steps * 1e6;  // client and, in a thread, server together
  if (o.json)
    printf(
        "{\"env\": \"%s\", \"transport\": \"%s\", \"server\": \"%s\", \"steps\": %lld, "
        "\"seconds\": %.6f, \"steps_per_s\": %.1f, \"rtt_p50_us\": %.2f, \"rtt_p99_us\": %.2f, "
        "\"rtt_max_us\": %.2f, \"cpu_us_per_step\": %.2f, \"server_handle_p50_us\": %.2f}\n",
        o.env_id, o.transport, o.server, o.steps, secs, rate, p50, p99, mx, cpu_us,
        sst.step_p50_us);
  else
    printf(
        "remote %s over %s (server in a %s): %lld steps in %.3f s, %.0f steps/s; round trip "
        "p50 %.1f us, p99 %.1f us, max %.1f us; %.1f us of CPU per step (%s)\n",
        o.env_id, o.transport, !strcmp(o.server, "fork") ? "child process" : "thread", o.steps,
        secs, rate, p50, p99, mx, cpu_us,
        threaded ? "client and server threads" : "client process");
  if (!o.json && threaded)
    printf("server: handling one STEP (env step included) p50 %.2f us\n", sst.step_p50_us);
  // the bare transport, for comparison
  if (o.floor) {
    double f50 = 0, f99 = 0, frate = 0, fcpu = 0;
    if (ipc) {
      snprintf(dir, sizeof dir, "/tmp/saferl-bench-XXXXXX");
      if (!mkdtemp(dir)) return 1;
      snprintf(bind, sizeof bind, "ipc://%s/echo", dir);
    }
    int frc = floor_run(&o, bind, obs_dim, act_dim, lat, &f50, &f99, &frate, &fcpu);
    if (ipc) {
      char path[300];
      snprintf(path, sizeof path, "%s/echo", dir);
      unlink(path);
      rmdir(dir);
    }
    if (frc < 0)
      fprintf(stderr, "saferl bench remote: the bare ZeroMQ exchange failed\n");
    else if (o.json)
      printf(
          "{\"floor\": true, \"transport\": \"%s\", \"steps_per_s\": %.1f, \"rtt_p50_us\": %.2f, "
          "\"rtt_p99_us\": %.2f, \"cpu_us_per_step\": %.2f}\n",
          o.transport, frate, f50, f99, fcpu);
    else
      printf(
          "bare ZeroMQ REQ/ROUTER exchange of the same sizes over %s: %.0f exchanges/s; round "
          "trip p50 %.1f us, p99 %.1f us; %.1f us of CPU per exchange\n",
          o.transport, frate, f50, f99, fcpu);
  }
  srl_free(lat);
  return 0;
}

// hil.c: the hardware-in-the-loop cycle of hil.h: absolute-time sleeps on CLOCK_MONOTONIC, the
// plant stepped through the env API (a remote env for a plant elsewhere), the policy asked over
// the wire (a DEALER socket with per-cycle deadlines in nanoseconds) or in-process, and the
// latency histograms and counters of the report.
#define _GNU_SOURCE  // ppoll
#include "bridges/hil.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bridges/curve.h"
#include "bridges/policy_server.h"
#include "bridges/wire.h"
#include "core/alloc.h"
#include "core/error.h"
#include "envs/env.h"
#include "envs/wrappers.h"

#define HELLO_TIMEOUT_MS 3000  // how long the policy server has to answer HELLO
#define RX_CAP (64 * 1024)     // the reply buffer
#define HIL_MAX_IO_THREADS 16


//---- latency histogram -----------------------------------------------------------------------

void srl_lat_reset(srl_lat_hist *h) {
  memset(h, 0, sizeof *h);
  h->min = UINT64_MAX;
}


// bucket of a value: exact below 64, then 64 sub-buckets per power of two
static int lat_bucket(uint64_t v) {
  if (v < SRL_LAT_SUB) return (int)v;
  int e = 63 - __builtin_clzll(v);  // 2^e ≤ v < 2^(e+1), e ≥ 6
  if (e >= SRL_LAT_TOP) return SRL_LAT_BUCKETS - 1;
  int sub = (int)(v >> (e - 6)) - SRL_LAT_SUB;  // 0..63
  return SRL_LAT_SUB + (e - 6) * SRL_LAT_SUB + sub;
}


// [lo, lo + width) of a bucket
static void lat_bounds(int b, double *lo, double *width) {
  if (b < SRL_LAT_SUB) {
    *lo = b;
    *width = 1;
    return;
  }
  int e = (b - SRL_LAT_SUB) / SRL_LAT_SUB + 6, sub = (b - SRL_LAT_SUB) % SRL_LAT_SUB;
  *width = ldexp(1.0, e - 6);
  *lo = (double)(SRL_LAT_SUB + sub) * *width;
}


void srl_lat_add(srl_lat_hist *h, uint64_t ns) {
  h->count++;
  h->sum += (double)ns;
  if (ns < h->min) h->min = ns;
  if (ns > h->max) h->max = ns;
  h->bucket[lat_bucket(ns)]++;
}


double srl_lat_quantile(const srl_lat_hist *h, double q) {
  if (!h->count) return 0;
  if (q <= 0) return (double)h->min;
  if (q >= 1) return (double)h->max;
  uint64_t rank = (uint64_t)ceil(q * (double)h->count), seen = 0;
  if (rank < 1) rank = 1;
  for (int b = 0; b < SRL_LAT_BUCKETS; b++) {
    seen += h->bucket[b];
    if (seen >= rank) {
      double lo, w;
      lat_bounds(b, &lo, &w);
      double v = b < SRL_LAT_SUB ? lo : lo + 0.5 * w;
      if (v < (double)h->min) v = (double)h->min;
      if (v > (double)h->max) v = (double)h->max;
      return v;
    }
  }
  return (double)h->max;
}


double srl_lat_mean(const srl_lat_hist *h) {
  return h->count ? h->sum / (double)h->count : 0;
}


int srl_lat_json(const srl_lat_hist *h, char *buf, size_t cap) {
  return snprintf(buf, cap,
                  "{\"count\": %llu, \"mean\": %.0f, \"p50\": %.0f, \"p90\": %.0f, \"p99\": %.0f, "
                  "\"max\": %llu}",
                  (unsigned long long)h->count, srl_lat_mean(h), srl_lat_quantile(h, 0.5),
                  srl_lat_quantile(h, 0.9), srl_lat_quantile(h, 0.99),
                  (unsigned long long)(h->count ? h->max : 0));
}


//---- the loop's state ------------------------------------------------------------------------

struct srl_hil {
  char plant_id[256], policy[1024];
  double rate_hz, duration_s;
  long long deadline_ns;
  int realtime, rt_priority, pin, cpu;
  uint64_t seed;

  srl_env *plant;  // as created (the time limit and the plant's own bounds)
  int obs_dim, act_dim;
  int rescale;  // the plant's action bounds are finite: map [-1, 1] onto them

  // the policy: in-process, or a policy server over a DEALER socket
  srl_policy_server *local;
  void *ctx, *sock;
  int fd;  // the socket's ZMQ_FD (edge-triggered readiness)
  uint64_t session;
  uint32_t seq;

  volatile sig_atomic_t stop;

  // threads the plant and policy connections started (ZeroMQ I/O threads): they carry every
  // message, so with realtime they run SCHED_FIFO too, one priority below the loop
  pid_t io_tid[HIL_MAX_IO_THREADS];
  int n_io;

  // buffers
  float *obs, *act, *env_act, *reply;  // obs_dim, act_dim ×3
  uint8_t *obs_wire;                   // obs_dim·4
  uint8_t *rx;                         // RX_CAP
  srl_wire_route route;
};


static uint64_t now_ns(void) {
  return srl_wire_now_ns();
}


// wait until the socket has a message or the absolute deadline passes: 1 readable, 0 not
static int wait_readable(srl_hil *h, uint64_t deadline) {
  for (;;) {
    int ev = 0;
    size_t len = sizeof ev;
    if (zmq_getsockopt(h->sock, ZMQ_EVENTS, &ev, &len) == 0 && (ev & ZMQ_POLLIN)) return 1;
    uint64_t t = now_ns();
    if (t >= deadline) return 0;
    uint64_t left = deadline - t;
    struct timespec ts = {(time_t)(left / 1000000000ull), (long)(left % 1000000000ull)};
    struct pollfd p = {.fd = h->fd, .events = POLLIN};
    ppoll(&p, 1, &ts, NULL);  // the fd only signals a change: ZMQ_EVENTS decides
  }
}


// send the HELLO and read the policy server's dimensions
static int remote_hello(srl_hil *h) {
  srl_wire_header hd = srl_wire_header_make(SRL_WIRE_HELLO, ++h->seq, 0);
  srl_wire_route r0 = {.n = 0, .delimiter = 1};
  SRL_TRY(srl_wire_send(h->sock, &r0, &hd, NULL));
  uint64_t deadline = now_ns() + (uint64_t)HELLO_TIMEOUT_MS * 1000000ull;
  for (;;) {
    if (!wait_readable(h, deadline))
      return srl_error(SRL_ETIMEOUT, "policy server %s: no HELLO reply in %d ms", h->policy,
                       HELLO_TIMEOUT_MS);
    srl_wire_msg m;
    int rc = srl_wire_recv(h->sock, &h->route, &m, h->rx, RX_CAP, 0);
    if (rc == SRL_ETIMEOUT) continue;
    SRL_TRY(rc);
    if (m.h.seq != h->seq) continue;
    if (m.h.type == SRL_WIRE_ERROR) {
      char text[256];
      int code = SRL_EIO;
      srl_wire_error_read(&m, &code, text, sizeof text);
      return srl_error(code < 0 ? code : SRL_EIO, "policy server %s: %s", h->policy, text);
    }
    if (m.h.type != SRL_WIRE_HELLO || m.h.n_frames != 3)
      return srl_error(SRL_EFORMAT, "policy server %s: answered HELLO with %s", h->policy,
                       srl_wire_type_name(m.h.type));
    srl_wire_info info;
    SRL_TRY(srl_wire_info_decode(&info, m.frame[0], m.size[0]));
    if (info.obs_dim != h->obs_dim || info.act_dim != h->act_dim)
      return srl_error(SRL_EINVAL,
                       "policy server %s serves a policy for %s with observations of %d and "
                       "actions of %d values; the plant %s has %d and %d",
                       h->policy, info.env_id, info.obs_dim, info.act_dim, h->plant_id, h->obs_dim,
                       h->act_dim);
    h->session = m.h.session;
    return SRL_OK;
  }
}


static int remote_connect(srl_hil *h, const srl_hil_config *cfg) {
  h->ctx = zmq_ctx_new();
  if (!h->ctx) return srl_error(SRL_EIO, "hil: zmq_ctx_new: %s", zmq_strerror(errno));
  h->sock = zmq_socket(h->ctx, ZMQ_DEALER);
  if (!h->sock) return srl_error(SRL_EIO, "hil: zmq_socket: %s", zmq_strerror(errno));
  // HELLO may wait for the connection; cycles never do (set after it)
  SRL_TRY(srl_wire_socket_defaults(h->sock, HELLO_TIMEOUT_MS, -1));
  // an observation is never queued for a server that is not there: it would be stale anyway
  int one = 1, hwm = 16;
  zmq_setsockopt(h->sock, ZMQ_IMMEDIATE, &one, sizeof one);
  zmq_setsockopt(h->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
  if (cfg->server_cert) {
    if (!cfg->client_cert)
      return srl_error(SRL_EINVAL, "hil: CURVE needs the client's secret certificate too");
    SRL_TRY(srl_curve_client_setup(h->sock, cfg->server_cert, cfg->client_cert));
  }
  if (zmq_connect(h->sock, cfg->policy) != 0)
    return srl_error(SRL_EIO, "hil: cannot connect to %s: %s", cfg->policy, zmq_strerror(errno));
  size_t len = sizeof h->fd;
  if (zmq_getsockopt(h->sock, ZMQ_FD, &h->fd, &len) != 0)
    return srl_error(SRL_EIO, "hil: ZMQ_FD: %s", zmq_strerror(errno));
  SRL_TRY(remote_hello(h));
  int zero = 0;
  zmq_setsockopt(h->sock, ZMQ_SNDTIMEO, &zero, sizeof zero);
  return SRL_OK;
}


// the process's thread ids (at most cap); how many
static int list_threads(pid_t *tids, int cap) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL)
    if (e->d_name[0] != '.' && n < cap) tids[n++] = (pid_t)atoi(e->d_name);
  if (d) closedir(d);
  return n;
}


// threads in after[] that are not in before[] go to h->io_tid
static void note_new_threads(srl_hil *h, const pid_t *before, int nb) {
  pid_t after[256];
  int na = list_threads(after, 256);
  for (int i = 0; i < na && h->n_io < HIL_MAX_IO_THREADS; i++) {
    int old = 0;
    for (int j = 0; j < nb && !old; j++) old = after[i] == before[j];
    if (!old) h->io_tid[h->n_io++] = after[i];
  }
}


static int is_endpoint(const char *s) {
  return strstr(s, "://") != NULL;
}


int srl_hil_create(srl_hil **out, const srl_hil_config *cfg) {
  if (!out || !cfg || !cfg->plant || !cfg->policy)
    return srl_error(SRL_EINVAL, "srl_hil_create: out, cfg, plant and policy needed");
  *out = NULL;
  if (!(cfg->rate_hz > 0) || !isfinite(cfg->rate_hz) || cfg->rate_hz > 1e6)
    return srl_error(SRL_EINVAL, "hil: rate %g Hz must be in (0, 1e6]", cfg->rate_hz);
  if (!(cfg->duration_s > 0) || !isfinite(cfg->duration_s))
    return srl_error(SRL_EINVAL, "hil: duration %g s must be > 0", cfg->duration_s);
  if (cfg->pin && (cfg->cpu < 0 || cfg->cpu >= CPU_SETSIZE))
    return srl_error(SRL_EINVAL, "hil: cpu %d out of range", cfg->cpu);
  if (cfg->deadline_ns < 0 || cfg->max_age_ns < 0 || cfg->latch_after < 0)
    return srl_error(SRL_EINVAL, "hil: deadline, max_age and latch_after must be ≥ 0");

  // the plant first: its dimensions size everything
  pid_t before[256];
  int nb = list_threads(before, 256);
  srl_env *plant = NULL;
  int rc = srl_env_create(&plant, cfg->plant, cfg->plant_options);
  if (rc < 0) return srl_error_context(rc, "hil: plant: ");
  int O = plant->obs_space.dim, A = plant->act_space.dim;
  size_t total = sizeof(srl_hil);
  size_t o_obs = srl_layout_add(&total, sizeof(float) * (size_t)O);
  size_t o_act = srl_layout_add(&total, sizeof(float) * (size_t)A);
  size_t o_env = srl_layout_add(&total, sizeof(float) * (size_t)A);
  size_t o_rep = srl_layout_add(&total, sizeof(float) * (size_t)A);
  size_t o_ow = srl_layout_add(&total, 4 * (size_t)O);
  size_t o_rx = srl_layout_add(&total, RX_CAP);
  char *base = srl_calloc(total);
  if (!base) {
    srl_env_destroy(plant);
    return SRL_ENOMEM;
  }
  srl_hil *h = (srl_hil *)(void *)base;
  h->plant = plant;
  h->obs_dim = O;
  h->act_dim = A;
  h->obs = (float *)(void *)(base + o_obs);
  h->act = (float *)(void *)(base + o_act);
  h->env_act = (float *)(void *)(base + o_env);
  h->reply = (float *)(void *)(base + o_rep);
  h->obs_wire = (uint8_t *)(base + o_ow);
  h->rx = (uint8_t *)(base + o_rx);
  h->fd = -1;
  snprintf(h->plant_id, sizeof h->plant_id, "%s", cfg->plant);
  snprintf(h->policy, sizeof h->policy, "%s", cfg->policy);
  h->rate_hz = cfg->rate_hz;
  h->duration_s = cfg->duration_s;
  h->deadline_ns = cfg->deadline_ns;
  h->realtime = cfg->realtime;
  h->rt_priority = cfg->rt_priority > 0 ? cfg->rt_priority : 80;
  h->pin = cfg->pin;
  h->cpu = cfg->cpu;
  h->seed = cfg->seed;
  h->rescale = 1;
  for (int i = 0; i < A; i++)
    if (!isfinite(plant->act_space.low[i]) || !isfinite(plant->act_space.high[i])) h->rescale = 0;

  if (is_endpoint(cfg->policy)) {
    rc = remote_connect(h, cfg);
  } else {
    // in-process: the policy server's own logic without a socket, holding on a miss
    srl_policy_server_config pc = {.device = cfg->device,
                                   .rate_hz = cfg->rate_hz,
                                   .deadline_ns = cfg->deadline_ns,
                                   .max_age_ns = cfg->max_age_ns,
                                   .fallback = SRL_FALLBACK_HOLD,
                                   .latch_after = cfg->latch_after};
    rc = srl_policy_server_create(&h->local, cfg->policy, &pc);
    if (rc == 0 &&
        (srl_policy_server_obs_dim(h->local) != O || srl_policy_server_act_dim(h->local) != A))
      rc = srl_error(SRL_EINVAL,
                     "hil: the policy %s acts on %s (observations of %d, actions of %d values); "
                     "the plant %s has %d and %d",
                     cfg->policy, srl_policy_server_env_id(h->local),
                     srl_policy_server_obs_dim(h->local), srl_policy_server_act_dim(h->local),
                     cfg->plant, O, A);
  }
  if (rc < 0) {
    srl_hil_destroy(h);
    return rc;
  }
  note_new_threads(h, before, nb);
  *out = h;
  return SRL_OK;
}


void srl_hil_destroy(srl_hil *h) {
  if (!h) return;
  if (h->sock) {
    // say goodbye without waiting for the answer
    srl_wire_header hd = srl_wire_header_make(SRL_WIRE_CLOSE, ++h->seq, h->session);
    srl_wire_route r0 = {.n = 0, .delimiter = 1};
    if (h->session) srl_wire_send(h->sock, &r0, &hd, NULL);
    zmq_close(h->sock);
  }
  if (h->ctx) zmq_ctx_term(h->ctx);
  srl_policy_server_destroy(h->local);
  srl_env_destroy(h->plant);
  srl_free(h);
}


void srl_hil_request_stop(srl_hil *h) {
  h->stop = 1;
}


//---- one policy request ------------------------------------------------------------------------

// Ask the policy for the action of h->obs (taken at t_obs) before the absolute deadline. 1 with
// the action in h->reply and its status, 0 when none came in time (or the reply was an error).
static int policy_query(srl_hil *h, uint64_t t_obs, uint64_t deadline, srl_wire_status *st,
                        uint32_t *flags, uint64_t *rtt, srl_hil_report *rep) {
  uint32_t seq = ++h->seq;
  uint64_t t_send = now_ns();
  if (h->local) {
    srl_policy_server_act(h->local, h->reply, st, flags, h->obs, sizeof(float) * (size_t)h->obs_dim,
                          0, seq, t_obs, t_send);
    uint64_t t = now_ns();
    *rtt = t - t_send;
    if (t > deadline) rep->late_replies++;
    return t <= deadline;
  }

  srl_wire_header hd = srl_wire_header_make(SRL_WIRE_ACT, seq, h->session);
  hd.t_ns = t_obs;
  hd.n_frames = 1;
  hd.sizes[0] = 4 * (uint32_t)h->obs_dim;
  srl_wire_put_f32(h->obs_wire, h->obs, (size_t)h->obs_dim);
  const void *frames[1] = {h->obs_wire};
  srl_wire_route r0 = {.n = 0, .delimiter = 1};
  if (srl_wire_send(h->sock, &r0, &hd, frames) < 0) return 0;  // no connection: a miss
  for (;;) {
    if (!wait_readable(h, deadline)) return 0;
    srl_wire_msg m;
    int rc = srl_wire_recv(h->sock, &h->route, &m, h->rx, RX_CAP, 0);
    if (rc == SRL_ETIMEOUT || rc == SRL_EINTERRUPTED) continue;
    if (rc < 0) {
      rep->policy_errors++;
      continue;
    }
    if (m.h.seq != seq) {
      // the answer to an earlier cycle's request, after its deadline
      if (m.h.type == SRL_WIRE_ACTION) rep->late_replies++;
      continue;
    }
    if (m.h.type != SRL_WIRE_ACTION || m.size[0] != 4 * (size_t)h->act_dim ||
        srl_wire_status_decode(st, m.frame[1], m.size[1]) < 0) {
      rep->policy_errors++;
      return 0;
    }
    *rtt = now_ns() - t_send;
    srl_wire_get_f32(h->reply, m.frame[0], (size_t)h->act_dim);
    *flags = m.h.flags;
    return 1;
  }
}


//---- real-time setup ---------------------------------------------------------------------------

typedef struct rt_saved {
  int policy;
  struct sched_param param;
  int slack;
  int have_mask;
  cpu_set_t mask;  // the loop thread's affinity before pinning
} rt_saved;


// pin the loop and its I/O threads to one CPU: every hand-off between them stays on it (no
// cross-CPU wake-ups, which cost most in virtual machines)
static void pin_cpu(srl_hil *h, srl_hil_report *rep, rt_saved *saved, size_t *at) {
  rep->pinned_cpu = -1;
  if (!h->pin) return;
  saved->have_mask = sched_getaffinity(0, sizeof saved->mask, &saved->mask) == 0;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(h->cpu, &one);
  int ok = sched_setaffinity(0, sizeof one, &one) == 0;
  for (int i = 0; ok && i < h->n_io; i++)
    ok = sched_setaffinity(h->io_tid[i], sizeof one, &one) == 0;
  if (ok)
    rep->pinned_cpu = h->cpu;
  else if (*at < sizeof rep->rt_note)
    *at += (size_t)snprintf(rep->rt_note + *at, sizeof rep->rt_note - *at,
                            "pinning to CPU %d refused: %s. ", h->cpu, strerror(errno));
}


static void rt_enter(srl_hil *h, srl_hil_report *rep, rt_saved *saved) {
  saved->policy = sched_getscheduler(0);
  sched_getparam(0, &saved->param);
  saved->slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  // 1 ns of timer slack: sleeps end when asked, not up to 50 µs later
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  size_t at = 0;
  pin_cpu(h, rep, saved, &at);
  if (!h->realtime) return;
  struct sched_param sp = {.sched_priority = h->rt_priority};
  if (sched_setscheduler(0, SCHED_FIFO, &sp) == 0)
    rep->sched_fifo = 1;
  else
    at += (size_t)snprintf(rep->rt_note + at, sizeof rep->rt_note - at,
                           "SCHED_FIFO %d refused: %s. ", h->rt_priority, strerror(errno));
  // the connections' I/O threads, one step below the loop
  struct sched_param io = {.sched_priority = h->rt_priority > 1 ? h->rt_priority - 1 : 1};
  int io_ok = 0;
  for (int i = 0; i < h->n_io; i++) io_ok += sched_setscheduler(h->io_tid[i], SCHED_FIFO, &io) == 0;
  rep->io_threads_fifo = io_ok;
  if (io_ok < h->n_io && at < sizeof rep->rt_note)
    at += (size_t)snprintf(rep->rt_note + at, sizeof rep->rt_note - at,
                           "%d of %d I/O threads stayed SCHED_OTHER. ", h->n_io - io_ok, h->n_io);
  if (mlockall(MCL_CURRENT | MCL_FUTURE) == 0) {
    rep->mlocked = 1;
    // touch some stack so the loop never faults it in
    volatile char stack[128 * 1024];
    memset((char *)stack, 0, sizeof stack);
  } else if (at < sizeof rep->rt_note) {
    snprintf(rep->rt_note + at, sizeof rep->rt_note - at, "mlockall refused: %s.", strerror(errno));
  }
}


static void rt_leave(srl_hil *h, const srl_hil_report *rep, const rt_saved *saved) {
  if (rep->sched_fifo) sched_setscheduler(0, saved->policy, &saved->param);
  if (rep->io_threads_fifo) {
    struct sched_param other = {.sched_priority = 0};
    for (int i = 0; i < h->n_io; i++) sched_setscheduler(h->io_tid[i], SCHED_OTHER, &other);
  }
  if (rep->mlocked) munlockall();
  if (rep->pinned_cpu >= 0 && saved->have_mask) {
    sched_setaffinity(0, sizeof saved->mask, &saved->mask);
    for (int i = 0; i < h->n_io; i++)
      sched_setaffinity(h->io_tid[i], sizeof saved->mask, &saved->mask);
  }
  if (saved->slack > 0) prctl(PR_SET_TIMERSLACK, (unsigned long)saved->slack, 0, 0, 0);
}


//---- the loop ----------------------------------------------------------------------------------

static void sleep_until(uint64_t t) {
  struct timespec ts = {(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}


static void count_fallback(srl_hil_report *rep, const srl_wire_status *st, uint32_t flags) {
  rep->latched = (flags & SRL_WIRE_LATCHED) != 0;
  if (!(flags & SRL_WIRE_FALLBACK)) return;
  srl_hil_fallbacks *f = &rep->fallbacks;
  f->total++;
  switch (st->status) {
    case SRL_ACTION_STALE:
      f->stale++;
      break;
    case SRL_ACTION_MALFORMED:
      f->malformed++;
      break;
    case SRL_ACTION_NONFINITE:
      f->nonfinite++;
      break;
    case SRL_ACTION_DEADLINE:
      f->deadline++;
      break;
    case SRL_ACTION_LATCHED:
      f->latched++;
      break;
    default:
      break;
  }
}


static void report_init(srl_hil *h, srl_hil_report *rep, uint64_t period) {
  memset(rep, 0, sizeof *rep);
  snprintf(rep->plant_id, sizeof rep->plant_id, "%s", h->plant_id);
  snprintf(rep->policy_id, sizeof rep->policy_id, "%s", h->policy);
  rep->obs_dim = h->obs_dim;
  rep->act_dim = h->act_dim;
  rep->rate_hz = h->rate_hz;
  rep->duration_s = h->duration_s;
  rep->period_ns = (long long)period;
  rep->deadline_ns = h->deadline_ns;
  srl_lat_reset(&rep->jitter);
  srl_lat_reset(&rep->compute);
  srl_lat_reset(&rep->rtt);
  srl_lat_reset(&rep->plant);
  srl_lat_reset(&rep->policy_compute);
}


int srl_hil_run(srl_hil *h, srl_hil_report *rep) {
  if (!h || !rep) return srl_error(SRL_EINVAL, "srl_hil_run: h and rep needed");
  uint64_t period = (uint64_t)llround(1e9 / h->rate_hz);
  if (period < 1) period = 1;
  report_init(h, rep, period);
  rt_saved saved;
  memset(&saved, 0, sizeof saved);
  rt_enter(h, rep, &saved);

  int A = h->act_dim, rc = SRL_OK, need_reset = 1;
  uint64_t seed = h->seed;
  memset(h->act, 0, sizeof(float) * (size_t)A);  // held until the first reply
  h->stop = 0;
  uint64_t start = now_ns() + period, next = start;
  uint64_t end_at = start + (uint64_t)llround(h->duration_s * 1e9), t_end = start;

  while (!h->stop && next < end_at) {
    sleep_until(next);
    uint64_t wake = now_ns(), jitter = wake > next ? wake - next : 0;
    srl_lat_add(&rep->jitter, jitter);

    // the plant: the previous cycle's action, or a reset
    srl_step step;
    if (!need_reset) {
      if (h->rescale)
        srl_action_rescale(h->env_act, h->act, h->plant->act_space.low, h->plant->act_space.high,
                           A);
      else
        memcpy(h->env_act, h->act, sizeof(float) * (size_t)A);
      rc = srl_env_step(h->plant, h->env_act, h->obs, &step);
      if (rc < 0) break;
      rep->steps++;
      rep->ret_sum += step.reward;
      rep->cost_sum += step.cost;
      if (step.terminated || step.truncated) {
        rep->episodes++;
        need_reset = 1;
      }
    }
    if (need_reset) {
      rc = srl_env_reset(h->plant, seed++, h->obs);
      if (rc < 0) break;
      need_reset = 0;
    }
    uint64_t t_obs = now_ns(), plant_ns = t_obs - wake;
    srl_lat_add(&rep->plant, plant_ns);

    // the policy, before the deadline
    uint64_t deadline = h->deadline_ns > 0 ? t_obs + (uint64_t)h->deadline_ns : next + period;
    srl_wire_status st = {0};
    uint32_t flags = 0;
    uint64_t rtt = 0;
    int got = policy_query(h, t_obs, deadline, &st, &flags, &rtt, rep);
    if (got) {
      srl_lat_add(&rep->rtt, rtt);
      if (st.compute_ns) srl_lat_add(&rep->policy_compute, st.compute_ns);
      count_fallback(rep, &st, flags);
      memcpy(h->act, h->reply, sizeof(float) * (size_t)A);
    } else {
      rep->deadline_misses++;
    }
    t_end = now_ns();
    srl_lat_add(&rep->compute, t_end - wake);
    rep->cycles++;

    // the next wake; whole periods already past are skipped, not run in a burst
    next += period;
    int overrun = t_end > next;
    if (overrun) {
      rep->overruns++;
      while (next <= t_end) {
        next += period;
        rep->skipped++;
      }
    }
    if (overrun || !got) {
      uint64_t budget = h->deadline_ns > 0 ? (uint64_t)h->deadline_ns : period;
      if (jitter * 2 > period)
        rep->miss_wake++;
      else if (got && st.compute_ns * 2 > budget)
        rep->miss_policy++;
      else if (plant_ns * 2 > period)
        rep->miss_plant++;
      else
        rep->miss_transport++;
    }
  }
  rt_leave(h, rep, &saved);
  rep->elapsed_s = rep->cycles ? (double)(t_end - start) * 1e-9 : 0.0;
  if (rc < 0) return srl_error_context(rc, "hil: cycle %lld: ", rep->cycles);
  return SRL_OK;
}


//---- the report --------------------------------------------------------------------------------

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}


int srl_hil_report_json(const srl_hil_report *r, FILE *f, int pretty) {
  const char *nl = pretty ? "\n  " : " ", *end = pretty ? "\n" : "";
  char lat[256];
  fprintf(f, "{%s\"plant\": ", pretty ? "\n  " : "");
  json_str(f, r->plant_id);
  fprintf(f, ",%s\"policy\": ", nl);
  json_str(f, r->policy_id);
  fprintf(f, ",%s\"obs_dim\": %d, \"act_dim\": %d,", nl, r->obs_dim, r->act_dim);
  fprintf(f,
          "%s\"rate_hz\": %.9g, \"duration_s\": %.9g, \"period_ns\": %lld, \"deadline_ns\": %lld,",
          nl, r->rate_hz, r->duration_s, r->period_ns, r->deadline_ns);
  fprintf(f, "%s\"elapsed_s\": %.6f,", nl, r->elapsed_s);
  fprintf(f, "%s\"sched_fifo\": %s, \"io_threads_fifo\": %d, \"mlockall\": %s, \"cpu\": %d, ", nl,
          r->sched_fifo ? "true" : "false", r->io_threads_fifo, r->mlocked ? "true" : "false",
          r->pinned_cpu);
  fprintf(f, "\"rt_note\": ");
  json_str(f, r->rt_note);
  fprintf(f,
          ",%s\"cycles\": %lld, \"skipped\": %lld, \"overruns\": %lld, \"deadline_misses\": "
          "%lld, \"late_replies\": %lld, \"policy_errors\": %lld,",
          nl, r->cycles, r->skipped, r->overruns, r->deadline_misses, r->late_replies,
          r->policy_errors);
  fprintf(f,
          "%s\"miss_causes\": {\"wake\": %lld, \"policy\": %lld, \"plant\": %lld, "
          "\"transport\": %lld},",
          nl, r->miss_wake, r->miss_policy, r->miss_plant, r->miss_transport);
  const srl_hil_fallbacks *fb = &r->fallbacks;
  fprintf(f,
          "%s\"fallbacks\": {\"total\": %lld, \"stale\": %lld, \"malformed\": %lld, "
          "\"nonfinite\": %lld, \"deadline\": %lld, \"latched\": %lld}, \"latched\": %s,",
          nl, fb->total, fb->stale, fb->malformed, fb->nonfinite, fb->deadline, fb->latched,
          r->latched ? "true" : "false");
  fprintf(f, "%s\"episodes\": %lld, \"steps\": %lld, \"return_sum\": %.9g, \"cost_sum\": %.9g,", nl,
          r->episodes, r->steps, r->ret_sum, r->cost_sum);
  const struct {
    const char *name;
    const srl_lat_hist *h;
  } hs[] = {{"wake_jitter_ns", &r->jitter},
            {"compute_ns", &r->compute},
            {"round_trip_ns", &r->rtt},
            {"plant_ns", &r->plant},
            {"policy_compute_ns", &r->policy_compute}};
  for (int i = 0; i < 5; i++) {
    srl_lat_json(hs[i].h, lat, sizeof lat);
    fprintf(f, "%s\"%s\": %s%s", nl, hs[i].name, lat, i < 4 ? "," : "");
  }
  fprintf(f, "%s}\n", end);
  return ferror(f) ? srl_error(SRL_EIO, "hil: writing the report failed") : SRL_OK;
}

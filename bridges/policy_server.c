// policy_server.c: a trained policy answering ACT with ACTION over the wire protocol, with the
// staleness, validity and deadline guards, the fallback action and the latched safe stop of
// policy_server.h; STATS as JSON. Everything a request touches is allocated at creation.
#include "bridges/policy_server.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "algos/offpolicy.h"
#include "algos/onpolicy.h"
#include "bridges/curve.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "envs/env.h"

#define RX_MIN (64 * 1024)  // receive buffer floor: room for any request the server answers
#define STATS_CAP 16384     // the STATS JSON text
#define ERRTEXT_CAP 256     // an ERROR reply's message

typedef struct session {
  uint64_t id;
  uint32_t last_seq;
  int have_seq;   // an ACT of this session was seen
  uint64_t used;  // request counter at last use (least recent is evicted)
} session;

struct srl_policy_server {
  // the policy (one of the two)
  srl_policy *on;
  srl_sac_policy *off;
  int obs_dim, act_dim;
  char env_id[SRL_WIRE_ENV_ID_SIZE];
  char path[4096];

  // configuration
  double rate_hz;
  long long deadline_ns, max_age_ns, period_ns;
  srl_fallback_mode fallback;
  int latch_after;

  // state
  srl_policy_server_stats st;
  session sess[SRL_POLICY_SERVER_SESSIONS];
  uint64_t tick;          // requests of any kind, for session recency
  uint64_t prev_act_ns;   // arrival of the previous ACT (0: none yet)
  uint64_t session_seed;  // session ids: hash of (seed, counter)
  uint64_t sessions_made;
  volatile sig_atomic_t stop;

  // zmq
  void *ctx, *sock;
  char endpoint[256];

  // buffers (one block, below the struct)
  float *obs;         // (obs_dim) decoded observation
  float *act;         // (act_dim) the policy's action
  float *reply;       // (act_dim) the action answered
  float *fb_vec;      // (act_dim) configured fallback vector
  float *hold;        // (act_dim) last ok action
  uint8_t *act_wire;  // (act_dim·4) ACTION frame 0
  uint8_t status_wire[SRL_WIRE_STATUS_SIZE];
  uint8_t info_wire[SRL_WIRE_INFO_SIZE];
  uint8_t *obs_bounds;  // (2·obs_dim·4) HELLO frame 1
  uint8_t *act_bounds;  // (2·act_dim·4) HELLO frame 2
  uint8_t err_code[4];
  char *err_text;    // (ERRTEXT_CAP)
  char *stats_text;  // (STATS_CAP)
  uint8_t *rx;       // (rx_cap) received frames
  size_t rx_cap;
  srl_wire_route route;
};


//---- small helpers -----------------------------------------------------------------------------

const char *srl_action_status_name(uint32_t status) {
  static const char *const names[] = {"ok",         "stale",    "malformed",
                                      "non-finite", "deadline", "latched"};
  return status < 6 ? names[status] : "unknown";
}


int srl_fallback_parse(const char *text, srl_fallback_mode *mode, float *vec, int cap, int *n) {
  *n = 0;
  if (!text || !*text) return srl_error(SRL_EINVAL, "fallback: empty value");
  if (!strcmp(text, "zeros")) {
    *mode = SRL_FALLBACK_ZEROS;
    return SRL_OK;
  }
  if (!strcmp(text, "hold")) {
    *mode = SRL_FALLBACK_HOLD;
    return SRL_OK;
  }
  // v1,v2,...: finite numbers separated by commas
  const char *p = text;
  while (*p) {
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno || !isfinite(v))
      return srl_error(SRL_EINVAL, "fallback '%s': expected zeros, hold or comma-separated numbers",
                       text);
    if (*n >= cap) return srl_error(SRL_ERANGE, "fallback '%s': more than %d values", text, cap);
    vec[(*n)++] = (float)v;
    if (*end == ',' && end[1])
      p = end + 1;
    else if (*end)
      return srl_error(SRL_EINVAL, "fallback '%s': unexpected '%s'", text, end);
    else
      p = end;
  }
  *mode = SRL_FALLBACK_VECTOR;
  return SRL_OK;
}


// resident and peak resident memory in kB from /proc/self/status (read(2): no stdio buffers)
static void read_rss(long *rss_kb, long *hwm_kb) {
  *rss_kb = *hwm_kb = -1;
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = 0;
  const char *p = strstr(buf, "VmRSS:");
  if (p) *rss_kb = strtol(p + 6, NULL, 10);
  p = strstr(buf, "VmHWM:");
  if (p) *hwm_kb = strtol(p + 6, NULL, 10);
}


// the session slot for id (adopted into the least recently used slot when new)
static session *session_get(srl_policy_server *s, uint64_t id) {
  session *lru = &s->sess[0];
  for (int i = 0; i < SRL_POLICY_SERVER_SESSIONS; i++) {
    session *x = &s->sess[i];
    if (x->used && x->id == id) {
      x->used = s->tick;
      return x;
    }
    if (x->used < lru->used) lru = x;
  }
  memset(lru, 0, sizeof *lru);
  lru->id = id;
  lru->used = s->tick;
  return lru;
}


static void session_drop(srl_policy_server *s, uint64_t id) {
  for (int i = 0; i < SRL_POLICY_SERVER_SESSIONS; i++)
    if (s->sess[i].used && s->sess[i].id == id) memset(&s->sess[i], 0, sizeof s->sess[i]);
}


static int policy_act(srl_policy_server *s, float *act, const float *obs) {
  if (s->off) return srl_sac_policy_act(s->off, act, obs, 1, 1);
  return srl_policy_act(s->on, act, obs, 1, 1, NULL);
}


//---- create / destroy ------------------------------------------------------------------------

// load either trainer's policy and note its dimensions and env
static int load_policy(srl_policy_server *s, const char *path, const char *device) {
  if (srl_offpolicy_is_checkpoint(path)) {
    SRL_TRY(srl_sac_policy_load(&s->off, path, device, 1));
    const srl_offpolicy_config *c = srl_sac_policy_config(s->off);
    srl_env *env = NULL;
    // the SAC policy keeps its dimensions private: its env says them
    SRL_TRY(srl_env_create(&env, c->env_id, c->env_cfgs.options[0] ? c->env_cfgs.options : NULL));
    s->obs_dim = env->obs_space.dim;
    s->act_dim = env->act_space.dim;
    srl_env_destroy(env);
    snprintf(s->env_id, sizeof s->env_id, "%s", c->env_id);
    snprintf(s->path, sizeof s->path, "%s", srl_sac_policy_path(s->off));
    return SRL_OK;
  }
  SRL_TRY(srl_policy_load(&s->on, path, device, 1));
  s->obs_dim = s->on->obs_dim;
  s->act_dim = s->on->act_dim;
  snprintf(s->env_id, sizeof s->env_id, "%s", s->on->cfg.env_id);
  snprintf(s->path, sizeof s->path, "%s", s->on->path);
  return SRL_OK;
}


static int bind_socket(srl_policy_server *s, const srl_policy_server_config *cfg) {
  s->ctx = zmq_ctx_new();
  if (!s->ctx) return srl_error(SRL_EIO, "policy server: zmq_ctx_new: %s", zmq_strerror(errno));
  s->sock = zmq_socket(s->ctx, ZMQ_ROUTER);
  if (!s->sock) return srl_error(SRL_EIO, "policy server: zmq_socket: %s", zmq_strerror(errno));
  // a ROUTER (not mandatory) drops replies to peers that went away: sends never block
  SRL_TRY(srl_wire_socket_defaults(s->sock, 0, -1));
  if (cfg->curve_secret)
    SRL_TRY(srl_curve_server_setup(s->ctx, s->sock, cfg->curve_secret, cfg->allow_list));
  if (zmq_bind(s->sock, cfg->bind) != 0)
    return srl_error(SRL_EIO, "policy server: cannot bind %s: %s", cfg->bind, zmq_strerror(errno));
  size_t len = sizeof s->endpoint;
  if (zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, s->endpoint, &len) != 0)
    snprintf(s->endpoint, sizeof s->endpoint, "%s", cfg->bind);
  return SRL_OK;
}


static int check_config(const srl_policy_server_config *cfg) {
  if (cfg->rate_hz < 0 || !isfinite(cfg->rate_hz))
    return srl_error(SRL_EINVAL, "policy server: rate_hz %g must be ≥ 0", cfg->rate_hz);
  if (cfg->deadline_ns < 0 || cfg->max_age_ns < 0 || cfg->latch_after < 0)
    return srl_error(SRL_EINVAL, "policy server: deadline, max_age and latch_after must be ≥ 0");
  if (cfg->fallback != SRL_FALLBACK_ZEROS && cfg->fallback != SRL_FALLBACK_HOLD &&
      cfg->fallback != SRL_FALLBACK_VECTOR)
    return srl_error(SRL_EINVAL, "policy server: unknown fallback mode %d", (int)cfg->fallback);
  if (cfg->curve_secret && !cfg->allow_list)
    return srl_error(SRL_EINVAL, "policy server: CURVE needs an allow-list of client keys");
  return SRL_OK;
}


int srl_policy_server_create(srl_policy_server **out, const char *policy_path,
                             const srl_policy_server_config *cfg) {
  if (!out || !policy_path || !cfg)
    return srl_error(SRL_EINVAL, "srl_policy_server_create: out, policy_path and cfg needed");
  *out = NULL;
  SRL_TRY(check_config(cfg));
  // the policy first: its dimensions size the buffers
  srl_policy_server tmp;
  memset(&tmp, 0, sizeof tmp);
  int rc = load_policy(&tmp, policy_path, cfg->device);
  if (rc < 0) {
    srl_policy_destroy(tmp.on);
    srl_sac_policy_destroy(tmp.off);
    return srl_error_context(rc, "policy server: ");
  }
  int O = tmp.obs_dim, A = tmp.act_dim;
  if (cfg->fallback == SRL_FALLBACK_VECTOR && (!cfg->fallback_vec || cfg->fallback_n != A)) {
    srl_policy_destroy(tmp.on);
    srl_sac_policy_destroy(tmp.off);
    return srl_error(SRL_EINVAL,
                     "policy server: the fallback vector has %d values, the policy "
                     "acts in %d dimensions",
                     cfg->fallback_n, A);
  }

  // one block: the struct, then every buffer
  size_t rx_cap = (size_t)O * 8 + 4096 > RX_MIN ? (size_t)O * 8 + 4096 : RX_MIN;
  size_t total = sizeof(srl_policy_server);
  size_t o_obs = srl_layout_add(&total, sizeof(float) * (size_t)O);
  size_t o_act = srl_layout_add(&total, sizeof(float) * (size_t)A);
  size_t o_reply = srl_layout_add(&total, sizeof(float) * (size_t)A);
  size_t o_fb = srl_layout_add(&total, sizeof(float) * (size_t)A);
  size_t o_hold = srl_layout_add(&total, sizeof(float) * (size_t)A);
  size_t o_aw = srl_layout_add(&total, 4 * (size_t)A);
  size_t o_ob = srl_layout_add(&total, 8 * (size_t)O);
  size_t o_ab = srl_layout_add(&total, 8 * (size_t)A);
  size_t o_err = srl_layout_add(&total, ERRTEXT_CAP);
  size_t o_stats = srl_layout_add(&total, STATS_CAP);
  size_t o_rx = srl_layout_add(&total, rx_cap);
  char *base = srl_calloc(total);
  if (!base) {
    srl_policy_destroy(tmp.on);
    srl_sac_policy_destroy(tmp.off);
    return SRL_ENOMEM;
  }
  srl_policy_server *s = (srl_policy_server *)(void *)base;
  *s = tmp;
  s->obs = (float *)(void *)(base + o_obs);
  s->act = (float *)(void *)(base + o_act);
  s->reply = (float *)(void *)(base + o_reply);
  s->fb_vec = (float *)(void *)(base + o_fb);
  s->hold = (float *)(void *)(base + o_hold);
  s->act_wire = (uint8_t *)(base + o_aw);
  s->obs_bounds = (uint8_t *)(base + o_ob);
  s->act_bounds = (uint8_t *)(base + o_ab);
  s->err_text = base + o_err;
  s->stats_text = base + o_stats;
  s->rx = (uint8_t *)(base + o_rx);
  s->rx_cap = rx_cap;

  s->rate_hz = cfg->rate_hz;
  s->period_ns = cfg->rate_hz > 0 ? (long long)(1e9 / cfg->rate_hz) : 0;
  s->deadline_ns = cfg->deadline_ns;
  s->max_age_ns = cfg->max_age_ns;
  s->fallback = cfg->fallback;
  s->latch_after = cfg->latch_after;
  if (cfg->fallback == SRL_FALLBACK_VECTOR)
    memcpy(s->fb_vec, cfg->fallback_vec, sizeof(float) * (size_t)A);
  srl_lat_reset(&s->st.compute);
  s->session_seed = srl_hash64(srl_wire_now_ns() ^ ((uint64_t)getpid() << 32));

  // HELLO's bound frames never change: encode them once
  for (int i = 0; i < O; i++) {
    float lo = -INFINITY, hi = INFINITY;
    srl_wire_put_f32(s->obs_bounds + 4 * (size_t)i, &lo, 1);
    srl_wire_put_f32(s->obs_bounds + 4 * ((size_t)O + i), &hi, 1);
  }
  for (int i = 0; i < A; i++) {
    float lo = -1.0f, hi = 1.0f;
    srl_wire_put_f32(s->act_bounds + 4 * (size_t)i, &lo, 1);
    srl_wire_put_f32(s->act_bounds + 4 * ((size_t)A + i), &hi, 1);
  }

  // warm the policy once so the first request does not pay for lazy initialisation
  rc = policy_act(s, s->act, s->obs);
  if (rc == 0 && cfg->bind) rc = bind_socket(s, cfg);
  if (rc < 0) {
    srl_policy_server_destroy(s);
    return rc;
  }
  *out = s;
  return SRL_OK;
}


void srl_policy_server_destroy(srl_policy_server *s) {
  if (!s) return;
  if (s->sock) zmq_close(s->sock);
  if (s->ctx) zmq_ctx_term(s->ctx);
  srl_policy_destroy(s->on);
  srl_sac_policy_destroy(s->off);
  srl_free(s);
}


const char *srl_policy_server_endpoint(const srl_policy_server *s) {
  return s->endpoint;
}
int srl_policy_server_obs_dim(const srl_policy_server *s) {
  return s->obs_dim;
}
int srl_policy_server_act_dim(const srl_policy_server *s) {
  return s->act_dim;
}
const char *srl_policy_server_env_id(const srl_policy_server *s) {
  return s->env_id;
}
const srl_policy_server_stats *srl_policy_server_get_stats(const srl_policy_server *s) {
  return &s->st;
}


//---- the ACT logic ---------------------------------------------------------------------------

// serial-number order of u32 sequence numbers: a is newer than b
static int seq_newer(uint32_t a, uint32_t b) {
  return (int32_t)(a - b) > 0;
}


void srl_policy_server_act(srl_policy_server *s, float *act, srl_wire_status *st, uint32_t *flags,
                           const void *obs, size_t obs_bytes, uint64_t session_id, uint32_t seq,
                           uint64_t t_ns, uint64_t now_ns) {
  srl_policy_server_stats *c = &s->st;
  int O = s->obs_dim, A = s->act_dim;
  c->requests++;
  s->tick++;
  st->compute_ns = 0;
  *flags = 0;

  // arrival pattern (the client's control rate)
  if (s->period_ns > 0 && s->prev_act_ns && now_ns > s->prev_act_ns &&
      (now_ns - s->prev_act_ns) * 2 > (uint64_t)s->period_ns * 3)
    c->late_requests++;
  s->prev_act_ns = now_ns;

  // the seq order is tracked for every ACT, whatever its fate
  session *ss = session_get(s, session_id);
  int seq_stale = ss->have_seq && !seq_newer(seq, ss->last_seq);
  if (!seq_stale) {
    ss->last_seq = seq;
    ss->have_seq = 1;
  }

  uint32_t status = SRL_ACTION_OK;
  if (c->is_latched) {
    status = SRL_ACTION_LATCHED;
    c->latched++;
  } else if (!obs || obs_bytes != sizeof(float) * (size_t)O) {
    status = SRL_ACTION_MALFORMED;
    c->malformed++;
  } else if (seq_stale) {
    status = SRL_ACTION_STALE;
    c->stale_seq++;
  } else if (s->max_age_ns > 0 && t_ns != 0 &&
             (now_ns > t_ns ? now_ns - t_ns : t_ns - now_ns) > (uint64_t)s->max_age_ns) {
    status = SRL_ACTION_STALE;
    c->stale_age++;
  } else {
    srl_wire_get_f32(s->obs, (const uint8_t *)obs, (size_t)O);
    int finite = 1;
    for (int i = 0; i < O; i++) finite &= isfinite(s->obs[i]) != 0;
    if (!finite) {
      status = SRL_ACTION_NONFINITE;
      c->nonfinite++;
    } else {
      uint64_t t0 = srl_wire_now_ns();
      int rc = policy_act(s, s->act, s->obs);
      uint64_t dt = srl_wire_now_ns() - t0;
      st->compute_ns = dt;
      srl_lat_add(&c->compute, dt);
      for (int i = 0; rc == 0 && i < A; i++)
        if (!isfinite(s->act[i])) rc = SRL_ENONFINITE;
      if (rc < 0) {
        // the policy itself failed or produced a non-finite action: never pass it on
        status = SRL_ACTION_NONFINITE;
        c->nonfinite++;
      } else if (s->deadline_ns > 0 && dt > (uint64_t)s->deadline_ns) {
        status = SRL_ACTION_DEADLINE;
        c->deadline++;
      }
    }
  }

  if (status == SRL_ACTION_OK) {
    c->ok++;
    c->consecutive_misses = 0;
    memcpy(s->hold, s->act, sizeof(float) * (size_t)A);
    memcpy(act, s->act, sizeof(float) * (size_t)A);
  } else {
    c->fallbacks++;
    c->consecutive_misses++;
    *flags |= SRL_WIRE_FALLBACK;
    if (s->fallback == SRL_FALLBACK_HOLD)
      memcpy(act, s->hold, sizeof(float) * (size_t)A);
    else if (s->fallback == SRL_FALLBACK_VECTOR)
      memcpy(act, s->fb_vec, sizeof(float) * (size_t)A);
    else
      memset(act, 0, sizeof(float) * (size_t)A);
    if (!c->is_latched && s->latch_after > 0 && c->consecutive_misses >= (uint32_t)s->latch_after) {
      c->is_latched = 1;
      c->latches++;
    }
  }
  if (c->is_latched) *flags |= SRL_WIRE_LATCHED;
  st->status = status;
  st->consecutive_misses = c->consecutive_misses;
}


void srl_policy_server_reset(srl_policy_server *s) {
  s->st.is_latched = 0;
  s->st.consecutive_misses = 0;
  s->st.resets++;
  s->prev_act_ns = 0;
}


//---- STATS -----------------------------------------------------------------------------------

// append to buf at *at (kept ≤ cap − 1); one printf per field keeps glibc's printf off its
// heap path (formats with many arguments make it allocate a work buffer)
static void put(char *buf, size_t cap, size_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t cap, size_t *at, const char *fmt, ...) {
  if (*at >= cap) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *at, cap - *at, fmt, ap);
  va_end(ap);
  if (n > 0) *at += (size_t)n < cap - *at ? (size_t)n : cap - *at - 1;
}


int srl_policy_server_stats_json(srl_policy_server *s, char *buf, size_t cap) {
  if (!buf || cap < 2) return 0;
  const srl_policy_server_stats *c = &s->st;
  static const char *const modes[] = {"zeros", "hold", "vector"};
  size_t at = 0;
  buf[0] = 0;
  // the path is printed as a JSON string: escape quotes and backslashes
  put(buf, cap, &at, "{\"policy\": \"");
  for (const char *p = s->path; *p && at + 3 < cap; p++) {
    if (*p == '"' || *p == '\\') buf[at++] = '\\';
    buf[at++] = (unsigned char)*p < 0x20 ? '?' : *p;
  }
  buf[at] = 0;
  put(buf, cap, &at, "\", \"env\": \"%s\"", s->env_id);
  put(buf, cap, &at, ", \"obs_dim\": %d, \"act_dim\": %d", s->obs_dim, s->act_dim);
  put(buf, cap, &at, ", \"rate_hz\": %.6g", s->rate_hz);
  put(buf, cap, &at, ", \"deadline_ns\": %lld", s->deadline_ns);
  put(buf, cap, &at, ", \"max_age_ns\": %lld", s->max_age_ns);
  put(buf, cap, &at, ", \"fallback\": \"%s\"", modes[s->fallback]);
  put(buf, cap, &at, ", \"latch_after\": %d", s->latch_after);
  const struct {
    const char *name;
    long long v;
  } n[] = {{"requests", c->requests},
           {"ok", c->ok},
           {"fallbacks", c->fallbacks},
           {"stale_seq", c->stale_seq},
           {"stale_age", c->stale_age},
           {"malformed", c->malformed},
           {"nonfinite", c->nonfinite},
           {"deadline", c->deadline},
           {"latched_replies", c->latched},
           {"latches", c->latches},
           {"resets", c->resets},
           {"consecutive_misses", c->consecutive_misses},
           {"late_requests", c->late_requests},
           {"hellos", c->hellos},
           {"stats", c->stats},
           {"heartbeats", c->heartbeats},
           {"closes", c->closes},
           {"errors", c->errors}};
  for (size_t i = 0; i < sizeof n / sizeof *n; i++)
    put(buf, cap, &at, ", \"%s\": %lld", n[i].name, n[i].v);
  put(buf, cap, &at, ", \"latched\": %s", c->is_latched ? "true" : "false");
  char lat[256];
  srl_lat_json(&c->compute, lat, sizeof lat);
  put(buf, cap, &at, ", \"compute_ns\": %s", lat);
  long rss, hwm;
  read_rss(&rss, &hwm);
  put(buf, cap, &at, ", \"rss_kb\": %ld", rss);
  put(buf, cap, &at, ", \"rss_peak_kb\": %ld}", hwm);
  return (int)at;
}


//---- one request -----------------------------------------------------------------------------

static void reply_error(srl_policy_server *s, srl_wire_header *r, const void **frames,
                        size_t *sizes, int code, const char *text) {
  s->st.errors++;
  r->type = SRL_WIRE_ERROR;
  srl_wire_put_u32(s->err_code, (uint32_t)code);
  snprintf(s->err_text, ERRTEXT_CAP, "%s", text);
  r->n_frames = 2;
  frames[0] = s->err_code;
  sizes[0] = 4;
  frames[1] = s->err_text;
  sizes[1] = strlen(s->err_text);
}


static void reply_stats(srl_policy_server *s, srl_wire_header *r, const void **frames,
                        size_t *sizes) {
  int n = srl_policy_server_stats_json(s, s->stats_text, STATS_CAP);
  r->type = SRL_WIRE_STATS;
  r->n_frames = 1;
  frames[0] = s->stats_text;
  sizes[0] = n < 0 ? 0 : (size_t)n >= STATS_CAP ? STATS_CAP - 1 : (size_t)n;
}


// the ACTION reply of one ACT (obs NULL: the message had no usable observation frame)
static void reply_act(srl_policy_server *s, srl_wire_header *r, const void **frames, size_t *sizes,
                      const srl_wire_header *req, const void *obs, size_t bytes, uint64_t now) {
  srl_wire_status st;
  uint32_t flags;
  srl_policy_server_act(s, s->reply, &st, &flags, obs, bytes, req->session, req->seq, req->t_ns,
                        now);
  srl_wire_put_f32(s->act_wire, s->reply, (size_t)s->act_dim);
  srl_wire_status_encode(s->status_wire, &st);
  r->type = SRL_WIRE_ACTION;
  r->flags = flags;
  r->n_frames = 2;
  frames[0] = s->act_wire;
  sizes[0] = 4 * (size_t)s->act_dim;
  frames[1] = s->status_wire;
  sizes[1] = SRL_WIRE_STATUS_SIZE;
}


static void handle_at(srl_policy_server *s, const srl_wire_msg *m, uint64_t now, srl_wire_header *r,
                      const void **frames, size_t *sizes) {
  *r = srl_wire_header_make(SRL_WIRE_ERROR, m->h.seq, m->h.session);
  for (int i = 0; i < SRL_WIRE_MAX_FRAMES; i++) frames[i] = NULL, sizes[i] = 0;
  switch (m->h.type) {
    case SRL_WIRE_ACT:
      reply_act(s, r, frames, sizes, &m->h, m->h.n_frames >= 1 ? m->frame[0] : NULL,
                m->h.n_frames >= 1 ? m->size[0] : 0, now);
      break;
    case SRL_WIRE_HELLO: {
      s->st.hellos++;
      s->tick++;
      uint64_t id = 0;
      while (!id) id = srl_hash64(s->session_seed ^ srl_hash64(++s->sessions_made));
      session_get(s, id);
      srl_wire_info info;
      memset(&info, 0, sizeof info);
      info.obs_dim = s->obs_dim;
      info.act_dim = s->act_dim;
      info.dt = s->rate_hz > 0 ? (float)(1.0 / s->rate_hz) : 0.0f;
      snprintf(info.env_id, sizeof info.env_id, "%s", s->env_id);
      info.server_time_ns = now;
      srl_wire_info_encode(s->info_wire, &info);
      r->type = SRL_WIRE_HELLO;
      r->session = id;
      r->n_frames = 3;
      frames[0] = s->info_wire;
      sizes[0] = SRL_WIRE_INFO_SIZE;
      frames[1] = s->obs_bounds;
      sizes[1] = 8 * (size_t)s->obs_dim;
      frames[2] = s->act_bounds;
      sizes[2] = 8 * (size_t)s->act_dim;
      break;
    }
    case SRL_WIRE_RESET:
      // clear the safe stop; the answer is the counters after it
      srl_policy_server_reset(s);
      reply_stats(s, r, frames, sizes);
      break;
    case SRL_WIRE_STATS:
      s->st.stats++;
      reply_stats(s, r, frames, sizes);
      break;
    case SRL_WIRE_HEARTBEAT:
      s->st.heartbeats++;
      r->type = SRL_WIRE_HEARTBEAT;
      break;
    case SRL_WIRE_CLOSE:
      s->st.closes++;
      session_drop(s, m->h.session);
      r->type = SRL_WIRE_CLOSE;
      break;
    default: {
      char text[128];
      snprintf(text, sizeof text,
               "policy server: %s is not served here (ACT, HELLO, RESET, STATS, HEARTBEAT, "
               "CLOSE are)",
               srl_wire_type_name(m->h.type));
      reply_error(s, r, frames, sizes, SRL_EUNSUPPORTED, text);
    }
  }
  for (uint32_t i = 0; i < r->n_frames; i++) r->sizes[i] = (uint32_t)sizes[i];
}


void srl_policy_server_handle(srl_policy_server *s, const srl_wire_msg *req, srl_wire_header *reply,
                              const void *frames[SRL_WIRE_MAX_FRAMES],
                              size_t sizes[SRL_WIRE_MAX_FRAMES]) {
  handle_at(s, req, srl_wire_now_ns(), reply, frames, sizes);
}


//---- the socket ------------------------------------------------------------------------------

// receive and answer one message that is already waiting (or wait up to timeout_ms): 1 when a
// message was answered, 0 when none came, negative on a socket failure
static int serve_one(srl_policy_server *s, int timeout_ms) {
  srl_wire_msg m;
  int rc = srl_wire_recv(s->sock, &s->route, &m, s->rx, s->rx_cap, timeout_ms);
  if (rc == SRL_ETIMEOUT || rc == SRL_EINTERRUPTED) return 0;
  uint64_t now = srl_wire_now_ns();
  srl_wire_header r;
  const void *frames[SRL_WIRE_MAX_FRAMES];
  size_t sizes[SRL_WIRE_MAX_FRAMES];
  if (rc == SRL_EFORMAT && m.header_ok && m.h.type == SRL_WIRE_ACT) {
    // an ACT whose observation frames are wrong: the fallback, counted as malformed
    for (int i = 0; i < SRL_WIRE_MAX_FRAMES; i++) frames[i] = NULL, sizes[i] = 0;
    r = srl_wire_header_make(SRL_WIRE_ACTION, m.h.seq, m.h.session);
    reply_act(s, &r, frames, sizes, &m.h, NULL, 0, now);
    for (uint32_t i = 0; i < r.n_frames; i++) r.sizes[i] = (uint32_t)sizes[i];
  } else if (rc == SRL_EFORMAT) {
    s->st.errors++;
    if (s->route.n < 1) return 1;  // nobody to answer
    srl_wire_send_error(s->sock, &s->route, &m, SRL_EFORMAT, srl_errmsg());
    return 1;
  } else if (rc < 0) {
    return rc;
  } else {
    handle_at(s, &m, now, &r, frames, sizes);
  }
  // a peer that vanished or a full pipe loses its reply, never the server
  srl_wire_send(s->sock, &s->route, &r, frames);
  return 1;
}


int srl_policy_server_poll(srl_policy_server *s, int timeout_ms) {
  if (!s->sock) return srl_error(SRL_ESTATE, "policy server: no socket (created without bind)");
  int n = 0, rc;
  // the first message may be waited for; whatever else is queued is answered without waiting
  rc = serve_one(s, timeout_ms < 0 ? 100 : timeout_ms);
  while (rc == 0 && timeout_ms < 0 && !s->stop) rc = serve_one(s, 100);
  while (rc == 1) {
    n++;
    rc = serve_one(s, 0);
  }
  return rc < 0 ? rc : n;
}


int srl_policy_server_run(srl_policy_server *s, volatile int *stop) {
  s->stop = 0;
  while (!s->stop && !(stop && *stop)) {
    int rc = srl_policy_server_poll(s, 100);
    if (rc < 0) return rc;
  }
  return SRL_OK;
}


void srl_policy_server_request_stop(srl_policy_server *s) {
  s->stop = 1;
}

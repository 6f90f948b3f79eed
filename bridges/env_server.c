// env_server.c: the env server: a ROUTER socket, a table of sessions (one env each, with its
// last reply kept for retried requests), and the request handler that turns HELLO, RESET, STEP,
// CLOSE, HEARTBEAT and STATS into replies, and everything else into ERROR replies.
#include "bridges/env_server.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bridges/curve.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "envs/env.h"
#include "envs/wrappers.h"

#define DEFAULT_IDLE_S 60.0
#define DEFAULT_SESSIONS 64
#define DEFAULT_IMAGE 224
#define MAX_SESSIONS 4096
#define ERR_TEXT 512           // bytes of an ERROR reply's message
#define STATS_JSON 1024        // bytes of a STATS reply
#define SWEEP_NS 250000000ull  // idle sessions are looked for at most this often
#define HIST_SUB 8             // latency histogram: sub-buckets per power of two
#define HIST_N (HIST_SUB * 48)
#define POLL_BATCH 1024         // messages answered per srl_env_server_poll before sweeping
#define MAX_MESSAGE (16 << 20)  // bytes of the largest message part a peer may send

// where a session's episode stands
enum { PHASE_NEW, PHASE_RUNNING, PHASE_ENDED };

typedef struct session {
  uint64_t id;  // 0: a free slot
  srl_env *env;
  uint32_t last_seq;  // the newest request seq seen (HELLO's included)
  int has_reply;      // reply answers last_seq and can be sent again
  int phase;
  long long episode_steps;
  uint64_t last_active_ns;

  // the last reply: header and frames in the buffers below
  srl_env_server_reply reply;
  uint8_t *obs;    // (obs_dim·4) float32 little-endian
  uint8_t *terms;  // (16) reward, cost, raw_cost, x_velocity
  uint8_t *image;  // (img_h·img_w·3) or NULL
  uint8_t *err;    // (4 + ERR_TEXT) code, message
} session;

struct srl_env_server {
  char *env_id, *options;  // copies of the config's strings
  double idle_timeout_s;
  void *ctx, *sock;
  char endpoint[256];

  int obs_dim, act_dim, max_steps;
  int img_w, img_h;                  // 0 when no images are sent
  srl_env *spare;                    // the probe env, handed to the first session
  uint8_t *obs_bounds, *act_bounds;  // encoded low then high: (2·obs_dim·4), (2·act_dim·4)
  uint8_t info[SRL_WIRE_INFO_SIZE];  // the HELLO info (server_time_ns refreshed per HELLO)
  float *obs_f, *act_f;              // (obs_dim), (act_dim) scratch

  session *sessions;
  int max_sessions, n_open;
  uint64_t id_state;  // session ids: a hash chain seeded from the clock and pid
  uint64_t next_sweep_ns;

  // receiving and answering
  srl_wire_route route;
  srl_wire_msg req;
  uint8_t *rx;
  size_t rx_cap;
  srl_env_server_reply scratch;  // replies that are not cached
  uint8_t scratch_err[4 + ERR_TEXT];
  char stats_json[STATS_JSON];

  srl_env_server_stats stats;
  uint32_t hist[HIST_N];  // RESET/STEP handling time, log buckets of ns
  long long hist_n;
};


//---- latency histogram ----------------------------------------------------------------------

static int hist_bucket(uint64_t ns) {
  if (ns < 2) return 0;
  int msb = 63 - __builtin_clzll(ns);
  int sub = msb >= 3 ? (int)((ns >> (msb - 3)) & (HIST_SUB - 1)) : 0;
  int b = msb * HIST_SUB + sub;
  return b < HIST_N ? b : HIST_N - 1;
}


// the middle of a bucket, in µs
static double hist_value_us(int b) {
  int msb = b / HIST_SUB, sub = b % HIST_SUB;
  return ldexp(1.0 + (sub + 0.5) / HIST_SUB, msb) * 1e-3;
}


static double hist_quantile_us(const srl_env_server *s, double q) {
  if (!s->hist_n) return 0.0;
  long long want = (long long)ceil(q * (double)s->hist_n), seen = 0;
  if (want < 1) want = 1;
  for (int b = 0; b < HIST_N; b++) {
    seen += s->hist[b];
    if (seen >= want) return hist_value_us(b);
  }
  return hist_value_us(HIST_N - 1);
}


//---- sessions -------------------------------------------------------------------------------

static session *find_session(srl_env_server *s, uint64_t id) {
  if (!id) return NULL;
  for (int i = 0; i < s->max_sessions; i++)
    if (s->sessions[i].id == id) return &s->sessions[i];
  return NULL;
}


// a fresh nonzero id no open session has; ids of a restarted server differ (clock-seeded)
static uint64_t new_session_id(srl_env_server *s) {
  for (;;) {
    s->id_state = srl_hash64(s->id_state + 0x9e3779b97f4a7c15ull);
    if (s->id_state && !find_session(s, s->id_state)) return s->id_state;
  }
}


static void end_session(srl_env_server *s, session *ss) {
  if (!ss->id) return;
  if (!s->spare)
    s->spare = ss->env;  // kept for the next HELLO: creating an env can be slow
  else
    srl_env_destroy(ss->env);
  ss->env = NULL;
  ss->id = 0;
  ss->has_reply = 0;
  s->n_open--;
}


int srl_env_server_expire(srl_env_server *s, uint64_t now_ns) {
  if (!s || s->idle_timeout_s < 0) return 0;
  uint64_t idle_ns = (uint64_t)(s->idle_timeout_s * 1e9);
  int n = 0;
  for (int i = 0; i < s->max_sessions; i++) {
    session *ss = &s->sessions[i];
    if (ss->id && now_ns > ss->last_active_ns && now_ns - ss->last_active_ns > idle_ns) {
      end_session(s, ss);
      n++;
    }
  }
  s->stats.expired += n;
  return n;
}


//---- replies ----------------------------------------------------------------------------------

// an ERROR reply into buf (4 + ERR_TEXT bytes) answering req
static void make_error(srl_env_server_reply *r, uint8_t *buf, const srl_wire_msg *req, int code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void make_error(srl_env_server_reply *r, uint8_t *buf, const srl_wire_msg *req, int code,
                       const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf((char *)buf + 4, ERR_TEXT, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (n >= ERR_TEXT) n = ERR_TEXT - 1;
  srl_wire_put_u32(buf, (uint32_t)(int32_t)code);
  r->h = srl_wire_header_make(SRL_WIRE_ERROR, req->h.seq, req->h.session);
  r->h.n_frames = 2;
  r->h.sizes[0] = 4;
  r->h.sizes[1] = (uint32_t)n;
  r->frame[0] = buf;
  r->frame[1] = buf + 4;
}


// an uncached ERROR reply
static void scratch_error(srl_env_server *s, srl_env_server_reply *reply, const srl_wire_msg *req,
                          int code, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void scratch_error(srl_env_server *s, srl_env_server_reply *reply, const srl_wire_msg *req,
                          int code, const char *fmt, ...) {
  char text[ERR_TEXT];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  s->stats.errors++;
  make_error(&s->scratch, s->scratch_err, req, code, "%s", text);
  *reply = s->scratch;
}


// a reply with no frames
static void make_empty(srl_env_server_reply *r, srl_wire_type type, const srl_wire_msg *req) {
  r->h = srl_wire_header_make(type, req->h.seq, req->h.session);
  for (int i = 0; i < SRL_WIRE_MAX_FRAMES; i++) r->frame[i] = NULL;
}


// the session's RESULT from the env's observation and step (NULL after a reset)
static void make_result(srl_env_server *s, session *ss, const srl_wire_msg *req,
                        const srl_step *st) {
  srl_env_server_reply *r = &ss->reply;
  r->h = srl_wire_header_make(SRL_WIRE_RESULT, req->h.seq, ss->id);
  srl_wire_put_f32(ss->obs, s->obs_f, (size_t)s->obs_dim);
  float terms[4] = {0};
  if (st) {
    terms[0] = st->reward;
    terms[1] = st->cost;
    terms[2] = st->info.raw_cost;
    terms[3] = st->info.x_velocity;
    r->h.flags =
        (st->terminated ? SRL_WIRE_TERMINATED : 0) | (st->truncated ? SRL_WIRE_TRUNCATED : 0) |
        (st->info.diverged ? SRL_WIRE_DIVERGED : 0) | (st->info.goal_met ? SRL_WIRE_GOAL_MET : 0);
  }
  srl_wire_put_f32(ss->terms, terms, 4);
  r->h.n_frames = 2;
  r->h.sizes[0] = (uint32_t)s->obs_dim * 4;
  r->h.sizes[1] = 16;
  r->frame[0] = ss->obs;
  r->frame[1] = ss->terms;
  r->frame[2] = r->frame[3] = NULL;

  // the image when asked for and the env draws it; a failed render leaves it out
  if ((req->h.flags & SRL_WIRE_WANT_IMAGE) && s->img_w > 0 &&
      srl_env_render(ss->env, ss->image, s->img_w, s->img_h, NULL) == SRL_OK) {
    r->h.n_frames = 3;
    r->h.sizes[2] = (uint32_t)(s->img_w * s->img_h * 3);
    r->frame[2] = ss->image;
  }
}


// the session's cached ERROR reply
static void session_error(srl_env_server *s, session *ss, const srl_wire_msg *req, int code,
                          const char *what) {
  s->stats.errors++;
  make_error(&ss->reply, ss->err, req, code, "%s: %s", what, srl_errmsg());
  ss->reply.h.session = ss->id;
}


//---- request handling -------------------------------------------------------------------------

static void handle_hello(srl_env_server *s, const srl_wire_msg *req, srl_env_server_reply *reply,
                         uint64_t now) {
  s->stats.hellos++;
  if (req->h.n_frames > 1) {
    scratch_error(s, reply, req, SRL_EFORMAT,
                  "HELLO request carries at most a client name (%u frames)", req->h.n_frames);
    return;
  }
  if (req->h.session) {
    scratch_error(s, reply, req, SRL_EFORMAT, "HELLO request must carry session 0, not %016llx",
                  (unsigned long long)req->h.session);
    return;
  }

  // a free slot, after ending idle sessions if the table is full
  session *ss = NULL;
  for (int i = 0; !ss && i < s->max_sessions; i++)
    if (!s->sessions[i].id) ss = &s->sessions[i];
  if (!ss && srl_env_server_expire(s, now) > 0)
    for (int i = 0; !ss && i < s->max_sessions; i++)
      if (!s->sessions[i].id) ss = &s->sessions[i];
  if (!ss) {
    scratch_error(s, reply, req, SRL_ERANGE,
                  "server full: %d sessions are open (CLOSE unused ones)", s->max_sessions);
    return;
  }

  srl_env *env = s->spare;
  s->spare = NULL;
  if (!env && srl_env_create(&env, s->env_id, s->options) < 0) {
    scratch_error(s, reply, req, SRL_EIO, "HELLO: creating %s: %s", s->env_id, srl_errmsg());
    return;
  }
  ss->env = env;
  ss->id = new_session_id(s);
  ss->last_seq = req->h.seq;
  ss->has_reply = 0;
  ss->phase = PHASE_NEW;
  ss->episode_steps = 0;
  ss->last_active_ns = now;
  s->n_open++;

  // info, observation bounds, action bounds
  srl_wire_put_u64(s->info + 96, srl_wire_now_ns());
  make_empty(reply, SRL_WIRE_HELLO, req);
  reply->h.session = ss->id;
  reply->h.n_frames = 3;
  reply->h.sizes[0] = SRL_WIRE_INFO_SIZE;
  reply->h.sizes[1] = (uint32_t)s->obs_dim * 8;
  reply->h.sizes[2] = (uint32_t)s->act_dim * 8;
  reply->frame[0] = s->info;
  reply->frame[1] = s->obs_bounds;
  reply->frame[2] = s->act_bounds;
}


static void handle_reset(srl_env_server *s, session *ss, const srl_wire_msg *req) {
  s->stats.resets++;
  uint64_t seed = srl_wire_get_u64(req->frame[0]);
  int rc = srl_env_reset(ss->env, seed, s->obs_f);
  if (rc < 0) {
    ss->phase = PHASE_NEW;
    {
      session_error(s, ss, req, rc, "RESET");
      return;
    }
  }
  ss->phase = PHASE_RUNNING;
  ss->episode_steps = 0;
  make_result(s, ss, req, NULL);
}


static void handle_step(srl_env_server *s, session *ss, const srl_wire_msg *req) {
  s->stats.steps++;
  char what[96];
  if (req->size[0] != (size_t)s->act_dim * 4) {
    snprintf(what, sizeof what, "STEP action of act_dim %d", s->act_dim);
    srl_wire_expect(req, 0, (size_t)s->act_dim * 4, what);
    {
      session_error(s, ss, req, SRL_EFORMAT, "STEP");
      return;
    }
  }
  if (ss->phase == PHASE_NEW) {
    srl_error(SRL_ESTATE, "the episode has not been RESET");
    {
      session_error(s, ss, req, SRL_ESTATE, "STEP");
      return;
    }
  }
  if (ss->phase == PHASE_ENDED) {
    srl_error(SRL_ESTATE, "the episode ended after step %lld; RESET first", ss->episode_steps);
    {
      session_error(s, ss, req, SRL_ESTATE, "STEP");
      return;
    }
  }
  srl_wire_get_f32(s->act_f, req->frame[0], (size_t)s->act_dim);
  srl_step st;
  int rc = srl_env_step(ss->env, s->act_f, s->obs_f, &st);
  if (rc < 0) {
    // a refused action (non-finite) leaves the episode as it was; an env failure ends it
    if (rc != SRL_ENONFINITE) ss->phase = PHASE_NEW;
    {
      session_error(s, ss, req, rc, "STEP");
      return;
    }
  }
  ss->episode_steps++;
  if (st.terminated || st.truncated) ss->phase = PHASE_ENDED;
  make_result(s, ss, req, &st);
}


// the STATS reply's JSON
static void make_stats(srl_env_server *s, srl_env_server_reply *reply, const srl_wire_msg *req) {
  srl_env_server_stats st;
  srl_env_server_get_stats(s, &st);
  int n = snprintf(s->stats_json, sizeof s->stats_json,
                   "{\"env\": \"%s\", \"sessions\": %d, \"max_sessions\": %d, \"requests\": %lld, "
                   "\"hellos\": %lld, \"resets\": %lld, \"steps\": %lld, \"closes\": %lld, "
                   "\"heartbeats\": %lld, \"replayed\": %lld, \"errors\": %lld, "
                   "\"malformed\": %lld, \"expired\": %lld, \"step_p50_us\": %.3f, "
                   "\"step_p99_us\": %.3f}",
                   s->env_id, st.sessions, s->max_sessions, st.requests, st.hellos, st.resets,
                   st.steps, st.closes, st.heartbeats, st.replayed, st.errors, st.malformed,
                   st.expired, st.step_p50_us, st.step_p99_us);
  if (n < 0) n = 0;
  if (n >= (int)sizeof s->stats_json) n = (int)sizeof s->stats_json - 1;
  make_empty(reply, SRL_WIRE_STATS, req);
  reply->h.n_frames = 1;
  reply->h.sizes[0] = (uint32_t)n;
  reply->frame[0] = s->stats_json;
}


void srl_env_server_handle(srl_env_server *s, const srl_wire_msg *req,
                           srl_env_server_reply *reply) {
  uint64_t t0 = srl_wire_now_ns();
  s->stats.requests++;
  const srl_wire_header *h = &req->h;
  switch (h->type) {
    case SRL_WIRE_HELLO: {
      handle_hello(s, req, reply, t0);
      return;
    }
    case SRL_WIRE_STATS:
      if (h->n_frames) {
        scratch_error(s, reply, req, SRL_EFORMAT, "STATS request carries no frames");
        return;
      }
      {
        make_stats(s, reply, req);
        return;
      }
    case SRL_WIRE_RESET:
    case SRL_WIRE_STEP:
    case SRL_WIRE_CLOSE:
    case SRL_WIRE_HEARTBEAT:
      break;
    default: {
      scratch_error(s, reply, req, SRL_EUNSUPPORTED,
                    "the env server does not take %s messages (it answers HELLO, RESET, "
                    "STEP, CLOSE, HEARTBEAT and STATS)",
                    srl_wire_type_name(h->type));
      return;
    }
  }

  session *ss = find_session(s, h->session);
  if (!ss) {
    scratch_error(s, reply, req, SRL_ENOTFOUND,
                  "unknown session %016llx (closed, idle for over %g s, or opened on a "
                  "server that has since restarted): send HELLO",
                  (unsigned long long)h->session, s->idle_timeout_s);
    return;
  }
  ss->last_active_ns = t0;

  if (h->type == SRL_WIRE_HEARTBEAT) {
    s->stats.heartbeats++;
    {
      make_empty(reply, SRL_WIRE_HEARTBEAT, req);
      return;
    }
  }
  if (h->type == SRL_WIRE_CLOSE) {
    s->stats.closes++;
    end_session(s, ss);
    {
      make_empty(reply, SRL_WIRE_CLOSE, req);
      return;
    }
  }

  // RESET and STEP: a repeat of the last seq gets the last reply, an older seq is refused
  if (h->seq == ss->last_seq) {
    if (ss->has_reply) {
      s->stats.replayed++;
      *reply = ss->reply;
      return;
    }
  }
  if ((int32_t)(h->seq - ss->last_seq) <= 0) {
    scratch_error(s, reply, req, SRL_ESTATE,
                  "%s seq %u is not newer than the session's last seq %u (out of order)",
                  srl_wire_type_name(h->type), h->seq, ss->last_seq);
    return;
  }
  ss->last_seq = h->seq;
  ss->has_reply = 1;
  if (h->type == SRL_WIRE_RESET)
    handle_reset(s, ss, req);
  else
    handle_step(s, ss, req);
  *reply = ss->reply;

  uint64_t dt = srl_wire_now_ns() - t0;
  s->hist[hist_bucket(dt)]++;
  s->hist_n++;
}


//---- sockets and the loop ---------------------------------------------------------------------

int srl_env_server_poll(srl_env_server *s, int timeout_ms) {
  if (!s || !s->sock) return srl_error(SRL_EINVAL, "srl_env_server_poll: the server has no socket");
  int handled = 0;
  while (handled < POLL_BATCH) {
    int rc = srl_wire_recv(s->sock, &s->route, &s->req, s->rx, s->rx_cap, handled ? 0 : timeout_ms);
    if (rc == SRL_ETIMEOUT) break;
    if (rc == SRL_EINTERRUPTED) {
      if (!handled) return rc;
      break;
    }
    if (rc == SRL_EIO) return rc;
    handled++;
    if (rc == SRL_EFORMAT || rc == SRL_EINVAL) {
      // a message the parser refused: say why, echoing its seq and session when readable
      s->stats.requests++;
      s->stats.malformed++;
      s->stats.errors++;
      if (s->route.n > 0) srl_wire_send_error(s->sock, &s->route, &s->req, rc, srl_errmsg());
      continue;
    }
    srl_env_server_reply reply;
    srl_env_server_handle(s, &s->req, &reply);
    // a peer that went away is not the server's failure; ROUTER drops what it cannot route
    srl_wire_send(s->sock, &s->route, &reply.h, reply.frame);
  }
  uint64_t now = srl_wire_now_ns();
  if (now >= s->next_sweep_ns) {
    srl_env_server_expire(s, now);
    s->next_sweep_ns = now + SWEEP_NS;
  }
  return handled;
}


int srl_env_server_run(srl_env_server *s, const volatile sig_atomic_t *stop) {
  if (!s || !s->sock) return srl_error(SRL_EINVAL, "srl_env_server_run: the server has no socket");
  while (!(stop && *stop)) {
    int rc = srl_env_server_poll(s, 100);
    if (rc == SRL_EIO) return rc;
  }
  return SRL_OK;
}


//---- creation -----------------------------------------------------------------------------------

const char *srl_env_server_endpoint(const srl_env_server *s) {
  return s ? s->endpoint : "";
}


void srl_env_server_get_stats(const srl_env_server *s, srl_env_server_stats *out) {
  if (!s || !out) return;
  *out = s->stats;
  out->sessions = s->n_open;
  out->step_p50_us = hist_quantile_us(s, 0.50);
  out->step_p99_us = hist_quantile_us(s, 0.99);
}


// the socket: ROUTER, linger 0, CURVE when configured, bound; the endpoint resolved
static int open_socket(srl_env_server *s, const srl_env_server_config *cfg) {
  s->ctx = zmq_ctx_new();
  if (!s->ctx) return srl_error(SRL_EIO, "env server: zmq context: %s", zmq_strerror(zmq_errno()));
  s->sock = zmq_socket(s->ctx, ZMQ_ROUTER);
  if (!s->sock) return srl_error(SRL_EIO, "env server: socket: %s", zmq_strerror(zmq_errno()));
  SRL_TRY(srl_wire_socket_defaults(s->sock, 0, -1));
  // a peer sending more than any request needs is disconnected before it fills memory
  int64_t max_msg = MAX_MESSAGE;
  if (zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &max_msg, sizeof max_msg))
    return srl_error(SRL_EIO, "env server: socket options: %s", zmq_strerror(zmq_errno()));
  if (cfg->curve_secret)
    SRL_TRY(srl_curve_server_setup(s->ctx, s->sock, cfg->curve_secret, cfg->allow_list));
  else if (cfg->allow_list)
    return srl_error(SRL_EINVAL, "env server: an allow-list needs a CURVE secret certificate");
  if (zmq_bind(s->sock, cfg->bind))
    return srl_error(SRL_EIO, "env server: cannot bind %s: %s", cfg->bind,
                     zmq_strerror(zmq_errno()));
  size_t len = sizeof s->endpoint;
  if (zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, s->endpoint, &len)) s->endpoint[0] = 0;
  return SRL_OK;
}


int srl_env_server_create(srl_env_server **out, const srl_env_server_config *cfg) {
  if (!out || !cfg || !cfg->env_id)
    return srl_error(SRL_EINVAL, "srl_env_server_create: out, cfg and cfg->env_id are needed");
  *out = NULL;
  int max_sessions = cfg->max_sessions ? cfg->max_sessions : DEFAULT_SESSIONS;
  if (max_sessions < 1 || max_sessions > MAX_SESSIONS)
    return srl_error(SRL_EINVAL, "env server: max_sessions %d must be in [1, %d]", max_sessions,
                     MAX_SESSIONS);

  // the probe env tells the spaces, the time limit and whether images can be drawn
  srl_env *probe = NULL;
  SRL_TRY(srl_env_create(&probe, cfg->env_id, cfg->options_yaml));
  int obs_dim = probe->obs_space.dim, act_dim = probe->act_space.dim;
  int img_w = 0, img_h = 0;
  if (cfg->image_width >= 0 && cfg->image_height >= 0 && srl_env_unwrap(probe)->vt->render) {
    img_w = cfg->image_width ? cfg->image_width : DEFAULT_IMAGE;
    img_h = cfg->image_height ? cfg->image_height : DEFAULT_IMAGE;
    if (img_w > 8192 || img_h > 8192) {
      srl_env_destroy(probe);
      return srl_error(SRL_EINVAL, "env server: image %dx%d is larger than 8192x8192", img_w,
                       img_h);
    }
  }

  // one block: the server, strings, bounds, scratch, sessions and their reply buffers
  size_t id_len = strlen(cfg->env_id) + 1;
  size_t opt_len = (cfg->options_yaml ? strlen(cfg->options_yaml) : 0) + 1;
  size_t img_bytes = (size_t)img_w * (size_t)img_h * 3;
  size_t rx_cap = srl_align_up((size_t)act_dim * 4 + SRL_WIRE_NAME_MAX + 64, 64);
  size_t total = sizeof(srl_env_server);
  size_t o_id = srl_layout_add(&total, id_len);
  size_t o_opt = srl_layout_add(&total, opt_len);
  size_t o_ob = srl_layout_add(&total, (size_t)obs_dim * 8);
  size_t o_ab = srl_layout_add(&total, (size_t)act_dim * 8);
  size_t o_of = srl_layout_add(&total, (size_t)obs_dim * 4);
  size_t o_af = srl_layout_add(&total, (size_t)act_dim * 4);
  size_t o_rx = srl_layout_add(&total, rx_cap);
  size_t o_ss = srl_layout_add(&total, sizeof(session) * (size_t)max_sessions);
  size_t per = srl_align_up((size_t)obs_dim * 4, 64) + 64 + srl_align_up(img_bytes, 64) +
               srl_align_up(4 + ERR_TEXT, 64);
  size_t o_buf = srl_layout_add(&total, per * (size_t)max_sessions);
  char *block = srl_calloc(total);
  if (!block) {
    srl_env_destroy(probe);
    return srl_error_context(SRL_ENOMEM, "env server: ");
  }
  srl_env_server *s = (srl_env_server *)block;
  s->env_id = block + o_id;
  memcpy(s->env_id, cfg->env_id, id_len);
  s->options = block + o_opt;
  if (cfg->options_yaml) memcpy(s->options, cfg->options_yaml, opt_len);
  s->idle_timeout_s = cfg->idle_timeout_s ? cfg->idle_timeout_s : DEFAULT_IDLE_S;
  s->obs_dim = obs_dim;
  s->act_dim = act_dim;
  s->max_steps = probe->max_episode_steps;
  s->img_w = img_w;
  s->img_h = img_h;
  s->spare = probe;
  s->obs_bounds = (uint8_t *)block + o_ob;
  s->act_bounds = (uint8_t *)block + o_ab;
  s->obs_f = (float *)(block + o_of);
  s->act_f = (float *)(block + o_af);
  s->rx = (uint8_t *)block + o_rx;
  s->rx_cap = rx_cap;
  s->sessions = (session *)(block + o_ss);
  s->max_sessions = max_sessions;
  for (int i = 0; i < max_sessions; i++) {
    session *ss = &s->sessions[i];
    uint8_t *b = (uint8_t *)block + o_buf + per * (size_t)i;
    ss->obs = b;
    ss->terms = b + srl_align_up((size_t)obs_dim * 4, 64);
    ss->image = img_bytes ? ss->terms + 64 : NULL;
    ss->err = ss->terms + 64 + srl_align_up(img_bytes, 64);
  }
  s->id_state = srl_hash64(srl_wire_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)s);

  // the fixed parts of HELLO
  srl_wire_put_f32(s->obs_bounds, probe->obs_space.low, (size_t)obs_dim);
  srl_wire_put_f32(s->obs_bounds + 4 * obs_dim, probe->obs_space.high, (size_t)obs_dim);
  srl_wire_put_f32(s->act_bounds, probe->act_space.low, (size_t)act_dim);
  srl_wire_put_f32(s->act_bounds + 4 * act_dim, probe->act_space.high, (size_t)act_dim);
  srl_wire_info info = {.obs_dim = obs_dim,
                        .act_dim = act_dim,
                        .max_episode_steps = probe->max_episode_steps,
                        .image_h = img_h,
                        .image_w = img_w,
                        .image_c = img_w ? 3 : 0};
  snprintf(info.env_id, sizeof info.env_id, "%s", cfg->env_id);
  srl_wire_info_encode(s->info, &info);

  if (cfg->bind) {
    int rc = open_socket(s, cfg);
    if (rc < 0) {
      srl_env_server_destroy(s);
      return rc;
    }
  }
  *out = s;
  return SRL_OK;
}


void srl_env_server_destroy(srl_env_server *s) {
  if (!s) return;
  for (int i = 0; i < s->max_sessions; i++)
    if (s->sessions[i].id) srl_env_destroy(s->sessions[i].env);
  srl_env_destroy(s->spare);
  if (s->sock) zmq_close(s->sock);
  if (s->ctx) zmq_ctx_term(s->ctx);
  srl_free(s);
}

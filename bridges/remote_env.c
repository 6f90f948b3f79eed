// remote_env.c: the `remote:` env: a REQ socket to an env server, Lazy Pirate requests (poll,
// close, reopen, resend), the session kept across reconnections and reopened after the server
// lost it, heartbeats while idle, and images cached for render().
#include "bridges/remote_env.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "bridges/curve.h"
#include "bridges/wire.h"
#include "core/alloc.h"
#include "core/config.h"
#include "core/error.h"
#include "envs/wrappers.h"

#define ENDPOINT_MAX 256
#define PATH_MAX_LEN 1024
#define HELLO_CAP (1u << 20)  // receive buffer of the first HELLO, before the sizes are known
#define ERROR_ROOM 16384      // room for an ERROR reply's message
#define CLOSE_TIMEOUT_MS 250  // the CLOSE sent when the env is destroyed waits at most this

typedef struct remote_opts {
  int timeout_ms, retries, heartbeat_ms;
  char server_key[PATH_MAX_LEN], client_cert[PATH_MAX_LEN];
  int want_image;
  char name[SRL_WIRE_NAME_MAX + 1];
} remote_opts;

static const srl_cfg_field remote_fields[] = {
    SRL_CFG_INT(remote_opts, timeout_ms, "timeout_ms", "2500", 1, 3600000,
                "wait this long (ms) for each reply before resending"),
    SRL_CFG_INT(remote_opts, retries, "retries", "3", 1, 1000,
                "tries per request; a request fails after timeout_ms x retries"),
    SRL_CFG_INT(remote_opts, heartbeat_ms, "heartbeat_ms", "10000", 0, 3600000,
                "send HEARTBEAT after this long idle (ms), keeping the session alive; 0 never"),
    SRL_CFG_STRING(remote_opts, server_key, "server_key", "",
                   "the server's public certificate (NAME.key): CURVE on"),
    SRL_CFG_STRING(remote_opts, client_cert, "client_cert", "",
                   "this client's secret certificate (NAME.key_secret)"),
    SRL_CFG_BOOL(remote_opts, want_image, "want_image", "false",
                 "ask for an image with every result; render() returns it"),
    SRL_CFG_STRING(remote_opts, name, "name", "", "a client name sent in HELLO"),
};
static const srl_cfg_schema remote_schema = SRL_CFG_SCHEMA("remote env options", remote_fields);

typedef struct remote {
  remote_opts o;
  char endpoint[ENDPOINT_MAX];
  int curve;
  char server_pub[41], pub[41], sec[41];

  // the socket (NULL after a failed request: reopened by the next one) and its monitor
  void *sock, *mon;
  int refused, mechanism;  // the monitor saw the server refuse our key / the security mechanism

  // the session; seq numbers every request
  uint64_t session;
  uint32_t seq;
  srl_wire_info info;
  uint64_t last_io_ns;

  // buffers (in the env's block)
  uint8_t *rx;
  size_t rx_cap;
  uint8_t *tx;     // (act_dim·4) the action on the wire
  uint8_t *image;  // (image_h·image_w·3) the last image received
  int has_image;
  srl_wire_msg msg;

  // heartbeats: a thread that sends HEARTBEAT after heartbeat_ms idle; mu guards everything
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t hb;
  int hb_started, stop;

  srl_remote_env_stats stats;
} remote;


//---- the shared ZeroMQ context --------------------------------------------------------------

static pthread_mutex_t ctx_mu = PTHREAD_MUTEX_INITIALIZER;
static void *ctx;
static int ctx_refs;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static atomic_ullong monitor_counter;


// a forked child cannot use the parent's context; it starts its own
static void ctx_after_fork(void) {
  ctx = NULL;
  ctx_refs = 0;
  pthread_mutex_init(&ctx_mu, NULL);
}


static void register_atfork(void) {
  pthread_atfork(NULL, NULL, ctx_after_fork);
}


static void *ctx_acquire(void) {
  pthread_once(&atfork_once, register_atfork);
  pthread_mutex_lock(&ctx_mu);
  if (!ctx) ctx = zmq_ctx_new();
  void *c = ctx;
  if (c) ctx_refs++;
  pthread_mutex_unlock(&ctx_mu);
  return c;
}


static void ctx_release(void) {
  pthread_mutex_lock(&ctx_mu);
  if (ctx_refs > 0 && --ctx_refs == 0) {
    zmq_ctx_term(ctx);
    ctx = NULL;
  }
  pthread_mutex_unlock(&ctx_mu);
}


//---- the socket -------------------------------------------------------------------------------

static void close_socket(remote *r) {
  if (r->sock) {
    zmq_socket_monitor(r->sock, NULL, 0);
    zmq_close(r->sock);
  }
  if (r->mon) zmq_close(r->mon);
  r->sock = r->mon = NULL;
}


// a REQ socket connected to the endpoint, with CURVE keys when configured and a monitor that
// reports failed handshakes (a refused key explains a timeout)
static int open_socket(remote *r) {
  r->sock = zmq_socket(ctx, ZMQ_REQ);
  if (!r->sock)
    return srl_error(SRL_EIO, "remote env %s: socket: %s", r->endpoint, zmq_strerror(zmq_errno()));
  int rc = srl_wire_socket_defaults(r->sock, r->o.timeout_ms, -1);
  if (rc == SRL_OK && r->curve)
    rc = srl_curve_client_setup_keys(r->sock, r->server_pub, r->pub, r->sec);
  if (rc == SRL_OK) {
    char addr[64];
    snprintf(addr, sizeof addr, "inproc://saferl-remote-monitor-%llu",
             (unsigned long long)atomic_fetch_add(&monitor_counter, 1));
    int zero = 0;
    if (zmq_socket_monitor(r->sock, addr,
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0 &&
        (r->mon = zmq_socket(ctx, ZMQ_PAIR)) != NULL) {
      zmq_setsockopt(r->mon, ZMQ_LINGER, &zero, sizeof zero);
      if (zmq_connect(r->mon, addr)) {
        zmq_close(r->mon);
        r->mon = NULL;
      }
    }
    if (zmq_connect(r->sock, r->endpoint))
      rc = srl_error(SRL_EINVAL, "remote env %s: cannot connect: %s", r->endpoint,
                     zmq_strerror(zmq_errno()));
  }
  if (rc < 0) {
    srl_error_context(rc, "remote env %s: ", r->endpoint);
    close_socket(r);
  }
  return rc;
}


// note the handshake failures the monitor reported
static void read_monitor(remote *r) {
  if (!r->mon) return;
  for (;;) {
    uint8_t ev[16], addr[256];
    int n = zmq_recv(r->mon, ev, sizeof ev, ZMQ_DONTWAIT);
    if (n < 0) return;
    int more = 0;
    size_t len = sizeof more;
    zmq_getsockopt(r->mon, ZMQ_RCVMORE, &more, &len);
    if (more) zmq_recv(r->mon, addr, sizeof addr, 0);
    if (n < 6) continue;
    uint16_t event;
    memcpy(&event, ev, 2);  // monitor events are in host byte order
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) r->refused = 1;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
        event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
      r->mechanism = 1;
  }
}


// why requests may be going unanswered, from the monitor's events
static const char *timeout_hint(const remote *r) {
  if (r->refused) return "; the server refused this client's CURVE key (not in its allow-list)";
  if (r->mechanism)
    return r->curve ? "; the CURVE handshake failed (wrong server_key, or a server without CURVE)"
                    : "; the handshake failed (the server may require CURVE: set server_key "
                      "and client_cert)";
  return "";
}


//---- requests ---------------------------------------------------------------------------------

// Send a request and wait for its reply in r->msg, Lazy Pirate style: each try waits timeout_ms,
// then the socket is closed and reopened and the same request (same seq) sent again
static int transact(remote *r, srl_wire_header *h, const void *const *frames, int tries,
                    int timeout_ms) {
  h->seq = ++r->seq;
  r->refused = r->mechanism = 0;
  int rc = SRL_ETIMEOUT;
  for (int t = 0; t < tries; t++) {
    if (t > 0) r->stats.resends++;
    if (!r->sock) {
      SRL_TRY(open_socket(r));
      if (r->stats.requests || t > 0) r->stats.reconnects++;
    }
    h->t_ns = srl_wire_now_ns();
    rc = srl_wire_send(r->sock, NULL, h, frames);
    if (rc == SRL_EINTERRUPTED) rc = SRL_ETIMEOUT;  // counts as a failed try
    uint64_t deadline = srl_wire_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    int sent = rc == SRL_OK;
    while (sent && (rc == SRL_OK || rc == SRL_EINTERRUPTED)) {
      // a signal (another thread's handler) does not end the wait early
      uint64_t now = srl_wire_now_ns();
      int left = now < deadline ? (int)((deadline - now + 999999) / 1000000) : 0;
      rc = srl_wire_recv(r->sock, NULL, &r->msg, r->rx, r->rx_cap, left);
      if (rc == SRL_OK) {
        if (r->msg.h.seq != h->seq) {
          close_socket(r);
          return srl_error(SRL_EFORMAT, "remote env %s: reply to seq %u answers seq %u",
                           r->endpoint, h->seq, r->msg.h.seq);
        }
        r->stats.requests++;
        r->last_io_ns = srl_wire_now_ns();
        return SRL_OK;
      }
      if (rc == SRL_EINTERRUPTED && left == 0) rc = SRL_ETIMEOUT;
      if (rc != SRL_EINTERRUPTED) break;
    }
    if (rc == SRL_EFORMAT) {
      // a reply came (the REQ socket can send again) but broke the protocol
      return srl_error_context(rc, "remote env %s: malformed %s reply: ", r->endpoint,
                               srl_wire_type_name(h->type));
    }
    read_monitor(r);
    close_socket(r);
    if (rc != SRL_ETIMEOUT)
      return srl_error_context(rc, "remote env %s: %s: ", r->endpoint, srl_wire_type_name(h->type));
  }
  r->last_io_ns = srl_wire_now_ns();
  return srl_error(SRL_ETIMEOUT, "remote env %s: no reply in %d tr%s of %d ms (%s)%s", r->endpoint,
                   tries, tries == 1 ? "y" : "ies", timeout_ms, srl_wire_type_name(h->type),
                   timeout_hint(r));
}


// whether r->msg is the server saying it does not know our session
static int unknown_session(const remote *r) {
  char text[256];
  int code;
  if (r->msg.h.type != SRL_WIRE_ERROR || srl_wire_error_read(&r->msg, &code, text, sizeof text))
    return 0;
  return strstr(text, "unknown session") != NULL;
}


// r->msg as an error: the server's ERROR with its code and message, or an unexpected type
static int reply_error(remote *r, srl_wire_type want, const char *what) {
  if (r->msg.h.type == SRL_WIRE_ERROR) {
    char text[1024];
    int code = SRL_EIO;
    srl_wire_error_read(&r->msg, &code, text, sizeof text);
    if (code >= 0 || code < SRL_EINTERRUPTED) code = SRL_EIO;
    return srl_error(code, "remote env %s: %s: server: %s", r->endpoint, what, text);
  }
  return srl_error(SRL_EFORMAT, "remote env %s: %s: expected %s, the server sent %s", r->endpoint,
                   what, srl_wire_type_name(want), srl_wire_type_name(r->msg.h.type));
}


// open a session: HELLO, then the info and the bounds (checked against the current ones after
// the first HELLO)
static int hello(remote *r, int first) {
  srl_wire_header h = srl_wire_header_make(SRL_WIRE_HELLO, 0, 0);
  size_t nl = strlen(r->o.name);
  const void *frames[1] = {r->o.name};
  if (nl) h.n_frames = 1, h.sizes[0] = (uint32_t)nl;
  SRL_TRY(transact(r, &h, frames, r->o.retries, r->o.timeout_ms));
  if (r->msg.h.type != SRL_WIRE_HELLO) return reply_error(r, SRL_WIRE_HELLO, "HELLO");
  srl_wire_info info;
  int rc = srl_wire_expect(&r->msg, 0, SRL_WIRE_INFO_SIZE, "HELLO info");
  if (rc == SRL_OK) rc = srl_wire_info_decode(&info, r->msg.frame[0], r->msg.size[0]);
  if (rc == SRL_OK) rc = srl_wire_expect(&r->msg, 1, (size_t)info.obs_dim * 8, "HELLO obs bounds");
  if (rc == SRL_OK) rc = srl_wire_expect(&r->msg, 2, (size_t)info.act_dim * 8, "HELLO act bounds");
  if (rc == SRL_OK && info.act_dim > SRL_ENV_ACT_MAX)
    rc = srl_error(SRL_EUNSUPPORTED, "act_dim %d exceeds %d", info.act_dim, SRL_ENV_ACT_MAX);
  if (rc == SRL_OK && !r->msg.h.session)
    rc = srl_error(SRL_EFORMAT, "HELLO reply carries session 0");
  if (rc < 0) return srl_error_context(rc, "remote env %s: ", r->endpoint);
  if (!first && (info.obs_dim != r->info.obs_dim || info.act_dim != r->info.act_dim ||
                 info.image_h != r->info.image_h || info.image_w != r->info.image_w))
    return srl_error(SRL_ESTATE,
                     "remote env %s: the server now serves %s (obs_dim %d, act_dim %d), not "
                     "the env this client opened (obs_dim %d, act_dim %d)",
                     r->endpoint, info.env_id, info.obs_dim, info.act_dim, r->info.obs_dim,
                     r->info.act_dim);
  r->info = info;
  r->session = r->msg.h.session;
  r->stats.hellos++;
  r->stats.session = r->session;
  return SRL_OK;
}


// read a RESULT in r->msg into obs (and out after a step); keeps its image
static int read_result(remote *r, float *obs, srl_step *out, const char *what) {
  const srl_wire_msg *m = &r->msg;
  if (m->h.type != SRL_WIRE_RESULT) return reply_error(r, SRL_WIRE_RESULT, what);
  char label[64];
  snprintf(label, sizeof label, "%s observation of obs_dim %d", what, r->info.obs_dim);
  int rc = srl_wire_expect(m, 0, (size_t)r->info.obs_dim * 4, label);
  if (rc == SRL_OK && m->h.n_frames == 3) {
    size_t img = (size_t)r->info.image_h * (size_t)r->info.image_w * 3;
    if (!r->image)
      rc = srl_error(SRL_EFORMAT, "wire: %s carries an image the server's HELLO did not announce",
                     what);
    else
      rc = srl_wire_expect(m, 2, img, "RESULT image");
  }
  if (rc < 0) return srl_error_context(rc, "remote env %s: ", r->endpoint);
  srl_wire_get_f32(obs, m->frame[0], (size_t)r->info.obs_dim);
  // an image stands for this result only: a result without one (a failed render) leaves none
  r->has_image = m->h.n_frames == 3;
  if (r->has_image) memcpy(r->image, m->frame[2], m->size[2]);
  if (out) {
    float terms[4];
    srl_wire_get_f32(terms, m->frame[1], 4);
    out->reward = terms[0];
    out->cost = terms[1];
    out->info.raw_cost = terms[2];
    out->info.x_velocity = terms[3];
    out->terminated = !!(m->h.flags & SRL_WIRE_TERMINATED);
    out->truncated = !!(m->h.flags & SRL_WIRE_TRUNCATED);
    out->info.diverged = !!(m->h.flags & SRL_WIRE_DIVERGED);
    out->info.goal_met = !!(m->h.flags & SRL_WIRE_GOAL_MET);
  }
  return SRL_OK;
}


//---- the env's vtable -------------------------------------------------------------------------

static int remote_reset(srl_env *env, uint64_t seed, float *obs) {
  remote *r = env->impl;
  pthread_mutex_lock(&r->mu);
  uint8_t sb[8];
  srl_wire_put_u64(sb, seed);
  const void *frames[1] = {sb};
  uint32_t flags = r->o.want_image ? SRL_WIRE_WANT_IMAGE : 0;
  int rc = SRL_OK;
  // a session the server lost is reopened here, once
  for (int attempt = 0; attempt < 2; attempt++) {
    if (!r->session && (rc = hello(r, 0)) < 0) break;
    srl_wire_header h = srl_wire_header_make(SRL_WIRE_RESET, 0, r->session);
    h.flags = flags;
    h.n_frames = 1;
    h.sizes[0] = 8;
    rc = transact(r, &h, frames, r->o.retries, r->o.timeout_ms);
    if (rc < 0) break;
    if (!unknown_session(r)) {
      rc = read_result(r, obs, NULL, "RESET");
      break;
    }
    r->session = 0;
    rc = reply_error(r, SRL_WIRE_RESULT, "RESET");
  }
  pthread_mutex_unlock(&r->mu);
  return rc;
}


static int remote_step(srl_env *env, const float *action, float *obs, srl_step *out) {
  remote *r = env->impl;
  pthread_mutex_lock(&r->mu);
  int rc;
  if (!r->session) {
    rc = srl_error(SRL_ESTATE,
                   "remote env %s: the server lost this client's session (restarted, or idle "
                   "past its timeout), so the episode cannot go on: reset to open a new one",
                   r->endpoint);
  } else {
    srl_wire_put_f32(r->tx, action, (size_t)r->info.act_dim);
    const void *frames[1] = {r->tx};
    srl_wire_header h = srl_wire_header_make(SRL_WIRE_STEP, 0, r->session);
    h.flags = r->o.want_image ? SRL_WIRE_WANT_IMAGE : 0;
    h.n_frames = 1;
    h.sizes[0] = (uint32_t)r->info.act_dim * 4;
    rc = transact(r, &h, frames, r->o.retries, r->o.timeout_ms);
    if (rc == SRL_OK) {
      if (unknown_session(r)) r->session = 0;
      rc = read_result(r, obs, out, "STEP");
    }
  }
  pthread_mutex_unlock(&r->mu);
  return rc;
}


// the last image, resampled (nearest) to width×height
static int remote_render(srl_env *env, uint8_t *rgb, int width, int height, const char *camera) {
  remote *r = env->impl;
  if (!r->o.want_image)
    return srl_error(SRL_EUNSUPPORTED,
                     "remote env %s: images are off (the option want_image: true asks the "
                     "server for one with every result)",
                     r->endpoint);
  if (!r->image)
    return srl_error(SRL_EUNSUPPORTED, "remote env %s: the server (%s) sends no images",
                     r->endpoint, r->info.env_id);
  pthread_mutex_lock(&r->mu);
  int rc = SRL_OK;
  if (!r->has_image) {
    rc = srl_error(SRL_ESTATE,
                   "remote env %s: the last result came without an image (reset first; or the "
                   "server could not draw it)",
                   r->endpoint);
  } else {
    int sh = r->info.image_h, sw = r->info.image_w;
    for (int y = 0; y < height; y++) {
      const uint8_t *row = r->image + (size_t)((long long)y * sh / height) * (size_t)sw * 3;
      uint8_t *dst = rgb + (size_t)y * (size_t)width * 3;
      for (int x = 0; x < width; x++) memcpy(dst + 3 * x, row + 3 * ((long long)x * sw / width), 3);
    }
  }
  pthread_mutex_unlock(&r->mu);
  return rc;
}


// stop the heartbeat thread, close the session (one short try), release the socket
static void remote_destroy(srl_env *env) {
  remote *r = env->impl;
  if (r->hb_started) {
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->hb, NULL);
  }
  if (r->session && r->sock) {
    srl_wire_header h = srl_wire_header_make(SRL_WIRE_CLOSE, 0, r->session);
    int t = r->o.timeout_ms < CLOSE_TIMEOUT_MS ? r->o.timeout_ms : CLOSE_TIMEOUT_MS;
    transact(r, &h, NULL, 1, t);
  }
  close_socket(r);
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  memset(r->sec, 0, sizeof r->sec);
  ctx_release();
  srl_free(env);
}


static const srl_env_vtable remote_vt = {remote_reset, remote_step, remote_render, remote_destroy};


//---- heartbeats -------------------------------------------------------------------------------

// after heartbeat_ms without a request, send HEARTBEAT; a server that lost the session is noted
// so the next step says so and the next reset reopens it
static void *heartbeat_main(void *arg) {
  remote *r = arg;
  uint64_t period = (uint64_t)r->o.heartbeat_ms * 1000000ull;
  pthread_mutex_lock(&r->mu);
  while (!r->stop) {
    uint64_t due = r->last_io_ns + period, now = srl_wire_now_ns();
    if (now >= due) {
      if (r->session) {
        srl_wire_header h = srl_wire_header_make(SRL_WIRE_HEARTBEAT, 0, r->session);
        r->stats.heartbeats++;
        if (transact(r, &h, NULL, r->o.retries, r->o.timeout_ms) == SRL_OK && unknown_session(r))
          r->session = 0;
      }
      r->last_io_ns = srl_wire_now_ns();
      continue;
    }
    struct timespec ts = {.tv_sec = (time_t)(due / 1000000000ull),
                          .tv_nsec = (long)(due % 1000000000ull)};
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}


//---- creation ---------------------------------------------------------------------------------

int srl_remote_env_stats_get(const srl_env *env, srl_remote_env_stats *out) {
  while (env && env->vt != &remote_vt) env = srl_env_unwrap(env);
  if (!env || !out) return srl_error(SRL_EINVAL, "srl_remote_env_stats_get: not a remote env");
  remote *r = env->impl;
  pthread_mutex_lock(&r->mu);
  *out = r->stats;
  pthread_mutex_unlock(&r->mu);
  return SRL_OK;
}


// options, keys and the endpoint into r
static int configure(remote *r, const char *endpoint, const char *options_yaml) {
  if (!endpoint || (strncmp(endpoint, "tcp://", 6) && strncmp(endpoint, "ipc://", 6)))
    return srl_error(SRL_EINVAL,
                     "remote env '%s': the endpoint must be tcp://host:port or ipc://path "
                     "(env id remote:tcp://... or remote:ipc://...)",
                     endpoint ? endpoint : "");
  if (strlen(endpoint) >= ENDPOINT_MAX || strlen(endpoint) < 7)
    return srl_error(SRL_EINVAL, "remote env: endpoint '%.64s...' must have 7 to %d characters",
                     endpoint, ENDPOINT_MAX - 1);
  snprintf(r->endpoint, sizeof r->endpoint, "%s", endpoint);
  SRL_TRY(srl_config_defaults(&remote_schema, &r->o));
  if (options_yaml && options_yaml[0])
    SRL_TRY(srl_config_load_string(&remote_schema, &r->o, options_yaml, "remote env options"));
  if (!r->o.server_key[0] != !r->o.client_cert[0])
    return srl_error(SRL_ECONFIG,
                     "remote env %s: CURVE needs both server_key (the server's NAME.key) and "
                     "client_cert (this client's NAME.key_secret)",
                     r->endpoint);
  if (r->o.server_key[0]) {
    SRL_TRY(srl_curve_load(r->o.server_key, r->server_pub, NULL));
    SRL_TRY(srl_curve_load(r->o.client_cert, r->pub, r->sec));
    r->curve = 1;
  }
  return SRL_OK;
}


int srl_remote_env_create(srl_env **out, const char *endpoint, const char *options_yaml) {
  if (!out) return srl_error(SRL_EINVAL, "srl_remote_env_create: out must not be NULL");
  *out = NULL;

  // a provisional client opens the session, so the sizes are known before the one allocation
  remote tmp;
  memset(&tmp, 0, sizeof tmp);
  int rc = configure(&tmp, endpoint, options_yaml);
  if (rc < 0) return rc;
  if (!ctx_acquire()) return srl_error(SRL_EIO, "remote env %s: no zmq context", tmp.endpoint);
  tmp.rx_cap = HELLO_CAP;
  tmp.rx = srl_malloc(tmp.rx_cap);
  if (!tmp.rx) rc = srl_error_context(SRL_ENOMEM, "remote env %s: ", tmp.endpoint);
  if (rc == SRL_OK) rc = hello(&tmp, 1);
  if (rc < 0) {
    close_socket(&tmp);
    srl_free(tmp.rx);
    ctx_release();
    return rc;
  }

  // one block: env header, client state, bounds, receive buffer, image, action bytes
  const srl_wire_info *in = &tmp.info;
  size_t od = (size_t)in->obs_dim, ad = (size_t)in->act_dim;
  size_t img = in->image_c ? (size_t)in->image_h * (size_t)in->image_w * 3 : 0;
  size_t hello_bytes = SRL_WIRE_INFO_SIZE + 8 * (od + ad);
  size_t result_bytes = 4 * od + 16 + img;
  size_t rx_cap = (hello_bytes > result_bytes ? hello_bytes : result_bytes) + ERROR_ROOM + 256;
  size_t total = sizeof(srl_env);
  size_t o_r = srl_layout_add(&total, sizeof(remote));
  size_t o_b = srl_layout_add(&total, sizeof(float) * 2 * (od + ad));
  size_t o_rx = srl_layout_add(&total, rx_cap);
  size_t o_img = srl_layout_add(&total, img);
  size_t o_tx = srl_layout_add(&total, 4 * ad);
  char *block = srl_calloc(total);
  if (!block) {
    rc = srl_error_context(SRL_ENOMEM, "remote env %s: ", tmp.endpoint);
    close_socket(&tmp);
    srl_free(tmp.rx);
    ctx_release();
    return rc;
  }
  srl_env *env = (srl_env *)block;
  remote *r = (remote *)(block + o_r);
  *r = tmp;
  float *b = (float *)(block + o_b);
  srl_wire_get_f32(b, tmp.msg.frame[1], 2 * od);
  srl_wire_get_f32(b + 2 * od, tmp.msg.frame[2], 2 * ad);
  srl_free(tmp.rx);
  memset(&r->msg, 0, sizeof r->msg);
  r->rx = (uint8_t *)block + o_rx;
  r->rx_cap = rx_cap;
  r->image = img ? (uint8_t *)block + o_img : NULL;
  r->tx = (uint8_t *)block + o_tx;

  env->vt = &remote_vt;
  char full[ENDPOINT_MAX + 8] = {0};  // the id, cut to what srl_env holds
  snprintf(full, sizeof full, "%s%s", SRL_REMOTE_PREFIX, r->endpoint);
  memcpy(env->id, full, sizeof env->id - 1);
  env->obs_space = (srl_space){in->obs_dim, b, b + od};
  env->act_space = (srl_space){in->act_dim, b + 2 * od, b + 2 * od + ad};
  env->max_episode_steps = r->info.max_episode_steps;
  env->impl = r;

  // the lock, and the heartbeat thread (timed waits on the monotonic clock)
  pthread_mutex_init(&r->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&r->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (r->o.heartbeat_ms > 0) {
    if (pthread_create(&r->hb, NULL, heartbeat_main, r)) {
      remote_destroy(env);
      return srl_error(SRL_EIO, "remote env %s: cannot start the heartbeat thread", endpoint);
    }
    r->hb_started = 1;
  }
  *out = env;
  return SRL_OK;
}

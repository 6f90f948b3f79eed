// wire.c: the protocol's framing: header and payload codecs in explicit little-endian, the
// parser with every check of docs/protocol.md, and send/receive of whole multipart messages on
// a ZeroMQ socket into caller-owned buffers (nothing allocated here per message).
#include "bridges/wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "core/error.h"

#define FRAME_ALIGN 16  // received frames start on this boundary inside the caller's buffer


//---- little-endian scalars ---------------------------------------------------------------------

void srl_wire_put_u32(uint8_t *out, uint32_t v) {
  for (int i = 0; i < 4; i++) out[i] = (uint8_t)(v >> (8 * i));
}


void srl_wire_put_u64(uint8_t *out, uint64_t v) {
  for (int i = 0; i < 8; i++) out[i] = (uint8_t)(v >> (8 * i));
}


uint32_t srl_wire_get_u32(const uint8_t *in) {
  return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
}


uint64_t srl_wire_get_u64(const uint8_t *in) {
  return (uint64_t)srl_wire_get_u32(in) | (uint64_t)srl_wire_get_u32(in + 4) << 32;
}


static void put_u16(uint8_t *out, uint16_t v) {
  out[0] = (uint8_t)v;
  out[1] = (uint8_t)(v >> 8);
}


static uint16_t get_u16(const uint8_t *in) {
  return (uint16_t)(in[0] | in[1] << 8);
}


// float32 vectors: a plain copy on little-endian hosts, byte by byte elsewhere
void srl_wire_put_f32(uint8_t *out, const float *x, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy(out, x, n * sizeof(float));
#else
  for (size_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &x[i], 4);
    srl_wire_put_u32(out + 4 * i, u);
  }
#endif
}


void srl_wire_get_f32(float *out, const uint8_t *in, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy(out, in, n * sizeof(float));
#else
  for (size_t i = 0; i < n; i++) {
    uint32_t u = srl_wire_get_u32(in + 4 * i);
    memcpy(&out[i], &u, 4);
  }
#endif
}


uint64_t srl_wire_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}


const char *srl_wire_type_name(int type) {
  static const char *const names[] = {"HELLO", "RESET",     "STEP", "RESULT", "CLOSE",
                                      "ERROR", "HEARTBEAT", "ACT",  "ACTION", "STATS"};
  return type >= SRL_WIRE_HELLO && type <= SRL_WIRE_STATS ? names[type - 1] : "unknown";
}


//---- header ---------------------------------------------------------------------------------

srl_wire_header srl_wire_header_make(srl_wire_type type, uint32_t seq, uint64_t session) {
  srl_wire_header h;
  memset(&h, 0, sizeof h);
  h.magic = SRL_WIRE_MAGIC;
  h.version = SRL_WIRE_VERSION;
  h.type = (uint16_t)type;
  h.seq = seq;
  h.session = session;
  h.t_ns = srl_wire_now_ns();
  return h;
}


// offsets: magic 0, version 4, type 6, seq 8, flags 12, session 16, t_ns 24, n_frames 32,
// sizes 36..52, reserved 52
void srl_wire_header_encode(uint8_t out[SRL_WIRE_HEADER_SIZE], const srl_wire_header *h) {
  srl_wire_put_u32(out + 0, h->magic);
  put_u16(out + 4, h->version);
  put_u16(out + 6, h->type);
  srl_wire_put_u32(out + 8, h->seq);
  srl_wire_put_u32(out + 12, h->flags);
  srl_wire_put_u64(out + 16, h->session);
  srl_wire_put_u64(out + 24, h->t_ns);
  srl_wire_put_u32(out + 32, h->n_frames);
  for (int i = 0; i < SRL_WIRE_MAX_FRAMES; i++) srl_wire_put_u32(out + 36 + 4 * i, h->sizes[i]);
  srl_wire_put_u32(out + 52, h->reserved);
}


int srl_wire_header_decode(srl_wire_header *h, const void *buf, size_t size) {
  if (!h || (!buf && size))
    return srl_error(SRL_EINVAL, "srl_wire_header_decode: h and buf must not be NULL");
  if (size != SRL_WIRE_HEADER_SIZE)
    return srl_error(SRL_EFORMAT, "wire: header frame has %zu bytes, expected %d", size,
                     SRL_WIRE_HEADER_SIZE);
  const uint8_t *p = buf;
  h->magic = srl_wire_get_u32(p + 0);
  h->version = get_u16(p + 4);
  h->type = get_u16(p + 6);
  h->seq = srl_wire_get_u32(p + 8);
  h->flags = srl_wire_get_u32(p + 12);
  h->session = srl_wire_get_u64(p + 16);
  h->t_ns = srl_wire_get_u64(p + 24);
  h->n_frames = srl_wire_get_u32(p + 32);
  for (int i = 0; i < SRL_WIRE_MAX_FRAMES; i++) h->sizes[i] = srl_wire_get_u32(p + 36 + 4 * i);
  h->reserved = srl_wire_get_u32(p + 52);

  if (h->magic != SRL_WIRE_MAGIC)
    return srl_error(SRL_EFORMAT, "wire: bad magic 0x%08x (expected 0x%08x: the bytes 53 4C 52 57)",
                     h->magic, SRL_WIRE_MAGIC);
  if (h->version != SRL_WIRE_VERSION)
    return srl_error(SRL_EFORMAT,
                     "wire: protocol version %u is not supported (this peer speaks %d)", h->version,
                     SRL_WIRE_VERSION);
  if (h->type < SRL_WIRE_HELLO || h->type > SRL_WIRE_STATS)
    return srl_error(SRL_EFORMAT, "wire: unknown message type %u", h->type);
  if (h->n_frames > SRL_WIRE_MAX_FRAMES)
    return srl_error(SRL_EFORMAT, "wire: %s header announces %u frames, at most %d",
                     srl_wire_type_name(h->type), h->n_frames, SRL_WIRE_MAX_FRAMES);
  for (uint32_t i = h->n_frames; i < SRL_WIRE_MAX_FRAMES; i++)
    if (h->sizes[i])
      return srl_error(SRL_EFORMAT, "wire: %s header: unused sizes[%u] is %u, expected 0",
                       srl_wire_type_name(h->type), i, h->sizes[i]);
  if (h->reserved)
    return srl_error(SRL_EFORMAT, "wire: %s header: reserved field is %u, expected 0",
                     srl_wire_type_name(h->type), h->reserved);
  return SRL_OK;
}


//---- fixed payloads -----------------------------------------------------------------------------

// info offsets: six i32 at 0..24, dt 24, reserved 28, env_id 32..96, server_time_ns 96
void srl_wire_info_encode(uint8_t out[SRL_WIRE_INFO_SIZE], const srl_wire_info *info) {
  memset(out, 0, SRL_WIRE_INFO_SIZE);
  const int32_t v[6] = {info->obs_dim, info->act_dim, info->max_episode_steps,
                        info->image_h, info->image_w, info->image_c};
  for (int i = 0; i < 6; i++) srl_wire_put_u32(out + 4 * i, (uint32_t)v[i]);
  srl_wire_put_f32(out + 24, &info->dt, 1);
  size_t n = strnlen(info->env_id, SRL_WIRE_ENV_ID_SIZE - 1);
  memcpy(out + 32, info->env_id, n);
  srl_wire_put_u64(out + 96, info->server_time_ns);
}


int srl_wire_info_decode(srl_wire_info *info, const void *buf, size_t size) {
  if (size != SRL_WIRE_INFO_SIZE)
    return srl_error(SRL_EFORMAT, "wire: HELLO info has %zu bytes, expected %d", size,
                     SRL_WIRE_INFO_SIZE);
  const uint8_t *p = buf;
  memset(info, 0, sizeof *info);
  info->obs_dim = (int32_t)srl_wire_get_u32(p + 0);
  info->act_dim = (int32_t)srl_wire_get_u32(p + 4);
  info->max_episode_steps = (int32_t)srl_wire_get_u32(p + 8);
  info->image_h = (int32_t)srl_wire_get_u32(p + 12);
  info->image_w = (int32_t)srl_wire_get_u32(p + 16);
  info->image_c = (int32_t)srl_wire_get_u32(p + 20);
  srl_wire_get_f32(&info->dt, p + 24, 1);
  memcpy(info->env_id, p + 32, SRL_WIRE_ENV_ID_SIZE);
  info->server_time_ns = srl_wire_get_u64(p + 96);
  if (info->env_id[SRL_WIRE_ENV_ID_SIZE - 1])
    return srl_error(SRL_EFORMAT, "wire: HELLO info env_id is not NUL-terminated");
  if (info->obs_dim <= 0 || info->act_dim <= 0 || info->max_episode_steps < 0)
    return srl_error(SRL_EFORMAT,
                     "wire: HELLO info has obs_dim %d, act_dim %d, max_episode_steps %d "
                     "(dimensions must be positive)",
                     info->obs_dim, info->act_dim, info->max_episode_steps);
  int no_image = !info->image_h && !info->image_w && !info->image_c;
  if (!no_image && (info->image_h <= 0 || info->image_w <= 0 || info->image_c != 3))
    return srl_error(SRL_EFORMAT, "wire: HELLO info image shape %dx%dx%d is not H×W×3",
                     info->image_h, info->image_w, info->image_c);
  if (!(info->dt >= 0.0f && info->dt < 1e6f))
    return srl_error(SRL_EFORMAT, "wire: HELLO info dt %g is not a time step", (double)info->dt);
  return SRL_OK;
}


void srl_wire_status_encode(uint8_t out[SRL_WIRE_STATUS_SIZE], const srl_wire_status *st) {
  srl_wire_put_u32(out, st->status);
  srl_wire_put_u32(out + 4, st->consecutive_misses);
  srl_wire_put_u64(out + 8, st->compute_ns);
  srl_wire_put_u64(out + 16, 0);
}


int srl_wire_status_decode(srl_wire_status *st, const void *buf, size_t size) {
  if (size != SRL_WIRE_STATUS_SIZE)
    return srl_error(SRL_EFORMAT, "wire: ACTION status has %zu bytes, expected %d", size,
                     SRL_WIRE_STATUS_SIZE);
  const uint8_t *p = buf;
  st->status = srl_wire_get_u32(p);
  st->consecutive_misses = srl_wire_get_u32(p + 4);
  st->compute_ns = srl_wire_get_u64(p + 8);
  if (st->status > 5)
    return srl_error(SRL_EFORMAT, "wire: ACTION status %u is not one of 0..5", st->status);
  return SRL_OK;
}


//---- parsing ------------------------------------------------------------------------------------

// the shapes a type's payload may take in either direction; frame sizes are already known equal
// to the header's sizes
static int check_shape(const srl_wire_msg *m) {
  const srl_wire_header *h = &m->h;
  const char *t = srl_wire_type_name(h->type);
  uint32_t n = h->n_frames;
  const size_t *s = m->size;
  switch (h->type) {
    case SRL_WIRE_HELLO:
      // request: nothing or a client name; reply: info, observation bounds, action bounds
      if (n == 0) return SRL_OK;
      if (n == 1) {
        if (s[0] > SRL_WIRE_NAME_MAX)
          return srl_error(SRL_EFORMAT, "wire: HELLO client name has %zu bytes, at most %d", s[0],
                           SRL_WIRE_NAME_MAX);
        return SRL_OK;
      }
      if (n != 3) return srl_error(SRL_EFORMAT, "wire: HELLO carries 0, 1 or 3 frames, not %u", n);
      if (s[0] != SRL_WIRE_INFO_SIZE)
        return srl_error(SRL_EFORMAT, "wire: HELLO info frame has %zu bytes, expected %d", s[0],
                         SRL_WIRE_INFO_SIZE);
      if (s[1] == 0 || s[1] % 8 || s[2] == 0 || s[2] % 8)
        return srl_error(SRL_EFORMAT,
                         "wire: HELLO bound frames have %zu and %zu bytes (each must be "
                         "low and high float32 vectors: a positive multiple of 8)",
                         s[1], s[2]);
      return SRL_OK;
    case SRL_WIRE_RESET:
      if (n != 1 || s[0] != 8)
        return srl_error(SRL_EFORMAT, "wire: RESET carries one 8-byte seed frame (got %u frames%s)",
                         n, n == 1 ? " of the wrong size" : "");
      return SRL_OK;
    case SRL_WIRE_STEP:
    case SRL_WIRE_ACT:
      if (n != 1 || s[0] == 0 || s[0] % 4)
        return srl_error(SRL_EFORMAT,
                         "wire: %s carries one float32 vector frame (got %u frames, first of "
                         "%zu bytes)",
                         t, n, n ? s[0] : (size_t)0);
      return SRL_OK;
    case SRL_WIRE_RESULT:
      if (n != 2 && n != 3)
        return srl_error(SRL_EFORMAT, "wire: RESULT carries 2 or 3 frames, not %u", n);
      if (s[0] == 0 || s[0] % 4)
        return srl_error(SRL_EFORMAT, "wire: RESULT observation frame has %zu bytes", s[0]);
      if (s[1] != 16)
        return srl_error(SRL_EFORMAT, "wire: RESULT terms frame has %zu bytes, expected 16", s[1]);
      if (n == 3 && (s[2] == 0 || s[2] % 3))
        return srl_error(SRL_EFORMAT, "wire: RESULT image frame has %zu bytes (H×W×3 expected)",
                         s[2]);
      return SRL_OK;
    case SRL_WIRE_ERROR:
      if (n != 2 || s[0] != 4)
        return srl_error(SRL_EFORMAT, "wire: ERROR carries an i32 code and a message frame");
      return SRL_OK;
    case SRL_WIRE_ACTION:
      if (n != 2 || s[0] == 0 || s[0] % 4 || s[1] != SRL_WIRE_STATUS_SIZE)
        return srl_error(SRL_EFORMAT,
                         "wire: ACTION carries a float32 action frame and a %d-byte status frame",
                         SRL_WIRE_STATUS_SIZE);
      return SRL_OK;
    case SRL_WIRE_CLOSE:
    case SRL_WIRE_HEARTBEAT:
      if (n != 0) return srl_error(SRL_EFORMAT, "wire: %s carries no frames, got %u", t, n);
      return SRL_OK;
    case SRL_WIRE_STATS:
      if (n > 1) return srl_error(SRL_EFORMAT, "wire: STATS carries at most one frame, got %u", n);
      return SRL_OK;
  }
  return srl_error(SRL_EFORMAT, "wire: unknown message type %u", h->type);
}


int srl_wire_parse(srl_wire_msg *m, int n_parts, const void *const *parts, const size_t *sizes) {
  if (!m) return srl_error(SRL_EINVAL, "srl_wire_parse: m must not be NULL");
  memset(m, 0, sizeof *m);
  if (n_parts < 1 || !parts || !sizes)
    return srl_error(SRL_EFORMAT, "wire: empty message (no header frame)");
  if (!parts[0] && sizes[0])
    return srl_error(SRL_EINVAL, "srl_wire_parse: part 0 is NULL with %zu bytes", sizes[0]);
  int rc = srl_wire_header_decode(&m->h, parts[0], sizes[0]);
  m->header_ok = sizes[0] == SRL_WIRE_HEADER_SIZE;
  if (rc < 0) return rc;

  // the frames present must be the frames announced, each of its announced size
  int got = n_parts - 1;
  const char *t = srl_wire_type_name(m->h.type);
  if (got > SRL_WIRE_MAX_FRAMES)
    return srl_error(SRL_EFORMAT, "wire: %s message has %d frames after the header, at most %d", t,
                     got, SRL_WIRE_MAX_FRAMES);
  if ((uint32_t)got != m->h.n_frames)
    return srl_error(SRL_EFORMAT,
                     "wire: %s header announces %u frames but %d arrived (truncated or "
                     "extra frames)",
                     t, m->h.n_frames, got);
  for (int i = 0; i < got; i++) {
    if (sizes[i + 1] != m->h.sizes[i])
      return srl_error(SRL_EFORMAT, "wire: %s frame %d has %zu bytes, the header says %u", t, i,
                       sizes[i + 1], m->h.sizes[i]);
    if (sizes[i + 1] > SRL_WIRE_FRAME_MAX)
      return srl_error(SRL_EFORMAT, "wire: %s frame %d of %zu bytes is oversize (at most %u)", t, i,
                       sizes[i + 1], SRL_WIRE_FRAME_MAX);
    if (!parts[i + 1] && sizes[i + 1])
      return srl_error(SRL_EINVAL, "srl_wire_parse: part %d is NULL with %zu bytes", i + 1,
                       sizes[i + 1]);
  }
  for (int i = 0; i < got; i++) {
    m->frame[i] = parts[i + 1];
    m->size[i] = sizes[i + 1];
  }
  rc = check_shape(m);
  if (rc < 0) {
    for (int i = 0; i < SRL_WIRE_MAX_FRAMES; i++) m->frame[i] = NULL, m->size[i] = 0;
    return rc;
  }
  return SRL_OK;
}


int srl_wire_expect(const srl_wire_msg *m, int i, size_t bytes, const char *what) {
  if (i < 0 || i >= (int)m->h.n_frames)
    return srl_error(SRL_EFORMAT, "wire: %s: frame %d is missing (%s carries %u)", what, i,
                     srl_wire_type_name(m->h.type), m->h.n_frames);
  if (m->size[i] != bytes)
    return srl_error(SRL_EFORMAT, "wire: %s: frame %d has %zu bytes, expected %zu", what, i,
                     m->size[i], bytes);
  return SRL_OK;
}


//---- sockets ------------------------------------------------------------------------------------

// a status for a failed zmq call
static int zmq_status(const char *what) {
  int e = zmq_errno();
  if (e == EAGAIN) return srl_error(SRL_ETIMEOUT, "wire: %s timed out", what);
  if (e == EINTR) return srl_error(SRL_EINTERRUPTED, "wire: %s interrupted", what);
  return srl_error(SRL_EIO, "wire: %s: %s", what, zmq_strerror(e));
}


int srl_wire_socket_defaults(void *sock, int sndtimeo_ms, int rcvtimeo_ms) {
  int zero = 0;
  if (zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero) ||
      zmq_setsockopt(sock, ZMQ_SNDTIMEO, &sndtimeo_ms, sizeof sndtimeo_ms) ||
      zmq_setsockopt(sock, ZMQ_RCVTIMEO, &rcvtimeo_ms, sizeof rcvtimeo_ms))
    return zmq_status("setting socket options");
  return SRL_OK;
}


int srl_wire_send(void *sock, const srl_wire_route *route, const srl_wire_header *h,
                  const void *const *frames) {
  if (!sock || !h) return srl_error(SRL_EINVAL, "srl_wire_send: sock and h must not be NULL");
  if (h->n_frames > SRL_WIRE_MAX_FRAMES)
    return srl_error(SRL_EINVAL, "srl_wire_send: %u frames, at most %d", h->n_frames,
                     SRL_WIRE_MAX_FRAMES);
  for (uint32_t i = 0; i < h->n_frames; i++)
    if (h->sizes[i] && (!frames || !frames[i]))
      return srl_error(SRL_EINVAL, "srl_wire_send: frame %u of %u bytes is NULL", i, h->sizes[i]);

  // routing frames, then the header, then the payload; ZMQ_SNDMORE on all but the last part
  if (route) {
    for (int i = 0; i < route->n; i++)
      if (zmq_send(sock, route->id[i], route->len[i], ZMQ_SNDMORE) < 0)
        return zmq_status("sending the routing frames");
    if (route->delimiter && zmq_send(sock, "", 0, ZMQ_SNDMORE) < 0)
      return zmq_status("sending the delimiter");
  }
  uint8_t hb[SRL_WIRE_HEADER_SIZE];
  srl_wire_header_encode(hb, h);
  if (zmq_send(sock, hb, sizeof hb, h->n_frames ? ZMQ_SNDMORE : 0) < 0)
    return zmq_status("sending the header");
  for (uint32_t i = 0; i < h->n_frames; i++) {
    int more = i + 1 < h->n_frames ? ZMQ_SNDMORE : 0;
    if (zmq_send(sock, frames[i], h->sizes[i], more) < 0) return zmq_status("sending a frame");
  }
  return SRL_OK;
}


// whether the socket has more parts of the current message
static int has_more(void *sock) {
  int more = 0;
  size_t len = sizeof more;
  if (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len)) return 0;
  return more;
}


// receive and discard the rest of a message
static void drain(void *sock) {
  while (has_more(sock)) {
    char c;
    if (zmq_recv(sock, &c, 0, 0) < 0) break;
  }
}


// whether an 8-byte-or-more frame starts with the magic (a header, not a routing frame)
static int looks_like_header(const uint8_t *p, int n) {
  return n == SRL_WIRE_HEADER_SIZE && srl_wire_get_u32(p) == SRL_WIRE_MAGIC;
}


int srl_wire_recv(void *sock, srl_wire_route *route, srl_wire_msg *m, void *buf, size_t cap,
                  int timeout_ms) {
  if (!sock || !m || (!buf && cap))
    return srl_error(SRL_EINVAL, "srl_wire_recv: sock, m and buf must not be NULL");
  memset(m, 0, sizeof *m);

  // wait for the first part
  if (timeout_ms >= 0) {
    zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
    int rc = zmq_poll(&item, 1, timeout_ms);
    if (rc < 0) return zmq_status("polling");
    if (rc == 0) return srl_error(SRL_ETIMEOUT, "wire: no message within %d ms", timeout_ms);
  }
  int flags = timeout_ms >= 0 ? ZMQ_DONTWAIT : 0;

  // the first header-sized frame after the routing frames is the header
  uint8_t hb[SRL_WIRE_HEADER_SIZE + 8];
  int hn;
  if (route) {
    route->n = 0;
    route->delimiter = 0;
    for (;;) {
      int r = route->n < SRL_WIRE_ROUTE_MAX ? route->n : SRL_WIRE_ROUTE_MAX - 1;
      int n = zmq_recv(sock, route->id[r], SRL_WIRE_ROUTE_ID_MAX, route->n ? 0 : flags);
      if (n < 0) {
        if (route->n) drain(sock);
        return zmq_status("receiving");
      }
      if (n > SRL_WIRE_ROUTE_ID_MAX) n = SRL_WIRE_ROUTE_ID_MAX;
      int more = has_more(sock);
      if (n == 0 && route->n > 0) {
        route->delimiter = 1;
        if (!more) return srl_error(SRL_EFORMAT, "wire: empty message (no header frame)");
        break;
      }
      if (route->n > 0 && looks_like_header(route->id[r], n)) {
        // a DEALER peer without the delimiter: this frame is the header
        memcpy(hb, route->id[r], (size_t)n);
        hn = n;
        goto have_header;
      }
      if (route->n == SRL_WIRE_ROUTE_MAX) {
        drain(sock);
        return srl_error(SRL_EFORMAT, "wire: more than %d routing frames before the header",
                         SRL_WIRE_ROUTE_MAX);
      }
      route->len[route->n++] = (uint8_t)n;
      if (!more) return srl_error(SRL_EFORMAT, "wire: empty message (no header frame)");
    }
    flags = 0;
  }
  hn = zmq_recv(sock, hb, sizeof hb, route ? 0 : flags);
  if (hn < 0) {
    if (route) drain(sock);
    return zmq_status("receiving");
  }
have_header:;  // hn is the frame's full size (zmq_recv reports it even past the buffer)

  // the payload frames, each 16-byte aligned inside buf; count every part even past capacity
  const void *parts[1 + SRL_WIRE_MAX_FRAMES];
  size_t sizes[1 + SRL_WIRE_MAX_FRAMES];
  parts[0] = hb;
  sizes[0] = (size_t)hn;
  int n_parts = 1, oversize = -1;
  size_t used = 0, big = 0;
  uint8_t *base = buf;
  while (has_more(sock)) {
    int idx = n_parts - 1;
    size_t off = (used + FRAME_ALIGN - 1) & ~(size_t)(FRAME_ALIGN - 1);
    size_t room = off < cap ? cap - off : 0;
    if (idx >= SRL_WIRE_MAX_FRAMES || oversize >= 0) room = 0;
    int n = zmq_recv(sock, room ? base + off : (void *)hb, room, 0);
    if (n < 0) {
      drain(sock);
      return zmq_status("receiving");
    }
    if (idx < SRL_WIRE_MAX_FRAMES) {
      if ((size_t)n > room && oversize < 0 && n > 0) oversize = idx, big = (size_t)n;
      parts[n_parts] = room ? base + off : NULL;
      sizes[n_parts] = (size_t)n;
      if (oversize < 0) used = off + (size_t)n;
    }
    n_parts++;
  }

  // frames past the parser's view, or bigger than the buffer, are refused before parsing
  if (n_parts > 1 + SRL_WIRE_MAX_FRAMES || oversize >= 0) {
    int rc = srl_wire_header_decode(&m->h, hb, sizes[0]);
    m->header_ok = sizes[0] == SRL_WIRE_HEADER_SIZE;
    if (rc < 0) return rc;
    if (n_parts > 1 + SRL_WIRE_MAX_FRAMES)
      return srl_error(SRL_EFORMAT, "wire: %s message has %d frames after the header, at most %d",
                       srl_wire_type_name(m->h.type), n_parts - 1, SRL_WIRE_MAX_FRAMES);
    return srl_error(SRL_EFORMAT,
                     "wire: %s frame %d of %zu bytes is oversize (the receive buffer holds "
                     "%zu)",
                     srl_wire_type_name(m->h.type), oversize, big, cap);
  }
  return srl_wire_parse(m, n_parts, parts, sizes);
}


int srl_wire_send_error(void *sock, const srl_wire_route *route, const srl_wire_msg *m, int code,
                        const char *message) {
  srl_wire_header h = srl_wire_header_make(SRL_WIRE_ERROR, 0, 0);
  if (m && m->header_ok) h.seq = m->h.seq, h.session = m->h.session;
  uint8_t cb[4];
  srl_wire_put_u32(cb, (uint32_t)(int32_t)code);
  size_t len = message ? strlen(message) : 0;
  if (len > 4096) len = 4096;
  const void *frames[2] = {cb, message ? message : ""};
  h.n_frames = 2;
  h.sizes[0] = 4;
  h.sizes[1] = (uint32_t)len;
  return srl_wire_send(sock, route, &h, frames);
}


int srl_wire_error_read(const srl_wire_msg *m, int *code, char *text, size_t cap) {
  if (!m || m->h.type != SRL_WIRE_ERROR || m->h.n_frames != 2 || m->size[0] != 4)
    return srl_error(SRL_EFORMAT, "wire: not an ERROR message");
  if (code) *code = (int32_t)srl_wire_get_u32(m->frame[0]);
  if (text && cap) {
    size_t n = m->size[1] < cap - 1 ? m->size[1] : cap - 1;
    if (n) memcpy(text, m->frame[1], n);
    text[n] = 0;
  }
  return SRL_OK;
}

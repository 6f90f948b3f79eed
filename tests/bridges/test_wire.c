// test_wire.c: the wire protocol's framing: header bytes against the layout of
// docs/protocol.md, codec round trips, the parser's refusal of each malformed message kind,
// send/receive of whole messages (routing frames, oversize frames, draining), and an env server
// that answers every malformed message with ERROR and keeps serving.
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bridges/env_server.h"
#include "bridges/wire.h"
#include "core/rng.h"
#include "test.h"

static char tmpdir[] = "/tmp/srl-test-wire-XXXXXX";


// a header as a peer would write it: explicit bytes at the documented offsets
static void handmade_header(uint8_t b[56], uint16_t type, uint32_t seq, uint32_t flags,
                            uint64_t session, uint32_t n, const uint32_t *sizes) {
  memset(b, 0, 56);
  memcpy(b, "SLRW", 4);  // magic 0x57524C53 little-endian: 53 4C 52 57
  b[4] = 1;              // version
  b[6] = (uint8_t)type;
  for (int i = 0; i < 4; i++) b[8 + i] = (uint8_t)(seq >> (8 * i));
  for (int i = 0; i < 4; i++) b[12 + i] = (uint8_t)(flags >> (8 * i));
  for (int i = 0; i < 8; i++) b[16 + i] = (uint8_t)(session >> (8 * i));
  b[32] = (uint8_t)n;
  for (uint32_t k = 0; k < n; k++)
    for (int i = 0; i < 4; i++) b[36 + 4 * k + i] = (uint8_t)(sizes[k] >> (8 * i));
}


TEST(header_layout_matches_the_page) {
  srl_wire_header h = srl_wire_header_make(SRL_WIRE_STEP, 0x01020304u, 0x1122334455667788ull);
  h.flags = SRL_WIRE_WANT_IMAGE;
  h.t_ns = 0;
  h.n_frames = 1;
  h.sizes[0] = 8;
  uint8_t got[56], want[56];
  srl_wire_header_encode(got, &h);
  const uint32_t sizes[1] = {8};
  handmade_header(want, 3, 0x01020304u, 256, 0x1122334455667788ull, 1, sizes);
  CHECK(!memcmp(got, want, 56));
  CHECK(!memcmp(got, "\x53\x4c\x52\x57", 4));
  CHECK_EQ_INT(got[8], 0x04);   // seq, little-endian
  CHECK_EQ_INT(got[16], 0x88);  // session, little-endian
  CHECK_EQ_INT(got[13], 0x01);  // WANT_IMAGE is bit 8
}


// the hex blocks of docs/protocol.md's worked example (section 9), in order
static int doc_blocks(uint8_t blocks[8][64], size_t lens[8]) {
  const char *src = getenv("SRL_SOURCE_DIR");
  char path[1024];
  snprintf(path, sizeof path, "%s/docs/protocol.md", src ? src : "..");
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[512];
  int in_section = 0, n = -1, prev_hex = 0;
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, "## ", 3)) in_section = !strncmp(line, "## 9.", 5);
    unsigned off;
    int hex = in_section && sscanf(line, "%4x  ", &off) == 1 && line[4] == ' ' && line[5] == ' ';
    if (hex) {
      if (!prev_hex && ++n == 8) break;
      lens[n] = prev_hex ? lens[n] : 0;
      // up to 16 bytes "xx " after the offset; the notes after them are not hex pairs
      for (const char *p = line + 6; lens[n] < 64; p += 3) {
        unsigned v;
        if (sscanf(p, "%2x", &v) != 1 || (p[2] != ' ' && p[2] != '\n')) break;
        blocks[n][lens[n]++] = (uint8_t)v;
        if (p[2] == '\n' || (p[3] == ' ' && p[4] == ' ')) break;
      }
    }
    prev_hex = hex;
  }
  fclose(f);
  return n + 1;
}


TEST(worked_example_on_the_page_matches_the_encoder) {
  uint8_t b[8][64];
  size_t len[8];
  int n = doc_blocks(b, len);
  CHECK_EQ_INT(n, 5);
  if (n != 5) return;
  // the request: STEP seq 7 in session 0x0123456789ABCDEF at 5 s, action [0.5, -0.25]
  srl_wire_header h = srl_wire_header_make(SRL_WIRE_STEP, 7, 0x0123456789ABCDEFull);
  h.t_ns = 5000000000ull;
  h.n_frames = 1;
  h.sizes[0] = 8;
  uint8_t hb[56], fb[32];
  srl_wire_header_encode(hb, &h);
  CHECK_EQ_INT(len[0], 56);
  CHECK(!memcmp(b[0], hb, 56));
  const float act[2] = {0.5f, -0.25f};
  srl_wire_put_f32(fb, act, 2);
  CHECK_EQ_INT(len[1], 8);
  CHECK(!memcmp(b[1], fb, 8));
  // the reply: RESULT with obs[8] and the terms
  h = srl_wire_header_make(SRL_WIRE_RESULT, 7, 0x0123456789ABCDEFull);
  h.t_ns = 5000042000ull;
  h.n_frames = 2;
  h.sizes[0] = 32;
  h.sizes[1] = 16;
  srl_wire_header_encode(hb, &h);
  CHECK_EQ_INT(len[2], 56);
  CHECK(!memcmp(b[2], hb, 56));
  const float obs[8] = {0.25f, -1.0f, 0.5f, 0.0f, 1.5f, 2.0f, 0.75f, 1.0f};
  srl_wire_put_f32(fb, obs, 8);
  CHECK_EQ_INT(len[3], 32);
  CHECK(!memcmp(b[3], fb, 32));
  const float terms[4] = {0.125f, 0, 0, 0};
  srl_wire_put_f32(fb, terms, 4);
  CHECK_EQ_INT(len[4], 16);
  CHECK(!memcmp(b[4], fb, 16));
  // and the page's request parses
  const void *parts[2] = {b[0], b[1]};
  const size_t sizes[2] = {len[0], len[1]};
  srl_wire_msg m;
  CHECK_OK(srl_wire_parse(&m, 2, parts, sizes));
}


TEST(header_round_trips) {
  for (uint64_t k = 0; k < 2000; k++) {
    srl_wire_header a;
    memset(&a, 0, sizeof a);
    a.magic = SRL_WIRE_MAGIC;
    a.version = SRL_WIRE_VERSION;
    a.type = (uint16_t)(1 + srl_hash64(k) % 10);
    a.seq = (uint32_t)srl_hash64(k + 1);
    a.flags = (uint32_t)srl_hash64(k + 2);
    a.session = srl_hash64(k + 3);
    a.t_ns = srl_hash64(k + 4);
    a.n_frames = (uint32_t)(srl_hash64(k + 5) % 5);
    for (uint32_t i = 0; i < a.n_frames; i++) a.sizes[i] = (uint32_t)srl_hash64(k + 6 + i);
    uint8_t b[56];
    srl_wire_header_encode(b, &a);
    srl_wire_header d;
    CHECK_OK(srl_wire_header_decode(&d, b, 56));
    CHECK(!memcmp(&a, &d, sizeof a));
  }
}


TEST(info_and_status_round_trip) {
  srl_wire_info a = {.obs_dim = 37,
                     .act_dim = 2,
                     .max_episode_steps = 1000,
                     .image_h = 224,
                     .image_w = 112,
                     .image_c = 3,
                     .dt = 1.0f / 15.0f,
                     .server_time_ns = 0x0102030405060708ull};
  snprintf(a.env_id, sizeof a.env_id, "SafetyDriving1");
  uint8_t b[SRL_WIRE_INFO_SIZE];
  srl_wire_info_encode(b, &a);
  CHECK_EQ_INT(b[0], 37);
  CHECK_EQ_INT(b[20], 3);                        // image_c at offset 20
  CHECK(!memcmp(b + 32, "SafetyDriving1", 14));  // env_id at 32
  CHECK_EQ_INT(b[96], 0x08);                     // server_time_ns at 96
  srl_wire_info d;
  CHECK_OK(srl_wire_info_decode(&d, b, sizeof b));
  CHECK(!memcmp(&a, &d, sizeof a));
  CHECK_ERR(srl_wire_info_decode(&d, b, 112), SRL_EFORMAT);
  b[0] = 0;  // obs_dim 0
  CHECK_ERR(srl_wire_info_decode(&d, b, sizeof b), SRL_EFORMAT);

  srl_wire_status s = {.status = 4, .consecutive_misses = 9, .compute_ns = 123456789};
  uint8_t sb[SRL_WIRE_STATUS_SIZE];
  srl_wire_status_encode(sb, &s);
  srl_wire_status sd;
  CHECK_OK(srl_wire_status_decode(&sd, sb, sizeof sb));
  CHECK(!memcmp(&s, &sd, sizeof s));
  sb[0] = 6;
  CHECK_ERR(srl_wire_status_decode(&sd, sb, sizeof sb), SRL_EFORMAT);
}


// parse a header plus frames given as (pointer, size) pairs
static int parse_parts(srl_wire_msg *m, const uint8_t *hdr, size_t hsize, int n, const void **f,
                       const size_t *fs) {
  const void *parts[8] = {hdr};
  size_t sizes[8] = {hsize};
  for (int i = 0; i < n; i++) parts[1 + i] = f[i], sizes[1 + i] = fs[i];
  return srl_wire_parse(m, 1 + n, parts, sizes);
}


TEST(parser_accepts_every_documented_shape) {
  uint8_t h[56], info[SRL_WIRE_INFO_SIZE] = {0}, buf[4096] = {0};
  srl_wire_msg m;
  const void *f[4] = {buf, buf, buf, buf};
  struct {
    uint16_t type;
    int n;
    uint32_t sizes[4];
  } ok[] = {{1, 0, {0}},          {1, 1, {10}}, {2, 1, {8}},    {3, 1, {8}}, {4, 2, {32, 16}},
            {4, 3, {32, 16, 12}}, {5, 0, {0}},  {6, 2, {4, 0}}, {7, 0, {0}}, {8, 1, {148}},
            {9, 2, {8, 24}},      {10, 0, {0}}, {10, 1, {200}}};
  for (size_t k = 0; k < sizeof ok / sizeof *ok; k++) {
    handmade_header(h, ok[k].type, 5, 0, 9, (uint32_t)ok[k].n, ok[k].sizes);
    size_t fs[4];
    for (int i = 0; i < ok[k].n; i++) fs[i] = ok[k].sizes[i];
    int rc = parse_parts(&m, h, 56, ok[k].n, f, fs);
    if (rc)
      fprintf(stderr, "  shape %zu (%s): %s\n", k, srl_wire_type_name(ok[k].type), srl_errmsg());
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(m.h.n_frames, ok[k].n);
  }
  // a HELLO reply: info and two bound frames
  const uint32_t hs[3] = {SRL_WIRE_INFO_SIZE, 64, 16};
  handmade_header(h, 1, 1, 0, 77, 3, hs);
  const void *hf[3] = {info, buf, buf};
  const size_t hz[3] = {SRL_WIRE_INFO_SIZE, 64, 16};
  CHECK_OK(parse_parts(&m, h, 56, 3, hf, hz));
  CHECK(m.frame[1] == buf && m.size[1] == 64);
}


// each malformed kind is refused with SRL_EFORMAT and a message naming the fault
TEST(parser_refuses_each_malformed_kind) {
  uint8_t h[60], buf[64] = {0};
  const void *f[6] = {buf, buf, buf, buf, buf, buf};
  size_t fs[6] = {8, 8, 8, 8, 8, 8};
  srl_wire_msg m;
  const uint32_t s8[1] = {8};

  // short header
  handmade_header(h, 3, 1, 0, 1, 1, s8);
  CHECK_ERR(parse_parts(&m, h, 55, 1, f, fs), SRL_EFORMAT);
  CHECK_ERRMSG("header frame has 55 bytes");
  CHECK(!m.header_ok);
  // bad magic
  handmade_header(h, 3, 1, 0, 1, 1, s8);
  h[0] = 'X';
  CHECK_ERR(parse_parts(&m, h, 56, 1, f, fs), SRL_EFORMAT);
  CHECK_ERRMSG("bad magic");
  CHECK(m.header_ok);  // the seq can still be echoed
  CHECK_EQ_INT(m.h.seq, 1);
  // version mismatch
  handmade_header(h, 3, 1, 0, 1, 1, s8);
  h[4] = 2;
  CHECK_ERR(parse_parts(&m, h, 56, 1, f, fs), SRL_EFORMAT);
  CHECK_ERRMSG("version 2");
  // unknown types
  handmade_header(h, 0, 1, 0, 1, 0, NULL);
  CHECK_ERR(parse_parts(&m, h, 56, 0, f, fs), SRL_EFORMAT);
  CHECK_ERRMSG("unknown message type 0");
  handmade_header(h, 11, 1, 0, 1, 0, NULL);
  CHECK_ERR(parse_parts(&m, h, 56, 0, f, fs), SRL_EFORMAT);
  CHECK_ERRMSG("unknown message type 11");
  // n_frames above 4, and n_frames unequal to the frames present (truncated and extra)
  handmade_header(h, 3, 1, 0, 1, 1, s8);
  h[32] = 5;
  CHECK_ERR(parse_parts(&m, h, 56, 5, f, fs), SRL_EFORMAT);
  const uint32_t s88[2] = {16, 16};
  handmade_header(h, 4, 1, 0, 1, 2, s88);
  CHECK_ERR(parse_parts(&m, h, 56, 1, f, fs), SRL_EFORMAT);
  CHECK_ERRMSG("announces 2 frames but 1 arrived");
  handmade_header(h, 3, 1, 0, 1, 1, s8);
  CHECK_ERR(parse_parts(&m, h, 56, 2, f, fs), SRL_EFORMAT);
  CHECK_ERRMSG("announces 1 frames but 2 arrived");
  // a frame whose size differs from the header's
  const uint32_t s12[1] = {12};
  handmade_header(h, 3, 1, 0, 1, 1, s12);
  CHECK_ERR(parse_parts(&m, h, 56, 1, f, fs), SRL_EFORMAT);
  CHECK_ERRMSG("frame 0 has 8 bytes, the header says 12");
  // unused size slots and the reserved field must be 0
  handmade_header(h, 7, 1, 0, 1, 0, NULL);
  h[40] = 1;
  CHECK_ERR(parse_parts(&m, h, 56, 0, f, fs), SRL_EFORMAT);
  CHECK_ERRMSG("unused sizes[1]");
  handmade_header(h, 7, 1, 0, 1, 0, NULL);
  h[52] = 1;
  CHECK_ERR(parse_parts(&m, h, 56, 0, f, fs), SRL_EFORMAT);
  CHECK_ERRMSG("reserved");
  // truncated payloads: a RESET seed of 4 bytes, RESULT terms of 12, a STEP action of 6
  const uint32_t s4[1] = {4};
  size_t f4[1] = {4};
  handmade_header(h, 2, 1, 0, 1, 1, s4);
  CHECK_ERR(parse_parts(&m, h, 56, 1, f, f4), SRL_EFORMAT);
  CHECK_ERRMSG("RESET carries one 8-byte seed");
  const uint32_t s_r[2] = {32, 12};
  size_t f_r[2] = {32, 12};
  handmade_header(h, 4, 1, 0, 1, 2, s_r);
  CHECK_ERR(parse_parts(&m, h, 56, 2, f, f_r), SRL_EFORMAT);
  CHECK_ERRMSG("terms frame has 12 bytes");
  const uint32_t s6[1] = {6};
  size_t f6[1] = {6};
  handmade_header(h, 3, 1, 0, 1, 1, s6);
  CHECK_ERR(parse_parts(&m, h, 56, 1, f, f6), SRL_EFORMAT);
  // oversize: a frame past SRL_WIRE_FRAME_MAX (never read), a client name past 64 bytes
  const uint32_t big[1] = {SRL_WIRE_FRAME_MAX + 4};
  size_t fbig[1] = {SRL_WIRE_FRAME_MAX + 4};
  handmade_header(h, 3, 1, 0, 1, 1, big);
  CHECK_ERR(parse_parts(&m, h, 56, 1, f, fbig), SRL_EFORMAT);
  CHECK_ERRMSG("oversize");
  const uint32_t s65[1] = {65};
  size_t f65[1] = {65};
  uint8_t name[65] = {0};
  const void *fn[1] = {name};
  handmade_header(h, 1, 1, 0, 0, 1, s65);
  CHECK_ERR(parse_parts(&m, h, 56, 1, fn, f65), SRL_EFORMAT);
  CHECK_ERRMSG("client name has 65 bytes");
  // no header at all
  CHECK_ERR(srl_wire_parse(&m, 0, NULL, NULL), SRL_EFORMAT);
  // a refused message leaves no frame pointers behind
  for (int i = 0; i < 4; i++) CHECK(m.frame[i] == NULL);
}


TEST(expect_checks_env_sizes) {
  uint8_t h[56], buf[16] = {0};
  const uint32_t s8[1] = {8};
  const void *f[1] = {buf};
  size_t fs[1] = {8};
  srl_wire_msg m;
  handmade_header(h, 3, 1, 0, 1, 1, s8);
  CHECK_OK(parse_parts(&m, h, 56, 1, f, fs));
  CHECK_OK(srl_wire_expect(&m, 0, 8, "STEP action of act_dim 2"));
  CHECK_ERR(srl_wire_expect(&m, 0, 12, "STEP action of act_dim 3"), SRL_EFORMAT);
  CHECK_ERRMSG("act_dim 3: frame 0 has 8 bytes, expected 12");
  CHECK_ERR(srl_wire_expect(&m, 1, 8, "x"), SRL_EFORMAT);
}


//---- sockets --------------------------------------------------------------------------------

TEST(send_and_receive_whole_messages) {
  void *ctx = zmq_ctx_new();
  void *a = zmq_socket(ctx, ZMQ_PAIR), *b = zmq_socket(ctx, ZMQ_PAIR);
  CHECK_OK(srl_wire_socket_defaults(a, 1000, 1000));
  CHECK_OK(srl_wire_socket_defaults(b, 1000, 1000));
  CHECK(zmq_bind(a, "inproc://wire-pair") == 0);
  CHECK(zmq_connect(b, "inproc://wire-pair") == 0);
  static uint8_t buf[1 << 16];
  float obs[5] = {1.5f, -2.0f, 3.25f, 0.0f, 1e-20f}, terms[4] = {0.5f, 1.0f, 0.25f, -3.0f};
  uint8_t img[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

  for (uint32_t n = 0; n <= 3; n++) {
    srl_wire_header h =
        srl_wire_header_make(n == 0 ? SRL_WIRE_HEARTBEAT : SRL_WIRE_RESULT, 40 + n, 99);
    if (n == 1) continue;  // RESULT needs 2 or 3 frames
    const void *frames[3] = {obs, terms, img};
    h.n_frames = n;
    const uint32_t sz[3] = {sizeof obs, sizeof terms, sizeof img};
    for (uint32_t i = 0; i < n; i++) h.sizes[i] = sz[i];
    CHECK_OK(srl_wire_send(a, NULL, &h, frames));
    srl_wire_msg m;
    CHECK_OK(srl_wire_recv(b, NULL, &m, buf, sizeof buf, 1000));
    CHECK_EQ_INT(m.h.seq, 40 + n);
    CHECK_EQ_INT(m.h.n_frames, n);
    for (uint32_t i = 0; i < n; i++) {
      CHECK_EQ_INT(m.size[i], sz[i]);
      CHECK(!memcmp(m.frame[i], frames[i], sz[i]));
      CHECK((((uintptr_t)m.frame[i]) & 15) == 0);  // 16-byte aligned in buf
    }
  }

  // a frame bigger than the buffer is refused as oversize; the socket stays usable
  srl_wire_header h = srl_wire_header_make(SRL_WIRE_STEP, 7, 1);
  h.n_frames = 1;
  h.sizes[0] = 4096;
  static uint8_t large[4096];
  const void *lf[1] = {large};
  CHECK_OK(srl_wire_send(a, NULL, &h, lf));
  srl_wire_msg m;
  CHECK_ERR(srl_wire_recv(b, NULL, &m, buf, 1024, 1000), SRL_EFORMAT);
  CHECK_ERRMSG("oversize");
  CHECK(m.header_ok && m.h.seq == 7);
  h = srl_wire_header_make(SRL_WIRE_HEARTBEAT, 8, 1);
  CHECK_OK(srl_wire_send(a, NULL, &h, NULL));
  CHECK_OK(srl_wire_recv(b, NULL, &m, buf, 1024, 1000));
  CHECK_EQ_INT(m.h.seq, 8);

  // more than four frames: drained and refused, the next message arrives whole
  uint8_t hb[56];
  const uint32_t s5[4] = {1, 1, 1, 1};
  handmade_header(hb, 10, 9, 0, 1, 4, s5);
  zmq_send(a, hb, 56, ZMQ_SNDMORE);
  for (int i = 0; i < 5; i++) zmq_send(a, "x", 1, i < 4 ? ZMQ_SNDMORE : 0);
  CHECK_ERR(srl_wire_recv(b, NULL, &m, buf, sizeof buf, 1000), SRL_EFORMAT);
  CHECK_ERRMSG("5 frames after the header");
  h = srl_wire_header_make(SRL_WIRE_CLOSE, 10, 1);
  CHECK_OK(srl_wire_send(a, NULL, &h, NULL));
  CHECK_OK(srl_wire_recv(b, NULL, &m, buf, sizeof buf, 1000));
  CHECK_EQ_INT(m.h.type, SRL_WIRE_CLOSE);

  // nothing to receive: a timeout, promptly
  uint64_t t0 = srl_wire_now_ns();
  CHECK_ERR(srl_wire_recv(b, NULL, &m, buf, sizeof buf, 50), SRL_ETIMEOUT);
  CHECK(srl_wire_now_ns() - t0 < 1000000000ull);
  zmq_close(a);
  zmq_close(b);
  zmq_ctx_term(ctx);
}


TEST(router_routes_req_and_dealer_peers) {
  void *ctx = zmq_ctx_new();
  void *r = zmq_socket(ctx, ZMQ_ROUTER), *q = zmq_socket(ctx, ZMQ_REQ),
       *d = zmq_socket(ctx, ZMQ_DEALER);
  srl_wire_socket_defaults(r, 1000, 1000);
  srl_wire_socket_defaults(q, 1000, 1000);
  srl_wire_socket_defaults(d, 1000, 1000);
  CHECK(zmq_bind(r, "inproc://wire-router") == 0);
  zmq_connect(q, "inproc://wire-router");
  zmq_connect(d, "inproc://wire-router");
  static uint8_t buf[4096];
  srl_wire_route route;
  srl_wire_msg m;

  // a REQ peer: identity and delimiter are kept and used for the reply
  srl_wire_header h = srl_wire_header_make(SRL_WIRE_HEARTBEAT, 31, 5);
  CHECK_OK(srl_wire_send(q, NULL, &h, NULL));
  CHECK_OK(srl_wire_recv(r, &route, &m, buf, sizeof buf, 1000));
  CHECK_EQ_INT(route.n, 1);
  CHECK(route.delimiter);
  h = srl_wire_header_make(SRL_WIRE_HEARTBEAT, 31, 5);
  CHECK_OK(srl_wire_send(r, &route, &h, NULL));
  CHECK_OK(srl_wire_recv(q, NULL, &m, buf, sizeof buf, 1000));
  CHECK_EQ_INT(m.h.seq, 31);

  // a DEALER peer that sends no delimiter gets its reply without one
  uint8_t hb[56];
  handmade_header(hb, 7, 32, 0, 5, 0, NULL);
  zmq_send(d, hb, 56, 0);
  CHECK_OK(srl_wire_recv(r, &route, &m, buf, sizeof buf, 1000));
  CHECK_EQ_INT(route.n, 1);
  CHECK(!route.delimiter);
  CHECK_OK(srl_wire_send(r, &route, &m.h, NULL));
  uint8_t back[64];
  CHECK_EQ_INT(zmq_recv(d, back, sizeof back, 0), 56);
  CHECK(!memcmp(back, hb, 56));

  // a message of routing frames alone is malformed, with the route kept for the ERROR
  zmq_send(d, "", 0, 0);
  CHECK_ERR(srl_wire_recv(r, &route, &m, buf, sizeof buf, 1000), SRL_EFORMAT);
  CHECK(route.n >= 1);
  CHECK_OK(srl_wire_send_error(r, &route, &m, SRL_EFORMAT, "empty"));
  uint8_t part[64];
  int n1 = zmq_recv(d, part, sizeof part, 0);  // the delimiter echoed, then the header
  CHECK_EQ_INT(n1, 0);
  CHECK_EQ_INT(zmq_recv(d, part, sizeof part, 0), 56);
  CHECK_EQ_INT(part[6], SRL_WIRE_ERROR);
  char rest[64];
  while (1) {
    int more = 0;
    size_t len = sizeof more;
    zmq_getsockopt(d, ZMQ_RCVMORE, &more, &len);
    if (!more) break;
    zmq_recv(d, rest, sizeof rest, 0);
  }
  zmq_close(r);
  zmq_close(q);
  zmq_close(d);
  zmq_ctx_term(ctx);
}


//---- an env server under malformed traffic ----------------------------------------------------

static volatile sig_atomic_t server_stop;


static void *serve(void *arg) {
  srl_env_server_run(arg, &server_stop);
  return NULL;
}


typedef struct raw_peer {
  void *ctx, *sock;
} raw_peer;


// send parts (a DEALER with the delimiter first), then receive the reply's parts
static int exchange(raw_peer *p, int n, const void **parts, const size_t *sizes, srl_wire_msg *m,
                    uint8_t *store, size_t cap) {
  zmq_send(p->sock, "", 0, n ? ZMQ_SNDMORE : 0);  // the delimiter alone: an empty message
  for (int i = 0; i < n; i++) zmq_send(p->sock, parts[i], sizes[i], i + 1 < n ? ZMQ_SNDMORE : 0);
  zmq_pollitem_t it = {.socket = p->sock, .events = ZMQ_POLLIN};
  if (zmq_poll(&it, 1, 2000) != 1) return SRL_ETIMEOUT;
  char d[8];
  zmq_recv(p->sock, d, sizeof d, 0);  // the delimiter
  const void *rp[8];
  size_t rs[8];
  int k = 0;
  size_t used = 0;
  for (;;) {
    int more = 0;
    size_t len = sizeof more;
    zmq_getsockopt(p->sock, ZMQ_RCVMORE, &more, &len);
    if (!more || k == 8) break;
    int r = zmq_recv(p->sock, store + used, cap - used, 0);
    rp[k] = store + used;
    rs[k++] = (size_t)r;
    used += (size_t)r;
  }
  return srl_wire_parse(m, k, rp, rs);
}


// the ERROR code and text of a reply
static int error_of(const srl_wire_msg *m, char *text, size_t cap) {
  int code = 0;
  if (m->h.type != SRL_WIRE_ERROR || srl_wire_error_read(m, &code, text, cap)) return 1;
  return code;
}


TEST(server_answers_malformed_messages_and_keeps_serving) {
  char bind[256];
  snprintf(bind, sizeof bind, "ipc://%s/env", tmpdir);
  srl_env_server_config cfg = {.env_id = "SimplePointGoal", .bind = bind};
  srl_env_server *s = NULL;
  CHECK_OK(srl_env_server_create(&s, &cfg));
  if (!s) return;
  server_stop = 0;
  pthread_t th;
  pthread_create(&th, NULL, serve, s);
  raw_peer p = {zmq_ctx_new(), NULL};
  p.sock = zmq_socket(p.ctx, ZMQ_DEALER);
  srl_wire_socket_defaults(p.sock, 1000, 1000);
  zmq_connect(p.sock, bind);
  static uint8_t store[1 << 16];
  srl_wire_msg m;
  char text[512];

  // a session first: HELLO, then RESET
  uint8_t h[60];
  handmade_header(h, 1, 1, 0, 0, 0, NULL);
  const void *parts[8] = {h};
  size_t sizes[8] = {56};
  CHECK_OK(exchange(&p, 1, parts, sizes, &m, store, sizeof store));
  CHECK_EQ_INT(m.h.type, SRL_WIRE_HELLO);
  uint64_t session = m.h.session;
  CHECK(session != 0);
  uint8_t seed[8] = {3};
  const uint32_t s8[1] = {8};
  handmade_header(h, 2, 2, 0, session, 1, s8);
  parts[1] = seed;
  sizes[1] = 8;
  CHECK_OK(exchange(&p, 2, parts, sizes, &m, store, sizeof store));
  CHECK_EQ_INT(m.h.type, SRL_WIRE_RESULT);

  // each malformed kind: an ERROR with SRL_EFORMAT, the request's seq echoed where readable
  static uint8_t big[1 << 16];
  float act[2] = {0.1f, 0.2f};
  struct {
    const char *what, *msg;
    int hsize, n_parts;
    uint16_t type;
    uint32_t n_frames, sizes[4];
    size_t sent[4];
    int poke_at, poke_val;  // a header byte to corrupt (-1: none)
    int code;
  } cases[] = {
      {"short header", "header frame has 40 bytes", 40, 1, 3, 0, {0}, {0}, -1, 0, SRL_EFORMAT},
      {"bad magic", "bad magic", 56, 1, 7, 0, {0}, {0}, 0, 'Z', SRL_EFORMAT},
      {"version mismatch", "version 9", 56, 1, 7, 0, {0}, {0}, 4, 9, SRL_EFORMAT},
      {"unknown type", "unknown message type 42", 56, 1, 42, 0, {0}, {0}, -1, 0, SRL_EFORMAT},
      {"n_frames mismatch",
       "announces 1 frames but 0 arrived",
       56,
       1,
       3,
       1,
       {8},
       {0},
       -1,
       0,
       SRL_EFORMAT},
      {"size mismatch", "the header says 12", 56, 2, 3, 1, {12}, {8}, -1, 0, SRL_EFORMAT},
      {"truncated frame",
       "act_dim 2: frame 0 has 4 bytes",
       56,
       2,
       3,
       1,
       {4},
       {4},
       -1,
       0,
       SRL_EFORMAT},
      {"oversize", "oversize", 56, 2, 3, 1, {1 << 16}, {1 << 16}, -1, 0, SRL_EFORMAT},
      {"too many frames",
       "at most 4",
       56,
       6,
       10,
       4,
       {1, 1, 1, 1},
       {1, 1, 1, 1},
       -1,
       0,
       SRL_EFORMAT},
      {"empty message", "no header frame", 0, 0, 0, 0, {0}, {0}, -1, 0, SRL_EFORMAT},
      {"unexpected type",
       "does not take RESULT",
       56,
       3,
       4,
       2,
       {8, 16},
       {8, 16},
       -1,
       0,
       SRL_EUNSUPPORTED},
  };
  uint32_t seq = 100;
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    seq++;
    handmade_header(h, cases[k].type, seq, 0, session, cases[k].n_frames, cases[k].sizes);
    if (cases[k].poke_at >= 0) h[cases[k].poke_at] = (uint8_t)cases[k].poke_val;
    parts[0] = h;
    sizes[0] = (size_t)cases[k].hsize;
    for (int i = 1; i < cases[k].n_parts; i++) {
      parts[i] = big;
      sizes[i] = i - 1 < 4 ? cases[k].sent[i - 1] : 1;
    }
    int n_parts = cases[k].n_parts;
    if (!strcmp(cases[k].what, "truncated frame")) parts[1] = act;
    if (!strcmp(cases[k].what, "empty message")) n_parts = 0;
    int rc = exchange(&p, n_parts, parts, sizes, &m, store, sizeof store);
    if (rc) fprintf(stderr, "  case '%s': %s\n", cases[k].what, srl_errmsg());
    CHECK_EQ_INT(rc, 0);
    int code = error_of(&m, text, sizeof text);
    if (code != cases[k].code || !strstr(text, cases[k].msg))
      fprintf(stderr, "  case '%s': code %d, message '%s'\n", cases[k].what, code, text);
    CHECK_EQ_INT(code, cases[k].code);
    CHECK(strstr(text, cases[k].msg) != NULL);
    if (cases[k].hsize == 56 && cases[k].poke_at < 0 && cases[k].n_parts)
      CHECK_EQ_INT(m.h.seq, seq);
  }

  // out of order: an older seq is refused; an unknown session is named
  handmade_header(h, 3, 2, 0, session, 1, s8);
  parts[0] = h;
  sizes[0] = 56;
  parts[1] = act;
  sizes[1] = 8;
  CHECK_OK(exchange(&p, 2, parts, sizes, &m, store, sizeof store));
  CHECK_EQ_INT(error_of(&m, text, sizeof text), SRL_ESTATE);
  CHECK(strstr(text, "not newer") != NULL);
  handmade_header(h, 3, ++seq, 0, session ^ 1, 1, s8);
  CHECK_OK(exchange(&p, 2, parts, sizes, &m, store, sizeof store));
  CHECK_EQ_INT(error_of(&m, text, sizeof text), SRL_ENOTFOUND);
  CHECK(strstr(text, "unknown session") != NULL);
  // a non-finite action is refused and the episode goes on
  float nan_act[2] = {NAN, 0.0f};
  handmade_header(h, 3, ++seq, 0, session, 1, s8);
  parts[1] = nan_act;
  CHECK_OK(exchange(&p, 2, parts, sizes, &m, store, sizeof store));
  CHECK_EQ_INT(error_of(&m, text, sizeof text), SRL_ENONFINITE);

  // the server still serves: a valid STEP steps, STATS counts what happened
  handmade_header(h, 3, ++seq, 0, session, 1, s8);
  parts[1] = act;
  CHECK_OK(exchange(&p, 2, parts, sizes, &m, store, sizeof store));
  CHECK_EQ_INT(m.h.type, SRL_WIRE_RESULT);
  CHECK_EQ_INT(m.h.seq, seq);
  CHECK_EQ_INT(m.size[0], 8 * 4);
  handmade_header(h, 10, ++seq, 0, session, 0, NULL);
  CHECK_OK(exchange(&p, 1, parts, sizes, &m, store, sizeof store));
  CHECK_EQ_INT(m.h.type, SRL_WIRE_STATS);
  char json[1024] = {0};
  memcpy(json, m.frame[0], m.size[0] < 1023 ? m.size[0] : 1023);
  CHECK(strstr(json, "\"malformed\": 9") != NULL);
  CHECK(strstr(json, "\"steps\": ") != NULL);
  if (!strstr(json, "\"malformed\": 9")) fprintf(stderr, "  stats: %s\n", json);

  server_stop = 1;
  pthread_join(th, NULL);
  srl_env_server_stats st;
  srl_env_server_get_stats(s, &st);
  CHECK_EQ_INT(st.sessions, 1);
  CHECK(st.errors >= 13);
  zmq_close(p.sock);
  zmq_ctx_term(p.ctx);
  srl_env_server_destroy(s);
}


int main(void) {
  alarm(60);  // no test may hang
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(header_layout_matches_the_page);
  RUN(worked_example_on_the_page_matches_the_encoder);
  RUN(header_round_trips);
  RUN(info_and_status_round_trip);
  RUN(parser_accepts_every_documented_shape);
  RUN(parser_refuses_each_malformed_kind);
  RUN(expect_checks_env_sizes);
  RUN(send_and_receive_whole_messages);
  RUN(router_routes_req_and_dealer_peers);
  RUN(server_answers_malformed_messages_and_keeps_serving);
  char path[300];
  snprintf(path, sizeof path, "%s/env", tmpdir);
  unlink(path);
  rmdir(tmpdir);
  return TEST_REPORT();
}

// fuzz_wire.c: libFuzzer target for the wire protocol's parser and the env server's handling of
// one parsed message, without sockets.
//
// Input: byte 0 is the number of parts (mod 7), then each part is a u16 little-endian length
// (cut to what is left) and its bytes; the first part is the header frame. Invariants: no crash,
// leak or out-of-bounds read; a parsed message points only into the input and agrees with its
// header, whose encoding decodes to the same fields; and every reply the server makes to a
// parsed message is itself a valid message (it parses, and ERROR replies carry a negative code).
// A header session of 1 stands for the server's open session, so inputs can reach RESET and
// STEP handling.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridges/env_server.h"
#include "bridges/wire.h"
#include "core/error.h"

#define MAX_PARTS 6


static void die(const char *what) {
  fprintf(stderr, "fuzz_wire: %s (%s)\n", what, srl_errmsg());
  abort();
}


// a reply must parse as a message of its own
static void check_reply(const srl_env_server_reply *r) {
  uint8_t hb[SRL_WIRE_HEADER_SIZE];
  srl_wire_header_encode(hb, &r->h);
  const void *parts[1 + SRL_WIRE_MAX_FRAMES] = {hb};
  size_t sizes[1 + SRL_WIRE_MAX_FRAMES] = {sizeof hb};
  for (uint32_t i = 0; i < r->h.n_frames && i < SRL_WIRE_MAX_FRAMES; i++) {
    parts[1 + i] = r->frame[i];
    sizes[1 + i] = r->h.sizes[i];
  }
  srl_wire_msg m;
  if (srl_wire_parse(&m, 1 + (int)r->h.n_frames, parts, sizes) != 0) die("a reply does not parse");
  if (m.h.type == SRL_WIRE_ERROR) {
    int code = 0;
    char text[600];
    if (srl_wire_error_read(&m, &code, text, sizeof text) || code >= 0)
      die("an ERROR reply without a negative code");
  }
  if (m.h.type == SRL_WIRE_HELLO) {
    srl_wire_info info;
    if (srl_wire_info_decode(&info, m.frame[0], m.size[0]) != 0) die("a bad HELLO info");
  }
}


// the server and its one long-lived session (reopened when an input closes it)
static srl_env_server *server;
static uint64_t session;


static void open_session(void) {
  uint8_t hb[SRL_WIRE_HEADER_SIZE];
  srl_wire_header h = srl_wire_header_make(SRL_WIRE_HELLO, 1, 0);
  srl_wire_header_encode(hb, &h);
  const void *parts[1] = {hb};
  size_t sizes[1] = {sizeof hb};
  srl_wire_msg m;
  if (srl_wire_parse(&m, 1, parts, sizes)) die("HELLO does not parse");
  srl_env_server_reply r;
  srl_env_server_handle(server, &m, &r);
  session = r.h.type == SRL_WIRE_HELLO ? r.h.session : 0;
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!server) {
    srl_env_server_config cfg = {
        .env_id = "SimplePointGoal", .max_sessions = 4, .idle_timeout_s = -1};
    if (srl_env_server_create(&server, &cfg)) die("server");
  }
  if (size < 1) return 0;

  // split the input into parts
  int n = data[0] % (MAX_PARTS + 1);
  const void *parts[MAX_PARTS];
  size_t sizes[MAX_PARTS];
  size_t at = 1;
  for (int i = 0; i < n; i++) {
    size_t len = 0;
    if (at + 2 <= size) len = (size_t)data[at] | (size_t)data[at + 1] << 8;
    at = at + 2 <= size ? at + 2 : size;
    if (len > size - at) len = size - at;
    parts[i] = data + at;
    sizes[i] = len;
    at += len;
  }

  srl_wire_msg m;
  int rc = srl_wire_parse(&m, n, parts, sizes);
  if (rc != 0) {
    if (rc != SRL_EFORMAT) die("the parser failed with a status other than SRL_EFORMAT");
    for (int i = 0; i < SRL_WIRE_MAX_FRAMES; i++)
      if (m.frame[i]) die("a refused message kept a frame pointer");
    return 0;
  }

  // a parsed message agrees with its header and points into the input
  if ((int)m.h.n_frames != n - 1) die("n_frames disagrees with the parts");
  for (uint32_t i = 0; i < m.h.n_frames; i++) {
    if (m.size[i] != m.h.sizes[i]) die("a frame size disagrees with the header");
    if (m.size[i] && ((const uint8_t *)m.frame[i] < data ||
                      (const uint8_t *)m.frame[i] + m.size[i] > data + size))
      die("a frame points outside the input");
  }
  uint8_t hb[SRL_WIRE_HEADER_SIZE];
  srl_wire_header_encode(hb, &m.h);
  if (memcmp(hb, parts[0], SRL_WIRE_HEADER_SIZE)) die("the header does not re-encode to itself");

  // the server's answer to it
  if (!session) open_session();
  if (m.h.session == 1) m.h.session = session;
  srl_env_server_reply r;
  srl_env_server_handle(server, &m, &r);
  check_reply(&r);
  if (m.h.type == SRL_WIRE_CLOSE && r.h.type == SRL_WIRE_CLOSE && m.h.session == session)
    session = 0;

  // a session an input opened is closed again, so the table never fills up
  if (r.h.type == SRL_WIRE_HELLO && r.h.session != session) {
    srl_wire_header h = srl_wire_header_make(SRL_WIRE_CLOSE, 2, r.h.session);
    srl_wire_header_encode(hb, &h);
    const void *cp[1] = {hb};
    size_t cs[1] = {sizeof hb};
    if (srl_wire_parse(&m, 1, cp, cs)) die("CLOSE does not parse");
    srl_env_server_handle(server, &m, &r);
    if (r.h.type != SRL_WIRE_CLOSE) die("CLOSE of a fresh session failed");
  }
  return 0;
}

// env_server.h: serves any registered env over the wire protocol (docs/protocol.md) on one
// ZeroMQ ROUTER socket, so rollouts can run in another process or on another machine.
//
// Each client session (opened by HELLO, keyed by the header's session id, not by the ZeroMQ
// peer) owns one env instance; RESET and STEP run on it and are answered with RESULT. The server
// keeps each session's last reply, so a request repeating the session's last seq (a client that
// timed out and resent) is answered again without stepping twice. Sessions end at CLOSE or after
// idle_timeout without a message. Every malformed, out-of-order or unexpected message gets an
// ERROR reply and the server goes on serving; nothing a peer sends can crash or wedge it.
// Stepping allocates nothing: sessions, their envs' buffers and reply caches are sized when the
// server starts (the env itself is created at HELLO).
#ifndef SRL_BRIDGES_ENV_SERVER_H
#define SRL_BRIDGES_ENV_SERVER_H

#include <signal.h>
#include <stdint.h>

#include "bridges/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct srl_env_server_config {
  const char *env_id;        // any id srl_env_create accepts ("SimplePointGoal")
  const char *options_yaml;  // the env's options (NULL or "": defaults)
  const char *bind;          // "tcp://*:5555", "tcp://127.0.0.1:*", "ipc:///tmp/x"; NULL: no
                             // socket (requests go through srl_env_server_handle only)
  double idle_timeout_s;     // end a session after this long without a message (0: 60; < 0 never)
  int max_sessions;          // concurrent sessions (0: 64)
  int image_width, image_height;  // size of the images sent on WANT_IMAGE (0: 224×224 when the
                                  // env renders; < 0: never send images)
  const char *curve_secret;       // a secret certificate: CURVE on (NULL: plain)
  const char *allow_list;         // client public keys admitted under CURVE (NULL: any)
} srl_env_server_config;

// what the server has done since it started (also the STATS reply's JSON)
typedef struct srl_env_server_stats {
  long long requests;  // messages received
  long long hellos, resets, steps, closes, heartbeats;
  long long replayed;               // requests answered from a session's last reply (retries)
  long long errors;                 // ERROR replies, malformed messages included
  long long malformed;              // messages the parser refused
  long long expired;                // sessions ended by the idle timeout
  int sessions;                     // sessions open now
  double step_p50_us, step_p99_us;  // handling time of RESET/STEP requests (log buckets, ±5%)
} srl_env_server_stats;

// a reply the server made: its header and h.n_frames frames of h.sizes[i] bytes
typedef struct srl_env_server_reply {
  srl_wire_header h;
  const void *frame[SRL_WIRE_MAX_FRAMES];
} srl_env_server_reply;

typedef struct srl_env_server srl_env_server;

// Create the server: one probe env (to learn spaces and catch bad ids and options now), the
// session table, the socket bound to cfg->bind (with CURVE when configured). Errors name the
// env or the endpoint.
int srl_env_server_create(srl_env_server **out, const srl_env_server_config *cfg);
void srl_env_server_destroy(srl_env_server *s);

// The bound endpoint with any wildcard port resolved ("tcp://127.0.0.1:40123"); "" without one.
const char *srl_env_server_endpoint(const srl_env_server *s);

// Receive and answer messages: wait up to timeout_ms for the first, then answer every message
// already queued. Returns how many were handled (0 on timeout), SRL_EINTERRUPTED when a signal
// interrupted the wait, or SRL_EIO for a socket failure. Sessions past the idle timeout end here.
int srl_env_server_poll(srl_env_server *s, int timeout_ms);

// Serve until *stop becomes nonzero (set it from a signal handler or another thread; the server
// notices within 100 ms). Signals that interrupt the wait are otherwise ignored. 0 when stopped.
int srl_env_server_run(srl_env_server *s, const volatile sig_atomic_t *stop);

// Answer one parsed request without a socket (the core of srl_env_server_poll; used by fuzzing
// and tests). The reply points into the server's memory and stays valid until the next call.
void srl_env_server_handle(srl_env_server *s, const srl_wire_msg *req, srl_env_server_reply *reply);

// End sessions idle for longer than the idle timeout, measured at now_ns (CLOCK_MONOTONIC);
// returns how many ended.
int srl_env_server_expire(srl_env_server *s, uint64_t now_ns);

void srl_env_server_get_stats(const srl_env_server *s, srl_env_server_stats *out);

#ifdef __cplusplus
}
#endif
#endif  // SRL_BRIDGES_ENV_SERVER_H

// policy_server.h: a trained policy served over the wire protocol for hardware in the loop: a
// ROUTER socket answers ACT (an observation) with ACTION (the deterministic action and a 24-byte
// status), guarded by freshness, validity and deadline checks with a configured fallback action
// and a latched safe stop.
//
// Per ACT, in this order (the first that applies decides the reply's status):
//   latched     a safe stop is latched: the fallback, status 5, flags FALLBACK|LATCHED;
//   malformed   no observation frame, or one that is not obs_dim float32: status 2;
//   stale       the seq is not newer than the last ACT seq of the session (serial-number order,
//               so the u32 may wrap; the first ACT of a session is always newer), or the
//               observation's t_ns (when not 0, same-host CLOCK_MONOTONIC) is more than max_age
//               away from the server's clock: status 1;
//   non-finite  a NaN or infinity in the observation: status 3;
//   deadline    the policy's compute time exceeded the deadline: the computed action is
//               dropped, status 4;
//   ok          the policy's deterministic action, status 0.
// Every non-ok status answers the fallback action (zeros; hold: the last ok action, zeros before
// the first; or a per-dimension vector) with the FALLBACK flag, is counted by reason, and adds one
// to the consecutive misses (an ok reply sets them to 0). The latch_after-th consecutive miss
// latches the safe stop (that reply already carries LATCHED); only a RESET request clears it
// (and the misses). Actions are in the policy's [-1, 1] space; the plant maps them to its bounds.
//
// Other requests: HELLO (a session id; info with obs_dim, act_dim, dt = 1/rate, the policy's env
// id; observation bounds ±inf, action bounds [-1, 1]), RESET (clears the latch; acked with an
// empty RESET), STATS (JSON counters and compute-time percentiles), HEARTBEAT, CLOSE. Anything
// the protocol parser refuses, and requests the server does not serve (STEP), get ERROR; the
// server keeps serving. Sessions only key the seq order: an unknown session id is adopted, and
// session 0 (a client that never said HELLO) is one more session. The latch, hold and misses
// belong to the server: one server drives one plant.
//
// saferl allocates nothing per request: buffers, the session table, the compute-time histogram
// and the STATS text are sized at creation (libzmq itself copies each sent frame larger than 33
// bytes, the 56-byte reply header, into a message of its own). With CURVE configured (a server
// secret certificate and an allow-list of client public keys), clients not on the list are refused
// by the ZAP handler.
#ifndef SRL_BRIDGES_POLICY_SERVER_H
#define SRL_BRIDGES_POLICY_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "bridges/hil.h"
#include "bridges/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

// ACTION status values (the status frame's first u32)
typedef enum srl_action_status {
  SRL_ACTION_OK = 0,
  SRL_ACTION_STALE = 1,
  SRL_ACTION_MALFORMED = 2,
  SRL_ACTION_NONFINITE = 3,
  SRL_ACTION_DEADLINE = 4,
  SRL_ACTION_LATCHED = 5,
} srl_action_status;

#define SRL_POLICY_SERVER_SESSIONS 16  // sessions whose seq order is tracked (least recent evicted)

typedef enum srl_fallback_mode {
  SRL_FALLBACK_ZEROS = 0,
  SRL_FALLBACK_HOLD = 1,
  SRL_FALLBACK_VECTOR = 2,
} srl_fallback_mode;

typedef struct srl_policy_server_config {
  const char *bind;            // endpoint to bind ("tcp://127.0.0.1:*" picks a port); NULL: no
                               // socket (srl_policy_server_act / _handle only)
  const char *device;          // policy device (NULL: cpu)
  double rate_hz;              // the client's control rate (0: unknown): HELLO's dt, and ACTs that
                               // arrive more than 1.5 periods apart are counted as late
  long long deadline_ns;       // compute budget (0: none)
  long long max_age_ns;        // observation age limit when t_ns is set (0: none)
  srl_fallback_mode fallback;  // zeros | hold | vector
  const float *fallback_vec;   // act_dim values for SRL_FALLBACK_VECTOR (copied)
  int fallback_n;              // their count (must equal the policy's act_dim)
  int latch_after;             // consecutive misses that latch the safe stop (0: never)
  const char *curve_secret;    // server secret certificate (NULL: no CURVE)
  const char *allow_list;      // file of allowed client public keys (with curve_secret)
} srl_policy_server_config;

typedef struct srl_policy_server_stats {
  long long requests;  // ACTs
  long long ok, fallbacks;
  long long stale_seq, stale_age, malformed, nonfinite, deadline, latched;  // fallbacks by reason
  long long latches, resets;                            // times the safe stop latched / was cleared
  long long hellos, stats, heartbeats, closes, errors;  // other requests; errors: refused ones
  long long late_requests;  // ACTs more than 1.5 periods after the previous one (rate_hz > 0)
  uint32_t consecutive_misses;
  int is_latched;
  srl_lat_hist compute;  // the policy's compute time of every ACT it ran
} srl_policy_server_stats;

typedef struct srl_policy_server srl_policy_server;

// Load the policy (a run directory or checkpoint of either trainer: on-policy via
// srl_policy_load, SAC-Lag via srl_sac_policy_load), allocate everything, bind when cfg->bind.
int srl_policy_server_create(srl_policy_server **out, const char *policy_path,
                             const srl_policy_server_config *cfg);
void srl_policy_server_destroy(srl_policy_server *s);

// The bound endpoint (wildcards resolved: "tcp://127.0.0.1:45123"); "" without a socket.
const char *srl_policy_server_endpoint(const srl_policy_server *s);
int srl_policy_server_obs_dim(const srl_policy_server *s);
int srl_policy_server_act_dim(const srl_policy_server *s);
const char *srl_policy_server_env_id(const srl_policy_server *s);
const srl_policy_server_stats *srl_policy_server_get_stats(const srl_policy_server *s);

// The ACT logic without a socket: answer the observation obs (obs_bytes bytes; NULL or a wrong
// size is malformed) with sequence seq of session `session`, taken at t_ns (0: unknown), at
// server time now_ns. act gets act_dim values, st the status (compute_ns 0 when the policy did
// not run), *flags SRL_WIRE_FALLBACK / SRL_WIRE_LATCHED. Never fails; never allocates.
void srl_policy_server_act(srl_policy_server *s, float *act, srl_wire_status *st, uint32_t *flags,
                           const void *obs, size_t obs_bytes, uint64_t session, uint32_t seq,
                           uint64_t t_ns, uint64_t now_ns);

// Clear the latch and the consecutive misses (what a RESET request does).
void srl_policy_server_reset(srl_policy_server *s);

// Answer one parsed request: the reply's header and frames (pointing into the server's buffers,
// valid until the next call). Never allocates.
void srl_policy_server_handle(srl_policy_server *s, const srl_wire_msg *req, srl_wire_header *reply,
                              const void *frames[SRL_WIRE_MAX_FRAMES],
                              size_t sizes[SRL_WIRE_MAX_FRAMES]);

// The counters and compute-time percentiles as one JSON object into buf (what STATS answers);
// the length, as snprintf.
int srl_policy_server_stats_json(srl_policy_server *s, char *buf, size_t cap);

// Serve requests for up to timeout_ms (−1: until one request was answered): returns the number of
// messages answered (0 on timeout), or a negative code for a socket failure.
int srl_policy_server_poll(srl_policy_server *s, int timeout_ms);

// Serve until *stop becomes nonzero (checked every 100 ms) or srl_policy_server_request_stop.
int srl_policy_server_run(srl_policy_server *s, volatile int *stop);
void srl_policy_server_request_stop(srl_policy_server *s);  // thread- and signal-safe

// The name of a status ("ok", "stale", "malformed", "non-finite", "deadline", "latched").
const char *srl_action_status_name(uint32_t status);

// Parse a --fallback value: "zeros", "hold" or "v1,v2,..." (at most cap values).
int srl_fallback_parse(const char *text, srl_fallback_mode *mode, float *vec, int cap, int *n);

#ifdef __cplusplus
}
#endif
#endif  // SRL_BRIDGES_POLICY_SERVER_H

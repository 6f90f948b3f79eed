// remote_env.h: an srl_env whose reset and step run in another process or machine, over the
// wire protocol (docs/protocol.md), against `saferl serve env`, the CARLA adapter or any peer
// written from the protocol page.
//
// srl_env_create accepts the ids `remote:tcp://host:port` and `remote:ipc://path`. Options (YAML):
//   timeout_ms    2500   wait this long for each reply
//   retries       3      tries per request; a request fails after timeout_ms·retries
//   heartbeat_ms  10000  while the env is idle this long, a HEARTBEAT keeps the server's session
//                        alive (0: never)
//   server_key    ""     the server's public certificate (NAME.key): CURVE on
//   client_cert   ""     this client's secret certificate (NAME.key_secret), with server_key
//   want_image    false  ask for an image with every RESET/STEP result; render() returns it
//   name          ""     a client name the server may log (HELLO)
// Reliability (ZeroMQ guide, "Lazy Pirate"): each request waits timeout_ms for its reply; then
// the socket is closed (linger 0), reopened and the same request resent, up to `retries` tries,
// after which the call fails with SRL_ETIMEOUT ("remote env tcp://...: no reply in 3 tries of
// 2500 ms"); it never hangs. The server keeps the session across reconnections and answers a
// resent request from its cache, so a retried STEP never steps twice. When the server lost the
// session (restarted, or idle past its timeout) a STEP fails with the server's message and the
// next reset opens a new session (HELLO) and works. The spaces and max_episode_steps come from
// the server's HELLO; the server's env applies its own time limit.
#ifndef SRL_BRIDGES_REMOTE_ENV_H
#define SRL_BRIDGES_REMOTE_ENV_H

#include "envs/env.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_REMOTE_PREFIX "remote:"

// Connect to the env server at endpoint ("tcp://host:port", "ipc:///path") and open a session.
int srl_remote_env_create(srl_env **out, const char *endpoint, const char *options_yaml);

// what a remote env has done since it was created
typedef struct srl_remote_env_stats {
  long long requests;    // requests answered
  long long resends;     // requests sent again after a timeout
  long long reconnects;  // sockets reopened
  long long hellos;      // sessions opened (1 + reopened after the server lost one)
  long long heartbeats;  // HEARTBEATs sent
  uint64_t session;      // the server's id of the current session (0: none)
} srl_remote_env_stats;

// The statistics of a remote env (env or an env wrapping it); SRL_EINVAL for other envs.
int srl_remote_env_stats_get(const srl_env *env, srl_remote_env_stats *out);

#ifdef __cplusplus
}
#endif
#endif  // SRL_BRIDGES_REMOTE_ENV_H

// wire.h: framing of saferl's ZeroMQ protocol, version 1 (docs/protocol.md): the 56-byte
// little-endian header, the parser that checks every received message, and send/receive on a
// ZeroMQ socket into caller-owned buffers.
//
// A message is one header frame then n_frames (0..4) payload frames. The parser checks the
// header (size, magic, version, type, n_frames, sizes, reserved) and the frame shapes each type
// allows in either direction; the endpoints check what depends on the env (act_dim·4 bytes)
// with srl_wire_expect. Nothing here allocates: received frames land in a caller buffer and a
// srl_wire_msg points into it. On a ROUTER socket the routing frames (peer identity, the empty
// delimiter of REQ/DEALER peers) travel in an srl_wire_route beside the message.
#ifndef SRL_BRIDGES_WIRE_H
#define SRL_BRIDGES_WIRE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_WIRE_MAGIC 0x57524C53u  // on the wire (little-endian) the bytes 53 4C 52 57, "SLRW"
#define SRL_WIRE_VERSION 1
#define SRL_WIRE_HEADER_SIZE 56
#define SRL_WIRE_MAX_FRAMES 4
#define SRL_WIRE_INFO_SIZE 104         // HELLO reply frame 0
#define SRL_WIRE_STATUS_SIZE 24        // ACTION frame 1
#define SRL_WIRE_NAME_MAX 64           // HELLO request frame 0 (client name), bytes
#define SRL_WIRE_ENV_ID_SIZE 64        // env_id field of the HELLO info
#define SRL_WIRE_FRAME_MAX (1u << 28)  // the largest payload frame the parser accepts (256 MiB)
#define SRL_WIRE_ROUTE_MAX 4           // routing frames kept in front of a ROUTER's message
#define SRL_WIRE_ROUTE_ID_MAX 255      // ZeroMQ routing ids are at most 255 bytes

typedef enum srl_wire_type {
  SRL_WIRE_HELLO = 1,
  SRL_WIRE_RESET,
  SRL_WIRE_STEP,
  SRL_WIRE_RESULT,
  SRL_WIRE_CLOSE,
  SRL_WIRE_ERROR,
  SRL_WIRE_HEARTBEAT,
  SRL_WIRE_ACT,
  SRL_WIRE_ACTION,
  SRL_WIRE_STATS
} srl_wire_type;

// header flags
enum {
  SRL_WIRE_TERMINATED = 1,
  SRL_WIRE_TRUNCATED = 2,
  SRL_WIRE_DIVERGED = 4,
  SRL_WIRE_GOAL_MET = 8,
  SRL_WIRE_FALLBACK = 16,
  SRL_WIRE_LATCHED = 32,
  SRL_WIRE_WANT_IMAGE = 256
};

typedef struct srl_wire_header {
  uint32_t magic;                       // SRL_WIRE_MAGIC
  uint16_t version;                     // SRL_WIRE_VERSION
  uint16_t type;                        // srl_wire_type
  uint32_t seq;                         // chosen by the client; a reply echoes it
  uint32_t flags;                       // SRL_WIRE_TERMINATED...
  uint64_t session;                     // 0 in a HELLO request, the server's id afterwards
  uint64_t t_ns;                        // sender's CLOCK_MONOTONIC ns when made; 0 unknown
  uint32_t n_frames;                    // payload frames that follow (0..4)
  uint32_t sizes[SRL_WIRE_MAX_FRAMES];  // bytes of each payload frame (unused 0)
  uint32_t reserved;                    // 0
} srl_wire_header;

// HELLO reply frame 0 (104 bytes on the wire)
typedef struct srl_wire_info {
  int32_t obs_dim, act_dim, max_episode_steps;
  int32_t image_h, image_w, image_c;  // image_c 0: the server sends no images
  float dt;                           // seconds per step; 0 unknown
  char env_id[SRL_WIRE_ENV_ID_SIZE];  // NUL-padded
  uint64_t server_time_ns;
} srl_wire_info;

// ACTION frame 1 (24 bytes on the wire)
typedef struct srl_wire_status {
  uint32_t status;  // 0 ok, 1 stale, 2 malformed, 3 non-finite, 4 deadline overrun, 5 latched
  uint32_t consecutive_misses;
  uint64_t compute_ns;
} srl_wire_status;

// a received message: the header and its payload frames, pointing into caller-owned memory
typedef struct srl_wire_msg {
  srl_wire_header h;
  const uint8_t *frame[SRL_WIRE_MAX_FRAMES];  // frame[i] has size[i] bytes; NULL when unused
  size_t size[SRL_WIRE_MAX_FRAMES];
  int header_ok;  // the header frame had 56 bytes, so h holds its fields (seq, session) even
                  // when a later check failed: an ERROR reply can echo them
} srl_wire_msg;

// the routing frames of a ROUTER socket's message: the peer's identity, any further hops, and
// whether an empty delimiter frame followed them (REQ and well-behaved DEALER peers send one)
typedef struct srl_wire_route {
  int n;          // routing frames (1..SRL_WIRE_ROUTE_MAX)
  int delimiter;  // an empty frame followed them
  uint8_t len[SRL_WIRE_ROUTE_MAX];
  uint8_t id[SRL_WIRE_ROUTE_MAX][SRL_WIRE_ROUTE_ID_MAX];
} srl_wire_route;

//---- header and payload codecs (explicit little-endian, no struct punning) --------------------

// A header of the given type with magic and version set, seq, session, t_ns = now and no frames.
srl_wire_header srl_wire_header_make(srl_wire_type type, uint32_t seq, uint64_t session);
void srl_wire_header_encode(uint8_t out[SRL_WIRE_HEADER_SIZE], const srl_wire_header *h);
// Decode a header frame and check magic, version, type, n_frames, unused sizes and reserved;
// SRL_EFORMAT with the reason ("wire: bad magic 0x..."). h is filled whenever size is 56.
int srl_wire_header_decode(srl_wire_header *h, const void *buf, size_t size);

void srl_wire_info_encode(uint8_t out[SRL_WIRE_INFO_SIZE], const srl_wire_info *info);
// SRL_EFORMAT when size is not 104, a dimension is out of range or env_id is not NUL-terminated
int srl_wire_info_decode(srl_wire_info *info, const void *buf, size_t size);
void srl_wire_status_encode(uint8_t out[SRL_WIRE_STATUS_SIZE], const srl_wire_status *st);
int srl_wire_status_decode(srl_wire_status *st, const void *buf, size_t size);

// little-endian float32 / u32 / u64 loads and stores on unaligned bytes
void srl_wire_put_f32(uint8_t *out, const float *x, size_t n);
void srl_wire_get_f32(float *out, const uint8_t *in, size_t n);
void srl_wire_put_u32(uint8_t *out, uint32_t v);
void srl_wire_put_u64(uint8_t *out, uint64_t v);
uint32_t srl_wire_get_u32(const uint8_t *in);
uint64_t srl_wire_get_u64(const uint8_t *in);

// CLOCK_MONOTONIC in ns, the clock of header.t_ns
uint64_t srl_wire_now_ns(void);
// "HELLO", "STEP", ...; "unknown" for other values
const char *srl_wire_type_name(int type);

//---- parsing --------------------------------------------------------------------------------

// Parse a whole multipart message already received (parts[0] = header frame, then the payload
// frames; routing frames already removed). Checks the header, that n_frames equals the frames
// present, each frame's size against sizes[i] and SRL_WIRE_FRAME_MAX, and the frame shapes the
// type allows in either direction (HELLO: none, a name ≤ 64 bytes, or info + two bound frames;
// RESET: an 8-byte seed; STEP/ACT: a float vector; RESULT: obs, 16-byte terms, optional image;
// ERROR: i32 code + message; ACTION: a float vector + 24-byte status; CLOSE, HEARTBEAT: none;
// STATS: none or JSON). SRL_EFORMAT with the reason on any failure; m never points outside parts.
int srl_wire_parse(srl_wire_msg *m, int n_parts, const void *const *parts, const size_t *sizes);

// Check that frame i of a parsed message has `bytes` bytes ("what" names it in the message:
// "STEP action of act_dim 2"); SRL_EFORMAT otherwise.
int srl_wire_expect(const srl_wire_msg *m, int i, size_t bytes, const char *what);

//---- sockets ----------------------------------------------------------------------------------

// Send one message: the routing frames (route may be NULL: REQ/DEALER-with-envelope sockets),
// the encoded header, then h->n_frames frames of h->sizes[i] bytes each from frames[i]. Blocks
// as the socket's ZMQ_SNDTIMEO says. SRL_ETIMEOUT when the socket cannot take it in time,
// SRL_EINTERRUPTED on a signal, SRL_EIO otherwise. Allocates nothing in saferl (libzmq copies
// each frame into its own message).
int srl_wire_send(void *sock, const srl_wire_route *route, const srl_wire_header *h,
                  const void *const *frames);

// Receive one whole message (every part is always drained, even when it is malformed) into m,
// with the payload frames copied into buf (cap bytes, each frame 16-byte aligned) and, on a
// ROUTER socket, the routing frames into route (pass NULL on REQ/DEALER sockets). timeout_ms:
// -1 waits as the socket's ZMQ_RCVTIMEO says, 0 does not wait, > 0 waits up to that long.
// Returns 0, SRL_ETIMEOUT when no message came, SRL_EINTERRUPTED on a signal, SRL_EFORMAT for a
// malformed message (m->header_ok says whether its seq and session can be echoed; a frame larger
// than what is left of buf is "oversize"), SRL_EIO for a socket error.
int srl_wire_recv(void *sock, srl_wire_route *route, srl_wire_msg *m, void *buf, size_t cap,
                  int timeout_ms);

// Reply ERROR (code, message) to the message m (its seq and session when m->header_ok).
int srl_wire_send_error(void *sock, const srl_wire_route *route, const srl_wire_msg *m, int code,
                        const char *message);
// Read an ERROR message's code and text (text is NUL-terminated, truncated to cap).
int srl_wire_error_read(const srl_wire_msg *m, int *code, char *text, size_t cap);

// Set ZMQ_LINGER 0 and the send/receive timeouts (ms, -1 forever) on a socket.
int srl_wire_socket_defaults(void *sock, int sndtimeo_ms, int rcvtimeo_ms);

#ifdef __cplusplus
}
#endif
#endif  // SRL_BRIDGES_WIRE_H

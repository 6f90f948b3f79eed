// error.h: status codes, the thread's last error message, and invariant checks.
//
// Every fallible function returns int: 0 on success, a negative SRL_E* code on failure, and
// leaves a human-readable message with context in srl_errmsg() ("run.yaml:12:3: unknown key
// 'stpes' (did you mean 'steps'?)"). The library never exits on bad input; SRL_ASSERT is only
// for invariants the library itself broke, and goes through a replaceable handler.
#ifndef SRL_ERROR_H
#define SRL_ERROR_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

// X(name, code, description): the one table behind the enum and srl_strerror
#define SRL_ERRNO_MAP(X)                                        \
  X(OK, 0, "success")                                           \
  X(EINVAL, -1, "invalid argument")                             \
  X(ENOMEM, -2, "out of memory")                                \
  X(EIO, -3, "input/output error")                              \
  X(EFORMAT, -4, "malformed file or message")                   \
  X(ECONFIG, -5, "invalid configuration")                       \
  X(ENODEV, -6, "device not available")                         \
  X(ENOTFOUND, -7, "not found")                                 \
  X(ERANGE, -8, "value out of range")                           \
  X(ENONFINITE, -9, "non-finite value")                         \
  X(ETIMEOUT, -10, "timed out")                                 \
  X(ESTATE, -11, "invalid state")                               \
  X(ECUDA, -12, "cuda error")                                   \
  X(EUNSUPPORTED, -13, "not supported by this build or device") \
  X(EINTERRUPTED, -14, "interrupted")

typedef enum srl_status {
#define SRL__ERR_ENUM(name, code, desc) SRL_##name = code,
  SRL_ERRNO_MAP(SRL__ERR_ENUM)
#undef SRL__ERR_ENUM
} srl_status;

// Description of a status code ("invalid argument"); never NULL.
const char *srl_strerror(int code);

// Name of a status code ("SRL_EINVAL"); never NULL.
const char *srl_errname(int code);

// The calling thread's last error message; "" when none was set.
const char *srl_errmsg(void);

// Forget the calling thread's last error message.
void srl_errclear(void);

// Set the thread's message from a printf format and return code, so callers write
// `return srl_error(SRL_EINVAL, "batch %d exceeds capacity %d", b, cap);`.
int srl_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int srl_verror(int code, const char *fmt, va_list ap);

// Prefix the thread's current message with context ("loading ckpt.safetensors: ") and return
// code unchanged; used while an error travels up through layers.
int srl_error_context(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

//---- invariants ---------------------------------------------------------------------------

// Handler called on a broken invariant; the default prints file:line and aborts.
typedef void (*srl_abort_handler)(const char *file, int line, const char *msg);

// Replace the abort handler (NULL restores the default); returns the previous one.
srl_abort_handler srl_set_abort_handler(srl_abort_handler handler);

void srl__abort(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SRL_ABORT(...) srl__abort(__FILE__, __LINE__, __VA_ARGS__)
#define SRL_ASSERT(x)                                 \
  do {                                                \
    if (!(x)) SRL_ABORT("SRL_ASSERT(%s) failed", #x); \
  } while (0)

// Propagate a negative status: `SRL_TRY(srl_config_load(...));`
#define SRL_TRY(expr)                \
  do {                               \
    int srl__rc = (expr);            \
    if (srl__rc < 0) return srl__rc; \
  } while (0)

#ifdef __cplusplus
}
#endif
#endif  // SRL_ERROR_H

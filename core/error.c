// error.c: the status table, the thread-local last message and the abort handler.
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SRL_ERRMSG_CAP 1024

static _Thread_local char errmsg[SRL_ERRMSG_CAP];


const char *srl_strerror(int code) {
  switch (code) {
#define SRL__ERR_DESC(name, c, desc) \
  case c:                            \
    return desc;
    SRL_ERRNO_MAP(SRL__ERR_DESC)
#undef SRL__ERR_DESC
  }
  return "unknown error";
}


const char *srl_errname(int code) {
  switch (code) {
#define SRL__ERR_NAME(name, c, desc) \
  case c:                            \
    return "SRL_" #name;
    SRL_ERRNO_MAP(SRL__ERR_NAME)
#undef SRL__ERR_NAME
  }
  return "SRL_E?";
}


const char *srl_errmsg(void) {
  return errmsg;
}


void srl_errclear(void) {
  errmsg[0] = '\0';
}


int srl_verror(int code, const char *fmt, va_list ap) {
  vsnprintf(errmsg, sizeof errmsg, fmt, ap);
  return code;
}


int srl_error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  srl_verror(code, fmt, ap);
  va_end(ap);
  return code;
}


int srl_error_context(int code, const char *fmt, ...) {
  char prefix[SRL_ERRMSG_CAP], old[SRL_ERRMSG_CAP];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  // an empty message gets the code's description so the context never stands alone
  snprintf(old, sizeof old, "%s", errmsg[0] ? errmsg : srl_strerror(code));
  // prefix first, then as much of the old message as fits
  size_t np = strlen(prefix), room = sizeof errmsg - 1;
  if (np > room) np = room;
  size_t no = strlen(old);
  if (no > room - np) no = room - np;
  memcpy(errmsg, prefix, np);
  memcpy(errmsg + np, old, no);
  errmsg[np + no] = '\0';
  return code;
}


//---- invariants ---------------------------------------------------------------------------

static void default_abort(const char *file, int line, const char *msg) {
  fprintf(stderr, "saferl: internal error at %s:%d: %s\n", file, line, msg);
  abort();
}

static srl_abort_handler abort_handler = default_abort;


srl_abort_handler srl_set_abort_handler(srl_abort_handler handler) {
  srl_abort_handler old = abort_handler;
  abort_handler = handler ? handler : default_abort;
  return old;
}


void srl__abort(const char *file, int line, const char *fmt, ...) {
  char msg[SRL_ERRMSG_CAP];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  abort_handler(file, line, msg);
  abort();  // a handler that returns still must not let execution continue
}

// interrupt.c: the stop request behind Ctrl-C and SIGTERM (see interrupt.h).
#include "core/interrupt.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "core/error.h"

#define SAME_REQUEST_S 1.0  // copies of a signal within this time are the same request

static volatile sig_atomic_t g_signal;
// when g_signal was set, in ns; a lock-free atomic, since two threads may take signals at once
static long long g_first_ns;


static void on_signal(int sig) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);  // async-signal-safe
  long long now_ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec, first = 0;
  // the first signal stores its time; a later one reads the first's time into `first`
  if (__atomic_compare_exchange_n(&g_first_ns, &first, now_ns, 0, __ATOMIC_SEQ_CST,
                                  __ATOMIC_SEQ_CST)) {
    g_signal = sig;
    return;
  }
  if (now_ns - first < (long long)(SAME_REQUEST_S * 1e9)) return;
  signal(sig, SIG_DFL);  // a later signal: act as if no handler had been installed
  raise(sig);
}


int srl_interrupt_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGINT);  // the handler never nests inside itself
  sigaddset(&sa.sa_mask, SIGTERM);
  sa.sa_flags = SA_RESTART;
  g_signal = 0;
  __atomic_store_n(&g_first_ns, 0, __ATOMIC_SEQ_CST);
  if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
    return srl_error(SRL_EIO, "cannot install the signal handlers: %s", strerror(errno));
  return SRL_OK;
}


int srl_interrupt_signal(void) {
  return (int)g_signal;
}

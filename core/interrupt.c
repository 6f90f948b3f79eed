// interrupt.c: the stop request behind Ctrl-C and SIGTERM (see interrupt.h).
#include "core/interrupt.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "core/error.h"

#define SAME_REQUEST_S 1.0  // copies of a signal within this time are the same request

static volatile sig_atomic_t g_signal;
static struct timespec g_first;  // when g_signal was set; written before it, read after it


static void on_signal(int sig) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);  // async-signal-safe
  if (!g_signal) {
    g_first = now;
    g_signal = sig;
    return;
  }
  double since =
      (double)(now.tv_sec - g_first.tv_sec) + 1e-9 * (double)(now.tv_nsec - g_first.tv_nsec);
  if (since < SAME_REQUEST_S) return;
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
  if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
    return srl_error(SRL_EIO, "cannot install the signal handlers: %s", strerror(errno));
  return SRL_OK;
}


int srl_interrupt_signal(void) {
  return (int)g_signal;
}

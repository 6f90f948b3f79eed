// cli_args.c: option values and timing shared by the CLI's commands (see cli_args.h).
#include "apps/saferl/cli_args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>


int srl_cli_long(const char *cmd, const char *opt, const char *v, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long x = v ? strtol(v, &end, 10) : 0;
  if (!v || end == v || *end || errno || x < lo || x > hi) {
    fprintf(stderr, "%s: %s wants an integer in [%ld, %ld], got '%s'\n", cmd, opt, lo, hi,
            v ? v : "");
    return -1;
  }
  *out = x;
  return 0;
}


int srl_cli_double(const char *cmd, const char *opt, const char *v, double lo, double hi,
                   double *out) {
  char *end;
  errno = 0;
  double x = v ? strtod(v, &end) : 0;
  if (!v || end == v || *end || errno || !isfinite(x) || x < lo || x > hi) {
    fprintf(stderr, "%s: %s wants a number in [%g, %g], got '%s'\n", cmd, opt, lo, hi, v ? v : "");
    return -1;
  }
  *out = x;
  return 0;
}


double srl_cli_now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

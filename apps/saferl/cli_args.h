// cli_args.h: option values and timing shared by the CLI's commands.
#ifndef SRL_APP_CLI_ARGS_H
#define SRL_APP_CLI_ARGS_H

// Parses option opt's value v as an integer in [lo, hi] into *out. A missing, malformed or
// out-of-range value prints "<cmd>: <opt> wants an integer in [lo, hi], got '<v>'" to stderr
// and returns -1 (the caller then exits 2, a usage error); 0 on success.
int srl_cli_long(const char *cmd, const char *opt, const char *v, long lo, long hi, long *out);

// The same for a finite number in [lo, hi].
int srl_cli_double(const char *cmd, const char *opt, const char *v, double lo, double hi,
                   double *out);

// Seconds on the monotonic clock: for durations, never for dates.
double srl_cli_now_s(void);

#endif

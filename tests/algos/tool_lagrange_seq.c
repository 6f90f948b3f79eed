// tool_lagrange_seq.c: run a Lagrange multiplier over a Jc trace, for the PyTorch cross-check.
//
// usage: tool_lagrange_seq adam|pid COST_LIMIT [LAMBDA_LR]  < one Jc per line
// prints one line per update: λ and the kind's state (adam: m v; pid: I P D̄), each as %.9g so
// every float32 round-trips exactly.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/lagrange.h"
#include "core/error.h"

int main(int argc, char **argv) {
  if (argc < 3 || (strcmp(argv[1], "adam") && strcmp(argv[1], "pid"))) {
    fprintf(stderr, "usage: %s adam|pid COST_LIMIT [LAMBDA_LR] < jc-per-line\n", argv[0]);
    return 2;
  }
  int adam = !strcmp(argv[1], "adam");
  srl_lagrange_config c = srl_lagrange_config_default(adam ? SRL_LAGRANGE_ADAM : SRL_LAGRANGE_PID);
  c.cost_limit = strtod(argv[2], NULL);
  if (argc > 3) c.lambda_lr = strtod(argv[3], NULL);
  srl_lagrange lg;
  if (srl_lagrange_init(&lg, &c)) {
    fprintf(stderr, "%s\n", srl_errmsg());
    return 1;
  }
  double jc;
  while (scanf("%lf", &jc) == 1) {
    if (srl_lagrange_update(&lg, jc)) {
      fprintf(stderr, "%s\n", srl_errmsg());
      return 1;
    }
    if (adam)
      printf("%.9g %.9g %.9g\n", lg.lambda, lg.adam_m, lg.adam_v);
    else
      printf("%.9g %.9g %.9g %.9g\n", lg.lambda, lg.pid_i, lg.pid_p, lg.pid_d);
  }
  return 0;
}

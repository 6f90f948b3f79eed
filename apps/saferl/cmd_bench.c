// cmd_bench.c: `saferl bench <what>` dispatches to one benchmark per file.
#include <stdio.h>
#include <string.h>

#include "apps/saferl/commands.h"

static const srl_command benches[] = {
    {"update", "OmniSafe's PPO-Lag minibatch update (actor + two critics)", srl_bench_update},
    {"env", "env steps per second through the vector env", srl_bench_env},
    {"remote", "round trip of remote env steps over ipc or tcp loopback", srl_bench_remote},
    {"fisor", "FISOR update steps per second at the reference batch sizes", srl_bench_fisor},
};


int srl_cmd_bench(int argc, char **argv) {
  size_t n = sizeof benches / sizeof *benches;
  if (argc >= 2) {
    for (size_t i = 0; i < n; i++)
      if (!strcmp(argv[1], benches[i].name)) return benches[i].run(argc - 1, argv + 1);
  }
  FILE *f = argc >= 2 && strcmp(argv[1], "--help") ? stderr : stdout;
  if (f == stderr && argc >= 2) fprintf(f, "saferl bench: unknown benchmark '%s'\n", argv[1]);
  fprintf(f, "usage: saferl bench <what> [options]\n\n");
  for (size_t i = 0; i < n; i++) fprintf(f, "  %-8s %s\n", benches[i].name, benches[i].help);
  return f == stderr ? 2 : 0;
}

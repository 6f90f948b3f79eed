// cmd_version.c: `saferl version` prints the version and what this build can do.
#include <stdio.h>

#include "apps/saferl/commands.h"
#include "core/ops.h"


int srl_cmd_version(int argc, char **argv) {
  const srl_ops *cuda = NULL;
  int cuda_rc = srl_ops_cuda(&cuda);
  printf("saferl %s\n", SRL_VERSION);
#ifdef SRL_HAVE_CUDA
  printf("cuda: built, %s\n", cuda_rc == 0 ? "device available" : "no usable device");
#else
  (void)cuda_rc;
  printf("cuda: not built\n");
#endif
  return 0;
}

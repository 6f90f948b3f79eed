// ops.c: device-neutral parts of the op set: activation names and the table lookup.
#include "core/ops.h"

#include <string.h>

#include "core/error.h"

static const char *act_names[SRL_ACT_COUNT] = {
    [SRL_ACT_IDENTITY] = "identity", [SRL_ACT_TANH] = "tanh",
    [SRL_ACT_RELU] = "relu",         [SRL_ACT_MISH] = "mish",
    [SRL_ACT_GELU] = "gelu",         [SRL_ACT_QUICK_GELU] = "quick_gelu",
    [SRL_ACT_SIGMOID] = "sigmoid",   [SRL_ACT_SOFTPLUS] = "softplus",
};


const char *srl_act_name(srl_act act) {
  return (act >= 0 && act < SRL_ACT_COUNT) ? act_names[act] : "?";
}


int srl_act_from_name(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < SRL_ACT_COUNT; i++)
    if (strcmp(name, act_names[i]) == 0) return i;
  return -1;
}


#ifndef SRL_HAVE_CUDA
int srl_ops_cuda(const srl_ops **out) {
  *out = NULL;
  return srl_error(SRL_EUNSUPPORTED,
                   "device 'cuda' requested but saferl was built without CUDA "
                   "(rebuild with nvcc installed, or -DSRL_CUDA=ON)");
}
#endif


int srl_ops_get(const srl_ops **out, const char *device) {
  if (!device) {
    *out = NULL;
    return srl_error(SRL_EINVAL, "no device named (expected 'cpu' or 'cuda')");
  }
  if (strcmp(device, "cpu") == 0) {
    *out = srl_ops_cpu();
    return SRL_OK;
  }
  if (strcmp(device, "cuda") == 0) return srl_ops_cuda(out);
  *out = NULL;
  return srl_error(SRL_EINVAL, "unknown device '%s' (expected 'cpu' or 'cuda')", device);
}

// tool_mlp_step.c: one training step of an MLP read from a safetensors file, for the PyTorch
// cross-check (tests/core/test_torch_crosscheck.py builds the same network in torch).
//
//   tool_mlp_step IN.safetensors OUT.safetensors
//
// IN holds every parameter tensor under the network's names ("layers.0.weight", "ln.0.bias",
// ...), the input "x" (B × in) and the target "y" (B × out), and metadata:
//   sizes "60,64,64,2", hidden_act, out_act (activation names), layernorm 0|1, res_blocks,
//   res_hidden, optim adam|adamw, lr, beta1, beta2, eps, weight_decay, max_grad_norm (≤ 0: none)
// The tool runs forward, loss = mean((out − y)²), backward (input gradient included), clips the
// global gradient norm, takes one optimizer step, and writes to OUT:
//   "out" (B × out), "loss" [1], "grad_norm" [1] (before clipping), "din" (B × in),
//   "grad.<name>" (the gradient after clipping) and "param.<name>" (after the step) per tensor.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/nn.h"
#include "core/ops.h"
#include "core/optim.h"
#include "core/rng.h"
#include "core/safetensors.h"

static int fail(const char *what) {
  fprintf(stderr, "tool_mlp_step: %s: %s\n", what, srl_errmsg());
  return 1;
}


// a metadata value, or an error naming the key
static int meta(const srl_st_file *f, const char *key, const char **out) {
  *out = srl_st_metadata(f, key);
  if (!*out) return srl_error(SRL_EFORMAT, "metadata '%s' missing", key);
  return SRL_OK;
}

static int meta_float(const srl_st_file *f, const char *key, float *out) {
  const char *s;
  SRL_TRY(meta(f, key, &s));
  char *end;
  *out = strtof(s, &end);
  if (end == s || *end)
    return srl_error(SRL_EFORMAT, "metadata '%s' = '%s' is not a number", key, s);
  return SRL_OK;
}

static int meta_int(const srl_st_file *f, const char *key, int *out) {
  float v;
  SRL_TRY(meta_float(f, key, &v));
  *out = (int)v;
  return SRL_OK;
}

static int meta_act(const srl_st_file *f, const char *key, srl_act *out) {
  const char *s;
  SRL_TRY(meta(f, key, &s));
  int a = srl_act_from_name(s);
  if (a < 0) return srl_error(SRL_EFORMAT, "metadata '%s': unknown activation '%s'", key, s);
  *out = (srl_act)a;
  return SRL_OK;
}


static int read_config(const srl_st_file *f, srl_mlp_config *c, srl_optim_config *oc,
                       float *max_norm) {
  memset(c, 0, sizeof *c);
  const char *s;
  SRL_TRY(meta(f, "sizes", &s));
  for (char *end; *s && c->n_sizes < SRL_MLP_MAX_SIZES; s = *end == ',' ? end + 1 : end) {
    c->sizes[c->n_sizes++] = (int)strtol(s, &end, 10);
    if (end == s) return srl_error(SRL_EFORMAT, "metadata 'sizes' is not a list of integers");
  }
  SRL_TRY(meta_act(f, "hidden_act", &c->hidden_act));
  SRL_TRY(meta_act(f, "out_act", &c->out_act));
  SRL_TRY(meta_int(f, "layernorm", &c->layernorm));
  SRL_TRY(meta_int(f, "res_blocks", &c->res_blocks));
  SRL_TRY(meta_int(f, "res_hidden", &c->res_hidden));
  SRL_TRY(meta(f, "optim", &s));
  if (strcmp(s, "adam") != 0 && strcmp(s, "adamw") != 0)
    return srl_error(SRL_EFORMAT, "metadata 'optim': unknown optimizer '%s'", s);
  *oc = srl_optim_config_default(strcmp(s, "adamw") == 0 ? SRL_OPTIM_ADAMW : SRL_OPTIM_ADAM, 0);
  SRL_TRY(meta_float(f, "lr", &oc->lr));
  SRL_TRY(meta_float(f, "beta1", &oc->beta1));
  SRL_TRY(meta_float(f, "beta2", &oc->beta2));
  SRL_TRY(meta_float(f, "eps", &oc->eps));
  SRL_TRY(meta_float(f, "weight_decay", &oc->weight_decay));
  SRL_TRY(meta_float(f, "max_grad_norm", max_norm));
  return SRL_OK;
}


int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: tool_mlp_step IN.safetensors OUT.safetensors\n");
    return 2;
  }
  const srl_ops *ops = srl_ops_cpu();
  srl_st_file *in = NULL;
  if (srl_st_open(&in, argv[1]) < 0) return fail("reading the input");
  srl_mlp_config cfg;
  srl_optim_config oc;
  float max_norm;
  if (read_config(in, &cfg, &oc, &max_norm) < 0) return fail(argv[1]);
  const srl_st_tensor *xt = srl_st_find(in, "x");
  if (!xt || xt->ndim != 2) {
    srl_error(SRL_EFORMAT, "tensor 'x' missing or not 2-d");
    return fail(argv[1]);
  }
  int rows = (int)xt->shape[0];

  srl_rng *rng;
  srl_mlp *net;
  srl_optim *opt;
  if (srl_rng_create(&rng, 0, 0) < 0 || srl_mlp_create(&net, ops, &cfg, rows, rng) < 0)
    return fail("creating the network");
  if (srl_optim_create(&opt, ops, net->n_params, &oc) < 0) return fail("creating the optimizer");

  // host memory: x, y, out, din, then per tensor its gradient and updated value
  size_t nx = (size_t)rows * net->in_dim, ny = (size_t)rows * net->out_dim, np = net->n_params;
  float *h = malloc((2 * nx + 3 * ny + 2 * np) * sizeof(float));
  float *x = h, *y = x + nx, *out = y + ny, *din = out + ny, *dpred = din + nx;
  float *grads = dpred + ny, *params = grads + np;
  if (srl_st_read_f32(in, "x", x, nx) < 0 || srl_st_read_f32(in, "y", y, ny) < 0)
    return fail(argv[1]);
  for (int i = 0; i < srl_mlp_tensor_count(net); i++) {
    const srl_nn_tensor *t = srl_mlp_tensor(net, i);
    if (srl_st_read_f32(in, t->name, params + t->offset, t->numel) < 0 ||
        srl_mlp_tensor_upload(net, t->name, params + t->offset, t->numel) < 0)
      return fail(argv[1]);
  }

  // the step, on device memory
  float *dx = ops->alloc(nx * sizeof(float)), *dy = ops->alloc(ny * sizeof(float));
  float *dd = ops->alloc((nx + ny) * sizeof(float));
  if (!dx || !dy || !dd) return fail("device buffers");
  ops->upload(dx, x, nx * sizeof(float));
  ops->upload(dy, y, ny * sizeof(float));
  srl_mlp_zero_grad(net);
  if (srl_mlp_forward(net, dx, rows) < 0) return fail("forward");
  float loss = ops->mse(dd + nx, net->out, dy, ny, 1.0f);
  if (srl_mlp_backward(net, dd, dd + nx) < 0) return fail("backward");
  float norm = srl_optim_clip_grad_norm(ops, net->grads, np, max_norm);
  ops->download(out, net->out, ny * sizeof(float));
  ops->download(din, dd, nx * sizeof(float));
  ops->download(grads, net->grads, np * sizeof(float));
  if (srl_optim_step(opt, net->params, net->grads, oc.lr) < 0) return fail("optimizer step");
  ops->download(params, net->params, np * sizeof(float));

  srl_st_writer *w;
  char name[2 * SRL_NN_NAME_MAX];
  if (srl_st_writer_create(&w) < 0) return fail("writer");
  int rc = srl_st_add_f32(w, "out", out, 2, rows, net->out_dim);
  rc |= srl_st_add_f32(w, "din", din, 2, rows, net->in_dim);
  rc |= srl_st_add_f32(w, "loss", &loss, 1, 1);
  rc |= srl_st_add_f32(w, "grad_norm", &norm, 1, 1);
  for (int i = 0; i < srl_mlp_tensor_count(net); i++) {
    const srl_nn_tensor *t = srl_mlp_tensor(net, i);
    int d0 = t->shape[0], d1 = t->shape[1];
    snprintf(name, sizeof name, "grad.%s", t->name);
    rc |= t->ndim == 2 ? srl_st_add_f32(w, name, grads + t->offset, 2, d0, d1)
                       : srl_st_add_f32(w, name, grads + t->offset, 1, d0);
    snprintf(name, sizeof name, "param.%s", t->name);
    rc |= t->ndim == 2 ? srl_st_add_f32(w, name, params + t->offset, 2, d0, d1)
                       : srl_st_add_f32(w, name, params + t->offset, 1, d0);
  }
  if (rc != 0 || srl_st_write(w, argv[2]) < 0) return fail(argv[2]);

  srl_st_writer_destroy(w);
  ops->free(dx), ops->free(dy), ops->free(dd);
  free(h);
  srl_optim_destroy(opt);
  srl_mlp_destroy(net);
  srl_rng_destroy(rng);
  srl_st_close(in);
  return 0;
}

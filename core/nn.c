// nn.c: plain and residual MLPs on the op table: layout, initialisation, forward, backward.
//
// Everything a network touches on its device lives in one block: the parameters, their
// gradients (same layout, second half), then the activations and backward scratch for
// max_batch rows. Forward and backward only call table ops on pointers set at creation.
#include "core/nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

#define FLOAT_ALIGN (SRL_ALIGN / sizeof(float))  // tensors start on a cache line


//---- configuration ----------------------------------------------------------------------------

srl_mlp_config srl_mlp_config_plain(int n_sizes, const int *sizes, srl_act hidden_act,
                                    srl_act out_act) {
  srl_mlp_config c;
  memset(&c, 0, sizeof c);
  c.n_sizes = n_sizes;
  for (int i = 0; i < n_sizes && i < SRL_MLP_MAX_SIZES; i++) c.sizes[i] = sizes[i];
  c.hidden_act = hidden_act;
  c.out_act = out_act;
  return c;
}


static int check_config(const srl_mlp_config *c, int max_batch) {
  if (c->n_sizes < 2 || c->n_sizes > SRL_MLP_MAX_SIZES)
    return srl_error(SRL_EINVAL, "mlp: %d sizes, expected 2 to %d (input, hidden..., output)",
                     c->n_sizes, SRL_MLP_MAX_SIZES);
  for (int i = 0; i < c->n_sizes; i++)
    if (c->sizes[i] <= 0)
      return srl_error(SRL_EINVAL, "mlp: sizes[%d] = %d must be positive", i, c->sizes[i]);
  if ((int)c->hidden_act < 0 || c->hidden_act >= SRL_ACT_COUNT || (int)c->out_act < 0 ||
      c->out_act >= SRL_ACT_COUNT)
    return srl_error(SRL_EINVAL, "mlp: unknown activation (hidden %d, output %d)",
                     (int)c->hidden_act, (int)c->out_act);
  if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
    return srl_error(SRL_EINVAL, "mlp: dropout %g outside [0, 1)", c->dropout);
  if (c->res_blocks < 0 || c->res_blocks > SRL_MLP_MAX_BLOCKS)
    return srl_error(SRL_EINVAL, "mlp: %d residual blocks, expected 0 to %d", c->res_blocks,
                     SRL_MLP_MAX_BLOCKS);
  if (c->res_blocks > 0 && c->n_sizes != 3)
    return srl_error(SRL_EINVAL, "mlp: residual mode takes sizes {in, hidden, out}, got %d sizes",
                     c->n_sizes);
  if (c->res_hidden < 0)
    return srl_error(SRL_EINVAL, "mlp: res_hidden %d is negative", c->res_hidden);
  if (c->extra < 0) return srl_error(SRL_EINVAL, "mlp: extra %d is negative", c->extra);
  if (c->extra > 0 &&
      (c->extra_name[0] == '\0' || memchr(c->extra_name, '\0', SRL_NN_NAME_MAX) == NULL))
    return srl_error(SRL_EINVAL, "mlp: extra parameters need a name shorter than %d characters",
                     SRL_NN_NAME_MAX);
  if (c->extra > 0 &&
      (strncmp(c->extra_name, "layers.", 7) == 0 || strncmp(c->extra_name, "ln.", 3) == 0))
    return srl_error(SRL_EINVAL, "mlp: extra name '%s' collides with the layer names",
                     c->extra_name);
  if (max_batch < 1) return srl_error(SRL_EINVAL, "mlp: max_batch %d must be ≥ 1", max_batch);
  return SRL_OK;
}


//---- layout -----------------------------------------------------------------------------------

// float offsets into the device block, aligned to a cache line
static size_t take(size_t *total, size_t nfloats) {
  size_t off = srl_align_up(*total, FLOAT_ALIGN);
  *total = off + nfloats;
  return off;
}


static void add_tensor(srl_mlp *net, const char *name, int ndim, int d0, int d1, size_t *total) {
  srl_nn_tensor *t = &net->tensors[net->n_tensors++];
  snprintf(t->name, sizeof t->name, "%s", name);
  t->ndim = ndim;
  t->shape[0] = d0;
  t->shape[1] = ndim > 1 ? d1 : 0;
  t->numel = (size_t)d0 * (ndim > 1 ? (size_t)d1 : 1);
  t->offset = take(total, t->numel);
}


static void add_linear(srl_mlp *net, int in, int out, size_t *total) {
  char name[SRL_NN_NAME_MAX];
  int i = net->n_linear++;
  net->lin[i].in = in;
  net->lin[i].out = out;
  net->lin[i].tensor = net->n_tensors;
  snprintf(name, sizeof name, "layers.%d.weight", i);
  add_tensor(net, name, 2, out, in, total);
  snprintf(name, sizeof name, "layers.%d.bias", i);
  add_tensor(net, name, 1, out, 0, total);
}


static void add_layernorm(srl_mlp *net, int dim, size_t *total) {
  char name[SRL_NN_NAME_MAX];
  int i = net->n_ln++;
  net->ln[i].dim = dim;
  net->ln[i].tensor = net->n_tensors;
  snprintf(name, sizeof name, "ln.%d.weight", i);
  add_tensor(net, name, 1, dim, 0, total);
  snprintf(name, sizeof name, "ln.%d.bias", i);
  add_tensor(net, name, 1, dim, 0, total);
}


// the tensor list in forward order, with offsets into the parameter half
static size_t plan_params(srl_mlp *net) {
  const srl_mlp_config *c = &net->cfg;
  size_t total = 0;
  if (c->res_blocks == 0) {
    for (int i = 0; i + 1 < c->n_sizes; i++) {
      add_linear(net, c->sizes[i], c->sizes[i + 1], &total);
      if (c->layernorm && i + 2 < c->n_sizes) add_layernorm(net, c->sizes[i + 1], &total);
    }
  } else {
    int h = c->sizes[1], f = c->res_hidden ? c->res_hidden : 4 * h;
    add_linear(net, c->sizes[0], h, &total);
    for (int j = 0; j < c->res_blocks; j++) {
      if (c->layernorm) add_layernorm(net, h, &total);
      add_linear(net, h, f, &total);
      add_linear(net, f, h, &total);
    }
    add_linear(net, h, c->sizes[2], &total);
  }
  if (c->extra > 0) add_tensor(net, c->extra_name, 1, c->extra, 0, &total);
  return srl_align_up(total, FLOAT_ALIGN);
}


// point the linears, layernorms and extra at their tensors
static void point_params(srl_mlp *net) {
  const srl_nn_tensor *t = net->tensors;
  for (int i = 0; i < net->n_linear; i++) {
    srl_linear *l = &net->lin[i];
    l->w = net->params + t[l->tensor].offset, l->dw = net->grads + t[l->tensor].offset;
    l->b = net->params + t[l->tensor + 1].offset, l->db = net->grads + t[l->tensor + 1].offset;
  }
  for (int i = 0; i < net->n_ln; i++) {
    srl_layernorm *n = &net->ln[i];
    n->w = net->params + t[n->tensor].offset, n->dw = net->grads + t[n->tensor].offset;
    n->b = net->params + t[n->tensor + 1].offset, n->db = net->grads + t[n->tensor + 1].offset;
  }
  if (net->cfg.extra > 0) {
    size_t off = t[net->n_tensors - 1].offset;
    net->extra = net->params + off, net->dextra = net->grads + off;
  }
}


// activation and scratch buffers after the two parameter halves; base NULL only measures
static size_t plan_acts(srl_mlp *net, float *base) {
  const srl_mlp_config *c = &net->cfg;
  size_t total = 2 * net->n_params, rows = (size_t)net->max_batch;
  int max_w = net->in_dim;
#define BUF(ptr, nfloats)                  \
  do {                                     \
    size_t off_ = take(&total, (nfloats)); \
    (ptr) = base ? base + off_ : NULL;     \
  } while (0)
  int L = net->n_linear;
  for (int i = 0; i < L; i++) {
    int w = net->lin[i].out;
    max_w = w > max_w ? w : max_w;
  }
  if (c->res_blocks == 0) {
    for (int i = 0; i < L; i++) {
      srl_mlp_stage *s = &net->stage[i];
      size_t n = rows * net->lin[i].out;
      BUF(s->z, n);
      if (i == L - 1) break;
      if (c->dropout > 0) BUF(s->mask, n);
      if (c->layernorm) {
        BUF(s->norm, n);
        BUF(s->mean, rows);
        BUF(s->rstd, rows);
      }
      if (c->hidden_act != SRL_ACT_IDENTITY) BUF(s->act, n);
    }
  } else {
    int h = c->sizes[1], f = net->lin[1].out;
    BUF(net->stage[0].z, rows * h);
    for (int j = 0; j < c->res_blocks; j++) {
      srl_mlp_block *b = &net->block[j];
      if (c->dropout > 0) {
        BUF(b->mask, rows * h);
        BUF(b->drop, rows * h);
      }
      if (c->layernorm) {
        BUF(b->norm, rows * h);
        BUF(b->mean, rows);
        BUF(b->rstd, rows);
      }
      BUF(b->u, rows * f);
      if (c->hidden_act != SRL_ACT_IDENTITY) BUF(b->a, rows * f);
      BUF(b->r, rows * h);
    }
    if (c->hidden_act != SRL_ACT_IDENTITY) BUF(net->q, rows * h);
    BUF(net->stage[L - 1].z, rows * net->out_dim);
  }
  if (c->out_act != SRL_ACT_IDENTITY) BUF(net->out_buf, rows * net->out_dim);
  for (int k = 0; k < 3; k++) BUF(net->gbuf[k], rows * max_w);
#undef BUF
  return total;
}


//---- creation ---------------------------------------------------------------------------------

// PyTorch's defaults, drawn on the host and uploaded once
static int init_params(srl_mlp *net, srl_rng *rng) {
  float *h = srl_calloc(net->n_params * sizeof(float));
  if (!h) return srl_error_context(SRL_ENOMEM, "mlp: initial parameters: ");
  const srl_nn_tensor *t = net->tensors;
  for (int i = 0; i < net->n_linear; i++) {
    // kaiming_uniform(a=√5): gain √(2/(1+5)), bound √3·gain/√fan_in = 1/√fan_in; bias alike
    const srl_linear *l = &net->lin[i];
    float bound = 1.0f / sqrtf((float)l->in);
    srl_rng_fill_uniform(rng, h + t[l->tensor].offset, (size_t)l->out * l->in, -bound, bound);
    srl_rng_fill_uniform(rng, h + t[l->tensor + 1].offset, (size_t)l->out, -bound, bound);
  }
  for (int i = 0; i < net->n_ln; i++)
    for (int k = 0; k < net->ln[i].dim; k++) h[t[net->ln[i].tensor].offset + k] = 1.0f;
  if (net->cfg.extra > 0)
    for (int k = 0; k < net->cfg.extra; k++)
      h[t[net->n_tensors - 1].offset + k] = net->cfg.extra_init;
  int rc = net->ops->upload(net->params, h, net->n_params * sizeof(float));
  srl_free(h);
  return rc < 0 ? srl_error_context(rc, "mlp: uploading initial parameters: ") : SRL_OK;
}


int srl_mlp_create(srl_mlp **out, const srl_ops *ops, const srl_mlp_config *cfg, int max_batch,
                   srl_rng *rng) {
  if (!out) return srl_error(SRL_EINVAL, "mlp: NULL output handle");
  *out = NULL;
  if (!ops || !cfg || !rng) return srl_error(SRL_EINVAL, "mlp: NULL ops, config or rng");
  SRL_TRY(check_config(cfg, max_batch));

  srl_mlp *net = srl_calloc(sizeof *net);
  if (!net) return SRL_ENOMEM;
  net->ops = ops;
  net->cfg = *cfg;
  net->max_batch = max_batch;
  net->in_dim = cfg->sizes[0];
  net->out_dim = cfg->sizes[cfg->n_sizes - 1];
  net->n_params = plan_params(net);

  size_t total = plan_acts(net, NULL);
  net->mem = ops->alloc(total * sizeof(float));
  if (!net->mem) {
    int rc = srl_error_context(SRL_ENOMEM, "mlp: %zu floats on %s: ", total, ops->name);
    srl_free(net);
    return rc;
  }
  net->params = net->mem;
  net->grads = net->params + net->n_params;
  point_params(net);
  plan_acts(net, net->mem);

  int rc = init_params(net, rng);
  if (rc < 0) {
    srl_mlp_destroy(net);
    return rc;
  }
  uint64_t hi = srl_rng_u32(rng);  // two statements: a fixed order of draws
  net->dropout_seed = hi << 32 | srl_rng_u32(rng);
  *out = net;
  return SRL_OK;
}


void srl_mlp_destroy(srl_mlp *net) {
  if (!net) return;
  net->ops->free(net->mem);
  srl_free(net);
}


void srl_mlp_set_training(srl_mlp *net, int training) {
  net->training = training != 0;
}


void srl_mlp_zero_grad(srl_mlp *net) {
  net->ops->fill(net->grads, 0.0f, net->n_params);
}


//---- forward ----------------------------------------------------------------------------------

// a distinct mask stream per (forward call, layer)
static uint64_t dropout_seed(const srl_mlp *net, int layer) {
  return srl_hash64(net->dropout_seed ^ srl_hash64(net->dropout_step)) ^
         srl_hash64(0x5851f42d4c957f2dull + (uint64_t)layer);
}


// z = x·Wᵀ + b for B rows; beta = 1 adds onto what z holds (the residual)
static inline void linear_forward(const srl_ops *o, float *z, const float *x, const srl_linear *l,
                                  int rows, float beta) {
  o->matmul(z, x, l->w, rows, l->out, l->in, 0, 1, 1.0f, beta);
  o->bias_add(z, l->b, rows, l->out);
}


// dW += doutᵀ·x, db += Σ dout, and din = dout·W when din is not NULL
static inline void linear_backward(const srl_ops *o, float *din, const float *dout, const float *x,
                                   const srl_linear *l, int rows, float din_beta) {
  o->matmul(l->dw, dout, x, l->out, l->in, rows, 1, 0, 1.0f, 1.0f);
  o->bias_backward(l->db, dout, rows, l->out);
  if (din) o->matmul(din, dout, l->w, rows, l->in, l->out, 0, 0, 1.0f, din_beta);
}


static void forward_plain(srl_mlp *net, const float *in, int rows) {
  const srl_ops *o = net->ops;
  const srl_mlp_config *c = &net->cfg;
  int L = net->n_linear;
  const float *x = in;
  for (int i = 0; i < L; i++) {
    const srl_linear *l = &net->lin[i];
    srl_mlp_stage *s = &net->stage[i];
    s->x = x;
    linear_forward(o, s->z, x, l, rows, 0.0f);
    if (i == L - 1) break;
    // hidden: [dropout in place] → [layernorm] → act
    size_t n = (size_t)rows * l->out;
    const float *p = s->z;
    if (net->dropped) o->dropout_forward(s->z, s->mask, s->z, n, c->dropout, dropout_seed(net, i));
    if (s->norm) {
      const srl_layernorm *ln = &net->ln[i];
      o->layernorm_forward(s->norm, s->mean, s->rstd, p, ln->w, ln->b, rows, l->out);
      p = s->norm;
    }
    if (s->act) {
      o->act_forward(s->act, p, n, c->hidden_act);
      p = s->act;
    }
    x = p;
  }
}


static void forward_residual(srl_mlp *net, const float *in, int rows) {
  const srl_ops *o = net->ops;
  const srl_mlp_config *c = &net->cfg;
  int L = net->n_linear, h = c->sizes[1];
  size_t nh = (size_t)rows * h;
  net->stage[0].x = in;
  linear_forward(o, net->stage[0].z, in, &net->lin[0], rows, 0.0f);
  const float *r = net->stage[0].z;
  for (int j = 0; j < c->res_blocks; j++) {
    srl_mlp_block *b = &net->block[j];
    const srl_linear *l1 = &net->lin[2 * j + 1], *l2 = &net->lin[2 * j + 2];
    // x1 = LN(dropout(r)); u = x1·W1ᵀ + b1; a = act(u); r' = r + a·W2ᵀ + b2
    b->r_in = r;
    const float *p = r;
    if (net->dropped) {
      o->dropout_forward(b->drop, b->mask, r, nh, c->dropout, dropout_seed(net, j));
      p = b->drop;
    }
    if (b->norm) {
      o->layernorm_forward(b->norm, b->mean, b->rstd, p, net->ln[j].w, net->ln[j].b, rows, h);
      p = b->norm;
    }
    b->x1 = p;
    linear_forward(o, b->u, p, l1, rows, 0.0f);
    const float *pa = b->u;
    if (b->a) {
      o->act_forward(b->a, b->u, (size_t)rows * l1->out, c->hidden_act);
      pa = b->a;
    }
    o->copy(b->r, r, nh * sizeof(float));
    linear_forward(o, b->r, pa, l2, rows, 1.0f);
    r = b->r;
  }
  const float *q = r;
  if (net->q) {
    o->act_forward(net->q, r, nh, c->hidden_act);
    q = net->q;
  }
  net->stage[L - 1].x = q;
  linear_forward(o, net->stage[L - 1].z, q, &net->lin[L - 1], rows, 0.0f);
}


int srl_mlp_forward(srl_mlp *net, const float *in, int batch) {
  if (!in) return srl_error(SRL_EINVAL, "mlp forward: NULL input");
  if (batch < 1 || batch > net->max_batch)
    return srl_error(SRL_ERANGE, "mlp forward: batch %d outside [1, %d] (max_batch)", batch,
                     net->max_batch);
  net->batch = batch;
  net->dropped = net->training && net->cfg.dropout > 0.0f;
  if (net->cfg.res_blocks == 0)
    forward_plain(net, in, batch);
  else
    forward_residual(net, in, batch);
  if (net->dropped) net->dropout_step++;

  float *z = net->stage[net->n_linear - 1].z;
  net->out = z;
  if (net->out_buf) {
    net->ops->act_forward(net->out_buf, z, (size_t)batch * net->out_dim, net->cfg.out_act);
    net->out = net->out_buf;
  }
  return SRL_OK;
}


//---- backward ---------------------------------------------------------------------------------

// a scratch buffer that is neither a nor b
static float *other_buf(srl_mlp *net, const float *a, const float *b) {
  for (int k = 0; k < 3; k++)
    if (net->gbuf[k] != a && net->gbuf[k] != b) return net->gbuf[k];
  return NULL;  // unreachable: three buffers, two excluded
}


static void backward_plain(srl_mlp *net, float *din, const float *g) {
  const srl_ops *o = net->ops;
  const srl_mlp_config *c = &net->cfg;
  int rows = net->batch;
  for (int i = net->n_linear - 1; i >= 0; i--) {
    const srl_linear *l = &net->lin[i];
    const srl_mlp_stage *s = &net->stage[i];
    if (i == 0) {
      linear_backward(o, din, g, s->x, l, rows, 0.0f);
      return;
    }
    // back through the previous hidden layer: act ← [layernorm] ← [dropout]
    const srl_mlp_stage *p = &net->stage[i - 1];
    size_t n = (size_t)rows * l->in;
    float *d = other_buf(net, g, NULL);
    linear_backward(o, d, g, s->x, l, rows, 0.0f);
    if (p->act) o->act_backward(d, d, p->norm ? p->norm : p->z, n, c->hidden_act);
    if (p->norm) {
      const srl_layernorm *ln = &net->ln[i - 1];
      float *e = other_buf(net, d, g);
      o->layernorm_backward(e, ln->dw, ln->db, d, p->z, ln->w, p->mean, p->rstd, rows, l->in);
      d = e;
    }
    if (net->dropped) o->mul(d, d, p->mask, n);
    g = d;
  }
}


static void backward_residual(srl_mlp *net, float *din, const float *g) {
  const srl_ops *o = net->ops;
  const srl_mlp_config *c = &net->cfg;
  int rows = net->batch, L = net->n_linear, h = c->sizes[1];
  size_t nh = (size_t)rows * h;
  // output layer, then the final activation: gr holds ∂L/∂r of the last block
  float *gr = other_buf(net, g, NULL);
  const srl_mlp_stage *s = &net->stage[L - 1];
  const float *r_last = net->block[c->res_blocks - 1].r;
  linear_backward(o, gr, g, s->x, &net->lin[L - 1], rows, 0.0f);
  if (net->q) o->act_backward(gr, gr, r_last, nh, c->hidden_act);
  for (int j = c->res_blocks - 1; j >= 0; j--) {
    const srl_mlp_block *b = &net->block[j];
    const srl_linear *l1 = &net->lin[2 * j + 1], *l2 = &net->lin[2 * j + 2];
    size_t nf = (size_t)rows * l1->out;
    // second linear and the activation: da → du
    float *du = other_buf(net, gr, NULL);
    linear_backward(o, du, gr, b->a ? b->a : b->u, l2, rows, 0.0f);
    if (b->a) o->act_backward(du, du, b->u, nf, c->hidden_act);
    if (!b->norm && !net->dropped) {
      // the first linear's input is r_in itself: add its gradient onto the skip path's
      linear_backward(o, gr, du, b->x1, l1, rows, 1.0f);
      continue;
    }
    float *dx = other_buf(net, gr, du);
    linear_backward(o, dx, du, b->x1, l1, rows, 0.0f);
    if (b->norm) {
      // du is free again: it takes the layernorm's input gradient
      const float *ln_in = net->dropped ? b->drop : b->r_in;
      o->layernorm_backward(du, net->ln[j].dw, net->ln[j].db, dx, ln_in, net->ln[j].w, b->mean,
                            b->rstd, rows, h);
      dx = du;
    }
    if (net->dropped) o->mul(dx, dx, b->mask, nh);
    o->add(gr, gr, dx, nh);
  }
  linear_backward(o, din, gr, net->stage[0].x, &net->lin[0], rows, 0.0f);
}


int srl_mlp_backward(srl_mlp *net, float *din, const float *dout) {
  if (!dout) return srl_error(SRL_EINVAL, "mlp backward: NULL output gradient");
  if (net->batch == 0)
    return srl_error(SRL_ESTATE, "mlp backward: no forward pass to go back through");
  const float *g = dout;
  if (net->out_buf) {
    // through the output activation into scratch; the caller's dout stays as it was
    float *d = net->gbuf[0];
    net->ops->act_backward(d, dout, net->stage[net->n_linear - 1].z,
                           (size_t)net->batch * net->out_dim, net->cfg.out_act);
    g = d;
  }
  if (net->cfg.res_blocks == 0)
    backward_plain(net, din, g);
  else
    backward_residual(net, din, g);
  return SRL_OK;
}


//---- named tensors ----------------------------------------------------------------------------

int srl_mlp_tensor_count(const srl_mlp *net) {
  return net->n_tensors;
}


const srl_nn_tensor *srl_mlp_tensor(const srl_mlp *net, int i) {
  return (i >= 0 && i < net->n_tensors) ? &net->tensors[i] : NULL;
}


int srl_mlp_tensor_find(const srl_mlp *net, const char *name) {
  for (int i = 0; i < net->n_tensors; i++)
    if (strcmp(net->tensors[i].name, name) == 0) return i;
  return -1;
}


static int lookup(const srl_mlp *net, const char *name, size_t n, const srl_nn_tensor **t) {
  int i = name ? srl_mlp_tensor_find(net, name) : -1;
  if (i < 0) return srl_error(SRL_ENOTFOUND, "mlp: no parameter tensor '%s'", name ? name : "");
  *t = &net->tensors[i];
  if ((*t)->numel != n)
    return srl_error(SRL_EINVAL, "mlp: tensor '%s' has %zu elements, got %zu", name, (*t)->numel,
                     n);
  return SRL_OK;
}


int srl_mlp_tensor_download(const srl_mlp *net, const char *name, float *host, size_t n) {
  const srl_nn_tensor *t = NULL;
  SRL_TRY(lookup(net, name, n, &t));
  return net->ops->download(host, net->params + t->offset, n * sizeof(float));
}


int srl_mlp_tensor_upload(srl_mlp *net, const char *name, const float *host, size_t n) {
  const srl_nn_tensor *t = NULL;
  SRL_TRY(lookup(net, name, n, &t));
  return net->ops->upload(net->params + t->offset, host, n * sizeof(float));
}


int srl_mlp_grad_download(const srl_mlp *net, const char *name, float *host, size_t n) {
  const srl_nn_tensor *t = NULL;
  SRL_TRY(lookup(net, name, n, &t));
  return net->ops->download(host, net->grads + t->offset, n * sizeof(float));
}


//---- target networks --------------------------------------------------------------------------

static int same_layout(const srl_mlp *a, const srl_mlp *b, const char *what) {
  if (a->ops != b->ops)
    return srl_error(SRL_EINVAL, "mlp %s: networks on different devices (%s, %s)", what,
                     a->ops->name, b->ops->name);
  if (a->n_params != b->n_params || a->n_tensors != b->n_tensors)
    return srl_error(SRL_EINVAL, "mlp %s: different layouts (%zu vs %zu parameters)", what,
                     a->n_params, b->n_params);
  for (int i = 0; i < a->n_tensors; i++)
    if (a->tensors[i].numel != b->tensors[i].numel ||
        strcmp(a->tensors[i].name, b->tensors[i].name) != 0)
      return srl_error(SRL_EINVAL, "mlp %s: tensor %d differs ('%s', '%s')", what, i,
                       a->tensors[i].name, b->tensors[i].name);
  return SRL_OK;
}


int srl_mlp_copy_params(srl_mlp *dst, const srl_mlp *src) {
  SRL_TRY(same_layout(dst, src, "copy"));
  return dst->ops->copy(dst->params, src->params, dst->n_params * sizeof(float));
}


int srl_mlp_polyak(srl_mlp *dst, const srl_mlp *src, float tau) {
  SRL_TRY(same_layout(dst, src, "polyak"));
  if (!(tau >= 0.0f && tau <= 1.0f))
    return srl_error(SRL_EINVAL, "mlp polyak: tau %g outside [0, 1]", tau);
  dst->ops->axpby(dst->params, tau, src->params, 1.0f - tau, dst->n_params);
  return SRL_OK;
}

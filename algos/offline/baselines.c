// baselines.c: what the offline baselines share: the per-step cost threshold, plain networks
// with PyTorch's initialisation, critic sets (forward, regression, polyak), row-wise minima,
// host concatenation, statistics, a scalar Adam, the squashed Gaussian actor's sampling and
// backward, and checkpoints of named networks, host arrays and rng streams.
#include "algos/offline/baselines.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

double srl_baselines_qc_threshold(double cost_limit, double gamma, int episode_len) {
  if (episode_len < 1) return 0.0;
  if (gamma == 1.0) return cost_limit;
  return cost_limit * (1.0 - pow(gamma, episode_len)) / (1.0 - gamma) / episode_len;
}


//---- networks ------------------------------------------------------------------------------------

int srl__bl_mlp(srl_mlp **out, const srl_ops *ops, int in, int n_hidden, const int *hidden,
                int out_dim, srl_act hidden_act, srl_act out_act, int rows, srl_rng *rng) {
  if (n_hidden < 0 || n_hidden > SRL_BL_MAX_HIDDEN)
    return srl_error(SRL_EINVAL, "%d hidden layers, expected 0 to %d", n_hidden, SRL_BL_MAX_HIDDEN);
  int sizes[SRL_BL_MAX_HIDDEN + 2];
  sizes[0] = in;
  for (int i = 0; i < n_hidden; i++) sizes[i + 1] = hidden[i];
  sizes[n_hidden + 1] = out_dim;
  srl_mlp_config c = srl_mlp_config_plain(n_hidden + 2, sizes, hidden_act, out_act);
  return srl_mlp_create(out, ops, &c, rows, rng);
}


int srl__qset_create(srl__qset *q, const srl_ops *ops, int n, int in, int n_hidden,
                     const int *hidden, int rows, double lr, int targets, srl_rng *rng) {
  memset(q, 0, sizeof *q);
  if (n < 1 || n > SRL_BL_MAX_Q)
    return srl_error(SRL_EINVAL, "%d critics in an ensemble, expected 1 to %d", n, SRL_BL_MAX_Q);
  q->n = n;
  srl_optim_config oc = srl_optim_config_default(SRL_OPTIM_ADAM, (float)lr);
  for (int k = 0; k < n; k++) {
    SRL_TRY(srl__bl_mlp(&q->net[k], ops, in, n_hidden, hidden, 1, SRL_ACT_RELU, SRL_ACT_IDENTITY,
                        rows, rng));
    SRL_TRY(srl_optim_create(&q->opt[k], ops, q->net[k]->n_params, &oc));
    if (!targets) continue;
    SRL_TRY(srl_mlp_create(&q->targ[k], ops, &q->net[k]->cfg, rows, rng));
    SRL_TRY(srl_mlp_copy_params(q->targ[k], q->net[k]));
  }
  return SRL_OK;
}


void srl__qset_free(srl__qset *q) {
  for (int k = 0; k < SRL_BL_MAX_Q; k++) {
    srl_mlp_destroy(q->net[k]);
    srl_mlp_destroy(q->targ[k]);
    srl_optim_destroy(q->opt[k]);
  }
  memset(q, 0, sizeof *q);
}


int srl__qset_eval(srl__qset *q, int targ, int k0, int k1, const float *d_in, int n, float **out) {
  for (int k = k0; k < k1; k++) {
    srl_mlp *net = targ ? q->targ[k] : q->net[k];
    SRL_TRY(srl_mlp_forward(net, d_in, n));
    SRL_TRY(net->ops->download(out[k - k0], net->out, (size_t)n * sizeof(float)));
  }
  return SRL_OK;
}


int srl__qset_regress(srl__qset *q, const float *d_in, const float *d_y, float *d_dy, int n,
                      double lr, double extra_loss, double *loss, const char *what) {
  double l = extra_loss;
  for (int k = 0; k < q->n; k++) {
    srl_mlp *net = q->net[k];
    srl_mlp_zero_grad(net);
    SRL_TRY(srl_mlp_forward(net, d_in, n));
    l += net->ops->mse(d_dy, net->out, d_y, (size_t)n, 1.0f);
    SRL_TRY(srl_mlp_backward(net, NULL, d_dy));
  }
  *loss = l;
  if (!isfinite(l))
    return srl_error(SRL_ENONFINITE, "%s loss is %g; parameters left unchanged", what, l);
  for (int k = 0; k < q->n; k++)
    SRL_TRY(srl_optim_step(q->opt[k], q->net[k]->params, q->net[k]->grads, (float)lr));
  return SRL_OK;
}


int srl__qset_polyak(srl__qset *q, double tau) {
  for (int k = 0; k < q->n; k++)
    if (q->targ[k]) SRL_TRY(srl_mlp_polyak(q->targ[k], q->net[k], (float)tau));
  return SRL_OK;
}


//---- host rows -----------------------------------------------------------------------------------

void srl__min_rows(float *out, int *idx, float *const *v, int k, int n) {
  for (int i = 0; i < n; i++) {
    float m = v[0][i];
    int a = 0;
    for (int j = 1; j < k; j++)
      if (v[j][i] < m || isnan(v[j][i])) m = v[j][i], a = j;
    out[i] = m;
    if (idx) idx[i] = a;
  }
}


int srl__upload_cat(const srl_ops *ops, float *d, float *h, const float *a, int wa, const float *b,
                    int wb, int n) {
  int w = wa + wb;
  for (int r = 0; r < n; r++) {
    memcpy(h + (size_t)r * w, a + (size_t)r * wa, (size_t)wa * sizeof(float));
    memcpy(h + (size_t)r * w + wa, b + (size_t)r * wb, (size_t)wb * sizeof(float));
  }
  return ops->upload(d, h, (size_t)n * w * sizeof(float));
}


void srl__stat(srl_offline_stats *st, const char *name, double value) {
  if (!st || st->n >= SRL_OFFLINE_STATS_MAX) return;
  st->name[st->n] = name;
  st->value[st->n++] = value;
}


// torch's single-tensor Adam, op by op in float32
void srl__scalar_adam_step(srl__scalar_adam *s, double grad, double lr) {
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  float g = (float)grad;
  s->t++;
  s->m = b1 * s->m + (1.0f - b1) * g;
  s->v = b2 * s->v + (1.0f - b2) * g * g;
  float bc1 = 1.0f - powf(b1, (float)s->t), bc2 = 1.0f - powf(b2, (float)s->t);
  float denom = sqrtf(s->v) / sqrtf(bc2) + eps;
  s->p -= (float)lr / bc1 * s->m / denom;
}


//---- squashed Gaussian ---------------------------------------------------------------------------

#define LOG_STD_MIN (-20.0f)
#define LOG_STD_MAX 2.0f

static float clamp_log_std(float x) {
  return x < LOG_STD_MIN ? LOG_STD_MIN : x > LOG_STD_MAX ? LOG_STD_MAX : x;
}


void srl_squashed_gaussian_sample(float *a, const float *out, const float *eps, int n, int A) {
  for (int i = 0; i < n; i++) {
    const float *mu = out + (size_t)i * 2 * A, *ls = mu + A;
    for (int j = 0; j < A; j++) {
      size_t k = (size_t)i * A + j;
      a[k] = tanhf(mu[j] + expf(clamp_log_std(ls[j])) * eps[k]);
    }
  }
}


void srl_squashed_gaussian_backward(float *dout, const float *da, const float *out,
                                    const float *eps, int n, int A) {
  for (int i = 0; i < n; i++) {
    const float *mu = out + (size_t)i * 2 * A, *ls = mu + A;
    float *dmu = dout + (size_t)i * 2 * A, *dls = dmu + A;
    for (int j = 0; j < A; j++) {
      size_t k = (size_t)i * A + j;
      float sd = expf(clamp_log_std(ls[j]));
      float t = tanhf(mu[j] + sd * eps[k]);
      float du = da[k] * (1.0f - t * t);
      dmu[j] = du;
      // torch's clamp passes the gradient on [min, max] inclusive
      int inside = ls[j] >= LOG_STD_MIN && ls[j] <= LOG_STD_MAX;
      dls[j] = inside ? du * sd * eps[k] : 0.0f;
    }
  }
}


//---- checkpoints ---------------------------------------------------------------------------------

void srl__ckpt_init(srl__ckpt *ck, const srl_ops *ops, const char *who) {
  memset(ck, 0, sizeof *ck);
  ck->ops = ops;
  ck->who = who;
}


int srl__ckpt_net(srl__ckpt *ck, const char *name, srl_mlp *net, srl_optim *opt) {
  if (ck->n_nets == SRL__CKPT_MAX_NETS)
    return srl_error(SRL_ERANGE, "%s: more than %d networks", ck->who, SRL__CKPT_MAX_NETS);
  int i = ck->n_nets++;
  snprintf(ck->net[i].name, sizeof ck->net[i].name, "%s", name);
  ck->net[i].net = net;
  ck->net[i].opt = opt;
  return SRL_OK;
}


int srl__ckpt_array(srl__ckpt *ck, const char *name, srl_dtype dtype, void *ptr, int64_t len) {
  if (ck->n_extra == SRL__CKPT_MAX_EXTRA)
    return srl_error(SRL_ERANGE, "%s: more than %d arrays", ck->who, SRL__CKPT_MAX_EXTRA);
  int i = ck->n_extra++;
  snprintf(ck->extra[i].name, sizeof ck->extra[i].name, "%s", name);
  ck->extra[i].dtype = dtype;
  ck->extra[i].ptr = ptr;
  ck->extra[i].len = len;
  return SRL_OK;
}


int srl__ckpt_rng(srl__ckpt *ck, const char *name, srl_rng *rng) {
  SRL_TRY(srl__ckpt_array(ck, name, SRL_DTYPE_U8, NULL, (int64_t)srl_rng_state_size(rng)));
  ck->extra[ck->n_extra - 1].rng = rng;
  return SRL_OK;
}


int srl__ckpt_ready(srl__ckpt *ck) {
  size_t total = 0;
  for (int i = 0; i < ck->n_nets; i++) {
    size_t bytes = ck->net[i].net->n_params * sizeof(float);
    ck->net[i].off[0] = srl_layout_add(&total, bytes);
    if (!ck->net[i].opt) continue;
    ck->net[i].off[1] = srl_layout_add(&total, bytes);
    ck->net[i].off[2] = srl_layout_add(&total, bytes);
    ck->net[i].off[3] = srl_layout_add(&total, sizeof(int64_t));
  }
  for (int i = 0; i < ck->n_extra; i++)
    ck->extra[i].off =
        srl_layout_add(&total, (size_t)ck->extra[i].len * srl_st_dtype_size(ck->extra[i].dtype));
  ck->img = srl_calloc(total ? total : 1);
  return ck->img ? SRL_OK : SRL_ENOMEM;
}


void srl__ckpt_free(srl__ckpt *ck) {
  srl_free(ck->img);
  ck->img = NULL;
}


int srl__ckpt_save(srl__ckpt *ck, srl_st_writer *w) {
  char name[160];
  for (int i = 0; i < ck->n_nets; i++) {
    const srl_mlp *net = ck->net[i].net;
    float *p = (float *)(ck->img + ck->net[i].off[0]);
    SRL_TRY(ck->ops->download(p, net->params, net->n_params * sizeof(float)));
    for (int t = 0; t < net->n_tensors; t++) {
      const srl_nn_tensor *nt = &net->tensors[t];
      int64_t shape[2] = {nt->shape[0], nt->shape[1]};
      snprintf(name, sizeof name, "%s.%s", ck->net[i].name, nt->name);
      SRL_TRY(srl_st_add(w, name, SRL_DTYPE_F32, nt->ndim, shape, p + nt->offset));
    }
    if (!ck->net[i].opt) continue;
    float *m = (float *)(ck->img + ck->net[i].off[1]), *v = (float *)(ck->img + ck->net[i].off[2]);
    int64_t *step = (int64_t *)(ck->img + ck->net[i].off[3]), len = (int64_t)net->n_params, one = 1;
    SRL_TRY(srl_optim_state_download(ck->net[i].opt, m, v, step));
    snprintf(name, sizeof name, "optim.%s.m", ck->net[i].name);
    SRL_TRY(srl_st_add(w, name, SRL_DTYPE_F32, 1, &len, m));
    snprintf(name, sizeof name, "optim.%s.v", ck->net[i].name);
    SRL_TRY(srl_st_add(w, name, SRL_DTYPE_F32, 1, &len, v));
    snprintf(name, sizeof name, "optim.%s.step", ck->net[i].name);
    SRL_TRY(srl_st_add(w, name, SRL_DTYPE_I64, 1, &one, step));
  }
  for (int i = 0; i < ck->n_extra; i++) {
    void *dst = ck->img + ck->extra[i].off;
    if (ck->extra[i].rng)
      srl_rng_state_save(ck->extra[i].rng, dst);
    else
      memcpy(dst, ck->extra[i].ptr,
             (size_t)ck->extra[i].len * srl_st_dtype_size(ck->extra[i].dtype));
    SRL_TRY(srl_st_add(w, ck->extra[i].name, ck->extra[i].dtype, 1, &ck->extra[i].len, dst));
  }
  return SRL_OK;
}


// a tensor that must exist with this dtype and shape
static int expect(const srl__ckpt *ck, const srl_st_file *f, const char *name, srl_dtype dtype,
                  int ndim, const int64_t *shape, const srl_st_tensor **out) {
  const srl_st_tensor *t = srl_st_find(f, name);
  if (!t) return srl_error(SRL_ENOTFOUND, "%s: no tensor '%s'", ck->who, name);
  int ok = t->dtype == dtype && t->ndim == ndim;
  for (int k = 0; ok && k < ndim; k++) ok = t->shape[k] == shape[k];
  if (!ok) {
    char want[64] = "", got[64] = "";
    for (int k = 0; k < ndim; k++)
      snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", k ? ", " : "",
               (long long)shape[k]);
    for (int k = 0; k < t->ndim && k < SRL_ST_MAX_DIMS; k++)
      snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", k ? ", " : "",
               (long long)t->shape[k]);
    return srl_error(SRL_EFORMAT, "%s: '%s' is %s [%s], expected %s [%s]", ck->who, name,
                     srl_st_dtype_name(t->dtype), got, srl_st_dtype_name(dtype), want);
  }
  if (out) *out = t;
  return SRL_OK;
}


// check (apply = 0) or read and install (apply = 1) every tensor
static int load_pass(srl__ckpt *ck, const srl_st_file *f, int apply) {
  char name[160];
  const srl_st_tensor *t;
  for (int i = 0; i < ck->n_nets; i++) {
    srl_mlp *net = ck->net[i].net;
    float *p = (float *)(ck->img + ck->net[i].off[0]);
    if (apply) memset(p, 0, net->n_params * sizeof(float));
    for (int k = 0; k < net->n_tensors; k++) {
      const srl_nn_tensor *nt = &net->tensors[k];
      int64_t shape[2] = {nt->shape[0], nt->shape[1]};
      snprintf(name, sizeof name, "%s.%s", ck->net[i].name, nt->name);
      SRL_TRY(expect(ck, f, name, SRL_DTYPE_F32, nt->ndim, shape, NULL));
      if (apply) SRL_TRY(srl_st_read_f32(f, name, p + nt->offset, nt->numel));
    }
    if (apply) SRL_TRY(ck->ops->upload(net->params, p, net->n_params * sizeof(float)));
    if (!ck->net[i].opt) continue;
    int64_t len = (int64_t)net->n_params, one = 1, step;
    float *m = (float *)(ck->img + ck->net[i].off[1]), *v = (float *)(ck->img + ck->net[i].off[2]);
    snprintf(name, sizeof name, "optim.%s.m", ck->net[i].name);
    SRL_TRY(expect(ck, f, name, SRL_DTYPE_F32, 1, &len, NULL));
    if (apply) SRL_TRY(srl_st_read_f32(f, name, m, net->n_params));
    snprintf(name, sizeof name, "optim.%s.v", ck->net[i].name);
    SRL_TRY(expect(ck, f, name, SRL_DTYPE_F32, 1, &len, NULL));
    if (apply) SRL_TRY(srl_st_read_f32(f, name, v, net->n_params));
    snprintf(name, sizeof name, "optim.%s.step", ck->net[i].name);
    SRL_TRY(expect(ck, f, name, SRL_DTYPE_I64, 1, &one, &t));
    memcpy(&step, t->data, sizeof step);
    if (step < 0)
      return srl_error(SRL_EFORMAT, "%s: '%s' = %lld is negative", ck->who, name, (long long)step);
    if (apply) SRL_TRY(srl_optim_state_upload(ck->net[i].opt, m, v, step));
  }
  for (int i = 0; i < ck->n_extra; i++) {
    SRL_TRY(expect(ck, f, ck->extra[i].name, ck->extra[i].dtype, 1, &ck->extra[i].len, &t));
    if (ck->extra[i].dtype == SRL_DTYPE_F32) {
      // every stored scalar must be finite
      for (int64_t k = 0; k < ck->extra[i].len; k++) {
        float x;
        memcpy(&x, (const char *)t->data + k * sizeof x, sizeof x);
        if (!isfinite(x))
          return srl_error(SRL_EFORMAT, "%s: '%s'[%lld] is not finite", ck->who, ck->extra[i].name,
                           (long long)k);
      }
    }
    if (!apply) continue;
    if (ck->extra[i].rng)
      SRL_TRY(srl_rng_state_load(ck->extra[i].rng, t->data, t->nbytes));
    else
      memcpy(ck->extra[i].ptr, t->data, t->nbytes);
  }
  return SRL_OK;
}


int srl__ckpt_load(srl__ckpt *ck, const srl_st_file *f) {
  SRL_TRY(load_pass(ck, f, 0));
  return load_pass(ck, f, 1);
}

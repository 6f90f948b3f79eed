// diffusion.c: the DDPM schedule, Fourier time features, FISOR's ε-network (time MLP and
// MLPResNet on the op table) with its backward pass, and the DDPM sampler.
#include "algos/offline/diffusion.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

#define TWO_PI 6.28318530717958647692


//---- the noise schedule --------------------------------------------------------------------------

int srl_ddpm_schedule_init(srl_ddpm_schedule *s, int T, srl_beta_kind kind) {
  if (!s) return srl_error(SRL_EINVAL, "ddpm schedule: NULL schedule");
  if (T < 1 || T > SRL_DDPM_MAX_T)
    return srl_error(SRL_EINVAL, "ddpm schedule: T = %d outside [1, %d]", T, SRL_DDPM_MAX_T);
  memset(s, 0, sizeof *s);
  s->T = T;
  switch (kind) {
    case SRL_BETA_VP:
      // jaxrl5's vp_beta_schedule: b_min 0.1, b_max 10, t = 1..T
      for (int i = 0; i < T; i++) {
        double t = i + 1;
        s->alpha[i] = exp(-0.1 / T - 0.5 * (10.0 - 0.1) * (2.0 * t - 1.0) / ((double)T * T));
        s->beta[i] = 1.0 - s->alpha[i];
      }
      break;
    case SRL_BETA_LINEAR:
      for (int i = 0; i < T; i++) {
        s->beta[i] = T == 1 ? 1e-4 : 1e-4 + (2e-2 - 1e-4) * i / (T - 1);
        s->alpha[i] = 1.0 - s->beta[i];
      }
      break;
    case SRL_BETA_COSINE: {
      // ᾱ(τ) = cos²((τ + s)/(1 + s)·π/2) normalised by ᾱ(0), τ = i/T; β_i = 1 − ᾱ_{i+1}/ᾱ_i
      const double off = 0.008;
      double f0 = cos(off / (1 + off) * M_PI * 0.5);
      f0 *= f0;
      double prev = 1.0;
      for (int i = 0; i < T; i++) {
        double c = cos(((double)(i + 1) / T + off) / (1 + off) * M_PI * 0.5);
        double ah = c * c / f0;
        double b = 1.0 - ah / prev;
        s->beta[i] = b < 0 ? 0 : (b > 0.999 ? 0.999 : b);
        s->alpha[i] = 1.0 - s->beta[i];
        prev = ah;
      }
      break;
    }
    default:
      return srl_error(SRL_EINVAL, "ddpm schedule: unknown beta schedule %d", (int)kind);
  }
  double p = 1.0;
  for (int i = 0; i < T; i++) {
    p *= s->alpha[i];
    s->alpha_hat[i] = p;
  }
  return SRL_OK;
}


int srl_beta_kind_from_name(const char *name) {
  if (!name) return -1;
  if (!strcmp(name, "vp")) return SRL_BETA_VP;
  if (!strcmp(name, "linear")) return SRL_BETA_LINEAR;
  if (!strcmp(name, "cosine")) return SRL_BETA_COSINE;
  return -1;
}


void srl_ddpm_noise(float *xt, const float *a, const float *eps, const int *t, int n, int A,
                    const srl_ddpm_schedule *s) {
  for (int r = 0; r < n; r++) {
    float c1 = (float)sqrt(s->alpha_hat[t[r]]), c2 = (float)sqrt(1.0 - s->alpha_hat[t[r]]);
    for (int j = 0; j < A; j++) {
      size_t k = (size_t)r * A + j;
      xt[k] = c1 * a[k] + c2 * eps[k];
    }
  }
}


void srl_ddpm_step(float *x, const float *eps_hat, const float *z, size_t n,
                   const srl_ddpm_schedule *s, int t, float temperature, int clip) {
  float c1 = (float)(1.0 / sqrt(s->alpha[t]));
  float c2 = (float)((1.0 - s->alpha[t]) / sqrt(1.0 - s->alpha_hat[t]));
  float c3 = t > 0 ? (float)sqrt(s->beta[t]) * temperature : 0.0f;
  for (size_t i = 0; i < n; i++) {
    float v = c1 * (x[i] - c2 * eps_hat[i]);
    if (t > 0 && z) v += c3 * z[i];
    if (clip) v = v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v);
    x[i] = v;
  }
}


//---- Fourier time features -----------------------------------------------------------------------

void srl_fourier_forward(float *feat, const float *w, int half, const float *t, int n) {
  for (int i = 0; i < n; i++) {
    float *row = feat + (size_t)i * 2 * half;
    for (int k = 0; k < half; k++) {
      double f = TWO_PI * (double)t[i] * (double)w[k];
      row[k] = (float)cos(f);
      row[half + k] = (float)sin(f);
    }
  }
}


void srl_fourier_backward(float *dw, const float *dfeat, const float *w, int half, const float *t,
                          int n) {
  for (int k = 0; k < half; k++) {
    double g = 0;
    for (int i = 0; i < n; i++) {
      const float *d = dfeat + (size_t)i * 2 * half;
      double f = TWO_PI * (double)t[i] * (double)w[k];
      g += TWO_PI * (double)t[i] * (-sin(f) * d[k] + cos(f) * d[half + k]);
    }
    dw[k] += (float)g;
  }
}


//---- creation ------------------------------------------------------------------------------------

srl_diffusion_config srl_diffusion_config_default(int obs_dim, int act_dim, int max_batch) {
  srl_diffusion_config c;
  memset(&c, 0, sizeof c);
  c.obs_dim = obs_dim;
  c.act_dim = act_dim;
  c.T = 5;
  c.time_dim = 64;
  c.fourier_std = 0.2f;
  c.n_cond = 2;
  c.cond_hidden[0] = c.cond_hidden[1] = 128;
  c.hidden = 256;
  c.blocks = 3;
  c.res_hidden = 1024;
  c.dropout = 0.1f;
  c.layernorm = 1;
  c.max_batch = max_batch;
  return c;
}


static int check_config(const srl_diffusion_config *c) {
  if (c->obs_dim < 1 || c->act_dim < 1 || c->max_batch < 1)
    return srl_error(SRL_EINVAL, "diffusion: obs_dim %d, act_dim %d, max_batch %d must be ≥ 1",
                     c->obs_dim, c->act_dim, c->max_batch);
  if (c->T < 1 || c->T > SRL_DDPM_MAX_T)
    return srl_error(SRL_EINVAL, "diffusion: T = %d outside [1, %d]", c->T, SRL_DDPM_MAX_T);
  if (c->time_dim < 2 || c->time_dim % 2)
    return srl_error(SRL_EINVAL, "diffusion: time_dim %d must be even and ≥ 2", c->time_dim);
  if (!(c->fourier_std >= 0.0f) || !isfinite(c->fourier_std))
    return srl_error(SRL_EINVAL, "diffusion: fourier_std %g must be finite and ≥ 0",
                     c->fourier_std);
  if (c->n_cond < 1 || c->n_cond > SRL_DIFFUSION_MAX_COND)
    return srl_error(SRL_EINVAL, "diffusion: %d time MLP layers, expected 1 to %d", c->n_cond,
                     SRL_DIFFUSION_MAX_COND);
  for (int i = 0; i < c->n_cond; i++)
    if (c->cond_hidden[i] < 1)
      return srl_error(SRL_EINVAL, "diffusion: time MLP width %d must be ≥ 1", c->cond_hidden[i]);
  if (c->hidden < 1 || c->blocks < 1 || c->blocks > SRL_MLP_MAX_BLOCKS || c->res_hidden < 1)
    return srl_error(SRL_EINVAL,
                     "diffusion: hidden %d, blocks %d (1 to %d), res_hidden %d must be ≥ 1",
                     c->hidden, c->blocks, SRL_MLP_MAX_BLOCKS, c->res_hidden);
  if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
    return srl_error(SRL_EINVAL, "diffusion: dropout %g outside [0, 1)", c->dropout);
  return SRL_OK;
}


// a truncated normal on [−2, 2] (jax.random.truncated_normal) by rejection
static double truncated_normal(srl_rng *rng) {
  for (;;) {
    double z = srl_rng_normal(rng);
    if (z >= -2.0 && z <= 2.0) return z;
  }
}


// flax initialisation of one linear (W stored out × in): xavier_uniform or lecun_normal
// (variance_scaling(1, fan_in, truncated_normal)), bias 0
static void init_linear(float *host, const srl_mlp *net, int l, int xavier, srl_rng *rng) {
  const srl_linear *L = &net->lin[l];
  float *w = host + net->tensors[L->tensor].offset, *b = host + net->tensors[L->tensor + 1].offset;
  size_t n = (size_t)L->out * L->in;
  if (xavier) {
    float bound = (float)sqrt(6.0 / (L->in + L->out));
    srl_rng_fill_uniform(rng, w, n, -bound, bound);
  } else {
    double std = sqrt(1.0 / L->in) / 0.87962566103423978;
    for (size_t i = 0; i < n; i++) w[i] = (float)(std * truncated_normal(rng));
  }
  memset(b, 0, (size_t)L->out * sizeof(float));
}


static int init_flax(srl_diffusion *d, srl_rng *rng) {
  const srl_ops *o = d->ops;
  size_t max_n = d->cond->n_params > d->eps->n_params ? d->cond->n_params : d->eps->n_params;
  float *h = srl_malloc(max_n * sizeof(float));
  if (!h) return SRL_ENOMEM;
  // time path: W ~ N(0, std²), every time MLP kernel xavier_uniform
  int rc = o->download(h, d->cond->params, d->cond->n_params * sizeof(float));
  if (rc == 0) {
    srl_rng_fill_normal(rng, h + (d->cond->extra - d->cond->params), (size_t)d->cfg.time_dim / 2,
                        0.0f, d->cfg.fourier_std);
    for (int l = 0; l < d->cond->n_linear; l++) init_linear(h, d->cond, l, 1, rng);
    rc = o->upload(d->cond->params, h, d->cond->n_params * sizeof(float));
  }
  // MLPResNet: input and output kernels xavier_uniform, block kernels lecun_normal
  if (rc == 0) rc = o->download(h, d->eps->params, d->eps->n_params * sizeof(float));
  if (rc == 0) {
    int L = d->eps->n_linear;
    for (int l = 0; l < L; l++) init_linear(h, d->eps, l, l == 0 || l == L - 1, rng);
    rc = o->upload(d->eps->params, h, d->eps->n_params * sizeof(float));
  }
  srl_free(h);
  return rc;
}


int srl_diffusion_create(srl_diffusion **out, const srl_ops *ops, const srl_diffusion_config *cfg,
                         srl_rng *rng) {
  if (!out) return srl_error(SRL_EINVAL, "diffusion: NULL output handle");
  *out = NULL;
  if (!ops || !cfg || !rng) return srl_error(SRL_EINVAL, "diffusion: NULL ops, config or rng");
  SRL_TRY(check_config(cfg));
  srl_diffusion *d = srl_calloc(sizeof *d);
  if (!d) return SRL_ENOMEM;
  d->ops = ops;
  d->cfg = *cfg;
  int A = cfg->act_dim, O = cfg->obs_dim, T = cfg->T, F = cfg->time_dim, H = F / 2;
  int C = cfg->cond_hidden[cfg->n_cond - 1], B = cfg->max_batch;
  int D = d->in_dim = A + O + C;
  int rc;

  // time MLP: F → widths, mish between, linear last; W rides along as its extra tensor
  int sizes[SRL_DIFFUSION_MAX_COND + 1];
  sizes[0] = F;
  for (int i = 0; i < cfg->n_cond; i++) sizes[i + 1] = cfg->cond_hidden[i];
  srl_mlp_config mc = srl_mlp_config_plain(cfg->n_cond + 1, sizes, SRL_ACT_MISH, SRL_ACT_IDENTITY);
  mc.extra = H;
  snprintf(mc.extra_name, sizeof mc.extra_name, "fourier.weight");
  // MLPResNet: D → hidden, blocks, mish → act_dim
  srl_mlp_config mr =
      srl_mlp_config_plain(3, (int[]){D, cfg->hidden, A}, SRL_ACT_MISH, SRL_ACT_IDENTITY);
  mr.res_blocks = cfg->blocks;
  mr.res_hidden = cfg->res_hidden;
  mr.dropout = cfg->dropout;
  mr.layernorm = cfg->layernorm;
  if ((rc = srl_mlp_create(&d->cond, ops, &mc, T, rng)) < 0) goto fail;
  if ((rc = srl_mlp_create(&d->eps, ops, &mr, B, rng)) < 0) goto fail;
  if ((rc = init_flax(d, rng)) < 0) goto fail;

  // device scratch in one block
  size_t total = 0, f = sizeof(float), b = (size_t)B;
  size_t o_x = srl_layout_add(&total, b * D * f), o_dx = srl_layout_add(&total, b * D * f);
  size_t o_oh = srl_layout_add(&total, b * T * f),
         o_feat = srl_layout_add(&total, (size_t)T * F * f);
  size_t o_dfeat = srl_layout_add(&total, (size_t)T * F * f);
  size_t o_cp = srl_layout_add(&total, (size_t)T * D * f);
  size_t o_dcp = srl_layout_add(&total, (size_t)T * D * f);
  size_t o_dc = srl_layout_add(&total, (size_t)T * C * f), o_g = srl_layout_add(&total, b * A * f);
  size_t o_dw = srl_layout_add(&total, (size_t)H * f);
  if (!(d->dev = ops->alloc(total))) {
    rc = SRL_ENOMEM;
    goto fail;
  }
  char *p = d->dev;
  d->d_x = (float *)(p + o_x), d->d_dx = (float *)(p + o_dx), d->d_onehot = (float *)(p + o_oh);
  d->d_feat = (float *)(p + o_feat), d->d_dfeat = (float *)(p + o_dfeat);
  d->d_condp = (float *)(p + o_cp), d->d_dcondp = (float *)(p + o_dcp);
  d->d_dcond = (float *)(p + o_dc), d->d_g = (float *)(p + o_g), d->d_dw = (float *)(p + o_dw);

  // host scratch in one block
  total = 0;
  size_t h_x = srl_layout_add(&total, b * D * f), h_oh = srl_layout_add(&total, b * T * f);
  size_t h_time = srl_layout_add(&total, (size_t)T * f);
  size_t h_feat = srl_layout_add(&total, (size_t)T * F * f);
  size_t h_dfeat = srl_layout_add(&total, (size_t)T * F * f);
  size_t h_w = srl_layout_add(&total, (size_t)H * f), h_dw = srl_layout_add(&total, (size_t)H * f);
  size_t h_xs = srl_layout_add(&total, b * A * f), h_z = srl_layout_add(&total, b * A * f);
  size_t h_eh = srl_layout_add(&total, b * A * f), h_t = srl_layout_add(&total, b * sizeof(int));
  if (!(d->host = srl_calloc(total))) {
    rc = SRL_ENOMEM;
    goto fail;
  }
  p = d->host;
  d->h_x = (float *)(p + h_x), d->h_onehot = (float *)(p + h_oh), d->h_time = (float *)(p + h_time);
  d->h_feat = (float *)(p + h_feat), d->h_dfeat = (float *)(p + h_dfeat);
  d->h_w = (float *)(p + h_w), d->h_dw = (float *)(p + h_dw);
  d->h_xs = (float *)(p + h_xs), d->h_z = (float *)(p + h_z), d->h_eh = (float *)(p + h_eh);
  d->h_t = (int *)(p + h_t);
  for (int k = 0; k < T; k++) d->h_time[k] = (float)k;
  // the placed cond rows: zero outside the last C columns, which each forward overwrites
  ops->fill(d->d_condp, 0.0f, (size_t)T * D);
  *out = d;
  return SRL_OK;

fail:
  srl_diffusion_destroy(d);
  return rc;
}


void srl_diffusion_destroy(srl_diffusion *d) {
  if (!d) return;
  srl_mlp_destroy(d->cond);
  srl_mlp_destroy(d->eps);
  if (d->dev) d->ops->free(d->dev);
  srl_free(d->host);
  srl_free(d);
}


//---- forward and backward ------------------------------------------------------------------------

int srl_diffusion_forward(srl_diffusion *d, float *eps_hat, const float *x, const float *obs,
                          const int *t, int n) {
  const srl_ops *o = d->ops;
  const srl_diffusion_config *c = &d->cfg;
  if (n < 1 || n > c->max_batch)
    return srl_error(SRL_ERANGE, "diffusion forward: %d rows outside [1, %d]", n, c->max_batch);
  int A = c->act_dim, O = c->obs_dim, T = c->T, H = c->time_dim / 2, D = d->in_dim;
  int C = D - A - O;
  for (int r = 0; r < n; r++)
    if (t[r] < 0 || t[r] >= T)
      return srl_error(SRL_ERANGE, "diffusion forward: row %d has time %d outside [0, %d)", r, t[r],
                       T);

  // time path on the T rows t = 0..T−1: features on the host, the MLP on the device
  SRL_TRY(o->download(d->h_w, d->cond->extra, (size_t)H * sizeof(float)));
  srl_fourier_forward(d->h_feat, d->h_w, H, d->h_time, T);
  SRL_TRY(o->upload(d->d_feat, d->h_feat, (size_t)T * 2 * H * sizeof(float)));
  SRL_TRY(srl_mlp_forward(d->cond, d->d_feat, T));
  for (int k = 0; k < T; k++)
    SRL_TRY(o->copy(d->d_condp + (size_t)k * D + A + O, d->cond->out + (size_t)k * C,
                    (size_t)C * sizeof(float)));

  // rows [x_t, s, 0] and their one-hot times, then cond added into the zero columns
  memset(d->h_onehot, 0, (size_t)n * T * sizeof(float));
  for (int r = 0; r < n; r++) {
    float *row = d->h_x + (size_t)r * D;
    memcpy(row, x + (size_t)r * A, (size_t)A * sizeof(float));
    memcpy(row + A, obs + (size_t)r * O, (size_t)O * sizeof(float));
    memset(row + A + O, 0, (size_t)C * sizeof(float));
    d->h_onehot[(size_t)r * T + t[r]] = 1.0f;
  }
  SRL_TRY(o->upload(d->d_x, d->h_x, (size_t)n * D * sizeof(float)));
  SRL_TRY(o->upload(d->d_onehot, d->h_onehot, (size_t)n * T * sizeof(float)));
  o->matmul(d->d_x, d->d_onehot, d->d_condp, n, D, T, 0, 0, 1.0f, 1.0f);

  SRL_TRY(srl_mlp_forward(d->eps, d->d_x, n));
  d->batch = n;
  if (eps_hat) SRL_TRY(o->download(eps_hat, d->eps->out, (size_t)n * A * sizeof(float)));
  return SRL_OK;
}


int srl_diffusion_backward(srl_diffusion *d, const float *deps) {
  const srl_ops *o = d->ops;
  const srl_diffusion_config *c = &d->cfg;
  if (d->batch == 0)
    return srl_error(SRL_ESTATE, "diffusion backward: no forward pass to go back through");
  int n = d->batch, A = c->act_dim, O = c->obs_dim, T = c->T, H = c->time_dim / 2, D = d->in_dim;
  int C = D - A - O;

  // MLPResNet: parameter gradients and the input gradient d_dx
  SRL_TRY(o->upload(d->d_g, deps, (size_t)n * A * sizeof(float)));
  SRL_TRY(srl_mlp_backward(d->eps, d->d_dx, d->d_g));

  // back through the gather: per time value, the sum of its rows' cond gradients
  o->matmul(d->d_dcondp, d->d_onehot, d->d_dx, T, D, n, 1, 0, 1.0f, 0.0f);
  for (int k = 0; k < T; k++)
    SRL_TRY(o->copy(d->d_dcond + (size_t)k * C, d->d_dcondp + (size_t)k * D + A + O,
                    (size_t)C * sizeof(float)));

  // time MLP, then the Fourier weights on the host, added onto their gradient
  SRL_TRY(srl_mlp_backward(d->cond, d->d_dfeat, d->d_dcond));
  SRL_TRY(o->download(d->h_dfeat, d->d_dfeat, (size_t)T * 2 * H * sizeof(float)));
  memset(d->h_dw, 0, (size_t)H * sizeof(float));
  srl_fourier_backward(d->h_dw, d->h_dfeat, d->h_w, H, d->h_time, T);
  SRL_TRY(o->upload(d->d_dw, d->h_dw, (size_t)H * sizeof(float)));
  o->add(d->cond->dextra, d->cond->dextra, d->d_dw, (size_t)H);
  return SRL_OK;
}


void srl_diffusion_zero_grad(srl_diffusion *d) {
  srl_mlp_zero_grad(d->cond);
  srl_mlp_zero_grad(d->eps);
}


void srl_diffusion_set_training(srl_diffusion *d, int training) {
  srl_mlp_set_training(d->eps, training);
}


int srl_diffusion_copy_params(srl_diffusion *dst, const srl_diffusion *src) {
  SRL_TRY(srl_mlp_copy_params(dst->cond, src->cond));
  return srl_mlp_copy_params(dst->eps, src->eps);
}


int srl_diffusion_polyak(srl_diffusion *dst, const srl_diffusion *src, float tau) {
  SRL_TRY(srl_mlp_polyak(dst->cond, src->cond, tau));
  return srl_mlp_polyak(dst->eps, src->eps, tau);
}


//---- sampling ------------------------------------------------------------------------------------

int srl_diffusion_sample(srl_diffusion *d, float *act, const float *obs, int n,
                         const srl_ddpm_schedule *s, srl_rng *rng, float temperature, int clip,
                         int repeat_last) {
  const srl_diffusion_config *c = &d->cfg;
  if (n < 1 || n > c->max_batch)
    return srl_error(SRL_ERANGE, "diffusion sample: %d rows outside [1, %d]", n, c->max_batch);
  if (!s || s->T != c->T)
    return srl_error(SRL_EINVAL, "diffusion sample: schedule of %d steps for a network of %d",
                     s ? s->T : 0, c->T);
  if (repeat_last < 0)
    return srl_error(SRL_EINVAL, "diffusion sample: repeat_last %d is negative", repeat_last);
  size_t na = (size_t)n * c->act_dim;
  float *x = d->h_xs;
  srl_rng_fill_normal(rng, x, na, 0.0f, 1.0f);
  for (int k = 0; k < c->T + repeat_last; k++) {
    int t = k < c->T ? c->T - 1 - k : 0;
    for (int r = 0; r < n; r++) d->h_t[r] = t;
    SRL_TRY(srl_diffusion_forward(d, d->h_eh, x, obs, d->h_t, n));
    if (t > 0) srl_rng_fill_normal(rng, d->h_z, na, 0.0f, 1.0f);
    srl_ddpm_step(x, d->h_eh, t > 0 ? d->h_z : NULL, na, s, t, temperature, clip);
  }
  for (size_t i = 0; i < na; i++) act[i] = x[i] < -1.0f ? -1.0f : (x[i] > 1.0f ? 1.0f : x[i]);
  return SRL_OK;
}

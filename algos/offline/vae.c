// vae.c: the conditional VAE of BCQ-Lag and CPQ: creation, the ELBO-style loss with its
// gradients (host arithmetic between the encoder and decoder passes), the training step,
// chunked encoding and decoding, and the per-row KL.
#include "algos/offline/vae.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

srl_vae_config srl_vae_config_default(int obs_dim, int act_dim, int max_batch) {
  return (srl_vae_config){.obs_dim = obs_dim,
                          .act_dim = act_dim,
                          .hidden = 400,
                          .latent = 2 * act_dim,
                          .max_batch = max_batch,
                          .beta = 0.5,
                          .lr = 1e-3,
                          .latent_clip = 0.5f};
}


static int alloc_scratch(srl_vae *v) {
  const srl_ops *ops = v->ops;
  size_t r = (size_t)v->rows, f = sizeof(float), O = (size_t)v->O, A = (size_t)v->A;
  size_t L = (size_t)v->L, G = 2 * L > A ? 2 * L : A;
  size_t total = 0;
  size_t o_x = srl_layout_add(&total, r * (O + A) * f),
         o_zx = srl_layout_add(&total, r * (O + L) * f);
  size_t o_g = srl_layout_add(&total, r * G * f), o_dz = srl_layout_add(&total, r * (O + L) * f);
  if (!(v->dev = ops->alloc(total))) return SRL_ENOMEM;
  char *d = v->dev;
  v->d_x = (float *)(d + o_x), v->d_zx = (float *)(d + o_zx);
  v->d_g = (float *)(d + o_g), v->d_dz = (float *)(d + o_dz);

  total = 0;
  size_t h_x = srl_layout_add(&total, r * (O + A) * f),
         h_zx = srl_layout_add(&total, r * (O + L) * f);
  size_t h_enc = srl_layout_add(&total, r * 2 * L * f), h_u = srl_layout_add(&total, r * A * f);
  size_t h_eps = srl_layout_add(&total, r * L * f), h_g = srl_layout_add(&total, r * G * f);
  size_t h_dz = srl_layout_add(&total, r * (O + L) * f);
  if (!(v->host = srl_calloc(total))) return SRL_ENOMEM;
  char *h = v->host;
  v->h_x = (float *)(h + h_x), v->h_zx = (float *)(h + h_zx), v->h_enc = (float *)(h + h_enc);
  v->h_u = (float *)(h + h_u), v->h_eps = (float *)(h + h_eps), v->h_g = (float *)(h + h_g);
  v->h_dz = (float *)(h + h_dz);
  return SRL_OK;
}


int srl_vae_create(srl_vae **out, const srl_ops *ops, const srl_vae_config *cfg, srl_rng *rng) {
  if (!out) return srl_error(SRL_EINVAL, "vae: NULL output handle");
  *out = NULL;
  if (!ops || !cfg || !rng) return srl_error(SRL_EINVAL, "vae: NULL ops, config or rng");
  int L = cfg->latent > 0 ? cfg->latent : 2 * cfg->act_dim;
  if (cfg->obs_dim < 1 || cfg->act_dim < 1 || cfg->hidden < 1 || cfg->max_batch < 1)
    return srl_error(SRL_EINVAL, "vae: obs_dim %d, act_dim %d, hidden %d, max_batch %d must be ≥ 1",
                     cfg->obs_dim, cfg->act_dim, cfg->hidden, cfg->max_batch);
  if (!(cfg->beta >= 0) || !isfinite(cfg->beta) || !(cfg->lr >= 0) || !isfinite(cfg->lr) ||
      !(cfg->latent_clip > 0))
    return srl_error(SRL_EINVAL,
                     "vae: beta %g and lr %g must be finite and ≥ 0, latent_clip %g > 0", cfg->beta,
                     cfg->lr, cfg->latent_clip);
  srl_vae *v = srl_calloc(sizeof *v);
  if (!v) return SRL_ENOMEM;
  v->ops = ops;
  v->cfg = *cfg;
  v->cfg.latent = L;
  v->O = cfg->obs_dim, v->A = cfg->act_dim, v->L = L, v->rows = cfg->max_batch;
  int H = cfg->hidden, rc;
  srl_mlp_config ce =
      srl_mlp_config_plain(4, (int[]){v->O + v->A, H, H, 2 * L}, SRL_ACT_RELU, SRL_ACT_IDENTITY);
  srl_mlp_config cd =
      srl_mlp_config_plain(4, (int[]){v->O + L, H, H, v->A}, SRL_ACT_RELU, SRL_ACT_TANH);
  srl_optim_config oc = srl_optim_config_default(SRL_OPTIM_ADAM, (float)cfg->lr);
  if ((rc = srl_mlp_create(&v->enc, ops, &ce, v->rows, rng)) < 0 ||
      (rc = srl_mlp_create(&v->dec, ops, &cd, v->rows, rng)) < 0 ||
      (rc = srl_optim_create(&v->opt_enc, ops, v->enc->n_params, &oc)) < 0 ||
      (rc = srl_optim_create(&v->opt_dec, ops, v->dec->n_params, &oc)) < 0 ||
      (rc = alloc_scratch(v)) < 0) {
    srl_vae_destroy(v);
    return rc;
  }
  *out = v;
  return SRL_OK;
}


void srl_vae_destroy(srl_vae *v) {
  if (!v) return;
  srl_mlp_destroy(v->enc);
  srl_mlp_destroy(v->dec);
  srl_optim_destroy(v->opt_enc);
  srl_optim_destroy(v->opt_dec);
  if (v->dev) v->ops->free(v->dev);
  srl_free(v->host);
  srl_free(v);
}


void srl_vae_zero_grad(srl_vae *v) {
  srl_mlp_zero_grad(v->enc);
  srl_mlp_zero_grad(v->dec);
}


// rows [a, b] into h, uploaded to d
static int upload_cat(const srl_ops *ops, float *d, float *h, const float *a, int wa,
                      const float *b, int wb, int n) {
  int w = wa + wb;
  for (int r = 0; r < n; r++) {
    memcpy(h + (size_t)r * w, a + (size_t)r * wa, (size_t)wa * sizeof(float));
    memcpy(h + (size_t)r * w + wa, b + (size_t)r * wb, (size_t)wb * sizeof(float));
  }
  return ops->upload(d, h, (size_t)n * w * sizeof(float));
}


static float clamp_ls(float x) {
  return x < SRL_VAE_LOG_STD_MIN   ? SRL_VAE_LOG_STD_MIN
         : x > SRL_VAE_LOG_STD_MAX ? SRL_VAE_LOG_STD_MAX
                                   : x;
}


// encoder pass on n ≤ rows: h_enc holds [μ, raw log σ]
static int encode_chunk(srl_vae *v, const float *obs, const float *act, int n) {
  SRL_TRY(upload_cat(v->ops, v->d_x, v->h_x, obs, v->O, act, v->A, n));
  SRL_TRY(srl_mlp_forward(v->enc, v->d_x, n));
  return v->ops->download(v->h_enc, v->enc->out, (size_t)n * 2 * v->L * sizeof(float));
}


// decoder pass on n ≤ rows with latents z (n × L): h_u holds the actions
static int decode_chunk(srl_vae *v, const float *obs, const float *z, int n) {
  SRL_TRY(upload_cat(v->ops, v->d_zx, v->h_zx, obs, v->O, z, v->L, n));
  SRL_TRY(srl_mlp_forward(v->dec, v->d_zx, n));
  return v->ops->download(v->h_u, v->dec->out, (size_t)n * v->A * sizeof(float));
}


int srl_vae_loss(srl_vae *v, srl_vae_terms *t, const float *obs, const float *act, const float *eps,
                 int n, int grad) {
  if (n < 1 || n > v->rows)
    return srl_error(SRL_ERANGE, "vae loss: %d rows outside [1, %d]", n, v->rows);
  int O = v->O, A = v->A, L = v->L;
  float *z = v->h_eps == eps ? v->h_g : v->h_eps;  // latents, away from the caller's noise
  SRL_TRY(encode_chunk(v, obs, act, n));

  // z = μ + σ·ε and the KL term
  double kl = 0;
  for (int i = 0; i < n; i++) {
    const float *mu = v->h_enc + (size_t)i * 2 * L, *raw = mu + L;
    for (int l = 0; l < L; l++) {
      float ls = clamp_ls(raw[l]), sd = expf(ls);
      z[(size_t)i * L + l] = mu[l] + sd * eps[(size_t)i * L + l];
      kl += 1.0 + logf(sd * sd) - (double)mu[l] * mu[l] - (double)sd * sd;
    }
  }
  kl = -0.5 * kl / ((double)n * L);

  // reconstruction
  SRL_TRY(decode_chunk(v, obs, z, n));
  double recon = 0;
  for (size_t k = 0; k < (size_t)n * A; k++) {
    double d = (double)v->h_u[k] - act[k];
    recon += d * d;
  }
  recon /= (double)n * A;
  double beta = v->cfg.beta;
  t->recon = recon, t->kl = kl, t->loss = recon + beta * kl;
  if (!grad) return SRL_OK;

  // decoder: ∂/∂u = 2(u − a)/(n·A); its input gradient gives ∂/∂z
  for (size_t k = 0; k < (size_t)n * A; k++)
    v->h_g[k] = (float)(2.0 * ((double)v->h_u[k] - act[k]) / ((double)n * A));
  SRL_TRY(v->ops->upload(v->d_g, v->h_g, (size_t)n * A * sizeof(float)));
  SRL_TRY(srl_mlp_backward(v->dec, v->d_dz, v->d_g));
  SRL_TRY(v->ops->download(v->h_dz, v->d_dz, (size_t)n * (O + L) * sizeof(float)));

  // encoder: ∂/∂μ = ∂z + β·μ/(nL); ∂/∂log σ = ∂z·ε·σ + β·(σ² − 1)/(nL), zero where clamped
  float kw = (float)(beta / ((double)n * L));
  for (int i = 0; i < n; i++) {
    const float *mu = v->h_enc + (size_t)i * 2 * L, *raw = mu + L;
    const float *dz = v->h_dz + (size_t)i * (O + L) + O;
    float *gm = v->h_g + (size_t)i * 2 * L, *gs = gm + L;
    for (int l = 0; l < L; l++) {
      float sd = expf(clamp_ls(raw[l])), e = eps[(size_t)i * L + l];
      gm[l] = dz[l] + kw * mu[l];
      int inside = raw[l] >= SRL_VAE_LOG_STD_MIN && raw[l] <= SRL_VAE_LOG_STD_MAX;
      gs[l] = inside ? dz[l] * e * sd + kw * (sd * sd - 1.0f) : 0.0f;
    }
  }
  SRL_TRY(v->ops->upload(v->d_g, v->h_g, (size_t)n * 2 * L * sizeof(float)));
  return srl_mlp_backward(v->enc, NULL, v->d_g);
}


int srl_vae_train(srl_vae *v, srl_vae_terms *t, const float *obs, const float *act, int n,
                  srl_rng *rng) {
  if (n < 1 || n > v->rows)
    return srl_error(SRL_ERANGE, "vae train: %d rows outside [1, %d]", n, v->rows);
  srl_rng_fill_normal(rng, v->h_eps, (size_t)n * v->L, 0.0f, 1.0f);
  srl_vae_zero_grad(v);
  SRL_TRY(srl_vae_loss(v, t, obs, act, v->h_eps, n, 1));
  if (!isfinite(t->loss))
    return srl_error(SRL_ENONFINITE, "vae loss is %g; parameters left unchanged", t->loss);
  float lr = (float)v->cfg.lr;
  SRL_TRY(srl_optim_step(v->opt_enc, v->enc->params, v->enc->grads, lr));
  return srl_optim_step(v->opt_dec, v->dec->params, v->dec->grads, lr);
}


int srl_vae_decode(srl_vae *v, float *act, const float *obs, const float *z, int n, srl_rng *rng) {
  if (n < 1) return srl_error(SRL_ERANGE, "vae decode: %d rows", n);
  if (!z && !rng) return srl_error(SRL_EINVAL, "vae decode: neither latents nor an rng");
  int O = v->O, A = v->A, L = v->L;
  float c = v->cfg.latent_clip;
  for (int r0 = 0; r0 < n; r0 += v->rows) {
    int m = n - r0 < v->rows ? n - r0 : v->rows;
    const float *zc = z ? z + (size_t)r0 * L : v->h_eps;
    if (!z) {
      srl_rng_fill_normal(rng, v->h_eps, (size_t)m * L, 0.0f, 1.0f);
      for (size_t k = 0; k < (size_t)m * L; k++)
        v->h_eps[k] = v->h_eps[k] < -c ? -c : v->h_eps[k] > c ? c : v->h_eps[k];
    }
    SRL_TRY(decode_chunk(v, obs + (size_t)r0 * O, zc, m));
    memcpy(act + (size_t)r0 * A, v->h_u, (size_t)m * A * sizeof(float));
  }
  return SRL_OK;
}


int srl_vae_encode(srl_vae *v, float *mean, float *std, const float *obs, const float *act, int n) {
  if (n < 1) return srl_error(SRL_ERANGE, "vae encode: %d rows", n);
  int O = v->O, A = v->A, L = v->L;
  for (int r0 = 0; r0 < n; r0 += v->rows) {
    int m = n - r0 < v->rows ? n - r0 : v->rows;
    SRL_TRY(encode_chunk(v, obs + (size_t)r0 * O, act + (size_t)r0 * A, m));
    for (int i = 0; i < m; i++) {
      const float *mu = v->h_enc + (size_t)i * 2 * L, *raw = mu + L;
      for (int l = 0; l < L; l++) {
        size_t k = (size_t)(r0 + i) * L + l;
        mean[k] = mu[l];
        std[k] = expf(clamp_ls(raw[l]));
      }
    }
  }
  return SRL_OK;
}


void srl_vae_kl_rows(float *kl, const float *mean, const float *std, int n, int L) {
  for (int i = 0; i < n; i++) {
    double s = 0;
    for (int l = 0; l < L; l++) {
      size_t k = (size_t)i * L + l;
      s += 1.0 + logf(std[k] * std[k]) - (double)mean[k] * mean[k] - (double)std[k] * std[k];
    }
    kl[i] = (float)(-0.5 * s / L);
  }
}

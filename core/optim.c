// optim.c: Adam / AdamW steps over a parameter block, gradient-norm clipping, lr schedules.
#include "core/optim.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"


//---- adam / adamw -----------------------------------------------------------------------------

srl_optim_config srl_optim_config_default(srl_optim_kind kind, float lr) {
  srl_optim_config c = {.kind = kind, .lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
  c.weight_decay = kind == SRL_OPTIM_ADAMW ? 1e-2f : 0.0f;
  return c;
}


static int check_config(const srl_optim_config *c) {
  if (c->kind != SRL_OPTIM_ADAM && c->kind != SRL_OPTIM_ADAMW)
    return srl_error(SRL_EINVAL, "optim: unknown kind %d", (int)c->kind);
  if (!(c->lr >= 0.0f) || !isfinite(c->lr))
    return srl_error(SRL_EINVAL, "optim: learning rate %g must be finite and ≥ 0", c->lr);
  if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f))
    return srl_error(SRL_EINVAL, "optim: betas (%g, %g) outside [0, 1)", c->beta1, c->beta2);
  if (!(c->eps >= 0.0f) || !isfinite(c->eps))
    return srl_error(SRL_EINVAL, "optim: eps %g must be finite and ≥ 0", c->eps);
  if (!(c->weight_decay >= 0.0f) || !isfinite(c->weight_decay))
    return srl_error(SRL_EINVAL, "optim: weight_decay %g must be finite and ≥ 0", c->weight_decay);
  return SRL_OK;
}


int srl_optim_create(srl_optim **out, const srl_ops *ops, size_t n, const srl_optim_config *cfg) {
  if (!out) return srl_error(SRL_EINVAL, "optim: NULL output handle");
  *out = NULL;
  if (!ops || !cfg) return srl_error(SRL_EINVAL, "optim: NULL ops or config");
  if (n == 0) return srl_error(SRL_EINVAL, "optim: no parameters to optimize");
  SRL_TRY(check_config(cfg));
  srl_optim *opt = srl_calloc(sizeof *opt);
  if (!opt) return SRL_ENOMEM;
  opt->ops = ops;
  opt->cfg = *cfg;
  opt->n = n;
  // m and v in one block, v on its own cache line
  size_t total = 0, off_v;
  srl_layout_add(&total, n * sizeof(float));
  off_v = srl_layout_add(&total, n * sizeof(float));
  opt->m = ops->alloc(total);
  if (!opt->m) {
    int rc =
        srl_error_context(SRL_ENOMEM, "optim: moments for %zu parameters on %s: ", n, ops->name);
    srl_free(opt);
    return rc;
  }
  opt->v = (float *)((char *)opt->m + off_v);
  *out = opt;
  return SRL_OK;
}


void srl_optim_destroy(srl_optim *opt) {
  if (!opt) return;
  opt->ops->free(opt->m);
  srl_free(opt);
}


int srl_optim_step(srl_optim *opt, float *params, const float *grads, float lr) {
  if (!params || !grads) return srl_error(SRL_EINVAL, "optim step: NULL parameters or gradients");
  if (!isfinite(lr)) return srl_error(SRL_ENONFINITE, "optim step: learning rate %g", lr);
  if (opt->step >= INT32_MAX)
    return srl_error(SRL_ERANGE, "optim step: step count %lld overflows", (long long)opt->step);
  opt->step++;
  srl_adam_step s = {
      .lr = lr,
      .beta1 = opt->cfg.beta1,
      .beta2 = opt->cfg.beta2,
      .eps = opt->cfg.eps,
      .weight_decay = opt->cfg.weight_decay,
      .step = (int)opt->step,
      .decoupled = opt->cfg.kind == SRL_OPTIM_ADAMW,
  };
  opt->ops->adam_update(params, grads, opt->m, opt->v, opt->n, &s);
  return SRL_OK;
}


void srl_optim_reset(srl_optim *opt) {
  opt->ops->fill(opt->m, 0.0f, opt->n);
  opt->ops->fill(opt->v, 0.0f, opt->n);
  opt->step = 0;
}


int srl_optim_state_download(const srl_optim *opt, float *m, float *v, int64_t *step) {
  if (!m || !v || !step) return srl_error(SRL_EINVAL, "optim state: NULL destination");
  SRL_TRY(opt->ops->download(m, opt->m, opt->n * sizeof(float)));
  SRL_TRY(opt->ops->download(v, opt->v, opt->n * sizeof(float)));
  *step = opt->step;
  return SRL_OK;
}


int srl_optim_state_upload(srl_optim *opt, const float *m, const float *v, int64_t step) {
  if (!m || !v) return srl_error(SRL_EINVAL, "optim state: NULL source");
  if (step < 0 || step >= INT32_MAX)
    return srl_error(SRL_ERANGE, "optim state: step %lld out of range", (long long)step);
  SRL_TRY(opt->ops->upload(opt->m, m, opt->n * sizeof(float)));
  SRL_TRY(opt->ops->upload(opt->v, v, opt->n * sizeof(float)));
  opt->step = step;
  return SRL_OK;
}


//---- clipping ---------------------------------------------------------------------------------

float srl_optim_clip_grad_norm(const srl_ops *ops, float *grads, size_t n, float max_norm) {
  float norm = sqrtf(ops->sumsq(grads, n));
  if (max_norm > 0.0f && isfinite(norm)) {
    // torch: coef = max/(norm + 1e-6), applied when below 1
    float coef = max_norm / (norm + 1e-6f);
    if (coef < 1.0f) ops->scale(grads, coef, n);
  }
  return norm;
}


//---- schedules --------------------------------------------------------------------------------

int srl_lr_check(const srl_lr_schedule *s) {
  if (s->kind != SRL_LR_CONSTANT && s->kind != SRL_LR_LINEAR && s->kind != SRL_LR_COSINE)
    return srl_error(SRL_EINVAL, "lr schedule: unknown kind %d", (int)s->kind);
  if (!isfinite(s->base) || !isfinite(s->final))
    return srl_error(SRL_EINVAL, "lr schedule: base %g and final %g must be finite", s->base,
                     s->final);
  if (s->kind == SRL_LR_CONSTANT) return SRL_OK;
  if (s->total <= 0)
    return srl_error(SRL_EINVAL, "lr schedule: total %lld must be positive", (long long)s->total);
  if (s->warmup < 0 || (s->kind == SRL_LR_COSINE && s->warmup >= s->total))
    return srl_error(SRL_EINVAL, "lr schedule: warmup %lld outside [0, total %lld)",
                     (long long)s->warmup, (long long)s->total);
  return SRL_OK;
}


float srl_lr_at(const srl_lr_schedule *s, int64_t t) {
  if (t < 0) t = 0;
  switch (s->kind) {
    case SRL_LR_LINEAR: {
      if (s->total <= 0) return s->final;
      double frac = (double)(t < s->total ? t : s->total) / (double)s->total;
      return (float)(s->base + (s->final - (double)s->base) * frac);
    }
    case SRL_LR_COSINE: {
      if (t < s->warmup) return (float)((double)s->base * (double)t / (double)s->warmup);
      int64_t span = s->total - s->warmup;
      if (span <= 0) return s->final;
      double tau = (double)(t - s->warmup) / (double)span;
      if (tau > 1.0) tau = 1.0;
      return (float)(s->final + (s->base - (double)s->final) * 0.5 * (1.0 + cos(M_PI * tau)));
    }
    default:
      return s->base;
  }
}

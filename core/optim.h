// optim.h: Adam / AdamW over a parameter block, global gradient-norm clipping, lr schedules.
//
// An optimizer covers one contiguous block of n parameters with their gradients beside them in
// a mirrored block (a network's net->params / net->grads, extra parameters included), on the
// device of its op table. Its moments m and v mirror that layout in one device allocation of
// their own. A step is one ops->adam_update over the whole block; nothing allocates.
// Schedules are pure functions of the step (or epoch) that the caller feeds into each step.
#ifndef SRL_OPTIM_H
#define SRL_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "core/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum srl_optim_kind {
  SRL_OPTIM_ADAM = 0,  // weight decay as L2 in the gradient (torch.optim.Adam)
  SRL_OPTIM_ADAMW,     // decoupled weight decay (torch.optim.AdamW)
} srl_optim_kind;

typedef struct srl_optim_config {
  srl_optim_kind kind;
  float lr;            // base learning rate (schedules scale from it)
  float beta1, beta2;  // 0.9, 0.999
  float eps;           // 1e-8
  float weight_decay;  // Adam: 0; AdamW: PyTorch's default is 1e-2
} srl_optim_config;

// PyTorch's defaults for a kind and learning rate.
srl_optim_config srl_optim_config_default(srl_optim_kind kind, float lr);

typedef struct srl_optim {
  const srl_ops *ops;
  srl_optim_config cfg;
  size_t n;      // parameters covered
  float *m, *v;  // (n), (n) first and second moments on the device; one allocation
  int64_t step;  // steps taken; the next step uses step + 1 for the bias corrections
} srl_optim;

// Create an optimizer for n parameters on ops' device, moments zero, step 0.
int srl_optim_create(srl_optim **out, const srl_ops *ops, size_t n, const srl_optim_config *cfg);
void srl_optim_destroy(srl_optim *opt);

// One step: params (n) -= update(grads (n)) at learning rate lr (pass cfg.lr, or a schedule's
// value). SRL_ENONFINITE (and nothing changed) when lr is not finite.
int srl_optim_step(srl_optim *opt, float *params, const float *grads, float lr);

// Forget the moments and the step count.
void srl_optim_reset(srl_optim *opt);

// Optimizer state for checkpoints: the moments go to / come from host arrays of n floats each.
int srl_optim_state_download(const srl_optim *opt, float *m, float *v, int64_t *step);
int srl_optim_state_upload(srl_optim *opt, const float *m, const float *v, int64_t step);

// Global L2 norm of grads (n); when above max_norm, scale grads by max_norm / (norm + 1e-6) as
// torch.nn.utils.clip_grad_norm_; max_norm ≤ 0 only measures. Returns the norm before clipping
// (NaN or inf are returned as they are, the gradients left unscaled, for the caller to act on).
float srl_optim_clip_grad_norm(const srl_ops *ops, float *grads, size_t n, float max_norm);

//---- learning-rate schedules --------------------------------------------------------------------

typedef enum srl_lr_kind {
  SRL_LR_CONSTANT = 0,  // base
  SRL_LR_LINEAR,        // base → final linearly over total steps, then final (torch LinearLR)
  SRL_LR_COSINE,        // [warmup 0 → base linearly], then cosine base → final (optax)
} srl_lr_kind;

typedef struct srl_lr_schedule {
  srl_lr_kind kind;
  float base;      // starting (peak, after warmup) learning rate
  float final;     // value reached at total (0 for OmniSafe's LinearLR and FISOR's cosine)
  int64_t total;   // steps (or epochs) to reach final, warmup included
  int64_t warmup;  // cosine only: steps of linear warmup from 0
} srl_lr_schedule;

// Check a schedule's fields (total > 0 for linear and cosine, 0 ≤ warmup < total).
int srl_lr_check(const srl_lr_schedule *s);

// The learning rate at step t ≥ 0 (t counts completed steps: t = 0 is the first):
//   linear  base + (final − base)·min(t, total)/total
//   cosine  t < warmup: base·t/warmup; else final + (base − final)·½(1 + cos(π·min(τ, 1))),
//           τ = (t − warmup)/(total − warmup)
float srl_lr_at(const srl_lr_schedule *s, int64_t t);

#ifdef __cplusplus
}
#endif
#endif  // SRL_OPTIM_H

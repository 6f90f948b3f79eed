// lagrange.c: Lagrange multiplier updates: Adam on λ (PPO-Lag) and the PID Lagrangian (CPPO-PID).
#include "algos/lagrange.h"

#include <math.h>
#include <string.h>

#include "core/error.h"


//---- configuration ----------------------------------------------------------------------------

srl_lagrange_config srl_lagrange_config_default(srl_lagrange_kind kind) {
  srl_lagrange_config c;
  memset(&c, 0, sizeof c);
  c.kind = kind;
  c.cost_limit = 25.0;
  c.init = 0.001;
  c.lambda_lr = 0.035;
  c.upper_bound = 0.0;
  c.kp = 0.1;
  c.ki = 0.01;
  c.kd = 0.01;
  c.d_delay = 10;
  c.delta_p_ema_alpha = 0.95;
  c.delta_d_ema_alpha = 0.95;
  c.sum_norm = 1;
  c.diff_norm = 0;
  c.penalty_max = 100.0;
  return c;
}


// a finite config field, named in the error
#define NEED_FINITE(field)                                                             \
  do {                                                                                 \
    if (!isfinite(c->field))                                                           \
      return srl_error(SRL_EINVAL, "lagrange: " #field " is %g (need a finite value)", \
                       (double)c->field);                                              \
  } while (0)

static int check_config(const srl_lagrange_config *c) {
  NEED_FINITE(cost_limit);
  NEED_FINITE(init);
  if (c->kind == SRL_LAGRANGE_ADAM) {
    NEED_FINITE(lambda_lr);
    NEED_FINITE(upper_bound);
    if (!(c->lambda_lr > 0))
      return srl_error(SRL_EINVAL, "lagrange: lambda_lr %g (need > 0)", (double)c->lambda_lr);
    return SRL_OK;
  }
  if (c->kind != SRL_LAGRANGE_PID)
    return srl_error(SRL_EINVAL, "lagrange: unknown kind %d", (int)c->kind);
  NEED_FINITE(kp);
  NEED_FINITE(ki);
  NEED_FINITE(kd);
  NEED_FINITE(delta_p_ema_alpha);
  NEED_FINITE(delta_d_ema_alpha);
  NEED_FINITE(penalty_max);
  if (c->d_delay < 1 || c->d_delay > SRL_PID_MAX_DELAY)
    return srl_error(SRL_EINVAL, "lagrange: d_delay %d not in [1, %d]", c->d_delay,
                     SRL_PID_MAX_DELAY);
  if (c->delta_p_ema_alpha < 0 || c->delta_p_ema_alpha > 1)
    return srl_error(SRL_EINVAL, "lagrange: delta_p_ema_alpha %g not in [0, 1]",
                     (double)c->delta_p_ema_alpha);
  if (c->delta_d_ema_alpha < 0 || c->delta_d_ema_alpha > 1)
    return srl_error(SRL_EINVAL, "lagrange: delta_d_ema_alpha %g not in [0, 1]",
                     (double)c->delta_d_ema_alpha);
  if (c->penalty_max < 0)
    return srl_error(SRL_EINVAL, "lagrange: penalty_max %g (need ≥ 0)", (double)c->penalty_max);
  return SRL_OK;
}


int srl_lagrange_init(srl_lagrange *lg, const srl_lagrange_config *cfg) {
  if (!lg || !cfg) return srl_error(SRL_EINVAL, "lagrange: NULL argument");
  SRL_TRY(check_config(cfg));
  memset(lg, 0, sizeof *lg);
  lg->cfg = *cfg;
  if (cfg->kind == SRL_LAGRANGE_ADAM) {
    // OmniSafe: init_value = max(lagrangian_multiplier_init, 0.0)
    lg->lambda = cfg->init > 0 ? (float)cfg->init : 0.0f;
  } else {
    // OmniSafe: _pid_i = init, _cost_ds = deque([0.0]), _cost_penalty = 0
    lg->pid_i = (float)cfg->init;
    lg->n_delay = 1;
    lg->delay[0] = 0.0f;
    lg->lambda = 0.0f;
  }
  return SRL_OK;
}


//---- updates ----------------------------------------------------------------------------------

// one step of torch.optim.Adam (single-tensor path, float32 tensors) on the loss −λ·(Jc − d),
// then clamp_(0, upper_bound). The float operations are torch's CPU kernels' own, checked bit for
// bit against torch 1.13: add_ with alpha and addcmul_ are fused multiply-adds, addcdiv_ is
// λ + (value·m)/denom with value = −step_size rounded to float.
static void adam_update(srl_lagrange *lg, double jc) {
  const float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  const float one_m_b1 = (float)(1.0 - 0.9), one_m_b2 = (float)(1.0 - 0.999);
  // loss = −λ·(Jc − d): ∂loss/∂λ = −(Jc − d), the difference taken in double as Python does
  float g = -(float)(jc - (double)lg->cfg.cost_limit);
  lg->updates++;
  // exp_avg.mul_(β1).add_(g, alpha=1−β1); exp_avg_sq.mul_(β2).addcmul_(g, g, value=1−β2)
  lg->adam_m = fmaf(g, one_m_b1, lg->adam_m * beta1);
  lg->adam_v = fmaf(one_m_b2 * g, g, lg->adam_v * beta2);
  // bias corrections and step size in double (Python floats)
  double k = (double)lg->updates;
  double bc1 = 1.0 - pow(0.9, k), bc2 = 1.0 - pow(0.999, k);
  double step_size = (double)lg->cfg.lambda_lr / bc1;
  // denom = (exp_avg_sq.sqrt() / √bc2).add_(eps); param.addcdiv_(exp_avg, denom, −step_size)
  float denom = sqrtf(lg->adam_v) / (float)sqrt(bc2) + eps;
  float lam = lg->lambda + ((float)(-step_size) * lg->adam_m) / denom;
  // clamp_(0, upper_bound)
  if (lam < 0.0f) lam = 0.0f;
  if (lg->cfg.upper_bound > 0 && lam > lg->cfg.upper_bound) lam = (float)lg->cfg.upper_bound;
  lg->lambda = lam;
}


// OmniSafe's PIDLagrangian.pid_update, in double from the float32 state
static void pid_update(srl_lagrange *lg, double jc) {
  const srl_lagrange_config *c = &lg->cfg;
  double delta = jc - (double)c->cost_limit;
  // integral, clamped at 0 (and at 1 with diff_norm)
  double pid_i = fmax(0.0, (double)lg->pid_i + delta * (double)c->ki);
  if (c->diff_norm) pid_i = fmax(0.0, fmin(1.0, pid_i));
  // EMAs of the error (P) and of the cost (D̄)
  double a_p = c->delta_p_ema_alpha, a_d = c->delta_d_ema_alpha;
  double delta_p = (double)lg->pid_p * a_p + (1.0 - a_p) * delta;
  double cost_d = (double)lg->pid_d * a_d + (1.0 - a_d) * jc;
  // derivative against the oldest delayed D̄
  double pid_d = fmax(0.0, cost_d - (double)lg->delay[lg->delay_head]);
  double pid_o = (double)c->kp * delta_p + pid_i + (double)c->kd * pid_d;
  double penalty = fmax(0.0, pid_o);
  if (c->diff_norm) penalty = fmin(1.0, penalty);
  if (!(c->diff_norm || c->sum_norm)) penalty = fmin(penalty, (double)c->penalty_max);
  lg->pid_i = (float)pid_i;
  lg->pid_p = (float)delta_p;
  lg->pid_d = (float)cost_d;
  lg->lambda = (float)penalty;
  // deque(maxlen=d_delay).append(cost_d): drop the oldest when full
  if (lg->n_delay < c->d_delay) {
    lg->delay[(lg->delay_head + lg->n_delay) % c->d_delay] = lg->pid_d;
    lg->n_delay++;
  } else {
    lg->delay[lg->delay_head] = lg->pid_d;
    lg->delay_head = (lg->delay_head + 1) % c->d_delay;
  }
  lg->updates++;
}


int srl_lagrange_update(srl_lagrange *lg, double jc) {
  if (!lg) return srl_error(SRL_EINVAL, "lagrange update: NULL");
  if (!isfinite(jc))
    return srl_error(SRL_ENONFINITE,
                     "lagrange update: mean episode cost Jc is %g "
                     "(no finished episode yet, or a diverged cost)",
                     jc);
  if (lg->cfg.kind == SRL_LAGRANGE_ADAM)
    adam_update(lg, jc);
  else
    pid_update(lg, jc);
  if (!isfinite(lg->lambda))
    return srl_error(SRL_ENONFINITE, "lagrange update: lambda became %g", (double)lg->lambda);
  return SRL_OK;
}


//---- checkpoint state -------------------------------------------------------------------------

int srl_lagrange_state_size(const srl_lagrange *lg) {
  if (!lg) return 0;
  return lg->cfg.kind == SRL_LAGRANGE_ADAM ? 4 : 6 + lg->cfg.d_delay;
}


int srl_lagrange_state_save(const srl_lagrange *lg, float *out) {
  if (!lg || !out) return srl_error(SRL_EINVAL, "lagrange state_save: NULL argument");
  if (lg->cfg.kind == SRL_LAGRANGE_ADAM) {
    out[0] = lg->lambda;
    out[1] = lg->adam_m;
    out[2] = lg->adam_v;
    out[3] = (float)lg->updates;
    return SRL_OK;
  }
  // λ, I, P, D̄, updates, queue length, queue oldest first, zeros after
  const int d = lg->cfg.d_delay;
  out[0] = lg->lambda;
  out[1] = lg->pid_i;
  out[2] = lg->pid_p;
  out[3] = lg->pid_d;
  out[4] = (float)lg->updates;
  out[5] = (float)lg->n_delay;
  for (int k = 0; k < d; k++)
    out[6 + k] = k < lg->n_delay ? lg->delay[(lg->delay_head + k) % d] : 0.0f;
  return SRL_OK;
}


int srl_lagrange_state_load(srl_lagrange *lg, const float *in, int n) {
  if (!lg || !in) return srl_error(SRL_EINVAL, "lagrange state_load: NULL argument");
  int want = srl_lagrange_state_size(lg);
  if (n != want)
    return srl_error(SRL_EINVAL, "lagrange state_load: %d values for a state of %d (%s)", n, want,
                     lg->cfg.kind == SRL_LAGRANGE_ADAM ? "adam" : "pid");
  for (int k = 0; k < n; k++)
    if (!isfinite(in[k]))
      return srl_error(SRL_ERANGE, "lagrange state_load: value %d is %g", k, (double)in[k]);
  if (in[0] < 0) return srl_error(SRL_ERANGE, "lagrange state_load: lambda %g < 0", (double)in[0]);
  if (lg->cfg.kind == SRL_LAGRANGE_ADAM) {
    if (in[2] < 0 || in[3] < 0 || in[3] != floorf(in[3]))
      return srl_error(SRL_ERANGE, "lagrange state_load: bad adam state (v %g, step %g)",
                       (double)in[2], (double)in[3]);
    lg->lambda = in[0];
    lg->adam_m = in[1];
    lg->adam_v = in[2];
    lg->updates = (long long)in[3];
    return SRL_OK;
  }
  const int d = lg->cfg.d_delay;
  if (in[1] < 0 || in[4] < 0 || in[4] != floorf(in[4]) || in[5] < 1 || in[5] > d ||
      in[5] != floorf(in[5]))
    return srl_error(SRL_ERANGE,
                     "lagrange state_load: bad pid state (I %g, updates %g, "
                     "queue length %g of %d)",
                     (double)in[1], (double)in[4], (double)in[5], d);
  lg->lambda = in[0];
  lg->pid_i = in[1];
  lg->pid_p = in[2];
  lg->pid_d = in[3];
  lg->updates = (long long)in[4];
  lg->n_delay = (int)in[5];
  lg->delay_head = 0;
  memset(lg->delay, 0, sizeof lg->delay);
  for (int k = 0; k < lg->n_delay; k++) lg->delay[k] = in[6 + k];
  return SRL_OK;
}

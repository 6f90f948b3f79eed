// cpo.c: TRPO-Lag and CPO actor updates (conjugate gradient, Fisher-vector products, CPO's case
// analysis, line search) on the op table, and their entries in the on-policy trainer.
#include "algos/cpo.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

#define HALF_LOG_2PIE 1.41893853320467274178  // ½(1 + log 2π): Gaussian entropy per dim at σ = 1
#define CG_EPS 1e-6                           // OmniSafe's conjugate_gradients
#define CG_RESIDUAL_TOL 1e-10
#define SMALL 1e-8  // OmniSafe's guard in √(2δ/xHx), A, B, λ and ν

struct srl_cpo {
  srl_actor_critic *ac;
  const srl_ops *ops;
  int max_rows, chunk, obs_dim, act_dim, max_width;
  size_t np;  // floats in the actor's parameter block

  // device block: vectors of np floats
  float *theta_old, *g, *b, *x, *p, *dir, *fv, *tmp;
  float *cg_work;  // (4·np)
  // rows
  float *mean_old;  // (max_rows, A) the old policy's means
  float *adv;       // (max_rows) TRPO-Lag's combined advantage
  float *fvp_obs;   // (⌈max_rows/2⌉, obs_dim) every k-th observation when k ≥ 2
  float *logp, *dlogp, *ones, *kconst;  // (chunk)
  float *dmean, *zeros, *diff;          // (chunk, A)
  float *tan[2];                        // (chunk, max_width) forward-mode tangents
  void *dev;

  // host block
  float *log_std_old, *log_std_cur;  // (A)
  void *host;

  // the update in progress
  int begun;
  srl_cpo_batch batch;
  srl_cpo_config cfg;
  const float *fobs;  // the Fisher's observations (batch.obs or fvp_obs)
  int n_fvp;
  // the actor's last forward, when this module made it at the current parameters
  const float *fwd_in;
  int fwd_rows;
};


srl_cpo_config srl_cpo_config_default(void) {
  srl_cpo_config c = {.target_kl = 0.01f,
                      .cg_damping = 0.1f,
                      .cg_iters = 15,
                      .ls_steps = 20,
                      .ls_decay = 0.8f,
                      .fvp_sample_freq = 1,
                      .cost_limit = 25.0f};
  return c;
}


srl_cpo_config srl_trpo_lag_config_default(void) {
  srl_cpo_config c = srl_cpo_config_default();
  c.ls_steps = 15;  // TRPO._search_step_size's default; CPO passes 20
  return c;
}


static int check_config(const srl_cpo_config *c) {
  if (!(c->target_kl > 0) || !isfinite(c->target_kl))
    return srl_error(SRL_EINVAL, "cpo: target_kl %g must be finite and > 0", c->target_kl);
  if (!(c->cg_damping >= 0) || !isfinite(c->cg_damping))
    return srl_error(SRL_EINVAL, "cpo: cg_damping %g must be finite and ≥ 0", c->cg_damping);
  if (c->cg_iters < 1 || c->ls_steps < 1 || c->fvp_sample_freq < 1)
    return srl_error(SRL_EINVAL,
                     "cpo: cg_iters %d, ls_steps %d and fvp_sample_freq %d must be "
                     "at least 1",
                     c->cg_iters, c->ls_steps, c->fvp_sample_freq);
  if (!(c->ls_decay > 0 && c->ls_decay <= 1))
    return srl_error(SRL_EINVAL, "cpo: ls_decay %g outside (0, 1]", c->ls_decay);
  if (isnan(c->cost_limit)) return srl_error(SRL_EINVAL, "cpo: cost_limit is not a number");
  return SRL_OK;
}


//---- small vector helpers -----------------------------------------------------------------------

static double dot(const srl_ops *o, float *tmp, const float *a, const float *b, size_t n) {
  o->mul(tmp, a, b, n);
  return o->sum(tmp, n);
}


//---- conjugate gradient -------------------------------------------------------------------------

int srl_cg_solve(const srl_ops *ops, float *x, const float *rhs, size_t n, int iters,
                 srl_matvec_fn mv, void *ctx, float *work, int *iters_done) {
  if (!ops || !x || !rhs || !mv || !work || n == 0 || iters < 1)
    return srl_error(SRL_EINVAL, "conjugate gradient: missing vectors or %d iterations", iters);
  float *r = work, *d = work + n, *z = work + 2 * n, *tmp = work + 3 * n;
  // x = 0, so the first residual is rhs itself (OmniSafe subtracts M·0)
  ops->fill(x, 0.0f, n);
  SRL_TRY(ops->copy(r, rhs, n * sizeof(float)));
  SRL_TRY(ops->copy(d, rhs, n * sizeof(float)));
  double rdotr = ops->sumsq(r, n);
  int k = 0;
  while (k < iters) {
    SRL_TRY(mv(ctx, z, d));
    double alpha = rdotr / (dot(ops, tmp, d, z, n) + CG_EPS);
    ops->axpby(x, (float)alpha, d, 1.0f, n);
    ops->axpby(r, (float)-alpha, z, 1.0f, n);
    double new_rdotr = ops->sumsq(r, n);
    k++;
    if (sqrt(new_rdotr) < CG_RESIDUAL_TOL) break;
    double mu = new_rdotr / (rdotr + CG_EPS);
    ops->axpby(d, 1.0f, r, (float)mu, n);  // d = r + μ·d
    rdotr = new_rdotr;
  }
  if (iters_done) *iters_done = k;
  return SRL_OK;
}


//---- the case analysis --------------------------------------------------------------------------

// max(lo, min(hi, v)) as Achiam's code: an empty interval (lo > hi) gives lo; NaN stays NaN
static double project(double v, double lo, double hi) {
  double u = v > hi ? hi : v;
  return u < lo ? lo : u;
}


void srl_cpo_solve(srl_cpo_solution *out, const srl_cpo_quad *in) {
  double q = in->q, r = in->r, s = in->s, c = in->c, delta = in->target_kl;
  srl_cpo_solution o = {0};
  if (in->bb <= 1e-6 && c < 0) {
    // no cost gradient and feasible: plain trust-region step
    o.optim_case = 4;
  } else {
    o.A = q - r * r / (s + SMALL);
    o.B = 2 * delta - c * c / (s + SMALL);
    if (c < 0 && o.B < 0)
      o.optim_case = 3;  // the whole trust region is feasible
    else if (c < 0 && o.B >= 0)
      o.optim_case = 2;  // feasible now, the boundary cuts the trust region
    else if (c >= 0 && o.B >= 0)
      o.optim_case = 1;  // infeasible now, a feasible part of the region exists
    else
      o.optim_case = 0;  // no feasible point in the region: recover
  }

  if (o.optim_case >= 3) {
    double alpha = sqrt(2 * delta / (q + SMALL));
    o.lambda = 1.0 / (alpha + SMALL);
    o.nu = 0;
    o.coef_x = alpha;
    o.coef_p = 0;
  } else if (o.optim_case >= 1) {
    // dual of max gᵀd s.t. c + bᵀd ≤ 0, ½dᵀHd ≤ δ: d = (x − νp)/λ, ν = max(0, λc + r)/s
    double lam_mid = -r / (c + SMALL);
    double lam_a = sqrt(o.A / o.B), lam_b = sqrt(q / (2 * delta));
    if (c < 0) {
      lam_a = project(lam_a, 0.0, lam_mid);
      lam_b = project(lam_b, lam_mid, INFINITY);
    } else {
      lam_a = project(lam_a, lam_mid, INFINITY);
      lam_b = project(lam_b, 0.0, lam_mid);
    }
    double f_a = -0.5 * (o.A / (lam_a + SMALL) + o.B * lam_a) + r * c / (s + SMALL);
    double f_b = -0.5 * (q / (lam_b + SMALL) + 2 * delta * lam_b);
    o.lambda = f_a >= f_b ? lam_a : lam_b;
    double t = o.lambda * c + r;
    o.nu = (t > 0 ? t : 0.0) / (s + SMALL);
    o.coef_x = 1.0 / (o.lambda + SMALL);
    o.coef_p = -o.nu / (o.lambda + SMALL);
  } else {
    // purely decrease the cost
    o.lambda = 0;
    o.nu = sqrt(2 * delta / (s + SMALL));
    o.coef_x = 0;
    o.coef_p = -o.nu;
  }
  *out = o;
}


int srl_cpo_accept(int optim_case, double reward_improve, double cost_diff, double kl, double c,
                   double target_kl) {
  if (!isfinite(reward_improve) || !isfinite(cost_diff) || !isfinite(kl)) return 0;
  if (optim_case > 1 && reward_improve < 0) return 0;
  double slack = -c > 0 ? -c : 0.0;
  if (cost_diff > slack) return 0;
  return kl <= target_kl;
}


int srl_trpo_accept(double loss_improve, double kl, double target_kl) {
  if (!isfinite(loss_improve) || !isfinite(kl)) return 0;
  if (loss_improve < 0) return 0;
  return kl <= target_kl;
}


//---- the workspace ------------------------------------------------------------------------------

int srl_cpo_create(srl_cpo **out, srl_actor_critic *ac, int max_rows) {
  if (!out || !ac) return srl_error(SRL_EINVAL, "srl_cpo_create: arguments needed");
  *out = NULL;
  const srl_mlp *actor = ac->actor;
  const srl_mlp_config *mc = &actor->cfg;
  if (mc->res_blocks > 0 || mc->layernorm || mc->dropout > 0)
    return srl_error(SRL_EUNSUPPORTED,
                     "cpo: the actor must be a plain MLP (no residual blocks, "
                     "layernorm or dropout) for its Fisher-vector products");
  if (max_rows < 1) return srl_error(SRL_EINVAL, "cpo: max_rows %d must be ≥ 1", max_rows);
  if (!actor->extra || mc->extra != ac->cfg.act_dim)
    return srl_error(SRL_EINVAL, "cpo: the actor needs a log_std of %d entries", ac->cfg.act_dim);

  srl_cpo *w = srl_calloc(sizeof *w);
  if (!w) return SRL_ENOMEM;
  w->ac = ac;
  w->ops = ac->ops;
  w->max_rows = max_rows;
  w->chunk = actor->max_batch;
  w->obs_dim = ac->cfg.obs_dim;
  w->act_dim = ac->cfg.act_dim;
  w->np = actor->n_params;
  for (int i = 0; i < mc->n_sizes; i++)
    if (mc->sizes[i] > w->max_width) w->max_width = mc->sizes[i];

  size_t np = w->np, R = (size_t)max_rows, C = (size_t)w->chunk, A = (size_t)w->act_dim;
  size_t O = (size_t)w->obs_dim, F = sizeof(float);
  size_t total = 0, o_vec[8];
  for (int i = 0; i < 8; i++) o_vec[i] = srl_layout_add(&total, np * F);
  size_t o_cg = srl_layout_add(&total, 4 * np * F);
  size_t o_mo = srl_layout_add(&total, R * A * F);
  size_t o_adv = srl_layout_add(&total, R * F);
  size_t o_fo = srl_layout_add(&total, (R + 1) / 2 * O * F);
  size_t o_row[4], o_rowa[3], o_tan[2];
  for (int i = 0; i < 4; i++) o_row[i] = srl_layout_add(&total, C * F);
  for (int i = 0; i < 3; i++) o_rowa[i] = srl_layout_add(&total, C * A * F);
  for (int i = 0; i < 2; i++) o_tan[i] = srl_layout_add(&total, C * (size_t)w->max_width * F);
  char *d = w->ops->alloc(total);
  if (!d) {
    srl_free(w);
    return srl_error_context(SRL_ENOMEM, "cpo scratch for %d rows on %s: ", max_rows,
                             ac->ops->name);
  }
  w->dev = d;
  float **vec[8] = {&w->theta_old, &w->g, &w->b, &w->x, &w->p, &w->dir, &w->fv, &w->tmp};
  for (int i = 0; i < 8; i++) *vec[i] = (float *)(d + o_vec[i]);
  w->cg_work = (float *)(d + o_cg);
  w->mean_old = (float *)(d + o_mo);
  w->adv = (float *)(d + o_adv);
  w->fvp_obs = (float *)(d + o_fo);
  w->logp = (float *)(d + o_row[0]);
  w->dlogp = (float *)(d + o_row[1]);
  w->ones = (float *)(d + o_row[2]);
  w->kconst = (float *)(d + o_row[3]);
  w->dmean = (float *)(d + o_rowa[0]);
  w->zeros = (float *)(d + o_rowa[1]);
  w->diff = (float *)(d + o_rowa[2]);
  w->tan[0] = (float *)(d + o_tan[0]);
  w->tan[1] = (float *)(d + o_tan[1]);
  w->ops->fill(w->ones, 1.0f, C);
  w->ops->fill(w->zeros, 0.0f, C * A);

  if (!(w->host = srl_calloc(2 * A * F))) {
    srl_cpo_destroy(w);
    return SRL_ENOMEM;
  }
  w->log_std_old = w->host;
  w->log_std_cur = w->log_std_old + A;
  *out = w;
  return SRL_OK;
}


void srl_cpo_destroy(srl_cpo *w) {
  if (!w) return;
  if (w->dev) w->ops->free(w->dev);
  srl_free(w->host);
  srl_free(w);
}


size_t srl_cpo_n_params(const srl_cpo *w) {
  return w ? w->np : 0;
}


// the actor's forward on `rows` rows of `in`, skipped when it is the last one this module made
// at the current parameters
static int forward(srl_cpo *w, const float *in, int rows) {
  if (w->fwd_in == in && w->fwd_rows == rows) return SRL_OK;
  w->fwd_in = NULL;
  SRL_TRY(srl_mlp_forward(w->ac->actor, in, rows));
  w->fwd_in = in;
  w->fwd_rows = rows;
  return SRL_OK;
}


// set the actor's parameters to θ_old + frac·dir (frac = 0: θ_old)
static int set_params(srl_cpo *w, float frac, const float *dir) {
  srl_mlp *actor = w->ac->actor;
  w->fwd_in = NULL;
  SRL_TRY(w->ops->copy(actor->params, w->theta_old, w->np * sizeof(float)));
  if (frac != 0.0f) w->ops->axpby(actor->params, frac, dir, 1.0f, w->np);
  return SRL_OK;
}


int srl_cpo_begin(srl_cpo *w, const srl_cpo_batch *b, const srl_cpo_config *cfg) {
  if (!w || !b || !cfg) return srl_error(SRL_EINVAL, "srl_cpo_begin: arguments needed");
  w->begun = 0;
  SRL_TRY(check_config(cfg));
  if (!b->obs || !b->act || !b->logp_old || !b->adv_r)
    return srl_error(SRL_EINVAL, "cpo: the batch needs obs, act, logp_old and adv_r");
  if (b->n < 1 || b->n > w->max_rows)
    return srl_error(SRL_ERANGE, "cpo: batch of %d rows outside [1, %d]", b->n, w->max_rows);
  const srl_ops *o = w->ops;
  srl_mlp *actor = w->ac->actor;
  size_t A = (size_t)w->act_dim, O = (size_t)w->obs_dim;
  w->batch = *b;
  w->cfg = *cfg;
  w->fwd_in = NULL;
  SRL_TRY(o->copy(w->theta_old, actor->params, w->np * sizeof(float)));

  // the old policy: means over the batch and the shared log_std
  for (int s = 0; s < b->n; s += w->chunk) {
    int m = b->n - s < w->chunk ? b->n - s : w->chunk;
    SRL_TRY(forward(w, b->obs + (size_t)s * O, m));
    SRL_TRY(o->copy(w->mean_old + (size_t)s * A, actor->out, (size_t)m * A * sizeof(float)));
  }
  SRL_TRY(o->download(w->log_std_old, actor->extra, A * sizeof(float)));

  // the Fisher's states: obs[::k]
  int k = cfg->fvp_sample_freq;
  if (k == 1) {
    w->fobs = b->obs;
    w->n_fvp = b->n;
  } else {
    w->n_fvp = (b->n + k - 1) / k;
    for (int i = 0; i < w->n_fvp; i++)
      SRL_TRY(o->copy(w->fvp_obs + (size_t)i * O, b->obs + (size_t)i * k * O, O * sizeof(float)));
    w->fobs = w->fvp_obs;
  }
  w->begun = 1;
  return SRL_OK;
}


static int need_begun(const srl_cpo *w, const char *what) {
  if (!w) return srl_error(SRL_EINVAL, "%s: no workspace", what);
  if (!w->begun) return srl_error(SRL_ESTATE, "%s: call srl_cpo_begin first", what);
  return SRL_OK;
}


//---- surrogate, Fisher and evaluation -----------------------------------------------------------

int srl_cpo_surrogate(srl_cpo *w, float *grad, float *value, const float *adv) {
  SRL_TRY(need_begun(w, "cpo surrogate"));
  if (!grad || !adv) return srl_error(SRL_EINVAL, "cpo surrogate: grad and adv needed");
  const srl_ops *o = w->ops;
  srl_mlp *actor = w->ac->actor;
  const srl_cpo_batch *b = &w->batch;
  int n = b->n, A = w->act_dim;
  size_t O = (size_t)w->obs_dim;
  srl_mlp_zero_grad(actor);
  double sum = 0.0;
  for (int s = 0; s < n; s += w->chunk) {
    int m = n - s < w->chunk ? n - s : w->chunk;
    const float *act = b->act + (size_t)s * A;
    SRL_TRY(forward(w, b->obs + (size_t)s * O, m));
    o->gauss_logprob(w->logp, act, actor->out, actor->extra, m, A, 0);
    // an infinite clip leaves −mean(ρ·adv) and dlogp = −ρ·adv/m; rescale to +ρ·adv/n
    float loss = o->ppo_clip_loss(w->dlogp, w->logp, b->logp_old + s, adv + s, m, INFINITY);
    sum -= (double)loss * m;
    o->scale(w->dlogp, -(float)m / (float)n, (size_t)m);
    o->gauss_logprob_backward(w->dmean, actor->dextra, w->dlogp, act, actor->out, actor->extra, m,
                              A, 0);
    SRL_TRY(srl_mlp_backward(actor, NULL, w->dmean));
  }
  if (value) *value = (float)(sum / n);
  return o->copy(grad, actor->grads, w->np * sizeof(float));
}


// J·v: the mean head's directional derivative along v by a forward-mode pass through the last
// forward (ż = x·Ẇᵀ + ẋ·Wᵀ + ḃ, ȧ = f'(z)·ż); the result (rows, act_dim) is one of w->tan
static const float *jvp(srl_cpo *w, const float *v, int rows) {
  const srl_ops *o = w->ops;
  const srl_mlp *net = w->ac->actor;
  const float *t = NULL;
  float *out = NULL;
  for (int i = 0; i < net->n_linear; i++) {
    const srl_linear *l = &net->lin[i];
    const srl_mlp_stage *s = &net->stage[i];
    const float *dw = v + (l->w - net->params), *db = v + (l->b - net->params);
    out = w->tan[i & 1];
    o->matmul(out, s->x, dw, rows, l->out, l->in, 0, 1, 1.0f, 0.0f);
    if (t) o->matmul(out, t, l->w, rows, l->out, l->in, 0, 1, 1.0f, 1.0f);
    o->bias_add(out, db, rows, l->out);
    size_t n = (size_t)rows * l->out;
    if (i + 1 < net->n_linear) {
      if (s->act) o->act_backward(out, out, s->z, n, net->cfg.hidden_act);
    } else if (net->cfg.out_act != SRL_ACT_IDENTITY) {
      o->act_backward(out, out, s->z, n, net->cfg.out_act);
    }
    t = out;
  }
  return out;
}


int srl_cpo_fvp(srl_cpo *w, float *out, const float *v) {
  SRL_TRY(need_begun(w, "cpo Fisher-vector product"));
  if (!out || !v || out == v)
    return srl_error(SRL_EINVAL, "cpo Fisher-vector product: distinct out and v needed");
  const srl_ops *o = w->ops;
  srl_mlp *actor = w->ac->actor;
  int n = w->n_fvp, A = w->act_dim;
  size_t O = (size_t)w->obs_dim;
  srl_mlp_zero_grad(actor);
  // mean head: Jᵀ(J·v/σ²)/(n·A), the Hessian of the element-mean KL at p = q
  o->fill(w->kconst, 1.0f / ((float)n * (float)A), (size_t)w->chunk);
  for (int s = 0; s < n; s += w->chunk) {
    int m = n - s < w->chunk ? n - s : w->chunk;
    SRL_TRY(forward(w, w->fobs + (size_t)s * O, m));
    const float *jv = jvp(w, v, m);
    o->gauss_logprob_backward(w->dmean, NULL, w->kconst, jv, w->zeros, actor->extra, m, A, 0);
    SRL_TRY(srl_mlp_backward(actor, NULL, w->dmean));
  }
  // log_std: ∂²KL/∂(log σ)² = 2 per element, averaged over A dims; then the damping
  const float *v_ls = v + (actor->extra - actor->params);
  o->axpby(actor->dextra, 2.0f / (float)A, v_ls, 1.0f, (size_t)A);
  SRL_TRY(o->copy(out, actor->grads, w->np * sizeof(float)));
  o->axpby(out, w->cfg.cg_damping, v, 1.0f, w->np);
  return SRL_OK;
}


// losses and KL at the current parameters (double sums; NULL adv skips its loss)
static int evaluate(srl_cpo *w, const float *adv_r, const float *adv_c, double *lr, double *lc,
                    double *kl) {
  const srl_ops *o = w->ops;
  srl_mlp *actor = w->ac->actor;
  const srl_cpo_batch *b = &w->batch;
  int n = b->n, A = w->act_dim;
  size_t O = (size_t)w->obs_dim;
  // KL of the shared log_std per dim: Δ + ½(e^{−2Δ} − 1), Δ = log σ_new − log σ_old
  SRL_TRY(o->download(w->log_std_cur, actor->extra, (size_t)A * sizeof(float)));
  double kl_std = 0.0;
  for (int j = 0; j < A; j++) {
    double dl = (double)w->log_std_cur[j] - w->log_std_old[j];
    kl_std += dl + 0.5 * expm1(-2.0 * dl);
  }
  // always forward: the caller may have moved the parameters since the last pass
  w->fwd_in = NULL;
  double sr = 0, sc = 0, quad = 0;
  for (int s = 0; s < n; s += w->chunk) {
    int m = n - s < w->chunk ? n - s : w->chunk;
    size_t mA = (size_t)m * A;
    const float *mo = w->mean_old + (size_t)s * A;
    SRL_TRY(forward(w, b->obs + (size_t)s * O, m));
    if (adv_r || adv_c)
      o->gauss_logprob(w->logp, b->act + (size_t)s * A, actor->out, actor->extra, m, A, 0);
    if (adv_r)
      sr +=
          (double)m * o->ppo_clip_loss(w->dlogp, w->logp, b->logp_old + s, adv_r + s, m, INFINITY);
    if (adv_c)
      sc -=
          (double)m * o->ppo_clip_loss(w->dlogp, w->logp, b->logp_old + s, adv_c + s, m, INFINITY);
    // Σ (μ_old − μ)²/σ²: (μ_old − μ)/σ² from the log-prob gradient, times (μ_old − μ)
    SRL_TRY(o->copy(w->diff, mo, mA * sizeof(float)));
    o->axpby(w->diff, -1.0f, actor->out, 1.0f, mA);
    o->gauss_logprob_backward(w->dmean, NULL, w->ones, mo, actor->out, actor->extra, m, A, 0);
    o->mul(w->dmean, w->dmean, w->diff, mA);
    quad += o->sum(w->dmean, mA);
  }
  if (lr) *lr = sr / n;
  if (lc) *lc = sc / n;
  if (kl) *kl = (0.5 * quad / n + kl_std) / A;
  return SRL_OK;
}


int srl_cpo_eval(srl_cpo *w, float *loss_r, float *loss_c, float *kl, const float *adv_r,
                 const float *adv_c) {
  SRL_TRY(need_begun(w, "cpo eval"));
  double lr, lc, k;
  SRL_TRY(evaluate(w, loss_r ? adv_r : NULL, loss_c ? adv_c : NULL, &lr, &lc, &k));
  if (loss_r) *loss_r = adv_r ? (float)lr : NAN;
  if (loss_c) *loss_c = adv_c ? (float)lc : NAN;
  if (kl) *kl = (float)k;
  return SRL_OK;
}


//---- line search --------------------------------------------------------------------------------

int srl_cpo_line_search(srl_cpo *w, srl_cpo_stats *st, const float *dir, const float *adv_r,
                        const float *adv_c, int optim_case, double c, float loss_r_before,
                        float loss_c_before) {
  SRL_TRY(need_begun(w, "cpo line search"));
  if (!st || !dir || !adv_r) return srl_error(SRL_EINVAL, "cpo line search: arguments needed");
  const srl_ops *o = w->ops;
  double delta = w->cfg.target_kl, frac = 1.0, dir_norm = sqrt(o->sumsq(dir, w->np));
  double lr = loss_r_before, lc = adv_c ? loss_c_before : 0.0, kl = 0.0;
  int accepted = 0;
  // a direction that is not finite has no acceptable fraction
  for (int k = 0; isfinite(dir_norm) && k < w->cfg.ls_steps; k++) {
    int rc = set_params(w, (float)frac, dir);
    if (rc == 0) rc = evaluate(w, adv_r, adv_c, &lr, adv_c ? &lc : NULL, &kl);
    if (rc < 0) {
      set_params(w, 0.0f, dir);
      return rc;
    }
    double improve = (double)loss_r_before - lr;
    int ok = adv_c ? srl_cpo_accept(optim_case, improve, lc - loss_c_before, kl, c, delta)
                   : srl_trpo_accept(improve, kl, delta);
    if (ok) {
      accepted = k + 1;
      break;
    }
    frac *= w->cfg.ls_decay;
  }
  if (!accepted) {
    SRL_TRY(set_params(w, 0.0f, dir));
    frac = 0.0;
    lr = loss_r_before;
    lc = adv_c ? loss_c_before : 0.0;
    kl = 0.0;
  }
  st->accept_step = accepted;
  st->step_frac = (float)frac;
  st->loss_r = (float)lr;
  st->loss_c = adv_c ? (float)lc : 0.0f;
  st->loss_pi = adv_c ? (float)(lr + lc) : (float)lr;
  st->kl = (float)kl;
  st->step_norm = accepted ? (float)(frac * dir_norm) : 0.0f;
  return SRL_OK;
}


//---- the updates --------------------------------------------------------------------------------

static int fvp_matvec(void *ctx, float *out, const float *v) {
  return srl_cpo_fvp(ctx, out, v);
}


static int nonfinite(const char *algo, const char *what, double v) {
  return srl_error(SRL_ENONFINITE, "%s actor update: %s is %g; actor left unchanged", algo, what,
                   v);
}


// x = H⁻¹g, xᵀHx and α = √(2δ/(xᵀHx + 1e-8)), refusing non-finite values
static int natural_gradient(srl_cpo *w, srl_cpo_stats *st, const char *algo) {
  const srl_ops *o = w->ops;
  SRL_TRY(srl_cg_solve(o, w->x, w->g, w->np, w->cfg.cg_iters, fvp_matvec, w, w->cg_work,
                       &st->cg_iters_x));
  double xx = o->sumsq(w->x, w->np);
  if (!isfinite(xx)) return nonfinite(algo, "x = H^-1 g", xx);
  SRL_TRY(srl_cpo_fvp(w, w->fv, w->x));
  double xhx = dot(o, w->tmp, w->x, w->fv, w->np);
  if (!isfinite(xhx)) return nonfinite(algo, "x^T H x", xhx);
  if (xhx < 0) xhx = 0;  // rounding only: H is positive semi-definite
  st->xHx = (float)xhx;
  st->alpha = (float)sqrt(2.0 * w->cfg.target_kl / (xhx + SMALL));
  st->x_norm = (float)sqrt(xx);
  return SRL_OK;
}


int srl_cpo_update_actor(srl_cpo *w, const srl_cpo_batch *b, const srl_cpo_config *cfg,
                         srl_cpo_stats *out) {
  if (!w || !b || !cfg) return srl_error(SRL_EINVAL, "srl_cpo_update_actor: arguments needed");
  if (!b->adv_c) return srl_error(SRL_EINVAL, "cpo: the batch needs adv_c");
  SRL_TRY(srl_cpo_begin(w, b, cfg));
  const srl_ops *o = w->ops;
  srl_cpo_stats st;
  memset(&st, 0, sizeof st);

  // g and b, the gradients of the reward and cost surrogates at θ_old
  float vr, vc;
  SRL_TRY(srl_cpo_surrogate(w, w->g, &vr, b->adv_r));
  SRL_TRY(srl_cpo_surrogate(w, w->b, &vc, b->adv_c));
  double gg = o->sumsq(w->g, w->np), bb = o->sumsq(w->b, w->np);
  if (!isfinite(vr)) return nonfinite("cpo", "the reward surrogate", vr);
  if (!isfinite(vc)) return nonfinite("cpo", "the cost surrogate", vc);
  if (!isfinite(gg)) return nonfinite("cpo", "the reward-surrogate gradient norm", sqrt(gg));
  if (!isfinite(bb)) return nonfinite("cpo", "the cost-surrogate gradient norm", sqrt(bb));
  st.loss_r_before = -vr;
  st.loss_c_before = vc;
  st.grad_norm = (float)sqrt(gg);
  st.cost_grad_norm = (float)sqrt(bb);

  // x = H⁻¹g, p = H⁻¹b and the quadratic model
  SRL_TRY(natural_gradient(w, &st, "cpo"));
  SRL_TRY(
      srl_cg_solve(o, w->p, w->b, w->np, cfg->cg_iters, fvp_matvec, w, w->cg_work, &st.cg_iters_p));
  double pp = o->sumsq(w->p, w->np);
  if (!isfinite(pp)) return nonfinite("cpo", "p = H^-1 b", pp);
  srl_cpo_quad in = {.q = st.xHx, .bb = bb, .target_kl = cfg->target_kl};
  in.r = dot(o, w->tmp, w->g, w->p, w->np);
  in.s = dot(o, w->tmp, w->b, w->p, w->np);
  if (!isfinite(in.r)) return nonfinite("cpo", "r = g^T H^-1 b", in.r);
  if (!isfinite(in.s)) return nonfinite("cpo", "s = b^T H^-1 b", in.s);
  in.c = isfinite(b->ep_cost) ? (double)b->ep_cost - cfg->cost_limit : -INFINITY;

  // the case, its step, and the line search
  srl_cpo_solution sol;
  srl_cpo_solve(&sol, &in);
  SRL_TRY(o->copy(w->dir, w->x, w->np * sizeof(float)));
  o->scale(w->dir, (float)sol.coef_x, w->np);
  if (sol.coef_p != 0) o->axpby(w->dir, (float)sol.coef_p, w->p, 1.0f, w->np);
  SRL_TRY(srl_cpo_line_search(w, &st, w->dir, b->adv_r, b->adv_c, sol.optim_case, in.c,
                              st.loss_r_before, st.loss_c_before));
  st.optim_case = sol.optim_case;
  st.c = (float)in.c;
  st.q = (float)in.q;
  st.r = (float)in.r;
  st.s = (float)in.s;
  st.A = (float)sol.A;
  st.B = (float)sol.B;
  st.lambda = (float)sol.lambda;
  st.nu = (float)sol.nu;
  w->begun = 0;
  if (out) *out = st;
  return SRL_OK;
}


int srl_trpo_lag_update_actor(srl_cpo *w, const srl_cpo_batch *b, const srl_cpo_config *cfg,
                              srl_cpo_stats *out) {
  if (!w || !b || !cfg) return srl_error(SRL_EINVAL, "srl_trpo_lag_update_actor: arguments needed");
  float lam = b->lagrange;
  if (!isfinite(lam) || lam < 0)
    return srl_error(isfinite(lam) ? SRL_EINVAL : SRL_ENONFINITE,
                     "trpo-lag actor update: lambda is %g (need finite, ≥ 0)", lam);
  if (lam != 0 && !b->adv_c)
    return srl_error(SRL_EINVAL, "trpo-lag: lambda %g needs adv_c in the batch", lam);
  SRL_TRY(srl_cpo_begin(w, b, cfg));
  const srl_ops *o = w->ops;
  srl_cpo_stats st;
  memset(&st, 0, sizeof st);
  st.optim_case = -1;

  // the surrogate advantage (A_r − λ·A_c)/(1 + λ)
  const float *adv = b->adv_r;
  if (b->adv_c) {
    SRL_TRY(o->copy(w->adv, b->adv_r, (size_t)b->n * sizeof(float)));
    o->axpby(w->adv, -lam, b->adv_c, 1.0f, (size_t)b->n);
    o->scale(w->adv, 1.0f / (1.0f + lam), (size_t)b->n);
    adv = w->adv;
  }

  // natural gradient step scaled to the trust region, then the KL line search
  float v;
  SRL_TRY(srl_cpo_surrogate(w, w->g, &v, adv));
  double gg = o->sumsq(w->g, w->np);
  if (!isfinite(v)) return nonfinite("trpo-lag", "the surrogate", v);
  if (!isfinite(gg)) return nonfinite("trpo-lag", "the surrogate gradient norm", sqrt(gg));
  st.loss_r_before = -v;
  st.grad_norm = (float)sqrt(gg);
  SRL_TRY(natural_gradient(w, &st, "trpo-lag"));
  st.q = st.xHx;
  SRL_TRY(o->copy(w->dir, w->x, w->np * sizeof(float)));
  o->scale(w->dir, st.alpha, w->np);
  SRL_TRY(srl_cpo_line_search(w, &st, w->dir, adv, NULL, -1, 0.0, st.loss_r_before, 0.0f));
  w->begun = 0;
  if (out) *out = st;
  return SRL_OK;
}


//---- the trainer's table entries ----------------------------------------------------------------

typedef struct cpo_run {
  int is_cpo;
  srl_cpo_config cfg;
  int update_iters, batch_size, use_cost, capacity;
  int on_host;  // CPU table: the rollout's host arrays are used in place
  srl_cpo *w;
  const srl_ops *ops;
  // host: row order and the critic minibatch staging (device tables only)
  int *idx;     // (capacity)
  float *mb_h;  // (batch, obs_dim + 2)
  void *host;
  // device: the epoch (obs, act, logp, adv_r, adv_c) and the critic minibatch (device tables)
  float *ep_obs, *ep_act, *ep_logp, *ep_adv_r, *ep_adv_c;
  float *mb_d;  // (batch, obs_dim + 2); on the CPU table the staging itself
  void *dev;
} cpo_run;


static void run_destroy(void *state) {
  cpo_run *r = state;
  if (!r) return;
  srl_cpo_destroy(r->w);
  if (r->dev) r->ops->free(r->dev);
  srl_free(r->host);
  srl_free(r);
}


static int run_create(void **state, const srl_onpolicy_config *cfg, srl_actor_critic *ac,
                      int capacity, int is_cpo) {
  *state = NULL;
  const int bs = cfg->algo_cfgs.batch_size;
  if (bs < 1 || bs > ac->cfg.max_batch || cfg->algo_cfgs.update_iters < 1)
    return srl_error(SRL_EINVAL,
                     "%s: batch_size %d (networks' largest batch %d) and "
                     "update_iters %d",
                     is_cpo ? "cpo" : "trpo-lag", bs, ac->cfg.max_batch,
                     cfg->algo_cfgs.update_iters);
  cpo_run *r = srl_calloc(sizeof *r);
  if (!r) return SRL_ENOMEM;
  r->is_cpo = is_cpo;
  r->cfg = is_cpo ? srl_cpo_config_default() : srl_trpo_lag_config_default();
  r->cfg.target_kl = (float)cfg->algo_cfgs.target_kl;
  r->cfg.cg_damping = (float)cfg->algo_cfgs.cg_damping;
  r->cfg.cg_iters = cfg->algo_cfgs.cg_iters;
  r->cfg.fvp_sample_freq = cfg->algo_cfgs.fvp_sample_freq;
  r->cfg.cost_limit = (float)cfg->lagrange_cfgs.cost_limit;
  r->update_iters = cfg->algo_cfgs.update_iters;
  r->batch_size = bs;
  r->use_cost = cfg->algo_cfgs.use_cost;
  r->capacity = capacity;
  r->ops = ac->ops;
  r->on_host = ac->ops->device == SRL_DEVICE_CPU;
  int rc = check_config(&r->cfg);
  if (rc == 0) rc = srl_cpo_create(&r->w, ac, capacity);
  if (rc < 0) {
    run_destroy(r);
    return rc;
  }

  size_t n = (size_t)capacity, O = (size_t)ac->cfg.obs_dim, A = (size_t)ac->cfg.act_dim;
  size_t mb = (size_t)bs * (O + 2) * sizeof(float), F = sizeof(float);
  size_t ht = 0;
  size_t o_idx = srl_layout_add(&ht, n * sizeof(int));
  size_t o_mbh = srl_layout_add(&ht, r->on_host ? 0 : mb);
  char *h = srl_calloc(ht);
  size_t dt = 0, o_ep[5];
  size_t ep_size[5] = {n * O * F, n * A * F, n * F, n * F, n * F};
  for (int i = 0; i < 5; i++) o_ep[i] = srl_layout_add(&dt, r->on_host ? 0 : ep_size[i]);
  size_t o_mbd = srl_layout_add(&dt, mb);
  char *d = h ? r->ops->alloc(dt) : NULL;
  r->host = h;
  r->dev = d;
  if (!h || !d) {
    run_destroy(r);
    return srl_error_context(SRL_ENOMEM, "cpo epoch scratch for %d rows: ", capacity);
  }
  r->idx = (int *)(h + o_idx);
  r->mb_h = r->on_host ? NULL : (float *)(h + o_mbh);
  float **ep[5] = {&r->ep_obs, &r->ep_act, &r->ep_logp, &r->ep_adv_r, &r->ep_adv_c};
  for (int i = 0; i < 5; i++) *ep[i] = r->on_host ? NULL : (float *)(d + o_ep[i]);
  r->mb_d = (float *)(d + o_mbd);
  *state = r;
  return SRL_OK;
}


static int cpo_hook_create(void **state, const srl_onpolicy_config *cfg, srl_actor_critic *ac,
                           int capacity) {
  return run_create(state, cfg, ac, capacity, 1);
}


static int trpo_hook_create(void **state, const srl_onpolicy_config *cfg, srl_actor_critic *ac,
                            int capacity) {
  return run_create(state, cfg, ac, capacity, 0);
}


// update_iters shuffled passes of critic steps (reward, then cost when use_cost)
static int fit_critics(cpo_run *r, srl_actor_critic *ac, const srl_onpolicy_batch *b,
                       double *loss_vr, double *loss_vc) {
  const srl_rollout *rb = b->rb;
  int n = rb->capacity, B = r->batch_size;
  size_t O = (size_t)rb->cfg.obs_dim;
  float *base = r->on_host ? r->mb_d : r->mb_h;
  float *obs = base, *tr = base + (size_t)B * O, *tc = tr + B;
  float *d_obs = r->mb_d, *d_tr = r->mb_d + (size_t)B * O, *d_tc = d_tr + B;
  double svr = 0, svc = 0;
  long long steps = 0;
  for (int it = 0; it < r->update_iters; it++) {
    for (int i = 0; i < n; i++) r->idx[i] = i;
    srl_rng_shuffle(b->rng, r->idx, (size_t)n);
    for (int s = 0; s < n; s += B) {
      int m = n - s < B ? n - s : B;
      float lvr = 0, lvc = 0;
      SRL_TRY(srl_rollout_gather(rb, obs, NULL, NULL, NULL, NULL, tr, tc, r->idx + s, m));
      if (!r->on_host)
        SRL_TRY(r->ops->upload(r->mb_d, r->mb_h, (size_t)B * (O + 2) * sizeof(float)));
      int rc = srl_ac_critic_step(ac, ac->critic_r, ac->opt_r, d_obs, d_tr, m, ac->cfg.critic_lr,
                                  &lvr, NULL);
      if (rc == 0 && r->use_cost)
        rc = srl_ac_critic_step(ac, ac->critic_c, ac->opt_c, d_obs, d_tc, m, ac->cfg.critic_lr,
                                &lvc, NULL);
      if (rc < 0)
        return srl_error_context(rc, "critic pass %d of %d, minibatch %d: ", it + 1,
                                 r->update_iters, s / B + 1);
      svr += lvr;
      svc += lvc;
      steps++;
    }
  }
  *loss_vr = svr / steps;
  *loss_vc = r->use_cost ? svc / steps : NAN;
  return SRL_OK;
}


static int hook_update(void *state, srl_actor_critic *ac, const srl_onpolicy_batch *b,
                       srl_onpolicy_stats *out) {
  cpo_run *r = state;
  const char *name = r->is_cpo ? "cpo" : "trpo-lag";
  if (!b || !b->rb || !out) return srl_error(SRL_EINVAL, "%s update: arguments needed", name);
  const srl_rollout *rb = b->rb;
  int n = rb->capacity, A = ac->cfg.act_dim;
  if (!rb->finished) return srl_error(SRL_ESTATE, "%s update: the rollout is not finished", name);
  if (n > r->capacity || rb->cfg.obs_dim != ac->cfg.obs_dim || rb->cfg.act_dim != A)
    return srl_error(SRL_EINVAL,
                     "%s update: rollout of %d rows (%d/%d dims) for scratch of %d "
                     "rows (%d/%d dims)",
                     name, n, rb->cfg.obs_dim, rb->cfg.act_dim, r->capacity, ac->cfg.obs_dim, A);
  memset(out, 0, sizeof *out);

  // the multiplier first (TRPO-Lag)
  float lambda = 0.0f;
  if (!r->is_cpo) SRL_TRY(srl_onpolicy_lagrange_step(b, &lambda));
  out->lambda = lambda;

  // the epoch on the device
  srl_cpo_batch cb = {.n = n, .ep_cost = (float)b->ep_cost, .lagrange = lambda};
  if (r->on_host) {
    cb.obs = rb->obs, cb.act = rb->act, cb.logp_old = rb->logp;
    cb.adv_r = rb->adv_r, cb.adv_c = rb->adv_c;
  } else {
    const srl_ops *o = r->ops;
    size_t O = (size_t)rb->cfg.obs_dim, F = sizeof(float), N = (size_t)n;
    SRL_TRY(o->upload(r->ep_obs, rb->obs, N * O * F));
    SRL_TRY(o->upload(r->ep_act, rb->act, N * (size_t)A * F));
    SRL_TRY(o->upload(r->ep_logp, rb->logp, N * F));
    SRL_TRY(o->upload(r->ep_adv_r, rb->adv_r, N * F));
    SRL_TRY(o->upload(r->ep_adv_c, rb->adv_c, N * F));
    cb.obs = r->ep_obs, cb.act = r->ep_act, cb.logp_old = r->ep_logp;
    cb.adv_r = r->ep_adv_r, cb.adv_c = r->ep_adv_c;
  }

  // the actor, then the critics
  srl_cpo_config cfg = r->cfg;
  cfg.cost_limit = (float)b->cost_limit;
  srl_cpo_stats st;
  int rc = r->is_cpo ? srl_cpo_update_actor(r->w, &cb, &cfg, &st)
                     : srl_trpo_lag_update_actor(r->w, &cb, &cfg, &st);
  if (rc < 0) return rc;
  double lvr = 0, lvc = 0;
  SRL_TRY(fit_critics(r, ac, b, &lvr, &lvc));

  // progress: KL summed over action dims (the trainer's convention), entropy of the new policy
  float *ls = r->w->log_std_cur;
  SRL_TRY(r->ops->download(ls, ac->actor->extra, (size_t)A * sizeof(float)));
  double ent = A * HALF_LOG_2PIE;
  for (int j = 0; j < A; j++) ent += ls[j];
  out->loss_pi = st.loss_pi;
  out->loss_vr = (float)lvr;
  out->loss_vc = (float)lvc;
  out->kl = st.kl * (float)A;
  out->entropy = (float)ent;
  out->iters = r->update_iters;
  return SRL_OK;
}


// OmniSafe's CPO.yaml: 10 critic passes of 128 rows, δ = 0.01, critic lr 1e-3, no KL early stop
#define SECOND_ORDER_DEFAULTS                                                              \
  "algo_cfgs: {update_iters: 10, batch_size: 128, target_kl: 0.01, kl_early_stop: false, " \
  "cg_iters: 15, cg_damping: 0.1, fvp_sample_freq: 1}\n"                                   \
  "model_cfgs: {critic: {lr: 0.001}}\n"

const srl_onpolicy_algo srl_onpolicy_cpo = {"CPO",           -1,          SECOND_ORDER_DEFAULTS,
                                            cpo_hook_create, hook_update, run_destroy};
const srl_onpolicy_algo srl_onpolicy_trpo_lag = {
    "TRPOLag",        SRL_LAGRANGE_ADAM, SECOND_ORDER_DEFAULTS,
    trpo_hook_create, hook_update,       run_destroy};

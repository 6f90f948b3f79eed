// sac_lag.c: the SAC-Lag agent: squashed Gaussian actor, twin reward critics, cost critic,
// targets, entropy temperature and the Lagrangian actor loss (OmniSafe's SAC / SACLag update).
#include "algos/sac_lag.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/dist.h"
#include "core/error.h"

#define HALF_LOG_2PI 0.91893853320467274178  // ½ log 2π


srl_sac_config srl_sac_config_default(int obs_dim, int act_dim, int max_batch) {
  srl_sac_config c;
  memset(&c, 0, sizeof c);
  c.obs_dim = obs_dim;
  c.act_dim = act_dim;
  c.n_actor_hidden = c.n_critic_hidden = 2;
  c.actor_hidden[0] = c.actor_hidden[1] = 256;
  c.critic_hidden[0] = c.critic_hidden[1] = 256;
  c.actor_act = c.critic_act = SRL_ACT_RELU;
  c.actor_lr = c.critic_lr = 3e-4f;
  c.gamma = 0.99f;
  c.polyak = 0.005f;
  c.alpha = 0.2f;
  c.auto_alpha = 0;
  c.alpha_lr = c.critic_lr;
  c.target_entropy = -(float)act_dim;
  c.max_grad_norm = 40.0f;
  c.critic_norm_coef = 0.0f;
  c.policy_delay = 2;
  c.use_cost = 1;
  c.max_batch = max_batch;
  return c;
}


//---- creation ---------------------------------------------------------------------------------

// a plain MLP config: in → hidden... → out with identity output
static int mlp_config(srl_mlp_config *m, int in, int n_hidden, const int *hidden, int out,
                      srl_act act) {
  if (n_hidden < 0 || n_hidden > 8)
    return srl_error(SRL_EINVAL, "sac: %d hidden layers (at most 8)", n_hidden);
  int sizes[10];
  sizes[0] = in;
  for (int i = 0; i < n_hidden; i++) sizes[i + 1] = hidden[i];
  sizes[n_hidden + 1] = out;
  *m = srl_mlp_config_plain(n_hidden + 2, sizes, act, SRL_ACT_IDENTITY);
  return SRL_OK;
}


static int check_config(const srl_sac_config *c) {
  if (c->obs_dim < 1 || c->act_dim < 1 || c->max_batch < 1)
    return srl_error(SRL_EINVAL, "sac: obs_dim %d, act_dim %d, max_batch %d must be ≥ 1",
                     c->obs_dim, c->act_dim, c->max_batch);
  if (!(c->gamma >= 0.0f && c->gamma <= 1.0f))
    return srl_error(SRL_EINVAL, "sac: gamma %g outside [0, 1]", c->gamma);
  if (!(c->polyak >= 0.0f && c->polyak <= 1.0f))
    return srl_error(SRL_EINVAL, "sac: polyak %g outside [0, 1]", c->polyak);
  if (!(c->alpha > 0.0f) || !isfinite(c->alpha))
    return srl_error(SRL_EINVAL, "sac: alpha %g must be finite and > 0", c->alpha);
  if (c->policy_delay < 1)
    return srl_error(SRL_EINVAL, "sac: policy_delay %d must be ≥ 1", c->policy_delay);
  if (!isfinite(c->actor_lr) || !isfinite(c->critic_lr) || !isfinite(c->alpha_lr) ||
      c->actor_lr < 0 || c->critic_lr < 0 || c->alpha_lr < 0)
    return srl_error(SRL_EINVAL, "sac: learning rates must be finite and ≥ 0");
  return SRL_OK;
}


int srl_sac_create(srl_sac **out, const srl_ops *ops, const srl_sac_config *cfg, srl_rng *rng,
                   uint64_t seed) {
  *out = NULL;
  SRL_TRY(check_config(cfg));
  srl_sac *s = srl_calloc(sizeof *s);
  if (!s) return SRL_ENOMEM;
  s->ops = ops;
  s->cfg = *cfg;
  s->log_alpha = logf(cfg->alpha);
  int O = cfg->obs_dim, A = cfg->act_dim, I = O + A, B = cfg->max_batch;
  srl_rng *trng = NULL;
  srl_mlp_config ma, mq;
  int rc = mlp_config(&ma, O, cfg->n_actor_hidden, cfg->actor_hidden, 2 * A, cfg->actor_act);
  if (rc == 0)
    rc = mlp_config(&mq, I, cfg->n_critic_hidden, cfg->critic_hidden, 1, cfg->critic_act);
  if (rc < 0) goto fail;

  // the trained networks draw from rng in OmniSafe's order; the targets start as their copies
  if ((rc = srl_mlp_create(&s->actor, ops, &ma, B, rng)) < 0) goto fail;
  if ((rc = srl_mlp_create(&s->q1, ops, &mq, B, rng)) < 0) goto fail;
  if ((rc = srl_mlp_create(&s->q2, ops, &mq, B, rng)) < 0) goto fail;
  if ((rc = srl_mlp_create(&s->qc, ops, &mq, B, rng)) < 0) goto fail;
  if ((rc = srl_rng_create(&trng, 0, 0)) < 0) goto fail;
  if ((rc = srl_mlp_create(&s->q1_targ, ops, &mq, B, trng)) < 0) goto fail;
  if ((rc = srl_mlp_create(&s->q2_targ, ops, &mq, B, trng)) < 0) goto fail;
  if ((rc = srl_mlp_create(&s->qc_targ, ops, &mq, B, trng)) < 0) goto fail;
  if ((rc = srl_mlp_copy_params(s->q1_targ, s->q1)) < 0) goto fail;
  if ((rc = srl_mlp_copy_params(s->q2_targ, s->q2)) < 0) goto fail;
  if ((rc = srl_mlp_copy_params(s->qc_targ, s->qc)) < 0) goto fail;
  if ((rc = srl_rng_create(&s->rng, seed, 0)) < 0) goto fail;

  srl_optim_config oa = srl_optim_config_default(SRL_OPTIM_ADAM, cfg->actor_lr);
  srl_optim_config oc = srl_optim_config_default(SRL_OPTIM_ADAM, cfg->critic_lr);
  if ((rc = srl_optim_create(&s->opt_actor, ops, s->actor->n_params, &oa)) < 0) goto fail;
  if ((rc = srl_optim_create(&s->opt_q1, ops, s->q1->n_params, &oc)) < 0) goto fail;
  if ((rc = srl_optim_create(&s->opt_q2, ops, s->q2->n_params, &oc)) < 0) goto fail;
  if ((rc = srl_optim_create(&s->opt_qc, ops, s->qc->n_params, &oc)) < 0) goto fail;

  // device scratch in one block
  size_t total = 0, f = sizeof(float), b = (size_t)B;
  size_t o_obs = srl_layout_add(&total, b * O * f), o_nobs = srl_layout_add(&total, b * O * f);
  size_t o_x = srl_layout_add(&total, b * I * f), o_xn = srl_layout_add(&total, b * I * f);
  size_t o_xp = srl_layout_add(&total, b * I * f), o_din = srl_layout_add(&total, b * I * f);
  size_t o_y = srl_layout_add(&total, b * f), o_dq = srl_layout_add(&total, b * f);
  size_t o_dpi = srl_layout_add(&total, b * 2 * A * f);
  if (!(s->dev = ops->alloc(total))) {
    rc = SRL_ENOMEM;
    goto fail;
  }
  char *d = s->dev;
  s->d_obs = (float *)(d + o_obs), s->d_next_obs = (float *)(d + o_nobs);
  s->d_x = (float *)(d + o_x), s->d_xn = (float *)(d + o_xn), s->d_xp = (float *)(d + o_xp);
  s->d_din = (float *)(d + o_din);
  s->d_y = (float *)(d + o_y), s->d_dq = (float *)(d + o_dq), s->d_dpi = (float *)(d + o_dpi);

  // host scratch in one block
  total = 0;
  size_t h_x = srl_layout_add(&total, b * I * f), h_head = srl_layout_add(&total, b * 2 * A * f);
  size_t h_eps = srl_layout_add(&total, b * A * f), h_u = srl_layout_add(&total, b * A * f);
  size_t h_a = srl_layout_add(&total, b * A * f), h_logp = srl_layout_add(&total, b * f);
  size_t h_q1 = srl_layout_add(&total, b * f), h_q2 = srl_layout_add(&total, b * f);
  size_t h_qc = srl_layout_add(&total, b * f), h_y = srl_layout_add(&total, b * f);
  size_t h_yc = srl_layout_add(&total, b * f), h_dq = srl_layout_add(&total, b * f);
  size_t h_din = srl_layout_add(&total, b * I * f), h_da = srl_layout_add(&total, b * A * f);
  size_t h_dpi = srl_layout_add(&total, b * 2 * A * f);
  if (!(s->host = srl_calloc(total))) {
    rc = SRL_ENOMEM;
    goto fail;
  }
  char *h = s->host;
  s->h_x = (float *)(h + h_x), s->h_head = (float *)(h + h_head);
  s->h_eps = (float *)(h + h_eps), s->h_u = (float *)(h + h_u), s->h_a = (float *)(h + h_a);
  s->h_logp = (float *)(h + h_logp);
  s->h_q1 = (float *)(h + h_q1), s->h_q2 = (float *)(h + h_q2), s->h_qc = (float *)(h + h_qc);
  s->h_y = (float *)(h + h_y), s->h_yc = (float *)(h + h_yc), s->h_dq = (float *)(h + h_dq);
  s->h_din = (float *)(h + h_din), s->h_da = (float *)(h + h_da);
  s->h_dpi = (float *)(h + h_dpi);
  srl_rng_destroy(trng);
  *out = s;
  return SRL_OK;

fail:
  srl_rng_destroy(trng);
  srl_sac_destroy(s);
  return rc;
}


void srl_sac_destroy(srl_sac *s) {
  if (!s) return;
  srl_mlp_destroy(s->actor);
  srl_mlp_destroy(s->q1);
  srl_mlp_destroy(s->q2);
  srl_mlp_destroy(s->qc);
  srl_mlp_destroy(s->q1_targ);
  srl_mlp_destroy(s->q2_targ);
  srl_mlp_destroy(s->qc_targ);
  srl_optim_destroy(s->opt_actor);
  srl_optim_destroy(s->opt_q1);
  srl_optim_destroy(s->opt_q2);
  srl_optim_destroy(s->opt_qc);
  srl_rng_destroy(s->rng);
  if (s->dev) s->ops->free(s->dev);
  srl_free(s->host);
  srl_free(s);
}


float srl_sac_alpha(const srl_sac *s) {
  return expf(s->log_alpha);
}


//---- the policy head (host) -------------------------------------------------------------------

static inline float clamp_log_std(float x) {
  return x < SRL_SAC_LOG_STD_MIN ? SRL_SAC_LOG_STD_MIN
                                 : (x > SRL_SAC_LOG_STD_MAX ? SRL_SAC_LOG_STD_MAX : x);
}


// From the actor output head (n×2A: μ | raw log_std) and noise eps (n×A; NULL: ε = 0, the
// deterministic action): u = μ + σε, a = tanh(u), logp = Σ log N(u; μ, σ) − Σ log(1 − tanh²u)
static void head_sample(srl_sac *s, float *u, float *a, float *logp, const float *head,
                        const float *eps, int n) {
  int A = s->cfg.act_dim;
  for (int r = 0; r < n; r++) {
    const float *mu = head + (size_t)r * 2 * A, *ls = mu + A;
    double lp = 0;
    for (int j = 0; j < A; j++) {
      float l = clamp_log_std(ls[j]);
      float e = eps ? eps[(size_t)r * A + j] : 0.0f;
      u[(size_t)r * A + j] = mu[j] + expf(l) * e;
      lp += -0.5 * (double)e * e - l - HALF_LOG_2PI;
    }
    logp[r] = (float)lp;
  }
  srl_dist_tanh_squash(a, logp, u, n, A);
}


// rows of x (n×(O+A)) = [obs | act]
static void concat_rows(float *x, const float *obs, const float *act, int n, int O, int A) {
  for (int r = 0; r < n; r++) {
    memcpy(x + (size_t)r * (O + A), obs + (size_t)r * O, (size_t)O * sizeof(float));
    memcpy(x + (size_t)r * (O + A) + O, act + (size_t)r * A, (size_t)A * sizeof(float));
  }
}


// actor forward on obs already on the device; the head comes back into h_head
static int actor_head(srl_sac *s, const float *d_obs, int n) {
  SRL_TRY(srl_mlp_forward(s->actor, d_obs, n));
  return s->ops->download(s->h_head, s->actor->out, (size_t)n * 2 * s->cfg.act_dim * sizeof(float));
}


// a network's forward on device input, its n outputs downloaded into host q
static int q_forward(srl_sac *s, srl_mlp *q, float *host_q, const float *d_in, int n) {
  SRL_TRY(srl_mlp_forward(q, d_in, n));
  return s->ops->download(host_q, q->out, (size_t)n * sizeof(float));
}


static int check_n(const srl_sac *s, int n, const char *what) {
  if (n < 1 || n > s->cfg.max_batch)
    return srl_error(SRL_EINVAL, "sac %s: batch of %d rows (capacity %d)", what, n,
                     s->cfg.max_batch);
  return SRL_OK;
}


int srl_sac_act(srl_sac *s, float *action, float *logp, const float *obs, int n,
                int deterministic) {
  SRL_TRY(check_n(s, n, "act"));
  int O = s->cfg.obs_dim, A = s->cfg.act_dim;
  SRL_TRY(s->ops->upload(s->d_obs, obs, (size_t)n * O * sizeof(float)));
  SRL_TRY(actor_head(s, s->d_obs, n));
  if (!deterministic) srl_rng_fill_normal(s->rng, s->h_eps, (size_t)n * A, 0.0f, 1.0f);
  head_sample(s, s->h_u, action, s->h_logp, s->h_head, deterministic ? NULL : s->h_eps, n);
  if (logp) memcpy(logp, s->h_logp, (size_t)n * sizeof(float));
  return SRL_OK;
}


//---- bellman targets --------------------------------------------------------------------------

// actor head on the batch's next observations (uploaded to d_next_obs)
static int next_head(srl_sac *s, const srl_sac_batch *b) {
  SRL_TRY(
      s->ops->upload(s->d_next_obs, b->next_obs, (size_t)b->n * s->cfg.obs_dim * sizeof(float)));
  return actor_head(s, s->d_next_obs, b->n);
}


// reward targets from the next-state head in h_head: sample a', score the target twins
static int reward_targets_from_head(srl_sac *s, float *y, const srl_sac_batch *b) {
  int n = b->n, O = s->cfg.obs_dim, A = s->cfg.act_dim;
  srl_rng_fill_normal(s->rng, s->h_eps, (size_t)n * A, 0.0f, 1.0f);
  head_sample(s, s->h_u, s->h_a, s->h_logp, s->h_head, s->h_eps, n);
  concat_rows(s->h_x, b->next_obs, s->h_a, n, O, A);
  SRL_TRY(s->ops->upload(s->d_xn, s->h_x, (size_t)n * (O + A) * sizeof(float)));
  SRL_TRY(q_forward(s, s->q1_targ, s->h_q1, s->d_xn, n));
  SRL_TRY(q_forward(s, s->q2_targ, s->h_q2, s->d_xn, n));
  float alpha = srl_sac_alpha(s), g = s->cfg.gamma;
  for (int i = 0; i < n; i++) {
    float qmin = fminf(s->h_q1[i], s->h_q2[i]);
    y[i] = b->reward[i] + g * (1.0f - b->done[i]) * (qmin - alpha * s->h_logp[i]);
  }
  return SRL_OK;
}


// cost targets from the next-state head in h_head: the deterministic action tanh(μ(s'))
static int cost_targets_from_head(srl_sac *s, float *y, const srl_sac_batch *b) {
  int n = b->n, O = s->cfg.obs_dim, A = s->cfg.act_dim;
  float *a = s->h_da;  // free until the actor step
  for (int r = 0; r < n; r++)
    for (int j = 0; j < A; j++) a[(size_t)r * A + j] = tanhf(s->h_head[(size_t)r * 2 * A + j]);
  concat_rows(s->h_x, b->next_obs, a, n, O, A);
  SRL_TRY(s->ops->upload(s->d_xn, s->h_x, (size_t)n * (O + A) * sizeof(float)));
  SRL_TRY(q_forward(s, s->qc_targ, s->h_qc, s->d_xn, n));
  float g = s->cfg.gamma;
  for (int i = 0; i < n; i++) y[i] = b->cost[i] + g * (1.0f - b->done[i]) * s->h_qc[i];
  return SRL_OK;
}


int srl_sac_reward_targets(srl_sac *s, float *y, float *a_next, float *logp_next,
                           const srl_sac_batch *b) {
  SRL_TRY(check_n(s, b->n, "reward targets"));
  SRL_TRY(next_head(s, b));
  SRL_TRY(reward_targets_from_head(s, y, b));
  if (a_next) memcpy(a_next, s->h_a, (size_t)b->n * s->cfg.act_dim * sizeof(float));
  if (logp_next) memcpy(logp_next, s->h_logp, (size_t)b->n * sizeof(float));
  return SRL_OK;
}


int srl_sac_cost_targets(srl_sac *s, float *y, const srl_sac_batch *b) {
  SRL_TRY(check_n(s, b->n, "cost targets"));
  SRL_TRY(next_head(s, b));
  return cost_targets_from_head(s, y, b);
}


//---- the steps --------------------------------------------------------------------------------

// refuse a non-finite loss or norm, clip grads of nets[0..k) by their joint norm, step each
static int clip_and_step(srl_sac *s, srl_mlp **nets, srl_optim **opts, int k, float lr,
                         const char *what, float loss, float *grad_norm) {
  const srl_ops *ops = s->ops;
  if (!isfinite(loss))
    return srl_error(SRL_ENONFINITE, "sac: %s loss is %g; parameters left unchanged", what, loss);
  double sq = 0;
  for (int i = 0; i < k; i++) sq += ops->sumsq(nets[i]->grads, nets[i]->n_params);
  float norm = (float)sqrt(sq);
  if (grad_norm) *grad_norm = norm;
  if (!isfinite(norm))
    return srl_error(SRL_ENONFINITE, "sac: %s gradient norm is %g; parameters left unchanged", what,
                     norm);
  // torch's clip_grad_norm_ over all parameters of the module: coef = max/(norm + 1e-6) < 1
  float max = s->cfg.max_grad_norm;
  if (max > 0.0f) {
    float coef = max / (norm + 1e-6f);
    if (coef < 1.0f)
      for (int i = 0; i < k; i++) ops->scale(nets[i]->grads, coef, nets[i]->n_params);
  }
  for (int i = 0; i < k; i++) SRL_TRY(srl_optim_step(opts[i], nets[i]->params, nets[i]->grads, lr));
  return SRL_OK;
}


// forward, mse against d_y and backward of one critic on d_x; returns the loss
static int critic_pass(srl_sac *s, srl_mlp *q, int n, float *loss, float *mean) {
  srl_mlp_zero_grad(q);
  SRL_TRY(srl_mlp_forward(q, s->d_x, n));
  *loss = s->ops->mse(s->d_dq, q->out, s->d_y, (size_t)n, 1.0f);
  if (mean) *mean = s->ops->sum(q->out, (size_t)n) / (float)n;
  SRL_TRY(srl_mlp_backward(q, NULL, s->d_dq));
  // OmniSafe's use_critic_norm: loss += coef·Σθ², so grad += 2·coef·θ (padding stays 0)
  float coef = s->cfg.critic_norm_coef;
  if (coef > 0.0f) {
    *loss += coef * s->ops->sumsq(q->params, q->n_params);
    s->ops->axpby(q->grads, 2.0f * coef, q->params, 1.0f, q->n_params);
  }
  return SRL_OK;
}


// accumulate the action columns of a critic's input gradient (device d_din) into h_da
static int add_action_grad(srl_sac *s, srl_mlp *q, const float *h_dq, int n, int first) {
  int O = s->cfg.obs_dim, A = s->cfg.act_dim, I = O + A;
  SRL_TRY(s->ops->upload(s->d_dq, h_dq, (size_t)n * sizeof(float)));
  SRL_TRY(srl_mlp_backward(q, s->d_din, s->d_dq));
  SRL_TRY(s->ops->download(s->h_din, s->d_din, (size_t)n * I * sizeof(float)));
  for (int r = 0; r < n; r++)
    for (int j = 0; j < A; j++) {
      float g = s->h_din[(size_t)r * I + O + j];
      s->h_da[(size_t)r * A + j] = first ? g : s->h_da[(size_t)r * A + j] + g;
    }
  return SRL_OK;
}


int srl_sac_actor_loss(srl_sac *s, float *loss, const float *obs, const float *eps, int n,
                       float lambda, int grad) {
  SRL_TRY(check_n(s, n, "actor loss"));
  if (!(lambda >= 0.0f) || !isfinite(lambda))
    return srl_error(SRL_EINVAL, "sac actor loss: lambda %g must be finite and ≥ 0", lambda);
  const srl_ops *ops = s->ops;
  int O = s->cfg.obs_dim, A = s->cfg.act_dim, I = O + A, use_cost = s->cfg.use_cost;
  float alpha = srl_sac_alpha(s);

  // a = tanh(μ + σε) on the batch's states, scored by the critics
  SRL_TRY(ops->upload(s->d_obs, obs, (size_t)n * O * sizeof(float)));
  SRL_TRY(actor_head(s, s->d_obs, n));
  head_sample(s, s->h_u, s->h_a, s->h_logp, s->h_head, eps, n);
  concat_rows(s->h_x, obs, s->h_a, n, O, A);
  SRL_TRY(ops->upload(s->d_xp, s->h_x, (size_t)n * I * sizeof(float)));
  SRL_TRY(q_forward(s, s->q1, s->h_q1, s->d_xp, n));
  SRL_TRY(q_forward(s, s->q2, s->h_q2, s->d_xp, n));
  if (use_cost) SRL_TRY(q_forward(s, s->qc, s->h_qc, s->d_xp, n));

  // L = mean(α·logp − min(Q1, Q2) + λ·Qc) / (1 + λ)
  double sum = 0;
  for (int i = 0; i < n; i++) {
    double l = (double)alpha * s->h_logp[i] - fmin(s->h_q1[i], s->h_q2[i]);
    if (use_cost) l += (double)lambda * s->h_qc[i];
    sum += l;
  }
  float w = 1.0f / ((float)n * (1.0f + (use_cost ? lambda : 0.0f)));
  *loss = (float)(sum / n / (1.0 + (use_cost ? lambda : 0.0f)));
  if (!grad) return SRL_OK;

  // ∂L/∂a through the critics' input gradients; min splits ties evenly as torch.minimum
  for (int i = 0; i < n; i++) {
    float q1 = s->h_q1[i], q2 = s->h_q2[i];
    s->h_dq[i] = q1 < q2 ? -w : (q1 == q2 ? -0.5f * w : 0.0f);
  }
  SRL_TRY(add_action_grad(s, s->q1, s->h_dq, n, 1));
  for (int i = 0; i < n; i++) {
    float q1 = s->h_q1[i], q2 = s->h_q2[i];
    s->h_dq[i] = q2 < q1 ? -w : (q1 == q2 ? -0.5f * w : 0.0f);
  }
  SRL_TRY(add_action_grad(s, s->q2, s->h_dq, n, 0));
  if (use_cost) {
    for (int i = 0; i < n; i++) s->h_dq[i] = lambda * w;
    SRL_TRY(add_action_grad(s, s->qc, s->h_dq, n, 0));
  }

  // chain rule to the head, with ∂L/∂logp = α·w:
  //   ∂a/∂u = 1 − a², ∂logp/∂u = 2a (the squash correction −Σ log(1 − tanh²u)), ∂logp/∂log σ = −1
  //   at fixed ε, u = μ + σε: ∂u/∂μ = 1, ∂u/∂log σ = σε; the clamp passes gradient only inside
  //   [-20, 2]
  float dlogp = alpha * w;
  for (int r = 0; r < n; r++) {
    const float *ls = s->h_head + (size_t)r * 2 * A + A;
    float *dmu = s->h_dpi + (size_t)r * 2 * A, *dls = dmu + A;
    for (int j = 0; j < A; j++) {
      size_t k = (size_t)r * A + j;
      float a = s->h_a[k], e = eps ? eps[k] : 0.0f;
      float du = s->h_da[k] * (1.0f - a * a) + 2.0f * a * dlogp;
      float inside = ls[j] >= SRL_SAC_LOG_STD_MIN && ls[j] <= SRL_SAC_LOG_STD_MAX;
      dmu[j] = du;
      dls[j] = inside ? du * expf(ls[j]) * e - dlogp : 0.0f;
    }
  }
  SRL_TRY(ops->upload(s->d_dpi, s->h_dpi, (size_t)n * 2 * A * sizeof(float)));
  srl_mlp_zero_grad(s->actor);
  return srl_mlp_backward(s->actor, NULL, s->d_dpi);
}


// log α's Adam step (torch's defaults, lr alpha_lr) on −log α·mean(logp + H̄) for a fresh sample
static int alpha_step(srl_sac *s, const float *obs_on_device, int n, float *alpha_loss) {
  int A = s->cfg.act_dim;
  SRL_TRY(actor_head(s, obs_on_device, n));
  srl_rng_fill_normal(s->rng, s->h_eps, (size_t)n * A, 0.0f, 1.0f);
  head_sample(s, s->h_u, s->h_a, s->h_logp, s->h_head, s->h_eps, n);
  double m = 0;
  for (int i = 0; i < n; i++) m += s->h_logp[i] + (double)s->cfg.target_entropy;
  m /= n;
  float g = (float)-m;
  *alpha_loss = (float)(-s->log_alpha * m);
  if (!isfinite(g))
    return srl_error(SRL_ENONFINITE, "sac: alpha gradient is %g; log alpha left unchanged", g);
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  s->alpha_step++;
  s->alpha_m = b1 * s->alpha_m + (1 - b1) * g;
  s->alpha_v = b2 * s->alpha_v + (1 - b2) * g * g;
  double mh = s->alpha_m / (1 - pow(b1, (double)s->alpha_step));
  double vh = s->alpha_v / (1 - pow(b2, (double)s->alpha_step));
  s->log_alpha -= (float)(s->cfg.alpha_lr * mh / (sqrt(vh) + eps));
  return SRL_OK;
}


int srl_sac_update(srl_sac *s, const srl_sac_batch *b, float lambda, srl_sac_stats *stats) {
  SRL_TRY(check_n(s, b->n, "update"));
  if (!(lambda >= 0.0f) || !isfinite(lambda))
    return srl_error(SRL_ENONFINITE, "sac update: lagrange multiplier is %g", lambda);
  const srl_ops *ops = s->ops;
  int n = b->n, O = s->cfg.obs_dim, A = s->cfg.act_dim, I = O + A;
  srl_sac_stats st;
  memset(&st, 0, sizeof st);
  s->update_count++;

  // targets from the current actor on s' (the critics' steps do not move it)
  SRL_TRY(next_head(s, b));
  SRL_TRY(reward_targets_from_head(s, s->h_y, b));
  if (s->cfg.use_cost) SRL_TRY(cost_targets_from_head(s, s->h_yc, b));
  concat_rows(s->h_x, b->obs, b->act, n, O, A);
  SRL_TRY(ops->upload(s->d_x, s->h_x, (size_t)n * I * sizeof(float)));

  // reward critics: both twins against one target, one joint clip
  float l1, l2;
  SRL_TRY(ops->upload(s->d_y, s->h_y, (size_t)n * sizeof(float)));
  SRL_TRY(critic_pass(s, s->q1, n, &l1, &st.q_mean));
  SRL_TRY(critic_pass(s, s->q2, n, &l2, NULL));
  st.loss_q = l1 + l2;
  srl_mlp *twins[2] = {s->q1, s->q2};
  srl_optim *twin_opts[2] = {s->opt_q1, s->opt_q2};
  SRL_TRY(clip_and_step(s, twins, twin_opts, 2, s->cfg.critic_lr, "reward critic", st.loss_q,
                        &st.grad_norm_q));

  // cost critic
  if (s->cfg.use_cost) {
    SRL_TRY(ops->upload(s->d_y, s->h_yc, (size_t)n * sizeof(float)));
    SRL_TRY(critic_pass(s, s->qc, n, &st.loss_qc, &st.qc_mean));
    SRL_TRY(clip_and_step(s, &s->qc, &s->opt_qc, 1, s->cfg.critic_lr, "cost critic", st.loss_qc,
                          &st.grad_norm_qc));
  }

  // actor, temperature and targets every policy_delay-th step
  if (s->update_count % s->cfg.policy_delay == 0) {
    float *eps = s->h_eps;
    srl_rng_fill_normal(s->rng, eps, (size_t)n * A, 0.0f, 1.0f);
    SRL_TRY(srl_sac_actor_loss(s, &st.loss_pi, b->obs, eps, n, lambda, 1));
    double ent = 0;
    for (int i = 0; i < n; i++) ent -= s->h_logp[i];
    st.entropy = (float)(ent / n);
    SRL_TRY(clip_and_step(s, &s->actor, &s->opt_actor, 1, s->cfg.actor_lr, "actor", st.loss_pi,
                          &st.grad_norm_pi));
    if (s->cfg.auto_alpha) SRL_TRY(alpha_step(s, s->d_obs, n, &st.alpha_loss));
    float tau = s->cfg.polyak;
    SRL_TRY(srl_mlp_polyak(s->q1_targ, s->q1, tau));
    SRL_TRY(srl_mlp_polyak(s->q2_targ, s->q2, tau));
    if (s->cfg.use_cost) SRL_TRY(srl_mlp_polyak(s->qc_targ, s->qc, tau));
    st.actor_stepped = 1;
  }
  st.alpha = srl_sac_alpha(s);
  if (stats) *stats = st;
  return SRL_OK;
}


//---- checkpoints ------------------------------------------------------------------------------

typedef struct named_net {
  const char *prefix;
  srl_mlp *net;
  srl_optim *opt;  // NULL for targets
} named_net;

#define N_NETS 7

static void list_nets(const srl_sac *s, named_net *nn) {
  named_net list[N_NETS] = {
      {"actor", s->actor, s->opt_actor},       {"critic_r.0", s->q1, s->opt_q1},
      {"critic_r.1", s->q2, s->opt_q2},        {"critic_c", s->qc, s->opt_qc},
      {"target_critic_r.0", s->q1_targ, NULL}, {"target_critic_r.1", s->q2_targ, NULL},
      {"target_critic_c", s->qc_targ, NULL},
  };
  memcpy(nn, list, sizeof list);
}


int srl_sac_save(const srl_sac *s, srl_st_writer *w, void **hold) {
  *hold = NULL;
  named_net nets[N_NETS];
  list_nets(s, nets);
  // one host block: every net's parameters, the optimizers' moments, steps, scalars, rng state
  size_t total = 0, off_p[N_NETS], off_m[N_NETS], off_v[N_NETS], off_st[N_NETS];
  for (int i = 0; i < N_NETS; i++) {
    size_t n = nets[i].net->n_params * sizeof(float);
    off_p[i] = srl_layout_add(&total, n);
    if (nets[i].opt) {
      off_m[i] = srl_layout_add(&total, n);
      off_v[i] = srl_layout_add(&total, n);
      off_st[i] = srl_layout_add(&total, sizeof(int64_t));
    }
  }
  size_t off_sc = srl_layout_add(&total, 3 * sizeof(float));
  size_t off_i64 = srl_layout_add(&total, 2 * sizeof(int64_t));
  size_t rng_n = srl_rng_state_size(s->rng);
  size_t off_rng = srl_layout_add(&total, rng_n);
  char *h = srl_calloc(total);
  if (!h) return SRL_ENOMEM;
  int rc = SRL_OK;
  char name[160];
  for (int i = 0; i < N_NETS && rc == 0; i++) {
    const srl_mlp *net = nets[i].net;
    float *p = (float *)(h + off_p[i]);
    rc = s->ops->download(p, net->params, net->n_params * sizeof(float));
    for (int t = 0; t < net->n_tensors && rc == 0; t++) {
      const srl_nn_tensor *nt = &net->tensors[t];
      int64_t shape[2] = {nt->shape[0], nt->shape[1]};
      snprintf(name, sizeof name, "%s.%s", nets[i].prefix, nt->name);
      rc = srl_st_add(w, name, SRL_DTYPE_F32, nt->ndim, shape, p + nt->offset);
    }
    if (!nets[i].opt || rc < 0) continue;
    float *m = (float *)(h + off_m[i]), *v = (float *)(h + off_v[i]);
    int64_t *step = (int64_t *)(h + off_st[i]), n = (int64_t)net->n_params, one = 1;
    rc = srl_optim_state_download(nets[i].opt, m, v, step);
    snprintf(name, sizeof name, "optim.%s.m", nets[i].prefix);
    if (rc == 0) rc = srl_st_add(w, name, SRL_DTYPE_F32, 1, &n, m);
    snprintf(name, sizeof name, "optim.%s.v", nets[i].prefix);
    if (rc == 0) rc = srl_st_add(w, name, SRL_DTYPE_F32, 1, &n, v);
    snprintf(name, sizeof name, "optim.%s.step", nets[i].prefix);
    if (rc == 0) rc = srl_st_add(w, name, SRL_DTYPE_I64, 1, &one, step);
  }
  float *sc = (float *)(h + off_sc);
  int64_t *i64 = (int64_t *)(h + off_i64), one = 1, two = 2, nr = (int64_t)rng_n;
  sc[0] = s->log_alpha, sc[1] = s->alpha_m, sc[2] = s->alpha_v;
  i64[0] = s->alpha_step, i64[1] = s->update_count;
  srl_rng_state_save(s->rng, h + off_rng);
  if (rc == 0) rc = srl_st_add(w, "sac.log_alpha", SRL_DTYPE_F32, 1, &one, sc);
  if (rc == 0) rc = srl_st_add(w, "sac.alpha_adam", SRL_DTYPE_F32, 1, &two, sc + 1);
  if (rc == 0) rc = srl_st_add(w, "sac.alpha_step", SRL_DTYPE_I64, 1, &one, i64);
  if (rc == 0) rc = srl_st_add(w, "sac.update_count", SRL_DTYPE_I64, 1, &one, i64 + 1);
  if (rc == 0) rc = srl_st_add(w, "sac.rng", SRL_DTYPE_U8, 1, &nr, h + off_rng);
  if (rc < 0) {
    srl_free(h);
    return rc;
  }
  *hold = h;
  return SRL_OK;
}


// one I64 scalar tensor of shape [1]
static int read_i64(const srl_st_file *f, const char *name, int64_t *out) {
  const srl_st_tensor *t = srl_st_find(f, name);
  if (!t) return srl_error(SRL_ENOTFOUND, "sac checkpoint: no tensor '%s'", name);
  if (t->dtype != SRL_DTYPE_I64 || t->nbytes != sizeof(int64_t))
    return srl_error(SRL_EFORMAT, "sac checkpoint: '%s' is not one I64", name);
  memcpy(out, t->data, sizeof(int64_t));
  return SRL_OK;
}


int srl_sac_load(srl_sac *s, const srl_st_file *f, int actor_only) {
  named_net nets[N_NETS];
  list_nets(s, nets);
  int n_nets = actor_only ? 1 : N_NETS;
  size_t max_n = 0;
  for (int i = 0; i < n_nets; i++)
    if (nets[i].net->n_params > max_n) max_n = nets[i].net->n_params;
  float *tmp = srl_calloc(3 * max_n * sizeof(float));
  if (!tmp) return SRL_ENOMEM;
  float *p = tmp, *m = tmp + max_n, *v = tmp + 2 * max_n;
  int rc = SRL_OK;
  char name[160];
  // each net: its tensors into a host image of the parameter block, uploaded whole
  for (int i = 0; i < n_nets && rc == 0; i++) {
    srl_mlp *net = nets[i].net;
    memset(p, 0, net->n_params * sizeof(float));
    for (int t = 0; t < net->n_tensors && rc == 0; t++) {
      const srl_nn_tensor *nt = &net->tensors[t];
      snprintf(name, sizeof name, "%s.%s", nets[i].prefix, nt->name);
      rc = srl_st_read_f32(f, name, p + nt->offset, nt->numel);
    }
    if (rc == 0) rc = s->ops->upload(net->params, p, net->n_params * sizeof(float));
    if (actor_only || !nets[i].opt || rc < 0) continue;
    int64_t step = 0;
    snprintf(name, sizeof name, "optim.%s.m", nets[i].prefix);
    rc = srl_st_read_f32(f, name, m, net->n_params);
    snprintf(name, sizeof name, "optim.%s.v", nets[i].prefix);
    if (rc == 0) rc = srl_st_read_f32(f, name, v, net->n_params);
    snprintf(name, sizeof name, "optim.%s.step", nets[i].prefix);
    if (rc == 0) rc = read_i64(f, name, &step);
    if (rc == 0) rc = srl_optim_state_upload(nets[i].opt, m, v, step);
  }
  if (rc == 0 && !actor_only) {
    float sc[3];
    int64_t astep = 0, count = 0;
    rc = srl_st_read_f32(f, "sac.log_alpha", sc, 1);
    if (rc == 0) rc = srl_st_read_f32(f, "sac.alpha_adam", sc + 1, 2);
    if (rc == 0) rc = read_i64(f, "sac.alpha_step", &astep);
    if (rc == 0) rc = read_i64(f, "sac.update_count", &count);
    const srl_st_tensor *t = srl_st_find(f, "sac.rng");
    if (rc == 0 && !t) rc = srl_error(SRL_ENOTFOUND, "sac checkpoint: no tensor 'sac.rng'");
    if (rc == 0 && t->dtype != SRL_DTYPE_U8)
      rc = srl_error(SRL_EFORMAT, "sac checkpoint: 'sac.rng' is not U8");
    if (rc == 0) rc = srl_rng_state_load(s->rng, t->data, t->nbytes);
    if (rc == 0) {
      s->log_alpha = sc[0], s->alpha_m = sc[1], s->alpha_v = sc[2];
      s->alpha_step = astep, s->update_count = count;
    }
  }
  srl_free(tmp);
  return rc;
}

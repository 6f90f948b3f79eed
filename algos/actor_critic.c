// actor_critic.c: OmniSafe's actor and critics and their minibatch update steps, on any device.
#include "algos/actor_critic.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

#define HALF_LOG_2PIE 1.41893853320467274178f  // ½(1 + log 2π): entropy per dim at σ = 1


srl_ac_config srl_ac_config_default(int obs_dim, int act_dim, int max_batch) {
  srl_ac_config c;
  memset(&c, 0, sizeof c);
  c.obs_dim = obs_dim;
  c.act_dim = act_dim;
  c.n_actor_hidden = c.n_critic_hidden = 2;
  c.actor_hidden[0] = c.actor_hidden[1] = 64;
  c.critic_hidden[0] = c.critic_hidden[1] = 64;
  c.actor_act = c.critic_act = SRL_ACT_TANH;
  c.log_std_init = 0.0f;
  c.actor_lr = c.critic_lr = 3e-4f;
  c.max_grad_norm = 40.0f;
  c.critic_norm_coef = 0.001f;
  c.clip = 0.2f;
  c.entropy_coef = 0.0f;
  c.max_batch = max_batch;
  return c;
}


// a plain MLP config: in → hidden... → out with identity output
static int mlp_config(srl_mlp_config *m, int in, int n_hidden, const int *hidden, int out,
                      srl_act act) {
  if (n_hidden < 0 || n_hidden > 8)
    return srl_error(SRL_EINVAL, "actor-critic: %d hidden layers (at most 8)", n_hidden);
  int sizes[10];
  sizes[0] = in;
  for (int i = 0; i < n_hidden; i++) sizes[i + 1] = hidden[i];
  sizes[n_hidden + 1] = out;
  *m = srl_mlp_config_plain(n_hidden + 2, sizes, act, SRL_ACT_IDENTITY);
  return SRL_OK;
}


int srl_ac_create(srl_actor_critic **out, const srl_ops *ops, const srl_ac_config *cfg,
                  srl_rng *rng) {
  *out = NULL;
  if (cfg->obs_dim < 1 || cfg->act_dim < 1 || cfg->max_batch < 1)
    return srl_error(SRL_EINVAL, "actor-critic: obs_dim %d, act_dim %d, max_batch %d must be ≥ 1",
                     cfg->obs_dim, cfg->act_dim, cfg->max_batch);
  srl_actor_critic *ac = srl_calloc(sizeof *ac);
  if (!ac) return SRL_ENOMEM;
  ac->ops = ops;
  ac->cfg = *cfg;
  srl_mlp_config ma, mr;
  int rc = mlp_config(&ma, cfg->obs_dim, cfg->n_actor_hidden, cfg->actor_hidden, cfg->act_dim,
                      cfg->actor_act);
  if (rc == 0)
    rc =
        mlp_config(&mr, cfg->obs_dim, cfg->n_critic_hidden, cfg->critic_hidden, 1, cfg->critic_act);
  if (rc < 0) goto fail;
  ma.extra = cfg->act_dim;
  strcpy(ma.extra_name, "log_std");
  ma.extra_init = cfg->log_std_init;
  if ((rc = srl_mlp_create(&ac->actor, ops, &ma, cfg->max_batch, rng)) < 0) goto fail;
  if ((rc = srl_mlp_create(&ac->critic_r, ops, &mr, cfg->max_batch, rng)) < 0) goto fail;
  if ((rc = srl_mlp_create(&ac->critic_c, ops, &mr, cfg->max_batch, rng)) < 0) goto fail;

  srl_optim_config oa = srl_optim_config_default(SRL_OPTIM_ADAM, cfg->actor_lr);
  srl_optim_config oc = srl_optim_config_default(SRL_OPTIM_ADAM, cfg->critic_lr);
  if ((rc = srl_optim_create(&ac->opt_actor, ops, ac->actor->n_params, &oa)) < 0) goto fail;
  if ((rc = srl_optim_create(&ac->opt_r, ops, ac->critic_r->n_params, &oc)) < 0) goto fail;
  if ((rc = srl_optim_create(&ac->opt_c, ops, ac->critic_c->n_params, &oc)) < 0) goto fail;

  // scratch: dvalue, logp, dlogp (B each), dmean (B×A), ones (A), in one device block
  size_t total = 0, B = (size_t)cfg->max_batch, A = (size_t)cfg->act_dim;
  size_t o_dv = srl_layout_add(&total, B * sizeof(float));
  size_t o_lp = srl_layout_add(&total, B * sizeof(float));
  size_t o_dlp = srl_layout_add(&total, B * sizeof(float));
  size_t o_dm = srl_layout_add(&total, B * A * sizeof(float));
  size_t o_one = srl_layout_add(&total, A * sizeof(float));
  if (!(ac->scratch = ops->alloc(total))) {
    rc = SRL_ENOMEM;
    goto fail;
  }
  char *base = ac->scratch;
  ac->dvalue = (float *)(base + o_dv);
  ac->logp = (float *)(base + o_lp);
  ac->dlogp = (float *)(base + o_dlp);
  ac->dmean = (float *)(base + o_dm);
  ac->ones = (float *)(base + o_one);
  ops->fill(ac->ones, 1.0f, A);
  *out = ac;
  return SRL_OK;

fail:
  srl_ac_destroy(ac);
  return rc;
}


void srl_ac_destroy(srl_actor_critic *ac) {
  if (!ac) return;
  srl_mlp_destroy(ac->actor);
  srl_mlp_destroy(ac->critic_r);
  srl_mlp_destroy(ac->critic_c);
  srl_optim_destroy(ac->opt_actor);
  srl_optim_destroy(ac->opt_r);
  srl_optim_destroy(ac->opt_c);
  if (ac->scratch) ac->ops->free(ac->scratch);
  srl_free(ac);
}


// clip the gradient norm, refuse a non-finite one, then take the Adam step
static int clip_and_step(srl_actor_critic *ac, srl_mlp *net, srl_optim *opt, float lr,
                         const char *what, float loss, float *grad_norm) {
  if (!isfinite(loss))
    return srl_error(SRL_ENONFINITE, "%s loss is %g; parameters left unchanged", what, loss);
  float norm = srl_optim_clip_grad_norm(ac->ops, net->grads, net->n_params, ac->cfg.max_grad_norm);
  if (grad_norm) *grad_norm = norm;
  if (!isfinite(norm))
    return srl_error(SRL_ENONFINITE, "%s gradient norm is %g; parameters left unchanged", what,
                     norm);
  return srl_optim_step(opt, net->params, net->grads, lr);
}


int srl_ac_critic_step(srl_actor_critic *ac, srl_mlp *critic, srl_optim *opt, const float *obs,
                       const float *target, int n, float lr, float *loss, float *grad_norm) {
  const srl_ops *ops = ac->ops;
  const char *what = critic == ac->critic_c ? "cost critic" : "reward critic";
  srl_mlp_zero_grad(critic);
  SRL_TRY(srl_mlp_forward(critic, obs, n));
  float l = ops->mse(ac->dvalue, critic->out, target, (size_t)n, 1.0f);
  SRL_TRY(srl_mlp_backward(critic, NULL, ac->dvalue));
  // OmniSafe's critic_norm: loss += coef·Σθ², so grad += 2·coef·θ (padding in the block is 0)
  float coef = ac->cfg.critic_norm_coef;
  if (coef > 0) {
    l += coef * ops->sumsq(critic->params, critic->n_params);
    ops->axpby(critic->grads, 2.0f * coef, critic->params, 1.0f, critic->n_params);
  }
  if (loss) *loss = l;
  return clip_and_step(ac, critic, opt, lr, what, l, grad_norm);
}


int srl_ac_actor_step(srl_actor_critic *ac, const srl_ppo_batch *b, float lr, float *loss,
                      float *grad_norm) {
  const srl_ops *ops = ac->ops;
  srl_mlp *actor = ac->actor;
  int n = b->n, A = ac->cfg.act_dim;
  srl_mlp_zero_grad(actor);
  SRL_TRY(srl_mlp_forward(actor, b->obs, n));
  ops->gauss_logprob(ac->logp, b->act, actor->out, actor->extra, n, A, 0);
  float l = ops->ppo_clip_loss(ac->dlogp, ac->logp, b->logp_old, b->adv, n, ac->cfg.clip);
  ops->gauss_logprob_backward(ac->dmean, actor->dextra, ac->dlogp, b->act, actor->out, actor->extra,
                              n, A, 0);
  // entropy bonus: H = Σ_j log σ_j + ½(1 + log 2π) per state, so ∂(−c·H)/∂log σ_j = −c
  float c = ac->cfg.entropy_coef;
  if (c != 0.0f) {
    l -= c * (ops->sum(actor->extra, (size_t)A) + A * HALF_LOG_2PIE);
    ops->axpby(actor->dextra, -c, ac->ones, 1.0f, (size_t)A);
  }
  SRL_TRY(srl_mlp_backward(actor, NULL, ac->dmean));
  if (loss) *loss = l;
  return clip_and_step(ac, actor, ac->opt_actor, lr, "actor", l, grad_norm);
}


int srl_ppo_update_minibatch(srl_actor_critic *ac, const srl_ppo_batch *b, float actor_lr,
                             srl_ppo_stats *stats) {
  if (b->n < 1 || b->n > ac->cfg.max_batch)
    return srl_error(SRL_EINVAL, "minibatch of %d rows (capacity %d)", b->n, ac->cfg.max_batch);
  srl_ppo_stats s;
  float lr_c = ac->cfg.critic_lr;
  SRL_TRY(srl_ac_critic_step(ac, ac->critic_r, ac->opt_r, b->obs, b->target_r, b->n, lr_c,
                             &s.loss_vr, &s.grad_norm_vr));
  SRL_TRY(srl_ac_critic_step(ac, ac->critic_c, ac->opt_c, b->obs, b->target_c, b->n, lr_c,
                             &s.loss_vc, &s.grad_norm_vc));
  SRL_TRY(srl_ac_actor_step(ac, b, actor_lr, &s.loss_pi, &s.grad_norm_pi));
  if (stats) *stats = s;
  return SRL_OK;
}

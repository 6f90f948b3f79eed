// bc.c: behaviour cloning as OSRL's BC: an MLP actor (ReLU hidden layers, tanh output) regressed
// on the data actions with MSE and Adam; the table entries BC-All (every episode) and BC-Safe
// (the trainer keeps the episodes whose cost is at most the cost limit), sharing section "bc".
#include <math.h>
#include <string.h>

#include "algos/offline/baselines.h"
#include "core/alloc.h"
#include "core/error.h"

//---- parameters ----------------------------------------------------------------------------------

#define P srl_bc_params
// clang-format off
const srl_cfg_field srl_bc_fields[] = {
  SRL_CFG_INT_LIST(P, hidden, n_hidden, "actor_hidden", "[256, 256]", 1, 65536,
                   "hidden widths of the actor (ReLU; tanh output)"),
  SRL_CFG_FLOAT(P, lr, "actor_lr", "1e-3", 0, 1, "Adam learning rate"),
};
// clang-format on
#undef P
#define N_FIELDS ((int)(sizeof srl_bc_fields / sizeof *srl_bc_fields))
const int srl_bc_n_fields = N_FIELDS;

int srl_bc_params_default(srl_bc_params *p) {
  static const srl_cfg_schema schema = {"bc", srl_bc_fields, N_FIELDS};
  memset(p, 0, sizeof *p);
  return srl_config_defaults(&schema, p);
}


//---- the agent -----------------------------------------------------------------------------------

struct srl_bc {
  const srl_ops *ops;
  srl_bc_params p;
  int O, A, B, max_act;
  srl_mlp *actor;
  srl_optim *opt;
  int64_t steps;
  srl__ckpt ck;
  float *d_obs;  // (rows, O)
  float *d_act;  // (B, A) targets
  float *d_g;    // (B, A) output gradient
  void *dev;
};


int srl_bc_create(srl_bc **out, const srl_offline_setup *s, const srl_bc_params *p) {
  if (!out) return srl_error(SRL_EINVAL, "bc: NULL output handle");
  *out = NULL;
  if (!s || !p || !s->ops) return srl_error(SRL_EINVAL, "bc: NULL setup, op table or parameters");
  if (s->obs_dim < 1 || s->act_dim < 1 || s->batch_size < 1 || s->max_act_batch < 1)
    return srl_error(SRL_EINVAL,
                     "bc: obs_dim %d, act_dim %d, batch_size %d, max_act_batch %d must be ≥ 1",
                     s->obs_dim, s->act_dim, s->batch_size, s->max_act_batch);
  if (p->n_hidden < 1 || p->n_hidden > SRL_BL_MAX_HIDDEN)
    return srl_error(SRL_EINVAL, "bc: %d hidden layers, expected 1 to %d", p->n_hidden,
                     SRL_BL_MAX_HIDDEN);
  if (!(p->lr >= 0) || !isfinite(p->lr))
    return srl_error(SRL_EINVAL, "bc: actor_lr %g must be finite and ≥ 0", p->lr);
  srl_bc *b = srl_calloc(sizeof *b);
  if (!b) return SRL_ENOMEM;
  b->ops = s->ops, b->p = *p;
  b->O = s->obs_dim, b->A = s->act_dim, b->B = s->batch_size, b->max_act = s->max_act_batch;
  int rows = b->B > b->max_act ? b->B : b->max_act;
  srl_rng *init = NULL;
  int rc = srl_rng_create(&init, s->seed, 1);
  if (rc == 0)
    rc = srl__bl_mlp(&b->actor, b->ops, b->O, p->n_hidden, p->hidden, b->A, SRL_ACT_RELU,
                     SRL_ACT_TANH, rows, init);
  srl_rng_destroy(init);
  srl_optim_config oc = srl_optim_config_default(SRL_OPTIM_ADAM, (float)p->lr);
  if (rc == 0) rc = srl_optim_create(&b->opt, b->ops, b->actor->n_params, &oc);
  if (rc == 0) {
    size_t total = 0, f = sizeof(float);
    size_t o_obs = srl_layout_add(&total, (size_t)rows * b->O * f);
    size_t o_act = srl_layout_add(&total, (size_t)b->B * b->A * f);
    size_t o_g = srl_layout_add(&total, (size_t)b->B * b->A * f);
    if (!(b->dev = b->ops->alloc(total))) rc = SRL_ENOMEM;
    if (rc == 0) {
      char *d = b->dev;
      b->d_obs = (float *)(d + o_obs), b->d_act = (float *)(d + o_act), b->d_g = (float *)(d + o_g);
    }
  }
  if (rc == 0) {
    srl__ckpt_init(&b->ck, b->ops, "bc checkpoint");
    rc = srl__ckpt_net(&b->ck, "actor", b->actor, b->opt);
    if (rc == 0) rc = srl__ckpt_array(&b->ck, "bc.steps", SRL_DTYPE_I64, &b->steps, 1);
    if (rc == 0) rc = srl__ckpt_ready(&b->ck);
  }
  if (rc < 0) {
    srl_bc_destroy(b);
    return rc;
  }
  *out = b;
  return SRL_OK;
}


void srl_bc_destroy(srl_bc *b) {
  if (!b) return;
  srl_mlp_destroy(b->actor);
  srl_optim_destroy(b->opt);
  if (b->dev) b->ops->free(b->dev);
  srl__ckpt_free(&b->ck);
  srl_free(b);
}


srl_mlp *srl_bc_actor(srl_bc *b) {
  return b->actor;
}


int srl_bc_update(srl_bc *b, const srl_offline_batch *batch, srl_offline_stats *st) {
  if (st) st->n = 0;
  if (!batch || !batch->obs || !batch->act)
    return srl_error(SRL_EINVAL, "bc update: batch lacks obs or act");
  if (batch->n != b->B)
    return srl_error(SRL_EINVAL, "bc update: batch of %d rows, created for %d", batch->n, b->B);
  const srl_ops *o = b->ops;
  int B = b->B;
  SRL_TRY(o->upload(b->d_obs, batch->obs, (size_t)B * b->O * sizeof(float)));
  SRL_TRY(o->upload(b->d_act, batch->act, (size_t)B * b->A * sizeof(float)));
  srl_mlp_zero_grad(b->actor);
  SRL_TRY(srl_mlp_forward(b->actor, b->d_obs, B));
  // F.mse_loss: the mean over every element
  double loss = o->mse(b->d_g, b->actor->out, b->d_act, (size_t)B * b->A, 1.0f);
  if (!isfinite(loss))
    return srl_error(SRL_ENONFINITE,
                     "bc: actor loss is %g at update %lld; parameters left "
                     "unchanged",
                     loss, (long long)b->steps);
  SRL_TRY(srl_mlp_backward(b->actor, NULL, b->d_g));
  SRL_TRY(srl_optim_step(b->opt, b->actor->params, b->actor->grads, (float)b->p.lr));
  b->steps++;
  srl__stat(st, "loss_actor", loss);
  return SRL_OK;
}


int srl_bc_act(srl_bc *b, float *act, const float *obs, int n) {
  if (n < 1 || n > b->max_act)
    return srl_error(SRL_ERANGE, "bc act: %d observations outside [1, %d]", n, b->max_act);
  SRL_TRY(b->ops->upload(b->d_obs, obs, (size_t)n * b->O * sizeof(float)));
  SRL_TRY(srl_mlp_forward(b->actor, b->d_obs, n));
  return b->ops->download(act, b->actor->out, (size_t)n * b->A * sizeof(float));
}


//---- the offline table entries -------------------------------------------------------------------

static int t_create(void **out, const srl_offline_setup *setup, const void *params) {
  srl_bc *b = NULL;
  int rc = srl_bc_create(&b, setup, params);
  *out = b;
  return rc;
}
static void t_destroy(void *a) {
  srl_bc_destroy(a);
}
static int t_update(void *a, const srl_offline_batch *b, srl_offline_stats *st) {
  return srl_bc_update(a, b, st);
}
static int t_act(void *a, float *act, const float *obs, int n, srl_rng *rng) {
  (void)rng;
  return srl_bc_act(a, act, obs, n);
}
static int t_save(void *a, srl_st_writer *w) {
  return srl__ckpt_save(&((srl_bc *)a)->ck, w);
}
static int t_load(void *a, const srl_st_file *f) {
  return srl__ckpt_load(&((srl_bc *)a)->ck, f);
}

const srl_offline_algo srl_offline_bc_all = {
    .name = "BCAll",
    .section = "bc",
    .params_size = sizeof(srl_bc_params),
    .fields = srl_bc_fields,
    .n_fields = N_FIELDS,
    .safe_episodes_only = 0,
    .create = t_create,
    .destroy = t_destroy,
    .update = t_update,
    .act = t_act,
    .save = t_save,
    .load = t_load,
};

const srl_offline_algo srl_offline_bc_safe = {
    .name = "BCSafe",
    .section = "bc",
    .params_size = sizeof(srl_bc_params),
    .fields = srl_bc_fields,
    .n_fields = N_FIELDS,
    .safe_episodes_only = 1,
    .create = t_create,
    .destroy = t_destroy,
    .update = t_update,
    .act = t_act,
    .save = t_save,
    .load = t_load,
};

// cpq.c: CPQ as OSRL's: the conditional VAE, a squashed Gaussian actor, reward and cost critic
// ensembles with polyak targets, the constraint-penalised reward backup, the cost critic with
// its out-of-distribution term and the α update, the indicator-masked actor loss, checkpoints,
// and the offline table entry with its config fields.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "algos/offline/baselines.h"
#include "algos/offline/vae.h"
#include "core/alloc.h"
#include "core/error.h"

//---- parameters ----------------------------------------------------------------------------------

#define P srl_cpq_params
// clang-format off
const srl_cfg_field srl_cpq_fields[] = {
  SRL_CFG_INT_LIST(P, actor_hidden, n_actor_hidden, "actor_hidden", "[256, 256]", 1, 65536,
                   "hidden widths of the squashed Gaussian actor (ReLU)"),
  SRL_CFG_INT_LIST(P, critic_hidden, n_critic_hidden, "critic_hidden", "[256, 256]", 1, 65536,
                   "hidden widths of every reward and cost critic (ReLU)"),
  SRL_CFG_INT(P, vae_hidden, "vae_hidden", "400", 1, 65536, "hidden width of the VAE"),
  SRL_CFG_INT(P, num_q, "num_q", "2", 1, SRL_BL_MAX_Q, "reward critics (value: their minimum)"),
  SRL_CFG_INT(P, num_qc, "num_qc", "2", 1, SRL_BL_MAX_Q, "cost critics (value: their minimum)"),
  SRL_CFG_INT(P, sample_action_num, "sample_action_num", "10", 1, 4096,
              "policy samples per observation in the out-of-distribution cost term"),
  SRL_CFG_FLOAT(P, tau, "tau", "0.005", 0, 1, "polyak rate of the critic targets"),
  SRL_CFG_FLOAT(P, beta, "beta", "0.5", 0, 1e6, "KL weight of the VAE loss"),
  SRL_CFG_FLOAT(P, qc_scalar, "qc_scalar", "1.5", 0, 1e6,
                "threshold of the out-of-distribution cost term, in per-step thresholds"),
  SRL_CFG_FLOAT(P, actor_lr, "actor_lr", "1e-4", 0, 1, "Adam learning rate of the actor"),
  SRL_CFG_FLOAT(P, critic_lr, "critic_lr", "1e-3", 0, 1, "Adam learning rate of the critics"),
  SRL_CFG_FLOAT(P, alpha_lr, "alpha_lr", "1e-4", 0, 1, "step size of log alpha"),
  SRL_CFG_FLOAT(P, vae_lr, "vae_lr", "1e-3", 0, 1, "Adam learning rate of the VAE"),
};
// clang-format on
#undef P
#define N_FIELDS ((int)(sizeof srl_cpq_fields / sizeof *srl_cpq_fields))
const int srl_cpq_n_fields = N_FIELDS;

int srl_cpq_params_default(srl_cpq_params *p) {
  static const srl_cfg_schema schema = {"cpq", srl_cpq_fields, N_FIELDS};
  memset(p, 0, sizeof *p);
  return srl_config_defaults(&schema, p);
}


//---- pure pieces ---------------------------------------------------------------------------------

void srl_cpq_reward_targets(float *y, const float *r, const float *done, const float *q_next,
                            const float *qc_next, int n, double gamma, double q_thres) {
  float g = (float)gamma;
  for (int i = 0; i < n; i++) {
    // torch compares the float32 critic with the Python float threshold in float32
    float safe = qc_next[i] <= (float)q_thres ? 1.0f : 0.0f;
    y[i] = r[i] + g * (1.0f - done[i]) * safe * q_next[i];
  }
}


static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}


double srl_quantile(const float *x, int n, double q, float *scratch) {
  if (n < 1) return NAN;
  for (int i = 0; i < n; i++)
    if (isnan(x[i])) return NAN;
  memcpy(scratch, x, (size_t)n * sizeof(float));
  qsort(scratch, (size_t)n, sizeof(float), cmp_float);
  double pos = q * (n - 1);
  int lo = (int)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
  double frac = pos - lo;
  return scratch[lo] + frac * ((double)scratch[hi] - scratch[lo]);
}


double srl_cpq_ood(float *qc_ood, const float *kl, const float *qc, int n, int N, float *scratch) {
  double quant = srl_quantile(kl, n * N, 0.75, scratch);
  float qf = (float)quant;
  for (int i = 0; i < n; i++) {
    double s = 0;
    for (int k = 0; k < N; k++) {
      size_t r = (size_t)k * n + i;
      s += kl[r] >= qf ? qc[r] : 0.0f;
    }
    qc_ood[i] = (float)(s / N);
  }
  return quant;
}


double srl_cpq_log_alpha_update(double log_alpha, double lr, double qc_thres, double qc_ood_mean) {
  double a = log_alpha + lr * exp(log_alpha) * (qc_thres - qc_ood_mean);
  return a < -5.0 ? -5.0 : a > 5.0 ? 5.0 : a;
}


//---- the agent -----------------------------------------------------------------------------------

struct srl_cpq {
  const srl_ops *ops;
  srl_cpq_params p;
  int O, A, B, N, max_act, rows;  // rows: the networks' batch, max(B, max_act)
  double gamma, q_thres, qc_thres;
  srl_vae *vae;
  srl_mlp *actor;  // O → hidden → 2A: [μ, raw log σ]
  srl_optim *opt_actor;
  srl__qset qr, qc;
  float log_alpha;
  srl_rng *rng;  // every draw of the update
  int64_t steps;
  srl__ckpt ck;

  // device scratch
  float *d_x;    // (rows, O) actor input
  float *d_sa;   // (rows, O + A) critic inputs
  float *d_y;    // (B) regression targets
  float *d_dy;   // (rows) critic output gradients
  float *d_din;  // (rows, O + A) critic input gradients
  float *d_g;    // (rows, 2A) actor output gradients
  // host scratch
  float *h_cat;                  // (rows, O + A)
  float *h_out;                  // (rows, 2A) actor output
  float *h_eps;                  // (B·N, A) Gaussian draws
  float *h_a;                    // (rows, A) actions
  float *h_v[2 * SRL_BL_MAX_Q];  // (B·N) network outputs
  float *h_q, *h_qc;             // (B·N) minima
  int *h_iq, *h_iqc;             // (rows) argmins
  float *h_y;                    // (B)
  float *h_srep, *h_u;           // (B·N, O), (B·N, A) tiled observations, pre-tanh samples
  float *h_mean, *h_std;         // (B·N, L) VAE latents
  float *h_kl, *h_sort;          // (B·N)
  float *h_ood;                  // (B)
  float *h_dq, *h_din, *h_da;    // (rows), (rows, O + A), (rows, A)
  float *h_gout;                 // (rows, 2A) actor output gradients
  void *dev, *host;
};


static int check(const srl_offline_setup *s, const srl_cpq_params *p) {
  if (!s->ops) return srl_error(SRL_EINVAL, "cpq: no op table in the setup");
  if (s->obs_dim < 1 || s->act_dim < 1 || s->batch_size < 1 || s->max_act_batch < 1)
    return srl_error(SRL_EINVAL,
                     "cpq: obs_dim %d, act_dim %d, batch_size %d, max_act_batch %d must be ≥ 1",
                     s->obs_dim, s->act_dim, s->batch_size, s->max_act_batch);
  if (p->n_actor_hidden < 1 || p->n_actor_hidden > SRL_BL_MAX_HIDDEN || p->n_critic_hidden < 1 ||
      p->n_critic_hidden > SRL_BL_MAX_HIDDEN)
    return srl_error(SRL_EINVAL, "cpq: %d actor and %d critic layers, expected 1 to %d",
                     p->n_actor_hidden, p->n_critic_hidden, SRL_BL_MAX_HIDDEN);
  if (p->num_q < 1 || p->num_q > SRL_BL_MAX_Q || p->num_qc < 1 || p->num_qc > SRL_BL_MAX_Q)
    return srl_error(SRL_EINVAL, "cpq: num_q %d and num_qc %d must lie in [1, %d]", p->num_q,
                     p->num_qc, SRL_BL_MAX_Q);
  if (p->sample_action_num < 1 || p->vae_hidden < 1)
    return srl_error(SRL_EINVAL, "cpq: sample_action_num %d and vae_hidden %d must be ≥ 1",
                     p->sample_action_num, p->vae_hidden);
  if ((long long)s->batch_size * p->sample_action_num > (1 << 26))
    return srl_error(SRL_EINVAL, "cpq: batch_size × sample_action_num is too many rows");
  const double v[] = {p->tau,       p->beta,     p->qc_scalar, p->actor_lr,
                      p->critic_lr, p->alpha_lr, p->vae_lr,    s->gamma};
  for (size_t i = 0; i < sizeof v / sizeof *v; i++)
    if (!(v[i] >= 0) || !isfinite(v[i]))
      return srl_error(SRL_EINVAL, "cpq: rates, scales and gamma must be finite and ≥ 0 (got %g)",
                       v[i]);
  return SRL_OK;
}


static int alloc_scratch(srl_cpq *c) {
  const srl_ops *ops = c->ops;
  size_t f = sizeof(float), r = (size_t)c->rows, O = (size_t)c->O, A = (size_t)c->A;
  size_t I = O + A, BN = (size_t)c->B * c->N, V = BN > r ? BN : r, L = (size_t)c->vae->L;
  size_t total = 0;
  size_t o_x = srl_layout_add(&total, r * O * f), o_sa = srl_layout_add(&total, r * I * f);
  size_t o_y = srl_layout_add(&total, (size_t)c->B * f), o_dy = srl_layout_add(&total, r * f);
  size_t o_din = srl_layout_add(&total, r * I * f), o_g = srl_layout_add(&total, r * 2 * A * f);
  if (!(c->dev = ops->alloc(total))) return SRL_ENOMEM;
  char *d = c->dev;
  c->d_x = (float *)(d + o_x), c->d_sa = (float *)(d + o_sa), c->d_y = (float *)(d + o_y);
  c->d_dy = (float *)(d + o_dy), c->d_din = (float *)(d + o_din), c->d_g = (float *)(d + o_g);

  total = 0;
  size_t h_cat = srl_layout_add(&total, r * I * f), h_out = srl_layout_add(&total, r * 2 * A * f);
  size_t h_eps = srl_layout_add(&total, V * A * f), h_a = srl_layout_add(&total, r * A * f);
  size_t h_v[2 * SRL_BL_MAX_Q];
  for (int k = 0; k < 2 * SRL_BL_MAX_Q; k++) h_v[k] = srl_layout_add(&total, V * f);
  size_t h_q = srl_layout_add(&total, V * f), h_qc = srl_layout_add(&total, V * f);
  size_t h_iq = srl_layout_add(&total, r * sizeof(int)),
         h_iqc = srl_layout_add(&total, r * sizeof(int));
  size_t h_y = srl_layout_add(&total, (size_t)c->B * f);
  size_t h_srep = srl_layout_add(&total, BN * O * f), h_u = srl_layout_add(&total, BN * A * f);
  size_t h_mean = srl_layout_add(&total, BN * L * f), h_std = srl_layout_add(&total, BN * L * f);
  size_t h_kl = srl_layout_add(&total, BN * f), h_sort = srl_layout_add(&total, BN * f);
  size_t h_ood = srl_layout_add(&total, (size_t)c->B * f);
  size_t h_dq = srl_layout_add(&total, r * f), h_din = srl_layout_add(&total, r * I * f);
  size_t h_da = srl_layout_add(&total, r * A * f), h_gout = srl_layout_add(&total, r * 2 * A * f);
  if (!(c->host = srl_calloc(total))) return SRL_ENOMEM;
  char *h = c->host;
  c->h_cat = (float *)(h + h_cat), c->h_out = (float *)(h + h_out);
  c->h_eps = (float *)(h + h_eps), c->h_a = (float *)(h + h_a);
  for (int k = 0; k < 2 * SRL_BL_MAX_Q; k++) c->h_v[k] = (float *)(h + h_v[k]);
  c->h_q = (float *)(h + h_q), c->h_qc = (float *)(h + h_qc);
  c->h_iq = (int *)(h + h_iq), c->h_iqc = (int *)(h + h_iqc), c->h_y = (float *)(h + h_y);
  c->h_srep = (float *)(h + h_srep), c->h_u = (float *)(h + h_u);
  c->h_mean = (float *)(h + h_mean), c->h_std = (float *)(h + h_std);
  c->h_kl = (float *)(h + h_kl), c->h_sort = (float *)(h + h_sort), c->h_ood = (float *)(h + h_ood);
  c->h_dq = (float *)(h + h_dq), c->h_din = (float *)(h + h_din), c->h_da = (float *)(h + h_da);
  c->h_gout = (float *)(h + h_gout);
  return SRL_OK;
}


static int register_ckpt(srl_cpq *c) {
  static const char *rn[] = {"critic_r.0", "critic_r.1", "critic_r.2", "critic_r.3",
                             "critic_r.4", "critic_r.5", "critic_r.6", "critic_r.7"};
  static const char *rt[] = {"target_critic_r.0", "target_critic_r.1", "target_critic_r.2",
                             "target_critic_r.3", "target_critic_r.4", "target_critic_r.5",
                             "target_critic_r.6", "target_critic_r.7"};
  static const char *cn[] = {"critic_c.0", "critic_c.1", "critic_c.2", "critic_c.3",
                             "critic_c.4", "critic_c.5", "critic_c.6", "critic_c.7"};
  static const char *ct[] = {"target_critic_c.0", "target_critic_c.1", "target_critic_c.2",
                             "target_critic_c.3", "target_critic_c.4", "target_critic_c.5",
                             "target_critic_c.6", "target_critic_c.7"};
  srl__ckpt *ck = &c->ck;
  srl__ckpt_init(ck, c->ops, "cpq checkpoint");
  SRL_TRY(srl__ckpt_net(ck, "actor", c->actor, c->opt_actor));
  for (int k = 0; k < c->qr.n; k++) {
    SRL_TRY(srl__ckpt_net(ck, rn[k], c->qr.net[k], c->qr.opt[k]));
    SRL_TRY(srl__ckpt_net(ck, rt[k], c->qr.targ[k], NULL));
  }
  for (int k = 0; k < c->qc.n; k++) {
    SRL_TRY(srl__ckpt_net(ck, cn[k], c->qc.net[k], c->qc.opt[k]));
    SRL_TRY(srl__ckpt_net(ck, ct[k], c->qc.targ[k], NULL));
  }
  SRL_TRY(srl__ckpt_net(ck, "vae.encoder", c->vae->enc, c->vae->opt_enc));
  SRL_TRY(srl__ckpt_net(ck, "vae.decoder", c->vae->dec, c->vae->opt_dec));
  SRL_TRY(srl__ckpt_array(ck, "lagrange.log_alpha", SRL_DTYPE_F32, &c->log_alpha, 1));
  SRL_TRY(srl__ckpt_array(ck, "cpq.steps", SRL_DTYPE_I64, &c->steps, 1));
  SRL_TRY(srl__ckpt_rng(ck, "cpq.rng", c->rng));
  return srl__ckpt_ready(ck);
}


int srl_cpq_create(srl_cpq **out, const srl_offline_setup *s, const srl_cpq_params *p) {
  if (!out) return srl_error(SRL_EINVAL, "cpq: NULL output handle");
  *out = NULL;
  if (!s || !p) return srl_error(SRL_EINVAL, "cpq: NULL setup or parameters");
  SRL_TRY(check(s, p));
  srl_cpq *c = srl_calloc(sizeof *c);
  if (!c) return SRL_ENOMEM;
  c->ops = s->ops, c->p = *p;
  c->O = s->obs_dim, c->A = s->act_dim, c->B = s->batch_size, c->N = p->sample_action_num;
  c->max_act = s->max_act_batch;
  c->rows = c->B > c->max_act ? c->B : c->max_act;
  c->gamma = s->gamma;
  c->q_thres = srl_baselines_qc_threshold(s->cost_limit, s->gamma, s->episode_len);
  c->qc_thres = p->qc_scalar * c->q_thres;
  int O = c->O, A = c->A, I = O + A;

  srl_rng *init = NULL;
  int rc = srl_rng_create(&init, s->seed, 1);
  if (rc == 0) rc = srl_rng_create(&c->rng, s->seed, 2);
  if (rc == 0)
    rc = srl__bl_mlp(&c->actor, c->ops, O, p->n_actor_hidden, p->actor_hidden, 2 * A, SRL_ACT_RELU,
                     SRL_ACT_IDENTITY, c->rows, init);
  if (rc == 0)
    rc = srl__qset_create(&c->qr, c->ops, p->num_q, I, p->n_critic_hidden, p->critic_hidden,
                          c->rows, p->critic_lr, 1, init);
  if (rc == 0)
    rc = srl__qset_create(&c->qc, c->ops, p->num_qc, I, p->n_critic_hidden, p->critic_hidden,
                          c->rows, p->critic_lr, 1, init);
  srl_vae_config vc = srl_vae_config_default(O, A, c->rows);
  vc.hidden = p->vae_hidden, vc.beta = p->beta, vc.lr = p->vae_lr;
  if (rc == 0) rc = srl_vae_create(&c->vae, c->ops, &vc, init);
  srl_rng_destroy(init);
  srl_optim_config oa = srl_optim_config_default(SRL_OPTIM_ADAM, (float)p->actor_lr);
  if (rc == 0) rc = srl_optim_create(&c->opt_actor, c->ops, c->actor->n_params, &oa);
  if (rc == 0) rc = alloc_scratch(c);
  if (rc == 0) rc = register_ckpt(c);
  if (rc < 0) {
    srl_cpq_destroy(c);
    return rc;
  }
  *out = c;
  return SRL_OK;
}


void srl_cpq_destroy(srl_cpq *c) {
  if (!c) return;
  srl_vae_destroy(c->vae);
  srl_mlp_destroy(c->actor);
  srl_optim_destroy(c->opt_actor);
  srl__qset_free(&c->qr);
  srl__qset_free(&c->qc);
  srl_rng_destroy(c->rng);
  if (c->dev) c->ops->free(c->dev);
  srl_free(c->host);
  srl__ckpt_free(&c->ck);
  srl_free(c);
}


double srl_cpq_log_alpha(const srl_cpq *c) {
  return c->log_alpha;
}


//---- the actor -----------------------------------------------------------------------------------

// actor outputs [μ, raw log σ] for n ≤ rows observations into h_out
static int actor_out(srl_cpq *c, const float *obs, int n) {
  SRL_TRY(c->ops->upload(c->d_x, obs, (size_t)n * c->O * sizeof(float)));
  SRL_TRY(srl_mlp_forward(c->actor, c->d_x, n));
  return c->ops->download(c->h_out, c->actor->out, (size_t)n * 2 * c->A * sizeof(float));
}


// a ~ π(s) (reparameterised) into h_a, the draws in h_eps
static int actor_sample(srl_cpq *c, const float *obs, int n) {
  SRL_TRY(actor_out(c, obs, n));
  srl_rng_fill_normal(c->rng, c->h_eps, (size_t)n * c->A, 0.0f, 1.0f);
  srl_squashed_gaussian_sample(c->h_a, c->h_out, c->h_eps, n, c->A);
  return SRL_OK;
}


//---- the update ----------------------------------------------------------------------------------

static int check_batch(const srl_cpq *c, const srl_offline_batch *b) {
  if (!b || !b->obs || !b->act || !b->reward || !b->cost || !b->next_obs || !b->done)
    return srl_error(SRL_EINVAL,
                     "cpq update: batch lacks obs, act, reward, cost, next_obs or done");
  if (b->n != c->B)
    return srl_error(SRL_EINVAL, "cpq update: batch of %d rows, created for %d", b->n, c->B);
  return SRL_OK;
}


// minimum over a set's targets (targ = 1) or networks on the device rows d_sa into out
static int set_min(srl_cpq *c, srl__qset *q, int targ, float *out, int *idx, int n) {
  SRL_TRY(srl__qset_eval(q, targ, 0, q->n, c->d_sa, n, c->h_v));
  srl__min_rows(out, idx, c->h_v, q->n, n);
  return SRL_OK;
}


// the out-of-distribution cost: N pre-tanh draws per observation, tiled in OSRL's order (draw k
// of row i at k·B + i); returns mean Qc_ood
static int ood_cost(srl_cpq *c, const float *obs, double *mean) {
  int B = c->B, N = c->N, O = c->O, A = c->A, BN = B * N, L = c->vae->L;
  SRL_TRY(actor_out(c, obs, B));
  srl_rng_fill_normal(c->rng, c->h_eps, (size_t)BN * A, 0.0f, 1.0f);
  for (int k = 0; k < N; k++)
    for (int i = 0; i < B; i++) {
      size_t r = (size_t)k * B + i;
      const float *mu = c->h_out + (size_t)i * 2 * A, *ls = mu + A;
      for (int j = 0; j < A; j++) {
        float l = ls[j] < -20.0f ? -20.0f : ls[j] > 2.0f ? 2.0f : ls[j];
        c->h_u[r * A + j] = mu[j] + expf(l) * c->h_eps[r * A + j];
      }
      memcpy(c->h_srep + r * O, obs + (size_t)i * O, (size_t)O * sizeof(float));
    }
  // Qc_targ of every draw, in chunks of the networks' batch
  for (int r0 = 0; r0 < BN; r0 += c->rows) {
    int m = BN - r0 < c->rows ? BN - r0 : c->rows;
    SRL_TRY(srl__upload_cat(c->ops, c->d_sa, c->h_cat, c->h_srep + (size_t)r0 * O, O,
                            c->h_u + (size_t)r0 * A, A, m));
    float *outs[SRL_BL_MAX_Q];
    for (int k = 0; k < c->qc.n; k++) outs[k] = c->h_v[k] + r0;
    SRL_TRY(srl__qset_eval(&c->qc, 1, 0, c->qc.n, c->d_sa, m, outs));
  }
  srl__min_rows(c->h_qc, NULL, c->h_v, c->qc.n, BN);
  SRL_TRY(srl_vae_encode(c->vae, c->h_mean, c->h_std, c->h_srep, c->h_u, BN));
  srl_vae_kl_rows(c->h_kl, c->h_mean, c->h_std, BN, L);
  srl_cpq_ood(c->h_ood, c->h_kl, c->h_qc, B, N, c->h_sort);
  double s = 0;
  for (int i = 0; i < B; i++) s += c->h_ood[i];
  *mean = s / B;
  return SRL_OK;
}


static int critic_steps(srl_cpq *c, const srl_offline_batch *b, double *lq, double *lqc,
                        double *ood) {
  int B = c->B, O = c->O, A = c->A;
  // reward: a' ~ π(s'), y = r + γ(1 − d)·1[Qc' ≤ q_thres]·Q'
  SRL_TRY(actor_sample(c, b->next_obs, B));
  SRL_TRY(srl__upload_cat(c->ops, c->d_sa, c->h_cat, b->next_obs, O, c->h_a, A, B));
  SRL_TRY(set_min(c, &c->qr, 1, c->h_q, NULL, B));
  SRL_TRY(set_min(c, &c->qc, 1, c->h_qc, NULL, B));
  srl_cpq_reward_targets(c->h_y, b->reward, b->done, c->h_q, c->h_qc, B, c->gamma, c->q_thres);
  SRL_TRY(c->ops->upload(c->d_y, c->h_y, (size_t)B * sizeof(float)));
  SRL_TRY(srl__upload_cat(c->ops, c->d_sa, c->h_cat, b->obs, O, b->act, A, B));
  SRL_TRY(srl__qset_regress(&c->qr, c->d_sa, c->d_y, c->d_dy, B, c->p.critic_lr, 0.0, lq,
                            "cpq: reward critic"));

  // cost: a' ~ π(s') afresh, y = c + γ·Qc'; the OOD term changes the loss, not its gradient
  SRL_TRY(actor_sample(c, b->next_obs, B));
  SRL_TRY(srl__upload_cat(c->ops, c->d_sa, c->h_cat, b->next_obs, O, c->h_a, A, B));
  SRL_TRY(set_min(c, &c->qc, 1, c->h_qc, NULL, B));
  for (int i = 0; i < B; i++) c->h_y[i] = b->cost[i] + (float)c->gamma * c->h_qc[i];
  SRL_TRY(ood_cost(c, b->obs, ood));
  double alpha = exp((double)c->log_alpha);
  SRL_TRY(c->ops->upload(c->d_y, c->h_y, (size_t)B * sizeof(float)));
  SRL_TRY(srl__upload_cat(c->ops, c->d_sa, c->h_cat, b->obs, O, b->act, A, B));
  SRL_TRY(srl__qset_regress(&c->qc, c->d_sa, c->d_y, c->d_dy, B, c->p.critic_lr,
                            -alpha * (*ood - c->qc_thres), lqc, "cpq: cost critic"));
  c->log_alpha = (float)srl_cpq_log_alpha_update(c->log_alpha, c->p.alpha_lr, c->qc_thres, *ood);
  return SRL_OK;
}


// −mean(1[Qc ≤ q_thres]·Q) on a = tanh(μ + σ·ε) for the draws eps (n × A); grad: the actor's
// gradients through the argmin reward critic of each row, tanh and the reparameterisation
static int actor_objective(srl_cpq *c, const float *obs, const float *eps, int n, int grad,
                           double *loss, double *qm, double *qcm) {
  int O = c->O, A = c->A, I = O + A;
  SRL_TRY(actor_out(c, obs, n));
  srl_squashed_gaussian_sample(c->h_a, c->h_out, eps, n, A);
  SRL_TRY(srl__upload_cat(c->ops, c->d_sa, c->h_cat, obs, O, c->h_a, A, n));
  SRL_TRY(set_min(c, &c->qc, 0, c->h_qc, c->h_iqc, n));
  SRL_TRY(set_min(c, &c->qr, 0, c->h_q, c->h_iq, n));  // each net keeps its cache on (s, a)
  double l = 0, s1 = 0, s2 = 0;
  float thr = (float)c->q_thres;
  for (int i = 0; i < n; i++) {
    float m = c->h_qc[i] <= thr ? 1.0f : 0.0f;
    l -= (double)m * c->h_q[i];
    s1 += c->h_q[i], s2 += c->h_qc[i];
  }
  *loss = l / n;
  if (qm) *qm = s1 / n;
  if (qcm) *qcm = s2 / n;
  if (!grad) return SRL_OK;
  memset(c->h_da, 0, (size_t)n * A * sizeof(float));
  for (int k = 0; k < c->qr.n; k++) {
    int any = 0;
    for (int i = 0; i < n; i++) {
      int on = c->h_iq[i] == k && c->h_qc[i] <= thr;
      c->h_dq[i] = on ? -1.0f / n : 0.0f;
      any |= on;
    }
    if (!any) continue;
    SRL_TRY(c->ops->upload(c->d_dy, c->h_dq, (size_t)n * sizeof(float)));
    SRL_TRY(srl_mlp_backward(c->qr.net[k], c->d_din, c->d_dy));
    SRL_TRY(c->ops->download(c->h_din, c->d_din, (size_t)n * I * sizeof(float)));
    for (int i = 0; i < n; i++)
      for (int j = 0; j < A; j++) c->h_da[(size_t)i * A + j] += c->h_din[(size_t)i * I + O + j];
  }
  // the actor's cache is still its forward on s
  srl_squashed_gaussian_backward(c->h_gout, c->h_da, c->h_out, eps, n, A);
  SRL_TRY(c->ops->upload(c->d_g, c->h_gout, (size_t)n * 2 * A * sizeof(float)));
  srl_mlp_zero_grad(c->actor);
  return srl_mlp_backward(c->actor, NULL, c->d_g);
}


int srl_cpq_actor_objective(srl_cpq *c, double *loss, const float *obs, const float *eps, int n,
                            int grad) {
  if (n < 1 || n > c->B)
    return srl_error(SRL_ERANGE, "cpq actor objective: %d rows outside [1, %d]", n, c->B);
  return actor_objective(c, obs, eps, n, grad, loss, NULL, NULL);
}


int srl_cpq_critic_values(srl_cpq *c, float *q, float *qc, const float *obs, const float *act,
                          int n) {
  if (n < 1 || n > c->rows)
    return srl_error(SRL_ERANGE, "cpq critic values: %d rows outside [1, %d]", n, c->rows);
  SRL_TRY(srl__upload_cat(c->ops, c->d_sa, c->h_cat, obs, c->O, act, c->A, n));
  if (q) SRL_TRY(set_min(c, &c->qr, 0, q, NULL, n));
  if (qc) SRL_TRY(set_min(c, &c->qc, 0, qc, NULL, n));
  return SRL_OK;
}


srl_mlp *srl_cpq_actor(srl_cpq *c) {
  return c->actor;
}


// one actor step on a ~ π(s)
static int actor_step(srl_cpq *c, const float *obs, double *loss, double *qm, double *qcm) {
  srl_rng_fill_normal(c->rng, c->h_eps, (size_t)c->B * c->A, 0.0f, 1.0f);
  SRL_TRY(actor_objective(c, obs, c->h_eps, c->B, 1, loss, qm, qcm));
  if (!isfinite(*loss))
    return srl_error(SRL_ENONFINITE, "cpq: actor loss is %g at update %lld; actor left unchanged",
                     *loss, (long long)c->steps);
  return srl_optim_step(c->opt_actor, c->actor->params, c->actor->grads, (float)c->p.actor_lr);
}


int srl_cpq_update(srl_cpq *c, const srl_offline_batch *b, srl_offline_stats *st) {
  if (st) st->n = 0;
  SRL_TRY(check_batch(c, b));
  srl_vae_terms vt;
  SRL_TRY(srl_vae_train(c->vae, &vt, b->obs, b->act, c->B, c->rng));
  double lq, lqc, ood, la, qm, qcm;
  SRL_TRY(critic_steps(c, b, &lq, &lqc, &ood));
  SRL_TRY(actor_step(c, b->obs, &la, &qm, &qcm));
  SRL_TRY(srl__qset_polyak(&c->qr, c->p.tau));
  SRL_TRY(srl__qset_polyak(&c->qc, c->p.tau));
  c->steps++;
  srl__stat(st, "loss_vae", vt.loss);
  srl__stat(st, "loss_critic", lq);
  srl__stat(st, "loss_cost_critic", lqc);
  srl__stat(st, "loss_actor", la);
  srl__stat(st, "alpha", exp((double)c->log_alpha));
  srl__stat(st, "qc_ood", ood);
  srl__stat(st, "q", qm);
  srl__stat(st, "qc", qcm);
  return SRL_OK;
}


//---- acting --------------------------------------------------------------------------------------

int srl_cpq_act(srl_cpq *c, float *act, const float *obs, int n) {
  if (n < 1 || n > c->max_act)
    return srl_error(SRL_ERANGE, "cpq act: %d observations outside [1, %d]", n, c->max_act);
  SRL_TRY(actor_out(c, obs, n));
  int A = c->A;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < A; j++) act[(size_t)i * A + j] = tanhf(c->h_out[(size_t)i * 2 * A + j]);
  return SRL_OK;
}


//---- the table entry -----------------------------------------------------------------------------

static int t_create(void **out, const srl_offline_setup *setup, const void *params) {
  srl_cpq *c = NULL;
  int rc = srl_cpq_create(&c, setup, params);
  *out = c;
  return rc;
}
static void t_destroy(void *a) {
  srl_cpq_destroy(a);
}
static int t_update(void *a, const srl_offline_batch *b, srl_offline_stats *st) {
  return srl_cpq_update(a, b, st);
}
static int t_act(void *a, float *act, const float *obs, int n, srl_rng *rng) {
  (void)rng;
  return srl_cpq_act(a, act, obs, n);
}
static int t_save(void *a, srl_st_writer *w) {
  return srl__ckpt_save(&((srl_cpq *)a)->ck, w);
}
static int t_load(void *a, const srl_st_file *f) {
  return srl__ckpt_load(&((srl_cpq *)a)->ck, f);
}

const srl_offline_algo srl_offline_cpq = {
    .name = "CPQ",
    .section = "cpq",
    .params_size = sizeof(srl_cpq_params),
    .fields = srl_cpq_fields,
    .n_fields = N_FIELDS,
    .safe_episodes_only = 0,
    .create = t_create,
    .destroy = t_destroy,
    .update = t_update,
    .act = t_act,
    .save = t_save,
    .load = t_load,
};

// bcq_lag.c: BCQ-Lag as OSRL's BCQL: the conditional VAE, the perturbation actor with its polyak
// copy, reward and cost critics as two heads of ensembles with polyak targets, the 0.75·min +
// 0.25·max target over decoded samples, the PID Lagrangian multiplier, checkpoints, and the
// offline table entry with its config fields.
#include <math.h>
#include <string.h>

#include "algos/offline/baselines.h"
#include "algos/offline/vae.h"
#include "core/alloc.h"
#include "core/error.h"

//---- parameters ----------------------------------------------------------------------------------

#define P srl_bcq_lag_params
// clang-format off
const srl_cfg_field srl_bcq_lag_fields[] = {
  SRL_CFG_INT_LIST(P, actor_hidden, n_actor_hidden, "actor_hidden", "[256, 256]", 1, 65536,
                   "hidden widths of the perturbation actor (tanh)"),
  SRL_CFG_INT_LIST(P, critic_hidden, n_critic_hidden, "critic_hidden", "[256, 256]", 1, 65536,
                   "hidden widths of every reward and cost critic (ReLU)"),
  SRL_CFG_INT(P, vae_hidden, "vae_hidden", "400", 1, 65536, "hidden width of the VAE"),
  SRL_CFG_INT(P, num_q, "num_q", "2", 1, SRL_BL_MAX_Q / 2,
              "reward critics per head (two heads, each the minimum of its critics)"),
  SRL_CFG_INT(P, num_qc, "num_qc", "2", 1, SRL_BL_MAX_Q / 2, "cost critics per head"),
  SRL_CFG_INT(P, sample_action_num, "sample_action_num", "10", 1, 4096,
              "decoded actions per next observation in the targets"),
  SRL_CFG_FLOAT(P, tau, "tau", "0.005", 0, 1, "polyak rate of the targets and the actor copy"),
  SRL_CFG_FLOAT(P, phi, "phi", "0.05", 0, 1, "perturbation scale of the actor"),
  SRL_CFG_FLOAT(P, lmbda, "lmbda", "0.75", 0, 1,
                "target mix: lmbda * min(heads) + (1 - lmbda) * max(heads)"),
  SRL_CFG_FLOAT(P, beta, "beta", "0.5", 0, 1e6, "KL weight of the VAE loss"),
  SRL_CFG_FLOAT_LIST(P, pid, n_pid, "pid", "[0.1, 0.003, 0.001]", 0, 1e6,
                     "KP, KI, KD of the Lagrangian PID controller"),
  SRL_CFG_FLOAT(P, actor_lr, "actor_lr", "1e-3", 0, 1, "Adam learning rate of the actor"),
  SRL_CFG_FLOAT(P, critic_lr, "critic_lr", "1e-3", 0, 1, "Adam learning rate of the critics"),
  SRL_CFG_FLOAT(P, vae_lr, "vae_lr", "1e-3", 0, 1, "Adam learning rate of the VAE"),
};
// clang-format on
#undef P
#define N_FIELDS ((int)(sizeof srl_bcq_lag_fields / sizeof *srl_bcq_lag_fields))
const int srl_bcq_lag_n_fields = N_FIELDS;

int srl_bcq_lag_params_default(srl_bcq_lag_params *p) {
  static const srl_cfg_schema schema = {"bcq_lag", srl_bcq_lag_fields, N_FIELDS};
  memset(p, 0, sizeof *p);
  return srl_config_defaults(&schema, p);
}


//---- pure pieces ---------------------------------------------------------------------------------

void srl_bcq_lag_targets(float *y, const float *h1, const float *h2, const float *base,
                         const float *done, int n, int N, double lmbda, double gamma) {
  float l = (float)lmbda, g = (float)gamma;
  for (int i = 0; i < n; i++) {
    float best = 0;
    for (int k = 0; k < N; k++) {
      size_t r = (size_t)i * N + k;
      float lo = fminf(h1[r], h2[r]), hi = fmaxf(h1[r], h2[r]);
      float v = l * lo + (1.0f - l) * hi;
      if (k == 0 || v > best || isnan(v)) best = v;
    }
    float m = done ? 1.0f - done[i] : 1.0f;
    y[i] = base[i] + g * m * best;
  }
}


double srl_pid_lagrangian_control(srl_pid_lagrangian *pid, const float *qc, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += (double)qc[i] - pid->thres;
  float e = (float)(s / n);
  float diff = fmaxf(e - pid->err_old, 0.0f);
  pid->integral = fmaxf(pid->integral + e, 0.0f);
  pid->err_old = e;
  float m = (float)(pid->kp * fmaxf(e, 0.0f) + pid->ki * pid->integral + pid->kd * diff);
  pid->multiplier = fmaxf(m, 0.0f);
  return pid->multiplier;
}


//---- the agent -----------------------------------------------------------------------------------

struct srl_bcq_lag {
  const srl_ops *ops;
  srl_bcq_lag_params p;
  int O, A, B, N, max_act, rows;  // rows: the networks' batch, max(B, max_act)
  int nq, nqc;                    // critics per head
  double gamma, thr;              // discount, per-step cost threshold
  srl_vae *vae;
  srl_mlp *actor, *actor_old;
  srl_optim *opt_actor;
  srl__qset qr, qc;  // 2·nq reward and 2·nqc cost critics: head 1 first, then head 2
  srl_pid_lagrangian pid;
  srl_rng *rng;  // every latent the update decodes
  int64_t steps;
  float pid_state[3];  // checkpoint image of the controller: e_old, integral, multiplier
  srl__ckpt ck;

  // device scratch
  float *d_sa;   // (rows, O + A) critic inputs
  float *d_xa;   // (rows, O + A) actor inputs [s, â]
  float *d_y;    // (B) regression targets
  float *d_dy;   // (rows) critic output gradients
  float *d_din;  // (rows, O + A) critic input gradients
  float *d_g;    // (rows, A) actor output gradients
  // host scratch
  float *h_cat;                  // (rows, O + A)
  float *h_nrep;                 // (B·N, O) next observations, each repeated N times
  float *h_avae, *h_anext;       // (B·N, A) decoded and perturbed actions
  float *h_v[2 * SRL_BL_MAX_Q];  // (B·N) network outputs: reward nets, then cost nets
  float *h_h1, *h_h2;            // (B·N) head minima
  float *h_y;                    // (B)
  float *h_xi, *h_a, *h_av;  // (rows, A) actor output, actions, decoded actions of the actor step
  float *h_qpi, *h_qcpi;     // (rows) minima over the reward / cost critics
  int *h_iq, *h_iqc;         // (rows) their argmins
  float *h_dq;               // (rows)
  float *h_din;              // (rows, O + A)
  float *h_da;               // (rows, A)
  void *dev, *host;
};


static int check(const srl_offline_setup *s, const srl_bcq_lag_params *p) {
  if (!s->ops) return srl_error(SRL_EINVAL, "bcq_lag: no op table in the setup");
  if (s->obs_dim < 1 || s->act_dim < 1 || s->batch_size < 1 || s->max_act_batch < 1)
    return srl_error(SRL_EINVAL,
                     "bcq_lag: obs_dim %d, act_dim %d, batch_size %d, max_act_batch %d must be ≥ 1",
                     s->obs_dim, s->act_dim, s->batch_size, s->max_act_batch);
  if (p->n_actor_hidden < 1 || p->n_actor_hidden > SRL_BL_MAX_HIDDEN || p->n_critic_hidden < 1 ||
      p->n_critic_hidden > SRL_BL_MAX_HIDDEN)
    return srl_error(SRL_EINVAL, "bcq_lag: %d actor and %d critic layers, expected 1 to %d",
                     p->n_actor_hidden, p->n_critic_hidden, SRL_BL_MAX_HIDDEN);
  if (p->n_pid != 3) return srl_error(SRL_EINVAL, "bcq_lag: pid needs 3 gains, got %d", p->n_pid);
  if (p->num_q < 1 || 2 * p->num_q > SRL_BL_MAX_Q || p->num_qc < 1 || 2 * p->num_qc > SRL_BL_MAX_Q)
    return srl_error(SRL_EINVAL, "bcq_lag: num_q %d and num_qc %d must lie in [1, %d]", p->num_q,
                     p->num_qc, SRL_BL_MAX_Q / 2);
  if (p->sample_action_num < 1 || p->vae_hidden < 1)
    return srl_error(SRL_EINVAL, "bcq_lag: sample_action_num %d and vae_hidden %d must be ≥ 1",
                     p->sample_action_num, p->vae_hidden);
  if ((long long)s->batch_size * p->sample_action_num > (1 << 26))
    return srl_error(SRL_EINVAL, "bcq_lag: batch_size × sample_action_num is too many rows");
  const double v[] = {p->tau,    p->phi,      p->lmbda,     p->beta,   p->pid[0], p->pid[1],
                      p->pid[2], p->actor_lr, p->critic_lr, p->vae_lr, s->gamma};
  for (size_t i = 0; i < sizeof v / sizeof *v; i++)
    if (!(v[i] >= 0) || !isfinite(v[i]))
      return srl_error(SRL_EINVAL,
                       "bcq_lag: rates, gains, scales and gamma must be finite and "
                       "≥ 0 (got %g)",
                       v[i]);
  return SRL_OK;
}


static int alloc_scratch(srl_bcq_lag *b) {
  const srl_ops *ops = b->ops;
  size_t f = sizeof(float), r = (size_t)b->rows, I = (size_t)(b->O + b->A), A = (size_t)b->A;
  size_t BN = (size_t)b->B * b->N, V = BN > r ? BN : r;
  size_t total = 0;
  size_t o_sa = srl_layout_add(&total, r * I * f), o_xa = srl_layout_add(&total, r * I * f);
  size_t o_y = srl_layout_add(&total, (size_t)b->B * f), o_dy = srl_layout_add(&total, r * f);
  size_t o_din = srl_layout_add(&total, r * I * f), o_g = srl_layout_add(&total, r * A * f);
  if (!(b->dev = ops->alloc(total))) return SRL_ENOMEM;
  char *d = b->dev;
  b->d_sa = (float *)(d + o_sa), b->d_xa = (float *)(d + o_xa), b->d_y = (float *)(d + o_y);
  b->d_dy = (float *)(d + o_dy), b->d_din = (float *)(d + o_din), b->d_g = (float *)(d + o_g);

  total = 0;
  size_t h_cat = srl_layout_add(&total, r * I * f);
  size_t h_nrep = srl_layout_add(&total, BN * (size_t)b->O * f);
  size_t h_avae = srl_layout_add(&total, BN * A * f), h_anext = srl_layout_add(&total, BN * A * f);
  size_t h_v[2 * SRL_BL_MAX_Q];
  for (int k = 0; k < 2 * SRL_BL_MAX_Q; k++) h_v[k] = srl_layout_add(&total, V * f);
  size_t h_h1 = srl_layout_add(&total, BN * f), h_h2 = srl_layout_add(&total, BN * f);
  size_t h_y = srl_layout_add(&total, (size_t)b->B * f);
  size_t h_xi = srl_layout_add(&total, r * A * f), h_a = srl_layout_add(&total, r * A * f);
  size_t h_av = srl_layout_add(&total, r * A * f);
  size_t h_qpi = srl_layout_add(&total, r * f), h_qcpi = srl_layout_add(&total, r * f);
  size_t h_iq = srl_layout_add(&total, r * sizeof(int)),
         h_iqc = srl_layout_add(&total, r * sizeof(int));
  size_t h_dq = srl_layout_add(&total, r * f), h_din = srl_layout_add(&total, r * I * f);
  size_t h_da = srl_layout_add(&total, r * A * f);
  if (!(b->host = srl_calloc(total))) return SRL_ENOMEM;
  char *h = b->host;
  b->h_cat = (float *)(h + h_cat), b->h_nrep = (float *)(h + h_nrep);
  b->h_avae = (float *)(h + h_avae), b->h_anext = (float *)(h + h_anext);
  for (int k = 0; k < 2 * SRL_BL_MAX_Q; k++) b->h_v[k] = (float *)(h + h_v[k]);
  b->h_h1 = (float *)(h + h_h1), b->h_h2 = (float *)(h + h_h2), b->h_y = (float *)(h + h_y);
  b->h_xi = (float *)(h + h_xi), b->h_a = (float *)(h + h_a), b->h_av = (float *)(h + h_av);
  b->h_qpi = (float *)(h + h_qpi), b->h_qcpi = (float *)(h + h_qcpi);
  b->h_iq = (int *)(h + h_iq), b->h_iqc = (int *)(h + h_iqc);
  b->h_dq = (float *)(h + h_dq), b->h_din = (float *)(h + h_din), b->h_da = (float *)(h + h_da);
  return SRL_OK;
}


static int register_ckpt(srl_bcq_lag *b) {
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
  srl__ckpt *ck = &b->ck;
  srl__ckpt_init(ck, b->ops, "bcq_lag checkpoint");
  SRL_TRY(srl__ckpt_net(ck, "actor", b->actor, b->opt_actor));
  SRL_TRY(srl__ckpt_net(ck, "target_actor", b->actor_old, NULL));
  for (int k = 0; k < b->qr.n; k++) {
    SRL_TRY(srl__ckpt_net(ck, rn[k], b->qr.net[k], b->qr.opt[k]));
    SRL_TRY(srl__ckpt_net(ck, rt[k], b->qr.targ[k], NULL));
  }
  for (int k = 0; k < b->qc.n; k++) {
    SRL_TRY(srl__ckpt_net(ck, cn[k], b->qc.net[k], b->qc.opt[k]));
    SRL_TRY(srl__ckpt_net(ck, ct[k], b->qc.targ[k], NULL));
  }
  SRL_TRY(srl__ckpt_net(ck, "vae.encoder", b->vae->enc, b->vae->opt_enc));
  SRL_TRY(srl__ckpt_net(ck, "vae.decoder", b->vae->dec, b->vae->opt_dec));
  SRL_TRY(srl__ckpt_array(ck, "lagrange.pid", SRL_DTYPE_F32, b->pid_state, 3));
  SRL_TRY(srl__ckpt_array(ck, "bcq_lag.steps", SRL_DTYPE_I64, &b->steps, 1));
  SRL_TRY(srl__ckpt_rng(ck, "bcq_lag.rng", b->rng));
  return srl__ckpt_ready(ck);
}


int srl_bcq_lag_create(srl_bcq_lag **out, const srl_offline_setup *s, const srl_bcq_lag_params *p) {
  if (!out) return srl_error(SRL_EINVAL, "bcq_lag: NULL output handle");
  *out = NULL;
  if (!s || !p) return srl_error(SRL_EINVAL, "bcq_lag: NULL setup or parameters");
  SRL_TRY(check(s, p));
  srl_bcq_lag *b = srl_calloc(sizeof *b);
  if (!b) return SRL_ENOMEM;
  b->ops = s->ops, b->p = *p;
  b->O = s->obs_dim, b->A = s->act_dim, b->B = s->batch_size, b->N = p->sample_action_num;
  b->max_act = s->max_act_batch;
  b->rows = b->B > b->max_act ? b->B : b->max_act;
  b->nq = p->num_q, b->nqc = p->num_qc;
  b->gamma = s->gamma;
  b->thr = srl_baselines_qc_threshold(s->cost_limit, s->gamma, s->episode_len);
  b->pid = (srl_pid_lagrangian){.kp = p->pid[0], .ki = p->pid[1], .kd = p->pid[2], .thres = b->thr};
  int O = b->O, A = b->A, I = O + A;

  // networks from one init stream in a fixed order; the update's latents from another
  srl_rng *init = NULL;
  int rc = srl_rng_create(&init, s->seed, 1);
  if (rc == 0) rc = srl_rng_create(&b->rng, s->seed, 2);
  if (rc == 0)
    rc = srl__bl_mlp(&b->actor, b->ops, I, p->n_actor_hidden, p->actor_hidden, A, SRL_ACT_TANH,
                     SRL_ACT_TANH, b->rows, init);
  if (rc == 0) rc = srl_mlp_create(&b->actor_old, b->ops, &b->actor->cfg, b->rows, init);
  if (rc == 0) rc = srl_mlp_copy_params(b->actor_old, b->actor);
  if (rc == 0)
    rc = srl__qset_create(&b->qr, b->ops, 2 * b->nq, I, p->n_critic_hidden, p->critic_hidden,
                          b->rows, p->critic_lr, 1, init);
  if (rc == 0)
    rc = srl__qset_create(&b->qc, b->ops, 2 * b->nqc, I, p->n_critic_hidden, p->critic_hidden,
                          b->rows, p->critic_lr, 1, init);
  srl_vae_config vc = srl_vae_config_default(O, A, b->rows);
  vc.hidden = p->vae_hidden, vc.beta = p->beta, vc.lr = p->vae_lr;
  if (rc == 0) rc = srl_vae_create(&b->vae, b->ops, &vc, init);
  srl_rng_destroy(init);
  srl_optim_config oa = srl_optim_config_default(SRL_OPTIM_ADAM, (float)p->actor_lr);
  if (rc == 0) rc = srl_optim_create(&b->opt_actor, b->ops, b->actor->n_params, &oa);
  if (rc == 0) rc = alloc_scratch(b);
  if (rc == 0) rc = register_ckpt(b);
  if (rc < 0) {
    srl_bcq_lag_destroy(b);
    return rc;
  }
  *out = b;
  return SRL_OK;
}


void srl_bcq_lag_destroy(srl_bcq_lag *b) {
  if (!b) return;
  srl_vae_destroy(b->vae);
  srl_mlp_destroy(b->actor);
  srl_mlp_destroy(b->actor_old);
  srl_optim_destroy(b->opt_actor);
  srl__qset_free(&b->qr);
  srl__qset_free(&b->qc);
  srl_rng_destroy(b->rng);
  if (b->dev) b->ops->free(b->dev);
  srl_free(b->host);
  srl__ckpt_free(&b->ck);
  srl_free(b);
}


srl_mlp *srl_bcq_lag_actor(srl_bcq_lag *b) {
  return b->actor;
}
const srl_pid_lagrangian *srl_bcq_lag_pid(const srl_bcq_lag *b) {
  return &b->pid;
}


//---- the perturbation actor ----------------------------------------------------------------------

// ξ(s, â) = clamp(â + φ·net([s, â]), −1, 1) on n ≤ rows: net output in h_xi, actions in a
static int perturb(srl_bcq_lag *b, srl_mlp *net, float *a, const float *obs, const float *av,
                   int n) {
  int A = b->A;
  SRL_TRY(srl__upload_cat(b->ops, b->d_xa, b->h_cat, obs, b->O, av, A, n));
  SRL_TRY(srl_mlp_forward(net, b->d_xa, n));
  SRL_TRY(b->ops->download(b->h_xi, net->out, (size_t)n * A * sizeof(float)));
  float phi = (float)b->p.phi;
  for (size_t k = 0; k < (size_t)n * A; k++) {
    float x = av[k] + phi * b->h_xi[k];
    a[k] = x < -1.0f ? -1.0f : x > 1.0f ? 1.0f : x;
  }
  return SRL_OK;
}


//---- critic updates ------------------------------------------------------------------------------

// targets of one critic set: N decoded actions per next observation, perturbed by the actor's
// copy, valued by the set's target heads, mixed and maximised; base + γ·m·max into h_y
static int critic_targets(srl_bcq_lag *b, srl__qset *q, int per_head, const float *base,
                          const float *done) {
  int O = b->O, A = b->A, BN = b->B * b->N;
  SRL_TRY(srl_vae_decode(b->vae, b->h_avae, b->h_nrep, NULL, BN, b->rng));
  for (int r0 = 0; r0 < BN; r0 += b->rows) {
    int m = BN - r0 < b->rows ? BN - r0 : b->rows;
    const float *s = b->h_nrep + (size_t)r0 * O;
    float *an = b->h_anext + (size_t)r0 * A;
    SRL_TRY(perturb(b, b->actor_old, an, s, b->h_avae + (size_t)r0 * A, m));
    SRL_TRY(srl__upload_cat(b->ops, b->d_sa, b->h_cat, s, O, an, A, m));
    float *outs[SRL_BL_MAX_Q];
    for (int k = 0; k < q->n; k++) outs[k] = b->h_v[k] + r0;
    SRL_TRY(srl__qset_eval(q, 1, 0, q->n, b->d_sa, m, outs));
  }
  srl__min_rows(b->h_h1, NULL, b->h_v, per_head, BN);
  srl__min_rows(b->h_h2, NULL, b->h_v + per_head, per_head, BN);
  srl_bcq_lag_targets(b->h_y, b->h_h1, b->h_h2, base, done, b->B, b->N, b->p.lmbda, b->gamma);
  return SRL_OK;
}


static int critic_step(srl_bcq_lag *b, srl__qset *q, int per_head, const srl_offline_batch *bt,
                       const float *base, const float *done, double *loss, const char *what) {
  SRL_TRY(critic_targets(b, q, per_head, base, done));
  SRL_TRY(b->ops->upload(b->d_y, b->h_y, (size_t)b->B * sizeof(float)));
  SRL_TRY(srl__upload_cat(b->ops, b->d_sa, b->h_cat, bt->obs, b->O, bt->act, b->A, b->B));
  return srl__qset_regress(q, b->d_sa, b->d_y, b->d_dy, b->B, b->p.critic_lr, 0.0, loss, what);
}


//---- the actor objective -------------------------------------------------------------------------

// a = ξ(s, â), every critic on (s, a), minima and argmins over the reward and cost critics
static int actor_forward(srl_bcq_lag *b, const float *obs, const float *av, int n) {
  SRL_TRY(perturb(b, b->actor, b->h_a, obs, av, n));
  SRL_TRY(srl__upload_cat(b->ops, b->d_sa, b->h_cat, obs, b->O, b->h_a, b->A, n));
  SRL_TRY(srl__qset_eval(&b->qr, 0, 0, b->qr.n, b->d_sa, n, b->h_v));
  SRL_TRY(srl__qset_eval(&b->qc, 0, 0, b->qc.n, b->d_sa, n, b->h_v + b->qr.n));
  srl__min_rows(b->h_qpi, b->h_iq, b->h_v, b->qr.n, n);
  srl__min_rows(b->h_qcpi, b->h_iqc, b->h_v + b->qr.n, b->qc.n, n);
  return SRL_OK;
}


// −mean Q + mean((Qc − thr)·multiplier)
static double actor_loss(const srl_bcq_lag *b, int n, double mult, double *penalty) {
  double q = 0, c = 0;
  for (int i = 0; i < n; i++) q += b->h_qpi[i], c += ((double)b->h_qcpi[i] - b->thr) * mult;
  *penalty = c / n;
  return -q / n + c / n;
}


// ∂loss/∂a through the argmin critic of each row, then through the clamp and φ into the actor
static int actor_backward(srl_bcq_lag *b, const float *av, int n, double mult) {
  int A = b->A, I = b->O + A;
  memset(b->h_da, 0, (size_t)n * A * sizeof(float));
  for (int set = 0; set < 2; set++) {
    srl__qset *q = set ? &b->qc : &b->qr;
    const int *idx = set ? b->h_iqc : b->h_iq;
    float coef = set ? (float)(mult / n) : (float)(-1.0 / n);
    if (coef == 0.0f) continue;
    for (int k = 0; k < q->n; k++) {
      int any = 0;
      for (int i = 0; i < n; i++) {
        b->h_dq[i] = idx[i] == k ? coef : 0.0f;
        any |= idx[i] == k;
      }
      if (!any) continue;
      SRL_TRY(b->ops->upload(b->d_dy, b->h_dq, (size_t)n * sizeof(float)));
      SRL_TRY(srl_mlp_backward(q->net[k], b->d_din, b->d_dy));
      SRL_TRY(b->ops->download(b->h_din, b->d_din, (size_t)n * I * sizeof(float)));
      for (int i = 0; i < n; i++)
        for (int j = 0; j < A; j++)
          b->h_da[(size_t)i * A + j] += b->h_din[(size_t)i * I + b->O + j];
    }
  }
  // torch's clamp passes the gradient on [−1, 1] inclusive
  float phi = (float)b->p.phi;
  for (size_t k = 0; k < (size_t)n * A; k++) {
    float x = av[k] + phi * b->h_xi[k];
    b->h_da[k] = (x >= -1.0f && x <= 1.0f) ? b->h_da[k] * phi : 0.0f;
  }
  SRL_TRY(b->ops->upload(b->d_g, b->h_da, (size_t)n * A * sizeof(float)));
  // the actor's cache is still the forward on (s, â): the critics ran on their own input
  srl_mlp_zero_grad(b->actor);
  return srl_mlp_backward(b->actor, NULL, b->d_g);
}


int srl_bcq_lag_actor_objective(srl_bcq_lag *b, double *loss, const float *obs, const float *a_vae,
                                int n, double multiplier, int grad) {
  if (n < 1 || n > b->B)
    return srl_error(SRL_ERANGE, "bcq_lag actor objective: %d rows outside [1, %d]", n, b->B);
  SRL_TRY(actor_forward(b, obs, a_vae, n));
  double pen;
  *loss = actor_loss(b, n, multiplier, &pen);
  if (!grad) return SRL_OK;
  return actor_backward(b, a_vae, n, multiplier);
}


//---- the update ----------------------------------------------------------------------------------

static int check_batch(const srl_bcq_lag *b, const srl_offline_batch *bt) {
  if (!bt || !bt->obs || !bt->act || !bt->reward || !bt->cost || !bt->next_obs || !bt->done)
    return srl_error(SRL_EINVAL,
                     "bcq_lag update: batch lacks obs, act, reward, cost, next_obs or done");
  if (bt->n != b->B)
    return srl_error(SRL_EINVAL, "bcq_lag update: batch of %d rows, created for %d", bt->n, b->B);
  return SRL_OK;
}


int srl_bcq_lag_update(srl_bcq_lag *b, const srl_offline_batch *bt, srl_offline_stats *st) {
  if (st) st->n = 0;
  SRL_TRY(check_batch(b, bt));
  int B = b->B, N = b->N, O = b->O;

  // VAE on (s, a)
  srl_vae_terms vt;
  SRL_TRY(srl_vae_train(b->vae, &vt, bt->obs, bt->act, B, b->rng));

  // next observations repeated N times (repeat_interleave), then both critic sets
  for (int i = 0; i < B; i++)
    for (int k = 0; k < N; k++)
      memcpy(b->h_nrep + ((size_t)i * N + k) * O, bt->next_obs + (size_t)i * O,
             (size_t)O * sizeof(float));
  double lq, lqc;
  SRL_TRY(critic_step(b, &b->qr, b->nq, bt, bt->reward, bt->done, &lq, "bcq_lag: reward critic"));
  SRL_TRY(critic_step(b, &b->qc, b->nqc, bt, bt->cost, NULL, &lqc, "bcq_lag: cost critic"));

  // actor on freshly decoded actions, the multiplier from this batch's Qc
  SRL_TRY(srl_vae_decode(b->vae, b->h_av, bt->obs, NULL, B, b->rng));
  SRL_TRY(actor_forward(b, bt->obs, b->h_av, B));
  srl_pid_lagrangian saved = b->pid;
  double mult = srl_pid_lagrangian_control(&b->pid, b->h_qcpi, B), pen;
  double la = actor_loss(b, B, mult, &pen);
  if (!isfinite(la) || !isfinite(mult)) {
    b->pid = saved;
    return srl_error(SRL_ENONFINITE,
                     "bcq_lag: actor loss is %g (multiplier %g) at update %lld; "
                     "actor left unchanged",
                     la, mult, (long long)b->steps);
  }
  SRL_TRY(actor_backward(b, b->h_av, B, mult));
  SRL_TRY(srl_optim_step(b->opt_actor, b->actor->params, b->actor->grads, (float)b->p.actor_lr));

  // targets and the actor's copy
  SRL_TRY(srl__qset_polyak(&b->qr, b->p.tau));
  SRL_TRY(srl__qset_polyak(&b->qc, b->p.tau));
  SRL_TRY(srl_mlp_polyak(b->actor_old, b->actor, (float)b->p.tau));
  b->steps++;

  double qm = 0, qcm = 0;
  for (int i = 0; i < B; i++) qm += b->h_qpi[i], qcm += b->h_qcpi[i];
  srl__stat(st, "loss_vae", vt.loss);
  srl__stat(st, "loss_critic", lq);
  srl__stat(st, "loss_cost_critic", lqc);
  srl__stat(st, "loss_actor", la);
  srl__stat(st, "qc_penalty", pen);
  srl__stat(st, "lambda", mult);
  srl__stat(st, "q", qm / B);
  srl__stat(st, "qc", qcm / B);
  return SRL_OK;
}


//---- acting --------------------------------------------------------------------------------------

int srl_bcq_lag_act(srl_bcq_lag *b, float *act, const float *obs, int n, srl_rng *rng) {
  if (n < 1 || n > b->max_act)
    return srl_error(SRL_ERANGE, "bcq_lag act: %d observations outside [1, %d]", n, b->max_act);
  if (!rng) return srl_error(SRL_EINVAL, "bcq_lag act: NULL rng");
  SRL_TRY(srl_vae_decode(b->vae, b->h_av, obs, NULL, n, rng));
  return perturb(b, b->actor, act, obs, b->h_av, n);
}


//---- checkpoints and the table entry -------------------------------------------------------------

static int t_create(void **out, const srl_offline_setup *setup, const void *params) {
  srl_bcq_lag *b = NULL;
  int rc = srl_bcq_lag_create(&b, setup, params);
  *out = b;
  return rc;
}
static void t_destroy(void *a) {
  srl_bcq_lag_destroy(a);
}
static int t_update(void *a, const srl_offline_batch *b, srl_offline_stats *st) {
  return srl_bcq_lag_update(a, b, st);
}
static int t_act(void *a, float *act, const float *obs, int n, srl_rng *rng) {
  return srl_bcq_lag_act(a, act, obs, n, rng);
}
static int t_save(void *a, srl_st_writer *w) {
  srl_bcq_lag *b = a;
  b->pid_state[0] = b->pid.err_old, b->pid_state[1] = b->pid.integral;
  b->pid_state[2] = b->pid.multiplier;
  return srl__ckpt_save(&b->ck, w);
}
static int t_load(void *a, const srl_st_file *f) {
  srl_bcq_lag *b = a;
  SRL_TRY(srl__ckpt_load(&b->ck, f));
  b->pid.err_old = b->pid_state[0], b->pid.integral = b->pid_state[1];
  b->pid.multiplier = b->pid_state[2];
  return SRL_OK;
}

const srl_offline_algo srl_offline_bcq_lag = {
    .name = "BCQLag",
    .section = "bcq_lag",
    .params_size = sizeof(srl_bcq_lag_params),
    .fields = srl_bcq_lag_fields,
    .n_fields = N_FIELDS,
    .safe_episodes_only = 0,
    .create = t_create,
    .destroy = t_destroy,
    .update = t_update,
    .act = t_act,
    .save = t_save,
    .load = t_load,
};

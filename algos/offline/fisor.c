// fisor.c: FISOR: reward critics and value (IQL expectile), feasibility critics and value
// (reversed expectile, HJ reachability backup), the feasibility-weighted diffusion actor with its
// EMA copy, candidate selection by the feasibility critic, checkpoints, and the offline table
// entry with its config fields.
#include "algos/offline/fisor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

//---- parameters ----------------------------------------------------------------------------------

#define P srl_fisor_params
// clang-format off
const srl_cfg_field srl_fisor_fields[] = {
  SRL_CFG_FLOAT(P, gamma, "gamma", "0.99", 0, 1, "discount of the reward and HJ backups"),
  SRL_CFG_FLOAT(P, tau, "tau", "0.005", 0, 1, "polyak rate of the Q and Qh target critics"),
  SRL_CFG_FLOAT(P, expectile, "expectile", "0.9", 0, 1,
                "reward value expectile (FISOR's critic_hyperparam)"),
  SRL_CFG_FLOAT(P, cost_expectile, "cost_expectile", "0.9", 0, 1,
                "feasibility value reversed expectile (cost_critic_hyperparam)"),
  SRL_CFG_FLOAT(P, cost_scale, "cost_scale", "25", 0, 1e9,
                "constraint signal h = +cost_scale where cost > 0, -1 elsewhere"),
  SRL_CFG_FLOAT(P, reward_temperature, "reward_temperature", "3", 0, 1e6,
                "feasible rows: weight exp(reward_temperature * (Q - V))"),
  SRL_CFG_FLOAT(P, cost_temperature, "cost_temperature", "5", 0, 1e6,
                "infeasible rows: weight exp(cost_temperature * (Vh - Qh))"),
  SRL_CFG_FLOAT(P, reward_weight_max, "reward_weight_max", "100", 0, 1e12,
                "upper clip of the feasible rows' weights"),
  SRL_CFG_FLOAT(P, cost_weight_max, "cost_weight_max", "150", 0, 1e12,
                "upper clip of the infeasible rows' weights (FISOR's cost_ub)"),
  SRL_CFG_FLOAT(P, cost_weight_min, "cost_weight_min", "0", 0, 1e12,
                "lower clip of the infeasible rows' weights (1 on FISOR's metadrive branch)"),
  SRL_CFG_CHOICE(P, actor_objective, "actor_objective", "feasibility", "feasibility|bc",
                 "feasibility: FISOR's weights; bc: every weight 1"),
  SRL_CFG_INT_LIST(P, critic_hidden, n_critic_hidden, "critic_hidden", "[256, 256]", 1, 65536,
                   "hidden widths of the Q, Qh, V and Vh networks (ReLU)"),
  SRL_CFG_FLOAT(P, critic_lr, "critic_lr", "3e-4", 0, 1, "Adam learning rate of Q and Qh"),
  SRL_CFG_FLOAT(P, value_lr, "value_lr", "3e-4", 0, 1, "Adam learning rate of V and Vh"),
  SRL_CFG_FLOAT(P, actor_lr, "actor_lr", "3e-4", 0, 1,
                "AdamW learning rate of the diffusion actor (start of the cosine decay)"),
  SRL_CFG_FLOAT(P, actor_weight_decay, "actor_weight_decay", "0", 0, 1,
                "AdamW weight decay of the actor's kernels (biases excluded)"),
  SRL_CFG_INT(P, decay_steps, "decay_steps", "3000000", 0, INT32_MAX,
              "actor optimizer steps of the cosine decay to 0 (0: constant learning rate)"),
  SRL_CFG_INT(P, actor_hidden, "actor_hidden", "256", 1, 65536, "MLPResNet width"),
  SRL_CFG_INT(P, actor_blocks, "actor_blocks", "3", 1, 16, "MLPResNet residual blocks"),
  SRL_CFG_INT(P, actor_res_hidden, "actor_res_hidden", "1024", 1, 1 << 20,
              "inner width of a residual block"),
  SRL_CFG_FLOAT(P, actor_dropout, "actor_dropout", "0.1", 0, 0.99,
                "dropout on each residual block's input while training"),
  SRL_CFG_BOOL(P, actor_layernorm, "actor_layernorm", "true", "layernorm in each residual block"),
  SRL_CFG_FLOAT(P, actor_ema, "actor_ema", "0.001", 0, 1,
                "EMA rate of the acting copy of the actor (FISOR's actor_tau)"),
  SRL_CFG_INT(P, T, "diffusion_steps", "5", 1, SRL_DDPM_MAX_T, "DDPM steps T"),
  SRL_CFG_CHOICE(P, beta_schedule, "beta_schedule", "vp", "vp|linear|cosine",
                 "DDPM noise schedule"),
  SRL_CFG_INT(P, time_dim, "time_dim", "64", 2, 4096, "learnable Fourier time features (even)"),
  SRL_CFG_INT_LIST(P, cond_hidden, n_cond_hidden, "cond_hidden", "[128, 128]", 1, 65536,
                   "time MLP widths (mish between, linear last)"),
  SRL_CFG_FLOAT(P, ddpm_temperature, "ddpm_temperature", "1", 0, 100,
                "scale of the sampler's noise"),
  SRL_CFG_BOOL(P, clip_sampler, "clip_sampler", "true", "clip to [-1, 1] after every DDPM step"),
  SRL_CFG_INT(P, candidates, "candidates", "16", 1, 4096,
              "actions sampled per observation when acting (FISOR's N)"),
  SRL_CFG_CHOICE(P, extract, "extract", "minqc", "minqc|maxq",
                 "candidate choice: smallest max Qh (minqc) or largest min Q (maxq)"),
  SRL_CFG_INT(P, actor_splits, "actor_splits", "2", 1, 1 << 20,
              "actor steps per update, each on its own slice of the batch (2 x 1024 of 2048)"),
  SRL_CFG_INT(P, critic_batch, "critic_batch", "256", 1, 1 << 20,
              "leading batch rows the critics train on"),
  SRL_CFG_INT(P, critic_warmup, "critic_warmup", "0", 0, INT32_MAX,
              "first updates that train the critics alone (0: the reference's joint updates)"),
};
// clang-format on
#undef P
#define N_FIELDS ((int)(sizeof srl_fisor_fields / sizeof *srl_fisor_fields))
const int srl_fisor_n_fields = N_FIELDS;


int srl_fisor_params_default(srl_fisor_params *p) {
  static const srl_cfg_schema schema = {"fisor", srl_fisor_fields, N_FIELDS};
  memset(p, 0, sizeof *p);
  return srl_config_defaults(&schema, p);
}


//---- pure pieces ---------------------------------------------------------------------------------

void srl_fisor_constraint(float *h, const float *cost, int n, double cost_scale) {
  for (int i = 0; i < n; i++) h[i] = cost[i] > 0.0f ? (float)cost_scale : -1.0f;
}


void srl_fisor_reward_targets(float *y, const float *r, const float *done, const float *v_next,
                              int n, double gamma) {
  float g = (float)gamma;
  for (int i = 0; i < n; i++) y[i] = r[i] + g * (1.0f - done[i]) * v_next[i];
}


void srl_fisor_hj_targets(float *y, const float *h, const float *done, const float *vh_next, int n,
                          double gamma) {
  float g = (float)gamma;
  for (int i = 0; i < n; i++) {
    float m = 1.0f - done[i];
    float nonterminal = (1.0f - g) * h[i] + g * fmaxf(h[i], vh_next[i]);
    y[i] = nonterminal * m + h[i] * (1.0f - m);
  }
}


double srl_fisor_expectile(float *dpred, const float *target, const float *pred, int n, double tau,
                           int reversed) {
  double sum = 0;
  for (int i = 0; i < n; i++) {
    double u = (double)target[i] - pred[i];
    int upper = reversed ? u < 0 : u > 0;
    double w = upper ? tau : 1.0 - tau;
    sum += w * u * u;
    if (dpred) dpred[i] = (float)(-2.0 * w * u / n);
  }
  return sum / n;
}


int srl_fisor_weights(float *w, const float *q, const float *v, const float *qh, const float *vh,
                      int n, const srl_fisor_params *p) {
  int unsafe_n = 0;
  if (!strcmp(p->actor_objective, "bc")) {
    for (int i = 0; i < n; i++) w[i] = 1.0f;
    for (int i = 0; i < n; i++) unsafe_n += vh[i] > 0.0f;
    return unsafe_n;
  }
  float ct = (float)p->cost_temperature, rt = (float)p->reward_temperature;
  float cmin = (float)p->cost_weight_min, cmax = (float)p->cost_weight_max;
  float rmax = (float)p->reward_weight_max;
  for (int i = 0; i < n; i++) {
    int unsafe = vh[i] > 0.0f, safe = vh[i] <= 0.0f && qh[i] <= 0.0f;
    float wu = expf((vh[i] - qh[i]) * ct), ws = expf((q[i] - v[i]) * rt);
    wu = fminf(fmaxf(wu, cmin), cmax);
    ws = fminf(fmaxf(ws, 0.0f), rmax);
    // FISOR sums both masked terms; a NaN stays NaN so the loss check sees it
    w[i] = (float)unsafe * wu + (float)safe * ws;
    if (isnan(vh[i]) || isnan(qh[i]) || isnan(q[i]) || isnan(v[i])) w[i] = NAN;
    unsafe_n += unsafe;
  }
  return unsafe_n;
}


double srl_fisor_actor_loss(float *deps, const float *eps_hat, const float *eps, const float *w,
                            int n, int A) {
  double sum = 0;
  for (int r = 0; r < n; r++) {
    double row = 0;
    for (int j = 0; j < A; j++) {
      size_t k = (size_t)r * A + j;
      double d = (double)eps_hat[k] - eps[k];
      row += d * d;
      if (deps) deps[k] = (float)(2.0 * w[r] * d / n);
    }
    sum += w[r] * row;
  }
  return sum / n;
}


void srl_fisor_select(int *idx, const float *c1, const float *c2, int n, int N, int maximize) {
  for (int i = 0; i < n; i++) {
    int best = 0;
    float best_v = 0;
    for (int k = 0; k < N; k++) {
      size_t r = (size_t)i * N + k;
      float v = maximize ? fminf(c1[r], c2[r]) : fmaxf(c1[r], c2[r]);
      if (k == 0 || (maximize ? v > best_v : v < best_v)) best = k, best_v = v;
    }
    idx[i] = best;
  }
}


//---- the agent -----------------------------------------------------------------------------------

#define N_NETS 14
#define ACT_ROWS 1024  // candidate rows one sampler pass takes at most (more when N is larger)

typedef struct named_net {
  const char *prefix;
  srl_mlp *net;
  srl_optim *opt;  // NULL for targets and the EMA actor
} named_net;

struct srl_fisor {
  const srl_ops *ops;
  srl_fisor_params p;
  int O, A, B;     // observation and action widths, rows per update
  int Ba, Bc;      // rows per actor step, critic rows
  int N, max_act;  // candidates per observation, observations per act
  int chunk;       // observations sampled together (bounds the EMA actor's activations)
  int R, Bq;       // candidate rows of a chunk, critic capacity
  int maximize;    // extract "maxq"
  srl_ddpm_schedule sched;
  srl_lr_schedule lr;

  srl_diffusion *actor, *ema;
  srl_optim *opt_cond, *opt_eps;
  srl_mlp *q[2], *qt[2], *v, *qh[2], *qht[2], *vh;
  srl_optim *opt_q[2], *opt_v, *opt_qh[2], *opt_vh;
  srl_rng *rng;         // time steps and noise of the actor's loss
  int64_t steps;        // whole updates done
  int64_t actor_steps;  // actor optimizer steps done (the cosine schedule's clock)

  // device scratch
  float *d_sa;    // (Bq, O + A) critic inputs [s, a]
  float *d_obs;   // (Bq, O)
  float *d_nobs;  // (Bc, O)
  float *d_y;     // (Bc) regression targets
  float *d_dy;    // (Bq) output gradients
  // host scratch
  float *h_sa, *h_q1, *h_q2, *h_qh1, *h_qh2, *h_v, *h_vh;  // (Bq, O + A), then (Bq) each
  float *h_qmin, *h_qhmax, *h_w;                           // (Bq)
  float *h_h, *h_y, *h_dv, *h_vn;                          // (Bc)
  int *h_t;                                                // (Ba)
  float *h_eps, *h_xt, *h_eh, *h_g;                        // (Ba, A)
  float *h_obsr, *h_cand;                                  // (R, O), (R, A)
  int *h_idx;                                              // (chunk)
  // checkpoint image: every net's parameters, optimizer moments and steps, counters, rng
  char *img;
  size_t img_off[N_NETS][4];  // params, m, v, step
  size_t img_counters, img_rng, rng_bytes;
  void *dev, *host;
};


static void list_nets(const srl_fisor *f, named_net *nn) {
  named_net list[N_NETS] = {
      {"actor.cond", f->actor ? f->actor->cond : NULL, f->opt_cond},
      {"actor.eps", f->actor ? f->actor->eps : NULL, f->opt_eps},
      {"actor_ema.cond", f->ema ? f->ema->cond : NULL, NULL},
      {"actor_ema.eps", f->ema ? f->ema->eps : NULL, NULL},
      {"critic_r.0", f->q[0], f->opt_q[0]},
      {"critic_r.1", f->q[1], f->opt_q[1]},
      {"target_critic_r.0", f->qt[0], NULL},
      {"target_critic_r.1", f->qt[1], NULL},
      {"value_r", f->v, f->opt_v},
      {"critic_c.0", f->qh[0], f->opt_qh[0]},
      {"critic_c.1", f->qh[1], f->opt_qh[1]},
      {"target_critic_c.0", f->qht[0], NULL},
      {"target_critic_c.1", f->qht[1], NULL},
      {"value_c", f->vh, f->opt_vh},
  };
  memcpy(nn, list, sizeof list);
}


static int check_params(const srl_offline_setup *s, const srl_fisor_params *p) {
  if (!s->ops) return srl_error(SRL_EINVAL, "fisor: no op table in the setup");
  if (s->obs_dim < 1 || s->act_dim < 1 || s->batch_size < 1 || s->max_act_batch < 1)
    return srl_error(SRL_EINVAL,
                     "fisor: obs_dim %d, act_dim %d, batch_size %d, max_act_batch %d must be ≥ 1",
                     s->obs_dim, s->act_dim, s->batch_size, s->max_act_batch);
  if (p->actor_splits < 1 || s->batch_size % p->actor_splits)
    return srl_error(SRL_EINVAL, "fisor: batch_size %d does not split into %d actor steps",
                     s->batch_size, p->actor_splits);
  if (p->critic_batch < 1 || p->critic_batch > s->batch_size)
    return srl_error(SRL_EINVAL, "fisor: critic_batch %d outside [1, batch_size %d]",
                     p->critic_batch, s->batch_size);
  if (p->candidates < 1) return srl_error(SRL_EINVAL, "fisor: candidates %d < 1", p->candidates);
  if (p->critic_warmup > 0 && p->critic_warmup >= s->total_steps)
    return srl_error(SRL_EINVAL,
                     "fisor: critic_warmup %d leaves no actor update in train.steps %lld",
                     p->critic_warmup, s->total_steps);
  if ((long long)s->max_act_batch * p->candidates > (1 << 24))
    return srl_error(SRL_EINVAL, "fisor: max_act_batch %d × %d candidates is too many rows",
                     s->max_act_batch, p->candidates);
  if (p->n_critic_hidden < 1 || p->n_critic_hidden > SRL_FISOR_MAX_HIDDEN)
    return srl_error(SRL_EINVAL, "fisor: %d critic layers, expected 1 to %d", p->n_critic_hidden,
                     SRL_FISOR_MAX_HIDDEN);
  if (p->n_cond_hidden < 1 || p->n_cond_hidden > SRL_DIFFUSION_MAX_COND)
    return srl_error(SRL_EINVAL, "fisor: %d time MLP layers, expected 1 to %d", p->n_cond_hidden,
                     SRL_DIFFUSION_MAX_COND);
  if (srl_beta_kind_from_name(p->beta_schedule) < 0)
    return srl_error(SRL_EINVAL, "fisor: unknown beta_schedule '%s' (vp, linear, cosine)",
                     p->beta_schedule);
  if (strcmp(p->extract, "minqc") && strcmp(p->extract, "maxq"))
    return srl_error(SRL_EINVAL, "fisor: unknown extract '%s' (minqc, maxq)", p->extract);
  if (strcmp(p->actor_objective, "feasibility") && strcmp(p->actor_objective, "bc"))
    return srl_error(SRL_EINVAL, "fisor: unknown actor_objective '%s' (feasibility, bc)",
                     p->actor_objective);
  const double unit[] = {p->gamma, p->tau, p->expectile, p->cost_expectile, p->actor_ema};
  for (size_t i = 0; i < sizeof unit / sizeof *unit; i++)
    if (!(unit[i] >= 0.0 && unit[i] <= 1.0))
      return srl_error(SRL_EINVAL,
                       "fisor: gamma, tau, expectiles and actor_ema must lie in [0, 1] (got %g)",
                       unit[i]);
  const double pos[] = {p->cost_scale,         p->reward_temperature, p->cost_temperature,
                        p->reward_weight_max,  p->cost_weight_max,    p->cost_weight_min,
                        p->critic_lr,          p->value_lr,           p->actor_lr,
                        p->actor_weight_decay, p->ddpm_temperature};
  for (size_t i = 0; i < sizeof pos / sizeof *pos; i++)
    if (!(pos[i] >= 0.0) || !isfinite(pos[i]))
      return srl_error(SRL_EINVAL,
                       "fisor: scales, temperatures, clips and learning rates must be finite and "
                       "≥ 0 (got %g)",
                       pos[i]);
  if (p->decay_steps < 0) return srl_error(SRL_EINVAL, "fisor: decay_steps %d < 0", p->decay_steps);
  return SRL_OK;
}


// flax's Dense initialisation for a critic: every kernel xavier_uniform, biases 0
static int init_xavier(srl_mlp *net, srl_rng *rng) {
  float *h = srl_calloc(net->n_params * sizeof(float));
  if (!h) return SRL_ENOMEM;
  for (int l = 0; l < net->n_linear; l++) {
    const srl_linear *L = &net->lin[l];
    float bound = (float)sqrt(6.0 / (L->in + L->out));
    srl_rng_fill_uniform(rng, h + net->tensors[L->tensor].offset, (size_t)L->out * L->in, -bound,
                         bound);
  }
  int rc = net->ops->upload(net->params, h, net->n_params * sizeof(float));
  srl_free(h);
  return rc;
}


// a critic (in → hidden... → 1, ReLU) initialised as flax, and its target copy when targ
static int make_critic(srl_mlp **net, srl_mlp **targ, const srl_ops *ops, int in,
                       const srl_fisor_params *p, int rows, srl_rng *rng) {
  int sizes[SRL_FISOR_MAX_HIDDEN + 2];
  sizes[0] = in;
  for (int i = 0; i < p->n_critic_hidden; i++) sizes[i + 1] = p->critic_hidden[i];
  sizes[p->n_critic_hidden + 1] = 1;
  srl_mlp_config c =
      srl_mlp_config_plain(p->n_critic_hidden + 2, sizes, SRL_ACT_RELU, SRL_ACT_IDENTITY);
  SRL_TRY(srl_mlp_create(net, ops, &c, rows, rng));
  SRL_TRY(init_xavier(*net, rng));
  if (!targ) return SRL_OK;
  SRL_TRY(srl_mlp_create(targ, ops, &c, rows, rng));
  return srl_mlp_copy_params(*targ, *net);
}


// plan the checkpoint image over the nets' sizes; returns its bytes
static size_t plan_image(srl_fisor *f) {
  named_net nn[N_NETS];
  list_nets(f, nn);
  size_t total = 0;
  for (int i = 0; i < N_NETS; i++) {
    size_t bytes = nn[i].net->n_params * sizeof(float);
    f->img_off[i][0] = srl_layout_add(&total, bytes);
    if (!nn[i].opt) continue;
    f->img_off[i][1] = srl_layout_add(&total, bytes);
    f->img_off[i][2] = srl_layout_add(&total, bytes);
    f->img_off[i][3] = srl_layout_add(&total, sizeof(int64_t));
  }
  f->img_counters = srl_layout_add(&total, 4 * sizeof(int64_t));
  f->rng_bytes = srl_rng_state_size(f->rng);
  f->img_rng = srl_layout_add(&total, f->rng_bytes);
  return total;
}


static int alloc_scratch(srl_fisor *f) {
  const srl_ops *ops = f->ops;
  int O = f->O, A = f->A, I = O + A;
  size_t fl = sizeof(float), q = (size_t)f->Bq, c = (size_t)f->Bc, a = (size_t)f->Ba;
  size_t r = (size_t)f->R;
  size_t total = 0;
  size_t o_sa = srl_layout_add(&total, q * I * fl), o_obs = srl_layout_add(&total, q * O * fl);
  size_t o_nobs = srl_layout_add(&total, c * O * fl), o_y = srl_layout_add(&total, c * fl);
  size_t o_dy = srl_layout_add(&total, q * fl);
  if (!(f->dev = ops->alloc(total))) return SRL_ENOMEM;
  char *d = f->dev;
  f->d_sa = (float *)(d + o_sa), f->d_obs = (float *)(d + o_obs);
  f->d_nobs = (float *)(d + o_nobs), f->d_y = (float *)(d + o_y), f->d_dy = (float *)(d + o_dy);

  total = 0;
  size_t h_sa = srl_layout_add(&total, q * I * fl);
  size_t h_vec[9];
  for (int k = 0; k < 9; k++) h_vec[k] = srl_layout_add(&total, q * fl);
  size_t h_c[4];
  for (int k = 0; k < 4; k++) h_c[k] = srl_layout_add(&total, c * fl);
  size_t h_t = srl_layout_add(&total, a * sizeof(int));
  size_t h_a[4];
  for (int k = 0; k < 4; k++) h_a[k] = srl_layout_add(&total, a * A * fl);
  size_t h_obsr = srl_layout_add(&total, r * O * fl), h_cand = srl_layout_add(&total, r * A * fl);
  size_t h_idx = srl_layout_add(&total, (size_t)f->chunk * sizeof(int));
  size_t h_img = srl_layout_add(&total, plan_image(f));
  if (!(f->host = srl_calloc(total))) return SRL_ENOMEM;
  char *h = f->host;
  f->h_sa = (float *)(h + h_sa);
  float **vec[9] = {&f->h_q1, &f->h_q2,   &f->h_qh1,   &f->h_qh2, &f->h_v,
                    &f->h_vh, &f->h_qmin, &f->h_qhmax, &f->h_w};
  for (int k = 0; k < 9; k++) *vec[k] = (float *)(h + h_vec[k]);
  f->h_h = (float *)(h + h_c[0]), f->h_y = (float *)(h + h_c[1]);
  f->h_dv = (float *)(h + h_c[2]), f->h_vn = (float *)(h + h_c[3]);
  f->h_t = (int *)(h + h_t);
  f->h_eps = (float *)(h + h_a[0]), f->h_xt = (float *)(h + h_a[1]);
  f->h_eh = (float *)(h + h_a[2]), f->h_g = (float *)(h + h_a[3]);
  f->h_obsr = (float *)(h + h_obsr), f->h_cand = (float *)(h + h_cand);
  f->h_idx = (int *)(h + h_idx);
  f->img = h + h_img;
  return SRL_OK;
}


int srl_fisor_create(srl_fisor **out, const srl_offline_setup *setup, const srl_fisor_params *p) {
  if (!out) return srl_error(SRL_EINVAL, "fisor: NULL output handle");
  *out = NULL;
  if (!setup || !p) return srl_error(SRL_EINVAL, "fisor: NULL setup or parameters");
  SRL_TRY(check_params(setup, p));
  srl_fisor *f = srl_calloc(sizeof *f);
  if (!f) return SRL_ENOMEM;
  const srl_ops *ops = setup->ops;
  f->ops = ops;
  f->p = *p;
  f->O = setup->obs_dim, f->A = setup->act_dim, f->B = setup->batch_size;
  f->Ba = f->B / p->actor_splits, f->Bc = p->critic_batch;
  f->N = p->candidates, f->max_act = setup->max_act_batch;
  f->chunk = ACT_ROWS / f->N < 1 ? 1 : ACT_ROWS / f->N;
  if (f->chunk > f->max_act) f->chunk = f->max_act;
  f->R = f->N * f->chunk;
  f->Bq = f->B > f->R ? f->B : f->R;
  f->maximize = !strcmp(p->extract, "maxq");
  srl_rng *init = NULL;
  int rc = srl_ddpm_schedule_init(&f->sched, p->T,
                                  (srl_beta_kind)srl_beta_kind_from_name(p->beta_schedule));
  if (rc < 0) goto fail;
  f->lr = (srl_lr_schedule){.kind = p->decay_steps > 0 ? SRL_LR_COSINE : SRL_LR_CONSTANT,
                            .base = (float)p->actor_lr,
                            .final = 0.0f,
                            .total = p->decay_steps > 0 ? p->decay_steps : 1};
  if ((rc = srl_lr_check(&f->lr)) < 0) goto fail;

  // networks from one init stream in a fixed order; the loss's noise from another
  if ((rc = srl_rng_create(&init, setup->seed, 1)) < 0) goto fail;
  if ((rc = srl_rng_create(&f->rng, setup->seed, 2)) < 0) goto fail;
  srl_diffusion_config dc = srl_diffusion_config_default(f->O, f->A, f->Ba);
  dc.T = p->T, dc.time_dim = p->time_dim, dc.n_cond = p->n_cond_hidden;
  memcpy(dc.cond_hidden, p->cond_hidden, sizeof dc.cond_hidden);
  dc.hidden = p->actor_hidden, dc.blocks = p->actor_blocks, dc.res_hidden = p->actor_res_hidden;
  dc.dropout = (float)p->actor_dropout, dc.layernorm = p->actor_layernorm;
  if ((rc = srl_diffusion_create(&f->actor, ops, &dc, init)) < 0) goto fail;
  dc.max_batch = f->R;
  if ((rc = srl_diffusion_create(&f->ema, ops, &dc, init)) < 0) goto fail;
  if ((rc = srl_diffusion_copy_params(f->ema, f->actor)) < 0) goto fail;
  int I = f->O + f->A;
  for (int i = 0; i < 2 && rc == 0; i++)
    rc = make_critic(&f->q[i], &f->qt[i], ops, I, p, f->Bq, init);
  if (rc == 0) rc = make_critic(&f->v, NULL, ops, f->O, p, f->Bq, init);
  for (int i = 0; i < 2 && rc == 0; i++)
    rc = make_critic(&f->qh[i], &f->qht[i], ops, I, p, f->Bq, init);
  if (rc == 0) rc = make_critic(&f->vh, NULL, ops, f->O, p, f->Bq, init);
  if (rc < 0) goto fail;

  // the actor's decay is applied per tensor (kernels only), so AdamW runs without its own
  srl_optim_config oa = srl_optim_config_default(SRL_OPTIM_ADAMW, (float)p->actor_lr);
  oa.weight_decay = 0.0f;
  srl_optim_config oq = srl_optim_config_default(SRL_OPTIM_ADAM, (float)p->critic_lr);
  srl_optim_config ov = srl_optim_config_default(SRL_OPTIM_ADAM, (float)p->value_lr);
  oq.weight_decay = ov.weight_decay = 0.0f;
  if ((rc = srl_optim_create(&f->opt_cond, ops, f->actor->cond->n_params, &oa)) < 0) goto fail;
  if ((rc = srl_optim_create(&f->opt_eps, ops, f->actor->eps->n_params, &oa)) < 0) goto fail;
  for (int i = 0; i < 2 && rc == 0; i++) {
    rc = srl_optim_create(&f->opt_q[i], ops, f->q[i]->n_params, &oq);
    if (rc == 0) rc = srl_optim_create(&f->opt_qh[i], ops, f->qh[i]->n_params, &oq);
  }
  if (rc == 0) rc = srl_optim_create(&f->opt_v, ops, f->v->n_params, &ov);
  if (rc == 0) rc = srl_optim_create(&f->opt_vh, ops, f->vh->n_params, &ov);
  if (rc == 0) rc = alloc_scratch(f);
  if (rc < 0) goto fail;
  srl_rng_destroy(init);
  *out = f;
  return SRL_OK;

fail:
  srl_rng_destroy(init);
  srl_fisor_destroy(f);
  return rc;
}


void srl_fisor_destroy(srl_fisor *f) {
  if (!f) return;
  srl_diffusion_destroy(f->actor);
  srl_diffusion_destroy(f->ema);
  srl_optim_destroy(f->opt_cond);
  srl_optim_destroy(f->opt_eps);
  for (int i = 0; i < 2; i++) {
    srl_mlp_destroy(f->q[i]);
    srl_mlp_destroy(f->qt[i]);
    srl_mlp_destroy(f->qh[i]);
    srl_mlp_destroy(f->qht[i]);
    srl_optim_destroy(f->opt_q[i]);
    srl_optim_destroy(f->opt_qh[i]);
  }
  srl_mlp_destroy(f->v);
  srl_mlp_destroy(f->vh);
  srl_optim_destroy(f->opt_v);
  srl_optim_destroy(f->opt_vh);
  srl_rng_destroy(f->rng);
  if (f->dev) f->ops->free(f->dev);
  srl_free(f->host);
  srl_free(f);
}


srl_mlp *srl_fisor_net(srl_fisor *f, const char *prefix) {
  named_net nn[N_NETS];
  list_nets(f, nn);
  for (int i = 0; prefix && i < N_NETS; i++)
    if (!strcmp(nn[i].prefix, prefix)) return nn[i].net;
  return NULL;
}
srl_diffusion *srl_fisor_actor(srl_fisor *f) {
  return f->actor;
}
srl_diffusion *srl_fisor_actor_ema(srl_fisor *f) {
  return f->ema;
}
const srl_ddpm_schedule *srl_fisor_schedule(const srl_fisor *f) {
  return &f->sched;
}
int64_t srl_fisor_steps(const srl_fisor *f) {
  return f->steps;
}


//---- critic evaluations --------------------------------------------------------------------------

// rows [s, a] of n observations and actions into h_sa, uploaded to d_sa
static int upload_sa(srl_fisor *f, const float *obs, const float *act, int n) {
  int O = f->O, A = f->A, I = O + A;
  for (int r = 0; r < n; r++) {
    memcpy(f->h_sa + (size_t)r * I, obs + (size_t)r * O, (size_t)O * sizeof(float));
    memcpy(f->h_sa + (size_t)r * I + O, act + (size_t)r * A, (size_t)A * sizeof(float));
  }
  return f->ops->upload(f->d_sa, f->h_sa, (size_t)n * I * sizeof(float));
}


// forward a network on device rows and download its n outputs
static int eval_net(srl_fisor *f, srl_mlp *net, float *host, const float *d_in, int n) {
  SRL_TRY(srl_mlp_forward(net, d_in, n));
  return f->ops->download(host, net->out, (size_t)n * sizeof(float));
}


static void pair_min(float *out, const float *a, const float *b, int n) {
  for (int i = 0; i < n; i++) out[i] = fminf(a[i], b[i]);
}
static void pair_max(float *out, const float *a, const float *b, int n) {
  for (int i = 0; i < n; i++) out[i] = fmaxf(a[i], b[i]);
}
static double mean_of(const float *x, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += x[i];
  return s / n;
}


int srl_fisor_values(srl_fisor *f, float *q, float *v, float *qh, float *vh, const float *obs,
                     const float *act, int n) {
  if (n < 1 || n > f->Bq)
    return srl_error(SRL_ERANGE, "fisor values: %d rows outside [1, %d]", n, f->Bq);
  SRL_TRY(upload_sa(f, obs, act, n));
  SRL_TRY(f->ops->upload(f->d_obs, obs, (size_t)n * f->O * sizeof(float)));
  if (q) {
    SRL_TRY(eval_net(f, f->qt[0], f->h_q1, f->d_sa, n));
    SRL_TRY(eval_net(f, f->qt[1], f->h_q2, f->d_sa, n));
    pair_min(q, f->h_q1, f->h_q2, n);
  }
  if (qh) {
    SRL_TRY(eval_net(f, f->qht[0], f->h_qh1, f->d_sa, n));
    SRL_TRY(eval_net(f, f->qht[1], f->h_qh2, f->d_sa, n));
    pair_max(qh, f->h_qh1, f->h_qh2, n);
  }
  if (v) SRL_TRY(eval_net(f, f->v, v, f->d_obs, n));
  if (vh) SRL_TRY(eval_net(f, f->vh, vh, f->d_obs, n));
  return SRL_OK;
}


//---- the update ----------------------------------------------------------------------------------

static void stat(srl_offline_stats *st, const char *name, double value) {
  if (!st) return;
  if (st->n < 0) st->n = 0;
  if (st->n >= SRL_OFFLINE_STATS_MAX) return;
  st->name[st->n] = name;
  st->value[st->n++] = value;
}


static int check_batch(const srl_fisor *f, const srl_offline_batch *b) {
  if (!b || !b->obs || !b->act || !b->reward || !b->cost || !b->next_obs || !b->done)
    return srl_error(SRL_EINVAL,
                     "fisor update: batch lacks obs, act, reward, cost, next_obs or done");
  if (b->n != f->B)
    return srl_error(SRL_EINVAL, "fisor update: batch of %d rows, created for %d", b->n, f->B);
  return SRL_OK;
}


// decoupled weight decay on the kernels (every tensor but the biases), FISOR's AdamW mask
static void decay_kernels(srl_mlp *net, float factor) {
  for (int i = 0; i < net->n_tensors; i++) {
    const srl_nn_tensor *t = &net->tensors[i];
    size_t len = strlen(t->name);
    if (len >= 5 && !strcmp(t->name + len - 5, ".bias")) continue;
    net->ops->scale(net->params + t->offset, factor, t->numel);
  }
}


int srl_fisor_update_actor(srl_fisor *f, const srl_offline_batch *b, srl_offline_stats *st) {
  SRL_TRY(check_batch(f, b));
  int B = f->B, O = f->O, A = f->A, Ba = f->Ba;

  // weights of every row from the critics before this update's critic steps
  SRL_TRY(upload_sa(f, b->obs, b->act, B));
  SRL_TRY(f->ops->upload(f->d_obs, b->obs, (size_t)B * O * sizeof(float)));
  SRL_TRY(eval_net(f, f->qt[0], f->h_q1, f->d_sa, B));
  SRL_TRY(eval_net(f, f->qt[1], f->h_q2, f->d_sa, B));
  SRL_TRY(eval_net(f, f->qht[0], f->h_qh1, f->d_sa, B));
  SRL_TRY(eval_net(f, f->qht[1], f->h_qh2, f->d_sa, B));
  SRL_TRY(eval_net(f, f->v, f->h_v, f->d_obs, B));
  SRL_TRY(eval_net(f, f->vh, f->h_vh, f->d_obs, B));
  pair_min(f->h_qmin, f->h_q1, f->h_q2, B);
  pair_max(f->h_qhmax, f->h_qh1, f->h_qh2, B);
  int unsafe = srl_fisor_weights(f->h_w, f->h_qmin, f->h_v, f->h_qhmax, f->h_vh, B, &f->p);

  // one actor step per slice: noise the data actions, regress the noise with the weights
  double loss_sum = 0;
  float lr = 0;
  srl_diffusion_set_training(f->actor, 1);
  for (int s = 0; s < f->p.actor_splits; s++) {
    const float *obs = b->obs + (size_t)s * Ba * O, *act = b->act + (size_t)s * Ba * A;
    const float *w = f->h_w + (size_t)s * Ba;
    for (int r = 0; r < Ba; r++) f->h_t[r] = (int)srl_rng_int(f->rng, (unsigned long)f->p.T);
    srl_rng_fill_normal(f->rng, f->h_eps, (size_t)Ba * A, 0.0f, 1.0f);
    srl_ddpm_noise(f->h_xt, act, f->h_eps, f->h_t, Ba, A, &f->sched);
    srl_diffusion_zero_grad(f->actor);
    int rc = srl_diffusion_forward(f->actor, f->h_eh, f->h_xt, obs, f->h_t, Ba);
    if (rc < 0) {
      srl_diffusion_set_training(f->actor, 0);
      return rc;
    }
    double loss = srl_fisor_actor_loss(f->h_g, f->h_eh, f->h_eps, w, Ba, A);
    if (!isfinite(loss)) {
      srl_diffusion_set_training(f->actor, 0);
      return srl_error(SRL_ENONFINITE,
                       "fisor: actor loss is %g at update %lld (weights or prediction not "
                       "finite); parameters left unchanged",
                       loss, (long long)f->steps);
    }
    rc = srl_diffusion_backward(f->actor, f->h_g);
    lr = srl_lr_at(&f->lr, f->actor_steps);
    if (rc == 0 && f->p.actor_weight_decay > 0) {
      float factor = 1.0f - lr * (float)f->p.actor_weight_decay;
      decay_kernels(f->actor->cond, factor);
      decay_kernels(f->actor->eps, factor);
    }
    if (rc == 0)
      rc = srl_optim_step(f->opt_cond, f->actor->cond->params, f->actor->cond->grads, lr);
    if (rc == 0) rc = srl_optim_step(f->opt_eps, f->actor->eps->params, f->actor->eps->grads, lr);
    if (rc == 0) rc = srl_diffusion_polyak(f->ema, f->actor, (float)f->p.actor_ema);
    if (rc < 0) {
      srl_diffusion_set_training(f->actor, 0);
      return rc;
    }
    f->actor_steps++;
    loss_sum += loss;
  }
  srl_diffusion_set_training(f->actor, 0);
  stat(st, "loss_actor", loss_sum / f->p.actor_splits);
  stat(st, "weight", mean_of(f->h_w, B));
  stat(st, "unsafe", (double)unsafe / B);
  stat(st, "lr_actor", lr);
  return SRL_OK;
}


// one value net's expectile step on d_obs against target rows tgt (host, n)
static int value_step(srl_fisor *f, srl_mlp *net, srl_optim *opt, float *pred, const float *tgt,
                      int n, double tau, int reversed, float lr, const char *what, double *loss) {
  srl_mlp_zero_grad(net);
  SRL_TRY(eval_net(f, net, pred, f->d_obs, n));
  *loss = srl_fisor_expectile(f->h_dv, tgt, pred, n, tau, reversed);
  if (!isfinite(*loss))
    return srl_error(SRL_ENONFINITE, "fisor: %s loss is %g at update %lld; parameters unchanged",
                     what, *loss, (long long)f->steps);
  SRL_TRY(f->ops->upload(f->d_dy, f->h_dv, (size_t)n * sizeof(float)));
  SRL_TRY(srl_mlp_backward(net, NULL, f->d_dy));
  return srl_optim_step(opt, net->params, net->grads, lr);
}


// both ensemble members regress the targets in h_y: loss mean over members and rows, then
// their Adam steps and the targets' polyak averages
static int critic_step(srl_fisor *f, srl_mlp **net, srl_optim **opt, srl_mlp **targ, int n,
                       const char *what, double *loss, double *mean) {
  const srl_ops *o = f->ops;
  SRL_TRY(o->upload(f->d_y, f->h_y, (size_t)n * sizeof(float)));
  double l = 0, m = 0;
  for (int i = 0; i < 2; i++) {
    srl_mlp_zero_grad(net[i]);
    SRL_TRY(srl_mlp_forward(net[i], f->d_sa, n));
    l += 0.5 * o->mse(f->d_dy, net[i]->out, f->d_y, (size_t)n, 0.5f);
    m += 0.5 * o->sum(net[i]->out, (size_t)n) / n;
    SRL_TRY(srl_mlp_backward(net[i], NULL, f->d_dy));
  }
  *loss = l, *mean = m;
  if (!isfinite(l))
    return srl_error(SRL_ENONFINITE, "fisor: %s loss is %g at update %lld; parameters unchanged",
                     what, l, (long long)f->steps);
  float lr = (float)f->p.critic_lr;
  for (int i = 0; i < 2; i++) SRL_TRY(srl_optim_step(opt[i], net[i]->params, net[i]->grads, lr));
  for (int i = 0; i < 2; i++) SRL_TRY(srl_mlp_polyak(targ[i], net[i], (float)f->p.tau));
  return SRL_OK;
}


int srl_fisor_update_critics(srl_fisor *f, const srl_offline_batch *b, srl_offline_stats *st) {
  SRL_TRY(check_batch(f, b));
  const srl_ops *o = f->ops;
  int n = f->Bc, O = f->O;
  float vlr = (float)f->p.value_lr;
  double lv, lq, lvh, lqh, qm, qhm;

  // the first Bc rows: [s, a], s and s' on the device
  SRL_TRY(upload_sa(f, b->obs, b->act, n));
  SRL_TRY(o->upload(f->d_obs, b->obs, (size_t)n * O * sizeof(float)));
  SRL_TRY(o->upload(f->d_nobs, b->next_obs, (size_t)n * O * sizeof(float)));

  // V: expectile of min_i Qtarg_i − V
  SRL_TRY(eval_net(f, f->qt[0], f->h_q1, f->d_sa, n));
  SRL_TRY(eval_net(f, f->qt[1], f->h_q2, f->d_sa, n));
  pair_min(f->h_qmin, f->h_q1, f->h_q2, n);
  SRL_TRY(
      value_step(f, f->v, f->opt_v, f->h_v, f->h_qmin, n, f->p.expectile, 0, vlr, "value", &lv));
  double vm = mean_of(f->h_v, n);

  // Q: r + γ·m·V(s') with the updated V
  SRL_TRY(eval_net(f, f->v, f->h_vn, f->d_nobs, n));
  srl_fisor_reward_targets(f->h_y, b->reward, b->done, f->h_vn, n, f->p.gamma);
  SRL_TRY(critic_step(f, f->q, f->opt_q, f->qt, n, "reward critic", &lq, &qm));

  // Vh: reversed expectile of max_i Qhtarg_i − Vh
  SRL_TRY(eval_net(f, f->qht[0], f->h_qh1, f->d_sa, n));
  SRL_TRY(eval_net(f, f->qht[1], f->h_qh2, f->d_sa, n));
  pair_max(f->h_qhmax, f->h_qh1, f->h_qh2, n);
  SRL_TRY(value_step(f, f->vh, f->opt_vh, f->h_vh, f->h_qhmax, n, f->p.cost_expectile, 1, vlr,
                     "feasibility value", &lvh));
  double vhm = mean_of(f->h_vh, n);

  // Qh: the HJ backup with the updated Vh
  srl_fisor_constraint(f->h_h, b->cost, n, f->p.cost_scale);
  SRL_TRY(eval_net(f, f->vh, f->h_vn, f->d_nobs, n));
  srl_fisor_hj_targets(f->h_y, f->h_h, b->done, f->h_vn, n, f->p.gamma);
  SRL_TRY(critic_step(f, f->qh, f->opt_qh, f->qht, n, "feasibility critic", &lqh, &qhm));

  f->steps++;
  stat(st, "loss_v", lv);
  stat(st, "loss_q", lq);
  stat(st, "loss_vh", lvh);
  stat(st, "loss_qh", lqh);
  stat(st, "v", vm);
  stat(st, "q", qm);
  stat(st, "vh", vhm);
  stat(st, "qh", qhm);
  return SRL_OK;
}


// A warmup update: the critics' step alone, with the actor's statistics in their usual places.
// The actor's loss and mean weight read 0; unsafe is the share of critic rows with Vh > 0.
static int warmup_update(srl_fisor *f, const srl_offline_batch *b, srl_offline_stats *st) {
  stat(st, "loss_actor", 0);
  stat(st, "weight", 0);
  int unsafe_at = st ? st->n : 0;
  stat(st, "unsafe", 0);
  stat(st, "lr_actor", srl_lr_at(&f->lr, f->actor_steps));
  SRL_TRY(srl_fisor_update_critics(f, b, st));
  int unsafe = 0;
  for (int i = 0; i < f->Bc; i++) unsafe += f->h_vh[i] > 0;
  if (st && unsafe_at < st->n) st->value[unsafe_at] = (double)unsafe / f->Bc;
  return SRL_OK;
}


int srl_fisor_update(srl_fisor *f, const srl_offline_batch *b, srl_offline_stats *st) {
  if (st) st->n = 0;
  // FISOR's critics never read the actor, so training them first changes no critic value
  if (f->steps < f->p.critic_warmup) return warmup_update(f, b, st);
  SRL_TRY(srl_fisor_update_actor(f, b, st));
  return srl_fisor_update_critics(f, b, st);
}


//---- acting --------------------------------------------------------------------------------------

int srl_fisor_act(srl_fisor *f, float *act, const float *obs, int n, srl_rng *rng) {
  if (n < 1 || n > f->max_act)
    return srl_error(SRL_ERANGE, "fisor act: %d observations outside [1, %d]", n, f->max_act);
  if (!rng) return srl_error(SRL_EINVAL, "fisor act: NULL rng");
  int O = f->O, A = f->A, N = f->N;
  for (int i0 = 0; i0 < n; i0 += f->chunk) {
    // N copies of each observation of the chunk, one candidate each from the EMA actor
    int m = n - i0 < f->chunk ? n - i0 : f->chunk, R = m * N;
    const float *o = obs + (size_t)i0 * O;
    for (int i = 0; i < m; i++)
      for (int k = 0; k < N; k++)
        memcpy(f->h_obsr + ((size_t)i * N + k) * O, o + (size_t)i * O, (size_t)O * sizeof(float));
    SRL_TRY(srl_diffusion_sample(f->ema, f->h_cand, f->h_obsr, R, &f->sched, rng,
                                 (float)f->p.ddpm_temperature, f->p.clip_sampler, 0));
    // the candidate with the smallest max Qh (or the largest min Q)
    SRL_TRY(upload_sa(f, f->h_obsr, f->h_cand, R));
    srl_mlp **c = f->maximize ? f->qt : f->qht;
    SRL_TRY(eval_net(f, c[0], f->h_q1, f->d_sa, R));
    SRL_TRY(eval_net(f, c[1], f->h_q2, f->d_sa, R));
    srl_fisor_select(f->h_idx, f->h_q1, f->h_q2, m, N, f->maximize);
    for (int i = 0; i < m; i++)
      memcpy(act + (size_t)(i0 + i) * A, f->h_cand + ((size_t)i * N + f->h_idx[i]) * A,
             (size_t)A * sizeof(float));
  }
  return SRL_OK;
}


//---- checkpoints ---------------------------------------------------------------------------------

int srl_fisor_save(srl_fisor *f, srl_st_writer *w) {
  named_net nn[N_NETS];
  list_nets(f, nn);
  char name[160];
  for (int i = 0; i < N_NETS; i++) {
    const srl_mlp *net = nn[i].net;
    float *p = (float *)(f->img + f->img_off[i][0]);
    SRL_TRY(f->ops->download(p, net->params, net->n_params * sizeof(float)));
    for (int t = 0; t < net->n_tensors; t++) {
      const srl_nn_tensor *nt = &net->tensors[t];
      int64_t shape[2] = {nt->shape[0], nt->shape[1]};
      snprintf(name, sizeof name, "%s.%s", nn[i].prefix, nt->name);
      SRL_TRY(srl_st_add(w, name, SRL_DTYPE_F32, nt->ndim, shape, p + nt->offset));
    }
    if (!nn[i].opt) continue;
    float *m = (float *)(f->img + f->img_off[i][1]), *v = (float *)(f->img + f->img_off[i][2]);
    int64_t *step = (int64_t *)(f->img + f->img_off[i][3]), len = (int64_t)net->n_params, one = 1;
    SRL_TRY(srl_optim_state_download(nn[i].opt, m, v, step));
    snprintf(name, sizeof name, "optim.%s.m", nn[i].prefix);
    SRL_TRY(srl_st_add(w, name, SRL_DTYPE_F32, 1, &len, m));
    snprintf(name, sizeof name, "optim.%s.v", nn[i].prefix);
    SRL_TRY(srl_st_add(w, name, SRL_DTYPE_F32, 1, &len, v));
    snprintf(name, sizeof name, "optim.%s.step", nn[i].prefix);
    SRL_TRY(srl_st_add(w, name, SRL_DTYPE_I64, 1, &one, step));
  }
  int64_t *cnt = (int64_t *)(f->img + f->img_counters), two = 2, nr = (int64_t)f->rng_bytes;
  cnt[0] = f->steps, cnt[1] = f->actor_steps;
  // the actor's dropout stream, so a resumed run draws the masks an uninterrupted one would
  cnt[2] = (int64_t)f->actor->eps->dropout_seed, cnt[3] = (int64_t)f->actor->eps->dropout_step;
  srl_rng_state_save(f->rng, f->img + f->img_rng);
  SRL_TRY(srl_st_add(w, "fisor.steps", SRL_DTYPE_I64, 1, &two, cnt));
  SRL_TRY(srl_st_add(w, "fisor.dropout", SRL_DTYPE_I64, 1, &two, cnt + 2));
  return srl_st_add(w, "fisor.rng", SRL_DTYPE_U8, 1, &nr, f->img + f->img_rng);
}


// a tensor that must exist with this dtype and shape (ndim dims of shape)
static int expect(const srl_st_file *file, const char *name, srl_dtype dtype, int ndim,
                  const int64_t *shape, const srl_st_tensor **out) {
  const srl_st_tensor *t = srl_st_find(file, name);
  if (!t) return srl_error(SRL_ENOTFOUND, "fisor checkpoint: no tensor '%s'", name);
  int ok = t->dtype == dtype && t->ndim == ndim;
  for (int k = 0; ok && k < ndim; k++) ok = t->shape[k] == shape[k];
  if (!ok) {
    char want[64] = "", got[64] = "";
    for (int k = 0; k < ndim; k++)
      snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", k ? ", " : "",
               (long long)shape[k]);
    for (int k = 0; k < t->ndim && k < SRL_ST_MAX_DIMS; k++)
      snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", k ? ", " : "",
               (long long)t->shape[k]);
    return srl_error(SRL_EFORMAT, "fisor checkpoint: '%s' is %s [%s], expected %s [%s]", name,
                     srl_st_dtype_name(t->dtype), got, srl_st_dtype_name(dtype), want);
  }
  if (out) *out = t;
  return SRL_OK;
}


// check (apply = 0) or read and upload (apply = 1) every tensor
static int load_pass(srl_fisor *f, const srl_st_file *file, int apply) {
  named_net nn[N_NETS];
  list_nets(f, nn);
  char name[160];
  const srl_st_tensor *t;
  for (int i = 0; i < N_NETS; i++) {
    srl_mlp *net = nn[i].net;
    float *p = (float *)(f->img + f->img_off[i][0]);
    if (apply) memset(p, 0, net->n_params * sizeof(float));
    for (int k = 0; k < net->n_tensors; k++) {
      const srl_nn_tensor *nt = &net->tensors[k];
      int64_t shape[2] = {nt->shape[0], nt->shape[1]};
      snprintf(name, sizeof name, "%s.%s", nn[i].prefix, nt->name);
      SRL_TRY(expect(file, name, SRL_DTYPE_F32, nt->ndim, shape, NULL));
      if (apply) SRL_TRY(srl_st_read_f32(file, name, p + nt->offset, nt->numel));
    }
    if (apply) SRL_TRY(f->ops->upload(net->params, p, net->n_params * sizeof(float)));
    if (!nn[i].opt) continue;
    int64_t len = (int64_t)net->n_params, one = 1;
    float *m = (float *)(f->img + f->img_off[i][1]), *v = (float *)(f->img + f->img_off[i][2]);
    snprintf(name, sizeof name, "optim.%s.m", nn[i].prefix);
    SRL_TRY(expect(file, name, SRL_DTYPE_F32, 1, &len, NULL));
    if (apply) SRL_TRY(srl_st_read_f32(file, name, m, net->n_params));
    snprintf(name, sizeof name, "optim.%s.v", nn[i].prefix);
    SRL_TRY(expect(file, name, SRL_DTYPE_F32, 1, &len, NULL));
    if (apply) SRL_TRY(srl_st_read_f32(file, name, v, net->n_params));
    snprintf(name, sizeof name, "optim.%s.step", nn[i].prefix);
    SRL_TRY(expect(file, name, SRL_DTYPE_I64, 1, &one, &t));
    int64_t step;
    memcpy(&step, t->data, sizeof step);
    if (step < 0)
      return srl_error(SRL_EFORMAT, "fisor checkpoint: '%s' = %lld is negative", name,
                       (long long)step);
    if (apply) SRL_TRY(srl_optim_state_upload(nn[i].opt, m, v, step));
  }
  int64_t two = 2, nr = (int64_t)f->rng_bytes, cnt[4];
  SRL_TRY(expect(file, "fisor.steps", SRL_DTYPE_I64, 1, &two, &t));
  memcpy(cnt, t->data, 2 * sizeof *cnt);
  if (cnt[0] < 0 || cnt[1] < 0)
    return srl_error(SRL_EFORMAT, "fisor checkpoint: negative counters in 'fisor.steps'");
  SRL_TRY(expect(file, "fisor.dropout", SRL_DTYPE_I64, 1, &two, &t));
  memcpy(cnt + 2, t->data, 2 * sizeof *cnt);
  SRL_TRY(expect(file, "fisor.rng", SRL_DTYPE_U8, 1, &nr, &t));
  if (!apply) return SRL_OK;
  SRL_TRY(srl_rng_state_load(f->rng, t->data, t->nbytes));
  f->steps = cnt[0], f->actor_steps = cnt[1];
  f->actor->eps->dropout_seed = (uint64_t)cnt[2], f->actor->eps->dropout_step = (uint64_t)cnt[3];
  return SRL_OK;
}


int srl_fisor_load(srl_fisor *f, const srl_st_file *file) {
  SRL_TRY(load_pass(f, file, 0));  // everything present and shaped before anything changes
  return load_pass(f, file, 1);
}


//---- the offline table entry ---------------------------------------------------------------------

static int t_create(void **out, const srl_offline_setup *setup, const void *params) {
  srl_fisor *f = NULL;
  int rc = srl_fisor_create(&f, setup, params);
  *out = f;
  return rc;
}
static void t_destroy(void *a) {
  srl_fisor_destroy(a);
}
static int t_update(void *a, const srl_offline_batch *b, srl_offline_stats *st) {
  return srl_fisor_update(a, b, st);
}
static int t_act(void *a, float *act, const float *obs, int n, srl_rng *rng) {
  return srl_fisor_act(a, act, obs, n, rng);
}
static int t_save(void *a, srl_st_writer *w) {
  return srl_fisor_save(a, w);
}
static int t_load(void *a, const srl_st_file *f) {
  return srl_fisor_load(a, f);
}

const srl_offline_algo srl_offline_fisor = {
    .name = "FISOR",
    .section = "fisor",
    .params_size = sizeof(srl_fisor_params),
    .fields = srl_fisor_fields,
    .n_fields = N_FIELDS,
    .safe_episodes_only = 0,
    .create = t_create,
    .destroy = t_destroy,
    .update = t_update,
    .act = t_act,
    .save = t_save,
    .load = t_load,
};

// baselines.h: the offline baselines of OSRL (liuzuxin/OSRL) on the op table: BC-All and BC-Safe
// (bc.c), BCQ-Lag (bcq_lag.c), CPQ (cpq.c) and COptiDICE (coptidice.c), their parameter structs
// with OSRL's defaults, the pure pieces of their losses (exposed for tests), and the machinery
// they share (baselines.c: critic sets, scalar Adam, checkpoints of named networks).
//
// Units: the trainer scales rewards and costs (OSRL's reward_scale 0.1 and cost_scale 1 are
// trainer settings, task.reward_scale / task.cost_scale) and maps actions into [-1, 1]. Every
// algorithm uses the trainer's discount (setup->gamma, OSRL's 0.99) for its backups and its
// per-step cost threshold
//   qc_thres = k·(1 − γ^L)/(1 − γ)/L    (k = setup->cost_limit, L = setup->episode_len).
//
// Networks follow osrl/common/net.py: PyTorch's default Linear initialisation, ReLU critics
// (in → hidden... → 1), and for each algorithm the actor below. Every network runs on the setup's
// op table; per-row arithmetic (minima over ensembles, targets, the losses' gradients) runs on the
// host between one download and one upload, with every buffer sized at creation.
#ifndef SRL_OFFLINE_BASELINES_H
#define SRL_OFFLINE_BASELINES_H

#include <stddef.h>
#include <stdint.h>

#include "algos/offline/offline.h"
#include "core/nn.h"
#include "core/optim.h"
#include "core/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_BL_MAX_HIDDEN 8  // hidden layers of any baseline network
#define SRL_BL_MAX_Q 8       // networks in one critic ensemble

// The per-step cost threshold k(1 − γ^L)/(1 − γ)/L (k when γ = 1); 0 for L < 1.
double srl_baselines_qc_threshold(double cost_limit, double gamma, int episode_len);

//---- BC-All / BC-Safe (section "bc") -------------------------------------------------------------

// OSRL's BC: MLPActor obs → hidden (ReLU) → act (tanh), MSE to the data actions, Adam. BC-Safe is
// the same algorithm trained on the episodes whose cost is at most the cost limit (the trainer
// selects them: the table entry's safe_episodes_only).
typedef struct srl_bc_params {
  int n_hidden;
  int hidden[SRL_BL_MAX_HIDDEN];  // [256, 256]
  double lr;                      // 1e-3
} srl_bc_params;

extern const srl_cfg_field srl_bc_fields[];
extern const int srl_bc_n_fields;
int srl_bc_params_default(srl_bc_params *p);

typedef struct srl_bc srl_bc;
int srl_bc_create(srl_bc **out, const srl_offline_setup *setup, const srl_bc_params *p);
void srl_bc_destroy(srl_bc *b);
// one Adam step on the batch's MSE; stats: loss_actor
int srl_bc_update(srl_bc *b, const srl_offline_batch *batch, srl_offline_stats *st);
int srl_bc_act(srl_bc *b, float *act, const float *obs, int n);
srl_mlp *srl_bc_actor(srl_bc *b);

//---- BCQ-Lag (section "bcq_lag") -----------------------------------------------------------------

// OSRL's BCQL. Networks: the conditional VAE (vae.h); the perturbation actor
// ξ(s, â) = clamp(â + φ·tanh-MLP([s, â]), −1, 1) (tanh hidden layers) with a polyak copy;
// reward and cost critics as EnsembleDoubleQCritic: two heads of num_q (num_qc) ReLU networks,
// a head's value the minimum over its networks, with polyak targets. One update, in OSRL's order:
//   VAE step on (s, a);
//   reward critics: for N = sample_action_num decoded actions per s', a' = ξ_old(s', â),
//     y = r + γ(1 − d)·max_k [λ·min(h1, h2) + (1 − λ)·max(h1, h2)] (h: target heads, λ = lmbda),
//     loss Σ_nets mean (Q − y)²;
//   cost critics: the same with fresh samples and y = c + γ·max_k [...] (no done mask, as OSRL);
//   actor: a = ξ(s, â), Q = min over the reward networks, Qc = min over the cost networks,
//     multiplier from the PID controller on Qc, loss −mean Q + mean((Qc − qc_thres)·multiplier);
//   polyak of both critics' targets and of the actor's copy.
// Acting: ξ(s, â) with one decoded action (latent from the act rng, clipped to ±0.5).
typedef struct srl_bcq_lag_params {
  int n_actor_hidden;
  int actor_hidden[SRL_BL_MAX_HIDDEN];  // [256, 256] (tanh)
  int n_critic_hidden;
  int critic_hidden[SRL_BL_MAX_HIDDEN];  // [256, 256] (ReLU)
  int vae_hidden;                        // 400
  int num_q, num_qc;                     // 2, 2 networks per head
  int sample_action_num;                 // 10
  double tau;                            // 0.005
  double phi;                            // 0.05
  double lmbda;                          // 0.75
  double beta;                           // 0.5 KL weight of the VAE
  int n_pid;
  double pid[3];     // [0.1, 0.003, 0.001] KP, KI, KD
  double actor_lr;   // 1e-3
  double critic_lr;  // 1e-3
  double vae_lr;     // 1e-3
} srl_bcq_lag_params;

extern const srl_cfg_field srl_bcq_lag_fields[];
extern const int srl_bcq_lag_n_fields;
int srl_bcq_lag_params_default(srl_bcq_lag_params *p);

// The BCQ target of n rows from N samples each (sample k of row i at i·N + k): per sample
// v = λ·min(h1, h2) + (1 − λ)·max(h1, h2), y_i = base_i + γ·m_i·max_k v with m_i = 1 − done_i,
// or m_i = 1 when done is NULL (the cost backup).
void srl_bcq_lag_targets(float *y, const float *h1, const float *h2, const float *base,
                         const float *done, int n, int N, double lmbda, double gamma);

// OSRL's LagrangianPIDController: with e = mean(qc − thres) over a batch,
//   I = relu(I + e);  multiplier = relu(KP·relu(e) + KI·I + KD·relu(e − e_old));  e_old = e.
// State in float32 as torch keeps it; starts at e_old = I = 0.
typedef struct srl_pid_lagrangian {
  double kp, ki, kd, thres;
  float err_old, integral, multiplier;
} srl_pid_lagrangian;
double srl_pid_lagrangian_control(srl_pid_lagrangian *pid, const float *qc, int n);

typedef struct srl_bcq_lag srl_bcq_lag;
int srl_bcq_lag_create(srl_bcq_lag **out, const srl_offline_setup *setup,
                       const srl_bcq_lag_params *p);
void srl_bcq_lag_destroy(srl_bcq_lag *b);
// stats: loss_vae, loss_critic, loss_cost_critic, loss_actor, qc_penalty, lambda, q, qc
int srl_bcq_lag_update(srl_bcq_lag *b, const srl_offline_batch *batch, srl_offline_stats *st);
int srl_bcq_lag_act(srl_bcq_lag *b, float *act, const float *obs, int n, srl_rng *rng);
// The actor's objective on n ≤ batch rows with given VAE actions â (n × A) and multiplier:
// −mean min Q(s, ξ(s, â)) + mean((min Qc − qc_thres)·multiplier). grad = 1: the actor's gradients
// are zeroed and then hold ∂loss/∂θ (the critics' gradients are left dirty).
int srl_bcq_lag_actor_objective(srl_bcq_lag *b, double *loss, const float *obs, const float *a_vae,
                                int n, double multiplier, int grad);
srl_mlp *srl_bcq_lag_actor(srl_bcq_lag *b);
const srl_pid_lagrangian *srl_bcq_lag_pid(const srl_bcq_lag *b);

//---- CPQ (section "cpq") -------------------------------------------------------------------------

// OSRL's CPQ. Networks: the VAE; a squashed Gaussian actor (ReLU MLP to [μ, log σ], log σ clamped
// to [−20, 2], a = tanh(μ + σ·ε)); reward and cost critics as EnsembleQCritic (num_q, num_qc ReLU
// networks, value = minimum) with polyak targets; log α (starts at 0). One update:
//   VAE step;
//   reward critics: a' ~ π(s'), y = r + γ(1 − d)·1[Qc_targ(s', a') ≤ q_thres]·Q_targ(s', a');
//   cost critics: a' ~ π(s') again, y = c + γ·Qc_targ(s', a'); OOD: N pre-tanh Gaussian draws per
//     s (as OSRL samples pi_dist), their VAE KL (mean over the latent), q = the 0.75 quantile of
//     all N·B KLs, Qc_ood(s) = mean_k 1[KL ≥ q]·Qc_targ(s, u_k);
//     loss Σ_nets mean (Qc − y)² − α·(mean Qc_ood − qc_thres) (the OOD term carries no gradient);
//     then log α += alpha_lr·α·(qc_thres − mean Qc_ood), clamped to ±5 (qc_thres =
//     qc_scalar·q_thres);
//   actor: a ~ π(s) (reparameterised), loss −mean(1[Qc(s, a) ≤ q_thres]·Q(s, a));
//   polyak of both critics' targets.
// Acting: tanh(μ) (OSRL evaluates deterministically).
typedef struct srl_cpq_params {
  int n_actor_hidden;
  int actor_hidden[SRL_BL_MAX_HIDDEN];  // [256, 256]
  int n_critic_hidden;
  int critic_hidden[SRL_BL_MAX_HIDDEN];  // [256, 256]
  int vae_hidden;                        // 400
  int num_q, num_qc;                     // 2, 2
  int sample_action_num;                 // 10
  double tau;                            // 0.005
  double beta;                           // 0.5
  double qc_scalar;                      // 1.5
  double actor_lr;                       // 1e-4
  double critic_lr;                      // 1e-3
  double alpha_lr;                       // 1e-4
  double vae_lr;                         // 1e-3
} srl_cpq_params;

extern const srl_cfg_field srl_cpq_fields[];
extern const int srl_cpq_n_fields;
int srl_cpq_params_default(srl_cpq_params *p);

// CPQ's reward backup y = r + γ·(1 − d)·1[qc_next ≤ q_thres]·q_next.
void srl_cpq_reward_targets(float *y, const float *r, const float *done, const float *q_next,
                            const float *qc_next, int n, double gamma, double q_thres);
// torch.quantile(x, q) with linear interpolation over n values (sorted copy in scratch (n)).
double srl_quantile(const float *x, int n, double q, float *scratch);
// The OOD cost of n rows from N samples each (sample k of row i at k·n + i, OSRL's order):
// quantile = srl_quantile(kl, N·n, 0.75), qc_ood_i = mean_k 1[kl ≥ quantile]·qc. Returns the
// quantile; scratch holds N·n floats.
double srl_cpq_ood(float *qc_ood, const float *kl, const float *qc, int n, int N, float *scratch);
// log α after one update: clamp(log α + lr·e^{log α}·(qc_thres − qc_ood_mean), −5, 5).
double srl_cpq_log_alpha_update(double log_alpha, double lr, double qc_thres, double qc_ood_mean);

typedef struct srl_cpq srl_cpq;
int srl_cpq_create(srl_cpq **out, const srl_offline_setup *setup, const srl_cpq_params *p);
void srl_cpq_destroy(srl_cpq *c);
// stats: loss_vae, loss_critic, loss_cost_critic, loss_actor, alpha, qc_ood, q, qc
int srl_cpq_update(srl_cpq *c, const srl_offline_batch *batch, srl_offline_stats *st);
int srl_cpq_act(srl_cpq *c, float *act, const float *obs, int n);
double srl_cpq_log_alpha(const srl_cpq *c);
// The actor's objective −mean(1[Qc(s, a) ≤ q_thres]·Q(s, a)) on n ≤ batch rows with a = tanh(μ(s)
// + σ(s)·ε) for given draws eps (n × A). grad = 1: the actor's gradients are zeroed and then hold
// ∂loss/∂θ (the critics' gradients are left dirty).
int srl_cpq_actor_objective(srl_cpq *c, double *loss, const float *obs, const float *eps, int n,
                            int grad);
srl_mlp *srl_cpq_actor(srl_cpq *c);
// min over the reward critics and over the cost critics (not the targets) of n ≤ max(batch,
// max_act_batch) rows (obs, act); either output may be NULL.
int srl_cpq_critic_values(srl_cpq *c, float *q, float *qc, const float *obs, const float *act,
                          int n);

//---- squashed Gaussian actors (CPQ, COptiDICE) ---------------------------------------------------

// A network output row is [μ (A), raw log σ (A)]; log σ = clamp(raw, −20, 2) (OSRL's LOG_STD_MIN,
// LOG_STD_MAX). Sample: u = μ + σ·ε, a = tanh(u), for n rows.
void srl_squashed_gaussian_sample(float *a, const float *out, const float *eps, int n, int A);
// Backward of a = tanh(μ + σ·ε): dout (n × 2A) = ∂L/∂[μ, raw log σ] from da (n × A) = ∂L/∂a
// (zero for a clamped log σ).
void srl_squashed_gaussian_backward(float *dout, const float *da, const float *out,
                                    const float *eps, int n, int A);

//---- COptiDICE (section "coptidice") -------------------------------------------------------------

// OSRL's COptiDICE. Networks: the squashed Gaussian actor; ν and χ as EnsembleQCritic over the
// observation (num_nu, num_chi networks, value = minimum); scalars λ and τ as softplus of
// parameters initialised at 1. One update (batch rows s, a, r, c, s', d; initial observations
// s0 from init_obs, one per row):
//   e = r − λ·c + γ(1 − d)·ν(s') − ν(s),  w = relu((f')⁻¹(e/α));
//   χ, τ (when cost_ub_epsilon > 0): ℓ = (1 − γ)·χ(s0) + w̄·(c + γ(1 − d)·χ(s') − χ(s)),
//     p = softmax(ℓ/τ̄) over the batch, weights = B·p, D_kl = mean(weights·log weights − weights
//     + 1), Ĉ = mean(weights·w̄·c), χ loss mean(weights·ℓ), τ loss τ·(ε − D_kl);
//     (ε = 0: Ĉ = mean(w̄·c), no χ or τ step)
//   ν loss (1 − γ)·mean ν(s0) + mean(w·e − α·f(w))  (gradient through w as well);
//   λ loss λ·(qc_thres − Ĉ);
//   policy: with n_s = noise·σ_s·N(0, I) and n_a = noise·σ_a·N(0, I) (σ: the data's std per
//     dimension, estimated from every batch seen), w from the updated ν, loss
//     −mean(w·Σ_j log N(a + n_a; μ(s + n_s), σ(s + n_s))) with the unsquashed Gaussian, as OSRL.
// Acting: tanh(μ). Adam everywhere (actor_lr, critic_lr for ν and χ, scalar_lr for λ and τ).
typedef enum srl_fdiv { SRL_FDIV_SOFTCHI = 0, SRL_FDIV_CHI2, SRL_FDIV_KL } srl_fdiv;
int srl_fdiv_from_name(const char *name);  // -1 when unknown

typedef struct srl_coptidice_params {
  int n_actor_hidden;
  int actor_hidden[SRL_BL_MAX_HIDDEN];  // [256, 256]
  int n_critic_hidden;
  int critic_hidden[SRL_BL_MAX_HIDDEN];  // [256, 256] ν and χ
  double alpha;                          // 0.5
  double cost_ub_epsilon;                // 0.01
  char f_type[12];                       // softchi | chi2 | kl
  int num_nu, num_chi;                   // 2, 2
  double noise;                          // 0.1 of the data std on observations and actions
  double actor_lr;                       // 1e-4
  double critic_lr;                      // 1e-4
  double scalar_lr;                      // 1e-4
} srl_coptidice_params;

extern const srl_cfg_field srl_coptidice_fields[];
extern const int srl_coptidice_n_fields;
int srl_coptidice_params_default(srl_coptidice_params *p);

// f and (f')⁻¹ of OSRL's get_f_div_fn:
//   softchi f(x) = x(log(x + 1e-10) − 1) + 1 (x < 1), ½(x − 1)² (x ≥ 1); (f')⁻¹(y) = e^y (y < 0),
//           y + 1 (y ≥ 0)
//   chi2    f(x) = ½(x − 1)²; (f')⁻¹(y) = y + 1
//   kl      f(x) = x log(x + 1e-10); (f')⁻¹(y) = e^{y − 1}
double srl_fdiv_f(srl_fdiv kind, double x);
double srl_fdiv_f_prime(srl_fdiv kind, double x);  // f' of the formula above
double srl_fdiv_f_prime_inv(srl_fdiv kind, double y);
double srl_fdiv_f_prime_inv_deriv(srl_fdiv kind, double y);  // d/dy (f')⁻¹(y)

// e = r − λ·c + γ(1 − d)·ν' − ν for n rows.
void srl_coptidice_residual(float *e, const float *r, const float *c, const float *done,
                            const float *nu, const float *nu_next, int n, double lambda,
                            double gamma);
// w = relu((f')⁻¹(e/α)); dw (may be NULL) = ∂w/∂e.
void srl_coptidice_w(float *w, float *dw, const float *e, int n, double alpha, srl_fdiv kind);
// ν loss (1 − γ)·mean(nu_init) + mean(w·e − α·f(w)), w = w(e); gradients (each may be NULL)
// with respect to ν(s), ν(s') and ν(s0) of each row (e from srl_coptidice_residual with done).
double srl_coptidice_nu_loss(float *dnu, float *dnu_next, float *dnu_init, const float *e,
                             const float *done, const float *nu_init, int n, double alpha,
                             double gamma, srl_fdiv kind);

typedef struct srl_coptidice_chi_out {
  double loss;        // mean(weights·ℓ)
  double d_kl;        // mean(weights·log weights − weights + 1)
  double weighted_c;  // Ĉ = mean(weights·w·c)
} srl_coptidice_chi_out;
// The χ pieces for n rows (w held fixed); gradients of the loss (each may be NULL) with respect
// to χ(s), χ(s'), χ(s0).
void srl_coptidice_chi_loss(srl_coptidice_chi_out *out, float *dchi, float *dchi_next,
                            float *dchi_init, const float *chi, const float *chi_next,
                            const float *chi_init, const float *w, const float *c,
                            const float *done, int n, double gamma, double tau);
// λ loss softplus(p)·(qc_thres − Ĉ) at the raw parameter p; *grad = ∂loss/∂p.
double srl_coptidice_lambda_loss(double *grad, double param, double qc_thres, double weighted_c);
// Policy loss −mean_i w_i·Σ_j log N(x_ij; μ_ij, σ_ij) for output rows [μ, raw log σ] (log σ
// clamped to [−20, 2]); dout (n × 2A, may be NULL) = ∂loss/∂out.
double srl_coptidice_policy_loss(float *dout, const float *out, const float *x, const float *w,
                                 int n, int A);

typedef struct srl_coptidice srl_coptidice;
int srl_coptidice_create(srl_coptidice **out, const srl_offline_setup *setup,
                         const srl_coptidice_params *p);
void srl_coptidice_destroy(srl_coptidice *c);
// stats: loss_nu, loss_chi, loss_lambda, loss_tau, loss_actor, lambda, tau, d_kl, df, td_error,
// weighted_c
int srl_coptidice_update(srl_coptidice *c, const srl_offline_batch *batch, srl_offline_stats *st);
int srl_coptidice_act(srl_coptidice *c, float *act, const float *obs, int n);
double srl_coptidice_lambda(const srl_coptidice *c);

//---- shared machinery (baselines.c) --------------------------------------------------------------

// A plain MLP with PyTorch's default initialisation (srl_mlp_create's): in → hidden → out.
int srl__bl_mlp(srl_mlp **out, const srl_ops *ops, int in, int n_hidden, const int *hidden,
                int out_dim, srl_act hidden_act, srl_act out_act, int rows, srl_rng *rng);

// n ReLU critics of one shape (in → hidden → 1), each with Adam and, when targets, a polyak copy.
typedef struct srl__qset {
  int n;
  srl_mlp *net[SRL_BL_MAX_Q], *targ[SRL_BL_MAX_Q];
  srl_optim *opt[SRL_BL_MAX_Q];
} srl__qset;
int srl__qset_create(srl__qset *q, const srl_ops *ops, int n, int in, int n_hidden,
                     const int *hidden, int rows, double lr, int targets, srl_rng *rng);
void srl__qset_free(srl__qset *q);
// forward nets k0..k1−1 (targets when targ) on device rows d_in and download each output into
// out[k − k0] (n floats each)
int srl__qset_eval(srl__qset *q, int targ, int k0, int k1, const float *d_in, int n, float **out);
// regress every network to device targets d_y (n): Σ_k mean (Q_k − y)², one Adam step each;
// d_dy is device scratch (n). The loss is checked finite before any step.
int srl__qset_regress(srl__qset *q, const float *d_in, const float *d_y, float *d_dy, int n,
                      double lr, double extra_loss, double *loss, const char *what);
int srl__qset_polyak(srl__qset *q, double tau);

// Element-wise minimum over k host arrays (n each) into out; idx (may be NULL) the argmin
// (first on ties, as torch.min).
void srl__min_rows(float *out, int *idx, float *const *v, int k, int n);

// [a, b] row by row into the host buffer h (n × (wa + wb)), then uploaded to d.
int srl__upload_cat(const srl_ops *ops, float *d, float *h, const float *a, int wa, const float *b,
                    int wb, int n);

// Append a statistic when there is room.
void srl__stat(srl_offline_stats *st, const char *name, double value);

// A scalar trained by torch.optim.Adam (β 0.9 / 0.999, eps 1e-8), in float32 as torch.
typedef struct srl__scalar_adam {
  float p, m, v;
  int64_t t;
} srl__scalar_adam;
void srl__scalar_adam_step(srl__scalar_adam *s, double grad, double lr);

// Checkpoint of named networks (with their optimizers), host arrays and rng streams. Save copies
// everything into an image allocated once (srl__ckpt_ready) that the writer references until
// the next save; load checks every tensor's presence, dtype and shape before changing anything.
#define SRL__CKPT_MAX_NETS 40
#define SRL__CKPT_MAX_EXTRA 8
typedef struct srl__ckpt {
  const srl_ops *ops;
  const char *who;  // "bcq_lag checkpoint"
  int n_nets, n_extra;
  struct {
    char name[48];
    srl_mlp *net;
    srl_optim *opt;
    size_t off[4];  // params, m, v, step
  } net[SRL__CKPT_MAX_NETS];
  struct {
    char name[48];
    srl_dtype dtype;
    int64_t len;  // elements
    void *ptr;    // host array; NULL for an rng
    srl_rng *rng;
    size_t off;
  } extra[SRL__CKPT_MAX_EXTRA];
  char *img;
} srl__ckpt;
void srl__ckpt_init(srl__ckpt *ck, const srl_ops *ops, const char *who);
int srl__ckpt_net(srl__ckpt *ck, const char *name, srl_mlp *net, srl_optim *opt);
// dtype F32 (float), I64 (int64_t) or U8
int srl__ckpt_array(srl__ckpt *ck, const char *name, srl_dtype dtype, void *ptr, int64_t len);
int srl__ckpt_rng(srl__ckpt *ck, const char *name, srl_rng *rng);
int srl__ckpt_ready(srl__ckpt *ck);
int srl__ckpt_save(srl__ckpt *ck, srl_st_writer *w);
int srl__ckpt_load(srl__ckpt *ck, const srl_st_file *f);
void srl__ckpt_free(srl__ckpt *ck);

#ifdef __cplusplus
}
#endif
#endif  // SRL_OFFLINE_BASELINES_H

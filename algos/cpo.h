// cpo.h: second-order updates of OmniSafe's Gaussian actor: TRPO-Lag and CPO (Achiam et al.
// 2017), after OmniSafe's base/natural_pg.py, base/trpo.py, naive_lagrange/trpo_lag.py and
// second_order/cpo.py.
//
// Both work on one epoch's data (obs, act, logp_old, adv_r, adv_c) on the actor-critic's device:
//   g = ∇ mean(ρ·A_r)  (TRPO-Lag: A = (A_r − λ·A_c)/(1 + λ)),  b = ∇ mean(ρ·A_c),  ρ = π/π_old,
// taken at θ_old. H is the Fisher of the trust-region measure, the mean KL(π_old‖π_θ) over states
// *and action dimensions* (OmniSafe's actor is a factorised Normal whose KL tensor is averaged
// whole), plus damping:
//   H·v = Jᵀ(J·v/σ²)/(N·A) on the mean head (J: the mean's Jacobian, computed exactly by a
//         forward-mode pass through the MLP) + (2/A)·v on log_std + cg_damping·v.
// x = H⁻¹g and p = H⁻¹b come from cg_iters steps of conjugate gradient (OmniSafe's
// conjugate_gradients: residual tolerance 1e-10, eps 1e-6 in the denominators).
//
// TRPO-Lag: step = √(2δ/xᵀHx)·x, then a line search of ls_steps (15) fractions 1, 0.8, 0.8², ...
// accepting the first with a finite loss that did not worsen and KL ≤ δ.
//
// CPO: with q = gᵀx, r = gᵀp, s = bᵀp, c = Jc − cost_limit, A = q − r²/s, B = 2δ − c²/s:
//   case 4  ‖b‖² ≤ 1e-6 and c < 0        step = √(2δ/q)·x            (plain trust-region step)
//   case 3  c < 0 and B < 0               step = √(2δ/q)·x            (whole region feasible)
//   case 2  c < 0 ≤ B                     step = (x − ν·p)/λ          (boundary cuts the region)
//   case 1  c ≥ 0 and B ≥ 0               step = (x − ν·p)/λ          (feasible part exists)
//   case 0  c ≥ 0 > B (or c not a number) step = −√(2δ/s)·p           (infeasible recovery)
// with, for cases 1-2, λ_a = √(A/B) projected onto Λ_a and λ_b = √(q/2δ) projected onto Λ_b,
//   Λ_a = [0, −r/c] and Λ_b = [−r/c, ∞) when c < 0, the other way round when c ≥ 0,
//   f_a(λ) = −½(A/λ + B·λ) + r·c/s,   f_b(λ) = −½(q/λ + 2δ·λ),
//   λ = λ_a if f_a(λ_a) ≥ f_b(λ_b) else λ_b,   ν = max(0, λ·c + r)/s,
// the paper's dual solution written for the reward gradient g. (OmniSafe and SafePO insert their
// reward-gradient r into the formulas of Achiam's code, which are written for the loss gradient,
// i.e. with −r: their Λ bounds, f_a and ν carry r with the wrong sign, and in cases 1-2 their
// step can leave the trust region or the constraint. tests/algos/test_cpo.c checks these
// formulas against a brute-force search. An empty Λ projects onto its lower end as in Achiam's
// code, which sends the choice to the other λ.)
// Line search: ls_steps (20) fractions, accepting the first where every quantity is finite, the
// reward loss did not worsen (checked only when case > 1), the cost surrogate rose by at most
// max(−c, 0), and KL ≤ δ. Nothing accepted → θ_old is kept. A non-finite Jc (no episode has
// finished yet) counts as c = −∞, so the update is the trust-region step on the reward alone.
//
// After the actor, the trainer's update (srl_onpolicy_cpo, srl_onpolicy_trpo_lag) fits both
// critics as OmniSafe's NaturalPG._update: update_iters shuffled passes of batch_size rows,
// reward critic then cost critic (srl_ac_critic_step), no KL early stop.
//
// The actor must be a plain MLP without layernorm or dropout (OmniSafe's actor). Its parameters
// are one flat block (actor->params, log_std included), so every step is an axpby on it.
// Everything runs on the actor-critic's op table; scalars come back through ops->sum.
#ifndef SRL_CPO_H
#define SRL_CPO_H

#include <stddef.h>

#include "algos/actor_critic.h"
#include "algos/onpolicy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct srl_cpo_config {
  float target_kl;   // δ: 0.01, the trust region on the mean KL(old‖new) (algo_cfgs.target_kl)
  float cg_damping;  // 0.1 (algo_cfgs.cg_damping)
  int cg_iters;      // 15 (algo_cfgs.cg_iters)
  int ls_steps;      // line-search fractions tried: CPO 20, TRPO-Lag 15 (OmniSafe's)
  float ls_decay;    // 0.8
  int fvp_sample_freq;  // 1: every k-th state enters the Fisher (algo_cfgs.fvp_sample_freq)
  float cost_limit;     // d: 25 (CPO only)
} srl_cpo_config;

// OmniSafe's CPO and TRPO-Lag defaults (they differ only in ls_steps).
srl_cpo_config srl_cpo_config_default(void);
srl_cpo_config srl_trpo_lag_config_default(void);

// One epoch's data, every array on the actor-critic's device.
typedef struct srl_cpo_batch {
  const float *obs;       // (n, obs_dim) normalised observations
  const float *act;       // (n, act_dim) actions taken
  const float *logp_old;  // (n) log-probabilities under the behaviour policy (= the actor now)
  const float *adv_r;     // (n) reward advantages (standardised)
  const float *adv_c;     // (n) cost advantages (centred); TRPO-Lag may pass NULL with λ = 0
  int n;
  float ep_cost;   // Jc: mean episode cost of the last window (CPO); NaN: none finished yet
  float lagrange;  // λ of TRPO-Lag's surrogate (A_r − λ·A_c)/(1 + λ); ignored by CPO
} srl_cpo_batch;

// What one actor update did (OmniSafe's Misc/* keys and more).
typedef struct srl_cpo_stats {
  int optim_case;   // CPO 0..4; -1 for TRPO-Lag
  int accept_step;  // line-search fraction accepted, 1-based; 0 when none was (θ_old kept)
  float step_frac;  // ls_decay^(accept_step − 1); 0 when none
  float c;          // Jc − cost_limit (CPO; −∞ when Jc is not a number)
  float loss_r_before, loss_c_before;  // −mean(ρ·A) (TRPO-Lag: its combined A), mean(ρ·A_c)
  float loss_r, loss_c;                // the same at the final parameters
  float loss_pi;  // OmniSafe's Loss/Loss_pi: CPO loss_r + loss_c, TRPO-Lag loss_r (final)
  float kl;       // mean KL(old‖new) over states and action dims at the final parameters
  float q, r, s, A, B, lambda, nu;  // CPO's dual quantities (r, A, B, λ, ν: 0 for TRPO-Lag)
  float xHx, alpha;                 // xᵀHx and √(2δ/(xᵀHx + 1e-8))
  float grad_norm, cost_grad_norm;  // ‖g‖, ‖b‖
  float x_norm, step_norm;          // ‖H⁻¹g‖ and the norm of the step taken
  int cg_iters_x, cg_iters_p;       // conjugate-gradient iterations run
} srl_cpo_stats;

//---- building blocks ----------------------------------------------------------------------------

// y = M·v for conjugate gradient; out and v are n floats on the op table's device, out ≠ v.
typedef int (*srl_matvec_fn)(void *ctx, float *out, const float *v);

// OmniSafe's conjugate gradient for M·x = rhs (n floats on ops' device, M symmetric positive
// definite): x = 0, r = d = rhs; per iteration z = M·d, α = rᵀr/(dᵀz + 1e-6), x += α·d,
// r −= α·z, stop when ‖r‖ < 1e-10, d = r + (r'ᵀr'/(rᵀr + 1e-6))·d. work holds 4·n floats;
// *iters_done (nullable) gets the iterations run.
int srl_cg_solve(const srl_ops *ops, float *x, const float *rhs, size_t n, int iters,
                 srl_matvec_fn mv, void *ctx, float *work, int *iters_done);

// CPO's quadratic model, from the vectors of the current update.
typedef struct srl_cpo_quad {
  double q, r, s;    // gᵀH⁻¹g, gᵀH⁻¹b, bᵀH⁻¹b
  double bb;         // ‖b‖²
  double c;          // Jc − cost_limit
  double target_kl;  // δ
} srl_cpo_quad;

typedef struct srl_cpo_solution {
  int optim_case;         // 0..4 as above
  double A, B;            // q − r²/s and 2δ − c²/s (0 in case 4)
  double lambda, nu;      // the dual solution
  double coef_x, coef_p;  // step = coef_x·H⁻¹g + coef_p·H⁻¹b
} srl_cpo_solution;

// CPO's case analysis and dual solution (host scalars; the small terms 1e-8 as OmniSafe).
void srl_cpo_solve(srl_cpo_solution *out, const srl_cpo_quad *in);

// Line-search acceptance: 1 to accept. CPO: every input finite, reward_improve ≥ 0 when
// optim_case > 1, cost_diff ≤ max(−c, 0), kl ≤ target_kl. TRPO: finite, loss_improve ≥ 0, kl ≤
// target_kl. (Improvements are before − after of the losses; cost_diff is after − before.)
int srl_cpo_accept(int optim_case, double reward_improve, double cost_diff, double kl, double c,
                   double target_kl);
int srl_trpo_accept(double loss_improve, double kl, double target_kl);

//---- the update workspace -----------------------------------------------------------------------

typedef struct srl_cpo srl_cpo;  // device scratch for updates of one actor-critic

// Scratch for epochs of up to max_rows rows on ac's device (one device block, one host block).
// Rows go through the actor in chunks of its max_batch. SRL_EUNSUPPORTED for an actor with
// layernorm, dropout or residual blocks.
int srl_cpo_create(srl_cpo **out, srl_actor_critic *ac, int max_rows);
void srl_cpo_destroy(srl_cpo *w);

// Floats in the actor's parameter block (the length of every vector below).
size_t srl_cpo_n_params(const srl_cpo *w);

// Start an update on b: remember θ_old, the old policy's means on b->obs and its log_std, and the
// Fisher states (every fvp_sample_freq-th row). srl_cpo_surrogate and srl_cpo_fvp then reuse the
// actor's activations: until the update ends only this module may run or change the actor
// (srl_cpo_eval excepted). The arrays of b must stay valid meanwhile.
int srl_cpo_begin(srl_cpo *w, const srl_cpo_batch *b, const srl_cpo_config *cfg);

// value = mean(ρ·adv) over the batch at the current parameters and grad (n_params, device) its
// gradient.
int srl_cpo_surrogate(srl_cpo *w, float *grad, float *value, const float *adv);

// out = (H + cg_damping·I)·v at the current parameters (n_params each, device, out ≠ v).
int srl_cpo_fvp(srl_cpo *w, float *out, const float *v);

// At the actor's current parameters (which the caller may have set): loss_r = −mean(ρ·adv_r),
// loss_c = mean(ρ·adv_c), kl = mean KL(old‖current) over states and action dims. Any output
// (and adv) may be NULL to skip it.
int srl_cpo_eval(srl_cpo *w, float *loss_r, float *loss_c, float *kl, const float *adv_r,
                 const float *adv_c);

// Try θ_old + ls_decay^k·dir for k = 0 .. ls_steps − 1 and keep the first accepted (CPO's rule
// when adv_c is given, TRPO's otherwise), or θ_old. Fills st's accept_step, step_frac, loss_r,
// loss_c, loss_pi, kl, step_norm.
int srl_cpo_line_search(srl_cpo *w, srl_cpo_stats *st, const float *dir, const float *adv_r,
                        const float *adv_c, int optim_case, double c, float loss_r_before,
                        float loss_c_before);

//---- the updates --------------------------------------------------------------------------------

// One CPO actor update on b (b->adv_c required); out (nullable) gets the stats. A non-finite
// surrogate, gradient, H⁻¹g, H⁻¹b, xᵀHx, r or s returns SRL_ENONFINITE naming it, θ_old kept.
int srl_cpo_update_actor(srl_cpo *w, const srl_cpo_batch *b, const srl_cpo_config *cfg,
                         srl_cpo_stats *out);

// One TRPO-Lag actor update on b with λ = b->lagrange (≥ 0; λ = 0 is TRPO).
int srl_trpo_lag_update_actor(srl_cpo *w, const srl_cpo_batch *b, const srl_cpo_config *cfg,
                              srl_cpo_stats *out);

// The on-policy trainer's table entries: "CPO" (no multiplier) and "TRPOLag" (Adam on λ). Their
// epoch update: the multiplier (TRPO-Lag), the actor update above, then the critics.
extern const srl_onpolicy_algo srl_onpolicy_cpo;
extern const srl_onpolicy_algo srl_onpolicy_trpo_lag;

#ifdef __cplusplus
}
#endif
#endif  // SRL_CPO_H

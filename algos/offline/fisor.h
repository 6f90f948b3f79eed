// fisor.h: FISOR (feasibility-guided safe offline RL, ZhengYinan-AIR/FISOR) on the op table.
//
// Networks: reward critics Q_1, Q_2 (256-256 ReLU + Dense(1)) with polyak targets, the reward
// value V (IQL, expectile 0.9), feasibility critics Qh_1, Qh_2 with targets and the feasibility
// value Vh (reversed expectile 0.9), and the diffusion actor (diffusion.h) with its EMA copy.
// One update on a batch of batch_size rows, in FISOR's order:
//   1. actor weights from the critics as they are (targets for Q and Qh, ensemble min / max):
//        unsafe = Vh > 0, safe = Vh ≤ 0 and Qh ≤ 0 (Vh ≤ 0 < Qh: weight 0)
//        w = unsafe·clip(exp(5·(Vh − Qh)), 0, 150) + safe·clip(exp(3·(Q − V)), 0, 100)
//   2. actor_splits actor steps on consecutive row ranges of the batch (2 × 1024 of 2048):
//        t ~ U{0..T−1}, ε ~ N(0, I), x_t = √ᾱ_t·a + √(1−ᾱ_t)·ε,
//        L = mean_b w_b·Σ_j (ε̂_j − ε_j)², AdamW at the cosine-decayed lr (its clock counts
//        actor optimizer steps, two per update, as optax's schedule does), then EMA (0.001);
//   3. on the first critic_batch (256) rows, with h = cost > 0 ? +cost_scale : −1 (from the
//      batch's costs, here, not by the trainer) and
//      m = 1 − done: V ← expectile(min_i Qtarg_i − V); Q_i ← r + γ·m·V(s'); targets polyak;
//      Vh ← reversed expectile(max_i Qhtarg_i − Vh);
//      Qh_i ← m·[(1−γ)·h + γ·max(h, Vh(s'))] + (1−m)·h; targets polyak.
// With critic_warmup = W > 0 the first W updates do step 3 alone (not in the reference: a cheaper
// schedule for CPUs, where the actor costs most of an update; the critics never read the actor,
// so they train exactly as in joint updates, and the actor then starts from settled weights).
// Acting: N = 16 candidates per observation from the EMA actor's DDPM sampler, and the one with
// the smallest max_i Qhtarg_i(s, a_k) ("minqc"), or the largest min_i Qtarg_i ("maxq").
// The pure pieces (h, targets, expectile losses, weights, actor loss, selection) are exposed for
// tests and other code.
#ifndef SRL_FISOR_H
#define SRL_FISOR_H

#include <stddef.h>
#include <stdint.h>

#include "algos/offline/diffusion.h"
#include "algos/offline/offline.h"
#include "core/nn.h"
#include "core/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_FISOR_MAX_HIDDEN 8

// The "fisor" config section; defaults are the reference's `fisor` config.
typedef struct srl_fisor_params {
  double gamma;               // 0.99 discount of both backups
  double tau;                 // 0.005 polyak rate of the critic targets
  double expectile;           // 0.9 reward value expectile (critic_hyperparam)
  double cost_expectile;      // 0.9 feasibility value reversed expectile (cost_critic_hyperparam)
  double cost_scale;          // 25: h = +cost_scale where cost > 0, −1 elsewhere
  double reward_temperature;  // 3
  double cost_temperature;    // 5
  double reward_weight_max;   // 100: clip of the feasible rows' weights
  double cost_weight_max;     // 150: clip of the infeasible rows' weights (cost_ub)
  double cost_weight_min;     // 0: lower clip of the infeasible rows' weights (1 on the
                              // metadrive_imitation branch)
  char actor_objective[16];   // feasibility | bc (weights 1)
  int n_critic_hidden;
  int critic_hidden[SRL_FISOR_MAX_HIDDEN];  // [256, 256]
  double critic_lr;                         // 3e-4 (Adam) Q and Qh
  double value_lr;                          // 3e-4 (Adam) V and Vh
  double actor_lr;                          // 3e-4 (AdamW) peak of the cosine decay
  double actor_weight_decay;                // 0 (kernels only, as FISOR's mask)
  int decay_steps;                          // 3000000 cosine decay length (0: constant lr)
  int actor_hidden;                         // 256 MLPResNet width
  int actor_blocks;                         // 3
  int actor_res_hidden;                     // 1024
  double actor_dropout;                     // 0.1
  int actor_layernorm;                      // true
  double actor_ema;                         // 0.001 (actor_tau)
  int T;                                    // 5 diffusion steps
  char beta_schedule[16];                   // vp | linear | cosine
  int time_dim;                             // 64 Fourier features
  int n_cond_hidden;
  int cond_hidden[SRL_DIFFUSION_MAX_COND];  // [128, 128] time MLP
  double ddpm_temperature;                  // 1
  int clip_sampler;                         // true
  int candidates;                           // 16 (N)
  char extract[8];                          // minqc | maxq
  int actor_splits;                         // 2 actor steps per batch
  int critic_batch;                         // 256 rows for the critics
  int critic_warmup;                        // 0: updates before the actor's first step
} srl_fisor_params;

// The parameter fields (keys relative to the section) and the defaults filled into p.
extern const srl_cfg_field srl_fisor_fields[];
extern const int srl_fisor_n_fields;
int srl_fisor_params_default(srl_fisor_params *p);

typedef struct srl_fisor srl_fisor;  // the agent; networks and buffers inside

//---- pure pieces (host arrays of n rows) ---------------------------------------------------------

// h = cost > 0 ? +cost_scale : −1
void srl_fisor_constraint(float *h, const float *cost, int n, double cost_scale);

// reward backup y = r + γ·(1 − done)·v_next
void srl_fisor_reward_targets(float *y, const float *r, const float *done, const float *v_next,
                              int n, double gamma);

// HJ backup y = m·[(1−γ)·h + γ·max(h, vh_next)] + (1−m)·h, m = 1 − done
void srl_fisor_hj_targets(float *y, const float *h, const float *done, const float *vh_next, int n,
                          double gamma);

// Expectile loss mean_b |τ − 1(u_b < 0)|·u_b² of u = target − pred (w = τ where u > 0, else 1 − τ);
// reversed: w = τ where u < 0, else 1 − τ (FISOR's safe_expectile_loss). dpred (n, may be NULL)
// receives ∂loss/∂pred = −2·w·u/n.
double srl_fisor_expectile(float *dpred, const float *target, const float *pred, int n, double tau,
                           int reversed);

// Actor weights from Q (ensemble min), V, Qh (ensemble max), Vh as in step 1 above (p's
// temperatures and clips; actor_objective "bc" gives 1). Returns the number of unsafe rows.
int srl_fisor_weights(float *w, const float *q, const float *v, const float *qh, const float *vh,
                      int n, const srl_fisor_params *p);

// L = mean_b w_b·Σ_j (ε̂ − ε)²; deps (n × A, may be NULL) = ∂L/∂ε̂ = 2·w_b·(ε̂ − ε)/n.
double srl_fisor_actor_loss(float *deps, const float *eps_hat, const float *eps, const float *w,
                            int n, int A);

// For n observations with N candidates each (row k of observation i at i·N + k): idx (n) =
// argmin_k max(qh1, qh2) ("minqc"), or argmax_k min(q1, q2) when maximize ("maxq"); first index
// on ties, as jnp.argmin.
void srl_fisor_select(int *idx, const float *c1, const float *c2, int n, int N, int maximize);

//---- the agent -----------------------------------------------------------------------------------

int srl_fisor_create(srl_fisor **out, const srl_offline_setup *setup, const srl_fisor_params *p);
void srl_fisor_destroy(srl_fisor *f);

// One whole update (steps 1–3) on setup->batch_size rows; stats (may be NULL) gets loss_actor,
// weight, unsafe, loss_v, loss_q, loss_vh, loss_qh, v, q, vh, qh, lr_actor.
int srl_fisor_update(srl_fisor *f, const srl_offline_batch *b, srl_offline_stats *st);
// The two halves of an update, in this order (timed apart by the benchmark); each appends its
// statistics to st.
int srl_fisor_update_actor(srl_fisor *f, const srl_offline_batch *b, srl_offline_stats *st);
int srl_fisor_update_critics(srl_fisor *f, const srl_offline_batch *b, srl_offline_stats *st);

// Actions in [-1, 1] for n observations (n ≤ setup->max_act_batch). Observations are sampled
// in chunks of at most max(1, 1024/N), each as a call of its own would, so the EMA actor's
// activations stay bounded; the chosen action of each comes from the rng's draws in order.
int srl_fisor_act(srl_fisor *f, float *act, const float *obs, int n, srl_rng *rng);

// Critic values on n (obs, act) rows (n ≤ batch_size at least; the capacity is the larger of it
// and one sampler pass's candidate rows):
// q = min_i Q_targ_i, v = V, qh = max_i Qh_targ_i, vh = Vh; any output may be NULL.
int srl_fisor_values(srl_fisor *f, float *q, float *v, float *qh, float *vh, const float *obs,
                     const float *act, int n);

// The networks, for tests and tools: by checkpoint prefix ("critic_r.0", "target_critic_c.1",
// "value_r", "actor.eps", "actor_ema.cond", ...; NULL when unknown), and the diffusion actors.
srl_mlp *srl_fisor_net(srl_fisor *f, const char *prefix);
srl_diffusion *srl_fisor_actor(srl_fisor *f);
srl_diffusion *srl_fisor_actor_ema(srl_fisor *f);
const srl_ddpm_schedule *srl_fisor_schedule(const srl_fisor *f);
int64_t srl_fisor_steps(const srl_fisor *f);

// Checkpoint tensors: actor.{cond,eps}.*, actor_ema.{cond,eps}.*, critic_r.{0,1}.*,
// target_critic_r.{0,1}.*, value_r.*, critic_c.{0,1}.*, target_critic_c.{0,1}.*, value_c.*,
// optim.<net>.{m,v,step}, fisor.steps, fisor.dropout, fisor.rng. save references a host image
// inside f that stays valid until the next save or destroy; load refuses a missing or misshapen
// tensor.
int srl_fisor_save(srl_fisor *f, srl_st_writer *w);
int srl_fisor_load(srl_fisor *f, const srl_st_file *file);

#ifdef __cplusplus
}
#endif
#endif  // SRL_FISOR_H

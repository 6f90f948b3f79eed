// lagrange.h: the Lagrange multiplier λ of constrained policy optimisation, updated once per
// epoch from Jc, the mean episode cost (OmniSafe: mean over the last window_lens = 100 episodes).
//
// Two update rules, one type:
//
// SRL_LAGRANGE_ADAM (OmniSafe's common/lagrange.py, PPO-Lag / TRPO-Lag / SAC-Lag): λ is a float32
// parameter, initialised to max(lagrangian_multiplier_init, 0). Each update minimises the loss
// −λ·(Jc − cost_limit) with one step of torch.optim.Adam (β 0.9 / 0.999, eps 1e-8, lr
// lambda_lr, no weight decay), so with g = −(Jc − cost_limit):
//   k += 1;  m = 0.9·m + 0.1·g;  v = 0.999·v + 0.001·g²
//   λ −= (lr / (1 − 0.9^k)) · m / (√v / √(1 − 0.999^k) + 1e-8)
// then λ is clamped to [0, upper_bound] (no upper bound when upper_bound ≤ 0). The arithmetic
// follows torch's float32 single-tensor Adam op by op, so λ equals OmniSafe's bit for bit (checked
// against torch 1.13 by tests/algos/test_lagrange_torch.py).
//
// SRL_LAGRANGE_PID (OmniSafe's common/pid_lagrange.py, CPPO-PID; Stooke et al. 2020):
//   δ = Jc − cost_limit
//   I = max(0, I + Ki·δ)                        (I starts at lagrangian_multiplier_init;
//                                                 diff_norm: I clamped to [0, 1])
//   P = α_p·P + (1 − α_p)·δ                     (P starts at 0)
//   D̄ = α_d·D̄ + (1 − α_d)·Jc                    (D̄ starts at 0)
//   D = max(0, D̄ − oldest of the delay queue)   (queue: maxlen d_delay, starts as [0])
//   λ = max(0, Kp·P + I + Kd·D)                 (diff_norm: λ ≤ 1; neither norm flag: λ ≤
//                                                 penalty_max)
//   push D̄ onto the queue
// λ is 0 until the first update (OmniSafe's _cost_penalty starts at 0). sum_norm and diff_norm
// only clamp here; the algorithm's surrogate (adv_r − λ·adv_c)/(1 + λ) is the caller's.
//
// A cost_limit of 0 is an ordinary value (no division anywhere). A non-finite Jc is refused with
// SRL_ENONFINITE and leaves the state untouched.
//
// The config's real numbers are doubles, as OmniSafe's Python floats, so λ follows OmniSafe's
// sequence for any lambda_lr or cost_limit.
//
// Checkpoints: the whole state is srl_lagrange_state_size() floats (suggested tensor name
// "lagrange.state", F32); saving then loading them continues the λ sequence exactly, because the
// state itself is kept in float32 between updates.
#ifndef SRL_LAGRANGE_H
#define SRL_LAGRANGE_H

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_PID_MAX_DELAY 256  // the largest d_delay

typedef enum srl_lagrange_kind {
  SRL_LAGRANGE_ADAM = 0,  // gradient ascent on λ with Adam (PPO-Lag)
  SRL_LAGRANGE_PID = 1,   // PID controller on the cost error (CPPO-PID)
} srl_lagrange_kind;

typedef struct srl_lagrange_config {
  srl_lagrange_kind kind;
  double cost_limit;  // 25; d, the episode-cost limit (≥ 0 is typical, any finite value works)
  double init;        // 0.001; lagrangian_multiplier_init (Adam: λ₀; PID: I₀)
  // Adam
  double lambda_lr;    // 0.035
  double upper_bound;  // lagrangian_upper_bound; ≤ 0: none (OmniSafe's None)
  // PID (OmniSafe's CPPOPID lagrange_cfgs)
  double kp, ki, kd;         // pid_kp 0.1, pid_ki 0.01, pid_kd 0.01
  int d_delay;               // pid_d_delay 10, in 1..SRL_PID_MAX_DELAY
  double delta_p_ema_alpha;  // pid_delta_p_ema_alpha 0.95
  double delta_d_ema_alpha;  // pid_delta_d_ema_alpha 0.95
  int sum_norm;              // 1
  int diff_norm;             // 0
  double penalty_max;        // 100
} srl_lagrange_config;

// OmniSafe's defaults (PPOLag for ADAM, CPPOPID for PID; both fields sets are filled).
srl_lagrange_config srl_lagrange_config_default(srl_lagrange_kind kind);

typedef struct srl_lagrange {
  srl_lagrange_config cfg;
  float lambda;       // the multiplier now: the value the epoch's policy update uses
  long long updates;  // updates done since init (restored by state_load)
  // Adam moments
  float adam_m, adam_v;
  // PID terms
  float pid_i;                     // integral I
  float pid_p;                     // EMA of δ
  float pid_d;                     // EMA of Jc (D̄)
  int n_delay;                     // entries in the delay queue, 1..d_delay
  int delay_head;                  // index of the oldest entry in delay[]
  float delay[SRL_PID_MAX_DELAY];  // ring of past D̄ values (starts as [0])
} srl_lagrange;

// Validate cfg (finite values, lambda_lr > 0, alphas in [0, 1], d_delay in range, ...) and set
// the initial state. Returns 0 or SRL_EINVAL naming the bad field. No allocation.
int srl_lagrange_init(srl_lagrange *lg, const srl_lagrange_config *cfg);

// One epoch's update from the mean episode cost jc; the new λ is lg->lambda. SRL_ENONFINITE for
// a NaN or infinite jc (state untouched).
int srl_lagrange_update(srl_lagrange *lg, double jc);

// Number of floats in the saved state: 4 for ADAM (λ, m, v, updates), 6 + d_delay for PID
// (λ, I, P, D̄, updates, queue length, queue oldest first padded with zeros).
int srl_lagrange_state_size(const srl_lagrange *lg);

// Write the state into out (srl_lagrange_state_size floats).
int srl_lagrange_state_save(const srl_lagrange *lg, float *out);

// Restore a saved state into a multiplier initialised with the same config. SRL_EINVAL when n
// differs from srl_lagrange_state_size, SRL_ERANGE for non-finite or inconsistent values (state
// untouched).
int srl_lagrange_state_load(srl_lagrange *lg, const float *in, int n);

#ifdef __cplusplus
}
#endif
#endif  // SRL_LAGRANGE_H

// test_lagrange.c: Adam-on-λ and the PID Lagrangian against hand-computed values and against
// independent double-precision re-implementations of OmniSafe's formulas over cost traces that
// cross the limit; the clamp at 0, a cost limit of 0, refusal of a non-finite Jc, and
// save/restore continuity of the checkpoint state.
#include "algos/lagrange.h"
#include "test.h"

// a cost trace over 30 epochs that starts above the limit 25, falls well below it, rises back
// above and settles near it
static double cost_trace(int e) {
  static const double tr[30] = {60, 55, 48, 40, 33, 27, 22, 18, 15, 12, 10, 9,  11, 14, 19,
                                24, 29, 34, 37, 35, 31, 28, 26, 25, 24, 23, 25, 26, 25, 24.5};
  return tr[e % 30];
}

// a trace with long stretches: above the limit, far below (λ falls to the clamp), above again
static double step_trace(int e) {
  return e < 8 ? 50.0 : e < 30 ? 5.0 : e < 45 ? 40.0 : 20.0;
}


//---- independent references -------------------------------------------------------------------

// torch.optim.Adam on one scalar with loss −λ·(Jc − d), in double, then clamp to [0, ub]
typedef struct {
  double lam, m, v;
  int k;
} ref_adam;

static void ref_adam_step(ref_adam *s, double jc, double d, double lr, double ub) {
  double g = -(jc - d);
  s->k++;
  s->m = 0.9 * s->m + 0.1 * g;
  s->v = 0.999 * s->v + 0.001 * g * g;
  double mhat = s->m / (1 - pow(0.9, s->k)), vhat = s->v / (1 - pow(0.999, s->k));
  // torch's denominator: √v/√(1 − β2^k) + eps, i.e. √v̂ + eps
  s->lam -= lr * mhat / (sqrt(vhat) + 1e-8);
  if (s->lam < 0) s->lam = 0;
  if (ub > 0 && s->lam > ub) s->lam = ub;
}

// OmniSafe's PIDLagrangian.pid_update with a Python-like deque (list shifted on overflow)
typedef struct {
  double i, p, dbar, penalty;
  double ds[64];
  int nds;
} ref_pid;

static void ref_pid_init(ref_pid *s, double init) {
  memset(s, 0, sizeof *s);
  s->i = init;
  s->ds[0] = 0.0;
  s->nds = 1;
}

static void ref_pid_step(ref_pid *s, const srl_lagrange_config *c, double jc) {
  double delta = jc - c->cost_limit;
  s->i = fmax(0.0, s->i + delta * c->ki);
  if (c->diff_norm) s->i = fmax(0.0, fmin(1.0, s->i));
  s->p = s->p * c->delta_p_ema_alpha + (1 - (double)c->delta_p_ema_alpha) * delta;
  s->dbar = s->dbar * c->delta_d_ema_alpha + (1 - (double)c->delta_d_ema_alpha) * jc;
  double d = fmax(0.0, s->dbar - s->ds[0]);
  double o = c->kp * s->p + s->i + c->kd * d;
  s->penalty = fmax(0.0, o);
  if (c->diff_norm) s->penalty = fmin(1.0, s->penalty);
  if (!(c->diff_norm || c->sum_norm)) s->penalty = fmin(s->penalty, (double)c->penalty_max);
  // append with maxlen d_delay: drop the leftmost when full
  if (s->nds == c->d_delay) {
    memmove(s->ds, s->ds + 1, sizeof(double) * (size_t)(s->nds - 1));
    s->nds--;
  }
  s->ds[s->nds++] = s->dbar;
}


//---- Adam on λ --------------------------------------------------------------------------------

TEST(test_adam_defaults_and_first_steps) {
  srl_lagrange_config c = srl_lagrange_config_default(SRL_LAGRANGE_ADAM);
  CHECK_CLOSE(c.cost_limit, 25, 0, 0);
  CHECK_CLOSE(c.init, 0.001, 1e-9, 0);
  CHECK_CLOSE(c.lambda_lr, 0.035, 1e-8, 0);
  srl_lagrange lg;
  CHECK_OK(srl_lagrange_init(&lg, &c));
  CHECK_CLOSE(lg.lambda, 0.001, 1e-9, 0);
  // by hand: with a constant gradient g, m̂ = g and v̂ = g², so each step moves λ by lr·sign(g)
  // (up to eps): Jc > d raises λ by 0.035 per epoch
  CHECK_OK(srl_lagrange_update(&lg, 40.0));
  CHECK_CLOSE(lg.lambda, 0.001 + 0.035, 1e-7, 0);
  CHECK_OK(srl_lagrange_update(&lg, 40.0));
  CHECK_CLOSE(lg.lambda, 0.001 + 0.070, 1e-7, 0);
  // a smaller violation after large ones moves λ less (v̂ remembers the large gradients); by
  // hand with g = −15, −15, −1: m = −1.5, −2.85, −2.665 and v = 0.225, 0.449775, 0.450325225,
  // λ3 = λ2 − lr/(1 − 0.9³)·m3/(√(v3/(1 − 0.999³)) + 1e-8)
  CHECK_OK(srl_lagrange_update(&lg, 26.0));
  double lam3 = 0.071 + 0.035 / 0.271 * 2.665 / (sqrt(0.450325225 / 0.002997001) + 1e-8);
  CHECK_CLOSE(lg.lambda, lam3, 1e-7, 1e-6);
  CHECK(lam3 < 0.1 && lam3 > 0.09);
  CHECK_EQ_INT(lg.updates, 3);
  // a negative init starts at 0 (OmniSafe: max(init, 0))
  c.init = -1.0f;
  CHECK_OK(srl_lagrange_init(&lg, &c));
  CHECK(lg.lambda == 0.0f);
}


TEST(test_adam_sequence_matches_reference) {
  srl_lagrange_config c = srl_lagrange_config_default(SRL_LAGRANGE_ADAM);
  srl_lagrange lg;
  CHECK_OK(srl_lagrange_init(&lg, &c));
  ref_adam ref = {0.001, 0, 0, 0};
  double worst = 0, lam_max = 0;
  int hit_zero = 0;
  for (int e = 0; e < 90; e++) {
    double jc = e < 60 ? step_trace(e) : cost_trace(e - 60);
    CHECK_OK(srl_lagrange_update(&lg, jc));
    ref_adam_step(&ref, jc, 25.0, 0.035, 0);
    CHECK_CLOSE(lg.lambda, ref.lam, 2e-6, 1e-5);
    CHECK(lg.lambda >= 0.0f);
    worst = fmax(worst, fabs(lg.lambda - ref.lam));
    lam_max = fmax(lam_max, ref.lam);
    hit_zero |= ref.lam == 0;
  }
  // the trace drives λ up, back to the clamp at 0, and up again
  CHECK(lam_max > 0.15);
  CHECK(hit_zero);
  printf("  max |λ - reference| over 90 epochs = %.3g (λ max %.3f)\n", worst, lam_max);
}


TEST(test_adam_clamp_and_upper_bound) {
  srl_lagrange_config c = srl_lagrange_config_default(SRL_LAGRANGE_ADAM);
  c.init = 0.05f;
  srl_lagrange lg;
  CHECK_OK(srl_lagrange_init(&lg, &c));
  // far under the limit: λ falls 0.035, then would go negative and is clamped at exactly 0
  CHECK_OK(srl_lagrange_update(&lg, 0.0));
  CHECK_CLOSE(lg.lambda, 0.015, 1e-7, 0);
  CHECK_OK(srl_lagrange_update(&lg, 0.0));
  CHECK(lg.lambda == 0.0f);
  for (int e = 0; e < 10; e++) {
    CHECK_OK(srl_lagrange_update(&lg, 0.0));
    CHECK(lg.lambda == 0.0f);
  }
  // an upper bound caps λ
  c = srl_lagrange_config_default(SRL_LAGRANGE_ADAM);
  c.upper_bound = 0.1f;
  CHECK_OK(srl_lagrange_init(&lg, &c));
  ref_adam ref = {0.001, 0, 0, 0};
  for (int e = 0; e < 30; e++) {
    CHECK_OK(srl_lagrange_update(&lg, 100.0));
    ref_adam_step(&ref, 100.0, 25.0, 0.035, 0.1);
    CHECK(lg.lambda <= 0.1f);
    CHECK_CLOSE(lg.lambda, ref.lam, 2e-6, 1e-5);
  }
  CHECK(lg.lambda == 0.1f);
}


TEST(test_adam_cost_limit_zero) {
  srl_lagrange_config c = srl_lagrange_config_default(SRL_LAGRANGE_ADAM);
  c.cost_limit = 0.0f;
  srl_lagrange lg;
  CHECK_OK(srl_lagrange_init(&lg, &c));
  ref_adam ref = {0.001, 0, 0, 0};
  // zero cost at a zero limit: zero gradient, λ stays (no 0/0)
  for (int e = 0; e < 5; e++) {
    CHECK_OK(srl_lagrange_update(&lg, 0.0));
    ref_adam_step(&ref, 0.0, 0.0, 0.035, 0);
    CHECK(isfinite(lg.lambda));
    CHECK_CLOSE(lg.lambda, 0.001, 1e-9, 0);
  }
  for (int e = 0; e < 20; e++) {
    double jc = e < 10 ? 0.5 * e : 0.0;
    CHECK_OK(srl_lagrange_update(&lg, jc));
    ref_adam_step(&ref, jc, 0.0, 0.035, 0);
    CHECK(isfinite(lg.lambda));
    CHECK_CLOSE(lg.lambda, ref.lam, 2e-6, 1e-5);
  }
}


//---- PID Lagrangian ---------------------------------------------------------------------------

TEST(test_pid_defaults_and_first_step) {
  srl_lagrange_config c = srl_lagrange_config_default(SRL_LAGRANGE_PID);
  CHECK_CLOSE(c.kp, 0.1, 1e-7, 0);
  CHECK_CLOSE(c.ki, 0.01, 1e-7, 0);
  CHECK_CLOSE(c.kd, 0.01, 1e-7, 0);
  CHECK_EQ_INT(c.d_delay, 10);
  CHECK_CLOSE(c.delta_p_ema_alpha, 0.95, 1e-7, 0);
  CHECK_CLOSE(c.delta_d_ema_alpha, 0.95, 1e-7, 0);
  CHECK(c.sum_norm == 1 && c.diff_norm == 0);
  CHECK_CLOSE(c.penalty_max, 100, 0, 0);
  srl_lagrange lg;
  CHECK_OK(srl_lagrange_init(&lg, &c));
  CHECK(lg.lambda == 0.0f);  // OmniSafe's penalty is 0 before the first update
  // by hand, Jc 35 against 25: δ 10, I = 0.001 + 0.1, P = 0.05·10, D̄ = 0.05·35, D = D̄ − 0
  // λ = 0.1·0.5 + 0.101 + 0.01·1.75 = 0.1685
  CHECK_OK(srl_lagrange_update(&lg, 35.0));
  CHECK_CLOSE(lg.lambda, 0.1685, 1e-7, 1e-6);
  // second, Jc 35: I = 0.201, P = 0.95·0.5 + 0.5 = 0.975, D̄ = 0.95·1.75 + 1.75 = 3.4125,
  // D = 3.4125 − 0 (the queue's oldest is still the initial 0); λ = 0.0975 + 0.201 + 0.034125
  CHECK_OK(srl_lagrange_update(&lg, 35.0));
  CHECK_CLOSE(lg.lambda, 0.0975 + 0.201 + 0.034125, 1e-7, 1e-6);
}


// run the PID and the reference side by side over 30 epochs of the trace
static void pid_against_reference(const srl_lagrange_config *c, double (*trace)(int),
                                  double *lam_max, int *zero_seen, int *cap_seen) {
  srl_lagrange lg;
  CHECK_OK(srl_lagrange_init(&lg, c));
  ref_pid ref;
  ref_pid_init(&ref, c->init);
  *lam_max = 0, *zero_seen = 0, *cap_seen = 0;
  for (int e = 0; e < 30; e++) {
    double jc = trace(e);
    CHECK_OK(srl_lagrange_update(&lg, jc));
    ref_pid_step(&ref, c, jc);
    CHECK_CLOSE(lg.lambda, ref.penalty, 1e-6, 1e-5);
    CHECK_CLOSE(lg.pid_i, ref.i, 1e-6, 1e-5);
    CHECK_CLOSE(lg.pid_p, ref.p, 1e-5, 1e-5);
    CHECK_CLOSE(lg.pid_d, ref.dbar, 1e-5, 1e-5);
    *lam_max = fmax(*lam_max, ref.penalty);
    *zero_seen |= ref.penalty == 0;
    *cap_seen |= ref.penalty == (c->diff_norm ? 1.0 : (double)c->penalty_max);
  }
  CHECK_EQ_INT(lg.updates, 30);
}


TEST(test_pid_sequence_matches_reference) {
  double lam_max;
  int zero_seen, cap_seen;
  // OmniSafe's defaults (sum_norm: no clamp at penalty_max)
  srl_lagrange_config c = srl_lagrange_config_default(SRL_LAGRANGE_PID);
  pid_against_reference(&c, cost_trace, &lam_max, &zero_seen, &cap_seen);
  CHECK(lam_max > 1.0);
  printf("  default PID: λ max %.4f over 30 epochs\n", lam_max);
  // sum_norm: penalty_max does not clamp (OmniSafe clamps only when neither flag is set)
  c.penalty_max = 1.0;
  pid_against_reference(&c, cost_trace, &lam_max, &zero_seen, &cap_seen);
  CHECK(lam_max > 1.0);
  c.penalty_max = 100.0;
  // stronger gains so the P and D terms matter and λ reaches 0 when the cost falls
  c.kp = 0.5f, c.ki = 0.05f, c.kd = 0.2f, c.d_delay = 4, c.init = 0.0f;
  pid_against_reference(&c, cost_trace, &lam_max, &zero_seen, &cap_seen);
  pid_against_reference(&c, step_trace, &lam_max, &zero_seen, &cap_seen);
  CHECK(zero_seen);
  // neither norm flag: clamped at penalty_max
  c.sum_norm = 0, c.penalty_max = 1.5f;
  pid_against_reference(&c, cost_trace, &lam_max, &zero_seen, &cap_seen);
  CHECK(cap_seen);
  CHECK(lam_max <= 1.5);
  // diff_norm: I and λ in [0, 1]
  c.diff_norm = 1;
  pid_against_reference(&c, cost_trace, &lam_max, &zero_seen, &cap_seen);
  CHECK(cap_seen);
  CHECK(lam_max <= 1.0);
  // delay 1: D compares with the previous D̄ only
  c = srl_lagrange_config_default(SRL_LAGRANGE_PID);
  c.d_delay = 1, c.kd = 0.3f;
  pid_against_reference(&c, cost_trace, &lam_max, &zero_seen, &cap_seen);
}


TEST(test_pid_cost_limit_zero) {
  srl_lagrange_config c = srl_lagrange_config_default(SRL_LAGRANGE_PID);
  c.cost_limit = 0.0f;
  srl_lagrange lg;
  CHECK_OK(srl_lagrange_init(&lg, &c));
  ref_pid ref;
  ref_pid_init(&ref, c.init);
  for (int e = 0; e < 30; e++) {
    double jc = e < 15 ? 0.0 : 0.25 * (e - 15);
    CHECK_OK(srl_lagrange_update(&lg, jc));
    ref_pid_step(&ref, &c, jc);
    CHECK(isfinite(lg.lambda));
    CHECK_CLOSE(lg.lambda, ref.penalty, 1e-6, 1e-5);
  }
  CHECK(lg.lambda > 0.001f);
}


//---- common -----------------------------------------------------------------------------------

TEST(test_nonfinite_jc_refused) {
  for (int kind = 0; kind < 2; kind++) {
    srl_lagrange_config c = srl_lagrange_config_default((srl_lagrange_kind)kind);
    srl_lagrange lg;
    CHECK_OK(srl_lagrange_init(&lg, &c));
    CHECK_OK(srl_lagrange_update(&lg, 30.0));
    float before[6 + SRL_PID_MAX_DELAY], after[6 + SRL_PID_MAX_DELAY];
    int n = srl_lagrange_state_size(&lg);
    CHECK_OK(srl_lagrange_state_save(&lg, before));
    CHECK_ERR(srl_lagrange_update(&lg, NAN), SRL_ENONFINITE);
    CHECK_ERRMSG("Jc");
    CHECK_ERR(srl_lagrange_update(&lg, INFINITY), SRL_ENONFINITE);
    CHECK_ERR(srl_lagrange_update(&lg, -INFINITY), SRL_ENONFINITE);
    CHECK_OK(srl_lagrange_state_save(&lg, after));
    CHECK(memcmp(before, after, sizeof(float) * (size_t)n) == 0);
    CHECK_EQ_INT(lg.updates, 1);
  }
}


TEST(test_config_validation) {
  srl_lagrange lg;
  srl_lagrange_config c = srl_lagrange_config_default(SRL_LAGRANGE_ADAM);
  c.lambda_lr = 0;
  CHECK_ERR(srl_lagrange_init(&lg, &c), SRL_EINVAL);
  CHECK_ERRMSG("lambda_lr");
  c = srl_lagrange_config_default(SRL_LAGRANGE_ADAM);
  c.cost_limit = NAN;
  CHECK_ERR(srl_lagrange_init(&lg, &c), SRL_EINVAL);
  CHECK_ERRMSG("cost_limit");
  c = srl_lagrange_config_default(SRL_LAGRANGE_PID);
  c.d_delay = 0;
  CHECK_ERR(srl_lagrange_init(&lg, &c), SRL_EINVAL);
  c.d_delay = SRL_PID_MAX_DELAY + 1;
  CHECK_ERR(srl_lagrange_init(&lg, &c), SRL_EINVAL);
  c = srl_lagrange_config_default(SRL_LAGRANGE_PID);
  c.delta_p_ema_alpha = 1.5f;
  CHECK_ERR(srl_lagrange_init(&lg, &c), SRL_EINVAL);
  c = srl_lagrange_config_default(SRL_LAGRANGE_PID);
  c.kind = (srl_lagrange_kind)7;
  CHECK_ERR(srl_lagrange_init(&lg, &c), SRL_EINVAL);
}


// save after k updates, restore into a fresh multiplier, continue both: identical λ sequences
static void check_continuity(const srl_lagrange_config *c, int k) {
  srl_lagrange a, b;
  CHECK_OK(srl_lagrange_init(&a, c));
  for (int e = 0; e < k; e++) CHECK_OK(srl_lagrange_update(&a, cost_trace(e)));
  float st[6 + SRL_PID_MAX_DELAY];
  int n = srl_lagrange_state_size(&a);
  CHECK_EQ_INT(n, c->kind == SRL_LAGRANGE_ADAM ? 4 : 6 + c->d_delay);
  CHECK_OK(srl_lagrange_state_save(&a, st));
  CHECK_OK(srl_lagrange_init(&b, c));
  CHECK_OK(srl_lagrange_state_load(&b, st, n));
  CHECK(b.lambda == a.lambda);
  CHECK_EQ_INT(b.updates, k);
  for (int e = k; e < 30; e++) {
    CHECK_OK(srl_lagrange_update(&a, cost_trace(e)));
    CHECK_OK(srl_lagrange_update(&b, cost_trace(e)));
    CHECK(a.lambda == b.lambda);
  }
}


TEST(test_save_restore_continuity) {
  srl_lagrange_config ca = srl_lagrange_config_default(SRL_LAGRANGE_ADAM);
  srl_lagrange_config cp = srl_lagrange_config_default(SRL_LAGRANGE_PID);
  // before, at and after the delay queue fills (10), and with a wrapped ring
  int ks[] = {0, 3, 10, 12, 23};
  for (int q = 0; q < 5; q++) {
    check_continuity(&ca, ks[q]);
    check_continuity(&cp, ks[q]);
  }
  // bad states are refused and leave the state alone
  srl_lagrange lg;
  CHECK_OK(srl_lagrange_init(&lg, &cp));
  float st[6 + SRL_PID_MAX_DELAY];
  CHECK_OK(srl_lagrange_state_save(&lg, st));
  CHECK_ERR(srl_lagrange_state_load(&lg, st, 4), SRL_EINVAL);
  st[2] = NAN;
  CHECK_ERR(srl_lagrange_state_load(&lg, st, 16), SRL_ERANGE);
  st[2] = 0;
  st[5] = 11;  // queue longer than d_delay
  CHECK_ERR(srl_lagrange_state_load(&lg, st, 16), SRL_ERANGE);
  st[5] = 1;
  st[0] = -1;  // negative λ
  CHECK_ERR(srl_lagrange_state_load(&lg, st, 16), SRL_ERANGE);
  CHECK(lg.lambda == 0.0f && lg.n_delay == 1);
}


int main(void) {
  RUN(test_adam_defaults_and_first_steps);
  RUN(test_adam_sequence_matches_reference);
  RUN(test_adam_clamp_and_upper_bound);
  RUN(test_adam_cost_limit_zero);
  RUN(test_pid_defaults_and_first_step);
  RUN(test_pid_sequence_matches_reference);
  RUN(test_pid_cost_limit_zero);
  RUN(test_nonfinite_jc_refused);
  RUN(test_config_validation);
  RUN(test_save_restore_continuity);
  return TEST_REPORT();
}

// test_baselines.c: the offline baselines (BC-All / BC-Safe, BCQ-Lag, CPQ, COptiDICE) and their
// conditional VAE: OSRL's defaults in the config tables; the per-step threshold; the formulas on
// hand-made batches against hand computation (BCQ's 0.75·min + 0.25·max target over samples, the
// PID multiplier sequence, CPQ's indicator target, quantile, OOD cost and α sequence, COptiDICE's
// f, (f')⁻¹, w and λ loss); finite-difference checks of every new gradient (the VAE's loss through
// both networks, the perturbation actor's objective through critics and actor, the squashed
// Gaussian's reparameterisation, COptiDICE's ν, χ and policy losses); losses falling on a small
// generated dataset; no allocation in update or act; checkpoint round trips that reproduce
// actions and the next update exactly, and refusals of checkpoints of another shape.
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "algos/offline/baselines.h"
#include "algos/offline/offline.h"
#include "algos/offline/vae.h"
#include "core/alloc.h"
#include "core/ops.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "tests/test.h"

static char tmp_dir[256];

//---- finite differences ------------------------------------------------------------------------

// compare an analytic gradient with central differences of f over chosen parameters of p
typedef double (*loss_fn)(void *ctx);

static int fd_check(const char *what, float *p, const float *grad, size_t n, int count, loss_fn f,
                    void *ctx, double h, double atol, double rtol) {
  int bad = 0;
  size_t step = n / (size_t)count ? n / (size_t)count : 1;
  for (size_t k = 0, done = 0; k < n && (int)done < count; k += step, done++) {
    float keep = p[k];
    p[k] = keep + (float)h;
    double lp = f(ctx);
    p[k] = keep - (float)h;
    double lm = f(ctx);
    p[k] = keep;
    double fd = (lp - lm) / (2 * h), an = grad[k];
    if (!(fabs(fd - an) <= atol + rtol * fabs(an))) {
      if (bad < 5)
        fprintf(stderr, "  %s[%zu]: finite difference %.6g, analytic %.6g\n", what, k, fd, an);
      bad++;
    }
  }
  return bad;
}


//---- a small generated dataset -----------------------------------------------------------------

// obs (3) uniform in [-1, 1]; the behaviour action tanh(0.8·[s0 + s1, s2 − s0]) + 0.1·noise;
// reward 1 − (a0 − 0.5)²; cost 1 where a1 > 0.3; s' = clip(s + 0.1·[a0, a1, a0 − a1]); 5% done
#define TO 3
#define TA 2
#define TN 1024

typedef struct toy {
  float obs[TN * TO], act[TN * TA], rew[TN], cost[TN], next[TN * TO], done[TN];
  // one batch
  float b_obs[TN * TO], b_act[TN * TA], b_rew[TN], b_cost[TN], b_next[TN * TO], b_done[TN],
      b_init[TN * TO];
  srl_rng *rng;
} toy;

static float clip1(float x) {
  return x < -0.99f ? -0.99f : x > 0.99f ? 0.99f : x;
}

static toy *toy_create(uint64_t seed) {
  toy *t = calloc(1, sizeof *t);
  srl_rng_create(&t->rng, seed, 7);
  for (int i = 0; i < TN; i++) {
    float *s = t->obs + i * TO, *a = t->act + i * TA, *n = t->next + i * TO;
    for (int j = 0; j < TO; j++) s[j] = (float)srl_rng_uniform_range(t->rng, -1, 1);
    a[0] = clip1(tanhf(0.8f * (s[0] + s[1])) + 0.1f * (float)srl_rng_normal(t->rng));
    a[1] = clip1(tanhf(0.8f * (s[2] - s[0])) + 0.1f * (float)srl_rng_normal(t->rng));
    t->rew[i] = 1.0f - (a[0] - 0.5f) * (a[0] - 0.5f);
    t->cost[i] = a[1] > 0.3f ? 1.0f : 0.0f;
    n[0] = clip1(s[0] + 0.1f * a[0]), n[1] = clip1(s[1] + 0.1f * a[1]);
    n[2] = clip1(s[2] + 0.1f * (a[0] - a[1]));
    t->done[i] = srl_rng_uniform(t->rng) < 0.05 ? 1.0f : 0.0f;
  }
  return t;
}

static void toy_destroy(toy *t) {
  srl_rng_destroy(t->rng);
  free(t);
}

static srl_offline_batch toy_batch(toy *t, int B) {
  for (int i = 0; i < B; i++) {
    int r = (int)srl_rng_int(t->rng, TN), q = (int)srl_rng_int(t->rng, TN);
    memcpy(t->b_obs + i * TO, t->obs + r * TO, sizeof(float) * TO);
    memcpy(t->b_next + i * TO, t->next + r * TO, sizeof(float) * TO);
    memcpy(t->b_act + i * TA, t->act + r * TA, sizeof(float) * TA);
    memcpy(t->b_init + i * TO, t->obs + q * TO, sizeof(float) * TO);
    t->b_rew[i] = t->rew[r], t->b_cost[i] = t->cost[r], t->b_done[i] = t->done[r];
  }
  return (srl_offline_batch){B,         t->b_obs,  t->b_act,  t->b_rew,
                             t->b_cost, t->b_next, t->b_done, t->b_init};
}

static srl_offline_setup toy_setup(int B, uint64_t seed) {
  return (srl_offline_setup){.ops = srl_ops_cpu(),
                             .obs_dim = TO,
                             .act_dim = TA,
                             .batch_size = B,
                             .max_act_batch = 4,
                             .total_steps = 1000,
                             .gamma = 0.9,
                             .cost_limit = 10,
                             .episode_len = 100,
                             .seed = seed};
}


//---- defaults and the table --------------------------------------------------------------------

TEST(qc_threshold) {
  // OSRL's qc_thres for k = 10: 3.170 at L = 300, 0.99996 at L = 1000
  CHECK_CLOSE(srl_baselines_qc_threshold(10, 0.99, 300), 10 * (1 - pow(0.99, 300)) / 0.01 / 300,
              1e-12, 0);
  CHECK_CLOSE(srl_baselines_qc_threshold(10, 0.99, 300), 3.170, 1e-3, 0);
  CHECK_CLOSE(srl_baselines_qc_threshold(10, 0.99, 1000), 0.99996, 1e-5, 0);
  CHECK_CLOSE(srl_baselines_qc_threshold(20, 1.0, 50), 20, 1e-12, 0);
  CHECK_CLOSE(srl_baselines_qc_threshold(10, 0.99, 0), 0, 0, 0);
}


TEST(osrl_defaults) {
  srl_bc_params bc;
  CHECK_OK(srl_bc_params_default(&bc));
  CHECK_EQ_INT(bc.n_hidden, 2);
  CHECK_EQ_INT(bc.hidden[0], 256);
  CHECK_CLOSE(bc.lr, 1e-3, 0, 0);

  srl_bcq_lag_params q;
  CHECK_OK(srl_bcq_lag_params_default(&q));
  CHECK_EQ_INT(q.actor_hidden[1], 256);
  CHECK_EQ_INT(q.critic_hidden[0], 256);
  CHECK_EQ_INT(q.vae_hidden, 400);
  CHECK_EQ_INT(q.num_q, 2);
  CHECK_EQ_INT(q.num_qc, 2);
  CHECK_EQ_INT(q.sample_action_num, 10);
  CHECK_CLOSE(q.tau, 0.005, 0, 0);
  CHECK_CLOSE(q.phi, 0.05, 0, 0);
  CHECK_CLOSE(q.lmbda, 0.75, 0, 0);
  CHECK_CLOSE(q.beta, 0.5, 0, 0);
  CHECK_EQ_INT(q.n_pid, 3);
  CHECK_CLOSE(q.pid[0], 0.1, 0, 0);
  CHECK_CLOSE(q.pid[1], 0.003, 0, 0);
  CHECK_CLOSE(q.pid[2], 0.001, 0, 0);
  CHECK_CLOSE(q.actor_lr, 1e-3, 0, 0);
  CHECK_CLOSE(q.critic_lr, 1e-3, 0, 0);
  CHECK_CLOSE(q.vae_lr, 1e-3, 0, 0);

  srl_cpq_params c;
  CHECK_OK(srl_cpq_params_default(&c));
  CHECK_EQ_INT(c.vae_hidden, 400);
  CHECK_EQ_INT(c.num_q, 2);
  CHECK_CLOSE(c.qc_scalar, 1.5, 0, 0);
  CHECK_CLOSE(c.beta, 0.5, 0, 0);
  CHECK_CLOSE(c.actor_lr, 1e-4, 0, 0);
  CHECK_CLOSE(c.critic_lr, 1e-3, 0, 0);
  CHECK_CLOSE(c.alpha_lr, 1e-4, 0, 0);
  CHECK_CLOSE(c.vae_lr, 1e-3, 0, 0);

  srl_coptidice_params d;
  CHECK_OK(srl_coptidice_params_default(&d));
  CHECK_CLOSE(d.alpha, 0.5, 0, 0);
  CHECK_CLOSE(d.cost_ub_epsilon, 0.01, 0, 0);
  CHECK(!strcmp(d.f_type, "softchi"));
  CHECK_EQ_INT(d.num_nu, 2);
  CHECK_EQ_INT(d.num_chi, 2);
  CHECK_CLOSE(d.noise, 0.1, 0, 0);
  CHECK_CLOSE(d.actor_lr, 1e-4, 0, 0);
  CHECK_CLOSE(d.critic_lr, 1e-4, 0, 0);
  CHECK_CLOSE(d.scalar_lr, 1e-4, 0, 0);

  srl_vae_config v = srl_vae_config_default(5, 3, 16);
  CHECK_EQ_INT(v.hidden, 400);
  CHECK_EQ_INT(v.latent, 6);
  CHECK_CLOSE(v.beta, 0.5, 0, 0);
  CHECK_CLOSE(v.latent_clip, 0.5, 0, 0);

  // the table: names, sections, BC-Safe's selection
  const char *names[] = {"BCAll", "BCSafe", "BCQLag", "CPQ", "COptiDICE"};
  const char *sections[] = {"bc", "bc", "bcq_lag", "cpq", "coptidice"};
  for (int i = 0; i < 5; i++) {
    const srl_offline_algo *a = srl_offline_algo_find(names[i]);
    CHECK(a != NULL);
    if (!a) continue;
    CHECK(!strcmp(a->section, sections[i]));
    CHECK_EQ_INT(a->safe_episodes_only, i == 1);
  }
  CHECK(srl_offline_bc_all.fields == srl_offline_bc_safe.fields);
}


//---- hand-made batches -------------------------------------------------------------------------

TEST(bcq_targets_by_hand) {
  // two rows, three samples each: v = 0.75·min + 0.25·max, y = base + γ·m·max_k v
  const float h1[] = {1, 2, 0, -1, 4, 3}, h2[] = {3, 2, 5, 1, 0, 3};
  const float r[] = {0.5f, 1.0f}, done[] = {0, 1}, c[] = {0, 1};
  float y[2];
  srl_bcq_lag_targets(y, h1, h2, r, done, 2, 3, 0.75, 0.9);
  CHECK_CLOSE(y[0], 0.5 + 0.9 * 2.0, 1e-6, 0);  // samples 1.5, 2.0, 1.25
  CHECK_CLOSE(y[1], 1.0, 1e-6, 0);              // done: the reward alone
  srl_bcq_lag_targets(y, h1, h2, c, NULL, 2, 3, 0.75, 0.9);
  CHECK_CLOSE(y[0], 0.0 + 0.9 * 2.0, 1e-6, 0);
  CHECK_CLOSE(y[1], 1.0 + 0.9 * 3.0, 1e-6, 0);  // −0.5, 1.0, 3.0: the cost backup ignores done
  // λ = 1 is the plain minimum
  srl_bcq_lag_targets(y, h1, h2, r, done, 2, 3, 1.0, 0.9);
  CHECK_CLOSE(y[0], 0.5 + 0.9 * 2.0, 1e-6, 0);
}


TEST(pid_sequence_by_hand) {
  srl_pid_lagrangian pid = {.kp = 0.1, .ki = 0.003, .kd = 0.001, .thres = 1.0};
  const float q1[] = {2, 4}, q2[] = {1.5f, 1.5f}, q3[] = {-3, -1}, q4[] = {0, 4};
  // e = 2: I = 2, diff = 2
  CHECK_CLOSE(srl_pid_lagrangian_control(&pid, q1, 2), 0.1 * 2 + 0.003 * 2 + 0.001 * 2, 1e-7, 0);
  // e = 0.5: I = 2.5, diff = relu(0.5 − 2) = 0
  CHECK_CLOSE(srl_pid_lagrangian_control(&pid, q2, 2), 0.1 * 0.5 + 0.003 * 2.5, 1e-7, 0);
  CHECK_CLOSE(pid.integral, 2.5, 1e-7, 0);
  // e = −3: I = relu(−0.5) = 0, every term 0
  CHECK_CLOSE(srl_pid_lagrangian_control(&pid, q3, 2), 0.0, 0, 0);
  CHECK_CLOSE(pid.integral, 0.0, 0, 0);
  // e = 1: I = 1, diff = 1 − (−3) = 4
  CHECK_CLOSE(srl_pid_lagrangian_control(&pid, q4, 2), 0.1 + 0.003 + 0.004, 1e-7, 0);
  CHECK_CLOSE(pid.err_old, 1.0, 0, 0);
}


TEST(cpq_pieces_by_hand) {
  const float r[] = {1, 1, 1}, done[] = {0, 0, 1}, q[] = {2, 2, 2}, qc[] = {0.5f, 3, 0.5f};
  float y[3];
  srl_cpq_reward_targets(y, r, done, q, qc, 3, 0.9, 1.0);
  CHECK_CLOSE(y[0], 2.8, 1e-6, 0);  // safe: bootstraps
  CHECK_CLOSE(y[1], 1.0, 1e-6, 0);  // Qc' above the threshold: no future reward
  CHECK_CLOSE(y[2], 1.0, 1e-6, 0);  // done
  const float x[] = {5, 1, 3, 2, 4, 8, 7, 6};
  float scratch[8], ood[2];
  CHECK_CLOSE(srl_quantile(x, 8, 0.75, scratch), 6.25, 1e-9, 0);  // torch.quantile
  CHECK_CLOSE(srl_quantile(x, 8, 0.5, scratch), 4.5, 1e-9, 0);
  CHECK_CLOSE(srl_quantile(x, 1, 0.75, scratch), 5, 0, 0);
  // kl of draw k of row i at k·2 + i: 1 5 | 2 6 | 3 7 | 4 8; quantile 6.25 keeps draws 2 and 3 of
  // row 1 (Qc 60 and 80)
  const float kl[] = {1, 5, 2, 6, 3, 7, 4, 8}, qcs[] = {10, 20, 30, 40, 50, 60, 70, 80};
  CHECK_CLOSE(srl_cpq_ood(ood, kl, qcs, 2, 4, scratch), 6.25, 1e-9, 0);
  CHECK_CLOSE(ood[0], 0.0, 0, 0);
  CHECK_CLOSE(ood[1], (60 + 80) / 4.0, 1e-6, 0);
  // log α: 0 → −0.2 → −0.2 + 0.1·e^−0.2·0.5; clamped to ±5
  double la = srl_cpq_log_alpha_update(0.0, 0.1, 1.0, 3.0);
  CHECK_CLOSE(la, -0.2, 1e-12, 0);
  la = srl_cpq_log_alpha_update(la, 0.1, 1.0, 0.5);
  CHECK_CLOSE(la, -0.2 + 0.1 * exp(-0.2) * 0.5, 1e-12, 0);
  CHECK_CLOSE(srl_cpq_log_alpha_update(4.9, 1.0, 10.0, 0.0), 5.0, 0, 0);
  CHECK_CLOSE(srl_cpq_log_alpha_update(-4.9, 1.0, 0.0, 1e6), -5.0, 0, 0);
}


TEST(coptidice_pieces_by_hand) {
  // softchi
  CHECK_CLOSE(srl_fdiv_f(SRL_FDIV_SOFTCHI, 0.5), 0.5 * (log(0.5) - 1) + 1, 1e-9, 0);
  CHECK_CLOSE(srl_fdiv_f(SRL_FDIV_SOFTCHI, 0.5), 0.153426, 1e-6, 0);
  CHECK_CLOSE(srl_fdiv_f(SRL_FDIV_SOFTCHI, 2.0), 0.5, 1e-12, 0);
  CHECK_CLOSE(srl_fdiv_f(SRL_FDIV_SOFTCHI, 1.0), 0.0, 1e-12, 0);
  CHECK_CLOSE(srl_fdiv_f(SRL_FDIV_SOFTCHI, 0.0), 1.0, 1e-12, 0);
  CHECK_CLOSE(srl_fdiv_f_prime_inv(SRL_FDIV_SOFTCHI, -1.0), exp(-1.0), 1e-12, 0);
  CHECK_CLOSE(srl_fdiv_f_prime_inv(SRL_FDIV_SOFTCHI, 0.5), 1.5, 1e-12, 0);
  CHECK_CLOSE(srl_fdiv_f_prime_inv(SRL_FDIV_SOFTCHI, 0.0), 1.0, 1e-12, 0);
  // chi2 and kl
  CHECK_CLOSE(srl_fdiv_f(SRL_FDIV_CHI2, 3.0), 2.0, 1e-12, 0);
  CHECK_CLOSE(srl_fdiv_f_prime_inv(SRL_FDIV_CHI2, -2.0), -1.0, 1e-12, 0);
  CHECK_CLOSE(srl_fdiv_f(SRL_FDIV_KL, 2.0), 2 * log(2.0), 1e-9, 0);
  CHECK_CLOSE(srl_fdiv_f_prime_inv(SRL_FDIV_KL, 1.0), 1.0, 1e-12, 0);
  // (f')⁻¹ inverts f' on each branch, and its derivative matches a difference quotient
  for (int k = 0; k < 3; k++) {
    const double ys[] = {-2.0, -0.3, 0.2, 1.7};
    for (int i = 0; i < 4; i++) {
      double y = ys[i], w = srl_fdiv_f_prime_inv((srl_fdiv)k, y);
      if (w <= 0) continue;
      CHECK_CLOSE(srl_fdiv_f_prime((srl_fdiv)k, w), y, 1e-6, 0);
      double h = 1e-6, fd = (srl_fdiv_f_prime_inv((srl_fdiv)k, y + h) -
                             srl_fdiv_f_prime_inv((srl_fdiv)k, y - h)) /
                            (2 * h);
      CHECK_CLOSE(srl_fdiv_f_prime_inv_deriv((srl_fdiv)k, y), fd, 1e-6, 1e-6);
      double fdf = (srl_fdiv_f((srl_fdiv)k, w + h) - srl_fdiv_f((srl_fdiv)k, w - h)) / (2 * h);
      CHECK_CLOSE(srl_fdiv_f_prime((srl_fdiv)k, w), fdf, 1e-6, 1e-6);
    }
  }
  // w = relu((f')⁻¹(e/α)), α = 0.5
  const float e[] = {-1.0f, 0.25f, 2.0f};
  float w[3];
  srl_coptidice_w(w, NULL, e, 3, 0.5, SRL_FDIV_SOFTCHI);
  CHECK_CLOSE(w[0], exp(-2.0), 1e-7, 0);
  CHECK_CLOSE(w[1], 1.5, 1e-7, 0);
  CHECK_CLOSE(w[2], 5.0, 1e-6, 0);
  srl_coptidice_w(w, NULL, e, 3, 0.5, SRL_FDIV_CHI2);
  CHECK_CLOSE(w[0], 0.0, 0, 0);  // relu(−1)
  CHECK_CLOSE(w[1], 1.5, 1e-7, 0);
  // e = r − λc + γ(1 − d)ν' − ν
  const float r[] = {1, 2}, c[] = {1, 0}, d[] = {0, 1}, nu[] = {0.5f, 1}, nn[] = {2, 3};
  float res[2];
  srl_coptidice_residual(res, r, c, d, nu, nn, 2, 0.5, 0.9);
  CHECK_CLOSE(res[0], 1 - 0.5 + 0.9 * 2 - 0.5, 1e-6, 0);
  CHECK_CLOSE(res[1], 2 - 1, 1e-6, 0);
  // ν loss: e = {−0.5, 0.5}, α = 0.5, γ = 0.9, ν(s0) = {1, 3}
  const float e2[] = {-0.5f, 0.5f}, dd[] = {0, 0}, ni[] = {1, 3};
  double w0 = exp(-1.0), f0 = w0 * (log(w0) - 1) + 1;
  double want = 0.1 * 2 + ((w0 * -0.5 - 0.5 * f0) + (2 * 0.5 - 0.5 * 0.5)) / 2;
  CHECK_CLOSE(srl_coptidice_nu_loss(NULL, NULL, NULL, e2, dd, ni, 2, 0.5, 0.9, SRL_FDIV_SOFTCHI),
              want, 1e-7, 0);
  CHECK_CLOSE(want, 0.416970, 1e-6, 0);
  // λ loss softplus(1)·(2 − 0.5) and its gradient sigmoid(1)·1.5
  double g;
  CHECK_CLOSE(srl_coptidice_lambda_loss(&g, 1.0, 2.0, 0.5), log1p(exp(1.0)) * 1.5, 1e-12, 0);
  CHECK_CLOSE(g, 1.5 / (1 + exp(-1.0)), 1e-12, 0);
}


//---- finite differences of the pure losses -----------------------------------------------------

#define FN 6

typedef struct nu_ctx {
  float nu[FN], nn[FN], ni[FN], r[FN], c[FN], d[FN];
  srl_fdiv kind;
} nu_ctx;

static double nu_loss_of(void *p) {
  nu_ctx *x = p;
  float e[FN];
  srl_coptidice_residual(e, x->r, x->c, x->d, x->nu, x->nn, FN, 0.7, 0.9);
  return srl_coptidice_nu_loss(NULL, NULL, NULL, e, x->d, x->ni, FN, 0.5, 0.9, x->kind);
}

TEST(coptidice_nu_loss_gradient) {
  srl_rng *rng;
  CHECK_OK(srl_rng_create(&rng, 5, 0));
  for (int k = 0; k < 3; k++) {
    nu_ctx x = {.kind = (srl_fdiv)k};
    for (int i = 0; i < FN; i++) {
      x.nu[i] = (float)srl_rng_normal(rng), x.nn[i] = (float)srl_rng_normal(rng);
      x.ni[i] = (float)srl_rng_normal(rng), x.r[i] = (float)srl_rng_uniform(rng);
      x.c[i] = i % 2, x.d[i] = i == 3;
    }
    float e[FN], g1[FN], g2[FN], g3[FN];
    srl_coptidice_residual(e, x.r, x.c, x.d, x.nu, x.nn, FN, 0.7, 0.9);
    srl_coptidice_nu_loss(g1, g2, g3, e, x.d, x.ni, FN, 0.5, 0.9, x.kind);
    CHECK_EQ_INT(fd_check("dnu", x.nu, g1, FN, FN, nu_loss_of, &x, 1e-3, 1e-4, 1e-3), 0);
    CHECK_EQ_INT(fd_check("dnu_next", x.nn, g2, FN, FN, nu_loss_of, &x, 1e-3, 1e-4, 1e-3), 0);
    CHECK_EQ_INT(fd_check("dnu_init", x.ni, g3, FN, FN, nu_loss_of, &x, 1e-3, 1e-4, 1e-3), 0);
    // w's derivative
    float w[FN], dw[FN], ep[FN], wp[FN], wm[FN];
    srl_coptidice_w(w, dw, e, FN, 0.5, x.kind);
    for (int i = 0; i < FN; i++) ep[i] = e[i] + 1e-3f;
    srl_coptidice_w(wp, NULL, ep, FN, 0.5, x.kind);
    for (int i = 0; i < FN; i++) ep[i] = e[i] - 1e-3f;
    srl_coptidice_w(wm, NULL, ep, FN, 0.5, x.kind);
    for (int i = 0; i < FN; i++) CHECK_CLOSE(dw[i], (wp[i] - wm[i]) / 2e-3, 2e-3, 2e-3);
  }
  srl_rng_destroy(rng);
}


typedef struct chi_ctx {
  float chi[FN], cn[FN], ci[FN], w[FN], c[FN], d[FN];
} chi_ctx;

static double chi_loss_of(void *p) {
  chi_ctx *x = p;
  srl_coptidice_chi_out o;
  srl_coptidice_chi_loss(&o, NULL, NULL, NULL, x->chi, x->cn, x->ci, x->w, x->c, x->d, FN, 0.9,
                         0.8);
  return o.loss;
}

TEST(coptidice_chi_loss_gradient) {
  srl_rng *rng;
  CHECK_OK(srl_rng_create(&rng, 6, 0));
  chi_ctx x;
  for (int i = 0; i < FN; i++) {
    x.chi[i] = (float)srl_rng_normal(rng), x.cn[i] = (float)srl_rng_normal(rng);
    x.ci[i] = (float)srl_rng_normal(rng), x.w[i] = (float)srl_rng_uniform_range(rng, 0, 2);
    x.c[i] = i % 3 == 0, x.d[i] = i == 2;
  }
  float g1[FN], g2[FN], g3[FN];
  srl_coptidice_chi_out o;
  srl_coptidice_chi_loss(&o, g1, g2, g3, x.chi, x.cn, x.ci, x.w, x.c, x.d, FN, 0.9, 0.8);
  // the values by their definitions
  double ell[FN], z = 0, loss = 0, dkl = 0, wc = 0;
  for (int i = 0; i < FN; i++) {
    ell[i] = 0.1 * x.ci[i] + x.w[i] * (x.c[i] + 0.9 * (1 - x.d[i]) * x.cn[i] - x.chi[i]);
    z += exp(ell[i] / 0.8);
  }
  for (int i = 0; i < FN; i++) {
    double wt = FN * exp(ell[i] / 0.8) / z;
    loss += wt * ell[i] / FN;
    dkl += (wt * log(wt) - wt + 1) / FN;
    wc += wt * x.w[i] * x.c[i] / FN;
  }
  CHECK_CLOSE(o.loss, loss, 1e-6, 1e-6);
  CHECK_CLOSE(o.d_kl, dkl, 1e-6, 1e-6);
  CHECK_CLOSE(o.weighted_c, wc, 1e-6, 1e-6);
  CHECK_EQ_INT(fd_check("dchi", x.chi, g1, FN, FN, chi_loss_of, &x, 1e-3, 1e-4, 1e-3), 0);
  CHECK_EQ_INT(fd_check("dchi_next", x.cn, g2, FN, FN, chi_loss_of, &x, 1e-3, 1e-4, 1e-3), 0);
  CHECK_EQ_INT(fd_check("dchi_init", x.ci, g3, FN, FN, chi_loss_of, &x, 1e-3, 1e-4, 1e-3), 0);
  srl_rng_destroy(rng);
}


typedef struct pol_ctx {
  float out[FN * 2 * TA], x[FN * TA], w[FN], eps[FN * TA], da[FN * TA];
} pol_ctx;

static double pol_loss_of(void *p) {
  pol_ctx *c = p;
  return srl_coptidice_policy_loss(NULL, c->out, c->x, c->w, FN, TA);
}

// Σ da·tanh(μ + σ·ε): a linear probe of the squashed sample
static double squash_of(void *p) {
  pol_ctx *c = p;
  float a[FN * TA];
  srl_squashed_gaussian_sample(a, c->out, c->eps, FN, TA);
  double s = 0;
  for (int k = 0; k < FN * TA; k++) s += (double)c->da[k] * a[k];
  return s;
}

TEST(policy_and_squash_gradients) {
  srl_rng *rng;
  CHECK_OK(srl_rng_create(&rng, 7, 0));
  pol_ctx c;
  for (int k = 0; k < FN * 2 * TA; k++) c.out[k] = (float)srl_rng_uniform_range(rng, -1, 1);
  c.out[TA] = 2.5f;             // a clamped log σ (above 2): no gradient
  c.out[2 * TA + TA] = -21.0f;  // below −20
  for (int k = 0; k < FN * TA; k++) {
    c.x[k] = (float)srl_rng_uniform_range(rng, -1, 1);
    c.eps[k] = (float)srl_rng_normal(rng);
    c.da[k] = (float)srl_rng_normal(rng);
  }
  for (int i = 0; i < FN; i++) c.w[i] = (float)srl_rng_uniform_range(rng, 0, 3);
  c.out[2 * TA + TA] = -1.0f;  // keep the σ of row 1 moderate for the likelihood
  float g[FN * 2 * TA];
  srl_coptidice_policy_loss(g, c.out, c.x, c.w, FN, TA);
  CHECK_EQ_INT(
      fd_check("policy", c.out, g, FN * 2 * TA, FN * 2 * TA, pol_loss_of, &c, 1e-3, 1e-4, 2e-3), 0);
  CHECK_CLOSE(g[TA], 0.0, 0, 0);  // clamped
  // the likelihood by its definition for one row
  double lp = 0;
  for (int j = 0; j < TA; j++) {
    double ls = c.out[2 * TA * 1 + TA + j], mu = c.out[2 * TA * 1 + j], x = c.x[TA + j];
    lp += -0.5 * (x - mu) * (x - mu) / exp(2 * ls) - ls - 0.5 * log(2 * M_PI);
  }
  float one_w[FN] = {0};
  one_w[1] = 1.0f;
  CHECK_CLOSE(srl_coptidice_policy_loss(NULL, c.out, c.x, one_w, FN, TA), -lp / FN, 1e-6, 1e-6);

  // squashed sample backward
  c.out[2 * TA + TA] = -21.0f;
  srl_squashed_gaussian_backward(g, c.da, c.out, c.eps, FN, TA);
  CHECK_EQ_INT(
      fd_check("squash", c.out, g, FN * 2 * TA, FN * 2 * TA, squash_of, &c, 1e-3, 1e-4, 2e-3), 0);
  CHECK_CLOSE(g[TA], 0.0, 0, 0);
  CHECK_CLOSE(g[2 * TA + TA], 0.0, 0, 0);
  srl_rng_destroy(rng);
}


//---- the VAE -----------------------------------------------------------------------------------

#define VB 8

typedef struct vae_ctx {
  srl_vae *v;
  float obs[VB * TO], act[VB * TA], eps[VB * 2 * TA];
} vae_ctx;

static double vae_loss_of(void *p) {
  vae_ctx *c = p;
  srl_vae_terms t;
  if (srl_vae_loss(c->v, &t, c->obs, c->act, c->eps, VB, 0) < 0) return NAN;
  return t.loss;
}

TEST(vae_loss_and_gradient) {
  srl_rng *rng;
  CHECK_OK(srl_rng_create(&rng, 8, 0));
  srl_vae_config cfg = srl_vae_config_default(TO, TA, VB);
  cfg.hidden = 16;
  vae_ctx c;
  CHECK_OK(srl_vae_create(&c.v, srl_ops_cpu(), &cfg, rng));
  if (!c.v) return;
  CHECK_EQ_INT(c.v->L, 2 * TA);
  srl_rng_fill_uniform(rng, c.obs, VB * TO, -1, 1);
  srl_rng_fill_uniform(rng, c.act, VB * TA, -0.9f, 0.9f);
  srl_rng_fill_normal(rng, c.eps, VB * 2 * TA, 0, 1);

  // the loss assembled from encode and decode by its definition
  int L = c.v->L;
  float mean[VB * 4], sd[VB * 4], z[VB * 4], u[VB * TA], klr[VB];
  CHECK_OK(srl_vae_encode(c.v, mean, sd, c.obs, c.act, VB));
  double kl = 0, rec = 0;
  for (int k = 0; k < VB * L; k++) {
    z[k] = mean[k] + sd[k] * c.eps[k];
    kl +=
        -0.5 * (1 + log((double)sd[k] * sd[k]) - (double)mean[k] * mean[k] - (double)sd[k] * sd[k]);
  }
  kl /= VB * L;
  CHECK_OK(srl_vae_decode(c.v, u, c.obs, z, VB, NULL));
  for (int k = 0; k < VB * TA; k++) rec += ((double)u[k] - c.act[k]) * (u[k] - c.act[k]);
  rec /= VB * TA;
  srl_vae_terms t;
  CHECK_OK(srl_vae_loss(c.v, &t, c.obs, c.act, c.eps, VB, 0));
  CHECK_CLOSE(t.recon, rec, 1e-6, 1e-5);
  CHECK_CLOSE(t.kl, kl, 1e-6, 1e-5);
  CHECK_CLOSE(t.loss, rec + 0.5 * kl, 1e-6, 1e-5);
  srl_vae_kl_rows(klr, mean, sd, VB, L);
  double s = 0;
  for (int i = 0; i < VB; i++) s += klr[i];
  CHECK_CLOSE(s / VB, kl, 1e-6, 1e-5);

  // gradients through both networks against central differences
  srl_vae_zero_grad(c.v);
  CHECK_OK(srl_vae_loss(c.v, &t, c.obs, c.act, c.eps, VB, 1));
  CHECK_EQ_INT(fd_check("vae.decoder", c.v->dec->params, c.v->dec->grads, c.v->dec->n_params, 60,
                        vae_loss_of, &c, 2e-3, 2e-4, 2e-2),
               0);
  CHECK_EQ_INT(fd_check("vae.encoder", c.v->enc->params, c.v->enc->grads, c.v->enc->n_params, 60,
                        vae_loss_of, &c, 2e-3, 2e-4, 2e-2),
               0);

  // sampling: latents N(0, 1) clipped to ±0.5 from the rng, chunked beyond max_batch
  float obs2[3 * VB * TO], a1[3 * VB * TA], a2[3 * VB * TA], zs[3 * VB * 4];
  srl_rng_fill_uniform(rng, obs2, 3 * VB * TO, -1, 1);
  srl_rng *r1, *r2;
  CHECK_OK(srl_rng_create(&r1, 99, 0));
  CHECK_OK(srl_rng_create(&r2, 99, 0));
  CHECK_OK(srl_vae_decode(c.v, a1, obs2, NULL, 3 * VB - 1, r1));
  srl_rng_fill_normal(r2, zs, (size_t)(3 * VB - 1) * L, 0, 1);
  int clipped = 0;
  for (int k = 0; k < (3 * VB - 1) * L; k++) {
    clipped += fabsf(zs[k]) > 0.5f;
    zs[k] = zs[k] > 0.5f ? 0.5f : zs[k] < -0.5f ? -0.5f : zs[k];
  }
  CHECK(clipped > 0);
  CHECK_OK(srl_vae_decode(c.v, a2, obs2, zs, 3 * VB - 1, NULL));
  CHECK(!memcmp(a1, a2, sizeof(float) * (3 * VB - 1) * TA));
  for (int k = 0; k < (3 * VB - 1) * TA; k++) CHECK(fabsf(a1[k]) <= 1.0f);

  // training lowers the loss on a fixed batch
  double first = 0, last = 0;
  for (int it = 0; it < 200; it++) {
    CHECK_OK(srl_vae_train(c.v, &t, c.obs, c.act, VB, rng));
    if (it < 10) first += t.loss;
    if (it >= 190) last += t.loss;
  }
  CHECK(last < 0.5 * first);
  srl_vae_destroy(c.v);
  srl_rng_destroy(r1);
  srl_rng_destroy(r2);
  srl_rng_destroy(rng);
}


//---- the perturbation actor's objective --------------------------------------------------------

#define AB 8

typedef struct bcq_ctx {
  srl_bcq_lag *b;
  float obs[AB * TO], av[AB * TA];
  double mult;
} bcq_ctx;

static double bcq_objective_of(void *p) {
  bcq_ctx *c = p;
  double l;
  if (srl_bcq_lag_actor_objective(c->b, &l, c->obs, c->av, AB, c->mult, 0) < 0) return NAN;
  return l;
}

static srl_bcq_lag_params small_bcq(void) {
  srl_bcq_lag_params p;
  srl_bcq_lag_params_default(&p);
  p.actor_hidden[0] = p.actor_hidden[1] = 16;
  p.critic_hidden[0] = p.critic_hidden[1] = 16;
  p.vae_hidden = 16;
  p.sample_action_num = 4;
  return p;
}

TEST(bcq_actor_objective_gradient) {
  srl_bcq_lag_params p = small_bcq();
  p.phi = 0.3;  // a larger perturbation, still unclamped for |â| ≤ 0.5
  srl_offline_setup s = toy_setup(AB, 11);
  bcq_ctx c = {.mult = 0.7};
  CHECK_OK(srl_bcq_lag_create(&c.b, &s, &p));
  if (!c.b) return;
  srl_rng *rng;
  CHECK_OK(srl_rng_create(&rng, 12, 0));
  srl_rng_fill_uniform(rng, c.obs, AB * TO, -1, 1);
  srl_rng_fill_uniform(rng, c.av, AB * TA, -0.5f, 0.5f);
  double l;
  CHECK_OK(srl_bcq_lag_actor_objective(c.b, &l, c.obs, c.av, AB, c.mult, 1));
  srl_mlp *actor = srl_bcq_lag_actor(c.b);
  CHECK_EQ_INT(fd_check("bcq actor", actor->params, actor->grads, actor->n_params, 80,
                        bcq_objective_of, &c, 2e-3, 2e-5, 2e-2),
               0);
  // the gradient is not trivially zero, and the multiplier enters it
  double gn = 0;
  for (size_t k = 0; k < actor->n_params; k++) gn += (double)actor->grads[k] * actor->grads[k];
  CHECK(gn > 1e-10);
  double l0;
  CHECK_OK(srl_bcq_lag_actor_objective(c.b, &l0, c.obs, c.av, AB, 0.0, 0));
  CHECK(fabs(l - l0) > 1e-6);
  srl_bcq_lag_destroy(c.b);
  srl_rng_destroy(rng);
}


typedef struct cpq_ctx {
  srl_cpq *c;
  float obs[AB * TO], eps[AB * TA];
} cpq_ctx;

static double cpq_objective_of(void *p) {
  cpq_ctx *c = p;
  double l;
  if (srl_cpq_actor_objective(c->c, &l, c->obs, c->eps, AB, 0) < 0) return NAN;
  return l;
}

static srl_cpq_params small_cpq(void);

TEST(cpq_actor_objective_gradient) {
  srl_cpq_params p = small_cpq();
  srl_offline_setup s = toy_setup(AB, 13);
  cpq_ctx c;
  CHECK_OK(srl_cpq_create(&c.c, &s, &p));
  if (!c.c) return;
  srl_rng *rng;
  CHECK_OK(srl_rng_create(&rng, 14, 0));
  srl_rng_fill_uniform(rng, c.obs, AB * TO, -1, 1);
  srl_rng_fill_normal(rng, c.eps, AB * TA, 0, 1);
  // the policy's actions and their Qc, by hand; q_thres between the 3rd and 4th smallest Qc
  srl_mlp *actor = srl_cpq_actor(c.c);
  float a[AB * TA], q[AB], qc[AB], sorted[AB];
  CHECK_OK(srl_mlp_forward(actor, c.obs, AB));
  srl_squashed_gaussian_sample(a, actor->out, c.eps, AB, TA);
  CHECK_OK(srl_cpq_critic_values(c.c, q, qc, c.obs, a, AB));
  memcpy(sorted, qc, sizeof qc);
  for (int i = 0; i < AB; i++)
    for (int j = i + 1; j < AB; j++)
      if (sorted[j] < sorted[i]) {
        float t = sorted[i];
        sorted[i] = sorted[j], sorted[j] = t;
      }
  double thr = 0.5 * (sorted[2] + sorted[3]);
  srl_cpq_destroy(c.c);
  s.cost_limit = thr / srl_baselines_qc_threshold(1, s.gamma, s.episode_len);
  CHECK_OK(srl_cpq_create(&c.c, &s, &p));
  if (!c.c) return;
  double l;
  CHECK_OK(srl_cpq_actor_objective(c.c, &l, c.obs, c.eps, AB, 1));
  double want = 0;
  for (int i = 0; i < AB; i++) want -= qc[i] <= (float)thr ? q[i] / AB : 0.0;
  CHECK_CLOSE(l, want, 1e-6, 1e-5);
  actor = srl_cpq_actor(c.c);
  CHECK_EQ_INT(fd_check("cpq actor", actor->params, actor->grads, actor->n_params, 80,
                        cpq_objective_of, &c, 2e-3, 2e-5, 2e-2),
               0);
  double gn = 0;
  for (size_t k = 0; k < actor->n_params; k++) gn += (double)actor->grads[k] * actor->grads[k];
  CHECK(gn > 1e-10);
  srl_cpq_destroy(c.c);

  // the same networks with every row under the threshold give another value: rows were dropped
  s.cost_limit = 1000;
  CHECK_OK(srl_cpq_create(&c.c, &s, &p));
  if (c.c) {
    double all;
    CHECK_OK(srl_cpq_actor_objective(c.c, &all, c.obs, c.eps, AB, 0));
    CHECK(fabs(all - l) > 1e-4 && fabs(l) > 1e-4);
    srl_cpq_destroy(c.c);
  }

  // every row above the threshold: no objective, no gradient
  s.cost_limit = -1000;
  CHECK_OK(srl_cpq_create(&c.c, &s, &p));
  if (c.c) {
    CHECK_OK(srl_cpq_actor_objective(c.c, &l, c.obs, c.eps, AB, 1));
    CHECK_CLOSE(l, 0.0, 0, 0);
    actor = srl_cpq_actor(c.c);
    gn = 0;
    for (size_t k = 0; k < actor->n_params; k++) gn += fabs(actor->grads[k]);
    CHECK_CLOSE(gn, 0.0, 0, 0);
    srl_cpq_destroy(c.c);
  }
  srl_rng_destroy(rng);
}


//---- learning on the generated dataset ---------------------------------------------------------

// mean of a named statistic over updates [from, to)
typedef struct stat_track {
  const char *name;
  double first, last;
} stat_track;

static double stat_of(const srl_offline_stats *st, const char *name) {
  for (int i = 0; i < st->n; i++)
    if (!strcmp(st->name[i], name)) return st->value[i];
  return NAN;
}

// run `steps` updates through the table; first / last: means over the first and last 20
static void run_updates(const srl_offline_algo *a, void *state, toy *t, int B, int steps,
                        stat_track *tr, int n_tr) {
  for (int k = 0; k < n_tr; k++) tr[k].first = tr[k].last = 0;
  for (int it = 0; it < steps; it++) {
    srl_offline_batch b = toy_batch(t, B);
    srl_offline_stats st = {0};
    int rc = a->update(state, &b, &st);
    if (rc < 0) {
      CHECK_OK(rc);
      return;
    }
    for (int k = 0; k < n_tr; k++) {
      double v = stat_of(&st, tr[k].name);
      CHECK(isfinite(v));
      if (it < 20) tr[k].first += v / 20;
      if (it >= steps - 20) tr[k].last += v / 20;
    }
  }
}

static void report(const char *algo, const stat_track *tr, int n) {
  for (int k = 0; k < n; k++)
    printf("  %s %s: %.4g -> %.4g\n", algo, tr[k].name, tr[k].first, tr[k].last);
}

TEST(bc_learns) {
  srl_bc_params p;
  srl_bc_params_default(&p);
  p.hidden[0] = p.hidden[1] = 32;
  srl_offline_setup s = toy_setup(64, 21);
  void *state = NULL;
  CHECK_OK(srl_offline_bc_all.create(&state, &s, &p));
  if (!state) return;
  toy *t = toy_create(1);
  stat_track tr[] = {{"loss_actor", 0, 0}};
  run_updates(&srl_offline_bc_all, state, t, 64, 300, tr, 1);
  report("bc", tr, 1);
  CHECK(tr[0].last < 0.25 * tr[0].first);
  // the policy follows the behaviour map
  float a[4 * TA];
  CHECK_OK(srl_offline_bc_all.act(state, a, t->obs, 4, NULL));
  double err = 0;
  for (int i = 0; i < 4; i++) {
    const float *o = t->obs + i * TO;
    err += fabs(a[i * TA] - tanhf(0.8f * (o[0] + o[1]))) +
           fabs(a[i * TA + 1] - tanhf(0.8f * (o[2] - o[0])));
  }
  CHECK(err / 8 < 0.15);
  srl_offline_bc_all.destroy(state);
  toy_destroy(t);
}


TEST(bcq_lag_learns) {
  srl_bcq_lag_params p = small_bcq();
  srl_offline_setup s = toy_setup(64, 22);
  void *state = NULL;
  CHECK_OK(srl_offline_bcq_lag.create(&state, &s, &p));
  if (!state) return;
  toy *t = toy_create(2);
  stat_track tr[] = {
      {"loss_vae", 0, 0}, {"loss_critic", 0, 0}, {"loss_cost_critic", 0, 0}, {"lambda", 0, 0}};
  run_updates(&srl_offline_bcq_lag, state, t, 64, 300, tr, 4);
  report("bcq_lag", tr, 4);
  CHECK(tr[0].last < 0.5 * tr[0].first);
  CHECK(tr[1].last < 0.5 * tr[1].first);
  CHECK(tr[2].last < 0.5 * tr[2].first);
  CHECK(tr[3].last >= 0);
  srl_offline_bcq_lag.destroy(state);
  toy_destroy(t);
}


static srl_cpq_params small_cpq(void) {
  srl_cpq_params p;
  srl_cpq_params_default(&p);
  p.actor_hidden[0] = p.actor_hidden[1] = 16;
  p.critic_hidden[0] = p.critic_hidden[1] = 16;
  p.vae_hidden = 16;
  p.sample_action_num = 4;
  return p;
}

TEST(cpq_learns) {
  srl_cpq_params p = small_cpq();
  srl_offline_setup s = toy_setup(64, 23);
  void *state = NULL;
  CHECK_OK(srl_offline_cpq.create(&state, &s, &p));
  if (!state) return;
  toy *t = toy_create(3);
  stat_track tr[] = {{"loss_vae", 0, 0},
                     {"loss_critic", 0, 0},
                     {"qc_ood", 0, 0},
                     {"alpha", 0, 0},
                     {"loss_actor", 0, 0}};
  run_updates(&srl_offline_cpq, state, t, 64, 300, tr, 5);
  report("cpq", tr, 5);
  CHECK(tr[0].last < 0.5 * tr[0].first);
  CHECK(tr[1].last < 0.5 * tr[1].first);
  // α moves against the OOD cost: up while it exceeds qc_thres, down below
  double thr = 1.5 * srl_baselines_qc_threshold(10, 0.9, 100);
  CHECK(tr[3].last > 0);
  if (tr[2].last > thr) CHECK(tr[3].last < 1.0);
  srl_offline_cpq.destroy(state);
  toy_destroy(t);
}


static srl_coptidice_params small_coptidice(void) {
  srl_coptidice_params p;
  srl_coptidice_params_default(&p);
  p.actor_hidden[0] = p.actor_hidden[1] = 16;
  p.critic_hidden[0] = p.critic_hidden[1] = 16;
  p.actor_lr = p.critic_lr = p.scalar_lr = 1e-3;
  return p;
}

TEST(coptidice_learns) {
  srl_coptidice_params p = small_coptidice();
  srl_offline_setup s = toy_setup(64, 24);
  void *state = NULL;
  CHECK_OK(srl_offline_coptidice.create(&state, &s, &p));
  if (!state) return;
  toy *t = toy_create(4);
  stat_track tr[] = {{"loss_nu", 0, 0},
                     {"loss_actor", 0, 0},
                     {"td_error", 0, 0},
                     {"lambda", 0, 0},
                     {"d_kl", 0, 0}};
  run_updates(&srl_offline_coptidice, state, t, 64, 400, tr, 5);
  report("coptidice", tr, 5);
  CHECK(tr[0].last < tr[0].first);
  CHECK(tr[1].last < tr[1].first - 0.5);
  // cost well under the per-step threshold: λ falls from softplus(1)
  CHECK(tr[3].last < log1p(exp(1.0)));
  srl_offline_coptidice.destroy(state);

  // without the upper bound (ε = 0) the update runs and reports no χ loss
  p.cost_ub_epsilon = 0;
  CHECK_OK(srl_offline_coptidice.create(&state, &s, &p));
  if (!state) {
    toy_destroy(t);
    return;
  }
  stat_track t0[] = {{"loss_chi", 0, 0}, {"weighted_c", 0, 0}};
  run_updates(&srl_offline_coptidice, state, t, 64, 30, t0, 2);
  CHECK_CLOSE(t0[0].last, 0.0, 0, 0);
  CHECK(t0[1].last > 0);
  srl_offline_coptidice.destroy(state);
  toy_destroy(t);
}


//---- no allocation in update or act, and bad input -------------------------------------------

static long allocs;
static void *counting_malloc(size_t bytes, size_t align) {
  allocs++;
  void *p = NULL;
  return posix_memalign(&p, align, bytes ? bytes : align) ? NULL : p;
}

static const srl_offline_algo *const algos[] = {&srl_offline_bc_all, &srl_offline_bcq_lag,
                                                &srl_offline_cpq, &srl_offline_coptidice};

// small parameters of algorithm i into buf
static void *small_params(int i, void *buf) {
  switch (i) {
    case 0: {
      srl_bc_params *p = buf;
      srl_bc_params_default(p);
      p->hidden[0] = p->hidden[1] = 16;
      return p;
    }
    case 1:
      *(srl_bcq_lag_params *)buf = small_bcq();
      return buf;
    case 2:
      *(srl_cpq_params *)buf = small_cpq();
      return buf;
    default:
      *(srl_coptidice_params *)buf = small_coptidice();
      return buf;
  }
}

TEST(no_allocation_in_update_or_act) {
  toy *t = toy_create(5);
  srl_set_allocator(counting_malloc, free);
  for (int i = 0; i < 4; i++) {
    union {
      srl_bc_params a;
      srl_bcq_lag_params b;
      srl_cpq_params c;
      srl_coptidice_params d;
    } buf;
    srl_offline_setup s = toy_setup(32, 30 + i);
    void *state = NULL;
    CHECK_OK(algos[i]->create(&state, &s, small_params(i, &buf)));
    if (!state) continue;
    srl_rng *rng;
    CHECK_OK(srl_rng_create(&rng, 1, 0));
    float act[4 * TA];
    long before = allocs;
    for (int it = 0; it < 5; it++) {
      srl_offline_batch b = toy_batch(t, 32);
      srl_offline_stats st = {0};
      CHECK_OK(algos[i]->update(state, &b, &st));
      CHECK(st.n > 0);
      CHECK_OK(algos[i]->act(state, act, t->obs, 4, rng));
    }
    if (allocs != before) printf("  %s allocated %ld times\n", algos[i]->name, allocs - before);
    CHECK_EQ_INT(allocs - before, 0);
    // a wrong batch size and too many observations are refused
    srl_offline_batch b = toy_batch(t, 16);
    CHECK_ERR(algos[i]->update(state, &b, NULL), SRL_EINVAL);
    float big[8 * TA];
    CHECK_ERR(algos[i]->act(state, big, t->obs, 5, rng), SRL_ERANGE);
    algos[i]->destroy(state);
    srl_rng_destroy(rng);
  }
  srl_set_allocator(NULL, NULL);
  toy_destroy(t);
}


TEST(bad_parameters_refused) {
  srl_offline_setup s = toy_setup(32, 1);
  srl_bcq_lag_params q = small_bcq();
  srl_bcq_lag *b = NULL;
  q.n_pid = 2;
  CHECK_ERR(srl_bcq_lag_create(&b, &s, &q), SRL_EINVAL);
  CHECK_ERRMSG("pid");
  q = small_bcq();
  q.num_q = 5;
  CHECK_ERR(srl_bcq_lag_create(&b, &s, &q), SRL_EINVAL);
  srl_coptidice_params d = small_coptidice();
  strcpy(d.f_type, "tv");
  srl_coptidice *c = NULL;
  CHECK_ERR(srl_coptidice_create(&c, &s, &d), SRL_EINVAL);
  CHECK_ERRMSG("f_type");
  srl_cpq_params p = small_cpq();
  p.tau = NAN;
  srl_cpq *cp = NULL;
  CHECK_ERR(srl_cpq_create(&cp, &s, &p), SRL_EINVAL);
  srl_offline_setup bad = s;
  bad.ops = NULL;
  srl_bc_params bp;
  srl_bc_params_default(&bp);
  srl_bc *bc = NULL;
  CHECK_ERR(srl_bc_create(&bc, &bad, &bp), SRL_EINVAL);
  CHECK(b == NULL && c == NULL && cp == NULL && bc == NULL);
}


//---- checkpoints -------------------------------------------------------------------------------

static int save_to(const srl_offline_algo *a, void *state, const char *path) {
  srl_st_writer *w = NULL;
  SRL_TRY(srl_st_writer_create(&w));
  int rc = a->save(state, w);
  if (rc == 0) rc = srl_st_write(w, path);
  srl_st_writer_destroy(w);
  return rc;
}

static int load_from(const srl_offline_algo *a, void *state, const char *path) {
  srl_st_file *f = NULL;
  SRL_TRY(srl_st_open(&f, path));
  int rc = a->load(state, f);
  srl_st_close(f);
  return rc;
}

TEST(checkpoint_round_trips) {
  toy *t = toy_create(6);
  for (int i = 0; i < 4; i++) {
    union {
      srl_bc_params a;
      srl_bcq_lag_params b;
      srl_cpq_params c;
      srl_coptidice_params d;
    } buf;
    void *params = small_params(i, &buf);
    srl_offline_setup s1 = toy_setup(32, 40 + i), s2 = toy_setup(32, 50 + i);
    void *x = NULL, *y = NULL;
    CHECK_OK(algos[i]->create(&x, &s1, params));
    CHECK_OK(algos[i]->create(&y, &s2, params));
    if (!x || !y) continue;
    for (int it = 0; it < 15; it++) {
      srl_offline_batch b = toy_batch(t, 32);
      CHECK_OK(algos[i]->update(x, &b, NULL));
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", tmp_dir, algos[i]->name);
    CHECK_OK(save_to(algos[i], x, path));
    // a differently seeded copy acts differently until it loads the checkpoint
    srl_rng *r1, *r2;
    float a1[4 * TA], a2[4 * TA];
    CHECK_OK(srl_rng_create(&r1, 3, 0));
    CHECK_OK(srl_rng_create(&r2, 3, 0));
    CHECK_OK(algos[i]->act(x, a1, t->obs, 4, r1));
    CHECK_OK(algos[i]->act(y, a2, t->obs, 4, r2));
    CHECK(memcmp(a1, a2, sizeof a1) != 0);
    CHECK_OK(load_from(algos[i], y, path));
    srl_rng_seed(r1, 4, 0);
    srl_rng_seed(r2, 4, 0);
    CHECK_OK(algos[i]->act(x, a1, t->obs, 4, r1));
    CHECK_OK(algos[i]->act(y, a2, t->obs, 4, r2));
    CHECK(!memcmp(a1, a2, sizeof a1));
    // the next updates agree too: optimizer moments, counters, rng streams and multipliers
    for (int it = 0; it < 3; it++) {
      srl_offline_batch b = toy_batch(t, 32);
      srl_offline_stats sx = {0}, sy = {0};
      CHECK_OK(algos[i]->update(x, &b, &sx));
      CHECK_OK(algos[i]->update(y, &b, &sy));
      CHECK_EQ_INT(sx.n, sy.n);
      for (int k = 0; k < sx.n; k++)
        if (sx.value[k] != sy.value[k]) {
          printf("  %s: %s %.9g vs %.9g\n", algos[i]->name, sx.name[k], sx.value[k], sy.value[k]);
          CHECK(sx.value[k] == sy.value[k]);
        }
    }
    CHECK_OK(algos[i]->act(x, a1, t->obs, 4, r1));
    CHECK_OK(algos[i]->act(y, a2, t->obs, 4, r2));
    CHECK(!memcmp(a1, a2, sizeof a1));
    algos[i]->destroy(y);
    y = NULL;

    // a checkpoint of another shape is refused and leaves the state as it was
    if (i == 0) {
      srl_bc_params other = buf.a;
      other.hidden[1] = 8;
      CHECK_OK(algos[i]->create(&y, &s2, &other));
      if (y) CHECK_ERR(load_from(algos[i], y, path), SRL_EFORMAT);
    } else if (i == 1) {
      srl_bcq_lag_params other = buf.b;
      other.num_qc = 3;
      CHECK_OK(algos[i]->create(&y, &s2, &other));
      if (y) {
        float b1[4 * TA], b2[4 * TA];
        srl_rng_seed(r1, 5, 0);
        CHECK_OK(algos[i]->act(y, b1, t->obs, 4, r1));
        CHECK_ERR(load_from(algos[i], y, path), SRL_ENOTFOUND);
        srl_rng_seed(r1, 5, 0);
        CHECK_OK(algos[i]->act(y, b2, t->obs, 4, r1));
        CHECK(!memcmp(b1, b2, sizeof b1));
      }
    } else if (i == 3) {
      srl_coptidice_params other = buf.d;
      other.critic_hidden[0] = 8;
      CHECK_OK(algos[i]->create(&y, &s2, &other));
      if (y) CHECK_ERR(load_from(algos[i], y, path), SRL_EFORMAT);
    }
    if (y) algos[i]->destroy(y);
    algos[i]->destroy(x);
    srl_rng_destroy(r1);
    srl_rng_destroy(r2);
    unlink(path);
  }
  toy_destroy(t);
}


//---- CUDA against the CPU twin ------------------------------------------------------------------

// three updates of each baseline from the same seed and batches on both devices: every loss and
// statistic agrees (sums in a different order are the only difference)
TEST(cuda_updates_match_cpu) {
  const srl_ops *cuda = NULL;
  if (srl_ops_cuda(&cuda) < 0) SKIP("no CUDA device");
  for (int i = 0; i < 4; i++) {
    union {
      srl_bc_params a;
      srl_bcq_lag_params b;
      srl_cpq_params c;
      srl_coptidice_params d;
    } buf;
    toy *t = toy_create(40 + i);
    srl_offline_setup s = toy_setup(32, 50 + i);
    void *cpu = NULL, *gpu = NULL;
    CHECK_OK(algos[i]->create(&cpu, &s, small_params(i, &buf)));
    s.ops = cuda;
    CHECK_OK(algos[i]->create(&gpu, &s, small_params(i, &buf)));
    double worst = 0;
    for (int it = 0; it < 3 && cpu && gpu; it++) {
      srl_offline_batch b = toy_batch(t, 32);
      srl_offline_stats sc = {0}, sg = {0};
      CHECK_OK(algos[i]->update(cpu, &b, &sc));
      CHECK_OK(algos[i]->update(gpu, &b, &sg));
      CHECK_EQ_INT(sc.n, sg.n);
      for (int k = 0; k < sc.n && k < sg.n; k++) {
        double d = fabs(sg.value[k] - sc.value[k]) / (1e-3 + fabs(sc.value[k]));
        if (d > worst) worst = d;
        CHECK_CLOSE(sg.value[k], sc.value[k], 1e-4, 1e-3);
      }
    }
    printf("  %s: worst relative difference %.3g\n", algos[i]->name, worst);
    if (cpu) algos[i]->destroy(cpu);
    if (gpu) algos[i]->destroy(gpu);
    toy_destroy(t);
  }
}


int main(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/srl-baselines-XXXXXX");
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(qc_threshold);
  RUN(osrl_defaults);
  RUN(bcq_targets_by_hand);
  RUN(pid_sequence_by_hand);
  RUN(cpq_pieces_by_hand);
  RUN(coptidice_pieces_by_hand);
  RUN(coptidice_nu_loss_gradient);
  RUN(coptidice_chi_loss_gradient);
  RUN(policy_and_squash_gradients);
  RUN(vae_loss_and_gradient);
  RUN(bcq_actor_objective_gradient);
  RUN(cpq_actor_objective_gradient);
  RUN(bc_learns);
  RUN(bcq_lag_learns);
  RUN(cpq_learns);
  RUN(coptidice_learns);
  RUN(no_allocation_in_update_or_act);
  RUN(bad_parameters_refused);
  RUN(checkpoint_round_trips);
  RUN(cuda_updates_match_cpu);
  rmdir(tmp_dir);
  return TEST_REPORT();
}

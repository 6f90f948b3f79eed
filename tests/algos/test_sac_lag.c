// test_sac_lag.c: the SAC-Lag agent and its off-policy trainer.
//   agent: the actor loss against a direct recomputation and its gradient (through the critics'
//   input gradients, the tanh squash, the sampling and the log_std clamp) against central finite
//   differences; reward and cost Bellman targets (min of the target twins, entropy term, done
//   masking, deterministic next action for the cost) against direct computations; the critic
//   loss; policy delay and Polyak averaging; the direction λ and α push; a non-finite batch
//   refused; checkpoint save / load continuing bitwise.
//   trainer: the run directory and progress.csv; λ rising above the limit and falling below it;
//   resume reproducing the uninterrupted run; a short learning run on SimplePointGoal.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "algos/offpolicy.h"
#include "algos/sac_lag.h"
#include "core/alloc.h"
#include "core/rng.h"
#include "test.h"

enum { O = 3, A = 2, I = O + A, B = 5, H = 6 };

// a tiny agent on the CPU: smooth (tanh) hidden layers so finite differences are clean
static srl_sac *tiny_agent(uint64_t seed, int policy_delay, float polyak, int auto_alpha) {
  srl_sac_config c = srl_sac_config_default(O, A, B);
  c.n_actor_hidden = c.n_critic_hidden = 1;
  c.actor_hidden[0] = c.critic_hidden[0] = H;
  c.actor_act = c.critic_act = SRL_ACT_TANH;
  c.policy_delay = policy_delay;
  c.polyak = polyak;
  c.auto_alpha = auto_alpha;
  c.alpha = 0.3f;
  srl_rng *r;
  if (srl_rng_create(&r, seed, 7)) abort();
  srl_sac *s = NULL;
  if (srl_sac_create(&s, srl_ops_cpu(), &c, r, seed) != 0) {
    fprintf(stderr, "sac create: %s\n", srl_errmsg());
    abort();
  }
  srl_rng_destroy(r);
  return s;
}

// a random batch with a fixed done pattern
typedef struct {
  float obs[B * O], act[B * A], rew[B], cost[B], done[B], next_obs[B * O];
  srl_sac_batch b;
} batch_data;

static void make_batch(batch_data *d, uint64_t seed) {
  srl_rng *r;
  if (srl_rng_create(&r, seed, 3)) abort();
  srl_rng_fill_normal(r, d->obs, B * O, 0, 1);
  srl_rng_fill_uniform(r, d->act, B * A, -0.9f, 0.9f);
  srl_rng_fill_normal(r, d->rew, B, 0, 1);
  for (int i = 0; i < B; i++) d->cost[i] = srl_rng_uniform(r) < 0.5 ? 1.0f : 0.0f;
  srl_rng_fill_normal(r, d->next_obs, B * O, 0, 1);
  static const float done[B] = {0, 1, 0, 0, 1};
  memcpy(d->done, done, sizeof done);
  srl_rng_destroy(r);
  d->b = (srl_sac_batch){d->obs, d->act, d->rew, d->cost, d->done, d->next_obs, B};
}

// add N(0, std) noise to every parameter of a network (CPU)
static void jitter(srl_mlp *net, uint64_t seed, float std) {
  srl_rng *r;
  if (srl_rng_create(&r, seed, 11)) abort();
  for (int t = 0; t < net->n_tensors; t++) {
    const srl_nn_tensor *nt = &net->tensors[t];
    for (size_t k = 0; k < nt->numel; k++)
      net->params[nt->offset + k] += std * (float)srl_rng_normal(r);
  }
  srl_rng_destroy(r);
}

// rows of x = [obs | act]
static void concat(float *x, const float *obs, const float *act, int n) {
  for (int r = 0; r < n; r++) {
    memcpy(x + r * I, obs + r * O, O * sizeof(float));
    memcpy(x + r * I + O, act + r * A, A * sizeof(float));
  }
}

// one network's outputs on host input (CPU table: device memory is host memory)
static void net_out(srl_mlp *net, const float *x, int n, float *out) {
  if (srl_mlp_forward(net, x, n)) abort();
  memcpy(out, net->out, (size_t)n * net->out_dim * sizeof(float));
}

static double clampd(double x) {
  return x < SRL_SAC_LOG_STD_MIN ? SRL_SAC_LOG_STD_MIN
                                 : (x > SRL_SAC_LOG_STD_MAX ? SRL_SAC_LOG_STD_MAX : x);
}

// the actor loss written out directly from the definition
static double direct_actor_loss(srl_sac *s, const float *obs, const float *eps, float lambda) {
  float head[B * 2 * A], a[B * A], x[B * I], q1[B], q2[B], qc[B];
  double logp[B];
  net_out(s->actor, obs, B, head);
  for (int r = 0; r < B; r++) {
    logp[r] = 0;
    for (int j = 0; j < A; j++) {
      double mu = head[r * 2 * A + j], ls = clampd(head[r * 2 * A + A + j]);
      double e = eps[r * A + j], u = mu + exp(ls) * e;
      a[r * A + j] = (float)tanh(u);
      logp[r] += -0.5 * e * e - ls - 0.5 * log(2 * M_PI) - log(1 - tanh(u) * tanh(u));
    }
  }
  concat(x, obs, a, B);
  net_out(s->q1, x, B, q1);
  net_out(s->q2, x, B, q2);
  net_out(s->qc, x, B, qc);
  double alpha = srl_sac_alpha(s), sum = 0;
  for (int r = 0; r < B; r++) sum += alpha * logp[r] - fmin(q1[r], q2[r]) + lambda * qc[r];
  return sum / B / (1 + lambda);
}


TEST(actor_loss_matches_direct) {
  srl_sac *s = tiny_agent(1, 2, 0.005f, 0);
  batch_data d;
  make_batch(&d, 2);
  float eps[B * A];
  srl_rng *r;
  srl_rng_create(&r, 5, 0);
  srl_rng_fill_normal(r, eps, B * A, 0, 1);
  srl_rng_destroy(r);
  for (int k = 0; k < 3; k++) {
    float lambda = (float[]){0.0f, 0.7f, 12.0f}[k], loss = 0;
    CHECK_OK(srl_sac_actor_loss(s, &loss, d.obs, eps, B, lambda, 0));
    CHECK_CLOSE(loss, direct_actor_loss(s, d.obs, eps, lambda), 1e-5, 1e-5);
  }
  srl_sac_destroy(s);
}


// ∂L/∂θ of every actor parameter against central differences of the loss at fixed ε
static void check_actor_fd(srl_sac *s, const float *obs, const float *eps, float lambda,
                           int *checked_zero) {
  float loss;
  CHECK_OK(srl_sac_actor_loss(s, &loss, obs, eps, B, lambda, 1));
  srl_mlp *act = s->actor;
  float *g = malloc(act->n_params * sizeof(float));
  memcpy(g, act->grads, act->n_params * sizeof(float));
  const double h = 1e-2;
  int bad = 0, nonzero = 0;
  *checked_zero = 0;
  for (int t = 0; t < act->n_tensors; t++) {
    const srl_nn_tensor *nt = &act->tensors[t];
    for (size_t k = 0; k < nt->numel; k++) {
      size_t i = nt->offset + k;
      float keep = act->params[i], lp, lm;
      act->params[i] = keep + (float)h;
      srl_sac_actor_loss(s, &lp, obs, eps, B, lambda, 0);
      act->params[i] = keep - (float)h;
      srl_sac_actor_loss(s, &lm, obs, eps, B, lambda, 0);
      act->params[i] = keep;
      double fd = ((double)lp - lm) / (2 * h);
      if (fabs(fd - g[i]) > 3e-4 + 2e-2 * fabs(fd)) {
        if (bad++ < 5)
          fprintf(stderr, "  %s[%zu]: grad %.6g, finite difference %.6g\n", nt->name, k, g[i], fd);
      }
      if (g[i] != 0.0f) nonzero++;
      if (g[i] == 0.0f && fd == 0.0) (*checked_zero)++;
    }
  }
  CHECK_EQ_INT(bad, 0);
  CHECK(nonzero > 10);
  free(g);
}


TEST(actor_gradient_matches_finite_differences) {
  batch_data d;
  make_batch(&d, 4);
  float eps[B * A];
  srl_rng *r;
  srl_rng_create(&r, 6, 0);
  srl_rng_fill_normal(r, eps, B * A, 0, 1);
  srl_rng_destroy(r);
  int zeros;
  for (int k = 0; k < 2; k++) {
    srl_sac *s = tiny_agent(10 + k, 2, 0.005f, 0);
    check_actor_fd(s, d.obs, eps, k == 0 ? 0.0f : 1.5f, &zeros);
    srl_sac_destroy(s);
  }

  // log_std beyond the clamp: its bias gets no gradient, and the loss does not move with it
  srl_sac *s = tiny_agent(12, 2, 0.005f, 0);
  srl_linear *last = &s->actor->lin[s->actor->n_linear - 1];
  for (int j = 0; j < A; j++) last->b[A + j] = 4.0f;
  for (size_t k = 0; k < (size_t)(2 * A) * H; k++) last->w[k] *= 0.1f;
  check_actor_fd(s, d.obs, eps, 0.5f, &zeros);
  for (int j = 0; j < A; j++) CHECK(last->db[A + j] == 0.0f);
  CHECK(zeros >= A);
  srl_sac_destroy(s);
}


TEST(reward_and_cost_targets_match_direct) {
  srl_sac *s = tiny_agent(20, 2, 0.005f, 0);
  // the online critics drift from their targets, so using the wrong ones would show
  jitter(s->q1, 1, 0.3f);
  jitter(s->q2, 2, 0.3f);
  jitter(s->qc, 3, 0.3f);
  batch_data d;
  make_batch(&d, 21);
  float y[B], an[B * A], lpn[B];
  CHECK_OK(srl_sac_reward_targets(s, y, an, lpn, &d.b));

  float x[B * I], q1[B], q2[B], head[B * 2 * A];
  concat(x, d.next_obs, an, B);
  net_out(s->q1_targ, x, B, q1);
  net_out(s->q2_targ, x, B, q2);
  net_out(s->actor, d.next_obs, B, head);
  double alpha = srl_sac_alpha(s), gamma = s->cfg.gamma;
  for (int i = 0; i < B; i++) {
    double want = d.rew[i] + gamma * (1 - d.done[i]) * (fmin(q1[i], q2[i]) - alpha * lpn[i]);
    CHECK_CLOSE(y[i], want, 1e-5, 1e-5);
    if (d.done[i] != 0) CHECK(y[i] == d.rew[i]);
    // the next action's log-probability, recovered from the action itself
    double lp = 0;
    for (int j = 0; j < A; j++) {
      double a = an[i * A + j], u = atanh(a), mu = head[i * 2 * A + j];
      double ls = clampd(head[i * 2 * A + A + j]), z = (u - mu) / exp(ls);
      CHECK(fabs(a) < 1);
      lp += -0.5 * z * z - ls - 0.5 * log(2 * M_PI) - log(1 - a * a);
    }
    CHECK_CLOSE(lpn[i], lp, 2e-3, 1e-3);
  }

  // cost: c + γ(1 − d)·Qc'(s', tanh(μ(s')))
  float yc[B], adet[B * A], qc[B];
  CHECK_OK(srl_sac_cost_targets(s, yc, &d.b));
  for (int i = 0; i < B * A; i++) adet[i] = tanhf(head[(i / A) * 2 * A + i % A]);
  concat(x, d.next_obs, adet, B);
  net_out(s->qc_targ, x, B, qc);
  for (int i = 0; i < B; i++) {
    CHECK_CLOSE(yc[i], d.cost[i] + gamma * (1 - d.done[i]) * qc[i], 1e-6, 1e-6);
    if (d.done[i] != 0) CHECK(yc[i] == d.cost[i]);
  }
  srl_sac_destroy(s);
}


TEST(critic_losses_match_direct) {
  srl_sac *s = tiny_agent(30, 2, 0.005f, 0);
  jitter(s->q1, 4, 0.2f);
  batch_data d;
  make_batch(&d, 31);
  // the update draws the same next actions as srl_sac_reward_targets from the same stream
  char state[8192];
  size_t sz = srl_rng_state_size(s->rng);
  CHECK(sz <= sizeof state);
  srl_rng_state_save(s->rng, state);
  float y[B], yc[B], x[B * I], q1[B], q2[B], qc[B];
  CHECK_OK(srl_sac_reward_targets(s, y, NULL, NULL, &d.b));
  CHECK_OK(srl_sac_cost_targets(s, yc, &d.b));
  concat(x, d.obs, d.act, B);
  net_out(s->q1, x, B, q1);
  net_out(s->q2, x, B, q2);
  net_out(s->qc, x, B, qc);
  double lq = 0, lc = 0;
  for (int i = 0; i < B; i++) {
    lq += ((double)q1[i] - y[i]) * (q1[i] - y[i]) + ((double)q2[i] - y[i]) * (q2[i] - y[i]);
    lc += ((double)qc[i] - yc[i]) * (qc[i] - yc[i]);
  }
  CHECK_OK(srl_rng_state_load(s->rng, state, sz));
  srl_sac_stats st;
  CHECK_OK(srl_sac_update(s, &d.b, 0.5f, &st));
  CHECK_CLOSE(st.loss_q, lq / B, 1e-6, 1e-5);
  CHECK_CLOSE(st.loss_qc, lc / B, 1e-6, 1e-5);
  CHECK_CLOSE(st.q_mean, (q1[0] + q1[1] + q1[2] + q1[3] + q1[4]) / 5.0, 1e-6, 1e-5);
  srl_sac_destroy(s);
}


TEST(policy_delay_and_polyak) {
  const float tau = 0.1f;
  srl_sac *s = tiny_agent(40, 2, tau, 0);
  batch_data d;
  make_batch(&d, 41);
  size_t na = s->actor->n_params, nq = s->q1->n_params;
  float *actor0 = malloc(na * sizeof(float)), *t1 = malloc(nq * sizeof(float));
  float *t2 = malloc(nq * sizeof(float)), *tc = malloc(nq * sizeof(float));
  float *q10 = malloc(nq * sizeof(float));
  memcpy(actor0, s->actor->params, na * sizeof(float));
  memcpy(t1, s->q1_targ->params, nq * sizeof(float));
  memcpy(q10, s->q1->params, nq * sizeof(float));

  // step 1 of 2: critics move; actor and targets wait
  srl_sac_stats st;
  CHECK_OK(srl_sac_update(s, &d.b, 0.0f, &st));
  CHECK_EQ_INT(st.actor_stepped, 0);
  CHECK(memcmp(actor0, s->actor->params, na * sizeof(float)) == 0);
  CHECK(memcmp(t1, s->q1_targ->params, nq * sizeof(float)) == 0);
  CHECK(memcmp(q10, s->q1->params, nq * sizeof(float)) != 0);

  // step 2: the actor moves, then every target moves a tenth of the way to its critic
  memcpy(t1, s->q1_targ->params, nq * sizeof(float));
  memcpy(t2, s->q2_targ->params, nq * sizeof(float));
  memcpy(tc, s->qc_targ->params, nq * sizeof(float));
  CHECK_OK(srl_sac_update(s, &d.b, 0.0f, &st));
  CHECK_EQ_INT(st.actor_stepped, 1);
  CHECK(memcmp(actor0, s->actor->params, na * sizeof(float)) != 0);
  int bad = 0;
  for (size_t k = 0; k < nq; k++) {
    bad += fabsf(s->q1_targ->params[k] - (tau * s->q1->params[k] + (1 - tau) * t1[k])) > 1e-6f;
    bad += fabsf(s->q2_targ->params[k] - (tau * s->q2->params[k] + (1 - tau) * t2[k])) > 1e-6f;
    bad += fabsf(s->qc_targ->params[k] - (tau * s->qc->params[k] + (1 - tau) * tc[k])) > 1e-6f;
  }
  CHECK_EQ_INT(bad, 0);
  CHECK(memcmp(t1, s->q1_targ->params, nq * sizeof(float)) != 0);
  CHECK(isfinite(st.loss_pi) && st.entropy != 0);
  free(actor0), free(t1), free(t2), free(tc), free(q10);
  srl_sac_destroy(s);
}


// mean Q over deterministic actions tanh(μ(s))
static double mean_q_det(srl_sac *s, srl_mlp *q, const float *obs) {
  float a[B * A], x[B * I], v[B];
  CHECK_OK(srl_sac_act(s, a, NULL, obs, B, 1));
  concat(x, obs, a, B);
  net_out(q, x, B, v);
  double m = 0;
  for (int i = 0; i < B; i++) m += v[i];
  return m / B;
}


TEST(lambda_pushes_the_policy_towards_low_cost) {
  batch_data d;
  make_batch(&d, 50);
  for (int k = 0; k < 2; k++) {
    float lambda = k == 0 ? 200.0f : 0.0f;
    srl_sac *s = tiny_agent(51, 1, 0.005f, 0);
    s->log_alpha = logf(1e-4f);
    double c0 = mean_q_det(s, s->qc, d.obs), r0 = mean_q_det(s, s->q1, d.obs);
    float eps[B * A], loss;
    for (int it = 0; it < 300; it++) {
      srl_rng_fill_normal(s->rng, eps, B * A, 0, 1);
      CHECK_OK(srl_sac_actor_loss(s, &loss, d.obs, eps, B, lambda, 1));
      CHECK_OK(srl_optim_step(s->opt_actor, s->actor->params, s->actor->grads, 3e-3f));
    }
    double c1 = mean_q_det(s, s->qc, d.obs), r1 = mean_q_det(s, s->q1, d.obs);
    if (k == 0) {
      CHECK(c1 < c0 - 0.02);  // a large λ trades reward for a lower cost value
    } else {
      CHECK(r1 > r0 + 0.02);  // without λ the reward value rises
    }
    srl_sac_destroy(s);
  }
}


TEST(alpha_follows_the_target_entropy) {
  batch_data d;
  make_batch(&d, 60);
  for (int k = 0; k < 2; k++) {
    srl_sac *s = tiny_agent(61, 1, 0.005f, 1);
    s->cfg.target_entropy = k == 0 ? 50.0f : -50.0f;
    float a0 = srl_sac_alpha(s);
    srl_sac_stats st;
    for (int it = 0; it < 3; it++) CHECK_OK(srl_sac_update(s, &d.b, 0.0f, &st));
    // entropy below the target raises α, above it lowers α; one Adam step moves log α by ≈ lr
    if (k == 0) CHECK(st.alpha > a0);
    if (k == 1) CHECK(st.alpha < a0);
    CHECK_CLOSE(fabs(log(st.alpha) - log(a0)), 3 * s->cfg.alpha_lr, 1e-6, 1e-2);
    srl_sac_destroy(s);
  }
}


TEST(act_is_tanh_of_the_mean_or_a_sample) {
  srl_sac *s = tiny_agent(70, 2, 0.005f, 0);
  batch_data d;
  make_batch(&d, 71);
  float a[B * A], lp[B], head[B * 2 * A];
  CHECK_OK(srl_sac_act(s, a, lp, d.obs, B, 1));
  net_out(s->actor, d.obs, B, head);
  for (int i = 0; i < B * A; i++) CHECK_CLOSE(a[i], tanh(head[(i / A) * 2 * A + i % A]), 1e-6, 0);
  float a2[B * A];
  CHECK_OK(srl_sac_act(s, a2, lp, d.obs, B, 0));
  int differ = 0;
  for (int i = 0; i < B * A; i++) {
    differ += a2[i] != a[i];
    CHECK(fabsf(a2[i]) < 1);
  }
  CHECK(differ == B * A);
  for (int i = 0; i < B; i++) CHECK(isfinite(lp[i]));
  CHECK_ERR(srl_sac_act(s, a, lp, d.obs, B + 1, 1), SRL_EINVAL);
  srl_sac_destroy(s);
}


TEST(non_finite_batch_is_refused) {
  srl_sac *s = tiny_agent(80, 2, 0.005f, 0);
  batch_data d;
  make_batch(&d, 81);
  d.rew[2] = NAN;
  size_t nq = s->q1->n_params;
  float *q0 = malloc(nq * sizeof(float));
  memcpy(q0, s->q1->params, nq * sizeof(float));
  CHECK_ERR(srl_sac_update(s, &d.b, 0.0f, NULL), SRL_ENONFINITE);
  CHECK_ERRMSG("reward critic loss");
  CHECK(memcmp(q0, s->q1->params, nq * sizeof(float)) == 0);
  d.rew[2] = 0;
  CHECK_ERR(srl_sac_update(s, &d.b, NAN, NULL), SRL_ENONFINITE);
  free(q0);
  srl_sac_destroy(s);
}


TEST(checkpoint_round_trip_continues_bitwise) {
  srl_sac *s = tiny_agent(90, 2, 0.05f, 1);
  batch_data d;
  make_batch(&d, 91);
  for (int it = 0; it < 3; it++) CHECK_OK(srl_sac_update(s, &d.b, 0.2f, NULL));
  char path[] = "sac_ckpt_test.safetensors";
  srl_st_writer *w;
  void *hold = NULL;
  CHECK_OK(srl_st_writer_create(&w));
  CHECK_OK(srl_sac_save(s, w, &hold));
  CHECK_OK(srl_st_write(w, path));
  srl_st_writer_destroy(w);
  srl_free(hold);

  srl_sac *t = tiny_agent(999, 2, 0.05f, 1);
  srl_st_file *f;
  CHECK_OK(srl_st_open(&f, path));
  CHECK_OK(srl_sac_load(t, f, 0));
  srl_st_close(f);
  remove(path);

  srl_sac_stats a, b;
  for (int it = 0; it < 3; it++) {
    CHECK_OK(srl_sac_update(s, &d.b, 0.2f, &a));
    CHECK_OK(srl_sac_update(t, &d.b, 0.2f, &b));
    CHECK(a.loss_q == b.loss_q && a.loss_qc == b.loss_qc && a.loss_pi == b.loss_pi);
    CHECK(a.alpha == b.alpha);
  }
  CHECK(memcmp(s->actor->params, t->actor->params, s->actor->n_params * sizeof(float)) == 0);
  CHECK(memcmp(s->qc_targ->params, t->qc_targ->params, s->qc->n_params * sizeof(float)) == 0);
  srl_sac_destroy(s);
  srl_sac_destroy(t);
}


// the same agent on the CUDA table takes the same steps as on the CPU one (skipped without a GPU)
TEST(cuda_agent_matches_cpu) {
  const srl_ops *gpu = NULL;
  if (srl_ops_cuda(&gpu) != 0) SKIP("no CUDA device in this build or machine");
  srl_sac_config c = srl_sac_config_default(O, A, B);
  c.n_actor_hidden = c.n_critic_hidden = 2;
  c.actor_hidden[0] = c.actor_hidden[1] = c.critic_hidden[0] = c.critic_hidden[1] = 32;
  c.policy_delay = 1;
  c.auto_alpha = 1;
  srl_sac *s[2];
  const srl_ops *ops[2] = {srl_ops_cpu(), gpu};
  for (int k = 0; k < 2; k++) {
    srl_rng *r;
    srl_rng_create(&r, 3, 7);
    CHECK_OK(srl_sac_create(&s[k], ops[k], &c, r, 3));
    srl_rng_destroy(r);
  }
  batch_data d;
  make_batch(&d, 100);
  srl_sac_stats st[2];
  for (int it = 0; it < 5; it++)
    for (int k = 0; k < 2; k++) CHECK_OK(srl_sac_update(s[k], &d.b, 0.4f, &st[k]));
  CHECK_CLOSE(st[1].loss_q, st[0].loss_q, 1e-5, 1e-3);
  CHECK_CLOSE(st[1].loss_qc, st[0].loss_qc, 1e-5, 1e-3);
  CHECK_CLOSE(st[1].loss_pi, st[0].loss_pi, 1e-5, 1e-3);
  CHECK_CLOSE(st[1].alpha, st[0].alpha, 1e-7, 1e-5);
  size_t n = s[0]->actor->n_params;
  float *h = malloc(n * sizeof(float));
  CHECK_OK(gpu->download(h, s[1]->actor->params, n * sizeof(float)));
  CHECK(srl_test_nmse(h, s[0]->actor->params, n) < 1e-8);
  float a0[B * A], a1[B * A];
  CHECK_OK(srl_sac_act(s[0], a0, NULL, d.obs, B, 1));
  CHECK_OK(srl_sac_act(s[1], a1, NULL, d.obs, B, 1));
  for (int i = 0; i < B * A; i++) CHECK_CLOSE(a1[i], a0[i], 1e-5, 1e-4);
  free(h);
  srl_sac_destroy(s[0]);
  srl_sac_destroy(s[1]);
}


//---- the trainer --------------------------------------------------------------------------------

#define RUNS "test_sac_lag_runs"

// a fast SAC-Lag config on SimplePointGoal, with extra "key=value" overrides
static void tiny_config(srl_offpolicy_config *cfg, const char *const *extra, int n_extra) {
  const char *base[] = {
      "env_id=SimplePointGoal",
      "train_cfgs.total_steps=6000",
      "train_cfgs.eval_episodes=0",
      "algo_cfgs.steps_per_epoch=1000",
      "algo_cfgs.start_learning_steps=1000",
      "algo_cfgs.batch_size=64",
      "algo_cfgs.policy_delay=1",
      "algo_cfgs.auto_alpha=true",
      "algo_cfgs.warmup_epochs=0",
      "model_cfgs.actor.hidden_sizes=[64, 64]",
      "model_cfgs.critic.hidden_sizes=[64, 64]",
      "model_cfgs.actor.lr=0.001",
      "model_cfgs.critic.lr=0.001",
      "logger_cfgs.log_dir=" RUNS,
  };
  const char *sets[32];
  int n = 0;
  for (size_t i = 0; i < sizeof base / sizeof *base; i++) sets[n++] = base[i];
  for (int i = 0; i < n_extra; i++) sets[n++] = extra[i];
  if (srl_offpolicy_config_load(cfg, NULL, sets, n) != 0) {
    fprintf(stderr, "config: %s\n", srl_errmsg());
    abort();
  }
}

static srl_offpolicy *make_trainer(const srl_offpolicy_config *cfg, const char *dir) {
  srl_offpolicy_options o = {.run_dir = dir, .quiet = 1};
  srl_offpolicy *t = NULL;
  if (srl_offpolicy_create(&t, cfg, &o) != 0) {
    fprintf(stderr, "create: %s\n", srl_errmsg());
    abort();
  }
  return t;
}

static int file_exists(const char *dir, const char *name) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return access(p, F_OK) == 0;
}

// the whole text of a file (malloc'd) or NULL
static char *slurp(const char *dir, const char *name) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  s[fread(s, 1, (size_t)n, f)] = 0;
  fclose(f);
  return s;
}


TEST(learning_run_improves_return) {
  srl_offpolicy_config cfg;
  tiny_config(&cfg, (const char *[]){"lagrange_cfgs.cost_limit=0"}, 1);
  const char *dir = RUNS "/learn";
  srl_offpolicy *t = make_trainer(&cfg, dir);
  double first = NAN, last = NAN;
  float lam_prev = srl_offpolicy_lagrange(t)->lambda;
  int rose = 1;
  while (!srl_offpolicy_done(t)) {
    CHECK_OK(srl_offpolicy_epoch(t));
    const srl_offpolicy_row *r = srl_offpolicy_last_row(t);
    if (r->epoch == 1) first = r->ep_ret;
    last = r->ep_ret;
    // every episode costs something against a limit of 0: λ only rises once updates start
    if (r->epoch >= 2 && !(r->lagrange > lam_prev)) rose = 0;
    lam_prev = r->lagrange;
  }
  CHECK_OK(srl_offpolicy_finish(t));
  printf("  return %.3f -> %.3f over %d epochs, lambda %.4f\n", first, last,
         srl_offpolicy_epochs_done(t), lam_prev);
  CHECK(last > first + 1.2);
  CHECK(last > 1.2);
  CHECK(rose);
  srl_offpolicy_destroy(t);

  // the run directory
  CHECK(file_exists(dir, "config.yaml") && file_exists(dir, "final.safetensors"));
  CHECK(file_exists(dir, "summary.json") && file_exists(dir, "events.jsonl"));
  char *prog = slurp(dir, "progress.csv");
  CHECK(prog && strncmp(prog,
                        "epoch,total_steps,ep_ret,ep_cost,ep_len,lagrange,loss_pi,loss_vr,"
                        "loss_vc,kl,entropy,fps,wall_s",
                        88) == 0);
  int lines = 0;
  for (char *c = prog; c && *c; c++) lines += *c == '\n';
  CHECK_EQ_INT(lines, 7);
  free(prog);
  char *sum = slurp(dir, "summary.json");
  CHECK(sum && strstr(sum, "\"status\": \"finished\""));
  free(sum);

  // the saved policy acts and evaluates
  CHECK(srl_offpolicy_is_checkpoint(dir) && !srl_offpolicy_is_checkpoint(RUNS "/none"));
  srl_sac_policy *p;
  CHECK_OK(srl_sac_policy_load(&p, dir, "cpu", 4));
  CHECK_EQ_INT(srl_sac_policy_step(p), 6000);
  srl_eval_result res;
  CHECK_OK(srl_sac_policy_evaluate(p, 6, 1, 123, 3, &res, NULL, NULL, NULL));
  printf("  evaluation: return %.3f ± %.3f, cost %.2f, length %.1f\n", res.ret_mean, res.ret_std,
         res.cost_mean, res.len_mean);
  CHECK_EQ_INT(res.episodes, 6);
  CHECK(res.ret_mean > 1.0);
  // sampled actions too: episode k is the same on 1 or 3 envs
  double r1[6], r3[6];
  CHECK_OK(srl_sac_policy_evaluate(p, 6, 0, 123, 3, &res, r3, NULL, NULL));
  CHECK_OK(srl_sac_policy_evaluate(p, 6, 0, 123, 1, &res, r1, NULL, NULL));
  CHECK(!memcmp(r1, r3, sizeof r1));
  srl_sac_policy_destroy(p);
}


TEST(lambda_steps_once_per_update_after_warmup) {
  // Jc − limit > 0 always, so each Adam step on λ moves it up by lambda_lr
  srl_offpolicy_config cfg;
  const char *extra[] = {"train_cfgs.total_steps=1500",
                         "algo_cfgs.steps_per_epoch=500",
                         "algo_cfgs.start_learning_steps=200",
                         "algo_cfgs.warmup_epochs=1",
                         "lagrange_cfgs.cost_limit=-1000000",
                         "lagrange_cfgs.lambda_lr=0.001",
                         "algo_cfgs.update_cycle=2"};
  tiny_config(&cfg, extra, 7);
  srl_offpolicy *t = make_trainer(&cfg, RUNS "/lambda");
  float init = srl_offpolicy_lagrange(t)->lambda;
  float lam[3];
  for (int e = 0; e < 3; e++) {
    CHECK_OK(srl_offpolicy_epoch(t));
    lam[e] = srl_offpolicy_last_row(t)->lagrange;
  }
  // epochs 0 and 1 are the warmup (OmniSafe: epoch > warmup_epochs); epoch 2 has 250 cycles
  CHECK(lam[0] == init && lam[1] == init);
  CHECK_CLOSE(lam[2], init + 250 * 0.001, 2e-3, 0);
  srl_offpolicy_destroy(t);

  // a limit far above every episode's cost pushes λ down to its floor 0
  const char *down[] = {"train_cfgs.total_steps=1000", "algo_cfgs.steps_per_epoch=500",
                        "algo_cfgs.start_learning_steps=200", "lagrange_cfgs.cost_limit=1000"};
  tiny_config(&cfg, down, 4);
  t = make_trainer(&cfg, RUNS "/lambda_down");
  CHECK_OK(srl_offpolicy_epoch(t));
  CHECK_OK(srl_offpolicy_epoch(t));
  CHECK(srl_offpolicy_last_row(t)->lagrange == 0.0f);
  srl_offpolicy_destroy(t);
}


// progress.csv without the timing columns (fps, wall_s), for comparing runs
static char *progress_without_timing(const char *dir) {
  char *s = slurp(dir, "progress.csv");
  if (!s) return NULL;
  char *out = malloc(strlen(s) + 1), *o = out;
  for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
    int col = 0;
    for (char *c = line; *c; c++) {
      if (*c == ',') col++;
      if (col == 11 || col == 12) continue;  // fps, wall_s and their separators
      *o++ = *c;
    }
    *o++ = '\n';
  }
  *o = 0;
  free(s);
  return out;
}


TEST(stop_and_resume_reproduce_the_uninterrupted_run) {
  srl_offpolicy_config cfg;
  const char *extra[] = {"train_cfgs.total_steps=2000",        "algo_cfgs.steps_per_epoch=500",
                         "algo_cfgs.start_learning_steps=300", "algo_cfgs.cost_normalize=true",
                         "algo_cfgs.obs_normalize=true",       "algo_cfgs.reward_normalize=true",
                         "train_cfgs.eval_episodes=1",         "algo_cfgs.policy_delay=2",
                         "lagrange_cfgs.lambda_lr=0.01"};
  tiny_config(&cfg, extra, 9);
  srl_offpolicy *a = make_trainer(&cfg, RUNS "/whole");
  CHECK_OK(srl_offpolicy_train(a));

  srl_offpolicy *b = make_trainer(&cfg, RUNS "/parts");
  CHECK_OK(srl_offpolicy_epoch(b));
  srl_offpolicy_request_stop(b);
  CHECK_ERR(srl_offpolicy_epoch(b), SRL_EINTERRUPTED);
  CHECK_EQ_INT(srl_offpolicy_epochs_done(b), 1);
  CHECK(file_exists(RUNS "/parts", "checkpoints/epoch-1.safetensors"));
  CHECK(file_exists(RUNS "/parts", "checkpoints/replay.safetensors"));
  srl_offpolicy_destroy(b);

  srl_offpolicy *c = NULL;
  srl_offpolicy_options o = {.quiet = 1};
  CHECK_OK(srl_offpolicy_resume(&c, RUNS "/parts", &o));
  if (c) {
    CHECK_EQ_INT(srl_offpolicy_epochs_done(c), 1);
    CHECK_OK(srl_offpolicy_train(c));
    srl_sac *sa = srl_offpolicy_agent(a), *sc = srl_offpolicy_agent(c);
    CHECK(memcmp(sa->actor->params, sc->actor->params, sa->actor->n_params * sizeof(float)) == 0);
    CHECK(memcmp(sa->qc->params, sc->qc->params, sa->qc->n_params * sizeof(float)) == 0);
    CHECK(srl_offpolicy_lagrange(a)->lambda == srl_offpolicy_lagrange(c)->lambda);
    char *pa = progress_without_timing(RUNS "/whole"), *pc = progress_without_timing(RUNS "/parts");
    CHECK(pa && pc && strcmp(pa, pc) == 0);
    if (pa && pc && strcmp(pa, pc) != 0) fprintf(stderr, "%s\n---\n%s\n", pa, pc);
    free(pa), free(pc);
    srl_offpolicy_destroy(c);
  }
  srl_offpolicy_destroy(a);
}


TEST(non_finite_parameters_stop_the_run) {
  srl_offpolicy_config cfg;
  const char *extra[] = {"train_cfgs.total_steps=1500", "algo_cfgs.steps_per_epoch=500",
                         "algo_cfgs.start_learning_steps=100", "logger_cfgs.save_model_freq=1"};
  tiny_config(&cfg, extra, 4);
  const char *dir = RUNS "/nan";
  srl_offpolicy *t = make_trainer(&cfg, dir);
  CHECK_OK(srl_offpolicy_epoch(t));
  CHECK(file_exists(dir, "checkpoints/epoch-1.safetensors"));
  srl_offpolicy_agent(t)->qc->params[3] = NAN;
  CHECK_ERR(srl_offpolicy_train(t), SRL_ENONFINITE);
  CHECK_ERRMSG("parameter critic_c.layers.0.weight[3] is nan");
  CHECK(!file_exists(dir, "checkpoints/epoch-2.safetensors"));
  char *ev = slurp(dir, "events.jsonl"), *sum = slurp(dir, "summary.json");
  CHECK(ev && strstr(ev, "\"event\": \"nan_stop\""));
  CHECK(sum && strstr(sum, "\"status\": \"nan_stop\""));
  free(ev), free(sum);
  srl_offpolicy_destroy(t);
}


TEST(config_defaults_are_omnisafe_saclag) {
  srl_offpolicy_config c;
  CHECK_OK(srl_offpolicy_config_defaults(&c, NULL));
  CHECK(strcmp(c.algo, "SACLag") == 0);
  CHECK_EQ_INT(c.algo_cfgs.steps_per_epoch, 2000);
  CHECK_EQ_INT(c.algo_cfgs.batch_size, 256);
  CHECK_EQ_INT(c.algo_cfgs.start_learning_steps, 10000);
  CHECK_EQ_INT(c.algo_cfgs.policy_delay, 2);
  CHECK(c.algo_cfgs.polyak == 0.005 && c.lagrange_cfgs.lambda_lr == 1e-5);
  CHECK_EQ_INT(c.model_cfgs.actor.n_hidden_sizes, 2);
  CHECK_EQ_INT(c.model_cfgs.critic.hidden_sizes[1], 256);
  CHECK_ERR(srl_offpolicy_config_defaults(&c, "PPOLag"), SRL_ECONFIG);
  char algo[32];
  const char *sets[] = {"algo=SAC"};
  CHECK_OK(srl_offpolicy_peek_algo(NULL, sets, 1, algo, sizeof algo));
  CHECK(strcmp(algo, "SAC") == 0);
  CHECK_OK(srl_offpolicy_config_load(&c, NULL, sets, 1));
  CHECK_EQ_INT(c.algo_cfgs.use_cost, 0);
  CHECK(srl_offpolicy_is_algo("SACLag") && !srl_offpolicy_is_algo("PPOLag"));
  // the shipped configs load and check
  const char *src = getenv("SRL_SOURCE_DIR");
  const char *names[] = {"configs/sac_lag/SafetyPointGoal1.yaml",
                         "configs/sac_lag/SafetyCarGoal1.yaml",
                         "configs/sac_lag/SafetyHalfCheetahVelocity.yaml"};
  for (int i = 0; src && i < 3; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", src, names[i]);
    CHECK_OK(srl_offpolicy_peek_algo(path, NULL, 0, algo, sizeof algo));
    CHECK(strcmp(algo, "SACLag") == 0);
    CHECK_OK(srl_offpolicy_config_load(&c, path, NULL, 0));
    CHECK_OK(srl_offpolicy_config_check(&c));
  }
}


int main(void) {
  RUN(actor_loss_matches_direct);
  RUN(actor_gradient_matches_finite_differences);
  RUN(reward_and_cost_targets_match_direct);
  RUN(critic_losses_match_direct);
  RUN(policy_delay_and_polyak);
  RUN(lambda_pushes_the_policy_towards_low_cost);
  RUN(alpha_follows_the_target_entropy);
  RUN(act_is_tanh_of_the_mean_or_a_sample);
  RUN(non_finite_batch_is_refused);
  RUN(checkpoint_round_trip_continues_bitwise);
  RUN(cuda_agent_matches_cpu);
  if (system("rm -rf " RUNS) != 0) fprintf(stderr, "cannot clear " RUNS "\n");
  RUN(config_defaults_are_omnisafe_saclag);
  RUN(lambda_steps_once_per_update_after_warmup);
  RUN(non_finite_parameters_stop_the_run);
  RUN(stop_and_resume_reproduce_the_uninterrupted_run);
  RUN(learning_run_improves_return);
  if (system("rm -rf " RUNS) != 0) fprintf(stderr, "cannot remove " RUNS "\n");
  return TEST_REPORT();
}

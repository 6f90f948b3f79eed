// test_ppo.c: the PPO family's epoch update and the on-policy trainer.
//
// The epoch update is replayed independently (the multiplier, the surrogate advantage, shuffled
// minibatches through srl_ppo_update_minibatch, KL(old‖new) from the closed form) and must give
// the same parameters bit for bit; KL early stop, the actor's lr decay, checkpoints (save → load
// → identical networks, Adam moments, normaliser, λ), resume (3 epochs straight against 2 +
// interruption + resume: the same progress rows and final tensors bit for bit), NaN stop (the
// last good checkpoint stays), a cost limit of 0, configs, trained-policy evaluation and the CLI
// (train, Ctrl-C, --resume, eval).
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "algos/onpolicy.h"
#include "algos/ppo.h"
#include "core/dist.h"
#include "core/safetensors.h"
#include "test.h"

static char root[512];  // a fresh folder under the build directory for this program's runs


static void make_root(void) {
  snprintf(root, sizeof root, "test_ppo_runs/%ld-%d", (long)time(NULL), (int)getpid());
  char cmd[600];
  snprintf(cmd, sizeof cmd, "mkdir -p %s", root);
  if (system(cmd) != 0) fprintf(stderr, "cannot create %s\n", root);
}


static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}


// the whole file, malloc'd (NULL when unreadable)
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) n = 0;
  if (buf) buf[n] = 0;
  fclose(f);
  return buf;
}


// a small, fast run on SimplePointGoal: 2 envs on 2 threads, 600 steps per epoch
static srl_onpolicy_config small_config(const char *algo, int epochs) {
  srl_onpolicy_config c;
  srl_onpolicy_config_defaults(&c, algo);
  strcpy(c.env_id, "SimplePointGoal");
  c.train_cfgs.vector_env_nums = 2;
  c.train_cfgs.threads = 2;
  c.algo_cfgs.steps_per_epoch = 600;
  c.train_cfgs.total_steps = 600 * epochs;
  c.algo_cfgs.update_iters = 3;
  c.logger_cfgs.window_lens = 10;
  c.logger_cfgs.save_model_freq = 1000;
  c.lagrange_cfgs.cost_limit = 2.0;
  c.seed = 3;
  return c;
}


static srl_onpolicy *make_trainer(const srl_onpolicy_config *c, const char *name) {
  char dir[700];
  snprintf(dir, sizeof dir, "%s/%s", root, name);
  srl_onpolicy_options opt = {.run_dir = dir, .quiet = 1};
  srl_onpolicy *t = NULL;
  CHECK_OK(srl_onpolicy_create(&t, c, &opt));
  return t;
}


//---- the epoch update, replayed ------------------------------------------------------------------

#define OD 5
#define AD 2
#define NE 2
#define TS 100

// a finished rollout of NE×TS rows whose actions and log-probs come from ac's actor
static void fill_rollout(srl_rollout *rb, srl_actor_critic *ac, srl_rng *rng) {
  srl_rollout_config rc = srl_rollout_config_default(NE, TS, OD, AD);
  CHECK_OK(srl_rollout_init(rb, &rc));
  float obs[NE * OD], act[NE * AD], logp[NE], r[NE], c[NE], vr[NE], vc[NE], ls[AD];
  memcpy(ls, ac->actor->extra, sizeof ls);
  int term[NE] = {0}, trunc[NE] = {0};
  for (int t = 0; t < TS; t++) {
    srl_rng_fill_normal(rng, obs, NE * OD, 0.0f, 1.0f);
    CHECK_OK(srl_mlp_forward(ac->actor, obs, NE));
    srl_gauss g;
    srl_dist_init(&g, ac->actor->out, ls, NE, AD, 0);
    srl_dist_sample(act, &g, rng);
    srl_dist_logprob(logp, act, &g);
    srl_rng_fill_normal(rng, r, NE, 0.5f, 1.0f);
    for (int i = 0; i < NE; i++) c[i] = srl_rng_uniform(rng) < 0.3 ? 1.0f : 0.0f;
    srl_rng_fill_normal(rng, vr, NE, 0.0f, 1.0f);
    srl_rng_fill_normal(rng, vc, NE, 0.0f, 1.0f);
    CHECK_OK(srl_rollout_store(rb, obs, act, logp, r, c, vr, vc));
    term[0] = t == 40;  // env 0 terminates once, env 1 is truncated once
    trunc[1] = t == 70;
    float fv[NE] = {0.3f, -0.2f};
    CHECK_OK(srl_rollout_end_paths(rb, term, trunc, fv, fv));
  }
  float last[NE] = {0.1f, 0.2f};
  CHECK_OK(srl_rollout_finish(rb, last, last));
}


// KL(p‖q) of diagonal Gaussians with shared log-stds, summed over dims, in double
static double kl_row(const float *mp, const float *lp, const float *mq, const float *lq) {
  double s = 0;
  for (int j = 0; j < AD; j++) {
    double sp = exp(lp[j]), sq = exp(lq[j]), d = (double)mp[j] - mq[j];
    s += log(sq / sp) + (sp * sp + d * d) / (2 * sq * sq) - 0.5;
  }
  return s;
}


// the update of srl_ppo_update, written out from its definition
static int replay_update(srl_actor_critic *ac, const srl_rollout *rb, srl_lagrange *lg, double jc,
                         const srl_ppo_config *pc, float lr, srl_rng *rng, float *kl_out) {
  int n = rb->capacity, B = pc->batch_size;
  float lambda = 0.0f;
  if (lg) {
    srl_lagrange_update(lg, jc);
    lambda = lg->lambda;
  }
  float *adv = malloc(sizeof(float) * n), *old = malloc(sizeof(float) * n * AD);
  int *idx = malloc(sizeof(int) * n);
  float old_ls[AD];
  for (int i = 0; i < n; i++)
    adv[i] = lg ? (rb->adv_r[i] - lambda * rb->adv_c[i]) / (1.0f + lambda) : rb->adv_r[i];
  for (int i = 0; i < n; i++) {
    srl_mlp_forward(ac->actor, rb->obs + (size_t)i * OD, 1);
    memcpy(old + i * AD, ac->actor->out, sizeof(float) * AD);
  }
  memcpy(old_ls, ac->actor->extra, sizeof old_ls);
  float mb_obs[64 * OD], mb_act[64 * AD], mb_lp[64], mb_adv[64], mb_tr[64], mb_tc[64];
  int it = 0;
  double kl = 0;
  while (it < pc->update_iters) {
    for (int i = 0; i < n; i++) idx[i] = i;
    srl_rng_shuffle(rng, idx, (size_t)n);
    for (int s = 0; s < n; s += B) {
      int m = n - s < B ? n - s : B;
      for (int k = 0; k < m; k++) {
        int row = idx[s + k];
        memcpy(mb_obs + k * OD, rb->obs + (size_t)row * OD, sizeof(float) * OD);
        memcpy(mb_act + k * AD, rb->act + (size_t)row * AD, sizeof(float) * AD);
        mb_lp[k] = rb->logp[row];
        mb_adv[k] = adv[row];
        mb_tr[k] = rb->target_r[row];
        mb_tc[k] = rb->target_c[row];
      }
      srl_ppo_batch b = {mb_obs, mb_act, mb_lp, mb_adv, mb_tr, mb_tc, m};
      if (pc->use_cost) {
        CHECK_OK(srl_ppo_update_minibatch(ac, &b, lr, NULL));
      } else {  // no cost critic: reward critic, then actor
        CHECK_OK(srl_ac_critic_step(ac, ac->critic_r, ac->opt_r, mb_obs, mb_tr, m,
                                    ac->cfg.critic_lr, NULL, NULL));
        CHECK_OK(srl_ac_actor_step(ac, &b, lr, NULL, NULL));
      }
    }
    kl = 0;
    for (int i = 0; i < n; i++) {
      srl_mlp_forward(ac->actor, rb->obs + (size_t)i * OD, 1);
      kl += kl_row(old + i * AD, old_ls, ac->actor->out, ac->actor->extra);
    }
    kl /= n;
    it++;
    if (pc->kl_early_stop && kl > pc->target_kl) break;
  }
  free(adv);
  free(old);
  free(idx);
  *kl_out = (float)kl;
  return it;
}


static int same_params(const srl_actor_critic *a, const srl_actor_critic *b) {
  return !memcmp(a->actor->params, b->actor->params, sizeof(float) * a->actor->n_params) &&
         !memcmp(a->critic_r->params, b->critic_r->params, sizeof(float) * a->critic_r->n_params) &&
         !memcmp(a->critic_c->params, b->critic_c->params, sizeof(float) * a->critic_c->n_params);
}


// PPO-Lag's update against the replay, for a cost above and below the limit, and PPO's
TEST(update_matches_replay) {
  for (int variant = 0; variant < 5; variant++) {
    const srl_ops *ops = srl_ops_cpu();
    srl_ac_config acc = srl_ac_config_default(OD, AD, 64);
    srl_rng *r1, *r2, *rd, *s1, *s2;
    srl_rng_create(&r1, 11, 0);
    srl_rng_create(&r2, 11, 0);
    srl_rng_create(&rd, 12, 0);
    srl_rng_create(&s1, 13, 0);
    srl_rng_create(&s2, 13, 0);
    srl_actor_critic *a1 = NULL, *a2 = NULL;
    CHECK_OK(srl_ac_create(&a1, ops, &acc, r1));
    CHECK_OK(srl_ac_create(&a2, ops, &acc, r2));
    srl_rollout rb;
    fill_rollout(&rb, a1, rd);

    srl_ppo_config pc = srl_ppo_config_default();
    pc.update_iters = 6;
    pc.target_kl = 0.01f;
    pc.threads = variant >= 3 ? 2 : 1;  // the actor step on a helper thread
    pc.use_cost = variant != 4;
    srl_ppo *p = NULL;
    CHECK_OK(srl_ppo_create(&p, a1, &pc, rb.capacity));
    srl_lagrange_config lc = srl_lagrange_config_default(SRL_LAGRANGE_ADAM);
    lc.cost_limit = 2.0f;
    srl_lagrange l1, l2;
    srl_lagrange_init(&l1, &lc);
    srl_lagrange_init(&l2, &lc);
    double jc = variant == 1 ? 0.5 : 7.0;  // below / above the limit
    int lag = variant != 2;
    srl_onpolicy_batch b = {.rb = &rb,
                            .lagrange = lag ? &l1 : NULL,
                            .ep_cost = jc,
                            .cost_limit = 2.0,
                            .epoch = 0,
                            .epochs = 10,
                            .actor_lr = 3e-4f,
                            .rng = s1};
    srl_onpolicy_stats st;
    CHECK_OK(srl_ppo_update(p, a1, &b, &st));
    float kl_ref;
    int iters = replay_update(a2, &rb, lag ? &l2 : NULL, jc, &pc, 3e-4f, s2, &kl_ref);
    CHECK_EQ_INT(st.iters, iters);
    CHECK(same_params(a1, a2));
    CHECK_CLOSE(st.kl, kl_ref, 1e-7, 1e-4);
    CHECK(st.iters >= 1 && st.iters <= pc.update_iters);
    CHECK(isfinite(st.loss_pi) && isfinite(st.loss_vr));
    CHECK(variant == 4 ? isnan(st.loss_vc) : isfinite(st.loss_vc));
    // entropy of the shared-std Gaussian: Σ log σ + d·½(1 + log 2π), averaged over the steps
    CHECK(fabs(st.entropy - AD * 1.4189385) < 0.05);
    // the first Adam step moves λ by lr = 0.035 towards the violation (λ₀ = 0.001)
    if (variant == 0 || variant >= 3) CHECK_CLOSE(st.lambda, 0.001 + 0.035, 1e-6, 0);
    if (variant == 1) CHECK_EQ_INT(st.lambda == 0.0f, 1);  // 0.001 − 0.035 clamps to 0
    if (variant == 2) CHECK_EQ_INT(st.lambda == 0.0f, 1);
    srl_ppo_destroy(p);
    srl_rollout_free(&rb);
    srl_ac_destroy(a1);
    srl_ac_destroy(a2);
    srl_rng_destroy(r1);
    srl_rng_destroy(r2);
    srl_rng_destroy(rd);
    srl_rng_destroy(s1);
    srl_rng_destroy(s2);
  }
}


TEST(surrogate_advantage) {
  float ar[4] = {1.0f, -2.0f, 0.5f, 0.0f}, ac[4] = {0.5f, 1.0f, -1.0f, 3.0f}, adv[4];
  srl_ppo_surrogate_adv(adv, ar, ac, 0.5f, 4);
  CHECK_CLOSE(adv[0], 0.5, 1e-7, 0);         // (1 − 0.25)/1.5
  CHECK_CLOSE(adv[1], -2.5 / 1.5, 1e-6, 0);  // (−2 − 0.5)/1.5
  CHECK_CLOSE(adv[2], 1.0 / 1.5, 1e-6, 0);   // (0.5 + 0.5)/1.5
  CHECK_CLOSE(adv[3], -1.0, 1e-7, 0);        // (0 − 1.5)/1.5
  srl_ppo_surrogate_adv(adv, ar, ac, 0.0f, 4);
  for (int i = 0; i < 4; i++) CHECK(adv[i] == ar[i]);
  // a large λ tends to −adv_c
  srl_ppo_surrogate_adv(adv, ar, ac, 1e6f, 4);
  for (int i = 0; i < 4; i++) CHECK_CLOSE(adv[i], -ac[i], 1e-4, 1e-4);
}


// KL early stop: target 0 stops after the first pass; no early stop runs every pass
TEST(kl_early_stop) {
  for (int mode = 0; mode < 3; mode++) {
    srl_ac_config acc = srl_ac_config_default(OD, AD, 64);
    srl_rng *r, *rd, *s;
    srl_rng_create(&r, 21, 0);
    srl_rng_create(&rd, 22, 0);
    srl_rng_create(&s, 23, 0);
    srl_actor_critic *a = NULL;
    CHECK_OK(srl_ac_create(&a, srl_ops_cpu(), &acc, r));
    srl_rollout rb;
    fill_rollout(&rb, a, rd);
    srl_ppo_config pc = srl_ppo_config_default();
    pc.update_iters = 5;
    pc.target_kl = mode == 1 ? 1e9f : 0.0f;
    pc.kl_early_stop = mode != 2;
    srl_ppo *p = NULL;
    CHECK_OK(srl_ppo_create(&p, a, &pc, rb.capacity));
    srl_onpolicy_batch b = {.rb = &rb, .ep_cost = NAN, .actor_lr = 1e-3f, .rng = s};
    srl_onpolicy_stats st;
    CHECK_OK(srl_ppo_update(p, a, &b, &st));
    CHECK_EQ_INT(st.iters, mode == 0 ? 1 : 5);
    CHECK(st.kl > 0);
    srl_ppo_destroy(p);
    srl_rollout_free(&rb);
    srl_ac_destroy(a);
    srl_rng_destroy(r);
    srl_rng_destroy(rd);
    srl_rng_destroy(s);
  }
}


//---- the trainer ---------------------------------------------------------------------------------

// the actor lr decays linearly 1 → 0 over the epochs (OmniSafe's LinearLR), or stays put
TEST(actor_lr_decay) {
  for (int decay = 0; decay < 2; decay++) {
    srl_onpolicy_config c = small_config("PPOLag", 4);
    c.model_cfgs.linear_lr_decay = decay;
    c.algo_cfgs.update_iters = 1;
    srl_onpolicy *t = make_trainer(&c, decay ? "lr_decay" : "lr_const");
    if (!t) return;
    for (int e = 0; e < 4; e++) {
      CHECK_OK(srl_onpolicy_epoch(t));
      const srl_onpolicy_row *r = srl_onpolicy_last_row(t);
      double want = decay ? 3e-4 * (1.0 - e / 4.0) : 3e-4;
      CHECK_CLOSE(r->actor_lr, want, 1e-10, 1e-6);
      CHECK_EQ_INT(r->epoch, e + 1);
      CHECK_EQ_INT(r->total_steps, 600 * (e + 1));
    }
    CHECK(srl_onpolicy_done(t));
    CHECK_ERR(srl_onpolicy_epoch(t), SRL_ESTATE);
    srl_onpolicy_destroy(t);
  }
}


static int same_floats(const float *a, const float *b, size_t n) {
  return !memcmp(a, b, sizeof(float) * n);
}


// save → load gives the same networks, Adam moments, normaliser, λ and counters
TEST(checkpoint_roundtrip) {
  for (int k = 0; k < 2; k++) {
    const char *algo = k ? "CPPOPID" : "PPOLag";
    srl_onpolicy_config c = small_config(algo, 5);
    c.logger_cfgs.save_model_freq = 1;
    srl_onpolicy *t1 = make_trainer(&c, k ? "ckpt_pid" : "ckpt_lag");
    if (!t1) return;
    CHECK_OK(srl_onpolicy_epoch(t1));
    CHECK_OK(srl_onpolicy_epoch(t1));
    char path[800];
    snprintf(path, sizeof path, "%s/checkpoints/epoch-2.safetensors", srl_onpolicy_run_dir(t1));
    CHECK(file_exists(path));
    srl_onpolicy *t2 = NULL;
    srl_onpolicy_options opt = {.quiet = 1};
    CHECK_OK(srl_onpolicy_resume(&t2, srl_onpolicy_run_dir(t1), &opt));
    if (!t2) {
      srl_onpolicy_destroy(t1);
      return;
    }
    srl_actor_critic *a = srl_onpolicy_actor_critic(t1), *b = srl_onpolicy_actor_critic(t2);
    CHECK(same_params(a, b));
    srl_optim *oa[3] = {a->opt_actor, a->opt_r, a->opt_c},
              *ob[3] = {b->opt_actor, b->opt_r, b->opt_c};
    for (int i = 0; i < 3; i++) {
      CHECK(same_floats(oa[i]->m, ob[i]->m, oa[i]->n));
      CHECK(same_floats(oa[i]->v, ob[i]->v, oa[i]->n));
      CHECK_EQ_INT(oa[i]->step, ob[i]->step);
      CHECK(oa[i]->step > 0);
    }
    srl_lagrange *la = srl_onpolicy_lagrange(t1), *lb = srl_onpolicy_lagrange(t2);
    CHECK(la && lb);
    if (la && lb) {
      float sa[300], sb[300];
      int n = srl_lagrange_state_size(la);
      srl_lagrange_state_save(la, sa);
      srl_lagrange_state_save(lb, sb);
      CHECK(same_floats(sa, sb, (size_t)n));
      CHECK(la->lambda == lb->lambda && la->updates == 2 && lb->updates == 2);
    }
    srl_normalizer *na = srl_onpolicy_normalizer(t1), *nb = srl_onpolicy_normalizer(t2);
    CHECK(same_floats(na->mean, nb->mean, (size_t)na->dim));
    CHECK(same_floats(na->var, nb->var, (size_t)na->dim));
    CHECK(na->count == nb->count && na->count > 1200);
    CHECK_EQ_INT(srl_onpolicy_epochs_done(t2), 2);
    srl_onpolicy_destroy(t2);
    srl_onpolicy_destroy(t1);
  }
}


// progress.csv rows without the timing columns (fps, wall_s, rollout_s, update_s)
static int progress_rows(const char *dir, char rows[][512], int max) {
  char path[800];
  snprintf(path, sizeof path, "%s/progress.csv", dir);
  char *text = slurp(path);
  if (!text) return -1;
  int n = 0;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line && n < max;
       line = strtok_r(NULL, "\n", &save), n++) {
    char out[512] = "", *fs = NULL;
    int col = 0;
    for (char *f = strtok_r(line, ",", &fs); f; f = strtok_r(NULL, ",", &fs), col++)
      if (col != 11 && col != 12 && col != 16 && col != 17) {
        strncat(out, f, sizeof out - strlen(out) - 2);
        strcat(out, ",");
      }
    snprintf(rows[n], 512, "%s", out);
  }
  free(text);
  return n;
}


// every tensor of two safetensors files equal byte for byte
static int same_tensors(const char *pa, const char *pb) {
  srl_st_file *a = NULL, *b = NULL;
  int ok =
      srl_st_open(&a, pa) == 0 && srl_st_open(&b, pb) == 0 && srl_st_count(a) == srl_st_count(b);
  for (int i = 0; ok && i < srl_st_count(a); i++) {
    const srl_st_tensor *x = srl_st_get(a, i), *y = srl_st_find(b, x->name);
    ok =
        y && x->nbytes == y->nbytes && x->dtype == y->dtype && !memcmp(x->data, y->data, x->nbytes);
    if (!ok) fprintf(stderr, "  tensor %s differs\n", x->name);
  }
  srl_st_close(a);
  srl_st_close(b);
  return ok;
}


typedef struct stopper {
  srl_onpolicy *t;
  int delay_us;
} stopper;

static void *stop_later(void *arg) {
  stopper *s = arg;
  usleep((useconds_t)s->delay_us);
  srl_onpolicy_request_stop(s->t);
  return NULL;
}


// 3 epochs straight against 1 + an interruption + resume: the same numbers bit for bit. The
// interruption lands between epochs (deterministic) or wherever a thread's timer fires (mostly
// inside a rollout, which is then discarded).
TEST(resume_equality) {
  srl_onpolicy_config c = small_config("PPOLag", 3);
  c.algo_cfgs.steps_per_epoch = 2000;
  c.train_cfgs.total_steps = 6000;
  srl_onpolicy *a = make_trainer(&c, "straight");
  if (!a) return;
  CHECK_OK(srl_onpolicy_train(a));
  char dir_a[800];
  snprintf(dir_a, sizeof dir_a, "%s", srl_onpolicy_run_dir(a));
  srl_onpolicy_destroy(a);
  char rows_a[8][512];
  CHECK_EQ_INT(progress_rows(dir_a, rows_a, 8), 4);

  for (int mode = 0; mode < 2; mode++) {
    srl_onpolicy *b = make_trainer(&c, mode ? "resumed_timer" : "resumed");
    if (!b) return;
    char dir_b[800];
    snprintf(dir_b, sizeof dir_b, "%s", srl_onpolicy_run_dir(b));
    CHECK_OK(srl_onpolicy_epoch(b));
    if (mode == 0) {
      CHECK_OK(srl_onpolicy_epoch(b));
      srl_onpolicy_request_stop(b);
      CHECK_ERR(srl_onpolicy_epoch(b), SRL_EINTERRUPTED);
      CHECK_ERR(srl_onpolicy_epoch(b), SRL_ESTATE);
    } else {
      // half way through the next rollout, as the first epoch's rollout took
      const srl_onpolicy_row *r1 = srl_onpolicy_last_row(b);
      stopper s = {b, (int)(0.5e6 * r1->rollout_s)};
      pthread_t th;
      pthread_create(&th, NULL, stop_later, &s);
      int rc = srl_onpolicy_train(b);
      pthread_join(th, NULL);
      CHECK(rc == SRL_EINTERRUPTED || rc == 0);
      printf("  timer stop after epoch %d (%s)\n", srl_onpolicy_epochs_done(b),
             rc ? "interrupted" : "finished first");
    }
    int stopped_at = srl_onpolicy_epochs_done(b);
    srl_onpolicy_destroy(b);
    char ck[900];
    snprintf(ck, sizeof ck, "%s/checkpoints/epoch-%d.safetensors", dir_b, stopped_at);
    if (stopped_at < 3) CHECK(file_exists(ck));

    srl_onpolicy_options opt = {.quiet = 1};
    if (stopped_at < 3) {
      CHECK_OK(srl_onpolicy_resume(&b, dir_b, &opt));
      if (!b) return;
      CHECK_EQ_INT(srl_onpolicy_epochs_done(b), stopped_at);
      CHECK_OK(srl_onpolicy_train(b));
      srl_onpolicy_destroy(b);
    }
    char rows_b[8][512];
    CHECK_EQ_INT(progress_rows(dir_b, rows_b, 8), 4);
    for (int i = 0; i < 4; i++)
      if (strcmp(rows_a[i], rows_b[i])) {
        fprintf(stderr, "  row %d differs:\n  %s\n  %s\n", i, rows_a[i], rows_b[i]);
        CHECK(0);
      }
    char fa[900], fb[900];
    snprintf(fa, sizeof fa, "%s/final.safetensors", dir_a);
    snprintf(fb, sizeof fb, "%s/final.safetensors", dir_b);
    CHECK(same_tensors(fa, fb));
    snprintf(fb, sizeof fb, "%s/events.jsonl", dir_b);
    char *ev = slurp(fb);
    CHECK(ev && strstr(ev, "\"finish\""));
    if (stopped_at < 3) CHECK(ev && strstr(ev, "\"interrupted\"") && strstr(ev, "\"resume\""));
    free(ev);
  }
}


// a NaN in a parameter, or a loss that overflows, stops the run naming the quantity, and the last
// good checkpoint stays loadable
TEST(nan_stop_keeps_checkpoint) {
  for (int k = 0; k < 2; k++) {
    srl_onpolicy_config c = small_config("PPOLag", 5);
    c.logger_cfgs.save_model_freq = 1;
    srl_onpolicy *t = make_trainer(&c, k ? "nan_loss" : "nan_param");
    if (!t) return;
    CHECK_OK(srl_onpolicy_epoch(t));
    CHECK_OK(srl_onpolicy_epoch(t));
    srl_actor_critic *ac = srl_onpolicy_actor_critic(t);
    if (k == 0) {
      float bad[2] = {0.0f, NAN};
      CHECK_OK(srl_mlp_tensor_upload(ac->actor, "log_std", bad, 2));
    } else {
      ac->cfg.critic_lr = 1e30f;  // the next critic steps blow the parameters up
    }
    int rc = srl_onpolicy_epoch(t);
    for (int e = 0; k == 1 && rc == 0 && e < 2; e++) rc = srl_onpolicy_epoch(t);
    CHECK_EQ_INT(rc, SRL_ENONFINITE);
    CHECK_ERRMSG(k == 0 ? "actor.log_std" : "critic");
    CHECK_ERRMSG("last good checkpoint");
    CHECK_ERR(srl_onpolicy_epoch(t), SRL_ESTATE);
    char path[900];
    snprintf(path, sizeof path, "%s/checkpoints/epoch-2.safetensors", srl_onpolicy_run_dir(t));
    CHECK(file_exists(path));
    snprintf(path, sizeof path, "%s/checkpoints/epoch-3.safetensors", srl_onpolicy_run_dir(t));
    if (k == 0) CHECK(!file_exists(path));
    snprintf(path, sizeof path, "%s/final.safetensors", srl_onpolicy_run_dir(t));
    CHECK(!file_exists(path));
    snprintf(path, sizeof path, "%s/events.jsonl", srl_onpolicy_run_dir(t));
    char *ev = slurp(path);
    CHECK(ev && strstr(ev, "\"nan_stop\""));
    free(ev);
    snprintf(path, sizeof path, "%s/summary.json", srl_onpolicy_run_dir(t));
    char *sum = slurp(path);
    CHECK(sum && strstr(sum, "\"nan_stop\""));
    free(sum);
    // the last checkpoint holds finite parameters and loads as a policy
    srl_policy *p = NULL;
    CHECK_OK(srl_policy_load(&p, srl_onpolicy_run_dir(t), "cpu", 4));
    if (p) {
      CHECK_EQ_INT(p->epoch >= 2, 1);
      float ls[2];
      CHECK_OK(srl_mlp_tensor_download(p->actor, "log_std", ls, 2));
      CHECK(isfinite(ls[0]) && isfinite(ls[1]));
      srl_policy_destroy(p);
    }
    srl_onpolicy_destroy(t);
  }
}


// a cost limit of 0 trains without NaN (λ only grows while any cost is paid)
TEST(cost_limit_zero) {
  const char *algos[2] = {"PPOLag", "CPPOPID"};
  for (int k = 0; k < 2; k++) {
    srl_onpolicy_config c = small_config(algos[k], 4);
    c.lagrange_cfgs.cost_limit = 0.0;
    srl_onpolicy *t = make_trainer(&c, k ? "zero_pid" : "zero_lag");
    if (!t) return;
    float prev = 0.0f;
    for (int e = 0; e < 4; e++) {
      CHECK_OK(srl_onpolicy_epoch(t));
      const srl_onpolicy_row *r = srl_onpolicy_last_row(t);
      CHECK(isfinite(r->lagrange) && r->lagrange >= prev);
      CHECK(isfinite(r->up.loss_pi) && isfinite(r->up.loss_vr) && isfinite(r->up.loss_vc));
      CHECK(isfinite(r->up.kl) && isfinite(r->ep_cost));
      prev = r->lagrange;
    }
    CHECK(prev > 0);
    CHECK_OK(srl_onpolicy_finish(t));
    srl_onpolicy_destroy(t);
  }
}


//---- configs -------------------------------------------------------------------------------------

TEST(config_defaults_and_layers) {
  srl_onpolicy_config c;
  CHECK_OK(srl_onpolicy_config_defaults(&c, NULL));
  CHECK(!strcmp(c.algo, "PPOLag") && c.algo_cfgs.steps_per_epoch == 20000);
  CHECK(c.algo_cfgs.update_iters == 40 && c.algo_cfgs.batch_size == 64);
  CHECK(c.algo_cfgs.target_kl == 0.02 && c.algo_cfgs.max_grad_norm == 40.0);
  CHECK(c.algo_cfgs.critic_norm_coef == 0.001 && c.algo_cfgs.use_cost == 1);
  CHECK(c.lagrange_cfgs.cost_limit == 25.0 && c.lagrange_cfgs.lambda_lr == 0.035);
  CHECK(c.lagrange_cfgs.lagrangian_multiplier_init == 0.001);
  CHECK(c.model_cfgs.actor.n_hidden_sizes == 2 && c.model_cfgs.actor.hidden_sizes[1] == 64);
  CHECK(c.model_cfgs.actor.lr == 0.0003 && c.train_cfgs.total_steps == 10000000);
  CHECK(c.lagrange_cfgs.pid_kp == 0.1 && c.lagrange_cfgs.pid_d_delay == 10);
  CHECK_OK(srl_onpolicy_config_defaults(&c, "PPO"));
  CHECK_EQ_INT(c.algo_cfgs.use_cost, 0);
  CHECK_ERR(srl_onpolicy_config_defaults(&c, "PPOLagg"), SRL_ECONFIG);
  CHECK_ERRMSG("PPOLag");

  // the algorithm named by the file brings its defaults; the file and --set come after
  char path[800];
  snprintf(path, sizeof path, "%s/ppo.yaml", root);
  FILE *f = fopen(path, "w");
  fputs("algo: PPO\nenv_id: SimplePointGoal\nalgo_cfgs: {batch_size: 128}\n", f);
  fclose(f);
  const char *sets[2] = {"algo_cfgs.update_iters=7", "seed=5"};
  CHECK_OK(srl_onpolicy_config_load(&c, path, sets, 2));
  CHECK(!strcmp(c.algo, "PPO") && c.algo_cfgs.use_cost == 0 && c.algo_cfgs.batch_size == 128);
  CHECK(c.algo_cfgs.update_iters == 7 && c.seed == 5);
  const char *to_lag[1] = {"algo=PPOLag"};
  CHECK_OK(srl_onpolicy_config_load(&c, path, to_lag, 1));
  CHECK_EQ_INT(c.algo_cfgs.use_cost, 1);
  const char *bad[1] = {"algo_cfgs.stpes_per_epoch=5"};
  CHECK_ERR(srl_onpolicy_config_load(&c, path, bad, 1), SRL_ECONFIG);
  CHECK_ERRMSG("algo_cfgs.steps_per_epoch");

  // cross-field checks
  srl_onpolicy_config d = small_config("PPOLag", 2);
  CHECK_OK(srl_onpolicy_config_check(&d));
  d.algo_cfgs.steps_per_epoch = 601;
  CHECK_ERR(srl_onpolicy_config_check(&d), SRL_ECONFIG);
  CHECK_ERRMSG("multiple");
  d = small_config("PPOLag", 2);
  strcpy(d.env_id, "NoSuchEnv");
  CHECK_ERR(srl_onpolicy_config_check(&d), SRL_ECONFIG);

  // the shipped configs load and check
  const char *src = getenv("SRL_SOURCE_DIR");
  const char *shipped[] = {
      "ppo_lag/SafetyPointGoal1",  "ppo_lag/SafetyCarGoal1",  "ppo_lag/SafetyHalfCheetahVelocity",
      "cppo_pid/SafetyPointGoal1", "cppo_pid/SafetyCarGoal1", "cppo_pid/SafetyHalfCheetahVelocity",
      "ppo/SafetyPointGoal1",      "ppo/SafetyCarGoal1",      "ppo/SafetyHalfCheetahVelocity",
      "ppo_lag/SimplePointGoal",   "ppo/SimplePointGoal"};
  for (size_t i = 0; src && i < sizeof shipped / sizeof *shipped; i++) {
    snprintf(path, sizeof path, "%s/configs/%s.yaml", src, shipped[i]);
    int rc = srl_onpolicy_config_load(&c, path, NULL, 0);
    if (rc == 0) rc = srl_onpolicy_config_check(&c);
    if (rc) fprintf(stderr, "  %s: %s\n", path, srl_errmsg());
    CHECK_EQ_INT(rc, 0);
  }
  // the resolved config written to a run reloads to the same struct
  srl_onpolicy_config e = small_config("CPPOPID", 1), r;
  char *text = NULL;
  CHECK_OK(srl_onpolicy_config_text(&e, &text));
  snprintf(path, sizeof path, "%s/resolved.yaml", root);
  f = fopen(path, "w");
  fputs(text ? text : "", f);
  fclose(f);
  free(text);
  memset(&r, 0, sizeof r);
  CHECK_OK(srl_onpolicy_config_load(&r, path, NULL, 0));
  char *t1 = NULL, *t2 = NULL;
  CHECK_OK(srl_onpolicy_config_text(&e, &t1));
  CHECK_OK(srl_onpolicy_config_text(&r, &t2));
  CHECK(t1 && t2 && !strcmp(t1, t2));
  CHECK(!strcmp(r.algo, "CPPOPID") && r.algo_cfgs.steps_per_epoch == 600 && r.seed == 3);
  free(t1);
  free(t2);
}


//---- trained policies ----------------------------------------------------------------------------

TEST(policy_load_act_evaluate) {
  srl_onpolicy_config c = small_config("PPOLag", 2);
  srl_onpolicy *t = make_trainer(&c, "policy");
  if (!t) return;
  CHECK_OK(srl_onpolicy_train(t));
  srl_policy *p = NULL;
  CHECK_OK(srl_policy_load(&p, srl_onpolicy_run_dir(t), NULL, 8));
  if (!p) {
    srl_onpolicy_destroy(t);
    return;
  }
  CHECK(strstr(p->path, "final.safetensors") != NULL);
  CHECK_EQ_INT(p->step, 1200);
  CHECK_EQ_INT(p->obs_dim, 8);
  srl_actor_critic *ac = srl_onpolicy_actor_critic(t);
  CHECK(!memcmp(p->actor->params, ac->actor->params, sizeof(float) * ac->actor->n_params));
  // the deterministic action is the actor's mean on the normalised observation
  float obs[3 * 8], x[3 * 8], act[3 * 2];
  for (int i = 0; i < 24; i++) obs[i] = 0.1f * (float)(i % 7) - 0.3f;
  CHECK_OK(srl_policy_act(p, act, obs, 3, 1, NULL));
  CHECK_OK(srl_normalizer_apply(srl_onpolicy_normalizer(t), x, obs, 3));
  CHECK_OK(srl_mlp_forward(ac->actor, x, 3));
  for (int i = 0; i < 6; i++) CHECK_CLOSE(act[i], ac->actor->out[i], 1e-6, 1e-5);
  CHECK_ERR(srl_policy_act(p, act, obs, 3, 0, NULL), SRL_EINVAL);

  srl_eval_result r1, r2;
  double rets[10], lens[10];
  CHECK_OK(srl_policy_evaluate(p, 10, 0, 4, 4, &r1, rets, NULL, lens));
  CHECK_OK(srl_policy_evaluate(p, 10, 0, 4, 4, &r2, NULL, NULL, NULL));
  CHECK(r1.episodes == r2.episodes && r1.ret_mean == r2.ret_mean && r1.ret_std == r2.ret_std);
  CHECK(r1.cost_mean == r2.cost_mean && r1.cost_std == r2.cost_std);
  CHECK(r1.len_mean == r2.len_mean && r1.len_std == r2.len_std);
  double s = 0;
  for (int i = 0; i < 10; i++) {
    s += rets[i];
    CHECK(lens[i] >= 1 && lens[i] <= 150);
  }
  CHECK_CLOSE(r1.ret_mean, s / 10, 1e-12, 1e-9);
  CHECK_EQ_INT(r1.episodes, 10);
  // episode k (layout and sampled actions) is the same on 1 or 3 envs, and in a shorter run
  double rets1[10], rets3[10], lens3[10];
  CHECK_OK(srl_policy_evaluate(p, 10, 0, 4, 1, &r2, rets1, NULL, NULL));
  CHECK(!memcmp(rets1, rets, sizeof rets));
  CHECK_OK(srl_policy_evaluate(p, 7, 0, 4, 3, &r2, rets3, NULL, lens3));
  CHECK(!memcmp(rets3, rets, 7 * sizeof(double)) && !memcmp(lens3, lens, 7 * sizeof(double)));
  CHECK_OK(srl_policy_evaluate(p, 10, 0, 5, 4, &r2, rets3, NULL, NULL));
  CHECK(memcmp(rets3, rets, sizeof rets) != 0);  // another seed, other episodes
  srl_policy_destroy(p);
  srl_onpolicy_destroy(t);
}


//---- the command line ----------------------------------------------------------------------------

// whether some run directory under out has a progress.csv with at least one epoch row
static int has_epoch_row(const char *out) {
  DIR *d = opendir(out);
  if (!d) return 0;
  int found = 0;
  for (struct dirent *e; !found && (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char rows[2][512], dir[900];
    snprintf(dir, sizeof dir, "%s/%s", out, e->d_name);
    found = progress_rows(dir, rows, 2) >= 2;
  }
  closedir(d);
  return found;
}


// run argv; with interrupt_dir, send SIGINT once a run under it has finished an epoch (so the
// test does not depend on how fast a loaded machine starts the run); the exit status (or
// 128 + signal)
static int run_cli(char *const *argv, const char *interrupt_dir, const char *out_file) {
  pid_t pid = fork();
  if (pid == 0) {
    if (out_file) {
      FILE *f = freopen(out_file, "w", stdout);
      (void)f;
    }
    execv(argv[0], argv);
    _exit(127);
  }
  int st = 0;
  if (interrupt_dir) {
    for (int waited_ms = 0; waited_ms < 120000; waited_ms += 20) {
      if (waitpid(pid, &st, WNOHANG) == pid)  // finished before it could be interrupted
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      if (has_epoch_row(interrupt_dir)) break;
      usleep(20000);
    }
    kill(pid, SIGINT);
  }
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}


TEST(cli_train_interrupt_resume_eval) {
  const char *bin = getenv("SRL_BIN_DIR"), *src = getenv("SRL_SOURCE_DIR");
  if (!bin || !src) SKIP("SRL_BIN_DIR or SRL_SOURCE_DIR not set");
  char exe[600], cfg[600], out[700], log[700];
  snprintf(exe, sizeof exe, "%s/saferl", bin);
  snprintf(cfg, sizeof cfg, "%s/configs/ppo_lag/SimplePointGoal.yaml", src);
  snprintf(out, sizeof out, "%s/cli", root);
  snprintf(log, sizeof log, "%s/cli.out", root);
  if (!file_exists(exe)) SKIP("the saferl program is not built");
  // a run long enough to be interrupted: 20 epochs of 4000 steps
  char *train[] = {exe,     "train",
                   cfg,     "--out",
                   out,     "--quiet",
                   "--set", "train_cfgs.total_steps=80000",
                   "--set", "algo_cfgs.steps_per_epoch=4000",
                   NULL};
  int rc = run_cli(train, out, log);
  CHECK_EQ_INT(rc, 130);
  char *text = slurp(log);
  char run[700] = "";
  const char *colon = text ? strstr(text, ": ") : NULL;
  const char *at = colon ? strstr(colon, out) : NULL;
  if (at) sscanf(at, "%699s", run);
  free(text);
  CHECK(run[0] != 0);
  if (!run[0]) return;
  char path[900];
  snprintf(path, sizeof path, "%s/summary.json", run);
  char *sum = slurp(path);
  CHECK(sum && strstr(sum, "\"interrupted\""));
  free(sum);
  // the run resumes as configured and finishes
  char *resume[] = {exe, "train", "--resume", run, "--quiet", NULL};
  CHECK_EQ_INT(run_cli(resume, NULL, log), 0);
  snprintf(path, sizeof path, "%s/final.safetensors", run);
  CHECK(file_exists(path));
  char rows[64][512];
  CHECK_EQ_INT(progress_rows(run, rows, 64), 21);
  char *eval[] = {exe, "eval", run, "--episodes", "5", "--json", NULL};
  CHECK_EQ_INT(run_cli(eval, NULL, log), 0);
  text = slurp(log);
  CHECK(text && strstr(text, "\"episodes\": 5") && strstr(text, "\"return\": {\"mean\": "));
  free(text);
  char *bad[] = {exe, "train", cfg, "--set", "algo_cfgs.batch_sise=3", NULL};
  CHECK_EQ_INT(run_cli(bad, NULL, log), 1);
}


int main(void) {
  make_root();
  RUN(surrogate_advantage);
  RUN(update_matches_replay);
  RUN(kl_early_stop);
  RUN(config_defaults_and_layers);
  RUN(actor_lr_decay);
  RUN(checkpoint_roundtrip);
  RUN(resume_equality);
  RUN(nan_stop_keeps_checkpoint);
  RUN(cost_limit_zero);
  RUN(policy_load_act_evaluate);
  RUN(cli_train_interrupt_resume_eval);
  int rc = TEST_REPORT();
  if (rc == 0) {  // keep the runs of a failed test for inspection
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", root);
  }
  return rc;
}

// ppo.c: one epoch's update of PPO, PPO-Lag and CPPO-PID (OmniSafe's order), and their entries in
// the on-policy trainer's algorithm table.
#include "algos/ppo.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/dist.h"
#include "core/error.h"

#define HALF_LOG_2PIE 1.41893853320467274178  // ½(1 + log 2π): Gaussian entropy per dim at σ = 1
#define SPIN_NS 30000  // how long a thread waiting for the other spins before it sleeps

// the helper thread that takes each minibatch's actor step (threads = 2, CPU)
typedef struct actor_worker {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;             // wakes whichever side sleeps
  atomic_uint posted, finished;  // jobs handed out / completed
  int sleepers;                  // threads asleep on cv (under mu)
  int quit;
  srl_actor_critic *ac;  // the job: one actor step
  const srl_ppo_batch *b;
  float lr, loss, grad_norm;
  int rc;
  char msg[512];  // the step's error message (messages are per thread)
} actor_worker;

struct srl_ppo {
  srl_ppo_config cfg;
  const srl_ops *ops;
  int capacity, obs_dim, act_dim, batch, chunk;
  int on_host;  // the networks live in host memory (CPU table): no staging copies

  // host block
  float *adv;          // (capacity) surrogate advantage
  float *old_mean;     // (capacity, act_dim) behaviour-policy means
  float *old_log_std;  // (act_dim)
  float *log_std;      // (act_dim) current log_std, read back for the entropy
  float *chunk_mean;   // (chunk, act_dim) new means of one chunk (device download target)
  int *idx;            // (capacity) shuffled row order
  float *mb_host;      // minibatch staging, the device block's layout (device tables only)
  void *host_mem;

  // device block: one minibatch, obs (B, obs_dim), act (B, act_dim), logp, adv, target_r,
  // target_c (B each); then (device tables only) one chunk of observations (chunk, obs_dim)
  float *mb_dev;
  size_t mb_floats;
  float *chunk_obs;
  void *dev_mem;
  actor_worker *worker;  // NULL: one thread
};


//---- the actor's helper thread -------------------------------------------------------------------

static long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}


// wait until *ctr reaches target: spin a little (yielding), then sleep on the condition variable
static void wait_for(actor_worker *w, atomic_uint *ctr, unsigned target) {
  long until = now_ns() + SPIN_NS;
  for (int k = 0; atomic_load_explicit(ctr, memory_order_acquire) != target; k++) {
    if (k > 16) sched_yield();
    if ((k & 15) == 15 && now_ns() > until) break;
  }
  if (atomic_load_explicit(ctr, memory_order_acquire) == target) return;
  pthread_mutex_lock(&w->mu);
  while (atomic_load_explicit(ctr, memory_order_acquire) != target) {
    w->sleepers++;
    pthread_cond_wait(&w->cv, &w->mu);
    w->sleepers--;
  }
  pthread_mutex_unlock(&w->mu);
}


// publish a new value of a counter and wake a sleeper
static void advance(actor_worker *w, atomic_uint *ctr, unsigned value) {
  pthread_mutex_lock(&w->mu);
  atomic_store_explicit(ctr, value, memory_order_release);
  if (w->sleepers) pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
}


static void *worker_main(void *arg) {
  actor_worker *w = arg;
  for (unsigned job = 1;; job++) {
    wait_for(w, &w->posted, job);
    if (w->quit) return NULL;
    w->rc = srl_ac_actor_step(w->ac, w->b, w->lr, &w->loss, &w->grad_norm);
    if (w->rc < 0) snprintf(w->msg, sizeof w->msg, "%s", srl_errmsg());
    advance(w, &w->finished, job);
  }
}


static int worker_start(srl_ppo *p) {
  actor_worker *w = srl_calloc(sizeof *w);
  if (!w) return SRL_ENOMEM;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  atomic_init(&w->posted, 0u);
  atomic_init(&w->finished, 0u);
  int err = pthread_create(&w->thread, NULL, worker_main, w);
  if (err) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    srl_free(w);
    return srl_error(SRL_ENOMEM, "ppo: cannot start the actor's thread (error %d)", err);
  }
  p->worker = w;
  return SRL_OK;
}


static void worker_stop(actor_worker *w) {
  if (!w) return;
  w->quit = 1;
  advance(w, &w->posted, atomic_load(&w->posted) + 1);
  pthread_join(w->thread, NULL);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  srl_free(w);
}


srl_ppo_config srl_ppo_config_default(void) {
  srl_ppo_config c = {
      .update_iters = 40, .batch_size = 64, .target_kl = 0.02f, .kl_early_stop = 1, .use_cost = 1};
  return c;
}


int srl_ppo_create(srl_ppo **out, srl_actor_critic *ac, const srl_ppo_config *cfg, int capacity) {
  if (!out || !ac || !cfg) return srl_error(SRL_EINVAL, "srl_ppo_create: arguments needed");
  *out = NULL;
  if (cfg->update_iters < 1 || cfg->batch_size < 1 || capacity < 1)
    return srl_error(SRL_EINVAL,
                     "ppo: update_iters %d, batch_size %d and capacity %d must be "
                     "at least 1",
                     cfg->update_iters, cfg->batch_size, capacity);
  if (cfg->batch_size > ac->cfg.max_batch)
    return srl_error(SRL_EINVAL, "ppo: batch_size %d exceeds the networks' largest batch %d",
                     cfg->batch_size, ac->cfg.max_batch);
  if (!(cfg->target_kl >= 0))
    return srl_error(SRL_EINVAL, "ppo: target_kl %g must not be negative", cfg->target_kl);
  srl_ppo *p = srl_calloc(sizeof *p);
  if (!p) return SRL_ENOMEM;
  p->cfg = *cfg;
  p->ops = ac->ops;
  p->capacity = capacity;
  p->obs_dim = ac->cfg.obs_dim;
  p->act_dim = ac->cfg.act_dim;
  p->batch = cfg->batch_size;
  p->chunk = ac->cfg.max_batch;
  p->on_host = ac->ops->device == SRL_DEVICE_CPU;

  size_t n = (size_t)capacity, A = (size_t)p->act_dim, O = (size_t)p->obs_dim;
  size_t B = (size_t)p->batch;
  p->mb_floats = B * (O + A + 4);

  // host: advantages, old and chunk means, log_stds, indices, staging
  size_t total = 0;
  size_t o_adv = srl_layout_add(&total, n * sizeof(float));
  size_t o_old = srl_layout_add(&total, n * A * sizeof(float));
  size_t o_ols = srl_layout_add(&total, A * sizeof(float));
  size_t o_ls = srl_layout_add(&total, A * sizeof(float));
  size_t o_cm = srl_layout_add(&total, (size_t)p->chunk * A * sizeof(float));
  size_t o_idx = srl_layout_add(&total, n * sizeof(int));
  size_t o_mb = srl_layout_add(&total, p->on_host ? 0 : p->mb_floats * sizeof(float));
  char *h = srl_calloc(total);
  if (!h) {
    srl_free(p);
    return srl_error_context(SRL_ENOMEM, "ppo scratch for %d rows: ", capacity);
  }
  p->host_mem = h;
  p->adv = (float *)(h + o_adv);
  p->old_mean = (float *)(h + o_old);
  p->old_log_std = (float *)(h + o_ols);
  p->log_std = (float *)(h + o_ls);
  p->chunk_mean = (float *)(h + o_cm);
  p->idx = (int *)(h + o_idx);
  p->mb_host = p->on_host ? NULL : (float *)(h + o_mb);

  // device: the minibatch, and a chunk of observations when the networks are not on the host
  size_t dtotal = 0;
  size_t o_mbd = srl_layout_add(&dtotal, p->mb_floats * sizeof(float));
  size_t o_ch = srl_layout_add(&dtotal, p->on_host ? 0 : (size_t)p->chunk * O * sizeof(float));
  char *d = p->ops->alloc(dtotal);
  if (!d) {
    srl_ppo_destroy(p);
    return srl_error_context(SRL_ENOMEM, "ppo minibatch on %s: ", p->ops->name);
  }
  p->dev_mem = d;
  p->mb_dev = (float *)(d + o_mbd);
  p->chunk_obs = p->on_host ? NULL : (float *)(d + o_ch);
  if (cfg->threads > 1 && p->on_host) {
    int rc = worker_start(p);
    if (rc < 0) {
      srl_ppo_destroy(p);
      return rc;
    }
  }
  *out = p;
  return SRL_OK;
}


void srl_ppo_destroy(srl_ppo *p) {
  if (!p) return;
  worker_stop(p->worker);
  if (p->dev_mem) p->ops->free(p->dev_mem);
  srl_free(p->host_mem);
  srl_free(p);
}


void srl_ppo_surrogate_adv(float *adv, const float *adv_r, const float *adv_c, float lambda,
                           int n) {
  float denom = 1.0f + lambda;
  for (int i = 0; i < n; i++) adv[i] = (adv_r[i] - lambda * adv_c[i]) / denom;
}


//---- whole-epoch passes through the actor --------------------------------------------------------

// the actor's output on rows [0, m) of host observations; a host pointer to the means
static int chunk_forward(srl_ppo *p, srl_actor_critic *ac, const float *obs, int m,
                         const float **mean) {
  srl_mlp *actor = ac->actor;
  if (p->on_host) {
    SRL_TRY(srl_mlp_forward(actor, obs, m));
    *mean = actor->out;
    return SRL_OK;
  }
  SRL_TRY(p->ops->upload(p->chunk_obs, obs, sizeof(float) * (size_t)m * p->obs_dim));
  SRL_TRY(srl_mlp_forward(actor, p->chunk_obs, m));
  SRL_TRY(p->ops->download(p->chunk_mean, actor->out, sizeof(float) * (size_t)m * p->act_dim));
  *mean = p->chunk_mean;
  return SRL_OK;
}


// the actor's current log_std into host memory
static int read_log_std(srl_ppo *p, srl_actor_critic *ac, float *dst) {
  size_t bytes = sizeof(float) * (size_t)p->act_dim;
  if (p->on_host) {
    memcpy(dst, ac->actor->extra, bytes);
    return SRL_OK;
  }
  return p->ops->download(dst, ac->actor->extra, bytes);
}


int srl_ppo_actor_means(srl_ppo *p, srl_actor_critic *ac, float *mean, const float *obs, int n) {
  size_t O = (size_t)p->obs_dim, A = (size_t)p->act_dim;
  for (int s = 0; s < n; s += p->chunk) {
    int m = n - s < p->chunk ? n - s : p->chunk;
    const float *mu;
    SRL_TRY(chunk_forward(p, ac, obs + (size_t)s * O, m, &mu));
    memcpy(mean + (size_t)s * A, mu, sizeof(float) * (size_t)m * A);
  }
  return SRL_OK;
}


int srl_ppo_kl(srl_ppo *p, srl_actor_critic *ac, float *kl, const float *obs, const float *old_mean,
               const float *old_log_std, int n) {
  size_t O = (size_t)p->obs_dim, A = (size_t)p->act_dim;
  SRL_TRY(read_log_std(p, ac, p->log_std));
  double sum = 0.0;
  for (int s = 0; s < n; s += p->chunk) {
    int m = n - s < p->chunk ? n - s : p->chunk;
    const float *mu;
    SRL_TRY(chunk_forward(p, ac, obs + (size_t)s * O, m, &mu));
    srl_gauss old, cur;
    SRL_TRY(srl_dist_init(&old, old_mean + (size_t)s * A, old_log_std, m, (int)A, 0));
    SRL_TRY(srl_dist_init(&cur, mu, p->log_std, m, (int)A, 0));
    float mean_kl;
    SRL_TRY(srl_dist_kl(NULL, &mean_kl, &old, &cur));
    sum += (double)mean_kl * m;
  }
  *kl = n > 0 ? (float)(sum / n) : 0.0f;
  return SRL_OK;
}


//---- the epoch update ----------------------------------------------------------------------------

// gather rows idx[0..m) into the minibatch and hand it to the device
static int load_minibatch(srl_ppo *p, const srl_rollout *rb, const int *idx, int m,
                          srl_ppo_batch *b) {
  size_t B = (size_t)p->batch, O = (size_t)p->obs_dim, A = (size_t)p->act_dim;
  float *base = p->on_host ? p->mb_dev : p->mb_host;
  float *obs = base, *act = obs + B * O, *logp = act + B * A, *adv = logp + B;
  float *tr = adv + B, *tc = tr + B;
  SRL_TRY(srl_rollout_gather(rb, obs, act, logp, NULL, NULL, tr, tc, idx, m));
  for (int i = 0; i < m; i++) adv[i] = p->adv[idx[i]];
  if (!p->on_host) SRL_TRY(p->ops->upload(p->mb_dev, p->mb_host, sizeof(float) * p->mb_floats));
  float *d = p->mb_dev;
  b->obs = d;
  b->act = d + B * O;
  b->logp_old = d + B * (O + A);
  b->adv = d + B * (O + A) + B;
  b->target_r = d + B * (O + A) + 2 * B;
  b->target_c = d + B * (O + A) + 3 * B;
  b->n = m;
  return SRL_OK;
}


// one minibatch: reward critic, cost critic (when use_cost), actor; with the helper thread the
// actor step runs beside the critic steps
static int minibatch_step(srl_ppo *p, srl_actor_critic *ac, const srl_ppo_batch *b, float lr,
                          srl_ppo_stats *s) {
  actor_worker *w = p->worker;
  if (!w && p->cfg.use_cost) return srl_ppo_update_minibatch(ac, b, lr, s);
  unsigned job = 0;
  if (w) {
    w->ac = ac;
    w->b = b;
    w->lr = lr;
    job = atomic_load_explicit(&w->posted, memory_order_relaxed) + 1;
    advance(w, &w->posted, job);
  }
  s->loss_vc = NAN;
  int rc = srl_ac_critic_step(ac, ac->critic_r, ac->opt_r, b->obs, b->target_r, b->n,
                              ac->cfg.critic_lr, &s->loss_vr, &s->grad_norm_vr);
  if (rc == 0 && p->cfg.use_cost)
    rc = srl_ac_critic_step(ac, ac->critic_c, ac->opt_c, b->obs, b->target_c, b->n,
                            ac->cfg.critic_lr, &s->loss_vc, &s->grad_norm_vc);
  if (!w) return rc < 0 ? rc : srl_ac_actor_step(ac, b, lr, &s->loss_pi, &s->grad_norm_pi);
  wait_for(w, &w->finished, job);
  if (rc < 0) return rc;
  if (w->rc < 0) return srl_error(w->rc, "%s", w->msg);
  s->loss_pi = w->loss;
  s->grad_norm_pi = w->grad_norm;
  return SRL_OK;
}


int srl_ppo_update(srl_ppo *p, srl_actor_critic *ac, const srl_onpolicy_batch *b,
                   srl_onpolicy_stats *out) {
  if (!p || !ac || !b || !b->rb || !out)
    return srl_error(SRL_EINVAL, "srl_ppo_update: arguments needed");
  const srl_rollout *rb = b->rb;
  int n = rb->capacity, A = p->act_dim;
  if (!rb->finished) return srl_error(SRL_ESTATE, "ppo update: the rollout is not finished");
  if (n > p->capacity || rb->cfg.obs_dim != p->obs_dim || rb->cfg.act_dim != A)
    return srl_error(SRL_EINVAL,
                     "ppo update: rollout of %d rows (%d/%d dims) for scratch of %d "
                     "rows (%d/%d dims)",
                     n, rb->cfg.obs_dim, rb->cfg.act_dim, p->capacity, p->obs_dim, A);
  memset(out, 0, sizeof *out);

  // 1-2. the multiplier, then the surrogate advantage
  float lambda = 0.0f;
  SRL_TRY(srl_onpolicy_lagrange_step(b, &lambda));
  out->lambda = lambda;
  if (b->lagrange)
    srl_ppo_surrogate_adv(p->adv, rb->adv_r, rb->adv_c, lambda, n);
  else
    memcpy(p->adv, rb->adv_r, sizeof(float) * (size_t)n);

  // 3. the behaviour policy over the whole epoch
  SRL_TRY(srl_ppo_actor_means(p, ac, p->old_mean, rb->obs, n));
  SRL_TRY(read_log_std(p, ac, p->old_log_std));

  // 4-5. shuffled passes of minibatches, KL after each pass
  double sum_pi = 0, sum_vr = 0, sum_vc = 0, sum_ent = 0;
  long long steps = 0;
  float kl = 0.0f;
  int it = 0;
  while (it < p->cfg.update_iters) {
    for (int i = 0; i < n; i++) p->idx[i] = i;
    srl_rng_shuffle(b->rng, p->idx, (size_t)n);
    for (int s = 0; s < n; s += p->batch) {
      int m = n - s < p->batch ? n - s : p->batch;
      srl_ppo_batch mb;
      srl_ppo_stats st;
      SRL_TRY(read_log_std(p, ac, p->log_std));
      double ent = A * HALF_LOG_2PIE;
      for (int j = 0; j < A; j++) ent += p->log_std[j];
      int rc = load_minibatch(p, rb, p->idx + s, m, &mb);
      if (rc == 0) rc = minibatch_step(p, ac, &mb, b->actor_lr, &st);
      if (rc < 0)
        return srl_error_context(rc, "update pass %d of %d, minibatch %d: ", it + 1,
                                 p->cfg.update_iters, s / p->batch + 1);
      sum_pi += st.loss_pi;
      sum_vr += st.loss_vr;
      sum_vc += st.loss_vc;
      sum_ent += ent;
      steps++;
    }
    SRL_TRY(srl_ppo_kl(p, ac, &kl, rb->obs, p->old_mean, p->old_log_std, n));
    it++;
    if (!isfinite(kl))
      return srl_error(SRL_ENONFINITE, "KL(old||new) after update pass %d is %g", it, kl);
    if (p->cfg.kl_early_stop && kl > p->cfg.target_kl) break;
  }
  out->iters = it;
  out->kl = kl;
  out->loss_pi = (float)(sum_pi / steps);
  out->loss_vr = (float)(sum_vr / steps);
  out->loss_vc = p->cfg.use_cost ? (float)(sum_vc / steps) : NAN;
  out->entropy = (float)(sum_ent / steps);
  return SRL_OK;
}


//---- the trainer's table entries -----------------------------------------------------------------

static int hook_create(void **state, const srl_onpolicy_config *cfg, srl_actor_critic *ac,
                       int capacity) {
  srl_ppo_config pc = {.update_iters = cfg->algo_cfgs.update_iters,
                       .batch_size = cfg->algo_cfgs.batch_size,
                       .target_kl = (float)cfg->algo_cfgs.target_kl,
                       .kl_early_stop = cfg->algo_cfgs.kl_early_stop,
                       .use_cost = cfg->algo_cfgs.use_cost,
                       .threads = cfg->train_cfgs.threads > 1 ? 2 : 1};
  return srl_ppo_create((srl_ppo **)state, ac, &pc, capacity);
}

static int hook_update(void *state, srl_actor_critic *ac, const srl_onpolicy_batch *b,
                       srl_onpolicy_stats *out) {
  return srl_ppo_update(state, ac, b, out);
}

static void hook_destroy(void *state) {
  srl_ppo_destroy(state);
}

// OmniSafe's PPO.yaml differs from PPOLag.yaml only in use_cost and the missing lagrange_cfgs
const srl_onpolicy_algo srl_onpolicy_ppo = {
    "PPO", -1, "algo_cfgs: {use_cost: false}", hook_create, hook_update, hook_destroy};
const srl_onpolicy_algo srl_onpolicy_ppo_lag = {"PPOLag",    SRL_LAGRANGE_ADAM, NULL,
                                                hook_create, hook_update,       hook_destroy};
const srl_onpolicy_algo srl_onpolicy_cppo_pid = {"CPPOPID",   SRL_LAGRANGE_PID, NULL,
                                                 hook_create, hook_update,      hook_destroy};

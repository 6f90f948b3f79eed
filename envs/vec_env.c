// vec_env.c: the vector env: one block of result arrays, a fixed pool of worker threads that
// each own a contiguous range of envs, auto-reset with per-episode seeds, and error hand-back.
//
// The calling thread steps the first range itself; the other threads wait for a generation
// counter to move, spinning briefly (pausing, then yielding the processor) and then sleeping on
// a condition variable, so closely following steps cost no wake-up. The spin lasts SPIN_NS, or
// the SRL_VEC_SPIN_US environment variable's microseconds (0: sleep at once, best on a machine
// whose processors are all busy); there is none when threads outnumber processors.
#include "envs/vec_env.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

#define SPIN_NS 50000  // how long a waiting thread spins before sleeping (SRL_VEC_SPIN_US)
#define MSG_MAX 512

enum { JOB_STEP, JOB_RESET, JOB_QUIT };

// one thread's range of envs and what it reports back; a cache line of its own
typedef struct worker {
  _Alignas(64) srl_vec_env *v;
  int index, lo, hi;   // thread index; envs [lo, hi)
  int rc, fail_env;    // the first failure in the range
  int done, diverged;  // episodes finished and diverged steps in the last step
  pthread_t thread;
  char msg[MSG_MAX];
} worker;

struct srl_vec_pool {
  pthread_mutex_t mu;
  pthread_cond_t start_cv, done_cv;
  atomic_uint generation;  // moves once per job
  atomic_int pending;      // threads still working on the job
  int sleepers;            // threads asleep on start_cv (under mu)
  int main_waiting;        // the caller sleeps on done_cv (under mu)
  int job;
  const float *actions;  // (num_envs, act_dim) of the step in progress
  long spin_ns;          // 0 when threads outnumber processors
  int started;           // threads running (beside the caller)
  int needs_reset;       // no reset yet, or a step failed
  worker *workers;       // (num_threads)
};


uint64_t srl_vec_env_episode_seed(uint64_t seed, int index, long long episode) {
  uint64_t h = srl_hash64(seed ^ 0x5851f42d4c957f2dull);
  h = srl_hash64(h ^ ((uint64_t)(uint32_t)index * 0xd1342543de82ef95ull));
  return srl_hash64(h + (uint64_t)episode);
}


// one turn of a wait loop: a pause at first, then yield the processor, which keeps spinning
// cheap when threads outnumber the free processors
static inline void spin_pause(int k) {
  if (k < 64)
    cpu_relax();
  else
    sched_yield();
}

static long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}


//---- the work of one env ---------------------------------------------------------------------

static uint64_t episode_seed(const srl_vec_env *v, int i, long long k) {
  if (v->seed_by_episode) return srl_vec_env_episode_seed(v->seed, 0, i + v->num_envs * k);
  return srl_vec_env_episode_seed(v->seed, i, k);
}

static int step_one(srl_vec_env *v, int i, worker *w) {
  const float *act = v->pool->actions + (size_t)i * v->act_dim;
  float *obs = v->obs + (size_t)i * v->obs_dim;
  srl_step st;
  SRL_TRY(srl_env_step(v->envs[i], act, obs, &st));
  int done = st.terminated || st.truncated;
  v->rewards[i] = st.reward;
  v->costs[i] = st.cost;
  v->terminated[i] = st.terminated;
  v->truncated[i] = st.truncated;
  v->done[i] = done;
  v->infos[i] = st.info;
  w->diverged += st.info.diverged != 0;
  srl_episode_stats_add(&v->stats[i], st.reward, st.cost, done);
  if (!done) return SRL_OK;

  // auto-reset: keep the final observation, start the next episode from its own seed
  memcpy(v->final_obs + (size_t)i * v->obs_dim, obs, sizeof(float) * (size_t)v->obs_dim);
  w->done++;
  v->episode[i]++;
  return srl_env_reset(v->envs[i], episode_seed(v, i, v->episode[i]), obs);
}


static int reset_one(srl_vec_env *v, int i) {
  v->episode[i] = 0;
  memset(&v->stats[i], 0, sizeof v->stats[i]);
  float *obs = v->obs + (size_t)i * v->obs_dim;
  return srl_env_reset(v->envs[i], episode_seed(v, i, 0), obs);
}


static void run_range(worker *w, int job) {
  w->rc = 0;
  w->done = w->diverged = 0;
  for (int i = w->lo; i < w->hi; i++) {
    int rc = job == JOB_STEP ? step_one(w->v, i, w) : reset_one(w->v, i);
    if (rc < 0) {
      w->rc = rc;
      w->fail_env = i;
      snprintf(w->msg, sizeof w->msg, "%s", srl_errmsg());  // the message is thread-local
      return;
    }
  }
}


//---- the pool --------------------------------------------------------------------------------

static void *worker_main(void *arg) {
  worker *w = arg;
  srl_vec_pool *p = w->v->pool;
  unsigned seen = 0;
  for (;;) {
    // wait for the generation to move: spin a little, then sleep
    unsigned g = atomic_load_explicit(&p->generation, memory_order_acquire);
    if (g == seen && p->spin_ns > 0) {
      long until = now_ns() + p->spin_ns;
      for (int k = 0; g == seen; k++) {
        spin_pause(k);
        g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if ((k >= 64 || (k & 15) == 15) && now_ns() > until) break;
      }
    }
    if (g == seen) {
      pthread_mutex_lock(&p->mu);
      while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen) {
        p->sleepers++;
        pthread_cond_wait(&p->start_cv, &p->mu);
        p->sleepers--;
      }
      pthread_mutex_unlock(&p->mu);
    }
    seen = g;
    int job = p->job;
    if (job == JOB_QUIT) return NULL;
    run_range(w, job);

    // the last thread to finish wakes the caller if it sleeps
    if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
      pthread_mutex_lock(&p->mu);
      if (p->main_waiting) pthread_cond_signal(&p->done_cv);
      pthread_mutex_unlock(&p->mu);
    }
  }
}


// publish a job to the started threads
static void publish(srl_vec_pool *p, int job) {
  pthread_mutex_lock(&p->mu);
  p->job = job;
  atomic_store_explicit(&p->pending, p->started, memory_order_relaxed);
  atomic_fetch_add_explicit(&p->generation, 1, memory_order_acq_rel);
  if (p->sleepers) pthread_cond_broadcast(&p->start_cv);
  pthread_mutex_unlock(&p->mu);
}


// run a job on every range (the caller takes range 0) and wait for all of them
static void run_job(srl_vec_env *v, int job) {
  srl_vec_pool *p = v->pool;
  if (p->started) publish(p, job);
  run_range(&p->workers[0], job);
  if (!p->started) return;
  if (atomic_load_explicit(&p->pending, memory_order_acquire) && p->spin_ns > 0) {
    long until = now_ns() + p->spin_ns;
    for (int k = 0; atomic_load_explicit(&p->pending, memory_order_acquire); k++) {
      spin_pause(k);
      if ((k >= 64 || (k & 15) == 15) && now_ns() > until) break;
    }
  }
  if (atomic_load_explicit(&p->pending, memory_order_acquire)) {
    pthread_mutex_lock(&p->mu);
    p->main_waiting = 1;
    while (atomic_load_explicit(&p->pending, memory_order_acquire))
      pthread_cond_wait(&p->done_cv, &p->mu);
    p->main_waiting = 0;
    pthread_mutex_unlock(&p->mu);
  }
}


// gather the ranges' reports; the lowest failing env's error is returned
static int gather(srl_vec_env *v, const char *what) {
  srl_vec_pool *p = v->pool;
  int done = 0, diverged = 0;
  for (int t = 0; t < v->num_threads; t++) {
    worker *w = &p->workers[t];
    done += w->done;
    diverged += w->diverged;
  }
  v->episodes_done += done;
  v->diverged_last = diverged;
  v->diverged_total += diverged;
  for (int t = 0; t < v->num_threads; t++) {
    worker *w = &p->workers[t];
    if (w->rc < 0) {
      p->needs_reset = 1;
      return srl_error(w->rc, "vector env %s: env %d of %d: %s", what, w->fail_env, v->num_envs,
                       w->msg);
    }
  }
  return SRL_OK;
}


//---- creation --------------------------------------------------------------------------------

static void stop_threads(srl_vec_pool *p) {
  if (!p->started) return;
  publish(p, JOB_QUIT);
  for (int t = 1; t <= p->started; t++) pthread_join(p->workers[t].thread, NULL);
  p->started = 0;
}


int srl_vec_env_create_from(srl_vec_env **out, srl_env *const *envs, int num_envs,
                            int num_threads) {
  if (!out) return srl_error(SRL_EINVAL, "srl_vec_env_create_from: out must not be NULL");
  *out = NULL;
  if (!envs || num_envs < 1)
    return srl_error(SRL_EINVAL, "vector env: needs at least one env, got %d", num_envs);
  for (int i = 0; i < num_envs; i++) {
    if (!envs[i]) return srl_error(SRL_EINVAL, "vector env: env %d is NULL", i);
    if (envs[i]->obs_space.dim != envs[0]->obs_space.dim ||
        envs[i]->act_space.dim != envs[0]->act_space.dim)
      return srl_error(SRL_EINVAL,
                       "vector env: env %d (%s) has dimensions %d/%d, env 0 (%s) "
                       "%d/%d",
                       i, envs[i]->id, envs[i]->obs_space.dim, envs[i]->act_space.dim, envs[0]->id,
                       envs[0]->obs_space.dim, envs[0]->act_space.dim);
  }
  if (num_threads < 0)
    return srl_error(SRL_EINVAL, "vector env: thread count %d must not be negative", num_threads);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 1) cpus = 1;
  if (num_threads == 0) num_threads = (int)(cpus < num_envs ? cpus : num_envs);
  if (num_threads > num_envs) num_threads = num_envs;

  // one block: header, pool, workers, env pointers, result arrays
  size_t n = (size_t)num_envs, od = (size_t)envs[0]->obs_space.dim;
  size_t total = sizeof(srl_vec_env);
  size_t o_pool = srl_layout_add(&total, sizeof(srl_vec_pool));
  size_t o_workers = srl_layout_add(&total, sizeof(worker) * (size_t)num_threads);
  size_t o_envs = srl_layout_add(&total, sizeof(srl_env *) * n);
  size_t o_obs = srl_layout_add(&total, sizeof(float) * n * od);
  size_t o_final = srl_layout_add(&total, sizeof(float) * n * od);
  size_t o_rew = srl_layout_add(&total, sizeof(float) * n);
  size_t o_cost = srl_layout_add(&total, sizeof(float) * n);
  size_t o_term = srl_layout_add(&total, sizeof(int) * n);
  size_t o_trunc = srl_layout_add(&total, sizeof(int) * n);
  size_t o_done = srl_layout_add(&total, sizeof(int) * n);
  size_t o_infos = srl_layout_add(&total, sizeof(srl_env_info) * n);
  size_t o_stats = srl_layout_add(&total, sizeof(srl_episode_stats) * n);
  size_t o_ep = srl_layout_add(&total, sizeof(long long) * n);
  char *block = srl_calloc(total);
  if (!block) return srl_error_context(SRL_ENOMEM, "vector env of %d envs: ", num_envs);

  srl_vec_env *v = (srl_vec_env *)block;
  v->num_envs = num_envs;
  v->num_threads = num_threads;
  v->obs_space = envs[0]->obs_space;
  v->act_space = envs[0]->act_space;
  v->obs_dim = v->obs_space.dim;
  v->act_dim = v->act_space.dim;
  v->max_episode_steps = envs[0]->max_episode_steps;
  v->physics_steps_per_step = envs[0]->physics_steps_per_step;
  v->pool = (srl_vec_pool *)(block + o_pool);
  v->envs = (srl_env **)(block + o_envs);
  v->obs = (float *)(block + o_obs);
  v->final_obs = (float *)(block + o_final);
  v->rewards = (float *)(block + o_rew);
  v->costs = (float *)(block + o_cost);
  v->terminated = (int *)(block + o_term);
  v->truncated = (int *)(block + o_trunc);
  v->done = (int *)(block + o_done);
  v->infos = (srl_env_info *)(block + o_infos);
  v->stats = (srl_episode_stats *)(block + o_stats);
  v->episode = (long long *)(block + o_ep);
  memcpy(v->envs, envs, sizeof(srl_env *) * n);

  // contiguous ranges, sizes differing by at most one
  srl_vec_pool *p = v->pool;
  p->workers = (worker *)(block + o_workers);
  for (int t = 0; t < num_threads; t++) {
    worker *w = &p->workers[t];
    w->v = v;
    w->index = t;
    w->lo = (int)((long long)num_envs * t / num_threads);
    w->hi = (int)((long long)num_envs * (t + 1) / num_threads);
  }
  p->spin_ns = num_threads <= cpus ? SPIN_NS : 0;
  const char *spin = getenv("SRL_VEC_SPIN_US");
  if (spin && spin[0]) p->spin_ns = 1000L * atol(spin);
  p->needs_reset = 1;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->start_cv, NULL);
  pthread_cond_init(&p->done_cv, NULL);
  atomic_init(&p->generation, 0u);
  atomic_init(&p->pending, 0);

  for (int t = 1; t < num_threads; t++) {
    int err = pthread_create(&p->workers[t].thread, NULL, worker_main, &p->workers[t]);
    if (err) {
      stop_threads(p);
      pthread_mutex_destroy(&p->mu);
      pthread_cond_destroy(&p->start_cv);
      pthread_cond_destroy(&p->done_cv);
      srl_free(block);
      return srl_error(SRL_ENOMEM, "vector env: cannot start thread %d of %d (error %d)", t,
                       num_threads, err);
    }
    p->started = t;
  }
  *out = v;
  return SRL_OK;
}


int srl_vec_env_create(srl_vec_env **out, const char *id, const char *options_yaml,
                       const srl_vec_env_config *cfg) {
  if (!out || !cfg) return srl_error(SRL_EINVAL, "srl_vec_env_create: out and cfg needed");
  *out = NULL;
  int n = cfg->num_envs;
  if (n < 1 || n > 1 << 20)
    return srl_error(SRL_EINVAL, "vector env: num_envs %d must be in [1, %d]", n, 1 << 20);
  if (cfg->cost_mode != -1 && cfg->cost_mode != SRL_COST_INDICATOR &&
      cfg->cost_mode != SRL_COST_RAW)
    return srl_error(SRL_EINVAL, "vector env: unknown cost mode %d", cfg->cost_mode);
  srl_env **envs = srl_calloc(sizeof(srl_env *) * (size_t)n);
  if (!envs) return SRL_ENOMEM;

  int rc = SRL_OK, made = 0;
  for (; made < n && rc == SRL_OK; made++) {
    srl_env *env = NULL, *wrapped = NULL;
    rc = srl_env_create(&env, id, options_yaml);
    if (rc == SRL_OK && cfg->cost_mode != -1) {
      rc = srl_wrap_cost(&wrapped, env, (srl_cost_mode)cfg->cost_mode);
      if (rc == SRL_OK) env = wrapped;
    }
    if (rc == SRL_OK && cfg->rescale_action) {
      rc = srl_wrap_action_rescale(&wrapped, env);
      if (rc == SRL_OK) env = wrapped;
    }
    if (rc < 0) {
      srl_env_destroy(env);
      if (n > 1) srl_error_context(rc, "vector env, env %d: ", made);
      break;
    }
    envs[made] = env;
  }
  if (rc == SRL_OK) rc = srl_vec_env_create_from(out, envs, n, cfg->num_threads);
  if (rc < 0)
    for (int i = 0; i < n; i++) srl_env_destroy(envs[i]);
  srl_free(envs);
  return rc;
}


void srl_vec_env_destroy(srl_vec_env *v) {
  if (!v) return;
  srl_vec_pool *p = v->pool;
  stop_threads(p);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->start_cv);
  pthread_cond_destroy(&p->done_cv);
  for (int i = 0; i < v->num_envs; i++) srl_env_destroy(v->envs[i]);
  srl_free(v);
}


//---- reset and step --------------------------------------------------------------------------

int srl_vec_env_reset(srl_vec_env *v, uint64_t seed) {
  if (!v) return srl_error(SRL_EINVAL, "srl_vec_env_reset: v must not be NULL");
  size_t n = (size_t)v->num_envs, od = (size_t)v->obs_dim;
  v->seed = seed;
  v->steps = 0;
  v->episodes_done = 0;
  v->diverged_last = 0;
  memset(v->final_obs, 0, sizeof(float) * n * od);
  memset(v->rewards, 0, sizeof(float) * n);
  memset(v->costs, 0, sizeof(float) * n);
  memset(v->terminated, 0, sizeof(int) * n);
  memset(v->truncated, 0, sizeof(int) * n);
  memset(v->done, 0, sizeof(int) * n);
  memset(v->infos, 0, sizeof(srl_env_info) * n);
  run_job(v, JOB_RESET);
  v->episodes_done = 0;
  int rc = gather(v, "reset");
  if (rc == SRL_OK) v->pool->needs_reset = 0;
  return rc;
}


int srl_vec_env_step(srl_vec_env *v, const float *actions) {
  if (!v || !actions) return srl_error(SRL_EINVAL, "srl_vec_env_step: v and actions needed");
  if (v->pool->needs_reset)
    return srl_error(SRL_ESTATE, "vector env: step %s; call srl_vec_env_reset",
                     v->steps ? "after a failed step" : "before the first reset");
  v->pool->actions = actions;
  run_job(v, JOB_STEP);
  v->pool->actions = NULL;
  v->steps++;
  return gather(v, "step");
}

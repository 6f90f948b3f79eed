// buffer.c: on-policy rollout buffer with GAE for reward and cost; circular replay buffer.
#include "core/buffer.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"


//---- rollout: lifetime ------------------------------------------------------------------------

srl_rollout_config srl_rollout_config_default(int num_envs, int steps_per_env, int obs_dim,
                                              int act_dim) {
  srl_rollout_config c;
  memset(&c, 0, sizeof c);
  c.num_envs = num_envs;
  c.steps_per_env = steps_per_env;
  c.obs_dim = obs_dim;
  c.act_dim = act_dim;
  c.gamma = 0.99f;
  c.lam = 0.95f;
  c.lam_c = 0.95f;
  c.standardize_adv_r = 1;
  c.standardize_adv_c = 1;
  return c;
}


static int in_unit(float x) {
  return isfinite(x) && x >= 0.0f && x <= 1.0f;
}


int srl_rollout_init(srl_rollout *rb, const srl_rollout_config *cfg) {
  if (!rb || !cfg) return srl_error(SRL_EINVAL, "rollout: NULL argument");
  memset(rb, 0, sizeof *rb);
  const srl_rollout_config c = *cfg;
  if (c.num_envs < 1 || c.steps_per_env < 1 || c.obs_dim < 1 || c.act_dim < 1)
    return srl_error(SRL_EINVAL,
                     "rollout: num_envs %d, steps_per_env %d, obs_dim %d, act_dim %d (need ≥ 1)",
                     c.num_envs, c.steps_per_env, c.obs_dim, c.act_dim);
  if ((long long)c.num_envs * c.steps_per_env > (1ll << 30))
    return srl_error(SRL_EINVAL, "rollout: %d envs × %d steps is too many rows", c.num_envs,
                     c.steps_per_env);
  if (!in_unit(c.gamma)) return srl_error(SRL_EINVAL, "rollout: gamma %g not in [0, 1]", c.gamma);
  if (!in_unit(c.lam)) return srl_error(SRL_EINVAL, "rollout: lam %g not in [0, 1]", c.lam);
  if (!in_unit(c.lam_c)) return srl_error(SRL_EINVAL, "rollout: lam_c %g not in [0, 1]", c.lam_c);

  // one block: per-row arrays, then the per-env path starts
  size_t cap = (size_t)c.num_envs * (size_t)c.steps_per_env;
  size_t total = 0;
  size_t off_obs = srl_layout_add(&total, cap * (size_t)c.obs_dim * sizeof(float));
  size_t off_act = srl_layout_add(&total, cap * (size_t)c.act_dim * sizeof(float));
  size_t off_row[9];
  for (int k = 0; k < 9; k++) off_row[k] = srl_layout_add(&total, cap * sizeof(float));
  size_t off_start = srl_layout_add(&total, (size_t)c.num_envs * sizeof(int));
  char *block = srl_calloc(total);
  if (!block)
    return srl_error_context(SRL_ENOMEM, "rollout of %d envs × %d steps: ", c.num_envs,
                             c.steps_per_env);
  rb->obs = (float *)(block + off_obs);  // the block starts here (freed through obs)
  rb->act = (float *)(block + off_act);
  float **rows[9] = {&rb->logp,  &rb->reward, &rb->cost,     &rb->v_r,     &rb->v_c,
                     &rb->adv_r, &rb->adv_c,  &rb->target_r, &rb->target_c};
  for (int k = 0; k < 9; k++) *rows[k] = (float *)(block + off_row[k]);
  rb->path_start = (int *)(block + off_start);
  rb->cfg = c;
  rb->capacity = (int)cap;
  srl_rollout_reset(rb);
  return SRL_OK;
}


void srl_rollout_free(srl_rollout *rb) {
  if (!rb) return;
  srl_free(rb->obs);
  memset(rb, 0, sizeof *rb);
}


void srl_rollout_reset(srl_rollout *rb) {
  if (!rb || !rb->obs) return;
  rb->t = 0;
  rb->finished = 0;
  rb->paths = 0;
  rb->adv_r_mean = rb->adv_r_std = rb->adv_c_mean = 0;
  for (int i = 0; i < rb->cfg.num_envs; i++) rb->path_start[i] = 0;
}


//---- rollout: storing -------------------------------------------------------------------------

int srl_rollout_store(srl_rollout *rb, const float *obs, const float *act, const float *logp,
                      const float *reward, const float *cost, const float *v_r, const float *v_c) {
  if (!rb || !rb->obs) return srl_error(SRL_EINVAL, "rollout store: buffer not initialised");
  if (!obs || !act || !logp || !reward || !cost || !v_r || !v_c)
    return srl_error(SRL_EINVAL, "rollout store: NULL array");
  if (rb->finished)
    return srl_error(SRL_ESTATE, "rollout store: epoch already finished (reset first)");
  const int n = rb->cfg.num_envs, T = rb->cfg.steps_per_env;
  const int od = rb->cfg.obs_dim, ad = rb->cfg.act_dim;
  if (rb->t >= T) return srl_error(SRL_ERANGE, "rollout store: all %d steps already stored", T);

  // env i's step t goes to row i·T + t
  for (int i = 0; i < n; i++) {
    size_t row = (size_t)i * T + rb->t;
    memcpy(rb->obs + row * od, obs + (size_t)i * od, (size_t)od * sizeof(float));
    memcpy(rb->act + row * ad, act + (size_t)i * ad, (size_t)ad * sizeof(float));
    rb->logp[row] = logp[i];
    rb->reward[row] = reward[i];
    rb->cost[row] = cost[i];
    rb->v_r[row] = v_r[i];
    rb->v_c[row] = v_c[i];
  }
  rb->t++;
  return SRL_OK;
}


// GAE over rows [begin, end) with bootstrap v_next: δ = r + γ·V' − V, adv = Σ (γλ)^l δ,
// target = adv + V (accumulated in double, stored in float)
static void gae_path(float *adv, float *target, const float *r, const float *v, size_t begin,
                     size_t end, double v_next, double gamma, double lam) {
  double acc = 0.0, gl = gamma * lam;
  for (size_t k = end; k-- > begin;) {
    double delta = (double)r[k] + gamma * v_next - (double)v[k];
    acc = delta + gl * acc;
    adv[k] = (float)acc;
    target[k] = (float)(acc + (double)v[k]);
    v_next = (double)v[k];
  }
}


// close env's open path [path_start, t) with bootstraps vr, vc
static void close_path(srl_rollout *rb, int env, double vr, double vc) {
  const int T = rb->cfg.steps_per_env;
  size_t base = (size_t)env * T;
  size_t begin = base + (size_t)rb->path_start[env], end = base + (size_t)rb->t;
  if (end > begin) {
    gae_path(rb->adv_r, rb->target_r, rb->reward, rb->v_r, begin, end, vr, rb->cfg.gamma,
             rb->cfg.lam);
    gae_path(rb->adv_c, rb->target_c, rb->cost, rb->v_c, begin, end, vc, rb->cfg.gamma,
             rb->cfg.lam_c);
    rb->paths++;
  }
  rb->path_start[env] = rb->t;
}


int srl_rollout_end_path(srl_rollout *rb, int env, int terminated, float last_v_r, float last_v_c) {
  if (!rb || !rb->obs) return srl_error(SRL_EINVAL, "rollout end_path: buffer not initialised");
  if (rb->finished) return srl_error(SRL_ESTATE, "rollout end_path: epoch already finished");
  if (env < 0 || env >= rb->cfg.num_envs)
    return srl_error(SRL_ERANGE, "rollout end_path: env %d not in [0, %d)", env, rb->cfg.num_envs);
  if (rb->t == 0) return srl_error(SRL_ESTATE, "rollout end_path: no step stored yet");
  // termination bootstraps 0; truncation bootstraps V(final_obs)
  double vr = terminated ? 0.0 : (double)last_v_r;
  double vc = terminated ? 0.0 : (double)last_v_c;
  if (!isfinite(vr) || !isfinite(vc))
    return srl_error(SRL_ENONFINITE,
                     "rollout end_path: non-finite bootstrap value of env %d "
                     "(V_r %g, V_c %g)",
                     env, vr, vc);
  close_path(rb, env, vr, vc);
  return SRL_OK;
}


int srl_rollout_end_paths(srl_rollout *rb, const int *terminated, const int *truncated,
                          const float *final_v_r, const float *final_v_c) {
  if (!rb || !rb->obs) return srl_error(SRL_EINVAL, "rollout end_paths: buffer not initialised");
  if (!terminated || !truncated)
    return srl_error(SRL_EINVAL, "rollout end_paths: NULL terminated or truncated");
  for (int i = 0; i < rb->cfg.num_envs; i++) {
    if (terminated[i]) {
      SRL_TRY(srl_rollout_end_path(rb, i, 1, 0.0f, 0.0f));
    } else if (truncated[i]) {
      if (!final_v_r || !final_v_c)
        return srl_error(SRL_EINVAL, "rollout end_paths: env %d truncated but no final values", i);
      SRL_TRY(srl_rollout_end_path(rb, i, 0, final_v_r[i], final_v_c[i]));
    }
  }
  return SRL_OK;
}


//---- rollout: finishing the epoch -------------------------------------------------------------

// first non-finite entry of x[0..n), or -1
static long long first_nonfinite(const float *x, size_t n) {
  for (size_t k = 0; k < n; k++)
    if (!isfinite(x[k])) return (long long)k;
  return -1;
}


int srl_rollout_finish(srl_rollout *rb, const float *last_v_r, const float *last_v_c) {
  if (!rb || !rb->obs) return srl_error(SRL_EINVAL, "rollout finish: buffer not initialised");
  if (!last_v_r || !last_v_c) return srl_error(SRL_EINVAL, "rollout finish: NULL last values");
  if (rb->finished) return srl_error(SRL_ESTATE, "rollout finish: epoch already finished");
  const int n = rb->cfg.num_envs, T = rb->cfg.steps_per_env;
  if (rb->t != T) return srl_error(SRL_ESTATE, "rollout finish: %d of %d steps stored", rb->t, T);

  // the stored data must be finite before anything is computed from it
  size_t cap = (size_t)rb->capacity;
  const float *check[] = {rb->reward, rb->cost, rb->v_r, rb->v_c};
  const char *names[] = {"reward", "cost", "V_r", "V_c"};
  for (int q = 0; q < 4; q++) {
    long long k = first_nonfinite(check[q], cap);
    if (k >= 0)
      return srl_error(SRL_ENONFINITE, "rollout finish: non-finite %s (%g) at env %lld step %lld",
                       names[q], check[q][k], k / T, k % T);
  }
  for (int i = 0; i < n; i++)
    if (!isfinite(last_v_r[i]) || !isfinite(last_v_c[i]))
      return srl_error(SRL_ENONFINITE,
                       "rollout finish: non-finite last value of env %d "
                       "(V_r %g, V_c %g)",
                       i, last_v_r[i], last_v_c[i]);

  // the epoch cut bootstraps V(obs) of the state after the last step
  for (int i = 0; i < n; i++) close_path(rb, i, last_v_r[i], last_v_c[i]);

  // epoch statistics (population std, as OmniSafe's dist_statistics_scalar)
  double sr = 0, sc = 0;
  for (size_t k = 0; k < cap; k++) {
    sr += rb->adv_r[k];
    sc += rb->adv_c[k];
  }
  double mr = sr / (double)cap, mc = sc / (double)cap, ss = 0;
  for (size_t k = 0; k < cap; k++) ss += ((double)rb->adv_r[k] - mr) * ((double)rb->adv_r[k] - mr);
  double sd = sqrt(ss / (double)cap);
  if (!isfinite(mr) || !isfinite(mc) || !isfinite(sd))
    return srl_error(SRL_ENONFINITE,
                     "rollout finish: non-finite advantage statistics (adv_r "
                     "mean %g std %g, adv_c mean %g)",
                     mr, sd, mc);
  rb->adv_r_mean = mr;
  rb->adv_r_std = sd;
  rb->adv_c_mean = mc;

  // adv_r standardised, adv_c centred
  if (rb->cfg.standardize_adv_r) {
    double inv = 1.0 / (sd + 1e-8);
    for (size_t k = 0; k < cap; k++) rb->adv_r[k] = (float)(((double)rb->adv_r[k] - mr) * inv);
  }
  if (rb->cfg.standardize_adv_c)
    for (size_t k = 0; k < cap; k++) rb->adv_c[k] = (float)((double)rb->adv_c[k] - mc);
  rb->finished = 1;
  return SRL_OK;
}


int srl_rollout_gather(const srl_rollout *rb, float *obs, float *act, float *logp, float *adv_r,
                       float *adv_c, float *target_r, float *target_c, const int *idx, int n) {
  if (!rb || !rb->obs) return srl_error(SRL_EINVAL, "rollout gather: buffer not initialised");
  if (!rb->finished) return srl_error(SRL_ESTATE, "rollout gather: epoch not finished");
  if (n < 0 || (n > 0 && !idx)) return srl_error(SRL_EINVAL, "rollout gather: bad index list");
  for (int j = 0; j < n; j++)
    if (idx[j] < 0 || idx[j] >= rb->capacity)
      return srl_error(SRL_ERANGE, "rollout gather: index %d not in [0, %d)", idx[j], rb->capacity);
  const size_t od = (size_t)rb->cfg.obs_dim, ad = (size_t)rb->cfg.act_dim;
  for (int j = 0; j < n; j++) {
    size_t r = (size_t)idx[j];
    if (obs) memcpy(obs + (size_t)j * od, rb->obs + r * od, od * sizeof(float));
    if (act) memcpy(act + (size_t)j * ad, rb->act + r * ad, ad * sizeof(float));
    if (logp) logp[j] = rb->logp[r];
    if (adv_r) adv_r[j] = rb->adv_r[r];
    if (adv_c) adv_c[j] = rb->adv_c[r];
    if (target_r) target_r[j] = rb->target_r[r];
    if (target_c) target_c[j] = rb->target_c[r];
  }
  return SRL_OK;
}


//---- replay buffer ----------------------------------------------------------------------------

int srl_replay_init(srl_replay *rb, int capacity, int obs_dim, int act_dim) {
  if (!rb) return srl_error(SRL_EINVAL, "replay: NULL");
  memset(rb, 0, sizeof *rb);
  if (capacity < 1 || obs_dim < 1 || act_dim < 1)
    return srl_error(SRL_EINVAL, "replay: capacity %d, obs_dim %d, act_dim %d (need ≥ 1)", capacity,
                     obs_dim, act_dim);
  size_t cap = (size_t)capacity, total = 0;
  size_t off_obs = srl_layout_add(&total, cap * (size_t)obs_dim * sizeof(float));
  size_t off_next = srl_layout_add(&total, cap * (size_t)obs_dim * sizeof(float));
  size_t off_act = srl_layout_add(&total, cap * (size_t)act_dim * sizeof(float));
  size_t off_rew = srl_layout_add(&total, cap * sizeof(float));
  size_t off_cost = srl_layout_add(&total, cap * sizeof(float));
  size_t off_done = srl_layout_add(&total, cap * sizeof(float));
  char *block = srl_calloc(total);
  if (!block) return srl_error_context(SRL_ENOMEM, "replay of %d transitions: ", capacity);
  rb->obs = (float *)(block + off_obs);  // the block starts here
  rb->next_obs = (float *)(block + off_next);
  rb->act = (float *)(block + off_act);
  rb->reward = (float *)(block + off_rew);
  rb->cost = (float *)(block + off_cost);
  rb->done = (float *)(block + off_done);
  rb->capacity = capacity;
  rb->obs_dim = obs_dim;
  rb->act_dim = act_dim;
  return SRL_OK;
}


void srl_replay_free(srl_replay *rb) {
  if (!rb) return;
  srl_free(rb->obs);
  memset(rb, 0, sizeof *rb);
}


void srl_replay_reset(srl_replay *rb) {
  if (!rb) return;
  rb->size = 0;
  rb->head = 0;
  rb->stored = 0;
}


int srl_replay_store(srl_replay *rb, const float *obs, const float *act, const float *reward,
                     const float *cost, const float *next_obs, const int *terminated, int n) {
  if (!rb || !rb->obs) return srl_error(SRL_EINVAL, "replay store: buffer not initialised");
  if (n < 0) return srl_error(SRL_EINVAL, "replay store: n %d", n);
  if (n > 0 && (!obs || !act || !reward || !cost || !next_obs || !terminated))
    return srl_error(SRL_EINVAL, "replay store: NULL array");
  const size_t od = (size_t)rb->obs_dim, ad = (size_t)rb->act_dim;
  // row by row at head, wrapping over the oldest
  for (int j = 0; j < n; j++) {
    size_t h = (size_t)rb->head;
    memcpy(rb->obs + h * od, obs + (size_t)j * od, od * sizeof(float));
    memcpy(rb->next_obs + h * od, next_obs + (size_t)j * od, od * sizeof(float));
    memcpy(rb->act + h * ad, act + (size_t)j * ad, ad * sizeof(float));
    rb->reward[h] = reward[j];
    rb->cost[h] = cost[j];
    rb->done[h] = terminated[j] ? 1.0f : 0.0f;
    rb->head = rb->head + 1 == rb->capacity ? 0 : rb->head + 1;
    if (rb->size < rb->capacity) rb->size++;
  }
  rb->stored += n;
  return SRL_OK;
}


int srl_replay_sample(const srl_replay *rb, srl_rng *rng, int *idx, float *obs, float *act,
                      float *reward, float *cost, float *next_obs, float *done, int batch) {
  if (!rb || !rb->obs || !rng) return srl_error(SRL_EINVAL, "replay sample: NULL argument");
  if (batch < 0) return srl_error(SRL_EINVAL, "replay sample: batch %d", batch);
  if (rb->size == 0) return srl_error(SRL_ESTATE, "replay sample: buffer is empty");
  const size_t od = (size_t)rb->obs_dim, ad = (size_t)rb->act_dim;
  // one uniform draw per row, with replacement (OmniSafe's torch.randint)
  for (int j = 0; j < batch; j++) {
    size_t r = (size_t)srl_rng_int(rng, (unsigned long)rb->size);
    if (idx) idx[j] = (int)r;
    if (obs) memcpy(obs + (size_t)j * od, rb->obs + r * od, od * sizeof(float));
    if (next_obs) memcpy(next_obs + (size_t)j * od, rb->next_obs + r * od, od * sizeof(float));
    if (act) memcpy(act + (size_t)j * ad, rb->act + r * ad, ad * sizeof(float));
    if (reward) reward[j] = rb->reward[r];
    if (cost) cost[j] = rb->cost[r];
    if (done) done[j] = rb->done[r];
  }
  return SRL_OK;
}

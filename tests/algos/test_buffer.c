// test_buffer.c: the rollout buffer's GAE against a direct O(T²) sum, its bootstrapping rules
// (termination 0, truncation V(final_obs), epoch cut V(obs)), advantage standardisation and
// centring, row layout and gather; the replay buffer's wraparound and sampling; no allocation
// after init.
#include <stdlib.h>

#include "core/alloc.h"
#include "core/buffer.h"
#include "core/rng.h"
#include "test.h"

enum { N = 3, T = 40, OD = 3, AD = 2 };

// a path end in the scripted rollout: env, step, terminated (else truncated), bootstrap values
typedef struct {
  int env, step, terminated;
  float vr, vc;
} path_end;

// the scripted episode ends: mid-rollout terminations and truncations, a one-step path, a
// truncation on the last step (so the epoch cut leaves that env alone)
static const path_end ENDS[] = {
    {0, 9, 1, 0, 0},         {0, 25, 0, 3.5f, -1.25f}, {1, 0, 1, 0, 0},
    {1, 17, 0, 0.75f, 2.0f}, {1, 39, 0, -2.0f, 0.5f},  {2, 30, 1, 0, 0},
};
enum { NENDS = sizeof ENDS / sizeof ENDS[0] };

// per-step data of the scripted rollout, row env·T + step
static float g_obs[N * T * OD], g_act[N * T * AD], g_logp[N * T];
static float g_rew[N * T], g_cost[N * T], g_vr[N * T], g_vc[N * T];
static const float LAST_VR[N] = {1.5f, -0.5f, 2.25f}, LAST_VC[N] = {0.25f, 4.0f, -1.0f};

static void make_data(uint64_t seed) {
  srl_rng *r;
  if (srl_rng_create(&r, seed, 0)) abort();
  srl_rng_fill_normal(r, g_obs, N * T * OD, 0, 1);
  srl_rng_fill_normal(r, g_act, N * T * AD, 0, 1);
  srl_rng_fill_normal(r, g_logp, N * T, -2, 0.5f);
  srl_rng_fill_normal(r, g_rew, N * T, 0.2f, 1);
  for (int k = 0; k < N * T; k++) g_cost[k] = srl_rng_uniform(r) < 0.3 ? 1.0f : 0.0f;
  srl_rng_fill_normal(r, g_vr, N * T, 1, 2);
  srl_rng_fill_normal(r, g_vc, N * T, 0.5f, 1);
  srl_rng_destroy(r);
}

// run the scripted rollout through the buffer: step by step in vector form, with the ends
static int run_rollout(srl_rollout *rb, const path_end *ends, int nends, const float *last_vr,
                       const float *last_vc) {
  float obs[N * OD], act[N * AD], lp[N], rw[N], cs[N], vr[N], vc[N];
  srl_rollout_reset(rb);
  for (int t = 0; t < T; t++) {
    for (int i = 0; i < N; i++) {
      int row = i * T + t;
      memcpy(obs + i * OD, g_obs + row * OD, sizeof(float) * OD);
      memcpy(act + i * AD, g_act + row * AD, sizeof(float) * AD);
      lp[i] = g_logp[row], rw[i] = g_rew[row], cs[i] = g_cost[row];
      vr[i] = g_vr[row], vc[i] = g_vc[row];
    }
    int rc = srl_rollout_store(rb, obs, act, lp, rw, cs, vr, vc);
    if (rc) return rc;
    // vector form, as srl_vec_env's arrays
    int term[N] = {0}, trunc[N] = {0};
    float fvr[N] = {0}, fvc[N] = {0};
    int any = 0;
    for (int e = 0; e < nends; e++)
      if (ends[e].step == t) {
        int i = ends[e].env;
        (ends[e].terminated ? term : trunc)[i] = 1;
        fvr[i] = ends[e].vr, fvc[i] = ends[e].vc;
        any = 1;
      }
    if (any && (rc = srl_rollout_end_paths(rb, term, trunc, fvr, fvc))) return rc;
  }
  return srl_rollout_finish(rb, last_vr, last_vc);
}

// the reference: adv_t = Σ_{l=0}^{e−1−t} (γλ)^l δ_{t+l} with δ_k = r_k + γ·V_{k+1} − V_k and
// V_e = the path's bootstrap, computed directly in double (O(T²)); targets adv + V
static void reference(double *adv, double *target, const float *r, const float *v, int is_cost,
                      const path_end *ends, int nends, const float *last_v, double gamma,
                      double lam) {
  for (int i = 0; i < N; i++) {
    int begin = 0;
    while (begin < T) {
      // the path starting at begin ends at the first scripted end ≥ begin, else at the cut
      int end = T;
      double boot = last_v[i];
      for (int e = 0; e < nends; e++)
        if (ends[e].env == i && ends[e].step >= begin && ends[e].step + 1 <= end) {
          end = ends[e].step + 1;
          boot = ends[e].terminated ? 0.0 : (is_cost ? ends[e].vc : ends[e].vr);
        }
      for (int t = begin; t < end; t++) {
        double sum = 0;
        for (int k = t; k < end; k++) {
          double vnext = k + 1 < end ? v[i * T + k + 1] : boot;
          double delta = r[i * T + k] + gamma * vnext - v[i * T + k];
          sum += pow(gamma * lam, k - t) * delta;
        }
        adv[i * T + t] = sum;
        target[i * T + t] = sum + v[i * T + t];
      }
      begin = end;
    }
  }
}


//---- allocation counter -----------------------------------------------------------------------

static int g_allocs;
static void *counting_malloc(size_t bytes, size_t align) {
  g_allocs++;
  return aligned_alloc(align, srl_align_up(bytes ? bytes : 1, align));
}


//---- rollout tests ----------------------------------------------------------------------------

TEST(test_gae_matches_direct_sum) {
  make_data(7);
  srl_rollout_config cfg = srl_rollout_config_default(N, T, OD, AD);
  cfg.gamma = 0.97f, cfg.lam = 0.9f, cfg.lam_c = 0.8f;
  cfg.standardize_adv_r = cfg.standardize_adv_c = 0;
  srl_rollout rb;
  CHECK_OK(srl_rollout_init(&rb, &cfg));
  CHECK_EQ_INT(rb.capacity, N * T);
  CHECK_OK(run_rollout(&rb, ENDS, NENDS, LAST_VR, LAST_VC));
  // 6 scripted ends (one at the last step) + epoch cuts of envs 0 and 2
  CHECK_EQ_INT(rb.paths, NENDS + 2);

  static double ar[N * T], tr[N * T], ac[N * T], tc[N * T];
  reference(ar, tr, g_rew, g_vr, 0, ENDS, NENDS, LAST_VR, cfg.gamma, cfg.lam);
  reference(ac, tc, g_cost, g_vc, 1, ENDS, NENDS, LAST_VC, cfg.gamma, cfg.lam_c);
  double worst = 0;
  for (int k = 0; k < N * T; k++) {
    CHECK_CLOSE(rb.adv_r[k], ar[k], 1e-5, 1e-5);
    CHECK_CLOSE(rb.target_r[k], tr[k], 1e-5, 1e-5);
    CHECK_CLOSE(rb.adv_c[k], ac[k], 1e-5, 1e-5);
    CHECK_CLOSE(rb.target_c[k], tc[k], 1e-5, 1e-5);
    worst = fmax(worst, fabs(rb.adv_r[k] - ar[k]));
  }
  printf("  max |adv_r - direct| = %.3g over %d rows\n", worst, N * T);
  // stored rows are env-major and unchanged
  for (int k = 0; k < N * T; k++) {
    CHECK(rb.logp[k] == g_logp[k] && rb.reward[k] == g_rew[k] && rb.cost[k] == g_cost[k]);
    CHECK(rb.v_r[k] == g_vr[k] && rb.v_c[k] == g_vc[k]);
  }
  CHECK(memcmp(rb.obs, g_obs, sizeof g_obs) == 0);
  CHECK(memcmp(rb.act, g_act, sizeof g_act) == 0);
  srl_rollout_free(&rb);
  srl_rollout_free(&rb);  // twice is harmless
}


TEST(test_standardise_and_centre) {
  make_data(11);
  srl_rollout_config cfg = srl_rollout_config_default(N, T, OD, AD);
  srl_rollout rb;
  CHECK_OK(srl_rollout_init(&rb, &cfg));
  CHECK_OK(run_rollout(&rb, ENDS, NENDS, LAST_VR, LAST_VC));
  static double ar[N * T], tr[N * T], ac[N * T], tc[N * T];
  reference(ar, tr, g_rew, g_vr, 0, ENDS, NENDS, LAST_VR, 0.99, 0.95);
  reference(ac, tc, g_cost, g_vc, 1, ENDS, NENDS, LAST_VC, 0.99, 0.95);
  // population statistics over the whole epoch
  double mr = 0, mc = 0, ss = 0;
  for (int k = 0; k < N * T; k++) mr += ar[k], mc += ac[k];
  mr /= N * T, mc /= N * T;
  for (int k = 0; k < N * T; k++) ss += (ar[k] - mr) * (ar[k] - mr);
  double sd = sqrt(ss / (N * T));
  CHECK_CLOSE(rb.adv_r_mean, mr, 1e-5, 1e-5);
  CHECK_CLOSE(rb.adv_r_std, sd, 1e-5, 1e-5);
  CHECK_CLOSE(rb.adv_c_mean, mc, 1e-5, 1e-5);
  double m_after = 0, v_after = 0, mc_after = 0;
  for (int k = 0; k < N * T; k++) {
    CHECK_CLOSE(rb.adv_r[k], (ar[k] - mr) / (sd + 1e-8), 1e-5, 1e-5);
    CHECK_CLOSE(rb.adv_c[k], ac[k] - mc, 1e-5, 1e-5);
    // targets come from the raw advantages
    CHECK_CLOSE(rb.target_r[k], tr[k], 1e-5, 1e-5);
    CHECK_CLOSE(rb.target_c[k], tc[k], 1e-5, 1e-5);
    m_after += rb.adv_r[k], mc_after += rb.adv_c[k];
  }
  m_after /= N * T;
  for (int k = 0; k < N * T; k++) v_after += (rb.adv_r[k] - m_after) * (rb.adv_r[k] - m_after);
  CHECK_CLOSE(m_after, 0, 1e-6, 0);
  CHECK_CLOSE(sqrt(v_after / (N * T)), 1, 1e-5, 0);
  CHECK_CLOSE(mc_after / (N * T), 0, 1e-6, 0);
  srl_rollout_free(&rb);
}


// env 0's episode ends at step 25: truncated with V(final) = 5 versus terminated; the
// difference at step t of that path is (γλ)^{25−t}·γ·5, zero outside it
TEST(test_truncation_vs_termination) {
  make_data(3);
  srl_rollout_config cfg = srl_rollout_config_default(N, T, OD, AD);
  cfg.standardize_adv_r = cfg.standardize_adv_c = 0;
  path_end trunc[] = {{0, 9, 1, 0, 0}, {0, 25, 0, 5.0f, -3.0f}};
  path_end term[] = {{0, 9, 1, 0, 0}, {0, 25, 1, 5.0f, -3.0f}};  // values must be ignored
  path_end both[] = {{0, 9, 1, 0, 0}, {0, 25, 1, 0, 0}};
  srl_rollout a, b, c;
  CHECK_OK(srl_rollout_init(&a, &cfg));
  CHECK_OK(srl_rollout_init(&b, &cfg));
  CHECK_OK(srl_rollout_init(&c, &cfg));
  CHECK_OK(run_rollout(&a, trunc, 2, LAST_VR, LAST_VC));
  CHECK_OK(run_rollout(&b, term, 2, LAST_VR, LAST_VC));
  CHECK_OK(run_rollout(&c, both, 2, LAST_VR, LAST_VC));
  double gl = 0.99 * 0.95;
  for (int k = 0; k < N * T; k++) {
    int t = k % T;
    int in_path = k / T == 0 && t >= 10 && t <= 25;
    double dr = in_path ? pow(gl, 25 - t) * 0.99 * 5.0 : 0.0;
    double dc = in_path ? pow(gl, 25 - t) * 0.99 * -3.0 : 0.0;
    CHECK_CLOSE(a.adv_r[k] - b.adv_r[k], dr, 2e-6, 1e-5);
    CHECK_CLOSE(a.adv_c[k] - b.adv_c[k], dc, 2e-6, 1e-5);
    CHECK_CLOSE(a.target_r[k] - b.target_r[k], dr, 2e-6, 1e-5);
    CHECK(b.adv_r[k] == c.adv_r[k] && b.adv_c[k] == c.adv_c[k]);
  }
  // terminated and truncated together: termination wins (bootstrap 0)
  int te[N] = {1, 0, 0}, tr[N] = {1, 0, 0};
  float big[N] = {1000, 1000, 1000};
  srl_rollout_reset(&a);
  float z[N * OD] = {0}, r1[N] = {1, 1, 1}, v0[N] = {0};
  CHECK_OK(srl_rollout_store(&a, z, z, v0, r1, v0, v0, v0));
  CHECK_OK(srl_rollout_end_paths(&a, te, tr, big, big));
  CHECK_CLOSE(a.adv_r[0], 1.0, 0, 0);
  // the per-env form ignores the values given with a termination
  CHECK_OK(srl_rollout_store(&a, z, z, v0, r1, v0, v0, v0));
  CHECK_OK(srl_rollout_end_path(&a, 1, 1, 1000.0f, 1000.0f));
  CHECK_CLOSE(a.adv_r[1 * T + 1], 1.0, 0, 0);
  CHECK_CLOSE(a.adv_c[1 * T + 1], 0.0, 0, 0);
  srl_rollout_free(&a);
  srl_rollout_free(&b);
  srl_rollout_free(&c);
}


// the epoch cut bootstraps the last values given to finish: changing env 2's by ΔV changes its
// last path's advantages by (γλ)^{T−1−t}·γ·ΔV (its path starts after the end at step 30)
TEST(test_epoch_cut_bootstrap) {
  make_data(5);
  srl_rollout_config cfg = srl_rollout_config_default(N, T, OD, AD);
  cfg.standardize_adv_r = cfg.standardize_adv_c = 0;
  srl_rollout a, b;
  CHECK_OK(srl_rollout_init(&a, &cfg));
  CHECK_OK(srl_rollout_init(&b, &cfg));
  float vr2[N], vc2[N];
  memcpy(vr2, LAST_VR, sizeof vr2), memcpy(vc2, LAST_VC, sizeof vc2);
  vr2[2] += 2.0f, vc2[2] -= 4.0f;
  vr2[1] += 100.0f;  // env 1 was truncated on the last step: no open path, no effect
  CHECK_OK(run_rollout(&a, ENDS, NENDS, LAST_VR, LAST_VC));
  CHECK_OK(run_rollout(&b, ENDS, NENDS, vr2, vc2));
  double gl = 0.99 * 0.95;
  for (int k = 0; k < N * T; k++) {
    int t = k % T;
    int in_path = k / T == 2 && t > 30;
    double dr = in_path ? pow(gl, T - 1 - t) * 0.99 * 2.0 : 0.0;
    double dc = in_path ? pow(gl, T - 1 - t) * 0.99 * -4.0 : 0.0;
    CHECK_CLOSE(b.adv_r[k] - a.adv_r[k], dr, 2e-6, 1e-5);
    CHECK_CLOSE(b.adv_c[k] - a.adv_c[k], dc, 2e-6, 1e-5);
  }
  // the cut step itself: adv = r + γ·V(obs) − V exactly for the last row
  int k = 2 * T + T - 1;
  CHECK_CLOSE(a.adv_r[k], (double)g_rew[k] + 0.99 * LAST_VR[2] - g_vr[k], 1e-6, 1e-6);
  srl_rollout_free(&a);
  srl_rollout_free(&b);
}


TEST(test_gather_rows) {
  make_data(9);
  srl_rollout_config cfg = srl_rollout_config_default(N, T, OD, AD);
  srl_rollout rb;
  CHECK_OK(srl_rollout_init(&rb, &cfg));
  float o[5 * OD], a[5 * AD], lp[5], ar[5], ac[5], tr[5], tc[5];
  int idx[5] = {0, T - 1, T, 2 * T + 17, N * T - 1};
  CHECK_ERR(srl_rollout_gather(&rb, o, a, lp, ar, ac, tr, tc, idx, 5), SRL_ESTATE);
  CHECK_OK(run_rollout(&rb, ENDS, NENDS, LAST_VR, LAST_VC));
  CHECK_OK(srl_rollout_gather(&rb, o, a, lp, ar, ac, tr, tc, idx, 5));
  for (int j = 0; j < 5; j++) {
    int r = idx[j];
    CHECK(memcmp(o + j * OD, g_obs + r * OD, sizeof(float) * OD) == 0);
    CHECK(memcmp(a + j * AD, g_act + r * AD, sizeof(float) * AD) == 0);
    CHECK(lp[j] == g_logp[r] && ar[j] == rb.adv_r[r] && ac[j] == rb.adv_c[r]);
    CHECK(tr[j] == rb.target_r[r] && tc[j] == rb.target_c[r]);
  }
  CHECK_OK(srl_rollout_gather(&rb, NULL, NULL, lp, NULL, NULL, NULL, NULL, idx, 5));
  int bad[1] = {N * T};
  CHECK_ERR(srl_rollout_gather(&rb, o, a, lp, ar, ac, tr, tc, bad, 1), SRL_ERANGE);
  srl_rollout_free(&rb);
}


TEST(test_rollout_errors) {
  srl_rollout rb;
  srl_rollout_config cfg = srl_rollout_config_default(2, 3, 1, 1);
  cfg.gamma = 1.5f;
  CHECK_ERR(srl_rollout_init(&rb, &cfg), SRL_EINVAL);
  cfg = srl_rollout_config_default(0, 3, 1, 1);
  CHECK_ERR(srl_rollout_init(&rb, &cfg), SRL_EINVAL);
  cfg = srl_rollout_config_default(2, 3, 1, 1);
  CHECK_OK(srl_rollout_init(&rb, &cfg));
  float x[2] = {0.5f, 1.0f}, lv[2] = {0, 0};
  int term[2] = {0, 0}, trunc[2] = {0, 1};
  CHECK_ERR(srl_rollout_end_path(&rb, 0, 1, 0, 0), SRL_ESTATE);  // nothing stored
  CHECK_OK(srl_rollout_store(&rb, x, x, x, x, x, x, x));
  CHECK_ERR(srl_rollout_finish(&rb, lv, lv), SRL_ESTATE);  // 1 of 3 steps
  CHECK_ERR(srl_rollout_end_path(&rb, 2, 1, 0, 0), SRL_ERANGE);
  CHECK_ERR(srl_rollout_end_paths(&rb, term, trunc, NULL, NULL), SRL_EINVAL);
  CHECK_ERR(srl_rollout_end_path(&rb, 1, 0, NAN, 0), SRL_ENONFINITE);
  CHECK_OK(srl_rollout_store(&rb, x, x, x, x, x, x, x));
  float nanr[2] = {1.0f, NAN};
  CHECK_OK(srl_rollout_store(&rb, x, x, x, nanr, x, x, x));
  CHECK_ERR(srl_rollout_store(&rb, x, x, x, x, x, x, x), SRL_ERANGE);  // full
  CHECK_ERR(srl_rollout_finish(&rb, lv, lv), SRL_ENONFINITE);
  CHECK_ERRMSG("reward");
  CHECK_ERRMSG("env 1 step 2");
  // a clean epoch finishes; storing then needs a reset
  srl_rollout_reset(&rb);
  for (int t = 0; t < 3; t++) CHECK_OK(srl_rollout_store(&rb, x, x, x, x, x, x, x));
  float inf[2] = {INFINITY, 0};
  CHECK_ERR(srl_rollout_finish(&rb, inf, lv), SRL_ENONFINITE);
  CHECK_OK(srl_rollout_finish(&rb, lv, lv));
  CHECK_ERR(srl_rollout_store(&rb, x, x, x, x, x, x, x), SRL_ESTATE);
  CHECK_ERR(srl_rollout_finish(&rb, lv, lv), SRL_ESTATE);
  srl_rollout_free(&rb);
}


// a constant advantage standardises to 0 (std 0, + 1e-8), not NaN
TEST(test_constant_advantages) {
  srl_rollout_config cfg = srl_rollout_config_default(1, 4, 1, 1);
  cfg.gamma = 0;  // adv = r − V
  srl_rollout rb;
  CHECK_OK(srl_rollout_init(&rb, &cfg));
  float one = 1, zero = 0;
  for (int t = 0; t < 4; t++)
    CHECK_OK(srl_rollout_store(&rb, &one, &one, &one, &one, &zero, &zero, &zero));
  CHECK_OK(srl_rollout_finish(&rb, &zero, &zero));
  for (int t = 0; t < 4; t++) CHECK(rb.adv_r[t] == 0.0f && rb.adv_c[t] == 0.0f);
  CHECK_CLOSE(rb.target_r[0], 1.0, 0, 0);
  srl_rollout_free(&rb);
}


// the rollout loop and sampling allocate nothing after init
TEST(test_no_allocation_in_loop) {
  make_data(13);
  srl_rollout_config cfg = srl_rollout_config_default(N, T, OD, AD);
  srl_rollout rb;
  srl_replay rp;
  srl_rng *rng;
  CHECK_OK(srl_rng_create(&rng, 1, 0));
  srl_set_allocator(counting_malloc, free);
  g_allocs = 0;
  CHECK_OK(srl_rollout_init(&rb, &cfg));
  CHECK_OK(srl_replay_init(&rp, 64, OD, AD));
  CHECK_EQ_INT(g_allocs, 2);  // one block each
  int term[N] = {0};
  float o[8 * OD], a[8 * AD], s[8];
  for (int epoch = 0; epoch < 3; epoch++) {
    CHECK_OK(run_rollout(&rb, ENDS, NENDS, LAST_VR, LAST_VC));
    int idx[4] = {1, 2, 3, 4};
    CHECK_OK(srl_rollout_gather(&rb, o, a, s, s, s, s, s, idx, 4));
    CHECK_OK(srl_replay_store(&rp, g_obs, g_act, g_rew, g_cost, g_obs, term, N));
    CHECK_OK(srl_replay_sample(&rp, rng, NULL, o, a, s, s, o, s, 8));
  }
  CHECK_EQ_INT(g_allocs, 2);
  srl_rollout_free(&rb);
  srl_replay_free(&rp);
  srl_set_allocator(NULL, NULL);
  srl_rng_destroy(rng);
}


//---- replay tests -----------------------------------------------------------------------------

// transition j: obs row filled with j, next_obs with j + 0.5, act with −j, reward j, cost 2j,
// terminated when j % 3 == 0
static void make_transitions(float *obs, float *next, float *act, float *rew, float *cost,
                             int *term, int first, int n) {
  for (int q = 0; q < n; q++) {
    int j = first + q;
    for (int d = 0; d < OD; d++) obs[q * OD + d] = (float)j, next[q * OD + d] = j + 0.5f;
    for (int d = 0; d < AD; d++) act[q * AD + d] = (float)-j;
    rew[q] = (float)j, cost[q] = 2.0f * j, term[q] = j % 3 == 0;
  }
}


TEST(test_replay_wraparound) {
  srl_replay rp;
  CHECK_OK(srl_replay_init(&rp, 5, OD, AD));
  float o[8 * OD], nx[8 * OD], a[8 * AD], r[8], c[8];
  int te[8];
  make_transitions(o, nx, a, r, c, te, 1, 3);  // transitions 1..3
  CHECK_OK(srl_replay_store(&rp, o, a, r, c, nx, te, 3));
  CHECK_EQ_INT(rp.size, 3);
  CHECK_EQ_INT(rp.head, 3);
  make_transitions(o, nx, a, r, c, te, 4, 4);  // 4..7: 6 and 7 overwrite 1 and 2
  CHECK_OK(srl_replay_store(&rp, o, a, r, c, nx, te, 4));
  CHECK_EQ_INT(rp.size, 5);
  CHECK_EQ_INT(rp.head, 2);
  CHECK_EQ_INT(rp.stored, 7);
  const int expect[5] = {6, 7, 3, 4, 5};
  for (int h = 0; h < 5; h++) {
    int j = expect[h];
    CHECK(rp.reward[h] == j && rp.cost[h] == 2.0f * j);
    CHECK(rp.done[h] == (j % 3 == 0 ? 1.0f : 0.0f));
    for (int d = 0; d < OD; d++)
      CHECK(rp.obs[h * OD + d] == j && rp.next_obs[h * OD + d] == j + 0.5f);
    for (int d = 0; d < AD; d++) CHECK(rp.act[h * AD + d] == -j);
  }
  // more than the capacity in one call keeps the last 5
  make_transitions(o, nx, a, r, c, te, 10, 8);  // 10..17
  CHECK_OK(srl_replay_store(&rp, o, a, r, c, nx, te, 8));
  CHECK_EQ_INT(rp.size, 5);
  CHECK_EQ_INT(rp.head, (2 + 8) % 5);
  float sorted[5];
  for (int h = 0; h < 5; h++) sorted[h] = rp.reward[(rp.head + h) % 5];  // oldest first
  for (int h = 0; h < 5; h++) CHECK(sorted[h] == 13 + h);
  srl_replay_reset(&rp);
  CHECK_EQ_INT(rp.size, 0);
  srl_rng *rng;
  CHECK_OK(srl_rng_create(&rng, 3, 0));
  CHECK_ERR(srl_replay_sample(&rp, rng, NULL, o, a, r, c, nx, r, 2), SRL_ESTATE);
  srl_rng_destroy(rng);
  srl_replay_free(&rp);
  srl_replay_free(&rp);
}


TEST(test_replay_sampling) {
  enum { CAP = 10, B = 2000 };
  srl_replay rp;
  CHECK_OK(srl_replay_init(&rp, CAP, OD, AD));
  float o[CAP * OD], nx[CAP * OD], a[CAP * AD], r[CAP], c[CAP];
  int te[CAP];
  make_transitions(o, nx, a, r, c, te, 0, 7);  // 7 of 10 filled: samples only from [0, 7)
  CHECK_OK(srl_replay_store(&rp, o, a, r, c, nx, te, 7));
  static int idx[B], idx2[B];
  static float so[B * OD], sn[B * OD], sa[B * AD], sr[B], sc[B], sd[B];
  srl_rng *rng, *rng2;
  CHECK_OK(srl_rng_create(&rng, 42, 1));
  CHECK_OK(srl_rng_create(&rng2, 42, 1));
  CHECK_OK(srl_replay_sample(&rp, rng, idx, so, sa, sr, sc, sn, sd, B));
  int count[CAP] = {0};
  for (int j = 0; j < B; j++) {
    int i = idx[j];
    CHECK(i >= 0 && i < 7);
    if (i < 0 || i >= 7) continue;
    count[i]++;
    // rows copied with the index (transition i sits in row i)
    CHECK(sr[j] == i && sc[j] == 2.0f * i && sd[j] == (i % 3 == 0 ? 1.0f : 0.0f));
    CHECK(so[j * OD] == i && sn[j * OD + OD - 1] == i + 0.5f && sa[j * AD + 1] == -i);
  }
  // uniform: each of 7 rows about B/7 ≈ 286 times
  for (int i = 0; i < 7; i++) CHECK(count[i] > 200 && count[i] < 380);
  // the same stream draws the same indices (one srl_rng_int per row, in order)
  for (int j = 0; j < B; j++) idx2[j] = (int)srl_rng_int(rng2, 7);
  CHECK(memcmp(idx, idx2, sizeof idx) == 0);
  srl_rng_destroy(rng);
  srl_rng_destroy(rng2);
  srl_replay_free(&rp);
}


int main(void) {
  RUN(test_gae_matches_direct_sum);
  RUN(test_standardise_and_centre);
  RUN(test_truncation_vs_termination);
  RUN(test_epoch_cut_bootstrap);
  RUN(test_gather_rows);
  RUN(test_rollout_errors);
  RUN(test_constant_advantages);
  RUN(test_no_allocation_in_loop);
  RUN(test_replay_wraparound);
  RUN(test_replay_sampling);
  return TEST_REPORT();
}

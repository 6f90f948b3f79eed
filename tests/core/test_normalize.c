// test_normalize.c: the running normaliser: merged moments equal those of the concatenated data,
// the first batch initialises, floor and clip, apply without update, OmniSafe's update-then-
// normalise sequence replayed in double, checkpoint restore, refusal of bad input, no allocation.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/normalize.h"
#include "core/rng.h"
#include "test.h"

static srl_rng *rng;

// data with per-feature offsets and spreads, including a large offset with a small spread
static void make_data(float *x, int rows, int dim) {
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < dim; j++) {
      double offset = j == 0 ? 1000.0 : j - 2.0, spread = j == 0 ? 0.1 : 0.5 + j;
      x[(size_t)r * dim + j] = (float)(offset + spread * srl_rng_normal(rng));
    }
}

// mean and unbiased variance of column j of x (rows×dim), two passes in double
static void moments(double *mean, double *var, const float *x, int rows, int dim, int j) {
  double s = 0, ss = 0;
  for (int r = 0; r < rows; r++) s += x[(size_t)r * dim + j];
  *mean = s / rows;
  for (int r = 0; r < rows; r++) {
    double d = x[(size_t)r * dim + j] - *mean;
    ss += d * d;
  }
  *var = rows > 1 ? ss / (rows - 1) : 0;
}


TEST(init_and_free) {
  srl_normalizer nm;
  CHECK_OK(srl_normalizer_init(&nm, 5));
  CHECK(nm.mean && nm.var && nm.dim == 5 && nm.count == 0);
  CHECK(nm.std_min == 1e-2f && nm.clip == 5.0f);
  for (int j = 0; j < 5; j++) CHECK(nm.mean[j] == 0 && nm.var[j] == 0);
  srl_normalizer_free(&nm);
  CHECK(nm.mean == NULL);
  srl_normalizer_free(&nm);
  srl_normalizer_free(NULL);
  CHECK_ERR(srl_normalizer_init(&nm, 0), SRL_EINVAL);
  CHECK_ERR(srl_normalizer_init(NULL, 3), SRL_EINVAL);
  float x[3] = {0};
  CHECK_ERR(srl_normalizer_update(&nm, x, 1), SRL_EINVAL);  // not initialised
  CHECK_ERRMSG("not initialised");
}


TEST(merged_moments_equal_concatenated) {
  enum { D = 6 };
  static const int sizes[] = {1, 7, 100, 3, 250, 2, 1000};
  int nb = sizeof sizes / sizeof sizes[0], total = 0;
  for (int b = 0; b < nb; b++) total += sizes[b];
  float *all = malloc((size_t)total * D * sizeof(float));
  make_data(all, total, D);

  srl_normalizer fwd, rev;
  CHECK_OK(srl_normalizer_init(&fwd, D));
  CHECK_OK(srl_normalizer_init(&rev, D));
  int off = 0;
  for (int b = 0; b < nb; b++) {
    CHECK_OK(srl_normalizer_update(&fwd, all + (size_t)off * D, sizes[b]));
    off += sizes[b];
    CHECK(fwd.count == off);
    // after every batch the state is the moments of everything so far
    for (int j = 0; j < D; j++) {
      double m, v;
      moments(&m, &v, all, off, D, j);
      CHECK_CLOSE(fwd.mean[j], m, 1e-5, 1e-6);
      CHECK_CLOSE(fwd.var[j], v, 1e-6, 1e-4);
    }
  }
  // the same batches in reverse order end at the same moments
  for (int b = nb - 1; b >= 0; b--) {
    off -= sizes[b];
    CHECK_OK(srl_normalizer_update(&rev, all + (size_t)off * D, sizes[b]));
  }
  CHECK(rev.count == total);
  for (int j = 0; j < D; j++) {
    CHECK_CLOSE(rev.mean[j], fwd.mean[j], 1e-5, 1e-6);
    CHECK_CLOSE(rev.var[j], fwd.var[j], 1e-6, 1e-4);
  }

  // merging two workers' normalisers equals one over all the data
  srl_normalizer a, b, whole;
  int half = 400;
  CHECK_OK(srl_normalizer_init(&a, D));
  CHECK_OK(srl_normalizer_init(&b, D));
  CHECK_OK(srl_normalizer_init(&whole, D));
  CHECK_OK(srl_normalizer_update(&a, all, half));
  CHECK_OK(srl_normalizer_update(&b, all + (size_t)half * D, total - half));
  CHECK_OK(srl_normalizer_update(&whole, all, total));
  CHECK_OK(srl_normalizer_merge(&a, b.mean, b.var, b.count));
  CHECK(a.count == total);
  for (int j = 0; j < D; j++) {
    CHECK_CLOSE(a.mean[j], whole.mean[j], 1e-5, 1e-6);
    CHECK_CLOSE(a.var[j], whole.var[j], 1e-6, 1e-4);
  }
  // merging into an empty normaliser copies; merging nothing changes nothing
  srl_normalizer e;
  CHECK_OK(srl_normalizer_init(&e, D));
  CHECK_OK(srl_normalizer_merge(&e, whole.mean, whole.var, whole.count));
  CHECK(memcmp(e.mean, whole.mean, D * sizeof(float)) == 0);
  CHECK(memcmp(e.var, whole.var, D * sizeof(float)) == 0);
  CHECK_OK(srl_normalizer_merge(&e, b.mean, b.var, 0));
  CHECK(memcmp(e.mean, whole.mean, D * sizeof(float)) == 0);
  CHECK_ERR(srl_normalizer_merge(&e, b.mean, b.var, -1), SRL_ERANGE);

  free(all);
  srl_normalizer_free(&fwd), srl_normalizer_free(&rev), srl_normalizer_free(&a);
  srl_normalizer_free(&b), srl_normalizer_free(&whole), srl_normalizer_free(&e);
}


TEST(first_batch_initialises) {
  float x[4 * 2] = {1, 10, 2, 20, 3, 30, 6, 40};
  srl_normalizer nm;
  CHECK_OK(srl_normalizer_init(&nm, 2));
  CHECK_OK(srl_normalizer_update(&nm, x, 4));
  CHECK_CLOSE(nm.mean[0], 3.0, 1e-7, 0);
  CHECK_CLOSE(nm.mean[1], 25.0, 1e-6, 0);
  CHECK_CLOSE(nm.var[0], (4 + 1 + 0 + 9) / 3.0, 1e-6, 1e-7);  // unbiased
  CHECK_CLOSE(nm.var[1], (225 + 25 + 25 + 225) / 3.0, 1e-4, 1e-7);
  CHECK(nm.count == 4);
  // an empty batch changes nothing
  CHECK_OK(srl_normalizer_update(&nm, x, 0));
  CHECK(nm.count == 4);
  srl_normalizer_free(&nm);
}


TEST(single_sample_passes_through) {
  // OmniSafe: while at most one sample has been seen, normalize() returns the data as is
  float x[3] = {100, -200, 7}, out[3];
  srl_normalizer nm;
  CHECK_OK(srl_normalizer_init(&nm, 3));
  CHECK_OK(srl_normalizer_apply(&nm, out, x, 1));  // nothing seen yet
  CHECK(memcmp(out, x, sizeof x) == 0);
  CHECK_OK(srl_normalizer_normalize(&nm, out, x, 1));
  CHECK(memcmp(out, x, sizeof x) == 0);
  CHECK(nm.count == 1);
  CHECK(nm.mean[0] == 100 && nm.var[0] == 0);
  // the second sample gives a spread: (x − mean)/std, clipped to ±5
  float y[3] = {102, -200, 7.5f};
  CHECK_OK(srl_normalizer_normalize(&nm, out, y, 1));
  // feature 0: mean 101, var 2, std √2 → 1/√2; feature 1: var 0 → std floor 0.01 → 0
  CHECK_CLOSE(out[0], 1 / sqrt(2.0), 1e-6, 0);
  CHECK(out[1] == 0.0f);
  CHECK_CLOSE(out[2], 0.25 / sqrt(0.125), 1e-6, 0);
  srl_normalizer_free(&nm);
}


TEST(floor_and_clip) {
  enum { R = 50 };
  float x[R * 2], out[R * 2];
  for (int r = 0; r < R; r++) {
    x[r * 2] = 3.0f;                         // a constant feature: var 0
    x[r * 2 + 1] = (float)(r % 2 ? 1 : -1);  // ±1: mean 0, var R/(R−1)
  }
  srl_normalizer nm;
  CHECK_OK(srl_normalizer_init(&nm, 2));
  CHECK_OK(srl_normalizer_update(&nm, x, R));
  CHECK(nm.var[0] == 0.0f);
  CHECK(srl_normalizer_std(&nm, 0) == 1e-2f);
  CHECK_CLOSE(srl_normalizer_std(&nm, 1), sqrt(R / (R - 1.0)), 1e-6, 0);

  // the floor divides by 0.01; the clip caps at ±5
  float probe[3 * 2] = {3.004f, 0.0f, 3.5f, 100.0f, 2.0f, -100.0f}, res[3 * 2];
  CHECK_OK(srl_normalizer_apply(&nm, res, probe, 3));
  CHECK_CLOSE(res[0], 0.4, 1e-4, 0);
  CHECK(res[1] == 0.0f);
  CHECK(res[2] == 5.0f);
  CHECK(res[3] == 5.0f);
  CHECK(res[4] == -5.0f);
  CHECK(res[5] == -5.0f);

  // both are settings
  nm.clip = 50.0f;
  nm.std_min = 0.5f;
  CHECK_OK(srl_normalizer_apply(&nm, res, probe, 3));
  CHECK_CLOSE(res[0], 0.008, 1e-6, 0);
  CHECK_CLOSE(res[2], 1.0, 1e-6, 0);
  CHECK(res[3] == 50.0f);
  CHECK_CLOSE(res[4], -2.0, 1e-6, 0);
  nm.clip = 0.0f;  // no clip at all
  CHECK_OK(srl_normalizer_apply(&nm, res, probe, 3));
  CHECK_CLOSE(res[3], 100.0 / sqrt(R / (R - 1.0)), 1e-3, 1e-6);
  (void)out;
  srl_normalizer_free(&nm);
}


TEST(apply_does_not_update) {
  enum { D = 4, R = 30 };
  float x[R * D], y[R * D], out[R * D];
  make_data(x, R, D);
  make_data(y, R, D);
  srl_normalizer nm;
  CHECK_OK(srl_normalizer_init(&nm, D));
  CHECK_OK(srl_normalizer_update(&nm, x, R));
  float mean0[D], var0[D];
  memcpy(mean0, nm.mean, sizeof mean0);
  memcpy(var0, nm.var, sizeof var0);
  double count0 = nm.count;

  CHECK_OK(srl_normalizer_apply(&nm, out, y, R));
  CHECK(memcmp(mean0, nm.mean, sizeof mean0) == 0);
  CHECK(memcmp(var0, nm.var, sizeof var0) == 0);
  CHECK(nm.count == count0);
  for (int r = 0; r < R; r++)
    for (int j = 0; j < D; j++) {
      double m, v;
      moments(&m, &v, x, R, D, j);
      double z = (y[r * D + j] - m) / fmax(sqrt(v), 0.01);
      z = fmin(fmax(z, -5), 5);
      CHECK_CLOSE(out[r * D + j], z, 1e-3, 1e-4);
    }
  // in place gives the same
  float inplace[R * D];
  memcpy(inplace, y, sizeof y);
  CHECK_OK(srl_normalizer_apply(&nm, inplace, inplace, R));
  CHECK(memcmp(inplace, out, sizeof out) == 0);

  // normalize = update, then apply with the new statistics
  srl_normalizer twin;
  CHECK_OK(srl_normalizer_init(&twin, D));
  CHECK_OK(srl_normalizer_set(&twin, nm.mean, nm.var, nm.count));
  float out2[R * D];
  CHECK_OK(srl_normalizer_normalize(&nm, out, y, R));
  CHECK_OK(srl_normalizer_update(&twin, y, R));
  CHECK_OK(srl_normalizer_apply(&twin, out2, y, R));
  CHECK(memcmp(out, out2, sizeof out) == 0);
  CHECK(nm.count == 2 * R);
  srl_normalizer_free(&nm);
  srl_normalizer_free(&twin);
}


TEST(omnisafe_sequence_in_double) {
  // OmniSafe's Normalizer: _push merges the batch into (mean, sumsq, count), then
  // std = max(√(sumsq/(count−1)), 1e-2), output clamp((x − mean)/std, ±5), raw while count ≤ 1.
  // Replayed in double over 300 single-row pushes of a drifting signal.
  enum { D = 3, STEPS = 300 };
  double mean[D] = {0}, sumsq[D] = {0}, count = 0;
  srl_normalizer nm;
  CHECK_OK(srl_normalizer_init(&nm, D));
  int bad = 0;
  for (int t = 0; t < STEPS; t++) {
    float x[D], out[D];
    x[0] = (float)(0.01 * t + srl_rng_normal(rng));                   // drifting
    x[1] = t < 10 ? 2.0f : (float)(2 + 0.001 * srl_rng_normal(rng));  // nearly constant
    x[2] = (float)(t % 50 == 49 ? 40.0 : srl_rng_normal(rng));        // rare outliers hit the clip
    // the reference push, batch of one
    for (int j = 0; j < D; j++) {
      if (count == 0) {
        mean[j] = x[j];
        sumsq[j] = 0;
      } else {
        double n = count + 1, delta = x[j] - mean[j];
        mean[j] += delta / n;
        sumsq[j] += delta * delta * count / n;
      }
    }
    count += 1;
    CHECK_OK(srl_normalizer_normalize(&nm, out, x, 1));
    for (int j = 0; j < D; j++) {
      double want = x[j];
      if (count > 1) {
        double sd = fmax(sqrt(sumsq[j] / (count - 1)), 1e-2);
        want = fmin(fmax((x[j] - mean[j]) / sd, -5), 5);
      }
      if (fabs(out[j] - want) > 2e-3 + 1e-3 * fabs(want)) {
        if (bad++ < 5)
          fprintf(stderr, "    step %d feature %d: %.7g vs %.7g\n", t, j, out[j], want);
      }
    }
  }
  CHECK_EQ_INT(bad, 0);
  CHECK(nm.count == STEPS);
  srl_normalizer_free(&nm);
}


TEST(save_restore_and_reset) {
  enum { D = 3, R = 40 };
  float x[R * D], a[R * D], b[R * D];
  make_data(x, R, D);
  srl_normalizer nm, restored;
  CHECK_OK(srl_normalizer_init(&nm, D));
  CHECK_OK(srl_normalizer_init(&restored, D));
  CHECK_OK(srl_normalizer_update(&nm, x, R));
  // the public arrays are the whole state: what a checkpoint stores
  float saved_mean[D], saved_var[D];
  memcpy(saved_mean, nm.mean, sizeof saved_mean);
  memcpy(saved_var, nm.var, sizeof saved_var);
  CHECK_OK(srl_normalizer_set(&restored, saved_mean, saved_var, nm.count));
  CHECK_OK(srl_normalizer_normalize(&nm, a, x, R));
  CHECK_OK(srl_normalizer_normalize(&restored, b, x, R));
  CHECK(memcmp(a, b, sizeof a) == 0);
  CHECK(memcmp(nm.var, restored.var, sizeof saved_var) == 0);

  // bad saved state is refused and changes nothing
  float neg[D] = {1, -1, 1}, nan_mean[D] = {0, NAN, 0};
  CHECK_ERR(srl_normalizer_set(&restored, saved_mean, neg, 10), SRL_ERANGE);
  CHECK_ERR(srl_normalizer_set(&restored, nan_mean, saved_var, 10), SRL_ERANGE);
  CHECK_ERR(srl_normalizer_set(&restored, saved_mean, saved_var, -3), SRL_ERANGE);
  CHECK_ERR(srl_normalizer_set(&restored, saved_mean, saved_var, NAN), SRL_ERANGE);
  CHECK(memcmp(nm.mean, restored.mean, sizeof saved_mean) == 0);
  CHECK(restored.count == 2 * R);

  srl_normalizer_reset(&restored);
  CHECK(restored.count == 0 && restored.mean[1] == 0 && restored.var[2] == 0);
  CHECK(restored.dim == D && restored.clip == 5.0f);
  srl_normalizer_free(&nm);
  srl_normalizer_free(&restored);
}


TEST(non_finite_batch_refused) {
  float x[2 * 2] = {1, 2, 3, 4}, bad[2 * 2] = {1, 2, INFINITY, 4}, out[4];
  srl_normalizer nm;
  CHECK_OK(srl_normalizer_init(&nm, 2));
  CHECK_OK(srl_normalizer_update(&nm, x, 2));
  float m0 = nm.mean[0], v0 = nm.var[0];
  CHECK_ERR(srl_normalizer_update(&nm, bad, 2), SRL_ENONFINITE);
  CHECK_ERRMSG("row 1, feature 0");
  bad[2] = NAN;
  CHECK_ERR(srl_normalizer_normalize(&nm, out, bad, 2), SRL_ENONFINITE);
  CHECK(nm.mean[0] == m0 && nm.var[0] == v0 && nm.count == 2);
  CHECK_ERR(srl_normalizer_update(&nm, NULL, 2), SRL_EINVAL);
  CHECK_ERR(srl_normalizer_apply(&nm, out, x, -1), SRL_EINVAL);
  srl_normalizer_free(&nm);
}


static int allocs;
static void *counting_malloc(size_t bytes, size_t align) {
  allocs++;
  void *p = NULL;
  return posix_memalign(&p, align, bytes ? bytes : align) == 0 ? p : NULL;
}


TEST(no_allocation_after_init) {
  enum { D = 8, R = 64 };
  float x[R * D], out[R * D];
  make_data(x, R, D);
  srl_normalizer nm, other;
  CHECK_OK(srl_normalizer_init(&nm, D));
  CHECK_OK(srl_normalizer_init(&other, D));
  CHECK_OK(srl_normalizer_update(&other, x, R));
  srl_set_allocator(counting_malloc, NULL);
  allocs = 0;
  for (int i = 0; i < 10; i++) {
    CHECK_OK(srl_normalizer_update(&nm, x, R));
    CHECK_OK(srl_normalizer_apply(&nm, out, x, R));
    CHECK_OK(srl_normalizer_normalize(&nm, out, x, R));
    CHECK_OK(srl_normalizer_merge(&nm, other.mean, other.var, other.count));
  }
  srl_set_allocator(NULL, NULL);
  CHECK_EQ_INT(allocs, 0);
  srl_normalizer_free(&nm);
  srl_normalizer_free(&other);
}


int main(void) {
  if (srl_rng_create(&rng, 31337, 0) != 0) return 1;
  RUN(init_and_free);
  RUN(merged_moments_equal_concatenated);
  RUN(first_batch_initialises);
  RUN(single_sample_passes_through);
  RUN(floor_and_clip);
  RUN(apply_does_not_update);
  RUN(omnisafe_sequence_in_double);
  RUN(save_restore_and_reset);
  RUN(non_finite_batch_refused);
  RUN(no_allocation_after_init);
  srl_rng_destroy(rng);
  return TEST_REPORT();
}

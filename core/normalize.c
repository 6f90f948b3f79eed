// normalize.c: running mean / std normaliser: batch-moment merge, floor, clip.
#include "core/normalize.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"


//---- lifetime ---------------------------------------------------------------------------------

int srl_normalizer_init(srl_normalizer *nm, int dim) {
  if (!nm) return srl_error(SRL_EINVAL, "normalizer: NULL");
  memset(nm, 0, sizeof *nm);
  if (dim < 1) return srl_error(SRL_EINVAL, "normalizer: dim %d (need ≥ 1)", dim);
  size_t total = 0;
  size_t off_mean = srl_layout_add(&total, (size_t)dim * sizeof(float));
  size_t off_var = srl_layout_add(&total, (size_t)dim * sizeof(float));
  char *block = srl_calloc(total);
  if (!block) return srl_error_context(SRL_ENOMEM, "normalizer of %d features: ", dim);
  nm->mean = (float *)(block + off_mean);
  nm->var = (float *)(block + off_var);
  nm->dim = dim;
  nm->count = 0;
  nm->std_min = SRL_NORM_STD_MIN;
  nm->clip = SRL_NORM_CLIP;
  return SRL_OK;
}


void srl_normalizer_free(srl_normalizer *nm) {
  if (!nm) return;
  srl_free(nm->mean);  // the block starts at mean
  memset(nm, 0, sizeof *nm);
}


void srl_normalizer_reset(srl_normalizer *nm) {
  if (!nm || !nm->mean) return;
  memset(nm->mean, 0, (size_t)nm->dim * sizeof(float));
  memset(nm->var, 0, (size_t)nm->dim * sizeof(float));
  nm->count = 0;
}


static int check(const srl_normalizer *nm, const void *a, const void *b, int rows,
                 const char *what) {
  if (!nm || !nm->mean || nm->dim < 1)
    return srl_error(SRL_EINVAL, "%s: normalizer not initialised", what);
  if (!a || !b) return srl_error(SRL_EINVAL, "%s: NULL array", what);
  if (rows < 0) return srl_error(SRL_EINVAL, "%s: %d rows", what, rows);
  return SRL_OK;
}


//---- merging moments --------------------------------------------------------------------------

// merge (mean_b, m2_b, nb) into feature j (Chan et al.); na is the count before this merge
static void merge_one(srl_normalizer *nm, int j, double na, double mean_b, double m2_b, double nb) {
  double n = na + nb;
  double mean_a = nm->mean[j], m2_a = na > 1 ? (double)nm->var[j] * (na - 1) : 0.0;
  double mean, m2;
  if (na == 0) {  // the first batch initialises the moments
    mean = mean_b;
    m2 = m2_b;
  } else {
    double delta = mean_b - mean_a;
    mean = mean_a + delta * nb / n;
    m2 = m2_a + m2_b + delta * delta * na * nb / n;
  }
  nm->mean[j] = (float)mean;
  nm->var[j] = n > 1 ? (float)(m2 / (n - 1)) : 0.0f;
}


int srl_normalizer_update(srl_normalizer *nm, const float *x, int rows) {
  SRL_TRY(check(nm, x, x, rows, "normalizer_update"));
  if (rows == 0) return SRL_OK;
  int dim = nm->dim;
  size_t n = (size_t)rows * dim;
  // refuse the whole batch before touching anything
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i]))
      return srl_error(SRL_ENONFINITE,
                       "normalizer_update: non-finite value at row %zu, feature %zu", i / dim,
                       i % dim);
  // per feature: batch mean and M2 in two passes, then merge
  for (int j = 0; j < dim; j++) {
    double s = 0, m2 = 0;
    for (int r = 0; r < rows; r++) s += x[(size_t)r * dim + j];
    double mean_b = s / rows;
    for (int r = 0; r < rows; r++) {
      double d = x[(size_t)r * dim + j] - mean_b;
      m2 += d * d;
    }
    merge_one(nm, j, nm->count, mean_b, m2, rows);
  }
  nm->count += rows;
  return SRL_OK;
}


int srl_normalizer_merge(srl_normalizer *nm, const float *mean, const float *var, double count) {
  SRL_TRY(check(nm, mean, var, 0, "normalizer_merge"));
  if (!(count >= 0) || !isfinite(count))
    return srl_error(SRL_ERANGE, "normalizer_merge: count %g", count);
  if (count == 0) return SRL_OK;
  for (int j = 0; j < nm->dim; j++)
    if (!isfinite(mean[j]) || !isfinite(var[j]) || var[j] < 0)
      return srl_error(SRL_ERANGE, "normalizer_merge: feature %d has mean %g, var %g", j,
                       (double)mean[j], (double)var[j]);
  for (int j = 0; j < nm->dim; j++)
    merge_one(nm, j, nm->count, mean[j], count > 1 ? (double)var[j] * (count - 1) : 0.0, count);
  nm->count += count;
  return SRL_OK;
}


int srl_normalizer_set(srl_normalizer *nm, const float *mean, const float *var, double count) {
  SRL_TRY(check(nm, mean, var, 0, "normalizer_set"));
  if (!(count >= 0) || !isfinite(count))
    return srl_error(SRL_ERANGE, "normalizer_set: count %g", count);
  for (int j = 0; j < nm->dim; j++)
    if (!isfinite(mean[j]) || !isfinite(var[j]) || var[j] < 0)
      return srl_error(SRL_ERANGE, "normalizer_set: feature %d has mean %g, var %g", j,
                       (double)mean[j], (double)var[j]);
  memmove(nm->mean, mean, (size_t)nm->dim * sizeof(float));
  memmove(nm->var, var, (size_t)nm->dim * sizeof(float));
  nm->count = count;
  return SRL_OK;
}


//---- normalising ------------------------------------------------------------------------------

float srl_normalizer_std(const srl_normalizer *nm, int j) {
  float sd = sqrtf(nm->var[j]);
  return sd > nm->std_min ? sd : nm->std_min;
}


int srl_normalizer_apply(const srl_normalizer *nm, float *out, const float *x, int rows) {
  SRL_TRY(check(nm, out, x, rows, "normalizer_apply"));
  int dim = nm->dim;
  size_t n = (size_t)rows * dim;
  // at most one sample seen: no spread yet, pass the data through as OmniSafe
  if (nm->count <= 1) {
    if (out != x && n) memmove(out, x, n * sizeof *out);
    return SRL_OK;
  }
  float clip = nm->clip;
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (size_t)r * dim;
    float *o = out + (size_t)r * dim;
    for (int j = 0; j < dim; j++) {
      float z = (xr[j] - nm->mean[j]) / srl_normalizer_std(nm, j);
      if (clip > 0) z = z > clip ? clip : (z < -clip ? -clip : z);
      o[j] = z;
    }
  }
  return SRL_OK;
}


int srl_normalizer_normalize(srl_normalizer *nm, float *out, const float *x, int rows) {
  SRL_TRY(srl_normalizer_update(nm, x, rows));
  return srl_normalizer_apply(nm, out, x, rows);
}

// normalize.h: running mean / std normaliser for observations (or rewards and costs), as
// OmniSafe's Normalizer.
//
// Batches are merged into the running moments with Chan, Golub and LeVeque's parallel formula
// (n = na + nb, δ = mb − ma, mean = ma + δ·nb/n, M2 = M2a + M2b + δ²·na·nb/n), so merging batch
// after batch gives the moments of all the data at once; the first batch initialises them. The
// variance is the unbiased one, M2/(count − 1), the std is floored at std_min (1e-2) and outputs
// are clipped to ±clip (5). OmniSafe's normalize() updates and then normalises, and returns the
// data unchanged while at most one sample has been seen; srl_normalizer_normalize does the same.
//
// The state is public so a checkpoint can store and restore it (`obs_norm.mean`, `obs_norm.var`,
// `obs_norm.count`); nothing here allocates after srl_normalizer_init.
#ifndef SRL_NORMALIZE_H
#define SRL_NORMALIZE_H

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_NORM_STD_MIN 1e-2f  // OmniSafe's std floor
#define SRL_NORM_CLIP 5.0f      // OmniSafe's observation clip

typedef struct srl_normalizer {
  float *mean;    // (dim) running mean
  float *var;     // (dim) running unbiased variance, M2/(count − 1); 0 while count ≤ 1
  double count;   // samples merged so far; 0 before the first batch
  int dim;        // features per sample
  float std_min;  // std floor, SRL_NORM_STD_MIN by default
  float clip;     // outputs clipped to ±clip, SRL_NORM_CLIP by default; ≤ 0 disables the clip
} srl_normalizer;

// Allocate mean and var in one block, zero statistics, default floor and clip. Returns 0,
// SRL_EINVAL (dim < 1) or SRL_ENOMEM. srl_normalizer_free releases; freeing twice is harmless.
int srl_normalizer_init(srl_normalizer *nm, int dim);
void srl_normalizer_free(srl_normalizer *nm);

// Forget the statistics (count 0), keeping dim, floor and clip.
void srl_normalizer_reset(srl_normalizer *nm);

// Merge a batch x (rows×dim) into the running moments. A batch holding a NaN or infinity is
// refused with SRL_ENONFINITE and leaves the state untouched.
int srl_normalizer_update(srl_normalizer *nm, const float *x, int rows);

// Merge moments computed elsewhere (another worker's normaliser): mean, unbiased var (dim each)
// over count samples.
int srl_normalizer_merge(srl_normalizer *nm, const float *mean, const float *var, double count);

// Restore saved state (from a checkpoint): copies mean and var, sets count. Refuses negative or
// non-finite values with SRL_ERANGE and leaves the state untouched.
int srl_normalizer_set(srl_normalizer *nm, const float *mean, const float *var, double count);

// out (rows×dim) = clip((x − mean)/max(√var, std_min)) with the current statistics, no update;
// a copy while count ≤ 1. out may alias x.
int srl_normalizer_apply(const srl_normalizer *nm, float *out, const float *x, int rows);

// Update with x, then apply (OmniSafe's normalize()). out may alias x.
int srl_normalizer_normalize(srl_normalizer *nm, float *out, const float *x, int rows);

// The std actually divided by for feature j: max(√var_j, std_min).
float srl_normalizer_std(const srl_normalizer *nm, int j);

#ifdef __cplusplus
}
#endif
#endif  // SRL_NORMALIZE_H

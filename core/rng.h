// rng.h: seeded random streams, one per env or thread, on GSL's mt19937.
//
// A stream is derived from (seed, stream index) so env i of a vector env, or worker t, gets the
// same numbers whatever the thread count. State is explicit and can be saved into a checkpoint.
// srl_hash_uniform is a stateless counter-based generator usable from host and CUDA code alike,
// so dropout masks are bitwise the same on both devices.
#ifndef SRL_RNG_H
#define SRL_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#define SRL_HD __host__ __device__
#else
#define SRL_HD
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct srl_rng srl_rng;

// Create a stream for (seed, stream); returns 0 or SRL_ENOMEM.
int srl_rng_create(srl_rng **out, uint64_t seed, uint64_t stream);
void srl_rng_destroy(srl_rng *r);

// Re-seed an existing stream in place (no allocation).
void srl_rng_seed(srl_rng *r, uint64_t seed, uint64_t stream);

uint32_t srl_rng_u32(srl_rng *r);
double srl_rng_uniform(srl_rng *r);                              // [0, 1)
double srl_rng_uniform_range(srl_rng *r, double lo, double hi);  // [lo, hi)
double srl_rng_normal(srl_rng *r);                               // N(0, 1)
unsigned long srl_rng_int(srl_rng *r, unsigned long n);          // uniform on {0, ..., n-1}, n > 0
void srl_rng_fill_normal(srl_rng *r, float *x, size_t n, float mean, float std);
void srl_rng_fill_uniform(srl_rng *r, float *x, size_t n, float lo, float hi);

// Shuffle idx[0..n) in place (Fisher-Yates).
void srl_rng_shuffle(srl_rng *r, int *idx, size_t n);

// Raw generator state, to store in and restore from checkpoints.
size_t srl_rng_state_size(const srl_rng *r);
void srl_rng_state_save(const srl_rng *r, void *buf);
int srl_rng_state_load(srl_rng *r, const void *buf, size_t size);

// splitmix64 finaliser: a well-mixed 64-bit hash.
static inline SRL_HD uint64_t srl_hash64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform float in [0, 1) from (seed, counter), identical on host and device.
static inline SRL_HD float srl_hash_uniform(uint64_t seed, uint64_t counter) {
  uint64_t h = srl_hash64(seed ^ srl_hash64(counter));
  return (float)(h >> 40) * (1.0f / 16777216.0f);  // top 24 bits
}

#ifdef __cplusplus
}
#endif
#endif  // SRL_RNG_H

// rng.c: GSL mt19937 streams seeded from (seed, stream).
#include "core/rng.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

struct srl_rng {
  gsl_rng *g;
};


// mt19937 takes an unsigned long seed; mix (seed, stream) so neighbouring streams differ fully
static unsigned long derive_seed(uint64_t seed, uint64_t stream) {
  uint64_t s = srl_hash64(seed ^ srl_hash64(stream + 0x632be59bd9b4e019ull));
  return (unsigned long)(s ? s : 1);
}


int srl_rng_create(srl_rng **out, uint64_t seed, uint64_t stream) {
  *out = NULL;
  srl_rng *r = srl_malloc(sizeof *r);
  if (!r) return SRL_ENOMEM;
  r->g = gsl_rng_alloc(gsl_rng_mt19937);
  if (!r->g) {
    srl_free(r);
    return srl_error(SRL_ENOMEM, "cannot allocate a random stream");
  }
  srl_rng_seed(r, seed, stream);
  *out = r;
  return SRL_OK;
}


void srl_rng_destroy(srl_rng *r) {
  if (!r) return;
  gsl_rng_free(r->g);
  srl_free(r);
}


void srl_rng_seed(srl_rng *r, uint64_t seed, uint64_t stream) {
  gsl_rng_set(r->g, derive_seed(seed, stream));
}


uint32_t srl_rng_u32(srl_rng *r) {
  return (uint32_t)gsl_rng_get(r->g);
}
double srl_rng_uniform(srl_rng *r) {
  return gsl_rng_uniform(r->g);
}
double srl_rng_normal(srl_rng *r) {
  return gsl_ran_gaussian_ziggurat(r->g, 1.0);
}
unsigned long srl_rng_int(srl_rng *r, unsigned long n) {
  return gsl_rng_uniform_int(r->g, n);
}


double srl_rng_uniform_range(srl_rng *r, double lo, double hi) {
  return lo + (hi - lo) * gsl_rng_uniform(r->g);
}


void srl_rng_fill_normal(srl_rng *r, float *x, size_t n, float mean, float std) {
  for (size_t i = 0; i < n; i++) x[i] = mean + std * (float)gsl_ran_gaussian_ziggurat(r->g, 1.0);
}


void srl_rng_fill_uniform(srl_rng *r, float *x, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)gsl_rng_uniform(r->g);
}


void srl_rng_shuffle(srl_rng *r, int *idx, size_t n) {
  for (size_t i = n; i > 1; i--) {
    size_t j = gsl_rng_uniform_int(r->g, i);
    int t = idx[i - 1];
    idx[i - 1] = idx[j];
    idx[j] = t;
  }
}


size_t srl_rng_state_size(const srl_rng *r) {
  return gsl_rng_size(r->g);
}


void srl_rng_state_save(const srl_rng *r, void *buf) {
  memcpy(buf, gsl_rng_state(r->g), gsl_rng_size(r->g));
}


int srl_rng_state_load(srl_rng *r, const void *buf, size_t size) {
  if (size != gsl_rng_size(r->g))
    return srl_error(SRL_EFORMAT, "random stream state has %zu bytes, expected %zu", size,
                     gsl_rng_size(r->g));
  memcpy(gsl_rng_state(r->g), buf, size);
  return SRL_OK;
}

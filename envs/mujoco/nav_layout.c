// nav_layout.c: the MuJoCo-free parts of the safe navigation tasks: NumPy's legacy Mersenne
// Twister stream (so a seed gives Safety-Gymnasium's layout), rejection sampling of object
// positions with keep-outs, and the pseudo-lidar.
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "envs/mujoco/nav.h"

//---- NumPy-compatible Mersenne Twister -----------------------------------------------------------

#define MT_M 397
#define MT_UPPER 0x80000000u
#define MT_LOWER 0x7fffffffu

// init_genrand: the linear recurrence numpy's mt19937_seed uses
static void mt_init(srl_nav_mt *mt, uint32_t s) {
  mt->key[0] = s;
  for (int i = 1; i < SRL_NAV_MT_N; i++)
    mt->key[i] = 1812433253u * (mt->key[i - 1] ^ (mt->key[i - 1] >> 30)) + (uint32_t)i;
  mt->pos = SRL_NAV_MT_N;
}

// init_by_array: mixes a key of 32-bit words into the state
static void mt_init_array(srl_nav_mt *mt, const uint32_t *key, int len) {
  mt_init(mt, 19650218u);
  uint32_t *k = mt->key;
  int i = 1, j = 0;
  for (int c = SRL_NAV_MT_N > len ? SRL_NAV_MT_N : len; c; c--) {
    k[i] = (k[i] ^ ((k[i - 1] ^ (k[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
    i++, j++;
    if (i >= SRL_NAV_MT_N) k[0] = k[SRL_NAV_MT_N - 1], i = 1;
    if (j >= len) j = 0;
  }
  for (int c = SRL_NAV_MT_N - 1; c; c--) {
    k[i] = (k[i] ^ ((k[i - 1] ^ (k[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
    i++;
    if (i >= SRL_NAV_MT_N) k[0] = k[SRL_NAV_MT_N - 1], i = 1;
  }
  k[0] = 0x80000000u;  // a non-zero initial state
  mt->pos = SRL_NAV_MT_N;
}

void srl__nav_mt_seed(srl_nav_mt *mt, uint64_t seed) {
  if (seed <= 0xffffffffu) {
    mt_init(mt, (uint32_t)seed);
  } else {
    uint32_t words[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    mt_init_array(mt, words, 2);
  }
}

// regenerate the 624 words of state
static void mt_generate(srl_nav_mt *mt) {
  uint32_t *k = mt->key;
  int i = 0;
  for (; i < SRL_NAV_MT_N - MT_M; i++) {
    uint32_t y = (k[i] & MT_UPPER) | (k[i + 1] & MT_LOWER);
    k[i] = k[i + MT_M] ^ (y >> 1) ^ (-(y & 1u) & 0x9908b0dfu);
  }
  for (; i < SRL_NAV_MT_N - 1; i++) {
    uint32_t y = (k[i] & MT_UPPER) | (k[i + 1] & MT_LOWER);
    k[i] = k[i + (MT_M - SRL_NAV_MT_N)] ^ (y >> 1) ^ (-(y & 1u) & 0x9908b0dfu);
  }
  uint32_t y = (k[SRL_NAV_MT_N - 1] & MT_UPPER) | (k[0] & MT_LOWER);
  k[SRL_NAV_MT_N - 1] = k[MT_M - 1] ^ (y >> 1) ^ (-(y & 1u) & 0x9908b0dfu);
  mt->pos = 0;
}

uint32_t srl__nav_mt_u32(srl_nav_mt *mt) {
  if (mt->pos >= SRL_NAV_MT_N) mt_generate(mt);
  uint32_t y = mt->key[mt->pos++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

double srl__nav_mt_double(srl_nav_mt *mt) {
  uint32_t a = srl__nav_mt_u32(mt) >> 5, b = srl__nav_mt_u32(mt) >> 6;
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

double srl__nav_mt_uniform(srl_nav_mt *mt, double lo, double hi) {
  // the product is rounded on its own (no fused multiply-add), as NumPy computes it
  volatile double scaled = (hi - lo) * srl__nav_mt_double(mt);
  return lo + scaled;
}

uint32_t srl__nav_mt_below(srl_nav_mt *mt, uint32_t n) {
  if (n <= 1) return 0;
  uint32_t rng = n - 1, mask = rng;
  mask |= mask >> 1, mask |= mask >> 2, mask |= mask >> 4, mask |= mask >> 8, mask |= mask >> 16;
  uint32_t v;
  while ((v = srl__nav_mt_u32(mt) & mask) > rng) {
  }
  return v;
}

//---- layouts ------------------------------------------------------------------------------------

// one position for object i: uniform in its rectangle (or the extents) shrunk by its keep-out,
// x drawn before y as random_generator.draw_placement does
static void draw_placement(const srl_nav_layout *l, int i, srl_nav_mt *mt, double xy[2]) {
  const srl_nav_place *p = &l->place[i];
  const double *r = p->has_rect ? p->rect : l->extents;
  double k = p->keepout;
  xy[0] = srl__nav_mt_uniform(mt, r[0] + k, r[2] - k);
  xy[1] = srl__nav_mt_uniform(mt, r[1] + k, r[3] - k);
}

int srl__nav_layout_fits(const srl_nav_layout *l, int n_placed, int skip, const double xy[2],
                         double keepout) {
  for (int j = 0; j < n_placed; j++) {
    if (j == skip) continue;
    double dx = xy[0] - l->xy[j][0], dy = xy[1] - l->xy[j][1];
    if (sqrt(dx * dx + dy * dy) < l->place[j].keepout + l->margin + keepout) return 0;
  }
  return 1;
}

// one attempt at a whole layout; 0 when some object found no place in 100 draws
static int sample_once(srl_nav_layout *l, srl_nav_mt *mt) {
  for (int i = 0; i < l->n; i++) {
    int placed = 0;
    for (int t = 0; t < 100 && !placed; t++) {
      double xy[2];
      draw_placement(l, i, mt, xy);
      if (srl__nav_layout_fits(l, i, -1, xy, l->place[i].keepout)) {
        l->xy[i][0] = xy[0], l->xy[i][1] = xy[1];
        placed = 1;
      }
    }
    if (!placed) return 0;
  }
  return 1;
}

int srl__nav_layout_sample(srl_nav_layout *l, srl_nav_mt *mt) {
  if (l->n < 1 || l->n > SRL_NAV_MAX_ITEMS)
    return srl_error(SRL_EINVAL, "layout: %d objects (1..%d)", l->n, SRL_NAV_MAX_ITEMS);
  for (int attempt = 0; attempt < 10000; attempt++)
    if (sample_once(l, mt)) return SRL_OK;
  return srl_error(SRL_ESTATE,
                   "layout: no placement of the %d objects keeps their keep-outs "
                   "after 10000 attempts",
                   l->n);
}

int srl__nav_layout_resample(srl_nav_layout *l, int i, srl_nav_mt *mt) {
  if (i < 0 || i >= l->n) return srl_error(SRL_EINVAL, "layout: no object %d", i);
  for (int attempt = 0; attempt < 10000; attempt++) {
    double xy[2];
    draw_placement(l, i, mt, xy);
    if (srl__nav_layout_fits(l, l->n, i, xy, l->place[i].keepout)) {
      l->xy[i][0] = xy[0], l->xy[i][1] = xy[1];
      return SRL_OK;
    }
  }
  return srl_error(SRL_ESTATE, "layout: object %d found no place after 10000 draws", i);
}

//---- pseudo-lidar ------------------------------------------------------------------------------

void srl__nav_lidar(double *bins, int nbins, double max_dist, int alias, const double pos[3],
                    const double mat[9], const double *xy, int stride, int n) {
  const double two_pi = M_PI * 2, bin_size = two_pi / nbins;
  for (int o = 0; o < n; o++) {
    // egocentric xy: (object at z = 0) − robot, in the robot's frame
    double w0 = xy[o * stride] - pos[0], w1 = xy[o * stride + 1] - pos[1], w2 = -pos[2];
    double ex = w0 * mat[0] + w1 * mat[3] + w2 * mat[6];
    double ey = w0 * mat[1] + w1 * mat[4] + w2 * mat[7];
    double dist = hypot(ex, ey);
    // angle in [0, 2π) as Python's % leaves it
    double angle = fmod(atan2(ey, ex), two_pi);
    if (angle < 0) angle += two_pi;
    if (angle == 0) angle = 0;  // -0 to +0
    int bin = (int)(angle / bin_size);
    if (bin >= nbins) bin = nbins - 1;  // an angle a rounding below 2π
    double sensor = (max_dist - dist > 0 ? max_dist - dist : 0) / max_dist;
    if (sensor > bins[bin]) bins[bin] = sensor;
    if (alias) {
      double a = (angle - bin_size * bin) / bin_size;
      a = a < 0 ? 0 : a > 1 ? 1 : a;
      int plus = (bin + 1) % nbins, minus = (bin - 1 + nbins) % nbins;
      if (a * sensor > bins[plus]) bins[plus] = a * sensor;
      if ((1 - a) * sensor > bins[minus]) bins[minus] = (1 - a) * sensor;
    }
  }
}

// road.c: multi-lane roads for the driving task: a reference line (the road's centre) made of
// straight and constant-curvature segments joined with continuous heading, parametrised by arc
// length s, with lanes parallel to it.
//
// A segment starting at pose (x0, y0, h0) with curvature k reaches, after arc length t,
//   heading h0 + k·t, position (x0, y0) + t·sinc(k·t/2)·(cos(h0 + k·t/2), sin(h0 + k·t/2)),
// the chord form of the circle, exact for every k (k = 0 is the straight line). A road point
// (s, d) lies d metres to the left of the reference point at s. Beyond both ends the road
// continues as straight lines along the end headings, so every query has an answer; the drivable
// road is 0 <= s <= length, |d| <= half width. Each lane's centre has its own arc length sigma:
// on a segment of curvature k a lane at offset c advances by (1 - k·c) per metre of s.
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "envs/driving/driving.h"

// a lateral distance past the road edge up to which a projection near the hint is trusted
#define LOCAL_TRUST 10.0


// a folded into (-pi, pi]
static double wrap_pi(double a) {
  a = remainder(a, 2.0 * M_PI);
  return a <= -M_PI ? a + 2.0 * M_PI : a;
}


// sin(u)/u, with its series near 0
static inline double sinc(double u) {
  return fabs(u) < 1e-4 ? 1.0 - u * u / 6.0 : sin(u) / u;
}


// the reference pose at arc length t into segment g (t may leave [0, length]: the circle or
// line continues)
static void seg_eval(const srl_road_segment *g, double t, double *x, double *y, double *h) {
  if (g->curvature == 0.0) {
    *x = g->x0 + t * cos(g->h0);
    *y = g->y0 + t * sin(g->h0);
    *h = g->h0;
    return;
  }
  double half = 0.5 * g->curvature * t, chord = t * sinc(half), a = g->h0 + half;
  *x = g->x0 + chord * cos(a);
  *y = g->y0 + chord * sin(a);
  *h = g->h0 + 2.0 * half;
}


int srl_road_init(srl_road *r, int lanes, double lane_width, double x0, double y0, double h0) {
  if (!r) return srl_error(SRL_EINVAL, "srl_road_init: road must not be NULL");
  if (lanes < 1 || lanes > SRL_ROAD_MAX_LANES)
    return srl_error(SRL_EINVAL, "road: %d lanes is outside [1, %d]", lanes, SRL_ROAD_MAX_LANES);
  if (!(lane_width > 0.0) || !isfinite(lane_width) || !isfinite(x0) || !isfinite(y0) ||
      !isfinite(h0))
    return srl_error(SRL_EINVAL,
                     "road: lane width %g and start pose (%g, %g, %g) must be finite, "
                     "the width positive",
                     lane_width, x0, y0, h0);
  r->n_seg = 0;
  r->lanes = lanes;
  r->lane_width = lane_width;
  r->length = 0.0;
  r->x_end = x0, r->y_end = y0, r->h_end = wrap_pi(h0);
  for (int l = 0; l < SRL_ROAD_MAX_LANES; l++) r->lane_s0[l][0] = 0.0;
  return SRL_OK;
}


double srl_road_half_width(const srl_road *r) {
  return 0.5 * r->lanes * r->lane_width;
}


double srl_road_lane_center(const srl_road *r, int lane) {
  return (lane + 0.5) * r->lane_width - srl_road_half_width(r);
}


int srl_road_lane_at(const srl_road *r, double d) {
  double f = floor((d + srl_road_half_width(r)) / r->lane_width);
  if (!(f >= 0.0)) return 0;  // also NaN
  return f >= r->lanes ? r->lanes - 1 : (int)f;
}


int srl_road_add(srl_road *r, double length, double curvature) {
  if (r->n_seg >= SRL_ROAD_MAX_SEGMENTS)
    return srl_error(SRL_ERANGE, "road: more than %d segments", SRL_ROAD_MAX_SEGMENTS);
  if (!(length > 0.0) || !isfinite(length) || !isfinite(curvature))
    return srl_error(SRL_EINVAL,
                     "road: segment length %g must be positive and curvature %g "
                     "finite",
                     length, curvature);
  double hw = srl_road_half_width(r);
  if (fabs(curvature) * hw > 0.5)
    return srl_error(SRL_EINVAL,
                     "road: curvature %g is too tight for a road %g m wide (at most "
                     "%g)",
                     curvature, 2.0 * hw, 0.5 / hw);
  if (fabs(curvature) * length > M_PI + 1e-9)
    return srl_error(SRL_EINVAL, "road: an arc of curvature %g and length %g turns more than pi",
                     curvature, length);

  // the new segment starts where the road ends
  srl_road_segment *g = &r->seg[r->n_seg];
  g->s0 = r->length;
  g->length = length;
  g->curvature = curvature;
  g->x0 = r->x_end, g->y0 = r->y_end, g->h0 = r->h_end;
  double h;
  seg_eval(g, length, &r->x_end, &r->y_end, &h);
  r->h_end = wrap_pi(h);

  // each lane's arc length grows by the segment's length scaled at the lane's offset
  for (int l = 0; l < r->lanes; l++)
    r->lane_s0[l][r->n_seg + 1] =
        r->lane_s0[l][r->n_seg] + length * (1.0 - curvature * srl_road_lane_center(r, l));
  r->n_seg++;
  r->length += length;
  return SRL_OK;
}


int srl_road_segment_at(const srl_road *r, double s) {
  int lo = 0, hi = r->n_seg - 1;  // the last segment with s0 <= s
  if (hi <= 0) return 0;
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (r->seg[mid].s0 <= s)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}


void srl_road_pose(const srl_road *r, double s, double d, srl_road_point *out) {
  double x, y, h, k = 0.0;
  int i = 0;
  if (r->n_seg == 0 || s < 0.0) {
    // before the start: the line along the start heading
    double x0 = r->n_seg ? r->seg[0].x0 : r->x_end, y0 = r->n_seg ? r->seg[0].y0 : r->y_end;
    h = r->n_seg ? r->seg[0].h0 : r->h_end;
    x = x0 + s * cos(h), y = y0 + s * sin(h);
  } else if (s > r->length) {
    // past the end: the line along the end heading
    i = r->n_seg - 1;
    h = r->h_end;
    x = r->x_end + (s - r->length) * cos(h), y = r->y_end + (s - r->length) * sin(h);
  } else {
    i = srl_road_segment_at(r, s);
    const srl_road_segment *g = &r->seg[i];
    seg_eval(g, s - g->s0, &x, &y, &h);
    k = g->curvature;
  }
  out->s = s, out->d = d;
  out->x = x - d * sin(h), out->y = y + d * cos(h);
  out->heading = wrap_pi(h);
  out->curvature = k;
  out->seg = i;
}


//---- nearest point ------------------------------------------------------------------------------

// a candidate nearest point
typedef struct cand {
  double dist;  // distance from the query point
  double s, d;  // its road coordinates
  int seg;
  int interior;  // the foot lies inside the segment (not at a clamped end)
} cand;


// the nearest point of segment i to (x, y)
static cand seg_nearest(const srl_road *r, int i, double x, double y) {
  const srl_road_segment *g = &r->seg[i];
  cand c = {INFINITY, 0.0, 0.0, i, 0};
  double t, lat;
  if (g->curvature == 0.0) {
    double ch = cos(g->h0), sh = sin(g->h0), dx = x - g->x0, dy = y - g->y0;
    t = dx * ch + dy * sh;
    lat = -dx * sh + dy * ch;
  } else {
    // circle of signed radius R about its centre; the foot's heading from the radial direction
    double R = 1.0 / g->curvature, sg = g->curvature > 0.0 ? 1.0 : -1.0;
    double cx = g->x0 - R * sin(g->h0), cy = g->y0 + R * cos(g->h0);
    double vx = x - cx, vy = y - cy, rho = hypot(vx, vy);
    if (rho < 1e-12) {
      t = 0.0, lat = R;  // the centre: every point of the circle is as near
    } else {
      double h = atan2(sg * vx, -sg * vy);
      t = wrap_pi(h - g->h0) / g->curvature;
      lat = R - sg * rho;
    }
  }
  if (t >= 0.0 && t <= g->length) {
    c.dist = fabs(lat), c.s = g->s0 + t, c.d = lat, c.interior = 1;
    return c;
  }

  // the foot falls outside: the nearer end, with the side taken from the tangent there
  double te = t < 0.0 ? 0.0 : g->length, ex, ey, eh;
  seg_eval(g, te, &ex, &ey, &eh);
  double dx = x - ex, dy = y - ey, side = cos(eh) * dy - sin(eh) * dx;
  c.dist = hypot(dx, dy);
  c.s = g->s0 + te;
  c.d = side >= 0.0 ? c.dist : -c.dist;
  return c;
}


// the straight extensions before the start (end = 0) and after the end (end = 1)
static cand ray_nearest(const srl_road *r, int end, double x, double y) {
  cand c = {INFINITY, 0.0, 0.0, end ? r->n_seg - 1 : 0, 0};
  double px = end ? r->x_end : r->seg[0].x0, py = end ? r->y_end : r->seg[0].y0;
  double h = end ? r->h_end : r->seg[0].h0, dx = x - px, dy = y - py;
  double t = dx * cos(h) + dy * sin(h), lat = -dx * sin(h) + dy * cos(h);
  if ((end && t > 0.0) || (!end && t < 0.0)) {
    c.dist = fabs(lat), c.s = (end ? r->length : 0.0) + t, c.d = lat, c.interior = 1;
  }
  return c;
}


static void keep_nearer(cand *best, cand c) {
  if (c.dist < best->dist) *best = c;
}


// the nearest among segments [lo, hi] and the end rays they touch
static cand search(const srl_road *r, int lo, int hi, double x, double y) {
  cand best = {INFINITY, 0.0, 0.0, 0, 0};
  for (int i = lo; i <= hi; i++) keep_nearer(&best, seg_nearest(r, i, x, y));
  if (lo == 0) keep_nearer(&best, ray_nearest(r, 0, x, y));
  if (hi == r->n_seg - 1) keep_nearer(&best, ray_nearest(r, 1, x, y));
  return best;
}


int srl_road_project(const srl_road *r, double x, double y, int hint, srl_road_point *out) {
  if (r->n_seg == 0) {
    // no segments: the line through the start
    double dx = x - r->x_end, dy = y - r->y_end, h = r->h_end;
    *out = (srl_road_point){dx * cos(h) + dy * sin(h), -dx * sin(h) + dy * cos(h), x, y, h, 0.0, 0};
    return 0;
  }

  // near the hint first; a foot inside a segment close to the road is the answer, since the
  // roads drawn here never come back within a road width of themselves
  cand best;
  int found = 0;
  if (hint >= 0 && hint < r->n_seg) {
    int lo = hint > 0 ? hint - 1 : 0, hi = hint + 1 < r->n_seg ? hint + 1 : r->n_seg - 1;
    best = search(r, lo, hi, x, y);
    found = best.interior && best.dist <= srl_road_half_width(r) + LOCAL_TRUST;
  }
  if (!found) best = search(r, 0, r->n_seg - 1, x, y);

  srl_road_point ref;
  srl_road_pose(r, best.s, 0.0, &ref);
  out->s = best.s, out->d = best.d;
  out->x = x, out->y = y;
  out->heading = ref.heading;
  out->curvature = ref.curvature;
  out->seg = best.seg;
  return best.seg;
}


//---- lane arc length ----------------------------------------------------------------------------

double srl_road_lane_length(const srl_road *r, int lane) {
  return r->lane_s0[lane][r->n_seg];
}


double srl_road_to_lane(const srl_road *r, int lane, double s) {
  if (s <= 0.0 || r->n_seg == 0) return s;
  if (s >= r->length) return srl_road_lane_length(r, lane) + (s - r->length);
  int i = srl_road_segment_at(r, s);
  const srl_road_segment *g = &r->seg[i];
  return r->lane_s0[lane][i] + (s - g->s0) * (1.0 - g->curvature * srl_road_lane_center(r, lane));
}


double srl_road_from_lane(const srl_road *r, int lane, double sigma) {
  if (sigma <= 0.0 || r->n_seg == 0) return sigma;
  double len = srl_road_lane_length(r, lane);
  if (sigma >= len) return r->length + (sigma - len);
  const double *l0 = r->lane_s0[lane];
  int lo = 0, hi = r->n_seg - 1;  // the last segment whose lane start is <= sigma
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (l0[mid] <= sigma)
      lo = mid;
    else
      hi = mid - 1;
  }
  const srl_road_segment *g = &r->seg[lo];
  return g->s0 + (sigma - l0[lo]) / (1.0 - g->curvature * srl_road_lane_center(r, lane));
}

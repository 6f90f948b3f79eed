// vehicle.c: the vehicle models of the driving task: the ego's kinematic bicycle, the
// Intelligent Driver Model the traffic follows its leader with, and oriented-box overlap.
//
// Kinematic bicycle (rear-axle reference): x' = v cos(theta), y' = v sin(theta),
// theta' = v tan(delta) / L. Over one step the wheel angle is held, so the rear axle runs along a
// circle of radius L / tan(delta) (a line when delta = 0) for the distance the speed profile
// covers; the step moves it along that arc exactly, so there is no integration error in the path.
// The acceleration is held over the step (ballistic update); a speed that would turn negative
// stops at 0 after v²/(2|a|) metres.
//
// IDM: a = a_max·[1 - (v/v0)^4 - (s*/s)²], s* = s0 + max(0, v·T + v·dv / (2·sqrt(a_max·b))),
// with s the bumper-to-bumper gap and dv the approach rate; clipped at -decel_max.
#include <math.h>

#include "envs/driving/driving.h"


// distance covered in dt from speed v under acceleration a, and the speed after, stopping at 0
static void ballistic(double v, double a, double dt, double *dist, double *v_new) {
  double v1 = v + a * dt;
  if (v1 >= 0.0) {
    *dist = 0.5 * (v + v1) * dt;
    *v_new = v1;
  } else {
    *dist = a < 0.0 ? v * v / (-2.0 * a) : 0.0;
    *v_new = 0.0;
  }
}


void srl_bicycle_step(srl_bicycle *b, const srl_bicycle_params *p, double delta, double throttle,
                      double brake, double dt) {
  // acceleration: the throttle's push fades towards the top speed; braking and rolling
  // resistance act while moving
  double v = b->speed, push = 1.0 - v / p->top_speed;
  double a = p->max_accel * throttle * (push > 0.0 ? push : 0.0);
  if (v > 0.0 || a > 0.0) a -= p->max_brake * brake + p->rolling;
  if (v <= 0.0 && a < 0.0) a = 0.0;  // a car at rest stays at rest
  double dist, v_new;
  ballistic(v, a, dt, &dist, &v_new);

  // the rear axle moves dist along the arc of curvature tan(delta)/L
  double k = tan(delta) / p->wheelbase, dh = k * dist, half = 0.5 * dh;
  double chord = fabs(half) < 1e-4 ? dist * (1.0 - half * half / 6.0) : dist * sin(half) / half;
  double a_mid = b->heading + half;
  b->x += chord * cos(a_mid);
  b->y += chord * sin(a_mid);
  b->heading = remainder(b->heading + dh, 2.0 * M_PI);
  b->speed = v_new;
}


double srl_idm_accel(const srl_idm_params *p, double v0, double v, double gap, double dv) {
  double r = v0 > 0.0 ? v / v0 : 1.0, r2 = r * r;
  double a = p->a * (1.0 - r2 * r2);
  if (gap <= 0.0) return -p->decel_max;
  if (isfinite(gap)) {
    double dyn = v * p->T + v * dv / (2.0 * sqrt(p->a * p->b));
    double s_star = p->s0 + (dyn > 0.0 ? dyn : 0.0), q = s_star / gap;
    a -= p->a * q * q;
  }
  return a < -p->decel_max ? -p->decel_max : a;
}


void srl_obb_corners(const srl_obb *b, double xy[8]) {
  double c = cos(b->heading), s = sin(b->heading);
  double lx = b->half_length * c, ly = b->half_length * s;  // half the long side
  double wx = -b->half_width * s, wy = b->half_width * c;   // half the short side, to the left
  xy[0] = b->x + lx + wx, xy[1] = b->y + ly + wy;           // front left
  xy[2] = b->x - lx + wx, xy[3] = b->y - ly + wy;           // rear left
  xy[4] = b->x - lx - wx, xy[5] = b->y - ly - wy;           // rear right
  xy[6] = b->x + lx - wx, xy[7] = b->y + ly - wy;           // front right
}


// 1 when the projections of both boxes on the unit axis (nx, ny) are apart
static int separated_on(const srl_obb *a, const srl_obb *b, double nx, double ny, double ca,
                        double sa, double cb, double sb, double dx, double dy) {
  double ra = a->half_length * fabs(ca * nx + sa * ny) + a->half_width * fabs(-sa * nx + ca * ny);
  double rb = b->half_length * fabs(cb * nx + sb * ny) + b->half_width * fabs(-sb * nx + cb * ny);
  return fabs(dx * nx + dy * ny) > ra + rb;
}


int srl_obb_overlap(const srl_obb *a, const srl_obb *b) {
  double dx = b->x - a->x, dy = b->y - a->y;
  double ra = a->half_length + a->half_width, rb = b->half_length + b->half_width;
  if (dx * dx + dy * dy > (ra + rb) * (ra + rb)) return 0;  // beyond both bounding circles
  double ca = cos(a->heading), sa = sin(a->heading), cb = cos(b->heading), sb = sin(b->heading);
  // two boxes are disjoint exactly when one of the four edge normals separates them
  if (separated_on(a, b, ca, sa, ca, sa, cb, sb, dx, dy)) return 0;
  if (separated_on(a, b, -sa, ca, ca, sa, cb, sb, dx, dy)) return 0;
  if (separated_on(a, b, cb, sb, ca, sa, cb, sb, dx, dy)) return 0;
  if (separated_on(a, b, -sb, cb, ca, sa, cb, sb, dx, dy)) return 0;
  return 1;
}

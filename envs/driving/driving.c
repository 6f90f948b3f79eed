// driving.c: SafetyDriving0/1/2, a 2-D driving task in pure C that speaks the wire protocol's
// driving vocabulary (docs/protocol.md), the same observation, action, reward and cost as the
// CARLA adapter, so the driving pipeline runs and is tested without CARLA.
//
// Each reset draws from the seed: a road of `lanes` lanes alternating straights (30-120 m) and
// arcs (15-75°, curvature up to `curvature`, the heading kept within 80° of the first one so the
// road never comes back near itself), the ego's lane (its route) and start 30-40 m from the road's
// start at `start_speed`, and `traffic` vehicles on free lane positions with desired speeds in
// traffic_speed·(1 ± spread). The route runs route_length metres along the ego's lane; the road
// continues 60 m past it.
//
// A step (dt seconds, 1/15 by default as VLM-RL's 15 fps):
//   action    [steer, throttle] in [-1, 1]; applied steer = 0.75·previous + 0.25·steer
//             (VLM-RL); steer > 0 turns right (CARLA's VehicleControl); throttle < 0 brakes with
//             -throttle. Front-wheel angle = -steer·max_steer (positive left).
//   traffic   every vehicle keeps its lane's centre and follows the vehicle ahead in its lane, or
//             the ego where the ego's box reaches into the lane, with the IDM (a 1.5, b 2.0,
//             T 1.5 s, s0 2 m); vehicles leaving the road's end re-enter at its start when there
//             is room. Traffic reacts to the ego's pose at the start of the step.
//   ego       kinematic bicycle (vehicle.c), then measured against the route.
//   reward    VLM-RL with v_des = target_speed: r_speed = 1 - |v_kmh - v_des|/target_speed,
//             f_center = max(1 - |lateral|/3, 0), f_angle = max(1 - |heading error|/(pi/2), 0),
//             f_std = max(1 - std(|lateral| over the last 30 steps)/0.4, 0), r = the product;
//             a collision ends the episode (terminated) with reward -10.
//   cost      1 on a step with a collision or with the ego's centre off the drivable road
//             (beyond the edge or the ends), else 0; raw cost the same.
//   ends      collision; route end reached (goal_met, terminated); centre more than max_offroad
//             metres off the road (terminated). The registered time limit is 1000 steps.
//   x_velocity carries the speed in m/s. A non-finite ego state ends the episode by the
//   divergence contract (truncated, reward -10, cost 1, diverged).
// The observation (37 floats) is listed in driving.h. Nothing here allocates after create.
#include "envs/driving/driving.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/error.h"
#include "core/rng.h"
#include "envs/wrappers.h"

#define OBS SRL_DRIVING_OBS
#define ACT SRL_DRIVING_ACT
#define HL (0.5 * SRL_DRIVING_CAR_LENGTH)
#define HW (0.5 * SRL_DRIVING_CAR_WIDTH)
#define START_S 30.0                    // m of road before the ego's earliest start
#define START_JITTER 10.0               // the start is drawn in [START_S, START_S + START_JITTER]
#define END_MARGIN 60.0                 // m of road past the route's end (waypoints and traffic)
#define MAX_TURN (80.0 * M_PI / 180.0)  // the road's heading stays this close to its start's
#define TOP_SPEED 30.0                  // m/s of the ego
#define ROLLING 0.2                     // m/s² of rolling resistance
#define LANE_MARGIN 0.3   // m: the ego blocks a lane when its box comes this close to a car's
#define KEEP_BEHIND 30.0  // m of the ego's lane kept free of traffic behind the ego at reset
#define KEEP_AHEAD 20.0   // ... and ahead of it
#define SPAWN_TRIES 64

//---- options ----------------------------------------------------------------------------------

static const srl_cfg_field drv_fields[] = {
    SRL_CFG_INT(srl_driving_opts, lanes, "lanes", "3", 1, SRL_ROAD_MAX_LANES,
                "lanes, all running in the route's direction"),
    SRL_CFG_FLOAT(srl_driving_opts, lane_width, "lane_width", "3.5", 2.5, 5.0, "lane width (m)"),
    SRL_CFG_FLOAT(srl_driving_opts, curvature, "curvature", "0.02", 0.0, 0.2,
                  "largest curvature of the road's arcs (1/m); 0: a straight road"),
    SRL_CFG_INT(srl_driving_opts, traffic, "traffic", "0", 0, SRL_DRIVING_MAX_TRAFFIC,
                "vehicles besides the ego"),
    SRL_CFG_FLOAT(srl_driving_opts, target_speed, "target_speed", "25", 1.0, 100.0,
                  "the reward's desired speed (km/h)"),
    SRL_CFG_FLOAT(srl_driving_opts, traffic_speed, "traffic_speed", "25", 1.0, 100.0,
                  "mean desired speed of the traffic (km/h)"),
    SRL_CFG_FLOAT(srl_driving_opts, traffic_speed_spread, "traffic_speed_spread", "0.2", 0.0, 0.9,
                  "traffic desired speeds are uniform in traffic_speed·(1 ± spread)"),
    SRL_CFG_FLOAT(srl_driving_opts, route_length, "route_length", "500", 20.0, 2000.0,
                  "length of the route along the ego's lane (m)"),
    SRL_CFG_FLOAT(srl_driving_opts, dt, "dt", "0.06666666666666667", 0.005, 0.5,
                  "seconds per step"),
    SRL_CFG_INT(srl_driving_opts, image_width, "image_width", "224", 16, 4096,
                "width of the image offered to bridges and image rewards (px)"),
    SRL_CFG_INT(srl_driving_opts, image_height, "image_height", "224", 16, 4096,
                "height of that image (px)"),
    SRL_CFG_FLOAT(srl_driving_opts, view_width, "view_width", "40", 5.0, 1000.0,
                  "metres across the top-down image"),
    SRL_CFG_FLOAT(srl_driving_opts, view_ahead, "view_ahead", "8", -100.0, 100.0,
                  "metres from the ego to the image centre, forwards"),
    SRL_CFG_FLOAT(srl_driving_opts, max_offroad, "max_offroad", "5", 0.0, 10000.0,
                  "the episode ends when the ego's centre is this far off the road (m)"),
    SRL_CFG_FLOAT(srl_driving_opts, start_speed, "start_speed", "0", 0.0, 100.0,
                  "speed of the ego at reset (km/h)"),
    SRL_CFG_FLOAT(srl_driving_opts, wheelbase, "wheelbase", "2.7", 1.0, 4.4,
                  "ego wheelbase (m); its box is 4.5 × 1.9 m"),
    SRL_CFG_FLOAT(srl_driving_opts, max_steer_deg, "max_steer_deg", "35", 1.0, 60.0,
                  "ego front-wheel angle at full steer (degrees)"),
    SRL_CFG_FLOAT(srl_driving_opts, max_accel, "max_accel", "3.0", 0.1, 20.0,
                  "ego acceleration at full throttle from rest (m/s²)"),
    SRL_CFG_FLOAT(srl_driving_opts, max_brake, "max_brake", "8.0", 0.1, 20.0,
                  "ego deceleration at full brake (m/s²)"),
};
static const srl_cfg_schema drv_schema = SRL_CFG_SCHEMA("SafetyDriving options", drv_fields);

//---- draws from a reset seed ---------------------------------------------------------------------

// a counter-based stream: the n-th number of a seed, so a reset never allocates
typedef struct draw {
  uint64_t seed, n;
} draw;

static double uni(draw *g) {
  uint64_t h = srl_hash64(g->seed ^ srl_hash64(g->n++ + 0x6472697665ull));
  return (double)(h >> 11) * 0x1p-53;
}

static double uni_range(draw *g, double lo, double hi) {
  return lo + (hi - lo) * uni(g);
}

static int uni_int(draw *g, int n) {
  int k = (int)(uni(g) * n);
  return k < n ? k : n - 1;
}

//---- small geometry ---------------------------------------------------------------------------

static double wrap_pi(double a) {
  a = remainder(a, 2.0 * M_PI);
  return a <= -M_PI ? a + 2.0 * M_PI : a;
}

srl_obb srl_driving_ego_box(const srl_driving *d) {
  double half = 0.5 * d->ego_p.wheelbase;
  return (srl_obb){d->ego.x + half * cos(d->ego.heading), d->ego.y + half * sin(d->ego.heading),
                   d->ego.heading, HL, HW};
}

srl_obb srl_driving_car_box(const srl_driving *d, int i) {
  const srl_driving_car *c = &d->cars[i];
  return (srl_obb){c->x, c->y, c->heading, HL, HW};
}

void srl_driving_place_ego(srl_driving *d, double x, double y, double heading, double speed) {
  double half = 0.5 * d->ego_p.wheelbase;
  d->ego.x = x - half * cos(heading);
  d->ego.y = y - half * sin(heading);
  d->ego.heading = wrap_pi(heading);
  d->ego.speed = speed;
  d->hint = -1;
}

// where the ego stands on the road this step: its box and the projection of its centre
typedef struct ego_frame {
  srl_obb box;
  srl_road_point p;
} ego_frame;

static void ego_frame_of(const srl_driving *d, ego_frame *f) {
  f->box = srl_driving_ego_box(d);
  srl_road_project(&d->road, f->box.x, f->box.y, d->hint, &f->p);
}

//---- the road of a reset ----------------------------------------------------------------------

// straights and arcs until the road is `need` metres long
static int draw_road(srl_driving *d, draw *g, double need) {
  const srl_driving_opts *o = &d->o;
  srl_road *r = &d->road;
  SRL_TRY(srl_road_init(r, o->lanes, o->lane_width, 0.0, 0.0, uni_range(g, -M_PI, M_PI)));
  if (o->curvature <= 0.0) return srl_road_add(r, need, 0.0);
  SRL_TRY(srl_road_add(r, START_S + START_JITTER + uni_range(g, 20.0, 60.0), 0.0));
  double turned = 0.0;  // heading change since the start
  while (r->length < need) {
    // an arc, turning back when it would take the heading past MAX_TURN
    double k = o->curvature * uni_range(g, 0.3, 1.0);
    double angle = uni_range(g, 15.0, 75.0) * M_PI / 180.0;
    double sign = uni(g) < 0.5 ? -1.0 : 1.0;
    if (fabs(turned + sign * angle) > MAX_TURN) sign = -sign;
    SRL_TRY(srl_road_add(r, angle / k, sign * k));
    turned += sign * angle;
    SRL_TRY(srl_road_add(r, uni_range(g, 30.0, 120.0), 0.0));
  }
  return SRL_OK;
}

//---- traffic ----------------------------------------------------------------------------------

// the world pose of car i from its lane position
static void car_pose(srl_driving *d, srl_driving_car *c) {
  const srl_road *r = &d->road;
  srl_road_point p;
  srl_road_pose(r, srl_road_from_lane(r, c->lane, c->sigma), srl_road_lane_center(r, c->lane), &p);
  c->x = p.x, c->y = p.y, c->heading = p.heading;
}

// put car i into its lane's order (sorted by sigma, ascending)
static void lane_insert(srl_driving *d, int i) {
  int l = d->cars[i].lane, n = d->lane_n[l], k = n;
  int *ord = d->order[l];
  while (k > 0 && d->cars[ord[k - 1]].sigma > d->cars[i].sigma) {
    ord[k] = ord[k - 1];
    k--;
  }
  ord[k] = i;
  d->lane_n[l] = n + 1;
}

// how the ego occupies the lanes: per lane, whether its box reaches within LANE_MARGIN of a
// car on that lane's centre, its position along that lane, and its extent and speed along the road
typedef struct ego_lanes {
  int in[SRL_ROAD_MAX_LANES];
  double sigma[SRL_ROAD_MAX_LANES];
  double ext_long, v_long;
} ego_lanes;

static void ego_lanes_of(const srl_driving *d, ego_lanes *e) {
  ego_frame f;
  ego_frame_of(d, &f);
  double psi = d->ego.heading - f.p.heading, c = fabs(cos(psi)), s = fabs(sin(psi));
  double ext_lat = HL * s + HW * c;
  e->ext_long = HL * c + HW * s;
  e->v_long = d->ego.speed * cos(psi);
  const srl_road *r = &d->road;
  int on_road = f.p.s > -HL - e->ext_long && f.p.s < r->length + HL + e->ext_long;
  for (int l = 0; l < r->lanes; l++) {
    double lc = srl_road_lane_center(r, l);
    e->in[l] = on_road && fabs(f.p.d - lc) < ext_lat + HW + LANE_MARGIN;
    e->sigma[l] = e->in[l] ? srl_road_to_lane(r, l, f.p.s) : 0.0;
  }
}

// draw the traffic of a reset: free lane positions away from the ego's start, speeds a car can
// stop from within its gap
static void spawn_traffic(srl_driving *d, draw *g) {
  const srl_driving_opts *o = &d->o;
  const srl_road *r = &d->road;
  double v_mean = o->traffic_speed / 3.6, spacing = SRL_DRIVING_CAR_LENGTH + d->idm.s0 + 4.0;
  ego_lanes e;
  ego_lanes_of(d, &e);
  memset(d->lane_n, 0, sizeof d->lane_n);
  d->n_cars = o->traffic;
  for (int i = 0; i < d->n_cars; i++) {
    srl_driving_car *c = &d->cars[i];
    c->v0 = v_mean * (1.0 + o->traffic_speed_spread * (2.0 * uni(g) - 1.0));
    c->active = 0;
    c->lane = uni_int(g, r->lanes);
    c->sigma = c->v = 0.0;
    for (int t = 0; t < SPAWN_TRIES && !c->active; t++) {
      int l = uni_int(g, r->lanes);
      double sig = uni_range(g, HL + 1.0, srl_road_lane_length(r, l) - HL - 20.0);
      if (e.in[l] && sig > e.sigma[l] - KEEP_BEHIND && sig < e.sigma[l] + KEEP_AHEAD) continue;
      int free = 1;
      for (int k = 0; k < d->lane_n[l] && free; k++)
        free = fabs(d->cars[d->order[l][k]].sigma - sig) >= spacing;
      if (!free) continue;
      c->lane = l, c->sigma = sig, c->active = 1;
      lane_insert(d, i);
    }
  }

  // speeds from the front of each lane back: at most what stops within the gap at comfortable
  // deceleration, the ego counting as a standing leader
  for (int l = 0; l < r->lanes; l++) {
    double lead = INFINITY;  // sigma of the rear of the vehicle ahead
    for (int k = d->lane_n[l] - 1; k >= 0; k--) {
      srl_driving_car *c = &d->cars[d->order[l][k]];
      double rear = lead;
      if (e.in[l] && e.sigma[l] > c->sigma && e.sigma[l] - e.ext_long < rear)
        rear = e.sigma[l] - e.ext_long;
      double gap = rear - c->sigma - HL - d->idm.s0;
      double v_safe = isfinite(gap) ? sqrt(2.0 * d->idm.b * (gap > 0.0 ? gap : 0.0)) : INFINITY;
      c->v = c->v0 < v_safe ? c->v0 : v_safe;
      lead = c->sigma - HL;
    }
  }
  for (int i = 0; i < d->n_cars; i++)
    if (d->cars[i].active) car_pose(d, &d->cars[i]);
}

void srl_driving_traffic_step(srl_driving *d) {
  const srl_road *r = &d->road;
  const srl_idm_params *idm = &d->idm;
  double dt = d->o.dt, acc[SRL_DRIVING_MAX_TRAFFIC];
  ego_lanes e;
  ego_lanes_of(d, &e);

  // accelerations from the state at the start of the step: the car ahead, or the ego when it
  // reaches into the lane nearer than that car
  for (int l = 0; l < r->lanes; l++) {
    const int *ord = d->order[l];
    for (int k = 0; k < d->lane_n[l]; k++) {
      const srl_driving_car *c = &d->cars[ord[k]];
      double gap = INFINITY, dv = 0.0;
      if (k + 1 < d->lane_n[l]) {
        const srl_driving_car *lead = &d->cars[ord[k + 1]];
        gap = lead->sigma - c->sigma - SRL_DRIVING_CAR_LENGTH;
        dv = c->v - lead->v;
      }
      if (e.in[l] && e.sigma[l] > c->sigma) {
        double ge = e.sigma[l] - c->sigma - HL - e.ext_long;
        if (ge < gap) gap = ge, dv = c->v - e.v_long;
      }
      acc[ord[k]] = srl_idm_accel(idm, c->v0, c->v, gap, dv);
    }
  }

  // advance with the acceleration held over the step, stopping at 0
  for (int i = 0; i < d->n_cars; i++) {
    srl_driving_car *c = &d->cars[i];
    if (!c->active) continue;
    double v1 = c->v + acc[i] * dt;
    if (v1 >= 0.0) {
      c->sigma += 0.5 * (c->v + v1) * dt;
      c->v = v1;
    } else {
      c->sigma += acc[i] < 0.0 ? c->v * c->v / (-2.0 * acc[i]) : 0.0;
      c->v = 0.0;
    }
  }

  // cars past the road's end leave; waiting cars enter at the start behind the last one when
  // there is room (and the ego is not there)
  for (int l = 0; l < r->lanes; l++) {
    double end = srl_road_lane_length(r, l) - HL;
    while (d->lane_n[l] > 0 && d->cars[d->order[l][d->lane_n[l] - 1]].sigma > end)
      d->cars[d->order[l][--d->lane_n[l]]].active = 0;
  }
  double entry = HL + 1.0;
  for (int i = 0; i < d->n_cars; i++) {
    srl_driving_car *c = &d->cars[i];
    if (c->active) continue;
    int l = c->lane, n = d->lane_n[l];
    if (e.in[l] && fabs(e.sigma[l] - entry) < e.ext_long + HL + idm->s0 + 10.0) continue;
    double v = c->v0;
    if (n > 0) {
      const srl_driving_car *rear = &d->cars[d->order[l][0]];
      double room = rear->sigma - entry - SRL_DRIVING_CAR_LENGTH;
      if (room < idm->s0 + rear->v * idm->T + 2.0) continue;
      if (rear->v < v) v = rear->v;
    }
    c->sigma = entry, c->v = v, c->active = 1;
    lane_insert(d, i);
    d->respawns++;
  }
  for (int i = 0; i < d->n_cars; i++)
    if (d->cars[i].active) car_pose(d, &d->cars[i]);
}

//---- measuring the ego --------------------------------------------------------------------------

// the measurements and reward terms of the ego in frame f (see srl_driving_measure)
static void measure_in(const srl_driving *d, const ego_frame *f, srl_driving_terms *t) {
  const srl_road *r = &d->road;
  const srl_driving_opts *o = &d->o;
  t->speed_kmh = 3.6 * d->ego.speed;
  t->lateral = f->p.d - srl_road_lane_center(r, d->route_lane);
  t->heading_error = wrap_pi(d->ego.heading - f->p.heading);
  t->progress = srl_road_to_lane(r, d->route_lane, f->p.s) - d->route_sigma0;
  double off = fabs(f->p.d) - srl_road_half_width(r);
  if (-f->p.s > off) off = -f->p.s;
  if (f->p.s - r->length > off) off = f->p.s - r->length;
  t->offroad = off > 0.0 ? off : 0.0;

  // population std of |lateral| over the window: the last WINDOW - 1 stored steps and this one
  double dc = fabs(t->lateral), sum = dc, sum2 = dc * dc;
  int n = d->hist_n < SRL_DRIVING_STD_WINDOW - 1 ? d->hist_n : SRL_DRIVING_STD_WINDOW - 1;
  for (int k = 1; k <= n; k++) {
    double v = d->hist[(d->hist_pos - k + SRL_DRIVING_STD_WINDOW) % SRL_DRIVING_STD_WINDOW];
    sum += v, sum2 += v * v;
  }
  double mean = sum / (n + 1), var = sum2 / (n + 1) - mean * mean;
  t->d_std = var > 0.0 ? sqrt(var) : 0.0;

  // VLM-RL's hierarchical reward with v_des = target_speed
  t->r_speed = 1.0 - fabs(t->speed_kmh - o->target_speed) / o->target_speed;
  t->f_center = fmax(1.0 - dc / SRL_DRIVING_MAX_CENTER, 0.0);
  t->f_angle = fmax(1.0 - fabs(t->heading_error) / (0.5 * M_PI), 0.0);
  t->f_std = fmax(1.0 - t->d_std / SRL_DRIVING_STD_SCALE, 0.0);
  t->reward = t->r_speed * t->f_center * t->f_angle * t->f_std;

  // collision with any vehicle on the road
  t->collision = 0;
  for (int i = 0; i < d->n_cars && !t->collision; i++) {
    if (!d->cars[i].active) continue;
    srl_obb b = srl_driving_car_box(d, i);
    t->collision = srl_obb_overlap(&f->box, &b);
  }
}

void srl_driving_measure(const srl_driving *d, srl_driving_terms *t) {
  ego_frame f;
  ego_frame_of(d, &f);
  measure_in(d, &f, t);
}

// the observation of the ego in frame f
static void observe_in(const srl_driving *d, const ego_frame *f, float *obs) {
  const srl_road *r = &d->road;
  int rl = d->route_lane;
  double lc = srl_road_lane_center(r, rl);
  obs[SRL_DRIVING_OBS_STEER] = (float)d->steer;
  obs[SRL_DRIVING_OBS_THROTTLE] = (float)d->throttle;
  obs[SRL_DRIVING_OBS_SPEED] = (float)(3.6 * d->ego.speed);
  obs[SRL_DRIVING_OBS_LATERAL] = (float)(f->p.d - lc);
  obs[SRL_DRIVING_OBS_HEADING] = (float)wrap_pi(d->ego.heading - f->p.heading);

  // route waypoints every 2 m of the route lane ahead of the ego, in the ego frame
  double ch = cos(d->ego.heading), sh = sin(d->ego.heading);
  double sig = srl_road_to_lane(r, rl, f->p.s);
  float *w = obs + SRL_DRIVING_OBS_WAYPOINTS;
  for (int k = 0; k < SRL_DRIVING_WAYPOINTS; k++) {
    srl_road_point p;
    sig += SRL_DRIVING_WAYPOINT_SPACING;
    srl_road_pose(r, srl_road_from_lane(r, rl, sig), lc, &p);
    double dx = p.x - f->box.x, dy = p.y - f->box.y;
    w[2 * k] = (float)(dx * ch + dy * sh);
    w[2 * k + 1] = (float)(-dx * sh + dy * ch);
  }

  // the nearest vehicle ahead in the lane of the ego's centre, within the cap (centre to centre
  // along that lane)
  int l = srl_road_lane_at(r, f->p.d);
  double se = srl_road_to_lane(r, l, f->p.s), dist = SRL_DRIVING_AHEAD_CAP, dv = 0.0;
  for (int k = 0; k < d->lane_n[l]; k++) {
    const srl_driving_car *c = &d->cars[d->order[l][k]];
    if (c->sigma > se) {
      if (c->sigma - se <= SRL_DRIVING_AHEAD_CAP) dist = c->sigma - se, dv = c->v - d->ego.speed;
      break;
    }
  }
  obs[SRL_DRIVING_OBS_AHEAD_DIST] = (float)dist;
  obs[SRL_DRIVING_OBS_AHEAD_DV] = (float)dv;
}

void srl_driving_observe(const srl_driving *d, float *obs) {
  ego_frame f;
  ego_frame_of(d, &f);
  observe_in(d, &f, obs);
}

//---- the env ----------------------------------------------------------------------------------

static int drv_reset(srl_env *env, uint64_t seed, float *obs) {
  srl_driving *d = env->impl;
  const srl_driving_opts *o = &d->o;
  draw g = {seed, 0};

  // the road: long enough for the start, the route on any lane, and the margin past it
  double hw = 0.5 * o->lanes * o->lane_width;
  double need = START_S + START_JITTER + o->route_length / (1.0 - o->curvature * hw) + END_MARGIN;
  int rc = draw_road(d, &g, need);
  if (rc < 0)
    return srl_error_context(rc, "%s: reset with seed %llu: ", env->id, (unsigned long long)seed);

  // the ego at rest (or start_speed) on its lane's centre, facing along the road
  const srl_road *r = &d->road;
  d->route_lane = uni_int(&g, r->lanes);
  double s = START_S + START_JITTER * uni(&g);
  srl_road_point p;
  srl_road_pose(r, s, srl_road_lane_center(r, d->route_lane), &p);
  srl_driving_place_ego(d, p.x, p.y, p.heading, o->start_speed / 3.6);
  d->route_sigma0 = srl_road_to_lane(r, d->route_lane, s);
  d->route_sigma1 = d->route_sigma0 + o->route_length;
  d->steer = d->throttle = 0.0;
  d->hist_n = d->hist_pos = 0;
  d->respawns = 0;

  spawn_traffic(d, &g);
  ego_frame f;
  ego_frame_of(d, &f);
  d->hint = f.p.seg;
  observe_in(d, &f, obs);
  return SRL_OK;
}


static int ego_finite(const srl_bicycle *b) {
  return isfinite(b->x) && isfinite(b->y) && isfinite(b->heading) && isfinite(b->speed);
}


static int drv_step(srl_env *env, const float *action, float *obs, srl_step *out) {
  srl_driving *d = env->impl;
  srl_bicycle before = d->ego;

  // the controls: smoothed steer (+ right), throttle or brake
  d->steer = SRL_DRIVING_STEER_KEEP * d->steer + (1.0 - SRL_DRIVING_STEER_KEEP) * action[0];
  d->throttle = action[1];
  srl_driving_traffic_step(d);
  double thr = d->throttle;
  srl_bicycle_step(&d->ego, &d->ego_p, -d->steer * d->ego_p.max_steer, thr > 0.0 ? thr : 0.0,
                   thr < 0.0 ? -thr : 0.0, d->o.dt);

  // a non-finite ego (before or after the step) ends the episode by the divergence contract,
  // from the last finite state
  if (!ego_finite(&before) || !ego_finite(&d->ego)) {
    if (ego_finite(&before)) {
      d->ego = before;
    } else {
      srl_road_point p;
      srl_road_pose(&d->road, srl_road_from_lane(&d->road, d->route_lane, d->route_sigma0),
                    srl_road_lane_center(&d->road, d->route_lane), &p);
      srl_driving_place_ego(d, p.x, p.y, p.heading, 0.0);
    }
    d->ego.speed = 0.0;
    out->reward = SRL_ENV_DIVERGED_REWARD;
    out->cost = out->info.raw_cost = SRL_ENV_DIVERGED_COST;
    out->info.diverged = 1;
    out->truncated = 1;
    srl_driving_observe(d, obs);
    return SRL_OK;
  }

  ego_frame f;
  ego_frame_of(d, &f);
  d->hint = f.p.seg;
  srl_driving_terms t;
  measure_in(d, &f, &t);
  d->hist[d->hist_pos] = fabs(t.lateral);
  d->hist_pos = (d->hist_pos + 1) % SRL_DRIVING_STD_WINDOW;
  if (d->hist_n < SRL_DRIVING_STD_WINDOW) d->hist_n++;

  if (t.collision) {
    out->reward = SRL_DRIVING_COLLISION_REWARD;
    out->terminated = 1;
  } else {
    out->reward = (float)t.reward;
    if (t.progress >= d->o.route_length - SRL_DRIVING_GOAL_TOLERANCE) {
      out->info.goal_met = 1;
      out->terminated = 1;
    }
  }
  if (t.collision || t.offroad > 0.0) out->cost = out->info.raw_cost = 1.0f;
  if (t.offroad > d->o.max_offroad) out->terminated = 1;
  out->info.x_velocity = (float)d->ego.speed;
  observe_in(d, &f, obs);
  return SRL_OK;
}


static int drv_render(srl_env *env, uint8_t *rgb, int width, int height, const char *camera) {
  return srl_driving_render(env->impl, rgb, width, height, camera);
}


static void drv_destroy(srl_env *env) {
  srl_free(env);
}


static const srl_env_vtable drv_vt = {drv_reset, drv_step, drv_render, drv_destroy};


srl_driving *srl_driving_of(srl_env *env) {
  for (; env; env = srl_env_unwrap(env))
    if (env->vt == &drv_vt) return env->impl;
  return NULL;
}


int srl_driving_image_size(srl_env *env, int *width, int *height) {
  srl_driving *d = srl_driving_of(env);
  if (!d) return srl_error(SRL_EINVAL, "%s: not a driving env", env ? env->id : "(null)");
  if (width) *width = d->o.image_width;
  if (height) *height = d->o.image_height;
  return SRL_OK;
}


// observation bounds: what the dynamics and the termination rules allow
static void set_bounds(srl_driving *d) {
  const srl_driving_opts *o = &d->o;
  double hw = 0.5 * o->lanes * o->lane_width;
  double lat = 2.0 * hw + o->max_offroad + TOP_SPEED * o->dt + 1.0;
  double wp = SRL_DRIVING_WAYPOINTS * SRL_DRIVING_WAYPOINT_SPACING + lat;
  double v_traffic = o->traffic_speed / 3.6 * (1.0 + o->traffic_speed_spread);
  for (int i = 0; i < OBS; i++) d->obs_low[i] = (float)-wp, d->obs_high[i] = (float)wp;
  d->obs_low[SRL_DRIVING_OBS_STEER] = d->obs_low[SRL_DRIVING_OBS_THROTTLE] = -1.0f;
  d->obs_high[SRL_DRIVING_OBS_STEER] = d->obs_high[SRL_DRIVING_OBS_THROTTLE] = 1.0f;
  d->obs_low[SRL_DRIVING_OBS_SPEED] = 0.0f;
  d->obs_high[SRL_DRIVING_OBS_SPEED] = (float)(3.6 * TOP_SPEED);
  d->obs_low[SRL_DRIVING_OBS_LATERAL] = (float)-lat;
  d->obs_high[SRL_DRIVING_OBS_LATERAL] = (float)lat;
  d->obs_low[SRL_DRIVING_OBS_HEADING] = (float)-M_PI;
  d->obs_high[SRL_DRIVING_OBS_HEADING] = (float)M_PI;
  d->obs_low[SRL_DRIVING_OBS_AHEAD_DIST] = 0.0f;
  d->obs_high[SRL_DRIVING_OBS_AHEAD_DIST] = (float)SRL_DRIVING_AHEAD_CAP;
  d->obs_low[SRL_DRIVING_OBS_AHEAD_DV] = (float)-TOP_SPEED;
  d->obs_high[SRL_DRIVING_OBS_AHEAD_DV] = (float)v_traffic;
  for (int i = 0; i < ACT; i++) d->act_low[i] = -1.0f, d->act_high[i] = 1.0f;
}


int srl__driving_create(srl_env **out, const char *id, int traffic, const char *options_yaml) {
  *out = NULL;
  srl_driving_opts o;
  char source[SRL_ENV_ID_MAX + 16];
  snprintf(source, sizeof source, "%s options", id);
  SRL_TRY(srl_config_defaults(&drv_schema, &o));
  o.traffic = traffic;
  if (options_yaml && options_yaml[0])
    SRL_TRY(srl_config_load_string(&drv_schema, &o, options_yaml, source));

  // arcs must stay wide of the road (the inner edge at a radius of at least twice the half
  // width), so projections onto the road are unique near it
  double hw = 0.5 * o.lanes * o.lane_width;
  if (o.curvature * 3.0 * hw > 1.0)
    return srl_error(SRL_ECONFIG,
                     "%s: curvature %g is too tight for %d lanes of %g m: at most %g (a radius "
                     "of three half road widths)",
                     source, o.curvature, o.lanes, o.lane_width, 1.0 / (3.0 * hw));

  size_t total = sizeof(srl_env);
  size_t off = srl_layout_add(&total, sizeof(srl_driving));
  char *block = srl_calloc(total);
  if (!block) return SRL_ENOMEM;
  srl_env *env = (srl_env *)block;
  srl_driving *d = (srl_driving *)(block + off);
  d->o = o;
  d->ego_p = (srl_bicycle_params){
      o.wheelbase, o.max_steer_deg * M_PI / 180.0, o.max_accel, o.max_brake, TOP_SPEED, ROLLING};
  d->idm = (srl_idm_params){1.5, 2.0, 1.5, 2.0, 9.0};
  set_bounds(d);
  env->vt = &drv_vt;
  snprintf(env->id, sizeof env->id, "%s", id);
  env->obs_space = (srl_space){OBS, d->obs_low, d->obs_high};
  env->act_space = (srl_space){ACT, d->act_low, d->act_high};
  env->impl = d;

  // a first road so rendering and queries before the first reset see a valid scene
  float obs[OBS];
  int rc = drv_reset(env, 0, obs);
  if (rc < 0) {
    srl_free(block);
    return rc;
  }
  *out = env;
  return SRL_OK;
}

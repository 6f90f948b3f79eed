// test_driving.c: the built-in driving task: bicycle kinematics against the circle of radius
// L/tan(delta), road geometry (arc length, lanes, projection signs, waypoints 2 m apart in the ego
// frame), oriented-box collisions, the IDM, the reward and cost rules on hand-set states and over
// rollouts, collision-free traffic over a long run, determinism, the top-down raster, and speed.
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "envs/driving/driving.h"
#include "envs/env.h"
#include "test.h"

#define OBS SRL_DRIVING_OBS
#define DT (1.0 / 15.0)

static double wrap(double a) {
  a = remainder(a, 2.0 * M_PI);
  return a <= -M_PI ? a + 2.0 * M_PI : a;
}

// a reproducible number in [-1, 1) from (seed, counter)
static float noise(uint64_t seed, uint64_t k) {
  return 2.0f * srl_hash_uniform(seed, k) - 1.0f;
}

static srl_env *make(const char *id, const char *opts) {
  srl_env *env = NULL;
  CHECK_OK(srl_env_create(&env, id, opts));
  return env;
}

// the world pose of lane `lane` at reference arc length s on a road whose first segment is a
// straight line longer than s (computed here from the segment's start pose only)
static void straight_lane_point(const srl_road *r, int lane, double s, double *x, double *y,
                                double *h) {
  const srl_road_segment *g = &r->seg[0];
  double c = (lane + 0.5) * r->lane_width - 0.5 * r->lanes * r->lane_width;
  *h = g->h0;
  *x = g->x0 + s * cos(g->h0) - c * sin(g->h0);
  *y = g->y0 + s * sin(g->h0) + c * cos(g->h0);
}

//---- vehicle models --------------------------------------------------------------------------

TEST(bicycle_constant_steer_drives_the_circle) {
  const srl_bicycle_params p = {2.7, 0.6, 3.0, 8.0, 30.0, 0.0};
  for (int side = 0; side < 2; side++) {
    double delta = side ? -0.3 : 0.3, R = p.wheelbase / tan(fabs(delta)), sg = side ? -1.0 : 1.0;
    srl_bicycle b = {1.0, 2.0, 0.4, 5.0};
    // the centre lies R to the left (left turn) or right (right turn) of the rear axle
    double cx = b.x - sg * R * sin(b.heading), cy = b.y + sg * R * cos(b.heading);
    double worst_r = 0, worst_p = 0;
    for (int n = 1; n <= 300; n++) {
      srl_bicycle_step(&b, &p, delta, 0.0, 0.0, DT);
      double h = 0.4 + sg * 5.0 * n * DT / R;  // heading after the arc length v·t
      double ex = cx + sg * R * sin(h), ey = cy - sg * R * cos(h);
      worst_r = fmax(worst_r, fabs(hypot(b.x - cx, b.y - cy) - R));
      worst_p = fmax(worst_p, hypot(b.x - ex, b.y - ey));
      if (n == 300) CHECK_CLOSE(wrap(b.heading - h), 0.0, 1e-9, 0);
    }
    CHECK(worst_r < 1e-9);
    CHECK(worst_p < 1e-9);
    CHECK_CLOSE(b.speed, 5.0, 1e-12, 0);
  }

  // no steer: a straight line at constant speed
  srl_bicycle b = {0.0, 0.0, -1.0, 4.0};
  for (int n = 0; n < 45; n++) srl_bicycle_step(&b, &p, 0.0, 0.0, 0.0, DT);
  CHECK_CLOSE(b.x, 4.0 * 3.0 * cos(-1.0), 1e-9, 0);
  CHECK_CLOSE(b.y, 4.0 * 3.0 * sin(-1.0), 1e-9, 0);
}

TEST(bicycle_speed_limits) {
  const srl_bicycle_params p = {2.7, 0.6, 3.0, 8.0, 30.0, 0.0};
  // full brake from 5 m/s stops after v²/(2·8) metres and stays stopped, never reversing
  srl_bicycle b = {0.0, 0.0, 0.0, 5.0};
  for (int n = 0; n < 30; n++) {
    srl_bicycle_step(&b, &p, 0.2, 0.0, 1.0, DT);
    CHECK(b.speed >= 0.0);
  }
  CHECK_CLOSE(b.speed, 0.0, 0, 0);
  double R = p.wheelbase / tan(0.2), arc = 25.0 / 16.0;  // the stop lies on the circle
  CHECK_CLOSE(hypot(b.x, b.y), 2.0 * R * sin(0.5 * arc / R), 1e-12, 0);

  // full throttle from rest: a = max_accel·(1 - v/top) held over each step; the speed stays below
  // the top speed
  b = (srl_bicycle){0.0, 0.0, 0.0, 0.0};
  srl_bicycle_step(&b, &p, 0.0, 1.0, 0.0, DT);
  CHECK_CLOSE(b.speed, 3.0 * DT, 1e-12, 0);
  CHECK_CLOSE(b.x, 0.5 * 3.0 * DT * DT, 1e-12, 0);
  for (int n = 0; n < 5000; n++) srl_bicycle_step(&b, &p, 0.0, 1.0, 0.0, DT);
  CHECK(b.speed < 30.0 && b.speed > 29.0);

  // rolling resistance slows a coasting car to a stop; it never starts a car at rest
  const srl_bicycle_params q = {2.7, 0.6, 3.0, 8.0, 30.0, 0.5};
  b = (srl_bicycle){0.0, 0.0, 0.0, 1.0};
  for (int n = 0; n < 60; n++) srl_bicycle_step(&b, &q, 0.0, 0.0, 0.0, DT);
  CHECK_CLOSE(b.speed, 0.0, 0, 0);
  CHECK_CLOSE(b.x, 1.0, 1e-12, 0);
}

TEST(idm_accelerations) {
  const srl_idm_params p = {1.5, 2.0, 1.5, 2.0, 9.0};
  CHECK_CLOSE(srl_idm_accel(&p, 10.0, 0.0, INFINITY, 0.0), 1.5, 1e-12, 0);
  CHECK_CLOSE(srl_idm_accel(&p, 10.0, 10.0, INFINITY, 0.0), 0.0, 1e-12, 0);
  // at the equilibrium gap (s0 + vT)/sqrt(1 - (v/v0)^4) a follower holds its speed
  double v = 6.0, v0 = 10.0, r4 = pow(v / v0, 4.0), gap = (2.0 + v * 1.5) / sqrt(1.0 - r4);
  CHECK_CLOSE(srl_idm_accel(&p, v0, v, gap, 0.0), 0.0, 1e-12, 0);
  // approaching brakes harder; a closing gap brakes at the physical limit
  CHECK(srl_idm_accel(&p, v0, v, gap, 3.0) < -0.5);
  CHECK_CLOSE(srl_idm_accel(&p, v0, v, 0.5, 5.0), -9.0, 0, 0);
  CHECK_CLOSE(srl_idm_accel(&p, v0, v, -1.0, 0.0), -9.0, 0, 0);
}

TEST(oriented_box_overlap) {
  // two cars nose to tail: touching counts, a hair apart does not
  srl_obb a = {0.0, 0.0, 0.0, 2.25, 0.95}, b = {4.5, 0.0, 0.0, 2.25, 0.95};
  CHECK_EQ_INT(srl_obb_overlap(&a, &b), 1);
  CHECK_EQ_INT(srl_obb_overlap(&b, &a), 1);
  b.x = 4.5 + 1e-9;
  CHECK_EQ_INT(srl_obb_overlap(&a, &b), 0);
  b.x = 4.4;
  CHECK_EQ_INT(srl_obb_overlap(&a, &b), 1);
  // side by side in neighbouring lanes
  b = (srl_obb){1.0, 3.5, 0.0, 2.25, 0.95};
  CHECK_EQ_INT(srl_obb_overlap(&a, &b), 0);
  b.y = 1.9;
  CHECK_EQ_INT(srl_obb_overlap(&a, &b), 1);

  // rotated a quarter turn: its half width now reaches along x
  b = (srl_obb){2.25 + 0.95, 0.0, 0.5 * M_PI, 2.25, 0.95};
  CHECK_EQ_INT(srl_obb_overlap(&a, &b), 1);
  b.x += 1e-6;
  CHECK_EQ_INT(srl_obb_overlap(&a, &b), 0);

  // a unit square turned 45° touches an axis-aligned one when its corner does: centres 1 + √2
  srl_obb s = {0.0, 0.0, 0.0, 1.0, 1.0}, t = {1.0 + sqrt(2.0) - 1e-9, 0.0, M_PI / 4, 1.0, 1.0};
  CHECK_EQ_INT(srl_obb_overlap(&s, &t), 1);
  t.x = 1.0 + sqrt(2.0) + 1e-9;
  CHECK_EQ_INT(srl_obb_overlap(&s, &t), 0);
  // diagonally placed: the bounding boxes overlap but the diagonal axis separates them
  t = (srl_obb){2.2, 2.2, M_PI / 4, 1.0, 1.0};
  CHECK(2.2 - sqrt(2.0) < 1.0);  // axis-aligned bounds would call this a hit
  CHECK_EQ_INT(srl_obb_overlap(&s, &t), 0);
  t.x = t.y = 1.7;  // now the diagonal projections overlap (1.7·√2 < √2 + 1)
  CHECK_EQ_INT(srl_obb_overlap(&s, &t), 1);

  // corners: front-left first, counter-clockwise, at the half extents
  double xy[8];
  srl_obb c = {1.0, 2.0, M_PI / 2, 2.0, 1.0};
  srl_obb_corners(&c, xy);
  CHECK_CLOSE(xy[0], 0.0, 1e-12, 0);  // front left: forward is +y, left is -x
  CHECK_CLOSE(xy[1], 4.0, 1e-12, 0);
  CHECK_CLOSE(xy[4], 2.0, 1e-12, 0);  // rear right
  CHECK_CLOSE(xy[5], 0.0, 1e-12, 0);
}

//---- road geometry -----------------------------------------------------------------------------

TEST(road_arc_length_and_projection) {
  static srl_road r;
  // straight 50 m east, a quarter circle of radius 40 to the left, straight 30 m north
  CHECK_OK(srl_road_init(&r, 2, 3.5, 0.0, 0.0, 0.0));
  CHECK_OK(srl_road_add(&r, 50.0, 0.0));
  CHECK_OK(srl_road_add(&r, 40.0 * M_PI / 2, 1.0 / 40.0));
  CHECK_OK(srl_road_add(&r, 30.0, 0.0));
  CHECK_CLOSE(r.length, 80.0 + 20.0 * M_PI, 1e-12, 0);
  CHECK_CLOSE(r.x_end, 90.0, 1e-9, 0);
  CHECK_CLOSE(r.y_end, 70.0, 1e-9, 0);
  CHECK_CLOSE(r.h_end, M_PI / 2, 1e-12, 0);

  // the arc's end and a point 30° into it, 1 m left of the centre line
  srl_road_point p;
  srl_road_pose(&r, 50.0 + 20.0 * M_PI, 0.0, &p);
  CHECK_CLOSE(p.x, 90.0, 1e-9, 0);
  CHECK_CLOSE(p.y, 40.0, 1e-9, 0);
  srl_road_pose(&r, 50.0 + 40.0 * M_PI / 6, 1.0, &p);
  CHECK_CLOSE(p.x, 50.0 + 39.0 * sin(M_PI / 6), 1e-9, 0);
  CHECK_CLOSE(p.y, 40.0 - 39.0 * cos(M_PI / 6), 1e-9, 0);
  CHECK_CLOSE(p.heading, M_PI / 6, 1e-12, 0);
  CHECK_CLOSE(p.curvature, 1.0 / 40.0, 1e-15, 0);
  // on the first straight heading east, left is +y
  srl_road_pose(&r, 10.0, 1.0, &p);
  CHECK_CLOSE(p.x, 10.0, 1e-12, 0);
  CHECK_CLOSE(p.y, 1.0, 1e-12, 0);

  // projection: back to (s, d) with d's sign, from any hint
  for (int hint = -1; hint < 3; hint++) {
    srl_road_project(&r, 10.0, 1.5, hint, &p);
    CHECK_CLOSE(p.s, 10.0, 1e-12, 0);
    CHECK_CLOSE(p.d, 1.5, 1e-12, 0);
    srl_road_project(&r, 10.0, -2.0, hint, &p);
    CHECK_CLOSE(p.d, -2.0, 1e-12, 0);
    srl_road_project(&r, 50.0 + 39.0 * sin(M_PI / 6), 40.0 - 39.0 * cos(M_PI / 6), hint, &p);
    CHECK_CLOSE(p.s, 50.0 + 40.0 * M_PI / 6, 1e-9, 0);
    CHECK_CLOSE(p.d, 1.0, 1e-9, 0);
    CHECK_EQ_INT(p.seg, 1);
    srl_road_project(&r, 92.0, 60.0, hint, &p);  // on the last straight, 2 m right
    CHECK_CLOSE(p.s, 50.0 + 20.0 * M_PI + 20.0, 1e-9, 0);
    CHECK_CLOSE(p.d, -2.0, 1e-9, 0);
    // beyond the start and the end the road continues straight
    srl_road_project(&r, -5.0, 0.5, hint, &p);
    CHECK_CLOSE(p.s, -5.0, 1e-12, 0);
    CHECK_CLOSE(p.d, 0.5, 1e-12, 0);
    srl_road_project(&r, 89.0, 75.0, hint, &p);
    CHECK_CLOSE(p.s, r.length + 5.0, 1e-9, 0);
    CHECK_CLOSE(p.d, 1.0, 1e-9, 0);
  }

  // lanes: lane 0 is the right one; on the left turn the left lane is shorter
  CHECK_CLOSE(srl_road_lane_center(&r, 0), -1.75, 1e-12, 0);
  CHECK_CLOSE(srl_road_lane_center(&r, 1), 1.75, 1e-12, 0);
  CHECK_EQ_INT(srl_road_lane_at(&r, -0.1), 0);
  CHECK_EQ_INT(srl_road_lane_at(&r, 0.1), 1);
  CHECK_EQ_INT(srl_road_lane_at(&r, 9.0), 1);
  CHECK_EQ_INT(srl_road_lane_at(&r, -9.0), 0);
  CHECK_CLOSE(srl_road_lane_length(&r, 1), 80.0 + (40.0 - 1.75) * M_PI / 2, 1e-9, 0);
  CHECK_CLOSE(srl_road_lane_length(&r, 0), 80.0 + (40.0 + 1.75) * M_PI / 2, 1e-9, 0);
  double s = 50.0 + 10.0 * M_PI;  // halfway round the arc
  double sig = srl_road_to_lane(&r, 1, s);
  CHECK_CLOSE(sig, 50.0 + (40.0 - 1.75) * M_PI / 4, 1e-9, 0);
  CHECK_CLOSE(srl_road_from_lane(&r, 1, sig), s, 1e-9, 0);
  CHECK_CLOSE(srl_road_from_lane(&r, 0, srl_road_to_lane(&r, 0, 120.0)), 120.0, 1e-9, 0);

  // bad segments are refused
  CHECK_ERR(srl_road_add(&r, 10.0, 1.0), SRL_EINVAL);  // tighter than the road is wide
  CHECK_ERR(srl_road_add(&r, 0.0, 0.0), SRL_EINVAL);
  CHECK_ERR(srl_road_add(&r, 500.0, 0.01), SRL_EINVAL);  // more than half a turn
  CHECK_ERR(srl_road_init(&r, 0, 3.5, 0, 0, 0), SRL_EINVAL);
}

TEST(observation_geometry_signs_and_waypoints) {
  srl_env *env = make("SafetyDriving0", "{curvature: 0}");
  if (!env) return;
  float obs[OBS];
  CHECK_OK(srl_env_reset(env, 5, obs));
  srl_driving *d = srl_driving_of(env);
  CHECK(d != NULL);
  if (!d) return;

  // at reset: on the lane centre, aligned, waypoints straight ahead every 2 m
  CHECK_CLOSE(obs[SRL_DRIVING_OBS_LATERAL], 0.0, 1e-5, 0);
  CHECK_CLOSE(obs[SRL_DRIVING_OBS_HEADING], 0.0, 1e-6, 0);
  for (int k = 0; k < SRL_DRIVING_WAYPOINTS; k++) {
    CHECK_CLOSE(obs[SRL_DRIVING_OBS_WAYPOINTS + 2 * k], 2.0 * (k + 1), 1e-4, 0);
    CHECK_CLOSE(obs[SRL_DRIVING_OBS_WAYPOINTS + 2 * k + 1], 0.0, 1e-4, 0);
  }

  // 0.7 m left of the route lane's centre, pointing 0.2 rad left of the road
  double x, y, h, s = 45.0;
  straight_lane_point(&d->road, d->route_lane, s, &x, &y, &h);
  double ex = x - 0.7 * sin(h), ey = y + 0.7 * cos(h), eh = h + 0.2;
  srl_driving_place_ego(d, ex, ey, eh, 3.0);
  srl_driving_observe(d, obs);
  CHECK_CLOSE(obs[SRL_DRIVING_OBS_LATERAL], 0.7, 1e-5, 0);
  CHECK_CLOSE(obs[SRL_DRIVING_OBS_HEADING], 0.2, 1e-6, 0);
  CHECK_CLOSE(obs[SRL_DRIVING_OBS_SPEED], 3.0 * 3.6, 1e-5, 0);
  for (int k = 0; k < SRL_DRIVING_WAYPOINTS; k++) {
    // the route point 2(k+1) m past the ego's station, in the ego frame (x forward, y left)
    double wx, wy, wh;
    straight_lane_point(&d->road, d->route_lane, s + 2.0 * (k + 1), &wx, &wy, &wh);
    double dx = wx - ex, dy = wy - ey;
    CHECK_CLOSE(obs[SRL_DRIVING_OBS_WAYPOINTS + 2 * k], dx * cos(eh) + dy * sin(eh), 1e-4, 0);
    CHECK_CLOSE(obs[SRL_DRIVING_OBS_WAYPOINTS + 2 * k + 1], -dx * sin(eh) + dy * cos(eh), 1e-4, 0);
  }
  // the car points left of the route, so the route lies to its right (y < 0)
  CHECK(obs[SRL_DRIVING_OBS_WAYPOINTS + 1] < 0.0f);
  CHECK(obs[SRL_DRIVING_OBS_WAYPOINTS + 29] < obs[SRL_DRIVING_OBS_WAYPOINTS + 1]);

  // right of the lane and pointing right: both signs flip
  srl_driving_place_ego(d, x + 0.4 * sin(h), y - 0.4 * cos(h), h - 0.1, 3.0);
  srl_driving_observe(d, obs);
  CHECK_CLOSE(obs[SRL_DRIVING_OBS_LATERAL], -0.4, 1e-5, 0);
  CHECK_CLOSE(obs[SRL_DRIVING_OBS_HEADING], -0.1, 1e-6, 0);
  srl_env_destroy(env);

  // on curved roads the waypoints are 2 m apart along the lane: chords just under 2 m
  env = make("SafetyDriving0", "{curvature: 0.05}");
  if (!env) return;
  d = srl_driving_of(env);
  double min_chord = 3.0, max_chord = 0.0;
  int curved = 0;
  for (uint64_t seed = 0; seed < 4; seed++) {
    CHECK_OK(srl_env_reset(env, seed, obs));
    for (double sig = 40.0; sig < 400.0; sig += 7.3) {
      srl_road_point p;
      double ss = srl_road_from_lane(&d->road, d->route_lane, sig);
      srl_road_pose(&d->road, ss, srl_road_lane_center(&d->road, d->route_lane), &p);
      srl_driving_place_ego(d, p.x, p.y, p.heading, 5.0);
      srl_driving_observe(d, obs);
      CHECK_CLOSE(obs[SRL_DRIVING_OBS_LATERAL], 0.0, 1e-4, 0);
      CHECK_CLOSE(obs[SRL_DRIVING_OBS_HEADING], 0.0, 1e-5, 0);
      const float *w = obs + SRL_DRIVING_OBS_WAYPOINTS;
      CHECK_CLOSE(hypot(w[0], w[1]), 2.0, 2e-3, 0);
      for (int k = 1; k < SRL_DRIVING_WAYPOINTS; k++) {
        double c = hypot(w[2 * k] - w[2 * k - 2], w[2 * k + 1] - w[2 * k - 1]);
        min_chord = fmin(min_chord, c), max_chord = fmax(max_chord, c);
      }
      curved += fabs(w[29]) > 1.0;
    }
  }
  // a 2 m arc of the tightest lane (curvature 0.05 / (1 - 0.05·3.5) on the inner lane of three)
  // has the chord 2·sin(k)/k; straights give 2
  double k_lane = 0.05 / (1.0 - 0.05 * 3.5), chord_min = 2.0 * sin(k_lane) / k_lane;
  CHECK(min_chord > chord_min - 1e-4);
  CHECK(min_chord < 2.0 - 1e-4);  // some arcs were measured
  CHECK(max_chord < 2.0 + 1e-4);
  CHECK(curved > 5);  // some stations looked round a bend
  srl_env_destroy(env);
}

//---- rules: collision, road, reward, goal ------------------------------------------------------

TEST(collision_terminates_with_penalty) {
  srl_env *env = make("SafetyDriving1", NULL);
  if (!env) return;
  float obs[OBS], act[2] = {0.0f, 0.0f};
  srl_step st;
  CHECK_OK(srl_env_reset(env, 1, obs));
  srl_driving *d = srl_driving_of(env);

  // a step from the start hits nothing
  CHECK_OK(srl_env_step(env, act, obs, &st));
  CHECK(!st.terminated && st.reward != SRL_DRIVING_COLLISION_REWARD);
  CHECK_EQ_INT((int)st.cost, 0);

  // the ego 4 m behind a car's centre (the boxes overlap by half a metre)
  int i = 0;
  while (i < d->n_cars && !d->cars[i].active) i++;
  CHECK(i < d->n_cars);
  const srl_driving_car *c = &d->cars[i];
  srl_driving_place_ego(d, c->x - 4.0 * cos(c->heading), c->y - 4.0 * sin(c->heading), c->heading,
                        10.0);
  CHECK_OK(srl_env_step(env, act, obs, &st));
  CHECK_EQ_INT(st.terminated, 1);
  CHECK_CLOSE(st.reward, -10.0, 0, 0);
  CHECK_CLOSE(st.cost, 1.0, 0, 0);
  CHECK_CLOSE(st.info.raw_cost, 1.0, 0, 0);
  CHECK_EQ_INT(st.info.goal_met, 0);
  srl_env_destroy(env);
}

TEST(leaving_the_road_costs) {
  srl_env *env = make("SafetyDriving0", "{curvature: 0}");
  if (!env) return;
  float obs[OBS], act[2] = {0.0f, 0.0f};
  srl_step st;
  CHECK_OK(srl_env_reset(env, 3, obs));
  srl_driving *d = srl_driving_of(env);
  const srl_road_segment *g = &d->road.seg[0];
  double hw = 0.5 * d->road.lanes * d->road.lane_width, h = g->h0;
  // the ego's centre at (s, lateral) on the straight start of the road, moving slowly along it
  struct {
    double s, lat;
    int cost, terminated;
  } cases[] = {
      {60.0, 0.0, 0, 0},      {60.0, hw - 0.5, 0, 0},  // wheels over the edge, centre on
      {60.0, hw + 1.0, 1, 0}, {60.0, -hw - 2.0, 1, 0}, {60.0, hw + 6.0, 1, 1},
      {-3.0, 0.0, 1, 0},      {-6.0, 0.0, 1, 1},  // before the road's start
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    CHECK_OK(srl_env_reset(env, 3, obs));
    double x = g->x0 + cases[k].s * cos(h) - cases[k].lat * sin(h);
    double y = g->y0 + cases[k].s * sin(h) + cases[k].lat * cos(h);
    srl_driving_place_ego(d, x, y, h, 1.0);
    CHECK_OK(srl_env_step(env, act, obs, &st));
    if (st.cost != cases[k].cost || st.terminated != cases[k].terminated)
      fprintf(stderr, "  case %zu: s %g lateral %g: cost %g terminated %d\n", k, cases[k].s,
              cases[k].lat, (double)st.cost, st.terminated);
    CHECK_CLOSE(st.cost, cases[k].cost, 0, 0);
    CHECK_CLOSE(st.info.raw_cost, cases[k].cost, 0, 0);
    CHECK_EQ_INT(st.terminated, cases[k].terminated);
    CHECK(st.reward > -1.0f);  // leaving the road is a cost, not a reward penalty
  }
  srl_env_destroy(env);
}

// the reward the driving vocabulary defines, from a speed, a lateral offset, a heading error and
// the window of |lateral| (this step's included)
static double vocabulary_reward(double v_kmh, double lat, double he, const double *win, int n,
                                double target) {
  double mean = 0, var = 0;
  for (int i = 0; i < n; i++) mean += win[i] / n;
  for (int i = 0; i < n; i++) var += (win[i] - mean) * (win[i] - mean) / n;
  double r_speed = 1.0 - fabs(v_kmh - target) / target;
  double f_center = fmax(1.0 - fabs(lat) / 3.0, 0.0);
  double f_angle = fmax(1.0 - fabs(he) / (M_PI / 2), 0.0);
  double f_std = fmax(1.0 - sqrt(var) / 0.4, 0.0);
  return r_speed * f_center * f_angle * f_std;
}

TEST(reward_terms_on_hand_set_states) {
  srl_env *env = make("SafetyDriving0", "{curvature: 0, target_speed: 25}");
  if (!env) return;
  float obs[OBS];
  CHECK_OK(srl_env_reset(env, 9, obs));
  srl_driving *d = srl_driving_of(env);
  double x, y, h;
  straight_lane_point(&d->road, d->route_lane, 50.0, &x, &y, &h);

  // 1.2 m left, 0.3 rad off, 20 km/h, after five steps at known offsets
  srl_driving_place_ego(d, x - 1.2 * sin(h), y + 1.2 * cos(h), h + 0.3, 20.0 / 3.6);
  double past[5] = {0.1, 0.4, 0.9, 1.0, 1.1};
  d->hist_n = 5, d->hist_pos = 5;
  memcpy(d->hist, past, sizeof past);
  srl_driving_terms t;
  srl_driving_measure(d, &t);
  double win[6] = {0.1, 0.4, 0.9, 1.0, 1.1, 1.2}, mean = 4.7 / 6, var = 0;
  for (int i = 0; i < 6; i++) var += (win[i] - mean) * (win[i] - mean) / 6;
  CHECK_CLOSE(t.speed_kmh, 20.0, 1e-9, 0);
  CHECK_CLOSE(t.lateral, 1.2, 1e-9, 0);
  CHECK_CLOSE(t.heading_error, 0.3, 1e-12, 0);
  CHECK_CLOSE(t.d_std, sqrt(var), 1e-9, 0);
  CHECK_CLOSE(t.r_speed, 0.8, 1e-9, 0);
  CHECK_CLOSE(t.f_center, 0.6, 1e-9, 0);
  CHECK_CLOSE(t.f_angle, 1.0 - 0.3 / (M_PI / 2), 1e-12, 0);
  CHECK_CLOSE(t.f_std, 1.0 - sqrt(var) / 0.4, 1e-9, 0);
  CHECK_CLOSE(t.reward, 0.8 * 0.6 * (1.0 - 0.3 / (M_PI / 2)) * (1.0 - sqrt(var) / 0.4), 1e-9, 0);
  CHECK_CLOSE(t.offroad, 0.0, 0, 0);
  CHECK_EQ_INT(t.collision, 0);

  // the window holds 30 steps: 29 stored plus this one; older entries drop out
  for (int i = 0; i < SRL_DRIVING_STD_WINDOW; i++) d->hist[i] = i == 7 ? 50.0 : 1.2;
  d->hist_n = SRL_DRIVING_STD_WINDOW, d->hist_pos = 7;  // slot 7 is the oldest
  srl_driving_measure(d, &t);
  CHECK_CLOSE(t.d_std, 0.0, 1e-9, 0);
  CHECK_CLOSE(t.f_std, 1.0, 1e-9, 0);

  // too fast, off the centre by more than 3 m, turned across the road: factors clip at 0 but
  // r_speed may go negative
  srl_driving_place_ego(d, x + 3.5 * sin(h), y - 3.5 * cos(h), h - 2.0, 60.0 / 3.6);
  d->hist_n = d->hist_pos = 0;
  srl_driving_measure(d, &t);
  CHECK_CLOSE(t.r_speed, 1.0 - 35.0 / 25.0, 1e-9, 0);
  CHECK_CLOSE(t.f_center, 0.0, 0, 0);
  CHECK_CLOSE(t.f_angle, 0.0, 0, 0);
  CHECK_CLOSE(t.reward, 0.0, 1e-12, 0);
  srl_env_destroy(env);
}

TEST(reward_equals_the_formula_over_rollouts) {
  srl_env *env = make("SafetyDriving1", NULL);
  if (!env) return;
  float obs[OBS], act[2];
  srl_step st;
  double win[SRL_DRIVING_STD_WINDOW];
  int n = 0, pos = 0, compared = 0, bad = 0, outside = 0;
  uint64_t seed = 21;
  CHECK_OK(srl_env_reset(env, seed, obs));
  for (int k = 0; k < 3000; k++) {
    // mostly forward, some steering: wanders off the lane centre and sometimes off the road
    act[0] = 0.6f * noise(1, k) - 0.05f * obs[SRL_DRIVING_OBS_LATERAL];
    act[1] = 0.3f + 0.6f * noise(2, k);
    CHECK_OK(srl_env_step(env, act, obs, &st));
    for (int i = 0; i < OBS; i++)
      outside += obs[i] < env->obs_space.low[i] || obs[i] > env->obs_space.high[i];
    win[pos] = fabs(obs[SRL_DRIVING_OBS_LATERAL]);
    pos = (pos + 1) % SRL_DRIVING_STD_WINDOW;
    if (n < SRL_DRIVING_STD_WINDOW) n++;
    if (st.reward != SRL_DRIVING_COLLISION_REWARD) {
      double r = vocabulary_reward(obs[SRL_DRIVING_OBS_SPEED], obs[SRL_DRIVING_OBS_LATERAL],
                                   obs[SRL_DRIVING_OBS_HEADING], win, n, 25.0);
      bad += fabs(r - st.reward) > 1e-4;
      compared++;
    }
    CHECK_CLOSE(st.info.x_velocity, obs[SRL_DRIVING_OBS_SPEED] / 3.6, 1e-4, 1e-5);
    CHECK_CLOSE(st.info.raw_cost, st.cost, 0, 0);
    if (st.terminated || st.truncated) {
      CHECK_OK(srl_env_reset(env, ++seed, obs));
      n = pos = 0;
    }
  }
  CHECK(compared > 2500);
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(outside, 0);
  srl_env_destroy(env);
}

TEST(route_end_is_the_goal) {
  srl_env *env = make("SafetyDriving0", "{curvature: 0, route_length: 100}");
  if (!env) return;
  float obs[OBS], act[2] = {0.0f, 0.0f};
  srl_step st;
  CHECK_OK(srl_env_reset(env, 4, obs));
  srl_driving *d = srl_driving_of(env);
  double x, y, h;
  // 1.5 m short of the end at 10 m/s: the step covers 0.67 m, within the 1 m tolerance
  double s = srl_road_from_lane(&d->road, d->route_lane, d->route_sigma1 - 1.5);
  straight_lane_point(&d->road, d->route_lane, s, &x, &y, &h);
  srl_driving_place_ego(d, x, y, h, 10.0);
  CHECK_OK(srl_env_step(env, act, obs, &st));
  CHECK_EQ_INT(st.info.goal_met, 1);
  CHECK_EQ_INT(st.terminated, 1);
  CHECK_CLOSE(st.cost, 0.0, 0, 0);
  CHECK(st.reward > 0.0f);
  srl_env_destroy(env);
}

// follow the route: steer towards the fourth waypoint (steer > 0 turns right), hold the speed
static void route_follower(const float *obs, float act[2], double target_kmh) {
  const float *w = obs + SRL_DRIVING_OBS_WAYPOINTS + 2 * 3;
  double alpha = atan2(w[1], w[0]);  // > 0: the route bends left
  double s = -2.5 * alpha;
  act[0] = (float)(s > 1 ? 1 : s < -1 ? -1 : s);
  double e = 0.3 * (target_kmh - obs[SRL_DRIVING_OBS_SPEED]);
  act[1] = (float)(e > 1 ? 1 : e < -1 ? -1 : e);
}

TEST(a_route_follower_reaches_the_goal_without_cost) {
  srl_env *env = make("SafetyDriving0", "{route_length: 250, curvature: 0.04}");
  if (!env) return;
  float obs[OBS], act[2];
  srl_step st;
  for (uint64_t seed = 0; seed < 3; seed++) {
    CHECK_OK(srl_env_reset(env, seed, obs));
    double ret = 0, cost = 0, max_lat = 0;
    int k = 0, goal = 0;
    for (; k < 1000; k++) {
      route_follower(obs, act, 25.0);
      CHECK_OK(srl_env_step(env, act, obs, &st));
      ret += st.reward, cost += st.cost;
      max_lat = fmax(max_lat, fabs(obs[SRL_DRIVING_OBS_LATERAL]));
      if (st.terminated || st.truncated) {
        goal = st.info.goal_met;
        break;
      }
    }
    if (!goal || cost > 0 || max_lat > 1.5)
      fprintf(stderr, "  seed %llu: %d steps, return %.1f, cost %g, max |lateral| %.2f\n",
              (unsigned long long)seed, k + 1, ret, cost, max_lat);
    CHECK_EQ_INT(goal, 1);
    CHECK_CLOSE(cost, 0.0, 0, 0);
    CHECK(max_lat < 1.5);        // it cuts bends by up to about a metre, staying on the road
    CHECK(ret > 0.7 * (k + 1));  // near the target speed on the centre most of the way
  }
  srl_env_destroy(env);
}

TEST(divergence_is_data) {
  srl_env *env = make("SafetyDriving0", NULL);
  if (!env) return;
  float obs[OBS], act[2] = {0.5f, 0.5f};
  srl_step st;
  CHECK_OK(srl_env_reset(env, 0, obs));
  srl_driving_of(env)->ego.speed = NAN;
  CHECK_OK(srl_env_step(env, act, obs, &st));
  CHECK_EQ_INT(st.info.diverged, 1);
  CHECK_EQ_INT(st.truncated, 1);
  CHECK_CLOSE(st.reward, -10.0, 0, 0);
  CHECK_CLOSE(st.cost, 1.0, 0, 0);
  int finite = 1;
  for (int i = 0; i < OBS; i++) finite &= isfinite(obs[i]);
  CHECK(finite);
  // the next episode is normal
  CHECK_OK(srl_env_reset(env, 1, obs));
  CHECK_OK(srl_env_step(env, act, obs, &st));
  CHECK_EQ_INT(st.info.diverged, 0);
  srl_env_destroy(env);
}

//---- traffic -----------------------------------------------------------------------------------

TEST(traffic_never_collides_among_itself) {
  srl_env *env = make("SafetyDriving2", "{max_offroad: 1000}");
  if (!env) return;
  float obs[OBS], act[2] = {0.0f, -1.0f};
  srl_step st;
  CHECK_OK(srl_env_reset(env, 11, obs));
  srl_driving *d = srl_driving_of(env);
  int active0 = 0;
  for (int i = 0; i < d->n_cars; i++) active0 += d->cars[i].active;
  CHECK(active0 >= 35);

  // the ego parked 200 m beside the road, braking
  srl_road_point p;
  srl_road_pose(&d->road, 100.0, 200.0, &p);
  srl_driving_place_ego(d, p.x, p.y, p.heading, 0.0);
  int overlaps = 0, ego_hits = 0, order_bad = 0;
  double speed_sum = 0;
  long long speed_n = 0;
  for (int k = 0; k < 6000; k++) {  // 400 s
    CHECK_OK(srl_env_step(env, act, obs, &st));
    ego_hits += st.reward == SRL_DRIVING_COLLISION_REWARD;
    for (int i = 0; i < d->n_cars; i++) {
      if (!d->cars[i].active) continue;
      speed_sum += d->cars[i].v, speed_n++;
      srl_obb a = srl_driving_car_box(d, i);
      for (int j = i + 1; j < d->n_cars; j++) {
        if (!d->cars[j].active) continue;
        srl_obb b = srl_driving_car_box(d, j);
        overlaps += srl_obb_overlap(&a, &b);
      }
    }
    // each lane stays ordered with positive bumper gaps
    for (int l = 0; l < d->road.lanes; l++)
      for (int m = 1; m < d->lane_n[l]; m++)
        order_bad += d->cars[d->order[l][m]].sigma - d->cars[d->order[l][m - 1]].sigma <=
                     SRL_DRIVING_CAR_LENGTH;
  }
  CHECK_EQ_INT(overlaps, 0);
  CHECK_EQ_INT(ego_hits, 0);
  CHECK_EQ_INT(order_bad, 0);
  CHECK(d->respawns > 20);           // cars left the road's end and came back at its start
  CHECK(speed_sum / speed_n > 4.0);  // and traffic kept flowing (25 km/h ≈ 6.9 m/s desired)
  printf("  traffic: 6000 steps, %lld re-entries, mean speed %.2f m/s\n", d->respawns,
         speed_sum / speed_n);
  srl_env_destroy(env);
}

TEST(traffic_brakes_for_the_ego) {
  // the ego stopped on its lane: the car behind it stops short of it instead of hitting it
  srl_env *env = make("SafetyDriving1", "{curvature: 0, traffic: 1, lanes: 1}");
  if (!env) return;
  float obs[OBS], act[2] = {0.0f, -1.0f};
  srl_step st;
  CHECK_OK(srl_env_reset(env, 2, obs));
  srl_driving *d = srl_driving_of(env);
  srl_driving_car *c = &d->cars[0];
  CHECK_EQ_INT(c->active, 1);
  // move the ego 40 m ahead of the car
  double x, y, h;
  straight_lane_point(&d->road, 0, c->sigma + 40.0, &x, &y, &h);
  srl_driving_place_ego(d, x, y, h, 0.0);
  int hits = 0;
  for (int k = 0; k < 600; k++) {
    CHECK_OK(srl_env_step(env, act, obs, &st));
    hits += st.reward == SRL_DRIVING_COLLISION_REWARD;
  }
  CHECK_EQ_INT(hits, 0);
  CHECK(c->v < 0.05);
  srl_road_point p;
  srl_obb e = srl_driving_ego_box(d);
  srl_road_project(&d->road, e.x, e.y, -1, &p);
  double gap = srl_road_to_lane(&d->road, 0, p.s) - c->sigma - SRL_DRIVING_CAR_LENGTH;
  CHECK(gap > 1.0 && gap < 4.0);                             // near the jam distance s0 = 2 m
  CHECK_CLOSE(obs[SRL_DRIVING_OBS_AHEAD_DIST], 50.0, 0, 0);  // nothing ahead of the ego
  srl_env_destroy(env);
}

TEST(vehicle_ahead_observation) {
  srl_env *env = make("SafetyDriving1", "{curvature: 0, traffic: 1, lanes: 2}");
  if (!env) return;
  float obs[OBS];
  CHECK_OK(srl_env_reset(env, 2, obs));
  srl_driving *d = srl_driving_of(env);
  srl_driving_car *c = &d->cars[0];
  CHECK_EQ_INT(c->active, 1);
  // the ego 12 m behind the car in the car's lane at 3 m/s: distance 12, dv = v - 3
  double x, y, h;
  straight_lane_point(&d->road, c->lane, c->sigma - 12.0, &x, &y, &h);
  srl_driving_place_ego(d, x, y, h, 3.0);
  srl_driving_observe(d, obs);
  CHECK_CLOSE(obs[SRL_DRIVING_OBS_AHEAD_DIST], 12.0, 1e-4, 0);
  CHECK_CLOSE(obs[SRL_DRIVING_OBS_AHEAD_DV], c->v - 3.0, 1e-5, 0);
  // 60 m behind: beyond the cap
  straight_lane_point(&d->road, c->lane, c->sigma - 60.0, &x, &y, &h);
  srl_driving_place_ego(d, x, y, h, 3.0);
  srl_driving_observe(d, obs);
  CHECK_CLOSE(obs[SRL_DRIVING_OBS_AHEAD_DIST], 50.0, 0, 0);
  CHECK_CLOSE(obs[SRL_DRIVING_OBS_AHEAD_DV], 0.0, 0, 0);
  // in the other lane, level with it: nothing ahead in the ego's lane
  straight_lane_point(&d->road, 1 - c->lane, c->sigma - 12.0, &x, &y, &h);
  srl_driving_place_ego(d, x, y, h, 3.0);
  srl_driving_observe(d, obs);
  CHECK_CLOSE(obs[SRL_DRIVING_OBS_AHEAD_DIST], 50.0, 0, 0);
  srl_env_destroy(env);
}

//---- determinism, registry, options ------------------------------------------------------------

TEST(same_seed_same_stream) {
  srl_env *a = make("SafetyDriving2", NULL), *b = make("SafetyDriving2", NULL);
  srl_env *c = make("SafetyDriving2", NULL);
  if (!a || !b || !c) return;
  float oa[OBS], ob[OBS], oc[OBS], act[2];
  srl_step sa, sb, sc;
  CHECK_OK(srl_env_reset(a, 42, oa));
  CHECK_OK(srl_env_reset(b, 42, ob));
  CHECK_OK(srl_env_reset(c, 43, oc));
  int same = 1, differs = memcmp(oa, oc, sizeof oa) != 0;
  uint64_t seed = 42, seed_c = 43;
  for (int k = 0; k < 1500; k++) {
    act[0] = 0.5f * noise(7, k), act[1] = 0.4f + 0.5f * noise(8, k);
    CHECK_OK(srl_env_step(a, act, oa, &sa));
    CHECK_OK(srl_env_step(b, act, ob, &sb));
    CHECK_OK(srl_env_step(c, act, oc, &sc));
    same &= !memcmp(oa, ob, sizeof oa) && sa.reward == sb.reward && sa.cost == sb.cost &&
            sa.terminated == sb.terminated && sa.truncated == sb.truncated;
    differs |= memcmp(oa, oc, sizeof oa) != 0;
    if (sa.terminated || sa.truncated) {
      CHECK_OK(srl_env_reset(a, ++seed, oa));
      CHECK_OK(srl_env_reset(b, seed, ob));
    }
    if (sc.terminated || sc.truncated) CHECK_OK(srl_env_reset(c, ++seed_c, oc));
  }
  CHECK(same);
  CHECK(differs);
  // a reset repeats the episode's start exactly; another seed draws another road
  CHECK_OK(srl_env_reset(a, 5, oa));
  srl_road_segment first = srl_driving_of(a)->road.seg[1];
  CHECK_OK(srl_env_reset(b, 6, ob));
  CHECK_OK(srl_env_reset(a, 5, oc));
  CHECK(!memcmp(oa, oc, sizeof oa));
  CHECK(!memcmp(&first, &srl_driving_of(a)->road.seg[1], sizeof first));
  CHECK(memcmp(&first, &srl_driving_of(b)->road.seg[1], sizeof first) != 0);
  srl_env_destroy(a);
  srl_env_destroy(b);
  srl_env_destroy(c);
}

TEST(registry_and_options) {
  const char *ids[3] = {"SafetyDriving0", "SafetyDriving1", "SafetyDriving2"};
  const int traffic[3] = {0, 20, 40};
  for (int i = 0; i < 3; i++) {
    const srl_env_spec *s = srl_env_find(ids[i]);
    CHECK(s != NULL);
    if (!s) continue;
    CHECK_EQ_INT(s->obs_dim, 37);
    CHECK_EQ_INT(s->act_dim, 2);
    CHECK_EQ_INT(s->max_episode_steps, 1000);
    srl_env *env = make(ids[i], NULL);
    if (!env) continue;
    CHECK_EQ_INT(env->max_episode_steps, 1000);
    CHECK_EQ_INT(srl_driving_of(env)->n_cars, traffic[i]);
    CHECK_CLOSE(srl_driving_of(env)->o.dt, 1.0 / 15.0, 1e-15, 0);
    CHECK_CLOSE(srl_driving_of(env)->o.target_speed, 25.0, 0, 0);
    CHECK(!strcmp(env->id, ids[i]));
    int w = 0, h = 0;
    CHECK_OK(srl_driving_image_size(env, &w, &h));
    CHECK_EQ_INT(w, 224);
    CHECK_EQ_INT(h, 224);
    srl_env_destroy(env);
  }

  // options: lanes, curvature, traffic, target speed, image size, route length
  srl_env *env = make("SafetyDriving1",
                      "{lanes: 2, curvature: 0.03, traffic: 7, target_speed: 40, "
                      "image_width: 160, image_height: 96, route_length: 300}");
  if (env) {
    srl_driving *d = srl_driving_of(env);
    CHECK_EQ_INT(d->road.lanes, 2);
    CHECK_EQ_INT(d->n_cars, 7);
    CHECK_CLOSE(d->route_sigma1 - d->route_sigma0, 300.0, 1e-9, 0);
    int w, h;
    CHECK_OK(srl_driving_image_size(env, &w, &h));
    CHECK_EQ_INT(w, 160);
    CHECK_EQ_INT(h, 96);
    double max_k = 0;
    for (int i = 0; i < d->road.n_seg; i++) max_k = fmax(max_k, fabs(d->road.seg[i].curvature));
    CHECK(max_k > 0.0 && max_k <= 0.03);
    srl_env_destroy(env);
  }
  env = (srl_env *)1;
  CHECK_ERR(srl_env_create(&env, "SafetyDriving0", "{lanes: 9}"), SRL_ECONFIG);
  CHECK_ERRMSG("lanes");
  CHECK(env == NULL);
  CHECK_ERR(srl_env_create(&env, "SafetyDriving0", "{curvature: 0.1}"), SRL_ECONFIG);
  CHECK_ERRMSG("too tight");
  CHECK_ERR(srl_env_create(&env, "SafetyDriving2", "{trafic: 3}"), SRL_ECONFIG);
  CHECK_ERRMSG("SafetyDriving2");
  CHECK_ERRMSG("traffic");
  srl_env *point = make("SimplePointGoal", NULL);
  if (point) {
    CHECK(srl_driving_of(point) == NULL);
    CHECK_ERR(srl_driving_image_size(point, NULL, NULL), SRL_EINVAL);
    srl_env_destroy(point);
  }
}

//---- render ------------------------------------------------------------------------------------

static const uint8_t *pixel(const uint8_t *rgb, int w, int col, int row) {
  return rgb + ((size_t)row * w + col) * 3;
}

static int is(const uint8_t *p, int r, int g, int b) {
  return p[0] == r && p[1] == g && p[2] == b;
}

#define IS(p, rgb) is((p), rgb)

// the pixel of an ego-frame point (x forward, y left) under the follow camera
static void follow_px(const srl_driving *d, int w, int h, double x, double y, int *col, int *row) {
  double ppm = w / d->o.view_width;
  *col = (int)floor(0.5 * w - y * ppm);
  *row = (int)floor(0.5 * h - (x - d->o.view_ahead) * ppm);
}

TEST(render_top_down) {
  enum { W = 224, H = 224 };
  static uint8_t rgb[W * H * 3], big[480 * 480 * 3];
  srl_env *env = make("SafetyDriving0", "{curvature: 0}");
  if (!env) return;
  float obs[OBS];
  CHECK_OK(srl_env_reset(env, 2, obs));
  srl_driving *d = srl_driving_of(env);
  CHECK_OK(srl_env_render(env, rgb, W, H, NULL));
  int col, row;

  // the ego at its centre (ego frame origin), the road 15 m ahead on the lane centre
  follow_px(d, W, H, 0.0, 0.0, &col, &row);
  CHECK_EQ_INT(col, 112);
  CHECK_EQ_INT(row, 156);  // 8 m behind the image centre at 5.6 px/m
  CHECK(IS(pixel(rgb, W, col, row), SRL_DRIVING_RGB_EGO));
  CHECK(IS(pixel(rgb, W, col + 4, row + 10), SRL_DRIVING_RGB_EGO));  // within its 1.9 × 4.5 m
  CHECK(!IS(pixel(rgb, W, col, row - 18), SRL_DRIVING_RGB_EGO));     // past its front
  follow_px(d, W, H, 15.0, 0.0, &col, &row);
  CHECK(IS(pixel(rgb, W, col, row), SRL_DRIVING_RGB_ROAD));

  // the road's left edge line, and grass 3 m beyond the edge
  double hw = 0.5 * d->road.lanes * d->road.lane_width;
  double lc = srl_road_lane_center(&d->road, d->route_lane);
  double lw = fmax(0.15, 1.2 / (W / d->o.view_width));
  follow_px(d, W, H, 15.0, hw - 0.1 - 0.5 * lw - lc, &col, &row);
  CHECK(IS(pixel(rgb, W, col, row), SRL_DRIVING_RGB_MARKING));
  follow_px(d, W, H, 15.0, hw + 3.0 - lc, &col, &row);
  CHECK(IS(pixel(rgb, W, col, row), SRL_DRIVING_RGB_GRASS));
  follow_px(d, W, H, 15.0, -hw - 3.0 - lc, &col, &row);
  CHECK(IS(pixel(rgb, W, col, row), SRL_DRIVING_RGB_GRASS));

  // the same view at 480 × 480 shows the same metres
  CHECK_OK(srl_env_render(env, big, 480, 480, "follow"));
  follow_px(d, 480, 480, 0.0, 0.0, &col, &row);
  CHECK_EQ_INT(row, 336);
  CHECK(IS(pixel(big, 480, col, row), SRL_DRIVING_RGB_EGO));
  follow_px(d, 480, 480, 15.0, 0.0, &col, &row);
  CHECK(IS(pixel(big, 480, col, row), SRL_DRIVING_RGB_ROAD));

  // the top camera keeps +y up: the ego sits view_ahead metres back along its heading
  CHECK_OK(srl_env_render(env, rgb, W, H, "top"));
  double th = d->ego.heading, ppm = W / d->o.view_width;
  col = (int)floor(112.0 - d->o.view_ahead * cos(th) * ppm);
  row = (int)floor(112.0 + d->o.view_ahead * sin(th) * ppm);
  CHECK(IS(pixel(rgb, W, col, row), SRL_DRIVING_RGB_EGO));
  CHECK_ERR(srl_env_render(env, rgb, W, H, "nope"), SRL_ENOTFOUND);
  CHECK_ERRMSG("nope");
  srl_env_destroy(env);

  // traffic shows in its own colours
  env = make("SafetyDriving2", "{view_width: 200}");
  if (!env) return;
  CHECK_OK(srl_env_reset(env, 3, obs));
  d = srl_driving_of(env);
  CHECK_OK(srl_env_render(env, rgb, W, H, "follow"));
  int seen = 0, drawn = 0;
  srl_obb e = srl_driving_ego_box(d);
  for (int i = 0; i < d->n_cars; i++) {
    if (!d->cars[i].active) continue;
    double dx = d->cars[i].x - e.x, dy = d->cars[i].y - e.y;
    double x = dx * cos(e.heading) + dy * sin(e.heading);
    double y = -dx * sin(e.heading) + dy * cos(e.heading);
    follow_px(d, W, H, x, y, &col, &row);
    if (col < 2 || col >= W - 2 || row < 2 || row >= H - 2) continue;
    seen++;
    const uint8_t *p = pixel(rgb, W, col, row);
    drawn += !IS(p, SRL_DRIVING_RGB_ROAD) && !IS(p, SRL_DRIVING_RGB_GRASS) &&
             !IS(p, SRL_DRIVING_RGB_MARKING);
  }
  CHECK(seen >= 3);
  CHECK_EQ_INT(drawn, seen);
  srl_env_destroy(env);
}

//---- speed -------------------------------------------------------------------------------------

TEST(speed_of_safety_driving1) {
  srl_env *env = make("SafetyDriving1", NULL);
  if (!env) return;
  float obs[OBS], act[2];
  srl_step st;
  uint64_t seed = 0;
  CHECK_OK(srl_env_reset(env, seed, obs));
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long steps = 0;
  double elapsed = 0;
  while (elapsed < 1.0) {
    for (int k = 0; k < 1000; k++, steps++) {
      act[0] = 0.3f * noise(3, steps) - 0.05f * obs[SRL_DRIVING_OBS_LATERAL];
      act[1] = 0.3f + 0.5f * noise(4, steps);
      srl_env_step(env, act, obs, &st);
      if (st.terminated || st.truncated) srl_env_reset(env, ++seed, obs);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    elapsed = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
  }
  double rate = steps / elapsed;
  printf("  SafetyDriving1: %.0f steps/s on one core (%ld steps, %llu resets)\n", rate, steps,
         (unsigned long long)seed);
  CHECK(rate > 5000.0);  // tens of thousands in an optimised build
  srl_env_destroy(env);
}

int main(void) {
  RUN(bicycle_constant_steer_drives_the_circle);
  RUN(bicycle_speed_limits);
  RUN(idm_accelerations);
  RUN(oriented_box_overlap);
  RUN(road_arc_length_and_projection);
  RUN(observation_geometry_signs_and_waypoints);
  RUN(collision_terminates_with_penalty);
  RUN(leaving_the_road_costs);
  RUN(reward_terms_on_hand_set_states);
  RUN(reward_equals_the_formula_over_rollouts);
  RUN(route_end_is_the_goal);
  RUN(a_route_follower_reaches_the_goal_without_cost);
  RUN(divergence_is_data);
  RUN(traffic_never_collides_among_itself);
  RUN(traffic_brakes_for_the_ego);
  RUN(vehicle_ahead_observation);
  RUN(same_seed_same_stream);
  RUN(registry_and_options);
  RUN(render_top_down);
  RUN(speed_of_safety_driving1);
  return TEST_REPORT();
}

// driving.h: the built-in 2-D driving task (SafetyDriving0/1/2): multi-lane roads made of
// straight and constant-curvature segments, a kinematic bicycle ego vehicle, traffic that follows
// its lane with the Intelligent Driver Model, oriented-box collisions, and a top-down RGB raster.
//
// It speaks the driving vocabulary of the wire protocol (docs/protocol.md), the same as the CARLA
// adapter (bridges/carla/): a 37-float observation (last steer and throttle, speed in km/h,
// lateral offset and heading error against the route, 15 route waypoints 2 m apart in the ego
// frame, distance and relative speed of the vehicle ahead in the ego lane), actions
// [steer, throttle] in [-1, 1]² (steer > 0 turns right, as CARLA's VehicleControl; throttle < 0
// brakes), VLM-RL's hierarchical reward with the desired speed fixed at the target speed, cost 1
// on a collision or with the ego's centre off the drivable road.
//
// Frames: world x, y in metres with headings counter-clockwise from +x. A road point is (s, d):
// s the arc length along the road's reference line (its centre), d the signed lateral offset,
// positive to the left. Lane 0 is the rightmost; every lane runs in the direction of growing s.
// A lane's own arc length (sigma) differs from s on curves by the factor 1 - curvature·offset.
//
// The structs are public so tests and tools can read and hand-set states; the functions below
// are the task's building blocks (road.c, vehicle.c, driving.c, raster.c).
#ifndef SRL_ENVS_DRIVING_H
#define SRL_ENVS_DRIVING_H

#include <stdint.h>

#include "envs/env.h"

#ifdef __cplusplus
extern "C" {
#endif

//---- roads (road.c) ---------------------------------------------------------------------------

#define SRL_ROAD_MAX_SEGMENTS 512
#define SRL_ROAD_MAX_LANES 8

// a piece of the reference line: straight (curvature 0) or a circular arc
typedef struct srl_road_segment {
  double s0;          // arc length of the reference line at the segment's start (m)
  double length;      // arc length of the segment (m)
  double curvature;   // 1/m, positive turning left
  double x0, y0, h0;  // start pose of the reference line (m, m, rad)
} srl_road_segment;

typedef struct srl_road {
  int n_seg;
  int lanes;
  double lane_width;  // m
  double length;      // arc length of the reference line (m)
  double x_end, y_end, h_end;
  srl_road_segment seg[SRL_ROAD_MAX_SEGMENTS];
  // arc length along each lane's centre at each segment start; [lane][n_seg] is the lane length
  double lane_s0[SRL_ROAD_MAX_LANES][SRL_ROAD_MAX_SEGMENTS + 1];
} srl_road;

// a point of the road (or of its straight extensions beyond both ends) and the frame there
typedef struct srl_road_point {
  double s, d;       // arc length (m; < 0 or > length beyond the ends) and lateral offset (m)
  double x, y;       // world position (m)
  double heading;    // reference-line heading at s (rad)
  double curvature;  // reference-line curvature at s (1/m; 0 beyond the ends)
  int seg;           // segment index
} srl_road_point;

// an empty road starting at pose (x0, y0, h0); lanes in [1, SRL_ROAD_MAX_LANES]
int srl_road_init(srl_road *r, int lanes, double lane_width, double x0, double y0, double h0);
// append a segment; an arc must keep its inner road edge at a positive radius (|k|·half width
// <= 0.5) and turn at most pi
int srl_road_add(srl_road *r, double length, double curvature);
double srl_road_half_width(const srl_road *r);
// the lateral offset of lane's centre (lane 0 rightmost)
double srl_road_lane_center(const srl_road *r, int lane);
// the lane containing lateral offset d, clamped to [0, lanes - 1]
int srl_road_lane_at(const srl_road *r, double d);
// the segment holding arc length s (clamped to the first or last)
int srl_road_segment_at(const srl_road *r, double s);
// the world pose of road point (s, d); beyond the ends the road continues straight
void srl_road_pose(const srl_road *r, double s, double d, srl_road_point *out);
// the nearest road point to (x, y): s, signed d and the frame there; hint is a segment to search
// around first (-1: search all); returns the segment index (the next hint)
int srl_road_project(const srl_road *r, double x, double y, int hint, srl_road_point *out);
// lane arc length <-> reference arc length (straight extensions map one to one)
double srl_road_lane_length(const srl_road *r, int lane);
double srl_road_to_lane(const srl_road *r, int lane, double s);
double srl_road_from_lane(const srl_road *r, int lane, double sigma);

//---- vehicles (vehicle.c) ---------------------------------------------------------------------

// kinematic bicycle: the state is the rear-axle midpoint, which moves along the heading; with a
// constant front-wheel angle delta it drives a circle of radius wheelbase / tan(delta)
typedef struct srl_bicycle_params {
  double wheelbase;  // m
  double max_steer;  // front-wheel angle at full steer (rad)
  double max_accel;  // m/s² at full throttle from rest
  double max_brake;  // m/s² at full brake
  double top_speed;  // m/s; the throttle's push fades linearly to 0 at this speed
  double rolling;    // m/s² of rolling resistance while moving
} srl_bicycle_params;

typedef struct srl_bicycle {
  double x, y;     // rear-axle midpoint (m)
  double heading;  // rad, counter-clockwise from +x
  double speed;    // m/s, never negative
} srl_bicycle;

// one step of dt seconds with front-wheel angle delta (rad, positive left), throttle and brake
// in [0, 1]: acceleration a = max_accel·throttle·(1 - v/top_speed) - max_brake·brake - rolling,
// held over the step, the speed stopping at 0; the path over the step is the exact arc
void srl_bicycle_step(srl_bicycle *b, const srl_bicycle_params *p, double delta, double throttle,
                      double brake, double dt);

// Intelligent Driver Model (Treiber, Hennecke, Helbing 2000), acceleration exponent 4
typedef struct srl_idm_params {
  double a;          // maximum acceleration (m/s²)
  double b;          // comfortable deceleration (m/s²)
  double T;          // desired time headway (s)
  double s0;         // jam distance (m)
  double decel_max;  // the physical braking limit the result is clipped to (m/s²)
} srl_idm_params;

// acceleration at speed v with desired speed v0, bumper-to-bumper gap to the leader and
// approach rate dv = v - v_leader; gap = INFINITY on a free road
double srl_idm_accel(const srl_idm_params *p, double v0, double v, double gap, double dv);

// an oriented box: centre, heading, half extents along and across the heading
typedef struct srl_obb {
  double x, y, heading, half_length, half_width;
} srl_obb;

// 1 when the boxes intersect or touch (separating-axis test on the four edge normals), else 0
int srl_obb_overlap(const srl_obb *a, const srl_obb *b);
// the corners, counter-clockwise from front-left: xy[2k], xy[2k+1]
void srl_obb_corners(const srl_obb *b, double xy[8]);

//---- the task (driving.c) ---------------------------------------------------------------------

#define SRL_DRIVING_OBS 37
#define SRL_DRIVING_ACT 2
#define SRL_DRIVING_STEPS 1000    // the registered time limit
#define SRL_DRIVING_WAYPOINTS 15  // route waypoints in the observation
#define SRL_DRIVING_WAYPOINT_SPACING 2.0
#define SRL_DRIVING_AHEAD_CAP 50.0  // m; the distance to the vehicle ahead is capped here
#define SRL_DRIVING_STD_WINDOW 30   // steps of lateral offset behind f_std
#define SRL_DRIVING_MAX_CENTER 3.0  // m; f_center reaches 0 here
#define SRL_DRIVING_STD_SCALE 0.4   // m; f_std reaches 0 at this standard deviation
#define SRL_DRIVING_COLLISION_REWARD (-10.0f)
#define SRL_DRIVING_STEER_KEEP 0.75     // applied steer = 0.75·previous + 0.25·new
#define SRL_DRIVING_GOAL_TOLERANCE 1.0  // m of route progress short of its end that count as done
#define SRL_DRIVING_MAX_TRAFFIC 128
#define SRL_DRIVING_CAR_LENGTH 4.5  // m, every vehicle
#define SRL_DRIVING_CAR_WIDTH 1.9   // m

// observation layout
enum {
  SRL_DRIVING_OBS_STEER = 0,
  SRL_DRIVING_OBS_THROTTLE = 1,
  SRL_DRIVING_OBS_SPEED = 2,      // km/h
  SRL_DRIVING_OBS_LATERAL = 3,    // m from the route lane's centre, + left
  SRL_DRIVING_OBS_HEADING = 4,    // rad against the route, + pointing left of it
  SRL_DRIVING_OBS_WAYPOINTS = 5,  // (x0, y0, ..., x14, y14) ego frame, x forward, y left
  SRL_DRIVING_OBS_AHEAD_DIST = 35,
  SRL_DRIVING_OBS_AHEAD_DV = 36,
};

// options (YAML keys of the same names; see driving.c for ranges and help)
typedef struct srl_driving_opts {
  int lanes;
  double lane_width;              // m
  double curvature;               // largest curvature of the road's arcs (1/m); 0: straight
  int traffic;                    // vehicles besides the ego
  double target_speed;            // km/h: the reward's desired speed
  double traffic_speed;           // km/h: mean desired speed of the traffic
  double traffic_speed_spread;    // desired speeds are uniform in mean·(1 ± spread)
  double route_length;            // m along the route lane
  double dt;                      // s per step
  int image_width, image_height;  // the image size offered to bridges and image rewards
  double view_width;              // m across the rendered image
  double view_ahead;              // m from the ego's centre to the image centre, forwards
  double max_offroad;             // m off the road (centre beyond the edge) that ends the episode
  double start_speed;             // km/h of the ego at reset
  double wheelbase, max_steer_deg, max_accel, max_brake;
} srl_driving_opts;

// a traffic vehicle; it stays on its lane's centre line
typedef struct srl_driving_car {
  int lane;
  int active;            // 0 while waiting at the road's start for room to enter
  double sigma;          // arc length along its lane (centre of the car)
  double v, v0;          // speed and desired speed (m/s)
  double x, y, heading;  // world pose of its centre, kept in step with sigma
} srl_driving_car;

// what one evaluation of the ego's state gives: the measurements and VLM-RL's reward terms
typedef struct srl_driving_terms {
  double speed_kmh;
  double lateral;        // from the route lane's centre (m, + left)
  double heading_error;  // rad in (-pi, pi], + pointing left of the route
  double d_std;          // population std of |lateral| over the window (this step included)
  double r_speed, f_center, f_angle, f_std, reward;  // reward = the product of the four
  double progress;  // m along the route lane from the route's start
  double offroad;   // m the ego's centre lies outside the road (0 on it)
  int collision;    // the ego's box overlaps a vehicle
} srl_driving_terms;

typedef struct srl_driving {
  srl_driving_opts o;
  srl_bicycle_params ego_p;
  srl_idm_params idm;
  srl_road road;
  srl_bicycle ego;         // rear axle
  double steer, throttle;  // last applied (steer in CARLA's sign: + right)
  int route_lane;
  double route_sigma0;                  // the route: its lane's arc length from route_sigma0 on ...
  double route_sigma1;                  // ... to route_sigma1 = route_sigma0 + route_length
  int hint;                             // segment of the ego's last projection
  double hist[SRL_DRIVING_STD_WINDOW];  // |lateral| of the last steps (ring)
  int hist_n, hist_pos;
  int n_cars;
  srl_driving_car cars[SRL_DRIVING_MAX_TRAFFIC];
  int lane_n[SRL_ROAD_MAX_LANES];  // cars on each lane (active ones; waiting cars are in none)
  int order[SRL_ROAD_MAX_LANES][SRL_DRIVING_MAX_TRAFFIC];  // per lane, by sigma ascending
  long long respawns;  // cars that left the road's end and re-entered at its start
  float obs_low[SRL_DRIVING_OBS], obs_high[SRL_DRIVING_OBS];
  float act_low[SRL_DRIVING_ACT], act_high[SRL_DRIVING_ACT];
} srl_driving;

// the driving task under env's wrappers, or NULL when env is not one
srl_driving *srl_driving_of(srl_env *env);
// the image size the env's options ask for (the size bridges and image rewards render at);
// SRL_EINVAL when env is not a driving task
int srl_driving_image_size(srl_env *env, int *width, int *height);
// the ego's box (centre between the axles) and a car's box
srl_obb srl_driving_ego_box(const srl_driving *d);
srl_obb srl_driving_car_box(const srl_driving *d, int i);
// place the ego with its centre at world (x, y), heading and speed (m/s); tests and tools
void srl_driving_place_ego(srl_driving *d, double x, double y, double heading, double speed);
// evaluate the ego's current state as a step ends: measurements, collision, reward terms (f_std
// over the stored window plus this state); reads the state only
void srl_driving_measure(const srl_driving *d, srl_driving_terms *t);
// write the observation of the current state (obs: SRL_DRIVING_OBS)
void srl_driving_observe(const srl_driving *d, float *obs);
// advance the traffic one step (IDM against the car ahead or the ego, re-entry at the start)
void srl_driving_traffic_step(srl_driving *d);

// create a driving env with `traffic` vehicles unless the options say otherwise
int srl__driving_create(srl_env **out, const char *id, int traffic, const char *options_yaml);

//---- the raster (raster.c) --------------------------------------------------------------------

// colours of the top-down image
#define SRL_DRIVING_RGB_GRASS 86, 118, 66
#define SRL_DRIVING_RGB_ROAD 78, 78, 82
#define SRL_DRIVING_RGB_MARKING 235, 235, 235
#define SRL_DRIVING_RGB_EGO 214, 40, 40

// Draw the scene top-down into rgb (height×width×3, row 0 at the top): camera NULL, "" or
// "follow" turns with the ego (its heading points up), "top" keeps world +y up; both are centred
// view_ahead metres ahead of the ego and show view_width metres across. Unknown cameras are
// SRL_ENOTFOUND. Never allocates.
int srl_driving_render(const srl_driving *d, uint8_t *rgb, int width, int height,
                       const char *camera);

#ifdef __cplusplus
}
#endif
#endif  // SRL_ENVS_DRIVING_H

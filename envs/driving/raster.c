// raster.c: the driving task's top-down RGB image, drawn in pure C: grass, the road surface,
// solid edge lines and dashed lane dividers (3 m dash, 6 m gap), the traffic (one colour per
// vehicle from a palette) and the ego (red), each vehicle with a darker windscreen at its front.
//
// The camera looks straight down at a point view_ahead metres ahead of the ego's centre and shows
// view_width metres across the image whatever its pixel size; "follow" turns with the ego (its
// heading points to the top of the image), "top" keeps world +y up. Shapes are filled as convex
// polygons by scanlines, a pixel belonging to a shape when its centre lies inside; curved road
// pieces are cut into quads that turn at most 0.03 rad each.
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "envs/driving/driving.h"

#define DASH_ON 3.0      // m of paint
#define DASH_PERIOD 9.0  // m from one dash to the next
#define LINE_WIDTH 0.15  // m of a marking (at least 1.2 px wide)
#define PIECE_TURN 0.03  // rad a road quad may turn

// the camera and the target image
typedef struct view {
  uint8_t *rgb;
  int w, h;
  double cx, cy;  // world point at the image centre
  double ux, uy;  // world direction pointing to the image's top
  double ppm;     // pixels per metre
  double radius;  // m from the centre to an image corner
} view;


// world (x, y) to pixel coordinates (column, row; pixel (c, r) covers [c, c+1) × [r, r+1))
static inline void to_px(const view *v, double x, double y, double *px, double *py) {
  double dx = x - v->cx, dy = y - v->cy;
  double fwd = dx * v->ux + dy * v->uy, right = dx * v->uy - dy * v->ux;
  *px = 0.5 * v->w + right * v->ppm;
  *py = 0.5 * v->h - fwd * v->ppm;
}


// fill the convex polygon of n world points with colour c
static void fill_convex(const view *v, const double *wx, const double *wy, int n,
                        const uint8_t c[3]) {
  double px[8], py[8], ymin = INFINITY, ymax = -INFINITY, xmin = INFINITY, xmax = -INFINITY;
  for (int i = 0; i < n; i++) {
    to_px(v, wx[i], wy[i], &px[i], &py[i]);
    ymin = fmin(ymin, py[i]), ymax = fmax(ymax, py[i]);
    xmin = fmin(xmin, px[i]), xmax = fmax(xmax, px[i]);
  }
  if (ymax < 0.0 || ymin > v->h || xmax < 0.0 || xmin > v->w) return;
  int r0 = (int)ceil(ymin - 0.5), r1 = (int)floor(ymax - 0.5);
  if (r0 < 0) r0 = 0;
  if (r1 > v->h - 1) r1 = v->h - 1;
  for (int r = r0; r <= r1; r++) {
    // the span of this row's centre line inside the polygon (edges half-open in y)
    double yc = r + 0.5, xl = INFINITY, xr = -INFINITY;
    for (int i = 0, j = n - 1; i < n; j = i++) {
      if ((py[j] <= yc && yc < py[i]) || (py[i] <= yc && yc < py[j])) {
        double x = px[j] + (yc - py[j]) * (px[i] - px[j]) / (py[i] - py[j]);
        xl = fmin(xl, x), xr = fmax(xr, x);
      }
    }
    if (!(xl < xr)) continue;
    int c0 = (int)ceil(xl - 0.5), c1 = (int)ceil(xr - 0.5) - 1;
    if (c0 < 0) c0 = 0;
    if (c1 > v->w - 1) c1 = v->w - 1;
    uint8_t *p = v->rgb + ((size_t)r * v->w + c0) * 3;
    for (int col = c0; col <= c1; col++, p += 3) p[0] = c[0], p[1] = c[1], p[2] = c[2];
  }
}


// the band between lateral offsets d0 < d1 over arc lengths [s0, s1] of one segment
static void fill_band(const view *v, const srl_road *r, int seg, double s0, double s1, double d0,
                      double d1, const uint8_t c[3]) {
  if (!(s1 > s0)) return;
  double k = fabs(r->seg[seg].curvature);
  int pieces = (int)ceil(k * (s1 - s0) / PIECE_TURN);
  if (pieces < 1) pieces = 1;
  srl_road_point a0, a1, b0, b1;
  srl_road_pose(r, s0, d0, &a0);
  srl_road_pose(r, s0, d1, &a1);
  for (int i = 1; i <= pieces; i++) {
    double s = i == pieces ? s1 : s0 + (s1 - s0) * i / pieces;
    srl_road_pose(r, s, d0, &b0);
    srl_road_pose(r, s, d1, &b1);
    double x[4] = {a0.x, b0.x, b1.x, a1.x}, y[4] = {a0.y, b0.y, b1.y, a1.y};
    fill_convex(v, x, y, 4, c);
    a0 = b0, a1 = b1;
  }
}


// whether segment i can show in the view: its chord's midpoint within reach of the image
static int segment_visible(const view *v, const srl_road *r, int i) {
  const srl_road_segment *g = &r->seg[i];
  srl_road_point mid;
  srl_road_pose(r, g->s0 + 0.5 * g->length, 0.0, &mid);
  double reach = v->radius + 0.5 * g->length + srl_road_half_width(r) + 1.0;
  return hypot(mid.x - v->cx, mid.y - v->cy) <= reach;
}


// a vehicle: body and windscreen
static void draw_vehicle(const view *v, const srl_obb *b, const uint8_t body[3]) {
  if (hypot(b->x - v->cx, b->y - v->cy) > v->radius + b->half_length + b->half_width) return;
  double xy[8], x[4], y[4];
  srl_obb_corners(b, xy);
  for (int i = 0; i < 4; i++) x[i] = xy[2 * i], y[i] = xy[2 * i + 1];
  fill_convex(v, x, y, 4, body);
  double c = cos(b->heading), s = sin(b->heading);
  srl_obb glass = {b->x + 0.3 * b->half_length * c, b->y + 0.3 * b->half_length * s, b->heading,
                   0.2 * b->half_length, 0.8 * b->half_width};
  srl_obb_corners(&glass, xy);
  for (int i = 0; i < 4; i++) x[i] = xy[2 * i], y[i] = xy[2 * i + 1];
  uint8_t dark[3] = {(uint8_t)(body[0] * 2 / 5), (uint8_t)(body[1] * 2 / 5),
                     (uint8_t)(body[2] * 2 / 5)};
  fill_convex(v, x, y, 4, dark);
}


int srl_driving_render(const srl_driving *d, uint8_t *rgb, int width, int height,
                       const char *camera) {
  int follow = !camera || !camera[0] || !strcmp(camera, "follow");
  if (!follow && strcmp(camera, "top"))
    return srl_error(SRL_ENOTFOUND, "driving render: unknown camera '%s' (follow or top)", camera);
  if (width <= 0 || height <= 0)
    return srl_error(SRL_EINVAL, "driving render: size %dx%d must be positive", width, height);

  // the camera: above a point ahead of the ego
  const srl_road *r = &d->road;
  srl_obb ego = srl_driving_ego_box(d);
  double eh = ego.heading;
  view v = {rgb,
            width,
            height,
            ego.x + d->o.view_ahead * cos(eh),
            ego.y + d->o.view_ahead * sin(eh),
            follow ? cos(eh) : 0.0,
            follow ? sin(eh) : 1.0,
            width / d->o.view_width,
            0.0};
  v.radius = 0.5 * hypot(width, height) / v.ppm;

  // grass
  static const uint8_t grass[3] = {SRL_DRIVING_RGB_GRASS}, road[3] = {SRL_DRIVING_RGB_ROAD},
                       paint[3] = {SRL_DRIVING_RGB_MARKING}, red[3] = {SRL_DRIVING_RGB_EGO};
  size_t n = (size_t)width * height;
  for (size_t i = 0; i < n; i++)
    rgb[3 * i] = grass[0], rgb[3 * i + 1] = grass[1], rgb[3 * i + 2] = grass[2];

  // the road and its markings, segment by segment where the view can see it
  double hw = srl_road_half_width(r), lw = fmax(LINE_WIDTH, 1.2 / v.ppm);
  for (int i = 0; i < r->n_seg; i++) {
    if (!segment_visible(&v, r, i)) continue;
    double s0 = r->seg[i].s0, s1 = s0 + r->seg[i].length;
    fill_band(&v, r, i, s0, s1, -hw, hw, road);
    fill_band(&v, r, i, s0, s1, -hw + 0.1, -hw + 0.1 + lw, paint);
    fill_band(&v, r, i, s0, s1, hw - 0.1 - lw, hw - 0.1, paint);
    for (int j = 1; j < r->lanes; j++) {
      double dj = -hw + j * r->lane_width;
      for (double a = floor(s0 / DASH_PERIOD) * DASH_PERIOD; a < s1; a += DASH_PERIOD)
        fill_band(&v, r, i, fmax(a, s0), fmin(a + DASH_ON, s1), dj - 0.5 * lw, dj + 0.5 * lw,
                  paint);
    }
  }

  // traffic, then the ego on top
  static const uint8_t palette[6][3] = {{40, 90, 200},   {225, 225, 230}, {30, 30, 35},
                                        {160, 165, 172}, {40, 120, 75},   {235, 140, 30}};
  for (int i = 0; i < d->n_cars; i++) {
    if (!d->cars[i].active) continue;
    srl_obb b = srl_driving_car_box(d, i);
    draw_vehicle(&v, &b, palette[i % 6]);
  }
  draw_vehicle(&v, &ego, red);
  return SRL_OK;
}

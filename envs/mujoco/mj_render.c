// mj_render.c: headless offscreen rendering of MuJoCo scenes through EGL or OSMesa: the backend
// chosen once per process (SRL_GL / MUJOCO_GL, or a GPU through EGL when there is one, else
// OSMesa), MuJoCo's rendering context drawn into its offscreen framebuffer, pixels read back and
// flipped so row 0 is the top; the follow, top-down and named cameras of a view.
#include "envs/mujoco/mj_render.h"

#include <GL/osmesa.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "envs/mujoco/mj_render_egl.h"

#define SCENE_MAX_GEOM 2000

enum { BACKEND_AUTO = 0, BACKEND_OSMESA = 1, BACKEND_EGL = 2 };

struct srl_mj_renderer {
  int backend;  // BACKEND_OSMESA or BACKEND_EGL
  OSMesaContext ctx;
  srl__mj_egl_ctx egl;
  int width, height;  // capacity of the buffers
  void *osmesa_buf;   // (height×width×4) the OSMesa context's own colour buffer
  uint8_t *flip;      // (height×width×3) pixels as OpenGL reads them, bottom row first
  mjvScene scn;
  mjrContext con;
  mjvOption opt;
  int have_scene, have_con;
};

//---- backends ----------------------------------------------------------------------------------

// MuJoCo binds its OpenGL entry points once per process, through whichever of eglGetProcAddress
// and OSMesaGetProcAddress it finds first, so the first renderer fixes the backend for all
static pthread_mutex_t backend_lock = PTHREAD_MUTEX_INITIALIZER;
static int process_backend;  // BACKEND_AUTO until the first renderer is made

static const char *backend_label(int b) {
  return b == BACKEND_EGL ? "egl" : "osmesa";
}

// the backend asked for by SRL_GL, else MUJOCO_GL (BACKEND_AUTO when neither is set)
static int requested_backend(void) {
  const char *var = "SRL_GL", *v = getenv("SRL_GL");
  if (!v || !v[0]) var = "MUJOCO_GL", v = getenv("MUJOCO_GL");
  if (!v || !v[0]) return BACKEND_AUTO;
  if (!strcmp(v, "egl")) return BACKEND_EGL;
  if (!strcmp(v, "osmesa")) return BACKEND_OSMESA;
  return srl_error(SRL_EINVAL, "render: unknown %s value '%s' (egl or osmesa)", var, v);
}

// settle the process's backend: an explicit EGL request may fall back to Mesa's surfaceless
// platform (software), the automatic choice takes EGL only on a GPU device
static int choose_backend(int *out) {
  int want = requested_backend();
  if (want < 0) return want;
  pthread_mutex_lock(&backend_lock);
  int rc = 0;
  if (process_backend) {
    if (want && want != process_backend)
      rc = srl_error(SRL_EUNSUPPORTED,
                     "render: %s asked for, but this process already renders through %s (the "
                     "backend is chosen once per process)",
                     backend_label(want), backend_label(process_backend));
  } else if (want == BACKEND_EGL) {
    rc = srl__mj_egl_open(1);
    if (rc == 0) process_backend = BACKEND_EGL;
  } else if (want == BACKEND_OSMESA) {
    process_backend = BACKEND_OSMESA;
  } else {
    process_backend = srl__mj_egl_open(0) == 0 ? BACKEND_EGL : BACKEND_OSMESA;
    srl_errclear();
  }
  *out = process_backend;
  pthread_mutex_unlock(&backend_lock);
  return rc;
}

const char *srl_mj_render_backend_name(void) {
  pthread_mutex_lock(&backend_lock);
  int b = process_backend;
  pthread_mutex_unlock(&backend_lock);
  if (b == BACKEND_OSMESA) return "osmesa";
  if (b == BACKEND_EGL) return srl__mj_egl_platform();
  return NULL;
}

// make r's context current on this thread
static int make_current(srl_mj_renderer *r) {
  if (r->backend == BACKEND_EGL) return srl__mj_egl_make_current(&r->egl);
  if (!OSMesaMakeCurrent(r->ctx, r->osmesa_buf, GL_UNSIGNED_BYTE, r->width, r->height))
    return srl_error(SRL_EUNSUPPORTED, "render: cannot make the OSMesa context current");
  return 0;
}

//---- contexts --------------------------------------------------------------------------------

typedef struct make_args {
  srl_mj_renderer *r;
  const mjModel *m;
} make_args;

// build MuJoCo's scene and rendering context (their errors come back through the guard)
static void make_mj_context(void *p) {
  make_args *a = p;
  srl_mj_renderer *r = a->r;
  mjv_defaultScene(&r->scn);
  mjv_makeScene(a->m, &r->scn, SCENE_MAX_GEOM);
  r->have_scene = 1;

  // the offscreen buffer takes its size from the model; a copy of the struct carries ours
  mjModel sized = *a->m;
  sized.vis.global.offwidth = r->width;
  sized.vis.global.offheight = r->height;
  mjr_defaultContext(&r->con);
  mjr_makeContext(&sized, &r->con, mjFONTSCALE_100);
  r->have_con = 1;
  mjr_setBuffer(mjFB_OFFSCREEN, &r->con);
}

static void free_mj_context(void *p) {
  srl_mj_renderer *r = p;
  if (r->have_con) mjr_freeContext(&r->con);
  if (r->have_scene) mjv_freeScene(&r->scn);
  r->have_con = r->have_scene = 0;
}

void srl_mj_renderer_destroy(srl_mj_renderer *r) {
  if (!r) return;
  if (r->ctx || r->egl.context) {
    if (make_current(r) == 0) srl__mj_guarded(free_mj_context, r, "render: freeing the context");
    if (r->ctx) OSMesaDestroyContext(r->ctx);
    srl__mj_egl_destroy(&r->egl);
  }
  srl_free(r);
}

int srl_mj_renderer_create(srl_mj_renderer **out, const mjModel *m, int width, int height) {
  *out = NULL;
  if (width < 1 || height < 1 || width > SRL_MJ_RENDER_MAX_SIDE || height > SRL_MJ_RENDER_MAX_SIDE)
    return srl_error(SRL_EINVAL, "render: bad image %dx%d (1..%d per side)", width, height,
                     SRL_MJ_RENDER_MAX_SIDE);
  int backend = BACKEND_AUTO;
  SRL_TRY(choose_backend(&backend));

  // one block: the renderer, the OSMesa colour buffer (OSMesa only) and the flip buffer
  size_t total = 0;
  size_t off_r = srl_layout_add(&total, sizeof(srl_mj_renderer));
  size_t off_buf =
      srl_layout_add(&total, backend == BACKEND_OSMESA ? (size_t)width * height * 4 : 0);
  size_t off_flip = srl_layout_add(&total, (size_t)width * height * 3);
  char *block = srl_calloc(total);
  if (!block) return srl_error_context(SRL_ENOMEM, "render: ");
  srl_mj_renderer *r = (srl_mj_renderer *)(block + off_r);
  r->osmesa_buf = block + off_buf;
  r->flip = (uint8_t *)(block + off_flip);
  r->width = width;
  r->height = height;
  r->backend = backend;
  mjv_defaultOption(&r->opt);

  int rc = 0;
  if (backend == BACKEND_EGL) {
    // an EGL context, current without a window
    rc = srl__mj_egl_create(&r->egl);
    if (rc < 0) {
      srl_free(block);
      return rc;
    }
  } else {
    // a software OpenGL context: RGBA, 24-bit depth, 8-bit stencil
    r->ctx = OSMesaCreateContextExt(OSMESA_RGBA, 24, 8, 0, NULL);
    if (!r->ctx) {
      srl_free(block);
      return srl_error(SRL_EUNSUPPORTED, "render: cannot create an OSMesa context");
    }
    if (!OSMesaMakeCurrent(r->ctx, r->osmesa_buf, GL_UNSIGNED_BYTE, width, height)) {
      srl_mj_renderer_destroy(r);
      return srl_error(SRL_EUNSUPPORTED, "render: cannot make the OSMesa context current");
    }
  }
  make_args a = {r, m};
  rc = srl__mj_guarded(make_mj_context, &a, "render: making MuJoCo's context");
  if (rc == 0 && r->con.currentBuffer != mjFB_OFFSCREEN)
    rc = srl_error(SRL_EUNSUPPORTED, "render: no offscreen framebuffer in this OpenGL");
  if (rc < 0) {
    srl_mj_renderer_destroy(r);
    return rc;
  }
  *out = r;
  return 0;
}

int srl_mj_renderer_ensure(srl_mj_renderer **r, const mjModel *m, int width, int height) {
  if (*r && width <= (*r)->width && height <= (*r)->height) return 0;
  if (*r) {
    if ((*r)->width > width) width = (*r)->width;
    if ((*r)->height > height) height = (*r)->height;
    srl_mj_renderer_destroy(*r);
    *r = NULL;
  }
  return srl_mj_renderer_create(r, m, width, height);
}

//---- drawing ---------------------------------------------------------------------------------

typedef struct draw_args {
  srl_mj_renderer *r;
  const mjModel *m;
  mjData *d;
  mjvCamera cam;
  mjrRect viewport;
} draw_args;

static void draw_scene(void *p) {
  draw_args *a = p;
  srl_mj_renderer *r = a->r;
  mjv_updateScene(a->m, a->d, &r->opt, NULL, &a->cam, mjCAT_ALL, &r->scn);
  mjr_setBuffer(mjFB_OFFSCREEN, &r->con);
  mjr_render(a->viewport, &r->scn, &r->con);
  mjr_readPixels(r->flip, NULL, a->viewport, &r->con);
}

int srl_mj_renderer_draw(srl_mj_renderer *r, const mjModel *m, mjData *d, const mjvCamera *cam,
                         uint8_t *rgb, int width, int height) {
  if (width < 1 || height < 1 || width > SRL_MJ_RENDER_MAX_SIDE || height > SRL_MJ_RENDER_MAX_SIDE)
    return srl_error(SRL_EINVAL, "render: bad image %dx%d (1..%d per side)", width, height,
                     SRL_MJ_RENDER_MAX_SIDE);
  if (width > r->width || height > r->height)
    return srl_error(SRL_EINVAL, "render: image %dx%d exceeds the renderer's %dx%d", width, height,
                     r->width, r->height);
  SRL_TRY(make_current(r));
  draw_args a = {r, m, d, *cam, {0, 0, width, height}};
  SRL_TRY(srl__mj_guarded(draw_scene, &a, "render"));

  // OpenGL reads the bottom row first; images put row 0 at the top
  size_t row = (size_t)width * 3;
  for (int y = 0; y < height; y++)
    memcpy(rgb + (size_t)y * row, r->flip + (height - 1 - y) * row, row);
  return 0;
}

//---- cameras -----------------------------------------------------------------------------------

int srl_mj_view_camera(mjvCamera *cam, const mjModel *m, const mjData *d, const srl_mj_view *view,
                       const char *name) {
  mjv_defaultCamera(cam);
  if (!name || !name[0]) name = "follow";
  int follow = !strcmp(name, "follow"), top = !strcmp(name, "top");
  if (!follow && !top) {
    int id = mj_name2id(m, mjOBJ_CAMERA, name);
    if (id < 0)
      return srl_error(SRL_ENOTFOUND, "render: unknown camera '%s' (follow, top or a model camera)",
                       name);
    cam->type = mjCAMERA_FIXED;
    cam->fixedcamid = id;
    return 0;
  }

  // a free camera aimed at the tracked body each frame, so a frame depends only on the state
  cam->type = mjCAMERA_FREE;
  for (int k = 0; k < 3; k++) {
    double base = view->track_body >= 0 && view->track_body < m->nbody
                      ? d->xpos[3 * view->track_body + k]
                      : 0.0;
    cam->lookat[k] = base + view->lookat[k];
  }
  if (follow) {
    cam->distance = view->follow_distance;
    cam->azimuth = view->follow_azimuth;
    cam->elevation = view->follow_elevation;
  } else {
    // straight down, +x to the right and +y up in the image
    cam->distance = view->top_distance;
    cam->azimuth = 90.0;
    cam->elevation = -90.0;
  }
  return 0;
}

// mj_render.h: headless offscreen rendering of MuJoCo scenes through EGL (a GPU, or Mesa's
// surfaceless platform) or OSMesa (software OpenGL, no display or GPU needed). A renderer owns an
// OpenGL context, MuJoCo's rendering context and a scene; it renders into MuJoCo's offscreen
// framebuffer and reads RGB back with row 0 at the top.
//
// The backend is chosen once per process, by the first renderer made: SRL_GL=egl|osmesa (else
// MUJOCO_GL=egl|osmesa; other values are refused); unset, EGL on a GPU device when libEGL.so.1
// offers one (EGL_EXT_device_enumeration), else OSMesa. SRL_GL=egl also takes Mesa's surfaceless
// platform when no GPU device is usable. libEGL is loaded at run time, not linked.
//
// OpenGL contexts are bound to a thread: a renderer makes its context current on every draw, so
// draws of one renderer must not run concurrently (different renderers may, on different
// threads, as far as Mesa allows).
#ifndef SRL_MJ_RENDER_H
#define SRL_MJ_RENDER_H

#include <mujoco/mujoco.h>
#include <stdint.h>

#include "envs/mujoco/mj_env.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_MJ_RENDER_MAX_SIDE 4096

// Create a renderer for model m able to draw images up to width×height. SRL_EUNSUPPORTED when no
// OpenGL context can be made.
int srl_mj_renderer_create(srl_mj_renderer **out, const mjModel *m, int width, int height);
void srl_mj_renderer_destroy(srl_mj_renderer *r);
// Create *r when NULL, or recreate it when width×height exceeds its buffers (growing to the
// largest size asked for so far).
int srl_mj_renderer_ensure(srl_mj_renderer **r, const mjModel *m, int width, int height);

// Draw d through cam into rgb (height×width×3, row 0 at the top).
int srl_mj_renderer_draw(srl_mj_renderer *r, const mjModel *m, mjData *d, const mjvCamera *cam,
                         uint8_t *rgb, int width, int height);

// The backend this process renders through: "egl-device", "egl-surfaceless" or "osmesa"; NULL
// before the first renderer is made.
const char *srl_mj_render_backend_name(void);

// The camera for a view by name (NULL: "follow"), "top", or the name of a camera in the model;
// follow and top look at the tracked body's current position in d.
int srl_mj_view_camera(mjvCamera *cam, const mjModel *m, const mjData *d, const srl_mj_view *view,
                       const char *name);

#ifdef __cplusplus
}
#endif
#endif  // SRL_MJ_RENDER_H

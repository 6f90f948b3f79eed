// mj_render_egl.h: the EGL side of headless MuJoCo rendering (internal to mj_render.c). libEGL is
// loaded at run time, so machines without it keep rendering through OSMesa. One EGL display is
// opened per process (a GPU device, or Mesa's surfaceless platform when allowed) and stays open;
// each renderer owns a context on it, current without a window surface.
#ifndef SRL_MJ_RENDER_EGL_H
#define SRL_MJ_RENDER_EGL_H

// a renderer's EGL context and, where surfaceless contexts are unsupported, its 1×1 pbuffer
typedef struct srl__mj_egl_ctx {
  void *context;
  void *surface;
} srl__mj_egl_ctx;

// Open the process's EGL display once: a GPU device through EGL_EXT_device_enumeration first,
// then, when allow_surfaceless, Mesa's surfaceless platform (software). SRL_EUNSUPPORTED with the
// reason when no display is usable; later calls return the first call's outcome, except that a
// call allowing surfaceless retries after a device-only failure.
int srl__mj_egl_open(int allow_surfaceless);
// "egl-device" or "egl-surfaceless" once opened, NULL before.
const char *srl__mj_egl_platform(void);
// Create a desktop OpenGL context (compatibility profile) and make it current.
int srl__mj_egl_create(srl__mj_egl_ctx *c);
int srl__mj_egl_make_current(const srl__mj_egl_ctx *c);
void srl__mj_egl_destroy(srl__mj_egl_ctx *c);

#endif  // SRL_MJ_RENDER_EGL_H

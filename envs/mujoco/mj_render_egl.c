// mj_render_egl.c: EGL contexts for headless MuJoCo rendering. libEGL.so.1 is opened with dlopen
// (no link dependency); the few EGL types and constants used are declared here. The display is a
// GPU device found through EGL_EXT_device_enumeration (Mesa's software device skipped) or, when
// allowed, Mesa's surfaceless platform; contexts are desktop OpenGL, current without a surface
// (EGL_KHR_surfaceless_context) or with a 1×1 pbuffer.
#include "envs/mujoco/mj_render_egl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

//---- the EGL subset --------------------------------------------------------------------------

typedef int32_t EGLint;
typedef unsigned int EGLBoolean;
typedef unsigned int EGLenum;
typedef void *EGLDisplay, *EGLConfig, *EGLContext, *EGLSurface, *EGLDeviceEXT;

#define EGL_SUCCESS 0x3000
#define EGL_ALPHA_SIZE 0x3021
#define EGL_BLUE_SIZE 0x3022
#define EGL_GREEN_SIZE 0x3023
#define EGL_RED_SIZE 0x3024
#define EGL_DEPTH_SIZE 0x3025
#define EGL_STENCIL_SIZE 0x3026
#define EGL_SURFACE_TYPE 0x3033
#define EGL_NONE 0x3038
#define EGL_RENDERABLE_TYPE 0x3040
#define EGL_VENDOR 0x3053
#define EGL_EXTENSIONS 0x3055
#define EGL_HEIGHT 0x3056
#define EGL_WIDTH 0x3057
#define EGL_PBUFFER_BIT 0x0001
#define EGL_OPENGL_BIT 0x0008
#define EGL_OPENGL_API 0x30A2
#define EGL_PLATFORM_DEVICE_EXT 0x313F
#define EGL_DRM_DEVICE_FILE_EXT 0x3233
#define EGL_PLATFORM_SURFACELESS_MESA 0x31DD

typedef struct egl_api {
  void *(*GetProcAddress)(const char *);
  const char *(*QueryString)(EGLDisplay, EGLint);
  EGLint (*GetError)(void);
  EGLBoolean (*Initialize)(EGLDisplay, EGLint *, EGLint *);
  EGLBoolean (*ChooseConfig)(EGLDisplay, const EGLint *, EGLConfig *, EGLint, EGLint *);
  EGLBoolean (*BindAPI)(EGLenum);
  EGLContext (*CreateContext)(EGLDisplay, EGLConfig, EGLContext, const EGLint *);
  EGLBoolean (*DestroyContext)(EGLDisplay, EGLContext);
  EGLBoolean (*MakeCurrent)(EGLDisplay, EGLSurface, EGLSurface, EGLContext);
  EGLSurface (*CreatePbufferSurface)(EGLDisplay, EGLConfig, const EGLint *);
  EGLBoolean (*DestroySurface)(EGLDisplay, EGLSurface);
  // extensions
  EGLBoolean (*QueryDevicesEXT)(EGLint, EGLDeviceEXT *, EGLint *);
  const char *(*QueryDeviceStringEXT)(EGLDeviceEXT, EGLint);
  EGLDisplay (*GetPlatformDisplayEXT)(EGLenum, void *, const EGLint *);
} egl_api;

// the process's display, opened once under the lock and kept open (displays are shared by every
// context on the same device, and EGL does not count their users)
static struct {
  pthread_mutex_t lock;
  void *lib;
  egl_api f;
  int tried_device, tried_surfaceless;
  int status;     // 0 opened, < 0 the failure
  char why[512];  // the reason of the failure
  const char *platform;
  EGLDisplay dpy;
  EGLConfig cfg;
  int surfaceless;  // EGL_KHR_surfaceless_context
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

// whether a space-separated extension list names ext
static int has_ext(const char *list, const char *ext) {
  size_t n = strlen(ext);
  for (const char *p = list; p && (p = strstr(p, ext)); p += n)
    if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return 1;
  return 0;
}

//---- opening -----------------------------------------------------------------------------------

// load libEGL privately: its symbols turn global only once a display opens (see publish)
static int load_lib(char *why, size_t n) {
  if (g.lib) return 0;
  void *lib = dlopen("libEGL.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *e = dlerror();
    snprintf(why, n, "cannot load libEGL.so.1 (%s)", e ? e : "not found");
    return -1;
  }
  egl_api f;
  memset(&f, 0, sizeof f);
  *(void **)&f.GetProcAddress = dlsym(lib, "eglGetProcAddress");
  *(void **)&f.QueryString = dlsym(lib, "eglQueryString");
  *(void **)&f.GetError = dlsym(lib, "eglGetError");
  *(void **)&f.Initialize = dlsym(lib, "eglInitialize");
  *(void **)&f.ChooseConfig = dlsym(lib, "eglChooseConfig");
  *(void **)&f.BindAPI = dlsym(lib, "eglBindAPI");
  *(void **)&f.CreateContext = dlsym(lib, "eglCreateContext");
  *(void **)&f.DestroyContext = dlsym(lib, "eglDestroyContext");
  *(void **)&f.MakeCurrent = dlsym(lib, "eglMakeCurrent");
  *(void **)&f.CreatePbufferSurface = dlsym(lib, "eglCreatePbufferSurface");
  *(void **)&f.DestroySurface = dlsym(lib, "eglDestroySurface");
  if (!f.GetProcAddress || !f.QueryString || !f.GetError || !f.Initialize || !f.ChooseConfig ||
      !f.BindAPI || !f.CreateContext || !f.DestroyContext || !f.MakeCurrent ||
      !f.CreatePbufferSurface || !f.DestroySurface) {
    snprintf(why, n, "libEGL.so.1 lacks core EGL 1.4 entry points");
    dlclose(lib);
    return -1;
  }
  *(void **)&f.QueryDevicesEXT = f.GetProcAddress("eglQueryDevicesEXT");
  *(void **)&f.QueryDeviceStringEXT = f.GetProcAddress("eglQueryDeviceStringEXT");
  *(void **)&f.GetPlatformDisplayEXT = f.GetProcAddress("eglGetPlatformDisplayEXT");
  g.f = f;
  g.lib = lib;
  return 0;
}

// initialise dpy and pick an RGBA8 / depth 24 / stencil 8 desktop-OpenGL config
static int init_display(EGLDisplay dpy, char *why, size_t n) {
  EGLint major = 0, minor = 0;
  if (!dpy || !g.f.Initialize(dpy, &major, &minor)) {
    snprintf(why, n, "eglInitialize failed (0x%x)", (unsigned)g.f.GetError());
    return -1;
  }
  const char *ext = g.f.QueryString(dpy, EGL_EXTENSIONS);
  int surfaceless = has_ext(ext, "EGL_KHR_surfaceless_context");
  EGLint attrs[] = {EGL_RED_SIZE,
                    8,
                    EGL_GREEN_SIZE,
                    8,
                    EGL_BLUE_SIZE,
                    8,
                    EGL_ALPHA_SIZE,
                    8,
                    EGL_DEPTH_SIZE,
                    24,
                    EGL_STENCIL_SIZE,
                    8,
                    EGL_SURFACE_TYPE,
                    EGL_PBUFFER_BIT,
                    EGL_RENDERABLE_TYPE,
                    EGL_OPENGL_BIT,
                    EGL_NONE};
  EGLConfig cfg = NULL;
  EGLint count = 0;
  if (!g.f.ChooseConfig(dpy, attrs, &cfg, 1, &count) || count < 1) {
    // a surfaceless context needs no pbuffer-capable config
    attrs[13] = 0;
    if (!surfaceless || !g.f.ChooseConfig(dpy, attrs, &cfg, 1, &count) || count < 1) {
      snprintf(why, n, "no RGBA8/depth24/stencil8 OpenGL config on EGL %d.%d", (int)major,
               (int)minor);
      return -1;
    }
  }
  g.dpy = dpy;
  g.cfg = cfg;
  g.surfaceless = surfaceless;
  return 0;
}

// the first GPU device that initialises; Mesa's software device does not count
static int open_device(char *why, size_t n) {
  const char *client = g.f.QueryString(NULL, EGL_EXTENSIONS);
  if (!g.f.QueryDevicesEXT || !g.f.GetPlatformDisplayEXT ||
      !has_ext(client, "EGL_EXT_platform_device")) {
    snprintf(why, n,
             "libEGL has no device platform (EGL_EXT_device_enumeration, "
             "EGL_EXT_platform_device)");
    return -1;
  }
  EGLDeviceEXT devs[16];
  EGLint ndev = 0;
  if (!g.f.QueryDevicesEXT(16, devs, &ndev) || ndev < 1) {
    snprintf(why, n, "eglQueryDevicesEXT found no device");
    return -1;
  }
  int software = 0, failed = 0;
  char last[160] = "";
  for (EGLint i = 0; i < ndev; i++) {
    const char *dext =
        g.f.QueryDeviceStringEXT ? g.f.QueryDeviceStringEXT(devs[i], EGL_EXTENSIONS) : NULL;
    const char *drm = g.f.QueryDeviceStringEXT && has_ext(dext, "EGL_EXT_device_drm")
                          ? g.f.QueryDeviceStringEXT(devs[i], EGL_DRM_DEVICE_FILE_EXT)
                          : NULL;
    if (has_ext(dext, "EGL_MESA_device_software") ||
        (!drm && !has_ext(dext, "EGL_NV_device_cuda"))) {
      software++;
      continue;
    }
    EGLDisplay dpy = g.f.GetPlatformDisplayEXT(EGL_PLATFORM_DEVICE_EXT, devs[i], NULL);
    if (init_display(dpy, last, sizeof last) == 0) return 0;
    failed++;
  }
  if (failed)
    snprintf(why, n, "%d GPU device(s) failed: %s", failed, last);
  else
    snprintf(why, n, "%d EGL device(s), none a GPU (%d software)", (int)ndev, software);
  return -1;
}

static int open_surfaceless(char *why, size_t n) {
  const char *client = g.f.QueryString(NULL, EGL_EXTENSIONS);
  if (!g.f.GetPlatformDisplayEXT || !has_ext(client, "EGL_MESA_platform_surfaceless")) {
    snprintf(why, n, "no surfaceless platform (EGL_MESA_platform_surfaceless)");
    return -1;
  }
  EGLDisplay dpy = g.f.GetPlatformDisplayEXT(EGL_PLATFORM_SURFACELESS_MESA, NULL, NULL);
  return init_display(dpy, why, n);
}

// MuJoCo's OpenGL loader takes eglGetProcAddress from the global symbols before
// OSMesaGetProcAddress (which libsaferl links): make libEGL's symbols global now that EGL is used,
// and only then, so processes that fall back to OSMesa keep OSMesa's entry points
static void publish(const char *platform) {
  void *again = dlopen("libEGL.so.1", RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
  if (again) dlclose(again);
  g.platform = platform;
}

int srl__mj_egl_open(int allow_surfaceless) {
  pthread_mutex_lock(&g.lock);
  int rc = 0;
  const char *what = allow_surfaceless ? "EGL requested but no EGL device is usable"
                                       : "no EGL GPU device is usable";
  if (g.platform) goto done;
  if (g.tried_device && (!allow_surfaceless || g.tried_surfaceless)) {
    rc = srl_error(SRL_EUNSUPPORTED, "render: %s: %s", what, g.why);
    goto done;
  }
  char dev_why[200] = "", sl_why[200] = "";
  if (load_lib(g.why, sizeof g.why) < 0) {
    g.tried_device = g.tried_surfaceless = 1;
    rc = srl_error(SRL_EUNSUPPORTED, "render: %s: %s", what, g.why);
    goto done;
  }
  if (!g.tried_device) {
    g.tried_device = 1;
    if (open_device(dev_why, sizeof dev_why) == 0) {
      publish("egl-device");
      goto done;
    }
    snprintf(g.why, sizeof g.why, "%s", dev_why);
  }
  if (allow_surfaceless && !g.tried_surfaceless) {
    g.tried_surfaceless = 1;
    if (open_surfaceless(sl_why, sizeof sl_why) == 0) {
      publish("egl-surfaceless");
      goto done;
    }
    if (!dev_why[0]) snprintf(dev_why, sizeof dev_why, "%.190s", g.why);
    snprintf(g.why, sizeof g.why, "%s; %s", dev_why, sl_why);
  }
  rc = srl_error(SRL_EUNSUPPORTED, "render: %s: %s", what, g.why);
done:
  pthread_mutex_unlock(&g.lock);
  return rc;
}

const char *srl__mj_egl_platform(void) {
  pthread_mutex_lock(&g.lock);
  const char *p = g.platform;
  pthread_mutex_unlock(&g.lock);
  return p;
}

//---- contexts ----------------------------------------------------------------------------------

int srl__mj_egl_create(srl__mj_egl_ctx *c) {
  c->context = c->surface = NULL;
  if (!srl__mj_egl_platform()) return srl_error(SRL_EUNSUPPORTED, "render: EGL is not open");
  // desktop OpenGL, default (compatibility) profile: MuJoCo 2.2 draws with fixed-function GL
  if (!g.f.BindAPI(EGL_OPENGL_API))
    return srl_error(SRL_EUNSUPPORTED, "render: EGL cannot bind the OpenGL API (0x%x)",
                     (unsigned)g.f.GetError());
  c->context = g.f.CreateContext(g.dpy, g.cfg, NULL, NULL);
  if (!c->context)
    return srl_error(SRL_EUNSUPPORTED, "render: eglCreateContext failed (0x%x)",
                     (unsigned)g.f.GetError());
  if (!g.surfaceless) {
    EGLint attrs[] = {EGL_WIDTH, 1, EGL_HEIGHT, 1, EGL_NONE};
    c->surface = g.f.CreatePbufferSurface(g.dpy, g.cfg, attrs);
    if (!c->surface) {
      int err = (int)g.f.GetError();
      srl__mj_egl_destroy(c);
      return srl_error(SRL_EUNSUPPORTED, "render: eglCreatePbufferSurface failed (0x%x)", err);
    }
  }
  int rc = srl__mj_egl_make_current(c);
  if (rc < 0) srl__mj_egl_destroy(c);
  return rc;
}

int srl__mj_egl_make_current(const srl__mj_egl_ctx *c) {
  g.f.BindAPI(EGL_OPENGL_API);
  if (!g.f.MakeCurrent(g.dpy, c->surface, c->surface, c->context))
    return srl_error(SRL_EUNSUPPORTED, "render: eglMakeCurrent failed (0x%x)",
                     (unsigned)g.f.GetError());
  return 0;
}

void srl__mj_egl_destroy(srl__mj_egl_ctx *c) {
  if (!c->context && !c->surface) return;
  g.f.MakeCurrent(g.dpy, NULL, NULL, NULL);
  if (c->surface) g.f.DestroySurface(g.dpy, c->surface);
  if (c->context) g.f.DestroyContext(g.dpy, c->context);
  c->context = c->surface = NULL;
}

// mj_env.c: the MuJoCo base: assets folder search, the shared model cache, model loading from
// files and XML text, name look-ups, stepping with frame skip, and divergence detection.
#include "envs/mujoco/mj_env.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "envs/env.h"
#include "envs/mujoco/mj_render.h"

//---- MuJoCo's error and warning hooks -----------------------------------------------------------

// MuJoCo reports errors through a global hook whose default prints, waits for Enter and exits.
// saferl installs its own once: inside a guarded region (every MuJoCo call the library makes
// that can fail) an error jumps back to the guard, which turns it into a status or a diverged
// step; outside one it goes to the hook that was there before, else prints and aborts. Warnings
// are counted by MuJoCo in mjData; the hook only keeps the thread's last message, quietly.
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
static void (*prev_error_hook)(const char *);
static void (*prev_warning_hook)(const char *);
static _Thread_local jmp_buf *tl_guard;
static _Thread_local char tl_mj_msg[160];

static void on_mj_error(const char *msg) {
  snprintf(tl_mj_msg, sizeof tl_mj_msg, "%s", msg);
  if (tl_guard) longjmp(*tl_guard, 1);
  if (prev_error_hook) {
    prev_error_hook(msg);
    return;
  }
  fprintf(stderr, "saferl: MuJoCo error outside a guarded call: %s\n", msg);
  abort();
}

static void on_mj_warning(const char *msg) {
  snprintf(tl_mj_msg, sizeof tl_mj_msg, "%s", msg);
  if (prev_warning_hook && !tl_guard) prev_warning_hook(msg);
}

static void install_hooks(void) {
  prev_error_hook = mju_user_error;
  prev_warning_hook = mju_user_warning;
  mju_user_error = on_mj_error;
  mju_user_warning = on_mj_warning;
}

static void ensure_hooks(void) {
  pthread_once(&hooks_once, install_hooks);
}

//---- assets folder -------------------------------------------------------------------------------

static pthread_mutex_t assets_lock = PTHREAD_MUTEX_INITIALIZER;
static char assets_override[SRL_MJ_PATH_MAX];

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int srl_mj_set_assets_dir(const char *dir) {
  if (dir && !is_dir(dir))
    return srl_error(SRL_ENOTFOUND, "assets folder '%s' does not exist", dir);
  if (dir && strlen(dir) >= SRL_MJ_PATH_MAX)
    return srl_error(SRL_EINVAL, "assets folder path is too long");
  pthread_mutex_lock(&assets_lock);
  snprintf(assets_override, sizeof assets_override, "%s", dir ? dir : "");
  pthread_mutex_unlock(&assets_lock);
  return 0;
}

// the candidate folders in search order; returns how many were written
static int assets_candidates(char cand[][SRL_MJ_PATH_MAX], int max) {
  int n = 0;
  pthread_mutex_lock(&assets_lock);
  if (assets_override[0] && n < max) snprintf(cand[n++], SRL_MJ_PATH_MAX, "%s", assets_override);
  pthread_mutex_unlock(&assets_lock);
  const char *env = getenv("SRL_ASSETS_DIR");
  if (env && env[0] && n < max) snprintf(cand[n++], SRL_MJ_PATH_MAX, "%s", env);
  env = getenv("SRL_SOURCE_DIR");
  if (env && env[0] && n < max) snprintf(cand[n++], SRL_MJ_PATH_MAX, "%s/envs/assets", env);

  // relative to the running executable: an install, or a build folder in the source tree
  char exe[SRL_MJ_PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len > 0) {
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;  // exe is now the executable's folder
    static const char *rel[] = {"../share/saferl/assets", "../../envs/assets", "../envs/assets"};
    for (size_t i = 0; i < sizeof rel / sizeof *rel && n < max; i++)
      snprintf(cand[n++], SRL_MJ_PATH_MAX, "%.*s/%s", SRL_MJ_PATH_MAX - 32, exe, rel[i]);
  }
#ifdef SRL_ASSETS_INSTALL_DIR
  if (n < max) snprintf(cand[n++], SRL_MJ_PATH_MAX, "%s", SRL_ASSETS_INSTALL_DIR);
#endif
  if (n < max) snprintf(cand[n++], SRL_MJ_PATH_MAX, "/usr/local/share/saferl/assets");
  if (n < max) snprintf(cand[n++], SRL_MJ_PATH_MAX, "/usr/share/saferl/assets");
  return n;
}

// first candidate for which `name` exists (a folder when name is NULL)
static int assets_find(char *out, size_t cap, const char *name) {
  char cand[10][SRL_MJ_PATH_MAX];
  int n = assets_candidates(cand, 10);
  char tried[1024] = "";
  size_t used = 0;
  for (int i = 0; i < n; i++) {
    char path[SRL_MJ_PATH_MAX + 256];
    if (name)
      snprintf(path, sizeof path, "%.1000s/%.200s", cand[i], name);
    else
      snprintf(path, sizeof path, "%.1000s", cand[i]);
    if (name ? is_file(path) : is_dir(path)) {
      if (strlen(path) >= cap) return srl_error(SRL_EINVAL, "asset path '%s' is too long", path);
      memcpy(out, path, strlen(path) + 1);
      return 0;
    }
    if (used < sizeof tried - 2)
      used += snprintf(tried + used, sizeof tried - used, "%s%.200s", i ? ", " : "", cand[i]);
  }
  if (name)
    return srl_error(SRL_ENOTFOUND,
                     "asset '%s' not found (searched %s; set SRL_ASSETS_DIR or SRL_SOURCE_DIR)",
                     name, tried);
  return srl_error(SRL_ENOTFOUND,
                   "no assets folder found (searched %s; set SRL_ASSETS_DIR or SRL_SOURCE_DIR)",
                   tried);
}

int srl_mj_assets_dir(char *out, size_t cap) {
  return assets_find(out, cap, NULL);
}

int srl_mj_asset_path(char *out, size_t cap, const char *name) {
  if (!name || !name[0] || strstr(name, ".."))
    return srl_error(SRL_EINVAL, "bad asset name '%s'", name ? name : "(null)");
  return assets_find(out, cap, name);
}

//---- loading -----------------------------------------------------------------------------------

int srl_mj_model_load_file(mjModel **out, const char *path) {
  *out = NULL;
  ensure_hooks();
  char err[1000] = "";
  mjModel *m = mj_loadXML(path, NULL, err, sizeof err);
  if (!m) return srl_error(SRL_EFORMAT, "loading MJCF %s: %s", path, err);
  *out = m;
  return 0;
}

int srl_mj_model_load_xml(mjModel **out, const char *xml, const char *name) {
  *out = NULL;
  if (!xml || !name || !name[0] || strchr(name, '/'))
    return srl_error(SRL_EINVAL, "loading MJCF text: bad arguments");
  ensure_hooks();
  size_t len = strlen(xml);
  if (len > 0x7fffffff) return srl_error(SRL_EINVAL, "MJCF text '%s' is too large", name);
  mjVFS *vfs = srl_malloc(sizeof *vfs);
  if (!vfs) return srl_error_context(SRL_ENOMEM, "loading MJCF text '%s': ", name);
  mj_defaultVFS(vfs);

  // the virtual file lives "in" the assets folder, so the files it names resolve there
  char dir[SRL_MJ_PATH_MAX], path[SRL_MJ_PATH_MAX + 256];
  if (srl_mj_assets_dir(dir, sizeof dir) == 0)
    snprintf(path, sizeof path, "%s/%s", dir, name);
  else
    snprintf(path, sizeof path, "%s", name);
  srl_errclear();
  int rc = mj_makeEmptyFileVFS(vfs, name, (int)len);
  if (rc != 0) {
    srl_free(vfs);
    return srl_error(SRL_ENOMEM, "loading MJCF text '%s': no room in the virtual file system",
                     name);
  }
  memcpy(vfs->filedata[mj_findFileVFS(vfs, name)], xml, len);
  char err[1000] = "";
  mjModel *m = mj_loadXML(path, vfs, err, sizeof err);
  mj_deleteVFS(vfs);
  srl_free(vfs);
  if (!m) return srl_error(SRL_EFORMAT, "loading MJCF text '%s': %s", name, err);
  *out = m;
  return 0;
}

//---- the shared model cache ------------------------------------------------------------------

typedef struct cache_entry {
  struct cache_entry *next;
  mjModel *m;
  int refs;
  char path[SRL_MJ_PATH_MAX + 256];
} cache_entry;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_entry *cache_head;

int srl_mj_model_acquire(const mjModel **out, const char *asset_name) {
  *out = NULL;
  char path[SRL_MJ_PATH_MAX + 256];
  SRL_TRY(srl_mj_asset_path(path, sizeof path, asset_name));
  pthread_mutex_lock(&cache_lock);
  for (cache_entry *e = cache_head; e; e = e->next)
    if (!strcmp(e->path, path)) {
      e->refs++;
      *out = e->m;
      pthread_mutex_unlock(&cache_lock);
      return 0;
    }

  // compile under the lock, so two threads asking at once share one model
  cache_entry *e = srl_calloc(sizeof *e);
  int rc = e ? srl_mj_model_load_file(&e->m, path) : SRL_ENOMEM;
  if (rc < 0) {
    srl_free(e);
    pthread_mutex_unlock(&cache_lock);
    return rc;
  }
  e->refs = 1;
  snprintf(e->path, sizeof e->path, "%s", path);
  e->next = cache_head;
  cache_head = e;
  *out = e->m;
  pthread_mutex_unlock(&cache_lock);
  return 0;
}

void srl_mj_model_release(const mjModel *m) {
  if (!m) return;
  pthread_mutex_lock(&cache_lock);
  for (cache_entry **p = &cache_head; *p; p = &(*p)->next) {
    cache_entry *e = *p;
    if (e->m != m) continue;
    if (--e->refs == 0) {
      *p = e->next;
      mj_deleteModel(e->m);
      srl_free(e);
    }
    break;
  }
  pthread_mutex_unlock(&cache_lock);
}

//---- names -------------------------------------------------------------------------------------

int srl_mj_id(const mjModel *m, mjtObj type, const char *name) {
  int id = name ? mj_name2id(m, type, name) : -1;
  if (id < 0) {
    const char *kind = mju_type2Str(type);
    return srl_error(SRL_ENOTFOUND, "model has no %s named '%s'", kind ? kind : "object",
                     name ? name : "(null)");
  }
  return id;
}

int srl_mj_sensor(const mjModel *m, const char *name, int *adr, int *dim) {
  int id = srl_mj_id(m, mjOBJ_SENSOR, name);
  if (id < 0) return id;
  if (adr) *adr = m->sensor_adr[id];
  if (dim) *dim = m->sensor_dim[id];
  return 0;
}

int srl_mj_joint(const mjModel *m, const char *name, int *qpos_adr, int *qvel_adr) {
  int id = srl_mj_id(m, mjOBJ_JOINT, name);
  if (id < 0) return id;
  if (qpos_adr) *qpos_adr = m->jnt_qposadr[id];
  if (qvel_adr) *qvel_adr = m->jnt_dofadr[id];
  return 0;
}

srl_mj_view srl_mj_view_default(int body, double distance, double top) {
  srl_mj_view v = {.track_body = body,
                   .follow_distance = distance,
                   .follow_azimuth = 90.0,
                   .follow_elevation = -20.0,
                   .top_distance = top};
  return v;
}

//---- a simulation ------------------------------------------------------------------------------

int srl_mj_sim_init_model(srl_mj_sim *s, mjModel *m, int owns, int frame_skip) {
  memset(s, 0, sizeof *s);
  if (!m) return srl_error(SRL_EINVAL, "mujoco sim: no model");
  s->m = m;
  s->owns_model = owns;
  if (frame_skip < 1) {
    srl_mj_sim_free(s);
    return srl_error(SRL_EINVAL, "mujoco sim: frame_skip %d must be >= 1", frame_skip);
  }
  s->frame_skip = frame_skip;
  s->view = srl_mj_view_default(m->nbody > 1 ? 1 : 0, 3.0, 6.0);
  ensure_hooks();

  // mj_makeData reports allocation failure through the error hook
  jmp_buf guard;
  jmp_buf *volatile prev = tl_guard;
  if (setjmp(guard)) {
    tl_guard = prev;
    srl_mj_sim_free(s);
    return srl_error(SRL_ENOMEM, "mujoco sim: %s", tl_mj_msg);
  }
  tl_guard = &guard;
  s->d = mj_makeData(m);
  if (s->d) mj_forward(m, s->d);
  tl_guard = prev;
  if (!s->d) {
    srl_mj_sim_free(s);
    return srl_error(SRL_ENOMEM, "mujoco sim: cannot allocate mjData");
  }
  return 0;
}

int srl_mj_sim_init_asset(srl_mj_sim *s, const char *asset_name, int frame_skip) {
  memset(s, 0, sizeof *s);
  const mjModel *m = NULL;
  SRL_TRY(srl_mj_model_acquire(&m, asset_name));
  return srl_mj_sim_init_model(s, (mjModel *)m, 0, frame_skip);
}

void srl_mj_sim_free(srl_mj_sim *s) {
  if (!s) return;
  srl_mj_renderer_destroy(s->renderer);
  if (s->d) mj_deleteData(s->d);
  if (s->m) {
    if (s->owns_model)
      mj_deleteModel((mjModel *)s->m);
    else
      srl_mj_model_release(s->m);
  }
  memset(s, 0, sizeof *s);
}

void srl_mj_sim_reset(srl_mj_sim *s, int key) {
  if (key >= 0 && key < s->m->nkey)
    mj_resetDataKeyframe(s->m, s->d, key);
  else
    mj_resetData(s->m, s->d);
  s->diverged = 0;
}

void srl_mj_sim_forward(srl_mj_sim *s) {
  jmp_buf guard;
  jmp_buf *volatile prev = tl_guard;
  if (setjmp(guard)) {
    tl_guard = prev;
    mj_resetData(s->m, s->d);
    s->diverged = 1;
    snprintf(s->diverge_msg, sizeof s->diverge_msg, "%s", tl_mj_msg);
    return;
  }
  tl_guard = &guard;
  mj_forward(s->m, s->d);
  tl_guard = prev;
}

int srl_mj_state_nonfinite(const mjModel *m, const mjData *d) {
  // x·0 is 0 for every finite x and NaN for inf or NaN, so one sum tests them all
  double acc = 0;
  for (int i = 0; i < m->nq; i++) acc += d->qpos[i] * 0.0;
  for (int i = 0; i < m->nv; i++) acc += d->qvel[i] * 0.0 + d->qacc[i] * 0.0;
  return !(acc == 0.0);
}

// the warning counters that mean the state went bad
static int bad_warnings(const mjData *d) {
  return d->warning[mjWARN_BADQPOS].number + d->warning[mjWARN_BADQVEL].number +
         d->warning[mjWARN_BADQACC].number;
}

int srl_mj_sim_step(srl_mj_sim *s, const double *ctrl) {
  const mjModel *m = s->m;
  mjData *d = s->d;
  if (ctrl) memcpy(d->ctrl, ctrl, (size_t)m->nu * sizeof *d->ctrl);
  int w0 = bad_warnings(d);
  s->diverged = 0;

  // a MuJoCo error mid-step jumps back here; the data is reset so the next reset starts clean
  jmp_buf guard;
  jmp_buf *volatile prev = tl_guard;
  if (setjmp(guard)) {
    tl_guard = prev;
    mj_resetData(m, d);
    s->diverged = 1;
    s->n_diverged++;
    snprintf(s->diverge_msg, sizeof s->diverge_msg, "mujoco error: %.140s", tl_mj_msg);
    return 1;
  }
  tl_guard = &guard;
  for (int i = 0; i < s->frame_skip; i++) mj_step(m, d);
  if (s->post_constraint) mj_rnePostConstraint(m, d);
  if (s->forward_after) mj_forward(m, d);
  tl_guard = prev;

  if (bad_warnings(d) != w0) {
    s->diverged = 1;
    snprintf(s->diverge_msg, sizeof s->diverge_msg, "mujoco warning: %.140s", tl_mj_msg);
  } else if (srl_mj_state_nonfinite(m, d)) {
    s->diverged = 1;
    snprintf(s->diverge_msg, sizeof s->diverge_msg, "non-finite state at time %g", d->time);
  }
  if (s->diverged) s->n_diverged++;
  return s->diverged;
}

int srl_mj_sim_step_f(srl_mj_sim *s, const float *ctrl) {
  if (ctrl)
    for (int i = 0; i < s->m->nu; i++) s->d->ctrl[i] = ctrl[i];
  return srl_mj_sim_step(s, NULL);
}

void srl_mj_step_diverged(srl_step *out) {
  out->reward = SRL_ENV_DIVERGED_REWARD;
  out->cost = SRL_ENV_DIVERGED_COST;
  out->terminated = 0;
  out->truncated = 1;
  out->info.diverged = 1;
  out->info.raw_cost = SRL_ENV_DIVERGED_COST;
}

//---- rendering ---------------------------------------------------------------------------------

int srl_mj_sim_render(srl_mj_sim *s, uint8_t *rgb, int width, int height, const char *camera) {
  if (!rgb || width < 1 || height < 1 || width > SRL_MJ_RENDER_MAX_SIDE ||
      height > SRL_MJ_RENDER_MAX_SIDE)
    return srl_error(SRL_EINVAL, "render: bad image %dx%d (1..%d per side)", width, height,
                     SRL_MJ_RENDER_MAX_SIDE);
  mjvCamera cam;
  SRL_TRY(srl_mj_view_camera(&cam, s->m, s->d, &s->view, camera));
  SRL_TRY(srl_mj_renderer_ensure(&s->renderer, s->m, width, height));
  return srl_mj_renderer_draw(s->renderer, s->m, s->d, &cam, rgb, width, height);
}

// guarded call for the renderer: runs fn(arg) with MuJoCo errors turned into SRL_EUNSUPPORTED
int srl__mj_guarded(void (*fn)(void *), void *arg, const char *what) {
  ensure_hooks();
  jmp_buf guard;
  jmp_buf *volatile prev = tl_guard;
  if (setjmp(guard)) {
    tl_guard = prev;
    return srl_error(SRL_EUNSUPPORTED, "%s: %s", what, tl_mj_msg);
  }
  tl_guard = &guard;
  fn(arg);
  tl_guard = prev;
  return 0;
}

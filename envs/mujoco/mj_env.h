// mj_env.h: the MuJoCo base every MuJoCo task stands on: finding and loading MJCF models (from
// envs/assets/, any file, or an XML string built at run time), sharing one read-only mjModel
// between the instances of a task, stepping with frame skip, reading sensors, bodies and geoms by
// name, detecting divergence, and offscreen rendering through a follow and a top-down camera.
//
// A task embeds an srl_mj_sim in its own state: the model (shared or owned), one mjData, the
// frame skip and the camera set-up. Divergence is data, not a crash: a MuJoCo "bad qpos / qvel /
// qacc" warning raised during a step, a MuJoCo error, or a non-finite qpos, qvel or qacc after it
// marks the step as diverged, and the task ends the episode truncated with reward
// SRL_ENV_DIVERGED_REWARD (-10) and cost 1 (Safety-Gymnasium's behaviour).
//
// Assets folder, searched in this order (srl_mj_assets_dir reports the one in use):
//   1. srl_mj_set_assets_dir(dir), e.g. from a command-line option;
//   2. $SRL_ASSETS_DIR;
//   3. $SRL_SOURCE_DIR/envs/assets (a source checkout; the tests set SRL_SOURCE_DIR);
//   4. next to the running executable: <exe>/../share/saferl/assets (an install, where the
//      library's files live under <prefix>/share/saferl/assets), <exe>/../../envs/assets and
//      <exe>/../envs/assets (a build folder inside the source tree);
//   5. SRL_ASSETS_INSTALL_DIR when the build defines it, else /usr/local/share/saferl/assets and
//      /usr/share/saferl/assets.
// The first folder that exists wins; loading names the folders tried when a file is missing.
#ifndef SRL_MJ_ENV_H
#define SRL_MJ_ENV_H

#include <mujoco/mujoco.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_MJ_PATH_MAX 1024

//---- assets ---------------------------------------------------------------------------------

// Use dir for assets from now on (NULL restores the search); SRL_ENOTFOUND if it is no folder.
int srl_mj_set_assets_dir(const char *dir);
// The assets folder in use; SRL_ENOTFOUND (naming the folders tried) when none exists.
int srl_mj_assets_dir(char *out, size_t cap);
// Full path of an asset file ("half_cheetah.xml"); SRL_ENOTFOUND when it does not exist.
int srl_mj_asset_path(char *out, size_t cap, const char *name);

//---- models ---------------------------------------------------------------------------------

// The shared model of an asset file, compiled once per process and reference-counted; every
// instance of a task steps its own mjData on the same read-only mjModel. Thread-safe.
int srl_mj_model_acquire(const mjModel **out, const char *asset_name);
// Give back a model from srl_mj_model_acquire; the last release frees it. NULL is a no-op.
void srl_mj_model_release(const mjModel *m);

// Compile a private model from an MJCF file path or from XML text (through an in-memory virtual
// file named `name`, so nothing touches the disk). Free with mj_deleteModel. Files the XML refers
// to (meshes, includes) are looked up in the assets folder.
int srl_mj_model_load_file(mjModel **out, const char *path);
int srl_mj_model_load_xml(mjModel **out, const char *xml, const char *name);

// Look up an object by name: its id, or SRL_ENOTFOUND naming the kind and the name.
int srl_mj_id(const mjModel *m, mjtObj type, const char *name);
// A sensor's address into sensordata and its dimension.
int srl_mj_sensor(const mjModel *m, const char *name, int *adr, int *dim);
// A joint's address into qpos and into qvel.
int srl_mj_joint(const mjModel *m, const char *name, int *qpos_adr, int *qvel_adr);

//---- cameras ----------------------------------------------------------------------------------

// How a task is filmed: "follow" tracks a body from behind and above; "top" looks straight down
// at the same body (or at a fixed point when track_body < 0). Any camera named in the MJCF can be
// asked for by its name too.
typedef struct srl_mj_view {
  int track_body;           // body id followed by both cameras; < 0: look at `lookat`
  double follow_distance;   // metres from the tracked point
  double follow_azimuth;    // degrees; 90 looks along +y (the side view of a planar walker)
  double follow_elevation;  // degrees; negative looks down
  double top_distance;      // height of the top-down camera above the tracked point
  double lookat[3];         // tracked offset (track_body >= 0) or fixed point
} srl_mj_view;

// A view looking at body `body` from `distance` metres, top camera at `top` metres.
srl_mj_view srl_mj_view_default(int body, double distance, double top);

//---- a simulation ------------------------------------------------------------------------------

typedef struct srl_mj_renderer srl_mj_renderer;  // mj_render.h

typedef struct srl_mj_sim {
  const mjModel *m;       // shared (read-only) or owned, see owns_model
  mjData *d;              // this instance's state
  int frame_skip;         // mj_step calls per env step
  int forward_after;      // 1: mj_forward after the frame skip (Safety-Gymnasium's navigation)
  int post_constraint;    // 1: mj_rnePostConstraint after it (cacc, cfrc_int, cfrc_ext)
  int owns_model;         // 1: the model is freed with the sim; 0: released to the shared cache
  int diverged;           // the last srl_mj_sim_step diverged
  long n_diverged;        // steps that diverged since init
  char diverge_msg[160];  // why the last divergence happened
  srl_mj_view view;
  srl_mj_renderer *renderer;  // created on the first render
} srl_mj_sim;

// Set up a sim on the shared model of an asset file.
int srl_mj_sim_init_asset(srl_mj_sim *s, const char *asset_name, int frame_skip);
// Set up a sim on a model; owns = 1 hands the model over (freed with the sim, even on error).
int srl_mj_sim_init_model(srl_mj_sim *s, mjModel *m, int owns, int frame_skip);
// Free the mjData, the renderer and the model (owned) or its reference (shared).
void srl_mj_sim_free(srl_mj_sim *s);

// Back to the model's reference state (qpos0, zero velocity, time 0; keyframe `key` when >= 0).
// The task then writes its own initial qpos/qvel and calls srl_mj_sim_forward.
void srl_mj_sim_reset(srl_mj_sim *s, int key);
void srl_mj_sim_forward(srl_mj_sim *s);

// Set ctrl (m->nu values; NULL keeps the current ctrl) and advance frame_skip mj_steps, then
// mj_rnePostConstraint / mj_forward as configured. Returns 1 when the step diverged (see the top
// of this file; s->diverge_msg says why), 0 otherwise. Never allocates.
int srl_mj_sim_step(srl_mj_sim *s, const double *ctrl);
// Same with float controls (an env's action), written into d->ctrl.
int srl_mj_sim_step_f(srl_mj_sim *s, const float *ctrl);

// 1 when any of qpos, qvel, qacc holds a non-finite value.
int srl_mj_state_nonfinite(const mjModel *m, const mjData *d);

// Fill an srl_step for a diverged step: truncated, reward -10, cost 1, info.diverged = 1.
struct srl_step;
void srl_mj_step_diverged(struct srl_step *out);

// Draw the scene into rgb (height×width×3, row 0 at the top) through camera "follow", "top"
// (NULL: "follow") or an MJCF camera name; OSMesa, no display needed.
int srl_mj_sim_render(srl_mj_sim *s, uint8_t *rgb, int width, int height, const char *camera);

// internal: run fn(arg) with MuJoCo errors turned into SRL_EUNSUPPORTED naming `what`
int srl__mj_guarded(void (*fn)(void *), void *arg, const char *what);

#ifdef __cplusplus
}
#endif
#endif  // SRL_MJ_ENV_H

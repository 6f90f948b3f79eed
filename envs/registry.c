// registry.c: the table of environments by id, filled with the built-in families on first use,
// and srl_env_create (look up the id, create with options, apply the registered time limit;
// `remote:ENDPOINT` ids go to the remote env of bridges/remote_env.h).
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "bridges/remote_env.h"
#include "core/error.h"
#include "envs/builtin.h"
#include "envs/env.h"
#include "envs/wrappers.h"

#define REGISTRY_MAX 512

// a static table, so pointers handed out by srl_env_spec_at stay valid
static srl_env_spec table[REGISTRY_MAX];
static int table_n;
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;

// built-in registration runs once; a family's failure is kept to explain missing ids
static pthread_once_t builtins_once = PTHREAD_ONCE_INIT;
static _Thread_local int in_builtins;  // this thread is inside the built-in registration
static char builtins_error[512];


static void register_builtins(void) {
  static int (*const families[])(void) = {srl__register_simple_envs, srl__register_velocity_envs,
                                          srl__register_navigation_envs,
                                          srl__register_driving_envs};
  static const char *const names[] = {"simple", "velocity", "navigation", "driving"};
  in_builtins = 1;
  for (size_t i = 0; i < sizeof families / sizeof *families; i++) {
    int rc = families[i]();
    if (rc < 0 && !builtins_error[0])
      snprintf(builtins_error, sizeof builtins_error, "registering the %s envs failed: %s",
               names[i], srl_errmsg());
  }
  in_builtins = 0;
}


static void ensure_builtins(void) {
  if (!in_builtins) pthread_once(&builtins_once, register_builtins);
}


// the index of id in the table, or -1; call with table_mu held
static int find_locked(const char *id) {
  for (int i = 0; i < table_n; i++)
    if (!strcmp(table[i].id, id)) return i;
  return -1;
}


int srl_env_register(const srl_env_spec *spec) {
  ensure_builtins();
  if (!spec || !spec->id || !spec->create)
    return srl_error(SRL_EINVAL, "srl_env_register: the spec needs an id and a create function");
  size_t len = strlen(spec->id);
  if (len == 0 || len >= SRL_ENV_ID_MAX)
    return srl_error(SRL_EINVAL, "srl_env_register: id '%s' must have 1 to %d characters", spec->id,
                     SRL_ENV_ID_MAX - 1);
  if (spec->obs_dim <= 0 || spec->act_dim <= 0 || spec->act_dim > SRL_ENV_ACT_MAX ||
      spec->max_episode_steps < 0)
    return srl_error(SRL_EINVAL,
                     "srl_env_register: %s: obs_dim %d and act_dim %d must be in "
                     "[1, %d], max_episode_steps %d must not be negative",
                     spec->id, spec->obs_dim, spec->act_dim, SRL_ENV_ACT_MAX,
                     spec->max_episode_steps);
  pthread_mutex_lock(&table_mu);
  int rc = SRL_OK;
  if (find_locked(spec->id) >= 0)
    rc = srl_error(SRL_EINVAL, "srl_env_register: id '%s' is already registered", spec->id);
  else if (table_n == REGISTRY_MAX)
    rc = srl_error(SRL_ERANGE, "srl_env_register: the registry is full (%d ids)", REGISTRY_MAX);
  else
    table[table_n++] = *spec;
  pthread_mutex_unlock(&table_mu);
  return rc;
}


int srl_env_count(void) {
  ensure_builtins();
  pthread_mutex_lock(&table_mu);
  int n = table_n;
  pthread_mutex_unlock(&table_mu);
  return n;
}


const srl_env_spec *srl_env_spec_at(int i) {
  ensure_builtins();
  pthread_mutex_lock(&table_mu);
  const srl_env_spec *s = i >= 0 && i < table_n ? &table[i] : NULL;
  pthread_mutex_unlock(&table_mu);
  return s;
}


const srl_env_spec *srl_env_find(const char *id) {
  if (!id) return NULL;
  ensure_builtins();
  pthread_mutex_lock(&table_mu);
  int i = find_locked(id);
  pthread_mutex_unlock(&table_mu);
  return i >= 0 ? &table[i] : NULL;
}


// case-insensitive edit distance between short strings (ids), capped at the id length
static int edit_distance(const char *a, const char *b) {
  int la = (int)strlen(a), lb = (int)strlen(b);
  if (la >= SRL_ENV_ID_MAX || lb >= SRL_ENV_ID_MAX) return 1 << 20;
  int prev[SRL_ENV_ID_MAX + 1], cur[SRL_ENV_ID_MAX + 1];
  for (int j = 0; j <= lb; j++) prev[j] = j;
  for (int i = 1; i <= la; i++) {
    cur[0] = i;
    for (int j = 1; j <= lb; j++) {
      int ca = a[i - 1] | 0x20, cb = b[j - 1] | 0x20;  // ascii letters fold to lowercase
      int sub = prev[j - 1] + (ca != cb);
      int del = prev[j] + 1, ins = cur[j - 1] + 1;
      cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
    memcpy(prev, cur, sizeof(int) * (size_t)(lb + 1));
  }
  return prev[lb];
}


// the error for an unknown id, suggesting the closest registered one
static int unknown_id(const char *id) {
  const char *best = NULL;
  int best_d = 1 << 20;
  int n = srl_env_count();
  for (int i = 0; i < n; i++) {
    const srl_env_spec *s = srl_env_spec_at(i);
    int d = edit_distance(id, s->id);
    if (d < best_d) best_d = d, best = s->id;
  }
  char hint[SRL_ENV_ID_MAX + 32] = "";
  if (best && best_d <= 3 + (int)strlen(id) / 4)
    snprintf(hint, sizeof hint, " (did you mean '%s'?)", best);
  return srl_error(SRL_ENOTFOUND, "unknown env id '%s'%s; 'saferl envs' lists them%s%s", id, hint,
                   builtins_error[0] ? "; " : "", builtins_error);
}


// the created env must describe itself consistently with its spec
static int check_created(const srl_env_spec *spec, srl_env *env) {
  if (!env || !env->vt || !env->vt->reset || !env->vt->step || !env->vt->destroy)
    return srl_error(SRL_ESTATE, "%s: create returned an env without reset, step or destroy",
                     spec->id);
  if (!env->id[0]) snprintf(env->id, sizeof env->id, "%s", spec->id);
  const srl_space *o = &env->obs_space, *a = &env->act_space;
  if (o->dim != spec->obs_dim || a->dim != spec->act_dim)
    return srl_error(SRL_ESTATE,
                     "%s: created env has obs_dim %d and act_dim %d, registered %d "
                     "and %d",
                     spec->id, o->dim, a->dim, spec->obs_dim, spec->act_dim);
  if (!o->low || !o->high || !a->low || !a->high)
    return srl_error(SRL_ESTATE, "%s: created env lacks space bounds", spec->id);
  for (int i = 0; i < a->dim; i++)
    if (!(a->low[i] <= a->high[i]))
      return srl_error(SRL_ESTATE, "%s: action bounds [%g, %g] at index %d are not ordered",
                       spec->id, (double)a->low[i], (double)a->high[i], i);
  return SRL_OK;
}


int srl_env_id_known(const char *id) {
  if (!id) return 0;
  if (!strncmp(id, SRL_REMOTE_PREFIX, strlen(SRL_REMOTE_PREFIX))) return 1;
  return srl_env_find(id) != NULL;
}


int srl_env_create(srl_env **out, const char *id, const char *options_yaml) {
  if (!out) return srl_error(SRL_EINVAL, "srl_env_create: out must not be NULL");
  *out = NULL;
  if (!id) return srl_error(SRL_EINVAL, "srl_env_create: id must not be NULL");
  // an env served elsewhere: its server applies the time limit
  if (!strncmp(id, SRL_REMOTE_PREFIX, strlen(SRL_REMOTE_PREFIX)))
    return srl_remote_env_create(out, id + strlen(SRL_REMOTE_PREFIX), options_yaml);
  const srl_env_spec *spec = srl_env_find(id);
  if (!spec) return unknown_id(id);

  srl_env *env = NULL;
  int rc = spec->create(&env, options_yaml ? options_yaml : "");
  if (rc < 0) {
    if (!strstr(srl_errmsg(), id)) srl_error_context(rc, "%s: ", id);
    return rc;
  }
  rc = check_created(spec, env);
  if (rc < 0) {
    srl_env_destroy(env);
    return rc;
  }

  // the registered time limit wraps the env
  if (spec->max_episode_steps > 0) {
    srl_env *limited = NULL;
    rc = srl_wrap_time_limit(&limited, env, spec->max_episode_steps);
    if (rc < 0) {
      srl_env_destroy(env);
      return rc;
    }
    env = limited;
  }
  *out = env;
  return SRL_OK;
}

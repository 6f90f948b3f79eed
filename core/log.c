// log.c: the run directory's logs shared by the trainers: JSON/CSV value writers, events.jsonl
// lines, summary.json, the terminal progress line, run-directory naming, progress.csv truncation
// on resume, finding the latest checkpoint and the parameter scan for non-finite values.
#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif


static int stream_status(FILE *f) {
  return ferror(f) ? srl_error(SRL_EIO, "log: write failed") : SRL_OK;
}


//---- values --------------------------------------------------------------------------------------

int srl_log_json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p == '\n')
      fputs("\\n", f);
    else if (*p < 0x20)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
  return stream_status(f);
}


int srl_log_json_number(FILE *f, double x) {
  if (isfinite(x))
    fprintf(f, "%.9g", x);
  else
    fputs("null", f);
  return stream_status(f);
}


int srl_log_csv_number(FILE *f, double x) {
  if (isnan(x))
    fputs("nan", f);
  else
    fprintf(f, "%.9g", x);
  return stream_status(f);
}


int srl_log_iso_time(char *buf, size_t cap) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  if (strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    return srl_error(SRL_EINVAL, "log: time buffer of %zu bytes too small", cap);
  return SRL_OK;
}


int srl_log_duration(char *buf, size_t cap, double s) {
  int n;
  if (!isfinite(s) || s < 0) {
    n = snprintf(buf, cap, "?");
  } else {
    long v = (long)(s + 0.5);
    if (v >= 3600)
      n = snprintf(buf, cap, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
    else
      n = snprintf(buf, cap, "%ld:%02ld", v / 60, v % 60);
  }
  if (n < 0 || (size_t)n >= cap) return srl_error(SRL_EINVAL, "log: duration buffer too small");
  return SRL_OK;
}


//---- events.jsonl --------------------------------------------------------------------------------

int srl_log_event_begin(FILE *f, const char *name) {
  if (!f) return srl_error(SRL_EINVAL, "log: no events file");
  char when[32];
  SRL_TRY(srl_log_iso_time(when, sizeof when));
  fprintf(f, "{\"event\": \"%s\", \"time\": \"%s\"", name, when);
  return stream_status(f);
}


int srl_log_event_end(FILE *f) {
  if (!f) return srl_error(SRL_EINVAL, "log: no events file");
  fputs("}\n", f);
  if (fflush(f) != 0) return srl_error(SRL_EIO, "log: cannot write events: %s", strerror(errno));
  return stream_status(f);
}


int srl_log_event_run_fields(FILE *f, const srl_log_run *r) {
  fputs(", \"algo\": ", f);
  srl_log_json_string(f, r->algo);
  fputs(", \"env\": ", f);
  srl_log_json_string(f, r->env);
  fprintf(f, ", \"seed\": %d, \"epochs\": %d, \"steps_per_epoch\": %d, \"device\": \"%s\"", r->seed,
          r->epochs, r->steps_per_epoch, r->device);
  return stream_status(f);
}


static void json_string_or_null(FILE *f, const char *s) {
  if (s && s[0])
    srl_log_json_string(f, s);
  else
    fputs("null", f);
}


int srl_log_event_checkpoint(FILE *f, int epoch, long long total_steps, const char *path) {
  SRL_TRY(srl_log_event_begin(f, "checkpoint"));
  fprintf(f, ", \"epoch\": %d, \"total_steps\": %lld, \"path\": ", epoch, total_steps);
  srl_log_json_string(f, path);
  return srl_log_event_end(f);
}


// ", \"key\": " and a JSON number, for each key
static void event_numbers(FILE *f, int n, const char *const *keys, const double *vals) {
  for (int k = 0; k < n; k++) {
    fprintf(f, ", \"%s\": ", keys[k]);
    srl_log_json_number(f, vals[k]);
  }
}


int srl_log_event_epoch(FILE *f, int epoch, long long total_steps, double ep_ret, double ep_cost,
                        double lagrange, double fps) {
  SRL_TRY(srl_log_event_begin(f, "epoch"));
  fprintf(f, ", \"epoch\": %d, \"total_steps\": %lld", epoch, total_steps);
  static const char *const keys[4] = {"ep_ret", "ep_cost", "lagrange", "fps"};
  double vals[4] = {ep_ret, ep_cost, lagrange, fps};
  event_numbers(f, 4, keys, vals);
  return srl_log_event_end(f);
}


int srl_log_event_finish(FILE *f, int epochs, long long total_steps, double ep_ret, double ep_cost,
                         double wall_s) {
  SRL_TRY(srl_log_event_begin(f, "finish"));
  fprintf(f, ", \"epochs\": %d, \"total_steps\": %lld", epochs, total_steps);
  static const char *const keys[3] = {"ep_ret", "ep_cost", "wall_s"};
  double vals[3] = {ep_ret, ep_cost, wall_s};
  event_numbers(f, 3, keys, vals);
  fputs(", \"checkpoint\": \"final.safetensors\"", f);
  return srl_log_event_end(f);
}


int srl_log_event_interrupted(FILE *f, int epoch, int signal, const char *checkpoint) {
  SRL_TRY(srl_log_event_begin(f, "interrupted"));
  fprintf(f, ", \"epoch\": %d, \"signal\": %d, \"checkpoint\": ", epoch, signal);
  json_string_or_null(f, checkpoint);
  return srl_log_event_end(f);
}


int srl_log_event_nan_stop(FILE *f, int epoch, const char *message, const char *checkpoint) {
  SRL_TRY(srl_log_event_begin(f, "nan_stop"));
  fprintf(f, ", \"epoch\": %d, \"message\": ", epoch);
  srl_log_json_string(f, message);
  fputs(", \"checkpoint\": ", f);
  json_string_or_null(f, checkpoint);
  return srl_log_event_end(f);
}


int srl_log_event_error(FILE *f, const char *message) {
  SRL_TRY(srl_log_event_begin(f, "error"));
  fputs(", \"message\": ", f);
  srl_log_json_string(f, message);
  return srl_log_event_end(f);
}


//---- summary.json --------------------------------------------------------------------------------

// ",\n  \"key\": " and a JSON number
static void summary_number(FILE *f, const char *key, double v) {
  fprintf(f, ",\n  \"%s\": ", key);
  srl_log_json_number(f, v);
}


int srl_log_summary_write(const char *run_dir, const srl_log_summary *s) {
  char path[PATH_MAX], tmp[PATH_MAX + 8];
  SRL_TRY(srl_run_dir_join(path, sizeof path, run_dir, "summary.json"));
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return srl_error(SRL_EIO, "cannot write %s: %s", tmp, strerror(errno));
  fputs("{\n  \"status\": ", f);
  srl_log_json_string(f, s->status);
  fputs(",\n  \"algo\": ", f);
  srl_log_json_string(f, s->run.algo);
  fputs(",\n  \"env\": ", f);
  srl_log_json_string(f, s->run.env);
  fprintf(f,
          ",\n  \"seed\": %d,\n  \"epochs\": %d,\n  \"epochs_total\": %d,\n"
          "  \"total_steps\": %lld,\n  \"episodes\": %lld",
          s->run.seed, s->epochs_done, s->run.epochs, s->total_steps, s->episodes);
  const char *keys[6] = {"ep_ret", "ep_cost", "ep_len", "lagrange", "cost_limit", "wall_s"};
  double vals[6] = {s->ep_ret, s->ep_cost, s->ep_len, s->lagrange, s->cost_limit, s->wall_s};
  for (int k = 0; k < 6; k++) summary_number(f, keys[k], vals[k]);
  fputs(",\n  \"checkpoint\": ", f);
  json_string_or_null(f, s->checkpoint);
  fputs(",\n  \"message\": ", f);
  srl_log_json_string(f, s->message);
  fputs(",\n  \"run_dir\": ", f);
  srl_log_json_string(f, s->run_dir);
  fputs("\n}\n", f);
  int bad = ferror(f);
  if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
    unlink(tmp);
    return srl_error(SRL_EIO, "cannot write %s", path);
  }
  return SRL_OK;
}


//---- the progress line ---------------------------------------------------------------------------

int srl_log_progress_emit(const char *line, int tty) {
  if (tty)
    fprintf(stderr, "\r\033[K%s", line);
  else
    fprintf(stderr, "%s\n", line);
  fflush(stderr);
  return SRL_OK;
}


//---- parameters ----------------------------------------------------------------------------------

int srl_log_scan_params(const srl_mlp *net, const char *name, const srl_ops *ops, float *host) {
  const float *p = net->params;
  if (ops && ops->device != SRL_DEVICE_CPU) {
    if (!host) return srl_error(SRL_EINVAL, "parameter scan: no host buffer");
    SRL_TRY(ops->download(host, net->params, sizeof(float) * net->n_params));
    p = host;
  }
  for (int i = 0; i < net->n_tensors; i++) {
    const srl_nn_tensor *ts = &net->tensors[i];
    for (size_t j = 0; j < ts->numel; j++)
      if (!isfinite(p[ts->offset + j]))
        return srl_error(SRL_ENONFINITE, "parameter %s.%s[%zu] is %g", name, ts->name, j,
                         p[ts->offset + j]);
  }
  return SRL_OK;
}


//---- the run directory ---------------------------------------------------------------------------

int srl_run_dir_join(char *out, size_t cap, const char *dir, const char *name) {
  int n = snprintf(out, cap, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= cap) return srl_error(SRL_EINVAL, "path too long: %s/%s", dir, name);
  return SRL_OK;
}


int srl_run_dir_mkdirs(const char *path) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return srl_error(SRL_EINVAL, "path too long: %s", path);
  if (!buf[0]) return srl_error(SRL_EINVAL, "mkdir: empty path");
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
      return srl_error(SRL_EIO, "cannot create %s: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0777) != 0 && errno != EEXIST)
    return srl_error(SRL_EIO, "cannot create %s: %s", buf, strerror(errno));
  return SRL_OK;
}


int srl_run_dir_create(char *out, size_t cap, const char *base, const char *algo, const char *env,
                       int seed) {
  if (!base || !base[0]) base = ".";
  SRL_TRY(srl_run_dir_mkdirs(base));
  char stamp[32];
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  // an env id may be an endpoint ("remote:ipc:///tmp/x"): keep the name one path component
  char name[128];
  snprintf(name, sizeof name, "%s", env);
  for (char *c = name; *c; c++)
    if (*c == '/' || *c == ':') *c = '_';
  env = name;
  for (int k = 0;; k++) {
    int w = k ? snprintf(out, cap, "%s/%s-%s-s%d-%s-%d", base, algo, env, seed, stamp, k)
              : snprintf(out, cap, "%s/%s-%s-s%d-%s", base, algo, env, seed, stamp);
    if (w < 0 || (size_t)w >= cap) return srl_error(SRL_EINVAL, "run directory path too long");
    if (mkdir(out, 0777) == 0) break;
    if (errno != EEXIST || k > 1000)
      return srl_error(SRL_EIO, "cannot create %s: %s", out, strerror(errno));
  }
  char path[PATH_MAX];
  SRL_TRY(srl_run_dir_join(path, sizeof path, out, "checkpoints"));
  return srl_run_dir_mkdirs(path);
}


int srl_run_dir_claim(const char *dir) {
  SRL_TRY(srl_run_dir_mkdirs(dir));
  char path[PATH_MAX];
  SRL_TRY(srl_run_dir_join(path, sizeof path, dir, "progress.csv"));
  if (access(path, F_OK) == 0)
    return srl_error(SRL_EINVAL, "%s already holds a run (resume it with --resume)", dir);
  SRL_TRY(srl_run_dir_join(path, sizeof path, dir, "checkpoints"));
  return srl_run_dir_mkdirs(path);
}


int srl_run_dir_truncate_progress(const char *run_dir, int epoch) {
  char path[PATH_MAX], tmp[PATH_MAX + 8];
  SRL_TRY(srl_run_dir_join(path, sizeof path, run_dir, "progress.csv"));
  FILE *f = fopen(path, "r");
  if (!f) return srl_error(SRL_EIO, "cannot read %s: %s", path, strerror(errno));
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *o = fopen(tmp, "w");
  if (!o) {
    fclose(f);
    return srl_error(SRL_EIO, "cannot write %s: %s", tmp, strerror(errno));
  }
  char *line = NULL;
  size_t cap = 0;
  int first = 1;
  while (getline(&line, &cap, f) > 0) {
    if (first || atoi(line) <= epoch) fputs(line, o);
    first = 0;
  }
  free(line);
  fclose(f);
  int bad = ferror(o);
  if (fclose(o) != 0 || bad || rename(tmp, path) != 0) {
    unlink(tmp);
    return srl_error(SRL_EIO, "cannot rewrite %s", path);
  }
  return SRL_OK;
}


int srl_run_dir_checkpoint_epoch(const char *name) {
  const char *p = strrchr(name, '/');
  p = p ? p + 1 : name;
  if (strncmp(p, "epoch-", 6) != 0) return -1;
  char *end;
  long n = strtol(p + 6, &end, 10);
  if (end == p + 6 || n < 0 || n > 1000000000 || strcmp(end, ".safetensors") != 0) return -1;
  return (int)n;
}


// the latest epoch-<N>.safetensors in dir, or -1
static int latest_in(const char *dir, char *out, size_t cap) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int best = -1;
  struct dirent *e;
  while ((e = readdir(d))) {
    int n = srl_run_dir_checkpoint_epoch(e->d_name);
    if (n > best) best = n;
  }
  closedir(d);
  if (best >= 0 && snprintf(out, cap, "%s/epoch-%d.safetensors", dir, best) >= (int)cap) return -1;
  return best;
}


int srl_run_dir_find_checkpoint(char *out, size_t cap, const char *path, int allow_final,
                                int *epoch) {
  struct stat st;
  if (stat(path, &st) != 0) return srl_error(SRL_ENOTFOUND, "%s: %s", path, strerror(errno));
  if (!S_ISDIR(st.st_mode)) {
    if (snprintf(out, cap, "%s", path) >= (int)cap)
      return srl_error(SRL_EINVAL, "path too long: %s", path);
    *epoch = srl_run_dir_checkpoint_epoch(path);
    return SRL_OK;
  }
  char probe[PATH_MAX];
  snprintf(probe, sizeof probe, "%s/final.safetensors", path);
  if (allow_final && stat(probe, &st) == 0 && snprintf(out, cap, "%s", probe) < (int)cap) {
    *epoch = -1;
    return SRL_OK;
  }
  snprintf(probe, sizeof probe, "%s/checkpoints", path);
  int n = latest_in(probe, out, cap);
  if (n < 0) n = latest_in(path, out, cap);
  if (n < 0)
    return srl_error(SRL_ENOTFOUND, "%s holds no %scheckpoints/epoch-<N>.safetensors", path,
                     allow_final ? "final.safetensors and no " : "");
  *epoch = n;
  return SRL_OK;
}

// log.h: the run directory's logs shared by the trainers: JSON/CSV value writers, events.jsonl
// lines, summary.json, the terminal progress line, run-directory naming and resume helpers
// (progress.csv truncation, the latest checkpoint), and the parameter scan for non-finite values.
#ifndef SRL_LOG_H
#define SRL_LOG_H

#include <stddef.h>
#include <stdio.h>

#include "core/nn.h"
#include "core/ops.h"

// ---- values ----

// A JSON string literal: quotes and backslashes escaped, '\n' as \n, other control characters as
// \u00XX; NULL writes "". SRL_EIO when the stream has failed.
int srl_log_json_string(FILE *f, const char *s);
// A JSON number: %.9g, null when not finite.
int srl_log_json_number(FILE *f, double x);
// A CSV number: %.9g, "nan" for every NaN.
int srl_log_csv_number(FILE *f, double x);
// The current UTC time as ISO 8601 (YYYY-mm-ddTHH:MM:SSZ); cap ≥ 21.
int srl_log_iso_time(char *buf, size_t cap);
// A duration as m:ss or h:mm:ss ("?" when negative or not finite).
int srl_log_duration(char *buf, size_t cap, double seconds);

// ---- events.jsonl ----

// the identity of a run, as the start and resume events carry it
// Where a trainer puts its run, shared by the on- and off-policy trainers.
typedef struct srl_run_options {
  const char *out_dir;  // parent of the run directory (NULL: logger_cfgs.log_dir)
  const char *run_dir;  // use exactly this directory instead (created; must not hold a run)
  int quiet;            // 1: no progress output
} srl_run_options;

typedef struct srl_log_run {
  const char *algo, *env, *device;
  int seed, epochs, steps_per_epoch;
} srl_log_run;

// Begin a line {"event": "<name>", "time": "<now>"; the caller appends ", \"key\": value" pieces
// and ends it with srl_log_event_end (which writes "}\n" and flushes).
int srl_log_event_begin(FILE *f, const char *name);
int srl_log_event_end(FILE *f);
// , "algo": ..., "env": ..., "seed": ..., "epochs": ..., "steps_per_epoch": ..., "device": ...
int srl_log_event_run_fields(FILE *f, const srl_log_run *run);

// The run's lifecycle events (whole lines; checkpoint NULL or "" writes null):
// {"event": "checkpoint", ..., "epoch", "total_steps", "path"}
int srl_log_event_checkpoint(FILE *f, int epoch, long long total_steps, const char *path);
// {"event": "epoch", ..., "epoch", "total_steps", "ep_ret", "ep_cost", "lagrange", "fps"}
int srl_log_event_epoch(FILE *f, int epoch, long long total_steps, double ep_ret, double ep_cost,
                        double lagrange, double fps);
// {"event": "finish", ..., "epochs", "total_steps", "ep_ret", "ep_cost", "wall_s", "checkpoint":
// "final.safetensors"}
int srl_log_event_finish(FILE *f, int epochs, long long total_steps, double ep_ret, double ep_cost,
                         double wall_s);
// {"event": "interrupted", ..., "epoch", "signal", "checkpoint"}
int srl_log_event_interrupted(FILE *f, int epoch, int signal, const char *checkpoint);
// {"event": "nan_stop", ..., "epoch", "message", "checkpoint"}
int srl_log_event_nan_stop(FILE *f, int epoch, const char *message, const char *checkpoint);
// {"event": "error", ..., "message"}
int srl_log_event_error(FILE *f, const char *message);

// ---- summary.json ----

typedef struct srl_log_summary {
  const char *status;
  const char *message;     // NULL writes ""
  const char *checkpoint;  // relative to the run directory; NULL or "" writes null
  const char *run_dir;
  srl_log_run run;  // algo, env, seed and epochs (the run's total)
  int epochs_done;
  long long total_steps, episodes;
  double ep_ret, ep_cost, ep_len, lagrange, cost_limit, wall_s;
} srl_log_summary;

// Write <run_dir>/summary.json atomically (through summary.json.tmp).
int srl_log_summary_write(const char *run_dir, const srl_log_summary *s);

// ---- the progress line ----

// Print line on stderr: on a terminal redrawn in place ("\r\033[K" before it), else as a line.
int srl_log_progress_emit(const char *line, int tty);

// ---- parameters ----

// Every parameter of net finite, else SRL_ENONFINITE "parameter <name>.<tensor>[i] is v". On a
// device other than the CPU the parameters are first copied to host (n_params floats).
int srl_log_scan_params(const srl_mlp *net, const char *name, const srl_ops *ops, float *host);

// ---- the run directory ----

// out = dir/name (SRL_EINVAL when it does not fit).
int srl_run_dir_join(char *out, size_t cap, const char *dir, const char *name);
// mkdir -p.
int srl_run_dir_mkdirs(const char *path);
// A fresh run directory <base>/<algo>-<env>-s<seed>-<YYYYmmdd-HHMMSS>[-k] (local time; k = 1, 2,
// ... when the name is taken) with its checkpoints/ folder; base "" is ".". out receives it.
int srl_run_dir_create(char *out, size_t cap, const char *base, const char *algo, const char *env,
                       int seed);
// A run directory the caller named: created when missing, refused (SRL_EINVAL) when it already
// holds a progress.csv; with its checkpoints/ folder.
int srl_run_dir_claim(const char *dir);
// Keep progress.csv's header and the rows of epochs ≤ epoch (atomically).
int srl_run_dir_truncate_progress(const char *run_dir, int epoch);
// N of a file name (or path) "epoch-<N>.safetensors", or -1.
int srl_run_dir_checkpoint_epoch(const char *name);
// Resolve a checkpoint path: a file as it is; a directory's final.safetensors (when allow_final),
// else the latest epoch-<N>.safetensors in dir/checkpoints or in dir itself (*epoch = N; -1 for a
// final or a file not named epoch-<N>). SRL_ENOTFOUND when there is none.
int srl_run_dir_find_checkpoint(char *out, size_t cap, const char *path, int allow_final,
                                int *epoch);

#endif  // SRL_LOG_H

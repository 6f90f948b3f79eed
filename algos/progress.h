// progress.h: reading a run's progress.csv into columns by name, and aggregating one metric over
// several runs (seeds) on common steps: mean, standard deviation, minimum and maximum.
//
// progress.csv is a header line of column names, then one row per epoch of numbers separated by
// commas (epoch,total_steps,ep_ret,ep_cost,... see docs); an empty field or "nan" is a missing
// value (NaN). Every malformed line is reported as "path:line: ..." through srl_errmsg().
#ifndef SRL_PROGRESS_H
#define SRL_PROGRESS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// one progress.csv in memory; one allocation holds the struct and every array
typedef struct srl_progress {
  const char *path;    // the file (or name) it was read from, for messages
  int n_cols, n_rows;  // columns of the header; data rows (blank lines are skipped)
  const char **names;  // (n_cols) column names, trimmed
  double *data;        // (n_rows, n_cols) row-major; missing values are NaN
  int *lines;          // (n_rows) the 1-based file line of each row
} srl_progress;

// Parse progress.csv text of `len` bytes (need not be NUL-terminated); `name` labels messages.
// Errors: SRL_EFORMAT for an empty file, an empty or duplicate column name, a row with the
// wrong number of fields or a field that is not a number; SRL_ENOMEM.
int srl_progress_parse(srl_progress **out, const char *text, size_t len, const char *name);

// Read and parse a file; SRL_ENOTFOUND when it does not exist, SRL_EIO when it cannot be read.
int srl_progress_load(srl_progress **out, const char *path);

void srl_progress_destroy(srl_progress *p);

// Index of a column; SRL_ENOTFOUND (message naming the file and the columns it has) otherwise.
int srl_progress_column(const srl_progress *p, const char *name);

static inline double srl_progress_at(const srl_progress *p, int row, int col) {
  return p->data[(size_t)row * (size_t)p->n_cols + (size_t)col];
}

//---- aggregation over runs ----------------------------------------------------------------------

// One metric of several runs on a common x grid. The grid is the union of the runs' x values
// inside the range every run covers (from the largest first x to the smallest last x), so runs
// of different lengths are truncated to the shortest range; a run whose x values do not fall on
// a grid point is linearly interpolated there. When the runs share their x values (seeds of one
// config) nothing is interpolated. Statistics at a point use the runs with a finite value there.
typedef struct srl_progress_agg {
  int n;         // grid points
  int n_runs;    // runs aggregated
  double *x;     // (n) increasing
  double *mean;  // (n) mean over runs; NaN where no run has a finite value
  double *std;   // (n) sample standard deviation (n−1 in the denominator; 0 for one run)
  double *min;   // (n)
  double *max;   // (n)
  int *count;    // (n) runs with a finite value at that point
} srl_progress_agg;

// Aggregate column y_col against x_col over runs[0..n_runs). Each run's y is first smoothed
// with a centred moving average of `smooth` rows (1 or 0: none; NaNs are left out of the
// average), the window numpy's convolve(y, ones(smooth), 'same') uses. x must increase strictly
// within a run and be finite. Errors: SRL_EINVAL (no runs, smooth < 0), SRL_ENOTFOUND (a
// column is missing), SRL_EFORMAT ("path:line: total_steps does not increase", non-finite x,
// no rows), SRL_ERANGE (the runs' x ranges do not overlap), SRL_ENOMEM.
int srl_progress_aggregate(srl_progress_agg **out, const srl_progress *const *runs, int n_runs,
                           const char *x_col, const char *y_col, int smooth);

void srl_progress_agg_destroy(srl_progress_agg *a);

#ifdef __cplusplus
}
#endif
#endif  // SRL_PROGRESS_H

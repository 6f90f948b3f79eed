// progress.c: progress.csv into columns by name (every malformed line reported as path:line),
// and one metric aggregated over runs on their common steps (mean, std, min, max per point).
#include "algos/progress.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

//---- lines and fields ---------------------------------------------------------------------------

// one line of the text: [b, e) without its "\n" or "\r\n"; `terminated` when a newline ended it
typedef struct line {
  const char *b, *e;
  int terminated;
} line;

// the line starting at *pos; advances *pos past it; 0 at the end of the text
static int next_line(const char *text, size_t len, size_t *pos, line *ln) {
  if (*pos >= len) return 0;
  const char *b = text + *pos, *end = text + len;
  const char *nl = memchr(b, '\n', (size_t)(end - b));
  const char *e = nl ? nl : end;
  *pos = (size_t)(e - text) + (nl ? 1 : 0);
  if (e > b && e[-1] == '\r') e--;
  ln->b = b, ln->e = e, ln->terminated = nl != NULL;
  return 1;
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

static int is_blank(const line *ln) {
  for (const char *p = ln->b; p < ln->e; p++)
    if (!is_space(*p)) return 0;
  return 1;
}

// trim [*b, *e) of spaces
static void trim(const char **b, const char **e) {
  while (*b < *e && is_space(**b)) (*b)++;
  while (*e > *b && is_space((*e)[-1])) (*e)--;
}

static int count_fields(const line *ln) {
  int n = 1;
  for (const char *p = ln->b; p < ln->e; p++) n += *p == ',';
  return n;
}

// the field [*b, *e) after `p` (trimmed); returns the position after its comma (or the line end)
static const char *field(const char *p, const char *end, const char **b, const char **e) {
  const char *c = memchr(p, ',', (size_t)(end - p));
  *b = p, *e = c ? c : end;
  trim(b, e);
  return c ? c + 1 : end;
}

// a number field: empty is NaN; anything strtod does not consume whole is an error
static int parse_number(const char *b, const char *e, double *v) {
  if (b == e) {
    *v = NAN;
    return 0;
  }
  char buf[64];
  size_t n = (size_t)(e - b);
  if (n >= sizeof buf) return -1;
  memcpy(buf, b, n);
  buf[n] = '\0';
  char *stop;
  errno = 0;
  *v = strtod(buf, &stop);
  if (stop != buf + n) return -1;
  return 0;
}

//---- parsing ------------------------------------------------------------------------------------

int srl_progress_parse(srl_progress **out, const char *text, size_t len, const char *name) {
  if (!out) return srl_error(SRL_EINVAL, "progress: out is NULL");
  *out = NULL;
  if (!name) name = "progress.csv";
  if (!text && len) return srl_error(SRL_EINVAL, "%s: text is NULL", name);

  // the header: the first line, which must name every column
  size_t pos = 0;
  line hdr;
  if (!next_line(text, len, &pos, &hdr) || is_blank(&hdr))
    return srl_error(SRL_EFORMAT,
                     "%s:1: empty header (expected column names such as "
                     "epoch,total_steps,ep_ret,ep_cost)",
                     name);
  int n_cols = count_fields(&hdr);
  size_t name_bytes = (size_t)(hdr.e - hdr.b) + (size_t)n_cols;  // each name and its NUL

  // count the rows; an unterminated malformed last line is one still being written: dropped
  int n_rows = 0;
  for (size_t p2 = pos;;) {
    line ln;
    if (!next_line(text, len, &p2, &ln)) break;
    if (!is_blank(&ln)) n_rows++;
  }

  // one block: struct, name pointers, name text, path, data, line numbers
  size_t total = 0;
  size_t o_self = srl_layout_add(&total, sizeof(srl_progress));
  size_t o_names = srl_layout_add(&total, sizeof(char *) * (size_t)n_cols);
  size_t o_text = srl_layout_add(&total, name_bytes);
  size_t o_path = srl_layout_add(&total, strlen(name) + 1);
  size_t o_data = srl_layout_add(&total, sizeof(double) * (size_t)n_rows * (size_t)n_cols + 1);
  size_t o_lines = srl_layout_add(&total, sizeof(int) * (size_t)n_rows + 1);
  char *base = srl_calloc(total);
  if (!base) return srl_error_context(SRL_ENOMEM, "%s: ", name);
  srl_progress *p = (srl_progress *)(base + o_self);
  p->names = (const char **)(base + o_names);
  char *names_text = base + o_text;
  char *path = base + o_path;
  memcpy(path, name, strlen(name) + 1);
  p->path = path;
  p->n_cols = n_cols;
  p->data = (double *)(base + o_data);
  p->lines = (int *)(base + o_lines);

  // column names: non-empty and distinct
  int rc = SRL_OK;
  const char *q = hdr.b;
  for (int c = 0; c < n_cols; c++) {
    const char *b, *e;
    q = field(q, hdr.e, &b, &e);
    size_t n = (size_t)(e - b);
    memcpy(names_text, b, n);
    names_text[n] = '\0';
    p->names[c] = names_text;
    names_text += n + 1;
    if (n == 0) {
      rc = srl_error(SRL_EFORMAT, "%s:1: column %d has an empty name", name, c + 1);
      goto fail;
    }
    for (int k = 0; k < c; k++)
      if (!strcmp(p->names[k], p->names[c])) {
        rc = srl_error(SRL_EFORMAT, "%s:1: column '%s' appears twice (columns %d and %d)", name,
                       p->names[c], k + 1, c + 1);
        goto fail;
      }
  }

  // the rows
  int r = 0, lineno = 1;
  for (;;) {
    line ln;
    if (!next_line(text, len, &pos, &ln)) break;
    lineno++;
    if (is_blank(&ln)) continue;
    double *row = p->data + (size_t)r * (size_t)n_cols;
    int nf = count_fields(&ln), bad_col = -1;
    if (nf == n_cols) {
      const char *s = ln.b;
      for (int c = 0; c < n_cols && bad_col < 0; c++) {
        const char *b, *e;
        s = field(s, ln.e, &b, &e);
        if (parse_number(b, e, &row[c]) < 0) bad_col = c;
      }
    }
    if (nf != n_cols || bad_col >= 0) {
      if (!ln.terminated) break;  // the last line, cut off mid-write: left out
      if (nf != n_cols) {
        rc = srl_error(SRL_EFORMAT, "%s:%d: %d field%s, the header names %d columns", name, lineno,
                       nf, nf == 1 ? "" : "s", n_cols);
      } else {
        const char *s = ln.b, *b = NULL, *e = NULL;
        for (int c = 0; c <= bad_col; c++) s = field(s, ln.e, &b, &e);
        int n = (int)(e - b) > 40 ? 40 : (int)(e - b);
        rc = srl_error(SRL_EFORMAT, "%s:%d: column '%s': '%.*s%s' is not a number", name, lineno,
                       p->names[bad_col], n, b, (e - b) > 40 ? "..." : "");
      }
      goto fail;
    }
    p->lines[r++] = lineno;
  }
  p->n_rows = r;
  *out = p;
  return SRL_OK;

fail:
  srl_free(base);
  return rc;
}


int srl_progress_load(srl_progress **out, const char *path) {
  if (!out || !path) return srl_error(SRL_EINVAL, "progress: out or path is NULL");
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    int code = errno == ENOENT ? SRL_ENOTFOUND : SRL_EIO;
    return srl_error(code, "%s: %s", path, strerror(errno));
  }
  // read the whole file; it is small (one row per epoch)
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  int rc = SRL_OK;
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    char *bigger = realloc(buf, cap * 2);
    if (!bigger) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = bigger, cap *= 2;
  }
  if (!buf)
    rc = srl_error(SRL_ENOMEM, "%s: out of memory reading the file", path);
  else if (ferror(f))
    rc = srl_error(SRL_EIO, "%s: read failed: %s", path, strerror(errno));
  fclose(f);
  if (rc == SRL_OK) rc = srl_progress_parse(out, buf, n, path);
  free(buf);
  return rc;
}


void srl_progress_destroy(srl_progress *p) {
  srl_free(p);
}


int srl_progress_column(const srl_progress *p, const char *name) {
  if (!p || !name) return srl_error(SRL_EINVAL, "progress: p or name is NULL");
  for (int c = 0; c < p->n_cols; c++)
    if (!strcmp(p->names[c], name)) return c;
  // the message lists what the file has
  char have[512];
  size_t o = 0;
  have[0] = '\0';
  for (int c = 0; c < p->n_cols && o + 8 < sizeof have; c++) {
    int w = snprintf(have + o, sizeof have - o, "%s%s", c ? "," : "", p->names[c]);
    if (w < 0) break;
    o += (size_t)w;
  }
  if (o >= sizeof have) memcpy(have + sizeof have - 4, "...", 4);
  return srl_error(SRL_ENOTFOUND, "%s: no column '%s' (the header has %s)", p->path, name, have);
}

//---- aggregation --------------------------------------------------------------------------------

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

// centred moving average of `w` points over finite values (numpy's convolve(..., 'same') window:
// rows i + (w−1)/2 − w + 1 … i + (w−1)/2)
static void smooth_into(double *out, const srl_progress *p, int col, int w) {
  int n = p->n_rows;
  for (int i = 0; i < n; i++) {
    if (w <= 1) {
      out[i] = srl_progress_at(p, i, col);
      continue;
    }
    int hi = i + (w - 1) / 2, lo = hi - w + 1;
    if (lo < 0) lo = 0;
    if (hi > n - 1) hi = n - 1;
    double s = 0;
    int k = 0;
    for (int j = lo; j <= hi; j++) {
      double v = srl_progress_at(p, j, col);
      if (isfinite(v)) s += v, k++;
    }
    out[i] = k ? s / k : NAN;
  }
}


int srl_progress_aggregate(srl_progress_agg **out, const srl_progress *const *runs, int n_runs,
                           const char *x_col, const char *y_col, int smooth) {
  if (!out) return srl_error(SRL_EINVAL, "progress: out is NULL");
  *out = NULL;
  if (!runs || n_runs <= 0) return srl_error(SRL_EINVAL, "progress: no runs to aggregate");
  if (!x_col || !y_col) return srl_error(SRL_EINVAL, "progress: column name is NULL");
  if (smooth < 0) return srl_error(SRL_EINVAL, "progress: smoothing window %d < 0", smooth);

  // every run: both columns, rows, finite and strictly increasing x; the common range
  double lo = -INFINITY, hi = INFINITY;
  size_t cap = 0;
  for (int r = 0; r < n_runs; r++) {
    const srl_progress *p = runs[r];
    if (!p) return srl_error(SRL_EINVAL, "progress: run %d is NULL", r);
    int xc = srl_progress_column(p, x_col);
    if (xc < 0) return xc;
    int yc = srl_progress_column(p, y_col);
    if (yc < 0) return yc;
    if (p->n_rows == 0) return srl_error(SRL_EFORMAT, "%s: no data rows", p->path);
    for (int i = 0; i < p->n_rows; i++) {
      double x = srl_progress_at(p, i, xc);
      if (!isfinite(x))
        return srl_error(SRL_EFORMAT, "%s:%d: %s is %g, not a finite number", p->path, p->lines[i],
                         x_col, x);
      if (i && !(x > srl_progress_at(p, i - 1, xc)))
        return srl_error(SRL_EFORMAT,
                         "%s:%d: %s %.17g does not increase (the previous row has "
                         "%.17g)",
                         p->path, p->lines[i], x_col, x, srl_progress_at(p, i - 1, xc));
    }
    double first = srl_progress_at(p, 0, xc), last = srl_progress_at(p, p->n_rows - 1, xc);
    if (first > lo) lo = first;
    if (last < hi) hi = last;
    cap += (size_t)p->n_rows;
  }
  if (lo > hi)
    return srl_error(SRL_ERANGE,
                     "progress: the runs share no range of %s (one starts at %g, "
                     "another ends at %g)",
                     x_col, lo, hi);

  // one block: the struct, the grid and statistics (at most cap points), smoothed y per run
  size_t total = 0;
  size_t o_self = srl_layout_add(&total, sizeof(srl_progress_agg));
  size_t o_x = srl_layout_add(&total, sizeof(double) * cap);
  size_t o_mean = srl_layout_add(&total, sizeof(double) * cap);
  size_t o_std = srl_layout_add(&total, sizeof(double) * cap);
  size_t o_min = srl_layout_add(&total, sizeof(double) * cap);
  size_t o_max = srl_layout_add(&total, sizeof(double) * cap);
  size_t o_count = srl_layout_add(&total, sizeof(int) * cap);
  size_t o_y = srl_layout_add(&total, sizeof(double) * cap);
  char *base = srl_calloc(total);
  if (!base) return srl_error_context(SRL_ENOMEM, "progress: aggregate: ");
  srl_progress_agg *a = (srl_progress_agg *)(base + o_self);
  a->x = (double *)(base + o_x);
  a->mean = (double *)(base + o_mean);
  a->std = (double *)(base + o_std);
  a->min = (double *)(base + o_min);
  a->max = (double *)(base + o_max);
  a->count = (int *)(base + o_count);
  a->n_runs = n_runs;
  double *ys = (double *)(base + o_y);

  // the grid: every run's x inside [lo, hi], sorted, duplicates removed
  int n = 0;
  for (int r = 0; r < n_runs; r++) {
    const srl_progress *p = runs[r];
    int xc = srl_progress_column(p, x_col);
    for (int i = 0; i < p->n_rows; i++) {
      double x = srl_progress_at(p, i, xc);
      if (x >= lo && x <= hi) a->x[n++] = x;
    }
  }
  qsort(a->x, (size_t)n, sizeof(double), cmp_double);
  int m = 0;
  for (int i = 0; i < n; i++)
    if (m == 0 || a->x[i] != a->x[m - 1]) a->x[m++] = a->x[i];
  a->n = m;
  for (int i = 0; i < m; i++) a->min[i] = INFINITY, a->max[i] = -INFINITY;

  // each run: smooth, then read it at the grid points (exact where x matches, linear between
  // rows otherwise) and fold the value into the running mean / M2 (Welford) and extremes
  for (int r = 0; r < n_runs; r++) {
    const srl_progress *p = runs[r];
    int xc = srl_progress_column(p, x_col), yc = srl_progress_column(p, y_col);
    smooth_into(ys, p, yc, smooth);
    int k = 0;
    for (int i = 0; i < m; i++) {
      double g = a->x[i];
      while (k + 1 < p->n_rows && srl_progress_at(p, k + 1, xc) <= g) k++;
      double x0 = srl_progress_at(p, k, xc), v;
      if (x0 == g || k + 1 >= p->n_rows) {
        v = ys[k];
      } else {
        double x1 = srl_progress_at(p, k + 1, xc);
        v = ys[k] + (ys[k + 1] - ys[k]) * (g - x0) / (x1 - x0);
      }
      if (!isfinite(v)) continue;
      int c = ++a->count[i];
      double d = v - a->mean[i];
      a->mean[i] += d / c;
      a->std[i] += d * (v - a->mean[i]);
      if (v < a->min[i]) a->min[i] = v;
      if (v > a->max[i]) a->max[i] = v;
    }
  }
  for (int i = 0; i < m; i++) {
    int c = a->count[i];
    if (c == 0) {
      a->mean[i] = a->std[i] = a->min[i] = a->max[i] = NAN;
    } else {
      a->std[i] = c > 1 ? sqrt(a->std[i] / (c - 1)) : 0.0;
    }
  }
  *out = a;
  return SRL_OK;
}


void srl_progress_agg_destroy(srl_progress_agg *a) {
  srl_free(a);
}

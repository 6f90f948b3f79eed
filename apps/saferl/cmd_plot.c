// cmd_plot.c: `saferl plot RUN_DIR... --out curves.png` draws learning curves with gnuplot:
// episode return and episode cost against environment steps, one curve per group of runs (the
// run directory name without its -s<seed>-<time> suffix, so the seeds of one algo on one env
// form a group), the mean over seeds with a shaded band (min–max, or ±1 std), and the cost limit
// as a dashed line on the cost panel.
//
//   saferl plot RUN_DIR... --out FILE.png [--cost-limit X] [--x COLUMN] [--smooth N]
//               [--band minmax|std] [--title T] [--size WxH] [--script FILE.gp]
//
// Runs of one group that stopped at different epochs are truncated to the range of steps they
// all cover (srl_progress_aggregate). The cost limit comes from --cost-limit, else from each
// run's config.yaml (lagrange_cfgs.cost_limit). gnuplot is driven through a pipe with the data
// inline; the PNG is written beside the target and renamed, so a failure leaves no half file.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "algos/progress.h"
#include "apps/saferl/commands.h"
#include "core/error.h"

//---- one run: progress.csv and what config.yaml says -------------------------------------------

typedef struct run_info {
  char dir[PATH_MAX];    // the run directory as given (trailing slashes dropped)
  char label[PATH_MAX];  // its group
  char algo[128], env[128];
  double cost_limit;  // NAN when config.yaml does not give one
  srl_progress *progress;
} run_info;

// the text between quotes, or trimmed of spaces; into out (cap bytes)
static void scalar_value(char *out, size_t cap, const char *b, const char *e) {
  while (b < e && (*b == ' ' || *b == '\t')) b++;
  while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
  if (e - b >= 2 && (*b == '"' || *b == '\'') && e[-1] == *b) b++, e--;
  size_t n = (size_t)(e - b) < cap - 1 ? (size_t)(e - b) : cap - 1;
  memcpy(out, b, n);
  out[n] = '\0';
}

// one `key: value` of config.yaml, its dotted path known; keeps what the plot needs.
// cost_limit under lagrange_cfgs wins over one elsewhere (CPO keeps it in algo_cfgs).
static void config_pair(run_info *r, int *limit_rank, const char *path, const char *key,
                        const char *vb, const char *ve) {
  char v[128];
  scalar_value(v, sizeof v, vb, ve);
  if (!v[0]) return;
  if (!strcmp(key, "cost_limit")) {
    int rank = !strcmp(path, "lagrange_cfgs.cost_limit") ? 2 : 1;
    char *end;
    double x = strtod(v, &end);
    if (*end == '\0' && isfinite(x) && rank > *limit_rank) r->cost_limit = x, *limit_rank = rank;
  } else if (!strcmp(key, "env_id") || !strcmp(key, "env")) {
    snprintf(r->env, sizeof r->env, "%s", v);
  } else if (!strcmp(key, "algo")) {
    snprintf(r->algo, sizeof r->algo, "%s", v);
  }
}

// a small line reader of the resolved config.yaml: block mappings by indentation and one level
// of flow mapping ({a: 1, b: 2}); enough to find algo, env_id and cost_limit, not a YAML parser
static void read_config(run_info *r, const char *file) {
  FILE *f = fopen(file, "r");
  if (!f) return;
  char line[1024];
  int indents[16], depth = 0, limit_rank = 0;
  char keys[16][64];
  while (fgets(line, sizeof line, f)) {
    // a line longer than the buffer: its first part is read, the rest skipped
    if (!strchr(line, '\n')) {
      int c;
      while ((c = fgetc(f)) != EOF && c != '\n') {
      }
    }
    // drop comments (a # at the start or after a space) and the newline
    for (char *p = line; *p; p++)
      if (*p == '#' && (p == line || p[-1] == ' ' || p[-1] == '\t')) {
        *p = '\0';
        break;
      }
    line[strcspn(line, "\r\n")] = '\0';
    int ind = (int)strspn(line, " ");
    const char *k = line + ind;
    const char *colon = strstr(k, ": ");
    if (!colon && *k && k[strlen(k) - 1] == ':') colon = k + strlen(k) - 1;
    if (!*k || *k == '-' || !colon) continue;
    while (depth > 0 && indents[depth - 1] >= ind) depth--;
    char key[64];
    scalar_value(key, sizeof key, k, colon);
    char path[1024] = "";
    size_t o = 0;
    for (int d = 0; d < depth && o + sizeof keys[0] < sizeof path; d++)
      o += (size_t)snprintf(path + o, sizeof path - o, "%s.", keys[d]);
    snprintf(path + o, sizeof path - o, "%s", key);
    const char *v = colon + 1;
    while (*v == ' ') v++;
    if (!*v) {  // a section: the keys below it are indented further
      if (depth < 16) {
        indents[depth] = ind;
        snprintf(keys[depth++], sizeof keys[0], "%s", key);
      }
    } else if (*v == '{') {  // a flow mapping: its `k: v` pairs
      const char *s = v + 1, *end = strchr(s, '}');
      if (!end) end = s + strlen(s);
      while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s)), *fe = comma ? comma : end;
        const char *c = memchr(s, ':', (size_t)(fe - s));
        if (c) {
          char fk[64], fpath[1100];
          scalar_value(fk, sizeof fk, s, c);
          snprintf(fpath, sizeof fpath, "%s.%s", path, fk);
          config_pair(r, &limit_rank, fpath, fk, c + 1, fe);
        }
        s = fe + 1;
      }
    } else {
      config_pair(r, &limit_rank, path, key, v, v + strlen(v));
    }
  }
  fclose(f);
}

// the group of a run: its directory name without -s<seed> and the numbers after it
// (ppo_lag-SafetyPointGoal1-s3-20250101-120000 → ppo_lag-SafetyPointGoal1); a name without
// that suffix is its own label, or "<algo>-<env>" when config.yaml names both
static void run_label(run_info *r) {
  const char *base = strrchr(r->dir, '/');
  base = base ? base + 1 : r->dir;
  size_t n = strlen(base);
  // walk back over "-<digits>" groups to a "-s<digits>"
  size_t end = n;
  while (end > 0) {
    size_t d = end;
    while (d > 0 && base[d - 1] >= '0' && base[d - 1] <= '9') d--;
    if (d == end || d == 0) break;
    if (base[d - 1] == 's' && d >= 2 && base[d - 2] == '-' && d - 2 > 0) {
      snprintf(r->label, sizeof r->label, "%.*s", (int)(d - 2), base);
      return;
    }
    if (base[d - 1] != '-') break;
    end = d - 1;
  }
  if (r->algo[0] && r->env[0])
    snprintf(r->label, sizeof r->label, "%s-%s", r->algo, r->env);
  else
    snprintf(r->label, sizeof r->label, "%s", base);
}

// load RUN_DIR/progress.csv (or a CSV file given directly) and RUN_DIR/config.yaml
static int load_run(run_info *r, const char *arg) {
  snprintf(r->dir, sizeof r->dir, "%s", arg);
  size_t n = strlen(r->dir);
  while (n > 1 && r->dir[n - 1] == '/') r->dir[--n] = '\0';
  r->cost_limit = NAN;
  char csv[PATH_MAX + 32], cfg[PATH_MAX + 32];
  struct stat st;
  if (stat(r->dir, &st) != 0) return srl_error(SRL_ENOTFOUND, "%s: %s", r->dir, strerror(errno));
  if (S_ISDIR(st.st_mode)) {
    snprintf(csv, sizeof csv, "%s/progress.csv", r->dir);
    snprintf(cfg, sizeof cfg, "%s/config.yaml", r->dir);
    if (access(csv, F_OK) != 0)
      return srl_error(SRL_ENOTFOUND,
                       "%s: no progress.csv in this directory (is it a run "
                       "directory written by saferl train?)",
                       r->dir);
  } else {
    // a progress.csv named directly: the run directory is its folder
    snprintf(csv, sizeof csv, "%s", r->dir);
    char *slash = strrchr(r->dir, '/');
    if (slash)
      *slash = '\0';
    else
      snprintf(r->dir, sizeof r->dir, ".");
    snprintf(cfg, sizeof cfg, "%s/config.yaml", r->dir);
    if (!strcmp(r->dir, ".")) {
      char cwd[PATH_MAX];
      if (getcwd(cwd, sizeof cwd)) snprintf(r->dir, sizeof r->dir, "%s", cwd);
    }
  }
  int rc = srl_progress_load(&r->progress, csv);
  if (rc < 0) return rc;
  read_config(r, cfg);
  run_label(r);
  return 0;
}

//---- the gnuplot script -------------------------------------------------------------------------

static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                               "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

// a gnuplot single-quoted string: '' stands for a quote; control characters become spaces
static void gp_string(FILE *f, const char *s) {
  fputc('\'', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '\'')
      fputs("''", f);
    else
      fputc(*p < 0x20 ? ' ' : *p, f);
  }
  fputc('\'', f);
}

typedef struct plot_args {
  const char *out, *script, *x_col, *title, *band;
  double cost_limit;  // NAN: from the configs
  int smooth, width, height;
} plot_args;

typedef struct group {
  const char *label;
  int n_runs;
  srl_progress_agg *ret, *cost;
} group;

// grid points where some run has a value
static int points(const srl_progress_agg *a) {
  int n = 0;
  for (int i = 0; i < a->n; i++) n += a->count[i] > 0;
  return n;
}

// one inline data block: x (scaled), mean, band low, band high; points without data left out
static void gp_block(FILE *f, const char *name, const srl_progress_agg *a, double xscale,
                     int std_band) {
  fprintf(f, "$%s << EOD\n", name);
  for (int i = 0; i < a->n; i++) {
    if (a->count[i] == 0) continue;
    double lo = std_band ? a->mean[i] - a->std[i] : a->min[i];
    double hi = std_band ? a->mean[i] + a->std[i] : a->max[i];
    fprintf(f, "%.10g %.10g %.10g %.10g\n", a->x[i] / xscale, a->mean[i], lo, hi);
  }
  fprintf(f, "EOD\n");
}

static const char *group_color(int i) {
  return colors[i % (int)(sizeof colors / sizeof *colors)];
}

static const char *limit_color(int k, int n_groups, int n_limits) {
  return n_limits == 1 ? "#000000" : group_color(n_groups + k);
}

// a group's legend entry: "<label> (N seeds)"
static void group_title(char *t, size_t cap, const group *g) {
  snprintf(t, cap, "%s (%d seed%s)", g->label, g->n_runs, g->n_runs == 1 ? "" : "s");
}

// one panel: a band and a mean line per group, then the limit lines (dashed)
static void gp_panel(FILE *f, const group *g, int n_groups, const char *prefix, const char *ylabel,
                     const double *limits, int n_limits) {
  fprintf(f, "set ylabel ");
  gp_string(f, ylabel);
  fprintf(f, "\nplot ");
  int drawn = 0;
  for (int i = 0; i < n_groups; i++) {
    const srl_progress_agg *a = prefix[0] == 'r' ? g[i].ret : g[i].cost;
    if (points(a) == 0) continue;  // no finished episode yet: nothing to draw
    const char *c = group_color(i);
    fprintf(f,
            "%s$%s%d using 1:3:4 with filledcurves lc rgb '%s' fs transparent solid 0.2 "
            "noborder notitle, \\\n     $%s%d using 1:2 with lines lw 2 lc rgb '%s' notitle",
            drawn++ ? ", \\\n     " : "", prefix, i, c, prefix, i, c);
  }
  for (int k = 0; k < n_limits; k++)
    fprintf(f, ", \\\n     %.10g with lines dt 2 lw 2 lc rgb '%s' notitle", limits[k],
            limit_color(k, n_groups, n_limits));
  fprintf(f, "\n");
}

// the legend shared by both panels, in a strip under them: groups, limits, what the band is
static void gp_legend(FILE *f, const group *g, int n_groups, const double *limits, int n_limits,
                      int std_band) {
  fprintf(f,
          "unset border; unset tics; unset xlabel; unset ylabel; unset grid\n"
          "set lmargin 0; set rmargin 0; set tmargin 0; set bmargin 0\n"
          "set xrange [0:1]; set yrange [0:1]; set offsets 0, 0, 0, 0\n"
          "set key center center horizontal Left reverse samplen 3 width 2\n"
          "plot ");
  char t[PATH_MAX + 64];
  for (int i = 0; i < n_groups; i++) {
    group_title(t, sizeof t, &g[i]);
    fprintf(f, "%sNaN with lines lw 2 lc rgb '%s' title ", i ? ", \\\n     " : "", group_color(i));
    gp_string(f, t);
  }
  for (int k = 0; k < n_limits; k++) {
    snprintf(t, sizeof t, "cost limit %g", limits[k]);
    fprintf(f, ", \\\n     NaN with lines dt 2 lw 2 lc rgb '%s' title ",
            limit_color(k, n_groups, n_limits));
    gp_string(f, t);
  }
  fprintf(f,
          ", \\\n     NaN with boxes fs transparent solid 0.3 noborder lc rgb '#808080' "
          "title '%s'\n",
          std_band ? "shaded: mean ± 1 std over seeds" : "shaded: min to max over seeds");
}

// the whole script; `output` is where gnuplot writes the PNG (NULL: standard output)
static void gp_script(FILE *f, const plot_args *a, const group *g, int n_groups,
                      const double *limits, int n_limits, const char *output, int n_runs) {
  int std_band = !strcmp(a->band, "std");
  double xmax = 0;
  for (int i = 0; i < n_groups; i++)
    for (int j = 0; j < g[i].ret->n; j++) xmax = fmax(xmax, fabs(g[i].ret->x[j]));
  double xscale = xmax >= 1e6 ? 1e6 : xmax >= 1e4 ? 1e3 : 1;
  const char *unit = xscale == 1e6 ? " (millions)" : xscale == 1e3 ? " (thousands)" : "";
  char xlabel[160];
  snprintf(xlabel, sizeof xlabel, "%s%s",
           !strcmp(a->x_col, "total_steps") ? "environment steps" : a->x_col, unit);

  // the legend strip: entries of about 7.5 px a character, as many to a row as fit
  int entries = n_groups + n_limits + 1, longest = 32;
  char t[PATH_MAX + 64];
  for (int i = 0; i < n_groups; i++) {
    group_title(t, sizeof t, &g[i]);
    if ((int)strlen(t) > longest) longest = (int)strlen(t);
  }
  int per_row = (int)(0.95 * a->width / (7.5 * longest + 80));
  if (per_row < 1) per_row = 1;
  int rows = (entries + per_row - 1) / per_row;
  double legend_h = fmin(0.45, (20.0 * rows + 16) / a->height);
  double top = a->title && a->title[0] ? 34.0 / a->height : 6.0 / a->height;
  double panel_h = 1 - legend_h - top;

  fprintf(f, "# saferl plot: %d runs in %d groups against %s; band: %s over seeds%s\n", n_runs,
          n_groups, a->x_col, std_band ? "mean ± 1 std" : "min to max",
          a->smooth > 1 ? ", each run smoothed first" : "");
  fprintf(f,
          "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
          "  set terminal pngcairo size %d,%d noenhanced font 'Sans,11'\n"
          "} else {\n"
          "  set terminal png truecolor size %d,%d noenhanced\n"
          "}\n",
          a->width, a->height, a->width, a->height);
  if (output) {
    fprintf(f, "set output ");
    gp_string(f, output);
    fprintf(f, "\n");
  }
  // the data: x, mean, band low, band high per group and metric
  for (int i = 0; i < n_groups; i++) {
    char name[32];
    snprintf(name, sizeof name, "ret%d", i);
    gp_block(f, name, g[i].ret, xscale, std_band);
    snprintf(name, sizeof name, "cost%d", i);
    gp_block(f, name, g[i].cost, xscale, std_band);
  }
  fprintf(f, "set multiplot");
  if (a->title && a->title[0]) {
    fprintf(f, " title ");
    gp_string(f, a->title);
    fprintf(f, " font ',13'");
  }
  fprintf(f,
          "\nset grid lc rgb '#d0d0d0'\nset border lc rgb '#404040'\nunset key\n"
          "set xlabel ");
  gp_string(f, xlabel);
  fprintf(f, "\nset offsets 0, 0, graph 0.05, graph 0.05\n");
  fprintf(f, "set size 0.5, %.4f\nset origin 0, %.4f\n", panel_h, legend_h);
  gp_panel(f, g, n_groups, "ret", "episode return", NULL, 0);
  fprintf(f, "set origin 0.5, %.4f\n", legend_h);
  gp_panel(f, g, n_groups, "cost", "episode cost", limits, n_limits);
  fprintf(f, "set size 1, %.4f\nset origin 0, 0\n", legend_h);
  gp_legend(f, g, n_groups, limits, n_limits, std_band);
  fprintf(f, "unset multiplot\nset output\n");
}

//---- running gnuplot ---------------------------------------------------------------------------

// the full path of an executable `name` on PATH into buf; 0 when found
static int find_on_path(const char *name, char *buf, size_t cap) {
  const char *path = getenv("PATH");
  if (!path) return -1;
  while (*path) {
    size_t len = strcspn(path, ":");
    if (len > 0 && len + strlen(name) + 2 < cap) {
      snprintf(buf, cap, "%.*s/%s", (int)len, path, name);
      struct stat st;
      if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0) return 0;
    }
    path += len + (path[len] == ':');
  }
  return -1;
}

// feed the script to gnuplot; 0 when it exited cleanly
static int run_gnuplot(const char *gnuplot, const char *script, size_t len) {
  char cmd[PATH_MAX * 4 + 16];
  size_t q = 0;
  cmd[q++] = '\'';  // the path, shell-quoted
  for (const char *p = gnuplot; *p && q < sizeof cmd - 8; p++) {
    if (*p == '\'')
      memcpy(cmd + q, "'\\''", 4), q += 4;
    else
      cmd[q++] = *p;
  }
  cmd[q++] = '\'';
  cmd[q] = '\0';
  fflush(NULL);
  void (*old)(int) = signal(SIGPIPE, SIG_IGN);  // gnuplot may stop reading on an error
  FILE *p = popen(cmd, "w");
  if (!p) {
    signal(SIGPIPE, old);
    return srl_error(SRL_EIO, "cannot start %s: %s", gnuplot, strerror(errno));
  }
  size_t wrote = fwrite(script, 1, len, p);
  int status = pclose(p);
  signal(SIGPIPE, old);
  if (status == -1) return srl_error(SRL_EIO, "waiting for gnuplot: %s", strerror(errno));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && wrote == len) return 0;
  if (WIFEXITED(status))
    return srl_error(SRL_EIO, "gnuplot failed (exit status %d; its message is above)",
                     WEXITSTATUS(status));
  return srl_error(SRL_EIO, "gnuplot was stopped by signal %d", WTERMSIG(status));
}

//---- the command ---------------------------------------------------------------------------------

static int usage(FILE *f) {
  fprintf(f,
          "usage: saferl plot RUN_DIR... --out FILE.png [--cost-limit X] [--x COLUMN]\n"
          "                   [--smooth N] [--band minmax|std] [--title T] [--size WxH]\n"
          "                   [--script FILE.gp]\n\n"
          "Draws two panels from each run directory's progress.csv: episode return and episode\n"
          "cost against environment steps. Runs are grouped by their directory name without\n"
          "the -s<seed>-<time> suffix (one algo on one env); each group is drawn as its mean\n"
          "over seeds with a shaded band (--band minmax, the default: lowest to highest seed;\n"
          "std: mean ± 1 standard deviation). Seeds that stopped at different epochs are cut\n"
          "to the steps they all reached.\n\n"
          "  --cost-limit X  the dashed limit line (default: lagrange_cfgs.cost_limit of each\n"
          "                  run's config.yaml; none when no config gives one)\n"
          "  --x COLUMN      the x axis column of progress.csv (default total_steps)\n"
          "  --smooth N      centred moving average over N epochs of each run (default 1)\n"
          "  --title T       a title above the panels (default: the env, when all runs share one)\n"
          "  --size WxH      image size in pixels (default 1280x480)\n"
          "  --script FILE   also write the gnuplot script, data inline, to FILE\n\n"
          "Needs gnuplot on PATH (Debian: apt-get install gnuplot-nox).\n");
  return f == stdout ? 0 : 2;
}

static int parse_args(int argc, char **argv, plot_args *a, const char **dirs, int *n_dirs) {
  *a = (plot_args){.x_col = "total_steps",
                   .band = "minmax",
                   .cost_limit = NAN,
                   .smooth = 1,
                   .width = 1280,
                   .height = 480};
  *n_dirs = 0;
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i];
    if (!strcmp(k, "-h") || !strcmp(k, "--help")) return usage(stdout) + 1;
    if (k[0] != '-' || k[1] == '\0') {
      dirs[(*n_dirs)++] = k;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "saferl plot: %s needs a value\n", k);
      return usage(stderr);
    }
    const char *v = argv[++i];
    char *end;
    if (!strcmp(k, "--out")) {
      a->out = v;
    } else if (!strcmp(k, "--script")) {
      a->script = v;
    } else if (!strcmp(k, "--x")) {
      a->x_col = v;
    } else if (!strcmp(k, "--title")) {
      a->title = v;
    } else if (!strcmp(k, "--band")) {
      if (strcmp(v, "minmax") && strcmp(v, "std")) {
        fprintf(stderr, "saferl plot: --band is minmax or std, got '%s'\n", v);
        return 2;
      }
      a->band = v;
    } else if (!strcmp(k, "--cost-limit")) {
      a->cost_limit = strtod(v, &end);
      if (end == v || *end || !isfinite(a->cost_limit)) {
        fprintf(stderr, "saferl plot: --cost-limit must be a number, got '%s'\n", v);
        return 2;
      }
    } else if (!strcmp(k, "--smooth")) {
      long s = strtol(v, &end, 10);
      if (end == v || *end || s < 1 || s > 100000) {
        fprintf(stderr, "saferl plot: --smooth must be an integer >= 1, got '%s'\n", v);
        return 2;
      }
      a->smooth = (int)s;
    } else if (!strcmp(k, "--size")) {
      long w = strtol(v, &end, 10), h = 0;
      if (end != v && (*end == 'x' || *end == 'X')) {
        const char *hs = end + 1;
        h = strtol(hs, &end, 10);
        if (end == hs) h = 0;
      }
      if (*end || w < 100 || w > 10000 || h < 100 || h > 10000) {
        fprintf(stderr, "saferl plot: --size is WxH in pixels, each 100..10000, got '%s'\n", v);
        return 2;
      }
      a->width = (int)w, a->height = (int)h;
    } else {
      fprintf(stderr, "saferl plot: unknown option '%s'\n", k);
      return usage(stderr);
    }
  }
  if (*n_dirs == 0) {
    fprintf(stderr, "saferl plot: no run directories given\n");
    return usage(stderr);
  }
  if (!a->out && !a->script) {
    fprintf(stderr, "saferl plot: --out FILE.png is required\n");
    return usage(stderr);
  }
  return 0;
}


int srl_cmd_plot(int argc, char **argv) {
  const char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
  run_info *runs = NULL;
  group *groups = NULL;
  double *limits = NULL;
  char *script = NULL;
  size_t script_len = 0;
  char tmp[PATH_MAX + 32] = "";
  int n_dirs = 0, n_groups = 0, n_limits = 0, ret = 1;
  plot_args a;
  if (!dirs) {
    fprintf(stderr, "saferl plot: out of memory\n");
    return 1;
  }
  int rc = parse_args(argc, argv, &a, dirs, &n_dirs);
  if (rc) {
    free(dirs);
    return rc == 1 ? 0 : rc;
  }

  // the runs and their groups, in the order given
  runs = calloc((size_t)n_dirs, sizeof *runs);
  groups = calloc((size_t)n_dirs, sizeof *groups);
  limits = calloc((size_t)n_dirs, sizeof *limits);
  const srl_progress **members = calloc((size_t)n_dirs, sizeof *members);
  if (!runs || !groups || !limits || !members) {
    fprintf(stderr, "saferl plot: out of memory\n");
    goto done;
  }
  for (int i = 0; i < n_dirs; i++) {
    if (load_run(&runs[i], dirs[i]) < 0) {
      fprintf(stderr, "saferl plot: %s\n", srl_errmsg());
      goto done;
    }
  }
  for (int i = 0; i < n_dirs; i++) {
    int seen = 0;
    for (int j = 0; j < i && !seen; j++) seen = !strcmp(runs[i].label, runs[j].label);
    if (seen) continue;
    group *g = &groups[n_groups++];
    g->label = runs[i].label;
    for (int j = i; j < n_dirs; j++)
      if (!strcmp(runs[j].label, g->label)) members[g->n_runs++] = runs[j].progress;
    if (srl_progress_aggregate(&g->ret, members, g->n_runs, a.x_col, "ep_ret", a.smooth) < 0 ||
        srl_progress_aggregate(&g->cost, members, g->n_runs, a.x_col, "ep_cost", a.smooth) < 0) {
      fprintf(stderr, "saferl plot: group %s: %s\n", g->label, srl_errmsg());
      goto done;
    }
  }

  // something to draw: a run that finished an episode
  int with_ret = 0, with_cost = 0;
  for (int i = 0; i < n_groups; i++) {
    with_ret += points(groups[i].ret);
    with_cost += points(groups[i].cost);
  }
  if (!with_ret || !with_cost) {
    fprintf(stderr,
            "saferl plot: no run has a value of %s yet (no episode finished?); nothing to "
            "draw\n",
            with_ret ? "ep_cost" : "ep_ret");
    goto done;
  }

  // the limit lines: --cost-limit, or each distinct value the configs give
  if (isfinite(a.cost_limit)) {
    limits[n_limits++] = a.cost_limit;
  } else {
    for (int i = 0; i < n_dirs; i++) {
      double c = runs[i].cost_limit;
      int seen = !isfinite(c);
      for (int k = 0; k < n_limits && !seen; k++) seen = limits[k] == c;
      if (!seen) limits[n_limits++] = c;
    }
  }
  // the default title: the env, when every run names the same one
  if (!a.title && runs[0].env[0]) {
    int same = 1;
    for (int i = 1; i < n_dirs && same; i++) same = !strcmp(runs[i].env, runs[0].env);
    if (same) a.title = runs[0].env;
  }

  // the output goes to a temporary file beside the target, renamed when gnuplot succeeded
  char gnuplot[PATH_MAX];
  int missing = 0;
  if (a.out && find_on_path("gnuplot", gnuplot, sizeof gnuplot) < 0) {
    fprintf(stderr,
            "saferl plot: gnuplot was not found on PATH; install it (Debian: apt-get "
            "install gnuplot-nox)%s\n",
            a.script ? "" : ", or write the script with --script FILE.gp and run it elsewhere");
    if (!a.script) goto done;
    missing = 1;  // the script is still written
  }
  if (a.script) {
    FILE *f = fopen(a.script, "w");
    int bad = !f;
    if (f) {
      gp_script(f, &a, groups, n_groups, limits, n_limits, a.out, n_dirs);
      bad = fclose(f) != 0;
    }
    if (bad) {
      fprintf(stderr, "saferl plot: cannot write %s: %s\n", a.script, strerror(errno));
      goto done;
    }
  }
  if (!a.out) {
    ret = 0;
    goto done;
  }
  if (missing) goto done;
  snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", a.out);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    fprintf(stderr, "saferl plot: cannot write beside %s: %s\n", a.out, strerror(errno));
    tmp[0] = '\0';
    goto done;
  }
  (void)fchmod(fd, 0644);
  close(fd);
  FILE *mem = open_memstream(&script, &script_len);
  if (!mem) {
    fprintf(stderr, "saferl plot: out of memory\n");
    goto done;
  }
  gp_script(mem, &a, groups, n_groups, limits, n_limits, tmp, n_dirs);
  if (fclose(mem) != 0) {
    fprintf(stderr, "saferl plot: out of memory\n");
    goto done;
  }
  if (run_gnuplot(gnuplot, script, script_len) < 0) {
    fprintf(stderr, "saferl plot: %s\n", srl_errmsg());
    goto done;
  }
  struct stat st;
  if (stat(tmp, &st) != 0 || st.st_size < 64) {
    fprintf(stderr, "saferl plot: gnuplot wrote no image\n");
    goto done;
  }
  if (rename(tmp, a.out) != 0) {
    fprintf(stderr, "saferl plot: cannot rename %s to %s: %s\n", tmp, a.out, strerror(errno));
    goto done;
  }
  tmp[0] = '\0';
  printf("%s: %d run%s in %d group%s\n", a.out, n_dirs, n_dirs == 1 ? "" : "s", n_groups,
         n_groups == 1 ? "" : "s");
  ret = 0;

done:
  if (tmp[0]) unlink(tmp);
  free(script);
  for (int i = 0; groups && i < n_groups; i++) {
    srl_progress_agg_destroy(groups[i].ret);
    srl_progress_agg_destroy(groups[i].cost);
  }
  for (int i = 0; runs && i < n_dirs; i++) srl_progress_destroy(runs[i].progress);
  free(members);
  free(limits);
  free(groups);
  free(runs);
  free(dirs);
  return ret;
}

// test_progress.c: progress.csv parsing (columns by name, missing values, CRLF, malformed lines
// reported as file:line, a last line cut off mid-write) and aggregation over seeds (mean, std,
// min, max against direct computations; runs of different lengths; interpolation; smoothing).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "algos/progress.h"
#include "test.h"

static srl_progress *parse(const char *text) {
  srl_progress *p = NULL;
  int rc = srl_progress_parse(&p, text, strlen(text), "run/progress.csv");
  if (rc != 0) fprintf(stderr, "  parse failed: %s\n", srl_errmsg());
  return p;
}

//---- parsing ------------------------------------------------------------------------------------

TEST(parses_columns_by_name) {
  const char *text =
      "epoch,total_steps,ep_ret,ep_cost,ep_len,lagrange,loss_pi,loss_vr,loss_vc,kl,entropy,fps,"
      "wall_s\n"
      "0,20000,1.5,40.25,1000,0.001,-0.01,12.5,30.1,0.004,1.41,5210.5,3.84\n"
      "1,40000,2.75,38,1000,0.036,-0.02,10.5,28.0,0.006,1.39,5300,7.6\n";
  srl_progress *p = parse(text);
  CHECK(p != NULL);
  if (!p) return;
  CHECK_EQ_INT(p->n_cols, 13);
  CHECK_EQ_INT(p->n_rows, 2);
  CHECK(!strcmp(p->names[0], "epoch") && !strcmp(p->names[12], "wall_s"));
  CHECK(!strcmp(p->path, "run/progress.csv"));
  int ret = srl_progress_column(p, "ep_ret"), cost = srl_progress_column(p, "ep_cost");
  int steps = srl_progress_column(p, "total_steps"), wall = srl_progress_column(p, "wall_s");
  CHECK_EQ_INT(ret, 2);
  CHECK_EQ_INT(cost, 3);
  CHECK_EQ_INT(steps, 1);
  CHECK_EQ_INT(wall, 12);
  CHECK_CLOSE(srl_progress_at(p, 0, ret), 1.5, 0, 0);
  CHECK_CLOSE(srl_progress_at(p, 1, ret), 2.75, 0, 0);
  CHECK_CLOSE(srl_progress_at(p, 0, cost), 40.25, 0, 0);
  CHECK_CLOSE(srl_progress_at(p, 1, steps), 40000, 0, 0);
  CHECK_CLOSE(srl_progress_at(p, 0, srl_progress_column(p, "loss_pi")), -0.01, 0, 0);
  CHECK_CLOSE(srl_progress_at(p, 1, wall), 7.6, 0, 0);
  CHECK_EQ_INT(p->lines[0], 2);
  CHECK_EQ_INT(p->lines[1], 3);
  srl_progress_destroy(p);
}

TEST(missing_values_spaces_crlf_and_blank_lines) {
  // CRLF endings, spaces around fields, an empty field and "nan" (missing), a blank line, and a
  // last line without a newline
  const char *text =
      " epoch , total_steps ,ep_ret,ep_cost\r\n"
      "0, 100 , ,nan\r\n"
      "\r\n"
      "1,200,-3.5e1,inf\r\n"
      "2,300,4,5";
  srl_progress *p = parse(text);
  CHECK(p != NULL);
  if (!p) return;
  CHECK_EQ_INT(p->n_cols, 4);
  CHECK_EQ_INT(p->n_rows, 3);
  CHECK(!strcmp(p->names[0], "epoch") && !strcmp(p->names[1], "total_steps"));
  CHECK_CLOSE(srl_progress_at(p, 0, 1), 100, 0, 0);
  CHECK(isnan(srl_progress_at(p, 0, 2)));
  CHECK(isnan(srl_progress_at(p, 0, 3)));
  CHECK_CLOSE(srl_progress_at(p, 1, 2), -35, 0, 0);
  CHECK(isinf(srl_progress_at(p, 1, 3)));
  CHECK_CLOSE(srl_progress_at(p, 2, 3), 5, 0, 0);
  // the blank line 3 is skipped, the line numbers stay those of the file
  CHECK_EQ_INT(p->lines[0], 2);
  CHECK_EQ_INT(p->lines[1], 4);
  CHECK_EQ_INT(p->lines[2], 5);
  srl_progress_destroy(p);
}

TEST(header_only_has_no_rows) {
  srl_progress *p = parse("epoch,total_steps,ep_ret,ep_cost\n");
  CHECK(p != NULL);
  if (!p) return;
  CHECK_EQ_INT(p->n_rows, 0);
  CHECK_EQ_INT(p->n_cols, 4);
  srl_progress_destroy(p);
}

TEST(malformed_lines_name_file_and_line) {
  srl_progress *p = NULL;
  const char *text;

  // a row with too few fields on line 4
  text = "epoch,total_steps,ep_ret,ep_cost\n0,1,2,3\n1,2,3,4\n2,3,4\n3,4,5,6\n";
  CHECK_ERR(srl_progress_parse(&p, text, strlen(text), "runs/a/progress.csv"), SRL_EFORMAT);
  CHECK_ERRMSG("runs/a/progress.csv:4:");
  CHECK_ERRMSG("3 fields");
  CHECK(p == NULL);

  // too many fields (a trailing comma) on line 2
  text = "epoch,total_steps,ep_ret,ep_cost\n0,1,2,3,\n";
  CHECK_ERR(srl_progress_parse(&p, text, strlen(text), "x.csv"), SRL_EFORMAT);
  CHECK_ERRMSG("x.csv:2: 5 fields");

  // a field that is not a number: the column is named
  text = "epoch,total_steps,ep_ret,ep_cost\n0,1,2,3\n\n1,2,1.5x,4\n";
  CHECK_ERR(srl_progress_parse(&p, text, strlen(text), "x.csv"), SRL_EFORMAT);
  CHECK_ERRMSG("x.csv:4: column 'ep_ret': '1.5x' is not a number");

  // a number with spaces inside is not a number either
  text = "a,b\n1,2 3\n";
  CHECK_ERR(srl_progress_parse(&p, text, strlen(text), "x.csv"), SRL_EFORMAT);
  CHECK_ERRMSG("x.csv:2: column 'b'");

  // an empty file, an empty header, a duplicate and an empty column name
  CHECK_ERR(srl_progress_parse(&p, "", 0, "e.csv"), SRL_EFORMAT);
  CHECK_ERRMSG("e.csv:1: empty header");
  text = "\n0,1\n";
  CHECK_ERR(srl_progress_parse(&p, text, strlen(text), "e.csv"), SRL_EFORMAT);
  CHECK_ERRMSG("e.csv:1:");
  text = "epoch,ep_ret,ep_ret\n";
  CHECK_ERR(srl_progress_parse(&p, text, strlen(text), "d.csv"), SRL_EFORMAT);
  CHECK_ERRMSG("d.csv:1: column 'ep_ret' appears twice");
  text = "epoch,,ep_ret\n";
  CHECK_ERR(srl_progress_parse(&p, text, strlen(text), "d.csv"), SRL_EFORMAT);
  CHECK_ERRMSG("d.csv:1: column 2 has an empty name");
  CHECK(p == NULL);
}

TEST(last_line_cut_off_mid_write_is_left_out) {
  // a trainer still writing: the unterminated last line is partial and is not an error
  const char *text = "epoch,total_steps,ep_ret,ep_cost\n0,100,1,2\n1,200,3";
  srl_progress *p = parse(text);
  CHECK(p != NULL);
  if (!p) return;
  CHECK_EQ_INT(p->n_rows, 1);
  CHECK_CLOSE(srl_progress_at(p, 0, 2), 1, 0, 0);
  srl_progress_destroy(p);
  // the same row with its newline is an error
  p = NULL;
  text = "epoch,total_steps,ep_ret,ep_cost\n0,100,1,2\n1,200,3\n";
  CHECK_ERR(srl_progress_parse(&p, text, strlen(text), "x.csv"), SRL_EFORMAT);
  CHECK_ERRMSG("x.csv:3:");
  // text that is not NUL-terminated: only len bytes are read
  char buf[] = "a,b\n1,2\n3,4XYZ";
  p = NULL;
  CHECK_OK(srl_progress_parse(&p, buf, strlen(buf) - 3, "buf"));
  if (p) {
    CHECK_EQ_INT(p->n_rows, 2);
    CHECK_CLOSE(srl_progress_at(p, 1, 1), 4, 0, 0);
    srl_progress_destroy(p);
  }
}

TEST(load_reads_a_file_and_reports_a_missing_one) {
  char path[] = "/tmp/srl_progress_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0) return;
  // a file larger than the first read buffer (64 KiB), so the reader grows it
  FILE *f = fdopen(fd, "w");
  fprintf(f, "epoch,total_steps,ep_ret,ep_cost\n");
  int rows = 5000;
  for (int i = 0; i < rows; i++)
    fprintf(f, "%d,%d,%.6f,%.6f\n", i, (i + 1) * 1000, i * 0.5, -i * 0.25);
  fclose(f);
  srl_progress *p = NULL;
  CHECK_OK(srl_progress_load(&p, path));
  if (p) {
    CHECK_EQ_INT(p->n_rows, rows);
    CHECK(!strcmp(p->path, path));
    CHECK_CLOSE(srl_progress_at(p, rows - 1, 1), rows * 1000.0, 0, 0);
    CHECK_CLOSE(srl_progress_at(p, 1234, 2), 617.0, 0, 0);
    CHECK_CLOSE(srl_progress_at(p, 4321, 3), -1080.25, 0, 0);
    CHECK_EQ_INT(p->lines[rows - 1], rows + 1);
    srl_progress_destroy(p);
  }
  unlink(path);
  p = NULL;
  CHECK_ERR(srl_progress_load(&p, path), SRL_ENOTFOUND);
  CHECK_ERRMSG(path);
  CHECK(p == NULL);
}

TEST(missing_column_lists_the_header) {
  srl_progress *p = parse("epoch,total_steps,ep_ret\n0,1,2\n");
  CHECK(p != NULL);
  if (!p) return;
  CHECK_ERR(srl_progress_column(p, "ep_cost"), SRL_ENOTFOUND);
  CHECK_ERRMSG("run/progress.csv: no column 'ep_cost'");
  CHECK_ERRMSG("epoch,total_steps,ep_ret");
  srl_progress_destroy(p);
}

//---- aggregation --------------------------------------------------------------------------------

// a progress.csv text with total_steps = x[i], ep_ret = y[i], ep_cost = 2·y[i]
static srl_progress *make_run(const double *x, const double *y, int n, const char *name) {
  char text[4096];
  size_t o = (size_t)snprintf(text, sizeof text, "epoch,total_steps,ep_ret,ep_cost\n");
  for (int i = 0; i < n; i++)
    o += (size_t)snprintf(text + o, sizeof text - o, "%d,%.17g,%.17g,%.17g\n", i, x[i], y[i],
                          2 * y[i]);
  srl_progress *p = NULL;
  if (srl_progress_parse(&p, text, o, name) != 0) fprintf(stderr, "  %s\n", srl_errmsg());
  return p;
}

TEST(aggregate_three_seeds_on_shared_steps) {
  double x[5] = {1000, 2000, 3000, 4000, 5000};
  double y[3][5] = {{1, 4, 2, 8, 5}, {3, 0, 2, 6, 9}, {-1, 5, 2, 1, 4}};
  srl_progress *runs[3];
  for (int r = 0; r < 3; r++) runs[r] = make_run(x, y[r], 5, "seed");
  CHECK(runs[0] && runs[1] && runs[2]);
  if (!runs[0] || !runs[1] || !runs[2]) return;
  srl_progress_agg *a = NULL;
  CHECK_OK(
      srl_progress_aggregate(&a, (const srl_progress *const *)runs, 3, "total_steps", "ep_ret", 1));
  if (a) {
    CHECK_EQ_INT(a->n, 5);
    CHECK_EQ_INT(a->n_runs, 3);
    for (int i = 0; i < 5; i++) {
      // direct two-pass statistics
      double m = (y[0][i] + y[1][i] + y[2][i]) / 3, ss = 0;
      for (int r = 0; r < 3; r++) ss += (y[r][i] - m) * (y[r][i] - m);
      double lo = fmin(y[0][i], fmin(y[1][i], y[2][i])), hi = fmax(y[0][i], fmax(y[1][i], y[2][i]));
      CHECK_CLOSE(a->x[i], x[i], 0, 0);
      CHECK_CLOSE(a->mean[i], m, 1e-12, 1e-12);
      CHECK_CLOSE(a->std[i], sqrt(ss / 2), 1e-12, 1e-12);
      CHECK_CLOSE(a->min[i], lo, 0, 0);
      CHECK_CLOSE(a->max[i], hi, 0, 0);
      CHECK_EQ_INT(a->count[i], 3);
    }
    srl_progress_agg_destroy(a);
  }
  // the cost column is the same numbers doubled
  a = NULL;
  CHECK_OK(srl_progress_aggregate(&a, (const srl_progress *const *)runs, 3, "total_steps",
                                  "ep_cost", 1));
  if (a) {
    CHECK_CLOSE(a->mean[3], 2 * 5.0, 1e-12, 0);
    CHECK_CLOSE(a->max[4], 18, 0, 0);
    srl_progress_agg_destroy(a);
  }
  // a single run: its own values, zero spread
  a = NULL;
  CHECK_OK(
      srl_progress_aggregate(&a, (const srl_progress *const *)runs, 1, "total_steps", "ep_ret", 1));
  if (a) {
    CHECK_EQ_INT(a->n, 5);
    for (int i = 0; i < 5; i++) {
      CHECK_CLOSE(a->mean[i], y[0][i], 0, 0);
      CHECK_CLOSE(a->std[i], 0, 0, 0);
    }
    srl_progress_agg_destroy(a);
  }
  for (int r = 0; r < 3; r++) srl_progress_destroy(runs[r]);
}

TEST(aggregate_truncates_to_the_shortest_seed) {
  double x[6] = {10, 20, 30, 40, 50, 60};
  double y0[6] = {1, 2, 3, 4, 5, 6}, y1[4] = {3, 4, 5, 6}, y2[5] = {2, 2, 2, 2, 2};
  srl_progress *runs[3] = {make_run(x, y0, 6, "a"), make_run(x, y1, 4, "b"),
                           make_run(x, y2, 5, "c")};
  CHECK(runs[0] && runs[1] && runs[2]);
  if (!runs[0] || !runs[1] || !runs[2]) return;
  srl_progress_agg *a = NULL;
  CHECK_OK(
      srl_progress_aggregate(&a, (const srl_progress *const *)runs, 3, "total_steps", "ep_ret", 1));
  if (a) {
    CHECK_EQ_INT(a->n, 4);  // the steps all three reached: 10..40
    CHECK_CLOSE(a->x[3], 40, 0, 0);
    for (int i = 0; i < 4; i++) {
      CHECK_CLOSE(a->mean[i], (y0[i] + y1[i] + y2[i]) / 3, 1e-12, 0);
      CHECK_CLOSE(a->min[i], 2 < y0[i] ? 2 : y0[i], 0, 0);
      CHECK_CLOSE(a->max[i], y1[i], 0, 0);
    }
    srl_progress_agg_destroy(a);
  }
  for (int r = 0; r < 3; r++) srl_progress_destroy(runs[r]);
}

TEST(aggregate_interpolates_between_rows) {
  // run A every 10 steps from 0, run B every 10 from 5: the grid is their union inside [5, 25]
  double xa[4] = {0, 10, 20, 30}, ya[4] = {0, 10, 40, 10};
  double xb[3] = {5, 15, 25}, yb[3] = {1, 2, 3};
  srl_progress *runs[2] = {make_run(xa, ya, 4, "a"), make_run(xb, yb, 3, "b")};
  CHECK(runs[0] && runs[1]);
  if (!runs[0] || !runs[1]) return;
  srl_progress_agg *a = NULL;
  CHECK_OK(
      srl_progress_aggregate(&a, (const srl_progress *const *)runs, 2, "total_steps", "ep_ret", 1));
  if (a) {
    double gx[5] = {5, 10, 15, 20, 25};
    double va[5] = {5, 10, 25, 40, 25};  // A read linearly at the grid
    double vb[5] = {1, 1.5, 2, 2.5, 3};  // B likewise
    CHECK_EQ_INT(a->n, 5);
    for (int i = 0; i < 5 && i < a->n; i++) {
      CHECK_CLOSE(a->x[i], gx[i], 0, 0);
      CHECK_CLOSE(a->mean[i], (va[i] + vb[i]) / 2, 1e-12, 0);
      CHECK_CLOSE(a->min[i], fmin(va[i], vb[i]), 1e-12, 0);
      CHECK_CLOSE(a->max[i], fmax(va[i], vb[i]), 1e-12, 0);
      CHECK_CLOSE(a->std[i], fabs(va[i] - vb[i]) / sqrt(2.0), 1e-12, 0);
    }
    srl_progress_agg_destroy(a);
  }
  for (int r = 0; r < 2; r++) srl_progress_destroy(runs[r]);
}

TEST(aggregate_leaves_missing_values_out) {
  // epoch 0 of seed 0 finished no episode (empty ep_ret); at epoch 0 no seed did
  const char *t0 = "epoch,total_steps,ep_ret,ep_cost\n0,100,,\n1,200,,1\n2,300,6,1\n";
  const char *t1 = "epoch,total_steps,ep_ret,ep_cost\n0,100,nan,\n1,200,4,3\n2,300,2,1\n";
  srl_progress *runs[2] = {parse(t0), parse(t1)};
  CHECK(runs[0] && runs[1]);
  if (!runs[0] || !runs[1]) return;
  srl_progress_agg *a = NULL;
  CHECK_OK(
      srl_progress_aggregate(&a, (const srl_progress *const *)runs, 2, "total_steps", "ep_ret", 1));
  if (a) {
    CHECK_EQ_INT(a->n, 3);
    CHECK_EQ_INT(a->count[0], 0);
    CHECK(isnan(a->mean[0]) && isnan(a->min[0]) && isnan(a->max[0]));
    CHECK_EQ_INT(a->count[1], 1);
    CHECK_CLOSE(a->mean[1], 4, 0, 0);
    CHECK_CLOSE(a->std[1], 0, 0, 0);
    CHECK_EQ_INT(a->count[2], 2);
    CHECK_CLOSE(a->mean[2], 4, 0, 0);
    CHECK_CLOSE(a->std[2], sqrt(8.0), 1e-12, 0);
    srl_progress_agg_destroy(a);
  }
  for (int r = 0; r < 2; r++) srl_progress_destroy(runs[r]);
}

TEST(aggregate_smooths_each_run_with_a_centred_window) {
  // numpy: convolve(y, ones(w), 'same') / convolve(ones(n), ones(w), 'same')
  double x[5] = {1, 2, 3, 4, 5}, y[5] = {1, 2, 3, 4, 10};
  double want3[5] = {1.5, 2, 3, 17.0 / 3, 7}, want4[5] = {1.5, 2, 2.5, 4.75, 17.0 / 3};
  srl_progress *run = make_run(x, y, 5, "s");
  CHECK(run != NULL);
  if (!run) return;
  const srl_progress *runs[1] = {run};
  srl_progress_agg *a = NULL;
  CHECK_OK(srl_progress_aggregate(&a, runs, 1, "total_steps", "ep_ret", 3));
  for (int i = 0; a && i < 5; i++) CHECK_CLOSE(a->mean[i], want3[i], 1e-12, 0);
  srl_progress_agg_destroy(a);
  a = NULL;
  CHECK_OK(srl_progress_aggregate(&a, runs, 1, "total_steps", "ep_ret", 4));
  for (int i = 0; a && i < 5; i++) CHECK_CLOSE(a->mean[i], want4[i], 1e-12, 0);
  srl_progress_agg_destroy(a);
  // a window of 0 or 1 leaves the values alone; a window wider than the run averages it all
  a = NULL;
  CHECK_OK(srl_progress_aggregate(&a, runs, 1, "total_steps", "ep_ret", 0));
  for (int i = 0; a && i < 5; i++) CHECK_CLOSE(a->mean[i], y[i], 0, 0);
  srl_progress_agg_destroy(a);
  a = NULL;
  CHECK_OK(srl_progress_aggregate(&a, runs, 1, "total_steps", "ep_ret", 100));
  for (int i = 0; a && i < 5; i++) CHECK_CLOSE(a->mean[i], 4, 1e-12, 0);
  srl_progress_agg_destroy(a);
  srl_progress_destroy(run);
}

TEST(aggregate_errors) {
  double x[3] = {10, 20, 30}, y[3] = {1, 2, 3};
  double xl[2] = {100, 200};
  srl_progress *r0 = make_run(x, y, 3, "r0.csv"), *late = make_run(xl, y, 2, "late.csv");
  srl_progress *dup = parse("epoch,total_steps,ep_ret,ep_cost\n0,10,1,1\n1,20,1,1\n\n2,20,1,1\n");
  srl_progress *nan_x = parse("epoch,total_steps,ep_ret,ep_cost\n0,,1,1\n");
  srl_progress *empty = parse("epoch,total_steps,ep_ret,ep_cost\n");
  srl_progress *no_cost = parse("epoch,total_steps,ep_ret\n0,1,2\n");
  CHECK(r0 && late && dup && nan_x && empty && no_cost);
  if (!(r0 && late && dup && nan_x && empty && no_cost)) return;
  srl_progress_agg *a = NULL;
  const srl_progress *runs[2];

  // steps that do not increase: the file and the line of the offending row
  runs[0] = r0, runs[1] = dup;
  CHECK_ERR(srl_progress_aggregate(&a, runs, 2, "total_steps", "ep_ret", 1), SRL_EFORMAT);
  CHECK_ERRMSG("run/progress.csv:5: total_steps 20 does not increase");
  // runs that share no steps
  runs[1] = late;
  CHECK_ERR(srl_progress_aggregate(&a, runs, 2, "total_steps", "ep_ret", 1), SRL_ERANGE);
  // a missing x, no rows, a missing column, no runs, a negative window
  runs[1] = nan_x;
  CHECK_ERR(srl_progress_aggregate(&a, runs, 2, "total_steps", "ep_ret", 1), SRL_EFORMAT);
  CHECK_ERRMSG("run/progress.csv:2: total_steps");
  runs[1] = empty;
  CHECK_ERR(srl_progress_aggregate(&a, runs, 2, "total_steps", "ep_ret", 1), SRL_EFORMAT);
  CHECK_ERRMSG("no data rows");
  runs[1] = no_cost;
  CHECK_ERR(srl_progress_aggregate(&a, runs, 2, "total_steps", "ep_cost", 1), SRL_ENOTFOUND);
  CHECK_ERRMSG("no column 'ep_cost'");
  CHECK_ERR(srl_progress_aggregate(&a, runs, 1, "steps", "ep_ret", 1), SRL_ENOTFOUND);
  CHECK_ERRMSG("r0.csv: no column 'steps'");
  CHECK_ERR(srl_progress_aggregate(&a, runs, 0, "total_steps", "ep_ret", 1), SRL_EINVAL);
  CHECK_ERR(srl_progress_aggregate(&a, runs, 1, "total_steps", "ep_ret", -1), SRL_EINVAL);
  CHECK(a == NULL);
  // the other column orders and extra columns do not matter: by name
  srl_progress *shuffled =
      parse("ep_cost,extra,ep_ret,total_steps\n9,0,1,10\n9,0,2,20\n9,0,3,30\n");
  if (shuffled) {
    runs[1] = shuffled;
    CHECK_OK(srl_progress_aggregate(&a, runs, 2, "total_steps", "ep_ret", 1));
    for (int i = 0; a && i < 3; i++) CHECK_CLOSE(a->mean[i], y[i], 0, 0);
    srl_progress_agg_destroy(a);
    srl_progress_destroy(shuffled);
  }
  srl_progress_destroy(r0);
  srl_progress_destroy(late);
  srl_progress_destroy(dup);
  srl_progress_destroy(nan_x);
  srl_progress_destroy(empty);
  srl_progress_destroy(no_cost);
}


int main(void) {
  RUN(parses_columns_by_name);
  RUN(missing_values_spaces_crlf_and_blank_lines);
  RUN(header_only_has_no_rows);
  RUN(malformed_lines_name_file_and_line);
  RUN(last_line_cut_off_mid_write_is_left_out);
  RUN(load_reads_a_file_and_reports_a_missing_one);
  RUN(missing_column_lists_the_header);
  RUN(aggregate_three_seeds_on_shared_steps);
  RUN(aggregate_truncates_to_the_shortest_seed);
  RUN(aggregate_interpolates_between_rows);
  RUN(aggregate_leaves_missing_values_out);
  RUN(aggregate_smooths_each_run_with_a_centred_window);
  RUN(aggregate_errors);
  return TEST_REPORT();
}

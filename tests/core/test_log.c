// test_log.c: the run-directory log helpers: JSON string escaping and number formatting, CSV
// numbers, events.jsonl lines, summary.json, run-directory naming, progress.csv truncation on
// resume, finding the latest checkpoint and the parameter scan for non-finite values.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "test.h"

static char g_tmp[256];  // a fresh directory for the test in progress


static void fresh_dir(void) {
  snprintf(g_tmp, sizeof g_tmp, "/tmp/srl_test_log_XXXXXX");
  if (!mkdtemp(g_tmp)) g_tmp[0] = 0;
}


// what writer(f) writes, in buf
#define CAPTURE(buf, stmt)                      \
  do {                                          \
    FILE *f = tmpfile();                        \
    stmt;                                       \
    long n_ = ftell(f);                         \
    rewind(f);                                  \
    size_t got_ = fread(buf, 1, (size_t)n_, f); \
    buf[got_] = 0;                              \
    fclose(f);                                  \
  } while (0)


static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}


static char *read_file(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}


//---- values ------------------------------------------------------------------------------------

TEST(json_string_escapes_quotes_backslashes_and_controls) {
  char out[256];
  CAPTURE(out, CHECK_OK(srl_log_json_string(f,
                                            "a\"b\\c\nd\te\x01"
                                            "f\x1f")));
  CHECK(strcmp(out, "\"a\\\"b\\\\c\\nd\\u0009e\\u0001f\\u001f\"") == 0);
  CAPTURE(out, srl_log_json_string(f, NULL));
  CHECK(strcmp(out, "\"\"") == 0);
  // bytes ≥ 0x80 (UTF-8) pass through
  CAPTURE(out, srl_log_json_string(f, "λ"));
  CHECK(strcmp(out, "\"λ\"") == 0);
}


TEST(json_number_is_9_digits_and_null_when_not_finite) {
  char out[64];
  CAPTURE(out, CHECK_OK(srl_log_json_number(f, (double)0.1f)));
  CHECK(strcmp(out, "0.100000001") == 0);
  CAPTURE(out, srl_log_json_number(f, -25.0));
  CHECK(strcmp(out, "-25") == 0);
  CAPTURE(out, srl_log_json_number(f, 1e-12));
  CHECK(strcmp(out, "1e-12") == 0);
  CAPTURE(out, srl_log_json_number(f, NAN));
  CHECK(strcmp(out, "null") == 0);
  CAPTURE(out, srl_log_json_number(f, -INFINITY));
  CHECK(strcmp(out, "null") == 0);
}


TEST(csv_number_writes_nan_and_inf) {
  char out[64];
  CAPTURE(out, CHECK_OK(srl_log_csv_number(f, 2.5)));
  CHECK(strcmp(out, "2.5") == 0);
  CAPTURE(out, srl_log_csv_number(f, -NAN));
  CHECK(strcmp(out, "nan") == 0);
  CAPTURE(out, srl_log_csv_number(f, INFINITY));
  CHECK(strcmp(out, "inf") == 0);
}


TEST(iso_time_and_duration) {
  char buf[32];
  CHECK_OK(srl_log_iso_time(buf, sizeof buf));
  CHECK_EQ_INT((int)strlen(buf), 20);
  CHECK(buf[4] == '-' && buf[10] == 'T' && buf[19] == 'Z');
  CHECK_ERR(srl_log_iso_time(buf, 8), SRL_EINVAL);
  CHECK_OK(srl_log_duration(buf, sizeof buf, 59.6));
  CHECK(strcmp(buf, "1:00") == 0);
  CHECK_OK(srl_log_duration(buf, sizeof buf, 3600 + 62));
  CHECK(strcmp(buf, "1:01:02") == 0);
  CHECK_OK(srl_log_duration(buf, sizeof buf, NAN));
  CHECK(strcmp(buf, "?") == 0);
}


//---- events and summary --------------------------------------------------------------------------

TEST(event_line_layout) {
  char out[512];
  srl_log_run run = {"PPO", "Safety\"Env", "cpu", 3, 10, 2000};
  CAPTURE(out, {
    CHECK_OK(srl_log_event_begin(f, "start"));
    CHECK_OK(srl_log_event_run_fields(f, &run));
    CHECK_OK(srl_log_event_end(f));
  });
  const char *head = "{\"event\": \"start\", \"time\": \"";
  CHECK(strncmp(out, head, strlen(head)) == 0);
  const char *tail =
      "Z\", \"algo\": \"PPO\", \"env\": \"Safety\\\"Env\", \"seed\": 3, "
      "\"epochs\": 10, \"steps_per_epoch\": 2000, \"device\": \"cpu\"}\n";
  CHECK(strlen(out) == strlen(head) + 19 + strlen(tail));
  CHECK(strcmp(out + strlen(head) + 19, tail) == 0);
  CHECK_ERR(srl_log_event_begin(NULL, "x"), SRL_EINVAL);
}


// the line after its {"event": ..., "time": "<20 characters>" head, or NULL when malformed
static const char *after_time(const char *line, const char *name) {
  char head[64];
  snprintf(head, sizeof head, "{\"event\": \"%s\", \"time\": \"", name);
  size_t n = strlen(head);
  if (strncmp(line, head, n) != 0 || strlen(line) < n + 21 || line[n + 20] != '"') return NULL;
  return line + n + 21;
}


TEST(lifecycle_event_lines) {
  char out[512];
  const char *rest;
  CAPTURE(out, CHECK_OK(srl_log_event_epoch(f, 3, 600, 1.25, NAN, 0.5, 1000)));
  rest = after_time(out, "epoch");
  CHECK(rest && strcmp(rest,
                       ", \"epoch\": 3, \"total_steps\": 600, \"ep_ret\": 1.25, "
                       "\"ep_cost\": null, \"lagrange\": 0.5, \"fps\": 1000}\n") == 0);
  CAPTURE(out, CHECK_OK(srl_log_event_finish(f, 4, 800, -2, 3, 12.5)));
  rest = after_time(out, "finish");
  CHECK(rest && strcmp(rest,
                       ", \"epochs\": 4, \"total_steps\": 800, \"ep_ret\": -2, "
                       "\"ep_cost\": 3, \"wall_s\": 12.5, "
                       "\"checkpoint\": \"final.safetensors\"}\n") == 0);
  CAPTURE(out, CHECK_OK(srl_log_event_checkpoint(f, 2, 400, "checkpoints/epoch-2.safetensors")));
  rest = after_time(out, "checkpoint");
  CHECK(rest && strcmp(rest,
                       ", \"epoch\": 2, \"total_steps\": 400, "
                       "\"path\": \"checkpoints/epoch-2.safetensors\"}\n") == 0);
  CAPTURE(out, CHECK_OK(srl_log_event_interrupted(f, 2, 15, "c")));
  rest = after_time(out, "interrupted");
  CHECK(rest && strcmp(rest, ", \"epoch\": 2, \"signal\": 15, \"checkpoint\": \"c\"}\n") == 0);
  CAPTURE(out, CHECK_OK(srl_log_event_nan_stop(f, 1, "loss \"pi\" is nan", "")));
  rest = after_time(out, "nan_stop");
  CHECK(rest && strcmp(rest,
                       ", \"epoch\": 1, \"message\": \"loss \\\"pi\\\" is nan\", "
                       "\"checkpoint\": null}\n") == 0);
  CAPTURE(out, CHECK_OK(srl_log_event_error(f, "a\tb")));
  rest = after_time(out, "error");
  CHECK(rest && strcmp(rest, ", \"message\": \"a\\u0009b\"}\n") == 0);
}


TEST(summary_json_layout) {
  fresh_dir();
  CHECK(g_tmp[0]);
  srl_log_summary s = {.status = "nan_stop",
                       .message = "bad\nvalue",
                       .checkpoint = NULL,
                       .run_dir = g_tmp,
                       .run = {.algo = "SACLag", .env = "E", .seed = 1, .epochs = 5},
                       .epochs_done = 2,
                       .total_steps = 400,
                       .episodes = 7,
                       .ep_ret = 1.5,
                       .ep_cost = NAN,
                       .ep_len = 100,
                       .lagrange = 0.25,
                       .cost_limit = 25,
                       .wall_s = 3.0};
  CHECK_OK(srl_log_summary_write(g_tmp, &s));
  char path[512], buf[2048], want[2048];
  snprintf(path, sizeof path, "%s/summary.json", g_tmp);
  CHECK(read_file(path, buf, sizeof buf));
  snprintf(want, sizeof want,
           "{\n  \"status\": \"nan_stop\",\n  \"algo\": \"SACLag\",\n  \"env\": \"E\",\n"
           "  \"seed\": 1,\n  \"epochs\": 2,\n  \"epochs_total\": 5,\n  \"total_steps\": 400,\n"
           "  \"episodes\": 7,\n  \"ep_ret\": 1.5,\n  \"ep_cost\": null,\n  \"ep_len\": 100,\n"
           "  \"lagrange\": 0.25,\n  \"cost_limit\": 25,\n  \"wall_s\": 3,\n"
           "  \"checkpoint\": null,\n  \"message\": \"bad\\nvalue\",\n  \"run_dir\": \"%s\"\n}\n",
           g_tmp);
  CHECK(strcmp(buf, want) == 0);
  snprintf(path, sizeof path, "%s/summary.json.tmp", g_tmp);
  CHECK(access(path, F_OK) != 0);
}


//---- the run directory ---------------------------------------------------------------------------

TEST(run_dir_naming_and_collisions) {
  fresh_dir();
  char base[512], a[1024], b[1024], want[1100], path[1200];
  snprintf(base, sizeof base, "%s/runs/deeper", g_tmp);
  time_t before = time(NULL);
  CHECK_OK(srl_run_dir_create(a, sizeof a, base, "PPOLag", "SafetyPointGoal1", 7));
  CHECK_OK(srl_run_dir_create(b, sizeof b, base, "PPOLag", "SafetyPointGoal1", 7));
  time_t after = time(NULL);
  // a: <base>/<algo>-<env>-s<seed>-<YYYYmmdd-HHMMSS> at some second between before and after
  int found = 0;
  for (time_t t = before; t <= after && !found; t++) {
    struct tm tm;
    localtime_r(&t, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    snprintf(want, sizeof want, "%s/PPOLag-SafetyPointGoal1-s7-%s", base, stamp);
    found = strcmp(a, want) == 0;
  }
  CHECK(found);
  // b: the same name with -1 when created in the same second, else another stamp
  snprintf(want, sizeof want, "%s-1", a);
  CHECK(strcmp(a, b) != 0);
  if (before == after) CHECK(strcmp(b, want) == 0);
  struct stat st;
  snprintf(path, sizeof path, "%s/checkpoints", a);
  CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
  snprintf(path, sizeof path, "%s/checkpoints", b);
  CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
  CHECK_ERR(srl_run_dir_create(a, 16, base, "PPOLag", "SafetyPointGoal1", 7), SRL_EINVAL);
}


TEST(run_dir_claim_refuses_a_run) {
  fresh_dir();
  char dir[512], path[700];
  snprintf(dir, sizeof dir, "%s/a/b", g_tmp);
  CHECK_OK(srl_run_dir_claim(dir));
  struct stat st;
  snprintf(path, sizeof path, "%s/checkpoints", dir);
  CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
  CHECK_OK(srl_run_dir_claim(dir));  // empty: still free
  snprintf(path, sizeof path, "%s/progress.csv", dir);
  CHECK(write_file(path, "epoch\n") == 0);
  CHECK_ERR(srl_run_dir_claim(dir), SRL_EINVAL);
  CHECK_ERRMSG("already holds a run");
}


TEST(truncate_progress_keeps_header_and_epochs_up_to_n) {
  fresh_dir();
  char path[512], buf[1024];
  snprintf(path, sizeof path, "%s/progress.csv", g_tmp);
  CHECK(write_file(path, "epoch,total_steps,ep_ret\n1,100,0.5\n2,200,nan\n3,300,1\n4,400,2\n") ==
        0);
  CHECK_OK(srl_run_dir_truncate_progress(g_tmp, 2));
  CHECK(read_file(path, buf, sizeof buf));
  CHECK(strcmp(buf, "epoch,total_steps,ep_ret\n1,100,0.5\n2,200,nan\n") == 0);
  CHECK_OK(srl_run_dir_truncate_progress(g_tmp, 0));
  CHECK(read_file(path, buf, sizeof buf));
  CHECK(strcmp(buf, "epoch,total_steps,ep_ret\n") == 0);
  // a row longer than any fixed line buffer survives whole
  char *big = malloc(20000);
  CHECK(big != NULL);
  if (big) {
    strcpy(big, "epoch,x\n1,");
    size_t n = strlen(big);
    memset(big + n, '7', 9000);
    strcpy(big + n + 9000, "\n2,1\n");
    CHECK(write_file(path, big) == 0);
    CHECK_OK(srl_run_dir_truncate_progress(g_tmp, 1));
    char *got = malloc(20000);
    CHECK(got && read_file(path, got, 20000));
    if (got) {
      big[n + 9001] = 0;  // header and row 1
      CHECK(strcmp(got, big) == 0);
    }
    free(got);
    free(big);
  }
  snprintf(path, sizeof path, "%s/missing", g_tmp);
  CHECK_ERR(srl_run_dir_truncate_progress(path, 1), SRL_EIO);
}


TEST(latest_checkpoint_by_number) {
  fresh_dir();
  char dir[512], path[700], out[1024];
  int epoch = 0;
  CHECK_ERR(srl_run_dir_find_checkpoint(out, sizeof out, g_tmp, 1, &epoch), SRL_ENOTFOUND);
  snprintf(dir, sizeof dir, "%s/checkpoints", g_tmp);
  CHECK(mkdir(dir, 0777) == 0);
  const char *names[] = {"epoch-2.safetensors",      "epoch-10.safetensors", "epoch-9.safetensors",
                         "epoch-11.safetensors.tmp", "epoch-x.safetensors",  "replay.safetensors"};
  for (int i = 0; i < 6; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    CHECK(write_file(path, "x") == 0);
  }
  CHECK_OK(srl_run_dir_find_checkpoint(out, sizeof out, g_tmp, 1, &epoch));
  CHECK_EQ_INT(epoch, 10);
  snprintf(path, sizeof path, "%s/epoch-10.safetensors", dir);
  CHECK(strcmp(out, path) == 0);
  // a final checkpoint wins when allowed
  snprintf(path, sizeof path, "%s/final.safetensors", g_tmp);
  CHECK(write_file(path, "x") == 0);
  CHECK_OK(srl_run_dir_find_checkpoint(out, sizeof out, g_tmp, 1, &epoch));
  CHECK_EQ_INT(epoch, -1);
  CHECK(strcmp(out, path) == 0);
  CHECK_OK(srl_run_dir_find_checkpoint(out, sizeof out, g_tmp, 0, &epoch));
  CHECK_EQ_INT(epoch, 10);
  // a file as it is
  snprintf(path, sizeof path, "%s/epoch-9.safetensors", dir);
  CHECK_OK(srl_run_dir_find_checkpoint(out, sizeof out, path, 0, &epoch));
  CHECK_EQ_INT(epoch, 9);
  CHECK(strcmp(out, path) == 0);
  CHECK_EQ_INT(srl_run_dir_checkpoint_epoch("a/epoch-12.safetensors"), 12);
  CHECK_EQ_INT(srl_run_dir_checkpoint_epoch("epoch-.safetensors"), -1);
  CHECK_EQ_INT(srl_run_dir_checkpoint_epoch("epoch-3.safetensor"), -1);
}


//---- parameters ----------------------------------------------------------------------------------

TEST(param_scan_names_the_first_bad_entry) {
  static srl_mlp net;
  float p[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  memset(&net, 0, sizeof net);
  net.params = p;
  net.n_params = 8;
  net.n_tensors = 2;
  snprintf(net.tensors[0].name, sizeof net.tensors[0].name, "w0");
  net.tensors[0].offset = 0, net.tensors[0].numel = 4;
  snprintf(net.tensors[1].name, sizeof net.tensors[1].name, "b0");
  net.tensors[1].offset = 4, net.tensors[1].numel = 3;  // p[7] is padding
  CHECK_OK(srl_log_scan_params(&net, "actor", srl_ops_cpu(), NULL));
  p[7] = NAN;  // padding is not scanned
  CHECK_OK(srl_log_scan_params(&net, "actor", srl_ops_cpu(), NULL));
  p[6] = INFINITY;
  p[5] = NAN;
  CHECK_ERR(srl_log_scan_params(&net, "critic_c", srl_ops_cpu(), NULL), SRL_ENONFINITE);
  CHECK(strcmp(srl_errmsg(), "parameter critic_c.b0[1] is nan") == 0 ||
        strcmp(srl_errmsg(), "parameter critic_c.b0[1] is -nan") == 0);
}


int main(void) {
  RUN(json_string_escapes_quotes_backslashes_and_controls);
  RUN(json_number_is_9_digits_and_null_when_not_finite);
  RUN(csv_number_writes_nan_and_inf);
  RUN(iso_time_and_duration);
  RUN(event_line_layout);
  RUN(lifecycle_event_lines);
  RUN(summary_json_layout);
  RUN(run_dir_naming_and_collisions);
  RUN(run_dir_claim_refuses_a_run);
  RUN(truncate_progress_keeps_header_and_epochs_up_to_n);
  RUN(latest_checkpoint_by_number);
  RUN(param_scan_names_the_first_bad_entry);
  return TEST_REPORT();
}

// tool_dataset_copy.c: reads offline datasets with srl_dataset_read and prints what it got as
// JSON (sizes, flags, episodes with their returns and costs); with OUT, writes each back with
// srl_dataset_write. Driven by tests/offline/test_dataset_h5py.py, which checks both sides
// against numpy and h5py.
//   tool_dataset_copy IN [OUT] [--obs-dim N] [--act-dim M] [--allow-no-costs] [--keep-tail]
//                    [--threads T]
//   tool_dataset_copy --batch    jobs from stdin, one per line: IN <tab> OUT|- <tab> options;
//                                one JSON object per line on stdout ("ok", "error" and the rest),
//                                and "@@ <job>" on stderr before each job's own stderr lines
// Single mode exits 0 on success, 1 with the library's message on stderr when the file is
// refused; batch mode exits 0 once every line is answered.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/offline/dataset.h"
#include "core/error.h"

extern long long srl__dataset_chunks_threaded;  // algos/offline/dataset.c

static void json_str(const char *s) {
  putchar('"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      printf("\\%c", *p);
    else if (*p < 0x20)
      printf("\\u%04x", *p);
    else
      putchar(*p);
  }
  putchar('"');
}

// parse options from argv-like words; returns 0 or -1 on an unknown word
static int options(int n, char **w, srl_dataset_read_options *o, const char **in,
                   const char **out) {
  for (int i = 0; i < n; i++) {
    if (!strcmp(w[i], "--obs-dim") && i + 1 < n)
      o->obs_dim = atoi(w[++i]);
    else if (!strcmp(w[i], "--act-dim") && i + 1 < n)
      o->act_dim = atoi(w[++i]);
    else if (!strcmp(w[i], "--allow-no-costs"))
      o->allow_no_costs = 1;
    else if (!strcmp(w[i], "--keep-tail"))
      o->keep_tail = 1;
    else if (!strcmp(w[i], "--threads") && i + 1 < n)
      setenv("SRL_DATASET_THREADS", w[++i], 1);
    else if (w[i][0] == '-' && w[i][1])
      return -1;
    else if (in && !*in)
      *in = w[i];
    else if (out && !*out)
      *out = w[i];
    else
      return -1;
  }
  return 0;
}

// read (and write); print the JSON object; 0 or the failing status
static int job(const char *in, const char *out, const srl_dataset_read_options *o) {
  srl_dataset *d = (srl_dataset *)1;
  long long threaded = srl__dataset_chunks_threaded;
  int rc = srl_dataset_read(&d, in, o);
  threaded = srl__dataset_chunks_threaded - threaded;
  int left_behind = rc < 0 && d != NULL;  // a refused read must leave *out NULL
  if (rc == 0 && out) rc = srl_dataset_write(d, out);
  if (rc < 0) {
    printf("{\"ok\": false, \"status\": \"%s\", \"left_behind\": %s, \"error\": ", srl_errname(rc),
           left_behind ? "true" : "false");
    json_str(srl_errmsg());
    printf("}\n");
    if (!left_behind && d) srl_dataset_destroy(d);
    return rc;
  }
  printf(
      "{\"ok\": true, \"n\": %lld, \"obs_dim\": %d, \"act_dim\": %d, \"has_costs\": %d, "
      "\"episodes\": %lld, \"threaded_chunks\": %lld",
      d->n, d->obs_dim, d->act_dim, d->has_costs, d->n_episodes, threaded);
  printf(", \"ep_start\": [");
  for (long long e = 0; e <= d->n_episodes; e++) printf("%s%lld", e ? ", " : "", d->ep_start[e]);
  printf("], \"ep_return\": [");
  for (long long e = 0; e < d->n_episodes; e++) printf("%s%.17g", e ? ", " : "", d->ep_return[e]);
  printf("], \"ep_cost\": [");
  for (long long e = 0; e < d->n_episodes; e++) printf("%s%.17g", e ? ", " : "", d->ep_cost[e]);
  printf("], \"ep_finished\": [");
  for (long long e = 0; e < d->n_episodes; e++)
    printf("%s%d", e ? ", " : "", srl_dataset_episode_finished(d, e));
  printf("]}\n");
  srl_dataset_destroy(d);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && !strcmp(argv[1], "--batch")) {
    char line[8192];
    int k = 0;
    while (fgets(line, sizeof line, stdin)) {
      line[strcspn(line, "\n")] = '\0';
      if (!line[0]) continue;
      char *f[3] = {line, NULL, NULL};
      for (int i = 1; i < 3; i++) {
        f[i] = f[i - 1] ? strchr(f[i - 1], '\t') : NULL;
        if (f[i]) *f[i]++ = '\0';
      }
      char *words[32];
      int nw = 0;
      for (char *s = NULL, *t = f[2] ? strtok_r(f[2], " ", &s) : NULL; t && nw < 32;
           t = strtok_r(NULL, " ", &s))
        words[nw++] = t;
      srl_dataset_read_options o = {0};
      unsetenv("SRL_DATASET_THREADS");
      fprintf(stderr, "@@ %d\n", k++);
      fflush(stderr);
      if (options(nw, words, &o, NULL, NULL) < 0) {
        printf("{\"ok\": false, \"error\": \"bad options\"}\n");
      } else {
        job(f[0], f[1] && strcmp(f[1], "-") ? f[1] : NULL, &o);
      }
      fflush(stdout);
      fflush(stderr);
    }
    return 0;
  }
  const char *in = NULL, *out = NULL;
  srl_dataset_read_options o = {0};
  if (options(argc - 1, argv + 1, &o, &in, &out) < 0 || !in) {
    fprintf(stderr,
            "usage: tool_dataset_copy IN [OUT] [--obs-dim N] [--act-dim M] "
            "[--allow-no-costs] [--keep-tail] [--threads T] | --batch\n");
    return 2;
  }
  int rc = job(in, out, &o);
  if (rc < 0) fprintf(stderr, "%s: %s\n", srl_errname(rc), srl_errmsg());
  return rc < 0 ? 1 : 0;
}

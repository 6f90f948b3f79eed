// tool_dataset_bench.c: times srl_dataset_write and srl_dataset_read on a synthetic file (not
// part of the test suite; the numbers go into reports).
//   tool_dataset_bench [ROWS=1000000] [OBS_DIM=60] [ACT_DIM=2] [PATH=dataset_bench.hdf5] [WRITE=1]
// Observations follow a random walk per column (as smooth as sensor data), actions and rewards
// are Gaussian, costs 0/1, episodes of 1000 steps end with a timeout. WRITE=0 only reads an
// existing PATH. Reports the write and the best of three reads, wall and CPU seconds
// (SRL_DATASET_THREADS picks the read path).
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "algos/offline/dataset.h"
#include "core/error.h"
#include "core/rng.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu_s(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_sec +
         1e-6 * (double)u.ru_stime.tv_usec;
}

int main(int argc, char **argv) {
  long long n = argc > 1 ? atoll(argv[1]) : 1000000;
  int od = argc > 2 ? atoi(argv[2]) : 60, ad = argc > 3 ? atoi(argv[3]) : 2;
  const char *path = argc > 4 ? argv[4] : "dataset_bench.hdf5";
  int write = argc > 5 ? atoi(argv[5]) : 1;
  double w_s = 0, w_cpu = 0;
  if (write) {
    srl_dataset *d = NULL;
    srl_rng *rng = NULL;
    if (srl_dataset_create(&d, n, od, ad) < 0 || srl_rng_create(&rng, 1, 0) < 0) {
      fprintf(stderr, "%s\n", srl_errmsg());
      return 1;
    }
    for (long long i = 0; i < n; i++) {
      for (int c = 0; c < od; c++) {
        float prev = i % 1000 ? d->obs[(size_t)(i - 1) * od + c] : 0.0f;
        d->obs[(size_t)i * od + c] = prev + 0.05f * (float)srl_rng_normal(rng);
      }
      for (int c = 0; c < ad; c++) d->act[(size_t)i * ad + c] = (float)srl_rng_normal(rng);
      d->reward[i] = (float)srl_rng_normal(rng);
      d->cost[i] = srl_rng_uniform(rng) < 0.1 ? 1.0f : 0.0f;
      d->timeout[i] = i % 1000 == 999;
    }
    for (long long i = 0; i < n; i++)
      for (int c = 0; c < od; c++)
        d->next_obs[(size_t)i * od + c] =
            i % 1000 == 999 ? d->obs[(size_t)i * od + c] : d->obs[(size_t)(i + 1) * od + c];
    srl_dataset_index(d);
    double t0 = now_s(), c0 = cpu_s();
    if (srl_dataset_write(d, path) < 0) {
      fprintf(stderr, "%s\n", srl_errmsg());
      return 1;
    }
    w_s = now_s() - t0, w_cpu = cpu_s() - c0;
    srl_dataset_destroy(d);
    srl_rng_destroy(rng);
  }
  srl_dataset *r = NULL;
  double best = 1e9, best_cpu = 1e9;
  for (int rep = 0; rep < 3; rep++) {
    double a = now_s(), ac = cpu_s();
    if (srl_dataset_read(&r, path, NULL) < 0) {
      fprintf(stderr, "%s\n", srl_errmsg());
      return 1;
    }
    double b = now_s() - a, bc = cpu_s() - ac;
    if (b < best) best = b;
    if (bc < best_cpu) best_cpu = bc;
    if (rep < 2) srl_dataset_destroy(r);
  }
  const char *th = getenv("SRL_DATASET_THREADS");
  printf(
      "{\"rows\": %lld, \"obs_dim\": %d, \"act_dim\": %d, \"episodes\": %lld, \"threads\": "
      "\"%s\", \"write_s\": %.3f, \"write_cpu_s\": %.3f, \"read_s\": %.3f, \"read_cpu_s\": %.3f, "
      "\"mib_in_memory\": %.1f}\n",
      r->n, r->obs_dim, r->act_dim, r->n_episodes, th ? th : "default", w_s, w_cpu, best, best_cpu,
      (double)r->n * (2.0 * r->obs_dim + r->act_dim + 2) * 4 / 1048576.0);
  srl_dataset_destroy(r);
  return 0;
}

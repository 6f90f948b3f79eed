// tool_dataset_replay.c: checks a file written by `saferl collect` against the env itself. Each
// episode's first observation is matched to the reset of one (policy j, env i, episode k) of
// collect's seed schedule (srl_vec_env_episode_seed(S + j, i, k)); then the stored actions are
// replayed on a fresh env reset with that seed, and every observation, next observation,
// reward, cost, terminal and timeout must be exactly what the env gives. Prints one JSON
// object: episodes, matched, exact (all rows equal), per-policy episode counts, whether each
// policy's episodes came as a contiguous block with every env's episodes in order, the env's
// own episode returns and costs, and the first few mismatches.
//   tool_dataset_replay FILE ENV SEED ENVS POLICIES
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algos/offline/dataset.h"
#include "core/error.h"
#include "envs/env.h"
#include "envs/vec_env.h"

#define MAX_ERR 5

typedef struct cand {
  int j, i;
  long long k;
  uint64_t seed;
  float *obs;
  int used;
} cand;

static int n_err;
static void mismatch(const char *fmt, long long e, long long row, const char *what) {
  if (n_err++ < MAX_ERR) {
    fprintf(stderr, fmt, e, row, what);
    fputc('\n', stderr);
  }
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: tool_dataset_replay FILE ENV SEED ENVS POLICIES\n");
    return 2;
  }
  const char *path = argv[1], *env_id = argv[2];
  uint64_t seed = strtoull(argv[3], NULL, 10);
  int K = atoi(argv[4]), P = atoi(argv[5]);
  srl_dataset *d = NULL;
  srl_env *env = NULL;
  if (srl_dataset_read(&d, path, NULL) < 0 || srl_env_create(&env, env_id, NULL) < 0) {
    fprintf(stderr, "%s\n", srl_errmsg());
    return 1;
  }
  int od = d->obs_dim, ad = d->act_dim;
  long long E = d->n_episodes;

  // every reset collect made, with its first observation
  cand *c = calloc((size_t)E + 1, sizeof *c);
  float *obs_all = calloc(((size_t)E + 1) * (size_t)od, sizeof(float));
  int nc = 0;
  for (int j = 0; j < P; j++) {
    int n = (int)(E / P + (j < E % P));
    int k = n < K ? n : K;
    for (int i = 0; i < k; i++) {
      int q = n / k + (i < n % k);
      for (int e = 0; e < q; e++) {
        c[nc] = (cand){j,
                       i,
                       e,
                       srl_vec_env_episode_seed(seed + (uint64_t)j, i, e),
                       obs_all + (size_t)nc * (size_t)od,
                       0};
        srl_env_reset(env, c[nc].seed, c[nc].obs);
        nc++;
      }
    }
  }

  // match, replay, compare
  float *obs = malloc(sizeof(float) * (size_t)od);
  double *rets = calloc((size_t)E + 1, sizeof(double)),
         *costs = calloc((size_t)E + 1, sizeof(double));
  int *per = calloc((size_t)P + 1, sizeof(int));
  long long matched = 0;
  int contiguous = 1, last_j = -1;
  long long *next_k = calloc((size_t)P * (size_t)K + 1, sizeof(long long));
  for (long long e = 0; e < E; e++) {
    long long s = d->ep_start[e], t = d->ep_start[e + 1];
    cand *m = NULL;
    for (int q = 0; q < nc && !m; q++)
      if (!c[q].used && !memcmp(c[q].obs, d->obs + (size_t)s * od, sizeof(float) * (size_t)od))
        m = &c[q];
    if (!m) {
      mismatch("episode %lld (row %lld): %s", e, s, "no reset of the schedule gives its first obs");
      continue;
    }
    m->used = 1;
    matched++;
    per[m->j]++;
    if (m->j < last_j) contiguous = 0;
    last_j = m->j;
    if (next_k[(size_t)m->j * (size_t)K + (size_t)m->i]++ != m->k) contiguous = 0;
    srl_env_reset(env, m->seed, obs);
    for (long long r = s; r < t; r++) {
      srl_step st;
      if (memcmp(obs, d->obs + (size_t)r * od, sizeof(float) * (size_t)od))
        mismatch("episode %lld row %lld: %s", e, r, "observation differs from the env's");
      if (srl_env_step(env, d->act + (size_t)r * ad, obs, &st) < 0) {
        mismatch("episode %lld row %lld: %s", e, r, srl_errmsg());
        break;
      }
      if (memcmp(obs, d->next_obs + (size_t)r * od, sizeof(float) * (size_t)od))
        mismatch("episode %lld row %lld: %s", e, r, "next observation differs");
      if (st.reward != d->reward[r]) mismatch("episode %lld row %lld: %s", e, r, "reward differs");
      if (st.cost != d->cost[r]) mismatch("episode %lld row %lld: %s", e, r, "cost differs");
      if ((st.terminated != 0) != (d->terminal[r] != 0))
        mismatch("episode %lld row %lld: %s", e, r, "terminal differs");
      if ((st.truncated != 0) != (d->timeout[r] != 0))
        mismatch("episode %lld row %lld: %s", e, r, "timeout differs");
      if ((st.terminated || st.truncated) != (r == t - 1))
        mismatch("episode %lld row %lld: %s", e, r, "the env's episode ends elsewhere");
      rets[e] += st.reward;
      costs[e] += st.cost;
    }
  }

  printf(
      "{\"episodes\": %lld, \"matched\": %lld, \"exact\": %s, \"contiguous\": %s, "
      "\"per_policy\": [",
      E, matched, n_err == 0 ? "true" : "false", contiguous ? "true" : "false");
  for (int j = 0; j < P; j++) printf("%s%d", j ? ", " : "", per[j]);
  printf("], \"returns\": [");
  for (long long e = 0; e < E; e++) printf("%s%.17g", e ? ", " : "", rets[e]);
  printf("], \"costs\": [");
  for (long long e = 0; e < E; e++) printf("%s%.17g", e ? ", " : "", costs[e]);
  printf("], \"mismatches\": %d}\n", n_err);
  free(next_k);
  free(per);
  free(rets);
  free(costs);
  free(obs);
  free(obs_all);
  free(c);
  srl_env_destroy(env);
  srl_dataset_destroy(d);
  return 0;
}

// dsrl.c: DSRL's 38-task reference table and D4RL's four reference scores, name lookup, the
// normalised reward and cost, and DSRL's density filter (grid_filter) with a seeded draw.
#include "algos/offline/dsrl.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"

//---- the table -----------------------------------------------------------------------------------

// name, max_steps, obs_dim, act_dim, R_min, R_max, MAX_EPISODE_COST, trajectories, d4rl
// (R_min/R_max are infos.py's reprs; MetaDrive's cost maxima are floats there)
static const srl_dsrl_task tasks[] = {
    // Bullet-Safety-Gym (Safety{Task}-v0)
    {"AntCircle", 500, 34, 8, 0.0177031010389328, 460.7091979980469, 200.0, 5728, 0},
    {"AntRun", 200, 33, 8, 0.001767391717990563, 955.4818725585938, 150.0, 1816, 0},
    {"BallCircle", 200, 8, 2, 0.38312244415283203, 881.46337890625, 80.0, 886, 0},
    {"BallRun", 100, 7, 2, 26.339754104614258, 1327.445556640625, 80.0, 940, 0},
    {"CarCircle", 300, 8, 2, 3.484419822692871, 534.3060913085938, 100.0, 1450, 0},
    {"CarRun", 200, 7, 2, 204.28726196289062, 574.6533203125, 40.0, 651, 0},
    {"DroneCircle", 300, 18, 4, 207.794189453125, 996.38916015625, 100.0, 1923, 0},
    {"DroneRun", 200, 17, 4, 10.557029724121094, 682.8330078125, 140.0, 1990, 0},
    // Safety-Gymnasium navigation (Safety{Task}Gymnasium-v0)
    {"CarButton1", 1000, 88, 2, 0.0028926206826067613, 44.420003345738984, 250.0, 2656, 0},
    {"CarButton2", 1000, 88, 2, 0.001767391717990563, 41.99513815522894, 300.0, 3755, 0},
    {"CarCircle1", 500, 40, 2, 8.037073135375977, 24.94155502319336, 250.0, 1271, 0},
    {"CarCircle2", 500, 40, 2, 5.113386154174805, 25.950098037719727, 398.0, 940, 0},
    {"CarGoal1", 1000, 72, 2, 0.012232819540852091, 39.907809198384705, 120.0, 1671, 0},
    {"CarGoal2", 1000, 72, 2, 0.001032874531954775, 28.902897990056502, 200.0, 4105, 0},
    {"CarPush1", 1000, 88, 2, 0.013700173533941762, 16.304467598905237, 200.0, 2871, 0},
    {"CarPush2", 1000, 88, 2, 0.00029391133526335267, 15.141648491514314, 250.0, 4407, 0},
    {"PointButton1", 1000, 76, 2, 0.008822109034937853, 41.19301568767707, 200.0, 2268, 0},
    {"PointButton2", 1000, 76, 2, 0.014114166087574098, 42.8985953616709, 250.0, 3288, 0},
    {"PointCircle1", 500, 28, 2, 20.067626953125, 61.72819519042969, 200.0, 1098, 0},
    {"PointCircle2", 500, 28, 2, 20.478347778320312, 54.02184295654297, 299.0, 895, 0},
    {"PointGoal1", 1000, 60, 2, 0.01196012764197707, 30.071114857340543, 100.0, 2022, 0},
    {"PointGoal2", 1000, 60, 2, 0.002616959830266108, 27.717709787852737, 200.0, 3442, 0},
    {"PointPush1", 1000, 76, 2, 0.0014001545292344209, 16.518654299293367, 150.0, 2379, 0},
    {"PointPush2", 1000, 76, 2, 0.0012438183001730607, 14.691039145644403, 200.0, 3242, 0},
    // Safety-Gymnasium velocity (Safety{Task}Gymnasium-v1)
    {"AntVelocity", 1000, 27, 8, 6.1519012451171875, 2976.276611328125, 250.0, 2249, 0},
    {"HalfCheetahVelocity", 1000, 17, 6, 5.7509765625, 2806.93310546875, 250.0, 2495, 0},
    {"HopperVelocity", 1000, 11, 3, 37.05154800415039, 1911.396728515625, 250.0, 2240, 0},
    {"SwimmerVelocity", 1000, 8, 2, 0.07114458084106445, 238.95831298828125, 200.0, 1686, 0},
    {"Walker2dVelocity", 1000, 17, 6, 18.668498992919922, 3418.223876953125, 300.0, 2729, 0},
    // MetaDrive (SafeMetaDrive-{task}-v0)
    {"easysparse", 1000, 261, 2, 20.094310760498047, 425.8006286621094, 82.42418670654297, 1000, 0},
    {"easymean", 1000, 261, 2, 22.142553329467773, 425.82440185546875, 82.38601684570312, 1000, 0},
    {"easydense", 1000, 261, 2, 19.71139144897461, 425.81732177734375, 80.36358642578125, 1000, 0},
    {"mediumsparse", 1000, 261, 2, 17.446578979492188, 269.80084228515625, 46.46459197998047, 1000,
     0},
    {"mediummean", 1000, 261, 2, 17.032529830932617, 269.8221435546875, 46.46154022216797, 1000, 0},
    {"mediumdense", 1000, 261, 2, 15.102348327636719, 269.7813415527344, 46.45858383178711, 1000,
     0},
    {"hardsparse", 1000, 261, 2, 17.247974395751953, 486.80523681640625, 85.010009765625, 1000, 0},
    {"hardmean", 1000, 261, 2, 19.387981414794922, 486.9967956542969, 84.33995056152344, 1000, 0},
    {"harddense", 1000, 261, 2, 15.386894226074219, 486.63616943359375, 84.76679229736328, 1000, 0},
    // D4RL locomotion (REF_MIN_SCORE / REF_MAX_SCORE of the -random-v0 sets)
    {"halfcheetah", 1000, 17, 6, -280.178953, 12135.0, 0.0, 0, 1},
    {"hopper", 1000, 11, 3, -20.272305, 3234.3, 0.0, 0, 1},
    {"walker2d", 1000, 17, 6, 1.629008, 4592.3, 0.0, 0, 1},
    {"ant", 1000, 111, 8, -325.6, 3879.7, 0.0, 0, 1},
};
#define N_TASKS ((int)(sizeof tasks / sizeof *tasks))
#define FIRST_GYMNASIUM 8  // tasks[8 .. 28]: Safety-Gymnasium
#define LAST_GYMNASIUM 28

// saferl's env ids of the Safety-Gymnasium tasks, in table order
static const char *const saferl_ids[LAST_GYMNASIUM - FIRST_GYMNASIUM + 1] = {
    "SafetyCarButton1",     "SafetyCarButton2",      "SafetyCarCircle1",
    "SafetyCarCircle2",     "SafetyCarGoal1",        "SafetyCarGoal2",
    "SafetyCarPush1",       "SafetyCarPush2",        "SafetyPointButton1",
    "SafetyPointButton2",   "SafetyPointCircle1",    "SafetyPointCircle2",
    "SafetyPointGoal1",     "SafetyPointGoal2",      "SafetyPointPush1",
    "SafetyPointPush2",     "SafetyAntVelocity",     "SafetyHalfCheetahVelocity",
    "SafetyHopperVelocity", "SafetySwimmerVelocity", "SafetyWalker2dVelocity",
};


int srl_dsrl_task_count(void) {
  return N_TASKS;
}


const srl_dsrl_task *srl_dsrl_task_at(int i) {
  return i >= 0 && i < N_TASKS ? &tasks[i] : NULL;
}


const char *srl_dsrl_saferl_env(const srl_dsrl_task *t) {
  if (!t || t < tasks || t >= tasks + N_TASKS) return NULL;
  int i = (int)(t - tasks);
  return i >= FIRST_GYMNASIUM && i <= LAST_GYMNASIUM ? saferl_ids[i - FIRST_GYMNASIUM] : NULL;
}

//---- lookup -------------------------------------------------------------------------------------

static int starts_ci(const char *s, const char *prefix) {
  for (; *prefix; s++, prefix++)
    if (tolower((unsigned char)*s) != tolower((unsigned char)*prefix)) return 0;
  return 1;
}

static const srl_dsrl_task *match(const char *s, int d4rl) {
  for (int i = 0; i < N_TASKS; i++)
    if (tasks[i].d4rl == d4rl && !strcasecmp(tasks[i].name, s)) return &tasks[i];
  return NULL;
}


const srl_dsrl_task *srl_dsrl_find(const char *name) {
  if (!name) return NULL;
  const char *slash = strrchr(name, '/');
  char buf[256];
  snprintf(buf, sizeof buf, "%s", slash ? slash + 1 : name);
  char *s = buf;

  // prefixes: Offline, then SafeMetaDrive- / Metadrive- / Safety
  if (starts_ci(s, "Offline")) s += 7;
  if (starts_ci(s, "SafeMetaDrive-"))
    s += 14;
  else if (starts_ci(s, "Metadrive-"))
    s += 10;
  else if (starts_ci(s, "Safety"))
    s += 6;
  // the version and anything after it ("-v0", "-v1-250-2495.hdf5")
  for (char *p = s; *p; p++)
    if (p[0] == '-' && (p[1] == 'v' || p[1] == 'V') && isdigit((unsigned char)p[2])) {
      *p = '\0';
      break;
    }
  size_t len = strlen(s);
  if (len > 9 && !strcasecmp(s + len - 9, "Gymnasium")) s[len - 9] = '\0';
  const srl_dsrl_task *t = match(s, 0);
  if (t) return t;

  // D4RL: "halfcheetah", "hopper-medium-replay"
  snprintf(buf, sizeof buf, "%s", slash ? slash + 1 : name);
  char *dash = strchr(buf, '-');
  if (dash) *dash = '\0';
  return match(buf, 1);
}

//---- scores -------------------------------------------------------------------------------------

double srl_dsrl_normalized_reward(const srl_dsrl_task *t, double ret) {
  if (!t) return NAN;
  return (ret - t->r_min) / (t->r_max - t->r_min);
}


double srl_dsrl_normalized_cost(double cost, double cost_limit) {
  double eps = cost_limit == 0 ? 1.0 : 0.0;
  return (cost + eps) / (cost_limit + eps);
}

//---- density filter ------------------------------------------------------------------------------

// Python's float floor division (CPython's float_floor_div, which numpy's matches): the quotient
// from fmod, so x // step at a bin edge agrees with DSRL's bin index bit for bit
static double py_floordiv(double vx, double wx) {
  double mod = fmod(vx, wx);
  double div = (vx - mod) / wx;
  if (mod != 0.0 && ((wx < 0) != (mod < 0))) div -= 1.0;
  if (div == 0.0) return copysign(0.0, vx / wx);
  double fl = floor(div);
  if (div - fl > 0.5) fl += 1.0;
  return fl;
}

// the bin of x on an axis from lo with the given step and bins + 2 slots (0 when step is 0)
static long long axis_bin(double x, double lo, double step, int bins) {
  if (step == 0.0) return 0;
  double b = py_floordiv(x - lo, step);
  if (!(b >= 0)) b = 0;
  if (b > bins + 1) b = bins + 1;
  return (long long)b;
}


long long srl_dsrl_density_mask(uint8_t *keep, const double *ep_cost, const double *ep_return,
                                long long n, const srl_dsrl_density *cfg) {
  static const srl_dsrl_density defaults = SRL_DSRL_DENSITY_DEFAULTS;
  if (!cfg) cfg = &defaults;
  if (n < 0 || (n > 0 && (!keep || !ep_cost || !ep_return)))
    return srl_error(SRL_EINVAL, "density filter: NULL arrays");
  if (cfg->cbins < 1 || cfg->rbins < 1 || cfg->max_npb < 0 || cfg->min_npb < 0)
    return srl_error(SRL_EINVAL,
                     "density filter: cbins %d and rbins %d must be ≥ 1, max_npb %d and "
                     "min_npb %d ≥ 0",
                     cfg->cbins, cfg->rbins, cfg->max_npb, cfg->min_npb);
  long long nbx = (long long)cfg->cbins + 2, nby = (long long)cfg->rbins + 2;
  if (nbx * nby > 100000000LL)
    return srl_error(SRL_EINVAL, "density filter: a %d × %d grid is too large", cfg->cbins,
                     cfg->rbins);
  if (n == 0) return 0;

  // the data's ranges and steps
  double cmin = INFINITY, cmax = -INFINITY, rmin = INFINITY, rmax = -INFINITY;
  for (long long e = 0; e < n; e++) {
    if (!isfinite(ep_cost[e]) || !isfinite(ep_return[e]))
      return srl_error(SRL_ENONFINITE, "density filter: episode %lld has a non-finite %s", e,
                       isfinite(ep_cost[e]) ? "return" : "cost");
    cmin = fmin(cmin, ep_cost[e]), cmax = fmax(cmax, ep_cost[e]);
    rmin = fmin(rmin, ep_return[e]), rmax = fmax(rmax, ep_return[e]);
  }
  double cstep = (cmax - cmin) / cfg->cbins, rstep = (rmax - rmin) / cfg->rbins;

  // scratch: bin of each episode, counts and offsets per bin, members grouped by bin, bins in
  // order of first appearance (DSRL's dict order, which fixes the order of the draws)
  size_t nb = (size_t)(nbx * nby), total = 0;
  size_t o_bin = srl_layout_add(&total, sizeof(long long) * (size_t)n);
  size_t o_cnt = srl_layout_add(&total, sizeof(long long) * (nb + 1));
  size_t o_mem = srl_layout_add(&total, sizeof(int) * (size_t)n);
  size_t o_ord = srl_layout_add(&total, sizeof(long long) * (size_t)n);
  size_t o_fill = srl_layout_add(&total, sizeof(long long) * nb);
  if (n > 2147483647LL) return srl_error(SRL_ERANGE, "density filter: %lld episodes", n);
  char *mem = srl_calloc(total);
  if (!mem) return srl_error_context(SRL_ENOMEM, "density filter: ");
  long long *bin = (long long *)(void *)(mem + o_bin);
  long long *start = (long long *)(void *)(mem + o_cnt);
  int *members = (int *)(void *)(mem + o_mem);
  long long *order = (long long *)(void *)(mem + o_ord);
  long long *fill = (long long *)(void *)(mem + o_fill);
  long long n_bins = 0;
  for (long long e = 0; e < n; e++) {
    long long bx = axis_bin(ep_cost[e], cmin, cstep, cfg->cbins);
    long long by = axis_bin(ep_return[e], rmin, rstep, cfg->rbins);
    bin[e] = bx * nby + by;
    if (start[bin[e] + 1]++ == 0) order[n_bins++] = bin[e];
  }
  for (size_t b = 0; b < nb; b++) start[b + 1] += start[b];
  for (long long e = 0; e < n; e++) members[start[bin[e]] + fill[bin[e]]++] = (int)e;

  // keep, drop or draw per bin
  srl_rng *rng = NULL;
  int rc = srl_rng_create(&rng, cfg->seed, 0);
  if (rc < 0) {
    srl_free(mem);
    return rc;
  }
  memset(keep, 0, (size_t)n);
  long long kept = 0;
  for (long long k = 0; k < n_bins; k++) {
    int *m = members + start[order[k]];
    long long cnt = start[order[k] + 1] - start[order[k]];
    if (cnt > cfg->max_npb) {
      // a partial Fisher-Yates shuffle: the first max_npb members are the draw
      for (long long i = 0; i < cfg->max_npb; i++) {
        long long j = i + (long long)srl_rng_int(rng, (unsigned long)(cnt - i));
        int t = m[i];
        m[i] = m[j];
        m[j] = t;
        keep[m[i]] = 1;
      }
      kept += cfg->max_npb;
    } else if (cnt > cfg->min_npb) {
      for (long long i = 0; i < cnt; i++) keep[m[i]] = 1;
      kept += cnt;
    }
  }
  srl_rng_destroy(rng);
  srl_free(mem);
  return kept;
}


int srl_dataset_filter_density(srl_dataset **out, const srl_dataset *d,
                               const srl_dsrl_density *cfg) {
  if (!out || !d) return srl_error(SRL_EINVAL, "srl_dataset_filter_density: NULL argument");
  *out = NULL;
  long long n = d->n_episodes;
  if (n > 0 && !srl_dataset_episode_finished(d, n - 1)) n--;  // an unfinished tail episode
  if (n == 0) return srl_error(SRL_EINVAL, "%s: no finished episode to filter", d->source);
  uint8_t *keep = srl_calloc((size_t)d->n_episodes);
  if (!keep) return srl_error_context(SRL_ENOMEM, "density filter: ");
  long long kept = srl_dsrl_density_mask(keep, d->ep_cost, d->ep_return, n, cfg);
  int rc = kept < 0 ? (int)kept : SRL_OK;
  if (rc == 0 && kept == 0)
    rc = srl_error(SRL_EINVAL,
                   "%s: the density filter keeps none of %lld episodes (every bin holds at most "
                   "min_npb)",
                   d->source, n);
  if (rc == 0) rc = srl_dataset_select(out, d, keep);
  srl_free(keep);
  return rc;
}


int srl_dataset_filter_max_cost(srl_dataset **out, const srl_dataset *d, double max_cost) {
  if (!out || !d) return srl_error(SRL_EINVAL, "srl_dataset_filter_max_cost: NULL argument");
  *out = NULL;
  if (!(max_cost >= 0.0)) return srl_error(SRL_EINVAL, "max_cost %g is not >= 0", max_cost);
  long long n = d->n_episodes;
  if (n > 0 && !srl_dataset_episode_finished(d, n - 1)) n--;
  uint8_t *keep = srl_calloc((size_t)d->n_episodes + 1);
  if (!keep) return srl_error_context(SRL_ENOMEM, "cost cap: ");
  long long kept = 0;
  for (long long e = 0; e < n; e++) kept += keep[e] = d->ep_cost[e] <= max_cost;
  int rc = kept > 0 ? srl_dataset_select(out, d, keep)
                    : srl_error(SRL_EINVAL, "%s: none of %lld finished episodes has cost <= %g",
                                d->source, n, max_cost);
  srl_free(keep);
  return rc;
}

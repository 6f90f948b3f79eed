// dataset.c: offline datasets in DSRL's HDF5 schema (and D4RL's) through libhdf5's C API: every
// file checked before use and read all-or-nothing into one block, episodes indexed from the
// flags, summaries, episode selection, and a DSRL-compatible writer (tmp file + rename).
//
// Reading order: open (a truncated or non-HDF5 file fails here), look up every key and check
// classes and shapes against one another and the requested dims, allocate the one block, read
// the flags, then the float arrays (HDF5 converts float64 and integers to float32), check every
// value, derive next_observations for D4RL files, index episodes. Any failure frees the block:
// the caller never sees a partly read dataset. libhdf5's own error printing is switched off
// around every call into it; its innermost message is appended to ours instead.
//
// Speed: gzip-compressed float datasets (DSRL's and this writer's) are the bulk of a file, and
// libhdf5 inflates their chunks one at a time. For those the reader looks every chunk up through
// libhdf5 (address, size, filter mask), then reads and inflates the chunks on several threads
// with zlib (pread, inflate with its adler32 check, unshuffle, float64 → float32), placing each
// tile into the block. Anything else (contiguous or uncompressed data, other filters, integer
// or big-endian types, unallocated chunks) goes through H5Dread. SRL_DATASET_THREADS sets the
// thread count (0: H5Dread for everything).
#include "algos/offline/dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <hdf5.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/alloc.h"
#include "core/error.h"

#define N_KEYS 7
enum { K_OBS, K_NEXT, K_ACT, K_REW, K_COST, K_TERM, K_TOUT };
static const char *const key_names[N_KEYS] = {
    "observations", "next_observations", "actions", "rewards", "costs", "terminals", "timeouts"};

#define GZIP_LEVEL 4           // h5py's default for compression='gzip'
#define CHUNK_BYTES (1 << 18)  // target bytes per chunk of the writer
#define MAX_THREADS 16         // chunk inflaters of the reader

//---- the one block --------------------------------------------------------------------------

// bytes = a · b · c, or SIZE_MAX on overflow
static size_t mul3(size_t a, size_t b, size_t c) {
  size_t r;
  if (__builtin_mul_overflow(a, b, &r) || __builtin_mul_overflow(r, c, &r)) return SIZE_MAX;
  return r;
}

// large blocks ask for transparent huge pages: a million-row dataset is then a few hundred page
// faults instead of a hundred thousand (most of a read's time on a virtual machine)
static void *alloc_block(size_t total) {
  char *mem = srl_malloc(total);
#ifdef MADV_HUGEPAGE
  const size_t huge = (size_t)2 << 20;
  if (mem && total >= 4 * huge) {
    uintptr_t lo = ((uintptr_t)mem + huge - 1) & ~(uintptr_t)(huge - 1);
    uintptr_t hi = ((uintptr_t)mem + total) & ~(uintptr_t)(huge - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
  }
#endif
  return mem;
}

// one block for cap rows (and up to cap episodes): the struct, then every array. zero_all: every
// array zeroed; else only the struct, the flags and the costs (what a reader may not fill) —
// the rest is overwritten by the caller, and skipping a pass over it halves a large read
static int dataset_alloc(srl_dataset **out, long long cap, int obs_dim, int act_dim, int zero_all) {
  *out = NULL;
  if (cap < 1 || obs_dim < 1 || act_dim < 1)
    return srl_error(SRL_EINVAL, "dataset: %lld rows of %d observations and %d actions", cap,
                     obs_dim, act_dim);
  size_t c = (size_t)cap, total = sizeof(long long), sz[11];  // the block starts with cap
  sz[0] = sizeof(srl_dataset);
  sz[1] = mul3(c, (size_t)obs_dim, sizeof(float));
  sz[2] = sz[1];
  sz[3] = mul3(c, (size_t)act_dim, sizeof(float));
  sz[4] = mul3(c, 1, sizeof(float));
  sz[5] = sz[4];
  sz[6] = c;
  sz[7] = c;
  sz[8] = mul3(c + 1, 1, sizeof(long long));
  sz[9] = mul3(c, 1, sizeof(double));
  sz[10] = sz[9];
  size_t off[11];
  for (int i = 0; i < 11; i++) {
    if (sz[i] == SIZE_MAX || total > SIZE_MAX / 2 || sz[i] > SIZE_MAX / 2)
      return srl_error(SRL_ERANGE, "dataset: %lld rows exceed the addressable size", cap);
    off[i] = srl_layout_add(&total, sz[i]);
  }
  char *mem = alloc_block(total);
  if (!mem)
    return srl_error_context(SRL_ENOMEM, "dataset: %lld rows (%.1f MiB): ", cap,
                             (double)total / 1048576.0);
  if (zero_all) {
    memset(mem, 0, total);
  } else {
    memset(mem, 0, off[1]);
    memset(mem + off[5], 0, off[8] - off[5]);  // costs, terminals, timeouts
  }
  memcpy(mem, &cap, sizeof cap);
  srl_dataset *d = (srl_dataset *)(void *)(mem + off[0]);
  d->obs_dim = obs_dim;
  d->act_dim = act_dim;
  d->obs = (float *)(void *)(mem + off[1]);
  d->next_obs = (float *)(void *)(mem + off[2]);
  d->act = (float *)(void *)(mem + off[3]);
  d->reward = (float *)(void *)(mem + off[4]);
  d->cost = (float *)(void *)(mem + off[5]);
  d->terminal = (uint8_t *)(mem + off[6]);
  d->timeout = (uint8_t *)(mem + off[7]);
  d->ep_start = (long long *)(void *)(mem + off[8]);
  d->ep_return = (double *)(void *)(mem + off[9]);
  d->ep_cost = (double *)(void *)(mem + off[10]);
  d->has_costs = 1;
  d->mem = mem;
  *out = d;
  return SRL_OK;
}


void srl_dataset_destroy(srl_dataset *d) {
  if (d) srl_free(d->mem);
}


int srl_dataset_create(srl_dataset **out, long long n, int obs_dim, int act_dim) {
  if (!out) return srl_error(SRL_EINVAL, "srl_dataset_create: out is NULL");
  SRL_TRY(dataset_alloc(out, n, obs_dim, act_dim, 1));
  (*out)->n = n;
  snprintf((*out)->source, sizeof(*out)->source, "(created)");
  return SRL_OK;
}

// rows the block was made for (stored at its start)
static long long dataset_capacity(const srl_dataset *d) {
  long long cap;
  memcpy(&cap, d->mem, sizeof cap);
  return cap;
}

//---- episodes ---------------------------------------------------------------------------------

int srl_dataset_index_tail(srl_dataset *d, int keep_tail) {
  if (!d) return srl_error(SRL_EINVAL, "srl_dataset_index: dataset is NULL");
  if (d->n < 0 || d->n > dataset_capacity(d))
    return srl_error(SRL_ERANGE, "srl_dataset_index: %lld rows, the dataset holds at most %lld",
                     d->n, dataset_capacity(d));
  long long e = 0, start = 0;
  double ret = 0, cost = 0;
  d->ep_start[0] = 0;
  for (long long i = 0; i < d->n; i++) {
    ret += d->reward[i];
    cost += d->cost[i];
    if (d->terminal[i] || d->timeout[i]) {
      d->ep_return[e] = ret;
      d->ep_cost[e] = cost;
      d->ep_start[++e] = i + 1;
      start = i + 1;
      ret = cost = 0;
    }
  }
  if (keep_tail && start < d->n) {
    d->ep_return[e] = ret;
    d->ep_cost[e] = cost;
    d->ep_start[++e] = d->n;
  }
  d->n_episodes = e;
  return SRL_OK;
}


int srl_dataset_index(srl_dataset *d) {
  return srl_dataset_index_tail(d, 0);
}


int srl_dataset_episode_finished(const srl_dataset *d, long long i) {
  if (!d || i < 0 || i >= d->n_episodes) return 0;
  long long last = d->ep_start[i + 1] - 1;
  return last >= 0 && (d->terminal[last] || d->timeout[last]);
}


int srl_dataset_summarize(srl_dataset_summary *s, const srl_dataset *d, double cost_limit) {
  if (!s || !d) return srl_error(SRL_EINVAL, "srl_dataset_summarize: NULL argument");
  memset(s, 0, sizeof *s);
  s->transitions = d->n;
  s->episodes = d->n_episodes;
  s->cost_limit = cost_limit;
  long long last_end = -1;
  s->step_reward_min = s->step_cost_min = INFINITY;
  s->step_reward_max = s->step_cost_max = -INFINITY;
  for (long long i = 0; i < d->n; i++) {
    s->terminals += d->terminal[i] != 0;
    s->timeouts += d->timeout[i] != 0;
    if (d->terminal[i] || d->timeout[i]) last_end = i;
    s->step_reward_min = fmin(s->step_reward_min, d->reward[i]);
    s->step_reward_max = fmax(s->step_reward_max, d->reward[i]);
    s->step_cost_min = fmin(s->step_cost_min, d->cost[i]);
    s->step_cost_max = fmax(s->step_cost_max, d->cost[i]);
  }
  if (d->n == 0)
    s->step_reward_min = s->step_reward_max = s->step_cost_min = s->step_cost_max = NAN;
  s->tail_rows = d->n - 1 - last_end;

  long long n = d->n_episodes;
  if (n == 0) {
    s->ret_min = s->ret_max = s->ret_mean = s->ret_std = NAN;
    s->cost_min = s->cost_max = s->cost_mean = s->cost_std = NAN;
    s->len_min = s->len_max = s->len_mean = s->safe_share = NAN;
    return SRL_OK;
  }
  s->ret_min = s->cost_min = s->len_min = INFINITY;
  s->ret_max = s->cost_max = s->len_max = -INFINITY;
  double rs = 0, cs = 0, ls = 0;
  for (long long e = 0; e < n; e++) {
    double r = d->ep_return[e], c = d->ep_cost[e],
           l = (double)(d->ep_start[e + 1] - d->ep_start[e]);
    s->ret_min = fmin(s->ret_min, r), s->ret_max = fmax(s->ret_max, r), rs += r;
    s->cost_min = fmin(s->cost_min, c), s->cost_max = fmax(s->cost_max, c), cs += c;
    s->len_min = fmin(s->len_min, l), s->len_max = fmax(s->len_max, l), ls += l;
    s->safe_episodes += c <= cost_limit;
  }
  s->ret_mean = rs / (double)n;
  s->cost_mean = cs / (double)n;
  s->len_mean = ls / (double)n;
  double rq = 0, cq = 0;
  for (long long e = 0; e < n; e++) {
    rq += (d->ep_return[e] - s->ret_mean) * (d->ep_return[e] - s->ret_mean);
    cq += (d->ep_cost[e] - s->cost_mean) * (d->ep_cost[e] - s->cost_mean);
  }
  s->ret_std = sqrt(rq / (double)n);
  s->cost_std = sqrt(cq / (double)n);
  s->safe_share = (double)s->safe_episodes / (double)n;
  return SRL_OK;
}


int srl_dataset_select(srl_dataset **out, const srl_dataset *d, const uint8_t *keep) {
  if (!out || !d || (!keep && d->n_episodes))
    return srl_error(SRL_EINVAL, "srl_dataset_select: NULL argument");
  *out = NULL;
  long long rows = 0;
  for (long long e = 0; e < d->n_episodes; e++)
    if (keep[e]) rows += d->ep_start[e + 1] - d->ep_start[e];
  if (rows == 0) return srl_error(SRL_EINVAL, "%s: the selection holds no episode", d->source);
  srl_dataset *o;
  SRL_TRY(dataset_alloc(&o, rows, d->obs_dim, d->act_dim, 0));
  size_t od = (size_t)d->obs_dim, ad = (size_t)d->act_dim;
  long long j = 0;
  for (long long e = 0; e < d->n_episodes; e++) {
    if (!keep[e]) continue;
    long long s = d->ep_start[e], len = d->ep_start[e + 1] - s;
    memcpy(o->obs + (size_t)j * od, d->obs + (size_t)s * od, sizeof(float) * od * (size_t)len);
    memcpy(o->next_obs + (size_t)j * od, d->next_obs + (size_t)s * od,
           sizeof(float) * od * (size_t)len);
    memcpy(o->act + (size_t)j * ad, d->act + (size_t)s * ad, sizeof(float) * ad * (size_t)len);
    memcpy(o->reward + j, d->reward + s, sizeof(float) * (size_t)len);
    memcpy(o->cost + j, d->cost + s, sizeof(float) * (size_t)len);
    memcpy(o->terminal + j, d->terminal + s, (size_t)len);
    memcpy(o->timeout + j, d->timeout + s, (size_t)len);
    j += len;
  }
  o->n = rows;
  o->has_costs = d->has_costs;
  memcpy(o->source, d->source, sizeof o->source);
  // an unfinished episode can only be the last one selected: keep it as one
  srl_dataset_index_tail(o, 1);
  *out = o;
  return SRL_OK;
}

//---- libhdf5 plumbing ---------------------------------------------------------------------------

// libhdf5's automatic error printing, switched off while we call it
typedef struct h5_quiet {
  H5E_auto2_t fn;
  void *data;
} h5_quiet;

static void quiet_begin(h5_quiet *q) {
  H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void quiet_end(const h5_quiet *q) {
  H5Eclear2(H5E_DEFAULT);
  H5Eset_auto2(H5E_DEFAULT, q->fn, q->data);
}

static herr_t walk_innermost(unsigned n, const H5E_error2_t *e, void *data) {
  char *buf = data;
  if (n == 0 && e) {
    const char *desc = e->desc && e->desc[0] ? e->desc : "(no description)";
    snprintf(buf, 256, "%s: %s", e->func_name ? e->func_name : "?", desc);
  }
  return 0;
}

// the innermost message of libhdf5's current error stack (then cleared), "" when none
static const char *h5_detail(char buf[256]) {
  buf[0] = '\0';
  hid_t st = H5Eget_current_stack();
  if (st >= 0) {
    H5Ewalk2(st, H5E_WALK_UPWARD, walk_innermost, buf);
    H5Eclose_stack(st);
  }
  return buf;
}

static void h5_close(hid_t *id, herr_t (*closer)(hid_t)) {
  if (*id >= 0) closer(*id);
  *id = -1;
}

//---- reading -------------------------------------------------------------------------------------

typedef struct h5var {
  const char *key;
  int present;
  hid_t ds, ftype;
  H5T_class_t cls;
  int rank;
  hsize_t dims[H5S_MAX_RANK];
} h5var;

typedef struct reader {
  const char *path;
  hid_t file;
  int fd;        // the same file for the chunk threads' pread (-1: not open)
  haddr_t base;  // file offset of HDF5 address 0 (the user block's size)
  h5var v[N_KEYS];
  char h5msg[256];
} reader;

static void reader_close(reader *r) {
  for (int k = 0; k < N_KEYS; k++) {
    h5_close(&r->v[k].ftype, H5Tclose);
    h5_close(&r->v[k].ds, H5Dclose);
  }
  h5_close(&r->file, H5Fclose);
  if (r->fd >= 0) close(r->fd);
  r->fd = -1;
}

static const char *class_name(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER:
      return "integer";
    case H5T_FLOAT:
      return "float";
    case H5T_STRING:
      return "string";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_COMPOUND:
      return "compound";
    case H5T_REFERENCE:
      return "reference";
    case H5T_ENUM:
      return "enum";
    case H5T_VLEN:
      return "variable-length";
    case H5T_ARRAY:
      return "array";
    default:
      return "unknown";
  }
}

static void shape_str(const h5var *v, char *buf, size_t n) {
  size_t used = (size_t)snprintf(buf, n, "(");
  for (int i = 0; i < v->rank && used < n; i++)
    used += (size_t)snprintf(buf + used, n - used, "%s%llu", i ? ", " : "",
                             (unsigned long long)v->dims[i]);
  if (used < n) snprintf(buf + used, n - used, v->rank == 1 ? ",)" : ")");
}

// look a root dataset up: its class, rank and dims
static int open_var(reader *r, int k) {
  h5var *v = &r->v[k];
  v->key = key_names[k];
  htri_t ex = H5Lexists(r->file, v->key, H5P_DEFAULT);
  if (ex < 0)
    return srl_error(SRL_EFORMAT, "%s: cannot look up '%s': the file is corrupt (HDF5: %s)",
                     r->path, v->key, h5_detail(r->h5msg));
  if (ex == 0) return SRL_OK;
  hid_t obj = H5Oopen(r->file, v->key, H5P_DEFAULT);
  if (obj < 0)
    return srl_error(SRL_EFORMAT, "%s: cannot open '%s': the file is corrupt (HDF5: %s)", r->path,
                     v->key, h5_detail(r->h5msg));
  H5I_type_t t = H5Iget_type(obj);
  H5Oclose(obj);
  if (t != H5I_DATASET)
    return srl_error(SRL_EFORMAT, "%s: '%s' is not a dataset (a group or a named type)", r->path,
                     v->key);
  v->ds = H5Dopen2(r->file, v->key, H5P_DEFAULT);
  if (v->ds < 0)
    return srl_error(SRL_EFORMAT, "%s: cannot open dataset '%s' (HDF5: %s)", r->path, v->key,
                     h5_detail(r->h5msg));
  v->ftype = H5Dget_type(v->ds);
  hid_t space = H5Dget_space(v->ds);
  if (v->ftype < 0 || space < 0) {
    if (space >= 0) H5Sclose(space);
    return srl_error(SRL_EFORMAT, "%s: cannot read the type and shape of '%s' (HDF5: %s)", r->path,
                     v->key, h5_detail(r->h5msg));
  }
  v->cls = H5Tget_class(v->ftype);
  // every filter of its pipeline must be one this libhdf5 can decode (h5py's lzf is not)
  hid_t dcpl = H5Dget_create_plist(v->ds);
  int nf = dcpl >= 0 ? H5Pget_nfilters(dcpl) : 0;
  for (int i = 0; i < nf; i++) {
    unsigned flags, cdv[8];
    size_t ncd = 8;
    char name[64] = "";
    H5Z_filter_t f = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cdv, sizeof name, name, NULL);
    if (f >= 0 && H5Zfilter_avail(f) <= 0) {
      H5Pclose(dcpl);
      H5Sclose(space);
      return srl_error(SRL_EFORMAT,
                       "%s: '%s' is stored with filter %d ('%s'), which this libhdf5 cannot "
                       "decode (gzip, shuffle and szip are built in)",
                       r->path, v->key, (int)f, name);
    }
  }
  if (dcpl >= 0) H5Pclose(dcpl);
  v->rank = H5Sget_simple_extent_ndims(space);
  if (v->rank > 0) H5Sget_simple_extent_dims(space, v->dims, NULL);
  H5Sclose(space);
  if (v->rank < 0) return srl_error(SRL_EFORMAT, "%s: '%s' has no simple shape", r->path, v->key);
  v->present = 1;
  return SRL_OK;
}

// a key holding a (N, dim) matrix of numbers
static int check_matrix(reader *r, int k, long long n, int *dim) {
  h5var *v = &r->v[k];
  char sh[96];
  shape_str(v, sh, sizeof sh);
  if (v->cls != H5T_FLOAT && v->cls != H5T_INTEGER)
    return srl_error(SRL_EFORMAT, "%s: '%s' holds %s values, expected numbers (float)", r->path,
                     v->key, class_name(v->cls));
  if (v->rank != 2)
    return srl_error(SRL_EFORMAT, "%s: '%s' has shape %s, expected (N, dim)", r->path, v->key, sh);
  if ((long long)v->dims[0] != n)
    return srl_error(SRL_EFORMAT, "%s: '%s' has %llu rows, 'observations' has %lld", r->path,
                     v->key, (unsigned long long)v->dims[0], n);
  if (v->dims[1] < 1 || v->dims[1] > 1000000)
    return srl_error(SRL_EFORMAT, "%s: '%s' has shape %s: %llu columns per row is out of range",
                     r->path, v->key, sh, (unsigned long long)v->dims[1]);
  *dim = (int)v->dims[1];
  return SRL_OK;
}

// a key holding one value per row: (N,) or (N, 1)
static int check_column(reader *r, int k, long long n, int flags) {
  h5var *v = &r->v[k];
  char sh[96];
  shape_str(v, sh, sizeof sh);
  int ok_class = v->cls == H5T_FLOAT || v->cls == H5T_INTEGER || (flags && v->cls == H5T_ENUM);
  if (!ok_class)
    return srl_error(SRL_EFORMAT, "%s: '%s' holds %s values, expected %s", r->path, v->key,
                     class_name(v->cls),
                     flags ? "flags (bool, int8, uint8 or float)" : "numbers (float)");
  if (!(v->rank == 1 || (v->rank == 2 && v->dims[1] == 1)))
    return srl_error(SRL_EFORMAT, "%s: '%s' has shape %s, expected (N,) or (N, 1)", r->path, v->key,
                     sh);
  if ((long long)v->dims[0] != n)
    return srl_error(SRL_EFORMAT, "%s: '%s' has %llu rows, 'observations' has %lld", r->path,
                     v->key, (unsigned long long)v->dims[0], n);
  if (v->cls == H5T_ENUM) {
    hid_t base = H5Tget_super(v->ftype);
    int ok = base >= 0 && H5Tget_class(base) == H5T_INTEGER && H5Tget_size(base) <= 8;
    if (base >= 0) H5Tclose(base);
    if (!ok)
      return srl_error(SRL_EFORMAT, "%s: '%s' is an enum whose base is not an integer", r->path,
                       v->key);
  }
  return SRL_OK;
}

// the whole dataset into buf as mem_type
static int read_all(reader *r, int k, hid_t mem_type, void *buf) {
  if (H5Dread(r->v[k].ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
    return srl_error(SRL_EFORMAT,
                     "%s: reading '%s' failed: the file is truncated or corrupt (HDF5: %s)",
                     r->path, r->v[k].key, h5_detail(r->h5msg));
  return SRL_OK;
}

//---- fast path: chunks read and inflated on several threads --------------------------------------

typedef struct chunk_read {
  const reader *r;
  const char *key;
  int cols;                      // values per row (1 for a column)
  hsize_t rows;                  // rows of the dataset
  hsize_t crows, ccols;          // chunk shape
  hsize_t nc_cols;               // chunks along the columns
  size_t esize;                  // bytes per value in the file (4 or 8)
  int shuffle_idx, deflate_idx;  // their places in the pipeline (-1: absent)
  long long nchunks;
  haddr_t *addr;
  hsize_t *size;
  unsigned *mask;
  size_t max_size;  // the largest stored chunk
  float *out;       // (rows, cols)
  long long next;   // the next chunk to take (atomic)
  int failed;       // 0, or the status of the first failure, whose message is in msg
  pthread_mutex_t lock;
  char msg[512];
} chunk_read;

// the first failure wins; corrupt: the file's fault (else the machine's, e.g. no memory)
static void chunk_fail(chunk_read *c, long long k, const char *what, int corrupt) {
  pthread_mutex_lock(&c->lock);
  if (!c->failed) {
    snprintf(c->msg, sizeof c->msg, "%s: reading '%s' failed at chunk %lld (rows from %llu): %s%s",
             c->r->path, c->key, k,
             (unsigned long long)((hsize_t)(k / (long long)c->nc_cols) * c->crows), what,
             corrupt ? "; the file is truncated or corrupt" : "");
    __atomic_store_n(&c->failed, corrupt ? SRL_EFORMAT : SRL_EIO, __ATOMIC_RELAXED);
  }
  pthread_mutex_unlock(&c->lock);
}

// float64 to float32 as libhdf5 converts: beyond float32's range becomes ±inf
static inline float to_f32(double x) {
  if (x > FLT_MAX) return INFINITY;
  if (x < -FLT_MAX) return -INFINITY;
  return (float)x;
}

// chunks placed by the threaded path since the process started (tests read it to know which
// path a file took)
long long srl__dataset_chunks_threaded;

static void *chunk_worker(void *arg) {
  chunk_read *c = arg;
  size_t nval = (size_t)(c->crows * c->ccols), bytes = nval * c->esize;
  unsigned char *raw = malloc(c->max_size ? c->max_size : 1), *a = malloc(bytes),
                *b = malloc(bytes);
  if (!raw || !a || !b) {
    chunk_fail(c, 0, "out of memory for the chunk buffers", 0);
    goto done;
  }
  for (;;) {
    long long k = __atomic_fetch_add(&c->next, 1, __ATOMIC_RELAXED);
    if (k >= c->nchunks || __atomic_load_n(&c->failed, __ATOMIC_RELAXED)) break;
    // the stored bytes
    size_t sz = (size_t)c->size[k];
    if (sz > c->max_size) {
      chunk_fail(c, k, "stored chunk larger than expected", 1);
      break;
    }
    ssize_t got = pread(c->r->fd, raw, sz, (off_t)(c->r->base + c->addr[k]));
    if (got != (ssize_t)sz) {
      if (got < 0)
        chunk_fail(c, k, strerror(errno), 0);
      else
        chunk_fail(c, k, "the chunk lies past the end of the file", 1);
      break;
    }
    // inflate (unless the mask says deflate was skipped for this chunk)
    const unsigned char *data = raw;
    size_t data_len = sz;
    if (c->deflate_idx >= 0 && !(c->mask[k] & (1u << c->deflate_idx))) {
      z_stream z;
      memset(&z, 0, sizeof z);
      if (inflateInit(&z) != Z_OK) {
        chunk_fail(c, k, "zlib could not start", 0);
        break;
      }
      z.next_in = raw;
      z.avail_in = (uInt)sz;
      z.next_out = a;
      z.avail_out = (uInt)bytes;
      int zr = inflate(&z, Z_FINISH);
      size_t out_len = bytes - z.avail_out;
      inflateEnd(&z);
      if (zr != Z_STREAM_END || out_len != bytes) {
        chunk_fail(c, k,
                   zr == Z_DATA_ERROR                ? "gzip data corrupt (zlib)"
                   : zr == Z_BUF_ERROR || zr == Z_OK ? "gzip data does not fill the chunk"
                                                     : "inflate failed",
                   zr != Z_MEM_ERROR);
        break;
      }
      data = a;
      data_len = out_len;
    }
    if (data_len != bytes) {
      chunk_fail(c, k, "stored chunk has the wrong size", 1);
      break;
    }
    // unshuffle: byte j of value i is at j·nval + i
    if (c->shuffle_idx >= 0 && !(c->mask[k] & (1u << c->shuffle_idx))) {
      unsigned char *dst = data == a ? b : a;
      if (c->esize == 4) {
        // little-endian host (checked before the fast path is chosen): byte j is bits 8j..
        const unsigned char *s0 = data, *s1 = s0 + nval, *s2 = s1 + nval, *s3 = s2 + nval;
        uint32_t *d32 = (uint32_t *)(void *)dst;
        for (size_t i = 0; i < nval; i++)
          d32[i] = (uint32_t)s0[i] | (uint32_t)s1[i] << 8 | (uint32_t)s2[i] << 16 |
                   (uint32_t)s3[i] << 24;
      } else {
        for (size_t j = 0; j < c->esize; j++) {
          const unsigned char *src = data + j * nval;
          for (size_t i = 0; i < nval; i++) dst[i * c->esize + j] = src[i];
        }
      }
      data = dst;
    }
    __atomic_fetch_add(&srl__dataset_chunks_threaded, 1, __ATOMIC_RELAXED);
    // place the tile: chunk (ci, cj) covers rows ci·crows.., columns cj·ccols..
    hsize_t ci = (hsize_t)k / c->nc_cols, cj = (hsize_t)k % c->nc_cols;
    hsize_t r0 = ci * c->crows, c0 = cj * c->ccols;
    hsize_t nr = c->rows - r0 < c->crows ? c->rows - r0 : c->crows;
    hsize_t ncl = (hsize_t)c->cols - c0 < c->ccols ? (hsize_t)c->cols - c0 : c->ccols;
    for (hsize_t i = 0; i < nr; i++) {
      float *dst = c->out + (size_t)(r0 + i) * (size_t)c->cols + c0;
      const unsigned char *src = data + (size_t)(i * c->ccols) * c->esize;
      if (c->esize == 4) {
        memcpy(dst, src, sizeof(float) * (size_t)ncl);
      } else {
        for (hsize_t q = 0; q < ncl; q++) {
          double x;
          memcpy(&x, src + 8 * q, 8);
          dst[q] = to_f32(x);
        }
      }
    }
  }
done:
  free(raw);
  free(a);
  free(b);
  return NULL;
}

// threads for the chunks: SRL_DATASET_THREADS when set (0: H5Dread only), else the processors
static int thread_count(void) {
  const char *e = getenv("SRL_DATASET_THREADS");
  long n = e && *e ? strtol(e, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
  if (e && *e && n <= 0) return 0;
  return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

// Read key k into out with the threaded path when its storage allows; 1 when done that way, 0
// when the caller should use H5Dread, negative on a read failure.
static int read_fast(reader *r, int k, float *out) {
  h5var *v = &r->v[k];
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
  return 0;  // the threaded path copies little-endian bytes as they are
#endif
  int nt = thread_count();
  if (nt == 0 || r->fd < 0 || (v->rank != 1 && v->rank != 2)) return 0;
  size_t esize = H5Tequal(v->ftype, H5T_IEEE_F32LE) > 0   ? 4
                 : H5Tequal(v->ftype, H5T_IEEE_F64LE) > 0 ? 8
                                                          : 0;
  if (esize == 0) return 0;  // other types: libhdf5 converts them
  // the storage: chunked, with only shuffle and deflate, shuffle first
  hid_t dcpl = H5Dget_create_plist(v->ds);
  if (dcpl < 0) return 0;
  int ok = H5Pget_layout(dcpl) == H5D_CHUNKED;
  hsize_t cd[2] = {1, 1};
  if (ok) ok = H5Pget_chunk(dcpl, v->rank, cd) == v->rank;
  int nf = ok ? H5Pget_nfilters(dcpl) : 0, sh = -1, df = -1;
  for (int i = 0; ok && i < nf; i++) {
    unsigned flags, cdv[8];
    size_t ncd = 8;
    char name[64];
    H5Z_filter_t f = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cdv, sizeof name, name, NULL);
    if (f == H5Z_FILTER_SHUFFLE && sh < 0 && df < 0)
      sh = i;
    else if (f == H5Z_FILTER_DEFLATE && df < 0)
      df = i;
    else
      ok = 0;
  }
  H5Pclose(dcpl);
  if (!ok || df < 0) return 0;

  chunk_read c;
  memset(&c, 0, sizeof c);
  c.r = r, c.key = v->key, c.out = out, c.esize = esize, c.shuffle_idx = sh, c.deflate_idx = df;
  c.rows = v->dims[0];
  c.cols = v->rank == 2 ? (int)v->dims[1] : 1;
  c.crows = cd[0], c.ccols = v->rank == 2 ? cd[1] : 1;
  if (c.crows == 0 || c.ccols == 0) return 0;
  hsize_t nc_rows = (c.rows + c.crows - 1) / c.crows;
  c.nc_cols = ((hsize_t)c.cols + c.ccols - 1) / c.ccols;
  c.nchunks = (long long)(nc_rows * c.nc_cols);
  hsize_t stored = 0;
  hid_t fspace = H5Dget_space(v->ds);
  herr_t got = fspace >= 0 ? H5Dget_num_chunks(v->ds, fspace, &stored) : -1;
  if (fspace >= 0) H5Sclose(fspace);
  if (got < 0 || (long long)stored != c.nchunks) {
    H5Eclear2(H5E_DEFAULT);
    return 0;  // unallocated chunks read as fill values: libhdf5's job
  }

  // every chunk's address, size and filter mask, looked up by its coordinates
  size_t per = sizeof(haddr_t) + sizeof(hsize_t) + sizeof(unsigned);
  char *tab = malloc(per * (size_t)c.nchunks);
  if (!tab)
    return srl_error(SRL_ENOMEM, "%s: '%s': no memory for the chunk table", r->path, v->key);
  c.addr = (haddr_t *)(void *)tab;
  c.size = (hsize_t *)(void *)(tab + sizeof(haddr_t) * (size_t)c.nchunks);
  c.mask = (unsigned *)(void *)(tab + (sizeof(haddr_t) + sizeof(hsize_t)) * (size_t)c.nchunks);
  size_t chunk_bytes = (size_t)(c.crows * c.ccols) * esize;
  size_t raw_max = chunk_bytes + chunk_bytes / 1000 + 64;  // deflate's worst case, with room
  for (long long q = 0; q < c.nchunks; q++) {
    hsize_t off[2] = {((hsize_t)q / c.nc_cols) * c.crows, ((hsize_t)q % c.nc_cols) * c.ccols};
    if (H5Dget_chunk_info_by_coord(v->ds, off, &c.mask[q], &c.addr[q], &c.size[q]) < 0 ||
        c.addr[q] == HADDR_UNDEF) {
      free(tab);
      H5Eclear2(H5E_DEFAULT);
      return 0;
    }
    if (c.size[q] > raw_max) {
      free(tab);
      return srl_error(SRL_EFORMAT, "%s: '%s' chunk %lld claims %llu stored bytes: corrupt",
                       r->path, v->key, q, (unsigned long long)c.size[q]);
    }
    if (c.size[q] > c.max_size) c.max_size = (size_t)c.size[q];
  }

  // inflate on the threads
  if (nt > c.nchunks) nt = (int)c.nchunks;
  pthread_t th[MAX_THREADS];
  pthread_mutex_init(&c.lock, NULL);
  int started = 0;
  for (int t = 1; t < nt; t++) {
    if (pthread_create(&th[t], NULL, chunk_worker, &c) != 0) break;
    started++;
  }
  chunk_worker(&c);
  for (int t = 1; t <= started; t++) pthread_join(th[t], NULL);
  pthread_mutex_destroy(&c.lock);
  free(tab);
  if (c.failed) return srl_error(c.failed, "%s", c.msg);
  return 1;
}


// a flag column into out (0 or 1 per row); scratch holds n doubles
static int read_flags(reader *r, int k, long long n, uint8_t *out, double *scratch) {
  h5var *v = &r->v[k];
  if (v->cls == H5T_ENUM) {
    // enum over an integer (h5py's bool: int8 with FALSE = 0, TRUE = 1): HDF5 has no enum to
    // integer conversion, so read the raw base values and decode them here
    hid_t mt = H5Tget_native_type(v->ftype, H5T_DIR_ASCEND);
    if (mt < 0)
      return srl_error(SRL_EFORMAT, "%s: '%s': no native type for its enum (HDF5: %s)", r->path,
                       v->key, h5_detail(r->h5msg));
    size_t sz = H5Tget_size(mt);
    int is_signed = H5Tget_sign(mt) == H5T_SGN_2;
    int rc = sz >= 1 && sz <= 8
                 ? read_all(r, k, mt, scratch)
                 : srl_error(SRL_EFORMAT, "%s: '%s': enum of %zu bytes", r->path, v->key, sz);
    H5Tclose(mt);
    SRL_TRY(rc);
    const unsigned char *raw = (const unsigned char *)scratch;
    for (long long i = 0; i < n; i++) {
      const unsigned char *p = raw + (size_t)i * sz;
      long long x;
      switch (sz) {
        case 1:
          x = is_signed ? (long long)*(const int8_t *)p : (long long)*p;
          break;
        case 2: {
          int16_t a;
          memcpy(&a, p, 2);
          x = is_signed ? a : (long long)(uint16_t)a;
        } break;
        case 4: {
          int32_t a;
          memcpy(&a, p, 4);
          x = is_signed ? a : (long long)(uint32_t)a;
        } break;
        default: {
          int64_t a;
          memcpy(&a, p, sizeof a);
          x = a;
        }
      }
      if (x != 0 && x != 1)
        return srl_error(SRL_EFORMAT, "%s: '%s' row %lld holds %lld, a flag must be 0 or 1",
                         r->path, v->key, i, x);
      out[i] = (uint8_t)x;
    }
    return SRL_OK;
  }
  // integers and floats convert to double exactly enough to tell 0 and 1 apart
  SRL_TRY(read_all(r, k, H5T_NATIVE_DOUBLE, scratch));
  for (long long i = 0; i < n; i++) {
    double x = scratch[i];
    if (x != 0.0 && x != 1.0)
      return srl_error(SRL_EFORMAT, "%s: '%s' row %lld holds %.9g, a flag must be 0 or 1", r->path,
                       v->key, i, x);
    out[i] = (uint8_t)x;
  }
  return SRL_OK;
}

// every value finite, else name the first bad row (and column)
static int check_finite(const reader *r, int k, const float *x, long long n, int dim) {
  size_t total = (size_t)n * (size_t)dim;
  int bad = 0;
#pragma omp simd reduction(| : bad)
  for (size_t i = 0; i < total; i++) bad |= !isfinite(x[i]);
  if (!bad) return SRL_OK;
  for (size_t i = 0; i < total; i++)
    if (!isfinite(x[i])) {
      long long row = (long long)(i / (size_t)dim);
      char col[48] = "";
      if (dim > 1) snprintf(col, sizeof col, " column %d", (int)(i % (size_t)dim));
      return srl_error(SRL_EFORMAT,
                       "%s: '%s' row %lld%s is %s (every value must be finite; float64 values "
                       "beyond float32's range read as inf)",
                       r->path, key_names[k], row, col, isnan(x[i]) ? "nan" : "inf");
    }
  return SRL_OK;
}

// D4RL's qlearning_dataset: next_obs[i] = obs[i + 1]; timeout rows and the last row are dropped
// (their next observation is not in the file). The row before a dropped episode end gets the
// timeout flag, so episodes stay split there. Returns the rows kept.
static long long derive_next_obs(srl_dataset *d, long long n) {
  size_t od = (size_t)d->obs_dim, ad = (size_t)d->act_dim;
  long long j = 0;
  long long prev_src = -2;  // source row of output row j - 1
  for (long long i = 0; i < n; i++) {
    int last = i == n - 1;
    if (d->timeout[i] || last) {
      // the step before a dropped end, within the same episode, ends the episode instead
      if ((d->timeout[i] || d->terminal[i]) && prev_src == i - 1 && j > 0 && !d->terminal[j - 1] &&
          !d->timeout[j - 1])
        d->timeout[j - 1] = 1;
      continue;
    }
    memcpy(d->next_obs + (size_t)j * od, d->obs + (size_t)(i + 1) * od, sizeof(float) * od);
    if (j != i) {
      memmove(d->obs + (size_t)j * od, d->obs + (size_t)i * od, sizeof(float) * od);
      memmove(d->act + (size_t)j * ad, d->act + (size_t)i * ad, sizeof(float) * ad);
      d->reward[j] = d->reward[i];
      d->cost[j] = d->cost[i];
      d->terminal[j] = d->terminal[i];
    }
    d->timeout[j] = 0;
    prev_src = i;
    j++;
  }
  return j;
}

// a float array: the threaded path when possible, else H5Dread's conversion
static int read_floats(reader *r, int k, float *out) {
  int rc = read_fast(r, k, out);
  if (rc < 0) return rc;
  return rc == 1 ? SRL_OK : read_all(r, k, H5T_NATIVE_FLOAT, out);
}

static int read_file(reader *r, srl_dataset **out, const srl_dataset_read_options *opt) {
  const char *path = r->path;
  struct stat st;
  if (stat(path, &st) != 0)
    return srl_error(errno == ENOENT ? SRL_ENOTFOUND : SRL_EIO, "%s: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode)) return srl_error(SRL_EIO, "%s: not a regular file", path);
  htri_t is = H5Fis_hdf5(path);
  if (is <= 0)
    return srl_error(SRL_EFORMAT, "%s: not an HDF5 file (no HDF5 signature%s%s)", path,
                     is < 0 ? "; HDF5: " : "", is < 0 ? h5_detail(r->h5msg) : "");
  r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (r->file < 0)
    return srl_error(SRL_EFORMAT, "%s: cannot open: the file is truncated or corrupt (HDF5: %s)",
                     path, h5_detail(r->h5msg));
  // the chunk threads' view of the same file: HDF5 addresses count from the end of the user block
  hid_t fcpl = H5Fget_create_plist(r->file);
  hsize_t ub = 0;
  if (fcpl >= 0 && H5Pget_userblock(fcpl, &ub) >= 0) {
    r->base = (haddr_t)ub;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
  }
  if (fcpl >= 0) H5Pclose(fcpl);

  // keys, classes and shapes
  for (int k = 0; k < N_KEYS; k++) SRL_TRY(open_var(r, k));
  const char *need[] = {"observations", "actions", "rewards", "terminals"};
  int need_k[] = {K_OBS, K_ACT, K_REW, K_TERM};
  int allow_d4rl = opt && opt->allow_no_costs;
  for (int i = 0; i < 4; i++)
    if (!r->v[need_k[i]].present)
      return srl_error(SRL_EFORMAT,
                       "%s: missing dataset '%s' (a DSRL file has observations, "
                       "next_observations, actions, rewards, costs, terminals, timeouts)",
                       path, need[i]);
  if (!r->v[K_COST].present && !allow_d4rl)
    return srl_error(SRL_EFORMAT,
                     "%s: missing dataset 'costs' (a D4RL file without costs is "
                     "read only when asked for; its costs are then zero)",
                     path);
  if (!r->v[K_TOUT].present && r->v[K_COST].present)
    return srl_error(SRL_EFORMAT, "%s: missing dataset 'timeouts'", path);
  if (!r->v[K_TOUT].present && !allow_d4rl)
    return srl_error(SRL_EFORMAT, "%s: missing dataset 'timeouts'", path);

  h5var *vo = &r->v[K_OBS];
  if (vo->rank < 1 || vo->dims[0] == 0)
    return srl_error(SRL_EFORMAT, "%s: 'observations' holds no rows", path);
  long long n = (long long)vo->dims[0];
  int obs_dim = 0, act_dim = 0, next_dim = 0;
  SRL_TRY(check_matrix(r, K_OBS, n, &obs_dim));
  SRL_TRY(check_matrix(r, K_ACT, n, &act_dim));
  int derive = !r->v[K_NEXT].present;
  if (!derive) {
    SRL_TRY(check_matrix(r, K_NEXT, n, &next_dim));
    if (next_dim != obs_dim)
      return srl_error(SRL_EFORMAT, "%s: 'next_observations' has %d columns, 'observations' %d",
                       path, next_dim, obs_dim);
  } else if (n < 2) {
    return srl_error(SRL_EFORMAT,
                     "%s: one row and no 'next_observations': nothing to derive "
                     "transitions from",
                     path);
  }
  SRL_TRY(check_column(r, K_REW, n, 0));
  if (r->v[K_COST].present) SRL_TRY(check_column(r, K_COST, n, 0));
  SRL_TRY(check_column(r, K_TERM, n, 1));
  if (r->v[K_TOUT].present) SRL_TRY(check_column(r, K_TOUT, n, 1));
  if (opt && opt->obs_dim > 0 && opt->obs_dim != obs_dim)
    return srl_error(SRL_EFORMAT,
                     "%s: 'observations' has %d columns, the env's observations "
                     "have %d",
                     path, obs_dim, opt->obs_dim);
  if (opt && opt->act_dim > 0 && opt->act_dim != act_dim)
    return srl_error(SRL_EFORMAT, "%s: 'actions' has %d columns, the env's actions have %d", path,
                     act_dim, opt->act_dim);

  // the block, and a scratch of n doubles for the flags
  srl_dataset *d = NULL;
  SRL_TRY(dataset_alloc(&d, n, obs_dim, act_dim, 0));
  double *scratch = srl_malloc(sizeof(double) * (size_t)n);
  int rc = scratch ? SRL_OK : srl_error_context(SRL_ENOMEM, "%s: flags: ", path);
  if (rc == 0) rc = read_flags(r, K_TERM, n, d->terminal, scratch);
  if (rc == 0 && r->v[K_TOUT].present) rc = read_flags(r, K_TOUT, n, d->timeout, scratch);
  srl_free(scratch);

  // the float arrays (threaded or converted by HDF5), then every value checked
  if (rc == 0) rc = read_floats(r, K_OBS, d->obs);
  if (rc == 0 && !derive) rc = read_floats(r, K_NEXT, d->next_obs);
  if (rc == 0) rc = read_floats(r, K_ACT, d->act);
  if (rc == 0) rc = read_floats(r, K_REW, d->reward);
  if (rc == 0 && r->v[K_COST].present) rc = read_floats(r, K_COST, d->cost);
  if (rc == 0) rc = check_finite(r, K_OBS, d->obs, n, obs_dim);
  if (rc == 0 && !derive) rc = check_finite(r, K_NEXT, d->next_obs, n, obs_dim);
  if (rc == 0) rc = check_finite(r, K_ACT, d->act, n, act_dim);
  if (rc == 0) rc = check_finite(r, K_REW, d->reward, n, 1);
  if (rc == 0) rc = check_finite(r, K_COST, d->cost, n, 1);
  if (rc < 0) {
    srl_dataset_destroy(d);
    return rc;
  }

  // D4RL: warn about what was filled in
  d->has_costs = r->v[K_COST].present;
  if (!d->has_costs)
    fprintf(stderr, "saferl: warning: %s has no 'costs' (a D4RL file): every cost reads as 0\n",
            path);
  if (!r->v[K_TOUT].present)
    fprintf(stderr, "saferl: warning: %s has no 'timeouts': episodes end at terminals only\n",
            path);
  d->n = n;
  if (derive) {
    long long timeouts = 0;
    for (long long i = 0; i + 1 < n; i++) timeouts += d->timeout[i];
    d->n = derive_next_obs(d, n);
    fprintf(stderr,
            "saferl: warning: %s has no 'next_observations' (a D4RL file): derived from the next "
            "row; %lld timeout rows and the last row dropped\n",
            path, timeouts);
    if (d->n == 0) {
      srl_dataset_destroy(d);
      return srl_error(SRL_EFORMAT, "%s: no transitions left once timeout rows are dropped", path);
    }
  }
  snprintf(d->source, sizeof d->source, "%s", path);
  srl_dataset_index_tail(d, opt && opt->keep_tail);
  *out = d;
  return SRL_OK;
}


int srl_dataset_read(srl_dataset **out, const char *path, const srl_dataset_read_options *opt) {
  if (!out || !path || !path[0]) return srl_error(SRL_EINVAL, "srl_dataset_read: no path");
  *out = NULL;
  h5_quiet q;
  quiet_begin(&q);
  reader r = {.path = path, .file = -1, .fd = -1};
  for (int k = 0; k < N_KEYS; k++) r.v[k].ds = r.v[k].ftype = -1;
  int rc = read_file(&r, out, opt);
  reader_close(&r);
  quiet_end(&q);
  return rc;
}

//---- writing ----------------------------------------------------------------------------------

// a dataset of rank 1 or 2 in chunks of about CHUNK_BYTES, shuffled (values wider than a byte)
// and gzip-compressed
static int write_var(hid_t file, const char *key, hid_t ftype, hid_t mtype, int rank, long long n,
                     int dim, const void *data, char *h5msg, const char *path) {
  hsize_t dims[2] = {(hsize_t)n, (hsize_t)dim};
  size_t row = H5Tget_size(ftype) * (size_t)(rank == 2 ? dim : 1);
  hsize_t rows = (hsize_t)(CHUNK_BYTES / (row ? row : 1));
  if (rows < 1) rows = 1;
  if (rows > (hsize_t)n) rows = (hsize_t)n;
  hsize_t chunk[2] = {rows, (hsize_t)dim};
  hid_t space = H5Screate_simple(rank, dims, NULL);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  hid_t ds = -1;
  int ok = space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0 &&
           (H5Tget_size(ftype) == 1 || H5Pset_shuffle(dcpl) >= 0) &&
           H5Pset_deflate(dcpl, GZIP_LEVEL) >= 0;
  if (ok) ds = H5Dcreate2(file, key, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  ok = ok && ds >= 0 && H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
  if (ds >= 0) H5Dclose(ds);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (space >= 0) H5Sclose(space);
  if (!ok)
    return srl_error(SRL_EIO, "%s: writing '%s' failed (HDF5: %s)", path, key, h5_detail(h5msg));
  return SRL_OK;
}

// h5py's bool: an enum over int8 with FALSE = 0 and TRUE = 1
static hid_t bool_type(void) {
  hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
  int8_t f = 0, tr = 1;
  if (t < 0 || H5Tenum_insert(t, "FALSE", &f) < 0 || H5Tenum_insert(t, "TRUE", &tr) < 0) {
    if (t >= 0) H5Tclose(t);
    return -1;
  }
  return t;
}

static int write_file(const srl_dataset *d, const char *tmp, const char *path, char *h5msg) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  // the oldest format any HDF5 1.8 reader (and h5py) opens
  if (fapl >= 0) H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_LATEST);
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  if (fapl >= 0) H5Pclose(fapl);
  if (f < 0)
    return srl_error(SRL_EIO, "%s: cannot create %s (HDF5: %s)", path, tmp, h5_detail(h5msg));
  hid_t bt = bool_type();
  int rc = bt < 0 ? srl_error(SRL_EIO, "%s: cannot make the bool type", path) : SRL_OK;
  long long n = d->n;
  const hid_t F = H5T_IEEE_F32LE, M = H5T_NATIVE_FLOAT;
  if (rc == 0) rc = write_var(f, "observations", F, M, 2, n, d->obs_dim, d->obs, h5msg, path);
  if (rc == 0)
    rc = write_var(f, "next_observations", F, M, 2, n, d->obs_dim, d->next_obs, h5msg, path);
  if (rc == 0) rc = write_var(f, "actions", F, M, 2, n, d->act_dim, d->act, h5msg, path);
  if (rc == 0) rc = write_var(f, "rewards", F, M, 1, n, 1, d->reward, h5msg, path);
  if (rc == 0) rc = write_var(f, "costs", F, M, 1, n, 1, d->cost, h5msg, path);
  if (rc == 0) rc = write_var(f, "terminals", bt, bt, 1, n, 1, d->terminal, h5msg, path);
  if (rc == 0) rc = write_var(f, "timeouts", bt, bt, 1, n, 1, d->timeout, h5msg, path);
  if (bt >= 0) H5Tclose(bt);
  if (rc == 0 && H5Fflush(f, H5F_SCOPE_GLOBAL) < 0)
    rc = srl_error(SRL_EIO, "%s: flushing %s failed (HDF5: %s)", path, tmp, h5_detail(h5msg));
  if (H5Fclose(f) < 0 && rc == 0)
    rc = srl_error(SRL_EIO, "%s: closing %s failed (HDF5: %s)", path, tmp, h5_detail(h5msg));
  return rc;
}


int srl_dataset_write(const srl_dataset *d, const char *path) {
  if (!d || !path || !path[0]) return srl_error(SRL_EINVAL, "srl_dataset_write: no path");
  if (d->n < 1) return srl_error(SRL_EINVAL, "%s: the dataset holds no transitions", path);
  // the writer refuses what the reader would refuse
  const float *arrs[5] = {d->obs, d->next_obs, d->act, d->reward, d->cost};
  size_t lens[5] = {(size_t)d->n * (size_t)d->obs_dim, (size_t)d->n * (size_t)d->obs_dim,
                    (size_t)d->n * (size_t)d->act_dim, (size_t)d->n, (size_t)d->n};
  static const int keys[5] = {K_OBS, K_NEXT, K_ACT, K_REW, K_COST};
  int dims[5] = {d->obs_dim, d->obs_dim, d->act_dim, 1, 1};
  for (int a = 0; a < 5; a++)
    for (size_t i = 0; i < lens[a]; i++)
      if (!isfinite(arrs[a][i]))
        return srl_error(SRL_ENONFINITE, "%s: '%s' row %zu is not finite; nothing written", path,
                         key_names[keys[a]], i / (size_t)dims[a]);
  for (long long i = 0; i < d->n; i++)
    if (d->terminal[i] > 1 || d->timeout[i] > 1)
      return srl_error(SRL_EINVAL, "%s: row %lld: flags must be 0 or 1", path, i);

  size_t plen = strlen(path);
  char *tmp = malloc(plen + 32);
  if (!tmp) return srl_error(SRL_ENOMEM, "%s: no memory for a file name", path);
  snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
  char h5msg[256];
  h5_quiet q;
  quiet_begin(&q);
  int rc = write_file(d, tmp, path, h5msg);
  quiet_end(&q);

  // synced, renamed over path; a failure leaves any previous file as it was
  if (rc == 0) {
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
      rc = srl_error(SRL_EIO, "%s: syncing %s failed: %s", path, tmp, strerror(errno));
    if (fd >= 0) close(fd);
  }
  if (rc == 0 && rename(tmp, path) != 0)
    rc = srl_error(SRL_EIO, "%s: renaming %s failed: %s; the previous file is unchanged", path, tmp,
                   strerror(errno));
  if (rc < 0) remove(tmp);
  free(tmp);
  return rc;
}

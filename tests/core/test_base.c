// test_base.c: the base modules every other part stands on: error codes and messages, the abort
// handler, aligned allocation and the scratch arena, seeded random streams, and the stop request.
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/rng.h"
#include "test.h"


//---- errors -----------------------------------------------------------------------------------

TEST(error_sets_message_and_returns_code) {
  CHECK(strcmp(srl_errmsg(), "") == 0);  // RUN clears it
  int rc = srl_error(SRL_EINVAL, "batch %d exceeds capacity %d", 70, 64);
  CHECK_EQ_INT(rc, SRL_EINVAL);
  CHECK(strcmp(srl_errmsg(), "batch 70 exceeds capacity 64") == 0);
  srl_errclear();
  CHECK(strcmp(srl_errmsg(), "") == 0);

  // long messages are cut, not overflowed
  char big[4096];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  CHECK_EQ_INT(srl_error(SRL_EIO, "%s", big), SRL_EIO);
  size_t len = strlen(srl_errmsg());
  CHECK(len > 100 && len < sizeof big - 1);
}


TEST(error_context_prefixes) {
  srl_error(SRL_EFORMAT, "bad header");
  CHECK_EQ_INT(srl_error_context(SRL_EFORMAT, "loading %s: ", "ckpt.safetensors"), SRL_EFORMAT);
  CHECK(strcmp(srl_errmsg(), "loading ckpt.safetensors: bad header") == 0);
  CHECK_EQ_INT(srl_error_context(SRL_EFORMAT, "run %d: ", 3), SRL_EFORMAT);
  CHECK(strcmp(srl_errmsg(), "run 3: loading ckpt.safetensors: bad header") == 0);

  // with no message yet, the code's description stands in
  srl_errclear();
  srl_error_context(SRL_ENOMEM, "building net: ");
  CHECK(strcmp(srl_errmsg(), "building net: out of memory") == 0);
}


TEST(strerror_and_names) {
  static const int codes[] = {SRL_OK,      SRL_EINVAL,       SRL_ENOMEM,      SRL_EIO,
                              SRL_EFORMAT, SRL_ECONFIG,      SRL_ENODEV,      SRL_ENOTFOUND,
                              SRL_ERANGE,  SRL_ENONFINITE,   SRL_ETIMEOUT,    SRL_ESTATE,
                              SRL_ECUDA,   SRL_EUNSUPPORTED, SRL_EINTERRUPTED};
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++) {
    const char *d = srl_strerror(codes[i]), *name = srl_errname(codes[i]);
    CHECK(d && d[0] && strcmp(d, "unknown error") != 0);
    CHECK(name && strncmp(name, "SRL_", 4) == 0 && strcmp(name, "SRL_E?") != 0);
    // descriptions and names are distinct across codes
    for (size_t j = 0; j < i; j++) {
      CHECK(strcmp(d, srl_strerror(codes[j])) != 0);
      CHECK(strcmp(name, srl_errname(codes[j])) != 0);
    }
  }
  CHECK(strcmp(srl_strerror(SRL_OK), "success") == 0);
  CHECK(strcmp(srl_strerror(SRL_EINVAL), "invalid argument") == 0);
  CHECK(strcmp(srl_errname(SRL_ENODEV), "SRL_ENODEV") == 0);
  CHECK(strcmp(srl_errname(SRL_EUNSUPPORTED), "SRL_EUNSUPPORTED") == 0);
  CHECK(strcmp(srl_strerror(-999), "unknown error") == 0);
  CHECK(strcmp(srl_strerror(5), "unknown error") == 0);
  CHECK(strcmp(srl_errname(-999), "SRL_E?") == 0);
  CHECK_EQ_INT(SRL_OK, 0);
  for (size_t i = 1; i < n; i++) CHECK(codes[i] < 0);
}


static void *set_error_in_thread(void *arg) {
  srl_error(SRL_EIO, "from the worker");
  *(int *)arg = strcmp(srl_errmsg(), "from the worker") == 0;
  return NULL;
}


TEST(error_message_is_per_thread) {
  srl_error(SRL_EINVAL, "from main");
  int worker_saw_own = 0;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, set_error_in_thread, &worker_saw_own) == 0);
  pthread_join(t, NULL);
  CHECK(worker_saw_own);
  CHECK(strcmp(srl_errmsg(), "from main") == 0);
}


static int try_chain(int first, int *reached) {
  SRL_TRY(first);
  *reached = 1;
  return SRL_OK;
}


TEST(try_returns_early) {
  int reached = 0;
  CHECK_EQ_INT(try_chain(SRL_ENOTFOUND, &reached), SRL_ENOTFOUND);
  CHECK_EQ_INT(reached, 0);
  CHECK_EQ_INT(try_chain(SRL_OK, &reached), SRL_OK);
  CHECK_EQ_INT(reached, 1);
}


//---- abort handler ----------------------------------------------------------------------------

static jmp_buf abort_jump;
static char abort_msg[256];
static char abort_file[256];
static int abort_line;

static void trapping_handler(const char *file, int line, const char *msg) {
  snprintf(abort_msg, sizeof abort_msg, "%s", msg);
  snprintf(abort_file, sizeof abort_file, "%s", file);
  abort_line = line;
  longjmp(abort_jump, 1);
}


TEST(abort_handler_replaceable) {
  srl_abort_handler old = srl_set_abort_handler(trapping_handler);
  CHECK(old != NULL);
  volatile int trapped = 0, after = 0, expected_line = 0;
  if (setjmp(abort_jump) == 0) {
    int broken = 1;
    expected_line = __LINE__ + 1;
    SRL_ASSERT(broken == 0);
    after = 1;  // never reached: the handler jumped out
  } else {
    trapped = 1;
  }
  CHECK(trapped);
  CHECK(!after);
  CHECK(strstr(abort_msg, "broken == 0") != NULL);
  CHECK(strstr(abort_file, "test_base.c") != NULL);
  CHECK_EQ_INT(abort_line, expected_line);

  // a passing assertion calls nothing
  abort_msg[0] = '\0';
  SRL_ASSERT(1 + 1 == 2);
  CHECK(abort_msg[0] == '\0');

  // SRL_ABORT formats its message
  trapped = 0;
  if (setjmp(abort_jump) == 0)
    SRL_ABORT("layer %d has %s", 3, "no weights");
  else
    trapped = 1;
  CHECK(trapped);
  CHECK(strcmp(abort_msg, "layer 3 has no weights") == 0);

  // set returns the previous handler; NULL restores the default
  CHECK(srl_set_abort_handler(NULL) == trapping_handler);
  CHECK(srl_set_abort_handler(old) == old);  // the default came back
  CHECK(srl_set_abort_handler(NULL) == old);
}


//---- allocation -------------------------------------------------------------------------------

TEST(malloc_alignment_and_zeroing) {
  static const size_t sizes[] = {0, 1, 3, 63, 64, 65, 1000, 1 << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *p = srl_malloc(sizes[i]);
    CHECK(p != NULL);
    CHECK_EQ_INT((uintptr_t)p % SRL_ALIGN, 0);
    if (sizes[i]) memset(p, 0xab, sizes[i]);  // writable over its whole size
    srl_free(p);
    unsigned char *z = srl_calloc(sizes[i]);
    CHECK(z != NULL);
    CHECK_EQ_INT((uintptr_t)z % SRL_ALIGN, 0);
    size_t nonzero = 0;
    for (size_t j = 0; j < sizes[i]; j++) nonzero += z[j] != 0;
    CHECK_EQ_INT(nonzero, 0);
    srl_free(z);
  }
  srl_free(NULL);
  CHECK_EQ_INT(SRL_ALIGN, 64);
}


static int hook_mallocs, hook_frees;
static size_t hook_align;

static void *counting_malloc(size_t bytes, size_t align) {
  hook_mallocs++;
  hook_align = align;
  void *p = NULL;
  return posix_memalign(&p, align, bytes ? bytes : align) == 0 ? p : NULL;
}
static void counting_free(void *p) {
  hook_frees++;
  free(p);
}
static void *failing_malloc(size_t bytes, size_t align) {
  return NULL;
}


TEST(allocator_hook) {
  srl_set_allocator(counting_malloc, counting_free);
  void *p = srl_malloc(100), *q = srl_calloc(50);
  srl_free(p);
  srl_free(q);
  srl_free(NULL);  // never reaches the hook
  CHECK_EQ_INT(hook_mallocs, 2);
  CHECK_EQ_INT(hook_frees, 2);
  CHECK_EQ_INT(hook_align, SRL_ALIGN);

  // a failing allocator gives NULL and a message, never a crash
  srl_set_allocator(failing_malloc, NULL);
  srl_errclear();
  CHECK(srl_malloc(1234) == NULL);
  CHECK_ERRMSG("1234");
  CHECK_ERRMSG("out of memory");
  CHECK(srl_calloc(10) == NULL);
  srl_arena a;
  CHECK_ERR(srl_arena_init(&a, 4096), SRL_ENOMEM);
  CHECK(a.base == NULL && a.size == 0);
  srl_arena_free(&a);

  // both NULL restores the default
  srl_set_allocator(NULL, NULL);
  hook_mallocs = 0;
  p = srl_malloc(8);
  CHECK(p != NULL);
  CHECK_EQ_INT(hook_mallocs, 0);
  srl_free(p);
}


TEST(layout_helpers) {
  CHECK_EQ_INT(srl_align_up(0, 64), 0);
  CHECK_EQ_INT(srl_align_up(1, 64), 64);
  CHECK_EQ_INT(srl_align_up(64, 64), 64);
  CHECK_EQ_INT(srl_align_up(65, 64), 128);
  CHECK_EQ_INT(srl_align_up(5, 4), 8);
  size_t total = 0;
  size_t a = srl_layout_add(&total, 10), b = srl_layout_add(&total, 100),
         c = srl_layout_add(&total, 64);
  CHECK_EQ_INT(a, 0);
  CHECK_EQ_INT(b, 64);
  CHECK_EQ_INT(c, 192);
  CHECK_EQ_INT(total, 256);
}


TEST(arena_mark_alloc_release_peak) {
  srl_arena a;
  CHECK_OK(srl_arena_init(&a, 1024));
  CHECK(a.base != NULL);
  CHECK_EQ_INT(a.size, 1024);
  CHECK_EQ_INT(a.used, 0);
  CHECK_EQ_INT(a.peak, 0);

  size_t m0 = srl_arena_mark(&a);
  char *p = srl_arena_alloc(&a, 10);
  char *q = srl_arena_alloc(&a, 100);
  CHECK(p && q);
  CHECK_EQ_INT((uintptr_t)p % SRL_ALIGN, 0);
  CHECK_EQ_INT((uintptr_t)q % SRL_ALIGN, 0);
  CHECK(q >= p + 10);
  CHECK_EQ_INT(a.used, 164);
  memset(p, 1, 10);
  memset(q, 2, 100);

  // release to a mark, then allocate again from the same place
  size_t m1 = srl_arena_mark(&a);
  char *r = srl_arena_alloc(&a, 500);
  CHECK(r != NULL);
  CHECK_EQ_INT(a.used, 192 + 500);
  CHECK_EQ_INT(a.peak, 692);
  srl_arena_release(&a, m1);
  CHECK_EQ_INT(a.used, 164);
  char *r2 = srl_arena_alloc(&a, 16);
  CHECK(r2 == r);
  CHECK_EQ_INT(a.peak, 692);       // the peak remembers the high-water mark
  CHECK(p[9] == 1 && q[99] == 2);  // earlier scratch is untouched
  srl_arena_release(&a, m0);
  CHECK_EQ_INT(a.used, 0);
  CHECK(srl_arena_alloc(&a, 64) == a.base);

  // exhaustion: NULL with a message, and the arena stays usable
  srl_arena_release(&a, m0);
  srl_errclear();
  CHECK(srl_arena_alloc(&a, 960) != NULL);
  CHECK(srl_arena_alloc(&a, 100) == NULL);
  CHECK_ERRMSG("arena exhausted");
  CHECK_EQ_INT(a.used, 960);
  CHECK(srl_arena_alloc(&a, 64) != NULL);  // 1024 exactly: still fits
  CHECK(srl_arena_alloc(&a, 1) == NULL);
  CHECK_EQ_INT(a.peak, 1024);

  srl_arena_free(&a);
  CHECK(a.base == NULL && a.size == 0);
  srl_arena_free(&a);  // twice is harmless
  srl_arena_free(NULL);
}


//---- random streams ---------------------------------------------------------------------------

TEST(rng_same_seed_same_sequence) {
  srl_rng *a, *b, *c, *d;
  CHECK_OK(srl_rng_create(&a, 42, 0));
  CHECK_OK(srl_rng_create(&b, 42, 0));
  CHECK_OK(srl_rng_create(&c, 42, 1));
  CHECK_OK(srl_rng_create(&d, 43, 0));
  int same_ab = 0, same_ac = 0, same_ad = 0;
  for (int i = 0; i < 1000; i++) {
    uint32_t x = srl_rng_u32(a), y = srl_rng_u32(b), z = srl_rng_u32(c), w = srl_rng_u32(d);
    same_ab += x == y;
    same_ac += x == z;
    same_ad += x == w;
  }
  CHECK_EQ_INT(same_ab, 1000);
  CHECK(same_ac < 5);
  CHECK(same_ad < 5);

  // every draw kind follows the seed
  float fa[64], fb[64];
  srl_rng_seed(a, 7, 3);
  srl_rng_seed(b, 7, 3);
  srl_rng_fill_normal(a, fa, 64, 1, 2);
  srl_rng_fill_normal(b, fb, 64, 1, 2);
  CHECK(memcmp(fa, fb, sizeof fa) == 0);
  srl_rng_fill_uniform(a, fa, 64, -3, 3);
  srl_rng_fill_uniform(b, fb, 64, -3, 3);
  CHECK(memcmp(fa, fb, sizeof fa) == 0);
  CHECK(srl_rng_normal(a) == srl_rng_normal(b));
  CHECK(srl_rng_uniform(a) == srl_rng_uniform(b));
  CHECK(srl_rng_int(a, 1000) == srl_rng_int(b, 1000));

  // re-seeding restarts the sequence
  srl_rng_seed(a, 42, 0);
  srl_rng_seed(c, 42, 0);
  uint32_t first = srl_rng_u32(a);
  CHECK(first == srl_rng_u32(c));
  srl_rng *e;
  CHECK_OK(srl_rng_create(&e, 42, 0));
  CHECK(srl_rng_u32(e) == first);

  srl_rng_destroy(a);
  srl_rng_destroy(b);
  srl_rng_destroy(c);
  srl_rng_destroy(d);
  srl_rng_destroy(e);
  srl_rng_destroy(NULL);
}


TEST(rng_neighbouring_streams_differ) {
  // streams 0..15 of one seed: first draws all distinct
  uint32_t first[16];
  for (int s = 0; s < 16; s++) {
    srl_rng *r;
    CHECK_OK(srl_rng_create(&r, 1, (uint64_t)s));
    first[s] = srl_rng_u32(r);
    srl_rng_destroy(r);
  }
  int dup = 0;
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < i; j++) dup += first[i] == first[j];
  CHECK_EQ_INT(dup, 0);
}


TEST(rng_state_save_load) {
  srl_rng *a, *b;
  CHECK_OK(srl_rng_create(&a, 99, 5));
  CHECK_OK(srl_rng_create(&b, 0, 0));
  for (int i = 0; i < 777; i++) srl_rng_u32(a);
  size_t size = srl_rng_state_size(a);
  CHECK(size > 0);
  void *buf = malloc(size);
  srl_rng_state_save(a, buf);

  double want[100], got[100];
  for (int i = 0; i < 100; i++) want[i] = i % 2 ? srl_rng_normal(a) : srl_rng_uniform(a);
  CHECK_OK(srl_rng_state_load(b, buf, size));
  for (int i = 0; i < 100; i++) got[i] = i % 2 ? srl_rng_normal(b) : srl_rng_uniform(b);
  CHECK(memcmp(want, got, sizeof want) == 0);

  // loading into the saved stream itself rewinds it
  CHECK_OK(srl_rng_state_load(a, buf, size));
  for (int i = 0; i < 100; i++) got[i] = i % 2 ? srl_rng_normal(a) : srl_rng_uniform(a);
  CHECK(memcmp(want, got, sizeof want) == 0);

  // a state of the wrong size is refused and the stream goes on unchanged
  srl_rng_state_load(b, buf, size);
  srl_rng_state_load(a, buf, size);
  srl_rng_u32(a), srl_rng_u32(b);
  CHECK_ERR(srl_rng_state_load(a, buf, size - 1), SRL_EFORMAT);
  CHECK_ERRMSG("state");
  CHECK(srl_rng_u32(a) == srl_rng_u32(b));
  free(buf);
  srl_rng_destroy(a);
  srl_rng_destroy(b);
}


TEST(rng_shuffle_is_permutation) {
  enum { N = 1000 };
  srl_rng *r;
  CHECK_OK(srl_rng_create(&r, 3, 0));
  int idx[N], seen[N] = {0};
  for (int i = 0; i < N; i++) idx[i] = i;
  srl_rng_shuffle(r, idx, N);
  int in_place = 0;
  for (int i = 0; i < N; i++) {
    CHECK(idx[i] >= 0 && idx[i] < N);
    if (idx[i] >= 0 && idx[i] < N) seen[idx[i]]++;
    in_place += idx[i] == i;
  }
  int missing = 0;
  for (int i = 0; i < N; i++) missing += seen[i] != 1;
  CHECK_EQ_INT(missing, 0);
  CHECK(in_place < 10);  // a random permutation fixes about one point

  // every position is equally likely: first element of a 4-shuffle over many trials
  int count[4] = {0};
  for (int t = 0; t < 40000; t++) {
    int s[4] = {0, 1, 2, 3};
    srl_rng_shuffle(r, s, 4);
    count[s[0]]++;
  }
  for (int i = 0; i < 4; i++) CHECK_CLOSE(count[i], 10000, 400, 0);

  srl_rng_shuffle(r, idx, 0);  // empty and single are fine
  srl_rng_shuffle(r, idx, 1);
  srl_rng_destroy(r);
}


TEST(rng_distributions) {
  enum { N = 100000 };
  srl_rng *r;
  CHECK_OK(srl_rng_create(&r, 2024, 7));
  float *x = malloc(N * sizeof(float));
  srl_rng_fill_normal(r, x, N, 0, 1);
  double s = 0, ss = 0, s4 = 0;
  for (int i = 0; i < N; i++) s += x[i];
  double mean = s / N;
  for (int i = 0; i < N; i++) {
    double d = x[i] - mean;
    ss += d * d;
    s4 += d * d * d * d;
  }
  double var = ss / (N - 1);
  CHECK_CLOSE(mean, 0, 0.015, 0);  // 1/√N ≈ 0.003
  CHECK_CLOSE(sqrt(var), 1, 0.01, 0);
  CHECK_CLOSE(s4 / N / (var * var), 3, 0.1, 0);  // gaussian kurtosis

  // mean and std of a shifted, scaled fill
  srl_rng_fill_normal(r, x, N, -2, 0.5f);
  s = ss = 0;
  for (int i = 0; i < N; i++) s += x[i], ss += (double)x[i] * x[i];
  CHECK_CLOSE(s / N, -2, 0.01, 0);
  CHECK_CLOSE(sqrt(ss / N - (s / N) * (s / N)), 0.5, 0.01, 0);

  // uniform draws stay in range, with the right mean
  srl_rng_fill_uniform(r, x, N, -1, 3);
  int out = 0;
  s = 0;
  for (int i = 0; i < N; i++) out += x[i] < -1 || x[i] >= 3, s += x[i];
  CHECK_EQ_INT(out, 0);
  CHECK_CLOSE(s / N, 1, 0.02, 0);
  int out2 = 0;
  for (int i = 0; i < 10000; i++) {
    double u = srl_rng_uniform(r), v = srl_rng_uniform_range(r, 5, 6);
    out2 += u < 0 || u >= 1 || v < 5 || v >= 6;
    unsigned long k = srl_rng_int(r, 7);
    out2 += k >= 7;
  }
  CHECK_EQ_INT(out2, 0);
  free(x);
  srl_rng_destroy(r);
}


TEST(hash_uniform_counter_based) {
  // deterministic, in [0, 1), spread evenly, different per seed
  int out = 0, same = 0;
  double s = 0;
  for (uint64_t i = 0; i < 100000; i++) {
    float u = srl_hash_uniform(11, i);
    out += u < 0 || u >= 1;
    s += u;
    same += u == srl_hash_uniform(12, i);
    CHECK(u == srl_hash_uniform(11, i));
  }
  CHECK_EQ_INT(out, 0);
  CHECK_CLOSE(s / 100000, 0.5, 0.005, 0);
  CHECK(same < 50);  // 24-bit values: equal by chance about 1 in 16M
  CHECK(srl_hash64(0) != srl_hash64(1));
}


//---- interruption -------------------------------------------------------------------------------

// `timeout` signals its child and then its process group: the child sees SIGINT twice at once,
// which must stay one stop request rather than kill it before it saves
TEST(interrupt_repeat_is_one_request) {
  CHECK_OK(srl_interrupt_install());
  CHECK_EQ_INT(srl_interrupt_signal(), 0);
  raise(SIGINT);
  raise(SIGINT);
  raise(SIGTERM);
  CHECK_EQ_INT(srl_interrupt_signal(), SIGINT);
  CHECK_OK(srl_interrupt_install());  // clears the request
  CHECK_EQ_INT(srl_interrupt_signal(), 0);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
}

// a second Ctrl-C more than a second later ends a process that did not stop
TEST(interrupt_later_signal_acts_as_usual) {
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    if (srl_interrupt_install() != 0) _exit(2);
    raise(SIGINT);
    if (srl_interrupt_signal() != SIGINT) _exit(3);
    struct timespec pause = {1, 200000000};
    nanosleep(&pause, NULL);
    raise(SIGINT);
    _exit(0);  // not reached: the second SIGINT ends the process
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT);
}

int main(void) {
  RUN(error_sets_message_and_returns_code);
  RUN(error_context_prefixes);
  RUN(strerror_and_names);
  RUN(error_message_is_per_thread);
  RUN(try_returns_early);
  RUN(abort_handler_replaceable);
  RUN(malloc_alignment_and_zeroing);
  RUN(allocator_hook);
  RUN(layout_helpers);
  RUN(arena_mark_alloc_release_peak);
  RUN(rng_same_seed_same_sequence);
  RUN(rng_neighbouring_streams_differ);
  RUN(rng_state_save_load);
  RUN(rng_shuffle_is_permutation);
  RUN(rng_distributions);
  RUN(hash_uniform_counter_based);
  RUN(interrupt_repeat_is_one_request);
  RUN(interrupt_later_signal_acts_as_usual);
  return TEST_REPORT();
}

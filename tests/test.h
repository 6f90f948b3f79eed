// test.h: the test harness. Each test program is a list of TEST functions run from main();
// a failed check prints the expression, file:line and values, the test continues to its end,
// and the program exits nonzero. The last line is "N passed, M failed".
#ifndef SRL_TEST_H
#define SRL_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static int srl_test_failures_;  // checks failed in the current test
static int srl_test_passed_, srl_test_failed_, srl_test_skipped_;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      srl_test_failures_++;                                                      \
    }                                                                            \
  } while (0)

// a library call that must succeed; prints the status and srl_errmsg() otherwise
#define CHECK_OK(expr)                                                            \
  do {                                                                            \
    int rc_ = (expr);                                                             \
    if (rc_ != 0) {                                                               \
      fprintf(stderr, "  %s:%d: %s returned %s: %s\n", __FILE__, __LINE__, #expr, \
              srl_errname(rc_), srl_errmsg());                                    \
      srl_test_failures_++;                                                       \
    }                                                                             \
  } while (0)

// a library call that must fail with a given status
#define CHECK_ERR(expr, code)                                                                   \
  do {                                                                                          \
    int rc_ = (expr);                                                                           \
    if (rc_ != (code)) {                                                                        \
      fprintf(stderr, "  %s:%d: %s returned %s, expected %s (%s)\n", __FILE__, __LINE__, #expr, \
              srl_errname(rc_), srl_errname(code), srl_errmsg());                               \
      srl_test_failures_++;                                                                     \
    }                                                                                           \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                                        \
  do {                                                                                            \
    long long a_ = (long long)(a), b_ = (long long)(b);                                           \
    if (a_ != b_) {                                                                               \
      fprintf(stderr, "  %s:%d: %s == %s failed: %lld vs %lld\n", __FILE__, __LINE__, #a, #b, a_, \
              b_);                                                                                \
      srl_test_failures_++;                                                                       \
    }                                                                                             \
  } while (0)

// |a − b| ≤ atol + rtol·|b|
#define CHECK_CLOSE(a, b, atol, rtol)                                                            \
  do {                                                                                           \
    double a_ = (double)(a), b_ = (double)(b);                                                   \
    if (!(fabs(a_ - b_) <= (atol) + (rtol)*fabs(b_))) {                                          \
      fprintf(stderr, "  %s:%d: %s ≈ %s failed: %.9g vs %.9g (diff %.3g)\n", __FILE__, __LINE__, \
              #a, #b, a_, b_, fabs(a_ - b_));                                                    \
      srl_test_failures_++;                                                                      \
    }                                                                                            \
  } while (0)

// the message of the last error contains a substring
#define CHECK_ERRMSG(substr)                                                              \
  do {                                                                                    \
    if (!strstr(srl_errmsg(), (substr))) {                                                \
      fprintf(stderr, "  %s:%d: error message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, \
              srl_errmsg(), (substr));                                                    \
      srl_test_failures_++;                                                               \
    }                                                                                     \
  } while (0)

#define TEST(name) static void name(void)

#define RUN(name)                 \
  do {                            \
    srl_test_failures_ = 0;       \
    srl_errclear();               \
    name();                       \
    if (srl_test_failures_) {     \
      srl_test_failed_++;         \
      printf("FAIL %s\n", #name); \
    } else {                      \
      srl_test_passed_++;         \
      printf("ok   %s\n", #name); \
    }                             \
    fflush(stdout);               \
  } while (0)

// skip the rest of a test, saying why (e.g. no GPU)
#define SKIP(why)                                 \
  do {                                            \
    printf("skip %s: %s\n", __func__, (why));     \
    srl_test_skipped_++;                          \
    srl_test_passed_--; /* RUN counts it; undo */ \
    return;                                       \
  } while (0)

#define TEST_REPORT()                                                                   \
  (printf("%d passed, %d failed, %d skipped\n", srl_test_passed_ + 0, srl_test_failed_, \
          srl_test_skipped_),                                                           \
   srl_test_failed_ ? 1 : 0)

// normalised mean squared error Σ(a−b)²/Σb², the CUDA-vs-CPU measure (ggml's)
static inline double srl_test_nmse(const float *a, const float *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    den += (double)b[i] * b[i];
  }
  return den > 0 ? num / den : num;
}

#endif  // SRL_TEST_H

// fuzz_safetensors.c: libFuzzer target for the safetensors reader. Any input must either be
// refused with a message (and no object) or yield a file whose every tensor lies within the
// input, converts to float32, and is found again by name, as is every metadata key.
//   CC=clang cmake -S . -B build-fuzz -G Ninja -DSRL_FUZZ=ON && cmake --build build-fuzz
//   ./build-fuzz/bin/fuzz_safetensors -max_total_time=60 tests/fuzz/corpus_safetensors
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/safetensors.h"

static float scratch[1 << 16];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  srl_st_file *f = NULL;
  if (srl_st_open_memory(&f, data, size, "fuzz") < 0) {
    if (f || !srl_errmsg()[0]) abort();  // refusals leave nothing behind and say why
    return 0;
  }
  // every tensor: its bytes are touched, converted when small, and found by name
  size_t total = 0;
  for (int i = 0; i < srl_st_count(f); i++) {
    const srl_st_tensor *t = srl_st_get(f, i);
    if (!t->name[0] || srl_st_find(f, t->name) != t) abort();
    if (t->nbytes != srl_st_numel(t) * srl_st_dtype_size(t->dtype)) abort();
    const volatile uint8_t *b = t->data;
    for (size_t j = 0; j < t->nbytes; j++) total += b[j];
    size_t n = srl_st_numel(t);
    if (n <= sizeof scratch / sizeof scratch[0] && srl_st_read_f32(f, t->name, scratch, n) < 0)
      abort();
  }
  for (int i = 0; i < srl_st_metadata_count(f); i++) {
    const char *k, *v;
    if (srl_st_metadata_at(f, i, &k, &v) < 0 || srl_st_metadata(f, k) != v) abort();
  }
  (void)total;
  srl_st_close(f);
  return 0;
}

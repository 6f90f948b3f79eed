// tool_st_write.c: write a fixed set of tensors, of every dtype, for the Python cross-check
// (tests/core/test_safetensors_py.py computes the same values independently and parses the file
// with struct, json, numpy and torch).
//
//   f32.values     F32  [4, 8]   the 32 float32 values of st_values() below
//   f16.values     F16  [32]     the same values narrowed with srl_st_f32_to_f16
//   bf16.values    BF16 [4, 8]   the same values narrowed with srl_st_f32_to_bf16
//   i64.ramp       I64  [3, 2]   i * 1000000000007 - 3
//   i32.edges      I32  [4]      INT32_MIN, -1, 0, INT32_MAX
//   u8.ramp        U8   [2,3,2]  (i * 21) mod 256
//   bool.mask      BOOL [5]      i even
//   scalar         F32  []       3.25
//   empty          F32  [0, 3]
//   "ünïcode.w"    F32  [1]      -7.5
// metadata: format=pt, algo=ppo_lag, note="line1\nline2 \"quoted\" ✓\ttab"
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/safetensors.h"

#define NV 32

// special float32 bit patterns (ties, overflow, subnormals, infinities, nan), then (i*37%101-50)/8
static void st_values(float *v) {
  static const uint32_t special[] = {
      0x00000000, 0x80000000, 0x3f800000, 0x3f801000, 0x3f803000, 0x3f808000, 0x3f818000,
      0x477ff000, 0x477fe000, 0x477fefff, 0x33800000, 0x33000000, 0x33c00000, 0x7f7fffff,
      0x00000001, 0x7f800000, 0xff800000, 0x7fc00000, 0x387fc000, 0x38800000, 0xc0490fdb};
  int ns = (int)(sizeof special / sizeof special[0]);
  for (int i = 0; i < NV; i++) {
    if (i < ns)
      memcpy(&v[i], &special[i], 4);
    else
      v[i] = (float)(i * 37 % 101 - 50) / 8.0f;
  }
}


int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUT.safetensors\n", argv[0]);
    return 2;
  }
  float v[NV], scalar = 3.25f, uni = -7.5f;
  uint16_t h[NV], b[NV];
  int64_t i64[6];
  int32_t i32[4] = {INT32_MIN, -1, 0, INT32_MAX};
  uint8_t u8[12], mask[5];
  st_values(v);
  for (int i = 0; i < NV; i++) {
    h[i] = srl_st_f32_to_f16(v[i]);
    b[i] = srl_st_f32_to_bf16(v[i]);
  }
  for (int i = 0; i < 6; i++) i64[i] = (int64_t)i * 1000000000007LL - 3;
  for (int i = 0; i < 12; i++) u8[i] = (uint8_t)(i * 21 % 256);
  for (int i = 0; i < 5; i++) mask[i] = i % 2 == 0;
  int64_t s48[2] = {4, 8}, s32[1] = {NV}, s32x[2] = {3, 2}, s4[1] = {4}, s232[3] = {2, 3, 2};
  int64_t s5[1] = {5}, s03[2] = {0, 3};

  srl_st_writer *w = NULL;
  int rc = srl_st_writer_create(&w);
  if (!rc) rc = srl_st_add(w, "f32.values", SRL_DTYPE_F32, 2, s48, v);
  if (!rc) rc = srl_st_add(w, "f16.values", SRL_DTYPE_F16, 1, s32, h);
  if (!rc) rc = srl_st_add(w, "bf16.values", SRL_DTYPE_BF16, 2, s48, b);
  if (!rc) rc = srl_st_add(w, "i64.ramp", SRL_DTYPE_I64, 2, s32x, i64);
  if (!rc) rc = srl_st_add(w, "i32.edges", SRL_DTYPE_I32, 1, s4, i32);
  if (!rc) rc = srl_st_add(w, "u8.ramp", SRL_DTYPE_U8, 3, s232, u8);
  if (!rc) rc = srl_st_add(w, "bool.mask", SRL_DTYPE_BOOL, 1, s5, mask);
  if (!rc) rc = srl_st_add_f32(w, "scalar", &scalar, 0);
  if (!rc) rc = srl_st_add(w, "empty", SRL_DTYPE_F32, 2, s03, NULL);
  if (!rc) rc = srl_st_add_f32(w, "\303\274n\303\257code.w", &uni, 1, 1);
  if (!rc) rc = srl_st_set_metadata(w, "format", "pt");
  if (!rc) rc = srl_st_set_metadata(w, "algo", "ppo_lag");
  if (!rc) rc = srl_st_set_metadata(w, "note", "line1\nline2 \"quoted\" \xe2\x9c\x93\ttab");
  if (!rc) rc = srl_st_write(w, argv[1]);
  srl_st_writer_destroy(w);
  if (rc < 0) {
    fprintf(stderr, "error\t%s\t%s\n", srl_errname(rc), srl_errmsg());
    return 1;
  }
  return 0;
}

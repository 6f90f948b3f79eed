// test_safetensors.c: safetensors round trips, exact half-precision conversions, refusal of
// malformed files with messages that name the file, tensor and problem, and atomic writes that
// leave the previous file intact when anything fails.
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/safetensors.h"
#include "test.h"

static char dir[64];  // scratch directory under the working (build) directory


//---- helpers ----------------------------------------------------------------------------------

static uint32_t f32_bits(float x) {
  uint32_t b;
  memcpy(&b, &x, 4);
  return b;
}


static float bits_f32(uint32_t b) {
  float x;
  memcpy(&x, &b, 4);
  return x;
}


// a file from header text and a data buffer of data_len bytes (bytes i*7+1)
static unsigned char *make_file(const char *json, size_t data_len, size_t *size) {
  size_t n = strlen(json);
  unsigned char *b = malloc(8 + n + data_len);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)n >> (8 * i));
  memcpy(b + 8, json, n);
  for (size_t i = 0; i < data_len; i++) b[8 + n + i] = (unsigned char)(i * 7 + 1);
  *size = 8 + n + data_len;
  return b;
}


static int open_json(const char *json, size_t data_len, srl_st_file **f) {
  size_t size;
  unsigned char *b = make_file(json, data_len, &size);
  *f = (srl_st_file *)1;  // must be reset to NULL on failure
  int rc = srl_st_open_memory(f, b, size, "bad.safetensors");
  free(b);
  return rc;
}


static unsigned char *read_whole(const char *path, size_t *size) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  unsigned char *b = malloc(n ? (size_t)n : 1);
  if (fread(b, 1, (size_t)n, fp) != (size_t)n) n = 0;
  fclose(fp);
  *size = (size_t)n;
  return b;
}


static void write_whole(const char *path, const void *b, size_t n) {
  FILE *fp = fopen(path, "wb");
  fwrite(b, 1, n, fp);
  fclose(fp);
}


static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}


static uint64_t le64(const unsigned char *b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
  return v;
}


//---- round trip -------------------------------------------------------------------------------

TEST(roundtrip_every_dtype) {
  float f32[6] = {1.5f, -2.25f, 0.0f, 3e-40f, 1e30f, -0.0f};
  uint16_t f16[4] = {0x3c00, 0xc000, 0x0001, 0x7bff};   // 1, -2, 2^-24, 65504
  uint16_t bf16[4] = {0x3f80, 0xc2f7, 0x0001, 0x7f7f};  // 1, -123.5, tiny, ~3.39e38
  int64_t i64[3] = {-5, 1LL << 40, 7};
  int32_t i32[2] = {-100000, 42};
  uint8_t u8[5] = {0, 1, 127, 200, 255};
  uint8_t bools[3] = {1, 0, 1};
  float scalar = 6.5f;
  int64_t s23[2] = {2, 3}, s4[1] = {4}, s22[2] = {2, 2}, s3[1] = {3}, s21[2] = {2, 1};
  int64_t s5[1] = {5}, s04[2] = {0, 4};
  // a name with a quote, a backslash, control characters, ñ and ✓
  const char *weird = "we\"ird\\name\n\x01 \xc3\xb1\xe2\x9c\x93";

  srl_st_writer *w = NULL;
  CHECK_OK(srl_st_writer_create(&w));
  CHECK_OK(srl_st_add(w, "actor.w", SRL_DTYPE_F32, 2, s23, f32));
  CHECK_OK(srl_st_add(w, "half", SRL_DTYPE_F16, 1, s4, f16));
  CHECK_OK(srl_st_add(w, "brain", SRL_DTYPE_BF16, 2, s22, bf16));
  CHECK_OK(srl_st_add(w, "steps", SRL_DTYPE_I64, 1, s3, i64));
  CHECK_OK(srl_st_add(w, "ints", SRL_DTYPE_I32, 2, s21, i32));
  CHECK_OK(srl_st_add(w, "bytes", SRL_DTYPE_U8, 1, s5, u8));
  CHECK_OK(srl_st_add(w, "mask", SRL_DTYPE_BOOL, 1, s3, bools));
  CHECK_OK(srl_st_add_f32(w, "scalar", &scalar, 0));
  CHECK_OK(srl_st_add(w, "empty", SRL_DTYPE_F32, 2, s04, NULL));
  CHECK_OK(srl_st_add(w, weird, SRL_DTYPE_U8, 1, s3, u8));
  CHECK_OK(srl_st_set_metadata(w, "algo", "ppo_lag"));
  CHECK_OK(srl_st_set_metadata(w, "step", "1"));
  CHECK_OK(srl_st_set_metadata(w, "step", "1000"));  // replaced
  CHECK_OK(srl_st_set_metadata(w, "config", "a: 1\nb: \"x\"\tc\\d \xe2\x9c\x93"));
  char path[128];
  snprintf(path, sizeof path, "%s/all.safetensors", dir);
  CHECK_OK(srl_st_write(w, path));
  srl_st_writer_destroy(w);

  // the file's layout, checked on the raw bytes
  size_t size;
  unsigned char *raw = read_whole(path, &size);
  CHECK(raw && size > 8);
  uint64_t n = le64(raw);
  CHECK_EQ_INT(n % 8, 0);
  CHECK(raw[8] == '{');
  size_t data_len = 24 + 8 + 8 + 24 + 8 + 5 + 3 + 4 + 0 + 3;
  CHECK_EQ_INT(size, 8 + n + data_len);

  srl_st_file *f = NULL;
  CHECK_OK(srl_st_open(&f, path));
  CHECK_EQ_INT(srl_st_count(f), 10);
  // ordered by name, bytes unchanged, every tensor aligned to its dtype within the file
  for (int i = 1; i < srl_st_count(f); i++)
    CHECK(strcmp(srl_st_get(f, i - 1)->name, srl_st_get(f, i)->name) < 0);
  CHECK(srl_st_get(f, 10) == NULL && srl_st_get(f, -1) == NULL);
  const unsigned char *buf0 = NULL;
  for (int i = 0; i < srl_st_count(f); i++) {
    const srl_st_tensor *t = srl_st_get(f, i);
    if (!buf0 || (const unsigned char *)t->data < buf0) buf0 = t->data;
  }
  for (int i = 0; i < srl_st_count(f); i++) {
    const srl_st_tensor *t = srl_st_get(f, i);
    size_t file_off = 8 + n + (size_t)((const unsigned char *)t->data - buf0);
    CHECK_EQ_INT(file_off % srl_st_dtype_size(t->dtype), 0);
    CHECK(memcmp(raw + file_off, t->data, t->nbytes) == 0);
  }
  struct {
    const char *name;
    srl_dtype dtype;
    int ndim;
    int64_t d0, d1;
    const void *data;
    size_t nbytes;
  } want[] = {
      {"actor.w", SRL_DTYPE_F32, 2, 2, 3, f32, 24}, {"half", SRL_DTYPE_F16, 1, 4, 0, f16, 8},
      {"brain", SRL_DTYPE_BF16, 2, 2, 2, bf16, 8},  {"steps", SRL_DTYPE_I64, 1, 3, 0, i64, 24},
      {"ints", SRL_DTYPE_I32, 2, 2, 1, i32, 8},     {"bytes", SRL_DTYPE_U8, 1, 5, 0, u8, 5},
      {"mask", SRL_DTYPE_BOOL, 1, 3, 0, bools, 3},  {"scalar", SRL_DTYPE_F32, 0, 0, 0, &scalar, 4},
      {"empty", SRL_DTYPE_F32, 2, 0, 4, NULL, 0},   {weird, SRL_DTYPE_U8, 1, 3, 0, u8, 3},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const srl_st_tensor *t = srl_st_find(f, want[i].name);
    CHECK(t != NULL);
    if (!t) continue;
    CHECK(strcmp(t->name, want[i].name) == 0);
    CHECK_EQ_INT(t->dtype, want[i].dtype);
    CHECK_EQ_INT(t->ndim, want[i].ndim);
    if (t->ndim > 0) CHECK_EQ_INT(t->shape[0], want[i].d0);
    if (t->ndim > 1) CHECK_EQ_INT(t->shape[1], want[i].d1);
    CHECK_EQ_INT(t->nbytes, want[i].nbytes);
    if (want[i].nbytes) CHECK(memcmp(t->data, want[i].data, want[i].nbytes) == 0);
  }
  CHECK(srl_st_find(f, "absent") == NULL);

  // conversions to float32
  float out[8];
  CHECK_OK(srl_st_read_f32(f, "actor.w", out, 6));
  for (int i = 0; i < 6; i++) CHECK_EQ_INT(f32_bits(out[i]), f32_bits(f32[i]));
  CHECK_OK(srl_st_read_f32(f, "half", out, 4));
  CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == ldexpf(1, -24) && out[3] == 65504.0f);
  CHECK_OK(srl_st_read_f32(f, "brain", out, 4));
  CHECK(out[0] == 1.0f && out[1] == -123.5f && f32_bits(out[2]) == 0x00010000u);
  CHECK(f32_bits(out[3]) == 0x7f7f0000u);
  CHECK_OK(srl_st_read_f32(f, "steps", out, 3));
  CHECK(out[0] == -5.0f && out[1] == 1099511627776.0f && out[2] == 7.0f);
  CHECK_OK(srl_st_read_f32(f, "ints", out, 2));
  CHECK(out[0] == -100000.0f && out[1] == 42.0f);
  CHECK_OK(srl_st_read_f32(f, "bytes", out, 5));
  CHECK(out[0] == 0 && out[2] == 127.0f && out[4] == 255.0f);
  CHECK_OK(srl_st_read_f32(f, "mask", out, 3));
  CHECK(out[0] == 1.0f && out[1] == 0.0f && out[2] == 1.0f);
  CHECK_OK(srl_st_read_f32(f, "scalar", out, 1));
  CHECK(out[0] == 6.5f);
  CHECK_OK(srl_st_read_f32(f, "empty", NULL, 0));
  CHECK_ERR(srl_st_read_f32(f, "actor.w", out, 4), SRL_EINVAL);
  CHECK_ERRMSG("'actor.w'");
  CHECK_ERRMSG("[2, 3] (6 elements) but 4");
  CHECK_ERR(srl_st_read_f32(f, "absent", out, 1), SRL_ENOTFOUND);
  CHECK_ERRMSG("no tensor named 'absent'");
  CHECK_ERRMSG("all.safetensors");

  // metadata, ordered by key
  CHECK(srl_st_metadata(f, "algo") && strcmp(srl_st_metadata(f, "algo"), "ppo_lag") == 0);
  CHECK(srl_st_metadata(f, "step") && strcmp(srl_st_metadata(f, "step"), "1000") == 0);
  CHECK(srl_st_metadata(f, "config") &&
        strcmp(srl_st_metadata(f, "config"), "a: 1\nb: \"x\"\tc\\d \xe2\x9c\x93") == 0);
  CHECK(srl_st_metadata(f, "absent") == NULL);
  CHECK_EQ_INT(srl_st_metadata_count(f), 3);
  const char *k, *v;
  CHECK_OK(srl_st_metadata_at(f, 0, &k, &v));
  CHECK(strcmp(k, "algo") == 0 && strcmp(v, "ppo_lag") == 0);
  CHECK_OK(srl_st_metadata_at(f, 2, &k, &v));
  CHECK(strcmp(k, "step") == 0);
  CHECK_ERR(srl_st_metadata_at(f, 3, &k, &v), SRL_EINVAL);
  srl_st_close(f);

  // the same bytes through memory
  CHECK_OK(srl_st_open_memory(&f, raw, size, "mem"));
  CHECK_EQ_INT(srl_st_count(f), 10);
  srl_st_close(f);
  free(raw);
}


TEST(writer_is_deterministic) {
  float a[3] = {1, 2, 3}, b[2] = {4, 5};
  uint8_t c[1] = {9};
  int64_t s1[1] = {1};
  char p1[128], p2[128];
  snprintf(p1, sizeof p1, "%s/det1.safetensors", dir);
  snprintf(p2, sizeof p2, "%s/det2.safetensors", dir);
  srl_st_writer *w = NULL;
  CHECK_OK(srl_st_writer_create(&w));
  CHECK_OK(srl_st_add(w, "c", SRL_DTYPE_U8, 1, s1, c));
  CHECK_OK(srl_st_add_f32(w, "a", a, 1, 3));
  CHECK_OK(srl_st_add_f32(w, "b", b, 2, 1, 2));
  CHECK_OK(srl_st_set_metadata(w, "z", "1"));
  CHECK_OK(srl_st_set_metadata(w, "y", "2"));
  CHECK_OK(srl_st_write(w, p1));
  srl_st_writer_destroy(w);
  CHECK_OK(srl_st_writer_create(&w));
  CHECK_OK(srl_st_set_metadata(w, "y", "2"));
  CHECK_OK(srl_st_add_f32(w, "b", b, 2, 1, 2));
  CHECK_OK(srl_st_add_f32(w, "a", a, 1, 3));
  CHECK_OK(srl_st_set_metadata(w, "z", "1"));
  CHECK_OK(srl_st_add(w, "c", SRL_DTYPE_U8, 1, s1, c));
  CHECK_OK(srl_st_write(w, p2));
  srl_st_writer_destroy(w);
  size_t n1, n2;
  unsigned char *r1 = read_whole(p1, &n1), *r2 = read_whole(p2, &n2);
  CHECK(r1 && r2 && n1 == n2 && memcmp(r1, r2, n1) == 0);
  // the exact header this layout implies
  const char *want =
      "{\"__metadata__\":{\"y\":\"2\",\"z\":\"1\"},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[12,20]},"
      "\"c\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[20,21]}}";
  uint64_t n = le64(r1);
  CHECK(n == (strlen(want) + 7) / 8 * 8);
  CHECK(memcmp(r1 + 8, want, strlen(want)) == 0);
  for (size_t i = 8 + strlen(want); i < 8 + n; i++) CHECK(r1[i] == ' ');
  CHECK_EQ_INT(n1, 8 + n + 21);
  free(r1);
  free(r2);

  // an empty writer gives a valid empty file
  CHECK_OK(srl_st_writer_create(&w));
  CHECK_OK(srl_st_write(w, p1));
  srl_st_writer_destroy(w);
  srl_st_file *f = NULL;
  CHECK_OK(srl_st_open(&f, p1));
  CHECK_EQ_INT(srl_st_count(f), 0);
  CHECK_EQ_INT(srl_st_metadata_count(f), 0);
  srl_st_close(f);
}


TEST(writer_refuses_bad_tensors) {
  float x[4] = {0};
  int64_t neg[1] = {-1}, s2[1] = {2}, huge[3] = {1LL << 40, 1LL << 40, 1LL << 40};
  int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  srl_st_writer *w = NULL;
  CHECK_OK(srl_st_writer_create(&w));
  CHECK_ERR(srl_st_add(w, "", SRL_DTYPE_F32, 1, s2, x), SRL_EINVAL);
  CHECK_ERR(srl_st_add(w, "__metadata__", SRL_DTYPE_F32, 1, s2, x), SRL_EINVAL);
  CHECK_ERR(srl_st_add(w, "bad\xff", SRL_DTYPE_F32, 1, s2, x), SRL_EINVAL);
  CHECK_ERR(srl_st_add(w, "n", SRL_DTYPE_F32, 1, neg, x), SRL_EINVAL);
  CHECK_ERRMSG("'n'");
  CHECK_ERR(srl_st_add(w, "nine", SRL_DTYPE_F32, 9, nine, x), SRL_EINVAL);
  CHECK_ERR(srl_st_add(w, "d", (srl_dtype)99, 1, s2, x), SRL_EINVAL);
  CHECK_ERR(srl_st_add(w, "null", SRL_DTYPE_F32, 1, s2, NULL), SRL_EINVAL);
  CHECK_ERR(srl_st_add(w, "huge", SRL_DTYPE_F32, 3, huge, x), SRL_ERANGE);
  CHECK_OK(srl_st_add(w, "x", SRL_DTYPE_F32, 1, s2, x));
  CHECK_ERR(srl_st_add_f32(w, "x", x, 1, 2), SRL_EINVAL);
  CHECK_ERRMSG("duplicate tensor name 'x'");
  CHECK_ERR(srl_st_set_metadata(w, "k", "\xc0\x80"), SRL_EINVAL);  // overlong NUL
  srl_st_writer_destroy(w);
  srl_st_writer_destroy(NULL);
}


//---- conversions ------------------------------------------------------------------------------

// the value of a half from its fields, through ldexp (independent of the bit-level code)
static double f16_value(uint16_t h) {
  int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v = e ? ldexp(1024 + m, e - 25) : ldexp(m, -24);
  return s ? -v : v;
}


TEST(f16_bf16_known_bits) {
  static const struct {
    uint16_t h;
    uint32_t f;
  } f16[] = {
      {0x0000, 0x00000000}, {0x8000, 0x80000000}, {0x3c00, 0x3f800000}, {0xc000, 0xc0000000},
      {0x7bff, 0x477fe000}, {0x0001, 0x33800000}, {0x8001, 0xb3800000}, {0x03ff, 0x387fc000},
      {0x0400, 0x38800000}, {0x3555, 0x3eaaa000}, {0x7c00, 0x7f800000}, {0xfc00, 0xff800000},
      {0x7e00, 0x7fc00000}, {0x7c01, 0x7f802000}, {0xfe01, 0xffc02000}, {0x0200, 0x38000000},
  };
  for (size_t i = 0; i < sizeof f16 / sizeof f16[0]; i++)
    CHECK_EQ_INT(f32_bits(srl_st_f16_to_f32(f16[i].h)), f16[i].f);

  // every finite half against its value from the fields; every nan stays nan with its sign
  int bad = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    float x = srl_st_f16_to_f32((uint16_t)h);
    if (((h >> 10) & 31) == 31) {
      int nan = (h & 1023) != 0;
      if (nan != (isnan(x) != 0) || (!nan && !isinf(x)) || (signbit(x) != 0) != (h >> 15)) bad++;
    } else if ((double)x != f16_value((uint16_t)h) || (signbit(x) != 0) != (h >> 15)) {
      bad++;
    }
    // narrowing returns the same half (nan payload kept in the top bits)
    if (srl_st_f32_to_f16(x) != h) bad++;
  }
  CHECK_EQ_INT(bad, 0);

  // bf16 is the top half of a float32
  CHECK_EQ_INT(f32_bits(srl_st_bf16_to_f32(0x3f80)), 0x3f800000);
  CHECK(srl_st_bf16_to_f32(0xc2f7) == -123.5f);
  CHECK_EQ_INT(f32_bits(srl_st_bf16_to_f32(0x0001)), 0x00010000);
  CHECK(isinf(srl_st_bf16_to_f32(0xff80)) && srl_st_bf16_to_f32(0xff80) < 0);
  CHECK(isnan(srl_st_bf16_to_f32(0x7fc1)));
  bad = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    float x = srl_st_bf16_to_f32((uint16_t)h);
    if (f32_bits(x) != h << 16) bad++;
    if (!isnan(x) && srl_st_f32_to_bf16(x) != h) bad++;
    if (isnan(x) && !isnan(srl_st_bf16_to_f32(srl_st_f32_to_bf16(x)))) bad++;
  }
  CHECK_EQ_INT(bad, 0);
}


TEST(f32_narrowing_rounds_to_nearest_even) {
  // half: ties go to the even neighbour, overflow to infinity, tiny values to subnormals or zero
  CHECK_EQ_INT(srl_st_f32_to_f16(1.0f), 0x3c00);
  CHECK_EQ_INT(srl_st_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);  // tie, even below
  CHECK_EQ_INT(srl_st_f32_to_f16(1.0f + 0x3p-11f), 0x3c02);  // tie, even above
  CHECK_EQ_INT(srl_st_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
  CHECK_EQ_INT(srl_st_f32_to_f16(65504.0f), 0x7bff);
  CHECK_EQ_INT(srl_st_f32_to_f16(65519.99f), 0x7bff);
  CHECK_EQ_INT(srl_st_f32_to_f16(65520.0f), 0x7c00);  // tie rounds up to infinity
  CHECK_EQ_INT(srl_st_f32_to_f16(-1e10f), 0xfc00);
  CHECK_EQ_INT(srl_st_f32_to_f16(0x1p-24f), 0x0001);
  CHECK_EQ_INT(srl_st_f32_to_f16(0x1p-25f), 0x0000);  // tie to even zero
  CHECK_EQ_INT(srl_st_f32_to_f16(0x1.8p-25f), 0x0001);
  CHECK_EQ_INT(srl_st_f32_to_f16(0x3p-25f), 0x0002);      // tie, even above
  CHECK_EQ_INT(srl_st_f32_to_f16(-0x5p-25f), 0x8002);     // tie, even below
  CHECK_EQ_INT(srl_st_f32_to_f16(0x1.ff8p-15f), 0x03ff);  // largest subnormal
  CHECK_EQ_INT(srl_st_f32_to_f16(0x1.ffcp-15f), 0x0400);  // tie carries into the normals
  CHECK_EQ_INT(srl_st_f32_to_f16(1e-30f), 0x0000);
  CHECK_EQ_INT(srl_st_f32_to_f16(-0.0f), 0x8000);
  CHECK_EQ_INT(srl_st_f32_to_f16(bits_f32(0x7f800001)), 0x7c01);  // signalling nan stays nan
  CHECK_EQ_INT(srl_st_f32_to_f16(bits_f32(0x7fc00000)), 0x7e00);
  // every f16 midpoint against the nearest-even rule computed in double
  int bad = 0;
  for (uint32_t h = 0; h < 0x7bff; h++) {
    double lo = f16_value((uint16_t)h), hi = f16_value((uint16_t)(h + 1));
    float mid = (float)((lo + hi) / 2);  // exact: a half midpoint has at most 12 bits
    uint16_t want = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
    if (srl_st_f32_to_f16(mid) != want) bad++;
    if (srl_st_f32_to_f16(nextafterf(mid, 0)) != h) bad++;
    if (srl_st_f32_to_f16(nextafterf(mid, 1e9f)) != h + 1) bad++;
  }
  CHECK_EQ_INT(bad, 0);

  // bf16
  CHECK_EQ_INT(srl_st_f32_to_bf16(1.0f), 0x3f80);
  CHECK_EQ_INT(srl_st_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
  CHECK_EQ_INT(srl_st_f32_to_bf16(1.0f + 0x3p-8f), 0x3f82);
  CHECK_EQ_INT(srl_st_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
  CHECK_EQ_INT(srl_st_f32_to_bf16(bits_f32(0x7f7fffff)), 0x7f80);  // max float → infinity
  CHECK_EQ_INT(srl_st_f32_to_bf16(-INFINITY), 0xff80);
  CHECK(isnan(srl_st_bf16_to_f32(srl_st_f32_to_bf16(bits_f32(0x7f800001)))));
}


//---- refusals ---------------------------------------------------------------------------------

#define T_A "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

// a malformed file is refused with the code and a message holding the substring
static void refuse(const char *json, size_t data_len, int code, const char *substr, int line) {
  srl_st_file *f;
  int rc = open_json(json, data_len, &f);
  if (rc != code || f != NULL || !strstr(srl_errmsg(), substr) ||
      !strstr(srl_errmsg(), "bad.safetensors")) {
    fprintf(stderr, "  line %d: %s: rc %s (want %s), message \"%s\" (want \"%s\")\n", line, json,
            srl_errname(rc), srl_errname(code), srl_errmsg(), substr);
    srl_test_failures_++;
  }
  if (rc == 0) srl_st_close(f);
}
#define REFUSE(json, len, code, substr) refuse(json, len, code, substr, __LINE__)


TEST(accepts_valid_variants) {
  srl_st_file *f = NULL;
  // whitespace between tokens, keys in any order, padding, escapes, metadata anywhere
  const char *json =
      "{ \"b\\u00e9\\n\" : { \"data_offsets\" : [ 8 , 12 ] "
      ",\n\t\"shape\":[1],\"dtype\":\"I32\"},\r\n"
      "\"__metadata__\":{\"k\\\"\":\"v\\/\\u2713\", \"\\ud83d\\ude00\":\"\"}," T_A "}   \n ";
  CHECK_OK(open_json(json, 12, &f));
  CHECK_EQ_INT(srl_st_count(f), 2);
  const srl_st_tensor *b = srl_st_find(f, "b\xc3\xa9\n");
  CHECK(b && b->dtype == SRL_DTYPE_I32 && b->nbytes == 4);
  CHECK(srl_st_metadata(f, "k\"") && strcmp(srl_st_metadata(f, "k\""), "v/\xe2\x9c\x93") == 0);
  CHECK(srl_st_metadata(f, "\xf0\x9f\x98\x80") && !srl_st_metadata(f, "\xf0\x9f\x98\x80")[0]);
  srl_st_close(f);
  // no tensors at all; zero-size tensors at shared offsets; eight dimensions
  CHECK_OK(open_json("{}", 0, &f));
  CHECK_EQ_INT(srl_st_count(f), 0);
  srl_st_close(f);
  CHECK_OK(open_json("{\"e\":{\"dtype\":\"F16\",\"shape\":[0,3],\"data_offsets\":[8,8]}," T_A
                     ",\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,8]}}",
                     8, &f));
  CHECK_EQ_INT(srl_st_count(f), 3);
  srl_st_close(f);
  CHECK_OK(
      open_json("{\"d8\":{\"dtype\":\"BOOL\",\"shape\":[1,1,1,1,1,1,1,2],"
                "\"data_offsets\":[0,2]}}",
                2, &f));
  CHECK_EQ_INT(srl_st_get(f, 0)->ndim, 8);
  srl_st_close(f);
}


TEST(refuses_truncated_files) {
  // a valid file written by the writer, cut at several points, in memory and on disk
  float x[16];
  for (int i = 0; i < 16; i++) x[i] = (float)i;
  char path[128], cut_path[128];
  snprintf(path, sizeof path, "%s/whole.safetensors", dir);
  snprintf(cut_path, sizeof cut_path, "%s/cut.safetensors", dir);
  srl_st_writer *w = NULL;
  CHECK_OK(srl_st_writer_create(&w));
  CHECK_OK(srl_st_add_f32(w, "a", x, 2, 2, 4));
  CHECK_OK(srl_st_add_f32(w, "b", x + 8, 1, 8));
  CHECK_OK(srl_st_write(w, path));
  srl_st_writer_destroy(w);
  size_t size;
  unsigned char *raw = read_whole(path, &size);
  size_t n = (size_t)le64(raw);
  size_t cuts[] = {0, 1, 7, 8, 9, 8 + n / 2, 8 + n - 1, 8 + n, 8 + n + 1, 8 + n + 32, size - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    srl_st_file *f = (srl_st_file *)1;
    int rc = srl_st_open_memory(&f, raw, cuts[i], "cut.safetensors");
    const char *want = cuts[i] < 8       ? "too short"
                       : cuts[i] < 8 + n ? "larger than"
                                         : "out of bounds";
    if (rc != SRL_EFORMAT || f || !strstr(srl_errmsg(), want) ||
        !strstr(srl_errmsg(), "truncated")) {
      fprintf(stderr, "  cut at %zu: rc %s, \"%s\"\n", cuts[i], srl_errname(rc), srl_errmsg());
      srl_test_failures_++;
    }
    write_whole(cut_path, raw, cuts[i]);
    CHECK_ERR(srl_st_open(&f, cut_path), SRL_EFORMAT);
    CHECK_ERRMSG(cut_path);
    CHECK(f == NULL);
  }
  // a tensor past the end after cutting its tail names the tensor
  CHECK_ERR(srl_st_open_memory(&(srl_st_file *){NULL}, raw, size - 4, "cut"), SRL_EFORMAT);
  CHECK_ERRMSG("tensor '");
  free(raw);
}


TEST(refuses_bad_header_sizes) {
  unsigned char b[64] = {0};
  srl_st_file *f = (srl_st_file *)1;
  // larger than the file
  memcpy(b + 8, "{}", 2);
  b[0] = 100;
  CHECK_ERR(srl_st_open_memory(&f, b, 10, "bad.safetensors"), SRL_EFORMAT);
  CHECK_ERRMSG("header size 100 is larger than the 2 bytes");
  CHECK(f == NULL);
  // over the cap, and absurd
  uint64_t big = SRL_ST_MAX_HEADER + 1;
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(big >> (8 * i));
  CHECK_ERR(srl_st_open_memory(&f, b, sizeof b, "bad.safetensors"), SRL_EFORMAT);
  CHECK_ERRMSG("exceeds the limit");
  memset(b, 0xff, 8);
  CHECK_ERR(srl_st_open_memory(&f, b, sizeof b, "bad.safetensors"), SRL_EFORMAT);
  CHECK_ERRMSG("exceeds the limit");
  // too small to hold "{}"
  memset(b, 0, 8);
  b[0] = 1;
  CHECK_ERR(srl_st_open_memory(&f, b, 9, "bad.safetensors"), SRL_EFORMAT);
  CHECK_ERRMSG("too small");
  CHECK_ERR(srl_st_open_memory(&f, NULL, 0, NULL), SRL_EFORMAT);
  CHECK_ERRMSG("<memory>");
  CHECK_ERR(srl_st_open_memory(&f, NULL, 5, NULL), SRL_EINVAL);
  // not a file at all
  CHECK_ERR(srl_st_open(&f, "/nonexistent/x.safetensors"), SRL_EIO);
  CHECK_ERRMSG("/nonexistent/x.safetensors: cannot open");
  CHECK_ERR(srl_st_open(&f, dir), SRL_EIO);
  CHECK_ERRMSG("not a regular file");
}


TEST(refuses_malformed_json) {
  REFUSE("{" T_A, 8, SRL_EFORMAT, "expected ',' or '}'");
  REFUSE("{" T_A "}x", 8, SRL_EFORMAT, "trailing garbage");
  REFUSE("{" T_A "}}", 8, SRL_EFORMAT, "trailing garbage");
  REFUSE("{" T_A ",}", 8, SRL_EFORMAT, "expected a string");
  REFUSE(" {" T_A "}", 8, SRL_EFORMAT, "must start with '{'");
  REFUSE("[1, 2]", 0, SRL_EFORMAT, "must start with '{'");
  REFUSE("{'a':{}}", 0, SRL_EFORMAT, "expected a string");
  REFUSE("{\"a\" {}}", 0, SRL_EFORMAT, "expected ':'");
  REFUSE("{\"a:{}}", 0, SRL_EFORMAT, "unterminated string");
  REFUSE("{\"a\":true}", 0, SRL_EFORMAT, "expected '{' to open a tensor");
  REFUSE("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, SRL_EFORMAT,
         "the end of the header");
  REFUSE("{\"a\tb\":{}}", 0, SRL_EFORMAT, "control character 0x09");
  REFUSE("{\"a\\x\":{}}", 0, SRL_EFORMAT, "invalid escape");
  REFUSE("{\"a\\u12g4\":{}}", 0, SRL_EFORMAT, "invalid \\u escape");
  REFUSE("{\"a\\ud800\":{}}", 0, SRL_EFORMAT, "lone high surrogate");
  REFUSE("{\"a\\udc00\":{}}", 0, SRL_EFORMAT, "lone low surrogate");
  REFUSE("{\"a\\u0000\":{}}", 0, SRL_EFORMAT, "NUL character");
  REFUSE("{\"a\xff\":{}}", 0, SRL_EFORMAT, "invalid UTF-8");
  REFUSE("{\"a\xed\xa0\x80\":{}}", 0, SRL_EFORMAT, "invalid UTF-8");  // encoded surrogate
  REFUSE("{\"a\xc0\xaf\":{}}", 0, SRL_EFORMAT, "invalid UTF-8");      // overlong
  REFUSE("{\"\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,0]}}", 0, SRL_EFORMAT,
         "empty tensor name");
  REFUSE("{\"a\":{}}", 0, SRL_EFORMAT, "tensor 'a': empty entry");
  REFUSE("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, SRL_EFORMAT, "missing 'data_offsets'");
  REFUSE("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
         SRL_EFORMAT, "duplicate key 'dtype'");
  REFUSE("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", 8,
         SRL_EFORMAT, "unknown key 'extra'");
  REFUSE("{\"a\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8, SRL_EFORMAT,
         "leading zero");
  REFUSE("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, SRL_EFORMAT,
         "must not be negative");
  REFUSE("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, SRL_EFORMAT,
         "must be an integer");
  REFUSE("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8e0]}}", 8, SRL_EFORMAT,
         "must be an integer");
  REFUSE("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", 8,
         SRL_EFORMAT, "too large");
  REFUSE("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,],\"data_offsets\":[0,8]}}", 8, SRL_EFORMAT,
         "expected an integer");
  REFUSE("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", 8, SRL_EFORMAT,
         "expected ']'");
  REFUSE("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8,
         SRL_EFORMAT, "more than 8 dimensions");
  REFUSE("{\"a\":{\"dtype\":F32,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, SRL_EFORMAT,
         "expected a string for dtype");
  REFUSE("{\"__metadata__\":{\"k\":1}," T_A "}", 8, SRL_EFORMAT, "metadata 'k': value must be");
  REFUSE("{\"__metadata__\":[]," T_A "}", 8, SRL_EFORMAT, "must be an object");
  REFUSE("{\"__metadata__\":{},\"__metadata__\":{}," T_A "}", 8, SRL_EFORMAT,
         "duplicate key '__metadata__'");
  REFUSE("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}," T_A "}", 8, SRL_EFORMAT,
         "duplicate metadata key 'k'");
  // the error points at the header byte
  REFUSE("{" T_A "}x", 8, SRL_EFORMAT, "at byte 54 of 55");
}


TEST(refuses_bad_layouts) {
  // overlapping, holes, out of bounds, reversed ranges, size mismatch, overflow
  REFUSE("{" T_A ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
         SRL_EFORMAT, "tensors 'a' [0, 8) and 'b' [4, 12) overlap");
  REFUSE("{" T_A ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, SRL_EFORMAT,
         "overlap");
  REFUSE("{" T_A ",\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,4]}}", 8, SRL_EFORMAT,
         "overlap");
  REFUSE("{" T_A ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", 16,
         SRL_EFORMAT, "hole in the data buffer: bytes [8, 12) before tensor 'b'");
  REFUSE("{" T_A "}", 9, SRL_EFORMAT, "bytes [8, 9) at its end");
  REFUSE("{}", 3, SRL_EFORMAT, "bytes [0, 3) at its end");
  REFUSE("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, SRL_EFORMAT,
         "tensor 'a': data_offsets [0, 16] out of bounds of the 8-byte");
  REFUSE("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, SRL_EFORMAT,
         "tensor 'a': data_offsets [8, 0] end before they begin");
  REFUSE("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, SRL_EFORMAT,
         "tensor 'a': size mismatch: data_offsets [0, 8] hold 8 bytes but F32 shape [3] needs 12");
  REFUSE("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", 4, SRL_EFORMAT,
         "F16 shape [2, 2] needs 8");
  REFUSE("{\"a\":{\"dtype\":\"I64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
         SRL_EFORMAT, "overflows");
  REFUSE("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, SRL_EUNSUPPORTED,
         "tensor 'a': dtype 'F64' is not supported");
  REFUSE("{\"a\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, SRL_EFORMAT,
         "tensor 'a': unknown dtype 'Q7'");
  REFUSE("{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, SRL_EFORMAT,
         "unknown dtype 'f32'");
  REFUSE("{" T_A ",\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12,
         SRL_EFORMAT, "duplicate tensor name 'a'");
}


TEST(refuses_every_cut_and_flip) {
  // every prefix of a small valid file is refused cleanly; single-byte flips never crash
  const char *json = "{\"__metadata__\":{\"k\":\"v\"}," T_A
                     ",\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[8,10]}}";
  size_t size;
  unsigned char *b = make_file(json, 10, &size);
  srl_st_file *f = NULL;
  CHECK_OK(srl_st_open_memory(&f, b, size, "ok"));
  srl_st_close(f);
  int accepted = 0;
  for (size_t cut = 0; cut < size; cut++) {
    if (srl_st_open_memory(&f, b, cut, "cut") == 0) {
      accepted++;
      srl_st_close(f);
    }
  }
  CHECK_EQ_INT(accepted, 0);
  for (size_t i = 0; i < size; i++) {
    for (int bit = 0; bit < 8; bit++) {
      b[i] ^= (unsigned char)(1 << bit);
      if (srl_st_open_memory(&f, b, size, "flip") == 0) {
        // whatever is accepted must be self-consistent
        for (int t = 0; t < srl_st_count(f); t++) CHECK(srl_st_get(f, t)->name[0] != '\0');
        srl_st_close(f);
      } else {
        CHECK(srl_errmsg()[0] != '\0');
      }
      b[i] ^= (unsigned char)(1 << bit);
    }
  }
  free(b);
}


//---- atomic writes ----------------------------------------------------------------------------

static srl_st_writer *writer_with(const float *x, int n, const char *tag) {
  srl_st_writer *w = NULL;
  srl_st_writer_create(&w);
  srl_st_add_f32(w, "x", x, 1, n);
  srl_st_set_metadata(w, "tag", tag);
  return w;
}


TEST(atomic_write_keeps_previous_file) {
  static float x[16384];
  for (int i = 0; i < 16384; i++) x[i] = (float)i;
  char sub[128], path[160], tmp[170], missing[200], isdir[160], isdir_tmp[170], inner[180];
  snprintf(sub, sizeof sub, "%s/atomic", dir);
  snprintf(path, sizeof path, "%s/ckpt.safetensors", sub);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  snprintf(missing, sizeof missing, "%s/gone/ckpt.safetensors", sub);
  snprintf(isdir, sizeof isdir, "%s/isdir", sub);
  snprintf(isdir_tmp, sizeof isdir_tmp, "%s.tmp", isdir);
  snprintf(inner, sizeof inner, "%s/keep", isdir);
  CHECK(mkdir(sub, 0755) == 0);

  // the previous checkpoint
  srl_st_writer *w = writer_with(x, 4, "v1");
  CHECK_OK(srl_st_write(w, path));
  srl_st_writer_destroy(w);
  size_t n1;
  unsigned char *v1 = read_whole(path, &n1);
  CHECK(!exists(tmp));

  // a successful overwrite replaces it whole
  w = writer_with(x, 8, "v2");
  CHECK_OK(srl_st_write(w, path));
  srl_st_writer_destroy(w);
  srl_st_file *f = NULL;
  CHECK_OK(srl_st_open(&f, path));
  CHECK(f && srl_st_find(f, "x")->shape[0] == 8 && strcmp(srl_st_metadata(f, "tag"), "v2") == 0);
  srl_st_close(f);
  CHECK(!exists(tmp));
  write_whole(path, v1, n1);

  // the target directory does not exist
  w = writer_with(x, 8, "v3");
  CHECK_ERR(srl_st_write(w, missing), SRL_EIO);
  CHECK_ERRMSG("cannot create");
  CHECK_ERRMSG("gone/ckpt.safetensors.tmp");

  // the temporary path is taken by a directory: nothing is written, the directory stays
  CHECK(mkdir(tmp, 0755) == 0);
  CHECK_ERR(srl_st_write(w, path), SRL_EIO);
  CHECK(exists(tmp));
  rmdir(tmp);

  // the target is a non-empty directory: the rename fails and the temporary file is removed
  CHECK(mkdir(isdir, 0755) == 0);
  write_whole(inner, "k", 1);
  CHECK_ERR(srl_st_write(w, isdir), SRL_EIO);
  CHECK_ERRMSG("rename");
  CHECK(!exists(isdir_tmp) && exists(inner));
  remove(inner);
  rmdir(isdir);
  srl_st_writer_destroy(w);

  // the disk fills mid-way (file size limit): the data write fails, the old file is intact
  struct rlimit old_lim, lim;
  if (getrlimit(RLIMIT_FSIZE, &old_lim) == 0) {
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old_lim;
    lim.rlim_cur = 4096;
    if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
      w = writer_with(x, 16384, "v4");  // 64 KiB of data
      int rc = srl_st_write(w, path);
      setrlimit(RLIMIT_FSIZE, &old_lim);
      CHECK_EQ_INT(rc, SRL_EIO);
      CHECK_ERRMSG("previous file is unchanged");
      srl_st_writer_destroy(w);
    } else {
      fprintf(stderr, "  note: setrlimit unavailable, mid-write failure not exercised\n");
    }
    signal(SIGXFSZ, old_sig);
  }
  CHECK(!exists(tmp));
  size_t n2;
  unsigned char *now = read_whole(path, &n2);
  CHECK(now && n1 == n2 && memcmp(v1, now, n1) == 0);
  free(now);

  // an unwritable directory (root writes anyway, so only checked for other users)
  if (geteuid() != 0) {
    chmod(sub, 0500);
    w = writer_with(x, 8, "v5");
    CHECK_ERR(srl_st_write(w, path), SRL_EIO);
    srl_st_writer_destroy(w);
    chmod(sub, 0755);
    now = read_whole(path, &n2);
    CHECK(now && n1 == n2 && memcmp(v1, now, n1) == 0);
    free(now);
  }

  // the directory removed before the write
  remove(path);
  CHECK(rmdir(sub) == 0);
  w = writer_with(x, 8, "v6");
  CHECK_ERR(srl_st_write(w, path), SRL_EIO);
  CHECK(!exists(path) && !exists(tmp));
  srl_st_writer_destroy(w);
  free(v1);
}


int main(void) {
  snprintf(dir, sizeof dir, "st_test_XXXXXX");
  if (!mkdtemp(dir)) {
    fprintf(stderr, "cannot create a scratch directory: %s\n", strerror(errno));
    return 1;
  }
  RUN(roundtrip_every_dtype);
  RUN(writer_is_deterministic);
  RUN(writer_refuses_bad_tensors);
  RUN(f16_bf16_known_bits);
  RUN(f32_narrowing_rounds_to_nearest_even);
  RUN(accepts_valid_variants);
  RUN(refuses_truncated_files);
  RUN(refuses_bad_header_sizes);
  RUN(refuses_malformed_json);
  RUN(refuses_bad_layouts);
  RUN(refuses_every_cut_and_flip);
  RUN(atomic_write_keeps_previous_file);
  // remove the scratch files
  const char *names[] = {"all", "det1", "det2", "whole", "cut"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char p[128];
    snprintf(p, sizeof p, "%s/%s.safetensors", dir, names[i]);
    remove(p);
  }
  rmdir(dir);
  return TEST_REPORT();
}

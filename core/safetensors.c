// safetensors.c: hardened reader and atomic writer of safetensors files.
//
// The reader loads a whole file into one block laid out as [object | name | file bytes | index].
// The header JSON is parsed in place by a strict recursive descent bounded by the format itself
// (an object of tensor objects and one metadata object, so three levels at most); strings are
// unescaped where they lie, so tensor names and metadata point into the file bytes. The index
// (tensor table from the front, metadata pairs from the back) is sized from the header length:
// every tensor entry takes at least 50 header bytes and every metadata pair at least 5, so
// 3 x N bytes always suffice. Nothing is returned until every check has passed.
#include "core/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader assumes a little-endian host"
#endif

struct srl_st_file {
  const char *name;        // file name for messages
  srl_st_tensor *tensors;  // (ntensors), sorted by name
  const char **meta;       // (nmeta, 2) key, value pairs sorted by key
  int ntensors, nmeta;
  const unsigned char *bytes;  // (size) the whole file
  size_t size;
};


//---- dtypes and conversions -------------------------------------------------------------------

static const struct {
  const char *name;
  size_t size;
} dtype_table[] = {
    [SRL_DTYPE_F32] = {"F32", 4},   [SRL_DTYPE_F16] = {"F16", 2}, [SRL_DTYPE_BF16] = {"BF16", 2},
    [SRL_DTYPE_I64] = {"I64", 8},   [SRL_DTYPE_I32] = {"I32", 4}, [SRL_DTYPE_U8] = {"U8", 1},
    [SRL_DTYPE_BOOL] = {"BOOL", 1},
};
#define NDTYPES ((int)(sizeof dtype_table / sizeof dtype_table[0]))

// dtypes of the format that this library does not handle (refused as unsupported, not malformed)
static const char *const other_dtypes[] = {"F64", "I8",      "I16",     "U16",     "U32",
                                           "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "C64",
                                           "F4",  "F6_E2M3", "F6_E3M2"};


const char *srl_st_dtype_name(srl_dtype dtype) {
  return (int)dtype >= 0 && (int)dtype < NDTYPES ? dtype_table[dtype].name : "?";
}


size_t srl_st_dtype_size(srl_dtype dtype) {
  return (int)dtype >= 0 && (int)dtype < NDTYPES ? dtype_table[dtype].size : 0;
}


size_t srl_st_numel(const srl_st_tensor *t) {
  size_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
  return n;
}


static float bits_to_f32(uint32_t b) {
  float x;
  memcpy(&x, &b, sizeof x);
  return x;
}


float srl_st_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  // infinity and nan (payload shifted into place), normal numbers rebias the exponent
  if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (man << 13));
  if (exp != 0) return bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
  // zero and subnormals: man x 2^-24 is exact in float32
  float mag = (float)man * 0x1p-24f;
  return sign ? -mag : mag;
}


float srl_st_bf16_to_f32(uint16_t h) {
  return bits_to_f32((uint32_t)h << 16);
}


uint16_t srl_st_f32_to_f16(float x) {
  uint32_t b;
  memcpy(&b, &x, sizeof b);
  uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
  uint32_t exp = (b >> 23) & 0xffu, man = b & 0x7fffffu;
  // nan keeps the top payload bits and stays nan; infinity stays infinity
  if (exp == 0xff) {
    uint32_t payload = man >> 13;
    return (uint16_t)(sign | 0x7c00u | (man ? (payload ? payload : 1u) : 0u));
  }
  int e = (int)exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00u);
  if (e <= 0) {
    // subnormal half (or zero): shift the full significand, round to nearest even
    int shift = 14 - e;
    if (shift > 24) return sign;
    uint32_t m = man | 0x800000u;
    uint32_t h = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) h++;
    return sign | (uint16_t)h;  // a carry makes the smallest normal, as it should
  }
  // normal: a carry out of the mantissa bumps the exponent, up to infinity
  uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
  return sign | (uint16_t)h;
}


uint16_t srl_st_f32_to_bf16(float x) {
  uint32_t b;
  memcpy(&b, &x, sizeof b);
  if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40u);  // quiet nan
  b += 0x7fffu + ((b >> 16) & 1u);
  return (uint16_t)(b >> 16);
}


//---- header parser ----------------------------------------------------------------------------

typedef struct st_parser {
  char *base, *p, *end;      // header bytes [base, end) and the cursor
  const char *file;          // name for messages
  const unsigned char *buf;  // the byte buffer after the header
  size_t buf_size;
  srl_st_tensor *tensors;  // tensor table, growing up from the index start
  int nt;
  const char **meta_end;  // metadata pairs, growing down from the index end
  int nm;
  int seen_meta;
} st_parser;


// an error at the cursor, with the header byte offset
static int perr(const st_parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(const st_parser *ps, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return srl_error(SRL_EFORMAT, "%s: malformed header at byte %zu of %zu: %s", ps->file,
                   (size_t)(ps->p - ps->base), (size_t)(ps->end - ps->base), msg);
}


static int peek(const st_parser *ps) {
  return ps->p < ps->end ? (unsigned char)*ps->p : -1;
}


static void skip_ws(st_parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}


// what the cursor sees, for messages
static const char *seen(const st_parser *ps, char tmp[8]) {
  int c = peek(ps);
  if (c < 0) return "the end of the header";
  if (c >= 0x20 && c < 0x7f)
    snprintf(tmp, 8, "'%c'", c);
  else
    snprintf(tmp, 8, "0x%02x", (unsigned)c & 0xffu);
  return tmp;
}


static int expect(st_parser *ps, char c, const char *where) {
  skip_ws(ps);
  if (peek(ps) != (unsigned char)c) {
    char tmp[8];
    return perr(ps, "expected '%c' %s, found %s", c, where, seen(ps, tmp));
  }
  ps->p++;
  return 0;
}


// length of one well-formed UTF-8 sequence at s (RFC 3629: no overlongs, surrogates or values
// past U+10FFFF), 0 if ill-formed
static int utf8_len(const unsigned char *s, const unsigned char *end) {
  unsigned c = s[0];
  int n;
  if (c < 0x80) return 1;
  if (c < 0xc2) return 0;
  n = c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
  if (!n || end - s < n) return 0;
  for (int i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  if (c == 0xe0 && s[1] < 0xa0) return 0;   // overlong 3-byte
  if (c == 0xed && s[1] >= 0xa0) return 0;  // surrogate
  if (c == 0xf0 && s[1] < 0x90) return 0;   // overlong 4-byte
  if (c == 0xf4 && s[1] >= 0x90) return 0;  // past U+10FFFF
  return n;
}


static int utf8_put(char *w, uint32_t cp) {
  if (cp < 0x80) {
    w[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    w[0] = (char)(0xc0 | (cp >> 6));
    w[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    w[0] = (char)(0xe0 | (cp >> 12));
    w[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    w[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  w[0] = (char)(0xf0 | (cp >> 18));
  w[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  w[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  w[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}


static int hex4(const char *s, const char *end, uint32_t *out) {
  uint32_t v = 0;
  if (end - s < 4) return -1;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return -1;
    v = v * 16 + (uint32_t)d;
  }
  *out = v;
  return 0;
}


// parse a JSON string at the cursor and unescape it in place (the result is never longer than
// its escaped form), NUL-terminated where the closing quote was
static int parse_string(st_parser *ps, char **out, const char *what) {
  skip_ws(ps);
  if (peek(ps) != '"') {
    char tmp[8];
    return perr(ps, "expected a string for %s, found %s", what, seen(ps, tmp));
  }
  char *r = ++ps->p, *w = r, *start = r;
  for (;;) {
    if (r >= ps->end) return perr(ps, "unterminated string in %s", what);
    unsigned char c = (unsigned char)*r;
    if (c == '"') break;
    if (c < 0x20) {
      ps->p = r;
      return perr(ps, "control character 0x%02x in %s (must be escaped)", c, what);
    }
    if (c == '\\') {
      if (r + 1 >= ps->end) return perr(ps, "unterminated string in %s", what);
      char e = r[1];
      const char *simple = strchr("\"\\/bfnrt", e);
      if (e && simple) {
        static const char plain[] = "\"\\/\b\f\n\r\t";
        *w++ = plain[simple - "\"\\/bfnrt"];
        r += 2;
        continue;
      }
      uint32_t cp, lo;
      ps->p = r;
      if (e != 'u') return perr(ps, "invalid escape in %s", what);
      if (hex4(r + 2, ps->end, &cp)) return perr(ps, "invalid \\u escape in %s", what);
      r += 6;
      if (cp >= 0xdc00 && cp <= 0xdfff) return perr(ps, "lone low surrogate in %s", what);
      if (cp >= 0xd800 && cp <= 0xdbff) {
        if (ps->end - r < 6 || r[0] != '\\' || r[1] != 'u' || hex4(r + 2, ps->end, &lo) ||
            lo < 0xdc00 || lo > 0xdfff)
          return perr(ps, "lone high surrogate in %s", what);
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        r += 6;
      }
      if (cp == 0) return perr(ps, "NUL character (\\u0000) in %s", what);
      w += utf8_put(w, cp);
      continue;
    }
    int n = utf8_len((const unsigned char *)r, (const unsigned char *)ps->end);
    if (!n) {
      ps->p = r;
      return perr(ps, "invalid UTF-8 in %s", what);
    }
    memmove(w, r, (size_t)n);
    w += n;
    r += n;
  }
  *w = '\0';
  ps->p = r + 1;
  *out = start;
  return 0;
}


// a JSON number that must be a non-negative integer no larger than INT64_MAX
static int parse_uint(st_parser *ps, uint64_t *out, const char *what) {
  skip_ws(ps);
  int c = peek(ps);
  if (c == '-') return perr(ps, "%s must not be negative", what);
  if (c < '0' || c > '9') {
    char tmp[8];
    return perr(ps, "expected an integer for %s, found %s", what, seen(ps, tmp));
  }
  if (c == '0' && ps->p + 1 < ps->end && ps->p[1] >= '0' && ps->p[1] <= '9')
    return perr(ps, "leading zero in %s", what);
  uint64_t v = 0;
  while ((c = peek(ps)) >= '0' && c <= '9') {
    if (v > (uint64_t)(INT64_MAX - (c - '0')) / 10) return perr(ps, "%s is too large", what);
    v = v * 10 + (uint64_t)(c - '0');
    ps->p++;
  }
  if (c == '.' || c == 'e' || c == 'E') return perr(ps, "%s must be an integer", what);
  *out = v;
  return 0;
}


// after an item of an object or array: ',' (returns 1) or the closing bracket (returns 0)
static int next_item(st_parser *ps, char close, const char *where) {
  skip_ws(ps);
  int c = peek(ps);
  if (c == ',') {
    ps->p++;
    return 1;
  }
  if (c == (unsigned char)close) {
    ps->p++;
    return 0;
  }
  char tmp[8];
  return perr(ps, "expected ',' or '%c' %s, found %s", close, where, seen(ps, tmp));
}


// true if the opening bracket is immediately closed (an empty object or array)
static int empty_container(st_parser *ps, char close) {
  skip_ws(ps);
  if (peek(ps) == (unsigned char)close) {
    ps->p++;
    return 1;
  }
  return 0;
}


static char *fmt_shape(char *out, size_t cap, const int64_t *shape, int ndim) {
  size_t len = (size_t)snprintf(out, cap, "[");
  for (int i = 0; i < ndim && len < cap; i++)
    len += (size_t)snprintf(out + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (len < cap) snprintf(out + len, cap - len, "]");
  return out;
}


static int lookup_dtype(st_parser *ps, const char *name, const char *s, srl_dtype *out) {
  for (int i = 0; i < NDTYPES; i++)
    if (strcmp(s, dtype_table[i].name) == 0) {
      *out = (srl_dtype)i;
      return 0;
    }
  for (size_t i = 0; i < sizeof other_dtypes / sizeof other_dtypes[0]; i++)
    if (strcmp(s, other_dtypes[i]) == 0)
      return srl_error(SRL_EUNSUPPORTED,
                       "%s: tensor '%s': dtype '%s' is not supported (supported: F32, F16, BF16, "
                       "I64, I32, U8, BOOL)",
                       ps->file, name, s);
  return srl_error(SRL_EFORMAT, "%s: tensor '%s': unknown dtype '%s'", ps->file, name, s);
}


// one tensor entry: {"dtype": ..., "shape": [...], "data_offsets": [begin, end]} in any order
static int parse_tensor(st_parser *ps, const char *name) {
  srl_st_tensor t = {.name = name};
  uint64_t off[2] = {0, 0};
  int have_dtype = 0, have_shape = 0, have_offsets = 0;
  char what[96];
  if (!name[0]) return perr(ps, "empty tensor name");
  SRL_TRY(expect(ps, '{', "to open a tensor entry"));
  if (empty_container(ps, '}')) return perr(ps, "tensor '%s': empty entry", name);
  int more = 1;
  while (more) {
    char *key, *dtype;
    SRL_TRY(parse_string(ps, &key, "a tensor key"));
    SRL_TRY(expect(ps, ':', "after a key"));
    if (strcmp(key, "dtype") == 0) {
      if (have_dtype++) return perr(ps, "tensor '%s': duplicate key 'dtype'", name);
      SRL_TRY(parse_string(ps, &dtype, "dtype"));
      SRL_TRY(lookup_dtype(ps, name, dtype, &t.dtype));
    } else if (strcmp(key, "shape") == 0) {
      if (have_shape++) return perr(ps, "tensor '%s': duplicate key 'shape'", name);
      SRL_TRY(expect(ps, '[', "to open a shape"));
      if (!empty_container(ps, ']')) {
        for (int dims_left = 1; dims_left;) {
          uint64_t d;
          if (t.ndim == SRL_ST_MAX_DIMS)
            return perr(ps, "tensor '%s': more than %d dimensions", name, SRL_ST_MAX_DIMS);
          snprintf(what, sizeof what, "a dimension of '%.64s'", name);
          SRL_TRY(parse_uint(ps, &d, what));
          t.shape[t.ndim++] = (int64_t)d;
          dims_left = next_item(ps, ']', "in a shape");
          if (dims_left < 0) return dims_left;
        }
      }
    } else if (strcmp(key, "data_offsets") == 0) {
      if (have_offsets++) return perr(ps, "tensor '%s': duplicate key 'data_offsets'", name);
      snprintf(what, sizeof what, "the data_offsets of '%.64s'", name);
      SRL_TRY(expect(ps, '[', "to open data_offsets"));
      SRL_TRY(parse_uint(ps, &off[0], what));
      SRL_TRY(expect(ps, ',', "between the two data_offsets"));
      SRL_TRY(parse_uint(ps, &off[1], what));
      SRL_TRY(expect(ps, ']', "after the two data_offsets"));
    } else {
      return perr(ps, "tensor '%s': unknown key '%s' (expected dtype, shape, data_offsets)", name,
                  key);
    }
    int rc = next_item(ps, '}', "in a tensor entry");
    if (rc < 0) return rc;
    more = rc;
  }
  if (!have_dtype || !have_shape || !have_offsets)
    return perr(ps, "tensor '%s': missing '%s'", name,
                !have_dtype   ? "dtype"
                : !have_shape ? "shape"
                              : "data_offsets");

  // byte range inside the buffer, and as long as dtype size x elements
  char shp[160];
  if (off[1] < off[0])
    return srl_error(SRL_EFORMAT,
                     "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", ps->file,
                     name, (unsigned long long)off[0], (unsigned long long)off[1]);
  if (off[1] > ps->buf_size)
    return srl_error(SRL_EFORMAT,
                     "%s: tensor '%s': data_offsets [%llu, %llu] out of bounds of the %zu-byte "
                     "data buffer (truncated file?)",
                     ps->file, name, (unsigned long long)off[0], (unsigned long long)off[1],
                     ps->buf_size);
  uint64_t need = dtype_table[t.dtype].size, zero = 0;
  for (int i = 0; i < t.ndim; i++) zero |= t.shape[i] == 0;
  for (int i = 0; i < t.ndim && !zero; i++)
    if (__builtin_mul_overflow(need, (uint64_t)t.shape[i], &need))
      return srl_error(SRL_EFORMAT, "%s: tensor '%s': shape %s overflows a 64-bit byte count",
                       ps->file, name, fmt_shape(shp, sizeof shp, t.shape, t.ndim));
  if (zero) need = 0;
  if (need != off[1] - off[0])
    return srl_error(
        SRL_EFORMAT,
        "%s: tensor '%s': size mismatch: data_offsets [%llu, %llu] hold %llu bytes but "
        "%s shape %s needs %llu",
        ps->file, name, (unsigned long long)off[0], (unsigned long long)off[1],
        (unsigned long long)(off[1] - off[0]), dtype_table[t.dtype].name,
        fmt_shape(shp, sizeof shp, t.shape, t.ndim), (unsigned long long)need);
  t.nbytes = (size_t)need;
  t.data = ps->buf + off[0];

  // append to the table (the index bound makes a collision impossible; check anyway)
  if ((char *)(ps->tensors + ps->nt + 1) > (char *)(ps->meta_end - 2 * ps->nm))
    return perr(ps, "more entries than the header length allows");
  ps->tensors[ps->nt++] = t;
  return 0;
}


// the "__metadata__" object: string keys to string values
static int parse_metadata(st_parser *ps) {
  if (ps->seen_meta++) return perr(ps, "duplicate key '__metadata__'");
  skip_ws(ps);
  if (peek(ps) != '{') return perr(ps, "'__metadata__' must be an object of strings");
  ps->p++;
  if (empty_container(ps, '}')) return 0;
  for (int more = 1; more;) {
    char *key, *value;
    SRL_TRY(parse_string(ps, &key, "a metadata key"));
    SRL_TRY(expect(ps, ':', "after a metadata key"));
    skip_ws(ps);
    if (peek(ps) != '"') return perr(ps, "metadata '%s': value must be a string", key);
    SRL_TRY(parse_string(ps, &value, "a metadata value"));
    if ((char *)(ps->tensors + ps->nt) > (char *)(ps->meta_end - 2 * (ps->nm + 1)))
      return perr(ps, "more entries than the header length allows");
    ps->nm++;
    ps->meta_end[-2 * ps->nm] = key;
    ps->meta_end[-2 * ps->nm + 1] = value;
    more = next_item(ps, '}', "in '__metadata__'");
    if (more < 0) return more;
  }
  return 0;
}


// the header: one object of tensor entries and at most one "__metadata__", then only whitespace
static int parse_header(st_parser *ps) {
  if (peek(ps) != '{') {
    char tmp[8];
    return perr(ps, "the header must start with '{', found %s", seen(ps, tmp));
  }
  ps->p++;
  if (!empty_container(ps, '}')) {
    for (int more = 1; more;) {
      char *key;
      SRL_TRY(parse_string(ps, &key, "a tensor name"));
      SRL_TRY(expect(ps, ':', "after a tensor name"));
      if (strcmp(key, "__metadata__") == 0)
        SRL_TRY(parse_metadata(ps));
      else
        SRL_TRY(parse_tensor(ps, key));
      more = next_item(ps, '}', "after a header entry");
      if (more < 0) return more;
    }
  }
  skip_ws(ps);
  if (ps->p != ps->end) return perr(ps, "trailing garbage after the header object");
  return 0;
}


static int cmp_tensor_name(const void *a, const void *b) {
  return strcmp(((const srl_st_tensor *)a)->name, ((const srl_st_tensor *)b)->name);
}


static int cmp_tensor_offset(const void *a, const void *b) {
  const srl_st_tensor *x = a, *y = b;
  const unsigned char *px = x->data, *py = y->data;
  if (px != py) return px < py ? -1 : 1;
  return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}


static int cmp_meta_key(const void *a, const void *b) {
  return strcmp(((const char *const *)a)[0], ((const char *const *)b)[0]);
}


// names unique, byte ranges tiling the buffer with no overlap and no hole; leaves the table
// sorted by name and the metadata by key
static int check_layout(st_parser *ps) {
  srl_st_tensor *t = ps->tensors;
  int n = ps->nt;
  qsort(t, (size_t)n, sizeof *t, cmp_tensor_name);
  for (int i = 1; i < n; i++)
    if (strcmp(t[i - 1].name, t[i].name) == 0)
      return srl_error(SRL_EFORMAT, "%s: duplicate tensor name '%s'", ps->file, t[i].name);

  qsort(t, (size_t)n, sizeof *t, cmp_tensor_offset);
  size_t cursor = 0;
  for (int i = 0; i < n; i++) {
    size_t begin = (size_t)((const unsigned char *)t[i].data - ps->buf);
    if (begin < cursor)
      return srl_error(SRL_EFORMAT, "%s: tensors '%s' [%zu, %zu) and '%s' [%zu, %zu) overlap",
                       ps->file, t[i - 1].name, cursor - t[i - 1].nbytes, cursor, t[i].name, begin,
                       begin + t[i].nbytes);
    if (begin > cursor)
      return srl_error(SRL_EFORMAT,
                       "%s: hole in the data buffer: bytes [%zu, %zu) before tensor '%s' belong "
                       "to no tensor",
                       ps->file, cursor, begin, t[i].name);
    cursor = begin + t[i].nbytes;
  }
  if (cursor != ps->buf_size)
    return srl_error(SRL_EFORMAT,
                     "%s: hole in the data buffer: bytes [%zu, %zu) at its end belong to no tensor",
                     ps->file, cursor, ps->buf_size);
  qsort(t, (size_t)n, sizeof *t, cmp_tensor_name);

  const char **meta = ps->meta_end - 2 * ps->nm;
  qsort(meta, (size_t)ps->nm, 2 * sizeof *meta, cmp_meta_key);
  for (int i = 1; i < ps->nm; i++)
    if (strcmp(meta[2 * i - 2], meta[2 * i]) == 0)
      return srl_error(SRL_EFORMAT, "%s: duplicate metadata key '%s'", ps->file, meta[2 * i]);
  return 0;
}


//---- opening ----------------------------------------------------------------------------------

static uint64_t read_u64le(const unsigned char *b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
  return v;
}


// the header size against the file size; returns the index bytes to reserve
static int check_header_size(const char *name, const unsigned char prefix[8], size_t size,
                             size_t *index_bytes) {
  if (size < 8)
    return srl_error(SRL_EFORMAT,
                     "%s: file is %zu bytes, too short for the 8-byte header size (truncated?)",
                     name, size);
  uint64_t n = read_u64le(prefix);
  if (n > SRL_ST_MAX_HEADER)
    return srl_error(SRL_EFORMAT, "%s: header size %llu exceeds the limit of %llu bytes", name,
                     (unsigned long long)n, (unsigned long long)SRL_ST_MAX_HEADER);
  if (n > size - 8)
    return srl_error(SRL_EFORMAT,
                     "%s: header size %llu is larger than the %zu bytes after it (truncated file?)",
                     name, (unsigned long long)n, size - 8);
  if (n < 2)
    return srl_error(SRL_EFORMAT, "%s: header size %llu is too small", name, (unsigned long long)n);
  *index_bytes = srl_align_up(3 * (size_t)n + 256, 16);  // ends pointer-aligned
  return 0;
}


// one block: [object | name | file bytes | index]
static srl_st_file *alloc_file(const char *name, size_t size, size_t index_bytes) {
  size_t total = sizeof(srl_st_file), name_len = strlen(name) + 1;
  if (size > SIZE_MAX / 2 - name_len - index_bytes - 4 * SRL_ALIGN) {
    srl_error(SRL_ENOMEM, "%s: file of %zu bytes is too large to load", name, size);
    return NULL;
  }
  size_t off_name = srl_layout_add(&total, name_len);
  size_t off_bytes = srl_layout_add(&total, size);
  size_t off_index = srl_layout_add(&total, index_bytes);
  char *block = srl_malloc(total);
  if (!block) {
    srl_error_context(SRL_ENOMEM, "%s: ", name);
    return NULL;
  }
  srl_st_file *f = (srl_st_file *)block;
  memset(f, 0, sizeof *f);
  memcpy(block + off_name, name, name_len);
  f->name = block + off_name;
  f->bytes = (unsigned char *)block + off_bytes;
  f->size = size;
  f->tensors = (srl_st_tensor *)(block + off_index);
  f->meta = (const char **)(block + off_index + index_bytes);
  return f;
}


// parse and validate the file bytes already in f
static int load(srl_st_file *f) {
  unsigned char *bytes = (unsigned char *)f->bytes;
  size_t n = (size_t)read_u64le(bytes);
  st_parser ps = {
      .base = (char *)bytes + 8,
      .p = (char *)bytes + 8,
      .end = (char *)bytes + 8 + n,
      .file = f->name,
      .buf = bytes + 8 + n,
      .buf_size = f->size - 8 - n,
      .tensors = f->tensors,
      .meta_end = f->meta,
  };
  SRL_TRY(parse_header(&ps));
  SRL_TRY(check_layout(&ps));
  f->ntensors = ps.nt;
  f->nmeta = ps.nm;
  f->meta = ps.meta_end - 2 * ps.nm;
  return 0;
}


int srl_st_open_memory(srl_st_file **out, const void *buf, size_t size, const char *name) {
  size_t index_bytes = 0;
  unsigned char prefix[8] = {0};
  if (!out) return srl_error(SRL_EINVAL, "srl_st_open_memory: out is NULL");
  *out = NULL;
  if (!name) name = "<memory>";
  if (!buf && size) return srl_error(SRL_EINVAL, "%s: buffer is NULL", name);
  if (size >= 8) memcpy(prefix, buf, 8);
  SRL_TRY(check_header_size(name, prefix, size, &index_bytes));
  srl_st_file *f = alloc_file(name, size, index_bytes);
  if (!f) return SRL_ENOMEM;
  memcpy((void *)f->bytes, buf, size);
  int rc = load(f);
  if (rc < 0) {
    srl_free(f);
    return rc;
  }
  *out = f;
  return 0;
}


// pread until n bytes or end of file; returns bytes read or -1
static ssize_t read_at(int fd, void *dst, size_t n, off_t off) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, (char *)dst + got, n - got, off + (off_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}


int srl_st_open(srl_st_file **out, const char *path) {
  if (!out) return srl_error(SRL_EINVAL, "srl_st_open: out is NULL");
  *out = NULL;
  if (!path) return srl_error(SRL_EINVAL, "srl_st_open: path is NULL");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return srl_error(SRL_EIO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  int rc = 0;
  srl_st_file *f = NULL;
  unsigned char prefix[8] = {0};
  size_t size, index_bytes = 0;
  ssize_t got;
  if (fstat(fd, &st) != 0) {
    rc = srl_error(SRL_EIO, "%s: cannot stat: %s", path, strerror(errno));
    goto done;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = srl_error(SRL_EIO, "%s: not a regular file", path);
    goto done;
  }
  if ((uint64_t)st.st_size > SIZE_MAX / 2) {
    rc = srl_error(SRL_ENOMEM, "%s: file of %lld bytes is too large to load", path,
                   (long long)st.st_size);
    goto done;
  }
  size = (size_t)st.st_size;
  if (size >= 8 && read_at(fd, prefix, 8, 0) != 8) {
    rc = srl_error(SRL_EIO, "%s: cannot read: %s", path, errno ? strerror(errno) : "short read");
    goto done;
  }
  if ((rc = check_header_size(path, prefix, size, &index_bytes)) < 0) goto done;
  if (!(f = alloc_file(path, size, index_bytes))) {
    rc = SRL_ENOMEM;
    goto done;
  }
  // the whole file in one read into the block
  errno = 0;
  got = read_at(fd, (void *)f->bytes, size, 0);
  if (got != (ssize_t)size) {
    rc = srl_error(SRL_EIO, "%s: cannot read %zu bytes: %s", path, size,
                   got < 0 ? strerror(errno) : "file shrank while reading");
    goto done;
  }
  rc = load(f);
done:
  close(fd);
  if (rc < 0) {
    srl_free(f);
    return rc;
  }
  *out = f;
  return 0;
}


void srl_st_close(srl_st_file *f) {
  srl_free(f);
}


//---- lookup -----------------------------------------------------------------------------------

int srl_st_count(const srl_st_file *f) {
  return f ? f->ntensors : 0;
}


const srl_st_tensor *srl_st_get(const srl_st_file *f, int i) {
  return f && i >= 0 && i < f->ntensors ? &f->tensors[i] : NULL;
}


const srl_st_tensor *srl_st_find(const srl_st_file *f, const char *name) {
  if (!f || !name) return NULL;
  srl_st_tensor key = {.name = name};
  return bsearch(&key, f->tensors, (size_t)f->ntensors, sizeof key, cmp_tensor_name);
}


const char *srl_st_metadata(const srl_st_file *f, const char *key) {
  if (!f || !key) return NULL;
  const char *k[2] = {key, NULL};
  const char **hit = bsearch(k, f->meta, (size_t)f->nmeta, 2 * sizeof *k, cmp_meta_key);
  return hit ? hit[1] : NULL;
}


int srl_st_metadata_count(const srl_st_file *f) {
  return f ? f->nmeta : 0;
}


int srl_st_metadata_at(const srl_st_file *f, int i, const char **key, const char **value) {
  if (!f || i < 0 || i >= f->nmeta)
    return srl_error(SRL_EINVAL, "metadata index %d out of range [0, %d)", i, f ? f->nmeta : 0);
  if (key) *key = f->meta[2 * i];
  if (value) *value = f->meta[2 * i + 1];
  return 0;
}


int srl_st_read_f32(const srl_st_file *f, const char *name, float *dst, size_t n) {
  if (!f || !name) return srl_error(SRL_EINVAL, "srl_st_read_f32: file or name is NULL");
  const srl_st_tensor *t = srl_st_find(f, name);
  if (!t) return srl_error(SRL_ENOTFOUND, "%s: no tensor named '%s'", f->name, name);
  size_t count = srl_st_numel(t);
  if (count != n) {
    char shp[160];
    return srl_error(SRL_EINVAL,
                     "%s: tensor '%s' has shape %s (%zu elements) but %zu were expected", f->name,
                     name, fmt_shape(shp, sizeof shp, t->shape, t->ndim), count, n);
  }
  if (n && !dst)
    return srl_error(SRL_EINVAL, "%s: tensor '%s': destination is NULL", f->name, name);
  // element by element through memcpy: the data may be unaligned
  const unsigned char *s = t->data;
  switch (t->dtype) {
    case SRL_DTYPE_F32:
      if (n) memcpy(dst, s, n * sizeof(float));
      break;
    case SRL_DTYPE_F16:
    case SRL_DTYPE_BF16:
      for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = t->dtype == SRL_DTYPE_F16 ? srl_st_f16_to_f32(h) : srl_st_bf16_to_f32(h);
      }
      break;
    case SRL_DTYPE_I64:
      for (size_t i = 0; i < n; i++) {
        int64_t v;
        memcpy(&v, s + 8 * i, 8);
        dst[i] = (float)v;
      }
      break;
    case SRL_DTYPE_I32:
      for (size_t i = 0; i < n; i++) {
        int32_t v;
        memcpy(&v, s + 4 * i, 4);
        dst[i] = (float)v;
      }
      break;
    case SRL_DTYPE_U8:
      for (size_t i = 0; i < n; i++) dst[i] = (float)s[i];
      break;
    case SRL_DTYPE_BOOL:
      for (size_t i = 0; i < n; i++) dst[i] = s[i] ? 1.0f : 0.0f;
      break;
  }
  return 0;
}


//---- writer -----------------------------------------------------------------------------------

typedef struct st_wtensor {
  size_t name;  // offset into the string pool
  srl_dtype dtype;
  int ndim;
  int64_t shape[SRL_ST_MAX_DIMS];
  size_t nbytes;
  const void *data;
} st_wtensor;

struct srl_st_writer {
  st_wtensor *tensors;  // (cap_tensors)
  size_t *meta;         // (cap_meta, 2) key and value offsets into the pool
  char *pool;           // (cap_pool) NUL-terminated names, keys and values
  size_t ntensors, cap_tensors, nmeta, cap_meta, pool_used, cap_pool;
};


int srl_st_writer_create(srl_st_writer **out) {
  if (!out) return srl_error(SRL_EINVAL, "srl_st_writer_create: out is NULL");
  *out = srl_calloc(sizeof **out);
  return *out ? 0 : SRL_ENOMEM;
}


void srl_st_writer_destroy(srl_st_writer *w) {
  if (!w) return;
  srl_free(w->tensors);
  srl_free(w->meta);
  srl_free(w->pool);
  srl_free(w);
}


// grow an array to hold `need` elements, doubling (the writer is built once per checkpoint)
static int grow(void **arr, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t nc = *cap ? *cap : 16;
  while (nc < need) {
    if (nc > SIZE_MAX / 2 / elem) return srl_error(SRL_ENOMEM, "safetensors writer: too large");
    nc *= 2;
  }
  void *p = srl_malloc(nc * elem);
  if (!p) return SRL_ENOMEM;
  if (*arr) memcpy(p, *arr, *cap * elem);
  srl_free(*arr);
  *arr = p;
  *cap = nc;
  return 0;
}


static int pool_add(srl_st_writer *w, const char *s, size_t *off) {
  size_t len = strlen(s) + 1;
  SRL_TRY(grow((void **)&w->pool, &w->cap_pool, w->pool_used + len, 1));
  memcpy(w->pool + w->pool_used, s, len);
  *off = w->pool_used;
  w->pool_used += len;
  return 0;
}


static int valid_utf8(const char *s) {
  const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
  while (p < end) {
    int n = utf8_len(p, end);
    if (!n) return 0;
    p += n;
  }
  return 1;
}


int srl_st_add(srl_st_writer *w, const char *name, srl_dtype dtype, int ndim, const int64_t *shape,
               const void *data) {
  if (!w || !name) return srl_error(SRL_EINVAL, "srl_st_add: writer or name is NULL");
  if (!name[0]) return srl_error(SRL_EINVAL, "srl_st_add: empty tensor name");
  if (!valid_utf8(name)) return srl_error(SRL_EINVAL, "srl_st_add: name is not valid UTF-8");
  if (strcmp(name, "__metadata__") == 0)
    return srl_error(SRL_EINVAL, "srl_st_add: '__metadata__' is reserved");
  if (srl_st_dtype_size(dtype) == 0)
    return srl_error(SRL_EINVAL, "srl_st_add: tensor '%s': invalid dtype %d", name, (int)dtype);
  if (ndim < 0 || ndim > SRL_ST_MAX_DIMS || (ndim && !shape))
    return srl_error(SRL_EINVAL, "srl_st_add: tensor '%s': %d dimensions (0 to %d with a shape)",
                     name, ndim, SRL_ST_MAX_DIMS);
  // bytes = dtype size x elements, without overflow
  size_t nbytes = srl_st_dtype_size(dtype);
  int zero = 0;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return srl_error(SRL_EINVAL, "srl_st_add: tensor '%s': dimension %d is %lld", name, i,
                       (long long)shape[i]);
    zero |= shape[i] == 0;
  }
  for (int i = 0; i < ndim && !zero; i++)
    if ((uint64_t)shape[i] > SIZE_MAX || __builtin_mul_overflow(nbytes, (size_t)shape[i], &nbytes))
      return srl_error(SRL_ERANGE, "srl_st_add: tensor '%s': shape overflows the byte count", name);
  if (zero) nbytes = 0;
  if (nbytes && !data) return srl_error(SRL_EINVAL, "srl_st_add: tensor '%s': data is NULL", name);
  for (size_t i = 0; i < w->ntensors; i++)
    if (strcmp(w->pool + w->tensors[i].name, name) == 0)
      return srl_error(SRL_EINVAL, "srl_st_add: duplicate tensor name '%s'", name);

  SRL_TRY(grow((void **)&w->tensors, &w->cap_tensors, w->ntensors + 1, sizeof(st_wtensor)));
  st_wtensor t = {.dtype = dtype, .ndim = ndim, .nbytes = nbytes, .data = data};
  for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
  SRL_TRY(pool_add(w, name, &t.name));
  w->tensors[w->ntensors++] = t;
  return 0;
}


int srl_st_add_f32(srl_st_writer *w, const char *name, const float *data, int ndim, ...) {
  int64_t shape[SRL_ST_MAX_DIMS] = {0};
  if (ndim < 0 || ndim > SRL_ST_MAX_DIMS)
    return srl_error(SRL_EINVAL, "srl_st_add_f32: tensor '%s': %d dimensions (0 to %d)",
                     name ? name : "?", ndim, SRL_ST_MAX_DIMS);
  va_list ap;
  va_start(ap, ndim);
  for (int i = 0; i < ndim; i++) shape[i] = va_arg(ap, int);
  va_end(ap);
  return srl_st_add(w, name, SRL_DTYPE_F32, ndim, shape, data);
}


int srl_st_set_metadata(srl_st_writer *w, const char *key, const char *value) {
  if (!w || !key || !value) return srl_error(SRL_EINVAL, "srl_st_set_metadata: NULL argument");
  if (!valid_utf8(key) || !valid_utf8(value))
    return srl_error(SRL_EINVAL, "srl_st_set_metadata: '%s' is not valid UTF-8", key);
  size_t voff, koff;
  for (size_t i = 0; i < w->nmeta; i++)
    if (strcmp(w->pool + w->meta[2 * i], key) == 0) {
      SRL_TRY(pool_add(w, value, &voff));
      w->meta[2 * i + 1] = voff;
      return 0;
    }
  SRL_TRY(grow((void **)&w->meta, &w->cap_meta, w->nmeta + 1, 2 * sizeof(size_t)));
  SRL_TRY(pool_add(w, key, &koff));
  SRL_TRY(pool_add(w, value, &voff));
  w->meta[2 * w->nmeta] = koff;
  w->meta[2 * w->nmeta + 1] = voff;
  w->nmeta++;
  return 0;
}


// output that only measures when buf is NULL
typedef struct st_sink {
  char *buf;
  size_t len;
} st_sink;


static void put(st_sink *o, const char *s, size_t n) {
  if (o->buf) memcpy(o->buf + o->len, s, n);
  o->len += n;
}


static void puts_(st_sink *o, const char *s) {
  put(o, s, strlen(s));
}


// a JSON string: quotes, backslashes and control characters escaped, UTF-8 kept as is
static void put_json_string(st_sink *o, const char *s) {
  put(o, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[8];
    if (*p == '"' || *p == '\\') {
      esc[0] = '\\';
      esc[1] = (char)*p;
      put(o, esc, 2);
    } else if (*p < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", *p);
      put(o, esc, 6);
    } else {
      put(o, (const char *)p, 1);
    }
  }
  put(o, "\"", 1);
}


typedef struct st_order {
  const char *name;
  size_t size;  // dtype size
  size_t index;
} st_order;


// largest dtype first keeps every tensor aligned; then by name
static int cmp_order(const void *a, const void *b) {
  const st_order *x = a, *y = b;
  if (x->size != y->size) return x->size > y->size ? -1 : 1;
  return strcmp(x->name, y->name);
}


static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}


// {"__metadata__":{...},"name":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},...}
static void emit_header(st_sink *o, const srl_st_writer *w, const st_order *order,
                        const char **meta) {
  char num[64];
  int first = 1;
  put(o, "{", 1);
  if (w->nmeta) {
    puts_(o, "\"__metadata__\":{");
    for (size_t i = 0; i < w->nmeta; i++) {
      if (i) put(o, ",", 1);
      put_json_string(o, meta[2 * i]);
      put(o, ":", 1);
      put_json_string(o, meta[2 * i + 1]);
    }
    put(o, "}", 1);
    first = 0;
  }
  size_t offset = 0;
  for (size_t i = 0; i < w->ntensors; i++) {
    const st_wtensor *t = &w->tensors[order[i].index];
    if (!first) put(o, ",", 1);
    first = 0;
    put_json_string(o, order[i].name);
    puts_(o, ":{\"dtype\":\"");
    puts_(o, srl_st_dtype_name(t->dtype));
    puts_(o, "\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
      snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t->shape[d]);
      puts_(o, num);
    }
    snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", offset, offset + t->nbytes);
    puts_(o, num);
    offset += t->nbytes;
  }
  put(o, "}", 1);
}


// write everything to an open stream; returns the failing step or NULL
static const char *write_all(FILE *fp, const char *head, size_t head_len, const srl_st_writer *w,
                             const st_order *order) {
  if (fwrite(head, 1, head_len, fp) != head_len) return "write";
  for (size_t i = 0; i < w->ntensors; i++) {
    const st_wtensor *t = &w->tensors[order[i].index];
    if (t->nbytes && fwrite(t->data, 1, t->nbytes, fp) != t->nbytes) return "write";
  }
  if (fflush(fp) != 0) return "flush";
  if (fsync(fileno(fp)) != 0) return "fsync";
  return NULL;
}


// make the rename durable: sync the directory holding path (best effort)
static void sync_parent_dir(const char *path, char *scratch) {
  const char *slash = strrchr(path, '/');
  if (slash == path)
    strcpy(scratch, "/");
  else if (slash) {
    memcpy(scratch, path, (size_t)(slash - path));
    scratch[slash - path] = '\0';
  } else {
    strcpy(scratch, ".");
  }
  int fd = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}


int srl_st_write(srl_st_writer *w, const char *path) {
  if (!w || !path || !path[0]) return srl_error(SRL_EINVAL, "srl_st_write: writer or path missing");

  // total data size, checked against overflow
  size_t data_bytes = 0;
  for (size_t i = 0; i < w->ntensors; i++)
    if (__builtin_add_overflow(data_bytes, w->tensors[i].nbytes, &data_bytes))
      return srl_error(SRL_ERANGE, "%s: tensors exceed the addressable size", path);

  // one block: [order | metadata pointers | 8-byte size + padded header | tmp path]
  size_t path_len = strlen(path), total = 0;
  size_t off_order = srl_layout_add(&total, w->ntensors * sizeof(st_order));
  size_t off_meta = srl_layout_add(&total, w->nmeta * 2 * sizeof(char *));
  char *block = NULL;
  st_order *order = NULL;
  const char **meta = NULL;

  // sort tensors and metadata with names resolved from the pool
  block = srl_malloc(total ? total : 1);
  if (!block) return srl_error_context(SRL_ENOMEM, "%s: ", path);
  order = (st_order *)(block + off_order);
  meta = (const char **)(block + off_meta);
  for (size_t i = 0; i < w->ntensors; i++)
    order[i] = (st_order){w->pool + w->tensors[i].name, srl_st_dtype_size(w->tensors[i].dtype), i};
  for (size_t i = 0; i < w->nmeta; i++) {
    meta[2 * i] = w->pool + w->meta[2 * i];
    meta[2 * i + 1] = w->pool + w->meta[2 * i + 1];
  }
  qsort(order, w->ntensors, sizeof *order, cmp_order);
  qsort(meta, w->nmeta, 2 * sizeof *meta, cmp_str_ptr);

  // measure, then emit the header padded with spaces to a multiple of 8
  st_sink o = {NULL, 0};
  emit_header(&o, w, order, meta);
  size_t head_len = 8 + srl_align_up(o.len, 8);
  char *head = srl_malloc(head_len + path_len + 8);
  if (!head) {
    srl_free(block);
    return srl_error_context(SRL_ENOMEM, "%s: ", path);
  }
  char *tmp = head + head_len;
  uint64_t n = head_len - 8;
  for (int i = 0; i < 8; i++) head[i] = (char)(n >> (8 * i));
  o = (st_sink){head + 8, 0};
  emit_header(&o, w, order, meta);
  memset(head + 8 + o.len, ' ', head_len - 8 - o.len);
  snprintf(tmp, path_len + 8, "%s.tmp", path);

  // path.tmp, written, flushed, synced, closed, renamed over path
  int rc = 0;
  FILE *fp = fopen(tmp, "wb");
  if (!fp) {
    rc = srl_error(SRL_EIO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
  } else {
    const char *step = write_all(fp, head, head_len, w, order);
    int err = errno;
    if (fclose(fp) != 0 && !step) {
      step = "close";
      err = errno;
    }
    if (!step && rename(tmp, path) != 0) {
      step = "rename";
      err = errno;
    }
    if (step) {
      remove(tmp);
      rc = srl_error(SRL_EIO, "%s: %s of %s failed: %s; the previous file is unchanged", path, step,
                     tmp, strerror(err));
    } else {
      sync_parent_dir(path, tmp);
    }
  }
  srl_free(head);
  srl_free(block);
  return rc;
}

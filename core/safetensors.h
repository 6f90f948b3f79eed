// safetensors.h: checkpoint and weight files in the safetensors format.
//
// Layout (docs/formats.md): an 8-byte little-endian u64 N, N bytes of UTF-8 JSON naming each
// tensor's dtype, shape and byte range [begin, end) in the buffer that follows, plus an optional
// "__metadata__" map of strings. Reading is hardened: the whole file is read into one block and
// validated (header, dtypes, shapes, byte ranges that tile the buffer exactly) before anything is
// returned. Writing goes to path.tmp, flushed and synced, then renamed over path, so a crash or a
// full disk never leaves a half-written checkpoint.
#ifndef SRL_SAFETENSORS_H
#define SRL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum srl_dtype {
  SRL_DTYPE_F32,
  SRL_DTYPE_F16,
  SRL_DTYPE_BF16,
  SRL_DTYPE_I64,
  SRL_DTYPE_I32,
  SRL_DTYPE_U8,
  SRL_DTYPE_BOOL
} srl_dtype;

#define SRL_ST_MAX_DIMS 8
#define SRL_ST_MAX_HEADER ((uint64_t)100000000)  // header size cap, as the reference parser

typedef struct srl_st_tensor {
  const char *name;
  srl_dtype dtype;
  int ndim;                        // 0 (a scalar) to SRL_ST_MAX_DIMS
  int64_t shape[SRL_ST_MAX_DIMS];  // (ndim), row-major; unused entries are 0
  size_t nbytes;                   // dtype size x elements
  const void *data;                // points into the loaded file's buffer; little-endian, and
                                   // aligned to the dtype only if the writer aligned it (this
                                   // library's writer does); srl_st_read_f32 copies safely
} srl_st_tensor;

//---- reading ----------------------------------------------------------------------------------

typedef struct srl_st_file srl_st_file;  // opaque: a whole file read and validated

// Read and validate a file; refuses anything malformed with SRL_EFORMAT (SRL_EUNSUPPORTED for a
// valid safetensors dtype this library does not handle, SRL_EIO when the file cannot be read),
// a message naming the file, the tensor and the problem, and *out = NULL.
int srl_st_open(srl_st_file **out, const char *path);

// The same from bytes in memory; the bytes are copied, so buf may be freed afterwards. name is
// used in messages (NULL: "<memory>").
int srl_st_open_memory(srl_st_file **out, const void *buf, size_t size, const char *name);
void srl_st_close(srl_st_file *f);

// Tensors are ordered by name (byte order of their UTF-8).
int srl_st_count(const srl_st_file *f);
const srl_st_tensor *srl_st_get(const srl_st_file *f, int i);              // NULL if out of range
const srl_st_tensor *srl_st_find(const srl_st_file *f, const char *name);  // NULL if absent

// Copy a tensor into float32 (F32 copied, F16/BF16 converted, ints converted), checking that it
// has exactly n elements; errors name the tensor and the shapes.
int srl_st_read_f32(const srl_st_file *f, const char *name, float *dst, size_t n);

// Metadata: value of a key, NULL if absent; keys are ordered by name for iteration.
const char *srl_st_metadata(const srl_st_file *f, const char *key);
int srl_st_metadata_count(const srl_st_file *f);
// the i-th key and value; SRL_EINVAL if i is out of range
int srl_st_metadata_at(const srl_st_file *f, int i, const char **key, const char **value);

//---- writing ----------------------------------------------------------------------------------

typedef struct srl_st_writer srl_st_writer;
int srl_st_writer_create(srl_st_writer **out);
void srl_st_writer_destroy(srl_st_writer *w);

// Add a tensor; data is referenced, not copied, and must stay valid until srl_st_write. The name
// is copied; it must be non-empty valid UTF-8, unique, and not "__metadata__".
int srl_st_add(srl_st_writer *w, const char *name, srl_dtype dtype, int ndim, const int64_t *shape,
               const void *data);
// An F32 tensor with its shape given as ndim int arguments: srl_st_add_f32(w, "w", p, 2, 64, 8).
int srl_st_add_f32(srl_st_writer *w, const char *name, const float *data, int ndim, ...);

// Set a metadata string (UTF-8); setting a key again replaces its value.
int srl_st_set_metadata(srl_st_writer *w, const char *key, const char *value);

// Write to path atomically: path.tmp, fflush + fsync, rename over path. On any failure the
// temporary file is removed and a previous file at path is left as it was. Tensors are laid out
// by dtype size (largest first) then name, and the header is padded with spaces to a multiple of
// 8, so every tensor is aligned to its dtype within the file.
int srl_st_write(srl_st_writer *w, const char *path);

//---- dtypes and conversions -------------------------------------------------------------------

const char *srl_st_dtype_name(srl_dtype dtype);  // "F32", ...; "?" for a bad value
size_t srl_st_dtype_size(srl_dtype dtype);       // bytes per element; 0 for a bad value
size_t srl_st_numel(const srl_st_tensor *t);     // product of the shape (1 for a scalar)

// Exact widening conversions (subnormals, infinities and NaN payloads kept).
float srl_st_f16_to_f32(uint16_t h);
float srl_st_bf16_to_f32(uint16_t h);
// Narrowing with round-to-nearest-even; overflow gives infinity, NaN stays NaN.
uint16_t srl_st_f32_to_f16(float x);
uint16_t srl_st_f32_to_bf16(float x);

#ifdef __cplusplus
}
#endif
#endif  // SRL_SAFETENSORS_H

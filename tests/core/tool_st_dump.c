// tool_st_dump.c: print a safetensors file in a line format that the Python cross-check parses.
//
//   tensor <TAB> "name" <TAB> DTYPE <TAB> [d0,d1,...] <TAB> elements
//   values <TAB> hex bits of each element converted to float32 (8 hex digits, tab separated)
//   meta <TAB> "key" <TAB> "value"
// Strings are JSON string literals (so tabs and newlines inside them are escaped). Tensors come
// in the reader's order (by name), metadata by key. On a refused file the tool prints
// "error <TAB> SRL_E... <TAB> message" to stderr and exits 1.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/safetensors.h"


static void print_json_string(const char *s) {
  putchar('"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      printf("\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f)
      printf("\\u%04x", *p);
    else
      putchar(*p);
  }
  putchar('"');
}


int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s FILE.safetensors\n", argv[0]);
    return 2;
  }
  srl_st_file *f = NULL;
  int rc = srl_st_open(&f, argv[1]);
  if (rc < 0) {
    fprintf(stderr, "error\t%s\t%s\n", srl_errname(rc), srl_errmsg());
    return 1;
  }
  // each tensor: header line, then its values as float32 bit patterns
  for (int i = 0; i < srl_st_count(f); i++) {
    const srl_st_tensor *t = srl_st_get(f, i);
    size_t n = srl_st_numel(t);
    printf("tensor\t");
    print_json_string(t->name);
    printf("\t%s\t[", srl_st_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++) printf("%s%lld", d ? "," : "", (long long)t->shape[d]);
    printf("]\t%zu\n", n);
    float *v = malloc(n ? n * sizeof(float) : 1);
    if (!v) return 1;
    rc = srl_st_read_f32(f, t->name, v, n);
    if (rc < 0) {
      fprintf(stderr, "error\t%s\t%s\n", srl_errname(rc), srl_errmsg());
      return 1;
    }
    printf("values");
    for (size_t j = 0; j < n; j++) {
      uint32_t b;
      memcpy(&b, &v[j], 4);
      printf("\t%08x", b);
    }
    printf("\n");
    free(v);
  }
  // metadata
  for (int i = 0; i < srl_st_metadata_count(f); i++) {
    const char *k, *v;
    srl_st_metadata_at(f, i, &k, &v);
    printf("meta\t");
    print_json_string(k);
    putchar('\t');
    print_json_string(v);
    putchar('\n');
  }
  srl_st_close(f);
  return 0;
}

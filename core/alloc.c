// alloc.c: the aligned allocation hook and the scratch arena.
#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"


static void *default_malloc(size_t bytes, size_t align) {
  void *p = NULL;
  if (posix_memalign(&p, align, bytes ? bytes : align) != 0) return NULL;
  return p;
}

static srl_malloc_fn malloc_hook = default_malloc;
static srl_free_fn free_hook = free;


void srl_set_allocator(srl_malloc_fn m, srl_free_fn f) {
  malloc_hook = m ? m : default_malloc;
  free_hook = f ? f : free;
}


void *srl_malloc(size_t bytes) {
  void *p = malloc_hook(bytes, SRL_ALIGN);
  if (!p) srl_error(SRL_ENOMEM, "out of memory allocating %zu bytes", bytes);
  return p;
}


void *srl_calloc(size_t bytes) {
  void *p = srl_malloc(bytes);
  if (p) memset(p, 0, bytes);
  return p;
}


void srl_free(void *p) {
  if (p) free_hook(p);
}


//---- scratch arena ------------------------------------------------------------------------

int srl_arena_init(srl_arena *a, size_t size) {
  memset(a, 0, sizeof *a);
  a->base = srl_malloc(size);
  if (!a->base) return SRL_ENOMEM;
  a->size = size;
  return SRL_OK;
}


void srl_arena_free(srl_arena *a) {
  if (!a) return;
  srl_free(a->base);
  memset(a, 0, sizeof *a);
}


void *srl_arena_alloc(srl_arena *a, size_t bytes) {
  size_t off = srl_align_up(a->used, SRL_ALIGN);
  if (off + bytes > a->size) {
    srl_error(SRL_ENOMEM, "scratch arena exhausted: need %zu more bytes, %zu of %zu used", bytes,
              a->used, a->size);
    return NULL;
  }
  a->used = off + bytes;
  if (a->used > a->peak) a->peak = a->used;
  return a->base + off;
}

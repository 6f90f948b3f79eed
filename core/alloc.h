// alloc.h: the one allocation hook, one-block layouts, and a scratch arena.
//
// Objects size everything first, allocate one block, and point into it (parameters, gradients
// and optimizer moments mirror one layout). Temporary memory inside a step comes from an arena:
// mark, allocate, release to the mark. Nothing in a step or update loop calls malloc.
#ifndef SRL_ALLOC_H
#define SRL_ALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_ALIGN 64  // cache line and AVX-512 vector

// Allocate `bytes` aligned to SRL_ALIGN through the current hook; NULL (with srl_errmsg set)
// on failure. srl_calloc zeroes. srl_free(NULL) is a no-op.
void *srl_malloc(size_t bytes);
void *srl_calloc(size_t bytes);
void srl_free(void *p);

// Replace the allocator (both NULL restores the default aligned malloc).
typedef void *(*srl_malloc_fn)(size_t bytes, size_t align);
typedef void (*srl_free_fn)(void *p);
void srl_set_allocator(srl_malloc_fn m, srl_free_fn f);

// Round n up to a multiple of align (a power of two).
static inline size_t srl_align_up(size_t n, size_t align) {
  return (n + align - 1) & ~(align - 1);
}

// One-block layout: reserve `bytes` at the next aligned offset of *total and return that
// offset; after all reservations, allocate *total bytes once and add the offsets to the base.
static inline size_t srl_layout_add(size_t *total, size_t bytes) {
  size_t off = srl_align_up(*total, SRL_ALIGN);
  *total = off + bytes;
  return off;
}

//---- scratch arena ------------------------------------------------------------------------

typedef struct srl_arena {
  char *base;   // (size) bytes
  size_t size;  // capacity in bytes
  size_t used;  // bytes handed out now
  size_t peak;  // most bytes ever handed out, to size the arena for the next run
} srl_arena;

// Allocate an arena of `size` bytes; returns 0 or SRL_ENOMEM.
int srl_arena_init(srl_arena *a, size_t size);
void srl_arena_free(srl_arena *a);

// Mark the current position, allocate aligned scratch, release back to a mark.
// srl_arena_alloc returns NULL (with srl_errmsg set) when the arena is exhausted.
static inline size_t srl_arena_mark(const srl_arena *a) {
  return a->used;
}
void *srl_arena_alloc(srl_arena *a, size_t bytes);
static inline void srl_arena_release(srl_arena *a, size_t mark) {
  a->used = mark;
}

#ifdef __cplusplus
}
#endif
#endif  // SRL_ALLOC_H

// config_internal.h: what the config files share (config_schema.c, config.c the loader,
// config_write.c the writer): the bytes a field occupies, key helpers, the C-locale guard for
// number text, and the shortest round-trip formatting of doubles. Not part of the public API.
#ifndef SRL_CONFIG_INTERNAL_H
#define SRL_CONFIG_INTERNAL_H

#include <locale.h>
#include <stddef.h>

#include "core/config.h"

// bytes of a field's value area at fld->offset (lists: the element array, without the count)
static inline size_t srl__cfg_value_bytes(const srl_cfg_field *fld) {
  switch (fld->type) {
    case SRL_CFG_BOOL:
    case SRL_CFG_INT:
      return sizeof(int);
    case SRL_CFG_FLOAT:
      return sizeof(double);
    case SRL_CFG_STRING:
    case SRL_CFG_CHOICE:
      return fld->size;
    case SRL_CFG_INT_LIST:
      return fld->size * sizeof(int);
    case SRL_CFG_FLOAT_LIST:
      return fld->size * sizeof(double);
  }
  return 0;
}

static inline int srl__cfg_is_list(const srl_cfg_field *fld) {
  return fld->type == SRL_CFG_INT_LIST || fld->type == SRL_CFG_FLOAT_LIST;
}

static inline int srl__cfg_has_range(const srl_cfg_field *fld) {
  return fld->min <= fld->max;
}

// Switch the calling thread to the "C" numeric locale so strtod and printf use '.' whatever
// the program set; returns the locale to hand back to srl__cfg_locale_leave.
locale_t srl__cfg_locale_enter(void);
void srl__cfg_locale_leave(locale_t old);

// The fewest significant digits (1..17) that read back to the same double, in the C locale,
// positional for magnitudes in [1e-4, 1e16) and with an exponent otherwise ("0.0003", "1e-05").
// With float_look, integral values get ".0" so the text reads as a float ("25.0", "1e+20") and
// non-finite values are spelled the YAML way (".inf"); without, "inf". Returns the length
// written (cap must be at least 32).
int srl__cfg_fmt_double(double v, int float_look, char *buf, size_t cap);

// number of dot-separated components of a key
int srl__cfg_key_depth(const char *k);

// the token of choices "a|b|c" equal to text[0..n), or NULL
const char *srl__cfg_choice_find(const char *choices, const char *text, size_t n);

// The schema key or section nearest to the unknown dotted key path[0..n), by edit distance on
// the whole key and on its last component; written to out (SRL_CFG_KEY_MAX + 1 bytes). Returns
// 1, or 0 when nothing is close enough to suggest.
int srl__cfg_suggest_key(const srl_cfg_schema *s, const char *path, size_t n, char *out);

#endif  // SRL_CONFIG_INTERNAL_H

// config_schema.c: what the config loader and writer stand on: schema checks, key lookup and
// the nearest-key suggestion for unknown keys, and locale-proof number formatting.
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/config_internal.h"
#include "core/error.h"

//---- locale and number formatting shared with the writer ----------------------------------

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void c_locale_init(void) {
  c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}


locale_t srl__cfg_locale_enter(void) {
  pthread_once(&c_locale_once, c_locale_init);
  return c_locale ? uselocale(c_locale) : (locale_t)0;
}


void srl__cfg_locale_leave(locale_t old) {
  if (old) uselocale(old);
}


int srl__cfg_fmt_double(double v, int float_look, char *buf, size_t cap) {
  if (!isfinite(v)) {
    // YAML spells them .inf / .nan (the loader refuses them all the same)
    const char *t = isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
    if (float_look) t = isnan(v) ? ".nan" : v > 0 ? ".inf" : "-.inf";
    return snprintf(buf, cap, "%s", t);
  }
  // the fewest significant digits that read back bitwise (17 always do)
  locale_t old = srl__cfg_locale_enter();
  char tmp[48];
  int digits = 17;
  for (int p = 1; p <= 17; p++) {
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
    double back = strtod(tmp, NULL);
    if (memcmp(&back, &v, sizeof v) == 0) {
      digits = p;
      break;
    }
  }
  // positional between 1e-4 and 1e16 (as Python's repr), else with an exponent
  snprintf(tmp, sizeof tmp, "%.*e", digits - 1, v);
  int n, exp10 = atoi(strchr(tmp, 'e') + 1);
  if (exp10 >= -4 && exp10 < 16) {
    int decimals = digits - 1 - exp10;
    n = snprintf(buf, cap, "%.*f", decimals > 0 ? decimals : 0, v);
  } else {
    n = snprintf(buf, cap, "%s", tmp);
  }
  srl__cfg_locale_leave(old);
  if (n < 0 || (size_t)n >= cap) n = (int)cap - 1;
  if (float_look && !strpbrk(buf, ".e") && (size_t)n + 2 < cap) {
    memcpy(buf + n, ".0", 3);
    n += 2;
  }
  return n;
}


//---- schema checks ------------------------------------------------------------------------

// number of dot-separated components of a key
int srl__cfg_key_depth(const char *k) {
  int d = 1;
  for (; *k; k++) d += *k == '.';
  return d;
}

// a key is components of [A-Za-z0-9_-] (not starting with '-') joined by single dots
static int key_is_valid(const char *k) {
  size_t n = strlen(k);
  if (n == 0 || n > SRL_CFG_KEY_MAX) return 0;
  int comp_len = 0;
  for (const char *p = k; *p; p++) {
    char c = *p;
    if (c == '.') {
      if (comp_len == 0) return 0;
      comp_len = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || (c == '-' && comp_len > 0)) {
      comp_len++;
    } else {
      return 0;
    }
  }
  return comp_len > 0;
}

// the choice token of "a|b|c" equal to text[0..n), or NULL
const char *srl__cfg_choice_find(const char *choices, const char *text, size_t n) {
  const char *p = choices;
  while (*p) {
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    if (len == n && memcmp(p, text, n) == 0) return p;
    if (!bar) break;
    p = bar + 1;
  }
  return NULL;
}

static size_t type_align(const srl_cfg_field *fld) {
  switch (fld->type) {
    case SRL_CFG_BOOL:
    case SRL_CFG_INT:
    case SRL_CFG_INT_LIST:
      return _Alignof(int);
    case SRL_CFG_FLOAT:
    case SRL_CFG_FLOAT_LIST:
      return _Alignof(double);
    default:
      return 1;
  }
}

static int ranges_overlap(size_t a, size_t an, size_t b, size_t bn) {
  return a < b + bn && b < a + an;
}


int srl_config_check_schema(const srl_cfg_schema *s) {
  if (!s) return srl_error(SRL_EINVAL, "config: schema is NULL");
  const char *name = s->name ? s->name : "?";
  if (s->n_fields < 0 || (s->n_fields > 0 && !s->fields))
    return srl_error(SRL_EINVAL, "schema '%s': %d fields but no table", name, s->n_fields);
  for (int i = 0; i < s->n_fields; i++) {
    const srl_cfg_field *f = &s->fields[i];
    if (!f->key || !key_is_valid(f->key))
      return srl_error(SRL_EINVAL, "schema '%s': field %d has an invalid key '%s'", name, i,
                       f->key ? f->key : "(null)");
    if ((unsigned)f->type > SRL_CFG_FLOAT_LIST)
      return srl_error(SRL_EINVAL, "schema '%s': '%s' has an unknown type %d", name, f->key,
                       (int)f->type);
    if ((f->type == SRL_CFG_STRING || f->type == SRL_CFG_CHOICE || srl__cfg_is_list(f)) &&
        (f->size == 0 || f->size > (1u << 24)))
      return srl_error(SRL_EINVAL, "schema '%s': '%s' has size %zu", name, f->key, f->size);
    if (f->offset % type_align(f) || (srl__cfg_is_list(f) && f->count_offset % _Alignof(int)))
      return srl_error(SRL_EINVAL, "schema '%s': '%s' is misaligned", name, f->key);
    if (f->type == SRL_CFG_CHOICE) {
      // choices: non-empty tokens, each short enough for the array
      if (!f->choices || !f->choices[0])
        return srl_error(SRL_EINVAL, "schema '%s': choice '%s' has no choices", name, f->key);
      const char *p = f->choices;
      for (;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == 0 || len >= f->size)
          return srl_error(SRL_EINVAL, "schema '%s': choice '%s' has a bad choice in '%s'", name,
                           f->key, f->choices);
        if (!bar) break;
        p = bar + 1;
      }
    }
    if (srl__cfg_has_range(f) && (isnan(f->min) || isnan(f->max)))
      return srl_error(SRL_EINVAL, "schema '%s': '%s' has a NaN bound", name, f->key);
    // pairs: same key, a key that is also a section, members sharing bytes
    size_t klen = strlen(f->key);
    size_t fr[2][2] = {{f->offset, srl__cfg_value_bytes(f)}, {f->count_offset, sizeof(int)}};
    int fn = srl__cfg_is_list(f) ? 2 : 1;
    for (int j = 0; j < i; j++) {
      const srl_cfg_field *g = &s->fields[j];
      if (g->key[0] == f->key[0]) {  // keys with different first letters cannot clash
        size_t glen = strlen(g->key);
        if (klen == glen && memcmp(f->key, g->key, klen) == 0)
          return srl_error(SRL_EINVAL, "schema '%s': key '%s' appears twice", name, f->key);
        const char *lng = klen > glen ? f->key : g->key, *sht = klen > glen ? g->key : f->key;
        size_t sn = klen > glen ? glen : klen;
        if (lng[sn] == '.' && memcmp(lng, sht, sn) == 0)
          return srl_error(SRL_EINVAL, "schema '%s': '%s' is both a value and a section of '%s'",
                           name, sht, lng);
      }
      size_t gr[2][2] = {{g->offset, srl__cfg_value_bytes(g)}, {g->count_offset, sizeof(int)}};
      int gn = srl__cfg_is_list(g) ? 2 : 1;
      for (int a = 0; a < fn; a++)
        for (int b = 0; b < gn; b++)
          if (ranges_overlap(fr[a][0], fr[a][1], gr[b][0], gr[b][1]))
            return srl_error(SRL_EINVAL, "schema '%s': '%s' and '%s' share bytes", name, g->key,
                             f->key);
    }
    if (srl__cfg_is_list(f) &&
        ranges_overlap(f->offset, srl__cfg_value_bytes(f), f->count_offset, sizeof(int)))
      return srl_error(SRL_EINVAL, "schema '%s': '%s' count overlaps its elements", name, f->key);
  }
  return SRL_OK;
}


const srl_cfg_field *srl_config_find(const srl_cfg_schema *s, const char *key) {
  if (!s || !key) return NULL;
  for (int i = 0; i < s->n_fields; i++)
    if (s->fields[i].key && strcmp(s->fields[i].key, key) == 0) return &s->fields[i];
  return NULL;
}


//---- suggestions for unknown keys ---------------------------------------------------------

// optimal string alignment distance (Levenshtein plus adjacent transpositions), or cap + 1 as
// soon as it is sure to exceed cap
static int osa_distance(const char *a, size_t n, const char *b, size_t m, int cap) {
  int rows[3][SRL_CFG_KEY_MAX + 2];
  if (n > SRL_CFG_KEY_MAX || m > SRL_CFG_KEY_MAX) return cap + 1;
  if ((n > m ? n - m : m - n) > (size_t)cap) return cap + 1;
  int *pp = rows[0], *prev = rows[1], *cur = rows[2];
  for (size_t j = 0; j <= m; j++) prev[j] = (int)j;
  for (size_t i = 1; i <= n; i++) {
    cur[0] = (int)i;
    int row_min = cur[0];
    for (size_t j = 1; j <= m; j++) {
      int cost = a[i - 1] != b[j - 1];
      int v = prev[j] + 1;
      if (cur[j - 1] + 1 < v) v = cur[j - 1] + 1;
      if (prev[j - 1] + cost < v) v = prev[j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
        v = pp[j - 2] + 1;
      cur[j] = v;
      if (v < row_min) row_min = v;
    }
    // a transposition reaches back two rows, so stop only when both exceed the cap
    if (row_min > cap && i > 1) {
      int prev_min = prev[0];
      for (size_t j = 1; j <= m; j++)
        if (prev[j] < prev_min) prev_min = prev[j];
      if (prev_min > cap) return cap + 1;
    }
    int *t = pp;
    pp = prev;
    prev = cur;
    cur = t;
  }
  return prev[m] <= cap ? prev[m] : cap + 1;
}

static const char *last_component(const char *k, size_t n, size_t *len) {
  size_t i = n;
  while (i > 0 && k[i - 1] != '.') i--;
  *len = n - i;
  return k + i;
}

// the schema key or section nearest to an unknown dotted key, compared whole and by its last
// component; written to out (SRL_CFG_KEY_MAX + 1 bytes), or 0 when nothing is close
int srl__cfg_suggest_key(const srl_cfg_schema *s, const char *path, size_t n, char *out) {
  size_t qlast_n;
  const char *qlast = last_component(path, n, &qlast_n);
  int thr = qlast_n <= 3 ? 1 : qlast_n <= 7 ? 2 : 3;
  int best = INT_MAX, best_full = INT_MAX;
  out[0] = '\0';
  for (int i = 0; i < s->n_fields; i++) {
    const char *k = s->fields[i].key;
    size_t klen = strlen(k);
    // every section prefix of the key, then the key itself
    for (size_t e = 1; e <= klen; e++) {
      if (e < klen && k[e] != '.') continue;
      size_t clast_n;
      const char *clast = last_component(k, e, &clast_n);
      int dfull = osa_distance(path, n, k, e, thr);
      int dlast = osa_distance(qlast, qlast_n, clast, clast_n, thr);
      int score = dfull < dlast ? dfull : dlast;
      if (score < best || (score == best && dfull < best_full)) {
        best = score;
        best_full = dfull;
        memcpy(out, k, e);
        out[e] = '\0';
      }
    }
  }
  return best <= thr && best < (int)qlast_n + 1 && out[0];
}

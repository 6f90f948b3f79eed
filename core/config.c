// config.c: the config loader. A schema is checked, then YAML events from libyaml are walked
// against it into a staging copy of the config's fields; only an input that is valid from start
// to end is committed to the caller's struct. Defaults and "--set" overrides go through the same
// walk, so every value obeys one set of typing and range rules (docs/config.md).
#include "core/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/alloc.h"
#include "core/config_internal.h"
#include "core/error.h"

#define CFG_FILE_MAX (16u << 20)  // a config file larger than this is refused
#define SHOW_MAX 48               // bytes of a value quoted in an error message

//---- the loader state ---------------------------------------------------------------------

typedef struct frame {
  int is_seq;  // 0: a mapping (a section), 1: the sequence of a list field
  int plen;    // length of the path that names this mapping or list
  int seen0;   // mapping: its first entry in seen[]
  int fld;     // sequence: the list field
  int count;   // sequence: elements so far
} frame;

// a section key met in a mapping: the section (its first field and its depth) and where
typedef struct seen_section {
  int fld, depth;
  size_t line, col;
} seen_section;

typedef struct loader {
  const srl_cfg_schema *s;
  char *stage;       // staging copy: each field's bytes at its own offset
  size_t *set_line;  // per field: 1-based line where this input set it (0: not set)
  size_t *set_col;
  frame *frames;
  int nframes, max_frames;
  seen_section *seen;
  int nseen, max_seen;
  char path[SRL_CFG_KEY_MAX + 1];  // dotted key of the node being read
  int plen;
  // the open value slot: after a key, or the document root
  int want_value;
  int target_fld;  // leaf field, or -1 for a section (the root is the section "")
  // the input
  const char *src;
  const char *text;
  size_t text_len;
  size_t col_shift;  // --set: columns of line 1 start after "key="
  int docs;
} loader;

// report "src:line:col: message" for a libyaml mark
static int fail(loader *L, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(loader *L, yaml_mark_t m, const char *fmt, ...) {
  char msg[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (m.line > 0 && L->text && !memchr(L->text, '\n', L->text_len)) {
    // libyaml puts the end of a one-line input on a line of its own: keep it on line 1
    m.line = 0;
    m.column = 0;
    for (size_t i = 0; i < L->text_len; i++) m.column += ((unsigned char)L->text[i] & 0xC0) != 0x80;
  }
  size_t col = m.column + 1 + (m.line == 0 ? L->col_shift : 0);
  return srl_error(SRL_ECONFIG, "%s:%zu:%zu: %s", L->src, m.line + 1, col, msg);
}

// printable, shortened copy of input text for messages
static const char *show(const char *t, size_t n, char *buf) {
  size_t k = 0;
  for (size_t i = 0; i < n && k < SHOW_MAX; i++) {
    unsigned char c = (unsigned char)t[i];
    buf[k++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
  }
  if (n > SHOW_MAX) {
    // cut before a character split in two, then mark the cut
    size_t lead = k;
    while (lead > 0 && ((unsigned char)buf[lead - 1] & 0xC0) == 0x80) lead--;
    if (lead > 0 && (unsigned char)buf[lead - 1] >= 0xC0) {
      unsigned char c = (unsigned char)buf[lead - 1];
      size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
      if (k - (lead - 1) < need) k = lead - 1;
    }
    memcpy(buf + k, "...", 3);
    k += 3;
  }
  buf[k] = '\0';
  return buf;
}

// the field named exactly by path[0..n) (*leaf = 1), or the first field of the section it
// names (*leaf = 0); -1 when it names nothing in the schema
static int resolve(const srl_cfg_schema *s, const char *path, size_t n, int *leaf) {
  if (n == 0) {
    *leaf = 0;
    return s->n_fields > 0 ? 0 : -1;
  }
  for (int i = 0; i < s->n_fields; i++) {
    const char *k = s->fields[i].key;
    if (strncmp(k, path, n) != 0) continue;
    if (k[n] == '\0' || k[n] == '.') {
      *leaf = k[n] == '\0';
      return i;
    }
  }
  return -1;
}

static int path_depth(const char *p, size_t n) {
  if (n == 0) return 0;
  int d = 1;
  for (size_t i = 0; i < n; i++) d += p[i] == '.';
  return d;
}


//---- scalars --------------------------------------------------------------------------------

enum { SC_PLAIN, SC_STRING };  // plain text may be a number, bool or null; others are strings

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

static int is_null_text(const char *t) {
  return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") || !strcmp(t, "NULL");
}

static int is_nonfinite_text(const char *t) {
  if (*t == '+' || *t == '-') t++;
  return !strcmp(t, ".inf") || !strcmp(t, ".Inf") || !strcmp(t, ".INF") || !strcmp(t, ".nan") ||
         !strcmp(t, ".NaN") || !strcmp(t, ".NAN");
}

// YAML 1.2 core-schema float (which includes decimal integers): [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)
// ([eE][-+]?[0-9]+)?
static int is_float_text(const char *p) {
  if (*p == '+' || *p == '-') p++;
  int digits = 0;
  while (is_digit(*p)) p++, digits++;
  if (*p == '.') {
    p++;
    while (is_digit(*p)) p++, digits++;
  }
  if (!digits) return 0;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-') p++;
    if (!is_digit(*p)) return 0;
    while (is_digit(*p)) p++;
  }
  return *p == '\0';
}

// 0x / 0o integers of the core schema; 1 and *v when t is one
static int radix_int(const char *t, double *v) {
  int base = 0;
  if (t[0] == '0' && t[1] == 'x') base = 16;
  if (t[0] == '0' && t[1] == 'o') base = 8;
  if (!base || !t[2]) return 0;
  double acc = 0;
  for (const char *p = t + 2; *p; p++) {
    int d;
    if (is_digit(*p))
      d = *p - '0';
    else if (*p >= 'a' && *p <= 'f')
      d = *p - 'a' + 10;
    else if (*p >= 'A' && *p <= 'F')
      d = *p - 'A' + 10;
    else
      return 0;
    if (d >= base) return 0;
    acc = acc * base + d;  // exact up to 2^53; the caller refuses what overflows
  }
  *v = acc;
  return 1;
}

static double c_strtod(const char *t) {
  locale_t old = srl__cfg_locale_enter();
  double v = strtod(t, NULL);
  srl__cfg_locale_leave(old);
  return v;
}

enum { NUM_OK, NUM_NOT_NUMBER, NUM_FRACTION, NUM_TOO_BIG, NUM_NONFINITE };

// read a number from plain text; integer_only refuses fractions and values outside int
static int read_number(const char *t, int integer_only, double *v) {
  if (radix_int(t, v)) {
    if (integer_only && *v > INT_MAX) return NUM_TOO_BIG;
    return isfinite(*v) ? NUM_OK : NUM_NONFINITE;
  }
  if (is_nonfinite_text(t)) return integer_only ? NUM_NOT_NUMBER : NUM_NONFINITE;
  if (!is_float_text(t)) return NUM_NOT_NUMBER;
  *v = c_strtod(t);
  if (!isfinite(*v)) return integer_only ? NUM_TOO_BIG : NUM_NONFINITE;
  if (!integer_only) return NUM_OK;
  if (*v != floor(*v)) return NUM_FRACTION;
  if (*v < INT_MIN || *v > INT_MAX) return NUM_TOO_BIG;
  return NUM_OK;
}

static void fmt_range(const srl_cfg_field *f, char *buf, size_t cap) {
  char lo[40], hi[40];
  srl__cfg_fmt_double(f->min, 0, lo, sizeof lo);
  srl__cfg_fmt_double(f->max, 0, hi, sizeof hi);
  snprintf(buf, cap, "[%s, %s]", lo, hi);
}

// one number (a scalar field or a list element) from a scalar event into *out
static int scalar_number(loader *L, const srl_cfg_field *f, const char *key, int integer,
                         const yaml_event_t *ev, int style, double *out) {
  const char *t = (const char *)ev->data.scalar.value;
  size_t n = ev->data.scalar.length;
  char sb[SHOW_MAX + 4];
  const char *what = integer ? "an integer" : "a number";
  if (style != SC_PLAIN)
    return fail(L, ev->start_mark, "'%s' must be %s, got a quoted string \"%s\"", key, what,
                show(t, n, sb));
  double v = 0;
  switch (read_number(t, integer, &v)) {
    case NUM_OK:
      break;
    case NUM_NOT_NUMBER:
    case NUM_FRACTION:
      if (!n) return fail(L, ev->start_mark, "'%s' must be %s, got an empty value", key, what);
      return fail(L, ev->start_mark, "'%s' must be %s, got '%s'", key, what, show(t, n, sb));
    case NUM_TOO_BIG:
      return fail(L, ev->start_mark, "'%s' = %s does not fit in an int", key, show(t, n, sb));
    case NUM_NONFINITE:
      return fail(L, ev->start_mark, "'%s' must be finite, got '%s'", key, show(t, n, sb));
  }
  if (srl__cfg_has_range(f) && !(v >= f->min && v <= f->max)) {
    char rb[96];
    fmt_range(f, rb, sizeof rb);
    return fail(L, ev->start_mark, "'%s' = %s is out of range %s", key, show(t, n, sb), rb);
  }
  *out = v;
  return SRL_OK;
}

// how a scalar's text is to be read: its style and its tag
static int scalar_style(loader *L, const yaml_event_t *ev, int *style) {
  const char *tag = (const char *)ev->data.scalar.tag;
  *style = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? SC_PLAIN : SC_STRING;
  if (!tag) return SRL_OK;
  if (!strcmp(tag, "!") || !strcmp(tag, YAML_STR_TAG)) {
    *style = SC_STRING;
    return SRL_OK;
  }
  if (!strcmp(tag, YAML_INT_TAG) || !strcmp(tag, YAML_FLOAT_TAG) || !strcmp(tag, YAML_BOOL_TAG) ||
      !strcmp(tag, YAML_NULL_TAG))
    return SRL_OK;
  char sb[SHOW_MAX + 4];
  return fail(L, ev->start_mark, "unsupported tag '%s'", show(tag, strlen(tag), sb));
}

static int collection_tag_ok(loader *L, const yaml_event_t *ev, const char *tag,
                             const char *allowed) {
  if (!tag || !strcmp(tag, allowed)) return SRL_OK;
  char sb[SHOW_MAX + 4];
  return fail(L, ev->start_mark, "unsupported tag '%s'", show(tag, strlen(tag), sb));
}

static const char *type_word(const srl_cfg_field *f) {
  switch (f->type) {
    case SRL_CFG_BOOL:
      return "true or false";
    case SRL_CFG_INT:
      return "an integer";
    case SRL_CFG_FLOAT:
      return "a number";
    case SRL_CFG_STRING:
      return "a string";
    case SRL_CFG_CHOICE:
      return "one of its choices";
    case SRL_CFG_INT_LIST:
      return "a list of integers";
    case SRL_CFG_FLOAT_LIST:
      return "a list of numbers";
  }
  return "?";
}

// a scalar for the scalar field f (whose key is L->path)
static int set_scalar(loader *L, int fi, const yaml_event_t *ev) {
  const srl_cfg_field *f = &L->s->fields[fi];
  const char *t = (const char *)ev->data.scalar.value;
  size_t n = ev->data.scalar.length;
  char *dst = L->stage + f->offset;
  char sb[SHOW_MAX + 4];
  int style, rc;
  if ((rc = scalar_style(L, ev, &style)) < 0) return rc;
  if (srl__cfg_is_list(f))
    return fail(L, ev->start_mark, "'%s' must be %s, got '%s'", L->path, type_word(f),
                show(t, n, sb));
  switch (f->type) {
    case SRL_CFG_BOOL: {
      int b = -1;
      if (style == SC_PLAIN && (!strcmp(t, "true") || !strcmp(t, "True"))) b = 1;
      if (style == SC_PLAIN && (!strcmp(t, "false") || !strcmp(t, "False"))) b = 0;
      if (b < 0)
        return fail(L, ev->start_mark, "'%s' must be true or false (or True, False), got '%s'",
                    L->path, show(t, n, sb));
      memcpy(dst, &b, sizeof b);
      return SRL_OK;
    }
    case SRL_CFG_INT:
    case SRL_CFG_FLOAT: {
      double v;
      if ((rc = scalar_number(L, f, L->path, f->type == SRL_CFG_INT, ev, style, &v)) < 0) return rc;
      if (f->type == SRL_CFG_INT) {
        int iv = (int)v;
        memcpy(dst, &iv, sizeof iv);
      } else {
        memcpy(dst, &v, sizeof v);
      }
      return SRL_OK;
    }
    case SRL_CFG_STRING:
    case SRL_CFG_CHOICE: {
      if (style == SC_PLAIN && is_null_text(t)) n = 0;  // a null string is the empty string
      if (memchr(t, '\0', n))
        return fail(L, ev->start_mark, "'%s' contains a NUL character", L->path);
      if (f->type == SRL_CFG_CHOICE && !srl__cfg_choice_find(f->choices, t, n))
        return fail(L, ev->start_mark, "'%s' must be one of %s, got '%s'", L->path, f->choices,
                    show(t, n, sb));
      if (n + 1 > f->size)
        return fail(L, ev->start_mark, "'%s' is too long (%zu bytes, at most %zu)", L->path, n,
                    f->size - 1);
      memset(dst, 0, f->size);
      memcpy(dst, t, n);
      return SRL_OK;
    }
    default:
      return SRL_OK;
  }
}

// one element of the list being read (the top frame)
static int set_element(loader *L, const yaml_event_t *ev) {
  frame *fr = &L->frames[L->nframes - 1];
  const srl_cfg_field *f = &L->s->fields[fr->fld];
  char key[SRL_CFG_KEY_MAX + 24];
  snprintf(key, sizeof key, "%s[%d]", L->path, fr->count);
  if ((size_t)fr->count >= f->size)
    return fail(L, ev->start_mark, "'%s' has more than %zu elements", L->path, f->size);
  int style, rc;
  if ((rc = scalar_style(L, ev, &style)) < 0) return rc;
  double v;
  int integer = f->type == SRL_CFG_INT_LIST;
  if ((rc = scalar_number(L, f, key, integer, ev, style, &v)) < 0) return rc;
  char *dst = L->stage + f->offset;
  if (integer) {
    int iv = (int)v;
    memcpy(dst + fr->count * sizeof(int), &iv, sizeof iv);
  } else {
    memcpy(dst + fr->count * sizeof(double), &v, sizeof v);
  }
  fr->count++;
  return SRL_OK;
}


//---- the event walk -------------------------------------------------------------------------

static const char *event_noun(const yaml_event_t *ev) {
  return ev->type == YAML_MAPPING_START_EVENT ? "a mapping" : "a list";
}

static int push_frame(loader *L, int is_seq, int fld, int seen0) {
  SRL_ASSERT(L->nframes < L->max_frames);
  frame *fr = &L->frames[L->nframes++];
  fr->is_seq = is_seq;
  fr->plen = L->plen;
  fr->seen0 = seen0;
  fr->fld = fld;
  fr->count = 0;
  return SRL_OK;
}

// a value finished: back to the keys of the enclosing mapping (or nothing, at the root)
static void value_done(loader *L) {
  L->want_value = 0;
  if (L->nframes > 0) L->plen = L->frames[L->nframes - 1].plen;
  L->path[L->plen] = '\0';
}

// the value for the open slot: a section's mapping, or a field's scalar or list
static int on_value(loader *L, const yaml_event_t *ev) {
  char sb[SHOW_MAX + 4];
  int rc;
  if (L->target_fld < 0) {
    // a section takes a mapping; a null leaves it as it is
    if (ev->type == YAML_MAPPING_START_EVENT) {
      if ((rc = collection_tag_ok(L, ev, (const char *)ev->data.mapping_start.tag, YAML_MAP_TAG)) <
          0)
        return rc;
      L->want_value = 0;
      return push_frame(L, 0, -1, L->nseen);
    }
    if (ev->type == YAML_SCALAR_EVENT) {
      const char *t = (const char *)ev->data.scalar.value;
      int style;
      if ((rc = scalar_style(L, ev, &style)) < 0) return rc;
      if (style == SC_PLAIN && is_null_text(t)) {
        value_done(L);
        return SRL_OK;
      }
      if (L->plen == 0)
        return fail(L, ev->start_mark, "the top level must be a mapping, got '%s'",
                    show(t, ev->data.scalar.length, sb));
      return fail(L, ev->start_mark, "'%s' is a section and must be a mapping, got '%s'", L->path,
                  show(t, ev->data.scalar.length, sb));
    }
    if (L->plen == 0) return fail(L, ev->start_mark, "the top level must be a mapping, got a list");
    return fail(L, ev->start_mark, "'%s' is a section and must be a mapping, got a list", L->path);
  }
  const srl_cfg_field *f = &L->s->fields[L->target_fld];
  if (ev->type == YAML_SCALAR_EVENT) {
    if ((rc = set_scalar(L, L->target_fld, ev)) < 0) return rc;
    value_done(L);
    return SRL_OK;
  }
  if (ev->type == YAML_SEQUENCE_START_EVENT && srl__cfg_is_list(f)) {
    if ((rc = collection_tag_ok(L, ev, (const char *)ev->data.sequence_start.tag, YAML_SEQ_TAG)) <
        0)
      return rc;
    memset(L->stage + f->offset, 0, srl__cfg_value_bytes(f));
    L->want_value = 0;
    return push_frame(L, 1, L->target_fld, L->nseen);
  }
  if (f->type == SRL_CFG_CHOICE)
    return fail(L, ev->start_mark, "'%s' must be one of %s, got %s", L->path, f->choices,
                event_noun(ev));
  return fail(L, ev->start_mark, "'%s' must be %s, got %s", L->path, type_word(f), event_noun(ev));
}

// a key in the mapping on top of the stack: resolve it, refuse unknown and repeated keys
static int on_key(loader *L, const yaml_event_t *ev) {
  char sb[SHOW_MAX + 4], hint[SRL_CFG_KEY_MAX + 1];
  frame *fr = &L->frames[L->nframes - 1];
  if (ev->type != YAML_SCALAR_EVENT)
    return fail(L, ev->start_mark, "keys must be scalars, got %s", event_noun(ev));
  int style, rc;
  if ((rc = scalar_style(L, ev, &style)) < 0) return rc;
  const char *k = (const char *)ev->data.scalar.value;
  size_t kn = ev->data.scalar.length;
  // the full dotted key: this mapping's path, a dot, the key text
  size_t base = (size_t)fr->plen, n = base + (base > 0) + kn;
  if (n > SRL_CFG_KEY_MAX || memchr(k, '\0', kn)) {
    return fail(L, ev->start_mark, "unknown key '%s'", show(k, kn, sb));
  }
  if (base > 0) L->path[base] = '.';
  memcpy(L->path + base + (base > 0), k, kn);
  L->path[n] = '\0';
  L->plen = (int)n;
  int leaf = 0, fi = kn ? resolve(L->s, L->path, n, &leaf) : -1;
  if (fi < 0) {
    char full[SHOW_MAX + 4];
    show(L->path, n, full);
    if (srl__cfg_suggest_key(L->s, L->path, n, hint))
      return fail(L, ev->start_mark, "unknown key '%s' (did you mean '%s'?)", full, hint);
    return fail(L, ev->start_mark, "unknown key '%s'", full);
  }
  if (leaf) {
    // a field is set once per input, however its key is spelled
    if (L->set_line[fi])
      return fail(L, ev->start_mark, "duplicate key '%s' (first set at line %zu, column %zu)",
                  L->path, L->set_line[fi], L->set_col[fi]);
    L->set_line[fi] = ev->start_mark.line + 1;
    L->set_col[fi] = ev->start_mark.column + 1 + (ev->start_mark.line == 0 ? L->col_shift : 0);
  } else {
    // a section appears once per mapping
    int depth = path_depth(L->path, n);
    for (int i = fr->seen0; i < L->nseen; i++)
      if (L->seen[i].fld == fi && L->seen[i].depth == depth)
        return fail(L, ev->start_mark, "duplicate key '%s' (first set at line %zu, column %zu)",
                    L->path, L->seen[i].line, L->seen[i].col);
    SRL_ASSERT(L->nseen < L->max_seen);
    seen_section *sn = &L->seen[L->nseen++];
    sn->fld = fi;
    sn->depth = depth;
    sn->line = ev->start_mark.line + 1;
    sn->col = ev->start_mark.column + 1 + (ev->start_mark.line == 0 ? L->col_shift : 0);
  }
  L->want_value = 1;
  L->target_fld = leaf ? fi : -1;
  return SRL_OK;
}

// one event of the stream
static int on_event(loader *L, const yaml_event_t *ev) {
  switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
      if (L->docs++ > 0) return fail(L, ev->start_mark, "only one YAML document is allowed");
      L->want_value = 1;
      return SRL_OK;
    case YAML_ALIAS_EVENT: {
      char sb[SHOW_MAX + 4];
      const char *a = (const char *)ev->data.alias.anchor;
      return fail(L, ev->start_mark, "aliases are not supported ('*%s')", show(a, strlen(a), sb));
    }
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT: {
      frame *fr = &L->frames[--L->nframes];
      if (fr->is_seq) {
        const srl_cfg_field *f = &L->s->fields[fr->fld];
        memcpy(L->stage + f->count_offset, &fr->count, sizeof(int));
      } else {
        L->nseen = fr->seen0;
      }
      L->plen = fr->plen;
      value_done(L);
      return SRL_OK;
    }
    case YAML_SCALAR_EVENT:
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
      if (L->want_value) return on_value(L, ev);
      SRL_ASSERT(L->nframes > 0);
      if (!L->frames[L->nframes - 1].is_seq) return on_key(L, ev);
      if (ev->type != YAML_SCALAR_EVENT) {
        const srl_cfg_field *f = &L->s->fields[L->frames[L->nframes - 1].fld];
        return fail(L, ev->start_mark, "'%s[%d]' must be %s, got %s", L->path,
                    L->frames[L->nframes - 1].count,
                    f->type == SRL_CFG_INT_LIST ? "an integer" : "a number", event_noun(ev));
      }
      return set_element(L, ev);
    default:
      return SRL_OK;  // stream start/end, document end
  }
}

// libyaml's own complaint (syntax, encoding) as "src:line:col: ..."
static int parser_fail(loader *L, const yaml_parser_t *p) {
  if (p->error == YAML_MEMORY_ERROR) return srl_error(SRL_ENOMEM, "%s: out of memory", L->src);
  const char *problem = p->problem ? p->problem : "malformed input";
  if (p->error == YAML_READER_ERROR) {
    // reader errors carry a byte offset: count lines and characters up to it
    yaml_mark_t m = {0, 0, 0};
    for (size_t i = 0; i < p->problem_offset && i < L->text_len; i++) {
      unsigned char c = (unsigned char)L->text[i];
      if (c == '\n')
        m.line++, m.column = 0;
      else if ((c & 0xC0) != 0x80)
        m.column++;
    }
    return fail(L, m, "invalid input: %s", problem);
  }
  if (p->context) {
    size_t ccol = p->context_mark.column + 1 + (p->context_mark.line == 0 ? L->col_shift : 0);
    return fail(L, p->problem_mark, "syntax error: %s (%s at line %zu, column %zu)", problem,
                p->context, p->context_mark.line + 1, ccol);
  }
  return fail(L, p->problem_mark, "syntax error: %s", problem);
}

// walk one YAML text into the stage; `target` opens the root slot (-1: the root section, or the
// section/field named by L->path for an override)
static int run_text(loader *L, const char *text, size_t len, int target) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) return srl_error(SRL_ENOMEM, "%s: out of memory", L->src);
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  L->text = text;
  L->text_len = len;
  L->docs = 0;
  L->nframes = 0;
  L->nseen = 0;
  L->want_value = 0;
  L->target_fld = target;
  int rc = SRL_OK, done = 0;
  while (!done) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) {
      rc = parser_fail(L, &p);
      break;
    }
    done = ev.type == YAML_STREAM_END_EVENT;
    rc = on_event(L, &ev);
    yaml_event_delete(&ev);
    if (rc < 0) break;
  }
  // an override with nothing after '=' is an empty plain scalar
  if (rc == SRL_OK && L->docs == 0 && L->plen > 0) {
    yaml_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = YAML_SCALAR_EVENT;
    ev.data.scalar.value = (yaml_char_t *)"";
    ev.data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
    L->want_value = 1;
    rc = on_value(L, &ev);
  }
  yaml_parser_delete(&p);
  return rc;
}


//---- staging: allocate, copy in, commit -----------------------------------------------------

static int loader_begin(loader *L, const srl_cfg_schema *s, const void *cfg, const char *src) {
  memset(L, 0, sizeof *L);
  int rc = srl_config_check_schema(s);
  if (rc < 0) return rc;
  L->s = s;
  L->src = src;
  // sizes: the struct extent the fields reach, the deepest key, the number of key nodes
  size_t extent = 0;
  int depth = 1, nodes = 1;
  for (int i = 0; i < s->n_fields; i++) {
    const srl_cfg_field *f = &s->fields[i];
    size_t end = f->offset + srl__cfg_value_bytes(f);
    if (end > extent) extent = end;
    if (srl__cfg_is_list(f) && f->count_offset + sizeof(int) > extent)
      extent = f->count_offset + sizeof(int);
    int d = srl__cfg_key_depth(f->key);
    if (d > depth) depth = d;
    nodes += d;
  }
  L->max_frames = depth + 2;
  L->max_seen = nodes * (depth + 1);
  size_t total = 0;
  size_t o_stage = srl_layout_add(&total, extent);
  size_t o_line = srl_layout_add(&total, (size_t)s->n_fields * sizeof(size_t));
  size_t o_col = srl_layout_add(&total, (size_t)s->n_fields * sizeof(size_t));
  size_t o_frames = srl_layout_add(&total, (size_t)L->max_frames * sizeof(frame));
  size_t o_seen = srl_layout_add(&total, (size_t)L->max_seen * sizeof(seen_section));
  char *block = srl_calloc(total);
  if (!block) return SRL_ENOMEM;
  L->stage = block + o_stage;
  L->set_line = (size_t *)(block + o_line);
  L->set_col = (size_t *)(block + o_col);
  L->frames = (frame *)(block + o_frames);
  L->seen = (seen_section *)(block + o_seen);
  // the stage starts as the caller's current values
  for (int i = 0; i < s->n_fields; i++) {
    const srl_cfg_field *f = &s->fields[i];
    memcpy(L->stage + f->offset, (const char *)cfg + f->offset, srl__cfg_value_bytes(f));
    if (srl__cfg_is_list(f))
      memcpy(L->stage + f->count_offset, (const char *)cfg + f->count_offset, sizeof(int));
  }
  return SRL_OK;
}

static void loader_commit(const loader *L, void *cfg) {
  for (int i = 0; i < L->s->n_fields; i++) {
    const srl_cfg_field *f = &L->s->fields[i];
    memcpy((char *)cfg + f->offset, L->stage + f->offset, srl__cfg_value_bytes(f));
    if (srl__cfg_is_list(f))
      memcpy((char *)cfg + f->count_offset, L->stage + f->count_offset, sizeof(int));
  }
}

static void loader_end(loader *L) {
  // the stage is the start of the one block
  srl_free(L->stage);
  L->stage = NULL;
}


//---- public entry points --------------------------------------------------------------------

int srl_config_defaults(const srl_cfg_schema *s, void *cfg) {
  if (!cfg) return srl_error(SRL_EINVAL, "config: cfg is NULL");
  char src[160];
  snprintf(src, sizeof src, "schema '%s' default", s && s->name ? s->name : "?");
  loader L;
  int rc = loader_begin(&L, s, cfg, src);
  if (rc < 0) return rc;
  for (int i = 0; i < s->n_fields && rc == SRL_OK; i++) {
    const srl_cfg_field *f = &s->fields[i];
    memset(L.stage + f->offset, 0, srl__cfg_value_bytes(f));
    if (srl__cfg_is_list(f)) memset(L.stage + f->count_offset, 0, sizeof(int));
    // no default: false, 0, "", [] or the first choice
    char first[SRL_CFG_KEY_MAX + 1];
    const char *def = f->def;
    if (!def && f->type == SRL_CFG_CHOICE) {
      size_t len = strcspn(f->choices, "|");
      if (len > SRL_CFG_KEY_MAX) len = SRL_CFG_KEY_MAX;
      memcpy(first, f->choices, len);
      first[len] = '\0';
      def = first;
    }
    if (!def) def = f->type == SRL_CFG_BOOL ? "false" : srl__cfg_is_list(f) ? "[]" : "0";
    if (!f->def && f->type == SRL_CFG_STRING) def = "\"\"";
    snprintf(L.path, sizeof L.path, "%s", f->key);
    L.plen = (int)strlen(L.path);
    memset(L.set_line, 0, (size_t)s->n_fields * sizeof(size_t));
    rc = run_text(&L, def, strlen(def), i);
  }
  if (rc == SRL_OK) loader_commit(&L, cfg);
  loader_end(&L);
  return rc == SRL_ECONFIG ? SRL_EINVAL : rc;
}


int srl_config_load_string(const srl_cfg_schema *s, void *cfg, const char *yaml,
                           const char *source_name) {
  if (!cfg || !yaml) return srl_error(SRL_EINVAL, "config: cfg or text is NULL");
  loader L;
  int rc = loader_begin(&L, s, cfg, source_name ? source_name : "<string>");
  if (rc < 0) return rc;
  rc = run_text(&L, yaml, strlen(yaml), -1);
  if (rc == SRL_OK) loader_commit(&L, cfg);
  loader_end(&L);
  return rc;
}


int srl_config_load_file(const srl_cfg_schema *s, void *cfg, const char *path) {
  if (!cfg || !path) return srl_error(SRL_EINVAL, "config: cfg or path is NULL");
  FILE *f = fopen(path, "rb");
  if (!f)
    return srl_error(errno == ENOENT ? SRL_ENOTFOUND : SRL_EIO, "%s: cannot open: %s", path,
                     strerror(errno));
  // read it whole, growing the buffer by doubling (pipes have no size up front)
  size_t cap = 4096, len = 0;
  char *buf = srl_malloc(cap);
  int rc = buf ? SRL_OK : SRL_ENOMEM;
  while (rc == SRL_OK) {
    if (len + 1 == cap) {
      if (cap >= CFG_FILE_MAX) {
        rc = srl_error(SRL_ECONFIG, "%s: file is larger than %u bytes", path, CFG_FILE_MAX);
        break;
      }
      char *bigger = srl_malloc(cap * 2);
      if (!bigger) {
        rc = SRL_ENOMEM;
        break;
      }
      memcpy(bigger, buf, len);
      srl_free(buf);
      buf = bigger;
      cap *= 2;
    }
    size_t got = fread(buf + len, 1, cap - 1 - len, f);
    len += got;
    if (got == 0) {
      if (ferror(f)) rc = srl_error(SRL_EIO, "%s: read failed", path);
      break;
    }
  }
  fclose(f);
  if (rc == SRL_OK) {
    buf[len] = '\0';
    loader L;
    rc = loader_begin(&L, s, cfg, path);
    if (rc == SRL_OK) {
      rc = run_text(&L, buf, len, -1);
      if (rc == SRL_OK) loader_commit(&L, cfg);
      loader_end(&L);
    }
  }
  srl_free(buf);
  return rc;
}


int srl_config_set(const srl_cfg_schema *s, void *cfg, const char *assignment) {
  if (!cfg || !assignment) return srl_error(SRL_EINVAL, "config: cfg or assignment is NULL");
  loader L;
  int rc = loader_begin(&L, s, cfg, "--set");
  if (rc < 0) return rc;
  char sb[SHOW_MAX + 4], hint[SRL_CFG_KEY_MAX + 1];
  yaml_mark_t at = {0, 0, 0};
  // key: the text before '=', without surrounding blanks
  const char *eq = strchr(assignment, '=');
  const char *k = assignment;
  while (*k == ' ' || *k == '\t') k++;
  const char *kend = eq ? eq : k;
  while (kend > k && (kend[-1] == ' ' || kend[-1] == '\t')) kend--;
  size_t kn = (size_t)(kend - k);
  at.column = (size_t)(k - assignment);
  int leaf = 0, fi = -1;
  if (!eq || kn == 0) {
    rc = fail(&L, at, "expected key=value, got '%s'", show(assignment, strlen(assignment), sb));
  } else if (kn > SRL_CFG_KEY_MAX || (fi = resolve(s, k, kn, &leaf)) < 0) {
    if (kn <= SRL_CFG_KEY_MAX && srl__cfg_suggest_key(s, k, kn, hint))
      rc = fail(&L, at, "unknown key '%s' (did you mean '%s'?)", show(k, kn, sb), hint);
    else
      rc = fail(&L, at, "unknown key '%s'", show(k, kn, sb));
  } else {
    memcpy(L.path, k, kn);
    L.path[kn] = '\0';
    L.plen = (int)kn;
    L.col_shift = (size_t)(eq + 1 - assignment);
    rc = run_text(&L, eq + 1, strlen(eq + 1), leaf ? fi : -1);
  }
  if (rc == SRL_OK) loader_commit(&L, cfg);
  loader_end(&L);
  return rc;
}

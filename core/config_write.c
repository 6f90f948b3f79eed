// config_write.c: the config writer. Dumps every field of a config struct as YAML nested by
// section in schema order, with each field's help as a comment above it, in a form that loads
// back to bitwise the same values; saves it atomically; prints the option list for --help.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/config_internal.h"
#include "core/error.h"

//---- output: a FILE or a bounded buffer -----------------------------------------------------

typedef struct out {
  FILE *f;    // when set, text goes here
  char *buf;  // otherwise here, up to cap - 1 bytes
  size_t cap, n;
  int overflow;
} out;

static void put(out *o, const char *s, size_t n) {
  if (o->f) {
    if (n && fwrite(s, 1, n, o->f) != n) o->overflow = 1;
    return;
  }
  if (o->n + n >= o->cap) {
    o->overflow = 1;
    return;
  }
  memcpy(o->buf + o->n, s, n);
  o->n += n;
  o->buf[o->n] = '\0';
}

static void puts_(out *o, const char *s) {
  put(o, s, strlen(s));
}

static void indent(out *o, int k) {
  static const char spaces[] = "                                ";
  for (; k > 0; k -= (int)sizeof spaces - 1)
    put(o, spaces, k < (int)sizeof spaces - 1 ? (size_t)k : sizeof spaces - 1);
}


//---- strings: plain when unambiguous, double-quoted otherwise -------------------------------

static int is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// words some YAML reader would take for a bool or a null
static int is_special_word(const char *s, size_t n) {
  static const char *const words[] = {"true", "false", "yes", "no", "on", "off", "y", "n", "null"};
  for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
    size_t wn = strlen(words[w]);
    if (wn != n) continue;
    size_t i = 0;
    while (i < n && (s[i] | 0x20) == words[w][i]) i++;
    if (i == n) return 1;
  }
  return 0;
}

// plain: a letter, '_', '/', "./" or "../" first, then letters, digits and _ . / -, and not a
// word that reads as a bool or null
static int plain_ok(const char *s, size_t n) {
  if (n == 0) return 0;
  if (!(is_alpha(s[0]) || s[0] == '_' || s[0] == '/' ||
        (s[0] == '.' && n > 1 && (s[1] == '/' || s[1] == '.'))))
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!(is_alpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '/' || c == '-'))
      return 0;
  }
  return !is_special_word(s, n);
}

// length of a valid UTF-8 sequence at s (at most n bytes) and its code point; 0 if invalid
static int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  int len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 0;
  if (!len || s[0] > 0xF4 || (size_t)len > n) return 0;
  uint32_t c = s[0] & (0x3F >> (len - 1));
  for (int i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (s[i] & 0x3F);
  }
  static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (c < min_cp[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  *cp = c;
  return len;
}

static void put_string(out *o, const char *s, size_t n) {
  if (plain_ok(s, n)) {
    put(o, s, n);
    return;
  }
  char esc[16];
  put(o, "\"", 1);
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      put(o, esc, 2);
      i++;
    } else if (c == '\n' || c == '\t' || c == '\r') {
      put(o, c == '\n' ? "\\n" : c == '\t' ? "\\t" : "\\r", 2);
      i++;
    } else if (c < 0x20 || c == 0x7f) {
      snprintf(esc, sizeof esc, "\\x%02X", c);
      put(o, esc, 4);
      i++;
    } else if (c < 0x80) {
      put(o, (const char *)&s[i], 1);
      i++;
    } else {
      // multi-byte: raw when YAML calls it printable, escaped otherwise (C1 controls, line and
      // paragraph separators, BOM, non-characters); bytes that are not UTF-8 cannot round-trip
      uint32_t cp;
      int len = utf8_decode((const unsigned char *)s + i, n - i, &cp);
      if (!len) {
        snprintf(esc, sizeof esc, "\\x%02X", c);
        put(o, esc, 4);
        i++;
      } else if (cp < 0xA0 || cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF || cp == 0xFFFE ||
                 cp == 0xFFFF) {
        snprintf(esc, sizeof esc, cp < 0x100 ? "\\x%02X" : "\\u%04X", (unsigned)cp);
        puts_(o, esc);
        i += (size_t)len;
      } else {
        put(o, s + i, (size_t)len);
        i += (size_t)len;
      }
    }
  }
  put(o, "\"", 1);
}


//---- values ---------------------------------------------------------------------------------

static void put_value(out *o, const srl_cfg_field *fld, const void *cfg) {
  const char *p = (const char *)cfg + fld->offset;
  char num[48];
  switch (fld->type) {
    case SRL_CFG_BOOL: {
      int b;
      memcpy(&b, p, sizeof b);
      puts_(o, b ? "true" : "false");
      return;
    }
    case SRL_CFG_INT: {
      int v;
      memcpy(&v, p, sizeof v);
      snprintf(num, sizeof num, "%d", v);
      puts_(o, num);
      return;
    }
    case SRL_CFG_FLOAT: {
      double v;
      memcpy(&v, p, sizeof v);
      put(o, num, (size_t)srl__cfg_fmt_double(v, 1, num, sizeof num));
      return;
    }
    case SRL_CFG_STRING:
    case SRL_CFG_CHOICE: {
      // an array without a NUL is cut to the size the loader accepts
      size_t n = strnlen(p, fld->size);
      if (n == fld->size) n--;
      put_string(o, p, n);
      return;
    }
    case SRL_CFG_INT_LIST:
    case SRL_CFG_FLOAT_LIST: {
      int count;
      memcpy(&count, (const char *)cfg + fld->count_offset, sizeof count);
      if (count < 0) count = 0;
      if ((size_t)count > fld->size) count = (int)fld->size;
      put(o, "[", 1);
      for (int i = 0; i < count; i++) {
        if (i) put(o, ", ", 2);
        if (fld->type == SRL_CFG_INT_LIST) {
          int v;
          memcpy(&v, p + (size_t)i * sizeof v, sizeof v);
          snprintf(num, sizeof num, "%d", v);
          puts_(o, num);
        } else {
          double v;
          memcpy(&v, p + (size_t)i * sizeof v, sizeof v);
          put(o, num, (size_t)srl__cfg_fmt_double(v, 1, num, sizeof num));
        }
      }
      put(o, "]", 1);
      return;
    }
  }
}


int srl_config_format(const srl_cfg_field *fld, const void *cfg, char *buf, size_t cap) {
  if (!fld || !cfg || !buf || cap == 0) return srl_error(SRL_EINVAL, "config: NULL argument");
  out o = {NULL, buf, cap, 0, 0};
  buf[0] = '\0';
  put_value(&o, fld, cfg);
  if (o.overflow)
    return srl_error(SRL_ERANGE, "config: value of '%s' needs more than %zu bytes", fld->key,
                     cap - 1);
  return SRL_OK;
}


//---- the YAML document ----------------------------------------------------------------------

// help text as a comment line (line breaks in it become spaces)
static void put_help(out *o, const char *help, int ind) {
  if (!help || !help[0]) return;
  indent(o, ind);
  put(o, "# ", 2);
  while (*help) {
    size_t run = strcspn(help, "\r\n");
    put(o, help, run);
    help += run;
    if (*help) put(o, " ", 1), help++;
  }
  put(o, "\n", 1);
}

// the first field whose key starts with key[0..n) followed by '.'
static int first_in_section(const srl_cfg_schema *s, const char *key, size_t n) {
  for (int i = 0; i < s->n_fields; i++)
    if (strncmp(s->fields[i].key, key, n) == 0 && s->fields[i].key[n] == '.') return i;
  return -1;
}

// the fields under prefix[0..plen) in schema order; a subsection is written, whole, where its
// first field stands
static void put_section(out *o, const srl_cfg_schema *s, const void *cfg, const char *prefix,
                        size_t plen, int ind) {
  for (int i = 0; i < s->n_fields; i++) {
    const srl_cfg_field *f = &s->fields[i];
    if (plen && (strncmp(f->key, prefix, plen) != 0 || f->key[plen] != '.')) continue;
    const char *rest = f->key + (plen ? plen + 1 : 0);
    const char *dot = strchr(rest, '.');
    if (!dot) {
      put_help(o, f->help, ind);
      indent(o, ind);
      puts_(o, rest);
      put(o, ": ", 2);
      put_value(o, f, cfg);
      put(o, "\n", 1);
      continue;
    }
    size_t sub = (size_t)(dot - f->key);
    if (first_in_section(s, f->key, sub) != i) continue;
    if (ind == 0) put(o, "\n", 1);  // a blank line before each top-level section
    indent(o, ind);
    put(o, rest, (size_t)(dot - rest));
    put(o, ":\n", 2);
    put_section(o, s, cfg, f->key, sub, ind + 2);
  }
}


int srl_config_write(const srl_cfg_schema *s, const void *cfg, FILE *f) {
  int rc = srl_config_check_schema(s);
  if (rc < 0) return rc;
  if (!cfg || !f) return srl_error(SRL_EINVAL, "config: cfg or file is NULL");
  out o = {f, NULL, 0, 0, 0};
  put(&o, "# ", 2);
  puts_(&o, s->name ? s->name : "config");
  puts_(&o, ": every option, defaults included\n");
  put_section(&o, s, cfg, "", 0, 0);
  if (o.overflow || ferror(f))
    return srl_error(SRL_EIO, "config '%s': write failed", s->name ? s->name : "?");
  return SRL_OK;
}


// make a rename into dir durable (best effort: some file systems refuse fsync on a directory)
static void sync_dir_of(const char *path) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  if (!slash) {
    snprintf(dir, sizeof dir, ".");
  } else if (slash == path) {
    snprintf(dir, sizeof dir, "/");
  } else {
    size_t n = (size_t)(slash - path);
    if (n >= sizeof dir) return;
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  (void)fsync(fd);
  close(fd);
}


int srl_config_save(const srl_cfg_schema *s, const void *cfg, const char *path) {
  int rc = srl_config_check_schema(s);
  if (rc < 0) return rc;
  if (!cfg || !path) return srl_error(SRL_EINVAL, "config: cfg or path is NULL");
  // a temporary file beside the target, so the rename stays on one file system
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp)
    return srl_error(SRL_EINVAL, "%s: path too long", path);
  int fd = mkstemp(tmp);
  if (fd < 0)
    return srl_error(SRL_EIO, "%s: cannot create a temporary file: %s", path, strerror(errno));
  (void)fchmod(fd, 0644);
  FILE *f = fdopen(fd, "w");
  if (!f) {
    rc = srl_error(SRL_EIO, "%s: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    return rc;
  }
  rc = srl_config_write(s, cfg, f);
  if (rc == SRL_OK && (fflush(f) != 0 || fsync(fileno(f)) != 0))
    rc = srl_error(SRL_EIO, "%s: flush failed: %s", tmp, strerror(errno));
  if (fclose(f) != 0 && rc == SRL_OK)
    rc = srl_error(SRL_EIO, "%s: close failed: %s", tmp, strerror(errno));
  if (rc == SRL_OK && rename(tmp, path) != 0)
    rc = srl_error(SRL_EIO, "%s: rename failed: %s", path, strerror(errno));
  if (rc < 0) {
    unlink(tmp);
    return srl_error_context(rc, "saving config: ");
  }
  sync_dir_of(path);
  return SRL_OK;
}


//---- the option list ------------------------------------------------------------------------

int srl_config_print_help(const srl_cfg_schema *s, FILE *f) {
  int rc = srl_config_check_schema(s);
  if (rc < 0) return rc;
  if (!f) return srl_error(SRL_EINVAL, "config: file is NULL");
  fprintf(f, "%s options (--set key=value):\n", s->name ? s->name : "config");
  for (int i = 0; i < s->n_fields; i++) {
    const srl_cfg_field *fld = &s->fields[i];
    char what[160], lo[40], hi[40], range[100] = "";
    if (srl__cfg_has_range(fld)) {
      srl__cfg_fmt_double(fld->min, 0, lo, sizeof lo);
      srl__cfg_fmt_double(fld->max, 0, hi, sizeof hi);
      snprintf(range, sizeof range, " in [%s, %s]", lo, hi);
    }
    switch (fld->type) {
      case SRL_CFG_BOOL:
        snprintf(what, sizeof what, "bool");
        break;
      case SRL_CFG_INT:
        snprintf(what, sizeof what, "int%s", range);
        break;
      case SRL_CFG_FLOAT:
        snprintf(what, sizeof what, "float%s", range);
        break;
      case SRL_CFG_STRING:
        snprintf(what, sizeof what, "string of at most %zu bytes", fld->size - 1);
        break;
      case SRL_CFG_CHOICE:
        snprintf(what, sizeof what, "one of %.120s", fld->choices);
        break;
      case SRL_CFG_INT_LIST:
        snprintf(what, sizeof what, "list of at most %zu ints%s", fld->size, range);
        break;
      case SRL_CFG_FLOAT_LIST:
        snprintf(what, sizeof what, "list of at most %zu floats%s", fld->size, range);
        break;
    }
    fprintf(f, "  %-40s %s; default %s\n", fld->key, what, fld->def ? fld->def : "(none)");
    if (fld->help && fld->help[0]) fprintf(f, "  %-40s   %s\n", "", fld->help);
  }
  return ferror(f) ? srl_error(SRL_EIO, "config: write failed") : SRL_OK;
}

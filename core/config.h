// config.h: typed, validated configuration structs read from YAML (libyaml), with "--set"
// overrides and a writer that dumps the resolved config back as YAML.
//
// A module declares its options as a table of srl_cfg_field (key, type, where the value lives in
// its struct, default, range, help) and wraps it in an srl_cfg_schema. Values are applied in
// layers: srl_config_defaults, then srl_config_load_file, then srl_config_set for each override.
// Every load is all-or-nothing: on error the struct is unchanged and srl_errmsg() says where and
// what ("run.yaml:12:3: unknown key 'algo_cfgs.stpes_per_epoch' (did you mean
// 'algo_cfgs.steps_per_epoch'?)"). docs/config.md describes the format and the messages.
#ifndef SRL_CONFIG_H
#define SRL_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum srl_cfg_type {
  SRL_CFG_BOOL,        // int (0/1); YAML true/false
  SRL_CFG_INT,         // int
  SRL_CFG_FLOAT,       // double
  SRL_CFG_STRING,      // char[size]
  SRL_CFG_CHOICE,      // char[size], one of `choices` ("cpu|cuda")
  SRL_CFG_INT_LIST,    // int[size] plus an int element count at count_offset
  SRL_CFG_FLOAT_LIST,  // double[size] plus an int element count at count_offset
} srl_cfg_type;

typedef struct srl_cfg_field {
  const char *key;  // dotted path: "algo_cfgs.steps_per_epoch"
  srl_cfg_type type;
  size_t offset;        // offsetof(struct, member)
  size_t size;          // STRING/CHOICE: bytes of the char array; lists: max elements
  size_t count_offset;  // lists only: offsetof the int count
  const char *def;      // default, as YAML text ("20000", "[64, 64]", "tanh", "true")
  double min, max;      // inclusive range for numbers and list elements; min > max: no range
  const char *choices;  // CHOICE only
  const char *help;     // one line; written as a comment when the config is dumped
} srl_cfg_field;

typedef struct srl_cfg_schema {
  const char *name;  // "ppo_lag", "SafetyPointGoal1 options"
  const srl_cfg_field *fields;
  int n_fields;
} srl_cfg_schema;

// longest dotted key (bytes, without the terminating NUL)
#define SRL_CFG_KEY_MAX 255

// Fill cfg with every field's default.
int srl_config_defaults(const srl_cfg_schema *s, void *cfg);
// Apply a YAML file / string over cfg's current values (nested mappings follow the dotted keys).
// Errors name source:line:col and the key: "run.yaml:12:3: unknown key 'stpes_per_epoch' (did you
// mean 'algo_cfgs.steps_per_epoch'?)", "run.yaml:4:15: 'algo_cfgs.batch_size' must be an integer,
// got 'abc'", "run.yaml:5:12: 'algo_cfgs.gamma' = 1.5 is out of range [0, 1]". cfg is left
// unchanged on error. Returns SRL_ECONFIG for anything wrong in the input (syntax, keys, types,
// ranges), SRL_ENOTFOUND / SRL_EIO when the file cannot be read, SRL_EINVAL for a broken schema.
int srl_config_load_file(const srl_cfg_schema *s, void *cfg, const char *path);
int srl_config_load_string(const srl_cfg_schema *s, void *cfg, const char *yaml,
                           const char *source_name);
// Apply one "--set" override: "algo_cfgs.batch_size=128" (value parsed as YAML).
int srl_config_set(const srl_cfg_schema *s, void *cfg, const char *assignment);
// Write the resolved config (every field, defaults included) as YAML that loads back to the
// same values; srl_config_save writes a file atomically (temporary file, fsync, rename).
int srl_config_write(const srl_cfg_schema *s, const void *cfg, FILE *f);
int srl_config_save(const srl_cfg_schema *s, const void *cfg, const char *path);

//---- helpers beyond loading and writing ---------------------------------------------------

// Check a schema for mistakes a module author can make (bad or duplicate keys, a key that is
// both a value and a section, overlapping or misaligned members, a CHOICE without choices);
// 0 or SRL_EINVAL naming the field. Every function above runs this check first.
int srl_config_check_schema(const srl_cfg_schema *s);

// The field with this exact dotted key, or NULL.
const srl_cfg_field *srl_config_find(const srl_cfg_schema *s, const char *key);

// Format one field's current value as the YAML text the writer emits ("0.99", "[64, 64]",
// "cuda", "\"two words\""); 0, or SRL_ERANGE when it does not fit in `cap` bytes.
int srl_config_format(const srl_cfg_field *fld, const void *cfg, char *buf, size_t cap);

// Print one line per field (key, type, range or choices, default) and its help text: the
// option list a command shows for --help.
int srl_config_print_help(const srl_cfg_schema *s, FILE *f);

//---- declaring fields ---------------------------------------------------------------------
// Initializers for schema tables; T is the config struct, m its member, k the dotted key, d the
// default as YAML text, lo/hi the inclusive range (pass 1, 0 for none), h the help line:
//   static const srl_cfg_field fields[] = {
//     SRL_CFG_INT(ppo_cfg, batch_size, "algo_cfgs.batch_size", "64", 1, 1 << 20, "minibatch"),
//     SRL_CFG_CHOICE(ppo_cfg, device, "train_cfgs.device", "cpu", "cpu|cuda", "where nets run"),
//     SRL_CFG_INT_LIST(ppo_cfg, hidden, n_hidden, "model_cfgs.actor.hidden_sizes", "[64, 64]",
//                      1, 4096, "actor widths"),
//   };
//   static const srl_cfg_schema schema = SRL_CFG_SCHEMA("ppo_lag", fields);
// clang-format off
#define SRL_CFG__MSIZE(T, m) sizeof(((T *)0)->m)
#define SRL_CFG__MLEN(T, m) (sizeof(((T *)0)->m) / sizeof(((T *)0)->m[0]))

#define SRL_CFG_BOOL(T, m, k, d, h) \
  {.key = (k), .type = SRL_CFG_BOOL, .offset = offsetof(T, m), .size = 1, .def = (d), \
   .min = 1, .max = 0, .help = (h)}
#define SRL_CFG_INT(T, m, k, d, lo, hi, h) \
  {.key = (k), .type = SRL_CFG_INT, .offset = offsetof(T, m), .size = 1, .def = (d), \
   .min = (lo), .max = (hi), .help = (h)}
#define SRL_CFG_FLOAT(T, m, k, d, lo, hi, h) \
  {.key = (k), .type = SRL_CFG_FLOAT, .offset = offsetof(T, m), .size = 1, .def = (d), \
   .min = (lo), .max = (hi), .help = (h)}
#define SRL_CFG_STRING(T, m, k, d, h) \
  {.key = (k), .type = SRL_CFG_STRING, .offset = offsetof(T, m), .size = SRL_CFG__MSIZE(T, m), \
   .def = (d), .min = 1, .max = 0, .help = (h)}
#define SRL_CFG_CHOICE(T, m, k, d, c, h) \
  {.key = (k), .type = SRL_CFG_CHOICE, .offset = offsetof(T, m), .size = SRL_CFG__MSIZE(T, m), \
   .def = (d), .min = 1, .max = 0, .choices = (c), .help = (h)}
#define SRL_CFG_INT_LIST(T, m, n, k, d, lo, hi, h) \
  {.key = (k), .type = SRL_CFG_INT_LIST, .offset = offsetof(T, m), .size = SRL_CFG__MLEN(T, m), \
   .count_offset = offsetof(T, n), .def = (d), .min = (lo), .max = (hi), .help = (h)}
#define SRL_CFG_FLOAT_LIST(T, m, n, k, d, lo, hi, h) \
  {.key = (k), .type = SRL_CFG_FLOAT_LIST, .offset = offsetof(T, m), \
   .size = SRL_CFG__MLEN(T, m), .count_offset = offsetof(T, n), .def = (d), .min = (lo), \
   .max = (hi), .help = (h)}
#define SRL_CFG_SCHEMA(name, fields) \
  {(name), (fields), (int)(sizeof(fields) / sizeof((fields)[0]))}
// clang-format on

#ifdef __cplusplus
}
#endif
#endif  // SRL_CONFIG_H

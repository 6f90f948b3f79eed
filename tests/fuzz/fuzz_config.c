// fuzz_config.c: libFuzzer target for the config loader. Each input is read as a YAML document
// and as a "--set" assignment over the PPOLag-shaped test schema. Invariants: no crash or leak;
// a failed load leaves the struct untouched and names its source; a successful one dumps and
// reloads to bitwise the same struct.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "tests/core/config_ppolag_schema.h"

static const srl_cfg_schema *S = &ppolag_schema;

static void die(const char *what, const char *text) {
  fprintf(stderr, "fuzz_config: %s\nmessage: %s\n%s\n", what, srl_errmsg(), text ? text : "");
  abort();
}

// write the config, read it back into a zeroed struct, compare every byte
static void check_roundtrip(const ppolag_cfg *a) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return;
  if (srl_config_write(S, a, f) != 0) die("write failed", NULL);
  fclose(f);
  ppolag_cfg b;
  memset(&b, 0, sizeof b);
  if (srl_config_load_string(S, &b, text, "dump") != 0) die("the dump does not load", text);
  if (memcmp(a, &b, sizeof b) != 0) die("the dump loads to different bytes", text);
  free(text);
}

// after one load: success round-trips, failure changes nothing and says where
static void check_result(int rc, const ppolag_cfg *c, const ppolag_cfg *before,
                         const char *prefix) {
  if (rc == 0) {
    check_roundtrip(c);
    return;
  }
  if (rc != SRL_ECONFIG) die("unexpected status", NULL);
  if (memcmp(c, before, sizeof *c) != 0) die("a failed load changed the config", NULL);
  if (strncmp(srl_errmsg(), prefix, strlen(prefix)) != 0) die("message lacks its source", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static ppolag_cfg defaults;
  static int ready;
  if (!ready) {
    memset(&defaults, 0, sizeof defaults);
    if (srl_config_defaults(S, &defaults) != 0) die("defaults failed", NULL);
    ready = 1;
  }
  if (size > (1u << 16)) return 0;
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';

  ppolag_cfg c;
  memcpy(&c, &defaults, sizeof c);
  check_result(srl_config_load_string(S, &c, text, "fuzz.yaml"), &c, &defaults, "fuzz.yaml:");

  memcpy(&c, &defaults, sizeof c);
  check_result(srl_config_set(S, &c, text), &c, &defaults, "--set:");

  free(text);
  return 0;
}

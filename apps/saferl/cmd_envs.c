// cmd_envs.c: `saferl envs [--json]` lists every registered environment id with its
// observation and action dimensions, time limit and description.
#include <stdio.h>
#include <string.h>

#include "apps/saferl/commands.h"
#include "envs/env.h"


// a JSON string literal: quotes, backslashes and control characters escaped
static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}


static int usage(FILE *f) {
  fprintf(f,
          "usage: saferl envs [--json]\n\n"
          "Lists every registered environment: id, observation and action dimensions, the\n"
          "registered time limit (max_episode_steps) and a description. --json prints a JSON\n"
          "array of objects with those fields.\n");
  return f == stdout ? 0 : 2;
}


int srl_cmd_envs(int argc, char **argv) {
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
      return usage(stdout);
    else {
      fprintf(stderr, "saferl envs: unknown option '%s'\n", argv[i]);
      return usage(stderr);
    }
  }

  int n = srl_env_count();
  if (json) {
    printf("[");
    for (int i = 0; i < n; i++) {
      const srl_env_spec *s = srl_env_spec_at(i);
      printf("%s\n  {\"id\": ", i ? "," : "");
      json_string(stdout, s->id);
      printf(", \"obs_dim\": %d, \"act_dim\": %d, \"max_episode_steps\": %d, \"description\": ",
             s->obs_dim, s->act_dim, s->max_episode_steps);
      json_string(stdout, s->description);
      printf("}");
    }
    printf("%s]\n", n ? "\n" : "");
    return 0;
  }

  int width = 2;
  for (int i = 0; i < n; i++) {
    int len = (int)strlen(srl_env_spec_at(i)->id);
    if (len > width) width = len;
  }
  printf("%-*s %7s %7s %9s  %s\n", width, "id", "obs_dim", "act_dim", "max_steps", "description");
  for (int i = 0; i < n; i++) {
    const srl_env_spec *s = srl_env_spec_at(i);
    printf("%-*s %7d %7d %9d  %s\n", width, s->id, s->obs_dim, s->act_dim, s->max_episode_steps,
           s->description ? s->description : "");
  }
  return 0;
}

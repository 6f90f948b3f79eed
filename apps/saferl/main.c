// main.c: the saferl command-line tool; dispatches to one file per command.
#include <stdio.h>
#include <string.h>

#include "apps/saferl/commands.h"

static const srl_command commands[] = {
    {"train", "train a constrained policy from a YAML config", srl_cmd_train},
    {"eval", "evaluate a trained policy: mean and std of return, cost, length", srl_cmd_eval},
    {"version", "print the version and build options", srl_cmd_version},
    {"render", "draw an environment into PNG frames or an MP4 video", srl_cmd_render},
    {"bench", "measure speed: update (PPO minibatch), env (env steps), remote (bridge)",
     srl_cmd_bench},
    {"envs", "list the registered environments (--json)", srl_cmd_envs},
    {"plot", "draw return and cost curves of run directories into a PNG", srl_cmd_plot},
    {"dataset", "offline datasets (HDF5): info, filter (DSRL's density filter)", srl_cmd_dataset},
    {"collect", "roll policies out into a DSRL-style offline dataset", srl_cmd_collect},
    {"offline", "offline safe RL from a dataset: train, eval (DSRL's normalized scores)",
     srl_cmd_offline},
    {"serve", "serve over the wire protocol: env (a registered env), policy (a trained one)",
     srl_cmd_serve},
    {"keygen", "write a CURVE key pair (NAME.key, NAME.key_secret) for serve and remote envs",
     srl_cmd_keygen},
    {"hil", "hardware in the loop: a fixed-rate loop of a plant and a policy, timed", srl_cmd_hil},
};


static void usage(FILE *f) {
  fprintf(f, "usage: saferl <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
  fprintf(f, "\n'saferl <command> --help' describes a command.\n");
}


int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "saferl: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}

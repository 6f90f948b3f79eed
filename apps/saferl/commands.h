// commands.h: the CLI's commands; each lives in its own file as srl_cmd_<name>(argc, argv),
// where argv[0] is the command's name. Exit codes: 0 success, 1 failure, 2 usage error.
#ifndef SRL_APP_COMMANDS_H
#define SRL_APP_COMMANDS_H

typedef struct srl_command {
  const char *name, *help;
  int (*run)(int argc, char **argv);
} srl_command;

int srl_cmd_version(int argc, char **argv);
int srl_cmd_render(int argc, char **argv);
int srl_cmd_bench(int argc, char **argv);
int srl_cmd_envs(int argc, char **argv);
int srl_cmd_train(int argc, char **argv);
int srl_cmd_eval(int argc, char **argv);
int srl_cmd_plot(int argc, char **argv);
int srl_cmd_dataset(int argc, char **argv);
int srl_cmd_collect(int argc, char **argv);
int srl_cmd_offline(int argc, char **argv);  // `saferl offline train|eval|keys`, cmd_offline.c
int srl_cmd_serve(int argc, char **argv);    // `saferl serve <what>`, a table in cmd_serve.c
int srl_cmd_keygen(int argc, char **argv);
int srl_cmd_hil(int argc, char **argv);  // `saferl hil run`, cmd_hil.c
// `saferl serve policy`: a trained policy for hardware in the loop (cmd_serve_policy.c)
int srl_cmd_serve_policy(int argc, char **argv);

// `saferl bench <what>`: one function per benchmark, argv[0] is <what>
int srl_bench_update(int argc, char **argv);
int srl_bench_env(int argc, char **argv);
int srl_bench_remote(int argc, char **argv);
int srl_bench_fisor(int argc, char **argv);

#endif

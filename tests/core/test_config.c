// test_config.c: the config loader and writer against a PPOLag-shaped schema: defaults, block and
// flow YAML, every error with its exact text (source, line, column, key, suggestion), the
// all-or-nothing rule, --set overrides, and dump → reload giving bitwise the same struct.
#define _GNU_SOURCE
#include <dirent.h>
#include <limits.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "test.h"
#include "tests/core/config_ppolag_schema.h"

static const srl_cfg_schema *S = &ppolag_schema;
static char tmpdir[PATH_MAX];

// the last error message equals `expected` exactly
#define CHECK_MSG(expected)                                                                     \
  do {                                                                                          \
    if (strcmp(srl_errmsg(), (expected)) != 0) {                                                \
      fprintf(stderr, "  %s:%d: message\n    got      \"%s\"\n    expected \"%s\"\n", __FILE__, \
              __LINE__, srl_errmsg(), (expected));                                              \
      srl_test_failures_++;                                                                     \
    }                                                                                           \
  } while (0)

// zeroed (so padding compares equal), then the defaults
static void fresh(ppolag_cfg *c) {
  memset(c, 0, sizeof *c);
  CHECK_OK(srl_config_defaults(S, c));
}

// a load that must fail with `code` and the exact message, leaving the struct as it was
static void expect_load_error(int line, const char *yaml, int code, const char *msg) {
  ppolag_cfg c, before;
  fresh(&c);
  c.seed = 4242;  // not a default, so "unchanged" means more than "reset to defaults"
  memcpy(&before, &c, sizeof c);
  int rc = srl_config_load_string(S, &c, yaml, "t.yaml");
  if (rc != code) {
    fprintf(stderr, "  line %d: load returned %s, expected %s (%s)\n", line, srl_errname(rc),
            srl_errname(code), srl_errmsg());
    srl_test_failures_++;
  }
  if (strcmp(srl_errmsg(), msg) != 0) {
    fprintf(stderr, "  line %d: message\n    got      \"%s\"\n    expected \"%s\"\n", line,
            srl_errmsg(), msg);
    srl_test_failures_++;
  }
  if (memcmp(&c, &before, sizeof c) != 0) {
    fprintf(stderr, "  line %d: the failed load changed the config\n", line);
    srl_test_failures_++;
  }
}
#define EXPECT_LOAD_ERROR(yaml, msg) expect_load_error(__LINE__, (yaml), SRL_ECONFIG, (msg))

static void expect_set_error(int line, const char *assignment, const char *msg) {
  ppolag_cfg c, before;
  fresh(&c);
  CHECK_OK(srl_config_set(S, &c, "algo_cfgs.batch_size=99"));
  memcpy(&before, &c, sizeof c);
  int rc = srl_config_set(S, &c, assignment);
  if (rc != SRL_ECONFIG) {
    fprintf(stderr, "  line %d: set returned %s: %s\n", line, srl_errname(rc), srl_errmsg());
    srl_test_failures_++;
  }
  if (strcmp(srl_errmsg(), msg) != 0) {
    fprintf(stderr, "  line %d: message\n    got      \"%s\"\n    expected \"%s\"\n", line,
            srl_errmsg(), msg);
    srl_test_failures_++;
  }
  if (memcmp(&c, &before, sizeof c) != 0) {
    fprintf(stderr, "  line %d: the failed --set changed the config\n", line);
    srl_test_failures_++;
  }
}
#define EXPECT_SET_ERROR(a, msg) expect_set_error(__LINE__, (a), (msg))

// strings set by hand are zero-filled like the loader's, so structs compare bytewise
static void set_str(char *dst, size_t size, const char *src) {
  memset(dst, 0, size);
  strncpy(dst, src, size - 1);
}
#define SET_STR(dst, src) set_str((dst), sizeof(dst), (src))

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

// the dump of a config as a string (caller frees)
static char *dump(const ppolag_cfg *c) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  CHECK_OK(srl_config_write(S, c, f));
  fclose(f);
  return text;
}


TEST(test_defaults) {
  ppolag_cfg c;
  fresh(&c);
  // OmniSafe's PPOLag defaults, written out independently of the schema table
  CHECK_EQ_INT(c.seed, 0);
  CHECK(strcmp(c.exp_name, "ppo_lag") == 0);
  CHECK(strcmp(c.train.device, "cpu") == 0);
  CHECK_EQ_INT(c.train.torch_threads, 16);
  CHECK_EQ_INT(c.train.vector_env_nums, 1);
  CHECK_EQ_INT(c.train.total_steps, 10000000);
  CHECK_EQ_INT(c.algo.steps_per_epoch, 20000);
  CHECK_EQ_INT(c.algo.update_iters, 40);
  CHECK_EQ_INT(c.algo.batch_size, 64);
  CHECK(c.algo.target_kl == 0.02);
  CHECK(c.algo.gamma == 0.99 && c.algo.cost_gamma == 0.99);
  CHECK(c.algo.lam == 0.95 && c.algo.clip == 0.2);
  CHECK(c.algo.max_grad_norm == 40.0 && c.algo.critic_norm_coef == 0.001);
  CHECK_EQ_INT(c.algo.reward_normalize, 0);
  CHECK_EQ_INT(c.algo.obs_normalize, 1);
  CHECK_EQ_INT(c.algo.kl_early_stop, 1);
  CHECK(strcmp(c.algo.adv_estimation_method, "gae") == 0);
  CHECK_EQ_INT(c.logger.window_lens, 100);
  CHECK(strcmp(c.logger.log_dir, "./runs") == 0);
  CHECK(strcmp(c.model.weight_initialization_mode, "kaiming_uniform") == 0);
  CHECK_EQ_INT(c.model.n_std_range, 2);
  CHECK(c.model.std_range[0] == 0.5 && c.model.std_range[1] == 0.1);
  CHECK_EQ_INT(c.model.actor.n_hidden_sizes, 2);
  CHECK_EQ_INT(c.model.actor.hidden_sizes[0], 64);
  CHECK_EQ_INT(c.model.actor.hidden_sizes[1], 64);
  CHECK_EQ_INT(c.model.actor.hidden_sizes[2], 0);  // unused elements are zero
  CHECK(strcmp(c.model.actor.activation, "tanh") == 0);
  CHECK(c.model.actor.lr == 0.0003 && c.model.critic.lr == 0.0003);
  CHECK(c.lagrange.cost_limit == 25.0);
  CHECK(c.lagrange.lagrangian_multiplier_init == 0.001);
  CHECK(c.lagrange.lambda_lr == 0.035);
  CHECK(strcmp(c.lagrange.lambda_optimizer, "Adam") == 0);
  // defaults overwrite whatever was there
  ppolag_cfg d;
  memset(&d, 0, sizeof d);
  d.seed = 9;
  d.model.actor.hidden_sizes[3] = 7;
  d.model.actor.n_hidden_sizes = 4;
  strcpy(d.train.device, "cuda");
  CHECK_OK(srl_config_defaults(S, &d));
  CHECK(memcmp(&c, &d, sizeof c) == 0);
}


TEST(test_schema_checks) {
  typedef struct {
    int a, b;
    double x;
    char s[8];
    int l[3], n;
  } small;
  small v;
  memset(&v, 0, sizeof v);
  srl_cfg_field f[3] = {
      SRL_CFG_INT(small, a, "sec.a", "1", 0, 10, "a"),
      SRL_CFG_INT(small, b, "sec.b", "2", 0, 10, "b"),
      SRL_CFG_INT_LIST(small, l, n, "sec.l", "[1, 2]", 0, 10, "l"),
  };
  srl_cfg_schema s = {"small", f, 3};
  CHECK_OK(srl_config_check_schema(&s));
  CHECK_OK(srl_config_defaults(&s, &v));
  CHECK_EQ_INT(v.a, 1);
  CHECK_EQ_INT(v.n, 2);
  // the same key twice
  f[1].key = "sec.a";
  CHECK_ERR(srl_config_check_schema(&s), SRL_EINVAL);
  CHECK_MSG("schema 'small': key 'sec.a' appears twice");
  // a key that is a value and a section
  f[1].key = "sec";
  CHECK_ERR(srl_config_defaults(&s, &v), SRL_EINVAL);
  CHECK_MSG("schema 'small': 'sec' is both a value and a section of 'sec.a'");
  // malformed keys
  f[1].key = "sec..b";
  CHECK_ERR(srl_config_check_schema(&s), SRL_EINVAL);
  CHECK_MSG("schema 'small': field 1 has an invalid key 'sec..b'");
  f[1].key = "sec.b c";
  CHECK_ERR(srl_config_check_schema(&s), SRL_EINVAL);
  f[1].key = "sec.b";
  // two fields on the same bytes
  f[1].offset = offsetof(small, a);
  CHECK_ERR(srl_config_check_schema(&s), SRL_EINVAL);
  CHECK_MSG("schema 'small': 'sec.a' and 'sec.b' share bytes");
  f[1].offset = offsetof(small, b);
  // a list count inside its elements
  f[2].count_offset = offsetof(small, l) + sizeof(int);
  CHECK_ERR(srl_config_check_schema(&s), SRL_EINVAL);
  f[2].count_offset = offsetof(small, n);
  // a default the field refuses is the schema's fault: EINVAL, struct untouched
  f[1].def = "11";
  v.a = 5;
  CHECK_ERR(srl_config_defaults(&s, &v), SRL_EINVAL);
  CHECK_MSG("schema 'small' default:1:1: 'sec.b' = 11 is out of range [0, 10]");
  CHECK_EQ_INT(v.a, 5);
  f[1].def = NULL;  // no default: zero
  CHECK_OK(srl_config_defaults(&s, &v));
  CHECK_EQ_INT(v.b, 0);
  // a choice needs choices that fit its array
  srl_cfg_field g[1] = {SRL_CFG_CHOICE(small, s, "mode", "fast", "fast|extremely_slow", "m")};
  srl_cfg_schema gs = {"g", g, 1};
  CHECK_ERR(srl_config_check_schema(&gs), SRL_EINVAL);
  CHECK_MSG("schema 'g': choice 'mode' has a bad choice in 'fast|extremely_slow'");
  g[0].choices = NULL;
  CHECK_ERR(srl_config_check_schema(&gs), SRL_EINVAL);
  g[0].choices = "fast|slow";
  g[0].def = NULL;  // no default: the first choice
  CHECK_OK(srl_config_defaults(&gs, &v));
  CHECK(strcmp(v.s, "fast") == 0);
  // a section split across the table is written whole where its first field stands; line
  // breaks in help text become spaces
  srl_cfg_field h[3] = {
      SRL_CFG_INT(small, a, "x.a", "1", 1, 0, "first\nline"),
      SRL_CFG_FLOAT(small, x, "top", "0.5", 1, 0, NULL),
      SRL_CFG_INT(small, b, "x.b", "2", 1, 0, "b"),
  };
  srl_cfg_schema hs = {"h", h, 3};
  CHECK_OK(srl_config_defaults(&hs, &v));
  char *text = NULL;
  size_t len = 0;
  FILE *mf = open_memstream(&text, &len);
  CHECK_OK(srl_config_write(&hs, &v, mf));
  fclose(mf);
  CHECK(strcmp(text,
               "# h: every option, defaults included\n\nx:\n  # first line\n  a: 1\n"
               "  # b\n  b: 2\ntop: 0.5\n") == 0);
  free(text);
  // find
  CHECK(srl_config_find(S, "algo_cfgs.gamma") == &ppolag_fields[20]);
  CHECK(srl_config_find(S, "algo_cfgs") == NULL);
  CHECK_OK(srl_config_check_schema(S));
}


TEST(test_load_nested_block) {
  const char *yaml =
      "# PPOLag on SafetyPointGoal1\n"
      "seed: 7\n"
      "train_cfgs:\n"
      "  device: cuda\n"
      "  total_steps: 2000000\n"
      "  vector_env_nums: 4   # four envs\n"
      "algo_cfgs:\n"
      "  steps_per_epoch: 4000\n"
      "  batch_size: 128\n"
      "  gamma: 0.995\n"
      "  target_kl: 1e-2\n"
      "  obs_normalize: false\n"
      "  adv_estimation_method: gae\n"
      "model_cfgs:\n"
      "  actor:\n"
      "    hidden_sizes:\n"
      "      - 256\n"
      "      - 256\n"
      "      - 128\n"
      "    activation: relu\n"
      "    lr: 3.0e-4\n"
      "  critic:\n"
      "    hidden_sizes: [128]\n"
      "lagrange_cfgs:\n"
      "  cost_limit: 10\n"
      "  lambda_optimizer: SGD\n";
  ppolag_cfg c, d;
  fresh(&c);
  CHECK_OK(srl_config_load_string(S, &c, yaml, "run.yaml"));
  CHECK_EQ_INT(c.seed, 7);
  CHECK(strcmp(c.train.device, "cuda") == 0);
  CHECK_EQ_INT(c.train.total_steps, 2000000);
  CHECK_EQ_INT(c.train.vector_env_nums, 4);
  CHECK_EQ_INT(c.algo.steps_per_epoch, 4000);
  CHECK_EQ_INT(c.algo.batch_size, 128);
  CHECK(c.algo.gamma == 0.995);
  CHECK(c.algo.target_kl == 0.01);
  CHECK_EQ_INT(c.algo.obs_normalize, 0);
  CHECK_EQ_INT(c.model.actor.n_hidden_sizes, 3);
  CHECK_EQ_INT(c.model.actor.hidden_sizes[0], 256);
  CHECK_EQ_INT(c.model.actor.hidden_sizes[2], 128);
  CHECK(strcmp(c.model.actor.activation, "relu") == 0);
  CHECK(c.model.actor.lr == 3.0e-4);
  CHECK_EQ_INT(c.model.critic.n_hidden_sizes, 1);
  CHECK_EQ_INT(c.model.critic.hidden_sizes[0], 128);
  CHECK_EQ_INT(c.model.critic.hidden_sizes[1], 0);  // the shorter list clears the old tail
  CHECK(c.lagrange.cost_limit == 10.0);             // an int where a float is expected
  CHECK(strcmp(c.lagrange.lambda_optimizer, "SGD") == 0);
  // what the file does not name keeps its value
  CHECK_EQ_INT(c.algo.update_iters, 40);
  CHECK(strcmp(c.model.critic.activation, "tanh") == 0);
  CHECK(c.model.critic.lr == 0.0003);
  // the same values by dotted keys at the top level
  fresh(&d);
  CHECK_OK(srl_config_load_string(S, &d,
                                  "seed: 7\ntrain_cfgs.device: cuda\ntrain_cfgs.total_steps: 2e6\n"
                                  "train_cfgs.vector_env_nums: 4\n"
                                  "algo_cfgs: {steps_per_epoch: 4000, batch_size: 128}\n"
                                  "algo_cfgs.gamma: 0.995\nalgo_cfgs.target_kl: 0.01\n"
                                  "algo_cfgs.obs_normalize: False\n"
                                  "model_cfgs.actor: {hidden_sizes: [256, 256, 128]}\n"
                                  "model_cfgs.actor.activation: relu\n"
                                  "model_cfgs:\n  actor.lr: 0.0003\n  critic:\n"
                                  "    hidden_sizes:\n    - 128\n"
                                  "lagrange_cfgs: {cost_limit: 10.0, lambda_optimizer: 'SGD'}\n",
                                  "flat.yaml"));
  CHECK(memcmp(&c, &d, sizeof c) == 0);
}


TEST(test_load_flow_omnisafe) {
  // OmniSafe's PPOLag defaults block in flow style, with some values changed
  const char *yaml =
      "seed: 5\n"
      "train_cfgs: {device: cpu, torch_threads: 8, vector_env_nums: 2, parallel: 1, "
      "total_steps: 1000000}\n"
      "algo_cfgs: {steps_per_epoch: 20000, update_iters: 40, batch_size: 32, target_kl: 0.02,\n"
      "  entropy_coef: 0.0, reward_normalize: False, cost_normalize: True, obs_normalize: True,\n"
      "  kl_early_stop: True, use_max_grad_norm: True, max_grad_norm: 40.0, use_critic_norm: "
      "True,\n"
      "  critic_norm_coef: 0.001, gamma: 0.99, cost_gamma: 0.99, lam: 0.97, lam_c: 0.95, "
      "clip: 0.2,\n"
      "  adv_estimation_method: gae, standardized_rew_adv: True, standardized_cost_adv: True,\n"
      "  penalty_coef: 0.0, use_cost: True}\n"
      "logger_cfgs: {use_tensorboard: False, save_model_freq: 50, window_lens: 100}\n"
      "model_cfgs: {weight_initialization_mode: orthogonal, actor_type: gaussian_learning,\n"
      "  linear_lr_decay: True, exploration_noise_anneal: False, std_range: [0.5, 0.1],\n"
      "  actor: {hidden_sizes: [32, 32, 16], activation: tanh, lr: 0.0003},\n"
      "  critic: {hidden_sizes: [64, 64], activation: tanh, lr: 0.001}}\n"
      "lagrange_cfgs: {cost_limit: 25.0, lagrangian_multiplier_init: 0.001, lambda_lr: 0.035,\n"
      "  lambda_optimizer: \"Adam\"}\n";
  ppolag_cfg c;
  fresh(&c);
  CHECK_OK(srl_config_load_string(S, &c, yaml, "ppo_lag.yaml"));
  CHECK_EQ_INT(c.seed, 5);
  CHECK_EQ_INT(c.train.torch_threads, 8);
  CHECK_EQ_INT(c.train.vector_env_nums, 2);
  CHECK_EQ_INT(c.train.total_steps, 1000000);
  CHECK_EQ_INT(c.algo.batch_size, 32);
  CHECK_EQ_INT(c.algo.cost_normalize, 1);
  CHECK(c.algo.lam == 0.97);
  CHECK_EQ_INT(c.logger.use_tensorboard, 0);
  CHECK_EQ_INT(c.logger.save_model_freq, 50);
  CHECK(strcmp(c.model.weight_initialization_mode, "orthogonal") == 0);
  CHECK_EQ_INT(c.model.actor.n_hidden_sizes, 3);
  CHECK_EQ_INT(c.model.actor.hidden_sizes[2], 16);
  CHECK(c.model.critic.lr == 0.001);
  CHECK(strcmp(c.lagrange.lambda_optimizer, "Adam") == 0);
}


TEST(test_scalar_forms) {
  ppolag_cfg c;
  fresh(&c);
  // integers: decimal, hex, octal, integral float notation
  CHECK_OK(
      srl_config_load_string(S, &c, "train_cfgs: {total_steps: 1e7, torch_threads: 0x10}", "t"));
  CHECK_EQ_INT(c.train.total_steps, 10000000);
  CHECK_EQ_INT(c.train.torch_threads, 16);
  CHECK_OK(srl_config_load_string(S, &c, "seed: 0o17\nalgo_cfgs.batch_size: +256", "t"));
  CHECK_EQ_INT(c.seed, 15);
  CHECK_EQ_INT(c.algo.batch_size, 256);
  CHECK_OK(srl_config_load_string(S, &c, "seed: 2147483647", "t"));
  CHECK_EQ_INT(c.seed, INT_MAX);
  // floats: exponents, leading dot, trailing dot, ints, tags
  CHECK_OK(srl_config_load_string(
      S, &c, "algo_cfgs: {target_kl: 1e-3, clip: .25, gamma: 1., entropy_coef: 0}", "t"));
  CHECK(c.algo.target_kl == 1e-3 && c.algo.clip == 0.25 && c.algo.gamma == 1.0);
  CHECK(c.algo.entropy_coef == 0.0);
  CHECK_OK(srl_config_load_string(S, &c, "algo_cfgs.gamma: !!float 0.5\nseed: !!int 3", "t"));
  CHECK(c.algo.gamma == 0.5);
  CHECK_EQ_INT(c.seed, 3);
  // bools
  CHECK_OK(
      srl_config_load_string(S, &c, "algo_cfgs: {use_cost: false, kl_early_stop: False}", "t"));
  CHECK_EQ_INT(c.algo.use_cost, 0);
  CHECK_EQ_INT(c.algo.kl_early_stop, 0);
  CHECK_OK(srl_config_load_string(S, &c, "algo_cfgs: {use_cost: True, kl_early_stop: true}", "t"));
  CHECK_EQ_INT(c.algo.use_cost, 1);
  CHECK_EQ_INT(c.algo.kl_early_stop, 1);
  // strings: plain text of any kind, quoted, block, null is empty
  CHECK_OK(srl_config_load_string(S, &c, "exp_name: 123", "t"));
  CHECK(strcmp(c.exp_name, "123") == 0);
  CHECK_OK(srl_config_load_string(S, &c, "exp_name: 'it''s: \"x\"'", "t"));
  CHECK(strcmp(c.exp_name, "it's: \"x\"") == 0);
  CHECK_OK(srl_config_load_string(S, &c, "exp_name: \"tab\\there\\u00e9\"", "t"));
  CHECK(strcmp(c.exp_name, "tab\there\xc3\xa9") == 0);
  CHECK_OK(srl_config_load_string(S, &c, "exp_name: |\n  two\n  lines\n", "t"));
  CHECK(strcmp(c.exp_name, "two\nlines\n") == 0);
  CHECK_OK(srl_config_load_string(S, &c, "exp_name: ~", "t"));
  CHECK(strcmp(c.exp_name, "") == 0);
  CHECK_OK(srl_config_load_string(S, &c, "exp_name: \"null\"", "t"));
  CHECK(strcmp(c.exp_name, "null") == 0);
  CHECK_OK(srl_config_load_string(S, &c, "exp_name: 0123456789012345678901234567890", "t"));
  CHECK_EQ_INT(strlen(c.exp_name), 31);  // the longest that fits char[32]
  // lists: empty, ints into a float list, a block sequence
  CHECK_OK(srl_config_load_string(S, &c, "model_cfgs.critic.hidden_sizes: []", "t"));
  CHECK_EQ_INT(c.model.critic.n_hidden_sizes, 0);
  CHECK_EQ_INT(c.model.critic.hidden_sizes[0], 0);
  CHECK_OK(srl_config_load_string(S, &c, "model_cfgs:\n  std_range:\n  - 1\n  - 2.5e-1\n", "t"));
  CHECK_EQ_INT(c.model.n_std_range, 2);
  CHECK(c.model.std_range[0] == 1.0 && c.model.std_range[1] == 0.25);
  // a section given as null is left alone
  ppolag_cfg before;
  memcpy(&before, &c, sizeof c);
  CHECK_OK(srl_config_load_string(S, &c, "algo_cfgs:\n# everything commented out\n", "t"));
  CHECK(memcmp(&c, &before, sizeof c) == 0);
}


TEST(test_empty_inputs) {
  ppolag_cfg c, d;
  fresh(&c);
  fresh(&d);
  const char *empties[] = {"", "\n\n", "# only a comment\n", "---\n", "---\n...\n", "~\n", "{}"};
  for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
    CHECK_OK(srl_config_load_string(S, &c, empties[i], "empty.yaml"));
    CHECK(memcmp(&c, &d, sizeof c) == 0);
  }
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/empty.yaml", tmpdir);
  write_file(path, "");
  CHECK_OK(srl_config_load_file(S, &c, path));
  CHECK(memcmp(&c, &d, sizeof c) == 0);
}


TEST(test_errors_keys) {
  EXPECT_LOAD_ERROR("seed: 1\nalgo_cfgs:\n  stpes_per_epoch: 100\n",
                    "t.yaml:3:3: unknown key 'algo_cfgs.stpes_per_epoch' (did you mean "
                    "'algo_cfgs.steps_per_epoch'?)");
  // a key at the wrong level is found by its last component
  EXPECT_LOAD_ERROR("stpes_per_epoch: 100\n",
                    "t.yaml:1:1: unknown key 'stpes_per_epoch' (did you mean "
                    "'algo_cfgs.steps_per_epoch'?)");
  EXPECT_LOAD_ERROR("batch_size: 100\n",
                    "t.yaml:1:1: unknown key 'batch_size' (did you mean 'algo_cfgs.batch_size'?)");
  // of two equally close last components, the one under the same section
  EXPECT_LOAD_ERROR("model_cfgs:\n  critic:\n    hiden_sizes: [1]\n",
                    "t.yaml:3:5: unknown key 'model_cfgs.critic.hiden_sizes' (did you mean "
                    "'model_cfgs.critic.hidden_sizes'?)");
  // a misspelt section
  EXPECT_LOAD_ERROR("algo_cfg:\n  clip: 0.1\n",
                    "t.yaml:1:1: unknown key 'algo_cfg' (did you mean 'algo_cfgs'?)");
  // nothing close: no suggestion
  EXPECT_LOAD_ERROR("seed: 1\nwarp_drive: on\n", "t.yaml:2:1: unknown key 'warp_drive'");
  EXPECT_LOAD_ERROR("algo_cfgs: {xyz: 1}", "t.yaml:1:13: unknown key 'algo_cfgs.xyz'");
  // duplicates: same mapping, another spelling of the same field, a section twice
  EXPECT_LOAD_ERROR("seed: 1\nseed: 2\n",
                    "t.yaml:2:1: duplicate key 'seed' (first set at line 1, column 1)");
  EXPECT_LOAD_ERROR("algo_cfgs:\n  clip: 0.1\nalgo_cfgs.clip: 0.3\n",
                    "t.yaml:3:1: duplicate key 'algo_cfgs.clip' (first set at line 2, column 3)");
  EXPECT_LOAD_ERROR("algo_cfgs: {clip: 0.1}\nalgo_cfgs: {gamma: 0.9}\n",
                    "t.yaml:2:1: duplicate key 'algo_cfgs' (first set at line 1, column 1)");
  // keys must be scalars
  EXPECT_LOAD_ERROR("? [a, b]\n: 1\n", "t.yaml:1:3: keys must be scalars, got a list");
}


TEST(test_errors_values) {
  EXPECT_LOAD_ERROR("algo_cfgs:\n  batch_size: abc\n",
                    "t.yaml:2:15: 'algo_cfgs.batch_size' must be an integer, got 'abc'");
  EXPECT_LOAD_ERROR("algo_cfgs: {gamma: 1.5}",
                    "t.yaml:1:20: 'algo_cfgs.gamma' = 1.5 is out of range [0, 1]");
  EXPECT_LOAD_ERROR("algo_cfgs: {gamma: -0.01}",
                    "t.yaml:1:20: 'algo_cfgs.gamma' = -0.01 is out of range [0, 1]");
  EXPECT_LOAD_ERROR("algo_cfgs: {target_kl: -1}",
                    "t.yaml:1:24: 'algo_cfgs.target_kl' = -1 is out of range [0, inf]");
  EXPECT_LOAD_ERROR("algo_cfgs.batch_size: 2.5",
                    "t.yaml:1:23: 'algo_cfgs.batch_size' must be an integer, got '2.5'");
  EXPECT_LOAD_ERROR("algo_cfgs.batch_size: 0",
                    "t.yaml:1:23: 'algo_cfgs.batch_size' = 0 is out of range [1, 1048576]");
  EXPECT_LOAD_ERROR("train_cfgs.total_steps: 3e9",
                    "t.yaml:1:25: 'train_cfgs.total_steps' = 3e9 does not fit in an int");
  EXPECT_LOAD_ERROR("seed: 2147483648", "t.yaml:1:7: 'seed' = 2147483648 does not fit in an int");
  EXPECT_LOAD_ERROR("seed: 99999999999999999999999",
                    "t.yaml:1:7: 'seed' = 99999999999999999999999 does not fit in an int");
  EXPECT_LOAD_ERROR("algo_cfgs.batch_size: \"64\"",
                    "t.yaml:1:23: 'algo_cfgs.batch_size' must be an integer, got a quoted string "
                    "\"64\"");
  EXPECT_LOAD_ERROR("seed: !!str 3",
                    "t.yaml:1:7: 'seed' must be an integer, got a quoted string "
                    "\"3\"");
  EXPECT_LOAD_ERROR("seed:", "t.yaml:1:6: 'seed' must be an integer, got an empty value");
  EXPECT_LOAD_ERROR("algo_cfgs.target_kl: .inf",
                    "t.yaml:1:22: 'algo_cfgs.target_kl' must be finite, got '.inf'");
  EXPECT_LOAD_ERROR("algo_cfgs.target_kl: 1e999",
                    "t.yaml:1:22: 'algo_cfgs.target_kl' must be finite, got '1e999'");
  EXPECT_LOAD_ERROR("algo_cfgs.target_kl: .nan",
                    "t.yaml:1:22: 'algo_cfgs.target_kl' must be finite, got '.nan'");
  EXPECT_LOAD_ERROR("algo_cfgs.target_kl: 0x1p-3",
                    "t.yaml:1:22: 'algo_cfgs.target_kl' must be a number, got '0x1p-3'");
  EXPECT_LOAD_ERROR("algo_cfgs: {use_cost: yes}",
                    "t.yaml:1:23: 'algo_cfgs.use_cost' must be true or false (or True, False), "
                    "got 'yes'");
  EXPECT_LOAD_ERROR("algo_cfgs: {use_cost: 1}",
                    "t.yaml:1:23: 'algo_cfgs.use_cost' must be true or false (or True, False), "
                    "got '1'");
  EXPECT_LOAD_ERROR("algo_cfgs: {use_cost: \"true\"}",
                    "t.yaml:1:23: 'algo_cfgs.use_cost' must be true or false (or True, False), "
                    "got 'true'");
  EXPECT_LOAD_ERROR("train_cfgs: {device: gpu}",
                    "t.yaml:1:22: 'train_cfgs.device' must be one of cpu|cuda, got 'gpu'");
  EXPECT_LOAD_ERROR("train_cfgs: {device: CPU}",
                    "t.yaml:1:22: 'train_cfgs.device' must be one of cpu|cuda, got 'CPU'");
  EXPECT_LOAD_ERROR("exp_name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                    "t.yaml:1:11: 'exp_name' is too long (40 bytes, at most 31)");
  EXPECT_LOAD_ERROR("exp_name: \"a\\0b\"", "t.yaml:1:11: 'exp_name' contains a NUL character");
  // long values are cut in messages, never inside a character
  EXPECT_LOAD_ERROR("seed: abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstu\xc3\xa9\xc3\xa9",
                    "t.yaml:1:7: 'seed' must be an integer, got "
                    "'abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstu...'");
  EXPECT_LOAD_ERROR("seed: abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrs\xc3\xa9\xc3\xa9",
                    "t.yaml:1:7: 'seed' must be an integer, got "
                    "'abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrs\xc3\xa9...'");
  EXPECT_LOAD_ERROR("seed: abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
                    "t.yaml:1:7: 'seed' must be an integer, got "
                    "'abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuv...'");
}


TEST(test_errors_shapes) {
  // a mapping or a list where a scalar belongs, and the reverse
  EXPECT_LOAD_ERROR("seed: {a: 1}", "t.yaml:1:7: 'seed' must be an integer, got a mapping");
  EXPECT_LOAD_ERROR("algo_cfgs:\n  clip: [0.1]\n",
                    "t.yaml:2:9: 'algo_cfgs.clip' must be a number, got a list");
  EXPECT_LOAD_ERROR("train_cfgs: {device: [cpu]}",
                    "t.yaml:1:22: 'train_cfgs.device' must be one of cpu|cuda, got a list");
  EXPECT_LOAD_ERROR("algo_cfgs: 5\n",
                    "t.yaml:1:12: 'algo_cfgs' is a section and must be a mapping, got '5'");
  EXPECT_LOAD_ERROR("model_cfgs:\n  actor:\n  - 1\n",
                    "t.yaml:3:3: 'model_cfgs.actor' is a section and must be a mapping, got a "
                    "list");
  EXPECT_LOAD_ERROR("model_cfgs: {actor: {hidden_sizes: 64}}",
                    "t.yaml:1:36: 'model_cfgs.actor.hidden_sizes' must be a list of integers, "
                    "got '64'");
  EXPECT_LOAD_ERROR("model_cfgs: {std_range: {a: 1}}",
                    "t.yaml:1:25: 'model_cfgs.std_range' must be a list of numbers, got a "
                    "mapping");
  // list contents
  EXPECT_LOAD_ERROR("model_cfgs:\n  actor:\n    hidden_sizes: [1, 2, 3, 4, 5]\n",
                    "t.yaml:3:32: 'model_cfgs.actor.hidden_sizes' has more than 4 elements");
  EXPECT_LOAD_ERROR("model_cfgs.actor.hidden_sizes: [64, 0]",
                    "t.yaml:1:37: 'model_cfgs.actor.hidden_sizes[1]' = 0 is out of range [1, "
                    "4096]");
  EXPECT_LOAD_ERROR("model_cfgs.actor.hidden_sizes: [64, 1.5]",
                    "t.yaml:1:37: 'model_cfgs.actor.hidden_sizes[1]' must be an integer, got "
                    "'1.5'");
  EXPECT_LOAD_ERROR("model_cfgs.std_range: [0.5, x]",
                    "t.yaml:1:29: 'model_cfgs.std_range[1]' must be a number, got 'x'");
  EXPECT_LOAD_ERROR("model_cfgs.std_range: [[1]]",
                    "t.yaml:1:24: 'model_cfgs.std_range[0]' must be a number, got a list");
  // the top level
  EXPECT_LOAD_ERROR("- 1\n- 2\n", "t.yaml:1:1: the top level must be a mapping, got a list");
  EXPECT_LOAD_ERROR("hello\n", "t.yaml:1:1: the top level must be a mapping, got 'hello'");
  // YAML features a config has no use for
  EXPECT_LOAD_ERROR("seed: 1\n---\nseed: 2\n", "t.yaml:2:1: only one YAML document is allowed");
  EXPECT_LOAD_ERROR("seed: &s 3\nalgo_cfgs: {batch_size: *s}\n",
                    "t.yaml:2:25: aliases are not supported ('*s')");
  EXPECT_LOAD_ERROR("seed: !foo 3", "t.yaml:1:7: unsupported tag '!foo'");
}


TEST(test_errors_syntax) {
  // (a value error earlier in the stream is reported first: events are checked as they come)
  EXPECT_LOAD_ERROR("seed: 1\n  bad: 2\n", "t.yaml:1:7: 'seed' must be an integer, got '1 bad'");
  EXPECT_LOAD_ERROR("exp_name: x\n  bad: 2\n",
                    "t.yaml:2:6: syntax error: mapping values are not allowed in this context");
  EXPECT_LOAD_ERROR("model_cfgs:\n  std_range: [0.1, 0.2\n",
                    "t.yaml:3:1: syntax error: did not find expected ',' or ']' (while parsing a "
                    "flow sequence at line 2, column 14)");
  EXPECT_LOAD_ERROR("algo_cfgs:\n\tclip: 0.1\n",
                    "t.yaml:2:1: syntax error: found character that cannot start any token "
                    "(while scanning for the next token at line 2, column 1)");
  EXPECT_LOAD_ERROR("exp_name: \"open\n",
                    "t.yaml:2:1: syntax error: found unexpected end of stream (while scanning a "
                    "quoted scalar at line 1, column 11)");
  // bytes that are not UTF-8, control characters: the position is counted in characters
  EXPECT_LOAD_ERROR("seed: 1\nexp_name: \"\xc3\xa9\xff\"\n",
                    "t.yaml:2:13: invalid input: invalid leading UTF-8 octet");
  EXPECT_LOAD_ERROR("seed: 1\x01\n",
                    "t.yaml:1:8: invalid input: control characters are not "
                    "allowed");
}


TEST(test_error_leaves_cfg_unchanged) {
  // valid settings before the error are not applied either
  ppolag_cfg c, before;
  fresh(&c);
  CHECK_OK(srl_config_set(S, &c, "seed=11"));
  memcpy(&before, &c, sizeof c);
  CHECK_ERR(srl_config_load_string(S, &c,
                                   "seed: 3\ntrain_cfgs: {device: cuda}\n"
                                   "model_cfgs.actor.hidden_sizes: [8, 8, 8]\n"
                                   "exp_name: changed\nalgo_cfgs: {gamma: 2}\n",
                                   "t.yaml"),
            SRL_ECONFIG);
  CHECK_MSG("t.yaml:5:20: 'algo_cfgs.gamma' = 2 is out of range [0, 1]");
  CHECK(memcmp(&c, &before, sizeof c) == 0);
  // a file error names the file's path
  char path[PATH_MAX + 32], msg[PATH_MAX + 200];
  snprintf(path, sizeof path, "%s/run.yaml", tmpdir);
  write_file(path, "seed: 3\nalgo_cfgs:\n  update_iters: 10\n  stpes_per_epoch: 5\n");
  CHECK_ERR(srl_config_load_file(S, &c, path), SRL_ECONFIG);
  snprintf(msg, sizeof msg,
           "%s:4:3: unknown key 'algo_cfgs.stpes_per_epoch' (did you mean "
           "'algo_cfgs.steps_per_epoch'?)",
           path);
  CHECK_MSG(msg);
  CHECK(memcmp(&c, &before, sizeof c) == 0);
  snprintf(path, sizeof path, "%s/missing.yaml", tmpdir);
  CHECK_ERR(srl_config_load_file(S, &c, path), SRL_ENOTFOUND);
  CHECK_ERRMSG("missing.yaml: cannot open: No such file or directory");
  CHECK_ERR(srl_config_load_file(S, &c, tmpdir), SRL_EIO);  // a directory
  CHECK(memcmp(&c, &before, sizeof c) == 0);
}


TEST(test_set_overrides) {
  ppolag_cfg c;
  fresh(&c);
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/layers.yaml", tmpdir);
  write_file(path, "algo_cfgs: {batch_size: 32, gamma: 0.9}\nexp_name: from_file\n");
  // defaults, then the file, then the overrides in order: the last one wins
  CHECK_OK(srl_config_load_file(S, &c, path));
  CHECK_OK(srl_config_set(S, &c, "algo_cfgs.batch_size=128"));
  CHECK_OK(srl_config_set(S, &c, "algo_cfgs.batch_size=256"));
  CHECK_EQ_INT(c.algo.batch_size, 256);
  CHECK(c.algo.gamma == 0.9);
  CHECK(strcmp(c.exp_name, "from_file") == 0);
  CHECK_EQ_INT(c.algo.update_iters, 40);
  // lists, flow mappings over a section, strings, blanks around the key
  CHECK_OK(srl_config_set(S, &c, "model_cfgs.actor.hidden_sizes=[256, 256, 64]"));
  CHECK_EQ_INT(c.model.actor.n_hidden_sizes, 3);
  CHECK_EQ_INT(c.model.actor.hidden_sizes[2], 64);
  CHECK_OK(srl_config_set(S, &c, "model_cfgs.std_range=[1, 0.05]"));
  CHECK(c.model.std_range[0] == 1.0 && c.model.std_range[1] == 0.05);
  CHECK_OK(srl_config_set(S, &c, "algo_cfgs={update_iters: 10, clip: 0.1}"));
  CHECK_EQ_INT(c.algo.update_iters, 10);
  CHECK(c.algo.clip == 0.1);
  CHECK_EQ_INT(c.algo.batch_size, 256);  // the rest of the section stays
  CHECK_OK(srl_config_set(S, &c, "model_cfgs.actor={activation: relu, lr: 1e-3}"));
  CHECK(strcmp(c.model.actor.activation, "relu") == 0 && c.model.actor.lr == 1e-3);
  CHECK_OK(srl_config_set(S, &c, "exp_name=my run"));
  CHECK(strcmp(c.exp_name, "my run") == 0);
  CHECK_OK(srl_config_set(S, &c, "exp_name=a=b"));
  CHECK(strcmp(c.exp_name, "a=b") == 0);
  CHECK_OK(srl_config_set(S, &c, "exp_name="));
  CHECK(strcmp(c.exp_name, "") == 0);
  CHECK_OK(srl_config_set(S, &c, " train_cfgs.device = cuda"));
  CHECK(strcmp(c.train.device, "cuda") == 0);
  CHECK_OK(srl_config_set(S, &c, "algo_cfgs.obs_normalize=False"));
  CHECK_EQ_INT(c.algo.obs_normalize, 0);
}


TEST(test_set_errors) {
  EXPECT_SET_ERROR("algo_cfgs.gamma=1.5",
                   "--set:1:17: 'algo_cfgs.gamma' = 1.5 is out of range [0, 1]");
  EXPECT_SET_ERROR("algo_cfgs.batchsize=3",
                   "--set:1:1: unknown key 'algo_cfgs.batchsize' (did you mean "
                   "'algo_cfgs.batch_size'?)");
  EXPECT_SET_ERROR("model_cfgs.actr.lr=0.1",
                   "--set:1:1: unknown key 'model_cfgs.actr.lr' (did you mean "
                   "'model_cfgs.actor.lr'?)");
  EXPECT_SET_ERROR("algo_cfgs.batch_size",
                   "--set:1:1: expected key=value, got 'algo_cfgs.batch_size'");
  EXPECT_SET_ERROR("=3", "--set:1:1: expected key=value, got '=3'");
  EXPECT_SET_ERROR("algo_cfgs.batch_size=",
                   "--set:1:22: 'algo_cfgs.batch_size' must be an integer, got an empty value");
  EXPECT_SET_ERROR("algo_cfgs.batch_size=abc",
                   "--set:1:22: 'algo_cfgs.batch_size' must be an integer, got 'abc'");
  EXPECT_SET_ERROR("model_cfgs.actor.hidden_sizes=[1, 2, 3, 4, 5]",
                   "--set:1:44: 'model_cfgs.actor.hidden_sizes' has more than 4 elements");
  EXPECT_SET_ERROR("model_cfgs.actor.hidden_sizes=64",
                   "--set:1:31: 'model_cfgs.actor.hidden_sizes' must be a list of integers, got "
                   "'64'");
  EXPECT_SET_ERROR("algo_cfgs={batch_size: 1, batch_size: 2}",
                   "--set:1:27: duplicate key 'algo_cfgs.batch_size' (first set at line 1, "
                   "column 12)");
  EXPECT_SET_ERROR("algo_cfgs={batch_size: 1, bogus: 2}",
                   "--set:1:27: unknown key 'algo_cfgs.bogus'");
  EXPECT_SET_ERROR("algo_cfgs=3",
                   "--set:1:11: 'algo_cfgs' is a section and must be a mapping, got '3'");
  EXPECT_SET_ERROR("train_cfgs.device=tpu",
                   "--set:1:19: 'train_cfgs.device' must be one of cpu|cuda, got 'tpu'");
  EXPECT_SET_ERROR("model_cfgs.std_range=[1",
                   "--set:1:24: syntax error: did not find expected ',' or ']' (while parsing a "
                   "flow sequence at line 1, column 22)");
}


TEST(test_write_format) {
  ppolag_cfg c;
  fresh(&c);
  char *text = dump(&c);
  // header, schema order, sections nested, help as comments, shortest floats
  CHECK(strncmp(text,
                "# ppo_lag: every option, defaults included\n"
                "# random seed of envs, networks and sampling\nseed: 0\n"
                "# name of the run directory\nexp_name: ppo_lag\n\ntrain_cfgs:\n"
                "  # where the networks run\n  device: cpu\n",
                strlen("# ppo_lag: every option, defaults included\n"
                       "# random seed of envs, networks and sampling\nseed: 0\n"
                       "# name of the run directory\nexp_name: ppo_lag\n\ntrain_cfgs:\n"
                       "  # where the networks run\n  device: cpu\n")) == 0);
  CHECK(strstr(text, "\n  # reward discount\n  gamma: 0.99\n") != NULL);
  CHECK(strstr(text, "\n  max_grad_norm: 40.0\n") != NULL);
  CHECK(strstr(text, "\n  reward_normalize: false\n") != NULL);
  CHECK(strstr(text,
               "\n  std_range: [0.5, 0.1]\n  actor:\n    # actor layer widths\n"
               "    hidden_sizes: [64, 64]\n") != NULL);
  CHECK(strstr(text, "\n    lr: 0.0003\n") != NULL);
  CHECK(strstr(text, "\n  log_dir: ./runs\n") != NULL);
  CHECK(strstr(text, "\nlagrange_cfgs:\n") != NULL);
  // every field appears, indented by its depth
  for (int i = 0; i < S->n_fields; i++) {
    const char *key = S->fields[i].key, *last = strrchr(key, '.');
    int depth = 0;
    for (const char *p = key; *p; p++) depth += *p == '.';
    char line[120];
    snprintf(line, sizeof line, "\n%*s%s: ", 2 * depth, "", last ? last + 1 : key);
    CHECK(strstr(text, line) != NULL);
  }
  free(text);

  // strings are quoted only when plain text would read differently
  const srl_cfg_field *name = srl_config_find(S, "exp_name");
  const char *cases[][2] = {
      {"plain_name-1.x", "plain_name-1.x"},
      {"", "\"\""},
      {"true", "\"true\""},
      {"No", "\"No\""},
      {"123", "\"123\""},
      {"a: b", "\"a: b\""},
      {"say \"hi\"\\", "\"say \\\"hi\\\"\\\\\""},
      {"x\ny\tz", "\"x\\ny\\tz\""},
      {"caf\xc3\xa9", "\"caf\xc3\xa9\""},
      {"\xc2\x85", "\"\\x85\""},
      {"\xe2\x80\xa8", "\"\\u2028\""},
      {"-dash", "\"-dash\""},
      {".inf", "\".inf\""},
      {"~", "\"~\""},
  };
  char buf[128];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fresh(&c);
    strcpy(c.exp_name, cases[i][0]);
    CHECK_OK(srl_config_format(name, &c, buf, sizeof buf));
    if (strcmp(buf, cases[i][1]) != 0) {
      fprintf(stderr, "  string %zu: got %s, expected %s\n", i, buf, cases[i][1]);
      srl_test_failures_++;
    }
    // and it reads back as the same bytes
    ppolag_cfg d;
    fresh(&d);
    char yaml[200];
    snprintf(yaml, sizeof yaml, "exp_name: %s\n", buf);
    CHECK_OK(srl_config_load_string(S, &d, yaml, "q"));
    CHECK(strcmp(d.exp_name, cases[i][0]) == 0);
  }
  // doubles: the shortest text that reads back bitwise, and always float-looking
  const srl_cfg_field *gamma = srl_config_find(S, "algo_cfgs.gamma");
  struct {
    double v;
    const char *text;
  } nums[] = {{0.1, "0.1"},
              {1.0 / 3.0, "0.3333333333333333"},
              {0.1 + 0.2, "0.30000000000000004"},
              {1.0, "1.0"},
              {0.0, "0.0"},
              {-0.0, "-0.0"},
              {1e-300, "1e-300"},
              {4.9406564584124654e-324, "5e-324"},
              {1e300, "1e+300"},
              {123456789012.0, "123456789012.0"}};
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
    fresh(&c);
    c.algo.gamma = nums[i].v;
    CHECK_OK(srl_config_format(gamma, &c, buf, sizeof buf));
    if (strcmp(buf, nums[i].text) != 0) {
      fprintf(stderr, "  double %zu: got %s, expected %s\n", i, buf, nums[i].text);
      srl_test_failures_++;
    }
    double back = strtod(buf, NULL);
    CHECK(memcmp(&back, &nums[i].v, sizeof back) == 0);
  }
  // a buffer too small is refused, not overrun
  fresh(&c);
  CHECK_ERR(srl_config_format(srl_config_find(S, "model_cfgs.actor.hidden_sizes"), &c, buf, 6),
            SRL_ERANGE);
  // the option list
  char *help = NULL;
  size_t hlen = 0;
  FILE *hf = open_memstream(&help, &hlen);
  CHECK_OK(srl_config_print_help(S, hf));
  fclose(hf);
  CHECK(strstr(help, "ppo_lag options (--set key=value):\n") == help);
  CHECK(strstr(help, "  algo_cfgs.gamma") != NULL);
  CHECK(strstr(help, "float in [0, 1]; default 0.99\n") != NULL);
  CHECK(strstr(help, "one of cpu|cuda; default cpu\n") != NULL);
  CHECK(strstr(help, "list of at most 4 ints in [1, 4096]; default [64, 64]\n") != NULL);
  free(help);
}


TEST(test_dump_reload_bitwise) {
  // a config far from the defaults, with awkward values
  ppolag_cfg a, b;
  fresh(&a);
  a.seed = INT_MAX;
  SET_STR(a.exp_name, "it's \"odd\": \\ #x \xe2\x82\xac\n");
  SET_STR(a.train.device, "cuda");
  a.train.total_steps = 1;
  a.algo.target_kl = 1.0 / 3.0;
  a.algo.gamma = 0.1 + 0.2;
  a.algo.clip = 5e-324;
  a.algo.entropy_coef = -0.0;
  a.algo.penalty_coef = -1.2345678901234567e+300;
  a.algo.max_grad_norm = 1e300;
  a.algo.use_cost = 0;
  SET_STR(a.logger.log_dir, "");
  a.model.n_std_range = 1;
  a.model.std_range[0] = 0.7;
  a.model.std_range[1] = 0.0;
  a.model.actor.n_hidden_sizes = 4;
  for (int i = 0; i < 4; i++) a.model.actor.hidden_sizes[i] = 4096 - i;
  a.model.critic.n_hidden_sizes = 0;
  memset(a.model.critic.hidden_sizes, 0, sizeof a.model.critic.hidden_sizes);
  SET_STR(a.model.critic.activation, "identity");
  a.lagrange.cost_limit = 0.0;
  SET_STR(a.lagrange.lambda_optimizer, "SGD");
  // saved atomically to a file, read back into a zeroed struct (every field is in the file)
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/config.yaml", tmpdir);
  CHECK_OK(srl_config_save(S, &a, path));
  memset(&b, 0, sizeof b);
  CHECK_OK(srl_config_load_file(S, &b, path));
  CHECK(memcmp(&a, &b, sizeof a) == 0);
  // saving over an existing file leaves no temporary behind
  CHECK_OK(srl_config_save(S, &a, path));
  DIR *d = opendir(tmpdir);
  struct dirent *e;
  int tmp_left = 0;
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) tmp_left++;
  if (d) closedir(d);
  CHECK_EQ_INT(tmp_left, 0);
  snprintf(path, sizeof path, "%s/no/such/dir/config.yaml", tmpdir);
  CHECK_ERR(srl_config_save(S, &a, path), SRL_EIO);

  // many random configs: write, reload, compare bytes
  uint64_t st = 0x9E3779B97F4A7C15ull;
#define RND() (st ^= st << 13, st ^= st >> 7, st ^= st << 17, st)
  for (int it = 0; it < 300; it++) {
    fresh(&a);
    a.seed = (int)(RND() % INT_MAX);
    int len = (int)(RND() % 31);
    memset(a.exp_name, 0, sizeof a.exp_name);
    for (int i = 0; i < len; i++) {
      // printable ASCII, specials and a few two-byte characters
      int r = (int)(RND() % 100);
      if (r < 80)
        a.exp_name[i] = (char)(32 + RND() % 95);
      else if (r < 90)
        a.exp_name[i] = "\n\t\r\x01\x7f"[RND() % 5];
      else if (i + 1 < len)
        a.exp_name[i] = (char)0xc3, a.exp_name[++i] = (char)(0x80 + RND() % 64);
      else
        a.exp_name[i] = 'z';
    }
    a.exp_name[len] = '\0';
    double u = (double)(RND() >> 11) / 9007199254740992.0;
    a.algo.gamma = u;
    a.algo.target_kl = u * pow(10, (int)(RND() % 40) - 20);
    memcpy(&a.algo.penalty_coef, &(uint64_t){RND() & 0x7FEFFFFFFFFFFFFFull}, 8);  // finite
    a.model.actor.n_hidden_sizes = (int)(RND() % 5);
    memset(a.model.actor.hidden_sizes, 0, sizeof a.model.actor.hidden_sizes);
    for (int i = 0; i < a.model.actor.n_hidden_sizes; i++)
      a.model.actor.hidden_sizes[i] = 1 + (int)(RND() % 4096);
    a.algo.use_cost = (int)(RND() & 1);
    SET_STR(a.train.device, RND() & 1 ? "cpu" : "cuda");
    char *text = dump(&a);
    memset(&b, 0, sizeof b);
    int rc = srl_config_load_string(S, &b, text, "dump");
    CHECK_OK(rc);
    if (rc != 0 || memcmp(&a, &b, sizeof a) != 0) {
      fprintf(stderr, "  round trip %d differs:\n%s\n", it, text);
      srl_test_failures_++;
      free(text);
      break;
    }
    free(text);
  }
#undef RND
}


TEST(test_locale_independent) {
  // a program that sets a comma-decimal locale must not change how configs read or write
  const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"};
  const char *got = NULL;
  for (size_t i = 0; i < sizeof names / sizeof names[0] && !got; i++)
    got = setlocale(LC_NUMERIC, names[i]);
  ppolag_cfg c;
  fresh(&c);
  CHECK_OK(srl_config_load_string(S, &c, "algo_cfgs: {gamma: 0.5}", "t"));
  CHECK(c.algo.gamma == 0.5);
  char buf[64];
  CHECK_OK(srl_config_format(srl_config_find(S, "algo_cfgs.gamma"), &c, buf, sizeof buf));
  CHECK(strcmp(buf, "0.5") == 0);
  setlocale(LC_NUMERIC, "C");
  if (!got) SKIP("no comma-decimal locale installed");
}


static void remove_tmpdir(void) {
  DIR *d = opendir(tmpdir);
  struct dirent *e;
  char p[PATH_MAX + 300];
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
    unlink(p);
  }
  if (d) closedir(d);
  rmdir(tmpdir);
}


int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/srl_config_XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_defaults);
  RUN(test_schema_checks);
  RUN(test_load_nested_block);
  RUN(test_load_flow_omnisafe);
  RUN(test_scalar_forms);
  RUN(test_empty_inputs);
  RUN(test_errors_keys);
  RUN(test_errors_values);
  RUN(test_errors_shapes);
  RUN(test_errors_syntax);
  RUN(test_error_leaves_cfg_unchanged);
  RUN(test_set_overrides);
  RUN(test_set_errors);
  RUN(test_write_format);
  RUN(test_dump_reload_bitwise);
  RUN(test_locale_independent);
  remove_tmpdir();
  return TEST_REPORT();
}

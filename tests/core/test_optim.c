// test_optim.c: Adam, Adam with L2 and AdamW over three steps against values from
// torch.optim in float64; gradient-norm clipping above, below and at non-finite norms; the lr
// schedules at chosen steps; optimizer state export and restore; argument errors.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/nn.h"
#include "core/ops.h"
#include "core/optim.h"
#include "core/rng.h"
#include "test.h"

static const srl_ops *ops;

static float *dev_from(const float *h, size_t n) {
  float *d = ops->alloc(n * sizeof(float));
  ops->upload(d, h, n * sizeof(float));
  return d;
}

static void host_from(float *h, const float *d, size_t n) {
  ops->download(h, d, n * sizeof(float));
}


//---- adam -------------------------------------------------------------------------------------

static const float p0[4] = {1.0f, -0.5f, 2.0f, 0.0f};
static const float grads[3][4] = {
    {0.1f, -0.2f, 0.0f, 1e-3f}, {0.2f, 0.3f, -1.0f, 2e-3f}, {-0.3f, 0.1f, 0.5f, -4e-3f}};

// three steps at lr 0.01 (betas 0.9, 0.999, eps 1e-8) against torch.optim in float64
static void three_steps(srl_optim_kind kind, float wd, const double want[3][4], const char *what) {
  srl_optim_config c = srl_optim_config_default(kind, 0.01f);
  c.weight_decay = wd;
  srl_optim *opt;
  CHECK_OK(srl_optim_create(&opt, ops, 4, &c));
  float *p = dev_from(p0, 4), *g = ops->alloc(4 * sizeof(float)), h[4];
  for (int t = 0; t < 3; t++) {
    ops->upload(g, grads[t], sizeof grads[t]);
    CHECK_OK(srl_optim_step(opt, p, g, c.lr));
    CHECK_EQ_INT(opt->step, t + 1);
    host_from(h, p, 4);
    for (int k = 0; k < 4; k++) {
      if (!(fabs(h[k] - want[t][k]) <= 2e-6 + 1e-6 * fabs(want[t][k])))
        fprintf(stderr, "  %s step %d [%d]\n", what, t + 1, k);
      CHECK_CLOSE(h[k], want[t][k], 2e-6, 1e-6);
    }
  }
  ops->free(p), ops->free(g);
  srl_optim_destroy(opt);
}


TEST(adam_three_steps) {
  // first step moves each parameter by lr·g/(|g| + eps): the bias-corrected m̂/√v̂ is sign(g)
  static const double want[3][4] = {
      {0.990000001, -0.4900000005, 2.0, -0.009999900001},
      {0.980348181352, -0.492477018564, 2.00744136813, -0.0196516592253},
      {0.981014171477, -0.496030362346, 2.00972777185, -0.0177137219973}};
  three_steps(SRL_OPTIM_ADAM, 0.0f, want, "adam");
}


TEST(adam_l2_three_steps) {
  static const double want[3][4] = {
      {0.9900000005, -0.4900000004, 1.9900000005, -0.009999900001},
      {0.98008970486, -0.490546274613, 1.9955974737, -0.0199998026089},
      {0.976540338099, -0.491874214401, 1.99476685407, -0.0155539619276}};
  three_steps(SRL_OPTIM_ADAM, 0.1f, want, "adam l2");
}


TEST(adamw_three_steps) {
  // decoupled: p·(1 − lr·wd) first, so step 1 of p = 2 (g = 0) is 2·(1 − 0.001) = 1.998
  static const double want[3][4] = {
      {0.989000001, -0.4895000005, 1.998, -0.009999900001},
      {0.978359181351, -0.491487518564, 2.00344336813, -0.0196416593253},
      {0.978046812295, -0.494549374827, 2.00372632848, -0.017684080438}};
  three_steps(SRL_OPTIM_ADAMW, 0.1f, want, "adamw");
}


TEST(adam_constant_gradient) {
  // with a constant gradient m̂ = g and v̂ = g² at every step: each step moves lr·g/(|g| + eps)
  srl_optim_config c = srl_optim_config_default(SRL_OPTIM_ADAM, 0.05f);
  srl_optim *opt;
  CHECK_OK(srl_optim_create(&opt, ops, 3, &c));
  float ph[3] = {0.0f, 1.0f, -1.0f}, gh[3] = {0.5f, -2.0f, 1e-3f};
  float *p = dev_from(ph, 3), *g = dev_from(gh, 3);
  for (int t = 0; t < 5; t++) CHECK_OK(srl_optim_step(opt, p, g, 0.05f));
  float h[3];
  host_from(h, p, 3);
  for (int k = 0; k < 3; k++)
    CHECK_CLOSE(h[k], ph[k] - 5 * 0.05 * gh[k] / (fabs(gh[k]) + 1e-8), 1e-6, 1e-5);
  // the lr argument is the one used, not cfg.lr
  CHECK_OK(srl_optim_step(opt, p, g, 0.0f));
  float h2[3];
  host_from(h2, p, 3);
  CHECK(memcmp(h, h2, sizeof h) == 0);
  ops->free(p), ops->free(g);
  srl_optim_destroy(opt);
}


TEST(state_export) {
  // a network's whole block: step, save state, step; restore, step again: identical
  srl_rng *rng;
  srl_mlp *net;
  CHECK_OK(srl_rng_create(&rng, 4, 0));
  srl_mlp_config mc = srl_mlp_config_plain(3, (int[]){4, 6, 2}, SRL_ACT_TANH, SRL_ACT_IDENTITY);
  mc.extra = 2;
  snprintf(mc.extra_name, sizeof mc.extra_name, "log_std");
  CHECK_OK(srl_mlp_create(&net, ops, &mc, 8, rng));
  size_t n = net->n_params;
  srl_optim_config c = srl_optim_config_default(SRL_OPTIM_ADAMW, 1e-3f);
  srl_optim *opt;
  CHECK_OK(srl_optim_create(&opt, ops, n, &c));
  float *gh = malloc(n * sizeof(float)), *m = malloc(n * sizeof(float));
  float *v = malloc(n * sizeof(float)), *pa = malloc(n * sizeof(float));
  float *pb = malloc(n * sizeof(float)), *keep = malloc(n * sizeof(float));
  srl_rng_fill_normal(rng, gh, n, 0, 1);
  ops->upload(net->grads, gh, n * sizeof(float));
  CHECK_OK(srl_optim_step(opt, net->params, net->grads, 1e-3f));
  CHECK_OK(srl_optim_step(opt, net->params, net->grads, 1e-3f));
  int64_t step = 0;
  CHECK_OK(srl_optim_state_download(opt, m, v, &step));
  CHECK_EQ_INT(step, 2);
  host_from(keep, net->params, n);
  CHECK_OK(srl_optim_step(opt, net->params, net->grads, 1e-3f));
  host_from(pa, net->params, n);

  srl_optim_reset(opt);
  CHECK_EQ_INT(opt->step, 0);
  CHECK_OK(srl_optim_state_upload(opt, m, v, step));
  ops->upload(net->params, keep, n * sizeof(float));
  CHECK_OK(srl_optim_step(opt, net->params, net->grads, 1e-3f));
  host_from(pb, net->params, n);
  CHECK(memcmp(pa, pb, n * sizeof(float)) == 0);
  // the moments cover the extra vector too: log_std moved
  float ls[2];
  CHECK_OK(srl_mlp_tensor_download(net, "log_std", ls, 2));
  CHECK(ls[0] != 0.0f && ls[1] != 0.0f);
  // without the restore, a reset optimizer's step differs (bias corrections start over)
  srl_optim_reset(opt);
  ops->upload(net->params, keep, n * sizeof(float));
  CHECK_OK(srl_optim_step(opt, net->params, net->grads, 1e-3f));
  host_from(pb, net->params, n);
  CHECK(memcmp(pa, pb, n * sizeof(float)) != 0);
  CHECK_ERR(srl_optim_state_upload(opt, m, v, -1), SRL_ERANGE);
  free(gh), free(m), free(v), free(pa), free(pb), free(keep);
  srl_optim_destroy(opt);
  srl_mlp_destroy(net);
  srl_rng_destroy(rng);
}


//---- clipping ---------------------------------------------------------------------------------

TEST(clip_grad_norm) {
  float h[4] = {3.0f, 0.0f, -4.0f, 0.0f}, out[4];
  float *g = dev_from(h, 4);
  // below the maximum: unchanged, norm returned
  CHECK_CLOSE(srl_optim_clip_grad_norm(ops, g, 4, 40.0f), 5.0, 0, 1e-7);
  host_from(out, g, 4);
  CHECK(memcmp(out, h, sizeof h) == 0);
  // only measuring
  CHECK_CLOSE(srl_optim_clip_grad_norm(ops, g, 4, 0.0f), 5.0, 0, 1e-7);
  host_from(out, g, 4);
  CHECK(memcmp(out, h, sizeof h) == 0);
  // above: scaled by max/(norm + 1e-6), the pre-clip norm returned
  CHECK_CLOSE(srl_optim_clip_grad_norm(ops, g, 4, 1.0f), 5.0, 0, 1e-7);
  host_from(out, g, 4);
  CHECK_CLOSE(out[0], 3.0 / (5.0 + 1e-6), 1e-7, 1e-6);
  CHECK_CLOSE(out[2], -4.0 / (5.0 + 1e-6), 1e-7, 1e-6);
  CHECK(out[1] == 0.0f);
  CHECK_CLOSE(srl_optim_clip_grad_norm(ops, g, 4, 0.0f), 1.0, 0, 1e-5);
  // non-finite: returned as is, gradients untouched
  float bad[4] = {1.0f, NAN, 2.0f, 0.0f};
  ops->upload(g, bad, sizeof bad);
  CHECK(isnan(srl_optim_clip_grad_norm(ops, g, 4, 1.0f)));
  host_from(out, g, 4);
  CHECK(out[0] == 1.0f && out[2] == 2.0f);
  bad[1] = INFINITY;
  ops->upload(g, bad, sizeof bad);
  CHECK(isinf(srl_optim_clip_grad_norm(ops, g, 4, 1.0f)));
  host_from(out, g, 4);
  CHECK(out[0] == 1.0f);
  ops->free(g);
}


//---- schedules --------------------------------------------------------------------------------

TEST(lr_schedules) {
  srl_lr_schedule c = {.kind = SRL_LR_CONSTANT, .base = 3e-4f};
  CHECK_OK(srl_lr_check(&c));
  CHECK(srl_lr_at(&c, 0) == 3e-4f && srl_lr_at(&c, 1000000) == 3e-4f);

  // OmniSafe's LinearLR(1 → 0) over 500 epochs
  srl_lr_schedule l = {.kind = SRL_LR_LINEAR, .base = 3e-4f, .final = 0.0f, .total = 500};
  CHECK_OK(srl_lr_check(&l));
  CHECK_CLOSE(srl_lr_at(&l, 0), 3e-4, 0, 1e-6);
  CHECK_CLOSE(srl_lr_at(&l, 1), 3e-4 * 499 / 500, 0, 1e-6);
  CHECK_CLOSE(srl_lr_at(&l, 250), 1.5e-4, 0, 1e-6);
  CHECK_CLOSE(srl_lr_at(&l, 499), 3e-4 / 500, 0, 1e-5);
  CHECK(srl_lr_at(&l, 500) == 0.0f && srl_lr_at(&l, 900) == 0.0f);
  l.final = 1e-4f;
  CHECK_CLOSE(srl_lr_at(&l, 125), 2.5e-4, 0, 1e-6);
  CHECK_CLOSE(srl_lr_at(&l, 10000), 1e-4, 0, 1e-6);

  // FISOR's cosine: 3e-4 over 3e6 steps is 2.25e-4 at 1e6
  srl_lr_schedule k = {.kind = SRL_LR_COSINE, .base = 3e-4f, .total = 3000000};
  CHECK_OK(srl_lr_check(&k));
  CHECK_CLOSE(srl_lr_at(&k, 0), 3e-4, 0, 1e-6);
  CHECK_CLOSE(srl_lr_at(&k, 1000000), 2.25e-4, 0, 1e-6);
  CHECK_CLOSE(srl_lr_at(&k, 1500000), 1.5e-4, 0, 1e-6);
  CHECK_CLOSE(srl_lr_at(&k, 2000000), 0.75e-4, 0, 1e-5);
  CHECK(fabsf(srl_lr_at(&k, 3000000)) < 1e-12f && fabsf(srl_lr_at(&k, 4000000)) < 1e-12f);

  // with warmup: 0 → base over 100 steps, then cosine to final over the remaining 1000
  srl_lr_schedule w = {
      .kind = SRL_LR_COSINE, .base = 1e-3f, .final = 1e-4f, .total = 1100, .warmup = 100};
  CHECK_OK(srl_lr_check(&w));
  CHECK(srl_lr_at(&w, 0) == 0.0f);
  CHECK_CLOSE(srl_lr_at(&w, 25), 2.5e-4, 0, 1e-6);
  CHECK_CLOSE(srl_lr_at(&w, 100), 1e-3, 0, 1e-6);
  CHECK_CLOSE(srl_lr_at(&w, 600), 5.5e-4, 0, 1e-6);  // halfway: (base + final)/2
  CHECK_CLOSE(srl_lr_at(&w, 1100), 1e-4, 0, 1e-6);
  CHECK_CLOSE(srl_lr_at(&w, 5000), 1e-4, 0, 1e-6);
  // monotone after the warmup
  float prev = srl_lr_at(&w, 100);
  for (int t = 101; t <= 1100; t += 7) {
    float v = srl_lr_at(&w, t);
    CHECK(v <= prev);
    prev = v;
  }

  srl_lr_schedule bad = {.kind = SRL_LR_LINEAR, .base = 1e-3f, .total = 0};
  CHECK_ERR(srl_lr_check(&bad), SRL_EINVAL);
  bad = (srl_lr_schedule){.kind = SRL_LR_COSINE, .base = 1e-3f, .total = 10, .warmup = 10};
  CHECK_ERR(srl_lr_check(&bad), SRL_EINVAL);
  CHECK_ERRMSG("warmup");
  bad.kind = (srl_lr_kind)7;
  CHECK_ERR(srl_lr_check(&bad), SRL_EINVAL);
}


TEST(argument_errors) {
  srl_optim *opt = (srl_optim *)&opt;
  srl_optim_config c = srl_optim_config_default(SRL_OPTIM_ADAM, 1e-3f);
  CHECK(c.beta1 == 0.9f && c.beta2 == 0.999f && c.eps == 1e-8f && c.weight_decay == 0.0f);
  CHECK(srl_optim_config_default(SRL_OPTIM_ADAMW, 1e-3f).weight_decay == 1e-2f);
  CHECK_ERR(srl_optim_create(&opt, ops, 0, &c), SRL_EINVAL);
  CHECK(opt == NULL);
  c.beta2 = 1.0f;
  CHECK_ERR(srl_optim_create(&opt, ops, 4, &c), SRL_EINVAL);
  CHECK_ERRMSG("betas");
  c.beta2 = 0.999f;
  c.lr = NAN;
  CHECK_ERR(srl_optim_create(&opt, ops, 4, &c), SRL_EINVAL);
  c.lr = 1e-3f;
  c.kind = (srl_optim_kind)5;
  CHECK_ERR(srl_optim_create(&opt, ops, 4, &c), SRL_EINVAL);
  c.kind = SRL_OPTIM_ADAM;
  CHECK_OK(srl_optim_create(&opt, ops, 4, &c));
  float *p = ops->alloc(4 * sizeof(float));
  CHECK_ERR(srl_optim_step(opt, p, p, INFINITY), SRL_ENONFINITE);
  CHECK_EQ_INT(opt->step, 0);
  CHECK_ERR(srl_optim_step(opt, p, NULL, 1e-3f), SRL_EINVAL);
  ops->free(p);
  srl_optim_destroy(opt);
  srl_optim_destroy(NULL);
}


int main(void) {
  // SRL_TEST_DEVICE=cuda runs the same checks on another op table
  const char *dev = getenv("SRL_TEST_DEVICE");
  ops = srl_ops_cpu();
  if (dev && srl_ops_get(&ops, dev) < 0) {
    printf("skip: device '%s': %s\n", dev, srl_errmsg());
    return 0;
  }
  RUN(adam_three_steps);
  RUN(adam_l2_three_steps);
  RUN(adamw_three_steps);
  RUN(adam_constant_gradient);
  RUN(state_export);
  RUN(clip_grad_norm);
  RUN(lr_schedules);
  RUN(argument_errors);
  return TEST_REPORT();
}

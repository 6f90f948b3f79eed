// test_diffusion.c: FISOR's diffusion policy: the DDPM schedules against the reference values,
// noising and reverse steps against their formulas, finite-difference gradients of the Fourier
// features, the time MLP and the whole ε-network, the sampler against a step-by-step
// recomputation, a CPU/CUDA comparison when a GPU is present, and a learning check on a
// bimodal, observation-conditioned action distribution.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "algos/offline/diffusion.h"
#include "core/alloc.h"
#include "core/optim.h"
#include "tests/test.h"

//---- the schedule --------------------------------------------------------------------------------

TEST(test_vp_schedule_matches_reference) {
  // the reference's values for T = 5 (FISOR, vp_beta_schedule)
  const double beta[5] = {0.195875, 0.458818, 0.635781, 0.754878, 0.835031};
  const double ahat[5] = {0.804125, 0.435178, 0.158500, 0.038852, 0.006409};
  srl_ddpm_schedule s;
  CHECK_OK(srl_ddpm_schedule_init(&s, 5, SRL_BETA_VP));
  CHECK_EQ_INT(s.T, 5);
  for (int t = 0; t < 5; t++) {
    CHECK_CLOSE(s.beta[t], beta[t], 1e-6, 0);
    CHECK_CLOSE(s.alpha_hat[t], ahat[t], 1e-6, 0);
    CHECK_CLOSE(s.alpha[t], 1.0 - beta[t], 1e-6, 0);
  }
  // the closed form at another T: α_t = exp(−0.1/T − 4.95·(2t−1)/T²)
  CHECK_OK(srl_ddpm_schedule_init(&s, 20, SRL_BETA_VP));
  double p = 1;
  for (int t = 1; t <= 20; t++) {
    double a = exp(-0.1 / 20 - 4.95 * (2.0 * t - 1) / 400.0);
    p *= a;
    CHECK_CLOSE(s.alpha[t - 1], a, 1e-12, 0);
    CHECK_CLOSE(s.alpha_hat[t - 1], p, 1e-12, 0);
  }
  CHECK_EQ_INT(srl_beta_kind_from_name("vp"), SRL_BETA_VP);
  CHECK_EQ_INT(srl_beta_kind_from_name("cosine"), SRL_BETA_COSINE);
  CHECK_EQ_INT(srl_beta_kind_from_name("sigmoid"), -1);
  CHECK_ERR(srl_ddpm_schedule_init(&s, 0, SRL_BETA_VP), SRL_EINVAL);
  CHECK_ERR(srl_ddpm_schedule_init(&s, SRL_DDPM_MAX_T + 1, SRL_BETA_VP), SRL_EINVAL);
}


TEST(test_linear_and_cosine_schedules) {
  srl_ddpm_schedule s;
  CHECK_OK(srl_ddpm_schedule_init(&s, 5, SRL_BETA_LINEAR));
  const double lin[5] = {1e-4, 0.005075, 0.01005, 0.015025, 0.02};
  for (int t = 0; t < 5; t++) CHECK_CLOSE(s.beta[t], lin[t], 1e-12, 0);
  CHECK_OK(srl_ddpm_schedule_init(&s, 5, SRL_BETA_COSINE));
  // ᾱ_t = f(t+1)/f(0) with f(u) = cos²((u/T + s)/(1 + s)·π/2); the last is f(T)/f(0) = 0 → 0.999
  double f0 = pow(cos(0.008 / 1.008 * M_PI / 2), 2);
  for (int t = 0; t < 4; t++) {
    double f = pow(cos(((t + 1) / 5.0 + 0.008) / 1.008 * M_PI / 2), 2);
    CHECK_CLOSE(s.alpha_hat[t], f / f0, 1e-9, 1e-9);
  }
  CHECK_CLOSE(s.beta[4], 0.999, 1e-12, 0);
}


TEST(test_noise_and_reverse_step_formulas) {
  srl_ddpm_schedule s;
  CHECK_OK(srl_ddpm_schedule_init(&s, 5, SRL_BETA_VP));
  const float a[6] = {0.5f, -0.25f, 0.9f, -1.0f, 0.0f, 0.3f};
  const float e[6] = {1.0f, 0.5f, -2.0f, 0.1f, -0.3f, 0.7f};
  const int t[3] = {0, 4, 2};
  float xt[6];
  srl_ddpm_noise(xt, a, e, t, 3, 2, &s);
  for (int r = 0; r < 3; r++)
    for (int j = 0; j < 2; j++) {
      double ah = s.alpha_hat[t[r]];
      CHECK_CLOSE(xt[r * 2 + j], sqrt(ah) * a[r * 2 + j] + sqrt(1 - ah) * e[r * 2 + j], 1e-6, 0);
    }

  // reverse steps, unclipped and clipped, with and without noise
  const float x0[6] = {0.2f, -0.8f, 1.5f, 0.0f, -0.1f, 0.4f};
  const float eh[6] = {0.3f, -0.2f, 0.1f, 0.9f, -1.1f, 0.05f};
  const float z[6] = {-0.5f, 1.2f, 0.3f, -2.0f, 0.8f, 0.0f};
  for (int tt = 0; tt < 5; tt++)
    for (int clip = 0; clip < 2; clip++) {
      float x[6];
      memcpy(x, x0, sizeof x);
      srl_ddpm_step(x, eh, z, 6, &s, tt, 0.7f, clip);
      for (int i = 0; i < 6; i++) {
        double al = s.alpha[tt], ah = s.alpha_hat[tt];
        double want = (x0[i] - (1 - al) / sqrt(1 - ah) * eh[i]) / sqrt(al);
        if (tt > 0) want += sqrt(s.beta[tt]) * 0.7 * z[i];
        if (clip) want = fmin(1.0, fmax(-1.0, want));
        CHECK_CLOSE(x[i], want, 1e-5, 1e-6);
      }
    }
}


//---- Fourier features ----------------------------------------------------------------------------

TEST(test_fourier_values_and_gradient) {
  const float w[3] = {0.13f, -0.31f, 0.05f};
  const float t[4] = {0.0f, 1.0f, 2.0f, 4.0f};
  float feat[4 * 6];
  srl_fourier_forward(feat, w, 3, t, 4);
  for (int i = 0; i < 4; i++)
    for (int k = 0; k < 3; k++) {
      double f = 2 * M_PI * t[i] * w[k];
      CHECK_CLOSE(feat[i * 6 + k], cos(f), 1e-6, 0);
      CHECK_CLOSE(feat[i * 6 + 3 + k], sin(f), 1e-6, 0);
    }
  // L = Σ c·feat: analytic dW against central differences
  float c[24], dw[3] = {0.5f, 0.5f, 0.5f};  // backward adds onto what is there
  for (int i = 0; i < 24; i++) c[i] = (float)sin(1.7 * i + 0.3);
  srl_fourier_backward(dw, c, w, 3, t, 4);
  for (int k = 0; k < 3; k++) {
    double h = 1e-6, l[2];
    for (int sgn = 0; sgn < 2; sgn++) {
      double wp[3] = {w[0], w[1], w[2]};
      wp[k] += sgn ? -h : h;
      l[sgn] = 0;
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) {
          double f = 2 * M_PI * t[i] * wp[j];
          l[sgn] += c[i * 6 + j] * cos(f) + c[i * 6 + 3 + j] * sin(f);
        }
    }
    CHECK_CLOSE(dw[k] - 0.5f, (l[0] - l[1]) / (2 * h), 1e-4, 1e-5);
  }
}


//---- the ε-network -------------------------------------------------------------------------------

static srl_diffusion_config small_config(int max_batch) {
  srl_diffusion_config c = srl_diffusion_config_default(3, 2, max_batch);
  c.T = 4;
  c.time_dim = 6;
  c.n_cond = 2;
  c.cond_hidden[0] = 5;
  c.cond_hidden[1] = 4;
  c.hidden = 8;
  c.blocks = 2;
  c.res_hidden = 12;
  c.dropout = 0.25f;
  return c;
}


// the loss Σ c·ε̂ of one forward with the dropout masks of step `dstep`
static double probe_loss(srl_diffusion *d, const float *c, const float *x, const float *obs,
                         const int *t, int n, uint64_t dstep) {
  float out[64];
  d->eps->dropout_step = dstep;
  if (srl_diffusion_forward(d, out, x, obs, t, n) < 0) return NAN;
  double l = 0;
  for (int i = 0; i < n * d->cfg.act_dim; i++) l += (double)c[i] * out[i];
  return l;
}


// central differences of every entry of a tensor of net against its analytic gradient
static int check_tensor(srl_diffusion *d, srl_mlp *net, const char *name, const float *c,
                        const float *x, const float *obs, const int *t, int n, double *worst) {
  int ti = srl_mlp_tensor_find(net, name);
  if (ti < 0) return -1;
  size_t numel = net->tensors[ti].numel;
  float p[4096], g[4096];
  if (numel > 4096) return -1;
  srl_mlp_tensor_download(net, name, p, numel);
  srl_mlp_grad_download(net, name, g, numel);
  int bad = 0;
  for (size_t k = 0; k < numel; k++) {
    float keep = p[k], h = 2e-3f * fmaxf(1.0f, fabsf(keep));
    p[k] = keep + h;
    srl_mlp_tensor_upload(net, name, p, numel);
    double lp = probe_loss(d, c, x, obs, t, n, 7);
    p[k] = keep - h;
    srl_mlp_tensor_upload(net, name, p, numel);
    double lm = probe_loss(d, c, x, obs, t, n, 7);
    p[k] = keep;
    srl_mlp_tensor_upload(net, name, p, numel);
    double fd = (lp - lm) / ((double)(keep + h) - (double)(keep - h));
    double err = fabs(fd - g[k]) / (1e-2 + fabs(g[k]));
    if (err > *worst) *worst = err;
    if (fabs(fd - g[k]) > 3e-3 + 2e-2 * fabs(g[k])) {
      if (bad < 3) fprintf(stderr, "  %s[%zu]: analytic %.6g, numeric %.6g\n", name, k, g[k], fd);
      bad++;
    }
  }
  return bad;
}


TEST(test_eps_network_gradients_match_finite_differences) {
  srl_rng *rng = NULL;
  srl_diffusion *d = NULL;
  CHECK_OK(srl_rng_create(&rng, 11, 0));
  srl_diffusion_config cfg = small_config(8);
  CHECK_OK(srl_diffusion_create(&d, srl_ops_cpu(), &cfg, rng));
  if (!d) {
    srl_rng_destroy(rng);
    return;
  }
  // a larger Fourier spread than the default so the time path carries real signal
  float w[3] = {0.21f, -0.37f, 0.44f};
  CHECK_OK(srl_mlp_tensor_upload(d->cond, "fourier.weight", w, 3));
  int n = 7, t[7] = {0, 1, 2, 3, 3, 1, 2};
  float x[14], obs[21], c[14];
  srl_rng_fill_normal(rng, x, 14, 0.0f, 1.0f);
  srl_rng_fill_normal(rng, obs, 21, 0.0f, 1.0f);
  srl_rng_fill_normal(rng, c, 14, 0.0f, 1.0f);

  // analytic gradients in training mode (dropout on) with a fixed mask stream
  srl_diffusion_set_training(d, 1);
  srl_diffusion_zero_grad(d);
  double l0 = probe_loss(d, c, x, obs, t, n, 7);
  CHECK(isfinite(l0));
  CHECK_OK(srl_diffusion_backward(d, c));
  // backward adds: a second pass doubles every gradient
  float g1[3], g2[3];
  CHECK_OK(srl_mlp_grad_download(d->cond, "fourier.weight", g1, 3));

  double worst = 0;
  int bad = 0;
  for (int i = 0; i < d->cond->n_tensors; i++)
    bad += check_tensor(d, d->cond, d->cond->tensors[i].name, c, x, obs, t, n, &worst);
  for (int i = 0; i < d->eps->n_tensors; i++)
    bad += check_tensor(d, d->eps, d->eps->tensors[i].name, c, x, obs, t, n, &worst);
  CHECK_EQ_INT(bad, 0);
  printf("  eps-network FD: worst relative error %.2e\n", worst);
  CHECK(fabsf(g1[0]) + fabsf(g1[1]) + fabsf(g1[2]) > 1e-4f);  // the time path is not dead

  probe_loss(d, c, x, obs, t, n, 7);
  CHECK_OK(srl_diffusion_backward(d, c));
  CHECK_OK(srl_mlp_grad_download(d->cond, "fourier.weight", g2, 3));
  for (int k = 0; k < 3; k++) CHECK_CLOSE(g2[k], 2 * g1[k], 1e-6, 1e-5);

  // rows with the same time share one cond row: permuting rows permutes outputs only
  float o1[14], o2[14], xp[14], op[21];
  int tp[7];
  srl_diffusion_set_training(d, 0);
  CHECK_OK(srl_diffusion_forward(d, o1, x, obs, t, n));
  for (int r = 0; r < n; r++) {
    int s = n - 1 - r;
    memcpy(xp + 2 * r, x + 2 * s, 2 * sizeof(float));
    memcpy(op + 3 * r, obs + 3 * s, 3 * sizeof(float));
    tp[r] = t[s];
  }
  CHECK_OK(srl_diffusion_forward(d, o2, xp, op, tp, n));
  for (int r = 0; r < n; r++)
    for (int j = 0; j < 2; j++) CHECK_CLOSE(o2[2 * r + j], o1[2 * (n - 1 - r) + j], 1e-6, 1e-6);

  // bad inputs
  int bad_t[1] = {4};
  CHECK_ERR(srl_diffusion_forward(d, o1, x, obs, bad_t, 1), SRL_ERANGE);
  CHECK_ERR(srl_diffusion_forward(d, o1, x, obs, t, 9), SRL_ERANGE);
  srl_diffusion_destroy(d);
  srl_rng_destroy(rng);
}


// the time path alone: the cond rows for t = 0..T−1 equal MLP(Fourier(t)) computed on the host
TEST(test_time_path_matches_host_computation) {
  srl_rng *rng = NULL;
  srl_diffusion *d = NULL;
  CHECK_OK(srl_rng_create(&rng, 5, 0));
  srl_diffusion_config cfg = small_config(4);
  CHECK_OK(srl_diffusion_create(&d, srl_ops_cpu(), &cfg, rng));
  if (!d) {
    srl_rng_destroy(rng);
    return;
  }
  float x[2] = {0.1f, -0.2f}, obs[3] = {0.3f, 0.0f, 1.0f}, out[2];
  int t[1] = {3};
  CHECK_OK(srl_diffusion_forward(d, out, x, obs, t, 1));
  float W[3], W0[30], b0[5], W1[20], b1[4], cond[16];
  CHECK_OK(srl_mlp_tensor_download(d->cond, "fourier.weight", W, 3));
  CHECK_OK(srl_mlp_tensor_download(d->cond, "layers.0.weight", W0, 30));
  CHECK_OK(srl_mlp_tensor_download(d->cond, "layers.0.bias", b0, 5));
  CHECK_OK(srl_mlp_tensor_download(d->cond, "layers.1.weight", W1, 20));
  CHECK_OK(srl_mlp_tensor_download(d->cond, "layers.1.bias", b1, 4));
  d->ops->download(cond, d->cond->out, sizeof cond);
  for (int tt = 0; tt < 4; tt++) {
    double feat[6], h[5];
    for (int k = 0; k < 3; k++) {
      feat[k] = cos(2 * M_PI * tt * W[k]);
      feat[3 + k] = sin(2 * M_PI * tt * W[k]);
    }
    for (int o = 0; o < 5; o++) {
      double z = b0[o];
      for (int i = 0; i < 6; i++) z += W0[o * 6 + i] * feat[i];
      h[o] = z * tanh(log1p(exp(z)));  // mish
    }
    for (int o = 0; o < 4; o++) {
      double z = b1[o];
      for (int i = 0; i < 5; i++) z += W1[o * 5 + i] * h[i];
      CHECK_CLOSE(cond[tt * 4 + o], z, 1e-5, 1e-5);
    }
  }
  // and the input row of the MLPResNet is [x, s, cond(t)]
  float row[9];
  d->ops->download(row, d->d_x, sizeof row);
  CHECK_CLOSE(row[0], x[0], 0, 0);
  CHECK_CLOSE(row[1], x[1], 0, 0);
  for (int k = 0; k < 3; k++) CHECK_CLOSE(row[2 + k], obs[k], 0, 0);
  for (int k = 0; k < 4; k++) CHECK_CLOSE(row[5 + k], cond[3 * 4 + k], 0, 0);
  // flax initialisation: biases zero
  for (int k = 0; k < 5; k++) CHECK(b0[k] == 0.0f);
  srl_diffusion_destroy(d);
  srl_rng_destroy(rng);
}


//---- the sampler ---------------------------------------------------------------------------------

TEST(test_sampler_with_constant_network_follows_formula) {
  srl_rng *rng = NULL, *r1 = NULL, *r2 = NULL;
  srl_diffusion *d = NULL;
  CHECK_OK(srl_rng_create(&rng, 3, 0));
  srl_diffusion_config cfg = small_config(6);
  cfg.T = 5;
  CHECK_OK(srl_diffusion_create(&d, srl_ops_cpu(), &cfg, rng));
  if (!d) {
    srl_rng_destroy(rng);
    return;
  }
  srl_ddpm_schedule s;
  CHECK_OK(srl_ddpm_schedule_init(&s, 5, SRL_BETA_VP));
  // output layer W = 0, b = (0.3, −0.7): ε̂ = b whatever the input
  int last = d->eps->n_linear - 1;
  char wname[32], bname[32];
  snprintf(wname, sizeof wname, "layers.%d.weight", last);
  snprintf(bname, sizeof bname, "layers.%d.bias", last);
  float zero[16] = {0}, b[2] = {0.3f, -0.7f};
  CHECK_OK(srl_mlp_tensor_upload(d->eps, wname, zero, 16));
  CHECK_OK(srl_mlp_tensor_upload(d->eps, bname, b, 2));
  float obs[18];
  for (int i = 0; i < 18; i++) obs[i] = (float)i / 9.0f - 1.0f;

  for (int variant = 0; variant < 3; variant++) {
    float temp = variant == 1 ? 0.5f : 1.0f;
    int clip = variant != 2, rep = variant == 2 ? 2 : 0;
    float act[12];
    CHECK_OK(srl_rng_create(&r1, 99, 0));
    CHECK_OK(srl_rng_create(&r2, 99, 0));
    CHECK_OK(srl_diffusion_sample(d, act, obs, 6, &s, r1, temp, clip, rep));
    // the same draws, the formula in double
    double x[12];
    for (int i = 0; i < 12; i++) x[i] = srl_rng_normal(r2);
    for (int k = 0; k < 5 + rep; k++) {
      int t = k < 5 ? 4 - k : 0;
      double z[12] = {0};
      if (t > 0)
        for (int i = 0; i < 12; i++) z[i] = srl_rng_normal(r2);
      for (int i = 0; i < 12; i++) {
        double e = b[i % 2];
        x[i] = (x[i] - (1 - s.alpha[t]) / sqrt(1 - s.alpha_hat[t]) * e) / sqrt(s.alpha[t]);
        if (t > 0) x[i] += sqrt(s.beta[t]) * temp * z[i];
        if (clip) x[i] = fmin(1, fmax(-1, x[i]));
      }
    }
    for (int i = 0; i < 12; i++) CHECK_CLOSE(act[i], fmin(1, fmax(-1, x[i])), 2e-5, 1e-5);
    // the generators advanced alike: the sampler drew exactly the numbers above
    CHECK_CLOSE(srl_rng_uniform(r1), srl_rng_uniform(r2), 0, 0);
    srl_rng_destroy(r1);
    srl_rng_destroy(r2);
  }
  srl_diffusion_destroy(d);
  srl_rng_destroy(rng);
}


TEST(test_sampler_with_network_follows_forward) {
  srl_rng *rng = NULL, *r1 = NULL, *r2 = NULL;
  srl_diffusion *d = NULL;
  CHECK_OK(srl_rng_create(&rng, 4, 0));
  srl_diffusion_config cfg = small_config(5);
  CHECK_OK(srl_diffusion_create(&d, srl_ops_cpu(), &cfg, rng));
  if (!d) {
    srl_rng_destroy(rng);
    return;
  }
  srl_ddpm_schedule s;
  CHECK_OK(srl_ddpm_schedule_init(&s, 4, SRL_BETA_VP));
  float obs[15], act[10];
  srl_rng_fill_normal(rng, obs, 15, 0.0f, 1.0f);
  CHECK_OK(srl_rng_create(&r1, 7, 0));
  CHECK_OK(srl_rng_create(&r2, 7, 0));
  CHECK_OK(srl_diffusion_sample(d, act, obs, 5, &s, r1, 1.0f, 1, 0));
  // recompute: the network's ε̂ at each step, the update in double from float state
  float x[10], eh[10];
  int t[5];
  for (int i = 0; i < 10; i++) x[i] = (float)srl_rng_normal(r2);
  for (int tt = 3; tt >= 0; tt--) {
    for (int r = 0; r < 5; r++) t[r] = tt;
    CHECK_OK(srl_diffusion_forward(d, eh, x, obs, t, 5));
    for (int i = 0; i < 10; i++) {
      double v = (x[i] - (1 - s.alpha[tt]) / sqrt(1 - s.alpha_hat[tt]) * eh[i]) / sqrt(s.alpha[tt]);
      if (tt > 0) v += sqrt(s.beta[tt]) * srl_rng_normal(r2);
      x[i] = (float)fmin(1, fmax(-1, v));
    }
  }
  for (int i = 0; i < 10; i++) CHECK_CLOSE(act[i], x[i], 1e-5, 1e-5);
  srl_ddpm_schedule s5;
  CHECK_OK(srl_ddpm_schedule_init(&s5, 5, SRL_BETA_VP));
  CHECK_ERR(srl_diffusion_sample(d, act, obs, 5, &s5, r1, 1.0f, 1, 0), SRL_EINVAL);
  srl_rng_destroy(r1);
  srl_rng_destroy(r2);
  srl_diffusion_destroy(d);
  srl_rng_destroy(rng);
}


//---- devices -------------------------------------------------------------------------------------

TEST(test_cuda_matches_cpu) {
  const srl_ops *cuda = NULL;
  if (srl_ops_cuda(&cuda) < 0) SKIP("no CUDA device");
  srl_rng *r1 = NULL, *r2 = NULL;
  srl_diffusion *a = NULL, *b = NULL;
  CHECK_OK(srl_rng_create(&r1, 21, 0));
  CHECK_OK(srl_rng_create(&r2, 21, 0));
  srl_diffusion_config cfg = small_config(8);
  CHECK_OK(srl_diffusion_create(&a, srl_ops_cpu(), &cfg, r1));
  CHECK_OK(srl_diffusion_create(&b, cuda, &cfg, r2));
  if (a && b) {
    int n = 8, t[8] = {0, 1, 2, 3, 0, 1, 2, 3};
    float x[16], obs[24], c[16], oa[16], ob[16];
    srl_rng_fill_normal(r1, x, 16, 0, 1);
    srl_rng_fill_normal(r1, obs, 24, 0, 1);
    srl_rng_fill_normal(r1, c, 16, 0, 1);
    srl_diffusion_set_training(a, 1);
    srl_diffusion_set_training(b, 1);
    srl_diffusion_zero_grad(a);
    srl_diffusion_zero_grad(b);
    CHECK_OK(srl_diffusion_forward(a, oa, x, obs, t, n));
    CHECK_OK(srl_diffusion_forward(b, ob, x, obs, t, n));
    CHECK(srl_test_nmse(ob, oa, 16) < 1e-10);
    CHECK_OK(srl_diffusion_backward(a, c));
    CHECK_OK(srl_diffusion_backward(b, c));
    size_t np = a->eps->n_params, nc = a->cond->n_params;
    float *ga = srl_malloc((np + nc) * sizeof(float)), *gb = srl_malloc((np + nc) * sizeof(float));
    a->ops->download(ga, a->eps->grads, np * sizeof(float));
    b->ops->download(gb, b->eps->grads, np * sizeof(float));
    a->ops->download(ga + np, a->cond->grads, nc * sizeof(float));
    b->ops->download(gb + np, b->cond->grads, nc * sizeof(float));
    CHECK(srl_test_nmse(gb, ga, np + nc) < 1e-8);
    srl_free(ga);
    srl_free(gb);
  }
  srl_diffusion_destroy(a);
  srl_diffusion_destroy(b);
  srl_rng_destroy(r1);
  srl_rng_destroy(r2);
}


//---- learning ------------------------------------------------------------------------------------

// obs o = ±1; actions ±(0.6, 0.6) when o = +1 and ±(0.6, −0.6) when o = −1, each mode half the
// time, plus N(0, 0.04²) noise
static void bimodal_batch(srl_rng *rng, float *obs, float *act, int n) {
  for (int r = 0; r < n; r++) {
    float o = srl_rng_uniform(rng) < 0.5 ? 1.0f : -1.0f;
    float m = srl_rng_uniform(rng) < 0.5 ? 1.0f : -1.0f;
    obs[r] = o;
    act[2 * r] = 0.6f * m + 0.04f * (float)srl_rng_normal(rng);
    act[2 * r + 1] = 0.6f * m * o + 0.04f * (float)srl_rng_normal(rng);
  }
}


TEST(test_learns_bimodal_conditional_actions) {
  srl_rng *rng = NULL;
  srl_diffusion *d = NULL;
  srl_optim *oc = NULL, *oe = NULL;
  const int B = 256, steps = 1000;
  srl_ops_cpu_set_threads(1);
  CHECK_OK(srl_rng_create(&rng, 2024, 0));
  srl_diffusion_config cfg = srl_diffusion_config_default(1, 2, B);
  cfg.time_dim = 16;
  cfg.cond_hidden[0] = cfg.cond_hidden[1] = 32;
  cfg.hidden = 32;
  cfg.blocks = 2;
  cfg.res_hidden = 64;
  CHECK_OK(srl_diffusion_create(&d, srl_ops_cpu(), &cfg, rng));
  if (!d) {
    srl_rng_destroy(rng);
    return;
  }
  srl_optim_config oa = srl_optim_config_default(SRL_OPTIM_ADAMW, 2e-3f);
  oa.weight_decay = 0;
  CHECK_OK(srl_optim_create(&oc, d->ops, d->cond->n_params, &oa));
  CHECK_OK(srl_optim_create(&oe, d->ops, d->eps->n_params, &oa));
  srl_ddpm_schedule s;
  CHECK_OK(srl_ddpm_schedule_init(&s, cfg.T, SRL_BETA_VP));
  float *buf = srl_malloc((size_t)B * 12 * sizeof(float));
  float *obs = buf, *act = buf + B, *eps = act + 2 * B, *xt = eps + 2 * B, *eh = xt + 2 * B;
  float *g = eh + 2 * B;
  int *t = (int *)(g + 2 * B);
  double first = 0, last = 0;
  srl_diffusion_set_training(d, 1);
  for (int it = 0; it < steps && oc && oe; it++) {
    bimodal_batch(rng, obs, act, B);
    for (int r = 0; r < B; r++) t[r] = (int)srl_rng_int(rng, (unsigned long)cfg.T);
    srl_rng_fill_normal(rng, eps, (size_t)2 * B, 0, 1);
    srl_ddpm_noise(xt, act, eps, t, B, 2, &s);
    srl_diffusion_zero_grad(d);
    if (srl_diffusion_forward(d, eh, xt, obs, t, B) < 0) break;
    double loss = 0;
    for (int i = 0; i < 2 * B; i++) {
      loss += (double)(eh[i] - eps[i]) * (eh[i] - eps[i]) / B;
      g[i] = 2.0f * (eh[i] - eps[i]) / B;
    }
    if (it < 50) first += loss / 50;
    if (it >= steps - 50) last += loss / 50;
    srl_diffusion_backward(d, g);
    srl_optim_step(oc, d->cond->params, d->cond->grads, 2e-3f);
    srl_optim_step(oe, d->eps->params, d->eps->grads, 2e-3f);
  }
  srl_diffusion_set_training(d, 0);
  printf("  bimodal: loss %.3f -> %.3f\n", first, last);
  CHECK(last < 0.6 * first);

  // samples per context: near one of that context's modes, both modes present, none at the
  // other context's. T = 5 blurs even an exact ε-predictor: it puts 77% of the samples within
  // 0.25 of a mode, median distance 0.03
  for (int ctx = 0; ctx < 2; ctx++) {
    float o = ctx ? 1.0f : -1.0f;
    for (int r = 0; r < B; r++) obs[r] = o;
    CHECK_OK(srl_diffusion_sample(d, act, obs, B, &s, rng, 1.0f, 1, 0));
    int near[2] = {0, 0}, wrong = 0, close = 0;
    for (int r = 0; r < B; r++) {
      float dmin = 9.0f;
      for (int m = 0; m < 2; m++) {
        float mx = m ? 0.6f : -0.6f, my = mx * o,
              dist = hypotf(act[2 * r] - mx, act[2 * r + 1] - my);
        dmin = fminf(dmin, dist);
        if (dist < 0.25f) near[m]++;
        if (hypotf(act[2 * r] - mx, act[2 * r + 1] + my) < 0.25f) wrong++;
      }
      close += dmin < 0.15f;
    }
    printf(
        "  context %+.0f: %d and %d near the modes, %d within 0.15, %d near the other "
        "context's, of %d\n",
        o, near[0], near[1], close, wrong, B);
    CHECK(near[0] + near[1] > 0.6 * B);
    CHECK(close > 0.5 * B);  // the median distance is under 0.15
    CHECK(near[0] > 0.2 * B && near[1] > 0.2 * B);
    CHECK(wrong < 0.05 * B);
  }
  srl_free(buf);
  srl_optim_destroy(oc);
  srl_optim_destroy(oe);
  srl_diffusion_destroy(d);
  srl_rng_destroy(rng);
}


int main(void) {
  RUN(test_vp_schedule_matches_reference);
  RUN(test_linear_and_cosine_schedules);
  RUN(test_noise_and_reverse_step_formulas);
  RUN(test_fourier_values_and_gradient);
  RUN(test_eps_network_gradients_match_finite_differences);
  RUN(test_time_path_matches_host_computation);
  RUN(test_sampler_with_constant_network_follows_formula);
  RUN(test_sampler_with_network_follows_forward);
  RUN(test_cuda_matches_cpu);
  RUN(test_learns_bimodal_conditional_actions);
  return TEST_REPORT();
}

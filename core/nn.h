// nn.h: multilayer perceptrons (plain, with layernorm and dropout, or residual) on the op table.
//
// A network is created for one op table (its device, chosen once) and a largest batch. Its
// parameters and gradients mirror one layout inside one device block (the optimizer's Adam
// moments mirror it again), and every activation and scratch buffer is sized for the largest
// batch at creation: forward, backward and zero_grad never allocate. Every touch of parameter,
// activation or gradient memory goes through the table's ops, so the same code runs on CPU and
// CUDA; host copies go through ops->upload / ops->download.
//
// Two shapes:
//   plain     sizes {in, h1, ..., hk, out}: per hidden layer Linear → [Dropout] → [LayerNorm] →
//             act (jaxrl5's MLP order), then Linear → out_act. OmniSafe's actor and critics.
//   residual  sizes {in, hidden, out} and res_blocks > 0 (FISOR's MLPResNet):
//             Linear(in→hidden), res_blocks × [x + Linear(act(Linear(LN(Dropout(x)))))] with
//             inner width res_hidden, then act → Linear(hidden→out) → out_act.
// Linear layers store W as (out × in) like torch.nn.Linear and compute y = x·Wᵀ + b.
//
// Parameter tensors are named for checkpoints: "layers.<i>.weight" (out × in) and
// "layers.<i>.bias" (out) for the linears in forward order (in residual mode layer 0 is the input
// projection, layers 2j+1 and 2j+2 are block j's two linears, the last is the output layer),
// "ln.<i>.weight" / "ln.<i>.bias" (width) for the layernorms in forward order (plain: after hidden
// layer i; residual: inside block i), and the optional extra vector under its own name.
#ifndef SRL_NN_H
#define SRL_NN_H

#include <stddef.h>
#include <stdint.h>

#include "core/ops.h"
#include "core/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SRL_MLP_MAX_SIZES 17   // input, up to 15 hidden widths, output
#define SRL_MLP_MAX_BLOCKS 16  // residual blocks
#define SRL_MLP_MAX_LINEAR (2 * SRL_MLP_MAX_BLOCKS + 2)
#define SRL_MLP_MAX_TENSORS (4 * SRL_MLP_MAX_LINEAR + 1)
#define SRL_NN_NAME_MAX 48

typedef struct srl_mlp_config {
  int n_sizes;                       // entries used in sizes (≥ 2; exactly 3 in residual mode)
  int sizes[SRL_MLP_MAX_SIZES];      // input width, hidden widths, output width
  srl_act hidden_act;                // after each hidden layer (and inside residual blocks)
  srl_act out_act;                   // after the last linear (identity for a mean or a value)
  int layernorm;                     // 1: layernorm in each hidden layer / residual block
  float dropout;                     // drop probability in training mode; 0: none
  int res_blocks;                    // 0: plain; > 0: residual blocks (at most SRL_MLP_MAX_BLOCKS)
  int res_hidden;                    // inner width of a residual block; 0: 4·hidden as FISOR
  int extra;                         // free parameters appended to the block, unused by forward
  char extra_name[SRL_NN_NAME_MAX];  // their tensor name ("log_std" for a Gaussian actor); not
                                     // starting with "layers." or "ln."
  float extra_init;                  // their initial value
} srl_mlp_config;

// One linear layer y = x·Wᵀ + b; pointers into the network's device block.
typedef struct srl_linear {
  int in, out;
  int tensor;      // index of its weight in net->tensors; the bias follows
  float *w, *b;    // (out, in), (out)  parameters
  float *dw, *db;  // (out, in), (out)  gradients, same layout
} srl_linear;

// One layernorm's affine parameters (eps 1e-5, as PyTorch).
typedef struct srl_layernorm {
  int dim;
  int tensor;      // index of its weight in net->tensors; the bias follows
  float *w, *b;    // (dim), (dim)  scale (init 1) and shift (init 0)
  float *dw, *db;  // (dim), (dim)  gradients
} srl_layernorm;

// A named parameter tensor; offset counts floats from the start of the parameter block, and
// the gradient (and each optimizer moment) sits at the same offset of its own block.
typedef struct srl_nn_tensor {
  char name[SRL_NN_NAME_MAX];
  int ndim;
  int shape[2];
  size_t offset;
  size_t numel;
} srl_nn_tensor;

// Activations a plain hidden or output layer keeps for backward (rows: the batch).
typedef struct srl_mlp_stage {
  const float *x;      // (B, in) input of the linear in the last forward (layer 0: the caller's)
  float *z;            // (B, out) linear output; dropout applies to it in place
  float *mask;         // (B, out) dropout mask, NULL when dropout = 0
  float *norm;         // (B, out) layernorm output, NULL without layernorm
  float *mean, *rstd;  // (B), (B) layernorm statistics
  float *act;          // (B, out) activation output, NULL where the activation is the identity
} srl_mlp_stage;

// Activations a residual block keeps for backward (H: hidden width, F: inner width).
typedef struct srl_mlp_block {
  const float *r_in;   // (B, H) block input
  float *mask, *drop;  // (B, H), (B, H) dropout mask and output, NULL when dropout = 0
  float *norm;         // (B, H) layernorm output, NULL without layernorm
  float *mean, *rstd;  // (B), (B)
  const float *x1;     // (B, H) first linear's input (r_in, drop or norm)
  float *u;            // (B, F) first linear's output
  float *a;            // (B, F) act(u), NULL for the identity
  float *r;            // (B, H) block output r_in + a·W2ᵀ + b2
} srl_mlp_block;

typedef struct srl_mlp {
  const srl_ops *ops;
  srl_mlp_config cfg;
  int max_batch;
  int in_dim, out_dim;

  // parameters and gradients: one layout, two mirrored halves of one device block
  size_t n_params;  // floats per half, alignment padding included (padding stays 0)
  float *params;    // (n_params)
  float *grads;     // (n_params)
  int n_linear, n_ln;
  srl_linear lin[SRL_MLP_MAX_LINEAR];
  srl_layernorm ln[SRL_MLP_MAX_LINEAR];
  float *extra, *dextra;  // (cfg.extra), NULL when cfg.extra = 0
  int n_tensors;
  srl_nn_tensor tensors[SRL_MLP_MAX_TENSORS];

  // activations of the last forward, sized for max_batch rows
  srl_mlp_stage stage[SRL_MLP_MAX_LINEAR];  // plain: one per linear; residual: [0] and [last]
  srl_mlp_block block[SRL_MLP_MAX_BLOCKS];  // residual mode
  float *q;        // (B, hidden) residual mode: act of the last block output
  float *out_buf;  // (B, out) output activation, when out_act is not the identity
  float *out;      // (B, out) network output of the last forward
  float *gbuf[3];  // (B, max width) backward scratch
  int batch;       // rows of the last forward; 0 before the first

  // dropout: masks come from (dropout_seed, dropout_step, layer); step advances per forward
  int training;  // 1: dropout active (default 0)
  int dropped;   // whether the last forward applied dropout
  uint64_t dropout_seed, dropout_step;

  void *mem;  // the device block
} srl_mlp;

// A plain config from a sizes list: `srl_mlp_config_plain(3, (int[]){60, 64, 1}, SRL_ACT_TANH,
// SRL_ACT_IDENTITY)`; other fields zero. n_sizes beyond SRL_MLP_MAX_SIZES is left for
// srl_mlp_create to refuse.
srl_mlp_config srl_mlp_config_plain(int n_sizes, const int *sizes, srl_act hidden_act,
                                    srl_act out_act);

// Create a network on `ops` for batches up to max_batch and initialise it from rng: weights
// kaiming_uniform(a=√5) and biases U(±1/√fan_in) (PyTorch's and OmniSafe's defaults), drawn per
// linear in order, weight row-major then bias; layernorm scale 1 and shift 0; extra = extra_init.
// The dropout seed is drawn from rng too.
int srl_mlp_create(srl_mlp **out, const srl_ops *ops, const srl_mlp_config *cfg, int max_batch,
                   srl_rng *rng);
void srl_mlp_destroy(srl_mlp *net);

// Forward `batch` rows of in (batch × in_dim, on the network's device); the output is net->out
// (batch × out_dim), valid until the next forward. `in` is kept for backward and must stay
// unchanged until then. In training mode dropout draws new masks each call.
int srl_mlp_forward(srl_mlp *net, const float *in, int batch);

// Backward through the last forward: dout (batch × out_dim) is ∂L/∂out; parameter gradients
// accumulate (+=); din (batch × in_dim) is written (=) when not NULL. dout is not modified.
int srl_mlp_backward(srl_mlp *net, float *din, const float *dout);

// Set every gradient (extra included) to zero.
void srl_mlp_zero_grad(srl_mlp *net);

// Training mode turns dropout on; evaluation mode (the default) turns it off.
void srl_mlp_set_training(srl_mlp *net, int training);

// Named parameter tensors: count, the i-th, and the index of a name (-1 when absent).
int srl_mlp_tensor_count(const srl_mlp *net);
const srl_nn_tensor *srl_mlp_tensor(const srl_mlp *net, int i);
int srl_mlp_tensor_find(const srl_mlp *net, const char *name);

// Copy one named tensor (or its gradient) between the device and host memory of n floats;
// SRL_ENOTFOUND for an unknown name, SRL_EINVAL when n differs from its size.
int srl_mlp_tensor_download(const srl_mlp *net, const char *name, float *host, size_t n);
int srl_mlp_tensor_upload(srl_mlp *net, const char *name, const float *host, size_t n);
int srl_mlp_grad_download(const srl_mlp *net, const char *name, float *host, size_t n);

// Copy every parameter of src into dst (same config and device), e.g. a target network.
int srl_mlp_copy_params(srl_mlp *dst, const srl_mlp *src);

// Polyak averaging of a target network: dst = tau·src + (1 − tau)·dst over every parameter.
int srl_mlp_polyak(srl_mlp *dst, const srl_mlp *src, float tau);

#ifdef __cplusplus
}
#endif
#endif  // SRL_NN_H

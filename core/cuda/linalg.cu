// linalg.cu: CUDA twins of the linear-algebra ops: row-major matmul through cuBLAS sgemm (FP32
// arithmetic, no TF32), bias broadcast-add and the bias gradient (a column reduction).
#include "core/cuda/cuda_common.cuh"


//---- matmul -----------------------------------------------------------------------------------

// c = beta·c for an empty product; beta = 0 clears, NaNs included
static __global__ void scale_or_clear_kernel(float *c, float beta, size_t n) {
  size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    c[i] = beta == 0.0f ? 0.0f : beta * c[i];
}


// Row-major c(m×n) = op(a)·op(b) is column-major cᵀ(n×m) = op(b)ᵀ·op(a)ᵀ, and a row-major
// matrix read column-major is its transpose: so cuBLAS gets (b, a) with the same op flags and
// the row-major leading dimensions. cuBLAS does not read c when beta = 0.
static void cuda_matmul(float *c, const float *a, const float *b, int m, int n, int k, int trans_a,
                        int trans_b, float alpha, float beta) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    size_t count = (size_t)m * n;
    scale_or_clear_kernel<<<srl__cuda_grid(count), SRL_CUDA_THREADS>>>(c, beta, count);
    SRL_CUDA_LAUNCHED("scale_or_clear_kernel");
    return;
  }
  int rc = SRL_CUBLAS_CHECK(cublasSgemm(srl__cuda_cublas(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                        trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b,
                                        trans_b ? k : n, a, trans_a ? m : k, &beta, c, n));
  if (rc) srl__cuda_record(rc);
}


//---- bias -------------------------------------------------------------------------------------

static __global__ void bias_add_kernel(float *out, const float *bias, size_t n, int cols) {
  size_t stride = (size_t)gridDim.x * blockDim.x;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] += bias[i % (size_t)cols];
}


static void cuda_bias_add(float *out, const float *bias, int rows, int cols) {
  if (rows <= 0 || cols <= 0) return;
  size_t n = (size_t)rows * cols;
  bias_add_kernel<<<srl__cuda_grid(n), SRL_CUDA_THREADS>>>(out, bias, n, cols);
  SRL_CUDA_LAUNCHED("bias_add_kernel");
}


// one column's term of the bias gradient: the upstream gradient itself
struct bias_grad_term {
  const float *dout;
  int cols;
  __device__ float2 operator()(int r, int c) const {
    return make_float2(dout[(size_t)r * cols + c], 0.0f);
  }
};


static void cuda_bias_backward(float *dbias, const float *dout, int rows, int cols) {
  srl__cuda_col_reduce(dbias, (float *)NULL, rows, cols, bias_grad_term{dout, cols});
}


void srl__cuda_fill_linalg(srl_ops *t) {
  t->matmul = cuda_matmul;
  t->bias_add = cuda_bias_add;
  t->bias_backward = cuda_bias_backward;
}

// ops_cuda.cu: the CUDA table of the op set: lazy initialisation, memory ops, status reporting and
// the shared scratch. The op families live beside this file (linalg, act, norm, elementwise,
// reduce, optim, policy) and fill their entries of the table at initialisation.
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/cuda/cuda_common.cuh"

int srl__cuda_sm_count = 1;

static srl_ops cuda_ops;  // filled once by cuda_init
static cublasHandle_t cublas;

// first failure of a void op, kept until sync() or a reduction reports it
static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;
static int pending_code;
static char pending_msg[512];

// shared device scratch (its head is the reduction result slot) and the pinned result slot
static pthread_mutex_t scratch_lock = PTHREAD_MUTEX_INITIALIZER;
static void *scratch;
static size_t scratch_size;
static float *host_slot;

#define INITIAL_SCRATCH_BYTES ((size_t)64 << 10)


//---- status -----------------------------------------------------------------------------------

int srl__cuda_status(cudaError_t e, const char *expr, const char *file, int line) {
  if (e == cudaSuccess) return SRL_OK;
  (void)cudaGetLastError();  // clear a non-sticky error so the next launch check is not blamed
  return srl_error(SRL_ECUDA, "%s:%d: %s: %s (%s)", file, line, expr, cudaGetErrorName(e),
                   cudaGetErrorString(e));
}


int srl__cublas_status(cublasStatus_t s, const char *expr, const char *file, int line) {
  if (s == CUBLAS_STATUS_SUCCESS) return SRL_OK;
  return srl_error(SRL_ECUDA, "%s:%d: %s: %s (%s)", file, line, expr, cublasGetStatusName(s),
                   cublasGetStatusString(s));
}


void srl__cuda_record(int code) {
  if (code >= 0) return;
  pthread_mutex_lock(&pending_lock);
  if (!pending_code) {
    pending_code = code;
    snprintf(pending_msg, sizeof pending_msg, "%s", srl_errmsg());
  }
  pthread_mutex_unlock(&pending_lock);
}


int srl__cuda_take_pending(void) {
  pthread_mutex_lock(&pending_lock);
  int code = pending_code;
  if (code) srl_error(code, "%s", pending_msg);
  pending_code = 0;
  pending_msg[0] = '\0';
  pthread_mutex_unlock(&pending_lock);
  return code;
}


cublasHandle_t srl__cuda_cublas(void) {
  return cublas;
}


//---- scratch ----------------------------------------------------------------------------------

int srl__cuda_scratch_acquire(void **out, size_t bytes) {
  pthread_mutex_lock(&scratch_lock);
  if (bytes > scratch_size) {
    // grow with headroom; queued kernels may still read the old block, so wait for them first
    size_t size = scratch_size * 2 > bytes ? scratch_size * 2 : bytes;
    void *p = NULL;
    int rc = SRL_CUDA_CHECK(cudaDeviceSynchronize());
    if (!rc) rc = SRL_CUDA_CHECK(cudaMalloc(&p, size));
    if (rc) {
      pthread_mutex_unlock(&scratch_lock);
      return srl_error_context(rc, "growing the CUDA scratch to %zu bytes: ", size);
    }
    cudaFree(scratch);
    scratch = p;
    scratch_size = size;
  }
  *out = scratch;
  return SRL_OK;
}


void srl__cuda_scratch_release(void) {
  pthread_mutex_unlock(&scratch_lock);
}


float *srl__cuda_host_slot(void) {
  return host_slot;
}


//---- memory -----------------------------------------------------------------------------------

static void *cuda_alloc(size_t bytes) {
  void *p = NULL;
  size_t size = bytes ? bytes : 1;  // a valid, distinct pointer even for 0 bytes
  if (SRL_CUDA_CHECK(cudaMalloc(&p, size))) {
    srl_error_context(SRL_ENOMEM, "allocating %zu bytes on the GPU: ", bytes);
    return NULL;
  }
  if (SRL_CUDA_CHECK(cudaMemset(p, 0, size))) {
    cudaFree(p);
    return NULL;
  }
  return p;
}


static void cuda_free(void *p) {
  if (p) SRL_CUDA_RECORD(cudaFree(p));
}


static int cuda_upload(void *dst, const void *host_src, size_t bytes) {
  if (!bytes) return SRL_OK;
  return SRL_CUDA_CHECK(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice));
}


// waits for queued work, so the host sees every result before it
static int cuda_download(void *host_dst, const void *src, size_t bytes) {
  if (!bytes) return SRL_OK;
  return SRL_CUDA_CHECK(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost));
}


// memmove semantics: overlapping ranges go through the scratch
static int cuda_copy(void *dst, const void *src, size_t bytes) {
  if (!bytes || dst == src) return SRL_OK;
  uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;
  if (d + bytes <= s || s + bytes <= d)
    return SRL_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
  void *tmp = NULL;
  int rc = srl__cuda_scratch_acquire(&tmp, bytes);
  if (rc < 0) return rc;
  rc = SRL_CUDA_CHECK(cudaMemcpyAsync(tmp, src, bytes, cudaMemcpyDeviceToDevice, 0));
  if (!rc) rc = SRL_CUDA_CHECK(cudaMemcpyAsync(dst, tmp, bytes, cudaMemcpyDeviceToDevice, 0));
  srl__cuda_scratch_release();
  return rc;
}


// waits for the device; the first recorded failure of a void op wins over later ones
static int cuda_sync(void) {
  int rc = SRL_CUDA_CHECK(cudaDeviceSynchronize());
  int pending = srl__cuda_take_pending();
  return pending ? pending : rc;
}


//---- initialisation ---------------------------------------------------------------------------

static int init_status;
static char init_msg[512];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static __global__ void probe_kernel(int *flag) {
  if (threadIdx.x == 0) *flag = 1;
}


static int init_fail(const char *what, const char *detail) {
  init_status = SRL_ENODEV;
  snprintf(init_msg, sizeof init_msg,
           "device 'cuda' requested but no CUDA device is usable: %s%s%s", what, detail ? ": " : "",
           detail ? detail : "");
  return init_status;
}


// a device, a context, kernels that run on it, cuBLAS, the scratch; any failure means no device
static int init_device(void) {
  int count = 0, dev = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) return init_fail(cudaGetErrorString(e), NULL);
  if (count == 0) return init_fail("no CUDA device found", NULL);
  if ((e = cudaGetDevice(&dev)) != cudaSuccess || (e = cudaFree(0)) != cudaSuccess)
    return init_fail(cudaGetErrorString(e), NULL);
  if ((e = cudaDeviceGetAttribute(&srl__cuda_sm_count, cudaDevAttrMultiProcessorCount, dev)) !=
      cudaSuccess)
    return init_fail(cudaGetErrorString(e), NULL);
  if (srl__cuda_sm_count < 1) srl__cuda_sm_count = 1;

  // the scratch, zeroed; its head first serves the probe that checks kernels run on this GPU
  if ((e = cudaMalloc(&scratch, INITIAL_SCRATCH_BYTES)) != cudaSuccess)
    return init_fail(cudaGetErrorString(e), NULL);
  scratch_size = INITIAL_SCRATCH_BYTES;
  if ((e = cudaMemset(scratch, 0, scratch_size)) != cudaSuccess)
    return init_fail(cudaGetErrorString(e), NULL);
  probe_kernel<<<1, 32>>>((int *)scratch);
  int flag = 0;
  if ((e = cudaGetLastError()) != cudaSuccess ||
      (e = cudaMemcpy(&flag, scratch, sizeof flag, cudaMemcpyDeviceToHost)) != cudaSuccess)
    return init_fail("running a kernel", cudaGetErrorString(e));
  if (flag != 1) return init_fail("running a kernel", "the probe kernel wrote nothing");
  if ((e = cudaMallocHost((void **)&host_slot, sizeof(float) * 4)) != cudaSuccess)
    return init_fail(cudaGetErrorString(e), NULL);

  // plain FP32 products (no TF32), so results match the CPU twin
  cublasStatus_t s = cublasCreate(&cublas);
  if (s == CUBLAS_STATUS_SUCCESS) s = cublasSetMathMode(cublas, CUBLAS_DEFAULT_MATH);
  if (s != CUBLAS_STATUS_SUCCESS) return init_fail("cuBLAS", cublasGetStatusString(s));
  return SRL_OK;
}


static void init_release(void) {
  if (cublas) cublasDestroy(cublas);
  if (host_slot) cudaFreeHost(host_slot);
  if (scratch) cudaFree(scratch);
  cublas = NULL;
  host_slot = NULL;
  scratch = NULL;
  scratch_size = 0;
  (void)cudaGetLastError();
}


static void cuda_init(void) {
  if (init_device() < 0) {
    init_release();
    return;
  }
  srl_ops *t = &cuda_ops;
  t->device = SRL_DEVICE_CUDA;
  t->name = "cuda";
  t->alloc = cuda_alloc;
  t->free = cuda_free;
  t->upload = cuda_upload;
  t->download = cuda_download;
  t->copy = cuda_copy;
  t->sync = cuda_sync;
  srl__cuda_fill_linalg(t);
  srl__cuda_fill_act(t);
  srl__cuda_fill_norm(t);
  srl__cuda_fill_elementwise(t);
  srl__cuda_fill_reduce(t);
  srl__cuda_fill_optim(t);
  srl__cuda_fill_policy(t);
  init_status = SRL_OK;
}


extern "C" int srl_ops_cuda(const srl_ops **out) {
  pthread_once(&init_once, cuda_init);
  if (init_status < 0) {
    *out = NULL;
    return srl_error(init_status, "%s", init_msg);
  }
  *out = &cuda_ops;
  return SRL_OK;
}

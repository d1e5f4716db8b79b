// matmul and linear: every dense product is one sgemm call with the transposes folded into
// the call (no transposed copies); block_sparse_linear and csr_linear multiply only a weight's
// stored blocks or kept entries.
#include "internal.hpp"
#include "verdant/kernels/block_sparse.hpp"
#include "verdant/kernels/csr.hpp"
#include "verdant/kernels/gemm.hpp"

namespace verdant::autograd {

using detail::require;
using detail::val;
using kernels::sgemm;

namespace {
// Column sums of gY [N, out]: the bias gradient of both linear ops.
Tensor bias_grad(const float* g, std::int64_t N, std::int64_t out) {
  Tensor dB = Tensor::zeros({out});
  float* db = dB.data<float>();
  for (std::int64_t i = 0; i < N; ++i)
    for (std::int64_t j = 0; j < out; ++j) db[j] += g[i * out + j];
  return dB;
}

// The checks and sizes both sparse linear ops share; bias_data is null without a bias. Plain
// members, not a structured binding, because the ops' backward lambdas capture them (clang 14
// cannot capture bindings).
struct SparseLinearArgs {
  Tensor X, W;
  const float* bias_data;
  std::int64_t N, in, out;
};
template <typename Pattern>
SparseLinearArgs sparse_linear_args(const Variable& x, const Variable& weight, const Variable& bias,
                                    const Pattern* pattern) {
  const Tensor& X = val(x, "linear", "input");
  const Tensor& W = val(weight, "linear", "weight");
  require(
      pattern != nullptr && W.ndim() == 2 && W.dim(0) == pattern->rows && W.dim(1) == pattern->cols,
      "linear: sparsity pattern does not fit weight " + shape_str(W.shape()));
  require(X.ndim() == 2 && X.dim(1) == W.dim(1),
          "linear: input " + shape_str(X.shape()) + " does not fit weight " + shape_str(W.shape()));
  const std::int64_t out = W.dim(0);
  const float* b = nullptr;
  if (bias.defined()) {
    const Tensor& B = val(bias, "linear", "bias");
    require(B.numel() == out,
            "linear: bias " + shape_str(B.shape()) + " for " + std::to_string(out) + " outputs");
    b = B.data<float>();
  }
  return {X, W, b, X.dim(0), W.dim(1), out};
}
}  // namespace

Variable matmul(const Variable& a, const Variable& b) {
  const Tensor& A = val(a, "matmul", "a");
  const Tensor& B = val(b, "matmul", "b");
  require(A.ndim() == 2 && B.ndim() == 2 && A.dim(1) == B.dim(0),
          "matmul: cannot multiply " + shape_str(A.shape()) + " by " + shape_str(B.shape()));
  const std::int64_t M = A.dim(0), K = A.dim(1), N = B.dim(1);
  Tensor Y({M, N}, DType::f32);
  sgemm(false, false, M, N, K, 1.f, A.data<float>(), K, B.data<float>(), N, 0.f, Y.data<float>(),
        N);
  return make_result(
      std::move(Y), {a, b},
      [A, B, M, K, N](const Tensor& gy, Node& self) {
        if (self.needs_grad(0)) {  // dA = gY B^T
          Tensor dA({M, K}, DType::f32);
          sgemm(false, true, M, K, N, 1.f, gy.data<float>(), N, B.data<float>(), N, 0.f,
                dA.data<float>(), K);
          self.accumulate(0, std::move(dA));
        }
        if (self.needs_grad(1)) {  // dB = A^T gY
          Tensor dB({K, N}, DType::f32);
          sgemm(true, false, K, N, M, 1.f, A.data<float>(), K, gy.data<float>(), N, 0.f,
                dB.data<float>(), N);
          self.accumulate(1, std::move(dB));
        }
      },
      "matmul");
}

Variable linear(const Variable& x, const Variable& weight, const Variable& bias) {
  const Tensor& X = val(x, "linear", "input");
  const Tensor& W = val(weight, "linear", "weight");
  require(W.ndim() == 2, "linear: weight must be [out, in], got " + shape_str(W.shape()));
  require(X.ndim() == 2 && X.dim(1) == W.dim(1),
          "linear: input " + shape_str(X.shape()) + " does not fit weight " + shape_str(W.shape()));
  const std::int64_t N = X.dim(0), in = W.dim(1), out = W.dim(0);
  Tensor Y({N, out}, DType::f32);
  float* y = Y.data<float>();
  float beta = 0.f;
  if (bias.defined()) {
    const Tensor& B = val(bias, "linear", "bias");
    require(B.numel() == out,
            "linear: bias " + shape_str(B.shape()) + " for " + std::to_string(out) + " outputs");
    const float* b = B.data<float>();
    for (std::int64_t i = 0; i < N; ++i)
      for (std::int64_t j = 0; j < out; ++j) y[i * out + j] = b[j];
    beta = 1.f;
  }
  // Y = X W^T (+ bias already in Y)
  sgemm(false, true, N, out, in, 1.f, X.data<float>(), in, W.data<float>(), in, beta, y, out);
  return make_result(
      std::move(Y), {x, weight, bias},
      [X, W, N, in, out](const Tensor& gy, Node& self) {
        const float* g = gy.data<float>();
        if (self.needs_grad(0)) {  // dX = gY W
          Tensor dX({N, in}, DType::f32);
          sgemm(false, false, N, in, out, 1.f, g, out, W.data<float>(), in, 0.f, dX.data<float>(),
                in);
          self.accumulate(0, std::move(dX));
        }
        if (self.needs_grad(1)) {  // dW = gY^T X
          Tensor dW({out, in}, DType::f32);
          sgemm(true, false, out, in, N, 1.f, g, out, X.data<float>(), in, 0.f, dW.data<float>(),
                in);
          self.accumulate(1, std::move(dW));
        }
        if (self.needs_grad(2)) self.accumulate(2, bias_grad(g, N, out));  // column sums
      },
      "linear");
}

Variable block_sparse_linear(const Variable& x, const Variable& weight, const Variable& bias,
                             std::shared_ptr<const kernels::BlockPattern> pattern) {
  const SparseLinearArgs a = sparse_linear_args(x, weight, bias, pattern.get());
  Tensor Y({a.N, a.out}, DType::f32);
  kernels::block_sparse_forward(*pattern, a.W.data<float>(), a.bias_data, a.X.data<float>(), a.N,
                                Y.data<float>());
  return make_result(
      std::move(Y), {x, weight, bias},
      [a, pattern](const Tensor& gy, Node& self) {
        const float* g = gy.data<float>();
        // One pass: dY is transposed once for both gradients.
        Tensor dX, dW;
        if (self.needs_grad(0)) dX = Tensor({a.N, a.in}, DType::f32);
        if (self.needs_grad(1)) dW = Tensor({a.out, a.in}, DType::f32);
        kernels::block_sparse_backward(*pattern, a.W.data<float>(), a.X.data<float>(), g, a.N,
                                       dX.defined() ? dX.data<float>() : nullptr,
                                       dW.defined() ? dW.data<float>() : nullptr);
        if (dX.defined()) self.accumulate(0, std::move(dX));
        if (dW.defined()) self.accumulate(1, std::move(dW));
        if (self.needs_grad(2)) self.accumulate(2, bias_grad(g, a.N, a.out));
      },
      "block_sparse_linear");
}

Variable csr_linear(const Variable& x, const Variable& weight, const Variable& bias,
                    std::shared_ptr<const kernels::CsrPattern> pattern, bool dense_weight_grad) {
  const SparseLinearArgs a = sparse_linear_args(x, weight, bias, pattern.get());
  // Kept for the weight gradient, which reads the input batch-major like the forward.
  Tensor XT({a.in, a.N}, DType::f32);
  kernels::batch_major(a.X.data<float>(), a.N, a.in, XT.data<float>());
  Tensor Y({a.N, a.out}, DType::f32);
  kernels::csr_forward(*pattern, a.W.data<float>(), a.bias_data, XT.data<float>(), a.N,
                       Y.data<float>());
  return make_result(
      std::move(Y), {x, weight, bias},
      [a, pattern, XT, dense_weight_grad](const Tensor& gy, Node& self) {
        const float* g = gy.data<float>();
        const bool sparse_dw = self.needs_grad(1) && !dense_weight_grad;
        Tensor dX, dW;
        if (self.needs_grad(0)) dX = Tensor({a.N, a.in}, DType::f32);
        if (self.needs_grad(1)) dW = Tensor({a.out, a.in}, DType::f32);
        if (dX.defined() || sparse_dw)
          kernels::csr_backward(*pattern, a.W.data<float>(), XT.data<float>(), g, a.N,
                                dX.defined() ? dX.data<float>() : nullptr,
                                sparse_dw ? dW.data<float>() : nullptr);
        if (self.needs_grad(1) && dense_weight_grad)  // dW = gY^T X everywhere
          sgemm(true, false, a.out, a.in, a.N, 1.f, g, a.out, a.X.data<float>(), a.in, 0.f,
                dW.data<float>(), a.in);
        if (dX.defined()) self.accumulate(0, std::move(dX));
        if (dW.defined()) self.accumulate(1, std::move(dW));
        if (self.needs_grad(2)) self.accumulate(2, bias_grad(g, a.N, a.out));
      },
      "csr_linear");
}

}  // namespace verdant::autograd

#pragma once
// Differentiable ops on Variables (float32). Shapes follow PyTorch conventions: NCHW images,
// Linear weight [out, in]. Each throws verdant::Error on a shape mismatch.
#include <cstdint>
#include <memory>

#include "verdant/autograd/generator.hpp"
#include "verdant/autograd/variable.hpp"

namespace verdant::autograd {

// --- linear algebra ---
// a [M,K] x b [K,N] -> [M,N].
Variable matmul(const Variable& a, const Variable& b);
// x [N,in], weight [out,in], bias [out] or undefined -> x weight^T + bias, [N,out].
Variable linear(const Variable& x, const Variable& weight, const Variable& bias = {});
}  // namespace verdant::autograd
namespace verdant::kernels {
struct BlockPattern;
struct CsrPattern;
}  // namespace verdant::kernels
namespace verdant::autograd {
// linear() for a weight pruned in 4x4 blocks: only the pattern's blocks are multiplied (the
// weight is taken as zero elsewhere, and its gradient there is zero).
Variable block_sparse_linear(const Variable& x, const Variable& weight, const Variable& bias,
                             std::shared_ptr<const kernels::BlockPattern> pattern);
// linear() for a weight with most entries masked out (unstructured): the forward and the input
// gradient multiply only the pattern's weights, and the weight gradient is computed only at
// the pattern's positions (zero elsewhere), or in full when dense_weight_grad (RigL's growth
// step ranks the masked-out positions by it).
Variable csr_linear(const Variable& x, const Variable& weight, const Variable& bias,
                    std::shared_ptr<const kernels::CsrPattern> pattern,
                    bool dense_weight_grad = false);

// --- convolution and pooling (NCHW) ---
struct Conv2dParams {
  std::int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  std::int64_t dilation_h = 1, dilation_w = 1;
  // Channels split into `groups` independent convolutions (groups == C: depthwise).
  std::int64_t groups = 1;
  Conv2dParams() = default;
  Conv2dParams(std::int64_t stride, std::int64_t padding, std::int64_t dilation = 1,
               std::int64_t groups_ = 1)
      : stride_h(stride),
        stride_w(stride),
        pad_h(padding),
        pad_w(padding),
        dilation_h(dilation),
        dilation_w(dilation),
        groups(groups_) {}
};
// x [N,C,H,W], weight [OC,C/groups,KH,KW], bias [OC] or undefined -> [N,OC,OH,OW]; C and OC
// divisible by groups. Through oneDNN, or one batched im2col + one GEMM per group and call
// (VERDANT_CONV=im2col, see verdant/kernels/conv.hpp).
Variable conv2d(const Variable& x, const Variable& weight, const Variable& bias = {},
                Conv2dParams params = {});

// kernel x kernel window; stride 0 means stride = kernel; padding at most kernel / 2.
// Padding: max-pool ignores padded cells, avg-pool counts them as zeros (PyTorch's
// count_include_pad=true).
Variable max_pool2d(const Variable& x, std::int64_t kernel, std::int64_t stride = 0,
                    std::int64_t padding = 0);
// max_pool2d(relu(x), ...) in one pass, with the same values and gradients.
Variable relu_max_pool2d(const Variable& x, std::int64_t kernel, std::int64_t stride = 0,
                         std::int64_t padding = 0);
Variable avg_pool2d(const Variable& x, std::int64_t kernel, std::int64_t stride = 0,
                    std::int64_t padding = 0);

// --- activations (elementwise) ---
Variable relu(const Variable& x);
// x for x > 0, negative_slope * x otherwise.
Variable leaky_relu(const Variable& x, float negative_slope = 0.01f);
Variable tanh(const Variable& x);
Variable sigmoid(const Variable& x);
Variable gelu(const Variable& x);  // exact (erf) form, PyTorch's default

// --- softmax family; dim may be negative ---
Variable softmax(const Variable& x, int dim = -1);
Variable log_softmax(const Variable& x, int dim = -1);
// Fused log-softmax + NLL, mean over the batch. logits [N,C]; labels: i32 tensor [N] with
// values in [0, C) (else verdant::Error). label_smoothing in [0,1) like PyTorch.
Variable cross_entropy(const Variable& logits, const Tensor& labels, float label_smoothing = 0.f);

// --- regularisation and normalisation ---
// Training: zero each element with probability p and scale the rest by 1/(1-p).
// Not training (or p == 0): identity.
Variable dropout(const Variable& x, float p, bool training, Generator& gen = default_generator());
// x [N,C] or [N,C,H,W]. Training: normalise with batch statistics and update running_mean /
// running_var in place (running = (1-momentum)*running + momentum*batch, unbiased var),
// like PyTorch. Eval: use the running statistics. weight/bias [C] may be undefined.
Variable batch_norm(const Variable& x, const Variable& weight, const Variable& bias,
                    Tensor& running_mean, Tensor& running_var, bool training, float momentum = 0.1f,
                    float eps = 1e-5f);

// --- shape ---
Variable reshape(const Variable& x, Shape shape);  // one dim may be -1
// Collapses dims start_dim..end of the shape into one.
Variable flatten(const Variable& x, int start_dim = 1);

// --- broadcasting arithmetic (NumPy rules) ---
Variable add(const Variable& a, const Variable& b);
Variable sub(const Variable& a, const Variable& b);
Variable mul(const Variable& a, const Variable& b);
Variable mul(const Variable& a, float s);
Variable operator+(const Variable& a, const Variable& b);
Variable operator-(const Variable& a, const Variable& b);
Variable operator*(const Variable& a, const Variable& b);
Variable operator*(const Variable& a, float s);
Variable operator*(float s, const Variable& a);

// --- reductions ---
Variable sum(const Variable& x);  // all elements -> shape [] (one element)
Variable mean(const Variable& x);
Variable sum(const Variable& x, int dim, bool keepdim = false);
Variable mean(const Variable& x, int dim, bool keepdim = false);

}  // namespace verdant::autograd

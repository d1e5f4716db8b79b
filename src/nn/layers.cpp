#include "verdant/nn/layers.hpp"

#include <cmath>
#include <cstdio>

#include "verdant/core/error.hpp"
#include "verdant/nn/init.hpp"

namespace verdant::nn {

namespace {
void require_positive(std::int64_t v, const char* layer, const char* what) {
  if (v <= 0)
    throw Error(std::string(layer) + ": " + what + " must be positive, got " + std::to_string(v));
}
// PyTorch's bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
Tensor bias_init(std::int64_t n, std::int64_t fan_in, Generator& gen) {
  Tensor b({n}, DType::f32);
  const float bound = 1.f / std::sqrt(static_cast<float>(fan_in));
  init::uniform(b, -bound, bound, gen);
  return b;
}
}  // namespace

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool bias, Generator& gen)
    : in_(in_features), out_(out_features) {
  require_positive(in_features, "Linear", "in_features");
  require_positive(out_features, "Linear", "out_features");
  Tensor w({out_, in_}, DType::f32);
  init::kaiming_uniform(w, gen);
  weight_ = register_parameter("weight", std::move(w));
  if (bias) bias_ = register_parameter("bias", bias_init(out_, in_, gen));
}

Variable Linear::forward(const Variable& x) {
  if (pattern_) return autograd::block_sparse_linear(x, weight_, bias_, pattern_);
  if (csr_) return autograd::csr_linear(x, weight_, bias_, csr_, dense_weight_grad_);
  return autograd::linear(x, weight_, bias_);
}

std::string Linear::describe() const {
  return "in=" + std::to_string(in_) + ", out=" + std::to_string(out_) +
         (bias_.defined() ? "" : ", bias=false");
}

Conv2d::Conv2d(const Conv2dOptions& o, Generator& gen) : opt_(o) {
  require_positive(o.in_channels, "Conv2d", "in_channels");
  require_positive(o.out_channels, "Conv2d", "out_channels");
  require_positive(o.kernel, "Conv2d", "kernel");
  require_positive(o.stride, "Conv2d", "stride");
  require_positive(o.groups, "Conv2d", "groups");
  require_positive(o.dilation, "Conv2d", "dilation");
  if (o.padding < 0) throw Error("Conv2d: padding must be non-negative");
  if (o.in_channels % o.groups || o.out_channels % o.groups)
    throw Error("Conv2d: in_channels " + std::to_string(o.in_channels) + " and out_channels " +
                std::to_string(o.out_channels) + " must be divisible by groups " +
                std::to_string(o.groups));
  const std::int64_t in_per_group = o.in_channels / o.groups;
  Tensor w({o.out_channels, in_per_group, o.kernel, o.kernel}, DType::f32);
  init::kaiming_uniform(w, gen);
  weight_ = register_parameter("weight", std::move(w));
  if (o.bias)
    bias_ = register_parameter("bias",
                               bias_init(o.out_channels, in_per_group * o.kernel * o.kernel, gen));
}

Variable Conv2d::forward(const Variable& x) {
  return autograd::conv2d(
      x, weight_, bias_,
      autograd::Conv2dParams(opt_.stride, opt_.padding, opt_.dilation, opt_.groups));
}

std::string Conv2d::describe() const {
  return "in=" + std::to_string(opt_.in_channels) + ", out=" + std::to_string(opt_.out_channels) +
         ", kernel=" + std::to_string(opt_.kernel) + ", stride=" + std::to_string(opt_.stride) +
         ", padding=" + std::to_string(opt_.padding) +
         (opt_.groups != 1 ? ", groups=" + std::to_string(opt_.groups) : "") +
         (opt_.dilation != 1 ? ", dilation=" + std::to_string(opt_.dilation) : "") +
         (opt_.bias ? "" : ", bias=false");
}

std::string LeakyReLU::describe() const {
  char b[32];
  std::snprintf(b, sizeof b, "negative_slope=%g", static_cast<double>(slope_));
  return b;
}

MaxPool2d::MaxPool2d(std::int64_t kernel, std::int64_t stride, std::int64_t padding)
    : kernel_(kernel), stride_(stride ? stride : kernel), padding_(padding) {
  require_positive(kernel, "MaxPool2d", "kernel");
  if (stride < 0 || padding < 0) throw Error("MaxPool2d: stride and padding must be non-negative");
}
Variable MaxPool2d::forward(const Variable& x) {
  return autograd::max_pool2d(x, kernel_, stride_, padding_);
}
Variable MaxPool2d::forward_after_relu(const Variable& x) {
  return autograd::relu_max_pool2d(x, kernel_, stride_, padding_);
}
std::string MaxPool2d::describe() const {
  return "kernel=" + std::to_string(kernel_) + ", stride=" + std::to_string(stride_) +
         ", padding=" + std::to_string(padding_);
}

AvgPool2d::AvgPool2d(std::int64_t kernel, std::int64_t stride, std::int64_t padding)
    : kernel_(kernel), stride_(stride ? stride : kernel), padding_(padding) {
  require_positive(kernel, "AvgPool2d", "kernel");
  if (stride < 0 || padding < 0) throw Error("AvgPool2d: stride and padding must be non-negative");
}
Variable AvgPool2d::forward(const Variable& x) {
  return autograd::avg_pool2d(x, kernel_, stride_, padding_);
}
std::string AvgPool2d::describe() const {
  return "kernel=" + std::to_string(kernel_) + ", stride=" + std::to_string(stride_) +
         ", padding=" + std::to_string(padding_);
}

BatchNorm::BatchNorm(std::int64_t num_features, int spatial_dims, float eps, float momentum)
    : features_(num_features), spatial_dims_(spatial_dims), eps_(eps), momentum_(momentum) {
  require_positive(num_features, "BatchNorm", "num_features");
  weight_ = register_parameter("weight", Tensor::full({num_features}, 1.f));
  bias_ = register_parameter("bias", Tensor::zeros({num_features}));
  mean_ = register_buffer("running_mean", Tensor::zeros({num_features}));
  var_ = register_buffer("running_var", Tensor::full({num_features}, 1.f));
  tracked_ = register_buffer("num_batches_tracked", Tensor::zeros({1}, DType::i32));
}

Variable BatchNorm::forward(const Variable& x) {
  const int want = spatial_dims_ == 2 ? 4 : 2;
  if (x.ndim() != want)
    throw Error(type_name() + ": expected a " + std::to_string(want) + "-D input, got " +
                shape_str(x.shape()));
  if (is_training()) tracked_.data<std::int32_t>()[0] += 1;
  return autograd::batch_norm(x, weight_, bias_, mean_, var_, is_training(), momentum_, eps_);
}

std::string BatchNorm::describe() const {
  return "features=" + std::to_string(features_);
}

Dropout::Dropout(float p, Generator& gen) : p_(p), gen_(&gen) {
  if (!(p >= 0.f && p <= 1.f))
    throw Error("Dropout: p must be in [0, 1], got " + std::to_string(p));
}
Variable Dropout::forward(const Variable& x) {
  return autograd::dropout(x, p_, is_training(), *gen_);
}
std::string Dropout::describe() const {
  return "p=" + std::to_string(p_);
}

}  // namespace verdant::nn

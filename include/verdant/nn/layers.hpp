#pragma once
// Standard layers. Default initialisation: Kaiming-uniform for weights (gain sqrt(2),
// suited to the ReLU networks here) and PyTorch's bias init U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
#include <cstdint>

#include "verdant/nn/module.hpp"

namespace verdant::nn {

using autograd::default_generator;

class Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true,
         Generator& gen = default_generator());
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "Linear"; }
  std::string describe() const override;
  std::int64_t in_features() const { return in_; }
  std::int64_t out_features() const { return out_; }
  Variable& weight() { return weight_; }  // [out, in]
  Variable& bias() { return bias_; }      // [out]; undefined when bias = false
  bool has_bias() const { return bias_.defined(); }
  // A weight pruned in 4x4 blocks: forward then multiplies only these blocks (compression sets
  // it where that is faster than the dense product; nullptr: dense).
  void set_block_pattern(std::shared_ptr<const kernels::BlockPattern> p) {
    pattern_ = std::move(p);
  }
  const kernels::BlockPattern* block_pattern() const { return pattern_.get(); }
  // A weight with most entries masked out: forward then multiplies only the kept entries and
  // the weight gradient is computed there only, or in full while dense_weight_grad is set
  // (nullptr: dense).
  void set_csr_pattern(std::shared_ptr<const kernels::CsrPattern> p) { csr_ = std::move(p); }
  const kernels::CsrPattern* csr_pattern() const { return csr_.get(); }
  void set_dense_weight_grad(bool on) { dense_weight_grad_ = on; }
  bool dense_weight_grad() const { return dense_weight_grad_; }

 private:
  std::int64_t in_, out_;
  Variable weight_;
  Variable bias_;  // undefined when there is no bias
  std::shared_ptr<const kernels::BlockPattern> pattern_;
  std::shared_ptr<const kernels::CsrPattern> csr_;
  bool dense_weight_grad_ = false;
};

struct Conv2dOptions {
  std::int64_t in_channels, out_channels, kernel;
  std::int64_t stride = 1, padding = 0;
  bool bias = true;
  std::int64_t groups = 1;  // in and out channels divisible by it; == in_channels: depthwise
  std::int64_t dilation = 1;
};

class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& o, Generator& gen = default_generator());
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel,
         std::int64_t stride = 1, std::int64_t padding = 0, bool bias = true,
         Generator& gen = default_generator())
      : Conv2d(Conv2dOptions{in_channels, out_channels, kernel, stride, padding, bias}, gen) {}
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "Conv2d"; }
  std::string describe() const override;
  const Conv2dOptions& options() const { return opt_; }
  Variable& weight() { return weight_; }  // [out, in / groups, k, k]
  Variable& bias() { return bias_; }

 private:
  Conv2dOptions opt_;
  Variable weight_;
  Variable bias_;  // undefined when there is no bias
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(std::int64_t kernel, std::int64_t stride = 0, std::int64_t padding = 0);
  Variable forward(const Variable& x) override;
  // forward(relu(x)) in one pass; Sequential uses it where a ReLU comes right before.
  Variable forward_after_relu(const Variable& x);
  std::string type_name() const override { return "MaxPool2d"; }
  std::string describe() const override;
  std::int64_t kernel() const { return kernel_; }
  std::int64_t stride() const { return stride_; }
  std::int64_t padding() const { return padding_; }

 private:
  std::int64_t kernel_, stride_, padding_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(std::int64_t kernel, std::int64_t stride = 0, std::int64_t padding = 0);
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "AvgPool2d"; }
  std::string describe() const override;
  std::int64_t kernel() const { return kernel_; }
  std::int64_t stride() const { return stride_; }
  std::int64_t padding() const { return padding_; }

 private:
  std::int64_t kernel_, stride_, padding_;
};

// BatchNorm1d takes [N,C]; BatchNorm2d takes [N,C,H,W]. Parameters weight/bias, buffers
// running_mean/running_var/num_batches_tracked (as PyTorch names them; the counter is i32).
class BatchNorm : public Module {
 public:
  BatchNorm(std::int64_t num_features, int spatial_dims, float eps = 1e-5f, float momentum = 0.1f);
  Variable forward(const Variable& x) override;
  std::string type_name() const override {
    return spatial_dims_ == 2 ? "BatchNorm2d" : "BatchNorm1d";
  }
  std::string describe() const override;
  std::int64_t num_features() const { return features_; }
  float eps() const { return eps_; }
  float momentum() const { return momentum_; }
  Variable& weight() { return weight_; }
  Variable& bias() { return bias_; }
  Tensor& running_mean() { return mean_; }
  Tensor& running_var() { return var_; }

 private:
  std::int64_t features_;
  int spatial_dims_;
  float eps_, momentum_;
  Variable weight_;
  Variable bias_;
  Tensor mean_;
  Tensor var_;
  Tensor tracked_;
};

class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(std::int64_t n, float eps = 1e-5f, float momentum = 0.1f)
      : BatchNorm(n, 0, eps, momentum) {}
};
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(std::int64_t n, float eps = 1e-5f, float momentum = 0.1f)
      : BatchNorm(n, 2, eps, momentum) {}
};

class Dropout : public Module {
 public:
  explicit Dropout(float p = 0.5f, Generator& gen = default_generator());
  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "Dropout"; }
  std::string describe() const override;
  float p() const { return p_; }

 private:
  float p_;
  Generator* gen_;
};

class ReLU : public Module {
 public:
  Variable forward(const Variable& x) override { return autograd::relu(x); }
  std::string type_name() const override { return "ReLU"; }
};
class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(float negative_slope = 0.01f) : slope_(negative_slope) {}
  Variable forward(const Variable& x) override { return autograd::leaky_relu(x, slope_); }
  std::string type_name() const override { return "LeakyReLU"; }
  std::string describe() const override;
  float negative_slope() const { return slope_; }

 private:
  float slope_;
};
// Softmax and LogSoftmax over the features of a flat [N, F] input (a classifier's last layer).
class Softmax : public Module {
 public:
  Variable forward(const Variable& x) override { return autograd::softmax(x, -1); }
  std::string type_name() const override { return "Softmax"; }
};
class LogSoftmax : public Module {
 public:
  Variable forward(const Variable& x) override { return autograd::log_softmax(x, -1); }
  std::string type_name() const override { return "LogSoftmax"; }
};
class Tanh : public Module {
 public:
  Variable forward(const Variable& x) override { return autograd::tanh(x); }
  std::string type_name() const override { return "Tanh"; }
};
class Sigmoid : public Module {
 public:
  Variable forward(const Variable& x) override { return autograd::sigmoid(x); }
  std::string type_name() const override { return "Sigmoid"; }
};
class GELU : public Module {
 public:
  Variable forward(const Variable& x) override { return autograd::gelu(x); }
  std::string type_name() const override { return "GELU"; }
};
class Flatten : public Module {
 public:
  explicit Flatten(int start_dim = 1) : start_dim_(start_dim) {}
  Variable forward(const Variable& x) override { return autograd::flatten(x, start_dim_); }
  std::string type_name() const override { return "Flatten"; }
  int start_dim() const { return start_dim_; }

 private:
  int start_dim_;
};

}  // namespace verdant::nn

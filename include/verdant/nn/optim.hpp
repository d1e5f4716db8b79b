#pragma once
// Optimizers with PyTorch's update rules. All state lives in named tensors so a checkpoint
// can save and restore it exactly: state_dict() returns live handles, load_state_dict()
// copies values in (checking names, shapes and dtypes).
//
// State names (per parameter name P, as given to the constructor):
//   SGD:       "P.momentum_buffer" (only when momentum != 0)
//   Adam/AdamW: "P.exp_avg", "P.exp_avg_sq"
//   all:       "step" (i32 [1], number of step() calls so far)
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "verdant/nn/module.hpp"

namespace verdant::nn {

class Optimizer {
 public:
  // Named parameters, usually module.named_parameters(). Parameters with
  // requires_grad == false are kept but skipped.
  Optimizer(Named<Variable> params, double lr);
  // Unnamed parameters are named "0", "1", ...
  Optimizer(const std::vector<Variable>& params, double lr);
  virtual ~Optimizer() = default;

  // Applies one update to every parameter that has a gradient. Runs without recording.
  virtual void step() = 0;
  // Releases every parameter's gradient, as PyTorch's zero_grad(set_to_none=True): the next
  // backward pass stores its gradients instead of adding them to zeros (no clearing pass, no
  // adding pass). With set_to_none false the gradients are zeroed in place instead.
  void zero_grad(bool set_to_none = true);

  // Zeroes the optimizer's state (momentum, moment estimates) of the parameter named `param` at
  // the given flat positions: a connection that sparse training moves starts afresh.
  void reset_state_at(const std::string& param, const std::vector<std::int64_t>& positions);

  // Updates the parameter named `param` only at the given flat positions (ascending, in range)
  // from now on; null restores the update of every entry. For sparse training, whose weights
  // off the mask have zero value, gradient and state: there every rule's update is exactly
  // zero, so skipping them changes nothing and saves the pass over the masked-out entries.
  // A name the optimizer does not hold is ignored, as in reset_state_at.
  void restrict_updates(const std::string& param,
                        std::shared_ptr<const std::vector<std::uint32_t>> positions);

  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  std::int64_t step_count() const;

  Named<Tensor> state_dict() const { return state_; }
  // Throws verdant::Error on a missing/unknown name or wrong shape (one line, naming it).
  void load_state_dict(const Named<Tensor>& state);

  const Named<Variable>& params() const { return params_; }

 protected:
  // Registers a zero-initialised state tensor shaped like `like`.
  Tensor add_state(const std::string& name, const Shape& like);
  void bump_step();

  Named<Variable> params_;
  Named<Tensor> state_;
  Tensor step_;  // i32 [1]
  double lr_;
  std::vector<std::shared_ptr<const std::vector<std::uint32_t>>>
      updated_;  // per parameter: null, or restrict_updates' positions
};

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(Named<Variable> params, const SGDOptions& o);
  SGD(const std::vector<Variable>& params, const SGDOptions& o);
  void step() override;
  const SGDOptions& options() const { return opt_; }

 private:
  void init();
  SGDOptions opt_;
  std::vector<Tensor> buf_;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  // false: Adam (L2 added to the gradient); true: AdamW (decoupled: p -= lr*wd*p).
  bool decoupled_weight_decay = false;
};

class Adam : public Optimizer {
 public:
  Adam(Named<Variable> params, const AdamOptions& o);
  Adam(const std::vector<Variable>& params, const AdamOptions& o);
  void step() override;
  const AdamOptions& options() const { return opt_; }

 private:
  void init();
  AdamOptions opt_;
  std::vector<Tensor> m_, v_;
};

// AdamW with PyTorch's default weight_decay of 0.01.
class AdamW : public Adam {
 public:
  AdamW(Named<Variable> params, AdamOptions o) : Adam(std::move(params), with_decoupled(o)) {}
  AdamW(const std::vector<Variable>& params, AdamOptions o) : Adam(params, with_decoupled(o)) {}

 private:
  static AdamOptions with_decoupled(AdamOptions o) {
    o.decoupled_weight_decay = true;
    return o;
  }
};

}  // namespace verdant::nn

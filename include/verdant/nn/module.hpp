#pragma once
// Module: the LibTorch-shaped building block. Parameters, buffers and children are
// registered by name; named_parameters() / named_buffers() produce dotted names in
// registration order, exactly like PyTorch ("0.weight", "features.conv1.bias").
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "verdant/autograd/generator.hpp"
#include "verdant/autograd/ops.hpp"
#include "verdant/autograd/variable.hpp"
#include "verdant/core/tensor.hpp"

namespace verdant::nn {

using autograd::Generator;
using autograd::NoGradGuard;
using autograd::Variable;

template <typename T>
using Named = std::vector<std::pair<std::string, T>>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Variable forward(const Variable& x) = 0;
  Variable operator()(const Variable& x) { return forward(x); }
  // Short type name ("Linear", "Conv2d", ...), used by summaries and exporters.
  virtual std::string type_name() const = 0;
  // One-line description of the hyper-parameters, e.g. "in=784, out=300".
  virtual std::string describe() const { return {}; }

  // Parameters and buffers share storage with the module: writing into the returned
  // tensors' data (e.g. when loading a checkpoint) changes the module. Write in place
  // (memcpy into value().data<float>()); do not re-assign a buffer Tensor handle.
  Named<Variable> named_parameters(bool recurse = true) const;
  std::vector<Variable> parameters(bool recurse = true) const;
  Named<Tensor> named_buffers(bool recurse = true) const;
  const Named<std::shared_ptr<Module>>& named_children() const { return children_; }
  std::int64_t num_parameters() const;

  // train(false) == eval(). Recursive.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();

 protected:
  // Return handles sharing the registered value (keep them as members).
  Variable register_parameter(std::string name, Tensor value, bool requires_grad = true);
  Tensor register_buffer(std::string name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    add_child(std::move(name), module);
    return module;
  }

 private:
  void add_child(std::string name, std::shared_ptr<Module> module);
  void collect_parameters(const std::string& prefix, Named<Variable>& out, bool recurse) const;
  void collect_buffers(const std::string& prefix, Named<Tensor>& out, bool recurse) const;

  Named<Variable> params_;
  Named<Tensor> buffers_;
  Named<std::shared_ptr<Module>> children_;
  bool training_ = true;
};

using ModulePtr = std::shared_ptr<Module>;

// Children named "0", "1", ... run in order.
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<ModulePtr> layers);
  Sequential& push_back(ModulePtr layer);
  Sequential& push_back(std::string name, ModulePtr layer);
  std::size_t size() const { return named_children().size(); }
  const ModulePtr& operator[](std::size_t i) const { return named_children()[i].second; }

  Variable forward(const Variable& x) override;
  std::string type_name() const override { return "Sequential"; }

  // Per-sample input shape (e.g. {1, 28, 28}) when known (built-in and YAML models).
  const Shape& input_shape() const { return input_shape_; }
  void set_input_shape(Shape s) { input_shape_ = std::move(s); }

 private:
  Shape input_shape_;
};

}  // namespace verdant::nn

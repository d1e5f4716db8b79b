#pragma once
// Reverse-mode autograd. A Variable is a cheap handle (like torch::Tensor): copies share the
// same value, grad and graph node. Ops (ops.hpp) record a Node per result when any input
// requires grad and grad mode is on; backward() walks the graph once in reverse
// topological order, accumulates into leaf .grad() and frees the graph.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "verdant/core/tensor.hpp"

namespace verdant::autograd {

struct VariableImpl;
class Node;

class Variable {
 public:
  Variable() = default;  // undefined (e.g. "no bias")
  explicit Variable(Tensor value, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  Tensor& value();
  const Tensor& value() const;
  const Shape& shape() const { return value().shape(); }
  std::int64_t dim(int i) const { return value().dim(i); }
  int ndim() const { return value().ndim(); }
  std::int64_t numel() const { return value().numel(); }
  float item() const { return value().item(); }

  // Gradient; undefined until a backward pass reaches this variable.
  Tensor& grad();
  const Tensor& grad() const;
  void set_grad(Tensor g);
  // Zeroes the gradient in place (keeps the buffer) if it exists.
  void zero_grad();

  bool requires_grad() const;
  void set_requires_grad(bool on);
  // A leaf has no grad_fn: parameters and inputs. Only leaves keep .grad() after backward.
  bool is_leaf() const;
  const std::shared_ptr<Node>& grad_fn() const;

  // Same value, no history.
  Variable detach() const { return Variable(value(), false); }

  // Seeds with ones (the result must have one element) or with `grad_output`.
  void backward();
  void backward(const Tensor& grad_output);

  VariableImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<VariableImpl>& impl_ptr() const { return impl_; }
  bool same(const Variable& o) const { return impl_ == o.impl_; }

 private:
  friend class Node;
  friend Variable make_result(Tensor value, std::vector<Variable> inputs,
                              std::function<void(const Tensor&, Node&)> backward, const char* name);
  std::shared_ptr<VariableImpl> impl_;
};

// While one exists on this thread, backward() calls `on_ready(leaf)` as soon as a leaf's
// gradient is complete (every op that used it has passed its gradient on), in the order the
// gradients become ready. Data parallelism starts exchanging a bucket of gradients while the
// rest of the backward pass runs (PyTorch DDP's overlap).
class GradReadyHook {
 public:
  explicit GradReadyHook(std::function<void(const Variable&)> on_ready);
  ~GradReadyHook();
  GradReadyHook(const GradReadyHook&) = delete;
  GradReadyHook& operator=(const GradReadyHook&) = delete;

 private:
  std::function<void(const Variable&)> previous_;
};

// Backward step of one op. `inputs` are the op's differentiable inputs; the backward
// function receives the gradient of the op's result and calls accumulate() per input.
class Node {
 public:
  using BackwardFn = std::function<void(const Tensor& grad_output, Node& self)>;
  Node(const char* name, std::vector<Variable> inputs, BackwardFn fn)
      : name_(name), inputs_(std::move(inputs)), fn_(std::move(fn)) {}

  const char* name() const { return name_; }
  const std::vector<Variable>& inputs() const { return inputs_; }
  // Whether input i wants a gradient (skip computing it otherwise).
  bool needs_grad(std::size_t i) const;
  // Adds g into input i's gradient. `g` may be stored as-is when it is the first
  // contribution, so pass a tensor nobody else will write to (fresh or owned by the op).
  void accumulate(std::size_t i, Tensor g);

  void run(const Tensor& grad_output) { fn_(grad_output, *this); }
  // Drops saved tensors and the edges to the inputs.
  void release();

 private:
  const char* name_;
  std::vector<Variable> inputs_;
  BackwardFn fn_;
};

// For op implementations: wraps `value` as a result; records a Node if grad mode is on and
// any input requires grad.
Variable make_result(Tensor value, std::vector<Variable> inputs,
                     std::function<void(const Tensor&, Node&)> backward, const char* name);

// Grad mode is thread-local. NoGradGuard turns recording off for its scope (inference,
// optimizer updates, evaluation).
struct GradMode {
  static bool is_enabled();
  static void set_enabled(bool on);
};

class NoGradGuard {
 public:
  NoGradGuard() : prev_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace verdant::autograd

#include "verdant/autograd/variable.hpp"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "verdant/core/error.hpp"
#include "verdant/kernels/memory.hpp"

namespace verdant::autograd {

struct VariableImpl {
  Tensor value;
  Tensor grad;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;
};

namespace {
thread_local bool g_grad_enabled = true;

VariableImpl& checked(const std::shared_ptr<VariableImpl>& p) {
  if (!p) throw Error("use of an undefined Variable");
  return *p;
}

// grad += g (same number of elements).
void add_into(Tensor& grad, const Tensor& g) {
  float* __restrict__ d = grad.data<float>();
  const float* __restrict__ s = g.data<float>();
  const std::int64_t n = grad.numel();
#pragma omp parallel for simd schedule(static) if (n >= (1 << 16))
  for (std::int64_t i = 0; i < n; ++i) d[i] += s[i];
}
}  // namespace

bool GradMode::is_enabled() {
  return g_grad_enabled;
}
void GradMode::set_enabled(bool on) {
  g_grad_enabled = on;
}

Variable::Variable(Tensor value, bool requires_grad) : impl_(std::make_shared<VariableImpl>()) {
  kernels::tune_allocator();
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
}

Tensor& Variable::value() {
  return checked(impl_).value;
}
const Tensor& Variable::value() const {
  return checked(impl_).value;
}
Tensor& Variable::grad() {
  return checked(impl_).grad;
}
const Tensor& Variable::grad() const {
  return checked(impl_).grad;
}

void Variable::set_grad(Tensor g) {
  auto& im = checked(impl_);
  if (g.defined() && g.numel() != im.value.numel())
    throw Error("set_grad: gradient shape " + shape_str(g.shape()) + " does not match value " +
                shape_str(im.value.shape()));
  im.grad = std::move(g);
}

void Variable::zero_grad() {
  auto& im = checked(impl_);
  if (im.grad.defined()) im.grad.zero();
}

bool Variable::requires_grad() const {
  return checked(impl_).requires_grad;
}
void Variable::set_requires_grad(bool on) {
  auto& im = checked(impl_);
  if (!on && im.grad_fn) throw Error("set_requires_grad(false) on a non-leaf Variable");
  im.requires_grad = on;
}
bool Variable::is_leaf() const {
  return checked(impl_).grad_fn == nullptr;
}
const std::shared_ptr<Node>& Variable::grad_fn() const {
  return checked(impl_).grad_fn;
}

bool Node::needs_grad(std::size_t i) const {
  return i < inputs_.size() && inputs_[i].defined() && inputs_[i].impl()->requires_grad;
}

void Node::accumulate(std::size_t i, Tensor g) {
  if (!needs_grad(i)) return;
  VariableImpl& im = *inputs_[i].impl();
  if (g.numel() != im.value.numel())
    throw Error(std::string("autograd: ") + name_ + " produced a gradient of shape " +
                shape_str(g.shape()) + " for an input of shape " + shape_str(im.value.shape()));
  if (!im.grad.defined()) {
    im.grad = g.shape() == im.value.shape() ? std::move(g) : g.reshape(im.value.shape());
  } else {
    add_into(im.grad, g);
  }
}

void Node::release() {
  inputs_.clear();
  inputs_.shrink_to_fit();
  fn_ = nullptr;
}

Variable make_result(Tensor value, std::vector<Variable> inputs,
                     std::function<void(const Tensor&, Node&)> backward, const char* name) {
  Variable out(std::move(value), false);
  if (!GradMode::is_enabled()) return out;
  const bool any = std::any_of(inputs.begin(), inputs.end(),
                               [](const Variable& v) { return v.defined() && v.requires_grad(); });
  if (!any) return out;
  out.impl_->requires_grad = true;
  out.impl_->grad_fn = std::make_shared<Node>(name, std::move(inputs), std::move(backward));
  return out;
}

void Variable::backward() {
  if (numel() != 1)
    throw Error("backward() without a gradient needs a one-element result, shape is " +
                shape_str(shape()));
  backward(Tensor::full(shape(), 1.f));
}

namespace {
thread_local std::function<void(const Variable&)> t_grad_ready;
}  // namespace

GradReadyHook::GradReadyHook(std::function<void(const Variable&)> on_ready)
    : previous_(std::exchange(t_grad_ready, std::move(on_ready))) {}

GradReadyHook::~GradReadyHook() {
  t_grad_ready = std::move(previous_);
}

void Variable::backward(const Tensor& grad_output) {
  auto& root = checked(impl_);
  if (!root.requires_grad) throw Error("backward() on a Variable that does not require grad");
  if (grad_output.numel() != root.value.numel())
    throw Error("backward(): gradient shape " + shape_str(grad_output.shape()) +
                " does not match " + shape_str(root.value.shape()));

  // Post-order DFS from the root: every variable comes after all its consumers once
  // reversed, so each node runs after its output's gradient is complete.
  // Holding shared_ptrs keeps interior variables alive while their nodes are released.
  std::vector<std::shared_ptr<VariableImpl>> order;
  std::unordered_set<VariableImpl*> seen;
  struct Frame {
    std::shared_ptr<VariableImpl> v;
    std::size_t next;
  };
  std::vector<Frame> stack{{impl_, 0}};
  seen.insert(impl_.get());
  while (!stack.empty()) {
    Frame& f = stack.back();
    const Node* node = f.v->grad_fn.get();
    if (node && f.next < node->inputs().size()) {
      const Variable& in = node->inputs()[f.next++];
      VariableImpl* c = in.impl();
      if (c && c->requires_grad && seen.insert(c).second) stack.push_back({in.impl_ptr(), 0});
      continue;
    }
    order.push_back(std::move(f.v));
    stack.pop_back();
  }

  Tensor seed = grad_output.clone().reshape(root.value.shape());
  if (!root.grad_fn) {  // a leaf: just accumulate
    if (root.grad.defined())
      add_into(root.grad, seed);
    else
      root.grad = std::move(seed);
    return;
  }
  root.grad = std::move(seed);
  // With a grad-ready hook: how many ops still have to pass a gradient to each leaf.
  std::unordered_map<VariableImpl*, int> pending;
  if (t_grad_ready)
    for (const auto& v : order)
      if (v->grad_fn)
        for (const Variable& in : v->grad_fn->inputs())
          if (in.impl() && in.impl()->requires_grad && !in.impl()->grad_fn) ++pending[in.impl()];
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    VariableImpl* v = it->get();
    if (!v->grad_fn) continue;  // leaf: keeps its accumulated grad
    std::shared_ptr<Node> node = v->grad_fn;
    Tensor g = std::move(v->grad);
    v->grad = Tensor();           // interior gradients are not retained (like PyTorch)
    std::vector<Variable> ready;  // leaves this op completes (the node forgets its inputs)
    if (t_grad_ready)
      for (const Variable& in : node->inputs())
        if (auto p = pending.find(in.impl()); p != pending.end() && --p->second == 0)
          ready.push_back(in);
    if (g.defined()) {
      if (node->inputs().empty())
        throw Error(std::string("backward through ") + node->name() +
                    " a second time: the graph was freed by the first backward()");
      node->run(g);
    }
    node->release();
    for (const Variable& leaf : ready) t_grad_ready(leaf);
  }
}

}  // namespace verdant::autograd

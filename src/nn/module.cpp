#include "verdant/nn/module.hpp"

#include "verdant/core/error.hpp"
#include "verdant/nn/layers.hpp"

namespace verdant::nn {

namespace {
template <typename T>
void check_unique(const Named<T>& list, const std::string& name, const char* kind) {
  if (name.empty() || name.find('.') != std::string::npos)
    throw Error(std::string("register_") + kind + ": invalid name '" + name + "'");
  for (const auto& [n, v] : list)
    if (n == name)
      throw Error(std::string("register_") + kind + ": '" + name + "' already registered");
}
}  // namespace

Variable Module::register_parameter(std::string name, Tensor value, bool requires_grad) {
  check_unique(params_, name, "parameter");
  Variable v(std::move(value), requires_grad);
  params_.emplace_back(std::move(name), v);
  return v;
}

Tensor Module::register_buffer(std::string name, Tensor value) {
  check_unique(buffers_, name, "buffer");
  buffers_.emplace_back(std::move(name), value);
  return value;
}

void Module::add_child(std::string name, std::shared_ptr<Module> module) {
  check_unique(children_, name, "module");
  if (!module) throw Error("register_module: '" + name + "' is null");
  children_.emplace_back(std::move(name), std::move(module));
}

void Module::collect_parameters(const std::string& prefix, Named<Variable>& out,
                                bool recurse) const {
  for (const auto& [n, v] : params_) out.emplace_back(prefix + n, v);
  if (!recurse) return;
  for (const auto& [n, m] : children_) m->collect_parameters(prefix + n + ".", out, true);
}

void Module::collect_buffers(const std::string& prefix, Named<Tensor>& out, bool recurse) const {
  for (const auto& [n, t] : buffers_) out.emplace_back(prefix + n, t);
  if (!recurse) return;
  for (const auto& [n, m] : children_) m->collect_buffers(prefix + n + ".", out, true);
}

Named<Variable> Module::named_parameters(bool recurse) const {
  Named<Variable> out;
  collect_parameters("", out, recurse);
  return out;
}

std::vector<Variable> Module::parameters(bool recurse) const {
  std::vector<Variable> out;
  for (auto& [n, v] : named_parameters(recurse)) out.push_back(v);
  return out;
}

Named<Tensor> Module::named_buffers(bool recurse) const {
  Named<Tensor> out;
  collect_buffers("", out, recurse);
  return out;
}

std::int64_t Module::num_parameters() const {
  std::int64_t n = 0;
  for (const auto& [name, v] : named_parameters()) n += v.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

void Module::zero_grad() {
  for (auto& [n, v] : named_parameters()) v.zero_grad();
}

Sequential::Sequential(std::vector<ModulePtr> layers) {
  for (auto& l : layers) push_back(std::move(l));
}

Sequential& Sequential::push_back(ModulePtr layer) {
  return push_back(std::to_string(size()), std::move(layer));
}

Sequential& Sequential::push_back(std::string name, ModulePtr layer) {
  register_module(std::move(name), std::move(layer));
  return *this;
}

Variable Sequential::forward(const Variable& x) {
  Variable h = x;
  const auto& layers = named_children();
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const Module& m = *layers[i].second;
    // ReLU then max-pool, as in LeNet: one pass instead of two over the unpooled tensor.
    if (i + 1 < layers.size() && dynamic_cast<const ReLU*>(&m))
      if (auto* pool = dynamic_cast<MaxPool2d*>(layers[i + 1].second.get())) {
        h = pool->forward_after_relu(h);
        ++i;
        continue;
      }
    h = layers[i].second->forward(h);
  }
  return h;
}

}  // namespace verdant::nn

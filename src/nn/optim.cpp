#include "verdant/nn/optim.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "verdant/core/error.hpp"

namespace verdant::nn {

namespace {
// Parameter updates split over the OpenMP team only when large enough to pay for it. Listed
// positions are scattered (each one a cache line of its own at high sparsity), so they pay
// much sooner.
constexpr std::int64_t kParallelMin = 1 << 16;
constexpr std::int64_t kParallelMinPositions = 1 << 12;

// Runs update(i) for every entry i of an n-entry parameter, or for the listed ones only.
template <class Update>
void for_each_updated(const std::vector<std::uint32_t>* positions, std::int64_t n, Update update) {
  // firstprivate: each thread's own copy of the closure, whose captures then live in
  // registers (a shared one is reloaded around every store, and the loop stays scalar).
  if (positions == nullptr) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin) firstprivate(update)
    for (std::int64_t i = 0; i < n; ++i) update(i);
    return;
  }
  const std::uint32_t* at = positions->data();
  const auto m = static_cast<std::int64_t>(positions->size());
#pragma omp parallel for schedule(static) if (m >= kParallelMinPositions) firstprivate(update)
  for (std::int64_t j = 0; j < m; ++j) update(std::int64_t{at[j]});
}

Named<Variable> number(const std::vector<Variable>& params) {
  Named<Variable> out;
  for (std::size_t i = 0; i < params.size(); ++i) out.emplace_back(std::to_string(i), params[i]);
  return out;
}
}  // namespace

Optimizer::Optimizer(Named<Variable> params, double lr)
    : params_(std::move(params)), step_(Tensor::zeros({1}, DType::i32)), lr_(lr) {
  for (const auto& [n, p] : params_)
    if (!p.defined()) throw Error("optimizer: parameter '" + n + "' is undefined");
  if (!(lr >= 0.0)) throw Error("optimizer: learning rate must be non-negative");
  state_.emplace_back("step", step_);
  updated_.resize(params_.size());
}

Optimizer::Optimizer(const std::vector<Variable>& params, double lr)
    : Optimizer(number(params), lr) {}

void Optimizer::zero_grad(bool set_to_none) {
  for (auto& [n, p] : params_) {
    if (set_to_none)
      p.set_grad(Tensor());
    else
      p.zero_grad();
  }
}

void Optimizer::reset_state_at(const std::string& param,
                               const std::vector<std::int64_t>& positions) {
  std::int64_t numel = -1;
  for (const auto& [name, p] : params_)
    if (name == param) numel = p.numel();
  const std::string prefix = param + ".";
  for (auto& [name, t] : state_) {
    // Per-element state only: a per-parameter step counter is left alone.
    if (name.rfind(prefix, 0) != 0 || t.dtype() != DType::f32 || t.numel() != numel) continue;
    float* v = t.data<float>();
    for (std::int64_t i : positions)
      if (i >= 0 && i < t.numel()) v[i] = 0.f;
  }
}

void Optimizer::restrict_updates(const std::string& param,
                                 std::shared_ptr<const std::vector<std::uint32_t>> positions) {
  for (std::size_t k = 0; k < params_.size(); ++k) {
    if (params_[k].first != param) continue;
    if (positions != nullptr) {
      const auto n = static_cast<std::uint64_t>(params_[k].second.numel());
      if (!std::is_sorted(positions->begin(), positions->end()) ||
          (!positions->empty() && positions->back() >= n))
        throw Error("optimizer: updates of '" + param +
                    "' restricted to positions that are unsorted or out of range");
    }
    updated_[k] = std::move(positions);
  }
}

std::int64_t Optimizer::step_count() const {
  return step_.data<std::int32_t>()[0];
}
void Optimizer::bump_step() {
  step_.data<std::int32_t>()[0] += 1;
}

Tensor Optimizer::add_state(const std::string& name, const Shape& like) {
  Tensor t = Tensor::zeros(like);
  state_.emplace_back(name, t);
  return t;
}

void Optimizer::load_state_dict(const Named<Tensor>& state) {
  for (const auto& [name, mine] : state_) {
    const Tensor* found = nullptr;
    for (const auto& [n, t] : state)
      if (n == name) found = &t;
    if (!found) throw Error("optimizer state: missing '" + name + "'");
    if (found->shape() != mine.shape() || found->dtype() != mine.dtype())
      throw Error("optimizer state: '" + name + "' has shape " + shape_str(found->shape()) + " " +
                  dtype_name(found->dtype()) + ", expected " + shape_str(mine.shape()) + " " +
                  dtype_name(mine.dtype()));
  }
  for (const auto& [n, t] : state) {
    bool known = false;
    for (const auto& [name, mine] : state_) known = known || name == n;
    if (!known) throw Error("optimizer state: unknown entry '" + n + "'");
  }
  // Validated first, so a bad state never leaves the optimizer half-loaded.
  for (auto& [name, mine] : state_)
    for (const auto& [n, t] : state)
      if (n == name && !t.same_storage(mine)) std::memcpy(mine.raw(), t.raw(), mine.nbytes());
}

SGD::SGD(Named<Variable> params, const SGDOptions& o)
    : Optimizer(std::move(params), o.lr), opt_(o) {
  init();
}
SGD::SGD(const std::vector<Variable>& params, const SGDOptions& o)
    : Optimizer(params, o.lr), opt_(o) {
  init();
}

void SGD::init() {
  if (opt_.momentum < 0 || opt_.weight_decay < 0)
    throw Error("SGD: momentum and weight decay must be non-negative");
  if (opt_.nesterov && (opt_.momentum <= 0 || opt_.dampening != 0))
    throw Error("SGD: Nesterov momentum needs momentum > 0 and zero dampening");
  if (opt_.momentum != 0)
    for (const auto& [n, p] : params_) buf_.push_back(add_state(n + ".momentum_buffer", p.shape()));
}

void SGD::step() {
  const float lr = static_cast<float>(lr_), wd = static_cast<float>(opt_.weight_decay);
  const float mom = static_cast<float>(opt_.momentum),
              damp = static_cast<float>(1.0 - opt_.dampening);
  const bool first = step_count() == 0, nesterov = opt_.nesterov;
  // PyTorch starts the buffer at the first gradient (no dampening on that step).
  const float keep = first ? 0.f : mom, take = first ? 1.f : damp;
  for (std::size_t k = 0; k < params_.size(); ++k) {
    Variable& p = params_[k].second;
    if (!p.requires_grad() || !p.grad().defined()) continue;
    float* __restrict__ w = p.value().data<float>();
    const float* __restrict__ g = p.grad().data<float>();
    const std::int64_t n = p.numel();
    // Separate straight loops per variant so each one vectorises.
    if (mom == 0.f) {
      for_each_updated(updated_[k].get(), n,
                       [=](std::int64_t i) { w[i] -= lr * (g[i] + wd * w[i]); });
      continue;
    }
    float* __restrict__ b = buf_[k].data<float>();
    if (nesterov) {
      for_each_updated(updated_[k].get(), n, [=](std::int64_t i) {
        const float d = g[i] + wd * w[i];
        b[i] = keep * b[i] + take * d;
        w[i] -= lr * (d + mom * b[i]);
      });
    } else {
      for_each_updated(updated_[k].get(), n, [=](std::int64_t i) {
        const float d = g[i] + wd * w[i];
        b[i] = keep * b[i] + take * d;
        w[i] -= lr * b[i];
      });
    }
  }
  bump_step();
}

Adam::Adam(Named<Variable> params, const AdamOptions& o)
    : Optimizer(std::move(params), o.lr), opt_(o) {
  init();
}
Adam::Adam(const std::vector<Variable>& params, const AdamOptions& o)
    : Optimizer(params, o.lr), opt_(o) {
  init();
}

void Adam::init() {
  if (!(opt_.beta1 >= 0 && opt_.beta1 < 1 && opt_.beta2 >= 0 && opt_.beta2 < 1))
    throw Error("Adam: betas must be in [0, 1)");
  if (opt_.eps < 0 || opt_.weight_decay < 0)
    throw Error("Adam: eps and weight decay must be non-negative");
  for (const auto& [n, p] : params_) {
    m_.push_back(add_state(n + ".exp_avg", p.shape()));
    v_.push_back(add_state(n + ".exp_avg_sq", p.shape()));
  }
}

void Adam::step() {
  const double t = static_cast<double>(step_count() + 1);
  const double bc1 = 1.0 - std::pow(opt_.beta1, t), bc2 = 1.0 - std::pow(opt_.beta2, t);
  const float step_size = static_cast<float>(lr_ / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const float b1 = static_cast<float>(opt_.beta1), b2 = static_cast<float>(opt_.beta2);
  const float eps = static_cast<float>(opt_.eps), wd = static_cast<float>(opt_.weight_decay);
  const float decay = static_cast<float>(1.0 - lr_ * opt_.weight_decay);
  const bool decoupled = opt_.decoupled_weight_decay;
  for (std::size_t k = 0; k < params_.size(); ++k) {
    Variable& p = params_[k].second;
    if (!p.requires_grad() || !p.grad().defined()) continue;
    float* __restrict__ w = p.value().data<float>();
    const float* __restrict__ g = p.grad().data<float>();
    float* __restrict__ m = m_[k].data<float>();
    float* __restrict__ v = v_[k].data<float>();
    const std::int64_t n = p.numel();
    // Decoupled: p *= 1 - lr*wd and no L2 term; coupled: g += wd*p.
    const float l2 = decoupled ? 0.f : wd, shrink = decoupled ? decay : 1.f;
    for_each_updated(updated_[k].get(), n, [=](std::int64_t i) {
      const float gi = g[i] + l2 * w[i];
      w[i] *= shrink;
      m[i] = b1 * m[i] + (1.f - b1) * gi;
      v[i] = b2 * v[i] + (1.f - b2) * gi * gi;
      w[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
    });
  }
  bump_step();
}

}  // namespace verdant::nn

#include "verdant/compress/session.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <tuple>

#include "verdant/compress/prune.hpp"
#include "verdant/compress/schedule.hpp"
#include "verdant/compress/sparse_train.hpp"
#include "verdant/core/error.hpp"
#include "verdant/kernels/block_sparse.hpp"
#include "verdant/kernels/csr.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/nn/models.hpp"

namespace verdant::compress {

using autograd::Node;
using nn::Variable;

namespace {
bool is_weight_layer(const nn::Module& m) {
  return dynamic_cast<const nn::Linear*>(&m) || dynamic_cast<const nn::Conv2d*>(&m);
}

void copy_into(Tensor& dst, const Tensor& src) {
  if (dst.numel() != src.numel()) throw Error("compress: tensor sizes differ while copying");
  std::memcpy(dst.raw(), src.raw(), src.nbytes());
}

// Fake-quant as an autograd op: straight-through gradient inside the range, zero outside.
Variable fake_quant_op(const Variable& x, const QuantParams& p) {
  const Tensor& v = x.value();
  const auto n = static_cast<std::size_t>(v.numel());
  Tensor out(v.shape(), DType::f32);
  auto pass = std::make_shared<std::vector<std::uint8_t>>(n);
  fake_quantize({v.data<float>(), n}, {out.data<float>(), n}, p, *pass);
  return autograd::make_result(
      out, {x},
      [pass](const Tensor& g, Node& node) {
        if (!node.needs_grad(0)) return;
        Tensor gi(g.shape(), DType::f32);
        const auto m = static_cast<std::size_t>(g.numel());
        fake_quantize_backward({g.data<float>(), m}, *pass, {gi.data<float>(), m});
        node.accumulate(0, gi);
      },
      "fake_quant");
}
}  // namespace

std::vector<LayerStat> layer_stats(nn::Module& model) {
  std::vector<LayerStat> out;
  for (auto& [name, p] : model.named_parameters()) {
    LayerStat s;
    s.name = name;
    s.shape = p.shape();
    s.params = p.numel();
    s.nonzero = count_nonzero(p.value());
    out.push_back(std::move(s));
  }
  return out;
}

// ---------------------------------------------------------------- FakeQuantSequential

FakeQuantSequential::FakeQuantSequential(const nn::Sequential& inner, const QuantizeParams& params)
    : qp_(params) {
  for (const auto& [name, child] : inner.named_children()) push_back(name, child);
  set_input_shape(inner.input_shape());
  train(inner.is_training());
  sites_.resize(size());
  for (auto& s : sites_) s.ema = RangeObserver(qp_.activation_momentum);
}

Variable FakeQuantSequential::forward(const Variable& x) {
  Variable h = x;
  const auto& kids = named_children();
  for (std::size_t i = 0; i < kids.size(); ++i) {
    if (is_weight_layer(*kids[i].second) && (active_ || calibrating_)) {
      Site& s = sites_[i];
      const Tensor& v = h.value();
      const std::span<const float> data(v.data<float>(), static_cast<std::size_t>(v.numel()));
      if (calibrating_) {
        s.calib->observe(data);
      } else if (is_training()) {
        s.ema.observe(data);
        h = fake_quant_op(h, s.ema.params(qp_.activation_bits));
      } else if (s.has_fixed) {
        h = fake_quant_op(h, s.fixed);
      } else if (s.ema.ready()) {
        h = fake_quant_op(h, s.ema.params(qp_.activation_bits));
      }
    }
    h = kids[i].second->forward(h);
  }
  return h;
}

void FakeQuantSequential::start_calibration() {
  calibrating_ = true;
  for (auto& s : sites_)
    s.calib = std::make_unique<Calibrator>(qp_.calibration, qp_.percentile, 1 << 18);
}

void FakeQuantSequential::finish_calibration() {
  calibrating_ = false;
  for (auto& s : sites_) {
    if (s.calib && s.calib->samples() > 0) {
      s.fixed = s.calib->params(qp_.activation_bits);
      s.has_fixed = true;
    }
    s.calib.reset();
  }
  active_ = true;
}

std::vector<QuantParams> FakeQuantSequential::activation_params() const {
  std::vector<QuantParams> out;
  const auto& kids = named_children();
  for (std::size_t i = 0; i < kids.size(); ++i) {
    if (!is_weight_layer(*kids[i].second)) continue;
    const Site& s = sites_[i];
    if (s.has_fixed)
      out.push_back(s.fixed);
    else if (s.ema.ready())
      out.push_back(s.ema.params(qp_.activation_bits));
  }
  return out;
}

namespace {
std::string hex_float(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}
}  // namespace

void FakeQuantSequential::save_state(train::Checkpoint& c) const {
  for (std::size_t i = 0; i < sites_.size(); ++i) {
    const RangeObserver& e = sites_[i].ema;
    c.set_meta("compress.activation_ema." + std::to_string(i),
               std::string(e.ready() ? "1 " : "0 ") + hex_float(e.lo()) + " " + hex_float(e.hi()));
  }
}

void FakeQuantSequential::restore_state(const train::Checkpoint& c, const std::string& origin) {
  std::vector<std::tuple<bool, float, float>> ranges;
  for (std::size_t i = 0; i < sites_.size(); ++i) {
    const std::string key = "compress.activation_ema." + std::to_string(i);
    const std::string* v = c.find_meta(key);
    std::istringstream in(v ? *v : std::string());
    int seen = -1;
    std::string lo, hi;
    in >> seen >> lo >> hi;
    char *end_lo = nullptr, *end_hi = nullptr;
    const float l = std::strtof(lo.c_str(), &end_lo), h = std::strtof(hi.c_str(), &end_hi);
    if (!v || (seen != 0 && seen != 1) || lo.empty() || hi.empty() || *end_lo || *end_hi ||
        !std::isfinite(l) || !std::isfinite(h))
      throw Error(origin + ": checkpoint meta '" + key + "' is missing or malformed");
    ranges.emplace_back(seen == 1, l, h);
  }
  for (std::size_t i = 0; i < sites_.size(); ++i) {
    const auto& [seen, l, h] = ranges[i];
    sites_[i].ema.restore(seen, l, h);
  }
}

// ---------------------------------------------------------------- Session

namespace {
// Density of each layer when sparse training starts, from the sparsity or the Erdos-Renyi
// epsilon.
std::vector<double> initial_densities(const SparseTrainParams& sp,
                                      const std::vector<Shape>& shapes) {
  if (!sp.epsilon) {
    const DensityRule rule = sp.distribution == Distribution::erk  ? DensityRule::erk
                             : sp.distribution == Distribution::er ? DensityRule::er
                                                                   : DensityRule::uniform;
    return layer_densities(shapes, 1.0 - sp.sparsity, rule);
  }
  std::vector<double> density;
  for (const auto& sh : shapes) {
    double sum = 0, prod = 1;
    for (std::size_t d = 0; d < sh.size(); ++d)
      if (sp.distribution == Distribution::erk || d < 2) {
        sum += double(sh[d]);
        prod *= double(sh[d]);
      }
    density.push_back(std::min(1.0, *sp.epsilon * sum / prod));
  }
  return density;
}

// Shortest text that reads back as `v`, so 0.9999999 is not printed as 1.
std::string exact_text(double v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

// Whole blocks are kept or pruned, so a layer keeps one only when its kept share of the
// weights is at least half the largest block (prune_blocks' nearest-to-target rule).
std::int64_t largest_block(const Shape& shape, const PruneParams& p) {
  const std::int64_t rows = shape[0];
  std::int64_t cols = 1;
  for (std::size_t d = 1; d < shape.size(); ++d) cols *= shape[d];
  return std::min(p.block_rows, rows) * std::min(p.block_cols, cols);
}

// A layer pruned to nothing turns the model into one that predicts a single class, and the
// run would spend all its epochs (and energy) before writing it: refuse the recipe up front.
// `names` and `shapes` are the modifier's layers, in model order.
void check_keeps_weights(const Recipe& recipe, const Modifier& m,
                         const std::vector<std::string>& names, const std::vector<Shape>& shapes) {
  auto fail = [&](const std::string& key, double value, const std::string& what) {
    throw Error(recipe.where(m, key) + key + " " + exact_text(value) + " leaves no " + what);
  };
  auto layer_text = [&](std::size_t k, const std::string& sizes) {
    return " in layer " + names[k] + " (" + sizes + ")";
  };
  auto numel = [&](std::size_t k) {
    std::int64_t n = 1;
    for (auto d : shapes[k]) n *= d;
    return n;
  };
  auto kept = [](std::int64_t n, double sparsity) {
    return n - std::llround(sparsity * double(n));  // the pruners' rounding
  };
  if (m.kind == ModifierKind::sparse_train) {
    const auto& sp = m.sparse;
    const std::string key = sp.epsilon ? "epsilon" : "sparsity";
    const double value = sp.epsilon ? *sp.epsilon : sp.sparsity;
    const std::vector<double> density = initial_densities(sp, shapes);
    for (std::size_t k = 0; k < names.size(); ++k)
      if (std::llround(density[k] * double(numel(k))) < 1)
        fail(key, value, "weight" + layer_text(k, std::to_string(numel(k)) + " weights"));
    return;
  }
  const auto& p = m.prune;
  const std::string key = m.key_line.count("sparsity") ? "sparsity" : "final_sparsity";
  const double s = p.final_sparsity;
  const bool blocks = p.structure == PruneStructure::block;
  const std::string unit = blocks ? "block" : "weight";
  const std::string block_text =
      blocks ? ", blocks of " + std::to_string(p.block_rows) + "x" + std::to_string(p.block_cols)
             : "";
  if (p.structure == PruneStructure::neurons) {  // always per layer
    for (std::size_t k = 0; k < names.size(); ++k)
      if (kept(shapes[k][0], s) < 1)
        fail(key, s, "neuron" + layer_text(k, std::to_string(shapes[k][0]) + " neurons"));
    return;
  }
  if (p.scope == PruneScope::global) {
    std::int64_t total = 0, block = 1;
    for (std::size_t k = 0; k < names.size(); ++k) {
      total += numel(k);
      if (blocks) block = std::max(block, largest_block(shapes[k], p));
    }
    const std::int64_t left = kept(total, s);
    if (left < std::int64_t(names.size()) || 2 * left < block)
      fail(key, s,
           unit + " in some of the " + std::to_string(names.size()) +
               " layers (scope global keeps " + std::to_string(left) + " of " +
               std::to_string(total) + " weights" + block_text + ")");
    return;
  }
  for (std::size_t k = 0; k < names.size(); ++k) {
    const std::int64_t left = kept(numel(k), s);
    if (left < 1 || (blocks && 2 * left < largest_block(shapes[k], p)))
      fail(key, s, unit + layer_text(k, std::to_string(numel(k)) + " weights" + block_text));
  }
}
}  // namespace

Session::Session(Recipe recipe, std::shared_ptr<nn::Sequential> model, std::uint64_t seed)
    : recipe_(std::move(recipe)), model_(std::move(model)), forward_(model_), rng_(seed) {
  std::map<std::string, Variable> by_name;
  std::vector<std::string> weight_names;
  for (auto& [name, p] : model_->named_parameters()) {
    by_name[name] = p;
    if (p.ndim() >= 2) weight_names.push_back(name);
  }
  for (const auto& name : weight_names) {
    Layer l;
    l.name = name;
    l.weight = by_name[name];
    const auto dot = name.rfind('.');
    const std::string bias_name = (dot == std::string::npos ? name : name.substr(0, dot)) + ".bias";
    if (by_name.count(bias_name)) l.bias = by_name[bias_name];
    for (const auto& [child, module] : model_->named_children())
      if (child + ".weight" == name) l.linear = dynamic_cast<nn::Linear*>(module.get());
    layers_.push_back(std::move(l));
  }
  auto index_of = [&](const std::string& name) {
    return static_cast<std::size_t>(std::find(weight_names.begin(), weight_names.end(), name) -
                                    weight_names.begin());
  };
  auto shapes_of = [&](const std::vector<std::size_t>& idx) {
    std::vector<Shape> shapes;
    for (auto i : idx) shapes.push_back(layers_[i].weight.shape());
    return shapes;
  };
  auto names_of = [&](const std::vector<std::size_t>& idx) {
    std::vector<std::string> out;
    for (auto i : idx) out.push_back(layers_[i].name);
    return out;
  };
  for (const auto& m : recipe_.modifiers) {
    if (m.kind == ModifierKind::distill) continue;
    auto names = select_layers(recipe_, m, weight_names);
    std::vector<std::size_t> idx;
    for (const auto& n : names) idx.push_back(index_of(n));
    if (m.kind == ModifierKind::prune) {
      if (m.prune.structure == PruneStructure::neurons) {
        // Removing rows of the output layer would remove classes: leave it out.
        idx.erase(std::remove(idx.begin(), idx.end(), layers_.size() - 1), idx.end());
        if (idx.empty())
          throw Error(recipe_.where(m, "layers") +
                      "structured pruning selects only the output layer, whose neurons are the "
                      "classes");
      }
      check_keeps_weights(recipe_, m, names_of(idx), shapes_of(idx));
      prunes_.push_back({&m, idx});
    } else if (m.kind == ModifierKind::sparse_train) {
      check_keeps_weights(recipe_, m, names_of(idx), shapes_of(idx));
      sparses_.push_back({&m, idx});
    } else if (m.kind == ModifierKind::quantize) {
      if (quant_) throw Error(recipe_.where(m, "mode") + "only one quantize modifier is allowed");
      quant_layers_ = idx;
      quant_ = std::make_shared<FakeQuantSequential>(*model_, m.quant);
      forward_ = quant_;
    }
    for (auto i : idx)
      if (m.kind != ModifierKind::quantize && !layers_[i].mask.defined())
        layers_[i].mask = ones_mask(layers_[i].weight.shape());
  }
}

Session::~Session() = default;

bool Session::needs_calibration() const {
  const Modifier* q = recipe_.find(ModifierKind::quantize);
  return q && q->quant.mode == QuantMode::ptq;
}

Session::Layer& Session::layer(const std::string& name) {
  for (auto& l : layers_)
    if (l.name == name) return l;
  throw Error("compress: no layer " + name);
}

double Session::time_of(std::int64_t epoch, std::int64_t step) const {
  return double(epoch) + double(step) / double(std::max<std::int64_t>(steps_per_epoch_, 1));
}

bool Session::quant_active(double t) const {
  const Modifier* q = recipe_.find(ModifierKind::quantize);
  return q && q->quant.mode == QuantMode::qat && t + 1e-9 >= q->start_epoch;
}

void Session::begin(std::int64_t steps_per_epoch, std::int64_t epochs) {
  steps_per_epoch_ = std::max<std::int64_t>(steps_per_epoch, 1);
  epochs_ = epochs;
  if (restored_) {
    log_.push_back("masks restored from the checkpoint");
    refresh_sparse_patterns(true);
    return;
  }
  for (auto& p : prunes_) p.next_update = p.m->start_epoch;
  for (auto& s : sparses_) {
    std::vector<Shape> shapes;
    for (auto i : s.layers) shapes.push_back(layers_[i].weight.shape());
    const std::vector<double> density = initial_densities(s.m->sparse, shapes);
    std::ostringstream msg;
    msg << modifier_name(s.m->kind) << ": initial densities";
    for (std::size_t k = 0; k < s.layers.size(); ++k) {
      Layer& l = layers_[s.layers[k]];
      const std::int64_t nz = count_nonzero(l.weight.value());
      if (nz > 0 && double(nz) <= density[k] * double(l.weight.numel()) * 1.01 + 1) {
        // Resumed from a checkpoint of this run: the surviving weights are the mask.
        l.mask = Tensor(l.weight.shape(), DType::u8);
        for (std::int64_t i = 0; i < l.weight.numel(); ++i)
          l.mask.data<std::uint8_t>()[i] = l.weight.value().at(i) != 0.0f;
      } else {
        l.mask = random_mask(l.weight.shape(), density[k], rng_);
        apply_mask(l.weight.value(), l.mask);
      }
      msg << " " << l.name << "=" << density[k];
    }
    log_.push_back(msg.str());
  }
  refresh_sparse_patterns(true);
}

namespace {
const std::string kMaskPrefix = "compress/mask/";

}  // namespace

void Session::save_state(train::Checkpoint& c) const {
  for (const auto& l : layers_)
    if (l.mask.defined()) c.tensors.emplace_back(kMaskPrefix + l.name, l.mask.clone());
  for (std::size_t i = 0; i < prunes_.size(); ++i) {
    const std::string key = "compress.prune." + std::to_string(i);
    c.set_meta(key + ".next_update", hex_float(prunes_[i].next_update));
    c.set_meta(key + ".current", hex_float(prunes_[i].current));
    c.set_meta(key + ".done", prunes_[i].done ? "1" : "0");
  }
  std::ostringstream rng;
  rng << rng_;
  c.set_meta("compress.rng", rng.str());
  if (quant_) quant_->save_state(c);
}

bool Session::restore_state(const train::Checkpoint& c, const std::string& origin) {
  if (!c.find_meta("compress.rng")) return false;
  // Check everything first, so a checkpoint that does not fit changes nothing.
  std::vector<std::pair<Layer*, const Tensor*>> masks;
  for (auto& l : layers_) {
    if (!l.mask.defined()) continue;
    const Tensor* t = c.find_tensor(kMaskPrefix + l.name);
    if (!t)
      throw Error(origin + ": checkpoint has no mask for " + l.name +
                  " (made with another recipe?)");
    if (t->dtype() != DType::u8 || t->shape() != l.weight.shape())
      throw Error(origin + ": mask of " + l.name + " has shape " + shape_str(t->shape()) +
                  ", the weight has " + shape_str(l.weight.shape()));
    masks.emplace_back(&l, t);
  }
  std::size_t in_ckpt = 0;
  for (const auto& [name, t] : c.tensors) in_ckpt += name.rfind(kMaskPrefix, 0) == 0;
  if (in_ckpt != masks.size())
    throw Error(origin + ": checkpoint holds " + std::to_string(in_ckpt) + " masks, this recipe " +
                std::to_string(masks.size()) + " (made with another recipe?)");
  auto number = [&](const std::string& key) {
    const std::string* v = c.find_meta(key);
    char* end = nullptr;
    const double x = v ? std::strtod(v->c_str(), &end) : 0.0;
    if (!v || v->empty() || *end != '\0' || !std::isfinite(x))
      throw Error(origin + ": checkpoint meta '" + key + "' is missing or not a number");
    return x;
  };
  std::vector<PruneState> prunes = prunes_;
  for (std::size_t i = 0; i < prunes.size(); ++i) {
    const std::string key = "compress.prune." + std::to_string(i);
    prunes[i].next_update = number(key + ".next_update");
    prunes[i].current = number(key + ".current");
    prunes[i].done = number(key + ".done") != 0.0;
  }
  std::mt19937_64 rng;
  const std::string* rng_text = c.find_meta("compress.rng");
  std::istringstream rs(rng_text ? *rng_text : std::string());
  if (!rng_text || !(rs >> rng))
    throw Error(origin + ": checkpoint meta 'compress.rng' is invalid");
  if (quant_) quant_->restore_state(c, origin);
  for (auto& [l, t] : masks) std::memcpy(l->mask.raw(), t->raw(), l->mask.nbytes());
  prunes_ = std::move(prunes);
  rng_ = rng;
  restored_ = true;
  apply_masks();
  refresh_sparse_patterns(true);
  return true;
}

void Session::prune_to(PruneState& p, double sparsity) {
  std::vector<Tensor> ws, ms;
  for (auto i : p.layers) {
    ws.push_back(layers_[i].weight.value());
    ms.push_back(layers_[i].mask);
  }
  if (p.m->prune.structure == PruneStructure::neurons) {
    structured_prune(ws, ms, sparsity, p.m->prune.norm);
    for (auto i : p.layers) {  // a removed neuron's bias goes too
      Layer& l = layers_[i];
      if (!l.bias.defined()) continue;
      const auto keep = kept_rows(l.mask);
      std::vector<std::uint8_t> alive(static_cast<std::size_t>(l.bias.numel()), 0);
      for (auto r : keep) alive[static_cast<std::size_t>(r)] = 1;
      for (std::int64_t r = 0; r < l.bias.numel(); ++r)
        if (!alive[static_cast<std::size_t>(r)]) l.bias.value().data<float>()[r] = 0.0f;
    }
  } else if (p.m->prune.structure == PruneStructure::block) {
    block_prune(ws, ms, sparsity, p.m->prune.scope, p.m->prune.norm, p.m->prune.block_rows,
                p.m->prune.block_cols);
  } else {
    magnitude_prune(ws, ms, sparsity, p.m->prune.scope);
  }
  p.current = sparsity;
  apply_masks();
  refresh_sparse_patterns(true);
}

// Measured with bench/block_sparse_training (mlp's layers, batch 64, 2 threads, AVX2 + FMA
// clones) against the dense product through oneDNN's sgemm: the block kernels break even at
// ~10% of blocks kept (784->300: 1.08-1.36x at 10%, 0.94x at 20%; 300->100: 0.93x at 9%, 1.7-1.8x
// at 5%); the CSR kernels at ~20% of weights kept (0.97-1.09x at 20%, 1.15-1.5x at 10%). Each
// switches a little below its break-even. (Against OpenBLAS, the dense backend before, they
// broke even at ~20-30% and ~40-45%.)
constexpr double kBlockTrainingMaxDensity = 0.08;
constexpr double kCsrTrainingMaxDensity = 0.15;

namespace {
// The flat positions of a mask's kept entries, ascending.
std::shared_ptr<const std::vector<std::uint32_t>> kept_positions(const Tensor& mask) {
  auto at = std::make_shared<std::vector<std::uint32_t>>();
  const std::uint8_t* m = mask.data<std::uint8_t>();
  for (std::int64_t i = 0; i < mask.numel(); ++i)
    if (m[i] != 0) at->push_back(static_cast<std::uint32_t>(i));
  return at;
}
}  // namespace

void Session::refresh_sparse_patterns(bool enable) {
  enum class Kind { dense, blocks, csr };
  auto refresh = [enable](Layer& l, Kind kind) {
    if (l.linear == nullptr || !l.mask.defined()) return;
    std::shared_ptr<const kernels::BlockPattern> blocks;
    std::shared_ptr<const kernels::CsrPattern> csr;
    const std::uint8_t* m = l.mask.data<std::uint8_t>();
    if (enable && kind == Kind::blocks) {
      auto candidate = std::make_shared<const kernels::BlockPattern>(
          kernels::block_pattern(m, l.mask.dim(0), l.mask.dim(1)));
      if (candidate->density() <= kBlockTrainingMaxDensity) blocks = std::move(candidate);
    } else if (enable && kind == Kind::csr) {
      auto candidate = std::make_shared<const kernels::CsrPattern>(
          kernels::csr_pattern(m, l.mask.dim(0), l.mask.dim(1)));
      if (candidate->density() <= kCsrTrainingMaxDensity) csr = std::move(candidate);
    }
    l.masks_hold = false;
    l.linear->set_block_pattern(std::move(blocks));
    l.linear->set_csr_pattern(std::move(csr));
    l.linear->set_dense_weight_grad(false);
  };
  for (auto& p : prunes_) {
    const auto& pr = p.m->prune;
    const bool blocks4 = pr.structure == PruneStructure::block &&
                         pr.block_rows == kernels::BlockPattern::kBlock &&
                         pr.block_cols == kernels::BlockPattern::kBlock;
    const Kind kind = blocks4                                        ? Kind::blocks
                      : pr.structure == PruneStructure::unstructured ? Kind::csr
                                                                     : Kind::dense;
    for (auto i : p.layers) refresh(layers_[i], kind);
  }
  for (auto& s : sparses_)
    for (auto i : s.layers) {
      Layer& l = layers_[i];
      refresh(l, Kind::csr);
      // Off the mask the CSR kernels' gradient is exactly zero and drop_and_grow zeroes the
      // moved connections' optimizer state, so the update keeps those weights at zero: the
      // optimizer need not visit them at all.
      l.masks_hold = optimizer_ != nullptr && l.linear != nullptr && l.linear->csr_pattern();
      if (l.masks_hold) optimizer_->restrict_updates(l.name, kept_positions(l.mask));
    }
  for (auto& l : layers_)
    if (!l.masks_hold && optimizer_ != nullptr && l.mask.defined())
      optimizer_->restrict_updates(l.name, nullptr);
}

double Session::rigl_update_fraction(const Modifier& m, std::int64_t global_step) const {
  if (m.sparse.method != SparseMethod::rigl) return 0.0;
  const double end = m.key_line.count("end_epoch") ? m.end_epoch : 0.75 * double(epochs_);
  const auto start_step = static_cast<std::int64_t>(m.start_epoch * double(steps_per_epoch_));
  const auto end_step = static_cast<std::int64_t>(end * double(steps_per_epoch_));
  const std::int64_t rel = global_step - start_step;
  if (rel <= 0 || rel % m.sparse.update_every != 0 || global_step >= end_step) return 0.0;
  return rigl_drop_fraction(m.sparse.drop_fraction, double(rel), double(end_step - start_step));
}

void Session::apply_masks() {
  for (auto& l : layers_)
    if (l.mask.defined() && !l.masks_hold) apply_mask(l.weight.value(), l.mask);
  // Structured pruning also keeps removed neurons' biases at zero.
  for (auto& p : prunes_) {
    if (p.m->prune.structure != PruneStructure::neurons) continue;
    for (auto i : p.layers) {
      Layer& l = layers_[i];
      if (!l.bias.defined()) continue;
      const std::int64_t rows = l.mask.dim(0), cols = l.mask.numel() / rows;
      const std::uint8_t* m = l.mask.data<std::uint8_t>();
      for (std::int64_t r = 0; r < rows; ++r)
        if (!std::any_of(m + r * cols, m + (r + 1) * cols, [](std::uint8_t v) { return v; }))
          l.bias.value().data<float>()[r] = 0.0f;
    }
  }
}

void Session::mask_grads() {
  for (auto& l : layers_)
    if (l.mask.defined() && l.weight.grad().defined() && (!l.masks_hold || dense_grad_step_))
      apply_mask(l.weight.grad(), l.mask);
}

std::int64_t Session::move_connections(Layer& l, const Tensor& grad, double fraction) {
  std::vector<std::int64_t> changed;
  const std::int64_t moved = drop_and_grow(l.weight.value(), l.mask, grad, fraction, rng_,
                                           optimizer_ != nullptr ? &changed : nullptr);
  if (optimizer_ != nullptr) optimizer_->reset_state_at(l.name, changed);
  return moved;
}

void Session::step_begin(std::int64_t epoch, std::int64_t step, std::int64_t global_step) {
  const double t = time_of(epoch, step);
  // RigL grows where the dense gradient is largest: the sparse layers compute it in full on
  // the update steps only.
  dense_grad_step_ = false;
  for (auto& s : sparses_) {
    const bool due = rigl_update_fraction(*s.m, global_step) > 0.0;
    dense_grad_step_ |= due;
    for (auto i : s.layers)
      if (layers_[i].linear != nullptr) layers_[i].linear->set_dense_weight_grad(due);
  }
  for (auto& p : prunes_) {
    const auto& m = *p.m;
    while (!p.done && t + 1e-9 >= p.next_update) {
      const double u = p.next_update;
      const double s = cubic_sparsity(m.prune.init_sparsity, m.prune.final_sparsity, u,
                                      m.start_epoch, m.end_epoch - m.start_epoch);
      prune_to(p, s);
      if (u + 1e-9 >= m.end_epoch)
        p.done = true;
      else
        p.next_update = std::min(u + m.prune.update_every, m.end_epoch);
    }
  }
  if (quant_) quant_->set_active(quant_active(t));
  if (quant_active(t)) {
    for (auto i : quant_layers_) {
      Layer& l = layers_[i];
      l.shadow = l.weight.value().clone();
      const auto params =
          per_channel_params(l.shadow, recipe_.find(ModifierKind::quantize)->quant.weight_bits);
      Tensor fq = fake_quantize_per_channel(l.shadow, params);
      copy_into(l.weight.value(), fq);
    }
    weights_quantized_ = true;
  }
}

void Session::before_optimizer_step(std::int64_t epoch, std::int64_t step,
                                    std::int64_t global_step) {
  (void)epoch;
  (void)step;
  if (weights_quantized_) {  // the update applies to the float weights (STE)
    for (auto i : quant_layers_) copy_into(layers_[i].weight.value(), layers_[i].shadow);
    weights_quantized_ = false;
  }
  bool moved = false;
  for (auto& s : sparses_) {
    const double f = rigl_update_fraction(*s.m, global_step);
    if (f <= 0.0) continue;
    for (auto i : s.layers) {
      Layer& l = layers_[i];
      if (l.weight.grad().defined()) moved |= move_connections(l, l.weight.grad(), f) > 0;
    }
  }
  mask_grads();
  if (moved) refresh_sparse_patterns(true);
}

void Session::step_end() {
  apply_masks();
}

void Session::epoch_end(std::int64_t epoch) {
  for (auto& s : sparses_) {
    const auto& m = *s.m;
    if (m.sparse.method != SparseMethod::set) continue;
    const double end = m.key_line.count("end_epoch") ? m.end_epoch : 0.75 * double(epochs_);
    // No update after the last epoch: regrown weights would stay untrained at zero.
    if (double(epoch + 1) <= m.start_epoch || double(epoch + 1) > end || epoch + 1 >= epochs_)
      continue;
    std::int64_t moved = 0;
    for (auto i : s.layers) moved += move_connections(layers_[i], Tensor(), m.sparse.drop_fraction);
    log_.push_back("SET epoch " + std::to_string(epoch + 1) + ": moved " + std::to_string(moved) +
                   " connections");
    if (moved > 0) refresh_sparse_patterns(true);
  }
}

void Session::start_calibration() {
  if (quant_) quant_->start_calibration();
}
void Session::finish_calibration() {
  if (quant_) quant_->finish_calibration();
}
std::vector<QuantParams> Session::activation_params() const {
  return quant_ ? quant_->activation_params() : std::vector<QuantParams>{};
}

std::shared_ptr<nn::Sequential> Session::finish() {
  if (weights_quantized_) {
    for (auto i : quant_layers_) copy_into(layers_[i].weight.value(), layers_[i].shadow);
    weights_quantized_ = false;
  }
  for (auto& p : prunes_) {
    if (p.done) continue;
    prune_to(p, p.m->prune.final_sparsity);
    p.done = true;
    log_.push_back("prune: training ended before end_epoch; pruned to the final sparsity at once");
  }
  // Without the session's masks nothing keeps the weights inside the blocks any more.
  refresh_sparse_patterns(false);
  apply_masks();
  if (const Modifier* q = recipe_.find(ModifierKind::quantize)) {
    for (auto i : quant_layers_) {  // weights end exactly on their int8 grid
      Tensor& w = layers_[i].weight.value();
      Tensor fq = fake_quantize_per_channel(w, per_channel_params(w, q->quant.weight_bits));
      copy_into(w, fq);
    }
  }
  // Structured removal: a smaller dense model.
  std::map<std::string, std::int64_t> new_out;
  std::map<std::string, std::vector<std::int64_t>> keep_of;  // child name -> kept rows
  for (auto& p : prunes_) {
    if (p.m->prune.structure != PruneStructure::neurons || !p.m->prune.remove) continue;
    for (auto i : p.layers) {
      const auto& name = layers_[i].name;
      const std::string child = name.substr(0, name.rfind('.'));
      keep_of[child] = kept_rows(layers_[i].mask);
    }
  }
  if (keep_of.empty()) return model_;
  const auto& kids = model_->named_children();
  std::map<std::string, Tensor> tensors;
  for (auto& [name, p] : model_->named_parameters()) tensors[name] = p.value().clone();
  for (std::size_t i = 0; i < kids.size(); ++i) {
    const std::string& cname = kids[i].first;
    auto it = keep_of.find(cname);
    if (it == keep_of.end()) continue;
    const auto& keep = it->second;
    if (keep.empty()) throw Error("structured pruning removed every neuron of layer " + cname);
    tensors[cname + ".weight"] = take_rows(tensors[cname + ".weight"], keep);
    if (tensors.count(cname + ".bias"))
      tensors[cname + ".bias"] =
          take_rows(tensors[cname + ".bias"].reshape({-1, 1}), keep).reshape({-1});
    new_out[cname] = static_cast<std::int64_t>(keep.size());
    const std::int64_t channels = kids[i].second->named_parameters()[0].second.dim(0);
    // The next weight layer loses the matching inputs; only shape-preserving layers between.
    std::size_t j = i + 1;
    for (; j < kids.size() && !is_weight_layer(*kids[j].second); ++j) {
      const std::string t = kids[j].second->type_name();
      if (t.rfind("BatchNorm", 0) == 0)
        throw Error("structured removal across " + t + " (layer " + kids[j].first +
                    ") is not supported; set remove: false");
    }
    if (j == kids.size()) throw Error("structured pruning of the last weight layer " + cname);
    // Removing channels would change the group sizes.
    for (std::size_t k : {i, j})
      if (auto* c = dynamic_cast<const nn::Conv2d*>(kids[k].second.get());
          c && c->options().groups > 1)
        throw Error("structured removal next to the grouped convolution " + kids[k].first +
                    " (groups " + std::to_string(c->options().groups) +
                    ") is not supported; set remove: false");
    const std::string next = kids[j].first + ".weight";
    const std::int64_t in = tensors[next].dim(1);
    tensors[next] = take_input_columns(tensors[next], keep, in / channels);
  }
  auto pruned = nn::parse_model_yaml(nn::model_yaml(*model_, new_out), "<structured pruning>");
  pruned->train(model_->is_training());
  for (auto& [name, p] : pruned->named_parameters()) {
    const Tensor& src = tensors.at(name);
    if (src.shape() != p.shape())
      throw Error("structured removal: shape of " + name + " is " + shape_str(src.shape()) +
                  ", expected " + shape_str(p.shape()));
    copy_into(p.value(), src);
  }
  std::int64_t before = model_->num_parameters(), after = pruned->num_parameters();
  log_.push_back("structured removal: " + std::to_string(before) + " -> " + std::to_string(after) +
                 " parameters");
  model_ = pruned;
  if (quant_) {
    auto q =
        std::make_shared<FakeQuantSequential>(*pruned, recipe_.find(ModifierKind::quantize)->quant);
    quant_ = q;  // activation ranges are re-learned/calibrated on the smaller model
    forward_ = q;
  } else {
    forward_ = model_;
  }
  return model_;
}

}  // namespace verdant::compress

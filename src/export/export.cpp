#include "verdant/export/export.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <utility>

#include "verdant/compress/quantize.hpp"
#include "verdant/compress/recipe.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/kernels/block_sparse.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/nn/module.hpp"
#include "verdant/runtime/model.hpp"
#include "verdant/runtime/vdm_writer.hpp"
#include "verdant/train/checkpoint.hpp"

namespace verdant::exporter {
namespace {

using runtime::LayerSpec;
using runtime::ModelSpec;

std::vector<float> tensor_values(const Tensor& t) {
  const float* p = t.data<float>();
  return std::vector<float>(p, p + t.numel());
}

std::string layer_name(const std::string& child, const nn::Module& m) {
  return "layer " + child + " (" + m.type_name() + ")";
}

// A Conv2d's weight as the runtime's dense conv takes it: groups become a block-diagonal
// [OC, C, k, k] weight (zeros across groups) and dilation a kernel of dilation * (k - 1) + 1
// with zeros between the taps. Both compute exactly what the layer does.
std::vector<float> dense_conv_weight(nn::Conv2d& conv, std::uint32_t* kernel) {
  const auto& o = conv.options();
  const std::int64_t k = o.kernel, d = o.dilation, span = d * (k - 1) + 1;
  const std::int64_t cg = o.in_channels / o.groups, og = o.out_channels / o.groups;
  const float* w = conv.weight().value().data<float>();
  std::vector<float> out(static_cast<std::size_t>(o.out_channels * o.in_channels * span * span));
  for (std::int64_t oc = 0; oc < o.out_channels; ++oc)
    for (std::int64_t j = 0; j < cg; ++j) {
      const std::int64_t c = oc / og * cg + j;  // the input channel of the whole layer
      for (std::int64_t ky = 0; ky < k; ++ky)
        for (std::int64_t kx = 0; kx < k; ++kx)
          out[static_cast<std::size_t>(((oc * o.in_channels + c) * span + ky * d) * span +
                                       kx * d)] = w[((oc * cg + j) * k + ky) * k + kx];
    }
  *kernel = static_cast<std::uint32_t>(span);
  return out;
}

// Whether only Dropout layers follow child i.
bool last_but_dropout(const nn::Sequential& model, std::size_t i) {
  const auto& kids = model.named_children();
  for (std::size_t j = i + 1; j < kids.size(); ++j)
    if (kids[j].second->type_name() != "Dropout") return false;
  return true;
}

// The engine's layer stack as .vdm layers: ReLU and pooling fold into the layer before.
// BatchNorm must already be folded (nn::fold_batch_norm); a softmax at the very end is left
// out (it does not change the predicted class), with a note.
ModelSpec to_spec(nn::Sequential& model, const ExportOptions& o, std::vector<std::string>* notes) {
  ModelSpec spec;
  const Shape& in = model.input_shape();
  if (in.size() == 3) {
    spec.input_c = static_cast<std::uint32_t>(in[0]);
    spec.input_h = static_cast<std::uint32_t>(in[1]);
    spec.input_w = static_cast<std::uint32_t>(in[2]);
  } else if (in.size() == 1) {
    spec.input_w = static_cast<std::uint32_t>(in[0]);
  } else {
    throw Error("model has no input shape (expected [C, H, W] or [features])");
  }
  spec.byte_scale = o.byte_scale;
  spec.byte_offset = o.byte_offset;
  spec.name = o.name;
  const auto& kids = model.named_children();
  for (std::size_t i = 0; i < kids.size(); ++i) {
    const std::string& child = kids[i].first;
    nn::Module& m = *kids[i].second;
    const std::string type = m.type_name();
    const std::string at = layer_name(child, m);
    if (auto* lin = dynamic_cast<nn::Linear*>(&m)) {
      LayerSpec s;
      s.kind = vdm::LayerKind::linear;
      s.out_c = static_cast<std::uint32_t>(lin->out_features());
      s.weight = tensor_values(lin->weight().value());
      s.bias = lin->bias().defined() ? tensor_values(lin->bias().value())
                                     : std::vector<float>(s.out_c, 0.f);
      spec.layers.push_back(std::move(s));
    } else if (auto* conv = dynamic_cast<nn::Conv2d*>(&m)) {
      const auto& co = conv->options();
      LayerSpec s;
      s.kind = vdm::LayerKind::conv2d;
      s.out_c = static_cast<std::uint32_t>(co.out_channels);
      s.kernel_h = s.kernel_w = static_cast<std::uint32_t>(co.kernel);
      s.stride = static_cast<std::uint32_t>(co.stride);
      s.padding = static_cast<std::uint32_t>(co.padding);
      if (co.groups == 1 && co.dilation == 1) {
        s.weight = tensor_values(conv->weight().value());
      } else {
        s.weight = dense_conv_weight(*conv, &s.kernel_h);
        s.kernel_w = s.kernel_h;
        notes->push_back(at + ": " + (co.groups > 1 ? "grouped" : "") +
                         (co.groups > 1 && co.dilation > 1 ? " and " : "") +
                         (co.dilation > 1 ? "dilated" : "") +
                         " convolution stored as an equivalent dense one (zeros " +
                         (co.groups > 1 ? "across groups" : "between taps") + ")");
      }
      s.bias = conv->bias().defined() ? tensor_values(conv->bias().value())
                                      : std::vector<float>(s.out_c, 0.f);
      spec.layers.push_back(std::move(s));
    } else if (type == "Flatten") {
      LayerSpec s;
      s.kind = vdm::LayerKind::flatten;
      s.encoding = vdm::Encoding::none;
      spec.layers.push_back(std::move(s));
    } else if (type == "ReLU") {
      if (spec.layers.empty() || spec.layers.back().kind == vdm::LayerKind::flatten ||
          spec.layers.back().activation != vdm::Activation::none ||
          spec.layers.back().pool != vdm::Pool::none)
        throw Error(at + ": .vdm fuses ReLU only directly after a Linear or Conv2d");
      spec.layers.back().activation = vdm::Activation::relu;
    } else if (type == "MaxPool2d" || type == "AvgPool2d") {
      std::int64_t k = 0, st = 0, pad = 0;
      if (auto* mp = dynamic_cast<nn::MaxPool2d*>(&m))
        k = mp->kernel(), st = mp->stride(), pad = mp->padding();
      if (auto* ap = dynamic_cast<nn::AvgPool2d*>(&m))
        k = ap->kernel(), st = ap->stride(), pad = ap->padding();
      if (st == 0) st = k;
      if (spec.layers.empty() || spec.layers.back().kind != vdm::LayerKind::conv2d ||
          spec.layers.back().pool != vdm::Pool::none)
        throw Error(at + ": .vdm fuses pooling only after a Conv2d");
      if (pad != 0 || k < 1 || k > 255 || st > 255)
        throw Error(at + ": .vdm supports unpadded pooling windows up to 255");
      LayerSpec& s = spec.layers.back();
      s.pool = type == "MaxPool2d" ? vdm::Pool::max : vdm::Pool::avg;
      s.pool_size = static_cast<std::uint32_t>(k);
      s.pool_stride = static_cast<std::uint32_t>(st);
    } else if (type == "Dropout") {
      // identity at inference
    } else if ((type == "Softmax" || type == "LogSoftmax") && last_but_dropout(model, i)) {
      notes->push_back(at +
                       ": left out; the .vdm model outputs the logits before it (the "
                       "predicted class is the same)");
    } else if (type.rfind("BatchNorm", 0) == 0) {
      throw Error(at + ": .vdm folds BatchNorm only directly after a Linear or Conv2d");
    } else if (type == "LeakyReLU" || type == "Sigmoid" || type == "Tanh" || type == "GELU" ||
               type == "Softmax" || type == "LogSoftmax") {
      throw Error(at + ": the .vdm runtime has no " + type +
                  " (it fuses only ReLU after a Linear or Conv2d); export this model to ONNX "
                  "(format onnx) instead");
    } else {
      throw Error(at +
                  ": not supported by the .vdm format (Linear, Conv2d, ReLU, max/avg "
                  "pooling, Flatten, Dropout)");
    }
  }
  if (spec.layers.empty()) throw Error("model has no layers to export");
  return spec;
}

// The runtime refuses NaN and infinite weights: name the first such parameter as the
// checkpoint does ('1.weight'), with the file it came from.
void check_finite_parameters(const nn::Sequential& model, const std::string& source) {
  for (const auto& [name, p] : model.named_parameters()) {
    const float* v = p.value().data<float>();
    for (std::int64_t i = 0; i < p.numel(); ++i) {
      if (std::isfinite(v[i])) continue;
      const char* what = std::isnan(v[i]) ? "NaN" : v[i] > 0 ? "+infinity" : "-infinity";
      throw Error((source.empty() ? std::string() : source + ": ") + "parameter '" + name +
                  "' element " + std::to_string(i) + " is " + what +
                  "; a .vdm model needs finite weights");
    }
  }
}

std::string describe(const LayerSpec& s, std::uint32_t in_c) {
  std::string d;
  if (s.kind == vdm::LayerKind::flatten) return "flatten";
  if (s.kind == vdm::LayerKind::linear)
    d = "linear " + std::to_string(s.weight.size() / s.out_c) + "->" + std::to_string(s.out_c);
  else
    d = "conv2d " + std::to_string(in_c) + "->" + std::to_string(s.out_c) + " k" +
        std::to_string(s.kernel_h) + " s" + std::to_string(s.stride) + " p" +
        std::to_string(s.padding);
  if (s.activation == vdm::Activation::relu) d += " relu";
  if (s.pool == vdm::Pool::max) d += " maxpool" + std::to_string(s.pool_size);
  if (s.pool == vdm::Pool::avg) d += " avgpool" + std::to_string(s.pool_size);
  std::size_t zeros = 0;
  for (float w : s.weight) zeros += w == 0.f;
  const char* enc = s.encoding == vdm::Encoding::f32        ? "fp32"
                    : s.encoding == vdm::Encoding::int8     ? "int8"
                    : s.encoding == vdm::Encoding::int8_bsr ? "int8 4x4-block sparse"
                                                            : "int8 CSR";
  char buf[64];
  std::snprintf(buf, sizeof buf, ": %s, %.1f%% zero weights", enc,
                100.0 * static_cast<double>(zeros) / static_cast<double>(s.weight.size()));
  return d + buf;
}

// Whether a pruned layer's zeros come in 4x4 blocks (block-structured pruning): at least
// half of the entries of its non-zero blocks are non-zero. Such layers run through the
// runtime's block kernel; scattered zeros are stored as CSR.
bool block_structured(const LayerSpec& s) {
  const auto k = static_cast<std::int64_t>(s.weight.size() / s.out_c);
  const auto blocks = kernels::block_pattern(s.weight.data(), s.out_c, k).blocks();
  const auto nonzero =
      std::count_if(s.weight.begin(), s.weight.end(), [](float w) { return w != 0.f; });
  return blocks > 0 && 2 * nonzero >= blocks * vdm::kBlock * vdm::kBlock;
}

bool is_weight_layer(const nn::Module& m) {
  return dynamic_cast<const nn::Linear*>(&m) || dynamic_cast<const nn::Conv2d*>(&m);
}

// The runtime's 7-bit parameters for a learned activation quantization.
runtime::QuantParams on_runtime_grid(const ActivationQuant& a) {
  if (!(a.scale > 0.f) || !std::isfinite(a.scale) || a.bits < 2 || a.bits > 8 || a.zero_point < 0 ||
      a.zero_point > (1 << a.bits) - 1)
    throw Error("export: learned activation quantization (scale " + std::to_string(a.scale) +
                ", zero point " + std::to_string(a.zero_point) + ", " + std::to_string(a.bits) +
                " bits) is not valid");
  if (a.bits == 7) return {a.scale, a.zero_point};
  const float lo = -static_cast<float>(a.zero_point) * a.scale;
  const float hi = static_cast<float>((1 << a.bits) - 1 - a.zero_point) * a.scale;
  return runtime::activation_qparams(lo, hi);
}

// Site k (the input of the k-th weight layer) becomes the model input's quantization (k = 0)
// or the output quantization of weight layer k - 1 (after its ReLU/pooling).
void apply_activation_quant(ModelSpec& spec, const std::vector<ActivationQuant>& aq) {
  std::vector<std::size_t> weight_layers;
  for (std::size_t i = 0; i < spec.layers.size(); ++i)
    if (spec.layers[i].kind != vdm::LayerKind::flatten) weight_layers.push_back(i);
  if (aq.size() != weight_layers.size())
    throw Error("export: " + std::to_string(aq.size()) +
                " learned activation ranges given for a model with " +
                std::to_string(weight_layers.size()) + " Linear/Conv2d layers");
  const runtime::QuantParams in = on_runtime_grid(aq[0]);
  spec.input_fixed = true;
  spec.input_scale = in.scale;
  spec.input_zero_point = in.zero_point;
  for (std::size_t k = 1; k < aq.size(); ++k) {
    const runtime::QuantParams q = on_runtime_grid(aq[k]);
    LayerSpec& s = spec.layers[weight_layers[k - 1]];
    s.out_fixed = true;
    s.out_scale = q.scale;
    s.out_zero_point = q.zero_point;
  }
}

}  // namespace

std::vector<float> simulate_fake_quant(nn::Sequential& model,
                                       const std::vector<ActivationQuant>& activation_quant,
                                       const float* input, std::size_t input_n) {
  nn::NoGradGuard guard;
  Shape shape = model.input_shape();
  shape.insert(shape.begin(), 1);
  autograd::Variable h(Tensor::from(shape, std::span<const float>(input, input_n)));
  std::size_t site = 0;
  for (const auto& [child, mod] : model.named_children()) {
    if (is_weight_layer(*mod)) {
      if (site >= activation_quant.size())
        throw Error("simulate_fake_quant: fewer activation ranges than Linear/Conv2d layers");
      const ActivationQuant& a = activation_quant[site++];
      compress::QuantParams p;
      p.scale = a.scale;
      p.zero_point = a.zero_point;
      p.qmin = 0;
      p.qmax = (1 << a.bits) - 1;
      const Tensor& v = h.value();
      Tensor out(v.shape(), DType::f32);
      const auto n = static_cast<std::size_t>(v.numel());
      compress::fake_quantize({v.data<float>(), n}, {out.data<float>(), n}, p);
      h = autograd::Variable(out);
    }
    h = mod->forward(h);
  }
  const float* p = h.value().data<float>();
  return std::vector<float>(p, p + h.numel());
}

std::vector<ActivationQuant> learned_activations(const train::Checkpoint& c,
                                                 const std::string& file, int bits) {
  std::vector<ActivationQuant> out;
  for (std::size_t i = 0;; ++i) {
    const std::string key = "compress.activation." + std::to_string(i);
    const std::string* sc = c.find_meta(key + ".scale");
    const std::string* zp = c.find_meta(key + ".zero_point");
    if (!sc || !zp) break;
    ActivationQuant a;
    try {
      a.scale = std::stof(*sc);
      a.zero_point = std::stoi(*zp);
    } catch (const std::exception&) {
      throw Error(file + ": metadata '" + key + "' is not a number");
    }
    out.push_back(a);
  }
  if (out.empty()) return out;
  if (bits == 0) {
    const std::string* recipe = c.find_meta("compress.recipe");
    std::error_code ec;
    if (!recipe || !std::filesystem::is_regular_file(*recipe, ec))
      throw UsageError(file + ": QAT recipe " + (recipe ? "'" + *recipe + "' " : "") +
                       "not readable here; give --activation-bits (the recipe's activation_bits)");
    const compress::Recipe r = compress::load_recipe(*recipe);  // q points into it
    const compress::Modifier* q = r.find(compress::ModifierKind::quantize);
    if (!q)
      throw UsageError(file + ": recipe '" + *recipe +
                       "' has no quantize modifier; give --activation-bits");
    bits = q->quant.activation_bits;
  }
  for (auto& a : out) a.bits = bits;
  return out;
}

ExportResult export_vdm(nn::Sequential& model, const ExportOptions& options,
                        const std::vector<float>& calibration, std::size_t calibration_count) {
  check_finite_parameters(model, options.source);
  ExportResult result;
  const auto folded = nn::fold_batch_norm(model);
  if (folded->size() < model.size())
    result.notes.push_back(std::to_string(model.size() - folded->size()) +
                           " BatchNorm layer(s) folded into the Linear/Conv2d before them");
  ModelSpec spec = to_spec(*folded, options, &result.notes);
  std::string err;
  if (options.precision == Precision::int8) {
    const std::size_t n_in = std::size_t{spec.input_c} * spec.input_h * spec.input_w;
    std::vector<float> mins(spec.layers.size(), 0.f), maxs(spec.layers.size(), 0.f);
    if (!options.activation_quant.empty()) {
      apply_activation_quant(spec, options.activation_quant);
    } else {
      if (calibration_count == 0 || calibration.size() != calibration_count * n_in)
        throw Error("int8 export needs calibration inputs (" + std::to_string(n_in) +
                    " values each)");
      // Min-max calibration through the runtime's own fp32 path (the fp32 test ties it to the
      // engine): every layer's post-activation output range, and the input range.
      auto fp32 = runtime::write_vdm(spec, &err);
      if (fp32.empty()) throw Error("export: " + err);
      auto m = runtime::Model::load_buffer(fp32.data(), fp32.size(), &err);
      if (!m) throw Error("export: internal fp32 model does not load: " + err);
      spec.input_min = spec.input_max = 0.f;
      for (std::size_t i = 0; i < calibration_count; ++i) {
        const float* x = calibration.data() + i * n_in;
        m->run_observe(x, n_in, mins.data(), maxs.data());
        for (std::size_t j = 0; j < n_in; ++j) {
          spec.input_min = std::min(spec.input_min, x[j]);
          spec.input_max = std::max(spec.input_max, x[j]);
        }
      }
    }
    bool first_weight_layer = true;
    for (std::size_t li = 0; li < spec.layers.size(); ++li) {
      LayerSpec& s = spec.layers[li];
      s.out_min = mins[li];
      s.out_max = maxs[li];
      if (s.kind == vdm::LayerKind::flatten) continue;
      if (std::exchange(first_weight_layer, false) && options.first_layer_fp32) continue;
      std::size_t zeros = 0;
      for (float w : s.weight) zeros += w == 0.f;
      const double frac = static_cast<double>(zeros) / static_cast<double>(s.weight.size());
      const bool sparse =
          options.sparse == SparseMode::always ||
          (options.sparse == SparseMode::automatic && frac >= options.sparse_threshold);
      s.encoding = !sparse               ? vdm::Encoding::int8
                   : block_structured(s) ? vdm::Encoding::int8_bsr
                                         : vdm::Encoding::int8_csr;
    }
    spec.layers.back().quantize_output = false;  // logits stay f32
  }
  std::uint32_t c = spec.input_c;
  for (const LayerSpec& s : spec.layers) {
    result.layers.push_back({describe(s, c)});
    if (s.kind != vdm::LayerKind::flatten) c = s.out_c;
  }
  result.bytes = runtime::write_vdm(spec, &err);
  if (result.bytes.empty()) throw Error("export: " + err);
  return result;
}

ExportResult export_vdm_file(nn::Sequential& model, const ExportOptions& options,
                             const std::vector<float>& calibration, std::size_t calibration_count,
                             const std::string& path) {
  ExportResult result = export_vdm(model, options, calibration, calibration_count);
  runtime::LoadOptions load;
  load.name = path;
  std::string err;
  if (!runtime::Model::load_buffer(result.bytes.data(), result.bytes.size(), &err, load))
    throw Error(err + " (not written)");
  write_file_atomic(path, std::span<const std::uint8_t>(result.bytes.data(), result.bytes.size()));
  return result;
}

}  // namespace verdant::exporter

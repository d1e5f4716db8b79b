#include "verdant/export/run.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>

#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/data/split.hpp"
#include "verdant/interop/onnx_export.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/nn/module.hpp"
#include "verdant/runtime/model.hpp"
#include "verdant/train/model_source.hpp"

namespace verdant::exporter {

namespace {

// Normalised samples [0, n) of a dataset, back to back.
std::vector<float> take(const data::Dataset& d, std::int64_t n, std::vector<std::int32_t>* labels) {
  n = std::min(n, d.size());
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::int64_t per = 1;
  for (auto s : d.sample_shape()) per *= s;
  std::vector<float> x(static_cast<std::size_t>(n * per));
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  d.fill(idx, x.data(), y.data());
  if (labels) *labels = std::move(y);
  return x;
}

std::unique_ptr<runtime::Model> load_vdm(const std::vector<std::uint8_t>& bytes) {
  std::string err;
  auto m = runtime::Model::load_buffer(bytes.data(), bytes.size(), &err);
  if (!m) throw Error("exported model does not load: " + err);
  return m;
}

int argmax(const std::vector<float>& v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

// The part of `data` an exported model is fed, refused when the model cannot take it.
data::DataSplit load_for_model(nn::Sequential& model, const data::DataOptions& data,
                               data::Parts part, const std::string& origin) {
  data::DataSplit split = data::load_split(data, part);
  train::check_model_fits(model, {split.sample_shape, split.num_classes}, origin,
                          "the calibration data (" + split.description + ")");
  return split;
}

Agreement measure_agreement(nn::Sequential& model, const ExportOptions& int8_options,
                            const ExportResult& int8_result, const ExportJobOptions& o,
                            const data::DataOptions& data) {
  auto split = load_for_model(model, data, data::Parts::test, o.model);
  std::vector<std::int32_t> labels;
  const auto xs = take(*split.test, o.agreement_samples, &labels);
  ExportOptions fp32_options = int8_options;
  fp32_options.precision = Precision::fp32;
  auto fp32 = load_vdm(export_vdm(model, fp32_options, {}, 0).bytes);
  auto int8 = load_vdm(int8_result.bytes);
  const std::size_t n = labels.size(), per = fp32->input_size();
  std::size_t agree = 0, ok32 = 0, ok8 = 0, same_sim = 0, ok_sim = 0;
  const auto& learned = int8_options.activation_quant;
  for (std::size_t i = 0; i < n; ++i) {
    const float* x = xs.data() + i * per;
    const int a = fp32->predict(x, per), b = int8->predict(x, per);
    agree += a == b;
    ok32 += a == labels[i];
    ok8 += b == labels[i];
    if (!learned.empty()) {
      const int s = argmax(simulate_fake_quant(model, learned, x, per));
      same_sim += s == b;
      ok_sim += s == labels[i];
    }
  }
  const double total = static_cast<double>(std::max<std::size_t>(n, 1));
  Agreement g{.samples = n,
              .same = agree / total,
              .fp32_accuracy = ok32 / total,
              .int8_accuracy = ok8 / total};
  if (!learned.empty()) {
    g.simulation_same = same_sim / total;
    g.simulation_accuracy = ok_sim / total;
  }
  return g;
}

// How an exported model takes its inputs: pixels normalized by the file's byte transform, or
// raw features with the normalization folded into its first layer. A model that does not say
// (older checkpoints, untrained and imported models) takes Fashion-MNIST's pixels.
struct InputConvention {
  data::Normalization normalization;
  bool pixels = true;
};

InputConvention input_convention(const train::Checkpoint* ckpt, data::DataOptions& data,
                                 const std::string& origin) {
  if (ckpt) train::apply_data_meta(*ckpt, origin, data);
  InputConvention c;
  c.normalization = data.normalization.value_or(
      data::Normalization{{data::kFashionMnistMean}, {data::kFashionMnistStd}});
  c.pixels = (!ckpt || !ckpt->find_meta("data.values")) && c.normalization.mean.size() == 1;
  return c;
}

// What the exported model's inputs are, for the ONNX file's metadata.
std::string input_normalization_text(const InputConvention& c) {
  if (!c.pixels) return "none: raw features (the normalization is folded into the first layer)";
  char text[128];
  std::snprintf(text, sizeof text, "(pixel / 255 - %g) / %g", double{c.normalization.mean[0]},
                double{c.normalization.std[0]});
  return text;
}

// Rewrites the first weight layer so that the model takes raw features: for a Linear after
// x' = (x - mean) / std, W' = W / std (per input) and b' = b - W' mean; a Conv2d without
// padding the same with one (mean, std).
void fold_input_normalization(nn::Sequential& model, const data::Normalization& n,
                              const std::string& origin) {
  if (n.empty()) return;
  for (const auto& [name, child] : model.named_children()) {
    if (auto* linear = dynamic_cast<nn::Linear*>(child.get())) {
      Tensor& w = linear->weight().value();
      const std::int64_t rows = w.dim(0), cols = w.dim(1);
      if (n.mean.size() != 1 && static_cast<std::int64_t>(n.mean.size()) != cols)
        throw Error(origin + ": the normalization has " + std::to_string(n.mean.size()) +
                    " features, layer " + name + " takes " + std::to_string(cols));
      float* wd = w.data<float>();
      float* bd = linear->has_bias() ? linear->bias().value().data<float>() : nullptr;
      if (!bd && std::any_of(n.mean.begin(), n.mean.end(), [](float m) { return m != 0.f; }))
        throw Error(origin + ": cannot fold the input normalization into layer " + name +
                    ", which has no bias");
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c) {
          const std::size_t k = n.mean.size() == 1 ? 0 : static_cast<std::size_t>(c);
          float& v = wd[r * cols + c];
          v /= n.std[k];
          if (bd) bd[r] -= v * n.mean[k];
        }
      return;
    }
    if (auto* conv = dynamic_cast<nn::Conv2d*>(child.get())) {
      if (n.mean.size() != 1 || conv->options().padding != 0)
        throw Error(origin + ": cannot fold the input normalization into layer " + name +
                    " (a padded or per-pixel normalized convolution)");
      Tensor& w = conv->weight().value();
      const std::int64_t out = w.dim(0), per = w.numel() / out;
      float* wd = w.data<float>();
      float* bd = conv->options().bias ? conv->bias().value().data<float>() : nullptr;
      for (std::int64_t o = 0; o < out; ++o)
        for (std::int64_t k = 0; k < per; ++k) {
          float& v = wd[o * per + k];
          v /= n.std[0];
          if (bd) bd[o] -= v * n.mean[0];
        }
      return;
    }
    if (child->type_name() != "Flatten")
      throw Error(origin + ": cannot fold the input normalization past layer " + name + " (" +
                  child->type_name() + ")");
  }
}

// The quantization of the .vdm int8 model `bytes`, one entry per Linear/Conv2d: the input
// parameters of each int8 layer and its per-channel weight scales, for the ONNX QDQ file.
std::vector<interop::QdqLayer> qdq_layers(const std::vector<std::uint8_t>& bytes) {
  auto m = load_vdm(bytes);
  std::vector<interop::QdqLayer> out;
  for (std::size_t i = 0; i < m->num_layers(); ++i) {
    const vdm::LayerRecord& l = m->layer(i);
    if (l.kind == vdm::LayerKind::flatten) continue;
    interop::QdqLayer q;
    q.input = {l.in_scale, l.in_zero_point};
    const vdm::TensorRecord* t = m->tensors(i);
    for (std::uint32_t k = 0; k < l.num_tensors; ++k) {
      if (t[k].role != vdm::TensorRole::weight_scale) continue;
      q.weight_scale.resize(t[k].count);
      std::memcpy(q.weight_scale.data(), m->file_data() + t[k].offset, t[k].count * sizeof(float));
    }
    if (q.weight_scale.size() != l.out_c)
      throw Error("export: int8 layer " + std::to_string(i) + " has no weight scales");
    out.push_back(std::move(q));
  }
  return out;
}

std::string extension_of(const std::filesystem::path& p) {
  std::string e = p.extension().string();
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

}  // namespace

ExportReport run_export(const ExportJobOptions& o) {
  const bool onnx = o.format == Format::onnx;
  if (o.out.empty())
    throw SettingError(
        "out", std::string("out is needed: the ") + (onnx ? ".onnx" : ".vdm") + " file to write");
  if (!onnx && extension_of(o.out) == ".onnx")
    throw SettingError("format", "out " + o.out.string() +
                                     " is an .onnx file but format is vdm; give format onnx");
  if (onnx && extension_of(o.out) == ".vdm")
    throw SettingError(
        "format", "out " + o.out.string() + " is a .vdm file but format is onnx; give format vdm");
  if (onnx && (o.onnx_opset < 11 || o.onnx_opset > 17))
    throw SettingError("opset", "opset must be in [11, 17], got " + std::to_string(o.onnx_opset));
  if (onnx && o.precision == Precision::int8 && o.onnx_opset < 13)
    throw SettingError("opset", "opset " + std::to_string(o.onnx_opset) +
                                    " has no per-channel DequantizeLinear; int8 QDQ needs 13");
  if (o.activation_bits != 0 && (o.activation_bits < 2 || o.activation_bits > 8))
    throw SettingError("activation_bits", "activation_bits must be in [2, 8]");
  if (o.calibration_samples <= 0)
    throw SettingError("calibration_samples", "calibration_samples must be positive");
  if (o.agreement_samples < 0)
    throw SettingError("agreement_samples", "agreement_samples must not be negative");
  std::error_code ec;
  if (std::filesystem::equivalent(o.out, o.model, ec))
    throw SettingError(
        "out", "out " + o.out.string() + " is the input model; write the .vdm to another file");

  const train::LoadedModel loaded = train::load_model(o.model);
  nn::Sequential& model = *loaded.model;
  ExportOptions eo;
  eo.precision = o.precision;
  eo.sparse = o.sparse;
  const bool int8 = o.precision == Precision::int8;
  if (loaded.checkpoint && int8 && !o.ignore_qat)
    eo.activation_quant = learned_activations(*loaded.checkpoint, o.model, o.activation_bits);
  model.eval();
  if (int8 && eo.activation_quant.empty() && !o.calibration)
    throw SettingError("calibration",
                       "precision int8 needs calibration (a Fashion-MNIST directory) unless the "
                       "checkpoint comes from quantization-aware training");
  eo.name = o.model.substr(o.model.find_last_of('/') + 1);
  eo.source = o.model;
  const train::Checkpoint* ckpt = loaded.checkpoint ? &*loaded.checkpoint : nullptr;
  data::DataOptions data = o.calibration.value_or(data::DataOptions{});
  const InputConvention input = input_convention(ckpt, data, o.model);
  if (input.pixels) {
    eo.byte_scale = 1.f / (255.f * input.normalization.std[0]);
    eo.byte_offset = -input.normalization.mean[0] / input.normalization.std[0];
  } else {
    fold_input_normalization(model, input.normalization, o.model);
    eo.first_layer_fp32 = true;
  }
  // Calibration and agreement feed the exported model's own inputs.
  const data::DataOptions model_inputs = exported_model_inputs(ckpt, data, o.model);

  ExportReport report;
  report.learned = eo.activation_quant;
  std::vector<float> calibration;
  if (int8 && o.calibration && eo.activation_quant.empty()) {
    auto split = load_for_model(model, model_inputs, data::Parts::train, o.model);
    calibration = take(*split.train, o.calibration_samples, nullptr);
    report.calibration_images = static_cast<std::size_t>(
        std::min<std::int64_t>(o.calibration_samples, split.train->size()));
  }
  if (!onnx) {
    report.result =
        export_vdm_file(model, eo, calibration, report.calibration_images, o.out.string());
    if (int8 && o.agreement_samples > 0 && o.calibration)
      report.agreement = measure_agreement(model, eo, report.result, o, model_inputs);
    return report;
  }
  interop::OnnxExportOptions x;
  x.name = eo.name;
  x.opset = o.onnx_opset;
  x.metadata = {{"verdant.source", o.model},
                {"verdant.input_normalization", input_normalization_text(input)}};
  std::shared_ptr<nn::Sequential> onnx_model = loaded.model;
  if (int8) {
    if (eo.first_layer_fp32)
      throw Error(o.model +
                  ": int8 ONNX needs every layer quantized, but this model's first layer stays "
                  "fp32 (it takes raw features); export it as fp32 ONNX or as an int8 .vdm");
    // The .vdm int8 model fixes the quantization (calibrated or learned, widened where the
    // runtime needs it); the QDQ file states the same numbers on the folded layers.
    report.result = export_vdm(model, eo, calibration, report.calibration_images);
    x.int8 = qdq_layers(report.result.bytes);
    onnx_model = nn::fold_batch_norm(model);
  }
  const std::vector<std::uint8_t> bytes = interop::export_onnx(*onnx_model, x);
  write_file_atomic(o.out, std::span<const std::uint8_t>(bytes.data(), bytes.size()));
  std::vector<std::uint8_t> vdm_bytes = std::move(report.result.bytes);
  report.result.bytes = bytes;
  if (int8 && o.agreement_samples > 0 && o.calibration) {
    ExportResult vdm{.bytes = std::move(vdm_bytes)};
    report.agreement = measure_agreement(model, eo, vdm, o, model_inputs);
  }
  return report;
}

data::DataOptions exported_model_inputs(const train::Checkpoint* checkpoint, data::DataOptions data,
                                        const std::string& origin) {
  if (!input_convention(checkpoint, data, origin).pixels)
    data.normalization = data::Normalization{};
  return data;
}

}  // namespace verdant::exporter

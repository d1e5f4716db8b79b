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

Agreement measure_agreement(nn::Sequential& model, const ExportOptions& int8_options,
                            const ExportResult& int8_result, const ExportJobOptions& o) {
  auto split = data::load_split({.location = o.calibration}, data::Parts::test);
  train::check_input_shape(model, split.test->sample_shape(), o.model,
                           "the calibration data (" + split.description + ")");
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
  if (int8 && eo.activation_quant.empty() && o.calibration.empty())
    throw SettingError("calibration",
                       "precision int8 needs calibration (a Fashion-MNIST directory) unless the "
                       "checkpoint comes from quantization-aware training");
  eo.name = o.model.substr(o.model.find_last_of('/') + 1);
  eo.source = o.model;
  // The engine normalises pixels with Fashion-MNIST's mean and std; devices get the same.
  eo.byte_scale = 1.f / (255.f * data::kFashionMnistStd);
  eo.byte_offset = -data::kFashionMnistMean / data::kFashionMnistStd;

  ExportReport report;
  report.learned = eo.activation_quant;
  std::vector<float> calibration;
  if (int8 && !o.calibration.empty() && eo.activation_quant.empty()) {
    auto split = data::load_split({.location = o.calibration}, data::Parts::train);
    train::check_input_shape(model, split.train->sample_shape(), o.model,
                             "the calibration data (" + split.description + ")");
    calibration = take(*split.train, o.calibration_samples, nullptr);
    report.calibration_images = static_cast<std::size_t>(
        std::min<std::int64_t>(o.calibration_samples, split.train->size()));
  }
  if (!onnx) {
    report.result =
        export_vdm_file(model, eo, calibration, report.calibration_images, o.out.string());
  } else {
    interop::OnnxExportOptions x;
    x.name = eo.name;
    x.opset = o.onnx_opset;
    char norm[128];
    std::snprintf(norm, sizeof norm, "(pixel / 255 - %g) / %g", double{data::kFashionMnistMean},
                  double{data::kFashionMnistStd});
    x.metadata = {{"verdant.source", o.model}, {"verdant.input_normalization", norm}};
    std::shared_ptr<nn::Sequential> onnx_model = loaded.model;
    if (int8) {
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
    if (int8 && o.agreement_samples > 0 && !o.calibration.empty()) {
      ExportResult vdm{.bytes = std::move(vdm_bytes)};
      report.agreement = measure_agreement(model, eo, vdm, o);
    }
    return report;
  }
  if (int8 && o.agreement_samples > 0 && !o.calibration.empty())
    report.agreement = measure_agreement(model, eo, report.result, o);
  return report;
}

}  // namespace verdant::exporter

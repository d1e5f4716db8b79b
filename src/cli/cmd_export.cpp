// `verdant export`: a checkpoint (or a built-in model, untrained) -> .vdm edge model.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <numeric>
#include <string>

#include "command.hpp"
#include "verdant/core/error.hpp"
#include "verdant/data/dataset.hpp"
#include "verdant/data/split.hpp"
#include "verdant/export/export.hpp"
#include "verdant/runtime/model.hpp"
#include "verdant/train/checkpoint.hpp"
#include "verdant/train/model_source.hpp"

namespace verdant::cli {
namespace {

struct ExportFlags {
  std::string model;
  std::string out;
  std::string precision = "fp32";
  std::string calibration;
  std::int64_t calibration_samples = 1000;
  std::string sparse = "auto";
  std::int64_t agreement_samples = 10000;
  int activation_bits = 0;  // of the QAT simulation; 0: from the checkpoint's recipe
  bool ignore_qat = false;
};

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

int run_export(const ExportFlags& f) {
  exporter::ExportOptions o;
  if (f.precision == "fp32")
    o.precision = exporter::Precision::fp32;
  else if (f.precision == "int8")
    o.precision = exporter::Precision::int8;
  else
    throw UsageError("--precision: '" + f.precision + "' is not fp32 or int8");
  if (f.sparse == "auto")
    o.sparse = exporter::SparseMode::automatic;
  else if (f.sparse == "never")
    o.sparse = exporter::SparseMode::never;
  else if (f.sparse == "always")
    o.sparse = exporter::SparseMode::always;
  else
    throw UsageError("--sparse: '" + f.sparse + "' is not auto, never or always");
  if (f.activation_bits != 0 && (f.activation_bits < 2 || f.activation_bits > 8))
    throw UsageError("--activation-bits must be in [2, 8]");
  if (f.calibration_samples <= 0) throw UsageError("--calibration-samples must be positive");
  if (f.agreement_samples < 0) throw UsageError("--agreement-samples must not be negative");

  std::error_code ec;
  if (std::filesystem::equivalent(f.out, f.model, ec))
    throw SettingError("out", "out " + f.out + " is the input model; write to another file");
  const train::LoadedModel loaded = train::load_model(f.model);
  std::shared_ptr<nn::Sequential> model = loaded.model;
  std::vector<exporter::ActivationQuant> qat;
  if (loaded.checkpoint && o.precision == exporter::Precision::int8 && !f.ignore_qat)
    qat = exporter::learned_activations(*loaded.checkpoint, f.model, f.activation_bits);
  model->eval();
  if (o.precision == exporter::Precision::int8 && qat.empty() && f.calibration.empty())
    throw UsageError(
        "--precision int8 needs --calibration DIR (Fashion-MNIST IDX files) unless the "
        "checkpoint comes from quantization-aware training");
  o.activation_quant = qat;
  o.name = f.model.substr(f.model.find_last_of('/') + 1);
  o.source = f.model;
  // The engine normalises pixels with Fashion-MNIST's mean and std; devices get the same.
  o.byte_scale = 1.f / (255.f * data::kFashionMnistStd);
  o.byte_offset = -data::kFashionMnistMean / data::kFashionMnistStd;

  std::vector<float> cal;
  std::size_t cal_n = 0;
  if (!f.calibration.empty() && qat.empty()) {
    auto split = data::load_split({.location = f.calibration}, data::Parts::train);
    cal = take(*split.train, f.calibration_samples, nullptr);
    cal_n = static_cast<std::size_t>(
        std::min<std::int64_t>(f.calibration_samples, split.train->size()));
  }
  exporter::ExportResult r = exporter::export_vdm_file(*model, o, cal, cal_n, f.out);
  std::printf("wrote %s: %zu bytes, %s, model %s\n", f.out.c_str(), r.bytes.size(),
              f.precision.c_str(), f.model.c_str());
  for (std::size_t i = 0; i < r.layers.size(); ++i)
    std::printf("  %zu %s\n", i, r.layers[i].description.c_str());
  if (o.precision == exporter::Precision::int8 && cal_n > 0)
    std::printf("calibration: min-max over %zu training images from %s\n", cal_n,
                f.calibration.c_str());
  if (!qat.empty()) {
    std::printf("activations: %zu ranges learned by quantization-aware training (%d-bit%s)\n",
                qat.size(), qat[0].bits,
                qat[0].bits == 7 ? ", the runtime's grid: used as learned"
                                 : "; re-gridded to the runtime's 7 bits, so the runtime follows "
                                   "the simulation less closely: train with activation_bits: 7");
  }

  // Agreement of int8 with fp32 predictions on the test set (same runtime, same inputs).
  if (o.precision == exporter::Precision::int8 && f.agreement_samples > 0 &&
      !f.calibration.empty()) {
    auto split = data::load_split({.location = f.calibration}, data::Parts::test);
    std::vector<std::int32_t> labels;
    const auto xs = take(*split.test, f.agreement_samples, &labels);
    exporter::ExportOptions fo = o;
    fo.precision = exporter::Precision::fp32;
    auto fp32 = load_vdm(exporter::export_vdm(*model, fo, {}, 0).bytes);
    auto int8 = load_vdm(r.bytes);
    const std::size_t n = labels.size(), per = fp32->input_size();
    std::size_t agree = 0, ok32 = 0, ok8 = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const int a = fp32->predict(xs.data() + i * per, per);
      const int b = int8->predict(xs.data() + i * per, per);
      agree += a == b;
      ok32 += a == labels[i];
      ok8 += b == labels[i];
    }
    std::printf(
        "int8 vs fp32 on %zu test images: %.2f%% same predictions; accuracy fp32 %.2f%%, "
        "int8 %.2f%%\n",
        n, 100.0 * agree / n, 100.0 * ok32 / n, 100.0 * ok8 / n);
    if (!qat.empty()) {
      std::size_t same = 0, ok_sim = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const auto logits = exporter::simulate_fake_quant(*model, qat, xs.data() + i * per, per);
        const int s =
            static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        same += s == int8->predict(xs.data() + i * per, per);
        ok_sim += s == labels[i];
      }
      std::printf(
          "int8 runtime vs QAT simulation (fake-quant) on %zu test images: %.2f%% same "
          "predictions; accuracy simulated %.2f%%\n",
          n, 100.0 * same / n, 100.0 * ok_sim / n);
    }
  }
  return 0;
}

const bool registered = register_command(
    {"export",
     "Export a model to a .vdm edge model (fp32 or int8, sparse layers as CSR or 4x4 blocks)",
     [](CLI::App& sub) -> Runner {
       auto f = std::make_shared<ExportFlags>();
       sub.add_option("model", f->model,
                      "A .vckpt checkpoint, or a built-in model name (untrained)")
           ->required();
       sub.add_option("--out", f->out, "Output .vdm file (written atomically)")->required();
       sub.add_option("--precision", f->precision,
                      "fp32: exact engine outputs, 4 bytes/weight; int8: ~4x smaller and faster, "
                      "per-channel weights, calibrated activations")
           ->capture_default_str();
       sub.add_option("--calibration", f->calibration,
                      "Fashion-MNIST directory: training images calibrate int8 activation ranges, "
                      "test images measure int8/fp32 agreement");
       sub.add_option("--calibration-samples", f->calibration_samples,
                      "Training images for calibration")
           ->capture_default_str();
       sub.add_option("--sparse", f->sparse,
                      "auto: sparse int8 for layers with >= 50% zero weights (4x4 blocks when the "
                      "zeros come in "
                      "blocks, else CSR); never; always")
           ->capture_default_str();
       sub.add_option("--activation-bits", f->activation_bits,
                      "Bits the QAT simulated activations with (default: read from the "
                      "checkpoint's recipe); 7 is the runtime's grid");
       sub.add_flag("--ignore-qat", f->ignore_qat,
                    "Calibrate activations (min-max) even when the checkpoint has QAT ranges");
       sub.add_option("--agreement-samples", f->agreement_samples,
                      "Test images for the int8/fp32 (and int8/QAT-simulation) agreement check "
                      "(0: skip)")
           ->capture_default_str();
       return [f] { return run_export(*f); };
     }});

}  // namespace
}  // namespace verdant::cli

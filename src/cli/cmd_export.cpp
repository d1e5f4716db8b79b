// `verdant export`: a checkpoint, an .onnx file (or a built-in model, untrained) -> .vdm edge
// model, or ONNX (fp32, or int8 QDQ) with --format onnx.
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "command.hpp"
#include "options.hpp"
#include "verdant/export/run.hpp"

namespace verdant::cli {
namespace {

struct ExportCommand {
  exporter::ExportJobOptions job;
  data::DataOptions calibration;
  CLI::Option* calibration_flag = nullptr;
};

int export_and_report(ExportCommand& c) {
  if (c.calibration_flag->count() > 0) c.job.calibration = c.calibration;
  const exporter::ExportJobOptions& o = c.job;
  const exporter::ExportReport r = exporter::run_export(o);
  const bool int8 = o.precision == exporter::Precision::int8;
  if (o.format == exporter::Format::onnx)
    std::printf("wrote %s: %zu bytes, ONNX opset %lld, %s, model %s\n", o.out.c_str(),
                r.result.bytes.size(), static_cast<long long>(o.onnx_opset),
                int8 ? "int8 QDQ (the .vdm's quantization)" : "fp32", o.model.c_str());
  else
    std::printf("wrote %s: %zu bytes, %s, model %s\n", o.out.c_str(), r.result.bytes.size(),
                int8 ? "int8" : "fp32", o.model.c_str());
  for (std::size_t i = 0; i < r.result.layers.size(); ++i)
    std::printf("  %zu %s\n", i, r.result.layers[i].description.c_str());
  for (const auto& note : r.result.notes) std::printf("  note: %s\n", note.c_str());
  if (r.calibration_images > 0)
    std::printf("calibration: min-max over %zu training samples from %s\n", r.calibration_images,
                o.calibration->location.c_str());
  if (!r.learned.empty())
    std::printf("activations: %zu ranges learned by quantization-aware training (%d-bit%s)\n",
                r.learned.size(), r.learned[0].bits,
                r.learned[0].bits == 7
                    ? ", the runtime's grid: used as learned"
                    : "; re-gridded to the runtime's 7 bits, so the runtime follows the simulation "
                      "less closely: train with activation_bits: 7");
  if (const auto& a = r.agreement) {
    std::printf(
        "int8 vs fp32 on %zu test samples: %.2f%% same predictions; accuracy fp32 %.2f%%, "
        "int8 %.2f%%\n",
        a->samples, 100.0 * a->same, 100.0 * a->fp32_accuracy, 100.0 * a->int8_accuracy);
    if (a->simulation_same)
      std::printf(
          "int8 runtime vs QAT simulation (fake-quant) on %zu test samples: %.2f%% same "
          "predictions; accuracy simulated %.2f%%\n",
          a->samples, 100.0 * *a->simulation_same, 100.0 * *a->simulation_accuracy);
  }
  return 0;
}

const bool registered = register_command(
    {"export",
     "Export a model to a .vdm edge model (fp32 or int8, sparse layers as CSR or 4x4 blocks) "
     "or to ONNX (fp32 or int8 QDQ)",
     [](CLI::App& sub) -> Runner {
       auto c = std::make_shared<ExportCommand>();
       auto* o = &c->job;
       sub.add_option("model", o->model,
                      "A checkpoint, an .onnx file, or a built-in model name (untrained)")
           ->required();
       sub.add_option("--out", o->out, "Output .vdm or .onnx file (written atomically)")
           ->required();
       const std::map<std::string, exporter::Format> formats{{"vdm", exporter::Format::vdm},
                                                             {"onnx", exporter::Format::onnx}};
       sub.add_option("--format", o->format,
                      "vdm: Verdant's edge runtime; onnx: any ONNX runtime (int8 as "
                      "QuantizeLinear/DequantizeLinear pairs)")
           ->transform(CLI::CheckedTransformer(formats))
           ->default_str("vdm");
       sub.add_option("--opset", o->onnx_opset, "ONNX opset (11 to 17; int8 needs 13 or more)")
           ->check(CLI::Range(11, 17))
           ->capture_default_str();
       const std::map<std::string, exporter::Precision> precisions{
           {"fp32", exporter::Precision::fp32}, {"int8", exporter::Precision::int8}};
       sub.add_option("--precision", o->precision,
                      "fp32: exact engine outputs, 4 bytes/weight; int8: ~4x smaller and faster, "
                      "per-channel weights, calibrated activations")
           ->transform(CLI::CheckedTransformer(precisions))
           ->default_str("fp32");
       c->calibration_flag = add_data_options(
           sub, c->calibration,
           {.location_flag = "--calibration",
            .location_help = "Data (any format train reads): training samples calibrate int8 "
                             "activation ranges, test samples measure int8/fp32 agreement",
            .limit_train = false,
            .limit_test = false});
       sub.add_option("--calibration-samples", o->calibration_samples,
                      "Training images for calibration")
           ->check(positive())
           ->capture_default_str();
       const std::map<std::string, exporter::SparseMode> sparse_modes{
           {"auto", exporter::SparseMode::automatic},
           {"never", exporter::SparseMode::never},
           {"always", exporter::SparseMode::always}};
       sub.add_option("--sparse", o->sparse,
                      "auto: sparse int8 for layers with >= 50% zero weights (4x4 blocks when the "
                      "zeros come in blocks, else CSR); never; always")
           ->transform(CLI::CheckedTransformer(sparse_modes))
           ->default_str("auto");
       sub.add_option("--activation-bits", o->activation_bits,
                      "Bits the QAT simulated activations with (default: read from the "
                      "checkpoint's recipe); 7 is the runtime's grid")
           ->check(CLI::Range(2, 8));
       sub.add_flag("--ignore-qat", o->ignore_qat,
                    "Calibrate activations (min-max) even when the checkpoint has QAT ranges");
       sub.add_option("--agreement-samples", o->agreement_samples,
                      "Test images for the int8/fp32 (and int8/QAT-simulation) agreement check "
                      "(0: skip)")
           ->check(non_negative())
           ->capture_default_str();
       return [c] { return export_and_report(*c); };
     }});

}  // namespace
}  // namespace verdant::cli

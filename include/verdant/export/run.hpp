#pragma once
// `verdant export` as a library call: loads a model, calibrates int8 on training images (or
// uses the ranges quantization-aware training learned), writes the .vdm atomically after the
// runtime has validated it, and measures how often int8 agrees with fp32 on test images. With
// format onnx it writes ONNX instead: fp32, or int8 as QDQ carrying exactly the .vdm's
// quantization (the same weight scales and activation ranges).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "verdant/data/split.hpp"
#include "verdant/export/export.hpp"

namespace verdant::train {
struct Checkpoint;
}

namespace verdant::exporter {

enum class Format { vdm, onnx };

struct ExportJobOptions {
  std::string model;  // a checkpoint, an .onnx file, or a built-in name or YAML file (untrained)
  std::filesystem::path out;
  Format format = Format::vdm;
  std::int64_t onnx_opset = 13;  // format onnx: opset of the file (int8 QDQ needs >= 13)
  Precision precision = Precision::fp32;
  SparseMode sparse = SparseMode::automatic;
  // Data (any format `train` reads): training samples calibrate int8 activation ranges, test
  // samples measure int8/fp32 agreement. None: no calibration (int8 then needs QAT ranges).
  // It is loaded with the normalization and classes the model was trained with.
  std::optional<data::DataOptions> calibration;
  std::int64_t calibration_samples = 1000;
  std::int64_t agreement_samples = 10000;  // 0: no agreement check
  int activation_bits = 0;  // the grid QAT simulated; 0: read it from the checkpoint's recipe
  bool ignore_qat = false;  // calibrate even when the checkpoint has QAT ranges
};

struct Agreement {
  std::size_t samples = 0;
  double same = 0;  // fraction of int8 predictions equal to fp32's
  double fp32_accuracy = 0, int8_accuracy = 0;
  // Against the QAT model's fake-quant simulation, when it has QAT ranges.
  std::optional<double> simulation_same, simulation_accuracy;
};

struct ExportReport {
  ExportResult result;
  std::size_t calibration_images = 0;    // used for min-max ranges (0: none)
  std::vector<ActivationQuant> learned;  // QAT ranges used instead of calibration
  std::optional<Agreement> agreement;
};

// Settings are SettingErrors naming the setting ("out", "calibration"); the output may not be
// the input. The model takes raw inputs: pixel bytes through the file's byte transform, other
// features with the training normalization folded into the first layer. On any failure
// nothing is written and an existing `out` is left as it was.
ExportReport run_export(const ExportJobOptions& options);

// Options that load `data` as the model exported from `checkpoint` takes it: normalized as it
// was trained for pixels (the .vdm's byte transform does that on the device), raw for other
// features (their normalization is folded into the first layer).
data::DataOptions exported_model_inputs(const train::Checkpoint* checkpoint, data::DataOptions data,
                                        const std::string& origin);

}  // namespace verdant::exporter

#pragma once
// ONNX export of an nn::Sequential: fp32 (every layer as its ONNX operator), or int8 as QDQ
// (QuantizeLinear/DequantizeLinear pairs around float operators, the form ONNX Runtime and
// TensorRT turn into integer kernels). The layout is described in docs/onnx.md.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "verdant/nn/module.hpp"

namespace verdant::interop {

// Asymmetric uint8 activation quantization, real = scale * (q - zero_point).
struct QdqActivation {
  float scale = 1.f;
  std::int32_t zero_point = 0;
};

// One per Linear/Conv2d, in order: how its input is quantized, and its per-output-channel
// symmetric int8 weight scales (zero point 0). Empty scales: max|w| / 127 per channel.
struct QdqLayer {
  QdqActivation input;
  std::vector<float> weight_scale;
};

struct OnnxExportOptions {
  std::string name = "verdant";  // graph name
  // Opset of the default domain; QDQ's per-channel DequantizeLinear needs 13.
  std::int64_t opset = 13;
  // Empty: fp32. Otherwise one entry per Linear/Conv2d (int8 QDQ). The model must then hold no
  // BatchNorm (fold it first: nn::fold_batch_norm), as integer kernels would.
  std::vector<QdqLayer> int8;
  // Stored as the model's metadata_props (e.g. the input normalisation).
  std::vector<std::pair<std::string, std::string>> metadata;
};

// The ONNX file's bytes. The batch dimension is dynamic ("N"); the input is the model's
// normalised float input, the output its logits. Pruned weights are written as they are (zeros
// stay zeros); a structurally smaller model is a smaller graph. The result passes
// onnx::checker and strict shape inference (onnx.checker.check_model(full_check=True)), and an
// fp32 file imports back to the same layers; else verdant::Error. Layers ONNX export does not
// know -> verdant::Error naming the layer.
std::vector<std::uint8_t> export_onnx(nn::Sequential& model, const OnnxExportOptions& options);

}  // namespace verdant::interop

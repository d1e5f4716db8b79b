#pragma once
// Export of a trained engine model (nn::Sequential) to the .vdm edge format
// (docs/vdm-format.md): fp32, or int8 with per-channel weights and min-max calibrated
// activations; pruned layers (mostly exact zeros) are stored as int8 CSR, or as 4x4 blocks
// when they were pruned in blocks.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace verdant::nn {
class Sequential;
}
namespace verdant::train {
struct Checkpoint;
}

namespace verdant::exporter {

enum class Precision { fp32, int8 };
enum class SparseMode { automatic, never, always };

// Activation quantization learned by quantization-aware training (module compress): one entry
// per Linear/Conv2d, for that layer's input (real = scale * (q - zero_point)). The runtime
// computes on a 7-bit grid (q in [0, 127]); `bits` says which grid the training simulated.
struct ActivationQuant {
  float scale = 1.f;
  std::int32_t zero_point = 0;
  int bits = 7;
};

struct ExportOptions {
  Precision precision = Precision::fp32;
  SparseMode sparse = SparseMode::automatic;
  double sparse_threshold = 0.5;  // automatic: sparse when at least this fraction of weights is 0
  // How input bytes (pixels) become model inputs: byte * byte_scale + byte_offset.
  float byte_scale = 1.f / 255.f;
  float byte_offset = 0.f;
  std::string name;
  // Names the model in errors, e.g. the checkpoint's path.
  std::string source;
  // int8 only: keep the first weight layer in fp32. Raw tabular features differ in range from
  // one feature to the next, which one int8 input scale cannot hold.
  bool first_layer_fp32 = false;
  // int8 only. When set (one per Linear/Conv2d), these replace calibration: 7-bit ranges are
  // used exactly as learned; 8-bit ones are re-gridded onto [0, 127] over the same real range
  // (then the runtime no longer follows the simulation exactly).
  std::vector<ActivationQuant> activation_quant;
};

struct LayerReport {
  std::string description;  // e.g. "conv2d 1->20 k5 relu maxpool2: int8, 12.5% zeros"
};

struct ExportResult {
  std::vector<std::uint8_t> bytes;
  std::vector<LayerReport> layers;
  std::vector<std::string> notes;  // what was folded, densified or left out
};

// `calibration` holds `calibration_count` model inputs back to back (needed for int8; min-max
// ranges of every layer's output are taken over them). BatchNorm after a Linear/Conv2d is
// folded into it; grouped (depthwise) and dilated convolutions are stored as equivalent dense
// ones; average pooling over the whole image (global) is the runtime's avg pool; a final
// Softmax/LogSoftmax is left out. Unsupported layers (other activations, a BatchNorm that
// cannot be folded, pooling not after a Conv2d, padded pooling) -> verdant::Error naming the
// layer; a NaN or infinite parameter -> verdant::Error naming it and options.source.
ExportResult export_vdm(nn::Sequential& model, const ExportOptions& options,
                        const std::vector<float>& calibration, std::size_t calibration_count);

// export_vdm, then the result is loaded through the runtime's own validation and only then
// written to `path` (atomically). Any failure -> verdant::Error (one line) and `path` is left
// as it was: no file, or the previous one.
ExportResult export_vdm_file(nn::Sequential& model, const ExportOptions& options,
                             const std::vector<float>& calibration, std::size_t calibration_count,
                             const std::string& path);

// The activation ranges `verdant compress` learned (metadata compress.activation.<i>.scale /
// .zero_point), one per Linear/Conv2d input; empty when the checkpoint has none. `bits` is
// the grid the training simulated; 0 reads it from the recipe file the checkpoint names
// (UsageError when that is not readable). Bad metadata -> Error naming `file`.
std::vector<ActivationQuant> learned_activations(const train::Checkpoint& checkpoint,
                                                 const std::string& file, int bits);

// The quantization-aware model's simulated forward pass, as compress's FakeQuantSequential runs
// it in eval mode: each Linear/Conv2d input is fake-quantized (compress::fake_quantize) with
// its ActivationQuant on its own grid, weights are used as stored (QAT leaves them on their
// int8 grid). Returns the logits of one input.
std::vector<float> simulate_fake_quant(nn::Sequential& model,
                                       const std::vector<ActivationQuant>& activation_quant,
                                       const float* input, std::size_t input_n);

}  // namespace verdant::exporter

#pragma once
// Builds .vdm files from float weights: used by `verdant export`, by `verdant-edge
// finetune` (through replace_layer_weights) and by tests and benchmarks. Standard C++ only;
// not on the inference hot path, so it allocates freely. Errors return an empty result and
// one line in *error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "verdant/runtime/vdm_format.hpp"

namespace verdant::runtime {

class Model;

struct LayerSpec {
  vdm::LayerKind kind = vdm::LayerKind::linear;
  vdm::Encoding encoding = vdm::Encoding::f32;  // f32, int8 or int8_csr (not for flatten)
  vdm::Activation activation = vdm::Activation::none;
  vdm::Pool pool = vdm::Pool::none;
  std::uint32_t pool_size = 0, pool_stride = 0;
  std::uint32_t stride = 1, padding = 0, kernel_h = 1, kernel_w = 1;
  std::uint32_t out_c = 0;    // output channels / features
  std::vector<float> weight;  // [out_c][K], PyTorch layout (K = in_c * kernel_h * kernel_w)
  std::vector<float> bias;    // [out_c]
  // Real range of this layer's output (after the activation), from calibration. Used to
  // quantize it when an int8 layer produces u8 or the next layer is int8.
  float out_min = 0.f, out_max = 0.f;
  // Fixed output quantization (e.g. learned by quantization-aware training on the runtime's
  // 7-bit grid): used as given instead of deriving it from [out_min, out_max].
  bool out_fixed = false;
  float out_scale = 0.f;
  std::int32_t out_zero_point = 0;
  bool quantize_output = true;  // int8 layers: false emits f32 (dequantized accumulators)
};

struct ModelSpec {
  std::uint32_t input_c = 1, input_h = 1, input_w = 1;
  float input_min = 0.f, input_max = 1.f;  // range of the model input (for an int8 first layer)
  bool input_fixed = false;                // as LayerSpec::out_fixed, for the model input
  float input_scale = 0.f;
  std::int32_t input_zero_point = 0;
  float byte_scale = 1.f / 255.f, byte_offset = 0.f;  // see FileHeader
  std::string name;
  std::vector<LayerSpec> layers;
};

struct QuantParams {
  float scale = 1.f;
  std::int32_t zero_point = 0;
};
// Asymmetric 7-bit activation quantization of [lo, hi] (widened to include 0).
QuantParams activation_qparams(float lo, float hi);
// Symmetric per-row int8: scales[r] = max|w_r| / 127, q = round(w / scale).
void quantize_rows(const float* w, std::size_t rows, std::size_t k, std::int8_t* q, float* scales);

// Serializes the model. Shapes follow from the input shape and each layer's geometry.
std::vector<std::uint8_t> write_vdm(const ModelSpec& spec, std::string* error);

// A new file equal to the model's except for layer `layer`'s weights and bias, given in
// float ([out_c][K], [out_c]) and re-encoded in the layer's own encoding (int8 layers are
// requantized per channel; CSR layers keep their sparsity pattern). *patched_bytes receives
// the bytes of the layer's tensors, i.e. the delta a device exchanges.
std::vector<std::uint8_t> replace_layer_weights(const Model& model, std::size_t layer,
                                                const std::vector<float>& weight,
                                                const std::vector<float>& bias,
                                                std::size_t* patched_bytes, std::string* error);
// The layer's weights and bias in float (dequantized for int8 layers), [out_c][K] and [out_c].
bool layer_weights(const Model& model, std::size_t layer, std::vector<float>* weight,
                   std::vector<float>* bias, std::string* error);

}  // namespace verdant::runtime

#pragma once
// Models shared by the tests of the layers, the exporters and ONNX: one with every layer type,
// and batch-norm statistics that make folding and exporting them matter.
#include <cstdint>
#include <string>

#include "verdant/nn/module.hpp"

namespace verdant::test_support {

// Every layer type the model YAML knows (and ONNX import and export map), on [4, 12, 12]:
// 12 -> conv s2 d2 (span 5): (12 - 5) / 2 + 1 = 4 -> maxpool 2 -> avgpool 3 pad 1 -> avgpool 2
// -> 1, then three Linear layers down to 3 outputs.
inline constexpr const char* kEveryLayerYaml = R"(input: [4, 12, 12]
layers:
  - conv2d: {out_channels: 8, kernel: 3, padding: 1, groups: 2}
  - batchnorm2d: {eps: 0.001, momentum: 0.2}
  - leakyrelu: {negative_slope: 0.125}
  - conv2d: {out_channels: 8, kernel: 3, padding: 1, groups: 8, bias: false}
  - relu
  - conv2d: {out_channels: 6, kernel: 3, stride: 2, dilation: 2}
  - gelu
  - maxpool2d: {kernel: 2}
  - avgpool2d: {kernel: 3, stride: 1, padding: 1}
  - avgpool2d: {kernel: 2}
  - flatten
  - dropout: {p: 0.25}
  - linear: {out_features: 5}
  - batchnorm1d
  - tanh
  - linear: {out_features: 3}
  - sigmoid
  - linear: {out_features: 3}
  - logsoftmax
  - softmax
)";

// Sets every BatchNorm's running mean and variance (the f32 buffers) to 0.5 + step * i, so
// that eval-mode normalisation is not the identity.
inline void set_batch_norm_statistics(nn::Module& model, float step = 0.05f) {
  for (auto& [name, b] : model.named_buffers())
    if (b.dtype() == DType::f32)
      for (std::int64_t i = 0; i < b.numel(); ++i) b.data<float>()[i] = 0.5f + step * i;
}

}  // namespace verdant::test_support

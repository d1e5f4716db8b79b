#pragma once
// Built-in models, YAML layer stacks, and a summary for `verdant info`.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "verdant/nn/module.hpp"

namespace verdant::nn {

// "mlp": LeNet-300-100 (Flatten, 784-300-100-10 with ReLU; 266,610 parameters).
// "lenet5": Caffe LeNet-5 (conv 20@5x5, ReLU, max-pool 2, conv 50@5x5, ReLU, max-pool 2,
// Flatten, fc 500, ReLU, fc 10; 431,080 parameters). Input N x 1 x 28 x 28.
// Unknown name -> verdant::UsageError listing the valid names.
std::shared_ptr<Sequential> make_model(const std::string& name,
                                       Generator& gen = autograd::default_generator());
// The same architecture adapted to the data: `input` per sample ([C, H, W] for lenet5, which
// needs at least 16x16) and `classes` outputs.
std::shared_ptr<Sequential> make_model(const std::string& name, const Shape& input,
                                       std::int64_t classes,
                                       Generator& gen = autograd::default_generator());
std::vector<std::string> model_names();

// A layer stack from a YAML file:
//   input: [1, 28, 28]
//   layers:
//     - conv2d: {out_channels: 20, kernel: 5, stride: 1, padding: 0, bias: true}
//       (optionally groups: G (depthwise: G = input channels) and dilation: D)
//     - relu | tanh | sigmoid | gelu | flatten | softmax | logsoftmax (the last two: flat input)
//     - leakyrelu: {negative_slope: 0.01}
//     - maxpool2d: {kernel: 2, stride: 2, padding: 0}   (avgpool2d likewise)
//     - batchnorm1d | batchnorm2d   (optionally {eps: 1e-5, momentum: 0.1})
//     - dropout: {p: 0.5}
//     - linear: {out_features: 10, bias: true}
// In-shapes are inferred from `input`. Errors (unknown layer or key, bad value, shape that
// does not fit) -> verdant::Error "FILE:LINE: message".
std::shared_ptr<Sequential> load_model_yaml(const std::filesystem::path& path,
                                            Generator& gen = autograd::default_generator());
// Same, from text; `origin` names the source in error messages.
std::shared_ptr<Sequential> parse_model_yaml(const std::string& text, const std::string& origin,
                                             Generator& gen = autograd::default_generator());

// The inverse of parse_model_yaml: a Sequential of the layers above as YAML text, so a
// checkpoint can rebuild it. `out_features` overrides the output size of named children (a
// structurally pruned model is written smaller). Other layer types: verdant::Error.
std::string model_yaml(const Sequential& model,
                       const std::map<std::string, std::int64_t>& out_features = {});

// A copy of `model` for inference in which every BatchNorm directly after a Linear or Conv2d
// is folded into that layer (w' = w * g, b' = (b - mean) * g + beta, g = gamma / sqrt(var +
// eps), per output channel, as eval mode computes it); the layer gains a bias if it had none.
// Other layers are shared with `model`, not copied. Other BatchNorms stay.
std::shared_ptr<Sequential> fold_batch_norm(const Sequential& model);

// A built-in name, or a path to a .yaml/.yml file.
std::shared_ptr<Sequential> load_model(const std::string& name_or_path,
                                       Generator& gen = autograd::default_generator());

struct LayerSummary {
  std::string name;  // child name in the Sequential ("0", "1", ...)
  std::string type;  // "Conv2d", ...
  std::string details;
  Shape output_shape;  // per sample (batch dimension left out)
  std::int64_t parameters = 0;
  std::int64_t flops = 0;  // forward, per sample; a multiply-add counts as 2
};

struct ModelSummary {
  Shape input_shape;  // per sample
  std::vector<LayerSummary> layers;
  std::int64_t total_parameters = 0;
  std::int64_t total_flops = 0;  // forward, per sample
};

// Runs one zero sample through the model (without recording) to find shapes.
// input_shape is per sample; empty means model.input_shape().
ModelSummary summarize(Sequential& model, Shape input_shape = {});
// A plain-text table of the summary.
std::string format_summary(const ModelSummary& s);

}  // namespace verdant::nn

// `verdant info MODEL`: layers, output shapes, parameter counts and forward FLOPs of a
// built-in model, a YAML model file, the model inside a checkpoint or an ONNX file.
#include <cstdio>
#include <memory>
#include <string>

#include "command.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/train/model_source.hpp"

namespace verdant::cli {
namespace {

int run_info(const std::string& spec) {
  const auto loaded = train::load_model(spec);
  std::printf("model %s\n%s", spec.c_str(),
              nn::format_summary(nn::summarize(*loaded.model)).c_str());
  return 0;
}

const bool registered = register_command(
    {"info", "Describe a model (layers, shapes, parameters, FLOPs)", [](CLI::App& sub) -> Runner {
       auto model = std::make_shared<std::string>("lenet5");
       sub.add_option("model", *model,
                      "Built-in model name (mlp, lenet5), YAML file, checkpoint or .onnx file")
           ->capture_default_str();
       return [model] { return run_info(*model); };
     }});

}  // namespace
}  // namespace verdant::cli

// `verdant info`: placeholder replaced by the engine's model summary.
#include <cstdio>

#include "command.hpp"

namespace verdant::cli {
namespace {
const bool registered = register_command({"info", "Describe a model (parameters, layers, FLOPs)",
                                          [](CLI::App& sub) -> Runner {
                                            auto model = std::make_shared<std::string>("lenet5");
                                            sub.add_option("model", *model, "Model name or file");
                                            return [model] {
                                              std::printf("model %s\n", model->c_str());
                                              return 0;
                                            };
                                          }});
}
}  // namespace verdant::cli

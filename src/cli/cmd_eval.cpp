// `verdant eval`: accuracy and loss of a checkpoint on the Fashion-MNIST test set.
#include <cstdio>
#include <memory>

#include "command.hpp"
#include "options.hpp"
#include "verdant/train/run.hpp"

namespace verdant::cli {
namespace {

int run_eval(const train::EvaluationOptions& o) {
  const train::EvaluationReport r = train::run_evaluation(o);
  std::printf("%s: model %s, %s\n", o.checkpoint.c_str(), r.model_spec.c_str(), r.data.c_str());
  std::printf("test accuracy %.2f%% (%lld/%lld), loss %.4f\n", 100.0 * r.result.accuracy,
              static_cast<long long>(r.result.correct), static_cast<long long>(r.result.samples),
              r.result.loss);
  return 0;
}

const bool registered = register_command(
    {"eval", "Evaluate a checkpoint (or ONNX model) on the Fashion-MNIST test set",
     [](CLI::App& sub) -> Runner {
       auto o = std::make_shared<train::EvaluationOptions>();
       sub.add_option("--checkpoint", o->checkpoint,
                      "A .vckpt file written by `verdant train` (or import), or an .onnx model")
           ->required();
       DataFlags flags;
       flags.limit_train = false;
       add_data_options(sub, o->data, flags);
       sub.add_option("--batch-size", o->batch_size, "Samples per forward pass")
           ->check(positive())
           ->capture_default_str();
       add_threads_option(sub, o->threads);
       sub.add_option("--json", o->json_out, "Also write the result to this JSON file");
       return [o] { return run_eval(*o); };
     }});

}  // namespace
}  // namespace verdant::cli

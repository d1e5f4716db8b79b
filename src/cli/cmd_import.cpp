// `verdant import MODEL.onnx --out MODEL.vckpt`: an ONNX model (e.g. from torch.onnx.export)
// becomes a checkpoint that every other verb reads. (They also take the .onnx file itself.)
#include <cstdio>
#include <memory>

#include "command.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/train/model_source.hpp"

namespace verdant::cli {
namespace {

int run_import(const train::ImportOptions& o) {
  const train::ImportReport r = train::import_to_checkpoint(o);
  std::printf("imported %s (opset %lld%s%s)\n", o.model.c_str(), static_cast<long long>(r.opset),
              r.producer.empty() ? "" : ", from ", r.producer.c_str());
  for (const auto& note : r.notes) std::printf("  %s\n", note.c_str());
  std::printf("%s", nn::format_summary(nn::summarize(*r.model)).c_str());
  std::printf("wrote %s: %zu bytes\n", o.out.c_str(), r.bytes);
  return 0;
}

const bool registered = register_command(
    {"import", "Import an ONNX model (MLP or CNN layer chain) into a Verdant checkpoint",
     [](CLI::App& sub) -> Runner {
       auto o = std::make_shared<train::ImportOptions>();
       sub.add_option("model", o->model, "The .onnx file (external-data files beside it)")
           ->required();
       sub.add_option("--out", o->out, "Checkpoint to write (.vckpt, atomically)")->required();
       return [o] { return run_import(*o); };
     }});

}  // namespace
}  // namespace verdant::cli

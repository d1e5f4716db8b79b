#include "onnx_common.hpp"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <exception>

#include "verdant/core/error.hpp"

namespace verdant::interop::detail {

std::string first_line(const std::string& message) {
  std::string line = message.substr(0, message.find('\n'));
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  return line.empty() ? "(no message)" : line;
}

std::int64_t default_opset(const onnx::ModelProto& model) {
  for (const auto& op : model.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") return op.version();
  return 0;
}

void check_and_infer(onnx::ModelProto& model, const std::string& origin, const std::string& what) {
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    throw Error(origin + ": " + what + " fails onnx.checker: " + first_line(e.what()));
  }
  try {
    onnx::ShapeInferenceOptions strict(/*check_type=*/true, /*strict_mode=*/1,
                                       /*data_prop=*/false);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), strict);
  } catch (const std::exception& e) {
    throw Error(origin + ": " + what + " fails ONNX shape inference: " + first_line(e.what()));
  }
}

}  // namespace verdant::interop::detail

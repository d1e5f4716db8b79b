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

void check_geometry_attributes(const onnx::GraphProto& graph, const std::string& origin) {
  for (const auto& n : graph.node()) {
    for (const auto& a : n.attribute()) {
      if (a.type() == onnx::AttributeProto::GRAPH) check_geometry_attributes(a.g(), origin);
      for (const auto& g : a.graphs()) check_geometry_attributes(g, origin);
      const std::string& name = a.name();
      const bool positive =
          name == "strides" || name == "dilations" || name == "kernel_shape" || name == "group";
      if (!positive && name != "pads") continue;
      const std::int64_t lo = positive ? 1 : 0;
      auto bad = [&](std::int64_t v) {
        const std::string node = !n.name().empty() ? n.name() : n.output_size() ? n.output(0) : "?";
        throw Error(origin + ": node '" + node + "' (" + n.op_type() + "): attribute " + name +
                    " holds " + std::to_string(v) + "; it must be " +
                    (positive ? "positive" : "non-negative"));
      };
      if (a.type() == onnx::AttributeProto::INT && a.i() < lo) bad(a.i());
      for (const auto v : a.ints())
        if (v < lo) bad(v);
    }
  }
}

void check_and_infer(onnx::ModelProto& model, const std::string& origin, const std::string& what) {
  check_geometry_attributes(model.graph(), origin);
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

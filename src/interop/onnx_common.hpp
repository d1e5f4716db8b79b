#pragma once
// What ONNX import and export share (not installed): libonnx's checks as one-line errors and
// the opsets we read and write.
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>

namespace verdant::interop::detail {

// The opsets of the default domain that import accepts (torch.onnx.export in PyTorch 1.13
// writes 7 to 17; libonnx 1.12 knows up to 17).
inline constexpr std::int64_t kMinOpset = 11;
inline constexpr std::int64_t kMaxOpset = 17;

// The first line of a libonnx message (its checker appends "==> Context: ..." paragraphs).
std::string first_line(const std::string& message);

// The model's opset for the default domain ("" or "ai.onnx"); 0 when it imports none.
std::int64_t default_opset(const onnx::ModelProto& model);

// libonnx 1.12's shape inference divides by strides, dilations and group without checking
// them (a crafted file with strides 0 kills the process with SIGFPE). Every node (subgraphs
// included) must have them, and kernel_shape, positive, and pads not negative; else
// verdant::Error "<origin>: node '...' (Op): attribute strides holds 0; it must be positive".
void check_geometry_attributes(const onnx::GraphProto& graph, const std::string& origin);

// onnx::checker::check_model, then strict shape inference (onnx.checker's full_check) on
// `model`, which receives the inferred shapes. Any complaint -> verdant::Error
// "<origin>: <what> <libonnx's first line>".
void check_and_infer(onnx::ModelProto& model, const std::string& origin, const std::string& what);

}  // namespace verdant::interop::detail

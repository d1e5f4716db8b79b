#pragma once
// ONNX import: the chain of layers that torch.onnx.export writes for MLPs and CNNs (opsets 11
// to 17) becomes an ordinary nn::Sequential with the file's weights, so it trains, compresses
// and exports like any Verdant model. The file is parsed with libonnx's generated classes,
// checked with onnx::checker and onnx::shape_inference; only this module includes them.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "verdant/nn/module.hpp"

namespace verdant::interop {

struct ImportedModel {
  std::shared_ptr<nn::Sequential> model;  // input shape set, weights from the file
  std::string yaml;                       // nn::model_yaml of it, so checkpoints rebuild it
  std::int64_t opset = 0;                 // of the default (ai.onnx) domain
  std::string producer;                   // e.g. "pytorch 1.13.1"
  std::vector<std::string> notes;         // nodes left out or folded, one line each
};

// Reads, checks and maps `path`; external-data files are read from the model's folder.
// Errors are verdant::Error "<path>: <what is wrong>", one line: not protobuf or truncated; an
// unsupported operator (naming the node, its op type and the opset, and listing what is
// supported); a missing external-data file (naming it); weights that do not fit.
ImportedModel import_onnx(const std::filesystem::path& path);

// The same from bytes. `origin` names the model in errors; external data is read relative to
// `folder` (empty: a model with external data is refused).
ImportedModel import_onnx_bytes(std::span<const std::uint8_t> bytes, const std::string& origin,
                                const std::filesystem::path& folder);

// Whether `bytes` parse as an ONNX ModelProto with a graph and an opset: how a model file
// without the .onnx extension is recognised.
bool looks_like_onnx(std::span<const std::uint8_t> bytes);

// The operator types import maps onto layers, sorted (as error messages list them).
const std::vector<std::string>& supported_operators();

}  // namespace verdant::interop

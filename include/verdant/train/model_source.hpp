#pragma once
// Models by the names users give them: a built-in name ("mlp", "lenet5"), a YAML layer
// stack, a `.vckpt` checkpoint with trained weights, or an ONNX file (imported with its
// weights). Files are told apart by their first bytes, and ONNX also by its extension.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "verdant/data/split.hpp"
#include "verdant/nn/module.hpp"
#include "verdant/train/checkpoint.hpp"

namespace verdant::train {

enum class ModelFormat { builtin, yaml, checkpoint, onnx };

struct LoadedModel {
  std::shared_ptr<nn::Sequential> model;
  ModelFormat format = ModelFormat::builtin;
  // The model's YAML text, so a checkpoint can rebuild it without the file (empty for
  // built-in models, which are rebuilt by name).
  std::string yaml;
  std::optional<Checkpoint> checkpoint;  // the file's contents, when it was one
  std::vector<std::string> notes;        // ONNX: nodes left out or folded on import
};

// What a model must take and give for a data set.
struct DataShape {
  Shape sample;              // per sample, e.g. {1, 28, 28} or {13}
  std::int64_t classes = 0;  // 0: not checked
};

// Loads `spec`. A built-in name builds a fresh model from the default generator, shaped for
// `data` when given (mlp takes any sample, lenet5 images of 16x16 or more). Errors name the
// setting (`setting`, e.g. "model") or the file: an unknown name lists the valid ones, a
// missing file says so, a file that is neither a checkpoint, a YAML model nor ONNX says that,
// and a bad ONNX file gets the importer's error (interop/onnx_import.hpp).
LoadedModel load_model(const std::string& spec, const std::string& setting = "model",
                       const std::optional<DataShape>& data = std::nullopt);

// Refuses data the model cannot take: verdant::Error "<origin>: the model takes samples of
// shape [3, 32, 32], but <data> has samples of shape [1, 28, 28]" (a model that starts with
// Flatten takes any shape with as many elements), and a model with fewer outputs than the data
// has classes. `data` names the data, e.g. "the data (wine.csv)".
void check_model_fits(nn::Sequential& model, const DataShape& data, const std::string& origin,
                      const std::string& data_name);

// A built-in name or a YAML file, untrained (a checkpoint is refused). When it is a file,
// its text goes to `yaml_text`.
std::shared_ptr<nn::Sequential> build_model(const std::string& spec,
                                            std::string* yaml_text = nullptr,
                                            const std::string& setting = "model");

// How the data a model was trained on was normalized and which classes its outputs are, as
// checkpoint metadata ("data.normalization", "data.classes"), and back into the options that
// load data for the model (eval, export calibration).
std::vector<std::pair<std::string, std::string>> data_meta(const data::DataSplit& split);
void apply_data_meta(const Checkpoint& ckpt, const std::string& origin, data::DataOptions& data);

// `verdant import`: an ONNX file to a checkpoint that eval, train, compress and export read
// like any other.
struct ImportOptions {
  std::string model;          // the .onnx file
  std::filesystem::path out;  // the checkpoint to write
};
struct ImportReport {
  std::shared_ptr<nn::Sequential> model;
  std::int64_t opset = 0;
  std::string producer;
  std::vector<std::string> notes;
  std::size_t bytes = 0;  // of the checkpoint
};
// Settings are SettingErrors ("out"); a bad ONNX file is an Error naming it. The checkpoint is
// decoded and rebuilt before it is written (atomically); on any failure nothing is written.
ImportReport import_to_checkpoint(const ImportOptions& options);

// Rebuilds the model a checkpoint was made from and loads its weights.
std::shared_ptr<nn::Sequential> model_from_checkpoint(const Checkpoint& ckpt,
                                                      const std::string& origin);

}  // namespace verdant::train

#pragma once
// Models by the names users give them: a built-in name ("mlp", "lenet5"), a YAML layer
// stack, or a `.vckpt` checkpoint with trained weights. Files are told apart by their first
// bytes, not their extension.
#include <memory>
#include <optional>
#include <string>

#include "verdant/nn/module.hpp"
#include "verdant/train/checkpoint.hpp"

namespace verdant::train {

enum class ModelFormat { builtin, yaml, checkpoint };

struct LoadedModel {
  std::shared_ptr<nn::Sequential> model;
  ModelFormat format = ModelFormat::builtin;
  // The model's YAML text, so a checkpoint can rebuild it without the file (empty for
  // built-in models, which are rebuilt by name).
  std::string yaml;
  std::optional<Checkpoint> checkpoint;  // the file's contents, when it was one
};

// Loads `spec`. A built-in name builds a fresh model from the default generator. Errors name
// the setting (`setting`, e.g. "model") or the file: an unknown name lists the valid ones, a
// missing file says so, and a file that is neither a checkpoint nor a YAML model says that.
LoadedModel load_model(const std::string& spec, const std::string& setting = "model");

// A built-in name or a YAML file, untrained (a checkpoint is refused). When it is a file,
// its text goes to `yaml_text`.
std::shared_ptr<nn::Sequential> build_model(const std::string& spec,
                                            std::string* yaml_text = nullptr,
                                            const std::string& setting = "model");

// Rebuilds the model a checkpoint was made from and loads its weights.
std::shared_ptr<nn::Sequential> model_from_checkpoint(const Checkpoint& ckpt,
                                                      const std::string& origin);

}  // namespace verdant::train

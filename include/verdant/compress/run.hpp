#pragma once
// `verdant compress`: applies a recipe to a model (fine-tuning a trained checkpoint, or
// training from scratch for sparse training and distillation) through the one training loop,
// then reports what it saved and writes the compressed model.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "verdant/compress/session.hpp"
#include "verdant/train/run.hpp"

namespace verdant::compress {

// The training run's settings as `compress` defaults them: model mlp, seed 0, no weight
// decay, no output folder; epochs and lr, when not set, come from the recipe (else 1 and 0.01).
train::TrainingOptions default_compress_training();

struct RunOptions {
  std::filesystem::path recipe;
  // Any model, data, optimizer, schedule and output that `train` accepts.
  train::TrainingOptions training = default_compress_training();
};

struct RunReport {
  std::string model, recipe;
  double accuracy_before = 0, accuracy_after = 0;  // test set, [0, 1]
  std::int64_t epochs = 0;
  double seconds = 0;
  std::vector<LayerStat> layers;  // of the final model
  std::int64_t params_before = 0, params_after = 0, nonzero_after = 0;
  std::int64_t flops_dense = 0;       // forward per sample of the original model
  std::int64_t flops_after = 0;       // of the final model, zero weights skipped (sparse count)
  std::int64_t bytes_dense_fp32 = 0;  // the original model as dense fp32
  std::int64_t bytes_compact = 0;     // the final model in our compact encoding
  bool int8 = false;
  std::optional<double> energy_joules;  // process share of the training loop
  std::string energy_label;             // "measured (...)" / "estimated (...)"
  std::vector<std::string> log;
  std::vector<std::string> files;  // written
  train::TrainingReport training;
};

RunReport run_recipe(const RunOptions& options);
std::string format_report(const RunReport& r);
std::string report_json(const RunReport& r);

}  // namespace verdant::compress

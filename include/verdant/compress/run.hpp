#pragma once
// `verdant compress`: applies a recipe to a model (fine-tuning a trained checkpoint, or
// training from scratch for sparse training / distillation) and reports what it saved.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "verdant/compress/session.hpp"

namespace verdant::compress {

struct RunOptions {
  std::string model = "mlp";  // a .vckpt checkpoint, a built-in name or a YAML model file
  std::filesystem::path recipe;
  std::filesystem::path data_dir = "/usr/share/datasets/fashion-mnist";
  std::filesystem::path out_dir;       // empty: write nothing
  std::optional<std::int64_t> epochs;  // default: the recipe's `epochs`, else 1
  std::optional<double> lr;            // default: the recipe's `lr`, else 0.01
  std::int64_t batch_size = 64;
  double momentum = 0.9;
  double weight_decay = 0.0;
  std::uint64_t seed = 0;
  std::int64_t limit_train = 0;  // 0: all
  std::int64_t limit_test = 0;
  bool measure_energy = true;
  bool verbose = true;  // one line per epoch on stderr
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
  std::optional<double> energy_joules;  // process share of the run
  std::string energy_label;             // "measured (...)" / "estimated (...)"
  std::vector<std::string> log;
  std::vector<std::string> files;  // written
};

RunReport run_recipe(const RunOptions& options);
std::string format_report(const RunReport& r);
std::string report_json(const RunReport& r);

}  // namespace verdant::compress

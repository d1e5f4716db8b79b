#pragma once
// A sweep file: the base models and data, the training budget and seeds, the candidates (a
// grid of sparsity x structure x precision x distillation, and/or recipe files), and how to
// pick among the results. Parsed and checked whole, with "file:line:" errors, before any
// training starts.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "verdant/data/split.hpp"

namespace verdant::sweep {

enum class Objective { total_energy, inference_energy, bytes };
const char* objective_name(Objective o);

// How much accuracy a pick may lose against the dense baseline: absolute points
// (`0.5`: 0.5 points) or relative (`1%`: 1% of the dense accuracy).
struct AccuracyBudget {
  double value = 0.5;
  bool relative = false;
  // The lowest accuracy (fraction) a candidate may have, given the dense one.
  double floor(double dense_accuracy) const;
  std::string text() const;  // "0.5 points", "1%"
};
// "0.5" or "1%"; SettingError("max_accuracy_loss", ...) otherwise.
AccuracyBudget parse_accuracy_budget(const std::string& text);

struct Candidate {
  std::string name;  // e.g. "dense", "s0.90-block-int8_qat", or a recipe file's stem
  // The recipe it runs: a file of the sweep's, or generated text (grid points).
  std::filesystem::path recipe_file;
  std::string recipe_yaml;
  double sparsity = 0;  // grid coordinates (also filled for recipe files, where known)
  std::string structure = "unstructured";
  std::string precision = "fp32";  // fp32, int8_qat, int8_ptq
  std::string distill;             // teacher path, empty: none
  bool dense() const { return sparsity == 0 && precision == "fp32" && distill.empty(); }
};

// The edge-or-cloud comparison: serving each inference in a cloud region instead of on the
// device costs the request's bytes over the network, and the region's grid and PUE.
struct CloudComparison {
  std::string region = "aws:us-east-1";
  // Network energy intensity, kWh per GB moved. Aslan et al. (2018), "Electricity Intensity
  // of Internet Data Transmission", J. Industrial Ecology 22(4): 0.06 kWh/GB for 2015, halving
  // about every two years since, so an upper bound for today.
  double network_kwh_per_gb = 0.06;
  std::int64_t response_bytes = 64;  // the answer sent back
};

struct SweepSpec {
  std::string source;  // the file, for messages
  std::vector<std::string> models;
  data::DataOptions data;
  std::int64_t epochs = 3;
  std::vector<std::uint64_t> seeds = {42};
  std::optional<double> lr, weight_decay;
  std::int64_t batch_size = 64;
  std::vector<Candidate> candidates;  // the dense baseline first
  Objective objective = Objective::total_energy;
  std::int64_t inferences = 1'000'000;  // for the total-energy objective and the break-even
  AccuracyBudget budget;
  std::int64_t latency_samples = 1000;  // timed inferences per trial
  CloudComparison cloud;
};

// Throws verdant::Error "FILE:LINE: ..." for invalid YAML, unknown keys, an empty grid or list,
// values out of range, a recipe file that does not load and a teacher that does not exist.
// `epochs` overrides the file's training budget (the generated recipes follow it).
SweepSpec parse_sweep(const std::string& yaml_text, const std::string& source,
                      std::optional<std::int64_t> epochs = std::nullopt);
SweepSpec load_sweep(const std::filesystem::path& path,
                     std::optional<std::int64_t> epochs = std::nullopt);

}  // namespace verdant::sweep

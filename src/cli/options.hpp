#pragma once
// Flags shared by several verbs, bound once to the library's option structs, and the value
// checks they use (CLI11 validators, each stated here once).
#include <CLI/CLI.hpp>

#include <filesystem>
#include <string>

#include "verdant/dist/data_parallel.hpp"
#include "verdant/energy/carbon.hpp"
#include "verdant/train/run.hpp"

namespace verdant::cli {

// Value checks. A failed one reads "--flag: must be positive, got 0".
CLI::Validator positive();
CLI::Validator non_negative();
// [lo, hi), for fractions such as momentum.
CLI::Validator fraction_below(double hi);
CLI::Validator at_least(double lo);
CLI::Validator threads_range();

// The CLI's name for a library setting: "batch_size" -> "--batch-size" when `app` has that
// option, the positional's name in capitals when it has a positional of that name; else
// empty.
std::string flag_for_setting(const CLI::App& app, const std::string& setting);

// --threads.
void add_threads_option(CLI::App& app, int& threads);
// --data (the location, under `location_flag`), the format and split flags, and
// --limit-train / --limit-test where `flags` asks for them. Returns the location's option, to
// tell whether it was given.
struct DataFlags {
  std::string location_flag = "--data";
  std::string location_help;  // empty: the default description
  bool limit_train = true, limit_test = true;
};
CLI::Option* add_data_options(CLI::App& app, data::DataOptions& data, const DataFlags& flags = {});
// --country, --cloud, --grid-zone, --pue, --wue, --price.
void add_location_options(CLI::App& app, energy::LocationRequest& location,
                          std::optional<double>& price);
// --power-model: a `verdant calibrate` fit for the estimate where no counter is readable.
void add_energy_model_options(CLI::App& app, std::filesystem::path& power_model);
// What `train` and `compress` share: model and data, the budget, the optimizer and schedule,
// the output and resume, energy. `defaults` documents the verb's own defaults in --help.
struct TrainingFlags {
  CLI::Option* resume = nullptr;  // --resume [PATH]
  bool no_eval = false;
  bool no_energy = false;
  bool distributed = false;  // also implied when mpirun started the process
  bool no_overlap = false;
  double bucket_mb = 25;
};
void add_training_options(CLI::App& app, train::TrainingOptions& options, TrainingFlags& flags);
// After parsing: the flags that are not plain values, and data parallelism when the process
// is one of an MPI job. Returns the job's communication figures (empty alone).
std::shared_ptr<dist::CommStats> apply_training_flags(train::TrainingOptions& options,
                                                      const TrainingFlags& flags);
// Whether this process prints the run's progress and summary (rank 0 of a job, or alone).
bool reports();

// Informational lines of a run go to stdout, flushed, so they interleave with progress.
void print_line(const std::string& line);

}  // namespace verdant::cli

#pragma once
// A whole training run as one library call: run_training(options) loads the model and data,
// builds the optimizer and schedule, runs the Trainer (energy tracking, checkpoints, exact
// resume) and returns a report; it writes results.json and checkpoint.vckpt itself. The CLI's
// `train` and `compress`, benchmarks and bindings are thin layers over it. Other modules plug
// into a run through TrainingExtension (compression recipes, carbon-aware pauses).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "verdant/data/split.hpp"
#include "verdant/energy/carbon.hpp"
#include "verdant/energy/tracker.hpp"
#include "verdant/nn/module.hpp"
#include "verdant/nn/optim.hpp"
#include "verdant/nn/schedule.hpp"
#include "verdant/train/trainer.hpp"

namespace verdant::train {

struct OptimizerOptions {
  std::string name = "sgd";            // sgd, adam or adamw
  std::optional<double> lr;            // default: 0.02 for sgd, 0.001 for adam and adamw
  double momentum = 0.9;               // sgd
  bool nesterov = false;               // sgd
  std::optional<double> weight_decay;  // default: 5e-4 for sgd, 0 for adam, 0.01 for adamw

  double resolved_lr() const;
  double resolved_weight_decay() const;
};

struct ScheduleOptions {
  // restarts (cosine with warm restarts, nn::CosineRestartsLR), cosine, step (divide by 10
  // every third of the run) or constant.
  std::string kind = "restarts";
  // restarts: the first cycle's epochs, and the factor from one cycle's length to the next.
  std::int64_t cycle_epochs = 4;
  std::int64_t cycle_mult = 2;
  std::int64_t warmup = 0;  // linear warm-up steps before the schedule
};

struct EnergyOptions {
  bool enabled = true;
  energy::LocationRequest location;  // grid location and PUE for the carbon figures
  std::optional<double> price_per_kwh;
  double interval_s = 1.0;
  // A `verdant calibrate` fit for the estimate where no counter is readable; empty: none.
  std::filesystem::path power_model;
  bool print = true;  // one line per epoch and a summary on stderr
  // Data parallelism: see EnergyCallbackOptions::combine.
  std::function<std::vector<energy::PhaseResult>(energy::PhaseResult&, energy::RunInfo&)> combine;
};

struct TrainingOptions;
struct TrainingReport;

// Everything a run has built, for the extensions that plug into it.
struct TrainingContext {
  const TrainingOptions& options;
  std::shared_ptr<nn::Sequential> model;  // an extension may replace it in finish()
  data::DataSplit data;
  nn::Optimizer& optimizer;
  Trainer& trainer;
  std::filesystem::path checkpoint_path;  // empty: the run writes no checkpoints
  // A fresh trainer over the same model, optimizer, data and options (for drivers that stop
  // and resume the loop).
  std::function<std::unique_ptr<Trainer>()> make_trainer;
};

// A module's hooks into a run, called in the order the extensions were added.
class TrainingExtension {
 public:
  virtual ~TrainingExtension() = default;
  // Before the loop (and before a resume): add callbacks, set an objective.
  virtual void attach(TrainingContext&) {}
  // Runs the loop in place of trainer.fit(); nullopt leaves it to the trainer.
  virtual std::optional<FitResult> fit(TrainingContext&) { return std::nullopt; }
  // True when fit() runs the loop as several fits: the energy tracker covers one fit, so such
  // a run leaves energy to the extension.
  virtual bool drives_loop() const { return false; }
  // After the loop, before the final evaluation: final masks, notes for the report.
  virtual void finish(TrainingContext&, TrainingReport&) {}
};

struct TrainingOptions {
  std::string command = "train";  // named in results.json and the energy records
  std::string model = "lenet5";   // built-in name, YAML model file, checkpoint or .onnx file
  data::DataOptions data;
  bool evaluate = true;     // evaluate on the test part after every epoch
  bool test_at_end = true;  // and after the run (the report's `test`)
  // End the run after the first epoch whose test accuracy (0..1) reaches this: the energy a
  // result costs, rather than that of a fixed budget. Needs `evaluate`.
  std::optional<double> stop_at_accuracy;
  std::optional<std::int64_t> epochs;  // default 15
  // Epochs 0 applies the extensions without training (compress: post-training quantization).
  bool allow_no_epochs = false;
  std::int64_t batch_size = 64;
  OptimizerOptions optimizer;
  ScheduleOptions schedule;
  double label_smoothing = 0;
  std::uint64_t seed = 42;  // initialisation, data order, dropout
  int threads = 0;          // 0: all cores
  // Where results.json, checkpoint.vckpt, emissions.csv and energy.jsonl go; empty: nowhere.
  std::filesystem::path out_dir = "out";
  bool resume = false;
  // The checkpoint to resume from; empty: out_dir/checkpoint.vckpt when it exists.
  std::filesystem::path resume_from;
  std::int64_t checkpoint_every = 0;  // also checkpoint every N steps (0: at epoch ends)
  EnergyOptions energy;
  // Data parallelism (module dist sets these): this process's shard of every batch, the sums
  // over processes, and whether this process writes the outputs (only one does).
  std::int64_t shard = 0, shards = 1;
  std::shared_ptr<Reducer> reducer;
  bool write_outputs = true;
  std::vector<std::shared_ptr<TrainerCallback>> callbacks;  // e.g. progress output
  std::vector<std::shared_ptr<TrainingExtension>> extensions;
  std::function<void(const std::string&)> log;  // informational lines; null: silent

  std::int64_t resolved_epochs() const { return epochs.value_or(15); }
};

struct TrainingReport {
  std::string model;  // the spec
  std::int64_t parameters = 0;
  std::string data;  // description of the split
  std::shared_ptr<nn::Sequential> final_model;
  std::optional<std::filesystem::path> resumed_from;
  FitResult fit;
  std::optional<EvalResult> test;  // on the whole test part, after the run
  double median_epoch_seconds = 0;
  double peak_rss_mib = 0;
  // The "total" energy record of the run, when energy was tracked.
  std::optional<energy::PhaseResult> energy;
  std::vector<std::string> notes;            // lines extensions add for the summary
  std::vector<std::filesystem::path> files;  // written
};

// Throws SettingError naming the setting ("lr must be positive, got -1") for any option that
// cannot work, before anything is loaded or written.
void validate(const TrainingOptions& options);

// Runs it. Errors: SettingError for bad options, verdant::Error naming the file for bad data
// or checkpoints, and the trainer's errors (divergence, collapse). A run that fails before its
// first checkpoint leaves no output folder behind.
TrainingReport run_training(const TrainingOptions& options);

// The optimizer and schedule a run uses, for callers that build their own Trainer.
std::unique_ptr<nn::Optimizer> make_optimizer(const OptimizerOptions& options, nn::Module& model);
std::shared_ptr<const nn::LRSchedule> make_schedule(const ScheduleOptions& options, double lr,
                                                    std::int64_t epochs,
                                                    std::int64_t steps_per_epoch);

// `verdant eval`: a model's loss and accuracy on the test part.
struct EvaluationOptions {
  std::string checkpoint;  // a checkpoint (or any model spec load_model accepts)
  data::DataOptions data;
  std::int64_t batch_size = 256;
  int threads = 0;
  std::filesystem::path json_out;  // also write the result here; empty: no file
};
struct EvaluationReport {
  std::string model_spec;  // what the checkpoint says it holds ("?" when it does not)
  std::string data;        // description of the test part
  EvalResult result;
};
EvaluationReport run_evaluation(const EvaluationOptions& options);

// results.json's text for a report.
std::string results_json(const TrainingOptions& options, const TrainingReport& report);

}  // namespace verdant::train

#pragma once
// Energy accounting for `verdant train`: a TrainerCallback that runs the energy tracker
// with one phase for the whole training ("train"), one per epoch's training steps
// ("epoch N", 1-based like the trainer's table) and one per after-epoch evaluation
// ("eval N", only when the trainer evaluates), and at the end writes emissions.csv (one CodeCarbon
// row for the run) and energy.jsonl (one record per phase, plus "total") into the run's output
// folder. The process share is this process's CPU time (training runs in-process), so a sample
// reads only /proc/self/stat, /proc/stat and the meters.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "verdant/energy/tracker.hpp"
#include "verdant/train/callback.hpp"

namespace verdant::train {

struct EnergyCallbackOptions {
  std::filesystem::path out_dir;  // where emissions.csv and energy.jsonl go; empty: none
  energy::LocationRequest location;
  double interval_s = 1.0;
  std::optional<double> price_per_kwh;
  std::string currency = "USD";
  std::string project_name = "verdant-train";
  std::string experiment_id;
  // A `verdant calibrate` fit for the estimate where no counter is readable; empty: none.
  std::filesystem::path power_model;
  bool print = true;  // one line per epoch and a summary on stderr
  // Data parallelism: turns this process's total into the job's (every process calls it at
  // the end, together) and returns one record per node for energy.jsonl.
  std::function<std::vector<energy::PhaseResult>(energy::PhaseResult& total, energy::RunInfo& info)>
      combine;
};

class EnergyCallback : public TrainerCallback {
 public:
  // Selects meters (RAPL, else the estimate, from power_model and the cloud provider of the
  // location; NVML if present) and resolves the location.
  explicit EnergyCallback(EnergyCallbackOptions options);
  // With given meters and intensity (tests, benchmarks).
  EnergyCallback(EnergyCallbackOptions options, energy::MeterSet meters,
                 energy::CarbonIntensity carbon);
  ~EnergyCallback() override;

  void on_train_begin(Trainer&) override;
  void on_epoch_begin(Trainer&, std::int64_t epoch) override;
  void on_step_end(Trainer&, const StepInfo& step) override;
  void on_epoch_end(Trainer&, const EpochStats& stats) override;
  void on_train_end(Trainer&) override;

  // Available after on_train_end: the phases written (epochs, evals, "train", "total").
  const std::vector<energy::PhaseResult>& results() const { return results_; }
  const energy::PhaseResult* find(const std::string& phase) const;
  // Joules (process share) per training sample over the "train" phase; 0 before the end.
  double joules_per_sample() const;
  const energy::Tracker& tracker() const { return *tracker_; }

 private:
  void end_open(std::optional<energy::Tracker::Phase>& phase, std::int64_t samples);

  EnergyCallbackOptions options_;
  std::unique_ptr<energy::Tracker> tracker_;
  std::optional<energy::Tracker::Phase> train_, epoch_, eval_;
  std::int64_t epoch_samples_ = 0, train_samples_ = 0;
  std::vector<energy::PhaseResult> results_;
};

}  // namespace verdant::train

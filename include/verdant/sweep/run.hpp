#pragma once
// `verdant sweep SWEEP.yaml`: every (model, candidate, seed) trial trained through the one
// training loop, exported to .vdm and timed on the edge runtime, with its accuracy, training
// energy, inference energy, bytes and latency stored as one JSON per trial (a killed sweep
// restarts where it stopped). Then the Pareto fronts, the pick under an accuracy budget, the
// break-even point and the edge-or-cloud comparison.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "verdant/sweep/pareto.hpp"
#include "verdant/sweep/spec.hpp"
#include "verdant/train/run.hpp"

namespace verdant::sweep {

struct TrialResult {
  std::string id;  // "<model>-<candidate>-seed<seed>", also its file name
  std::string model, candidate;
  std::uint64_t seed = 0;
  double sparsity = 0;
  std::string structure, precision, distill;
  double accuracy = 0, accuracy_before = 0;  // test set, [0, 1]
  std::int64_t epochs = 0;
  double train_seconds = 0;
  double train_joules = 0;         // process share, the training loop
  std::string train_energy_label;  // measured or estimated, and how
  double train_gco2 = 0;
  double train_flops = 0;  // 3 x forward FLOPs x samples seen (forward + backward)
  std::int64_t params = 0, nonzero = 0;
  std::int64_t flops = 0;     // forward per sample, zero weights skipped
  std::int64_t bytes = 0;     // the .vdm file
  std::string vdm_precision;  // fp32 or int8
  double latency_us = 0;      // median per inference, batch 1, one thread
  double inference_joules_per_1000 = 0;
  std::string inference_energy_label;
  std::vector<std::pair<std::string, double>> layer_sparsity;
  std::string folder;  // the trial's run folder (checkpoint, .vdm, results.json, energy)
};

std::string trial_json(const TrialResult& t);
TrialResult parse_trial(const std::string& json, const std::string& origin);

// One candidate of one model over its seeds.
struct CandidateSummary {
  std::string model, candidate;
  double sparsity = 0;
  std::string structure, precision, distill;
  std::size_t seeds = 0;
  double accuracy = 0, accuracy_std = 0;  // mean and sample standard deviation over seeds
  double train_joules = 0, train_seconds = 0, train_gco2 = 0, train_flops = 0;
  double inference_joules_per_1000 = 0, latency_us = 0;
  std::int64_t bytes = 0, nonzero = 0, params = 0;
  std::vector<std::string> trials;  // ids
};

struct Pick {
  std::size_t index = 0;  // into summaries
  std::string reason;     // one line
  double objective = 0;   // its cost under the objective
};

struct BreakEven {
  // Inferences after which the picked model's extra training energy is paid back by its
  // cheaper inferences (nullopt: it never costs more to train, or never saves per inference).
  std::optional<double> inferences;
  std::string text;
};

struct EdgeOrCloud {
  double edge_joules_per_inference = 0, cloud_joules_per_inference = 0;
  double download_joules = 0;  // sending the model to the device once
  double edge_gco2_per_inference = 0, cloud_gco2_per_inference = 0;
  std::optional<double> crossover;  // inferences from which the device emits less
  std::string text;
};

struct SweepReport {
  SweepSpec spec;
  std::vector<TrialResult> trials;
  std::vector<CandidateSummary> summaries;
  std::optional<std::size_t> dense;  // index of the first model's dense baseline
  // Pareto fronts of accuracy against each cost, as summary indices.
  std::vector<std::size_t> front_train_energy, front_inference_energy, front_bytes, front_latency;
  std::optional<Pick> pick;
  BreakEven break_even;
  std::optional<EdgeOrCloud> edge_or_cloud;
  double trial_seconds = 0, total_seconds = 0;  // bookkeeping = total - trials
  std::size_t trials_run = 0, trials_skipped = 0;
};

struct SweepProgress {
  std::size_t done = 0, total = 0;
  double eta_seconds = 0;
  std::string running;  // trial id
  std::string best;     // the most accurate finished trial so far
};

struct SweepOptions {
  std::filesystem::path sweep;
  std::filesystem::path out = "sweep";  // results: trials/<id>.json, and each trial's folder
  // Overrides of the sweep file, as for `train`.
  std::optional<std::int64_t> epochs, limit_train, limit_test;
  int threads = 0;
  std::optional<std::string> max_accuracy_loss;
  std::optional<Objective> objective;
  std::optional<std::int64_t> inferences;
  train::EnergyOptions energy;
  std::vector<std::shared_ptr<train::TrainerCallback>> callbacks;  // per trial, e.g. progress
  std::function<void(const SweepProgress&)> on_progress;
  std::function<void(const std::string&)> log;
  bool pick_model = true;  // write the pick's checkpoint and .vdm into out/pick/
  // A sweep shared by several processes (module dist): `next` hands out planned trial indices
  // from one queue (default: 0, 1, 2, ... here); after its last trial a process calls
  // `wait_for_others`, and only the one with `analyse` set reads every trial and decides.
  std::function<std::int64_t()> next;
  std::function<void()> wait_for_others;
  bool analyse = true;
};

// Runs the trials not finished yet (a trial is finished once its JSON exists), then
// analyses all of them. Errors in the sweep file are "file:line:" before any training.
SweepReport run_sweep(const SweepOptions& options);

// The analysis alone, from a results folder a sweep wrote (its sweep.yaml copy and trials).
SweepReport analyse(const SweepSpec& spec, std::vector<TrialResult> trials);
SweepReport read_results(const std::filesystem::path& out);

}  // namespace verdant::sweep

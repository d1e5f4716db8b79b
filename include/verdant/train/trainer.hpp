#pragma once
// The training loop: batches from a DataLoader through a model and optimizer, with
// callbacks, NaN/inf detection, periodic checkpoints and exact resume.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "verdant/data/dataset.hpp"
#include "verdant/data/loader.hpp"
#include "verdant/nn/module.hpp"
#include "verdant/nn/optim.hpp"
#include "verdant/nn/schedule.hpp"
#include "verdant/train/callback.hpp"
#include "verdant/train/checkpoint.hpp"
#include "verdant/train/objective.hpp"
#include "verdant/train/reducer.hpp"

namespace verdant::train {

struct TrainOptions {
  std::int64_t epochs = 1;
  std::int64_t batch_size = 64;
  std::uint64_t seed = 0;  // data order; model init is the caller's business
  bool drop_last = false;
  // Write a checkpoint every N optimizer steps (0: only at epoch ends and at the end).
  std::int64_t checkpoint_every = 0;
  std::filesystem::path checkpoint_path;  // empty: no checkpoints
  // Extra metadata stored in every checkpoint (model spec, config...).
  std::vector<std::pair<std::string, std::string>> checkpoint_meta;
  float label_smoothing = 0.f;
  std::int64_t eval_batch_size = 256;  // larger batches cost memory (lenet5 im2col), not speed
  // Data parallelism: this process trains on shard `shard` of `shards` of every batch (and
  // evaluates on its share of the evaluation set); `reducer` sums statistics over the shards.
  std::int64_t shard = 0, shards = 1;
  std::shared_ptr<Reducer> reducer;
};

// Throws SettingError naming the first option that cannot work ("epochs must be positive").
void validate(const TrainOptions& options);

struct EvalResult {
  double loss = 0;
  double accuracy = 0;  // [0, 1]
  std::int64_t samples = 0;
  std::int64_t correct = 0;
};

// Mean cross-entropy and accuracy of `model` on `dataset` (eval mode, no recording; the
// model's training flag is restored afterwards). With an objective, its forward pass runs the
// model (e.g. through fake-quantized activations).
EvalResult evaluate(nn::Module& model, const data::Dataset& dataset, std::int64_t batch_size = 256,
                    Objective* objective = nullptr);
// The same over shard `shard` of `shards` contiguous parts of `dataset`, summed with
// `reducer`: every process gets the result over the whole dataset.
EvalResult evaluate_sharded(nn::Module& model, const data::Dataset& dataset,
                            std::int64_t batch_size, Objective* objective, std::int64_t shard,
                            std::int64_t shards, Reducer* reducer);

// Watches the training predictions of one epoch. When, in every batch of a whole epoch, all
// examples got the same class, the network's output no longer depends on its input: it has
// collapsed (typically its ReLUs died under too large a first step), it does not recover,
// and the remaining epochs would only spend energy.
class CollapseWatch {
 public:
  // Fewer training examples in an epoch than this prove nothing.
  static constexpr std::int64_t kMinSamples = 2048;
  void observe(const Tensor& logits);  // one batch, [N, C]
  // Data parallelism: combines what every process saw this epoch (before end_epoch).
  void reduce(Reducer& reducer);
  // Throws verdant::Error ("training collapsed in epoch E: ...", then `hint`) when the epoch
  // that just finished collapsed; either way it then starts watching the next epoch.
  void end_epoch(std::int64_t epoch, double mean_loss, const std::string& hint);

 private:
  std::int64_t seen_ = 0;
  bool input_dependent_ = false;
};

struct FitResult {
  std::vector<EpochStats> epochs;  // every finished epoch, including those before a resume
  bool stopped_early = false;
  std::string stop_reason;
  double train_seconds = 0;  // this process
};

class Trainer {
 public:
  // `schedule` gives the learning rate per optimizer step (global step index); may be null
  // (the optimizer's lr stays as it is). The references must outlive the trainer.
  Trainer(nn::Module& model, nn::Optimizer& optimizer, const data::Dataset& train_set,
          TrainOptions options, std::shared_ptr<const nn::LRSchedule> schedule = nullptr);

  void add_callback(std::shared_ptr<TrainerCallback> callback);
  // Replaces the default objective (cross-entropy with options.label_smoothing).
  void set_objective(std::shared_ptr<Objective> objective);
  Objective& objective() { return *objective_; }
  // Evaluate on this set after every epoch (EpochStats::eval_*).
  void set_eval_set(const data::Dataset* eval_set) { eval_set_ = eval_set; }

  // Runs until options.epochs are done, a callback requests a stop, or an error (a NaN or
  // infinite loss throws verdant::Error naming the epoch and step; so does a collapse, see
  // CollapseWatch). Bad options are SettingErrors naming the option ("epochs").
  FitResult fit();

  // Restores model, optimizer, RNG and loop position from a checkpoint written by a
  // trainer with the same model/optimizer; fit() then continues from there. Throws
  // verdant::Error (naming the file) when the checkpoint does not fit.
  void resume_from(const std::filesystem::path& path);
  // A checkpoint of the current state (what a periodic save writes).
  Checkpoint make_checkpoint() const;
  void save_checkpoint(const std::filesystem::path& path) const;

  void request_stop(std::string reason);
  bool stop_requested() const { return stop_requested_; }

  nn::Module& model() { return model_; }
  nn::Optimizer& optimizer() { return optimizer_; }
  const TrainOptions& options() const { return options_; }
  std::int64_t epoch() const { return epoch_; }
  std::int64_t step_in_epoch() const { return step_; }
  std::int64_t global_step() const { return global_step_; }
  std::int64_t steps_per_epoch() const { return loader_.num_batches(); }
  const std::vector<EpochStats>& history() const { return history_; }

 private:
  void apply_checkpoint(const Checkpoint& ckpt, const std::string& origin);

  nn::Module& model_;
  nn::Optimizer& optimizer_;
  const data::Dataset& train_set_;
  const data::Dataset* eval_set_ = nullptr;
  TrainOptions options_;
  std::shared_ptr<const nn::LRSchedule> schedule_;
  std::shared_ptr<Objective> objective_;
  data::DataLoader loader_;
  std::vector<std::shared_ptr<TrainerCallback>> callbacks_;

  // Position: the next step to run is batch `step_` of epoch `epoch_`.
  std::int64_t epoch_ = 0, step_ = 0, global_step_ = 0;
  // Running sums of the current epoch (kept in checkpoints so resumed stats match).
  double loss_sum_ = 0;
  std::int64_t correct_ = 0, seen_ = 0;
  double epoch_seconds_ = 0;
  std::vector<EpochStats> history_;
  CollapseWatch collapse_;
  bool stop_requested_ = false;
  std::string stop_reason_;
};

// Checkpoint tensor names used by Trainer: "param/<name>", "buffer/<name>",
// "optim/<name>", "rng/default" (u8 [32], the default generator's xoshiro state).
// Loads only the model's parameters and buffers from a checkpoint (for eval/export).
void load_model_state(nn::Module& model, const Checkpoint& ckpt, const std::string& origin);

}  // namespace verdant::train

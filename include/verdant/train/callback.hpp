#pragma once
// Hooks into the training loop. Energy tracking, compression modifiers and carbon-aware
// scheduling implement TrainerCallback and are added with Trainer::add_callback(); they run
// in the order added. Any hook may call trainer.request_stop(reason): the loop finishes the
// current step, writes a checkpoint (when a checkpoint path is set) and returns.
#include <cstdint>
#include <string>

namespace verdant::train {

class Trainer;
struct Checkpoint;

// Where the loop is, passed to step hooks.
struct StepInfo {
  std::int64_t epoch = 0;              // 0-based
  std::int64_t step = 0;               // 0-based batch index within the epoch
  std::int64_t steps_per_epoch = 0;    // batches per epoch
  std::int64_t global_step = 0;        // optimizer steps done before this one (0-based)
  std::int64_t batch_size = 0;         // samples in this batch (this process's shard of it)
  std::int64_t global_batch_size = 0;  // samples of the batch over every shard
  double lr = 0;                       // learning rate used for this step
  double loss = 0;                     // this batch's mean loss (valid in on_step_end)
  double accuracy = 0;                 // this batch's accuracy in [0, 1]
  double epoch_loss = 0;               // running mean loss over the epoch so far
  double epoch_accuracy = 0;           // running accuracy over the epoch so far
};

struct EpochStats {
  std::int64_t epoch = 0;  // 0-based
  double loss = 0;         // mean training loss over the epoch
  double accuracy = 0;     // training accuracy over the epoch, [0, 1]
  double seconds = 0;      // wall time of the training steps (resumed epochs: this process only)
  std::int64_t samples = 0;
  double lr = 0;  // learning rate at the epoch's last step
  // Held-out evaluation after the epoch, when the trainer has an eval set (else negative).
  double eval_loss = -1;
  double eval_accuracy = -1;
};

class TrainerCallback {
 public:
  virtual ~TrainerCallback() = default;
  virtual void on_train_begin(Trainer&) {}
  virtual void on_epoch_begin(Trainer&, std::int64_t /*epoch*/) {}
  virtual void on_step_begin(Trainer&, const StepInfo&) {}
  // After backward, before the optimizer step: gradients are in the parameters' grad().
  virtual void on_before_optimizer_step(Trainer&, const StepInfo&) {}
  // After the optimizer step (weights updated).
  virtual void on_step_end(Trainer&, const StepInfo&) {}
  virtual void on_epoch_end(Trainer&, const EpochStats&) {}
  // Also called when training stops early (request_stop) but not when it throws.
  virtual void on_train_end(Trainer&) {}
  // State of the callback that a resumed run needs (e.g. compression masks): added to every
  // checkpoint the trainer writes, and read back when it resumes from one (before fit()).
  virtual void on_save_checkpoint(const Trainer&, Checkpoint&) const {}
  virtual void on_load_checkpoint(Trainer&, const Checkpoint&, const std::string& /*origin*/) {}
};

}  // namespace verdant::train

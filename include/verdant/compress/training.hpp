#pragma once
// A compression recipe inside the one training loop. RecipeCallback moves a Session's masks,
// sparse training and weight fake-quant along with the Trainer's steps and carries its state in
// the trainer's checkpoints; RecipeObjective runs the forward pass through fake-quantized
// activations and replaces the loss with distillation's; RecipeExtension plugs both into
// train::run_training, for `verdant train --recipe` and `verdant compress` alike.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "verdant/compress/session.hpp"
#include "verdant/train/callback.hpp"
#include "verdant/train/objective.hpp"
#include "verdant/train/run.hpp"
#include "verdant/train/trainer.hpp"

namespace verdant::compress {

class RecipeObjective;

class RecipeCallback : public train::TrainerCallback {
 public:
  // A recipe that distills changes the loss, which only a RecipeObjective set on the same
  // trainer can do: without one, such a recipe is refused (naming its line).
  explicit RecipeCallback(std::shared_ptr<Session> session,
                          const RecipeObjective* objective = nullptr);
  void on_train_begin(train::Trainer& t) override;
  void on_step_begin(train::Trainer&, const train::StepInfo& s) override;
  void on_before_optimizer_step(train::Trainer&, const train::StepInfo& s) override;
  void on_step_end(train::Trainer&, const train::StepInfo&) override;
  void on_epoch_end(train::Trainer&, const train::EpochStats& e) override;
  // Masks, schedule positions, activation ranges and random state travel in the trainer's
  // checkpoints.
  void on_save_checkpoint(const train::Trainer&, train::Checkpoint& c) const override;
  void on_load_checkpoint(train::Trainer&, const train::Checkpoint& c,
                          const std::string& origin) override;
  Session& session() { return *session_; }

 private:
  std::shared_ptr<Session> session_;
};

// Knowledge distillation's settings with the fixed teacher's logits for every training sample
// (computed on first use, in dataset order: the teacher is in eval mode, so every epoch would
// repeat exactly these forward passes).
struct Teacher {
  std::shared_ptr<nn::Sequential> model;
  const data::Dataset* train_set = nullptr;
  double alpha = 0.5;
  double temperature = 4.0;
  Tensor logits;  // [train size, classes], filled lazily
};

class RecipeObjective : public train::Objective {
 public:
  RecipeObjective(std::shared_ptr<Session> session, std::optional<Teacher> teacher,
                  float label_smoothing);
  // Through the session's forward model (fake-quantized activations when quantizing).
  autograd::Variable forward(nn::Module& model, const autograd::Variable& x) override;
  // Distillation's loss against the teacher's logits of the batch's samples, else cross-entropy.
  autograd::Variable loss(const autograd::Variable& logits, const data::Batch& batch) override;

 private:
  std::shared_ptr<Session> session_;
  std::optional<Teacher> teacher_;
  train::CrossEntropyObjective cross_entropy_;
};

struct RecipeExtensionOptions {
  bool evaluate_before = false;  // test accuracy of the model before the recipe runs
};

class RecipeExtension : public train::TrainingExtension {
 public:
  // Loads and checks the recipe now, before any work.
  RecipeExtension(std::filesystem::path recipe, RecipeExtensionOptions options = {});
  const Recipe& recipe() const { return recipe_; }

  void attach(train::TrainingContext& context) override;
  // Final masks, int8 grid and structured removal; PTQ calibration on training batches.
  void finish(train::TrainingContext& context, train::TrainingReport& report) override;

  // Available after attach.
  Session& session() { return *session_; }
  std::optional<double> accuracy_before() const { return accuracy_before_; }
  // Notable events (teacher accuracy, mask updates, removals), for reports.
  std::vector<std::string> log() const;

 private:
  Recipe recipe_;
  RecipeExtensionOptions options_;
  std::shared_ptr<Session> session_;
  std::optional<double> accuracy_before_;
  std::vector<std::string> log_;
};

}  // namespace verdant::compress

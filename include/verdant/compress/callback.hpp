#pragma once
// Plugs a recipe Session into the training loop (`verdant train --recipe R`): masks, sparse
// training and weight fake-quant follow the Trainer's steps. Activation fake-quant and
// distillation change the forward pass or the loss, which the Trainer owns: for those,
// use `verdant compress` (run_recipe), which drives the same Session with its own loop.
#include <memory>

#include "verdant/compress/session.hpp"
#include "verdant/core/error.hpp"
#include "verdant/train/callback.hpp"
#include "verdant/train/trainer.hpp"

namespace verdant::compress {

class RecipeCallback : public train::TrainerCallback {
 public:
  explicit RecipeCallback(std::shared_ptr<Session> session) : session_(std::move(session)) {
    const Recipe& r = session_->recipe();
    if (const Modifier* d = r.find(ModifierKind::distill))
      throw Error(r.where(*d, "teacher") +
                  "distill changes the loss: run it with `verdant compress --recipe`");
  }
  void on_train_begin(train::Trainer& t) override {
    session_->begin(t.steps_per_epoch(), t.options().epochs);
  }
  void on_step_begin(train::Trainer&, const train::StepInfo& s) override {
    session_->step_begin(s.epoch, s.step);
  }
  void on_before_optimizer_step(train::Trainer&, const train::StepInfo& s) override {
    session_->before_optimizer_step(s.epoch, s.step, s.global_step);
  }
  void on_step_end(train::Trainer&, const train::StepInfo&) override { session_->step_end(); }
  void on_epoch_end(train::Trainer&, const train::EpochStats& e) override {
    session_->epoch_end(e.epoch);
  }
  // Masks, schedule positions and random state travel in the trainer's checkpoints.
  void on_save_checkpoint(const train::Trainer&, train::Checkpoint& c) const override {
    session_->save_state(c);
  }
  void on_load_checkpoint(train::Trainer&, const train::Checkpoint& c,
                          const std::string& origin) override {
    session_->restore_state(c, origin);
  }
  Session& session() { return *session_; }

 private:
  std::shared_ptr<Session> session_;
};

}  // namespace verdant::compress

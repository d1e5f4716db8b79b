#pragma once
// Training progress for `verdant train` and `verdant compress`: on a terminal a live bar with
// ETA, loss and accuracy (redrawn at most ~10 times a second); otherwise one plain line per
// epoch so logs stay readable.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "verdant/train/callback.hpp"

namespace verdant::cli {

// "12.3s", "4m05s", "2h03m".
std::string format_duration(double seconds);

class ProgressCallback : public train::TrainerCallback {
 public:
  explicit ProgressCallback(std::FILE* out = stdout, bool force_plain = false);
  void on_epoch_begin(train::Trainer& t, std::int64_t epoch) override;
  void on_step_end(train::Trainer& t, const train::StepInfo& s) override;
  void on_epoch_end(train::Trainer& t, const train::EpochStats& e) override;
  void on_train_end(train::Trainer&) override;

 private:
  using Clock = std::chrono::steady_clock;
  std::FILE* out_;
  bool tty_;
  Clock::time_point epoch_start_{}, last_draw_{};
  std::int64_t first_step_ = 0;
};

}  // namespace verdant::cli

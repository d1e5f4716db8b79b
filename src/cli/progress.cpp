#include "progress.hpp"

#include <unistd.h>

#include "verdant/train/trainer.hpp"

namespace verdant::cli {

std::string format_duration(double seconds) {
  char buf[32];
  if (seconds < 0) seconds = 0;
  if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", seconds);
  } else if (seconds < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(seconds) / 60,
                  static_cast<int>(seconds) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(seconds) / 3600,
                  static_cast<int>(seconds) % 3600 / 60);
  }
  return buf;
}

ProgressCallback::ProgressCallback(std::FILE* out, bool force_plain)
    : out_(out), tty_(!force_plain && ::isatty(::fileno(out))) {}

void ProgressCallback::on_epoch_begin(train::Trainer& t, std::int64_t epoch) {
  epoch_start_ = Clock::now();
  first_step_ = t.step_in_epoch();
  last_draw_ = {};
  (void)epoch;
}

void ProgressCallback::on_step_end(train::Trainer& t, const train::StepInfo& s) {
  if (!tty_) return;
  auto now = Clock::now();
  bool last = s.step + 1 == s.steps_per_epoch;
  if (!last && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  double elapsed = std::chrono::duration<double>(now - epoch_start_).count();
  std::int64_t done_here = s.step + 1 - first_step_;
  double eta = done_here > 0 ? elapsed / static_cast<double>(done_here) *
                                   static_cast<double>(s.steps_per_epoch - s.step - 1)
                             : 0;
  constexpr int kWidth = 24;
  int filled = static_cast<int>(kWidth * (s.step + 1) / s.steps_per_epoch);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(kWidth, '.');
  std::fprintf(out_, "\r\033[Kepoch %lld/%lld [%s] %lld/%lld loss %.4f acc %.2f%% %s ETA %s",
               static_cast<long long>(s.epoch + 1), static_cast<long long>(t.options().epochs),
               bar.c_str(), static_cast<long long>(s.step + 1),
               static_cast<long long>(s.steps_per_epoch), s.epoch_loss, 100.0 * s.epoch_accuracy,
               format_duration(elapsed).c_str(), format_duration(eta).c_str());
  std::fflush(out_);
}

void ProgressCallback::on_epoch_end(train::Trainer& t, const train::EpochStats& e) {
  if (tty_) std::fprintf(out_, "\r\033[K");
  std::fprintf(out_, "epoch %lld/%lld  loss %.4f  acc %.2f%%", static_cast<long long>(e.epoch + 1),
               static_cast<long long>(t.options().epochs), e.loss, 100.0 * e.accuracy);
  if (e.eval_accuracy >= 0)
    std::fprintf(out_, "  test loss %.4f  test acc %.2f%%", e.eval_loss, 100.0 * e.eval_accuracy);
  std::fprintf(out_, "  lr %.4g  %.2f s\n", e.lr, e.seconds);
  std::fflush(out_);
}

void ProgressCallback::on_train_end(train::Trainer&) {
  if (tty_) {
    std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
  }
}

}  // namespace verdant::cli

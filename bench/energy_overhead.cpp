// Energy tracker targets (issue 3), in one invocation:
//  1. overhead: the `verdant train` loop (Trainer, mlp, Fashion-MNIST, eval after each
//     epoch) with and without train::EnergyCallback at the default 1 s interval, run
//     interleaved; reports median wall times and their ratio. Also the cost of one sample
//     (sample_now) divided by the interval, a steadier figure on a noisy machine.
//  2. run to run: the tracked runs' estimated "train" energy (process share), pairwise
//     spread across the identical runs (target: within 5%).
// Usage: bench_energy_overhead [pairs=3] [limit_train=60000] [threads=1]
// One thread by default: on the shared 2-core machine, 2 OpenMP threads under load make
// run times swing by 2x, which would drown a 1% effect.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "timing.hpp"
#include "verdant/autograd/generator.hpp"
#include "verdant/core/threading.hpp"
#include "verdant/data/split.hpp"
#include "verdant/energy/meter.hpp"
#include "verdant/energy/tracker.hpp"
#include "verdant/nn/optim.hpp"
#include "verdant/train/energy_callback.hpp"
#include "verdant/train/model_source.hpp"
#include "verdant/train/trainer.hpp"

using namespace verdant;
using Clock = std::chrono::steady_clock;

using verdant::bench::median;

namespace {

double cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct RunResult {
  double seconds = 0;
  double cpu = 0;  // CPU time of this process (all threads, the sampler included)
  double train_joules = 0;
  std::string source;
};

RunResult train_once(const data::DataSplit& split, bool tracked, const std::filesystem::path& out) {
  autograd::manual_seed(1);
  auto model = train::build_model("mlp");
  nn::SGD opt(model->named_parameters(), nn::SGDOptions{.lr = 0.05, .momentum = 0.9});
  train::Trainer trainer(*model, opt, *split.train, {.epochs = 1, .batch_size = 64, .seed = 1});
  trainer.set_eval_set(split.test.get());
  std::shared_ptr<train::EnergyCallback> cb;
  if (tracked) {
    train::EnergyCallbackOptions o;
    o.out_dir = out;  // include writing emissions.csv / energy.jsonl in the cost
    o.print = false;
    cb = std::make_shared<train::EnergyCallback>(o);  // real meters, default 1 s interval
    trainer.add_callback(cb);
  }
  auto t0 = Clock::now();
  double c0 = cpu_seconds();
  trainer.fit();
  RunResult r;
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.cpu = cpu_seconds() - c0;
  if (cb) {
    const auto* t = cb->find("train");
    r.train_joules = t ? t->process.total() : 0;
    r.source = t ? t->source[0] : "";
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int pairs = argc > 1 ? std::atoi(argv[1]) : 3;
  long limit = argc > 2 ? std::atol(argv[2]) : 60000;
  int threads = argc > 3 ? std::atoi(argv[3]) : 1;
  set_num_threads(threads);
  auto split = data::load_split({.limit_train = limit, .limit_test = 2000});
  auto out = std::filesystem::temp_directory_path() / "verdant-bench-energy";
  std::filesystem::create_directories(out);
  std::printf(
      "workload: mlp, 1 epoch of %ld Fashion-MNIST images + eval on 2000, batch 64, %d threads\n",
      limit, num_threads());

  train_once(split, false, out);  // warm-up (page cache, allocator)
  std::vector<double> plain, tracked, joules, plain_cpu, tracked_cpu;
  std::string source;
  for (int i = 0; i < pairs; ++i) {
    // Alternate the order so drifts in machine load hit both sides alike.
    bool tracked_first = i % 2 == 1;
    for (int k = 0; k < 2; ++k) {
      bool t = (k == 0) == tracked_first;
      RunResult r = train_once(split, t, out);
      (t ? tracked : plain).push_back(r.seconds);
      (t ? tracked_cpu : plain_cpu).push_back(r.cpu);
      if (t) {
        joules.push_back(r.train_joules);
        source = r.source;
      }
      std::printf("  pair %d %-8s wall %.3f s, cpu %.3f s%s\n", i, t ? "tracked" : "plain",
                  r.seconds, r.cpu, t ? (" " + std::to_string(r.train_joules) + " J").c_str() : "");
      std::fflush(stdout);
    }
  }
  double mp = median(plain), mt = median(tracked);
  std::printf(
      "overhead: median plain %.3f s, median tracked %.3f s, ratio tracked/plain %.4f "
      "(%+.2f%%)\n",
      mp, mt, mt / mp, (mt / mp - 1) * 100);
  double cp = median(plain_cpu), ct = median(tracked_cpu);
  std::printf(
      "overhead: median CPU time plain %.3f s, tracked %.3f s, ratio %.4f (%+.2f%%; CPU "
      "time is what the tracker adds, and is less disturbed by other load than wall time)\n",
      cp, ct, ct / cp, (ct / cp - 1) * 100);

#ifdef VERDANT_EXE
  // The same comparison through the real `verdant train` (default tracker vs --no-energy).
  {
    std::vector<double> on, off;
    for (int i = 0; i < pairs; ++i)
      for (int k = 0; k < 2; ++k) {
        bool tracked_run = (k == 0) == (i % 2 == 1);
        std::string cmd = std::string("'") + VERDANT_EXE +
                          "' train --model mlp --epochs 1 --threads " + std::to_string(threads) +
                          " --limit-train " + std::to_string(limit) + " --limit-test 2000 --out '" +
                          (out / "cli").string() + "'" + (tracked_run ? "" : " --no-energy") +
                          " > /dev/null 2>&1";
        auto t0 = Clock::now();
        if (std::system(cmd.c_str()) != 0) std::printf("  verdant train failed: %s\n", cmd.c_str());
        double secs = std::chrono::duration<double>(Clock::now() - t0).count();
        (tracked_run ? on : off).push_back(secs);
        std::printf("  verdant train %-13s %.3f s\n", tracked_run ? "(tracker)" : "--no-energy",
                    secs);
      }
    double a = median(off), b = median(on);
    std::printf(
        "overhead (verdant train binary): median --no-energy %.3f s, with tracker %.3f s, "
        "ratio %.4f (%+.2f%%)\n",
        a, b, b / a, (b / a - 1) * 100);
  }
#endif

  // The sampling cost itself: one sample reads the meters and /proc. The train callback
  // reads only this process's stat; `verdant measure` scans every process.
  for (bool scan : {false, true}) {
    energy::TrackerOptions o;
    o.scan_descendants = scan;
    energy::Tracker tracker(energy::select_meters(),
                            energy::CarbonIntensity::constant(475, "world"), o);
    tracker.start();
    const int n = 200;
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) tracker.sample_now();
    double per = std::chrono::duration<double>(Clock::now() - t0).count() / n;
    tracker.stop();
    std::printf(
        "sample cost (%s): %.3f ms per sample = %.4f%% of one core at the default 1 s "
        "interval\n",
        scan ? "scan all processes, as measure" : "own process, as train", per * 1e3,
        per / 1.0 * 100);
  }

  // Fixed per-run costs: choosing meters (reads cpuinfo, the CCF tables and, on bare metal, the
  // 4,900-row TDP table) and writing files.
  {
    auto t0 = Clock::now();
    auto set = energy::select_meters();
    double setup = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("fixed cost: selecting meters %.1f ms per run\n", setup * 1e3);
  }

  double lo = *std::min_element(joules.begin(), joules.end());
  double hi = *std::max_element(joules.begin(), joules.end());
  double spread = (hi - lo) / median(joules) * 100;
  std::printf(
      "run to run: %zu identical tracked runs, train energy min %.1f J, median %.1f J, "
      "max %.1f J, spread (max-min)/median %.2f%% (target <= 5%%)\n",
      joules.size(), lo, median(joules), hi, spread);
  // The estimate follows the CPU time the identical runs really used; on a loaded machine
  // that CPU time itself varies. Joules per CPU-second shows the estimator's own spread.
  std::vector<double> per_cpu;
  for (std::size_t i = 0; i < joules.size(); ++i) per_cpu.push_back(joules[i] / tracked_cpu[i]);
  double plo = *std::min_element(per_cpu.begin(), per_cpu.end());
  double phi = *std::max_element(per_cpu.begin(), per_cpu.end());
  double clo = *std::min_element(plain_cpu.begin(), plain_cpu.end());
  double chi = *std::max_element(plain_cpu.begin(), plain_cpu.end());
  std::printf(
      "run to run: CPU time of the identical untracked runs spreads %.2f%%; the "
      "estimate per CPU-second spreads %.2f%% (%.2f..%.2f J/s)\n",
      (chi - clo) / median(plain_cpu) * 100, (phi - plo) / median(per_cpu) * 100, plo, phi);
  std::printf("energy source: %s\n", source.c_str());
  return 0;
}

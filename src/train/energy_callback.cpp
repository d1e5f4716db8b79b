// Energy accounting hooks for the training loop (see energy_callback.hpp).
#include "verdant/train/energy_callback.hpp"

#include <cstdio>
#include <span>

#include "verdant/energy/meter.hpp"
#include "verdant/energy/sinks.hpp"
#include "verdant/train/trainer.hpp"

namespace verdant::train {

namespace {

energy::TrackerOptions tracker_options(const EnergyCallbackOptions& o) {
  energy::TrackerOptions t;
  t.interval_s = o.interval_s;
  t.project_name = o.project_name;
  t.experiment_id = o.experiment_id;
  t.price_per_kwh = o.price_per_kwh;
  t.currency = o.currency;
  t.location = o.location;
  t.scan_descendants = false;  // the trainer does its work in this process
  return t;
}

energy::MeterOptions meter_options(const EnergyCallbackOptions& o) {
  energy::MeterOptions m;
  m.estimate.power_model = o.power_model;
  m.estimate.cloud_provider = energy::cloud_provider_of(o.location.cloud);
  return m;
}

}  // namespace

EnergyCallback::EnergyCallback(EnergyCallbackOptions options)
    : EnergyCallback(options, energy::select_meters(meter_options(options)),
                     energy::resolve_carbon_intensity(options.location)) {}

EnergyCallback::EnergyCallback(EnergyCallbackOptions options, energy::MeterSet meters,
                               energy::CarbonIntensity carbon)
    : options_(std::move(options)) {
  if (options_.print)
    for (auto& w : meters.warnings) std::fprintf(stderr, "verdant: warning: %s\n", w.c_str());
  tracker_ = std::make_unique<energy::Tracker>(std::move(meters), std::move(carbon),
                                               tracker_options(options_));
}

EnergyCallback::~EnergyCallback() {
  // Training threw: close the phases without writing anything (the tracker stops itself).
  eval_.reset();
  epoch_.reset();
  train_.reset();
}

void EnergyCallback::end_open(std::optional<energy::Tracker::Phase>& phase, std::int64_t samples) {
  if (!phase) return;
  energy::PhaseResult r = phase->end();
  phase.reset();
  r.samples = samples;
  results_.push_back(std::move(r));
}

void EnergyCallback::on_train_begin(Trainer&) {
  results_.clear();
  train_samples_ = 0;
  tracker_->start();
  train_.emplace(tracker_->phase("train"));
}

void EnergyCallback::on_epoch_begin(Trainer&, std::int64_t epoch) {
  epoch_samples_ = 0;
  // 1-based in names and output, like the trainer's own table ("epoch 1/15").
  epoch_.emplace(tracker_->phase("epoch " + std::to_string(epoch + 1)));
}

void EnergyCallback::on_step_end(Trainer&, const StepInfo& step) {
  epoch_samples_ += step.batch_size;
  train_samples_ += step.batch_size;
  // After the epoch's last step the trainer evaluates (if it has an eval set), then calls
  // on_epoch_end: that stretch is the "eval N" phase.
  if (step.step + 1 == step.steps_per_epoch) {
    end_open(epoch_, epoch_samples_);
    eval_.emplace(tracker_->phase("eval " + std::to_string(step.epoch + 1)));
  }
}

void EnergyCallback::on_epoch_end(Trainer&, const EpochStats& stats) {
  end_open(epoch_, epoch_samples_);
  if (eval_) {
    energy::PhaseResult r = eval_->end();
    eval_.reset();
    if (stats.eval_loss >= 0) results_.push_back(std::move(r));  // no eval set: not a phase
  }
  if (options_.print && !results_.empty()) {
    const energy::PhaseResult* e = find("epoch " + std::to_string(stats.epoch + 1));
    if (e)
      std::fprintf(stderr, "energy: epoch %lld  %.1f J (%s)  %.3g J/sample\n",
                   static_cast<long long>(stats.epoch + 1), e->process.total(),
                   energy::measurement_kind(*e).c_str(),
                   e->samples > 0 ? e->process.total() / double(e->samples) : 0.0);
  }
}

void EnergyCallback::on_train_end(Trainer&) {
  end_open(eval_, 0);
  end_open(epoch_, epoch_samples_);
  end_open(train_, train_samples_);
  energy::PhaseResult total = tracker_->stop();
  total.samples = train_samples_;
  energy::RunInfo info = tracker_->run_info();
  std::vector<energy::PhaseResult> nodes;
  if (options_.combine) nodes = options_.combine(total, info);  // the job's, from every process
  results_.push_back(total);
  results_.insert(results_.end(), nodes.begin(), nodes.end());
  if (!options_.out_dir.empty()) {
    std::filesystem::create_directories(options_.out_dir);
    std::string warn = energy::append_emissions_csv(options_.out_dir / "emissions.csv",
                                                    std::span(&total, 1), info);
    if (!warn.empty() && options_.print)
      std::fprintf(stderr, "verdant: warning: %s\n", warn.c_str());
    energy::append_energy_jsonl(options_.out_dir / "energy.jsonl", results_, info);
  }
  if (options_.print) {
    std::fprintf(stderr,
                 "energy: total %.1f J = %.6f kWh (%s), %.3g J per training sample, %.3g g CO2eq "
                 "(%s)\nenergy: cpu %s\nenergy: dram %s\n",
                 total.process.total(), total.kwh(), energy::measurement_kind(total).c_str(),
                 joules_per_sample(), total.emissions_kg * 1000, info.carbon_description.c_str(),
                 energy::power_label(total, energy::Domain::cpu).c_str(),
                 energy::power_label(total, energy::Domain::dram).c_str());
    if (std::string(energy::domain_kind(total, energy::Domain::gpu)) != "none")
      std::fprintf(stderr, "energy: gpu %s\n",
                   energy::power_label(total, energy::Domain::gpu).c_str());
  }
}

const energy::PhaseResult* EnergyCallback::find(const std::string& phase) const {
  for (auto& r : results_)
    if (r.name == phase) return &r;
  return nullptr;
}

double EnergyCallback::joules_per_sample() const {
  const energy::PhaseResult* t = find("train");
  return t && t->samples > 0 ? t->process.total() / static_cast<double>(t->samples) : 0.0;
}

}  // namespace verdant::train

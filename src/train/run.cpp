#include "verdant/train/run.hpp"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "verdant/autograd/generator.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/core/process.hpp"
#include "verdant/core/threading.hpp"
#include "verdant/energy/power_model.hpp"
#include "verdant/kernels/isa.hpp"
#include "verdant/train/energy_callback.hpp"
#include "verdant/train/model_source.hpp"
#include "verdant/version.hpp"

namespace verdant::train {

namespace fs = std::filesystem;

double OptimizerOptions::resolved_lr() const {
  // SGD at 0.02, the usual PyTorch recipe's rate: on lenet5's 15-epoch cosine run it reaches
  // 90% test accuracy after epoch 5 where 0.05 needed 10, and ends as high (91.56 vs 91.50%).
  return lr.value_or(name == "sgd" ? 0.02 : 1e-3);
}

double OptimizerOptions::resolved_weight_decay() const {
  return weight_decay.value_or(name == "sgd" ? 5e-4 : name == "adamw" ? 0.01 : 0.0);
}

namespace {

std::string number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

// The output folder of a run. It is created when the loop is about to write into it; a run
// that fails before anything is written removes it again, so an early error leaves no empty
// folder behind.
class OutputDir {
 public:
  explicit OutputDir(fs::path path) : path_(std::move(path)) {}
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;
  void create() {
    if (path_.empty() || fs::exists(path_)) return;
    std::error_code ec;
    fs::create_directories(path_, ec);
    if (ec)
      throw SettingError("out_dir", "out_dir " + path_.string() +
                                        ": cannot create the directory: " + ec.message());
    created_ = true;
  }
  void keep() { created_ = false; }
  ~OutputDir() {
    std::error_code ec;
    if (created_ && fs::is_empty(path_, ec)) fs::remove(path_, ec);
  }

 private:
  fs::path path_;
  bool created_ = false;
};

// A test hook for the resume tests: VERDANT_DEBUG_SIGKILL_AT_STEP=N kills the process with
// SIGKILL right after global step N, at an arbitrary point mid-epoch, as an out-of-memory
// killer or a preemption would.
class KillAtStep : public TrainerCallback {
 public:
  explicit KillAtStep(std::int64_t step) : step_(step) {}
  void on_step_end(Trainer&, const StepInfo& s) override {
    if (s.global_step + 1 == step_) {
      std::fflush(nullptr);
      std::raise(SIGKILL);
    }
  }

 private:
  std::int64_t step_;
};

class StopAtAccuracy : public TrainerCallback {
 public:
  explicit StopAtAccuracy(double target) : target_(target) {}
  void on_epoch_end(Trainer& trainer, const EpochStats& s) override {
    if (reached_ || s.eval_accuracy < target_) return;
    reached_ = true;
    char reason[96];
    std::snprintf(reason, sizeof reason, "test accuracy %.2f%% reached %.2f%% after epoch %lld",
                  100 * s.eval_accuracy, 100 * target_, static_cast<long long>(s.epoch + 1));
    trainer.request_stop(reason);
  }
  // Stopped at an epoch's end, so that epoch's evaluation is of the final model.
  bool reached() const { return reached_; }

 private:
  double target_;
  bool reached_ = false;
};

nlohmann::json config_json(const TrainingOptions& o) {
  return {{"model", o.model},
          {"data", o.data.location.string()},
          {"epochs", o.resolved_epochs()},
          {"batch_size", o.batch_size},
          {"lr", o.optimizer.resolved_lr()},
          {"optimizer", o.optimizer.name},
          {"momentum", o.optimizer.momentum},
          {"nesterov", o.optimizer.nesterov},
          {"weight_decay", o.optimizer.resolved_weight_decay()},
          {"schedule", o.schedule.kind},
          {"cycle_epochs", o.schedule.cycle_epochs},
          {"cycle_mult", o.schedule.cycle_mult},
          {"warmup_steps", o.schedule.warmup},
          {"label_smoothing", o.label_smoothing},
          {"seed", o.seed},
          {"threads", num_threads()},
          {"limit_train", o.data.limit_train},
          {"limit_test", o.data.limit_test},
          {"checkpoint_every", o.checkpoint_every}};
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void say(const TrainingOptions& o, const std::string& line) {
  if (o.log) o.log(line);
}

// The checkpoint a resumed run starts from, or empty for a fresh start.
fs::path resume_source(const TrainingOptions& o, const fs::path& checkpoint_path) {
  if (!o.resume) return {};
  if (!o.resume_from.empty()) {
    if (!fs::exists(o.resume_from))
      throw SettingError("resume",
                         "resume " + o.resume_from.string() + ": no such checkpoint file");
    return o.resume_from;
  }
  if (checkpoint_path.empty()) throw SettingError("resume", "resume needs out_dir or a checkpoint");
  if (!fs::exists(checkpoint_path)) {
    say(o, "no checkpoint at " + checkpoint_path.string() + " yet; starting from the beginning");
    return {};
  }
  return checkpoint_path;
}

}  // namespace

void validate(const TrainingOptions& o) {
  const bool no_epochs = o.allow_no_epochs && o.resolved_epochs() == 0;
  validate(TrainOptions{.epochs = no_epochs ? 1 : o.resolved_epochs(),
                        .batch_size = o.batch_size,
                        .checkpoint_every = o.checkpoint_every,
                        .label_smoothing = static_cast<float>(o.label_smoothing)});
  if (o.stop_at_accuracy) {
    if (!(*o.stop_at_accuracy > 0 && *o.stop_at_accuracy <= 1))
      throw SettingError("stop_at_accuracy",
                         "stop_at_accuracy must be in (0, 1], got " + number(*o.stop_at_accuracy));
    if (!o.evaluate)
      throw SettingError(
          "stop_at_accuracy",
          "stop_at_accuracy needs the per-epoch evaluation, which is off (--no-eval)");
  }
  const auto& opt = o.optimizer;
  if (opt.name != "sgd" && opt.name != "adam" && opt.name != "adamw")
    throw SettingError("optimizer", "optimizer '" + opt.name + "' is not sgd, adam or adamw");
  const double lr = opt.resolved_lr();
  if (!(lr > 0) || !std::isfinite(lr))
    throw SettingError("lr", "lr must be positive, got " + number(lr));
  const double wd = opt.resolved_weight_decay();
  if (!(wd >= 0) || !std::isfinite(wd))
    throw SettingError("weight_decay", "weight_decay must not be negative, got " + number(wd));
  if (!(opt.momentum >= 0 && opt.momentum < 1))
    throw SettingError("momentum", "momentum must be in [0, 1), got " + number(opt.momentum));
  if (opt.nesterov && opt.momentum == 0)
    throw SettingError("nesterov", "nesterov needs a momentum above 0");
  const auto& s = o.schedule;
  if (s.kind != "restarts" && s.kind != "cosine" && s.kind != "step" && s.kind != "constant")
    throw SettingError("schedule",
                       "schedule '" + s.kind + "' is not restarts, cosine, step or constant");
  if (s.cycle_epochs < 1)
    throw SettingError("cycle_epochs",
                       "cycle_epochs must be at least 1, got " + std::to_string(s.cycle_epochs));
  if (s.cycle_mult < 1)
    throw SettingError("cycle_mult",
                       "cycle_mult must be at least 1, got " + std::to_string(s.cycle_mult));
  if (s.warmup < 0)
    throw SettingError("warmup", "warmup must not be negative, got " + std::to_string(s.warmup));
  if (o.threads < 0 || o.threads > kMaxThreads)
    throw SettingError("threads", "threads must be in [0, " + std::to_string(kMaxThreads) +
                                      "] (0: all cores), got " + std::to_string(o.threads));
  if (o.energy.enabled) {
    if (!(o.energy.interval_s > 0) || !std::isfinite(o.energy.interval_s))
      throw SettingError("energy_interval", "energy_interval must be a positive number of seconds");
    if (o.energy.location.pue &&
        !(*o.energy.location.pue >= 1.0 && std::isfinite(*o.energy.location.pue)))
      throw SettingError("pue",
                         "pue must be a number >= 1.0, got " + number(*o.energy.location.pue));
    if (o.energy.price_per_kwh &&
        !(*o.energy.price_per_kwh >= 0 && std::isfinite(*o.energy.price_per_kwh)))
      throw SettingError("price",
                         "price must be a number >= 0, got " + number(*o.energy.price_per_kwh));
    if (o.energy.location.wue) energy::validate_wue(*o.energy.location.wue);
    if (!o.energy.power_model.empty()) energy::validate_power_model(o.energy.power_model);
  }
  if (!o.out_dir.empty() && fs::exists(o.out_dir) && !fs::is_directory(o.out_dir))
    throw SettingError("out_dir",
                       "out_dir " + o.out_dir.string() + " exists and is not a directory");
}

std::unique_ptr<nn::Optimizer> make_optimizer(const OptimizerOptions& o, nn::Module& model) {
  const double lr = o.resolved_lr(), wd = o.resolved_weight_decay();
  if (o.name == "sgd")
    return std::make_unique<nn::SGD>(
        model.named_parameters(),
        nn::SGDOptions{
            .lr = lr, .momentum = o.momentum, .weight_decay = wd, .nesterov = o.nesterov});
  nn::AdamOptions a{.lr = lr, .weight_decay = wd};
  if (o.name == "adam") return std::make_unique<nn::Adam>(model.named_parameters(), a);
  return std::make_unique<nn::AdamW>(model.named_parameters(), a);
}

std::shared_ptr<const nn::LRSchedule> make_schedule(const ScheduleOptions& o, double lr,
                                                    std::int64_t epochs,
                                                    std::int64_t steps_per_epoch) {
  const std::int64_t total_steps = epochs * steps_per_epoch;
  std::shared_ptr<const nn::LRSchedule> s;
  if (o.kind == "constant")
    s = std::make_shared<nn::ConstantLR>(lr);
  else if (o.kind == "cosine")
    s = std::make_shared<nn::CosineLR>(lr, std::max<std::int64_t>(1, total_steps - o.warmup));
  else if (o.kind == "restarts")
    s = std::make_shared<nn::CosineRestartsLR>(
        lr,
        std::max<std::int64_t>(1, std::min(o.cycle_epochs, epochs) * steps_per_epoch - o.warmup),
        o.cycle_mult, std::max<std::int64_t>(1, total_steps - o.warmup));
  else  // step: divide by 10 every third of the run
    s = std::make_shared<nn::StepLR>(lr, std::max<std::int64_t>(1, epochs / 3) * steps_per_epoch,
                                     0.1);
  if (o.warmup > 0) s = std::make_shared<nn::WarmupLR>(s, o.warmup, 0.0);
  return s;
}

TrainingReport run_training(const TrainingOptions& o) {
  validate(o);
  set_num_threads(o.threads);
  const std::int64_t epochs = o.resolved_epochs();
  const fs::path checkpoint_path = o.out_dir.empty() ? fs::path() : o.out_dir / "checkpoint.vckpt";
  const fs::path resume_from = resume_source(o, checkpoint_path);
  // Only the writing process creates the folder; the others read the same checkpoint.
  const fs::path out_dir = o.write_outputs ? o.out_dir : fs::path();
  OutputDir out(out_dir);
  // Temporaries of earlier runs of this folder that were killed mid-write.
  if (!out_dir.empty())
    for (const char* file : {"checkpoint.vckpt", "results.json"})
      remove_stale_temporaries(out_dir / file);

  TrainingReport report;
  report.model = o.model;
  // Data first: a built-in model takes its input and output sizes from it. Loading data
  // draws nothing from the generator that initialises the model.
  data::DataSplit split = data::load_split(
      o.data, o.evaluate || o.test_at_end ? data::Parts::both : data::Parts::train);
  report.data = split.description;
  const DataShape data_shape{split.sample_shape, split.num_classes};
  autograd::manual_seed(o.seed);
  LoadedModel loaded = load_model(o.model, "model", data_shape);
  std::shared_ptr<nn::Sequential> model = loaded.model;
  check_model_fits(*model, data_shape, o.model, "the data (" + split.description + ")");
  for (const auto& note : loaded.notes) say(o, o.model + ": " + note);
  std::unique_ptr<nn::Optimizer> optimizer = make_optimizer(o.optimizer, *model);

  TrainOptions topts;
  // Without epochs the trainer still holds the model and data for the extensions; it never fits.
  const bool no_epochs = o.allow_no_epochs && epochs == 0;
  topts.epochs = no_epochs ? 1 : epochs;
  topts.batch_size = o.batch_size;
  topts.seed = o.seed;
  topts.checkpoint_every = o.checkpoint_every;
  topts.checkpoint_path = o.write_outputs ? checkpoint_path : fs::path();
  topts.shard = o.shard;
  topts.shards = o.shards;
  topts.reducer = o.reducer;
  topts.label_smoothing = static_cast<float>(o.label_smoothing);
  topts.checkpoint_meta = {{"model.spec", o.model}, {"train.config", config_json(o).dump()}};
  if (!loaded.yaml.empty()) topts.checkpoint_meta.emplace_back("model.yaml", loaded.yaml);
  for (auto& entry : data_meta(split)) topts.checkpoint_meta.push_back(std::move(entry));
  const double lr = o.optimizer.resolved_lr();
  const std::int64_t steps_per_epoch = (split.train->size() + o.batch_size - 1) / o.batch_size;
  std::shared_ptr<StopAtAccuracy> accuracy_target;
  if (o.stop_at_accuracy) accuracy_target = std::make_shared<StopAtAccuracy>(*o.stop_at_accuracy);

  auto new_trainer = [&] {
    auto t = std::make_unique<Trainer>(*model, *optimizer, *split.train, topts,
                                       make_schedule(o.schedule, lr, epochs, steps_per_epoch));
    if (o.evaluate) t->set_eval_set(split.test.get());
    for (const auto& cb : o.callbacks) t->add_callback(cb);
    if (accuracy_target) t->add_callback(accuracy_target);
    return t;
  };
  std::unique_ptr<Trainer> trainer = new_trainer();
  // VERDANT_DEBUG_SIGKILL_RANK=R limits it to one process of an MPI job.
  const char* kill_rank = std::getenv("VERDANT_DEBUG_SIGKILL_RANK");
  const char* my_rank = std::getenv("OMPI_COMM_WORLD_RANK");
  if (const char* k = std::getenv("VERDANT_DEBUG_SIGKILL_AT_STEP");
      k && (!kill_rank || (my_rank && std::string(kill_rank) == my_rank)))
    trainer->add_callback(std::make_shared<KillAtStep>(std::atoll(k)));

  TrainingContext context{o, model, split, *optimizer, *trainer, checkpoint_path, new_trainer};
  TrainingExtension* driver = nullptr;
  for (const auto& ext : o.extensions) {
    ext->attach(context);
    if (ext->drives_loop()) driver = ext.get();
  }
  std::shared_ptr<EnergyCallback> energy;
  if (o.energy.enabled && !driver) {
    EnergyCallbackOptions eo;
    eo.out_dir = out_dir;
    eo.location = o.energy.location;
    eo.price_per_kwh = o.energy.price_per_kwh;
    eo.interval_s = o.energy.interval_s;
    eo.power_model = o.energy.power_model;
    eo.project_name = "verdant-" + o.command;
    eo.experiment_id = o.model;
    eo.print = o.energy.print;
    eo.combine = o.energy.combine;
    energy = std::make_shared<EnergyCallback>(eo);
    // Added last, so its phases enclose every other callback's work.
    trainer->add_callback(energy);
  }

  if (!resume_from.empty()) {
    const Checkpoint ckpt = load_checkpoint(resume_from);
    if (const auto* spec = ckpt.find_meta("model.spec"); spec && *spec != o.model)
      throw SettingError("resume", "resume " + resume_from.string() +
                                       ": the checkpoint holds model '" + *spec + "', not '" +
                                       o.model + "'");
    trainer->resume_from(resume_from);
    report.resumed_from = resume_from;
    say(o, "resumed from " + resume_from.string() + " at epoch " +
               std::to_string(trainer->epoch() + 1) + ", step " +
               std::to_string(trainer->step_in_epoch()));
  }
  report.parameters = model->num_parameters();
  say(o, o.command + "ing " + o.model + " (" + std::to_string(report.parameters) +
             " parameters) on " + split.description);
  char line[256];
  std::snprintf(line, sizeof line,
                "%s lr %g, batch %lld, %lld epochs, %s schedule, seed %llu, %d threads",
                o.optimizer.name.c_str(), lr, static_cast<long long>(o.batch_size),
                static_cast<long long>(epochs), o.schedule.kind.c_str(),
                static_cast<unsigned long long>(o.seed), num_threads());
  say(o, line);
  say(o, "kernels: " + kernels::training_kernels());

  out.create();
  std::optional<FitResult> fit;
  if (no_epochs)
    fit = FitResult{};
  else if (driver)
    fit = driver->fit(context);
  report.fit = fit ? std::move(*fit) : trainer->fit();
  out.keep();
  for (const auto& ext : o.extensions) ext->finish(context, report);
  report.final_model = context.model;

  // The whole test part, unless the last epoch's evaluation already covered this model.
  if (o.test_at_end) {
    const auto& epochs_done = report.fit.epochs;
    if (!epochs_done.empty() && epochs_done.back().eval_accuracy >= 0 &&
        (!report.fit.stopped_early || (accuracy_target && accuracy_target->reached())) &&
        o.extensions.empty()) {
      report.test = EvalResult{.loss = epochs_done.back().eval_loss,
                               .accuracy = epochs_done.back().eval_accuracy,
                               .samples = split.test->size()};
    } else {
      report.test =
          evaluate_sharded(*context.model, *split.test, topts.eval_batch_size,
                           &context.trainer.objective(), o.shard, o.shards, o.reducer.get());
    }
  }
  std::vector<double> seconds;
  for (const auto& e : report.fit.epochs) seconds.push_back(e.seconds);
  report.median_epoch_seconds = median(seconds);
  report.peak_rss_mib = peak_rss_mib();
  if (energy) {
    if (const auto* total = energy->find("total")) report.energy = *total;
  }
  if (!out_dir.empty()) {
    const fs::path results = out_dir / "results.json";
    write_file_atomic(results, results_json(o, report));
    report.files = {results, checkpoint_path};
  }
  return report;
}

EvaluationReport run_evaluation(const EvaluationOptions& o) {
  if (o.batch_size <= 0)
    throw SettingError("batch_size",
                       "batch_size must be positive, got " + std::to_string(o.batch_size));
  set_num_threads(o.threads);
  const LoadedModel loaded = load_model(o.checkpoint, "checkpoint");
  data::DataOptions data = o.data;
  if (loaded.checkpoint) apply_data_meta(*loaded.checkpoint, o.checkpoint, data);
  const data::DataSplit split = data::load_split(data, data::Parts::test);
  check_model_fits(*loaded.model, {split.sample_shape, split.num_classes}, o.checkpoint,
                   "the data (" + split.description + ")");
  EvaluationReport r;
  const std::string* spec =
      loaded.checkpoint ? loaded.checkpoint->find_meta("model.spec") : nullptr;
  r.model_spec = spec ? *spec : loaded.checkpoint ? "?" : o.checkpoint;
  r.data = split.description;
  r.result = evaluate(*loaded.model, *split.test, o.batch_size);
  if (!o.json_out.empty()) {
    const nlohmann::json j = {{"command", "eval"},          {"checkpoint", o.checkpoint},
                              {"model", spec ? *spec : ""}, {"accuracy", r.result.accuracy},
                              {"loss", r.result.loss},      {"samples", r.result.samples},
                              {"correct", r.result.correct}};
    write_file_atomic(o.json_out, j.dump(2) + "\n");
  }
  return r;
}

std::string results_json(const TrainingOptions& o, const TrainingReport& r) {
  nlohmann::json j;
  j["verdant_version"] = kVersion;
  j["command"] = o.command;
  j["config"] = config_json(o);
  j["model"] = {{"spec", r.model}, {"parameters", r.parameters}};
  j["data"] = r.data;
  j["epochs"] = nlohmann::json::array();
  std::vector<double> seconds;
  for (const auto& e : r.fit.epochs) {
    nlohmann::json je = {{"epoch", e.epoch + 1},         {"train_loss", e.loss},
                         {"train_accuracy", e.accuracy}, {"seconds", e.seconds},
                         {"samples", e.samples},         {"lr", e.lr}};
    if (e.eval_accuracy >= 0) {
      je["test_loss"] = e.eval_loss;
      je["test_accuracy"] = e.eval_accuracy;
    }
    j["epochs"].push_back(je);
    seconds.push_back(e.seconds);
  }
  if (r.test)
    j["test"] = {
        {"accuracy", r.test->accuracy}, {"loss", r.test->loss}, {"samples", r.test->samples}};
  j["timing"] = {{"median_epoch_seconds", r.median_epoch_seconds},
                 {"epoch_seconds", seconds},
                 {"this_process_seconds", r.fit.train_seconds}};
  j["peak_rss_mib"] = r.peak_rss_mib;
  j["kernels"] = kernels::training_kernels();
  j["stopped_early"] = r.fit.stopped_early;
  if (r.fit.stopped_early) j["stop_reason"] = r.fit.stop_reason;
  if (!r.notes.empty()) j["notes"] = r.notes;
  if (!o.out_dir.empty()) j["checkpoint"] = (o.out_dir / "checkpoint.vckpt").string();
  return j.dump(2) + "\n";
}

}  // namespace verdant::train

#include "options.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "verdant/core/threading.hpp"

namespace verdant::cli {

namespace {

// A number check on the flag's text; `ok` decides, `want` says what was expected.
template <typename Ok>
CLI::Validator number_check(Ok ok, std::string want, std::string name) {
  return CLI::Validator(
      [ok, want](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0') return "must be a number, got '" + text + "'";
        if (!std::isfinite(v) || !ok(v)) return "must be " + want + ", got " + text;
        return {};
      },
      "", std::move(name));
}

}  // namespace

CLI::Validator positive() {
  return number_check([](double v) { return v > 0; }, "positive", "POSITIVE");
}

CLI::Validator non_negative() {
  return number_check([](double v) { return v >= 0; }, "non-negative", "NON-NEGATIVE");
}

CLI::Validator fraction_below(double hi) {
  char want[64];
  std::snprintf(want, sizeof want, "in [0, %g)", hi);
  return number_check([hi](double v) { return v >= 0 && v < hi; }, want, "FRACTION");
}

CLI::Validator at_least(double lo) {
  char want[64];
  std::snprintf(want, sizeof want, "at least %g", lo);
  return number_check([lo](double v) { return v >= lo; }, want, "NUMBER");
}

CLI::Validator threads_range() {
  return number_check([](double v) { return v >= 0 && v <= kMaxThreads && v == std::floor(v); },
                      "a whole number in [0, " + std::to_string(kMaxThreads) + "] (0: all cores)",
                      "THREADS");
}

std::string flag_for_setting(const CLI::App& app, const std::string& setting) {
  std::string flag = "--" + setting;
  for (auto& c : flag)
    if (c == '_') c = '-';
  if (app.get_option_no_throw(flag) != nullptr) return flag;
  if (app.get_option_no_throw(setting) != nullptr) {
    std::string name = setting;
    for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return name;
  }
  return {};
}

void add_threads_option(CLI::App& app, int& threads) {
  app.add_option("--threads", threads, "Threads (0: all cores)")
      ->check(threads_range())
      ->capture_default_str();
}

CLI::Option* add_data_options(CLI::App& app, data::DataOptions& data, const DataFlags& flags) {
  auto* location = app.add_option(
      flags.location_flag, data.location,
      flags.location_help.empty()
          ? "Data: a folder of IDX files (Fashion-MNIST's names), a .csv (or .csv.gz), .npy "
            "(labels in --labels), .npz (arrays --x-array, --y-array) or an IDX -ubyte file"
          : flags.location_help);
  location->capture_default_str();
  app.add_option("--labels", data.labels, "The labels of a .npy or IDX --data file");
  app.add_option("--test-data", data.test_location,
                 "The test part in its own file (default: the folder's test files, or "
                 "--test-fraction of --data)");
  app.add_option("--test-labels", data.test_labels, "The labels of a .npy or IDX --test-data");
  app.add_option("--test-fraction", data.test_fraction,
                 "Hold out this fraction of a single --data file for testing (default 0.2)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--split-seed", data.split_seed, "Seed of the held-out split")
      ->capture_default_str();
  app.add_option("--label-column", data.csv.label_column,
                 "CSV: the label column by name or 0-based index (default: the last)");
  app.add_option("--delimiter", data.csv.delimiter, "CSV: the field delimiter (default ',')");
  const std::map<std::string, data::CsvOptions::Header> headers{
      {"auto", data::CsvOptions::Header::automatic},
      {"yes", data::CsvOptions::Header::yes},
      {"no", data::CsvOptions::Header::no}};
  app.add_option("--header", data.csv.header,
                 "CSV: whether the first line names the columns: auto (when it is not all "
                 "numbers), yes or no")
      ->transform(CLI::CheckedTransformer(headers))
      ->default_str("auto");
  app.add_option("--x-array", data.x_array, ".npz: the features array")->capture_default_str();
  app.add_option("--y-array", data.y_array, ".npz: the labels array")->capture_default_str();
  app.add_option("--shape", data.shape,
                 "The sample shape C,H,W for flat features (e.g. 1,8,8 for 64 pixels), so a CNN "
                 "can take them")
      ->delimiter(',')
      ->check(positive());
  if (flags.limit_train)
    app.add_option("--limit-train", data.limit_train,
                   "Use only the first N training samples (0: all)")
        ->check(non_negative());
  if (flags.limit_test)
    app.add_option("--limit-test", data.limit_test, "Use only the first N test samples (0: all)")
        ->check(non_negative());
  return location;
}

void add_location_options(CLI::App& app, energy::LocationRequest& location,
                          std::optional<double>& price) {
  app.add_option("--country", location.country,
                 "Grid location for carbon figures: country (e.g. FRA)");
  app.add_option("--cloud", location.cloud, "Grid location: cloud region (e.g. aws:us-east-1)");
  app.add_option("--grid-zone", location.grid_zone,
                 "Grid location: zone (e.g. US-CISO) or intensity series file");
  app.add_option("--pue", location.pue, "Data-centre PUE (default: the location's or 1.0)")
      ->check(at_least(1.0));
  app.add_option("--wue", location.wue,
                 "Data-centre WUE, litres of water per kWh for water_consumed (default 0)")
      ->check(non_negative());
  app.add_option("--price", price, "Electricity price per kWh for the cost figure")
      ->check(non_negative());
}

void add_energy_model_options(CLI::App& app, std::filesystem::path& power_model) {
  app.add_option("--power-model", power_model,
                 "Power model FILE from `verdant calibrate` on a twin machine, for the estimate "
                 "where RAPL is not readable");
}

void add_training_options(CLI::App& app, train::TrainingOptions& o, TrainingFlags& flags) {
  app.add_option("--model", o.model,
                 "Built-in model (mlp, lenet5), YAML model file, checkpoint or .onnx file to start "
                 "from")
      ->capture_default_str();
  add_data_options(app, o.data);
  app.add_option("--epochs", o.epochs,
                 "Number of epochs (train: 15; compress: the recipe's, else 1)")
      ->check(positive());
  app.add_option("--batch-size", o.batch_size, "Samples per step")
      ->check(positive())
      ->capture_default_str();
  app.add_option("--optimizer", o.optimizer.name, "sgd, adam or adamw")
      ->check(CLI::IsMember({"sgd", "adam", "adamw"}))
      ->capture_default_str();
  app.add_option("--lr", o.optimizer.lr,
                 "Peak learning rate (train: 0.02 for sgd, 0.001 for adam/adamw; compress: the "
                 "recipe's, else 0.01)")
      ->check(positive());
  app.add_option("--momentum", o.optimizer.momentum, "SGD momentum")
      ->check(fraction_below(1.0))
      ->capture_default_str();
  app.add_flag("--nesterov", o.optimizer.nesterov, "Nesterov momentum (sgd)");
  app.add_option("--weight-decay", o.optimizer.weight_decay,
                 "Weight decay (train: 5e-4 for sgd, 0 for adam, 0.01 for adamw; compress: 0)")
      ->check(non_negative());
  app.add_option("--schedule", o.schedule.kind,
                 "Learning-rate schedule: restarts (cosine with warm restarts), cosine, step or "
                 "constant")
      ->check(CLI::IsMember({"restarts", "cosine", "step", "constant"}))
      ->capture_default_str();
  app.add_option("--cycle-epochs", o.schedule.cycle_epochs,
                 "restarts: epochs of the first cycle (torch's T_0, in epochs)")
      ->check(positive())
      ->capture_default_str();
  app.add_option("--cycle-mult", o.schedule.cycle_mult,
                 "restarts: each cycle this many times the one before (torch's T_mult); a cycle "
                 "that would end after the run joins the one before it")
      ->check(positive())
      ->capture_default_str();
  app.add_option("--warmup", o.schedule.warmup, "Linear warm-up steps before the schedule")
      ->check(non_negative())
      ->capture_default_str();
  app.add_option("--label-smoothing", o.label_smoothing, "Cross-entropy label smoothing")
      ->check(fraction_below(1.0))
      ->capture_default_str();
  app.add_option("--seed", o.seed, "Seed for initialisation, data order, dropout and masks")
      ->capture_default_str();
  add_threads_option(app, o.threads);
  app.add_option("--out", o.out_dir,
                 "Output directory (results.json, checkpoint.vckpt, emissions.csv, energy.jsonl)")
      ->capture_default_str();
  flags.resume =
      app.add_option("--resume", o.resume_from,
                     "Continue from a checkpoint (default: OUT/checkpoint.vckpt if present)");
  flags.resume->expected(0, 1);
  app.add_option("--checkpoint-every", o.checkpoint_every,
                 "Also write a checkpoint every N steps (0: at epoch ends only)")
      ->check(non_negative())
      ->capture_default_str();
  app.add_flag("--no-eval", flags.no_eval, "Skip the test set (no per-epoch evaluation)");
  app.add_option("--stop-at-accuracy", o.stop_at_accuracy,
                 "End after the first epoch whose test accuracy reaches this fraction (e.g. "
                 "0.9): the energy to a result, not to a fixed budget")
      ->check(CLI::Range(0.0, 1.0).description("in (0, 1]"));
  app.add_flag("--no-energy", flags.no_energy,
               "Do not track energy (no emissions.csv / energy.jsonl)");
  add_location_options(app, o.energy.location, o.energy.price_per_kwh);
  add_energy_model_options(app, o.energy.power_model);
  app.add_option("--energy-interval", o.energy.interval_s, "Energy sampling interval in seconds")
      ->check(positive())
      ->capture_default_str();
  app.add_flag("--distributed", flags.distributed,
               "Data-parallel over the processes of an MPI job (implied under mpirun); "
               "--batch-size is the global batch");
  app.add_flag("--no-overlap", flags.no_overlap,
               "Distributed: one allreduce after backward instead of buckets during it");
  app.add_option("--bucket-mb", flags.bucket_mb, "Distributed: gradient bucket size in MB")
      ->check(positive())
      ->capture_default_str();
}

std::shared_ptr<dist::CommStats> apply_training_flags(train::TrainingOptions& o,
                                                      const TrainingFlags& flags) {
  o.resume = flags.resume->count() > 0;
  o.evaluate = !flags.no_eval;
  o.test_at_end = !flags.no_eval;
  o.energy.enabled = !flags.no_energy;
  if (!flags.distributed && !dist::launched_by_mpirun()) return std::make_shared<dist::CommStats>();
  dist::Communicator::world(flags.distributed);
  auto stats =
      dist::make_data_parallel(o, {.overlap = !flags.no_overlap, .bucket_mb = flags.bucket_mb});
  if (!reports()) o.energy.print = false;
  return stats;
}

bool reports() {
  return !dist::launched_by_mpirun() || dist::Communicator::world().rank() == 0;
}

void print_line(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace verdant::cli

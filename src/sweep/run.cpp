#include "verdant/sweep/run.hpp"
#include "verdant/core/text.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "verdant/compress/run.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/energy/carbon.hpp"
#include "verdant/energy/meter.hpp"
#include "verdant/energy/tracker.hpp"
#include "verdant/export/run.hpp"
#include "verdant/runtime/model.hpp"
#include "verdant/train/checkpoint.hpp"

namespace verdant::sweep {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string model_tag(const std::string& model) {
  std::string tag = fs::path(model).stem().string();
  for (char& c : tag)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  return tag.empty() ? "model" : tag;
}

std::string trial_id(const std::string& model, const Candidate& c, std::uint64_t seed) {
  return model_tag(model) + "-" + c.name + "-seed" + std::to_string(seed);
}

std::string joules_text(double j) {
  if (j >= 1e6) return format_number("%.2f MJ", j / 1e6);
  if (j >= 1e3) return format_number("%.2f kJ", j / 1e3);
  return format_number("%.1f J", j);
}

}  // namespace

std::string trial_json(const TrialResult& t) {
  json j = {{"id", t.id},
            {"model", t.model},
            {"candidate", t.candidate},
            {"seed", t.seed},
            {"sparsity", t.sparsity},
            {"structure", t.structure},
            {"precision", t.precision},
            {"distill", t.distill},
            {"accuracy", t.accuracy},
            {"accuracy_before", t.accuracy_before},
            {"epochs", t.epochs},
            {"train_seconds", t.train_seconds},
            {"train_joules", t.train_joules},
            {"train_energy_label", t.train_energy_label},
            {"train_gco2", t.train_gco2},
            {"train_flops", t.train_flops},
            {"params", t.params},
            {"nonzero", t.nonzero},
            {"flops", t.flops},
            {"bytes", t.bytes},
            {"vdm_precision", t.vdm_precision},
            {"latency_us", t.latency_us},
            {"inference_joules_per_1000", t.inference_joules_per_1000},
            {"inference_energy_label", t.inference_energy_label},
            {"folder", t.folder}};
  j["layers"] = json::array();
  for (const auto& [name, s] : t.layer_sparsity)
    j["layers"].push_back({{"name", name}, {"sparsity", s}});
  return j.dump(2) + "\n";
}

TrialResult parse_trial(const std::string& text, const std::string& origin) {
  TrialResult t;
  try {
    const json j = json::parse(text);
    t.id = j.at("id");
    t.model = j.at("model");
    t.candidate = j.at("candidate");
    t.seed = j.at("seed");
    t.sparsity = j.at("sparsity");
    t.structure = j.at("structure");
    t.precision = j.at("precision");
    t.distill = j.at("distill");
    t.accuracy = j.at("accuracy");
    t.accuracy_before = j.at("accuracy_before");
    t.epochs = j.at("epochs");
    t.train_seconds = j.at("train_seconds");
    t.train_joules = j.at("train_joules");
    t.train_energy_label = j.at("train_energy_label");
    t.train_gco2 = j.at("train_gco2");
    t.train_flops = j.at("train_flops");
    t.params = j.at("params");
    t.nonzero = j.at("nonzero");
    t.flops = j.at("flops");
    t.bytes = j.at("bytes");
    t.vdm_precision = j.at("vdm_precision");
    t.latency_us = j.at("latency_us");
    t.inference_joules_per_1000 = j.at("inference_joules_per_1000");
    t.inference_energy_label = j.at("inference_energy_label");
    t.folder = j.at("folder");
    for (const auto& l : j.at("layers"))
      t.layer_sparsity.emplace_back(l.at("name"), l.at("sparsity"));
  } catch (const json::exception& e) {
    throw Error(origin + ": not a trial result (" + e.what() + ")");
  }
  return t;
}

namespace {

// Latency (median, batch 1, one thread) and energy per 1,000 inferences of a .vdm on the
// edge runtime, over `samples` test inputs as the exported model takes them.
void measure_inference(const fs::path& vdm, const data::DataOptions& inputs, std::int64_t samples,
                       TrialResult& t) {
  std::string err;
  auto model = runtime::Model::load_file(vdm.string(), &err);
  if (!model) throw Error("sweep: exported model does not load: " + err);
  const data::DataSplit split = data::load_split(inputs, data::Parts::test);
  const std::int64_t n = std::min<std::int64_t>(samples, split.test->size());
  const std::size_t per = model->input_size();
  std::vector<float> x(static_cast<std::size_t>(n) * per);
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) idx[static_cast<std::size_t>(i)] = i;
  split.test->fill(idx, x.data(), y.data());
  std::vector<float> out(model->output_size());
  for (std::int64_t i = 0; i < std::min<std::int64_t>(n, 32); ++i)  // warm caches
    model->run(x.data() + static_cast<std::size_t>(i) * per, per, out.data(), out.size());
  energy::TrackerOptions to;
  to.interval_s = 0.25;
  to.scan_descendants = false;
  energy::Tracker tracker(energy::select_meters(), energy::resolve_carbon_intensity({}), to);
  tracker.start();
  std::vector<double> us(static_cast<std::size_t>(n));
  // At least a second of work, so the energy meter sees more than its own sampling.
  const auto t0 = Clock::now();
  std::int64_t runs = 0;
  do {
    for (std::int64_t i = 0; i < n; ++i) {
      const auto a = Clock::now();
      model->run(x.data() + static_cast<std::size_t>(i) * per, per, out.data(), out.size());
      const double d = std::chrono::duration<double, std::micro>(Clock::now() - a).count();
      if (runs < n) us[static_cast<std::size_t>(i)] = d;
      ++runs;
    }
  } while (seconds_since(t0) < 1.0);
  const energy::PhaseResult total = tracker.stop();
  std::nth_element(us.begin(), us.begin() + static_cast<std::ptrdiff_t>(us.size() / 2), us.end());
  t.latency_us = us[us.size() / 2];
  t.inference_joules_per_1000 = total.process.total() / double(runs) * 1000.0;
  t.inference_energy_label = energy::measurement_label(total);
}

TrialResult run_trial(const SweepSpec& spec, const SweepOptions& o, const std::string& model,
                      const Candidate& c, std::uint64_t seed) {
  TrialResult t;
  t.id = trial_id(model, c, seed);
  t.model = model;
  t.candidate = c.name;
  t.seed = seed;
  t.sparsity = c.sparsity;
  t.structure = c.structure;
  t.precision = c.precision;
  t.distill = c.distill;
  const fs::path folder = o.out / "runs" / t.id;
  t.folder = folder.string();
  fs::remove_all(folder);  // an interrupted trial is redone from the start

  compress::RunOptions run;
  if (!c.recipe_file.empty()) {
    run.recipe = c.recipe_file;
  } else {
    run.recipe = o.out / "recipes" / (c.name + ".yaml");
    write_file_atomic(run.recipe, c.recipe_yaml);
  }
  train::TrainingOptions& tr = run.training;
  tr.model = model;
  tr.data = spec.data;
  if (o.limit_train) tr.data.limit_train = *o.limit_train;
  if (o.limit_test) tr.data.limit_test = *o.limit_test;
  tr.epochs = spec.epochs;
  tr.seed = seed;
  tr.batch_size = spec.batch_size;
  tr.optimizer.lr = spec.lr.value_or(0.05);
  tr.optimizer.weight_decay = spec.weight_decay.value_or(5e-4);
  tr.threads = o.threads;
  tr.out_dir = folder;
  tr.energy = o.energy;
  tr.energy.print = false;
  tr.callbacks = o.callbacks;
  const compress::RunReport rep = compress::run_recipe(run);
  t.accuracy = rep.accuracy_after;
  t.accuracy_before = rep.accuracy_before;
  t.epochs = rep.epochs;
  t.train_seconds = rep.training.fit.train_seconds;
  t.train_joules = rep.energy_joules.value_or(0.0);
  t.train_energy_label = rep.energy_joules ? rep.energy_label : "not tracked";
  t.train_gco2 = rep.training.energy ? rep.training.energy->emissions_kg * 1000.0 : 0.0;
  std::int64_t samples = 0;
  for (const auto& e : rep.training.fit.epochs) samples += e.samples;
  t.train_flops = 3.0 * double(rep.flops_dense) * double(samples);
  t.params = rep.params_after;
  t.nonzero = rep.nonzero_after;
  t.flops = rep.flops_after;
  for (const auto& l : rep.layers) t.layer_sparsity.emplace_back(l.name, l.sparsity());

  // The edge model: int8 when the recipe quantized, with the ranges it learned.
  exporter::ExportJobOptions ex;
  ex.model = (folder / "model.vckpt").string();
  ex.out = folder / "model.vdm";
  ex.precision = rep.int8 ? exporter::Precision::int8 : exporter::Precision::fp32;
  exporter::run_export(ex);
  t.vdm_precision = rep.int8 ? "int8" : "fp32";
  t.bytes = static_cast<std::int64_t>(fs::file_size(ex.out));
  const train::Checkpoint ckpt = train::load_checkpoint(ex.model);
  measure_inference(ex.out, exporter::exported_model_inputs(&ckpt, tr.data, ex.model),
                    spec.latency_samples, t);
  return t;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

double std_of(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

std::vector<CandidateSummary> summarize(const std::vector<TrialResult>& trials) {
  std::vector<CandidateSummary> out;
  std::map<std::pair<std::string, std::string>, std::vector<const TrialResult*>> groups;
  std::vector<std::pair<std::string, std::string>> order;
  for (const auto& t : trials) {
    auto key = std::pair(t.model, t.candidate);
    if (!groups.count(key)) order.push_back(key);
    groups[key].push_back(&t);
  }
  for (const auto& key : order) {
    const auto& g = groups[key];
    CandidateSummary s;
    s.model = key.first;
    s.candidate = key.second;
    s.sparsity = g[0]->sparsity;
    s.structure = g[0]->structure;
    s.precision = g[0]->precision;
    s.distill = g[0]->distill;
    s.seeds = g.size();
    std::vector<double> acc, tj, ts, tg, tf, ij, lat;
    for (const auto* t : g) {
      acc.push_back(t->accuracy);
      tj.push_back(t->train_joules);
      ts.push_back(t->train_seconds);
      tg.push_back(t->train_gco2);
      tf.push_back(t->train_flops);
      ij.push_back(t->inference_joules_per_1000);
      lat.push_back(t->latency_us);
      s.trials.push_back(t->id);
    }
    s.accuracy = mean_of(acc);
    s.accuracy_std = std_of(acc);
    s.train_joules = mean_of(tj);
    s.train_seconds = mean_of(ts);
    s.train_gco2 = mean_of(tg);
    s.train_flops = mean_of(tf);
    s.inference_joules_per_1000 = mean_of(ij);
    s.latency_us = mean_of(lat);
    s.bytes = g[0]->bytes;
    s.nonzero = g[0]->nonzero;
    s.params = g[0]->params;
    if (s.precision == "recipe" && s.params > 0)
      s.sparsity = 1.0 - double(s.nonzero) / double(s.params);
    out.push_back(std::move(s));
  }
  return out;
}

double objective_cost(const CandidateSummary& s, Objective o, std::int64_t inferences) {
  switch (o) {
    case Objective::total_energy:
      return s.train_joules + double(inferences) * s.inference_joules_per_1000 / 1000.0;
    case Objective::inference_energy:
      return s.inference_joules_per_1000;
    case Objective::bytes:
      return double(s.bytes);
  }
  return 0;
}

// 1000000 -> "1,000,000".
std::string grouped(std::int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3)
    s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

std::string objective_text(Objective o, double cost, std::int64_t inferences) {
  switch (o) {
    case Objective::total_energy:
      return joules_text(cost) + " for training and " + grouped(inferences) + " inferences";
    case Objective::inference_energy:
      return format_number("%.3g J per 1,000 inferences", cost);
    case Objective::bytes:
      return grouped(static_cast<std::int64_t>(cost)) + " bytes";
  }
  return "";
}

std::vector<std::size_t> front_of(const std::vector<CandidateSummary>& s,
                                  double (*cost)(const CandidateSummary&)) {
  std::vector<TradeOff> p;
  for (const auto& c : s) p.push_back({c.accuracy, cost(c)});
  return pareto_front(p);
}

EdgeOrCloud edge_or_cloud(const SweepSpec& spec, const CandidateSummary& pick,
                          std::int64_t request_bytes, const energy::LocationRequest& device) {
  EdgeOrCloud e;
  energy::LocationRequest region;
  region.cloud = spec.cloud.region;
  const energy::CarbonIntensity cloud = energy::resolve_carbon_intensity(region);
  const energy::CarbonIntensity here = energy::resolve_carbon_intensity(device);
  const energy::CarbonIntensity world = energy::resolve_carbon_intensity({});
  const double joules_per_byte = spec.cloud.network_kwh_per_gb * energy::kJoulesPerKwh / 1e9;
  const double network = double(request_bytes + spec.cloud.response_bytes) * joules_per_byte;
  const double compute = pick.inference_joules_per_1000 / 1000.0;
  e.edge_joules_per_inference = compute;
  e.cloud_joules_per_inference = compute * cloud.pue() + network;
  e.download_joules = double(pick.bytes) * joules_per_byte;
  // Grams per joule: the network's share on the world's average grid, since it spans many.
  const auto g_per_j = [](const energy::CarbonIntensity& c) {
    return c.mean_gco2_per_kwh() / energy::kJoulesPerKwh;
  };
  e.edge_gco2_per_inference = compute * g_per_j(here) * here.pue();
  e.cloud_gco2_per_inference = compute * cloud.pue() * g_per_j(cloud) + network * g_per_j(world);
  const double download_g = e.download_joules * g_per_j(world);
  if (e.cloud_gco2_per_inference > e.edge_gco2_per_inference)
    e.crossover = download_g / (e.cloud_gco2_per_inference - e.edge_gco2_per_inference);
  char line[512];
  std::snprintf(line, sizeof line,
                "edge or cloud (%s, network %.3g kWh/GB, Aslan et al. 2018): device %.3g J and "
                "%.3g mg CO2eq per inference (%s), cloud %.3g J and %.3g mg (PUE %.2f, %s, %lld "
                "bytes each way and back); ",
                spec.cloud.region.c_str(), spec.cloud.network_kwh_per_gb,
                e.edge_joules_per_inference, 1000 * e.edge_gco2_per_inference,
                here.description().c_str(), e.cloud_joules_per_inference,
                1000 * e.cloud_gco2_per_inference, cloud.pue(), cloud.description().c_str(),
                static_cast<long long>(request_bytes + spec.cloud.response_bytes));
  e.text = line;
  if (e.crossover)
    e.text += "the device emits less from inference " +
              grouped(static_cast<std::int64_t>(std::ceil(*e.crossover))) +
              " on (its model download costs " + format_number("%.3g", 1000 * download_g) +
              " mg once)";
  else
    e.text += "the cloud emits less per inference: serving from the device never pays back";
  return e;
}

}  // namespace

SweepReport analyse(const SweepSpec& spec, std::vector<TrialResult> trials) {
  SweepReport r;
  r.spec = spec;
  r.trials = std::move(trials);
  r.summaries = summarize(r.trials);
  for (std::size_t i = 0; i < r.summaries.size(); ++i)
    if (r.summaries[i].candidate == "dense" && r.summaries[i].model == spec.models.front()) {
      r.dense = i;
      break;
    }
  r.front_train_energy =
      front_of(r.summaries, [](const CandidateSummary& c) { return c.train_joules; });
  r.front_inference_energy =
      front_of(r.summaries, [](const CandidateSummary& c) { return c.inference_joules_per_1000; });
  r.front_bytes = front_of(r.summaries, [](const CandidateSummary& c) { return double(c.bytes); });
  r.front_latency = front_of(r.summaries, [](const CandidateSummary& c) { return c.latency_us; });
  if (!r.dense) return r;
  const CandidateSummary& dense = r.summaries[*r.dense];
  const double floor = spec.budget.floor(dense.accuracy);
  std::vector<TradeOff> points;
  for (const auto& s : r.summaries)
    points.push_back({s.accuracy, objective_cost(s, spec.objective, spec.inferences)});
  const auto picked = cheapest_within(points, floor);
  if (!picked) return r;
  const CandidateSummary& p = r.summaries[*picked];
  Pick pick{*picked, "", points[*picked].cost};
  char line[640];
  std::snprintf(line, sizeof line,
                "picked %s (%s): %.2f%% test accuracy, %+.2f points against dense %.2f%% (budget: "
                "at most %s lost); %s against dense %s: the least %s within the budget",
                p.candidate.c_str(), p.model.c_str(), 100 * p.accuracy,
                100 * (p.accuracy - dense.accuracy), 100 * dense.accuracy,
                spec.budget.text().c_str(),
                objective_text(spec.objective, pick.objective, spec.inferences).c_str(),
                objective_text(spec.objective, points[*r.dense].cost, spec.inferences).c_str(),
                spec.objective == Objective::bytes ? "file size" : "energy");
  pick.reason = line;
  r.pick = pick;

  const double extra = p.train_joules - dense.train_joules;
  const double saving = (dense.inference_joules_per_1000 - p.inference_joules_per_1000) / 1000.0;
  if (extra > 0 && saving > 0) {
    r.break_even.inferences = extra / saving;
    r.break_even.text =
        "break-even: its " + joules_text(extra) + " more training energy is paid back after " +
        grouped(static_cast<std::int64_t>(std::ceil(extra / saving))) + " inferences (" +
        format_number("%.3g", saving * 1000) + " J less per 1,000)";
  } else if (saving > 0) {
    r.break_even.inferences = 0;
    r.break_even.text =
        "break-even: cheaper to train and to run than dense, from the first "
        "inference";
  } else {
    r.break_even.text = "break-even: never; it costs as much or more per inference than dense";
  }
  return r;
}

SweepReport run_sweep(const SweepOptions& o) {
  const auto t0 = Clock::now();
  SweepSpec spec = load_sweep(o.sweep, o.epochs);
  if (o.max_accuracy_loss) spec.budget = parse_accuracy_budget(*o.max_accuracy_loss);
  if (o.objective) spec.objective = *o.objective;
  if (o.inferences) spec.inferences = *o.inferences;
  if (o.limit_train && *o.limit_train < 0)
    throw SettingError("limit_train", "limit_train must not be negative");
  if (o.limit_test && *o.limit_test < 0)
    throw SettingError("limit_test", "limit_test must not be negative");
  if (!o.out.empty() && fs::exists(o.out) && !fs::is_directory(o.out))
    throw SettingError("out", "out " + o.out.string() + " exists and is not a directory");
  fs::create_directories(o.out / "trials");
  fs::create_directories(o.out / "recipes");
  // What the analysis needs later (`verdant report`), without the sweep file's relative paths.
  {
    json j = {
        {"source", spec.source},
        {"models", spec.models},
        {"epochs", spec.epochs},
        {"seeds", spec.seeds},
        {"objective", objective_name(spec.objective)},
        {"inferences", spec.inferences},
        {"max_accuracy_loss", (spec.budget.relative ? format_number("%g", spec.budget.value) + "%"
                                                    : format_number("%g", spec.budget.value))},
        {"cloud",
         {{"region", spec.cloud.region},
          {"network_kwh_per_gb", spec.cloud.network_kwh_per_gb},
          {"response_bytes", spec.cloud.response_bytes}}},
        {"data", spec.data.location.string()}};
    write_file_atomic(o.out / "sweep.json", j.dump(2) + "\n");
  }
  struct Planned {
    std::string model;
    const Candidate* candidate;
    std::uint64_t seed;
  };
  std::vector<Planned> plan;
  for (const auto& m : spec.models)
    for (const auto& c : spec.candidates)
      for (auto seed : spec.seeds) plan.push_back({m, &c, seed});

  const char* kill_after = std::getenv("VERDANT_DEBUG_SIGKILL_AFTER_TRIALS");
  std::int64_t sequential = 0;
  const auto next = o.next ? o.next : [&sequential] { return sequential++; };
  SweepReport report;
  double trial_seconds = 0;
  std::size_t run_now = 0;
  std::string best;
  double best_accuracy = -1;
  for (std::int64_t k = next(); k >= 0 && static_cast<std::size_t>(k) < plan.size(); k = next()) {
    const auto i = static_cast<std::size_t>(k);
    const auto& p = plan[i];
    const std::string id = trial_id(p.model, *p.candidate, p.seed);
    const fs::path file = o.out / "trials" / (id + ".json");
    if (fs::exists(file)) {
      ++report.trials_skipped;
      continue;
    }
    if (o.on_progress) {
      SweepProgress pr{i, plan.size(), 0, id, best};
      if (run_now > 0) pr.eta_seconds = trial_seconds / double(run_now) * double(plan.size() - i);
      o.on_progress(pr);
    }
    const auto start = Clock::now();
    TrialResult t = run_trial(spec, o, p.model, *p.candidate, p.seed);
    write_file_atomic(file, trial_json(t));
    trial_seconds += seconds_since(start);
    ++run_now;
    if (t.accuracy > best_accuracy) {
      best_accuracy = t.accuracy;
      best = t.id + format_number(" (%.2f%%)", 100 * t.accuracy);
    }
    // Test hook: die like a preempted job once N trials of this process are done.
    if (kill_after && run_now == static_cast<std::size_t>(std::atoll(kill_after))) {
      std::fflush(nullptr);
      std::raise(SIGKILL);
    }
  }
  if (o.wait_for_others) o.wait_for_others();
  if (!o.analyse) {
    report.spec = spec;
    report.trials_run = run_now;
    report.trial_seconds = trial_seconds;
    report.total_seconds = seconds_since(t0);
    return report;
  }
  // Every trial, whoever ran it, from its file.
  std::vector<TrialResult> trials;
  for (const auto& p : plan) {
    const fs::path file = o.out / "trials" / (trial_id(p.model, *p.candidate, p.seed) + ".json");
    trials.push_back(parse_trial(read_file_text(file), file.string()));
  }
  SweepReport r = analyse(spec, std::move(trials));
  r.trials_run = run_now;
  r.trials_skipped = report.trials_skipped;
  r.trial_seconds = trial_seconds;
  if (r.pick) {
    const CandidateSummary& p = r.summaries[r.pick->index];
    const TrialResult* first = nullptr;
    for (const auto& t : r.trials)
      if (t.id == p.trials.front()) first = &t;
    // Bytes a request sends: one input sample as stored (pixels as bytes, features as float32).
    const data::DataSplit probe = data::load_split(spec.data, data::Parts::test);
    const std::int64_t per = shape_numel(probe.sample_shape) * (probe.pixels ? 1 : 4);
    r.edge_or_cloud = edge_or_cloud(spec, p, per, o.energy.location);
    if (o.pick_model && first) {
      fs::create_directories(o.out / "pick");
      for (const char* f : {"model.vckpt", "model.vdm"})
        fs::copy_file(fs::path(first->folder) / f, o.out / "pick" / f,
                      fs::copy_options::overwrite_existing);
      write_file_atomic(o.out / "pick" / "why.txt", r.pick->reason + "\n");
    }
  }
  r.total_seconds = seconds_since(t0);
  return r;
}

SweepReport read_results(const fs::path& out) {
  const fs::path meta = out / "sweep.json";
  if (!fs::exists(meta))
    throw Error(out.string() + ": not a sweep's results folder (no sweep.json)");
  SweepSpec spec;
  try {
    const json j = json::parse(read_file_text(meta));
    spec.source = j.at("source");
    spec.models = j.at("models").get<std::vector<std::string>>();
    spec.epochs = j.at("epochs");
    spec.seeds = j.at("seeds").get<std::vector<std::uint64_t>>();
    const std::string objective = j.at("objective");
    spec.objective = objective == "bytes"              ? Objective::bytes
                     : objective == "inference_energy" ? Objective::inference_energy
                                                       : Objective::total_energy;
    spec.inferences = j.at("inferences");
    spec.budget = parse_accuracy_budget(j.at("max_accuracy_loss"));
    spec.cloud.region = j.at("cloud").at("region");
    spec.cloud.network_kwh_per_gb = j.at("cloud").at("network_kwh_per_gb");
    spec.cloud.response_bytes = j.at("cloud").at("response_bytes");
    spec.data.location = std::string(j.at("data"));
  } catch (const json::exception& e) {
    throw Error(meta.string() + ": malformed (" + e.what() + ")");
  }
  std::vector<TrialResult> trials;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(out / "trials"))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) trials.push_back(parse_trial(read_file_text(f), f.string()));
  return analyse(spec, std::move(trials));
}

}  // namespace verdant::sweep

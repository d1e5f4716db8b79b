#include "verdant/compress/run.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "verdant/compress/compact.hpp"
#include "verdant/compress/prune.hpp"
#include "verdant/compress/training.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/energy/tracker.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/train/checkpoint.hpp"

namespace verdant::compress {

namespace {
namespace fs = std::filesystem;

// Forward FLOPs per sample with zero weights skipped: each weight layer's dense count scaled by
// its density (what a sparse kernel needs).
std::int64_t sparse_flops(nn::Sequential& model) {
  const auto summary = nn::summarize(model);
  double total = 0;
  for (const auto& l : summary.layers) {
    double density = 1.0;
    for (const auto& [name, child] : model.named_children()) {
      if (name != l.name) continue;
      if (dynamic_cast<nn::Linear*>(child.get()) || dynamic_cast<nn::Conv2d*>(child.get())) {
        const auto params = child->named_parameters();
        density = 1.0 - sparsity_of(params[0].second.value());
      }
    }
    total += double(l.flops) * density;
  }
  return static_cast<std::int64_t>(std::llround(total));
}

NamedTensors parameters_of(nn::Module& model) {
  NamedTensors out;
  for (auto& [name, p] : model.named_parameters()) out.emplace_back(name, p.value());
  return out;
}

train::Checkpoint make_model_checkpoint(nn::Sequential& model, const std::string& spec,
                                        const Session& session) {
  train::Checkpoint c;
  c.set_meta("verdant.kind", "compress");
  c.set_meta("model.spec", spec);
  c.set_meta("model.yaml", nn::model_yaml(model));
  c.set_meta("compress.recipe", session.recipe().source);
  const auto acts = session.activation_params();
  for (std::size_t i = 0; i < acts.size(); ++i) {
    c.set_meta("compress.activation." + std::to_string(i) + ".scale",
               std::to_string(acts[i].scale));
    c.set_meta("compress.activation." + std::to_string(i) + ".zero_point",
               std::to_string(acts[i].zero_point));
  }
  for (auto& [name, p] : model.named_parameters())
    c.tensors.emplace_back("param/" + name, p.value());
  for (auto& [name, b] : model.named_buffers()) c.tensors.emplace_back("buffer/" + name, b);
  return c;
}

// Measures the model the recipe starts from, before training changes it.
class BaselineProbe : public train::TrainingExtension {
 public:
  explicit BaselineProbe(RunReport& report) : report_(report) {}
  void attach(train::TrainingContext& c) override {
    report_.params_before = c.model->num_parameters();
    report_.flops_dense = nn::summarize(*c.model).total_flops;
    report_.bytes_dense_fp32 = dense_fp32_bytes(parameters_of(*c.model));
  }

 private:
  RunReport& report_;
};
}  // namespace

train::TrainingOptions default_compress_training() {
  train::TrainingOptions o;
  o.command = "compress";
  o.model = "mlp";
  o.seed = 0;
  o.optimizer.weight_decay = 0.0;
  // A recipe lays its pruning and masks out over the whole run; one cosine keeps the rate
  // falling while they settle, where a restart would shake a pruned model mid-way.
  o.schedule.kind = "cosine";
  o.out_dir.clear();
  return o;
}

RunReport run_recipe(const RunOptions& options) {
  RunReport rep;
  rep.recipe = options.recipe.string();
  auto recipe = std::make_shared<RecipeExtension>(options.recipe,
                                                  RecipeExtensionOptions{.evaluate_before = true});
  train::TrainingOptions o = options.training;
  const Recipe& r = recipe->recipe();
  if (!o.epochs) o.epochs = r.epochs.value_or(1);
  if (!o.optimizer.lr) o.optimizer.lr = r.lr.value_or(0.01);
  o.test_at_end = true;  // the report compares test accuracy before and after
  o.allow_no_epochs = true;
  rep.model = o.model;
  o.extensions.insert(o.extensions.begin(), {std::make_shared<BaselineProbe>(rep), recipe});

  const auto t0 = std::chrono::steady_clock::now();
  rep.training = train::run_training(o);
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& t = rep.training;
  if (t.energy) {
    rep.energy_joules = t.energy->process.total();
    rep.energy_label = energy::measurement_label(*t.energy);
  }
  nn::Sequential& model = *t.final_model;
  rep.epochs = *o.epochs;
  rep.accuracy_before = recipe->accuracy_before().value_or(0.0);
  rep.accuracy_after = t.test ? t.test->accuracy : 0.0;
  rep.layers = layer_stats(model);
  rep.params_after = model.num_parameters();
  for (const auto& l : rep.layers) rep.nonzero_after += l.nonzero;
  rep.flops_after = sparse_flops(model);
  rep.int8 = recipe->session().quantizes();
  const auto compact = encode_compact(parameters_of(model), {rep.int8});
  rep.bytes_compact = static_cast<std::int64_t>(compact.size());
  rep.log = recipe->log();

  if (!o.out_dir.empty() && o.write_outputs) {
    const fs::path model_path = o.out_dir / "model.vckpt", compact_path = o.out_dir / "model.vcz",
                   report_path = o.out_dir / "report.json";
    train::save_checkpoint(model_path, make_model_checkpoint(model, o.model, recipe->session()));
    write_file_atomic(compact_path, compact);
    for (const auto& f : t.files) rep.files.push_back(f.string());
    rep.files.insert(rep.files.end(),
                     {model_path.string(), compact_path.string(), report_path.string()});
    write_file_atomic(report_path, report_json(rep));
  }
  return rep;
}

std::string report_json(const RunReport& r) {
  nlohmann::json j;
  j["model"] = r.model;
  j["recipe"] = r.recipe;
  j["epochs"] = r.epochs;
  j["seconds"] = r.seconds;
  j["accuracy_before"] = r.accuracy_before;
  j["accuracy_after"] = r.accuracy_after;
  j["params_before"] = r.params_before;
  j["params_after"] = r.params_after;
  j["nonzero_after"] = r.nonzero_after;
  j["flops_dense"] = r.flops_dense;
  j["flops_after_sparse"] = r.flops_after;
  j["bytes_dense_fp32"] = r.bytes_dense_fp32;
  j["bytes_compact"] = r.bytes_compact;
  j["compression_ratio"] =
      r.bytes_compact ? double(r.bytes_dense_fp32) / double(r.bytes_compact) : 0.0;
  j["int8"] = r.int8;
  if (r.energy_joules) {
    j["energy_joules"] = *r.energy_joules;
    j["energy_label"] = r.energy_label;
  }
  for (const auto& l : r.layers)
    j["layers"].push_back({{"name", l.name},
                           {"shape", l.shape},
                           {"params", l.params},
                           {"nonzero", l.nonzero},
                           {"sparsity", l.sparsity()}});
  j["log"] = r.log;
  return j.dump(2) + "\n";
}

std::string format_report(const RunReport& r) {
  std::ostringstream s;
  char line[256];
  s << "compression report: " << r.model << " with " << r.recipe << "\n";
  std::snprintf(line, sizeof line, "  test accuracy   %.2f%% -> %.2f%% (%+.2f points)\n",
                100 * r.accuracy_before, 100 * r.accuracy_after,
                100 * (r.accuracy_after - r.accuracy_before));
  s << line;
  s << "  layer                      shape            params    nonzero  sparsity\n";
  for (const auto& l : r.layers) {
    std::snprintf(line, sizeof line, "  %-26s %-14s %9lld %10lld  %6.2f%%\n", l.name.c_str(),
                  shape_str(l.shape).c_str(), static_cast<long long>(l.params),
                  static_cast<long long>(l.nonzero), 100 * l.sparsity());
    s << line;
  }
  std::snprintf(
      line, sizeof line, "  parameters      %lld -> %lld (%lld nonzero, %.2f%% sparse)\n",
      static_cast<long long>(r.params_before), static_cast<long long>(r.params_after),
      static_cast<long long>(r.nonzero_after),
      100.0 * (1.0 - double(r.nonzero_after) / double(std::max<std::int64_t>(r.params_before, 1))));
  s << line;
  std::snprintf(line, sizeof line,
                "  FLOPs/sample    %lld dense -> %lld with zeros skipped (%.1fx)\n",
                static_cast<long long>(r.flops_dense), static_cast<long long>(r.flops_after),
                double(r.flops_dense) / double(std::max<std::int64_t>(r.flops_after, 1)));
  s << line;
  std::snprintf(line, sizeof line,
                "  bytes on disk   %lld dense fp32 -> %lld compact%s (%.1fx smaller)\n",
                static_cast<long long>(r.bytes_dense_fp32), static_cast<long long>(r.bytes_compact),
                r.int8 ? " int8" : "",
                double(r.bytes_dense_fp32) / double(std::max<std::int64_t>(r.bytes_compact, 1)));
  s << line;
  if (r.energy_joules) {
    std::snprintf(line, sizeof line, "  energy          %.1f J over %.1f s, %s\n", *r.energy_joules,
                  r.seconds, r.energy_label.c_str());
    s << line;
  } else {
    std::snprintf(line, sizeof line, "  energy          not tracked (%.1f s)\n", r.seconds);
    s << line;
  }
  for (const auto& l : r.log) s << "  note: " << l << "\n";
  for (const auto& f : r.files) s << "  wrote " << f << "\n";
  return s.str();
}

}  // namespace verdant::compress

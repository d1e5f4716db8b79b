#include "verdant/compress/run.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "verdant/autograd/ops.hpp"
#include "verdant/compress/compact.hpp"
#include "verdant/compress/distill.hpp"
#include "verdant/compress/prune.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/data/loader.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/nn/optim.hpp"
#include "verdant/nn/schedule.hpp"
#include "verdant/train/checkpoint.hpp"
#include "verdant/train/session.hpp"
#include "verdant/train/trainer.hpp"
#ifdef VERDANT_COMPRESS_HAS_ENERGY
#include "verdant/energy/tracker.hpp"
#endif

namespace verdant::compress {

namespace {
namespace fs = std::filesystem;
using nn::Variable;

std::shared_ptr<nn::Sequential> load_any_model(const std::string& spec, std::string* yaml) {
  if (spec.ends_with(".vckpt")) {
    const auto ckpt = train::load_checkpoint(spec);
    if (yaml)
      if (const auto* y = ckpt.find_meta("model.yaml")) *yaml = *y;
    return train::model_from_checkpoint(ckpt, spec);
  }
  return train::build_model(spec, yaml);
}

Shape output_shape(nn::Sequential& m) {
  const auto s = nn::summarize(m);
  return s.layers.empty() ? s.input_shape : s.layers.back().output_shape;
}

// The teacher of a distill modifier; its path is relative to the recipe's folder.
std::shared_ptr<nn::Sequential> load_teacher(const Recipe& recipe, const Modifier& m,
                                             nn::Sequential& student) {
  fs::path path = m.distill.teacher;
  if (path.is_relative()) path = fs::path(recipe.source).parent_path() / path;
  std::shared_ptr<nn::Sequential> teacher;
  try {
    teacher = load_any_model(path.string(), nullptr);
  } catch (const Error& e) {
    throw Error(recipe.where(m, "teacher") + "key 'teacher': " + e.what());
  }
  const Shape ts = output_shape(*teacher), ss = output_shape(student);
  if (ts != ss)
    throw Error(recipe.where(m, "teacher") + "key 'teacher': " + path.string() + " outputs " +
                shape_str(ts) + " per sample but the student outputs " + shape_str(ss));
  teacher->eval();
  return teacher;
}

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

// The teacher's logits for every training sample, in dataset order. The teacher is fixed and in
// eval mode, so every epoch after the first would repeat exactly these forward passes: computing
// them once saves (epochs - 1) teacher passes over the training set.
Tensor teacher_logits_of(nn::Sequential& teacher, const data::Dataset& train_set) {
  autograd::NoGradGuard no_grad;
  data::DataLoader in_order(train_set, {256, false, false, 0});
  Tensor all;
  std::int64_t row = 0;
  for (std::int64_t s = 0; s < in_order.num_batches(); ++s) {
    const Tensor t = teacher.forward(Variable(in_order.batch(s).x)).value();
    const std::int64_t classes = t.numel() / t.dim(0);
    if (!all.defined()) all = Tensor({train_set.size(), classes}, DType::f32);
    std::memcpy(all.data<float>() + row * classes, t.data<float>(),
                static_cast<std::size_t>(t.numel()) * sizeof(float));
    row += t.dim(0);
  }
  return all;
}

// Rows of `logits` for batch `step` of `loader` (the samples it drew, in its order).
Tensor gather_rows(const Tensor& logits, const data::DataLoader& loader, std::int64_t step,
                   std::int64_t batch_size, std::int64_t count) {
  const std::int64_t classes = logits.dim(1);
  Tensor out({count, classes}, DType::f32);
  for (std::int64_t k = 0; k < count; ++k)
    std::memcpy(out.data<float>() + k * classes,
                logits.data<float>() + loader.order()[step * batch_size + k] * classes,
                static_cast<std::size_t>(classes) * sizeof(float));
  return out;
}

train::Checkpoint make_model_checkpoint(nn::Sequential& model, const std::string& spec,
                                        const Session& session) {
  train::Checkpoint c;
  c.set_meta("verdant.kind", "compress");
  c.set_meta("model.spec", spec);
  c.set_meta("model.yaml", model_yaml(model));
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
}  // namespace

RunReport run_recipe(const RunOptions& o) {
  RunReport rep;
  // Everything that can be wrong with the inputs is checked before any work or write.
  const Recipe recipe = load_recipe(o.recipe);
  rep.recipe = o.recipe.string();
  rep.model = o.model;
  if (o.batch_size <= 0) throw UsageError("--batch-size must be positive");
  autograd::manual_seed(o.seed);
  std::string yaml;
  auto model = load_any_model(o.model, &yaml);
  const Modifier* distill = recipe.find(ModifierKind::distill);
  std::shared_ptr<nn::Sequential> teacher;
  if (distill) teacher = load_teacher(recipe, *distill, *model);
  Session session(recipe, model, o.seed);
  const std::int64_t epochs = o.epochs.value_or(recipe.epochs.value_or(1));
  const double lr = o.lr.value_or(recipe.lr.value_or(0.01));
  if (epochs < 0) throw UsageError("--epochs must not be negative");
  if (!o.out_dir.empty() && fs::exists(o.out_dir) && !fs::is_directory(o.out_dir))
    throw UsageError("--out " + o.out_dir.string() + " exists and is not a directory");

  const auto split =
      train::load_fashion_mnist(o.data_dir, train::Parts::both, o.limit_train, o.limit_test);
  rep.params_before = model->num_parameters();
  rep.flops_dense = nn::summarize(*model).total_flops;
  NamedTensors original;
  for (auto& [name, p] : model->named_parameters()) original.emplace_back(name, p.value());
  rep.bytes_dense_fp32 = dense_fp32_bytes(original);
  rep.accuracy_before = train::evaluate(*model, *split.test).accuracy;

#ifdef VERDANT_COMPRESS_HAS_ENERGY
  std::unique_ptr<energy::Tracker> tracker;
  if (o.measure_energy) {
    tracker = std::make_unique<energy::Tracker>(energy::select_meters(),
                                                energy::resolve_carbon_intensity({}));
    tracker->start();
  }
#endif
  const auto t0 = std::chrono::steady_clock::now();

  Tensor teacher_logits;
  if (teacher) {
    const double teacher_acc = train::evaluate(*teacher, *split.test).accuracy;
    char line[96];
    std::snprintf(line, sizeof line, "distill: teacher test accuracy %.2f%%", 100.0 * teacher_acc);
    rep.log.emplace_back(line);
    teacher_logits = teacher_logits_of(*teacher, *split.train);
  }
  data::DataLoader loader(*split.train, {o.batch_size, true, false, o.seed});
  const std::int64_t spe = loader.num_batches();
  session.begin(spe, epochs);
  nn::SGDOptions sgd;
  sgd.lr = lr;
  sgd.momentum = o.momentum;
  sgd.weight_decay = o.weight_decay;
  nn::SGD optimizer(model->named_parameters(), sgd);
  const nn::CosineLR schedule(lr, std::max<std::int64_t>(epochs * spe, 1));
  auto net = session.forward_model();
  std::int64_t global_step = 0;
  train::CollapseWatch collapse;
  for (std::int64_t e = 0; e < epochs; ++e) {
    loader.set_epoch(e);
    net->train();
    double loss_sum = 0;
    for (std::int64_t s = 0; s < spe; ++s) {
      const data::Batch batch = loader.batch(s);
      session.step_begin(e, s);
      optimizer.set_lr(schedule.lr(global_step));
      optimizer.zero_grad();
      Variable logits = net->forward(Variable(batch.x));
      collapse.observe(logits.value());
      if (teacher) {
        const Tensor t_logits = gather_rows(teacher_logits, loader, s, o.batch_size, batch.size());
        const auto kd =
            kd_loss(logits.value(), t_logits,
                    {batch.y.data<std::int32_t>(), static_cast<std::size_t>(batch.size())},
                    distill->distill.alpha, distill->distill.temperature);
        logits.backward(kd.grad);
        loss_sum += kd.loss;
      } else {
        Variable loss = autograd::cross_entropy(logits, batch.y);
        loss.backward();
        loss_sum += loss.item();
      }
      if (!std::isfinite(loss_sum))
        throw Error("compress: loss is not finite at epoch " + std::to_string(e + 1) + " step " +
                    std::to_string(s + 1));
      session.before_optimizer_step(e, s, global_step);
      optimizer.step();
      session.step_end();
      ++global_step;
    }
    session.epoch_end(e);
    collapse.end_epoch(e, loss_sum / double(spe), "try a lower --lr");
    if (o.verbose) {
      const double acc = train::evaluate(*net, *split.test).accuracy;
      std::fprintf(stderr, "compress: epoch %lld/%lld loss %.4f test accuracy %.2f%%\n",
                   static_cast<long long>(e + 1), static_cast<long long>(epochs),
                   loss_sum / double(spe), 100.0 * acc);
    }
  }
  model = session.finish();
  if (session.needs_calibration()) {
    const Modifier* q = recipe.find(ModifierKind::quantize);
    autograd::NoGradGuard no_grad;
    auto fq = session.forward_model();
    fq->eval();
    loader.set_epoch(0);
    session.start_calibration();
    const std::int64_t n = std::min<std::int64_t>(q->quant.calibration_batches, spe);
    for (std::int64_t s = 0; s < n; ++s) fq->forward(Variable(loader.batch(s).x));
    session.finish_calibration();
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
#ifdef VERDANT_COMPRESS_HAS_ENERGY
  if (tracker) {
    const auto total = tracker->stop();
    rep.energy_joules = total.process.total();
    int measured = 0, estimated = 0;
    std::string sources;
    for (int d = 0; d < energy::kDomainCount; ++d) {
      if (total.source[d].empty() || total.source[d] == "none") continue;
      (total.measured[d] ? measured : estimated)++;
      if (sources.find(total.source[d]) == std::string::npos)
        sources += (sources.empty() ? "" : "; ") + total.source[d];
    }
    const std::string kind = estimated == 0  ? "measured"
                             : measured == 0 ? "estimated"
                                             : "partly measured, partly estimated";
    // Each source already starts with "measured"/"estimated": say it once.
    rep.energy_label = sources.rfind(kind, 0) == 0 ? sources : kind + ": " + sources;
  }
#endif
  rep.epochs = epochs;
  rep.accuracy_after = train::evaluate(*session.forward_model(), *split.test).accuracy;
  rep.layers = layer_stats(*model);
  rep.params_after = model->num_parameters();
  for (const auto& l : rep.layers) rep.nonzero_after += l.nonzero;
  rep.flops_after = sparse_flops(*model);
  rep.int8 = session.quantizes();
  NamedTensors final_tensors;
  for (auto& [name, p] : model->named_parameters()) final_tensors.emplace_back(name, p.value());
  const auto compact = encode_compact(final_tensors, {rep.int8});
  rep.bytes_compact = static_cast<std::int64_t>(compact.size());
  rep.log.insert(rep.log.end(), session.log().begin(), session.log().end());

  if (!o.out_dir.empty()) {
    fs::create_directories(o.out_dir);
    const auto ckpt = make_model_checkpoint(*model, o.model, session);
    train::save_checkpoint(o.out_dir / "model.vckpt", ckpt);
    write_file_atomic(o.out_dir / "model.vcz", compact);
    rep.files = {(o.out_dir / "model.vckpt").string(), (o.out_dir / "model.vcz").string(),
                 (o.out_dir / "report.json").string()};
    write_file_atomic(o.out_dir / "report.json", report_json(rep));
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

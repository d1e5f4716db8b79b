#include "verdant/compress/training.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "verdant/autograd/ops.hpp"
#include "verdant/autograd/variable.hpp"
#include "verdant/compress/distill.hpp"
#include "verdant/core/error.hpp"
#include "verdant/data/loader.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/train/model_source.hpp"

namespace verdant::compress {

namespace {
namespace fs = std::filesystem;
using nn::Variable;

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
    teacher = train::load_model(path.string(), "teacher").model;
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

Tensor all_logits(nn::Sequential& model, const data::Dataset& set) {
  autograd::NoGradGuard no_grad;
  data::DataLoader in_order(set, {.batch_size = 256, .shuffle = false});
  Tensor all;
  std::int64_t row = 0;
  for (std::int64_t s = 0; s < in_order.num_batches(); ++s) {
    const Tensor t = model.forward(Variable(in_order.batch(s).x)).value();
    const std::int64_t classes = t.numel() / t.dim(0);
    if (!all.defined()) all = Tensor({set.size(), classes}, DType::f32);
    std::memcpy(all.data<float>() + row * classes, t.data<float>(),
                static_cast<std::size_t>(t.numel()) * sizeof(float));
    row += t.dim(0);
  }
  return all;
}

// Rows `indices` of `logits`.
Tensor gather_rows(const Tensor& logits, const std::vector<std::int64_t>& indices) {
  const std::int64_t classes = logits.dim(1);
  const auto count = static_cast<std::int64_t>(indices.size());
  Tensor out({count, classes}, DType::f32);
  for (std::int64_t k = 0; k < count; ++k)
    std::memcpy(out.data<float>() + k * classes,
                logits.data<float>() + indices[static_cast<std::size_t>(k)] * classes,
                static_cast<std::size_t>(classes) * sizeof(float));
  return out;
}

// The distillation loss as an autograd op on the student's logits.
Variable kd_loss_op(const Variable& student, const Tensor& teacher, const Tensor& labels,
                    double alpha, double temperature) {
  auto kd = std::make_shared<KdResult>(kd_loss(
      student.value(), teacher,
      {labels.data<std::int32_t>(), static_cast<std::size_t>(labels.numel())}, alpha, temperature));
  return autograd::make_result(
      Tensor::full({}, static_cast<float>(kd->loss)), {student},
      [kd](const Tensor& g, autograd::Node& node) {
        if (!node.needs_grad(0)) return;
        const float scale = g.item();
        Tensor gi = kd->grad.clone();
        float* d = gi.data<float>();
        for (std::int64_t i = 0; i < gi.numel(); ++i) d[i] *= scale;
        node.accumulate(0, gi);
      },
      "kd_loss");
}
}  // namespace

// ---------------------------------------------------------------- RecipeCallback

RecipeCallback::RecipeCallback(std::shared_ptr<Session> session, const RecipeObjective* objective)
    : session_(std::move(session)) {
  const Recipe& r = session_->recipe();
  if (const Modifier* d = r.find(ModifierKind::distill); d && objective == nullptr)
    throw Error(r.where(*d, "teacher") +
                "distill changes the loss: the trainer needs the recipe's objective too");
}

void RecipeCallback::on_train_begin(train::Trainer& t) {
  session_->attach_optimizer(&t.optimizer());
  session_->begin(t.steps_per_epoch(), t.options().epochs);
}
void RecipeCallback::on_step_begin(train::Trainer&, const train::StepInfo& s) {
  session_->step_begin(s.epoch, s.step, s.global_step);
}
void RecipeCallback::on_before_optimizer_step(train::Trainer&, const train::StepInfo& s) {
  session_->before_optimizer_step(s.epoch, s.step, s.global_step);
}
void RecipeCallback::on_step_end(train::Trainer&, const train::StepInfo&) {
  session_->step_end();
}
void RecipeCallback::on_epoch_end(train::Trainer&, const train::EpochStats& e) {
  session_->epoch_end(e.epoch);
}
void RecipeCallback::on_save_checkpoint(const train::Trainer&, train::Checkpoint& c) const {
  session_->save_state(c);
}
void RecipeCallback::on_load_checkpoint(train::Trainer&, const train::Checkpoint& c,
                                        const std::string& origin) {
  session_->restore_state(c, origin);
}

// ---------------------------------------------------------------- RecipeObjective

RecipeObjective::RecipeObjective(std::shared_ptr<Session> session, std::optional<Teacher> teacher,
                                 float label_smoothing)
    : session_(std::move(session)), teacher_(std::move(teacher)), cross_entropy_(label_smoothing) {}

Variable RecipeObjective::forward(nn::Module& model, const Variable& x) {
  const auto net = session_->forward_model();
  // The fake-quant wrapper has its own mode flag: it follows the model the trainer set.
  if (net->is_training() != model.is_training()) net->train(model.is_training());
  return net->forward(x);
}

Variable RecipeObjective::loss(const Variable& logits, const data::Batch& batch) {
  if (!teacher_) return cross_entropy_.loss(logits, batch);
  Teacher& t = *teacher_;
  if (!t.logits.defined()) t.logits = all_logits(*t.model, *t.train_set);
  return kd_loss_op(logits, gather_rows(t.logits, batch.indices), batch.y, t.alpha, t.temperature);
}

// ---------------------------------------------------------------- RecipeExtension

RecipeExtension::RecipeExtension(fs::path recipe, RecipeExtensionOptions options)
    : recipe_(load_recipe(recipe)), options_(options) {}

void RecipeExtension::attach(train::TrainingContext& c) {
  auto& model = c.model;
  std::optional<Teacher> teacher;
  if (const Modifier* d = recipe_.find(ModifierKind::distill)) {
    teacher = Teacher{.model = load_teacher(recipe_, *d, *model),
                      .train_set = c.data.train.get(),
                      .alpha = d->distill.alpha,
                      .temperature = d->distill.temperature};
    if (c.data.test) {
      char line[96];
      std::snprintf(line, sizeof line, "distill: teacher test accuracy %.2f%%",
                    100.0 * train::evaluate(*teacher->model, *c.data.test).accuracy);
      log_.emplace_back(line);
    }
  }
  session_ = std::make_shared<Session>(recipe_, model, c.options.seed);
  if (options_.evaluate_before && c.data.test)
    accuracy_before_ = train::evaluate(*model, *c.data.test).accuracy;
  auto objective = std::make_shared<RecipeObjective>(session_, std::move(teacher),
                                                     static_cast<float>(c.options.label_smoothing));
  c.trainer.add_callback(std::make_shared<RecipeCallback>(session_, objective.get()));
  c.trainer.set_objective(objective);
}

void RecipeExtension::finish(train::TrainingContext& c, train::TrainingReport& report) {
  c.model = session_->finish();
  if (session_->needs_calibration()) {
    const Modifier* q = recipe_.find(ModifierKind::quantize);
    autograd::NoGradGuard no_grad;
    auto net = session_->forward_model();
    net->eval();
    // The first batches of epoch 0's order, as the training loop drew them.
    data::DataLoader loader(
        *c.data.train,
        {.batch_size = c.options.batch_size, .shuffle = true, .seed = c.options.seed});
    session_->start_calibration();
    const std::int64_t n =
        std::min<std::int64_t>(q->quant.calibration_batches, loader.num_batches());
    for (std::int64_t s = 0; s < n; ++s) net->forward(Variable(loader.batch(s).x));
    session_->finish_calibration();
  }
  std::int64_t total = 0, nonzero = 0;
  for (const auto& l : layer_stats(*c.model)) {
    total += l.params;
    nonzero += l.nonzero;
  }
  char line[256];
  std::snprintf(line, sizeof line, "recipe %s: %lld of %lld parameters nonzero (%.2f%% sparse)",
                recipe_.source.c_str(), static_cast<long long>(nonzero),
                static_cast<long long>(total),
                100.0 * (1.0 - double(nonzero) / double(std::max<std::int64_t>(total, 1))));
  report.notes.emplace_back(line);
}

std::vector<std::string> RecipeExtension::log() const {
  std::vector<std::string> out = log_;
  if (session_) out.insert(out.end(), session_->log().begin(), session_->log().end());
  return out;
}

}  // namespace verdant::compress

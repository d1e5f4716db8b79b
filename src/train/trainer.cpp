#include "verdant/train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "verdant/autograd/generator.hpp"
#include "verdant/autograd/ops.hpp"
#include "verdant/core/error.hpp"
#include "verdant/data/views.hpp"

namespace verdant::train {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Doubles travel through checkpoints as hex floats, so a resumed run's statistics are exact.
std::string hex(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}

double parse_double(const std::string& s, const std::string& origin, const std::string& key) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0')
    throw Error(origin + ": checkpoint entry '" + key + "' is not a number: '" + s + "'");
  return v;
}

std::int64_t parse_int(const std::string& s, const std::string& origin, const std::string& key) {
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0')
    throw Error(origin + ": checkpoint entry '" + key + "' is not an integer: '" + s + "'");
  return v;
}

const std::string& need_meta(const Checkpoint& c, const std::string& key,
                             const std::string& origin) {
  if (auto* v = c.find_meta(key)) return *v;
  throw Error(origin + ": checkpoint has no '" + key + "' entry (not written by `verdant train`?)");
}

// The predicted class of row `i` of `logits` [N, C]: its largest entry.
std::int64_t predicted_class(const Tensor& logits, std::int64_t i) {
  const std::int64_t c = logits.dim(1);
  const float* row = logits.data<float>() + i * c;
  std::int64_t best = 0;
  for (std::int64_t k = 1; k < c; ++k)
    if (row[k] > row[best]) best = k;
  return best;
}

// Number of rows of `logits` [N, C] whose largest entry is at `labels`' index.
std::int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  std::int64_t correct = 0;
  const std::int32_t* y = labels.data<std::int32_t>();
  for (std::int64_t i = 0; i < logits.dim(0); ++i) correct += predicted_class(logits, i) == y[i];
  return correct;
}

void copy_into(Tensor& dst, const Tensor& src, const std::string& name, const std::string& origin) {
  if (src.dtype() != dst.dtype() || src.shape() != dst.shape())
    throw Error(origin + ": checkpoint tensor '" + name + "' is " + dtype_name(src.dtype()) + " " +
                shape_str(src.shape()) + ", the model expects " + dtype_name(dst.dtype()) + " " +
                shape_str(dst.shape()));
  std::memcpy(dst.raw(), src.raw(), src.nbytes());
}

}  // namespace

autograd::Variable CrossEntropyObjective::loss(const autograd::Variable& logits,
                                               const data::Batch& batch) {
  return autograd::cross_entropy(logits, batch.y, label_smoothing_);
}

EvalResult evaluate(nn::Module& model, const data::Dataset& dataset, std::int64_t batch_size,
                    Objective* objective) {
  autograd::NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();
  data::DataLoader loader(dataset, {.batch_size = batch_size, .shuffle = false});
  EvalResult r;
  double loss_sum = 0;
  for (std::int64_t b = 0; b < loader.num_batches(); ++b) {
    data::Batch batch = loader.batch(b);
    const autograd::Variable x(batch.x);
    autograd::Variable out = objective ? objective->forward(model, x) : model.forward(x);
    double loss = autograd::cross_entropy(out, batch.y).item();
    loss_sum += loss * static_cast<double>(batch.size());
    r.correct += count_correct(out.value(), batch.y);
    r.samples += batch.size();
  }
  model.train(was_training);
  if (r.samples) {
    r.loss = loss_sum / static_cast<double>(r.samples);
    r.accuracy = static_cast<double>(r.correct) / static_cast<double>(r.samples);
  }
  return r;
}

EvalResult evaluate_sharded(nn::Module& model, const data::Dataset& dataset,
                            std::int64_t batch_size, Objective* objective, std::int64_t shard,
                            std::int64_t shards, Reducer* reducer) {
  if (shards <= 1 || !reducer) return evaluate(model, dataset, batch_size, objective);
  const std::int64_t n = dataset.size();
  const std::int64_t begin = n * shard / shards, end = n * (shard + 1) / shards;
  EvalResult part;
  if (end > begin) {
    // A view of this shard's samples (the dataset outlives it).
    std::shared_ptr<const data::Dataset> whole(&dataset, [](const data::Dataset*) {});
    part = evaluate(model, data::SubsetDataset(whole, begin, end - begin), batch_size, objective);
  }
  double sums[3] = {part.loss * double(part.samples), double(part.correct), double(part.samples)};
  reducer->sum(sums);
  EvalResult r;
  r.samples = static_cast<std::int64_t>(sums[2]);
  r.correct = static_cast<std::int64_t>(sums[1]);
  if (r.samples) {
    r.loss = sums[0] / sums[2];
    r.accuracy = sums[1] / sums[2];
  }
  return r;
}

void CollapseWatch::reduce(Reducer& reducer) {
  double v[2] = {double(seen_), input_dependent_ ? 1.0 : 0.0};
  reducer.sum(v);
  seen_ = static_cast<std::int64_t>(v[0]);
  input_dependent_ = v[1] > 0;
}

void CollapseWatch::observe(const Tensor& logits) {
  const std::int64_t n = logits.dim(0);
  seen_ += n;
  if (input_dependent_ || n < 2) return;
  const std::int64_t first = predicted_class(logits, 0);
  for (std::int64_t i = 1; i < n && !input_dependent_; ++i)
    input_dependent_ = predicted_class(logits, i) != first;
}

void CollapseWatch::end_epoch(std::int64_t epoch, double mean_loss, const std::string& hint) {
  const bool collapsed = !input_dependent_ && seen_ >= kMinSamples;
  const std::int64_t seen = seen_;
  seen_ = 0;
  input_dependent_ = false;
  if (!collapsed) return;
  char loss[32];
  std::snprintf(loss, sizeof loss, "%.4f", mean_loss);
  throw Error("training collapsed in epoch " + std::to_string(epoch + 1) +
                  ": within every batch (" + std::to_string(seen) +
                  " examples) all predictions were one class, mean loss " + loss +
                  "; the output no longer depends on the input; " + hint,
              {"warmup", "lr"});
}

void validate(const TrainOptions& o) {
  if (o.epochs <= 0)
    throw SettingError("epochs", "epochs must be positive, got " + std::to_string(o.epochs));
  if (o.checkpoint_every < 0)
    throw SettingError("checkpoint_every", "checkpoint_every must not be negative, got " +
                                               std::to_string(o.checkpoint_every));
  if (!(o.label_smoothing >= 0.f && o.label_smoothing < 1.f))
    throw SettingError("label_smoothing", "label_smoothing must be in [0, 1)");
  if (o.eval_batch_size <= 0)
    throw SettingError("eval_batch_size", "eval_batch_size must be positive");
  if (o.batch_size <= 0)
    throw SettingError("batch_size",
                       "batch_size must be positive, got " + std::to_string(o.batch_size));
}

Trainer::Trainer(nn::Module& model, nn::Optimizer& optimizer, const data::Dataset& train_set,
                 TrainOptions options, std::shared_ptr<const nn::LRSchedule> schedule)
    : model_(model),
      optimizer_(optimizer),
      train_set_(train_set),
      options_((validate(options), std::move(options))),
      schedule_(std::move(schedule)),
      objective_(std::make_shared<CrossEntropyObjective>(options_.label_smoothing)),
      loader_(train_set, {.batch_size = options_.batch_size,
                          .shuffle = true,
                          .drop_last = options_.drop_last,
                          .seed = options_.seed,
                          .shard = options_.shard,
                          .shards = options_.shards}) {
  if (loader_.num_batches() == 0)
    throw UsageError("the training set (" + std::to_string(train_set.size()) +
                     " samples) gives no batch of size " + std::to_string(options_.batch_size));
}

void Trainer::add_callback(std::shared_ptr<TrainerCallback> callback) {
  callbacks_.push_back(std::move(callback));
}

void Trainer::set_objective(std::shared_ptr<Objective> objective) {
  if (!objective) throw Error("Trainer::set_objective: null objective");
  objective_ = std::move(objective);
}

void Trainer::request_stop(std::string reason) {
  stop_requested_ = true;
  if (stop_reason_.empty()) stop_reason_ = std::move(reason);
}

FitResult Trainer::fit() {
  auto fit_start = Clock::now();
  for (auto& cb : callbacks_) cb->on_train_begin(*this);
  const std::int64_t steps = loader_.num_batches();
  while (epoch_ < options_.epochs && !stop_requested_) {
    loader_.set_epoch(epoch_);
    if (step_ == 0) {
      loss_sum_ = 0;
      correct_ = seen_ = 0;
      epoch_seconds_ = 0;
    }
    for (auto& cb : callbacks_) cb->on_epoch_begin(*this, epoch_);
    model_.train();
    auto epoch_start = Clock::now();
    double lr = optimizer_.lr();
    while (step_ < steps && !stop_requested_) {
      data::Batch batch = loader_.batch(step_);
      if (schedule_) optimizer_.set_lr(schedule_->lr(global_step_));
      lr = optimizer_.lr();
      StepInfo info{.epoch = epoch_,
                    .step = step_,
                    .steps_per_epoch = steps,
                    .global_step = global_step_,
                    .batch_size = batch.size(),
                    .global_batch_size = batch.global_size,
                    .lr = lr};
      for (auto& cb : callbacks_) cb->on_step_begin(*this, info);

      optimizer_.zero_grad();
      // A shard can be empty (a last batch smaller than the number of processes): it adds
      // nothing, but takes part in the gradient exchange with zero gradients.
      double loss_value = 0;
      std::int64_t correct = 0;
      if (batch.size() > 0) {
        autograd::Variable logits = objective_->forward(model_, autograd::Variable(batch.x));
        autograd::Variable loss = objective_->loss(logits, batch);
        loss_value = loss.item();
        if (!std::isfinite(loss_value))
          throw Error("training diverged: loss is " +
                          std::string(std::isnan(loss_value) ? "NaN" : "infinite") + " at epoch " +
                          std::to_string(epoch_ + 1) + ", step " + std::to_string(step_ + 1) +
                          " (global step " + std::to_string(global_step_ + 1) + "); try a lower lr",
                      {"lr"});
        loss.backward();
        correct = count_correct(logits.value(), batch.y);
        collapse_.observe(logits.value());
      }
      for (auto& cb : callbacks_) cb->on_before_optimizer_step(*this, info);
      optimizer_.step();

      // The step's statistics over every shard, so all processes agree.
      double step_sums[3] = {loss_value * static_cast<double>(batch.size()), double(correct),
                             double(batch.size())};
      if (options_.reducer) options_.reducer->sum(step_sums);
      const double step_n = step_sums[2];
      loss_sum_ += step_sums[0];
      correct_ += static_cast<std::int64_t>(step_sums[1]);
      seen_ += static_cast<std::int64_t>(step_n);
      ++step_;
      ++global_step_;
      info.loss = step_n > 0 ? step_sums[0] / step_n : 0;
      info.accuracy = step_n > 0 ? step_sums[1] / step_n : 0;
      info.epoch_loss = loss_sum_ / static_cast<double>(seen_);
      info.epoch_accuracy = static_cast<double>(correct_) / static_cast<double>(seen_);
      for (auto& cb : callbacks_) cb->on_step_end(*this, info);

      if (!options_.checkpoint_path.empty() && options_.checkpoint_every > 0 &&
          global_step_ % options_.checkpoint_every == 0 && step_ < steps) {
        epoch_seconds_ += seconds_since(epoch_start);
        epoch_start = Clock::now();
        save_checkpoint(options_.checkpoint_path);
      }
    }
    epoch_seconds_ += seconds_since(epoch_start);
    if (step_ == steps) {
      EpochStats stats;
      stats.epoch = epoch_;
      stats.samples = seen_;
      stats.loss = seen_ ? loss_sum_ / static_cast<double>(seen_) : 0;
      stats.accuracy = seen_ ? static_cast<double>(correct_) / static_cast<double>(seen_) : 0;
      stats.seconds = epoch_seconds_;
      stats.lr = lr;
      if (options_.reducer) collapse_.reduce(*options_.reducer);
      collapse_.end_epoch(epoch_, stats.loss, "try warmup 200 or a lower lr");
      if (eval_set_) {
        const EvalResult ev =
            evaluate_sharded(model_, *eval_set_, options_.eval_batch_size, objective_.get(),
                             options_.shard, options_.shards, options_.reducer.get());
        stats.eval_loss = ev.loss;
        stats.eval_accuracy = ev.accuracy;
      }
      history_.push_back(stats);
      ++epoch_;
      step_ = 0;
      loss_sum_ = 0;
      correct_ = seen_ = 0;
      epoch_seconds_ = 0;
      for (auto& cb : callbacks_) cb->on_epoch_end(*this, stats);
    }
    if (!options_.checkpoint_path.empty()) save_checkpoint(options_.checkpoint_path);
  }
  for (auto& cb : callbacks_) cb->on_train_end(*this);
  FitResult r;
  r.epochs = history_;
  r.stopped_early = stop_requested_ && epoch_ < options_.epochs;
  r.stop_reason = stop_reason_;
  r.train_seconds = seconds_since(fit_start);
  return r;
}

Checkpoint Trainer::make_checkpoint() const {
  Checkpoint c;
  c.meta = options_.checkpoint_meta;
  c.set_meta("verdant.kind", "train");
  c.set_meta("train.epoch", std::to_string(epoch_));
  c.set_meta("train.step", std::to_string(step_));
  c.set_meta("train.global_step", std::to_string(global_step_));
  c.set_meta("train.steps_per_epoch", std::to_string(loader_.num_batches()));
  c.set_meta("train.batch_size", std::to_string(options_.batch_size));
  c.set_meta("train.seed", std::to_string(options_.seed));
  c.set_meta("train.dataset_size", std::to_string(train_set_.size()));
  c.set_meta("train.epochs", std::to_string(options_.epochs));
  c.set_meta("train.loss_sum", hex(loss_sum_));
  c.set_meta("train.correct", std::to_string(correct_));
  c.set_meta("train.seen", std::to_string(seen_));
  c.set_meta("train.epoch_seconds", hex(epoch_seconds_));
  c.set_meta("train.optimizer_lr", hex(optimizer_.lr()));
  std::string hist;
  for (auto& e : history_) {
    hist += std::to_string(e.epoch) + ' ' + hex(e.loss) + ' ' + hex(e.accuracy) + ' ' +
            hex(e.seconds) + ' ' + std::to_string(e.samples) + ' ' + hex(e.lr) + ' ' +
            hex(e.eval_loss) + ' ' + hex(e.eval_accuracy) + '\n';
  }
  c.set_meta("train.history", hist);

  for (auto& [name, p] : model_.named_parameters())
    c.tensors.emplace_back("param/" + name, p.value().clone());
  for (auto& [name, b] : model_.named_buffers())
    c.tensors.emplace_back("buffer/" + name, b.clone());
  for (auto& [name, s] : optimizer_.state_dict())
    c.tensors.emplace_back("optim/" + name, s.clone());
  const auto& st = autograd::default_generator().state();
  Tensor rng({static_cast<std::int64_t>(sizeof st)}, DType::u8);
  std::memcpy(rng.raw(), st.data(), sizeof st);
  c.tensors.emplace_back("rng/default", rng);
  for (const auto& cb : callbacks_) cb->on_save_checkpoint(*this, c);
  return c;
}

void Trainer::save_checkpoint(const std::filesystem::path& path) const {
  train::save_checkpoint(path, make_checkpoint());
}

void load_model_state(nn::Module& model, const Checkpoint& ckpt, const std::string& origin) {
  for (auto& [name, p] : model.named_parameters()) {
    const Tensor* t = ckpt.find_tensor("param/" + name);
    if (!t)
      throw Error(origin + ": checkpoint lacks parameter '" + name + "' (a different model?)");
    copy_into(p.value(), *t, name, origin);
  }
  for (auto& [name, b] : model.named_buffers()) {
    const Tensor* t = ckpt.find_tensor("buffer/" + name);
    if (!t) throw Error(origin + ": checkpoint lacks buffer '" + name + "' (a different model?)");
    copy_into(b, *t, name, origin);
  }
  std::size_t expected = model.named_parameters().size() + model.named_buffers().size();
  std::size_t found = 0;
  for (auto& [name, t] : ckpt.tensors)
    found += name.rfind("param/", 0) == 0 || name.rfind("buffer/", 0) == 0;
  if (found != expected)
    throw Error(origin + ": checkpoint holds " + std::to_string(found) +
                " parameters/buffers, the model has " + std::to_string(expected) +
                " (a different model?)");
}

void Trainer::apply_checkpoint(const Checkpoint& c, const std::string& origin) {
  auto check_same = [&](const std::string& key, const std::string& ours, const char* setting) {
    const std::string& theirs = need_meta(c, key, origin);
    if (theirs != ours)
      throw SettingError(setting, origin + ": cannot resume: the checkpoint was made with " +
                                      setting + " " + theirs + ", this run uses " + ours);
  };
  check_same("train.batch_size", std::to_string(options_.batch_size), "batch_size");
  check_same("train.seed", std::to_string(options_.seed), "seed");
  if (need_meta(c, "train.dataset_size", origin) != std::to_string(train_set_.size()))
    throw UsageError(origin + ": cannot resume: the checkpoint was made with a training set of " +
                     need_meta(c, "train.dataset_size", origin) + " samples, this run has " +
                     std::to_string(train_set_.size()));

  load_model_state(model_, c, origin);
  nn::Named<Tensor> optim_state;
  for (auto& [name, t] : c.tensors)
    if (name.rfind("optim/", 0) == 0) optim_state.emplace_back(name.substr(6), t);
  try {
    optimizer_.load_state_dict(optim_state);
  } catch (const Error& e) {
    throw Error(origin + ": optimizer state does not fit (a different optimizer?): " + e.what());
  }
  const Tensor* rng = c.find_tensor("rng/default");
  autograd::Generator::State st{};
  if (!rng || rng->dtype() != DType::u8 || rng->nbytes() != sizeof st)
    throw Error(origin + ": checkpoint lacks a valid 'rng/default' state");
  std::memcpy(st.data(), rng->raw(), sizeof st);
  autograd::default_generator().set_state(st);

  epoch_ = parse_int(need_meta(c, "train.epoch", origin), origin, "train.epoch");
  step_ = parse_int(need_meta(c, "train.step", origin), origin, "train.step");
  global_step_ = parse_int(need_meta(c, "train.global_step", origin), origin, "train.global_step");
  if (epoch_ < 0 || step_ < 0 || step_ > loader_.num_batches() || global_step_ < 0)
    throw Error(origin + ": checkpoint position (epoch " + std::to_string(epoch_) + ", step " +
                std::to_string(step_) + ") is out of range");
  loss_sum_ = parse_double(need_meta(c, "train.loss_sum", origin), origin, "train.loss_sum");
  correct_ = parse_int(need_meta(c, "train.correct", origin), origin, "train.correct");
  seen_ = parse_int(need_meta(c, "train.seen", origin), origin, "train.seen");
  epoch_seconds_ =
      parse_double(need_meta(c, "train.epoch_seconds", origin), origin, "train.epoch_seconds");
  optimizer_.set_lr(
      parse_double(need_meta(c, "train.optimizer_lr", origin), origin, "train.optimizer_lr"));
  history_.clear();
  std::istringstream hist(need_meta(c, "train.history", origin));
  std::string line;
  while (std::getline(hist, line)) {
    std::istringstream f(line);
    std::string v[8];
    for (auto& s : v) f >> s;
    if (v[7].empty()) throw Error(origin + ": checkpoint history line is malformed");
    EpochStats e;
    e.epoch = parse_int(v[0], origin, "train.history");
    e.loss = parse_double(v[1], origin, "train.history");
    e.accuracy = parse_double(v[2], origin, "train.history");
    e.seconds = parse_double(v[3], origin, "train.history");
    e.samples = parse_int(v[4], origin, "train.history");
    e.lr = parse_double(v[5], origin, "train.history");
    e.eval_loss = parse_double(v[6], origin, "train.history");
    e.eval_accuracy = parse_double(v[7], origin, "train.history");
    history_.push_back(e);
  }
  for (auto& cb : callbacks_) cb->on_load_checkpoint(*this, c, origin);
}

void Trainer::resume_from(const std::filesystem::path& path) {
  apply_checkpoint(load_checkpoint(path), path.string());
}

}  // namespace verdant::train

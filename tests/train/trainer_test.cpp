#include "verdant/train/trainer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "test_util.hpp"
#include "verdant/autograd/generator.hpp"
#include "verdant/core/error.hpp"
#include "verdant/data/split.hpp"
#include "verdant/nn/layers.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/nn/optim.hpp"
#include "verdant/nn/schedule.hpp"
#include "verdant/train/model_source.hpp"

namespace verdant::train {
namespace {

using test::TempDir;

// A small MLP for 8x8 inputs, initialised from `seed`.
std::shared_ptr<nn::Sequential> tiny_mlp(std::uint64_t seed) {
  autograd::manual_seed(seed);
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(std::make_shared<nn::Flatten>());
  m->push_back(std::make_shared<nn::Linear>(64, 32));
  m->push_back(std::make_shared<nn::ReLU>());
  if (std::getenv("NO_DROPOUT") == nullptr)
    m->push_back(std::make_shared<nn::Dropout>(0.1f));  // consumes RNG: resume must restore it
  m->push_back(std::make_shared<nn::Linear>(32, 10));
  return m;
}

std::unique_ptr<nn::SGD> sgd(nn::Module& m, double lr = 0.1) {
  return std::make_unique<nn::SGD>(m.named_parameters(),
                                   nn::SGDOptions{.lr = lr, .momentum = 0.9, .weight_decay = 1e-4});
}

class Recorder : public TrainerCallback {
 public:
  std::vector<std::string> events;
  std::int64_t stop_at = -1;
  std::int64_t poison_at = -1;  // set an output bias to NaN after this global step
  void on_train_begin(Trainer&) override { events.push_back("train_begin"); }
  void on_epoch_begin(Trainer&, std::int64_t e) override {
    events.push_back("epoch_begin " + std::to_string(e));
  }
  void on_before_optimizer_step(Trainer& t, const StepInfo&) override {
    // Gradients must be there for compression modifiers to mask them.
    for (auto& p : t.model().parameters()) EXPECT_TRUE(p.grad().defined());
  }
  void on_step_end(Trainer& t, const StepInfo& s) override {
    events.push_back("step " + std::to_string(s.global_step));
    EXPECT_TRUE(std::isfinite(s.loss));
    EXPECT_GE(s.accuracy, 0.0);
    EXPECT_LE(s.accuracy, 1.0);
    if (s.global_step == stop_at) t.request_stop("test asked");
    if (s.global_step == poison_at)
      t.model().parameters().back().value().data<float>()[0] =
          std::numeric_limits<float>::quiet_NaN();
  }
  void on_epoch_end(Trainer&, const EpochStats& e) override {
    events.push_back("epoch_end " + std::to_string(e.epoch));
  }
  void on_train_end(Trainer&) override { events.push_back("train_end"); }
};

TEST(Trainer, LearnsSyntheticDataAndEvaluates) {
  auto train_set = test::synthetic_dataset(600, 8, 1);
  auto test_set = test::synthetic_dataset(200, 8, 2);
  auto model = tiny_mlp(1);
  auto opt = sgd(*model);
  Trainer t(*model, *opt, train_set, {.epochs = 3, .batch_size = 32, .seed = 5});
  t.set_eval_set(&test_set);
  FitResult r = t.fit();
  ASSERT_EQ(r.epochs.size(), 3u);
  EXPECT_LT(r.epochs[2].loss, r.epochs[0].loss);
  EXPECT_GT(r.epochs[2].eval_accuracy, 0.9);
  EXPECT_EQ(r.epochs[0].samples, 600);
  EXPECT_EQ(t.global_step(), 3 * 19);
  EXPECT_TRUE(model->is_training());
  EvalResult ev = evaluate(*model, test_set, 64);
  EXPECT_EQ(ev.samples, 200);
  EXPECT_NEAR(ev.accuracy, r.epochs[2].eval_accuracy, 1e-12);
  EXPECT_EQ(ev.correct, static_cast<std::int64_t>(std::lround(ev.accuracy * 200)));
  EXPECT_TRUE(model->is_training()) << "evaluate must restore the training flag";
}

TEST(Trainer, CallbacksRunInOrderAndCanStop) {
  auto train_set = test::synthetic_dataset(100, 8, 1);
  auto model = tiny_mlp(1);
  auto opt = sgd(*model);
  Trainer t(*model, *opt, train_set, {.epochs = 3, .batch_size = 40, .seed = 5});
  auto rec = std::make_shared<Recorder>();
  rec->stop_at = 3;  // the second step of epoch 1 (3 steps per epoch)
  t.add_callback(rec);
  FitResult r = t.fit();
  EXPECT_TRUE(r.stopped_early);
  EXPECT_EQ(r.stop_reason, "test asked");
  EXPECT_EQ(t.global_step(), 4);
  EXPECT_EQ(rec->events,
            (std::vector<std::string>{"train_begin", "epoch_begin 0", "step 0", "step 1", "step 2",
                                      "epoch_end 0", "epoch_begin 1", "step 3", "train_end"}));
}

TEST(Trainer, NanLossStopsWithEpochAndStep) {
  auto train_set = test::synthetic_dataset(200, 8, 1);
  auto model = tiny_mlp(1);
  auto opt = sgd(*model);
  Trainer t(*model, *opt, train_set, {.epochs = 2, .batch_size = 20, .seed = 5});
  auto rec = std::make_shared<Recorder>();
  rec->poison_at = 13;  // NaN weight after global step 13 -> step 15 (epoch 2, step 5) fails
  t.add_callback(rec);
  try {
    t.fit();
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("loss is NaN at epoch 2, step 5 (global step 15)"), std::string::npos)
        << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
}

TEST(Trainer, InfiniteLossIsReportedToo) {
  auto train_set = test::synthetic_dataset(50, 8, 1);
  auto model = tiny_mlp(1);
  auto opt = sgd(*model, 1e30);  // explodes within a few steps
  Trainer t(*model, *opt, train_set, {.epochs = 50, .batch_size = 10, .seed = 5});
  try {
    t.fit();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("training diverged: loss is"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("at epoch"), std::string::npos) << e.what();
  }
}

TEST(Trainer, CollapsedNetworkStopsAfterOneEpochWithOneClearError) {
  // Every parameter zero: the hidden ReLUs never fire, only the output bias learns, so within
  // each batch every example gets the same class, epoch after epoch.
  auto train_set = test::synthetic_dataset(2560, 8, 1);
  auto model = tiny_mlp(1);
  for (auto& p : model->parameters()) std::memset(p.value().raw(), 0, p.value().nbytes());
  auto opt = sgd(*model);
  Trainer t(*model, *opt, train_set, {.epochs = 5, .batch_size = 64, .seed = 5});
  auto rec = std::make_shared<Recorder>();
  t.add_callback(rec);
  try {
    t.fit();
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("training collapsed in epoch 1: within every batch (2560 examples) all "
                       "predictions were one class"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("try warmup 200 or a lower lr"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
  // It stopped at the first epoch's end, not after five.
  EXPECT_EQ(std::count(rec->events.begin(), rec->events.end(), "epoch_begin 1"), 0);
}

TEST(CollapseWatch, NeedsAWholeEpochOfInputIndependentBatches) {
  auto batch = [](std::vector<int> classes) {  // logits whose row i predicts classes[i]
    Tensor t({static_cast<std::int64_t>(classes.size()), 3}, DType::f32);
    std::memset(t.raw(), 0, t.nbytes());
    for (std::size_t i = 0; i < classes.size(); ++i) t.data<float>()[i * 3 + classes[i]] = 1.0f;
    return t;
  };
  const std::vector<int> same(64, 2), mixed = [] {
    std::vector<int> v(64, 2);
    v[17] = 0;
    return v;
  }();
  CollapseWatch w;
  // One class per batch, a different one in each batch: still a collapse.
  for (int b = 0; b < 40; ++b) w.observe(batch(std::vector<int>(64, b % 3)));
  EXPECT_THROW(w.end_epoch(0, 2.3, "hint"), Error);
  // One batch that depends on its input clears the epoch; the watch restarts each epoch.
  for (int b = 0; b < 40; ++b) w.observe(batch(b == 39 ? mixed : same));
  EXPECT_NO_THROW(w.end_epoch(1, 2.3, "hint"));
  // Too few examples prove nothing.
  for (int b = 0; b < 31; ++b) w.observe(batch(same));
  EXPECT_NO_THROW(w.end_epoch(2, 2.3, "hint"));
}

std::vector<std::uint8_t> weights_of(nn::Module& m) {
  std::vector<std::uint8_t> out;
  for (auto& [n, p] : m.named_parameters()) {
    auto* b = static_cast<const std::uint8_t*>(p.value().raw());
    out.insert(out.end(), b, b + p.value().nbytes());
  }
  return out;
}

TEST(Trainer, ResumeMidEpochGivesIdenticalWeights) {
  TempDir dir;
  auto train_set = test::synthetic_dataset(230, 8, 1);
  TrainOptions o{.epochs = 3, .batch_size = 32, .seed = 9, .checkpoint_every = 5};
  auto schedule = std::make_shared<nn::CosineLR>(0.1, 3 * 8);

  auto ref = tiny_mlp(3);
  auto ref_opt = sgd(*ref);
  Trainer a(*ref, *ref_opt, train_set, o, schedule);
  FitResult ra = a.fit();

  // Interrupted run: stops after global step 12 (epoch 2, mid-epoch), writing a checkpoint
  // there; a copy of the periodic checkpoint from step 10 is kept too, so resuming repeats
  // steps 11 and 12 as a run killed at step 12 would.
  struct CopyAt : TrainerCallback {
    std::filesystem::path from, to;
    void on_step_begin(Trainer&, const StepInfo& s) override {
      if (s.global_step == 11) std::filesystem::copy_file(from, to);
    }
  };
  o.checkpoint_path = dir / "run.vckpt";
  {
    auto m = tiny_mlp(3);
    auto opt = sgd(*m);
    Trainer b(*m, *opt, train_set, o, schedule);
    auto rec = std::make_shared<Recorder>();
    rec->stop_at = 11;
    auto copy = std::make_shared<CopyAt>();
    copy->from = dir / "run.vckpt";
    copy->to = dir / "at10.vckpt";
    b.add_callback(rec);
    b.add_callback(copy);
    EXPECT_TRUE(b.fit().stopped_early);
  }
  for (const char* name : {"run.vckpt", "at10.vckpt"}) {
    SCOPED_TRACE(name);
    auto m = tiny_mlp(3);
    autograd::manual_seed(12345);  // disturb the generator: the checkpoint must restore it
    auto opt = sgd(*m);
    o.checkpoint_path = dir / "resumed.vckpt";
    Trainer c(*m, *opt, train_set, o, schedule);
    c.resume_from(dir / name);
    EXPECT_EQ(c.global_step(), name[0] == 'r' ? 12 : 10);
    EXPECT_EQ(c.epoch(), 1);
    EXPECT_EQ(c.step_in_epoch(), name[0] == 'r' ? 4 : 2);
    FitResult rc = c.fit();
    EXPECT_EQ(weights_of(*m), weights_of(*ref));
    ASSERT_EQ(rc.epochs.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(rc.epochs[i].loss, ra.epochs[i].loss) << "epoch " << i;
      EXPECT_EQ(rc.epochs[i].accuracy, ra.epochs[i].accuracy) << "epoch " << i;
    }
    auto sa = ref_opt->state_dict(), sc = opt->state_dict();
    ASSERT_EQ(sa.size(), sc.size());
    for (std::size_t i = 0; i < sa.size(); ++i)
      EXPECT_EQ(std::memcmp(sa[i].second.raw(), sc[i].second.raw(), sa[i].second.nbytes()), 0)
          << sa[i].first;
  }
}

TEST(Trainer, ResumeRejectsMismatchedRunAndModel) {
  TempDir dir;
  auto train_set = test::synthetic_dataset(64, 8, 1);
  auto m = tiny_mlp(1);
  auto opt = sgd(*m);
  Trainer t(*m, *opt, train_set,
            {.epochs = 1, .batch_size = 16, .seed = 1, .checkpoint_path = dir / "a.vckpt"});
  t.fit();
  auto path = (dir / "a.vckpt").string();

  auto m2 = tiny_mlp(1);
  auto opt2 = sgd(*m2);
  Trainer other_batch(*m2, *opt2, train_set, {.epochs = 1, .batch_size = 8, .seed = 1});
  try {
    other_batch.resume_from(path);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("batch_size 16, this run uses 8"), std::string::npos)
        << e.what();
  }

  autograd::manual_seed(1);
  auto wide = std::make_shared<nn::Sequential>();
  wide->push_back(std::make_shared<nn::Flatten>());
  wide->push_back(std::make_shared<nn::Linear>(64, 10));
  auto opt3 = sgd(*wide);
  Trainer other_model(*wide, *opt3, train_set, {.epochs = 1, .batch_size = 16, .seed = 1});
  try {
    other_model.resume_from(path);
    FAIL();
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("1.weight"), std::string::npos) << msg;
  }

  auto m4 = tiny_mlp(1);
  nn::Adam adam(m4->named_parameters(), nn::AdamOptions{});
  Trainer other_optim(*m4, adam, train_set, {.epochs = 1, .batch_size = 16, .seed = 1});
  try {
    other_optim.resume_from(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer state does not fit"), std::string::npos)
        << e.what();
  }
}

TEST(Trainer, BadOptionsAreUsageErrors) {
  auto train_set = test::synthetic_dataset(10, 8, 1);
  auto m = tiny_mlp(1);
  auto opt = sgd(*m);
  EXPECT_THROW(Trainer(*m, *opt, train_set, {.epochs = 0}), UsageError);
  EXPECT_THROW(Trainer(*m, *opt, train_set, {.epochs = 1, .batch_size = 0}), UsageError);
  EXPECT_THROW(Trainer(*m, *opt, train_set, {.epochs = 1, .batch_size = 20, .drop_last = true}),
               UsageError);
}

TEST(Session, SubsetAndModelHelpers) {
  auto base = std::make_shared<data::ImageDataset>(test::synthetic_dataset(30, 8, 1));
  data::SubsetDataset sub(base, 10, 5);
  EXPECT_EQ(sub.size(), 5);
  EXPECT_EQ(sub.label(0), base->label(10));
  EXPECT_THROW(data::SubsetDataset(base, 28, 5), Error);
  EXPECT_THROW(build_model("no_such_model"), UsageError);
  EXPECT_THROW(build_model("/nonexistent/model.yaml"), UsageError);
  auto mlp = build_model("mlp");
  EXPECT_EQ(mlp->num_parameters(), 266610);

  Checkpoint c;
  c.meta = {{"model.spec", "mlp"}};
  for (auto& [n, p] : mlp->named_parameters()) c.tensors.emplace_back("param/" + n, p.value());
  auto again = model_from_checkpoint(c, "x.vckpt");
  EXPECT_EQ(weights_of(*again), weights_of(*mlp));
  c.meta.clear();
  EXPECT_THROW(model_from_checkpoint(c, "x.vckpt"), Error);
}

}  // namespace
}  // namespace verdant::train

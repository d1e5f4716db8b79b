// The learning check: mlp on 10k Fashion-MNIST training images for a few epochs
// must exceed 80% on 2k held-out test images. Labelled `slow` (skipped under sanitizers).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "verdant/autograd/generator.hpp"
#include "verdant/core/threading.hpp"
#include "verdant/data/split.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/nn/optim.hpp"
#include "verdant/nn/schedule.hpp"
#include "verdant/train/trainer.hpp"

namespace verdant::train {
namespace {

TEST(Accuracy, MlpLearnsFashionMnistSlice) {
  if (!std::filesystem::exists(std::string(data::kFashionMnistDefaultDir) +
                               "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST not installed at " << data::kFashionMnistDefaultDir
                 << " (Debian package dataset-fashion-mnist; scripts/setup installs it)";
  set_num_threads(0);
  auto split = data::load_split({.limit_train = 10000, .limit_test = 2000});
  autograd::manual_seed(1);
  auto model = nn::make_model("mlp");
  nn::SGD opt(model->named_parameters(), {.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4});
  const std::int64_t epochs = 4, steps = (10000 + 63) / 64;
  Trainer t(*model, opt, *split.train, {.epochs = epochs, .batch_size = 64, .seed = 1},
            std::make_shared<nn::CosineLR>(0.05, epochs * steps));
  auto start = std::chrono::steady_clock::now();
  t.fit();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EvalResult r = evaluate(*model, *split.test);
  EXPECT_EQ(r.samples, 2000);
  EXPECT_GT(r.accuracy, 0.80) << "mlp reached only " << 100 * r.accuracy << "% on 2000 test images";
  RecordProperty("test_accuracy", std::to_string(r.accuracy));
  std::printf(
      "mlp, 10k images x %lld epochs: %.1f s, test accuracy %.2f%% on 2000 held-out images\n",
      static_cast<long long>(epochs), seconds, 100.0 * r.accuracy);
}

}  // namespace
}  // namespace verdant::train

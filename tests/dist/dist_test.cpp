// What data parallelism builds on, in one process: gradients reported ready exactly once and
// only when complete (the overlap starts buckets on it), every batch split into disjoint
// shards that cover it, and a world of one when mpirun did not start the process.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "verdant/autograd/generator.hpp"
#include "verdant/autograd/ops.hpp"
#include "verdant/autograd/variable.hpp"
#include "verdant/core/error.hpp"
#include "verdant/data/dataset.hpp"
#include "verdant/data/loader.hpp"
#include "verdant/dist/communicator.hpp"
#include "verdant/nn/models.hpp"

namespace verdant {
namespace {

TEST(GradReadyHook, EachParameterOnceWithItsWholeGradient) {
  autograd::manual_seed(1);
  auto model = nn::make_model("lenet5");
  Tensor x = Tensor::full({3, 1, 28, 28}, 0.5f);
  Tensor y({3}, DType::i32);
  for (int i = 0; i < 3; ++i) y.data<std::int32_t>()[i] = i;
  std::map<const void*, int> calls;
  std::map<const void*, double> at_ready;
  {
    autograd::GradReadyHook hook([&](const autograd::Variable& leaf) {
      ++calls[leaf.impl()];
      double s = 0;
      for (std::int64_t i = 0; i < leaf.grad().numel(); ++i) s += leaf.grad().data<float>()[i];
      at_ready[leaf.impl()] = s;
    });
    autograd::cross_entropy(model->forward(autograd::Variable(x)), y).backward();
  }
  const auto params = model->named_parameters();
  ASSERT_EQ(calls.size(), params.size());
  for (const auto& [name, p] : params) {
    EXPECT_EQ(calls[p.impl()], 1) << name;
    double s = 0;
    for (std::int64_t i = 0; i < p.grad().numel(); ++i) s += p.grad().data<float>()[i];
    EXPECT_EQ(at_ready[p.impl()], s) << name << " was reported before its gradient was complete";
  }
  // Without a hook nothing is called; the scope is gone.
  for (auto& p : model->parameters()) p.zero_grad();
  calls.clear();
  autograd::cross_entropy(model->forward(autograd::Variable(x)), y).backward();
  EXPECT_TRUE(calls.empty());
}

TEST(Shards, SplitEveryBatchIntoDisjointPartsThatCoverIt) {
  std::vector<std::uint8_t> img(50), lab(50);
  for (int i = 0; i < 50; ++i) lab[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i % 10);
  data::ImageDataset ds({50, 1, 1}, img, lab, 10, 0.f, 1.f);
  const data::DataLoader whole(ds, {.batch_size = 16, .seed = 4});
  for (std::int64_t shards : {2, 3}) {
    std::vector<data::DataLoader> parts;
    for (std::int64_t k = 0; k < shards; ++k)
      parts.emplace_back(
          ds, data::LoaderOptions{.batch_size = 16, .seed = 4, .shard = k, .shards = shards});
    for (std::int64_t b = 0; b < whole.num_batches(); ++b) {
      const auto all = whole.batch(b).indices;
      std::vector<std::int64_t> joined;
      for (auto& p : parts) {
        EXPECT_EQ(p.num_batches(), whole.num_batches());
        const auto part = p.batch(b);
        EXPECT_EQ(part.global_size, static_cast<std::int64_t>(all.size()));
        joined.insert(joined.end(), part.indices.begin(), part.indices.end());
      }
      EXPECT_EQ(joined, all) << shards << " shards, batch " << b;
    }
  }
  EXPECT_THROW(data::DataLoader(ds, {.batch_size = 16, .shard = 2, .shards = 2}), Error);
}

TEST(Communicator, AloneIsAWorldOfOne) {
  if (dist::launched_by_mpirun()) GTEST_SKIP() << "running under mpirun";
  dist::Communicator& w = dist::Communicator::world();
  EXPECT_FALSE(w.distributed());
  EXPECT_EQ(w.size(), 1);
  EXPECT_EQ(w.rank(), 0);
  double v[2] = {1.5, 2};
  w.sum(v);
  EXPECT_EQ(v[0], 1.5);
  EXPECT_EQ(w.all_gather("x"), (std::vector<std::string>{"x"}));
  const auto first = w.fetch_add(1);
  EXPECT_EQ(w.fetch_add(1), first + 1);
}

}  // namespace
}  // namespace verdant

#pragma once
// DataLoader: batches a Dataset, optionally in a shuffled order. The order of epoch e is a
// pure function of (seed, e), so a resumed run sees exactly the same batches.
#include <cstdint>
#include <vector>

#include "verdant/core/tensor.hpp"
#include "verdant/data/dataset.hpp"

namespace verdant::data {

struct Batch {
  Tensor x;                           // f32 [B, ...sample_shape]
  Tensor y;                           // i32 [B]
  std::vector<std::int64_t> indices;  // each sample's position in the dataset
  std::int64_t global_size = 0;       // samples of the whole batch, over every shard
  std::int64_t size() const { return y.defined() ? y.numel() : 0; }
};

struct LoaderOptions {
  std::int64_t batch_size = 64;
  bool shuffle = true;
  bool drop_last = false;
  std::uint64_t seed = 0;
  // Data parallelism: every batch is split into `shards` contiguous parts and this loader
  // yields part `shard`. All shards follow the one order of (seed, epoch).
  std::int64_t shard = 0, shards = 1;
};

class DataLoader {
 public:
  DataLoader(const Dataset& dataset, LoaderOptions options);

  // Chooses the order for epoch `epoch` (0-based). Called by the training loop.
  void set_epoch(std::int64_t epoch);
  std::int64_t epoch() const { return epoch_; }
  std::int64_t num_batches() const;
  // Batch number `index` (0-based) of the current epoch.
  Batch batch(std::int64_t index) const;
  const std::vector<std::int64_t>& order() const { return order_; }
  const Dataset& dataset() const { return dataset_; }
  const LoaderOptions& options() const { return options_; }

 private:
  const Dataset& dataset_;
  LoaderOptions options_;
  std::int64_t epoch_ = 0;
  std::vector<std::int64_t> order_;
};

// The permutation of [0, n) used for (seed, epoch): Fisher-Yates over SplitMix64, portable
// across standard libraries (std::uniform_int_distribution is not).
std::vector<std::int64_t> shuffled_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch);

}  // namespace verdant::data

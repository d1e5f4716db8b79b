#include "verdant/data/loader.hpp"

#include <algorithm>
#include <numeric>

#include "verdant/core/error.hpp"
#include "verdant/core/random.hpp"

namespace verdant::data {

std::vector<std::int64_t> shuffled_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::uint64_t state = seed * 0xD1B54A32D192ED03ull + static_cast<std::uint64_t>(epoch) + 1;
  splitmix64(state);
  for (std::int64_t i = n - 1; i > 0; --i) {
    // Multiply-shift maps 64 random bits to [0, i] with negligible bias for our sizes.
    auto bound = static_cast<unsigned __int128>(i + 1);
    auto j = static_cast<std::int64_t>((bound * splitmix64(state)) >> 64);
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  return order;
}

DataLoader::DataLoader(const Dataset& dataset, LoaderOptions options)
    : dataset_(dataset), options_(options) {
  if (options_.batch_size <= 0)
    throw SettingError("batch_size",
                       "batch_size must be positive, got " + std::to_string(options_.batch_size));
  if (options_.shards < 1 || options_.shard < 0 || options_.shard >= options_.shards)
    throw Error("loader shard " + std::to_string(options_.shard) + " of " +
                std::to_string(options_.shards) + " is out of range");
  set_epoch(0);
}

void DataLoader::set_epoch(std::int64_t epoch) {
  epoch_ = epoch;
  if (options_.shuffle) {
    order_ = shuffled_order(dataset_.size(), options_.seed, epoch);
  } else {
    order_.resize(static_cast<std::size_t>(dataset_.size()));
    std::iota(order_.begin(), order_.end(), 0);
  }
}

std::int64_t DataLoader::num_batches() const {
  std::int64_t n = dataset_.size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

Batch DataLoader::batch(std::int64_t index) const {
  if (index < 0 || index >= num_batches())
    throw Error("batch " + std::to_string(index) + " out of range (" +
                std::to_string(num_batches()) + " batches)");
  const std::int64_t global_begin = index * options_.batch_size;
  const std::int64_t global = std::min(options_.batch_size, dataset_.size() - global_begin);
  const std::int64_t k = options_.shard, n = options_.shards;
  const std::int64_t begin = global_begin + global * k / n;
  const std::int64_t count = global_begin + global * (k + 1) / n - begin;
  Shape xs = dataset_.sample_shape();
  xs.insert(xs.begin(), count);
  Batch b{Tensor(xs, DType::f32), Tensor({count}, DType::i32),
          std::vector<std::int64_t>(order_.begin() + begin, order_.begin() + begin + count)};
  b.global_size = global;
  dataset_.fill(b.indices, b.x.data<float>(), b.y.data<std::int32_t>());
  return b;
}

}  // namespace verdant::data

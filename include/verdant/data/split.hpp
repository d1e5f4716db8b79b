#pragma once
// The data a run trains and tests on: where it comes from (one default location), how much
// of it to use, and the train/test pair every command loads through load_split().
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "verdant/data/dataset.hpp"

namespace verdant::data {

// A contiguous range [begin, begin + count) of another dataset.
class SubsetDataset : public Dataset {
 public:
  SubsetDataset(std::shared_ptr<const Dataset> base, std::int64_t begin, std::int64_t count);
  std::int64_t size() const override { return count_; }
  Shape sample_shape() const override { return base_->sample_shape(); }
  int num_classes() const override { return base_->num_classes(); }
  void fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const override;

 private:
  std::shared_ptr<const Dataset> base_;
  std::int64_t begin_, count_;
};

struct DataOptions {
  // A directory holding the Fashion-MNIST IDX files (the default: Debian's
  // dataset-fashion-mnist).
  std::filesystem::path location = kFashionMnistDefaultDir;
  // Keep only the first N samples of each part; 0 keeps all.
  std::int64_t limit_train = 0;
  std::int64_t limit_test = 0;
};

struct DataSplit {
  std::shared_ptr<const Dataset> train, test;
  std::string description;  // e.g. "Fashion-MNIST (/usr/share/...): 60000 train, 10000 test"
};

enum class Parts { train, test, both };

// Loads the parts asked for. A negative limit, or one above a part's size, is a UsageError
// naming the setting ("limit_train"); a missing or corrupt file is an Error naming the file.
DataSplit load_split(const DataOptions& options, Parts which = Parts::both);

}  // namespace verdant::data

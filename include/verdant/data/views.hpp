#pragma once
// Datasets made from other datasets without copying their samples: a range or a list of
// samples (train/test splits, limits), a normalization applied per batch, another sample
// shape (flat features seen as images).
#include <cstdint>
#include <memory>
#include <vector>

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

// The samples `indices` of another dataset, in that order.
class IndexedDataset : public Dataset {
 public:
  IndexedDataset(std::shared_ptr<const Dataset> base, std::vector<std::int64_t> indices);
  std::int64_t size() const override { return static_cast<std::int64_t>(indices_.size()); }
  Shape sample_shape() const override { return base_->sample_shape(); }
  int num_classes() const override { return base_->num_classes(); }
  void fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const override;

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<std::int64_t> indices_;
};

// x' = (x - mean) / std, with one (mean, std) for every feature or one per feature.
struct Normalization {
  std::vector<float> mean, std;
  bool empty() const { return mean.empty(); }
  // Text for checkpoints ("m0,m1,...;s0,s1,...", exact to the float) and back; a malformed
  // text -> verdant::Error naming `origin`.
  std::string to_text() const;
  static Normalization from_text(const std::string& text, const std::string& origin);
};

// The mean and standard deviation of `data`'s features over all its samples: per feature, or
// one pair over every value (images). Features that never vary get std 1.
Normalization fit_normalization(const Dataset& data, bool per_feature);

class NormalizedDataset : public Dataset {
 public:
  // Throws verdant::Error when the normalization has neither 1 nor sample-size entries.
  NormalizedDataset(std::shared_ptr<const Dataset> base, Normalization normalization);
  std::int64_t size() const override { return base_->size(); }
  Shape sample_shape() const override { return base_->sample_shape(); }
  int num_classes() const override { return base_->num_classes(); }
  void fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const override;
  const Normalization& normalization() const { return normalization_; }

 private:
  std::shared_ptr<const Dataset> base_;
  Normalization normalization_;
};

// The same samples seen with another shape of the same size (e.g. 64 features as 1x8x8).
class ReshapedDataset : public Dataset {
 public:
  // Throws SettingError("shape", ...) when the sizes differ.
  ReshapedDataset(std::shared_ptr<const Dataset> base, Shape shape);
  std::int64_t size() const override { return base_->size(); }
  Shape sample_shape() const override { return shape_; }
  int num_classes() const override { return base_->num_classes(); }
  void fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const override {
    base_->fill(indices, x, y);
  }

 private:
  std::shared_ptr<const Dataset> base_;
  Shape shape_;
};

}  // namespace verdant::data

#pragma once
// Datasets: a fixed number of (features, class label) samples that can copy any subset of
// themselves into a float batch. Images stay as bytes in memory and are normalised per batch.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "verdant/core/tensor.hpp"

namespace verdant::data {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::int64_t size() const = 0;
  // Shape of one sample, e.g. {1, 28, 28} or {n_features}.
  virtual Shape sample_shape() const = 0;
  virtual int num_classes() const = 0;
  // Writes samples `indices` as floats to `x` (indices.size() * sample numel) and their
  // labels to `y`.
  virtual void fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const = 0;
  std::int32_t label(std::int64_t index) const;
};

// Images of unsigned bytes with labels; pixel p becomes (p / 255 - mean) / std.
class ImageDataset : public Dataset {
 public:
  // `images`: [N, H, W] or [N, C, H, W]; `labels`: [N]. Names are used in error messages.
  ImageDataset(std::vector<std::int64_t> image_dims, std::vector<std::uint8_t> images,
               std::vector<std::uint8_t> labels, int num_classes, float mean, float std);

  // Reads an IDX image file and an IDX label file; checks that the counts agree and
  // labels are below num_classes.
  static ImageDataset from_idx(const std::filesystem::path& images,
                               const std::filesystem::path& labels, int num_classes, float mean,
                               float std);

  std::int64_t size() const override { return count_; }
  Shape sample_shape() const override { return sample_shape_; }
  int num_classes() const override { return num_classes_; }
  void fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const override;

  // A view of samples [begin, begin + count) sharing the same bytes.
  ImageDataset slice(std::int64_t begin, std::int64_t count) const;
  float mean() const { return mean_; }
  float stddev() const { return std_; }
  const std::uint8_t* image_bytes(std::int64_t index) const;

 private:
  struct Bytes {
    std::vector<std::uint8_t> images, labels;
  };
  ImageDataset() = default;
  std::shared_ptr<const Bytes> bytes_;
  Shape sample_shape_;
  std::int64_t sample_numel_ = 0;
  std::int64_t offset_ = 0, count_ = 0;
  int num_classes_ = 0;
  float mean_ = 0, std_ = 1;
};

// Fashion-MNIST from a directory holding the four standard files (.gz or plain).
// Normalised with the training set's mean and standard deviation.
inline constexpr const char* kFashionMnistDefaultDir = "/usr/share/datasets/fashion-mnist";
inline constexpr float kFashionMnistMean = 0.2860f;
inline constexpr float kFashionMnistStd = 0.3530f;
ImageDataset fashion_mnist(const std::filesystem::path& dir, bool train);

// Tabular data: a header line, then comma-separated numeric values; one column is the
// integer class label (by name, or the last column when `label_column` is empty).
class CsvDataset : public Dataset {
 public:
  static CsvDataset load(const std::filesystem::path& path, const std::string& label_column = "");

  std::int64_t size() const override { return static_cast<std::int64_t>(labels_.size()); }
  Shape sample_shape() const override { return {static_cast<std::int64_t>(feature_names_.size())}; }
  int num_classes() const override { return num_classes_; }
  void fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const override;

  const std::vector<std::string>& feature_names() const { return feature_names_; }
  // Rescales every feature column to zero mean and unit variance (constant columns stay 0).
  void standardize();
  float feature(std::int64_t row, std::int64_t col) const {
    return features_[static_cast<std::size_t>(row * sample_shape()[0] + col)];
  }

 private:
  std::vector<std::string> feature_names_;
  std::vector<float> features_;  // row-major [rows, features]
  std::vector<std::int32_t> labels_;
  int num_classes_ = 0;
};

}  // namespace verdant::data

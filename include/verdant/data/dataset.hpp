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
#include "verdant/data/npy.hpp"

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
  // labels are below num_classes (0: as many classes as the labels use).
  static ImageDataset from_idx(const std::filesystem::path& images,
                               const std::filesystem::path& labels, int num_classes, float mean,
                               float std);

  std::int64_t size() const override { return count_; }
  Shape sample_shape() const override { return sample_shape_; }
  int num_classes() const override { return num_classes_; }
  void fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const override;

  // A view of samples [begin, begin + count) sharing the same bytes.
  ImageDataset slice(std::int64_t begin, std::int64_t count) const;
  // The same images (sharing the bytes) normalized with another mean and std.
  ImageDataset normalized(float mean, float std) const;
  // The mean and standard deviation of all pixels as values in [0, 1] (from a histogram).
  std::pair<double, double> pixel_statistics() const;
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

// Tabular data: rows of delimited numbers, one column the class label.
struct CsvOptions {
  char delimiter = ',';
  // Whether the first line names the columns. automatic: when any of its cells is not a number.
  // A first line whose width differs from the rows' is read as a description (sklearn's
  // "150,4,setosa,..." lines) and skipped.
  enum class Header { automatic, yes, no } header = Header::automatic;
  // The label column by name or 0-based index; empty: the last column.
  std::string label_column;
  // Labels that are not integers are class names: they map to these classes in this order
  // when given (a name not among them is an error), else to the sorted distinct names.
  std::vector<std::string> classes;
};

class CsvDataset : public Dataset {
 public:
  // Plain or gzip-compressed. Errors name the file, the line and the column
  // ("wine.csv:7:3: 'x' is not a number"), ragged rows and a missing label column too.
  static CsvDataset load(const std::filesystem::path& path, const CsvOptions& options);
  static CsvDataset load(const std::filesystem::path& path, const std::string& label_column = "");

  std::int64_t size() const override { return static_cast<std::int64_t>(labels_.size()); }
  Shape sample_shape() const override { return {static_cast<std::int64_t>(feature_names_.size())}; }
  int num_classes() const override { return num_classes_; }
  void fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const override;

  const std::vector<std::string>& feature_names() const { return feature_names_; }
  // The names of the classes when the labels were names; empty for integer labels.
  const std::vector<std::string>& class_names() const { return class_names_; }
  // Rescales every feature column to zero mean and unit variance (constant columns stay 0).
  void standardize();
  float feature(std::int64_t row, std::int64_t col) const {
    return features_[static_cast<std::size_t>(row * sample_shape()[0] + col)];
  }

 private:
  std::vector<std::string> feature_names_;
  std::vector<float> features_;  // row-major [rows, features]
  std::vector<std::int32_t> labels_;
  std::vector<std::string> class_names_;
  int num_classes_ = 0;
};

// Samples from a NumPy array (or any typed array) with one integer label each: sample i is
// row i of `features` ([N, ...]); uint8 values become v / 255, other types are used as they
// are. The arrays stay where they are (a .npy file stays memory-mapped).
class ArrayDataset : public Dataset {
 public:
  // Errors name `origin`: fewer than 2 dimensions, labels of another length or that are not
  // non-negative integers.
  ArrayDataset(NpyArray features, const NpyArray& labels, const std::string& origin);
  std::int64_t size() const override { return count_; }
  Shape sample_shape() const override { return sample_shape_; }
  int num_classes() const override { return num_classes_; }
  void fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const override;
  bool is_bytes() const { return features_.type() == NpyType::u8; }

 private:
  NpyArray features_;
  std::vector<std::int32_t> labels_;
  Shape sample_shape_;
  std::int64_t count_ = 0, sample_numel_ = 0;
  int num_classes_ = 0;
};

}  // namespace verdant::data

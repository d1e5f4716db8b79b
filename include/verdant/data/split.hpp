#pragma once
// The data a run trains and tests on, in the user's format: a folder of IDX files
// (Fashion-MNIST's names; the default is Debian's dataset-fashion-mnist), a CSV file (plain or
// .gz), a NumPy .npy (with its labels in another .npy) or .npz, or an IDX image file (with an
// IDX label file). The test part is its own file, or a held-out fraction with a seed. Features
// are normalized with statistics of the training part, which travel with the model.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "verdant/data/dataset.hpp"
#include "verdant/data/views.hpp"

namespace verdant::data {

struct DataOptions {
  std::filesystem::path location = kFashionMnistDefaultDir;
  // The labels of `location`, for a .npy or an IDX image file.
  std::filesystem::path labels;
  // The test part in its own file (and its labels); empty: the folder's test files, or
  // test_fraction of `location`.
  std::filesystem::path test_location, test_labels;
  // Held out of `location` for testing when there is no test part; default 0.2 for a single
  // file, none for a folder (which has its test files).
  std::optional<double> test_fraction;
  std::uint64_t split_seed = 0;
  CsvOptions csv;
  std::string x_array = "x", y_array = "y";  // .npz array names
  Shape shape;  // sample shape (C, H, W) for flat features; empty: as stored
  // Keep only the first N samples of each part; 0 keeps all.
  std::int64_t limit_train = 0;
  std::int64_t limit_test = 0;
  // The normalization and class names of a trained model, to load data for it (eval, export
  // calibration) exactly as it was trained; empty: fitted on the training part.
  std::optional<Normalization> normalization;
  std::vector<std::string> classes;
};

struct DataSplit {
  std::shared_ptr<const Dataset> train, test;
  std::string description;      // e.g. "Fashion-MNIST (/usr/share/...): 60000 train, 10000 test"
  Normalization normalization;  // applied to both parts
  bool pixels = false;          // the samples are bytes scaled to [0, 1] (images)
  std::vector<std::string> classes;  // class names, when the labels were names
  Shape sample_shape;
  int num_classes = 0;  // over both parts
};

enum class Parts { train, test, both };

// Loads the parts asked for. A bad setting is a SettingError naming it ("limit_train 100000
// exceeds the 400 samples available"); a missing or corrupt file is an Error naming the file;
// features and labels of different lengths, ragged rows, unsupported dtypes likewise.
DataSplit load_split(const DataOptions& options, Parts which = Parts::both);

}  // namespace verdant::data

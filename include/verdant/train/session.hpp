#pragma once
// Shared set-up for the `train` and `eval` verbs (and benchmarks): datasets by location,
// models by name / YAML file / checkpoint.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "verdant/data/dataset.hpp"
#include "verdant/nn/module.hpp"
#include "verdant/train/checkpoint.hpp"

namespace verdant::train {

// A contiguous range [begin, begin + count) of another dataset (which must outlive it).
class SubsetDataset : public data::Dataset {
 public:
  SubsetDataset(std::shared_ptr<const data::Dataset> base, std::int64_t begin, std::int64_t count);
  std::int64_t size() const override { return count_; }
  Shape sample_shape() const override { return base_->sample_shape(); }
  int num_classes() const override { return base_->num_classes(); }
  void fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const override;

 private:
  std::shared_ptr<const data::Dataset> base_;
  std::int64_t begin_, count_;
};

struct DataSplit {
  std::shared_ptr<const data::Dataset> train, test;
  std::string description;  // e.g. "Fashion-MNIST (/usr/share/...): 60000 train, 10000 test"
};

// `location`: a directory holding the Fashion-MNIST IDX files. limit_* > 0 keep the first
// N samples; 0 keeps all; a limit above the size is an error naming `limit_flag`s.
// which: load the training part, the test part, or both.
enum class Parts { train, test, both };
DataSplit load_fashion_mnist(const std::filesystem::path& location, Parts which,
                             std::int64_t limit_train = 0, std::int64_t limit_test = 0);

// A built-in model name or a YAML file. When it is a file, its text is returned in
// `yaml_text` (so a checkpoint can rebuild the model without the file).
// `flag` names the option in usage errors ("--model").
std::shared_ptr<nn::Sequential> build_model(const std::string& spec,
                                            std::string* yaml_text = nullptr,
                                            const std::string& flag = "--model");

// Rebuilds the model a `verdant train` checkpoint was made from and loads its weights.
std::shared_ptr<nn::Sequential> model_from_checkpoint(const Checkpoint& ckpt,
                                                      const std::string& origin);

// Peak resident set size of this process so far, in MiB.
double peak_rss_mib();

}  // namespace verdant::train

#include "verdant/train/session.hpp"

#include <sys/resource.h>

#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/nn/models.hpp"
#include "verdant/train/trainer.hpp"

namespace verdant::train {

namespace fs = std::filesystem;

SubsetDataset::SubsetDataset(std::shared_ptr<const data::Dataset> base, std::int64_t begin,
                             std::int64_t count)
    : base_(std::move(base)), begin_(begin), count_(count) {
  if (begin < 0 || count < 0 || begin + count > base_->size())
    throw Error("subset [" + std::to_string(begin) + ", " + std::to_string(begin + count) +
                ") out of range (dataset has " + std::to_string(base_->size()) + ")");
}

void SubsetDataset::fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const {
  std::vector<std::int64_t> shifted(indices.begin(), indices.end());
  for (auto& i : shifted) {
    if (i < 0 || i >= count_) throw Error("subset index " + std::to_string(i) + " out of range");
    i += begin_;
  }
  base_->fill(shifted, x, y);
}

namespace {
std::shared_ptr<const data::Dataset> limit(std::shared_ptr<const data::Dataset> ds, std::int64_t n,
                                           const char* flag) {
  if (n < 0) throw UsageError(std::string(flag) + " must not be negative");
  if (n == 0 || n == ds->size()) return ds;
  if (n > ds->size())
    throw UsageError(std::string(flag) + " " + std::to_string(n) + " exceeds the " +
                     std::to_string(ds->size()) + " samples available");
  return std::make_shared<SubsetDataset>(std::move(ds), 0, n);
}
}  // namespace

DataSplit load_fashion_mnist(const fs::path& location, Parts which, std::int64_t limit_train,
                             std::int64_t limit_test) {
  DataSplit s;
  if (which != Parts::test)
    s.train = limit(std::make_shared<data::ImageDataset>(data::fashion_mnist(location, true)),
                    limit_train, "--limit-train");
  if (which != Parts::train)
    s.test = limit(std::make_shared<data::ImageDataset>(data::fashion_mnist(location, false)),
                   limit_test, "--limit-test");
  s.description = "Fashion-MNIST (" + location.string() + "):";
  if (s.train) s.description += " " + std::to_string(s.train->size()) + " train";
  if (s.train && s.test) s.description += ",";
  if (s.test) s.description += " " + std::to_string(s.test->size()) + " test";
  return s;
}

std::shared_ptr<nn::Sequential> build_model(const std::string& spec, std::string* yaml_text,
                                            const std::string& flag) {
  bool is_file =
      spec.ends_with(".yaml") || spec.ends_with(".yml") || spec.find('/') != std::string::npos;
  if (!is_file) {
    try {
      return nn::make_model(spec);
    } catch (const UsageError& e) {
      throw UsageError(flag + ": " + e.what());
    }
  }
  if (!fs::exists(spec)) throw UsageError(flag + ": " + spec + ": no such model file");
  std::string text = read_file_text(spec);
  if (yaml_text) *yaml_text = text;
  return nn::parse_model_yaml(text, spec);
}

std::shared_ptr<nn::Sequential> model_from_checkpoint(const Checkpoint& ckpt,
                                                      const std::string& origin) {
  std::shared_ptr<nn::Sequential> model;
  if (auto* yaml = ckpt.find_meta("model.yaml")) {
    const std::string* spec = ckpt.find_meta("model.spec");
    model = nn::parse_model_yaml(*yaml, spec ? *spec : origin);
  } else if (auto* spec = ckpt.find_meta("model.spec")) {
    try {
      model = nn::make_model(*spec);
    } catch (const Error& e) {
      throw Error(origin + ": checkpoint names model '" + *spec + "': " + e.what());
    }
  } else {
    throw Error(origin + ": checkpoint does not say which model it holds (no 'model.spec' entry)");
  }
  load_model_state(*model, ckpt, origin);
  return model;
}

double peak_rss_mib() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux reports KiB
}

}  // namespace verdant::train

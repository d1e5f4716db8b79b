#include "verdant/data/split.hpp"

#include "verdant/core/error.hpp"

namespace verdant::data {

SubsetDataset::SubsetDataset(std::shared_ptr<const Dataset> base, std::int64_t begin,
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
std::shared_ptr<const Dataset> limit(std::shared_ptr<const Dataset> ds, std::int64_t n,
                                     const char* setting) {
  if (n == 0 || n == ds->size()) return ds;
  if (n > ds->size())
    throw SettingError(setting, std::string(setting) + " " + std::to_string(n) + " exceeds the " +
                                    std::to_string(ds->size()) + " samples available");
  return std::make_shared<SubsetDataset>(std::move(ds), 0, n);
}
}  // namespace

DataSplit load_split(const DataOptions& o, Parts which) {
  // Limits are checked before anything is read, so a bad one costs no I/O.
  if (o.limit_train < 0) throw SettingError("limit_train", "limit_train must not be negative");
  if (o.limit_test < 0) throw SettingError("limit_test", "limit_test must not be negative");
  DataSplit s;
  if (which != Parts::test)
    s.train = limit(std::make_shared<ImageDataset>(fashion_mnist(o.location, true)), o.limit_train,
                    "limit_train");
  if (which != Parts::train)
    s.test = limit(std::make_shared<ImageDataset>(fashion_mnist(o.location, false)), o.limit_test,
                   "limit_test");
  s.description = "Fashion-MNIST (" + o.location.string() + "):";
  if (s.train) s.description += " " + std::to_string(s.train->size()) + " train";
  if (s.train && s.test) s.description += ",";
  if (s.test) s.description += " " + std::to_string(s.test->size()) + " test";
  return s;
}

}  // namespace verdant::data

#include "verdant/data/views.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

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

IndexedDataset::IndexedDataset(std::shared_ptr<const Dataset> base,
                               std::vector<std::int64_t> indices)
    : base_(std::move(base)), indices_(std::move(indices)) {
  for (auto i : indices_)
    if (i < 0 || i >= base_->size())
      throw Error("sample index " + std::to_string(i) + " out of range (dataset has " +
                  std::to_string(base_->size()) + ")");
}

void IndexedDataset::fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const {
  std::vector<std::int64_t> mapped(indices.size());
  for (std::size_t k = 0; k < indices.size(); ++k) {
    const std::int64_t i = indices[k];
    if (i < 0 || i >= size()) throw Error("sample index " + std::to_string(i) + " out of range");
    mapped[k] = indices_[static_cast<std::size_t>(i)];
  }
  base_->fill(mapped, x, y);
}

namespace {
std::string float_list(const std::vector<float>& v) {
  std::string out;
  char buf[32];
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%a", static_cast<double>(v[i]));
    out += (i ? "," : "") + std::string(buf);
  }
  return out;
}

std::vector<float> parse_list(const std::string& text, const std::string& origin) {
  std::vector<float> out;
  std::stringstream s(text);
  std::string cell;
  while (std::getline(s, cell, ',')) {
    char* end = nullptr;
    const float v = std::strtof(cell.c_str(), &end);
    if (cell.empty() || *end != '\0' || !std::isfinite(v))
      throw Error(origin + ": normalization entry '" + cell + "' is not a number");
    out.push_back(v);
  }
  return out;
}
}  // namespace

std::string Normalization::to_text() const {
  return float_list(mean) + ";" + float_list(std);
}

Normalization Normalization::from_text(const std::string& text, const std::string& origin) {
  const auto semi = text.find(';');
  if (semi == std::string::npos) throw Error(origin + ": malformed normalization '" + text + "'");
  Normalization n{parse_list(text.substr(0, semi), origin),
                  parse_list(text.substr(semi + 1), origin)};
  if (n.mean.size() != n.std.size() || n.mean.empty())
    throw Error(origin + ": normalization has " + std::to_string(n.mean.size()) + " means and " +
                std::to_string(n.std.size()) + " deviations");
  for (float s : n.std)
    if (!(s > 0)) throw Error(origin + ": normalization deviation must be positive");
  return n;
}

Normalization fit_normalization(const Dataset& data, bool per_feature) {
  const std::int64_t n = data.size(), f = shape_numel(data.sample_shape());
  const std::size_t features = per_feature ? static_cast<std::size_t>(f) : 1;
  std::vector<double> sum(features, 0.0), sq(features, 0.0);
  constexpr std::int64_t kChunk = 512;
  std::vector<float> x(static_cast<std::size_t>(kChunk * f));
  std::vector<std::int32_t> y(kChunk);
  std::vector<std::int64_t> idx(kChunk);
  for (std::int64_t begin = 0; begin < n; begin += kChunk) {
    const std::int64_t count = std::min(kChunk, n - begin);
    for (std::int64_t k = 0; k < count; ++k) idx[static_cast<std::size_t>(k)] = begin + k;
    data.fill({idx.data(), static_cast<std::size_t>(count)}, x.data(), y.data());
    for (std::int64_t k = 0; k < count * f; ++k) {
      const std::size_t j = per_feature ? static_cast<std::size_t>(k % f) : 0;
      sum[j] += x[static_cast<std::size_t>(k)];
      sq[j] += double(x[static_cast<std::size_t>(k)]) * x[static_cast<std::size_t>(k)];
    }
  }
  const double values = double(n) * (per_feature ? 1.0 : double(f));
  Normalization out;
  for (std::size_t j = 0; j < features; ++j) {
    const double mean = values > 0 ? sum[j] / values : 0.0;
    const double var = values > 0 ? std::max(0.0, sq[j] / values - mean * mean) : 0.0;
    const double sd = std::sqrt(var);
    out.mean.push_back(static_cast<float>(mean));
    out.std.push_back(sd > 1e-12 ? static_cast<float>(sd) : 1.0f);
  }
  return out;
}

NormalizedDataset::NormalizedDataset(std::shared_ptr<const Dataset> base, Normalization n)
    : base_(std::move(base)), normalization_(std::move(n)) {
  const auto f = static_cast<std::size_t>(shape_numel(base_->sample_shape()));
  const std::size_t k = normalization_.mean.size();
  if ((k != 1 && k != f) || normalization_.std.size() != k)
    throw Error("normalization has " + std::to_string(k) + " entries, the samples " +
                std::to_string(f) + " features");
}

void NormalizedDataset::fill(std::span<const std::int64_t> indices, float* x,
                             std::int32_t* y) const {
  base_->fill(indices, x, y);
  const auto f = static_cast<std::size_t>(shape_numel(base_->sample_shape()));
  const auto& m = normalization_.mean;
  const auto& s = normalization_.std;
  const bool one = m.size() == 1;
  for (std::size_t i = 0; i < indices.size(); ++i)
    for (std::size_t j = 0; j < f; ++j) {
      float& v = x[i * f + j];
      v = (v - m[one ? 0 : j]) / s[one ? 0 : j];
    }
}

ReshapedDataset::ReshapedDataset(std::shared_ptr<const Dataset> base, Shape shape)
    : base_(std::move(base)), shape_(std::move(shape)) {
  if (shape_numel(shape_) != shape_numel(base_->sample_shape()))
    throw SettingError("shape", "shape " + shape_str(shape_) + " holds " +
                                    std::to_string(shape_numel(shape_)) + " values, a sample has " +
                                    std::to_string(shape_numel(base_->sample_shape())));
}

}  // namespace verdant::data

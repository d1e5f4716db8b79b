#include "verdant/data/dataset.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "compressed.hpp"
#include "verdant/core/clones.hpp"
#include "verdant/core/error.hpp"
#include "verdant/data/idx.hpp"

namespace verdant::data {

namespace fs = std::filesystem;

std::int32_t Dataset::label(std::int64_t index) const {
  std::int64_t n = shape_numel(sample_shape());
  std::vector<float> x(static_cast<std::size_t>(n));
  std::int32_t y = 0;
  fill(std::span<const std::int64_t>(&index, 1), x.data(), &y);
  return y;
}

// ---------------------------------------------------------------- ImageDataset

ImageDataset::ImageDataset(std::vector<std::int64_t> image_dims, std::vector<std::uint8_t> images,
                           std::vector<std::uint8_t> labels, int num_classes, float mean, float std)
    : num_classes_(num_classes), mean_(mean), std_(std) {
  if (image_dims.size() != 3 && image_dims.size() != 4)
    throw Error("images must be [N, H, W] or [N, C, H, W], got " + shape_str(image_dims));
  if (!(std > 0)) throw Error("image normalisation std must be positive");
  count_ = image_dims[0];
  sample_shape_ = image_dims.size() == 3 ? Shape{1, image_dims[1], image_dims[2]}
                                         : Shape{image_dims[1], image_dims[2], image_dims[3]};
  sample_numel_ = shape_numel(sample_shape_);
  if (sample_numel_ == 0)
    throw Error("images of shape " + shape_str(image_dims) + " have no pixels");
  if (static_cast<std::int64_t>(images.size()) != count_ * sample_numel_)
    throw Error("image bytes do not match shape " + shape_str(image_dims));
  if (static_cast<std::int64_t>(labels.size()) != count_)
    throw Error(std::to_string(count_) + " images but " + std::to_string(labels.size()) +
                " labels");
  auto b = std::make_shared<Bytes>();
  b->images = std::move(images);
  b->labels = std::move(labels);
  bytes_ = std::move(b);
}

ImageDataset ImageDataset::from_idx(const fs::path& images, const fs::path& labels, int num_classes,
                                    float mean, float std) {
  IdxArray img = read_idx(images);
  IdxArray lab = read_idx(labels);
  if (img.dims.size() != 3 && img.dims.size() != 4)
    throw Error(images.string() + ": expected a 3-D or 4-D image array, got " +
                std::to_string(img.dims.size()) + " dimensions");
  if (img.dims[0] == 0)
    throw Error(images.string() + ": holds no images (its IDX header declares 0)");
  if (lab.dims.size() != 1)
    throw Error(labels.string() + ": expected a 1-D label array, got " +
                std::to_string(lab.dims.size()) + " dimensions");
  if (img.dims[0] != lab.dims[0])
    throw Error(labels.string() + ": " + std::to_string(lab.dims[0]) + " labels but " +
                images.string() + " has " + std::to_string(img.dims[0]) + " images");
  if (num_classes == 0)
    for (auto b : lab.bytes) num_classes = std::max(num_classes, int(b) + 1);
  for (std::size_t i = 0; i < lab.bytes.size(); ++i)
    if (lab.bytes[i] >= num_classes)
      throw Error(labels.string() + ": label " + std::to_string(lab.bytes[i]) + " at index " +
                  std::to_string(i) + " is not below " + std::to_string(num_classes));
  return ImageDataset(img.dims, std::move(img.bytes), std::move(lab.bytes), num_classes, mean, std);
}

ImageDataset ImageDataset::normalized(float mean, float std) const {
  if (!(std > 0)) throw Error("image normalisation std must be positive");
  ImageDataset out = *this;
  out.mean_ = mean;
  out.std_ = std;
  return out;
}

std::pair<double, double> ImageDataset::pixel_statistics() const {
  std::array<std::uint64_t, 256> count{};
  const std::uint8_t* p = bytes_->images.data() + offset_ * sample_numel_;
  const std::int64_t n = count_ * sample_numel_;
  for (std::int64_t i = 0; i < n; ++i) ++count[p[i]];
  double sum = 0, sq = 0;
  for (int v = 0; v < 256; ++v) {
    const double x = v / 255.0;
    sum += x * double(count[v]);
    sq += x * x * double(count[v]);
  }
  const double values = std::max<double>(1.0, double(n)), mean = sum / values;
  return {mean, std::sqrt(std::max(0.0, sq / values - mean * mean))};
}

namespace {
// Pixel p becomes (p / 255 - mean) / std, in float. Eight divides at a time (AVX2) convert a
// sample faster than lookups in a table of the 256 values, and give the same bits.
VERDANT_CLONES
void normalize_bytes(const std::uint8_t* src, std::int64_t n, float mean, float stddev,
                     float* dst) {
  for (std::int64_t k = 0; k < n; ++k)
    dst[k] = (static_cast<float>(src[k]) / 255.0f - mean) / stddev;
}
}  // namespace

void ImageDataset::fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const {
  for (std::int64_t idx : indices)
    if (idx < 0 || idx >= count_)
      throw Error("sample index " + std::to_string(idx) + " out of range (dataset has " +
                  std::to_string(count_) + ")");
  const auto n = static_cast<std::int64_t>(indices.size());
  // The batch is assembled between two training steps, while the other threads wait: a
  // batch of Fashion-MNIST is 50,000 pixels, worth sharing.
#pragma omp parallel for schedule(static) if (n * sample_numel_ >= (1 << 15))
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t idx = indices[static_cast<std::size_t>(i)];
    normalize_bytes(bytes_->images.data() + (offset_ + idx) * sample_numel_, sample_numel_, mean_,
                    std_, x + i * sample_numel_);
    y[i] = bytes_->labels[static_cast<std::size_t>(offset_ + idx)];
  }
}

ImageDataset ImageDataset::slice(std::int64_t begin, std::int64_t count) const {
  if (begin < 0 || count < 0 || begin + count > count_)
    throw Error("slice [" + std::to_string(begin) + ", " + std::to_string(begin + count) +
                ") out of range (dataset has " + std::to_string(count_) + ")");
  ImageDataset out = *this;
  out.offset_ = offset_ + begin;
  out.count_ = count;
  return out;
}

const std::uint8_t* ImageDataset::image_bytes(std::int64_t index) const {
  return bytes_->images.data() + (offset_ + index) * sample_numel_;
}

namespace {
fs::path pick(const fs::path& dir, const std::string& stem) {
  fs::path gz = dir / (stem + ".gz");
  if (fs::exists(gz)) return gz;
  fs::path plain = dir / stem;
  if (fs::exists(plain)) return plain;
  throw Error(gz.string() + ": no such file (nor " + plain.filename().string() +
              "); install the Debian package dataset-fashion-mnist or pass --data DIR");
}
}  // namespace

ImageDataset fashion_mnist(const fs::path& dir, bool train) {
  if (!fs::is_directory(dir)) throw Error(dir.string() + ": dataset directory does not exist");
  std::string prefix = train ? "train" : "t10k";
  fs::path images = pick(dir, prefix + "-images-idx3-ubyte");
  fs::path labels = pick(dir, prefix + "-labels-idx1-ubyte");
  return ImageDataset::from_idx(images, labels, 10, kFashionMnistMean, kFashionMnistStd);
}

// ---------------------------------------------------------------- CsvDataset

namespace {

std::vector<std::string_view> split_cells(std::string_view line, char delimiter) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    std::size_t at = line.find(delimiter, start);
    out.push_back(
        line.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

// Parses a number; false when the text is not one (a NaN or an infinity is a number that the
// caller then refuses).
bool parse_number(std::string_view s, float& out) {
  s = trim(s);
  if (s.empty()) return false;
  if (s.front() == '+') s.remove_prefix(1);
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return (ec == std::errc() || ec == std::errc::result_out_of_range) && ptr == s.data() + s.size();
}

bool all_numbers(const std::vector<std::string_view>& cells) {
  float v;
  for (auto c : cells)
    if (!parse_number(c, v)) return false;
  return true;
}

}  // namespace

CsvDataset CsvDataset::load(const fs::path& path, const std::string& label_column) {
  CsvOptions o;
  o.label_column = label_column;
  return load(path, o);
}

CsvDataset CsvDataset::load(const fs::path& path, const CsvOptions& o) {
  if (!fs::exists(path)) throw Error(path.string() + ": cannot open: no such file");
  const std::vector<std::uint8_t> bytes = read_file_maybe_gzip(path);
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  std::vector<std::pair<std::size_t, std::string_view>> lines;  // (line number, text)
  std::size_t line_no = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    ++line_no;
    std::string_view line = text.substr(pos, end - pos);
    if (!trim(line).empty()) lines.emplace_back(line_no, line);
    pos = end + 1;
  }
  if (lines.empty()) throw Error(path.string() + ": empty file (no header line)");
  const std::string file = path.string();
  auto where = [&](std::size_t line) { return file + ":" + std::to_string(line) + ": "; };

  // The header, if any, and the column names.
  std::vector<std::string> header;
  std::size_t first_row = 0;
  const auto first = split_cells(lines[0].second, o.delimiter);
  const bool has_header = o.header == CsvOptions::Header::yes ||
                          (o.header == CsvOptions::Header::automatic && !all_numbers(first));
  if (has_header) {
    first_row = 1;
    const std::size_t width =
        lines.size() > 1 ? split_cells(lines[1].second, o.delimiter).size() : first.size();
    if (first.size() == width)
      for (auto cell : first) header.emplace_back(trim(cell));
  }
  const std::size_t width = first_row < lines.size()
                                ? split_cells(lines[first_row].second, o.delimiter).size()
                                : first.size();
  if (header.empty())
    for (std::size_t c = 0; c < width; ++c) header.push_back(std::to_string(c));

  std::size_t label_index = header.size() - 1;
  if (!o.label_column.empty()) {
    label_index = header.size();
    for (std::size_t c = 0; c < header.size(); ++c)
      if (header[c] == o.label_column) label_index = c;
    const bool numeric = o.label_column.find_first_not_of("0123456789") == std::string::npos;
    if (label_index == header.size() && numeric) {
      const auto k = std::stoull(o.label_column);
      if (k < header.size()) label_index = static_cast<std::size_t>(k);
    }
    if (label_index == header.size())
      throw Error(where(lines[0].first) + "no column named '" + o.label_column + "' (" +
                  std::to_string(header.size()) + " columns" +
                  (has_header ? ": " + std::string(trim(lines[0].second.substr(0, 80))) : "") +
                  ")");
  }
  if (header.size() < 2)
    throw Error(where(lines[0].first) + "need at least one feature column and a label column");
  CsvDataset ds;
  for (std::size_t c = 0; c < header.size(); ++c)
    if (c != label_index) ds.feature_names_.push_back(header[c]);

  // Labels are numbers (class indices) or, when the first one is not a number, class names.
  std::vector<std::string> names;
  bool named = false;
  int max_label = -1;
  for (std::size_t r = first_row; r < lines.size(); ++r) {
    const auto [number, line] = lines[r];
    const auto cells = split_cells(line, o.delimiter);
    if (cells.size() != header.size())
      throw Error(where(number) + "expected " + std::to_string(header.size()) + " fields, found " +
                  std::to_string(cells.size()));
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const std::string cell(trim(cells[c]));
      const std::string at = file + ":" + std::to_string(number) + ":" + std::to_string(c + 1) +
                             ": column '" + header[c] + "': ";
      float v = 0;
      const bool is_number = parse_number(cell, v);
      if (c == label_index) {
        if (r == first_row) named = !is_number;
        if (named) {
          names.push_back(cell);
          ds.labels_.push_back(0);  // mapped below
          continue;
        }
        if (!is_number || !std::isfinite(v))
          throw Error(at + "'" + cell + "' is not a finite number");
        if (v < 0 || v != std::floor(v) || v > 1e6f)
          throw Error(where(number) + "label '" + cell + "' is not a non-negative integer class");
        ds.labels_.push_back(static_cast<std::int32_t>(v));
        max_label = std::max(max_label, static_cast<int>(v));
      } else {
        if (!is_number || !std::isfinite(v))
          throw Error(at + "'" + cell + "' is not a finite number");
        ds.features_.push_back(v);
      }
    }
  }
  if (ds.labels_.empty()) throw Error(file + ": no data rows after the header");
  if (named) {
    ds.class_names_ = o.classes;
    if (ds.class_names_.empty()) {
      ds.class_names_ = names;
      std::sort(ds.class_names_.begin(), ds.class_names_.end());
      ds.class_names_.erase(std::unique(ds.class_names_.begin(), ds.class_names_.end()),
                            ds.class_names_.end());
    }
    for (std::size_t k = 0; k < names.size(); ++k) {
      const auto it = std::find(ds.class_names_.begin(), ds.class_names_.end(), names[k]);
      if (it == ds.class_names_.end())
        throw Error(file + ": label '" + names[k] + "' is not one of the model's classes");
      ds.labels_[k] = static_cast<std::int32_t>(it - ds.class_names_.begin());
    }
    max_label = static_cast<int>(ds.class_names_.size()) - 1;
  }
  ds.num_classes_ = max_label + 1;
  return ds;
}

void CsvDataset::fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const {
  std::size_t nf = feature_names_.size();
  for (std::size_t i = 0; i < indices.size(); ++i) {
    std::int64_t idx = indices[i];
    if (idx < 0 || idx >= size())
      throw Error("row index " + std::to_string(idx) + " out of range (dataset has " +
                  std::to_string(size()) + ")");
    std::memcpy(x + i * nf, features_.data() + static_cast<std::size_t>(idx) * nf,
                nf * sizeof(float));
    y[i] = labels_[static_cast<std::size_t>(idx)];
  }
}

void CsvDataset::standardize() {
  std::size_t nf = feature_names_.size(), rows = labels_.size();
  for (std::size_t c = 0; c < nf; ++c) {
    double sum = 0, sq = 0;
    for (std::size_t r = 0; r < rows; ++r) sum += features_[r * nf + c];
    double mean = sum / static_cast<double>(rows);
    for (std::size_t r = 0; r < rows; ++r) {
      double d = features_[r * nf + c] - mean;
      sq += d * d;
    }
    double sd = std::sqrt(sq / static_cast<double>(rows));
    for (std::size_t r = 0; r < rows; ++r)
      features_[r * nf + c] =
          sd > 0 ? static_cast<float>((features_[r * nf + c] - mean) / sd) : 0.0f;
  }
}

// ---------------------------------------------------------------- ArrayDataset

ArrayDataset::ArrayDataset(NpyArray features, const NpyArray& labels, const std::string& origin)
    : features_(std::move(features)) {
  const auto& shape = features_.shape();
  if (shape.size() < 2)
    throw Error(origin + ": features must be an array of samples, [N, ...], got shape " +
                shape_str(shape));
  count_ = shape[0];
  sample_shape_.assign(shape.begin() + 1, shape.end());
  if (sample_shape_.size() == 2) sample_shape_.insert(sample_shape_.begin(), 1);  // [N, H, W]
  sample_numel_ = shape_numel(sample_shape_);
  if (labels.shape().size() != 1 || labels.shape()[0] != count_)
    throw Error(origin + ": " + std::to_string(count_) + " samples but the labels have shape " +
                shape_str(labels.shape()));
  labels_.resize(static_cast<std::size_t>(count_));
  int max_label = -1;
  for (std::int64_t i = 0; i < count_; ++i) {
    const float v = labels.at(i);
    if (!(v >= 0) || v != std::floor(v) || v > 1e6f)
      throw Error(origin + ": label " + std::to_string(i) + " is " + std::to_string(v) +
                  ", not a non-negative integer class");
    labels_[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(v);
    max_label = std::max(max_label, static_cast<int>(v));
  }
  num_classes_ = max_label + 1;
}

void ArrayDataset::fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const {
  const bool bytes = is_bytes();
  for (std::size_t k = 0; k < indices.size(); ++k) {
    const std::int64_t i = indices[k];
    if (i < 0 || i >= count_)
      throw Error("sample index " + std::to_string(i) + " out of range (dataset has " +
                  std::to_string(count_) + ")");
    float* out = x + k * static_cast<std::size_t>(sample_numel_);
    features_.to_float(i * sample_numel_, sample_numel_, out);
    if (bytes)
      for (std::int64_t j = 0; j < sample_numel_; ++j) out[j] /= 255.0f;
    y[k] = labels_[static_cast<std::size_t>(i)];
  }
}

}  // namespace verdant::data

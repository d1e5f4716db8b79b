#include "verdant/data/dataset.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

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
  for (std::size_t i = 0; i < lab.bytes.size(); ++i)
    if (lab.bytes[i] >= num_classes)
      throw Error(labels.string() + ": label " + std::to_string(lab.bytes[i]) + " at index " +
                  std::to_string(i) + " is not below " + std::to_string(num_classes));
  return ImageDataset(img.dims, std::move(img.bytes), std::move(lab.bytes), num_classes, mean, std);
}

void ImageDataset::fill(std::span<const std::int64_t> indices, float* x, std::int32_t* y) const {
  // (p/255 - mean)/std == p * scale + shift; a 256-entry table avoids the divide per pixel.
  float table[256];
  for (int p = 0; p < 256; ++p) table[p] = (static_cast<float>(p) / 255.0f - mean_) / std_;
  for (std::size_t i = 0; i < indices.size(); ++i) {
    std::int64_t idx = indices[i];
    if (idx < 0 || idx >= count_)
      throw Error("sample index " + std::to_string(idx) + " out of range (dataset has " +
                  std::to_string(count_) + ")");
    const std::uint8_t* src = bytes_->images.data() + (offset_ + idx) * sample_numel_;
    float* dst = x + static_cast<std::int64_t>(i) * sample_numel_;
    for (std::int64_t k = 0; k < sample_numel_; ++k) dst[k] = table[src[k]];
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

std::vector<std::string_view> split_commas(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    std::size_t comma = line.find(',', start);
    out.push_back(line.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool parse_float(std::string_view s, float& out) {
  s = trim(s);
  if (s.empty()) return false;
  if (s.front() == '+') s.remove_prefix(1);
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(out);
}

}  // namespace

CsvDataset CsvDataset::load(const fs::path& path, const std::string& label_column) {
  std::ifstream in(path);
  if (!in) throw Error(path.string() + ": cannot open");
  CsvDataset ds;
  std::string line;
  std::size_t line_no = 0;
  // Header: the first non-empty line.
  while (std::getline(in, line)) {
    ++line_no;
    if (!trim(line).empty()) break;
  }
  if (trim(line).empty()) throw Error(path.string() + ": empty file (no header line)");
  // Copies: the views from split_commas die with `line`.
  std::vector<std::string> header;
  for (auto cell : split_commas(line)) header.emplace_back(trim(cell));
  std::size_t label_index = header.size() - 1;
  if (!label_column.empty()) {
    label_index = header.size();
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == label_column) label_index = i;
    if (label_index == header.size())
      throw Error(path.string() + ":" + std::to_string(line_no) + ": no column named '" +
                  label_column + "' in the header");
  }
  if (header.size() < 2)
    throw Error(path.string() + ":" + std::to_string(line_no) +
                ": need at least one feature column and a label column");
  for (std::size_t i = 0; i < header.size(); ++i)
    if (i != label_index) ds.feature_names_.push_back(header[i]);

  int max_label = -1;
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    auto cells = split_commas(line);
    std::string where = path.string() + ":" + std::to_string(line_no) + ": ";
    if (cells.size() != header.size())
      throw Error(where + "expected " + std::to_string(header.size()) + " fields, found " +
                  std::to_string(cells.size()));
    for (std::size_t i = 0; i < cells.size(); ++i) {
      float v = 0;
      if (!parse_float(cells[i], v))
        throw Error(where + "column '" + header[i] + "': '" + std::string(trim(cells[i])) +
                    "' is not a finite number");
      if (i == label_index) {
        if (v < 0 || v != std::floor(v) || v > 1e6f)
          throw Error(where + "label '" + std::string(trim(cells[i])) +
                      "' is not a non-negative integer class");
        ds.labels_.push_back(static_cast<std::int32_t>(v));
        max_label = std::max(max_label, static_cast<int>(v));
      } else {
        ds.features_.push_back(v);
      }
    }
  }
  if (ds.labels_.empty()) throw Error(path.string() + ": no data rows after the header");
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

}  // namespace verdant::data

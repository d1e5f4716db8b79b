#include "inputs.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "verdant/core/error.hpp"
#include "verdant/data/npy.hpp"

namespace verdant::edge {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string t = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) t += (i ? ", " : "") + std::to_string(shape[i]);
  return t + "]";
}

std::size_t label_index(const std::string& column, const std::string& path) {
  if (column.empty() || column == "first" || column == "none") return 0;
  char* end = nullptr;
  const unsigned long k = std::strtoul(column.c_str(), &end, 10);
  if (*end != '\0')
    throw UsageError("--label-column: '" + column + "' is not first, last, none or an index (" +
                     path + ")");
  return k;
}

std::vector<std::int32_t> labels_of(const data::NpyArray& a, const std::string& origin) {
  if (a.shape().size() != 1)
    throw Error(origin + ": labels must be a 1-D array, got shape " + shape_text(a.shape()));
  std::vector<std::int32_t> out(static_cast<std::size_t>(a.count()));
  for (std::int64_t i = 0; i < a.count(); ++i) {
    const float v = a.at(i);
    if (!(v >= 0.f) || v != std::floor(v) || v > 1e6f)
      throw Error(origin + ": label " + std::to_string(i) + " is not a non-negative integer");
    out[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(v);
  }
  return out;
}

// Whole file, gunzipped if it is gzip (zlib passes plain files through unchanged).
std::vector<std::uint8_t> read_maybe_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::vector<std::uint8_t> out;
  std::uint8_t buf[1 << 16];
  for (;;) {
    const int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int code = 0;
      const std::string msg = gzerror(f, &code);
      gzclose(f);
      throw Error(path + ": corrupt gzip data: " + msg);
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  gzclose(f);
  return out;
}

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}

struct Idx {
  std::uint8_t type = 0;
  std::vector<std::uint32_t> dims;
  std::size_t data_offset = 0;
  std::vector<std::uint8_t> bytes;
};

Idx parse_idx(const std::string& path) {
  Idx idx;
  idx.bytes = read_maybe_gz(path);
  const auto& b = idx.bytes;
  if (b.size() < 4 || b[0] != 0 || b[1] != 0) throw Error(path + ": not an IDX file (bad magic)");
  idx.type = b[2];
  const std::size_t nd = b[3];
  if (nd == 0 || nd > 4 || b.size() < 4 + 4 * nd) throw Error(path + ": truncated IDX header");
  std::size_t n = 1;
  for (std::size_t i = 0; i < nd; ++i) {
    idx.dims.push_back(be32(&b[4 + 4 * i]));
    n *= idx.dims.back();
    if (n > (std::size_t{1} << 34)) throw Error(path + ": IDX dimensions too large");
  }
  idx.data_offset = 4 + 4 * nd;
  std::size_t elem = 0;
  if (idx.type == 0x08 || idx.type == 0x09)
    elem = 1;
  else if (idx.type == 0x0D)
    elem = 4;
  else
    throw Error(path + ": IDX element type " + std::to_string(idx.type) +
                " not supported (u8, i8 or f32)");
  if (b.size() - idx.data_offset < n * elem)
    throw Error(path + ": truncated IDX data (" + std::to_string(b.size() - idx.data_offset) +
                " bytes, header promises " + std::to_string(n * elem) + ")");
  return idx;
}

std::string shape_text(const std::vector<std::uint32_t>& d, std::size_t from) {
  std::string s;
  for (std::size_t i = from; i < d.size(); ++i) s += (s.empty() ? "" : "x") + std::to_string(d[i]);
  return s.empty() ? "1" : s;
}

Samples read_idx(const std::string& path, std::size_t input_size, float bs, float bo) {
  Idx idx = parse_idx(path);
  Samples s;
  s.count = idx.dims[0];
  std::size_t per = 1;
  for (std::size_t i = 1; i < idx.dims.size(); ++i) per *= idx.dims[i];
  if (per != input_size)
    throw Error(path + ": sample shape " + shape_text(idx.dims, 1) + " (" + std::to_string(per) +
                " values) does not match the model's input (" + std::to_string(input_size) +
                " values)");
  s.size = per;
  s.values.resize(s.count * per);
  const std::uint8_t* d = idx.bytes.data() + idx.data_offset;
  if (idx.type == 0x0D) {
    s.bytes_per_sample = 4 * per;
    for (std::size_t i = 0; i < s.values.size(); ++i) {
      const std::uint32_t u = be32(d + 4 * i);
      std::memcpy(&s.values[i], &u, 4);
    }
  } else {
    s.bytes_per_sample = per;
    for (std::size_t i = 0; i < s.values.size(); ++i) {
      const float v = idx.type == 0x08 ? float(d[i]) : float(static_cast<std::int8_t>(d[i]));
      s.values[i] = v * bs + bo;
    }
  }
  return s;
}

Samples read_csv(const std::string& path, std::size_t input_size, float bs, float bo, bool norm,
                 const std::string& label_column) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  Samples s;
  s.size = input_size;
  s.bytes_per_sample = 4 * input_size;
  std::string line;
  std::size_t lineno = 0;
  bool has_label = false;
  std::size_t label_at = 0;
  std::vector<float> row;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    row.clear();
    const char* p = line.c_str();
    bool numeric = true;
    while (*p != '\0') {
      char* end = nullptr;
      const float v = std::strtof(p, &end);
      if (end == p) {
        numeric = false;
        break;
      }
      row.push_back(v);
      p = end;
      while (*p == ' ' || *p == '\t') ++p;
      if (*p == ',')
        ++p;
      else if (*p != '\0') {
        numeric = false;
        break;
      }
    }
    if (!numeric) {
      if (s.count == 0 && lineno == 1) continue;  // a header line
      throw Error(path + ":" + std::to_string(lineno) + ": not a number");
    }
    if (s.count == 0) {
      has_label = label_column.empty() ? row.size() == input_size + 1 : label_column != "none";
      label_at = label_column == "last" ? row.size() - 1 : label_index(label_column, path);
    }
    const std::size_t want = input_size + (has_label ? 1 : 0);
    if (row.size() != want)
      throw Error(path + ":" + std::to_string(lineno) + ": " + std::to_string(row.size()) +
                  " values, the model's input needs " + std::to_string(input_size) +
                  (has_label              ? " plus the label"
                   : label_column.empty() ? " (or one more, a leading label)"
                                          : ""));
    if (has_label && label_at >= row.size())
      throw Error(path + ": label column " + std::to_string(label_at) + " is beyond the " +
                  std::to_string(row.size()) + " columns");
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (has_label && i == label_at) {
        if (!(row[i] >= 0.f) || row[i] != std::floor(row[i]) || row[i] > 1e6f)
          throw Error(path + ":" + std::to_string(lineno) +
                      ": label is not a non-negative integer");
        s.labels.push_back(static_cast<std::int32_t>(row[i]));
        continue;
      }
      s.values.push_back(norm ? row[i] * bs + bo : row[i]);
    }
    ++s.count;
  }
  return s;
}

Samples read_npy(const std::string& path, const InputOptions& o, std::size_t input_size, float bs,
                 float bo) {
  const bool archive = ends_with(path, ".npz");
  const data::NpyArray x = archive ? data::read_npz(path, o.x_array) : data::read_npy(path);
  const std::int64_t n = x.shape().empty() ? 0 : x.shape()[0];
  if (n <= 0 || static_cast<std::size_t>(x.count()) != static_cast<std::size_t>(n) * input_size)
    throw Error(path + ": an array of shape " + shape_text(x.shape()) +
                " is not a list of samples of " + std::to_string(input_size) +
                " values (the model's input)");
  Samples s;
  s.count = static_cast<std::size_t>(n);
  s.size = input_size;
  const bool bytes = x.type() == data::NpyType::u8;
  s.bytes_per_sample = input_size * data::npy_type_size(x.type());
  s.values.resize(s.count * input_size);
  x.to_float(0, x.count(), s.values.data());
  if (bytes || o.normalize_values)
    for (float& v : s.values) v = v * bs + bo;
  if (archive) {
    const auto names = data::npz_names(path);
    if (std::find(names.begin(), names.end(), o.y_array) != names.end())
      s.labels = labels_of(data::read_npz(path, o.y_array), path + ":" + o.y_array);
  }
  return s;
}

Samples read_raw(const std::string& path, std::size_t input_size, float bs, float bo, bool norm) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t per = input_size * 4;
  if (bytes.empty() || bytes.size() % per != 0)
    throw Error(path + ": raw float32 file of " + std::to_string(bytes.size()) +
                " bytes is not a whole number of " + std::to_string(input_size) + "-value inputs");
  Samples s;
  s.size = input_size;
  s.count = bytes.size() / per;
  s.bytes_per_sample = per;
  s.values.resize(s.count * input_size);
  std::memcpy(s.values.data(), bytes.data(), bytes.size());
  if (norm)
    for (float& v : s.values) v = v * bs + bo;
  return s;
}

}  // namespace

Format parse_format(const std::string& name) {
  if (name == "idx") return Format::idx;
  if (name == "csv") return Format::csv;
  if (name == "npy") return Format::npy;
  if (name == "raw") return Format::raw;
  if (name == "auto") return Format::automatic;
  throw UsageError("--format: unknown format '" + name + "' (idx, csv, npy, raw or auto)");
}

namespace {
Format format_of(const std::string& path, Format format) {
  if (format != Format::automatic) return format;
  if (ends_with(path, ".csv") || ends_with(path, ".csv.gz")) return Format::csv;
  if (ends_with(path, ".npy") || ends_with(path, ".npz")) return Format::npy;
  if (ends_with(path, ".f32") || ends_with(path, ".raw") || ends_with(path, ".bin"))
    return Format::raw;
  return Format::idx;
}
}  // namespace

Samples read_samples(const std::string& path, const InputOptions& o, std::size_t input_size,
                     float bs, float bo) {
  Samples s;
  switch (format_of(path, o.format)) {
    case Format::csv:
      s = read_csv(path, input_size, bs, bo, o.normalize_values, o.label_column);
      break;
    case Format::npy:
      s = read_npy(path, o, input_size, bs, bo);
      break;
    case Format::raw:
      s = read_raw(path, input_size, bs, bo, o.normalize_values);
      break;
    default:
      s = read_idx(path, input_size, bs, bo);
  }
  if (s.count == 0) throw Error(path + ": no samples");
  return s;
}

SampleStream::SampleStream(const std::string& path, const InputOptions& o, std::size_t input_size,
                           float bs, float bo)
    : path_(path), bs_(bs), bo_(bo) {
  if (format_of(path, o.format) != Format::idx) {
    whole_ = read_samples(path, o, input_size, bs, bo);
    count_ = whole_.count;
    size_ = whole_.size;
    bytes_per_sample_ = whole_.bytes_per_sample;
    return;
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw Error(path + ": cannot open");
  gz_ = f;
  gzbuffer(f, 16384);
  std::uint8_t head[4 + 16];
  auto read_exact = [&](std::uint8_t* dst, std::size_t n, const char* what) {
    const int got = gzread(f, dst, static_cast<unsigned>(n));
    if (got < 0) {
      int code = 0;
      const std::string msg = gzerror(f, &code);
      throw Error(path + ": corrupt gzip data: " + msg);
    }
    if (static_cast<std::size_t>(got) != n) throw Error(path + ": " + what);
  };
  try {
    read_exact(head, 4, "not an IDX file (too short)");
    if (head[0] != 0 || head[1] != 0) throw Error(path + ": not an IDX file (bad magic)");
    type_ = head[2];
    const std::size_t nd = head[3];
    if (nd == 0 || nd > 4) throw Error(path + ": truncated IDX header");
    read_exact(head + 4, 4 * nd, "truncated IDX header");
    std::vector<std::uint32_t> dims;
    std::size_t n = 1;
    for (std::size_t i = 0; i < nd; ++i) {
      dims.push_back(be32(&head[4 + 4 * i]));
      n *= dims.back();
      if (n > (std::size_t{1} << 34)) throw Error(path + ": IDX dimensions too large");
    }
    data_offset_ = 4 + 4 * nd;
    if (type_ != 0x08 && type_ != 0x09 && type_ != 0x0D)
      throw Error(path + ": IDX element type " + std::to_string(type_) +
                  " not supported (u8, i8 or f32)");
    count_ = dims[0];
    size_ = 1;
    for (std::size_t i = 1; i < nd; ++i) size_ *= dims[i];
    if (size_ != input_size)
      throw Error(path + ": sample shape " + shape_text(dims, 1) + " (" + std::to_string(size_) +
                  " values) does not match the model's input (" + std::to_string(input_size) +
                  " values)");
    bytes_per_sample_ = (type_ == 0x0D ? 4 : 1) * size_;
    if (count_ == 0) throw Error(path + ": no samples");
  } catch (...) {
    gzclose(f);
    gz_ = nullptr;
    throw;
  }
}

SampleStream::~SampleStream() {
  if (gz_) gzclose(static_cast<gzFile>(gz_));
}

void SampleStream::rewind() {
  pos_ = 0;
  if (gz_) {
    gzFile f = static_cast<gzFile>(gz_);
    if (gzseek(f, static_cast<z_off_t>(data_offset_), SEEK_SET) < 0)
      throw Error(path_ + ": cannot rewind");
  }
}

std::size_t SampleStream::next(float* out, std::size_t max) {
  const std::size_t n = std::min(max, count_ - pos_);
  if (n == 0) return 0;
  if (!gz_) {
    std::copy_n(whole_.values.data() + pos_ * size_, n * size_, out);
    pos_ += n;
    return n;
  }
  gzFile f = static_cast<gzFile>(gz_);
  buf_.resize(n * bytes_per_sample_);
  const int got = gzread(f, buf_.data(), static_cast<unsigned>(buf_.size()));
  if (got < 0) {
    int code = 0;
    const std::string msg = gzerror(f, &code);
    throw Error(path_ + ": corrupt gzip data: " + msg);
  }
  if (static_cast<std::size_t>(got) != buf_.size())
    throw Error(path_ + ": truncated IDX data (sample " +
                std::to_string(pos_ + got / bytes_per_sample_) + " of " + std::to_string(count_) +
                " the header promises is missing)");
  const std::uint8_t* d = buf_.data();
  const std::size_t values = n * size_;
  if (type_ == 0x0D) {
    for (std::size_t i = 0; i < values; ++i) {
      const std::uint32_t u = be32(d + 4 * i);
      std::memcpy(&out[i], &u, 4);
    }
  } else {
    for (std::size_t i = 0; i < values; ++i) {
      const float v = type_ == 0x08 ? float(d[i]) : float(static_cast<std::int8_t>(d[i]));
      out[i] = v * bs_ + bo_;
    }
  }
  pos_ += n;
  return n;
}

std::vector<std::int32_t> read_labels(const std::string& path) {
  if (ends_with(path, ".npy")) return labels_of(data::read_npy(path), path);
  Idx idx = parse_idx(path);
  if (idx.dims.size() != 1 || idx.type != 0x08)
    throw Error(path + ": not an IDX label file (needs one dimension of unsigned bytes)");
  std::vector<std::int32_t> labels(idx.dims[0]);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = idx.bytes[idx.data_offset + i];
  return labels;
}

}  // namespace verdant::edge

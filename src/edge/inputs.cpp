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

namespace verdant::edge {
namespace {

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

Samples read_csv(const std::string& path, std::size_t input_size, float bs, float bo, bool norm) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  Samples s;
  s.size = input_size;
  s.bytes_per_sample = 4 * input_size;
  std::string line;
  std::size_t lineno = 0;
  bool has_label = false;
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
    if (s.count == 0) has_label = row.size() == input_size + 1;
    const std::size_t want = input_size + (has_label ? 1 : 0);
    if (row.size() != want)
      throw Error(path + ":" + std::to_string(lineno) + ": " + std::to_string(row.size()) +
                  " values, the model's input needs " + std::to_string(input_size) +
                  (has_label ? " plus the label" : " (or one more, a leading label)"));
    std::size_t first = 0;
    if (has_label) {
      if (!(row[0] >= 0.f) || row[0] != std::floor(row[0]) || row[0] > 1e6f)
        throw Error(path + ":" + std::to_string(lineno) + ": label is not a non-negative integer");
      s.labels.push_back(static_cast<std::int32_t>(row[0]));
      first = 1;
    }
    for (std::size_t i = first; i < row.size(); ++i)
      s.values.push_back(norm ? row[i] * bs + bo : row[i]);
    ++s.count;
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

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Format parse_format(const std::string& name) {
  if (name == "idx") return Format::idx;
  if (name == "csv") return Format::csv;
  if (name == "raw") return Format::raw;
  if (name == "auto") return Format::automatic;
  throw UsageError("--format: unknown format '" + name + "' (idx, csv, raw or auto)");
}

Samples read_samples(const std::string& path, Format format, std::size_t input_size, float bs,
                     float bo, bool normalize_values) {
  if (format == Format::automatic) {
    if (ends_with(path, ".csv") || ends_with(path, ".csv.gz"))
      format = Format::csv;
    else if (ends_with(path, ".f32") || ends_with(path, ".raw") || ends_with(path, ".bin"))
      format = Format::raw;
    else
      format = Format::idx;
  }
  Samples s;
  switch (format) {
    case Format::csv:
      s = read_csv(path, input_size, bs, bo, normalize_values);
      break;
    case Format::raw:
      s = read_raw(path, input_size, bs, bo, normalize_values);
      break;
    default:
      s = read_idx(path, input_size, bs, bo);
  }
  if (s.count == 0) throw Error(path + ": no samples");
  return s;
}

SampleStream::SampleStream(const std::string& path, Format format, std::size_t input_size, float bs,
                           float bo, bool normalize_values)
    : path_(path), bs_(bs), bo_(bo) {
  const bool idx =
      format == Format::idx ||
      (format == Format::automatic && !ends_with(path, ".csv") && !ends_with(path, ".csv.gz") &&
       !ends_with(path, ".f32") && !ends_with(path, ".raw") && !ends_with(path, ".bin"));
  if (!idx) {
    whole_ = read_samples(path, format, input_size, bs, bo, normalize_values);
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

std::vector<std::int32_t> read_idx_labels(const std::string& path) {
  Idx idx = parse_idx(path);
  if (idx.dims.size() != 1 || idx.type != 0x08)
    throw Error(path + ": not an IDX label file (needs one dimension of unsigned bytes)");
  std::vector<std::int32_t> labels(idx.dims[0]);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = idx.bytes[idx.data_offset + i];
  return labels;
}

}  // namespace verdant::edge

#pragma once
// Input files for verdant-edge: IDX (optionally gzip), CSV, NumPy (.npy, .npz) and raw
// little-endian float32.
#include <cstdint>
#include <string>
#include <vector>

namespace verdant::edge {

struct Samples {
  std::size_t count = 0;
  std::size_t size = 0;              // floats per sample
  std::vector<float> values;         // count * size model inputs
  std::vector<std::int32_t> labels;  // empty, or one per sample
  std::size_t bytes_per_sample = 0;  // as stored on the device (for data-transfer figures)
};

enum class Format { automatic, idx, csv, npy, raw };
Format parse_format(const std::string& name);  // throws UsageError

struct InputOptions {
  Format format = Format::automatic;
  // CSV/raw/float NumPy values get the byte transform too (they are pixels in [0, 255]).
  bool normalize_values = false;
  // CSV: the label column, "first", "last", "none" or a 0-based index; empty: a leading
  // label when a row has one value more than the model's input.
  std::string label_column;
  std::string x_array = "x", y_array = "y";  // .npz arrays (the labels one may be absent)
};

// Reads samples whose size must equal `input_size`. Bytes (IDX or NumPy u8) become
// byte * byte_scale + byte_offset; other values are used as they are unless
// `normalize_values` asks for the same byte transform. Throws verdant::Error naming the file.
Samples read_samples(const std::string& path, const InputOptions& options, std::size_t input_size,
                     float byte_scale, float byte_offset);
// Samples read a chunk at a time, so a long input file never sits in memory as floats. IDX
// files (gzip or plain) stream; CSV and raw files are read whole (read_samples) and served
// from memory. Errors (also truncation found mid-file) throw verdant::Error naming the file.
class SampleStream {
 public:
  SampleStream(const std::string& path, const InputOptions& options, std::size_t input_size,
               float byte_scale, float byte_offset);
  ~SampleStream();
  SampleStream(const SampleStream&) = delete;
  SampleStream& operator=(const SampleStream&) = delete;

  std::size_t count() const { return count_; }  // samples in the file
  std::size_t size() const { return size_; }    // floats per sample
  std::size_t bytes_per_sample() const { return bytes_per_sample_; }
  // Labels the input file itself carries (a CSV label column), else empty.
  const std::vector<std::int32_t>& labels() const { return whole_.labels; }
  // Up to `max` next samples into out[max * size()]; returns how many (0 at the end).
  std::size_t next(float* out, std::size_t max);
  void rewind();  // back to the first sample

 private:
  std::string path_;
  void* gz_ = nullptr;  // gzFile of a streamed IDX file (no zlib in this header)
  std::uint8_t type_ = 0;
  std::size_t data_offset_ = 0;
  float bs_ = 1.f, bo_ = 0.f;
  std::size_t count_ = 0, size_ = 0, bytes_per_sample_ = 0, pos_ = 0;
  std::vector<std::uint8_t> buf_;
  Samples whole_;  // CSV / raw
};

// Labels: an IDX label file (u8, one dimension) or a 1-D .npy of integers. Throws
// verdant::Error naming the file.
std::vector<std::int32_t> read_labels(const std::string& path);

}  // namespace verdant::edge

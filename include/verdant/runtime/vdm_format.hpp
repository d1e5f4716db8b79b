#pragma once
// The .vdm edge-model file format, version 1: plain little-endian structs shared by the
// writer (export) and the reader (runtime). docs/vdm-format.md is the normative spec.
// Every section starts on a 64-byte boundary so a memory-mapped file is used in place.
#include <cstddef>
#include <cstdint>

namespace verdant::vdm {

inline constexpr char kMagic[4] = {'V', 'D', 'M', 'F'};
inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::uint32_t kAlign = 64;
// Activations are stored as uint8 but use only the 7-bit range [0, 127] (like fbgemm's
// reduce_range): u8 x s8 pair sums then fit AVX2's saturating 16-bit vpmaddubsw exactly.
inline constexpr std::int32_t kActivationQMax = 127;
// Weights are symmetric per output channel, zero point 0, range [-127, 127].
inline constexpr std::int32_t kWeightQMax = 127;

enum class LayerKind : std::uint8_t { linear = 1, conv2d = 2, flatten = 3 };
// int8_bsr: block-sparse rows of 4x4 int8 blocks, for block-structured pruning (kBlock).
enum class Encoding : std::uint8_t { none = 0, f32 = 1, int8 = 2, int8_csr = 3, int8_bsr = 4 };
inline constexpr std::uint32_t kBlock = 4;  // int8_bsr blocks are kBlock x kBlock
enum class Activation : std::uint8_t { none = 0, relu = 1 };
enum class Pool : std::uint8_t { none = 0, max = 1, avg = 2 };
enum class ValueType : std::uint8_t { f32 = 0, u8 = 1 };  // activation element type
enum class TensorRole : std::uint32_t {
  weight = 1,        // dense: [rows][row_stride]; CSR: the nnz values; BSR: 16 per block
  bias = 2,          // f32 layers: f32; int8 layers: i32 in units of in_scale*weight_scale[c]
  weight_scale = 3,  // f32 [out_c], int8 layers only
  row_ptr = 4,       // CSR: u32 [out_c + 1]; BSR: u32 [block rows + 1]
  col_idx = 5,       // CSR: u16 [nnz]; BSR: u16 [blocks], block columns (units of kBlock)
};
enum class DataType : std::uint32_t { f32 = 0, i8 = 1, i32 = 2, u8 = 3, u16 = 4, u32 = 5 };

// Names for listings (verdant-edge info, the Python package's Model.info()).
constexpr const char* layer_kind_name(LayerKind k) {
  switch (k) {
    case LayerKind::linear:
      return "linear";
    case LayerKind::conv2d:
      return "conv2d";
    case LayerKind::flatten:
      return "flatten";
  }
  return "?";
}
constexpr const char* encoding_name(Encoding e) {
  switch (e) {
    case Encoding::f32:
      return "f32";
    case Encoding::int8:
      return "int8";
    case Encoding::int8_csr:
      return "int8-csr";
    case Encoding::int8_bsr:
      return "int8-bsr4x4";
    case Encoding::none:
      break;
  }
  return "-";
}

// Offset 0.
struct FileHeader {
  char magic[4];                      // kMagic
  std::uint32_t version;              // kVersion
  std::uint32_t flags;                // reserved, 0
  std::uint32_t num_layers;           // 1..kMaxLayers
  std::uint64_t file_size;            // exact size of the file in bytes
  std::uint64_t layer_table_offset;   // LayerRecord[num_layers], 64-byte aligned
  std::uint64_t tensor_table_offset;  // TensorRecord[num_tensors], 64-byte aligned
  std::uint32_t num_tensors;
  std::uint32_t input_c, input_h, input_w;  // model input, CHW, f32
  std::uint32_t output_size;                // number of f32 outputs (logits)
  std::uint32_t crc32;  // CRC-32 (IEEE) of the whole file with these 4 bytes read as 0
  // Input given as bytes (image pixels 0..255) becomes byte * byte_scale + byte_offset, the
  // training normalisation, e.g. (p / 255 - mean) / std.
  float byte_scale;
  float byte_offset;
  char name[56];  // model name, NUL-terminated, informative
};
static_assert(sizeof(FileHeader) == 128);
static_assert(offsetof(FileHeader, crc32) == 60);

struct LayerRecord {
  LayerKind kind;
  Encoding encoding;
  Activation activation;  // fused after the layer
  Pool pool;              // conv2d only, fused after the activation
  ValueType in_type, out_type;
  std::uint8_t pool_size, pool_stride;
  std::uint16_t stride, padding;      // conv2d; linear: 1, 0
  std::uint16_t kernel_h, kernel_w;   // conv2d; linear: 1, 1
  std::uint32_t in_c, in_h, in_w;     // linear: in_features, 1, 1
  std::uint32_t out_c, out_h, out_w;  // after pooling; linear: out_features, 1, 1
  float in_scale;                     // in_type u8: real = in_scale * (q - in_zero_point)
  std::int32_t in_zero_point;
  float out_scale;  // out_type u8
  std::int32_t out_zero_point;
  std::uint32_t first_tensor, num_tensors;  // slice of the tensor table
};
static_assert(sizeof(LayerRecord) == 64);

struct TensorRecord {
  TensorRole role;
  DataType dtype;
  std::uint64_t offset;      // from the start of the file, multiple of kAlign
  std::uint64_t count;       // number of elements stored (rows * row_stride for dense weights)
  std::uint32_t rows;        // dense weights: out_c; otherwise 1
  std::uint32_t row_stride;  // dense weights: elements per row, padded (see below); else count
};
static_assert(sizeof(TensorRecord) == 32);

inline constexpr std::uint32_t kMaxLayers = 256;
inline constexpr std::uint32_t kMaxDim = 65535;            // any single dimension / K
inline constexpr std::uint64_t kMaxActivation = 1u << 24;  // elements of any activation

// Dense weight rows are padded with zeros to a multiple of 32 bytes (one AVX2 vector), so
// kernels never need a tail loop: int8 rows to 32 elements, f32 rows to 8.
inline constexpr std::uint32_t kRowAlign = 32;
inline constexpr std::uint32_t padded_row_elems(std::uint32_t k, std::uint32_t elem_bytes) {
  const std::uint32_t per = kRowAlign / elem_bytes;
  return (k + per - 1) / per * per;
}
inline constexpr std::uint64_t align_up(std::uint64_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

// CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320), written by hand: no zlib in the runtime.
std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t n);
std::uint32_t file_crc32(const void* file, std::size_t size);  // skips FileHeader::crc32

}  // namespace verdant::vdm

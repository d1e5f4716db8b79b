// The loader: validates a .vdm file, plans its layers (shapes, geometry, quantization chain,
// tensors bound into the file), lays out the arena and folds the requantization constants.
// Run once per model, so compiled for size (CMakeLists.txt); inference is in model.cpp.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "model_impl.hpp"
#include "numerics.hpp"

namespace verdant::runtime {

using namespace verdant::vdm;

namespace {

bool finite_positive(float v) {
  return std::isfinite(v) && v > 0.f;
}

// Weights a sparse layer stores (CSR: non-zeros; BSR: 16 per block), i.e. the MACs it runs.
std::uint64_t stored_weights(const LayerPlan& p) {
  if (p.rec.encoding == Encoding::int8_bsr)
    return std::uint64_t{p.row_ptr[p.block_rows]} * kBlock * kBlock;
  return p.row_ptr[p.rows];
}

double sparse_max_density(const KernelTable& k, Encoding e) {
  return e == Encoding::int8_bsr ? k.bsr_max_density : k.csr_max_density;
}

template <typename T>
constexpr DataType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DataType::f32;
  if constexpr (std::is_same_v<T, std::int8_t>) return DataType::i8;
  if constexpr (std::is_same_v<T, std::int32_t>) return DataType::i32;
  if constexpr (std::is_same_v<T, std::uint8_t>) return DataType::u8;
  if constexpr (std::is_same_v<T, std::uint16_t>) return DataType::u16;
  if constexpr (std::is_same_v<T, std::uint32_t>) return DataType::u32;
}

// The activation the next layer must accept: the model input, then each layer's output.
struct LayerInput {
  std::uint32_t c = 0, h = 0, w = 0;
  ValueType type = ValueType::f32;
  float scale = 0.f;
  std::int32_t zero_point = 0;
};

// Validates one .vdm file and plans its layers, in the steps Model::finish_load runs. Each
// step reports the first problem as one line "<file>: <what>" and returns false.
class Loader {
 public:
  Loader(const std::uint8_t* file, std::size_t size, const std::string& name, std::string* error)
      : file_(file), size_(size), name_(name), error_(error) {}

  bool fail(std::string_view what) {
    *error_ = name_;
    error_->append(": ").append(what);
    return false;
  }
  // A problem of the layer being planned: "<file>: layer N: <what>".
  bool fail_layer(std::string_view what) {
    *error_ = name_;
    error_->append(": ").append(at_).append(what);
    return false;
  }

  // Size, magic, version, CRC, flags, counts, the two tables and the input shape.
  bool validate_header(FileHeader& h);
  // Every layer in order: its shapes against the previous output, its geometry, its
  // quantization chain and its tensors, each bound to a pointer into the file.
  bool plan_layers(const FileHeader& h, const KernelTable& kernels, std::vector<LayerPlan>& layers);

 private:
  bool plan_shapes(LayerPlan& p, const FileHeader& h, const LayerInput& in);
  bool check_flatten(const LayerPlan& p);
  bool plan_geometry(LayerPlan& p);
  bool check_quantization(const LayerPlan& p, const LayerInput& in);
  bool bind_tensors(LayerPlan& p, const KernelTable& kernels);
  bool bind_f32(LayerPlan& p);
  bool bind_int8(LayerPlan& p, const KernelTable& kernels);
  bool check_dense_row_layout(const LayerPlan& p);
  bool load_csr(LayerPlan& p);
  bool load_bsr(LayerPlan& p);
  bool check_requantization(const LayerPlan& p);
  // Points *data at the layer's tensor of `role`, after checking its type, its element
  // count and that its data lies inside the file, aligned, after the tables.
  template <typename T>
  bool bind(const LayerPlan& p, TensorRole role, std::uint64_t count, const char* what,
            const T** data) {
    const void* found = find_tensor_data(p, role, dtype_of<T>(), sizeof(T), count, what);
    *data = static_cast<const T*>(found);
    return found != nullptr;
  }
  // bind's checks, once for every element type (one copy keeps the loader small).
  const void* find_tensor_data(const LayerPlan& p, TensorRole role, DataType dtype,
                               std::size_t elem_bytes, std::uint64_t count, const char* what);

  const std::uint8_t* file_;
  std::size_t size_;
  const std::string& name_;
  std::string* error_;
  const LayerRecord* layer_records_ = nullptr;    // set by validate_header
  const TensorRecord* tensor_records_ = nullptr;  // set by validate_header
  std::uint64_t tables_end_ = 0;                  // tensor data lies after both tables
  std::string at_;                                // "layer N: ", the layer being planned
};

bool Loader::validate_header(FileHeader& h) {
  if (size_ < sizeof(FileHeader))
    return fail("truncated .vdm file (" + std::to_string(size_) +
                " bytes, the header alone needs 128)");
  std::memcpy(&h, file_, sizeof h);
  if (std::memcmp(h.magic, kMagic, 4) != 0) return fail("not a .vdm file (bad magic bytes)");
  if (h.version != kVersion)
    return fail("unsupported .vdm version " + std::to_string(h.version) +
                " (this runtime reads version " + std::to_string(kVersion) + ")");
  if (h.file_size != size_)
    return fail(std::string(size_ < h.file_size ? "truncated" : "oversized") +
                " .vdm file: header says " + std::to_string(h.file_size) + " bytes, file has " +
                std::to_string(size_));
  const std::uint32_t crc = file_crc32(file_, size_);
  if (crc != h.crc32)
    return fail("checksum mismatch (corrupt .vdm file): stored CRC-32 " + std::to_string(h.crc32) +
                ", computed " + std::to_string(crc));
  if (h.flags != 0) return fail("unknown flags " + std::to_string(h.flags) + " in the header");
  if (!std::isfinite(h.byte_scale) || !std::isfinite(h.byte_offset))
    return fail("byte input normalisation is not finite");
  h.name[sizeof h.name - 1] = '\0';
  if (h.num_layers == 0 || h.num_layers > kMaxLayers)
    return fail("layer count " + std::to_string(h.num_layers) + " out of range 1.." +
                std::to_string(kMaxLayers));
  if (h.num_tensors > 8u * h.num_layers)
    return fail("tensor count " + std::to_string(h.num_tensors) + " too large");
  const std::uint64_t layers_bytes = std::uint64_t{h.num_layers} * sizeof(LayerRecord);
  const std::uint64_t tensors_bytes = std::uint64_t{h.num_tensors} * sizeof(TensorRecord);
  if (h.layer_table_offset % kAlign != 0 || h.layer_table_offset < sizeof(FileHeader) ||
      h.layer_table_offset > size_ || size_ - h.layer_table_offset < layers_bytes)
    return fail("layer table outside the file or misaligned");
  if (h.tensor_table_offset % kAlign != 0 || h.tensor_table_offset < sizeof(FileHeader) ||
      h.tensor_table_offset > size_ || size_ - h.tensor_table_offset < tensors_bytes)
    return fail("tensor table outside the file or misaligned");
  if (h.input_c == 0 || h.input_h == 0 || h.input_w == 0 || h.input_c > kMaxDim ||
      h.input_h > kMaxDim || h.input_w > kMaxDim ||
      std::uint64_t{h.input_c} * h.input_h * h.input_w > kMaxActivation)
    return fail("input shape out of range");
  layer_records_ = reinterpret_cast<const LayerRecord*>(file_ + h.layer_table_offset);
  tensor_records_ = reinterpret_cast<const TensorRecord*>(file_ + h.tensor_table_offset);
  tables_end_ =
      std::max(h.layer_table_offset + layers_bytes, h.tensor_table_offset + tensors_bytes);
  return true;
}

bool Loader::plan_layers(const FileHeader& h, const KernelTable& kernels,
                         std::vector<LayerPlan>& layers) {
  layers.resize(h.num_layers);
  LayerInput in{.c = h.input_c, .h = h.input_h, .w = h.input_w};
  for (std::uint32_t li = 0; li < h.num_layers; ++li) {
    LayerPlan& p = layers[li];
    std::memcpy(&p.rec, &layer_records_[li], sizeof(LayerRecord));
    const LayerRecord& r = p.rec;
    at_ = "layer " + std::to_string(li) + ": ";
    if (!plan_shapes(p, h, in)) return false;
    if (r.kind == LayerKind::flatten) {
      if (!check_flatten(p)) return false;
      in.c = r.out_c;
      in.h = in.w = 1;
      continue;
    }
    if (!plan_geometry(p) || !check_quantization(p, in) || !bind_tensors(p, kernels) ||
        !check_requantization(p))
      return false;
    in = {.c = r.out_c,
          .h = r.out_h,
          .w = r.out_w,
          .type = r.out_type,
          .scale = r.out_scale,
          .zero_point = r.out_zero_point};
  }
  if (h.output_size != std::uint64_t{in.c} * in.h * in.w)
    return fail("output size " + std::to_string(h.output_size) +
                " does not match the last layer (" +
                std::to_string(std::uint64_t{in.c} * in.h * in.w) + ")");
  return true;
}

// The input shape chains from the previous output, the output shape is in range, and the
// tensor slice lies in the tensor table.
bool Loader::plan_shapes(LayerPlan& p, const FileHeader& h, const LayerInput& in) {
  const LayerRecord& r = p.rec;
  if (r.in_c != in.c || r.in_h != in.h || r.in_w != in.w)
    return fail_layer(std::string("input shape ") + std::to_string(r.in_c) + "x" +
                      std::to_string(r.in_h) + "x" + std::to_string(r.in_w) +
                      " does not match the previous output " + std::to_string(in.c) + "x" +
                      std::to_string(in.h) + "x" + std::to_string(in.w));
  if (r.out_c == 0 || r.out_h == 0 || r.out_w == 0 || r.out_c > kMaxDim || r.out_h > kMaxDim ||
      r.out_w > kMaxDim || std::uint64_t{r.out_c} * r.out_h * r.out_w > kMaxActivation)
    return fail_layer("output shape out of range");
  p.in_elems = std::size_t{r.in_c} * r.in_h * r.in_w;
  p.out_elems = std::size_t{r.out_c} * r.out_h * r.out_w;
  if (r.first_tensor > h.num_tensors || r.num_tensors > h.num_tensors - r.first_tensor ||
      r.num_tensors > 8)
    return fail_layer("tensor slice outside the tensor table");
  p.first_tensor = r.first_tensor;
  return true;
}

bool Loader::check_flatten(const LayerPlan& p) {
  const LayerRecord& r = p.rec;
  if (r.encoding != Encoding::none || r.num_tensors != 0 || r.activation != Activation::none ||
      r.pool != Pool::none || r.out_c != p.in_elems || r.out_h != 1 || r.out_w != 1 ||
      r.in_type != r.out_type)
    return fail_layer("malformed flatten layer");
  return true;
}

// Kind, activation and value types, then the GEMM view (rows, K) of a linear layer or of a
// conv2d's im2col, with the conv and pooling output sizes.
bool Loader::plan_geometry(LayerPlan& p) {
  const LayerRecord& r = p.rec;
  if (r.kind != LayerKind::linear && r.kind != LayerKind::conv2d)
    return fail_layer(std::string("unknown layer kind ") +
                      std::to_string(static_cast<int>(r.kind)));
  if (r.activation != Activation::none && r.activation != Activation::relu)
    return fail_layer(std::string("unknown activation ") +
                      std::to_string(static_cast<int>(r.activation)));
  if (r.in_type != ValueType::f32 && r.in_type != ValueType::u8)
    return fail_layer("unknown input type");
  if (r.out_type != ValueType::f32 && r.out_type != ValueType::u8)
    return fail_layer("unknown output type");
  p.rows = r.out_c;
  if (r.kind == LayerKind::linear) {
    if (r.in_h != 1 || r.in_w != 1 || r.out_h != 1 || r.out_w != 1 || r.kernel_h != 1 ||
        r.kernel_w != 1 || r.stride != 1 || r.padding != 0 || r.pool != Pool::none)
      return fail_layer("malformed linear layer (needs a flat 1x1 input and output)");
    p.k = r.in_c;
  } else {
    if (r.kernel_h == 0 || r.kernel_w == 0 || r.stride == 0 || r.padding >= r.kernel_h ||
        r.padding >= r.kernel_w)
      return fail_layer("malformed conv2d geometry");
    const std::uint64_t ph = std::uint64_t{r.in_h} + 2u * r.padding;
    const std::uint64_t pw = std::uint64_t{r.in_w} + 2u * r.padding;
    if (ph < r.kernel_h || pw < r.kernel_w)
      return fail_layer("kernel larger than the padded input");
    p.conv_h = static_cast<std::uint32_t>((ph - r.kernel_h) / r.stride + 1);
    p.conv_w = static_cast<std::uint32_t>((pw - r.kernel_w) / r.stride + 1);
    std::uint32_t oh = p.conv_h, ow = p.conv_w;
    if (r.pool == Pool::max || r.pool == Pool::avg) {
      if (r.pool_size == 0 || r.pool_stride == 0 || p.conv_h < r.pool_size ||
          p.conv_w < r.pool_size)
        return fail_layer("malformed pooling geometry");
      oh = (p.conv_h - r.pool_size) / r.pool_stride + 1;
      ow = (p.conv_w - r.pool_size) / r.pool_stride + 1;
    } else if (r.pool != Pool::none) {
      return fail_layer(std::string("unknown pooling ") + std::to_string(static_cast<int>(r.pool)));
    }
    if (r.out_h != oh || r.out_w != ow)
      return fail_layer(std::string("output size ") + std::to_string(r.out_h) + "x" +
                        std::to_string(r.out_w) + " does not follow from the conv2d geometry (" +
                        std::to_string(oh) + "x" + std::to_string(ow) + ")");
    p.k = std::size_t{r.in_c} * r.kernel_h * r.kernel_w;
  }
  if (p.k == 0 || p.k > kMaxDim)
    return fail_layer(std::string("reduction length ") + std::to_string(p.k) + " out of range");
  return true;
}

// A u8 input has valid parameters equal to the previous u8 output's; a u8 output has valid
// parameters.
bool Loader::check_quantization(const LayerPlan& p, const LayerInput& in) {
  const LayerRecord& r = p.rec;
  if (r.in_type == ValueType::u8) {
    if (!finite_positive(r.in_scale) || r.in_zero_point < 0 || r.in_zero_point > kActivationQMax)
      return fail_layer("bad input quantization (scale must be > 0, zero point in 0..127)");
    if (in.type == ValueType::u8 && (r.in_scale != in.scale || r.in_zero_point != in.zero_point))
      return fail_layer("input quantization does not match the previous layer's output");
  }
  if (r.out_type == ValueType::u8 &&
      (!finite_positive(r.out_scale) || r.out_zero_point < 0 || r.out_zero_point > kActivationQMax))
    return fail_layer("bad output quantization (scale must be > 0, zero point in 0..127)");
  return true;
}

const void* Loader::find_tensor_data(const LayerPlan& p, TensorRole role, DataType dtype,
                                     std::size_t elem_bytes, std::uint64_t count,
                                     const char* what) {
  const TensorRecord* t = nullptr;
  for (std::uint32_t i = 0; i < p.rec.num_tensors && t == nullptr; ++i)
    if (tensor_records_[p.first_tensor + i].role == role) t = &tensor_records_[p.first_tensor + i];
  if (t == nullptr) return fail_layer(std::string("missing ") + what + " tensor"), nullptr;
  if (t->dtype != dtype)
    return fail_layer(std::string(what) + " tensor has the wrong data type"), nullptr;
  if (t->count != count)
    return fail_layer(std::string(what) + " tensor has " + std::to_string(t->count) +
                      " elements, expected " + std::to_string(count)),
           nullptr;
  const std::uint64_t bytes = count * elem_bytes;
  if (t->offset % kAlign != 0 || t->offset < tables_end_ || t->offset > size_ ||
      size_ - t->offset < bytes)
    return fail_layer(std::string(what) + " tensor lies outside the file or is misaligned"),
           nullptr;
  return file_ + t->offset;
}

bool Loader::bind_tensors(LayerPlan& p, const KernelTable& kernels) {
  if (p.rec.encoding == Encoding::f32) return bind_f32(p);
  if (is_int8(p.rec.encoding)) return bind_int8(p, kernels);
  return fail_layer(std::string("unknown encoding ") +
                    std::to_string(static_cast<int>(p.rec.encoding)));
}

// A dense weight tensor, when present, has out_c rows of kp elements (checked before its
// count, for the clearer message).
bool Loader::check_dense_row_layout(const LayerPlan& p) {
  for (std::uint32_t i = 0; i < p.rec.num_tensors; ++i) {
    const TensorRecord& t = tensor_records_[p.first_tensor + i];
    if (t.role != TensorRole::weight) continue;
    if (t.rows != p.rows || t.row_stride != p.kp)
      return fail_layer("weight tensor has the wrong row layout");
    return true;
  }
  return true;
}

// f32 weights [rows][kp] and bias [rows], all finite: one NaN would spread to every output.
bool Loader::bind_f32(LayerPlan& p) {
  const LayerRecord& r = p.rec;
  if (r.in_type != ValueType::f32 || r.out_type != ValueType::f32)
    return fail_layer("f32 layers take and produce f32 activations");
  p.kp = padded_row_elems(static_cast<std::uint32_t>(p.k), 4);
  if (!check_dense_row_layout(p) || !bind(p, TensorRole::weight, p.rows * p.kp, "weight", &p.wf) ||
      !bind(p, TensorRole::bias, p.rows, "bias", &p.bf))
    return false;
  if (const std::string bad = describe_non_finite("weight tensor", p.wf, p.rows * p.kp);
      !bad.empty())
    return fail_layer(bad + " (weights must be finite)");
  if (const std::string bad = describe_non_finite("bias tensor", p.bf, p.rows); !bad.empty())
    return fail_layer(bad + " (biases must be finite)");
  return true;
}

// Per-channel scales and i32 bias, then the weights in the layer's encoding. A sparse layer
// denser than the kernel table's break-even is marked for expansion to dense rows.
bool Loader::bind_int8(LayerPlan& p, const KernelTable& kernels) {
  const LayerRecord& r = p.rec;
  if (r.in_type != ValueType::u8) return fail_layer("int8 layers take u8 activations");
  p.kp = padded_row_elems(static_cast<std::uint32_t>(p.k), 1);
  if (!bind(p, TensorRole::weight_scale, p.rows, "weight_scale", &p.wscale)) return false;
  for (std::size_t o = 0; o < p.rows; ++o)
    if (!finite_positive(p.wscale[o]))
      return fail_layer(std::string("weight scale of channel ") + std::to_string(o) +
                        " is not a positive number");
  if (!bind(p, TensorRole::bias, p.rows, "bias", &p.bias_i)) return false;
  if (r.encoding == Encoding::int8) {
    if (!check_dense_row_layout(p) || !bind(p, TensorRole::weight, p.rows * p.kp, "weight", &p.w8))
      return false;
    p.wd = p.w8;
  } else {
    if (!(r.encoding == Encoding::int8_bsr ? load_bsr(p) : load_csr(p))) return false;
    p.expand_to_dense = static_cast<double>(stored_weights(p)) >
                        sparse_max_density(kernels, r.encoding) * static_cast<double>(p.rows * p.k);
  }
  if (kernels.pack_s8 != nullptr && (r.encoding == Encoding::int8 || p.expand_to_dense))
    p.packed_bytes =
        (p.rows + kernels.pack_s8_rows - 1) / kernels.pack_s8_rows * kernels.pack_s8_rows * p.kp;
  return true;
}

// The tensors of a CSR layer: row pointers (non-decreasing, from 0 to the non-zero count),
// column indices (increasing within a row, below K) and the non-zero values.
bool Loader::load_csr(LayerPlan& p) {
  if (!bind(p, TensorRole::row_ptr, p.rows + 1, "row_ptr", &p.row_ptr)) return false;
  const std::uint64_t nnz = p.row_ptr[p.rows];
  if (p.row_ptr[0] != 0 || nnz > p.rows * p.k)
    return fail_layer("row_ptr must start at 0 and end at the non-zero count");
  if (!bind(p, TensorRole::col_idx, nnz, "col_idx", &p.col) ||
      !bind(p, TensorRole::weight, nnz, "weight", &p.w8))
    return false;
  for (std::size_t o = 0; o < p.rows; ++o) {
    if (p.row_ptr[o + 1] < p.row_ptr[o] || p.row_ptr[o + 1] > nnz)
      return fail_layer("row_ptr is not non-decreasing");
    for (std::uint32_t j = p.row_ptr[o]; j < p.row_ptr[o + 1]; ++j)
      if (p.col[j] >= p.k || (j > p.row_ptr[o] && p.col[j] <= p.col[j - 1]))
        return fail_layer(std::string("column indices must be increasing and below ") +
                          std::to_string(p.k));
  }
  return true;
}

// The tensors of a 4x4 block-sparse layer: block row pointers, block columns (increasing
// within a block row) and the blocks, whose entries outside the matrix must be zero (the
// kernels multiply them by padding).
bool Loader::load_bsr(LayerPlan& p) {
  p.block_rows = (p.rows + kBlock - 1) / kBlock;
  const std::size_t block_cols = (p.k + kBlock - 1) / kBlock;
  if (!bind(p, TensorRole::row_ptr, p.block_rows + 1, "row_ptr", &p.row_ptr)) return false;
  const std::uint64_t blocks = p.row_ptr[p.block_rows];
  if (p.row_ptr[0] != 0 || blocks > std::uint64_t{p.block_rows} * block_cols)
    return fail_layer("row_ptr must start at 0 and end at the block count");
  if (!bind(p, TensorRole::col_idx, blocks, "col_idx", &p.col) ||
      !bind(p, TensorRole::weight, blocks * kBlock * kBlock, "weight", &p.w8))
    return false;
  for (std::size_t b = 0; b < p.block_rows; ++b) {
    if (p.row_ptr[b + 1] < p.row_ptr[b] || p.row_ptr[b + 1] > blocks)
      return fail_layer("row_ptr is not non-decreasing");
    for (std::uint32_t j = p.row_ptr[b]; j < p.row_ptr[b + 1]; ++j) {
      if (p.col[j] >= block_cols || (j > p.row_ptr[b] && p.col[j] <= p.col[j - 1]))
        return fail_layer(std::string("block columns must be increasing and below ") +
                          std::to_string(block_cols));
      for (std::size_t i = 0; i < kBlock; ++i)
        for (std::size_t cc = 0; cc < kBlock; ++cc)
          if ((b * kBlock + i >= p.rows || std::size_t{p.col[j]} * kBlock + cc >= p.k) &&
              p.w8[16 * j + kBlock * i + cc] != 0)
            return fail_layer("block entries outside the weight matrix must be zero");
    }
  }
  return true;
}

// An int8 layer with u8 output needs every requantization multiplier in (0, 1).
bool Loader::check_requantization(const LayerPlan& p) {
  const LayerRecord& r = p.rec;
  if (r.encoding == Encoding::f32 || r.out_type != ValueType::u8) return true;
  for (std::size_t o = 0; o < p.rows; ++o) {
    const double mul = double{r.in_scale} * p.wscale[o] / r.out_scale;
    if (!(mul < 1.0))
      return fail_layer(std::string("requantization multiplier of channel ") + std::to_string(o) +
                        " is not below 1 (output scale too small)");
  }
  return true;
}

// Multiply-accumulates of one inference: the stored weights of a sparse layer, every weight
// of a dense one, per output pixel.
std::uint64_t count_macs(const std::vector<LayerPlan>& layers) {
  std::uint64_t macs = 0;
  for (const LayerPlan& p : layers) {
    if (p.rec.kind == LayerKind::flatten) continue;
    const std::uint64_t per_pixel =
        is_sparse(p.rec.encoding) ? stored_weights(p) : std::uint64_t{p.rows} * p.k;
    macs += per_pixel * p.conv_h * p.conv_w;
  }
  return macs;
}

// Arena bytes an int8 layer's constants take: folded bias, multipliers, shifts (or
// dequantization scales), the dense rows of an expanded sparse layer, and the dense rows in
// the kernel table's packed layout. Each array is
// rounded up to 64 bytes and the arena zeroed, so each is zero-padded to 16 entries: the
// convolutions requantize whole 8-lane vectors (run_layer, model.cpp).
std::size_t constant_bytes(const LayerPlan& p) {
  const bool dense_rows = p.expand_to_dense && p.packed_bytes == 0;  // packed: rows not kept
  return 3 * align_up(p.rows * 4) + (dense_rows ? align_up(p.rows * p.kp) : 0) +
         align_up(p.packed_bytes);
}

// The parts of the one arena, in bytes: two activation buffers, an im2col row, the
// pre-pooling buffer, accumulators and their requantized bytes, then the int8 layers'
// constants. 64 bytes of slack after each buffer let kernels read a few bytes past the end
// (the AVX2 gather) inside the arena.
struct ArenaLayout {
  std::size_t activation = 0, im2col = 0, pre_pool = 0, accumulators = 0, requantized = 0,
              constants = 0;
  std::size_t total() const {
    return 2 * activation + im2col + pre_pool + accumulators + requantized + constants;
  }
};

ArenaLayout plan_arena(const FileHeader& h, const std::vector<LayerPlan>& layers) {
  std::size_t max_act = std::size_t{h.input_c} * h.input_h * h.input_w, max_kp = 0, max_rows = 0,
              max_pre = 0, constants = 0;
  for (const LayerPlan& p : layers) {
    if (p.rec.kind == LayerKind::flatten) continue;
    max_act = std::max(max_act, p.out_elems);
    max_kp = std::max(max_kp, p.kp);
    max_rows = std::max(max_rows, std::max(p.rows, p.block_rows * kBlock));
    if (p.rec.kind == LayerKind::conv2d)
      max_pre = std::max<std::size_t>(max_pre, std::size_t{p.rec.out_c} * p.conv_h * p.conv_w);
    if (is_int8(p.rec.encoding)) constants += constant_bytes(p);
  }
  return {.activation = align_up(std::max(max_act, max_kp) * 4 + 64),
          .im2col = align_up(max_kp * 4 + 64),
          .pre_pool = align_up(max_pre * 4 + 64),
          .accumulators = align_up(max_rows * 4 + 64),
          .requantized = align_up(max_rows + 64),
          .constants = constants};
}

// Allocates the zeroed arena and points the run buffers into it; returns where the
// constants start, or nullptr when out of memory.
std::uint8_t* allocate_arena(Model::Impl& m, const ArenaLayout& layout) {
  m.arena.reset(static_cast<std::uint8_t*>(std::aligned_alloc(kAlign, layout.total())));
  if (m.arena == nullptr) return nullptr;
  std::uint8_t* a = m.arena.get();
  std::memset(a, 0, layout.total());
  m.buf[0] = a;
  a += layout.activation;
  m.buf[1] = a;
  a += layout.activation;
  m.col = a;
  a += layout.im2col;
  m.pre = a;
  a += layout.pre_pool;
  m.acc = reinterpret_cast<std::int32_t*>(a);
  a += layout.accumulators;
  m.requantized = a;
  return a + layout.requantized;
}

// sum_k w[o][k] of output channel o, whatever the encoding.
std::int64_t row_weight_sum(const LayerPlan& p, std::size_t o) {
  std::int64_t sum = 0;
  if (p.rec.encoding == Encoding::int8) {
    for (std::size_t k = 0; k < p.kp; ++k) sum += p.w8[o * p.kp + k];
  } else if (p.rec.encoding == Encoding::int8_bsr) {
    const std::size_t b = o / kBlock, i = o % kBlock;
    for (std::uint32_t j = p.row_ptr[b]; j < p.row_ptr[b + 1]; ++j)
      for (std::size_t cc = 0; cc < kBlock; ++cc) sum += p.w8[16 * j + kBlock * i + cc];
  } else {
    for (std::uint32_t j = p.row_ptr[o]; j < p.row_ptr[o + 1]; ++j) sum += p.w8[j];
  }
  return sum;
}

// Writes a CSR or BSR layer's weights into zeroed dense rows [rows][kp].
void expand_sparse(const LayerPlan& p, std::int8_t* dense) {
  if (p.rec.encoding == Encoding::int8_csr) {
    for (std::size_t o = 0; o < p.rows; ++o)
      for (std::uint32_t j = p.row_ptr[o]; j < p.row_ptr[o + 1]; ++j)
        dense[o * p.kp + p.col[j]] = p.w8[j];
    return;
  }
  for (std::size_t b = 0; b < p.block_rows; ++b)
    for (std::uint32_t j = p.row_ptr[b]; j < p.row_ptr[b + 1]; ++j)
      for (std::size_t i = 0; i < kBlock && b * kBlock + i < p.rows; ++i)
        for (std::size_t cc = 0; cc < kBlock && std::size_t{p.col[j]} * kBlock + cc < p.k; ++cc)
          dense[(b * kBlock + i) * p.kp + p.col[j] * kBlock + cc] = p.w8[16 * j + kBlock * i + cc];
}

// An int8 layer's constants, carved from the arena at `at` (constant_bytes(p) of them): the
// bias with the input zero point folded in (gemmlowp's habit: acc + bias_fold needs no
// correction at run time), the Q31 multipliers and shifts of a u8 output or the scales of
// an f32 one, and the dense rows in the table's packed layout, or else an expanded sparse
// layer's dense rows.
void fold_constants(LayerPlan& p, const KernelTable& kernels, std::uint8_t* at) {
  const LayerRecord& r = p.rec;
  const std::size_t cb = align_up(p.rows * 4);
  p.bias_fold = reinterpret_cast<std::int32_t*>(at);
  p.mult = reinterpret_cast<std::int32_t*>(at + cb);
  p.shift = reinterpret_cast<std::int32_t*>(at + 2 * cb);
  p.deq = reinterpret_cast<float*>(at + 2 * cb);  // f32 output uses deq instead of shift
  for (std::size_t o = 0; o < p.rows; ++o) {
    const std::int64_t b =
        std::int64_t{p.bias_i[o]} - std::int64_t{r.in_zero_point} * row_weight_sum(p, o);
    p.bias_fold[o] = static_cast<std::int32_t>(std::clamp<std::int64_t>(
        b, std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max()));
    if (r.out_type == ValueType::u8) {
      const QuantizedMultiplier q =
          quantize_multiplier(double{r.in_scale} * p.wscale[o] / r.out_scale);
      p.mult[o] = q.mult;
      p.shift[o] = q.shift;
    } else {
      p.deq[o] = r.in_scale * p.wscale[o];
    }
  }
  p.act_lo = r.activation == Activation::relu ? r.out_zero_point : 0;
  if (r.kind == LayerKind::conv2d && r.pool == Pool::max && r.out_type == ValueType::u8) {
    // |acc| <= k * 127 * 128 (u8 inputs up to 127): with |acc + bias| < 2^30, neither that
    // sum nor the rounding term (at most 2^30) can wrap, and requantization is monotonic.
    const std::int64_t acc_bound = static_cast<std::int64_t>(p.k) * 127 * 128;
    p.pool_before_requant = true;
    for (std::size_t o = 0; o < p.rows; ++o)
      if (acc_bound + std::abs(std::int64_t{p.bias_fold[o]}) >= (std::int64_t{1} << 30))
        p.pool_before_requant = false;
  }
  auto* rest = reinterpret_cast<std::int8_t*>(at + 3 * cb);  // zeroed with the arena
  if (p.packed_bytes != 0) {
    // An expanded sparse layer's dense rows are only the packing's input.
    std::vector<std::int8_t> expanded;
    if (p.expand_to_dense) {
      expanded.assign(p.rows * p.kp, 0);
      expand_sparse(p, expanded.data());
    }
    kernels.pack_s8(p.expand_to_dense ? expanded.data() : p.wd, p.kp, p.rows, rest);
    p.wpacked = rest;
  } else if (p.expand_to_dense) {
    expand_sparse(p, rest);
    p.wd = rest;
  }
}

}  // namespace

std::unique_ptr<Model> Model::finish_load(std::unique_ptr<Model> model, const std::string& name,
                                          const KernelTable* kernels, std::string* error) {
  Loader loader(model->file_, model->file_size_, name, error);
  auto impl = std::make_unique<Impl>();
  impl->kernels = kernels != nullptr ? kernels : &active_kernels();
  if (!impl->kernels->cpu_supports()) {
    loader.fail(std::string("kernel table '") + impl->kernels->isa +
                "' is not supported by this CPU");
    return nullptr;
  }
  if (!loader.validate_header(model->header_) ||
      !loader.plan_layers(model->header_, *impl->kernels, impl->layers))
    return nullptr;
  impl->macs = count_macs(impl->layers);
  const ArenaLayout layout = plan_arena(model->header_, impl->layers);
  std::uint8_t* constants = allocate_arena(*impl, layout);
  if (constants == nullptr) {
    loader.fail("out of memory for the " + std::to_string(layout.total()) + "-byte arena");
    return nullptr;
  }
  for (LayerPlan& p : impl->layers) {
    if (!is_int8(p.rec.encoding)) continue;
    fold_constants(p, *impl->kernels, constants);
    constants += constant_bytes(p);
  }
  model->impl_ = std::move(impl);
  return model;
}

}  // namespace verdant::runtime

// Loader (validation, arena, precomputed requantization constants) and inference.
#include "verdant/runtime/model.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string_view>
#include <type_traits>
#include <vector>

#include "numerics.hpp"
#include "verdant/runtime/kernels.hpp"

namespace verdant::runtime {

using namespace verdant::vdm;

namespace {

inline std::int32_t sat_add(std::int32_t a, std::int32_t b) {
  const std::int64_t s = static_cast<std::int64_t>(a) + b;
  if (s > std::numeric_limits<std::int32_t>::max()) return std::numeric_limits<std::int32_t>::max();
  if (s < std::numeric_limits<std::int32_t>::min()) return std::numeric_limits<std::int32_t>::min();
  return static_cast<std::int32_t>(s);
}

bool is_int8(Encoding e) {
  return e == Encoding::int8 || e == Encoding::int8_csr || e == Encoding::int8_bsr;
}

bool is_sparse(Encoding e) {
  return e == Encoding::int8_csr || e == Encoding::int8_bsr;
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

}  // namespace

struct LayerPlan {
  LayerRecord rec{};
  std::uint32_t first_tensor = 0;
  std::size_t k = 0, kp = 0, rows = 0;   // GEMM view: rows = out_c, k = reduction length
  std::uint32_t conv_h = 1, conv_w = 1;  // before pooling
  std::size_t in_elems = 0, out_elems = 0;
  const float* wf = nullptr;
  const float* bf = nullptr;
  const std::int8_t* w8 = nullptr;
  const float* wscale = nullptr;
  const std::int32_t* bias_i = nullptr;
  const std::uint32_t* row_ptr = nullptr;  // CSR: per row; BSR: per block row
  const std::uint16_t* col = nullptr;
  std::size_t block_rows = 0;       // BSR: ceil(rows / kBlock)
  bool expand_to_dense = false;     // sparse, but denser than the kernel table's break-even
  const std::int8_t* wd = nullptr;  // dense int8 rows [rows][kp]: the file's, or sparse expanded
  // Precomputed in the arena: bias with the input zero-point correction folded in
  // (bias - Z_in * sum_k w), fixed-point multipliers and shifts, or dequantization scales.
  std::int32_t* bias_fold = nullptr;
  std::int32_t* mult = nullptr;
  std::int32_t* shift = nullptr;
  float* deq = nullptr;
  std::int32_t act_lo = 0;
};

struct Model::Impl {
  std::vector<LayerPlan> layers;
  std::unique_ptr<std::uint8_t[], FreeDeleter> arena;
  std::uint8_t* buf[2] = {nullptr, nullptr};
  std::uint8_t* col = nullptr;  // one im2col row (f32 or u8)
  std::uint8_t* pre = nullptr;  // conv output before pooling
  std::int32_t* acc = nullptr;  // one column of accumulators
  const KernelTable* kernels = nullptr;
  std::uint64_t macs = 0;
};

const char* run_status_message(RunStatus s) {
  switch (s) {
    case RunStatus::ok:
      return "ok";
    case RunStatus::bad_input_size:
      return "input size does not match the model's input shape";
    case RunStatus::bad_output_size:
      return "output buffer size does not match the model's output";
    case RunStatus::bad_layer:
      return "layer index out of range";
  }
  return "unknown status";
}

Model::Model() = default;

Model::~Model() {
  if (mapping_ != nullptr) munmap(mapping_, file_size_);
  std::free(owned_);
}

std::size_t Model::input_size() const {
  return static_cast<std::size_t>(header_.input_c) * header_.input_h * header_.input_w;
}
const LayerRecord& Model::layer(std::size_t i) const {
  return impl_->layers[i].rec;
}
const TensorRecord* Model::tensors(std::size_t i) const {
  return reinterpret_cast<const TensorRecord*>(file_ + header_.tensor_table_offset) +
         impl_->layers[i].first_tensor;
}
std::size_t Model::activation_size(std::size_t i) const {
  if (i == 0) return input_size();
  return impl_->layers[i - 1].out_elems;
}
const char* Model::isa() const {
  return impl_->kernels->isa;
}
std::uint64_t Model::macs() const {
  return impl_->macs;
}
bool Model::densified(std::size_t i) const {
  const LayerPlan& p = impl_->layers[i];
  return is_sparse(p.rec.encoding) && p.wd != nullptr;
}

std::unique_ptr<Model> Model::load_file(const std::string& path, std::string* error,
                                        const LoadOptions& options) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = path + ": cannot open: " + std::strerror(errno);
    return nullptr;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    *error = path + ": not a regular file";
    return nullptr;
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size < sizeof(FileHeader)) {
    ::close(fd);
    *error = path + ": truncated .vdm file (" + std::to_string(size) +
             " bytes, the header alone needs 128)";
    return nullptr;
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) {
    *error = path + ": cannot memory-map: " + std::strerror(errno);
    return nullptr;
  }
  std::unique_ptr<Model> m(new Model());
  m->mapping_ = map;
  m->file_ = static_cast<const std::uint8_t*>(map);
  m->file_size_ = size;
  return finish_load(std::move(m), path, options.kernels, error);
}

std::unique_ptr<Model> Model::load_buffer(const void* data, std::size_t size, std::string* error,
                                          const LoadOptions& options) {
  std::unique_ptr<Model> m(new Model());
  m->owned_ = static_cast<std::uint8_t*>(std::aligned_alloc(kAlign, align_up(size + 1)));
  if (m->owned_ == nullptr) {
    *error = options.name + ": out of memory";
    return nullptr;
  }
  if (size > 0) std::memcpy(m->owned_, data, size);
  m->file_ = m->owned_;
  m->file_size_ = size;
  return finish_load(std::move(m), options.name, options.kernels, error);
}

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
    return true;
  }
  if (!(r.encoding == Encoding::int8_bsr ? load_bsr(p) : load_csr(p))) return false;
  p.expand_to_dense = static_cast<double>(stored_weights(p)) >
                      sparse_max_density(kernels, r.encoding) * static_cast<double>(p.rows * p.k);
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
// dequantization scales), and the dense rows of an expanded sparse layer.
std::size_t constant_bytes(const LayerPlan& p) {
  return 3 * align_up(p.rows * 4) + (p.expand_to_dense ? align_up(p.rows * p.kp) : 0);
}

// The parts of the one arena, in bytes: two activation buffers, an im2col row, the
// pre-pooling buffer, accumulators, then the int8 layers' constants. 64 bytes of slack after
// each buffer let kernels read a few bytes past the end (the AVX2 gather) inside the arena.
struct ArenaLayout {
  std::size_t activation = 0, im2col = 0, pre_pool = 0, accumulators = 0, constants = 0;
  std::size_t total() const {
    return 2 * activation + im2col + pre_pool + accumulators + constants;
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
  return a + layout.accumulators;
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
// an f32 one, and an expanded sparse layer's dense rows.
void fold_constants(LayerPlan& p, std::uint8_t* at) {
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
  if (p.expand_to_dense) {
    auto* dense = reinterpret_cast<std::int8_t*>(at + 3 * cb);  // zeroed with the arena
    expand_sparse(p, dense);
    p.wd = dense;
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
    fold_constants(p, constants);
    constants += constant_bytes(p);
  }
  model->impl_ = std::move(impl);
  return model;
}

namespace {

// One f32 output of an int8 layer (dequantized accumulator; used for the logits).
inline void emit_int8_f32(const LayerPlan& p, std::size_t o, std::int32_t acc, float* out,
                          std::size_t at) {
  float y = static_cast<float>(sat_add(acc, p.bias_fold[o])) * p.deq[o];
  if (p.rec.activation == Activation::relu && !(y > 0.f)) y = 0.f;
  out[at] = y;
}

inline void emit_f32(const LayerPlan& p, std::size_t o, float acc, float* out, std::size_t at) {
  float y = acc + p.bf[o];
  if (p.rec.activation == Activation::relu && !(y > 0.f)) y = 0.f;
  out[at] = y;
}

// One im2col row: the K inputs under output pixel (oy, ox), `pad` outside the image. Record
// fields are copied to locals first: byte stores may alias anything, and reloading them per
// element dominated the conv time.
template <typename T>
void im2col_row(const LayerPlan& p, const T* in, std::uint32_t oy, std::uint32_t ox, T pad,
                T* col) {
  const LayerRecord& r = p.rec;
  const std::int64_t kh = r.kernel_h, kw = r.kernel_w, ih = r.in_h, iw = r.in_w, ic_n = r.in_c;
  const std::int64_t iy0 = std::int64_t{oy} * r.stride - r.padding;
  const std::int64_t ix0 = std::int64_t{ox} * r.stride - r.padding;
  const bool inside_x = ix0 >= 0 && ix0 + kw <= iw;
  // Small u8 kernels: one 8-byte move per kernel row (the arena has slack past every buffer).
  const bool wide_copy = std::is_same_v<T, std::uint8_t> && kw <= 8;
  T* dst = col;
  for (std::int64_t ic = 0; ic < ic_n; ++ic) {
    const T* plane = in + ic * ih * iw;
    for (std::int64_t ky = 0; ky < kh; ++ky) {
      const std::int64_t iy = iy0 + ky;
      if (inside_x && iy >= 0 && iy < ih) {
        const T* src = plane + iy * iw + ix0;
        if (wide_copy)
          std::memcpy(dst, src, 8);
        else
          for (std::int64_t kx = 0; kx < kw; ++kx) dst[kx] = src[kx];
      } else {
        for (std::int64_t kx = 0; kx < kw; ++kx) {
          const std::int64_t ix = ix0 + kx;
          dst[kx] = (iy >= 0 && iy < ih && ix >= 0 && ix < iw) ? plane[iy * iw + ix] : pad;
        }
      }
      dst += kw;
    }
  }
  if (wide_copy) std::memset(dst, 0, 8);  // the 8-byte moves may spill into the zero pad
}

template <typename T>
void pool(const LayerPlan& p, const T* pre, T* out) {
  const LayerRecord& r = p.rec;
  const std::size_t n = std::size_t{r.pool_size} * r.pool_size;
  for (std::uint32_t ch = 0; ch < r.out_c; ++ch) {
    const T* plane = pre + std::size_t{ch} * p.conv_h * p.conv_w;
    for (std::uint32_t py = 0; py < r.out_h; ++py)
      for (std::uint32_t px = 0; px < r.out_w; ++px) {
        const T* w0 =
            plane + std::size_t{py} * r.pool_stride * p.conv_w + std::size_t{px} * r.pool_stride;
        T best = w0[0];
        float sum = 0.f;
        if (r.pool == Pool::max) {
          for (std::uint32_t y = 0; y < r.pool_size; ++y)
            for (std::uint32_t x = 0; x < r.pool_size; ++x) {
              const T v = w0[std::size_t{y} * p.conv_w + x];
              best = v > best ? v : best;
            }
        } else {
          for (std::uint32_t y = 0; y < r.pool_size; ++y)
            for (std::uint32_t x = 0; x < r.pool_size; ++x)
              sum += static_cast<float>(w0[std::size_t{y} * p.conv_w + x]);
        }
        T res = best;
        if (r.pool == Pool::avg) {
          if constexpr (std::is_same_v<T, float>)
            res = sum / static_cast<float>(n);
          else
            res = static_cast<T>((static_cast<std::uint32_t>(sum) + n / 2) / n);
        }
        out[(std::size_t{ch} * r.out_h + py) * r.out_w + px] = res;
      }
  }
}

// Pooling (or a plain copy) from the pixel-major u8 conv output to the CHW activation. The
// window is reduced over contiguous channels (vectorizable) into `scratch` (C entries),
// then scattered to CHW. Fields are read into locals: u8 stores may alias the record.
void pool_hwc_to_chw(const LayerPlan& p, const std::uint8_t* pre, std::uint8_t* out,
                     std::uint32_t* scratch) {
  const LayerRecord& r = p.rec;
  const std::size_t C = r.out_c;
  if (r.pool == Pool::none) {
    const std::size_t plane = std::size_t{p.conv_h} * p.conv_w;
    for (std::size_t pix = 0; pix < plane; ++pix)
      for (std::size_t ch = 0; ch < C; ++ch) out[ch * plane + pix] = pre[pix * C + ch];
    return;
  }
  const std::size_t ps = r.pool_size, pst = r.pool_stride, oh = r.out_h, ow = r.out_w,
                    cw = p.conv_w;
  const bool is_max = r.pool == Pool::max;
  const std::uint32_t n = static_cast<std::uint32_t>(ps * ps);
  for (std::size_t py = 0; py < oh; ++py)
    for (std::size_t px = 0; px < ow; ++px) {
      const std::uint8_t* w0 = pre + (py * pst * cw + px * pst) * C;
      for (std::size_t ch = 0; ch < C; ++ch) scratch[ch] = is_max ? w0[ch] : 0u;
      for (std::size_t y = 0; y < ps; ++y)
        for (std::size_t x = 0; x < ps; ++x) {
          const std::uint8_t* v = w0 + (y * cw + x) * C;
          if (is_max) {
            for (std::size_t ch = 0; ch < C; ++ch)
              scratch[ch] = std::max<std::uint32_t>(scratch[ch], v[ch]);
          } else {
            for (std::size_t ch = 0; ch < C; ++ch) scratch[ch] += v[ch];
          }
        }
      std::uint8_t* o = out + py * ow + px;
      const std::size_t plane = oh * ow;
      for (std::size_t ch = 0; ch < C; ++ch)
        o[ch * plane] = static_cast<std::uint8_t>(is_max ? scratch[ch] : (scratch[ch] + n / 2) / n);
    }
}

// acc[0, rows) = W x through the layer's kernel (dense, CSR or 4x4 blocks).
inline void int8_matvec(const KernelTable& k, const LayerPlan& p, const std::uint8_t* x,
                        std::int32_t* acc) {
  if (p.wd != nullptr)
    k.gemv_s8(p.wd, p.kp, x, p.kp, p.rows, acc);
  else if (p.rec.encoding == Encoding::int8_bsr)
    k.bsr4x4_s8(p.row_ptr, p.col, p.w8, p.block_rows, x, acc);
  else
    k.spmv_s8(p.row_ptr, p.col, p.w8, p.rows, x, acc);
}

// `in` is an arena buffer: a linear layer zeroes its row padding in place.
void run_layer(const Model::Impl& m, const LayerPlan& p, std::uint8_t* in, std::uint8_t* out) {
  const LayerRecord& r = p.rec;
  const KernelTable& k = *m.kernels;
  const bool int8 = r.encoding != Encoding::f32;
  if (r.kind == LayerKind::linear) {
    if (int8) {
      std::memset(in + p.k, 0, p.kp - p.k);  // kernels read whole vectors; the pad must be 0
      int8_matvec(k, p, in, m.acc);
      if (r.out_type == ValueType::u8)
        k.requant_u8(m.acc, p.bias_fold, p.mult, p.shift, p.rows, r.out_zero_point, p.act_lo, out);
      else
        for (std::size_t o = 0; o < p.rows; ++o)
          emit_int8_f32(p, o, m.acc[o], reinterpret_cast<float*>(out), o);
    } else {
      auto* x = reinterpret_cast<float*>(in);
      std::fill(x + p.k, x + p.kp, 0.f);
      auto* acc = reinterpret_cast<float*>(m.acc);
      k.gemv_f32(p.wf, p.kp, x, p.kp, p.rows, acc);
      for (std::size_t o = 0; o < p.rows; ++o)
        emit_f32(p, o, acc[o], reinterpret_cast<float*>(out), o);
    }
    return;
  }
  // conv2d: one im2col row per output pixel, then a GEMV over all output channels.
  const bool pooled = r.pool != Pool::none;
  std::uint8_t* dst = pooled ? m.pre : out;
  const std::size_t plane = std::size_t{p.conv_h} * p.conv_w;
  const bool out_u8 = int8 && r.out_type == ValueType::u8;
  // im2col writes [0, k); the pad up to kp must be zero (stale values could be NaN).
  if (int8)
    std::memset(m.col + p.k, 0, p.kp - p.k);
  else
    std::fill(reinterpret_cast<float*>(m.col) + p.k, reinterpret_cast<float*>(m.col) + p.kp, 0.f);
  for (std::uint32_t oy = 0; oy < p.conv_h; ++oy)
    for (std::uint32_t ox = 0; ox < p.conv_w; ++ox) {
      const std::size_t pix = std::size_t{oy} * p.conv_w + ox;
      if (int8) {
        im2col_row<std::uint8_t>(p, in, oy, ox, static_cast<std::uint8_t>(r.in_zero_point), m.col);
        int8_matvec(k, p, m.col, m.acc);
        if (out_u8)  // pixel-major, so requantization is one contiguous vector
          k.requant_u8(m.acc, p.bias_fold, p.mult, p.shift, p.rows, r.out_zero_point, p.act_lo,
                       m.pre + pix * p.rows);
        else
          for (std::size_t o = 0; o < p.rows; ++o)
            emit_int8_f32(p, o, m.acc[o], reinterpret_cast<float*>(dst), o * plane + pix);
      } else {
        auto* col = reinterpret_cast<float*>(m.col);
        im2col_row<float>(p, reinterpret_cast<const float*>(in), oy, ox, 0.f, col);
        auto* acc = reinterpret_cast<float*>(m.acc);
        k.gemv_f32(p.wf, p.kp, col, p.kp, p.rows, acc);
        for (std::size_t o = 0; o < p.rows; ++o)
          emit_f32(p, o, acc[o], reinterpret_cast<float*>(dst), o * plane + pix);
      }
    }
  if (out_u8)
    pool_hwc_to_chw(p, m.pre, out, reinterpret_cast<std::uint32_t*>(m.acc));
  else if (pooled)
    pool<float>(p, reinterpret_cast<const float*>(m.pre), reinterpret_cast<float*>(out));
}

}  // namespace

RunStatus Model::run_until(const float* input, std::size_t input_n, std::size_t end_layer,
                           float* output, std::size_t output_n) {
  if (input_n != input_size()) return RunStatus::bad_input_size;
  if (end_layer > impl_->layers.size()) return RunStatus::bad_layer;
  if (output_n != activation_size(end_layer)) return RunStatus::bad_output_size;
  Impl& m = *impl_;
  std::uint8_t* cur = m.buf[0];
  std::uint8_t* nxt = m.buf[1];
  // Layers before the first weighted one are flattens (no-ops on CHW data).
  std::size_t first_weighted = 0;
  while (first_weighted < end_layer && m.layers[first_weighted].rec.kind == LayerKind::flatten)
    ++first_weighted;
  const bool quantize_input =
      first_weighted < end_layer && m.layers[first_weighted].rec.in_type == ValueType::u8;
  if (!quantize_input) std::memcpy(cur, input, input_n * sizeof(float));
  ValueType type = ValueType::f32;
  float scale = 1.f;
  std::int32_t zp = 0;
  for (std::size_t li = 0; li < end_layer; ++li) {
    const LayerPlan& p = m.layers[li];
    const LayerRecord& r = p.rec;
    if (r.kind == LayerKind::flatten) continue;  // CHW is already flat
    if (r.in_type == ValueType::u8 && type == ValueType::f32) {
      // The model input is quantized straight from the caller's buffer.
      const auto* x = li == first_weighted ? input : reinterpret_cast<const float*>(cur);
      m.kernels->quantize_u8(x, p.in_elems, 1.f / r.in_scale, r.in_zero_point, nxt);
      std::swap(cur, nxt);
    } else if (r.in_type == ValueType::f32 && type == ValueType::u8) {
      auto* y = reinterpret_cast<float*>(nxt);
      for (std::size_t i = 0; i < p.in_elems; ++i)
        y[i] = scale * static_cast<float>(static_cast<std::int32_t>(cur[i]) - zp);
      std::swap(cur, nxt);
    }
    run_layer(m, p, cur, nxt);
    std::swap(cur, nxt);
    const bool int8 = r.encoding != Encoding::f32;
    type = int8 ? r.out_type : ValueType::f32;
    scale = r.out_scale;
    zp = r.out_zero_point;
  }
  if (type == ValueType::u8) {
    for (std::size_t i = 0; i < output_n; ++i)
      output[i] = scale * static_cast<float>(static_cast<std::int32_t>(cur[i]) - zp);
  } else {
    std::memcpy(output, cur, output_n * sizeof(float));
  }
  return RunStatus::ok;
}

RunStatus Model::run(const float* input, std::size_t input_n, float* output, std::size_t output_n) {
  if (output_n != output_size()) return RunStatus::bad_output_size;
  return run_until(input, input_n, impl_->layers.size(), output, output_n);
}

RunStatus Model::run_observe(const float* input, std::size_t input_n, float* mins, float* maxs) {
  // Calibration is not a hot path: a layer-by-layer replay through run_until is simple and
  // exactly matches what inference computes.
  const std::size_t n = impl_->layers.size();
  std::vector<float> act;
  for (std::size_t li = 1; li <= n; ++li) {
    act.resize(activation_size(li));
    const RunStatus s = run_until(input, input_n, li, act.data(), act.size());
    if (s != RunStatus::ok) return s;
    for (float v : act) {
      mins[li - 1] = std::min(mins[li - 1], v);
      maxs[li - 1] = std::max(maxs[li - 1], v);
    }
  }
  return RunStatus::ok;
}

int Model::predict(const float* input, std::size_t input_n) {
  float out[1024];
  const std::size_t n = output_size();
  std::vector<float> big;
  float* o = out;
  if (n > 1024) {  // rare: large outputs fall back to a heap buffer
    big.resize(n);
    o = big.data();
  }
  if (run(input, input_n, o, n) != RunStatus::ok) return -1;
  std::size_t best = 0;
  for (std::size_t i = 1; i < n; ++i)
    if (o[i] > o[best]) best = i;
  return static_cast<int>(best);
}

}  // namespace verdant::runtime

// Inference, the model's accessors and its file mapping; the loader is in loader.cpp.
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
#include <type_traits>
#include <vector>

#include "model_impl.hpp"
#include "numerics.hpp"
#include "verdant/core/clones.hpp"

namespace verdant::runtime {

using namespace verdant::vdm;

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
  return p.expand_to_dense;  // set for sparse layers only
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
__attribute__((noinline)) void im2col_row(const LayerPlan& p, const T* in, std::uint32_t oy,
                                          std::uint32_t ox, T pad, T* col) {
  const LayerRecord& r = p.rec;
  const std::int64_t kh = r.kernel_h, kw = r.kernel_w, ih = r.in_h, iw = r.in_w, ic_n = r.in_c;
  const std::int64_t iy0 = std::int64_t{oy} * r.stride - r.padding;
  const std::int64_t ix0 = std::int64_t{ox} * r.stride - r.padding;
  const bool inside_x = ix0 >= 0 && ix0 + kw <= iw;
  // Small u8 kernels: one 8-byte move per kernel row (the arena has slack past every buffer).
  const bool wide_copy = std::is_same_v<T, std::uint8_t> && kw <= 8;
  T* dst = col;
  if (wide_copy && inside_x && iy0 >= 0 && iy0 + kh <= ih) {  // the window inside the image
    const T* src = in + iy0 * iw + ix0;
    for (std::int64_t ic = 0; ic < ic_n; ++ic, src += ih * iw)
      for (std::int64_t ky = 0; ky < kh; ++ky, dst += kw) std::memcpy(dst, src + ky * iw, 8);
    std::memset(dst, 0, 8);
    return;
  }
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

// Pooling (or a plain copy) from a pixel-major conv output [conv_h * conv_w][C] to the CHW
// activation: u8 activations, or i32 accumulators (pool_before_requant, max pooling only),
// requantized once pooled. The window is reduced over contiguous channels (vectorizable)
// into a scratch column, then scattered to CHW. Fields are read into locals: u8 stores may
// alias the record.
template <typename T>
inline void pool_pixel_major(const Model::Impl& m, const LayerPlan& p, const T* pre,
                             std::uint8_t* out) {
  constexpr bool kAccumulators = std::is_same_v<T, std::int32_t>;
  using Sum = std::conditional_t<kAccumulators, std::int32_t, std::uint32_t>;
  const LayerRecord& r = p.rec;
  const std::size_t C = r.out_c;
  if constexpr (!kAccumulators) {
    if (r.pool == Pool::none) {
      const std::size_t plane = std::size_t{p.conv_h} * p.conv_w;
      for (std::size_t pix = 0; pix < plane; ++pix)
        for (std::size_t ch = 0; ch < C; ++ch) out[ch * plane + pix] = pre[pix * C + ch];
      return;
    }
  }
  Sum* scratch = reinterpret_cast<Sum*>(m.acc);
  const std::size_t ps = r.pool_size, pst = r.pool_stride, oh = r.out_h, ow = r.out_w,
                    cw = p.conv_w, plane = oh * ow;
  const bool is_max = r.pool == Pool::max;
  const std::uint32_t n = static_cast<std::uint32_t>(ps * ps);
  for (std::size_t py = 0; py < oh; ++py)
    for (std::size_t px = 0; px < ow; ++px) {
      const T* w0 = pre + (py * pst * cw + px * pst) * C;
      for (std::size_t ch = 0; ch < C; ++ch) scratch[ch] = is_max ? Sum(w0[ch]) : Sum{0};
      for (std::size_t y = 0; y < ps; ++y)
        for (std::size_t x = 0; x < ps; ++x) {
          const T* v = w0 + (y * cw + x) * C;
          if (is_max) {
            for (std::size_t ch = 0; ch < C; ++ch) scratch[ch] = std::max<Sum>(scratch[ch], v[ch]);
          } else {
            for (std::size_t ch = 0; ch < C; ++ch) scratch[ch] += v[ch];
          }
        }
      std::uint8_t* o = out + py * ow + px;
      if constexpr (kAccumulators) {
        m.kernels->requant_u8(scratch, p.bias_fold, p.mult, p.shift, C, r.out_zero_point, p.act_lo,
                              m.requantized);
        for (std::size_t ch = 0; ch < C; ++ch) o[ch * plane] = m.requantized[ch];
      } else {
        for (std::size_t ch = 0; ch < C; ++ch)
          o[ch * plane] =
              static_cast<std::uint8_t>(is_max ? scratch[ch] : (scratch[ch] + n / 2) / n);
      }
    }
}

// The AVX2 clones take 8 maxima an instruction (SSE2 has no 32-bit signed max).
VERDANT_CLONES void pool_hwc_to_chw(const Model::Impl& m, const LayerPlan& p,
                                    const std::uint8_t* pre, std::uint8_t* out) {
  pool_pixel_major(m, p, pre, out);
}
VERDANT_CLONES void max_pool_then_requant(const Model::Impl& m, const LayerPlan& p,
                                          const std::int32_t* acc, std::uint8_t* out) {
  pool_pixel_major(m, p, acc, out);
}

// acc[0, rows) = W x through the layer's kernel (dense, packed or not, CSR or 4x4 blocks).
inline void int8_matvec(const KernelTable& k, const LayerPlan& p, const std::uint8_t* x,
                        std::int32_t* acc) {
  if (p.wpacked != nullptr)
    k.gemv_s8_packed(p.wpacked, x, p.kp, p.rows, acc);
  else if (p.wd != nullptr)
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
  // Requantized in whole 8-lane vectors: the constants are zero-padded to 16 entries
  // (constant_bytes) and the accumulators readable past `rows`, so the few extra outputs are
  // finite and land in the next pixel's slot (rewritten by it) or the pre-pooling slack.
  const std::size_t requant_n = (p.rows + 7) / 8 * 8;
  // im2col writes [0, k); the pad up to kp must be zero (stale values could be NaN).
  if (int8)
    std::memset(m.col + p.k, 0, p.kp - p.k);
  else
    std::fill(reinterpret_cast<float*>(m.col) + p.k, reinterpret_cast<float*>(m.col) + p.kp, 0.f);
  // pool_before_requant: each pixel's accumulators stay in the pre-pooling buffer; the sparse
  // 4x4 kernel's up to 3 extra rows land in the next pixel's slot (rewritten by it) or the
  // buffer's slack.
  auto* pixel_acc = reinterpret_cast<std::int32_t*>(m.pre);
  for (std::uint32_t oy = 0; oy < p.conv_h; ++oy)
    for (std::uint32_t ox = 0; ox < p.conv_w; ++ox) {
      const std::size_t pix = std::size_t{oy} * p.conv_w + ox;
      if (int8) {
        im2col_row<std::uint8_t>(p, in, oy, ox, static_cast<std::uint8_t>(r.in_zero_point), m.col);
        if (p.pool_before_requant) {
          int8_matvec(k, p, m.col, pixel_acc + pix * p.rows);
          continue;
        }
        int8_matvec(k, p, m.col, m.acc);
        if (out_u8)  // pixel-major, so requantization is one contiguous vector
          k.requant_u8(m.acc, p.bias_fold, p.mult, p.shift, requant_n, r.out_zero_point, p.act_lo,
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
  if (p.pool_before_requant)
    max_pool_then_requant(m, p, pixel_acc, out);
  else if (out_u8)
    pool_hwc_to_chw(m, p, m.pre, out);
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

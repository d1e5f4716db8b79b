// .vdm writer: lays out header, layer table, tensor table and 64-byte aligned data sections.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "numerics.hpp"
#include "verdant/runtime/model.hpp"
#include "verdant/runtime/vdm_writer.hpp"

namespace verdant::runtime {

using namespace verdant::vdm;

QuantParams activation_qparams(float lo, float hi) {
  lo = std::min(lo, 0.f);
  hi = std::max(hi, 0.f);
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0.f, hi = 1.f;
  if (hi - lo < 1e-6f) hi = lo + 1e-6f;
  QuantParams q;
  q.scale = (hi - lo) / static_cast<float>(kActivationQMax);
  q.zero_point =
      std::clamp(static_cast<std::int32_t>(std::lround(-lo / q.scale)), 0, kActivationQMax);
  return q;
}

void quantize_rows(const float* w, std::size_t rows, std::size_t k, std::int8_t* q, float* scales) {
  float max_scale = 0.f;
  for (std::size_t r = 0; r < rows; ++r) {
    float maxabs = 0.f;
    for (std::size_t i = 0; i < k; ++i) maxabs = std::max(maxabs, std::fabs(w[r * k + i]));
    scales[r] = maxabs / static_cast<float>(kWeightQMax);
    max_scale = std::max(max_scale, scales[r]);
  }
  for (std::size_t r = 0; r < rows; ++r) {
    // An all-zero row (pruned) keeps only its bias, which is stored in units of the scale: a
    // scale like its neighbours' keeps that bias representable (and multipliers below 1).
    if (scales[r] == 0.f)
      scales[r] = max_scale > 0.f ? max_scale : 1.f / static_cast<float>(kWeightQMax);
    const float s = scales[r];
    for (std::size_t i = 0; i < k; ++i) {
      const long v = std::lround(w[r * k + i] / s);
      q[r * k + i] = static_cast<std::int8_t>(std::clamp<long>(v, -kWeightQMax, kWeightQMax));
    }
  }
}

namespace {

// "" when a layer's weights and biases are all finite, else which one is not. The loader
// rejects NaN and infinities in f32 tensors; int8 ones would quantize them silently.
std::string non_finite_parameter(const std::vector<float>& weight, const std::vector<float>& bias) {
  std::string bad = describe_non_finite("weight", weight.data(), weight.size());
  return bad.empty() ? describe_non_finite("bias", bias.data(), bias.size()) : bad;
}

bool fixed_ok(float scale, std::int32_t zero_point) {
  return std::isfinite(scale) && scale > 0.f && zero_point >= 0 && zero_point <= kActivationQMax;
}

std::int32_t quantize_bias(float b, double scale) {
  const double v = std::nearbyint(double{b} / scale);
  return static_cast<std::int32_t>(std::clamp<double>(v, std::numeric_limits<std::int32_t>::min(),
                                                      std::numeric_limits<std::int32_t>::max()));
}

struct Blob {
  std::vector<std::uint8_t> bytes;
  TensorRecord rec{};
};

template <typename T>
Blob make_blob(TensorRole role, DataType dt, const std::vector<T>& v, std::uint32_t rows,
               std::uint32_t stride) {
  Blob b;
  b.rec.role = role;
  b.rec.dtype = dt;
  b.rec.count = v.size();
  b.rec.rows = rows;
  b.rec.row_stride = stride;
  b.bytes.resize(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.bytes.data(), v.data(), b.bytes.size());
  return b;
}

template <typename T>
std::vector<T> pad_rows(const std::vector<T>& w, std::size_t rows, std::size_t k, std::size_t kp) {
  std::vector<T> out(rows * kp, T{});
  for (std::size_t r = 0; r < rows; ++r) std::copy_n(w.begin() + r * k, k, out.begin() + r * kp);
  return out;
}

// The stored (non-zero) 4x4 blocks of a [rows][k] matrix, as block row pointers and block
// columns; a block is stored when any of its entries is non-zero.
void bsr_pattern(const std::int8_t* q, std::size_t rows, std::size_t k,
                 std::vector<std::uint32_t>& row_ptr, std::vector<std::uint16_t>& col) {
  const std::size_t brows = (rows + kBlock - 1) / kBlock, bcols = (k + kBlock - 1) / kBlock;
  row_ptr.assign(1, 0);
  col.clear();
  for (std::size_t b = 0; b < brows; ++b) {
    for (std::size_t bc = 0; bc < bcols; ++bc) {
      bool any = false;
      for (std::size_t r = b * kBlock; r < std::min(rows, (b + 1) * kBlock) && !any; ++r)
        for (std::size_t i = bc * kBlock; i < std::min(k, (bc + 1) * kBlock) && !any; ++i)
          any = q[r * k + i] != 0;
      if (any) col.push_back(static_cast<std::uint16_t>(bc));
    }
    row_ptr.push_back(static_cast<std::uint32_t>(col.size()));
  }
}

// Copies a tensor of a loaded model's layer (to keep its sparsity pattern).
template <typename T>
std::vector<T> layer_tensor(const Model& model, std::size_t layer, TensorRole role) {
  const TensorRecord* t = model.tensors(layer);
  for (std::uint32_t i = 0; i < model.layer(layer).num_tensors; ++i)
    if (t[i].role == role) {
      const auto* p = reinterpret_cast<const T*>(model.file_data() + t[i].offset);
      return std::vector<T>(p, p + t[i].count);
    }
  return {};
}

// BSR tensors (weight blocks, row_ptr, col_idx) of quantized weights q [rows][k]: the
// pattern of `model`'s layer when given (fine-tuning keeps it), else q's non-zero blocks.
void append_bsr_blobs(const std::vector<std::int8_t>& q, std::size_t rows, std::size_t k,
                      const Model* model, std::size_t layer, std::vector<Blob>& out) {
  std::vector<std::uint32_t> row_ptr;
  std::vector<std::uint16_t> col;
  if (model != nullptr) {
    row_ptr = layer_tensor<std::uint32_t>(*model, layer, TensorRole::row_ptr);
    col = layer_tensor<std::uint16_t>(*model, layer, TensorRole::col_idx);
  } else {
    bsr_pattern(q.data(), rows, k, row_ptr, col);
  }
  std::vector<std::int8_t> blocks(col.size() * kBlock * kBlock, 0);
  for (std::size_t b = 0; b + 1 < row_ptr.size(); ++b)
    for (std::uint32_t j = row_ptr[b]; j < row_ptr[b + 1]; ++j)
      for (std::size_t i = 0; i < kBlock && b * kBlock + i < rows; ++i)
        for (std::size_t c = 0; c < kBlock && std::size_t{col[j]} * kBlock + c < k; ++c)
          blocks[16 * j + kBlock * i + c] = q[(b * kBlock + i) * k + col[j] * kBlock + c];
  const auto n = static_cast<std::uint32_t>(col.size());
  out.push_back(make_blob(TensorRole::weight, DataType::i8, blocks, n, kBlock * kBlock));
  out.push_back(make_blob(TensorRole::row_ptr, DataType::u32, row_ptr, 1,
                          static_cast<std::uint32_t>(row_ptr.size())));
  out.push_back(make_blob(TensorRole::col_idx, DataType::u16, col, 1, n));
}

// The int8 tensors of a layer from float weights and the input/output quantization.
std::vector<Blob> int8_blobs(Encoding enc, const std::vector<float>& weight,
                             const std::vector<float>& bias, std::size_t rows, std::size_t k,
                             float in_scale, const Model* model, std::size_t layer) {
  std::vector<std::int8_t> q(rows * k);
  std::vector<float> scales(rows);
  quantize_rows(weight.data(), rows, k, q.data(), scales.data());
  std::vector<std::int32_t> b(rows);
  for (std::size_t r = 0; r < rows; ++r)
    b[r] = quantize_bias(bias[r], double{in_scale} * scales[r]);
  std::vector<Blob> out;
  if (enc == Encoding::int8) {
    const std::size_t kp = padded_row_elems(static_cast<std::uint32_t>(k), 1);
    out.push_back(make_blob(TensorRole::weight, DataType::i8, pad_rows(q, rows, k, kp),
                            static_cast<std::uint32_t>(rows), static_cast<std::uint32_t>(kp)));
  } else if (enc == Encoding::int8_bsr) {
    append_bsr_blobs(q, rows, k, model, layer, out);
  } else {
    std::vector<std::uint32_t> row_ptr{0};
    std::vector<std::uint16_t> col;
    std::vector<std::int8_t> val;
    if (model != nullptr) {  // keep the existing sparsity pattern (fine-tuning a pruned head)
      const auto rp = layer_tensor<std::uint32_t>(*model, layer, TensorRole::row_ptr);
      const auto ci = layer_tensor<std::uint16_t>(*model, layer, TensorRole::col_idx);
      for (std::size_t r = 0; r < rows; ++r) {
        for (std::uint32_t j = rp[r]; j < rp[r + 1]; ++j) {
          col.push_back(ci[j]);
          val.push_back(q[r * k + ci[j]]);
        }
        row_ptr.push_back(static_cast<std::uint32_t>(col.size()));
      }
    } else {
      for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t i = 0; i < k; ++i)
          if (q[r * k + i] != 0) {
            col.push_back(static_cast<std::uint16_t>(i));
            val.push_back(q[r * k + i]);
          }
        row_ptr.push_back(static_cast<std::uint32_t>(col.size()));
      }
    }
    const auto nnz = static_cast<std::uint32_t>(val.size());
    out.push_back(make_blob(TensorRole::weight, DataType::i8, val, 1, nnz));
    out.push_back(make_blob(TensorRole::row_ptr, DataType::u32, row_ptr, 1,
                            static_cast<std::uint32_t>(row_ptr.size())));
    out.push_back(make_blob(TensorRole::col_idx, DataType::u16, col, 1, nnz));
  }
  out.push_back(make_blob(TensorRole::weight_scale, DataType::f32, scales, 1,
                          static_cast<std::uint32_t>(rows)));
  out.push_back(make_blob(TensorRole::bias, DataType::i32, b, 1, static_cast<std::uint32_t>(rows)));
  return out;
}

std::vector<Blob> f32_blobs(const std::vector<float>& weight, const std::vector<float>& bias,
                            std::size_t rows, std::size_t k) {
  const std::size_t kp = padded_row_elems(static_cast<std::uint32_t>(k), 4);
  std::vector<Blob> out;
  out.push_back(make_blob(TensorRole::weight, DataType::f32, pad_rows(weight, rows, k, kp),
                          static_cast<std::uint32_t>(rows), static_cast<std::uint32_t>(kp)));
  out.push_back(
      make_blob(TensorRole::bias, DataType::f32, bias, 1, static_cast<std::uint32_t>(rows)));
  return out;
}

// Header + tables + aligned sections, with the CRC filled in.
std::vector<std::uint8_t> assemble(FileHeader h, std::vector<LayerRecord> layers,
                                   std::vector<std::vector<Blob>> blobs) {
  h.num_layers = static_cast<std::uint32_t>(layers.size());
  std::uint32_t nt = 0;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    layers[i].first_tensor = nt;
    layers[i].num_tensors = static_cast<std::uint32_t>(blobs[i].size());
    nt += layers[i].num_tensors;
  }
  h.num_tensors = nt;
  h.layer_table_offset = sizeof(FileHeader);
  h.tensor_table_offset = align_up(h.layer_table_offset + layers.size() * sizeof(LayerRecord));
  std::uint64_t off = align_up(h.tensor_table_offset + std::uint64_t{nt} * sizeof(TensorRecord));
  std::vector<TensorRecord> trecs;
  for (auto& lb : blobs)
    for (Blob& b : lb) {
      b.rec.offset = off;
      off = align_up(off + b.bytes.size());
      trecs.push_back(b.rec);
    }
  h.file_size = off;
  h.crc32 = 0;
  std::vector<std::uint8_t> file(off, 0);
  std::memcpy(file.data(), &h, sizeof h);
  std::memcpy(file.data() + h.layer_table_offset, layers.data(),
              layers.size() * sizeof(LayerRecord));
  if (!trecs.empty())
    std::memcpy(file.data() + h.tensor_table_offset, trecs.data(),
                trecs.size() * sizeof(TensorRecord));
  for (auto& lb : blobs)
    for (Blob& b : lb)
      if (!b.bytes.empty()) std::memcpy(file.data() + b.rec.offset, b.bytes.data(), b.bytes.size());
  const std::uint32_t crc = file_crc32(file.data(), file.size());
  std::memcpy(file.data() + offsetof(FileHeader, crc32), &crc, 4);
  return file;
}

}  // namespace

std::vector<std::uint8_t> write_vdm(const ModelSpec& spec, std::string* error) {
  auto fail = [&](const std::string& what) {
    *error = what;
    return std::vector<std::uint8_t>{};
  };
  FileHeader h{};
  std::memcpy(h.magic, kMagic, 4);
  h.version = kVersion;
  h.input_c = spec.input_c;
  h.input_h = spec.input_h;
  h.input_w = spec.input_w;
  h.byte_scale = spec.byte_scale;
  h.byte_offset = spec.byte_offset;
  std::memcpy(h.name, spec.name.data(), std::min(spec.name.size(), sizeof h.name - 1));
  std::uint32_t c = spec.input_c, hh = spec.input_h, ww = spec.input_w;
  ValueType type = ValueType::f32;
  QuantParams cur_q = activation_qparams(spec.input_min, spec.input_max);
  if (spec.input_fixed) {
    if (!fixed_ok(spec.input_scale, spec.input_zero_point))
      return fail("input: fixed quantization needs scale > 0 and zero point in [0, 127]");
    cur_q = {spec.input_scale, spec.input_zero_point};
  }
  std::vector<LayerRecord> layers;
  std::vector<std::vector<Blob>> blobs;
  for (std::size_t li = 0; li < spec.layers.size(); ++li) {
    const LayerSpec& s = spec.layers[li];
    const std::string at = "layer " + std::to_string(li) + ": ";
    LayerRecord r{};
    r.kind = s.kind;
    r.in_c = c;
    r.in_h = hh;
    r.in_w = ww;
    r.stride = 1;
    r.kernel_h = r.kernel_w = 1;
    if (s.kind == LayerKind::flatten) {
      r.encoding = Encoding::none;
      r.in_type = r.out_type = type;
      r.in_scale = r.out_scale = cur_q.scale;
      r.in_zero_point = r.out_zero_point = cur_q.zero_point;
      r.out_c = c * hh * ww;
      r.out_h = r.out_w = 1;
      layers.push_back(r);
      blobs.emplace_back();
      c = r.out_c;
      hh = ww = 1;
      continue;
    }
    std::size_t k = 0;
    if (s.kind == LayerKind::linear) {
      if (hh != 1 || ww != 1)
        return fail(at + "linear layer needs a flat input (add a flatten layer)");
      k = c;
      r.out_h = r.out_w = 1;
    } else {
      r.stride = static_cast<std::uint16_t>(s.stride);
      r.padding = static_cast<std::uint16_t>(s.padding);
      r.kernel_h = static_cast<std::uint16_t>(s.kernel_h);
      r.kernel_w = static_cast<std::uint16_t>(s.kernel_w);
      if (s.stride == 0 || hh + 2 * s.padding < s.kernel_h || ww + 2 * s.padding < s.kernel_w)
        return fail(at + "conv2d geometry does not fit the input");
      std::uint32_t oh = (hh + 2 * s.padding - s.kernel_h) / s.stride + 1;
      std::uint32_t ow = (ww + 2 * s.padding - s.kernel_w) / s.stride + 1;
      r.pool = s.pool;
      if (s.pool != Pool::none) {
        r.pool_size = static_cast<std::uint8_t>(s.pool_size);
        r.pool_stride = static_cast<std::uint8_t>(s.pool_stride);
        if (s.pool_size == 0 || s.pool_stride == 0 || oh < s.pool_size || ow < s.pool_size)
          return fail(at + "pooling geometry does not fit");
        oh = (oh - s.pool_size) / s.pool_stride + 1;
        ow = (ow - s.pool_size) / s.pool_stride + 1;
      }
      r.out_h = oh;
      r.out_w = ow;
      k = std::size_t{c} * s.kernel_h * s.kernel_w;
    }
    r.out_c = s.out_c;
    r.activation = s.activation;
    r.encoding = s.encoding;
    if (s.weight.size() != s.out_c * k || s.bias.size() != s.out_c)
      return fail(at + "expected " + std::to_string(s.out_c * k) + " weights and " +
                  std::to_string(s.out_c) + " biases, got " + std::to_string(s.weight.size()) +
                  " and " + std::to_string(s.bias.size()));
    if (const std::string bad = non_finite_parameter(s.weight, s.bias); !bad.empty())
      return fail(at + bad + " (weights must be finite)");
    QuantParams out_q = activation_qparams(s.out_min, s.out_max);
    if (s.out_fixed) {
      if (!fixed_ok(s.out_scale, s.out_zero_point))
        return fail(at + "fixed output quantization needs scale > 0 and zero point in [0, 127]");
      out_q = {s.out_scale, s.out_zero_point};
    }
    if (s.encoding == Encoding::f32) {
      r.in_type = r.out_type = ValueType::f32;
      blobs.push_back(f32_blobs(s.weight, s.bias, s.out_c, k));
      r.out_scale = out_q.scale;  // informative: where a following int8 layer quantizes
      r.out_zero_point = out_q.zero_point;
      type = ValueType::f32;
      cur_q = out_q;
    } else if (s.encoding == Encoding::int8 || s.encoding == Encoding::int8_csr ||
               s.encoding == Encoding::int8_bsr) {
      // Input: the previous u8 output, or the calibrated range of the previous f32 value.
      r.in_type = ValueType::u8;
      r.in_scale = cur_q.scale;
      r.in_zero_point = cur_q.zero_point;
      blobs.push_back(int8_blobs(s.encoding, s.weight, s.bias, s.out_c, k, r.in_scale, nullptr, 0));
      if (s.quantize_output) {
        QuantParams q = out_q;
        // Requantization multipliers must be below 1: widen a too-narrow output range.
        const auto& sc = blobs.back()[blobs.back().size() - 2].bytes;
        float max_ws = 0.f;
        for (std::size_t o = 0; o < s.out_c; ++o) {
          float v;
          std::memcpy(&v, sc.data() + 4 * o, 4);
          max_ws = std::max(max_ws, v);
        }
        const float min_scale = r.in_scale * max_ws * 1.001f;
        if (q.scale < min_scale) {
          const float lo = s.out_fixed ? -static_cast<float>(q.zero_point) * q.scale : s.out_min;
          q = activation_qparams(lo, lo + min_scale * 127.f);
        }
        r.out_type = ValueType::u8;
        r.out_scale = q.scale;
        r.out_zero_point = q.zero_point;
        type = ValueType::u8;
        cur_q = q;
      } else {
        r.out_type = ValueType::f32;
        r.out_scale = out_q.scale;
        r.out_zero_point = out_q.zero_point;
        type = ValueType::f32;
        cur_q = out_q;
      }
    } else {
      return fail(at + "unsupported encoding");
    }
    layers.push_back(r);
    c = r.out_c;
    hh = r.out_h;
    ww = r.out_w;
  }
  if (layers.empty()) return fail("model has no layers");
  h.output_size = c * hh * ww;
  return assemble(h, std::move(layers), std::move(blobs));
}

bool layer_weights(const Model& model, std::size_t layer, std::vector<float>* weight,
                   std::vector<float>* bias, std::string* error) {
  if (layer >= model.num_layers()) {
    *error = "layer " + std::to_string(layer) + " does not exist";
    return false;
  }
  const LayerRecord& r = model.layer(layer);
  if (r.kind != LayerKind::linear && r.kind != LayerKind::conv2d) {
    *error = "layer " + std::to_string(layer) + " has no weights";
    return false;
  }
  const std::size_t rows = r.out_c;
  const std::size_t k = std::size_t{r.in_c} * r.kernel_h * r.kernel_w;
  const TensorRecord* t = model.tensors(layer);
  const std::uint8_t* f = model.file_data();
  auto find = [&](TensorRole role) -> const std::uint8_t* {
    for (std::uint32_t i = 0; i < r.num_tensors; ++i)
      if (t[i].role == role) return f + t[i].offset;
    return nullptr;
  };
  weight->assign(rows * k, 0.f);
  bias->assign(rows, 0.f);
  if (r.encoding == Encoding::f32) {
    const auto* w = reinterpret_cast<const float*>(find(TensorRole::weight));
    const auto* b = reinterpret_cast<const float*>(find(TensorRole::bias));
    const std::size_t kp = padded_row_elems(static_cast<std::uint32_t>(k), 4);
    for (std::size_t o = 0; o < rows; ++o) {
      std::copy_n(w + o * kp, k, weight->begin() + o * k);
      (*bias)[o] = b[o];
    }
    return true;
  }
  const auto* sc = reinterpret_cast<const float*>(find(TensorRole::weight_scale));
  const auto* b = reinterpret_cast<const std::int32_t*>(find(TensorRole::bias));
  const auto* w = reinterpret_cast<const std::int8_t*>(find(TensorRole::weight));
  for (std::size_t o = 0; o < rows; ++o) {
    (*bias)[o] = static_cast<float>(b[o] * (double{r.in_scale} * sc[o]));
    if (r.encoding == Encoding::int8) {
      const std::size_t kp = padded_row_elems(static_cast<std::uint32_t>(k), 1);
      for (std::size_t i = 0; i < k; ++i) (*weight)[o * k + i] = w[o * kp + i] * sc[o];
    } else if (r.encoding == Encoding::int8_bsr) {
      const auto* rp = reinterpret_cast<const std::uint32_t*>(find(TensorRole::row_ptr));
      const auto* ci = reinterpret_cast<const std::uint16_t*>(find(TensorRole::col_idx));
      const std::size_t b = o / kBlock, i = o % kBlock;
      for (std::uint32_t j = rp[b]; j < rp[b + 1]; ++j)
        for (std::size_t c = 0; c < kBlock && std::size_t{ci[j]} * kBlock + c < k; ++c)
          (*weight)[o * k + ci[j] * kBlock + c] = w[16 * j + kBlock * i + c] * sc[o];
    } else {
      const auto* rp = reinterpret_cast<const std::uint32_t*>(find(TensorRole::row_ptr));
      const auto* ci = reinterpret_cast<const std::uint16_t*>(find(TensorRole::col_idx));
      for (std::uint32_t j = rp[o]; j < rp[o + 1]; ++j) (*weight)[o * k + ci[j]] = w[j] * sc[o];
    }
  }
  return true;
}

std::vector<std::uint8_t> replace_layer_weights(const Model& model, std::size_t layer,
                                                const std::vector<float>& weight,
                                                const std::vector<float>& bias,
                                                std::size_t* patched_bytes, std::string* error) {
  auto fail = [&](const std::string& what) {
    *error = what;
    return std::vector<std::uint8_t>{};
  };
  if (layer >= model.num_layers())
    return fail("layer " + std::to_string(layer) + " does not exist");
  const LayerRecord& r = model.layer(layer);
  if (r.kind != LayerKind::linear && r.kind != LayerKind::conv2d)
    return fail("layer " + std::to_string(layer) + " has no weights");
  const std::size_t rows = r.out_c;
  const std::size_t k = std::size_t{r.in_c} * r.kernel_h * r.kernel_w;
  if (weight.size() != rows * k || bias.size() != rows)
    return fail("replacement weights have the wrong size");
  if (const std::string bad = non_finite_parameter(weight, bias); !bad.empty())
    return fail("replacement " + bad + " (weights must be finite)");
  std::vector<Blob> blobs = r.encoding == Encoding::f32 ? f32_blobs(weight, bias, rows, k)
                                                        : int8_blobs(r.encoding, weight, bias, rows,
                                                                     k, r.in_scale, &model, layer);
  // The new tensors have the same roles and sizes as the old ones: patch them in place.
  std::vector<std::uint8_t> file(model.file_data(), model.file_data() + model.file_size());
  const TensorRecord* t = model.tensors(layer);
  std::size_t bytes = 0;
  for (const Blob& b : blobs) {
    const TensorRecord* old = nullptr;
    for (std::uint32_t i = 0; i < r.num_tensors; ++i)
      if (t[i].role == b.rec.role) old = &t[i];
    if (old == nullptr || old->count != b.rec.count)
      return fail("layer layout changed unexpectedly");
    std::memcpy(file.data() + old->offset, b.bytes.data(), b.bytes.size());
    bytes += b.bytes.size();
  }
  if (r.out_type == ValueType::u8) {
    // The output quantization stays; make sure the new weights keep multipliers below 1.
    for (std::size_t o = 0; o < rows; ++o) {
      float s;
      std::memcpy(&s, blobs[blobs.size() - 2].bytes.data() + 4 * o, 4);
      if (!(double{r.in_scale} * s / r.out_scale < 1.0))
        return fail("fine-tuned weights exceed the layer's output range; export again");
    }
  }
  const std::uint32_t crc = file_crc32(file.data(), file.size());
  std::memcpy(file.data() + offsetof(FileHeader, crc32), &crc, 4);
  *patched_bytes = bytes;
  return file;
}

}  // namespace verdant::runtime
